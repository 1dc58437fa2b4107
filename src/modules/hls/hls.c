/*
 * The HLS module (see hls.h and docs/hls.md): per-stream muxing state on
 * the hub, the HTTP route, player sessions and held (blocking) requests.
 *
 * Attach time. A muxer is attached when the stream is published (an event
 * bus listener on `publish`), not on the first request: the playlist then
 * already holds segments when a player arrives, LL-HLS parts exist from
 * the start, disk writes (hls_disk) work without players, and any protocol
 * that publishes (RTMP today; RTSP, SRT, WebRTC later) gets HLS through
 * the same event. The cost is muxing streams nobody watches over HLS; it
 * is packetisation of already-encoded frames on the loop thread (docs/
 * hls.md has the measurement). The sink stays attached across an
 * unpublish: a republish within UNPUBLISH_GRACE_MS continues the playlist
 * after EXT-X-DISCONTINUITY; otherwise the playlist gets EXT-X-ENDLIST,
 * and LINGER_MS after the unpublish the muxer detaches and its memory goes.
 *
 * Tracks. The muxer starts at the first video keyframe when the stream
 * has a (supported) video configuration, with audio when an audio
 * configuration is known by then; a stream whose audio has flowed for
 * AUDIO_ONLY_WAIT_MS without any video configuration starts audio-only
 * with the frames held meanwhile. A configuration that changes (or a
 * track that appears) restarts the muxer: new init section, discontinuity.
 *
 * Cutting (anchor frames are video frames, or audio frames when there is
 * no video): a segment ends before the first keyframe at which it has
 * reached the segment length less one frame interval (audio-only: before
 * the frame that would make it longer than the length); an LL-HLS part
 * ends before the anchor frame that would bring it within one frame
 * interval of the part target, so it never exceeds PART-TARGET. Durations are measured on the anchor track's timestamps.
 *
 * Players. A first request for {stream}.m3u8 without a `sid` runs the
 * admission chain (transport "hls", credentials from the query: username,
 * password, token, or an Authorization: Bearer token) and, when allowed,
 * creates a session (proto "hls", role subscriber, SL_EV_PLAY) and answers
 * a one-variant multivariant playlist whose media playlist URI carries
 * `sid=<session id>` plus the credentials it came with; every URI of the
 * media playlist carries the same query. A request with a known sid is
 * served at once and keeps the session alive; one with an unknown sid
 * (expired, or from a server restart) is admitted again with the
 * credentials the URI carries, and the new session takes that sid, so the
 * player does not notice. A session without requests for
 * hls.session_timeout ends (SL_EV_PLAY_STOP). A kicked session's sid is
 * refused (403) until it would have expired.
 *
 * Held requests (blocking reload, preload hints) are a list per stream,
 * re-checked whenever a part or segment is added and answered by the
 * module timer when 3 target durations pass (503); no thread waits.
 */
#include "modules/hls/hls.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/admission.h"
#include "app/core.h"
#include "app/events.h"
#include "app/services.h"
#include "app/svc/abr.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/map.h"
#include "base/time.h"
#include "modules/hls/hls_disk.h"
#include "modules/hls/hls_mux.h"
#include "modules/hls/hls_playlist.h"
#include "proto/http/http.h"
#include "sluice/errors.h"
#include "modules/hls/hls_config.h"

#define PATH_MAX_LEN 512          /* hub names, as RTMP limits them */
#define TIMER_MS 100              /* held requests, sessions, linger */
#define UNPUBLISH_GRACE_MS 5000   /* a republish within this continues the playlist */
#define LINGER_MS 30000           /* muxer and playlist kept after an unpublish (Red5: 30 s) */
#define AUDIO_ONLY_WAIT_MS 1000   /* audio without a video config for this long: audio-only */
#define PENDING_MAX 256           /* audio frames held while deciding */
#define PLAYLIST_MAX_BYTES (1024 * 1024)
#define CRED_MAX 8194             /* longest credential value carried: a JWT of up to 8192
                                     characters (the JWT module's limit) plus one, so that a
                                     longer token arrives cut but still too long, and is
                                     refused as too long rather than as missing */

typedef struct hls_mod hls_mod_t;
typedef struct hls_stream hls_stream_t;
typedef struct hls_session hls_session_t;

struct hls_mod {
    sl_core_t *core;               /* borrowed */
    int listener;                  /* event bus listener id, 0 = none */
    sl_map_t streams;              /* hub name -> hls_stream_t* */
    sl_list_t stream_list;         /* the same, for iteration */
    sl_map_t sessions;             /* sid -> hls_session_t* (players and kicked tombstones) */
    sl_list_t session_list;        /* the same, for iteration */
    sl_list_t admitting;           /* hls_admit_t waiting for the admission chain */
    size_t n_sessions;             /* hls_session_t alive: candidates, players, tombstones */
    sl_map_t per_addr;             /* remote address -> (uintptr_t) its hls_session_t count */
    uint64_t refused_logged_ms;    /* loop time of the last "over budget" log line */
    uint64_t refused_unlogged;     /* refusals since that line */
    uv_timer_t *timer;             /* owned; freed by its close callback */
    int stopping;
};

/* Per-stream state: the muxer, the store, held requests. */
struct hls_stream {
    hls_mod_t *mod;
    char *path;                    /* hub name "live/room1/s", owned; key in mod->streams */
    char *scope;                   /* "live/room1", owned (log context) */
    const char *name;              /* "s": URI base (points into path) */
    const sl_app_config_t *app;    /* borrowed from the configuration */
    sl_list_t link;                /* in mod->stream_list */
    sl_log_ctx_t log;
    sl_sink_t sink;
    sl_hls_playlist_t pl;
    int fmp4, ll;
    uint32_t seg_target_ms, part_target_ms;
    /* muxer */
    sl_hls_mux_t *mux;             /* NULL while waiting for tracks */
    sl_buf_t *init;                /* current init section (fMP4), owned ref */
    uint32_t init_gen;             /* its number, from 1 */
    sl_frame_t *vcfg, *acfg;       /* configurations the muxer runs with (owned refs) */
    int has_video, has_audio;
    char codecs[96];               /* CODECS for the multivariant playlist, "" when unknown */
    sl_frame_t **pending;          /* audio frames held while deciding audio-only (owned refs) */
    size_t n_pending;
    int warned_codec;              /* an unsupported codec was logged */
    int warned_start;              /* a failed muxer start was logged */
    /* cutting */
    int seg_open;
    uint32_t seg_start_dts;        /* anchor dts of the open segment's first frame */
    uint32_t part_start_dts;       /* anchor dts of the open part's first frame */
    int part_independent;          /* the open part starts with a keyframe */
    int have_anchor;
    uint32_t last_anchor_dts;
    uint32_t anchor_interval;      /* last step between anchor frames, ms */
    int discontinuity;             /* the next segment opens with EXT-X-DISCONTINUITY */
    int ever_started;
    /* publish state */
    int live;                      /* the hub stream has a publisher */
    uint64_t unpublished_ms;       /* loop time of the unpublish, 0 while live */
    sl_list_t waiters;             /* hls_waiter_t */
    /* disk mirror */
    sl_hls_disk_t *disk;           /* NULL when off */
    uint32_t disk_init_gen;        /* last init section written */
};

/* A player. */
struct hls_session {
    sl_session_t sess;             /* must stay first: the core sees this */
    hls_mod_t *mod;
    char *path;                    /* hub name of its stream, owned */
    char *uri_query;               /* "sid=...&token=..." for the URIs it gets, owned */
    sl_list_t link;                /* in mod->session_list */
    uint64_t last_ms;              /* loop time of its last request */
    int registered;                /* in the core's registry */
    int playing;                   /* admitted: SL_EV_PLAY sent, listed in mod->sessions */
    int kicked;                    /* tombstone: its sid is refused until it expires */
    int counted;                   /* in mod->n_sessions and mod->per_addr */
};

/* A request held until the playlist changes. */
typedef struct hls_waiter {
    sl_list_t link;                /* in hs->waiters */
    sl_http_req_t *req;            /* valid until answered */
    int is_part;                   /* a part (preload hint) rather than a playlist */
    int64_t msn, part;             /* _HLS_msn, _HLS_part (-1 absent) */
    int skip;                      /* _HLS_skip=YES */
    uint64_t part_index;           /* is_part: the part asked for */
    uint64_t deadline_ms;          /* loop time to give up */
    char sid[16];                  /* its session, for byte counts */
    char *uri_query;               /* owned */
} hls_waiter_t;

/* A request whose admission is running. */
typedef struct hls_admit {
    hls_mod_t *mod;
    sl_http_req_t *req;
    hls_session_t *s;              /* the candidate session (registered, not yet playing) */
    sl_admit_t *admit;             /* while pending: our reference */
    sl_list_t link;                /* in mod->admitting while pending */
    int in_call;                   /* inside sl_admit */
    int finished;                  /* the chain answered */
    int result;
    int had_creds;                 /* the request carried credentials (401 vs 403) */
    char reason[256];
} hls_admit_t;

typedef enum { T_PLAYLIST, T_SEGMENT, T_PART, T_INIT } target_kind_t;

/* What a URL asks for. */
typedef struct target {
    target_kind_t kind;
    char path[PATH_MAX_LEN + 1];   /* hub name */
    char ext[8];                   /* ".m3u8", ".ts", ".m4s", ".mp4" */
    uint64_t num;                  /* msn, part index or init generation */
    int abr;                       /* the multivariant playlist of a provision (path: its level 1) */
    char abr_guid[PATH_MAX_LEN + 1]; /* that provision's GUID, the path asked for */
} target_t;

static const sl_sink_ops_t hls_sink_ops;
static const sl_session_ops_t hls_session_ops;
static void wake_waiters(hls_stream_t *hs);
static void disk_playlist(hls_stream_t *hs);

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static uint64_t now_ms(const hls_mod_t *mod) { return uv_now(mod->core->loop); }

static uint32_t block_timeout_ms(const hls_stream_t *hs)
{
    return 3u * sl_hls_pl_target_s(&hs->pl) * 1000u;
}

/* Appends key=value (value percent-encoded) to a query being built. */
static int query_add(sl_wbuf_t *w, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = w->len ? sl_wbuf_put_u8(w, '&') : 0;
    rc = rc ? rc : sl_wbuf_put(w, key, strlen(key));
    rc = rc ? rc : sl_wbuf_put_u8(w, '=');
    for (const unsigned char *p = (const unsigned char *)value; *p && !rc; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            rc = sl_wbuf_put_u8(w, *p);
        } else {
            uint8_t e[3] = {'%', (uint8_t)hex[*p >> 4], (uint8_t)hex[*p & 15]};
            rc = sl_wbuf_put(w, e, 3);
        }
    }
    return rc;
}

