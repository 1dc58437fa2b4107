/*
 * Unit tests for DTLS-SRTP (src/net/dtls.c) and SRTP (src/net/srtp.c).
 * Two sl_dtls_t from two contexts are wired back to back in memory: each
 * side's datagrams are queued and delivered by pump(), which can drop a
 * chosen datagram to simulate loss. Covered: the handshake in both roles
 * with each side checking the other's fingerprint, matching SRTP keys,
 * application data both ways, close_notify, a wrong fingerprint on either
 * side, lost flights recovered by the timer, the handshake deadline,
 * garbage datagrams, free from inside a callback, argument checks; an
 * "aiortc-like" peer made directly with OpenSSL the way aiortc 1.4 makes
 * it (pyOpenSSL: DTLS_METHOD, "HIGH:!CAMELLIA:!aNULL", use_srtp
 * SRTP_AES128_CM_SHA1_80, keys split by its get_srtp_key_salt) to check
 * the fingerprint format, the CM profile and the RFC 5764 key layout
 * against an independent implementation; SRTP/SRTCP protect/unprotect with
 * both profiles, tampering, replay and NACK-style repeats. A last test
 * prints handshakes per second and SRTP throughput (figures only, no
 * assertion on speed).
 *
 * Set SL_DTLS_DUMP_DIR to write the first ClientHello seen to
 * $SL_DTLS_DUMP_DIR/client_hello (how tests/fuzz/corpus/dtls/ was seeded).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "base/alloc.h"
#include "net/dtls.h"
#include "net/srtp.h"
#include "sluice/errors.h"

/* ---- a side: one sl_dtls_t and what it produced -------------------------- */

#define MAX_QUEUE 64

typedef struct side {
    sl_dtls_t *d;
    uint8_t *q[MAX_QUEUE]; /* datagrams waiting for the other side */
    size_t qlen[MAX_QUEUE];
    int nq;
    int n_sent;            /* datagrams ever sent */
    size_t max_dgram;      /* largest datagram sent */
    int connected;
    sl_srtp_keys_t keys;
    int closed;
    char why[128];
    uint8_t data[SL_DTLS_MAX_APP]; /* last application data received */
    size_t data_len;
    int n_data;
    int free_on_close;     /* sl_dtls_free from inside ops->closed */
    int echo;              /* answer data with sl_dtls_send from inside ops->data */
} side_t;

static void on_send(void *ud, const uint8_t *p, size_t len)
{
    side_t *s = ud;
    assert_true(s->nq < MAX_QUEUE);
    s->q[s->nq] = malloc(len);
    memcpy(s->q[s->nq], p, len);
    s->qlen[s->nq++] = len;
    s->n_sent++;
    if (len > s->max_dgram)
        s->max_dgram = len;
    const char *dir = getenv("SL_DTLS_DUMP_DIR");
    if (dir && p[0] == 22 && len > 13 && p[13] == 1) { /* handshake, ClientHello */
        char path[512];
        snprintf(path, sizeof path, "%s/client_hello", dir);
        FILE *f = fopen(path, "wb");
        if (f) {
            uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};
            fwrite(hdr, 1, 2, f); /* the fuzz target's framing: 2-byte length, datagram */
            fwrite(p, 1, len, f);
            fclose(f);
        }
    }
}

static void on_connected(void *ud, const sl_srtp_keys_t *keys)
{
    side_t *s = ud;
    s->connected++;
    s->keys = *keys;
}

static void on_data(void *ud, const uint8_t *p, size_t len)
{
    side_t *s = ud;
    assert_true(len <= sizeof s->data);
    memcpy(s->data, p, len);
    s->data_len = len;
    s->n_data++;
    if (s->echo)
        assert_int_equal(sl_dtls_send(s->d, p, len), 0);
}

static void on_closed(void *ud, const char *why)
{
    side_t *s = ud;
    s->closed++;
    snprintf(s->why, sizeof s->why, "%s", why);
    if (s->free_on_close) {
        sl_dtls_free(s->d);
        s->d = NULL;
    }
}

static const sl_dtls_ops_t k_ops = {on_send, on_connected, on_data, on_closed};

static void drain(side_t *s)
{
    for (int i = 0; i < s->nq; i++)
        free(s->q[i]);
    s->nq = 0;
}

/*
 * Delivers queued datagrams both ways until both queues are empty. drop_a /
 * drop_b name the index (in n_sent order, 0-based) of one datagram of that
 * side to lose, -1 for none. Returns the number of datagrams delivered.
 */
static int pump(side_t *a, side_t *b, int drop_a, int drop_b)
{
    int delivered = 0;
    int base_a = a->n_sent - a->nq, base_b = b->n_sent - b->nq;
    for (int round = 0; round < 50 && (a->nq || b->nq); round++) {
        side_t *from[2] = {a, b}, *to[2] = {b, a};
        int *base[2] = {&base_a, &base_b};
        int drop[2] = {drop_a, drop_b};
        for (int k = 0; k < 2; k++) {
            side_t *f = from[k];
            int n = f->nq;
            uint8_t *q[MAX_QUEUE];
            size_t ql[MAX_QUEUE];
            memcpy(q, f->q, sizeof q);
            memcpy(ql, f->qlen, sizeof ql);
            f->nq = 0;
            for (int i = 0; i < n; i++) {
                int idx = (*base[k])++;
                if (idx != drop[k] && to[k]->d) {
                    sl_dtls_feed(to[k]->d, q[i], ql[i]);
                    delivered++;
                }
                free(q[i]);
            }
        }
    }
    return delivered;
}

