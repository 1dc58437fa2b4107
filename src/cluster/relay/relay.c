/*
 * The relay module (see relay.h; docs/cluster-relay.md): how a stream
 * published on an origin reaches players on edges, as Red5 Pro's cluster
 * restreamer does it.
 *
 * Edge side. An admission check in phase "source" (after every
 * authentication check allowed the play) sees a play of a stream that is
 * not live here, finds its upstream and starts a pull: a socketless
 * session of protocol "cluster" that publishes the stream into the local
 * hub and feeds it from an RTMP play of the upstream. The RTMP client is
 * libsluice-client (clients/c) on the server's own loop: no thread, no
 * copy beyond the one that makes each frame an sl_buf. The player is held
 * (SL_EPENDING) until the first keyframe is in the hub or relay.wait
 * passes, so RTMP, HLS, HTTP-FLV, WHEP, RTSP and SRT players all find a
 * live stream, as restream's on-demand pulls do. The upstream is, with the
 * cluster service, the stream's origin (or, for an edge whose group has
 * relays, the relay a stable hash of the path picks); without it, the
 * relay.origins list tried in order. The pull stops when the stream had no
 * player for relay.idle_timeout, or when the origin unpublishes (players
 * get the normal unpublish); an upstream lost mid-stream is retried with
 * backoff while players stay, and given up after relay.give_up.
 *
 * Origin side. A check in phase "cluster" (before credentials) recognises
 * a relay's connection by its restreamer=<cluster password> parameter:
 * right (compared in constant time) it allows the connect or play and
 * skips the business's checks (the edge already admitted its player);
 * wrong, it denies with a clear reason. In both cases the password is
 * masked in the session's query before events, webhooks or the API can
 * see it ("restreamer=***" stays, and marks the session as a relay's for
 * webhooks). A second check, "upstream" (phase source, after the on-demand
 * sources), refuses a relay's play of a stream that is not live here, so
 * that an edge with several static origins moves on to the next one.
 */
#include "cluster/relay/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/admission.h"
#include "app/core.h"
#include "app/events.h"
#include "app/services.h"
#include "app/svc/cluster.h"
#include "app/svc/relay.h"
#include "base/alloc.h"
#include "base/backoff.h"
#include "base/log.h"
#include "base/map.h"
#include "base/redact.h"
#include "base/str.h"
#include "base/time.h"
#include "cluster/relay/relay_config.h"
#include "cluster/relay/relay_util.h"
#include "media/flv.h"
#include "media/frame.h"
#include "media/stream.h"
#include "sluice/client.h"
#include "sluice/errors.h"

#define MAX_WAITERS 64      /* players held per pull while it starts */
#define MAX_RELAYS 64       /* relays of a group considered for the hash */
#define TICK_MS 250         /* waiters' deadlines, retries, idleness */
#define SEG_GAP_MS 40       /* between the last frame of a connection and the next's first */
#define PW_MAX 513          /* a cluster password with its NUL (cluster.password caps it at 512) */

typedef struct rl_mod rl_mod_t;

typedef struct waiter {
    sl_admit_t *a;          /* our reference */
    uint64_t deadline;      /* loop time */
} waiter_t;

typedef struct rl_pull {
    sl_session_t sess;      /* must stay first; registered while the pull lives */
    rl_mod_t *m;
    sl_list_t link;         /* in m->pulls */
    char path[SL_CLUSTER_PATH_MAX]; /* hub name app/stream */
    int hops;               /* relay links up to the origin, this one included */
    sl_stream_t *st;        /* the published hub stream */
    sl_client_t *cli;       /* the upstream play, NULL between attempts */
    char upstream[SL_RELAY_HOST_MAX + 8]; /* host:port of the current or last attempt */
    size_t next_origin;     /* static origins: the one to try next */
    size_t tried;           /* static origins tried since the last success */
    int ever_up;            /* some upstream answered Play.Start */
    int up;                 /* the current upstream is playing */
    int fed;                /* a keyframe (or audio of a stream without video) reached the hub */
    int have_video_cfg;
    /* output timeline: each upstream connection is a segment rebased to continue */
    int have_out, seg_new;
    uint32_t seg_src0, seg_out0, last_out, last_kind[2];
    sl_backoff_t bo;
    uint64_t lost_at;       /* loop time the upstream was lost (0 = not lost) */
    uint64_t retry_at;      /* loop time of the next attempt (0 = none) */
    uint64_t idle_since;
    uint64_t frames_in, frames_dropped;
    waiter_t waiters[MAX_WAITERS];
    int n_waiters;
    char stop_reason[128];  /* a stop waiting for the deferral timer ("" = none) */
} rl_pull_t;

