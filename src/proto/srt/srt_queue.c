/*
 * The thread -> loop frame queue of SRT publishers and MPEG-TS/UDP ingest
 * (see srt_internal.h), and the small FLV-body predicates its drop policy
 * needs.
 */
#include <string.h>

#include "base/alloc.h"
#include "media/flv.h"
#include "media/frame.h"
#include "proto/srt/srt_internal.h"

int sl__srt_q_init(sl__srt_q_t *q, size_t max_bytes)
{
    memset(q, 0, sizeof *q);
    sl_list_init(&q->items);
    q->max_bytes = max_bytes;
    return uv_mutex_init(&q->mu);
}

int sl__srt_body_is_config(uint8_t kind, const sl_buf_t *body)
{
    if (body->len < 2)
        return 0;
    uint8_t b0 = body->data[0];
    if (kind == SL_FLV_VIDEO)
        return (b0 & 0x80) ? (b0 & 0x0f) == 0 : body->data[1] == 0;
    /* audio: legacy AAC (sound format 10) packet type 0; E-RTMP audio (format 9) SequenceStart */
    if ((b0 >> 4) == 10)
        return body->data[1] == 0;
    if ((b0 >> 4) == 9)
        return (b0 & 0x0f) == 0;
    return 0;
}

int sl__srt_body_is_key(const sl_buf_t *body)
{
    return body->len >= 1 && ((body->data[0] >> 4) & 7) == 1;
}

int sl__srt_q_push(sl__srt_q_t *q, uint8_t kind, int64_t dts_ms, sl_buf_t *body)
{
    int config = sl__srt_body_is_config(kind, body);
    sl__srt_qitem_t *it = sl_malloc(sizeof *it);
    uv_mutex_lock(&q->mu);
    int drop = !it;
    if (!drop && !config) {
        if (q->bytes + body->len > q->max_bytes) {
            drop = 1;
            q->drop_to_key = 1;
        } else if (q->drop_to_key) {
            if (kind == SL_FLV_VIDEO && sl__srt_body_is_key(body))
                q->drop_to_key = 0;
            else
                drop = 1;
        }
    }
    if (drop) {
        q->dropped++;
        uv_mutex_unlock(&q->mu);
        sl_free(it);
        sl_buf_unref(body);
        return 0;
    }
    it->kind = kind;
    it->dts_ms = dts_ms;
    it->body = body;
    sl_list_push_back(&q->items, &it->link);
    q->bytes += body->len;
    uv_mutex_unlock(&q->mu);
    return 1;
}

void sl__srt_q_take(sl__srt_q_t *q, sl_list_t *out)
{
    uv_mutex_lock(&q->mu);
    while (!sl_list_empty(&q->items)) {
        sl_list_t *l = q->items.next;
        sl_list_remove(l);
        sl_list_push_back(out, l);
    }
    q->bytes = 0;
    uv_mutex_unlock(&q->mu);
}

void sl__srt_q_free_list(sl_list_t *l)
{
    while (!sl_list_empty(l)) {
        sl__srt_qitem_t *it = sl_container_of(l->next, sl__srt_qitem_t, link);
        sl_list_remove(&it->link);
        sl_buf_unref(it->body);
        sl_free(it);
    }
}

void sl__srt_q_cleanup(sl__srt_q_t *q)
{
    sl__srt_q_free_list(&q->items);
    uv_mutex_destroy(&q->mu);
}

uint64_t sl__srt_push_items(sl_stream_t *st, sl_audio_bridge_t **ab, uv_loop_t *loop,
                            const sl_log_ctx_t *log, sl_list_t *items)
{
    uint64_t bytes = 0;
    while (!sl_list_empty(items)) {
        sl__srt_qitem_t *it = sl_container_of(items->next, sl__srt_qitem_t, link);
        sl_list_remove(&it->link);
        bytes += it->body->len;
        sl_frame_t *f;
        if (st && sl_frame_new(it->kind, (uint32_t)(it->dts_ms < 0 ? 0 : it->dts_ms), it->body, &f) == 0) {
            /* Opus (or any audio but AAC): HLS and RTMP need AAC, which the
             * bridge makes while they are there; RTSP and WHEP players get
             * the Opus as is from its side path. */
            if (f->kind == SL_FLV_AUDIO && f->codec != SL_CODEC_AAC && ab && !*ab && loop)
                (void)sl_audio_bridge_new(loop, st, log, ab);
            if (f->kind == SL_FLV_AUDIO && ab && *ab)
                sl_audio_bridge_push(*ab, f);
            else
                sl_stream_push(st, f);
            sl_frame_unref(f);
        } else if (!st) {
            sl_buf_unref(it->body);
        }
        sl_free(it);
    }
    return bytes;
}
