/*
 * RPC over RTMP, both ways (docs/integration/rpc.md).
 *
 * Client -> server: NetConnection.call("method", responder, args...) for a
 * method that is not one of RTMP's own commands arrives here from
 * rtmp_cmd.c. The arguments become a JSON array (amf_json.h) and the call
 * goes to the service "rpc_router" (the RPC module). Its answer comes back
 * by callback, maybe long after: the callback finds the client again by
 * session id (never by a kept pointer, since it may have left) and sends
 * `_result` (the JSON result as an AMF0 value) or `_error` with
 * {level:"error", code:"NetConnection.Call.Failed", description: reason}.
 * Replies are AMF0 command messages (type 20) whichever type the call came
 * in (17 or 20); Flash and the other RTMP stacks accept both.
 *
 * Server -> client: the session op invoke sends a command ("method", txn,
 * null, args...) with a fresh transaction id and waits for the client's
 * `_result` or `_error` with that id, or the timeout, or the close; each
 * waiting invoke (pending_t) has its own timer and at most
 * MAX_INVOKES_PER_CONN wait per connection.
 */
#include <stdio.h>
#include <string.h>

#include "app/services.h"
#include "app/svc/rpc_router.h"
#include "base/alloc.h"
#include "base/log.h"
#include "proto/rtmp/amf_json.h"
#include "proto/rtmp/rtmp_config.h"
#include "proto/rtmp/rtmp_conn.h"
#include "sluice/errors.h"

#define MAX_INVOKES_PER_CONN 16
#define RPC_MAX_JSON_BYTES (1024u * 1024u) /* arguments and results as JSON text */
#define RPC_MAX_CMD_BYTES (4u * 1024u * 1024u) /* an encoded call or reply */
#define CALL_FAILED "NetConnection.Call.Failed"

/* The per-connection state (sl_rtmp_conn_t.rpc), made on first use. */
struct sl_rtmp_rpc {
    sl_list_t invokes;   /* pending_t waiting for the client */
    uint32_t n_invokes;
    double next_txn;     /* our transaction ids: 1, 2, ... */
};

/* One server -> client invoke waiting for its answer. */
typedef struct pending {
    sl_list_t link;              /* in rpc->invokes; unlinked once answered */
    sl_rtmp_conn_t *c;           /* valid while linked (sl__rtmp_rpc_close empties the list) */
    uv_timer_t timer;
    double txn;
    sl_session_invoke_cb cb;
    void *ud;
} pending_t;

/* A client's call on its way through the router. */
typedef struct call_ctx {
    sl_core_t *core;
    char sid[16];
    double txn;
} call_ctx_t;

/* ------------------------------------------------------------------ */
/* replies                                                             */

static int send_amf0(sl_rtmp_conn_t *c, sl_wbuf_t *w)
{
    int rc = sl__rtmp_send(c, SL_RTMP_CSID_COMMAND, SL_RTMP_COMMAND_AMF0, 0, 0, w->data, w->len);
    sl_wbuf_cleanup(w);
    return rc;
}

static int send_call_error(sl_rtmp_conn_t *c, double txn, const char *desc)
{
    sl_wbuf_t w;
    sl_wbuf_init(&w, RPC_MAX_CMD_BYTES);
    int rc = sl_amf0_put_string(&w, "_error");
    rc = rc ? rc : sl_amf0_put_number(&w, txn);
    rc = rc ? rc : sl_amf0_put_null(&w);
    rc = rc ? rc : sl_amf0_put_object_start(&w);
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "level", "error");
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "code", CALL_FAILED);
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "description", desc);
    rc = rc ? rc : sl_amf0_put_object_end(&w);
    if (rc) {
        sl_wbuf_cleanup(&w);
        return rc;
    }
    SL_LOGI(&c->sess.log, "%s: %s", CALL_FAILED, desc);
    return send_amf0(c, &w);
}

static int send_call_result(sl_rtmp_conn_t *c, double txn, const char *result_json)
{
    int depth = (int)sl_rtmp_cfg(c->core->cfg)->amf_max_depth;
    sl_amf_t *v = NULL;
    int rc = sl_amf_from_json(result_json, strlen(result_json), depth, RPC_MAX_JSON_BYTES, &v);
    if (rc)
        return send_call_error(c, txn, rc == SL_EDEPTH ? "Result nested too deeply."
                                                       : "Result cannot be sent.");
    sl_wbuf_t w;
    sl_wbuf_init(&w, RPC_MAX_CMD_BYTES);
    rc = sl_amf0_put_string(&w, "_result");
    rc = rc ? rc : sl_amf0_put_number(&w, txn);
    rc = rc ? rc : sl_amf0_put_null(&w);
    rc = rc ? rc : sl_amf0_encode(&w, v);
    sl_amf_free(v);
    if (rc) {
        sl_wbuf_cleanup(&w);
        return send_call_error(c, txn, "Result too large.");
    }
    return send_amf0(c, &w);
}

