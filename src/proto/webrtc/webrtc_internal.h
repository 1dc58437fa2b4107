/*
 * WebRTC's internals, shared by the files of src/proto/webrtc only.
 *
 * One `wrtc_t` per process (the protocol's state): the UDP socket every
 * session shares (ICE-lite, RFC 8445 §2.5), the ICE-TCP listener on the
 * same port number, the DTLS identity, the demultiplexing maps (our ICE
 * ufrag -> session; the peer's selected address -> session), the per-stream
 * WebRTC state (wrtc_stream_t: Opus for viewers) and one 20 ms tick that
 * drives every session's timers (DTLS retransmission, SCTP, NACK, RTCP,
 * consent freshness, setup deadline, keyframe requests).
 *
 * A session (`wrtc_pc_t`, one RTCPeerConnection of a client) is a WHIP
 * publisher or a WHEP viewer. It embeds an sl_session_t first, so the
 * core, the API and admin actions treat it like any other client
 * (protocol "webrtc"). It lives from the POST that created it to DELETE,
 * kick, a timeout or a DTLS/SCTP close; it is freed from the tick (never
 * inside one of its own callbacks: `closing` marks it, the tick reaps).
 *
 * Files: webrtc.c (the protocol entry, sockets, demux, tick),
 * webrtc_signal.c (WHIP/WHEP HTTP: POST, PATCH, DELETE, OPTIONS, with
 * admission), webrtc_pc.c (ICE, DTLS, SRTP, SCTP of one session),
 * webrtc_media.c (RTP in from publishers to the hub, Opus->AAC),
 * webrtc_view.c (hub frames out as RTP to viewers, AAC->Opus per stream,
 * RTCP of both kinds), webrtc_dc.c (data channels <-> hub data frames),
 * webrtc_stats.c (the "webrtc" service), webrtc_ws.c (Red5's WebSocket
 * signalling: the same sessions set up over JSON messages), sdp_offer.c
 * (the server's offer for WebSocket subscribers).
 * Loop thread only, like the rest of the server.
 */
#ifndef SL_PROTO_WEBRTC_WEBRTC_INTERNAL_H
#define SL_PROTO_WEBRTC_WEBRTC_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "app/core.h"
#include "app/svc/http.h"
#include "base/list.h"
#include "base/map.h"
#include "media/audio_bridge.h"
#include "media/rtp_sync.h"
#include "media/stream.h"
#include "net/workers.h"
#include "proto/webrtc/webrtc_config.h"

struct sl_dtls_ctx;
struct sl_dtls;
struct sl_srtp;
struct sl_sctp;
struct sl_rtp_rx;
struct sl_twcc_rx;
struct sl_rtp_tx;
struct sl_h264_depack;
struct sl_vp8_depack;
struct sl_transcoder;
struct sl_sdp;
struct wrtc_pacer;
struct wrtc_wout;
struct wrtc_wbatch;

#define WRTC_PATH_MAX 512         /* hub names, as RTMP and HTTP-FLV limit them */
#define WRTC_TICK_MS 20           /* the timer that drives every session */
#define WRTC_MAX_DATAGRAM 1500    /* larger datagrams are dropped (and counted) */
#define WRTC_TICK_READ_MAX 2048   /* datagrams the tick reads itself (webrtc.c: a loop behind) */
#define WRTC_BACKLOG_GRACE_MS 120000 /* longest a UDP backlog may delay setup/consent deadlines */
#define WRTC_SRTP_ROOM 160        /* room after a packet for SRTP's tag (SL_SRTP_MAX_TRAILER) */
#define WRTC_TCP_MAX_PACKET 1600  /* ICE-TCP: a larger framed packet closes the connection */
#define WRTC_TCP_PENDING_MAX 1024 /* ICE-TCP connections not bound to a session yet */
#define WRTC_RATE_N 5             /* 1 s byte samples: bitrates over the last 4-5 s */
#define WRTC_PACE_MS 5            /* the pacing timer, while some viewer has packets queued */

typedef struct wrtc wrtc_t;
typedef struct wrtc_pc wrtc_pc_t;
typedef struct wrtc_tcp wrtc_tcp_t;
typedef struct wrtc_stream wrtc_stream_t;

