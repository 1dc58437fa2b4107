/*
 * Chunk stream tests: messages written by sl_rtmp_chunk_write and by the
 * shared media path read back identically through sl_rtmp_chunk_read for
 * every header type, chunk size and extended timestamps, whatever the
 * input fragmentation; limits are enforced before allocation; the budget
 * of partial messages is a sum over chunk streams, and every way a partial
 * message ends (completion, abort, a new header, cleanup) gives its bytes
 * back to the connection and to the server-wide pool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "media/frame.h"
#include "proto/rtmp/rtmp_chunk.h"
#include "sluice/errors.h"

/* Reads every message from data fed in pieces of `step` bytes. */
static int read_all(sl_rtmp_chunk_reader_t *r, const uint8_t *data, size_t len, size_t step,
                    sl_rtmp_msg_t *out, int max)
{
    int n = 0;
    size_t off = 0;
    while (off < len) {
        size_t piece = len - off < step ? len - off : step;
        size_t pos = 0;
        while (pos < piece) {
            size_t used = 0;
            sl_rtmp_msg_t m;
            int rc = sl_rtmp_chunk_read(r, data + off + pos, piece - pos, &used, &m);
            pos += used;
            if (rc < 0)
                return rc;
            if (rc == 1) {
                assert_true(n < max);
                out[n++] = m;
            } else {
                assert_int_equal(pos, piece);
            }
        }
        off += piece;
    }
    return n;
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

static void test_roundtrip_sizes(void **state)
{
    (void)state;
    static const uint32_t chunk_sizes[] = {1, 128, 129, 4096, 65536};
    static const size_t lens[] = {0, 1, 127, 128, 129, 1000, 70000};
    static const uint32_t stamps[] = {0, 40, 0xFFFFFE, 0xFFFFFF, 0x12345678};
    static const size_t steps[] = {1, 7, 4096, 1 << 20};
    uint8_t *payload = sl_malloc(70000);
    fill(payload, 70000, 3);
    for (size_t a = 0; a < sizeof chunk_sizes / sizeof *chunk_sizes; a++)
        for (size_t b = 0; b < sizeof lens / sizeof *lens; b++)
            for (size_t t = 0; t < sizeof stamps / sizeof *stamps; t++) {
                sl_wbuf_t w;
                sl_wbuf_init(&w, 1 << 24);
                assert_int_equal(sl_rtmp_chunk_write(&w, 3 + (uint32_t)t * 100, 20, 1, stamps[t],
                                                     payload, lens[b], chunk_sizes[a]), 0);
                assert_int_equal(sl_rtmp_chunk_write(&w, 3 + (uint32_t)t * 100, 9, 1, stamps[t] + 1,
                                                     payload, lens[b], chunk_sizes[a]), 0);
                for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
                    if (lens[b] > 1000 && steps[s] == 1 && chunk_sizes[a] == 1)
                        continue; /* slow and adds nothing */
                    sl_rtmp_chunk_reader_t r;
                    sl_rtmp_chunk_reader_init(&r, 1 << 24, 1 << 24);
                    r.chunk_size = chunk_sizes[a];
                    sl_rtmp_msg_t m[2];
                    assert_int_equal(read_all(&r, w.data, w.len, steps[s], m, 2), 2);
                    for (int i = 0; i < 2; i++) {
                        assert_int_equal(m[i].body->len, lens[b]);
                        assert_memory_equal(m[i].body->data, payload, lens[b]);
                        assert_int_equal(m[i].ts, stamps[t] + (uint32_t)i);
                        assert_int_equal(m[i].stream_id, 1);
                        assert_int_equal(m[i].type, i == 0 ? 20 : 9);
                        assert_int_equal(m[i].csid, 3 + (uint32_t)t * 100);
                        sl_buf_unref(m[i].body);
                    }
                    sl_rtmp_chunk_reader_cleanup(&r);
                }
                sl_wbuf_cleanup(&w);
            }
    sl_free(payload);
}

