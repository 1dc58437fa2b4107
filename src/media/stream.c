/*
 * The stream hub (see stream.h).
 *
 * GOP cache: on every video keyframe the cache is emptied and restarted
 * with that keyframe; every later audio/video/data frame is appended until
 * the byte bound is reached, after which the cache is abandoned until the
 * next keyframe (a newcomer then waits for the next keyframe rather than
 * starting on a broken picture). Streams without video cache nothing but
 * their configs and metadata: audio starts at the next frame anyway.
 */
#include "media/stream.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/time.h"
#include "sluice/errors.h"

struct sl_hub {
    sl_map_t streams;      /* name -> sl_stream_t* */
    size_t gop_max_bytes;  /* per-stream GOP cache bound */
    uint64_t next_seq;     /* publishes so far */
};

sl_hub_t *sl_hub_new(size_t gop_max_bytes)
{
    sl_hub_t *hub = sl_calloc(1, sizeof(*hub));
    if (!hub)
        return NULL;
    sl_map_init(&hub->streams);
    hub->gop_max_bytes = gop_max_bytes;
    return hub;
}

void sl_hub_free(sl_hub_t *hub)
{
    if (!hub)
        return;
    sl_map_cleanup(&hub->streams);
    sl_free(hub);
}

sl_stream_t *sl_hub_find(sl_hub_t *hub, const char *name)
{
    return sl_map_get(&hub->streams, name);
}

size_t sl_hub_count(const sl_hub_t *hub) { return hub->streams.n; }

sl_stream_t *sl_hub_next(sl_hub_t *hub, size_t *pos)
{
    sl_map_entry_t *e = sl_map_next(&hub->streams, pos);
    return e ? e->val : NULL;
}

static void gop_clear(sl_stream_t *st)
{
    for (size_t i = 0; i < st->gop_n; i++)
        sl_frame_unref(st->gop[i]);
    st->gop_n = 0;
    st->gop_bytes = 0;
}

static sl_stream_t *stream_get(sl_hub_t *hub, const char *name)
{
    sl_stream_t *st = sl_map_get(&hub->streams, name);
    if (st)
        return st;
    st = sl_calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->name = sl_strdup(name);
    if (!st->name || sl_map_set(&hub->streams, name, st)) {
        sl_free(st->name);
        sl_free(st);
        return NULL;
    }
    st->hub = hub;
    st->gop_max_bytes = hub->gop_max_bytes;
    st->create_time_ms = sl_time_wall_ms();
    sl_list_init(&st->sinks);
    sl_list_init(&st->relayed);
    return st;
}

static void stream_maybe_free(sl_stream_t *st)
{
    if (st->publisher || st->n_sinks || st->pushing)
        return;
    sl_map_del(&st->hub->streams, st->name);
    gop_clear(st);
    sl_free(st->gop);
    sl_frame_unref(st->video_config);
    sl_frame_unref(st->audio_config);
    sl_frame_unref(st->metadata);
    sl_free(st->name);
    sl_free(st);
}

int sl_hub_publish(sl_hub_t *hub, const char *name, void *publisher, sl_stream_t **out)
{
    *out = NULL;
    sl_stream_t *st = stream_get(hub, name);
    if (!st)
        return SL_ENOMEM;
    if (st->publisher)
        return SL_EBUSY;
    st->publisher = publisher;
    st->seq = ++hub->next_seq;
    st->publish_time_ms = sl_time_wall_ms();
    uint8_t r[16];
    if (RAND_bytes(r, sizeof r) != 1)
        memset(r, 0x5a, sizeof r);
    r[6] = (uint8_t)((r[6] & 0x0F) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3F) | 0x80);
    snprintf(st->uuid, sizeof st->uuid,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2],
             r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
    st->width = st->height = 0;
    st->fps = st->meta_video_kbps = st->meta_audio_kbps = 0;
    memset(&st->stats, 0, sizeof(st->stats));
    st->stats.total_sinks = st->n_players;
    st->stats.max_sinks = st->n_players;
    st->video_codec = st->audio_codec = SL_CODEC_NONE;
    sl_list_t *it, *nx;
    st->pushing++;
    sl_list_foreach_safe(it, nx, &st->sinks) {
        sl_sink_t *s = sl_container_of(it, sl_sink_t, link);
        if (s->ops->on_publish)
            s->ops->on_publish(s);
    }
    sl_list_foreach_safe(it, nx, &st->relayed) {
        sl_sink_t *s = sl_container_of(it, sl_sink_t, link);
        if (s->ops->on_publish)
            s->ops->on_publish(s);
    }
    st->pushing--;
    *out = st;
    return 0;
}

void sl_stream_unpublish(sl_stream_t *st)
{
    st->publisher = NULL;
    gop_clear(st);
    sl_frame_unref(st->video_config);
    sl_frame_unref(st->audio_config);
    sl_frame_unref(st->metadata);
    st->video_config = st->audio_config = st->metadata = NULL;
    sl_list_t *it, *nx;
    st->pushing++;
    sl_list_foreach_safe(it, nx, &st->sinks) {
        sl_sink_t *s = sl_container_of(it, sl_sink_t, link);
        if (s->ops->on_unpublish)
            s->ops->on_unpublish(s);
    }
    sl_list_foreach_safe(it, nx, &st->relayed) {
        sl_sink_t *s = sl_container_of(it, sl_sink_t, link);
        if (s->ops->on_unpublish)
            s->ops->on_unpublish(s);
    }
    st->pushing--;
    stream_maybe_free(st);
}

