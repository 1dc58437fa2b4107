/*
 * The VOD module (see vod.h): the "vod" service's table, which resolves a
 * name through the "recorder" service and hands the file to the player
 * (vod_play.c). The recorder is looked up at each open and length, not
 * kept: the service registry is the only link between the two modules.
 */
#include "modules/vod/vod.h"

#include <stdint.h>

#include "app/services.h"
#include "app/svc/recorder.h"
#include "app/svc/vod.h"
#include "base/alloc.h"
#include "modules/vod/vod_internal.h"
#include "sluice/errors.h"

#define PATH_CAP 4096

typedef struct {
    sl_core_t *core; /* borrowed */
} vod_module_t;

static int vod_open(void *ud, const char *scope, const char *name, uint32_t start_ms,
                    sl_sink_t *sink, void (*on_end)(void *ctx), void *ctx, void **out)
{
    vod_module_t *m = ud;
    void *rud;
    const sl_svc_recorder_t *rec =
        sl_service_get(m->core, SL_SVC_RECORDER, SL_SVC_RECORDER_MAJOR, 0, &rud);
    if (!rec)
        return SL_ENOTFOUND;
    char file[PATH_CAP];
    int rc = SL_ENOTFOUND;
    /* A bare name: the app's record format first, then the other one. */
    for (int i = 0; i < 2 && rc == SL_ENOTFOUND; i++) {
        int frc = rec->file_of(rud, scope, name, i, file, sizeof file);
        if (frc)
            return frc == SL_ENOTFOUND ? rc : frc;
        rc = sl__vod_play_open(m->core->loop, file, start_ms, sink, on_end, ctx, out);
    }
    return rc;
}

static int vod_length(void *ud, const char *scope, const char *name, uint64_t *ms)
{
    vod_module_t *m = ud;
    void *rud;
    const sl_svc_recorder_t *rec =
        sl_service_get(m->core, SL_SVC_RECORDER, SL_SVC_RECORDER_MAJOR, 0, &rud);
    return rec ? rec->length(rud, scope, name, ms) : SL_ENOTFOUND;
}

/* Service "vod" (src/app/svc/vod.h). */
static const sl_svc_vod_t vod_service = {
    .open = vod_open,
    .seek = sl__vod_play_seek,
    .pause = sl__vod_play_pause,
    .close = sl__vod_play_close,
    .length = vod_length,
};

static int vod_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    sl_core_t *core = sl_host_core(h);
    (void)api;
    vod_module_t *m = sl_calloc(1, sizeof *m);
    if (!m)
        return SL_ENOMEM;
    m->core = core;
    int rc = sl_service_register(core, SL_SVC_VOD, SL_SVC_VOD_MAJOR, SL_SVC_VOD_MINOR,
                                 &vod_service, m);
    if (rc) {
        sl_free(m);
        return rc;
    }
    *state = m;
    return 0;
}

/* Players still open belong to their protocol's sessions, which close them. */
static void vod_stop(void *state)
{
    vod_module_t *m = state;
    if (!m)
        return;
    sl_service_unregister(m->core, SL_SVC_VOD, &vod_service);
}

static void vod_free(void *state)
{
    sl_free(state);
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "vod",
    .description = "plays recordings over RTMP",
    .init = vod_init,
    .stop = vod_stop,
    .destroy = vod_free,
};

const sl_builtin_t sl_vod_builtin = {
    .plugin = &plugin,
};
