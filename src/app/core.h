/*
 * The core: what every protocol and module shares on the loop thread. The
 * loop, the (read-only) configuration, the stream hub, and the registry of
 * live sessions of every protocol, with the counters the API and metrics
 * read. One core per process; protocols get it at start and keep a
 * borrowed pointer.
 *
 * Sessions: each protocol embeds an sl_session_t at the start of its own
 * connection struct, fills it, and registers it for its lifetime. The
 * session's ops let the core (the API, admin actions, shutdown) act on a
 * client without knowing its protocol.
 */
#ifndef SL_APP_CORE_H
#define SL_APP_CORE_H

#include <stdint.h>
#include <uv.h>

#include "base/budget.h"
#include "base/config.h"
#include "base/list.h"
#include "base/log.h"
#include "base/map.h"
#include "media/stream.h"

typedef enum {
    SL_ROLE_NONE = 0,
    SL_ROLE_PUBLISHER = 1,
    SL_ROLE_SUBSCRIBER = 2,
} sl_role_t;

typedef struct sl_session sl_session_t;

/*
 * Resource budgets a peer can exceed, counted per kind since start and
 * printed by /metrics as sluice_budget_exceeded_total{budget="<name>"}.
 * One family for every protocol: code that refuses or closes a peer for a
 * budget calls sl_core_budget_exceeded() with its kind. Append new kinds
 * before SL_BUDGET_COUNT and name them in core.c's table.
 */
typedef enum {
    SL_BUDGET_CONNECTIONS = 0,           /* server.max_connections: refused at accept */
    SL_BUDGET_CONNECTIONS_PER_ADDRESS,   /* server.max_connections_per_address: refused */
    SL_BUDGET_PENDING_CONNECTIONS,       /* server.max_pending_connections: oldest displaced */
    SL_BUDGET_HTTP_REQUEST_TIMEOUT,      /* http.request_timeout: 408 and close */
    SL_BUDGET_HTTP_PENDING_BYTES,        /* http.stream_max_pending_bytes on a WebSocket's output */
    SL_BUDGET_RTMP_PARTIAL,              /* partially received RTMP messages (rtmp code) */
    SL_BUDGET_RTMP_CONNECT_TIMEOUT,      /* rtmp.connect_timeout: closed before connect */
    SL_BUDGET_HLS_SESSIONS,              /* hls.max_sessions[_per_address]: 429 for a new player */
    SL_BUDGET_COUNT
} sl_budget_t;

/* How a publisher asked to publish (Red5's IClientStream modes). */
typedef enum {
    SL_PUBLISH_LIVE = 0,   /* live only */
    SL_PUBLISH_RECORD = 1, /* live and recorded to a new file */
    SL_PUBLISH_APPEND = 2, /* live and appended to the existing recording */
} sl_publish_mode_t;

/**
 * The answer to a server -> client call (sl_session_ops_t.invoke), exactly
 * once: status 0 and the client's result as a JSON text; SL_EDENIED and
 * the client's error (a JSON text: what it sent with its _error); status 0
 * and result_json NULL when the message was sent and the protocol has no
 * answer for it (Red5 SDK's `send` over WebRTC: fire-and-forget); UV_ETIMEDOUT
 * (no answer in time); SL_ECLOSED (the client left first); SL_ENOMEM.
 * result_json is borrowed for the call (NULL when there is none).
 */
typedef void (*sl_session_invoke_cb)(void *ud, int status, const char *result_json);

typedef struct sl_session_ops {
    /** Disconnects the client with a reason (the protocol tells it how it can). */
    void (*kick)(sl_session_t *s, const char *reason);
    /** Graceful shutdown: tell the client the stream/connection is closing, then close. */
    void (*shutdown)(sl_session_t *s);
    /** Messages queued for the client and not yet written (may be NULL: 0). */
    uint64_t (*pending)(const sl_session_t *s);
    /**
     * Optional (NULL: the protocol cannot call its clients). Calls method
     * on the client with the arguments of params_json (a JSON array;
     * borrowed, converted now) and waits up to timeout_ms for its answer.
     * Returns 0 when the call was sent: cb then comes exactly once, never
     * from inside this call (also when the client leaves: SL_ECLOSED).
     * Errors, cb never called: SL_EINVAL (params not a JSON array, a method
     * name the protocol cannot carry), SL_EBUSY (too many calls waiting on
     * this client), SL_ECLOSED (not connected), SL_ENOMEM.
     */
    int (*invoke)(sl_session_t *s, const char *method, const char *params_json,
                  uint64_t timeout_ms, sl_session_invoke_cb cb, void *ud);
} sl_session_ops_t;

