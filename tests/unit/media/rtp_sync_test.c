/*
 * media/rtp_sync.c: arrival anchoring before sender reports, the switch
 * to the SR mapping (lip sync of a track delayed on the way, the early
 * track stepping forward, never a step back), following later SRs by
 * slewing (clock drift, both signs), SRs ignored (NTP 0, a step beyond the
 * cap), the skew refusal, single-track senders, reordered packets, RTP
 * timestamp wrap and argument errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "media/rtp_sync.h"
#include "sluice/errors.h"

#define NTP_BASE_MS 3900000000000ull /* a sender wall clock in 2023, in ms */

/* The NTP 64-bit fixed point time of sender time ms (since the NTP epoch). */
static uint64_t ntp_of_ms(uint64_t ms)
{
    /* rounded up, so that converting back to microseconds gives ms * 1000 exactly */
    return ((ms / 1000) << 32) | ((((ms % 1000) << 32) + 999) / 1000);
}

/* A sender whose video (90 kHz) and audio (48 kHz) start together at its
 * wall time NTP_BASE_MS with these RTP timestamp origins. */
#define V0 1000000u
#define A0 7000u

static uint32_t vts(int64_t media_ms) { return V0 + (uint32_t)(media_ms * 90); }
static uint32_t ats(int64_t media_ms) { return A0 + (uint32_t)(media_ms * 48); }

static void setup2(sl_rtp_sync_t *s, int *v, int *a)
{
    sl_rtp_sync_init(s);
    *v = sl_rtp_sync_add_track(s, 90000);
    *a = sl_rtp_sync_add_track(s, 48000);
    assert_int_equal(*v, 0);
    assert_int_equal(*a, 1);
}

static void test_args(void **state)
{
    (void)state;
    sl_rtp_sync_t s;
    sl_rtp_sync_init(&s);
    assert_int_equal(sl_rtp_sync_add_track(&s, 0), SL_EINVAL);
    assert_int_equal(sl_rtp_sync_add_track(&s, 90000), 0);
    assert_int_equal(sl_rtp_sync_add_track(&s, 48000), 1);
    assert_int_equal(sl_rtp_sync_add_track(&s, 8000), SL_ETOOBIG);
    assert_int_equal(sl_rtp_sync_dts(&s, 5, 0, 0), 0);
    assert_int_equal(sl_rtp_sync_dts(&s, -1, 0, 0), 0);
    sl_rtp_sync_on_sr(&s, 7, 1, 1);
    assert_int_equal(sl_rtp_sync_take_jump(&s, 9), 0);
    assert_string_equal(sl_rtp_sync_mode_name(&s), "arrival");
}

/* Without SRs each track starts at its own arrival and runs on its RTP clock. */
static void test_arrival(void **state)
{
    (void)state;
    sl_rtp_sync_t s;
    int v, a;
    setup2(&s, &v, &a);
    assert_int_equal(sl_rtp_sync_dts(&s, v, vts(0), 5000), 0);
    assert_int_equal(sl_rtp_sync_dts(&s, v, vts(40), 5040), 40);
    /* audio captured at the same time arrives 300 ms later */
    assert_int_equal(sl_rtp_sync_dts(&s, a, ats(0), 5300), 300);
    assert_int_equal(sl_rtp_sync_dts(&s, a, ats(20), 5320), 320);
    /* the RTP clock rules, not arrival jitter */
    assert_int_equal(sl_rtp_sync_dts(&s, v, vts(80), 5200), 80);
    assert_int_equal(s.mode, SL_RTP_SYNC_ARRIVAL);
}

/*
 * The lip sync case: audio 300 ms late on the way. After both SRs, samples
 * captured together get the same dts; the video (early) track steps forward
 * by the 300 ms, audio does not move, neither goes back.
 */
