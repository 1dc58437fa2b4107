/*
 * A media frame: one audio, video or data message of a live stream,
 * immutable once pushed to a stream and shared by every subscriber.
 *
 * The payload is an FLV tag body (what RTMP carries and what every
 * protocol can be fed from; see flv.h for the layout), held as one
 * refcounted sl_buf_t. Output encodings of the frame (the RTMP chunked
 * body for the server's chunk size, an HTTP-FLV tag, ...) are built once,
 * lazily, by the first subscriber of that format that needs them, and kept
 * on the frame in `enc[]` so every other subscriber writes the same bytes.
 *
 * Frames live on the loop thread: refcounts are plain integers.
 */
#ifndef SL_MEDIA_FRAME_H
#define SL_MEDIA_FRAME_H

#include <stdint.h>

#include "base/buf.h"
#include "media/flv.h"

/* Frame flags. */
#define SL_FRAME_KEY 0x01     /* video keyframe (a subscriber may start here) */
#define SL_FRAME_CONFIG 0x02  /* codec configuration (sequence header) */
#define SL_FRAME_META 0x04    /* stream metadata (onMetaData) */
#define SL_FRAME_EOS 0x08     /* end of sequence */

/* Slots of the per-format encoding cache. */
typedef enum {
    SL_ENC_RTMP = 0, /* chunked body for the server chunk size (see rtmp_chunk.h) */
    SL_ENC_FLV_TAG,  /* HTTP-FLV tag (header + body + previous tag size) */
    SL_ENC_RTP,      /* RTP payloads + packet index for the payload MTU (see rtp.h) */
    SL_ENC_MAX
} sl_enc_slot_t;

typedef struct sl_frame {
    uint32_t refs;        /* owners (stream caches, queues, writes in flight) */
    uint8_t kind;         /* SL_FLV_AUDIO, SL_FLV_VIDEO or SL_FLV_DATA */
    uint8_t flags;        /* SL_FRAME_* */
    uint16_t data_off;    /* codec bytes start here in body */
    uint32_t codec;       /* SL_CODEC_* (0 for data) */
    uint32_t dts_ms;      /* decode timestamp in the stream's timeline */
    int32_t cts_ms;       /* composition offset: pts = dts + cts */
    sl_buf_t *body;       /* the FLV tag body; owned reference */
    sl_buf_t *enc[SL_ENC_MAX]; /* cached output encodings (owned refs or NULL) */
    uint32_t enc_param[SL_ENC_MAX]; /* what each encoding was built for (e.g. chunk size) */
} sl_frame_t;

/**
 * Makes a frame of the given kind from an FLV tag body, parsing codec,
 * keyframe and config flags from it. Takes over the caller's reference to
 * body in every case (it is released on error). Returns the new frame (one
 * reference owned by the caller) in *out, or SL_EPROTO for an unparsable
 * audio/video body, SL_ENOMEM.
 */
int sl_frame_new(uint8_t kind, uint32_t dts_ms, sl_buf_t *body, sl_frame_t **out);

/** Takes another reference. */
static inline sl_frame_t *sl_frame_ref(sl_frame_t *f)
{
    SL_ASSERT(f->refs > 0);
    f->refs++;
    return f;
}
/** Drops a reference; the last one frees the body and cached encodings. */
void sl_frame_unref(sl_frame_t *f);
/** Size used for queue accounting: the body length. */
static inline uint32_t sl_frame_size(const sl_frame_t *f) { return f->body->len; }

/** Number of frames alive (for leak checks and /metrics). */
int64_t sl_frame_count(void);
/** Frees the recycled frame headers (at shutdown, and in leak-checking tests). */
void sl_frame_pool_drain(void);

#endif
