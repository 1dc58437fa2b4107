/*
 * The table of built-in modules (see module.h). Order matters: admission
 * checks register in their own priority order, but event listeners that
 * must see an event before others (none yet) would be listed first.
 */
#include <stddef.h>

#include "modules/auth_jwt/auth_jwt.h"
#include "modules/auth_roundtrip/auth_roundtrip.h"
#include "modules/auth_simple/auth_simple.h"
#include "modules/cleaner/cleaner.h"
#include "modules/exec_hooks/exec_hooks.h"
#include "modules/module.h"
#include "modules/recorder/recorder.h"
#include "modules/s3_upload/s3_upload.h"
#include "modules/vod/vod.h"
#include "modules/webhooks/webhooks.h"
#include "modules/hls/hls.h"
#include "modules/httpflv/httpflv.h"
#include "modules/plugins/plugins.h"

const sl_module_t *const sl_builtin_modules[] = {
    &sl_auth_simple_module,
    &sl_auth_jwt_module,
    &sl_auth_roundtrip_module,
    &sl_webhooks_module,
    &sl_exec_hooks_module,
    &sl_s3_upload_module, /* before the recorder: stopped after it, so the record_done
                             events of recordings finalised at shutdown are still queued */
    &sl_recorder_module,  /* before HLS/HTTP-FLV: its /{app}/mediafiles route comes first */
    &sl_vod_module,       /* after the recorder, whose "recorder" service it uses */
    &sl_cleaner_module,
    &sl_hls_module,
    &sl_httpflv_module,
    &sl_plugins_module,   /* last: plugins start after every built-in and stop first */
    NULL,
};
