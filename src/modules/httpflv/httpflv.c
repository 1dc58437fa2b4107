/*
 * HTTP-FLV (see httpflv.h): the route, the players and the shared tags.
 *
 * Timestamps. RTMP rebases each player's timeline to 0 (rtmp_cmd.c)
 * because an RTMP player survives a republish, whose new timeline starts
 * again at 0, and because Flash players expected it. An HTTP-FLV response
 * ends with its publish (it is one FLV file), so within a response the
 * publisher's timestamps never jump back, and the players it serves
 * (flv.js/mpegts.js, ffmpeg, VLC, GStreamer) take the first media tag's
 * time as their origin. So the tag is written with the stream's own dts,
 * built once per frame, and every player sends the very same bytes: one
 * output piece per frame per player, no per-player header to allocate or
 * copy. The metadata and codec configuration tags a late joiner receives
 * first keep their (earlier) original times; players treat them as
 * stream headers, whose time does not matter.
 *
 * Backpressure: the HTTP layer tells how many bytes are still unwritten
 * on the connection (sl_http_stream_pending). A frame moves from the
 * player's queue to the connection only while that is under WRITE_LIMIT
 * (or the connection is idle, so one large keyframe always fits); the
 * rest waits in the queue, whose byte and time bounds and slow-consumer
 * policy (subq.h) decide drops and the cut. The queue is pumped whenever
 * a frame arrives, which for a live stream is every few tens of ms.
 */
#include "modules/httpflv/httpflv.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "app/admission.h"
#include "app/core.h"
#include "app/events.h"
#include "base/alloc.h"
#include "base/log.h"
#include "media/subq.h"
#include "proto/http/http.h"
#include "sluice/errors.h"
#include "modules/httpflv/httpflv_config.h"

#define PATH_MAX_LEN 512                 /* hub names, as RTMP limits them */
#define WRITE_LIMIT (1024u * 1024u)      /* unwritten bytes on the connection before frames wait */
#define FLV_TAG_MAX_BODY 0xFFFFFFu       /* 24-bit DataSize */
#define FLV_TAG_PARAM 1u                 /* enc_param of the FLV tag slot (one encoding) */

typedef struct flv_mod {
    sl_core_t *core;                     /* borrowed */
    sl_list_t players;                   /* flv_player_t, from request to close */
    int stopping;
} flv_mod_t;

typedef struct flv_player {
    sl_session_t sess;                   /* must stay first: the core sees this */
    flv_mod_t *mod;
    sl_http_req_t *req;                  /* valid until answered (refused) or the close callback */
    sl_list_t link;                      /* in mod->players */
    char path[PATH_MAX_LEN + 1];         /* hub name */
    sl_sink_t sink;
    sl_subq_t q;
    int q_ready;
    int streaming;                       /* the response head is out: close_cb will come */
    int ending;                          /* sl_http_stream_end called (or about to be) */
    int playing;                         /* SL_EV_PLAY sent */
    int need_key;                        /* drop media until the first video keyframe */
    size_t write_limit;
    /* admission */
    sl_admit_t *admit;                   /* while pending: our reference */
    int in_call, finished, result, had_creds;
    char reason[256];
} flv_player_t;

static const sl_sink_ops_t flv_sink_ops;
static const sl_session_ops_t flv_session_ops;

/* ------------------------------------------------------------------ */
/* tags                                                                */

sl_buf_t *sl_httpflv_tag(sl_frame_t *f)
{
    sl_buf_t *cached = sl_frame_enc_get(f, SL_ENC_FLV_TAG, FLV_TAG_PARAM);
    if (cached)
        return cached;
    uint32_t n = f->body->len;
    if (n > FLV_TAG_MAX_BODY)
        return NULL;
    /* HTTP-FLV players run on the main loop only: the claim cannot be
     * lost to another builder, and there is one parameter. */
    if (!sl_frame_enc_claim(f, SL_ENC_FLV_TAG, FLV_TAG_PARAM))
        return NULL;
    sl_buf_t *b = sl_buf_new(11u + n + 4u);
    if (!b) {
        sl_frame_enc_abandon(f, SL_ENC_FLV_TAG);
        return NULL;
    }
    uint8_t *p = b->data;
    p[0] = f->kind;
    sl_wr_be24(p + 1, n);
    sl_wr_be24(p + 4, f->dts_ms & 0xFFFFFFu);
    p[7] = (uint8_t)(f->dts_ms >> 24); /* TimestampExtended */
    sl_wr_be24(p + 8, 0);              /* StreamID */
    memcpy(p + 11, f->body->data, n);
    sl_wr_be32(p + 11 + n, 11u + n);   /* PreviousTagSize */
    b->len = 11u + n + 4u;
    sl_frame_enc_publish(f, SL_ENC_FLV_TAG, b);
    return b;
}

