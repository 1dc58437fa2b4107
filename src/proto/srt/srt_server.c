/*
 * The SRT server: libsrt's listener, the sessions it accepts, publishers
 * (a demux thread each, frames into the hub) and readers (a hub sink and a
 * TS muxer each, written with non-blocking srt_sendmsg2), the admission of
 * each caller, its events, and the "srt" service (app/svc/srt.h) from
 * which the Server API and /metrics read statistics.
 *
 * Before accepting (libsrt's thread, srt_listen_callback): the streamid is
 * parsed and checked against the configuration (the app exists, allows SRT
 * and the mode), the budgets (connections in all and per address, the
 * streamid's length) are checked, and the app's passphrase is set on the
 * new socket; a refusal is a rejection code in the handshake (1400 bad
 * streamid, 1402 over budget, 1403 forbidden, 1404 no such app), which
 * costs the server nothing more. Whether the stream is live is not
 * answered in the handshake: it would tell an unauthenticated caller which
 * stream names exist (stream keys), which no other route does either
 * (docs/security.md); it is checked after admission. After accepting
 * (loop): the session is
 * registered, counted by the core's connection budgets, and the admission
 * chain (simple auth, JWT, round trip, plugins) decides with transport
 * "srt"; a refusal closes the socket. The admission cannot run in the
 * handshake: it is asynchronous on the loop, and libsrt's callback must
 * answer at once from libsrt's receiver thread.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <srt/srt.h>
#include <srt/access_control.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "app/admission.h"
#include "app/events.h"
#include "app/listeners.h"
#include "app/services.h"
#include "app/svc/srt.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/map.h"
#include "base/time.h"
#include "media/flv.h"
#include "proto/srt/srt_config.h"
#include "proto/srt/srt_internal.h"
#include "proto/srt/srt_streamid.h"
#include "proto/srt/ts_demux.h"
#include "proto/srt/ts_mux.h"
#include "sluice/errors.h"

#define TICK_MS 250          /* statistics, broken sockets, timeouts */
#define RECV_TIMEOUT_MS 250  /* a publisher thread's wait per receive (then checks stop/idle) */
#define MSG_MAX 1500         /* one SRT live message at most (payload size <= 1456) */

typedef enum { ST_ADMITTING = 0, ST_LIVE, ST_CLOSING } sess_state_t;

/* An accepted socket on its way from the accept thread to the loop. */
typedef struct pending {
    sl_list_t link;
    SRTSOCKET sock;
    char addr[64];
    int port;
    char streamid[SL_SRT_STREAMID_MAX + 1];
} pending_t;

typedef struct srt_sess {
    sl_session_t sess;        /* first: the core's view */
    sl__srt_server_t *srv;
    sl_list_t link;           /* in srv->sessions */
    SRTSOCKET sock;
    sl_srt_streamid_t sid;
    int ac_form;              /* streamid in the #!:: form */
    sess_state_t state;
    int close_req;            /* kick/shutdown/broken: closed at the next async or tick */
    char close_reason[192];
    uint64_t accepted_ms;     /* loop time at adoption (admission timeout) */
    sl_admit_t *admit;        /* pending admission (owned ref) */
    int in_admit;             /* inside sl_admit: the callback defers */
    int admit_done, admit_result;
    char admit_reason[160];
    int addr_counted;         /* counted in srv->per_addr */
    int encrypted;
    /* publisher */
    sl_stream_t *stream;
    sl_audio_bridge_t *abridge;     /* Opus publisher: AAC for the hub, Opus for side players */
    uv_thread_t thread;
    int thread_on;
    atomic_int stop;          /* the demux thread must end */
    atomic_int thread_done;   /* it has ended */
    atomic_llong last_data_ms;/* loop-clock time of the last message received */
    sl__srt_q_t q;
    int q_on;
    uint8_t msg[MSG_MAX];     /* the demux thread's current message */
    int msg_len, msg_off;
    sl_ts_demux_stats_t dstats; /* copied at the thread's end */
    int demux_rc;             /* sl_ts_demux_run's result (read after thread_done) */
    atomic_uint vcodec, acodec;
    /* reader */
    sl_sink_t sink;
    int sink_on;
    sl_ts_mux_t *mux;
    int need_key;             /* video waits for a keyframe (start, rebuild, loss) */
    uint64_t frames_dropped;
} srt_sess_t;

struct sl__srt_server {
    sl_core_t *core;
    SRTSOCKET lsock;
    uv_thread_t accept_thread;
    int accept_on;
    uv_async_t async;
    uv_timer_t tick;
    int handles_open;
    uv_mutex_t mu;            /* pending, n_open, per_addr, counters read by libsrt's thread */
    sl_list_t pending;
    size_t n_open;            /* sockets accepted and not closed */
    sl_map_t per_addr;        /* address -> count (uintptr_t) */
    atomic_int stopping;
    sl_list_t sessions;       /* loop */
    size_t n_sessions;
    sl_srt_counters_t c;      /* loop (rejected_total under mu) */
};

