/*
 * Service "rpc_router" 1.0, provided by the RPC module (src/modules/rpc)
 * while it runs: where a client's call goes. A protocol that carries calls
 * (RTMP NetConnection.call, the Server API's /invoke, later the JSON
 * messages of WebRTC data channels and WebSockets) hands each one to route
 * and answers its client when the callback comes. The router tries, in
 * order: (a) a handler registered for the method in the service "rpc"
 * (plugins and modules, app/svc/rpc.h); (b) the app's business server
 * (apps.<app>.rpc_url), which receives {app, session, method, params,
 * username} by POST and whose JSON reply is the result. Calls are not
 * idempotent, so the router never retries one.
 *
 *     void *ud;
 *     const sl_svc_rpc_router_t *r = sl_service_get(core, SL_SVC_RPC_ROUTER,
 *                                                   SL_SVC_RPC_ROUTER_MAJOR, 0, &ud);
 *
 * Loop thread only. The table is append-only ("valid from 1.N").
 */
#ifndef SL_APP_SVC_RPC_ROUTER_H
#define SL_APP_SVC_RPC_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#define SL_SVC_RPC_ROUTER "rpc_router"
#define SL_SVC_RPC_ROUTER_MAJOR 1
#define SL_SVC_RPC_ROUTER_MINOR 0

/** One call; every string is borrowed for the route call (the router copies). */
typedef struct sl_rpc_route_req {
    const char *app;          /* scope path of the caller ("live", "live/room1"); required */
    const char *session_id;   /* the calling client, or NULL (the Server API) */
    const char *proto;        /* its protocol for logs and events ("rtmp", "api") */
    const char *username;     /* who the client said it is (credentials), or NULL */
    const char *method;       /* 1..255 bytes; required */
    const char *params_json;  /* a JSON array of the arguments; NULL = [] */
} sl_rpc_route_req_t;

/**
 * The answer, exactly once, always from the loop (never inside route).
 * status 0: result_json is the result (a JSON text, borrowed for the call).
 * Otherwise reason (borrowed, never NULL) says why, for the client, and
 * status is SL_ENOTFOUND (no handler and no business URL), UV_ETIMEDOUT
 * (no answer within apps.<app>.rpc_timeout), SL_ETOOBIG (reply over
 * apps.<app>.rpc_max_reply_bytes), SL_EIO (the business server failed:
 * transport error, non-2xx status, a body that is not JSON; or the handler
 * answered an error), SL_ECLOSED (the server is stopping).
 */
typedef void (*sl_rpc_route_cb)(void *ud, int status, const char *result_json, const char *reason);

typedef struct sl_svc_rpc_router {
    /**
     * Routes one call. 0: cb comes later. Errors (cb is never called):
     * SL_EINVAL (no app or method, params not a JSON array), SL_ENOTFOUND
     * (unknown app, or no handler and no rpc_url: nothing would answer),
     * SL_EBUSY (the client already has apps.<app>.rpc_max_calls_per_client
     * calls in flight, or the server rpc.max_calls), SL_ENOMEM. A call
     * refused as not found or busy still emits its rpc event.
     */
    int (*route)(void *ud, const sl_rpc_route_req_t *req, sl_rpc_route_cb cb, void *cb_ud);
    /**
     * Server -> client: calls method on the client session_id with the
     * arguments params_json (a JSON array; NULL = []) through its
     * protocol's invoke op, waiting up to timeout_ms (1..300000). cb gets,
     * exactly once and never inside this call: 0 and the client's _result
     * as JSON; SL_EDENIED and its _error's argument as JSON; UV_ETIMEDOUT;
     * SL_ECLOSED (the client left, or the server is stopping). Errors, cb
     * never called: SL_ENOTFOUND (no such client), SL_EDECLINED (its protocol cannot be called), SL_EINVAL, SL_EBUSY
     * (rpc.max_invokes, or the client's own cap), SL_ENOMEM. Emits an rpc
     * event with direction "out" when the call ends.
     */
    int (*invoke_client)(void *ud, const char *session_id, const char *method,
                         const char *params_json, uint64_t timeout_ms, sl_rpc_route_cb cb,
                         void *cb_ud);
} sl_svc_rpc_router_t;

#endif