/* ------------------------------------------------------------------ */
/* players                                                             */

static int respond_text(sl_http_req_t *req, int status, const char *text)
{
    return sl_http_respond(req, status, "text/plain; charset=utf-8", text, strlen(text), NULL);
}

/* Leaves the stream: sink out, SL_EV_PLAY_STOP. */
static void stop_play(flv_player_t *p, const char *reason)
{
    sl_stream_remove_sink(&p->sink);
    if (p->playing) {
        SL_LOGI(&p->sess.log, "http-flv player stopped: %s", reason);
        sl_events_emit_session(p->mod->core, &p->sess, SL_EV_PLAY_STOP, reason);
        p->playing = 0;
        sl_session_set_role(&p->sess, SL_ROLE_NONE);
    }
}

static void player_free(flv_player_t *p)
{
    stop_play(p, "closed");
    if (p->q_ready)
        sl_subq_cleanup(&p->q);
    sl_session_unregister(p->mod->core, &p->sess);
    sl_list_remove(&p->link);
    sl_free(p);
}

/* Ends the response; the close callback frees the player later. */
static void end_stream(flv_player_t *p, const char *reason)
{
    if (p->ending)
        return;
    p->ending = 1;
    stop_play(p, reason);
    sl_http_stream_end(p->req);
}

/* Moves queued frames to the connection while it has room. */
static void pump(flv_player_t *p)
{
    while (p->q.count) {
        sl_frame_t *f = sl_subq_peek(&p->q);
        sl_buf_t *tag = sl_httpflv_tag(f);
        if (!tag) {
            sl_subq_pop(&p->q, 1, NULL); /* out of memory, or a body no FLV tag can hold */
            p->sess.frames_dropped++;
            continue;
        }
        size_t pending = sl_http_stream_pending(p->req);
        if (pending && pending + tag->len > p->write_limit)
            return;
        int rc = sl_http_stream_write(p->req, tag);
        if (rc == SL_ETOOBIG)
            return;
        if (rc) {
            if (rc != SL_ECLOSED)
                end_stream(p, sl_strerror(rc));
            return; /* SL_ECLOSED: the close callback is on its way */
        }
        p->sess.bytes_out += tag->len;
        p->sess.msgs_out++;
        sl_subq_pop(&p->q, 1, NULL);
    }
}

static void sink_on_frame(sl_sink_t *sink, sl_frame_t *f)
{
    flv_player_t *p = sink->ctx;
    if (p->ending)
        return;
    if (p->need_key && !(f->flags & (SL_FRAME_CONFIG | SL_FRAME_META)) && f->kind != SL_FLV_DATA) {
        if (f->kind != SL_FLV_VIDEO || !(f->flags & SL_FRAME_KEY))
            return;
        p->need_key = 0;
    }
    int rc = sl_subq_offer(&p->q, f, 0, uv_now(p->mod->core->loop), &p->sess.frames_dropped);
    if (rc == SL_ESLOW) {
        char why[160];
        SL_LOGI(&p->sess.log, "%s", sl_subq_slow_reason(&p->q, why, sizeof why));
        end_stream(p, why);
        return;
    }
    if (rc == SL_ENOMEM) {
        end_stream(p, "out of memory");
        return;
    }
    if (rc == SL_SUBQ_FELL_BEHIND)
        SL_LOGI(&p->sess.log, "http-flv player falling behind: dropping to the next keyframe");
    pump(p);
}

static void sink_on_unpublish(sl_sink_t *sink)
{
    flv_player_t *p = sink->ctx;
    pump(p); /* what fits goes out before the end */
    end_stream(p, "stream unpublished");
}

static const sl_sink_ops_t flv_sink_ops = {
    .on_frame = sink_on_frame,
    .on_publish = NULL,
    .on_unpublish = sink_on_unpublish,
};

static void on_close(sl_http_req_t *req, void *ud)
{
    flv_player_t *p = ud;
    (void)req;
    p->req = NULL;
    stop_play(p, p->ending ? "ended" : "client closed");
    player_free(p);
}

static void session_kick(sl_session_t *s, const char *reason)
{
    flv_player_t *p = (flv_player_t *)s;
    if (p->streaming)
        end_stream(p, reason ? reason : "kicked");
}

static void session_shutdown(sl_session_t *s) { session_kick(s, "server shutdown"); }

static uint64_t session_pending(const sl_session_t *s)
{
    const flv_player_t *p = (const flv_player_t *)s;
    return p->q_ready ? p->q.count : 0;
}

static const sl_session_ops_t flv_session_ops = {
    .kick = session_kick,
    .shutdown = session_shutdown,
    .pending = session_pending,
};

/*
 * Admitted: answer with the FLV header and join the stream (its metadata,
 * configurations and GOP come at once, then live frames).
 */
