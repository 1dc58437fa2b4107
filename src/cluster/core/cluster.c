/*
 * The cluster core (see cluster.h, docs/cluster.md). Redis layout, every
 * key under cluster.prefix (P; with cluster.redis_cluster P carries a hash
 * tag, "{sluice}:", so that every key is in one Redis Cluster slot):
 *   P node:{id}     this node's record and load report (JSON,
 *                   cluster_record.h), SET PX lease every report interval
 *   P nodes         set of the ids that wrote a record (pruned by readers
 *                   when the record has expired)
 *   P stream:{path} origin node id of a live stream, claimed with a Lua
 *                   script (NX, or refresh when ours) at publish admission,
 *                   refreshed each interval, deleted (only when still
 *                   ours) at unpublish
 *   P streams       set of the placed paths (pruned like nodes)
 *   P settings      hash: cluster-wide settings, key -> JSON
 *   P states        hash: node id -> state set by set_state (read by the
 *                   node each interval: a missed pub/sub message heals)
 *   P bus           the pub/sub channel ({"from","to","topic","json"})
 * Each interval, this node writes its record and placements, then reads
 * the snapshot: SMEMBERS nodes + MGET node:{ids}, SMEMBERS streams + MGET
 * stream:{paths}, HGETALL settings, HGET states {self}: O(nodes + streams).
 *
 * Redis down: the node keeps serving its sessions and admits local
 * publishers (their placement is written when Redis returns: on_up
 * rewrites the record and claims every local placement, and drops
 * placements under this id that no local publisher backs); the snapshot
 * stays as it was, redis_up() says 0, and calls that need Redis answer
 * SL_EIO.
 */
#include "cluster/core/cluster.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "app/admission.h"
#include "app/core.h"
#include "app/events.h"
#include "app/services.h"
#include "app/svc/api.h"
#include "app/svc/cluster.h"
#include "app/svc/http.h"
#include "app/svc/relay.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/time.h"
#include "cluster/core/cluster_config.h"
#include "cluster/core/cluster_record.h"
#include "cluster/core/cluster_redis.h"
#include "sluice/errors.h"

static const sl_log_ctx_t g_ctx = {.proto = "cluster"};

#define NODES_MAX 1024        /* nodes a snapshot holds */
#define STREAMS_MAX 16384     /* placements a snapshot holds */
#define SETTINGS_MAX 4096     /* settings a snapshot holds */
#define SETTING_KEY_MAX 256   /* bytes of a setting's key */
#define SETTING_JSON_MAX (64 * 1024)
#define WRITES_MAX 64         /* recent put_setting writes remembered (see write_t) */
#define LISTENERS_MAX 64
#define CLAIM_WAIT_MS 15000   /* a claim with no publish after this long is released */
#define API_BODY_MAX 4096
#define LOCAL_QUEUE_MAX 256   /* messages to this node waiting for delivery */

/* Claims path for this node: 1 when ours (now or already), else the holder's id. */
static const char CLAIM_LUA[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == false or v == ARGV[1] then "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "redis.call('SADD', KEYS[2], ARGV[3]) return 1 end "
    "return v";
/* Deletes path's placement only while it is ours. */
static const char RELEASE_LUA[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) "
    "redis.call('SREM', KEYS[2], ARGV[2]) return 1 end return 0";

/* One stream published here whose placement this node holds (or will hold). */
typedef struct place {
    sl_list_t link;
    char *path;               /* "app/stream", owned */
    int live;                 /* its publisher is publishing */
    int claimed;              /* Redis said it is ours at the last claim */
    int conflict_logged;
    uint64_t since_mono;      /* admission time (a claim without publish expires) */
    uint64_t started_ms;      /* wall clock of the publish */
} place_t;

typedef struct listener {
    int handle;               /* > 0, 0 = free slot */
    char *topic;              /* NULL = every topic */
    sl_cluster_msg_cb cb;
    void *ud;
} listener_t;

typedef struct setting {
    char *key, *json;         /* owned */
} setting_t;

/*
 * A setting this node wrote (put_setting) and the write's sequence number.
 * Every command goes on one Redis connection, answered in order, so an
 * HGETALL sent before the HSET answers with the value before it: without
 * this, its reply put an old value back into the snapshot right after
 * put_setting had updated it (the autoscaler saw its own decision undone).
 * Each HGETALL carries the sequence number of the last write sent before
 * it; its reply keeps this node's writes made since (applied over the
 * reply) and forgets the ones it already reflects. At most WRITES_MAX are
 * remembered (the oldest is dropped: its key may read old until the next
 * refresh, as before).
 */
typedef struct write {
    char *key, *json;         /* owned; json NULL = deleted */
    uint64_t seq;
} write_t;

/* The state of one HGETALL settings in flight. */
typedef struct settings_req {
    struct cl *c;
    uint64_t seq;             /* c->write_seq when it was sent */
} settings_req_t;

/* A message to this node, delivered from a timer (never inside send). */
typedef struct local_msg {
    struct local_msg *next;
    char *topic, *json;       /* owned */
} local_msg_t;

typedef struct cl {
    sl_core_t *core;
    const sl_cluster_config_t *cfg;
    sl_cluster_redis_t *redis;
    char prefix[80];
    char channel[96];
    sl_cluster_node_t self;
    /* the snapshot */
    sl_cluster_node_t *nodes;             /* self first; owned */
    sl_cluster_rec_presence_t **presences; /* per node, owned */
    size_t *n_presences;
    uint64_t *seen_mono;                  /* per node: when its record was last read */
    size_t n_nodes;
    sl_cluster_stream_t *streams;         /* owned */
    size_t n_streams;
    setting_t *settings;
    size_t n_settings;
    write_t writes[WRITES_MAX];           /* this node's recent writes, oldest first */
    size_t n_writes;
    uint64_t write_seq;                   /* sequence number of the last write sent */
    uint64_t fresh_ms;                    /* wall clock of the last complete refresh */
    int refreshing;                       /* a refresh chain is under way */
    /* this node */
    sl_list_t places;
    listener_t listeners[LISTENERS_MAX];
    int next_handle;
    local_msg_t *local_head, *local_tail;
    size_t n_local;
    int first_up_done;
    /* load accounting */
    uint64_t last_cpu_us, last_wall_ms, last_bytes_in, last_bytes_out;
    long n_cpus;
    uint64_t mem_total;
    uv_timer_t tick, deliver;
    int admit_id, ev_id;
    const sl_svc_api_t *api;
    void *api_ud;
    const sl_http_svc_t *http;
    void *http_ud;
    int registered;
    int stopping;
    int standalone;           /* cluster mode off: only the API answers (enabled: false) */
} cl_t;

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static int cmd(cl_t *c, sl_cluster_redis_cb cb, void *ud, int argc, const char **argv)
{
    size_t lens[16];
    SL_ASSERT(argc <= 16);
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return sl_cluster_redis_cmd(c->redis, cb, ud, argc, argv, lens);
}

static void key_of(const cl_t *c, char *out, size_t cap, const char *kind, const char *name)
{
    snprintf(out, cap, "%s%s%s", c->prefix, kind, name ? name : "");
}

static place_t *place_find(cl_t *c, const char *path)
{
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &c->places) {
        place_t *p = sl_container_of(it, place_t, link);
        if (strcmp(p->path, path) == 0)
            return p;
    }
    return NULL;
}

static void place_free(place_t *p)
{
    sl_list_remove(&p->link);
    sl_free(p->path);
    sl_free(p);
}

/* Origins, all-in-one nodes and transcoders (the stream manager sends an ABR
 * broadcaster's level-1 variant to a transcoder, which is then its origin). */
static int origin_capable(const cl_t *c)
{
    return c->cfg->role == SL_CLUSTER_ROLE_ALL || c->cfg->role == SL_CLUSTER_ROLE_ORIGIN ||
           c->cfg->role == SL_CLUSTER_ROLE_TRANSCODER;
}

static int draining(const cl_t *c)
{
    return strcmp(c->self.state, "INSERVICE") != 0;
}

static int state_is_valid(const char *s)
{
    return s && (strcmp(s, "INSERVICE") == 0 || strcmp(s, "SOFT_SUNSET") == 0 ||
                 strcmp(s, "HARD_SUNSET") == 0 || strcmp(s, "FAULT") == 0);
}

/* "app/stream" of a scope and a stream name; 0 or SL_ETOOBIG. */
static int path_of(char *out, size_t cap, const char *app, const char *stream)
{
    if (!app || !stream || !app[0] || !stream[0])
        return SL_EINVAL;
    int n = snprintf(out, cap, "%s/%s", app, stream);
    return n < 0 || (size_t)n >= cap ? SL_ETOOBIG : 0;
}

/* ------------------------------------------------------------------ */
/* placement in Redis                                                  */

typedef struct claim_req {
    cl_t *c;
    char *path;
    sl_admit_t *admit;        /* a reference while the publish admission waits, or NULL */
} claim_req_t;

static void claim_req_free(claim_req_t *q)
{
    sl_free(q->path);
    sl_free(q);
}

static void on_claim(void *ud, redisReply *r)
{
    claim_req_t *q = ud;
    cl_t *c = q->c;
    place_t *p = c->stopping ? NULL : place_find(c, q->path);
    char holder[SL_CLUSTER_ID_MAX] = "";
    if (r && r->type == REDIS_REPLY_STRING && r->len < sizeof holder) {
        memcpy(holder, r->str, r->len);
        holder[r->len] = '\0';
    }
    int ours = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (p) {
        p->claimed = ours;
        if (holder[0] && p->live && !p->conflict_logged) {
            SL_LOGW(&g_ctx, "cluster: %s is placed on node %s too; this node keeps its publisher",
                    q->path, holder);
            p->conflict_logged = 1;
        }
    }
    if (q->admit) {
        if (holder[0]) {
            char why[160];
            snprintf(why, sizeof why, "stream is live on node %s", holder);
            if (p && !p->live)
                place_free(p);
            sl_admit_resume(q->admit, SL_EDENIED, why);
        } else {
            /* Ours, or Redis failed on the way: local publishers are served regardless. */
            sl_admit_resume(q->admit, SL_OK, NULL);
        }
    }
    claim_req_free(q);
}