/* Counters for /metrics and the API (since start). */
typedef struct wrtc_counters {
    uint64_t sessions_total;      /* sessions created (answered 201) */
    uint64_t sessions_failed;     /* ended before media flowed (ICE/DTLS never completed) */
    uint64_t stun_in, stun_bad;   /* binding requests; those refused (integrity, unknown ufrag) */
    uint64_t dtls_done;           /* DTLS handshakes completed */
    uint64_t rtp_in, rtp_out;     /* packets */
    uint64_t rtp_bytes_in, rtp_bytes_out;
    uint64_t srtp_fail;           /* packets that did not decrypt */
    uint64_t nack_in, nack_out;   /* NACKed sequence numbers received / asked */
    uint64_t rtx_out;             /* retransmissions sent */
    uint64_t pli_in, pli_out;
    uint64_t datagrams_unknown;   /* from an address no session owns */
    uint64_t dc_messages_in, dc_messages_out;
    uint64_t bframes_dropped;     /* H.264 B-frames not sent to viewers (webrtc.bframes: drop) */
    uint64_t frames_dropped;      /* video frames viewers did not get (pacing queue behind) */
    uint64_t send_retries;        /* viewer sends refused by a full socket, queued and retried */
    uint64_t remb_in;             /* REMB messages from viewers */
} wrtc_counters_t;

/* Per-stream WebRTC state: its viewers and where their Opus comes from. */
struct wrtc_stream {
    wrtc_t *w;
    char path[WRTC_PATH_MAX + 1];  /* hub name */
    sl_list_t viewers;             /* wrtc_pc_t.vlink */
    size_t n_viewers;
    wrtc_pc_t *publisher;          /* a WHIP publisher of this stream (native Opus), or NULL */
    struct sl_transcoder *to_opus; /* AAC -> Opus for viewers of a non-WebRTC stream */
    sl_sink_t tap;                 /* internal hub sink feeding to_opus */
    int tap_on;
};

struct wrtc {
    sl_core_t *core;               /* borrowed */
    const sl_http_svc_t *http;     /* the route service (borrowed), NULL without HTTP */
    void *http_ud;
    sl_http_route_t *routes[4];
    struct wrtc_wsig *wsig;        /* Red5 WebSocket signalling (webrtc_ws.c), NULL when off */
    uv_udp_t udp;
    int udp_open;
    uv_tcp_t tcp;
    int tcp_open;
    int udp_port;                  /* bound */
    uv_timer_t tick;
    int tick_open;
    uint64_t last_tick_ms;         /* loop time of the last tick (SCTP's timers want real time) */
    uint64_t udp_clear_ms;         /* loop time the UDP socket was last seen empty (all read) */
    uint64_t udp_behind_log_ms;    /* the "loop is behind" warning: at most every 10 s */
    int handles_open;
    int stopping;
    struct sl_dtls_ctx *dtls_ctx;  /* our certificate, made at start */
    int sctp_started;              /* usrsctp initialised (cleaned up at free) */
    sl_map_t by_ufrag;             /* our ICE ufrag -> wrtc_pc_t* */
    sl_map_t by_addr;              /* "udp|ip|port" or "tcp|ptr" -> wrtc_pc_t* */
    sl_map_t by_id;                /* session id -> wrtc_pc_t* (the API's statistics) */
    sl_map_t by_resource;          /* resource token -> wrtc_pc_t* (PATCH/DELETE URLs) */
    sl_map_t streams;              /* hub name -> wrtc_stream_t* */
    sl_list_t pcs;                 /* every session */
    size_t n_pcs;
    sl_list_t tcps;                /* ICE-TCP connections */
    size_t n_tcp_unbound;
    sl_map_t per_addr;             /* client address -> (void*)(uintptr_t)count */
    char cands[8][64];             /* announced addresses */
    int n_cands;
    wrtc_counters_t c;
    uv_timer_t pace_timer;         /* drains the viewers' pacers (webrtc_view.c) ... */
    int pace_open, pace_running;   /* ... runs only while pacing holds a viewer */
    sl_list_t pacing;              /* viewers with packets queued (wrtc_pacer link) */
    int wout_fd[SL_WORKERS_MAX];   /* per worker: its duplicate of the UDP descriptor + 1, 0 = none
                                      (webrtc_wout.c; closed on the worker at stop) */
    _Atomic uint64_t wout_drops;   /* packets a worker could not send (socket full, inbox full) */
    struct wrtc_wbatch *wout_q[SL_WORKERS_MAX]; /* per worker: batches of this loop iteration, ... */
    struct wrtc_wbatch *wout_qt[SL_WORKERS_MAX]; /* ... posted together by wout_prep (its tail) */
    uv_prepare_t wout_prep;       /* before each poll: one message per worker with its batches */
    int wout_prep_open;
};