static void start_play(flv_player_t *p)
{
    flv_mod_t *mod = p->mod;
    const sl_config_t *cfg = mod->core->cfg;
    sl_stream_t *st = sl_hub_find(mod->core->hub, p->path);
    if (mod->stopping || !st || !st->publisher) {
        respond_text(p->req, mod->stopping ? 503 : 404, mod->stopping ? "server shutting down\n"
                                                                      : "stream not found\n");
        player_free(p);
        return;
    }
    int has_video = st->video_config || st->video_codec;
    int has_audio = st->audio_config || st->audio_codec;
    int rc = sl_subq_init(&p->q, (size_t)cfg->media_queue_max_bytes, (uint32_t)cfg->media_queue_max_ms,
                          (uint64_t)cfg->media_slow_disconnect_ms);
    if (rc) {
        respond_text(p->req, 500, "internal server error\n");
        player_free(p);
        return;
    }
    p->q_ready = 1;
    rc = sl_http_stream_start(p->req, 200, "video/x-flv", "Cache-Control: no-cache\r\n", on_close, p);
    if (rc) {
        /* HEAD (the head is out) or the client is gone: no close callback. */
        p->req = NULL;
        player_free(p);
        return;
    }
    p->streaming = 1;
    uint8_t hdr[13] = {'F', 'L', 'V', 1, (uint8_t)((has_audio ? 4 : 0) | (has_video ? 1 : 0)), 0, 0, 0, 9,
                       0, 0, 0, 0};
    sl_buf_t *b = sl_buf_from(hdr, sizeof hdr);
    if (!b || sl_http_stream_write(p->req, b)) {
        sl_buf_unref(b);
        end_stream(p, "out of memory");
        return;
    }
    sl_buf_unref(b);
    p->sess.bytes_out += sizeof hdr;
    p->write_limit = WRITE_LIMIT;
    if ((uint64_t)sl_config_int(cfg, "http.stream_max_pending_bytes") / 2 < p->write_limit)
        p->write_limit = (size_t)sl_config_int(cfg, "http.stream_max_pending_bytes") / 2;
    p->need_key = st->video_config != NULL;
    sl_session_set_role(&p->sess, SL_ROLE_SUBSCRIBER);
    p->playing = 1;
    SL_LOGI(&p->sess.log, "http-flv player started (%s:%d)", p->sess.remote_addr, p->sess.remote_port);
    sl_events_emit_session(mod->core, &p->sess, SL_EV_PLAY, NULL);
    p->sink.ops = &flv_sink_ops;
    p->sink.ctx = p;
    if (sl_hub_add_sink(mod->core->hub, p->path, &p->sink))
        end_stream(p, "out of memory");
}

static void admission_finish(flv_player_t *p)
{
    if (!p->result) {
        start_play(p);
        return;
    }
    SL_LOGI(&p->sess.log, "http-flv play refused: %s", p->reason[0] ? p->reason : "denied");
    sl_http_admit_refuse(p->req, p->had_creds, p->reason); /* 401 or 403, as every HTTP route */
    player_free(p);
}

static void admit_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    flv_player_t *p = ud;
    p->finished = 1;
    p->result = result;
    snprintf(p->reason, sizeof p->reason, "%s", reason ? reason : "");
    if (p->in_call)
        return; /* synchronous: on_request goes on */
    if (p->admit == a) {
        p->admit = NULL;
        sl_admit_unref(a);
    }
    admission_finish(p);
}

/* "/live/room1/s.flv" -> "live/room1/s"; 0, SL_EDECLINED or SL_EINVAL. */
static int parse_path(const char *url_path, char *out, size_t cap)
{
    const char *p = url_path;
    while (*p == '/')
        p++;
    size_t n = strlen(p);
    if (n < 4 || strcmp(p + n - 4, ".flv") != 0)
        return SL_EDECLINED;
    n -= 4;
    if (n == 0 || n >= cap)
        return SL_EINVAL;
    memcpy(out, p, n);
    out[n] = '\0';
    if (!strchr(out, '/') || !sl_name_is_safe(out, PATH_MAX_LEN))
        return SL_EINVAL;
    return 0;
}

