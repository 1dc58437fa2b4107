/*
 * Hub frames in, MPEG-TS out: the muxer of an SRT reader. libavformat's
 * mpegts muxer writes into memory through a custom AVIOContext; frames go
 * in as they came (AVCC/HVCC NAL units, raw AAC, Opus) and the muxer's own
 * bitstream filters make Annex-B and ADTS of them, as in the HLS
 * segmenter. After each frame the bytes written so far are taken with
 * sl_ts_mux_take(): whole 188-byte packets, sent as SRT messages.
 *
 * One muxer per reader (not per stream): a reader joins on the hub's GOP
 * replay, which needs continuity counters and PAT/PMT of its own; the
 * cost is the packetising of already-encoded data (see docs/srt.md).
 * Loop thread only. The output buffer is capped (SL_TS_MUX_OUT_MAX).
 */
#ifndef SL_PROTO_SRT_TS_MUX_H
#define SL_PROTO_SRT_TS_MUX_H

#include <stddef.h>
#include <stdint.h>

#include "media/frame.h"

#define SL_TS_MUX_OUT_MAX (16u << 20) /* bytes one frame may produce */

typedef struct sl_ts_mux sl_ts_mux_t;

/**
 * Creates a muxer for the tracks whose sequence headers are given (video
 * and/or audio config frames, borrowed; NULL when the stream has no such
 * track). Supported: H.264, H.265, AAC, Opus. Returns 0, SL_EINVAL (no
 * usable track), SL_ENOMEM or SL_EIO.
 */
int sl_ts_mux_new(const sl_frame_t *video_config, const sl_frame_t *audio_config, sl_ts_mux_t **out);
/**
 * Muxes one frame (borrowed). Config, metadata and frames of a track the
 * muxer lacks are ignored. 0, SL_ENOMEM, SL_ETOOBIG or SL_EIO (free it).
 */
int sl_ts_mux_write(sl_ts_mux_t *m, const sl_frame_t *f);
/** The bytes written since the last take (borrowed until the next call); *len may be 0. */
const uint8_t *sl_ts_mux_take(sl_ts_mux_t *m, size_t *len);
/** 1 when the muxer was built for these configs (same codec bytes), else the caller rebuilds. */
int sl_ts_mux_matches(const sl_ts_mux_t *m, const sl_frame_t *video_config, const sl_frame_t *audio_config);
/** Frees it. NULL is ignored. */
void sl_ts_mux_free(sl_ts_mux_t *m);

#endif
