/*
 * HTTP client tests against a loopback stub server on the same loop
 * (http_stub.h): a JSON POST and what went over the wire, connection
 * reuse, timeouts, refused connections, cancellation (the callback never
 * runs), a slow request not holding up a fast one, the response cap,
 * closing with and without a drain, freeing from inside a callback, and
 * allocation failure at every step. Every test ends with the loop closed
 * cleanly and every sl_malloc block returned.
 */
#define _GNU_SOURCE /* strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/http_client.h"
#include "sluice/errors.h"

#include "http_stub.h"

typedef struct result {
    int calls;
    int status;
    char body[4096];
    uint64_t at_ms;
    sl_http_client_t *free_cli; /* free this client from inside the callback */
} result_t;

static uv_loop_t g_loop;
static int64_t g_blocks;

static void on_done(int status, const char *body, size_t len, void *ud)
{
    result_t *r = ud;
    r->calls++;
    r->status = status;
    snprintf(r->body, sizeof r->body, "%.*s", (int)len, body);
    r->at_ms = uv_now(&g_loop);
    if (r->free_cli)
        sl_http_client_free(r->free_cli);
}

typedef struct watchdog {
    uint64_t deadline;
    int expired;
} watchdog_t;

static void watchdog_cb(uv_timer_t *t)
{
    watchdog_t *w = t->data;
    if (uv_now(t->loop) >= w->deadline)
        w->expired = 1;
}

/*
 * Runs the loop until *flag is non-zero or ms pass; returns *flag. The
 * watchdog ticks every 10 ms because UV_RUN_ONCE may run a callback that
 * sets the flag and then still block in poll until the next event.
 */
static int run_until(const int *flag, uint64_t ms)
{
    uv_timer_t wd;
    watchdog_t w = {.deadline = uv_now(&g_loop) + ms};
    uv_timer_init(&g_loop, &wd);
    wd.data = &w;
    uv_timer_start(&wd, watchdog_cb, 10, 10);
    while (!*flag && !w.expired)
        uv_run(&g_loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wd, NULL);
    uv_run(&g_loop, UV_RUN_NOWAIT);
    return *flag;
}

static long respond_plain(stub_t *s, const char *path, const char *body, int *status,
                          const char **resp, void *ud)
{
    (void)s;
    (void)body;
    (void)ud;
    if (strcmp(path, "/never") == 0)
        return -1;
    if (strcmp(path, "/slow") == 0) {
        *resp = "{\"slow\":true}";
        return 500;
    }
    if (strcmp(path, "/big") == 0) {
        static char big[3000];
        memset(big, 'x', sizeof big - 1);
        *resp = big;
        return 0;
    }
    if (strcmp(path, "/delay100") == 0) {
        *resp = "{\"late\":true}";
        return 100;
    }
    if (strcmp(path, "/404") == 0)
        *status = 404;
    *resp = "{\"ok\":true}";
    return 0;
}

static int setup(void **state)
{
    (void)state;
    g_blocks = sl_alloc_blocks();
    return uv_loop_init(&g_loop);
}

static int teardown(void **state)
{
    (void)state;
    uv_run(&g_loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&g_loop), 0); /* no handle left */
    assert_int_equal(sl_alloc_blocks(), g_blocks); /* no block left */
    return 0;
}

/* Closes client and stub and drains the loop. */
static void finish(sl_http_client_t *cli, stub_t *stub)
{
    if (cli)
        sl_http_client_free(cli);
    if (stub)
        stub_stop(stub);
    uv_run(&g_loop, UV_RUN_DEFAULT);
}