struct rl_mod {
    sl_core_t *core;                /* borrowed */
    const sl_relay_config_t *cfg;   /* the configuration we started with */
    sl_relay_addr_t origins[SL_RELAY_MAX_ORIGINS];
    size_t n_origins;
    sl_list_t pulls;
    size_t n_pulls;
    int origin_id, source_id, upstream_id; /* admission checks */
    int ev_id;                      /* our event listener */
    sl_map_t restreamers;           /* session id -> path (sl_strdup'd): relay connections
                                       playing here, from admission to play_stop/disconnect */
    int svc_registered;
    uint64_t last_scan;             /* loop time of the last scan_waiting */
    uv_timer_t tick;
    uv_timer_t defer;               /* runs stops outside the caller's call stack */
    int stopping;
};

static const sl_log_ctx_t g_ctx = {.proto = "cluster"};
static const sl_session_ops_t pull_session_ops;
static void on_defer(uv_timer_t *t);

/* ------------------------------------------------------------------ */
/* the cluster service and the password                               */

static const sl_svc_cluster_t *cluster_svc(rl_mod_t *m, void **ud)
{
    return sl_service_get(m->core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR, 0, ud);
}

/* The cluster password: the cluster service's, else relay.password; "" when none. */
static const char *password(rl_mod_t *m)
{
    void *ud;
    const sl_svc_cluster_t *c = cluster_svc(m, &ud);
    const char *pw = c && c->password ? c->password(ud) : NULL;
    if (pw && *pw)
        return pw;
    return m->cfg->password ? m->cfg->password : "";
}

/* Whether this node pulls streams: an edge, relay or all-in-one node of a cluster, or a node with static origins. */
static int pulls_here(rl_mod_t *m)
{
    void *ud;
    const sl_svc_cluster_t *c = cluster_svc(m, &ud);
    if (!c)
        return m->n_origins > 0;
    const sl_cluster_node_t *self = c->self(ud);
    return self && strcmp(self->role, "origin") != 0 && strcmp(self->role, "transcoder") != 0;
}

/* ------------------------------------------------------------------ */
/* pulls                                                               */

static void resume_waiters(rl_pull_t *p)
{
    int n = p->n_waiters;
    p->n_waiters = 0;
    for (int i = 0; i < n; i++)
        sl_admit_resume(p->waiters[i].a, SL_EDECLINED, NULL);
}

/*
 * Players of the pull's stream: attached sinks, and sessions playing it
 * without one (HLS). A player with a sink may count twice: only zero matters.
 */
static size_t pull_viewers(rl_pull_t *p)
{
    size_t n = p->st ? p->st->n_players : 0;
    const char *stream = strrchr(p->path, '/') + 1;
    size_t la = (size_t)(stream - 1 - p->path);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &p->m->core->sessions) {
        sl_session_t *s = sl_container_of(it, sl_session_t, link);
        if (s->role == SL_ROLE_SUBSCRIBER && s->app && s->stream && strlen(s->app) == la &&
            strncmp(s->app, p->path, la) == 0 && strcmp(s->stream, stream) == 0)
            n++;
    }
    return n;
}

static void client_drop(rl_pull_t *p)
{
    if (p->cli)
        sl_client_free(p->cli); /* no callback after this; safe inside its own callback */
    p->cli = NULL;
    p->up = 0;
}

/* Ends the pull: upstream, held players, hub stream, session; frees it. */
static void pull_end(rl_pull_t *p, const char *why)
{
    rl_mod_t *m = p->m;
    client_drop(p);
    resume_waiters(p);
    if (p->ever_up)
        SL_LOGI(&p->sess.log, "relay pull stopped: %s", why);
    else
        SL_LOGD(&p->sess.log, "relay pull stopped: %s", why);
    if (p->st) {
        sl_stream_t *st = p->st;
        p->st = NULL;
        sl_stream_unpublish(st);
        sl_events_emit_session(m->core, &p->sess, SL_EV_UNPUBLISH, why);
    }
    sl_session_set_role(&p->sess, SL_ROLE_NONE);
    sl_session_unregister(m->core, &p->sess);
    sl_list_remove(&p->link);
    m->n_pulls--;
    sl_free(p);
}

/* Asks for pull_end on the next loop turn (from callers that walk lists or hold p). */
static void pull_stop_later(rl_pull_t *p, const char *why)
{
    if (!p->stop_reason[0])
        snprintf(p->stop_reason, sizeof p->stop_reason, "%s", why && *why ? why : "stopped");
    if (!uv_is_closing((uv_handle_t *)&p->m->defer))
        uv_timer_start(&p->m->defer, on_defer, 0, 0);
}

static void on_frame(sl_client_t *c, const sl_client_frame_t *cf, void *ud);
static void on_status(sl_client_t *c, const char *level, const char *code, const char *desc,
                      void *ud);
static void on_state(sl_client_t *c, sl_client_state_t state, int err, void *ud);

