/*
 * The "http" service 1.1 (app/svc/http.h): a const table over the HTTP
 * server's own functions, registered by sl_http_server_start and removed
 * by sl_http_server_stop, so that modules, the plugin host and later
 * protocols reach routes and requests without including proto/http.
 * Nothing here has state of its own; the service's ud is the server.
 */
#include "app/services.h"
#include "proto/http/http_conn.h"
#include "sluice/errors.h"

static int svc_route_add(void *svc, const sl_http_route_spec_t *spec, sl_http_route_t **out)
{
    return sl_http_route_add(svc, spec, out);
}

static void svc_route_remove(void *svc, sl_http_route_t *route)
{
    sl_http_route_remove(svc, route);
}

static const char *req_method(const sl_http_req_t *req) { return req->method; }
static const char *req_path(const sl_http_req_t *req) { return req->path; }
static const char *req_query(const sl_http_req_t *req) { return req->query; }

static int req_query_get(const sl_http_req_t *req, const char *key, char *out, size_t cap)
{
    return sl_http_query_get(req->query, key, out, cap);
}

static const char *req_remote(const sl_http_req_t *req, int *port)
{
    if (port)
        *port = req->remote_port;
    return req->remote_addr;
}

static const uint8_t *req_body(const sl_http_req_t *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body;
}

static sl_session_t *req_session(const sl_http_req_t *req) { return req->session; }

static int stream_start(sl_http_req_t *req, int status, const char *content_type,
                        const char *extra_headers, int64_t length_or_neg1,
                        sl_http_close_cb close_cb, void *ud)
{
    if (length_or_neg1 >= 0)
        return sl_http_stream_start_sized(req, status, content_type, extra_headers,
                                          (uint64_t)length_or_neg1, close_cb, ud);
    return sl_http_stream_start(req, status, content_type, extra_headers, close_cb, ud);
}

static int admit_play(sl_http_req_t *req, const char *scope, const char *stream,
                      const char *transport, sl_http_admit_cb allowed, void *ud)
{
    /* The request is the first field of its transaction, whose connection
     * stays allocated while the transaction exists. */
    const sl_http_txn_t *t = (const sl_http_txn_t *)req;
    return sl_http_admit_play(sl__http_core(t->conn->srv), req, scope, stream, transport,
                              allowed, ud);
}

static const sl_http_svc_t http_svc = {
    .route_add = svc_route_add,
    .route_remove = svc_route_remove,
    .req_method = req_method,
    .req_path = req_path,
    .req_query = req_query,
    .req_query_get = req_query_get,
    .req_header = sl_http_req_header,
    .req_remote = req_remote,
    .req_body = req_body,
    .req_session = req_session,
    .respond = sl_http_respond,
    .stream_start = stream_start,
    .stream_write = sl_http_stream_write,
    .stream_pending = sl_http_stream_pending,
    .stream_end = sl_http_stream_end,
    .admit_play = admit_play,
    .ws_accept = sl_http_ws_accept,
    .ws_send = sl_ws_send,
    .ws_close = sl_ws_close,
};

int sl__http_svc_register(sl_http_server_t *srv)
{
    return sl_service_register(sl__http_core(srv), SL_HTTP_SVC_NAME, SL_HTTP_SVC_MAJOR,
                               SL_HTTP_SVC_MINOR, &http_svc, srv);
}

void sl__http_svc_unregister(sl_http_server_t *srv)
{
    sl_service_unregister(sl__http_core(srv), SL_HTTP_SVC_NAME, &http_svc);
}
