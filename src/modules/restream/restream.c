/*
 * The restream module (see restream.h): the loop side of pulls and pushes.
 * The worker threads (restream_io.c) do all protocol work; this file
 * decides when they run, feeds the hub, and answers the API.
 *
 * A pull is a publisher without a socket: a session of protocol
 * "restream" that publishes its hub stream while the pull is active (from
 * start for mode=always, from the first player for mode=on_demand, until
 * idle_timeout without players) and keeps it published while the source
 * reconnects, so players stay attached across a camera restart. Frames
 * come from one of two inputs: the live source, or the standby file
 * (played in a loop) while the live source is down or when the API forces
 * it. The output timeline is the pull's own: each run of frames from one
 * input (a connection, a file loop) is a segment rebased to continue
 * where the previous one ended, so timestamps stay monotonic across
 * reconnects and switches, and a switch waits for the new input's
 * keyframe (its sequence headers are pushed first).
 *
 * On demand: an admission check (phase "source", after every
 * authentication check allowed the play) starts the pull and holds the
 * player (SL_EPENDING) until the first keyframe is in the hub or
 * on_demand_wait passes, so that HTTP-FLV, HLS and RTMP players all find
 * a live stream.
 *
 * A push rule (configured or from the API) names one stream, or every stream of an app ("*");
 * each live stream it matches gets an output: an internal sink that
 * copies frames into the output's bounded queue (restream_io.c drops to
 * the next keyframe when the destination is slow), started on publish
 * and stopped on unpublish.
 */
#include "modules/restream/restream.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/admission.h"
#include "app/core.h"
#include "app/events.h"
#include "app/services.h"
#include "app/svc/api.h"
#include "app/svc/cluster.h"
#include "app/svc/http.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/map.h"
#include "base/redact.h"
#include "base/time.h"
#include "media/audio_bridge.h"
#include "media/flv.h"
#include "modules/restream/restream_config.h"
#include "modules/restream/restream_io.h"
#include "modules/restream/restream_servlet.h"
#include "modules/restream/restream_spec.h"
#include "proto/http/http.h"
#include "sluice/errors.h"

#define MAX_WAITERS 64            /* players held per on_demand pull while it starts */
#define CHAN_MAX_BYTES (32u << 20)/* frames from a pull's threads not yet on the loop */
#define SEG_GAP_MS 40             /* between the last frame of a segment and the next */
#define SEG_JUMP_MS 10000         /* a source timeline jump this large starts a segment */
#define API_BODY_MAX 16384

enum { SRC_LIVE = 0, SRC_STANDBY = 1 };
enum { FORCE_AUTO = 0, FORCE_LIVE = 1, FORCE_STANDBY = 2 };

typedef struct rs_mod rs_mod_t;

typedef struct waiter {
    sl_admit_t *a;                /* our reference */
    uint64_t deadline;            /* loop time */
} waiter_t;

typedef struct rs_pull {
    sl_session_t sess;            /* must stay first; registered while active */
    rs_mod_t *m;
    sl_list_t link;               /* in m->pulls */
    sl_rs_spec_t spec;
    char path[2 * SL_RS_NAME_MAX + 2]; /* hub name app/stream */
    char log_url[SL_REDACT_MAX];
    int from_api;
    int active;                   /* started: session registered, stream published */
    sl_stream_t *st;
    sl_audio_bridge_t *abridge;   /* non-AAC audio (Opus, G.711, MP3): AAC for the hub, the original aside */
    sl_rs_chan_t *ch;
    sl_rs_input_t *in[2];         /* live, standby */
    int live_up;                  /* the live source is connected */
    int force;                    /* FORCE_* */
    int cur;                      /* input feeding the stream: SRC_*, or -1 */
    int fed;                      /* a keyframe (or audio without video) reached the hub */
    sl_buf_t *cfg[2][2];          /* latest configuration bodies [src][0 video, 1 audio] */
    /* output timeline */
    int have_out, seg_new, need_key;
    int64_t seg_src0;
    uint32_t seg_out0, last_out, last_kind[2];
    /* status */
    uint64_t ups, downs;
    int down_said;                /* pull_down sent for the current outage */
    uint64_t activated_ms, idle_since;
    char last_error[200];
    char source_desc[200];
    waiter_t waiters[MAX_WAITERS];
    int n_waiters;
    char kick_reason[128];        /* a kick waiting for the deferral timer ("" = none) */
    char guid[SL_RS_GUID_MAX];    /* given or made by the servlet; "" = app/stream is its guid */
    char sv_type[SL_RS_TYPE_MAX]; /* the servlet's type, "" = from the URL */
    uint64_t prov_hash;           /* made for a stream manager's provision: its hash; 0 = not */
    int prov_seen;                /* the provision scan found it still ours */
} rs_pull_t;

typedef struct rs_rule rs_rule_t;

typedef struct rs_out {
    sl_list_t link;               /* in rule->outs */
    rs_rule_t *rule;
    char path[2 * SL_RS_NAME_MAX + 2];
    char app[SL_RS_NAME_MAX], stream[SL_RS_NAME_MAX];
    char url[SL_RS_URL_MAX];
    char log_url[SL_REDACT_MAX];
    sl_sink_t sink;
    sl_rs_chan_t *ch;
    sl_rs_output_t *o;
    int up;
    int down_sent;                /* push_down already said for this outage */
    uint64_t started_ms;
    sl_log_ctx_t log;
} rs_out_t;

struct rs_rule {
    sl_list_t link;               /* in m->rules */
    rs_mod_t *m;
    char id[24];
    sl_rs_spec_t spec;
    char log_url[SL_REDACT_MAX];
    int from_api;
    sl_list_t outs;
    char guid[SL_RS_GUID_MAX];    /* given or made by the servlet; "" = id is its guid */
    char sv_type[SL_RS_TYPE_MAX]; /* the servlet's type, "" = from the URL */
    uint64_t prov_hash;           /* made for a stream manager's provision: its hash; 0 = not */
    int prov_seen;                /* the provision scan found it still ours */
};

struct rs_mod {
    sl_core_t *core;              /* borrowed */
    const sl_restream_config_t *cfg; /* the configuration we started with */
    sl_list_t pulls, rules;
    size_t n_pulls, n_rules, n_outputs;
    uint64_t next_rule;
    int ev_id, admit_id;
    uv_timer_t tick;
    uv_timer_t defer;             /* runs kicks outside the kicker's call stack */
    int stopping;
    const sl_svc_api_t *api;
    void *api_ud;
    const sl_http_svc_t *http;    /* for the servlet route; NULL when not served */
    void *http_ud;
    sl_http_route_t *sv_route;
    sl_map_t prov_done;           /* provisionGuid -> uint64_t (owned): the hash last tried here */
};

static const sl_log_ctx_t g_ctx = {.proto = "restream"};

static void pull_items(void *ud, sl_rs_item_t *items);
static void out_items(void *ud, sl_rs_item_t *items);

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static sl_rs_timing_t timing(const rs_mod_t *m)
{
    const sl_restream_config_t *c = m->cfg;
    return (sl_rs_timing_t){.open_ms = (uint64_t)c->open_timeout_ms,
                            .read_ms = (uint64_t)c->read_timeout_ms,
                            .retry_min_ms = (uint64_t)c->retry_min_ms,
                            .retry_max_ms = (uint64_t)c->retry_max_ms};
}

/*
 * A URL as logs and the API may show it: userinfo passwords and secret
 * query values masked (sl_redact), and for a push destination the last
 * path segment too, which is the stream key of every RTMP service.
 */
static void url_for_log(const char *url, int push, char *out, size_t cap)
{
    sl_redact(url, out, cap);
    if (!push || strncmp(out, "rtmp", 4) != 0)
        return;
    char *q = strchr(out, '?');
    size_t end = q ? (size_t)(q - out) : strlen(out);
    char *scheme_end = strstr(out, "://");
    char *slash = NULL;
    for (size_t i = end; i > 0; i--)
        if (out[i - 1] == '/') {
            slash = out + i - 1;
            break;
        }
    if (!slash || !scheme_end || slash < scheme_end + 3 || strchr(scheme_end + 3, '/') == slash)
        return; /* no path segment after the app */
    char tail[SL_REDACT_MAX];
    snprintf(tail, sizeof tail, "%s", out + end);
    snprintf(slash + 1, cap - (size_t)(slash + 1 - out), "***%s", tail);
}

