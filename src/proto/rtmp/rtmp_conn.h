/*
 * One RTMP connection (internal to src/proto/rtmp): socket I/O, the
 * handshake, chunk reading and message dispatch (rtmp_conn.c), the command
 * layer (rtmp_cmd.c: connect, publish, play, ...), and the write path with
 * its subscriber queue.
 *
 * Write path: control and command messages are serialised into `ctrl`;
 * media frames wait in `q` (sl_subq_t) as references. The connection sits
 * on the server's flush list when it has anything to send; the server
 * flushes that list just before the loop sleeps (uv_prepare) or, with the
 * merged-write window on, on a timer. A flush gathers ctrl bytes and up to
 * SL_RTMP_MAX_IOV/2 - 1 frames (per-connection header + shared chunked
 * body) into one writev via uv_try_write, with the headers and iovecs on
 * the stack; frames leave the queue only once written. What the socket
 * does not take goes out with uv_write: only then is a write request
 * allocated (sl_rtmp_wreq_t, sized for that batch) to own the remaining
 * headers, the ctrl bytes and the frame references until its callback. So
 * the steady state allocates nothing per frame per subscriber, and an idle
 * connection carries no write state at all. Only one write is in flight
 * per connection. rtmp.write_mode io_uring hands the same batches of up to
 * 64 players to the kernel in one io_uring submission (rtmp_conn.c,
 * net/uring_send.h); `uring_busy` marks a connection whose batch is in the
 * submission being built. rtmp.zerocopy_min_bytes sends large batches with
 * MSG_ZEROCOPY and keeps their bytes in `zc_pending` records until the
 * kernel's notification.
 *
 * RTMPS: a connection accepted on the TLS listener has a filter (`tls`)
 * between its socket and everything above; only the socket edge differs
 * (see rtmp_conn.c). Ciphertext read is fed to the filter and the
 * plaintext goes to the same handshake and chunk parser. A flush encrypts
 * the same gathered batches (ctrl bytes, per-player headers and shared
 * bodies) into the filter while little ciphertext waits there, then writes
 * the ciphertext with uv_try_write; what the socket refuses goes out with
 * one uv_write whose request (sl_rtmp_wreq_t with n = 0) owns a copy of it.
 * Frames leave the queue once encrypted. sess.bytes_in/out count bytes on
 * the wire (ciphertext), so stall detection keeps its meaning.
 *
 * Lifetime: conn_close() marks the connection closing, detaches it from
 * streams and the session registry, and closes its handles; memory is freed
 * in the last close callback, never inside its own call stack.
 */
#ifndef SL_PROTO_RTMP_CONN_H
#define SL_PROTO_RTMP_CONN_H

#include <uv.h>

#include "app/admission.h"
#include "app/core.h"
#include "base/tls.h"
#include "media/subq.h"
#include "proto/rtmp/amf.h"
#include "proto/rtmp/rtmp_chunk.h"
#include "proto/rtmp/rtmp_handshake.h"

#define SL_RTMP_MAX_IOV 128

typedef enum {
    SL_RTMP_CONN_HANDSHAKE = 0,
    SL_RTMP_CONN_READY,     /* handshake done, waiting for connect */
    SL_RTMP_CONN_CONNECTING,/* connect being admitted */
    SL_RTMP_CONN_CONNECTED, /* connect accepted */
    SL_RTMP_CONN_CLOSING,
} sl_rtmp_conn_state_t;

typedef struct sl_rtmp_server sl_rtmp_server_t;

