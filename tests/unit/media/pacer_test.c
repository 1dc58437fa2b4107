/*
 * media/pacer.c on synthetic time: the budget paces bytes at the rate
 * (and bursts no more than SL_PACER_BURST_MS after idling), audio and
 * retransmissions go before video, a refused send (SL_EAGAIN) keeps the
 * packet first and is counted, a full priority ring drops its oldest and
 * a full video ring refuses, drop_video keeps a frame already begun and
 * counts frames, queue_ms reports age or drain time, every reference is
 * released (buffers' refcounts checked) and allocation failure is clean.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "media/pacer.h"
#include "sluice/errors.h"

typedef struct sent {
    int n;
    uint8_t kind[256];
    uint32_t frame[256];
    uint16_t len[256];
    int refuse;                   /* answer SL_EAGAIN this many times first */
    size_t bytes;
} sent_t;

static int on_send(void *ud, const sl_pacer_pkt_t *k)
{
    sent_t *s = ud;
    if (s->refuse > 0) {
        s->refuse--;
        return SL_EAGAIN;
    }
    if (s->n < 256) {
        s->kind[s->n] = k->kind;
        s->frame[s->n] = k->frame;
        s->len[s->n] = k->len;
    }
    s->n++;
    s->bytes += k->len;
    return 0;
}

static sl_pacer_pkt_t pkt(sl_buf_t *b, uint8_t kind, uint16_t len, uint32_t frame, int marker)
{
    sl_pacer_pkt_t k = {.buf = b, .off = 0, .len = len, .kind = kind, .frame = frame, .marker = (uint8_t)marker};
    return k;
}

static void test_paces_at_rate(void **state)
{
    (void)state;
    sl_buf_t *b = sl_buf_new(2000);
    sl_pacer_t p;
    assert_int_equal(sl_pacer_init(&p, 1024, 64), 0);
    sl_pacer_set_rate(&p, 1000000); /* 125 bytes/ms; burst cap 20 ms = 2500 < 3000 floor */
    for (uint32_t i = 0; i < 100; i++)
        assert_int_equal(sl_pacer_push(&p, &(sl_pacer_pkt_t){.buf = b, .len = 960, .kind = SL_PACER_VIDEO,
                                                             .frame = i, .marker = 1}, 0), 0);
    assert_int_equal(b->refs, 101);
    sent_t s = {0};
    /* First drain: the initial burst (3000 bytes) lets 3 packets go (charged 1000 each). */
    assert_int_equal(sl_pacer_drain(&p, 0, on_send, &s), 0);
    assert_int_equal(s.n, 3);
    /* Then 1000 bytes per 8 ms (960 payload + 40 overhead at 125 B/ms). */
    for (uint64_t t = 1; t <= 800; t++)
        sl_pacer_drain(&p, t, on_send, &s);
    assert_true(s.n >= 99 && s.n <= 100);
    /* 100 packets * 1000 bytes at 125 B/ms: 800 ms. */
    assert_int_equal(b->refs, 1 + (100 - s.n));
    sl_pacer_cleanup(&p);
    assert_int_equal(b->refs, 1);
    sl_buf_unref(b);
}

static void test_idle_does_not_burst(void **state)
{
    (void)state;
    sl_buf_t *b = sl_buf_new(2000);
    sl_pacer_t p;
    assert_int_equal(sl_pacer_init(&p, 1024, 64), 0);
    sl_pacer_set_rate(&p, 8000000); /* 1000 B/ms: burst cap 20000 bytes */
    sent_t s = {0};
    sl_pacer_drain(&p, 0, on_send, &s);
    for (uint32_t i = 0; i < 100; i++)
        sl_pacer_push(&p, &(sl_pacer_pkt_t){.buf = b, .len = 960, .kind = SL_PACER_VIDEO, .frame = i}, 10000);
    sl_pacer_drain(&p, 10000, on_send, &s); /* 10 s idle: still only ~20 KB */
    assert_int_equal(s.n, 20);
    sl_pacer_cleanup(&p);
    sl_buf_unref(b);
}

