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
 * Frames cross threads (server.workers > 1: players of one stream on
 * several event loops, docs/internals/threads.md). Everything but the
 * refcount and the encoding cache is written once, by the thread that
 * makes the frame, before the frame is pushed, and only read afterwards.
 * The refcount is atomic (as sl_buf_t's). Each slot of the encoding cache
 * is filled at most once under a lock-free once-guard: a builder first
 * claims the slot for its parameter (sl_frame_enc_claim, one CAS on
 * enc_param), builds, then publishes the buffer with a release store
 * (sl_frame_enc_publish); readers load it with acquire
 * (sl_frame_enc_get). A thread that loses the claim (another thread is
 * building it, or built it for another parameter) writes a private
 * encoding of its own for that one frame: nobody waits, nothing is
 * replaced under a reader (the RTP slot too: media/rtp.h).
 */
#ifndef SL_MEDIA_FRAME_H
#define SL_MEDIA_FRAME_H

#include <stdatomic.h>
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
    SL_ENC_RTP_ALT,  /* the same for a second MTU (RTSP's and WebRTC's differ by default) */
    SL_ENC_MAX
} sl_enc_slot_t;

typedef struct sl_frame {
    _Atomic uint32_t refs; /* owners (stream caches, queues, writes in flight), on any loop */
    uint8_t kind;         /* SL_FLV_AUDIO, SL_FLV_VIDEO or SL_FLV_DATA */
    uint8_t flags;        /* SL_FRAME_* */
    uint16_t data_off;    /* codec bytes start here in body */
    uint32_t codec;       /* SL_CODEC_* (0 for data) */
    uint32_t dts_ms;      /* decode timestamp in the stream's timeline */
    int32_t cts_ms;       /* composition offset: pts = dts + cts */
    sl_buf_t *body;       /* the FLV tag body; owned reference */
    _Atomic(sl_buf_t *) enc[SL_ENC_MAX]; /* cached output encodings (owned refs or NULL);
                                            set once, see sl_frame_enc_claim */
    _Atomic uint32_t enc_param[SL_ENC_MAX]; /* what each slot is claimed/built for (chunk size,
                                               MTU, 1 for FLV tags); 0 = unclaimed */
} sl_frame_t;

/**
 * Makes a frame of the given kind from an FLV tag body, parsing codec,
 * keyframe and config flags from it. Takes over the caller's reference to
 * body in every case (it is released on error). Returns the new frame (one
 * reference owned by the caller) in *out, or SL_EPROTO for an unparsable
 * audio/video body, SL_ENOMEM.
 */
int sl_frame_new(uint8_t kind, uint32_t dts_ms, sl_buf_t *body, sl_frame_t **out);

/** Takes another reference (any thread; the caller holds one). */
static inline sl_frame_t *sl_frame_ref(sl_frame_t *f)
{
    SL_ASSERT(atomic_load_explicit(&f->refs, memory_order_relaxed) > 0);
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}
/**
 * Drops a reference (any thread); the last one frees the body and cached
 * encodings and recycles the header into the calling thread's pool.
 */
void sl_frame_unref(sl_frame_t *f);
/** Size used for queue accounting: the body length. */
static inline uint32_t sl_frame_size(const sl_frame_t *f) { return f->body->len; }

/**
 * The encoding in slot s if it was built for param, else NULL (not built
 * yet, still being built by another thread, or built for another param).
 * Borrowed: valid while the caller holds a reference to f. Any thread,
 * lock-free. Inline: once per frame per player on every flush.
 */
static inline sl_buf_t *sl_frame_enc_get(sl_frame_t *f, sl_enc_slot_t s, uint32_t param)
{
    sl_buf_t *b = atomic_load_explicit(&f->enc[s], memory_order_acquire);
    if (b && atomic_load_explicit(&f->enc_param[s], memory_order_relaxed) == param)
        return b;
    return NULL;
}
/**
 * The once-guard of slot s: returns 1 when the caller has claimed the
 * slot for param (nonzero) and must build the encoding and then call
 * sl_frame_enc_publish, or sl_frame_enc_abandon if building fails; 0 when
 * the slot is already claimed (by another builder, possibly still at work,
 * or for another param): the caller then writes a private encoding.
 */
static inline int sl_frame_enc_claim(sl_frame_t *f, sl_enc_slot_t s, uint32_t param)
{
    SL_ASSERT(param != 0); /* 0 means unclaimed */
    uint32_t expect = 0;
    return atomic_compare_exchange_strong_explicit(&f->enc_param[s], &expect, param,
                                                   memory_order_acq_rel, memory_order_acquire);
}
/** Publishes the claimed slot's encoding; takes over the caller's reference to b. */
static inline void sl_frame_enc_publish(sl_frame_t *f, sl_enc_slot_t s, sl_buf_t *b)
{
    SL_ASSERT(atomic_load_explicit(&f->enc[s], memory_order_relaxed) == NULL); /* once */
    atomic_store_explicit(&f->enc[s], b, memory_order_release);
}
/** Releases a claim whose encoding could not be built (another thread may try again). */
static inline void sl_frame_enc_abandon(sl_frame_t *f, sl_enc_slot_t s)
{
    atomic_store_explicit(&f->enc_param[s], 0, memory_order_release);
}
/** Number of frames alive, every thread (for leak checks and /metrics). */
int64_t sl_frame_count(void);
/**
 * Frees the calling thread's recycled frame headers (at shutdown, when a
 * worker thread ends, and in leak-checking tests). Each thread keeps its
 * own pool: a frame is recycled by the thread that drops its last
 * reference.
 */
void sl_frame_pool_drain(void);

#endif
