/*
 * The core and the session registry (see core.h).
 */
#include "app/core.h"

#include "app/admission.h"
#include "app/events.h"

#include <openssl/rand.h>
#include <string.h>

#include "base/alloc.h"
#include "base/time.h"
#include "sluice/errors.h"

int sl_core_init(sl_core_t *core, uv_loop_t *loop, const sl_config_t *cfg)
{
    memset(core, 0, sizeof(*core));
    core->loop = loop;
    core->cfg = cfg;
    core->hub = sl_hub_new((size_t)cfg->media_gop_cache_max_bytes);
    if (!core->hub)
        return SL_ENOMEM;
    sl_list_init(&core->sessions);
    sl_map_init(&core->app_stats);
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
    sl_events_cleanup(core);
    sl_admit_cleanup(core);
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

size_t sl_core_connections(const sl_core_t *core)
{
    return core->n_sessions - core->n_socketless;
}

void sl_session_unregister(sl_core_t *core, sl_session_t *s)
{
    if (sl_list_linked(&s->link)) {
        sl_list_remove(&s->link);
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

int sl_tcp_listen(uv_loop_t *loop, uv_tcp_t *h, void *data, uv_connection_cb cb,
                  const char *bind, int64_t port, int *opened)
{
    struct sockaddr_storage sa;
    *opened = 0;
    int rc = uv_ip4_addr(bind, (int)port, (struct sockaddr_in *)&sa);
    if (rc)
        rc = uv_ip6_addr(bind, (int)port, (struct sockaddr_in6 *)&sa);
    if (rc)
        return rc;
    uv_tcp_init(loop, h);
    h->data = data;
    *opened = 1;
    rc = uv_tcp_bind(h, (struct sockaddr *)&sa, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)h, 511, cb);
    if (rc)
        uv_close((uv_handle_t *)h, NULL);
    return rc;
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
    int rc = set_str(&s->app, &s->log.app, app);
    if (rc || !app || s->app_stats || !s->core)
        return rc;
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
    }
}