/*
 * The upstream of p now: host and port into *a. With the cluster service:
 * the stream's origin, or for an edge whose group has relays in service,
 * the relay sl_relay_pick names. Without it: relay.origins[next_origin].
 * 0, or SL_ENOTFOUND (no placement, or the placement is this node).
 */
static int pick_upstream(rl_pull_t *p, sl_relay_addr_t *a)
{
    rl_mod_t *m = p->m;
    void *ud;
    const sl_svc_cluster_t *c = cluster_svc(m, &ud);
    if (!c) {
        if (!m->n_origins)
            return SL_ENOTFOUND;
        *a = m->origins[p->next_origin % m->n_origins];
        return 0;
    }
    const sl_cluster_node_t *self = c->self(ud);
    const sl_cluster_stream_t *s = c->stream(ud, p->path);
    if (!s || !self || strcmp(s->origin, self->id) == 0)
        return SL_ENOTFOUND;
    const sl_cluster_node_t *target = NULL;
    if (strcmp(self->role, "edge") == 0) {
        const sl_cluster_node_t *nodes, *relays[MAX_RELAYS];
        size_t n = c->nodes(ud, &nodes), nr = 0;
        /* nodes come in the snapshot's order; the hash needs the same order on every edge */
        for (size_t i = 0; i < n && nr < MAX_RELAYS; i++) {
            const sl_cluster_node_t *x = &nodes[i];
            if (strcmp(x->role, "relay") || strcmp(x->group, self->group) || !x->rtmp_port ||
                strcmp(x->state, "INSERVICE") || strcmp(x->id, self->id) == 0)
                continue;
            size_t j = nr++;
            while (j > 0 && strcmp(relays[j - 1]->id, x->id) > 0) {
                relays[j] = relays[j - 1];
                j--;
            }
            relays[j] = x;
        }
        if (nr)
            target = relays[sl_relay_pick(p->path, nr)];
    }
    if (!target)
        target = c->node(ud, s->origin);
    if (!target || !target->rtmp_port)
        return SL_ENOTFOUND;
    const char *host = target->private_host[0] ? target->private_host : target->host;
    snprintf(a->host, sizeof a->host, "%s", host);
    a->port = target->rtmp_port;
    return 0;
}

/* Starts one attempt at the upstream. 0, or an error (nothing held; p->cli NULL). */
static int pull_connect(rl_pull_t *p)
{
    rl_mod_t *m = p->m;
    sl_relay_addr_t a;
    int rc = pick_upstream(p, &a);
    if (rc)
        return rc;
    snprintf(p->upstream, sizeof p->upstream, "%s:%u", a.host, (unsigned)a.port);
    const char *slash = strrchr(p->path, '/');
    char app[SL_CLUSTER_PATH_MAX];
    snprintf(app, sizeof app, "%.*s", (int)(slash - p->path), p->path);
    char url[SL_RELAY_URL_MAX];
    rc = sl_relay_url(url, sizeof url, a.host, a.port, app, slash + 1, password(m), p->hops);
    if (rc < 0)
        return rc;
    sl_client_opts_t o;
    sl_client_opts_init(&o);
    o.app = app;
    o.timeout_ms = (uint32_t)m->cfg->open_timeout_ms;
    o.idle_timeout_ms = (uint32_t)m->cfg->read_timeout_ms;
    o.max_message_size = (uint32_t)m->cfg->max_message_size;
    o.buffer_ms = 0;
    o.on_frame = on_frame;
    o.on_status = on_status;
    o.on_state = on_state;
    o.ud = p;
    rc = sl_client_new(m->core->loop, url, &o, &p->cli);
    if (!rc && (rc = sl_client_play(p->cli)) != 0)
        client_drop(p);
    explicit_bzero(url, sizeof url);
    if (rc)
        return rc;
    p->seg_new = 1;
    SL_LOGD(&p->sess.log, "relay pull: connecting to %s (hop %d)", p->upstream, p->hops);
    return 0;
}

/*
 * The upstream attempt failed or the connection was lost (why: for logs).
 * Static origins not yet tried since the last success are tried at once;
 * otherwise, while someone waits or plays, retry with backoff until
 * relay.give_up after the loss; a pull that never came up ends here.
 */
