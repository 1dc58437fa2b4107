/*
 * The cluster's wire formats, as they sit in Redis and travel over its
 * pub/sub: a node's record (what it is, where it is reached, its last load
 * report and the streams it serves, one JSON object under
 * {prefix}node:{id}) and a bus message ({"from", "to", "topic", "json"} on
 * {prefix}bus). Both come from the network (any process that can write to
 * Redis writes them), so the parsers take a hard size cap, check every
 * field's type, length and range, and never trust a count. Pure functions,
 * no I/O: unit-tested and fuzzed (tests/fuzz/cluster_record_fuzz.c).
 */
#ifndef SL_CLUSTER_CORE_CLUSTER_RECORD_H
#define SL_CLUSTER_CORE_CLUSTER_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "app/svc/cluster.h"

#define SL_CLUSTER_RECORD_MAX (256 * 1024) /* bytes of one node record */
#define SL_CLUSTER_PRESENCES_MAX 2048      /* streams one record lists (more are left out) */
#define SL_CLUSTER_MSG_MAX (64 * 1024)     /* bytes of one bus message */
#define SL_CLUSTER_TOPIC_MAX 64            /* a topic's bytes with the NUL */

/* One stream a node serves, as its record lists it. */
typedef struct sl_cluster_rec_presence {
    char *path;             /* "app/stream", owned */
    int is_origin;          /* the publisher is on that node */
    uint32_t subscribers;   /* players of it there */
    uint64_t started_ms;    /* wall clock, publish start (origin) or first player */
} sl_cluster_rec_presence_t;

/* A parsed bus message. */
typedef struct sl_cluster_msg {
    char from[SL_CLUSTER_ID_MAX];    /* sender's node id */
    char to[SL_CLUSTER_ID_MAX];      /* addressee's node id, "" = every node */
    char topic[SL_CLUSTER_TOPIC_MAX];
    char *json;                      /* the payload, a JSON text (owned: sl_free) */
} sl_cluster_msg_t;

/**
 * 1 when id is a valid node id: 1..SL_CLUSTER_ID_MAX-1 bytes of
 * [A-Za-z0-9._-]. Ids become Redis key parts and log words, hence the
 * narrow alphabet.
 */
int sl_cluster_id_is_valid(const char *id);

/**
 * Serialises node n and its presences (p[0..n_p), borrowed) as one JSON
 * object. Returns an sl_malloc'd NUL-terminated text (the caller
 * sl_frees it), or NULL on ENOMEM.
 */
char *sl_cluster_record_write(const sl_cluster_node_t *n, const sl_cluster_rec_presence_t *p,
                              size_t n_p);

/**
 * Parses a record of len bytes (no NUL needed). Fills *out and, when p is
 * not NULL, sets *p to an sl_malloc'd array of *n_p presences (free with
 * sl_cluster_presences_free; NULL when none). Presences beyond
 * SL_CLUSTER_PRESENCES_MAX, or with an unsafe path, are skipped. Returns
 * 0, SL_ETOOBIG (len > SL_CLUSTER_RECORD_MAX), SL_EINVAL (not a record:
 * bad JSON, a field of the wrong type, out of range or too long, an
 * invalid id) or SL_ENOMEM; on error nothing is allocated.
 */
int sl_cluster_record_parse(const char *txt, size_t len, sl_cluster_node_t *out,
                            sl_cluster_rec_presence_t **p, size_t *n_p);

/** Frees an array of presences from sl_cluster_record_parse (NULL is fine). */
void sl_cluster_presences_free(sl_cluster_rec_presence_t *p, size_t n_p);

/**
 * Serialises a bus message. from and topic required, to NULL or "" for
 * every node, json a JSON text or NULL ("{}"). Returns an sl_malloc'd
 * text, or NULL (ENOMEM, or a field invalid or too long).
 */
char *sl_cluster_msg_write(const char *from, const char *to, const char *topic, const char *json);

/**
 * Parses a bus message of len bytes into *out (out->json owned by the
 * caller on success). 0, SL_ETOOBIG (len > SL_CLUSTER_MSG_MAX),
 * SL_EINVAL (missing or invalid field; the payload must itself parse as
 * JSON), SL_ENOMEM.
 */
int sl_cluster_msg_parse(const char *txt, size_t len, sl_cluster_msg_t *out);

#endif