static void sess_close(srt_sess_t *s);

/* ------------------------------------------------------------------ */
/* listen callback (libsrt's thread)                                   */

static size_t addr_count_locked(sl__srt_server_t *srv, const char *addr)
{
    void *v = sl_map_get(&srv->per_addr, addr);
    return (size_t)(uintptr_t)v;
}

static void peer_name(const struct sockaddr *sa, char *out, size_t cap, int *port)
{
    out[0] = '\0';
    *port = 0;
    if (!sa)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        uv_ip4_name(a, out, cap);
        *port = ntohs(a->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(a, out, cap);
        *port = ntohs(a->sin6_port);
    }
}

static int reject(sl__srt_server_t *srv, SRTSOCKET ns, int code)
{
    srt_setrejectreason(ns, code);
    uv_mutex_lock(&srv->mu);
    srv->c.rejected_total++;
    uv_mutex_unlock(&srv->mu);
    return -1;
}

static int listen_cb(void *opaque, SRTSOCKET ns, int hsversion, const struct sockaddr *peer,
                     const char *streamid)
{
    sl__srt_server_t *srv = opaque;
    /* A reload swaps the pointer; every configuration stays allocated until exit. */
    const sl_config_t *cfg = __atomic_load_n(&srv->core->cfg, __ATOMIC_ACQUIRE);
    const sl_srt_config_t *sc = sl_srt_cfg(cfg);
    if (atomic_load(&srv->stopping))
        return reject(srv, ns, SRT_REJX_DOWN);
    if (hsversion < 5 || !streamid)
        return reject(srv, ns, SRT_REJX_BAD_REQUEST); /* HSv4 carries no streamid */
    size_t len = strnlen(streamid, SL_SRT_STREAMID_MAX + 1);
    if (len > (size_t)sc->max_streamid_bytes)
        return reject(srv, ns, SRT_REJX_BAD_REQUEST);
    sl_srt_streamid_t sid;
    if (sl_srt_streamid_parse(streamid, len, &sid, NULL))
        return reject(srv, ns, SRT_REJX_BAD_REQUEST);
    const sl_app_config_t *app = sl_core_app(srv->core, sid.scope);
    if (!app || !sl_srt_app_cfg(app)->srt)
        return reject(srv, ns, SRT_REJX_NOTFOUND);
    if (sid.mode == SL_SRT_MODE_PUBLISH ? !app->allow_publish : !app->allow_play)
        return reject(srv, ns, SRT_REJX_FORBIDDEN);
    char addr[64];
    int port;
    peer_name(peer, addr, sizeof addr, &port);
    uv_mutex_lock(&srv->mu);
    int over = srv->n_open >= (size_t)sc->max_connections ||
               addr_count_locked(srv, addr) >= (size_t)sc->max_connections_per_address;
    uv_mutex_unlock(&srv->mu);
    if (over)
        return reject(srv, ns, SRT_REJX_OVERLOAD);
    const char *pw = sl_srt_app_cfg(app)->passphrase;
    if (!pw || !pw[0])
        pw = sc->passphrase;
    if (pw && pw[0]) {
        if (srt_setsockflag(ns, SRTO_PASSPHRASE, pw, (int)strlen(pw)) != 0)
            return reject(srv, ns, SRT_REJX_ISE);
        if (sc->pbkeylen) {
            int kl = (int)sc->pbkeylen;
            srt_setsockflag(ns, SRTO_PBKEYLEN, &kl, sizeof kl);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* accept thread                                                       */

static void accept_main(void *arg)
{
    sl__srt_server_t *srv = arg;
    for (;;) {
        struct sockaddr_storage ss;
        int sl = sizeof ss;
        SRTSOCKET s = srt_accept(srv->lsock, (struct sockaddr *)&ss, &sl);
        if (s == SRT_INVALID_SOCK) {
            if (atomic_load(&srv->stopping) || srt_getsockstate(srv->lsock) != SRTS_LISTENING)
                return;
            /* A failed accept (resource pressure): libsrt dropped that caller.
             * Pause a little rather than spin on a persistent failure. */
            uv_sleep(10);
            continue;
        }
        pending_t *p = sl_calloc(1, sizeof *p);
        if (!p) {
            srt_close(s);
            continue;
        }
        p->sock = s;
        peer_name((struct sockaddr *)&ss, p->addr, sizeof p->addr, &p->port);
        int n = (int)sizeof p->streamid - 1;
        if (srt_getsockflag(s, SRTO_STREAMID, p->streamid, &n) != 0)
            n = 0;
        p->streamid[n < 0 ? 0 : n] = '\0';
        uv_mutex_lock(&srv->mu);
        sl_list_push_back(&srv->pending, &p->link);
        srv->n_open++;
        sl_map_set(&srv->per_addr, p->addr, (void *)(uintptr_t)(addr_count_locked(srv, p->addr) + 1));
        uv_mutex_unlock(&srv->mu);
        uv_async_send(&srv->async);
    }
}

static void open_release(sl__srt_server_t *srv, const char *addr)
{
    uv_mutex_lock(&srv->mu);
    if (srv->n_open)
        srv->n_open--;
    size_t n = addr_count_locked(srv, addr);
    if (n <= 1)
        sl_map_del(&srv->per_addr, addr);
    else
        sl_map_set(&srv->per_addr, addr, (void *)(uintptr_t)(n - 1));
    uv_mutex_unlock(&srv->mu);
}

/* ------------------------------------------------------------------ */
/* publisher: demux thread                                             */

static int pub_read(void *ud, uint8_t *buf, int size)
{
    srt_sess_t *s = ud;
    const sl_srt_config_t *sc = sl_srt_cfg(__atomic_load_n(&s->srv->core->cfg, __ATOMIC_ACQUIRE));
    while (s->msg_off >= s->msg_len) {
        if (atomic_load(&s->stop))
            return 0;
        int n = srt_recvmsg(s->sock, (char *)s->msg, sizeof s->msg);
        if (n > 0) {
            s->msg_len = n;
            s->msg_off = 0;
            atomic_store(&s->last_data_ms, (long long)sl_time_mono_ms());
            break;
        }
        int err = srt_getlasterror(NULL);
        if (n == SRT_ERROR && (err == SRT_ETIMEOUT || err == SRT_EASYNCRCV)) {
            if ((long long)sl_time_mono_ms() - atomic_load(&s->last_data_ms) > sc->idle_timeout_ms)
                return -1;
            continue;
        }
        return 0; /* closed or broken: the end of the input */
    }
    int n = s->msg_len - s->msg_off;
    if (n > size)
        n = size;
    memcpy(buf, s->msg + s->msg_off, (size_t)n);
    s->msg_off += n;
    return n;
}

static void pub_frame(void *ud, uint8_t kind, int64_t dts_ms, sl_buf_t *body)
{
    srt_sess_t *s = ud;
    if (sl__srt_q_push(&s->q, kind, dts_ms, body))
        uv_async_send(&s->srv->async);
}

static void pub_main(void *arg)
{
    srt_sess_t *s = arg;
    const sl_srt_config_t *sc = sl_srt_cfg(__atomic_load_n(&s->srv->core->cfg, __ATOMIC_ACQUIRE));
    sl_ts_demux_t *d = sl_ts_demux_new(pub_read, pub_frame, s, (size_t)sc->max_frame_size);
    s->demux_rc = SL_ENOMEM;
    if (d) {
        s->demux_rc = sl_ts_demux_run(d);
        sl_ts_demux_stats(d, &s->dstats);
        sl_ts_demux_free(d);
    }
    atomic_store(&s->thread_done, 1);
    uv_async_send(&s->srv->async);
}

/* ------------------------------------------------------------------ */
/* reader: hub sink -> TS -> SRT                                       */

static void reader_send(srt_sess_t *s, const uint8_t *p, size_t n)
{
    const sl_srt_config_t *sc = sl_srt_cfg(s->srv->core->cfg);
    size_t chunk = (size_t)sc->payload_size / 188 * 188;
    if (chunk < 188)
        chunk = 188;
    while (n > 0) {
        size_t k = n < chunk ? n : chunk;
        int rc = srt_sendmsg2(s->sock, (const char *)p, (int)k, NULL);
        if (rc == SRT_ERROR) {
            if (srt_getlasterror(NULL) == SRT_EASYNCSND) {
                /* The send buffer is full: the reader is behind. Drop what is
                 * left of this frame and resume at a keyframe. */
                s->frames_dropped++;
                s->sess.frames_dropped++;
                s->srv->c.frames_dropped++;
                s->need_key = 1;
                return;
            }
            if (!s->close_req) {
                s->close_req = 1;
                snprintf(s->close_reason, sizeof s->close_reason, "connection lost");
            }
            return;
        }
        s->sess.msgs_out++;
        p += k, n -= k;
    }
}

static void reader_frame(sl_sink_t *sink, sl_frame_t *f)
{
    srt_sess_t *s = sink->ctx;
    if (s->close_req || (f->flags & (SL_FRAME_CONFIG | SL_FRAME_META)))
        return;
    sl_stream_t *st = sink->stream;
    int key = f->kind == SL_FLV_VIDEO && (f->flags & SL_FRAME_KEY);
    int has_video = st->video_config != NULL;
    /* (Re)build the muxer at a point a player can start from. */
    if (!s->mux || !sl_ts_mux_matches(s->mux, st->video_config, st->audio_config)) {
        if (has_video ? !key : f->kind != SL_FLV_AUDIO)
            return;
        sl_ts_mux_free(s->mux);
        s->mux = NULL;
        int rc = sl_ts_mux_new(st->video_config, st->audio_config, &s->mux);
        if (rc) {
            s->frames_dropped++;
            return;
        }
        s->need_key = has_video;
    }
    if (s->need_key) {
        if (f->kind == SL_FLV_VIDEO && !key)
            return;
        if (f->kind == SL_FLV_AUDIO && has_video)
            return;
        if (key)
            s->need_key = 0;
    }
    if (sl_ts_mux_write(s->mux, f)) {
        sl_ts_mux_free(s->mux);
        s->mux = NULL;
        return;
    }
    size_t n;
    const uint8_t *p = sl_ts_mux_take(s->mux, &n);
    if (n)
        reader_send(s, p, n);
}

static void reader_publish(sl_sink_t *sink)
{
    srt_sess_t *s = sink->ctx;
    s->need_key = 1;
}

static void reader_unpublish(sl_sink_t *sink)
{
    srt_sess_t *s = sink->ctx;
    sl_ts_mux_free(s->mux); /* the next publish may bring other codecs */
    s->mux = NULL;
}

static const sl_sink_ops_t g_reader_ops = {
    .on_frame = reader_frame,
    .on_publish = reader_publish,
    .on_unpublish = reader_unpublish,
};

/* ------------------------------------------------------------------ */
/* sessions                                                            */

static void request_close(srt_sess_t *s, const char *reason)
{
    if (s->close_req)
        return;
    s->close_req = 1;
    snprintf(s->close_reason, sizeof s->close_reason, "%.180s", reason ? reason : "closed");
    uv_async_send(&s->srv->async);
}

static void sess_kick(sl_session_t *ss, const char *reason)
{
    request_close((srt_sess_t *)ss, reason ? reason : "kicked");
}

static void sess_shutdown(sl_session_t *ss) { request_close((srt_sess_t *)ss, "server shutting down"); }

static const sl_session_ops_t g_sess_ops = {
    .kick = sess_kick,
    .shutdown = sess_shutdown,
};

static void update_bytes(srt_sess_t *s)
{
    SRT_TRACEBSTATS b;
    if (s->sock == SRT_INVALID_SOCK || srt_bstats(s->sock, &b, 0) != 0)
        return;
    uint64_t in = b.byteRecvTotal, out = b.byteSentTotal;
    if (in > s->sess.bytes_in) {
        s->srv->c.bytes_in += in - s->sess.bytes_in;
        s->sess.bytes_in = in;
    }
    if (out > s->sess.bytes_out) {
        s->srv->c.bytes_out += out - s->sess.bytes_out;
        s->sess.bytes_out = out;
    }
    if ((uint64_t)b.pktRecvTotal > s->sess.msgs_in)
        s->sess.msgs_in = (uint64_t)b.pktRecvTotal;
}

static void pub_drain(srt_sess_t *s)
{
    if (!s->q_on)
        return;
    sl_list_t items;
    sl_list_init(&items);
    sl__srt_q_take(&s->q, &items);
    sl__srt_push_items(s->state == ST_LIVE ? s->stream : NULL, &s->abridge, s->srv->core->loop, &s->sess.log,
                       &items);
}

static void sess_close(srt_sess_t *s)
{
    sl__srt_server_t *srv = s->srv;
    sl_core_t *core = srv->core;
    s->state = ST_CLOSING;
    if (s->admit) {
        sl_admit_cancel(s->admit);
        s->admit = NULL;
    }
    update_bytes(s);
    /* Closing the socket wakes a publisher thread blocked in srt_recvmsg. */
    atomic_store(&s->stop, 1);
    if (s->sock != SRT_INVALID_SOCK)
        srt_close(s->sock);
    s->sock = SRT_INVALID_SOCK;
    if (s->thread_on) {
        uv_thread_join(&s->thread);
        s->thread_on = 0;
    }
    if (s->q_on) {
        srv->c.frames_dropped += s->q.dropped + s->dstats.dropped;
        s->sess.frames_dropped += s->q.dropped + s->dstats.dropped;
        sl__srt_q_cleanup(&s->q);
        s->q_on = 0;
    }
    sl_audio_bridge_free(s->abridge); /* before the unpublish: it pushes to the stream */
    s->abridge = NULL;
    if (s->stream) {
        sl_stream_t *st = s->stream;
        s->stream = NULL;
        SL_LOGI(&s->sess.log, "srt publish stopped (%llu frames, %llu bytes)",
                (unsigned long long)st->stats.frames_in, (unsigned long long)st->stats.bytes_in);
        sl_stream_unpublish(st);
        sl_events_emit_session(core, &s->sess, SL_EV_UNPUBLISH, s->close_reason);
        sl_session_set_role(&s->sess, SL_ROLE_NONE);
    }
    if (s->sink_on) {
        sl_stream_remove_sink(&s->sink);
        s->sink_on = 0;
        sl_events_emit_session(core, &s->sess, SL_EV_PLAY_STOP, s->close_reason);
        sl_session_set_role(&s->sess, SL_ROLE_NONE);
    }
    sl_ts_mux_free(s->mux);
    s->mux = NULL;
    if (s->admit_done && s->admit_result == 0)
        sl_events_emit_session(core, &s->sess, SL_EV_DISCONNECT, s->close_reason);
    SL_LOGI(&s->sess.log, "srt %s closed: %s", s->sid.mode == SL_SRT_MODE_PUBLISH ? "publisher" : "reader",
            s->close_reason[0] ? s->close_reason : "closed");
    if (s->addr_counted)
        open_release(srv, s->sess.remote_addr);
    sl_list_remove(&s->link);
    srv->n_sessions--;
    sl_session_unregister(core, &s->sess);
    sl_free(s);
}

/* Admission allowed: start publishing or reading. Returns 0 or closes with a reason. */
static void sess_start(srt_sess_t *s)
{
    sl__srt_server_t *srv = s->srv;
    sl_core_t *core = srv->core;
    sl_session_admitted(&s->sess);
    sl_events_emit_session(core, &s->sess, SL_EV_CONNECT, NULL);
    int yes = 1, no = 0;
    if (s->sid.mode == SL_SRT_MODE_PUBLISH) {
        sl_stream_t *st;
        int rc = sl_hub_publish(core->hub, s->sid.path, &s->sess, &st);
        if (rc) {
            request_close(s, rc == SL_EBUSY ? "stream is already being published" : "cannot publish");
            return;
        }
        s->stream = st;
        s->state = ST_LIVE;
        sl_session_set_role(&s->sess, SL_ROLE_PUBLISHER);
        s->sess.publish_mode = SL_PUBLISH_LIVE;
        const sl_srt_config_t *sc = sl_srt_cfg(core->cfg);
        int to = RECV_TIMEOUT_MS;
        srt_setsockflag(s->sock, SRTO_RCVSYN, &yes, sizeof yes);
        srt_setsockflag(s->sock, SRTO_RCVTIMEO, &to, sizeof to);
        atomic_store(&s->last_data_ms, (long long)sl_time_mono_ms());
        if (sl__srt_q_init(&s->q, (size_t)sc->max_queue_bytes) == 0)
            s->q_on = 1;
        if (!s->q_on || uv_thread_create(&s->thread, pub_main, s) != 0) {
            request_close(s, "cannot start the demuxer");
            return;
        }
        s->thread_on = 1;
        srv->c.publishers_now++;
        SL_LOGI(&s->sess.log, "srt publish started (%s:%d%s)", s->sess.remote_addr, s->sess.remote_port,
                s->encrypted ? ", encrypted" : "");
        sl_events_emit_session(core, &s->sess, SL_EV_PUBLISH, NULL);
        return;
    }
    sl_stream_t *st = sl_hub_find(core->hub, s->sid.path);
    if (!st || !st->publisher) {
        request_close(s, "stream not found");
        return;
    }
    srt_setsockflag(s->sock, SRTO_SNDSYN, &no, sizeof no);
    s->sink.ops = &g_reader_ops;
    s->sink.ctx = s;
    s->need_key = 1;
    s->state = ST_LIVE;
    sl_session_set_role(&s->sess, SL_ROLE_SUBSCRIBER);
    if (sl_hub_add_sink(core->hub, s->sid.path, &s->sink)) {
        request_close(s, "out of memory");
        return;
    }
    s->sink_on = 1;
    srv->c.readers_now++;
    SL_LOGI(&s->sess.log, "srt read started (%s:%d)", s->sess.remote_addr, s->sess.remote_port);
    sl_events_emit_session(core, &s->sess, SL_EV_PLAY, NULL);
}

static void admit_finish(srt_sess_t *s)
{
    if (s->admit_result) {
        s->srv->c.denied_total++;
        SL_LOGI(&s->sess.log, "srt %s refused: %s", s->sid.mode == SL_SRT_MODE_PUBLISH ? "publish" : "read",
                s->admit_reason[0] ? s->admit_reason : "denied");
        request_close(s, s->admit_reason[0] ? s->admit_reason : "denied");
        return;
    }
    sess_start(s);
}

static void admit_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    srt_sess_t *s = ud;
    s->admit_done = 1;
    s->admit_result = result;
    snprintf(s->admit_reason, sizeof s->admit_reason, "%s", reason ? reason : "");
    if (s->in_admit)
        return;
    if (s->admit == a) {
        s->admit = NULL;
        sl_admit_unref(a);
    }
    admit_finish(s);
}

static void adopt(sl__srt_server_t *srv, pending_t *p)
{
    sl_core_t *core = srv->core;
    srt_sess_t *s = sl_calloc(1, sizeof *s);
    if (!s) {
        srt_close(p->sock);
        open_release(srv, p->addr);
        return;
    }
    s->srv = srv;
    s->sock = p->sock;
    s->addr_counted = 1;
    s->accepted_ms = uv_now(core->loop);
    sl_list_push_back(&srv->sessions, &s->link);
    srv->n_sessions++;
    srv->c.connections_total++;
    sl_session_register(core, &s->sess, &g_sess_ops, "srt");
    snprintf(s->sess.remote_addr, sizeof s->sess.remote_addr, "%s", p->addr);
    s->sess.remote_port = p->port;
    int32_t km = 0;
    int kl = sizeof km;
    if (srt_getsockflag(s->sock, SRTO_KMSTATE, &km, &kl) == 0 && km == SRT_KM_S_SECURED)
        s->encrypted = 1;
    const char *why = NULL;
    if (sl_session_accept(core, &s->sess, &why)) {
        request_close(s, why ? why : "server busy");
        return;
    }
    const char *perr = NULL;
    if (sl_srt_streamid_parse(p->streamid, strlen(p->streamid), &s->sid, &perr)) {
        request_close(s, perr ? perr : "bad streamid");
        return;
    }
    s->ac_form = strncmp(p->streamid, "#!::", 4) == 0;
    if (sl_session_set_app(&s->sess, s->sid.scope) || sl_session_set_stream(&s->sess, s->sid.stream) ||
        sl_session_set_query(&s->sess, s->sid.query[0] ? s->sid.query : NULL)) {
        request_close(s, "out of memory");
        return;
    }
    int publish = s->sid.mode == SL_SRT_MODE_PUBLISH;
    sl_admit_req_t ar = {
        .kind = publish ? SL_ADMIT_PUBLISH : SL_ADMIT_PLAY,
        .app = s->sess.app,
        .stream = s->sess.stream,
        .transport = "srt",
        .query = s->sid.query[0] ? s->sid.query : NULL,
        .username = s->sid.user[0] ? s->sid.user : NULL,
        .password = s->sid.pass[0] ? s->sid.pass : NULL,
        .token = s->sid.token[0] ? s->sid.token : NULL,
        .publish_mode = publish ? "live" : NULL,
    };
    sl_admit_t *a = NULL;
    s->in_admit = 1;
    int rc = sl_admit(core, &s->sess, &ar, admit_done, s, &a);
    s->in_admit = 0;
    if (rc == SL_EPENDING) {
        s->admit = a;
        return;
    }
    if (rc == SL_OK && s->admit_done) {
        admit_finish(s);
        return;
    }
    request_close(s, "admission failed");
}

/* ------------------------------------------------------------------ */
/* loop callbacks                                                      */

static void tick_update(sl__srt_server_t *srv);

static void sweep(sl__srt_server_t *srv)
{
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &srv->sessions) {
        srt_sess_t *s = sl_container_of(it, srt_sess_t, link);
        if (s->q_on)
            pub_drain(s);
        if (s->thread_on && atomic_load(&s->thread_done) && !s->close_req) {
            s->close_req = 1;
            snprintf(s->close_reason, sizeof s->close_reason, "%s",
                     s->demux_rc == SL_EPROTO ? "not MPEG-TS (no program table found)"
                     : s->demux_rc == SL_ENOMEM ? "out of memory" : "publisher left");
        }
        if (s->close_req) {
            if (s->stream && srv->c.publishers_now)
                srv->c.publishers_now--;
            if (s->sink_on && srv->c.readers_now)
                srv->c.readers_now--;
            sess_close(s);
        }
    }
}

static void on_async(uv_async_t *h)
{
    sl__srt_server_t *srv = h->data;
    sl_list_t got;
    sl_list_init(&got);
    uv_mutex_lock(&srv->mu);
    while (!sl_list_empty(&srv->pending)) {
        sl_list_t *l = srv->pending.next;
        sl_list_remove(l);
        sl_list_push_back(&got, l);
    }
    uv_mutex_unlock(&srv->mu);
    while (!sl_list_empty(&got)) {
        pending_t *p = sl_container_of(got.next, pending_t, link);
        sl_list_remove(&p->link);
        if (atomic_load(&srv->stopping)) {
            srt_close(p->sock);
            open_release(srv, p->addr);
        } else {
            adopt(srv, p);
        }
        sl_free(p);
    }
    sweep(srv);
    tick_update(srv);
}

static void on_tick(uv_timer_t *t)
{
    sl__srt_server_t *srv = t->data;
    uint64_t now = uv_now(srv->core->loop);
    const sl_srt_config_t *sc = sl_srt_cfg(srv->core->cfg);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &srv->sessions) {
        srt_sess_t *s = sl_container_of(it, srt_sess_t, link);
        update_bytes(s);
        SRT_SOCKSTATUS ss = s->sock == SRT_INVALID_SOCK ? SRTS_CLOSED : srt_getsockstate(s->sock);
        if (ss == SRTS_BROKEN || ss == SRTS_CLOSED || ss == SRTS_NONEXIST)
            request_close(s, "connection lost");
        else if (s->state == ST_ADMITTING && now - s->accepted_ms > (uint64_t)sc->admission_timeout_ms)
            request_close(s, "admission timed out");
    }
    sweep(srv);
}