static void test_post_json_and_reuse(void **state)
{
    (void)state;
    stub_t stub;
    assert_int_equal(stub_start(&stub, &g_loop, respond_plain, NULL), 0);
    sl_http_client_t *cli;
    assert_int_equal(sl_http_client_new(&g_loop, NULL, &cli), 0);
    char url[128];
    const char *hdrs[] = {"X-Test: 1", NULL};
    result_t r = {0};
    sl_http_client_req_t *req;
    assert_int_equal(sl_http_client_post_json(cli, stub_url(&stub, "/validate", url, sizeof url),
                                              "{\"a\":1}", 2000, hdrs, on_done, &r, &req), 0);
    assert_non_null(req);
    assert_int_equal(r.calls, 0); /* never from inside the call */
    assert_true(run_until(&r.calls, 5000));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"ok\":true}");
    assert_string_equal(stub.last_body, "{\"a\":1}");
    assert_string_equal(stub.last_path, "/validate");
    assert_non_null(strstr(stub.last_head, "POST /validate HTTP/1.1\r\n"));
    assert_non_null(strcasestr(stub.last_head, "Content-Type: application/json\r\n"));
    assert_non_null(strcasestr(stub.last_head, "Accept: application/json\r\n"));
    assert_non_null(strstr(stub.last_head, "X-Test: 1\r\n"));
    assert_null(strcasestr(stub.last_head, "Expect:"));

    /* The second request reuses the connection. */
    result_t r2 = {0};
    assert_int_equal(sl_http_client_post_json(cli, url, "{}", 2000, NULL, on_done, &r2, NULL), 0);
    assert_true(run_until(&r2.calls, 5000));
    assert_int_equal(r2.status, 200);
    assert_int_equal(stub.accepts, 1);
    assert_int_equal(stub.requests, 2);

    /* Any status is reported as is. */
    result_t r3 = {0};
    assert_int_equal(sl_http_client_post_json(cli, stub_url(&stub, "/404", url, sizeof url), "{}", 2000,
                                              NULL, on_done, &r3, NULL), 0);
    assert_true(run_until(&r3.calls, 5000));
    assert_int_equal(r3.status, 404);
    assert_int_equal(sl_http_client_pending(cli), 0);
    finish(cli, &stub);
}

typedef struct heads {
    result_t r;
    int lines, status_lines;
    char ctype[128];
} heads_t;

static void on_head_line(const char *line, size_t len, void *ud)
{
    heads_t *h = ud;
    h->lines++;
    assert_true(len > 0 && line[len - 1] != '\n' && line[len - 1] != '\r'); /* CRLF stripped */
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0)
        h->status_lines++;
    if (len > 14 && strncasecmp(line, "Content-Type: ", 14) == 0)
        snprintf(h->ctype, sizeof h->ctype, "%.*s", (int)(len - 14), line + 14);
}

static void on_head_done(int status, const char *body, size_t len, void *ud)
{
    heads_t *h = ud;
    assert_true(h->status_lines == 1); /* the head came before the completion */
    on_done(status, body, len, &h->r);
}

/* on_header hears every line of the answer's head, before the completion (the proxy's Location). */
static void test_response_head_lines(void **state)
{
    (void)state;
    stub_t stub;
    assert_int_equal(stub_start(&stub, &g_loop, respond_plain, NULL), 0);
    sl_http_client_t *cli;
    assert_int_equal(sl_http_client_new(&g_loop, NULL, &cli), 0);
    char url[128];
    heads_t h = {0};
    sl_http_client_request_t rq = {.method = "DELETE", .url = stub_url(&stub, "/404", url, sizeof url),
                                   .timeout_ms = 2000, .on_header = on_head_line};
    assert_int_equal(sl_http_client_start(cli, &rq, on_head_done, &h, NULL), 0);
    assert_true(run_until(&h.r.calls, 5000));
    assert_int_equal(h.r.status, 404);
    assert_int_equal(h.status_lines, 1);
    assert_true(h.lines >= 3);
    assert_string_equal(h.ctype, "application/json");
    assert_non_null(strstr(stub.last_head, "DELETE /404 HTTP/1.1\r\n"));
    finish(cli, &stub);
}

static void test_timeout(void **state)
{
    (void)state;
    stub_t stub;
    assert_int_equal(stub_start(&stub, &g_loop, respond_plain, NULL), 0);
    sl_http_client_t *cli;
    assert_int_equal(sl_http_client_new(&g_loop, NULL, &cli), 0);
    char url[128];
    result_t r = {0};
    uv_update_time(&g_loop);
    uint64_t t0 = uv_now(&g_loop);
    assert_int_equal(sl_http_client_post_json(cli, stub_url(&stub, "/never", url, sizeof url), "{}", 300,
                                              NULL, on_done, &r, NULL), 0);
    assert_true(run_until(&r.calls, 5000));
    assert_int_equal(r.status, UV_ETIMEDOUT);
    assert_string_equal(r.body, "");
    assert_true(r.at_ms - t0 >= 250 && r.at_ms - t0 < 3000);
    finish(cli, &stub);
}

