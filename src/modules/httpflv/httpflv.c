/*
 * HTTP-FLV (see httpflv.h): the route, the players and the shared tags.
 *
 * Timestamps. RTMP rebases each player's timeline to 0 (rtmp_cmd.c)
 * because an RTMP player survives a republish, whose new timeline starts
 * again at 0, and because Flash players expected it. An HTTP-FLV response
 * ends with its publish (it is one FLV file), so within a response the
 * publisher's timestamps never jump back, and the players it serves
 * (flv.js/mpegts.js, ffmpeg, VLC, GStreamer) take the first media tag's
 * time as their origin. So the tag is written with the stream's own dts,
 * built once per frame, and every player sends the very same bytes: one
 * output piece per frame per player, no per-player header to allocate or
 * copy. The metadata and codec configuration tags a late joiner receives
 * first keep their (earlier) original times; players treat them as
 * stream headers, whose time does not matter.
 *
 * Backpressure: the HTTP layer tells how many bytes are still unwritten
 * on the connection (sl_http_stream_pending). A frame moves from the
 * player's queue to the connection only while that is under WRITE_LIMIT
 * (or the connection is idle, so one large keyframe always fits); the
 * rest waits in the queue, whose byte and time bounds and slow-consumer
 * policy (subq.h) decide drops and the cut. The queue is pumped whenever
 * a frame arrives, which for a live stream is every few tens of ms.
 */
#include "modules/httpflv/httpflv.h"

#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "app/admission.h"
#include "app/core.h"
#include "app/events.h"
#include "base/alloc.h"
#include "base/log.h"
#include "media/relay.h"
#include "media/subq.h"
#include "net/workers.h"
#include "proto/http/http.h"
#include "sluice/errors.h"
#include "modules/httpflv/httpflv_config.h"

#define PATH_MAX_LEN 512                 /* hub names, as RTMP limits them */
#define WRITE_LIMIT (1024u * 1024u)      /* unwritten bytes on the connection before frames wait */
#define FLV_TAG_MAX_BODY 0xFFFFFFu       /* 24-bit DataSize */
#define FLV_TAG_PARAM 1u                 /* enc_param of the FLV tag slot (one encoding) */

typedef struct flv_mod {
    sl_core_t *core;                     /* borrowed */
    sl_list_t players;                   /* flv_player_t, from request to close */
    int stopping;
    sl_relay_set_t relays;               /* fan-out to worker loops (server.workers > 1) */
    uv_timer_t sync;                     /* folds the workers' counters into the sessions */
    int sync_init;
} flv_mod_t;

typedef struct flv_wp flv_wp_t;

typedef struct flv_player {
    sl_session_t sess;                   /* must stay first: the core sees this */
    flv_mod_t *mod;
    sl_http_req_t *req;                  /* valid until answered (refused) or the close callback */
    sl_list_t link;                      /* in mod->players */
    char path[PATH_MAX_LEN + 1];         /* hub name */
    sl_sink_t sink;
    sl_subq_t q;
    int q_ready;
    int streaming;                       /* the response head is out: close_cb will come */
    int ending;                          /* sl_http_stream_end called (or about to be) */
    int playing;                         /* SL_EV_PLAY sent */
    int need_key;                        /* drop media until the first video keyframe */
    size_t write_limit;
    /* workers (server.workers > 1, docs/internals/threads.md) */
    sl_worker_t *worker;                 /* the loop counted for it (players gauge), or NULL */
    flv_wp_t *wp;                        /* its write side on a worker, until that says "gone" */
    sl_worker_t *wp_worker;              /* wp's loop (kept: wp is the worker's to read) */
    sl_relay_t *relay;                   /* the stream's relay to wp's worker while playing */
    int joining;                         /* the join's replay is queued, not pumped (hand-over) */
    int closed;                          /* close_cb ran: freed when wp is gone */
    uint64_t seen_bytes, seen_msgs, seen_drops; /* wp's counters already in the session */
    /* admission */
    sl_admit_t *admit;                   /* while pending: our reference */
    int in_call, finished, result, had_creds;
    char reason[256];
} flv_player_t;

static const sl_sink_ops_t flv_sink_ops;
static const sl_session_ops_t flv_session_ops;

/* ------------------------------------------------------------------ */
/* tags                                                                */

sl_buf_t *sl_httpflv_tag(sl_frame_t *f)
{
    sl_buf_t *cached = sl_frame_enc_get(f, SL_ENC_FLV_TAG, FLV_TAG_PARAM);
    if (cached)
        return sl_buf_ref(cached);
    uint32_t n = f->body->len;
    if (n > FLV_TAG_MAX_BODY)
        return NULL;
    /* Players of one stream may run on several loops: the loop that loses
     * the claim (another one is building the tag now) builds a private
     * copy for this write. */
    int claimed = sl_frame_enc_claim(f, SL_ENC_FLV_TAG, FLV_TAG_PARAM);
    sl_buf_t *b = sl_buf_new(11u + n + 4u);
    if (!b) {
        if (claimed)
            sl_frame_enc_abandon(f, SL_ENC_FLV_TAG);
        return NULL;
    }
    uint8_t *p = b->data;
    p[0] = f->kind;
    sl_wr_be24(p + 1, n);
    sl_wr_be24(p + 4, f->dts_ms & 0xFFFFFFu);
    p[7] = (uint8_t)(f->dts_ms >> 24); /* TimestampExtended */
    sl_wr_be24(p + 8, 0);              /* StreamID */
    memcpy(p + 11, f->body->data, n);
    sl_wr_be32(p + 11 + n, 11u + n);   /* PreviousTagSize */
    b->len = 11u + n + 4u;
    if (claimed)
        sl_frame_enc_publish(f, SL_ENC_FLV_TAG, sl_buf_ref(b));
    return b;
}

