/*
 * so-load: the shared-object load tool of bench/so (issue 15). N subscribers,
 * a mix of RTMP clients (AMF0 Remote Shared Object messages, type 19) and
 * WebSocket clients (Red5's JSON messages on ws://host:port/{app}/?id=...),
 * join one object; one RTMP writer sets the key "t" to its send time
 * (CLOCK_MONOTONIC in microseconds, an AMF number) RATE times a second; every
 * subscriber computes arrival - stamp for every change it gets (the same
 * machine clock, so no clock offset) and checks the object's version moves by
 * exactly one per change (a gap is an update lost).
 *
 *   so-load --rtmp-port P --http-port H [--app live] [--name bench]
 *           [--rtmp N] [--ws M] [--rate 100] [--seconds 20] [--warmup 3]
 *           [--workers K] [--addrs A] [--connect-rate 500] [--pid SERVER_PID]
 *
 * The subscribers are spread over K worker processes (fork; each one libuv
 * loop) so that the tool's own reading does not become the latency it
 * measures; the writer runs alone in the parent. Connections come from
 * 127.0.0.1 .. 127.0.0.A (bound before connect) when per-address limits
 * would bite. The arrival time is taken when the read callback starts, once
 * per read: it holds kernel + server + wake-up of the tool, not the tool's
 * parsing of what came before in the same read.
 *
 * The sequence: connect every subscriber (RTMP: plain handshake, connect,
 * SO connect and its initial data; WebSocket: upgrade, sharedObjectConnect
 * and its Connect status), then the writer starts; after --warmup seconds
 * a --seconds window measures latency (histogram: 1 us buckets to 1 s, 1 ms
 * buckets to 101 s), versions missed, server CPU (utime + stime of --pid from
 * /proc/PID/stat over the window) and RSS at the end; the writer stops, 2 s
 * drain, then each subscriber's last version is compared with the writer's
 * last (updates lost at the tail). Prints one JSON object on stdout.
 *
 * Not part of sluice: a bench tool built only on request (CMake target
 * so-load); it depends on libuv and libc only, and shares no code with the
 * server's RTMP or WebSocket implementation.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define HIST_US 1000000          /* 1 us buckets up to 1 s, */
#define HIST_MS 100000           /* then 1 ms buckets up to 101 s, then one overflow bucket */
#define HIST_N (HIST_US + HIST_MS + 1)
#define IN_CAP (256 * 1024)      /* a connection's unparsed input, hard cap */
#define MAX_CSID 320
#define MAX_MSG (64 * 1024)      /* largest RTMP message accepted */

enum { K_RTMP = 0, K_WS = 1, K_WRITER = 2 };

/* Shared between the parent and the workers (one anonymous shared mapping). */
typedef struct {
    uint32_t hist[3][HIST_N]; /* rtmp, ws, the writer's own lateness */
    uint64_t count[3], sum_us[3], max_us[3];
    uint64_t gaps[2], lost[2], tail_lost[2], dup[2];
    uint64_t joined[2], failed[2], closed[2];
    volatile int measuring, writing, done;
    volatile uint64_t last_version; /* the writer's, after its last set */
} shm_t;

static shm_t *g_shm;

static size_t bucket(uint64_t us)
{
    if (us < HIST_US)
        return (size_t)us;
    uint64_t ms = (us - HIST_US) / 1000u;
    return HIST_US + (size_t)(ms < HIST_MS ? ms : HIST_MS);
}

static uint64_t bucket_us(size_t i)
{
    return i < HIST_US ? i : HIST_US + (uint64_t)(i - HIST_US) * 1000u;
}

typedef struct {
    uint32_t ts, len, type, msid, got;
    uint8_t *buf;
} csid_t;

typedef struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    int kind, idx, state, joined, dead;
    uint8_t *in;
    size_t in_len;
    /* rtmp */
    uint32_t in_chunk, ack_window;
    uint64_t bytes_in, acked_at;
    csid_t *cs;
    /* versions */
    int have_version;
    uint64_t last_version;
} conn_t;

enum { ST_TCP, ST_HS, ST_CONNECTING, ST_SOJOIN, ST_UP, ST_WS_UPGRADE };

static struct {
    const char *host, *app, *name;
    int rtmp_port, http_port, n_rtmp, n_ws, rate, seconds, warmup, workers, addrs, connect_rate;
    long pid;
} o = {"127.0.0.1", "live", "bench", 0, 0, 500, 500, 100, 20, 3, 2, 1, 500, 0};

