/*
 * Hub tests: publish/name collision, GOP cache and late join (a newcomer
 * starts on the last keyframe with configs and metadata first), player
 * before publisher, unpublish/republish notifications, stream lifetime,
 * and the subscriber queue's drop policy (drop to the next keyframe,
 * configs survive, lag leads to SL_ESLOW).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "media/stream.h"
#include "media/subq.h"
#include "sluice/errors.h"

typedef struct {
    sl_sink_t sink;
    sl_frame_t *got[64];
    int n;
    int publishes, unpublishes;
} rec_t;

static void rec_frame(sl_sink_t *s, sl_frame_t *f)
{
    rec_t *r = s->ctx;
    assert_true(r->n < 64);
    r->got[r->n++] = sl_frame_ref(f);
}
static void rec_pub(sl_sink_t *s) { ((rec_t *)s->ctx)->publishes++; }
static void rec_unpub(sl_sink_t *s) { ((rec_t *)s->ctx)->unpublishes++; }
static const sl_sink_ops_t rec_ops = {rec_frame, rec_pub, rec_unpub};

static void rec_init(rec_t *r)
{
    memset(r, 0, sizeof(*r));
    r->sink.ops = &rec_ops;
    r->sink.ctx = r;
    sl_list_init(&r->sink.link);
}

static void rec_clear(rec_t *r)
{
    for (int i = 0; i < r->n; i++)
        sl_frame_unref(r->got[i]);
    r->n = 0;
}

/* Frames: kind 'V' keyframe, 'v' inter, 'A' audio, 'C' video config, 'a' audio config, 'M' meta. */
static sl_frame_t *mk(char what, uint32_t dts, size_t size)
{
    sl_buf_t *b = sl_buf_new(size < 8 ? 8 : size);
    b->len = (uint32_t)(size < 8 ? 8 : size);
    memset(b->data, 0, b->len);
    uint8_t kind = SL_FLV_VIDEO;
    switch (what) {
    case 'V': b->data[0] = 0x17; b->data[1] = 1; break;
    case 'v': b->data[0] = 0x27; b->data[1] = 1; break;
    case 'C': b->data[0] = 0x17; b->data[1] = 0; break;
    case 'A': kind = SL_FLV_AUDIO; b->data[0] = 0xAF; b->data[1] = 1; break;
    case 'a': kind = SL_FLV_AUDIO; b->data[0] = 0xAF; b->data[1] = 0; break;
    case 'M': kind = SL_FLV_DATA; break;
    }
    sl_frame_t *f;
    assert_int_equal(sl_frame_new(kind, dts, b, &f), 0);
    if (what == 'M')
        f->flags |= SL_FRAME_META;
    return f;
}

static void push(sl_stream_t *st, char what, uint32_t dts)
{
    sl_frame_t *f = mk(what, dts, 100);
    sl_stream_push(st, f);
    sl_frame_unref(f);
}

