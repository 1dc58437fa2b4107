/*
 * Internals of src/proto/rtsp shared by rtsp_server.c (sockets, TLS,
 * requests, UDP ports, timers) and rtsp_media.c (publish and play media:
 * depacketizers into the hub, frames out as RTP, RTCP, the DESCRIBE SDP).
 *
 * Lifetime: rtsp_conn_close() marks a connection closing, ends its session
 * (unpublish / leave the stream, with the events), and closes its handles
 * (TCP, and each track's UDP pair); the memory is freed in the last close
 * callback, never inside its own call stack.
 */
#ifndef SL_PROTO_RTSP_RTSP_INTERNAL_H
#define SL_PROTO_RTSP_RTSP_INTERNAL_H

#include <uv.h>

#include "app/admission.h"
#include "app/core.h"
#include "base/buf.h"
#include "base/tls.h"
#include "media/audio_bridge.h"
#include "media/rtp_aac.h"
#include "media/rtp_h264.h"
#include "media/rtp_h265.h"
#include "media/rtp_rx.h"
#include "media/rtp_sync.h"
#include "media/sdp.h"
#include "net/listener.h"
#include "proto/rtsp/rtsp_config.h"
#include "proto/rtsp/rtsp_req.h"
#include "proto/rtsp/rtsp_server.h"

#define RTSP_MAX_TRACKS 2        /* one video and one audio track per session */
#define RTSP_PATH_MAX 256        /* app/stream path */
#define RTSP_REORDER 4           /* B-frames: video frames held to find decode times */

/* A video frame held by the B-frame window (rtsp_media.c). */
typedef struct rtsp_held {
    sl_buf_t *body;              /* FLV body (owned), its cts patched on release */
    int64_t pts_ms;
} rtsp_held_t;

typedef struct rtsp_conn rtsp_conn_t;

/* A server RTP/RTCP UDP port pair of one track. */
typedef struct rtsp_udp {
    uv_udp_t sock[2];            /* [0] RTP (even port), [1] RTCP */
    int port;                    /* the RTP port */
    rtsp_conn_t *c;              /* owner (cleared when the connection closes) */
    int track;                   /* index in c->tracks */
    int open;                    /* handles not closed yet */
} rtsp_udp_t;

typedef struct rtsp_track {
    struct rtsp_conn *conn;      /* owner (set when publishing starts) */
    int kind;                    /* SL_SDP_VIDEO / SL_SDP_AUDIO */
    uint32_t codec;              /* SL_CODEC_* */
    uint8_t pt;                  /* payload type */
    uint32_t clock;              /* RTP clock (Hz) */
    int channels;
    char control[SL_SDP_MAX_CONTROL]; /* the track's a=control */
    int setup;                   /* SETUP done */
    int tcp;                     /* interleaved */
    int ch[2];                   /* interleaved channels: RTP, RTCP */
    rtsp_udp_t *udp;             /* UDP pair (owned until closed), or NULL */
    struct sockaddr_storage peer[2]; /* client's RTP / RTCP address (UDP) */
    /* play */
    uint32_t ssrc;
    uint16_t seq;
    uint32_t ts_base;            /* random RTP timestamp offset */
    uint32_t last_ts;            /* last RTP timestamp sent */
    uint64_t last_send_ms;       /* loop time of that packet */
    uint32_t pkts, octets;       /* sent, for SRs */
    uint64_t last_sr_ms;
    /* publish */
    uint32_t in_ssrc;
    sl_rtp_rx_t *rx;             /* reorder buffer (owned) */
    sl_h264_depack_t *h264;      /* depacketizers (owned), one of them by codec */
    sl_h265_depack_t *h265;
    sl_aac_depack_t *aac;
    sl_aac_fmtp_t aac_fmtp;
    int sync;                    /* track index in c->sync */
    int config_sent;             /* the audio sequence header was pushed */
    int have_max;                /* max_ts/max_ms hold the newest video timestamp */
    uint32_t max_ts;             /* newest RTP timestamp of the track */
    int64_t max_ms;              /* and its time in the stream's timeline */
    int reorder;                 /* B-frames seen: frames go through the window below */
    rtsp_held_t held[RTSP_REORDER + 1]; /* oldest first */
    int n_held;
    int64_t pts_pool[RTSP_REORDER + 1]; /* presentation times not yet given out as decode times */
    int64_t last_dts;
    uint64_t last_rr_ms;
    /* sprop parameter sets from the SDP (decoded), given to the depacketizer */
    uint8_t ps[3][512];
    size_t ps_len[3];
} rtsp_track_t;

typedef enum { RTSP_ROLE_NONE = 0, RTSP_ROLE_PUBLISH, RTSP_ROLE_PLAY } rtsp_role_t;

struct sl_rtsp_server {
    sl_core_t *core;
    sl_listener_t net;
    sl_list_t conns;
    size_t n_conns;
    int stopping;
    size_t n_udp_pairs;          /* open pairs (budget rtsp.max_udp_pairs) */
    int udp_next;                /* next RTP port to try */
    uint8_t rbuf[65536];         /* read buffer / TLS plaintext (loop thread only) */
    uint8_t wire[SL_TLS_RECORD_MAX + 1024]; /* ciphertext taken from the filter */
};
typedef struct sl_rtsp_server rtsp_server_t;

