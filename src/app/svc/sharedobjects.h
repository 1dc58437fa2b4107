/*
 * The service "sharedobjects" 1.0: Remote Shared Objects (Red5's
 * ISharedObject, RED5-COMPAT.md §5), provided by the module
 * src/modules/shared_objects while it runs. A shared object lives in a scope
 * ("app" or "app/room") under a name; it holds attributes (string key ->
 * value), a version that every change bumps, and a persistent flag
 * (persistent objects are kept in the store and restored at start).
 *
 * Transports (RTMP now; the JSON WebSocket and data channel forms later)
 * are thin adapters: each client's membership of an object is a
 * subscriber, made by connect() with a listener whose one callback
 * receives batches of changes in order, already shaped the way Red5 sends
 * them (the writer gets SL_SO_SUCCESS for its own sets, everyone else
 * SL_SO_CHANGE). The API and in-process code write with a NULL subscriber.
 *
 * Values are jansson json_t: the browser form is JSON, the store keeps
 * JSON text, the REST API speaks JSON, and json_t is refcounted so one
 * value is shared by every subscriber's batch without copies. The RTMP
 * adapter converts AMF0/AMF3 to and from it; what JSON cannot hold is
 * mapped (AMF Date -> number of ms, undefined -> null, typed objects lose
 * their class name, XML and ByteArray -> string).
 *
 *     void *ud;
 *     const sl_so_service_t *so = sl_service_get(core, SL_SO_SERVICE, 1, 0, &ud);
 *     sl_so_sub_t *sub;
 *     if (so && so->connect(ud, "live", "chat", 0, &req, &sub) == 0) ...
 *
 * Every call runs on the loop thread. Strings are borrowed for the call;
 * json_t values passed in are borrowed (the module takes its own
 * references); values handed to listeners are borrowed for the callback.
 */
#ifndef SL_APP_SVC_SHAREDOBJECTS_H
#define SL_APP_SVC_SHAREDOBJECTS_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/errors.h"

#define SL_SO_SERVICE "sharedobjects"
#define SL_SO_SERVICE_MAJOR 1
#define SL_SO_SERVICE_MINOR 0

/** The longest object name and scope, in bytes. */
#define SL_SO_NAME_MAX 255
#define SL_SO_SCOPE_MAX 255
/** The longest attribute key or message handler name, in bytes. */
#define SL_SO_KEY_MAX 255

typedef struct json_t json_t;
typedef struct sl_so_sub sl_so_sub_t;

/** What one change says (the RTMP event it becomes is in rtmp_so.h). */
typedef enum {
    SL_SO_INITIAL = 0, /* first batch after connect: the client is in (then CHANGEs for the data) */
    SL_SO_CHANGE,      /* key = value (someone else's write, or initial data) */
    SL_SO_SUCCESS,     /* the receiver's own write of key was applied */
    SL_SO_DELETE,      /* key was removed */
    SL_SO_CLEAR,       /* every attribute was removed */
    SL_SO_SEND,        /* message: key = handler, value = JSON array of arguments */
    SL_SO_STATUS,      /* an error for this subscriber: key = Red5 code, value = level string */
} sl_so_kind_t;

/** One change. For input, SUCCESS/INITIAL/STATUS are not accepted. */
typedef struct sl_so_change {
    sl_so_kind_t kind;
    const char *key;     /* attribute, handler or status code; NULL for CLEAR/INITIAL */
    json_t *value;       /* borrowed; CHANGE: the value (NULL = delete), SEND: array or NULL */
} sl_so_change_t;

/**
 * A transport's side of one subscriber. on_changes receives a batch: the
 * object's name, its version after the batch, its persistent flag, and
 * the changes in order (borrowed for the call). It must not call back
 * into the service for the same object (queue what it has to say). When
 * the object goes away under a subscriber (server shutdown), on_closed
 * runs once and the subscriber is freed; after disconnect() nothing runs.
 */
typedef struct sl_so_listener {
    void (*on_changes)(void *ud, const char *name, uint32_t version, int persistent,
                       const sl_so_change_t *changes, size_t n);
    void (*on_closed)(void *ud, const char *name);
} sl_so_listener_t;

