/*
 * The HTTP/1.1 server core on the loop: one listener (http.port, default
 * 5080) and, with a certificate, an HTTPS one (http.tls_port, default 5443)
 * whose connections run through a TLS filter (base/tls.h); request
 * parsing with the well-kept http-parser library (no hand-written HTTP
 * parsing), routing by method, path prefix, suffix and priority (the
 * route table of app/svc/http.h, which this server also registers as the
 * "http" service), plain, chunked and
 * long-lived streaming responses, and WebSocket upgrades (framing by
 * wslay).
 *
 * Everything that speaks HTTP (the REST API, metrics, the event stream,
 * static pages, and later HTTP-FLV, HLS and WHIP/WHEP) is a route here.
 *
 * Connection behaviour: keep-alive; pipelined requests are parsed as they
 * arrive and answered strictly in order (a response to a later request is
 * held until the earlier ones are complete); header size, header count,
 * body size and URL length are limited (431 / 413 / 414); a request whose
 * headers do not arrive within the header timeout is answered 408 and
 * closed (slowloris); malformed requests get 400 and the connection
 * closes; idle keep-alive connections close after the idle timeout.
 *
 * Threading: loop thread only. A request object stays valid from the
 * handler call until its response is complete (sl_http_respond*, or
 * sl_http_stream_end, or the client going away for streams and
 * WebSockets, which the owner learns through a close callback).
 */
#ifndef SL_PROTO_HTTP_H
#define SL_PROTO_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "app/core.h"
#include "app/svc/http.h"
#include "base/buf.h"

typedef struct sl_http_server sl_http_server_t;

typedef struct sl_http_header {
    const char *name;  /* lower-cased */
    const char *value;
} sl_http_header_t;

struct sl_http_req {
    const char *method;          /* "GET", "POST", ... */
    const char *path;            /* percent-decoded path without the query, e.g. "/api/v1/server" */
    const char *raw_path;        /* the path as sent (still encoded) */
    const char *query;           /* raw query string without '?', "" when none */
    const sl_http_header_t *headers; /* n_headers entries */
    size_t n_headers;
    const uint8_t *body;         /* request body (complete), may be NULL when empty */
    size_t body_len;
    const char *remote_addr;     /* peer address as text */
    int remote_port;
    sl_session_t *session;       /* the connection's session in the core registry */
    void *user;                  /* free for the handler (e.g. async state) */
};

/* sl_http_handler_cb, sl_http_close_cb, sl_http_admit_cb, sl_ws_ops_t,
 * sl_http_prio_t and sl_http_route_spec_t are in app/svc/http.h (the
 * service table other layers use). */

/**
 * Starts the listener on http.bind:http.port, and the HTTPS one on
 * http.tls_bind:http.tls_port when a certificate is configured. 0, or an
 * error (logged here, with the reason: a bad certificate, a port in use)
 * with nothing left open.
 */
int sl_http_server_start(sl_core_t *core, sl_http_server_t **out);
/** Graceful stop: closes the listener, ends streams and WebSockets, closes idle connections. */
void sl_http_server_stop(sl_http_server_t *srv);
/** Frees after the loop has closed every handle. */
void sl_http_server_free(sl_http_server_t *srv);
/** HTTP's line in the protocol table (http_proto.c; proto/proto.h): "http" and HTTPS. */
extern const struct sl_proto sl_http_proto;
/**
 * The server a started sl_http_proto runs (its state; borrowed, valid until
 * its free): main hands it to the API and to the modules for their routes.
 */
sl_http_server_t *sl_http_proto_server(void *state);
/** The port the listener is bound to (useful with http.port 0 in tests), or -1. */
int sl_http_server_port(const sl_http_server_t *srv);
/** The port the HTTPS listener is bound to, or -1 when there is none. */
int sl_http_server_tls_port(const sl_http_server_t *srv);
/**
 * 1 when the config asks for HTTPS (http.tls_cert or http.tls_key set;
 * both are then required). Such a server listens on http.tls_port too.
 */