/* The tick runs only while there are sessions: an idle server costs no wake-ups. */
static void tick_update(sl__srt_server_t *srv)
{
    if (!srv->handles_open)
        return;
    int active = uv_is_active((uv_handle_t *)&srv->tick);
    if (srv->n_sessions && !active)
        uv_timer_start(&srv->tick, on_tick, TICK_MS, TICK_MS);
    else if (!srv->n_sessions && active)
        uv_timer_stop(&srv->tick);
}

/* ------------------------------------------------------------------ */
/* the "srt" service                                                   */

static void svc_counters(void *ud, sl_srt_counters_t *out, size_t out_size)
{
    sl__srt_server_t *srv = ud;
    sl_srt_counters_t c = srv->c;
    uv_mutex_lock(&srv->mu);
    c.rejected_total = srv->c.rejected_total;
    uv_mutex_unlock(&srv->mu);
    if (sl__ts_udp_running)
        sl__ts_udp_counters(sl__ts_udp_running, &c.udp_ts_bytes_in, &c.udp_ts_publishing);
    memcpy(out, &c, out_size < sizeof c ? out_size : sizeof c);
}

static const char *codec_label(uint32_t c)
{
    return c == SL_CODEC_AVC ? "H264" : c == SL_CODEC_HEVC ? "H265" : c == SL_CODEC_AAC ? "AAC"
         : c == SL_CODEC_OPUS ? "Opus" : "";
}

