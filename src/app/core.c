/*
 * The core and the session registry (see core.h), and the connection
 * budgets every listener shares: per address, the pending share and the
 * total, enforced at accept by sl_session_accept(), with the counters of
 * sluice_budget_exceeded_total.
 */
#include "app/core.h"

#include "app/admission.h"
#include "app/events.h"
#include "app/listeners.h"
#include "app/services.h"

#include <openssl/rand.h>
#include <string.h>

#include "base/alloc.h"
#include "base/assert.h"
#include "base/str.h"
#include "base/time.h"
#include "sluice/errors.h"

#define BUDGET_LOG_INTERVAL_MS 10000 /* one log line per budget (or address) this often */

/* Open connections of one remote address (core->addr_conns), freed at 0. */
typedef struct sl_addr_conns {
    size_t n;                    /* connections counted by sl_session_accept, still open */
    uint64_t log_ms;             /* loop time of the last refusal logged for it, 0 = none */
    uint64_t unlogged;           /* refusals since then without a line */
} sl_addr_conns_t;

/* Labels of sluice_budget_exceeded_total, in sl_budget_t order. */
static const char *const g_budget_names[SL_BUDGET_COUNT] = {
    [SL_BUDGET_CONNECTIONS] = "connections",
    [SL_BUDGET_CONNECTIONS_PER_ADDRESS] = "connections_per_address",
    [SL_BUDGET_PENDING_CONNECTIONS] = "pending_connections",
    [SL_BUDGET_HTTP_REQUEST_TIMEOUT] = "http_request_timeout",
    [SL_BUDGET_HTTP_PENDING_BYTES] = "http_pending_bytes",
    [SL_BUDGET_RTMP_PARTIAL] = "rtmp_partial",
    [SL_BUDGET_RTMP_CONNECT_TIMEOUT] = "rtmp_connect_timeout",
    [SL_BUDGET_HLS_SESSIONS] = "hls_sessions",
};

int sl_core_init(sl_core_t *core, uv_loop_t *loop, const sl_config_t *cfg)
{
    memset(core, 0, sizeof(*core));
    core->loop = loop;
    core->cfg = cfg;
    core->hub = sl_hub_new((size_t)cfg->media_gop_cache_max_bytes);
    if (!core->hub)
        return SL_ENOMEM;
    sl_list_init(&core->sessions);
    sl_list_init(&core->pending);
    sl_map_init(&core->app_stats);
    sl_map_init(&core->scopes);
    sl_map_init(&core->addr_conns);
    core->start_ms = sl_time_wall_ms();
    return 0;
}

void sl_core_cleanup(sl_core_t *core)
{
    size_t pos = 0;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&core->app_stats, &pos))) {
        sl_app_stats_t *st = e->val;
        sl_map_cleanup(&st->rooms);
        sl_free(st);
    }
    sl_map_cleanup(&core->app_stats);
    sl_map_cleanup(&core->scopes); /* values are counts, not pointers */
    pos = 0;
    while ((e = sl_map_next(&core->addr_conns, &pos)))
        sl_free(e->val); /* only if a session was never unregistered */
    sl_map_cleanup(&core->addr_conns);
    sl_events_cleanup(core);
    sl_admit_cleanup(core);
    sl_services_cleanup(core);
    sl_listeners_cleanup(core);
    sl_hub_free(core->hub);
    core->hub = NULL;
}

sl_app_stats_t *sl_core_app_stats(sl_core_t *core, const char *app_name)
{
    char name[65];
    size_t n = strcspn(app_name, "/");
    if (n >= sizeof name)
        n = sizeof name - 1;
    memcpy(name, app_name, n);
    name[n] = '\0';
    sl_app_stats_t *st = sl_map_get(&core->app_stats, name);
    if (st)
        return st;
    st = sl_calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->creation_ms = sl_time_wall_ms();
    sl_map_init(&st->rooms);
    if (sl_map_set(&core->app_stats, name, st)) {
        sl_free(st);
        return NULL;
    }
    return st;
}

/* Red5-style client ids: 13 characters from an unambiguous alphabet. */
static void make_id(char *out)
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint8_t rnd[13];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        uint64_t t = sl_time_mono_ms() ^ (uint64_t)(uintptr_t)out;
        for (size_t i = 0; i < sizeof rnd; i++, t = t * 6364136223846793005ull + 1)
            rnd[i] = (uint8_t)(t >> 33);
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        out[i] = alphabet[rnd[i] & 31];
    out[13] = '\0';
}