static void upstream_lost(rl_pull_t *p, const char *why)
{
    rl_mod_t *m = p->m;
    int was_up = p->up;
    client_drop(p);
    uint64_t now = uv_now(m->core->loop);
    if (was_up)
        SL_LOGI(&p->sess.log, "relay pull: upstream %s lost: %s", p->upstream, why);
    else
        SL_LOGD(&p->sess.log, "relay pull: upstream %s failed: %s", p->upstream, why);
    if (m->stopping || p->stop_reason[0])
        return;
    if (!p->lost_at)
        p->lost_at = now;
    if (m->n_origins && !cluster_svc(m, NULL)) {
        p->next_origin = (p->next_origin + 1) % m->n_origins;
        p->tried++;
        if (p->tried < m->n_origins) {
            if (pull_connect(p) == 0)
                return;
            p->tried++;
        }
    }
    if (!p->ever_up) {
        pull_stop_later(p, "no upstream has the stream");
        return;
    }
    if (!pull_viewers(p) && !p->n_waiters) {
        pull_stop_later(p, "upstream lost, no player");
        return;
    }
    if (now - p->lost_at >= (uint64_t)m->cfg->give_up_ms) {
        pull_stop_later(p, "upstream lost");
        return;
    }
    p->retry_at = now + sl_backoff_fail(&p->bo, (uint64_t)m->cfg->retry_min_ms,
                                        (uint64_t)m->cfg->retry_max_ms);
}

/* ------------------------------------------------------------------ */
/* the upstream's callbacks (loop thread)                              */

/* "onMetaData" as the first AMF0 string of a data body. */
static int is_metadata(const uint8_t *b, size_t n)
{
    return n >= 13 && b[0] == 0x02 && b[1] == 0 && b[2] == 10 && memcmp(b + 3, "onMetaData", 10) == 0;
}

static void on_frame(sl_client_t *c, const sl_client_frame_t *cf, void *ud)
{
    rl_pull_t *p = ud;
    (void)c;
    if (!p->st || !cf->len)
        return;
    uint8_t kind = cf->kind == SL_CLIENT_VIDEO ? SL_FLV_VIDEO
                 : cf->kind == SL_CLIENT_AUDIO ? SL_FLV_AUDIO : SL_FLV_DATA;
    /* Rebase each connection's timeline to continue the stream's. */
    if (p->seg_new) {
        p->seg_src0 = cf->ts_ms;
        p->seg_out0 = p->have_out ? p->last_out + SEG_GAP_MS : 0;
        p->seg_new = 0;
    }
    int64_t d = (int64_t)cf->ts_ms - (int64_t)p->seg_src0;
    uint32_t ts = p->seg_out0 + (uint32_t)(d < 0 ? 0 : d);
    if (kind != SL_FLV_DATA) {
        int k = kind == SL_FLV_VIDEO ? 0 : 1;
        if (p->have_out && ts < p->last_kind[k])
            ts = p->last_kind[k];
        p->last_kind[k] = ts;
    }
    if (!p->have_out || ts > p->last_out)
        p->last_out = ts;
    p->have_out = 1;
    sl_buf_t *b = sl_buf_from(cf->body, cf->len);
    sl_frame_t *f;
    if (!b || sl_frame_new(kind, ts, b, &f)) {
        p->frames_dropped++; /* sl_frame_new took b and released it on failure */
        return;
    }
    if (kind == SL_FLV_DATA && is_metadata(cf->body, cf->len))
        f->flags |= SL_FRAME_META;
    if (kind == SL_FLV_VIDEO && (f->flags & SL_FRAME_CONFIG))
        p->have_video_cfg = 1;
    p->frames_in++;
    sl_stream_push(p->st, f);
    if (!p->fed && !(f->flags & SL_FRAME_CONFIG) &&
        ((kind == SL_FLV_VIDEO && (f->flags & SL_FRAME_KEY)) ||
         (kind == SL_FLV_AUDIO && !p->have_video_cfg))) {
        p->fed = 1;
        resume_waiters(p);
    }
    sl_frame_unref(f);
}

static void on_status(sl_client_t *c, const char *level, const char *code, const char *desc,
                      void *ud)
{
    rl_pull_t *p = ud;
    (void)c;
    (void)level;
    if (strcmp(code, "NetStream.Play.Start") == 0) {
        if (!p->st) {
            /* Published here once the upstream plays (not before: a pull that finds no
             * upstream leaves no publish/unpublish behind). */
            int rc = sl_hub_publish(p->m->core->hub, p->path, &p->sess, &p->st);
            if (rc) {
                p->st = NULL;
                pull_stop_later(p, rc == SL_EBUSY ? "published here meanwhile" : sl_strerror(rc));
                client_drop(p);
                return;
            }
            sl_session_set_role(&p->sess, SL_ROLE_PUBLISHER);
            sl_events_emit_session(p->m->core, &p->sess, SL_EV_PUBLISH, "relay");
        }
        p->up = 1;
        p->ever_up = 1;
        p->tried = 0;
        p->lost_at = 0;
        p->retry_at = 0;
        sl_backoff_ok(&p->bo);
        snprintf(p->sess.remote_addr, sizeof p->sess.remote_addr, "%.63s", p->upstream);
        SL_LOGI(&p->sess.log, "relay pull: playing from %s (hop %d)", p->upstream, p->hops);
        sl_events_emit_session(p->m->core, &p->sess, SL_EV_PULL_UP, p->upstream);
    } else if (strcmp(code, "NetStream.Play.UnpublishNotify") == 0) {
        /* The origin's publisher left: ours leaves too; players get the normal unpublish. */
        pull_stop_later(p, "unpublished upstream");
        client_drop(p);
    } else if (strcmp(code, "NetStream.Play.Failed") == 0 ||
               strcmp(code, "NetStream.Play.StreamNotFound") == 0 ||
               strcmp(code, "NetConnection.Connect.Rejected") == 0 ||
               strcmp(code, "NetConnection.Connect.InvalidApp") == 0) {
        char why[200];
        snprintf(why, sizeof why, "%s %s", code, desc ? desc : "");
        upstream_lost(p, why);
    }
}

