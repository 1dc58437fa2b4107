/*
 * media/rtp_rx.c and media/rtp_tx.c: the reorder buffer (in-order
 * passthrough, reorder, a gap NACKed at the right times then given up,
 * 16-bit wrap, reset on a huge jump, packet and byte caps), the RR
 * statistics against hand-computed RFC 3550 A.3 / A.8 figures, the SR
 * mapping, TWCC feedback from a known arrival list, and the send-side
 * retransmission history (lookup after wrap, once per RTT, age), RTT and SR.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "media/rtcp.h"
#include "media/rtp_rx.h"
#include "media/rtp_tx.h"
#include "sluice/errors.h"

/* What the receiver handed out: delivered seqs (each test packet carries
 * its seq in its first two bytes) and loss runs. */
typedef struct sink {
    uint16_t got[4096];
    int n_got;
    uint16_t loss_first[64];
    uint16_t loss_count[64];
    int n_loss;
} sink_t;

static void on_packet(void *ud, const uint8_t *p, size_t len)
{
    sink_t *s = ud;
    assert_true(len >= 2);
    if (s->n_got < 4096)
        s->got[s->n_got++] = (uint16_t)(p[0] << 8 | p[1]);
}

static void on_loss(void *ud, uint16_t first, uint16_t count)
{
    sink_t *s = ud;
    if (s->n_loss < 64) {
        s->loss_first[s->n_loss] = first;
        s->loss_count[s->n_loss] = count;
    }
    s->n_loss++;
}

static int push(sl_rtp_rx_t *rx, uint16_t seq, uint32_t ts, uint64_t t_ms, size_t len)
{
    uint8_t p[2048];
    memset(p, 0xAB, sizeof p);
    p[0] = (uint8_t)(seq >> 8);
    p[1] = (uint8_t)seq;
    return sl_rtp_rx_push(rx, seq, ts, t_ms, p, len);
}

static sink_t *new_sink(void)
{
    sink_t *s = test_calloc(1, sizeof(sink_t));
    assert_non_null(s);
    return s;
}

static void test_in_order_and_reorder(void **state)
{
    (void)state;
    sink_t *s = new_sink();
    sl_rtp_rx_t *rx = sl_rtp_rx_new(90000, 150, on_packet, on_loss, s);
    assert_non_null(rx);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(push(rx, (uint16_t)(500 + i), 0, 10, 100), 0);
        assert_int_equal(s->n_got, i + 1); /* delivered at once */
    }
    sl_rtp_rx_stats_t st;
    sl_rtp_rx_get_stats(rx, &st);
    assert_int_equal(st.held_pkts, 0);
    /* 510, 512, 511: 512 waits for 511, then both go out in order. */
    push(rx, 510, 0, 20, 100);
    push(rx, 512, 0, 20, 100);
    assert_int_equal(s->n_got, 11);
    sl_rtp_rx_get_stats(rx, &st);
    assert_int_equal(st.held_pkts, 1);
    assert_int_equal(st.held_bytes, 100);
    push(rx, 511, 0, 25, 100);
    assert_int_equal(s->n_got, 13);
    for (int i = 0; i < 13; i++)
        assert_int_equal(s->got[i], 500 + i);
    /* Duplicates: one held, one already delivered. */
    push(rx, 515, 0, 30, 100);
    push(rx, 515, 0, 30, 100);
    push(rx, 505, 0, 30, 100);
    sl_rtp_rx_get_stats(rx, &st);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.late, 1);
    assert_int_equal(st.recovered, 0);
    assert_int_equal(s->n_loss, 0);
    uint16_t nacks[8];
    assert_int_equal(sl_rtp_rx_poll(rx, 30, nacks, 8), 2); /* 513, 514 */
    assert_int_equal(nacks[0], 513);
    assert_int_equal(nacks[1], 514);
    assert_int_equal(push(rx, 1, 0, 30, 0), SL_ETOOBIG);
    assert_int_equal(push(rx, 1, 0, 30, SL_RTP_RX_MAX_PKT + 1), SL_ETOOBIG);
    sl_rtp_rx_free(rx); /* frees the held packet (ASan checks) */
    test_free(s);
}

