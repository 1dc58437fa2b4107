/*
 * sluice-bench: an RTMP fan-out load generator built on libsluice-client.
 * N players (and optionally M publishers of an FLV file) against any RTMP
 * server (sluice, nginx-rtmp, SRS, ...), all sessions of a process in one
 * libuv loop, for a fixed duration; one JSON report on stdout.
 *
 *   sluice-bench [-n PLAYERS] [-m PUBLISHERS --flv FILE] [-d SECONDS]
 *                [--procs K] [--rate CONNECTS_PER_S] [--warmup-ms MS]
 *                [--timeout MS] [--reconnect] [-u USER] [-p PASS] [--token T]
 *                [--ca FILE] [--insecure] [-q] rtmp[s]://host[:port]/app/stream
 *
 * With one publisher the stream is the URL's; with M > 1 they publish
 * "<stream>-0" .. "<stream>-<M-1>" and players are spread over them round
 * robin. Without publishers the players play the URL (someone else
 * publishes it).
 *
 * What is measured, per player and merged:
 *  - sessions ok (reached Play.Start, got a keyframe, still playing at the
 *    end) / failed (with the reasons counted);
 *  - received Mbps (wire bytes of every player over the measurement window);
 *  - time to first keyframe: sl_client_play() -> first video keyframe
 *    (not a sequence header); connect to first media: -> first audio or
 *    video message of any kind;
 *  - lag behind live: the bench's own publisher puts an H.264 SEI NAL unit
 *    (user data unregistered, UUID "sluice-bench-lag") in front of every
 *    video frame carrying a sequence number and the wall-clock send time in
 *    microseconds; a player computes now - send time for each video frame.
 *    Servers pass the NAL through untouched and decoders skip it. It works
 *    across --procs (same clock) and whatever the server does to
 *    timestamps (sluice rebases each player's timeline to 0, so timestamps
 *    cannot identify frames). Without our own publisher there is no lag.
 *    lag_ms counts every frame, including the burst a server replays from
 *    its GOP cache at join time (old by design); lag_live_ms only frames
 *    published after the player started, i.e. the steady state;
 *  - frames dropped: gaps in the SEI sequence numbers (or, without SEI,
 *    video timestamp jumps larger than 2.5 frame intervals);
 *  - the bench's own CPU seconds (getrusage, every process), so a reader
 *    can see the load generator was not the bottleneck.
 * Latencies go into 1 ms histograms (up to 60 s), so memory does not grow
 * with the run and per-process results merge exactly.
 *
 * --procs K forks K processes before any loop exists; process i runs the
 * players j with j % K == i and process 0 also runs the publishers; each
 * writes its result struct to a pipe and the parent merges and prints.
 *
 * --sample K (K > 1) makes the load generator cheap enough to share a small
 * machine with the server it measures: only players j with j % K == 0 parse
 * what they receive (lag, drops, frames); every other player is a counting
 * player: it plays like the others until its first keyframe (so its session,
 * time to first keyframe and first media are measured as before), then hands
 * its socket to the kernel's discard path (recv with MSG_TRUNC: no copy, no
 * parsing; acknowledgements still sent per the server's window) and wakes
 * only when --lowat BYTES (default 32768) are waiting. Its bytes count in
 * mbps_received and its session must still be playing at the end; lag and
 * drops come from the sampled players, which the server serves like the
 * rest. Counting players answer no pings: keep runs shorter than the
 * server's ping timeout (nginx-rtmp: 60 s + 30 s).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/alloc.h"
#include "client_internal.h" /* sl__client_discard_input (counting players) */
#include "sluice/client.h"

#define HIST_N 60001            /* 1 ms bins, 0 .. 60 s (the last bin holds the rest) */
#define MAX_REASONS 8
#define SEI_UUID "sluice-bench-lag"
#define SEI_PAYLOAD 48          /* 16 bytes of UUID + 32 hex digits */
#define SEI_NAL_LEN (3 + SEI_PAYLOAD + 1)
#define TICK_MS 5

/* ------------------------------------------------------------------ */
/* results                                                             */

typedef struct {
    uint64_t count;
    double sum, max;
    uint32_t bins[HIST_N];
} hist_t;

