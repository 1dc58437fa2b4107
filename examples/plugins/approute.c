/*
 * approute: a plugin's own web endpoints under its apps, like a Red5
 * custom webapp. GET /{app}/hello answers JSON (the app, the plugin's
 * greeting, the server's session count from stats_json); /{app}/echo is a
 * WebSocket that sends every text message back. It also registers an RPC
 * method, "approute.echo", on the service "rpc".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/plugin.h>

typedef struct {
    const sl_host_api_t *api;
    sl_host_t *h;
    unsigned long n_messages;
} approute_t;

static int on_hello(void *ud, sl_http_request_t *req)
{
    approute_t *p = ud;
    sl_http_request_info_t info;
    char body[2048];
    if (p->api->http_info(req, &info))
        return SL_EINVAL;
    if (strcmp(info.subpath, "/hello") != 0)
        return SL_EDECLINED; /* /{app}/hello/... is not ours */
    const char *greeting = p->api->setting(p->h, "greeting");
    char *server = p->api->stats_json(p->h, "server");
    int n = snprintf(body, sizeof body,
                     "{\"plugin\":\"approute\",\"app\":\"%s\",\"greeting\":\"%s\",\"server\":%s}",
                     info.app, greeting ? greeting : "hello", server ? server : "null");
    p->api->free(server);
    /* An error here means the client left: the request is finished either way. */
    p->api->http_respond(req, 200, "application/json", body,
                         n < (int)sizeof body ? (size_t)n : sizeof body - 1);
    return 0;
}

static int ws_open(void *ud, sl_websocket_t *ws, const sl_http_request_info_t *req, void **conn)
{
    approute_t *p = ud;
    p->api->log(p->h, SL_PLUGIN_LOG_INFO, "echo socket opened on %s from %s", req->path,
                req->remote_addr ? req->remote_addr : "?");
    (void)ws;
    *conn = NULL;
    return 0;
}

static void ws_message(void *ud, void *conn, sl_websocket_t *ws, const char *data, size_t len,
                       int is_text)
{
    approute_t *p = ud;
    (void)conn;
    if (!is_text)
        return;
    p->n_messages++;
    p->api->ws_send(ws, data, len);
}

static void ws_closed(void *ud, void *conn, sl_websocket_t *ws)
{
    (void)ud, (void)conn, (void)ws;
}

static const sl_ws_handlers_t echo_handlers = {
    .size = sizeof(sl_ws_handlers_t),
    .on_open = ws_open,
    .on_message = ws_message,
    .on_close = ws_closed,
};

static int rpc_echo(void *ud, const char *method, const char *args_json, sl_rpc_reply_fn reply,
                    void *reply_ctx)
{
    (void)ud, (void)method;
    reply(reply_ctx, 0, args_json);
    return 0;
}

static int approute_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    approute_t *p = calloc(1, sizeof *p);
    int rc;
    if (!p)
        return SL_ENOMEM;
    p->api = api;
    p->h = h;
    *state = p;
    if ((rc = api->http_route(h, "GET", "/hello", on_hello, p)) ||
        (rc = api->ws_route(h, "/echo", &echo_handlers, p)) ||
        (rc = api->rpc_register(h, "approute.echo", rpc_echo, p))) {
        api->log(h, SL_PLUGIN_LOG_ERROR, "cannot register: %s", api->strerror(rc));
        free(p); /* destroy is not called after a failed init; the server will not start */
        *state = NULL;
        return rc;
    }
    return 0;
}

static void approute_destroy(void *state) { free(state); }

static const sl_plugin_t approute_plugin = {
    SL_PLUGIN_ABI,
    .name = "approute",
    .version = "1.0",
    .description = "a JSON route and a WebSocket echo route under its apps",
    .init = approute_init,
    .destroy = approute_destroy,
};

SL_PLUGIN_INIT(approute_plugin)