static int on_request(sl_http_req_t *req, void *ud)
{
    flv_mod_t *mod = ud;
    char path[PATH_MAX_LEN + 1];
    /* Not an HTTP-FLV address of a configured app: declined, so that a
     * static file of that name (the static route runs after this one) is
     * still served, and the server answers 404 otherwise. */
    if (parse_path(req->path, path, sizeof path) != 0)
        return SL_EDECLINED;
    const sl_app_config_t *app = sl_core_app(mod->core, path);
    if (!app)
        return SL_EDECLINED;
    if (mod->stopping)
        return respond_text(req, 503, "server shutting down\n");
    if (!sl_httpflv_app_cfg(app)->httpflv)
        return SL_EDECLINED;
    if (!app->allow_play)
        return respond_text(req, 403, "Playing is not allowed in this application.\n");
    sl_stream_t *st = sl_hub_find(mod->core->hub, path);
    const char *after_app = path + strcspn(path, "/");
    if ((!st || !st->publisher) && strncmp(after_app, "/streams/", 9) == 0)
        return SL_EDECLINED; /* not live: a recording's address (the recorder's route) */
    /* Live or not, admission runs first: start_play answers 404 for an absent
     * stream only once the chain allowed, so on an app with auth a live and an
     * absent stream get the same 401 without credentials (no name probing). */

    flv_player_t *p = sl_calloc(1, sizeof(*p));
    if (!p)
        return SL_ENOMEM;
    p->mod = mod;
    p->req = req;
    memcpy(p->path, path, strlen(path) + 1);
    sl_list_push_back(&mod->players, &p->link);
    sl_session_register(mod->core, &p->sess, &flv_session_ops, "http-flv");
    snprintf(p->sess.remote_addr, sizeof p->sess.remote_addr, "%s", req->remote_addr ? req->remote_addr : "");
    p->sess.remote_port = req->remote_port;
    char scope[PATH_MAX_LEN + 1];
    const char *last = strrchr(path, '/');
    snprintf(scope, sizeof scope, "%.*s", (int)(last - path), path);
    if (sl_session_set_app(&p->sess, scope) || sl_session_set_stream(&p->sess, last + 1) ||
        sl_session_set_query(&p->sess, req->query && req->query[0] ? req->query : NULL)) {
        player_free(p);
        return SL_ENOMEM;
    }
    /* Credentials: query (Red5's names), or a bearer token. */
    char user[512] = "", pass[512] = "", token[SL_HTTP_TOKEN_MAX] = "";
    sl_http_find_creds(req, user, sizeof user, pass, sizeof pass, token, sizeof token);
    p->had_creds = user[0] || pass[0] || token[0];
    sl_admit_req_t ar = {
        .kind = SL_ADMIT_PLAY,
        .app = p->sess.app,
        .stream = p->sess.stream,
        .transport = "http-flv",
        .query = req->query,
        .username = user[0] ? user : NULL,
        .password = pass[0] ? pass : NULL,
        .token = token[0] ? token : NULL,
    };
    sl_admit_t *a = NULL;
    p->in_call = 1;
    int rc = sl_admit(mod->core, &p->sess, &ar, admit_done, p, &a);
    p->in_call = 0;
    if (rc == SL_EPENDING) {
        p->admit = a;
        return 0;
    }
    if (rc == SL_OK && p->finished) {
        admission_finish(p);
        return 0;
    }
    player_free(p);
    return rc ? rc : SL_EINVAL;
}

/* ------------------------------------------------------------------ */
/* the module                                                          */

static int flv_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    sl_core_t *core = sl_host_core(h);
    sl_http_server_t *http = sl_host_http(h);
    (void)api;
    *state = NULL;
    if (!http)
        return 0;
    flv_mod_t *mod = sl_calloc(1, sizeof(*mod));
    if (!mod)
        return SL_ENOMEM;
    mod->core = core;
    sl_list_init(&mod->players);
    const sl_http_route_spec_t route = {.method = "GET", .prefix = "/", .suffixes = ".flv",
                                        .prio = SL_HTTP_PRIO_APP, .name = "http-flv",
                                        .serves = "/{app}/{stream}.flv", .cb = on_request,
                                        .ud = mod};
    int rc = sl_http_route_add(http, &route, NULL);
    if (rc) {
        sl_free(mod);
        return rc;
    }
    *state = mod;
    return 0;
}

/* Ends every response (close callbacks free the players as the loop runs). */
static void flv_stop(void *state)
{
    flv_mod_t *mod = state;
    if (!mod)
        return;
    mod->stopping = 1;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &mod->players) {
        flv_player_t *p = sl_container_of(it, flv_player_t, link);
        if (p->admit) {
            sl_admit_cancel(p->admit);
            p->admit = NULL;
            respond_text(p->req, 503, "server shutting down\n");
            player_free(p);
        } else if (p->streaming) {
            end_stream(p, "server shutdown");
        }
    }
}

static void flv_free(void *state)
{
    flv_mod_t *mod = state;
    if (!mod)
        return;
    /* Close callbacks have run with the loop; anything left never got one. */
    while (!sl_list_empty(&mod->players))
        player_free(sl_container_of(mod->players.next, flv_player_t, link));
    sl_free(mod);
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "httpflv",
    .description = "HTTP-FLV playback",
    .init = flv_init,
    .stop = flv_stop,
    .destroy = flv_free,
};

const sl_builtin_t sl_httpflv_builtin = {
    .plugin = &plugin,
    .config = &sl_httpflv_config_section,
};
