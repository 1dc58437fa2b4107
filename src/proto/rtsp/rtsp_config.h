/*
 * The RTSP protocol's settings, a section of the configuration
 * (base/config.h): the table in rtsp_config.c declares every key (YAML
 * `rtsp.*`, env SLUICE_RTSP_<KEY>); the owner reads them with sl_rtsp_cfg().
 */
#ifndef SL_PROTO_RTSP_RTSP_CONFIG_H
#define SL_PROTO_RTSP_RTSP_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* The `rtsp` section. */
typedef struct sl_rtsp_config {
    int enabled;
    char *bind;                    /* listen address */
    int64_t port;                  /* RTSP, 8554 */
    int64_t tls_port;              /* RTSPS, 8322; 0 = none */
    char *tls_bind;                /* "" = bind */
    char *tls_cert;                /* "" = http.tls_cert */
    char *tls_key;                 /* "" = http.tls_key */
    int udp;                       /* offer RTP over UDP */
    int64_t udp_port_min;          /* first server port of the UDP range (even) */
    int64_t udp_port_max;          /* last one */
    int64_t max_udp_pairs;         /* RTP/RTCP port pairs open at once, whole server */
    int64_t max_request_size;      /* request line + headers, bytes */
    int64_t max_sdp_size;          /* ANNOUNCE body, bytes */
    int64_t max_interleaved_size;  /* one $-framed packet from a client, bytes */
    int64_t max_pending_bytes;     /* a player's unsent output; over it, frames drop to the next keyframe */
    int64_t mtu;                   /* RTP payload size we send */
    int64_t request_timeout_ms;    /* from accept to the first complete request */
    int64_t session_timeout_ms;    /* nothing received (request, RTP or RTCP) for this long: end */
    char *realm;                   /* realm of the WWW-Authenticate challenges */
    char *digest_file;             /* `user password` lines in clear for Digest; "" = Basic only */
} sl_rtsp_config_t;

/** The section descriptor, listed in src/builtin_config.c. */
extern const sl_config_section_t sl_rtsp_config_section;

/** This section of cfg (borrowed; never NULL once the section is registered). */
static inline sl_rtsp_config_t *sl_rtsp_cfg(const sl_config_t *cfg)
{
    return (sl_rtsp_config_t *)sl_config_get(cfg, &sl_rtsp_config_section);
}

#endif
