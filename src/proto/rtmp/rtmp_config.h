/*
 * The RTMP protocol: its settings, a section of the configuration (base/config.h).
 *
 * The table in rtmp_config.c declares every key (YAML `rtmp.*`, env SLUICE_RTMP_<KEY>); the engine fills the structs
 * below, which the owner reads with sl_rtmp_cfg(cfg).
 */
#ifndef SL_PROTO_RTMP_RTMP_CONFIG_H
#define SL_PROTO_RTMP_RTMP_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* rtmp.write_mode */
enum { SL_RTMP_WRITE_WRITEV = 0, SL_RTMP_WRITE_URING = 1 };

/* The `rtmp` section. */
typedef struct sl_rtmp_config {
    int enabled;
    char *bind;                          /* listen address */
    int64_t port;
    int64_t chunk_size;                  /* outgoing chunk size we announce */
    int64_t max_chunk_size;              /* largest incoming chunk size accepted */
    int64_t max_message_size;            /* largest incoming message accepted */
    int64_t max_partial_bytes;           /* per connection after connect: half-received bytes */
    int64_t max_partial_bytes_before_connect; /* the same until connect is admitted */
    int64_t max_partial_messages;        /* per connection: messages half received at once */
    int64_t max_partial_bytes_total;     /* whole server: half-received bytes */
    int64_t max_control_bytes_before_connect; /* queued replies until connect is admitted */
    int64_t handshake_timeout_ms;
    int64_t connect_timeout_ms;          /* accept to connect command: close */
    int64_t idle_timeout_ms;             /* no bytes in for this long: close */
    int64_t amf_max_depth;               /* AMF nesting limit */
    int64_t window_ack_size;             /* window we announce */
    int64_t ping_interval_ms;            /* 0 = never ping */
    int tcp_nodelay;
    int64_t write_mode;                  /* SL_RTMP_WRITE_WRITEV or SL_RTMP_WRITE_URING */
    int64_t zerocopy_min_bytes;          /* MSG_ZEROCOPY for writes of at least this; 0 = off */
    int64_t notsent_lowat;               /* TCP_NOTSENT_LOWAT on players' sockets; 0 = unset */
    int write_cork;                      /* TCP_CORK around each flush */
    int64_t tls_port;                    /* RTMPS listener port; 0 = no RTMPS */
    char *tls_bind;                      /* RTMPS listen address; "" = rtmp_bind */
    char *tls_cert;                      /* PEM certificate (chain) for RTMPS; "" = http_tls_cert */
    char *tls_key;                       /* PEM private key for RTMPS; "" = http_tls_key */
} sl_rtmp_config_t;

/** The section descriptor, to list in the configuration (see src/builtin_config.c). */
extern const sl_config_section_t sl_rtmp_config_section;

/** This section of cfg (borrowed; never NULL once the section is registered). */
static inline sl_rtmp_config_t *sl_rtmp_cfg(const sl_config_t *cfg)
{
    return (sl_rtmp_config_t *)sl_config_get(cfg, &sl_rtmp_config_section);
}

#endif