static void test_nack_schedule_then_loss(void **state)
{
    (void)state;
    sink_t *s = new_sink();
    sl_rtp_rx_t *rx = sl_rtp_rx_new(90000, 150, on_packet, on_loss, s);
    sl_rtp_rx_set_rtt(rx, 40);
    uint16_t nk[8];
    push(rx, 10, 0, 1000, 50);
    push(rx, 12, 0, 1000, 50);
    push(rx, 13, 0, 1005, 50);
    assert_int_equal(sl_rtp_rx_poll(rx, 1000, nk, 8), 1); /* first NACK at once */
    assert_int_equal(nk[0], 11);
    assert_int_equal(sl_rtp_rx_poll(rx, 1020, nk, 8), 0); /* not before an RTT */
    assert_int_equal(sl_rtp_rx_poll(rx, 1039, nk, 8), 0);
    assert_int_equal(sl_rtp_rx_poll(rx, 1040, nk, 8), 1); /* second */
    assert_int_equal(sl_rtp_rx_poll(rx, 1080, nk, 8), 1); /* third */
    assert_int_equal(sl_rtp_rx_poll(rx, 1120, nk, 8), 0); /* never a fourth */
    assert_int_equal(sl_rtp_rx_poll(rx, 1149, nk, 8), 0);
    assert_int_equal(s->n_got, 1);
    assert_int_equal(s->n_loss, 0); /* still waiting */
    assert_int_equal(sl_rtp_rx_poll(rx, 1150, nk, 8), 0);
    assert_int_equal(s->n_loss, 1); /* given up after max_wait */
    assert_int_equal(s->loss_first[0], 11);
    assert_int_equal(s->loss_count[0], 1);
    assert_int_equal(s->n_got, 3);
    assert_int_equal(s->got[1], 12);
    assert_int_equal(s->got[2], 13);
    /* A gap that a retransmission fills: recovered. */
    push(rx, 16, 0, 2000, 50);
    assert_int_equal(sl_rtp_rx_poll(rx, 2000, nk, 8), 2);
    push(rx, 14, 0, 2030, 50);
    push(rx, 15, 0, 2031, 50);
    assert_int_equal(s->n_got, 6);
    /* The late one after its gap was given up. */
    push(rx, 11, 0, 2040, 50);
    sl_rtp_rx_stats_t st;
    sl_rtp_rx_get_stats(rx, &st);
    assert_int_equal(st.recovered, 2);
    assert_int_equal(st.lost, 1);
    assert_int_equal(st.nacks_sent, 5);
    assert_int_equal(st.late, 1);
    assert_int_equal(st.delivered, 6);
    /* A NACK list capped by the caller's array; the rest come next poll. */
    push(rx, 30, 0, 3000, 50); /* 17..29 missing */
    assert_int_equal(sl_rtp_rx_poll(rx, 3000, nk, 8), 8);
    assert_int_equal(nk[0], 17);
    assert_int_equal(sl_rtp_rx_poll(rx, 3001, nk, 8), 5);
    assert_int_equal(nk[4], 29);
    /* Loss runs are reported as one call. */
    assert_int_equal(sl_rtp_rx_poll(rx, 3150, nk, 8), 0);
    assert_int_equal(s->n_loss, 2);
    assert_int_equal(s->loss_first[1], 17);
    assert_int_equal(s->loss_count[1], 13);
    assert_int_equal(s->got[s->n_got - 1], 30);
    sl_rtp_rx_free(rx);
    test_free(s);
}