void sl_session_register(sl_core_t *core, sl_session_t *s, const sl_session_ops_t *ops,
                         const char *proto)
{
    s->ops = ops;
    s->proto = proto;
    make_id(s->id);
    s->start_ms = sl_time_wall_ms();
    s->log.sid = s->id;
    s->log.proto = proto;
    s->log.app = NULL;
    s->log.stream = NULL;
    s->core = core;
    sl_list_push_back(&core->sessions, &s->link);
    core->n_sessions++;
    if (s->socketless)
        core->n_socketless++;
    core->total_sessions++;
    if (core->n_sessions > core->max_sessions)
        core->max_sessions = core->n_sessions;
}

const char *sl_budget_name(sl_budget_t b)
{
    return (unsigned)b < SL_BUDGET_COUNT ? g_budget_names[b] : "unknown";
}

int sl_core_budget_exceeded(sl_core_t *core, sl_budget_t b, uint64_t *unlogged)
{
    if (unlogged)
        *unlogged = 0;
    if ((unsigned)b >= SL_BUDGET_COUNT)
        return 0;
    core->budget_exceeded[b]++;
    uint64_t now = uv_now(core->loop);
    if (core->budget_log_ms[b] && now - core->budget_log_ms[b] < BUDGET_LOG_INTERVAL_MS) {
        core->budget_unlogged[b]++;
        return 0;
    }
    core->budget_log_ms[b] = now ? now : 1;
    if (unlogged)
        *unlogged = core->budget_unlogged[b];
    core->budget_unlogged[b] = 0;
    return 1;
}

/* The effective pending share: the configured one, or a quarter of the total. */
static int64_t max_pending(const sl_config_t *cfg)
{
    int64_t n = cfg->server_max_pending_connections;
    if (n <= 0)
        n = cfg->server_max_connections / 4;
    if (n > cfg->server_max_connections)
        n = cfg->server_max_connections;
    return n > 0 ? n : 1;
}

int sl_session_accept(sl_core_t *core, sl_session_t *s, const char **why)
{
    const sl_config_t *cfg = core->cfg;
    uint64_t unlogged = 0;
    *why = NULL;
    sl_addr_conns_t *ac = s->remote_addr[0] ? sl_map_get(&core->addr_conns, s->remote_addr) : NULL;
    /* 1. Per address. The entry exists while the address has connections,
     * so one that is at its limit always has one to remember the log time. */
    if (ac && cfg->server_max_connections_per_address > 0 &&
        (int64_t)ac->n >= cfg->server_max_connections_per_address) {
        core->budget_exceeded[SL_BUDGET_CONNECTIONS_PER_ADDRESS]++;
        uint64_t now = uv_now(core->loop);
        if (!ac->log_ms || now - ac->log_ms >= BUDGET_LOG_INTERVAL_MS) {
            SL_LOGW(NULL, "%s: connection refused: %zu open from %s (server.max_connections_per_address "
                    "%lld); %llu more refused since the last line", s->proto, ac->n, s->remote_addr,
                    (long long)cfg->server_max_connections_per_address,
                    (unsigned long long)ac->unlogged);
            ac->log_ms = now ? now : 1;
            ac->unlogged = 0;
        } else {
            ac->unlogged++;
        }
        *why = "too many connections from this address";
        return SL_EBUSY;
    }
    /* 2. The pending share: make room by closing the oldest pending one. */
    if ((int64_t)core->n_pending >= max_pending(cfg) && !sl_list_empty(&core->pending)) {
        sl_session_t *old = sl_container_of(core->pending.next, sl_session_t, pending_link);
        if (sl_core_budget_exceeded(core, SL_BUDGET_PENDING_CONNECTIONS, &unlogged))
            SL_LOGW(NULL, "%zu connections without a complete request or connect "
                    "(server.max_pending_connections %lld): closing the oldest (%s %s from %s, "
                    "%llu ms old) for a new one; %llu more since the last line",
                    core->n_pending, (long long)max_pending(cfg), old->proto, old->id,
                    old->remote_addr, (unsigned long long)(sl_time_wall_ms() - old->start_ms),
                    (unsigned long long)unlogged);
        sl_session_admitted(old); /* out of the list even if its kick is deferred */
        old->close_quietly = 1;
        if (old->ops && old->ops->kick)
            old->ops->kick(old, "displaced: too many connections without a complete request");
    }
    /* 3. The total. */
    if ((int64_t)sl_core_connections(core) > cfg->server_max_connections) {
        if (sl_core_budget_exceeded(core, SL_BUDGET_CONNECTIONS, &unlogged))
            SL_LOGW(NULL, "%s: connection from %s refused: server.max_connections (%lld) reached; "
                    "%llu more refused since the last line", s->proto, s->remote_addr,
                    (long long)cfg->server_max_connections, (unsigned long long)unlogged);
        *why = "connection limit reached";
        return SL_EBUSY;
    }
    if (s->remote_addr[0]) {
        if (!ac) {
            ac = sl_calloc(1, sizeof(*ac));
            if (ac && sl_map_set(&core->addr_conns, s->remote_addr, ac)) {
                sl_free(ac);
                ac = NULL;
            }
        }
        if (ac) {
            ac->n++;
            s->addr_counted = 1;
        }
        /* Out of memory here only loses the count: never a refusal. */
    }
    s->pending = 1;
    sl_list_push_back(&core->pending, &s->pending_link);
    core->n_pending++;
    return 0;
}