static void test_switch_aligns(void **state)
{
    (void)state;
    sl_rtp_sync_t s;
    int v, a;
    setup2(&s, &v, &a);
    int64_t last_v = -1, last_a = -1;
    /* 1 s of media: video every 40 ms arriving at capture, audio every 20 ms at +300 */
    for (int64_t m = 0; m <= 1000; m += 20) {
        if (m % 40 == 0) {
            int64_t d = sl_rtp_sync_dts(&s, v, vts(m), 10000 + (uint64_t)m);
            assert_true(d >= last_v);
            last_v = d;
        }
        if (m >= 300) {
            int64_t d = sl_rtp_sync_dts(&s, a, ats(m - 300), 10000 + (uint64_t)m);
            assert_true(d >= last_a);
            last_a = d;
        }
    }
    /* arrival anchoring: audio 300 ms behind for the same capture time */
    assert_int_equal(last_v, 1000);
    assert_int_equal(last_a, 1000); /* audio captured at 700 */
    /* the SRs: each maps a timestamp to the sender's clock (capture time) */
    sl_rtp_sync_on_sr(&s, v, ntp_of_ms(NTP_BASE_MS + 1000), vts(1000));
    assert_int_equal(s.mode, SL_RTP_SYNC_ARRIVAL); /* audio has none yet */
    sl_rtp_sync_on_sr(&s, a, ntp_of_ms(NTP_BASE_MS + 1000), ats(1000));
    assert_int_equal(s.mode, SL_RTP_SYNC_SR);
    assert_string_equal(sl_rtp_sync_mode_name(&s), "sender_report");
    assert_in_range(s.skew_us, 299000, 301000);
    assert_in_range(sl_rtp_sync_take_jump(&s, v), 299, 301);
    assert_int_equal(sl_rtp_sync_take_jump(&s, v), 0); /* taken once */
    assert_int_equal(sl_rtp_sync_take_jump(&s, a), 0);
    /* from now on equal capture times give equal dts, and nothing goes back */
    int64_t v_at[3001], a_at[3001];
    for (int64_t m = 1020; m <= 3000; m += 20) {
        if (m % 40 == 0) {
            int64_t d = sl_rtp_sync_dts(&s, v, vts(m), 10000 + (uint64_t)m);
            assert_true(d >= last_v);
            last_v = v_at[m] = d;
        }
        int64_t d = sl_rtp_sync_dts(&s, a, ats(m - 300), 10000 + (uint64_t)m);
        assert_true(d >= last_a);
        last_a = a_at[m - 300] = d;
    }
    for (int64_t m = 1040; m <= 2700; m += 40)
        assert_int_equal(v_at[m], a_at[m]);
    /* the video timeline now includes the 300 ms the audio needed */
    assert_int_equal(v_at[3000], 3300);
    assert_int_equal(a_at[2700], 3000);
}

/* Video is the late track: audio steps forward, and the step is reported. */
static void test_switch_audio_steps(void **state)
{
    (void)state;
    sl_rtp_sync_t s;
    int v, a;
    setup2(&s, &v, &a);
    assert_int_equal(sl_rtp_sync_dts(&s, a, ats(0), 100), 0);
    assert_int_equal(sl_rtp_sync_dts(&s, v, vts(0), 250), 150);
    sl_rtp_sync_on_sr(&s, a, ntp_of_ms(NTP_BASE_MS), ats(0));
    sl_rtp_sync_on_sr(&s, v, ntp_of_ms(NTP_BASE_MS), vts(0));
    assert_int_equal(s.mode, SL_RTP_SYNC_SR);
    assert_int_equal(sl_rtp_sync_take_jump(&s, a), 150);
    assert_int_equal(sl_rtp_sync_take_jump(&s, v), 0);
    assert_int_equal(sl_rtp_sync_dts(&s, a, ats(20), 400), 170);
    assert_int_equal(sl_rtp_sync_dts(&s, v, vts(20), 400), 170);
}