static void test_gop_late_join(void **state)
{
    (void)state;
    sl_hub_t *hub = sl_hub_new(1 << 20);
    sl_stream_t *st;
    int pub_token;
    assert_int_equal(sl_hub_publish(hub, "live/s", &pub_token, &st), 0);
    assert_int_equal(sl_hub_publish(hub, "live/s", hub, &st), SL_EBUSY);
    sl_stream_t *st2;
    assert_int_equal(sl_hub_publish(hub, "live/s", &pub_token + 1, &st2), SL_EBUSY);
    st = sl_hub_find(hub, "live/s");
    push(st, 'M', 0);
    push(st, 'C', 0);
    push(st, 'a', 0);
    push(st, 'V', 0);
    push(st, 'A', 10);
    push(st, 'v', 40);
    push(st, 'V', 2000);  /* new GOP starts here */
    push(st, 'A', 2010);
    push(st, 'v', 2040);

    rec_t r;
    rec_init(&r);
    assert_int_equal(sl_hub_add_sink(hub, "live/s", &r.sink), 0);
    assert_int_equal(r.publishes, 1);
    /* meta, video config, audio config, then the GOP from the last keyframe */
    assert_int_equal(r.n, 6);
    assert_true(r.got[0]->flags & SL_FRAME_META);
    assert_true(r.got[1]->flags & SL_FRAME_CONFIG && r.got[1]->kind == SL_FLV_VIDEO);
    assert_true(r.got[2]->flags & SL_FRAME_CONFIG && r.got[2]->kind == SL_FLV_AUDIO);
    assert_true(r.got[3]->flags & SL_FRAME_KEY);
    assert_int_equal(r.got[3]->dts_ms, 2000);
    assert_int_equal(r.got[5]->dts_ms, 2040);
    rec_clear(&r);

    push(st, 'v', 2080);
    assert_int_equal(r.n, 1);
    assert_int_equal(st->stats.keyframes, 2);
    assert_int_equal(st->stats.key_interval_ms, 2000);
    rec_clear(&r);

    sl_stream_unpublish(st);
    assert_int_equal(r.unpublishes, 1);
    assert_non_null(sl_hub_find(hub, "live/s")); /* a sink keeps it */
    sl_stream_remove_sink(&r.sink);
    assert_null(sl_hub_find(hub, "live/s"));
    assert_int_equal(sl_hub_count(hub), 0);
    sl_hub_free(hub);
}

static void test_player_first_and_republish(void **state)
{
    (void)state;
    sl_hub_t *hub = sl_hub_new(1 << 20);
    rec_t r;
    rec_init(&r);
    assert_int_equal(sl_hub_add_sink(hub, "live/room1/s", &r.sink), 0);
    assert_int_equal(r.publishes, 0);
    assert_int_equal(r.n, 0);
    sl_stream_t *st;
    int token;
    assert_int_equal(sl_hub_publish(hub, "live/room1/s", &token, &st), 0);
    assert_int_equal(r.publishes, 1);
    push(st, 'V', 0);
    assert_int_equal(r.n, 1);
    sl_stream_unpublish(st);
    assert_int_equal(r.unpublishes, 1);
    assert_int_equal(sl_hub_publish(hub, "live/room1/s", &token, &st), 0);
    assert_int_equal(r.publishes, 2);
    push(st, 'V', 0);
    assert_int_equal(r.n, 2);
    rec_clear(&r);
    sl_stream_remove_sink(&r.sink);
    assert_non_null(sl_hub_find(hub, "live/room1/s")); /* the publisher keeps it */
    sl_stream_unpublish(st);
    assert_int_equal(sl_hub_count(hub), 0);
    sl_hub_free(hub);
}

static void test_gop_bound(void **state)
{
    (void)state;
    sl_hub_t *hub = sl_hub_new(1000); /* ten 100-byte frames */
    sl_stream_t *st;
    int token;
    assert_int_equal(sl_hub_publish(hub, "live/s", &token, &st), 0);
    push(st, 'V', 0);
    for (uint32_t i = 1; i < 20; i++)
        push(st, 'v', i * 40);
    rec_t r;
    rec_init(&r);
    sl_hub_add_sink(hub, "live/s", &r.sink);
    assert_int_equal(r.n, 0); /* the GOP outgrew the cache: wait for the next keyframe */
    push(st, 'V', 1000);
    assert_int_equal(r.n, 1);
    rec_clear(&r);
    sl_stream_remove_sink(&r.sink);
    sl_stream_unpublish(st);
    sl_hub_free(hub);
}

/* A timeline step: frames cached before it are never replayed, and what
 * comes after it is cached only from the next keyframe on. */
