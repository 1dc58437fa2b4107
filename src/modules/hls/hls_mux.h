/*
 * The HLS muxer of one stream: FFmpeg's libavformat (the mpegts muxer for
 * MPEG-TS segments, the mp4 muxer in fragmented mode for fMP4/CMAF)
 * writing into memory through custom I/O (avio_alloc_context with a write
 * callback into an sl_wbuf_t). No transcoding and no hand-written
 * container code: frames go in as they came (FLV tag bodies whose codec
 * bytes are AVCC/HVCC NAL units or raw AAC), and the muxers' own bitstream
 * filters (h264_mp4toannexb / hevc_mp4toannexb, ADTS for AAC) make TS out
 * of them. Codec configuration records become extradata.
 *
 * Cutting: the caller decides where parts and segments end (hls.c, on
 * keyframes and part targets) and calls sl_hls_mux_cut() just before the
 * first frame of the next piece; the bytes written since the previous cut
 * come back as one buffer. For fMP4 each cut is one CMAF chunk (moof +
 * mdat), and a segment is the concatenation of its chunks; the init
 * section (ftyp + moov) comes back from sl_hls_mux_new().
 *
 * Exact sample durations (fMP4): the mp4 muxer takes the duration of a
 * fragment's last sample from the packet, and a wrong guess shifts every
 * later fragment's decode time. So each track holds back its newest frame
 * until the next frame of that track tells its duration (one frame of
 * latency, 20-40 ms); a cut writes the held frame of the track that
 * triggers it (its successor is the frame being cut before) and leaves the
 * other track's held frame for the next chunk. Only the last frames of a
 * publish get an estimated duration (the track's last interval).
 *
 * Timestamps are the publisher's, in milliseconds, kept strictly
 * increasing per track (a repeated or backward dts is moved one
 * millisecond after the previous one); fMP4 decode times are absolute
 * (movflags frag_discont), so audio and video stay aligned.
 *
 * Memory: libav allocates with its own allocator (av_malloc); those bytes
 * are not counted by sl_malloc. The output buffer is capped at
 * SL_BUF_MAX. Loop thread only; a muxer is cheap per frame (packetising
 * already-encoded data), see docs/hls.md for measurements.
 */
#ifndef SL_PROTO_HLS_MUX_H
#define SL_PROTO_HLS_MUX_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "media/frame.h"

typedef struct sl_hls_mux sl_hls_mux_t;

/* One track as the muxer needs it. */
typedef struct sl_hls_track {
    uint32_t codec;          /* SL_CODEC_AVC, SL_CODEC_HEVC or SL_CODEC_AAC */
    const uint8_t *config;   /* avcC / hvcC / AudioSpecificConfig bytes (borrowed for the call) */
    size_t config_len;
    const uint8_t *sample;   /* video: a keyframe's codec bytes, to read the picture size (may be NULL) */
    size_t sample_len;
    uint32_t width, height;  /* video: size when known from metadata (used if the probe fails) */
} sl_hls_track_t;

/** 1 when codec can be carried in the format (fmp4 0: MPEG-TS). */
int sl_hls_codec_supported(uint32_t codec, int fmp4);

/**
 * Reads sample rate and channel count from an AAC AudioSpecificConfig.
 * Returns 0 or SL_EPROTO (too short, bad frequency index).
 */
int sl_hls_aac_config(const uint8_t *asc, size_t len, uint32_t *sample_rate, uint32_t *channels);

/**
 * Creates a muxer with a video and/or an audio track (NULL when absent;
 * not both). For fMP4, *init_out receives the init section (one reference
 * owned by the caller); for TS it is NULL. Returns 0, SL_EINVAL (no track,
 * unsupported codec, unusable configuration), SL_ENOMEM, or SL_EIO when
 * libavformat refuses (logged).
 */
int sl_hls_mux_new(int fmp4, const sl_hls_track_t *video, const sl_hls_track_t *audio,
                   sl_hls_mux_t **out, sl_buf_t **init_out);

/**
 * Writes one media frame (borrowed; fMP4 keeps a reference to the held
 * frame). Frames of a kind the muxer has no track for, config, metadata
 * and empty frames are ignored. 0, SL_ENOMEM or SL_EIO (the muxer is then
 * unusable: free it).
 */
int sl_hls_mux_write(sl_hls_mux_t *m, sl_frame_t *f);

/**
 * Ends the current piece just before `next` (the first frame of the next
 * piece, borrowed, may be NULL) and returns its bytes in *out (one
 * reference owned by the caller; NULL when nothing was written). With
 * segment_start the next piece starts a new segment (TS: the PAT/PMT are
 * repeated at its start). 0, SL_ENOMEM, SL_ETOOBIG or SL_EIO.
 */
int sl_hls_mux_cut(sl_hls_mux_t *m, const sl_frame_t *next, int segment_start, sl_buf_t **out);

/**
 * Writes the held frames (estimated durations) and returns the last
 * bytes as sl_hls_mux_cut would. Used when the publisher leaves.
 */
int sl_hls_mux_finish(sl_hls_mux_t *m, sl_buf_t **out);

/** Frees the muxer and libav's state; pending bytes are dropped. NULL is ignored. */
void sl_hls_mux_free(sl_hls_mux_t *m);

/** The dts a frame of that kind gets in the muxer (after the strictly-increasing fix). */
uint32_t sl_hls_mux_adjusted_dts(const sl_hls_mux_t *m, const sl_frame_t *f);

/** The video track's picture size as written in the init section (0 when unknown or no video). */
void sl_hls_mux_video_size(const sl_hls_mux_t *m, uint32_t *width, uint32_t *height);

/**
 * Routes libav's own log lines into sluice's log (errors at warn, the
 * rest at debug). Process-wide; call once at start.
 */
void sl_hls_mux_log_init(void);

#endif