static void on_state(sl_client_t *c, sl_client_state_t state, int err, void *ud)
{
    rl_pull_t *p = ud;
    (void)c;
    if (state != SL_CLIENT_CLOSED && state != SL_CLIENT_RECONNECTING)
        return;
    if (p->up)
        sl_events_emit_session(p->m->core, &p->sess, SL_EV_PULL_DOWN,
                               err ? sl_strerror(err) : "closed");
    upstream_lost(p, err ? sl_strerror(err) : "closed by the upstream");
}

/* ------------------------------------------------------------------ */
/* the pull's session                                                  */

static void pull_kick(sl_session_t *s, const char *reason)
{
    pull_stop_later((rl_pull_t *)s, reason && *reason ? reason : "kicked");
}

static void pull_shutdown(sl_session_t *s) { pull_kick(s, "server shutdown"); }

static const sl_session_ops_t pull_session_ops = {
    .kick = pull_kick,
    .shutdown = pull_shutdown,
};

static rl_pull_t *pull_find(rl_mod_t *m, const char *path)
{
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->pulls) {
        rl_pull_t *p = sl_container_of(it, rl_pull_t, link);
        if (strcmp(p->path, path) == 0)
            return p;
    }
    return NULL;
}

/*
 * Starts a pull of app/stream (path): session, published hub stream, first
 * upstream attempt. 0 and *out, SL_ETOOBIG (relay.max_pulls), SL_ENOTFOUND
 * (no upstream), SL_EBUSY (published meanwhile), SL_ENOMEM.
 */
static int pull_start(rl_mod_t *m, const char *app, const char *stream, const char *path,
                      int hops, rl_pull_t **out)
{
    if ((int64_t)m->n_pulls >= m->cfg->max_pulls)
        return SL_ETOOBIG;
    rl_pull_t *p = sl_calloc(1, sizeof *p);
    if (!p)
        return SL_ENOMEM;
    p->m = m;
    p->hops = hops;
    snprintf(p->path, sizeof p->path, "%s", path);
    sl_backoff_init(&p->bo, (uint64_t)(uintptr_t)p ^ sl_time_wall_ms());
    p->sess.socketless = 1;
    sl_session_register(m->core, &p->sess, &pull_session_ops, "cluster");
    snprintf(p->sess.remote_addr, sizeof p->sess.remote_addr, "%s", "relay");
    sl_list_push_back(&m->pulls, &p->link);
    m->n_pulls++;
    int rc = sl_session_set_app(&p->sess, app);
    if (!rc)
        rc = sl_session_set_stream(&p->sess, stream);
    if (!rc) {
        rc = pull_connect(p);
        /* a static origin that cannot even be tried: the next ones */
        while (rc && rc != SL_ENOMEM && m->n_origins && !cluster_svc(m, NULL) &&
               ++p->tried < m->n_origins) {
            p->next_origin++;
            rc = pull_connect(p);
        }
    }
    if (rc) {
        pull_end(p, rc == SL_ENOTFOUND ? "no upstream for the stream" : sl_strerror(rc));
        return rc;
    }
    p->idle_since = uv_now(m->core->loop);
    SL_LOGD(&p->sess.log, "relay pull started (hop %d)", hops);
    *out = p;
    return 0;
}

/* ------------------------------------------------------------------ */
/* timers                                                              */

static void on_defer(uv_timer_t *t)
{
    rl_mod_t *m = t->data;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->pulls) {
        rl_pull_t *p = sl_container_of(it, rl_pull_t, link);
        if (p->stop_reason[0]) {
            char why[sizeof p->stop_reason];
            snprintf(why, sizeof why, "%s", p->stop_reason);
            pull_end(p, why);
        }
    }
}

/*
 * Players that wait here for a stream that is not live (they came before
 * the origin had it, or stayed after an upstream was given up): a pull
 * is tried for them every relay.retry_max, so that they get the stream
 * once it is published upstream, as they would on the origin itself.
 */
