/*
 * The recorder module, loop side (see recorder.h; the writer thread is
 * recorder_io.c). It decides when a stream is recorded (RTMP publish mode
 * record/append, the app's `record: true`, the Server API), attaches a
 * hub sink per recording, turns frames into bounded jobs for the writer,
 * and turns the writer's results into events (record_start,
 * record_done). It also serves the recorded files' listings: the Server
 * API's media list/delete through the "recorder" service
 * (app/svc/recorder.h, also used by the cleaner and the VOD module), and
 * Red5's `GET /{app}/mediafiles`.
 *
 * A recording starts on a keyframe (the hub replays the cached configs and
 * the GOP to a new sink, so a recording started mid-stream begins at once
 * with the configs and the last keyframe). When the bytes waiting for the
 * disk pass recorder.queue_max, frames are dropped up to the next video
 * keyframe, with one log line per episode; the live stream is untouched.
 */
#include "modules/recorder/recorder.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/events.h"
#include "app/services.h"
#include "app/store.h"
#include "app/svc/recorder.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/time.h"
#include "modules/recorder/recorder_internal.h"
#include "proto/http/http.h"
#include "sluice/errors.h"
#include "modules/recorder/recorder_config.h"

#define LIST_MAX_DEPTH 4       /* room folders walked when listing */
#define PATH_CAP 1024

static const sl_log_ctx_t g_ctx = {.proto = "recorder"};

/* ------------------------------------------------------------------ */
/* names                                                               */

/* A relative path that stays inside its folder (see sl_recorder_make_name). */
static int rel_name_is_safe(const char *name)
{
    if (!name[0] || name[0] == '/')
        return 0;
    const char *seg = name;
    for (const char *p = name;; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '/' || ch == '\0') {
            size_t n = (size_t)(p - seg);
            if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return 0;
            if (ch == '\0')
                return 1;
            seg = p + 1;
            continue;
        }
        if (ch < 0x20 || ch >= 0x7f || ch == '\\')
            return 0;
    }
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int sl_recorder_make_name(const char *pattern, const char *stream, time_t now, char *out,
                          size_t cap)
{
    return sl_recorder_make_name_ext(pattern, stream, now, "flv", out, cap);
}

/* A recording's container comes from its name. */
static int has_media_ext(const char *name)
{
    return ends_with(name, ".flv") || ends_with(name, ".mp4");
}

int sl_recorder_make_name_ext(const char *pattern, const char *stream, time_t now,
                              const char *ext, char *out, size_t cap)
{
    char when[SL_RECORDER_NAME_MAX + 1];
    char name[SL_RECORDER_NAME_MAX + 8];
    int rc = SL_EINVAL;
    if (cap)
        out[0] = '\0';
    if (!pattern || !pattern[0])
        pattern = "{name}";
    if (strlen(pattern) > SL_RECORDER_NAME_MAX) {
        rc = SL_ETOOBIG;
        goto fail;
    }
    struct tm tm;
    gmtime_r(&now, &tm);
    size_t wn = strftime(when, sizeof when, pattern, &tm);
    if (wn == 0) {
        rc = strlen(pattern) ? SL_ETOOBIG : SL_EINVAL;
        goto fail;
    }
    /* {name} after strftime, so that a '%' in a stream name is taken literally. */
    size_t o = 0;
    for (const char *p = when; *p;) {
        const char *piece = p;
        size_t n = 1;
        if (strncmp(p, "{name}", 6) == 0) {
            piece = stream ? stream : "";
            n = strlen(piece);
            p += 6;
        } else {
            p++;
        }
        if (o + n >= SL_RECORDER_NAME_MAX) {
            rc = SL_ETOOBIG;
            goto fail;
        }
        memcpy(name + o, piece, n);
        o += n;
    }
    name[o] = '\0';
    /* Checked before the extension too: "..", "a/." or "a/" must not become a file name. */
    if (!rel_name_is_safe(name))
        goto fail;
    if (!has_media_ext(name)) {
        name[o++] = '.';
        memcpy(name + o, strcmp(ext, "mp4") == 0 ? "mp4" : "flv", 4);
        o += 3;
    }
    if (o > SL_RECORDER_NAME_MAX || o + 1 > cap) {
        rc = SL_ETOOBIG;
        goto fail;
    }
    if (!rel_name_is_safe(name) || strcmp(name, ".flv") == 0 || strcmp(name, ".mp4") == 0)
        goto fail;
    memcpy(out, name, o + 1);
    return 0;
fail:
    if (cap)
        out[0] = '\0';
    return rc;
}

/* "{data_dir}/{app}/streams" for a scope path's top-level app. */
static int streams_dir(const sl_recorder_t *m, const char *app, char *out, size_t cap)
{
    size_t app_len = strcspn(app, "/");
    int n = snprintf(out, cap, "%s/%.*s/streams", m->core->cfg->server_data_dir, (int)app_len, app);
    return n > 0 && (size_t)n < cap ? 0 : SL_ETOOBIG;
}

/* ------------------------------------------------------------------ */
/* recordings                                                          */

static void held_drop(sl_rec_t *rec)
{
    for (size_t i = 0; i < rec->n_held; i++)
        sl_frame_unref(rec->held[i]);
    rec->n_held = 0;
    rec->held_bytes = 0;
}

static void rec_free(sl_rec_t *rec)
{
    held_drop(rec);
    if (rec->vcfg)
        sl_frame_unref(rec->vcfg);
    if (rec->acfg)
        sl_frame_unref(rec->acfg);
    sl_free(rec->stream_path);
    sl_free(rec->app);
    sl_free(rec->stream);
    sl_free(rec->name);
    sl_free(rec->file);
    sl_free(rec);
}

