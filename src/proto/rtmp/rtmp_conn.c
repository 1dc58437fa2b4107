/*
 * RTMP connection I/O on the listener scaffold of net/listener.h (see
 * rtmp_server.h and rtmp_conn.h):
 * accept, the handshake, chunk reading and dispatch of control messages,
 * acknowledgements, idle and handshake timeouts, the gathered write path
 * (writev, or io_uring batches over many players, with the socket options
 * of rtmp.write_mode and friends: see "sending"), and close.
 *
 * One read buffer serves every connection: libuv calls alloc and read back
 * to back on the loop thread and each read is fully consumed before the
 * next, so a per-connection buffer would only cost memory (10,000 idle
 * clients x 64 KB). Incoming messages are assembled by the chunk reader in
 * buffers of their own, which become frame bodies with no further copy.
 *
 * RTMPS (see rtmp_conn.h) differs only at the socket edge, behind one
 * `if (c->tls)` per read and per flush, so plain connections do no extra
 * work per frame:
 *  - reading: the ciphertext is fed to the filter and every record it
 *    completes is decrypted into the same read buffer (free again once the
 *    filter has copied the ciphertext) and handed to the RTMP handshake and
 *    chunk parser at once; the filter keeps at most one partial record.
 *  - writing: the flush gathers the same batches as on plain TCP, capped so
 *    that less than TLS_OUT_HIGH_BYTES plus one frame of ciphertext waits
 *    in the filter, and encrypts them; frames leave the queue once
 *    encrypted, so the queue policy still sees a player that does not keep
 *    up. The ciphertext goes through a server-wide scratch buffer to
 *    uv_try_write; what the socket refuses is copied for one uv_write, and
 *    nothing more is encrypted until it completes.
 *  - timeouts: the handshake timeout runs from accept, so it covers the
 *    TLS handshake and the RTMP one together; a failed TLS handshake
 *    (plain RTMP or garbage on the TLS port) closes that connection only;
 *  - close: close_notify (or the alert of a failed handshake) is handed to
 *    the socket, if it takes it, before every close.
 *
 * The fan-out on a worker loop (server.workers > 1; docs/internals/threads.md):
 * once a plain-TCP player plays, the least loaded loop is picked. If that
 * is a worker, the next flush with no write in flight hands over the write
 * side (the worker opens a uv_tcp_t on a dup() of the socket and never
 * reads it) and the play: its queue (with the GOP the join replayed), its
 * timestamp state and flags move to the worker, and its sink is marked
 * relayed so sl_stream_push skips it. Per stream and worker, one relay
 * sink on this loop posts each frame once to the worker, which offers it
 * to its players with sink_on_frame's policy (ws_offer) and writes them
 * from its own flush lists, merge and audio-hold timers and sweep (stall
 * check). Reading, commands, RPC and shared objects stay here; control
 * bytes and play changes (pause, seek, receiveAudio/Video, rebase, close
 * after flush) are posted to the worker, in order with the media. The
 * worker asks for a close by message; a close here posts a detach, and
 * the connection is freed when both handles are closed.
 *
 * Budgets: until connect is admitted a peer is anonymous, so what it can
 * make the server hold is kept to kilobytes: half-received messages
 * (rtmp.max_partial_bytes_before_connect, checked by the chunk reader over
 * all chunk streams together) and queued control bytes
 * (rtmp.max_control_bytes_before_connect: ping answers and
 * acknowledgements to a peer that never reads). Admission raises both (sl__rtmp_conn_admitted).
 * Half-received bytes of every connection also come from one server-wide
 * budget (rtmp.max_partial_bytes_total, "rtmp_partial" on /metrics). A
 * peer over a budget is closed with one info line giving the numbers. When
 * the server-wide budget runs out, the connection that holds the most goes
 * (on_pool_full), not necessarily the one asking; that is also a warning,
 * at most one per PARTIAL_WARN_INTERVAL_MS. Buffers grow with the bytes that arrive, so the
 * budgets bound real memory: three pre-connect peers declaring 60 x 8 MB
 * each took RSS from 30 MB to 1.46 GB before, and leave it at 31 MB now.
 */
#include <fcntl.h>
#include <linux/sockios.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <errno.h>
#include <time.h> /* before linux/errqueue.h, which uses struct timespec */
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "base/alloc.h"
#include "app/admission.h"
#include "app/events.h"
#include "base/log.h"
#include "base/str.h"
#include "net/listener.h"
#include "net/workers.h"
#include "net/uring_send.h"
#include "proto/rtmp/rtmp_conn.h"
#include "proto/rtmp/rtmp_server.h"
#include "proto/rtmp/rtmp_so.h"
#include "sluice/errors.h"
#include "proto/rtmp/rtmp_config.h"

#define READ_BUF_SIZE 65536
#define SWEEP_INTERVAL_MS 250
#define CTRL_MAX_BYTES (4u * 1024u * 1024u) /* queued command bytes per connection */
#define PARTIAL_WARN_INTERVAL_MS 10000 /* server-wide partial budget: one warning per interval */
#define TLS_OUT_HIGH_BYTES (64u * 1024u) /* RTMPS: ciphertext waiting before encrypting pauses */
#define TLS_WIRE_BYTES (TLS_OUT_HIGH_BYTES + 16u * 1024u) /* RTMPS: ciphertext taken per write */
#define URING_SLOTS 64 /* io_uring: players' batches per submission */

struct sl_rtmp_server {
    sl_core_t *core;
    sl_listener_t net;         /* listeners (RTMP, and RTMPS with a certificate), the flush
                                * pass, the sweep (timeouts, pings) and the stop deadline */
    uv_timer_t merge;          /* merged-write window, when on */
    uv_timer_t audio_hold;     /* bound on audio waiting for video (media.audio_hold) */
    int timers_closing;        /* merge and audio_hold are being closed */
    sl_list_t conns;
    size_t n_conns;
    sl_list_t flush_list;      /* connections with control bytes (or all, merge off) to write */
    sl_list_t media_list;      /* merge on: connections with only media queued, for the timer */
    sl_list_t audio_list;      /* merge off: connections with only audio queued, held for video */
    int stopping;
    uint64_t partial_warn_ms;  /* loop time of the last server-wide partial budget warning */
    uint64_t partial_unlogged; /* server-wide refusals since that warning */
    /* The write path's policy (rtmp.write_mode and friends; see "sending"). */
    sl_uring_send_t *uring;    /* write_mode io_uring: the ring; NULL = writev */
    struct sl_rtmp_batch *slots; /* io_uring: one batch per send of a submission */
    uint32_t free_slots[URING_SLOTS]; /* io_uring: stack of free slot indexes */
    uint32_t n_free;
    int cork;                  /* rtmp.write_cork */
    int64_t zc_min;            /* rtmp.zerocopy_min_bytes; 0 = off */
    int64_t notsent_lowat;     /* rtmp.notsent_lowat; 0 = unset */
    sl_list_t zc_list;         /* connections with zerocopy sends not yet notified */
    sl_list_t relays;          /* fan-out relays to worker loops (sl_rtmp_relay_t) */
    uint64_t zc_sends;         /* zerocopy sends made */
    uint64_t zc_copied;        /* of them, reported copied by the kernel (no zero copy) */
    uint64_t zc_notes;         /* notifications read (each covers a range of sends) */
    uint8_t rbuf[READ_BUF_SIZE];
    uint8_t wire[TLS_WIRE_BYTES]; /* RTMPS: ciphertext on its way to uv_try_write */
};

static const sl_session_ops_t conn_session_ops;

size_t sl_rtmp_server_connections(const sl_rtmp_server_t *srv) { return srv->n_conns; }

/* Query lookup is base's (base/str.h): the last occurrence wins, because a
 * stream name's query is appended after the connect's and its values take
 * precedence. A value longer than cap - 1 bytes counts as absent. */
int sl__rtmp_query_get(const char *query, const char *key, char *out, size_t cap)
{
    int n = sl_query_get(query, key, SL_QUERY_LAST, out, cap);
    return n < 0 ? -1 : n;
}

/* ------------------------------------------------------------------ */
/* sending                                                             */

/*
 * Three flush lists. Control bytes (command replies, pings, the handshake, a
 * close after flush) are always written before the loop sleeps; media
 * frames too when the merged-write window is off. With it on, a connection
 * that only has media waiting sits on media_list until the window's timer,
 * so the per-iteration flush before sleeping touches only connections with
 * control bytes instead of scanning every player each time the loop wakes.
 *
 * With the window off, a connection whose only new media is audio of a
 * stream that has video sits on audio_list: the audio goes out in the same
 * write as the next video frame (or control bytes), and the audio_hold
 * timer bounds the wait for a stream whose video pauses. Audio is most of
 * a stream's frames and a few percent of its bytes, and the kernel's cost
 * is per write: this halves the writes without delaying any video.
 */
void sl__rtmp_schedule_flush(sl_rtmp_conn_t *c)
{
    if (c->state == SL_RTMP_CONN_CLOSING || c->on_flush_list == 1 || c->ws)
        return;
    if (c->on_flush_list)
        sl_list_remove(&c->flush_link); /* promoted: control bytes go out now, media with them */
    c->on_flush_list = 1;
    sl_list_push_back(&c->srv->flush_list, &c->flush_link);
}

void sl__rtmp_schedule_media(sl_rtmp_conn_t *c, int hold_audio)
{
    if (c->state == SL_RTMP_CONN_CLOSING || c->on_flush_list == 1 || c->on_flush_list == 2 || c->ws)
        return;
    if (c->core->cfg->media_write_merge_ms == 0) {
        if (!hold_audio || c->core->cfg->media_audio_hold_ms == 0) {
            sl__rtmp_schedule_flush(c); /* also promotes from audio_list */
            return;
        }
        if (c->on_flush_list == 3)
            return;
        c->on_flush_list = 3;
        sl_list_push_back(&c->srv->audio_list, &c->flush_link);
        return;
    }
    c->on_flush_list = 2;
    sl_list_push_back(&c->srv->media_list, &c->flush_link);
}

static int ws_send(sl_rtmp_conn_t *c, uint32_t csid, uint8_t type, uint32_t sid, uint32_t ts,
                   const uint8_t *p, size_t n);

int sl__rtmp_send(sl_rtmp_conn_t *c, uint32_t csid, uint8_t type, uint32_t sid, uint32_t ts,
                  const uint8_t *p, size_t n)
{
    if (c->state == SL_RTMP_CONN_CLOSING)
        return SL_ECLOSED;
    if (c->ws)
        return ws_send(c, csid, type, sid, ts, p, n); /* the worker writes: in order with the media */
    int rc = sl_rtmp_chunk_write(&c->ctrl, csid, type, sid, ts, p, n, c->out_chunk_size);
    if (rc)
        return rc;
    c->sess.msgs_out++;
    sl__rtmp_schedule_flush(c);
    return 0;
}

int sl__rtmp_send_u32(sl_rtmp_conn_t *c, uint8_t type, uint32_t v)
{
    uint8_t b[4];
    sl_wr_be32(b, v);
    return sl__rtmp_send(c, SL_RTMP_CSID_CONTROL, type, 0, 0, b, 4);
}

int sl__rtmp_send_uc(sl_rtmp_conn_t *c, uint16_t event, uint32_t arg)
{
    uint8_t b[6];
    sl_wr_be16(b, event);
    sl_wr_be32(b + 2, arg);
    return sl__rtmp_send(c, SL_RTMP_CSID_CONTROL, SL_RTMP_USER_CONTROL, 0, 0, b, 6);
}

/*
 * A uv_write in flight: what the socket did not take at once. It owns the
 * ctrl bytes it carries (moved out of the builder), a reference to each
 * frame of the batch, any private encodings, and the per-frame headers,
 * until on_write. Allocated only when a write is partial, sized for its
 * batch. On RTMPS it carries no frames (n = 0: they were retired when
 * encrypted) and `ctrl` owns the copy of the ciphertext the socket refused.
 */
typedef struct sl_rtmp_wreq {
    uv_write_t req;
    sl_rtmp_conn_t *c;
    uint8_t *ctrl;                  /* ctrl bytes or, on RTMPS, ciphertext (owned) or NULL */
    struct sl_rtmp_ws *ws;          /* written on a worker: its write side; NULL on the main loop */
    uv_buf_t *iov;                  /* on a worker: the batch (inside this block) */
    unsigned niov;
    uint32_t n;                     /* frames */
    struct {
        sl_frame_t *f;              /* owned reference */
        sl_buf_t *priv;             /* private encoding (owned) or NULL */
        uint8_t hdr[16];            /* per-subscriber chunk header */
    } fr[];
} sl_rtmp_wreq_t;

/* Drops everything a finished (or cancelled) write held. */
static void wreq_free(sl_rtmp_wreq_t *w)
{
    if (!w)
        return;
    for (uint32_t i = 0; i < w->n; i++) {
        sl_frame_unref(w->fr[i].f);
        sl_buf_unref(w->fr[i].priv);
    }
    w->c->sess.msgs_out += w->n;
    sl_free(w->ctrl);
    sl_free(w);
}

static void conn_flush(sl_rtmp_conn_t *c);
static void conn_flush_tls(sl_rtmp_conn_t *c);

/* A write request finished (on this loop, or its result came back from a
 * worker): release it and go on writing, or close on an error. */
static void write_finished(sl_rtmp_wreq_t *w, int status)
{
    sl_rtmp_conn_t *c = w->c;
    c->w = NULL;
    wreq_free(w);
    if (c->state == SL_RTMP_CONN_CLOSING)
        return;
    if (status < 0) {
        sl__rtmp_close(c, uv_strerror(status));
        return;
    }
    conn_flush(c);
}

static void on_write(uv_write_t *req, int status)
{
    write_finished(req->data, status);
}

/* The ctrl bytes are all written: the builder's memory goes back. Control
 * messages are rare once a session runs (a ping every 30 s), so idle
 * connections and players keep nothing here between them. */
static void ctrl_written(sl_rtmp_conn_t *c)
{
    sl_wbuf_cleanup(&c->ctrl);
}

/*
 * One gathered write to one player: ctrl bytes, then a per-player header
 * and the shared chunked body of each frame (or a private encoding, rare).
 * On the stack for writev; in the server's slot table for io_uring, where
 * it must live until the submit that carries it returns.
 */
enum { MAXF = SL_RTMP_MAX_IOV / 2 - 1 };
typedef struct sl_rtmp_batch {
    uv_buf_t iov[SL_RTMP_MAX_IOV];  /* layout-compatible with struct iovec on Unix */
    uint8_t hdr[MAXF][16];          /* per-player chunk headers */
    sl_buf_t *priv[MAXF];           /* private encodings (owned) or NULL */
    int hidx[MAXF];                 /* iov index of frame i's header, -1 for a private encoding */
    unsigned niov;
    uint32_t n;                     /* frames */
    size_t total;                   /* bytes */
    size_t ctrl_len;                /* ctrl bytes at the front */
    sl_rtmp_conn_t *c;              /* io_uring: whose batch (main loop) */
    struct sl_rtmp_ws *ws;          /* io_uring: whose batch (worker loop) */
    struct msghdr msg;              /* io_uring: the sendmsg */
    uint32_t slot;                  /* io_uring: index in srv->slots (or the worker's) */
} sl_rtmp_batch_t;

static void batch_release(sl_rtmp_batch_t *b)
{
    for (uint32_t i = 0; i < b->n; i++)
        sl_buf_unref(b->priv[i]);
    b->n = 0;
}

/*
 * Gathers a player's next batch into b: the ctrl bytes, then up to MAXF
 * frames of q (NULL: none) written on message stream sid with chunk_size.
 * b->niov is 0 when there is nothing to write. 0, or SL_ENOMEM (a private
 * encoding could not be made; b holds nothing). Any loop: the shared
 * encodings are built under the frames' once-guard.
 */