void sl_session_admitted(sl_session_t *s)
{
    if (!s->pending || !s->core)
        return;
    s->pending = 0;
    sl_list_remove(&s->pending_link);
    s->core->n_pending--;
}

size_t sl_core_connections(const sl_core_t *core)
{
    return core->n_sessions - core->n_socketless;
}

/*
 * App and room lifetimes (see sl_session_set_app in core.h): each scope
 * path counts the sessions in it or below it. A count going 0 -> 1 emits
 * the scope's start, 1 -> 0 its stop; the event carries the session that
 * caused it, with app = the scope. Paths are short (SL_CONFIG_APP_NAME_MAX
 * and a few room segments); one that does not fit the buffer counts only
 * its prefixes that do.
 */
static void scope_event(sl_core_t *core, sl_session_t *s, const char *scope, int is_app,
                        int start)
{
    sl_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = is_app ? (start ? SL_EV_APP_START : SL_EV_APP_STOP)
                     : (start ? SL_EV_ROOM_START : SL_EV_ROOM_STOP);
    ev.session_id = s->id;
    ev.proto = s->proto;
    ev.remote_addr = s->remote_addr;
    ev.remote_port = s->remote_port;
    ev.app = scope;
    sl_events_emit(core, &ev);
}

/* Enters (delta 1) or leaves (delta -1) every scope of s->app; see above. */
static void scopes_move(sl_core_t *core, sl_session_t *s, int delta)
{
    char path[512];
    size_t ends[32], n = 0, len = strlen(s->app);
    if (len >= sizeof path)
        len = sizeof path - 1;
    memcpy(path, s->app, len);
    path[len] = '\0';
    for (size_t i = 0; i <= len && n < sizeof ends / sizeof ends[0]; i++)
        if ((path[i] == '/' || path[i] == '\0') && i > 0 && path[i - 1] != '/')
            ends[n++] = i;
    for (size_t k = 0; k < n; k++) {
        size_t j = delta > 0 ? k : n - 1 - k; /* outermost first in, innermost first out */
        char saved = path[ends[j]];
        path[ends[j]] = '\0';
        uintptr_t count = (uintptr_t)sl_map_get(&core->scopes, path);
        if (delta > 0) {
            if (sl_map_set(&core->scopes, path, (void *)(count + 1)) == 0 && count == 0)
                scope_event(core, s, path, j == 0, 1);
        } else if (count == 1) {
            sl_map_del(&core->scopes, path);
            scope_event(core, s, path, j == 0, 0);
        } else if (count > 1) {
            sl_map_set(&core->scopes, path, (void *)(count - 1)); /* replaces: no allocation */
        }
        path[ends[j]] = saved;
    }
}

void sl_session_unregister(sl_core_t *core, sl_session_t *s)
{
    if (s->in_scopes && s->app) {
        s->in_scopes = 0;
        scopes_move(core, s, -1);
    }
    sl_session_admitted(s);
    if (s->addr_counted) {
        s->addr_counted = 0;
        sl_addr_conns_t *ac = sl_map_get(&core->addr_conns, s->remote_addr);
        if (ac && --ac->n == 0) {
            sl_map_del(&core->addr_conns, s->remote_addr);
            sl_free(ac);
        }
    }
    if (sl_list_linked(&s->link)) {
        sl_list_remove(&s->link);
        /* A linked session was counted when it was linked: counts never go
         * below zero, and socketless ones are a subset. */
        SL_ASSERT(core->n_sessions > 0 && (!s->socketless || core->n_socketless > 0));
        core->n_sessions--;
        if (s->socketless)
            core->n_socketless--;
        core->closed_bytes_in += s->bytes_in;
        core->closed_bytes_out += s->bytes_out;
        core->closed_msgs_in += s->msgs_in;
        core->closed_msgs_out += s->msgs_out;
        core->closed_frames_dropped += s->frames_dropped;
        if (s->app_stats) {
            s->app_stats->active_connections--;
            s->app_stats->closed_bytes_in += s->bytes_in;
            s->app_stats->closed_bytes_out += s->bytes_out;
            s->app_stats->closed_msgs_in += s->msgs_in;
            s->app_stats->closed_msgs_out += s->msgs_out;
            s->app_stats = NULL;
        }
    }
    sl_free(s->app);
    sl_free(s->stream);
    sl_free(s->query);
    s->app = s->stream = s->query = NULL;
    s->log.app = s->log.stream = NULL;
}

