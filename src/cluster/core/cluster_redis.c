/*
 * The link to Redis (see cluster_redis.h). One state machine drives both
 * connections: DOWN (waiting for the retry timer) -> SENTINEL (asking a
 * Sentinel where the master is; skipped without Sentinels) -> CONNECTING
 * (TCP connect, AUTH, SELECT, PING on the command connection; AUTH,
 * SUBSCRIBE on the other) -> UP. Any failure on either connection, found
 * inside a hiredis callback, only marks the link as failing: the retry
 * timer (0 ms) then frees both contexts outside hiredis's call stack
 * (hiredis forbids freeing a context from its own callback) and arms the
 * next attempt after a backoff.
 *
 * hiredis 0.14 has no reply limits and no timeouts of its own. Limits:
 * the reader's object functions are wrapped so that an oversized string or
 * array fails the reader (and the link), and the adapter's poll callback
 * is replaced by one that checks the reader's buffer after each read.
 * Timeouts: a watch timer compares the oldest command still waiting (a
 * ring of send times: Redis answers in order) and the connection attempt
 * with cluster.command_timeout.
 *
 * Redis Cluster (cluster.redis_cluster): the addresses are seeds; both
 * connections go to a seed and the command connection then follows the
 * slot of sluice's hash tag. Each command keeps its formatted bytes until
 * its final reply so that a redirection can send it again. MOVED: the
 * command connection is replaced by one to the named node (AUTH, no
 * SELECT: Redis Cluster has only db 0); the old one is disconnected
 * gracefully, every command still waiting on it comes back MOVED too and
 * is sent again on the new one, in order, and commands the caller sends
 * meanwhile are held until the old connection has drained, so the order
 * of commands is the order of sl_cluster_redis_cmd calls. ASK: one extra
 * connection to the importing node carries ASKING + the command (the
 * Redis Cluster spec's way, rather than retrying until MOVED, which would
 * stall for as long as an operator leaves a slot migrating); it is
 * replaced when another node is named and dropped with the link. A second
 * MOVED on the new connection while the old one still drains, a
 * redirection that does not parse, more than SL_CLUSTER_REDIS_REDIRECTS_MAX
 * redirections of one command, CLUSTERDOWN and TRYAGAIN fail the link:
 * backoff, then the next seed.
 */
#include "cluster/core/cluster_redis.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/backoff.h"
#include "base/log.h"
#include "base/time.h"
#include "sluice/errors.h"

static const sl_log_ctx_t g_ctx = {.proto = "cluster"};

#define WATCH_MS 100
#define RETRY_BASE_MS 100
#define CLOSE_WAIT_MAX_MS 2000 /* longest wait for the goodbye's replies at close */

struct pending;

typedef enum { LINK_DOWN = 0, LINK_SENTINEL, LINK_CONNECTING, LINK_UP } link_state_t;

typedef struct addr {
    char host[256];
    int port;
} addr_t;

struct sl_cluster_redis {
    uv_loop_t *loop;
    const sl_cluster_config_t *cfg;
    const sl_cluster_redis_ops_t *ops;
    void *ud;
    char *channel;                  /* owned */
    addr_t addrs[SL_CLUSTER_REDIS_ADDRS_MAX]; /* redis or sentinel addresses */
    size_t n_addrs;
    int use_sentinel;
    size_t next_addr;               /* rotates on each attempt */
    addr_t master;                  /* where the link is (or was last tried) */
    char master_text[300];
    link_state_t state;
    int failing;                    /* a failure is waiting for the retry timer */
    int closing;                    /* close was called */
    int finished;                   /* ... and the timers are closing */
    uint64_t close_deadline_ms;     /* monotonic: give up flushing at close */
    int cmd_ready, sub_ready;       /* PING answered / SUBSCRIBE confirmed */
    uint64_t phase_start_ms;        /* monotonic: when this attempt began */
    redisAsyncContext *sen, *cmd, *sub;
    int cluster;                    /* cfg->redis_cluster: follow MOVED/ASK */
    redisAsyncContext *old_cmd;     /* cluster: the command connection a MOVED replaced, draining */
    redisAsyncContext *ask;         /* cluster: the connection ASK redirections go on */
    redisAsyncContext *ask_old;     /* cluster: a former ask connection, closing once answered */
    addr_t ask_addr;                /* ... to this node */
    struct pending *held_head, *held_tail; /* cluster: sent while old_cmd drains */
    unsigned long moves;            /* MOVED switches since start (logged) */
    uint64_t ring[SL_CLUSTER_REDIS_INFLIGHT]; /* send times of the commands waiting on cmd */
    size_t ring_head, ring_n;
    sl_backoff_t backoff;
    unsigned long failures;
    uv_timer_t retry, watch;
    int n_open;                     /* handles not closed yet */
};

