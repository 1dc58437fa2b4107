/*
 * VP8 RTP payload format (see rtp_vp8.h).
 *
 * Payload descriptor (RFC 7741 §4.2): X R N S R PID(3); if X, a byte
 * I L T K RSV(4); if I, a picture id of 7 bits, or 15 when its first bit
 * (M) is set; if L, TL0PICIDX; if T or K, TID(2) Y(1) KEYIDX(5). The VP8
 * payload follows. A frame begins where S is set and PID is 0; the first
 * byte of the frame (the frame tag) has the inverse keyframe bit in bit 0.
 */
#include "media/rtp_vp8.h"

#include <string.h>

#include "base/alloc.h"
#include "media/flv.h"
#include "sluice/errors.h"

int sl_vp8_packetize(const uint8_t *frame, size_t len, size_t mtu, sl_rtp_payloads_t *out)
{
    memset(out, 0, sizeof(*out));
    if (mtu == 0)
        mtu = SL_RTP_DEFAULT_MTU;
    if (len == 0 || mtu < SL_RTP_MIN_MTU || mtu > SL_RTP_MAX_MTU)
        return SL_EINVAL;
    if (len > SL_RTP_MAX_FRAME)
        return SL_ETOOBIG;
    size_t room = mtu - 1;
    size_t k = (len + room - 1) / room;
    size_t chunk = (len + k - 1) / k;
    int rc = sl__rtp_payloads_alloc(len + k, (uint32_t)k, out);
    if (rc)
        return rc;
    sl_rtp_pkt_ref_t *pkts = (sl_rtp_pkt_ref_t *)out->pkts;
    uint8_t *o = out->buf->data;
    size_t done = 0, off = 0;
    for (size_t i = 0; i < k; i++) {
        size_t take = len - done < chunk ? len - done : chunk;
        o[off] = i == 0 ? 0x10 : 0x00; /* S on the first packet, partition 0 */
        memcpy(o + off + 1, frame + done, take);
        pkts[i] = (sl_rtp_pkt_ref_t){(uint32_t)off, (uint16_t)(take + 1), i == k - 1, 0};
        off += take + 1;
        done += take;
    }
    return 0;
}

struct sl_vp8_depack {
    sl_vp8_frame_cb on_frame; /* borrowed */
    void *ud;
    sl_wbuf_t frame;  /* the frame being collected */
    int open;         /* a frame is being collected */
    uint32_t ts;      /* its RTP timestamp */
    int broken;       /* it lost something */
    int need_key;     /* drop until a keyframe */
};

sl_vp8_depack_t *sl_vp8_depack_new(sl_vp8_frame_cb on_frame, void *ud)
{
    sl_vp8_depack_t *d = sl_calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->on_frame = on_frame;
    d->ud = ud;
    sl_wbuf_init(&d->frame, SL_RTP_MAX_FRAME);
    d->need_key = 1;
    return d;
}

void sl_vp8_depack_free(sl_vp8_depack_t *d)
{
    if (!d)
        return;
    sl_wbuf_cleanup(&d->frame);
    sl_free(d);
}

int sl_vp8_depack_need_keyframe(const sl_vp8_depack_t *d) { return d->need_key; }

void sl_vp8_depack_loss(sl_vp8_depack_t *d)
{
    /* Whatever was lost (part of this frame or a whole frame before the next),
     * the decoder's references are gone until a keyframe. */
    d->need_key = 1;
    if (d->open)
        d->broken = 1;
}

static void frame_finish(sl_vp8_depack_t *d)
{
    if (d->broken || d->frame.len < 3) {
        d->need_key = 1;
    } else {
        int is_key = (d->frame.data[0] & 1) == 0;
        if (is_key && d->frame.len < 10)
            d->need_key = 1; /* a keyframe too short for its header */
        else if (!d->need_key || is_key) {
            d->need_key = 0;
            if (d->on_frame)
                d->on_frame(d->ud, d->ts, d->frame.data, d->frame.len, is_key);
        }
    }
    sl_wbuf_reset(&d->frame);
    d->open = 0;
    d->broken = 0;
}

/* Length of the payload descriptor, or 0 when it is malformed. */
static size_t descriptor_len(const uint8_t *p, size_t len)
{
    size_t off = 1;
    if (p[0] & 0x80) {
        if (len < 2)
            return 0;
        uint8_t x = p[1];
        off = 2;
        if (x & 0x80) { /* I: picture id */
            if (len <= off)
                return 0;
            off += (p[off] & 0x80) ? 2 : 1;
        }
        if (x & 0x40) /* L: TL0PICIDX */
            off++;
        if (x & 0x30) /* T or K: TID/Y/KEYIDX */
            off++;
    }
    return off < len ? off : 0; /* a payload needs at least one byte of frame */
}

int sl_vp8_depack_push(sl_vp8_depack_t *d, const sl_rtp_hdr_t *h)
{
    if (h->payload_len == 0)
        return 0; /* padding only */
    if (d->open && h->ts != d->ts)
        frame_finish(d);
    int rc = 0;
    const uint8_t *p = h->payload;
    size_t dl = descriptor_len(p, h->payload_len);
    int start = dl && (p[0] & 0x10) && (p[0] & 0x07) == 0;
    if (!d->open) {
        d->open = 1;
        d->ts = h->ts;
        if (!start)
            d->broken = 1; /* its first packet was lost */
    } else if (start && !d->broken) {
        rc = SL_EPROTO; /* a second start inside one frame */
        d->broken = 1;
    }
    if (!dl) {
        rc = SL_EPROTO;
        d->broken = 1;
    }
    if (!d->broken) {
        rc = sl_wbuf_put(&d->frame, p + dl, h->payload_len - dl);
        if (rc)
            d->broken = 1;
    }
    if (h->marker)
        frame_finish(d);
    return rc;
}

sl_buf_t *sl_vp8_flv_frame_body(const uint8_t *frame, size_t len, int is_key)
{
    if (len == 0 || len > SL_RTP_MAX_FRAME)
        return NULL;
    sl_buf_t *b = sl_buf_new(5 + len);
    if (!b)
        return NULL;
    b->data[0] = is_key ? 0x91 : 0xA1; /* ex header | frame type | CodedFrames */
    sl_wr_be32(b->data + 1, SL_CODEC_VP8);
    memcpy(b->data + 5, frame, len);
    b->len = (uint32_t)(5 + len);
    return b;
}
