/*
 * The "http" service, version 1.0: the HTTP server's route table and
 * request/response calls as a const table, for code above or beside
 * src/proto/http (modules, the plugin host, later WHIP/WHEP) that must not
 * include the server's headers. The HTTP server registers it when it
 * starts (sl_service_register(core, SL_HTTP_SVC_NAME, 1, 0, ...)) and
 * unregisters it when it stops; look it up with
 * sl_service_get(core, SL_HTTP_SVC_NAME, SL_HTTP_SVC_MAJOR, 0, &ud) and
 * pass that ud to route_add/route_remove.
 *
 * Routes: a route has a method (NULL = any; "GET" also takes HEAD), a
 * path prefix matched on whole segments ("/live" matches "/live" and
 * "/live/a", not "/lively"; a prefix ending in '/' matches what starts
 * with it; "/" matches every path), an optional suffix filter, and a named
 * priority. A request is offered to the matching routes in order of
 * priority (CORE, then APP, then STATIC), then longer prefix first, then
 * registration order; a handler takes it (returns 0 and answers exactly
 * once, now or later) or declines (SL_EDECLINED) to let the next one try.
 * Nobody taking it is a 404. The static-file route is the only one that
 * touches the disk for a request, and it runs last.
 *
 * Threading: loop thread only. A request pointer stays valid from the
 * handler call until its response is complete (respond, stream_end, or the
 * close callback of a stream or WebSocket). Every string the table hands
 * out is borrowed for that same time.
 *
 * This table is append-only: a function added later bumps the minor, and
 * its comment says "valid from 1.N".
 */
#ifndef SL_APP_SVC_HTTP_H
#define SL_APP_SVC_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define SL_HTTP_SVC_NAME "http"
#define SL_HTTP_SVC_MAJOR 1
#define SL_HTTP_SVC_MINOR 1

typedef struct sl_http_req sl_http_req_t;  /* a request (opaque here) */
typedef struct sl_ws sl_ws_t;              /* an accepted WebSocket */
typedef struct sl_http_route sl_http_route_t; /* a registered route (opaque handle) */
typedef struct sl_session sl_session_t;

/**
 * Where a route stands in dispatch order. Lower runs first; within one
 * priority a longer prefix runs first, then the one registered first.
 */
typedef enum sl_http_prio {
    SL_HTTP_PRIO_CORE = 0,   /* the server's own: /healthz, /api/v1/, /metrics */
    SL_HTTP_PRIO_APP = 1,    /* routes under an app, /{app}/...: HLS, HTTP-FLV, recordings,
                              * WHIP/WHEP, plugins' app routes */
    SL_HTTP_PRIO_STATIC = 2, /* static files from http.web_root: always last */
} sl_http_prio_t;

/**
 * A route handler. Returns 0 when it took the request (it must then answer
 * it exactly once, now or later), or SL_EDECLINED to let the next matching
 * route try. Any other negative value answers 500.
 */
typedef int (*sl_http_handler_cb)(sl_http_req_t *req, void *ud);
/** Called once when a streaming response or WebSocket ends for any reason. */
typedef void (*sl_http_close_cb)(sl_http_req_t *req, void *ud);
/** Called when the play admission chain allowed a request; the handler answers it. */
typedef void (*sl_http_admit_cb)(sl_http_req_t *req, void *ud);

/** What a route is: filled by the caller, copied by route_add. */
typedef struct sl_http_route_spec {
    const char *method;       /* "GET" (takes HEAD too), "POST", ...; NULL = any */
    const char *prefix;       /* path prefix, matched on segments (see above); "/" = all */
    const char *suffixes;     /* space-separated path endings, e.g. ".m3u8 .m4s .ts"; NULL or ""
                               * = any path under prefix */
    sl_http_prio_t prio;      /* SL_HTTP_PRIO_* */
    const char *name;         /* documentation name listed by GET /api/v1/server/routes; static
                               * string, NULL = undocumented */
    const char *serves;       /* URL templates of stream data it serves, space-separated, with
                               * {app} {stream} {msn} {part} {gen}; "" = none; static string */
    sl_http_handler_cb cb;    /* the handler */
    void *ud;                 /* handed to cb (borrowed) */
    int options;              /* valid from 1.1: the route answers a plain OPTIONS itself (one
                               * without Access-Control-Request-Method); a CORS preflight is
                               * still answered by the server. 0 = the server answers every
                               * OPTIONS while http.cors_origin is set */
} sl_http_route_spec_t;

/** WebSocket callbacks (see ws_accept). */
typedef struct sl_ws_ops {
    /** A complete text (is_text 1) or binary message arrived (borrowed). */
    void (*on_message)(sl_ws_t *ws, const uint8_t *data, size_t len, int is_text, void *ud);
    /** The WebSocket closed (either side); ws is invalid after this returns. */
    void (*on_close)(sl_ws_t *ws, void *ud);
} sl_ws_ops_t;