static sl_dtls_ctx_t *g_ctx_a, *g_ctx_b;

static int setup_ctx(void **state)
{
    (void)state;
    if (sl_dtls_ctx_new(&g_ctx_a) != 0 || sl_dtls_ctx_new(&g_ctx_b) != 0)
        return -1;
    return 0;
}

static int teardown_ctx(void **state)
{
    (void)state;
    sl_dtls_ctx_free(g_ctx_a);
    sl_dtls_ctx_free(g_ctx_b);
    return 0;
}

/* Server on ctx A expecting B's fingerprint (or fp_for_server), client on ctx B. */
static void make_pair(side_t *srv, side_t *cli, const char *fp_for_server, const char *fp_for_client)
{
    memset(srv, 0, sizeof *srv);
    memset(cli, 0, sizeof *cli);
    assert_int_equal(sl_dtls_new(g_ctx_a, 1, "sha-256",
                                 fp_for_server ? fp_for_server : sl_dtls_ctx_fingerprint(g_ctx_b),
                                 &k_ops, srv, &srv->d),
                     0);
    assert_int_equal(sl_dtls_new(g_ctx_b, 0, "SHA-256",
                                 fp_for_client ? fp_for_client : sl_dtls_ctx_fingerprint(g_ctx_a),
                                 &k_ops, cli, &cli->d),
                     0);
}

static void free_pair(side_t *srv, side_t *cli)
{
    sl_dtls_free(srv->d);
    sl_dtls_free(cli->d);
    drain(srv);
    drain(cli);
}

/* ---- tests --------------------------------------------------------------- */

static void test_ctx_fingerprint(void **state)
{
    (void)state;
    const char *fa = sl_dtls_ctx_fingerprint(g_ctx_a), *fb = sl_dtls_ctx_fingerprint(g_ctx_b);
    assert_int_equal(strlen(fa), 32 * 3 - 1);
    for (int i = 0; i < 95; i++) {
        if (i % 3 == 2)
            assert_int_equal(fa[i], ':');
        else
            assert_true((fa[i] >= '0' && fa[i] <= '9') || (fa[i] >= 'A' && fa[i] <= 'F'));
    }
    assert_string_not_equal(fa, fb); /* two contexts, two keys */
}

static void test_bad_args(void **state)
{
    (void)state;
    sl_dtls_t *d = (sl_dtls_t *)1;
    const char *fp = sl_dtls_ctx_fingerprint(g_ctx_b);
    assert_int_equal(sl_dtls_new(g_ctx_a, 1, "md5", fp, &k_ops, NULL, &d), SL_EINVAL);
    assert_null(d);
    assert_int_equal(sl_dtls_new(g_ctx_a, 1, "sha-1", fp, &k_ops, NULL, &d), SL_EINVAL); /* too long */
    assert_int_equal(sl_dtls_new(g_ctx_a, 1, "sha-256", "AB:CD", &k_ops, NULL, &d), SL_EINVAL);
    char bad[128];
    snprintf(bad, sizeof bad, "%s:", fp);
    assert_int_equal(sl_dtls_new(g_ctx_a, 1, "sha-256", bad, &k_ops, NULL, &d), SL_EINVAL);
    snprintf(bad, sizeof bad, "%s", fp);
    bad[2] = '-';
    assert_int_equal(sl_dtls_new(g_ctx_a, 1, "sha-256", bad, &k_ops, NULL, &d), SL_EINVAL);
    bad[2] = ':';
    bad[0] = 'g';
    assert_int_equal(sl_dtls_new(g_ctx_a, 1, "sha-256", bad, &k_ops, NULL, &d), SL_EINVAL);
    assert_int_equal(sl_dtls_new(g_ctx_a, 1, NULL, fp, &k_ops, NULL, &d), SL_EINVAL);
    /* Lower case is accepted (RFC 8122 says upper, some stacks send lower). */
    for (size_t i = 0; i < strlen(fp); i++)
        bad[i] = (char)(fp[i] >= 'A' && fp[i] <= 'F' ? fp[i] + 32 : fp[i]);
    assert_int_equal(sl_dtls_new(g_ctx_a, 1, "sha-256", bad, &k_ops, NULL, &d), 0);
    sl_dtls_free(d);
    sl_dtls_free(NULL);
    sl_dtls_ctx_free(NULL);
}