/* Credentials as Red5 clients pass them to HLS: query, or a bearer token. */
typedef struct creds {
    char user[512], pass[512], token[CRED_MAX];
} creds_t;

static int find_creds(const sl_http_req_t *req, creds_t *c)
{
    return sl_http_find_creds(req, c->user, sizeof c->user, c->pass, sizeof c->pass, c->token,
                              sizeof c->token);
}

/*
 * "sid=X" plus the credentials the request's query carried, for the URIs
 * handed out (a bearer token from a header stays out of URLs: a player
 * that sends it sends it again).
 */
static char *make_uri_query(const char *sid, const char *query)
{
    static const char *const keys[] = {"username", "password", "token"};
    char v[CRED_MAX];
    sl_wbuf_t w;
    sl_wbuf_init(&w, 16 * 1024);
    int rc = query_add(&w, "sid", sid);
    for (size_t i = 0; i < 3 && !rc; i++)
        if (sl_http_query_get(query, keys[i], v, sizeof v) > 0)
            rc = query_add(&w, keys[i], v);
    rc = rc ? rc : sl_wbuf_put_u8(&w, '\0');
    char *out = rc ? NULL : sl_strndup((const char *)w.data, w.len);
    sl_wbuf_cleanup(&w);
    return out;
}

static int sid_well_formed(const char *sid)
{
    size_t n = strlen(sid);
    if (n != 13)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((sid[i] >= '0' && sid[i] <= '9') || (sid[i] >= 'A' && sid[i] <= 'Z')))
            return 0;
    return 1;
}

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 19)
        return SL_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return SL_EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/*
 * Maps a URL path to what it asks for. SL_EDECLINED: not an HLS URL (the
 * next route may want it); SL_EINVAL: an HLS URL that names nothing.
 */
static int parse_target(const char *url_path, target_t *t)
{
    memset(t, 0, sizeof(*t));
    const char *p = url_path;
    while (*p == '/')
        p++;
    const char *dot = strrchr(p, '.');
    const char *slash = strrchr(p, '/');
    if (!dot || (slash && dot < slash))
        return SL_EDECLINED;
    if (strcmp(dot, ".m3u8") == 0)
        t->kind = T_PLAYLIST;
    else if (strcmp(dot, ".ts") == 0 || strcmp(dot, ".m4s") == 0 || strcmp(dot, ".mp4") == 0)
        t->kind = T_SEGMENT;
    else
        return SL_EDECLINED;
    snprintf(t->ext, sizeof t->ext, "%s", dot);
    if (!slash)
        return SL_EINVAL; /* no app */
    size_t path_len = (size_t)(dot - p);
    if (t->kind != T_PLAYLIST) {
        const char *base = slash + 1;
        const char *us = NULL;
        for (const char *q = base; q < dot; q++)
            if (*q == '_')
                us = q;
        if (!us)
            return SL_EINVAL;
        const char *suffix = us + 1;
        size_t n = (size_t)(dot - suffix);
        if (strcmp(t->ext, ".mp4") == 0) {
            if (n < 5 || strncmp(suffix, "init", 4) || parse_u64(suffix + 4, n - 4, &t->num))
                return SL_EINVAL;
            t->kind = T_INIT;
        } else if (n > 4 && strncmp(suffix, "part", 4) == 0) {
            if (strcmp(t->ext, ".m4s") || parse_u64(suffix + 4, n - 4, &t->num))
                return SL_EINVAL;
            t->kind = T_PART;
        } else if (parse_u64(suffix, n, &t->num)) {
            return SL_EINVAL;
        }
        path_len = (size_t)(us - p);
    }
    if (path_len == 0 || path_len > PATH_MAX_LEN)
        return SL_EINVAL;
    memcpy(t->path, p, path_len);
    t->path[path_len] = '\0';
    if (!strchr(t->path, '/') || !sl_name_is_safe(t->path, PATH_MAX_LEN))
        return SL_EINVAL;
    return 0;
}

static const char *target_name(const target_t *t) { return strrchr(t->path, '/') + 1; }

static int respond_text(sl_http_req_t *req, int status, const char *text)
{
    return sl_http_respond(req, status, "text/plain; charset=utf-8", text, strlen(text),
                           "Cache-Control: no-cache\r\n");
}

static void respond_buf(hls_session_t *s, sl_http_req_t *req, const char *ctype, const sl_buf_t *b,
                        const char *extra)
{
    if (sl_http_respond(req, 200, ctype, b->data, b->len, extra) == 0 && s) {
        s->sess.bytes_out += b->len;
        s->sess.msgs_out++;
    }
}

/* ------------------------------------------------------------------ */
/* sessions                                                            */

static hls_session_t *session_find(hls_mod_t *mod, const char *sid)
{
    return sid && sid[0] ? sl_map_get(&mod->sessions, sid) : NULL;
}

/*
 * Budgets. An HLS session has no socket: a player keeps it alive with
 * separate requests, so it is not a connection and does not count
 * against server.max_connections (else one keep-alive connection asking
 * for 10,000 playlists refused every RTMP player, /healthz and /metrics
 * for hls.session_timeout). Sessions have their own, smaller budgets:
 * hls.max_sessions for the server and hls.max_sessions_per_address for
 * one remote address; every hls_session_t counts (candidates under
 * admission, players, kicked tombstones), so a pending round-trip check
 * is bounded too.
 */
static size_t addr_count(const hls_mod_t *mod, const char *addr)
{
    return (size_t)(uintptr_t)sl_map_get(&mod->per_addr, addr);
}

static void addr_adjust(hls_mod_t *mod, const char *addr, int delta)
{
    size_t n = addr_count(mod, addr);
    if (delta < 0) {
        if (n <= 1)
            sl_map_del(&mod->per_addr, addr);
        else
            sl_map_set(&mod->per_addr, addr, (void *)(uintptr_t)(n - 1)); /* key exists: no allocation */
    } else {
        sl_map_set(&mod->per_addr, addr, (void *)(uintptr_t)(n + 1));
    }
}

/*
 * 1 when a new session for addr is over budget. Refusals are counted for
 * /metrics and logged at most once a second (with how many were not).
 */
static int over_budget(hls_mod_t *mod, const char *addr)
{
    const sl_config_t *cfg = mod->core->cfg;
    int per_server = (int64_t)mod->n_sessions >= sl_hls_cfg(cfg)->max_sessions;
    int per_addr = !per_server && (int64_t)addr_count(mod, addr) >= sl_hls_cfg(cfg)->max_sessions_per_address;
    if (!per_server && !per_addr)
        return 0;
    /* Counted in the shared family; this module keeps its own log gate
     * (once a second, with the address). */
    sl_core_budget_exceeded(mod->core, SL_BUDGET_HLS_SESSIONS, NULL);
    uint64_t now = now_ms(mod);
    if (mod->refused_logged_ms && now - mod->refused_logged_ms < 1000) {
        mod->refused_unlogged++;
        return 1;
    }
    SL_LOGW(NULL, "hls: new session from %s refused: %s budget reached (%" PRId64 ")%s", addr,
            per_server ? "hls.max_sessions" : "hls.max_sessions_per_address",
            per_server ? sl_hls_cfg(cfg)->max_sessions : sl_hls_cfg(cfg)->max_sessions_per_address,
            mod->refused_unlogged ? " (and earlier refusals not logged)" : "");
    mod->refused_logged_ms = now ? now : 1;
    mod->refused_unlogged = 0;
    return 1;
}

