/*
 * The host API: everything a sluice plugin can ask of the server.
 *
 * A plugin links to no sluice symbol. Its init callback (plugin.h) receives
 * a `const sl_host_api_t *`, a versioned table of function pointers, and an
 * `sl_host_t *`, the opaque handle that names the plugin in every call (its
 * settings, the apps it serves, its log name, the timers and routes it
 * owns). Both stay valid until the plugin's destroy callback returns.
 *
 * Threads: every call runs on the server's event-loop thread, from inside a
 * callback sluice made (init, an event, an admission check, a timer, a work
 * item's done callback, an HTTP or WebSocket handler). The only exception is
 * the work callback of sl_host_api_t.work_queue, which runs on a worker
 * thread and may call nothing of this table except log.
 *
 * Strings passed in are borrowed for the call (sluice copies what it keeps).
 * Strings handed to a callback are valid for that callback only. Strings
 * returned by stats_json are owned by the plugin and freed with
 * sl_host_api_t.free.
 *
 * Versioning: this table only grows, by appending. A field marked
 * "valid from ABI 1.x" exists when api->size covers it; test with
 * SL_HOST_HAS(api, field) before calling it when the plugin also wants to
 * run on an older host (the loader already refuses a plugin built against
 * a newer minor than the host's, so a plugin that requires 1.1 may call
 * 1.1 fields without testing).
 *
 * This header includes only libc headers and the other sluice public
 * headers.
 */
#ifndef SLUICE_HOST_H
#define SLUICE_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/errors.h"
#include "sluice/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One loaded plugin, as the host knows it (opaque). */
typedef struct sl_host sl_host_t;
/** One admission request in progress (opaque; see admission_* below). */
typedef struct sl_admission sl_admission_t;
/** One HTTP request routed to a plugin (opaque; see http_* below). */
typedef struct sl_http_request sl_http_request_t;
/** One WebSocket accepted on a plugin's route (opaque; see ws_* below). */
typedef struct sl_websocket sl_websocket_t;
/** One timer of a plugin (opaque). */
typedef struct sl_timer sl_timer_t;

/** Log levels for sl_host_api_t.log. */
typedef enum {
    SL_PLUGIN_LOG_ERROR = 0,
    SL_PLUGIN_LOG_WARN = 1,
    SL_PLUGIN_LOG_INFO = 2,
    SL_PLUGIN_LOG_DEBUG = 3,
} sl_plugin_log_level_t;

/**
 * Event types, as delivered to sl_plugin_t.on_event. Values never change;
 * new types are appended (a plugin must ignore types it does not know).
 */