/* A later SR moving the mapping is slewed in at 10% of media time, both ways. */
static void slew(int64_t shift_ms)
{
    sl_rtp_sync_t s;
    sl_rtp_sync_init(&s);
    int a = sl_rtp_sync_add_track(&s, 48000);
    assert_int_equal(sl_rtp_sync_dts(&s, a, ats(0), 0), 0);
    sl_rtp_sync_on_sr(&s, a, ntp_of_ms(NTP_BASE_MS), ats(0));
    assert_int_equal(s.mode, SL_RTP_SYNC_SR);
    assert_int_equal(sl_rtp_sync_take_jump(&s, a), 0); /* one track: no step */
    int64_t last = 0;
    for (int64_t m = 20; m <= 1000; m += 20) {
        int64_t d = sl_rtp_sync_dts(&s, a, ats(m), (uint64_t)m);
        assert_int_equal(d, m);
        last = d;
    }
    /* the sender's clock says timestamp 1000 was in fact at 1000 + shift */
    sl_rtp_sync_on_sr(&s, a, ntp_of_ms(NTP_BASE_MS + 1000 + (uint64_t)shift_ms), ats(1000));
    int64_t t_done = -1;
    for (int64_t m = 1020; m <= 3000; m += 20) {
        int64_t d = sl_rtp_sync_dts(&s, a, ats(m), (uint64_t)m);
        int64_t step = d - last;
        /* 20 ms of media moves dts by 18..22 ms (+-1 for rounding to ms) */
        assert_in_range(step, 17, 23);
        last = d;
        if (t_done < 0 && d == m + shift_ms)
            t_done = m;
    }
    /* fully applied after |shift| / 10% of media time */
    int64_t need = (shift_ms < 0 ? -shift_ms : shift_ms) * 10;
    assert_true(t_done > 0);
    assert_in_range(t_done, 1000 + need - 40, 1000 + need + 40);
    assert_int_equal(last, 3000 + shift_ms);
}

static void test_slew_forward(void **state)
{
    (void)state;
    slew(50);
}

static void test_slew_backward(void **state)
{
    (void)state;
    slew(-50);
}

/* SRs with NTP 0, or moving a track by more than the cap, change nothing. */
static void test_ignored_srs(void **state)
{
    (void)state;
    sl_rtp_sync_t s;
    sl_rtp_sync_init(&s);
    int v = sl_rtp_sync_add_track(&s, 90000);
    sl_rtp_sync_on_sr(&s, v, 0, 0); /* aiortc before its first packet */
    assert_int_equal(s.t[v].srs_ignored, 1);
    assert_int_equal(s.t[v].have_sr, 0);
    assert_int_equal(sl_rtp_sync_dts(&s, v, vts(0), 0), 0);
    assert_int_equal(s.mode, SL_RTP_SYNC_ARRIVAL);
    sl_rtp_sync_on_sr(&s, v, ntp_of_ms(NTP_BASE_MS), vts(0));
    assert_int_equal(s.mode, SL_RTP_SYNC_SR);
    assert_int_equal(sl_rtp_sync_dts(&s, v, vts(40), 40), 40);
    sl_rtp_sync_on_sr(&s, v, ntp_of_ms(NTP_BASE_MS + 5040), vts(40)); /* a 5 s step */
    assert_int_equal(s.t[v].srs_ignored, 1 + 1);
    for (int64_t m = 80; m <= 2000; m += 40)
        assert_int_equal(sl_rtp_sync_dts(&s, v, vts(m), (uint64_t)m), m);
}

/* Tracks whose SRs disagree with their arrival by more than the cap stay on arrival. */
static void test_skew_refused(void **state)
{
    (void)state;
    sl_rtp_sync_t s;
    int v, a;
    setup2(&s, &v, &a);
    assert_int_equal(sl_rtp_sync_dts(&s, v, vts(0), 0), 0);
    assert_int_equal(sl_rtp_sync_dts(&s, a, ats(0), 10), 10);
    sl_rtp_sync_on_sr(&s, v, ntp_of_ms(NTP_BASE_MS), vts(0));
    sl_rtp_sync_on_sr(&s, a, ntp_of_ms(NTP_BASE_MS + 10000), ats(0)); /* another clock */
    assert_int_equal(s.mode, SL_RTP_SYNC_ARRIVAL);
    assert_int_equal(s.refused, 1);
    assert_int_equal(sl_rtp_sync_dts(&s, a, ats(20), 30), 30);
}

