/*
 * The cluster core's link to Redis: two hiredis async connections on the
 * libuv loop (commands, and pub/sub on one channel), found directly from a
 * list of addresses or through Redis Sentinel, with AUTH and SELECT; lost
 * and re-established with capped, jittered backoff (base/backoff.h).
 *
 * Every exchange is bounded: a command (or a connection attempt) without
 * an answer within cluster.command_timeout drops the link; a reply string
 * longer than SL_CLUSTER_REDIS_STR_MAX, an array of more than
 * SL_CLUSTER_REDIS_ELEMS_MAX elements, or more than
 * SL_CLUSTER_REDIS_BUF_MAX bytes buffered for one reply drops it too
 * (hiredis 0.14 has no limits of its own); at most
 * SL_CLUSTER_REDIS_INFLIGHT commands wait for replies.
 *
 * With cluster.redis_cluster the addresses are Redis Cluster seed nodes:
 * every key sluice writes carries one hash tag (sl_cluster_redis_prefix),
 * so all of them live in one slot and the command connection follows that
 * slot. A MOVED reply moves the command connection to the named node and
 * sends the command again there (commands sent meanwhile wait, so the
 * order is kept); an ASK reply (the slot is migrating) sends ASKING and
 * the command on one extra connection to the importing node; each command
 * is redirected at most SL_CLUSTER_REDIS_REDIRECTS_MAX times (more is a
 * loop: the link drops and reconnects with backoff). CLUSTERDOWN and
 * TRYAGAIN (a failover or a migration half done) drop the link too: the
 * backoff, then a seed, then MOVED find the slot's new master. The pub/sub
 * connection stays on the seed it reached (classic pub/sub is cluster-wide).
 *
 * Loop thread only. Callbacks never run inside sl_cluster_redis_cmd.
 */
#ifndef SL_CLUSTER_CORE_CLUSTER_REDIS_H
#define SL_CLUSTER_CORE_CLUSTER_REDIS_H

#include <stddef.h>
#include <uv.h>

#include "cluster/core/cluster_config.h"

struct redisReply;

#define SL_CLUSTER_REDIS_STR_MAX (1024 * 1024)        /* bytes of one reply string */
#define SL_CLUSTER_REDIS_ELEMS_MAX 65536              /* elements of one reply array */
#define SL_CLUSTER_REDIS_BUF_MAX (32 * 1024 * 1024)   /* bytes buffered for one reply */
#define SL_CLUSTER_REDIS_INFLIGHT 4096                /* commands waiting for replies */
#define SL_CLUSTER_REDIS_ADDRS_MAX 16                 /* addresses in cluster.redis/sentinel */
#define SL_CLUSTER_REDIS_REDIRECTS_MAX 3              /* MOVED/ASK followed for one command */
#define SL_CLUSTER_REDIS_REDIRECT_MAX 320             /* bytes of a MOVED/ASK error text */
#define SL_CLUSTER_REDIS_HOST_MAX 255                 /* bytes of a host name in a redirection */

/* A MOVED or ASK redirection, parsed. */
typedef struct sl_cluster_redis_redirect {
    int ask;                                  /* 1: ASK (one command), 0: MOVED (for good) */
    int slot;                                 /* 0..16383 */
    char host[SL_CLUSTER_REDIS_HOST_MAX + 1]; /* "" = the node that answered (Redis 7's
                                                 unknown endpoint, "MOVED 1 :6380") */
    int port;                                 /* 1..65535 */
} sl_cluster_redis_redirect_t;

typedef struct sl_cluster_redis sl_cluster_redis_t;

/* A command's reply: r is borrowed for the call; NULL when the link was lost first. */
typedef void (*sl_cluster_redis_cb)(void *ud, struct redisReply *r);

typedef struct sl_cluster_redis_ops {
    /** Both connections are up (authenticated, subscribed): write state again. */
    void (*on_up)(void *ud);
    /** The link was lost (why: static text, no secret). Once per loss. */
    void (*on_down)(void *ud, const char *why);
    /** A message on the channel (data borrowed for the call, len bytes, not NUL-terminated). */
    void (*on_message)(void *ud, const char *data, size_t len);
} sl_cluster_redis_ops_t;

/**
 * Checks an address list ("host:port,host:port"): returns the number of
 * addresses (1..SL_CLUSTER_REDIS_ADDRS_MAX) or SL_EINVAL. Used by the
 * configuration check.
 */
int sl_cluster_redis_addrs_check(const char *list);

/**
 * Parses the text of an error reply (s, len bytes, not NUL-terminated, no
 * leading '-') as "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>"
 * (an IPv6 host may come bare, "::1:6380", or in brackets). Returns 0 with
 * *out filled, SL_EDECLINED when the text is another error (out untouched
 * but for zeroing), SL_EINVAL when it starts like a redirection but is
 * malformed: over SL_CLUSTER_REDIS_REDIRECT_MAX bytes, a host over
 * SL_CLUSTER_REDIS_HOST_MAX bytes or with spaces or control bytes, a slot
 * outside 0..16383, a port outside 1..65535. Reads only s[0..len).
 */
int sl_cluster_redis_parse_redirect(const char *s, size_t len, sl_cluster_redis_redirect_t *out);

/**
 * The key prefix sluice uses: prefix itself, or in cluster mode (cluster
 * != 0) one that holds a Redis Cluster hash tag so that every key hashes
 * to one slot: kept when it already holds a non-empty "{...}" (Redis's
 * rule: the first '{' and the first '}' after it), else "sluice:" becomes
 * "{sluice}:" and "abc" "{abc}". Writes at most cap bytes with the NUL;
 * returns 0, SL_EINVAL (cluster mode and an empty prefix) or SL_ETOOBIG.
 */
int sl_cluster_redis_prefix(const char *prefix, int cluster, char *out, size_t cap);

/**
 * Creates the link (not started). cfg and ops are borrowed for the link's
 * life; channel is copied. NULL on ENOMEM.
 */
sl_cluster_redis_t *sl_cluster_redis_new(uv_loop_t *loop, const sl_cluster_config_t *cfg,
                                         const char *channel, const sl_cluster_redis_ops_t *ops,
                                         void *ud);
/** Starts connecting (and reconnecting for ever, until close). */
void sl_cluster_redis_start(sl_cluster_redis_t *r);
/** 1 while both connections are up. */
int sl_cluster_redis_is_up(const sl_cluster_redis_t *r);
/** "host:port" of the Redis in use or last tried ("" before the first attempt). Borrowed. */
const char *sl_cluster_redis_addr(const sl_cluster_redis_t *r);
/** Connection attempts that failed, and links lost, since start. */
unsigned long sl_cluster_redis_failures(const sl_cluster_redis_t *r);

/**
 * Sends a command (argv/argvlen borrowed; copied now). cb (may be NULL)
 * comes exactly once, later: with the reply, or with NULL when the link is
 * lost or closed before it. Returns 0, SL_EIO (link down: cb not called),
 * SL_EBUSY (SL_CLUSTER_REDIS_INFLIGHT commands waiting) or SL_ENOMEM.
 */
int sl_cluster_redis_cmd(sl_cluster_redis_t *r, sl_cluster_redis_cb cb, void *ud, int argc,
                         const char **argv, const size_t *argvlen);

/**
 * Closes the link: pending callbacks come now with NULL; the struct is
 * freed once its handles have closed (the loop must run).
 */
void sl_cluster_redis_close(sl_cluster_redis_t *r);

#endif