/* Hand-built header types 1, 2 and 3 with deltas (as ffmpeg and OBS send them). */
static void test_header_types(void **state)
{
    (void)state;
    uint8_t in[] = {
        /* type 0, csid 4: ts 1000, len 2, type 8, sid 1 */
        0x04, 0x00, 0x03, 0xE8, 0x00, 0x00, 0x02, 0x08, 0x01, 0x00, 0x00, 0x00, 0xAA, 0xBB,
        /* type 1, csid 4: delta 20, len 3, type 8 */
        0x44, 0x00, 0x00, 0x14, 0x00, 0x00, 0x03, 0x08, 0x01, 0x02, 0x03,
        /* type 2, csid 4: delta 23 */
        0x84, 0x00, 0x00, 0x17, 0x04, 0x05, 0x06,
        /* type 3, csid 4: repeats delta 23 */
        0xC4, 0x07, 0x08, 0x09,
    };
    sl_rtmp_chunk_reader_t r;
    sl_rtmp_chunk_reader_init(&r, 65536, 65536);
    sl_rtmp_msg_t m[4];
    assert_int_equal(read_all(&r, in, sizeof in, 1, m, 4), 4);
    static const uint32_t want_ts[] = {1000, 1020, 1043, 1066};
    static const uint32_t want_len[] = {2, 3, 3, 3};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(m[i].ts, want_ts[i]);
        assert_int_equal(m[i].body->len, want_len[i]);
        assert_int_equal(m[i].stream_id, 1);
        sl_buf_unref(m[i].body);
    }
    sl_rtmp_chunk_reader_cleanup(&r);
}

static void test_limits(void **state)
{
    (void)state;
    /* A declared 16 MB message with a 1 MB limit is refused before allocation. */
    uint8_t big[] = {0x03, 0, 0, 0, 0xFF, 0xFF, 0xFF, 20, 0, 0, 0, 0};
    sl_rtmp_chunk_reader_t r;
    sl_rtmp_chunk_reader_init(&r, 65536, 1 << 20);
    size_t used;
    sl_rtmp_msg_t m;
    int64_t before = sl_alloc_bytes();
    assert_int_equal(sl_rtmp_chunk_read(&r, big, sizeof big, &used, &m), SL_ETOOBIG);
    assert_int_equal(sl_alloc_bytes(), before);
    sl_rtmp_chunk_reader_cleanup(&r);

    /* Type 1 on a chunk stream never seen is a protocol error. */
    uint8_t orphan[] = {0x45, 0, 0, 1, 0, 0, 1, 8, 0xAA};
    sl_rtmp_chunk_reader_init(&r, 65536, 65536);
    assert_int_equal(sl_rtmp_chunk_read(&r, orphan, sizeof orphan, &used, &m), SL_EPROTO);
    sl_rtmp_chunk_reader_cleanup(&r);

    /* Chunk size limits. */
    sl_rtmp_chunk_reader_init(&r, 4096, 65536);
    assert_int_equal(sl_rtmp_chunk_reader_set_chunk_size(&r, 4096), 0);
    assert_int_equal(sl_rtmp_chunk_reader_set_chunk_size(&r, 4097), SL_ETOOBIG);
    assert_int_equal(sl_rtmp_chunk_reader_set_chunk_size(&r, 0), SL_EPROTO);
    assert_int_equal(sl_rtmp_chunk_reader_set_chunk_size(&r, 0x80000000u), SL_EPROTO);
    sl_rtmp_chunk_reader_cleanup(&r);

    /* More distinct chunk streams than allowed. */
    sl_rtmp_chunk_reader_init(&r, 65536, 65536);
    int rc = 0;
    for (uint32_t csid = 3; csid < 3 + SL_RTMP_MAX_CSIDS + 2 && rc >= 0; csid++) {
        sl_wbuf_t w;
        sl_wbuf_init(&w, 1024);
        uint8_t b = 1;
        sl_rtmp_chunk_write(&w, csid, 8, 1, 0, &b, 1, 128);
        rc = sl_rtmp_chunk_read(&r, w.data, w.len, &used, &m);
        if (rc == 1)
            sl_buf_unref(m.body);
        sl_wbuf_cleanup(&w);
    }
    assert_int_equal(rc, SL_ETOOBIG);
    sl_rtmp_chunk_reader_cleanup(&r);
}

