/*
 * VP8 over RTP (RFC 7741), between RTP and sluice's frames, whose VP8 is
 * carried in Enhanced-RTMP video bodies (FourCC 'vp08', one whole frame).
 *
 * The packetizer runs once per frame per stream through the frame cache
 * (sl_frame_rtp_payloads() in rtp.h) and writes the shortest payload
 * descriptor (no picture id: a viewer joins mid-stream anyway, and the
 * receivers sluice serves do not need it). The depacketizer reassembles
 * one publisher's packets into whole frames. Bounded by SL_RTP_MAX_FRAME.
 */
#ifndef SL_MEDIA_RTP_VP8_H
#define SL_MEDIA_RTP_VP8_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "media/rtp.h"

/**
 * Packetizes one VP8 frame into payloads of at most mtu bytes (0 =
 * SL_RTP_DEFAULT_MTU, else SL_RTP_MIN_MTU..SL_RTP_MAX_MTU), split evenly,
 * each behind a 1-byte descriptor (S set on the first); the last carries
 * the marker. On success the caller owns out->buf. Returns 0, SL_EINVAL for
 * an empty frame or a bad mtu, SL_ETOOBIG past SL_RTP_MAX_FRAME, SL_ENOMEM.
 */
int sl_vp8_packetize(const uint8_t *frame, size_t len, size_t mtu, sl_rtp_payloads_t *out);

/*
 * Called with each complete frame (bytes borrowed for the call), its RTP
 * timestamp and whether it is a keyframe (VP8 frame tag P bit clear). Runs
 * inside sl_vp8_depack_push(); must not free the depacketizer.
 */
typedef void (*sl_vp8_frame_cb)(void *ud, uint32_t rtp_ts, const uint8_t *frame, size_t len,
                                int is_key);

typedef struct sl_vp8_depack sl_vp8_depack_t;

/**
 * Makes a depacketizer for one SSRC; on_frame and ud are borrowed for its
 * life. It starts needing a keyframe. Returns NULL on allocation failure;
 * the caller owns the result (sl_vp8_depack_free()).
 */
sl_vp8_depack_t *sl_vp8_depack_new(sl_vp8_frame_cb on_frame, void *ud);

/**
 * Feeds one RTP packet (borrowed), in sequence order, gaps reported with
 * sl_vp8_depack_loss() as for H.264 (see rtp_h264.h). A frame starts at a
 * packet with S set and partition index 0 and ends at the marker bit or a
 * timestamp change. A broken frame is dropped and nothing is emitted until
 * the next keyframe. Returns 0, or SL_EPROTO for a malformed descriptor
 * (the frame is then dropped), SL_ETOOBIG past the cap. Stays usable.
 */
int sl_vp8_depack_push(sl_vp8_depack_t *d, const sl_rtp_hdr_t *h);

/** Reports a gap that will not be filled: the open frame is dropped, a keyframe needed. */
void sl_vp8_depack_loss(sl_vp8_depack_t *d);

/** 1 while the depacketizer waits for a keyframe (the caller sends PLI). */
int sl_vp8_depack_need_keyframe(const sl_vp8_depack_t *d);

/** Frees the depacketizer; NULL is ignored. */
void sl_vp8_depack_free(sl_vp8_depack_t *d);

/**
 * Builds an Enhanced-RTMP video body for one VP8 frame (0x91 keyframe or
 * 0xA1 inter frame, CodedFrames, then 'vp08' and the frame) into a new
 * sl_buf_t the caller owns. NULL on allocation failure, len 0 or over
 * SL_RTP_MAX_FRAME.
 */
sl_buf_t *sl_vp8_flv_frame_body(const uint8_t *frame, size_t len, int is_key);

#endif
