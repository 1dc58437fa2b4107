/*
 * Batched sends through io_uring (src/net/uring_send.h) on real sockets:
 * several sends on several sockets in one submit, every callback run before
 * submit returns with the byte count a writev would give (whole, partial,
 * -EAGAIN on a full socket), the slots reused across submits, and the
 * forced "unavailable" path the RTMP server falls back from. Skips when the
 * kernel (or a seccomp filter) refuses io_uring.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/uring_send.h"
#include "sluice/errors.h"

typedef struct got {
    int n_calls;
    int result;
} got_t;

static void on_sent(void *ud, int result)
{
    got_t *g = ud;
    g->n_calls++;
    g->result = result;
}

static sl_uring_send_t *ring_or_skip(unsigned entries)
{
    sl_uring_send_t *u = NULL;
    int rc = sl_uring_send_new(entries, &u);
    if (rc) {
        print_message("io_uring unavailable here (%d): skipped\n", rc);
        skip();
    }
    return u;
}

static void pair(int sv[2], int sndbuf)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    if (sndbuf)
        assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
}

/* Three sockets, one submit: each callback runs once, before submit returns,
 * with every byte of its gathered message taken, and the peer reads them in order. */
static void test_batch_all_complete_inline(void **state)
{
    (void)state;
    sl_uring_send_t *u = ring_or_skip(4);
    int sv[3][2];
    got_t g[3];
    char a[] = "hello ", b[] = "world";
    struct iovec iov[2] = {{a, 6}, {b, 5}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    memset(g, 0, sizeof g);
    for (int i = 0; i < 3; i++) {
        pair(sv[i], 0);
        assert_int_equal(sl_uring_send_add(u, sv[i][0], &msg, 0, on_sent, &g[i]), 0);
        assert_int_equal(g[i].n_calls, 0); /* nothing before the submit */
    }
    assert_int_equal(sl_uring_send_submit(u), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g[i].n_calls, 1);
        assert_int_equal(g[i].result, 11);
        char buf[32];
        assert_int_equal(read(sv[i][1], buf, sizeof buf), 11);
        assert_memory_equal(buf, "hello world", 11);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    uint64_t submits, sends;
    sl_uring_send_stats(u, &submits, &sends);
    assert_int_equal(submits, 1);
    assert_int_equal(sends, 3);
    sl_uring_send_free(u);
}

/* A socket that cannot take everything: a partial count, then -EAGAIN when it
 * is full; never a wait (the loop would block). */
static void test_full_socket_partial_then_eagain(void **state)
{
    (void)state;
    sl_uring_send_t *u = ring_or_skip(2);
    int sv[2];
    pair(sv, 4096);
    size_t big = 4u << 20;
    char *p = calloc(1, big);
    assert_non_null(p);
    struct iovec iov = {p, big};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    got_t g1 = {0}, g2 = {0};
    assert_int_equal(sl_uring_send_add(u, sv[0], &msg, 0, on_sent, &g1), 0);
    assert_int_equal(sl_uring_send_add(u, sv[0], &msg, 0, on_sent, &g2), 0);
    assert_int_equal(sl_uring_send_submit(u), 0);
    assert_int_equal(g1.n_calls, 1);
    assert_int_equal(g2.n_calls, 1);
    assert_true(g1.result > 0 && (size_t)g1.result < big);
    assert_int_equal(g2.result, -EAGAIN);
    free(p);
    close(sv[0]);
    close(sv[1]);
    sl_uring_send_free(u);
}

/* The slots are a budget: one more send than slots is refused with SL_EAGAIN
 * until a submit gives them back. */
static void test_slots_are_bounded_and_reused(void **state)
{
    (void)state;
    sl_uring_send_t *u = ring_or_skip(2);
    int sv[2];
    pair(sv, 0);
    char a[] = "x";
    struct iovec iov = {a, 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    got_t g = {0};
    for (int round = 0; round < 3; round++) {
        assert_int_equal(sl_uring_send_add(u, sv[0], &msg, 0, on_sent, &g), 0);
        assert_int_equal(sl_uring_send_add(u, sv[0], &msg, 0, on_sent, &g), 0);
        assert_int_equal(sl_uring_send_add(u, sv[0], &msg, 0, on_sent, &g), SL_EAGAIN);
        assert_int_equal(sl_uring_send_submit(u), 0);
    }
    assert_int_equal(g.n_calls, 6);
    char buf[16];
    assert_int_equal(read(sv[1], buf, sizeof buf), 6);
    assert_int_equal(sl_uring_send_submit(u), 0); /* nothing queued: no system call */
    uint64_t submits, sends;
    sl_uring_send_stats(u, &submits, &sends);
    assert_int_equal(submits, 3);
    close(sv[0]);
    close(sv[1]);
    sl_uring_send_free(u);
}

/* Errors come back per send, as writev's would. */
static void test_error_per_send(void **state)
{
    (void)state;
    sl_uring_send_t *u = ring_or_skip(2);
    int sv[2];
    pair(sv, 0);
    close(sv[1]); /* the peer is gone: EPIPE (no SIGPIPE: MSG_NOSIGNAL) */
    char a[] = "x";
    struct iovec iov = {a, 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    got_t g = {0};
    assert_int_equal(sl_uring_send_add(u, sv[0], &msg, 0, on_sent, &g), 0);
    assert_int_equal(sl_uring_send_submit(u), 0);
    assert_int_equal(g.n_calls, 1);
    assert_int_equal(g.result, -EPIPE);
    close(sv[0]);
    sl_uring_send_free(u);
}

/* The test hook the e2e suite uses to force the writev fallback. */
static void test_forced_unavailable(void **state)
{
    (void)state;
    setenv("SL_TEST_NO_IO_URING", "1", 1);
    sl_uring_send_t *u = (sl_uring_send_t *)1;
    assert_int_equal(sl_uring_send_new(4, &u), -ENOSYS);
    assert_null(u);
    unsetenv("SL_TEST_NO_IO_URING");
    assert_int_equal(sl_uring_send_new(0, &u), SL_EINVAL);
    sl_uring_send_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_all_complete_inline),
        cmocka_unit_test(test_full_socket_partial_then_eagain),
        cmocka_unit_test(test_slots_are_bounded_and_reused),
        cmocka_unit_test(test_error_per_send),
        cmocka_unit_test(test_forced_unavailable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