static int batch_fill(sl_rtmp_batch_t *b, sl_wbuf_t *ctrl, sl_subq_t *q, uint32_t chunk_size,
                      uint32_t sid)
{
    unsigned niov = 0;
    size_t total = 0;
    size_t ctrl_len = ctrl->len;
    if (ctrl_len) {
        b->iov[niov++] = uv_buf_init((char *)ctrl->data, (unsigned)ctrl_len);
        total += ctrl_len;
    }
    uint32_t n = q ? q->count : 0;
    if (n > MAXF)
        n = MAXF;
    for (uint32_t i = 0; i < n; i++) {
        const sl_subq_item_t *it = sl_subq_at(q, i);
        sl_frame_t *f = it->f;
        uint32_t ts = it->tag;
        sl_buf_t *body = ts < 0xFFFFFF ? sl_rtmp_chunk_media_body(f, chunk_size) : NULL;
        b->priv[i] = NULL;
        if (body) {
            size_t hl = sl_rtmp_chunk_media_header(b->hdr[i], f, sid, ts);
            b->hidx[i] = (int)niov;
            b->iov[niov++] = (uv_buf_t){.base = (char *)b->hdr[i], .len = hl};
            b->iov[niov++] = (uv_buf_t){.base = (char *)body->data, .len = body->len};
            total += hl + body->len;
        } else {
            /* Rare slow path: extended timestamps differ per subscriber
             * (or the shared encoding could not be allocated). */
            sl_wbuf_t w;
            sl_wbuf_init(&w, SL_BUF_MAX);
            if (sl_rtmp_chunk_write(&w, sl_rtmp_frame_csid(f), f->kind, sid, ts,
                                    f->body->data, f->body->len, chunk_size) ||
                !(b->priv[i] = sl_wbuf_to_buf(&w))) {
                sl_wbuf_cleanup(&w);
                b->n = i;
                batch_release(b);
                return SL_ENOMEM;
            }
            sl_wbuf_cleanup(&w);
            b->hidx[i] = -1;
            b->iov[niov++] = uv_buf_init((char *)b->priv[i]->data, b->priv[i]->len);
            total += b->priv[i]->len;
        }
    }
    b->niov = niov;
    b->n = n;
    b->total = total;
    b->ctrl_len = ctrl_len;
    return 0;
}

/* c's next batch (batch_fill). 0, or -1 when c was closed (out of memory). */
static int batch_build(sl_rtmp_conn_t *c, sl_rtmp_batch_t *b)
{
    if (batch_fill(b, &c->ctrl, c->q_ready ? &c->q : NULL, c->out_chunk_size, c->play_sid)) {
        sl__rtmp_close(c, "out of memory");
        return -1;
    }
    return 0;
}

/*
 * The kernel took r bytes of b (r < 0: an error, closes c; -EAGAIN counts
 * as 0). Everything written leaves the queue; a remainder goes to one
 * uv_write whose request owns what it needs. Releases b's private
 * encodings in every case. 1 when b was written whole (c may have more),
 * 0 when c now waits for a uv_write or was closed.
 */
static int batch_written(sl_rtmp_conn_t *c, sl_rtmp_batch_t *b, int r)
{
    uv_buf_t *iov = b->iov;
    uint32_t n = b->n;
    /* -ECANCELED: an io_uring send the kernel did not complete inline was
     * cancelled before it ran (uring_send.h; the server then goes back to
     * writev): it took nothing, and the batch goes to uv_write like one
     * the socket refused, so the fallback loses no player. */
    if (r == UV_EAGAIN || r == -ECANCELED)
        r = 0;
    if (r < 0) {
        batch_release(b);
        sl__rtmp_close(c, uv_strerror(r));
        return 0;
    }
    c->sess.bytes_out += (uint64_t)r;
    if ((size_t)r == b->total) {
        if (b->ctrl_len)
            ctrl_written(c);
        batch_release(b);
        sl_subq_pop(&c->q, n, NULL);
        c->sess.msgs_out += n;
        return 1;
    }
    /* Partial: the rest goes with uv_write, from memory the request owns. */
    sl_rtmp_wreq_t *w = sl_malloc(sizeof(*w) + (size_t)n * sizeof(w->fr[0]));
    if (!w) {
        batch_release(b);
        sl__rtmp_close(c, "out of memory");
        return 0;
    }
    w->c = c;
    w->n = n;
    w->ctrl = NULL;
    w->ws = NULL;
    w->iov = NULL;
    w->niov = 0;
    w->req.data = w;
    for (uint32_t i = 0; i < n; i++) {
        sl_subq_item_t it;
        sl_subq_pop(&c->q, 1, &it);
        w->fr[i].f = it.f;
        w->fr[i].priv = b->priv[i]; /* taken */
        if (b->hidx[i] >= 0) {
            memcpy(w->fr[i].hdr, b->hdr[i], iov[b->hidx[i]].len);
            iov[b->hidx[i]].base = (char *)w->fr[i].hdr;
        }
    }
    b->n = 0;
    if (b->ctrl_len) {
        if ((size_t)r < b->ctrl_len) {
            /* The builder's memory goes with the request; a new one starts empty. */
            w->ctrl = c->ctrl.data;
            iov[0].base = (char *)w->ctrl; /* zerocopy pointed it at a copy of its own */
            sl_wbuf_init(&c->ctrl, c->ctrl.max);
        } else {
            ctrl_written(c);
        }
    }
    unsigned k = 0;
    size_t done = (size_t)r;
    while (done >= iov[k].len) {
        done -= iov[k].len;
        k++;
    }
    iov[k].base += done;
    iov[k].len -= (unsigned)done;
    c->sess.bytes_out += b->total - (size_t)r; /* counted now; the write completes or the conn dies */
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, iov + k, b->niov - k, on_write);
    if (rc) {
        wreq_free(w);
        sl__rtmp_close(c, uv_strerror(rc));
        return 0;
    }
    c->w = w;
    return 0;
}

/* ------------------------------------------------------------------ */
/* the fan-out on a worker loop (see the header paragraph)             */

/*
 * A worker loop's RTMP state: its players' flush lists, the merged-write
 * and audio-hold timers, the flush before the loop sleeps and the sweep
 * (stall check, ring trim). Made on the worker's thread at its first
 * attach, closed with its last player (the handles' close callbacks free
 * it); touched on that thread only, so it is thread-local.
 */
typedef struct sl_rtmp_wk {
    sl_list_t all;           /* write sides on this loop */
    size_t n;                /* of them */
    sl_list_t flush_list;    /* as the server's three lists, for this loop's players */
    sl_list_t media_list;
    sl_list_t audio_list;
    uv_prepare_t prepare;    /* flush before the loop sleeps */
    uv_timer_t merge;        /* merged-write window, when on */
    uv_timer_t audio_hold;   /* bound on audio waiting for video */
    uv_timer_t sweep;        /* stall check and ring trim */
    int64_t merge_ms;        /* media.write_merge, as the first player found it */
    int64_t audio_hold_ms;   /* media.audio_hold, likewise */
    int closing;             /* handles still to close (their callbacks free this) */
    /* rtmp.write_mode io_uring, as on the main loop (flush_list_uring): this
     * loop's own ring and batch slots; NULL = writev */
    sl_uring_send_t *uring;
    struct sl_rtmp_batch *slots;
    uint32_t free_slots[URING_SLOTS];
    uint32_t n_free;
} sl_rtmp_wk_t;

static _Thread_local sl_rtmp_wk_t *tl_wk;

/*
 * Per stream and worker with players of it: one internal sink on the main
 * loop posts each pushed frame (a reference) once to that worker, which
 * fans it out to its players of the stream. The main-loop fields are the
 * main loop's, `players` is the worker's; the block is made on the main
 * loop and freed by the worker (relay_free, the last message naming it).
 */
typedef struct sl_rtmp_relay {
    sl_sink_t sink;          /* main: attached to the stream, internal (not a player) */
    sl_worker_t *worker;     /* the loop it feeds */
    sl_list_t link;          /* main: in srv->relays */
    size_t n_players;        /* main: relayed players of the stream on that worker */
    int joining;             /* main: inside sl_hub_add_sink (the replay is not for it) */
    int skipping;            /* main: the worker's inbox refused a frame: drop to a resync point */
    int video_seen;          /* main: a video frame has passed (resync on keyframes) */
    uint64_t refused;        /* main: frames dropped because the inbox was full */
    sl_list_t players;       /* worker: its write sides playing the stream */
} sl_rtmp_relay_t;

/*
 * A player's write side on a worker: everything a flush needs, owned by
 * the worker from the attach to the detach. The main loop keeps reading
 * the socket and forwards what changes the write side as messages; it
 * reads only `worker`, `c` and the atomic counters.
 */
typedef struct sl_rtmp_ws {
    uv_tcp_t tcp;            /* on the worker's loop: a dup of the socket, written only */
    sl_worker_t *worker;     /* the loop it lives on */
    sl_rtmp_conn_t *c;       /* the main loop's connection: handed back in messages, never read */
    int tcp_init;            /* tcp is a libuv handle (closed on detach) */
    int dead;                /* a close was asked of the main loop: nothing more is written */
    sl_list_t wk_link;       /* in the worker's `all` */
    sl_list_t relay_link;    /* in relay->players while playing */
    sl_rtmp_relay_t *relay;  /* the stream's relay while playing, or NULL */
    sl_wbuf_t ctrl;          /* control bytes to write (moved from the connection, then fed
                                by ws_ctrl messages) */
    struct sl_rtmp_wreq *w;  /* the uv_write in flight, or NULL */
    int on_flush_list;       /* 0, 1 flush_list, 2 media_list, 3 audio_list (as c's) */
    sl_list_t flush_link;
    int close_after_flush;   /* ask the close once everything is written */
    /* the play, as the connection's fields of the same names */
    sl_subq_t q;
    int q_ready;
    uint32_t play_sid;
    uint32_t chunk_size;
    int paused, recv_audio, recv_video, ts_rebase, sent_media;
    int64_t ts_base;
    uint32_t last_out_ts;
    int64_t merge_ms, audio_hold_ms, slow_ms; /* the config when the write side moved */
    int want_uring;          /* the main loop writes through io_uring: so does the worker */
    int uring_busy;          /* its batch waits in the worker's ring for the submit */
    uint64_t bytes_local;    /* bytes handed to the socket (the stall check's count) */
    uint64_t delivered_bytes, stall_since_ms;
    char *log_sid;           /* the session id, for log lines (owned copy) */
    sl_log_ctx_t log;
    /* counters the main loop adds to the session (relaxed snapshots) */
    _Atomic uint64_t bytes_out, msgs_out, frames_dropped;
    _Atomic uint32_t pending; /* frames queued or in flight (the session's `pending`) */
} sl_rtmp_ws_t;

/* A play's state handed to the worker (ws_play's message). */
typedef struct sl_rtmp_wplay {
    sl_rtmp_relay_t *relay;
    sl_subq_t q;             /* moved: the GOP replayed at join and what followed */
    uint32_t play_sid, chunk_size;
    int paused, recv_audio, recv_video, ts_rebase, sent_media;
    int64_t ts_base;
    uint32_t last_out_ts;
} sl_rtmp_wplay_t;

/* Worker -> main loop. Its inbox cannot be full (each connection has at
 * most a close request and a "gone" in flight this way, and main.c sizes
 * the inboxes at 4 x server.max_connections); the loop is a guard. */
static void post_main(sl_worker_t *from, sl_worker_fn fn, void *obj, uint64_t u)
{
    sl_worker_t *main_w = sl_workers_get(sl_worker_pool(from), 0);
    while (sl_worker_post(main_w, fn, obj, u) == SL_EAGAIN)
        sched_yield();
}

/* Main loop -> worker, for messages that must not be lost (attach, detach,
 * control bytes, play changes): a full inbox is waited out. Frames are
 * not posted this way (relay_on_frame drops to a keyframe instead). */
static void post_worker(sl_worker_t *w, sl_worker_fn fn, void *obj, uint64_t u)
{
    while (sl_worker_post(w, fn, obj, u) == SL_EAGAIN)
        sched_yield();
}

/* Main loop: adds what the worker counted since the last look. */
static void ws_sync_counters(sl_rtmp_conn_t *c)
{
    sl_rtmp_ws_t *ws = c->ws;
    if (!ws)
        return;
    uint64_t b = atomic_load_explicit(&ws->bytes_out, memory_order_relaxed);
    uint64_t m = atomic_load_explicit(&ws->msgs_out, memory_order_relaxed);
    uint64_t d = atomic_load_explicit(&ws->frames_dropped, memory_order_relaxed);
    c->sess.bytes_out += b - c->ws_seen_bytes;
    c->sess.msgs_out += m - c->ws_seen_msgs;
    c->sess.frames_dropped += d - c->ws_seen_drops;
    c->ws_seen_bytes = b;
    c->ws_seen_msgs = m;
    c->ws_seen_drops = d;
}

/* Main loop: the worker closed its handle; nothing of this connection is
 * left there. */
static void conn_free(sl_rtmp_conn_t *c);
static void ws_gone_main(sl_worker_t *wk, void *obj, uint64_t u)
{
    (void)u;
    sl_rtmp_ws_t *ws = obj;
    sl_rtmp_conn_t *c = ws->c;
    ws_sync_counters(c); /* the worker's last stores came before this message */
    sl_free(ws->log_sid);
    sl_free(ws);
    c->ws = NULL;
    sl_workers_keepalive(sl_worker_pool(wk), -1);
    if (c->main_closed)
        conn_free(c);
}

/* Main loop: the worker asks for the close (a write error, a slow player,
 * everything written after a close-after-flush). u: the reason (owned
 * string) or 0. The connection is alive: its "gone" comes after this. */
static void ws_close_main(sl_worker_t *wk, void *obj, uint64_t u)
{
    (void)wk;
    sl_rtmp_conn_t *c = obj;
    char *why = (char *)(uintptr_t)u;
    ws_sync_counters(c);
    sl__rtmp_close(c, why);
    sl_free(why);
}

/* Worker: stop writing and ask the main loop to close (reason NULL: an
 * orderly end). */
static void ws_fail(sl_rtmp_ws_t *ws, const char *reason)
{
    if (ws->dead)
        return;
    ws->dead = 1;
    if (ws->on_flush_list) {
        sl_list_remove(&ws->flush_link);
        ws->on_flush_list = 0;
    }
    char *why = reason ? sl_strdup(reason) : NULL;
    if (reason && !why)
        why = NULL; /* out of memory: an unexplained close still closes */
    post_main(ws->worker, ws_close_main, ws->c, (uint64_t)(uintptr_t)why);
}

static void ws_schedule_flush(sl_rtmp_ws_t *ws)
{
    if (ws->dead || ws->on_flush_list == 1)
        return;
    if (ws->on_flush_list)
        sl_list_remove(&ws->flush_link);
    ws->on_flush_list = 1;
    sl_list_push_back(&tl_wk->flush_list, &ws->flush_link);
}

/* As sl__rtmp_schedule_media, on the worker's lists and timers. */
static void ws_schedule_media(sl_rtmp_ws_t *ws, int hold_audio)
{
    if (ws->dead || ws->on_flush_list == 1 || ws->on_flush_list == 2)
        return;
    sl_rtmp_wk_t *wk = tl_wk; /* its timers decide: the config this loop's first player found */
    if (wk->merge_ms == 0) {
        if (!hold_audio || wk->audio_hold_ms == 0) {
            ws_schedule_flush(ws);
            return;
        }
        if (ws->on_flush_list == 3)
            return;
        ws->on_flush_list = 3;
        sl_list_push_back(&wk->audio_list, &ws->flush_link);
        return;
    }
    ws->on_flush_list = 2;
    sl_list_push_back(&wk->media_list, &ws->flush_link);
}