static void test_refused_and_bad_url(void **state)
{
    (void)state;
    /* A port that was just free. */
    stub_t stub;
    assert_int_equal(stub_start(&stub, &g_loop, respond_plain, NULL), 0);
    char url[128];
    stub_url(&stub, "/x", url, sizeof url);
    stub_stop(&stub);
    uv_run(&g_loop, UV_RUN_DEFAULT);

    sl_http_client_t *cli;
    assert_int_equal(sl_http_client_new(&g_loop, NULL, &cli), 0);
    result_t r = {0}, r2 = {0};
    assert_int_equal(sl_http_client_post_json(cli, url, "{}", 2000, NULL, on_done, &r, NULL), 0);
    assert_int_equal(sl_http_client_post_json(cli, "ftp://127.0.0.1/x", "{}", 2000, NULL, on_done, &r2,
                                              NULL), 0);
    assert_int_equal(r2.calls, 0); /* errors come through the loop too */
    assert_true(run_until(&r.calls, 5000));
    assert_true(run_until(&r2.calls, 5000));
    assert_int_equal(r.status, UV_ECONNREFUSED);
    assert_int_equal(r2.status, SL_EINVAL);
    assert_int_equal(sl_http_client_post_json(cli, "", "{}", 2000, NULL, on_done, &r2, NULL), SL_EINVAL);
    finish(cli, NULL);
}

static void test_cancel(void **state)
{
    (void)state;
    stub_t stub;
    assert_int_equal(stub_start(&stub, &g_loop, respond_plain, NULL), 0);
    sl_http_client_t *cli;
    assert_int_equal(sl_http_client_new(&g_loop, NULL, &cli), 0);
    char url[128];
    result_t r = {0}, r2 = {0};
    sl_http_client_req_t *req;
    assert_int_equal(sl_http_client_post_json(cli, stub_url(&stub, "/slow", url, sizeof url), "{}", 2000,
                                              NULL, on_done, &r, &req), 0);
    assert_true(run_until(&stub.requests, 5000)); /* it reached the server */
    sl_http_client_cancel(req);
    assert_int_equal(sl_http_client_pending(cli), 0);
    /* A later request still works, and the cancelled one never calls back. */
    assert_int_equal(sl_http_client_post_json(cli, stub_url(&stub, "/delay100", url, sizeof url), "{}",
                                              2000, NULL, on_done, &r2, NULL), 0);
    assert_true(run_until(&r2.calls, 5000));
    int never = 0;
    run_until(&never, 700);
    assert_int_equal(r.calls, 0);
    assert_int_equal(r2.status, 200);
    finish(cli, &stub);
}

static void test_slow_does_not_hold_fast(void **state)
{
    (void)state;
    stub_t stub;
    assert_int_equal(stub_start(&stub, &g_loop, respond_plain, NULL), 0);
    sl_http_client_t *cli;
    assert_int_equal(sl_http_client_new(&g_loop, NULL, &cli), 0);
    char url[128], url2[128];
    result_t slow = {0}, fast = {0};
    assert_int_equal(sl_http_client_post_json(cli, stub_url(&stub, "/slow", url, sizeof url), "{}", 5000,
                                              NULL, on_done, &slow, NULL), 0);
    assert_int_equal(sl_http_client_post_json(cli, stub_url(&stub, "/fast", url2, sizeof url2), "{}", 5000,
                                              NULL, on_done, &fast, NULL), 0);
    assert_true(run_until(&fast.calls, 5000));
    assert_int_equal(slow.calls, 0);
    assert_true(run_until(&slow.calls, 5000));
    assert_int_equal(slow.status, 200);
    assert_string_equal(slow.body, "{\"slow\":true}");
    assert_int_equal(stub.accepts, 2); /* two connections at once */
    finish(cli, &stub);
}

static void test_response_cap(void **state)
{
    (void)state;
    stub_t stub;
    assert_int_equal(stub_start(&stub, &g_loop, respond_plain, NULL), 0);
    sl_http_client_opts_t opts = {.max_response_bytes = 1000};
    sl_http_client_t *cli;
    assert_int_equal(sl_http_client_new(&g_loop, &opts, &cli), 0);
    char url[128];
    result_t r = {0};
    assert_int_equal(sl_http_client_start(cli,
                                          &(sl_http_client_request_t){
                                              .url = stub_url(&stub, "/big", url, sizeof url),
                                              .timeout_ms = 2000,
                                          },
                                          on_done, &r, NULL),
                     0);
    assert_true(run_until(&r.calls, 5000));
    assert_int_equal(r.status, SL_ETOOBIG);
    assert_non_null(strstr(stub.last_head, "GET /big HTTP/1.1"));
    finish(cli, &stub);
}

static int g_closed;
static void on_closed(sl_http_client_t *cli, void *ud)
{
    (void)cli;
    (void)ud;
    g_closed++;
}