static void test_wrap_and_reset(void **state)
{
    (void)state;
    sink_t *s = new_sink();
    sl_rtp_rx_t *rx = sl_rtp_rx_new(90000, 100, on_packet, on_loss, s);
    push(rx, 65533, 0, 0, 40);
    push(rx, 65534, 0, 0, 40);
    push(rx, 0, 0, 1, 40);
    push(rx, 1, 0, 1, 40);
    uint16_t nk[4];
    assert_int_equal(sl_rtp_rx_poll(rx, 2, nk, 4), 1);
    assert_int_equal(nk[0], 65535);
    push(rx, 65535, 0, 3, 40);
    static const uint16_t want[] = {65533, 65534, 65535, 0, 1};
    assert_int_equal(s->n_got, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(s->got[i], want[i]);
    sl_rtcp_report_t rb;
    sl_rtp_rx_report(rx, 42, 10, &rb);
    assert_int_equal(rb.source, 42);
    assert_int_equal(rb.ext_high_seq, 0x10001); /* one cycle, seq 1 */
    assert_int_equal(rb.cum_lost, 0);
    /* Old packet from before the wrap: dropped as late. */
    push(rx, 65530, 0, 4, 40);
    assert_int_equal(s->n_got, 5);
    /* A huge jump: the sender restarted. Delivery continues at once. */
    push(rx, 5, 0, 5, 40); /* held, waiting for 2..4 */
    push(rx, 40000, 0, 6, 40);
    sl_rtp_rx_stats_t st;
    sl_rtp_rx_get_stats(rx, &st);
    assert_int_equal(st.resets, 1);
    assert_int_equal(s->got[5], 5);     /* the held one was released first */
    assert_int_equal(s->got[6], 40000);
    assert_int_equal(s->loss_first[0], 2);
    assert_int_equal(s->loss_count[0], 3);
    push(rx, 40001, 0, 7, 40);
    assert_int_equal(s->got[7], 40001);
    sl_rtp_rx_report(rx, 42, 10, &rb);
    assert_int_equal(rb.ext_high_seq, 40001);
    assert_int_equal(rb.cum_lost, 0); /* statistics restarted with the sequence */
    /* A jump of 2000 (wider than the ring, below the reset bound). */
    push(rx, 42001, 0, 8, 40);
    sl_rtp_rx_get_stats(rx, &st);
    assert_int_equal(st.resets, 1);
    assert_int_equal(st.held_pkts, 1);
    sl_rtp_rx_poll(rx, 200, nk, 4);
    assert_int_equal(s->got[s->n_got - 1], 42001);
    sl_rtp_rx_get_stats(rx, &st);
    assert_int_equal(st.lost, 3 + 1999);
    sl_rtp_rx_free(rx);
    test_free(s);
}

static void test_caps(void **state)
{
    (void)state;
    sink_t *s = new_sink();
    sl_rtp_rx_t *rx = sl_rtp_rx_new(90000, 150, on_packet, on_loss, s);
    assert_int_equal(sl_rtp_rx_set_limits(rx, 0, 100), SL_EINVAL);
    assert_int_equal(sl_rtp_rx_set_limits(rx, SL_RTP_RX_RING + 1, 100), SL_EINVAL);
    assert_int_equal(sl_rtp_rx_set_limits(rx, 4, 1 << 20), 0);
    push(rx, 1, 0, 0, 100);
    for (int q = 3; q <= 6; q++)
        push(rx, (uint16_t)q, 0, 0, 100);
    sl_rtp_rx_stats_t st;
    sl_rtp_rx_get_stats(rx, &st);
    assert_int_equal(st.held_pkts, 4);
    push(rx, 7, 0, 0, 100); /* a fifth: 2 is given up, 3.. flow out */
    sl_rtp_rx_get_stats(rx, &st);
    assert_int_equal(st.held_pkts, 0);
    assert_int_equal(s->n_got, 6);
    assert_int_equal(s->loss_first[0], 2);
    assert_int_equal(s->n_loss, 1);
    /* Bytes: at most 250 held. */
    assert_int_equal(sl_rtp_rx_set_limits(rx, 512, 250), 0);
    push(rx, 9, 0, 0, 100);
    push(rx, 10, 0, 0, 100);
    sl_rtp_rx_get_stats(rx, &st);
    assert_int_equal(st.held_bytes, 200);
    push(rx, 12, 0, 0, 100); /* 8 given up: 9, 10 out; 11 missing; 12 held */
    sl_rtp_rx_get_stats(rx, &st);
    assert_int_equal(st.held_bytes, 100);
    assert_int_equal(s->got[s->n_got - 1], 10);
    assert_int_equal(st.overflows, 2);
    /* Allocation failure while holding: SL_ENOMEM, the packet counts as lost later. */
    if (sl_alloc_fail_at(1, 0)) {
        assert_int_equal(push(rx, 14, 0, 0, 10), SL_ENOMEM);
        sl_alloc_fail_at(0, 0);
        push(rx, 11, 0, 0, 10);
        push(rx, 13, 0, 0, 10);
        push(rx, 15, 0, 0, 10);
        assert_int_equal(s->got[s->n_got - 1], 13);
        sl_rtp_rx_poll(rx, 150, NULL, 0);
        assert_int_equal(s->got[s->n_got - 1], 15);
    }
    sl_rtp_rx_free(rx);
    test_free(s);
}

static void test_rfc_stats(void **state)
{
    (void)state;
    /* A.3: base 1000, 1000..1019 with 1003, 1007, 1011 lost. */
    sink_t *s = new_sink();
    sl_rtp_rx_t *rx = sl_rtp_rx_new(8000, 0, on_packet, on_loss, s); /* no waiting */
    for (int q = 1000; q < 1020; q++)
        if (q != 1003 && q != 1007 && q != 1011)
            push(rx, (uint16_t)q, 0, 0, 20);
    sl_rtcp_report_t rb;
    sl_rtp_rx_report(rx, 7, 0, &rb);
    assert_int_equal(rb.ext_high_seq, 1019);
    assert_int_equal(rb.cum_lost, 3);
    assert_int_equal(rb.fraction_lost, 38); /* 3 * 256 / 20 = 38.4 */
    /* Next interval: 1020..1039 all, plus 1003 arriving late: the interval's
     * loss is negative, so the fraction is 0 and the total drops to 2. */
    for (int q = 1020; q < 1040; q++)
        push(rx, (uint16_t)q, 0, 0, 20);
    push(rx, 1003, 0, 0, 20);
    sl_rtp_rx_report(rx, 7, 0, &rb);
    assert_int_equal(rb.cum_lost, 2);
    assert_int_equal(rb.fraction_lost, 0);
    assert_int_equal(rb.ext_high_seq, 1039);
    /* 10 expected, 5 received: 128/256. */
    for (int q = 1040; q < 1050; q += 2)
        push(rx, (uint16_t)q, 0, 0, 20);
    push(rx, 1050, 0, 0, 20);
    sl_rtp_rx_report(rx, 7, 0, &rb);
    assert_int_equal(rb.fraction_lost, 5 * 256 / 11);
    assert_int_equal(rb.cum_lost, 7);
    assert_int_equal(rb.lsr, 0);
    assert_int_equal(rb.dlsr, 0);
    sl_rtp_rx_free(rx);

    /* A.8 jitter, 8 kHz, 20 ms packets (160 ticks); arrivals 0, 20, 45, 60 ms:
     * transits 0, 0, 40, 0 ticks; J16 = 0, 40, 40 + 40 - 3 = 77; jitter 77 >> 4 = 4
     * (the floating-point form gives 4.84). */
    rx = sl_rtp_rx_new(8000, 150, on_packet, on_loss, s);
    push(rx, 1, 0, 0, 20);
    push(rx, 2, 160, 20, 20);
    push(rx, 3, 320, 45, 20);
    sl_rtp_rx_report(rx, 7, 45, &rb);
    assert_int_equal(rb.jitter, 40 >> 4);
    push(rx, 4, 480, 60, 20);
    sl_rtp_rx_report(rx, 7, 60, &rb);
    assert_int_equal(rb.jitter, 4);
    /* LSR / DLSR and the RTP -> NTP mapping. */
    uint64_t ntp = 0x0000E1234567ABCDULL << 8;
    uint64_t got;
    assert_int_equal(sl_rtp_rx_ts_to_ntp(rx, 0, &got), SL_EAGAIN);
    sl_rtp_rx_on_sr(rx, ntp, 8000, 1000);
    sl_rtp_rx_report(rx, 7, 1500, &rb);
    assert_int_equal(rb.lsr, (uint32_t)(ntp >> 16));
    assert_int_equal(rb.dlsr, 32768); /* 0.5 s in 1/65536 s */
    assert_int_equal(sl_rtp_rx_ts_to_ntp(rx, 16000, &got), 0);
    assert_true(got == ntp + (1ULL << 32));
    assert_int_equal(sl_rtp_rx_ts_to_ntp(rx, 4000, &got), 0);
    assert_true(got == ntp - (1ULL << 31));
    assert_int_equal(sl_rtp_rx_ts_to_ntp(rx, 8000 + 2000, &got), 0);
    assert_true(got == ntp + (1ULL << 30));
    sl_rtp_rx_free(rx);
    test_free(s);
}

/* TWCC: what the parser reads back. */
typedef struct tw_got {
    int calls;
    uint16_t base;
    int32_t ref;
    uint8_t fb;
    int16_t d[64];
    int n;
} tw_got_t;

static void on_twcc(void *ud, uint32_t media, uint16_t base, int32_t ref, uint8_t fb, const int16_t *d, int n)
{
    tw_got_t *g = ud;
    assert_int_equal(media, 0xBEEF);
    g->calls++;
    g->base = base;
    g->ref = ref;
    g->fb = fb;
    g->n = n;
    for (int i = 0; i < n && i < 64; i++)
        g->d[i] = d[i];
}

static void test_twcc_rx(void **state)
{
    (void)state;
    sl_twcc_rx_t *tw = sl_twcc_rx_new(0xF00D, 0xBEEF);
    assert_non_null(tw);
    uint8_t b[256];
    assert_int_equal(sl_twcc_rx_build(tw, b, sizeof b), 0); /* nothing yet */
    /* Arrivals (us): 65534 at 1 000 000 (ref = 15 * 64 ms = 960 000, delta
     * 40 ms = 160), 65535 at +500 us (2), 0 reordered 250 us earlier (-1,
     * large), 1 lost, 2 at 1 100 000 (99.75 ms = 399, large), 3 with it (0). */
    sl_twcc_rx_record(tw, 65534, 1000000);
    sl_twcc_rx_record(tw, 65535, 1000500);
    sl_twcc_rx_record(tw, 0, 1000250);
    sl_twcc_rx_record(tw, 2, 1100000);
    sl_twcc_rx_record(tw, 3, 1100000);
    int n = sl_twcc_rx_build(tw, b, sizeof b);
    assert_true(n > 0);
    sl_rtcp_cb_t cb = {.twcc = on_twcc};
    tw_got_t g = {0};
    assert_int_equal(sl_rtcp_parse(b, (size_t)n, &cb, &g), 0);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.base, 65534);
    assert_int_equal(g.ref, 15);
    assert_int_equal(g.fb, 0);
    static const int16_t want[] = {160, 2, -1, SL_TWCC_NOT_RECEIVED, 399, 0};
    assert_int_equal(g.n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(g.d[i], want[i]);
    assert_int_equal(sl_twcc_rx_build(tw, b, sizeof b), 0); /* all reported */
    /* 1 arriving now is too late; 4 starts the next feedback. */
    sl_twcc_rx_record(tw, 1, 1200000);
    sl_twcc_rx_record(tw, 4, 1200000);
    /* 5 arrives 10 s later: its delta does not fit 16 bits -> its own packet. */
    sl_twcc_rx_record(tw, 5, 11200000);
    n = sl_twcc_rx_build(tw, b, sizeof b);
    memset(&g, 0, sizeof g);
    assert_int_equal(sl_rtcp_parse(b, (size_t)n, &cb, &g), 0);
    assert_int_equal(g.base, 4);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.fb, 1);
    assert_int_equal(g.ref, 1200000 / 64000);
    assert_int_equal(g.d[0], (1200000 - 18 * 64000) / 250);
    n = sl_twcc_rx_build(tw, b, sizeof b);
    memset(&g, 0, sizeof g);
    assert_int_equal(sl_rtcp_parse(b, (size_t)n, &cb, &g), 0);
    assert_int_equal(g.base, 5);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.ref, 11200000 / 64000);
    assert_int_equal(sl_twcc_rx_build(tw, b, sizeof b), 0);
    /* Too small an output buffer: SL_ETOOBIG and nothing is lost. */
    sl_twcc_rx_record(tw, 6, 11300000);
    assert_int_equal(sl_twcc_rx_build(tw, b, 16), SL_ETOOBIG);
    assert_true(sl_twcc_rx_build(tw, b, sizeof b) > 0);
    sl_twcc_rx_free(tw);
}