/* The join's rule, on either loop: media waits for the first video
 * keyframe when the stream has video; configurations and metadata pass. */
static int wants_frame(int *need_key, const sl_frame_t *f)
{
    if (*need_key && !(f->flags & (SL_FRAME_CONFIG | SL_FRAME_META)) && f->kind != SL_FLV_DATA) {
        if (f->kind != SL_FLV_VIDEO || !(f->flags & SL_FRAME_KEY))
            return 0;
        *need_key = 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* players                                                             */

static int respond_text(sl_http_req_t *req, int status, const char *text)
{
    return sl_http_respond(req, status, "text/plain; charset=utf-8", text, strlen(text), NULL);
}

static void wp_leave(sl_worker_t *w, void *obj, uint64_t u);
static void wp_end(sl_worker_t *w, void *obj, uint64_t u);
static void wp_detach(sl_worker_t *w, void *obj, uint64_t u);
static void wp_sync_counters(flv_player_t *p);

/* Leaves the stream: sink out (a relayed one leaves its relay first),
 * SL_EV_PLAY_STOP. */
static void stop_play(flv_player_t *p, const char *reason)
{
    if (p->relay) {
        /* The worker unlinks it before the relay's free, posted behind. */
        sl_relay_post(sl_relay_worker(p->relay), wp_leave, p->wp, 0);
        sl_relay_release(p->relay);
        p->relay = NULL;
    }
    sl_stream_remove_sink(&p->sink);
    if (p->playing) {
        SL_LOGI(&p->sess.log, "http-flv player stopped: %s", reason);
        sl_events_emit_session(p->mod->core, &p->sess, SL_EV_PLAY_STOP, reason);
        p->playing = 0;
        sl_session_set_role(&p->sess, SL_ROLE_NONE);
    }
}

static void player_free(flv_player_t *p)
{
    stop_play(p, "closed");
    if (p->q_ready)
        sl_subq_cleanup(&p->q);
    if (p->worker)
        sl_worker_players_add(p->worker, -1);
    sl_session_unregister(p->mod->core, &p->sess);
    sl_list_remove(&p->link);
    sl_free(p);
}

/*
 * Ends the response; the close callback frees the player later. A player
 * whose writes run on a worker is asked to write what its queue holds and
 * the last chunk there (wp_end); its answer (wp_close_main) ends the
 * response here, which closes the connection.
 */
static void end_stream(flv_player_t *p, const char *reason)
{
    if (p->ending || !p->req)
        return; /* !req: closed, a worker's side may still be closing */
    p->ending = 1;
    stop_play(p, reason);
    if (p->wp) {
        sl_relay_post(p->wp_worker, wp_end, p->wp, 0);
        return;
    }
    sl_http_stream_end(p->req);
}

/* Moves queued frames to the connection while it has room. */
static void pump(flv_player_t *p)
{
    while (p->q.count) {
        sl_frame_t *f = sl_subq_peek(&p->q);
        sl_buf_t *tag = sl_httpflv_tag(f);
        if (!tag) {
            sl_subq_pop(&p->q, 1, NULL); /* out of memory, or a body no FLV tag can hold */
            p->sess.frames_dropped++;
            continue;
        }
        size_t pending = sl_http_stream_pending(p->req);
        if (pending && pending + tag->len > p->write_limit) {
            sl_buf_unref(tag);
            return;
        }
        int rc = sl_http_stream_write(p->req, tag);
        size_t len = tag->len;
        sl_buf_unref(tag);
        if (rc == SL_ETOOBIG)
            return;
        if (rc) {
            if (rc != SL_ECLOSED)
                end_stream(p, sl_strerror(rc));
            return; /* SL_ECLOSED: the close callback is on its way */
        }
        p->sess.bytes_out += len;
        p->sess.msgs_out++;
        sl_subq_pop(&p->q, 1, NULL);
    }
}

static void sink_on_frame(sl_sink_t *sink, sl_frame_t *f)
{
    flv_player_t *p = sink->ctx;
    if (p->ending)
        return;
    if (!wants_frame(&p->need_key, f))
        return;
    int rc = sl_subq_offer(&p->q, f, 0, uv_now(p->mod->core->loop), &p->sess.frames_dropped);
    if (rc == SL_ESLOW) {
        char why[160];
        SL_LOGI(&p->sess.log, "%s", sl_subq_slow_reason(&p->q, why, sizeof why));
        end_stream(p, why);
        return;
    }
    if (rc == SL_ENOMEM) {
        end_stream(p, "out of memory");
        return;
    }
    if (rc == SL_SUBQ_FELL_BEHIND)
        SL_LOGI(&p->sess.log, "http-flv player falling behind: dropping to the next keyframe");
    if (!p->joining)
        pump(p);
}

static void sink_on_unpublish(sl_sink_t *sink)
{
    flv_player_t *p = sink->ctx;
    if (!p->wp)
        pump(p); /* what fits goes out before the end (on a worker: wp_end does) */
    end_stream(p, "stream unpublished");
}

static const sl_sink_ops_t flv_sink_ops = {
    .on_frame = sink_on_frame,
    .on_publish = NULL,
    .on_unpublish = sink_on_unpublish,
};

static void on_close(sl_http_req_t *req, void *ud)
{
    flv_player_t *p = ud;
    (void)req;
    p->req = NULL;
    stop_play(p, p->ending ? "ended" : "client closed");
    if (p->wp) {
        /* The worker closes its side and answers "gone" (wp_gone_main). */
        p->closed = 1;
        sl_relay_post(p->wp_worker, wp_detach, p->wp, 0);
        return;
    }
    player_free(p);
}

static void session_kick(sl_session_t *s, const char *reason)
{
    flv_player_t *p = (flv_player_t *)s;
    if (p->streaming && p->req)
        end_stream(p, reason ? reason : "kicked");
}

static void session_shutdown(sl_session_t *s) { session_kick(s, "server shutdown"); }

static uint64_t session_pending(const sl_session_t *s);

static const sl_session_ops_t flv_session_ops = {
    .kick = session_kick,
    .shutdown = session_shutdown,
    .pending = session_pending,
};

/* ------------------------------------------------------------------ */
/* players on a worker loop (server.workers > 1)                       */

/*
 * A player's write side on a worker: its queue, the join rule, the
 * framing and the writes, owned by the worker from the attach to the
 * detach. The frames come through the stream's relay to that worker
 * (media/relay.h). The main loop keeps the HTTP connection (it reads it
 * to see the client leave), the session, the events and every decision
 * to end; it reads only `p` and the atomic counters.
 *
 * Writes: before the loop sleeps (a uv_prepare per worker), each write
 * side with queued frames gathers up to WP_BATCH frames (chunk line, the
 * frame's shared FLV tag, CRLF) into one uv_try_write, and what the
 * socket does not take into one uv_write; frames wait in the queue while a
 * write is in flight. So the bytes behind the socket are at most one batch
 * and the queue's bounds and slow-player policy (subq.h) decide drops and
 * the cut, as on the main loop (there, up to WRITE_LIMIT may wait in the
 * HTTP output list first). A stalled socket keeps its write in flight, its
 * queue hits a bound, drops to the next keyframe, and the player is cut
 * after media.slow_disconnect, by this loop.
 */
#define WP_BATCH 20                      /* frames per write: 3 buffers each, + the unsent head */

typedef struct flv_wreq {
    uv_write_t req;
    flv_wp_t *wp;
    uint32_t n;                          /* references held in bufs */
    uint32_t frames;                     /* frames in the batch */
    sl_buf_t *bufs[WP_BATCH + 1];        /* tags (and the unsent head), owned */
    char lines[WP_BATCH][12];            /* chunk-size lines */
} flv_wreq_t;

struct flv_wp {
    uv_tcp_t tcp;                        /* on the worker's loop: a dup of the socket, written only */
    sl_worker_t *worker;
    flv_player_t *p;                     /* the main loop's: handed back in messages, never read */
    sl_relay_t *relay;                   /* the stream's relay to this worker */
    sl_relay_member_t member;            /* in the relay's members while playing */
    int tcp_init, counted, dead, chunked, need_key;
    sl_subq_t q;                         /* moved from the player at the hand-over */
    sl_buf_t *unsent;                    /* the head and FLV header the server had not written */
    flv_wreq_t *w;                       /* the uv_write in flight, or NULL */
    int on_flush_list;
    sl_list_t flush_link;                /* in the worker's flush list */
    sl_list_t wk_link;                   /* in the worker's `all` from attach to detach */
    int64_t slow_ms;                     /* media.slow_disconnect when the writes moved */
    uint64_t bytes_local;                /* bytes handed to the socket (the stall check's count) */
    uint64_t delivered_bytes, stall_since_ms;
    char *log_sid;                       /* the session id, for log lines (owned copy) */
    sl_log_ctx_t log;
    _Atomic uint64_t bytes_out, msgs_out, frames_dropped; /* the main loop folds them in */
    _Atomic uint32_t pending;            /* frames queued or in flight */
};

/* Per worker thread, from its first write side to its last. */
typedef struct flv_wk {
    uv_prepare_t prepare;                /* the flush before the loop sleeps */
    uv_timer_t sweep;                    /* stall check and ring trim */
    sl_list_t flush_list;                /* flv_wp_t */
    sl_list_t all;                       /* flv_wp_t attached here */
    size_t n;                            /* write sides on this loop */
    int closing;                         /* handles still to close */
} flv_wk_t;

#define WP_SWEEP_MS 250

static _Thread_local flv_wk_t *tl_fwk;

/* Worker -> main loop. Its inbox is never full (a write side posts at most
 * a close request and a "gone"; main.c sizes it at 4 x max_connections):
 * the loop is a guard. */
static void post_main(sl_worker_t *from, sl_worker_fn fn, void *obj, uint64_t u)
{
    sl_worker_t *main_w = sl_workers_get(sl_worker_pool(from), 0);
    while (sl_worker_post(main_w, fn, obj, u) == SL_EAGAIN)
        sched_yield();
}

static void wp_update_pending(flv_wp_t *wp)
{
    uint32_t n = (wp->q.cap ? wp->q.count : 0) + (wp->w ? wp->w->frames : 0);
    atomic_store_explicit(&wp->pending, n, memory_order_relaxed);
}

/* Main loop: the worker asks for the end (u: the reason, an owned string,
 * or 0 after an orderly end). The player lives until its "gone". */
static void wp_close_main(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)w;
    flv_player_t *p = obj;
    char *why = (char *)(uintptr_t)u;
    wp_sync_counters(p);
    if (p->req && !p->closed) {
        if (!p->ending) {
            p->ending = 1;
            stop_play(p, why ? why : "ended");
        }
        sl_http_stream_end(p->req); /* handed over: closes the connection */
    }
    sl_free(why);
}

/* Main loop: the worker closed its side; nothing of the player is left there. */
static void wp_gone_main(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)u;
    flv_wp_t *wp = obj;
    flv_player_t *p = wp->p;
    wp_sync_counters(p); /* the worker's last stores came before this message */
    sl_free(wp->log_sid);
    sl_free(wp);
    p->wp = NULL;
    sl_workers_keepalive(sl_worker_pool(w), -1);
    if (p->closed)
        player_free(p);
}