static size_t count_app(sl_list_t *head, size_t off_spec, const char *app)
{
    size_t n = 0;
    for (sl_list_t *it = head->next; it != head; it = it->next) {
        const sl_rs_spec_t *s = (const sl_rs_spec_t *)((char *)it + off_spec);
        if (strcmp(s->app, app) == 0)
            n++;
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* pulls                                                               */

static const sl_session_ops_t pull_session_ops;

static void pull_resume_waiters(rs_pull_t *p)
{
    int n = p->n_waiters;
    p->n_waiters = 0;
    for (int i = 0; i < n; i++)
        sl_admit_resume(p->waiters[i].a, SL_EDECLINED, NULL);
}

static void drop_cfgs(rs_pull_t *p, int src)
{
    for (int k = 0; k < 2; k++) {
        if (p->cfg[src][k])
            sl_buf_unref(p->cfg[src][k]);
        p->cfg[src][k] = NULL;
    }
}

static void start_standby(rs_pull_t *p)
{
    if (p->in[SRC_STANDBY] || !p->spec.standby[0] || !p->ch)
        return;
    sl_rs_timing_t t = timing(p->m);
    if (sl_rs_input_start(p->ch, SRC_STANDBY, p->spec.standby, 1, 0, &t, &p->in[SRC_STANDBY]))
        SL_LOGW(&p->sess.log, "cannot start the standby source %s", p->spec.standby);
}

static void stop_standby(rs_pull_t *p)
{
    sl_rs_input_stop(p->in[SRC_STANDBY]);
    p->in[SRC_STANDBY] = NULL;
    drop_cfgs(p, SRC_STANDBY);
}

/* Pushes f (borrowed) to the hub; the first keyframe releases the players held by admission. */
static void feed_frame(rs_pull_t *p, sl_frame_t *f)
{
    if (!p->st)
        return;
    if (f->kind == SL_FLV_AUDIO && f->codec != SL_CODEC_AAC && !p->abridge &&
        sl_audio_bridge_new(p->m->core->loop, p->st, &p->sess.log, &p->abridge))
        p->abridge = NULL; /* no memory: the original goes into the hub as is */
    if (f->kind == SL_FLV_AUDIO && p->abridge)
        sl_audio_bridge_push(p->abridge, f);
    else
        sl_stream_push(p->st, f);
    if (!p->fed && !(f->flags & SL_FRAME_CONFIG) &&
        ((f->kind == SL_FLV_VIDEO && (f->flags & SL_FRAME_KEY)) ||
         (f->kind == SL_FLV_AUDIO && !p->cfg[p->cur][0]))) {
        p->fed = 1;
        pull_resume_waiters(p);
    }
}

/* Hands a frame body (a reference is taken) to the hub at output time ts. */
static void feed(rs_pull_t *p, uint8_t kind, sl_buf_t *body, uint32_t ts)
{
    sl_frame_t *f;
    if (sl_frame_new(kind, ts, sl_buf_ref(body), &f))
        return;
    feed_frame(p, f);
    sl_frame_unref(f);
}

/* Makes src the input feeding the stream: its configurations first, then its next keyframe. */
static void switch_to(rs_pull_t *p, int src)
{
    if (p->cur == src)
        return;
    SL_LOGI(&p->sess.log, "pull now fed by the %s source", src == SRC_LIVE ? "live" : "standby");
    p->cur = src;
    p->seg_new = 1;
    p->need_key = 1;
    uint32_t ts = p->have_out ? p->last_out + SEG_GAP_MS : 0;
    for (int k = 0; k < 2; k++)
        if (p->cfg[src][k])
            feed(p, k == 0 ? SL_FLV_VIDEO : SL_FLV_AUDIO, p->cfg[src][k], ts);
    if (src == SRC_LIVE && p->force != FORCE_STANDBY)
        stop_standby(p);
}

/* Live went down (or the API changed the choice): what feeds the stream now. */
static void choose_when_down(rs_pull_t *p)
{
    if (p->force == FORCE_STANDBY || (!p->live_up && p->force == FORCE_AUTO && p->spec.standby[0])) {
        start_standby(p);
        if (p->cur != SRC_STANDBY) {
            p->cur = -1; /* the standby's first keyframe switches */
        }
    } else if (!p->live_up) {
        p->cur = -1;
    }
}

static void on_frame_item(rs_pull_t *p, sl_rs_item_t *it)
{
    sl_buf_t *b = it->body;
    sl_frame_t *f; /* made once: its flags decide, then it goes to the hub with its new time */
    if (sl_frame_new(it->kind, 0, sl_buf_ref(b), &f))
        return;
    int is_cfg = (f->flags & SL_FRAME_CONFIG) != 0;
    int is_key = f->kind == SL_FLV_VIDEO && (f->flags & SL_FRAME_KEY);
    int src = it->src;
    if (is_cfg) {
        int k = it->kind == SL_FLV_VIDEO ? 0 : 1;
        if (p->cfg[src][k])
            sl_buf_unref(p->cfg[src][k]);
        p->cfg[src][k] = sl_buf_ref(b);
    }
    if (src != p->cur) {
        /* Switch at this input's first keyframe (or audio, when it has no video). */
        int wants = src == SRC_LIVE ? (p->live_up && p->force != FORCE_STANDBY)
                                    : (p->force == FORCE_STANDBY ||
                                       (!p->live_up && p->force == FORCE_AUTO));
        if (!wants || is_cfg || !(is_key || (it->kind == SL_FLV_AUDIO && !p->cfg[src][0])))
            goto drop;
        switch_to(p, src);
    }
    if (p->need_key && !is_cfg) {
        if (it->kind == SL_FLV_VIDEO && !is_key)
            goto drop;
        if (it->kind == SL_FLV_VIDEO || !p->cfg[src][0])
            p->need_key = 0;
        else if (it->kind == SL_FLV_AUDIO)
            goto drop;
    }
    /* Rebase into the output timeline. */
    int64_t d = it->dts_ms - p->seg_src0;
    if (p->seg_new || it->seg_start || (!p->seg_new && (d < -SEG_JUMP_MS || d > (int64_t)UINT32_MAX ||
                                                         (p->have_out && (int64_t)p->seg_out0 + d >
                                                                             (int64_t)p->last_out + SEG_JUMP_MS)))) {
        p->seg_src0 = it->dts_ms;
        p->seg_out0 = p->have_out ? p->last_out + SEG_GAP_MS : 0;
        p->seg_new = 0;
        d = 0;
    }
    if (d < 0)
        d = 0;
    uint32_t ts = p->seg_out0 + (uint32_t)d;
    int k = it->kind == SL_FLV_VIDEO ? 0 : 1;
    if (p->have_out && ts < p->last_kind[k])
        ts = p->last_kind[k];
    p->last_kind[k] = ts;
    if (!p->have_out || ts > p->last_out)
        p->last_out = ts;
    p->have_out = 1;
    f->dts_ms = ts;
    feed_frame(p, f);
drop:
    sl_frame_unref(f);
}

static void pull_items(void *ud, sl_rs_item_t *items)
{
    rs_pull_t *p = ud;
    while (items) {
        sl_rs_item_t *it = items;
        items = it->next;
        if (p->active) {
            if (it->type == SL_RS_ITEM_FRAME) {
                on_frame_item(p, it);
            } else if (it->type == SL_RS_ITEM_UP && it->src == SRC_LIVE) {
                p->live_up = 1;
                p->ups++;
                snprintf(p->source_desc, sizeof p->source_desc, "%s", it->msg);
                SL_LOGI(&p->sess.log, "pull up: %s (%s)", p->log_url, it->msg);
                sl_events_emit_session(p->m->core, &p->sess, SL_EV_PULL_UP, it->msg);
                p->down_said = 0;
            } else if (it->type == SL_RS_ITEM_DOWN && it->src == SRC_LIVE) {
                snprintf(p->last_error, sizeof p->last_error, "%s", it->msg);
                if (p->live_up) {
                    p->downs++;
                    SL_LOGI(&p->sess.log, "pull down: %s: %s", p->log_url, it->msg);
                } else {
                    SL_LOGD(&p->sess.log, "pull of %s failed: %s", p->log_url, it->msg);
                }
                /* One pull_down per outage (retries that keep failing say nothing more). */
                if (!p->down_said)
                    sl_events_emit_session(p->m->core, &p->sess, SL_EV_PULL_DOWN, it->msg);
                p->down_said = 1;
                p->live_up = 0;
                drop_cfgs(p, SRC_LIVE);
                choose_when_down(p);
            } else if (it->type == SL_RS_ITEM_DOWN) {
                SL_LOGW(&p->sess.log, "standby source: %s", it->msg);
            }
        }
        sl_rs_item_free(it);
    }
}

/* Starts the pull: session, published stream, inputs. 0 or an error (nothing held). */
static int pull_activate(rs_pull_t *p)
{
    rs_mod_t *m = p->m;
    if (p->active)
        return 0;
    memset(&p->sess, 0, sizeof p->sess);
    p->sess.socketless = 1;
    sl_session_register(m->core, &p->sess, &pull_session_ops, "restream");
    snprintf(p->sess.remote_addr, sizeof p->sess.remote_addr, "%s", "pull");
    int rc = sl_session_set_app(&p->sess, p->spec.app);
    if (!rc)
        rc = sl_session_set_stream(&p->sess, p->spec.stream);
    if (!rc)
        rc = sl_hub_publish(m->core->hub, p->path, &p->sess, &p->st);
    if (!rc)
        rc = sl_rs_chan_new(m->core->loop, CHAN_MAX_BYTES, pull_items, p, &p->ch);
    sl_rs_timing_t t = timing(m);
    if (!rc)
        rc = sl_rs_input_start(p->ch, SRC_LIVE, p->spec.url, 0, p->spec.rtsp_udp, &t,
                               &p->in[SRC_LIVE]);
    if (rc) {
        if (p->ch)
            sl_rs_chan_close(p->ch);
        p->ch = NULL;
        if (p->st)
            sl_stream_unpublish(p->st);
        p->st = NULL;
        sl_session_unregister(m->core, &p->sess);
        snprintf(p->last_error, sizeof p->last_error, "%s",
                 rc == SL_EBUSY ? "the stream is published by someone else" : sl_strerror(rc));
        return rc;
    }
    p->active = 1;
    p->live_up = 0;
    p->cur = -1;
    p->fed = 0;
    p->have_out = 0;
    p->seg_new = 1;
    p->need_key = 1;
    p->down_said = 0;
    p->activated_ms = uv_now(m->core->loop);
    p->idle_since = p->activated_ms;
    sl_session_set_role(&p->sess, SL_ROLE_PUBLISHER);
    SL_LOGI(&p->sess.log, "pull started from %s (%s)", p->log_url,
            p->spec.mode == SL_RS_ON_DEMAND ? "on demand" : "always");
    sl_events_emit_session(m->core, &p->sess, SL_EV_PUBLISH, NULL);
    choose_when_down(p);
    return 0;
}

static void pull_deactivate(rs_pull_t *p, const char *why)
{
    if (!p->active)
        return;
    rs_mod_t *m = p->m;
    p->active = 0;
    sl_rs_input_stop(p->in[SRC_LIVE]);
    sl_rs_input_stop(p->in[SRC_STANDBY]);
    p->in[SRC_LIVE] = p->in[SRC_STANDBY] = NULL;
    sl_rs_chan_close(p->ch);
    p->ch = NULL;
    drop_cfgs(p, SRC_LIVE);
    drop_cfgs(p, SRC_STANDBY);
    p->live_up = 0;
    pull_resume_waiters(p);
    SL_LOGI(&p->sess.log, "pull stopped: %s", why);
    sl_audio_bridge_free(p->abridge); /* before the unpublish: it pushes to the stream */
    p->abridge = NULL;
    if (p->st) {
        sl_stream_t *st = p->st;
        p->st = NULL;
        sl_stream_unpublish(st);
        sl_events_emit_session(m->core, &p->sess, SL_EV_UNPUBLISH, why);
    }
    sl_session_set_role(&p->sess, SL_ROLE_NONE);
    sl_session_unregister(m->core, &p->sess);
}

static void pull_free(rs_pull_t *p)
{
    pull_deactivate(p, "removed");
    sl_list_remove(&p->link);
    p->m->n_pulls--;
    sl_free(p);
}

static void on_defer(uv_timer_t *t)
{
    rs_mod_t *m = t->data;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->pulls) {
        rs_pull_t *p = sl_container_of(it, rs_pull_t, link);
        if (p->kick_reason[0]) {
            char why[sizeof p->kick_reason];
            snprintf(why, sizeof why, "%s", p->kick_reason);
            p->kick_reason[0] = '\0';
            pull_deactivate(p, why);
        }
    }
}

/*
 * The API (or shutdown) kicks the pull's session: it stops on the next loop
 * turn, not inside the caller, which may still read the session or walk the
 * session list. An always pull starts again at the next tick (with a kick,
 * as with a publisher that reconnects); DELETE the pull to end it for good.
 */
static void pull_kick(sl_session_t *s, const char *reason)
{
    rs_pull_t *p = (rs_pull_t *)s;
    snprintf(p->kick_reason, sizeof p->kick_reason, "%s", reason && *reason ? reason : "kicked");
    if (!uv_is_closing((uv_handle_t *)&p->m->defer))
        uv_timer_start(&p->m->defer, on_defer, 0, 0);
}

static void pull_shutdown(sl_session_t *s) { pull_kick(s, "server shutdown"); }

static const sl_session_ops_t pull_session_ops = {
    .kick = pull_kick,
    .shutdown = pull_shutdown,
};

static rs_pull_t *pull_find(rs_mod_t *m, const char *app, const char *stream)
{
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->pulls) {
        rs_pull_t *p = sl_container_of(it, rs_pull_t, link);
        if (strcmp(p->spec.app, app) == 0 && strcmp(p->spec.stream, stream) == 0)
            return p;
    }
    return NULL;
}