typedef struct {
    uint64_t players, ok, failed, reconnects;
    uint64_t bytes;              /* wire bytes received by players */
    uint64_t video_frames, audio_frames;
    uint64_t frames_dropped, gap_events;
    uint64_t sei_frames;         /* video frames that carried our SEI */
    uint64_t sampled, counting;  /* players that parse / that count bytes (--sample) */
    uint64_t counting_failed;    /* counting players whose switch to discarding failed */
    uint64_t bytes_counting;     /* the part of bytes received by counting players */
    uint64_t publishers, publishers_ok, published_frames, publish_dropped;
    double window_s;             /* players' measurement window */
    double cpu_user, cpu_sys;    /* this process (summed when merged) */
    double max_proc_cpu_pct;     /* busiest process: cpu / wall */
    double wall_s;
    hist_t ttfk, first_media, lag, lag_live;
    struct {
        char reason[64];
        uint64_t n;
    } reasons[MAX_REASONS];
    int n_reasons;
} result_t;

static void hist_add(hist_t *h, double ms)
{
    if (ms < 0)
        ms = 0;
    size_t b = ms >= HIST_N - 1 ? HIST_N - 1 : (size_t)ms;
    h->bins[b]++;
    h->count++;
    h->sum += ms;
    if (ms > h->max)
        h->max = ms;
}

static void hist_merge(hist_t *a, const hist_t *b)
{
    for (size_t i = 0; i < HIST_N; i++)
        a->bins[i] += b->bins[i];
    a->count += b->count;
    a->sum += b->sum;
    if (b->max > a->max)
        a->max = b->max;
}