static void scan_waiting(rl_mod_t *m)
{
    size_t pos = 0;
    for (sl_stream_t *st; (st = sl_hub_next(m->core->hub, &pos));) {
        if (st->publisher || !st->n_players || pull_find(m, st->name))
            continue;
        const char *slash = strrchr(st->name, '/');
        if (!slash || slash == st->name || !slash[1])
            continue;
        char app[SL_CLUSTER_PATH_MAX];
        snprintf(app, sizeof app, "%.*s", (int)(slash - st->name), st->name);
        rl_pull_t *p;
        if (pull_start(m, app, slash + 1, st->name, 1, &p) == 0)
            SL_LOGD(&p->sess.log, "relay pull: retried for %zu waiting player(s)", st->n_players);
        return; /* one per scan: pull_start may change the hub under the walk */
    }
}

static void on_tick(uv_timer_t *t)
{
    rl_mod_t *m = t->data;
    uint64_t now = uv_now(m->core->loop);
    if (now - m->last_scan >= (uint64_t)m->cfg->retry_max_ms && pulls_here(m)) {
        m->last_scan = now;
        scan_waiting(m);
    }
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->pulls) {
        rl_pull_t *p = sl_container_of(it, rl_pull_t, link);
        if (p->stop_reason[0])
            continue;
        for (int i = 0; i < p->n_waiters;) {
            if (p->waiters[i].deadline <= now) {
                sl_admit_t *a = p->waiters[i].a;
                p->waiters[i] = p->waiters[--p->n_waiters];
                sl_admit_resume(a, SL_EDECLINED, NULL);
            } else {
                i++;
            }
        }
        if (pull_viewers(p) || p->n_waiters)
            p->idle_since = now;
        else if (now - p->idle_since >= (uint64_t)m->cfg->idle_timeout_ms) {
            pull_end(p, "idle");
            continue;
        }
        if (!p->cli && p->retry_at && now >= p->retry_at) {
            p->retry_at = 0;
            int rc = pull_connect(p);
            if (rc)
                upstream_lost(p, sl_strerror(rc));
        }
    }
}

/* ------------------------------------------------------------------ */
/* admission                                                           */

/* The hop count a relay's request carries (0 for a player). */
static int request_hops(const sl_admit_req_t *r)
{
    char v[16];
    if (sl_query_get(r->query, "cluster-hops", SL_QUERY_LAST, v, sizeof v) <= 0)
        return 0;
    int h = atoi(v);
    return h < 0 ? 0 : h > 1000 ? 1000 : h;
}

/*
 * Phase "cluster": a relay's connect or play with restreamer=<password>.
 * Right: allowed, the business's checks skipped. Wrong: denied. The value
 * is masked in the session's query either way.
 */
static int origin_check(sl_admit_t *a, void *ud)
{
    rl_mod_t *m = ud;
    const sl_admit_req_t *r = sl_admit_request(a);
    if (r->kind != SL_ADMIT_CONNECT && r->kind != SL_ADMIT_PLAY)
        return SL_EDECLINED;
    char given[PW_MAX];
    int n = sl_query_get(r->query, "restreamer", SL_QUERY_LAST, given, sizeof given);
    if (n == -1)
        return SL_EDECLINED;
    sl_session_t *s = sl_admit_session(a);
    if (s && s->query) {
        size_t cap = strlen(s->query) + 64;
        char *masked = sl_malloc(cap);
        if (masked && sl_relay_query_mask(s->query, "restreamer", masked, cap) >= 0)
            sl_session_set_query(s, masked);
        sl_free(masked);
    }
    const char *want = password(m);
    int ok = n >= 0 && *want && sl_relay_secret_eq(given, want);
    explicit_bzero(given, sizeof given);
    if (!*want)
        return SL_EDECLINED; /* no cluster password here: not a relay's connection for us */
    if (!ok) {
        SL_LOGI(s ? &s->log : &g_ctx, "relay connection refused: wrong cluster password");
        sl_admit_set_reason(a, "Invalid cluster password.");
        return SL_EDENIED;
    }
    sl_admit_set_note(a, "restreamer", "1");
    sl_admit_skip_to(a, SL_ADMIT_PHASE_SOURCE);
    return SL_OK;
}

/* Splits the request into path "app/stream"; 0 or SL_EINVAL. */
static int request_path(const sl_admit_req_t *r, char *path, size_t cap)
{
    if (!r->app || !r->stream || !*r->app || !*r->stream)
        return SL_EINVAL;
    int n = snprintf(path, cap, "%s/%s", r->app, r->stream);
    return n < 0 || (size_t)n >= cap ? SL_EINVAL : 0;
}

static int is_live(rl_mod_t *m, const char *path)
{
    sl_stream_t *st = sl_hub_find(m->core->hub, path);
    return st && st->publisher;
}

