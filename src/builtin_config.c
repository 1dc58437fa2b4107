/*
 * The list of built-in configuration sections (see builtin_config.h). The
 * order is the order of sluice.yml and docs/config.md, and of the per-app
 * keys under `apps:` (the core's first).
 */
#include "builtin_config.h"

#include "api/api_config.h"
#include "cluster/autoscale/autoscale_config.h"
#include "cluster/core/cluster_config.h"
#include "cluster/smproxy/smproxy_config.h"
#include "modules/abr/abr_config.h"
#include "modules/auth_config.h"
#include "modules/cleaner/cleaner_config.h"
#include "modules/shared_objects/so_config.h"
#include "modules/exec_hooks/exec_hooks_config.h"
#include "modules/hls/hls_config.h"
#include "modules/httpflv/httpflv_config.h"
#include "modules/recorder/recorder_config.h"
#include "modules/restream/restream_config.h"
#include "cluster/relay/relay_config.h"
#include "modules/rpc/rpc_config.h"
#include "modules/s3_upload/s3_config.h"
#include "modules/webhooks/webhooks_config.h"
#include "cluster/streammanager/sm_config.h"
#include "proto/http/http_config.h"
#include "proto/rtmp/rtmp_config.h"
#include "proto/srt/srt_config.h"
#include "proto/rtsp/rtsp_config.h"
#include "proto/webrtc/webrtc_config.h"

static const sl_config_section_t *const g_builtin[] = {
    &sl_config_server_section,
    &sl_config_log_section,
    &sl_rtmp_config_section,
    &sl_config_media_section,
    &sl_http_config_section,
    &sl_hls_config_section,
    &sl_httpflv_config_section, /* per-app only: after hls among the apps' keys */
    &sl_webrtc_config_section,
    &sl_srt_config_section,
    &sl_mpegts_config_section,
    &sl_rtsp_config_section,
    &sl_api_config_section,
    &sl_auth_config_section,
    &sl_webhooks_config_section,
    &sl_exec_config_section,
    &sl_recorder_config_section,
    &sl_cleaner_config_section,
    &sl_s3_config_section,
    &sl_so_config_section,
    &sl_rpc_config_section,
    &sl_restream_config_section,
    &sl_abr_config_section,
    &sl_cluster_config_section,
    &sl_sm_config_section,
    &sl_relay_config_section,
    &sl_autoscale_config_section,
    &sl_smproxy_config_section,
};

/* The static table above. */
const sl_config_section_t *const *sl_builtin_config_sections(size_t *n)
{
    *n = sizeof g_builtin / sizeof g_builtin[0];
    return g_builtin;
}

/* sl_config_init over the built-in list. */
int sl_config_defaults(sl_config_t *cfg)
{
    size_t n;
    const sl_config_section_t *const *s = sl_builtin_config_sections(&n);
    return sl_config_init(cfg, s, n);
}

/* sl_config_print_yaml over the built-in list. */
void sl_config_write_yaml(FILE *out)
{
    size_t n;
    const sl_config_section_t *const *s = sl_builtin_config_sections(&n);
    sl_config_print_yaml(out, s, n);
}

/* sl_config_print_markdown over the built-in list. */
void sl_config_write_markdown(FILE *out)
{
    size_t n;
    const sl_config_section_t *const *s = sl_builtin_config_sections(&n);
    sl_config_print_markdown(out, s, n);
}