/* Ends a player's presence: SL_EV_PLAY_STOP and out of the registry. */
static void session_end(hls_session_t *s, const char *reason)
{
    if (s->playing) {
        SL_LOGI(&s->sess.log, "hls player left: %s", reason);
        sl_events_emit_session(s->mod->core, &s->sess, SL_EV_PLAY_STOP, reason);
        s->playing = 0;
    }
    if (s->registered) {
        sl_session_unregister(s->mod->core, &s->sess);
        s->registered = 0;
    }
}

static void session_free(hls_session_t *s)
{
    session_end(s, "closed");
    if (s->counted) {
        s->mod->n_sessions--;
        addr_adjust(s->mod, s->sess.remote_addr, -1);
    }
    if (sl_list_linked(&s->link)) {
        sl_list_remove(&s->link);
        if (sl_map_get(&s->mod->sessions, s->sess.id) == s)
            sl_map_del(&s->mod->sessions, s->sess.id);
    }
    sl_free(s->path);
    sl_free(s->uri_query);
    sl_free(s);
}

static void session_kick(sl_session_t *sess, const char *reason)
{
    hls_session_t *s = (hls_session_t *)sess;
    session_end(s, reason ? reason : "kicked");
    s->kicked = 1; /* the tombstone stays until the sweep frees it */
}

static void session_shutdown(sl_session_t *sess) { session_end((hls_session_t *)sess, "server shutdown"); }

static const sl_session_ops_t hls_session_ops = {
    .kick = session_kick,
    .shutdown = session_shutdown,
    .pending = NULL,
};

/*
 * A candidate session for a request: registered (so admission checks see
 * it) with app, stream and query set; the requested sid becomes its id
 * when well formed and unused.
 */
static hls_session_t *session_new(hls_mod_t *mod, sl_http_req_t *req, const target_t *t,
                                  const char *want_sid)
{
    hls_session_t *s = sl_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->mod = mod;
    sl_list_init(&s->link);
    s->sess.socketless = 1; /* not a connection: see over_budget() */
    sl_session_register(mod->core, &s->sess, &hls_session_ops, "hls");
    s->registered = 1;
    if (want_sid && sid_well_formed(want_sid) && !sl_core_find_session(mod->core, want_sid) &&
        !sl_map_get(&mod->sessions, want_sid))
        memcpy(s->sess.id, want_sid, 14); /* the log context points at this array */
    snprintf(s->sess.remote_addr, sizeof s->sess.remote_addr, "%s", req->remote_addr ? req->remote_addr : "");
    s->sess.remote_port = req->remote_port;
    mod->n_sessions++;
    addr_adjust(mod, s->sess.remote_addr, +1);
    s->counted = 1;
    char scope[PATH_MAX_LEN + 1];
    snprintf(scope, sizeof scope, "%.*s", (int)(strrchr(t->path, '/') - t->path), t->path);
    if (sl_session_set_app(&s->sess, scope) || sl_session_set_stream(&s->sess, target_name(t)) ||
        sl_session_set_query(&s->sess, req->query && req->query[0] ? req->query : NULL) ||
        !(s->path = sl_strdup(t->path)) || !(s->uri_query = make_uri_query(s->sess.id, req->query))) {
        session_free(s);
        return NULL;
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* serving                                                             */

static int render_playlist(hls_stream_t *hs, const char *uri_query, int skip, int ll, sl_wbuf_t *w)
{
    sl_hls_render_opts_t o = {
        .name = hs->name,
        .query = uri_query,
        .seg_ext = hs->fmp4 ? ".m4s" : ".ts",
        .low_latency = ll,
        .skip = skip,
    };
    return sl_hls_pl_render(&hs->pl, &o, w);
}

static void respond_playlist(hls_stream_t *hs, sl_http_req_t *req, const char *uri_query, int skip,
                             hls_session_t *s)
{
    sl_wbuf_t w;
    sl_wbuf_init(&w, PLAYLIST_MAX_BYTES);
    int rc = render_playlist(hs, uri_query, skip, hs->ll, &w);
    if (rc) {
        SL_LOGW(&hs->log, "cannot render the playlist: %s", sl_strerror(rc));
        respond_text(req, 500, "internal server error\n");
    } else if (sl_http_respond(req, 200, "application/vnd.apple.mpegurl", w.data, w.len,
                               "Cache-Control: no-cache\r\n") == 0 && s) {
        s->sess.bytes_out += w.len;
        s->sess.msgs_out++;
    }
    sl_wbuf_cleanup(&w);
}

/* Peak segment bit rate in bits/s, for BANDWIDTH. */
static uint64_t peak_bandwidth(const hls_stream_t *hs)
{
    uint64_t peak = 0;
    const sl_hls_playlist_t *pl = &hs->pl;
    for (uint32_t i = 0; i < pl->count; i++) {
        const sl_hls_segment_t *sg = &pl->ring[(pl->head + i) % pl->cap];
        if (sg->complete && sg->duration_ms && sg->data) {
            uint64_t bps = (uint64_t)sg->data->len * 8000u / sg->duration_ms;
            if (bps > peak)
                peak = bps;
        }
    }
    if (!peak && hs->sink.stream) {
        const sl_stream_t *st = hs->sink.stream;
        peak = (uint64_t)((st->meta_video_kbps + st->meta_audio_kbps) * 1000.0);
    }
    return peak ? peak : 2000000u;
}

/* ---- ABR (src/modules/abr, docs/abr.md) ---- */

#define ABR_VARIANTS_MAX 8

static const sl_svc_abr_t *abr_svc(const hls_mod_t *mod, void **ud)
{
    *ud = NULL;
    return sl_service_get(mod->core, SL_SVC_ABR, SL_SVC_ABR_MAJOR, 0, ud);
}

/*
 * A first request (no sid) for {app}/{guid}.m3u8 where guid names a
 * provision asks for the provision's multivariant playlist: the request is
 * admitted and its session started as a player of the level-1 variant (the
 * stream the broadcaster publishes), and t->path becomes that variant.
 */
static void abr_map(const hls_mod_t *mod, target_t *t, const char *query)
{
    void *ud;
    const sl_svc_abr_t *abr = t->kind == T_PLAYLIST ? abr_svc(mod, &ud) : NULL;
    char sid[32];
    if (!abr || sl_http_query_get(query, "sid", sid, sizeof sid) >= 0)
        return;
    sl_abr_variant_info_t v[1];
    if (abr->variants(ud, t->path, v, 1) == 0 || strlen(v[0].path) > PATH_MAX_LEN)
        return;
    snprintf(t->abr_guid, sizeof t->abr_guid, "%s", t->path);
    snprintf(t->path, sizeof t->path, "%s", v[0].path);
    t->abr = 1;
}

/*
 * True when a and b are variants of one provision: an ABR player's session
 * (admitted for the first variant it played) plays its siblings too, as a
 * player switches levels with the same sid.
 */
static int abr_siblings(const hls_mod_t *mod, const char *a, const char *b)
{
    void *ud;
    const sl_svc_abr_t *abr = abr_svc(mod, &ud);
    char ga[SL_SVC_ABR_PATH_MAX], gb[SL_SVC_ABR_PATH_MAX];
    return abr && abr->provision_of(ud, a, ga, sizeof ga) == 0 &&
           abr->provision_of(ud, b, gb, sizeof gb) == 0 && strcmp(ga, gb) == 0;
}

/*
 * The multivariant playlist of a provision: one EXT-X-STREAM-INF per live
 * variant in level order, BANDWIDTH the variant's video bitrate plus the
 * source's audio (from its metadata, else 128 kb/s), RESOLUTION from the
 * provision, CODECS from the variant's own muxer (the encoder's profile and
 * level) once it has seen the configurations. Every URI carries the
 * session's query (sid and credentials), which later requests of any
 * variant reuse.
 */
static void serve_abr_master(hls_stream_t *hs, hls_session_t *s, sl_http_req_t *req,
                             const target_t *t)
{
    hls_mod_t *mod = hs->mod;
    void *ud;
    const sl_svc_abr_t *abr = abr_svc(mod, &ud);
    sl_abr_variant_info_t v[ABR_VARIANTS_MAX];
    size_t n = abr ? abr->variants(ud, t->abr_guid, v, ABR_VARIANTS_MAX) : 0;
    if (n > ABR_VARIANTS_MAX)
        n = ABR_VARIANTS_MAX;
    uint64_t audio_bps = 0;
    if (hs->sink.stream && hs->sink.stream->meta_audio_kbps > 0)
        audio_bps = (uint64_t)(hs->sink.stream->meta_audio_kbps * 1000.0);
    sl_wbuf_t out;
    sl_wbuf_init(&out, 64 * 1024);
    char line[1024];
    int ln = snprintf(line, sizeof line, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-INDEPENDENT-SEGMENTS\n",
                      hs->fmp4 ? 7 : 3);
    int rc = sl_wbuf_put(&out, line, (size_t)ln), listed = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        hls_stream_t *vs = sl_map_get(&mod->streams, v[i].path);
        if (!vs || !vs->sink.stream || !vs->sink.stream->publisher)
            continue; /* not live (yet): players get the levels that are */
        int has_audio = vs->sink.stream->audio_codec != 0;
        uint64_t bw = (uint64_t)v[i].bitrate + (has_audio ? (audio_bps ? audio_bps : 128000u) : 0);
        const char *name = strrchr(v[i].path, '/');
        name = name ? name + 1 : v[i].path;
        /* Before its muxer started, CODECS comes from the stream's avcC (profile,
         * constraints, level) and its audio codec. */
        char codecs[sizeof vs->codecs];
        snprintf(codecs, sizeof codecs, "%s", vs->codecs);
        const sl_frame_t *vc = vs->sink.stream->video_config;
        if (!codecs[0] && vc && vc->codec == SL_CODEC_AVC && vc->body->len >= vc->data_off + 4u) {
            const uint8_t *a = vc->body->data + vc->data_off;
            snprintf(codecs, sizeof codecs, "avc1.%02X%02X%02X%s", a[1], a[2], a[3],
                     vs->sink.stream->audio_codec == SL_CODEC_AAC ? ",mp4a.40.2" : "");
        }
        ln = snprintf(line, sizeof line,
                      "#EXT-X-STREAM-INF:BANDWIDTH=%" PRIu64 ",RESOLUTION=%ux%u%s%s%s\n%s.m3u8?%s\n",
                      bw, v[i].width, v[i].height, codecs[0] ? ",CODECS=\"" : "", codecs,
                      codecs[0] ? "\"" : "", name, s->uri_query);
        if (ln < 0 || (size_t)ln >= sizeof line)
            continue;
        rc = sl_wbuf_put(&out, line, (size_t)ln);
        listed++;
    }
    if (rc || !listed)
        respond_text(req, rc ? 500 : 404, rc ? "internal server error\n" : "stream not found\n");
    else if (sl_http_respond(req, 200, "application/vnd.apple.mpegurl", out.data, out.len,
                             "Cache-Control: no-cache\r\n") == 0) {
        s->sess.bytes_out += out.len;
        s->sess.msgs_out++;
    }
    sl_wbuf_cleanup(&out);
}

/*
 * The one-variant multivariant playlist a new player gets: its media
 * playlist URI carries the session id (and credentials), which is how
 * later requests are tied to the session.
 */
static void serve_master(hls_stream_t *hs, hls_session_t *s, sl_http_req_t *req)
{
    char attrs[256] = "";
    size_t n = 0;
    if (hs->codecs[0])
        n += (size_t)snprintf(attrs + n, sizeof attrs - n, ",CODECS=\"%s\"", hs->codecs);
    uint32_t w = 0, h = 0;
    if (hs->mux)
        sl_hls_mux_video_size(hs->mux, &w, &h);
    if (w && h && n < sizeof attrs)
        snprintf(attrs + n, sizeof attrs - n, ",RESOLUTION=%ux%u", w, h);
    sl_wbuf_t out;
    sl_wbuf_init(&out, 64 * 1024);
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-INDEPENDENT-SEGMENTS\n"
                      "#EXT-X-STREAM-INF:BANDWIDTH=%" PRIu64 "%s\n",
                      hs->fmp4 ? 7 : 3, peak_bandwidth(hs), attrs);
    int rc = hn > 0 && (size_t)hn < sizeof head ? sl_wbuf_put(&out, head, (size_t)hn) : SL_ETOOBIG;
    rc = rc ? rc : sl_wbuf_put(&out, hs->name, strlen(hs->name));
    rc = rc ? rc : sl_wbuf_put(&out, ".m3u8?", 6);
    rc = rc ? rc : sl_wbuf_put(&out, s->uri_query, strlen(s->uri_query));
    rc = rc ? rc : sl_wbuf_put_u8(&out, '\n');
    if (rc)
        respond_text(req, 500, "internal server error\n");
    else if (sl_http_respond(req, 200, "application/vnd.apple.mpegurl", out.data, out.len,
                             "Cache-Control: no-cache\r\n") == 0) {
        s->sess.bytes_out += out.len;
        s->sess.msgs_out++;
    }
    sl_wbuf_cleanup(&out);
}

