/*
 * The restream module (docs/restream.md): pulls streams from cameras and
 * other servers (rtsp, rtmp(s), srt, HLS) into the hub as a publisher
 * would, always or on demand, with reconnect and a standby file covering
 * the gaps; and pushes live streams out to RTMP(S)/SRT destinations. Its
 * settings are the `restream` section (restream_config.h); its API lives
 * under /api/v1/restream/ (docs/openapi.yaml).
 */
#ifndef SL_MODULES_RESTREAM_H
#define SL_MODULES_RESTREAM_H

#include "modules/module.h"

extern const sl_builtin_t sl_restream_builtin;

#endif