/* ------------------------------------------------------------------ */
/* client -> server                                                    */

/* The client of a session id, if it is a connected RTMP client. */
static sl_rtmp_conn_t *find_conn(sl_core_t *core, const char *sid)
{
    sl_session_t *s = sl_core_find_session(core, sid);
    if (!s || !s->ops || s->ops->invoke != sl__rtmp_invoke)
        return NULL;
    sl_rtmp_conn_t *c = (sl_rtmp_conn_t *)s;
    return c->state == SL_RTMP_CONN_CONNECTED ? c : NULL;
}

static void on_routed(void *ud, int status, const char *result_json, const char *reason)
{
    call_ctx_t *x = ud;
    sl_rtmp_conn_t *c = find_conn(x->core, x->sid);
    if (c && x->txn > 0) {
        int rc = status ? send_call_error(c, x->txn, reason ? reason : "Call failed.")
                        : send_call_result(c, x->txn, result_json ? result_json : "null");
        if (rc == SL_ENOMEM || rc == SL_ETOOBIG)
            sl__rtmp_close(c, "cannot queue an RPC reply");
    }
    sl_free(x);
}

int sl__rtmp_rpc_call(sl_rtmp_conn_t *c, const char *method, double txn, sl_amf_t **args,
                      size_t n_args)
{
    void *rud = NULL;
    const sl_svc_rpc_router_t *router =
        sl_service_get(c->core, SL_SVC_RPC_ROUTER, SL_SVC_RPC_ROUTER_MAJOR, 0, &rud);
    char desc[200];
    if (!router || !c->sess.app) {
        if (txn <= 0)
            return 0;
        snprintf(desc, sizeof desc, "Method not found (%.100s).", method);
        return send_call_error(c, txn, desc);
    }
    char *params = NULL;
    int rc = sl_amf_list_to_json(args, n_args, (int)sl_rtmp_cfg(c->core->cfg)->amf_max_depth,
                                 RPC_MAX_JSON_BYTES, &params);
    if (rc) {
        if (rc == SL_ENOMEM)
            return rc;
        return txn > 0 ? send_call_error(c, txn, rc == SL_EINVAL ? "Arguments are not valid UTF-8."
                                                                 : "Arguments too large or deep.")
                       : 0;
    }
    const char *user = sl__rtmp_username(c); /* static buffer: copied by route */
    call_ctx_t *x = sl_calloc(1, sizeof(*x));
    if (!x) {
        sl_free(params);
        return SL_ENOMEM;
    }
    x->core = c->core;
    x->txn = txn;
    snprintf(x->sid, sizeof x->sid, "%s", c->sess.id);
    sl_rpc_route_req_t req = {
        .app = c->sess.app,
        .session_id = c->sess.id,
        .proto = c->sess.proto,
        .username = user,
        .method = method,
        .params_json = params,
    };
    rc = router->route(rud, &req, on_routed, x);
    sl_free(params);
    if (rc == 0) {
        SL_LOGD(&c->sess.log, "rpc: call %s (txn %g) routed", method, txn);
        return 0;
    }
    sl_free(x);
    if (rc == SL_ENOMEM)
        return rc;
    if (txn <= 0)
        return 0;
    if (rc == SL_ENOTFOUND)
        snprintf(desc, sizeof desc, "Method not found (%.100s).", method);
    else if (rc == SL_EBUSY)
        snprintf(desc, sizeof desc, "Too many calls in flight.");
    else
        snprintf(desc, sizeof desc, "Call refused (%s).", sl_strerror(rc));
    return send_call_error(c, txn, desc);
}

/* ------------------------------------------------------------------ */
/* server -> client                                                    */

static void on_pending_closed(uv_handle_t *h)
{
    sl_free(h->data);
}

/* Unlinks p, calls its callback once and frees it (after its timer closes). */
static void pending_finish(sl_rtmp_conn_t *c, pending_t *p, int status, const char *json)
{
    sl_list_remove(&p->link);
    c->rpc->n_invokes--;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_pending_closed);
    p->cb(p->ud, status, json);
}