typedef enum {
    SL_PLUGIN_EV_CONNECT = 0,        /**< a client connected (after admission) */
    SL_PLUGIN_EV_DISCONNECT = 1,     /**< a client went away (reason, bytes, duration) */
    SL_PLUGIN_EV_PUBLISH = 2,        /**< a stream started (app, stream) */
    SL_PLUGIN_EV_UNPUBLISH = 3,      /**< a stream ended */
    SL_PLUGIN_EV_PLAY = 4,           /**< a player started */
    SL_PLUGIN_EV_PLAY_STOP = 5,      /**< a player stopped */
    SL_PLUGIN_EV_RECORD_START = 6,   /**< a recording started (path) */
    SL_PLUGIN_EV_RECORD_DONE = 7,    /**< a recording was finalised (path) */
    SL_PLUGIN_EV_UPLOAD_DONE = 8,    /**< a recording reached cloud storage */
    SL_PLUGIN_EV_UPLOAD_FAILED = 9,  /**< a cloud upload gave up */
    SL_PLUGIN_EV_SO_UPDATE = 10,     /**< a shared object changed */
    SL_PLUGIN_EV_RPC = 11,           /**< a client called a method */
    SL_PLUGIN_EV_STREAM_IDLE = 12,   /**< a stream has had no publisher for a while */
    SL_PLUGIN_EV_NODE_UP = 13,       /**< cluster: a node joined */
    SL_PLUGIN_EV_NODE_DOWN = 14,     /**< cluster: a node left */
    SL_PLUGIN_EV_RECORD_DELETED = 15,/**< the cleaner removed a recording (path, reason) */
    /* ---- valid from ABI 1.2 ---- */
    /**
     * An app got its first session (app; session_id, proto and the address
     * are those of the client that opened it). Sent when the first client is
     * admitted into the app or any room below it, before that client's own
     * connect event.
     */
    SL_PLUGIN_EV_APP_START = 16,
    /** The last session of an app (and of all its rooms) left; after its disconnect. */
    SL_PLUGIN_EV_APP_STOP = 17,
    /**
     * A room (a scope below an app: app = "live/room1") got its first
     * session; after the app_start of its app, if any. Rooms nest: a client
     * in "live/a/b" starts "live/a" (when empty) and then "live/a/b".
     */
    SL_PLUGIN_EV_ROOM_START = 18,
    /** The last session of a room (and of the rooms below it) left; innermost first. */
    SL_PLUGIN_EV_ROOM_STOP = 19,
    /* ---- valid from ABI 1.4 ---- */
    /** A pulled stream's source connected (app, stream; reason: what it found). */
    SL_PLUGIN_EV_PULL_UP = 20,
    /** A pulled stream's source was lost or could not be reached (reason: why). */
    SL_PLUGIN_EV_PULL_DOWN = 21,
    /** A push output connected to its destination (app, stream; path: the URL, redacted). */
    SL_PLUGIN_EV_PUSH_UP = 22,
    /** A push output was lost or could not connect (reason: why). */
    SL_PLUGIN_EV_PUSH_DOWN = 23,
} sl_plugin_event_type_t;

/**
 * An event. Every string may be NULL; all are valid only during the
 * on_event call (copy what you keep). Append-only: read fields past
 * `duration_ms` only when `size` covers them.
 */
typedef struct sl_plugin_event {
    size_t size;             /**< sizeof the struct as the host filled it */
    int type;                /**< an sl_plugin_event_type_t */
    const char *name;        /**< the event's wire name: "connect", "publish", ... */
    uint64_t id;             /**< unique and increasing within the process */
    uint64_t time_ms;        /**< wall clock, ms since the Unix epoch */
    const char *session_id;  /**< the client concerned */
    const char *proto;       /**< its protocol: "rtmp", "hls", ... */
    const char *remote_addr; /**< its address as text */
    int remote_port;
    const char *app;         /**< the scope path: "live" or "live/room1" */
    const char *stream;      /**< the stream name (without the scope) */
    const char *reason;      /**< why (disconnects, refusals) */
    const char *query;       /**< the client's query string */
    const char *path;        /**< a file (recordings) */
    uint64_t bytes_in, bytes_out;
    uint64_t duration_ms;    /**< of the session / publish / play that ended; of an rpc call */
    /* ---- valid from ABI 1.3 (test size) ---- */
    const char *method;      /**< rpc: the method called */
    const char *direction;   /**< rpc: "in" (client -> server) or "out" (server -> client) */
    const char *status;      /**< rpc: "ok", "error", "timeout", "too_big", "not_found", "closed" */
} sl_plugin_event_t;

/** What an admission asks for (sl_host_api_t.admission_info). */
typedef enum {
    SL_ADMISSION_CONNECT = 0,
    SL_ADMISSION_PUBLISH = 1,
    SL_ADMISSION_PLAY = 2,
    SL_ADMISSION_SO_CONNECT = 3, /**< joining a shared object (stream = its name); a plugin that
                                      does not know a kind should answer SL_EDECLINED */
} sl_admission_kind_t;

/** An admission request; strings may be NULL, valid until the admission is resumed. */
typedef struct sl_admission_info {
    size_t size;              /**< set by the host */
    int kind;                 /**< an sl_admission_kind_t */
    const char *app;          /**< scope path: "live", "live/room1" */
    const char *stream;       /**< stream name for publish/play */
    const char *transport;    /**< "rtmp", "rtsp", "webrtc", "hls", "http-flv", "srt" */
    const char *query;        /**< the client's query string */
    const char *username;     /**< credentials as the protocol found them */
    const char *password;
    const char *token;        /**< a bearer/JWT/round-trip token */
    const char *publish_mode; /**< "live", "record", "append" for publish */
    const char *remote_addr;  /**< the client's address, or NULL once it left */
} sl_admission_info_t;