int sl_http_server_tls_enabled(const sl_config_t *cfg);
/** The HTTPS listen address: http.tls_bind, or http.bind when that is empty (borrowed). */
const char *sl_http_server_tls_bind(const sl_config_t *cfg);
/**
 * Loads the configured certificate and key as the server would and drops
 * them (for --check-config, and to fail a start before anything listens).
 * 0 when HTTPS is off or they are usable; otherwise SL_EINVAL (or
 * SL_ENOMEM) with a sentence naming the file and the reason in err.
 */
int sl_http_server_tls_check(const sl_config_t *cfg, char *err, size_t err_cap);

/**
 * Adds a route (see app/svc/http.h for matching and dispatch order:
 * priority, then longer prefix, then registration; a handler may decline).
 * The spec is copied, except its name and serves strings, which are
 * borrowed for the server's life (static strings). *out, when out is not
 * NULL, gets a handle for sl_http_route_remove. 0, SL_EINVAL (no cb, a
 * prefix not starting with '/', a priority out of range) or SL_ENOMEM.
 */
int sl_http_route_add(sl_http_server_t *srv, const sl_http_route_spec_t *spec,
                      sl_http_route_t **out);
/** Shorthand for sl_http_route_add without suffixes, doc or handle. */
int sl_http_route(sl_http_server_t *srv, const char *method, const char *prefix,
                  sl_http_prio_t prio, sl_http_handler_cb cb, void *ud);
/** Removes a route added before (NULL: no-op); it gets no new requests. */
void sl_http_route_remove(sl_http_server_t *srv, sl_http_route_t *route);
/** "core", "app", "static" (the names the route listing shows), "?" otherwise. */
const char *sl_http_prio_name(sl_http_prio_t prio);
/**
 * Documents the route added last: a name and the URL templates of the
 * stream data it can answer, space-separated, with {app}, {stream},
 * {msn}, {part} and {gen} placeholders ("" when it serves none: API,
 * metrics, static pages). Both are static strings (borrowed for the
 * server's life); nothing is allocated, so this cannot fail. The table is
 * listed by GET /api/v1/server/routes, and an e2e test walks every
 * template on apps with auth: a route added without a doc fails it, so
 * a new route that serves stream data cannot skip admission unseen.
 * (sl_http_route_spec_t.name/serves say the same at sl_http_route_add.)
 */
void sl_http_route_doc(sl_http_server_t *srv, const char *name, const char *serves);
/** One route as sl_http_routes_each shows it (all borrowed for the call). */
typedef struct sl_http_route_info {
    const char *method;    /* NULL = any */
    const char *prefix;
    const char *suffixes;  /* NULL = any path under prefix */
    sl_http_prio_t prio;
    const char *prio_name; /* "core", "app", "static" */
    const char *name;      /* sl_http_route_doc name, NULL when undocumented */
    const char *serves;    /* its URL templates ("" = none), NULL when undocumented */
} sl_http_route_info_t;
typedef void (*sl_http_route_each_cb)(void *arg, const sl_http_route_info_t *route);
/** Calls each() for every route in dispatch order. */
void sl_http_routes_each(const sl_http_server_t *srv, sl_http_route_each_cb each, void *arg);
/**
 * Serves static files from dir under URL prefix (GET/HEAD; index.html for
 * directories; no ".."), at SL_HTTP_PRIO_STATIC: tried after every other
 * route declined, so no other request costs a disk access.
 */
int sl_http_static(sl_http_server_t *srv, const char *prefix, const char *dir);

/* ---- play admission for routes that serve stream data (http_admit.c) ---- */
/* sl_http_admit_cb (app/svc/http.h): called when the chain allowed the request; it answers. */
/**
 * Runs the play admission chain (transport as given, e.g. "http") for a
 * route that serves stream data of scope ("live", "live/room1") and
 * stream (NULL for an app-wide listing), with the request's credentials
 * (query username/password/token, or Authorization: Bearer). When allowed,
 * allowed(req, ud) is called (maybe synchronously) and must answer; when
 * refused, the request is answered here, 401 without credentials, 403
 * with wrong ones, before anything was looked up, so an existing and an
 * absent stream get the same answer. Returns 0 (the request is taken) or
 * SL_ENOMEM (nothing answered, allowed not called). Call it before
 * checking whether the data exists.
 */
