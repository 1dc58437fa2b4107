/*
 * Calls from browsers (issue 15): Red5 HTML5 SDK's callServer() message
 * `{"callAdapter":{"method":M,"arguments":[...]},"id":I,"async":true}`,
 * taken through the "webrtc-ws" service (a session's signalling WebSocket
 * or its `red5pro` data channel) and routed through the "rpc_router"
 * service; the answer goes back on the same carrier as the SDK's async
 * reply `{"id":I,"async":true,"data":R}` or `{"id":I,"async":true,
 * "error":"reason"}`. See rpc_json.c and docs/integration/rpc.md.
 */
#ifndef SL_MODULES_RPC_RPC_JSON_H
#define SL_MODULES_RPC_RPC_JSON_H

#include <stddef.h>

typedef struct sl_core sl_core_t;
typedef struct sl_rpc_json sl_rpc_json_t;

#define SL_RPC_JSON_ID_MAX 64 /* the SDK's ids are 1..4 hex digits */

/** One parsed callAdapter message (sl_rpc_json_parse). */
typedef struct sl_rpc_json_call {
    int has_id;                       /* the message had a usable id (string <= 64 bytes, integer) */
    int id_is_num;                    /* it was an integer: echo it back as one */
    char id[SL_RPC_JSON_ID_MAX + 1];  /* as text */
    char method[256];                 /* 1..255 bytes, no NUL inside */
    char *params_json;                /* a JSON array (sl_malloc'd; sl_rpc_json_call_cleanup) */
} sl_rpc_json_call_t;

/**
 * Parses the SDK's call {"callAdapter":{"method","arguments"},"id","async"}
 * from text[0..len) (at most 1 MB; the carrier caps it first). `arguments`:
 * an array as it is, another non-null value as [value], none/null as [].
 * Returns 0 (out filled; cleanup frees params_json), SL_EINVAL (not that
 * message, or no usable method: out->id is still filled when the message
 * had one, for the error reply), SL_ETOOBIG, SL_ENOMEM. out is always
 * safe to clean up.
 */
int sl_rpc_json_parse(const char *text, size_t len, sl_rpc_json_call_t *out);
/** Frees what sl_rpc_json_parse allocated (NULL-safe, idempotent). */
void sl_rpc_json_call_cleanup(sl_rpc_json_call_t *c);

/**
 * Starts the adapter: registers the key "callAdapter" on the "webrtc-ws"
 * service now or, when that service is not registered yet (the WebRTC
 * protocol starts after modules), from a timer that retries until it is.
 * Returns the adapter (free with sl_rpc_json_stop) or NULL on ENOMEM.
 */
sl_rpc_json_t *sl_rpc_json_start(sl_core_t *core);

/**
 * Stops it: removes its handler when the service is still the one it
 * registered with; calls still in flight are orphaned (their answers,
 * which the router still delivers exactly once, are dropped and freed).
 * Frees itself once its timer is closed. NULL is a no-op.
 */
void sl_rpc_json_stop(sl_rpc_json_t *j);

#endif