/* Adds a pull (not started). 0, SL_EBUSY (exists), SL_ETOOBIG (budget), SL_ENOMEM. */
static int pull_add(rs_mod_t *m, const sl_rs_spec_t *s, int from_api, rs_pull_t **out)
{
    if (pull_find(m, s->app, s->stream))
        return SL_EBUSY;
    if ((int64_t)m->n_pulls >= m->cfg->max_pulls ||
        (int64_t)count_app(&m->pulls, offsetof(rs_pull_t, spec) - offsetof(rs_pull_t, link),
                           s->app) >= m->cfg->max_pulls_per_app)
        return SL_ETOOBIG;
    rs_pull_t *p = sl_calloc(1, sizeof *p);
    if (!p)
        return SL_ENOMEM;
    p->m = m;
    p->spec = *s;
    if (!p->spec.idle_timeout_ms)
        p->spec.idle_timeout_ms = m->cfg->idle_timeout_ms;
    p->from_api = from_api;
    p->cur = -1;
    snprintf(p->path, sizeof p->path, "%s/%s", s->app, s->stream);
    url_for_log(s->url, 0, p->log_url, sizeof p->log_url);
    sl_list_push_back(&m->pulls, &p->link);
    m->n_pulls++;
    if (out)
        *out = p;
    return 0;
}

/* Players of the pull's stream: attached sinks, and sessions playing it without one (HLS). */
static size_t pull_viewers(rs_pull_t *p)
{
    size_t n = p->st ? p->st->n_players : 0;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &p->m->core->sessions) {
        sl_session_t *s = sl_container_of(it, sl_session_t, link);
        if (s->role == SL_ROLE_SUBSCRIBER && s->app && s->stream &&
            strcmp(s->app, p->spec.app) == 0 && strcmp(s->stream, p->spec.stream) == 0)
            n++;
    }
    return n;
}

static void prov_scan(rs_mod_t *m);

static void on_tick(uv_timer_t *t)
{
    rs_mod_t *m = t->data;
    uint64_t now = uv_now(m->core->loop);
    if (!m->stopping)
        prov_scan(m);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->pulls) {
        rs_pull_t *p = sl_container_of(it, rs_pull_t, link);
        if (!p->active) {
            if (p->spec.mode == SL_RS_ALWAYS && !m->stopping)
                pull_activate(p);
            continue;
        }
        for (int i = 0; i < p->n_waiters;) {
            if (p->waiters[i].deadline <= now) {
                sl_admit_resume(p->waiters[i].a, SL_EDECLINED, NULL);
                p->waiters[i] = p->waiters[--p->n_waiters];
            } else {
                i++;
            }
        }
        if (p->spec.mode != SL_RS_ON_DEMAND)
            continue;
        if (pull_viewers(p) || p->n_waiters)
            p->idle_since = now;
        else if (now - p->idle_since >= (uint64_t)p->spec.idle_timeout_ms)
            pull_deactivate(p, "idle");
    }
}

/* Admission, phase "source": a play of an on_demand pull starts it and waits for its first keyframe. */
static int admit_check(sl_admit_t *a, void *ud)
{
    rs_mod_t *m = ud;
    const sl_admit_req_t *r = sl_admit_request(a);
    if (r->kind != SL_ADMIT_PLAY || !r->app || !r->stream || m->stopping)
        return SL_EDECLINED;
    rs_pull_t *p = pull_find(m, r->app, r->stream);
    if (!p || p->spec.mode != SL_RS_ON_DEMAND)
        return SL_EDECLINED;
    uint64_t now = uv_now(m->core->loop);
    p->idle_since = now;
    if (!p->active && pull_activate(p))
        return SL_EDECLINED;
    if (p->fed || p->n_waiters >= MAX_WAITERS || m->cfg->on_demand_wait_ms == 0)
        return SL_EDECLINED;
    p->waiters[p->n_waiters++] = (waiter_t){sl_admit_ref(a), now + (uint64_t)m->cfg->on_demand_wait_ms};
    return SL_EPENDING;
}

/* ------------------------------------------------------------------ */
/* pushes                                                              */

static void out_stop(rs_out_t *o, const char *why)
{
    rs_mod_t *m = o->rule->m;
    SL_LOGI(&o->log, "push to %s stopped: %s", o->log_url, why);
    sl_stream_remove_sink(&o->sink);
    sl_rs_output_stop(o->o);
    sl_rs_chan_close(o->ch);
    sl_list_remove(&o->link);
    m->n_outputs--;
    sl_free(o);
}

static void out_on_frame(sl_sink_t *sink, sl_frame_t *f)
{
    rs_out_t *o = sink->ctx;
    if (f->kind != SL_FLV_VIDEO && f->kind != SL_FLV_AUDIO)
        return;
    if (f->codec != SL_CODEC_AVC && f->codec != SL_CODEC_HEVC && f->codec != SL_CODEC_AAC &&
        f->codec != SL_CODEC_OPUS)
        return;
    if (f->data_off > f->body->len)
        return;
    sl_rs_output_offer(o->o, f->kind, f->codec, (f->flags & SL_FRAME_KEY) != 0,
                       (f->flags & SL_FRAME_CONFIG) != 0, f->dts_ms, f->cts_ms,
                       f->body->data + f->data_off, f->body->len - f->data_off);
}

