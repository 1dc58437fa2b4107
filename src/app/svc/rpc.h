/*
 * The service "rpc" 1.0: the registry of RPC method handlers (DESIGN.md §5,
 * "rpc" events). Plugins register methods through the host API
 * (sl_host_api_t.rpc_register); whoever carries a client's call (RTMP
 * `call`, the shared-objects WebSocket, the Server API's "invoke an app
 * method") looks the service up and calls a method by name. Nothing in the
 * server calls it yet besides the unit test (tests/unit/modules/
 * plugins_rpc_test.c); the RPC work will.
 *
 *     void *ud;
 *     const sl_rpc_service_t *rpc = sl_service_get(core, SL_RPC_SERVICE, 1, 0, &ud);
 *     if (rpc) rpc->call(ud, "room.count", "{\"room\":\"a\"}", on_reply, ctx);
 *
 * Provided by the extension host (src/modules/plugins) while it runs. Every
 * call runs on the loop thread; strings are borrowed for the call.
 */
#ifndef SL_APP_SVC_RPC_H
#define SL_APP_SVC_RPC_H

#define SL_RPC_SERVICE "rpc"
#define SL_RPC_SERVICE_MAJOR 1
#define SL_RPC_SERVICE_MINOR 0

/**
 * Receives a method's answer exactly once: status 0 and a JSON text, or a
 * negative SL_E* and NULL or an error text (borrowed for the call).
 */
typedef void (*sl_rpc_reply_cb)(void *reply_ud, int status, const char *result_json);

/** A method handler (the shape of sl_rpc_handler_fn in include/sluice/host.h). */
typedef int (*sl_rpc_method_cb)(void *ud, const char *method, const char *args_json,
                                sl_rpc_reply_cb reply, void *reply_ud);

typedef struct sl_rpc_service {
    /**
     * Calls method with args_json (a JSON text; NULL = "null"). Returns 0
     * when the handler took the call (reply comes, maybe synchronously),
     * SL_ENOTFOUND (no such method; reply is not called) or the handler's
     * negative error (reply is not called).
     */
    int (*call)(void *ud, const char *method, const char *args_json, sl_rpc_reply_cb reply,
                void *reply_ud);
    /** Calls each(arg, method, owner) for every registered method, by registration. */
    void (*each)(void *ud, void (*each)(void *arg, const char *method, const char *owner),
                 void *arg);
    /**
     * Registers a method for owner (a name for listings, copied). 0,
     * SL_EBUSY (the name is taken), SL_EINVAL (name not 1..63 characters),
     * SL_ENOMEM. For in-tree modules; plugins go through the host API.
     */
    int (*add)(void *ud, const char *method, const char *owner, sl_rpc_method_cb cb, void *cb_ud);
    /** Removes a method (no-op when absent). */
    void (*remove)(void *ud, const char *method);
} sl_rpc_service_t;

#endif
