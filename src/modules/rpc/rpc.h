/*
 * The RPC module: calls both ways between clients and the server
 * (issue 15, docs/integration/rpc.md).
 *
 * Client -> server: it provides the service "rpc_router" (app/svc/
 * rpc_router.h), which protocols and the Server API hand each call to. A
 * call goes to the handler registered for its method in the service "rpc"
 * (plugins: host API rpc_register), else to the app's business server
 * (apps.<app>.rpc_url): POST {"app","session","method","params","username"}
 * with Content-Type application/json; a 2xx answer whose body is JSON is
 * the result as it is; anything else is an error with a reason. A call is
 * never retried (it is not idempotent: the business server may have acted
 * on it before the connection broke).
 *
 * Server -> client: the same service's invoke_client calls a method on a
 * connected client through its protocol's session op (sl_session_ops_t.
 * invoke), under the server-wide budget rpc.max_invokes.
 *
 * Both directions emit an `rpc` event when a call ends (method, session,
 * direction in|out, status, reason, duration_ms).
 */
#ifndef SL_MODULES_RPC_RPC_H
#define SL_MODULES_RPC_RPC_H

#include "modules/module.h"

/** The module (listed in modules.c). */
extern const sl_builtin_t sl_rpc_builtin;

/**
 * Builds the body POSTed to the business server (caller sl_frees):
 * {"app","session","method","params","username"}; session and username are
 * null when NULL; params_json must be a JSON array (NULL = []). NULL on
 * ENOMEM or when params_json is not a JSON array.
 */
char *sl_rpc_business_body(const char *app, const char *session, const char *method,
                           const char *params_json, const char *username);

#endif
