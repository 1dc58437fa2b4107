/*
 * HLS unit tests: the playlist rules of src/modules/hls/hls_playlist.c
 * (target duration is the ceiling of the longest segment, the media
 * sequence grows as the window slides, discontinuities on republish and
 * their sequence number, EXT-X-MAP per init section, LL-HLS parts that
 * add up to their segment, the preload hint, delta updates), the
 * blocking-reload decisions, and the libavformat muxer wrapper on
 * audio-only input (MPEG-TS packets and fMP4 fragments come out of memory
 * I/O; no real H.264 is needed for that).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "media/frame.h"
#include "modules/hls/hls_mux.h"
#include "modules/hls/hls_playlist.h"
#include "sluice/errors.h"

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static sl_buf_t *bytes(size_t n, uint8_t fill)
{
    sl_buf_t *b = sl_buf_new(n);
    assert_non_null(b);
    memset(b->data, fill, n);
    b->len = (uint32_t)n;
    return b;
}

/* Adds a complete plain segment of dur_ms. */
static void add_segment(sl_hls_playlist_t *pl, uint32_t dur_ms, int disc)
{
    uint64_t dropped;
    assert_int_equal(sl_hls_pl_begin(pl, 0, disc, NULL, 0, &dropped), 0);
    sl_buf_t *b = bytes(188, 0x47);
    assert_int_equal(sl_hls_pl_end(pl, b, dur_ms), 0);
    sl_buf_unref(b);
}

/* Renders into a NUL-terminated string (caller frees with sl_free). */
static char *render(const sl_hls_playlist_t *pl, int ll, int skip, const char *query)
{
    sl_wbuf_t w;
    sl_wbuf_init(&w, 1 << 20);
    sl_hls_render_opts_t o = {.name = "s", .query = query, .seg_ext = pl->fmp4 ? ".m4s" : ".ts",
                              .low_latency = ll, .skip = skip};
    assert_int_equal(sl_hls_pl_render(pl, &o, &w), 0);
    assert_int_equal(sl_wbuf_put_u8(&w, 0), 0);
    char *s = sl_strdup((const char *)w.data);
    sl_wbuf_cleanup(&w);
    return s;
}