static void test_unpaced_sends_all(void **state)
{
    (void)state;
    sl_buf_t *b = sl_buf_new(2000);
    sl_pacer_t p;
    assert_int_equal(sl_pacer_init(&p, 1024, 64), 0);
    for (uint32_t i = 0; i < 500; i++)
        sl_pacer_push(&p, &(sl_pacer_pkt_t){.buf = b, .len = 1200, .kind = SL_PACER_VIDEO, .frame = i}, 0);
    sent_t s = {0};
    assert_int_equal(sl_pacer_drain(&p, 0, on_send, &s), 0);
    assert_int_equal(s.n, 500);
    assert_true(sl_pacer_empty(&p));
    assert_int_equal(p.bytes, 0);
    sl_pacer_cleanup(&p);
    assert_int_equal(b->refs, 1);
    sl_buf_unref(b);
}

static void test_priority_first(void **state)
{
    (void)state;
    sl_buf_t *b = sl_buf_new(2000);
    sl_pacer_t p;
    assert_int_equal(sl_pacer_init(&p, 64, 64), 0);
    sl_pacer_push(&p, &(sl_pacer_pkt_t){.buf = b, .len = 100, .kind = SL_PACER_VIDEO, .frame = 1}, 0);
    sl_pacer_push(&p, &(sl_pacer_pkt_t){.buf = b, .len = 100, .kind = SL_PACER_VIDEO, .frame = 1}, 0);
    sl_pacer_push(&p, &(sl_pacer_pkt_t){.buf = b, .len = 50, .kind = SL_PACER_AUDIO, .track = 1}, 1);
    sl_pacer_push(&p, &(sl_pacer_pkt_t){.buf = b, .len = 70, .kind = SL_PACER_RTX, .seq = 7}, 2);
    sent_t s = {0};
    sl_pacer_drain(&p, 3, on_send, &s);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.kind[0], SL_PACER_AUDIO);
    assert_int_equal(s.kind[1], SL_PACER_RTX);
    assert_int_equal(s.kind[2], SL_PACER_VIDEO);
    sl_pacer_cleanup(&p);
    sl_buf_unref(b);
}

static void test_eagain_keeps_and_counts(void **state)
{
    (void)state;
    sl_buf_t *b = sl_buf_new(2000);
    sl_pacer_t p;
    assert_int_equal(sl_pacer_init(&p, 64, 64), 0);
    for (uint32_t i = 0; i < 5; i++)
        sl_pacer_push(&p, &(sl_pacer_pkt_t){.buf = b, .len = 100, .kind = SL_PACER_VIDEO, .frame = i, .marker = 1}, 0);
    sent_t s = {.refuse = 2};
    assert_int_equal(sl_pacer_drain(&p, 0, on_send, &s), SL_EAGAIN);
    assert_int_equal(s.n, 0);
    assert_int_equal(p.retries, 1);
    assert_int_equal(p.video.n, 5);
    assert_int_equal(sl_pacer_drain(&p, 5, on_send, &s), SL_EAGAIN);
    assert_int_equal(p.retries, 2);
    assert_int_equal(sl_pacer_drain(&p, 10, on_send, &s), 0);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.frame[0], 0); /* the refused packet went first */
    assert_int_equal(p.sent, 5);
    sl_pacer_cleanup(&p);
    assert_int_equal(b->refs, 1);
    sl_buf_unref(b);
}

static void test_caps(void **state)
{
    (void)state;
    sl_buf_t *b = sl_buf_new(2000);
    sl_pacer_t p;
    assert_int_equal(sl_pacer_init(&p, 4, 2), 0);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(sl_pacer_push(&p, &(sl_pacer_pkt_t){.buf = b, .len = 10, .kind = SL_PACER_VIDEO}, 0), 0);
    assert_int_equal(sl_pacer_push(&p, &(sl_pacer_pkt_t){.buf = b, .len = 10, .kind = SL_PACER_VIDEO}, 0),
                     SL_ETOOBIG);
    for (uint16_t i = 0; i < 3; i++)
        assert_int_equal(sl_pacer_push(&p, &(sl_pacer_pkt_t){.buf = b, .len = 10, .kind = SL_PACER_RTX, .seq = i}, 0), 0);
    assert_int_equal(p.prio_dropped, 1);
    assert_int_equal(p.prio.n, 2);
    assert_int_equal(p.bytes, 60);
    assert_int_equal(b->refs, 7);
    sl_pacer_cleanup(&p);
    assert_int_equal(b->refs, 1);
    sl_buf_unref(b);
}