static void ws_update_pending(sl_rtmp_ws_t *ws)
{
    uint32_t n = (ws->q_ready ? ws->q.count : 0) + (ws->w ? ws->w->n : 0);
    atomic_store_explicit(&ws->pending, n, memory_order_relaxed);
}

/* Worker: drops what a finished or cancelled write held. */
static void ws_wreq_free(sl_rtmp_wreq_t *w)
{
    for (uint32_t i = 0; i < w->n; i++) {
        sl_frame_unref(w->fr[i].f);
        sl_buf_unref(w->fr[i].priv);
    }
    sl_free(w->ctrl);
    sl_free(w);
}

static void ws_flush(sl_rtmp_ws_t *ws);

static void on_ws_write(uv_write_t *req, int status)
{
    sl_rtmp_wreq_t *w = req->data;
    sl_rtmp_ws_t *ws = w->ws;
    ws->w = NULL;
    atomic_fetch_add_explicit(&ws->msgs_out, w->n, memory_order_relaxed);
    ws_wreq_free(w);
    if (ws->dead || !ws->tcp_init)
        return;
    if (status < 0) {
        ws_fail(ws, uv_strerror(status));
        return;
    }
    ws_flush(ws);
}

/*
 * Worker: retires batch b after the socket took r bytes of it (r as
 * uv_try_write gives it; UV_EAGAIN: nothing). 1 when it went whole (the
 * caller goes on with the next batch); 0 when it stopped: a remainder went
 * to one uv_write whose request owns what it needs (nothing more is
 * written until it completes), or the write side failed.
 */
static int ws_written(sl_rtmp_ws_t *ws, sl_rtmp_batch_t *b, int r)
{
    if (r == UV_EAGAIN || r == -ECANCELED) /* (-ECANCELED: as in batch_written) */
        r = 0;
    if (r < 0) {
        batch_release(b);
        ws_fail(ws, uv_strerror(r));
        return 0;
    }
    ws->bytes_local += (uint64_t)r;
    if ((size_t)r == b->total) {
        uint32_t n = b->n;
        if (b->ctrl_len)
            sl_wbuf_cleanup(&ws->ctrl);
        batch_release(b);
        if (n) {
            sl_subq_pop(&ws->q, n, NULL);
            atomic_fetch_add_explicit(&ws->msgs_out, n, memory_order_relaxed);
        }
        atomic_fetch_add_explicit(&ws->bytes_out, (uint64_t)r, memory_order_relaxed);
        return 1;
    }
    /* Partial: the rest goes with uv_write, from memory the request owns. */
    sl_rtmp_wreq_t *w = sl_malloc(sizeof(*w) + (size_t)b->n * sizeof(w->fr[0]));
    if (!w) {
        batch_release(b);
        ws_fail(ws, "out of memory");
        return 0;
    }
    w->c = NULL;
    w->ws = ws;
    w->n = b->n;
    w->ctrl = NULL;
    w->iov = NULL;
    w->niov = 0;
    w->req.data = w;
    for (uint32_t i = 0; i < b->n; i++) {
        sl_subq_item_t it;
        sl_subq_pop(&ws->q, 1, &it);
        w->fr[i].f = it.f;
        w->fr[i].priv = b->priv[i]; /* taken */
        if (b->hidx[i] >= 0) {
            memcpy(w->fr[i].hdr, b->hdr[i], b->iov[b->hidx[i]].len);
            b->iov[b->hidx[i]].base = (char *)w->fr[i].hdr;
        }
    }
    b->n = 0; /* the request holds the private encodings now */
    if (b->ctrl_len) {
        if ((size_t)r < b->ctrl_len) {
            w->ctrl = ws->ctrl.data; /* the builder's memory goes with the request */
            sl_wbuf_init(&ws->ctrl, ws->ctrl.max);
        } else {
            sl_wbuf_cleanup(&ws->ctrl);
        }
    }
    unsigned k = 0;
    size_t done = (size_t)r;
    while (done >= b->iov[k].len) {
        done -= b->iov[k].len;
        k++;
    }
    b->iov[k].base += done;
    b->iov[k].len -= done;
    ws->bytes_local += b->total - (size_t)r; /* counted now, as on the main loop */
    atomic_fetch_add_explicit(&ws->bytes_out, b->total, memory_order_relaxed);
    /* uv_write copies the iovec array: b (a slot, or the stack) is free after it. */
    int rc = uv_write(&w->req, (uv_stream_t *)&ws->tcp, b->iov + k, b->niov - k, on_ws_write);
    if (rc) {
        ws_wreq_free(w);
        ws_fail(ws, uv_strerror(rc));
        return 0;
    }
    ws->w = w;
    ws_update_pending(ws);
    return 0;
}

/*
 * Worker: the flush of one player, as conn_flush's on the main loop:
 * gathered batches to uv_try_write while the socket takes them whole; a
 * remainder goes to one uv_write (ws_written).
 */
static void ws_flush(sl_rtmp_ws_t *ws)
{
    if (ws->w || ws->dead || ws->uring_busy)
        return;
    for (;;) {
        sl_rtmp_batch_t b;
        if (batch_fill(&b, &ws->ctrl, ws->q_ready ? &ws->q : NULL, ws->chunk_size, ws->play_sid)) {
            ws_fail(ws, "out of memory");
            return;
        }
        if (b.niov == 0)
            break;
        if (!ws_written(ws, &b, uv_try_write((uv_stream_t *)&ws->tcp, b.iov, b.niov)))
            return;
    }
    ws_update_pending(ws);
    if (ws->close_after_flush)
        ws_fail(ws, NULL);
}

/*
 * Worker, rtmp.write_mode io_uring: as flush_list_uring on the main loop,
 * with this loop's ring. Every send completes inside the submit
 * (uring_send.h), which ends the pass (and runs whenever the slots run
 * out), so no batch outlives the pass: a write side is never freed, and
 * no message is handled, while its batch waits.
 */
static void on_wk_uring_sent(void *ud, int result)
{
    sl_rtmp_batch_t *b = ud;
    sl_rtmp_ws_t *ws = b->ws;
    sl_rtmp_wk_t *wk = tl_wk;
    ws->uring_busy = 0;
    int more = ws->dead ? (batch_release(b), 0) : ws_written(ws, b, result);
    wk->free_slots[wk->n_free++] = b->slot;
    if (more)
        ws_flush(ws); /* a next batch (writev), the pending count, a close after flush */
}

static void wk_uring_submit(sl_rtmp_wk_t *wk)
{
    int rc = sl_uring_send_submit(wk->uring);
    if (rc) {
        SL_LOGW(NULL, "rtmp: worker io_uring sends failed (%s); this loop writes with writev",
                rc == SL_EIO ? "not completed inline" : sl_strerror(rc));
        sl_uring_send_free(wk->uring);
        wk->uring = NULL;
    }
}

static void wk_flush_list_uring(sl_rtmp_wk_t *wk, sl_list_t *list)
{
    while (!sl_list_empty(list)) {
        sl_rtmp_ws_t *ws = sl_container_of(list->next, sl_rtmp_ws_t, flush_link);
        sl_list_remove(&ws->flush_link);
        ws->on_flush_list = 0;
        if (ws->w || ws->dead || ws->uring_busy || !wk->uring) {
            ws_flush(ws);
            continue;
        }
        if (!wk->n_free) {
            wk_uring_submit(wk); /* every slot comes back */
            if (!wk->uring || !wk->n_free) {
                ws_flush(ws);
                continue;
            }
        }
        sl_rtmp_batch_t *b = &wk->slots[wk->free_slots[--wk->n_free]];
        uv_os_fd_t fd;
        if (batch_fill(b, &ws->ctrl, ws->q_ready ? &ws->q : NULL, ws->chunk_size, ws->play_sid)) {
            wk->free_slots[wk->n_free++] = b->slot;
            ws_fail(ws, "out of memory");
            continue;
        }
        if (b->niov == 0 || uv_fileno((uv_handle_t *)&ws->tcp, &fd) != 0) {
            batch_release(b);
            wk->free_slots[wk->n_free++] = b->slot;
            ws_flush(ws); /* nothing to send (the pending count, a close after flush), or no fd */
            continue;
        }
        b->ws = ws;
        memset(&b->msg, 0, sizeof b->msg);
        b->msg.msg_iov = (struct iovec *)b->iov;
        b->msg.msg_iovlen = b->niov;
        if (sl_uring_send_add(wk->uring, fd, &b->msg, 0, on_wk_uring_sent, b)) {
            /* Cannot happen (a slot per submission entry): write it now. */
            int more = ws_written(ws, b, uv_try_write((uv_stream_t *)&ws->tcp, b->iov, b->niov));
            wk->free_slots[wk->n_free++] = b->slot;
            if (more)
                ws_flush(ws);
            continue;
        }
        ws->uring_busy = 1;
    }
    if (wk->uring)
        wk_uring_submit(wk);
}

static void wk_flush_list(sl_list_t *list)
{
    if (tl_wk && tl_wk->uring) {
        wk_flush_list_uring(tl_wk, list);
        return;
    }
    while (!sl_list_empty(list)) {
        sl_rtmp_ws_t *ws = sl_container_of(list->next, sl_rtmp_ws_t, flush_link);
        sl_list_remove(&ws->flush_link);
        ws->on_flush_list = 0;
        ws_flush(ws);
    }
}

static void on_wk_prepare(uv_prepare_t *p)
{
    sl_rtmp_wk_t *wk = p->data;
    wk_flush_list(&wk->flush_list);
}

static void on_wk_merge(uv_timer_t *t)
{
    sl_rtmp_wk_t *wk = t->data;
    wk_flush_list(&wk->media_list);
    wk_flush_list(&wk->flush_list);
}

static void on_wk_audio_hold(uv_timer_t *t)
{
    sl_rtmp_wk_t *wk = t->data;
    wk_flush_list(&wk->audio_list);
    wk_flush_list(&wk->flush_list);
}

/* Worker: the sweep's share of the write side (see on_sweep): the ring of a
 * join burst goes back once drained, and a player that acknowledges
 * nothing for media.slow_disconnect with bytes outstanding is closed. */
static void on_wk_sweep(uv_timer_t *t)
{
    sl_rtmp_wk_t *wk = t->data;
    uint64_t now = uv_now(t->loop);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &wk->all) {
        sl_rtmp_ws_t *ws = sl_container_of(it, sl_rtmp_ws_t, wk_link);
        if (ws->dead || !ws->q_ready)
            continue;
        sl_subq_trim(&ws->q);
        if (!ws->slow_ms)
            continue;
        uv_os_fd_t fd;
        int outq = 0;
        if (uv_fileno((uv_handle_t *)&ws->tcp, &fd) != 0 || ioctl(fd, SIOCOUTQ, &outq) != 0)
            continue;
        uint64_t pending = ws->tcp.write_queue_size + (uint64_t)(outq > 0 ? outq : 0);
        uint64_t delivered = ws->bytes_local > pending ? ws->bytes_local - pending : 0;
        if (pending == 0 || delivered != ws->delivered_bytes) {
            ws->delivered_bytes = delivered;
            ws->stall_since_ms = 0;
        } else if (!ws->stall_since_ms) {
            ws->stall_since_ms = now;
        } else if ((int64_t)(now - ws->stall_since_ms) > ws->slow_ms) {
            char why[160];
            snprintf(why, sizeof why, "player stopped reading: nothing acknowledged for %lld ms "
                     "with %llu bytes outstanding", (long long)(now - ws->stall_since_ms),
                     (unsigned long long)pending);
            ws_fail(ws, why);
        }
    }
}

/* Worker: the merge window's or the audio hold's timer, as the values say. */
static void wk_timers_start(sl_rtmp_wk_t *wk)
{
    if (wk->merge_ms > 0)
        uv_timer_start(&wk->merge, on_wk_merge, (uint64_t)wk->merge_ms, (uint64_t)wk->merge_ms);
    if (wk->merge_ms == 0 && wk->audio_hold_ms > 0)
        uv_timer_start(&wk->audio_hold, on_wk_audio_hold, (uint64_t)wk->audio_hold_ms,
                       (uint64_t)wk->audio_hold_ms);
}

/* The values a reload posts to each worker (sl_rtmp_server_reload). */
typedef struct sl_rtmp_wcfg {
    int64_t merge_ms, audio_hold_ms, slow_ms;
} sl_rtmp_wcfg_t;

/* Worker: a reload's values (u: an sl_rtmp_wcfg_t, owned). The write
 * sides waiting for the old timers go out now; the timers restart with the
 * new values, and every write side here takes the new stall bound. A
 * worker with no RTMP player has nothing to change: its first player
 * brings the values in force then. */
static void wk_config(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)w;
    (void)obj;
    sl_rtmp_wcfg_t *cfg = (sl_rtmp_wcfg_t *)(uintptr_t)u;
    sl_rtmp_wk_t *wk = tl_wk;
    if (wk) {
        uv_timer_stop(&wk->merge);
        uv_timer_stop(&wk->audio_hold);
        wk_flush_list(&wk->media_list);
        wk_flush_list(&wk->audio_list);
        wk_flush_list(&wk->flush_list);
        wk->merge_ms = cfg->merge_ms;
        wk->audio_hold_ms = cfg->audio_hold_ms;
        wk_timers_start(wk);
        sl_list_t *it;
        for (it = wk->all.next; it != &wk->all; it = it->next) {
            sl_rtmp_ws_t *ws = sl_container_of(it, sl_rtmp_ws_t, wk_link);
            ws->merge_ms = cfg->merge_ms;
            ws->audio_hold_ms = cfg->audio_hold_ms;
            ws->slow_ms = cfg->slow_ms;
        }
        SL_LOGI(NULL, "rtmp: worker %d: write_merge %lld ms, audio_hold %lld ms, slow_disconnect "
                "%lld ms", sl_worker_index(w), (long long)wk->merge_ms, (long long)wk->audio_hold_ms,
                (long long)cfg->slow_ms);
    }
    sl_free(cfg);
}

static void on_wk_handle_closed(uv_handle_t *h)
{
    sl_rtmp_wk_t *wk = h->data;
    if (--wk->closing == 0)
        sl_free(wk);
}

/* Worker: this loop's RTMP state, made for its first player. NULL when out
 * of memory. */