/** A request routed to a plugin (sl_host_api_t.http_info); valid during the handler. */
typedef struct sl_http_request_info {
    size_t size;              /**< set by the host */
    const char *method;       /**< "GET", "POST", ... */
    const char *path;         /**< decoded path without the query: "/live/hello" */
    const char *query;        /**< raw query string without '?', "" when none */
    const char *app;          /**< the app the route was registered under: "live" */
    const char *subpath;      /**< path after "/{app}": "/hello" */
    const uint8_t *body;      /**< complete request body, may be NULL */
    size_t body_len;
    const char *remote_addr;
} sl_http_request_info_t;

/** Runs on a worker thread: blocking work allowed (files, HTTP, databases). */
typedef void (*sl_work_fn)(void *arg);
/** Runs on the loop after the work: status 0, or SL_ECLOSED when the host is stopping and the work never ran. */
typedef void (*sl_work_done_fn)(void *arg, int status);
/** A timer fired (on the loop). */
typedef void (*sl_timer_fn)(void *arg);
/**
 * An HTTP handler: answer with http_respond exactly once, now or later
 * from the loop, and return 0; or return SL_EDECLINED without answering to
 * let the next route try. Any other negative value answers 500.
 */
typedef int (*sl_http_handler_fn)(void *ud, sl_http_request_t *req);

/** A WebSocket route's callbacks (sl_host_api_t.ws_route). */
typedef struct sl_ws_handlers {
    size_t size; /**< sizeof(sl_ws_handlers_t) as the plugin saw it */
    /** A client connected; *conn may be set to per-connection state. Return nonzero to refuse (closed). */
    int (*on_open)(void *ud, sl_websocket_t *ws, const sl_http_request_info_t *req, void **conn);
    /** A whole message arrived (borrowed for the call). */
    void (*on_message)(void *ud, void *conn, sl_websocket_t *ws, const char *data, size_t len,
                       int is_text);
    /** The WebSocket closed, either side; ws is invalid afterwards. Free *conn here. */
    void (*on_close)(void *ud, void *conn, sl_websocket_t *ws);
} sl_ws_handlers_t;

/** Delivers an RPC answer: status 0 and a JSON text, or a negative SL_E* and NULL/an error text. */
typedef void (*sl_rpc_reply_fn)(void *reply_ctx, int status, const char *result_json);
/**
 * An RPC method handler: args_json is the call's arguments as JSON text
 * (borrowed). Call reply exactly once, now or later on the loop; return 0
 * (or a negative SL_E* without calling reply: the caller gets that error).
 */
typedef int (*sl_rpc_handler_fn)(void *ud, const char *method, const char *args_json,
                                 sl_rpc_reply_fn reply, void *reply_ctx);

/**
 * The answer to sl_host_api_t.invoke_client, exactly once (unless the
 * plugin stopped first): status 0 and the client's result as JSON;
 * SL_EDENIED and the client's error value as JSON; SL_ECLOSED (the client
 * left); another negative code when it did not answer in time (ETIMEDOUT)
 * or failed. result_json is borrowed for the call and may be NULL.
 */
typedef void (*sl_invoke_reply_fn)(void *ctx, int status, const char *result_json);

/** True when api holds field (the host's ABI minor is new enough for it). */
#define SL_HOST_HAS(api, field) \
    ((api)->size >= offsetof(sl_host_api_t, field) + sizeof((api)->field))

/**
 * The host API table. Filled by the host; const for the plugin.
 */