static uv_loop_t *g_loop;
static conn_t *g_conns;
static int g_n_conns, g_next_open;
static conn_t *g_writer;
static uv_timer_t g_open_t;
static uint64_t g_sent;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint32_t be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static void put24(uint8_t *p, uint32_t v) { p[0] = v >> 16; p[1] = v >> 8; p[2] = v; }
static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }

static void amax(uint64_t *p, uint64_t v)
{
    uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (v > cur && !__atomic_compare_exchange_n(p, &cur, v, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

static void add(uint64_t *p, uint64_t v) { __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }

/* One change seen by a subscriber: version bookkeeping always, latency only in the window. */
static void on_change(conn_t *c, uint64_t version, double stamp_us, uint64_t arrival_us)
{
    int k = c->kind;
    if (c->have_version) {
        if (version <= c->last_version) {
            add(&g_shm->dup[k], 1);
            return;
        }
        if (version > c->last_version + 1 && g_shm->measuring) {
            add(&g_shm->gaps[k], 1);
            add(&g_shm->lost[k], version - c->last_version - 1);
        }
    }
    c->have_version = 1;
    c->last_version = version;
    if (!g_shm->measuring || stamp_us <= 0)
        return;
    double d = (double)arrival_us - stamp_us;
    uint64_t us = d < 0 ? 0 : (uint64_t)d;
    __atomic_fetch_add(&g_shm->hist[k][bucket(us)], 1, __ATOMIC_RELAXED);
    add(&g_shm->count[k], 1);
    add(&g_shm->sum_us[k], us);
    amax(&g_shm->max_us[k], us);
}

static void mark_joined(conn_t *c)
{
    if (!c->joined) {
        c->joined = 1;
        if (c->kind != K_WRITER)
            add(&g_shm->joined[c->kind], 1);
    }
}

/* ---- writing ---- */

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
} wreq_t;

static void on_written(uv_write_t *r, int status)
{
    (void)status;
    wreq_t *w = (wreq_t *)r;
    free(w->buf.base);
    free(w);
}

static void send_bytes(conn_t *c, const void *p, size_t n)
{
    if (c->dead)
        return;
    wreq_t *w = malloc(sizeof *w);
    w->buf = uv_buf_init(malloc(n), (unsigned)n);
    memcpy(w->buf.base, p, n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, on_written) < 0) {
        free(w->buf.base);
        free(w);
    }
}

/* One RTMP message in chunks of 4096 (we announce that size first). */
static void rtmp_send(conn_t *c, int csid, uint8_t type, uint32_t msid, const uint8_t *p, size_t n)
{
    uint8_t out[MAX_MSG + 1024];
    size_t o_len = 0;
    if (n > MAX_MSG)
        return;
    out[o_len++] = (uint8_t)csid; /* fmt 0 */
    put24(out + o_len, 0);
    put24(out + o_len + 3, (uint32_t)n);
    out[o_len + 6] = type;
    out[o_len + 7] = msid & 0xff; /* little endian stream id */
    out[o_len + 8] = (msid >> 8) & 0xff;
    out[o_len + 9] = (msid >> 16) & 0xff;
    out[o_len + 10] = (msid >> 24) & 0xff;
    o_len += 11;
    for (size_t off = 0; off < n; off += 4096) {
        if (off)
            out[o_len++] = (uint8_t)(0xc0 | csid);
        size_t k = n - off < 4096 ? n - off : 4096;
        memcpy(out + o_len, p + off, k);
        o_len += k;
    }
    send_bytes(c, out, o_len);
}

static size_t amf_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    p[0] = 0x02;
    put16(p + 1, (uint16_t)n);
    memcpy(p + 3, s, n);
    return 3 + n;
}

static size_t amf_num(uint8_t *p, double v)
{
    uint64_t b;
    memcpy(&b, &v, 8);
    p[0] = 0x00;
    for (int i = 0; i < 8; i++)
        p[1 + i] = (uint8_t)(b >> (56 - 8 * i));
    return 9;
}

static size_t amf_key(uint8_t *p, const char *k)
{
    size_t n = strlen(k);
    put16(p, (uint16_t)n);
    memcpy(p + 2, k, n);
    return 2 + n;
}