static void emit(sl_recorder_t *m, sl_event_type_t type, const char *app, const char *stream,
                 const char *file, const char *reason, uint64_t duration_ms, uint64_t size)
{
    sl_event_t ev = {.type = type, .app = app, .stream = stream, .path = file, .reason = reason,
                     .duration_ms = duration_ms, .bytes_in = size};
    sl_events_emit(m->core, &ev);
}

/*
 * Ends a recording on the loop: detaches the sink, and either sends CLOSE
 * (the writer finalises the file and reports CLOSED, which frees it) or,
 * when no file was opened yet (no keyframe came), frees it now.
 */
static void start_held(sl_rec_t *rec);

static void rec_stop(sl_rec_t *rec, const char *why)
{
    sl_recorder_t *m = rec->mod;
    if (rec->stopping)
        return;
    if (!rec->started && rec->n_held && rec->sink.stream)
        start_held(rec); /* a short audio-only publish is still recorded */
    rec->stopping = 1;
    sl_stream_remove_sink(&rec->sink);
    if (sl_map_get(&m->active, rec->stream_path) == rec)
        sl_map_del(&m->active, rec->stream_path);
    SL_LOGI(&rec->log, "recorder: stopping %s (%s)", rec->name, why);
    if (!rec->started) {
        m->n_live--;
        rec_free(rec);
        return;
    }
    sl_rjob_t *job = sl_calloc(1, sizeof *job);
    while (!job) {
        /* CLOSE must reach the writer or the recording never ends; it is tiny. */
        uv_sleep(1);
        job = sl_calloc(1, sizeof *job);
    }
    job->kind = SL_RJOB_CLOSE;
    job->rec = rec;
    sl__recorder_io_push(m, job);
}

/* FLV codec ids for onMetaData (legacy ids where they exist, else the FourCC). */
static double video_codec_id(uint32_t c)
{
    if (c == SL_CODEC_AVC)
        return 7;
    if ((c >> 8) == SL_CODEC_FLV_VIDEO(0) >> 8)
        return (double)((c & 0xff) - '0');
    return (double)c;
}

static double audio_codec_id(uint32_t c)
{
    if (c == SL_CODEC_AAC)
        return 10;
    if (c == SL_CODEC_MP3)
        return 2;
    if ((c >> 8) == SL_CODEC_FLV_AUDIO(0) >> 8)
        return (double)((c & 0xff) - 'A');
    return (double)c;
}

/* Queues one frame as a tag job; honours the bound. */
static void queue_frame(sl_rec_t *rec, const sl_frame_t *f)
{
    sl_recorder_t *m = rec->mod;
    size_t len = f->body->len;
    if (atomic_load(&rec->queued_bytes) + len > m->queue_max_bytes) {
        if (!rec->dropping)
            SL_LOGW(&rec->log,
                    "recorder: disk too slow for %s (%llu bytes waiting): dropping to the next keyframe",
                    rec->name, (unsigned long long)atomic_load(&rec->queued_bytes));
        rec->dropping = 1;
        rec->dropped_frames++;
        return;
    }
    sl_rjob_t *job = sl_malloc(sizeof *job + len);
    if (!job) {
        rec->dropping = 1;
        rec->dropped_frames++;
        return;
    }
    memset(job, 0, sizeof *job);
    job->kind = SL_RJOB_TAG;
    job->rec = rec;
    job->tag_type = f->kind;
    job->dts = f->dts_ms;
    job->len = len;
    memcpy(job->data, f->body->data, len);
    atomic_fetch_add(&rec->queued_bytes, len);
    sl__recorder_io_push(m, job);
}

/* Sends OPEN with what onMetaData needs; the configs follow at the keyframe's time. */
static int rec_open(sl_rec_t *rec, const sl_frame_t *first)
{
    sl_stream_t *st = rec->sink.stream;
    sl_rjob_t *job = sl_calloc(1, sizeof *job);
    if (!job)
        return SL_ENOMEM;
    job->kind = SL_RJOB_OPEN;
    job->rec = rec;
    job->has_video = rec->vcfg || first->kind == SL_FLV_VIDEO;
    job->has_audio = rec->acfg || (st && st->audio_config) || first->kind == SL_FLV_AUDIO;
    uint32_t vc = rec->vcfg ? rec->vcfg->codec : st ? st->video_codec : 0;
    uint32_t ac = rec->acfg ? rec->acfg->codec : st ? st->audio_codec : 0;
    if (first->kind == SL_FLV_VIDEO)
        vc = first->codec;
    job->vcodec_id = video_codec_id(vc);
    job->acodec_id = audio_codec_id(ac);
    if (st) {
        job->width = st->width;
        job->height = st->height;
        job->fps = st->fps;
    }
    snprintf(rec->codecs, sizeof rec->codecs, "%s%s%s", job->has_video ? sl_codec_name(vc) : "",
             job->has_video && job->has_audio ? "," : "", job->has_audio ? sl_codec_name(ac) : "");
    sl__recorder_io_push(rec->mod, job);
    rec->started = 1;
    return 0;
}