static int set_str(char **slot, const char **log_slot, const char *v)
{
    char *copy = NULL;
    if (v && !(copy = sl_strdup(v)))
        return SL_ENOMEM;
    sl_free(*slot);
    *slot = copy;
    *log_slot = copy;
    return 0;
}

void sl_session_set_peer(sl_session_t *s, const uv_tcp_t *tcp)
{
    struct sockaddr_storage sa;
    int salen = sizeof sa;
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&sa, &salen) != 0)
        return;
    if (sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&sa;
        uv_ip6_name(a6, s->remote_addr, sizeof s->remote_addr);
        s->remote_port = ntohs(a6->sin6_port);
    } else if (sa.ss_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)&sa;
        uv_ip4_name(a4, s->remote_addr, sizeof s->remote_addr);
        s->remote_port = ntohs(a4->sin_port);
    }
}

int sl_session_set_app(sl_session_t *s, const char *app)
{
    char *copy = NULL;
    if (app && !(copy = sl_strdup(app)))
        return SL_ENOMEM;
    if (s->in_scopes && s->app && s->core) { /* leaves its old scopes first */
        s->in_scopes = 0;
        scopes_move(s->core, s, -1);
    }
    sl_free(s->app);
    s->app = copy;
    s->log.app = copy;
    if (copy && s->core) {
        s->in_scopes = 1;
        scopes_move(s->core, s, 1);
    }
    if (!app || s->app_stats || !s->core)
        return 0;
    sl_app_stats_t *st = sl_core_app_stats(s->core, app);
    if (!st)
        return 0; /* statistics are best effort */
    s->app_stats = st;
    st->active_connections++;
    st->total_connections++;
    if (st->active_connections > st->max_connections)
        st->max_connections = st->active_connections;
    if (strchr(app, '/'))
        sl_map_set(&st->rooms, app, (void *)1);
    return 0;
}

int sl_session_set_query(sl_session_t *s, const char *query)
{
    const char *unused;
    return set_str(&s->query, &unused, query);
}

void sl_session_set_role(sl_session_t *s, sl_role_t role)
{
    s->role = role;
    s->role_start_ms = sl_time_wall_ms();
}
int sl_session_set_stream(sl_session_t *s, const char *stream)
{
    return set_str(&s->stream, &s->log.stream, stream);
}

sl_session_t *sl_core_find_session(sl_core_t *core, const char *id)
{
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &core->sessions) {
        sl_session_t *s = sl_container_of(it, sl_session_t, link);
        if (strcmp(s->id, id) == 0)
            return s;
    }
    return NULL;
}

const sl_app_config_t *sl_core_app(const sl_core_t *core, const char *scope_path)
{
    char name[65];
    size_t n = strcspn(scope_path, "/");
    if (n == 0 || n >= sizeof name)
        return NULL;
    memcpy(name, scope_path, n);
    name[n] = '\0';
    const sl_app_config_t *app = sl_config_app(core->cfg, name);
    return app && app->enabled ? app : NULL;
}

/*
 * Length of the well-formed UTF-8 sequence of a non-ASCII character at p
 * (2 to 4), or 0 when it is not one: a stray continuation byte, a
 * truncated sequence, an overlong form, a UTF-16 surrogate, a code point
 * above U+10FFFF, or a C1 control character (U+0080..U+009F).
 */
static size_t utf8_char_len(const unsigned char *p)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2; cp = c & 0x1f; min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3; cp = c & 0x0f; min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4; cp = c & 0x07; min = 0x10000;
    } else {
        return 0; /* continuation byte, overlong 0xc0/0xc1 lead, or past U+10FFFF */
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f)
        return 0;
    return n;
}

int sl_name_is_safe(const char *name, size_t max_len)
{
    size_t len = strlen(name);
    if (len == 0 || len > max_len)
        return 0;
    const char *seg = name;
    for (const char *p = name;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t sl = (size_t)(p - seg);
            if (sl == 0 || (sl == 2 && seg[0] == '.' && seg[1] == '.') || (sl == 1 && seg[0] == '.'))
                return 0;
            if (*p == '\0')
                return 1;
            seg = p + 1;
            continue;
        }
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f || c == '\\')
            return 0;
        if (c >= 0x80) {
            size_t n = utf8_char_len((const unsigned char *)p);
            if (!n)
                return 0;
            p += n - 1;
        }
    }
}

int sl_query_is_safe(const char *query)
{
    if (!query)
        return 1;
    for (const unsigned char *p = (const unsigned char *)query; *p; p++) {
        unsigned c = *p;
        if (c == '%' && sl_hex_val(p[1]) >= 0 && sl_hex_val(p[2]) >= 0) {
            c = (unsigned)(sl_hex_val(p[1]) << 4 | sl_hex_val(p[2]));
            p += 2;
        }
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}