static void out_on_unpublish(sl_sink_t *sink)
{
    rs_out_t *o = sink->ctx;
    out_stop(o, "stream unpublished");
}

static const sl_sink_ops_t out_sink_ops = {
    .on_frame = out_on_frame,
    .on_publish = NULL,
    .on_unpublish = out_on_unpublish,
};

/* push_up / push_down on the bus (no session: the output is the server's own). */
static void out_event(rs_out_t *o, sl_event_type_t type, const char *reason)
{
    sl_event_t ev = {.type = type, .proto = "restream", .app = o->app, .stream = o->stream,
                     .reason = reason, .path = o->log_url};
    sl_events_emit(o->rule->m->core, &ev);
}

static void out_items(void *ud, sl_rs_item_t *items)
{
    rs_out_t *o = ud;
    while (items) {
        sl_rs_item_t *it = items;
        items = it->next;
        if (it->type == SL_RS_ITEM_UP) {
            o->up = 1;
            o->down_sent = 0;
            SL_LOGI(&o->log, "push up: %s", o->log_url);
            out_event(o, SL_EV_PUSH_UP, NULL);
        } else if (it->type == SL_RS_ITEM_DOWN) {
            if (o->up)
                SL_LOGI(&o->log, "push down: %s: %s", o->log_url, it->msg);
            else
                SL_LOGD(&o->log, "push to %s failed: %s", o->log_url, it->msg);
            /* One push_down per loss, and one for a first connection that failed. */
            if (o->up || !o->down_sent)
                out_event(o, SL_EV_PUSH_DOWN, it->msg);
            o->down_sent = 1;
            o->up = 0;
        }
        sl_rs_item_free(it);
    }
}

/* Starts rule's output for live stream (app, stream) unless it has one. */
static void out_start(rs_rule_t *r, const char *app, const char *stream)
{
    rs_mod_t *m = r->m;
    char path[sizeof ((rs_out_t *)0)->path];
    snprintf(path, sizeof path, "%s/%s", app, stream);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &r->outs) {
        if (strcmp(sl_container_of(it, rs_out_t, link)->path, path) == 0)
            return;
    }
    if ((int64_t)m->n_outputs >= m->cfg->max_outputs) {
        SL_LOGW(&g_ctx, "push of %s not started: restream.max_outputs (%lld) reached", path,
                (long long)m->cfg->max_outputs);
        sl_core_budget_exceeded(m->core, SL_BUDGET_CONNECTIONS, NULL);
        return;
    }
    rs_out_t *o = sl_calloc(1, sizeof *o);
    if (!o)
        return;
    o->rule = r;
    snprintf(o->path, sizeof o->path, "%s", path);
    snprintf(o->app, sizeof o->app, "%s", app);
    snprintf(o->stream, sizeof o->stream, "%s", stream);
    /* "*" rules: {stream} in the url is the stream's name, else /name is appended. */
    const char *u = r->spec.url, *ph = strstr(u, "{stream}");
    int un;
    if (ph)
        un = snprintf(o->url, sizeof o->url, "%.*s%s%s", (int)(ph - u), u, stream, ph + 8);
    else if (strcmp(r->spec.stream, "*") == 0)
        un = snprintf(o->url, sizeof o->url, "%s/%s", u, stream);
    else
        un = snprintf(o->url, sizeof o->url, "%s", u);
    if (un < 0 || (size_t)un >= sizeof o->url) {
        SL_LOGW(&g_ctx, "push of %s not started: destination url too long", path);
        sl_free(o);
        return;
    }
    url_for_log(o->url, 1, o->log_url, sizeof o->log_url);
    o->log = (sl_log_ctx_t){.proto = "restream", .app = r->spec.app, .stream = NULL};
    o->sink.ops = &out_sink_ops;
    o->sink.ctx = o;
    o->sink.internal = 1;
    sl_rs_timing_t t = timing(m);
    if (sl_rs_chan_new(m->core->loop, 1u << 20, out_items, o, &o->ch)) {
        sl_free(o);
        return;
    }
    if (sl_rs_output_start(o->ch, 0, o->url, (size_t)m->cfg->push_queue_bytes, &t, &o->o)) {
        sl_rs_chan_close(o->ch);
        sl_free(o);
        return;
    }
    sl_list_push_back(&r->outs, &o->link);
    m->n_outputs++;
    o->started_ms = uv_now(m->core->loop);
    SL_LOGI(&o->log, "push of %s to %s started", path, o->log_url);
    if (sl_hub_add_sink(m->core->hub, path, &o->sink))
        out_stop(o, "out of memory");
}

static int rule_matches(const rs_rule_t *r, const char *app, const char *stream)
{
    return strcmp(r->spec.app, app) == 0 &&
           (strcmp(r->spec.stream, "*") == 0 || strcmp(r->spec.stream, stream) == 0);
}

/* Starts the rule's outputs for the streams already live. */
static void rule_scan(rs_rule_t *r)
{
    sl_hub_t *hub = r->m->core->hub;
    size_t pos = 0;
    sl_stream_t *st;
    char path[2 * SL_RS_NAME_MAX + 2];
    while ((st = sl_hub_next(hub, &pos))) {
        if (!st->publisher)
            continue;
        snprintf(path, sizeof path, "%s", st->name);
        char *slash = strrchr(path, '/');
        if (!slash)
            continue;
        *slash = '\0';
        if (rule_matches(r, path, slash + 1))
            out_start(r, path, slash + 1);
    }
}

static void rule_free(rs_rule_t *r)
{
    while (!sl_list_empty(&r->outs))
        out_stop(sl_container_of(r->outs.next, rs_out_t, link), "push removed");
    sl_list_remove(&r->link);
    r->m->n_rules--;
    sl_free(r);
}

static int rule_add(rs_mod_t *m, const sl_rs_spec_t *s, int from_api, rs_rule_t **out)
{
    if ((int64_t)m->n_rules >= m->cfg->max_pushes ||
        (int64_t)count_app(&m->rules, offsetof(rs_rule_t, spec) - offsetof(rs_rule_t, link),
                           s->app) >= m->cfg->max_pushes_per_app)
        return SL_ETOOBIG;
    rs_rule_t *r = sl_calloc(1, sizeof *r);
    if (!r)
        return SL_ENOMEM;
    r->m = m;
    r->spec = *s;
    r->from_api = from_api;
    snprintf(r->id, sizeof r->id, "p%llu", (unsigned long long)++m->next_rule);
    url_for_log(s->url, 1, r->log_url, sizeof r->log_url);
    sl_list_init(&r->outs);
    sl_list_push_back(&m->rules, &r->link);
    m->n_rules++;
    if (out)
        *out = r;
    return 0;
}

static void on_event(const sl_event_t *ev, void *ud)
{
    rs_mod_t *m = ud;
    if (ev->type != SL_EV_PUBLISH || !ev->app || !ev->stream || m->stopping)
        return;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->rules) {
        rs_rule_t *r = sl_container_of(it, rs_rule_t, link);
        if (rule_matches(r, ev->app, ev->stream))
            out_start(r, ev->app, ev->stream);
    }
}

/* ------------------------------------------------------------------ */
/* API: /api/v1/restream/pulls, /api/v1/restream/pushes                */

static json_t *pull_json(rs_pull_t *p)
{
    const char *state = !p->active ? "idle" : p->live_up ? "up" : p->ups ? "down" : "connecting";
    const char *force = p->force == FORCE_LIVE ? "live" : p->force == FORCE_STANDBY ? "standby" : "auto";
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s?, s:s, s:s, s:b, s:s, s:I, s:I, s:s, s:s, s:I, s:I, s:I}",
                     "app", p->spec.app, "stream", p->spec.stream, "url", p->log_url, "mode",
                     p->spec.mode == SL_RS_ON_DEMAND ? "on_demand" : "always", "idle_timeout_ms",
                     (json_int_t)p->spec.idle_timeout_ms, "standby",
                     p->spec.standby[0] ? p->spec.standby : NULL, "source", force, "state", state,
                     "on_standby", p->active && p->cur == SRC_STANDBY, "origin",
                     p->from_api ? "api" : "config", "reconnects",
                     (json_int_t)(p->ups > 0 ? p->ups - 1 : 0), "downs", (json_int_t)p->downs,
                     "last_error", p->last_error, "source_info", p->source_desc, "players",
                     (json_int_t)(p->active ? pull_viewers(p) : 0), "frames_in",
                     (json_int_t)(p->st ? p->st->stats.frames_in : 0), "bytes_in",
                     (json_int_t)(p->st ? p->st->stats.bytes_in : 0));
}

static json_t *rule_json(rs_rule_t *r)
{
    json_t *outs = json_array();
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &r->outs) {
        rs_out_t *o = sl_container_of(it, rs_out_t, link);
        sl_rs_out_stats_t s;
        sl_rs_output_stats(o->o, &s);
        json_array_append_new(
            outs, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s}", "stream", o->path,
                            "url", o->log_url, "state", s.up ? "up" : s.errors ? "down" : "connecting",
                            "bytes", (json_int_t)s.bytes, "frames", (json_int_t)s.frames, "errors",
                            (json_int_t)s.errors, "reconnects", (json_int_t)s.reconnects, "dropped",
                            (json_int_t)s.dropped, "last_error", s.last_error));
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "id", r->id, "app", r->spec.app,
                     "stream", r->spec.stream, "url", r->log_url, "type",
                     strncmp(r->spec.url, "srt", 3) == 0 ? "srt-push" : "rtmp-push", "origin",
                     r->from_api ? "api" : "config", "outputs", outs);
}

