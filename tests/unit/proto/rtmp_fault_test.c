/*
 * Allocation fault injection over a whole RTMP session: the real RTMP
 * server (sl_rtmp_server on a free loopback port) and the native client
 * (libsluice-client) in one loop, walking session setup (handshake,
 * connect, createStream), publish, play (GOP-cache join, live frames of
 * one and of several chunks) and teardown (client close, server stop),
 * with sl_alloc_fail_at(N) for N = 1, 2, ... until the scenario runs to
 * the end without reaching the Nth allocation.
 *
 * For every N the run must: not crash (ASan/UBSan watch memory errors in
 * the sanitizer build), end with no handle left on the loop and
 * sl_alloc_bytes() back at its baseline (no leak on any failure path), and
 * fail cleanly: either the scenario still completes (the failure was
 * absorbed, e.g. a cache dropped), or a side gives up visibly (a call
 * returns SL_ENOMEM, a client reports an error or is closed by the server).
 * A run where nothing fails visibly and nothing completes either (a
 * request silently swallowed, a session stuck) is a finding, and so is a
 * server that, once the clients are gone and injection is off, keeps their
 * connections or no longer accepts a new publisher of the same stream (a
 * listener stalled, a stream left published by a dead session). The walk is
 * done twice: with one failure at N (recovery), and with every allocation
 * from N on failing (sticky: real exhaustion, including teardown).
 *
 * Meaningful only in builds with -DSL_FAULT_INJECTION=ON (the ASan build);
 * elsewhere the test skips. FAULT_TEST_DEBUG=1 keeps the server's log and
 * prints each N; FAULT_TEST_N=k runs only the point k.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <uv.h>

#include "app/core.h"
#include "base/alloc.h"
#include "base/log.h"
#include "media/frame.h"
#include "proto/rtmp/rtmp_server.h"
#include "sluice/client.h"
#include "proto/rtmp/rtmp_config.h"
#include "builtin_config.h"

#define MAX_N 20000          /* a guard: the scenario needs far fewer allocations */
#define RUN_DEADLINE_MS 3000 /* per run; a run that neither completes nor fails is stuck */
#define WANT_VIDEO 12        /* video frames the player must get for "complete" */
#define LIVE_FRAMES 40       /* frames the publisher sends after the player joined */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ------------------------------------------------------------------ */
/* one run of the scenario                                             */

typedef struct {
    sl_client_state_t state;
    int err;                 /* err of the last state change */
    int errors;              /* error statuses and failed states seen */
    int active;              /* reached ACTIVE */
    int video, audio, key_first;
} side_t;

typedef struct {
    uv_loop_t loop;
    uv_timer_t ticker;
    sl_config_t cfg;
    sl_core_t core;
    sl_rtmp_server_t *srv;
    int port;
    sl_client_t *pub, *play;
    side_t ps, vs;
    int headers_sent;
    int live_sent;
    int api_failed;          /* a client call returned an error */
    uint32_t ts;
} run_t;

static void on_state(sl_client_t *c, sl_client_state_t s, int err, void *ud)
{
    side_t *d = ud;
    (void)c;
    d->state = s;
    d->err = err;
    if (s == SL_CLIENT_ACTIVE)
        d->active = 1;
    if ((s == SL_CLIENT_CLOSED || s == SL_CLIENT_RECONNECTING) && err)
        d->errors++;
}

static void on_status(sl_client_t *c, const char *level, const char *code, const char *desc, void *ud)
{
    side_t *d = ud;
    (void)c;
    (void)code;
    (void)desc;
    if (strcmp(level, "error") == 0)
        d->errors++;
}

static void on_frame(sl_client_t *c, const sl_client_frame_t *f, void *ud)
{
    side_t *d = ud;
    (void)c;
    if (f->kind == SL_CLIENT_AUDIO)
        d->audio++;
    if (f->kind != SL_CLIENT_VIDEO || f->config)
        return;
    if (d->video == 0)
        d->key_first = f->keyframe;
    d->video++;
}

