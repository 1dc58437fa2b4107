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

typedef struct sl_session_ops {
    /** Disconnects the client with a reason (the protocol tells it how it can). */
    void (*kick)(sl_session_t *s, const char *reason);
    /** Graceful shutdown: tell the client the stream/connection is closing, then close. */
    void (*shutdown)(sl_session_t *s);
    /** Messages queued for the client and not yet written (may be NULL: 0). */
    uint64_t (*pending)(const sl_session_t *s);
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
};

typedef struct sl_app_stats sl_app_stats_t;

typedef struct sl_core {
    uv_loop_t *loop;             /* the loop (borrowed) */
    const sl_config_t *cfg;      /* configuration (borrowed, read-only) */
    sl_hub_t *hub;               /* live streams (owned) */
    sl_list_t sessions;          /* every live session */
    size_t n_sessions;
    uint64_t total_sessions;     /* accepted since start */
    uint64_t start_ms;           /* wall clock at start */
    int shutting_down;           /* refuse new work */
    struct sl_events *events;    /* the event bus (events.c), created on first use */
    struct sl_admission *admission; /* admission checks (admission.c), created on first use */
    struct sl_api *api;          /* the Server API while it runs (set by sl_api_start), else
                                    NULL: modules add /api/v1 endpoints through it (borrowed) */
    uint64_t closed_bytes_in;    /* bytes of sessions already gone (totals = these + live) */
    uint64_t closed_bytes_out;
    uint64_t closed_msgs_in;
    uint64_t closed_msgs_out;
    uint64_t closed_frames_dropped;
    size_t max_sessions;         /* most sessions at once */
    sl_map_t app_stats;          /* app name -> sl_app_stats_t* */
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
/** Unregisters and frees the session's owned fields (not the session itself). */
void sl_session_unregister(sl_core_t *core, sl_session_t *s);
/**
 * Sets the session's app path / stream / query (copies; NULL clears). 0 or
 * SL_ENOMEM. Setting the app counts the session in its app's statistics
 * (once per session).
 */
int sl_session_set_app(sl_session_t *s, const char *app);
int sl_session_set_query(sl_session_t *s, const char *query);
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
 * at most max_len bytes in all. Returns 1 when acceptable.
 */
int sl_name_is_safe(const char *name, size_t max_len);

#endif
