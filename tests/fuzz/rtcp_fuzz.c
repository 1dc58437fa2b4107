/*
 * Fuzz target: RTCP compound parsing (every callback set), the TWCC
 * feedback round trip (parse, build, parse again must agree), and the RTP
 * receive buffer and TWCC recorder driven by a packet sequence derived
 * from the same input.
 *
 * Input: the whole input is parsed as RTCP. Then it is read again as
 * 4-byte operations for the receiver: seq step (signed byte, so reorder,
 * duplicates and jumps happen), time step, packet length, and an opcode
 * byte (push / poll / report / SR / a huge jump). Invariants checked:
 * packets come out in increasing 16-bit serial order between resets, and
 * the held packets and bytes never pass the caps.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "media/rtcp.h"
#include "media/rtp_rx.h"

typedef struct fz {
    sl_rtp_rx_t *rx;
    int have_last;
    uint16_t last;
    uint64_t resets;
    int16_t twcc[SL_TWCC_MAX_STATUS];
    int twcc_n;
    int twcc_calls;
} fz_t;

static void f_sr(void *ud, uint32_t ssrc, uint64_t ntp, uint32_t rtp, uint32_t pkts, uint32_t oct)
{
    (void)ud, (void)ssrc, (void)ntp, (void)rtp, (void)pkts, (void)oct;
}
static void f_rb(void *ud, uint32_t reporter, const sl_rtcp_report_t *rb)
{
    (void)ud, (void)reporter;
    if (rb->source == 0xFFFFFFFFu && rb->cum_lost > 0x7FFFFF)
        __builtin_trap(); /* 24-bit field can't exceed this */
}
static void f_nack(void *ud, uint32_t s, uint32_t m, uint16_t seq)
{
    (void)ud, (void)s, (void)m, (void)seq;
}
static void f_pli(void *ud, uint32_t s, uint32_t m)
{
    (void)ud, (void)s, (void)m;
}
static void f_fir(void *ud, uint32_t s, uint32_t m, uint8_t n)
{
    (void)ud, (void)s, (void)m, (void)n;
}
static void f_remb(void *ud, uint32_t s, uint64_t bps, const uint32_t *ssrcs, int n)
{
    (void)ud, (void)s, (void)bps;
    uint32_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += ssrcs[i]; /* every SSRC readable (ASan checks) */
    if (n == 0 && sum)
        __builtin_trap();
}
static void f_twcc(void *ud, uint32_t m, uint16_t base, int32_t ref, uint8_t fb, const int16_t *d, int n)
{
    fz_t *z = ud;
    (void)m, (void)base, (void)ref, (void)fb;
    if (n < 1 || n > SL_TWCC_MAX_STATUS)
        __builtin_trap();
    memcpy(z->twcc, d, (size_t)n * sizeof(*d));
    z->twcc_n = n;
    z->twcc_calls++;
}
static void f_bye(void *ud, uint32_t ssrc)
{
    (void)ud, (void)ssrc;
}

static const sl_rtcp_cb_t CB = {
    .sr = f_sr, .rr_block = f_rb, .nack = f_nack, .pli = f_pli, .fir = f_fir,
    .remb = f_remb, .twcc = f_twcc, .bye = f_bye,
};

/* Parses a TWCC feedback again after rebuilding it: the statuses and deltas must survive. */
static void twcc_roundtrip(fz_t *z)
{
    static int16_t first[SL_TWCC_MAX_STATUS];
    static uint8_t out[20 + 2 * SL_TWCC_MAX_STATUS + 2 * SL_TWCC_MAX_STATUS + 4];
    int n = z->twcc_n;
    memcpy(first, z->twcc, (size_t)n * sizeof(*first));
    int len = sl_rtcp_build_twcc(out, sizeof out, 1, 2, 3, 4, 5, first, n);
    if (len < 0)
        __builtin_trap(); /* the buffer is big enough for any n */
    sl_rtcp_cb_t cb = {.twcc = f_twcc};
    z->twcc_calls = 0;
    if (sl_rtcp_parse(out, (size_t)len, &cb, z) != 0 || z->twcc_calls != 1 || z->twcc_n != n ||
        memcmp(first, z->twcc, (size_t)n * sizeof(*first)) != 0)
        __builtin_trap();
}

static void on_packet(void *ud, const uint8_t *p, size_t len)
{
    fz_t *z = ud;
    (void)p;
    if (len < 2)
        __builtin_trap();
    uint16_t seq = (uint16_t)(p[0] << 8 | p[1]);
    sl_rtp_rx_stats_t st;
    sl_rtp_rx_get_stats(z->rx, &st);
    if (z->have_last && st.resets == z->resets && (int16_t)(uint16_t)(seq - z->last) <= 0)
        __builtin_trap(); /* out of order or repeated */
    z->have_last = 1;
    z->last = seq;
    z->resets = st.resets;
}

static void on_loss(void *ud, uint16_t first, uint16_t count)
{
    (void)ud, (void)first;
    if (count == 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fz_t z;
    memset(&z, 0, sizeof z);
    sl_rtcp_parse(data, size, &CB, &z);
    if (z.twcc_calls)
        twcc_roundtrip(&z);
    sl_rtcp_parse(data, size, NULL, NULL);
    sl_rtcp_is_rtcp(data, size);

    z.rx = sl_rtp_rx_new(90000, 120, on_packet, on_loss, &z);
    sl_twcc_rx_t *tw = sl_twcc_rx_new(1, 2);
    if (!z.rx || !tw)
        goto done;
    sl_rtp_rx_set_limits(z.rx, 64, 16384);
    uint16_t seq = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
    uint64_t now = 1000;
    uint8_t pkt[1024];
    uint8_t fb[2048];
    uint16_t nacks[32];
    for (size_t i = 0; i + 4 <= size; i += 4) {
        const uint8_t *op = data + i;
        seq = (uint16_t)(seq + (int8_t)op[0]);
        now += op[1] & 0x3F;
        size_t len = 2 + (size_t)op[2] * 4;
        pkt[0] = (uint8_t)(seq >> 8);
        pkt[1] = (uint8_t)seq;
        memset(pkt + 2, op[3], len - 2);
        switch (op[3] & 7) {
        case 5:
            sl_rtp_rx_poll(z.rx, now, nacks, 32);
            break;
        case 6: {
            sl_rtcp_report_t rb;
            sl_rtp_rx_report(z.rx, 9, now, &rb);
            sl_rtp_rx_on_sr(z.rx, (uint64_t)now << 32, seq * 3000u, now);
            uint64_t ntp;
            sl_rtp_rx_ts_to_ntp(z.rx, seq, &ntp);
            int n = sl_twcc_rx_build(tw, fb, sizeof fb);
            if (n > 0 && sl_rtcp_parse(fb, (size_t)n, NULL, NULL) != 0)
                __builtin_trap(); /* our own feedback must parse */
            break;
        }
        case 7:
            seq = (uint16_t)(seq + 20000); /* a restarted sender */
            /* fall through */
        default:
            sl_rtp_rx_push(z.rx, seq, seq * 3000u, now, pkt, len);
            sl_twcc_rx_record(tw, seq, now * 1000 + op[1]);
            break;
        }
        sl_rtp_rx_stats_t st;
        sl_rtp_rx_get_stats(z.rx, &st);
        if (st.held_pkts > 64 || st.held_bytes > 16384)
            __builtin_trap();
    }
    sl_rtp_rx_poll(z.rx, now + 1000, nacks, 32);
done:
    sl_rtp_rx_free(z.rx);
    sl_twcc_rx_free(tw);
    return 0;
}
