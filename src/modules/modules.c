/*
 * The table of built-in modules (see module.h): the host
 * (src/modules/plugins) inits them in this order, before any plugin of
 * sluice.yml, and stops them in reverse. Order matters only where one
 * module's stop must come after another's (below); listeners and checks
 * are ordered by their phases, not by this table.
 */
#include <stddef.h>

#include "cluster/core/cluster.h"
#include "modules/auth_jwt/auth_jwt.h"
#include "modules/auth_roundtrip/auth_roundtrip.h"
#include "modules/auth_simple/auth_simple.h"
#include "modules/cleaner/cleaner.h"
#include "modules/exec_hooks/exec_hooks.h"
#include "modules/module.h"
#include "modules/recorder/recorder.h"
#include "modules/rpc/rpc.h"
#include "modules/s3_upload/s3_upload.h"
#include "modules/shared_objects/shared_objects.h"
#include "modules/vod/vod.h"
#include "modules/webhooks/webhooks.h"
#include "modules/hls/hls.h"
#include "modules/httpflv/httpflv.h"
#include "modules/restream/restream.h"
#include "modules/abr/abr.h"
#include "cluster/streammanager/streammanager.h"
#include "cluster/relay/relay.h"
#include "cluster/autoscale/autoscale.h"
#include "cluster/smproxy/smproxy.h"

const sl_builtin_t *const sl_builtin_modules[] = {
    &sl_auth_simple_builtin,
    &sl_auth_jwt_builtin,
    &sl_auth_roundtrip_builtin,
    &sl_cluster_builtin,   /* before every module that uses its "cluster" service (webhooks
                              read this node's identity at init); stopped after them */
    &sl_webhooks_builtin,
    &sl_exec_hooks_builtin,
    &sl_s3_upload_builtin, /* before the recorder: stopped after it, so the record_done
                             events of recordings finalised at shutdown are still queued */
    &sl_recorder_builtin,  /* before HLS/HTTP-FLV: its /{app}/mediafiles route comes first */
    &sl_vod_builtin,       /* after the recorder, whose "recorder" service it uses */
    &sl_cleaner_builtin,
    &sl_hls_builtin,
    &sl_httpflv_builtin,
    &sl_shared_objects_builtin,
    &sl_rpc_builtin,
    &sl_streammanager_builtin, /* cluster: over the "cluster" service, looked up per request */
    &sl_restream_builtin, /* its pulls publish into a server whose other modules are up */
    &sl_abr_builtin,      /* publishes variants into a server whose other modules are up; uses
                             the "cluster" service (placement, provision settings) */
    &sl_relay_builtin,    /* after the cluster core, whose "cluster" service it looks for at init */
    &sl_autoscale_builtin, /* uses the "cluster" service (looked up at each tick) */
    &sl_smproxy_builtin,  /* the stream manager's proxy: routes and outgoing requests only */
    NULL,
};