static void wp_unschedule(flv_wp_t *wp)
{
    if (wp->on_flush_list) {
        sl_list_remove(&wp->flush_link);
        wp->on_flush_list = 0;
    }
}

/* Worker: stop writing and ask the main loop to end (reason NULL: orderly). */
static void wp_fail(flv_wp_t *wp, const char *reason)
{
    if (wp->dead)
        return;
    wp->dead = 1;
    wp_unschedule(wp);
    sl_relay_remove(&wp->member);
    char *why = reason ? sl_strdup(reason) : NULL;
    if (reason)
        SL_LOGI(&wp->log, "http-flv player closing on worker %d: %s", sl_worker_index(wp->worker),
                reason);
    post_main(wp->worker, wp_close_main, wp->p, (uint64_t)(uintptr_t)why);
}

static void wp_schedule(flv_wp_t *wp)
{
    if (wp->on_flush_list || wp->dead || !tl_fwk)
        return;
    wp->on_flush_list = 1;
    sl_list_push_back(&tl_fwk->flush_list, &wp->flush_link);
}

static void wreq_free(flv_wreq_t *w)
{
    for (uint32_t i = 0; i < w->n; i++)
        sl_buf_unref(w->bufs[i]);
    sl_free(w);
}

static void wp_flush(flv_wp_t *wp, int last);

