/*
 * Frames (see frame.h). Frame headers are recycled through a small free
 * list so that the steady state of a live stream allocates only payloads.
 * The list is per thread (thread-local, no lock): a frame made on the main
 * loop and last released on a worker loop goes to that worker's list, and
 * comes back out of it as a frame made there (a worker that publishes) or
 * is freed when the worker ends. The live count is shared and atomic.
 */
#include "media/frame.h"

#include <string.h>

#include "base/alloc.h"
#include "sluice/errors.h"

#define FRAME_POOL_MAX 1024

static _Thread_local sl_frame_t *g_pool[FRAME_POOL_MAX];
static _Thread_local int g_pool_n;
static _Atomic int64_t g_live;

static sl_frame_t *frame_alloc(void)
{
    if (g_pool_n > 0)
        return g_pool[--g_pool_n];
    return sl_malloc(sizeof(sl_frame_t));
}

int sl_frame_new(uint8_t kind, uint32_t dts_ms, sl_buf_t *body, sl_frame_t **out)
{
    *out = NULL;
    sl_flv_info_t info;
    memset(&info, 0, sizeof(info));
    int rc = 0;
    if (kind == SL_FLV_VIDEO)
        rc = sl_flv_parse_video(body->data, body->len, &info);
    else if (kind == SL_FLV_AUDIO)
        rc = sl_flv_parse_audio(body->data, body->len, &info);
    else if (kind != SL_FLV_DATA)
        rc = SL_EINVAL;
    if (rc) {
        sl_buf_unref(body);
        return rc;
    }
    sl_frame_t *f = frame_alloc();
    if (!f) {
        sl_buf_unref(body);
        return SL_ENOMEM;
    }
    memset(f, 0, sizeof(*f)); /* not shared yet: the plain stores are ordered by the push */
    atomic_init(&f->refs, 1);
    f->kind = kind;
    f->codec = info.codec;
    f->dts_ms = dts_ms;
    f->cts_ms = info.cts_ms;
    f->data_off = (uint16_t)info.data_off;
    f->body = body;
    if (info.is_key && !info.is_info)
        f->flags |= SL_FRAME_KEY;
    if (info.is_config)
        f->flags |= SL_FRAME_CONFIG;
    if (info.is_eos)
        f->flags |= SL_FRAME_EOS;
    atomic_fetch_add_explicit(&g_live, 1, memory_order_relaxed);
    *out = f;
    return 0;
}

void sl_frame_unref(sl_frame_t *f)
{
    if (!f)
        return;
    uint32_t before = atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel);
    SL_ASSERT(before > 0); /* refs never go below zero: one unref per owner */
    if (before != 1)
        return;
    sl_buf_unref(f->body);
    for (int i = 0; i < SL_ENC_MAX; i++)
        sl_buf_unref(atomic_load_explicit(&f->enc[i], memory_order_relaxed));
    atomic_fetch_sub_explicit(&g_live, 1, memory_order_relaxed);
    if (g_pool_n < FRAME_POOL_MAX)
        g_pool[g_pool_n++] = f;
    else
        sl_free(f);
}

int64_t sl_frame_count(void) { return atomic_load_explicit(&g_live, memory_order_relaxed); }

void sl_frame_pool_drain(void)
{
    while (g_pool_n > 0)
        sl_free(g_pool[--g_pool_n]);
}