static void sink_on_frame(sl_sink_t *sink, sl_frame_t *f)
{
    sl_rec_t *rec = sink->ctx;
    if (rec->stopping || rec->failed)
        return;
    if (f->flags & SL_FRAME_META)
        return; /* our own onMetaData heads the file */
    if (f->flags & SL_FRAME_CONFIG) {
        sl_frame_t **slot = f->kind == SL_FLV_VIDEO ? &rec->vcfg : &rec->acfg;
        if (f->kind == SL_FLV_VIDEO || f->kind == SL_FLV_AUDIO) {
            if (*slot)
                sl_frame_unref(*slot);
            *slot = sl_frame_ref(f);
        }
        if (rec->started && !rec->dropping)
            queue_frame(rec, f);
        return;
    }
    int is_key = f->kind == SL_FLV_VIDEO && (f->flags & SL_FRAME_KEY);
    /* Audio-only streams start (and resume) on any audio frame. */
    int audio_only = f->kind == SL_FLV_AUDIO && !rec->vcfg && rec->sink.stream &&
                     !rec->sink.stream->video_config;
    int starts = is_key || audio_only;
    if (!rec->started) {
        if (f->kind == SL_FLV_VIDEO && !rec->seen_video) {
            rec->seen_video = 1;
            held_drop(rec); /* the file starts at the keyframe */
        }
        if (audio_only && !rec->seen_video) {
            /* Audio first: hold it until video shows up or long enough
             * passed without any to call the stream audio-only. */
            if (rec->n_held < SL_REC_HOLD_MAX &&
                rec->held_bytes + f->body->len <= SL_REC_HOLD_MAX_BYTES) {
                rec->held[rec->n_held++] = sl_frame_ref(f);
                rec->held_bytes += f->body->len;
            }
            uint32_t span = f->dts_ms - rec->held[0]->dts_ms;
            if (rec->n_held == SL_REC_HOLD_MAX || span >= SL_REC_AUDIO_WAIT_MS ||
                span > INT32_MAX || rec->held_bytes + f->body->len > SL_REC_HOLD_MAX_BYTES)
                start_held(rec);
            return;
        }
        if (!is_key)
            return;
        if (rec_open(rec, f)) {
            SL_LOGE(&rec->log, "recorder: out of memory starting %s", rec->name);
            return;
        }
        /* The configs, stamped with the keyframe's time, precede it. */
        sl_frame_t cfg;
        if (rec->vcfg) {
            cfg = *rec->vcfg;
            cfg.dts_ms = f->dts_ms;
            queue_frame(rec, &cfg);
        }
        if (rec->acfg) {
            cfg = *rec->acfg;
            cfg.dts_ms = f->dts_ms;
            queue_frame(rec, &cfg);
        }
    } else if (rec->dropping) {
        if (!starts)
            return;
        SL_LOGI(&rec->log, "recorder: %s resumes at a keyframe after %llu dropped frames",
                rec->name, (unsigned long long)rec->dropped_frames);
        rec->dropping = 0;
    }
    queue_frame(rec, f);
}

/* Starts an audio-only recording with the audio held so far (loop). */
static void start_held(sl_rec_t *rec)
{
    if (rec_open(rec, rec->held[0])) {
        SL_LOGE(&rec->log, "recorder: out of memory starting %s", rec->name);
        held_drop(rec);
        return;
    }
    SL_LOGD(&rec->log, "recorder: %s starts audio-only after %zu audio frames without video",
            rec->name, rec->n_held);
    if (rec->acfg) {
        sl_frame_t cfg = *rec->acfg;
        cfg.dts_ms = rec->held[0]->dts_ms;
        queue_frame(rec, &cfg);
    }
    for (size_t i = 0; i < rec->n_held; i++)
        queue_frame(rec, rec->held[i]);
    held_drop(rec);
}

static void sink_on_publish(sl_sink_t *sink)
{
    (void)sink;
}

static void sink_on_unpublish(sl_sink_t *sink)
{
    rec_stop(sink->ctx, "the publisher left");
}

static const sl_sink_ops_t rec_sink_ops = {
    .on_frame = sink_on_frame,
    .on_publish = sink_on_publish,
    .on_unpublish = sink_on_unpublish,
};

static int name_busy(sl_recorder_t *m, const char *file);
static void set_length(sl_recorder_t *m, const char *file, uint64_t ms);

/*
 * Starts recording stream_path (live) to `name` (relative to the app's
 * streams folder). SL_EBUSY when it is already recorded, SL_ENOMEM.
 */