static int svc_session(void *ud, const char *id, sl_srt_session_stats_t *out, size_t out_size)
{
    sl__srt_server_t *srv = ud;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &srv->sessions) {
        srt_sess_t *s = sl_container_of(it, srt_sess_t, link);
        if (strcmp(s->sess.id, id) != 0)
            continue;
        sl_srt_session_stats_t o;
        memset(&o, 0, sizeof o);
        o.mode = s->sid.mode == SL_SRT_MODE_PUBLISH ? "publish" : "read";
        o.state = s->state == ST_ADMITTING ? "admitting" : s->state == ST_LIVE ? "live" : "closing";
        o.streamid_form = s->ac_form ? "access_control" : "plain";
        o.encrypted = s->encrypted;
        SRT_TRACEBSTATS b;
        if (s->sock != SRT_INVALID_SOCK && srt_bstats(s->sock, &b, 0) == 0) {
            o.latency_ms = s->sid.mode == SL_SRT_MODE_PUBLISH ? b.msRcvTsbPdDelay : b.msSndTsbPdDelay;
            o.rtt_ms = b.msRTT;
            o.bandwidth_mbps = b.mbpsBandwidth;
            o.send_rate_mbps = b.mbpsSendRate;
            o.recv_rate_mbps = b.mbpsRecvRate;
            o.packets_sent = (uint64_t)b.pktSentTotal;
            o.packets_received = (uint64_t)b.pktRecvTotal;
            o.packets_lost_send = (uint64_t)b.pktSndLossTotal;
            o.packets_lost_recv = (uint64_t)b.pktRcvLossTotal;
            o.packets_retransmitted = (uint64_t)b.pktRetransTotal;
            o.packets_dropped_send = (uint64_t)b.pktSndDropTotal;
            o.packets_dropped_recv = (uint64_t)b.pktRcvDropTotal;
            o.bytes_sent = b.byteSentTotal;
            o.bytes_received = b.byteRecvTotal;
        }
        uint64_t qd = 0;
        if (s->q_on) {
            uv_mutex_lock(&s->q.mu);
            qd = s->q.dropped;
            uv_mutex_unlock(&s->q.mu);
        }
        o.frames_dropped = s->frames_dropped + qd;
        uint32_t vc = 0, ac = 0;
        if (s->stream) {
            vc = s->stream->video_codec;
            ac = s->stream->audio_codec;
        } else if (s->sink_on && s->sink.stream) {
            vc = s->sink.stream->video_codec;
            ac = s->sink.stream->audio_codec;
        }
        o.video_codec = codec_label(vc);
        o.audio_codec = codec_label(ac);
        memcpy(out, &o, out_size < sizeof o ? out_size : sizeof o);
        return 0;
    }
    return SL_ENOTFOUND;
}