/* Sends the claim script for path; admit (a reference) is resumed by the reply. */
static int claim(cl_t *c, const char *path, sl_admit_t *admit)
{
    claim_req_t *q = sl_calloc(1, sizeof *q);
    if (!q || !(q->path = sl_strdup(path))) {
        sl_free(q);
        return SL_ENOMEM;
    }
    q->c = c;
    q->admit = admit;
    char key[SL_CLUSTER_PATH_MAX + 256], set[256], lease[24];
    key_of(c, key, sizeof key, "stream:", path);
    key_of(c, set, sizeof set, "streams", NULL);
    snprintf(lease, sizeof lease, "%lld", (long long)c->cfg->lease_ms);
    const char *argv[] = {"EVAL", CLAIM_LUA, "2", key, set, c->self.id, lease, path};
    int rc = cmd(c, on_claim, q, 8, argv);
    if (rc)
        claim_req_free(q);
    return rc;
}

static void release(cl_t *c, const char *path)
{
    char key[SL_CLUSTER_PATH_MAX + 256], set[256];
    key_of(c, key, sizeof key, "stream:", path);
    key_of(c, set, sizeof set, "streams", NULL);
    const char *argv[] = {"EVAL", RELEASE_LUA, "2", key, set, c->self.id, path};
    (void)cmd(c, NULL, NULL, 7, argv); /* Redis down: the lease ends it */
}

/* ------------------------------------------------------------------ */
/* this node's record                                                  */

/*
 * The "relay" service when the relay module runs: it knows which sessions
 * are other nodes' relay connections (Red5's cluster restreamers). Those
 * play here by role but stand for an edge's players, which that edge
 * reports itself: the load reports leave them out of subscribers, so that
 * currentSubscribers, maxSubscribers and the autoscaler's expressions count
 * real players. NULL: no relay module, no session is a relay connection.
 */
static const sl_svc_relay_t *relay_svc(cl_t *c, void **ud)
{
    *ud = NULL;
    return sl_service_get(c->core, SL_SVC_RELAY, SL_SVC_RELAY_MAJOR, 0, ud);
}

static void count_load(cl_t *c)
{
    sl_core_t *core = c->core;
    uint32_t pubs = 0, subs = 0;
    uint64_t in = core->closed_bytes_in, out = core->closed_bytes_out;
    void *rud;
    const sl_svc_relay_t *rl = relay_svc(c, &rud);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &core->sessions) {
        sl_session_t *s = sl_container_of(it, sl_session_t, link);
        pubs += s->role == SL_ROLE_PUBLISHER;
        subs += s->role == SL_ROLE_SUBSCRIBER && !(rl && rl->is_restreamer(rud, s->id));
        in += s->bytes_in;
        out += s->bytes_out;
    }
    sl_cluster_node_t *n = &c->self;
    n->connections = (uint32_t)sl_core_connections(core);
    n->publishers = pubs;
    n->subscribers = subs;
    n->streams = (uint32_t)sl_hub_count(core->hub);
    n->max_connections = (uint32_t)core->cfg->server_max_connections;
    uint64_t now = sl_time_mono_ms();
    struct rusage ru;
    uint64_t cpu_us = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu_us = (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec +
                 (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
    if (c->last_wall_ms && now > c->last_wall_ms) {
        uint64_t dt = now - c->last_wall_ms;
        double pct = (double)(cpu_us - c->last_cpu_us) / 10.0 / (double)dt / (double)c->n_cpus;
        n->cpu_load = pct > 100 ? 100 : pct < 0 ? 0 : pct;
        n->bytes_in_rate = in >= c->last_bytes_in ? (in - c->last_bytes_in) * 1000 / dt : 0;
        n->bytes_out_rate = out >= c->last_bytes_out ? (out - c->last_bytes_out) * 1000 / dt : 0;
    }
    c->last_cpu_us = cpu_us;
    c->last_wall_ms = now;
    c->last_bytes_in = in;
    c->last_bytes_out = out;
    /* RSS from /proc/self/statm (pages), against the machine's memory. */
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    if (c->mem_total)
        n->mem_load = (double)rss * (double)sysconf(_SC_PAGESIZE) * 100.0 / (double)c->mem_total;
    n->reported_ms = sl_time_wall_ms();
}

/* This node's presences, from its hub: every stream with a publisher or players. */
static size_t own_presences(cl_t *c, sl_cluster_rec_presence_t **out)
{
    size_t cap = sl_hub_count(c->core->hub), n = 0;
    if (cap > SL_CLUSTER_PRESENCES_MAX)
        cap = SL_CLUSTER_PRESENCES_MAX;
    *out = NULL;
    if (cap == 0)
        return 0;
    sl_cluster_rec_presence_t *v = sl_calloc(cap, sizeof *v);
    if (!v)
        return 0;
    size_t pos = 0;
    sl_stream_t *st;
    void *rud;
    const sl_svc_relay_t *rl = relay_svc(c, &rud);
    while (n < cap && (st = sl_hub_next(c->core->hub, &pos))) {
        if (!st->publisher && !st->n_players)
            continue;
        if (strlen(st->name) >= SL_CLUSTER_PATH_MAX || !(v[n].path = sl_strdup(st->name)))
            continue;
        place_t *p = place_find(c, st->name);
        v[n].is_origin = st->publisher && p && p->live;
        /* Relay connections are not players (see relay_svc). */
        uint32_t relays = rl ? rl->restreamers(rud, st->name) : 0;
        uint32_t players = (uint32_t)st->n_players;
        v[n].subscribers = players > relays ? players - relays : 0;
        v[n].started_ms = st->publisher ? st->publish_time_ms : st->create_time_ms;
        n++;
    }
    *out = v;
    return n;
}

static void write_record(cl_t *c)
{
    sl_cluster_rec_presence_t *p = NULL;
    size_t n_p = own_presences(c, &p);
    char *txt = sl_cluster_record_write(&c->self, p, n_p);
    sl_cluster_presences_free(p, n_p);
    if (!txt)
        return;
    char key[256], set[256], lease[24];
    key_of(c, key, sizeof key, "node:", c->self.id);
    key_of(c, set, sizeof set, "nodes", NULL);
    snprintf(lease, sizeof lease, "%lld", (long long)c->cfg->lease_ms);
    const char *a1[] = {"SET", key, txt, "PX", lease};
    (void)cmd(c, NULL, NULL, 5, a1);
    const char *a2[] = {"SADD", set, c->self.id};
    (void)cmd(c, NULL, NULL, 3, a2);
    sl_free(txt);
}

/* ------------------------------------------------------------------ */
/* the snapshot                                                        */

static void snapshot_free_nodes(cl_t *c)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        sl_cluster_presences_free(c->presences[i], c->n_presences[i]);
    sl_free(c->nodes);
    sl_free(c->presences);
    sl_free(c->n_presences);
    sl_free(c->seen_mono);
    c->nodes = NULL;
    c->presences = NULL;
    c->n_presences = NULL;
    c->seen_mono = NULL;
    c->n_nodes = 0;
}

static void settings_free(setting_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sl_free(s[i].key);
        sl_free(s[i].json);
    }
    sl_free(s);
}

/* Self alone (start, and when a refresh cannot allocate). */
static void snapshot_self_only(cl_t *c)
{
    snapshot_free_nodes(c);
    c->nodes = sl_calloc(1, sizeof *c->nodes);
    c->presences = sl_calloc(1, sizeof *c->presences);
    c->n_presences = sl_calloc(1, sizeof *c->n_presences);
    c->seen_mono = sl_calloc(1, sizeof *c->seen_mono);
    if (c->nodes && c->presences && c->n_presences && c->seen_mono) {
        c->nodes[0] = c->self;
        c->n_nodes = 1;
    }
}

/* Emits node_up / node_down for one node. */
static void node_event(cl_t *c, const sl_cluster_node_t *n, int up)
{
    sl_event_t ev = {.type = up ? SL_EV_NODE_UP : SL_EV_NODE_DOWN,
                     .session_id = n->id,
                     .proto = "cluster",
                     .remote_addr = n->private_host[0] ? n->private_host : n->host,
                     .remote_port = n->http_port,
                     .reason = up ? "joined" : "lease expired"};
    SL_LOGI(&g_ctx, "cluster: node %s (%s, %s) %s", n->id, n->role,
            ev.remote_addr, up ? "joined" : "left (lease expired)");
    sl_events_emit(c->core, &ev);
}

typedef struct refresh {
    cl_t *c;
    char **ids;               /* the ids of SMEMBERS nodes (owned) */
    size_t n_ids;
} refresh_t;

static void refresh_free(refresh_t *r)
{
    for (size_t i = 0; r && i < r->n_ids; i++)
        sl_free(r->ids[i]);
    if (r)
        sl_free(r->ids);
    sl_free(r);
}

/* Collects the strings of an array reply (ids, paths) that pass valid(); owned copies. */
static int collect(redisReply *r, size_t max, int (*valid)(const char *), char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return SL_EIO;
    size_t cap = r->elements < max ? r->elements : max;
    if (!cap)
        return 0;
    char **v = sl_calloc(cap, sizeof *v);
    if (!v)
        return SL_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < r->elements && k < cap; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING || strlen(e->str) != e->len || !valid(e->str))
            continue;
        if (!(v[k] = sl_strdup(e->str)))
            break;
        k++;
    }
    *out = v;
    *n = k;
    return 0;
}