static void rtmp_send_connect(conn_t *c)
{
    uint8_t cs[4];
    put32(cs, 4096);
    rtmp_send(c, 2, 1, 0, cs, 4);
    uint8_t b[1024];
    size_t n = 0;
    char tc[256];
    snprintf(tc, sizeof tc, "rtmp://%s:%d/%s", o.host, o.rtmp_port, o.app);
    n += amf_str(b + n, "connect");
    n += amf_num(b + n, 1);
    b[n++] = 0x03;
    n += amf_key(b + n, "app");
    n += amf_str(b + n, o.app);
    n += amf_key(b + n, "tcUrl");
    n += amf_str(b + n, tc);
    n += amf_key(b + n, "flashVer");
    n += amf_str(b + n, "LNX 9,0,124,2");
    n += amf_key(b + n, "objectEncoding");
    n += amf_num(b + n, 0);
    b[n++] = 0;
    b[n++] = 0;
    b[n++] = 9;
    rtmp_send(c, 3, 20, 0, b, n);
}

/* A client SO message with one event: connect (1) or set "t" (3). */
static void rtmp_send_so(conn_t *c, int event, double value)
{
    uint8_t b[512];
    size_t n = amf_key(b, o.name);
    put32(b + n, 0);
    put32(b + n + 4, 0);
    put32(b + n + 8, 0);
    n += 12;
    b[n] = (uint8_t)event;
    size_t len_at = n + 1;
    n += 5;
    size_t body = n;
    if (event == 3) {
        n += amf_key(b + n, "t");
        n += amf_num(b + n, value);
    }
    put32(b + len_at, (uint32_t)(n - body));
    rtmp_send(c, 3, 19, 0, b, n);
}

/* ---- RTMP input ---- */

static int rtmp_on_so(conn_t *c, const uint8_t *p, size_t n, uint64_t arrival)
{
    if (n < 2 || (size_t)2 + be16(p) + 12 > n)
        return -1;
    size_t pos = 2 + be16(p);
    uint64_t version = be32(p + pos);
    pos += 12;
    while (pos + 5 <= n) {
        uint8_t t = p[pos];
        uint32_t len = be32(p + pos + 1);
        pos += 5;
        if (len > n - pos)
            return -1;
        const uint8_t *e = p + pos;
        if (t == 11) { /* initial data */
            c->have_version = 1;
            c->last_version = version;
            mark_joined(c);
        } else if (t == 7 && len >= 2) {
            fprintf(stderr, "so-load: conn %d: status %.*s\n", c->idx, (int)be16(e), (const char *)e + 2);
        } else if (t == 4 && c->kind != K_WRITER && len >= 2) {
            size_t kl = be16(e);
            if (2 + kl + 9 <= len && kl == 1 && e[2] == 't' && e[3] == 0x00) {
                uint64_t b = 0;
                for (int i = 0; i < 8; i++)
                    b = b << 8 | e[4 + i];
                double v;
                memcpy(&v, &b, 8);
                on_change(c, version, v, arrival);
            }
        } else if (t == 5 && c->kind == K_WRITER) {
            g_shm->last_version = version;
        }
        pos += len;
    }
    return 0;
}

static void rtmp_on_message(conn_t *c, uint32_t type, const uint8_t *p, size_t n, uint64_t arrival)
{
    if (type == 1 && n >= 4) {
        c->in_chunk = be32(p) & 0x7fffffff;
        if (c->in_chunk < 1 || c->in_chunk > MAX_MSG)
            c->in_chunk = MAX_MSG;
    } else if (type == 5 && n >= 4) {
        c->ack_window = be32(p);
    } else if (type == 20 && c->state == ST_CONNECTING) {
        if (n > 10 && !memcmp(p + 3, "_result", 7)) {
            c->state = ST_SOJOIN;
            rtmp_send_so(c, 1, 0);
        } else if (n > 9 && !memcmp(p + 3, "_error", 6)) {
            fprintf(stderr, "so-load: conn %d: connect refused\n", c->idx);
            add(&g_shm->failed[c->kind == K_WS ? 1 : 0], 1);
        }
    } else if (type == 19) {
        rtmp_on_so(c, p, n, arrival);
    }
}

