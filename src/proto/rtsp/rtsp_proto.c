/*
 * RTSP's line in the protocol table (proto/proto.h): RTSP and, with a
 * certificate, RTSPS, as one protocol "rtsp". Start opens the server
 * (rtsp_server.c), announces its listeners and logs the addresses a user
 * types into ffmpeg, VLC or a camera.
 */
#include <string.h>

#include "app/listeners.h"
#include "base/log.h"
#include "proto/proto.h"
#include "proto/rtsp/rtsp_config.h"
#include "proto/rtsp/rtsp_server.h"
#include "sluice/errors.h"

static int rtsp_enabled(const sl_config_t *cfg)
{
    return sl_rtsp_cfg(cfg)->enabled;
}

static int rtsp_check(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    char why[512];
    const sl_rtsp_config_t *rc = sl_rtsp_cfg(cfg);
    int problems = 0;
    if (rc->udp_port_max <= rc->udp_port_min) {
        sl_config_report(cfg, "rtsp.udp_port_max", err, ud, "must be above rtsp.udp_port_min");
        problems++;
    }
    int own = (rc->tls_cert && rc->tls_cert[0]) || (rc->tls_key && rc->tls_key[0]);
    if (!sl_rtsp_server_tls_enabled(cfg) || (!own && sl_config_int(cfg, "http.enabled")))
        return problems;
    if (sl_rtsp_server_tls_check(cfg, why, sizeof why) == 0)
        return problems;
    sl_config_report(cfg, own ? "rtsp.tls_cert" : "http.tls_cert", err, ud, "%s", why);
    return problems + 1;
}

static int rtsp_start(sl_core_t *core, void **state)
{
    const sl_rtsp_config_t *rc = sl_rtsp_cfg(core->cfg);
    sl_rtsp_server_t *srv;
    int r = sl_rtsp_server_start(core, &srv);
    if (r) {
        SL_LOGE(NULL, "rtsp: not started: %s", sl_strerror(r));
        return r;
    }
    *state = srv;
    int port = sl_rtsp_server_port(srv, 0), tls_port = sl_rtsp_server_port(srv, 1);
    const char *tls_bind = rc->tls_bind && rc->tls_bind[0] ? rc->tls_bind : rc->bind;
    if ((r = sl_listeners_announce(core, "rtsp", rc->bind, port, 0, 0)) ||
        (tls_port > 0 && (r = sl_listeners_announce(core, "rtsp", tls_bind, tls_port, 1, 0))))
        return r;
    const char *host = strcmp(rc->bind, "0.0.0.0") == 0 || strcmp(rc->bind, "::") == 0 ? "localhost" : rc->bind;
    SL_LOGI(NULL, "rtsp listening on %s:%d (rtsp://%s:%d/live/{stream}; UDP ports %lld-%lld)", rc->bind, port, host,
            port, (long long)rc->udp_port_min, (long long)rc->udp_port_max);
    if (tls_port > 0)
        SL_LOGI(NULL, "rtsps listening on %s:%d (rtsps://%s:%d/live/{stream})", tls_bind, tls_port, host, tls_port);
    return 0;
}

static void rtsp_stop(void *state)
{
    sl_rtsp_server_stop(state);
}

static void rtsp_free(void *state)
{
    sl_rtsp_server_free(state);
}

const sl_proto_t sl_rtsp_proto = {
    .name = "rtsp",
    .enabled = rtsp_enabled,
    .check = rtsp_check,
    .start = rtsp_start,
    .stop = rtsp_stop,
    .free = rtsp_free,
};
