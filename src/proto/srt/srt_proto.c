/*
 * The protocol-table lines of SRT ("srt") and MPEG-TS over UDP ("mpegts"):
 * whether the configuration enables them, their checks, and start/stop,
 * which open the listeners (srt_server.c, mpegts_udp.c), announce them and
 * log the addresses a user types.
 */
#include <string.h>

#include "app/listeners.h"
#include "base/log.h"
#include "proto/srt/srt.h"
#include "proto/srt/srt_config.h"
#include "proto/srt/srt_internal.h"
#include "sluice/errors.h"

static int srt_enabled(const sl_config_t *cfg) { return sl_srt_cfg(cfg)->enabled; }

/* A passphrase libsrt would refuse (10-79 characters) is a configuration error, not a silent failure. */
static int bad_pass(const char *p) { return p && p[0] && (strlen(p) < 10 || strlen(p) > 79); }

static int srt_check(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    const sl_srt_config_t *sc = sl_srt_cfg(cfg);
    int n = 0;
    if (bad_pass(sc->passphrase)) {
        sl_config_report(cfg, "srt.passphrase", err, ud, "an SRT passphrase has 10 to 79 characters");
        n++;
    }
    if (sc->pbkeylen && sc->pbkeylen != 16 && sc->pbkeylen != 24 && sc->pbkeylen != 32) {
        sl_config_report(cfg, "srt.pbkeylen", err, ud, "pbkeylen is 0, 16, 24 or 32");
        n++;
    }
    for (size_t i = 0; i < cfg->n_apps; i++)
        if (bad_pass(sl_srt_app_cfg(&cfg->apps[i])->passphrase)) {
            sl_config_report(cfg, "srt.passphrase", err, ud, "app %s: an SRT passphrase has 10 to 79 characters",
                             cfg->apps[i].name);
            n++;
        }
    return n;
}

static int srt_start(sl_core_t *core, void **state)
{
    const sl_srt_config_t *sc = sl_srt_cfg(core->cfg);
    sl__srt_server_t *srv;
    int rc = sl__srt_server_start(core, &srv);
    *state = srv;
    if (rc) {
        SL_LOGE(NULL, "srt: not started: %s", sl_strerror(rc));
        return rc;
    }
    if ((rc = sl_listeners_announce(core, "srt", sc->bind, (int)sc->port, 0, 1)))
        return rc;
    const char *host = strcmp(sc->bind, "0.0.0.0") == 0 || strcmp(sc->bind, "::") == 0 ? "localhost" : sc->bind;
    SL_LOGI(NULL, "srt listening on %s:%lld (udp)%s", sc->bind, (long long)sc->port,
            sc->passphrase[0] ? ", encrypted" : "");
    SL_LOGI(NULL, "publish: srt://%s:%lld?streamid=publish:live/{stream}", host, (long long)sc->port);
    SL_LOGI(NULL, "play:    srt://%s:%lld?streamid=read:live/{stream}", host, (long long)sc->port);
    return 0;
}

static void srt_stop(void *state) { sl__srt_server_stop(state); }
static void srt_free(void *state) { sl__srt_server_free(state); }

const sl_proto_t sl_srt_proto = {
    .name = "srt",
    .enabled = srt_enabled,
    .check = srt_check,
    .start = srt_start,
    .stop = srt_stop,
    .free = srt_free,
};

static int ts_enabled(const sl_config_t *cfg)
{
    const char *u = sl_mpegts_cfg(cfg)->udp;
    return u && u[0];
}

static int ts_start(sl_core_t *core, void **state)
{
    sl__ts_udp_t *u;
    int rc = sl__ts_udp_start(core, &u);
    *state = u;
    if (rc) {
        SL_LOGE(NULL, "mpegts: not started: %s", sl_strerror(rc));
        return rc;
    }
    return 0;
}

static void ts_stop(void *state) { sl__ts_udp_stop(state); }
static void ts_free(void *state) { sl__ts_udp_free(state); }

const sl_proto_t sl_mpegts_proto = {
    .name = "mpegts",
    .enabled = ts_enabled,
    .start = ts_start,
    .stop = ts_stop,
    .free = ts_free,
};
