/*
 * The SRT protocol's settings (section `srt`, per app `apps.<name>.srt` and
 * `apps.<name>.srt_passphrase`) and MPEG-TS-over-UDP ingest's (section
 * `mpegts`), sections of the configuration (base/config.h); the tables
 * are in srt_config.c.
 */
#ifndef SL_PROTO_SRT_SRT_CONFIG_H
#define SL_PROTO_SRT_SRT_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* The `srt` section. */
typedef struct sl_srt_config {
    int enabled;
    char *bind;                       /* UDP listen address */
    int64_t port;                     /* UDP port */
    int64_t latency_ms;               /* SRTO_LATENCY: receive/peer latency */
    char *passphrase;                 /* "" = no encryption required (never logged) */
    int64_t pbkeylen;                 /* 0 (default 16), 16, 24 or 32 bytes */
    int64_t payload_size;             /* bytes of TS per SRT message (7 x 188) */
    int64_t max_connections;          /* whole server, accepted SRT sockets */
    int64_t max_connections_per_address;
    int64_t max_streamid_bytes;       /* longer streamids are rejected in the handshake */
    int64_t handshake_timeout_ms;     /* SRTO_CONNTIMEO of accepted sockets */
    int64_t admission_timeout_ms;     /* accepted -> admitted, else closed */
    int64_t idle_timeout_ms;          /* a publisher sending nothing this long is closed */
    int64_t max_frame_size;           /* largest demuxed frame */
    int64_t max_queue_bytes;          /* per publisher: demuxed bytes waiting for the loop */
} sl_srt_config_t;

/* Per-app settings. */
typedef struct sl_srt_app_config {
    int srt;                          /* SRT publish/read allowed for this app */
    char *passphrase;                 /* this app's passphrase; "" = srt.passphrase */
} sl_srt_app_config_t;

/* The `mpegts` section. */
typedef struct sl_mpegts_config {
    char *udp;                        /* "[addr:]port=app/stream" comma list */
    char *bind;                       /* address of entries without one */
    int64_t max_frame_size;
    int64_t max_queue_bytes;
    int64_t idle_timeout_ms;          /* no datagram for this long: the publish ends */
} sl_mpegts_config_t;

extern const sl_config_section_t sl_srt_config_section;
extern const sl_config_section_t sl_mpegts_config_section;

static inline sl_srt_config_t *sl_srt_cfg(const sl_config_t *cfg)
{
    return (sl_srt_config_t *)sl_config_get(cfg, &sl_srt_config_section);
}

static inline sl_srt_app_config_t *sl_srt_app_cfg(const sl_app_config_t *app)
{
    return (sl_srt_app_config_t *)sl_config_app_get(app, &sl_srt_config_section);
}

static inline sl_mpegts_config_t *sl_mpegts_cfg(const sl_config_t *cfg)
{
    return (sl_mpegts_config_t *)sl_config_get(cfg, &sl_mpegts_config_section);
}

#endif