static void test_handshake_data_close(void **state)
{
    (void)state;
    side_t srv, cli;
    make_pair(&srv, &cli, NULL, NULL);
    assert_int_equal(sl_dtls_start(srv.d), 0);
    assert_int_equal(srv.n_sent, 0); /* the server waits */
    assert_int_equal(sl_dtls_send(srv.d, (const uint8_t *)"x", 1), SL_EAGAIN);
    assert_int_equal(sl_dtls_start(cli.d), 0);
    assert_int_equal(cli.n_sent, 1); /* the ClientHello */
    assert_true(sl_dtls_timeout_ms(cli.d) > 0);
    pump(&srv, &cli, -1, -1);

    assert_int_equal(srv.connected, 1);
    assert_int_equal(cli.connected, 1);
    assert_int_equal(srv.closed + cli.closed, 0);
    assert_true(srv.max_dgram <= SL_DTLS_MTU);
    assert_true(cli.max_dgram <= SL_DTLS_MTU);
    /* Both of ours prefer GCM. Server's local key is the client's remote key. */
    assert_int_equal(srv.keys.profile, SL_SRTP_AEAD_AES_128_GCM);
    assert_int_equal(srv.keys.key_len, 28);
    assert_int_equal(cli.keys.key_len, 28);
    assert_memory_equal(srv.keys.local_key, cli.keys.remote_key, 28);
    assert_memory_equal(srv.keys.remote_key, cli.keys.local_key, 28);
    assert_memory_not_equal(srv.keys.local_key, srv.keys.remote_key, 28);
    assert_int_equal(sl_dtls_timeout_ms(srv.d), -1);
    assert_int_equal(sl_dtls_timeout_ms(cli.d), -1);

    /* Application data both ways; the server echoes from inside ops->data. */
    srv.echo = 1;
    uint8_t msg[1100];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 7);
    assert_int_equal(sl_dtls_send(cli.d, msg, sizeof msg), 0);
    assert_true(cli.max_dgram <= SL_DTLS_MTU); /* 1100 + overhead fits one datagram */
    pump(&srv, &cli, -1, -1);
    assert_int_equal(srv.n_data, 1);
    assert_int_equal(srv.data_len, sizeof msg);
    assert_memory_equal(srv.data, msg, sizeof msg);
    assert_int_equal(cli.n_data, 1);
    assert_memory_equal(cli.data, msg, sizeof msg);
    srv.echo = 0;
    assert_int_equal(sl_dtls_send(srv.d, (const uint8_t *)"hello", 5), 0);
    pump(&srv, &cli, -1, -1);
    assert_int_equal(cli.n_data, 2);
    assert_memory_equal(cli.data, "hello", 5);
    /* A record larger than the MTU goes as one datagram of its own. */
    static uint8_t large[5000];
    memset(large, 0xa5, sizeof large);
    assert_int_equal(sl_dtls_send(srv.d, large, sizeof large), 0);
    pump(&srv, &cli, -1, -1);
    assert_int_equal(cli.n_data, 3);
    assert_int_equal(cli.data_len, sizeof large);
    assert_memory_equal(cli.data, large, sizeof large);
    assert_int_equal(sl_dtls_send(cli.d, msg, 0), SL_EINVAL);
    static uint8_t big[SL_DTLS_MAX_APP + 1];
    assert_int_equal(sl_dtls_send(cli.d, big, sizeof big), SL_ETOOBIG);

    /* close_notify: the other side hears it, the closer gets no callback. */
    sl_dtls_close(cli.d);
    sl_dtls_close(cli.d);
    assert_int_equal(sl_dtls_send(cli.d, msg, 10), SL_ECLOSED);
    pump(&srv, &cli, -1, -1);
    assert_int_equal(srv.closed, 1);
    assert_string_equal(srv.why, "close_notify");
    assert_int_equal(cli.closed, 0);
    assert_int_equal(sl_dtls_feed(srv.d, msg, 20), SL_ECLOSED);
    free_pair(&srv, &cli);
}

/* The client role on our side, the server on the other (a=setup:active). */
static void test_roles_swapped(void **state)
{
    (void)state;
    side_t a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    assert_int_equal(sl_dtls_new(g_ctx_a, 0, "sha-256", sl_dtls_ctx_fingerprint(g_ctx_b), &k_ops,
                                 &a, &a.d),
                     0);
    assert_int_equal(sl_dtls_new(g_ctx_b, 1, "sha-256", sl_dtls_ctx_fingerprint(g_ctx_a), &k_ops,
                                 &b, &b.d),
                     0);
    assert_int_equal(sl_dtls_start(b.d), 0);
    assert_int_equal(sl_dtls_start(a.d), 0);
    pump(&a, &b, -1, -1);
    assert_int_equal(a.connected + b.connected, 2);
    assert_memory_equal(a.keys.local_key, b.keys.remote_key, a.keys.key_len);
    assert_memory_equal(a.keys.remote_key, b.keys.local_key, a.keys.key_len);
    free_pair(&a, &b);
}

static void test_fingerprint_mismatch(void **state)
{
    (void)state;
    /* The server expects the wrong fingerprint (A's own). */
    side_t srv, cli;
    make_pair(&srv, &cli, sl_dtls_ctx_fingerprint(g_ctx_a), NULL);
    sl_dtls_start(cli.d);
    pump(&srv, &cli, -1, -1);
    assert_int_equal(srv.connected, 0);
    assert_int_equal(srv.closed, 1);
    assert_string_equal(srv.why, "fingerprint mismatch");
    /* The client's check passed; it then hears the server's close_notify. */
    assert_int_equal(cli.connected, 1);
    assert_int_equal(cli.closed, 1);
    assert_string_equal(cli.why, "close_notify");
    free_pair(&srv, &cli);

    /* The client expects the wrong fingerprint: same digest size, one bit off. */
    char fp[128];
    snprintf(fp, sizeof fp, "%s", sl_dtls_ctx_fingerprint(g_ctx_a));
    fp[94] = fp[94] == '0' ? '1' : '0';
    make_pair(&srv, &cli, NULL, fp);
    sl_dtls_start(cli.d);
    pump(&srv, &cli, -1, -1);
    assert_int_equal(cli.connected, 0);
    assert_int_equal(cli.closed, 1);
    assert_string_equal(cli.why, "fingerprint mismatch");
    free_pair(&srv, &cli);

    /* A sha-1 fingerprint of the right certificate would pass; a wrong one fails the same way. */
    make_pair(&srv, &cli, NULL, NULL);
    sl_dtls_free(srv.d);
    assert_int_equal(sl_dtls_new(g_ctx_a, 1, "sha-1",
                                 "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33",
                                 &k_ops, &srv, &srv.d),
                     0);
    sl_dtls_start(cli.d);
    pump(&srv, &cli, -1, -1);
    assert_string_equal(srv.why, "fingerprint mismatch");
    free_pair(&srv, &cli);
}