/* The p-quantile (0..1) as the upper edge of its 1 ms bin, capped by max. */
static double hist_q(const hist_t *h, double p)
{
    if (!h->count)
        return 0;
    uint64_t want = (uint64_t)(p * (double)h->count + 0.999999);
    if (want < 1)
        want = 1;
    uint64_t acc = 0;
    for (size_t i = 0; i < HIST_N; i++) {
        acc += h->bins[i];
        if (acc >= want) {
            double v = (double)i + 1.0;
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

static void add_reason(result_t *r, const char *why, uint64_t n)
{
    for (int i = 0; i < r->n_reasons; i++) {
        if (strcmp(r->reasons[i].reason, why) == 0) {
            r->reasons[i].n += n;
            return;
        }
    }
    int i = r->n_reasons < MAX_REASONS ? r->n_reasons++ : MAX_REASONS - 1;
    if (i == MAX_REASONS - 1 && r->reasons[i].n && strcmp(r->reasons[i].reason, "other") != 0)
        snprintf(r->reasons[i].reason, sizeof r->reasons[i].reason, "other");
    else if (!r->reasons[i].n)
        snprintf(r->reasons[i].reason, sizeof r->reasons[i].reason, "%s", why);
    r->reasons[i].n += n;
}

static void merge(result_t *a, const result_t *b)
{
    a->players += b->players;
    a->ok += b->ok;
    a->failed += b->failed;
    a->reconnects += b->reconnects;
    a->bytes += b->bytes;
    a->video_frames += b->video_frames;
    a->audio_frames += b->audio_frames;
    a->frames_dropped += b->frames_dropped;
    a->gap_events += b->gap_events;
    a->sei_frames += b->sei_frames;
    a->sampled += b->sampled;
    a->counting += b->counting;
    a->counting_failed += b->counting_failed;
    a->bytes_counting += b->bytes_counting;
    a->publishers += b->publishers;
    a->publishers_ok += b->publishers_ok;
    a->published_frames += b->published_frames;
    a->publish_dropped += b->publish_dropped;
    if (b->window_s > a->window_s)
        a->window_s = b->window_s;
    if (b->wall_s > a->wall_s)
        a->wall_s = b->wall_s;
    a->cpu_user += b->cpu_user;
    a->cpu_sys += b->cpu_sys;
    if (b->max_proc_cpu_pct > a->max_proc_cpu_pct)
        a->max_proc_cpu_pct = b->max_proc_cpu_pct;
    hist_merge(&a->ttfk, &b->ttfk);
    hist_merge(&a->first_media, &b->first_media);
    hist_merge(&a->lag, &b->lag);
    hist_merge(&a->lag_live, &b->lag_live);
    for (int i = 0; i < b->n_reasons; i++)
        add_reason(a, b->reasons[i].reason, b->reasons[i].n);
}

/* ------------------------------------------------------------------ */
/* configuration                                                       */

typedef struct {
    const char *url;
    const char *flv;
    int players, publishers, procs;
    double duration_s;
    double rate;                 /* player connects per second */
    int warmup_ms;
    uint32_t timeout_ms;
    int reconnect;
    const char *user, *pass, *token;
    const char *ca_file;        /* rtmps: --ca */
    int insecure;               /* rtmps: --insecure */
    int quiet;
    int sample;                 /* --sample K: 1 player in K parses, the rest count */
    int lowat;                  /* --lowat: counting players' SO_RCVLOWAT */
} conf_t;

static conf_t conf = {
    .players = 10, .procs = 1, .duration_s = 10, .rate = 500, .warmup_ms = 1000, .timeout_ms = 10000,
    .sample = 1, .lowat = 32768,
};

/* ------------------------------------------------------------------ */
/* the source file, in memory                                          */

typedef struct {
    int kind;
    uint32_t ts;                 /* relative to the first tag */
    int config, avc_frame;       /* avc_frame: legacy AVC coded frame (SEI goes in) */
    uint8_t *body;
    size_t len;
} tag_t;

static tag_t *tags;
static size_t n_tags;
static uint32_t file_span_ms;    /* one pass, including one frame gap */
static int nal_len_size = 4;     /* from the AVC decoder configuration record */

static int load_flv(const char *path)
{
    sl_client_flv_t *r;
    int rc = sl_client_flv_open(path, &r);
    if (rc)
        return rc;
    size_t cap = 0;
    int64_t first = -1;
    uint32_t last = 0, last_video = 0, gap = 40;
    sl_client_frame_t f;
    while ((rc = sl_client_flv_next(r, &f)) == 1) {
        if (n_tags == cap) {
            cap = cap ? cap * 2 : 1024;
            tag_t *t = sl_realloc(tags, cap * sizeof(*t));
            if (!t) {
                rc = SL_ENOMEM;
                break;
            }
            tags = t;
        }
        if (first < 0)
            first = f.ts_ms;
        tag_t *t = &tags[n_tags++];
        t->kind = f.kind;
        t->ts = f.ts_ms >= (uint32_t)first ? f.ts_ms - (uint32_t)first : 0;
        t->config = f.config;
        t->avc_frame = f.kind == SL_CLIENT_VIDEO && f.len > 5 && (f.body[0] & 0x8f) == 0x07 && f.body[1] == 1;
        t->body = sl_malloc(f.len ? f.len : 1);
        if (!t->body) {
            rc = SL_ENOMEM;
            break;
        }
        memcpy(t->body, f.body, f.len);
        t->len = f.len;
        if (f.kind == SL_CLIENT_VIDEO && f.config && f.len > 9 && (f.body[0] & 0x0f) == 7)
            nal_len_size = (f.body[9] & 3) + 1;
        if (f.kind == SL_CLIENT_VIDEO && !f.config) {
            if (t->ts > last_video && t->ts - last_video < 1000)
                gap = t->ts - last_video;
            last_video = t->ts;
        }
        if (t->ts > last)
            last = t->ts;
    }
    sl_client_flv_close(r);
    if (rc < 0)
        return rc;
    if (!n_tags)
        return SL_EPROTO;
    file_span_ms = last + gap;
    return 0;
}

/* ------------------------------------------------------------------ */
/* sessions                                                            */

typedef struct {
    sl_client_t *c;
    int stream;                  /* index of the stream it plays/publishes */
    uint64_t start_ns;           /* sl_client_play */
    double start_wall_us;        /* the same moment on the wall clock */
    int active;                  /* reached ACTIVE at least once */
    int got_key, got_media;
    int closed_err;              /* err of CLOSED, when closed */
    int closed;
    char why[64];
    /* drop detection */
    int have_seq;
    uint64_t last_seq;
    int have_ts;
    uint32_t last_ts, min_delta;
    int nal_len;                 /* from the received AVC header */
    int counting;                /* --sample: discard input after the first keyframe */
    int discarding;              /* the switch was made */
} player_t;

typedef struct {
    sl_client_t *c;
    int stream;
    int active;
    size_t next;                 /* next tag */
    uint64_t loops;              /* passes done */
    uint64_t t0_ms;              /* loop time at tag 0 of pass 0 */
    uint64_t seq;
    uint8_t *scratch;            /* a frame with the SEI in front */
    size_t scratch_cap;
} publisher_t;

static uv_loop_t *loop;
static player_t *players;
static int n_players, started_players;
static publisher_t *pubs;
static int n_pubs;
static result_t *res;
static uv_timer_t tick_timer, end_timer, start_timer;
static uint64_t players_t0_ns;
static int stopping;
static char **stream_urls;
static int n_streams;

static double wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Parses our SEI at the start of an AVC frame: 1 with seq and send time. */
static int parse_sei(const uint8_t *b, size_t n, int len_size, uint64_t *seq, double *sent_us)
{
    if (n < 5 + (size_t)len_size + SEI_NAL_LEN || (b[0] & 0x8f) != 0x07 || b[1] != 1)
        return 0;
    const uint8_t *p = b + 5;
    uint32_t nl = 0;
    for (int i = 0; i < len_size; i++)
        nl = nl << 8 | p[i];
    p += len_size;
    if (nl != SEI_NAL_LEN || (p[0] & 0x1f) != 6 || p[1] != 5 || p[2] != SEI_PAYLOAD ||
        memcmp(p + 3, SEI_UUID, 16) != 0)
        return 0;
    char hex[17];
    memcpy(hex, p + 19, 16);
    hex[16] = '\0';
    *seq = strtoull(hex, NULL, 16);
    memcpy(hex, p + 35, 16);
    *sent_us = (double)strtoull(hex, NULL, 16);
    return 1;
}

static void player_on_frame(sl_client_t *c, const sl_client_frame_t *f, void *ud)
{
    player_t *p = ud;
    if (stopping || f->kind == SL_CLIENT_DATA)
        return;
    double now_ms = (double)(uv_hrtime() - p->start_ns) / 1e6;
    if (!p->got_media) {
        p->got_media = 1;
        hist_add(&res->first_media, now_ms);
    }
    if (f->kind == SL_CLIENT_AUDIO) {
        res->audio_frames++;
        return;
    }
    if (f->config) {
        if ((f->body[0] & 0x0f) == 7 && f->len > 9)
            p->nal_len = (f->body[9] & 3) + 1;
        return;
    }
    if (p->discarding)
        return; /* the rest of the read that switched it */
    res->video_frames++;
    if (f->keyframe && !p->got_key) {
        p->got_key = 1;
        hist_add(&res->ttfk, now_ms);
        if (p->counting) {
            int rc = sl__client_discard_input(c, conf.lowat);
            if (!rc) {
                p->discarding = 1;
                return;
            }
            res->counting_failed++;
            if (!conf.quiet)
                fprintf(stderr, "sluice-bench: counting player stays a parsing one: %s\n",
                        sl_strerror(rc));
        }
    }
    uint64_t seq;
    double sent;
    if (parse_sei(f->body, f->len, p->nal_len ? p->nal_len : 4, &seq, &sent)) {
        res->sei_frames++;
        double lag_ms = (wall_us() - sent) / 1000.0;
        hist_add(&res->lag, lag_ms);
        if (sent >= p->start_wall_us)
            hist_add(&res->lag_live, lag_ms);
        if (p->have_seq && seq > p->last_seq + 1) {
            res->frames_dropped += seq - p->last_seq - 1;
            res->gap_events++;
        }
        p->have_seq = 1;
        p->last_seq = seq;
        return;
    }
    /* No SEI (someone else publishes): infer gaps from timestamps. */
    if (p->have_ts && f->ts_ms > p->last_ts) {
        uint32_t d = f->ts_ms - p->last_ts;
        if (d >= 5 && (!p->min_delta || d < p->min_delta))
            p->min_delta = d;
        if (p->min_delta && d * 2 > p->min_delta * 5) {
            res->frames_dropped += (d + p->min_delta / 2) / p->min_delta - 1;
            res->gap_events++;
        }
    }
    p->have_ts = 1;
    p->last_ts = f->ts_ms;
}

static void player_on_state(sl_client_t *c, sl_client_state_t s, int err, void *ud)
{
    player_t *p = ud;
    (void)c;
    if (s == SL_CLIENT_ACTIVE)
        p->active = 1;
    if (s == SL_CLIENT_RECONNECTING) {
        p->have_seq = p->have_ts = 0;
        if (!stopping && !conf.quiet)
            fprintf(stderr, "sluice-bench: player lost: %s (reconnecting)\n", sl_strerror(err));
    }
    if (s == SL_CLIENT_CLOSED && !stopping) {
        p->closed = 1;
        p->closed_err = err;
        snprintf(p->why, sizeof p->why, "closed: %s", sl_strerror(err));
    }
}

static void player_on_status(sl_client_t *c, const char *level, const char *code, const char *desc,
                             void *ud)
{
    player_t *p = ud;
    (void)c;
    (void)desc;
    if (strcmp(level, "error") == 0 && !p->why[0] && strcmp(code, "NetConnection.Connect.Closed") != 0 &&
        strcmp(code, "NetConnection.Connect.Failed") != 0)
        snprintf(p->why, sizeof p->why, "%s", code);
}

static void base_opts(sl_client_opts_t *o)
{
    sl_client_opts_init(o);
    o->timeout_ms = conf.timeout_ms;
    o->username = conf.user;
    o->password = conf.pass;
    o->token = conf.token;
    o->tls_ca_file = conf.ca_file;
    o->tls_insecure = conf.insecure;
}

static void start_player(int i)
{
    player_t *p = &players[i];
    sl_client_opts_t o;
    base_opts(&o);
    o.reconnect.enabled = conf.reconnect;
    o.on_frame = player_on_frame;
    o.on_state = player_on_state;
    o.on_status = player_on_status;
    o.ud = p;
    p->start_ns = uv_hrtime();
    p->start_wall_us = wall_us();
    int rc = sl_client_new(loop, stream_urls[p->stream], &o, &p->c);
    rc = rc ? rc : sl_client_play(p->c);
    if (rc) {
        p->closed = 1;
        snprintf(p->why, sizeof p->why, "start: %s", sl_strerror(rc));
    }
}

/* Sends every tag that is due for publisher b (real time, looping). */
static void publisher_pump(publisher_t *b, uint64_t now_ms)
{
    while (b->active) {
        const tag_t *t = &tags[b->next];
        uint64_t ts = b->loops * file_span_ms + t->ts;
        if (b->t0_ms + ts > now_ms)
            return;
        const uint8_t *body = t->body;
        size_t len = t->len;
        if (t->avc_frame) {
            /* Our SEI first: [5-byte FLV video header][len][SEI NAL][original NALs]. */
            size_t need = t->len + (size_t)nal_len_size + SEI_NAL_LEN;
            if (need > b->scratch_cap) {
                uint8_t *s = sl_realloc(b->scratch, need);
                if (!s)
                    return;
                b->scratch = s;
                b->scratch_cap = need;
            }
            uint8_t *s = b->scratch;
            memcpy(s, t->body, 5);
            size_t o = 5;
            for (int i = nal_len_size - 1; i >= 0; i--)
                s[o++] = (uint8_t)(SEI_NAL_LEN >> (8 * i));
            s[o++] = 0x06;
            s[o++] = 0x05;
            s[o++] = SEI_PAYLOAD;
            memcpy(s + o, SEI_UUID, 16);
            o += 16;
            char hex[33];
            snprintf(hex, sizeof hex, "%016" PRIx64 "%016" PRIx64, b->seq++, (uint64_t)wall_us());
            memcpy(s + o, hex, 32);
            o += 32;
            s[o++] = 0x80;
            memcpy(s + o, t->body + 5, t->len - 5);
            body = s;
            len = o + t->len - 5;
        }
        int rc = sl_client_write(b->c, t->kind, (uint32_t)ts, body, len);
        if (rc == 0)
            res->published_frames++;
        else
            res->publish_dropped++;
        if (++b->next == n_tags) {
            b->next = 0;
            b->loops++;
        }
    }
}

static void pub_on_state(sl_client_t *c, sl_client_state_t s, int err, void *ud)
{
    publisher_t *b = ud;
    (void)c;
    if (s == SL_CLIENT_ACTIVE) {
        /* (Re)start the file from the top: headers and a keyframe come first. */
        b->active = 1;
        b->next = 0;
        if (b->loops || b->seq)
            b->loops++; /* after a reconnection: timestamps keep growing */
        b->t0_ms = uv_now(loop) - b->loops * file_span_ms;
        publisher_pump(b, uv_now(loop));
    } else {
        b->active = 0;
        if (!stopping && !conf.quiet && (s == SL_CLIENT_RECONNECTING || s == SL_CLIENT_CLOSED))
            fprintf(stderr, "sluice-bench: publisher %s: %s\n", sl_client_state_name(s), sl_strerror(err));
    }
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    uint64_t now = uv_now(loop);
    for (int i = 0; i < n_pubs; i++)
        publisher_pump(&pubs[i], now);
    if (started_players < n_players && players_t0_ns) {
        double elapsed = (double)(uv_hrtime() - players_t0_ns) / 1e9;
        int due = (int)(elapsed * conf.rate) + 1;
        if (due > n_players)
            due = n_players;
        while (started_players < due)
            start_player(started_players++);
    }
}

static void on_end(uv_timer_t *t);

static void on_start_players(uv_timer_t *t)
{
    (void)t;
    players_t0_ns = uv_hrtime();
    on_tick(&tick_timer);
    uv_timer_start(&end_timer, on_end, (uint64_t)(conf.duration_s * 1000.0), 0);
}

static void on_end(uv_timer_t *t)
{
    (void)t;
    stopping = 1;
    res->window_s = (double)(uv_hrtime() - players_t0_ns) / 1e9;
    for (int i = 0; i < n_players; i++) {
        player_t *p = &players[i];
        sl_client_stats_t st;
        int state = SL_CLIENT_CLOSED;
        if (p->c) {
            sl_client_get_stats(p->c, &st);
            res->bytes += st.bytes_in;
            if (p->counting)
                res->bytes_counting += st.bytes_in;
            res->reconnects += st.reconnects;
            state = sl_client_state(p->c);
        }
        int ok = p->active && p->got_key && state == SL_CLIENT_ACTIVE;
        if (ok) {
            res->ok++;
        } else {
            res->failed++;
            add_reason(res, p->why[0] ? p->why
                          : !p->c || i >= started_players ? "not started"
                          : !p->active ? "never started playing"
                          : !p->got_key ? "no keyframe"
                          : state == SL_CLIENT_RECONNECTING ? "reconnecting at the end"
                          : "not playing at the end", 1);
        }
        if (p->c) {
            sl_client_close(p->c);
            sl_client_free(p->c);
            p->c = NULL;
        }
    }
    for (int i = 0; i < n_pubs; i++) {
        if (pubs[i].c) {
            if (sl_client_state(pubs[i].c) == SL_CLIENT_ACTIVE)
                res->publishers_ok++;
            sl_client_close(pubs[i].c);
            sl_client_free(pubs[i].c);
            pubs[i].c = NULL;
        }
    }
    uv_close((uv_handle_t *)&tick_timer, NULL);
    uv_close((uv_handle_t *)&end_timer, NULL);
    uv_close((uv_handle_t *)&start_timer, NULL);
}

/* Runs process `proc` of conf.procs; fills *r. */
static int run_proc(int proc, result_t *r)
{
    struct timespec w0;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    res = r;
    memset(r, 0, sizeof(*r));
    loop = uv_default_loop();
    for (int j = proc; j < conf.players; j += conf.procs)
        n_players++;
    players = sl_calloc((size_t)n_players + 1, sizeof(*players));
    n_pubs = proc == 0 ? conf.publishers : 0;
    pubs = sl_calloc((size_t)n_pubs + 1, sizeof(*pubs));
    if (!players || !pubs)
        return SL_ENOMEM;
    for (int j = proc, i = 0; j < conf.players; j += conf.procs, i++) {
        players[i].stream = j % n_streams;
        players[i].counting = conf.sample > 1 && j % conf.sample != 0;
        if (players[i].counting)
            r->counting++;
        else
            r->sampled++;
    }
    r->players = (uint64_t)n_players;
    r->publishers = (uint64_t)n_pubs;
    uv_timer_init(loop, &tick_timer);
    uv_timer_init(loop, &end_timer);
    uv_timer_init(loop, &start_timer);
    uv_timer_start(&tick_timer, on_tick, TICK_MS, TICK_MS);
    for (int i = 0; i < n_pubs; i++) {
        publisher_t *b = &pubs[i];
        sl_client_opts_t o;
        base_opts(&o);
        o.reconnect.enabled = 1; /* the load must keep flowing */
        o.reconnect.initial_ms = 200;
        o.reconnect.max_ms = 2000;
        o.on_state = pub_on_state;
        o.ud = b;
        b->stream = i;
        int rc = sl_client_new(loop, stream_urls[i], &o, &b->c);
        rc = rc ? rc : sl_client_publish(b->c);
        if (rc) {
            fprintf(stderr, "sluice-bench: publisher %d: %s\n", i, sl_strerror(rc));
            return rc;
        }
    }
    uv_timer_start(&start_timer, on_start_players, conf.publishers ? (uint64_t)conf.warmup_ms : 0, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    if (uv_loop_close(loop) != 0 && !conf.quiet)
        fprintf(stderr, "sluice-bench: handles left open at exit\n");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->cpu_user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    r->cpu_sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    struct timespec w1;
    clock_gettime(CLOCK_MONOTONIC, &w1);
    r->wall_s = (double)(w1.tv_sec - w0.tv_sec) + (double)(w1.tv_nsec - w0.tv_nsec) / 1e9;
    r->max_proc_cpu_pct = r->wall_s > 0 ? 100.0 * (r->cpu_user + r->cpu_sys) / r->wall_s : 0;
    for (int i = 0; i < n_pubs; i++)
        sl_free(pubs[i].scratch);
    sl_free(players);
    sl_free(pubs);
    return 0;
}

/* ------------------------------------------------------------------ */
/* report                                                              */

static void print_hist(const char *name, const hist_t *h, int last)
{
    if (!h->count) {
        printf("  \"%s\": null%s\n", name, last ? "" : ",");
        return;
    }
    printf("  \"%s\": {\"count\": %" PRIu64 ", \"p50\": %.1f, \"p95\": %.1f, \"p99\": %.1f, \"max\": %.1f, "
           "\"mean\": %.1f}%s\n", name, h->count, hist_q(h, 0.50), hist_q(h, 0.95), hist_q(h, 0.99), h->max,
           h->sum / (double)h->count, last ? "" : ",");
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void report(const result_t *r)
{
    double cpu = r->cpu_user + r->cpu_sys;
    printf("{\n  \"url\": ");
    print_json_string(conf.url);
    printf(",\n  \"players\": %" PRIu64 ",\n  \"publishers\": %d,\n  \"procs\": %d,\n", r->players,
           conf.publishers, conf.procs);
    printf("  \"duration_s\": %.3f,\n", r->window_s);
    printf("  \"sessions\": {\"ok\": %" PRIu64 ", \"failed\": %" PRIu64 ", \"reasons\": {", r->ok, r->failed);
    for (int i = 0; i < r->n_reasons; i++) {
        if (i)
            printf(", ");
        print_json_string(r->reasons[i].reason);
        printf(": %" PRIu64, r->reasons[i].n);
    }
    printf("}},\n");
    printf("  \"reconnects\": %" PRIu64 ",\n", r->reconnects);
    printf("  \"bytes_received\": %" PRIu64 ",\n", r->bytes);
    printf("  \"mbps_received\": %.3f,\n", r->window_s > 0 ? (double)r->bytes * 8.0 / r->window_s / 1e6 : 0.0);
    printf("  \"video_frames\": %" PRIu64 ",\n  \"audio_frames\": %" PRIu64 ",\n", r->video_frames,
           r->audio_frames);
    printf("  \"frames_dropped\": %" PRIu64 ",\n  \"gap_events\": %" PRIu64 ",\n", r->frames_dropped,
           r->gap_events);
    printf("  \"drop_detection\": \"%s\",\n", r->sei_frames ? "sei" : "timestamps");
    printf("  \"sampled_players\": %" PRIu64 ",\n  \"counting_players\": %" PRIu64 ",\n"
           "  \"counting_failed\": %" PRIu64 ",\n  \"bytes_counting\": %" PRIu64 ",\n", r->sampled,
           r->counting, r->counting_failed, r->bytes_counting);
    printf("  \"published_frames\": %" PRIu64 ",\n  \"publish_dropped\": %" PRIu64 ",\n",
           r->published_frames, r->publish_dropped);
    printf("  \"publishers_ok\": %" PRIu64 ",\n", r->publishers_ok);
    print_hist("first_keyframe_ms", &r->ttfk, 0);
    print_hist("first_media_ms", &r->first_media, 0);
    print_hist("lag_ms", &r->lag, 0);
    print_hist("lag_live_ms", &r->lag_live, 0);
    printf("  \"cpu_s\": {\"user\": %.3f, \"system\": %.3f, \"total\": %.3f},\n", r->cpu_user, r->cpu_sys, cpu);
    printf("  \"cpu_pct_of_one_core\": %.1f,\n", r->wall_s > 0 ? 100.0 * cpu / r->wall_s : 0.0);
    printf("  \"max_proc_cpu_pct\": %.1f,\n", r->max_proc_cpu_pct);
    printf("  \"wall_s\": %.3f\n}\n", r->wall_s);
    fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* main                                                                */

static void usage(void)
{
    fprintf(stderr,
            "usage: sluice-bench [-n PLAYERS] [-m PUBLISHERS --flv FILE] [-d SECONDS] [--procs K]\n"
            "                    [--rate CONNECTS_PER_S] [--warmup-ms MS] [--timeout MS] [--reconnect]\n"
            "                    [-u USER] [-p PASS] [--token T] [--ca FILE] [--insecure]\n"
            "                    [--sample K] [--lowat BYTES] [-q]\n"
            "                    rtmp[s]://host[:port]/app/stream\n");
}

/* url with "-<i>" appended to the stream name (before any query). */
static char *stream_url(const char *url, int i)
{
    size_t n = strlen(url);
    char *out = sl_malloc(n + 16);
    if (!out)
        return NULL;
    const char *q = strchr(url, '?');
    size_t head = q ? (size_t)(q - url) : n;
    snprintf(out, n + 16, "%.*s-%d%s", (int)head, url, i, q ? q : "");
    return out;
}

static int read_full(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        if ((strcmp(s, "-n") == 0 || strcmp(s, "--players") == 0) && more)
            conf.players = atoi(argv[++i]);
        else if ((strcmp(s, "-m") == 0 || strcmp(s, "--publishers") == 0) && more)
            conf.publishers = atoi(argv[++i]);
        else if (strcmp(s, "--flv") == 0 && more)
            conf.flv = argv[++i];
        else if ((strcmp(s, "-d") == 0 || strcmp(s, "--duration") == 0) && more)
            conf.duration_s = atof(argv[++i]);
        else if (strcmp(s, "--procs") == 0 && more)
            conf.procs = atoi(argv[++i]);
        else if (strcmp(s, "--rate") == 0 && more)
            conf.rate = atof(argv[++i]);
        else if (strcmp(s, "--warmup-ms") == 0 && more)
            conf.warmup_ms = atoi(argv[++i]);
        else if (strcmp(s, "--timeout") == 0 && more)
            conf.timeout_ms = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(s, "--reconnect") == 0)
            conf.reconnect = 1;
        else if (strcmp(s, "-u") == 0 && more)
            conf.user = argv[++i];
        else if (strcmp(s, "-p") == 0 && more)
            conf.pass = argv[++i];
        else if (strcmp(s, "--ca") == 0 && more)
            conf.ca_file = argv[++i];
        else if (strcmp(s, "--insecure") == 0)
            conf.insecure = 1;
        else if (strcmp(s, "--token") == 0 && more)
            conf.token = argv[++i];
        else if (strcmp(s, "--sample") == 0 && more)
            conf.sample = atoi(argv[++i]);
        else if (strcmp(s, "--lowat") == 0 && more)
            conf.lowat = atoi(argv[++i]);
        else if (strcmp(s, "-q") == 0)
            conf.quiet = 1;
        else if (s[0] != '-' && !conf.url)
            conf.url = s;
        else {
            usage();
            return 2;
        }
    }
    if (!conf.url || conf.players < 0 || conf.publishers < 0 || conf.procs < 1 || conf.duration_s <= 0 ||
        conf.rate <= 0 || (conf.publishers && !conf.flv) || conf.sample < 1 || conf.lowat < 0) {
        usage();
        return 2;
    }
    if (conf.procs > conf.players && conf.players > 0)
        conf.procs = conf.players;
    signal(SIGPIPE, SIG_IGN);
    /* Thousands of sockets: take every descriptor the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (conf.flv) {
        int rc = load_flv(conf.flv);
        if (rc) {
            fprintf(stderr, "sluice-bench: %s: %s\n", conf.flv, sl_strerror(rc));
            return 1;
        }
    }
    n_streams = conf.publishers > 1 ? conf.publishers : 1;
    stream_urls = sl_calloc((size_t)n_streams, sizeof(*stream_urls));
    for (int i = 0; stream_urls && i < n_streams; i++)
        stream_urls[i] = n_streams > 1 ? stream_url(conf.url, i) : sl_strdup(conf.url);
    result_t *total = sl_calloc(1, sizeof(*total));
    result_t *mine = sl_calloc(1, sizeof(*mine));
    if (!stream_urls || !total || !mine) {
        fprintf(stderr, "sluice-bench: out of memory\n");
        return 1;
    }
    int status = 0;
    if (conf.procs == 1) {
        status = run_proc(0, total);
    } else {
        int *fds = sl_calloc((size_t)conf.procs, sizeof(int));
        pid_t *pids = sl_calloc((size_t)conf.procs, sizeof(pid_t));
        for (int k = 0; k < conf.procs; k++) {
            int fd[2];
            if (pipe(fd) != 0) {
                perror("sluice-bench: pipe");
                return 1;
            }
            pid_t pid = fork();
            if (pid < 0) {
                perror("sluice-bench: fork");
                return 1;
            }
            if (pid == 0) {
                close(fd[0]);
                int rc = run_proc(k, mine);
                _exit(rc == 0 && write_full(fd[1], mine, sizeof(*mine)) == 0 ? 0 : 1);
            }
            close(fd[1]);
            fds[k] = fd[0];
            pids[k] = pid;
        }
        for (int k = 0; k < conf.procs; k++) {
            if (read_full(fds[k], mine, sizeof(*mine)) == 0) {
                merge(total, mine);
            } else {
                fprintf(stderr, "sluice-bench: process %d reported nothing\n", k);
                status = 1;
            }
            close(fds[k]);
            int st;
            waitpid(pids[k], &st, 0);
        }
        sl_free(fds);
        sl_free(pids);
    }
    report(total);
    for (size_t i = 0; i < n_tags; i++)
        sl_free(tags[i].body);
    sl_free(tags);
    for (int i = 0; i < n_streams; i++)
        sl_free(stream_urls[i]);
    sl_free(stream_urls);
    sl_free(total);
    sl_free(mine);
    return status ? 1 : 0;
}