/* Reads a JSON body's string field into out; 0, -1 absent, -2 invalid. */
static int body_str(json_t *o, const char *k, char *out, size_t cap)
{
    json_t *v = json_object_get(o, k);
    if (!v)
        return -1;
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return -2;
    snprintf(out, cap, "%s", json_string_value(v));
    return 0;
}

/* Builds a spec from a JSON body through the text parser, so both share every check. */
static int spec_from_json(json_t *b, int push, sl_rs_spec_t *s, const char **why)
{
    char app[SL_RS_NAME_MAX], stream[SL_RS_NAME_MAX], url[SL_RS_URL_MAX];
    char mode[32] = "", idle[32] = "", standby[SL_RS_PATH_MAX] = "", tr[8] = "";
    if (body_str(b, "app", app, sizeof app) || body_str(b, "stream", stream, sizeof stream) ||
        body_str(b, "url", url, sizeof url)) {
        *why = "app, stream and url are required strings";
        return SL_EINVAL;
    }
    if (body_str(b, "mode", mode, sizeof mode) == -2 ||
        body_str(b, "standby", standby, sizeof standby) == -2 ||
        body_str(b, "rtsp_transport", tr, sizeof tr) == -2) {
        *why = "mode, standby and rtsp_transport must be strings";
        return SL_EINVAL;
    }
    json_t *it = json_object_get(b, "idle_timeout");
    if (json_is_integer(it))
        snprintf(idle, sizeof idle, "%llds", (long long)json_integer_value(it));
    else if (it && body_str(b, "idle_timeout", idle, sizeof idle) == -2) {
        *why = "idle_timeout must be seconds or a duration string";
        return SL_EINVAL;
    }
    if (strpbrk(app, " \t\r\n") || strpbrk(stream, " \t\r\n") || strpbrk(standby, " \t\r\n") ||
        strpbrk(mode, " \t\r\n") || strpbrk(idle, " \t\r\n") || strpbrk(tr, " \t\r\n")) {
        *why = "fields must not contain spaces";
        return SL_EINVAL;
    }
    char line[SL_RS_LINE_MAX];
    int n = snprintf(line, sizeof line, "%s/%s %s", app, stream, url);
    if (!push) {
        if (mode[0])
            n += snprintf(line + n, sizeof line - (size_t)n, " mode=%s", mode);
        if (idle[0] && n < (int)sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, " idle_timeout=%s", idle);
        if (standby[0] && n < (int)sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, " standby=%s", standby);
        if (tr[0] && n < (int)sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, " rtsp_transport=%s", tr);
    }
    if (n >= (int)sizeof line) {
        *why = "entry too long";
        return SL_EINVAL;
    }
    int rc = sl_rs_spec_parse(line, (size_t)n, push, s, why);
    if (rc == 1) {
        *why = "empty entry";
        return SL_EINVAL;
    }
    return rc;
}

static int api_handler(sl_http_req_t *req, void *ud)
{
    rs_mod_t *m = ud;
    const sl_svc_api_t *api = m->api;
    char path[1024];
    if (strncmp(req->path, "/api/v1/", 8) != 0 || strlen(req->path) >= sizeof path)
        return api->err(req, 404, "No such API endpoint.");
    snprintf(path, sizeof path, "%s", req->path + 8);
    char *seg[6];
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == 5)
            return api->err(req, 404, "No such API endpoint.");
        seg[n++] = t;
    }
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    int post = strcmp(req->method, "POST") == 0;
    int del = strcmp(req->method, "DELETE") == 0;
    if (n < 2 || strcmp(seg[0], "restream") != 0)
        return api->err(req, 404, "No such API endpoint.");
    int pulls = strcmp(seg[1], "pulls") == 0, pushes = strcmp(seg[1], "pushes") == 0;
    if (!pulls && !pushes)
        return api->err(req, 404, "No such API endpoint.");
    json_t *body = NULL;
    if (post) {
        if (req->body_len > API_BODY_MAX)
            return api->err(req, 413, "Body too large.");
        json_error_t je;
        body = req->body_len ? json_loadb((const char *)req->body, req->body_len, 0, &je) : NULL;
        if (!json_is_object(body)) {
            json_decref(body);
            return api->err(req, 400, "The body must be a JSON object.");
        }
    }
    int rc;
    if (pulls && n == 2 && get) {
        json_t *arr = json_array();
        sl_list_t *it, *nx;
        sl_list_foreach_safe(it, nx, &m->pulls)
            json_array_append_new(arr, pull_json(sl_container_of(it, rs_pull_t, link)));
        return api->ok(req, arr);
    }
    if (pulls && n == 2 && post) {
        sl_rs_spec_t s;
        const char *why = "invalid";
        if (spec_from_json(body, 0, &s, &why)) {
            json_decref(body);
            return api->err(req, 400, why);
        }
        json_decref(body);
        rs_pull_t *p;
        rc = pull_add(m, &s, 1, &p);
        if (rc == SL_EBUSY)
            return api->err(req, 409, "A pull of that stream exists.");
        if (rc == SL_ETOOBIG)
            return api->err(req, 429, "Too many pulls (restream.max_pulls / max_pulls_per_app).");
        if (rc)
            return api->err(req, 503, "Out of memory.");
        if (p->spec.mode == SL_RS_ALWAYS)
            pull_activate(p);
        SL_LOGI(&g_ctx, "pull of %s from %s created through the API", p->path, p->log_url);
        return api->ok(req, pull_json(p));
    }
    if (pulls && (n == 4 || n == 5)) {
        rs_pull_t *p = pull_find(m, seg[2], seg[3]);
        if (!p) {
            json_decref(body);
            return api->err(req, 404, "Pull not found.");
        }
        if (n == 4 && get)
            return api->ok(req, pull_json(p));
        if (n == 4 && del) {
            SL_LOGI(&g_ctx, "pull of %s deleted through the API", p->path);
            pull_free(p);
            return api->ok(req, json_pack("{s:b}", "deleted", 1));
        }
        if (n == 5 && post && strcmp(seg[4], "source") == 0) {
            char src[16];
            if (body_str(body, "source", src, sizeof src)) {
                json_decref(body);
                return api->err(req, 400, "source must be auto, live or standby.");
            }
            json_decref(body);
            int f = strcmp(src, "auto") == 0 ? FORCE_AUTO : strcmp(src, "live") == 0 ? FORCE_LIVE
                    : strcmp(src, "standby") == 0 ? FORCE_STANDBY : -1;
            if (f < 0)
                return api->err(req, 400, "source must be auto, live or standby.");
            if (f == FORCE_STANDBY && !p->spec.standby[0])
                return api->err(req, 409, "This pull has no standby source.");
            p->force = f;
            SL_LOGI(&p->sess.log, "pull source set to %s", src);
            if (p->active) {
                if (f == FORCE_STANDBY) {
                    start_standby(p);
                } else if (p->cur == SRC_STANDBY && p->live_up) {
                    p->cur = -1; /* the live source's next keyframe switches */
                } else if (f == FORCE_LIVE) {
                    stop_standby(p);
                    if (p->cur == SRC_STANDBY)
                        p->cur = -1;
                }
            }
            return api->ok(req, pull_json(p));
        }
        json_decref(body);
        return api->err(req, 405, "Method not allowed.");
    }
    if (pushes && n == 2 && get) {
        json_t *arr = json_array();
        sl_list_t *it, *nx;
        sl_list_foreach_safe(it, nx, &m->rules)
            json_array_append_new(arr, rule_json(sl_container_of(it, rs_rule_t, link)));
        return api->ok(req, arr);
    }
    if (pushes && n == 2 && post) {
        sl_rs_spec_t s;
        const char *why = "invalid";
        rc = spec_from_json(body, 1, &s, &why);
        json_decref(body);
        if (rc)
            return api->err(req, 400, why);
        rs_rule_t *r;
        rc = rule_add(m, &s, 1, &r);
        if (rc == SL_ETOOBIG)
            return api->err(req, 429, "Too many pushes (restream.max_pushes / max_pushes_per_app).");
        if (rc)
            return api->err(req, 503, "Out of memory.");
        SL_LOGI(&g_ctx, "push %s of %s/%s to %s created through the API", r->id, r->spec.app,
                r->spec.stream, r->log_url);
        rule_scan(r);
        return api->ok(req, rule_json(r));
    }
    if (pushes && n == 3) {
        rs_rule_t *r = NULL;
        sl_list_t *it, *nx;
        sl_list_foreach_safe(it, nx, &m->rules) {
            rs_rule_t *x = sl_container_of(it, rs_rule_t, link);
            if (strcmp(x->id, seg[2]) == 0)
                r = x;
        }
        json_decref(body);
        if (!r)
            return api->err(req, 404, "Push not found.");
        if (get)
            return api->ok(req, rule_json(r));
        if (del) {
            SL_LOGI(&g_ctx, "push %s deleted through the API", r->id);
            rule_free(r);
            return api->ok(req, json_pack("{s:b}", "deleted", 1));
        }
        return api->err(req, 405, "Method not allowed.");
    }
    json_decref(body);
    return api->err(req, 404, "No such API endpoint.");
}