/** The service table (SL_HTTP_SVC_NAME, 1.0). */
typedef struct sl_http_svc {
    /* ---- routes (svc = the ud sl_service_get gave) ---- */
    /**
     * Adds a route (spec is copied; its strings name/serves are borrowed
     * for the server's life, the others copied). *out, when out is not NULL,
     * receives a handle for route_remove. 0, SL_EINVAL (no prefix, a prefix
     * not starting with '/', no cb, a priority out of range) or SL_ENOMEM.
     */
    int (*route_add)(void *svc, const sl_http_route_spec_t *spec, sl_http_route_t **out);
    /**
     * Removes a route added by route_add (NULL: no-op). Requests it took
     * stay the handler's to answer; it gets no new ones.
     */
    void (*route_remove)(void *svc, sl_http_route_t *route);

    /* ---- reading a request (borrowed strings, valid as the request) ---- */
    /** "GET", "POST", ... */
    const char *(*req_method)(const sl_http_req_t *req);
    /** The percent-decoded path without the query, e.g. "/live/a.flv". */
    const char *(*req_path)(const sl_http_req_t *req);
    /** The raw query string without '?', "" when none. */
    const char *(*req_query)(const sl_http_req_t *req);
    /**
     * A query parameter's decoded value into out: its length, -1 when
     * absent, -2 when longer than cap - 1 (out holds a cut copy).
     */
    int (*req_query_get)(const sl_http_req_t *req, const char *key, char *out, size_t cap);
    /** A header's value by name (case-insensitive), or NULL. */
    const char *(*req_header)(const sl_http_req_t *req, const char *name);
    /** The peer's address as text; *port (when not NULL) gets its port. */
    const char *(*req_remote)(const sl_http_req_t *req, int *port);
    /** The complete request body (*len bytes; NULL with *len 0 when empty). */
    const uint8_t *(*req_body)(const sl_http_req_t *req, size_t *len);
    /** The connection's session in the core registry (logging, kick). */
    sl_session_t *(*req_session)(const sl_http_req_t *req);

    /* ---- answering ---- */
    /**
     * A complete answer (body copied; content_type NULL =
     * application/octet-stream; extra_headers NULL or "Name: value\r\n"
     * lines). The request is finished afterwards. 0, SL_EINVAL (answered
     * already) or SL_ECLOSED (client gone; finished all the same).
     */
    int (*respond)(sl_http_req_t *req, int status, const char *content_type, const void *body,
                   size_t len, const char *extra_headers);
    /**
     * Starts a streaming (chunked) answer; length_or_neg1 >= 0 sends a
     * Content-Length instead (then write exactly that many bytes). close_cb
     * runs once when the client goes away or after stream_end has been
     * written, never inside a call the owner made. SL_ECLOSED when there is
     * nothing to stream (client gone, or HEAD: the head was sent): close_cb
     * will then not run and the request is finished.
     */
    int (*stream_start)(sl_http_req_t *req, int status, const char *content_type,
                        const char *extra_headers, int64_t length_or_neg1,
                        sl_http_close_cb close_cb, void *ud);
    /**
     * Queues a chunk, taking its own reference to buf. SL_ECLOSED once the
     * client is gone; SL_ETOOBIG past http.stream_max_pending_bytes (not
     * queued).
     */
    int (*stream_write)(sl_http_req_t *req, sl_buf_t *buf);
    /** Bytes queued behind the socket for this connection (backpressure). */
    size_t (*stream_pending)(const sl_http_req_t *req);
    /** Ends a stream; close_cb follows once it is written. */
    int (*stream_end)(sl_http_req_t *req);

    /**
     * Runs the play admission chain for a route that serves stream data of
     * scope ("live", "live/room1") and stream (NULL for an app-wide
     * listing), transport e.g. "http", with the request's credentials
     * (query username/password/token or Authorization: Bearer). Allowed:
     * allowed(req, ud) runs (maybe synchronously) and answers; refused: the
     * request is answered 401/403 here. Call it before looking the data up,
     * so an absent and a forbidden stream look the same. 0 (taken) or
     * SL_ENOMEM (nothing answered).
     */
    int (*admit_play)(sl_http_req_t *req, const char *scope, const char *stream,
                      const char *transport, sl_http_admit_cb allowed, void *ud);

    /* ---- WebSocket ---- */
    /**
     * Accepts a WebSocket upgrade on req: on success the request is
     * finished and *out lives until ops->on_close. On failure the request
     * has been answered (400 for a bad upgrade: SL_EPROTO), except
     * SL_ECLOSED (client gone).
     */
    int (*ws_accept)(sl_http_req_t *req, const sl_ws_ops_t *ops, void *ud, sl_ws_t **out);
    /**
     * Sends a message (copied), text when is_text. SL_ECLOSED after close,
     * SL_ETOOBIG when the queue is full or the message over
     * http.ws_max_message_bytes.
     */
    int (*ws_send)(sl_ws_t *ws, const void *data, size_t len, int is_text);
    /** Starts a close handshake (code, reason). */
    void (*ws_close)(sl_ws_t *ws, int code, const char *reason);
} sl_http_svc_t;

#endif