typedef struct sl_rtmp_conn {
    sl_session_t sess;              /* must stay first: the core sees this */
    sl_rtmp_server_t *srv;          /* owning server */
    sl_core_t *core;                /* the core (borrowed) */
    sl_rtmp_conn_state_t state;
    uv_tcp_t tcp;
    sl_list_t link;                 /* in srv->conns */
    sl_rtmp_hs_t *hs;               /* during the handshake only */
    sl_rtmp_chunk_reader_t rd;
    uint64_t accept_ms;             /* loop time of accept */
    uint64_t last_read_ms;          /* loop time of the last byte in */
    uint64_t last_ping_ms;          /* loop time of our last ping request */
    uint64_t ack_bytes;             /* bytes in at the last ack we sent */
    uint32_t peer_window;           /* the peer's window ack size (send acks) */
    uint32_t out_chunk_size;        /* chunk size we write with */
    int object_encoding;            /* 0 or 3, from connect */
    double connect_txn;

    /* outgoing */
    sl_wbuf_t ctrl;                 /* control/command bytes to send */
    struct sl_rtmp_wreq *w;         /* the uv_write in flight (owned), or NULL */
    int on_flush_list;              /* 0, 1 flush_list, 2 media_list, 3 audio_list */
    sl_list_t flush_link;           /* in one of the server's flush lists */
    int close_after_flush;          /* close once everything queued is written */
    uint8_t uring_busy;             /* io_uring: a batch of ours is in the submission being made */
    uint8_t zc_on;                  /* SO_ZEROCOPY set on the socket */
    uint32_t zc_next;               /* zerocopy: id the kernel gives our next send */
    sl_list_t zc_pending;           /* zerocopy: sends the kernel may still read (sl_rtmp_zc) */
    sl_list_t zc_link;              /* in srv->zc_list while zc_pending is not empty */

    /* writes on a worker loop (server.workers > 1; docs/internals/threads.md) */
    struct sl_worker *worker;       /* the loop this player's writes are counted on, or NULL */
    struct sl_rtmp_ws *ws;          /* the write side on that worker (owned), or NULL */
    int ws_want;                    /* hand the write side over at the next flush */
    int main_closed;                /* the main loop's handle is closed; waiting for the worker */
    struct sl_rtmp_relay *relay;    /* while a live play's frames reach the worker through a relay */
    int play_remote;                /* the play's queue and state are on the worker (c->ws) */
    uint64_t ws_seen_bytes;         /* the worker's counters already added to sess */
    uint64_t ws_seen_msgs;
    uint64_t ws_seen_drops;

    /* RTMPS */
    sl_tls_t *tls;                  /* the TLS filter (owned), NULL on plain RTMP */
    uint64_t tls_plain_in;          /* plaintext bytes in (what RTMP acknowledgements count) */
    int tls_established;            /* the TLS handshake completed (logged once) */

    /* publishing */
    sl_stream_t *pub;               /* the stream we publish, or NULL */
    uint32_t pub_sid;               /* message stream id of the publish */
    uint32_t pub_dts_base;          /* first timestamp seen (timeline rebased to 0) */
    int pub_dts_set;
    int pub_mode;                   /* 0 live, 1 record, 2 append */

    /* playing */
    sl_sink_t sink;                 /* attached to the played stream */
    sl_subq_t q;                    /* frames waiting to be written */
    int q_ready;                    /* q initialised */
    uint32_t play_sid;              /* message stream id of the play; 0 = none */
    int paused;
    int recv_audio, recv_video;
    int ts_rebase;                  /* next media frame fixes the timestamp base */
    int64_t ts_base;                /* out ts = dts - ts_base */
    uint32_t last_out_ts;           /* last timestamp written */
    int sent_media;                 /* any media written since play */
    int joining;                    /* inside sl_hub_add_sink of a play */
    void *vod;                      /* a recording played (a "vod" service handle), or NULL */
    const struct sl_svc_vod *vod_svc; /* whose handle it is (app/svc/vod.h) */
    uint64_t delivered_bytes;       /* bytes the player had acknowledged at the last sweep */
    uint64_t stall_since_ms;        /* loop time since which nothing was acknowledged; 0 = moving */

    uint32_t n_streams;             /* createStream calls answered */
    char *tc_url;                   /* from connect (owned) */
    sl_amf_t *connect_args;         /* extra connect arguments as a strict array (owned) */
    sl_amf_t *fourcc_list;          /* E-RTMP fourCcList offered at connect (owned) */
    struct sl_admit *admit;         /* admission in progress (owned reference) */
    char *pending_path;             /* publish/play waiting for admission (owned) */
    uint32_t pending_sid;
    int pending_mode;
    int pending_vod;                /* may play a file: 1 (x.flv, flv:x, x), 2 (mp4:x) */
    uint32_t pending_start_ms;      /* the play's start argument (0 = from the beginning) */
    size_t connect_query_len;       /* length+1 of the connect's query inside sess.query; 0 = none */
    int query_merged;               /* a stream query has been merged in */
    struct sl_rtmp_rpc *rpc;        /* server -> client invokes waiting (rtmp_rpc.c; owned), or NULL */
    struct sl_rtmp_so_adm *so_adms; /* shared object connects waiting for admission (rtmp_so.c) */
} sl_rtmp_conn_t;