/* A command's callback and its state, owned by hiredis until the reply. */
typedef struct pending {
    sl_cluster_redis_t *r;
    sl_cluster_redis_cb cb;
    void *ud;
    int on_cmd;                     /* counted in the ring */
    char *fcmd;                     /* cluster: the formatted command (hiredis's malloc), or NULL */
    size_t fcmd_len;
    int redirects;                  /* MOVED/ASK followed so far */
    int user;                       /* sent by sl_cluster_redis_cmd (not the link's own setup) */
    struct pending *next;           /* in the held list */
} pending_t;

/* ------------------------------------------------------------------ */
/* limits on replies                                                   */

static const redisReplyObjectFunctions *g_default_fns; /* hiredis's own (static in hiredis.c) */

static void *lim_string(const redisReadTask *t, char *s, size_t len)
{
    if (len > SL_CLUSTER_REDIS_STR_MAX)
        return NULL; /* the reader fails ("Out of memory"): the link drops */
    return g_default_fns->createString(t, s, len);
}

static void *lim_array(const redisReadTask *t, int elements)
{
    if (elements < 0 || elements > SL_CLUSTER_REDIS_ELEMS_MAX)
        return NULL;
    return g_default_fns->createArray(t, elements);
}

static void *lim_integer(const redisReadTask *t, long long v)
{
    return g_default_fns->createInteger(t, v);
}

static void *lim_nil(const redisReadTask *t) { return g_default_fns->createNil(t); }

static void lim_free(void *reply) { g_default_fns->freeObject(reply); }

static redisReplyObjectFunctions g_lim_fns = {lim_string, lim_array, lim_integer, lim_nil,
                                              lim_free};

/*
 * The adapter's poll callback, with the buffer check: hiredis keeps every
 * byte of a reply until it is complete, so a peer sending an endless bulk
 * string would otherwise grow the buffer without end.
 */
static void fail(sl_cluster_redis_t *r, const char *why);
static void finish_close(sl_cluster_redis_t *r);

static void lim_poll(uv_poll_t *handle, int status, int events)
{
    redisLibuvEvents *p = handle->data;
    if (status != 0) {
        /* A poll error (e.g. the socket is gone): report it as a failure. */
        if (p->context && p->context->data)
            fail(p->context->data, "socket error");
        return;
    }
    if (p->context && (events & UV_READABLE))
        redisAsyncHandleRead(p->context);
    if (p->context && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->context);
    if (p->context && p->context->c.reader && p->context->c.reader->len > SL_CLUSTER_REDIS_BUF_MAX &&
        p->context->data) {
        sl_cluster_redis_t *r = p->context->data;
        if (r->closing)
            finish_close(r); /* outside hiredis's call stack: free now, do not wait */
        else
            fail(r, "reply too large");
    }
}

static void lim_update(redisLibuvEvents *p)
{
    if (p->events)
        uv_poll_start(&p->handle, p->events, lim_poll);
    else
        uv_poll_stop(&p->handle);
}

static void lim_add_read(void *d) { redisLibuvEvents *p = d; p->events |= UV_READABLE; lim_update(p); }
static void lim_del_read(void *d) { redisLibuvEvents *p = d; p->events &= ~UV_READABLE; lim_update(p); }
static void lim_add_write(void *d) { redisLibuvEvents *p = d; p->events |= UV_WRITABLE; lim_update(p); }
static void lim_del_write(void *d) { redisLibuvEvents *p = d; p->events &= ~UV_WRITABLE; lim_update(p); }

/* ------------------------------------------------------------------ */
/* addresses                                                           */

static int parse_addrs(const char *list, addr_t *out, size_t cap, size_t *n)
{
    *n = 0;
    const char *s = list ? list : "";
    while (*s) {
        while (*s == ' ' || *s == ',')
            s++;
        if (!*s)
            break;
        const char *end = s;
        while (*end && *end != ',' && *end != ' ')
            end++;
        const char *colon = NULL;
        for (const char *c = s; c < end; c++)
            if (*c == ':')
                colon = c;
        if (!colon || colon == s || (size_t)(colon - s) >= sizeof out->host || *n >= cap)
            return SL_EINVAL;
        char *num_end = NULL;
        long port = strtol(colon + 1, &num_end, 10);
        if (num_end != end || port < 1 || port > 65535)
            return SL_EINVAL;
        const char *h = s, *h_end = colon;
        if (*h == '[' && h_end[-1] == ']' && h_end - h > 2) { /* [v6 address]:port */
            h++;
            h_end--;
        }
        snprintf(out[*n].host, sizeof out[*n].host, "%.*s", (int)(h_end - h), h);
        out[*n].port = (int)port;
        (*n)++;
        s = end;
    }
    return *n ? 0 : SL_EINVAL;
}