static void test_gop_restart(void **state)
{
    (void)state;
    sl_hub_t *hub = sl_hub_new(1 << 20);
    sl_stream_t *st;
    int token;
    assert_int_equal(sl_hub_publish(hub, "live/s", &token, &st), 0);
    push(st, 'C', 0);
    push(st, 'V', 0);
    push(st, 'A', 10);
    push(st, 'v', 40);
    sl_stream_gop_restart(st);
    push(st, 'A', 20);  /* after the step, before a keyframe: not cached */
    push(st, 'v', 380);
    rec_t r;
    rec_init(&r);
    assert_int_equal(sl_hub_add_sink(hub, "live/s", &r.sink), 0);
    assert_int_equal(r.n, 1); /* the video config only */
    assert_true(r.got[0]->flags & SL_FRAME_CONFIG);
    rec_clear(&r);
    sl_stream_remove_sink(&r.sink);
    push(st, 'V', 400);
    push(st, 'A', 30);
    rec_init(&r);
    assert_int_equal(sl_hub_add_sink(hub, "live/s", &r.sink), 0);
    assert_int_equal(r.n, 3); /* config, then the new GOP */
    assert_true(r.got[1]->flags & SL_FRAME_KEY);
    assert_int_equal(r.got[1]->dts_ms, 400);
    assert_int_equal(r.got[2]->dts_ms, 30);
    rec_clear(&r);
    sl_stream_remove_sink(&r.sink);
    sl_stream_unpublish(st);
    sl_hub_free(hub);
}

static void test_subq_drop_policy(void **state)
{
    (void)state;
    sl_subq_t q;
    assert_int_equal(sl_subq_init(&q, 1000, 0, 5000), 0);
    sl_frame_t *cfg = mk('C', 0, 100);
    sl_frame_t *key = mk('V', 0, 300);
    assert_int_equal(sl_subq_push(&q, cfg, 0, 1), 0);
    assert_int_equal(sl_subq_push(&q, key, 0, 1), 0);
    for (uint32_t i = 1; i <= 6; i++) {
        sl_frame_t *f = mk('v', i * 40, 100);
        assert_int_equal(sl_subq_push(&q, f, i, 2), 0);
        sl_frame_unref(f);
    }
    assert_int_equal(q.bytes, 1000);
    /* One more byte than the bound: everything but the config goes, and
     * inter frames are skipped until a keyframe. */
    sl_frame_t *f = mk('v', 280, 100);
    assert_int_equal(sl_subq_push(&q, f, 7, 3), 1);
    sl_frame_unref(f);
    assert_int_equal(q.count, 1);
    assert_ptr_equal(sl_subq_peek(&q), cfg);
    assert_int_equal(q.frames_dropped, 8);
    assert_int_equal(q.drop_events, 1);
    f = mk('A', 300, 10);
    assert_int_equal(sl_subq_push(&q, f, 8, 4), 1); /* audio waits for the video keyframe too */
    sl_frame_unref(f);
    sl_frame_t *key2 = mk('V', 2000, 100);
    assert_int_equal(sl_subq_push(&q, key2, 9, 5), 0);
    assert_int_equal(q.count, 2);
    assert_int_equal(q.skipping, 0);
    /* Still lagging (never drained) after slow_ms: SL_ESLOW. */
    f = mk('v', 2040, 10);
    assert_int_equal(sl_subq_push(&q, f, 10, 3 + 5001), SL_ESLOW);
    /* Draining to empty ends the episode. */
    sl_subq_item_t out[4];
    sl_subq_pop(&q, 4, out);
    for (int i = 0; i < 2; i++)
        sl_frame_unref(out[i].f);
    assert_int_equal(q.lag_since_ms, 0);
    assert_int_equal(sl_subq_push(&q, f, 10, 3 + 5002), 0);
    sl_frame_unref(f);
    sl_frame_unref(cfg);
    sl_frame_unref(key);
    sl_frame_unref(key2);
    sl_subq_cleanup(&q);
}

/* The one slow-player policy (sl_subq_offer): drops are counted into the
 * session's counter, the first drop is told apart once, a lag past slow_ms
 * is SL_ESLOW, and the reason is worded the same for every protocol. */