static int add_waiter(hls_stream_t *hs, sl_http_req_t *req, hls_session_t *s, int is_part,
                      int64_t msn, int64_t part, int skip, uint64_t part_index)
{
    hls_waiter_t *w = sl_calloc(1, sizeof(*w));
    if (!w || !(w->uri_query = sl_strdup(s->uri_query))) {
        sl_free(w);
        return SL_ENOMEM;
    }
    w->req = req;
    w->is_part = is_part;
    w->msn = msn;
    w->part = part;
    w->skip = skip;
    w->part_index = part_index;
    w->deadline_ms = now_ms(hs->mod) + block_timeout_ms(hs);
    memcpy(w->sid, s->sess.id, sizeof w->sid);
    sl_list_push_back(&hs->waiters, &w->link);
    return 0;
}

static void waiter_free(hls_waiter_t *w)
{
    sl_list_remove(&w->link);
    sl_free(w->uri_query);
    sl_free(w);
}

static void answer_waiter(hls_stream_t *hs, hls_waiter_t *w, sl_hls_block_t d)
{
    hls_session_t *s = session_find(hs->mod, w->sid);
    if (s)
        s->last_ms = now_ms(hs->mod);
    if (w->is_part) {
        const sl_hls_part_t *p = d == SL_HLS_BLOCK_READY ? sl_hls_pl_part(&hs->pl, w->part_index) : NULL;
        if (p)
            respond_buf(s, w->req, "video/mp4", p->data, NULL);
        else
            respond_text(w->req, 404, "part not available\n");
    } else if (d == SL_HLS_BLOCK_READY) {
        respond_playlist(hs, w->req, w->uri_query, w->skip, s);
    } else {
        respond_text(w->req, 400, "_HLS_msn/_HLS_part too far ahead\n");
    }
    waiter_free(w);
}

/* Re-checks every held request after the store changed. */
static void wake_waiters(hls_stream_t *hs)
{
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &hs->waiters) {
        hls_waiter_t *w = sl_container_of(it, hls_waiter_t, link);
        sl_hls_block_t d = w->is_part ? sl_hls_pl_part_check(&hs->pl, w->part_index)
                                      : sl_hls_pl_block_check(&hs->pl, w->msn, w->part);
        if (d != SL_HLS_BLOCK_WAIT)
            answer_waiter(hs, w, d);
    }
}

/* Answers every held request with status (the stream goes away, or the server stops). */
static void fail_waiters(hls_stream_t *hs, int status, const char *text)
{
    while (!sl_list_empty(&hs->waiters)) {
        hls_waiter_t *w = sl_container_of(hs->waiters.next, hls_waiter_t, link);
        respond_text(w->req, status, text);
        waiter_free(w);
    }
}

static void expire_waiters(hls_stream_t *hs, uint64_t now)
{
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &hs->waiters) {
        hls_waiter_t *w = sl_container_of(it, hls_waiter_t, link);
        if (now < w->deadline_ms)
            continue;
        /* rfc8216bis 6.2.5.2: a blocked reload not satisfied within three
         * target durations is answered 503. */
        respond_text(w->req, w->is_part ? 404 : 503,
                     w->is_part ? "part not available\n" : "playlist not updated in time\n");
        waiter_free(w);
    }
}

static int query_int(const char *query, const char *key, int64_t *out)
{
    char v[32];
    if (sl_http_query_get(query, key, v, sizeof v) < 0)
        return 0;
    uint64_t u;
    if (parse_u64(v, strlen(v), &u) || u > INT64_MAX)
        return SL_EINVAL;
    *out = (int64_t)u;
    return 1;
}

static void serve_media_playlist(hls_stream_t *hs, hls_session_t *s, sl_http_req_t *req)
{
    int64_t msn = -1, part = -1;
    int has_msn = query_int(req->query, "_HLS_msn", &msn);
    int has_part = query_int(req->query, "_HLS_part", &part);
    if (has_msn < 0 || has_part < 0 || (has_part && !has_msn)) {
        respond_text(req, 400, "invalid _HLS_msn/_HLS_part\n");
        return;
    }
    char v[8];
    int skip = sl_http_query_get(req->query, "_HLS_skip", v, sizeof v) >= 0 &&
               (strcmp(v, "YES") == 0 || strcmp(v, "v2") == 0);
    if (has_msn) {
        sl_hls_block_t d = sl_hls_pl_block_check(&hs->pl, msn, part);
        if (d == SL_HLS_BLOCK_BAD) {
            respond_text(req, 400, "_HLS_msn/_HLS_part too far ahead\n");
            return;
        }
        if (d == SL_HLS_BLOCK_WAIT) {
            if (add_waiter(hs, req, s, 0, msn, part, skip, 0))
                respond_text(req, 500, "internal server error\n");
            return;
        }
    }
    respond_playlist(hs, req, s->uri_query, skip, s);
}