static const sl_svc_srt_t g_svc = {
    .counters = svc_counters,
    .session = svc_session,
};

/* ------------------------------------------------------------------ */
/* lifetime                                                            */

int sl__srt_server_start(sl_core_t *core, sl__srt_server_t **out)
{
    const sl_srt_config_t *sc = sl_srt_cfg(core->cfg);
    *out = NULL;
    sl__srt_server_t *srv = sl_calloc(1, sizeof *srv);
    if (!srv)
        return SL_ENOMEM;
    srv->core = core;
    srv->lsock = SRT_INVALID_SOCK;
    sl_list_init(&srv->pending);
    sl_list_init(&srv->sessions);
    sl_map_init(&srv->per_addr);
    if (uv_mutex_init(&srv->mu)) {
        sl_free(srv);
        return SL_ENOMEM;
    }
    srt_startup();
    srt_setloglevel(2 /* LOG_CRIT: libsrt's own lines would log peers' mistakes at error */);
    uv_async_init(core->loop, &srv->async, on_async);
    srv->async.data = srv;
    uv_timer_init(core->loop, &srv->tick);
    srv->tick.data = srv;
    srv->handles_open = 1;
    *out = srv; /* stop/free clean up whatever follows */

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    int salen;
    if (uv_ip4_addr(sc->bind, (int)sc->port, (struct sockaddr_in *)&ss) == 0)
        salen = sizeof(struct sockaddr_in);
    else if (uv_ip6_addr(sc->bind, (int)sc->port, (struct sockaddr_in6 *)&ss) == 0)
        salen = sizeof(struct sockaddr_in6);
    else {
        SL_LOGE(NULL, "srt: bad bind address %s", sc->bind);
        return SL_EINVAL;
    }
    srv->lsock = srt_create_socket();
    if (srv->lsock == SRT_INVALID_SOCK)
        return SL_EIO;
    int lat = (int)sc->latency_ms, cto = (int)sc->handshake_timeout_ms, yes = 1;
    int tt = SRTT_LIVE;
    srt_setsockflag(srv->lsock, SRTO_TRANSTYPE, &tt, sizeof tt);
    srt_setsockflag(srv->lsock, SRTO_LATENCY, &lat, sizeof lat);
    srt_setsockflag(srv->lsock, SRTO_CONNTIMEO, &cto, sizeof cto);
    srt_setsockflag(srv->lsock, SRTO_RCVSYN, &yes, sizeof yes);
    /* Readers are sent messages of payload_size bytes: libsrt refuses larger ones. */
    int ps = (int)(sc->payload_size / 188 * 188);
    srt_setsockflag(srv->lsock, SRTO_PAYLOADSIZE, &ps, sizeof ps);
    if (srt_bind(srv->lsock, (struct sockaddr *)&ss, salen) == SRT_ERROR ||
        srt_listen(srv->lsock, 128) == SRT_ERROR) {
        SL_LOGE(NULL, "srt: cannot listen on %s:%lld (udp): %s", sc->bind, (long long)sc->port,
                srt_getlasterror_str());
        return SL_EIO;
    }
    srt_listen_callback(srv->lsock, listen_cb, srv);
    if (uv_thread_create(&srv->accept_thread, accept_main, srv))
        return SL_ENOMEM;
    srv->accept_on = 1;
    int rc = sl_service_register(core, SL_SVC_SRT, SL_SVC_SRT_MAJOR, SL_SVC_SRT_MINOR, &g_svc, srv);
    if (rc)
        return rc;
    return 0;
}

