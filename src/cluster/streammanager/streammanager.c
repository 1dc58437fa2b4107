/*
 * The stream manager module (see streammanager.h): lifecycle, secrets,
 * the choice over the cluster snapshot, the "streammanager" service and
 * the per-address budgets. The HTTP routes are in sm_http.c.
 *
 * Stateless over the cluster: every lookup reads the "cluster" service's
 * snapshot (nodes, placements, node group settings). The only state kept
 * here is soft: how many clients each node was named to since its last
 * load report (so that lookups between two reports spread), and the
 * per-address request counters.
 */
#include "cluster/streammanager/streammanager.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "app/services.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/time.h"
#include "cluster/streammanager/sm_internal.h"
#include "cluster/streammanager/sm_jwt.h"
#include "sluice/errors.h"

#define WINDOW_MS 60000ULL

typedef struct sm_pending {
    uint64_t reported_ms; /* the node's report these placements came after */
    uint32_t n;
} sm_pending_t;

typedef struct sm_addr {
    uint64_t window_ms;   /* start of the current minute */
    uint32_t requests;    /* in this window */
    uint32_t fails;       /* failed credentials in this window */
} sm_addr_t;

const sl_svc_cluster_t *sl__sm_cluster(sm_mod_t *m, void **ud)
{
    return sl_service_get(m->core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR, 0, ud);
}

/* ------------------------------------------------------------------ */
/* the choice                                                          */

/* A node group's maxPublishers / maxSubscribers from its setting (0 = none). */
static void group_limits(const sl_svc_cluster_t *c, void *cud, const char *group, int64_t *max_pub,
                         int64_t *max_sub)
{
    char key[SL_CLUSTER_NAME_MAX + 16];
    *max_pub = *max_sub = 0;
    snprintf(key, sizeof key, "nodegroup/%s", group);
    const char *text = c->setting(cud, key);
    if (!text)
        return;
    json_t *j = json_loads(text, 0, NULL);
    json_t *p = json_object_get(j, "maxPublishers"), *s = json_object_get(j, "maxSubscribers");
    if (json_is_integer(p) && json_integer_value(p) > 0)
        *max_pub = json_integer_value(p);
    if (json_is_integer(s) && json_integer_value(s) > 0)
        *max_sub = json_integer_value(s);
    json_decref(j);
}

static void forget_stale_pending(sm_mod_t *m, size_t n_nodes)
{
    if (m->pending.n <= 2 * n_nodes + 16)
        return;
    size_t pos = 0;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&m->pending, &pos)))
        sl_free(e->val);
    sl_map_cleanup(&m->pending);
    sl_map_init(&m->pending);
}

