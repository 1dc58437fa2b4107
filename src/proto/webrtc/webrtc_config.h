/*
 * The WebRTC protocol (WHIP publish, WHEP play, data channels): its
 * settings, a section of the configuration (base/config.h).
 *
 * The table in webrtc_config.c declares every key (YAML `webrtc.*`, env
 * SLUICE_WEBRTC_<KEY>, per app `apps.<name>.webrtc`); the engine fills the
 * structs below, which the protocol reads with sl_webrtc_cfg(cfg) and
 * sl_webrtc_app_cfg(app).
 */
#ifndef SL_PROTO_WEBRTC_WEBRTC_CONFIG_H
#define SL_PROTO_WEBRTC_WEBRTC_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* The `webrtc` section. */
typedef struct sl_webrtc_config {
    int enabled;
    char *bind;                          /* UDP (and ICE-TCP) listen address */
    int64_t port;                        /* one UDP port for every session; the same TCP port */
    int tcp;                             /* ICE-TCP (RFC 6544) passive candidates on `port` */
    char *candidates;                    /* addresses announced, comma list; "" = the interfaces' */
    char *nat_1to1;                      /* "private=public,..." rewrites of announced addresses */
    char *ice_servers;                   /* stun:/turn: URLs handed to clients (Link headers) */
    char *ice_username;                  /* TURN username for those URLs */
    char *ice_credential;                /* TURN credential (never logged) */
    int64_t setup_timeout_ms;            /* answer to ICE + DTLS done, else the session ends */
    int64_t consent_timeout_ms;          /* no consent check (STUN) for this long: session ends */
    int64_t max_sessions;                /* whole server */
    int64_t max_sessions_per_address;    /* per client address (signalling's) */
    int64_t max_sdp_bytes;               /* largest offer accepted */
    int64_t keyframe_interval_ms;        /* PLI to WHIP publishers this often (HLS segments) */
    int64_t nack_buffer_ms;              /* how long a gap is waited for (NACK) before loss */
    int h264;                            /* offer H.264 (packetization-mode 1) */
    int vp8;                             /* accept VP8 */
    int transcode_audio;                 /* Opus<->AAC so RTMP/HLS and WebRTC hear each other */
    int datachannel;                     /* accept data channels */
    int64_t max_message_size;            /* data channel message cap */
    int64_t mtu;                         /* RTP payload budget per packet */
    int64_t bframes;                     /* SL_WEBRTC_BFRAMES_*: H.264 B-frames to viewers */
    /* Red5's WebSocket signalling (webrtc_ws.c) */
    int ws;                              /* take WebSocket upgrades on /{app}/?id= */
    int64_t ws_max_message_bytes;        /* largest JSON message accepted */
    int64_t ws_messages_per_second;      /* per socket; more closes it */
    int64_t ws_max_sockets;              /* whole server */
    int64_t ws_max_sockets_per_address;  /* per client address */
    int64_t ws_idle_timeout_ms;          /* no valid message for this long: closed */
    int pacing;                          /* viewers: pace packets at the estimate (else burst) */
    int64_t max_queue_ms;                /* viewers: queued media beyond this drops video to a key */
    int64_t min_bitrate;                 /* viewers: clamp of the bandwidth estimate (bit/s) */
    int64_t start_bitrate;               /* viewers: the estimate before any feedback (bit/s) */
    int64_t max_bitrate;                 /* viewers: clamp of the bandwidth estimate (bit/s) */
} sl_webrtc_config_t;

/* webrtc.bframes */
enum { SL_WEBRTC_BFRAMES_DROP = 0, SL_WEBRTC_BFRAMES_SEND = 1 };

/* Per-app settings (apps.<name>.<key>). */
typedef struct sl_webrtc_app_config {
    int webrtc;                          /* WHIP/WHEP served for this app */
} sl_webrtc_app_config_t;

/** The section descriptor, to list in the configuration (see src/builtin_config.c). */
extern const sl_config_section_t sl_webrtc_config_section;

/** This section of cfg (borrowed; never NULL once the section is registered). */
static inline sl_webrtc_config_t *sl_webrtc_cfg(const sl_config_t *cfg)
{
    return (sl_webrtc_config_t *)sl_config_get(cfg, &sl_webrtc_config_section);
}

/** This section's settings of one app (borrowed, like the app). */
static inline sl_webrtc_app_config_t *sl_webrtc_app_cfg(const sl_app_config_t *app)
{
    return (sl_webrtc_app_config_t *)sl_config_app_get(app, &sl_webrtc_config_section);
}

#endif