static void on_wp_write(uv_write_t *req, int status)
{
    flv_wreq_t *w = req->data;
    flv_wp_t *wp = w->wp;
    wp->w = NULL;
    wreq_free(w);
    if (status < 0) {
        wp_fail(wp, uv_strerror(status)); /* no-op when closing (ECANCELED) */
        return;
    }
    wp_update_pending(wp);
    if (wp->q.count)
        wp_schedule(wp);
}

/*
 * Worker: writes the unsent head, then queued frames in batches, while
 * the socket takes them and no write is in flight. last: the end of the
 * response (wp_end): whatever the socket takes now, then the last chunk;
 * no uv_write is left behind (the connection closes next).
 */
static void wp_flush(flv_wp_t *wp, int last)
{
    static const char crlf[] = "\r\n";
    static const char end_chunk[] = "0\r\n\r\n";
    while (!wp->dead && !wp->w) {
        flv_wreq_t *w = sl_malloc(sizeof(*w));
        if (!w) {
            wp_fail(wp, "out of memory");
            return;
        }
        w->wp = wp;
        w->n = w->frames = 0;
        uv_buf_t iov[3 * WP_BATCH + 2];
        unsigned niov = 0;
        size_t total = 0;
        if (wp->unsent) {
            w->bufs[w->n++] = wp->unsent; /* the reference moves to the batch */
            wp->unsent = NULL;
            iov[niov++] = uv_buf_init((char *)w->bufs[0]->data, (unsigned)w->bufs[0]->len);
            total += w->bufs[0]->len;
        }
        uint64_t bytes = 0;
        while (wp->q.count && w->frames < WP_BATCH) {
            sl_subq_item_t it;
            sl_subq_pop(&wp->q, 1, &it);
            sl_buf_t *tag = sl_httpflv_tag(it.f);
            sl_frame_unref(it.f);
            if (!tag) {
                atomic_fetch_add_explicit(&wp->frames_dropped, 1, memory_order_relaxed);
                continue;
            }
            if (wp->chunked) {
                char *line = w->lines[w->frames];
                int ln = snprintf(line, sizeof w->lines[0], "%x\r\n", (unsigned)tag->len);
                iov[niov++] = uv_buf_init(line, (unsigned)ln);
                total += (size_t)ln;
            }
            iov[niov++] = uv_buf_init((char *)tag->data, (unsigned)tag->len);
            total += tag->len;
            bytes += tag->len;
            if (wp->chunked) {
                iov[niov++] = uv_buf_init((char *)crlf, 2);
                total += 2;
            }
            w->bufs[w->n++] = tag;
            w->frames++;
        }
        if (last && !wp->q.count && wp->chunked) {
            iov[niov++] = uv_buf_init((char *)end_chunk, 5);
            total += 5;
        }
        if (!niov) {
            sl_free(w);
            break;
        }
        int r = uv_try_write((uv_stream_t *)&wp->tcp, iov, niov);
        if (r == UV_EAGAIN)
            r = 0;
        if (r < 0) {
            wreq_free(w);
            wp_fail(wp, uv_strerror(r));
            return;
        }
        wp->bytes_local += last ? (uint64_t)r : total; /* the rest goes to uv_write below */
        atomic_fetch_add_explicit(&wp->bytes_out, bytes, memory_order_relaxed);
        atomic_fetch_add_explicit(&wp->msgs_out, w->frames, memory_order_relaxed);
        if ((size_t)r == total) {
            wreq_free(w);
            if (last && !wp->q.count)
                break;
            continue;
        }
        if (last) {
            wreq_free(w); /* the connection closes next: the rest is given up */
            break;
        }
        unsigned k = 0;
        size_t done = (size_t)r;
        while (done >= iov[k].len) {
            done -= iov[k].len;
            k++;
        }
        iov[k].base += done;
        iov[k].len -= (unsigned)done;
        w->req.data = w;
        int rc = uv_write(&w->req, (uv_stream_t *)&wp->tcp, iov + k, niov - k, on_wp_write);
        if (rc) {
            wreq_free(w);
            wp_fail(wp, uv_strerror(rc));
            return;
        }
        wp->w = w;
    }
    wp_update_pending(wp);
}

static void on_fwk_prepare(uv_prepare_t *h)
{
    flv_wk_t *wk = h->data;
    while (!sl_list_empty(&wk->flush_list)) {
        flv_wp_t *wp = sl_container_of(wk->flush_list.next, flv_wp_t, flush_link);
        wp_unschedule(wp);
        wp_flush(wp, 0);
    }
}