static void test_subq_offer_policy(void **state)
{
    (void)state;
    sl_subq_t q;
    uint64_t session_dropped = 100;
    assert_int_equal(sl_subq_init(&q, 500, 0, 2000), 0);
    sl_frame_t *key = mk('V', 0, 300);
    assert_int_equal(sl_subq_offer(&q, key, 0, 1, &session_dropped), 0);
    sl_frame_t *f = mk('v', 40, 300);
    assert_int_equal(sl_subq_offer(&q, f, 1, 2, &session_dropped), SL_SUBQ_FELL_BEHIND);
    sl_frame_unref(f);
    assert_int_equal(session_dropped, 102); /* the queued keyframe and the frame offered */
    f = mk('v', 80, 10);
    assert_int_equal(sl_subq_offer(&q, f, 2, 3, &session_dropped), 1); /* not the first any more */
    assert_int_equal(session_dropped, 103);
    assert_int_equal(sl_subq_offer(&q, f, 3, 2 + 2001, &session_dropped), SL_ESLOW);
    sl_frame_unref(f);
    char why[128];
    assert_string_equal(sl_subq_slow_reason(&q, why, sizeof why),
                        "subscriber too slow: lagging for over 2000 ms, 3 frames dropped");
    assert_ptr_equal(sl_subq_slow_reason(&q, why, 10), why);
    assert_int_equal(strlen(why), 9);
    sl_frame_unref(key);
    sl_subq_cleanup(&q);
}

static void test_subq_time_bound_audio_only(void **state)
{
    (void)state;
    sl_subq_t q;
    assert_int_equal(sl_subq_init(&q, 1 << 20, 1000, 0), 0);
    for (uint32_t t = 0; t <= 1000; t += 100) {
        sl_frame_t *f = mk('A', t, 10);
        assert_int_equal(sl_subq_push(&q, f, t, 1), 0);
        sl_frame_unref(f);
    }
    /* 1100 ms span > 1000: dropped, and audio-only streams resync on any audio frame */
    sl_frame_t *f = mk('A', 1100, 10);
    assert_int_equal(sl_subq_push(&q, f, 0, 1), 0);
    sl_frame_unref(f);
    assert_int_equal(q.count, 1);
    assert_int_equal(q.drop_events, 1);
    sl_subq_cleanup(&q);
}

/* Replayed configs carry old timestamps; the GOP after them must not look
 * minutes long to the time bound (a regression the e2e GOP test caught). */
static void test_subq_old_configs_do_not_count(void **state)
{
    (void)state;
    sl_subq_t q;
    assert_int_equal(sl_subq_init(&q, 1 << 20, 5000, 0), 0);
    sl_frame_t *cfg = mk('C', 0, 50);
    assert_int_equal(sl_subq_push(&q, cfg, 0, 1), 0);
    for (uint32_t t = 60000; t <= 61000; t += 40) {
        sl_frame_t *f = mk(t == 60000 ? 'V' : 'v', t, 100);
        assert_int_equal(sl_subq_push(&q, f, 0, 1), 0);
        sl_frame_unref(f);
    }
    assert_int_equal(q.drop_events, 0);
    assert_int_equal(q.count, 27);
    /* and configs alone cannot grow the queue past twice its bound */
    sl_subq_t small;
    assert_int_equal(sl_subq_init(&small, 200, 0, 0), 0);
    int rc = 0;
    for (int i = 0; i < 10 && rc == 0; i++)
        rc = sl_subq_push(&small, cfg, 0, 1);
    assert_int_equal(rc, SL_ESLOW);
    sl_subq_cleanup(&small);
    sl_frame_unref(cfg);
    sl_subq_cleanup(&q);
}