static int rec_start(sl_recorder_t *m, const char *stream_path, const char *name,
                     sl_rec_source_t source, int append)
{
    if (sl_map_get(&m->active, stream_path))
        return SL_EBUSY;
    char dir[PATH_CAP], file[PATH_CAP], alt[SL_RECORDER_NAME_MAX + 16];
    if (streams_dir(m, stream_path, dir, sizeof dir) ||
        snprintf(file, sizeof file, "%s/%s", dir, name) >= (int)sizeof file)
        return SL_ETOOBIG;
    int mp4 = ends_with(name, ".mp4");
    struct stat stt;
    if (mp4 && append && stat(file, &stt) == 0) {
        /* An MP4 is not continued (its header names the tracks and their configs once):
         * the recording goes to a new file beside it, name_1.mp4, name_2.mp4, ... (one
         * stat per name on the loop, as the listings do). */
        size_t base = strlen(name) - 4;
        int n;
        for (n = 1; n < 1000; n++) {
            if (snprintf(alt, sizeof alt, "%.*s_%d.mp4", (int)base, name, n) >= (int)sizeof alt ||
                strlen(alt) > SL_RECORDER_NAME_MAX ||
                snprintf(file, sizeof file, "%s/%s", dir, alt) >= (int)sizeof file)
                return SL_ETOOBIG;
            if (stat(file, &stt) != 0 && !name_busy(m, file))
                break;
        }
        if (n == 1000)
            return SL_EBUSY;
        sl_log_ctx_t ctx = {.proto = "recorder", .app = stream_path};
        SL_LOGI(&ctx, "recorder: append is not supported for MP4: %s goes to a new file %s",
                name, alt);
        name = alt;
        append = 0;
    } else if (mp4) {
        append = 0; /* nothing to continue: a new file */
    }
    const char *slash = strrchr(stream_path, '/');
    if (!slash)
        return SL_EINVAL;
    sl_rec_t *rec = sl_calloc(1, sizeof *rec);
    if (!rec)
        return SL_ENOMEM;
    rec->mod = m;
    rec->fd = -1;
    rec->source = source;
    rec->append = append;
    rec->mp4 = mp4;
    rec->start_ms = sl_time_wall_ms();
    rec->stream_path = sl_strdup(stream_path);
    rec->app = sl_strndup(stream_path, (size_t)(slash - stream_path));
    rec->stream = sl_strdup(slash + 1);
    rec->name = sl_strdup(name);
    rec->file = sl_strdup(file);
    if (!rec->stream_path || !rec->app || !rec->stream || !rec->name || !rec->file ||
        sl_map_set(&m->active, stream_path, rec))
        goto fail;
    rec->log = (sl_log_ctx_t){.proto = "recorder", .app = rec->app, .stream = rec->stream};
    rec->sink.ops = &rec_sink_ops;
    rec->sink.ctx = rec;
    rec->sink.internal = 1; /* a server output, not a subscriber */
    m->n_live++;
    /* The hub replays metadata, configs and the GOP now: the file may open at once. */
    if (sl_hub_add_sink(m->core->hub, stream_path, &rec->sink)) {
        sl_map_del(&m->active, stream_path);
        m->n_live--;
        goto fail;
    }
    set_length(m, file, UINT64_MAX); /* rewritten: its old length is gone */
    SL_LOGI(&rec->log, "recorder: recording %s to %s (%s%s)", stream_path, file,
            source == SL_REC_BY_API ? "api" : source == SL_REC_BY_POLICY ? "app policy" : "publish",
            append ? ", append" : "");
    return 0;
fail:
    rec_free(rec);
    return SL_ENOMEM;
}

/* The stream path below the app's top level ("live/room1/s1" -> "room1/s1"). */
static const char *below_app(const char *stream_path)
{
    const char *slash = strchr(stream_path, '/');
    return slash ? slash + 1 : stream_path;
}

/* The extension of recordings without one in app (its record_format). */
static const char *default_ext(sl_recorder_t *m, const char *app_name)
{
    char top[SL_CONFIG_APP_NAME_MAX + 1];
    size_t n = strcspn(app_name, "/");
    if (n > SL_CONFIG_APP_NAME_MAX)
        return "flv";
    memcpy(top, app_name, n);
    top[n] = '\0';
    const sl_app_config_t *app = sl_core_app(m->core, top);
    return app && sl_recorder_app_cfg(app)->record_format == SL_RECORD_FORMAT_MP4 ? "mp4" : "flv";
}

/* Makes the name for stream_path from a pattern, keeping the room folders;
 * ext: the extension added when the result has none. */
static int name_for(const char *stream_path, const char *pattern, const char *ext, char *out,
                    size_t cap)
{
    const char *rel = below_app(stream_path);
    const char *leaf = strrchr(rel, '/');
    char full[SL_RECORDER_NAME_MAX + 1];
    if (!pattern || !pattern[0])
        pattern = "{name}";
    if (leaf) {
        if (snprintf(full, sizeof full, "%.*s/%s", (int)(leaf - rel), rel, pattern) >=
            (int)sizeof full)
            return SL_ETOOBIG;
        leaf++;
    } else {
        snprintf(full, sizeof full, "%s", pattern);
        leaf = rel;
    }
    return sl_recorder_make_name_ext(full, leaf, time(NULL), ext, out, cap);
}

/* ------------------------------------------------------------------ */
/* events and results                                                  */

static void on_event(const sl_event_t *ev, void *ud)
{
    sl_recorder_t *m = ud;
    if (ev->type != SL_EV_PUBLISH || !ev->app || !ev->stream || !ev->session_id)
        return;
    sl_session_t *s = sl_core_find_session(m->core, ev->session_id);
    const sl_app_config_t *app = sl_core_app(m->core, ev->app);
    int mode = s ? s->publish_mode : SL_PUBLISH_LIVE;
    if (mode == SL_PUBLISH_LIVE && !(app && sl_recorder_app_cfg(app)->record))
        return;
    char stream_path[PATH_CAP], name[SL_RECORDER_NAME_MAX + 1];
    snprintf(stream_path, sizeof stream_path, "%s/%s", ev->app, ev->stream);
    const char *pattern = mode == SL_PUBLISH_LIVE && app ? sl_recorder_app_cfg(app)->record_pattern : NULL;
    int rc = name_for(stream_path, pattern, default_ext(m, ev->app), name, sizeof name);
    if (rc == 0)
        rc = rec_start(m, stream_path, name,
                       mode == SL_PUBLISH_LIVE ? SL_REC_BY_POLICY : SL_REC_BY_PUBLISH,
                       mode == SL_PUBLISH_APPEND);
    if (rc) {
        sl_log_ctx_t ctx = {.sid = ev->session_id, .proto = "recorder", .app = ev->app,
                            .stream = ev->stream};
        SL_LOGW(&ctx, "recorder: cannot record %s: %s", stream_path, sl_strerror(rc));
    }
}