typedef struct sl_host_api {
    int abi_major;      /**< the host's SL_ABI_MAJOR */
    int abi_minor;      /**< the host's SL_ABI_MINOR */
    size_t size;        /**< sizeof(sl_host_api_t) in the host */
    const char *server_version; /**< SL_VERSION_STRING of the host */

    /* ---- identity, settings, logging (valid from ABI 1.0) ---- */

    /** The plugin's name in sluice.yml (borrowed, lives as long as h). */
    const char *(*name)(sl_host_t *h);
    /**
     * One of the plugin's settings (`plugins: - settings: {key: value}`), or
     * NULL when not set. Borrowed; valid until destroy (or the next reload).
     */
    const char *(*setting)(sl_host_t *h, const char *key);
    /** 1 when the plugin serves app (its `apps` list, or every app when empty); else 0. */
    int (*serves_app)(sl_host_t *h, const char *app);
    /** Writes one log line at level, tagged with the plugin's name. Any thread. */
    void (*log)(sl_host_t *h, int level, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;
    /** A static description of an SL_E* or libuv error code. */
    const char *(*strerror)(int err);
    /** Frees memory the host handed over (stats_json). NULL is fine. */
    void (*free)(void *p);

    /* ---- admission (valid from ABI 1.0) ---- */

    /** Fills *out (out->size is set by the host). 0, or SL_EINVAL. */
    int (*admission_info)(sl_admission_t *a, sl_admission_info_t *out);
    /**
     * Keeps the admission for a later answer: call this, start the work,
     * and return SL_EPENDING from sl_plugin_t.admit; then call
     * admission_resume exactly once, on the loop.
     */
    void (*admission_hold)(sl_admission_t *a);
    /**
     * The answer of a held admission: SL_OK (allow, the next check runs),
     * SL_EDECLINED (no opinion) or SL_EDENIED (refused; reason, may be NULL,
     * reaches the client). a is invalid afterwards. Harmless when the
     * client has gone meanwhile.
     */
    void (*admission_resume)(sl_admission_t *a, int result, const char *reason);
    /** The reason sent with a synchronous denial (copied); then return SL_EDENIED. */
    void (*admission_set_reason)(sl_admission_t *a, const char *reason);

    /* ---- timers and the worker pool (valid from ABI 1.0) ---- */

    /**
     * Starts a timer: cb(arg) after timeout_ms, then every repeat_ms when
     * repeat_ms > 0. *out (may be NULL) receives the timer for timer_stop.
     * The host stops every timer of the plugin before its stop callback.
     * 0 or SL_ENOMEM.
     */
    int (*timer_start)(sl_host_t *h, uint64_t timeout_ms, uint64_t repeat_ms, sl_timer_fn cb,
                       void *arg, sl_timer_t **out);
    /**
     * Stops and frees a timer (safe inside its own callback). A one-shot
     * timer (repeat_ms 0) is freed by the host after its callback returns:
     * do not stop it after it fired.
     */
    void (*timer_stop)(sl_timer_t *t);
    /**
     * Runs work(arg) on a worker thread, then done(arg, status) on the
     * loop. The host waits for queued work at shutdown before destroy.
     * 0 or SL_ENOMEM.
     */
    int (*work_queue)(sl_host_t *h, sl_work_fn work, sl_work_done_fn done, void *arg);

    /* ---- HTTP and WebSocket routes (valid from ABI 1.0) ---- */

    /**
     * Adds the route `/{app}{path}` for every app the plugin serves (path
     * starts with '/'; method NULL = any). Requests whose path equals it or
     * continues it with '/' reach cb(ud, req). Only from init. 0,
     * SL_EINVAL (bad path), SL_ENOTFOUND (HTTP is off), SL_ENOMEM.
     */
    int (*http_route)(sl_host_t *h, const char *method, const char *path, sl_http_handler_fn cb,
                      void *ud);
    /** Describes req (out->size is set by the host). 0 or SL_EINVAL. */
    int (*http_info)(sl_http_request_t *req, sl_http_request_info_t *out);
    /** A request header by name (case-insensitive), or NULL. */
    const char *(*http_header)(sl_http_request_t *req, const char *name);
    /**
     * Answers req with body (copied; content_type NULL =
     * application/octet-stream). req is invalid afterwards. 0 or
     * SL_ECLOSED (the client left; req is finished all the same).
     */
    int (*http_respond)(sl_http_request_t *req, int status, const char *content_type,
                        const void *body, size_t len);
    /**
     * Adds a WebSocket route `/{app}{path}` for every app the plugin serves,
     * like http_route. handlers is borrowed and must stay valid (static).
     */
    int (*ws_route)(sl_host_t *h, const char *path, const sl_ws_handlers_t *handlers, void *ud);
    /** Sends a text message (copied). 0, SL_ECLOSED, SL_ETOOBIG (queue full or too large). */
    int (*ws_send)(sl_websocket_t *ws, const char *text, size_t len);
    /** Starts closing a WebSocket (on_close follows). */
    void (*ws_close)(sl_websocket_t *ws, int code, const char *reason);

    /* ---- statistics and actions (valid from ABI 1.0) ---- */

    /**
     * Statistics as one JSON text, owned by the caller (free with
     * api->free): what = "server" (an object: version, uptime_ms, sessions,
     * total_sessions, streams), "sessions" (an array: id, proto,
     * remote_addr, app, stream, role, bytes_in, bytes_out) or "streams" (an
     * array: name, subscribers). NULL when what is unknown or on ENOMEM.
     */
    char *(*stats_json)(sl_host_t *h, const char *what);
    /** Disconnects the client session_id with a reason. 0 or SL_ENOTFOUND. */
    int (*kick)(sl_host_t *h, const char *session_id, const char *reason);
    /** Disconnects the publisher of app/stream (players are told). 0 or SL_ENOTFOUND. */
    int (*unpublish)(sl_host_t *h, const char *app, const char *stream);
    /**
     * Starts recording the live stream app/stream as saveas (NULL = the
     * stream name), appending when append. 0, SL_ENOTFOUND (no such live
     * stream, or no recorder running), SL_EBUSY (already recording),
     * SL_EINVAL.
     */
    int (*record_start)(sl_host_t *h, const char *app, const char *stream, const char *saveas,
                        int append);
    /** Stops a recording started by record_start. 0 or SL_ENOTFOUND. */
    int (*record_stop)(sl_host_t *h, const char *app, const char *stream);
    /**
     * Looks up a service by name and version (the public ones are described
     * under include/sluice/services/). Returns its table (borrowed) and its
     * state in *ud, or NULL when not running or too old.
     */
    const void *(*service_get)(sl_host_t *h, const char *name, int major, int min_minor,
                               void **ud);

    /* ---- RPC methods (valid from ABI 1.1) ---- */

    /**
     * Registers handler for method (a name of 1..63 characters, unique in
     * the server). The registry is the service "rpc" 1.0, which client RPC
     * and shared objects call. 0, SL_EBUSY (taken), SL_EINVAL, SL_ENOMEM.
     * Handlers are removed when the plugin stops.
     */
    int (*rpc_register)(sl_host_t *h, const char *method, sl_rpc_handler_fn cb, void *ud);
    /** Removes a method of this plugin (no-op when absent). */
    void (*rpc_unregister)(sl_host_t *h, const char *method);

    /* ---- server -> client calls (valid from ABI 1.3) ---- */

    /**
     * Calls method on the client session_id with the arguments in
     * params_json (a JSON array, NULL = none) and waits up to timeout_ms
     * (1..300000) for its answer, which reply receives later, never inside
     * this call (see sl_invoke_reply_fn). 0; SL_ENOTFOUND (no such client),
     * SL_EDECLINED (its protocol cannot be called: only RTMP can today),
     * SL_EBUSY (too many calls waiting), SL_EINVAL, SL_ENOMEM: then reply
     * is never called. Answers still due when the plugin stops are
     * dropped (reply is not called after stop).
     */
    int (*invoke_client)(sl_host_t *h, const char *session_id, const char *method,
                         const char *params_json, uint64_t timeout_ms, sl_invoke_reply_fn reply,
                         void *ctx);
} sl_host_api_t;

#ifdef __cplusplus
}
#endif
#endif