static void test_abort(void **state)
{
    (void)state;
    uint8_t payload[300];
    fill(payload, sizeof payload, 1);
    sl_wbuf_t w;
    sl_wbuf_init(&w, 1 << 16);
    sl_rtmp_chunk_write(&w, 4, 8, 1, 0, payload, sizeof payload, 128);
    sl_rtmp_chunk_reader_t r;
    sl_rtmp_chunk_reader_init(&r, 65536, 65536);
    size_t used;
    sl_rtmp_msg_t m;
    /* first chunk only (12 + 128 bytes), then abort, then a fresh message */
    assert_int_equal(sl_rtmp_chunk_read(&r, w.data, 140, &used, &m), 0);
    sl_rtmp_chunk_reader_abort(&r, 4);
    sl_wbuf_t w2;
    sl_wbuf_init(&w2, 1 << 16);
    sl_rtmp_chunk_write(&w2, 4, 8, 1, 5, payload, 10, 128);
    assert_int_equal(sl_rtmp_chunk_read(&r, w2.data, w2.len, &used, &m), 1);
    assert_int_equal(m.body->len, 10);
    assert_int_equal(m.ts, 5);
    sl_buf_unref(m.body);
    sl_rtmp_chunk_reader_cleanup(&r);
    sl_wbuf_cleanup(&w);
    sl_wbuf_cleanup(&w2);
}

/*
 * Starts a message of declared length len on chunk stream csid and feeds
 * its first chunk (header and `sent` payload bytes, the chunk size on both
 * sides being `sent`) in one read, so that the next chunk may be on another
 * chunk stream. Returns what sl_rtmp_chunk_read returned.
 */
static int start_partial(sl_rtmp_chunk_reader_t *r, uint32_t csid, uint32_t len, uint32_t sent)
{
    static uint8_t payload[1 << 20];
    sl_wbuf_t w;
    sl_wbuf_init(&w, 1 << 21);
    assert_true(len <= sizeof payload);
    assert_int_equal(sl_rtmp_chunk_reader_set_chunk_size(r, sent), 0);
    assert_int_equal(sl_rtmp_chunk_write(&w, csid, 9, 1, 0, payload, len, sent), 0);
    size_t hlen = csid < 64 ? 12 : csid < 320 ? 13 : 14;
    size_t used = 0;
    sl_rtmp_msg_t m;
    int rc = sl_rtmp_chunk_read(r, w.data, hlen + sent, &used, &m);
    if (rc == 1)
        sl_buf_unref(m.body);
    sl_wbuf_cleanup(&w);
    return rc;
}

/* The budget is the sum over chunk streams, not a per-stream limit. */
static void test_budget_sum(void **state)
{
    (void)state;
    sl_byte_pool_t pool = {.limit = 0};
    sl_rtmp_chunk_reader_t r;
    sl_rtmp_chunk_reader_init(&r, 65536, 1 << 20);
    sl_rtmp_chunk_reader_set_budget(&r, 64 * 1024, 0, &pool);
    assert_int_equal(sl_rtmp_chunk_reader_set_chunk_size(&r, 65536), 0);
    /* Three streams of 20,000 bytes each are each far below 64 KB... */
    for (uint32_t csid = 4; csid < 7; csid++)
        assert_int_equal(start_partial(&r, csid, 1 << 20, 20000), 0);
    assert_int_equal(r.held, 60000);
    assert_int_equal(pool.used, 60000);
    assert_int_equal(r.n_partial, 3);
    /* ...but a fourth takes the sum over the connection's budget. */
    assert_int_equal(start_partial(&r, 7, 1 << 20, 20000), SL_ETOOBIG);
    assert_int_equal(r.over, SL_RTMP_OVER_CONN);
    assert_int_equal(r.over_want, 80000);
    assert_int_equal(r.held, 60000); /* nothing taken for the refused one */
    sl_rtmp_chunk_reader_cleanup(&r);
    assert_int_equal(r.held, 0);
    assert_int_equal(pool.used, 0);
}

/* A declared length is not allocated: one chunk of an 8 MB message costs about one chunk. */
static void test_budget_declared_not_allocated(void **state)
{
    (void)state;
    sl_rtmp_chunk_reader_t r;
    sl_rtmp_chunk_reader_init(&r, 65536, 8u << 20);
    int64_t before = sl_alloc_bytes();
    /* header of an 8 MB message and 100 bytes of it (chunk size 128) */
    uint8_t h[12 + 100] = {0x04, 0, 0, 0, 0x80, 0x00, 0x00, 9, 1, 0, 0, 0};
    size_t used;
    sl_rtmp_msg_t m;
    assert_int_equal(sl_rtmp_chunk_read(&r, h, sizeof h, &used, &m), 0);
    assert_int_equal(r.held, 4096);
    assert_true(sl_alloc_bytes() - before < 16 * 1024);
    sl_rtmp_chunk_reader_cleanup(&r);
    assert_int_equal(sl_alloc_bytes(), before);
}

