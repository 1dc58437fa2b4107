/*
 * MPEG-TS over plain UDP ingest (Red5's mpegts ingest): each entry of
 * `mpegts.udp` ("[addr:]port=app/stream") is a UDP socket with a thread
 * that demuxes what arrives (ts_demux.h) and a publisher session on the
 * loop (protocol "mpegts") that exists while datagrams flow: the first
 * datagram starts the publish, mpegts.idle_timeout without one ends it.
 *
 * The protocol carries no credentials, so there is no admission chain:
 * the configuration is the authorisation (the entry names the stream, the
 * app must allow publishing). Bind to a trusted network (the default bind
 * is loopback). Budgets: one publisher per entry, frames capped at
 * mpegts.max_frame_size, the thread -> loop queue at mpegts.max_queue_bytes.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "app/events.h"
#include "app/listeners.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/str.h"
#include "base/time.h"
#include "proto/srt/srt_config.h"
#include "proto/srt/srt_internal.h"
#include "proto/srt/srt_streamid.h"
#include "proto/srt/ts_demux.h"
#include "sluice/errors.h"

#define MAX_ENTRIES 64
#define RECV_TIMEOUT_MS 200
#define DGRAM_MAX 65536

typedef struct entry {
    sl__ts_udp_t *u;
    char bind[64];
    int port;
    char path[SL_SRT_PATH_MAX + 1];
    char scope[SL_SRT_PATH_MAX + 1];
    char stream[SL_SRT_PATH_MAX + 1];
    int fd;
    uv_thread_t thread;
    int thread_on;
    atomic_int stop;
    atomic_uint gen_started, gen_ended; /* publishes the thread began / finished */
    atomic_ullong bytes_in;
    char peer[64];            /* source of the first datagram of the current publish (thread) */
    int peer_port;
    uint8_t *dgram;           /* thread: the current datagram */
    int dlen, doff;
    long long last_rx_ms;
    sl__srt_q_t q;
    int q_on;
    /* loop */
    unsigned gen;             /* the publish the session belongs to (0: none yet) */
    sl_session_t *sess;       /* open while publishing */
    sl_stream_t *stream_h;
    sl_audio_bridge_t *abridge;     /* Opus publisher: AAC for the hub, Opus for side players */
    int kicked;
} entry_t;

typedef struct ts_sess {
    sl_session_t sess;
    entry_t *e;
} ts_sess_t;

struct sl__ts_udp {
    sl_core_t *core;
    uv_async_t async;
    int async_on;
    entry_t *e[MAX_ENTRIES];
    int n;
};

sl__ts_udp_t *sl__ts_udp_running;

/* ------------------------------------------------------------------ */
/* thread                                                              */

static int udp_read(void *ud, uint8_t *buf, int size)
{
    entry_t *e = ud;
    const sl_mpegts_config_t *mc = sl_mpegts_cfg(__atomic_load_n(&e->u->core->cfg, __ATOMIC_ACQUIRE));
    while (e->doff >= e->dlen) {
        if (atomic_load(&e->stop))
            return 0;
        ssize_t n = recv(e->fd, e->dgram, DGRAM_MAX, 0);
        if (n > 0) {
            e->dlen = (int)n;
            e->doff = 0;
            e->last_rx_ms = (long long)sl_time_mono_ms();
            atomic_fetch_add(&e->bytes_in, (unsigned long long)n);
            break;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if ((long long)sl_time_mono_ms() - e->last_rx_ms > mc->idle_timeout_ms)
                return 0; /* the sender stopped: this publish ends */
            continue;
        }
        return -1;
    }
    int n = e->dlen - e->doff;
    if (n > size)
        n = size;
    memcpy(buf, e->dgram + e->doff, (size_t)n);
    e->doff += n;
    return n;
}

static void udp_frame(void *ud, uint8_t kind, int64_t dts_ms, sl_buf_t *body)
{
    entry_t *e = ud;
    if (sl__srt_q_push(&e->q, kind, dts_ms, body))
        uv_async_send(&e->u->async);
}

