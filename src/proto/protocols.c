/*
 * The table of built-in protocols (see proto.h). Order matters: protocols
 * start in this order and stop in the reverse one. RTMP first, as before
 * the table: its listener is up before the HTTP server's, whose start is
 * followed by the API and the modules' routes.
 */
#include <stddef.h>

#include "proto/http/http.h"
#include "proto/proto.h"
#include "proto/rtmp/rtmp_server.h"
#include "proto/srt/srt.h"
#include "proto/rtsp/rtsp_server.h"
#include "proto/webrtc/webrtc.h"

const sl_proto_t *const sl_builtin_protocols[] = {
    &sl_rtmp_proto,
    &sl_http_proto,
    &sl_webrtc_proto, /* after HTTP: WHIP/WHEP register on its route service */
    &sl_srt_proto,    /* SRT publish/read (UDP) */
    &sl_mpegts_proto, /* MPEG-TS over UDP ingest */
    &sl_rtsp_proto,   /* RTSP publish/play (TCP, UDP, RTSPS) */
    NULL,
};