/* ------------------------------------------------------------------ */
/* Red5's restreamer servlet: POST /{app}/restream                     */

/* A pull's guid as the servlet shows and kill takes it. */
static void pull_guid(const rs_pull_t *p, char *out, size_t cap)
{
    snprintf(out, cap, "%s", p->guid[0] ? p->guid : p->path);
}

static const char *rule_guid(const rs_rule_t *r)
{
    return r->guid[0] ? r->guid : r->id;
}

/* Red5's type of a pull made elsewhere, from its URL's scheme. */
static const char *pull_type(const rs_pull_t *p)
{
    if (p->sv_type[0])
        return p->sv_type;
    const char *u = p->spec.url;
    return strncmp(u, "rtsp", 4) == 0 ? "rtsp" : strncmp(u, "rtmp", 4) == 0 ? "rtmp"
           : strncmp(u, "srt", 3) == 0 ? "srt" : "hls";
}

/* One pull as list shows it: the API's object plus guid, type, context, name. */
static json_t *sv_pull_json(rs_pull_t *p)
{
    char g[2 * SL_RS_NAME_MAX + 2];
    pull_guid(p, g, sizeof g);
    json_t *o = pull_json(p);
    if (o)
        json_object_update_new(o, json_pack("{s:s, s:s, s:s, s:s, s:s}", "guid", g, "kind",
                                            "pull", "type", pull_type(p), "context", p->spec.app,
                                            "name", p->spec.stream));
    return o;
}

/* One push rule: the API's object (its outputs) plus guid, type, context, name, state. */
static json_t *sv_rule_json(rs_rule_t *r)
{
    const char *state = "idle"; /* no output: the stream is not live */
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &r->outs) {
        sl_rs_out_stats_t st;
        sl_rs_output_stats(sl_container_of(it, rs_out_t, link)->o, &st);
        if (st.up)
            state = "up";
        else if (strcmp(state, "up") != 0)
            state = st.errors ? "down" : "connecting";
    }
    json_t *o = rule_json(r);
    if (o) {
        json_object_update_new(o, json_pack("{s:s, s:s, s:s, s:s, s:s}", "guid", rule_guid(r),
                                            "kind", "push", "context", r->spec.app, "name",
                                            r->spec.stream, "state", state));
        if (r->sv_type[0])
            json_object_set_new(o, "type", json_string(r->sv_type));
    }
    return o;
}

/* Whether app/stream is under ctx (a context may name sub-scopes: "live/room1"). */
static int in_context(const char *app, const char *stream, const char *ctx)
{
    char path[2 * SL_RS_NAME_MAX + 2];
    snprintf(path, sizeof path, "%s/%s", app, stream);
    size_t n = strlen(ctx);
    return strncmp(path, ctx, n) == 0 && path[n] == '/';
}

/* Whether app/stream is exactly ctx/name. */
static int is_named(const char *app, const char *stream, const char *ctx, const char *name)
{
    char a[2 * SL_RS_NAME_MAX + 2], b[2 * SL_RS_NAME_MAX + 2];
    snprintf(a, sizeof a, "%s/%s", app, stream);
    snprintf(b, sizeof b, "%s/%s", ctx, name);
    return strcmp(a, b) == 0;
}

static int guid_taken(rs_mod_t *m, const char *guid)
{
    char g[2 * SL_RS_NAME_MAX + 2];
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->pulls) {
        pull_guid(sl_container_of(it, rs_pull_t, link), g, sizeof g);
        if (strcmp(g, guid) == 0)
            return 1;
    }
    sl_list_foreach_safe(it, nx, &m->rules)
        if (strcmp(rule_guid(sl_container_of(it, rs_rule_t, link)), guid) == 0)
            return 1;
    return 0;
}

/* A fresh guid in UUID form (random, version 4). 0 or a negative libuv error. */
static int make_guid(char *out, size_t cap)
{
    uint8_t r[16];
    int rc = uv_random(NULL, NULL, r, sizeof r, 0, NULL);
    if (rc)
        return rc;
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    snprintf(out, cap,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
    return 0;
}

/*
 * Carries out a create request q (a guid made when it has none): a push
 * rule or a pull. Returns 200 with *obj (new reference: the item as list
 * shows it) and *out_pull / *out_rule set, or 409 (guid or pull taken),
 * 429 (budgets), 503, with *msg (static).
 */
static int rs_create(rs_mod_t *m, sl_rs_sv_req_t *q, json_t **obj, rs_pull_t **out_pull,
                     rs_rule_t **out_rule, const char **msg)
{
    *obj = NULL;
    *out_pull = NULL;
    *out_rule = NULL;
    if (q->guid[0] && guid_taken(m, q->guid)) {
        *msg = "A pull or push with that guid exists.";
        return 409;
    }
    if (!q->guid[0] && make_guid(q->guid, sizeof q->guid)) {
        *msg = "No random bytes for a guid.";
        return 503;
    }
    int rc;
    if (q->push) {
        rs_rule_t *r;
        rc = rule_add(m, &q->spec, 1, &r);
        if (rc == SL_ETOOBIG) {
            *msg = "Too many pushes (restream.max_pushes / max_pushes_per_app).";
            return 429;
        }
        if (rc) {
            *msg = "Out of memory.";
            return 503;
        }
        snprintf(r->guid, sizeof r->guid, "%s", q->guid);
        snprintf(r->sv_type, sizeof r->sv_type, "%s", q->type);
        SL_LOGI(&g_ctx, "push %s (%s) of %s/%s to %s created", r->guid, r->sv_type, r->spec.app,
                r->spec.stream, r->log_url);
        rule_scan(r);
        *out_rule = r;
        *obj = sv_rule_json(r);
        return 200;
    }
    rs_pull_t *p;
    rc = pull_add(m, &q->spec, 1, &p);
    if (rc == SL_EBUSY) {
        *msg = "A pull of that stream exists.";
        return 409;
    }
    if (rc == SL_ETOOBIG) {
        *msg = "Too many pulls (restream.max_pulls / max_pulls_per_app).";
        return 429;
    }
    if (rc) {
        *msg = "Out of memory.";
        return 503;
    }
    snprintf(p->guid, sizeof p->guid, "%s", q->guid);
    snprintf(p->sv_type, sizeof p->sv_type, "%s", q->type);
    if (p->spec.mode == SL_RS_ALWAYS)
        pull_activate(p);
    SL_LOGI(&g_ctx, "pull %s (%s) of %s from %s created", p->guid, p->sv_type, p->path,
            p->log_url);
    *out_pull = p;
    *obj = sv_pull_json(p);
    return 200;
}

static int sv_create(rs_mod_t *m, sl_http_req_t *req, sl_rs_sv_req_t *q)
{
    json_t *obj;
    rs_pull_t *p;
    rs_rule_t *r;
    const char *msg = "";
    int st = rs_create(m, q, &obj, &p, &r, &msg);
    return st == 200 ? m->api->ok(req, obj) : m->api->err(req, st, msg);
}

/* ------------------------------------------------------------------ */
/* Stream manager restreamer provisions (cluster settings restreamer/)  */

#define PROV_PREFIX "restreamer/"
#define PROV_STATUS_PREFIX "restreamer-status/"
#define PROV_DONE_MAX 256

/* FNV-1a over the provision's text without its distribution: what a PUT changes. */
static uint64_t prov_hash(json_t *pv)
{
    json_t *c = json_copy(pv);
    if (!c)
        return 1;
    json_object_del(c, "distribution");
    json_object_del(c, "status");
    char *text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(c);
    uint64_t h = 1469598103934665603ULL;
    for (const char *t = text; t && *t; t++)
        h = (h ^ (uint8_t)*t) * 1099511628211ULL;
    free(text);
    return h ? h : 1;
}

/* Forgets the provisions tried (their hashes). */
static void prov_done_clear(rs_mod_t *m)
{
    size_t pos = 0;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&m->prov_done, &pos)))
        sl_free(e->val);
    sl_map_cleanup(&m->prov_done);
    sl_map_init(&m->prov_done);
}

typedef struct prov_scan {
    rs_mod_t *m;
    const sl_svc_cluster_t *c;
    void *cud;
    const char *self;
    unsigned minor;               /* the cluster service's minor (claim is 1.1) */
} prov_scan_t;

/* Tells the stream manager what became of guid's distribution (dist_time) on this node. */
static void prov_status(prov_scan_t *ps, const char *guid, const char *stream_guid,
                        json_int_t dist_time, int code, const char *error)
{
    char key[SL_RS_GUID_MAX + 32];
    snprintf(key, sizeof key, PROV_STATUS_PREFIX "%s", guid);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:I}", "provisionGuid", guid,
                          "streamGuid", stream_guid ? stream_guid : "", "nodeId", ps->self,
                          "state", code == 200 ? "running" : "failed", "code", code,
                          "distributed", dist_time, "time", (json_int_t)sl_time_wall_ms());
    if (o && error)
        json_object_set_new(o, "error", json_string(error));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text && ps->c->put_setting(ps->cud, key, text))
        SL_LOGW(&g_ctx, "provision %s: its status could not be written", guid);
    free(text);
}