static int path_valid(const char *s)
{
    return strlen(s) < SL_CLUSTER_PATH_MAX && sl_name_is_safe(s, SL_CLUSTER_PATH_MAX - 1);
}

/* Removes members whose key expired from a set (one SREM, bounded by the reply). */
static void prune(cl_t *c, const char *set_name, char **members, const uint8_t *gone, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += gone[i];
    if (!k)
        return;
    const char **argv = sl_calloc(k + 2, sizeof *argv);
    size_t *lens = sl_calloc(k + 2, sizeof *lens);
    if (argv && lens) {
        char set[256];
        key_of(c, set, sizeof set, set_name, NULL);
        argv[0] = "SREM";
        argv[1] = set;
        size_t j = 2;
        for (size_t i = 0; i < n; i++)
            if (gone[i])
                argv[j++] = members[i];
        for (size_t i = 0; i < j; i++)
            lens[i] = strlen(argv[i]);
        (void)sl_cluster_redis_cmd(c->redis, NULL, NULL, (int)j, argv, lens);
    }
    sl_free(argv);
    sl_free(lens);
}

static int node_known(const sl_cluster_node_t *v, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0)
            return 1;
    return 0;
}

static void on_node_records(void *ud, redisReply *r)
{
    refresh_t *rf = ud;
    cl_t *c = rf->c;
    if (!r || c->stopping || r->type != REDIS_REPLY_ARRAY || r->elements != rf->n_ids) {
        c->refreshing = 0;
        refresh_free(rf);
        return;
    }
    size_t cap = rf->n_ids + 1 + c->n_nodes; /* read ones, self, and carried-over ones */
    sl_cluster_node_t *nodes = sl_calloc(cap, sizeof *nodes);
    sl_cluster_rec_presence_t **pres = sl_calloc(cap, sizeof *pres);
    size_t *n_pres = sl_calloc(cap, sizeof *n_pres);
    uint64_t *seen = sl_calloc(cap, sizeof *seen);
    uint8_t *gone = sl_calloc(cap, 1);
    if (!nodes || !pres || !n_pres || !seen || !gone) {
        sl_free(nodes);
        sl_free(pres);
        sl_free(n_pres);
        sl_free(seen);
        sl_free(gone);
        c->refreshing = 0;
        refresh_free(rf);
        return;
    }
    nodes[0] = c->self;
    n_pres[0] = own_presences(c, &pres[0]);
    uint64_t now = sl_time_mono_ms();
    seen[0] = now;
    size_t n = 1;
    int self_seen = 0; /* this node's record, written just before, was read back */
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_NIL) {
            gone[i] = 1; /* the lease ended: the node is gone */
            continue;
        }
        if (e->type == REDIS_REPLY_STRING && strcmp(rf->ids[i], c->self.id) == 0)
            self_seen = 1;
        if (e->type != REDIS_REPLY_STRING || strcmp(rf->ids[i], c->self.id) == 0)
            continue;
        sl_cluster_node_t tmp;
        sl_cluster_rec_presence_t *p = NULL;
        size_t n_p = 0;
        if (sl_cluster_record_parse(e->str, e->len, &tmp, &p, &n_p) ||
            strcmp(tmp.id, rf->ids[i]) != 0 || node_known(nodes, n, tmp.id)) {
            sl_cluster_presences_free(p, n_p);
            SL_LOGD(&g_ctx, "cluster: ignoring an invalid record under node:%s", rf->ids[i]);
            continue;
        }
        nodes[n] = tmp;
        pres[n] = p;
        n_pres[n] = n_p;
        seen[n] = now;
        n++;
    }
    prune(c, "nodes", rf->ids, gone, rf->n_ids);
    /*
     * node_up / node_down against the previous snapshot (self excluded).
     * When this node's own record, written just before the read, is not
     * there, Redis lost its data (restarted empty, failed over to a replica
     * that had not caught up): nodes missing from this read stay in the
     * snapshot for up to a lease after they were last read, while they
     * write their records again, instead of flapping down and up. Nodes
     * that leave on purpose say "bye" on the bus and are dropped at once.
     */
    sl_cluster_node_t *old = c->nodes;
    size_t n_new = n;
    for (size_t i = 1; i < n_new; i++)
        if (!node_known(old, c->n_nodes, nodes[i].id))
            node_event(c, &nodes[i], 1);
    for (size_t i = 1; i < c->n_nodes; i++) {
        if (node_known(nodes, n_new, old[i].id))
            continue;
        if (!self_seen && now - c->seen_mono[i] < (uint64_t)c->cfg->lease_ms && n < cap) {
            nodes[n] = old[i];
            pres[n] = c->presences[i];
            n_pres[n] = c->n_presences[i];
            seen[n] = c->seen_mono[i];
            c->presences[i] = NULL;
            c->n_presences[i] = 0;
            n++;
        } else {
            node_event(c, &old[i], 0);
        }
    }
    snapshot_free_nodes(c);
    c->nodes = nodes;
    c->presences = pres;
    c->n_presences = n_pres;
    c->seen_mono = seen;
    c->n_nodes = n;
    c->fresh_ms = sl_time_wall_ms();
    sl_free(gone);
    c->refreshing = 0;
    refresh_free(rf);
}

static int id_valid(const char *s) { return sl_cluster_id_is_valid(s); }

static void on_node_ids(void *ud, redisReply *r)
{
    cl_t *c = ud;
    refresh_t *rf = sl_calloc(1, sizeof *rf);
    if (!rf || c->stopping || collect(r, NODES_MAX, id_valid, &rf->ids, &rf->n_ids)) {
        refresh_free(rf);
        c->refreshing = 0;
        return;
    }
    rf->c = c;
    if (rf->n_ids == 0) {
        /* Not even this node's record: it is written before the read, so Redis lost it. */
        on_node_records(rf, NULL);
        return;
    }
    const char **argv = sl_calloc(rf->n_ids + 1, sizeof *argv);
    size_t *lens = sl_calloc(rf->n_ids + 1, sizeof *lens);
    char **keys = sl_calloc(rf->n_ids, sizeof *keys);
    int rc = SL_ENOMEM;
    if (argv && lens && keys) {
        argv[0] = "MGET";
        lens[0] = 4;
        size_t i;
        for (i = 0; i < rf->n_ids; i++) {
            size_t kl = strlen(c->prefix) + 5 + strlen(rf->ids[i]) + 1;
            if (!(keys[i] = sl_malloc(kl)))
                break;
            snprintf(keys[i], kl, "%snode:%s", c->prefix, rf->ids[i]);
            argv[i + 1] = keys[i];
            lens[i + 1] = strlen(keys[i]);
        }
        if (i == rf->n_ids)
            rc = sl_cluster_redis_cmd(c->redis, on_node_records, rf, (int)rf->n_ids + 1, argv,
                                      lens);
    }
    for (size_t i = 0; keys && i < rf->n_ids; i++)
        sl_free(keys[i]);
    sl_free(keys);
    sl_free(argv);
    sl_free(lens);
    if (rc) {
        refresh_free(rf);
        c->refreshing = 0;
    }
}

typedef struct stream_refresh {
    cl_t *c;
    char **paths;
    size_t n;
} stream_refresh_t;

static void stream_refresh_free(stream_refresh_t *s)
{
    for (size_t i = 0; s && i < s->n; i++)
        sl_free(s->paths[i]);
    if (s)
        sl_free(s->paths);
    sl_free(s);
}

/* Subscribers of path on every node, from the node snapshot. */
static uint32_t subscribers_of(const cl_t *c, const char *path)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < c->n_nodes; i++)
        for (size_t j = 0; j < c->n_presences[i]; j++)
            if (strcmp(c->presences[i][j].path, path) == 0)
                sum += c->presences[i][j].subscribers;
    return sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
}

static void on_stream_owners(void *ud, redisReply *r)
{
    stream_refresh_t *sr = ud;
    cl_t *c = sr->c;
    if (!r || c->stopping || r->type != REDIS_REPLY_ARRAY || r->elements != sr->n) {
        stream_refresh_free(sr);
        return;
    }
    sl_cluster_stream_t *v = sr->n ? sl_calloc(sr->n, sizeof *v) : NULL;
    uint8_t *gone = sr->n ? sl_calloc(sr->n, 1) : NULL;
    if (sr->n && (!v || !gone)) {
        sl_free(v);
        sl_free(gone);
        stream_refresh_free(sr);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < sr->n; i++) {
        redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_NIL) {
            gone[i] = 1;
            continue;
        }
        if (e->type != REDIS_REPLY_STRING || !sl_cluster_id_is_valid(e->str) ||
            strlen(e->str) != e->len)
            continue;
        sl_cluster_stream_t *s = &v[n++];
        snprintf(s->path, sizeof s->path, "%s", sr->paths[i]);
        snprintf(s->origin, sizeof s->origin, "%s", e->str);
        s->subscribers = subscribers_of(c, s->path);
        /* started: from the origin's presence when its record lists it. */
        for (size_t k = 0; k < c->n_nodes; k++)
            if (strcmp(c->nodes[k].id, s->origin) == 0)
                for (size_t j = 0; j < c->n_presences[k]; j++)
                    if (strcmp(c->presences[k][j].path, s->path) == 0)
                        s->started_ms = c->presences[k][j].started_ms;
        /* A placement under this id that no local publisher backs is stale: drop it. */
        if (strcmp(s->origin, c->self.id) == 0 && !place_find(c, s->path)) {
            release(c, s->path);
            n--;
        }
    }
    prune(c, "streams", sr->paths, gone, sr->n);
    sl_free(gone);
    sl_free(c->streams);
    c->streams = v;
    c->n_streams = n;
    stream_refresh_free(sr);
}

