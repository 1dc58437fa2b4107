/*
 * MP4 for the recorder (recorder_mp4.c): recordings written as
 * fragmented MP4 through libavformat's mp4 muxer on the writer thread,
 * and the repair of such a file after a crash (the reader that turns an
 * MP4 file back into FLV tags for VOD is media/mp4_read.h).
 * Nothing here touches the loop or sl_frame_t: input and output are FLV
 * tag bodies, so the thread that calls owns everything it is given.
 */
#ifndef SL_MODULES_RECORDER_MP4_H
#define SL_MODULES_RECORDER_MP4_H

#include <stddef.h>
#include <stdint.h>

#include "base/log.h"

/* ------------------------------------------------------------------ */
/* writing                                                             */

typedef struct sl_rec_mp4 sl_rec_mp4_t;

/* What sl__rec_mp4_write reports besides 0 and an I/O error (-errno). */
#define SL_REC_MP4_CHANGED 1 /* a different codec configuration: the file was finished */

/**
 * Starts an MP4 writer on fd (borrowed; open for writing, empty). Nothing
 * is written until the first media frame: the tracks are those whose
 * configuration came before it. frag_ms bounds a fragment's duration
 * (fragments also start at every video keyframe). log (borrowed, must
 * outlive the writer) gives log lines their context. 0 or SL_ENOMEM.
 */
int sl__rec_mp4_new(int fd, unsigned frag_ms, const sl_log_ctx_t *log, sl_rec_mp4_t **out);

/**
 * Writes one FLV tag (type SL_FLV_*, body borrowed for the call) at ts
 * (ms from the start of the file). Configurations are kept until the
 * header is written; afterwards an identical one is ignored and a
 * different one finishes the file (trailer written) and returns
 * SL_REC_MP4_CHANGED: the caller ends the recording. Frames of a kind
 * without a track, data tags and frames of unsupported codecs are
 * skipped. Returns 0, SL_REC_MP4_CHANGED, SL_EINVAL (no track could be
 * made: nothing usable was written), or -errno when writing the file
 * failed (ENOSPC...): the file then ends at the last whole fragment (the
 * caller truncates it to sl__rec_mp4_good_size).
 */
int sl__rec_mp4_write(sl_rec_mp4_t *w, uint8_t type, uint32_t ts, const uint8_t *body,
                      size_t len);

/** Bytes written to the file so far (whole fragments only once a write call returns). */
uint64_t sl__rec_mp4_size(const sl_rec_mp4_t *w);
/** The length of the file up to its last whole fragment (where to cut after an error). */
uint64_t sl__rec_mp4_good_size(const sl_rec_mp4_t *w);

/**
 * Finishes the file (the last frames, the last fragment, the fragment
 * index) and frees the writer. The fd stays open (the caller's). Sets
 * *size to the bytes written and *good_size to the length up to the last
 * whole fragment (they differ after a failed write). Returns 0 or the
 * error of a failed write (-errno, or SL_EIO). NULL is ignored.
 */
int sl__rec_mp4_finish(sl_rec_mp4_t *w, uint64_t *size, uint64_t *good_size);

/* ------------------------------------------------------------------ */
/* repair                                                              */

/* What a scan of an MP4 file found (sl_recorder_mp4_repair). */
typedef struct sl_recorder_mp4_scan {
    uint64_t size;          /* bytes kept: the file's new length */
    uint64_t n_fragments;   /* whole moof+mdat pairs */
    int has_moov;           /* the header (moov) is there */
    uint64_t truncated;     /* bytes of a torn tail cut off */
} sl_recorder_mp4_scan_t;

/**
 * Walks the top-level boxes of the MP4 file open for reading and writing
 * on fd and cuts the file after the last whole box that leaves it
 * consistent (a moof counts only with its whole mdat): the torn tail a
 * crash may leave. Fills *scan. Returns 0, SL_EPROTO (not an MP4 file
 * with a moov: nothing is changed) or SL_EIO. Blocking: worker threads
 * only. Fuzzed (tests/fuzz/mp4_repair_fuzz.c).
 */
int sl_recorder_mp4_repair(int fd, sl_recorder_mp4_scan_t *scan);

/**
 * The media duration of an MP4 file (from its first sample's decode time
 * to its last sample's end, over all tracks), read by demuxing it whole.
 * Also writes a codec list ("h264,aac") into codecs (cap bytes) when not
 * NULL. Returns 0 or SL_EPROTO. Blocking: worker threads only.
 */
int sl_recorder_mp4_duration(const char *file, uint64_t *duration_ms, char *codecs, size_t cap);

#endif