static void test_close_drain(void **state)
{
    (void)state;
    stub_t stub;
    assert_int_equal(stub_start(&stub, &g_loop, respond_plain, NULL), 0);
    char url[128];

    /* A request that answers within the drain is reported. */
    sl_http_client_t *cli;
    assert_int_equal(sl_http_client_new(&g_loop, NULL, &cli), 0);
    result_t r = {0};
    assert_int_equal(sl_http_client_post_json(cli, stub_url(&stub, "/delay100", url, sizeof url), "{}",
                                              2000, NULL, on_done, &r, NULL), 0);
    g_closed = 0;
    sl_http_client_close(cli, 2000, on_closed, NULL);
    assert_int_equal(sl_http_client_post_json(cli, url, "{}", 2000, NULL, on_done, &r, NULL), SL_ECLOSED);
    assert_true(run_until(&g_closed, 5000));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 200);
    sl_http_client_free(cli);

    /* One that does not is cancelled when the drain ends. */
    assert_int_equal(sl_http_client_new(&g_loop, NULL, &cli), 0);
    result_t r2 = {0};
    assert_int_equal(sl_http_client_post_json(cli, stub_url(&stub, "/never", url, sizeof url), "{}", 5000,
                                              NULL, on_done, &r2, NULL), 0);
    assert_true(run_until(&stub.requests, 5000));
    uint64_t t0 = uv_now(&g_loop);
    g_closed = 0;
    sl_http_client_close(cli, 200, on_closed, NULL);
    assert_true(run_until(&g_closed, 5000));
    assert_true(uv_now(&g_loop) - t0 >= 150);
    assert_int_equal(r2.calls, 0);
    sl_http_client_free(cli);
    finish(NULL, &stub);
}

static void test_free_in_callback(void **state)
{
    (void)state;
    stub_t stub;
    assert_int_equal(stub_start(&stub, &g_loop, respond_plain, NULL), 0);
    sl_http_client_t *cli;
    assert_int_equal(sl_http_client_new(&g_loop, NULL, &cli), 0);
    char url[128];
    result_t r = {0}, other = {0};
    r.free_cli = cli;
    assert_int_equal(sl_http_client_post_json(cli, stub_url(&stub, "/fast", url, sizeof url), "{}", 2000,
                                              NULL, on_done, &r, NULL), 0);
    assert_int_equal(sl_http_client_post_json(cli, stub_url(&stub, "/never", url, sizeof url), "{}", 2000,
                                              NULL, on_done, &other, NULL), 0);
    assert_true(run_until(&r.calls, 5000));
    finish(NULL, &stub); /* the client freed itself once closed */
    assert_int_equal(other.calls, 0);
}

/* Allocation failure at every allocation of a whole request's life: each
 * run either works or fails cleanly, and nothing leaks. */
static void test_alloc_failures(void **state)
{
    (void)state;
    if (!sl_alloc_fail_at(0, 0))
        skip();
    stub_t stub;
    assert_int_equal(stub_start(&stub, &g_loop, respond_plain, NULL), 0);
    char url[128];
    stub_url(&stub, "/fast", url, sizeof url);
    int completed = 0;
    for (uint64_t n = 1; n < 2000; n++) {
        int64_t before = sl_alloc_blocks();
        uint64_t failed = sl_alloc_failed_count();
        sl_alloc_fail_at(n, 0);
        sl_http_client_t *cli = NULL;
        result_t r = {0};
        int rc = sl_http_client_new(&g_loop, NULL, &cli);
        if (rc == 0) {
            rc = sl_http_client_post_json(cli, url, "{\"n\":1}", 300, NULL, on_done, &r, NULL);
            if (rc == 0)
                run_until(&r.calls, 5000);
            g_closed = 0;
            sl_http_client_close(cli, 0, on_closed, NULL);
            run_until(&g_closed, 3000);
            assert_int_equal(g_closed, 1);
            sl_http_client_free(cli);
        }
        sl_alloc_fail_at(0, 0);
        assert_int_equal(sl_alloc_blocks(), before);
        if (rc == 0)
            assert_int_equal(r.calls, 1);
        if (sl_alloc_failed_count() == failed) {
            completed = 1; /* the Nth allocation was never reached: done */
            assert_int_equal(r.status, 200);
            break;
        }
    }
    assert_true(completed);
    finish(NULL, &stub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_post_json_and_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_head_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_and_bad_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_does_not_hold_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