static void on_stream_paths(void *ud, redisReply *r)
{
    cl_t *c = ud;
    stream_refresh_t *sr = sl_calloc(1, sizeof *sr);
    if (!sr || c->stopping || collect(r, STREAMS_MAX, path_valid, &sr->paths, &sr->n)) {
        stream_refresh_free(sr);
        return;
    }
    sr->c = c;
    if (sr->n == 0) {
        on_stream_owners(sr, &(redisReply){.type = REDIS_REPLY_ARRAY});
        return;
    }
    const char **argv = sl_calloc(sr->n + 1, sizeof *argv);
    size_t *lens = sl_calloc(sr->n + 1, sizeof *lens);
    char **keys = sl_calloc(sr->n, sizeof *keys);
    int rc = SL_ENOMEM;
    if (argv && lens && keys) {
        argv[0] = "MGET";
        lens[0] = 4;
        size_t i;
        for (i = 0; i < sr->n; i++) {
            size_t kl = strlen(c->prefix) + 7 + strlen(sr->paths[i]) + 1;
            if (!(keys[i] = sl_malloc(kl)))
                break;
            snprintf(keys[i], kl, "%sstream:%s", c->prefix, sr->paths[i]);
            argv[i + 1] = keys[i];
            lens[i + 1] = strlen(keys[i]);
        }
        if (i == sr->n)
            rc = sl_cluster_redis_cmd(c->redis, on_stream_owners, sr, (int)sr->n + 1, argv, lens);
    }
    for (size_t i = 0; keys && i < sr->n; i++)
        sl_free(keys[i]);
    sl_free(keys);
    sl_free(argv);
    sl_free(lens);
    if (rc)
        stream_refresh_free(sr);
}

static void writes_drop(cl_t *c, size_t i)
{
    sl_free(c->writes[i].key);
    sl_free(c->writes[i].json);
    memmove(&c->writes[i], &c->writes[i + 1], (c->n_writes - i - 1) * sizeof c->writes[0]);
    c->n_writes--;
}

static void writes_free(cl_t *c)
{
    while (c->n_writes)
        writes_drop(c, c->n_writes - 1);
}

/* Remembers a write just sent (its key and value copied; see write_t). */
static void writes_add(cl_t *c, const char *key, const char *json)
{
    c->write_seq++;
    for (size_t i = 0; i < c->n_writes; i++)
        if (strcmp(c->writes[i].key, key) == 0) {
            writes_drop(c, i);
            break;
        }
    if (c->n_writes == WRITES_MAX)
        writes_drop(c, 0);
    write_t *w = &c->writes[c->n_writes];
    w->key = sl_strdup(key);
    w->json = json ? sl_strdup(json) : NULL;
    w->seq = c->write_seq;
    if (!w->key || (json && !w->json)) {
        sl_free(w->key);
        sl_free(w->json);
        return;
    }
    c->n_writes++;
}

/*
 * Applies one remembered write over a settings vector read from Redis
 * (*v of *n, capacity *cap). Returns 0, or SL_ENOMEM (the vector is then
 * unchanged).
 */
static int settings_apply(setting_t **v, size_t *n, size_t *cap, const write_t *w)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i].key, w->key) == 0) {
            if (w->json) {
                char *dup = sl_strdup(w->json);
                if (!dup)
                    return SL_ENOMEM;
                sl_free((*v)[i].json);
                (*v)[i].json = dup;
            } else {
                sl_free((*v)[i].key);
                sl_free((*v)[i].json);
                (*v)[i] = (*v)[--*n];
            }
            return 0;
        }
    if (!w->json || *n >= SETTINGS_MAX)
        return 0;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        setting_t *nv = sl_realloc(*v, nc * sizeof *nv);
        if (!nv)
            return SL_ENOMEM;
        *v = nv;
        *cap = nc;
    }
    char *k = sl_strdup(w->key), *j = sl_strdup(w->json);
    if (!k || !j) {
        sl_free(k);
        sl_free(j);
        return SL_ENOMEM;
    }
    (*v)[*n].key = k;
    (*v)[*n].json = j;
    ++*n;
    return 0;
}

static void on_settings(void *ud, redisReply *r)
{
    settings_req_t *rq = ud;
    cl_t *c = rq->c;
    uint64_t seq = rq->seq;
    sl_free(rq);
    if (!r || c->stopping || r->type != REDIS_REPLY_ARRAY)
        return;
    size_t pairs = r->elements / 2;
    if (pairs > SETTINGS_MAX)
        pairs = SETTINGS_MAX;
    setting_t *v = pairs ? sl_calloc(pairs, sizeof *v) : NULL;
    if (pairs && !v)
        return;
    size_t n = 0;
    for (size_t i = 0; i < pairs; i++) {
        redisReply *k = r->element[2 * i], *j = r->element[2 * i + 1];
        if (k->type != REDIS_REPLY_STRING || j->type != REDIS_REPLY_STRING ||
            k->len >= SETTING_KEY_MAX || j->len > SETTING_JSON_MAX || strlen(k->str) != k->len ||
            strlen(j->str) != j->len)
            continue;
        v[n].key = sl_strdup(k->str);
        v[n].json = sl_strdup(j->str);
        if (!v[n].key || !v[n].json) {
            sl_free(v[n].key);
            sl_free(v[n].json);
            break;
        }
        n++;
    }
    /* This node's writes sent after the HGETALL win; the ones before it are in the reply. */
    size_t cap = pairs;
    for (size_t i = 0; i < c->n_writes;) {
        if (c->writes[i].seq <= seq) {
            writes_drop(c, i);
            continue;
        }
        if (settings_apply(&v, &n, &cap, &c->writes[i])) {
            settings_free(v, n);
            return; /* out of memory: keep the snapshot as it is */
        }
        i++;
    }
    settings_free(c->settings, c->n_settings);
    c->settings = v;
    c->n_settings = n;
}

static void apply_state(cl_t *c, const char *state, const char *by)
{
    if (!state_is_valid(state) || strcmp(c->self.state, state) == 0)
        return;
    SL_LOGI(&g_ctx, "cluster: node %s state %s -> %s (%s)", c->self.id, c->self.state, state, by);
    snprintf(c->self.state, sizeof c->self.state, "%s", state);
    if (c->n_nodes)
        c->nodes[0] = c->self;
    if (sl_cluster_redis_is_up(c->redis))
        write_record(c);
}

static void on_own_state(void *ud, redisReply *r)
{
    cl_t *c = ud;
    if (!r || c->stopping || r->type != REDIS_REPLY_STRING || r->len >= SL_CLUSTER_NAME_MAX)
        return;
    apply_state(c, r->str, "from Redis");
}

static void refresh(cl_t *c)
{
    char set[256], states[256];
    key_of(c, set, sizeof set, "streams", NULL);
    const char *a1[] = {"SMEMBERS", set};
    (void)cmd(c, on_stream_paths, c, 2, a1);
    key_of(c, set, sizeof set, "settings", NULL);
    const char *a2[] = {"HGETALL", set};
    settings_req_t *rq = sl_malloc(sizeof *rq);
    if (rq) {
        rq->c = c;
        rq->seq = c->write_seq;
        if (cmd(c, on_settings, rq, 2, a2))
            sl_free(rq);
    }
    key_of(c, states, sizeof states, "states", NULL);
    const char *a3[] = {"HGET", states, c->self.id};
    (void)cmd(c, on_own_state, c, 3, a3);
    if (!c->refreshing) {
        key_of(c, set, sizeof set, "nodes", NULL);
        const char *a4[] = {"SMEMBERS", set};
        if (cmd(c, on_node_ids, c, 2, a4) == 0)
            c->refreshing = 1;
    }
}

/* Each report interval: the load, the record, the placements, then the snapshot. */
static void on_tick(uv_timer_t *t)
{
    cl_t *c = t->data;
    count_load(c);
    if (c->n_nodes)
        c->nodes[0] = c->self;
    uint64_t now = sl_time_mono_ms();
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &c->places) {
        place_t *p = sl_container_of(it, place_t, link);
        if (!p->live && now - p->since_mono > CLAIM_WAIT_MS) {
            if (p->claimed)
                release(c, p->path);
            place_free(p);
        }
    }
    if (!sl_cluster_redis_is_up(c->redis))
        return;
    write_record(c);
    sl_list_foreach_safe(it, nx, &c->places) {
        place_t *p = sl_container_of(it, place_t, link);
        (void)claim(c, p->path, NULL);
    }
    refresh(c);
}

/* ------------------------------------------------------------------ */
/* Redis link events                                                   */

static void on_up(void *ud)
{
    cl_t *c = ud;
    if (!c->first_up_done) {
        /* A new process starts in service: forget a state a former one was given. */
        char states[256];
        key_of(c, states, sizeof states, "states", NULL);
        const char *argv[] = {"HDEL", states, c->self.id};
        (void)cmd(c, NULL, NULL, 3, argv);
        c->first_up_done = 1;
    } else {
        SL_LOGI(&g_ctx, "cluster: reconciling with Redis: record and %s placements",
                sl_list_empty(&c->places) ? "no" : "local");
    }
    on_tick(&c->tick); /* record, placements, snapshot now */
}

static void on_down(void *ud, const char *why)
{
    cl_t *c = ud;
    (void)why;
    c->refreshing = 0;
}

/* ------------------------------------------------------------------ */
/* the bus                                                             */