/* Feeds everything `from` queued into `to`. */
static void deliver(side_t *from, side_t *to)
{
    for (int i = 0; i < from->nq; i++)
        sl_dtls_feed(to->d, from->q[i], from->qlen[i]);
    drain(from);
}

/*
 * Plays the owner's timer: waits the time sl_dtls_timeout_ms asks for (a
 * few tens of ms here), then runs sl_dtls_on_timeout. OpenSSL reads the
 * wall clock itself and treats a timer within 15 ms of expiry as expired,
 * so a retransmission cannot be forced without time passing; this is the
 * only waiting in the file, and it is on the API's own deadline.
 */
static void fire_timer(side_t *s)
{
    int64_t ms = sl_dtls_timeout_ms(s->d);
    assert_true(ms >= 0 && ms <= 1000);
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L + 1000000L};
    nanosleep(&ts, NULL);
    sl_dtls_on_timeout(s->d);
}

/* Fires the earlier timer of the two and delivers, until both are connected. */
static void recover(side_t *srv, side_t *cli)
{
    for (int i = 0; i < 6 && !(srv->connected && cli->connected); i++) {
        int64_t ts = sl_dtls_timeout_ms(srv->d), tc = sl_dtls_timeout_ms(cli->d);
        fire_timer(tc < 0 || (ts >= 0 && ts < tc) ? srv : cli);
        pump(srv, cli, -1, -1);
    }
    assert_int_equal(srv->connected + cli->connected, 2);
    assert_int_equal(srv->closed + cli->closed, 0);
}

static void test_lost_flights(void **state)
{
    (void)state;
    /*
     * First retransmission after 50 ms in these tests: OpenSSL counts a
     * timer within 15 ms of expiry as expired, so a shorter one would fire
     * inside the very call that armed it.
     */
    /* The ClientHello is lost: the client's timer resends it. */
    side_t srv, cli;
    make_pair(&srv, &cli, NULL, NULL);
    sl_dtls_set_timeouts(cli.d, 50, -1);
    sl_dtls_start(cli.d);
    int sent = cli.n_sent;
    assert_true(sent >= 1);
    drain(&cli); /* lost */
    int64_t t = sl_dtls_timeout_ms(cli.d);
    assert_true(t > 0 && t <= 50);
    sl_dtls_on_timeout(cli.d); /* early: nothing */
    fire_timer(&cli);
    assert_true(cli.n_sent > sent);
    pump(&srv, &cli, -1, -1);
    assert_int_equal(srv.connected + cli.connected, 2);
    free_pair(&srv, &cli);

    /*
     * The server's first flight is lost: OpenSSL's server ignores the
     * repeated ClientHello and resends on its own timer.
     */
    make_pair(&srv, &cli, NULL, NULL);
    sl_dtls_set_timeouts(srv.d, 50, -1);
    sl_dtls_set_timeouts(cli.d, 50, -1);
    sl_dtls_start(cli.d);
    deliver(&cli, &srv);
    assert_true(srv.nq >= 1);
    drain(&srv); /* lost */
    recover(&srv, &cli);
    free_pair(&srv, &cli);

    /* The client's second flight is lost: the timers resend until both are done. */
    make_pair(&srv, &cli, NULL, NULL);
    sl_dtls_set_timeouts(srv.d, 50, -1);
    sl_dtls_set_timeouts(cli.d, 50, -1);
    sl_dtls_start(cli.d);
    deliver(&cli, &srv);
    deliver(&srv, &cli);
    assert_true(cli.nq >= 1);
    drain(&cli); /* lost */
    assert_int_equal(srv.connected, 0);
    recover(&srv, &cli);
    free_pair(&srv, &cli);
}

static void test_handshake_timeout(void **state)
{
    (void)state;
    side_t srv, cli;
    make_pair(&srv, &cli, NULL, NULL);
    int64_t t = sl_dtls_timeout_ms(srv.d); /* the server waits for a ClientHello: the deadline */
    assert_true(t > 25000 && t <= 30000);
    sl_dtls_on_timeout(srv.d); /* early: nothing happens */
    assert_int_equal(srv.closed, 0);
    sl_dtls_set_timeouts(srv.d, -1, 0);
    assert_int_equal(sl_dtls_timeout_ms(srv.d), 0);
    srv.free_on_close = 1; /* freeing from ops->closed is deferred, not a use after free */
    sl_dtls_on_timeout(srv.d);
    assert_int_equal(srv.closed, 1);
    assert_string_equal(srv.why, "handshake timeout");
    assert_null(srv.d);
    free_pair(&srv, &cli);
}