/** Who connects: the client's session, for limits, events and admission. */
typedef struct sl_so_client {
    const char *session_id; /* the client's session id (events, API) */
    const char *proto;      /* "rtmp", "ws", ... */
    const void *owner;      /* the transport's connection: one subscriber per owner and object */
    const sl_so_listener_t *listener;
    void *listener_ud;      /* passed to the listener (usually the connection) */
} sl_so_client_t;

/** Red5's SoStatistics (RED5-COMPAT.md §1.3). */
typedef struct sl_so_stats {
    int persistent;
    uint32_t version;
    uint64_t active_listeners, total_listeners, max_listeners;
    uint64_t total_changes, total_deletes, total_sends;
    uint64_t n_keys, data_bytes; /* attributes and their JSON size now */
} sl_so_stats_t;

typedef struct sl_so_service {
    /**
     * Joins the object scope/name, creating it (with the persistent flag)
     * when absent. On success *out is the subscriber (valid until
     * disconnect or on_closed) and the listener has already received the
     * initial batch (INITIAL then one CHANGE per attribute). Returns 0,
     * SL_EBUSY (the object exists with the other persistent flag: Red5's
     * SharedObject.BadPersistence), SL_ETOOBIG (objects per app or
     * subscribers per object reached), SL_EINVAL (bad name or scope, or the
     * app is not configured), SL_EDENIED (objects are disabled for the
     * app), SL_EBUSY also when owner is already subscribed, SL_ENOMEM.
     */
    int (*connect)(void *ud, const char *scope, const char *name, int persistent,
                   const sl_so_client_t *client, sl_so_sub_t **out);
    /** Leaves; frees a non-persistent object with its last subscriber. NULL is a no-op. */
    void (*disconnect)(void *ud, sl_so_sub_t *sub);
    /**
     * Leaves every object owner joined (a transport's connection closing);
     * no listener runs. Safe inside a delivery.
     */
    void (*disconnect_owner)(void *ud, const void *owner);
    /** The subscriber of owner on scope/name, or NULL. */
    sl_so_sub_t *(*find)(void *ud, const char *scope, const char *name, const void *owner);
    /**
     * Applies changes (CHANGE with value NULL = delete, DELETE, CLEAR, SEND)
     * as one update: every limit is checked first and nothing is applied
     * when one fails; then the version is bumped once and one batch reaches
     * every subscriber in order. sub is the writer, or NULL for the server
     * (then scope/name name an existing object; with sub they are ignored).
     * The writer's confirmation (SL_SO_SUCCESS) of a persistent object comes
     * once the store has committed it. Returns 0, SL_ENOTFOUND (no such
     * object), SL_ETOOBIG (keys, value or object size), SL_ESLOW (the
     * writer's updates per second), SL_EINVAL (a bad change), SL_ENOMEM.
     */
    int (*apply)(void *ud, sl_so_sub_t *sub, const char *scope, const char *name,
                 const sl_so_change_t *changes, size_t n);
    /**
     * The object's data: *data gets a new reference to a copy (caller
     * json_decref) or stays untouched when data is NULL; stats filled when
     * not NULL. 0 or SL_ENOTFOUND.
     */
    int (*get)(void *ud, const char *scope, const char *name, json_t **data, sl_so_stats_t *stats);
    /** Calls each(arg, name) for the objects of scope, in no particular order. */
    void (*list)(void *ud, const char *scope, void (*each)(void *arg, const char *name),
                 void *arg);
} sl_so_service_t;

/**
 * The Red5 status code a client is told for an error of connect or apply
 * (sent as an SO status event with level "error").
 */
static inline const char *sl_so_status_code(int err)
{
    switch (err) {
    case SL_EBUSY:
        return "SharedObject.BadPersistence";
    case SL_EDENIED:
        return "SharedObject.NoWriteAccess";
    case SL_ETOOBIG:
        return "SharedObject.LimitExceeded";
    case SL_ESLOW:
        return "SharedObject.UpdateRateExceeded";
    default:
        return "SharedObject.ObjectCreationFailed";
    }
}

#endif