/* Internal sinks (HLS segmenter, recorder) keep a stream alive but are not players. */
static void test_internal_sinks_not_counted(void **state)
{
    (void)state;
    sl_hub_t *hub = sl_hub_new(1 << 20);
    sl_stream_t *st;
    int token;
    assert_int_equal(sl_hub_publish(hub, "live/s", &token, &st), 0);
    rec_t seg, player;
    rec_init(&seg);
    rec_init(&player);
    seg.sink.internal = 1;
    sl_hub_add_sink(hub, "live/s", &seg.sink);
    sl_hub_add_sink(hub, "live/s", &player.sink);
    assert_int_equal(st->n_sinks, 2);
    assert_int_equal(st->n_players, 1);
    assert_int_equal(st->stats.total_sinks, 1);
    assert_int_equal(st->stats.max_sinks, 1);
    sl_stream_remove_sink(&player.sink);
    assert_int_equal(st->n_players, 0);
    sl_stream_unpublish(st);
    assert_non_null(sl_hub_find(hub, "live/s")); /* the internal sink still holds it */
    sl_stream_remove_sink(&seg.sink);
    assert_int_equal(sl_hub_count(hub), 0);
    rec_clear(&seg);
    rec_clear(&player);
    sl_hub_free(hub);
}

/* A relayed player (its frames come through a relay sink: a worker's fan-out) stays
 * attached and counted, hears publish and unpublish, gets no frame from the push, and
 * gets frames again once direct; its removal frees the stream as any sink's. */
static void test_relayed_sink(void **state)
{
    (void)state;
    sl_hub_t *hub = sl_hub_new(1 << 20);
    sl_stream_t *st;
    int token;
    assert_int_equal(sl_hub_publish(hub, "live/r", &token, &st), 0);
    rec_t relay, player;
    rec_init(&relay);
    rec_init(&player);
    relay.sink.internal = 1;
    assert_int_equal(sl_hub_add_sink(hub, "live/r", &player.sink), 0);
    assert_int_equal(sl_hub_add_sink(hub, "live/r", &relay.sink), 0);
    sl_stream_sink_relayed(&player.sink, 1);
    assert_int_equal(player.sink.relayed, 1);
    push(st, 'V', 0);
    push(st, 'A', 10);
    assert_int_equal(relay.n, 2);
    assert_int_equal(player.n, 0);
    assert_int_equal(st->n_players, 1);
    sl_stream_unpublish(st);
    assert_int_equal(player.unpublishes, 1);
    assert_int_equal(sl_hub_publish(hub, "live/r", &token, &st), 0);
    assert_int_equal(player.publishes, 2);
    sl_stream_sink_relayed(&player.sink, 0);
    push(st, 'V', 40);
    assert_int_equal(player.n, 1);
    assert_int_equal(relay.n, 3);
    sl_stream_sink_relayed(&player.sink, 1);
    sl_stream_remove_sink(&player.sink);
    assert_int_equal(player.sink.relayed, 0);
    assert_int_equal(st->n_players, 0);
    sl_stream_remove_sink(&relay.sink);
    sl_stream_unpublish(st);
    assert_int_equal(sl_hub_count(hub), 0);
    rec_clear(&relay);
    rec_clear(&player);
    sl_hub_free(hub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gop_late_join),
        cmocka_unit_test(test_player_first_and_republish),
        cmocka_unit_test(test_gop_bound),
        cmocka_unit_test(test_gop_restart),
        cmocka_unit_test(test_subq_drop_policy),
        cmocka_unit_test(test_subq_offer_policy),
        cmocka_unit_test(test_subq_time_bound_audio_only),
        cmocka_unit_test(test_subq_old_configs_do_not_count),
        cmocka_unit_test(test_internal_sinks_not_counted),
        cmocka_unit_test(test_relayed_sink),
    };
    int64_t before = sl_alloc_bytes();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sl_frame_pool_drain();
    if (sl_frame_count() != 0 || sl_alloc_bytes() != before) {
        fprintf(stderr, "leak: %lld frames, %lld bytes\n", (long long)sl_frame_count(),
                (long long)(sl_alloc_bytes() - before));
        return 1;
    }
    return rc;
}
