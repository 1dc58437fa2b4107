/*
 * The listener scaffold (src/net/listener.h) on a real loop: listen on a
 * free port, accept, shed a client the server cannot take, sweep, the stop
 * deadline for connections that linger, and a loop left without a handle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "net/listener.h"

typedef struct fix {
    uv_loop_t loop;
    sl_listener_t net;
    int n_accepted, n_shed, n_sweeps, n_prepares, n_deadlines;
    int shed_next;               /* the next client is shed */
    uv_tcp_t conn;               /* the one accepted connection */
    int conn_open;
    uv_tcp_t cli[2];
    uv_connect_t creq[2];
    int cli_closed[2];           /* the client saw EOF */
} fix_t;

static void on_conn(void *ud, int is_tls)
{
    fix_t *f = ud;
    assert_int_equal(is_tls, 0);
    if (f->shed_next) {
        f->shed_next = 0;
        f->n_shed++;
        sl_listener_shed(&f->net, is_tls);
        return;
    }
    uv_tcp_init(&f->loop, &f->conn);
    assert_int_equal(sl_listener_accept(&f->net, is_tls, &f->conn), 0);
    f->conn_open = 1;
    f->n_accepted++;
}

static void on_sweep(void *ud, uint64_t now)
{
    fix_t *f = ud;
    (void)now;
    f->n_sweeps++;
}

static void on_prepare(void *ud) { ((fix_t *)ud)->n_prepares++; }

static void on_deadline(void *ud)
{
    fix_t *f = ud;
    f->n_deadlines++;
    if (f->conn_open) {
        f->conn_open = 0;
        uv_close((uv_handle_t *)&f->conn, NULL);
    }
    sl_listener_idle(&f->net); /* the last connection is gone */
}

static const sl_listener_ops_t ops = {
    .on_connection = on_conn, .on_sweep = on_sweep, .on_prepare = on_prepare,
    .on_deadline = on_deadline,
};

static void on_cli_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    static char buf[256];
    (void)h;
    (void)n;
    *b = uv_buf_init(buf, sizeof buf);
}

static void on_cli_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    int *closed = s->data;
    if (n < 0)
        *closed = 1;
}

static void on_cli_connect(uv_connect_t *req, int status)
{
    assert_int_equal(status, 0);
    uv_read_start(req->handle, on_cli_alloc, on_cli_read);
}

static void cli_connect(fix_t *f, int i, int port)
{
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", port, &sa);
    uv_tcp_init(&f->loop, &f->cli[i]);
    f->cli[i].data = &f->cli_closed[i];
    assert_int_equal(uv_tcp_connect(&f->creq[i], &f->cli[i], (struct sockaddr *)&sa,
                                    on_cli_connect), 0);
}

/* Runs the loop until *flag is set or ~3 s passed. */
static int run_until(fix_t *f, const int *flag)
{
    for (int i = 0; i < 300 && !*flag; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        uv_sleep(10);
    }
    return *flag;
}

static void test_listener_lifecycle(void **state)
{
    (void)state;
    fix_t f;
    memset(&f, 0, sizeof f);
    assert_int_equal(uv_loop_init(&f.loop), 0);
    const sl_listener_config_t cfg = {.name = "test", .tls_name = "tests", .bind = "127.0.0.1",
                                      .port = 0, .sweep_ms = 20, .stop_timeout_ms = 50};
    assert_int_equal(sl_listener_start(&f.net, &f.loop, &cfg, &ops, &f), 0);
    int port = sl_listener_port(&f.net, 0);
    assert_true(port > 0);
    assert_int_equal(sl_listener_port(&f.net, 1), -1); /* no TLS listener */
    assert_null(sl_listener_tls(&f.net));

    /* The first client is shed (closed at once), the second accepted:
     * shedding leaves the listener accepting. */
    f.shed_next = 1;
    cli_connect(&f, 0, port);
    assert_true(run_until(&f, &f.cli_closed[0]));
    assert_int_equal(f.n_shed, 1);
    cli_connect(&f, 1, port);
    assert_true(run_until(&f, &f.n_accepted));
    assert_true(run_until(&f, &f.n_sweeps));
    assert_true(f.n_prepares > 0);

    /* Stop: the listener closes at once, the connection is left to the
     * deadline, which closes it; then every handle is gone. */
    sl_listener_stop(&f.net);
    sl_listener_stop(&f.net); /* idempotent */
    assert_int_equal(sl_listener_port(&f.net, 0), -1);
    assert_true(run_until(&f, &f.n_deadlines));
    assert_true(run_until(&f, &f.cli_closed[1]));
    uv_close((uv_handle_t *)&f.cli[0], NULL);
    uv_close((uv_handle_t *)&f.cli[1], NULL);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(f.net.handles_open, 0);
    sl_listener_cleanup(&f.net);
    assert_int_equal(uv_loop_close(&f.loop), 0);
}

/* A port in use: the start fails, logged, and nothing is left open. */
static void test_listener_port_in_use(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    sl_listener_t a, b;
    fix_t f;
    memset(&f, 0, sizeof f);
    sl_listener_config_t cfg = {.name = "a", .tls_name = "as", .bind = "127.0.0.1", .port = 0,
                                .sweep_ms = 1000, .stop_timeout_ms = 10};
    assert_int_equal(sl_listener_start(&a, &loop, &cfg, &ops, &f), 0);
    cfg.port = sl_listener_port(&a, 0);
    cfg.name = "b";
    assert_int_equal(sl_listener_start(&b, &loop, &cfg, &ops, &f), UV_EADDRINUSE);
    cfg.bind = "not an address";
    assert_int_equal(sl_listener_start(&b, &loop, &cfg, &ops, &f), UV_EINVAL);
    sl_listener_stop(&a);
    sl_listener_idle(&a);
    sl_listener_idle(&a); /* once */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(a.handles_open, 0);
    sl_listener_cleanup(&a);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listener_lifecycle),
        cmocka_unit_test(test_listener_port_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