/* Stops a provision's pull and drops its claim (the unpublish ends it too; a pull never
 * started has none). */
static void prov_pull_free(prov_scan_t *ps, rs_pull_t *p)
{
    char path[sizeof p->path];
    snprintf(path, sizeof path, "%s", p->path);
    pull_free(p);
    if (ps->minor >= 1)
        ps->c->release(ps->cud, path);
}

static void prov_each(void *arg, const char *key, const char *text)
{
    prov_scan_t *ps = arg;
    rs_mod_t *m = ps->m;
    const char *guid = key + strlen(PROV_PREFIX);
    size_t len = strlen(text);
    json_t *pv = len <= SL_RS_SV_BODY_MAX ? json_loadb(text, len, 0, NULL) : NULL;
    json_t *dist = json_object_get(pv, "distribution");
    const char *node = json_string_value(json_object_get(dist, "nodeId"));
    if (!node || strcmp(node, ps->self) != 0 || strlen(guid) >= SL_RS_GUID_MAX) {
        json_decref(pv);
        return;
    }
    json_int_t dist_time = json_integer_value(json_object_get(dist, "time"));
    uint64_t h = prov_hash(pv) ^ (uint64_t)dist_time;
    /* Ours already, unchanged: keep it. Changed (PUT, or distributed again): made anew. */
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->pulls) {
        rs_pull_t *p = sl_container_of(it, rs_pull_t, link);
        if (p->prov_hash && strcmp(p->guid, guid) == 0) {
            if (p->prov_hash == h) {
                p->prov_seen = 1;
                json_decref(pv);
                return;
            }
            prov_pull_free(ps, p);
        }
    }
    sl_list_foreach_safe(it, nx, &m->rules) {
        rs_rule_t *r = sl_container_of(it, rs_rule_t, link);
        if (r->prov_hash && strcmp(r->guid, guid) == 0) {
            if (r->prov_hash == h) {
                r->prov_seen = 1;
                json_decref(pv);
                return;
            }
            rule_free(r);
        }
    }
    /* Tried before in this form and refused: said once, not retried every scan. */
    uint64_t *done = sl_map_get(&m->prov_done, guid);
    if (done && *done == h) {
        json_decref(pv);
        return;
    }
    const char *sg = json_string_value(
        json_object_get(json_array_get(json_object_get(pv, "streams"), 0), "streamGuid"));
    sl_rs_sv_req_t *q = sl_malloc(sizeof *q);
    const char *why = "out of memory";
    int st = 503;
    json_t *obj = NULL;
    rs_pull_t *p = NULL;
    rs_rule_t *r = NULL;
    char path[2 * SL_RS_NAME_MAX + 2] = "";
    if (q && sl_rs_servlet_from_provision(text, len, q, &why) == 0) {
        /* A pull publishes inside the node, without a publisher's admission: its placement is
         * claimed (cluster 1.1) before the publish, so that the stream manager and edges find
         * the stream here; the unpublish ends the claim. */
        snprintf(path, sizeof path, "%s/%s", q->spec.app, q->spec.stream);
        if (!q->push && ps->minor >= 1 && ps->c->claim(ps->cud, path))
            path[0] = '\0';
        st = rs_create(m, q, &obj, &p, &r, &why);
        if (st != 200 && !q->push && path[0] && ps->minor >= 1)
            ps->c->release(ps->cud, path);
    } else if (q) {
        st = 400;
    }
    json_decref(obj);
    sl_free(q);
    if (p) {
        p->prov_hash = h;
        p->prov_seen = 1;
    }
    if (r) {
        r->prov_hash = h;
        r->prov_seen = 1;
    }
    if (st != 200) {
        SL_LOGW(&g_ctx, "provision %s (%s) refused: %s", guid, sg ? sg : "?", why);
        if (!done && (done = sl_malloc(sizeof *done)) && sl_map_set(&m->prov_done, guid, done)) {
            sl_free(done);
            done = NULL;
        }
        if (done)
            *done = h;
    } else {
        SL_LOGI(&g_ctx, "provision %s (%s) carried out", guid, sg ? sg : "?");
    }
    prov_status(ps, guid, sg, dist_time, st, st == 200 ? NULL : why);
    json_decref(pv);
}

/*
 * The provision scan, on every tick: carries out the restreamer provisions
 * the stream manager distributed to this node and stops the ones deleted,
 * changed or distributed elsewhere (docs/restream.md, "Stream manager
 * provisions"). No-op without the cluster service.
 */
static void prov_scan(rs_mod_t *m)
{
    void *cud;
    const sl_svc_cluster_t *c =
        sl_service_get(m->core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR, 0, &cud);
    unsigned minor = 0;
    if (c && sl_service_get(m->core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR, 1, NULL))
        minor = 1;
    const sl_cluster_node_t *self = c ? c->self(cud) : NULL;
    if (!self)
        return;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->pulls) sl_container_of(it, rs_pull_t, link)->prov_seen = 0;
    sl_list_foreach_safe(it, nx, &m->rules) sl_container_of(it, rs_rule_t, link)->prov_seen = 0;
    /* The refusals remembered are bounded: past PROV_DONE_MAX they are forgotten (and each
     * refused provision is tried, and refused, once more). */
    if (m->prov_done.n > PROV_DONE_MAX)
        prov_done_clear(m);
    /* prov_each writes only restreamer-status/ keys while the settings are walked: the walk
     * is by index and a write of another key neither frees the entry in hand nor removes
     * one (cluster.c svc_put_setting). */
    prov_scan_t ps = {.m = m, .c = c, .cud = cud, .self = self->id, .minor = minor};
    c->settings(cud, PROV_PREFIX, prov_each, &ps);
    sl_list_foreach_safe(it, nx, &m->pulls) {
        rs_pull_t *p = sl_container_of(it, rs_pull_t, link);
        if (p->prov_hash && !p->prov_seen) {
            SL_LOGI(&g_ctx, "provision %s gone from this node: pull of %s stopped", p->guid,
                    p->path);
            prov_pull_free(&ps, p);
        }
    }
    sl_list_foreach_safe(it, nx, &m->rules) {
        rs_rule_t *r = sl_container_of(it, rs_rule_t, link);
        if (r->prov_hash && !r->prov_seen) {
            SL_LOGI(&g_ctx, "provision %s gone from this node: push of %s/%s stopped", r->guid,
                    r->spec.app, r->spec.stream);
            rule_free(r);
        }
    }
}

/* kill: by guid, or every pull and push of context/name. */
static int sv_kill(rs_mod_t *m, sl_http_req_t *req, const sl_rs_sv_req_t *q)
{
    json_t *killed = json_array();
    char g[2 * SL_RS_NAME_MAX + 2];
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->pulls) {
        rs_pull_t *p = sl_container_of(it, rs_pull_t, link);
        pull_guid(p, g, sizeof g);
        if (q->guid[0] ? strcmp(g, q->guid) != 0
                       : !is_named(p->spec.app, p->spec.stream, q->context, q->name))
            continue;
        SL_LOGI(&g_ctx, "pull %s of %s killed through the servlet", g, p->path);
        json_array_append_new(killed, json_string(g));
        pull_free(p);
    }
    sl_list_foreach_safe(it, nx, &m->rules) {
        rs_rule_t *r = sl_container_of(it, rs_rule_t, link);
        if (q->guid[0] ? strcmp(rule_guid(r), q->guid) != 0
                       : !is_named(r->spec.app, r->spec.stream, q->context, q->name))
            continue;
        SL_LOGI(&g_ctx, "push %s of %s/%s killed through the servlet", rule_guid(r), r->spec.app,
                r->spec.stream);
        json_array_append_new(killed, json_string(rule_guid(r)));
        rule_free(r);
    }
    if (json_array_size(killed) == 0) {
        json_decref(killed);
        return m->api->err(req, 404, "No pull or push with that guid (or context and name).");
    }
    return m->api->ok(req, json_pack("{s:o}", "killed", killed));
}

