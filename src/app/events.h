/*
 * The event bus: typed events about sessions, streams and recordings,
 * delivered synchronously on the loop thread to listeners in a visible
 * order (priority, then name). Every integration surface is a listener:
 * the WebSocket event stream, webhooks, exec hooks, plugins, and in
 * cluster mode Redis pub/sub.
 *
 * Listeners must not block and must not keep pointers into the event
 * after they return (copy what they need); an event's strings are valid
 * only during delivery. A listener may emit further events (they are
 * delivered after the current one finishes, never nested) and may
 * unsubscribe itself.
 */
#ifndef SL_APP_EVENTS_H
#define SL_APP_EVENTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct sl_core sl_core_t;
typedef struct sl_session sl_session_t;

typedef enum {
    SL_EV_CONNECT = 0,
    SL_EV_DISCONNECT,
    SL_EV_PUBLISH,
    SL_EV_UNPUBLISH,
    SL_EV_PLAY,
    SL_EV_PLAY_STOP,
    SL_EV_RECORD_START,
    SL_EV_RECORD_DONE,
    SL_EV_UPLOAD_DONE,
    SL_EV_UPLOAD_FAILED,
    SL_EV_SO_UPDATE,
    SL_EV_RPC,
    SL_EV_STREAM_IDLE,
    SL_EV_NODE_UP,
    SL_EV_NODE_DOWN,
    SL_EV_RECORD_DELETED,    /* the cleaner removed a recording (path, reason age|quota) */
    SL_EV_APP_START,         /* an app got its first session (app; the session that opened it) */
    SL_EV_APP_STOP,          /* an app's last session left */
    SL_EV_ROOM_START,        /* a room (app = "live/room1") got its first session */
    SL_EV_ROOM_STOP,         /* a room's last session left */
    SL_EV_PULL_UP,           /* a pulled stream's source connected (modules/restream) */
    SL_EV_PULL_DOWN,         /* a pulled stream's source was lost or failed (reason) */
    SL_EV_PUSH_UP,           /* a push output connected to its destination */
    SL_EV_PUSH_DOWN,         /* a push output was lost or failed (reason) */
    SL_EV_COUNT
} sl_event_type_t;

/*
 * The events an output with no selection of its own sends: every type but
 * the scope lifetimes (app/room start and stop), which came later (plugin
 * ABI 1.2), and rpc (one per call: as many as the clients make), which the
 * WebSocket stream and webhooks send only when asked
 * by name, so that the streams their receivers already parse do not change.
 * so_update is opt-in too: it comes once per shared object change (up to
 * so_max_updates_per_sec per client), which would turn a chat into a webhook
 * outbox row per message for a receiver that never asked for it. So are the
 * restream events (pull_up/down, push_up/down): a source that flaps would
 * fill an outbox that never asked for them.
 * Plugins' on_event and the bus's listeners see every event.
 */
#define SL_EV_DEFAULT_MASK                                                    \
    (((1u << SL_EV_COUNT) - 1) & ~((1u << SL_EV_APP_START) | (1u << SL_EV_APP_STOP) | \
                                   (1u << SL_EV_ROOM_START) | (1u << SL_EV_ROOM_STOP) | \
                                   (1u << SL_EV_SO_UPDATE) | (1u << SL_EV_RPC) | \
                                   (1u << SL_EV_PULL_UP) | (1u << SL_EV_PULL_DOWN) | \
                                   (1u << SL_EV_PUSH_UP) | (1u << SL_EV_PUSH_DOWN)))

typedef struct sl_event {
    sl_event_type_t type;
    uint64_t id;             /* unique, increasing within the process (set by emit) */
    uint64_t time_ms;        /* wall clock (set by emit) */
    const char *session_id;  /* the client concerned, or NULL */
    const char *proto;       /* its protocol */
    const char *remote_addr;
    int remote_port;
    const char *app;         /* scope path */
    const char *stream;      /* stream name (without the scope) */
    const char *reason;      /* why (disconnects, refusals), or NULL */
    const char *query;       /* the client's query string, or NULL */
    const char *path;        /* a file (recordings), or NULL */
    uint64_t bytes_in, bytes_out;
    uint64_t duration_ms;    /* of the session / publish / play that ended; of an rpc call */
    const char *method;      /* rpc: the method called, or NULL */
    const char *direction;   /* rpc: "in" (client -> server) or "out" (server -> client) */
    const char *status;      /* rpc: "ok", "error", "timeout", "too_big", "not_found", "closed" */
} sl_event_t;

typedef void (*sl_event_cb)(const sl_event_t *ev, void *ud);

/*
 * When a listener hears an event, by what it does with it: every listener
 * of an earlier phase has seen the event before any of a later one; within
 * a phase, listeners run by name. Named phases instead of numbers, so that
 * a new listener says what it is and lands in the right place.
 */
typedef enum {
    SL_EV_PHASE_STATE = 50,   /* keeps state the event changes (recorder, HLS segmenter,
                                 round-trip invalidation): before anyone reports it */
    SL_EV_PHASE_QUEUE = 60,   /* writes durable work from the event (cloud upload queue) */
    SL_EV_PHASE_STREAM = 100, /* live exports to clients (the WebSocket event stream) */
    SL_EV_PHASE_NOTIFY = 200, /* notifications out of the process: webhooks, exec hooks */
    SL_EV_PHASE_PLUGIN = 300, /* external plugins' listeners */
} sl_event_phase_t;

/** The phase's name for listings ("state", "queue", ...); "?" when unknown. */
const char *sl_event_phase_name(int phase);

/** The event's wire name ("connect", "publish", ...). */
const char *sl_event_name(sl_event_type_t type);
/** Parses a wire name; -1 when unknown. */
int sl_event_parse(const char *name);

/**
 * Adds a listener in phase (an sl_event_phase_t); within a phase,
 * listeners run by name. Returns a positive listener id, or SL_ENOMEM.
 */
int sl_events_subscribe(sl_core_t *core, const char *name, sl_event_phase_t phase, sl_event_cb cb,
                        void *ud);
/**
 * Calls each(arg, name, phase) for every live listener in delivery order
 * (the API lists them).
 */
void sl_events_each(sl_core_t *core, void (*each)(void *arg, const char *name, int phase),
                    void *arg);
/** Removes a listener by id (safe inside a delivery). */
void sl_events_unsubscribe(sl_core_t *core, int id);
/**
 * Delivers ev to every listener (assigning id and time). ev and its strings
 * are borrowed for the call. Re-entrant emits are queued and delivered in
 * order after the current delivery.
 */
void sl_events_emit(sl_core_t *core, sl_event_t *ev);
/** Fills an event from a session (id, proto, address, app, stream, bytes, duration) and emits it. */
void sl_events_emit_session(sl_core_t *core, const sl_session_t *s, sl_event_type_t type,
                            const char *reason);
/**
 * Serialises an event as one JSON object (NUL-terminated, owned by the
 * caller: sl_free). NULL on ENOMEM.
 */
char *sl_event_to_json(const sl_event_t *ev, const char *node);
/** Frees every listener (at shutdown). */
void sl_events_cleanup(sl_core_t *core);

#endif