/* rtmp_conn.c */
/** Queues a whole message on csid for sending (command/control). */
int sl__rtmp_send(sl_rtmp_conn_t *c, uint32_t csid, uint8_t type, uint32_t sid, uint32_t ts,
                  const uint8_t *p, size_t n);
/** Queues a user control event with one 32-bit argument. */
int sl__rtmp_send_uc(sl_rtmp_conn_t *c, uint16_t event, uint32_t arg);
/** Queues a protocol control message with one 32-bit value (types 1, 3, 5). */
int sl__rtmp_send_u32(sl_rtmp_conn_t *c, uint8_t type, uint32_t v);
/** Puts the connection on the flush list: its bytes go out before the loop sleeps. */
void sl__rtmp_schedule_flush(sl_rtmp_conn_t *c);
/**
 * Same for queued media: before the loop sleeps, or with the merged-write
 * window on, at its timer. hold_audio: the new media is only audio of a
 * stream with video, which may wait for the next video frame (media.audio_hold).
 */
void sl__rtmp_schedule_media(sl_rtmp_conn_t *c, int hold_audio);
/**
 * Connect was admitted: raises the connection's budgets from their
 * before-connect values (half-received messages, queued control bytes) to
 * the connected ones. Call before the state becomes CONNECTED.
 */
void sl__rtmp_conn_admitted(sl_rtmp_conn_t *c);
/** Closes the connection (idempotent); reason is logged. */
void sl__rtmp_close(sl_rtmp_conn_t *c, const char *reason);
/** Closes once all queued bytes are written (bounded by the shutdown timer). */
void sl__rtmp_close_after_flush(sl_rtmp_conn_t *c, const char *reason);
/**
 * A player's play started: with more than one event loop, picks the least
 * loaded one for its writes (counted in that worker's players gauge); a
 * plain-TCP connection on a worker other than the main loop hands its
 * write side over at the next flush (reads, commands and the queue stay on
 * the main loop). RTMPS stays on the main loop. Main loop only.
 */
void sl__rtmp_conn_offload(sl_rtmp_conn_t *c);

/* What the main loop forwards to a write side on a worker (sl__rtmp_ws_post_op). */
enum {
    SL_RTMP_WS_PAUSE = 1,          /* the play paused: the queue is flushed */
    SL_RTMP_WS_UNPAUSE,            /* resumed; arg 1: the next media frame rebases timestamps */
    SL_RTMP_WS_SEEK,               /* a recording seeks: the queue is flushed, the file's timeline kept */
    SL_RTMP_WS_REBASE,             /* a (re)publish: the next media frame rebases timestamps */
    SL_RTMP_WS_RECV_AUDIO,         /* receiveAudio(arg) */
    SL_RTMP_WS_RECV_VIDEO,         /* receiveVideo(arg): on again resumes on a keyframe */
    SL_RTMP_WS_CLOSE_AFTER_FLUSH,  /* ask the close once everything queued is written */
};
/**
 * When c's play (or, for SL_RTMP_WS_CLOSE_AFTER_FLUSH, its writes) is on a
 * worker (server.workers > 1), posts op (with arg 0 or 1) to it, in order
 * with the media and control bytes already posted, and returns 1; returns
 * 0 (nothing done) when it is on the main loop, where the caller acts
 * itself. Main loop only.
 */
int sl__rtmp_ws_post_op(sl_rtmp_conn_t *c, int op, int arg);
/**
 * When c's play is on a worker, hands it one frame (a reference is taken:
 * the unpause replay of a live play, a recording's frames) and returns 1;
 * 0 otherwise. Main loop only.
 */
int sl__rtmp_ws_post_frame(sl_rtmp_conn_t *c, sl_frame_t *f);
/** A play on a worker ends: the worker drops its queue; its relay loses a player. Main
 * loop, before the play's sink is detached (sl_stream_remove_sink). */
void sl__rtmp_ws_unplay(sl_rtmp_conn_t *c);