static sl_rtmp_wk_t *wk_get(sl_worker_t *w, const sl_rtmp_ws_t *ws)
{
    if (tl_wk)
        return tl_wk;
    sl_rtmp_wk_t *wk = sl_calloc(1, sizeof(*wk));
    if (!wk)
        return NULL;
    uv_loop_t *loop = sl_worker_loop(w);
    sl_list_init(&wk->all);
    sl_list_init(&wk->flush_list);
    sl_list_init(&wk->media_list);
    sl_list_init(&wk->audio_list);
    wk->merge_ms = ws->merge_ms;
    wk->audio_hold_ms = ws->audio_hold_ms;
    uv_prepare_init(loop, &wk->prepare);
    uv_timer_init(loop, &wk->merge);
    uv_timer_init(loop, &wk->audio_hold);
    uv_timer_init(loop, &wk->sweep);
    wk->prepare.data = wk->merge.data = wk->audio_hold.data = wk->sweep.data = wk;
    uv_prepare_start(&wk->prepare, on_wk_prepare);
    wk_timers_start(wk);
    uv_timer_start(&wk->sweep, on_wk_sweep, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
    if (ws->want_uring) {
        int urc = sl_uring_send_new(URING_SLOTS, &wk->uring);
        wk->slots = urc == 0 ? sl_calloc(URING_SLOTS, sizeof(*wk->slots)) : NULL;
        if (!wk->slots) {
            sl_uring_send_free(wk->uring);
            wk->uring = NULL;
            SL_LOGW(NULL, "rtmp: worker %d: io_uring unavailable (%s); this loop writes with writev",
                    sl_worker_index(w), urc ? sl_strerror(urc) : "out of memory");
        } else {
            for (uint32_t i = 0; i < URING_SLOTS; i++) {
                wk->slots[i].slot = i;
                wk->free_slots[wk->n_free++] = URING_SLOTS - 1 - i;
            }
            SL_LOGD(NULL, "rtmp: worker %d: writes batched through io_uring", sl_worker_index(w));
        }
    }
    tl_wk = wk;
    return wk;
}

/* Worker: its last player left: the handles close and free the state. */
static void wk_put(sl_rtmp_wk_t *wk)
{
    if (--wk->n)
        return;
    tl_wk = NULL;
    if (wk->uring) {
        uint64_t submits = 0, sends = 0;
        sl_uring_send_stats(wk->uring, &submits, &sends);
        SL_LOGD(NULL, "rtmp: worker write path: io_uring %llu sends in %llu submissions",
                (unsigned long long)sends, (unsigned long long)submits);
    }
    sl_uring_send_free(wk->uring); /* no send outlives a flush pass */
    wk->uring = NULL;
    sl_free(wk->slots);
    wk->slots = NULL;
    wk->closing = 4;
    uv_close((uv_handle_t *)&wk->prepare, on_wk_handle_closed);
    uv_close((uv_handle_t *)&wk->merge, on_wk_handle_closed);
    uv_close((uv_handle_t *)&wk->audio_hold, on_wk_handle_closed);
    uv_close((uv_handle_t *)&wk->sweep, on_wk_handle_closed);
}

/* Worker: open the write side on the dup'd socket u. */
static void ws_attach(sl_worker_t *w, void *obj, uint64_t u)
{
    sl_rtmp_ws_t *ws = obj;
    int fd = (int)u;
    sl_list_init(&ws->wk_link);
    sl_list_init(&ws->relay_link);
    sl_rtmp_wk_t *wk = wk_get(w, ws);
    if (!wk) {
        close(fd);
        ws_fail(ws, "out of memory");
        return;
    }
    wk->n++;
    sl_list_push_back(&wk->all, &ws->wk_link);
    int rc = uv_tcp_init(sl_worker_loop(w), &ws->tcp);
    if (rc) {
        close(fd);
        ws_fail(ws, uv_strerror(rc));
        return;
    }
    ws->tcp_init = 1;
    ws->tcp.data = ws;
    if ((rc = uv_tcp_open(&ws->tcp, (uv_os_sock_t)fd))) {
        close(fd);
        ws_fail(ws, uv_strerror(rc));
        return;
    }
    ws_schedule_flush(ws); /* the control bytes that came with it */
}

/* Worker: leaves the stream (its relay) and drops the queue. */
static void ws_unplay_local(sl_rtmp_ws_t *ws)
{
    if (ws->relay) {
        sl_list_remove(&ws->relay_link);
        ws->relay = NULL;
    }
    if (ws->q_ready) {
        sl_subq_cleanup(&ws->q);
        ws->q_ready = 0;
    }
    ws->play_sid = 0;
    ws_update_pending(ws);
}

/* Worker: a play starts here (u: the sl_rtmp_wplay_t, owned). */
static void ws_play(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)w;
    sl_rtmp_ws_t *ws = obj;
    sl_rtmp_wplay_t *p = (sl_rtmp_wplay_t *)(uintptr_t)u;
    ws_unplay_local(ws);
    ws->q = p->q;
    ws->q_ready = 1;
    ws->play_sid = p->play_sid;
    ws->chunk_size = p->chunk_size;
    ws->paused = p->paused;
    ws->recv_audio = p->recv_audio;
    ws->recv_video = p->recv_video;
    ws->ts_rebase = p->ts_rebase;
    ws->sent_media = p->sent_media;
    ws->ts_base = p->ts_base;
    ws->last_out_ts = p->last_out_ts;
    ws->relay = p->relay;
    ws->stall_since_ms = 0;
    if (ws->relay) /* a live play; a recording's frames come one by one (ws_frame) */
        sl_list_push_back(&ws->relay->players, &ws->relay_link);
    sl_free(p);
    if (ws->q.count)
        ws_schedule_flush(ws);
    ws_update_pending(ws);
}

static void ws_unplay(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)w;
    (void)u;
    ws_unplay_local(obj);
}

/* Worker: control bytes in order with the media (u: an sl_buf_t, owned). */
static void ws_ctrl(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)w;
    sl_rtmp_ws_t *ws = obj;
    sl_buf_t *b = (sl_buf_t *)(uintptr_t)u;
    if (!ws->dead) {
        int rc = sl_wbuf_put(&ws->ctrl, b->data, b->len);
        if (rc)
            ws_fail(ws, rc == SL_ENOMEM ? "out of memory" : "too many control bytes queued");
        else
            ws_schedule_flush(ws);
    }
    sl_buf_unref(b);
}

/* Worker: a frame for one player (the unpause replay). */
static void ws_offer(sl_rtmp_ws_t *ws, sl_frame_t *f, uint64_t now);
static void ws_frame(sl_worker_t *w, void *obj, uint64_t u)
{
    sl_frame_t *f = (sl_frame_t *)(uintptr_t)u;
    ws_offer(obj, f, uv_now(sl_worker_loop(w)));
    sl_frame_unref(f);
}

/* Worker: a change of the play's state (pause, receiveAudio/Video, a
 * republish's rebase), in order with the media. */
static void ws_op(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)w;
    sl_rtmp_ws_t *ws = obj;
    switch ((int)(u & 0xff)) {
    case SL_RTMP_WS_PAUSE:
        ws->paused = 1;
        if (ws->q_ready)
            sl_subq_flush(&ws->q);
        break;
    case SL_RTMP_WS_UNPAUSE:
        ws->paused = 0;
        if (u >> 8)
            ws->ts_rebase = 1;
        break;
    case SL_RTMP_WS_SEEK:
        if (ws->q_ready)
            sl_subq_flush(&ws->q);
        ws->ts_rebase = 0;
        ws->ts_base = 0;
        break;
    case SL_RTMP_WS_REBASE:
        ws->ts_rebase = 1;
        break;
    case SL_RTMP_WS_RECV_AUDIO:
        ws->recv_audio = (int)(u >> 8);
        break;
    case SL_RTMP_WS_RECV_VIDEO:
        if ((u >> 8) && !ws->recv_video && ws->q_ready)
            sl_subq_flush(&ws->q); /* resume video on a keyframe */
        ws->recv_video = (int)(u >> 8);
        break;
    case SL_RTMP_WS_CLOSE_AFTER_FLUSH:
        ws->close_after_flush = 1;
        ws_schedule_flush(ws);
        break;
    }
}

static void on_ws_closed(uv_handle_t *h)
{
    sl_rtmp_ws_t *ws = h->data;
    post_main(ws->worker, ws_gone_main, ws, 0);
}

/* Worker: close the write side. A write in flight is cancelled (its
 * callback runs before the close callback's, and frees it). */
static void ws_detach(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)u;
    sl_rtmp_ws_t *ws = obj;
    ws->dead = 1;
    if (ws->on_flush_list) {
        sl_list_remove(&ws->flush_link);
        ws->on_flush_list = 0;
    }
    ws_unplay_local(ws);
    sl_wbuf_cleanup(&ws->ctrl);
    if (sl_list_linked(&ws->wk_link)) {
        sl_list_remove(&ws->wk_link);
        wk_put(tl_wk);
    }
    if (ws->tcp_init) {
        ws->tcp.data = ws;
        uv_close((uv_handle_t *)&ws->tcp, on_ws_closed);
    } else {
        post_main(w, ws_gone_main, ws, 0);
    }
}

/* Worker: a frame of a relay's stream for each of its players here. */
static void relay_frame(sl_worker_t *w, void *obj, uint64_t u)
{
    sl_rtmp_relay_t *r = obj;
    sl_frame_t *f = (sl_frame_t *)(uintptr_t)u;
    uint64_t now = uv_now(sl_worker_loop(w));
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &r->players) {
        ws_offer(sl_container_of(it, sl_rtmp_ws_t, relay_link), f, now);
    }
    sl_frame_unref(f);
}

/* Worker: the relay's last message. */
static void relay_free(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)w;
    (void)u;
    sl_rtmp_relay_t *r = obj;
    SL_ASSERT(sl_list_empty(&r->players)); /* each player's unplay came before */
    sl_free(r);
}

/* The rare outcomes of queueing a frame on a worker (as sink_queue_trouble). */
static __attribute__((noinline, cold)) void ws_queue_trouble(sl_rtmp_ws_t *ws, int rc)
{
    if (rc == SL_ESLOW) {
        char why[128];
        ws_fail(ws, sl_subq_slow_reason(&ws->q, why, sizeof why));
        return;
    }
    if (rc == SL_ENOMEM || rc == SL_ETOOBIG) {
        SL_LOGE(&ws->log, "subscriber queue: %s; skipping to the next keyframe", sl_strerror(rc));
        sl_subq_flush(&ws->q);
    }
    if (rc == SL_SUBQ_FELL_BEHIND)
        SL_LOGI(&ws->log, "subscriber falling behind: dropping to the next keyframe");
}

/* Worker: one frame into one player's queue, with the policy of the main
 * loop's sink_on_frame (rtmp_cmd.c): the same filters, timestamps, drop
 * policy and flush scheduling. */
static void ws_offer(sl_rtmp_ws_t *ws, sl_frame_t *f, uint64_t now)
{
    if (ws->dead || !ws->q_ready || ws->paused)
        return;
    int is_cfg = (f->flags & (SL_FRAME_CONFIG | SL_FRAME_META)) != 0;
    if ((f->kind == SL_FLV_AUDIO && !ws->recv_audio) || (f->kind == SL_FLV_VIDEO && !ws->recv_video))
        return;
    uint32_t ts = sl__rtmp_out_ts(f, &ws->ts_rebase, &ws->ts_base, &ws->sent_media,
                                  &ws->last_out_ts);
    uint64_t dropped = 0;
    int rc = sl_subq_offer(&ws->q, f, ts, now, &dropped);
    if (dropped)
        atomic_fetch_add_explicit(&ws->frames_dropped, dropped, memory_order_relaxed);
    if (rc) {
        ws_queue_trouble(ws, rc);
        if (rc == SL_ESLOW)
            return;
    }
    int hold = f->kind == SL_FLV_AUDIO && !is_cfg && ws->q.video_seen && ws->recv_video;
    ws_schedule_media(ws, hold);
}

/* Main loop: a frame pushed to a stream with players on relay->worker:
 * one reference, one message. If the inbox is full (the worker is that far
 * behind), the relay drops to the next resync point for all of them, as a
 * player's own queue would; configuration frames are waited for. */
static void relay_on_frame(sl_sink_t *sink, sl_frame_t *f)
{
    sl_rtmp_relay_t *r = sink->ctx;
    if (r->joining)
        return; /* its players' queues hold the replay already */
    int keep = (f->flags & (SL_FRAME_CONFIG | SL_FRAME_META)) != 0;
    if (f->kind == SL_FLV_VIDEO && !keep)
        r->video_seen = 1;
    if (r->skipping && !keep) {
        int resync = f->kind == SL_FLV_VIDEO ? (f->flags & SL_FRAME_KEY) != 0
                                             : f->kind == SL_FLV_AUDIO && !r->video_seen;
        if (!resync) {
            r->refused++;
            return;
        }
        r->skipping = 0;
    }
    sl_frame_ref(f);
    if (keep) {
        post_worker(r->worker, relay_frame, r, (uint64_t)(uintptr_t)f);
        return;
    }
    if (sl_worker_post(r->worker, relay_frame, r, (uint64_t)(uintptr_t)f) == SL_EAGAIN) {
        sl_frame_unref(f);
        if (!r->refused)
            SL_LOGW(NULL, "worker %d is behind (inbox full): its players of %s drop to the next "
                    "keyframe", sl_worker_index(r->worker), sink->stream ? sink->stream->name : "-");
        r->refused++;
        r->skipping = 1;
    }
}

static const sl_sink_ops_t relay_ops = {.on_frame = relay_on_frame};

/* Main loop: the relay of stream st to worker w, made and attached when
 * this is its first player there. NULL when out of memory. */
static sl_rtmp_relay_t *relay_get(sl_rtmp_server_t *srv, sl_stream_t *st, sl_worker_t *w)
{
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &srv->relays) {
        sl_rtmp_relay_t *r = sl_container_of(it, sl_rtmp_relay_t, link);
        if (r->sink.stream == st && r->worker == w)
            return r;
    }
    sl_rtmp_relay_t *r = sl_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->sink.ops = &relay_ops;
    r->sink.ctx = r;
    r->sink.internal = 1;
    r->worker = w;
    sl_list_init(&r->players);
    r->joining = 1;
    int rc = sl_hub_add_sink(st->hub, st->name, &r->sink);
    r->joining = 0;
    if (rc) {
        sl_free(r);
        return NULL;
    }
    sl_list_push_back(&srv->relays, &r->link);
    return r;
}

/* Main loop: a relayed player left the relay (its unplay or detach was
 * posted before); the last one detaches it and hands it to the worker to
 * free, behind every frame it posted. */
static void relay_release(sl_rtmp_relay_t *r)
{
    SL_ASSERT(r->n_players > 0);
    if (--r->n_players)
        return;
    sl_list_remove(&r->link);
    sl_stream_remove_sink(&r->sink);
    post_worker(r->worker, relay_free, r, 0);
}

/* Main loop: the play's queue and state go to the worker and the player's
 * frames come through the relay from now on (c->ws is set, the play is
 * live, and its queue holds the GOP replayed at join). */
static void ws_play_handover(sl_rtmp_conn_t *c)
{
    if (!c->ws || !c->q_ready || !c->play_sid || c->play_remote ||
        (!c->vod && (!c->sink.stream || c->sink.stream->pushing)))
        return;
    sl_rtmp_wplay_t *p = sl_malloc(sizeof(*p));
    sl_rtmp_relay_t *r = NULL;
    if (p && !c->vod && !(r = relay_get(c->srv, c->sink.stream, c->ws->worker))) {
        sl_free(p);
        p = NULL;
    }
    if (!p) {
        sl__rtmp_close(c, "out of memory");
        return;
    }
    if (r) {
        r->n_players++;
        c->relay = r;
        sl_stream_sink_relayed(&c->sink, 1);
    }
    c->play_remote = 1;
    p->relay = r;
    p->q = c->q; /* moved: the frames' references go with it */
    memset(&c->q, 0, sizeof c->q);
    c->q_ready = 0;
    p->play_sid = c->play_sid;
    p->chunk_size = c->out_chunk_size;
    p->paused = c->paused;
    p->recv_audio = c->recv_audio;
    p->recv_video = c->recv_video;
    p->ts_rebase = c->ts_rebase;
    p->sent_media = c->sent_media;
    p->ts_base = c->ts_base;
    p->last_out_ts = c->last_out_ts;
    post_worker(c->ws->worker, ws_play, c->ws, (uint64_t)(uintptr_t)p);
}

/* Hands the write side to c->worker (no write is in flight: called from
 * conn_flush with c->w NULL), with the play if one runs. On failure the
 * writes stay here. */