void sl__srt_server_stop(sl__srt_server_t *srv)
{
    if (!srv)
        return;
    atomic_store(&srv->stopping, 1);
    sl_service_unregister(srv->core, SL_SVC_SRT, &g_svc);
    if (srv->lsock != SRT_INVALID_SOCK) {
        srt_close(srv->lsock); /* wakes srt_accept */
        srv->lsock = SRT_INVALID_SOCK;
    }
    if (srv->accept_on) {
        uv_thread_join(&srv->accept_thread);
        srv->accept_on = 0;
    }
    while (!sl_list_empty(&srv->sessions)) {
        srt_sess_t *s = sl_container_of(srv->sessions.next, srt_sess_t, link);
        if (!s->close_req) {
            s->close_req = 1;
            snprintf(s->close_reason, sizeof s->close_reason, "server shutting down");
        }
        sess_close(s);
    }
    srv->c.publishers_now = srv->c.readers_now = 0;
    while (!sl_list_empty(&srv->pending)) {
        pending_t *p = sl_container_of(srv->pending.next, pending_t, link);
        sl_list_remove(&p->link);
        srt_close(p->sock);
        sl_free(p);
    }
    if (srv->handles_open) {
        srv->handles_open = 0;
        uv_timer_stop(&srv->tick);
        uv_close((uv_handle_t *)&srv->tick, NULL);
        uv_close((uv_handle_t *)&srv->async, NULL);
    }
}

void sl__srt_server_free(sl__srt_server_t *srv)
{
    if (!srv)
        return;
    sl__srt_server_stop(srv);
    sl_map_cleanup(&srv->per_addr);
    uv_mutex_destroy(&srv->mu);
    sl_free(srv);
    srt_cleanup();
}