/* Phase "source": a play of a stream not live here starts (or joins) its pull. */
static int source_check(sl_admit_t *a, void *ud)
{
    rl_mod_t *m = ud;
    const sl_admit_req_t *r = sl_admit_request(a);
    char path[SL_CLUSTER_PATH_MAX];
    if (r->kind != SL_ADMIT_PLAY || m->stopping || request_path(r, path, sizeof path))
        return SL_EDECLINED;
    rl_pull_t *p = pull_find(m, path);
    if (!p) {
        if (is_live(m, path) || !pulls_here(m))
            return SL_EDECLINED;
        int hops = request_hops(r) + 1;
        if (hops > m->cfg->max_hops) {
            SL_LOGI(&g_ctx, "relay: %s not pulled: %d hops exceed relay.max_hops", path, hops);
            return SL_EDECLINED;
        }
        int rc = pull_start(m, r->app, r->stream, path, hops, &p);
        if (rc) {
            if (rc == SL_ETOOBIG)
                SL_LOGW(&g_ctx, "relay: %s not pulled: relay.max_pulls (%lld) reached", path,
                        (long long)m->cfg->max_pulls);
            return SL_EDECLINED;
        }
    }
    uint64_t now = uv_now(m->core->loop);
    p->idle_since = now;
    if (p->fed || p->stop_reason[0] || p->n_waiters >= MAX_WAITERS || m->cfg->wait_ms == 0)
        return SL_EDECLINED;
    p->waiters[p->n_waiters++] = (waiter_t){sl_admit_ref(a), now + (uint64_t)m->cfg->wait_ms};
    return SL_EPENDING;
}

/*
 * Phase "source", after the sources ("upstream" sorts after "relay" and
 * "restream"): a relay may only play a stream live here, so that an edge
 * moves on to its next origin instead of waiting on one that lacks it.
 */
static int upstream_check(sl_admit_t *a, void *ud)
{
    rl_mod_t *m = ud;
    const sl_admit_req_t *r = sl_admit_request(a);
    char path[SL_CLUSTER_PATH_MAX];
    if (r->kind != SL_ADMIT_PLAY || !sl_admit_note(a, "restreamer") ||
        request_path(r, path, sizeof path))
        return SL_EDECLINED;
    if (is_live(m, path)) {
        sl_session_t *s = sl_admit_session(a);
        char *copy = s ? sl_strdup(path) : NULL;
        if (copy) {
            sl_free(sl_map_del(&m->restreamers, s->id));
            if (sl_map_set(&m->restreamers, s->id, copy))
                sl_free(copy);
        }
        return SL_OK;
    }
    sl_admit_set_reason(a, "Stream not live on this node.");
    return SL_EDENIED;
}

/* ------------------------------------------------------------------ */
/* the "relay" service and the events that keep it true               */

static void on_event(const sl_event_t *ev, void *ud)
{
    rl_mod_t *m = ud;
    if ((ev->type == SL_EV_PLAY_STOP || ev->type == SL_EV_DISCONNECT) && ev->session_id)
        sl_free(sl_map_del(&m->restreamers, ev->session_id));
}

static int svc_is_restreamer(void *ud, const char *session_id)
{
    rl_mod_t *m = ud;
    return session_id && sl_map_get(&m->restreamers, session_id) != NULL;
}

static uint32_t svc_restreamers(void *ud, const char *path)
{
    rl_mod_t *m = ud;
    uint32_t n = 0;
    size_t pos = 0;
    for (sl_map_entry_t *e; (e = sl_map_next(&m->restreamers, &pos));)
        if (strcmp((const char *)e->val, path) == 0)
            n++;
    return n;
}

static size_t svc_pulls(void *ud) { return ((rl_mod_t *)ud)->n_pulls; }

static const sl_svc_relay_t g_svc = {
    .is_restreamer = svc_is_restreamer,
    .restreamers = svc_restreamers,
    .pulls = svc_pulls,
};

static void restreamers_clear(rl_mod_t *m)
{
    size_t pos = 0;
    for (sl_map_entry_t *e; (e = sl_map_next(&m->restreamers, &pos));)
        sl_free(e->val);
    sl_map_cleanup(&m->restreamers);
}

/* ------------------------------------------------------------------ */
/* the module                                                          */

static int check(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    const sl_relay_config_t *c = sl_relay_cfg(cfg);
    int problems = 0;
    sl_relay_addr_t tmp[SL_RELAY_MAX_ORIGINS];
    const char *why = NULL;
    if (sl_relay_origins_parse(c->origins, tmp, SL_RELAY_MAX_ORIGINS, &why) < 0) {
        sl_config_report(cfg, "relay.origins", err, ud, "%s", why ? why : "invalid");
        problems++;
    }
    if (c->retry_min_ms > c->retry_max_ms) {
        sl_config_report(cfg, "relay.retry_min", err, ud, "must not exceed retry_max");
        problems++;
    }
    return problems;
}