static void on_fwk_closed(uv_handle_t *h)
{
    flv_wk_t *wk = h->data;
    if (--wk->closing == 0)
        sl_free(wk);
}

/*
 * The stall check, as the RTMP worker's: bytes handed to the socket minus
 * those still in libuv's queue and the kernel's send queue (SIOCOUTQ) are
 * the bytes the client acknowledged. The kernel absorbs megabytes for a
 * client that stopped reading, during which the queue never fills; no
 * progress for media.slow_disconnect closes it.
 */
static void on_fwk_sweep(uv_timer_t *t)
{
    flv_wk_t *wk = t->data;
    uint64_t now = uv_now(t->loop);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &wk->all) {
        flv_wp_t *wp = sl_container_of(it, flv_wp_t, wk_link);
        if (wp->dead || !wp->tcp_init)
            continue;
        sl_subq_trim(&wp->q);
        if (wp->slow_ms <= 0)
            continue;
        uv_os_fd_t fd;
        int outq = 0;
        if (uv_fileno((uv_handle_t *)&wp->tcp, &fd) != 0 || ioctl(fd, SIOCOUTQ, &outq) != 0)
            continue;
        uint64_t pending = wp->tcp.write_queue_size + (uint64_t)(outq > 0 ? outq : 0);
        uint64_t delivered = wp->bytes_local > pending ? wp->bytes_local - pending : 0;
        if (pending == 0 || delivered != wp->delivered_bytes) {
            wp->delivered_bytes = delivered;
            wp->stall_since_ms = 0;
        } else if (!wp->stall_since_ms) {
            wp->stall_since_ms = now;
        } else if ((int64_t)(now - wp->stall_since_ms) > wp->slow_ms) {
            char why[160];
            snprintf(why, sizeof why, "player stopped reading: nothing acknowledged for %lld ms "
                     "with %llu bytes outstanding", (long long)(now - wp->stall_since_ms),
                     (unsigned long long)pending);
            wp_fail(wp, why);
        }
    }
}

/* Worker: one frame of the relay into one player's queue, with the main
 * loop's rule and policy (sink_on_frame). */
static void wp_on_frame(sl_relay_member_t *m, sl_frame_t *f, uint64_t now_ms)
{
    flv_wp_t *wp = sl_container_of(m, flv_wp_t, member);
    if (wp->dead || !wants_frame(&wp->need_key, f))
        return;
    uint64_t dropped = 0;
    int rc = sl_subq_offer(&wp->q, f, 0, now_ms, &dropped);
    if (dropped)
        atomic_fetch_add_explicit(&wp->frames_dropped, dropped, memory_order_relaxed);
    if (rc == SL_ESLOW) {
        char why[160];
        wp_fail(wp, sl_subq_slow_reason(&wp->q, why, sizeof why));
        return;
    }
    if (rc == SL_ENOMEM) {
        wp_fail(wp, "out of memory");
        return;
    }
    if (rc == SL_SUBQ_FELL_BEHIND)
        SL_LOGI(&wp->log, "http-flv player falling behind: dropping to the next keyframe");
    wp_schedule(wp);
    wp_update_pending(wp);
}

/* Worker: open the write side on the dup'd socket u and join the relay. */
static void wp_attach(sl_worker_t *w, void *obj, uint64_t u)
{
    flv_wp_t *wp = obj;
    int fd = (int)u;
    if (!tl_fwk) {
        flv_wk_t *wk = sl_calloc(1, sizeof(*wk));
        if (!wk) {
            close(fd);
            wp_fail(wp, "out of memory");
            return;
        }
        sl_list_init(&wk->flush_list);
        sl_list_init(&wk->all);
        uv_prepare_init(sl_worker_loop(w), &wk->prepare);
        uv_timer_init(sl_worker_loop(w), &wk->sweep);
        wk->prepare.data = wk->sweep.data = wk;
        uv_prepare_start(&wk->prepare, on_fwk_prepare);
        uv_timer_start(&wk->sweep, on_fwk_sweep, WP_SWEEP_MS, WP_SWEEP_MS);
        tl_fwk = wk;
    }
    tl_fwk->n++;
    wp->counted = 1;
    sl_list_push_back(&tl_fwk->all, &wp->wk_link);
    int rc = uv_tcp_init(sl_worker_loop(w), &wp->tcp);
    if (rc) {
        close(fd);
        wp_fail(wp, uv_strerror(rc));
        return;
    }
    wp->tcp_init = 1;
    wp->tcp.data = wp;
    if ((rc = uv_tcp_open(&wp->tcp, (uv_os_sock_t)fd))) {
        close(fd);
        wp_fail(wp, uv_strerror(rc));
        return;
    }
    sl_relay_add(wp->relay, &wp->member);
    wp_schedule(wp);
}

/* Worker: the player left the stream (its relay's free may follow). */
static void wp_leave(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)w;
    (void)u;
    flv_wp_t *wp = obj;
    sl_relay_remove(&wp->member);
}

/* Worker: the end of the response (kick, unpublish, shutdown): what the
 * queue holds and the last chunk, as far as the socket takes them now
 * (none while a write is in flight: it would interleave), then the main
 * loop closes the connection. */
static void wp_end(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)w;
    (void)u;
    flv_wp_t *wp = obj;
    sl_relay_remove(&wp->member);
    if (wp->dead)
        return;
    wp_unschedule(wp);
    if (wp->tcp_init && !wp->w)
        wp_flush(wp, 1);
    wp_fail(wp, NULL);
}

static void on_wp_closed(uv_handle_t *h)
{
    flv_wp_t *wp = h->data;
    post_main(wp->worker, wp_gone_main, wp, 0);
}

