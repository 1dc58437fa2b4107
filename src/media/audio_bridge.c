/*
 * Audio bridge (see audio_bridge.h): one per publisher with non-AAC audio.
 * The transcoder's output frames are pushed straight to the stream; the
 * original frames fan out to the side list. The registry of live bridges
 * is a plain list: a server has few bridged publishers and it is looked
 * up only when a player starts (DESCRIBE, a WHEP offer), never per frame.
 */
#include "media/audio_bridge.h"

#include "base/alloc.h"
#include "sluice/errors.h"

struct sl_audio_bridge {
    uv_loop_t *loop;
    sl_stream_t *st;               /* borrowed: the owner frees us before unpublishing */
    const sl_log_ctx_t *log;       /* borrowed, may be NULL */
    uint32_t codec;                /* original codec, 0 before the first frame */
    sl_frame_t *config;            /* latest original configuration (owned ref) or NULL */
    sl_transcoder_t *tc;           /* the X->AAC transcoder while it runs */
    uint64_t idle_since_ms;        /* no AAC consumer since then (0: some consumer) */
    uint64_t failed_ms;            /* the last start failed then (0: no failure pending) */
    sl_list_t sides;               /* sl_audio_side_t.link */
    sl_audio_bridge_own_cb own;    /* owner's own consumers, or NULL */
    void *own_ud;
    sl_list_t reg;                 /* in `registry` */
    sl_audio_bridge_stats_t stats;
};

/* Live bridges (loop thread only). */
static sl_list_t registry = {&registry, &registry};

sl_audio_bridge_t *sl_audio_bridge_of(const sl_stream_t *st)
{
    sl_list_t *it, *nx;
    if (!st)
        return NULL;
    sl_list_foreach_safe(it, nx, &registry) {
        sl_audio_bridge_t *b = sl_container_of(it, sl_audio_bridge_t, reg);
        if (b->st == st)
            return b;
    }
    return NULL;
}

int sl_audio_bridge_new(uv_loop_t *loop, sl_stream_t *st, const sl_log_ctx_t *log,
                        sl_audio_bridge_t **out)
{
    if (out)
        *out = NULL;
    if (!loop || !st || !out)
        return SL_EINVAL;
    if (sl_audio_bridge_of(st))
        return SL_EBUSY;
    sl_audio_bridge_t *b = sl_calloc(1, sizeof *b);
    if (!b)
        return SL_ENOMEM;
    b->loop = loop;
    b->st = st;
    b->log = log;
    sl_list_init(&b->sides);
    sl_list_push_back(&registry, &b->reg);
    *out = b;
    return 0;
}

/* The original codec's name for the log (sl_codec_name knows no G.711). */
static const char *codec_label(uint32_t codec)
{
    if (codec == SL_CODEC_FLV_AUDIO(7))
        return "PCMA";
    if (codec == SL_CODEC_FLV_AUDIO(8))
        return "PCMU";
    if (codec == SL_CODEC_OPUS)
        return "Opus";
    return sl_codec_name(codec);
}

static void stop_tc(sl_audio_bridge_t *b, const char *why)
{
    if (!b->tc)
        return;
    sl_transcoder_free(b->tc);
    b->tc = NULL;
    b->stats.transcoding = 0;
    SL_LOGI(b->log, "audio: %s->AAC transcoding stopped (%s)", codec_label(b->codec), why);
}

void sl_audio_bridge_free(sl_audio_bridge_t *b)
{
    if (!b)
        return;
    stop_tc(b, "publish stopped");
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &b->sides) {
        sl_audio_side_t *s = sl_container_of(it, sl_audio_side_t, link);
        sl_list_remove(&s->link);
        s->bridge = NULL;
    }
    sl_list_remove(&b->reg);
    if (b->config)
        sl_frame_unref(b->config);
    sl_free(b);
}

/* Transcoder output (loop thread): AAC frames into the hub. */
static void on_aac(void *ud, sl_frame_t *f)
{
    sl_audio_bridge_t *b = ud;
    sl_stream_push(b->st, f);
}

static void start_tc(sl_audio_bridge_t *b, uint64_t now, const char *why)
{
    if (b->failed_ms && now - b->failed_ms < SL_AUDIO_BRIDGE_RETRY_MS)
        return;
    int rc = sl_transcoder_new(b->loop, SL_CODEC_AAC, on_aac, b, &b->tc);
    if (rc) {
        b->tc = NULL;
        b->failed_ms = now ? now : 1;
        SL_LOGW(b->log, "audio: cannot start the %s->AAC transcoder: %s", codec_label(b->codec),
                sl_strerror(rc));
        return;
    }
    b->failed_ms = 0;
    b->stats.starts++;
    b->stats.transcoding = 1;
    /* A decoder that needs its configuration (OpusHead with its channel
     * mapping) gets the latest one first. */
    if (b->config)
        sl_transcoder_push(b->tc, b->config);
    SL_LOGI(b->log, "audio: %s->AAC transcoding started (%s)", codec_label(b->codec), why);
}

