/*
 * Tests of libsluice-client against a real sluice RTMP server running in
 * the same process and loop (sluice_core's sl_rtmp_server on a free port),
 * so that every exchange is the real one and the test can look at what the
 * server saw (an admission check records the credentials it was given).
 *
 * Covered: URL parsing; publishing a generated FLV in real time while a
 * second client plays it and gets the codec headers and then a keyframe
 * first; connect credentials reaching the server, and a refusal ending the
 * client for good even with reconnection on; calls with _result and
 * _error; frames pushed by the caller and play-to-FLV-file read back with
 * the FLV reader; connection refused; allocation failures in sl_client_new
 * (fault-injection builds); reconnection of a publisher and a
 * player after the server stops and starts again on the same port; shared
 * objects against the real shared_objects module (join before and after
 * CONNECTED, set -> success for the writer and change for the other, send,
 * delete, a value over the app limit -> reject + status and the object
 * still usable, close inside a callback, rejoin); the SO parser on
 * hand-made and truncated bodies (flex byte, bad lengths, event cap); call
 * deadlines (a timeout before the answer, the late answer ignored) and the
 * invoke-handler registry. Every
 * test ends with the loop closed cleanly (no handle left) and no sl_malloc
 * block left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
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

#include "app/admission.h"
#include "app/core.h"
#include "base/alloc.h"
#include "base/log.h"
#include "media/frame.h"
#include "proto/rtmp/rtmp_server.h"
#include "sluice/client.h"
#include "proto/rtmp/rtmp_config.h"
#include "builtin_config.h"
#include "client_internal.h"
#include "modules/plugins/plugins.h"
#include "modules/shared_objects/shared_objects.h"

/* ------------------------------------------------------------------ */
/* the in-process server                                               */

typedef struct {
    char user[64], pass[64], token[64];
    int n_connects;
} creds_t;

static uv_loop_t loop;
static sl_config_t cfg;
static sl_core_t core;
static sl_rtmp_server_t *srv;
static uv_timer_t ticker;
static int port;
static creds_t seen;
static int64_t blocks_before;
static char flv_path[64];

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

/* Records what the server was given at connect; "wrong" passwords are refused. */
static int cred_check(sl_admit_t *a, void *ud)
{
    creds_t *c = ud;
    const sl_admit_req_t *r = sl_admit_request(a);
    if (r->kind != SL_ADMIT_CONNECT)
        return SL_EDECLINED;
    c->n_connects++;
    snprintf(c->user, sizeof c->user, "%s", r->username ? r->username : "");
    snprintf(c->pass, sizeof c->pass, "%s", r->password ? r->password : "");
    snprintf(c->token, sizeof c->token, "%s", r->token ? r->token : "");
    if (r->password && strcmp(r->password, "wrong") == 0) {
        sl_admit_set_reason(a, "bad credentials");
        return SL_EDENIED;
    }
    return SL_OK;
}

static void tick(uv_timer_t *t) { (void)t; }

static void server_start(void)
{
    assert_int_equal(sl_rtmp_server_start(&core, &srv), 0);
}

