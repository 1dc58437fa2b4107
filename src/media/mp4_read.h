/*
 * Reading MP4 files back as FLV tags (mp4_read.c), for VOD of MP4
 * recordings: libavformat's mov demuxer, samples merged by decode time,
 * onMetaData and the sequence headers first. Protocol-neutral: input is a
 * file, output FLV tags (11-byte header, body, PreviousTagSize). Every
 * call blocks: worker threads only; a reader is used by one thread at a
 * time.
 */
#ifndef SL_MEDIA_MP4_READ_H
#define SL_MEDIA_MP4_READ_H

#include <stddef.h>
#include <stdint.h>

typedef struct sl_mp4_reader sl_mp4_reader_t;

/** Opens file for reading (blocking: worker threads). 0, SL_EPROTO, SL_ENOMEM. */
int sl_mp4_reader_open(const char *file, sl_mp4_reader_t **out);

/**
 * Positions the reader at the video keyframe at or before ms (the first
 * sample at or before ms without video); the next read starts with
 * metadata and the configurations. Blocking. 0 or SL_EIO.
 */
int sl_mp4_reader_seek(sl_mp4_reader_t *r, uint32_t ms);

/**
 * Appends FLV tags (11-byte header, body, PreviousTagSize: what an FLV
 * file holds after its header) to *buf (sl_malloc'd, grown as needed;
 * *len, *cap updated) until at least `want` bytes were added or the file
 * ends. The first read (and the first after a seek) starts with an
 * onMetaData tag and the sequence headers. Returns 0, 1 at the end of
 * the file, SL_ENOMEM, or SL_EIO. Blocking.
 */
int sl_mp4_reader_read(sl_mp4_reader_t *r, size_t want, uint8_t **buf, size_t *len,
                        size_t *cap);

/** Closes the reader. NULL is ignored. */
void sl_mp4_reader_close(sl_mp4_reader_t *r);

/** The file's duration in ms as libavformat sees it (0 when unknown). */
uint64_t sl_mp4_reader_duration(const sl_mp4_reader_t *r);

#endif