static void udp_main(void *arg)
{
    entry_t *e = arg;
    while (!atomic_load(&e->stop)) {
        /* Wait for the first datagram of a publish. */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        ssize_t n = recvfrom(e->fd, e->dgram, DGRAM_MAX, 0, (struct sockaddr *)&ss, &sl);
        if (n <= 0)
            continue;
        e->peer[0] = '\0';
        e->peer_port = 0;
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, e->peer, sizeof e->peer);
            e->peer_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, e->peer, sizeof e->peer);
            e->peer_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        atomic_fetch_add(&e->bytes_in, (unsigned long long)n);
        e->dlen = (int)n;
        e->doff = 0;
        e->last_rx_ms = (long long)sl_time_mono_ms();
        atomic_fetch_add(&e->gen_started, 1);
        uv_async_send(&e->u->async);
        const sl_mpegts_config_t *mc = sl_mpegts_cfg(__atomic_load_n(&e->u->core->cfg, __ATOMIC_ACQUIRE));
        sl_ts_demux_t *d = sl_ts_demux_new(udp_read, udp_frame, e, (size_t)mc->max_frame_size);
        if (d) {
            sl_ts_demux_run(d);
            sl_ts_demux_free(d);
        }
        /* What the demuxer left unread belongs to no publish. */
        e->dlen = e->doff = 0;
        atomic_fetch_add(&e->gen_ended, 1);
        uv_async_send(&e->u->async);
    }
}

/* ------------------------------------------------------------------ */
/* loop                                                                */

static void ts_kick(sl_session_t *s, const char *reason)
{
    (void)reason;
    ts_sess_t *t = (ts_sess_t *)s;
    t->e->kicked = 1;
    uv_async_send(&t->e->u->async);
}

static const sl_session_ops_t g_ops = {
    .kick = ts_kick,
    .shutdown = NULL,
};

static void end_publish(entry_t *e, const char *reason)
{
    sl_core_t *core = e->u->core;
    if (!e->sess)
        return;
    sl_audio_bridge_free(e->abridge); /* before the unpublish: it pushes to the stream */
    e->abridge = NULL;
    if (e->stream_h) {
        SL_LOGI(e->sess ? &e->sess->log : NULL, "mpegts publish stopped (%llu frames)",
                (unsigned long long)e->stream_h->stats.frames_in);
        sl_stream_unpublish(e->stream_h);
        e->stream_h = NULL;
        sl_events_emit_session(core, e->sess, SL_EV_UNPUBLISH, reason);
        sl_session_set_role(e->sess, SL_ROLE_NONE);
    }
    sl_events_emit_session(core, e->sess, SL_EV_DISCONNECT, reason);
    sl_session_unregister(core, e->sess);
    sl_free(e->sess);
    e->sess = NULL;
}

static void begin_publish(entry_t *e)
{
    sl_core_t *core = e->u->core;
    const sl_app_config_t *app = sl_core_app(core, e->scope);
    if (!app || !app->allow_publish) {
        SL_LOGW(NULL, "mpegts: udp port %d: app %s does not exist or refuses publishing", e->port, e->scope);
        return;
    }
    ts_sess_t *t = sl_calloc(1, sizeof *t);
    if (!t)
        return;
    t->e = e;
    sl_session_t *s = &t->sess;
    s->socketless = 1; /* one socket serves every publish of the entry */
    sl_session_register(core, s, &g_ops, "mpegts");
    snprintf(s->remote_addr, sizeof s->remote_addr, "%s", e->peer);
    s->remote_port = e->peer_port;
    e->sess = s;
    if (sl_session_set_app(s, e->scope) || sl_session_set_stream(s, e->stream)) {
        end_publish(e, "out of memory");
        return;
    }
    sl_events_emit_session(core, s, SL_EV_CONNECT, NULL);
    sl_stream_t *st;
    int rc = sl_hub_publish(core->hub, e->path, s, &st);
    if (rc) {
        SL_LOGI(&s->log, "mpegts publish refused: %s", rc == SL_EBUSY ? "stream is already being published"
                                                                     : sl_strerror(rc));
        end_publish(e, "stream busy");
        return;
    }
    e->stream_h = st;
    s->publish_mode = SL_PUBLISH_LIVE;
    sl_session_set_role(s, SL_ROLE_PUBLISHER);
    SL_LOGI(&s->log, "mpegts publish started (udp port %d, from %s:%d)", e->port, e->peer, e->peer_port);
    sl_events_emit_session(core, s, SL_EV_PUBLISH, NULL);
}