static void on_async(uv_async_t *h)
{
    sl_recorder_t *m = h->data;
    sl_rres_t *r = sl__recorder_io_results(m);
    while (r) {
        sl_rres_t *next = r->next;
        sl_rec_t *rec = r->rec;
        switch (r->kind) {
        case SL_RRES_OPENED:
            emit(m, SL_EV_RECORD_START, rec->app, rec->stream, rec->file, NULL, 0, 0);
            break;
        case SL_RRES_FAILED:
            rec->failed = 1;
            SL_LOGE(&rec->log, "recorder: %s failed (%s)%s; the live stream goes on", rec->name,
                    strerror(-r->err), r->err == -ENOSPC ? ": disk full" : "");
            rec_stop(rec, r->err == -ENOSPC ? "disk full" : "write error");
            break;
        case SL_RRES_ENDED:
            rec_stop(rec, "codec configuration changed; an MP4 file holds one");
            break;
        case SL_RRES_CLOSED:
            SL_LOGI(&rec->log, "recorder: saved %s (%llu ms, %llu bytes)%s", rec->file,
                    (unsigned long long)r->duration_ms, (unsigned long long)r->size,
                    rec->failed || r->err ? " after a failure" : "");
            emit(m, SL_EV_RECORD_DONE, rec->app, rec->stream, rec->file,
                 rec->failed || r->err ? "failed" : NULL, r->duration_ms, r->size);
            set_length(m, rec->file, rec->failed || r->err ? UINT64_MAX : r->duration_ms);
            m->n_live--;
            rec_free(rec);
            break;
        case SL_RRES_RECOVERED: {
            sl_log_ctx_t ctx = {.proto = "recorder", .app = r->app, .stream = r->stream};
            if (r->err)
                SL_LOGW(&ctx, "recorder: unfinished recording %s from an earlier run could not be "
                        "finalised: %s", r->file, r->detail);
            else
                SL_LOGI(&ctx, "recorder: finalised unfinished recording %s from an earlier run "
                        "(%llu ms, %llu bytes; %s)", r->file, (unsigned long long)r->duration_ms,
                        (unsigned long long)r->size, r->detail);
            emit(m, SL_EV_RECORD_DONE, r->app, r->stream, r->file,
                 r->err ? "recovery failed" : "recovered", r->duration_ms, r->size);
            set_length(m, r->file, r->err ? UINT64_MAX : r->duration_ms);
            break;
        }
        case SL_RRES_KNOWN:
            for (size_t off = 0; off + 8 < r->known_len;) {
                uint64_t ms;
                memcpy(&ms, r->known + off, 8);
                const char *file = r->known + off + 8;
                set_length(m, file, ms);
                off += 8 + strlen(file) + 1;
            }
            sl_free(r->known);
            break;
        }
        sl_free(r);
        r = next;
    }
}

/* ------------------------------------------------------------------ */
/* the "recorder" service (API, cleaner, VOD)                          */

static int op_start(void *ud, const char *stream_path, const char *saveas, int append,
                    char *name_out, size_t name_cap)
{
    sl_recorder_t *m = ud;
    sl_stream_t *st = sl_hub_find(m->core->hub, stream_path);
    if (!st || !st->publisher)
        return SL_ENOTFOUND;
    if (sl_map_get(&m->active, stream_path))
        return SL_EBUSY;
    char name[SL_RECORDER_NAME_MAX + 1];
    int rc = name_for(stream_path, saveas, default_ext(m, stream_path), name, sizeof name);
    if (rc)
        return rc == SL_ETOOBIG ? SL_EINVAL : rc;
    rc = rec_start(m, stream_path, name, SL_REC_BY_API, append);
    if (rc == 0) {
        /* An MP4 append may have been given a new name: report the one used. */
        const sl_rec_t *rec = sl_map_get(&m->active, stream_path);
        snprintf(name_out, name_cap, "%s", rec ? rec->name : name);
    }
    return rc;
}

static int op_stop(void *ud, const char *stream_path)
{
    sl_recorder_t *m = ud;
    sl_rec_t *rec = sl_map_get(&m->active, stream_path);
    if (!rec)
        return SL_ENOTFOUND;
    if (rec->source != SL_REC_BY_API)
        return SL_EDENIED;
    rec_stop(rec, "stopped by the API");
    return 0;
}

static int op_is_recording(void *ud, const char *stream_path)
{
    sl_recorder_t *m = ud;
    return sl_map_get(&m->active, stream_path) != NULL;
}

/* Is `name` of app the file of a recording in progress (or still finalising)? */
static int name_busy(sl_recorder_t *m, const char *file)
{
    size_t pos = 0;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&m->active, &pos))) {
        const sl_rec_t *rec = e->val;
        if (strcmp(rec->file, file) == 0)
            return 1;
    }
    return 0;
}

typedef void (*each_cb)(void *arg, const char *name, uint64_t mtime_ms, uint64_t size);

/*
 * Lists media files under dir (recursively, rooms), names relative to the
 * streams folder. This reads the folder on the loop: folders are small
 * (one entry per recording) and a listing is an admin action; the cleaner
 * will keep them small.
 */
static void walk(const char *dir, const char *rel, int depth, const char *ext, each_cb each,
                 void *arg)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[PATH_CAP], name[PATH_CAP];
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path ||
            snprintf(name, sizeof name, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
                (int)sizeof name)
            continue;
        struct stat stt;
        if (stat(path, &stt))
            continue;
        if (S_ISDIR(stt.st_mode)) {
            /* hls/ holds the HLS writer's segments, not recordings. */
            if (depth < LIST_MAX_DEPTH && !(depth == 0 && strcmp(de->d_name, "hls") == 0))
                walk(path, name, depth + 1, ext, each, arg);
            continue;
        }
        if (!S_ISREG(stt.st_mode))
            continue;
        const char *dot = strrchr(de->d_name, '.');
        if (!dot || (strcmp(dot, ".flv") != 0 && strcmp(dot, ".mp4") != 0))
            continue;
        if (ext && ext[0] && strcmp(dot + 1, ext) != 0)
            continue;
        each(arg, name, (uint64_t)stt.st_mtim.tv_sec * 1000 + (uint64_t)stt.st_mtim.tv_nsec / 1000000,
             (uint64_t)stt.st_size);
    }
    closedir(d);
}

