/*
 * RTMP's line in the protocol table (proto/proto.h): RTMP and, with a
 * certificate, RTMPS, as one protocol "rtmp". Start opens the server
 * (rtmp_conn.c), announces its listeners and logs the addresses a user
 * types into OBS or a player.
 */
#include <string.h>

#include "app/listeners.h"
#include "base/log.h"
#include "proto/proto.h"
#include "proto/rtmp/rtmp_server.h"
#include "sluice/errors.h"
#include "proto/rtmp/rtmp_config.h"

static int rtmp_enabled(const sl_config_t *cfg)
{
    return sl_rtmp_cfg(cfg)->enabled;
}

/*
 * RTMPS's certificate. When RTMP has no pair of its own it uses HTTP's,
 * which the HTTP server's check reports (once) when HTTP runs; otherwise
 * the problem is reported here, at http.tls_cert as before.
 */
static int rtmp_check(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    char why[512];
    int own_cert = sl_rtmp_cfg(cfg)->tls_cert && sl_rtmp_cfg(cfg)->tls_cert[0];
    int own_pair = own_cert || (sl_rtmp_cfg(cfg)->tls_key && sl_rtmp_cfg(cfg)->tls_key[0]);
    if (!sl_rtmp_server_tls_enabled(cfg) || (!own_pair && sl_config_int(cfg, "http.enabled")))
        return 0;
    if (!sl_rtmp_server_tls_check(cfg, why, sizeof why))
        return 0;
    sl_config_report(cfg, own_cert ? "rtmp.tls_cert" : "http.tls_cert", err, ud, "%s", why);
    return 1;
}

static int rtmp_start(sl_core_t *core, void **state)
{
    const sl_config_t *cfg = core->cfg;
    sl_rtmp_server_t *srv;
    int rc = sl_rtmp_server_start(core, &srv);
    if (rc) {
        /* The server logged why (the port, the certificate). */
        SL_LOGE(NULL, "rtmp: not started: %s", sl_strerror(rc));
        return rc;
    }
    *state = srv;
    int tls_port = sl_rtmp_server_tls_port(srv);
    if ((rc = sl_listeners_announce(core, "rtmp", sl_rtmp_cfg(cfg)->bind, (int)sl_rtmp_cfg(cfg)->port, 0, 0)) ||
        (tls_port > 0 &&
         (rc = sl_listeners_announce(core, "rtmp", sl_rtmp_server_tls_bind(cfg), tls_port, 1, 0))))
        return rc;
    SL_LOGI(NULL, "rtmp listening on %s:%lld", sl_rtmp_cfg(cfg)->bind, (long long)sl_rtmp_cfg(cfg)->port);
    const char *host = strcmp(sl_rtmp_cfg(cfg)->bind, "0.0.0.0") == 0 || strcmp(sl_rtmp_cfg(cfg)->bind, "::") == 0
                           ? "localhost" : sl_rtmp_cfg(cfg)->bind;
    SL_LOGI(NULL, "publish: rtmp://%s:%lld/live/{stream}   (OBS: server rtmp://%s:%lld/live, key {stream})",
            host, (long long)sl_rtmp_cfg(cfg)->port, host, (long long)sl_rtmp_cfg(cfg)->port);
    SL_LOGI(NULL, "play:    rtmp://%s:%lld/live/{stream}", host, (long long)sl_rtmp_cfg(cfg)->port);
    if (tls_port > 0)
        SL_LOGI(NULL, "rtmps listening on %s:%d (rtmps://%s:%d/live/{stream})",
                sl_rtmp_server_tls_bind(cfg), tls_port, host, tls_port);
    return 0;
}

static void rtmp_stop(void *state)
{
    sl_rtmp_server_stop(state);
}

static void rtmp_free(void *state)
{
    sl_rtmp_server_free(state);
}

static void rtmp_reload(void *state, const sl_config_t *cfg)
{
    sl_rtmp_server_reload(state, cfg);
}

const sl_proto_t sl_rtmp_proto = {
    .name = "rtmp",
    .enabled = rtmp_enabled,
    .check = rtmp_check,
    .start = rtmp_start,
    .stop = rtmp_stop,
    .free = rtmp_free,
    .reload = rtmp_reload,
};