static void ws_start(sl_rtmp_conn_t *c)
{
    c->ws_want = 0;
    uv_os_fd_t fd;
    int dfd = -1;
    sl_rtmp_ws_t *ws = NULL;
    char *sid = NULL;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || (dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0 ||
        !(ws = sl_calloc(1, sizeof(*ws))) || !(sid = sl_strdup(c->sess.id))) {
        if (dfd >= 0)
            close(dfd);
        sl_free(ws);
        SL_LOGW(&c->sess.log, "writes stay on the main loop (cannot hand them to worker %d)",
                sl_worker_index(c->worker));
        sl_worker_players_add(c->worker, -1);
        c->worker = sl_workers_get(sl_worker_pool(c->worker), 0);
        sl_worker_players_add(c->worker, 1);
        return;
    }
    const sl_config_t *cfg = c->core->cfg;
    ws->worker = c->worker;
    ws->c = c;
    ws->log_sid = sid;
    ws->log.sid = sid;
    ws->log.proto = "rtmp";
    ws->ctrl = c->ctrl; /* moved: the bytes not written yet go first */
    sl_wbuf_init(&c->ctrl, c->ctrl.max);
    ws->chunk_size = c->out_chunk_size;
    ws->merge_ms = cfg->media_write_merge_ms;
    ws->audio_hold_ms = cfg->media_audio_hold_ms;
    ws->slow_ms = cfg->media_slow_disconnect_ms;
    ws->want_uring = c->srv->uring != NULL;
    c->ws = ws;
    c->ws_seen_bytes = c->ws_seen_msgs = c->ws_seen_drops = 0;
    if (c->on_flush_list) {
        sl_list_remove(&c->flush_link);
        c->on_flush_list = 0;
    }
    sl_workers_keepalive(sl_worker_pool(c->worker), 1);
    post_worker(c->worker, ws_attach, ws, (uint64_t)dfd);
    SL_LOGD(&c->sess.log, "writes on worker %d", sl_worker_index(c->worker));
    ws_play_handover(c);
}

void sl__rtmp_conn_offload(sl_rtmp_conn_t *c)
{
    sl_workers_t *ws = c->core->workers;
    if (!ws || c->state == SL_RTMP_CONN_CLOSING)
        return;
    if (c->ws) {
        ws_play_handover(c); /* a new play on a connection whose writes moved already */
        return;
    }
    if (c->worker)
        return;
    /* RTMPS stays on the main loop: its TLS filter lives here. So do
     * recordings: the VOD reader pushes their frames on the main loop. */
    sl_worker_t *w = c->tls || c->vod ? sl_workers_get(ws, 0) : sl_workers_least_loaded(ws);
    sl_worker_players_add(w, 1);
    c->worker = w;
    if (sl_worker_index(w) != 0) {
        c->ws_want = 1;
        sl__rtmp_schedule_flush(c);
    }
}

int sl__rtmp_ws_post_op(sl_rtmp_conn_t *c, int op, int arg)
{
    if (!c->ws || c->state == SL_RTMP_CONN_CLOSING ||
        (!c->play_remote && op != SL_RTMP_WS_CLOSE_AFTER_FLUSH))
        return 0;
    post_worker(c->ws->worker, ws_op, c->ws, (uint64_t)op | (uint64_t)(arg ? 1 : 0) << 8);
    return 1;
}

int sl__rtmp_ws_post_frame(sl_rtmp_conn_t *c, sl_frame_t *f)
{
    if (!c->play_remote)
        return 0;
    post_worker(c->ws->worker, ws_frame, c->ws, (uint64_t)(uintptr_t)sl_frame_ref(f));
    return 1;
}

void sl__rtmp_ws_unplay(sl_rtmp_conn_t *c)
{
    if (!c->play_remote)
        return;
    c->play_remote = 0;
    post_worker(c->ws->worker, ws_unplay, c->ws, 0);
    if (c->relay) { /* the caller detaches the sink next (which ends its relayed mark) */
        relay_release(c->relay);
        c->relay = NULL;
    }
}

/* Main loop: control bytes of a connection whose writes are on a worker. */
static int ws_send(sl_rtmp_conn_t *c, uint32_t csid, uint8_t type, uint32_t sid, uint32_t ts,
                   const uint8_t *p, size_t n)
{
    sl_wbuf_t w;
    sl_wbuf_init(&w, c->ctrl.max);
    int rc = sl_rtmp_chunk_write(&w, csid, type, sid, ts, p, n, c->out_chunk_size);
    sl_buf_t *b = rc ? NULL : sl_wbuf_to_buf(&w);
    sl_wbuf_cleanup(&w);
    if (rc)
        return rc;
    if (!b)
        return SL_ENOMEM;
    c->sess.msgs_out++;
    post_worker(c->ws->worker, ws_ctrl, c->ws, (uint64_t)(uintptr_t)b);
    return 0;
}

/* rtmp.write_cork: TCP_CORK on (1) or off (0) around a flush. */
static void set_cork(sl_rtmp_conn_t *c, int on)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
}

/*
 * MSG_ZEROCOPY (rtmp.zerocopy_min_bytes). The kernel pins the pages of a
 * zerocopy send and reads them until the peer has acknowledged the bytes,
 * then queues a notification on the socket's error queue naming a range of
 * send ids (one id per send that took bytes, counting from 0). So every
 * byte of such a send must stay put until then: a record holds a reference
 * to each frame and private encoding, and copies of the per-player headers
 * and of the ctrl bytes, and the iovecs are pointed at those copies. The
 * batch is then retired as usual (the queue's references dropped, a
 * remainder handed to uv_write, which copies the headers it needs). The
 * records are freed when their notification is read: in the flush before
 * the loop sleeps, for every connection on srv->zc_list (a pending
 * notification also makes epoll report the socket, so the loop wakes for
 * it: that wake-up and the recvmsg are the cost of the notifications).
 *
 * A connection closed with records pending is reset (SO_LINGER 0): its
 * send queue, which may still point at their pages, is dropped with it.
 */
typedef struct sl_rtmp_zc {
    sl_list_t link;                 /* in c->zc_pending, oldest first */
    uint32_t id;                    /* the kernel's id of this send */
    uint32_t n;                     /* frames */
    uint8_t *ctrl;                  /* copy of the ctrl bytes (in this allocation) or NULL */
    struct {
        sl_frame_t *f;              /* reference */
        sl_buf_t *priv;             /* reference or NULL */
        uint8_t hdr[16];            /* copy of the per-player header */
    } fr[];
} sl_rtmp_zc_t;

static void zc_free(sl_rtmp_zc_t *z)
{
    for (uint32_t i = 0; i < z->n; i++) {
        sl_frame_unref(z->fr[i].f);
        sl_buf_unref(z->fr[i].priv);
    }
    sl_free(z);
}

/*
 * Sends b with MSG_ZEROCOPY; the result as uv_try_write gives it (bytes, or
 * a negative errno; -EAGAIN when the socket is full). Falls back to a plain
 * gathered write when no record can be allocated or the kernel refuses
 * (ENOBUFS: too many notifications unread).
 */
static int zc_send(sl_rtmp_conn_t *c, sl_rtmp_batch_t *b)
{
    uv_os_fd_t fd;
    if (!c->zc_on || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return uv_try_write((uv_stream_t *)&c->tcp, b->iov, b->niov);
    sl_rtmp_zc_t *z = sl_malloc(sizeof(*z) + (size_t)b->n * sizeof(z->fr[0]) + b->ctrl_len);
    if (!z)
        return uv_try_write((uv_stream_t *)&c->tcp, b->iov, b->niov);
    z->n = b->n;
    z->ctrl = NULL;
    if (b->ctrl_len) {
        z->ctrl = (uint8_t *)&z->fr[b->n];
        memcpy(z->ctrl, b->iov[0].base, b->ctrl_len);
        b->iov[0].base = (char *)z->ctrl;
    }
    for (uint32_t i = 0; i < b->n; i++) {
        z->fr[i].f = sl_frame_ref(sl_subq_at(&c->q, i)->f);
        z->fr[i].priv = b->priv[i] ? sl_buf_ref(b->priv[i]) : NULL;
        if (b->hidx[i] >= 0) {
            memcpy(z->fr[i].hdr, b->hdr[i], b->iov[b->hidx[i]].len);
            b->iov[b->hidx[i]].base = (char *)z->fr[i].hdr;
        }
    }
    struct msghdr msg = {.msg_iov = (struct iovec *)b->iov, .msg_iovlen = b->niov};
    ssize_t r = sendmsg(fd, &msg, MSG_ZEROCOPY | MSG_DONTWAIT | MSG_NOSIGNAL);
    int err = r < 0 ? errno : 0;
    if (r > 0) {
        z->id = c->zc_next++;
        sl_list_push_back(&c->zc_pending, &z->link);
        if (sl_list_empty(&c->zc_link))
            sl_list_push_back(&c->srv->zc_list, &c->zc_link);
        c->srv->zc_sends++;
        return (int)r;
    }
    /* Nothing taken, so nothing pinned: the iovecs go back to the batch's own memory. */
    if (b->ctrl_len)
        b->iov[0].base = (char *)c->ctrl.data;
    for (uint32_t i = 0; i < b->n; i++)
        if (b->hidx[i] >= 0)
            b->iov[b->hidx[i]].base = (char *)b->hdr[i];
    zc_free(z);
    if (r == 0 || err == EAGAIN || err == EWOULDBLOCK)
        return UV_EAGAIN;
    if (err == ENOBUFS)
        return uv_try_write((uv_stream_t *)&c->tcp, b->iov, b->niov);
    return -err;
}

/* Reads c's zerocopy notifications and frees the records they release. */
static void zc_drain(sl_rtmp_conn_t *c)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return;
    for (;;) {
        char cbuf[128];
        struct msghdr msg = {.msg_control = cbuf, .msg_controllen = sizeof cbuf};
        if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
            break;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (!((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
                  (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR)))
                continue;
            struct sock_extended_err ee;
            memcpy(&ee, CMSG_DATA(cm), sizeof ee);
            if (ee.ee_errno != 0 || ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY)
                continue;
            uint32_t lo = ee.ee_info, hi = ee.ee_data;
            c->srv->zc_notes++;
            if (ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED)
                c->srv->zc_copied += hi - lo + 1;
            /* Notifications come in order on TCP: everything up to hi is released. */
            while (!sl_list_empty(&c->zc_pending)) {
                sl_rtmp_zc_t *z = sl_container_of(c->zc_pending.next, sl_rtmp_zc_t, link);
                if ((int32_t)(z->id - hi) > 0)
                    break;
                sl_list_remove(&z->link);
                zc_free(z);
            }
        }
    }
    if (sl_list_empty(&c->zc_pending)) {
        sl_list_remove(&c->zc_link);
        sl_list_init(&c->zc_link);
    }
}