static int op_list(void *ud, const char *app, const char *ext, each_cb each, void *arg)
{
    sl_recorder_t *m = ud;
    char dir[PATH_CAP];
    int rc = streams_dir(m, app, dir, sizeof dir);
    if (rc)
        return rc;
    walk(dir, "", 0, ext, each, arg);
    return 0;
}

static int op_remove(void *ud, const char *app, const char *name, const char *ext, char *name_out,
                     size_t name_cap, uint64_t *mtime_ms, uint64_t *size)
{
    sl_recorder_t *m = ud;
    char rel[SL_RECORDER_NAME_MAX + 16], dir[PATH_CAP], file[PATH_CAP];
    if (!name || !name[0] || strlen(name) > SL_RECORDER_NAME_MAX ||
        (ext && strlen(ext) > 8))
        return SL_EINVAL;
    int has_ext = ext && ext[0];
    if (has_ext && !(strcmp(ext, "flv") == 0 || strcmp(ext, "mp4") == 0))
        return SL_EINVAL;
    char suffix[16];
    snprintf(suffix, sizeof suffix, ".%s", has_ext ? ext : "flv");
    snprintf(rel, sizeof rel, "%s%s", name, ends_with(name, suffix) ? "" : suffix);
    if (!rel_name_is_safe(rel))
        return SL_EINVAL;
    if (streams_dir(m, app, dir, sizeof dir) ||
        snprintf(file, sizeof file, "%s/%s", dir, rel) >= (int)sizeof file)
        return SL_EINVAL;
    if (name_busy(m, file))
        return SL_EBUSY;
    struct stat stt;
    if (stat(file, &stt) || !S_ISREG(stt.st_mode))
        return SL_ENOTFOUND;
    if (unlink(file))
        return SL_EIO;
    set_length(m, file, UINT64_MAX);
    snprintf(name_out, name_cap, "%s", rel);
    *mtime_ms = (uint64_t)stt.st_mtim.tv_sec * 1000 + (uint64_t)stt.st_mtim.tv_nsec / 1000000;
    *size = (uint64_t)stt.st_size;
    SL_LOGI(&g_ctx, "recorder: deleted %s", file);
    return 0;
}

/*
 * The file a VOD name of scope stands for: "x.flv"/"x.mp4" as named; "x"
 * as the app's record_format first (attempt 0), then the other format
 * (attempt 1). 0, SL_EINVAL (unsafe name), SL_ENOTFOUND (no such attempt).
 */
static int vod_file(sl_recorder_t *m, const char *scope, const char *name, int attempt,
                    char *file, size_t cap)
{
    char rel[SL_RECORDER_NAME_MAX + 8], dir[PATH_CAP];
    const char *room = strchr(scope, '/');
    int has_ext = has_media_ext(name);
    if (has_ext && attempt > 0)
        return SL_ENOTFOUND;
    const char *first = default_ext(m, scope);
    const char *ext = attempt == 0 ? first : strcmp(first, "mp4") == 0 ? "flv" : "mp4";
    if (snprintf(rel, sizeof rel, "%s%s%s%s%s", room ? room + 1 : "", room ? "/" : "", name,
                 has_ext ? "" : ".", has_ext ? "" : ext) >= (int)sizeof rel)
        return SL_EINVAL;
    if (!rel_name_is_safe(rel) || streams_dir(m, scope, dir, sizeof dir) ||
        snprintf(file, cap, "%s/%s", dir, rel) >= (int)cap)
        return SL_EINVAL;
    return 0;
}

/* Remembers (or forgets, when ms is UINT64_MAX) a finished recording's duration. */
static void set_length(sl_recorder_t *m, const char *file, uint64_t ms)
{
    if (ms == UINT64_MAX)
        sl_map_del(&m->lengths, file);
    else if (sl_map_set(&m->lengths, file, (void *)(uintptr_t)(ms + 1)))
        sl_map_del(&m->lengths, file); /* out of memory: no length rather than a stale one */
}

static int op_length(void *ud, const char *scope, const char *name, uint64_t *ms)
{
    sl_recorder_t *m = ud;
    char file[PATH_CAP];
    for (int i = 0; i < 2; i++) {
        int rc = vod_file(m, scope, name, i, file, sizeof file);
        if (rc)
            return rc;
        struct stat stt;
        if (stat(file, &stt) || !S_ISREG(stt.st_mode))
            continue;
        uintptr_t v = (uintptr_t)sl_map_get(&m->lengths, file);
        if (!v || name_busy(m, file))
            return SL_ENOTFOUND;
        *ms = (uint64_t)v - 1;
        return 0;
    }
    return SL_ENOTFOUND;
}

static void op_each_busy(void *ud, void (*each)(void *arg, const char *file), void *arg)
{
    sl_recorder_t *m = ud;
    size_t pos = 0;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&m->active, &pos)))
        each(arg, ((const sl_rec_t *)e->val)->file);
}

static int op_file_of(void *ud, const char *scope, const char *name, int attempt, char *file,
                      size_t cap)
{
    return vod_file(ud, scope, name, attempt, file, cap);
}

/* Service "recorder" (src/app/svc/recorder.h). */
static const sl_svc_recorder_t recorder_service = {
    .start = op_start,
    .stop = op_stop,
    .is_recording = op_is_recording,
    .list = op_list,
    .remove = op_remove,
    .each_busy = op_each_busy,
    .file_of = op_file_of,
    .length = op_length,
};