/*
 * The timestamp a player writes frame f with, on whichever loop owns its
 * writes: media frames are rebased on the first one after a play, a
 * publish or an unpause (keeping the player's timeline monotonic);
 * configuration and metadata frames take the last one written.
 */
static inline uint32_t sl__rtmp_out_ts(const sl_frame_t *f, int *ts_rebase, int64_t *ts_base,
                                       int *sent_media, uint32_t *last_out_ts)
{
    if (f->flags & (SL_FRAME_CONFIG | SL_FRAME_META))
        return *last_out_ts;
    if (*ts_rebase) {
        *ts_base = (int64_t)f->dts_ms - (*sent_media ? (int64_t)*last_out_ts : 0);
        *ts_rebase = 0;
    }
    int64_t t = (int64_t)f->dts_ms - *ts_base;
    uint32_t ts = t < 0 ? 0 : (uint32_t)t;
    *sent_media = 1;
    if (ts > *last_out_ts)
        *last_out_ts = ts;
    return ts;
}

/** Query parameter lookup (form-urlencoded, decoded); length or -1. */
int sl__rtmp_query_get(const char *query, const char *key, char *out, size_t cap);

/* rtmp_cmd.c */
/** Handles a complete command message (types 20 and 17). Returns <0 to close. */
int sl__rtmp_on_command(sl_rtmp_conn_t *c, sl_rtmp_msg_t *m);
/** Handles a data message (types 18 and 15). Returns <0 to close. */
int sl__rtmp_on_data(sl_rtmp_conn_t *c, sl_rtmp_msg_t *m);
/** Handles an audio/video message; takes over m->body. Returns <0 to close. */
int sl__rtmp_on_media(sl_rtmp_conn_t *c, uint8_t type, uint32_t ts, sl_buf_t *body);
/** Sends an onStatus on message stream sid. */
int sl__rtmp_send_status(sl_rtmp_conn_t *c, uint32_t sid, const char *level, const char *code,
                         const char *desc, const char *details);
/** Stops publishing (if publishing), telling players. */
void sl__rtmp_stop_publish(sl_rtmp_conn_t *c, int notify);
/** Stops playing (if playing). */
void sl__rtmp_stop_play(sl_rtmp_conn_t *c);
/**
 * The client's username as admission knows it (its query's `username`, else
 * connect's extra arguments, Red5 style), or NULL. Valid until the next call
 * (a static buffer; loop thread only).
 */
const char *sl__rtmp_username(sl_rtmp_conn_t *c);
/*
 * Runs the admission of a shared object connect (kind SL_ADMIT_SO_CONNECT,
 * stream = name) with the connection's credentials, as publish does.
 * sl_admit's contract: SL_OK after done ran, SL_EPENDING with *out (the
 * caller's reference, for sl_admit_cancel), SL_ENOMEM.
 */
int sl__rtmp_admit_so(sl_rtmp_conn_t *c, const char *name, sl_admit_done_cb done, void *ud,
                      sl_admit_t **out);

/* rtmp_rpc.c */
/**
 * A client's NetConnection.call of a method RTMP does not handle itself:
 * routes it (service "rpc_router") and answers _result/_error later, or
 * _error now when nothing can take it. args (borrowed) are the call's
 * arguments after the command object. Returns <0 to close (ENOMEM).
 */
int sl__rtmp_rpc_call(sl_rtmp_conn_t *c, const char *method, double txn, sl_amf_t **args,
                      size_t n_args);
/**
 * A _result (is_error 0) or _error from the client: if txn is one of our
 * invokes, answers it and returns 1; else 0 (not ours). v/count: the whole
 * command, borrowed.
 */
int sl__rtmp_rpc_on_answer(sl_rtmp_conn_t *c, int is_error, double txn, sl_amf_t **v, size_t count);
/** The session op invoke (sl_session_ops_t.invoke) of RTMP connections. */
int sl__rtmp_invoke(sl_session_t *s, const char *method, const char *params_json,
                    uint64_t timeout_ms, sl_session_invoke_cb cb, void *ud);
/** At close: every invoke still waiting is answered SL_ECLOSED; frees c->rpc. */
void sl__rtmp_rpc_close(sl_rtmp_conn_t *c);

#endif
