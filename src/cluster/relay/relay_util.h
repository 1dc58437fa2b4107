/*
 * The relay's pure helpers (relay_util.c): parsing the static origins
 * list, the stable choice of a relay for a stream, the constant-time
 * password compare, masking the password in a query string, and building
 * the upstream URL with Red5's cluster-restreamer parameters. No
 * allocation, no global state: unit-tested and fuzzed on their own.
 */
#ifndef SL_CLUSTER_RELAY_UTIL_H
#define SL_CLUSTER_RELAY_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define SL_RELAY_MAX_ORIGINS 16   /* entries of relay.origins */
#define SL_RELAY_HOST_MAX 256     /* a host name or address, with the NUL */
#define SL_RELAY_URL_MAX 2048     /* an upstream URL */

/* One upstream address. */
typedef struct sl_relay_addr {
    char host[SL_RELAY_HOST_MAX];
    uint16_t port;                /* 1935 when the entry has none */
} sl_relay_addr_t;

/**
 * Parses text (`host[:port]` entries, optionally rtmp://-prefixed,
 * separated by commas or blanks; "[v6]:port" accepted) into out (cap
 * entries). Returns the number of entries (0 for NULL or empty text),
 * SL_EINVAL for an entry that is not an address (why set to a static
 * reason), SL_ETOOBIG past cap or SL_RELAY_MAX_ORIGINS entries. Never
 * reads past text's NUL.
 */
int sl_relay_origins_parse(const char *text, sl_relay_addr_t *out, size_t cap,
                           const char **why);

/**
 * The index (0..n-1) of the relay that serves path, stable across nodes
 * and calls for the same n (FNV-1a of the path). n must be > 0.
 */
size_t sl_relay_pick(const char *path, size_t n);

/**
 * 1 when a and b are the same string, compared in time that depends only
 * on their lengths' maximum, never on where they first differ. NULL is
 * "".
 */
int sl_relay_secret_eq(const char *a, const char *b);

/**
 * Copies query into out (cap bytes) with the value of every key named key
 * (compared after percent-decoding, as sl_query_get does) replaced by "***". Returns the number of values masked, or SL_ETOOBIG
 * when out is too small (out is then "" when cap > 0). query NULL gives
 * "" and 0.
 */
int sl_relay_query_mask(const char *query, const char *key, char *out, size_t cap);

/**
 * Writes the upstream URL rtmp://host:port/app/stream?restreamer=<password>
 * &cluster-restreamer-context=<app>&cluster-restreamer-name=<stream>
 * &cluster-hops=<hops> into out (the password and names percent-encoded;
 * restreamer= left out when password is ""). A host with ':' is put in
 * brackets. Returns the length, or SL_ETOOBIG.
 */
int sl_relay_url(char *out, size_t cap, const char *host, uint16_t port, const char *app,
                 const char *stream, const char *password, int hops);

#endif