static void on_async(uv_async_t *h)
{
    sl__ts_udp_t *u = h->data;
    for (int i = 0; i < u->n; i++) {
        entry_t *e = u->e[i];
        unsigned started = atomic_load(&e->gen_started), ended = atomic_load(&e->gen_ended);
        if (e->gen != started && started > ended) {
            /* A new publish began (an older one, if any, ended first). */
            end_publish(e, "publisher left");
            e->gen = started;
            e->kicked = 0;
            begin_publish(e);
        }
        sl_list_t items;
        sl_list_init(&items);
        sl__srt_q_take(&e->q, &items);
        uint64_t bytes = sl__srt_push_items(e->kicked ? NULL : e->stream_h, &e->abridge, e->u->core->loop,
                                            e->sess ? &e->sess->log : NULL, &items);
        if (e->sess)
            e->sess->bytes_in += bytes, e->sess->msgs_in++;
        if (e->kicked && e->sess)
            end_publish(e, "kicked");
        if (ended >= started && e->sess)
            end_publish(e, "publisher left");
    }
}

/* ------------------------------------------------------------------ */
/* lifetime                                                            */

/* Parses one "[addr:]port=app/stream" item into e. 0 or SL_EINVAL. */
static int parse_entry(const char *p, size_t n, const char *def_bind, entry_t *e)
{
    char item[600];
    if (n >= sizeof item)
        return SL_EINVAL;
    memcpy(item, p, n);
    item[n] = '\0';
    char *eq = strchr(item, '=');
    if (!eq)
        return SL_EINVAL;
    *eq = '\0';
    char *colon = strrchr(item, ':');
    const char *port_s = colon ? colon + 1 : item;
    if (colon) {
        *colon = '\0';
        const char *b = item[0] == '[' ? item + 1 : item;
        if (strlen(b) >= sizeof e->bind)
            return SL_EINVAL;
        memcpy(e->bind, b, strlen(b) + 1);
        char *rb = strchr(e->bind, ']');
        if (rb)
            *rb = '\0';
    } else {
        if (strlen(def_bind) >= sizeof e->bind)
            return SL_EINVAL;
        memcpy(e->bind, def_bind, strlen(def_bind) + 1);
    }
    char *end;
    long port = strtol(port_s, &end, 10);
    if (*end || port < 1 || port > 65535)
        return SL_EINVAL;
    e->port = (int)port;
    char sid[SL_SRT_PATH_MAX + 16];
    snprintf(sid, sizeof sid, "publish:%s", eq + 1);
    sl_srt_streamid_t s;
    if (sl_srt_streamid_parse(sid, strlen(sid), &s, NULL) || s.query[0])
        return SL_EINVAL;
    snprintf(e->path, sizeof e->path, "%s", s.path);
    snprintf(e->scope, sizeof e->scope, "%s", s.scope);
    snprintf(e->stream, sizeof e->stream, "%s", s.stream);
    return 0;
}