static int servlet_handler(sl_http_req_t *req, void *ud)
{
    rs_mod_t *m = ud;
    const sl_http_svc_t *h = m->http;
    const sl_svc_api_t *api = m->api;
    const char *path = h->req_path(req);
    const char *slash = path[0] == '/' ? strchr(path + 1, '/') : NULL;
    if (!slash || slash == path + 1 || strcmp(slash, "/restream") != 0 ||
        (size_t)(slash - path - 1) >= SL_RS_NAME_MAX)
        return SL_EDECLINED;
    char app[SL_RS_NAME_MAX];
    snprintf(app, sizeof app, "%.*s", (int)(slash - path - 1), path + 1);
    if (!sl_core_app(m->core, app))
        return SL_EDECLINED;
    if (api->check_access(m->api_ud, req))
        return 0;
    if (strcmp(h->req_method(req), "POST") != 0)
        return api->err(req, 405, "The restreamer servlet takes POST.");
    size_t len = 0;
    const uint8_t *body = h->req_body(req, &len);
    sl_rs_sv_req_t *q = sl_malloc(sizeof *q); /* ~4 KB: off the stack */
    if (!q)
        return api->err(req, 503, "Out of memory.");
    const char *why = "invalid request";
    int rc = sl_rs_servlet_parse((const char *)body, len, app, q, &why);
    if (rc) {
        sl_free(q);
        return api->err(req, rc == SL_ETOOBIG ? 413 : 400, why);
    }
    switch (q->action) {
    case SL_RS_SV_CREATE:
        rc = sv_create(m, req, q);
        break;
    case SL_RS_SV_LIST: {
        json_t *arr = json_array();
        sl_list_t *it, *nx;
        sl_list_foreach_safe(it, nx, &m->pulls) {
            rs_pull_t *p = sl_container_of(it, rs_pull_t, link);
            if (in_context(p->spec.app, p->spec.stream, q->context))
                json_array_append_new(arr, sv_pull_json(p));
        }
        sl_list_foreach_safe(it, nx, &m->rules) {
            rs_rule_t *r = sl_container_of(it, rs_rule_t, link);
            if (in_context(r->spec.app, r->spec.stream, q->context))
                json_array_append_new(arr, sv_rule_json(r));
        }
        rc = api->ok(req, arr);
        break;
    }
    case SL_RS_SV_KILL:
        rc = sv_kill(m, req, q);
        break;
    default:
        rc = api->err(req, 400, "update is not supported: kill and create again.");
        break;
    }
    sl_free(q);
    return rc;
}

/*
 * Serves POST /{app}/restream when the API offers check_access (api 1.1)
 * and HTTP is on; with api 1.0 the servlet is not served (logged) and the
 * rest of the module works as before.
 */
static int servlet_start(rs_mod_t *m)
{
    void *ud;
    if (!m->api)
        return 0;
    const sl_svc_api_t *api11 = sl_service_get(m->core, SL_SVC_API, SL_SVC_API_MAJOR, 1, &ud);
    m->http = sl_service_get(m->core, SL_HTTP_SVC_NAME, SL_HTTP_SVC_MAJOR, 0, &m->http_ud);
    if (!api11 || !api11->check_access || !m->http) {
        SL_LOGW(&g_ctx, "the restreamer servlet (/{app}/restream) needs the api service 1.1: "
                        "not served");
        m->http = NULL;
        return 0;
    }
    const sl_http_route_spec_t route = {
        .method = NULL, .prefix = "/", .suffixes = "/restream", .prio = SL_HTTP_PRIO_APP,
        .name = "restreamer servlet", .serves = "", .cb = servlet_handler, .ud = m};
    return m->http->route_add(m->http_ud, &route, &m->sv_route);
}

/* ------------------------------------------------------------------ */
/* configuration and lifecycle                                         */

typedef struct check_ctx {
    const sl_config_t *cfg;
    sl_config_err_cb err;
    void *ud;
    const char *key;
    int problems;
} check_ctx_t;

static int count_entry(void *ud, const sl_rs_spec_t *s, int line_no)
{
    (void)s;
    (void)line_no;
    (*(int *)ud)++;
    return 0;
}

static int check(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    const sl_restream_config_t *c = sl_restream_cfg(cfg);
    int problems = 0;
    const char *texts[2] = {c->pull, c->push};
    const char *keys[2] = {"restream.pull", "restream.push"};
    for (int i = 0; i < 2; i++) {
        const char *why = NULL;
        int line = 0, n = 0;
        if (sl_rs_spec_each(texts[i], i, count_entry, &n, &why, &line)) {
            sl_config_report(cfg, keys[i], err, ud, "entry %d: %s", line, why);
            problems++;
        }
    }
    if (c->retry_min_ms > c->retry_max_ms) {
        sl_config_report(cfg, "restream.retry_min", err, ud, "must not exceed retry_max");
        problems++;
    }
    return problems;
}

static int add_pull_entry(void *ud, const sl_rs_spec_t *s, int line_no)
{
    rs_mod_t *m = ud;
    int rc = pull_add(m, s, 0, NULL);
    if (rc == SL_EBUSY || rc == SL_ETOOBIG) {
        SL_LOGW(&g_ctx, "restream.pull entry %d (%s/%s) skipped: %s", line_no, s->app, s->stream,
                rc == SL_EBUSY ? "a pull of that stream exists" : "over max_pulls");
        return 0;
    }
    return rc;
}

static int add_push_entry(void *ud, const sl_rs_spec_t *s, int line_no)
{
    rs_mod_t *m = ud;
    int rc = rule_add(m, s, 0, NULL);
    if (rc == SL_ETOOBIG) {
        SL_LOGW(&g_ctx, "restream.push entry %d skipped: over max_pushes", line_no);
        return 0;
    }
    return rc;
}

static void mod_free(rs_mod_t *m)
{
    while (!sl_list_empty(&m->pulls))
        pull_free(sl_container_of(m->pulls.next, rs_pull_t, link));
    while (!sl_list_empty(&m->rules))
        rule_free(sl_container_of(m->rules.next, rs_rule_t, link));
    prov_done_clear(m);
}

static int rs_init(const sl_host_api_t *hapi, sl_host_t *h, void **state)
{
    (void)hapi;
    sl_core_t *core = sl_host_core(h);
    rs_mod_t *m = sl_calloc(1, sizeof *m);
    if (!m)
        return SL_ENOMEM;
    m->core = core;
    m->cfg = sl_restream_cfg(core->cfg);
    m->ev_id = m->admit_id = -1;
    sl_list_init(&m->pulls);
    sl_list_init(&m->rules);
    sl_map_init(&m->prov_done);
    const char *why = NULL;
    int line = 0;
    int rc = sl_rs_spec_each(m->cfg->pull, 0, add_pull_entry, m, &why, &line);
    if (!rc)
        rc = sl_rs_spec_each(m->cfg->push, 1, add_push_entry, m, &why, &line);
    if (rc)
        goto fail;
    if ((rc = sl_events_subscribe(core, "restream", SL_EV_PHASE_STATE, on_event, m)) < 0)
        goto fail;
    m->ev_id = rc;
    if ((rc = sl_admit_add_check(core, "restream", SL_ADMIT_PHASE_SOURCE, admit_check, m)) < 0)
        goto fail;
    m->admit_id = rc;
    m->api = sl_service_get(core, SL_SVC_API, SL_SVC_API_MAJOR, 0, &m->api_ud);
    if (m->api && (rc = m->api->add_route(m->api_ud, "restream", api_handler, m)))
        goto fail;
    if ((rc = servlet_start(m)))
        goto fail;
    uv_timer_init(core->loop, &m->tick);
    m->tick.data = m;
    uv_timer_init(core->loop, &m->defer);
    m->defer.data = m;
    uv_timer_start(&m->tick, on_tick, 0, 1000);
    *state = m;
    return 0;
fail:
    if (m->ev_id > 0)
        sl_events_unsubscribe(core, m->ev_id);
    if (m->admit_id > 0)
        sl_admit_remove_check(core, m->admit_id);
    mod_free(m);
    sl_free(m);
    return rc < 0 ? rc : SL_ENOMEM;
}

/* Stops every pull and push; the threads end on their own (detached). */
static void rs_stop(void *state)
{
    rs_mod_t *m = state;
    if (!m)
        return;
    m->stopping = 1;
    if (m->sv_route)
        m->http->route_remove(m->http_ud, m->sv_route);
    m->sv_route = NULL;
    uv_timer_stop(&m->tick);
    uv_close((uv_handle_t *)&m->tick, NULL);
    uv_timer_stop(&m->defer);
    uv_close((uv_handle_t *)&m->defer, NULL);
    sl_events_unsubscribe(m->core, m->ev_id);
    sl_admit_remove_check(m->core, m->admit_id);
    mod_free(m);
}

/*
 * After the loop closed every handle: the threads stopped in rs_stop finish
 * their last interrupted call and free what they own; wait for them (a
 * bounded wait: a thread stuck in a DNS lookup, which libavformat cannot
 * interrupt, is left behind and logged).
 */
static void rs_destroy(void *state)
{
    int left = sl_rs_threads_wait(5000);
    if (left)
        SL_LOGW(&g_ctx, "%d restream thread(s) still running at exit", left);
    sl_free(state);
}

/* Pulls and pushes of the file are taken at start: a change needs a restart. */
static int rs_reload(void *state)
{
    rs_mod_t *m = state;
    const sl_restream_config_t *n = sl_restream_cfg(m->core->cfg);
    if (strcmp(n->pull ? n->pull : "", m->cfg->pull ? m->cfg->pull : "") != 0 ||
        strcmp(n->push ? n->push : "", m->cfg->push ? m->cfg->push : "") != 0)
        return SL_EAGAIN;
    return 0;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "restream",
    .description = "pulls streams from cameras and servers, pushes streams out",
    .init = rs_init,
    .stop = rs_stop,
    .destroy = rs_destroy,
    .reload = rs_reload,
};

const sl_builtin_t sl_restream_builtin = {
    .plugin = &plugin,
    .config = &sl_restream_config_section,
    .check = check,
};