static void serve(hls_stream_t *hs, hls_session_t *s, sl_http_req_t *req, const target_t *t,
                  int sid_given)
{
    s->last_ms = now_ms(hs->mod);
    switch (t->kind) {
    case T_PLAYLIST:
        if (!sid_given && t->abr)
            serve_abr_master(hs, s, req, t);
        else if (!sid_given)
            serve_master(hs, s, req);
        else
            serve_media_playlist(hs, s, req);
        return;
    case T_SEGMENT: {
        const sl_hls_segment_t *sg = strcmp(t->ext, hs->fmp4 ? ".m4s" : ".ts") == 0
                                         ? sl_hls_pl_segment(&hs->pl, t->num) : NULL;
        if (sg)
            respond_buf(s, req, hs->fmp4 ? "video/mp4" : "video/mp2t", sg->data, NULL);
        else
            respond_text(req, 404, "segment not available\n");
        return;
    }
    case T_PART: {
        sl_hls_block_t d = hs->ll ? sl_hls_pl_part_check(&hs->pl, t->num) : SL_HLS_BLOCK_BAD;
        if (d == SL_HLS_BLOCK_READY)
            respond_buf(s, req, "video/mp4", sl_hls_pl_part(&hs->pl, t->num)->data, NULL);
        else if (d == SL_HLS_BLOCK_WAIT && add_waiter(hs, req, s, 1, -1, -1, 0, t->num) == 0)
            return; /* a preload hint: answered when the part is complete */
        else
            respond_text(req, 404, "part not available\n");
        return;
    }
    case T_INIT: {
        sl_buf_t *b = sl_hls_pl_init_section(&hs->pl, (uint32_t)t->num);
        if (!b && hs->init && hs->init_gen == t->num)
            b = hs->init;
        if (b && hs->fmp4)
            respond_buf(s, req, "video/mp4", b, NULL);
        else
            respond_text(req, 404, "init section not available\n");
        return;
    }
    }
}

/* ------------------------------------------------------------------ */
/* admission                                                           */

static void admit_free(hls_admit_t *hr)
{
    if (sl_list_linked(&hr->link))
        sl_list_remove(&hr->link);
    sl_free(hr);
}

/* The chain answered: refuse, or start playing and serve the request. */
static void admission_finish(hls_admit_t *hr)
{
    hls_mod_t *mod = hr->mod;
    hls_session_t *s = hr->s;
    sl_http_req_t *req = hr->req;
    if (hr->result) {
        SL_LOGI(&s->sess.log, "hls play refused: %s", hr->reason[0] ? hr->reason : "denied");
        sl_http_admit_refuse(req, hr->had_creds, hr->reason); /* 401 or 403, as every HTTP route */
        session_free(s);
        admit_free(hr);
        return;
    }
    target_t t;
    hls_stream_t *hs = NULL;
    if (parse_target(req->path, &t) == 0) {
        abr_map(mod, &t, req->query);
        hs = sl_map_get(&mod->streams, t.path);
    }
    if (!hs || mod->stopping) {
        respond_text(req, 404, "stream not found\n");
        session_free(s);
        admit_free(hr);
        return;
    }
    char sid[32];
    int sid_given = sl_http_query_get(req->query, "sid", sid, sizeof sid) >= 0;
    if (!sid_given) {
        /* A first request: the multivariant playlist hands out a fresh sid, and
         * the session (registry, SL_EV_PLAY) begins only when a player comes
         * back with it. A client that asks without a sid (for a playlist, or a
         * segment with credentials) is served and leaves nothing behind: no
         * session, no play/play_stop events. */
        admit_free(hr);
        serve(hs, s, req, &t, 0);
        session_free(s);
        return;
    }
    if (sl_map_set(&mod->sessions, s->sess.id, s)) {
        respond_text(req, 500, "internal server error\n");
        session_free(s);
        admit_free(hr);
        return;
    }
    sl_list_push_back(&mod->session_list, &s->link);
    s->playing = 1;
    sl_session_set_role(&s->sess, SL_ROLE_SUBSCRIBER);
    SL_LOGI(&s->sess.log, "hls player started (%s:%d)", s->sess.remote_addr, s->sess.remote_port);
    sl_events_emit_session(mod->core, &s->sess, SL_EV_PLAY, NULL);
    admit_free(hr);
    serve(hs, s, req, &t, 1);
}

static void admit_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    hls_admit_t *hr = ud;
    hr->finished = 1;
    hr->result = result;
    snprintf(hr->reason, sizeof hr->reason, "%s", reason ? reason : "");
    if (hr->in_call)
        return; /* answered synchronously: start_admission continues */
    if (hr->admit == a) {
        hr->admit = NULL;
        sl_admit_unref(a);
    }
    admission_finish(hr);
}

static int start_admission(hls_mod_t *mod, sl_http_req_t *req, const target_t *t, const char *sid)
{
    creds_t *c = sl_malloc(sizeof(*c));
    if (!c)
        return SL_ENOMEM;
    int had_creds = find_creds(req, c);
    hls_session_t *s = session_new(mod, req, t, sid);
    hls_admit_t *hr = s ? sl_calloc(1, sizeof(*hr)) : NULL;
    if (!hr) {
        if (s)
            session_free(s);
        sl_free(c);
        return SL_ENOMEM;
    }
    hr->mod = mod;
    hr->req = req;
    hr->s = s;
    hr->had_creds = had_creds;
    sl_list_init(&hr->link);
    sl_admit_req_t ar = {
        .kind = SL_ADMIT_PLAY,
        .app = s->sess.app,
        .stream = s->sess.stream,
        .transport = "hls",
        .query = req->query,
        .username = c->user[0] ? c->user : NULL,
        .password = c->pass[0] ? c->pass : NULL,
        .token = c->token[0] ? c->token : NULL,
    };
    sl_admit_t *a = NULL;
    hr->in_call = 1;
    int rc = sl_admit(mod->core, &s->sess, &ar, admit_done, hr, &a);
    hr->in_call = 0;
    sl_free(c);
    if (rc == SL_EPENDING) {
        hr->admit = a;
        sl_list_push_back(&mod->admitting, &hr->link);
        return 0;
    }
    if (rc == SL_OK && hr->finished) {
        admission_finish(hr);
        return 0;
    }
    session_free(s);
    admit_free(hr);
    return rc ? rc : SL_EINVAL;
}

/* ------------------------------------------------------------------ */
/* the route                                                           */

static int on_request(sl_http_req_t *req, void *ud)
{
    hls_mod_t *mod = ud;
    target_t t;
    /* Not an HLS address of a configured app: declined, so that a static
     * file of that name (the static route runs after this one) is still
     * served, and the server answers 404 otherwise. */
    if (parse_target(req->path, &t) != 0)
        return SL_EDECLINED;
    const sl_app_config_t *app = sl_core_app(mod->core, t.path);
    if (!app)
        return SL_EDECLINED;
    if (mod->stopping)
        return respond_text(req, 503, "server shutting down\n");
    if (!sl_hls_app_cfg(app)->hls)
        return SL_EDECLINED; /* nothing HLS here: whatever else may answer, else 404 */
    if (!app->allow_play)
        return respond_text(req, 403, "Playing is not allowed in this application.\n");
    abr_map(mod, &t, req->query);
    hls_stream_t *hs = sl_map_get(&mod->streams, t.path);
    char sid[32];
    int sid_given = sl_http_query_get(req->query, "sid", sid, sizeof sid) >= 0;
    if (!sid_given)
        sid[0] = '\0';
    hls_session_t *s = session_find(mod, sid);
    if (s && s->kicked)
        return respond_text(req, 403, "This player was disconnected.\n");
    if (hs && s && s->playing &&
        (strcmp(s->path, t.path) == 0 || abr_siblings(mod, s->path, t.path))) {
        serve(hs, s, req, &t, sid_given);
        return 0;
    }
    if (over_budget(mod, req->remote_addr ? req->remote_addr : ""))
        return sl_http_respond(req, 429, "text/plain; charset=utf-8", "too many HLS sessions\n", 22,
                               "Retry-After: 10\r\nCache-Control: no-cache\r\n");
    /* Admission runs whether or not the stream exists (admission_finish answers
     * 404 only once the chain allowed): on an app with auth, an absent stream
     * and a live one get the same 401 without credentials, so stream names
     * cannot be probed. */
    int rc = start_admission(mod, req, &t, sid);
    if (rc)
        SL_LOGW(NULL, "hls: %s: cannot start the admission: %s", req->path, sl_strerror(rc));
    return rc;
}

/* ------------------------------------------------------------------ */
/* disk mirror                                                         */

static void disk_playlist(hls_stream_t *hs)
{
    if (!hs->disk)
        return;
    sl_wbuf_t w;
    sl_wbuf_init(&w, PLAYLIST_MAX_BYTES);
    char file[PATH_MAX_LEN + 16];
    snprintf(file, sizeof file, "%s.m3u8", hs->name);
    sl_buf_t *b = render_playlist(hs, "", 0, 0, &w) == 0 ? sl_wbuf_to_buf(&w) : NULL;
    if (b)
        sl_hls_disk_write(hs->disk, file, b);
    sl_buf_unref(b);
    sl_wbuf_cleanup(&w);
}

static void disk_segment_done(hls_stream_t *hs)
{
    if (!hs->disk)
        return;
    uint32_t n = sl_hls_pl_complete_count(&hs->pl);
    const sl_hls_playlist_t *pl = &hs->pl;
    const sl_hls_segment_t *sg = n ? &pl->ring[(pl->head + n - 1) % pl->cap] : NULL;
    if (!sg)
        return;
    char file[PATH_MAX_LEN + 48];
    if (sg->init && sg->init_gen != hs->disk_init_gen) {
        snprintf(file, sizeof file, "%s_init%u.mp4", hs->name, sg->init_gen);
        sl_hls_disk_write(hs->disk, file, sg->init);
        hs->disk_init_gen = sg->init_gen;
    }
    snprintf(file, sizeof file, "%s_%" PRIu64 "%s", hs->name, sg->msn, hs->fmp4 ? ".m4s" : ".ts");
    sl_hls_disk_write(hs->disk, file, sg->data);
    disk_playlist(hs);
}