/* ------------------------------------------------------------------ */
/* HTTP: GET /{app}/mediafiles (Red5's live webapp list)                */

typedef struct {
    char *buf;
    size_t len, cap;
    int n;
    int nomem;
} json_out_t;

static void out_add(json_out_t *o, const char *s, size_t n)
{
    if (o->nomem)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 1024;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *nb = sl_realloc(o->buf, cap);
        if (!nb) {
            o->nomem = 1;
            return;
        }
        o->buf = nb;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

/* Appends a JSON string (names are printable ASCII: only " and \ need escaping). */
static void out_str(json_out_t *o, const char *s)
{
    out_add(o, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            out_add(o, "\\", 1);
        out_add(o, s, 1);
    }
    out_add(o, "\"", 1);
}

static void mediafile_each(void *arg, const char *name, uint64_t mtime_ms, uint64_t size)
{
    json_out_t *o = arg;
    char num[96];
    if (o->n++)
        out_add(o, ",", 1);
    out_add(o, "{\"name\":", 8);
    out_str(o, name);
    int n = snprintf(num, sizeof num, ",\"lastModified\":%llu,\"length\":%llu,\"url\":",
                     (unsigned long long)mtime_ms, (unsigned long long)size);
    out_add(o, num, (size_t)n);
    out_str(o, name);
    out_add(o, "}", 1);
}

static int respond_text(sl_http_req_t *req, int status, const char *text)
{
    return sl_http_respond(req, status, "text/plain", text, strlen(text), NULL);
}

/*
 * What a recordings URL names: the app, and for a file its path relative
 * to the app's streams folder. SL_EDECLINED when the URL is not ours.
 */
typedef struct rec_target {
    char app_name[SL_CONFIG_APP_NAME_MAX + 1];
    const char *rel;       /* into req->path: "room1/cam1.flv"; NULL for the list */
} rec_target_t;

static int parse_rec_target(sl_recorder_t *m, const char *path, rec_target_t *t)
{
    const char *p = path;
    while (*p == '/')
        p++;
    size_t app_len = strcspn(p, "/");
    if (app_len == 0 || app_len > SL_CONFIG_APP_NAME_MAX)
        return SL_EDECLINED;
    int is_list = strcmp(p + app_len, "/mediafiles") == 0;
    int is_file = strncmp(p + app_len, "/streams/", 9) == 0;
    if (!is_list && !is_file)
        return SL_EDECLINED;
    memcpy(t->app_name, p, app_len);
    t->app_name[app_len] = '\0';
    if (!sl_core_app(m->core, t->app_name))
        return SL_EDECLINED;
    t->rel = NULL;
    if (is_file) {
        t->rel = p + app_len + 9;
        if (!(ends_with(t->rel, ".flv") || ends_with(t->rel, ".mp4")))
            return SL_EDECLINED;
    }
    return 0;
}

/* Admitted: serve the file or the list (only now is anything looked up). */
static void serve_admitted(sl_http_req_t *req, void *ud)
{
    sl_recorder_t *m = ud;
    rec_target_t t;
    if (parse_rec_target(m, req->path, &t)) {
        respond_text(req, 404, "not found\n");
        return;
    }
    if (t.rel) {
        /* /{app}/streams/{name}.flv|.mp4: a recording (rooms are subfolders). */
        char dir[PATH_CAP], file[PATH_CAP];
        if (streams_dir(m, t.app_name, dir, sizeof dir) ||
            snprintf(file, sizeof file, "%s/%s", dir, t.rel) >= (int)sizeof file ||
            sl__recorder_http_file(m, req, file))
            respond_text(req, 404, "not found\n");
        return;
    }
    json_out_t o = {0};
    out_add(&o, "{\"mediafiles\":[", 15);
    op_list(m, t.app_name, NULL, mediafile_each, &o);
    out_add(&o, "]}", 2);
    if (o.nomem)
        respond_text(req, 500, "internal server error\n");
    else
        sl_http_respond_json(req, 200, o.buf);
    sl_free(o.buf);
}

/*
 * GET /{app}/mediafiles and /{app}/streams/{name}: stream data like a live
 * stream's, so the play admission chain runs first (transport "http",
 * credentials from the query or a bearer token), before the file is even
 * looked for: on an app with auth, a recording that exists and one that
 * does not get the same 401 without credentials.
 */
static int on_http(sl_http_req_t *req, void *ud)
{
    sl_recorder_t *m = ud;
    rec_target_t t;
    if (parse_rec_target(m, req->path, &t))
        return SL_EDECLINED;
    const sl_app_config_t *app = sl_core_app(m->core, t.app_name);
    if (!app->allow_play)
        return respond_text(req, 403, "Playing is not allowed in this application.\n");
    if (!t.rel)
        return sl_http_admit_play(m->core, req, t.app_name, NULL, "http", serve_admitted, m);
    if (!rel_name_is_safe(t.rel))
        return respond_text(req, 404, "not found\n");
    /* scope "app[/rooms]", stream = the file name without its extension */
    char scope[PATH_CAP], stream[PATH_CAP];
    const char *slash = strrchr(t.rel, '/');
    const char *base = slash ? slash + 1 : t.rel;
    snprintf(scope, sizeof scope, "%s%s%.*s", t.app_name, slash ? "/" : "",
             slash ? (int)(slash - t.rel) : 0, t.rel);
    snprintf(stream, sizeof stream, "%.*s", (int)(strlen(base) - 4), base);
    return sl_http_admit_play(m->core, req, scope, stream, "http", serve_admitted, m);
}

/* ------------------------------------------------------------------ */
/* module                                                              */

static void on_async_closed(uv_handle_t *h)
{
    (void)h;
}

static int recorder_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    sl_core_t *core = sl_host_core(h);
    sl_http_server_t *http = sl_host_http(h);
    (void)api;
    int rc = SL_ENOMEM, have_sync = 0;
    sl_recorder_t *m = sl_calloc(1, sizeof *m);
    if (!m)
        return SL_ENOMEM;
    m->core = core;
    m->queue_max_bytes = (uint64_t)sl_recorder_cfg(core->cfg)->queue_max_bytes;
    sl_map_init(&m->active);
    sl_map_init(&m->lengths);
#ifdef SL_FAULT_INJECTION
    /* Test builds only: every tag write sleeps this long, to test the queue bound. */
    const char *delay = getenv("SL_TEST_RECORDER_WRITE_DELAY_MS");
    if (delay && atoi(delay) > 0) {
        m->test_write_delay_ms = (unsigned)atoi(delay);
        SL_LOGW(&g_ctx, "recorder: test write delay %u ms per tag", m->test_write_delay_ms);
    }
#endif
    size_t n = strlen(core->cfg->server_data_dir) + sizeof "/sluice.db";
    m->db_path = sl_malloc(n);
    if (!m->db_path)
        goto fail;
    snprintf(m->db_path, n, "%s/sluice.db", core->cfg->server_data_dir);
    if ((rc = uv_mutex_init(&m->mu)))
        goto fail;
    if ((rc = uv_cond_init(&m->cv))) {
        uv_mutex_destroy(&m->mu);
        goto fail;
    }
    have_sync = 1;
    /* Steps that can fail come before the handle and the thread, which cannot be
     * undone synchronously. (A route cannot be removed: startup failure ends the
     * process, so a stale route is never called.) */
    rc = sl_events_subscribe(core, "recorder", SL_EV_PHASE_STATE, on_event, m);
    if (rc < 0)
        goto fail;
    m->listener_id = rc;
    /* The API, the cleaner and VOD reach the recordings through the service. */
    if ((rc = sl_service_register(core, SL_SVC_RECORDER, SL_SVC_RECORDER_MAJOR,
                                  SL_SVC_RECORDER_MINOR, &recorder_service, m)))
        goto fail;
    const sl_http_route_spec_t route = {
        .method = "GET", .prefix = "/", .suffixes = "/mediafiles .flv .mp4",
        .prio = SL_HTTP_PRIO_APP, .name = "recordings",
        .serves = "/{app}/mediafiles /{app}/streams/{stream}.flv /{app}/streams/{stream}.mp4",
        .cb = on_http, .ud = m};
    if (http && (rc = sl_http_route_add(http, &route, NULL)))
        goto fail;
    if ((rc = uv_async_init(core->loop, &m->async, on_async)))
        goto fail;
    m->async.data = m;
    m->async_open = 1;
    m->store = sl_store_find(core);
    if ((rc = sl__recorder_catalog_register(m)))
        SL_LOGW(&g_ctx, "recorder: the catalog service is not offered: %s", sl_strerror(rc));
    if ((rc = sl__recorder_io_start(m))) {
        /* The handle closes on the loop: the state stays allocated (the process is
         * about to exit on this error anyway). */
        uv_close((uv_handle_t *)&m->async, on_async_closed);
        sl_events_unsubscribe(core, m->listener_id);
        sl_service_unregister(core, SL_SVC_RECORDER, &recorder_service);
        SL_LOGE(&g_ctx, "recorder: cannot start its writer thread: %s", uv_strerror(rc));
        return rc;
    }
    *state = m;
    return 0;
fail:
    SL_LOGE(&g_ctx, "recorder: cannot start: %s", sl_strerror(rc));
    sl_service_unregister(core, SL_SVC_RECORDER, &recorder_service);
    if (m->listener_id > 0)
        sl_events_unsubscribe(core, m->listener_id);
    if (have_sync) {
        uv_cond_destroy(&m->cv);
        uv_mutex_destroy(&m->mu);
    }
    sl_free(m->db_path);
    sl_map_cleanup(&m->active);
    sl_map_cleanup(&m->lengths);
    sl_free(m);
    return rc;
}