/* Completion, abort, a new header on the stream and cleanup each give bytes back. */
static void test_budget_give_back(void **state)
{
    (void)state;
    sl_byte_pool_t pool = {.limit = 1 << 20};
    sl_rtmp_chunk_reader_t r;
    sl_rtmp_chunk_reader_init(&r, 65536, 1 << 20);
    sl_rtmp_chunk_reader_set_budget(&r, 512 * 1024, 0, &pool);
    assert_int_equal(sl_rtmp_chunk_reader_set_chunk_size(&r, 65536), 0);

    /* abort */
    assert_int_equal(start_partial(&r, 4, 300000, 30000), 0);
    assert_int_equal(pool.used, 30000);
    sl_rtmp_chunk_reader_abort(&r, 4);
    assert_int_equal(r.held, 0);
    assert_int_equal(pool.used, 0);
    assert_int_equal(r.n_partial, 0);

    /* a new type-0 header abandons the half message and its bytes */
    assert_int_equal(start_partial(&r, 5, 300000, 30000), 0);
    assert_int_equal(start_partial(&r, 5, 300000, 10000), 0);
    assert_int_equal(r.held, 10000);
    assert_int_equal(pool.used, 10000);
    assert_int_equal(r.n_partial, 1);

    /* completion: the message leaves the budget with the caller */
    assert_int_equal(start_partial(&r, 6, 5000, 5000), 1);
    assert_int_equal(r.held, 10000);
    assert_int_equal(r.n_partial, 1);

    /* growth in pieces, each chunk in its own read: exact sizes, budget back at the end */
    uint8_t payload[70000];
    fill(payload, sizeof payload, 3);
    sl_wbuf_t w;
    sl_wbuf_init(&w, 1 << 20);
    sl_rtmp_chunk_write(&w, 7, 9, 1, 0, payload, sizeof payload, 65536);
    sl_rtmp_msg_t out[2];
    assert_int_equal(sl_rtmp_chunk_reader_set_chunk_size(&r, 65536), 0);
    assert_int_equal(read_all(&r, w.data, w.len, 333, out, 2), 1);
    assert_int_equal(out[0].body->len, sizeof payload);
    assert_int_equal(out[0].body->cap, sizeof payload);
    assert_memory_equal(out[0].body->data, payload, sizeof payload);
    sl_buf_unref(out[0].body);
    sl_wbuf_cleanup(&w);
    assert_int_equal(r.held, 10000);

    /* cleanup */
    sl_rtmp_chunk_reader_cleanup(&r);
    assert_int_equal(r.held, 0);
    assert_int_equal(pool.used, 0);
}

/* A budget of exactly one message's length still receives it, whatever the fragmentation. */
static void test_budget_exact(void **state)
{
    (void)state;
    static const size_t steps[] = {1, 100, 4096, 1 << 20};
    uint8_t payload[70000];
    fill(payload, sizeof payload, 9);
    sl_wbuf_t w;
    sl_wbuf_init(&w, 1 << 20);
    sl_rtmp_chunk_write(&w, 4, 9, 1, 0, payload, sizeof payload, 128);
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        sl_rtmp_chunk_reader_t r;
        sl_rtmp_chunk_reader_init(&r, 65536, 1 << 20);
        sl_rtmp_chunk_reader_set_budget(&r, sizeof payload, 0, NULL);
        sl_rtmp_msg_t out[1];
        assert_int_equal(read_all(&r, w.data, w.len, steps[s], out, 1), 1);
        assert_memory_equal(out[0].body->data, payload, sizeof payload);
        sl_buf_unref(out[0].body);
        assert_int_equal(r.held, 0);
        sl_rtmp_chunk_reader_cleanup(&r);
    }
    sl_wbuf_cleanup(&w);
}