/* An ICE-TCP connection (RFC 6544 framing; passive side). */
struct wrtc_tcp {
    uv_tcp_t h;
    wrtc_t *w;
    wrtc_pc_t *pc;                 /* bound after a valid binding request */
    sl_list_t link;                /* in w->tcps */
    uint8_t *rbuf;                 /* partial framed packet */
    size_t rlen;
    uint64_t opened_ms;
    int closing;
};

typedef enum { WRTC_PUBLISHER = 1, WRTC_VIEWER = 2 } wrtc_kind_t;

/* One send track (a viewer's video or audio). */
typedef struct wrtc_out_track {
    int on;
    uint8_t pt;
    uint32_t ssrc;
    uint16_t seq;
    uint32_t ts_base;              /* random RTP timestamp offset */
    uint32_t clock;                /* 90000 or 48000 */
    uint64_t packets, octets;      /* for SR */
    uint32_t last_ts;              /* RTP timestamp of the last packet sent */
    uint64_t last_wall_ms;         /* loop time it was sent (sender reports extrapolate) */
    struct wrtc_hist *hist;        /* what was sent, for NACK (webrtc_media.c) */
} wrtc_out_track_t;

struct wrtc_pc {
    sl_session_t sess;             /* must stay first: the core sees this */
    wrtc_t *w;
    wrtc_kind_t kind;
    sl_list_t link;                /* in w->pcs */
    sl_list_t vlink;               /* viewers: in their wrtc_stream_t */
    wrtc_stream_t *ws;             /* its stream's WebRTC state */
    char path[WRTC_PATH_MAX + 1];  /* hub name "app[/room]/stream" */
    char etag[24];
    char resource[33];             /* random token of the Location URL: knowing it is the right to
                                      PATCH or DELETE the session (session ids are not secret) */
    char ufrag[9], pwd[25];        /* ours */
    char remote_ufrag[257];
    char remote_fp_alg[16], remote_fp[200];
    int dtls_client;               /* we are the DTLS client (the offer said setup:passive) */
    int answer_codec[8];           /* per offer m-line: the codec index we took, -1 = rejected */
    void *pending_post;            /* the POST waiting for admission (webrtc_signal.c), or NULL */
    void *ws_owner;                /* the WebSocket signalling connection (webrtc_ws.c), or NULL */
    void *dc_conn;                 /* its data channel as a "webrtc-ws" conn (webrtc_ws.c), or NULL */
    int addr_counted;              /* counted in w->per_addr */
    int admitted;                  /* admission allowed (the connect event was sent) */
    int playing;                   /* viewer: the play event was sent */
    uint64_t created_ms, last_consent_ms, connected_ms;

    /* the selected transport */
    int have_addr;
    struct sockaddr_storage addr;
    char addr_key[80];
    wrtc_tcp_t *tcp;               /* ICE-TCP: the connection in use, else NULL (UDP) */

    struct sl_dtls *dtls;
    struct sl_srtp *srtp;
    int dtls_up;
    struct sl_sctp *sctp;
    int sctp_port_remote;
    uint16_t dc_sid;               /* the first data channel */
    int dc_open;

    /* negotiated media (from the offer and our choices) */
    int video_codec;               /* SL_CODEC_AVC / SL_CODEC_VP8 / 0 */
    uint8_t video_pt, video_rtx_pt, audio_pt;
    int has_video, has_audio, has_app;
    int ext_mid, ext_twcc;         /* extension ids, 0 = none */
    char video_mid[33], audio_mid[33];

    /* publisher (WHIP) */
    sl_stream_t *stream;           /* while publishing */
    uint32_t in_video_ssrc, in_audio_ssrc;
    struct sl_rtp_rx *vrx, *arx;
    struct sl_twcc_rx *twcc;       /* transport-wide feedback to the publisher, when negotiated */
    uint64_t last_twcc_ms;
    struct sl_h264_depack *h264;
    struct sl_vp8_depack *vp8;     /* VP8 publishers (WebRTC viewers only: RTMP/HLS need H.264) */
    struct sl_audio_bridge *abridge; /* publisher: Opus -> AAC into the hub while someone needs
                                        AAC, Opus to side players (NULL: transcode_audio off) */
    struct sl_audio_side aside;    /* viewer: Opus of a bridged (RTSP, SRT) publisher, as is */
    sl_rtp_sync_t sync;            /* the tracks' timeline: arrival, then the sender's SRs */
    int sync_v, sync_a;            /* track indexes in sync, -1 = none */
    int sync_noted;                /* the switch to sender reports was logged */
    uint32_t v_last_ts;            /* RTP timestamp of the last video access unit */
    int v_started;                 /* a video access unit was pushed */
    uint64_t last_pli_ms;
    int want_key;
    uint8_t fir_seq;
    uint32_t our_ssrc;             /* sender SSRC of our RTCP */
    uint64_t last_rr_ms;