int sl_cluster_redis_addrs_check(const char *list)
{
    addr_t a[SL_CLUSTER_REDIS_ADDRS_MAX];
    size_t n;
    return parse_addrs(list, a, SL_CLUSTER_REDIS_ADDRS_MAX, &n) ? SL_EINVAL : (int)n;
}

/* Reads 1..max_digits decimal digits at s[*i..len); -1 when there are none or too many. */
static long read_num(const char *s, size_t len, size_t *i, int max_digits)
{
    long v = 0;
    int d = 0;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        if (++d > max_digits)
            return -1;
        v = v * 10 + (s[*i] - '0');
        (*i)++;
    }
    return d ? v : -1;
}

static int host_char_ok(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '-' || ch == '_' || ch == ':' || ch == '%';
}

int sl_cluster_redis_parse_redirect(const char *s, size_t len, sl_cluster_redis_redirect_t *out)
{
    memset(out, 0, sizeof *out);
    size_t i;
    if (len >= 6 && memcmp(s, "MOVED ", 6) == 0) {
        i = 6;
    } else if (len >= 4 && memcmp(s, "ASK ", 4) == 0) {
        i = 4;
        out->ask = 1;
    } else {
        return SL_EDECLINED;
    }
    if (len > SL_CLUSTER_REDIS_REDIRECT_MAX)
        return SL_EINVAL;
    long slot = read_num(s, len, &i, 5);
    if (slot < 0 || slot > 16383 || i >= len || s[i] != ' ')
        return SL_EINVAL;
    i++;
    /* host:port, the port after the last ':' (a bare IPv6 host has colons of its own). */
    size_t colon = len;
    for (size_t k = i; k < len; k++) {
        if (s[k] == ':')
            colon = k;
        else if (!host_char_ok((unsigned char)s[k]) && s[k] != '[' && s[k] != ']')
            return SL_EINVAL;
    }
    if (colon == len)
        return SL_EINVAL;
    size_t p = colon + 1;
    long port = read_num(s, len, &p, 5);
    if (port < 1 || port > 65535 || p != len)
        return SL_EINVAL;
    const char *h = s + i;
    size_t h_len = colon - i;
    if (h_len >= 2 && h[0] == '[' && h[h_len - 1] == ']') { /* [v6]:port */
        h++;
        h_len -= 2;
    }
    if (h_len > SL_CLUSTER_REDIS_HOST_MAX)
        return SL_EINVAL;
    for (size_t k = 0; k < h_len; k++)
        if (!host_char_ok((unsigned char)h[k]))
            return SL_EINVAL; /* a stray bracket */
    memcpy(out->host, h, h_len);
    out->host[h_len] = '\0';
    out->slot = (int)slot;
    out->port = (int)port;
    return 0;
}

/* Redis's hash tag rule: the first '{', then the first '}' after it, non-empty between. */
static int has_hash_tag(const char *s)
{
    const char *open = strchr(s, '{');
    if (!open)
        return 0;
    const char *close = strchr(open + 1, '}');
    return close && close > open + 1;
}

