/*
 * media/cc.c on synthetic time: the loss-based controller's three regimes
 * (8 %/s growth under 2 % loss, hold between 2 and 10 %, (1 - loss/2)
 * decrease above 10 % at most once per 300 ms + RTT), REMB as a ceiling,
 * the clamp, and the bound that keeps the loss-based estimate within
 * 1.5 x REMB so that it cannot run away while REMB binds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "media/cc.h"

static void test_start_and_clamp(void **state)
{
    (void)state;
    sl_cc_t cc;
    sl_cc_init(&cc, 100000, 2000000, 10000000);
    assert_int_equal(sl_cc_estimate(&cc), 2000000);
    sl_cc_init(&cc, 100000, 50000, 10000000);
    assert_int_equal(sl_cc_estimate(&cc), 100000);
    sl_cc_init(&cc, 100000, 50000000, 10000000);
    assert_int_equal(sl_cc_estimate(&cc), 10000000);
    sl_cc_init(&cc, 500000, 1000000, 100); /* max below min: min wins */
    assert_int_equal(sl_cc_estimate(&cc), 500000);
}

static void test_low_loss_grows_8_percent_per_second(void **state)
{
    (void)state;
    sl_cc_t cc;
    sl_cc_init(&cc, 10000, 1000000, 100000000);
    uint64_t t = 1000;
    sl_cc_on_loss(&cc, 0, 0, t); /* the first report only starts the clock */
    assert_int_equal(sl_cc_estimate(&cc), 1000000);
    for (int i = 0; i < 10; i++) {
        t += 1000;
        sl_cc_on_loss(&cc, 2, 0, t); /* 0.8 % */
    }
    /* 1.08^10 = 2.159; plus 1 kbit/s per second compounded. */
    uint64_t e = sl_cc_estimate(&cc);
    assert_true(e > 2150000 && e < 2190000);
    /* A report after a long silence counts at most one second. */
    t += 60000;
    sl_cc_on_loss(&cc, 0, 0, t);
    assert_true(sl_cc_estimate(&cc) < e * 109 / 100);
}

static void test_moderate_loss_holds(void **state)
{
    (void)state;
    sl_cc_t cc;
    sl_cc_init(&cc, 10000, 1000000, 100000000);
    for (uint64_t t = 0; t < 10000; t += 500)
        sl_cc_on_loss(&cc, 13, 0, t); /* 5 % */
    assert_int_equal(sl_cc_estimate(&cc), 1000000);
}

static void test_high_loss_decreases_once_per_hold(void **state)
{
    (void)state;
    sl_cc_t cc;
    sl_cc_init(&cc, 10000, 1000000, 100000000);
    sl_cc_on_loss(&cc, 64, 100, 1000); /* 25 %: x (1 - 0.125) */
    assert_int_equal(sl_cc_estimate(&cc), 875000);
    sl_cc_on_loss(&cc, 64, 100, 1200); /* within 300 ms + RTT (100): held */
    assert_int_equal(sl_cc_estimate(&cc), 875000);
    sl_cc_on_loss(&cc, 64, 100, 1400); /* 400 ms later: again */
    assert_int_equal(sl_cc_estimate(&cc), 765625);
    /* Sustained heavy loss drives it to the floor, not below. */
    for (uint64_t t = 2000; t < 60000; t += 500)
        sl_cc_on_loss(&cc, 200, 0, t);
    assert_int_equal(sl_cc_estimate(&cc), 10000);
}

static void test_remb_is_a_ceiling(void **state)
{
    (void)state;
    sl_cc_t cc;
    sl_cc_init(&cc, 10000, 2000000, 100000000);
    sl_cc_on_remb(&cc, 500000, 100);
    assert_int_equal(sl_cc_estimate(&cc), 500000);
    assert_int_equal(cc.n_remb, 1);
    /* Low loss cannot push the estimate over REMB, and the loss-based
     * value itself stays within 1.5 x REMB. */
    for (uint64_t t = 0; t <= 30000; t += 1000)
        sl_cc_on_loss(&cc, 0, 0, t);
    assert_int_equal(sl_cc_estimate(&cc), 500000);
    assert_true(cc.loss_bps <= 750000.0 + 1);
    /* REMB rises: the estimate follows up to the loss-based value. */
    sl_cc_on_remb(&cc, 5000000, 31000);
    assert_true(sl_cc_estimate(&cc) >= 740000 && sl_cc_estimate(&cc) <= 750000);
    /* A REMB of 0 is the floor, not "no REMB". */
    sl_cc_on_remb(&cc, 0, 32000);
    assert_int_equal(sl_cc_estimate(&cc), 10000);
}

static void test_delay_ceiling(void **state)
{
    (void)state;
    sl_cc_t cc;
    sl_cc_init(&cc, 10000, 2000000, 100000000);
    sl_cc_on_delay_estimate(&cc, 300000);
    assert_int_equal(sl_cc_estimate(&cc), 300000);
    sl_cc_on_remb(&cc, 200000, 0);
    assert_int_equal(sl_cc_estimate(&cc), 200000);
    sl_cc_on_delay_estimate(&cc, 0);
    assert_int_equal(sl_cc_estimate(&cc), 200000);
}

static void test_delivered_floor(void **state)
{
    (void)state;
    sl_cc_t cc;
    sl_cc_init(&cc, 10000, 2000000, 100000000);
    sl_cc_on_remb(&cc, 1000000, 0); /* a receiver's underestimate */
    assert_int_equal(sl_cc_estimate(&cc), 1000000);
    sl_cc_on_delivered(&cc, 1600000); /* it took 1.6 Mbit/s with low loss */
    assert_int_equal(sl_cc_estimate(&cc), 1600000);
    sl_cc_on_delivered(&cc, 0); /* loss: the floor goes */
    assert_int_equal(sl_cc_estimate(&cc), 1000000);
    sl_cc_on_delivered(&cc, 500000000); /* still clamped */
    assert_int_equal(sl_cc_estimate(&cc), 100000000);
}

/* The 400 kbit/s path of tests/e2e/test_webrtc_pacing.py in numbers: a
 * sender whose loss is 1 - 400k / (2.5 x estimate) settles under 400k. */
static void test_converges_below_a_bottleneck(void **state)
{
    (void)state;
    sl_cc_t cc;
    sl_cc_init(&cc, 50000, 2000000, 50000000);
    for (uint64_t t = 0; t < 120000; t += 1000) {
        double sent = 2.5 * (double)sl_cc_estimate(&cc);
        if (sent > 1500000)
            sent = 1500000; /* the stream's own rate */
        double loss = sent > 400000 ? 1.0 - 400000 / sent : 0;
        sl_cc_on_loss(&cc, (uint8_t)(loss * 255), 20, t);
    }
    uint64_t e = sl_cc_estimate(&cc);
    assert_true(e < 400000);
    assert_true(e > 100000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_and_clamp),
        cmocka_unit_test(test_low_loss_grows_8_percent_per_second),
        cmocka_unit_test(test_moderate_loss_holds),
        cmocka_unit_test(test_high_loss_decreases_once_per_hold),
        cmocka_unit_test(test_remb_is_a_ceiling),
        cmocka_unit_test(test_delay_ceiling),
        cmocka_unit_test(test_delivered_floor),
        cmocka_unit_test(test_converges_below_a_bottleneck),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