struct rtsp_conn {
    sl_session_t sess;           /* must stay first */
    rtsp_server_t *srv;
    uv_tcp_t tcp;
    sl_list_t link;              /* in srv->conns */
    int handles;                 /* open handles (tcp + UDP sockets) */
    int closing;
    int connected;               /* an admission passed: connect/disconnect events */
    sl_tls_t *tls;               /* RTSPS filter (owned) or NULL */
    int tls_established;
    uint8_t *in;                 /* unparsed input (plaintext), in_cap bytes, grown on demand */
    size_t in_len, in_cap;
    size_t in_max;               /* the cap: request + SDP + one interleaved packet */
    sl_wbuf_t out;               /* plaintext output not yet written / encrypted */
    sl_wbuf_t wire;              /* RTSPS: ciphertext not yet written */
    int writing;                 /* a uv_write is in flight */
    uint64_t accept_ms, last_in_ms;
    int got_request;             /* a complete request was read */
    /* the session */
    char session_id[20];         /* "" until SETUP */
    rtsp_role_t role;
    char path[RTSP_PATH_MAX];    /* "live/cam1" of ANNOUNCE / DESCRIBE */
    int admitted;                /* path admitted for role */
    rtsp_track_t tracks[RTSP_MAX_TRACKS];
    int n_tracks;
    int live;                    /* RECORD / PLAY started */
    int paused;
    char nonce[33];              /* Digest nonce of this connection */
    /* admission in flight */
    sl_admit_t *admit;
    int in_admit_call;           /* inside sl_admit(): its callback must not re-enter the parser */
    int pending_cseq;
    int had_creds;
    char *pending_sdp;           /* ANNOUNCE body waiting for admission (owned) */
    size_t pending_sdp_len;
    char pending_url[SL_RTSP_MAX_URL];
    /* publishing */
    sl_stream_t *stream;
    sl_rtp_sync_t sync;
    int sync_noted;              /* the switch to sender reports was handled */
    struct sl_audio_bridge *abridge; /* Opus/G.711 audio: AAC for the hub, the original for side players */
    /* playing */
    sl_sink_t sink;
    int sink_on;
    sl_audio_side_t aside;       /* the publisher's original audio through its bridge (attached or not) */
    int need_key;
    int video_track, audio_track; /* index or -1 */
};

/* rtsp_server.c */
/** Queues bytes for the client (bounded by rtsp.max_pending_bytes + 64 KB of replies). */
int rtsp_send(rtsp_conn_t *c, const void *p, size_t n);
/** Writes what is queued (plain or through TLS). */
void rtsp_flush(rtsp_conn_t *c);
/** Bytes queued and not written. */
size_t rtsp_pending(const rtsp_conn_t *c);
/** Closes the connection (idempotent); reason is logged. */
void rtsp_conn_close(rtsp_conn_t *c, const char *reason);
/** Sends an RTP or RTCP packet of track t: interleaved or by UDP (hdr + payload, borrowed). */
int rtsp_send_packet(rtsp_conn_t *c, rtsp_track_t *t, int rtcp, const uint8_t *hdr, size_t hdr_len,
                     const uint8_t *payload, size_t len);

/* rtsp_media.c */
/** Sets up the publish side from the tracks (depacketizers, timeline). 0 or SL_ENOMEM. */
int rtsp_pub_start(rtsp_conn_t *c);
/** Ends publishing (unpublish, events), frees the depacketizers. */
void rtsp_pub_stop(rtsp_conn_t *c);
/** One RTP packet of track ti from the publisher (borrowed). */
void rtsp_pub_rtp(rtsp_conn_t *c, int ti, const uint8_t *p, size_t len);
/** One RTCP compound of track ti (borrowed): SRs map the timeline. */
void rtsp_rtcp_in(rtsp_conn_t *c, int ti, const uint8_t *p, size_t len);
/** Fills c->tracks from an ANNOUNCE's SDP. 0, or SL_EPROTO with a reason (static) in *why. */
int rtsp_tracks_from_sdp(rtsp_conn_t *c, const sl_sdp_t *sdp, const char **why);
/**
 * Writes the DESCRIBE SDP of stream st into out (cap) and fills c->tracks
 * for the player. Returns the length, SL_ENOTFOUND when the stream has no
 * codec we can send, SL_ETOOBIG.
 */
int rtsp_describe(rtsp_conn_t *c, sl_stream_t *st, const char *host, char *out, size_t cap);
/** Attaches the player's sink (PLAY). 0 or an error (stream gone). */
int rtsp_play_start(rtsp_conn_t *c);
/** Detaches the player (events). */
void rtsp_play_stop(rtsp_conn_t *c, const char *reason);
/** Timers: RR to publishers, SR to players, NACK-less loss handling. */
void rtsp_media_tick(rtsp_conn_t *c, uint64_t now);

#endif