/* Parses every complete chunk in c->in; returns bytes consumed or -1. */
static long rtmp_parse(conn_t *c, uint64_t arrival)
{
    size_t pos = 0;
    for (;;) {
        const uint8_t *p = c->in + pos;
        size_t avail = c->in_len - pos, h = 1;
        if (avail < 1)
            break;
        int fmt = p[0] >> 6;
        uint32_t csid = p[0] & 0x3f;
        if (csid == 0) {
            if (avail < 2)
                break;
            csid = 64 + p[1];
            h = 2;
        } else if (csid == 1) {
            if (avail < 3)
                break;
            csid = 64 + p[1] + 256u * p[2];
            h = 3;
        }
        if (csid >= MAX_CSID)
            return -1;
        csid_t *s = &c->cs[csid];
        static const int mh[4] = {11, 7, 3, 0};
        if (avail < h + mh[fmt])
            break;
        const uint8_t *m = p + h;
        uint32_t ts = s->ts, len = s->len, type = s->type, msid = s->msid;
        if (fmt <= 2)
            ts = be24(m);
        if (fmt <= 1) {
            len = be24(m + 3);
            type = m[6];
        }
        if (fmt == 0)
            msid = m[7] | m[8] << 8 | m[9] << 16 | (uint32_t)m[10] << 24;
        h += mh[fmt];
        int ext = (fmt <= 2 && ts == 0xffffff) || (fmt == 3 && s->ts == 0xffffff);
        if (ext) {
            if (avail < h + 4)
                break;
            h += 4;
        }
        if (len > MAX_MSG)
            return -1;
        uint32_t got = (fmt == 3) ? s->got : 0;
        if (fmt != 3 && s->got) /* a new message header while one is partial: drop it */
            got = 0;
        uint32_t k = len - got < c->in_chunk ? len - got : c->in_chunk;
        if (avail < h + k)
            break;
        s->ts = ts;
        s->len = len;
        s->type = type;
        s->msid = msid;
        if (!s->buf)
            s->buf = malloc(MAX_MSG);
        memcpy(s->buf + got, p + h, k);
        s->got = got + k;
        pos += h + k;
        if (s->got >= s->len) {
            s->got = 0;
            rtmp_on_message(c, s->type, s->buf, s->len, arrival);
        }
    }
    return (long)pos;
}

/* ---- WebSocket ---- */

static void ws_send_text(conn_t *c, const char *s)
{
    size_t n = strlen(s);
    uint8_t b[1024];
    size_t h = 2;
    b[0] = 0x81;
    if (n < 126) {
        b[1] = 0x80 | (uint8_t)n;
    } else {
        b[1] = 0x80 | 126;
        put16(b + 2, (uint16_t)n);
        h = 4;
    }
    uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(b + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        b[h + i] = (uint8_t)s[i] ^ mask[i & 3];
    send_bytes(c, b, h + n);
}

static void ws_on_text(conn_t *c, const char *s, size_t n, uint64_t arrival)
{
    char tmp[4096];
    if (n >= sizeof tmp)
        n = sizeof tmp - 1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    if (strstr(tmp, "\"SharedObject.Status.Connect\"")) {
        if (strstr(tmp, "\"Success\"")) {
            const char *v = strstr(tmp, "\"version\":");
            if (v) {
                c->have_version = 1;
                c->last_version = strtoull(v + 10, NULL, 10);
            }
            mark_joined(c);
        } else {
            fprintf(stderr, "so-load: ws %d: %s\n", c->idx, tmp);
            add(&g_shm->failed[1], 1);
        }
        return;
    }
    if (!strstr(tmp, "\"sharedobject\"")) {
        if (strstr(tmp, "error") || strstr(tmp, "Fail"))
            fprintf(stderr, "so-load: ws %d: %s\n", c->idx, tmp);
        return;
    }
    const char *v = strstr(tmp, "\"version\":");
    const char *sub = strstr(tmp, "\"subtype\":4");
    const char *val = strstr(tmp, "\"value\":");
    if (!v || !sub || !val)
        return;
    on_change(c, strtoull(v + 10, NULL, 10), strtod(val + 8, NULL), arrival);
}

/* Parses complete frames in c->in; returns bytes consumed or -1. */
static long ws_parse(conn_t *c, uint64_t arrival)
{
    size_t pos = 0;
    if (c->state == ST_WS_UPGRADE) {
        uint8_t *e = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!e)
            return 0;
        if (c->in_len < 12 || memcmp(c->in + 9, "101", 3)) {
            fprintf(stderr, "so-load: ws %d: upgrade refused: %.40s\n", c->idx, (char *)c->in);
            add(&g_shm->failed[1], 1);
            return -1;
        }
        pos = (size_t)(e - c->in) + 4;
        c->state = ST_SOJOIN;
        char m[512];
        snprintf(m, sizeof m, "{\"sharedObjectConnect\":{\"name\":\"%s\"}}", o.name);
        ws_send_text(c, m);
    }
    for (;;) {
        const uint8_t *p = c->in + pos;
        size_t avail = c->in_len - pos;
        if (avail < 2)
            break;
        int op = p[0] & 0x0f;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (avail < 4)
                break;
            len = be16(p + 2);
            h = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = (uint64_t)be32(p + 2) << 32 | be32(p + 6);
            h = 10;
        }
        if (p[1] & 0x80 || len > MAX_MSG)
            return -1;
        if (avail < h + len)
            break;
        if (op == 1)
            ws_on_text(c, (const char *)p + h, (size_t)len, arrival);
        else if (op == 9) { /* ping: pong with the same payload, masked */
            uint8_t b[140];
            if (len <= 125) {
                b[0] = 0x8a;
                b[1] = 0x80 | (uint8_t)len;
                memset(b + 2, 0, 4);
                memcpy(b + 6, p + h, (size_t)len);
                send_bytes(c, b, 6 + (size_t)len);
            }
        } else if (op == 8) {
            return -1;
        }
        pos += h + (size_t)len;
    }
    return (long)pos;
}