static const uint8_t avc_hdr[] = {0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04,
                                  0x67, 0x64, 0x00, 0x1f, 0x01, 0x00, 0x04, 0x68, 0xee, 0x3c, 0x80};
static const uint8_t aac_hdr[] = {0xaf, 0x00, 0x12, 0x10};

/* A video frame: keyframes span several 4096-byte chunks, others fit one. */
static int write_video(run_t *r, int key)
{
    static uint8_t b[9000];
    size_t n = key ? sizeof b : 300;
    memset(b, 0x5a, n);
    b[0] = key ? 0x17 : 0x27;
    b[1] = 0x01;
    b[2] = b[3] = b[4] = 0;
    uint32_t nal = (uint32_t)n - 9;
    b[5] = (uint8_t)(nal >> 24);
    b[6] = (uint8_t)(nal >> 16);
    b[7] = (uint8_t)(nal >> 8);
    b[8] = (uint8_t)nal;
    b[9] = key ? 0x65 : 0x41;
    return sl_client_write(r->pub, SL_CLIENT_VIDEO, r->ts, b, n);
}

static int write_audio(run_t *r)
{
    uint8_t a[40] = {0xaf, 0x01};
    return sl_client_write(r->pub, SL_CLIENT_AUDIO, r->ts, a, sizeof a);
}

static void note(run_t *r, int rc)
{
    if (rc && rc != SL_EAGAIN)
        r->api_failed++;
}

static sl_client_t *mkclient(run_t *r, side_t *d)
{
    sl_client_opts_t o;
    sl_client_opts_init(&o);
    o.timeout_ms = 1000;
    o.on_state = on_state;
    o.on_status = on_status;
    o.on_frame = on_frame;
    o.ud = d;
    char url[128];
    snprintf(url, sizeof url, "rtmp://127.0.0.1:%d/live/fault", r->port);
    sl_client_t *c = NULL;
    int rc = sl_client_new(&r->loop, url, &o, &c);
    note(r, rc);
    return rc ? NULL : c;
}

/* Drives the publisher: headers and a first GOP once publishing, then the
 * player, then one video (every 10th a keyframe) and one audio frame per
 * tick. */
static void tick(uv_timer_t *t)
{
    run_t *r = t->data;
    if (!r->pub || r->ps.state != SL_CLIENT_ACTIVE)
        return;
    if (!r->headers_sent) {
        r->headers_sent = 1;
        note(r, sl_client_write(r->pub, SL_CLIENT_VIDEO, 0, avc_hdr, sizeof avc_hdr));
        note(r, sl_client_write(r->pub, SL_CLIENT_AUDIO, 0, aac_hdr, sizeof aac_hdr));
        note(r, write_video(r, 1));
        for (int i = 0; i < 3; i++) {
            r->ts += 20;
            note(r, write_video(r, 0));
            note(r, write_audio(r));
        }
        if ((r->play = mkclient(r, &r->vs)) != NULL)
            note(r, sl_client_play(r->play));
        return;
    }
    if (r->vs.state == SL_CLIENT_ACTIVE && r->live_sent < LIVE_FRAMES) {
        r->ts += 20;
        note(r, write_video(r, r->live_sent % 10 == 0));
        note(r, write_audio(r));
        r->live_sent++;
    }
}

static int complete(const run_t *r)
{
    return r->vs.video >= WANT_VIDEO && r->vs.key_first;
}

static int gave_up(const run_t *r)
{
    return r->api_failed || r->ps.errors || r->vs.errors ||
           (r->headers_sent && !r->play) ||
           r->ps.state == SL_CLIENT_CLOSED || (r->play && r->vs.state == SL_CLIENT_CLOSED);
}

typedef enum { RUN_COMPLETE, RUN_REFUSED, RUN_STUCK, RUN_NO_SERVER, RUN_UNHEALTHY } outcome_t;

/*
 * One run with the Nth allocation from now failing (n = 0: none). Leaves
 * the loop closed; returns how it ended. *leaked gets the bytes not freed.
 */