static void recorder_stop(void *state)
{
    sl_recorder_t *m = state;
    if (!m)
        return;
    sl_service_unregister(m->core, SL_SVC_RECORDER, &recorder_service);
    /* Finalise every recording: CLOSE jobs, then let the writer drain and exit. */
    size_t pos = 0;
    sl_map_entry_t *e;
    while ((pos = 0, e = sl_map_next(&m->active, &pos)))
        rec_stop(e->val, "server shutting down");
    sl__recorder_io_stop(m);
    on_async(&m->async);
    if (m->listener_id > 0)
        sl_events_unsubscribe(m->core, m->listener_id);
    m->listener_id = 0;
    if (m->async_open)
        uv_close((uv_handle_t *)&m->async, on_async_closed);
    m->async_open = 0;
}

static void recorder_free(void *state)
{
    sl_recorder_t *m = state;
    if (!m)
        return;
    sl__recorder_catalog_unregister(m);
    uv_cond_destroy(&m->cv);
    uv_mutex_destroy(&m->mu);
    sl_map_cleanup(&m->active);
    sl_map_cleanup(&m->lengths);
    sl_free(m->db_path);
    sl_free(m);
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "recorder",
    .description = "records live streams to FLV/MP4",
    .init = recorder_init,
    .stop = recorder_stop,
    .destroy = recorder_free,
};

const sl_builtin_t sl_recorder_builtin = {
    .plugin = &plugin,
    .config = &sl_recorder_config_section,
};
