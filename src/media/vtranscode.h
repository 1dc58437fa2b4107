/*
 * Video transcoder: the engine of ABR variants (Red5 Pro's "transcoder"
 * node role, docs/abr.md). One transcoder takes one stream's H.264 or
 * H.265 video (FLV / Enhanced RTMP video tag bodies, as the hub carries
 * them), decodes it ONCE with libavcodec, scales each picture with
 * libswscale to every variant's size and encodes N H.264 outputs with
 * libx264 (veryfast, tune zerolatency, no B-frames, CBR-like through
 * maxrate/bufsize = the variant's bitrate over one second).
 *
 * Alignment (why ABR players can switch): every output keyframe is an IDR
 * forced on exactly the pictures that were keyframes in the source, and
 * x264's own keyframe decisions (keyint, scenecut) are switched off; each
 * output picture carries the source picture's pts, and output dts are the
 * source's dts taken in decode order, so a variant keyframe has the same
 * dts and pts as the source keyframe it stands for. HLS segments of every
 * variant (and of the source) therefore start on the same timestamps.
 *
 * Threading: as media/transcode.h. The loop thread owns the object and
 * calls every function here; decoding, scaling and encoding run on one
 * dedicated worker thread, fed through a bounded queue under a mutex and a
 * condition variable; output tag bodies come back as sl_buf_t through a
 * uv_async_t and become sl_frame_t on the loop (frames belong to the loop).
 *
 * Overload: when SL_VT_QUEUE_MAX frames (or SL_VT_QUEUE_BYTES) wait, the
 * queue is emptied and input is skipped up to the next keyframe (counted
 * in `dropped`): variants lose a GOP, never drift behind the source.
 *
 * Limits: a source picture larger than SL_VT_MAX_PIXELS is refused before
 * anything is allocated for it: the decoder is opened with libavcodec's
 * max_pixels, which it checks when an SPS is activated, before the picture
 * pool exists (a size known from the configuration is checked even
 * earlier); a decoded picture wider or taller than SL_VT_MAX_DIM is
 * dropped, as is a coded frame above SL_VT_FRAME_MAX bytes.
 */
#ifndef SL_MEDIA_VTRANSCODE_H
#define SL_MEDIA_VTRANSCODE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "media/frame.h"

#define SL_VT_VARIANTS_MAX 8                /* outputs of one transcoder */
#define SL_VT_QUEUE_MAX 120                 /* input frames waiting (4 s at 30 fps) */
#define SL_VT_QUEUE_BYTES (32u << 20)       /* input bytes waiting */
#define SL_VT_OUT_MAX 1024                  /* output frames waiting for the loop */
#define SL_VT_FRAME_MAX (8u << 20)          /* larger coded frames are refused */
#define SL_VT_CONFIG_MAX 4096               /* larger avcC/hvcC are refused */
#define SL_VT_MAX_DIM 4096                  /* widest/tallest source or variant picture */
#define SL_VT_MAX_PIXELS (4096u * 2304u)    /* largest source picture */
#define SL_VT_DIM_MIN 16                    /* smallest variant side */

typedef struct sl_vtranscoder sl_vtranscoder_t;

/* One output: size (even, SL_VT_DIM_MIN..SL_VT_MAX_DIM), bitrate in bit/s, fps (0: the source's). */
typedef struct sl_vt_variant {
    uint32_t width, height;
    uint32_t bitrate;   /* bit/s: target, maxrate and one second of VBV buffer */
    uint32_t fps;       /* 0 = every source picture; else pictures are dropped down to it */
} sl_vt_variant_t;

/*
 * Receives one output frame of variant index `variant` (0-based, in the
 * order given to sl_vtranscoder_new), on the loop thread. The frame is
 * borrowed for the call (sl_frame_ref to keep it). The callback may free
 * the transcoder; no callback follows then.
 */
typedef void (*sl_vtranscoder_out_cb)(void *ud, size_t variant, sl_frame_t *frame);