/* Graceful stop, then run the loop until the server's handles are closed. */
static void server_stop(void)
{
    sl_rtmp_server_stop(srv);
    uint64_t end = uv_now(&loop) + 5000;
    while (sl_rtmp_server_connections(srv) && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(sl_rtmp_server_connections(srv), 0);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    sl_rtmp_server_free(srv);
    srv = NULL;
}

/* ------------------------------------------------------------------ */
/* a generated FLV: 25 fps "H.264" with a 1 s GOP and "AAC", 3 s       */

static void put_tag(FILE *f, int type, uint32_t ts, const uint8_t *body, size_t n)
{
    uint8_t h[11] = {(uint8_t)type, (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n,
                     (uint8_t)(ts >> 16), (uint8_t)(ts >> 8), (uint8_t)ts, (uint8_t)(ts >> 24), 0, 0, 0};
    uint8_t t[4] = {(uint8_t)((n + 11) >> 24), (uint8_t)((n + 11) >> 16), (uint8_t)((n + 11) >> 8),
                    (uint8_t)(n + 11)};
    fwrite(h, 1, 11, f);
    fwrite(body, 1, n, f);
    fwrite(t, 1, 4, f);
}

static const uint8_t meta_body[] = {0x02, 0x00, 0x0a, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a',
                                    0x08, 0, 0, 0, 1, 0x00, 0x05, 'w', 'i', 'd', 't', 'h',
                                    0x00, 0x40, 0x74, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x09};
static const uint8_t avc_hdr[] = {0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04,
                                  0x67, 0x64, 0x00, 0x1f, 0x01, 0x00, 0x04, 0x68, 0xee, 0x3c, 0x80};
static const uint8_t aac_hdr[] = {0xaf, 0x00, 0x12, 0x10};

/* Fills a video frame body (key or inter) of 200 bytes; returns its length. */
static size_t video_body(uint8_t *b, int key, int n)
{
    memset(b, 0, 200);
    b[0] = key ? 0x17 : 0x27;
    b[1] = 0x01;
    b[5] = 0;
    b[6] = 0;
    b[7] = 0;
    b[8] = 190; /* NAL length */
    b[9] = key ? 0x65 : 0x41;
    b[10] = (uint8_t)n;
    return 200;
}

static void make_flv(const char *path)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    static const uint8_t hdr[13] = {'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0};
    fwrite(hdr, 1, sizeof hdr, f);
    put_tag(f, 18, 0, meta_body, sizeof meta_body);
    put_tag(f, 9, 0, avc_hdr, sizeof avc_hdr);
    put_tag(f, 8, 0, aac_hdr, sizeof aac_hdr);
    uint32_t audio_ts = 0;
    for (int i = 0; i < 75; i++) {
        uint32_t ts = (uint32_t)i * 40;
        uint8_t b[200];
        while (audio_ts <= ts) {
            uint8_t a[24] = {0xaf, 0x01};
            put_tag(f, 8, audio_ts, a, sizeof a);
            audio_ts += 23;
        }
        put_tag(f, 9, ts, b, video_body(b, i % 25 == 0, i));
    }
    fclose(f);
}

/* ------------------------------------------------------------------ */
/* client observers                                                    */

typedef struct {
    sl_client_state_t state;
    int err;
    int n_active;                /* times ACTIVE was entered */
    int n_reconnecting;
    char statuses[2048];         /* codes, space separated */
    /* play */
    int video_frames, audio_frames, data_frames;
    int config_before_media;     /* a video config arrived before the first video frame */
    int first_video_key;         /* -1 unknown, 0/1 */
    int video_cfg_seen;
    int frames_at_mark;          /* video frames when `mark` was set */
    int mark;                    /* watch the first video frame after this */
    int first_after_mark_key;    /* -1 unknown */
} obs_t;

static void obs_init(obs_t *o)
{
    memset(o, 0, sizeof(*o));
    o->first_video_key = -1;
    o->first_after_mark_key = -1;
}

static void on_state(sl_client_t *c, sl_client_state_t s, int err, void *ud)
{
    obs_t *o = ud;
    (void)c;
    o->state = s;
    o->err = err;
    if (s == SL_CLIENT_ACTIVE)
        o->n_active++;
    if (s == SL_CLIENT_RECONNECTING)
        o->n_reconnecting++;
}

static void on_status(sl_client_t *c, const char *level, const char *code, const char *desc, void *ud)
{
    obs_t *o = ud;
    (void)c;
    (void)level;
    (void)desc;
    size_t n = strlen(o->statuses);
    snprintf(o->statuses + n, sizeof o->statuses - n, "%s ", code);
}

static void on_frame(sl_client_t *c, const sl_client_frame_t *f, void *ud)
{
    obs_t *o = ud;
    (void)c;
    if (f->kind == SL_CLIENT_DATA) {
        o->data_frames++;
        return;
    }
    if (f->kind == SL_CLIENT_AUDIO) {
        o->audio_frames++;
        return;
    }
    if (f->config) {
        o->video_cfg_seen = 1;
        return;
    }
    if (o->first_video_key < 0) {
        o->first_video_key = f->keyframe;
        o->config_before_media = o->video_cfg_seen;
    }
    if (o->mark && o->first_after_mark_key < 0)
        o->first_after_mark_key = f->keyframe;
    o->video_frames++;
}

static sl_client_t *mkclient(const char *path, obs_t *o, sl_client_opts_t *opts)
{
    sl_client_opts_t d;
    if (!opts) {
        sl_client_opts_init(&d);
        opts = &d;
    }
    opts->on_state = on_state;
    opts->on_status = on_status;
    opts->on_frame = on_frame;
    opts->ud = o;
    char url[256];
    snprintf(url, sizeof url, "rtmp://127.0.0.1:%d/%s", port, path);
    sl_client_t *c = NULL;
    assert_int_equal(sl_client_new(&loop, url, opts, &c), 0);
    return c;
}

/* Runs the loop until *flag becomes nonzero or ms pass; returns the flag. */
static int wait_for(const int *flag, uint64_t ms)
{
    uint64_t end = uv_now(&loop) + ms;
    while (!*flag && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    return *flag;
}

static int wait_state(const obs_t *o, sl_client_state_t s, uint64_t ms)
{
    uint64_t end = uv_now(&loop) + ms;
    while (o->state != s && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    return o->state == s;
}

static int wait_frames(const obs_t *o, int n, uint64_t ms)
{
    uint64_t end = uv_now(&loop) + ms;
    while (o->video_frames < n && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    return o->video_frames >= n;
}

static void run_for(uint64_t ms)
{
    uint64_t end = uv_now(&loop) + ms;
    while (uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
}

/* ------------------------------------------------------------------ */
/* fixtures                                                            */

static int setup(void **state)
{
    (void)state;
    blocks_before = sl_alloc_blocks();
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(sl_config_defaults(&cfg), 0);
    port = free_port();
    sl_rtmp_cfg(&cfg)->port = port;
    sl_log_set_level(getenv("CLIENT_TEST_DEBUG") ? SL_LOG_DEBUG : SL_LOG_ERROR);
    assert_int_equal(sl_core_init(&core, &loop, &cfg), 0);
    memset(&seen, 0, sizeof seen);
    assert_true(sl_admit_add_check(&core, "test-creds", 0, cred_check, &seen) > 0);
    server_start();
    uv_timer_init(&loop, &ticker);
    uv_timer_start(&ticker, tick, 10, 10); /* keeps UV_RUN_ONCE from sleeping forever */
    snprintf(flv_path, sizeof flv_path, "/tmp/sl_client_test_%d.flv", (int)getpid());
    make_flv(flv_path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (srv)
        server_stop();
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    sl_admit_cleanup(&core);
    sl_core_cleanup(&core);
    sl_config_cleanup(&cfg);
    sl_frame_pool_drain();
    unlink(flv_path);
    assert_int_equal(sl_alloc_blocks(), blocks_before);
    return 0;
}

static void free_and_drain(sl_client_t *c)
{
    sl_client_free(c);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

/* ------------------------------------------------------------------ */
/* tests                                                               */

static void test_url_parsing(void **state)
{
    (void)state;
    sl_client_t *c = NULL;
    assert_int_equal(sl_client_new(&loop, "http://h/live/s", NULL, &c), SL_EINVAL);
    assert_null(c);
    assert_int_equal(sl_client_new(&loop, "rtmp://h", NULL, &c), SL_EINVAL);
    assert_int_equal(sl_client_new(&loop, "rtmp://h:99999/live/s", NULL, &c), SL_EINVAL);
    assert_int_equal(sl_client_new(&loop, "rtmp://h:/live/s", NULL, &c), SL_EINVAL);
    assert_int_equal(sl_client_new(&loop, "rtmp://[::1/live/s", NULL, &c), SL_EINVAL);

    assert_int_equal(sl_client_new(&loop, "rtmp://h/live", NULL, &c), 0);
    assert_string_equal(sl_client_stream_name(c), "");
    assert_int_equal(sl_client_play(c), SL_EINVAL); /* no stream name */
    free_and_drain(c);

    assert_int_equal(sl_client_new(&loop, "rtmp://[::1]:1936/live/room1/s1?token=x", NULL, &c), 0);
    assert_string_equal(sl_client_stream_name(c), "room1/s1");
    assert_int_equal(sl_client_state(c), SL_CLIENT_IDLE);
    free_and_drain(c);

    sl_client_opts_t o;
    sl_client_opts_init(&o);
    o.app = "live/room1";
    assert_int_equal(sl_client_new(&loop, "rtmp://h/live/room1/s1", &o, &c), 0);
    assert_string_equal(sl_client_stream_name(c), "s1");
    free_and_drain(c);

    /* rtmps: the same URL forms; the CA file is loaded (and checked) here */
    assert_int_equal(sl_client_new(&loop, "rtmps://h", NULL, &c), SL_EINVAL);
    assert_int_equal(sl_client_new(&loop, "rtmps://h:0/live/s", NULL, &c), SL_EINVAL);
    assert_int_equal(sl_client_new(&loop, "rtmps://h/live/s", NULL, &c), 0); /* system CAs */
    assert_string_equal(sl_client_stream_name(c), "s");
    free_and_drain(c);
    sl_client_opts_init(&o);
    o.tls_ca_file = "/nonexistent/ca.pem";
    assert_int_equal(sl_client_new(&loop, "rtmps://h:1936/live/s", &o, &c), SL_EINVAL);
    assert_null(c);
    assert_int_equal(sl_client_new(&loop, "rtmp://h/live/s", &o, &c), 0); /* unused for rtmp */
    free_and_drain(c);
    o.tls_ca_file = NULL;
    o.tls_insecure = 1;
    assert_int_equal(sl_client_new(&loop, "RTMPS://[::1]/live/room1/s1", &o, &c), 0);
    assert_string_equal(sl_client_stream_name(c), "room1/s1");
    free_and_drain(c);
}

static void test_publish_file_and_play(void **state)
{
    (void)state;
    obs_t po, vo;
    obs_init(&po);
    obs_init(&vo);
    sl_client_opts_t o;
    sl_client_opts_init(&o);
    o.username = "alice";
    o.password = "secret";
    o.token = "tok123";
    sl_client_t *pub = mkclient("live/s1", &po, &o);
    assert_int_equal(sl_client_publish_flv(pub, flv_path, SL_CLIENT_FLV_REALTIME | SL_CLIENT_FLV_LOOP), 0);
    assert_int_equal(sl_client_publish_flv(pub, flv_path, 0), SL_EBUSY);
    assert_true(wait_state(&po, SL_CLIENT_ACTIVE, 5000));
    assert_non_null(strstr(po.statuses, "NetConnection.Connect.Success"));
    assert_non_null(strstr(po.statuses, "NetStream.Publish.Start"));

    /* The credentials reached the server's admission chain. */
    assert_int_equal(seen.n_connects, 1);
    assert_string_equal(seen.user, "alice");
    assert_string_equal(seen.pass, "secret");
    assert_string_equal(seen.token, "tok123");

    /* Join mid-GOP: the player must still start with headers and a keyframe. */
    run_for(500);
    sl_client_t *play = mkclient("live/s1", &vo, NULL);
    assert_int_equal(sl_client_play(play), 0);
    assert_true(wait_state(&vo, SL_CLIENT_ACTIVE, 5000));
    assert_non_null(strstr(vo.statuses, "NetStream.Play.Start"));
    assert_true(wait_frames(&vo, 40, 5000));
    assert_int_equal(vo.first_video_key, 1);
    assert_int_equal(vo.config_before_media, 1);
    assert_true(vo.audio_frames > 0);
    assert_true(vo.data_frames > 0); /* onMetaData */
    assert_int_equal(seen.n_connects, 2);
    assert_string_equal(seen.user, ""); /* the player sent none */

    sl_client_stats_t st;
    sl_client_get_stats(pub, &st);
    assert_true(st.frames_out > 40);
    assert_true(st.bytes_out > 8000);
    sl_client_get_stats(play, &st);
    assert_true(st.frames_in > 40);
    assert_int_equal(st.reconnects, 0);

    sl_client_close(play);
    assert_int_equal(vo.state, SL_CLIENT_CLOSED);
    assert_int_equal(vo.err, 0);
    sl_client_close(pub);
    assert_int_equal(po.state, SL_CLIENT_CLOSED);
    sl_client_free(play);
    sl_client_free(pub);
    run_for(100);
}

typedef struct {
    int done, err;
    char json[512];
} call_t;

static void on_result(sl_client_t *c, int err, const char *json, void *ud)
{
    call_t *r = ud;
    (void)c;
    r->done = 1;
    r->err = err;
    snprintf(r->json, sizeof r->json, "%s", json);
}

static void test_calls(void **state)
{
    (void)state;
    obs_t o;
    obs_init(&o);
    sl_client_t *c = mkclient("live", &o, NULL);
    assert_int_equal(sl_client_call(c, "FCPublish", "[]", on_result, NULL), SL_EINVAL); /* not connected */
    assert_int_equal(sl_client_connect(c), 0);
    assert_true(wait_state(&o, SL_CLIENT_ACTIVE, 5000));
    call_t ok = {0}, bad = {0}, lost = {0};
    assert_int_equal(sl_client_call(c, "FCPublish", "[\"x\"]", on_result, &ok), 0);
    assert_int_equal(sl_client_call(c, "noSuchMethod", "[1, \"two\", {\"three\": [true, null]}]",
                                    on_result, &bad), 0);
    assert_int_equal(sl_client_call(c, "x", "{\"not\": \"an array\"}", on_result, &bad), SL_EINVAL);
    assert_int_equal(sl_client_call(c, "x", "[", on_result, &bad), SL_EINVAL);
    assert_true(wait_for(&ok.done, 3000));
    assert_int_equal(ok.err, 0);
    assert_true(wait_for(&bad.done, 3000));
    assert_int_equal(bad.err, SL_EDENIED);
    assert_non_null(strstr(bad.json, "NetConnection.Call.Failed"));
    assert_non_null(strstr(bad.json, "noSuchMethod"));
    /* A call still pending when the client closes is answered with SL_ECLOSED. */
    assert_int_equal(sl_client_call(c, "getStreamLength", "[\"s\"]", on_result, &lost), 0);
    sl_client_close(c);
    assert_int_equal(lost.done, 1);
    assert_int_equal(lost.err, SL_ECLOSED);
    sl_client_free(c);
    run_for(50);
}

static void test_rejected_is_final(void **state)
{
    (void)state;
    obs_t o;
    obs_init(&o);
    sl_client_opts_t opts;
    sl_client_opts_init(&opts);
    opts.username = "mallory";
    opts.password = "wrong";
    opts.reconnect.enabled = 1;
    opts.reconnect.initial_ms = 10;
    sl_client_t *c = mkclient("live/s2", &o, &opts);
    assert_int_equal(sl_client_publish(c), 0);
    assert_true(wait_state(&o, SL_CLIENT_CLOSED, 5000));
    assert_int_equal(o.err, SL_EDENIED);
    assert_int_equal(o.n_reconnecting, 0);
    assert_non_null(strstr(o.statuses, "NetConnection.Connect.Rejected"));
    assert_string_equal(seen.user, "mallory");
    run_for(100);
    assert_int_equal(seen.n_connects, 1); /* no second attempt */
    sl_client_free(c);
    run_for(50);
}

static void test_connection_refused(void **state)
{
    (void)state;
    obs_t o;
    obs_init(&o);
    sl_client_opts_t opts;
    sl_client_opts_init(&opts);
    opts.reconnect.enabled = 1;
    opts.reconnect.initial_ms = 10;
    opts.reconnect.max_ms = 20;
    opts.reconnect.max_attempts = 3;
    char url[128];
    snprintf(url, sizeof url, "rtmp://127.0.0.1:%d/live/s", free_port());
    opts.on_state = on_state;
    opts.on_status = on_status;
    opts.ud = &o;
    sl_client_t *c = NULL;
    assert_int_equal(sl_client_new(&loop, url, &opts, &c), 0);
    assert_int_equal(sl_client_play(c), 0);
    assert_true(wait_state(&o, SL_CLIENT_CLOSED, 5000));
    assert_int_equal(o.err, UV_ECONNREFUSED);
    assert_int_equal(o.n_reconnecting, 2); /* three attempts in all */
    assert_non_null(strstr(o.statuses, "NetConnection.Connect.Failed"));
    sl_client_stats_t st;
    sl_client_get_stats(c, &st);
    assert_int_equal(st.reconnects, 2);
    sl_client_free(c);
    run_for(50);
}

static void test_push_frames_and_flv_out(void **state)
{
    (void)state;
    obs_t po, vo;
    obs_init(&po);
    obs_init(&vo);
    sl_client_t *pub = mkclient("live/pushed", &po, NULL);
    assert_int_equal(sl_client_write(pub, SL_CLIENT_VIDEO, 0, avc_hdr, sizeof avc_hdr), SL_EINVAL);
    assert_int_equal(sl_client_publish(pub), 0);
    /* Headers pushed early are remembered and go out once publishing starts. */
    assert_int_equal(sl_client_write(pub, SL_CLIENT_DATA, 0, meta_body, sizeof meta_body), SL_EAGAIN);
    assert_int_equal(sl_client_write(pub, SL_CLIENT_VIDEO, 0, avc_hdr, sizeof avc_hdr), SL_EAGAIN);
    assert_int_equal(sl_client_write(pub, SL_CLIENT_AUDIO, 0, aac_hdr, sizeof aac_hdr), SL_EAGAIN);
    assert_true(wait_state(&po, SL_CLIENT_ACTIVE, 5000));
    assert_int_equal(sl_client_write(pub, 7, 0, aac_hdr, sizeof aac_hdr), SL_EINVAL);
    uint8_t b[200];
    int n = 0;
    /* An inter frame before any keyframe is held back (not an error). */
    assert_int_equal(sl_client_write(pub, SL_CLIENT_VIDEO, 0, b, video_body(b, 0, n)), 0);
    for (; n < 10; n++)
        assert_int_equal(sl_client_write(pub, SL_CLIENT_VIDEO, (uint32_t)n * 40, b, video_body(b, n == 0, n)), 0);

    char out[64];
    snprintf(out, sizeof out, "/tmp/sl_client_test_out_%d.flv", (int)getpid());
    sl_client_opts_t o;
    sl_client_opts_init(&o);
    o.flv_out = out;
    sl_client_t *play = mkclient("live/pushed", &vo, &o);
    assert_int_equal(sl_client_play(play), 0);
    assert_true(wait_state(&vo, SL_CLIENT_ACTIVE, 5000));
    assert_true(wait_frames(&vo, 10, 3000));
    for (; n < 40; n++)
        assert_int_equal(sl_client_write(pub, SL_CLIENT_VIDEO, (uint32_t)n * 40, b, video_body(b, n % 25 == 0, n)), 0);
    assert_true(wait_frames(&vo, 40, 3000));
    assert_int_equal(vo.first_video_key, 1);
    sl_client_stats_t st;
    sl_client_get_stats(pub, &st);
    assert_int_equal(st.frames_out, 3 + 40);
    assert_int_equal(st.frames_dropped, 3 + 1);
    sl_client_close(play);
    sl_client_free(play);
    sl_client_free(pub);
    run_for(50);

    /* The recording reads back: metadata, headers, then a keyframe, 40 frames. */
    sl_client_flv_t *r = NULL;
    assert_int_equal(sl_client_flv_open(out, &r), 0);
    sl_client_frame_t f;
    int video = 0, meta = 0, first_key = -1, cfg_first = 0;
    uint32_t last_ts = 0;
    while (sl_client_flv_next(r, &f) == 1) {
        if (f.kind == SL_CLIENT_DATA)
            meta++;
        if (f.kind == SL_CLIENT_VIDEO && f.config && video == 0)
            cfg_first = 1;
        if (f.kind == SL_CLIENT_VIDEO && !f.config) {
            if (first_key < 0)
                first_key = f.keyframe;
            video++;
            last_ts = f.ts_ms;
        }
    }
    sl_client_flv_close(r);
    unlink(out);
    assert_int_equal(meta, 1);
    assert_int_equal(cfg_first, 1);
    assert_int_equal(first_key, 1);
    assert_int_equal(video, 40);
    assert_int_equal(last_ts, 39 * 40);
    assert_int_equal(sl_client_flv_open("/nonexistent/x.flv", &r), -2 /* -ENOENT */);
}

static void test_reconnect_after_server_restart(void **state)
{
    (void)state;
    obs_t po, vo;
    obs_init(&po);
    obs_init(&vo);
    sl_client_opts_t o;
    sl_client_opts_init(&o);
    o.reconnect.enabled = 1;
    o.reconnect.initial_ms = 100;
    o.reconnect.max_ms = 400;
    sl_client_t *pub = mkclient("live/r1", &po, &o);
    assert_int_equal(sl_client_publish_flv(pub, flv_path, SL_CLIENT_FLV_REALTIME | SL_CLIENT_FLV_LOOP), 0);
    assert_true(wait_state(&po, SL_CLIENT_ACTIVE, 5000));
    sl_client_t *play = mkclient("live/r1", &vo, &o);
    assert_int_equal(sl_client_play(play), 0);
    assert_true(wait_frames(&vo, 10, 5000));

    /* The server goes away: both clients notice and start retrying. */
    server_stop();
    assert_true(wait_state(&vo, SL_CLIENT_RECONNECTING, 3000) || vo.n_reconnecting > 0);
    assert_true(po.n_reconnecting > 0 || wait_state(&po, SL_CLIENT_RECONNECTING, 3000));
    assert_non_null(strstr(vo.statuses, "NetConnection.Connect.Closed"));
    run_for(600); /* a few refused attempts while the port is closed */

    /* It comes back on the same port: both are ACTIVE again, media flows,
     * and the player restarts on a keyframe. */
    server_start();
    vo.mark = 1;
    int before = vo.video_frames;
    assert_true(wait_state(&po, SL_CLIENT_ACTIVE, 5000));
    assert_true(wait_state(&vo, SL_CLIENT_ACTIVE, 5000));
    assert_true(wait_frames(&vo, before + 20, 5000));
    assert_int_equal(vo.first_after_mark_key, 1);
    assert_true(po.n_active >= 2 && vo.n_active >= 2);
    sl_client_stats_t st;
    sl_client_get_stats(play, &st);
    assert_true(st.reconnects >= 1);
    sl_client_get_stats(pub, &st);
    assert_true(st.reconnects >= 1);

    sl_client_free(play);
    sl_client_free(pub);
    run_for(50);
}

/*
 * Allocation failure at every step of sl_client_new (builds with
 * SL_FAULT_INJECTION only): each either succeeds or returns SL_ENOMEM with
 * nothing allocated; teardown checks that no block is left.
 */
static void test_new_allocation_failures(void **state)
{
    (void)state;
    if (!sl_alloc_fail_at(0, 0))
        skip();
    int n;
    for (n = 1; n < 200; n++) {
        sl_client_opts_t o;
        sl_client_opts_init(&o);
        o.username = "u";
        o.password = "p";
        o.token = "t";
        o.app = "live";
        o.flv_out = "/dev/null";
        sl_client_t *c = NULL;
        uint64_t failed = sl_alloc_failed_count();
        sl_alloc_fail_at((uint64_t)n, 0);
        int rc = sl_client_new(&loop, "rtmp://127.0.0.1:1/live/s?q=1", &o, &c);
        sl_alloc_fail_at(0, 0);
        if (rc) {
            assert_int_equal(rc, SL_ENOMEM);
            assert_null(c);
            continue;
        }
        free_and_drain(c);
        if (sl_alloc_failed_count() == failed)
            break; /* every allocation of sl_client_new has been failed once */
    }
    assert_true(n > 5 && n < 200);
}


/* ------------------------------------------------------------------ */
/* shared objects and server calls                                     */

/* One object's events as text: "I@v;C:k=json@v;S:k@v;R:k;D:k;X;M:h=json;T:code=level;" */
typedef struct {
    char log[8192];
    int initial, success, changes, messages, deletes, rejects, statuses;
    int close_on_message;          /* sl_client_so_close inside the MESSAGE callback */
} so_rec_t;

static void so_cb(sl_client_so_t *so, sl_client_so_event_t ev, const char *key, const char *json,
                  uint32_t version, void *ud)
{
    so_rec_t *r = ud;
    size_t n = strlen(r->log);
    char *p = r->log + n;
    size_t cap = sizeof r->log - n;
    switch (ev) {
    case SL_CLIENT_SO_INITIAL:
        snprintf(p, cap, "I@%u;", version);
        r->initial++;
        break;
    case SL_CLIENT_SO_CHANGE:
        snprintf(p, cap, "C:%s=%.40s@%u;", key, json, version);
        r->changes++;
        break;
    case SL_CLIENT_SO_SUCCESS:
        snprintf(p, cap, "S:%s@%u;", key, version);
        r->success++;
        break;
    case SL_CLIENT_SO_REJECT:
        snprintf(p, cap, "R:%s;", key);
        r->rejects++;
        break;
    case SL_CLIENT_SO_DELETE:
        snprintf(p, cap, "D:%s;", key);
        r->deletes++;
        break;
    case SL_CLIENT_SO_CLEAR:
        snprintf(p, cap, "X;");
        break;
    case SL_CLIENT_SO_MESSAGE:
        snprintf(p, cap, "M:%s=%s;", key, json);
        r->messages++;
        if (r->close_on_message)
            sl_client_so_close(so);
        break;
    case SL_CLIENT_SO_STATUS:
        snprintf(p, cap, "T:%s=%s;", key, json);
        r->statuses++;
        break;
    }
}

static sl_plugins_t *so_module_start(void)
{
    static const sl_builtin_t *const only[] = {&sl_shared_objects_builtin, NULL};
    sl_plugins_t *mod = NULL;
    assert_int_equal(sl_plugins_start(&core, NULL, only, &mod), 0);
    return mod;
}

static void so_module_stop(sl_plugins_t *mod)
{
    sl_plugins_stop(mod);
    run_for(20);
    sl_plugins_free(mod);
}

static void test_shared_objects(void **state)
{
    (void)state;
    sl_plugins_t *mod = so_module_start();
    obs_t oa, ob;
    obs_init(&oa);
    obs_init(&ob);
    sl_client_t *a = mkclient("live", &oa, NULL), *b = mkclient("live", &ob, NULL);
    so_rec_t ra, rb;
    memset(&ra, 0, sizeof ra);
    memset(&rb, 0, sizeof rb);
    sl_client_so_t *sa = NULL, *sb = NULL, *dup = NULL;
    /* Not started: no join. */
    assert_int_equal(sl_client_so_join(a, "board", 0, so_cb, &ra, &sa), SL_EINVAL);
    assert_int_equal(sl_client_connect(a), 0);
    /* Joined while connecting: the join goes out at CONNECTED. */
    assert_int_equal(sl_client_so_join(a, "board", 0, so_cb, &ra, &sa), 0);
    assert_int_equal(sl_client_so_join(a, "board", 0, so_cb, &ra, &dup), SL_EBUSY);
    assert_int_equal(sl_client_so_set(sa, "k", "1"), SL_EINVAL); /* not connected yet */
    char longname[300];
    memset(longname, 'n', 256);
    longname[256] = 0;
    assert_int_equal(sl_client_so_join(a, longname, 0, so_cb, &ra, &dup), SL_EINVAL);
    assert_int_equal(sl_client_so_join(a, "", 0, so_cb, &ra, &dup), SL_EINVAL);
    assert_true(wait_for(&ra.initial, 5000));
    assert_string_equal(sl_client_so_name(sa), "board");
    assert_ptr_equal(sl_client_so_client(sa), a);

    assert_int_equal(sl_client_so_set(sa, "k", "{\"a\": [1, \"two\", null]}"), 0);
    assert_int_equal(sl_client_so_set(sa, "k", "{bad json"), SL_EINVAL);
    assert_int_equal(sl_client_so_set(sa, "", "1"), SL_EINVAL);
    assert_true(wait_for(&ra.success, 5000));
    assert_string_equal(ra.log, "I@0;S:k@1;");

    /* A late joiner gets the data; its write reaches a as a change. */
    assert_int_equal(sl_client_connect(b), 0);
    assert_true(wait_state(&ob, SL_CLIENT_ACTIVE, 5000));
    assert_int_equal(sl_client_so_join(b, "board", 0, so_cb, &rb, &sb), 0);
    assert_true(wait_for(&rb.changes, 5000));
    assert_string_equal(rb.log, "I@1;C:k={\"a\":[1,\"two\",null]}@1;");
    assert_int_equal(sl_client_so_set(sb, "n", "2.5"), 0);
    assert_true(wait_for(&ra.changes, 5000));
    assert_true(wait_for(&rb.success, 5000));
    assert_non_null(strstr(ra.log, "C:n=2.5@2;"));
    assert_int_equal(sl_client_so_version(sa), 2);

    /* A message reaches everyone, the sender too; a delete too. */
    assert_int_equal(sl_client_so_send(sb, "onChat", "[\"hi\", 3]"), 0);
    assert_int_equal(sl_client_so_send(sb, "onChat", "{\"no\": 1}"), SL_EINVAL);
    assert_true(wait_for(&ra.messages, 5000));
    assert_true(wait_for(&rb.messages, 5000));
    assert_non_null(strstr(ra.log, "M:onChat=[\"hi\",3];"));
    assert_int_equal(sl_client_so_delete(sa, "k"), 0);
    assert_true(wait_for(&rb.deletes, 5000));
    assert_true(wait_for(&ra.deletes, 5000));

    /* Over the app's value limit (64k): REJECT of that key, then the status; still usable. */
    size_t big = 70000;
    char *v = malloc(big + 3);
    v[0] = '"';
    memset(v + 1, 'x', big);
    v[big + 1] = '"';
    v[big + 2] = 0;
    assert_int_equal(sl_client_so_set(sa, "huge", v), 0);
    free(v);
    assert_true(wait_for(&ra.statuses, 5000));
    assert_int_equal(ra.rejects, 1);
    assert_non_null(strstr(ra.log, "R:huge;T:SharedObject."));
    assert_non_null(strstr(ra.log, "=\"error\";"));
    int before = ra.success;
    assert_int_equal(sl_client_so_set(sa, "ok", "true"), 0);
    run_for(1);
    uint64_t end = uv_now(&loop) + 5000;
    while (ra.success == before && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(ra.success, before + 1);

    /* Closed inside its own callback: nothing more for b, the handle is gone. */
    rb.close_on_message = 1;
    int b_changes = rb.changes;
    assert_int_equal(sl_client_so_send(sa, "bye", NULL), 0);
    assert_true(wait_for(&ra.messages, 5000));
    end = uv_now(&loop) + 5000;
    while (ra.messages < 2 && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(rb.messages, 2);
    assert_int_equal(sl_client_so_set(sa, "after", "1"), 0);
    run_for(200);
    assert_int_equal(rb.changes, b_changes);
    /* b can join again under the same name. */
    memset(&rb, 0, sizeof rb);
    assert_int_equal(sl_client_so_join(b, "board", 0, so_cb, &rb, &sb), 0);
    assert_true(wait_for(&rb.initial, 5000));

    /* Objects still joined at free are released with the client (no leak). */
    sl_client_so_close(sa);
    free_and_drain(a);
    free_and_drain(b);
    run_for(50);
    so_module_stop(mod);
}

/*
 * The server restarts: the object is joined again by itself after the
 * reconnection (INITIAL again, then the data as the server now has it: a
 * non-persistent object starts empty), and writes work again.
 */
static void test_so_rejoined_after_reconnection(void **state)
{
    (void)state;
    sl_plugins_t *mod = so_module_start();
    obs_t o;
    obs_init(&o);
    sl_client_opts_t opts;
    sl_client_opts_init(&opts);
    opts.reconnect.enabled = 1;
    opts.reconnect.initial_ms = 100;
    opts.reconnect.max_ms = 400;
    sl_client_t *c = mkclient("live", &o, &opts);
    so_rec_t r;
    memset(&r, 0, sizeof r);
    sl_client_so_t *so = NULL;
    assert_int_equal(sl_client_connect(c), 0);
    assert_int_equal(sl_client_so_join(c, "board", 0, so_cb, &r, &so), 0);
    assert_true(wait_for(&r.initial, 5000));
    assert_int_equal(sl_client_so_set(so, "k", "1"), 0);
    assert_true(wait_for(&r.success, 5000));
    server_stop();
    assert_true(wait_state(&o, SL_CLIENT_RECONNECTING, 3000) || o.n_reconnecting > 0);
    assert_int_equal(sl_client_so_set(so, "k", "2"), SL_EINVAL); /* not connected */
    server_start();
    uint64_t end = uv_now(&loop) + 5000;
    while (r.initial < 2 && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(r.initial, 2);
    assert_int_equal(sl_client_so_set(so, "k", "3"), 0);
    end = uv_now(&loop) + 5000;
    while (r.success < 2 && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(r.success, 2);
    assert_string_equal(r.log, "I@0;S:k@1;I@0;S:k@1;");
    free_and_drain(c);
    run_for(50);
    so_module_stop(mod);
}

/* Feeds hand-made type 19/16 bodies to the parser of a client not connected. */
static void test_so_parser_bounds(void **state)
{
    (void)state;
    obs_t o;
    obs_init(&o);
    sl_client_t *c = mkclient("live", &o, NULL);
    c->mode = SL__MODE_CONNECT; /* as if started, so that a join is accepted */
    so_rec_t r;
    memset(&r, 0, sizeof r);
    sl_client_so_t *so = NULL;
    assert_int_equal(sl_client_so_join(c, "b", 0, so_cb, &r, &so), 0);
    /* header: name "b", version 7, flags 0, 0; events */
    static const uint8_t hdr[] = {0, 1, 'b', 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0};
    uint8_t m[256];
    memcpy(m, hdr, sizeof hdr);
    size_t n = sizeof hdr;
    /* initial; update data with two pairs (k1 = 1, k2 = "s"); status code/level */
    static const uint8_t evs[] = {11, 0, 0, 0, 0,
                                  4, 0, 0, 0, 21, 0, 2, 'k', '1', 0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0,
                                  0, 2, 'k', '2', 2, 0, 1, 's',
                                  7, 0, 0, 0, 10, 0, 3, 'c', 'o', 'd', 0, 3, 'l', 'v', 'l'};
    memcpy(m + n, evs, sizeof evs);
    assert_int_equal(sl__client_on_so(c, m, n + sizeof evs, 0), 0);
    assert_string_equal(r.log, "I@7;C:k1=1@7;C:k2=\"s\"@7;T:cod=\"lvl\";");
    /* flex form: leading 0, then the same; a non-zero encoding byte is dropped. */
    uint8_t f[300];
    f[0] = 0;
    memcpy(f + 1, m, n + 5);
    r.log[0] = 0;
    assert_int_equal(sl__client_on_so(c, f, n + 6, 1), 0);
    assert_string_equal(r.log, "I@7;");
    f[0] = 3;
    r.log[0] = 0;
    assert_int_equal(sl__client_on_so(c, f, n + 6, 1), 0);
    assert_string_equal(r.log, "");
    /* Every truncation of the message: no read past the end, events before the cut only. */
    for (size_t cut = 0; cut < n + sizeof evs; cut++) {
        uint8_t *t = malloc(cut ? cut : 1); /* exact size: ASan sees any overread */
        memcpy(t, m, cut);
        assert_int_equal(sl__client_on_so(c, t, cut, 0), 0);
        free(t);
    }
    /* A key length past the event, an event length past the message, another object. */
    r.log[0] = 0;
    static const uint8_t badkey[] = {9, 0, 0, 0, 3, 0, 0xff, 'k'};
    memcpy(m + n, badkey, sizeof badkey);
    assert_int_equal(sl__client_on_so(c, m, n + sizeof badkey, 0), 0);
    static const uint8_t badlen[] = {9, 0xff, 0xff, 0xff, 0xff, 0, 1, 'k'};
    memcpy(m + n, badlen, sizeof badlen);
    assert_int_equal(sl__client_on_so(c, m, n + sizeof badlen, 0), 0);
    m[2] = 'z';
    memcpy(m + n, evs, 5);
    assert_int_equal(sl__client_on_so(c, m, n + 5, 0), 0);
    assert_string_equal(r.log, "");
    /* More events than the cap: the first SL__SO_MAX_EVENTS only. */
    m[2] = 'b';
    size_t many = SL__SO_MAX_EVENTS + 10;
    uint8_t *big = malloc(n + many * 5);
    memcpy(big, m, n);
    for (size_t i = 0; i < many; i++)
        memcpy(big + n + i * 5, (const uint8_t[]){8, 0, 0, 0, 0}, 5);
    assert_int_equal(sl__client_on_so(c, big, n + many * 5, 0), 0);
    free(big);
    assert_int_equal(strlen(r.log), 2 * SL__SO_MAX_EVENTS); /* "X;" each */
    free_and_drain(c);
}

static int last_count_err;

static void on_result_count(sl_client_t *c, int err, const char *json, void *ud)
{
    (void)c, (void)json;
    (*(int *)ud)++;
    last_count_err = err;
}

static char *never_called(sl_client_t *c, const char *method, const char *args, int *is_error,
                          void *ud)
{
    (void)c, (void)method, (void)args, (void)is_error, (void)ud;
    fail();
    return NULL;
}

static void test_call_timeout_and_invoke_registry(void **state)
{
    (void)state;
    obs_t o;
    obs_init(&o);
    sl_client_t *c = mkclient("live", &o, NULL);
    /* The registry: replace, remove, limits. */
    assert_int_equal(sl_client_on_invoke(c, "", NULL, NULL), SL_EINVAL);
    for (int i = 0; i < 64; i++) {
        char m[16];
        snprintf(m, sizeof m, "m%d", i);
        assert_int_equal(sl_client_on_invoke(c, m, never_called, NULL), 0);
    }
    assert_int_equal(sl_client_on_invoke(c, "one-more", never_called, NULL), SL_ETOOBIG);
    assert_int_equal(sl_client_on_invoke(c, "m3", NULL, NULL), 0);
    assert_int_equal(sl_client_on_invoke(c, "one-more", never_called, NULL), 0);
    assert_int_equal(sl_client_on_invoke(c, "absent", NULL, NULL), 0);
    assert_int_equal(sl_client_connect(c), 0);
    assert_true(wait_state(&o, SL_CLIENT_ACTIVE, 5000));
    /* Answered before the deadline: the result, and no timeout later. */
    call_t ok = {0};
    assert_int_equal(sl_client_call_timeout(c, "FCPublish", "[\"x\"]", 3000, on_result, &ok), 0);
    assert_true(wait_for(&ok.done, 3000));
    assert_int_equal(ok.err, 0);
    /* A deadline that passes before the server could read the call (the loop runs its
     * timers before it polls sockets): UV_ETIMEDOUT once, the late _result is ignored. */
    int late_n = 0;
    call_t late = {0}, lost = {0};
    assert_int_equal(sl_client_call_timeout(c, "FCPublish", "[\"y\"]", 1, on_result_count, &late_n),
                     0);
    assert_int_equal(sl_client_call_timeout(c, "FCPublish", "[\"z\"]", 60000, on_result, &late), 0);
    usleep(5000);
    uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(late_n, 1);
    assert_int_equal(last_count_err, UV_ETIMEDOUT);
    assert_true(wait_for(&late.done, 3000)); /* the one with time left is answered */
    assert_int_equal(late.err, 0);
    run_for(100);
    assert_int_equal(late_n, 1);
    /* A pending call with a deadline that the close ends first: SL_ECLOSED once. */
    assert_int_equal(sl_client_call_timeout(c, "getStreamLength", "[\"s\"]", 60000, on_result, &lost),
                     0);
    sl_client_close(c);
    assert_int_equal(lost.done, 1);
    assert_int_equal(lost.err, SL_ECLOSED);
    run_for(50);
    sl_client_free(c);
    run_for(50);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_url_parsing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_allocation_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_file_and_play, setup, teardown),
        cmocka_unit_test_setup_teardown(test_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejected_is_final, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_frames_and_flv_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_after_server_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_so_parser_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_so_rejoined_after_reconnection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_timeout_and_invoke_registry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