/* A track that never starts keeps the sender on arrival anchoring. */
static void test_missing_track(void **state)
{
    (void)state;
    sl_rtp_sync_t s;
    int v, a;
    setup2(&s, &v, &a);
    (void)a;
    assert_int_equal(sl_rtp_sync_dts(&s, v, vts(0), 0), 0);
    sl_rtp_sync_on_sr(&s, v, ntp_of_ms(NTP_BASE_MS), vts(0));
    sl_rtp_sync_on_sr(&s, a, ntp_of_ms(NTP_BASE_MS), ats(0));
    assert_int_equal(s.mode, SL_RTP_SYNC_ARRIVAL);
    /* it starts later: the switch happens at its first packet, aligned */
    assert_int_equal(sl_rtp_sync_dts(&s, v, vts(400), 400), 400);
    sl_rtp_sync_dts(&s, a, ats(400), 700); /* 300 ms late */
    assert_int_equal(s.mode, SL_RTP_SYNC_SR);
    assert_int_equal(sl_rtp_sync_take_jump(&s, v), 300);
    assert_int_equal(sl_rtp_sync_dts(&s, v, vts(440), 740), 740);
    assert_int_equal(sl_rtp_sync_dts(&s, a, ats(440), 740), 740);
}

/* A reordered (older) packet gets the track's last dts, never less. */
static void test_reorder_monotonic(void **state)
{
    (void)state;
    sl_rtp_sync_t s;
    sl_rtp_sync_init(&s);
    int a = sl_rtp_sync_add_track(&s, 48000);
    assert_int_equal(sl_rtp_sync_dts(&s, a, ats(0), 0), 0);
    assert_int_equal(sl_rtp_sync_dts(&s, a, ats(40), 40), 40);
    assert_int_equal(sl_rtp_sync_dts(&s, a, ats(20), 41), 40);
    assert_int_equal(sl_rtp_sync_dts(&s, a, ats(60), 60), 60);
}

/* RTP timestamps wrap at 2^32 and run for hours without drifting. */
static void test_wrap_and_long_run(void **state)
{
    (void)state;
    sl_rtp_sync_t s;
    sl_rtp_sync_init(&s);
    int v = sl_rtp_sync_add_track(&s, 90000);
    uint32_t ts = 0xFFFF0000u;
    assert_int_equal(sl_rtp_sync_dts(&s, v, ts, 0), 0);
    sl_rtp_sync_on_sr(&s, v, ntp_of_ms(NTP_BASE_MS), ts);
    /* 10 hours at 25 fps (3600 ticks a frame): past two int32 rebases and a wrap */
    int64_t last = 0;
    for (int64_t f = 1; f <= 10LL * 3600 * 25; f++) {
        ts += 3600;
        int64_t d = sl_rtp_sync_dts(&s, v, ts, (uint64_t)(f * 40));
        assert_true(d >= last);
        last = d;
    }
    assert_int_equal(last, 10LL * 3600 * 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_arrival),
        cmocka_unit_test(test_switch_aligns),
        cmocka_unit_test(test_switch_audio_steps),
        cmocka_unit_test(test_slew_forward),
        cmocka_unit_test(test_slew_backward),
        cmocka_unit_test(test_ignored_srs),
        cmocka_unit_test(test_skew_refused),
        cmocka_unit_test(test_missing_track),
        cmocka_unit_test(test_reorder_monotonic),
        cmocka_unit_test(test_wrap_and_long_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
