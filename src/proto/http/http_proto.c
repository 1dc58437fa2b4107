/*
 * HTTP's line in the protocol table (proto/proto.h): HTTP and, with a
 * certificate, HTTPS, as one protocol "http". Its state is the
 * sl_http_server_t itself, which main hands to the API and to the modules
 * for their routes (sl_http_proto_server).
 */
#include "app/listeners.h"
#include "base/log.h"
#include "proto/http/http.h"
#include "proto/proto.h"
#include "sluice/errors.h"

static int http_enabled(const sl_config_t *cfg)
{
    return cfg->http_enabled;
}

/* HTTPS's certificate and key (also RTMPS's when RTMP has no pair of its own). */
static int http_check(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    char why[512];
    if (!sl_http_server_tls_enabled(cfg) || !sl_http_server_tls_check(cfg, why, sizeof why))
        return 0;
    sl_config_report(cfg, "http.tls_cert", err, ud, "%s", why);
    return 1;
}

static int http_start(sl_core_t *core, void **state)
{
    const sl_config_t *cfg = core->cfg;
    sl_http_server_t *srv;
    int rc = sl_http_server_start(core, &srv);
    if (rc) {
        /* The server logged why (the port, the certificate). */
        SL_LOGE(NULL, "http: not started: %s", sl_strerror(rc));
        return rc;
    }
    *state = srv;
    int tls_port = sl_http_server_tls_port(srv);
    if ((rc = sl_listeners_announce(core, "http", cfg->http_bind, sl_http_server_port(srv), 0, 0)) ||
        (tls_port > 0 &&
         (rc = sl_listeners_announce(core, "http", sl_http_server_tls_bind(cfg), tls_port, 1, 0))))
        return rc;
    SL_LOGI(NULL, "http listening on %s:%lld (console http://localhost:%lld/)", cfg->http_bind,
            (long long)cfg->http_port, (long long)cfg->http_port);
    if (tls_port > 0)
        SL_LOGI(NULL, "https listening on %s:%d (https://localhost:%d/)",
                sl_http_server_tls_bind(cfg), tls_port, tls_port);
    return 0;
}

static void http_stop(void *state)
{
    sl_http_server_stop(state);
}

static void http_free(void *state)
{
    sl_http_server_free(state);
}

sl_http_server_t *sl_http_proto_server(void *state)
{
    return state;
}

const sl_proto_t sl_http_proto = {
    .name = "http",
    .enabled = http_enabled,
    .check = http_check,
    .start = http_start,
    .stop = http_stop,
    .free = http_free,
};
