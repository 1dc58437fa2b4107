/*
 * SRTP sessions split between two threads (net/srtp.h, sl_srtp_split_tx;
 * WHEP viewers on a worker loop, docs/internals/threads.md): the outbound
 * half protects on one thread while the inbound half, left behind,
 * unprotects on another, at the same time; the peer decrypts everything
 * the outbound half sent, in order; each half refuses the other's work
 * (SL_ECLOSED); a second split is refused. Under ThreadSanitizer (make
 * test-tsan) it is the check that the two halves share no state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include <openssl/rand.h>

#include "base/alloc.h"
#include "net/srtp.h"
#include "sluice/errors.h"

#define N_PKTS 3000
#define ROOM (1200 + SL_SRTP_MAX_TRAILER)

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
        p[12 + i] = (uint8_t)(i * 7 + seq);
    return 12 + payload;
}

typedef struct tx_job {
    sl_srtp_t *tx;
    uint8_t (*out)[ROOM];
    size_t *len;
    int failures;
} tx_job_t;

/* The "worker": protects N_PKTS packets (RTP, every 100th an RTCP report). */
static void tx_thread(void *arg)
{
    tx_job_t *j = arg;
    for (int i = 0; i < N_PKTS; i++) {
        size_t n;
        int rc;
        if (i % 100 == 99) {
            static const uint8_t rr[8] = {0x80, 201, 0, 1, 0, 0, 0x12, 0x34};
            memcpy(j->out[i], rr, sizeof rr);
            n = sizeof rr;
            rc = sl_srtp_protect_rtcp(j->tx, j->out[i], &n, ROOM);
        } else {
            n = make_rtp(j->out[i], (uint16_t)(1000 + i), 0xabcd, 1000);
            rc = sl_srtp_protect(j->tx, j->out[i], &n, ROOM);
        }
        j->len[i] = n;
        if (rc)
            j->failures++;
    }
}

static void split_across_threads(int profile)
{
    sl_srtp_keys_t ka, kb;
    memset(&ka, 0, sizeof ka);
    ka.profile = profile;
    ka.key_len = profile == SL_SRTP_AEAD_AES_128_GCM ? 28 : 30;
    RAND_bytes(ka.local_key, (int)ka.key_len);
    RAND_bytes(ka.remote_key, (int)ka.key_len);
    kb = ka;
    memcpy(kb.local_key, ka.remote_key, ka.key_len);
    memcpy(kb.remote_key, ka.local_key, ka.key_len);
    sl_srtp_t *a, *a_tx, *b;
    assert_int_equal(sl_srtp_new(&ka, &a), 0);
    assert_int_equal(sl_srtp_new(&kb, &b), 0);
    assert_int_equal(sl_srtp_split_tx(a, &a_tx), 0);
    sl_srtp_t *again;
    assert_int_equal(sl_srtp_split_tx(a, &again), SL_EINVAL); /* a has no outbound half left */
    assert_null(again);
    assert_int_equal(sl_srtp_rtp_overhead(a_tx), profile == SL_SRTP_AEAD_AES_128_GCM ? 16 : 10);

    /* The peer's packets, protected up front, for the inbound half. */
    static uint8_t in[N_PKTS][ROOM];
    static size_t in_len[N_PKTS];
    for (int i = 0; i < N_PKTS; i++) {
        in_len[i] = make_rtp(in[i], (uint16_t)(5000 + i), 0x5151, 200);
        assert_int_equal(sl_srtp_protect(b, in[i], &in_len[i], ROOM), 0);
    }

    static uint8_t out[N_PKTS][ROOM];
    static size_t out_len[N_PKTS];
    tx_job_t job = {.tx = a_tx, .out = out, .len = out_len};
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, tx_thread, &job), 0);
    /* Meanwhile, on this thread: the inbound half unprotects the peer's packets. */
    int in_ok = 0;
    for (int i = 0; i < N_PKTS; i++) {
        size_t n = in_len[i];
        if (sl_srtp_unprotect(a, in[i], &n) == 0 && n == 212)
            in_ok++;
    }
    assert_int_equal(uv_thread_join(&t), 0);
    assert_int_equal(in_ok, N_PKTS);
    assert_int_equal(job.failures, 0);

    /* Everything the outbound half sent decrypts at the peer, in order. */
    uint8_t want[ROOM];
    for (int i = 0; i < N_PKTS; i++) {
        size_t n = out_len[i];
        if (i % 100 == 99) {
            assert_int_equal(sl_srtp_unprotect_rtcp(b, out[i], &n), 0);
            assert_int_equal(n, 8);
        } else {
            assert_int_equal(sl_srtp_unprotect(b, out[i], &n), 0);
            size_t wn = make_rtp(want, (uint16_t)(1000 + i), 0xabcd, 1000);
            assert_int_equal(n, wn);
            assert_memory_equal(out[i], want, wn);
        }
    }

    /* Each half refuses the other's work. */
    uint8_t pkt[ROOM];
    size_t n = make_rtp(pkt, 1, 0xabcd, 10);
    assert_int_equal(sl_srtp_protect(a, pkt, &n, sizeof pkt), SL_ECLOSED);
    assert_int_equal(sl_srtp_protect_rtcp(a, pkt, &n, sizeof pkt), SL_ECLOSED);
    assert_int_equal(sl_srtp_unprotect(a_tx, pkt, &n), SL_ECLOSED);
    assert_int_equal(sl_srtp_unprotect_rtcp(a_tx, pkt, &n), SL_ECLOSED);
    sl_srtp_free(a_tx);
    sl_srtp_free(a);
    sl_srtp_free(b);
}

static void test_split_gcm(void **state)
{
    (void)state;
    split_across_threads(SL_SRTP_AEAD_AES_128_GCM);
}

static void test_split_cm_sha1(void **state)
{
    (void)state;
    split_across_threads(SL_SRTP_AES128_CM_SHA1_80);
}

static void test_split_alloc_failure(void **state)
{
    (void)state;
    sl_srtp_keys_t k;
    memset(&k, 0, sizeof k);
    k.profile = SL_SRTP_AES128_CM_SHA1_80;
    k.key_len = 30;
    sl_srtp_t *s, *tx = (sl_srtp_t *)&k;
    assert_int_equal(sl_srtp_new(&k, &s), 0);
    if (sl_alloc_fail_at(1, 0) == 1) { /* fault injection: debug and sanitizer builds */
        assert_int_equal(sl_srtp_split_tx(s, &tx), SL_ENOMEM);
        sl_alloc_fail_at(0, 0);
        assert_null(tx);
    }
    /* Nothing moved: s still protects. */
    uint8_t pkt[64 + SL_SRTP_MAX_TRAILER];
    size_t n = make_rtp(pkt, 1, 1, 20);
    assert_int_equal(sl_srtp_protect(s, pkt, &n, sizeof pkt), 0);
    assert_int_equal(sl_srtp_split_tx(NULL, &tx), SL_EINVAL);
    sl_srtp_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_gcm),
        cmocka_unit_test(test_split_cm_sha1),
        cmocka_unit_test(test_split_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