static void test_garbage(void **state)
{
    (void)state;
    side_t srv, cli;
    make_pair(&srv, &cli, NULL, NULL);
    uint8_t junk[300];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 31 + 5);
    /* Not DTLS by RFC 7983's first byte, or empty, or oversize. */
    junk[0] = 0x80; /* RTP */
    assert_int_equal(sl_dtls_feed(srv.d, junk, sizeof junk), SL_EINVAL);
    assert_int_equal(sl_dtls_feed(srv.d, junk, 0), SL_EINVAL);
    junk[0] = 22;
    assert_int_equal(sl_dtls_feed(srv.d, junk, SL_DTLS_MAX_DATAGRAM + 1), SL_ETOOBIG);
    /* DTLS-looking garbage before the handshake: dropped, no answer, no close. */
    for (int t = 20; t <= 25; t++) {
        junk[0] = (uint8_t)t;
        for (size_t len = 1; len < sizeof junk; len += 37)
            assert_int_equal(sl_dtls_feed(srv.d, junk, len), 0);
    }
    /* A record header claiming more than the datagram holds. */
    uint8_t hdr[13] = {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    assert_int_equal(sl_dtls_feed(srv.d, hdr, sizeof hdr), 0);
    assert_int_equal(srv.closed, 0);
    assert_int_equal(srv.n_sent, 0);

    /* The handshake still works, and garbage after it changes nothing. */
    sl_dtls_start(cli.d);
    pump(&srv, &cli, -1, -1);
    assert_int_equal(srv.connected + cli.connected, 2);
    for (int t = 20; t <= 25; t++) {
        junk[0] = (uint8_t)t;
        memcpy(junk + 1, "\xfe\xfd\x00\x01", 4); /* epoch 1: looks like an encrypted record */
        for (size_t len = 1; len < sizeof junk; len += 41)
            assert_int_equal(sl_dtls_feed(srv.d, junk, len), 0);
    }
    assert_int_equal(srv.closed, 0);
    assert_int_equal(sl_dtls_send(cli.d, (const uint8_t *)"still", 5), 0);
    pump(&srv, &cli, -1, -1);
    assert_int_equal(srv.n_data, 1);
    assert_memory_equal(srv.data, "still", 5);
    free_pair(&srv, &cli);
}

/* Allocation failure (builds with SL_FAULT_INJECTION; skipped otherwise). */
static void test_alloc_failure(void **state)
{
    (void)state;
    if (!sl_alloc_fail_at(1, 0))
        skip();
    sl_dtls_t *d;
    assert_int_equal(sl_dtls_new(g_ctx_a, 1, "sha-256", sl_dtls_ctx_fingerprint(g_ctx_b), &k_ops,
                                 NULL, &d),
                     SL_ENOMEM);
    assert_null(d);
    sl_srtp_keys_t k;
    memset(&k, 0, sizeof k);
    k.profile = SL_SRTP_AES128_CM_SHA1_80;
    k.key_len = 30;
    sl_srtp_t *s;
    assert_int_equal(sl_alloc_fail_at(1, 0), 1);
    assert_int_equal(sl_srtp_new(&k, &s), SL_ENOMEM);
    assert_null(s);
    sl_dtls_ctx_t *c;
    assert_int_equal(sl_alloc_fail_at(1, 0), 1);
    assert_int_equal(sl_dtls_ctx_new(&c), SL_ENOMEM);
    sl_alloc_fail_at(0, 0);
}

/* ---- an aiortc-like peer: raw OpenSSL configured as aiortc 1.4 does --------- */

typedef struct rawpeer {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rbio, *wbio;
    X509 *cert;
} rawpeer_t;

static int accept_any(int ok, X509_STORE_CTX *c)
{
    (void)ok;
    (void)c;
    return 1;
}

/* aiortc's RTCCertificate: EC P-256 key, self-signed; its _create_ssl_context. */
static void rawpeer_init(rawpeer_t *r, int is_server)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    r->cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(r->cert), 12345);
    X509_gmtime_adj(X509_getm_notBefore(r->cert), -86400);
    X509_gmtime_adj(X509_getm_notAfter(r->cert), 86400 * 30);
    X509_NAME *n = X509_get_subject_name(r->cert);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"0123abcd", -1, -1, 0);
    X509_set_issuer_name(r->cert, n);
    X509_set_pubkey(r->cert, key);
    assert_true(X509_sign(r->cert, key, EVP_sha256()) > 0);
    r->ctx = SSL_CTX_new(DTLS_method());
    SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
    assert_int_equal(SSL_CTX_use_certificate(r->ctx, r->cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(r->ctx, key), 1);
    assert_int_equal(SSL_CTX_set_cipher_list(r->ctx, "HIGH:!CAMELLIA:!aNULL"), 1);
    assert_int_equal(SSL_CTX_set_tlsext_use_srtp(r->ctx, "SRTP_AES128_CM_SHA1_80"), 0);
    EVP_PKEY_free(key);
    r->ssl = SSL_new(r->ctx);
    r->rbio = BIO_new(BIO_s_mem());
    r->wbio = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(r->rbio, -1);
    SSL_set_bio(r->ssl, r->rbio, r->wbio);
    if (is_server)
        SSL_set_accept_state(r->ssl);
    else
        SSL_set_connect_state(r->ssl);
}