static void gop_append(sl_stream_t *st, sl_frame_t *f)
{
    if (st->gop_n == 0 && !(f->kind == SL_FLV_VIDEO && (f->flags & SL_FRAME_KEY)))
        return; /* the cache always starts on a keyframe */
    if (st->gop_bytes + sl_frame_size(f) > st->gop_max_bytes) {
        gop_clear(st); /* too long a GOP: newcomers wait for the next keyframe */
        return;
    }
    if (st->gop_n == st->gop_cap) {
        size_t ncap = st->gop_cap ? st->gop_cap * 2 : 256;
        sl_frame_t **ng = sl_realloc(st->gop, ncap * sizeof(*ng));
        if (!ng) {
            gop_clear(st);
            return;
        }
        st->gop = ng;
        st->gop_cap = ncap;
    }
    st->gop[st->gop_n++] = sl_frame_ref(f);
    st->gop_bytes += sl_frame_size(f);
}

static void replace(sl_frame_t **slot, sl_frame_t *f)
{
    sl_frame_unref(*slot);
    *slot = sl_frame_ref(f);
}

void sl_stream_push(sl_stream_t *st, sl_frame_t *f)
{
    st->stats.frames_in++;
    st->stats.bytes_in += sl_frame_size(f);
    st->last_dts = f->dts_ms;
    if (f->flags & SL_FRAME_META) {
        replace(&st->metadata, f);
    } else if (f->flags & SL_FRAME_CONFIG) {
        if (f->kind == SL_FLV_VIDEO)
            replace(&st->video_config, f);
        else if (f->kind == SL_FLV_AUDIO)
            replace(&st->audio_config, f);
    } else if (st->gop_max_bytes) {
        if (f->kind == SL_FLV_VIDEO && (f->flags & SL_FRAME_KEY))
            gop_clear(st);
        gop_append(st, f);
    }
    if (f->kind == SL_FLV_VIDEO) {
        st->video_codec = f->codec;
        if (!(f->flags & SL_FRAME_CONFIG)) {
            st->stats.video_frames++;
            if (f->flags & SL_FRAME_KEY) {
                if (st->stats.keyframes)
                    st->stats.key_interval_ms = f->dts_ms - st->stats.last_key_dts;
                st->stats.keyframes++;
                st->stats.last_key_dts = f->dts_ms;
            }
        }
    } else if (f->kind == SL_FLV_AUDIO) {
        st->audio_codec = f->codec;
    }
    sl_list_t *it, *nx;
    st->pushing++;
    sl_list_foreach_safe(it, nx, &st->sinks) {
        sl_sink_t *s = sl_container_of(it, sl_sink_t, link);
        s->ops->on_frame(s, f);
    }
    st->pushing--;
}

void sl_stream_sink_relayed(sl_sink_t *sink, int on)
{
    sl_stream_t *st = sink->stream;
    if (!st || sink->relayed == !!on)
        return;
    SL_ASSERT(!st->pushing); /* the push loop's next pointer must stay in its list */
    sl_list_remove(&sink->link);
    sl_list_push_back(on ? &st->relayed : &st->sinks, &sink->link);
    sink->relayed = !!on;
}

void sl_stream_gop_restart(sl_stream_t *st)
{
    gop_clear(st); /* gop_append takes nothing until a keyframe */
}

void sl_stream_replay(sl_stream_t *st, sl_sink_t *sink)
{
    if (!st->publisher)
        return;
    if (st->metadata)
        sink->ops->on_frame(sink, st->metadata);
    if (st->video_config)
        sink->ops->on_frame(sink, st->video_config);
    if (st->audio_config)
        sink->ops->on_frame(sink, st->audio_config);
    for (size_t i = 0; i < st->gop_n && sink->stream == st; i++)
        sink->ops->on_frame(sink, st->gop[i]);
}

int sl_hub_add_sink(sl_hub_t *hub, const char *name, sl_sink_t *sink)
{
    sl_stream_t *st = stream_get(hub, name);
    if (!st)
        return SL_ENOMEM;
    sink->stream = st;
    sink->relayed = 0;
    sl_list_push_back(&st->sinks, &sink->link);
    st->n_sinks++;
    if (!sink->internal) {
        st->n_players++;
        st->stats.total_sinks++;
        if (st->n_players > st->stats.max_sinks)
            st->stats.max_sinks = st->n_players;
    }
    if (st->publisher) {
        st->pushing++;
        if (sink->ops->on_publish)
            sink->ops->on_publish(sink);
        if (sink->stream == st)
            sl_stream_replay(st, sink);
        st->pushing--;
        stream_maybe_free(st);
    }
    return 0;
}

void sl_stream_remove_sink(sl_sink_t *sink)
{
    sl_stream_t *st = sink->stream;
    if (!st)
        return;
    SL_ASSERT(sl_list_linked(&sink->link) && st->n_sinks > 0);
    SL_ASSERT(sink->internal || st->n_players > 0);
    sl_list_remove(&sink->link);
    sink->stream = NULL;
    sink->relayed = 0;
    st->n_sinks--;
    if (!sink->internal)
        st->n_players--;
    stream_maybe_free(st);
}