size_t sl_audio_bridge_aac_consumers(const sl_audio_bridge_t *b)
{
    const sl_stream_t *st = b->st;
    size_t own = b->own ? b->own(b->own_ud) : 0;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, (sl_list_t *)&b->sides) {
        const sl_audio_side_t *s = sl_container_of(it, sl_audio_side_t, link);
        if (s->sink && s->sink->stream == st)
            own++;
    }
    return st->n_sinks > own ? st->n_sinks - own : 0;
}

void sl_audio_bridge_update(sl_audio_bridge_t *b, uint64_t now)
{
    if (!b || !b->codec || b->codec == SL_CODEC_AAC || !sl_transcode_can_decode(b->codec)) {
        if (b)
            stop_tc(b, "not wanted");
        return;
    }
    if (sl_audio_bridge_aac_consumers(b) > 0) {
        b->idle_since_ms = 0;
        if (!b->tc)
            start_tc(b, now, "a consumer needs AAC");
        return;
    }
    if (!b->tc)
        return;
    if (!b->idle_since_ms)
        b->idle_since_ms = now ? now : 1;
    else if (now - b->idle_since_ms >= SL_AUDIO_BRIDGE_GRACE_MS)
        stop_tc(b, "no consumer needs AAC");
}

void sl_audio_bridge_restart(sl_audio_bridge_t *b, const char *why)
{
    if (!b || !b->tc)
        return;
    stop_tc(b, why);
    start_tc(b, uv_now(b->loop), why);
}

void sl_audio_bridge_set_own(sl_audio_bridge_t *b, sl_audio_bridge_own_cb fn, void *ud)
{
    b->own = fn;
    b->own_ud = fn ? ud : NULL;
}

void sl_audio_bridge_push(sl_audio_bridge_t *b, sl_frame_t *f)
{
    if (!b || !f || f->kind != SL_FLV_AUDIO)
        return;
    if (f->codec == SL_CODEC_AAC) {
        /* A source that is AAC now (a pull's standby file): nothing to
         * bridge; players that start now are told AAC, not the old codec. */
        if (b->codec && b->codec != SL_CODEC_AAC) {
            stop_tc(b, "the publisher's audio is AAC now");
            if (b->config)
                sl_frame_unref(b->config);
            b->config = NULL;
            b->codec = SL_CODEC_AAC;
        }
        sl_stream_push(b->st, f);
        return;
    }
    b->stats.in_frames++;
    if (f->codec != b->codec) {
        if (b->codec && b->tc)
            stop_tc(b, "the publisher changed codec");
        if (b->config) {
            sl_frame_unref(b->config);
            b->config = NULL;
        }
        b->codec = f->codec;
    }
    if (f->flags & SL_FRAME_CONFIG) {
        if (b->config)
            sl_frame_unref(b->config);
        b->config = sl_frame_ref(f);
    }
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &b->sides) {
        sl_audio_side_t *s = sl_container_of(it, sl_audio_side_t, link);
        b->stats.side_frames++;
        s->on_frame(s, f);
    }
    if (!sl_transcode_can_decode(f->codec)) {
        /* Nothing to make AAC from: the hub gets the original, as before
         * the bridge existed (players that know the codec still play it). */
        b->stats.errors++;
        sl_stream_push(b->st, f);
        return;
    }
    sl_audio_bridge_update(b, uv_now(b->loop));
    if (b->tc && sl_transcoder_push(b->tc, f))
        b->stats.errors++;
}

uint32_t sl_audio_bridge_codec(const sl_audio_bridge_t *b)
{
    return b ? b->codec : 0;
}

sl_frame_t *sl_audio_bridge_config(const sl_audio_bridge_t *b)
{
    return b ? b->config : NULL;
}

void sl_audio_bridge_set_codec(sl_audio_bridge_t *b, uint32_t codec)
{
    if (b && !b->codec)
        b->codec = codec;
}

int sl_audio_bridge_side_add(sl_audio_bridge_t *b, sl_audio_side_t *s)
{
    if (!b || !s || !s->on_frame || s->bridge)
        return SL_EINVAL;
    s->bridge = b;
    sl_list_push_back(&b->sides, &s->link);
    if (b->config)
        s->on_frame(s, b->config);
    return 0;
}

void sl_audio_bridge_side_remove(sl_audio_side_t *s)
{
    if (!s || !s->bridge)
        return;
    sl_list_remove(&s->link);
    s->bridge = NULL;
}

void sl_audio_bridge_stats(const sl_audio_bridge_t *b, sl_audio_bridge_stats_t *st,
                           sl_transcoder_stats_t *tc)
{
    *st = b->stats;
    if (tc) {
        if (b->tc)
            sl_transcoder_stats(b->tc, tc);
        else
            *tc = (sl_transcoder_stats_t){0};
    }
}
