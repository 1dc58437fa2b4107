/*
 * Service "webrtc" 1.1, provided by the WebRTC protocol
 * (src/proto/webrtc/webrtc.c) from start to stop: what the Server API and
 * /metrics show about WebRTC without including the protocol's headers
 * (DESIGN.md §2). Two calls: the process's counters since start (and the
 * sessions open now, by kind), and one session's transport and media
 * statistics by session id. Types only; look it up where it is used:
 *
 *   void *ud;
 *   const sl_svc_webrtc_t *wr = sl_service_get(core, SL_SVC_WEBRTC, 1, 0, &ud);
 *   sl_webrtc_session_stats_t st;
 *   if (wr && wr->session(ud, s->id, &st, sizeof st) == 0)
 *       ... st.rtt_ms ...
 *
 * Absent (NULL) when webrtc.enabled is off: users then show no WebRTC
 * figures. Loop thread only. The table and both structs are append-only:
 * new calls and new fields go at the end with a "valid from 1.N" note, and
 * the caller passes the size of the struct it was built with (the provider
 * fills at most that many bytes), so an older caller keeps working.
 */
#ifndef SL_APP_SVC_WEBRTC_H
#define SL_APP_SVC_WEBRTC_H

#include <stddef.h>
#include <stdint.h>

#include "app/services.h"

#define SL_SVC_WEBRTC "webrtc"
#define SL_SVC_WEBRTC_MAJOR 1
#define SL_SVC_WEBRTC_MINOR 4

/* Process-wide counters (since start, except the two "now" gauges). */
typedef struct sl_webrtc_counters {
    uint64_t publishers_now;      /* WHIP sessions open now (any state) */
    uint64_t viewers_now;         /* WHEP sessions open now (any state) */
    uint64_t sessions_total;      /* sessions created (POST answered 201) */
    uint64_t sessions_failed;     /* answered, then ended before media flowed (setup timeout,
                                     DTLS failure, closed or deleted first) */
    uint64_t stun_in;             /* STUN binding requests received */
    uint64_t stun_refused;        /* of those: refused (malformed, unknown ufrag, bad integrity) */
    uint64_t dtls_handshakes;     /* DTLS handshakes completed */
    uint64_t rtp_in, rtp_out;     /* SRTP packets decrypted / sent */
    uint64_t rtp_bytes_in, rtp_bytes_out; /* their RTP bytes (before SRTP) */
    uint64_t srtp_failures;       /* SRTP/SRTCP packets that did not decrypt */
    uint64_t nack_in;             /* sequence numbers viewers NACKed */
    uint64_t nack_out;            /* sequence numbers we NACKed to publishers */
    uint64_t retransmissions;     /* packets resent to viewers for their NACKs */
    uint64_t pli_in, pli_out;     /* keyframe requests from viewers / to publishers */
    uint64_t datagrams_unknown;   /* datagrams from addresses no session owns, or too large */
    uint64_t dc_messages_in, dc_messages_out; /* data channel messages */
    /* valid from 1.1 */
    uint64_t transcoders_to_aac;  /* WHIP publishers transcoding Opus->AAC now */
    uint64_t transcoders_to_opus; /* streams transcoding AAC->Opus for WHEP viewers now */
    /* valid from 1.2 */
    uint64_t bframes_dropped;     /* H.264 B-frames not sent to WHEP viewers (webrtc.bframes) */
    /* valid from 1.3 */
    uint64_t frames_dropped;      /* video frames viewers did not get: their pacing queue was behind */
    uint64_t send_retries;        /* viewer packets the socket refused (EAGAIN/ENOBUFS), retried */
    uint64_t remb_in;             /* REMB messages received from viewers */
    /* valid from 1.4 */
    uint64_t worker_send_drops;   /* viewer packets a worker loop dropped (its socket full, or
                                     its inbox refused the batch; server.workers > 1) */
} sl_webrtc_counters_t;

/* One session's state and statistics (strings are static, never NULL). */
typedef struct sl_webrtc_session_stats {
    const char *kind;             /* "publisher" (WHIP) or "viewer" (WHEP) */
    const char *transport;        /* selected: "udp", "tcp" (ICE-TCP) or "none" yet */
    const char *ice_state;        /* "new" (admission pending), "checking", "connected", "closed" */
    const char *dtls_state;       /* "new", "connecting", "connected", "closed" */
    const char *video_codec;      /* "H264", "VP8" or "" (none negotiated) */
    const char *audio_codec;      /* "opus" or "" */
    int datachannel;              /* 1 when a data channel is open */
    int64_t connect_ms;           /* from the answer to DTLS connected; -1 not yet */
    uint64_t bytes_in, bytes_out; /* on the wire: DTLS, SRTP, SRTCP (over ICE-TCP also STUN and
                                     the framing; UDP STUN checks are not counted) */
    uint64_t packets_in;          /* RTP packets decrypted */
    uint64_t packets_out;         /* RTP packets sent (retransmissions included) */
    double bitrate_in_kbps;       /* bytes_in over the last few seconds */
    double bitrate_out_kbps;      /* bytes_out over the last few seconds */
    uint64_t packets_lost;        /* publisher: video packets given up by the receive buffer;
                                     viewer: cumulative lost of the viewer's last report */
    double loss_fraction;         /* 0..1: the last RTCP interval's fraction lost (publisher:
                                     our own receiver report; viewer: the viewer's) */
    int32_t rtt_ms;               /* viewer: from its receiver reports; -1 unknown (publishers) */
    uint64_t nack_sent;           /* sequence numbers we NACKed (publisher) */
    uint64_t nack_received;       /* sequence numbers the peer NACKed (viewer) */
    uint64_t retransmissions;     /* packets resent for NACKs (viewer) */
    uint64_t pli_sent;            /* keyframe requests sent (publisher) */
    uint64_t pli_received;        /* PLI/FIR received (viewer) */
    uint64_t dc_messages_in, dc_messages_out; /* data channel messages */
    /* valid from 1.1 */
    int transcoding;              /* publisher: its Opus->AAC runs now; viewer: its audio comes
                                     from the stream's AAC->Opus transcoder */
    const char *timestamps;       /* publisher: "arrival" or "sender_report" (lip-synced through
                                     the sender's RTCP SRs); viewer: "" */
    /* valid from 1.3: viewers' congestion control and pacing (0 for publishers) */
    uint64_t estimated_bps;       /* bandwidth estimate (REMB, loss); 0 for publishers */
    uint64_t remb_bps;            /* the viewer's last REMB, 0 = none received */
    uint32_t pacer_queue_ms;      /* how far behind the pacing queue is */
    uint64_t pacer_queue_bytes;   /* payload bytes queued */
    uint64_t frames_dropped;      /* video frames not sent (queue behind, waiting for a keyframe) */
    uint64_t send_retries;        /* sends refused by a full socket, queued and retried */
} sl_webrtc_session_stats_t;

typedef struct sl_svc_webrtc {
    /** Fills *out (at most out_size bytes of it) with the counters. */
    void (*counters)(void *ud, sl_webrtc_counters_t *out, size_t out_size);
    /**
     * Fills *out (at most out_size bytes) for the WebRTC session whose
     * sl_session_t id is session_id (borrowed for the call). 0, or
     * SL_ENOTFOUND when no WebRTC session has that id.
     */
    int (*session)(void *ud, const char *session_id, sl_webrtc_session_stats_t *out,
                   size_t out_size);
} sl_svc_webrtc_t;

#endif