/* Frees c's zerocopy records at close; the socket is reset if any remained (see above). */
static void zc_close(sl_rtmp_conn_t *c)
{
    if (sl_list_empty(&c->zc_pending))
        return;
    zc_drain(c);
    if (sl_list_empty(&c->zc_pending))
        return;
    uv_os_fd_t fd;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

static void zc_release_all(sl_rtmp_conn_t *c)
{
    while (!sl_list_empty(&c->zc_pending)) {
        sl_rtmp_zc_t *z = sl_container_of(c->zc_pending.next, sl_rtmp_zc_t, link);
        sl_list_remove(&z->link);
        zc_free(z);
    }
    if (!sl_list_empty(&c->zc_link)) {
        sl_list_remove(&c->zc_link);
        sl_list_init(&c->zc_link);
    }
}

/*
 * Writes as much as the socket takes right now, in gathered batches; hands
 * a remainder to uv_write. Called from the flush list and write callbacks.
 *
 * Hot path: per batch, the iovecs and the per-frame headers live on the
 * stack and the bodies are the frames' shared encodings; frames are popped
 * from the queue (their references dropped) only after uv_try_write took
 * every byte. Only a partial write allocates, once per batch.
 */
static void conn_flush(sl_rtmp_conn_t *c)
{
    if (c->w || c->uring_busy || c->state == SL_RTMP_CONN_CLOSING)
        return;
    if (c->tls) {
        conn_flush_tls(c);
        return;
    }
    if (c->ws_want && !c->ws && !c->close_after_flush &&
        !(c->sink.stream && c->sink.stream->pushing)) /* (io_uring: a close inside a push) */
        ws_start(c);
    if (c->ws)
        return; /* the worker writes (a close-after-flush was posted to it) */
    sl_rtmp_server_t *srv = c->srv;
    int corked = 0;
    for (;;) {
        sl_rtmp_batch_t b;
        if (batch_build(c, &b))
            return;
        if (b.niov == 0)
            break;
        if (srv->cork && !corked) {
            set_cork(c, 1);
            corked = 1;
        }
        int r;
        if (srv->zc_min && b.total >= (size_t)srv->zc_min)
            r = zc_send(c, &b);
        else
            r = uv_try_write((uv_stream_t *)&c->tcp, b.iov, b.niov);
        if (!batch_written(c, &b, r))
            goto out;
    }
    if (c->close_after_flush) {
        if (corked)
            set_cork(c, 0);
        sl__rtmp_close(c, NULL);
        return;
    }
out:
    if (corked && c->state != SL_RTMP_CONN_CLOSING)
        set_cork(c, 0);
}

/*
 * RTMPS: encrypts gathered batches into the filter while less than
 * TLS_OUT_HIGH_BYTES of ciphertext waits there. A batch is built as on
 * plain TCP (ctrl bytes, then per-player header + shared body per frame)
 * but stops adding frames once it reaches what is left of that budget, so
 * the filter never holds more than the budget plus one frame. The filter
 * copies or encrypts every byte before it returns, so the batch is retired
 * at once: ctrl bytes dropped, frames popped (their references released).
 * 0, or a filter error (SL_ENOMEM, SL_EPROTO).
 */
static int tls_encrypt(sl_rtmp_conn_t *c)
{
    while (sl_tls_handshake_done(c->tls)) {
        size_t waiting = sl_tls_out_pending(c->tls);
        if (waiting >= TLS_OUT_HIGH_BYTES)
            break;
        size_t budget = TLS_OUT_HIGH_BYTES - waiting;
        enum { MAXF = SL_RTMP_MAX_IOV / 2 - 1 };
        struct iovec iov[SL_RTMP_MAX_IOV];
        uint8_t hdr[MAXF][16];
        sl_buf_t *priv[MAXF];
        unsigned niov = 0;
        size_t total = 0;
        size_t ctrl_len = c->ctrl.len;
        if (ctrl_len) {
            iov[niov++] = (struct iovec){.iov_base = c->ctrl.data, .iov_len = ctrl_len};
            total += ctrl_len;
        }
        uint32_t avail = c->q_ready ? c->q.count : 0, n = 0;
        for (; n < avail && n < MAXF && total < budget; n++) {
            const sl_subq_item_t *it = sl_subq_at(&c->q, n);
            sl_frame_t *f = it->f;
            uint32_t ts = it->tag;
            sl_buf_t *body = ts < 0xFFFFFF ? sl_rtmp_chunk_media_body(f, c->out_chunk_size) : NULL;
            priv[n] = NULL;
            if (body) {
                size_t hl = sl_rtmp_chunk_media_header(hdr[n], f, c->play_sid, ts);
                iov[niov++] = (struct iovec){.iov_base = hdr[n], .iov_len = hl};
                iov[niov++] = (struct iovec){.iov_base = body->data, .iov_len = body->len};
                total += hl + body->len;
                continue;
            }
            /* Extended timestamps, or no shared encoding: a private one (see conn_flush). */
            sl_wbuf_t w;
            sl_wbuf_init(&w, SL_BUF_MAX);
            if (sl_rtmp_chunk_write(&w, sl_rtmp_frame_csid(f), f->kind, c->play_sid, ts,
                                    f->body->data, f->body->len, c->out_chunk_size) ||
                !(priv[n] = sl_wbuf_to_buf(&w))) {
                sl_wbuf_cleanup(&w);
                for (uint32_t j = 0; j < n; j++)
                    sl_buf_unref(priv[j]);
                return SL_ENOMEM;
            }
            sl_wbuf_cleanup(&w);
            iov[niov++] = (struct iovec){.iov_base = priv[n]->data, .iov_len = priv[n]->len};
            total += priv[n]->len;
        }
        if (niov == 0)
            break;
        size_t used = 0;
        int rc = sl_tls_write(c->tls, iov, niov, total, &used);
        for (uint32_t i = 0; i < n; i++)
            sl_buf_unref(priv[i]);
        if (rc)
            return rc;
        if (used != total) /* cannot happen: the budget passed is the batch */
            return SL_EPROTO;
        if (ctrl_len)
            ctrl_written(c);
        sl_subq_pop(&c->q, n, NULL);
        c->sess.msgs_out += n;
    }
    return 0;
}

/*
 * The RTMPS flush: encrypt, take the ciphertext into the server's scratch
 * buffer, try to write it at once; repeat while the socket takes it all.
 * What it refuses is copied into a write request for one uv_write, and
 * nothing more is encrypted until that completes (on_write flushes
 * again). bytes_out counts ciphertext handed to libuv, as the plain path
 * counts its bytes, so the stall check's "handed over minus still queued"
 * is what the player has acknowledged.
 */
static void conn_flush_tls(sl_rtmp_conn_t *c)
{
    sl_rtmp_server_t *srv = c->srv;
    for (;;) {
        int rc = tls_encrypt(c);
        if (rc) {
            const char *why = sl_tls_error(c->tls);
            sl__rtmp_close(c, rc == SL_ENOMEM ? "out of memory" : why[0] ? why : sl_strerror(rc));
            return;
        }
        size_t n = sl_tls_out_take(c->tls, srv->wire, sizeof srv->wire);
        if (!n)
            break;
        uv_buf_t b = uv_buf_init((char *)srv->wire, (unsigned)n);
        int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (r == UV_EAGAIN)
            r = 0;
        if (r < 0) {
            sl__rtmp_close(c, uv_strerror(r));
            return;
        }
        c->sess.bytes_out += (uint64_t)r;
        if ((size_t)r == n)
            continue;
        size_t left = n - (size_t)r;
        sl_rtmp_wreq_t *w = sl_malloc(sizeof(*w));
        uint8_t *copy = w ? sl_malloc(left) : NULL;
        if (!copy) {
            sl_free(w);
            sl__rtmp_close(c, "out of memory");
            return;
        }
        memcpy(copy, srv->wire + r, left);
        w->c = c;
        w->n = 0;
        w->ws = NULL;
        w->iov = NULL;
        w->niov = 0;
        w->ctrl = copy;
        w->req.data = w;
        b = uv_buf_init((char *)copy, (unsigned)left);
        c->sess.bytes_out += left; /* counted now; the write completes or the conn dies */
        rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
        if (rc) {
            wreq_free(w);
            sl__rtmp_close(c, uv_strerror(rc));
            return;
        }
        c->w = w;
        return;
    }
    if (c->close_after_flush)
        sl__rtmp_close(c, NULL);
}

/*
 * RTMPS, just before a close: queue close_notify (or find the alert a
 * failed handshake left) and hand what waits to the socket if it takes it
 * now. Nothing waits for it: the connection is going away. Skipped while a
 * write is in flight, whose bytes must go first.
 */
static void tls_goodbye(sl_rtmp_conn_t *c)
{
    if (c->w)
        return;
    sl_tls_close_notify(c->tls);
    size_t n = sl_tls_out_take(c->tls, c->srv->wire, sizeof c->srv->wire);
    if (n) {
        uv_buf_t b = uv_buf_init((char *)c->srv->wire, (unsigned)n);
        int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (r > 0)
            c->sess.bytes_out += (uint64_t)r;
    }
}

/*
 * io_uring (rtmp.write_mode: io_uring): the flush pass gathers one batch per
 * player into the server's slots and hands them to the kernel in one
 * submission per URING_SLOTS players, instead of one writev each. The
 * kernel completes every send inline (uring_send.h), so each batch is
 * retired in its callback before the submit returns, exactly as after a
 * uv_try_write. A connection is marked busy while its batch waits for the
 * submit; a close in that window submits at once (sl__rtmp_close) so that
 * no queued send outlives the frames it points at. RTMPS connections, and
 * any connection with a uv_write in flight, take the writev path.
 */
static void on_uring_sent(void *ud, int result)
{
    sl_rtmp_batch_t *b = ud;
    sl_rtmp_conn_t *c = b->c;
    sl_rtmp_server_t *srv = c->srv;
    c->uring_busy = 0;
    int more = batch_written(c, b, result);
    srv->free_slots[srv->n_free++] = b->slot;
    if (more)
        conn_flush(c); /* more than one batch waiting, or a close after flush */
}

/* A submission went wrong (the kernel did not complete inline): writev from now on. */
static void uring_submit(sl_rtmp_server_t *srv)
{
    int rc = sl_uring_send_submit(srv->uring);
    if (rc) {
        SL_LOGW(NULL, "rtmp: io_uring sends failed (%s); rtmp.write_mode falls back to writev",
                rc == SL_EIO ? "not completed inline" : sl_strerror(rc));
        sl_uring_send_free(srv->uring);
        srv->uring = NULL;
    }
}

static void flush_list_uring(sl_rtmp_server_t *srv, sl_list_t *list)
{
    while (!sl_list_empty(list)) {
        sl_rtmp_conn_t *c = sl_container_of(list->next, sl_rtmp_conn_t, flush_link);
        sl_list_remove(&c->flush_link);
        c->on_flush_list = 0;
        if (c->tls || c->ws || c->ws_want || c->w || c->uring_busy || c->state == SL_RTMP_CONN_CLOSING || !srv->uring) {
            conn_flush(c);
            continue;
        }
        if (!srv->n_free) {
            uring_submit(srv); /* every slot comes back */
            if (!srv->uring || !srv->n_free) {
                conn_flush(c);
                continue;
            }
        }
        sl_rtmp_batch_t *b = &srv->slots[srv->free_slots[--srv->n_free]];
        uv_os_fd_t fd;
        if (batch_build(c, b) || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) {
            if (c->state != SL_RTMP_CONN_CLOSING)
                batch_release(b);
            srv->free_slots[srv->n_free++] = b->slot;
            continue;
        }
        if (b->niov == 0) {
            srv->free_slots[srv->n_free++] = b->slot;
            if (c->close_after_flush)
                sl__rtmp_close(c, NULL);
            continue;
        }
        b->c = c;
        memset(&b->msg, 0, sizeof b->msg);
        b->msg.msg_iov = (struct iovec *)b->iov;
        b->msg.msg_iovlen = b->niov;
        if (sl_uring_send_add(srv->uring, fd, &b->msg, 0, on_uring_sent, b)) {
            /* Cannot happen (a slot per submission entry): write it now. */
            batch_written(c, b, uv_try_write((uv_stream_t *)&c->tcp, b->iov, b->niov));
            srv->free_slots[srv->n_free++] = b->slot;
            continue;
        }
        c->uring_busy = 1;
    }
    if (srv->uring)
        uring_submit(srv);
}

/* Flushes every connection on a list. Taking the head each time stays
 * correct whatever a flush does to other connections (a close may queue
 * status messages to players, which joins them to a list). */
static void flush_list(sl_rtmp_server_t *srv, sl_list_t *list)
{
    if (srv->uring) {
        flush_list_uring(srv, list);
        return;
    }
    while (!sl_list_empty(list)) {
        sl_rtmp_conn_t *c = sl_container_of(list->next, sl_rtmp_conn_t, flush_link);
        sl_list_remove(&c->flush_link);
        c->on_flush_list = 0;
        conn_flush(c);
    }
}

/* Before the loop sleeps: zerocopy notifications first (they free
 * records, and a pending one would wake the loop at once), then the flush. */
static void on_prepare(void *ud)
{
    sl_rtmp_server_t *srv = ud;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &srv->zc_list) {
        zc_drain(sl_container_of(it, sl_rtmp_conn_t, zc_link));
    }
    flush_list(srv, &srv->flush_list);
}

static void on_merge_timer(uv_timer_t *t)
{
    sl_rtmp_server_t *srv = t->data;
    flush_list(srv, &srv->media_list);
    flush_list(srv, &srv->flush_list);
}

static void on_audio_hold_timer(uv_timer_t *t)
{
    sl_rtmp_server_t *srv = t->data;
    flush_list(srv, &srv->audio_list);
    flush_list(srv, &srv->flush_list);
}

/* ------------------------------------------------------------------ */
/* closing                                                             */

static void maybe_finish_stop(sl_rtmp_server_t *srv)
{
    if (!srv->stopping || srv->n_conns || srv->timers_closing)
        return;
    srv->timers_closing = 1;
    sl_listener_idle(&srv->net); /* prepare, sweep, stop deadline */
    uv_close((uv_handle_t *)&srv->merge, NULL);
    uv_close((uv_handle_t *)&srv->audio_hold, NULL);
}

static void on_conn_closed(uv_handle_t *h)
{
    sl_rtmp_conn_t *c = h->data;
    c->main_closed = 1;
    if (c->ws)
        return; /* the worker's handle is closing too: ws_gone_main frees */
    conn_free(c);
}

/* Frees a connection whose handles are all closed. */
static void conn_free(sl_rtmp_conn_t *c)
{
    sl_rtmp_server_t *srv = c->srv;
    if (c->w) { /* libuv cancels pending writes before the close callback; this is a guard */
        wreq_free(c->w);
        c->w = NULL;
    }
    zc_release_all(c); /* the socket is closed: the kernel reads them no more */
    if (c->q_ready)
        sl_subq_cleanup(&c->q);
    sl_rtmp_chunk_reader_cleanup(&c->rd);
    sl_wbuf_cleanup(&c->ctrl);
    sl_tls_free(c->tls);
    sl_free(c->hs);
    sl_free(c->tc_url);
    sl_amf_free(c->connect_args);
    sl_amf_free(c->fourcc_list);
    sl_free(c->pending_path);
    sl_free(c);
    srv->n_conns--;
    maybe_finish_stop(srv);
}

void sl__rtmp_close(sl_rtmp_conn_t *c, const char *reason)
{
    if (c->state == SL_RTMP_CONN_CLOSING)
        return;
    if (c->uring_busy && c->srv->uring)
        uring_submit(c->srv); /* its batch goes (and is retired) before its frames do */
    if (c->state == SL_RTMP_CONN_CLOSING)
        return; /* closed by its own batch's result */
    ws_sync_counters(c);
    if (reason)
        SL_LOGI(&c->sess.log, "closing: %s (in %llu B, out %llu B)", reason,
                (unsigned long long)c->sess.bytes_in, (unsigned long long)c->sess.bytes_out);
    else
        SL_LOGD(&c->sess.log, "closed (in %llu B, out %llu B)", (unsigned long long)c->sess.bytes_in,
                (unsigned long long)c->sess.bytes_out);
    if (c->admit) {
        sl_admit_cancel(c->admit);
        c->admit = NULL;
    }
    sl__rtmp_stop_publish(c, 1);
    sl__rtmp_stop_play(c);
    sl__rtmp_so_closed(c);
    sl__rtmp_rpc_close(c); /* invokes waiting on this client: answered "closed" */
    if (c->state == SL_RTMP_CONN_CONNECTED)
        sl_events_emit_session(c->core, &c->sess, SL_EV_DISCONNECT, reason ? reason : "closed");
    c->state = SL_RTMP_CONN_CLOSING;
    if (c->on_flush_list) {
        sl_list_remove(&c->flush_link);
        c->on_flush_list = 0;
    }
    sl_list_remove(&c->link);
    /* Half-received messages go back to the server-wide budget now, not in
     * the close callback: another peer may need them in this same read. */
    sl_rtmp_chunk_reader_cleanup(&c->rd);
    sl_session_unregister(c->srv->core, &c->sess);
    if (c->tls)
        tls_goodbye(c); /* an orderly end for the client's TLS library */
    if (c->worker) {
        sl_worker_players_add(c->worker, -1);
        c->worker = NULL;
    }
    if (c->ws)
        post_worker(c->ws->worker, ws_detach, c->ws, 0); /* the socket closes with both handles */
    zc_close(c);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

void sl__rtmp_close_after_flush(sl_rtmp_conn_t *c, const char *reason)
{
    if (c->state == SL_RTMP_CONN_CLOSING)
        return;
    if (reason)
        SL_LOGI(&c->sess.log, "closing after flush: %s", reason);
    c->close_after_flush = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (!sl__rtmp_ws_post_op(c, SL_RTMP_WS_CLOSE_AFTER_FLUSH, 1))
        sl__rtmp_schedule_flush(c);
}

static void conn_kick(sl_session_t *s, const char *reason)
{
    if (s->close_quietly) {
        /* A budget's close: the core wrote the (rate-limited) line. */
        SL_LOGD(&s->log, "kicked: %s", reason ? reason : "-");
        reason = NULL;
    } else if (!reason) {
        reason = "kicked";
    }
    sl__rtmp_close((sl_rtmp_conn_t *)s, reason);
}

static void conn_shutdown(sl_session_t *s)
{
    sl_rtmp_conn_t *c = (sl_rtmp_conn_t *)s;
    if (c->play_sid) {
        sl__rtmp_send_status(c, c->play_sid, "status", "NetStream.Play.UnpublishNotify",
                             "The server is shutting down.", c->sess.stream);
        sl__rtmp_send_uc(c, SL_RTMP_UC_STREAM_EOF, c->play_sid);
    }
    if (c->pub) {
        sl__rtmp_send_status(c, c->pub_sid, "status", "NetStream.Unpublish.Success",
                             "The server is shutting down.", c->sess.stream);
    }
    sl__rtmp_stop_publish(c, 1);
    sl__rtmp_stop_play(c);
    sl__rtmp_close_after_flush(c, "server shutdown");
}

static uint64_t conn_pending(const sl_session_t *s)
{
    const sl_rtmp_conn_t *c = (const sl_rtmp_conn_t *)s;
    if (c->ws)
        return atomic_load_explicit(&c->ws->pending, memory_order_relaxed);
    return (c->q_ready ? c->q.count : 0) + (c->w ? c->w->n : 0);
}

static const sl_session_ops_t conn_session_ops = {
    .kick = conn_kick,
    .shutdown = conn_shutdown,
    .pending = conn_pending,
    .invoke = sl__rtmp_invoke,
};

/* ------------------------------------------------------------------ */
/* reading                                                             */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sl_rtmp_conn_t *c = h->data;
    buf->base = (char *)c->srv->rbuf;
    buf->len = READ_BUF_SIZE;
}

/* Splits an aggregate message (FLV tags back to back) into its messages. */
static int on_aggregate(sl_rtmp_conn_t *c, sl_rtmp_msg_t *m)
{
    const uint8_t *p = m->body->data;
    size_t n = m->body->len, off = 0;
    int64_t shift = 0;
    int first = 1;
    while (n - off >= 11) {
        uint8_t type = p[off];
        uint32_t size = sl_rd_be24(p + off + 1);
        uint32_t ts = sl_rd_be24(p + off + 4) | (uint32_t)p[off + 7] << 24;
        if (size > n - off - 11)
            return SL_EPROTO;
        if (first) {
            shift = (int64_t)m->ts - ts;
            first = 0;
        }
        const uint8_t *body = p + off + 11;
        uint32_t mts = (uint32_t)((int64_t)ts + shift);
        if (type == SL_RTMP_AUDIO || type == SL_RTMP_VIDEO) {
            sl_buf_t *b = sl_buf_from(body, size);
            if (!b)
                return SL_ENOMEM;
            int rc = sl__rtmp_on_media(c, type, mts, b);
            if (rc)
                return rc;
        } else if (type == SL_RTMP_DATA_AMF0) {
            sl_rtmp_msg_t sub = {.type = type, .stream_id = m->stream_id, .ts = mts};
            sub.body = sl_buf_from(body, size);
            if (!sub.body)
                return SL_ENOMEM;
            int rc = sl__rtmp_on_data(c, &sub);
            sl_buf_unref(sub.body);
            if (rc)
                return rc;
        }
        off += 11 + size + 4; /* + previous tag size */
        if (off > n)
            break;
    }
    return 0;
}