static void rawpeer_free(rawpeer_t *r)
{
    SSL_free(r->ssl);
    SSL_CTX_free(r->ctx);
    X509_free(r->cert);
}

/* pyOpenSSL's X509.digest("SHA256"): upper-case hex pairs joined by ':'. */
static void pyopenssl_digest(X509 *x, char *out)
{
    uint8_t md[32];
    unsigned n = 0;
    X509_digest(x, EVP_sha256(), md, &n);
    for (unsigned i = 0; i < n; i++)
        sprintf(out + 3 * i, "%02X%s", md[i], i + 1 < n ? ":" : "");
}

/* Everything the raw peer wrote, as one datagram (records may share one). */
static void rawpeer_to(rawpeer_t *r, side_t *s)
{
    char *p;
    long n = BIO_get_mem_data(r->wbio, &p);
    if (n > 0) {
        assert_int_equal(sl_dtls_feed(s->d, (uint8_t *)p, (size_t)n), 0);
        (void)BIO_reset(r->wbio);
    }
}

static void rawpeer_from(rawpeer_t *r, side_t *s)
{
    for (int i = 0; i < s->nq; i++) {
        BIO_write(r->rbio, s->q[i], (int)s->qlen[i]);
        (void)SSL_do_handshake(r->ssl);
    }
    drain(s);
}

/* aiortc's get_srtp_key_salt(src, idx): key idx then salt idx, 16 + 14 bytes. */
static void aiortc_key_salt(const uint8_t *src, int idx, uint8_t *out)
{
    memcpy(out, src + idx * 16, 16);
    memcpy(out + 16, src + 2 * 16 + idx * 14, 14);
}

static void check_with_rawpeer(int we_are_server)
{
    rawpeer_t r;
    rawpeer_init(&r, !we_are_server);
    char peer_fp[100];
    pyopenssl_digest(r.cert, peer_fp);
    side_t s;
    memset(&s, 0, sizeof s);
    assert_int_equal(sl_dtls_new(g_ctx_a, we_are_server, "sha-256", peer_fp, &k_ops, &s, &s.d), 0);
    sl_dtls_start(s.d);
    if (we_are_server)
        (void)SSL_do_handshake(r.ssl); /* the ClientHello */
    for (int i = 0; i < 10 && !(s.connected && SSL_is_init_finished(r.ssl)); i++) {
        rawpeer_to(&r, &s);
        rawpeer_from(&r, &s);
    }
    rawpeer_to(&r, &s);
    assert_int_equal(s.closed, 0);
    assert_int_equal(s.connected, 1);
    assert_true(SSL_is_init_finished(r.ssl));

    /* aiortc's fingerprint check: its digest of our certificate is our SDP string. */
    X509 *ours = SSL_get1_peer_certificate(r.ssl);
    char ours_fp[100];
    pyopenssl_digest(ours, ours_fp);
    X509_free(ours);
    assert_string_equal(ours_fp, sl_dtls_ctx_fingerprint(g_ctx_a));

    /* aiortc's key export and split. */
    assert_int_equal(s.keys.profile, SL_SRTP_AES128_CM_SHA1_80);
    assert_int_equal(s.keys.key_len, 30);
    uint8_t view[60], tx[30], rx[30];
    assert_int_equal(SSL_export_keying_material(r.ssl, view, sizeof view, "EXTRACTOR-dtls_srtp",
                                                19, NULL, 0, 0),
                     1);
    int peer_is_server = !we_are_server;
    aiortc_key_salt(view, peer_is_server ? 1 : 0, tx);
    aiortc_key_salt(view, peer_is_server ? 0 : 1, rx);
    assert_memory_equal(s.keys.remote_key, tx, 30);
    assert_memory_equal(s.keys.local_key, rx, 30);

    /* Application data from the peer reaches ops->data. */
    assert_int_equal(SSL_write(r.ssl, "sctp", 4), 4);
    rawpeer_to(&r, &s);
    assert_int_equal(s.n_data, 1);
    assert_memory_equal(s.data, "sctp", 4);
    sl_dtls_free(s.d);
    drain(&s);
    rawpeer_free(&r);
}

static void test_aiortc_like_peer(void **state)
{
    (void)state;
    check_with_rawpeer(1);
    check_with_rawpeer(0);
}

/* ---- SRTP ---------------------------------------------------------------- */

static void make_keys(int profile, sl_srtp_keys_t *a, sl_srtp_keys_t *b)
{
    memset(a, 0, sizeof *a);
    a->profile = profile;
    a->key_len = profile == SL_SRTP_AEAD_AES_128_GCM ? 28 : 30;
    RAND_bytes(a->local_key, (int)a->key_len);
    RAND_bytes(a->remote_key, (int)a->key_len);
    *b = *a;
    memcpy(b->local_key, a->remote_key, a->key_len);
    memcpy(b->remote_key, a->local_key, a->key_len);
}

static size_t make_rtp(uint8_t *p, uint16_t seq, uint32_t ssrc, size_t payload)
{
    p[0] = 0x80;
    p[1] = 96;
    p[2] = (uint8_t)(seq >> 8);
    p[3] = (uint8_t)seq;
    memset(p + 4, 0, 4);
    p[8] = (uint8_t)(ssrc >> 24);
    p[9] = (uint8_t)(ssrc >> 16);
    p[10] = (uint8_t)(ssrc >> 8);
    p[11] = (uint8_t)ssrc;
    for (size_t i = 0; i < payload; i++)
        p[12 + i] = (uint8_t)(i + seq);
    return 12 + payload;
}