static void test_tx_history(void **state)
{
    (void)state;
    sl_rtp_tx_t *tx = sl_rtp_tx_new(0x1234, 90000);
    assert_non_null(tx);
    sl_buf_t *keep[637];
    /* 637 packets from 65000 through the wrap to 100; the history holds 512. */
    for (int i = 0; i < 637; i++) {
        uint16_t seq = (uint16_t)(65000 + i);
        uint8_t p[2] = {(uint8_t)(seq >> 8), (uint8_t)seq};
        keep[i] = sl_buf_from(p, 2);
        assert_non_null(keep[i]);
        sl_rtp_tx_sent(tx, seq, (uint32_t)i * 3000, keep[i], 1000, 1000 + (uint64_t)i / 10);
    }
    assert_int_equal(keep[636]->refs, 2);  /* ours + the history's */
    assert_int_equal(keep[0]->refs, 1);    /* replaced: the history let go */
    sl_buf_t *out;
    assert_int_equal(sl_rtp_tx_nack(tx, 65535, 1070, &out), 0);
    assert_ptr_equal(out, keep[535]);
    sl_buf_unref(out);
    assert_int_equal(sl_rtp_tx_nack(tx, 50, 1070, &out), 0);
    assert_ptr_equal(out, keep[586]);
    sl_buf_unref(out);
    assert_int_equal(sl_rtp_tx_nack(tx, 65000, 1070, &out), SL_ENOTFOUND); /* overwritten */
    assert_null(out);
    assert_int_equal(sl_rtp_tx_nack(tx, 101, 1070, &out), SL_ENOTFOUND);  /* never sent */
    /* At most once per RTT (default 100 ms until an RR). */
    assert_int_equal(sl_rtp_tx_nack(tx, 50, 1100, &out), SL_EAGAIN);
    assert_int_equal(sl_rtp_tx_nack(tx, 50, 1170, &out), 0);
    sl_buf_unref(out);
    /* Too old */
    assert_int_equal(sl_rtp_tx_nack(tx, 50, 3000, &out), SL_ENOTFOUND);
    sl_rtp_tx_stats_t st;
    sl_rtp_tx_get_stats(tx, &st);
    assert_int_equal(st.nacks, 7);
    assert_int_equal(st.retransmitted, 3);
    assert_int_equal(st.nack_misses, 3);
    assert_int_equal(st.packets, 637);
    assert_int_equal(st.octets, 637000);

    /* RTT from an RR: the SR left at NTP T, the viewer held it 0.5 s, it
     * is back at T + 0.55 s: RTT 50 ms. */
    uint64_t t = 0xE1234567ULL << 32 | 0x89AB0000u;
    sl_rtcp_report_t rb = {.source = 0x1234, .fraction_lost = 3, .cum_lost = 9, .jitter = 70,
                           .lsr = sl_ntp_mid32(t), .dlsr = 32768};
    sl_rtp_tx_on_rr(tx, &rb, t + (uint64_t)(0.55 * 4294967296.0));
    assert_int_equal(sl_rtp_tx_rtt_ms(tx), 49); /* 0.05 s floored in 1/65536 s steps */
    sl_rtp_tx_get_stats(tx, &st);
    assert_int_equal(st.cum_lost, 9);
    assert_int_equal(st.jitter, 70);
    rb.lsr = 0; /* no SR seen by the viewer: RTT unchanged */
    sl_rtp_tx_on_rr(tx, &rb, t);
    assert_int_equal(sl_rtp_tx_rtt_ms(tx), 49);
    sl_rtp_tx_on_pli(tx);
    sl_rtp_tx_on_fir(tx);
    sl_rtp_tx_get_stats(tx, &st);
    assert_int_equal(st.plis, 1);
    assert_int_equal(st.firs, 1);

    /* SR: the last packet had RTP 636 * 3000 at 1063 ms; at 1563 ms it is +45000. */
    uint8_t b[64];
    int n = sl_rtp_tx_build_sr(tx, b, sizeof b, t, 1563);
    assert_int_equal(n, 28);
    assert_int_equal(b[1], SL_RTCP_SR);
    uint32_t rtp = (uint32_t)b[16] << 24 | (uint32_t)b[17] << 16 | (uint32_t)b[18] << 8 | b[19];
    assert_int_equal(rtp, 636 * 3000 + 45000);
    assert_int_equal(b[23], 637 & 0xFF);
    assert_int_equal(sl_rtp_tx_build_sr(tx, b, 10, t, 1563), SL_ETOOBIG);

    sl_rtp_tx_free(tx);
    assert_int_equal(keep[636]->refs, 1);
    for (int i = 0; i < 637; i++)
        sl_buf_unref(keep[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_and_reorder),
        cmocka_unit_test(test_nack_schedule_then_loss),
        cmocka_unit_test(test_wrap_and_reset),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_rfc_stats),
        cmocka_unit_test(test_twcc_rx),
        cmocka_unit_test(test_tx_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