static int dispatch(sl_rtmp_conn_t *c, sl_rtmp_msg_t *m)
{
    const uint8_t *b = m->body->data;
    uint32_t len = m->body->len;
    int rc = 0;
    c->sess.msgs_in++;
    switch (m->type) {
    case SL_RTMP_SET_CHUNK_SIZE:
        if (len < 4)
            return SL_EPROTO;
        rc = sl_rtmp_chunk_reader_set_chunk_size(&c->rd, sl_rd_be32(b));
        if (rc == SL_ETOOBIG)
            SL_LOGI(&c->sess.log, "peer chunk size %u above the limit %u", sl_rd_be32(b),
                    c->rd.max_chunk_size);
        break;
    case SL_RTMP_ABORT:
        if (len >= 4)
            sl_rtmp_chunk_reader_abort(&c->rd, sl_rd_be32(b));
        break;
    case SL_RTMP_ACK:
        break;
    case SL_RTMP_USER_CONTROL:
        if (len >= 6 && sl_rd_be16(b) == SL_RTMP_UC_PING_REQUEST)
            rc = sl__rtmp_send_uc(c, SL_RTMP_UC_PING_RESPONSE, sl_rd_be32(b + 2));
        break;
    case SL_RTMP_WINDOW_ACK_SIZE:
        if (len >= 4)
            c->peer_window = sl_rd_be32(b);
        break;
    case SL_RTMP_SET_PEER_BW:
        break;
    case SL_RTMP_AUDIO:
    case SL_RTMP_VIDEO:
        rc = sl__rtmp_on_media(c, m->type, m->ts, m->body);
        m->body = NULL; /* taken */
        break;
    case SL_RTMP_DATA_AMF0:
    case SL_RTMP_DATA_AMF3:
        rc = sl__rtmp_on_data(c, m);
        break;
    case SL_RTMP_COMMAND_AMF0:
    case SL_RTMP_COMMAND_AMF3:
        rc = sl__rtmp_on_command(c, m);
        break;
    case SL_RTMP_AGGREGATE:
        rc = on_aggregate(c, m);
        break;
    case SL_RTMP_SO_AMF0:
    case SL_RTMP_SO_AMF3:
        rc = sl__rtmp_on_so(c, b, len, m->type == SL_RTMP_SO_AMF3);
        break;
    default:
        SL_LOGD(&c->sess.log, "ignoring message type %u (%u bytes)", m->type, len);
        break;
    }
    sl_buf_unref(m->body);
    m->body = NULL;
    return rc;
}

/*
 * The server-wide partial budget ran out: a resource problem, not only one
 * peer's. Warned about at most once per PARTIAL_WARN_INTERVAL_MS, with the
 * number of closes in between.
 */
static void warn_pool_full(sl_rtmp_server_t *srv, const sl_byte_pool_t *pool)
{
    uint64_t now = uv_now(srv->core->loop);
    if (srv->partial_warn_ms && now - srv->partial_warn_ms < PARTIAL_WARN_INTERVAL_MS) {
        srv->partial_unlogged++;
        return;
    }
    SL_LOGW(NULL, "rtmp: half-received messages hold %lld of %lld bytes "
            "(rtmp.max_partial_bytes_total); closing the connections that hold or want the most "
            "(%llu more since the last warning)", (long long)pool->used, (long long)pool->limit,
            (unsigned long long)srv->partial_unlogged);
    srv->partial_warn_ms = now;
    srv->partial_unlogged = 0;
}

/*
 * Closes a connection whose chunk reader went over a limit (c->rd.over),
 * with one line that says which and the numbers; counts the budget ones
 * in "rtmp_partial". The server-wide budget running out is a resource
 * problem, not only this peer's: it is also warned about, rate-limited.
 */
static void over_limit(sl_rtmp_conn_t *c)
{
    sl_rtmp_chunk_reader_t *r = &c->rd;
    sl_rtmp_server_t *srv = c->srv;
    sl_byte_pool_t *pool = &c->core->rtmp_partial;
    char why[256];
    switch (r->over) {
    case SL_RTMP_OVER_MESSAGE:
        snprintf(why, sizeof why, "message larger than rtmp.max_message_size (%u bytes)",
                 r->max_message_size);
        break;
    case SL_RTMP_OVER_CSIDS:
        snprintf(why, sizeof why, "more than %d chunk streams", SL_RTMP_MAX_CSIDS);
        break;
    case SL_RTMP_OVER_PARTIAL:
        snprintf(why, sizeof why, "more than %u messages half received at once "
                 "(rtmp.max_partial_messages)", r->max_partial);
        break;
    case SL_RTMP_OVER_CONN:
        snprintf(why, sizeof why, "half-received messages would hold %lld bytes, over the "
                 "connection's budget of %lld (%s)", (long long)r->over_want, (long long)r->max_held,
                 c->state == SL_RTMP_CONN_CONNECTED ? "rtmp.max_partial_bytes"
                                                    : "rtmp.max_partial_bytes_before_connect");
        break;
    case SL_RTMP_OVER_SERVER:
        snprintf(why, sizeof why, "server-wide budget of half-received messages exhausted "
                 "(%lld of %lld bytes held; this connection %lld, wanted %lld)",
                 (long long)pool->used, (long long)pool->limit, (long long)r->held,
                 (long long)r->over_want);
        break;
    default:
        snprintf(why, sizeof why, "chunk stream limit exceeded");
        break;
    }
    if (r->over == SL_RTMP_OVER_PARTIAL || r->over == SL_RTMP_OVER_CONN ||
        r->over == SL_RTMP_OVER_SERVER)
        sl_core_budget_exceeded(c->core, SL_BUDGET_RTMP_PARTIAL, NULL);
    if (r->over == SL_RTMP_OVER_SERVER)
        warn_pool_full(srv, pool);
    sl__rtmp_close(c, why);
}

/*
 * The server-wide pool refused c `want` more bytes. The peer that hoards
 * goes, not the one that asks: when another connection holds more than c
 * would hold with those bytes, that one is closed (its bytes go back at
 * once, see sl__rtmp_close) and the take is retried; otherwise c is
 * refused (over_limit). So a publisher whose next frame arrives while
 * attackers fill the pool keeps publishing.
 */
static int on_pool_full(void *ud, int64_t want)
{
    sl_rtmp_conn_t *c = ud;
    sl_rtmp_server_t *srv = c->srv;
    sl_rtmp_conn_t *big = NULL;
    sl_list_t *it;
    for (it = srv->conns.next; it != &srv->conns; it = it->next) {
        sl_rtmp_conn_t *x = sl_container_of(it, sl_rtmp_conn_t, link);
        if (x != c && x->state != SL_RTMP_CONN_CLOSING && (!big || x->rd.held > big->rd.held))
            big = x;
    }
    if (!big || big->rd.held <= c->rd.held + want)
        return 0;
    sl_byte_pool_t *pool = &c->core->rtmp_partial;
    char why[256];
    snprintf(why, sizeof why, "server-wide budget of half-received messages exhausted "
             "(%lld of %lld bytes held): this connection holds the most (%lld)",
             (long long)pool->used, (long long)pool->limit, (long long)big->rd.held);
    sl_core_budget_exceeded(c->core, SL_BUDGET_RTMP_PARTIAL, NULL);
    warn_pool_full(srv, pool);
    sl__rtmp_close(big, why);
    return 1;
}

void sl__rtmp_conn_admitted(sl_rtmp_conn_t *c)
{
    const sl_config_t *cfg = c->core->cfg;
    /* A connection may always hold one message of the largest size. */
    int64_t held = sl_rtmp_cfg(cfg)->max_partial_bytes > sl_rtmp_cfg(cfg)->max_message_size
                 ? sl_rtmp_cfg(cfg)->max_partial_bytes : sl_rtmp_cfg(cfg)->max_message_size;
    sl_rtmp_chunk_reader_set_budget(&c->rd, held, (uint32_t)sl_rtmp_cfg(cfg)->max_partial_messages,
                                    &c->core->rtmp_partial);
    c->ctrl.max = CTRL_MAX_BYTES;
}

/*
 * RTMP bytes in (borrowed): the handshake, then the chunk parser and
 * dispatch, then an acknowledgement when the peer's window is full.
 * rtmp_in is the running count of RTMP bytes received, this read
 * included: bytes on the wire for plain RTMP, plaintext for RTMPS (the
 * peer counts what it sent before encryption).
 */
static void conn_on_bytes(sl_rtmp_conn_t *c, const uint8_t *p, size_t n, uint64_t rtmp_in)
{
    size_t off = 0;
    if (c->state == SL_RTMP_CONN_HANDSHAKE) {
        size_t used = 0;
        int rc = sl_rtmp_hs_feed(c->hs, p, n, &used, &c->ctrl);
        if (rc < 0) {
            sl__rtmp_close(c, "bad handshake");
            return;
        }
        sl__rtmp_schedule_flush(c);
        off = used;
        if (rc == 0)
            return;
        SL_LOGD(&c->sess.log, "handshake done (%s)", c->hs->digest ? "digest" : "plain");
        sl_free(c->hs);
        c->hs = NULL;
        c->state = SL_RTMP_CONN_READY;
    }
    while (off < n && c->state != SL_RTMP_CONN_CLOSING && !c->close_after_flush) {
        size_t used = 0;
        sl_rtmp_msg_t m;
        int rc = sl_rtmp_chunk_read(&c->rd, p + off, n - off, &used, &m);
        off += used;
        if (rc < 0) {
            if (rc == SL_ENOMEM)
                SL_LOGE(&c->sess.log, "out of memory reading a message");
            if (rc == SL_ETOOBIG) {
                over_limit(c);
                return;
            }
            sl__rtmp_close(c, rc == SL_ENOMEM ? "out of memory" : "malformed chunk stream");
            return;
        }
        if (rc == 0)
            break;
        rc = dispatch(c, &m);
        sl_buf_unref(m.body);
        if (rc < 0) {
            char why[200];
            if (rc == SL_ETOOBIG && c->ctrl.len + 256 > c->ctrl.max)
                snprintf(why, sizeof why, "%zu bytes of replies queued for a peer that does not "
                         "read, limit %zu (%s)", c->ctrl.len, c->ctrl.max,
                         c->state == SL_RTMP_CONN_CONNECTED ? "per connection"
                                                            : "rtmp.max_control_bytes_before_connect");
            else
                snprintf(why, sizeof why, "%s", sl_strerror(rc));
            sl__rtmp_close(c, why);
            return;
        }
    }
    if (c->state != SL_RTMP_CONN_CLOSING && c->peer_window &&
        rtmp_in - c->ack_bytes >= c->peer_window) {
        c->ack_bytes = rtmp_in;
        sl__rtmp_send_u32(c, SL_RTMP_ACK, (uint32_t)rtmp_in);
    }
}

/*
 * RTMPS: ciphertext read (borrowed) goes into the filter; every record it
 * completes is decrypted into the server's read buffer (free again: the
 * filter copied the ciphertext) and parsed at once. Handshake messages and
 * alerts the filter produces wait in it for the flush.
 */
static void tls_on_data(sl_rtmp_conn_t *c, const uint8_t *p, size_t n)
{
    sl_rtmp_server_t *srv = c->srv;
    if (sl_tls_feed(c->tls, p, n)) {
        SL_LOGE(&c->sess.log, "out of memory reading TLS records");
        sl__rtmp_close(c, "out of memory");
        return;
    }
    while (c->state != SL_RTMP_CONN_CLOSING && !c->close_after_flush) {
        size_t got = 0;
        int rc = sl_tls_read(c->tls, srv->rbuf, sizeof srv->rbuf, &got);
        if (!c->tls_established && sl_tls_handshake_done(c->tls)) {
            c->tls_established = 1;
            SL_LOGD(&c->sess.log, "tls: %s %s", sl_tls_version(c->tls), sl_tls_cipher(c->tls));
        }
        if (rc == SL_ECLOSED) {
            sl__rtmp_close(c, "peer closed the connection (close_notify)");
            return;
        }
        if (rc) {
            /* Peer misbehaviour: plain RTMP or garbage on the TLS port, no
             * common cipher, a corrupt record. The close hands the alert to
             * the socket. */
            char why[200];
            snprintf(why, sizeof why, "tls %s: %s",
                     c->tls_established ? "error" : "handshake failed",
                     rc == SL_ENOMEM ? "out of memory" : sl_tls_error(c->tls));
            sl__rtmp_close(c, why);
            return;
        }
        if (sl_tls_out_pending(c->tls))
            sl__rtmp_schedule_flush(c);
        if (!got)
            return;
        c->tls_plain_in += got;
        conn_on_bytes(c, srv->rbuf, got, c->tls_plain_in);
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sl_rtmp_conn_t *c = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        sl__rtmp_close(c, nread == UV_EOF ? "peer closed the connection" : uv_strerror((int)nread));
        return;
    }
    c->sess.bytes_in += (uint64_t)nread;
    c->last_read_ms = uv_now(c->srv->core->loop);
    if (c->tls)
        tls_on_data(c, (const uint8_t *)buf->base, (size_t)nread);
    else
        conn_on_bytes(c, (const uint8_t *)buf->base, (size_t)nread, c->sess.bytes_in);
}

/* ------------------------------------------------------------------ */
/* accepting, timers, start/stop                                       */

static void on_connection(void *ud, int is_tls)
{
    sl_rtmp_server_t *srv = ud;
    const sl_config_t *cfg = srv->core->cfg;
    sl_rtmp_conn_t *c = sl_calloc(1, sizeof(*c));
    sl_rtmp_hs_t *hs = sl_malloc(sizeof(*hs));
    if (!c || !hs) {
        sl_free(c);
        sl_free(hs);
        SL_LOGE(NULL, "%s: out of memory accepting a connection", is_tls ? "rtmps" : "rtmp");
        sl_listener_shed(&srv->net, is_tls); /* off the listener, or it stops accepting */
        return;
    }
    uv_tcp_init(srv->core->loop, &c->tcp);
    c->tcp.data = c;
    c->srv = srv;
    c->core = srv->core;
    c->hs = hs;
    sl_rtmp_hs_server_init(hs);
    sl_list_init(&c->link);
    sl_list_init(&c->flush_link);
    sl_list_init(&c->zc_pending);
    sl_list_init(&c->zc_link);
    sl_list_init(&c->sink.link);
    sl_wbuf_init(&c->ctrl, (size_t)sl_rtmp_cfg(cfg)->max_control_bytes_before_connect);
    sl_rtmp_chunk_reader_init(&c->rd, (uint32_t)sl_rtmp_cfg(cfg)->max_chunk_size,
                              (uint32_t)sl_rtmp_cfg(cfg)->max_message_size);
    sl_rtmp_chunk_reader_set_budget(&c->rd, sl_rtmp_cfg(cfg)->max_partial_bytes_before_connect,
                                    (uint32_t)sl_rtmp_cfg(cfg)->max_partial_messages,
                                    &srv->core->rtmp_partial);
    c->rd.pool_full = on_pool_full;
    c->rd.pool_full_ud = c;
    c->out_chunk_size = 128;
    c->recv_audio = c->recv_video = 1;
    srv->n_conns++;
    sl_list_push_back(&srv->conns, &c->link);
    sl_session_register(srv->core, &c->sess, &conn_session_ops, is_tls ? "rtmps" : "rtmp");
    if (sl_listener_accept(&srv->net, is_tls, &c->tcp) != 0) {
        sl__rtmp_close(c, "accept failed");
        return;
    }
    sl_session_set_peer(&c->sess, &c->tcp);
    if (srv->stopping || srv->core->shutting_down) {
        sl__rtmp_close(c, "server is shutting down");
        return;
    }
    const char *why = NULL;
    if (sl_session_accept(srv->core, &c->sess, &why) != 0) {
        /* RTMP has no way to say why before a handshake: just close. The
         * core logged it, at most once per address or per interval. */
        SL_LOGD(&c->sess.log, "refused: %s", why);
        sl__rtmp_close(c, NULL);
        return;
    }
    if (is_tls && sl_tls_new(sl_listener_tls(&srv->net), &c->tls) != 0) {
        SL_LOGE(&c->sess.log, "out of memory starting TLS");
        sl__rtmp_close(c, "out of memory (tls)");
        return;
    }
    if (sl_rtmp_cfg(cfg)->tcp_nodelay)
        uv_tcp_nodelay(&c->tcp, 1);
    if (!is_tls && (srv->zc_min || srv->notsent_lowat)) {
        uv_os_fd_t fd;
        int one = 1, lowat = (int)srv->notsent_lowat;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
            if (srv->zc_min && setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one) == 0)
                c->zc_on = 1;
            if (lowat)
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
        }
    }
    c->last_read_ms = c->accept_ms = c->last_ping_ms = uv_now(srv->core->loop);
    SL_LOGD(&c->sess.log, "accepted from %s:%d%s", c->sess.remote_addr, c->sess.remote_port,
            is_tls ? " (tls)" : "");
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc)
        sl__rtmp_close(c, uv_strerror(rc));
}