/* The number of messages in flight and the server-wide pool are limits too. */
static void test_budget_partial_count_and_pool(void **state)
{
    (void)state;
    sl_rtmp_chunk_reader_t r;
    sl_rtmp_chunk_reader_init(&r, 65536, 1 << 20);
    sl_rtmp_chunk_reader_set_budget(&r, 0, 2, NULL);
    assert_int_equal(sl_rtmp_chunk_reader_set_chunk_size(&r, 65536), 0);
    assert_int_equal(start_partial(&r, 4, 1000, 10), 0);
    assert_int_equal(start_partial(&r, 5, 1000, 10), 0);
    assert_int_equal(start_partial(&r, 6, 1000, 10), SL_ETOOBIG);
    assert_int_equal(r.over, SL_RTMP_OVER_PARTIAL);
    sl_rtmp_chunk_reader_cleanup(&r);

    /* Two connections share a pool of 100,000 bytes: the second one's 60,000 do not fit. */
    sl_byte_pool_t pool = {.limit = 100000};
    sl_rtmp_chunk_reader_t a, b;
    sl_rtmp_chunk_reader_init(&a, 65536, 1 << 20);
    sl_rtmp_chunk_reader_init(&b, 65536, 1 << 20);
    sl_rtmp_chunk_reader_set_budget(&a, 1 << 20, 0, &pool);
    sl_rtmp_chunk_reader_set_budget(&b, 1 << 20, 0, &pool);
    assert_int_equal(sl_rtmp_chunk_reader_set_chunk_size(&a, 65536), 0);
    assert_int_equal(sl_rtmp_chunk_reader_set_chunk_size(&b, 65536), 0);
    assert_int_equal(start_partial(&a, 4, 1 << 20, 60000), 0);
    assert_int_equal(start_partial(&b, 4, 1 << 20, 60000), SL_ETOOBIG);
    assert_int_equal(b.over, SL_RTMP_OVER_SERVER);
    assert_int_equal(pool.used, 60000);
    sl_rtmp_chunk_reader_cleanup(&a);
    assert_int_equal(pool.used, 0);
    sl_rtmp_chunk_reader_cleanup(&b);
    sl_rtmp_chunk_reader_init(&b, 65536, 1 << 20);
    sl_rtmp_chunk_reader_set_budget(&b, 1 << 20, 0, &pool);
    assert_int_equal(sl_rtmp_chunk_reader_set_chunk_size(&b, 65536), 0);
    assert_int_equal(start_partial(&b, 4, 1 << 20, 60000), 0);
    sl_rtmp_chunk_reader_cleanup(&b);
    assert_int_equal(pool.used, 0);
}

/* pool_full may give bytes back (closing a bigger holder); the take is retried once. */
static sl_rtmp_chunk_reader_t *evictee;
static int evict_cb(void *ud, int64_t want)
{
    (void)ud;
    (void)want;
    if (!evictee)
        return 0;
    sl_rtmp_chunk_reader_cleanup(evictee);
    evictee = NULL;
    return 1;
}

static void test_budget_pool_full_evicts(void **state)
{
    (void)state;
    sl_byte_pool_t pool = {.limit = 100000};
    sl_rtmp_chunk_reader_t a, b;
    sl_rtmp_chunk_reader_init(&a, 65536, 1 << 20);
    sl_rtmp_chunk_reader_init(&b, 65536, 1 << 20);
    sl_rtmp_chunk_reader_set_budget(&a, 1 << 20, 0, &pool);
    sl_rtmp_chunk_reader_set_budget(&b, 1 << 20, 0, &pool);
    b.pool_full = evict_cb;
    assert_int_equal(start_partial(&a, 4, 1 << 20, 60000), 0);
    evictee = &a;
    assert_int_equal(start_partial(&b, 4, 1 << 20, 60000), 0); /* a was evicted */
    assert_null(evictee);
    assert_int_equal(pool.used, 60000);
    assert_int_equal(b.held, 60000);
    /* nothing left to evict: refused */
    assert_int_equal(start_partial(&b, 5, 1 << 20, 50000), SL_ETOOBIG);
    assert_int_equal(b.over, SL_RTMP_OVER_SERVER);
    sl_rtmp_chunk_reader_cleanup(&b);
    sl_rtmp_chunk_reader_cleanup(&a);
    assert_int_equal(pool.used, 0);
}