    /* viewer (WHEP) */
    sl_sink_t sink;
    int sink_on;
    int need_key;
    wrtc_out_track_t vout, aout;
    uint64_t last_sr_ms;
    int64_t ts_zero_ms;            /* the stream dts that maps to RTP ts_base */
    int ts_zero_set;
    uint64_t bframes_dropped;      /* B-frames of the stream this viewer did not get */
    int bframes_warned;            /* the once-per-viewer warning was logged */

    uint64_t nack_in, pli_in, rtx_out;  /* per-session counters for the API */
    uint64_t rtp_in, rtp_out;      /* RTP packets decrypted / sent (the "webrtc" service) */
    uint64_t nack_out, pli_out;    /* publisher: sequence numbers NACKed, PLIs sent */
    uint64_t dc_in, dc_out;        /* data channel messages */
    uint32_t rtt_ms;               /* from the viewer's receiver reports */
    uint8_t loss_fraction;         /* the last report's fraction lost (/256) */
    int32_t rr_lost;               /* viewer: cumulative lost of its last report (video first) */
    uint64_t rate_ms[WRTC_RATE_N], rate_in[WRTC_RATE_N], rate_out[WRTC_RATE_N]; /* bitrate samples */
    int rate_n;                    /* samples taken (webrtc_stats.c), ring index = rate_n % N */
    int closing;                   /* marked: the tick frees it */
    char close_reason[128];
    int answered;                  /* the POST was answered 201 (counted in sessions_total) */

    /* viewer pacing and congestion control (webrtc_view.c) */
    struct wrtc_pacer *pacer;      /* queue + estimator while playing, else NULL */
    int ext_abs_send_time;         /* abs-send-time extension id of the video m-line, 0 = none */
    uint64_t frames_dropped;       /* video frames not sent: queue behind, waiting for a key */
    uint64_t send_retries;         /* sends refused by a full socket (queued, retried) */

    /* viewer: its loop (server.workers > 1, webrtc_wout.c) */
    sl_worker_t *worker;           /* counted in its players gauge while playing, else NULL */
    struct wrtc_wout *wout;        /* owned by the worker: the send side there, NULL on the main loop */
    struct wrtc_wbatch *wbatch;    /* packets gathered for the worker, not posted yet */
    size_t wout_overhead;          /* SRTP tag bytes (byte counters) */
};

/* webrtc.c */
/** "udp|ip|port": the by_addr key of a UDP peer. */
void wrtc__addr_key(char *out, size_t cap, const struct sockaddr *sa);
/** Closes an ICE-TCP connection whose session is being freed. */
void wrtc__tcp_close_bound(wrtc_tcp_t *t);
/**
 * Sends one datagram (or one framed packet on ICE-TCP) to the session's
 * selected address. 0 when sent (or dropped for good: no address, ICE-TCP
 * backlog), SL_EAGAIN when the UDP socket is full now (EAGAIN/ENOBUFS: the
 * caller may retry), else a negative error.
 */
int wrtc_send(wrtc_pc_t *pc, const uint8_t *p, size_t len);
/** Starts the pacing timer if it is not running (webrtc_view.c queued something). */
void wrtc_pace_arm(wrtc_t *w);
/** Marks the session for closing with a reason; the tick frees it. Idempotent. */
void wrtc_pc_close(wrtc_pc_t *pc, const char *reason);
/** The session for a resource token, or NULL. */
wrtc_pc_t *wrtc_find(wrtc_t *w, const char *id);
/** Per-stream state, created on demand (NULL on ENOMEM). */
wrtc_stream_t *wrtc_stream_get(wrtc_t *w, const char *path);
/** Frees the per-stream state when nobody uses it any more. */
void wrtc_stream_release(wrtc_stream_t *ws);

/* webrtc_signal.c */
int wrtc_signal_start(wrtc_t *w);
void wrtc_signal_stop(wrtc_t *w);

