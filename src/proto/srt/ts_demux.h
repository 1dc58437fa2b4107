/*
 * MPEG-TS in, hub frames out: the demuxer behind SRT publishers and
 * MPEG-TS-over-UDP ingest. libavformat's mpegts demuxer (with its parsers,
 * which cut PES payloads into access units / ADTS frames) reads through a
 * custom AVIOContext whose read callback the owner supplies (a blocking
 * srt_recvmsg, a UDP recv, or a memory buffer in the fuzzer); each packet
 * becomes an FLV tag body like an RTMP publisher's:
 *   H.264 / H.265: Annex-B -> 4-byte length-prefixed NAL units, AUDs and
 *     parameter sets dropped from frames; the parameter sets become an
 *     avcC / hvcC sequence header, sent again whenever they change;
 *   AAC: ADTS headers stripped, an AudioSpecificConfig built from them;
 *   Opus: packets as they come, the OpusHead from the stream's extradata.
 * Timestamps: 90 kHz -> ms from the first packet, a jump of more than
 * SL_TS_DEMUX_JUMP_MS (a new encoder, a wrap) rebased to continue.
 *
 * Threading: sl_ts_demux_run() blocks in the read callback, so it runs on
 * a thread of its own (the owner's); it produces sl_buf_t bodies only
 * (never frames: those belong to the loop), handed to on_frame with
 * ownership. Budgets: frames larger than max_frame_bytes are dropped
 * (counted), the header probe reads at most SL_TS_DEMUX_PROBE_BYTES;
 * libav's own PES buffers are capped by libav (200 KB pieces).
 */
#ifndef SL_PROTO_SRT_TS_DEMUX_H
#define SL_PROTO_SRT_TS_DEMUX_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define SL_TS_DEMUX_PROBE_BYTES (1024 * 1024) /* bytes read looking for the PMT at most */
#define SL_TS_DEMUX_JUMP_MS 10000             /* larger dts jumps are rebased */
#define SL_TS_DEMUX_PARAM_MAX 1024            /* largest SPS/PPS/VPS kept */

typedef struct sl_ts_demux sl_ts_demux_t;

/** Reads up to size bytes into buf: >0 bytes read, 0 at the end, <0 an error (ends the run). */
typedef int (*sl_ts_read_cb)(void *ud, uint8_t *buf, int size);
/**
 * One frame: kind SL_FLV_VIDEO/AUDIO, its dts in ms, and its FLV tag body
 * (ownership passes to the callee). Called on the demux thread.
 */
typedef void (*sl_ts_frame_cb)(void *ud, uint8_t kind, int64_t dts_ms, sl_buf_t *body);

typedef struct sl_ts_demux_stats {
    uint64_t frames;         /* frames handed out */
    uint64_t bytes;          /* their body bytes */
    uint64_t dropped;        /* packets dropped: too large, unsupported codec, unparsable */
    uint32_t video_codec;    /* SL_CODEC_* seen, 0 none */
    uint32_t audio_codec;
} sl_ts_demux_stats_t;

/**
 * Creates a demuxer reading through read and delivering through on_frame
 * (both with ud). Nothing is read until sl_ts_demux_run. Returns NULL on
 * ENOMEM.
 */
sl_ts_demux_t *sl_ts_demux_new(sl_ts_read_cb read, sl_ts_frame_cb on_frame, void *ud,
                               size_t max_frame_bytes);
/**
 * Reads and demuxes until the read callback ends the input (0 or an
 * error), or no PMT shows within SL_TS_DEMUX_PROBE_BYTES. Returns 0 at the
 * input's end, SL_EPROTO (not MPEG-TS), SL_ENOMEM, SL_EIO.
 */
int sl_ts_demux_run(sl_ts_demux_t *d);
/** Counters so far (copied; read by the owner's thread after run or under its own lock). */
void sl_ts_demux_stats(const sl_ts_demux_t *d, sl_ts_demux_stats_t *out);
/** Frees the demuxer. NULL is ignored. Not while run is in progress. */
void sl_ts_demux_free(sl_ts_demux_t *d);

/**
 * Annex-B helpers, exposed for tests: builds an avcC record from one SPS
 * and one PPS (NAL units without start codes) into out (cap bytes).
 * Returns its length, or 0 when it does not fit or the SPS is too short.
 */
size_t sl_ts_avcc_build(const uint8_t *sps, size_t sps_len, const uint8_t *pps, size_t pps_len,
                        uint8_t *out, size_t cap);
/** Same for hvcC from a VPS, SPS and PPS; 0 when the SPS cannot be read. */
size_t sl_ts_hvcc_build(const uint8_t *vps, size_t vps_len, const uint8_t *sps, size_t sps_len,
                        const uint8_t *pps, size_t pps_len, uint8_t *out, size_t cap);

#endif