static void kick_matching(cl_t *c, const char *app, const char *stream, const char *role,
                          const char *session, const char *why)
{
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &c->core->sessions) {
        sl_session_t *s = sl_container_of(it, sl_session_t, link);
        if (!s->ops || !s->ops->kick)
            continue;
        if (session) {
            if (strcmp(s->id, session) != 0)
                continue;
        } else {
            if (!s->app || strcmp(s->app, app) != 0)
                continue;
            if (stream && (!s->stream || strcmp(s->stream, stream) != 0))
                continue;
            if (role && strcmp(role, "publisher") == 0 && s->role != SL_ROLE_PUBLISHER)
                continue;
            if (role && strcmp(role, "subscriber") == 0 && s->role != SL_ROLE_SUBSCRIBER)
                continue;
        }
        SL_LOGI(&s->log, "cluster: %s", why);
        s->ops->kick(s, why);
    }
}

/* A node said goodbye (it stops): out of the snapshot now, not after its lease. */
static void node_left(cl_t *c, const char *id)
{
    for (size_t i = 1; i < c->n_nodes; i++) {
        if (strcmp(c->nodes[i].id, id) != 0)
            continue;
        sl_cluster_node_t gone = c->nodes[i];
        sl_cluster_presences_free(c->presences[i], c->n_presences[i]);
        size_t last = c->n_nodes - 1;
        c->nodes[i] = c->nodes[last];
        c->presences[i] = c->presences[last];
        c->n_presences[i] = c->n_presences[last];
        c->seen_mono[i] = c->seen_mono[last];
        c->n_nodes--;
        sl_event_t ev = {.type = SL_EV_NODE_DOWN,
                         .session_id = gone.id,
                         .proto = "cluster",
                         .remote_addr = gone.private_host[0] ? gone.private_host : gone.host,
                         .remote_port = gone.http_port,
                         .reason = "left"};
        SL_LOGI(&g_ctx, "cluster: node %s (%s, %s) left", gone.id, gone.role, ev.remote_addr);
        sl_events_emit(c->core, &ev);
        return;
    }
}

/* The built-in topics: kick, unpublish, state, bye. */
static void builtin_topic(cl_t *c, const char *from, const char *topic, const char *json)
{
    if (strcmp(topic, "bye") == 0) {
        if (strcmp(from, c->self.id) != 0)
            node_left(c, from);
        return;
    }
    int is_kick = strcmp(topic, "kick") == 0, is_unpub = strcmp(topic, "unpublish") == 0;
    int is_state = strcmp(topic, "state") == 0;
    if (!is_kick && !is_unpub && !is_state)
        return;
    json_t *o = json_loads(json, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return;
    }
    const char *app = json_string_value(json_object_get(o, "app"));
    const char *stream = json_string_value(json_object_get(o, "stream"));
    if (is_kick) {
        const char *session = json_string_value(json_object_get(o, "session"));
        const char *role = json_string_value(json_object_get(o, "role"));
        if (session || app)
            kick_matching(c, app, stream, role, session, "kicked by the cluster");
    } else if (is_unpub && app && stream) {
        kick_matching(c, app, stream, "publisher", NULL, "unpublished by the cluster");
    } else if (is_state) {
        const char *state = json_string_value(json_object_get(o, "state"));
        char by[SL_CLUSTER_ID_MAX + 16];
        snprintf(by, sizeof by, "from node %s", from);
        if (state)
            apply_state(c, state, by);
    }
    json_decref(o);
}

static void dispatch(cl_t *c, const char *from, const char *topic, const char *json)
{
    builtin_topic(c, from, topic, json);
    for (int i = 0; i < LISTENERS_MAX && !c->stopping; i++) {
        listener_t *l = &c->listeners[i];
        if (l->handle > 0 && (!l->topic || strcmp(l->topic, topic) == 0))
            l->cb(l->ud, from, topic, json);
    }
}

static void on_message(void *ud, const char *data, size_t len)
{
    cl_t *c = ud;
    sl_cluster_msg_t m;
    if (sl_cluster_msg_parse(data, len, &m)) {
        SL_LOGD(&g_ctx, "cluster: ignoring an invalid bus message (%zu bytes)", len);
        return;
    }
    /* Messages to this node alone were delivered locally at send. */
    if (!m.to[0] || (strcmp(m.to, c->self.id) == 0 && strcmp(m.from, c->self.id) != 0))
        dispatch(c, m.from, m.topic, m.json);
    sl_free(m.json);
}

static void on_deliver(uv_timer_t *t)
{
    cl_t *c = t->data;
    local_msg_t *q = c->local_head;
    c->local_head = c->local_tail = NULL;
    c->n_local = 0;
    while (q) {
        local_msg_t *next = q->next;
        if (!c->stopping)
            dispatch(c, c->self.id, q->topic, q->json);
        sl_free(q->topic);
        sl_free(q->json);
        sl_free(q);
        q = next;
    }
}

static int queue_local(cl_t *c, const char *topic, const char *json)
{
    if (c->n_local >= LOCAL_QUEUE_MAX)
        return SL_EBUSY;
    local_msg_t *m = sl_calloc(1, sizeof *m);
    if (!m || !(m->topic = sl_strdup(topic)) || !(m->json = sl_strdup(json ? json : "{}"))) {
        if (m)
            sl_free(m->topic);
        sl_free(m);
        return SL_ENOMEM;
    }
    if (c->local_tail)
        c->local_tail->next = m;
    else
        c->local_head = m;
    c->local_tail = m;
    c->n_local++;
    uv_timer_start(&c->deliver, on_deliver, 0, 0);
    return 0;
}

/* ------------------------------------------------------------------ */
/* the service                                                         */

static const sl_cluster_node_t *svc_self(void *ud)
{
    cl_t *c = ud;
    return &c->self;
}

static int svc_redis_up(void *ud, uint64_t *fresh_ms)
{
    cl_t *c = ud;
    if (fresh_ms)
        *fresh_ms = c->fresh_ms;
    return sl_cluster_redis_is_up(c->redis);
}

static size_t svc_nodes(void *ud, const sl_cluster_node_t **out)
{
    cl_t *c = ud;
    if (c->n_nodes)
        c->nodes[0] = c->self;
    *out = c->nodes;
    return c->n_nodes;
}

static const sl_cluster_node_t *svc_node(void *ud, const char *id)
{
    cl_t *c = ud;
    if (!id)
        return NULL;
    if (strcmp(id, c->self.id) == 0)
        return &c->self;
    for (size_t i = 1; i < c->n_nodes; i++)
        if (strcmp(c->nodes[i].id, id) == 0)
            return &c->nodes[i];
    return NULL;
}

static size_t svc_streams(void *ud, const sl_cluster_stream_t **out)
{
    cl_t *c = ud;
    *out = c->streams;
    return c->n_streams;
}

static const sl_cluster_stream_t *svc_stream(void *ud, const char *path)
{
    cl_t *c = ud;
    for (size_t i = 0; path && i < c->n_streams; i++)
        if (strcmp(c->streams[i].path, path) == 0)
            return &c->streams[i];
    return NULL;
}

static void svc_presences(void *ud, void (*each)(void *arg, const sl_cluster_presence_t *p),
                          void *arg)
{
    cl_t *c = ud;
    for (size_t i = 0; i < c->n_nodes; i++)
        for (size_t j = 0; j < c->n_presences[i]; j++) {
            const sl_cluster_rec_presence_t *rp = &c->presences[i][j];
            sl_cluster_presence_t p = {.node = c->nodes[i].id,
                                       .path = rp->path,
                                       .is_origin = rp->is_origin,
                                       .subscribers = rp->subscribers,
                                       .started_ms = rp->started_ms};
            each(arg, &p);
        }
}

static int svc_send(void *ud, const char *node_id, const char *topic, const char *json)
{
    cl_t *c = ud;
    if (!topic || !topic[0] || strlen(topic) >= SL_CLUSTER_TOPIC_MAX ||
        (json && strlen(json) > SL_CLUSTER_MSG_MAX / 2))
        return SL_EINVAL;
    if (node_id && strcmp(node_id, c->self.id) == 0)
        return queue_local(c, topic, json);
    if (node_id && !sl_cluster_id_is_valid(node_id))
        return SL_EINVAL;
    if (!sl_cluster_redis_is_up(c->redis))
        return SL_EIO;
    char *msg = sl_cluster_msg_write(c->self.id, node_id, topic, json);
    if (!msg)
        return SL_EINVAL;
    const char *argv[] = {"PUBLISH", c->channel, msg};
    int rc = cmd(c, NULL, NULL, 3, argv);
    sl_free(msg);
    return rc;
}

static int svc_set_state(void *ud, const char *node_id, const char *state)
{
    cl_t *c = ud;
    if (!state_is_valid(state) || !node_id)
        return SL_EINVAL;
    int self = strcmp(node_id, c->self.id) == 0;
    if (!self && !svc_node(c, node_id))
        return SL_ENOTFOUND;
    if (!sl_cluster_redis_is_up(c->redis)) {
        if (!self)
            return SL_EIO;
        apply_state(c, state, "set here, Redis down");
        return 0;
    }
    char states[256];
    key_of(c, states, sizeof states, "states", NULL);
    const char *argv[] = {"HSET", states, node_id, state};
    int rc = cmd(c, NULL, NULL, 4, argv);
    if (rc)
        return rc;
    if (self) {
        apply_state(c, state, "set here");
        return 0;
    }
    char json[96];
    snprintf(json, sizeof json, "{\"state\":\"%s\"}", state);
    return svc_send(c, node_id, "state", json);
}

static int svc_listen(void *ud, const char *topic, sl_cluster_msg_cb cb, void *cb_ud)
{
    cl_t *c = ud;
    if (!cb || (topic && strlen(topic) >= SL_CLUSTER_TOPIC_MAX))
        return SL_EINVAL;
    for (int i = 0; i < LISTENERS_MAX; i++) {
        listener_t *l = &c->listeners[i];
        if (l->handle > 0)
            continue;
        char *t = topic ? sl_strdup(topic) : NULL;
        if (topic && !t)
            return SL_ENOMEM;
        *l = (listener_t){.handle = ++c->next_handle, .topic = t, .cb = cb, .ud = cb_ud};
        return l->handle;
    }
    return SL_ETOOBIG;
}