/* webrtc_ws.c (Red5's WebSocket signalling) */
/** Registers the WebSocket route and the "webrtc-ws" service. 0 or an SL_E* error. */
int wrtc_ws_start(wrtc_t *w);
/** Closes every signalling socket and removes the route (at stop). */
void wrtc_ws_stop(wrtc_t *w);
/** From wrtc_pc_free: the session of a signalling socket is going away. */
void wrtc_ws_pc_gone(wrtc_pc_t *pc);
/*
 * A data channel message for the "webrtc-ws" handlers other code added:
 * returns 1 when one took it (the caller does nothing more), 0 when none
 * matched (the caller handles it as before).
 */
int wrtc_ws_dc_message(wrtc_pc_t *pc, const uint8_t *p, size_t len, int is_text);
/* The session ends: its data channel conn (pc->dc_conn) is closed and freed. */
void wrtc_ws_dc_gone(wrtc_pc_t *pc);
/*
 * The session op invoke (core.h) of WebRTC sessions: sends Red5's `send`
 * message to the client on its data channel when open, else on its
 * signalling socket; SL_EDECLINED when it has neither. Red5's SDK has no
 * answer for it: cb comes once from a 0 ms timer with status 0 and
 * result_json NULL ("sent").
 */
int wrtc_ws_invoke(sl_session_t *s, const char *method, const char *params_json,
                   uint64_t timeout_ms, sl_session_invoke_cb cb, void *ud);

/* webrtc_pc.c */
/** A new session for a POST (registered with the core; nothing else yet). NULL on ENOMEM. */
wrtc_pc_t *wrtc_pc_alloc(wrtc_t *w, wrtc_kind_t kind, const char *path, const char *remote, int port);
/**
 * After admission: ICE credentials and the media choices from the offer.
 * 0, or an HTTP status (400, 406, 500) with why filled.
 */
int wrtc_pc_setup(wrtc_pc_t *pc, const struct sl_sdp *offer, char *why, size_t why_cap);
/** The sdpfrag answering an ICE restart (our new ufrag/pwd). Length or SL_E*. */
int wrtc_pc_frag_answer(wrtc_pc_t *pc, char *out, size_t cap);
/** Writes the SDP answer to the session's offer. Length or a negative SL_E*. */
int wrtc_pc_answer(wrtc_pc_t *pc, const struct sl_sdp *offer, char *out, size_t cap);
/** A STUN binding request from the socket; from_tcp when on ICE-TCP. */
void wrtc_pc_on_stun(wrtc_t *w, const uint8_t *p, size_t len, const struct sockaddr *from,
                     wrtc_tcp_t *from_tcp);
/** A non-STUN datagram of a session (DTLS, SRTP, SRTCP). */
void wrtc_pc_on_packet(wrtc_pc_t *pc, const uint8_t *p, size_t len);
/** The tick: timers of one session (now = loop time). */
void wrtc_pc_tick(wrtc_pc_t *pc, uint64_t now_ms);
/*
 * The latest time up to which everything pc's peer sent has been read:
 * now for ICE-TCP, else the time the shared UDP socket was last seen empty
 * (webrtc.c). Silence deadlines (setup, consent) are measured to it, so a
 * loop that falls behind its socket never blames its peers for datagrams
 * still queued in the kernel (by WRTC_BACKLOG_GRACE_MS at most).
 */
uint64_t wrtc_heard_until_ms(const wrtc_pc_t *pc, uint64_t now_ms);
/** Frees a closed session (from the tick or at stop). */
void wrtc_pc_free(wrtc_pc_t *pc);
/** ICE restart: new local credentials (PATCH with a new ufrag). */
int wrtc_pc_ice_restart(wrtc_pc_t *pc, const char *remote_ufrag);
/** Sends a data channel message (text) to the session; 0 or a negative SL_E*. */
int wrtc_pc_dc_send(wrtc_pc_t *pc, const uint8_t *p, size_t len, int is_text);
/** Sends a plain RTCP packet (protects it). */
void wrtc_pc_send_rtcp(wrtc_pc_t *pc, uint8_t *p, size_t len, size_t cap);
/** Sends a plain RTP packet (protects it). */
void wrtc_pc_send_rtp(wrtc_pc_t *pc, uint8_t *p, size_t len, size_t cap);