/* The shared media encoding + per-subscriber header reads back as the frame. */
static void test_media_shared(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {1, 5, 128, 4096, 20000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        for (uint32_t cs = 128; cs <= 4096; cs *= 32) {
            sl_buf_t *body = sl_buf_new(sizes[i] + 5);
            body->len = sizes[i] + 5;
            fill(body->data, body->len, (uint8_t)i);
            body->data[0] = 0x17; /* AVC keyframe */
            body->data[1] = 1;
            sl_frame_t *f;
            assert_int_equal(sl_frame_new(SL_FLV_VIDEO, 777, body, &f), 0);
            assert_true(f->flags & SL_FRAME_KEY);
            sl_buf_t *enc = sl_rtmp_chunk_media_body(f, cs);
            assert_non_null(enc);
            assert_ptr_equal(enc, sl_rtmp_chunk_media_body(f, cs)); /* cached */
            uint8_t hdr[16];
            size_t hl = sl_rtmp_chunk_media_header(hdr, f, 1, 4242);
            assert_int_equal(hl, 12);
            sl_wbuf_t w;
            sl_wbuf_init(&w, 1 << 20);
            sl_wbuf_put(&w, hdr, hl);
            sl_wbuf_put(&w, enc->data, enc->len);
            sl_rtmp_chunk_reader_t r;
            sl_rtmp_chunk_reader_init(&r, 65536, 1 << 20);
            r.chunk_size = cs;
            sl_rtmp_msg_t m;
            assert_int_equal(read_all(&r, w.data, w.len, 3, &m, 1), 1);
            assert_int_equal(m.type, 9);
            assert_int_equal(m.ts, 4242);
            assert_int_equal(m.body->len, f->body->len);
            assert_memory_equal(m.body->data, f->body->data, f->body->len);
            sl_buf_unref(m.body);
            sl_rtmp_chunk_reader_cleanup(&r);
            sl_wbuf_cleanup(&w);
            /* The cache is set once (it may be shared by several loops):
             * another chunk size on the same frame gets no shared body
             * and the caller writes a private one. */
            uint32_t other = cs == 128 ? 4096 : 128;
            if (f->body->len > other && f->body->len > cs)
                assert_null(sl_rtmp_chunk_media_body(f, other));
            assert_ptr_equal(enc, sl_rtmp_chunk_media_body(f, cs)); /* unchanged */
            sl_frame_unref(f);
        }
    }
    sl_frame_pool_drain();
}

/* The once-guard: a slot claimed by one builder is not claimed again,
 * an abandoned claim can be taken anew, and a published encoding is
 * what every later reader gets. */
static void test_enc_once(void **state)
{
    (void)state;
    sl_buf_t *body = sl_buf_new(300);
    body->len = 300;
    fill(body->data, body->len, 7);
    body->data[0] = 0x27; /* AVC inter frame */
    body->data[1] = 1;
    sl_frame_t *f;
    assert_int_equal(sl_frame_new(SL_FLV_VIDEO, 1, body, &f), 0);
    assert_null(sl_frame_enc_get(f, SL_ENC_RTMP, 128));
    assert_int_equal(sl_frame_enc_claim(f, SL_ENC_RTMP, 128), 1);
    assert_int_equal(sl_frame_enc_claim(f, SL_ENC_RTMP, 128), 0); /* a builder is at work */
    assert_null(sl_rtmp_chunk_media_body(f, 128));                /* so: private path */
    sl_frame_enc_abandon(f, SL_ENC_RTMP);
    sl_buf_t *enc = sl_rtmp_chunk_media_body(f, 128);
    assert_non_null(enc);
    assert_int_equal(enc->len, 300 + 2);
    assert_ptr_equal(sl_frame_enc_get(f, SL_ENC_RTMP, 128), enc);
    assert_int_equal(sl_frame_enc_claim(f, SL_ENC_RTMP, 128), 0);
    sl_frame_unref(f);
    sl_frame_pool_drain();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_sizes),
        cmocka_unit_test(test_header_types),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_media_shared),
        cmocka_unit_test(test_enc_once),
        cmocka_unit_test(test_budget_sum),
        cmocka_unit_test(test_budget_declared_not_allocated),
        cmocka_unit_test(test_budget_give_back),
        cmocka_unit_test(test_budget_exact),
        cmocka_unit_test(test_budget_partial_count_and_pool),
        cmocka_unit_test(test_budget_pool_full_evicts),
    };
    int64_t before = sl_alloc_bytes();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (sl_alloc_bytes() != before) {
        fprintf(stderr, "leak: %lld bytes\n", (long long)(sl_alloc_bytes() - before));
        return 1;
    }
    return rc;
}
