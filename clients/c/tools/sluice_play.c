/*
 * sluice-play: plays an RTMP URL into an FLV file or standard output with
 * libsluice-client (sl_client_play with opts.flv_out).
 *
 *   sluice-play [-o FILE|-] [-t SECONDS] [-reconnect] [-u USER] [-p PASS]
 *               [-token T] [-timeout MS] [--ca FILE] [--insecure] [-q] rtmp[s]://host[:port]/app/stream
 *
 * -t stops after that much media (timestamps of the received audio/video,
 * so a GOP-cache burst counts for what it holds), or at the latest after
 * twice that much wall time plus the timeout. Without -t it plays until
 * SIGINT/SIGTERM or the connection ends. Exits 0 when media was received
 * and the end was ours, 1 otherwise, 2 on bad usage.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sluice/client.h"

typedef struct {
    sl_client_t *c;
    uv_signal_t sigint, sigterm;
    uv_timer_t cap;              /* wall-clock bound of -t */
    int quiet;
    uint64_t limit_ms;           /* -t in ms, 0 = none */
    uint64_t cap_ms;
    int have_ts;
    uint32_t first_ts, last_ts;
    uint64_t frames;
    int ended_by_us;
    int exit_code;
} app_t;

static void usage(void)
{
    fprintf(stderr, "usage: sluice-play [-o FILE|-] [-t SECONDS] [-reconnect] [-u USER] [-p PASS]\n"
                    "                   [-token T] [-timeout MS] [--ca FILE] [--insecure] [-q]\n"
                    "                   rtmp[s]://host[:port]/app/stream\n");
}

static void stop(app_t *a)
{
    a->ended_by_us = 1;
    if (a->c)
        sl_client_close(a->c);
}

static void on_frame(sl_client_t *c, const sl_client_frame_t *f, void *ud)
{
    app_t *a = ud;
    (void)c;
    if (f->kind == SL_CLIENT_DATA || f->config)
        return;
    a->frames++;
    if (!a->have_ts) {
        a->have_ts = 1;
        a->first_ts = a->last_ts = f->ts_ms;
    }
    if (f->ts_ms > a->last_ts)
        a->last_ts = f->ts_ms;
    if (a->limit_ms && a->last_ts - a->first_ts >= a->limit_ms)
        stop(a);
}

static void on_status(sl_client_t *c, const char *level, const char *code, const char *desc, void *ud)
{
    app_t *a = ud;
    (void)c;
    if (!a->quiet)
        fprintf(stderr, "sluice-play: %s %s%s%s\n", level, code, desc[0] ? ": " : "", desc);
}

static void on_cap(uv_timer_t *t)
{
    app_t *a = t->data;
    if (!a->quiet)
        fprintf(stderr, "sluice-play: time limit reached\n");
    stop(a);
}

static void on_state(sl_client_t *c, sl_client_state_t s, int err, void *ud)
{
    app_t *a = ud;
    if (s == SL_CLIENT_ACTIVE && a->cap_ms && !uv_is_active((uv_handle_t *)&a->cap))
        uv_timer_start(&a->cap, on_cap, a->cap_ms, 0);
    if (s != SL_CLIENT_CLOSED)
        return;
    a->exit_code = a->frames > 0 && (err == 0 || a->ended_by_us) ? 0 : 1;
    if (err && !a->quiet)
        fprintf(stderr, "sluice-play: %s\n", sl_strerror(err));
    if (!a->quiet)
        fprintf(stderr, "sluice-play: %llu frames, %.3f s of media\n", (unsigned long long)a->frames,
                a->have_ts ? (a->last_ts - a->first_ts) / 1000.0 : 0.0);
    sl_client_free(c);
    a->c = NULL;
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->cap, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    stop(s->data);
}

int main(int argc, char **argv)
{
    sl_client_opts_t o;
    sl_client_opts_init(&o);
    const char *url = NULL;
    app_t a;
    memset(&a, 0, sizeof a);
    o.flv_out = "-";
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        if (strcmp(s, "-o") == 0 && more) {
            o.flv_out = argv[++i];
        } else if (strcmp(s, "-t") == 0 && more) {
            a.limit_ms = (uint64_t)(strtod(argv[++i], NULL) * 1000.0);
        } else if (strcmp(s, "-reconnect") == 0) {
            o.reconnect.enabled = 1;
        } else if (strcmp(s, "-q") == 0) {
            a.quiet = 1;
        } else if (strcmp(s, "-u") == 0 && more) {
            o.username = argv[++i];
        } else if (strcmp(s, "-p") == 0 && more) {
            o.password = argv[++i];
        } else if (strcmp(s, "-token") == 0 && more) {
            o.token = argv[++i];
        } else if (strcmp(s, "--ca") == 0 && more) {
            o.tls_ca_file = argv[++i];
        } else if (strcmp(s, "--insecure") == 0) {
            o.tls_insecure = 1;
        } else if (strcmp(s, "-timeout") == 0 && more) {
            o.timeout_ms = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (s[0] != '-' && !url) {
            url = s;
        } else {
            usage();
            return 2;
        }
    }
    if (!url) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    o.on_frame = on_frame;
    o.on_status = on_status;
    o.on_state = on_state;
    o.ud = &a;
    if (a.limit_ms)
        a.cap_ms = a.limit_ms * 2 + o.timeout_ms;
    int rc = sl_client_new(loop, url, &o, &a.c);
    if (rc) {
        if (rc == SL_EINVAL && o.tls_ca_file)
            fprintf(stderr, "sluice-play: %s: %s (a bad URL, or --ca %s is not a readable PEM "
                            "certificate file)\n", url, sl_strerror(rc), o.tls_ca_file);
        else
            fprintf(stderr, "sluice-play: %s: %s\n", url, sl_strerror(rc));
        return 2;
    }
    uv_signal_init(loop, &a.sigint);
    uv_signal_init(loop, &a.sigterm);
    uv_timer_init(loop, &a.cap);
    a.sigint.data = a.sigterm.data = a.cap.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    a.exit_code = 1;
    rc = sl_client_play(a.c);
    if (rc) {
        fprintf(stderr, "sluice-play: %s\n", sl_strerror(rc));
        sl_client_free(a.c);
        uv_close((uv_handle_t *)&a.sigint, NULL);
        uv_close((uv_handle_t *)&a.sigterm, NULL);
        uv_close((uv_handle_t *)&a.cap, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        uv_loop_close(loop);
        return 1;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return a.exit_code;
}