int sl__sm_choose(sm_mod_t *m, const sl_sm_query_t *q, sl_cluster_node_t *out, size_t max_out,
                  size_t *n_out, int count, const char **why)
{
    void *cud;
    const sl_svc_cluster_t *c = sl__sm_cluster(m, &cud);
    *n_out = 0;
    if (!c) {
        *why = "cluster mode is off on this node";
        return SL_EIO;
    }
    /* 0: the cluster's own lease, read here, where the cluster (and so its
     * configuration section) is known to be present. */
    uint64_t timeout_ms = (uint64_t)m->node_timeout_ms;
    if (!timeout_ms)
        timeout_ms = (uint64_t)sl_config_int(m->core->cfg, "cluster.lease");
    if (!timeout_ms)
        timeout_ms = 5000;
    const sl_cluster_node_t *nodes;
    size_t n_nodes = c->nodes(cud, &nodes);
    if (n_nodes > SL_SM_MAX_CANDIDATES)
        n_nodes = SL_SM_MAX_CANDIDATES;
    static uint32_t pending[SL_SM_MAX_CANDIDATES];
    forget_stale_pending(m, n_nodes);
    for (size_t i = 0; i < n_nodes; i++) {
        sm_pending_t *p = sl_map_get(&m->pending, nodes[i].id);
        pending[i] = p && p->reported_ms == nodes[i].reported_ms ? p->n : 0;
    }
    /* Redis unreachable: no new placement (the origin could not write it),
     * and players are named from the last picture Redis gave, judged at its
     * time, so that the nodes do not all look dead as the outage goes on. */
    uint64_t fresh_ms = 0;
    int up = c->redis_up(cud, &fresh_ms);
    if (!up && q->action != SL_SM_SUBSCRIBE) {
        *why = "the cluster's Redis is unreachable: no new placements";
        return SL_EIO;
    }
    const sl_cluster_stream_t *st = q->path ? c->stream(cud, q->path) : NULL;
    sl_sm_view_t v = {
        .nodes = nodes,
        .n_nodes = n_nodes,
        .pending = pending,
        .now_ms = up || !fresh_ms ? sl_time_wall_ms() : fresh_ms,
        .node_timeout_ms = timeout_ms,
        .weights = &m->weights,
        .origin_id = st ? st->origin : NULL,
        .rotation = m->rotation++,
    };
    sl_sm_query_t rq = *q;
    rq.group = sl_sm_group_resolve(&v, q->group);
    group_limits(c, cud, rq.group, &v.max_publishers, &v.max_subscribers);
    if (v.max_publishers || v.max_subscribers) {
        /* The group's publishers are its placed streams; its subscribers the
         * players of those streams on every node (the last reports). */
        const sl_cluster_stream_t *streams;
        size_t n_streams = c->streams(cud, &streams);
        for (size_t i = 0; i < n_streams; i++) {
            const sl_cluster_node_t *o = c->node(cud, streams[i].origin);
            if (!o || strcmp(o->group, rq.group) != 0)
                continue;
            v.n_publishers++;
            v.n_subscribers += streams[i].subscribers;
        }
    }
    size_t idx[SL_SM_MAX_CANDIDATES];
    if (max_out > SL_SM_MAX_CANDIDATES)
        max_out = SL_SM_MAX_CANDIDATES;
    int rc = sl_sm_choose(&v, &rq, idx, max_out, n_out, why);
    if (rc)
        return rc;
    for (size_t i = 0; i < *n_out; i++)
        out[i] = nodes[idx[i]];
    m->n_lookups++;
    if (count && *n_out) {
        const sl_cluster_node_t *first = &nodes[idx[0]];
        sm_pending_t *p = sl_map_get(&m->pending, first->id);
        if (!p && (p = sl_calloc(1, sizeof *p)) && sl_map_set(&m->pending, first->id, p)) {
            sl_free(p);
            p = NULL;
        }
        if (p) {
            if (p->reported_ms != first->reported_ms) {
                p->reported_ms = first->reported_ms;
                p->n = 0;
            }
            p->n++;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* tokens and budgets                                                  */

int sl__sm_check_token(sm_mod_t *m, const char *bearer, const char *role)
{
    if (!bearer)
        return SL_EDENIED;
    while (*bearer == ' ')
        bearer++;
    if (strncasecmp(bearer, "Bearer ", 7) == 0)
        bearer += 7;
    while (*bearer == ' ')
        bearer++;
    size_t len = strnlen(bearer, SL_SM_JWT_MAX + 1);
    while (len && bearer[len - 1] == ' ')
        len--;
    char got[SL_SM_JWT_ROLE_MAX];
    int rc = sl_sm_jwt_verify(m->secret, m->secret_len, bearer, len,
                              sl_time_wall_ms() / 1000, got, NULL);
    if (rc)
        return SL_EDENIED;
    if (!role || strcmp(got, "admin") == 0 || strcmp(got, role) == 0)
        return 0;
    return SL_EBUSY;
}

/* The counting key of an address: IPv6 per /64 (one host holds a /64). */
static void addr_key(const char *addr, char *key, size_t cap)
{
    struct in6_addr a6;
    if (addr && strchr(addr, ':') && inet_pton(AF_INET6, addr, &a6) == 1) {
        memset(a6.s6_addr + 8, 0, 8);
        if (inet_ntop(AF_INET6, &a6, key, (socklen_t)cap))
            return;
    }
    snprintf(key, cap, "%s", addr ? addr : "-");
}

/* The address's record in the current window, made (evicting the oldest when full) if needed. */
static sm_addr_t *addr_rec(sm_mod_t *m, const char *addr)
{
    const sl_sm_config_t *cfg = sl_sm_cfg(m->core->cfg);
    char key[INET6_ADDRSTRLEN + 8];
    addr_key(addr, key, sizeof key);
    uint64_t now = sl_time_wall_ms();
    sm_addr_t *r = sl_map_get(&m->addrs, key);
    if (!r) {
        if ((int64_t)m->addrs.n >= cfg->max_addresses) {
            /* Full: forget the records whose window ended, else the oldest one. */
            size_t pos = 0;
            sl_map_entry_t *e, *oldest = NULL;
            char *stale[64];
            size_t n_stale = 0;
            while ((e = sl_map_next(&m->addrs, &pos))) {
                sm_addr_t *x = e->val;
                if (x->window_ms + WINDOW_MS <= now && n_stale < 64)
                    stale[n_stale++] = e->key;
                if (!oldest || x->window_ms < ((sm_addr_t *)oldest->val)->window_ms)
                    oldest = e;
            }
            if (!n_stale && oldest)
                stale[n_stale++] = oldest->key;
            /* Keys are the map's own copies: take the values out by copy of the key. */
            for (size_t i = 0; i < n_stale; i++) {
                char k[INET6_ADDRSTRLEN + 8];
                snprintf(k, sizeof k, "%s", stale[i]);
                stale[i] = NULL;
                sl_free(sl_map_del(&m->addrs, k));
            }
        }
        if (!(r = sl_calloc(1, sizeof *r)))
            return NULL;
        if (sl_map_set(&m->addrs, key, r)) {
            sl_free(r);
            return NULL;
        }
        r->window_ms = now;
    }
    if (r->window_ms + WINDOW_MS <= now) {
        r->window_ms = now;
        r->requests = r->fails = 0;
    }
    return r;
}

int sl__sm_rate_ok(sm_mod_t *m, const char *addr)
{
    sm_addr_t *r = addr_rec(m, addr);
    if (!r)
        return 0; /* out of memory: shed */
    if ((int64_t)r->requests >= sl_sm_cfg(m->core->cfg)->lookups_per_minute) {
        m->n_limited++;
        return 0;
    }
    r->requests++;
    return 1;
}

int sl__sm_auth_blocked(sm_mod_t *m, const char *addr, int fail)
{
    sm_addr_t *r = addr_rec(m, addr);
    if (!r)
        return 1;
    if (fail)
        r->fails++;
    return (int64_t)r->fails >= sl_sm_cfg(m->core->cfg)->auth_fail_limit;
}

/* ------------------------------------------------------------------ */
/* the service                                                         */

static int svc_choose(void *ud, const sl_sm_query_t *q, sl_cluster_node_t *out, const char **why)
{
    size_t n;
    return sl__sm_choose(ud, q, out, 1, &n, 1, why);
}

static int svc_check_token(void *ud, const char *bearer, const char *role)
{
    return sl__sm_check_token(ud, bearer, role);
}

static int svc_check_admin_token(void *ud, const char *token, const char *remote)
{
    return sl__sm_check_admin_token(ud, token, remote ? remote : "?");
}

/* Service "streammanager" (src/app/svc/streammanager.h), 1.2. */
static const sl_svc_streammanager_t sm_service = {
    .choose = svc_choose,
    .check_token = svc_check_token,
    .check_admin_token = svc_check_admin_token,
};

/* ------------------------------------------------------------------ */
/* secrets                                                             */

/*
 * The configured value, else the one kept in {data_dir}/{name}, else a
 * new random one written there (0600): hex of n_random bytes. The value is
 * never logged; the file is where an operator reads it.
 */
static int load_secret(const sl_config_t *cfg, const char *configured, const char *name,
                       size_t n_random, char *out, size_t cap)
{
    if (configured && configured[0]) {
        snprintf(out, cap, "%s", configured);
        return 0;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", cfg->server_data_dir, name);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[512];
        int ok = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        line[strcspn(line, "\r\n")] = '\0';
        if (ok && strlen(line) >= 16 && strlen(line) < cap) {
            snprintf(out, cap, "%s", line);
            SL_LOGI(NULL, "stream manager: %s read from %s", name, path);
            return 0;
        }
    }
    uint8_t r[64];
    if (n_random > sizeof r || 2 * n_random + 1 > cap || RAND_bytes(r, (int)n_random) != 1)
        return SL_EIO;
    for (size_t i = 0; i < n_random; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -errno;
    if (fchmod(fd, 0600) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    size_t n = strlen(out);
    int ok = write(fd, out, n) == (ssize_t)n && write(fd, "\n", 1) == 1;
    close(fd);
    if (!ok)
        return SL_EIO;
    SL_LOGI(NULL, "stream manager: generated %s into %s (read it there)", name, path);
    return 0;
}

static int load_secrets(sm_mod_t *m, const sl_config_t *cfg)
{
    const sl_sm_config_t *sc = sl_sm_cfg(cfg);
    char secret[SM_SECRET_MAX + 1];
    int rc;
    if ((rc = load_secret(cfg, sc->admin_token, "sm_admin_token", 16, m->admin_token,
                          sizeof m->admin_token)) ||
        (rc = load_secret(cfg, sc->auth_secret, "sm_auth_secret", 32, secret, sizeof secret)) ||
        (rc = load_secret(cfg, sc->admin_password, "sm_admin_password", 12, m->admin_pass,
                          sizeof m->admin_pass)))
        return rc;
    if (sc->proxy_user[0] && (rc = load_secret(cfg, sc->proxy_password, "sm_proxy_password", 12,
                                               m->proxy_pass, sizeof m->proxy_pass)))
        return rc;
    m->secret_len = strlen(secret);
    memcpy(m->secret, secret, m->secret_len);
    OPENSSL_cleanse(secret, sizeof secret);
    snprintf(m->admin_user, sizeof m->admin_user, "%s", sc->admin_user);
    snprintf(m->proxy_user, sizeof m->proxy_user, "%s", sc->proxy_user);
    return 0;
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */

static void apply_settings(sm_mod_t *m, const sl_config_t *cfg)
{
    const sl_sm_config_t *sc = sl_sm_cfg(cfg);
    sl_sm_weights_t w = {1, 1, 1, 1, 1, 1};
    /* check() refused a bad text: parse cannot fail here. */
    (void)sl_sm_weights_parse(sc->weights, &w);
    m->weights = w;
    m->node_timeout_ms = sc->node_timeout_ms;
}

static void free_maps(sm_mod_t *m)
{
    sl_map_t *maps[2] = {&m->pending, &m->addrs};
    for (int i = 0; i < 2; i++) {
        size_t pos = 0;
        sl_map_entry_t *e;
        while ((e = sl_map_next(maps[i], &pos)))
            sl_free(e->val);
        sl_map_cleanup(maps[i]);
    }
}

static int sm_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    (void)api;
    sl_core_t *core = sl_host_core(h);
    *state = NULL;
    if (!sl_sm_cfg(core->cfg)->enabled)
        return 0;
    sm_mod_t *m = sl_calloc(1, sizeof *m);
    if (!m)
        return SL_ENOMEM;
    m->core = core;
    sl_map_init(&m->pending);
    sl_map_init(&m->addrs);
    sl_list_init(&m->waits);
    apply_settings(m, core->cfg);
    int rc = load_secrets(m, core->cfg);
    if (rc) {
        SL_LOGE(NULL, "stream manager: cannot set up its secrets in %s: %s",
                core->cfg->server_data_dir, sl_strerror(rc));
        goto fail;
    }
    if (!sl__sm_cluster(m, NULL))
        SL_LOGW(NULL, "stream manager: enabled but the cluster service is absent (cluster.enabled "
                      "off?): lookups answer 503 until it is up");
    if ((rc = sl_service_register(core, SL_SVC_STREAMMANAGER, SL_SVC_STREAMMANAGER_MAJOR,
                                  SL_SVC_STREAMMANAGER_MINOR, &sm_service, m)))
        goto fail;
    if ((rc = sl__sm_http_start(m))) {
        sl_service_unregister(core, SL_SVC_STREAMMANAGER, &sm_service);
        goto fail;
    }
    SL_LOGI(NULL, "stream manager: serving /streammanager/api/4.0 and /as/v1 (users %s%s%s)",
            m->admin_user, m->proxy_user[0] ? ", " : "", m->proxy_user);
    *state = m;
    return 0;
fail:
    free_maps(m);
    OPENSSL_cleanse(m, sizeof *m);
    sl_free(m);
    return rc;
}

static int sm_reload(void *state)
{
    sm_mod_t *m = state;
    if (!sl_sm_cfg(m->core->cfg)->enabled)
        return SL_EAGAIN;
    apply_settings(m, m->core->cfg);
    return 0;
}

static void sm_stop(void *state)
{
    sm_mod_t *m = state;
    if (!m)
        return;
    sl__sm_http_stop(m);
    sl_service_unregister(m->core, SL_SVC_STREAMMANAGER, &sm_service);
    SL_LOGI(NULL, "stream manager: stopped after %llu lookups (%llu over budget)",
            (unsigned long long)m->n_lookups, (unsigned long long)m->n_limited);
}

static void sm_destroy(void *state)
{
    sm_mod_t *m = state;
    if (!m)
        return;
    free_maps(m);
    OPENSSL_cleanse(m, sizeof *m);
    sl_free(m);
}

static int sm_check(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    const sl_sm_config_t *sc = sl_sm_cfg(cfg);
    int problems = 0;
    sl_sm_weights_t w = {0};
    if (sl_sm_weights_parse(sc->weights, &w)) {
        sl_config_report(cfg, "stream_manager.weights", err, ud,
                         "expected `metric=weight` pairs (streams, connections, subscribers, "
                         "memory, restreamer, cpu; weights 0..1000)");
        problems++;
    }
    if (sc->auth_secret[0] && strlen(sc->auth_secret) < 32) {
        sl_config_report(cfg, "stream_manager.auth_secret", err, ud,
                         "use at least 32 bytes (or leave it empty to generate one)");
        problems++;
    }
    if (sc->admin_token[0] && strlen(sc->admin_token) < 16) {
        sl_config_report(cfg, "stream_manager.admin_token", err, ud,
                         "use at least 16 characters (or leave it empty to generate one)");
        problems++;
    }
    if (sc->proxy_user[0] && strcmp(sc->proxy_user, sc->admin_user) == 0) {
        sl_config_report(cfg, "stream_manager.proxy_user", err, ud,
                         "must differ from stream_manager.admin_user");
        problems++;
    }
    return problems;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "streammanager",
    .description = "Red5 Pro Stream Manager 4.0 and 2.0 APIs over the cluster",
    .init = sm_init,
    .stop = sm_stop,
    .destroy = sm_destroy,
    .reload = sm_reload,
};

const sl_builtin_t sl_streammanager_builtin = {
    .plugin = &plugin,
    .config = &sl_sm_config_section,
    .check = sm_check,
};