/* Worker: close the write side (after the main loop's close). A write in
 * flight is cancelled: its callback runs before the close callback. */
static void wp_detach(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)u;
    flv_wp_t *wp = obj;
    wp->dead = 1;
    wp_unschedule(wp);
    sl_relay_remove(&wp->member);
    sl_subq_cleanup(&wp->q);
    sl_buf_unref(wp->unsent);
    wp->unsent = NULL;
    atomic_store_explicit(&wp->pending, 0, memory_order_relaxed);
    flv_wk_t *wk = tl_fwk;
    if (wp->counted) {
        sl_list_remove(&wp->wk_link);
        if (!--wk->n) {
            tl_fwk = NULL;
            wk->closing = 2;
            uv_close((uv_handle_t *)&wk->prepare, on_fwk_closed);
            uv_close((uv_handle_t *)&wk->sweep, on_fwk_closed);
        }
    }
    if (wp->tcp_init)
        uv_close((uv_handle_t *)&wp->tcp, on_wp_closed);
    else
        post_main(w, wp_gone_main, wp, 0);
}

/* Main loop: adds what the worker counted since the last look. */
static void wp_sync_counters(flv_player_t *p)
{
    flv_wp_t *wp = p->wp;
    if (!wp)
        return;
    uint64_t b = atomic_load_explicit(&wp->bytes_out, memory_order_relaxed);
    uint64_t m = atomic_load_explicit(&wp->msgs_out, memory_order_relaxed);
    uint64_t d = atomic_load_explicit(&wp->frames_dropped, memory_order_relaxed);
    p->sess.bytes_out += b - p->seen_bytes;
    p->sess.msgs_out += m - p->seen_msgs;
    p->sess.frames_dropped += d - p->seen_drops;
    p->seen_bytes = b;
    p->seen_msgs = m;
    p->seen_drops = d;
}

static void on_sync(uv_timer_t *t)
{
    flv_mod_t *mod = t->data;
    sl_list_t *it;
    for (it = mod->players.next; it != &mod->players; it = it->next)
        wp_sync_counters(sl_container_of(it, flv_player_t, link));
}

/* Worker: a reload's media.slow_disconnect (u) for the stall check of
 * every write side here (later ones copy it at their hand-over). */
static void wk_config(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)w;
    (void)obj;
    if (!tl_fwk)
        return;
    sl_list_t *it;
    for (it = tl_fwk->all.next; it != &tl_fwk->all; it = it->next)
        sl_container_of(it, flv_wp_t, wk_link)->slow_ms = (int64_t)u;
}

static void on_sync_closed(uv_handle_t *h) { sl_free(h->data); }

static uint64_t session_pending(const sl_session_t *s)
{
    const flv_player_t *p = (const flv_player_t *)s;
    if (p->wp)
        return atomic_load_explicit(&p->wp->pending, memory_order_relaxed);
    return p->q_ready ? p->q.count : 0;
}

/*
 * Main loop, at the start of a plain-HTTP play with workers: when the
 * least loaded loop is a worker and the HTTP server hands the response's
 * writes over, the player joins the stream with its replay queued (not
 * written), its sink is marked relayed, and the queue, the join rule and
 * the descriptor go to the worker in one message; frames pushed from now
 * on reach it through the stream's relay to that worker, posted behind
 * that message. Returns 1 when the player went to the worker (or ended
 * trying), 0 when it stays on the main loop.
 */
static int start_on_worker(flv_player_t *p, sl_worker_t *w)
{
    int fd = -1, chunked = 0;
    sl_buf_t *unsent = NULL;
    if (sl_http_stream_handover(p->req, &fd, &unsent, &chunked))
        return 0; /* TLS, or not possible now: the main loop writes */
    flv_wp_t *wp = sl_calloc(1, sizeof(*wp));
    char *sid = sl_strdup(p->sess.id);
    if (!wp || !sid) {
        sl_free(wp);
        sl_free(sid);
        close(fd);
        sl_buf_unref(unsent);
        end_stream(p, "out of memory"); /* the handed-over connection closes */
        return 1;
    }
    wp->worker = w;
    wp->p = p;
    wp->chunked = chunked;
    wp->unsent = unsent;
    wp->log_sid = sid;
    wp->log.sid = sid;
    wp->log.proto = "http-flv";
    wp->member.on_frame = wp_on_frame;
    sl_list_init(&wp->member.link);
    sl_list_init(&wp->flush_link);
    sl_list_init(&wp->wk_link);
    wp->slow_ms = p->mod->core->cfg->media_slow_disconnect_ms;
    p->joining = 1;
    int rc = sl_hub_add_sink(p->mod->core->hub, p->path, &p->sink);
    p->joining = 0;
    sl_relay_t *r = NULL;
    if (rc || p->ending || !(r = sl_relay_acquire(&p->mod->relays, p->sink.stream, w))) {
        sl_free(wp);
        sl_free(sid);
        close(fd);
        sl_buf_unref(unsent);
        end_stream(p, "out of memory"); /* no-op when the replay ended it */
        return 1;
    }
    sl_stream_sink_relayed(&p->sink, 1);
    wp->relay = r;
    wp->q = p->q; /* moved: the frames' references go with it */
    memset(&p->q, 0, sizeof p->q);
    p->q_ready = 0;
    wp->need_key = p->need_key;
    p->wp = wp;
    p->wp_worker = w;
    p->relay = r;
    sl_worker_players_add(p->worker, -1);
    p->worker = w;
    sl_worker_players_add(w, 1);
    sl_workers_keepalive(sl_worker_pool(w), 1);
    sl_relay_post(w, wp_attach, wp, (uint64_t)fd);
    SL_LOGD(&p->sess.log, "http-flv writes on worker %d", sl_worker_index(w));
    return 1;
}

