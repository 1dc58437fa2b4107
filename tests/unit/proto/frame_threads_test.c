/*
 * Frames and buffers shared by several threads, as with server.workers > 1
 * (docs/internals/threads.md): threads that start together take and drop
 * references to the same frames and ask for the same RTMP chunked body at
 * once. Every thread must read the right bytes (the shared encoding, or a
 * private one when it lost the once-guard), each frame's encoding is
 * built at most once, and every frame and buffer is freed exactly once
 * (the allocator's counters return to where they started). Under
 * ThreadSanitizer (make test-tsan) this is also the data-race check of
 * sl_frame_ref/unref, sl_buf_ref/unref and the encoding cache. The RTP
 * slots alike: threads ask for the RTP payloads of the same VP8 frames at
 * once, three of them for one MTU and one for another (each MTU is built
 * into a slot of its own, or privately by a thread that found its MTU
 * still being built); everyone gets the right packets.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "media/frame.h"
#include "media/rtp.h"
#include "media/rtp_vp8.h"
#include "proto/rtmp/rtmp_chunk.h"
#include "sluice/errors.h"

#define N_THREADS 4
#define N_FRAMES 200
#define CHUNK 128

static sl_frame_t *g_frames[N_FRAMES];
static pthread_barrier_t g_start;
static sl_buf_t *g_seen[N_THREADS][N_FRAMES]; /* shared body each thread got, or NULL */
static const sl_buf_t *g_body[N_FRAMES];      /* each frame's body (compared, never read) */

/* The chunked body every thread must see for frame i (the reference). */
static sl_buf_t *expected_body(const sl_frame_t *f)
{
    sl_wbuf_t w;
    sl_wbuf_init(&w, SL_BUF_MAX);
    uint8_t hdr[16];
    size_t hl = sl_rtmp_chunk_media_header(hdr, f, 1, 0);
    assert_int_equal(sl_rtmp_chunk_write(&w, sl_rtmp_frame_csid(f), f->kind, 1, 0, f->body->data,
                                         f->body->len, CHUNK), 0);
    sl_buf_t *b = sl_buf_from(w.data + hl, w.len - hl); /* the body without the type-0 header */
    sl_wbuf_cleanup(&w);
    return b;
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    pthread_barrier_wait(&g_start);
    for (int i = 0; i < N_FRAMES; i++) {
        sl_frame_t *f = g_frames[i]; /* the reference main took for this thread */
        sl_buf_ref(f->body);
        sl_buf_t *enc = sl_rtmp_chunk_media_body(f, CHUNK);
        g_seen[id][i] = enc;
        if (enc)
            sl_buf_ref(enc); /* kept past the frame: the last holder frees it */
        sl_buf_unref(f->body);
        sl_frame_unref(f); /* the main thread may no longer hold it */
    }
    sl_frame_pool_drain(); /* this thread's recycled headers */
    return NULL;
}

static void test_shared_frames(void **state)
{
    (void)state;
    int64_t bytes0 = sl_alloc_bytes();
    sl_buf_t *want[N_FRAMES];
    for (int i = 0; i < N_FRAMES; i++) {
        uint32_t len = 100 + (uint32_t)i * 37;
        sl_buf_t *body = sl_buf_new(len);
        body->len = len;
        for (uint32_t k = 0; k < len; k++)
            body->data[k] = (uint8_t)(k * 7 + (uint32_t)i);
        body->data[0] = 0x27; /* AVC inter frame */
        body->data[1] = 1;
        assert_int_equal(sl_frame_new(SL_FLV_VIDEO, (uint32_t)i, body, &g_frames[i]), 0);
        want[i] = expected_body(g_frames[i]);
        g_body[i] = g_frames[i]->body;
        for (int t = 0; t < N_THREADS; t++)
            sl_frame_ref(g_frames[i]); /* one per thread, handed over with the frame */
    }
    pthread_t th[N_THREADS];
    assert_int_equal(pthread_barrier_init(&g_start, NULL, N_THREADS + 1), 0);
    for (int t = 0; t < N_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t), 0);
    pthread_barrier_wait(&g_start);
    /* The main thread drops its references while the workers run: the
     * last one to let go (any thread) frees the frame. */
    for (int i = 0; i < N_FRAMES; i++)
        sl_frame_unref(g_frames[i]);
    for (int t = 0; t < N_THREADS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    pthread_barrier_destroy(&g_start);

    int shared = 0;
    for (int i = 0; i < N_FRAMES; i++) {
        sl_buf_t *one = NULL;
        for (int t = 0; t < N_THREADS; t++) {
            sl_buf_t *b = g_seen[t][i];
            if (!b)
                continue; /* lost the claim to a builder still at work: private path */
            if (b != g_body[i]) {
                /* at most one shared encoding per frame */
                if (one)
                    assert_ptr_equal(b, one);
                one = b;
            }
            assert_int_equal(b->len, want[i]->len);
            assert_memory_equal(b->data, want[i]->data, want[i]->len);
            shared++;
        }
        for (int t = 0; t < N_THREADS; t++)
            sl_buf_unref(g_seen[t][i]);
        sl_buf_unref(want[i]);
    }
    assert_true(shared > N_FRAMES); /* most lookups found the shared body */
    sl_frame_pool_drain();
    assert_int_equal(sl_frame_count(), 0);
    assert_int_equal(sl_alloc_bytes(), bytes0);
}