static void disk_segment_dropped(hls_stream_t *hs, uint64_t msn)
{
    if (!hs->disk || msn == UINT64_MAX)
        return;
    char file[PATH_MAX_LEN + 48];
    snprintf(file, sizeof file, "%s_%" PRIu64 "%s", hs->name, msn, hs->fmp4 ? ".m4s" : ".ts");
    sl_hls_disk_remove(hs->disk, file);
}

/* ------------------------------------------------------------------ */
/* muxing: segments and parts                                         */

static int open_segment(hls_stream_t *hs, uint32_t dts, int independent)
{
    uint64_t dropped;
    int rc = sl_hls_pl_begin(&hs->pl, sl_time_wall_ms(), hs->discontinuity, hs->init, hs->init_gen,
                             &dropped);
    if (rc)
        return rc;
    disk_segment_dropped(hs, dropped);
    hs->discontinuity = 0;
    hs->seg_open = 1;
    hs->seg_start_dts = hs->part_start_dts = dts;
    hs->part_independent = independent;
    return 0;
}

/* LL-HLS: the segment's bytes are its parts, concatenated. */
static int end_segment_from_parts(hls_stream_t *hs, uint32_t seg_ms)
{
    sl_hls_segment_t *sg = sl_hls_pl_open(&hs->pl);
    if (!sg || !sg->n_parts)
        return sl_hls_pl_abandon(&hs->pl);
    size_t total = 0;
    for (uint32_t i = 0; i < sg->n_parts; i++)
        total += sg->parts[i].data->len;
    sl_buf_t *b = sl_buf_new(total);
    if (!b)
        return SL_ENOMEM;
    for (uint32_t i = 0; i < sg->n_parts; i++) {
        memcpy(b->data + b->len, sg->parts[i].data->data, sg->parts[i].data->len);
        b->len += sg->parts[i].data->len;
    }
    int rc = sl_hls_pl_end(&hs->pl, b, seg_ms);
    sl_buf_unref(b);
    return rc;
}

/*
 * Files what the muxer produced since the last cut: a part (LL-HLS)
 * and/or the end of the segment. bytes is borrowed and may be NULL.
 */
static int close_piece(hls_stream_t *hs, sl_buf_t *bytes, uint32_t part_ms, uint32_t seg_ms, int end_segment)
{
    int rc = 0;
    if (hs->ll) {
        if (bytes)
            rc = sl_hls_pl_add_part(&hs->pl, bytes, part_ms ? part_ms : 1, hs->part_independent);
        if (end_segment) {
            int rc2 = end_segment_from_parts(hs, seg_ms ? seg_ms : 1);
            rc = rc ? rc : rc2;
        }
    } else if (end_segment) {
        rc = bytes ? sl_hls_pl_end(&hs->pl, bytes, seg_ms ? seg_ms : 1) : sl_hls_pl_abandon(&hs->pl);
    }
    if (end_segment) {
        if (sl_hls_pl_open(&hs->pl)) /* could not be closed (out of memory): drop it */
            sl_hls_pl_abandon(&hs->pl);
        hs->seg_open = 0;
        disk_segment_done(hs);
    }
    wake_waiters(hs);
    return rc;
}

/* Cuts before frame `next` (anchor dts `dts`). */
static int cut(hls_stream_t *hs, sl_frame_t *next, uint32_t dts, int end_segment, int next_independent)
{
    sl_buf_t *bytes = NULL;
    int rc = sl_hls_mux_cut(hs->mux, next, end_segment, &bytes);
    if (!rc)
        rc = close_piece(hs, bytes, dts - hs->part_start_dts, dts - hs->seg_start_dts, end_segment);
    sl_buf_unref(bytes);
    hs->part_start_dts = dts;
    hs->part_independent = next_independent;
    return rc;
}

static void pending_clear(hls_stream_t *hs)
{
    for (size_t i = 0; i < hs->n_pending; i++)
        sl_frame_unref(hs->pending[i]);
    sl_free(hs->pending);
    hs->pending = NULL;
    hs->n_pending = 0;
}

/*
 * Stops the muxer: with salvage, what it still holds becomes the last
 * part/segment; without (after an error), the open segment ends with the
 * parts it has, or is dropped.
 */
static void stop_mux(hls_stream_t *hs, int salvage)
{
    pending_clear(hs);
    if (!hs->mux)
        return;
    sl_buf_t *bytes = NULL;
    if (salvage && sl_hls_mux_finish(hs->mux, &bytes)) {
        sl_buf_unref(bytes);
        bytes = NULL;
    }
    if (hs->seg_open) {
        uint32_t step = hs->anchor_interval ? hs->anchor_interval : (hs->has_video ? 40 : 23);
        uint32_t end = hs->last_anchor_dts + step;
        close_piece(hs, bytes, end - hs->part_start_dts, end - hs->seg_start_dts, 1);
    }
    sl_buf_unref(bytes);
    sl_hls_mux_free(hs->mux);
    hs->mux = NULL;
    sl_frame_unref(hs->vcfg);
    sl_frame_unref(hs->acfg);
    hs->vcfg = hs->acfg = NULL;
    hs->has_video = hs->has_audio = 0;
    hs->have_anchor = 0;
    hs->anchor_interval = 0;
    hs->codecs[0] = '\0';
}

static void mux_failed(hls_stream_t *hs, int rc)
{
    SL_LOGW(&hs->log, "hls muxing failed (%s): restarting at the next keyframe", sl_strerror(rc));
    stop_mux(hs, 0);
    hs->discontinuity = 1;
}

/* The codec bytes of a configuration frame, or NULL when HLS cannot carry it. */
static sl_frame_t *usable_config(hls_stream_t *hs, sl_frame_t *cfg)
{
    if (!cfg || cfg->body->len <= cfg->data_off)
        return NULL;
    if (!sl_hls_codec_supported(cfg->codec, hs->fmp4)) {
        if (!hs->warned_codec) {
            SL_LOGW(&hs->log, "hls: codec %s is not supported: the stream is served without it",
                    sl_codec_name(cfg->codec));
            hs->warned_codec = 1;
        }
        return NULL;
    }
    return cfg;
}

/* RFC 6381 codec strings for the multivariant playlist (left empty when unsure). */
static void make_codecs(hls_stream_t *hs, const sl_frame_t *vc, const sl_frame_t *ac)
{
    char v[64] = "", a[32] = "";
    if (vc) {
        const uint8_t *p = vc->body->data + vc->data_off;
        size_t n = vc->body->len - vc->data_off;
        if (vc->codec == SL_CODEC_AVC && n >= 4) {
            snprintf(v, sizeof v, "avc1.%02x%02x%02x", p[1], p[2], p[3]);
        } else if (vc->codec == SL_CODEC_HEVC && n >= 13) {
            /* hvc1.<space><profile>.<compat, bit-reversed hex>.<tier><level>.<constraints> */
            static const char *const spaces[] = {"", "A", "B", "C"};
            uint32_t compat = sl_rd_be32(p + 2), rev = 0;
            for (int i = 0; i < 32; i++)
                rev |= ((compat >> i) & 1u) << (31 - i);
            int k = snprintf(v, sizeof v, "hvc1.%s%u.%X.%c%u", spaces[p[1] >> 6], p[1] & 31u, rev,
                             (p[1] & 0x20) ? 'H' : 'L', p[12]);
            int last = 5;
            while (last >= 0 && p[6 + last] == 0)
                last--;
            for (int i = 0; i <= last && k > 0 && (size_t)k < sizeof v; i++)
                k += snprintf(v + k, sizeof v - (size_t)k, ".%X", p[6 + i]);
        }
        if (!v[0]) {
            hs->codecs[0] = '\0';
            return;
        }
    }
    if (ac) {
        const uint8_t *p = ac->body->data + ac->data_off;
        unsigned aot = p[0] >> 3;
        if (aot == 31 && ac->body->len - ac->data_off >= 2)
            aot = 32 + (((p[0] & 7u) << 3) | (p[1] >> 5));
        snprintf(a, sizeof a, "mp4a.40.%u", aot);
    }
    snprintf(hs->codecs, sizeof hs->codecs, "%s%s%s", v, v[0] && a[0] ? "," : "", a);
}

