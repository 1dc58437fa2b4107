/*
 * The "srt" service: the SRT protocol's counters and each SRT session's
 * transport statistics (libsrt's srt_bstats: RTT, loss, retransmissions,
 * rates), for the Server API's client detail (an `srt` object) and
 * /metrics, which reach the protocol only through the service registry
 * (DESIGN.md §2). Provided by src/proto/srt while SRT runs. MPEG-TS over
 * UDP ingest reports its listeners in the same counters.
 */
#ifndef SL_APP_SVC_SRT_H
#define SL_APP_SVC_SRT_H

#include <stddef.h>
#include <stdint.h>

#include "app/services.h"

#define SL_SVC_SRT "srt"
#define SL_SVC_SRT_MAJOR 1
#define SL_SVC_SRT_MINOR 0

/* Process-wide counters (since start, except the "now" gauges). */
typedef struct sl_srt_counters {
    uint64_t publishers_now;      /* SRT sessions publishing now */
    uint64_t readers_now;         /* SRT sessions reading now */
    uint64_t connections_total;   /* connections accepted */
    uint64_t rejected_total;      /* handshakes rejected in the listen callback (bad streamid,
                                     budgets, unknown app) */
    uint64_t denied_total;        /* accepted, then refused by the admission chain */
    uint64_t bytes_in, bytes_out; /* SRT payload bytes of sessions (live ones included) */
    uint64_t frames_dropped;      /* frames dropped: demux queue full, too large, reader behind */
    uint64_t udp_ts_bytes_in;     /* MPEG-TS over UDP ingest: bytes received */
    uint64_t udp_ts_publishing;   /* of its listeners: publishing now */
} sl_srt_counters_t;

/* One SRT session's state and statistics (strings static, never NULL). */
typedef struct sl_srt_session_stats {
    const char *mode;             /* "publish" or "read" */
    const char *state;            /* "admitting", "live", "closing" */
    const char *streamid_form;    /* "plain" (publish:/read:) or "access_control" (#!::) */
    int encrypted;                /* a passphrase is in force */
    int64_t latency_ms;           /* negotiated (receiver latency for publishers, peer's for readers) */
    double rtt_ms;                /* smoothed round-trip time */
    double bandwidth_mbps;        /* estimated link bandwidth */
    double send_rate_mbps;        /* sending rate, over the last interval */
    double recv_rate_mbps;        /* receiving rate, over the last interval */
    uint64_t packets_sent, packets_received;
    uint64_t packets_lost_send;   /* reported lost by the peer (readers) */
    uint64_t packets_lost_recv;   /* detected lost (publishers) */
    uint64_t packets_retransmitted; /* sent again */
    uint64_t packets_dropped_send;  /* too late to send (readers) */
    uint64_t packets_dropped_recv;  /* too late to play (publishers) */
    uint64_t bytes_sent, bytes_received;
    uint64_t frames_dropped;      /* frames not forwarded (queue full, waiting for a keyframe) */
    const char *video_codec;      /* "H264", "H265" or "" */
    const char *audio_codec;      /* "AAC", "Opus" or "" */
} sl_srt_session_stats_t;

typedef struct sl_svc_srt {
    /** Fills *out (at most out_size bytes of it) with the counters. */
    void (*counters)(void *ud, sl_srt_counters_t *out, size_t out_size);
    /**
     * Fills *out (at most out_size bytes) for the SRT session whose id is
     * session_id (borrowed). 0, or SL_ENOTFOUND.
     */
    int (*session)(void *ud, const char *session_id, sl_srt_session_stats_t *out, size_t out_size);
} sl_svc_srt_t;

#endif