static void test_drop_video_keeps_started_frame(void **state)
{
    (void)state;
    sl_buf_t *b = sl_buf_new(2000);
    sl_pacer_t p;
    assert_int_equal(sl_pacer_init(&p, 64, 64), 0);
    sl_pacer_set_rate(&p, 1000000);
    /* frame 1: 6 packets (a keyframe), frames 2..4: 2 packets each; audio too. */
    for (int i = 0; i < 6; i++) {
        sl_pacer_pkt_t k = pkt(b, SL_PACER_VIDEO, 1000, 1, i == 5);
        k.key = 1;
        sl_pacer_push(&p, &k, 0);
    }
    for (uint32_t f = 2; f <= 4; f++)
        for (int i = 0; i < 2; i++) {
            sl_pacer_pkt_t k = pkt(b, SL_PACER_VIDEO, 1000, f, i == 1);
            sl_pacer_push(&p, &k, 0);
        }
    sent_t s = {0};
    sl_pacer_drain(&p, 0, on_send, &s); /* 3000-byte burst: 3 of frame 1 */
    assert_int_equal(s.n, 3);
    assert_true(sl_pacer_frame_started(&p, 1));
    sl_pacer_pkt_t a = pkt(b, SL_PACER_AUDIO, 100, 0, 1);
    sl_pacer_push(&p, &a, 1);
    assert_int_equal(sl_pacer_drop_video(&p), 3);
    assert_int_equal(p.video.n, 3); /* frame 1's rest */
    assert_int_equal(p.prio.n, 1);  /* audio untouched */
    assert_int_equal(p.bytes, 3100);
    for (uint64_t t = 1; t < 100; t++)
        sl_pacer_drain(&p, t, on_send, &s);
    assert_int_equal(s.n, 7);
    assert_int_equal(s.kind[3], SL_PACER_AUDIO);
    assert_false(sl_pacer_frame_started(&p, 1)); /* its marker went */
    /* Nothing begun: everything goes. */
    sl_pacer_pkt_t k = pkt(b, SL_PACER_VIDEO, 1000, 9, 1);
    sl_pacer_push(&p, &k, 200);
    assert_int_equal(sl_pacer_drop_video(&p), 1);
    assert_true(sl_pacer_empty(&p));
    sl_pacer_cleanup(&p);
    assert_int_equal(b->refs, 1);
    sl_buf_unref(b);
}

static void test_queue_ms(void **state)
{
    (void)state;
    sl_buf_t *b = sl_buf_new(2000);
    sl_pacer_t p;
    assert_int_equal(sl_pacer_init(&p, 64, 64), 0);
    assert_int_equal(sl_pacer_queue_ms(&p, 100), 0);
    sl_pacer_set_rate(&p, 800000); /* 100 bytes/ms */
    for (int i = 0; i < 10; i++)
        sl_pacer_push(&p, &(sl_pacer_pkt_t){.buf = b, .len = 960, .kind = SL_PACER_VIDEO}, 100);
    assert_int_equal(sl_pacer_queue_ms(&p, 100), 100); /* 10 x 1000 bytes at 100 B/ms */
    assert_int_equal(sl_pacer_queue_ms(&p, 400), 300); /* older than that: its age */
    sl_pacer_set_rate(&p, 0);
    assert_int_equal(sl_pacer_queue_ms(&p, 150), 50);
    sl_pacer_cleanup(&p);
    sl_buf_unref(b);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    sl_pacer_t p;
    if (!sl_alloc_fail_at(0, 0))
        skip(); /* built without SL_FAULT_INJECTION */
    for (uint64_t n = 1; n <= 2; n++) {
        sl_alloc_fail_at(n, 0);
        assert_int_equal(sl_pacer_init(&p, 8, 8), SL_ENOMEM);
        sl_alloc_fail_at(0, 0);
        sl_pacer_cleanup(&p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paces_at_rate),
        cmocka_unit_test(test_idle_does_not_burst),
        cmocka_unit_test(test_unpaced_sends_all),
        cmocka_unit_test(test_priority_first),
        cmocka_unit_test(test_eagain_keeps_and_counts),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_drop_video_keeps_started_frame),
        cmocka_unit_test(test_queue_ms),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