static outcome_t run_once(uint64_t n, int sticky, int64_t *leaked)
{
    run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    int64_t bytes0 = sl_alloc_bytes();
    outcome_t out;
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(sl_config_defaults(&r->cfg), 0);
    r->port = free_port();
    sl_rtmp_cfg(&r->cfg)->port = r->port;
    r->cfg.server_shutdown_timeout_ms = 500;
    uv_timer_init(&r->loop, &r->ticker);
    r->ticker.data = r;

    /* The walk covers everything from the server being up to its stop. */
    sl_alloc_fail_at(n, sticky);
    if (sl_core_init(&r->core, &r->loop, &r->cfg) != 0) {
        out = RUN_NO_SERVER;
        goto teardown_loop;
    }
    if (sl_rtmp_server_start(&r->core, &r->srv) != 0) {
        out = RUN_NO_SERVER;
        goto teardown_core;
    }
    uv_timer_start(&r->ticker, tick, 2, 2);
    if ((r->pub = mkclient(r, &r->ps)) != NULL)
        note(r, sl_client_publish(r->pub));

    uint64_t end = uv_now(&r->loop) + RUN_DEADLINE_MS;
    while (!complete(r) && !gave_up(r) && uv_now(&r->loop) < end)
        uv_run(&r->loop, UV_RUN_ONCE);
    out = complete(r) ? RUN_COMPLETE : gave_up(r) ? RUN_REFUSED : RUN_STUCK;
    if (out == RUN_STUCK && getenv("FAULT_TEST_DEBUG"))
        fprintf(stderr, "stuck: pub state %d err %d active %d, play %p state %d active %d video %d\n",
                r->ps.state, r->ps.err, r->ps.active, (void *)r->play, r->vs.state, r->vs.active,
                r->vs.video);

    /* The clients leave (still under injection); the server must let go
     * of their connections. */
    if (r->play) {
        sl_client_close(r->play);
        sl_client_free(r->play);
    }
    if (r->pub) {
        sl_client_close(r->pub);
        sl_client_free(r->pub);
    }
    end = uv_now(&r->loop) + 3000;
    while (sl_rtmp_server_connections(r->srv) && uv_now(&r->loop) < end)
        uv_run(&r->loop, UV_RUN_ONCE);
    if (sl_rtmp_server_connections(r->srv))
        out = RUN_STUCK;

    /* A refusal is clean only if the server still serves: with injection
     * off, a new publisher of the same stream must be accepted. */
    sl_alloc_fail_at(0, 0);
    side_t probe;
    memset(&probe, 0, sizeof probe);
    sl_client_t *pc = mkclient(r, &probe);
    assert_non_null(pc);
    assert_int_equal(sl_client_publish(pc), 0);
    end = uv_now(&r->loop) + 3000;
    while (!probe.active && !probe.errors && uv_now(&r->loop) < end)
        uv_run(&r->loop, UV_RUN_ONCE);
    if (!probe.active) {
        if (getenv("FAULT_TEST_DEBUG"))
            fprintf(stderr, "probe failed: state %d err %d errors %d\n", probe.state, probe.err,
                    probe.errors);
        out = RUN_UNHEALTHY;
    }
    sl_client_close(pc);
    sl_client_free(pc);

    /* Teardown: the server stops, every handle closes. */
    sl_rtmp_server_stop(r->srv);
    end = uv_now(&r->loop) + 5000;
    while (sl_rtmp_server_connections(r->srv) && uv_now(&r->loop) < end)
        uv_run(&r->loop, UV_RUN_ONCE);
    assert_int_equal(sl_rtmp_server_connections(r->srv), 0);
    uv_close((uv_handle_t *)&r->ticker, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    sl_rtmp_server_free(r->srv);
    goto teardown_core_closed;
teardown_core:
    uv_close((uv_handle_t *)&r->ticker, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
teardown_core_closed:
    sl_core_cleanup(&r->core);
    goto done;
teardown_loop:
    uv_close((uv_handle_t *)&r->ticker, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
done:
    sl_alloc_fail_at(0, 0);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    sl_config_cleanup(&r->cfg);
    sl_frame_pool_drain();
    *leaked = sl_alloc_bytes() - bytes0;
    free(r);
    return out;
}

/* ------------------------------------------------------------------ */
/* the walk                                                            */

static void walk(int sticky)
{
    int debug = getenv("FAULT_TEST_DEBUG") != NULL;
    int saved_stderr = -1;
    if (!debug) {
        /* Thousands of refused sessions log their reasons: keep them quiet. */
        fflush(stderr);
        saved_stderr = dup(2);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        close(devnull);
    }
    sl_log_set_level(debug ? SL_LOG_DEBUG : SL_LOG_ERROR);

    int64_t leaked = 0;
    /* The reference run: no failure, the scenario completes. */
    outcome_t ref = run_once(0, 0, &leaked);
    uint64_t counts[5] = {0};
    uint64_t n;
    char findings[2048] = "";
    size_t fl = 0;
    if (ref != RUN_COMPLETE || leaked != 0)
        fl += (size_t)snprintf(findings + fl, sizeof findings - fl,
                               "reference run: outcome %d, leaked %lld\n", ref, (long long)leaked);
    uint64_t first = 1, last = MAX_N;
    int finished = 0;
    if (getenv("FAULT_TEST_N")) /* debugging one point: FAULT_TEST_N=11 */
        first = last = strtoull(getenv("FAULT_TEST_N"), NULL, 10);
    for (n = first; n <= last && fl < sizeof findings - 200; n++) {
        uint64_t failed0 = sl_alloc_failed_count();
        outcome_t o = run_once(n, sticky, &leaked);
        int tripped = sl_alloc_failed_count() > failed0;
        counts[o]++;
        if (debug)
            fprintf(stderr, "N=%llu %s: outcome %d, leaked %lld\n", (unsigned long long)n,
                    sticky ? "sticky" : "once", o, (long long)leaked);
        if (leaked)
            fl += (size_t)snprintf(findings + fl, sizeof findings - fl, "N=%llu: leaked %lld bytes\n",
                                   (unsigned long long)n, (long long)leaked);
        if (o == RUN_UNHEALTHY)
            fl += (size_t)snprintf(findings + fl, sizeof findings - fl,
                                   "N=%llu: the server no longer accepts a publisher afterwards\n",
                                   (unsigned long long)n);
        if (o == RUN_STUCK)
            fl += (size_t)snprintf(findings + fl, sizeof findings - fl,
                                   "N=%llu: stuck (no failure reported, nothing delivered)\n",
                                   (unsigned long long)n);
        if (!tripped) {
            finished = 1;
            break; /* the Nth allocation was never reached: the walk is complete */
        }
    }
    if (!debug) {
        fflush(stderr);
        dup2(saved_stderr, 2);
        close(saved_stderr);
    }
    printf("[ FAULTS   ] %s: %llu allocation points walked: %llu complete, %llu refused cleanly, "
           "%llu stuck, %llu server not started, %llu server unhealthy after\n", sticky ? "sticky" : "single",
           (unsigned long long)(n - first), (unsigned long long)counts[RUN_COMPLETE],
           (unsigned long long)counts[RUN_REFUSED], (unsigned long long)counts[RUN_STUCK],
           (unsigned long long)counts[RUN_NO_SERVER], (unsigned long long)counts[RUN_UNHEALTHY]);
    if (fl) {
        printf("%s", findings);
        fail_msg("fault injection findings (see above)");
    }
    if (first == 1)
        assert_true(finished); /* else MAX_N is too small for the scenario */
}

static void test_single_failure(void **state)
{
    (void)state;
    if (!sl_alloc_fail_at(0, 0))
        skip(); /* built without SL_FAULT_INJECTION */
    walk(0);
}

static void test_sticky_failure(void **state)
{
    (void)state;
    if (!sl_alloc_fail_at(0, 0))
        skip();
    walk(1);
}

int main(void)
{
    /* As the sluice process does (src/main.c): a write to a socket the peer closed is an
     * EPIPE to handle, not a signal that kills the server. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_failure),
        cmocka_unit_test(test_sticky_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