static int start_mux(hls_stream_t *hs, sl_frame_t *vc, sl_frame_t *ac, sl_frame_t *key)
{
    const sl_stream_t *st = hs->sink.stream;
    sl_hls_track_t vt, at;
    memset(&vt, 0, sizeof vt);
    memset(&at, 0, sizeof at);
    if (vc) {
        vt.codec = vc->codec;
        vt.config = vc->body->data + vc->data_off;
        vt.config_len = vc->body->len - vc->data_off;
        if (key) {
            vt.sample = key->body->data + key->data_off;
            vt.sample_len = key->body->len - key->data_off;
        }
        vt.width = st ? st->width : 0;
        vt.height = st ? st->height : 0;
    }
    if (ac) {
        at.codec = ac->codec;
        at.config = ac->body->data + ac->data_off;
        at.config_len = ac->body->len - ac->data_off;
    }
    sl_buf_t *init = NULL;
    int rc = sl_hls_mux_new(hs->fmp4, vc ? &vt : NULL, ac ? &at : NULL, &hs->mux, &init);
    if (rc) {
        if (!hs->warned_start)
            SL_LOGW(&hs->log, "hls: cannot start the muxer: %s", sl_strerror(rc));
        hs->warned_start = 1;
        return rc;
    }
    if (init) {
        sl_buf_unref(hs->init);
        hs->init = init;
        hs->init_gen++;
    }
    hs->vcfg = vc ? sl_frame_ref(vc) : NULL;
    hs->acfg = ac ? sl_frame_ref(ac) : NULL;
    hs->has_video = vc != NULL;
    hs->has_audio = ac != NULL;
    hs->have_anchor = 0;
    hs->anchor_interval = 0;
    hs->seg_open = 0;
    hs->warned_start = 0;
    make_codecs(hs, vc, ac);
    if (hs->ever_started)
        hs->discontinuity = 1;
    hs->ever_started = 1;
    SL_LOGI(&hs->log, "hls: muxing %s%s%s as %s%s", vc ? sl_codec_name(vc->codec) : "",
            vc && ac ? "+" : "", ac ? sl_codec_name(ac->codec) : "", hs->fmp4 ? "fMP4" : "MPEG-TS",
            hs->ll ? " (low latency)" : "");
    return 0;
}

static int segment_due(const hls_stream_t *hs, uint32_t dts)
{
    uint32_t elapsed = dts - hs->seg_start_dts;
    if (hs->has_video) /* at a keyframe: within one frame of the length is long enough */
        return elapsed + hs->anchor_interval >= hs->seg_target_ms;
    return elapsed + hs->anchor_interval > hs->seg_target_ms;
}

static int part_due(const hls_stream_t *hs, uint32_t dts)
{
    uint32_t elapsed = dts - hs->part_start_dts;
    /* ">=": with the next frame one interval away, a part cut here is at most
     * the target even when intervals jitter by a millisecond (30 fps). */
    return elapsed > 0 && elapsed + hs->anchor_interval >= hs->part_target_ms;
}

/* One media frame into the running muxer, cutting before it when due. */
static void feed(hls_stream_t *hs, sl_frame_t *f)
{
    int is_video = f->kind == SL_FLV_VIDEO;
    if ((is_video && !hs->has_video) || (!is_video && !hs->has_audio) || f->body->len <= f->data_off)
        return;
    int rc = 0;
    if (hs->has_video ? is_video : 1) {
        uint32_t dts = sl_hls_mux_adjusted_dts(hs->mux, f);
        int independent = !hs->has_video || (f->flags & SL_FRAME_KEY);
        if (hs->have_anchor && (int32_t)(dts - hs->last_anchor_dts) > 0)
            hs->anchor_interval = dts - hs->last_anchor_dts;
        if (!hs->seg_open) {
            rc = open_segment(hs, dts, independent);
        } else if (independent && segment_due(hs, dts)) {
            rc = cut(hs, f, dts, 1, independent);
            rc = rc ? rc : open_segment(hs, dts, independent);
        } else if (hs->ll && part_due(hs, dts)) {
            rc = cut(hs, f, dts, 0, independent);
        }
        hs->last_anchor_dts = dts;
        hs->have_anchor = 1;
    } else if (!hs->seg_open) {
        return;
    }
    rc = rc ? rc : sl_hls_mux_write(hs->mux, f);
    if (rc)
        mux_failed(hs, rc);
}

/*
 * No muxer yet: decides the tracks. Returns 1 when the muxer now runs and
 * f should be fed, 0 when f was used or dropped here.
 */
static int try_start(hls_stream_t *hs, sl_frame_t *f)
{
    sl_stream_t *st = hs->sink.stream;
    if (!st)
        return 0;
    sl_frame_t *vc = usable_config(hs, st->video_config);
    sl_frame_t *ac = usable_config(hs, st->audio_config);
    if (vc) {
        pending_clear(hs);
        if (f->kind != SL_FLV_VIDEO || !(f->flags & SL_FRAME_KEY))
            return 0; /* start on a keyframe */
        return start_mux(hs, vc, ac, f) == 0;
    }
    if (!ac || f->kind != SL_FLV_AUDIO)
        return 0;
    /* Audio without a video configuration: wait a little for one. */
    sl_frame_t **np = sl_realloc(hs->pending, (hs->n_pending + 1) * sizeof(*np));
    if (!np) {
        pending_clear(hs);
        return 0;
    }
    hs->pending = np;
    hs->pending[hs->n_pending++] = sl_frame_ref(f);
    uint32_t span = f->dts_ms - hs->pending[0]->dts_ms;
    if (span < AUDIO_ONLY_WAIT_MS && hs->n_pending < PENDING_MAX)
        return 0;
    if (start_mux(hs, NULL, ac, NULL) == 0) {
        sl_frame_t **held = hs->pending;
        size_t n = hs->n_pending;
        hs->pending = NULL;
        hs->n_pending = 0;
        for (size_t i = 0; i < n; i++) {
            if (hs->mux)
                feed(hs, held[i]);
            sl_frame_unref(held[i]);
        }
        sl_free(held);
    } else {
        pending_clear(hs);
    }
    return 0;
}

static int same_bytes(const sl_frame_t *a, const sl_frame_t *b)
{
    return a->body->len - a->data_off == b->body->len - b->data_off &&
           memcmp(a->body->data + a->data_off, b->body->data + b->data_off, a->body->len - a->data_off) == 0;
}

static void on_config(hls_stream_t *hs, sl_frame_t *f)
{
    if (!hs->mux)
        return; /* the start reads the stream's cached configurations */
    sl_frame_t *in_use = f->kind == SL_FLV_VIDEO ? hs->vcfg : f->kind == SL_FLV_AUDIO ? hs->acfg : NULL;
    if (in_use ? same_bytes(in_use, f) : !usable_config(hs, f))
        return;
    SL_LOGI(&hs->log, "hls: %s configuration changed: new init section after a discontinuity",
            f->kind == SL_FLV_VIDEO ? "video" : "audio");
    stop_mux(hs, 1);
    hs->discontinuity = 1;
}

/* ------------------------------------------------------------------ */
/* the sink                                                            */

static void sink_on_frame(sl_sink_t *sink, sl_frame_t *f)
{
    hls_stream_t *hs = sink->ctx;
    if (f->flags & (SL_FRAME_META | SL_FRAME_EOS))
        return;
    if (f->flags & SL_FRAME_CONFIG) {
        on_config(hs, f);
        return;
    }
    if (f->kind != SL_FLV_VIDEO && f->kind != SL_FLV_AUDIO)
        return;
    if (!hs->mux && !try_start(hs, f))
        return;
    feed(hs, f);
}

static void sink_on_publish(sl_sink_t *sink)
{
    hls_stream_t *hs = sink->ctx;
    hs->live = 1;
    hs->unpublished_ms = 0;
    if (hs->ever_started) {
        SL_LOGI(&hs->log, "hls: republished: the playlist continues after a discontinuity");
        hs->discontinuity = 1;
        hs->pl.ended = 0;
    }
}

static void sink_on_unpublish(sl_sink_t *sink)
{
    hls_stream_t *hs = sink->ctx;
    stop_mux(hs, 1);
    hs->live = 0;
    hs->unpublished_ms = now_ms(hs->mod);
    if (!hs->unpublished_ms)
        hs->unpublished_ms = 1;
    wake_waiters(hs);
}

static const sl_sink_ops_t hls_sink_ops = {
    .on_frame = sink_on_frame,
    .on_publish = sink_on_publish,
    .on_unpublish = sink_on_unpublish,
};

/* ------------------------------------------------------------------ */
/* streams                                                             */

static void stream_destroy(hls_stream_t *hs, int status, const char *why)
{
    hls_mod_t *mod = hs->mod;
    fail_waiters(hs, status, why);
    sl_stream_remove_sink(&hs->sink);
    stop_mux(hs, 0);
    if (hs->disk) {
        disk_playlist(hs);
        sl_hls_disk_release(hs->disk);
    }
    sl_hls_pl_cleanup(&hs->pl);
    sl_buf_unref(hs->init);
    if (sl_map_get(&mod->streams, hs->path) == hs)
        sl_map_del(&mod->streams, hs->path);
    sl_list_remove(&hs->link);
    sl_free(hs->path);
    sl_free(hs->scope);
    sl_free(hs);
}

static int stream_disk_dir(hls_mod_t *mod, const char *path, char *out, size_t cap)
{
    const char *data_dir = mod->core->cfg->server_data_dir;
    size_t app_len = strcspn(path, "/");
    const char *last = strrchr(path, '/');
    /* {data_dir}/{app}/streams/hls[/{rooms}] */
    int n = snprintf(out, cap, "%s/%.*s/streams/hls%s%.*s", data_dir, (int)app_len, path,
                     last > path + app_len ? "/" : "", last > path + app_len ? (int)(last - path - app_len - 1) : 0,
                     path + app_len + 1);
    return n > 0 && (size_t)n < cap ? 0 : SL_ETOOBIG;
}

