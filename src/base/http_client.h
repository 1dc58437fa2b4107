/*
 * The outgoing HTTP client: libcurl's multi interface driven by the libuv
 * loop, so a request never blocks the loop (DESIGN.md §4: "a remote check
 * never blocks the loop"). Used by Round Trip Authentication, webhooks and
 * anything else that calls the business's servers.
 *
 * How it runs: one curl multi handle per client. curl tells us which
 * sockets to watch (CURLMOPT_SOCKETFUNCTION: one uv_poll per socket) and
 * when it next needs a timeout (CURLMOPT_TIMERFUNCTION: one uv_timer);
 * both feed curl_multi_socket_action, after which finished transfers are
 * collected and their callbacks called. Connections are kept alive and
 * reused across requests by the multi handle's connection cache
 * (CURLMOPT_MAXCONNECTS); DNS runs on curl's resolver thread. curl's own
 * allocations are routed through sl_malloc (curl_global_init_mem), so they
 * are counted on /metrics like everything else.
 *
 * Contracts: loop thread only. A request's callback is called exactly once,
 * always from the loop (never from inside the call that started it), unless
 * the request is cancelled first; after the callback or the cancel the
 * request handle is gone. Responses are capped (max_response_bytes) and
 * every request has a timeout.
 */
#ifndef SL_BASE_HTTP_CLIENT_H
#define SL_BASE_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct sl_http_client sl_http_client_t;
typedef struct sl_http_client_req sl_http_client_req_t;

/** Client-wide limits; zero fields take the defaults noted. */
typedef struct sl_http_client_opts {
    long max_connections;      /* idle connections kept for reuse (default 16) */
    size_t max_response_bytes; /* larger responses fail with SL_ETOOBIG (default 1 MB) */
    const char *user_agent;    /* default "sluice/<version>"; copied */
} sl_http_client_opts_t;

/**
 * A finished request. status is the HTTP status code (any, 1xx-5xx: the
 * caller decides what success is) or a negative error: UV_ETIMEDOUT
 * (timeout), UV_ECONNREFUSED (could not connect), UV_EAI_NONAME (host not
 * found), SL_ETOOBIG (response over the cap), SL_EINVAL (a malformed or
 * unsupported URL), SL_ENOMEM, SL_EIO (any other transport error). body is the response body, always
 * NUL-terminated (len excludes the NUL), borrowed for the call only; it is
 * "" (len 0) on errors.
 */
typedef void (*sl_http_client_cb)(int status, const char *body, size_t len, void *ud);

/** Called once the client's handles are all closed (see sl_http_client_close). */
typedef void (*sl_http_client_closed_cb)(sl_http_client_t *cli, void *ud);

/** One request; strings are borrowed for the call (the client copies them). */
typedef struct sl_http_client_request {
    const char *method;              /* "GET", "POST", ...; NULL = POST when a body is given, else GET */
    const char *url;                 /* http:// or https:// */
    const void *body;                /* request body or NULL */
    size_t body_len;
    const char *content_type;        /* e.g. "application/json"; NULL = none sent */
    const char *const *headers;      /* extra "Name: value" lines, NULL-terminated; may be NULL */
    uint64_t timeout_ms;             /* whole request, connect included; 0 = 10 s */
    /*
     * Optional: called for each line of the response head (status line
     * included, CRLF stripped, line borrowed for the call), with the
     * request's ud, from the loop before the completion callback. A
     * response preceded by an interim one (1xx) repeats the status line:
     * the caller starts over when a line begins with "HTTP/". Lines are
     * what the server sent; the caller caps what it keeps. Added for the
     * stream manager's proxy, which passes Location, ETag and Link on.
     */
    void (*on_header)(const char *line, size_t len, void *ud);
} sl_http_client_request_t;

/**
 * Creates a client on loop (borrowed; must outlive the client). opts may be
 * NULL. Returns 0 and the client in *out, or SL_ENOMEM / SL_EIO (curl
 * could not initialise); nothing is left open on error. The first client
 * initialises libcurl (curl_global_init_mem with the counted allocator) and
 * the last one freed cleans it up; curl counts these calls, so other users
 * of curl_global_init in the process (webhooks) are not disturbed, but the
 * calls must not race with theirs on another thread.
 */
int sl_http_client_new(uv_loop_t *loop, const sl_http_client_opts_t *opts, sl_http_client_t **out);

/**
 * Starts a request. Returns 0 with the request handle in *out (may be NULL
 * when the caller never cancels), SL_EINVAL (no URL), SL_ECLOSED (the
 * client is closing) or SL_ENOMEM; on error cb is never called. cb is
 * called later, exactly once, unless sl_http_client_cancel comes first.
 */
int sl_http_client_start(sl_http_client_t *cli, const sl_http_client_request_t *r,
                         sl_http_client_cb cb, void *ud, sl_http_client_req_t **out);

/**
 * POSTs json_body (borrowed, copied) with Content-Type and Accept
 * application/json. headers: extra "Name: value" lines (NULL-terminated,
 * may be NULL; at most 30, else SL_ETOOBIG). Same returns and callback
 * contract as sl_http_client_start.
 */
int sl_http_client_post_json(sl_http_client_t *cli, const char *url, const char *json_body,
                             uint64_t timeout_ms, const char *const *headers,
                             sl_http_client_cb cb, void *ud, sl_http_client_req_t **out);

/**
 * Cancels a request that has not called back yet: its callback will never
 * be called and the handle is freed now. Safe from inside another
 * request's callback; a no-op from inside its own. Must not be called
 * after the request's own callback has returned (the handle is gone).
 */
void sl_http_client_cancel(sl_http_client_req_t *req);

/** Requests started and not yet finished or cancelled. */
size_t sl_http_client_pending(const sl_http_client_t *cli);

/**
 * Starts closing: new requests are refused with SL_ECLOSED; requests in
 * flight may finish for up to drain_ms (their callbacks are called as
 * usual), then any left are cancelled (callbacks not called) and every
 * handle is closed. closed_cb (may be NULL) is called from the loop once
 * all handles are closed; the client may then be freed. Calling it twice
 * is harmless (the first call's drain and callback stand).
 */
void sl_http_client_close(sl_http_client_t *cli, uint64_t drain_ms, sl_http_client_closed_cb closed_cb,
                          void *ud);

/**
 * Frees the client. If it is fully closed, at once; otherwise it closes
 * without draining (cancelling what is in flight) and frees itself when
 * its handles are closed, so calling it before the loop has drained is
 * safe as long as the loop runs again afterwards. NULL is ignored.
 */
void sl_http_client_free(sl_http_client_t *cli);

#endif