static int open_socket(entry_t *e)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t salen;
    if (uv_ip4_addr(e->bind, e->port, (struct sockaddr_in *)&ss) == 0)
        salen = sizeof(struct sockaddr_in);
    else if (uv_ip6_addr(e->bind, e->port, (struct sockaddr_in6 *)&ss) == 0)
        salen = sizeof(struct sockaddr_in6);
    else
        return SL_EINVAL;
    e->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (e->fd < 0)
        return SL_EIO;
    struct timeval tv = {0, RECV_TIMEOUT_MS * 1000};
    setsockopt(e->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int rcvbuf = 4 << 20;
    setsockopt(e->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (bind(e->fd, (struct sockaddr *)&ss, salen) != 0)
        return SL_EIO;
    return 0;
}

int sl__ts_udp_start(sl_core_t *core, sl__ts_udp_t **out)
{
    const sl_mpegts_config_t *mc = sl_mpegts_cfg(core->cfg);
    *out = NULL;
    sl__ts_udp_t *u = sl_calloc(1, sizeof *u);
    if (!u)
        return SL_ENOMEM;
    u->core = core;
    *out = u;
    uv_async_init(core->loop, &u->async, on_async);
    u->async.data = u;
    u->async_on = 1;
    const char *cur = mc->udp;
    const char *item;
    size_t len;
    while ((item = sl_list_next(&cur, &len)) != NULL) {
        if (u->n >= MAX_ENTRIES) {
            SL_LOGE(NULL, "mpegts: more than %d udp entries", MAX_ENTRIES);
            return SL_ETOOBIG;
        }
        entry_t *e = sl_calloc(1, sizeof *e);
        if (!e)
            return SL_ENOMEM;
        e->fd = -1;
        e->u = u;
        u->e[u->n++] = e;
        if (parse_entry(item, len, mc->bind, e)) {
            SL_LOGE(NULL, "mpegts: bad udp entry '%.*s' (want [addr:]port=app/stream)", (int)len, item);
            return SL_EINVAL;
        }
        if (!(e->dgram = sl_malloc(DGRAM_MAX)) || sl__srt_q_init(&e->q, (size_t)mc->max_queue_bytes))
            return SL_ENOMEM;
        e->q_on = 1;
        if (open_socket(e)) {
            SL_LOGE(NULL, "mpegts: cannot listen on udp %s:%d: %s", e->bind, e->port, strerror(errno));
            return SL_EIO;
        }
        if (uv_thread_create(&e->thread, udp_main, e))
            return SL_ENOMEM;
        e->thread_on = 1;
        SL_LOGI(NULL, "mpegts: udp %s:%d publishes to %s (no authentication: trusted networks only)",
                e->bind, e->port, e->path);
    }
    sl__ts_udp_running = u;
    return 0;
}

void sl__ts_udp_counters(const sl__ts_udp_t *u, uint64_t *bytes_in, uint64_t *publishing)
{
    *bytes_in = 0;
    *publishing = 0;
    for (int i = 0; i < u->n; i++) {
        *bytes_in += atomic_load(&u->e[i]->bytes_in);
        *publishing += u->e[i]->stream_h != NULL;
    }
}

void sl__ts_udp_stop(sl__ts_udp_t *u)
{
    if (!u)
        return;
    for (int i = 0; i < u->n; i++) {
        entry_t *e = u->e[i];
        atomic_store(&e->stop, 1);
        if (e->thread_on) {
            uv_thread_join(&e->thread); /* within RECV_TIMEOUT_MS */
            e->thread_on = 0;
        }
        end_publish(e, "server shutting down");
    }
    if (u->async_on) {
        u->async_on = 0;
        uv_close((uv_handle_t *)&u->async, NULL);
    }
}

void sl__ts_udp_free(sl__ts_udp_t *u)
{
    if (!u)
        return;
    sl__ts_udp_stop(u);
    if (sl__ts_udp_running == u)
        sl__ts_udp_running = NULL;
    for (int i = 0; i < u->n; i++) {
        entry_t *e = u->e[i];
        if (e->fd >= 0)
            close(e->fd);
        if (e->q_on)
            sl__srt_q_cleanup(&e->q);
        sl_free(e->dgram);
        sl_free(e);
    }
    sl_free(u);
}