/* ---- connections ---- */

static void on_closed(uv_handle_t *h) { (void)h; }

static void conn_fail(conn_t *c, const char *why)
{
    if (c->dead)
        return;
    c->dead = 1;
    if (!g_shm->done) {
        fprintf(stderr, "so-load: %s %d: %s\n", c->kind == K_WS ? "ws" : "rtmp", c->idx, why);
        add(&g_shm->closed[c->kind == K_WS ? 1 : 0], 1);
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    conn_t *c = h->data;
    b->base = (char *)c->in + c->in_len;
    b->len = IN_CAP - c->in_len;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    uint64_t arrival = now_us();
    conn_t *c = st->data;
    if (nread < 0) {
        conn_fail(c, uv_strerror((int)nread));
        return;
    }
    c->in_len += (size_t)nread;
    c->bytes_in += (uint64_t)nread;
    long used;
    if (c->kind == K_WS) {
        used = ws_parse(c, arrival);
    } else if (c->state == ST_HS) {
        used = 0;
        if (c->in_len >= 1 + 1536 + 1536) {
            send_bytes(c, c->in + 1, 1536); /* C2 = S1 */
            used = 1 + 1536 + 1536;
            c->state = ST_CONNECTING;
            rtmp_send_connect(c);
            memmove(c->in, c->in + used, c->in_len - (size_t)used);
            c->in_len -= (size_t)used;
            used = rtmp_parse(c, arrival);
        }
    } else {
        used = rtmp_parse(c, arrival);
    }
    if (used < 0) {
        conn_fail(c, "protocol error or closed by the server");
        return;
    }
    if (used) {
        memmove(c->in, c->in + used, c->in_len - (size_t)used);
        c->in_len -= (size_t)used;
    }
    if (c->in_len >= IN_CAP) {
        conn_fail(c, "input over cap");
        return;
    }
    if (c->kind != K_WS && c->ack_window && c->bytes_in - c->acked_at >= c->ack_window / 2) {
        uint8_t a[4];
        put32(a, (uint32_t)c->bytes_in);
        rtmp_send(c, 2, 3, 0, a, 4);
        c->acked_at = c->bytes_in;
    }
}

static void on_connect(uv_connect_t *r, int status)
{
    conn_t *c = r->data;
    if (status < 0) {
        conn_fail(c, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (c->kind == K_WS) {
        char req[512];
        int n = snprintf(req, sizeof req,
                         "GET /%s/?id=so-load-%d HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         o.app, c->idx, o.host, o.http_port);
        c->state = ST_WS_UPGRADE;
        send_bytes(c, req, (size_t)n);
    } else {
        uint8_t c0c1[1537];
        c0c1[0] = 3;
        memset(c0c1 + 1, 0, 8);
        for (int i = 9; i < 1537; i++)
            c0c1[i] = (uint8_t)rand();
        c->state = ST_HS;
        send_bytes(c, c0c1, sizeof c0c1);
    }
}

static void conn_open(conn_t *c)
{
    c->in = malloc(IN_CAP);
    c->in_chunk = 128;
    if (c->kind != K_WS)
        c->cs = calloc(MAX_CSID, sizeof *c->cs);
    uv_tcp_init(g_loop, &c->tcp);
    c->tcp.data = c;
    c->creq.data = c;
    struct sockaddr_in src, dst;
    char a[32];
    snprintf(a, sizeof a, "127.0.0.%d", 1 + c->idx % o.addrs);
    uv_ip4_addr(a, 0, &src);
    uv_tcp_bind(&c->tcp, (struct sockaddr *)&src, 0);
    uv_ip4_addr(o.host, c->kind == K_WS ? o.http_port : o.rtmp_port, &dst);
    int rc = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&dst, on_connect);
    if (rc < 0)
        conn_fail(c, uv_strerror(rc));
}

/* Opens connections at --connect-rate (shared among the workers). */
static void on_open_timer(uv_timer_t *t)
{
    int per_tick = o.connect_rate / 100 / o.workers;
    if (per_tick < 1)
        per_tick = 1;
    for (int i = 0; i < per_tick && g_next_open < g_n_conns; i++)
        conn_open(&g_conns[g_next_open++]);
    if (g_next_open >= g_n_conns)
        uv_timer_stop(t);
}

static void on_done_timer(uv_timer_t *t)
{
    if (!g_shm->done)
        return;
    /* updates lost at the tail: every subscriber should be at the writer's last version */
    for (int i = 0; i < g_n_conns; i++) {
        conn_t *c = &g_conns[i];
        if (c->joined && !c->dead && c->last_version < g_shm->last_version)
            add(&g_shm->tail_lost[c->kind], g_shm->last_version - c->last_version);
        if (c->in && !c->dead) { /* opened and not closed yet */
            c->dead = 1;
            uv_close((uv_handle_t *)&c->tcp, on_closed);
        }
    }
    if (uv_is_active((uv_handle_t *)&g_open_t))
        uv_timer_stop(&g_open_t);
    uv_close((uv_handle_t *)&g_open_t, NULL);
    uv_close((uv_handle_t *)t, NULL);
}

static void worker_run(int w)
{
    g_loop = uv_default_loop();
    int n_total = o.n_rtmp + o.n_ws;
    g_conns = calloc((size_t)n_total, sizeof *g_conns);
    for (int i = 0; i < n_total; i++) {
        if (i % o.workers != w)
            continue;
        conn_t *c = &g_conns[g_n_conns++];
        c->idx = i + 1;
        /* interleave the carriers so both see the same position in the fan-out */
        int ws = o.n_rtmp == 0 ? 1 : o.n_ws == 0 ? 0 : ((long)i * o.n_ws / n_total != (long)(i + 1) * o.n_ws / n_total);
        c->kind = ws ? K_WS : K_RTMP;
    }
    uv_timer_t done_t;
    uv_timer_init(g_loop, &g_open_t);
    uv_timer_start(&g_open_t, on_open_timer, 0, 10);
    uv_timer_init(g_loop, &done_t);
    uv_timer_start(&done_t, on_done_timer, 100, 100);
    uv_run(g_loop, UV_RUN_DEFAULT);
    _exit(0);
}

/* ---- the writer (parent) ---- */

static uint64_t g_write_start;
static char g_load[64] = "?";

static void on_write_timer(uv_timer_t *t)
{
    (void)t;
    if (!g_shm->writing || !g_writer->joined || g_writer->dead)
        return;
    uint64_t now = now_us();
    uint64_t due = (now - g_write_start) * (uint64_t)o.rate / 1000000u + 1;
    while (g_sent < due) {
        /* the writer's lateness against its schedule: the machine's scheduling noise floor */
        uint64_t t = now_us(), sched = g_write_start + g_sent * 1000000u / (uint64_t)o.rate;
        if (g_shm->measuring) {
            uint64_t us = t > sched ? t - sched : 0;
            g_shm->hist[2][bucket(us)]++;
            g_shm->count[2]++;
            g_shm->sum_us[2] += us;
            amax(&g_shm->max_us[2], us);
        }
        rtmp_send_so(g_writer, 3, (double)t);
        g_sent++;
    }
}

static void on_tick(uv_timer_t *t) { uv_stop(t->loop); }

static void run_for(uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(g_loop, &t);
    uv_timer_start(&t, on_tick, ms, 0);
    uv_run(g_loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(g_loop, UV_RUN_NOWAIT);
}

static int proc_cpu(long pid, uint64_t *ticks, uint64_t *sys_ticks)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* fields after ")": state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    *ticks = ut + st;
    *sys_ticks = st;
    return 0;
}

/* Time the main (loop) thread spent runnable but waiting for a CPU, ns (/proc/PID/schedstat). */
static uint64_t proc_runq_wait_ns(long pid)
{
    char path[64];
    unsigned long long run = 0, wait = 0;
    snprintf(path, sizeof path, "/proc/%ld/schedstat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (fscanf(f, "%llu %llu", &run, &wait) != 2)
        wait = 0;
    fclose(f);
    return wait;
}

static long proc_rss_kb(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static uint64_t pct(int k, double q)
{
    uint64_t n = g_shm->count[k], want = (uint64_t)(q * (double)n), seen = 0;
    if (!n)
        return 0;
    if (want >= n)
        want = n - 1;
    for (size_t i = 0; i < HIST_N; i++) {
        seen += g_shm->hist[k][i];
        if (seen > want)
            return bucket_us(i);
    }
    return bucket_us(HIST_N - 1);
}

static void usage(void)
{
    fprintf(stderr, "usage: so-load --rtmp-port P --http-port H [--app live] [--name bench] [--rtmp N] [--ws M]\n"
                    "               [--rate 100] [--seconds 20] [--warmup 3] [--workers 2] [--addrs 1]\n"
                    "               [--connect-rate 500] [--pid SERVER_PID]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--rtmp-port")) o.rtmp_port = atoi(v);
        else if (!strcmp(a, "--http-port")) o.http_port = atoi(v);
        else if (!strcmp(a, "--app")) o.app = v;
        else if (!strcmp(a, "--name")) o.name = v;
        else if (!strcmp(a, "--host")) o.host = v;
        else if (!strcmp(a, "--rtmp")) o.n_rtmp = atoi(v);
        else if (!strcmp(a, "--ws")) o.n_ws = atoi(v);
        else if (!strcmp(a, "--rate")) o.rate = atoi(v);
        else if (!strcmp(a, "--seconds")) o.seconds = atoi(v);
        else if (!strcmp(a, "--warmup")) o.warmup = atoi(v);
        else if (!strcmp(a, "--workers")) o.workers = atoi(v);
        else if (!strcmp(a, "--addrs")) o.addrs = atoi(v);
        else if (!strcmp(a, "--connect-rate")) o.connect_rate = atoi(v);
        else if (!strcmp(a, "--pid")) o.pid = atol(v);
        else usage();
    }
    if (!o.rtmp_port || (o.n_ws && !o.http_port) || o.workers < 1 || o.addrs < 1 || o.addrs > 254 ||
        o.rate < 1 || o.seconds < 1 || strlen(o.name) > 200 || strlen(o.app) > 200)
        usage();
    signal(SIGPIPE, SIG_IGN);
    g_shm = mmap(NULL, sizeof *g_shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_shm == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(g_shm, 0, sizeof *g_shm);
    pid_t kids[256];
    if (o.workers > 256)
        o.workers = 256;
    for (int w = 0; w < o.workers; w++) {
        srand((unsigned)(w + 1));
        pid_t p = fork();
        if (p == 0)
            worker_run(w);
        kids[w] = p;
    }
    /* the writer: its own RTMP connection on the parent's loop */
    g_loop = uv_default_loop();
    static conn_t writer;
    g_writer = &writer;
    writer.kind = K_WRITER;
    writer.idx = 0;
    conn_open(&writer);
    uv_timer_t wt;
    uv_timer_init(g_loop, &wt);
    uv_timer_start(&wt, on_write_timer, 1, 1);

    int n_total = o.n_rtmp + o.n_ws;
    uint64_t t0 = now_us();
    while (g_shm->joined[0] + g_shm->joined[1] + g_shm->failed[0] + g_shm->failed[1] + g_shm->closed[0] +
               g_shm->closed[1] < (uint64_t)n_total || !writer.joined) {
        if (now_us() - t0 > 60000000u || writer.dead)
            break;
        run_for(50);
    }
    double join_s = (double)(now_us() - t0) / 1e6;
    g_write_start = now_us();
    g_shm->writing = 1;
    run_for((uint64_t)o.warmup * 1000);
    uint64_t cpu0 = 0, cpu1 = 0, sys0 = 0, sys1 = 0;
    struct rusage ru0, ru1, rc0, rc1;
    getrusage(RUSAGE_SELF, &ru0);
    getrusage(RUSAGE_CHILDREN, &rc0); /* children still run: their time shows after wait */
    if (o.pid)
        proc_cpu(o.pid, &cpu0, &sys0);
    uint64_t rq0 = o.pid ? proc_runq_wait_ns(o.pid) : 0;
    uint64_t sent0 = g_sent, w0 = now_us();
    g_shm->measuring = 1;
    run_for((uint64_t)o.seconds * 1000);
    g_shm->measuring = 0;
    uint64_t w1 = now_us(), sent1 = g_sent;
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fgets(g_load, sizeof g_load, la))
            g_load[strcspn(g_load, " ")] = 0; /* the 1-minute load average, at the end of the window */
        fclose(la);
    }
    if (o.pid)
        proc_cpu(o.pid, &cpu1, &sys1);
    uint64_t rq1 = o.pid ? proc_runq_wait_ns(o.pid) : 0;
    long rss = o.pid ? proc_rss_kb(o.pid) : -1;
    getrusage(RUSAGE_SELF, &ru1);
    g_shm->writing = 0;
    run_for(2000); /* drain: the last changes reach everyone */
    g_shm->done = 1;
    for (int w = 0; w < o.workers; w++)
        waitpid(kids[w], NULL, 0);
    getrusage(RUSAGE_CHILDREN, &rc1);
    (void)rc0;
    double win_s = (double)(w1 - w0) / 1e6;
    double tck = (double)sysconf(_SC_CLK_TCK);
    double tool_s = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                    (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    double kids_s = (double)(rc1.ru_utime.tv_sec + rc1.ru_stime.tv_sec) + (double)(rc1.ru_utime.tv_usec + rc1.ru_stime.tv_usec) / 1e6;
    printf("{\"n_rtmp\":%d,\"n_ws\":%d,\"rate\":%d,\"window_s\":%.2f,\"join_s\":%.2f,\"updates_sent\":%" PRIu64
           ",\"writer_last_version\":%" PRIu64,
           o.n_rtmp, o.n_ws, o.rate, win_s, join_s, sent1 - sent0, g_shm->last_version);
    static const char *names[2] = {"rtmp", "ws"};
    for (int k = 0; k < 2; k++) {
        uint64_t n = g_shm->count[k];
        printf(",\"%s\":{\"joined\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"closed\":%" PRIu64 ",\"changes\":%" PRIu64
               ",\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f"
               ",\"gaps\":%" PRIu64 ",\"versions_missed\":%" PRIu64 ",\"tail_missed\":%" PRIu64 ",\"dup\":%" PRIu64 "}",
               names[k], g_shm->joined[k], g_shm->failed[k], g_shm->closed[k], n, pct(k, 0.50) / 1e3,
               pct(k, 0.95) / 1e3, pct(k, 0.99) / 1e3, g_shm->max_us[k] / 1e3,
               n ? (double)g_shm->sum_us[k] / (double)n / 1e3 : 0.0, g_shm->gaps[k], g_shm->lost[k],
               g_shm->tail_lost[k], g_shm->dup[k]);
    }
    printf(",\"writer_late\":{\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}", pct(2, 0.5) / 1e3,
           pct(2, 0.99) / 1e3, g_shm->max_us[2] / 1e3);
    printf(",\"loadavg\":\"%s\"", g_load);
    if (o.pid)
        printf(",\"server_cpu_s\":%.2f,\"server_sys_s\":%.2f,\"server_cpu_pct\":%.1f,\"server_us_per_change\":%.2f"
               ",\"server_runq_wait_s\":%.2f,\"server_rss_kb\":%ld",
               (double)(cpu1 - cpu0) / tck, (double)(sys1 - sys0) / tck, 100.0 * (double)(cpu1 - cpu0) / tck / win_s,
               g_shm->count[0] + g_shm->count[1]
                   ? 1e6 * (double)(cpu1 - cpu0) / tck / (double)(g_shm->count[0] + g_shm->count[1])
                   : 0.0,
               (double)(rq1 - rq0) / 1e9, rss);
    printf(",\"writer_cpu_s\":%.2f,\"workers_cpu_s_whole_run\":%.2f}\n", tool_s, kids_s);
    uint64_t joined = g_shm->joined[0] + g_shm->joined[1];
    return joined == (uint64_t)n_total ? 0 : 1;
}