static hls_stream_t *stream_new(hls_mod_t *mod, const char *path, const sl_app_config_t *app)
{
    hls_stream_t *hs = sl_calloc(1, sizeof(*hs));
    if (!hs)
        return NULL;
    hs->mod = mod;
    hs->app = app;
    sl_list_init(&hs->waiters);
    sl_list_init(&hs->link);
    hs->ll = sl_hls_app_cfg(app)->hls_low_latency;
    hs->fmp4 = hs->ll || sl_hls_app_cfg(app)->hls_format == SL_HLS_FORMAT_FMP4;
    hs->seg_target_ms = (uint32_t)sl_hls_app_cfg(app)->hls_segment_ms;
    hs->part_target_ms = hs->ll ? (uint32_t)sl_hls_app_cfg(app)->hls_part_ms : 0;
    const char *last = strrchr(path, '/');
    if (!(hs->path = sl_strdup(path)) || !(hs->scope = sl_strndup(path, (size_t)(last - path))))
        goto fail;
    hs->name = hs->path + (last - path) + 1;
    hs->log = (sl_log_ctx_t){.sid = NULL, .proto = "hls", .app = hs->scope, .stream = hs->name};
    uint32_t window = (uint32_t)sl_hls_app_cfg(app)->hls_window;
    if (sl_hls_pl_init(&hs->pl, window, window, hs->seg_target_ms, hs->part_target_ms, hs->fmp4))
        goto fail;
    if (sl_hls_app_cfg(app)->hls_disk) {
        char dir[4096];
        if (stream_disk_dir(mod, path, dir, sizeof dir) || sl_hls_disk_new(mod->core->loop, dir, &hs->disk))
            goto fail;
    }
    if (sl_map_set(&mod->streams, path, hs))
        goto fail;
    sl_list_push_back(&mod->stream_list, &hs->link);
    return hs;
fail:
    sl_hls_disk_release(hs->disk);
    sl_hls_pl_cleanup(&hs->pl);
    sl_free(hs->path);
    sl_free(hs->scope);
    sl_free(hs);
    return NULL;
}

/* The event bus: attach a muxer to every stream published in an HLS app. */
static void on_event(const sl_event_t *ev, void *ud)
{
    hls_mod_t *mod = ud;
    if (ev->type != SL_EV_PUBLISH || mod->stopping || !ev->app || !ev->stream)
        return;
    const sl_app_config_t *app = sl_core_app(mod->core, ev->app);
    if (!app || !sl_hls_app_cfg(app)->hls)
        return;
    char path[PATH_MAX_LEN * 2 + 2];
    if (snprintf(path, sizeof path, "%s/%s", ev->app, ev->stream) >= (int)sizeof path ||
        strlen(path) > PATH_MAX_LEN || sl_map_get(&mod->streams, path))
        return; /* too long for HLS URLs, or attached already (a republish) */
    hls_stream_t *hs = stream_new(mod, path, app);
    if (!hs) {
        SL_LOGE(NULL, "hls: %s: out of memory, stream not served as HLS", path);
        return;
    }
    hs->sink.ops = &hls_sink_ops;
    hs->sink.ctx = hs;
    hs->sink.internal = 1; /* the segmenter is not a player */
    if (sl_hub_add_sink(mod->core->hub, path, &hs->sink)) {
        SL_LOGE(&hs->log, "hls: out of memory, stream not served as HLS");
        stream_destroy(hs, 503, "stream not available\n");
        return;
    }
    SL_LOGD(&hs->log, "hls: attached (%s, segment %u ms, window %u%s)", hs->fmp4 ? "fmp4" : "ts",
            hs->seg_target_ms, hs->pl.window, hs->ll ? ", low latency" : "");
}

/* ------------------------------------------------------------------ */
/* the timer                                                           */

static void on_timer(uv_timer_t *t)
{
    hls_mod_t *mod = t->data;
    if (mod->stopping)
        return;
    uint64_t now = now_ms(mod);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &mod->stream_list) {
        hls_stream_t *hs = sl_container_of(it, hls_stream_t, link);
        if (!hs->live && hs->unpublished_ms) {
            uint64_t gone = now - hs->unpublished_ms;
            if (gone >= LINGER_MS) {
                SL_LOGD(&hs->log, "hls: detached %u s after the unpublish", LINGER_MS / 1000);
                stream_destroy(hs, 404, "stream ended\n");
                continue;
            }
            if (gone >= UNPUBLISH_GRACE_MS && !hs->pl.ended) {
                hs->pl.ended = 1;
                disk_playlist(hs);
                wake_waiters(hs);
            }
        }
        expire_waiters(hs, now);
    }
    uint64_t timeout = (uint64_t)sl_hls_cfg(mod->core->cfg)->session_timeout_ms;
    sl_list_foreach_safe(it, nx, &mod->session_list) {
        hls_session_t *s = sl_container_of(it, hls_session_t, link);
        if (now - s->last_ms < timeout)
            continue;
        session_end(s, "idle timeout"); /* a kicked one's tombstone expires here too */
        session_free(s);
    }
}

/* ------------------------------------------------------------------ */
/* the module                                                          */

static void on_timer_closed(uv_handle_t *h) { sl_free(h); }

static void mod_free(hls_mod_t *mod)
{
    sl_map_cleanup(&mod->streams);
    sl_map_cleanup(&mod->sessions);
    sl_map_cleanup(&mod->per_addr);
    sl_free(mod);
}

static int hls_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    sl_core_t *core = sl_host_core(h);
    sl_http_server_t *http = sl_host_http(h);
    (void)api;
    *state = NULL;
    if (!http)
        return 0; /* HLS is served over HTTP only */
    hls_mod_t *mod = sl_calloc(1, sizeof(*mod));
    if (!mod)
        return SL_ENOMEM;
    mod->core = core;
    sl_map_init(&mod->streams);
    sl_map_init(&mod->sessions);
    sl_map_init(&mod->per_addr);
    sl_list_init(&mod->stream_list);
    sl_list_init(&mod->session_list);
    sl_list_init(&mod->admitting);
    sl_hls_mux_log_init();
    int rc = SL_ENOMEM;
    if (!(mod->timer = sl_malloc(sizeof(*mod->timer))))
        goto fail;
    rc = uv_timer_init(core->loop, mod->timer);
    if (rc) {
        sl_free(mod->timer);
        mod->timer = NULL;
        goto fail;
    }
    mod->timer->data = mod;
    rc = uv_timer_start(mod->timer, on_timer, TIMER_MS, TIMER_MS);
    if (rc)
        goto fail;
    rc = sl_events_subscribe(core, "hls", SL_EV_PHASE_STATE, on_event, mod);
    if (rc < 0)
        goto fail;
    mod->listener = rc;
    /* Last: a route cannot be taken back, so nothing may fail after it. */
    const sl_http_route_spec_t route = {
        .method = "GET", .prefix = "/", .suffixes = ".m3u8 .ts .m4s .mp4",
        .prio = SL_HTTP_PRIO_APP, .name = "hls",
        .serves = "/{app}/{stream}.m3u8 /{app}/{stream}_{msn}.ts /{app}/{stream}_{msn}.m4s "
                  "/{app}/{stream}_part{part}.m4s /{app}/{stream}_init{gen}.mp4",
        .cb = on_request, .ud = mod};
    rc = sl_http_route_add(http, &route, NULL);
    if (rc)
        goto fail;
    *state = mod;
    return 0;
fail:
    if (mod->listener > 0)
        sl_events_unsubscribe(core, mod->listener);
    if (mod->timer)
        uv_close((uv_handle_t *)mod->timer, on_timer_closed);
    mod_free(mod);
    return rc;
}

static void hls_stop(void *state)
{
    hls_mod_t *mod = state;
    if (!mod || mod->stopping)
        return;
    mod->stopping = 1;
    if (mod->listener > 0) {
        sl_events_unsubscribe(mod->core, mod->listener);
        mod->listener = 0;
    }
    while (!sl_list_empty(&mod->admitting)) {
        hls_admit_t *hr = sl_container_of(mod->admitting.next, hls_admit_t, link);
        sl_admit_cancel(hr->admit);
        respond_text(hr->req, 503, "server shutting down\n");
        session_free(hr->s);
        admit_free(hr);
    }
    while (!sl_list_empty(&mod->stream_list))
        stream_destroy(sl_container_of(mod->stream_list.next, hls_stream_t, link), 503,
                       "server shutting down\n");
    while (!sl_list_empty(&mod->session_list))
        session_free(sl_container_of(mod->session_list.next, hls_session_t, link));
    uv_close((uv_handle_t *)mod->timer, on_timer_closed);
    mod->timer = NULL;
}

static void hls_free(void *state)
{
    if (state)
        mod_free(state);
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "hls",
    .description = "HLS and LL-HLS segmenting and serving",
    .init = hls_init,
    .stop = hls_stop,
    .destroy = hls_free,
};

const sl_builtin_t sl_hls_builtin = {
    .plugin = &plugin,
};