int sl_cluster_redis_prefix(const char *prefix, int cluster, char *out, size_t cap)
{
    size_t n = strlen(prefix);
    int w;
    if (!cluster || has_hash_tag(prefix)) {
        w = snprintf(out, cap, "%s", prefix);
    } else {
        if (!n)
            return SL_EINVAL;
        /* "sluice:" -> "{sluice}:"; a lone ":" stays whole in the tag ("{:}"). */
        size_t body = prefix[n - 1] == ':' && n > 1 ? n - 1 : n;
        w = snprintf(out, cap, "{%.*s}%s", (int)body, prefix, prefix + body);
    }
    if (w < 0 || (size_t)w >= cap) {
        if (cap)
            out[0] = '\0';
        return SL_ETOOBIG;
    }
    if (cluster && !has_hash_tag(out)) { /* "}x": the tag would be empty */
        out[0] = '\0';
        return SL_EINVAL;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* contexts                                                            */

static void on_connect(const redisAsyncContext *ac, int status);
static void on_disconnect(const redisAsyncContext *ac, int status);

/* A new context to a:port, attached to the loop with the limits; NULL on failure. */
static redisAsyncContext *ctx_new(sl_cluster_redis_t *r, const addr_t *a)
{
    redisAsyncContext *ac = redisAsyncConnect(a->host, a->port);
    if (!ac)
        return NULL;
    if (ac->err || redisLibuvAttach(ac, r->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    if (!g_default_fns)
        g_default_fns = ac->c.reader->fn;
    ac->c.reader->fn = &g_lim_fns;
    ac->ev.addRead = lim_add_read;
    ac->ev.delRead = lim_del_read;
    ac->ev.addWrite = lim_add_write;
    ac->ev.delWrite = lim_del_write;
    ac->data = r;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

/* Frees a context from outside hiredis: its pending callbacks come with NULL. */
static void ctx_free(redisAsyncContext **slot)
{
    redisAsyncContext *ac = *slot;
    *slot = NULL; /* on_disconnect, called from inside the free, no longer matches it */
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
}

static void forget(sl_cluster_redis_t *r, const redisAsyncContext *ac)
{
    if (r->sen == ac)
        r->sen = NULL;
    if (r->cmd == ac)
        r->cmd = NULL;
    if (r->sub == ac)
        r->sub = NULL;
    if (r->old_cmd == ac)
        r->old_cmd = NULL;
    if (r->ask == ac)
        r->ask = NULL;
    if (r->ask_old == ac)
        r->ask_old = NULL;
}

/*
 * Retires the ASK connection (never called from its own callbacks): it is
 * disconnected gracefully, its commands still get their replies, its end is
 * not a link failure, and the link still frees it if it drops first.
 */
static void ask_retire(sl_cluster_redis_t *r)
{
    if (!r->ask)
        return;
    ctx_free(&r->ask_old); /* at most one retiring: an older one is cut (its callbacks: NULL) */
    r->ask_old = r->ask;
    r->ask = NULL;
    redisAsyncDisconnect(r->ask_old); /* may end it now: on_disconnect forgets it */
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    sl_cluster_redis_t *r = ac->data;
    if (!r || status == REDIS_OK)
        return;
    forget(r, ac); /* hiredis frees a context whose connect failed, without on_disconnect */
    fail(r, "cannot connect");
}


static void flush_held(sl_cluster_redis_t *r);

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    sl_cluster_redis_t *r = ac->data;
    if (!r)
        return;
    int was_sen = ac == r->sen, was_old = ac == r->old_cmd, was_ask_old = ac == r->ask_old;
    forget(r, ac);
    if (r->closing) {
        finish_close(r); /* the last commands were flushed and answered */
        return;
    }
    if (was_old) { /* a MOVED replaced it and it has drained: what waited goes now */
        flush_held(r);
        return;
    }
    if (!was_sen && !was_ask_old) /* the Sentinel connection ends on purpose once it has answered */
        fail(r, "connection lost");
}

/* ------------------------------------------------------------------ */
/* commands                                                            */

static void pending_free(pending_t *p)
{
    if (p->fcmd)
        redisFreeCommand(p->fcmd);
    sl_free(p);
}

/* The final answer of a command (rep may be NULL): out of the ring, to the caller, freed. */
static void pending_done(sl_cluster_redis_t *r, pending_t *p, redisReply *rep)
{
    if (p->on_cmd && r->ring_n) {
        r->ring_head = (r->ring_head + 1) % SL_CLUSTER_REDIS_INFLIGHT;
        r->ring_n--;
    }
    /* Redis Cluster: a seed that answers PING proves little (it may send every command to
     * a master that is dead until its replica takes over); the backoff ends with the first
     * answer to a caller's command that is not an error. */
    if (r->cluster && p->user && rep && rep->type != REDIS_REPLY_ERROR && r->backoff.failures)
        (void)sl_backoff_ok(&r->backoff);
    if (p->cb)
        p->cb(p->ud, rep);
    pending_free(p);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* Sends p's stored bytes on ac; 0 or SL_EIO. */
static int pending_send(redisAsyncContext *ac, pending_t *p)
{
    return redisAsyncFormattedCommand(ac, on_reply, p, p->fcmd, p->fcmd_len) == REDIS_OK ? 0
                                                                                          : SL_EIO;
}

static void flush_held(sl_cluster_redis_t *r)
{
    while (r->held_head) {
        pending_t *p = r->held_head;
        r->held_head = p->next;
        if (!r->held_head)
            r->held_tail = NULL;
        p->next = NULL;
        if (r->failing || !r->cmd || pending_send(r->cmd, p)) {
            fail(r, "cannot send");
            pending_done(r, p, NULL);
        }
    }
}

static int addr_eq(const addr_t *a, const addr_t *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static int starts_with(const redisReply *rep, const char *word)
{
    size_t n = strlen(word);
    return rep->len >= n && memcmp(rep->str, word, n) == 0;
}

static void auth_select(sl_cluster_redis_t *r, redisAsyncContext *ac, int select);

/*
 * MOVED on the command connection: a new one to a, the old one drains
 * (disconnected gracefully: its waiting commands come back MOVED and are
 * sent again on the new one; sl_cluster_redis_cmd holds new commands until
 * it is gone). 0 when the link failed.
 */
static int move_to(sl_cluster_redis_t *r, const addr_t *a, int slot)
{
    redisAsyncContext *nc = ctx_new(r, a);
    if (!nc) {
        fail(r, "cannot connect");
        return 0;
    }
    r->old_cmd = r->cmd;
    r->cmd = nc;
    r->master = *a;
    snprintf(r->master_text, sizeof r->master_text, "%s:%d", a->host, a->port);
    r->moves++;
    SL_LOGI(&g_ctx, "cluster: Redis Cluster slot %d is served by %s: commands follow it", slot,
            r->master_text);
    auth_select(r, nc, 0);
    if (r->ask && addr_eq(&r->ask_addr, a))
        ask_retire(r); /* the migration it served is over */
    redisAsyncDisconnect(r->old_cmd); /* inside its callback: closes once drained */
    return 1;
}

/* ASK: ASKING + the command on the connection to the importing node a. 0 when the link failed. */
static int ask_send(sl_cluster_redis_t *r, const addr_t *a, pending_t *p, int slot)
{
    if (r->ask && !addr_eq(&r->ask_addr, a)) {
        /* One slot migrates to one node at a time: another name means the operator changed
         * course; start over from a seed rather than keep two half-known routes. */
        fail(r, "ASK names another node");
        return 0;
    }
    if (!r->ask) {
        if (!(r->ask = ctx_new(r, a))) {
            fail(r, "cannot connect");
            return 0;
        }
        r->ask_addr = *a;
        auth_select(r, r->ask, 0);
        SL_LOGI(&g_ctx, "cluster: Redis Cluster slot %d is migrating to %s:%d: ASK followed", slot,
                a->host, a->port);
    }
    if (redisAsyncCommand(r->ask, NULL, NULL, "ASKING") != REDIS_OK || pending_send(r->ask, p)) {
        fail(r, "cannot send");
        return 0;
    }
    return 1;
}

/*
 * Redis Cluster's error replies: MOVED and ASK send p again (1: p waits
 * for its next reply); CLUSTERDOWN, TRYAGAIN, a malformed redirection or
 * too many redirections fail the link (0: the reply goes to the caller).
 */
static int redirect(sl_cluster_redis_t *r, redisAsyncContext *ac, pending_t *p,
                    const redisReply *rep)
{
    if (r->closing || r->failing || !rep->str)
        return 0;
    sl_cluster_redis_redirect_t to;
    int rc = sl_cluster_redis_parse_redirect(rep->str, rep->len, &to);
    if (rc == SL_EDECLINED) {
        if (starts_with(rep, "CLUSTERDOWN") || starts_with(rep, "TRYAGAIN"))
            fail(r, "the Redis Cluster is failing over or migrating (CLUSTERDOWN, TRYAGAIN)");
        return 0;
    }
    if (rc < 0) {
        fail(r, "malformed MOVED/ASK");
        return 0;
    }
    if (++p->redirects > SL_CLUSTER_REDIS_REDIRECTS_MAX) {
        fail(r, "redirection loop (MOVED/ASK)");
        return 0;
    }
    addr_t a;
    const char *self = ac->c.tcp.host ? ac->c.tcp.host : "";
    snprintf(a.host, sizeof a.host, "%s", to.host[0] ? to.host : self); /* "" = who answered */
    a.port = to.port;
    if (!a.host[0]) {
        fail(r, "malformed MOVED/ASK");
        return 0;
    }
    if (to.ask)
        return ask_send(r, &a, p, to.slot);
    if (ac == r->cmd) {
        if (r->old_cmd) {
            fail(r, "slot moved twice at once");
            return 0;
        }
        if (!move_to(r, &a, to.slot))
            return 0;
    } else if (!addr_eq(&a, &r->master)) {
        fail(r, "slot moved twice at once"); /* from the draining or the ASK connection */
        return 0;
    }
    if (pending_send(r->cmd, p)) {
        fail(r, "cannot send");
        return 0;
    }
    return 1;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    pending_t *p = privdata;
    sl_cluster_redis_t *r = p->r;
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_ERROR && p->fcmd && redirect(r, ac, p, rep))
        return; /* sent again: the caller hears from the next reply */
    if (rep && rep->type == REDIS_REPLY_ERROR && rep->str && strncmp(rep->str, "READONLY", 8) == 0)
        fail(r, "the server is a replica now"); /* a failover: ask the Sentinels again */
    pending_done(r, p, rep);
}

/*
 * Sends a command on ac, or (ac NULL, cluster mode) holds it until the
 * drained command connection is gone. In cluster mode the formatted bytes
 * stay with the command for a redirection.
 */
static int send_on(sl_cluster_redis_t *r, redisAsyncContext *ac, int user, sl_cluster_redis_cb cb,
                   void *ud, int argc, const char **argv, const size_t *argvlen)
{
    int on_cmd = !ac || ac == r->cmd;
    if (on_cmd && r->ring_n >= SL_CLUSTER_REDIS_INFLIGHT)
        return SL_EBUSY;
    pending_t *p = sl_malloc(sizeof *p);
    if (!p)
        return SL_ENOMEM;
    *p = (pending_t){.r = r, .cb = cb, .ud = ud, .on_cmd = on_cmd, .user = user};
    if (r->cluster) {
        char *f = NULL;
        int n = redisFormatCommandArgv(&f, argc, argv, argvlen);
        if (n < 0 || !f) {
            sl_free(p);
            return SL_ENOMEM;
        }
        p->fcmd = f;
        p->fcmd_len = (size_t)n;
    }
    if (!ac) {
        if (r->held_tail)
            r->held_tail->next = p;
        else
            r->held_head = p;
        r->held_tail = p;
    } else if (p->fcmd ? pending_send(ac, p)
                       : redisAsyncCommandArgv(ac, on_reply, p, argc, argv, argvlen) != REDIS_OK) {
        pending_free(p);
        return SL_EIO;
    }
    if (on_cmd) {
        r->ring[(r->ring_head + r->ring_n) % SL_CLUSTER_REDIS_INFLIGHT] = sl_time_mono_ms();
        r->ring_n++;
    }
    return 0;
}

int sl_cluster_redis_cmd(sl_cluster_redis_t *r, sl_cluster_redis_cb cb, void *ud, int argc,
                         const char **argv, const size_t *argvlen)
{
    if (r->state != LINK_UP || r->failing || !r->cmd)
        return SL_EIO;
    return send_on(r, r->old_cmd ? NULL : r->cmd, 1, cb, ud, argc, argv, argvlen);
}

/* ------------------------------------------------------------------ */
/* the state machine                                                   */

static void went_up(sl_cluster_redis_t *r)
{
    if (r->state != LINK_CONNECTING || !r->cmd_ready || !r->sub_ready || r->failing)
        return;
    r->state = LINK_UP;
    uint32_t failed = r->cluster ? r->backoff.failures : sl_backoff_ok(&r->backoff);
    SL_LOGI(&g_ctx, "cluster: Redis %s up%s", r->master_text, failed ? " again" : "");
    r->ops->on_up(r->ud);
}

/* AUTH and SELECT: an error answer (wrong password, bad db) fails the link. */
static void on_setup_reply(void *ud, redisReply *rep)
{
    sl_cluster_redis_t *r = ud;
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        SL_LOGW(&g_ctx, "cluster: Redis %s refused the connection setup (AUTH or SELECT)",
                r->master_text);
        fail(r, "AUTH or SELECT refused");
    }
}

static void on_ping(void *ud, redisReply *rep)
{
    sl_cluster_redis_t *r = ud;
    if (!rep)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        fail(r, "PING refused");
        return;
    }
    r->cmd_ready = 1;
    went_up(r);
}

/* The SUBSCRIBE callback: the confirmation, then every message of the channel. */
static void on_sub(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    sl_cluster_redis_t *r = privdata;
    redisReply *rep = reply;
    if (!rep || r->closing)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        fail(r, "SUBSCRIBE refused");
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 || !rep->element[0]->str)
        return;
    if (strcmp(rep->element[0]->str, "subscribe") == 0) {
        r->sub_ready = 1;
        went_up(r);
    } else if (strcmp(rep->element[0]->str, "message") == 0 &&
               rep->element[2]->type == REDIS_REPLY_STRING && r->state == LINK_UP) {
        r->ops->on_message(r->ud, rep->element[2]->str, rep->element[2]->len);
    }
}

static void auth_select(sl_cluster_redis_t *r, redisAsyncContext *ac, int select)
{
    const char *pw = r->cfg->redis_password;
    const char *user = r->cfg->redis_username;
    if (pw && pw[0] && user && user[0]) {
        /* Redis 6 ACL: AUTH <username> <password>. */
        const char *argv[] = {"AUTH", user, pw};
        size_t lens[] = {4, strlen(user), strlen(pw)};
        (void)send_on(r, ac, 0, on_setup_reply, r, 3, argv, lens);
    } else if (pw && pw[0]) {
        const char *argv[] = {"AUTH", pw};
        size_t lens[] = {4, strlen(pw)};
        (void)send_on(r, ac, 0, on_setup_reply, r, 2, argv, lens);
    }
    if (select && r->cfg->redis_db) {
        char db[24];
        snprintf(db, sizeof db, "%lld", (long long)r->cfg->redis_db);
        const char *argv[] = {"SELECT", db};
        size_t lens[] = {6, strlen(db)};
        (void)send_on(r, ac, 0, on_setup_reply, r, 2, argv, lens);
    }
}

static void connect_master(sl_cluster_redis_t *r)
{
    snprintf(r->master_text, sizeof r->master_text, "%s:%d", r->master.host, r->master.port);
    r->state = LINK_CONNECTING;
    r->phase_start_ms = sl_time_mono_ms();
    r->cmd_ready = r->sub_ready = 0;
    r->cmd = ctx_new(r, &r->master);
    r->sub = r->cmd ? ctx_new(r, &r->master) : NULL;
    if (!r->cmd || !r->sub) {
        fail(r, "cannot connect");
        return;
    }
    auth_select(r, r->cmd, 1);
    const char *ping[] = {"PING"};
    size_t ping_len[] = {4};
    if (send_on(r, r->cmd, 0, on_ping, r, 1, ping, ping_len)) {
        fail(r, "cannot send");
        return;
    }
    auth_select(r, r->sub, 0);
    if (redisAsyncCommand(r->sub, on_sub, r, "SUBSCRIBE %s", r->channel) != REDIS_OK)
        fail(r, "cannot send");
}

/* The Sentinel's answer to SENTINEL get-master-addr-by-name: [host, port] or nil. */
static void on_sentinel(void *ud, redisReply *rep)
{
    sl_cluster_redis_t *r = ud;
    if (!rep || r->state != LINK_SENTINEL || r->failing)
        return;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_STRING ||
        rep->element[0]->len == 0 || rep->element[0]->len >= sizeof r->master.host) {
        SL_LOGW(&g_ctx, "cluster: Sentinel %s knows no master named %s", r->master_text,
                r->cfg->sentinel_master);
        fail(r, "no master from the Sentinel");
        return;
    }
    long port = strtol(rep->element[1]->str, NULL, 10);
    if (port < 1 || port > 65535) {
        fail(r, "bad master port from the Sentinel");
        return;
    }
    memcpy(r->master.host, rep->element[0]->str, rep->element[0]->len);
    r->master.host[rep->element[0]->len] = '\0';
    r->master.port = (int)port;
    if (r->sen)
        redisAsyncDisconnect(r->sen); /* inside its callback: hiredis closes it afterwards */
    connect_master(r);
}

static void attempt(sl_cluster_redis_t *r)
{
    const addr_t *a = &r->addrs[r->next_addr++ % r->n_addrs];
    r->phase_start_ms = sl_time_mono_ms();
    if (!r->use_sentinel) {
        r->master = *a;
        connect_master(r);
        return;
    }
    snprintf(r->master_text, sizeof r->master_text, "%s:%d", a->host, a->port);
    r->state = LINK_SENTINEL;
    r->sen = ctx_new(r, a);
    if (!r->sen) {
        fail(r, "cannot connect to the Sentinel");
        return;
    }
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", r->cfg->sentinel_master};
    size_t lens[] = {8, 23, strlen(r->cfg->sentinel_master)};
    if (send_on(r, r->sen, 0, on_sentinel, r, 3, argv, lens))
        fail(r, "cannot send");
}

/* Commands held for a drained connection: their callbacks come with NULL. */
static void drop_held(sl_cluster_redis_t *r)
{
    while (r->held_head) {
        pending_t *p = r->held_head;
        r->held_head = p->next;
        if (!r->held_head)
            r->held_tail = NULL;
        pending_done(r, p, NULL);
    }
}

/* Frees every context (pending callbacks come with NULL) and resets the state. */
static void drop_all(sl_cluster_redis_t *r)
{
    r->state = LINK_DOWN;
    ctx_free(&r->sen);
    ctx_free(&r->cmd);
    ctx_free(&r->sub);
    ctx_free(&r->old_cmd);
    ctx_free(&r->ask);
    ctx_free(&r->ask_old);
    drop_held(r);
    r->ring_n = r->ring_head = 0;
    r->cmd_ready = r->sub_ready = 0;
}

static void on_retry(uv_timer_t *t)
{
    sl_cluster_redis_t *r = t->data;
    if (r->closing)
        return;
    if (r->failing) {
        r->failing = 0;
        drop_all(r);
        uint64_t wait = sl_backoff_fail(&r->backoff, RETRY_BASE_MS, (uint64_t)r->cfg->reconnect_max_ms);
        uv_timer_start(&r->retry, on_retry, wait, 0);
        return;
    }
    if (r->state == LINK_DOWN)
        attempt(r);
}

/*
 * Marks the link as failing: may run inside a hiredis callback, so it only
 * flags and lets the retry timer free the contexts.
 */
static void fail(sl_cluster_redis_t *r, const char *why)
{
    if (r->failing || r->closing)
        return;
    int was_up = r->state == LINK_UP;
    r->failing = 1;
    r->failures++;
    if (was_up)
        SL_LOGW(&g_ctx, "cluster: Redis %s lost: %s", r->master_text, why);
    else if (r->backoff.failures < 3 || r->backoff.failures % 30 == 0)
        SL_LOGI(&g_ctx, "cluster: Redis %s: %s", r->master_text[0] ? r->master_text : "-", why);
    r->state = LINK_DOWN;
    uv_timer_start(&r->retry, on_retry, 0, 0);
    r->ops->on_down(r->ud, why);
}

static void on_watch(uv_timer_t *t)
{
    sl_cluster_redis_t *r = t->data;
    if (r->closing) {
        if (sl_time_mono_ms() > r->close_deadline_ms)
            finish_close(r); /* Redis does not answer: drop what is left */
        return;
    }
    if (r->failing)
        return;
    uint64_t now = sl_time_mono_ms(), limit = (uint64_t)r->cfg->command_timeout_ms;
    if ((r->state == LINK_SENTINEL || r->state == LINK_CONNECTING) && now - r->phase_start_ms > limit)
        fail(r, "timed out connecting");
    else if (r->state == LINK_UP && r->ring_n && now - r->ring[r->ring_head] > limit)
        fail(r, "command timed out");
}

/* ------------------------------------------------------------------ */
/* life                                                                */

sl_cluster_redis_t *sl_cluster_redis_new(uv_loop_t *loop, const sl_cluster_config_t *cfg,
                                         const char *channel, const sl_cluster_redis_ops_t *ops,
                                         void *ud)
{
    sl_cluster_redis_t *r = sl_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->loop = loop;
    r->cfg = cfg;
    r->ops = ops;
    r->ud = ud;
    r->channel = sl_strdup(channel);
    r->use_sentinel = cfg->sentinel && cfg->sentinel[0];
    r->cluster = cfg->redis_cluster && !r->use_sentinel;
    if (!r->channel || parse_addrs(r->use_sentinel ? cfg->sentinel : cfg->redis, r->addrs,
                                   SL_CLUSTER_REDIS_ADDRS_MAX, &r->n_addrs)) {
        sl_free(r->channel);
        sl_free(r);
        return NULL;
    }
    sl_backoff_init(&r->backoff, sl_time_mono_ms() ^ (uint64_t)(uintptr_t)r);
    uv_timer_init(loop, &r->retry);
    uv_timer_init(loop, &r->watch);
    r->retry.data = r->watch.data = r;
    r->n_open = 2;
    return r;
}

void sl_cluster_redis_start(sl_cluster_redis_t *r)
{
    uv_timer_start(&r->watch, on_watch, WATCH_MS, WATCH_MS);
    uv_timer_start(&r->retry, on_retry, 0, 0);
}

int sl_cluster_redis_is_up(const sl_cluster_redis_t *r)
{
    return r && r->state == LINK_UP && !r->failing;
}

const char *sl_cluster_redis_addr(const sl_cluster_redis_t *r) { return r->master_text; }

unsigned long sl_cluster_redis_failures(const sl_cluster_redis_t *r) { return r->failures; }

static void on_closed(uv_handle_t *h)
{
    sl_cluster_redis_t *r = h->data;
    if (--r->n_open == 0) {
        sl_free(r->channel);
        sl_free(r);
    }
}

static void finish_close(sl_cluster_redis_t *r)
{
    if (r->finished)
        return;
    r->finished = 1;
    drop_all(r);
    uv_timer_stop(&r->retry);
    uv_timer_stop(&r->watch);
    uv_close((uv_handle_t *)&r->retry, on_closed);
    uv_close((uv_handle_t *)&r->watch, on_closed);
}

/*
 * Commands sent just before close (the node's goodbye: its record and
 * placements deleted) are still in hiredis's output buffer: when the link
 * is up, the command connection is disconnected gracefully (hiredis writes
 * them, waits for their replies, then closes), bounded by command_timeout
 * and at most CLOSE_WAIT_MAX_MS.
 */
void sl_cluster_redis_close(sl_cluster_redis_t *r)
{
    if (!r || r->closing)
        return;
    r->closing = 1;
    int up = r->state == LINK_UP && !r->failing && r->cmd;
    ctx_free(&r->sen);
    ctx_free(&r->sub);
    ctx_free(&r->old_cmd); /* a MOVED was being followed: what it and the held list carry is lost */
    ctx_free(&r->ask);
    ctx_free(&r->ask_old);
    drop_held(r);
    uv_timer_stop(&r->retry);
    if (up) {
        /* The goodbye takes milliseconds; a Redis that does not answer does not hold the
         * shutdown for long. */
        uint64_t wait = (uint64_t)r->cfg->command_timeout_ms;
        r->close_deadline_ms = sl_time_mono_ms() + (wait < CLOSE_WAIT_MAX_MS ? wait : CLOSE_WAIT_MAX_MS);
        redisAsyncDisconnect(r->cmd); /* may call on_disconnect (and finish_close) at once */
        return;
    }
    finish_close(r);
}