int sl_http_admit_play(sl_core_t *core, sl_http_req_t *req, const char *scope, const char *stream,
                       const char *transport, sl_http_admit_cb allowed, void *ud);
/** The refusal sl_http_admit_play sends, for protocols that run the chain themselves. */
void sl_http_admit_refuse(sl_http_req_t *req, int had_creds, const char *reason);
/* Room for a token of up to 8192 characters (the JWT module's limit) plus
 * one: a longer token arrives cut but still too long, and is refused as too
 * long rather than as missing. */
#define SL_HTTP_TOKEN_MAX 8194
/**
 * Credentials as Red5 clients pass them over HTTP, into caller buffers
 * (empty when absent). A token longer than token_cap is kept cut (see
 * SL_HTTP_TOKEN_MAX). Returns 1 when any was given.
 */
int sl_http_find_creds(const sl_http_req_t *req, char *user, size_t user_cap, char *pass,
                       size_t pass_cap, char *token, size_t token_cap);
/** Answers 503 to and frees every admission still waiting (server stop). */
void sl_http_admit_stop(void);

/** Header value by lower-case name, or NULL. */
const char *sl_http_req_header(const sl_http_req_t *req, const char *name);
/**
 * Looks up a query parameter in a raw query string (form-urlencoded) and
 * writes its decoded value into out. Returns the value's length, -1 when
 * absent, or -2 when present but too long for cap: out then holds its first
 * cap - 1 bytes (so a caller can tell "too long" from "missing"; both are
 * negative for callers that only want a value that fits). `query` may be
 * NULL.
 */
int sl_http_query_get(const char *query, const char *key, char *out, size_t cap);
/** Decodes %xx and '+' (as space when plus_space) in place; returns the new length. */
size_t sl_http_url_decode(char *s, int plus_space);

/**
 * Answers with a complete body (copied). content_type may be NULL
 * (application/octet-stream). extra_headers, when not NULL, is a block of
 * "Name: value\r\n" lines added as is. The request is finished afterwards.
 * Returns 0; SL_EINVAL when the request was answered already; SL_ECLOSED
 * when the client is gone (the request is finished all the same).
 */
int sl_http_respond(sl_http_req_t *req, int status, const char *content_type, const void *body,
                    size_t len, const char *extra_headers);
/** Same with a NUL-terminated JSON text and application/json. */
int sl_http_respond_json(sl_http_req_t *req, int status, const char *json);

/* ---- streaming responses (HTTP-FLV, LL-HLS, event streams) ---- */
/**
 * Starts a streaming response (chunked transfer encoding, no length).
 * close_cb is called when the client goes away or after sl_http_stream_end
 * completes; the request is invalid after it. It is never called from
 * inside an sl_http_* call the owner made. Returns 0; or SL_ECLOSED when
 * there is nothing to stream: the client is gone, or the request was HEAD
 * (the head has been sent); then close_cb will not be called and the
 * request is finished. To an HTTP/1.0 client the body is sent unframed
 * and ends with the connection.
 */
int sl_http_stream_start(sl_http_req_t *req, int status, const char *content_type,
                         const char *extra_headers, sl_http_close_cb close_cb, void *ud);
/**
 * Same, for a body whose length is known (a file, a byte range): the head
 * says Content-Length: length instead of chunked, which curl, players and
 * download managers expect (a 206 answer in particular), and the connection
 * stays open for the next request. The owner writes exactly length bytes
 * with sl_http_stream_write (a write past it returns SL_EINVAL) and then
 * calls sl_http_stream_end; ending short closes the connection (the client
 * sees a truncated body, never a misframed next answer). A HEAD request
 * gets the head with the length and SL_ECLOSED, as above.
 */