struct sl_session {
    const sl_session_ops_t *ops; /* protocol callbacks (static) */
    char id[16];                 /* public id, e.g. "S9YD7FMFXK9WG" */
    const char *proto;           /* "rtmp", ... (static string) */
    char remote_addr[64];        /* peer address as text */
    int remote_port;             /* peer port */
    char *app;                   /* scope path ("live", "live/room1"), owned, NULL before connect */
    char *stream;                /* stream name, owned, NULL when none */
    char *query;                 /* the client's query string (credentials, tokens), owned */
    sl_role_t role;              /* what it does now */
    uint64_t role_start_ms;      /* wall clock when the current role began */
    uint64_t bytes_in, bytes_out;/* wire bytes */
    uint64_t msgs_in, msgs_out;  /* protocol messages */
    uint64_t frames_dropped;     /* media frames dropped for this subscriber */
    uint64_t start_ms;           /* wall clock at accept */
    sl_log_ctx_t log;            /* logging context pointing at the fields above */
    sl_list_t link;              /* in core->sessions */
    struct sl_core *core;        /* registry it is in (set by register) */
    struct sl_app_stats *app_stats; /* its app's counters once the app is set */
    int publish_mode;            /* while publishing: sl_publish_mode_t (live, record, append) */
    int addr_counted;            /* counted in core->addr_conns (by sl_session_accept) */
    int pending;                 /* in core->pending: accepted, not yet admitted */
    sl_list_t pending_link;      /* in core->pending, oldest first */
    int close_quietly;           /* closed by a budget whose log line core writes (rate-limited):
                                    the protocol logs its close at debug only */
    int socketless;              /* set before register: no socket of its own (an HLS player);
                                    listed like any session, not counted as a connection */
    int in_scopes;               /* counted in core->scopes under app (sl_session_set_app) */
};

typedef struct sl_app_stats sl_app_stats_t;

typedef struct sl_core {
    uv_loop_t *loop;             /* the loop (borrowed) */
    const sl_config_t *cfg;      /* configuration (borrowed, read-only); a reload points it at
                                    a new one, and every one stays allocated until exit, so a
                                    pointer taken from it never dangles (main.c reload_apply) */
    sl_hub_t *hub;               /* live streams (owned) */
    sl_list_t sessions;          /* every live session */
    size_t n_sessions;           /* every registered session, connections or not */
    size_t n_socketless;         /* of those, sessions without a socket (HLS players): they
                                    have their own budgets and do not count against
                                    server.max_connections (sl_core_connections) */
    uint64_t total_sessions;     /* accepted since start */
    uint64_t start_ms;           /* wall clock at start */
    int shutting_down;           /* refuse new work */
    struct sl_events *events;    /* the event bus (events.c), created on first use */
    struct sl_admission *admission; /* admission checks (admission.c), created on first use */
    struct sl_listeners *listeners; /* every socket protocols listen on (listeners.c) */
    struct sl_services *services; /* the service registry (services.c): how parts reach each
                                     other; created on first registration */
    struct sl_workers *workers;  /* event-loop workers (net/workers.h, server.workers), set by
                                    main before the protocols start; NULL with one loop */
    uint64_t closed_bytes_in;    /* bytes of sessions already gone (totals = these + live) */
    uint64_t closed_bytes_out;
    uint64_t closed_msgs_in;
    uint64_t closed_msgs_out;
    uint64_t closed_frames_dropped;
    size_t max_sessions;         /* most sessions at once */
    sl_byte_pool_t rtmp_partial; /* bytes of half-received RTMP messages, every connection
                                    (limit rtmp.max_partial_bytes_total; rtmp_conn.c) */
    sl_map_t app_stats;          /* app name -> sl_app_stats_t* */
    sl_map_t addr_conns;         /* remote address -> sl_addr_conns_t*, while it has connections */
    sl_map_t scopes;             /* scope path ("live", "live/room1") -> sessions in it or below
                                    (as uintptr_t), while it has any: app/room start and stop */
    sl_list_t pending;           /* sessions accepted but not admitted yet, oldest first */
    size_t n_pending;
    uint64_t budget_exceeded[SL_BUDGET_COUNT]; /* times each budget was exceeded since start */
    uint64_t budget_log_ms[SL_BUDGET_COUNT];   /* loop time of the last server-wide log line */
    uint64_t budget_unlogged[SL_BUDGET_COUNT]; /* exceeded since that line without a line */
} sl_core_t;

/* Per-app counters (Red5's ScopeStatistics). */
struct sl_app_stats {
    uint64_t creation_ms;        /* first use */
    size_t active_connections;
    uint64_t total_connections;
    size_t max_connections;
    uint64_t closed_bytes_in, closed_bytes_out; /* of sessions already gone */
    uint64_t closed_msgs_in, closed_msgs_out;
    sl_map_t rooms;              /* room path -> (void*)1, every room ever used */
};

/** Initialises the core. 0 or SL_ENOMEM. */
int sl_core_init(sl_core_t *core, uv_loop_t *loop, const sl_config_t *cfg);
/** Frees the hub; all sessions must be gone. */
void sl_core_cleanup(sl_core_t *core);

/**
 * Fills the common fields of a new session (id, proto, start time, log
 * context) and registers it. Never fails.
 */
void sl_session_register(sl_core_t *core, sl_session_t *s, const sl_session_ops_t *ops,
                         const char *proto);