/* webrtc_media.c (publishers) */
/** The publisher's DTLS is up: publish into the hub. 0 or an error (the session closes). */
int wrtc_pub_start(wrtc_pc_t *pc);
void wrtc_pub_stop(wrtc_pc_t *pc, const char *reason);
/** A decrypted RTP packet from a publisher. */
void wrtc_pub_on_rtp(wrtc_pc_t *pc, const uint8_t *p, size_t len);
/** A sender report of the publisher (RTP clock -> NTP). */
void wrtc_pub_on_sr(wrtc_pc_t *pc, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts);
/** The publisher's stream time now (ms): where a data message goes between its media frames. */
int64_t wrtc_pub_now_dts(wrtc_pc_t *pc);
/** Pushes a frame of kind with body (reference taken over) into the publisher's stream at dts. */
void wrtc_pub_push(wrtc_pc_t *pc, uint8_t kind, int64_t dts, sl_buf_t *body);
/** Media timers of one session (NACK, RTCP reports, keyframe requests); viewers: wrtc_view_tick. */
void wrtc_media_tick(wrtc_pc_t *pc, uint64_t now_ms);

/* webrtc_view.c (viewers, RTCP) */
/** A decrypted RTCP compound packet from either kind. */
void wrtc_on_rtcp(wrtc_pc_t *pc, const uint8_t *p, size_t len);
/** The viewer's DTLS is up: attach to the hub. */
int wrtc_view_start(wrtc_pc_t *pc);
void wrtc_view_stop(wrtc_pc_t *pc, const char *reason);
/** A viewer's timers (sender reports). */
void wrtc_view_tick(wrtc_pc_t *v, uint64_t now_ms);
/**
 * The pacing timer: drains every queued viewer; returns 1 while some
 * viewer still has packets queued (the timer keeps running), else 0.
 */
int wrtc_view_pace(wrtc_t *w, uint64_t now_ms);
/** A viewer's estimate, last REMB, pacing queue delay and bytes (for the API). */
void wrtc_view_pace_stats(const wrtc_pc_t *v, uint64_t now_ms, uint64_t *estimated_bps, uint64_t *remb_bps,
                          uint32_t *queue_ms, uint64_t *queue_bytes);
/** One Opus packet, a slice of buf (a reference is taken while queued), to a viewer. */
void wrtc_view_send_opus_buf(wrtc_pc_t *v, sl_buf_t *buf, uint32_t off, size_t len, int64_t dts_ms);

/* webrtc_wout.c (viewers' sends on a worker loop) */
/**
 * At play: picks the viewer's loop (server.workers > 1; the least loaded,
 * the main one for ICE-TCP) and counts it there; on a worker, splits the
 * SRTP session and hands the outbound half to it. 0 (nothing with one
 * loop) or SL_ENOMEM.
 */
int wrtc_wout_attach(wrtc_pc_t *v);
/** Queues one RTP packet (header bytes, a reference to the payload) for the worker. 0 or SL_E*. */
int wrtc_wout_rtp(wrtc_pc_t *v, const uint8_t *hdr, size_t hl, sl_buf_t *buf, uint32_t off, uint16_t len);
/** Copies one plain RTCP packet for the worker to protect and send (its own batch). 0 or SL_E*. */
int wrtc_wout_rtcp(wrtc_pc_t *v, const uint8_t *p, size_t len);
/** Closes the viewer's open batch (after each pacer drain); it leaves after this loop iteration's poll. */
void wrtc_wout_flush(wrtc_pc_t *v);
/** At stop: posts the rest and the detach (the worker frees the send side); uncounts the viewer. */
void wrtc_wout_detach(wrtc_pc_t *v);
/** Protocol stop, after every session was freed: the workers close their descriptors. */
void wrtc_wout_stop(wrtc_t *w);

/* webrtc_dc.c (data channels) */
/** A data channel message from the session. */
void wrtc_on_dc_message(wrtc_pc_t *pc, const uint8_t *p, size_t len, int is_text);
/** A data frame of the stream (borrowed) to a viewer's data channel. */
void wrtc_view_send_data(wrtc_pc_t *v, const sl_frame_t *f);
/** A viewer's data channel opened: it gets the stream's metadata. */
void wrtc_view_on_dc_open(wrtc_pc_t *pc);

/* webrtc_stats.c */
/** Registers the "webrtc" service (src/app/svc/webrtc.h). 0 or an SL_E* error. */
int wrtc_stats_register(wrtc_t *w);
/** Unregisters it (at stop; harmless when not registered). */
void wrtc_stats_unregister(wrtc_t *w);
/** From the tick: takes a byte sample for the bitrates once a second. */
void wrtc_stats_sample(wrtc_pc_t *pc, uint64_t now_ms);

#endif