/*
 * Admitted: answer with the FLV header and join the stream (its metadata,
 * configurations and GOP come at once, then live frames).
 */
static void start_play(flv_player_t *p)
{
    flv_mod_t *mod = p->mod;
    const sl_config_t *cfg = mod->core->cfg;
    sl_stream_t *st = sl_hub_find(mod->core->hub, p->path);
    if (mod->stopping || !st || !st->publisher) {
        respond_text(p->req, mod->stopping ? 503 : 404, mod->stopping ? "server shutting down\n"
                                                                      : "stream not found\n");
        player_free(p);
        return;
    }
    int has_video = st->video_config || st->video_codec;
    int has_audio = st->audio_config || st->audio_codec;
    int rc = sl_subq_init(&p->q, (size_t)cfg->media_queue_max_bytes, (uint32_t)cfg->media_queue_max_ms,
                          (uint64_t)cfg->media_slow_disconnect_ms);
    if (rc) {
        respond_text(p->req, 500, "internal server error\n");
        player_free(p);
        return;
    }
    p->q_ready = 1;
    rc = sl_http_stream_start(p->req, 200, "video/x-flv", "Cache-Control: no-cache\r\n", on_close, p);
    if (rc) {
        /* HEAD (the head is out) or the client is gone: no close callback. */
        p->req = NULL;
        player_free(p);
        return;
    }
    p->streaming = 1;
    uint8_t hdr[13] = {'F', 'L', 'V', 1, (uint8_t)((has_audio ? 4 : 0) | (has_video ? 1 : 0)), 0, 0, 0, 9,
                       0, 0, 0, 0};
    sl_buf_t *b = sl_buf_from(hdr, sizeof hdr);
    if (!b || sl_http_stream_write(p->req, b)) {
        sl_buf_unref(b);
        end_stream(p, "out of memory");
        return;
    }
    sl_buf_unref(b);
    p->sess.bytes_out += sizeof hdr;
    p->write_limit = WRITE_LIMIT;
    if ((uint64_t)sl_config_int(cfg, "http.stream_max_pending_bytes") / 2 < p->write_limit)
        p->write_limit = (size_t)sl_config_int(cfg, "http.stream_max_pending_bytes") / 2;
    p->need_key = st->video_config != NULL;
    sl_session_set_role(&p->sess, SL_ROLE_SUBSCRIBER);
    p->playing = 1;
    SL_LOGI(&p->sess.log, "http-flv player started (%s:%d)", p->sess.remote_addr, p->sess.remote_port);
    sl_events_emit_session(mod->core, &p->sess, SL_EV_PLAY, NULL);
    p->sink.ops = &flv_sink_ops;
    p->sink.ctx = p;
    sl_workers_t *ws = mod->core->workers;
    if (ws) {
        /* Counted on the main loop until (unless) the writes move. */
        sl_worker_t *w = sl_workers_least_loaded(ws);
        p->worker = sl_workers_get(ws, 0);
        sl_worker_players_add(p->worker, 1);
        if (sl_worker_index(w) != 0 && start_on_worker(p, w))
            return;
    }
    if (sl_hub_add_sink(mod->core->hub, p->path, &p->sink))
        end_stream(p, "out of memory");
}

static void admission_finish(flv_player_t *p)
{
    if (!p->result) {
        start_play(p);
        return;
    }
    SL_LOGI(&p->sess.log, "http-flv play refused: %s", p->reason[0] ? p->reason : "denied");
    sl_http_admit_refuse(p->req, p->had_creds, p->reason); /* 401 or 403, as every HTTP route */
    player_free(p);
}

static void admit_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    flv_player_t *p = ud;
    p->finished = 1;
    p->result = result;
    snprintf(p->reason, sizeof p->reason, "%s", reason ? reason : "");
    if (p->in_call)
        return; /* synchronous: on_request goes on */
    if (p->admit == a) {
        p->admit = NULL;
        sl_admit_unref(a);
    }
    admission_finish(p);
}

/* "/live/room1/s.flv" -> "live/room1/s"; 0, SL_EDECLINED or SL_EINVAL. */
static int parse_path(const char *url_path, char *out, size_t cap)
{
    const char *p = url_path;
    while (*p == '/')
        p++;
    size_t n = strlen(p);
    if (n < 4 || strcmp(p + n - 4, ".flv") != 0)
        return SL_EDECLINED;
    n -= 4;
    if (n == 0 || n >= cap)
        return SL_EINVAL;
    memcpy(out, p, n);
    out[n] = '\0';
    if (!strchr(out, '/') || !sl_name_is_safe(out, PATH_MAX_LEN))
        return SL_EINVAL;
    return 0;
}