/* True when the 4-byte box type occurs in the buffer. */
static int has_box(const sl_buf_t *b, const char *type)
{
    for (uint32_t i = 0; i + 4 <= b->len; i++)
        if (memcmp(b->data + i, type, 4) == 0)
            return 1;
    return 0;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static long tag_value(const char *text, const char *tag)
{
    const char *p = strstr(text, tag);
    return p ? strtol(p + strlen(tag), NULL, 10) : -1;
}

/* Every EXTINF, rounded, is at most the target duration (RFC 8216 4.3.3.1). */
static void assert_extinf_within_target(const char *text)
{
    long td = tag_value(text, "#EXT-X-TARGETDURATION:");
    assert_true(td >= 1);
    for (const char *p = strstr(text, "#EXTINF:"); p; p = strstr(p + 1, "#EXTINF:")) {
        double d = strtod(p + 8, NULL);
        assert_true((long)(d + 0.5) <= td);
    }
}

/* ------------------------------------------------------------------ */
/* playlist rules                                                      */

static void test_target_duration(void **state)
{
    (void)state;
    sl_hls_playlist_t pl;
    assert_int_equal(sl_hls_pl_init(&pl, 5, 5, 6000, 0, 0), 0);
    /* Before any segment: the configured length, rounded up. */
    assert_int_equal(sl_hls_pl_target_s(&pl), 6);
    char *t = render(&pl, 0, 0, NULL);
    assert_non_null(strstr(t, "#EXTM3U\n"));
    assert_ptr_equal(strstr(t, "#EXTM3U"), t); /* first line */
    assert_int_equal(tag_value(t, "#EXT-X-TARGETDURATION:"), 6);
    assert_int_equal(tag_value(t, "#EXT-X-MEDIA-SEQUENCE:"), 0);
    sl_free(t);
    /* The ceiling of the longest segment: 6.000 s -> 6, 6.001 s -> 7. */
    add_segment(&pl, 6000, 0);
    assert_int_equal(sl_hls_pl_target_s(&pl), 6);
    add_segment(&pl, 6001, 0);
    assert_int_equal(sl_hls_pl_target_s(&pl), 7);
    add_segment(&pl, 4000, 0);
    assert_int_equal(sl_hls_pl_target_s(&pl), 7); /* never decreases */
    t = render(&pl, 0, 0, NULL);
    assert_int_equal(tag_value(t, "#EXT-X-TARGETDURATION:"), 7);
    assert_non_null(strstr(t, "#EXTINF:6.001,\ns_1.ts\n"));
    assert_extinf_within_target(t);
    sl_free(t);
    sl_hls_pl_cleanup(&pl);

    /* Shorter segments than configured: the target follows them. */
    assert_int_equal(sl_hls_pl_init(&pl, 5, 0, 6000, 0, 0), 0);
    add_segment(&pl, 2000, 0);
    add_segment(&pl, 1999, 0);
    assert_int_equal(sl_hls_pl_target_s(&pl), 2);
    sl_hls_pl_cleanup(&pl);
}

static void test_media_sequence_slides(void **state)
{
    (void)state;
    sl_hls_playlist_t pl;
    assert_int_equal(sl_hls_pl_init(&pl, 3, 2, 6000, 0, 0), 0);
    uint64_t last_seq = 0;
    for (int i = 0; i < 8; i++) {
        uint64_t dropped;
        assert_int_equal(sl_hls_pl_begin(&pl, 0, 0, NULL, 0, &dropped), 0);
        /* The ring holds window + extra complete segments, plus the open one. */
        if (i < 6)
            assert_true(dropped == UINT64_MAX);
        else
            assert_int_equal(dropped, (uint64_t)(i - 6));
        sl_buf_t *b = bytes(188, 0x47);
        assert_int_equal(sl_hls_pl_end(&pl, b, 6000), 0);
        sl_buf_unref(b);
        char *t = render(&pl, 0, 0, "sid=ABC");
        long seq = tag_value(t, "#EXT-X-MEDIA-SEQUENCE:");
        assert_true(seq >= (long)last_seq); /* monotonic across reloads */
        last_seq = (uint64_t)seq;
        assert_int_equal(seq, i < 3 ? 0 : i - 2);
        assert_int_equal(count(t, "#EXTINF:"), i < 3 ? i + 1 : 3);
        sl_free(t);
    }
    char *t = render(&pl, 0, 0, "sid=ABC");
    assert_non_null(strstr(t, "s_5.ts?sid=ABC\n"));
    assert_non_null(strstr(t, "s_7.ts?sid=ABC\n"));
    assert_null(strstr(t, "s_4.ts"));
    sl_free(t);
    /* Out of the playlist but still served for a while (RFC 8216 6.2.2): the
     * extra segments, and the slot of the open one while none is open. */
    assert_non_null(sl_hls_pl_segment(&pl, 2));
    assert_non_null(sl_hls_pl_segment(&pl, 4));
    assert_null(sl_hls_pl_segment(&pl, 1));
    assert_null(sl_hls_pl_segment(&pl, 8));
    sl_hls_pl_cleanup(&pl);
}

static void test_discontinuity(void **state)
{
    (void)state;
    sl_hls_playlist_t pl;
    assert_int_equal(sl_hls_pl_init(&pl, 2, 0, 2000, 0, 0), 0);
    add_segment(&pl, 2000, 0);
    add_segment(&pl, 2000, 0);
    add_segment(&pl, 2000, 1); /* republish */
    char *t = render(&pl, 0, 0, NULL);
    assert_int_equal(count(t, "#EXT-X-DISCONTINUITY\n"), 1);
    assert_non_null(strstr(t, "#EXT-X-DISCONTINUITY\n#EXTINF:2.000,\ns_2.ts\n"));
    assert_null(strstr(t, "#EXT-X-DISCONTINUITY-SEQUENCE"));
    sl_free(t);
    add_segment(&pl, 2000, 0);
    add_segment(&pl, 2000, 0);
    /* The discontinuity left the playlist: its sequence number counts it. */
    t = render(&pl, 0, 0, NULL);
    assert_int_equal(count(t, "#EXT-X-DISCONTINUITY\n"), 0);
    assert_int_equal(tag_value(t, "#EXT-X-DISCONTINUITY-SEQUENCE:"), 1);
    assert_int_equal(tag_value(t, "#EXT-X-MEDIA-SEQUENCE:"), 3);
    sl_free(t);
    /* The end of the stream. */
    pl.ended = 1;
    t = render(&pl, 0, 0, NULL);
    assert_non_null(strstr(t, "#EXT-X-ENDLIST\n"));
    sl_free(t);
    sl_hls_pl_cleanup(&pl);
}

static void test_fmp4_map(void **state)
{
    (void)state;
    sl_hls_playlist_t pl;
    assert_int_equal(sl_hls_pl_init(&pl, 5, 0, 2000, 0, 1), 0);
    sl_buf_t *init1 = bytes(32, 1), *init2 = bytes(32, 2), *seg = bytes(100, 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sl_hls_pl_begin(&pl, 0, i == 2, i < 2 ? init1 : init2, i < 2 ? 1 : 2, NULL), 0);
        assert_int_equal(sl_hls_pl_end(&pl, seg, 2000), 0);
    }
    char *t = render(&pl, 0, 0, "sid=X");
    assert_int_equal(tag_value(t, "#EXT-X-VERSION:"), 7);
    assert_int_equal(count(t, "#EXT-X-MAP:"), 2);
    assert_non_null(strstr(t, "#EXT-X-MAP:URI=\"s_init1.mp4?sid=X\"\n"));
    assert_non_null(strstr(t, "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"s_init2.mp4?sid=X\"\n"));
    assert_non_null(strstr(t, "s_3.m4s?sid=X\n"));
    sl_free(t);
    assert_ptr_equal(sl_hls_pl_init_section(&pl, 1), init1);
    assert_ptr_equal(sl_hls_pl_init_section(&pl, 2), init2);
    assert_null(sl_hls_pl_init_section(&pl, 3));
    sl_buf_unref(init1);
    sl_buf_unref(init2);
    sl_buf_unref(seg);
    sl_hls_pl_cleanup(&pl);
}