static size_t make_rtcp_rr(uint8_t *p, uint32_t ssrc)
{
    /* An empty receiver report: V=2, RC=0, PT=201, length 1 word after the header. */
    const uint8_t rr[8] = {0x80, 201, 0, 1, (uint8_t)(ssrc >> 24), (uint8_t)(ssrc >> 16),
                           (uint8_t)(ssrc >> 8), (uint8_t)ssrc};
    memcpy(p, rr, 8);
    return 8;
}

static void srtp_roundtrip(int profile)
{
    sl_srtp_keys_t ka, kb;
    make_keys(profile, &ka, &kb);
    sl_srtp_t *a, *b;
    assert_int_equal(sl_srtp_new(&ka, &a), 0);
    assert_int_equal(sl_srtp_new(&kb, &b), 0);
    uint8_t pkt[1500], orig[1500];
    size_t tag = profile == SL_SRTP_AEAD_AES_128_GCM ? 16 : 10;

    /* RTP both ways. */
    for (uint16_t seq = 100; seq < 110; seq++) {
        size_t len = make_rtp(pkt, seq, 0x1234, 1000);
        memcpy(orig, pkt, len);
        size_t n = len;
        assert_int_equal(sl_srtp_protect(a, pkt, &n, sizeof pkt), 0);
        assert_int_equal(n, len + tag);
        assert_memory_not_equal(pkt + 12, orig + 12, 1000);
        assert_int_equal(sl_srtp_unprotect(b, pkt, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(pkt, orig, len);
    }
    size_t n = make_rtp(pkt, 7, 0x9999, 50);
    assert_int_equal(sl_srtp_protect(b, pkt, &n, sizeof pkt), 0);
    assert_int_equal(sl_srtp_unprotect(a, pkt, &n), 0);
    assert_int_equal(n, 62);

    /* Tampered: one flipped bit in the payload or the tag fails. */
    n = make_rtp(pkt, 200, 0x1234, 100);
    assert_int_equal(sl_srtp_protect(a, pkt, &n, sizeof pkt), 0);
    memcpy(orig, pkt, n);
    pkt[40] ^= 1;
    size_t m = n;
    assert_int_equal(sl_srtp_unprotect(b, pkt, &m), SL_EPROTO);
    memcpy(pkt, orig, n);
    pkt[n - 1] ^= 0x80;
    m = n;
    assert_int_equal(sl_srtp_unprotect(b, pkt, &m), SL_EPROTO);
    /* The intact one still passes (a failed check does not mark it seen)... */
    memcpy(pkt, orig, n);
    m = n;
    assert_int_equal(sl_srtp_unprotect(b, pkt, &m), 0);
    /* ...and its replay fails. */
    memcpy(pkt, orig, n);
    m = n;
    assert_int_equal(sl_srtp_unprotect(b, pkt, &m), SL_EPROTO);

    /* A NACK resend: the same packet protected twice gives the same bytes. */
    uint8_t again[1500];
    n = make_rtp(pkt, 300, 0x1234, 500);
    size_t n2 = make_rtp(again, 300, 0x1234, 500);
    assert_int_equal(sl_srtp_protect(a, pkt, &n, sizeof pkt), 0);
    assert_int_equal(sl_srtp_protect(a, again, &n2, sizeof again), 0);
    assert_int_equal(n, n2);
    assert_memory_equal(pkt, again, n);
    assert_int_equal(sl_srtp_unprotect(b, again, &n2), 0); /* the first copy to arrive passes */

    /* Room and size checks. */
    n = make_rtp(pkt, 301, 0x1234, 100);
    assert_int_equal(sl_srtp_protect(a, pkt, &n, n + SL_SRTP_MAX_TRAILER - 1), SL_ETOOBIG);
    n = 11;
    assert_int_equal(sl_srtp_protect(a, pkt, &n, sizeof pkt), SL_EINVAL);
    n = 5;
    assert_int_equal(sl_srtp_unprotect(b, pkt, &n), SL_EPROTO);

    /* RTCP both ways, with tamper and replay. */
    for (int i = 0; i < 3; i++) {
        n = make_rtcp_rr(pkt, 0x1234);
        memcpy(orig, pkt, n);
        assert_int_equal(sl_srtp_protect_rtcp(a, pkt, &n, sizeof pkt), 0);
        assert_int_equal(n, 8 + 4 + tag);
        uint8_t copy[64];
        memcpy(copy, pkt, n);
        m = n;
        assert_int_equal(sl_srtp_unprotect_rtcp(b, pkt, &m), 0);
        assert_int_equal(m, 8);
        assert_memory_equal(pkt, orig, 8);
        m = n;
        assert_int_equal(sl_srtp_unprotect_rtcp(b, copy, &m), SL_EPROTO); /* replay */
    }
    n = make_rtcp_rr(pkt, 0x5678);
    assert_int_equal(sl_srtp_protect_rtcp(b, pkt, &n, sizeof pkt), 0);
    pkt[5] ^= 1;
    assert_int_equal(sl_srtp_unprotect_rtcp(a, pkt, &n), SL_EPROTO);
    n = make_rtcp_rr(pkt, 0x5678);
    assert_int_equal(sl_srtp_protect_rtcp(b, pkt, &n, 20), SL_ETOOBIG);
    sl_srtp_free(a);
    sl_srtp_free(b);
}

static void test_srtp_profiles(void **state)
{
    (void)state;
    srtp_roundtrip(SL_SRTP_AES128_CM_SHA1_80);
    srtp_roundtrip(SL_SRTP_AEAD_AES_128_GCM);

    sl_srtp_keys_t k;
    sl_srtp_t *s = (sl_srtp_t *)1;
    memset(&k, 0, sizeof k);
    k.profile = 99;
    k.key_len = 30;
    assert_int_equal(sl_srtp_new(&k, &s), SL_EINVAL);
    assert_null(s);
    k.profile = SL_SRTP_AEAD_AES_128_GCM; /* GCM wants 28 */
    assert_int_equal(sl_srtp_new(&k, &s), SL_EINVAL);
    k.key_len = 1000;
    assert_int_equal(sl_srtp_new(&k, &s), SL_EINVAL);
    sl_srtp_free(NULL);
}

/* Keys from a real handshake protect on one side and unprotect on the other. */
static void test_srtp_with_dtls_keys(void **state)
{
    (void)state;
    side_t srv, cli;
    make_pair(&srv, &cli, NULL, NULL);
    sl_dtls_start(cli.d);
    pump(&srv, &cli, -1, -1);
    assert_int_equal(srv.connected + cli.connected, 2);
    sl_srtp_t *a, *b;
    assert_int_equal(sl_srtp_new(&srv.keys, &a), 0);
    assert_int_equal(sl_srtp_new(&cli.keys, &b), 0);
    uint8_t pkt[1500];
    size_t n = make_rtp(pkt, 1, 42, 1200);
    assert_int_equal(sl_srtp_protect(a, pkt, &n, sizeof pkt), 0);
    assert_int_equal(sl_srtp_unprotect(b, pkt, &n), 0);
    n = make_rtcp_rr(pkt, 43);
    assert_int_equal(sl_srtp_protect_rtcp(b, pkt, &n, sizeof pkt), 0);
    assert_int_equal(sl_srtp_unprotect_rtcp(a, pkt, &n), 0);
    sl_srtp_free(a);
    sl_srtp_free(b);
    free_pair(&srv, &cli);
}

/* ---- figures ------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Prints handshakes per second (both sides on this one thread, so one
 * handshake costs the server's and the client's work) and SRTP protect
 * throughput for 1200-byte payloads. SL_DTLS_BENCH_SCALE multiplies the
 * work (default 1: a fraction of a second).
 */
static void test_bench(void **state)
{
    (void)state;
    const char *sc = getenv("SL_DTLS_BENCH_SCALE");
    int scale = sc ? atoi(sc) : 1;
    if (scale < 1)
        scale = 1;
    int n_hs = 20 * scale;
    double t0 = now_s();
    for (int i = 0; i < n_hs; i++) {
        side_t srv, cli;
        make_pair(&srv, &cli, NULL, NULL);
        sl_dtls_start(cli.d);
        pump(&srv, &cli, -1, -1);
        assert_int_equal(srv.connected + cli.connected, 2);
        free_pair(&srv, &cli);
    }
    double hs = n_hs / (now_s() - t0);
    printf("[bench] DTLS handshakes: %.0f per second (server + client on one core)\n", hs);

    const int profiles[2] = {SL_SRTP_AEAD_AES_128_GCM, SL_SRTP_AES128_CM_SHA1_80};
    const char *names[2] = {"AEAD_AES_128_GCM", "AES128_CM_SHA1_80"};
    for (int k = 0; k < 2; k++) {
        sl_srtp_keys_t ka, kb;
        make_keys(profiles[k], &ka, &kb);
        sl_srtp_t *a;
        assert_int_equal(sl_srtp_new(&ka, &a), 0);
        uint8_t pkt[1500], tmpl[1500];
        size_t tlen = make_rtp(tmpl, 0, 1, 1200);
        int n_pkts = 20000 * scale;
        t0 = now_s();
        for (int i = 0; i < n_pkts; i++) {
            memcpy(pkt, tmpl, tlen);
            pkt[2] = (uint8_t)(i >> 8);
            pkt[3] = (uint8_t)i;
            size_t n = tlen;
            if (sl_srtp_protect(a, pkt, &n, sizeof pkt) != 0)
                fail();
        }
        double dt = now_s() - t0;
        printf("[bench] SRTP protect %s: %.0f MB/s (%.0f packets/s of 1200 bytes)\n", names[k],
               n_pkts * 1200.0 / dt / 1e6, n_pkts / dt);
        sl_srtp_free(a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctx_fingerprint),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_handshake_data_close),
        cmocka_unit_test(test_roles_swapped),
        cmocka_unit_test(test_fingerprint_mismatch),
        cmocka_unit_test(test_lost_flights),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_aiortc_like_peer),
        cmocka_unit_test(test_srtp_profiles),
        cmocka_unit_test(test_srtp_with_dtls_keys),
        cmocka_unit_test(test_bench),
    };
    return cmocka_run_group_tests(tests, setup_ctx, teardown_ctx);
}