static void svc_unlisten(void *ud, int handle)
{
    cl_t *c = ud;
    for (int i = 0; handle > 0 && i < LISTENERS_MAX; i++)
        if (c->listeners[i].handle == handle) {
            sl_free(c->listeners[i].topic);
            c->listeners[i] = (listener_t){0};
        }
}

static const char *svc_password(void *ud)
{
    cl_t *c = ud;
    return c->cfg->password ? c->cfg->password : "";
}

static const char *svc_setting(void *ud, const char *key)
{
    cl_t *c = ud;
    for (size_t i = 0; key && i < c->n_settings; i++)
        if (strcmp(c->settings[i].key, key) == 0)
            return c->settings[i].json;
    return NULL;
}

static int svc_put_setting(void *ud, const char *key, const char *json)
{
    cl_t *c = ud;
    if (!key || !key[0] || strlen(key) >= SETTING_KEY_MAX ||
        (json && strlen(json) > SETTING_JSON_MAX))
        return SL_EINVAL;
    if (json) {
        json_t *j = json_loads(json, JSON_DECODE_ANY, NULL);
        if (!j)
            return SL_EINVAL;
        json_decref(j);
    }
    if (!sl_cluster_redis_is_up(c->redis))
        return SL_EIO;
    char hash[256];
    key_of(c, hash, sizeof hash, "settings", NULL);
    int rc;
    if (json) {
        const char *argv[] = {"HSET", hash, key, json};
        rc = cmd(c, NULL, NULL, 4, argv);
    } else {
        const char *argv[] = {"HDEL", hash, key};
        rc = cmd(c, NULL, NULL, 3, argv);
    }
    if (rc)
        return rc;
    writes_add(c, key, json);
    /* The snapshot at once, so that a read right after sees the write. */
    for (size_t i = 0; i < c->n_settings; i++)
        if (strcmp(c->settings[i].key, key) == 0) {
            if (json) {
                char *dup = sl_strdup(json);
                if (!dup)
                    return SL_ENOMEM;
                sl_free(c->settings[i].json);
                c->settings[i].json = dup;
            } else {
                sl_free(c->settings[i].key);
                sl_free(c->settings[i].json);
                c->settings[i] = c->settings[--c->n_settings];
            }
            return 0;
        }
    if (!json || c->n_settings >= SETTINGS_MAX)
        return 0;
    setting_t *v = sl_realloc(c->settings, (c->n_settings + 1) * sizeof *v);
    if (!v)
        return SL_ENOMEM;
    c->settings = v;
    v[c->n_settings].key = sl_strdup(key);
    v[c->n_settings].json = sl_strdup(json);
    if (!v[c->n_settings].key || !v[c->n_settings].json) {
        sl_free(v[c->n_settings].key);
        sl_free(v[c->n_settings].json);
        return SL_ENOMEM;
    }
    c->n_settings++;
    return 0;
}

static void svc_settings(void *ud, const char *prefix,
                         void (*each)(void *arg, const char *key, const char *json), void *arg)
{
    cl_t *c = ud;
    size_t pl = prefix ? strlen(prefix) : 0;
    for (size_t i = 0; i < c->n_settings; i++)
        if (!pl || strncmp(c->settings[i].key, prefix, pl) == 0)
            each(arg, c->settings[i].key, c->settings[i].json);
}

/* Placement of a stream published inside this node (see cluster.h: claim). */
static int svc_claim(void *ud, const char *path)
{
    cl_t *c = ud;
    if (!path || !path[0] || strlen(path) >= SL_CLUSTER_PATH_MAX)
        return SL_EINVAL;
    place_t *p = place_find(c, path);
    if (!p) {
        p = sl_calloc(1, sizeof *p);
        if (!p || !(p->path = sl_strdup(path))) {
            sl_free(p);
            return SL_ENOMEM;
        }
        sl_list_push_back(&c->places, &p->link);
    }
    p->live = 1;
    p->since_mono = sl_time_mono_ms();
    p->started_ms = sl_time_wall_ms();
    if (sl_cluster_redis_is_up(c->redis))
        (void)claim(c, path, NULL); /* Redis down: claimed by on_up */
    return 0;
}

static void svc_release(void *ud, const char *path)
{
    cl_t *c = ud;
    place_t *p = path ? place_find(c, path) : NULL;
    if (!p)
        return;
    release(c, path);
    place_free(p);
}

static const sl_svc_cluster_t g_svc = {
    .self = svc_self,
    .redis_up = svc_redis_up,
    .nodes = svc_nodes,
    .node = svc_node,
    .streams = svc_streams,
    .stream = svc_stream,
    .presences = svc_presences,
    .set_state = svc_set_state,
    .send = svc_send,
    .listen = svc_listen,
    .unlisten = svc_unlisten,
    .password = svc_password,
    .setting = svc_setting,
    .put_setting = svc_put_setting,
    .settings = svc_settings,
    .claim = svc_claim,
    .release = svc_release,
};

/* ------------------------------------------------------------------ */
/* admission and events                                                */

static int admit_check(sl_admit_t *a, void *ud)
{
    cl_t *c = ud;
    const sl_admit_req_t *req = sl_admit_request(a);
    if (req->kind != SL_ADMIT_PUBLISH && req->kind != SL_ADMIT_PLAY)
        return SL_EDECLINED;
    if (draining(c)) {
        char why[256];
        snprintf(why, sizeof why, "node %s is draining (%s): no new %s", c->self.id,
                 c->self.state, req->kind == SL_ADMIT_PUBLISH ? "publishers" : "players");
        sl_admit_set_reason(a, why);
        return SL_EDENIED;
    }
    if (req->kind != SL_ADMIT_PUBLISH || !origin_capable(c))
        return SL_EDECLINED;
    char path[SL_CLUSTER_PATH_MAX];
    if (path_of(path, sizeof path, req->app, req->stream))
        return SL_EDECLINED; /* the protocol refuses such names itself */
    place_t *p = place_find(c, path);
    if (!p) {
        p = sl_calloc(1, sizeof *p);
        if (!p || !(p->path = sl_strdup(path))) {
            sl_free(p);
            return SL_EDECLINED;
        }
        sl_list_push_back(&c->places, &p->link);
    }
    if (!p->live)
        p->since_mono = sl_time_mono_ms();
    if (!sl_cluster_redis_is_up(c->redis))
        return SL_OK; /* placed when Redis returns (on_up) */
    sl_admit_ref(a);
    if (claim(c, path, a)) {
        sl_admit_unref(a);
        return SL_OK;
    }
    return SL_EPENDING;
}

static void on_event(const sl_event_t *ev, void *ud)
{
    cl_t *c = ud;
    if (ev->type != SL_EV_PUBLISH && ev->type != SL_EV_UNPUBLISH)
        return;
    char path[SL_CLUSTER_PATH_MAX];
    if (path_of(path, sizeof path, ev->app, ev->stream))
        return;
    place_t *p = place_find(c, path);
    if (!p)
        return;
    if (ev->type == SL_EV_PUBLISH) {
        p->live = 1;
        p->started_ms = sl_time_wall_ms();
        return;
    }
    if (!p->live)
        return; /* a refused second publisher's end: the first is still live */
    if (sl_hub_find(c->core->hub, path) && sl_hub_find(c->core->hub, path)->publisher)
        return;
    release(c, path);
    place_free(p);
}

/* ------------------------------------------------------------------ */
/* the API: /api/v1/cluster                                            */

static json_t *node_json(const cl_t *c, const sl_cluster_node_t *n, size_t idx)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:i, s:i, s:i, s:i}, s:I, s:I, s:b}", "id", n->id,
        "role", n->role, "group", n->group, "region", n->region, "state", n->state, "host",
        n->host, "private_host", n->private_host, "ports", "rtmp", n->rtmp_port, "http",
        n->http_port, "rtsp", n->rtsp_port, "srt", n->srt_port, "started",
        (json_int_t)n->started_ms, "reported", (json_int_t)n->reported_ms, "self",
        strcmp(n->id, c->self.id) == 0);
    if (!o)
        return NULL;
    json_object_set_new(
        o, "load",
        json_pack("{s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I}", "connections",
                  (json_int_t)n->connections, "publishers", (json_int_t)n->publishers,
                  "subscribers", (json_int_t)n->subscribers, "streams", (json_int_t)n->streams,
                  "cpu", n->cpu_load, "mem", n->mem_load, "bytes_in_rate",
                  (json_int_t)n->bytes_in_rate, "bytes_out_rate", (json_int_t)n->bytes_out_rate,
                  "max_connections", (json_int_t)n->max_connections));
    json_t *a = json_array();
    for (size_t j = 0; a && idx < c->n_nodes && j < c->n_presences[idx]; j++) {
        const sl_cluster_rec_presence_t *p = &c->presences[idx][j];
        json_array_append_new(a, json_pack("{s:s, s:b, s:I, s:I}", "path", p->path, "origin",
                                           p->is_origin, "subscribers",
                                           (json_int_t)p->subscribers, "started",
                                           (json_int_t)p->started_ms));
    }
    json_object_set_new(o, "streams", a ? a : json_array());
    return o;
}

static json_t *nodes_json(cl_t *c)
{
    const sl_cluster_node_t *v;
    size_t n = svc_nodes(c, &v);
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, node_json(c, &v[i], i));
    return a;
}

static json_t *streams_json(cl_t *c)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < c->n_streams; i++) {
        const sl_cluster_stream_t *s = &c->streams[i];
        json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:I}", "path", s->path, "origin",
                                           s->origin, "started", (json_int_t)s->started_ms,
                                           "subscribers", (json_int_t)s->subscribers));
    }
    return a;
}