static void mod_free(rl_mod_t *m)
{
    while (!sl_list_empty(&m->pulls))
        pull_end(sl_container_of(m->pulls.next, rl_pull_t, link), "server shutdown");
}

static int rl_init(const sl_host_api_t *hapi, sl_host_t *h, void **state)
{
    (void)hapi;
    sl_core_t *core = sl_host_core(h);
    const sl_relay_config_t *cfg = sl_relay_cfg(core->cfg);
    *state = NULL;
    int with_cluster = sl_service_get(core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR, 0, NULL) != NULL;
    if (!cfg->enabled && !with_cluster)
        return 0; /* inert: a single node behaves as without the module */
    rl_mod_t *m = sl_calloc(1, sizeof *m);
    if (!m)
        return SL_ENOMEM;
    m->core = core;
    m->cfg = cfg;
    m->origin_id = m->source_id = m->upstream_id = m->ev_id = -1;
    sl_list_init(&m->pulls);
    sl_map_init(&m->restreamers);
    int rc = sl_relay_origins_parse(cfg->origins, m->origins, SL_RELAY_MAX_ORIGINS, NULL);
    if (rc < 0)
        goto fail;
    m->n_origins = (size_t)rc;
    if ((rc = sl_admit_add_check(core, "relay", SL_ADMIT_PHASE_CLUSTER, origin_check, m)) < 0)
        goto fail;
    m->origin_id = rc;
    if ((rc = sl_admit_add_check(core, "relay", SL_ADMIT_PHASE_SOURCE, source_check, m)) < 0)
        goto fail;
    m->source_id = rc;
    if ((rc = sl_admit_add_check(core, "upstream", SL_ADMIT_PHASE_SOURCE, upstream_check, m)) < 0)
        goto fail;
    m->upstream_id = rc;
    if ((rc = sl_events_subscribe(core, "relay", SL_EV_PHASE_STATE, on_event, m)) < 0)
        goto fail;
    m->ev_id = rc;
    if ((rc = sl_service_register(core, SL_SVC_RELAY, SL_SVC_RELAY_MAJOR, SL_SVC_RELAY_MINOR,
                                  &g_svc, m)))
        goto fail;
    m->svc_registered = 1;
    uv_timer_init(core->loop, &m->tick);
    m->tick.data = m;
    uv_timer_init(core->loop, &m->defer);
    m->defer.data = m;
    uv_timer_start(&m->tick, on_tick, TICK_MS, TICK_MS);
    SL_LOGI(&g_ctx, "relay: on (%s, %zu static origin(s), cluster password %s)",
            with_cluster ? "cluster service" : "static", m->n_origins,
            *password(m) ? "set" : "not set");
    *state = m;
    return 0;
fail:
    if (m->origin_id > 0)
        sl_admit_remove_check(core, m->origin_id);
    if (m->source_id > 0)
        sl_admit_remove_check(core, m->source_id);
    if (m->upstream_id > 0)
        sl_admit_remove_check(core, m->upstream_id);
    if (m->ev_id > 0)
        sl_events_unsubscribe(core, m->ev_id);
    sl_map_cleanup(&m->restreamers);
    sl_free(m);
    return rc < 0 ? rc : SL_ENOMEM;
}

static void rl_stop(void *state)
{
    rl_mod_t *m = state;
    if (!m)
        return;
    m->stopping = 1;
    uv_timer_stop(&m->tick);
    uv_close((uv_handle_t *)&m->tick, NULL);
    uv_timer_stop(&m->defer);
    uv_close((uv_handle_t *)&m->defer, NULL);
    sl_admit_remove_check(m->core, m->origin_id);
    sl_admit_remove_check(m->core, m->source_id);
    sl_admit_remove_check(m->core, m->upstream_id);
    sl_events_unsubscribe(m->core, m->ev_id);
    if (m->svc_registered)
        sl_service_unregister(m->core, SL_SVC_RELAY, &g_svc);
    m->svc_registered = 0;
    mod_free(m);
    restreamers_clear(m);
}

static void rl_destroy(void *state) { sl_free(state); }

/* Origins are taken at start: a change needs a restart. The rest is read live. */
static int rl_reload(void *state)
{
    rl_mod_t *m = state;
    const sl_relay_config_t *n = sl_relay_cfg(m->core->cfg);
    if (n->enabled != m->cfg->enabled ||
        strcmp(n->origins ? n->origins : "", m->cfg->origins ? m->cfg->origins : "") != 0)
        return SL_EAGAIN;
    m->cfg = n;
    return 0;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "relay",
    .description = "cluster relay: edges pull streams from origins over RTMP on demand",
    .init = rl_init,
    .stop = rl_stop,
    .destroy = rl_destroy,
    .reload = rl_reload,
};

const sl_builtin_t sl_relay_builtin = {
    .plugin = &plugin,
    .config = &sl_relay_config_section,
    .check = check,
};
