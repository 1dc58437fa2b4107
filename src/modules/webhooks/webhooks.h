/*
 * Webhooks: every event on the bus that passes webhooks.events is POSTed,
 * durably and at least once, to every configured endpoint (webhooks.url and
 * the app's webhook_url), in the Red5 Pro payload shape (RED5-COMPAT.md
 * §7.1) with sluice's richer fields beside Red5's. See
 * docs/integration/webhooks.md for the contract a receiver relies on.
 *
 * Shape (DESIGN.md §6): the loop-thread listener only copies the event and
 * hands it to a writer thread through a mutex + condvar queue; the writer
 * builds one payload per endpoint and INSERTs each delivery into the SQLite
 * outbox ({server.data_dir}/sluice.db, table webhook_deliveries) before any
 * attempt is made; one sender thread per endpoint POSTs with libcurl and
 * records the outcome, retrying with exponential backoff and full jitter
 * forever. Deliveries that share an ordering key (the Red5 `guid`: the
 * session id for connection events, "app/stream" for stream events) leave
 * strictly in order per endpoint. Undelivered rows are picked up again at
 * the next start, so a crash loses nothing that reached the outbox.
 *
 * This header is the module's entry (for modules.c) and the pure helpers
 * (payload mapping, ids, signature, backoff) that the unit tests exercise;
 * none of it is a public interface.
 */
#ifndef SL_MODULES_WEBHOOKS_H
#define SL_MODULES_WEBHOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "app/events.h"
#include "modules/module.h"

/* The built-in module (modules.c lists it). */
extern const sl_builtin_t sl_webhooks_builtin;

#define SL_WEBHOOKS_BACKOFF_BASE_MS 1000 /* first retry waits up to this long */
#define SL_WEBHOOKS_SIG_LEN 71           /* "sha256=" + 64 hex digits */
#define SL_WEBHOOKS_ID_MAX 320           /* longest delivery id, NUL included */

/**
 * The name an event has in webhook payloads and the X-Sluice-Event header:
 * Red5's where Red5 has one (connect -> "connection-connect", publish ->
 * "stream-published", record_done -> "video-saved", ...), otherwise the
 * sluice name with '_' written '-' ("upload-done"). Static string; never
 * NULL ("unknown" for an out-of-range type).
 */
const char *sl__webhooks_event_name(sl_event_type_t type);

/**
 * Parses one event name as accepted by webhooks.events: a Red5 name
 * ("stream-published"), a sluice name ("publish", "play_stop") or a sluice
 * name with '-' for '_' ("play-stop"); case-insensitive. Returns the type,
 * or -1 when unknown.
 */
int sl__webhooks_event_parse(const char *name);

/**
 * Parses webhooks.events (comma/space separated names, see above) into a
 * bit mask of event types (bit 1 << type). An empty or NULL list selects
 * every event. Returns 0, or SL_EINVAL with the first unknown name copied
 * into bad (cap bytes, may be NULL).
 */
int sl__webhooks_parse_events(const char *list, uint32_t *mask, char *bad, size_t cap);

/**
 * Writes the Red5 `guid` of an event into out: the session id for
 * connection events (connect, disconnect), "app/stream" for events about a
 * stream, else the session id, else the app, else "". It is also the
 * ordering key: deliveries with the same guid leave in order. Returns the
 * length written (truncated to cap - 1).
 */
size_t sl__webhooks_guid(const sl_event_t *ev, char *out, size_t cap);

/**
 * Extracts the `username` query parameter (URL-decoded) from a client's
 * query string into out; "" when absent or query is NULL.
 */
void sl__webhooks_username(const char *query, char *out, size_t cap);

/**
 * Writes the delivery (idempotency) id "<node>-<event seq>-<endpoint
 * index>" into out; node "" becomes "sluice". Returns 0, or SL_ETOOBIG when
 * cap is too small.
 */
int sl__webhooks_delivery_id(char *out, size_t cap, const char *node, uint64_t event_seq,
                             int endpoint_index);

/**
 * Builds the JSON body of one delivery: Red5's fields (event, guid,
 * username, userAgent, clusterNodeType, timestamp, nodePublicIp) and
 * sluice's (id, sluice_event, event_seq, time, node, app, stream, session,
 * protocol, remote_address, remote_port, reason, query, path, bytes_in,
 * bytes_out, duration_ms); absent strings are JSON null. The query has the
 * values of secret-named keys (password, token, key, ...: base/redact.h)
 * and JWTs masked as "***". ev is borrowed;
 * node may be NULL or "". Returns a NUL-terminated string the caller frees
 * with sl_free, or NULL on ENOMEM.
 */
char *sl__webhooks_payload(const sl_event_t *ev, const char *node, const char *delivery_id,
                           uint64_t event_seq);

/* This node in cluster mode, as webhook payloads name it. */
typedef struct sl__webhooks_cluster {
    char type[24];      /* Red5's clusterNodeType: TYPE_ORIGIN, TYPE_EDGE, TYPE_RELAY,
                           TYPE_TRANSCODER, TYPE_AUTO (role "all"); "" = standalone */
    char id[64];        /* the cluster node id */
    char host[256];     /* its public host (Red5's nodePublicIp) */
} sl__webhooks_cluster_t;

/**
 * sl__webhooks_payload for a node in cluster mode: clusterNodeType is
 * cl->type (instead of TYPE_OFF), nodePublicIp cl->host, and the payload
 * gains "cluster_node": cl->id. cl NULL or with an empty type: as
 * sl__webhooks_payload. raw_query (webhooks.raw_query) sends the query as
 * the client sent it, credentials included, instead of masked.
 */
char *sl__webhooks_payload_cluster(const sl_event_t *ev, const char *node,
                                   const char *delivery_id, uint64_t event_seq,
                                   const sl__webhooks_cluster_t *cl, int raw_query);

/** Red5's clusterNodeType for a cluster role ("origin" -> "TYPE_ORIGIN"; unknown: "TYPE_AUTO"). */
const char *sl__webhooks_cluster_type(const char *role);

/**
 * Computes the X-Sluice-Signature value for a body: "sha256=" followed by
 * the lower-case hex HMAC-SHA256, keyed with secret, of the bytes
 * timestamp + "." + body. out must hold SL_WEBHOOKS_SIG_LEN + 1 bytes.
 * Returns 0, SL_ENOMEM, or SL_EIO when OpenSSL fails.
 */
int sl__webhooks_sign(const char *secret, const char *timestamp, const char *body,
                      size_t body_len, char *out);

/**
 * The wait before the next attempt after `attempts` failed ones (>= 1),
 * with exponential backoff and full jitter: a value drawn uniformly from
 * [0, min(cap_ms, SL_WEBHOOKS_BACKOFF_BASE_MS * 2^(attempts-1))] using the
 * random number rnd (any 64-bit value). Never overflows.
 */
uint64_t sl__webhooks_backoff_ms(uint32_t attempts, uint64_t cap_ms, uint64_t rnd);

/**
 * The module's configuration check (sl_builtin_t.check, webhooks_check.c):
 * reports every unknown webhooks.events name and every webhook URL that is
 * not http:// or https:// through err at the line that set it; returns the
 * number of problems. No side effects.
 */
int sl__webhooks_check(const sl_config_t *cfg, sl_config_err_cb err, void *ud);

#endif