/**
 * Admission of a freshly accepted connection (RTMP, RTMPS, HTTP, HTTPS),
 * called once right after sl_session_register() and
 * sl_session_set_peer(). In order:
 *  1. per address: more than server.max_connections_per_address open
 *     connections from remote_addr refuses this one;
 *  2. pending share: when server.max_pending_connections connections have
 *     been accepted and not admitted yet (no complete HTTP request, no
 *     accepted RTMP connect), the oldest of them is closed (kicked, quietly)
 *     to make room: slow or silent peers cannot hold more than that share of
 *     the server, and cannot keep a fresh client out for longer than it
 *     takes to open that many connections;
 *  3. total: more than server.max_connections sessions refuses this one.
 * A connection that passes is counted for its address and joins the
 * pending list until sl_session_admitted(). Every refusal or displacement
 * is counted (sluice_budget_exceeded_total) and logged at most once per
 * address (per address) or per server (the others) every 10 s, with the
 * number not logged in between. Returns 0, or SL_EBUSY with *why (static
 * text) set: the caller closes the connection at once, logging only at
 * debug, and may answer in its protocol (HTTP 503).
 */
int sl_session_accept(sl_core_t *core, sl_session_t *s, const char **why);
/**
 * The session's peer completed what proves it is a client (a whole HTTP
 * request; an accepted RTMP connect): it leaves the pending share.
 * Idempotent; a no-op for sessions that were never pending.
 */
void sl_session_admitted(sl_session_t *s);
/**
 * Counts one excess of budget b. Returns 1 when the caller should log it
 * now: the first time, and then at most once every 10 s per budget for
 * the whole server; *unlogged (may be NULL) receives how many excesses
 * went unlogged before this one. Per-connection budgets whose close is
 * logged by the connection itself may ignore the result.
 */
int sl_core_budget_exceeded(sl_core_t *core, sl_budget_t b, uint64_t *unlogged);
/** The label of a budget in /metrics ("connections_per_address", ...). */
const char *sl_budget_name(sl_budget_t b);
/**
 * Open connections: registered sessions that hold a socket, which is what
 * server.max_connections bounds. Sessions flagged socketless (HLS players,
 * kept alive by separate requests) are not connections: they have their
 * own budgets (hls.max_sessions, hls.max_sessions_per_address).
 */
size_t sl_core_connections(const sl_core_t *core);
/** Unregisters and frees the session's owned fields (not the session itself). */
void sl_session_unregister(sl_core_t *core, sl_session_t *s);
/**
 * Sets the session's app path / stream / query (copies; NULL clears). 0 or
 * SL_ENOMEM. Setting the app (of a registered session) also enters the
 * session into its scope and every scope above it ("live/a/b": "live",
 * "live/a", "live/a/b"): a scope that had no session emits app_start (the
 * app, the path's first segment) or room_start (a room below it), outermost
 * first, with the session's fields and app = that scope. The session
 * leaves them when its app changes or at sl_session_unregister: a scope
 * whose last session left emits room_stop / app_stop, innermost first.
 * Setting the app counts the session in its app's statistics
 * (once per session).
 */
int sl_session_set_app(sl_session_t *s, const char *app);
int sl_session_set_query(sl_session_t *s, const char *query);
/** Fills remote_addr/remote_port from an accepted socket (left empty/0 when unknown). */
void sl_session_set_peer(sl_session_t *s, const uv_tcp_t *tcp);
/** Sets the role and stamps role_start_ms. */
void sl_session_set_role(sl_session_t *s, sl_role_t role);
/** The app statistics of a top-level app name, created on demand; NULL on ENOMEM. */
sl_app_stats_t *sl_core_app_stats(sl_core_t *core, const char *app_name);
int sl_session_set_stream(sl_session_t *s, const char *stream);
/** Finds a session by public id; NULL when absent. */
sl_session_t *sl_core_find_session(sl_core_t *core, const char *id);

/**
 * Resolves a scope path ("live" or "live/room1/...") to its app's
 * configuration: the first path segment names the app. Returns NULL when
 * no such app exists or it is disabled.
 */
const sl_app_config_t *sl_core_app(const sl_core_t *core, const char *scope_path);

/**
 * Checks a scope or stream name segment list for safety: non-empty
 * segments of printable characters without "..", "\\" or control bytes,
 * at most max_len bytes in all, and valid UTF-8 (no overlong forms,
 * surrogates or C1 controls), so that every name can be shown in JSON
 * (API lists, events) and logs as it is. Returns 1 when acceptable.
 */
int sl_name_is_safe(const char *name, size_t max_len);

/**
 * Checks a query string ("a=1&b=x%20y", borrowed) before any value of it
 * is decoded: returns 0 when it holds a control byte (0x00-0x1f, 0x7f),
 * raw or percent-encoded. %00 would otherwise cut a decoded C string
 * short ("password=secret%00x" read as "secret"), and no credential,
 * token or name legitimately holds one. 1 when acceptable (NULL is).
 */
int sl_query_is_safe(const char *query);

#endif