static void on_pending_timeout(uv_timer_t *t)
{
    pending_t *p = t->data;
    SL_LOGD(&p->c->sess.log, "rpc: invoke txn %g timed out", p->txn);
    pending_finish(p->c, p, UV_ETIMEDOUT, NULL);
}

int sl__rtmp_invoke(sl_session_t *s, const char *method, const char *params_json,
                    uint64_t timeout_ms, sl_session_invoke_cb cb, void *ud)
{
    sl_rtmp_conn_t *c = (sl_rtmp_conn_t *)s;
    if (c->state != SL_RTMP_CONN_CONNECTED)
        return SL_ECLOSED;
    if (!method || !method[0] || strlen(method) > 255 || !cb)
        return SL_EINVAL;
    if (!c->rpc) {
        if (!(c->rpc = sl_calloc(1, sizeof(*c->rpc))))
            return SL_ENOMEM;
        sl_list_init(&c->rpc->invokes);
        c->rpc->next_txn = 1;
    }
    if (c->rpc->n_invokes >= MAX_INVOKES_PER_CONN)
        return SL_EBUSY;
    int depth = (int)sl_rtmp_cfg(c->core->cfg)->amf_max_depth;
    sl_amf_t *args = NULL;
    int rc = sl_amf_from_json(params_json ? params_json : "[]", params_json ? strlen(params_json) : 2,
                              depth + 1, RPC_MAX_JSON_BYTES, &args);
    if (rc || args->type != SL_AMF_STRICT_ARRAY) {
        sl_amf_free(args);
        return rc == SL_ENOMEM ? rc : SL_EINVAL;
    }
    pending_t *p = sl_calloc(1, sizeof(*p));
    if (!p) {
        sl_amf_free(args);
        return SL_ENOMEM;
    }
    p->c = c;
    p->txn = c->rpc->next_txn++;
    p->cb = cb;
    p->ud = ud;
    sl_wbuf_t w;
    sl_wbuf_init(&w, RPC_MAX_CMD_BYTES);
    rc = sl_amf0_put_string(&w, method);
    rc = rc ? rc : sl_amf0_put_number(&w, p->txn);
    rc = rc ? rc : sl_amf0_put_null(&w);
    for (uint32_t i = 0; !rc && i < args->u.arr.n; i++)
        rc = sl_amf0_encode(&w, args->u.arr.items[i]);
    sl_amf_free(args);
    if (rc) {
        sl_wbuf_cleanup(&w);
        sl_free(p);
        return rc == SL_ENOMEM ? rc : SL_EINVAL;
    }
    rc = send_amf0(c, &w);
    if (rc) {
        sl_free(p);
        return rc;
    }
    uv_timer_init(c->core->loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, on_pending_timeout, timeout_ms, 0);
    sl_list_push_back(&c->rpc->invokes, &p->link);
    c->rpc->n_invokes++;
    SL_LOGD(&c->sess.log, "rpc: invoke %s (txn %g) sent", method, p->txn);
    return 0;
}

int sl__rtmp_rpc_on_answer(sl_rtmp_conn_t *c, int is_error, double txn, sl_amf_t **v, size_t count)
{
    if (!c->rpc)
        return 0;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &c->rpc->invokes) {
        pending_t *p = sl_container_of(it, pending_t, link);
        if (p->txn != txn)
            continue;
        /* _result(txn, command object, value): the value is the 4th. */
        char *json = NULL;
        int rc = sl_amf_to_json(count > 3 ? v[3] : NULL, (int)sl_rtmp_cfg(c->core->cfg)->amf_max_depth,
                                RPC_MAX_JSON_BYTES, &json);
        if (rc)
            SL_LOGI(&c->sess.log, "rpc: the answer to txn %g cannot be read: %s", txn, sl_strerror(rc));
        pending_finish(c, p, rc ? (rc == SL_ENOMEM ? rc : SL_EPROTO) : (is_error ? SL_EDENIED : 0),
                       json);
        sl_free(json);
        return 1;
    }
    return 0;
}

void sl__rtmp_rpc_close(sl_rtmp_conn_t *c)
{
    if (!c->rpc)
        return;
    while (!sl_list_empty(&c->rpc->invokes))
        pending_finish(c, sl_container_of(c->rpc->invokes.next, pending_t, link), SL_ECLOSED, NULL);
    sl_free(c->rpc);
    c->rpc = NULL;
}