static void on_sweep(void *ud, uint64_t now)
{
    sl_rtmp_server_t *srv = ud;
    const sl_config_t *cfg = srv->core->cfg;
    /* Looked up once per sweep, not per connection (a section lookup is a scan). */
    const sl_rtmp_config_t *rcfg = sl_rtmp_cfg(cfg);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &srv->conns) {
        sl_rtmp_conn_t *c = sl_container_of(it, sl_rtmp_conn_t, link);
        uint64_t quiet = now - c->last_read_ms;
        if (c->state == SL_RTMP_CONN_HANDSHAKE) {
            if ((int64_t)(now - c->accept_ms) > rcfg->handshake_timeout_ms)
                sl__rtmp_close(c, c->tls && !c->tls_established ? "tls handshake timeout"
                                                                 : "handshake timeout");
            continue;
        }
        /* Handshake done, no connect yet: a slot held without a word of
         * RTMP. The whole exchange up to connect has one deadline, however
         * slowly its bytes trickle (the idle timeout only sees gaps). */
        if (c->state == SL_RTMP_CONN_READY &&
            (int64_t)(now - c->accept_ms) > rcfg->connect_timeout_ms) {
            sl_core_budget_exceeded(srv->core, SL_BUDGET_RTMP_CONNECT_TIMEOUT, NULL);
            sl__rtmp_close(c, "no connect within rtmp.connect_timeout");
            continue;
        }
        if (rcfg->idle_timeout_ms && (int64_t)quiet > rcfg->idle_timeout_ms) {
            sl__rtmp_close(c, "idle timeout");
            continue;
        }
        ws_sync_counters(c); /* a worker's counters, as a relaxed snapshot */
        if (c->q_ready)
            sl_subq_trim(&c->q); /* the ring of a join burst goes back once drained */
        /* A player that stops reading is invisible to the queue policy as
         * long as the kernel's socket buffers absorb the stream (megabytes
         * on loopback). What the peer has acknowledged is not: bytes handed
         * to libuv minus those still in libuv's queue and the socket's send
         * queue. No progress with data outstanding for
         * media.slow_disconnect means the player is gone in all but name. */
        if (c->play_sid && cfg->media_slow_disconnect_ms && !c->ws) { /* a worker's: on_wk_sweep */
            uv_os_fd_t fd;
            int outq = 0;
            if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, SIOCOUTQ, &outq) == 0) {
                uint64_t pending = c->tcp.write_queue_size + (uint64_t)(outq > 0 ? outq : 0);
                uint64_t delivered = c->sess.bytes_out > pending ? c->sess.bytes_out - pending : 0;
                if (pending == 0 || delivered != c->delivered_bytes) {
                    c->delivered_bytes = delivered;
                    c->stall_since_ms = 0;
                } else if (!c->stall_since_ms) {
                    c->stall_since_ms = now;
                } else if ((int64_t)(now - c->stall_since_ms) > cfg->media_slow_disconnect_ms) {
                    char why[160];
                    snprintf(why, sizeof why, "player stopped reading: nothing acknowledged for %lld ms "
                             "with %llu bytes outstanding", (long long)(now - c->stall_since_ms),
                             (unsigned long long)pending);
                    sl__rtmp_close(c, why);
                    continue;
                }
            }
        }
        /* A quiet peer is pinged; its answer counts as traffic, so a
         * player that only receives is not taken for idle. */
        if (rcfg->ping_interval_ms && c->state == SL_RTMP_CONN_CONNECTED &&
            (int64_t)quiet >= rcfg->ping_interval_ms &&
            (int64_t)(now - c->last_ping_ms) >= rcfg->ping_interval_ms) {
            c->last_ping_ms = now;
            sl__rtmp_send_uc(c, SL_RTMP_UC_PING_REQUEST, (uint32_t)now);
        }
    }
}

static void on_stop_deadline(void *ud)
{
    sl_rtmp_server_t *srv = ud;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &srv->conns) {
        sl__rtmp_close(sl_container_of(it, sl_rtmp_conn_t, link), "shutdown deadline");
    }
}

static int nonempty(const char *s) { return s && s[0]; }

void sl_rtmp_server_tls_files(const sl_config_t *cfg, const char **cert, const char **key)
{
    int own = nonempty(sl_rtmp_cfg(cfg)->tls_cert) || nonempty(sl_rtmp_cfg(cfg)->tls_key);
    const char *c = own ? sl_rtmp_cfg(cfg)->tls_cert : sl_config_str(cfg, "http.tls_cert");
    const char *k = own ? sl_rtmp_cfg(cfg)->tls_key : sl_config_str(cfg, "http.tls_key");
    *cert = c ? c : "";
    *key = k ? k : "";
}

int sl_rtmp_server_tls_enabled(const sl_config_t *cfg)
{
    const char *cert, *key;
    sl_rtmp_server_tls_files(cfg, &cert, &key);
    return sl_rtmp_cfg(cfg)->tls_port != 0 && (cert[0] || key[0]);
}

const char *sl_rtmp_server_tls_bind(const sl_config_t *cfg)
{
    return nonempty(sl_rtmp_cfg(cfg)->tls_bind) ? sl_rtmp_cfg(cfg)->tls_bind : sl_rtmp_cfg(cfg)->bind;
}

/* The RTMPS context, or 0 with *out NULL when RTMPS is off. No ALPN: RTMP has no registered id. */
static int tls_ctx_new(const sl_config_t *cfg, sl_tls_ctx_t **out, char *err, size_t err_cap)
{
    *out = NULL;
    if (err_cap)
        err[0] = '\0';
    if (!sl_rtmp_server_tls_enabled(cfg))
        return 0;
    const char *cert, *key;
    sl_rtmp_server_tls_files(cfg, &cert, &key);
    int own = nonempty(sl_rtmp_cfg(cfg)->tls_cert) || nonempty(sl_rtmp_cfg(cfg)->tls_key);
    if (!cert[0] || !key[0]) {
        snprintf(err, err_cap, "%s and %s must be set together (the %s is missing)",
                 own ? "rtmp.tls_cert" : "http.tls_cert", own ? "rtmp.tls_key" : "http.tls_key",
                 cert[0] ? "key" : "certificate");
        return SL_EINVAL;
    }
    int rc = sl_tls_ctx_new_server(cert, key, NULL, out, err, err_cap);
    if (rc == 0)
        sl_tls_ctx_no_tickets(*out); /* RTMP clients do not resume; librtmp+GnuTLS breaks on them */
    return rc;
}

int sl_rtmp_server_tls_check(const sl_config_t *cfg, char *err, size_t err_cap)
{
    sl_tls_ctx_t *ctx = NULL;
    int rc = tls_ctx_new(cfg, &ctx, err, err_cap);
    sl_tls_ctx_free(ctx);
    return rc;
}

static const sl_listener_ops_t listener_ops = {
    .on_connection = on_connection,
    .on_sweep = on_sweep,
    .on_prepare = on_prepare,
    .on_deadline = on_stop_deadline,
};

int sl_rtmp_server_start(sl_core_t *core, sl_rtmp_server_t **out)
{
    *out = NULL;
    const sl_config_t *cfg = core->cfg;
    sl_rtmp_server_t *srv = sl_calloc(1, sizeof(*srv));
    if (!srv)
        return SL_ENOMEM;
    srv->core = core;
    core->rtmp_partial.limit = sl_rtmp_cfg(cfg)->max_partial_bytes_total;
    sl_list_init(&srv->conns);
    sl_list_init(&srv->flush_list);
    sl_list_init(&srv->media_list);
    sl_list_init(&srv->audio_list);
    sl_list_init(&srv->zc_list);
    sl_list_init(&srv->relays);
    const sl_rtmp_config_t *rc_cfg = sl_rtmp_cfg(cfg);
    srv->cork = rc_cfg->write_cork;
    srv->zc_min = rc_cfg->zerocopy_min_bytes;
    srv->notsent_lowat = rc_cfg->notsent_lowat;
    if (rc_cfg->write_mode == SL_RTMP_WRITE_URING) {
        int urc = sl_uring_send_new(URING_SLOTS, &srv->uring);
        srv->slots = urc == 0 ? sl_calloc(URING_SLOTS, sizeof(*srv->slots)) : NULL;
        if (!srv->slots) {
            sl_uring_send_free(srv->uring);
            srv->uring = NULL;
            SL_LOGW(NULL, "rtmp: io_uring unavailable (%s); rtmp.write_mode falls back to writev",
                    urc ? sl_strerror(urc) : "out of memory");
        } else {
            for (uint32_t i = 0; i < URING_SLOTS; i++) {
                srv->slots[i].slot = i;
                srv->free_slots[srv->n_free++] = URING_SLOTS - 1 - i;
            }
            SL_LOGI(NULL, "rtmp: writes batched through io_uring (%d players per submission)",
                    URING_SLOTS);
        }
    }

    /* The certificate first: a bad one must fail the start before anything listens. */
    char err[512];
    sl_tls_ctx_t *tls_ctx = NULL;
    int rc = tls_ctx_new(cfg, &tls_ctx, err, sizeof err);
    if (rc) {
        SL_LOGE(NULL, "rtmps: %s", err[0] ? err : sl_strerror(rc));
        goto fail;
    }
    const sl_listener_config_t lc = {
        .name = "rtmp", .tls_name = "rtmps",
        .bind = sl_rtmp_cfg(cfg)->bind, .port = sl_rtmp_cfg(cfg)->port,
        .tls_bind = sl_rtmp_server_tls_bind(cfg), .tls_port = sl_rtmp_cfg(cfg)->tls_port,
        .tls_ctx = tls_ctx, /* taken */
        .sweep_ms = SWEEP_INTERVAL_MS,
        .stop_timeout_ms = (uint64_t)cfg->server_shutdown_timeout_ms,
    };
    rc = sl_listener_start(&srv->net, core->loop, &lc, &listener_ops, srv);
    if (rc)
        goto fail; /* logged, and nothing left open */
    uv_timer_init(core->loop, &srv->merge);
    srv->merge.data = srv;
    if (cfg->media_write_merge_ms > 0)
        uv_timer_start(&srv->merge, on_merge_timer, (uint64_t)cfg->media_write_merge_ms,
                       (uint64_t)cfg->media_write_merge_ms);
    uv_timer_init(core->loop, &srv->audio_hold);
    srv->audio_hold.data = srv;
    if (cfg->media_write_merge_ms == 0 && cfg->media_audio_hold_ms > 0)
        uv_timer_start(&srv->audio_hold, on_audio_hold_timer, (uint64_t)cfg->media_audio_hold_ms,
                       (uint64_t)cfg->media_audio_hold_ms);
    *out = srv;
    return 0;
fail:
    sl_uring_send_free(srv->uring);
    sl_free(srv->slots);
    sl_free(srv);
    return rc;
}

void sl_rtmp_server_reload(sl_rtmp_server_t *srv, const sl_config_t *cfg)
{
    if (!srv || srv->stopping)
        return;
    uv_timer_stop(&srv->merge);
    uv_timer_stop(&srv->audio_hold);
    flush_list(srv, &srv->media_list);
    flush_list(srv, &srv->audio_list);
    flush_list(srv, &srv->flush_list);
    if (cfg->media_write_merge_ms > 0)
        uv_timer_start(&srv->merge, on_merge_timer, (uint64_t)cfg->media_write_merge_ms,
                       (uint64_t)cfg->media_write_merge_ms);
    if (cfg->media_write_merge_ms == 0 && cfg->media_audio_hold_ms > 0)
        uv_timer_start(&srv->audio_hold, on_audio_hold_timer, (uint64_t)cfg->media_audio_hold_ms,
                       (uint64_t)cfg->media_audio_hold_ms);
    /* Only the main thread posts to workers: one message each, in order
     * with the hand-overs that follow (they carry the new values too). */
    sl_workers_t *ws = srv->core->workers;
    for (int i = 1; ws && i < sl_workers_count(ws); i++) {
        sl_rtmp_wcfg_t *wc = sl_malloc(sizeof(*wc));
        if (!wc) {
            SL_LOGE(NULL, "rtmp: config reload: out of memory; worker %d keeps its write timers", i);
            continue;
        }
        wc->merge_ms = cfg->media_write_merge_ms;
        wc->audio_hold_ms = cfg->media_audio_hold_ms;
        wc->slow_ms = cfg->media_slow_disconnect_ms;
        post_worker(sl_workers_get(ws, i), wk_config, NULL, (uint64_t)(uintptr_t)wc);
    }
}

int sl_rtmp_server_tls_port(const sl_rtmp_server_t *srv)
{
    return srv ? sl_listener_port(&srv->net, 1) : -1;
}

void sl_rtmp_server_stop(sl_rtmp_server_t *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    sl_listener_stop(&srv->net); /* closes the listeners, arms the stop deadline */
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &srv->conns) {
        sl_rtmp_conn_t *c = sl_container_of(it, sl_rtmp_conn_t, link);
        if (c->state == SL_RTMP_CONN_CONNECTED)
            conn_shutdown(&c->sess);
        else
            sl__rtmp_close(c, NULL);
    }
    maybe_finish_stop(srv);
}

void sl_rtmp_server_free(sl_rtmp_server_t *srv)
{
    if (!srv)
        return;
    sl_listener_cleanup(&srv->net); /* every connection is freed by now (close callbacks ran) */
    if (srv->uring || srv->zc_sends) {
        uint64_t submits = 0, sends = 0;
        if (srv->uring)
            sl_uring_send_stats(srv->uring, &submits, &sends);
        SL_LOGI(NULL, "rtmp write path: io_uring %llu sends in %llu submissions; zerocopy %llu sends, "
                "%llu notifications, %llu reported copied", (unsigned long long)sends,
                (unsigned long long)submits, (unsigned long long)srv->zc_sends,
                (unsigned long long)srv->zc_notes, (unsigned long long)srv->zc_copied);
    }
    sl_uring_send_free(srv->uring);
    sl_free(srv->slots);
    sl_free(srv);
}