static json_t *cluster_json(cl_t *c)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "enabled", json_true());
    json_object_set_new(o, "node", node_json(c, &c->self, 0));
    json_object_set_new(o, "redis",
                        json_pack("{s:b, s:s, s:I, s:I, s:s}", "up",
                                  sl_cluster_redis_is_up(c->redis), "address",
                                  sl_cluster_redis_addr(c->redis), "fresh",
                                  (json_int_t)c->fresh_ms, "failures",
                                  (json_int_t)sl_cluster_redis_failures(c->redis), "prefix",
                                  c->prefix));
    json_object_set_new(o, "nodes", nodes_json(c));
    json_object_set_new(o, "streams", streams_json(c));
    return o;
}

/* settings() callback of GET /api/v1/cluster/settings: key -> the parsed JSON value. */
static void add_setting_json(void *arg, const char *key, const char *json)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    json_object_set_new((json_t *)arg, key, v ? v : json_string(json));
}

/* The JSON object body of req, or NULL after answering 400/413. */
static json_t *body_object(cl_t *c, sl_http_req_t *req)
{
    size_t len = 0;
    const uint8_t *body = c->http->req_body(req, &len);
    if (len > API_BODY_MAX) {
        c->api->err(req, 413, "Body too large.");
        return NULL;
    }
    json_t *o = len ? json_loadb((const char *)body, len, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        c->api->err(req, 400, "The body must be a JSON object.");
        return NULL;
    }
    return o;
}

static int send_answer(cl_t *c, sl_http_req_t *req, int rc, const char *node, const char *topic)
{
    if (rc == SL_EIO)
        return c->api->err(req, 503, "Redis is unreachable: cluster messages cannot be sent.");
    if (rc)
        return c->api->err(req, 400, "The message could not be sent.");
    return c->api->ok(req, json_pack("{s:s, s:s}", "topic", topic, "node", node ? node : "*"));
}

/* POST /api/v1/cluster/kick and /unpublish: {"node"?, "session"? | "app", "stream", "role"?}. */
static int api_message(cl_t *c, sl_http_req_t *req, const char *topic)
{
    json_t *o = body_object(c, req);
    if (!o)
        return 0;
    const char *node = json_string_value(json_object_get(o, "node"));
    const char *app = json_string_value(json_object_get(o, "app"));
    const char *stream = json_string_value(json_object_get(o, "stream"));
    const char *session = json_string_value(json_object_get(o, "session"));
    int rc;
    if (strcmp(topic, "unpublish") == 0 ? !(app && stream) : !(session || app)) {
        rc = c->api->err(req, 400, strcmp(topic, "unpublish") == 0
                                       ? "unpublish needs app and stream."
                                       : "kick needs session, or app (and stream, role).");
        json_decref(o);
        return rc;
    }
    char path[SL_CLUSTER_PATH_MAX];
    if (!node && app && stream && strcmp(topic, "unpublish") == 0 &&
        !path_of(path, sizeof path, app, stream)) {
        const sl_cluster_stream_t *s = svc_stream(c, path);
        node = s ? s->origin : NULL; /* its origin; unknown: every node */
    }
    json_t *payload = json_object();
    if (session)
        json_object_set_new(payload, "session", json_string(session));
    if (app)
        json_object_set_new(payload, "app", json_string(app));
    if (stream)
        json_object_set_new(payload, "stream", json_string(stream));
    const char *role = json_string_value(json_object_get(o, "role"));
    if (role)
        json_object_set_new(payload, "role", json_string(role));
    char *txt = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    char node_copy[SL_CLUSTER_ID_MAX] = "";
    if (node)
        snprintf(node_copy, sizeof node_copy, "%s", node);
    json_decref(o);
    if (!txt)
        return c->api->err(req, 503, "Out of memory.");
    rc = svc_send(c, node_copy[0] ? node_copy : NULL, topic, txt);
    free(txt);
    return send_answer(c, req, rc, node_copy[0] ? node_copy : NULL, topic);
}

/*
 * A single node (cluster.enabled off) answers the same routes so that a
 * client can ask any node whether it is in a cluster: the overview says
 * enabled: false, the lists are empty, and what needs a cluster is a 404
 * that says so.
 */
static int api_standalone(cl_t *c, sl_http_req_t *req, char **seg, int n, int get)
{
    if (n == 1 && get)
        return c->api->ok(req, json_pack("{s:b, s:[], s:[]}", "enabled", 0, "nodes", "streams"));
    if (n == 2 && get && (strcmp(seg[1], "nodes") == 0 || strcmp(seg[1], "streams") == 0))
        return c->api->ok(req, json_array());
    if (n == 2 && get && strcmp(seg[1], "settings") == 0)
        return c->api->ok(req, json_object());
    return c->api->err(req, 404, "Cluster mode is off on this node (cluster.enabled).");
}

static int api_handler(sl_http_req_t *req, void *ud)
{
    cl_t *c = ud;
    const char *path = c->http->req_path(req);
    const char *method = c->http->req_method(req);
    char buf[512];
    if (strncmp(path, "/api/v1/", 8) != 0 || strlen(path) >= sizeof buf)
        return c->api->err(req, 404, "No such API endpoint.");
    snprintf(buf, sizeof buf, "%s", path + 8);
    char *seg[6];
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == 5)
            return c->api->err(req, 404, "No such cluster endpoint.");
        seg[n++] = t;
    }
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (c->standalone)
        return api_standalone(c, req, seg, n, get);
    if (n == 1 && get)
        return c->api->ok(req, cluster_json(c));
    if (n == 2 && get && strcmp(seg[1], "nodes") == 0)
        return c->api->ok(req, nodes_json(c));
    if (n == 2 && get && strcmp(seg[1], "streams") == 0)
        return c->api->ok(req, streams_json(c));
    if (n == 2 && get && strcmp(seg[1], "settings") == 0) {
        char prefix[SETTING_KEY_MAX] = "";
        if (c->http->req_query_get(req, "prefix", prefix, sizeof prefix) < 0)
            prefix[0] = '\0';
        json_t *o = json_object();
        svc_settings(c, prefix, add_setting_json, o);
        return c->api->ok(req, o);
    }
    if (n == 3 && get && strcmp(seg[1], "nodes") == 0) {
        const sl_cluster_node_t *nd = svc_node(c, seg[2]);
        if (!nd)
            return c->api->err(req, 404, "No such node.");
        size_t idx = nd == &c->self ? 0 : (size_t)(nd - c->nodes);
        return c->api->ok(req, node_json(c, nd, idx));
    }
    if (n == 4 && strcmp(method, "PUT") == 0 && strcmp(seg[1], "nodes") == 0 &&
        strcmp(seg[3], "state") == 0) {
        json_t *o = body_object(c, req);
        if (!o)
            return 0;
        const char *state = json_string_value(json_object_get(o, "state"));
        char st[SL_CLUSTER_NAME_MAX] = "";
        if (state)
            snprintf(st, sizeof st, "%s", state);
        json_decref(o);
        int rc = svc_set_state(c, seg[2], st);
        if (rc == SL_EINVAL)
            return c->api->err(req, 400,
                               "state must be INSERVICE, SOFT_SUNSET, HARD_SUNSET or FAULT.");
        if (rc == SL_ENOTFOUND)
            return c->api->err(req, 404, "No such node.");
        if (rc)
            return c->api->err(req, 503, "Redis is unreachable: the state cannot be sent.");
        return c->api->ok(req, json_pack("{s:s, s:s}", "node", seg[2], "state", st));
    }
    if (n == 2 && strcmp(method, "POST") == 0 &&
        (strcmp(seg[1], "kick") == 0 || strcmp(seg[1], "unpublish") == 0))
        return api_message(c, req, seg[1]);
    return c->api->err(req, 404, "No such cluster endpoint.");
}

/* ------------------------------------------------------------------ */
/* module life                                                         */

static int check(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    const sl_cluster_config_t *cc = sl_cluster_cfg(cfg);
    int problems = 0;
    if (!cc->enabled)
        return 0;
    if (sl_cluster_redis_addrs_check(cc->redis) < 0) {
        sl_config_report(cfg, "cluster.redis", err, ud, "expected host:port[,host:port...]");
        problems++;
    }
    if (cc->sentinel[0] && sl_cluster_redis_addrs_check(cc->sentinel) < 0) {
        sl_config_report(cfg, "cluster.sentinel", err, ud, "expected host:port[,host:port...]");
        problems++;
    }
    if (cc->node_id[0] && !sl_cluster_id_is_valid(cc->node_id)) {
        sl_config_report(cfg, "cluster.node_id", err, ud,
                         "a node id is 1-63 characters of A-Z a-z 0-9 . _ -");
        problems++;
    }
    if (cc->report_interval_ms >= cc->lease_ms) {
        sl_config_report(cfg, "cluster.report_interval", err, ud,
                         "must be shorter than cluster.lease (records would expire between reports)");
        problems++;
    }
    for (const char *p = cc->prefix; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            sl_config_report(cfg, "cluster.prefix", err, ud, "no spaces or control characters");
            problems++;
            break;
        }
    if (cc->redis_cluster) {
        char tagged[80];
        if (cc->sentinel[0]) {
            sl_config_report(cfg, "cluster.redis_cluster", err, ud,
                             "Redis Cluster and Sentinel exclude each other (unset cluster.sentinel)");
            problems++;
        }
        if (cc->redis_db != 0) {
            sl_config_report(cfg, "cluster.redis_db", err, ud,
                             "must be 0 with cluster.redis_cluster (Redis Cluster has only db 0)");
            problems++;
        }
        if (sl_cluster_redis_prefix(cc->prefix, 1, tagged, sizeof tagged)) {
            sl_config_report(cfg, "cluster.prefix", err, ud,
                             "with cluster.redis_cluster: not empty, and a hash tag {...} must not be "
                             "empty (it is wrapped in one when it has none)");
            problems++;
        }
    }
    return problems;
}