int sl_http_stream_start_sized(sl_http_req_t *req, int status, const char *content_type,
                               const char *extra_headers, uint64_t length,
                               sl_http_close_cb close_cb, void *ud);
/**
 * Queues a chunk; takes its own reference to buf (the payload is never
 * copied). SL_ECLOSED once the client is gone; SL_ETOOBIG when queuing it
 * would put more than http.stream_max_pending_bytes behind the socket (the
 * chunk is not queued: drop it, or end the stream).
 */
int sl_http_stream_write(sl_http_req_t *req, sl_buf_t *buf);
/**
 * Bytes queued but not yet written (for backpressure decisions): this
 * stream's and those of the responses before it on the connection.
 */
size_t sl_http_stream_pending(const sl_http_req_t *req);
/**
 * Ends the stream (terminating chunk); the connection may then serve the
 * next request. On a stream handed over (sl_http_stream_handover) the
 * connection closes instead: its writes are the new owner's.
 */
int sl_http_stream_end(sl_http_req_t *req);
/**
 * Hands the writes of a running chunked-or-unframed streaming response to
 * the caller, which writes on its own descriptor from then on (an
 * HTTP-FLV player's writes on a worker loop, docs/internals/threads.md).
 * Possible when the request is the connection's current one and no write
 * is in flight: the bytes queued and not written yet (the head, what the
 * owner wrote) come out in *unsent (a new buffer the caller owns and
 * writes first, or NULL when there are none); *fd is a duplicate of the
 * socket (close-on-exec) the caller owns and closes; *chunked is 1 when
 * each later write must be framed as a chunk ("%x\r\n", bytes, "\r\n")
 * and the end is "0\r\n\r\n", 0 when the body is unframed up to the close.
 * Afterwards the server writes nothing more on the connection and serves
 * no further request on it, but goes on reading it (a client that leaves
 * is seen there) and close_cb runs as before; sl_http_stream_write returns
 * SL_EINVAL, sl_http_stream_pending 0, and sl_http_stream_end closes the
 * connection. Returns 0; SL_EAGAIN when not possible now (a write in
 * flight, an earlier response not complete); SL_EDECLINED on TLS and for a
 * sized stream; SL_ECLOSED when the request is not a running stream or the
 * client is gone; SL_ENOMEM or a libuv error (nothing changed).
 */
int sl_http_stream_handover(sl_http_req_t *req, int *fd, sl_buf_t **unsent, int *chunked);

/* ---- WebSocket ---- */
/**
 * Accepts a WebSocket upgrade on req (checks the upgrade headers; answers
 * 400 itself if they are wrong and returns SL_EPROTO). On success the
 * request is finished and the returned ws lives until on_close. Every
 * other failure has answered the request too (500 on SL_ENOMEM), except
 * SL_EINVAL (answered before) and SL_ECLOSED (the client is gone).
 * Incoming messages are limited to http.ws_max_message_bytes (close 1009
 * past it), text must be UTF-8 (close 1007); a peer silent for half of
 * http.idle_timeout is pinged, and closed after all of it. on_close is
 * never called from inside an sl_ws_* or sl_http_* call the owner made.
 */
int sl_http_ws_accept(sl_http_req_t *req, const sl_ws_ops_t *ops, void *ud, sl_ws_t **out);
/**
 * Sends a text message (copied). SL_ECLOSED after close, SL_ETOOBIG when
 * the send queue is full (messages and bytes not yet written would pass
 * http.stream_max_pending_bytes) or the message is over
 * http.ws_max_message_bytes.
 */
int sl_ws_send_text(sl_ws_t *ws, const char *text, size_t len);
/** Same, for a text (is_text 1) or a binary message (copied). */
int sl_ws_send(sl_ws_t *ws, const void *data, size_t len, int is_text);
/** Starts a close handshake with a status code and reason. */
void sl_ws_close(sl_ws_t *ws, int code, const char *reason);
/** The session of the WebSocket's connection. */
sl_session_t *sl_ws_session(sl_ws_t *ws);

#endif