/* ---- the RTP slot ---- */

#define MTU_SHARED 1200
#define MTU_OTHER 500
static int g_rtp_bad[N_THREADS], g_rtp_priv[N_THREADS];
static sl_rtp_payloads_t g_want[2][N_FRAMES]; /* [0] shared MTU, [1] the other */

static int same_payloads(const sl_rtp_payloads_t *a, const sl_rtp_payloads_t *b)
{
    if (a->n != b->n)
        return 0;
    for (uint32_t k = 0; k < a->n; k++)
        if (a->pkts[k].len != b->pkts[k].len || a->pkts[k].marker != b->pkts[k].marker ||
            memcmp(a->buf->data + a->pkts[k].off, b->buf->data + b->pkts[k].off, a->pkts[k].len))
            return 0;
    return 1;
}

static void *rtp_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    int other = id == N_THREADS - 1;
    pthread_barrier_wait(&g_start);
    for (int i = 0; i < N_FRAMES; i++) {
        sl_frame_t *f = g_frames[i];
        sl_rtp_payloads_t p;
        if (sl_frame_rtp_payloads(f, other ? MTU_OTHER : MTU_SHARED, NULL, 0, &p) != 0) {
            g_rtp_bad[id]++;
        } else {
            if (!same_payloads(&p, &g_want[other][i]))
                g_rtp_bad[id]++;
            g_rtp_priv[id] += p.priv;
            sl_rtp_payloads_done(&p);
        }
        sl_frame_unref(f);
    }
    sl_frame_pool_drain();
    return NULL;
}

static void test_shared_rtp_payloads(void **state)
{
    (void)state;
    int64_t bytes0 = sl_alloc_bytes();
    static uint8_t vp8[4000];
    for (int i = 0; i < N_FRAMES; i++) {
        size_t len = 1000 + (size_t)i * 13;
        for (size_t k = 0; k < len; k++)
            vp8[k] = (uint8_t)(k * 5 + (size_t)i);
        vp8[0] = 0x10;
        assert_int_equal(sl_frame_new(SL_FLV_VIDEO, (uint32_t)i, sl_vp8_flv_frame_body(vp8, len, 1), &g_frames[i]),
                         0);
        assert_int_equal(sl_vp8_packetize(vp8, len, MTU_SHARED, &g_want[0][i]), 0);
        assert_int_equal(sl_vp8_packetize(vp8, len, MTU_OTHER, &g_want[1][i]), 0);
        for (int t = 0; t < N_THREADS; t++)
            sl_frame_ref(g_frames[i]);
    }
    pthread_t th[N_THREADS];
    assert_int_equal(pthread_barrier_init(&g_start, NULL, N_THREADS + 1), 0);
    for (int t = 0; t < N_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, rtp_worker, (void *)(intptr_t)t), 0);
    pthread_barrier_wait(&g_start);
    for (int i = 0; i < N_FRAMES; i++)
        sl_frame_unref(g_frames[i]);
    for (int t = 0; t < N_THREADS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    pthread_barrier_destroy(&g_start);
    int priv_shared_mtu = 0;
    for (int t = 0; t < N_THREADS; t++) {
        assert_int_equal(g_rtp_bad[t], 0);
        if (t < N_THREADS - 1)
            priv_shared_mtu += g_rtp_priv[t];
    }
    /* Not every lookup of the shared MTU was private: the slots were shared. */
    assert_true(priv_shared_mtu < N_FRAMES * (N_THREADS - 1));
    for (int i = 0; i < N_FRAMES; i++) {
        sl_rtp_payloads_release(&g_want[0][i]);
        sl_rtp_payloads_release(&g_want[1][i]);
    }
    sl_frame_pool_drain();
    assert_int_equal(sl_frame_count(), 0);
    assert_int_equal(sl_alloc_bytes(), bytes0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_frames),
        cmocka_unit_test(test_shared_rtp_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