/* Opens a segment and adds n parts of part_ms (the first independent). */
static void add_parts(sl_hls_playlist_t *pl, int n, uint32_t part_ms, sl_buf_t *init)
{
    if (!sl_hls_pl_open(pl))
        assert_int_equal(sl_hls_pl_begin(pl, 0, 0, init, 1, NULL), 0);
    for (int i = 0; i < n; i++) {
        sl_buf_t *p = bytes(10, (uint8_t)i);
        assert_int_equal(sl_hls_pl_add_part(pl, p, part_ms, sl_hls_pl_open(pl)->n_parts == 0), 0);
        sl_buf_unref(p);
    }
}

static void end_from_parts(sl_hls_playlist_t *pl)
{
    sl_hls_segment_t *s = sl_hls_pl_open(pl);
    assert_non_null(s);
    sl_buf_t *b = bytes(10u * s->n_parts, 0);
    assert_int_equal(sl_hls_pl_end(pl, b, s->duration_ms), 0);
    sl_buf_unref(b);
}

static void test_ll_parts_and_hint(void **state)
{
    (void)state;
    sl_hls_playlist_t pl;
    sl_buf_t *init = bytes(16, 9);
    assert_int_equal(sl_hls_pl_init(&pl, 5, 5, 2000, 333, 0), 0);
    assert_int_equal(pl.fmp4, 1); /* parts imply fMP4 */
    char *t = render(&pl, 1, 0, "sid=A");
    assert_non_null(strstr(t, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s_part0.m4s?sid=A\"\n"));
    sl_free(t);
    add_parts(&pl, 6, 320, init);
    add_parts(&pl, 1, 80, init);
    end_from_parts(&pl);
    add_parts(&pl, 3, 320, init);
    t = render(&pl, 1, 0, "sid=A");
    assert_int_equal(tag_value(t, "#EXT-X-VERSION:"), 9);
    assert_non_null(strstr(t, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=0.999\n"));
    assert_non_null(strstr(t, "#EXT-X-PART-INF:PART-TARGET=0.333\n"));
    /* Segment 0: seven parts, then its EXTINF equal to their sum. */
    assert_non_null(strstr(t, "#EXT-X-PART:DURATION=0.320,URI=\"s_part0.m4s?sid=A\",INDEPENDENT=YES\n"));
    assert_non_null(strstr(t, "#EXT-X-PART:DURATION=0.080,URI=\"s_part6.m4s?sid=A\"\n#EXTINF:2.000,\ns_0.m4s?sid=A\n"));
    /* The open segment's parts follow, and the hint names the next part. */
    assert_non_null(strstr(t, "URI=\"s_part9.m4s?sid=A\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s_part10.m4s?sid=A\"\n"));
    assert_int_equal(count(t, "#EXT-X-PART:"), 10);
    assert_int_equal(count(t, "INDEPENDENT=YES"), 2);
    /* Every part is within the part target. */
    for (const char *p = strstr(t, "#EXT-X-PART:DURATION="); p; p = strstr(p + 1, "#EXT-X-PART:DURATION="))
        assert_true(strtod(p + 21, NULL) <= 0.333);
    assert_extinf_within_target(t);
    sl_free(t);
    /* Parts are served by global index; the open segment is not a segment yet. */
    assert_non_null(sl_hls_pl_part(&pl, 0));
    assert_non_null(sl_hls_pl_part(&pl, 9));
    assert_null(sl_hls_pl_part(&pl, 10));
    assert_null(sl_hls_pl_segment(&pl, 1));
    assert_non_null(sl_hls_pl_segment(&pl, 0));
    /* Right after a segment is closed and the next opened, the parts of the
     * closed one are still found (a late request for its last part). */
    end_from_parts(&pl);
    assert_int_equal(sl_hls_pl_begin(&pl, 0, 0, init, 1, NULL), 0);
    assert_non_null(sl_hls_pl_part(&pl, 9));
    assert_int_equal(sl_hls_pl_part_check(&pl, 9), SL_HLS_BLOCK_READY);
    assert_int_equal(sl_hls_pl_part_check(&pl, 10), SL_HLS_BLOCK_WAIT);
    add_parts(&pl, 1, 320, init);
    /* Without LL rendering the same store is a plain playlist. */
    t = render(&pl, 0, 0, NULL);
    assert_int_equal(count(t, "#EXT-X-PART"), 0);
    assert_int_equal(count(t, "PRELOAD-HINT"), 0);
    sl_free(t);
    /* Parts of old segments are no longer listed (3 target durations), then dropped. */
    end_from_parts(&pl);
    for (int i = 0; i < 5; i++) {
        add_parts(&pl, 6, 333, init);
        end_from_parts(&pl);
    }
    t = render(&pl, 1, 0, NULL);
    /* Listed: segments 3..7 (1.998 s each, target 2 s); parts only for those
     * starting within 6 s of the end: segments 5, 6 and 7. */
    assert_int_equal(tag_value(t, "#EXT-X-MEDIA-SEQUENCE:"), 3);
    assert_null(strstr(t, "s_part0.m4s"));
    assert_int_equal(count(t, "#EXT-X-PART:"), 18);
    assert_non_null(strstr(t, "#EXTINF:1.998,\ns_4.m4s\n#EXT-X-PROGRAM-DATE-TIME") ||
                    strstr(t, "#EXTINF:1.998,\ns_4.m4s\n#EXT-X-PART:"));
    assert_extinf_within_target(t);
    sl_free(t);
    assert_null(sl_hls_pl_part(&pl, 0));
    sl_buf_unref(init);
    sl_hls_pl_cleanup(&pl);
}

static void test_skip(void **state)
{
    (void)state;
    sl_hls_playlist_t pl;
    assert_int_equal(sl_hls_pl_init(&pl, 20, 0, 1000, 200, 1), 0);
    for (int i = 0; i < 10; i++) {
        add_parts(&pl, 5, 200, NULL);
        end_from_parts(&pl);
    }
    /* Target 1 s: CAN-SKIP-UNTIL 6 s; the first 4 of 10 one-second segments end
     * more than 6 s before the end. */
    char *t = render(&pl, 1, 1, NULL);
    assert_non_null(strstr(t, "CAN-SKIP-UNTIL=6.0"));
    assert_non_null(strstr(t, "#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n"));
    assert_int_equal(tag_value(t, "#EXT-X-MEDIA-SEQUENCE:"), 0);
    assert_null(strstr(t, "s_3.m4s"));
    assert_non_null(strstr(t, "s_4.m4s"));
    assert_int_equal(count(t, "#EXTINF:"), 6);
    sl_free(t);
    /* No delta update without the directive, nor for plain HLS. */
    t = render(&pl, 1, 0, NULL);
    assert_null(strstr(t, "EXT-X-SKIP"));
    sl_free(t);
    t = render(&pl, 0, 1, NULL);
    assert_null(strstr(t, "EXT-X-SKIP"));
    sl_free(t);
    sl_hls_pl_cleanup(&pl);
}

static void test_abandon(void **state)
{
    (void)state;
    sl_hls_playlist_t pl;
    assert_int_equal(sl_hls_pl_init(&pl, 3, 0, 2000, 500, 1), 0);
    assert_int_equal(sl_hls_pl_begin(&pl, 0, 0, NULL, 0, NULL), 0);
    assert_int_equal(sl_hls_pl_begin(&pl, 0, 0, NULL, 0, NULL), SL_EINVAL); /* one open at a time */
    assert_int_equal(sl_hls_pl_abandon(&pl), 0);
    assert_null(sl_hls_pl_open(&pl));
    assert_int_equal(pl.next_msn, 0); /* its number is reused */
    add_parts(&pl, 1, 500, NULL);
    assert_int_equal(sl_hls_pl_abandon(&pl), SL_EBUSY);
    end_from_parts(&pl);
    assert_int_equal(sl_hls_pl_complete_count(&pl), 1);
    sl_hls_pl_cleanup(&pl);
}

/* ------------------------------------------------------------------ */
/* blocking reload                                                     */

static void test_block_decisions(void **state)
{
    (void)state;
    sl_hls_playlist_t pl;
    assert_int_equal(sl_hls_pl_init(&pl, 5, 0, 2000, 500, 1), 0);
    /* Empty: msn 0 will come, msn 2 is the furthest one may wait for. */
    assert_int_equal(sl_hls_pl_block_check(&pl, 0, -1), SL_HLS_BLOCK_WAIT);
    assert_int_equal(sl_hls_pl_block_check(&pl, 1, -1), SL_HLS_BLOCK_WAIT);
    assert_int_equal(sl_hls_pl_block_check(&pl, 2, -1), SL_HLS_BLOCK_BAD);
    assert_int_equal(sl_hls_pl_block_check(&pl, -1, -1), SL_HLS_BLOCK_BAD);
    /* Segment 0 complete (4 parts), segment 1 open with 2 parts. */
    add_parts(&pl, 4, 500, NULL);
    end_from_parts(&pl);
    add_parts(&pl, 2, 500, NULL);
    assert_int_equal(sl_hls_pl_block_check(&pl, 0, -1), SL_HLS_BLOCK_READY);
    assert_int_equal(sl_hls_pl_block_check(&pl, 0, 3), SL_HLS_BLOCK_READY);
    assert_int_equal(sl_hls_pl_block_check(&pl, 0, 9), SL_HLS_BLOCK_READY); /* complete: all it has */
    assert_int_equal(sl_hls_pl_block_check(&pl, 1, -1), SL_HLS_BLOCK_WAIT); /* not complete yet */
    assert_int_equal(sl_hls_pl_block_check(&pl, 1, 0), SL_HLS_BLOCK_READY);
    assert_int_equal(sl_hls_pl_block_check(&pl, 1, 1), SL_HLS_BLOCK_READY);
    assert_int_equal(sl_hls_pl_block_check(&pl, 1, 2), SL_HLS_BLOCK_WAIT);
    assert_int_equal(sl_hls_pl_block_check(&pl, 2, 0), SL_HLS_BLOCK_WAIT);
    assert_int_equal(sl_hls_pl_block_check(&pl, 3, -1), SL_HLS_BLOCK_WAIT); /* last + 2 */
    assert_int_equal(sl_hls_pl_block_check(&pl, 4, -1), SL_HLS_BLOCK_BAD);
    /* Advance Part Limit with a 0.5 s target: 3 / 0.5 = 6 parts. */
    assert_int_equal(sl_hls_pl_block_check(&pl, 1, 7), SL_HLS_BLOCK_WAIT);
    assert_int_equal(sl_hls_pl_block_check(&pl, 1, 8), SL_HLS_BLOCK_BAD);
    assert_int_equal(sl_hls_pl_block_check(&pl, 2, 5), SL_HLS_BLOCK_WAIT);
    assert_int_equal(sl_hls_pl_block_check(&pl, 2, 6), SL_HLS_BLOCK_BAD);
    /* Parts: the next one is worth waiting for, others are not. */
    assert_int_equal(sl_hls_pl_part_check(&pl, 5), SL_HLS_BLOCK_READY);
    assert_int_equal(sl_hls_pl_part_check(&pl, 6), SL_HLS_BLOCK_WAIT);
    assert_int_equal(sl_hls_pl_part_check(&pl, 7), SL_HLS_BLOCK_BAD);
    /* The next part arrives: what waited for it is ready. */
    add_parts(&pl, 1, 500, NULL);
    assert_int_equal(sl_hls_pl_block_check(&pl, 1, 2), SL_HLS_BLOCK_READY);
    assert_int_equal(sl_hls_pl_part_check(&pl, 6), SL_HLS_BLOCK_READY);
    /* An ended stream answers everything at once. */
    pl.ended = 1;
    assert_int_equal(sl_hls_pl_block_check(&pl, 3, 0), SL_HLS_BLOCK_READY);
    assert_int_equal(sl_hls_pl_part_check(&pl, 7), SL_HLS_BLOCK_BAD);
    sl_hls_pl_cleanup(&pl);

    /* Plain HLS: _HLS_part is ignored, segments decide. */
    assert_int_equal(sl_hls_pl_init(&pl, 5, 0, 2000, 0, 0), 0);
    add_segment(&pl, 2000, 0);
    assert_int_equal(sl_hls_pl_block_check(&pl, 0, 5), SL_HLS_BLOCK_READY);
    assert_int_equal(sl_hls_pl_block_check(&pl, 1, 0), SL_HLS_BLOCK_WAIT);
    assert_int_equal(sl_hls_pl_block_check(&pl, 3, -1), SL_HLS_BLOCK_BAD);
    sl_hls_pl_cleanup(&pl);
}

/* ------------------------------------------------------------------ */
/* the muxer                                                           */

static void test_aac_config(void **state)
{
    (void)state;
    uint32_t rate = 0, ch = 0;
    const uint8_t lc_44k_stereo[] = {0x12, 0x10};
    assert_int_equal(sl_hls_aac_config(lc_44k_stereo, 2, &rate, &ch), 0);
    assert_int_equal(rate, 44100);
    assert_int_equal(ch, 2);
    const uint8_t lc_48k_mono[] = {0x11, 0x88};
    assert_int_equal(sl_hls_aac_config(lc_48k_mono, 2, &rate, &ch), 0);
    assert_int_equal(rate, 48000);
    assert_int_equal(ch, 1);
    const uint8_t bad_index[] = {0x16, 0x90}; /* frequency index 13 */
    assert_int_equal(sl_hls_aac_config(bad_index, 2, &rate, &ch), SL_EPROTO);
    assert_int_equal(sl_hls_aac_config(lc_44k_stereo, 1, &rate, &ch), SL_EPROTO);
}

/* An FLV AAC raw frame (AACPacketType 1) of n payload bytes. */
static sl_frame_t *aac_frame(uint32_t dts, size_t n)
{
    sl_buf_t *b = sl_buf_new(2 + n);
    b->data[0] = 0xAF;
    b->data[1] = 1;
    for (size_t i = 0; i < n; i++)
        b->data[2 + i] = (uint8_t)(i * 7);
    b->len = (uint32_t)(2 + n);
    sl_frame_t *f;
    assert_int_equal(sl_frame_new(SL_FLV_AUDIO, dts, b, &f), 0);
    return f;
}

static void run_audio_mux(int fmp4)
{
    const uint8_t asc[] = {0x12, 0x10};
    sl_hls_track_t a = {.codec = SL_CODEC_AAC, .config = asc, .config_len = 2};
    sl_hls_mux_t *m = NULL;
    sl_buf_t *init = NULL;
    assert_int_equal(sl_hls_mux_new(fmp4, NULL, &a, &m, &init), 0);
    if (fmp4) {
        assert_non_null(init);
        assert_memory_equal(init->data + 4, "ftyp", 4);
        assert_true(has_box(init, "moov"));
    } else {
        assert_null(init);
    }
    sl_buf_t *pieces[3] = {NULL, NULL, NULL};
    for (int piece = 0; piece < 3; piece++) {
        for (int i = 0; i < 20; i++) {
            sl_frame_t *f = aac_frame((uint32_t)((piece * 20 + i) * 23), 200);
            if (i == 0 && piece > 0)
                assert_int_equal(sl_hls_mux_cut(m, f, 1, &pieces[piece - 1]), 0);
            assert_int_equal(sl_hls_mux_write(m, f), 0);
            sl_frame_unref(f);
        }
    }
    assert_int_equal(sl_hls_mux_finish(m, &pieces[2]), 0);
    for (int i = 0; i < 3; i++) {
        sl_buf_t *b = pieces[i];
        assert_non_null(b);
        if (fmp4) {
            assert_memory_equal(b->data + 4, "moof", 4);
            assert_true(has_box(b, "mdat"));
            assert_true(has_box(b, "tfdt"));
        } else {
            assert_int_equal(b->len % 188, 0);
            assert_int_equal(b->data[0], 0x47);
            /* Every segment opens with the tables (SDT, PAT, PMT) before any PES. */
            int pat_at = -1;
            for (uint32_t k = 0; k < 4 && k * 188 < b->len; k++)
                if ((((b->data[k * 188 + 1] & 0x1F) << 8) | b->data[k * 188 + 2]) == 0)
                    pat_at = (int)k;
            assert_true(pat_at >= 0);
        }
        sl_buf_unref(b);
    }
    sl_buf_unref(init);
    sl_hls_mux_free(m);
}

static void test_mux_audio_ts(void **state)
{
    (void)state;
    run_audio_mux(0);
}

static void test_mux_audio_fmp4(void **state)
{
    (void)state;
    run_audio_mux(1);
}

static void test_mux_refuses(void **state)
{
    (void)state;
    sl_hls_mux_t *m = NULL;
    assert_int_equal(sl_hls_mux_new(0, NULL, NULL, &m, NULL), SL_EINVAL);
    const uint8_t asc[] = {0x12, 0x10};
    sl_hls_track_t opus = {.codec = SL_CODEC_OPUS, .config = asc, .config_len = 2};
    assert_int_equal(sl_hls_mux_new(1, NULL, &opus, &m, NULL), SL_EINVAL);
    assert_null(m);
    assert_int_equal(sl_hls_codec_supported(SL_CODEC_HEVC, 1), 1);
    assert_int_equal(sl_hls_codec_supported(SL_CODEC_VP9, 1), 0);
}

static int teardown(void **state)
{
    (void)state;
    sl_frame_pool_drain();
    assert_int_equal(sl_frame_count(), 0);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_duration),
        cmocka_unit_test(test_media_sequence_slides),
        cmocka_unit_test(test_discontinuity),
        cmocka_unit_test(test_fmp4_map),
        cmocka_unit_test(test_ll_parts_and_hint),
        cmocka_unit_test(test_skip),
        cmocka_unit_test(test_abandon),
        cmocka_unit_test(test_block_decisions),
        cmocka_unit_test(test_aac_config),
        cmocka_unit_test_teardown(test_mux_audio_ts, teardown),
        cmocka_unit_test_teardown(test_mux_audio_fmp4, teardown),
        cmocka_unit_test(test_mux_refuses),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (sl_alloc_blocks() != 0) {
        fprintf(stderr, "leak: %lld blocks still allocated\n", (long long)sl_alloc_blocks());
        return 1;
    }
    return rc;
}