static int on_request(sl_http_req_t *req, void *ud)
{
    flv_mod_t *mod = ud;
    char path[PATH_MAX_LEN + 1];
    /* Not an HTTP-FLV address of a configured app: declined, so that a
     * static file of that name (the static route runs after this one) is
     * still served, and the server answers 404 otherwise. */
    if (parse_path(req->path, path, sizeof path) != 0)
        return SL_EDECLINED;
    const sl_app_config_t *app = sl_core_app(mod->core, path);
    if (!app)
        return SL_EDECLINED;
    if (mod->stopping)
        return respond_text(req, 503, "server shutting down\n");
    if (!sl_httpflv_app_cfg(app)->httpflv)
        return SL_EDECLINED;
    if (!app->allow_play)
        return respond_text(req, 403, "Playing is not allowed in this application.\n");
    sl_stream_t *st = sl_hub_find(mod->core->hub, path);
    const char *after_app = path + strcspn(path, "/");
    if ((!st || !st->publisher) && strncmp(after_app, "/streams/", 9) == 0)
        return SL_EDECLINED; /* not live: a recording's address (the recorder's route) */
    /* Live or not, admission runs first: start_play answers 404 for an absent
     * stream only once the chain allowed, so on an app with auth a live and an
     * absent stream get the same 401 without credentials (no name probing). */

    flv_player_t *p = sl_calloc(1, sizeof(*p));
    if (!p)
        return SL_ENOMEM;
    p->mod = mod;
    p->req = req;
    memcpy(p->path, path, strlen(path) + 1);
    sl_list_push_back(&mod->players, &p->link);
    sl_session_register(mod->core, &p->sess, &flv_session_ops, "http-flv");
    snprintf(p->sess.remote_addr, sizeof p->sess.remote_addr, "%s", req->remote_addr ? req->remote_addr : "");
    p->sess.remote_port = req->remote_port;
    char scope[PATH_MAX_LEN + 1];
    const char *last = strrchr(path, '/');
    snprintf(scope, sizeof scope, "%.*s", (int)(last - path), path);
    if (sl_session_set_app(&p->sess, scope) || sl_session_set_stream(&p->sess, last + 1) ||
        sl_session_set_query(&p->sess, req->query && req->query[0] ? req->query : NULL)) {
        player_free(p);
        return SL_ENOMEM;
    }
    /* Credentials: query (Red5's names), or a bearer token. */
    char user[512] = "", pass[512] = "", token[SL_HTTP_TOKEN_MAX] = "";
    sl_http_find_creds(req, user, sizeof user, pass, sizeof pass, token, sizeof token);
    p->had_creds = user[0] || pass[0] || token[0];
    sl_admit_req_t ar = {
        .kind = SL_ADMIT_PLAY,
        .app = p->sess.app,
        .stream = p->sess.stream,
        .transport = "http-flv",
        .query = req->query,
        .username = user[0] ? user : NULL,
        .password = pass[0] ? pass : NULL,
        .token = token[0] ? token : NULL,
    };
    sl_admit_t *a = NULL;
    p->in_call = 1;
    int rc = sl_admit(mod->core, &p->sess, &ar, admit_done, p, &a);
    p->in_call = 0;
    if (rc == SL_EPENDING) {
        p->admit = a;
        return 0;
    }
    if (rc == SL_OK && p->finished) {
        admission_finish(p);
        return 0;
    }
    player_free(p);
    return rc ? rc : SL_EINVAL;
}

/* ------------------------------------------------------------------ */
/* the module                                                          */

static int flv_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    sl_core_t *core = sl_host_core(h);
    sl_http_server_t *http = sl_host_http(h);
    (void)api;
    *state = NULL;
    if (!http)
        return 0;
    flv_mod_t *mod = sl_calloc(1, sizeof(*mod));
    if (!mod)
        return SL_ENOMEM;
    mod->core = core;
    sl_list_init(&mod->players);
    sl_relay_set_init(&mod->relays);
    if (core->workers) {
        /* The sessions' counters of players on workers, folded in each second. */
        uv_timer_init(core->loop, &mod->sync);
        mod->sync.data = mod;
        uv_timer_start(&mod->sync, on_sync, 1000, 1000);
        uv_unref((uv_handle_t *)&mod->sync);
        mod->sync_init = 1;
    }
    const sl_http_route_spec_t route = {.method = "GET", .prefix = "/", .suffixes = ".flv",
                                        .prio = SL_HTTP_PRIO_APP, .name = "http-flv",
                                        .serves = "/{app}/{stream}.flv", .cb = on_request,
                                        .ud = mod};
    int rc = sl_http_route_add(http, &route, NULL);
    if (rc) {
        if (mod->sync_init) {
            /* freed once the loop ran the close callback: flv_free is not called */
            uv_close((uv_handle_t *)&mod->sync, on_sync_closed);
            return rc;
        }
        sl_free(mod);
        return rc;
    }
    *state = mod;
    return 0;
}

/* Ends every response (close callbacks free the players as the loop runs). */
static void flv_stop(void *state)
{
    flv_mod_t *mod = state;
    if (!mod)
        return;
    mod->stopping = 1;
    if (mod->sync_init && !uv_is_closing((uv_handle_t *)&mod->sync))
        uv_close((uv_handle_t *)&mod->sync, NULL);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &mod->players) {
        flv_player_t *p = sl_container_of(it, flv_player_t, link);
        if (p->admit) {
            sl_admit_cancel(p->admit);
            p->admit = NULL;
            respond_text(p->req, 503, "server shutting down\n");
            player_free(p);
        } else if (p->streaming) {
            end_stream(p, "server shutdown");
        }
    }
}

/* A reload: the workers' write sides take the new stall bound, by message. */
static int flv_reload(void *state)
{
    flv_mod_t *mod = state;
    sl_workers_t *ws = mod ? mod->core->workers : NULL;
    for (int i = 1; ws && i < sl_workers_count(ws); i++)
        sl_relay_post(sl_workers_get(ws, i), wk_config, NULL,
                      (uint64_t)mod->core->cfg->media_slow_disconnect_ms);
    return 0;
}

static void flv_free(void *state)
{
    flv_mod_t *mod = state;
    if (!mod)
        return;
    /* Close callbacks have run with the loop; anything left never got one. */
    while (!sl_list_empty(&mod->players))
        player_free(sl_container_of(mod->players.next, flv_player_t, link));
    sl_free(mod);
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "httpflv",
    .description = "HTTP-FLV playback",
    .init = flv_init,
    .stop = flv_stop,
    .destroy = flv_free,
    .reload = flv_reload,
};

const sl_builtin_t sl_httpflv_builtin = {
    .plugin = &plugin,
    .config = &sl_httpflv_config_section,
};
