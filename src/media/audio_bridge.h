/*
 * Audio bridge: how a publisher whose audio is not AAC (Opus from WHIP,
 * RTSP or SRT; G.711 A-law/mu-law from IP cameras; MP3 or G.711 from a
 * restream pull) reaches every protocol. The hub stream gets AAC (what
 * HLS, RTMP and HTTP-FLV players, the recorder and restream pushes take)
 * from one transcoder (media/transcode.h, off the loop); the original
 * frames go, untouched, to "side" subscribers: players that take the
 * original codec (RTSP players, WHEP viewers of Opus) register one beside
 * their hub sink and drop the hub's AAC.
 *
 * Policy: lazy. The transcoder runs while the stream has at least one
 * sink that is not fed by a side (each of HLS, the recorder, an RTMP, FLV
 * or SRT player, a restream push is such a sink), checked at every input
 * frame; it stops SL_AUDIO_BRIDGE_GRACE_MS after the last one left, so a
 * reconnecting player or a toggled HLS does not restart it. Why lazy and
 * not always: the transcoder costs ~2-3% of a core per stream (measured,
 * docs/performance.md), and a camera farm republished only over RTSP or
 * WebRTC would burn that for nobody; every server-side output is a sink,
 * so nothing that needs AAC misses the start, and its first AAC frame
 * comes within one input frame (20 ms) plus the encoder's delay. The only
 * cost: a player joining while nothing needed AAC gets its first audio
 * ~50 ms after video.
 *
 * Finding a stream's bridge: sl_audio_bridge_of() looks it up by stream
 * (a registry in this file, loop thread only), so a player protocol can
 * learn the original codec (for its SDP) without a field on the stream.
 *
 * Lifetime: the publisher owns the bridge, created after sl_hub_publish
 * and freed before sl_stream_unpublish. Everything runs on the loop
 * thread. Memory: the transcoder's bounded queues, one cached config.
 */
#ifndef SL_MEDIA_AUDIO_BRIDGE_H
#define SL_MEDIA_AUDIO_BRIDGE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/list.h"
#include "base/log.h"
#include "media/frame.h"
#include "media/stream.h"
#include "media/transcode.h"

#define SL_AUDIO_BRIDGE_GRACE_MS 5000 /* AAC keeps running this long after its last consumer left */
#define SL_AUDIO_BRIDGE_RETRY_MS 5000 /* a transcoder that failed to start is retried after this */

typedef struct sl_audio_bridge sl_audio_bridge_t;
typedef struct sl_audio_side sl_audio_side_t;

/* Receives one original-codec frame (borrowed: sl_frame_ref to keep it). */
typedef void (*sl_audio_side_cb)(sl_audio_side_t *side, sl_frame_t *frame);

/*
 * Counts the stream's sinks the owner feeds the original codec itself
 * (WHIP's own WebRTC viewers): they do not need AAC either.
 */
typedef size_t (*sl_audio_bridge_own_cb)(void *ud);

/* A side subscriber, embedded in the player and set up by it. */
struct sl_audio_side {
    sl_audio_side_cb on_frame; /* set by the owner */
    void *ctx;                 /* owner's context */
    const sl_sink_t *sink;     /* the owner's hub sink on the same stream (not an AAC consumer), or NULL */
    sl_audio_bridge_t *bridge; /* set while attached */
    sl_list_t link;            /* in the bridge's sides */
};

typedef struct sl_audio_bridge_stats {
    uint64_t in_frames;   /* original-codec frames pushed */
    uint64_t side_frames; /* deliveries to side subscribers */
    uint64_t starts;      /* transcoder starts */
    uint64_t errors;      /* frames the transcoder refused (plus its own error count, see stats) */
    int transcoding;      /* the transcoder runs now */
} sl_audio_bridge_stats_t;

/**
 * Creates the bridge of stream st (borrowed: valid until the owner frees
 * the bridge, which it must do before sl_stream_unpublish) and registers
 * it for sl_audio_bridge_of. log (may be NULL) is borrowed for the
 * bridge's life and names the publisher in its lines. Nothing starts
 * until the first frame. Returns 0 and the bridge (owned by the caller)
 * in *out, SL_EINVAL (NULL arguments), SL_EBUSY (st has a bridge already),
 * SL_ENOMEM.
 */
int sl_audio_bridge_new(uv_loop_t *loop, sl_stream_t *st, const sl_log_ctx_t *log,
                        sl_audio_bridge_t **out);

/**
 * Stops the transcoder, detaches every side (their `bridge` becomes NULL;
 * no callback), unregisters and frees the bridge. NULL is ignored.
 */
void sl_audio_bridge_free(sl_audio_bridge_t *b);

/**
 * Feeds one audio frame of the publisher (borrowed). AAC goes to the
 * stream as is (so a publisher may route all its audio here). Any other
 * codec goes to every side as is, and to the transcoder when something
 * needs AAC (that decision is taken here, see the policy above). A codec
 * the transcoder cannot decode still reaches the sides and the hub as is
 * (counted in errors). Never fails: problems are counted.
 */
void sl_audio_bridge_push(sl_audio_bridge_t *b, sl_frame_t *f);

/**
 * Re-evaluates the lazy policy without a frame (a publisher's tick): starts
 * or stops the transcoder. now is the loop time in ms.
 */
void sl_audio_bridge_update(sl_audio_bridge_t *b, uint64_t now);

/**
 * Restarts the transcoder (if it runs) so that its timeline restarts at the
 * next input frame: for a publisher whose audio clock moved (a switch to
 * sender-report timing). why goes to the log.
 */
void sl_audio_bridge_restart(sl_audio_bridge_t *b, const char *why);

/** Sets the owner's own-consumer counter (see sl_audio_bridge_own_cb); fn NULL clears it. */
void sl_audio_bridge_set_own(sl_audio_bridge_t *b, sl_audio_bridge_own_cb fn, void *ud);

/** The bridge of stream st, or NULL. Borrowed: valid until its publisher stops. */
sl_audio_bridge_t *sl_audio_bridge_of(const sl_stream_t *st);

/**
 * The original codec (SL_CODEC_*; 0 before the first frame) and its latest
 * configuration frame (OpusHead; NULL when there is none: G.711, MP3,
 * WebRTC Opus). The frame is borrowed until the next push.
 */
uint32_t sl_audio_bridge_codec(const sl_audio_bridge_t *b);
sl_frame_t *sl_audio_bridge_config(const sl_audio_bridge_t *b);

/**
 * Sets the codec before the first frame (from an SDP or a demuxer's stream
 * list) so that a player describing the stream early sees it.
 */
void sl_audio_bridge_set_codec(sl_audio_bridge_t *b, uint32_t codec);

/**
 * Attaches side s (on_frame, ctx and sink set by the caller; s not
 * attached elsewhere) to b: from now on it gets every original-codec
 * frame, starting with the configuration if one is known. Returns 0 or
 * SL_EINVAL.
 */
int sl_audio_bridge_side_add(sl_audio_bridge_t *b, sl_audio_side_t *s);

/** Detaches s (no-op when not attached). Safe inside its own callback. */
void sl_audio_bridge_side_remove(sl_audio_side_t *s);

/** Sinks of the stream that need AAC now (the policy's input; for tests and the API). */
size_t sl_audio_bridge_aac_consumers(const sl_audio_bridge_t *b);

/** Copies the counters; the transcoder's own (if running) go to *tc when tc is not NULL. */
void sl_audio_bridge_stats(const sl_audio_bridge_t *b, sl_audio_bridge_stats_t *st,
                           sl_transcoder_stats_t *tc);

#endif