static void fill_self(cl_t *c)
{
    const sl_config_t *cfg = c->core->cfg;
    sl_cluster_node_t *n = &c->self;
    if (c->cfg->node_id[0]) {
        snprintf(n->id, sizeof n->id, "%s", c->cfg->node_id);
    } else {
        unsigned char rnd[6] = {0};
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            uint64_t x = sl_time_mono_ms() ^ ((uint64_t)getpid() << 20);
            memcpy(rnd, &x, sizeof rnd);
        }
        snprintf(n->id, sizeof n->id, "node-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
                 rnd[3], rnd[4], rnd[5]);
    }
    snprintf(n->role, sizeof n->role, "%s", sl_cluster_role_names[c->cfg->role]);
    snprintf(n->group, sizeof n->group, "%s", c->cfg->group);
    snprintf(n->region, sizeof n->region, "%s", c->cfg->region);
    snprintf(n->state, sizeof n->state, "INSERVICE");
    const char *host = c->cfg->public_host;
    if (!host[0]) {
        host = sl_config_str(cfg, "rtmp.bind");
        if (!host[0] || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
            host = "127.0.0.1";
    }
    snprintf(n->host, sizeof n->host, "%s", host);
    snprintf(n->private_host, sizeof n->private_host, "%s",
             c->cfg->private_host[0] ? c->cfg->private_host : n->host);
    n->rtmp_port = sl_config_int(cfg, "rtmp.enabled") ? (uint16_t)sl_config_int(cfg, "rtmp.port") : 0;
    n->http_port = sl_config_int(cfg, "http.enabled") ? (uint16_t)sl_config_int(cfg, "http.port") : 0;
    n->rtsp_port = sl_config_int(cfg, "rtsp.enabled") ? (uint16_t)sl_config_int(cfg, "rtsp.port") : 0;
    n->srt_port = sl_config_int(cfg, "srt.enabled") ? (uint16_t)sl_config_int(cfg, "srt.port") : 0;
    n->started_ms = sl_time_wall_ms();
}

static void cl_free(cl_t *c)
{
    snapshot_free_nodes(c);
    sl_free(c->streams);
    settings_free(c->settings, c->n_settings);
    writes_free(c);
    while (!sl_list_empty(&c->places))
        place_free(sl_container_of(c->places.next, place_t, link));
    for (int i = 0; i < LISTENERS_MAX; i++)
        sl_free(c->listeners[i].topic);
    while (c->local_head) {
        local_msg_t *m = c->local_head;
        c->local_head = m->next;
        sl_free(m->topic);
        sl_free(m->json);
        sl_free(m);
    }
}

static const sl_cluster_redis_ops_t g_redis_ops = {
    .on_up = on_up,
    .on_down = on_down,
    .on_message = on_message,
};

/*
 * A single node: no Redis, no service, no admission check or listener;
 * only /api/v1/cluster, which says so (api_standalone).
 */
static int standalone_init(cl_t *c, sl_core_t *core, void **state)
{
    c->core = core;
    c->cfg = sl_cluster_cfg(core->cfg);
    c->standalone = 1;
    sl_list_init(&c->places);
    c->api = sl_service_get(core, SL_SVC_API, SL_SVC_API_MAJOR, 0, &c->api_ud);
    c->http = sl_service_get(core, SL_HTTP_SVC_NAME, SL_HTTP_SVC_MAJOR, 0, &c->http_ud);
    int rc = 0;
    if (c->api && c->http)
        rc = c->api->add_route(c->api_ud, "cluster", api_handler, c);
    if (rc) {
        sl_free(c);
        return rc;
    }
    *state = c;
    return 0;
}

static int cl_init(const sl_host_api_t *hapi, sl_host_t *h, void **state)
{
    (void)hapi;
    sl_core_t *core = sl_host_core(h);
    const sl_cluster_config_t *cc = sl_cluster_cfg(core->cfg);
    *state = NULL;
    cl_t *c = sl_calloc(1, sizeof *c);
    if (!c)
        return SL_ENOMEM;
    if (!cc->enabled)
        return standalone_init(c, core, state);
    c->core = core;
    c->cfg = cc;
    c->admit_id = c->ev_id = -1;
    sl_list_init(&c->places);
    /* Redis Cluster: every key in one slot (one hash tag), so that the claim script's two
     * keys and the snapshot's MGETs never cross slots. */
    if (sl_cluster_redis_prefix(cc->prefix, cc->redis_cluster && !cc->sentinel[0], c->prefix,
                                sizeof c->prefix)) {
        sl_free(c);
        return SL_EINVAL; /* refused by check() first */
    }
    snprintf(c->channel, sizeof c->channel, "%sbus", c->prefix);
    c->n_cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (c->n_cpus < 1)
        c->n_cpus = 1;
    struct sysinfo si;
    if (sysinfo(&si) == 0)
        c->mem_total = (uint64_t)si.totalram * si.mem_unit;
    fill_self(c);
    count_load(c);
    snapshot_self_only(c);
    int rc = SL_ENOMEM;
    c->redis = sl_cluster_redis_new(core->loop, cc, c->channel, &g_redis_ops, c);
    if (!c->redis)
        goto fail;
    if ((rc = sl_service_register(core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR,
                                  SL_SVC_CLUSTER_MINOR, &g_svc, c)))
        goto fail;
    c->registered = 1;
    if ((rc = sl_admit_add_check(core, "cluster", SL_ADMIT_PHASE_REMOTE, admit_check, c)) < 0)
        goto fail;
    c->admit_id = rc;
    if ((rc = sl_events_subscribe(core, "cluster", SL_EV_PHASE_STATE, on_event, c)) < 0)
        goto fail;
    c->ev_id = rc;
    c->api = sl_service_get(core, SL_SVC_API, SL_SVC_API_MAJOR, 0, &c->api_ud);
    c->http = sl_service_get(core, SL_HTTP_SVC_NAME, SL_HTTP_SVC_MAJOR, 0, &c->http_ud);
    if (c->api && c->http && (rc = c->api->add_route(c->api_ud, "cluster", api_handler, c)))
        goto fail;
    uv_timer_init(core->loop, &c->tick);
    uv_timer_init(core->loop, &c->deliver);
    c->tick.data = c->deliver.data = c;
    uv_timer_start(&c->tick, on_tick, (uint64_t)cc->report_interval_ms,
                   (uint64_t)cc->report_interval_ms);
    sl_cluster_redis_start(c->redis);
    SL_LOGI(&g_ctx, "cluster: node %s (role %s, group %s) joining through %s %s (prefix \"%s\")",
            c->self.id, c->self.role, c->self.group,
            cc->sentinel[0] ? "Sentinel" : cc->redis_cluster ? "Redis Cluster seeds" : "Redis",
            cc->sentinel[0] ? cc->sentinel : cc->redis, c->prefix);
    *state = c;
    return 0;
fail:
    if (c->ev_id > 0)
        sl_events_unsubscribe(core, c->ev_id);
    if (c->admit_id > 0)
        sl_admit_remove_check(core, c->admit_id);
    if (c->registered)
        sl_service_unregister(core, SL_SVC_CLUSTER, &g_svc);
    if (c->redis)
        sl_cluster_redis_close(c->redis);
    cl_free(c);
    sl_free(c);
    return rc < 0 ? rc : SL_ENOMEM;
}

static void cl_stop(void *state)
{
    cl_t *c = state;
    if (!c || c->standalone)
        return;
    /* Leave at once rather than after the lease: tell the others, delete the record and
     * the placements. */
    if (sl_cluster_redis_is_up(c->redis)) {
        (void)svc_send(c, NULL, "bye", "{}");
        char key[256], set[256];
        key_of(c, key, sizeof key, "node:", c->self.id);
        key_of(c, set, sizeof set, "nodes", NULL);
        const char *a1[] = {"DEL", key};
        (void)cmd(c, NULL, NULL, 2, a1);
        const char *a2[] = {"SREM", set, c->self.id};
        (void)cmd(c, NULL, NULL, 3, a2);
        sl_list_t *it, *nx;
        sl_list_foreach_safe(it, nx, &c->places) {
            place_t *p = sl_container_of(it, place_t, link);
            release(c, p->path);
        }
    }
    c->stopping = 1;
    sl_events_unsubscribe(c->core, c->ev_id);
    sl_admit_remove_check(c->core, c->admit_id);
    sl_service_unregister(c->core, SL_SVC_CLUSTER, &g_svc);
    uv_timer_stop(&c->tick);
    uv_close((uv_handle_t *)&c->tick, NULL);
    uv_timer_stop(&c->deliver);
    uv_close((uv_handle_t *)&c->deliver, NULL);
    sl_cluster_redis_close(c->redis); /* flushes the goodbye above, bounded */
    c->redis = NULL;
}

static void cl_destroy(void *state)
{
    cl_t *c = state;
    if (!c)
        return;
    cl_free(c);
    sl_free(c);
}

/*
 * Every key of the section takes effect at a restart (the node's identity
 * and the Redis link are taken at start; the slots say so): the running
 * node keeps its settings, which c->cfg still points at.
 */
static int cl_reload(void *state)
{
    (void)state;
    return 0;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "cluster",
    .description = "cluster mode: node registry, stream placement and messages over Redis",
    .init = cl_init,
    .stop = cl_stop,
    .destroy = cl_destroy,
    .reload = cl_reload,
};

const sl_builtin_t sl_cluster_builtin = {
    .plugin = &plugin,
    .config = &sl_cluster_config_section,
    .check = check,
};
