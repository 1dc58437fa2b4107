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

typedef struct sl_core sl_core_t;
typedef struct sl_rpc_json sl_rpc_json_t;

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