typedef struct sl_vtranscoder_stats {
    uint64_t in_frames;   /* video frames accepted by push */
    uint64_t processed;   /* input frames the worker has finished (their output is queued) */
    uint64_t decoded;     /* pictures decoded */
    uint64_t out_frames;  /* frames handed to the callback (all variants) */
    uint64_t dropped;     /* input frames dropped by overload (skip to keyframe), or outputs not taken */
    uint64_t errors;      /* undecodable input, refused configurations, encoder failures */
    double worker_ms;     /* CPU time of the worker thread (thread CPU clock) */
    uint32_t src_width, src_height; /* the last decoded picture's size, 0 before */
} sl_vtranscoder_stats_t;

/**
 * True when the transcoder takes video of codec (SL_CODEC_AVC, or
 * SL_CODEC_HEVC when this libavcodec decodes it) and libx264 is present.
 * Pure; any thread.
 */
int sl_vtranscode_can_decode(uint32_t codec);

/**
 * Checks one variant against the limits above: 0 or SL_EINVAL. Pure.
 */
int sl_vt_variant_check(const sl_vt_variant_t *v);

/**
 * Creates a transcoder for n variants (1..SL_VT_VARIANTS_MAX; the array is
 * copied) and starts its worker. The encoders are opened here, so a
 * missing libx264 or a refused setting fails now. fps_hint is the source's
 * frame rate when known (metadata), else 0 (30 assumed; timestamps drive
 * the rate control anyway). preset is x264's (NULL: "veryfast"). out is called on the loop with each output
 * frame, ud passed through. Returns 0 and the transcoder (owned by the
 * caller, released with sl_vtranscoder_free) in *out_t, or SL_EINVAL
 * (arguments, a variant out of limits), SL_ENOMEM, SL_EIO (libavcodec), or
 * a libuv error. Nothing is left on error.
 */
int sl_vtranscoder_new(uv_loop_t *loop, const sl_vt_variant_t *v, size_t n, double fps_hint,
                       const char *preset, sl_vtranscoder_out_cb out, void *ud,
                       sl_vtranscoder_t **out_t);

/**
 * Feeds one source video frame: a sequence header (avcC / hvcC), a coded
 * frame, or an end-of-sequence marker (ignored). The codec bytes are
 * copied; the frame stays the caller's. Never blocks (see Overload).
 * Returns 0, SL_EINVAL (not video, or a codec sl_vtranscode_can_decode
 * refuses), SL_ETOOBIG (over SL_VT_FRAME_MAX, or a configuration over
 * SL_VT_CONFIG_MAX), SL_ENOMEM, SL_ECLOSED (being freed). Undecodable
 * content is counted by the worker, not reported here.
 */
int sl_vtranscoder_push(sl_vtranscoder_t *t, const sl_frame_t *in);

/**
 * Stops the worker (it finishes the picture in hand; the loop waits for
 * it), discards queued input and undelivered output, closes the async
 * handle; memory goes in its close callback, so the loop must run once
 * more. Safe inside the output callback. NULL is ignored.
 */
void sl_vtranscoder_free(sl_vtranscoder_t *t);

/** Copies the counters (under the lock; any thread). */
void sl_vtranscoder_stats(const sl_vtranscoder_t *t, sl_vtranscoder_stats_t *st);

/*
 * Internals shared with the tests and the fuzz target. sl__vt_make_avcc
 * builds an AVCDecoderConfigurationRecord from the first SPS and PPS of an
 * Annex B block (0, SL_EPROTO without both, SL_ENOMEM; *out is sl_malloc'ed,
 * the caller sl_frees it). sl__vt_to_avcc rewrites Annex B NAL units with
 * 4-byte lengths into out (NULL: only measures), dropping access unit
 * delimiters, and returns the length; it never reads past annexb + n.
 */
int sl__vt_make_avcc(const uint8_t *annexb, size_t n, uint8_t **out, size_t *out_len);
size_t sl__vt_to_avcc(const uint8_t *annexb, size_t n, uint8_t *out);

/* Test hook: while paused the worker takes nothing from the queue. Not for production. */
void sl__vtranscoder_pause(sl_vtranscoder_t *t, int paused);

#endif
