/*
 * RTP header parsing and writing, header extensions, the shared payloads
 * buffer layout, Opus (RFC 7587) and the per-frame RTP cache (see rtp.h).
 *
 * Header (RFC 3550 §5.1): V(2) P(1) X(1) CC(4) | M(1) PT(7) | seq(16) |
 * ts(32) | ssrc(32) | CSRC x CC | [ext: profile(16) length-in-words(16)
 * body] | payload | [padding, its count in the last byte].
 * Extensions (RFC 8285): one-byte form under profile 0xBEDE, elements
 * id(4)|len-1(4) then data, id 0 is a padding byte and id 15 stops the
 * walk; two-byte form under 0x100x (the low 4 bits are app bits), elements
 * id(8) len(8) then data, id 0 is a padding byte.
 */
#include "media/rtp.h"

#include <string.h>

#include "base/alloc.h"
#include "media/flv.h"
#include "media/rtp_aac.h"
#include "media/rtp_h264.h"
#include "media/rtp_h265.h"
#include "media/rtp_vp8.h"
#include "sluice/errors.h"

int sl_rtp_parse(const uint8_t *p, size_t len, sl_rtp_hdr_t *h)
{
    memset(h, 0, sizeof(*h));
    if (len < 12 || len > SL_RTP_MAX_PACKET)
        return SL_EPROTO;
    if ((p[0] >> 6) != 2)
        return SL_EPROTO;
    int has_pad = (p[0] >> 5) & 1;
    h->has_ext = (p[0] >> 4) & 1;
    h->cc = p[0] & 0x0F;
    h->marker = p[1] >> 7;
    h->pt = p[1] & 0x7F;
    h->seq = sl_rd_be16(p + 2);
    h->ts = sl_rd_be32(p + 4);
    h->ssrc = sl_rd_be32(p + 8);
    size_t off = 12;
    if (len - off < (size_t)h->cc * 4)
        return SL_EPROTO;
    h->csrc = p + off;
    off += (size_t)h->cc * 4;
    if (h->has_ext) {
        if (len - off < 4)
            return SL_EPROTO;
        h->ext_profile = sl_rd_be16(p + off);
        size_t words = sl_rd_be16(p + off + 2);
        off += 4;
        if (len - off < words * 4)
            return SL_EPROTO;
        h->ext = p + off;
        h->ext_len = words * 4;
        off += words * 4;
    }
    size_t end = len;
    if (has_pad) {
        /* The count includes itself, so it is never 0, and it may not eat
         * into the header. */
        uint8_t n = p[len - 1];
        if (n == 0 || n > len - off)
            return SL_EPROTO;
        h->padding = n;
        end -= n;
    }
    h->payload = p + off;
    h->payload_len = end - off;
    return 0;
}

int sl_rtp_ext_get(const sl_rtp_hdr_t *h, int id, const uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (!h->has_ext || !h->ext)
        return SL_ENOTFOUND;
    const uint8_t *e = h->ext;
    size_t n = h->ext_len, i = 0;
    if (h->ext_profile == 0xBEDE) {
        if (id < 1 || id > 14)
            return SL_EINVAL;
        while (i < n) {
            int eid = e[i] >> 4;
            size_t elen = (size_t)(e[i] & 0x0F) + 1;
            if (eid == 0) { /* padding byte (its length nibble must be 0, be lenient) */
                i++;
                continue;
            }
            if (eid == 15) /* reserved: stop processing */
                return SL_ENOTFOUND;
            i++;
            if (n - i < elen)
                return SL_EPROTO;
            if (eid == id) {
                *data = e + i;
                *len = elen;
                return 0;
            }
            i += elen;
        }
        return SL_ENOTFOUND;
    }
    if ((h->ext_profile & 0xFFF0) == 0x1000) {
        if (id < 1 || id > 255)
            return SL_EINVAL;
        while (i < n) {
            int eid = e[i];
            if (eid == 0) {
                i++;
                continue;
            }
            if (n - i < 2)
                return SL_EPROTO;
            size_t elen = e[i + 1];
            i += 2;
            if (n - i < elen)
                return SL_EPROTO;
            if (eid == id) {
                *data = e + i;
                *len = elen;
                return 0;
            }
            i += elen;
        }
        return SL_ENOTFOUND;
    }
    return SL_ENOTFOUND;
}

/* Bytes of one-byte-form elements (without the 4-byte block head or padding). */
static size_t ext_body_len(const sl_rtp_ext_out_t *ext)
{
    if (!ext)
        return 0;
    size_t n = 0;
    if (ext->mid_id)
        n += 1 + ext->mid_len;
    if (ext->twcc_id)
        n += 3;
    return n;
}

size_t sl_rtp_hdr_size(const sl_rtp_ext_out_t *ext)
{
    size_t body = ext_body_len(ext);
    if (!body)
        return 12;
    return 12 + 4 + ((body + 3) & ~(size_t)3);
}

int sl_rtp_write_hdr(uint8_t *out, size_t cap, int marker, uint8_t pt, uint16_t seq,
                     uint32_t ts, uint32_t ssrc, const sl_rtp_ext_out_t *ext)
{
    if (pt > 127)
        return SL_EINVAL;
    if (ext) {
        if (ext->mid_id && (ext->mid_id < 1 || ext->mid_id > 14 || !ext->mid ||
                            ext->mid_len < 1 || ext->mid_len > 16))
            return SL_EINVAL;
        if (ext->twcc_id && (ext->twcc_id < 1 || ext->twcc_id > 14))
            return SL_EINVAL;
    }
    size_t need = sl_rtp_hdr_size(ext);
    if (cap < need)
        return SL_ETOOBIG;
    int has_ext = need > 12;
    out[0] = (uint8_t)(0x80 | (has_ext ? 0x10 : 0));
    out[1] = (uint8_t)((marker ? 0x80 : 0) | pt);
    sl_wr_be16(out + 2, seq);
    sl_wr_be32(out + 4, ts);
    sl_wr_be32(out + 8, ssrc);
    if (!has_ext)
        return 12;
    uint8_t *e = out + 16;
    size_t i = 0;
    if (ext->twcc_id) {
        e[i++] = (uint8_t)(ext->twcc_id << 4 | 1);
        sl_wr_be16(e + i, ext->twcc_seq);
        i += 2;
    }
    if (ext->mid_id) {
        e[i++] = (uint8_t)(ext->mid_id << 4 | (ext->mid_len - 1));
        memcpy(e + i, ext->mid, ext->mid_len);
        i += ext->mid_len;
    }
    while (i & 3)
        e[i++] = 0; /* padding elements */
    sl_wr_be16(out + 12, 0xBEDE);
    sl_wr_be16(out + 14, (uint16_t)(i / 4));
    return (int)need;
}

/* ---- payloads buffer ---- */

int sl__rtp_payloads_alloc(size_t payload_bytes, uint32_t n, sl_rtp_payloads_t *out)
{
    memset(out, 0, sizeof(*out));
    if (n == 0 || payload_bytes > SL_RTP_MAX_FRAME + (size_t)n * 16 || n > SL_RTP_MAX_FRAME)
        return SL_ETOOBIG;
    size_t idx_off = (payload_bytes + 3) & ~(size_t)3;
    size_t total = idx_off + (size_t)n * sizeof(sl_rtp_pkt_ref_t) + 8;
    sl_buf_t *b = sl_buf_new(total);
    if (!b)
        return SL_ENOMEM;
    b->len = (uint32_t)total;
    memset(b->data + payload_bytes, 0, total - payload_bytes);
    sl_wr_be32(b->data + total - 8, n);
    sl_wr_be32(b->data + total - 4, (uint32_t)payload_bytes);
    out->buf = b;
    out->pkts = (const sl_rtp_pkt_ref_t *)(void *)(b->data + idx_off);
    out->n = n;
    return 0;
}

int sl_rtp_payloads_view(sl_buf_t *b, sl_rtp_payloads_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!b || b->len < 8 + sizeof(sl_rtp_pkt_ref_t))
        return SL_EINVAL;
    uint32_t n = sl_rd_be32(b->data + b->len - 8);
    uint32_t payload_bytes = sl_rd_be32(b->data + b->len - 4);
    size_t idx_off = ((size_t)payload_bytes + 3) & ~(size_t)3;
    if (n == 0 || idx_off + (size_t)n * sizeof(sl_rtp_pkt_ref_t) + 8 != b->len)
        return SL_EINVAL;
    out->buf = b;
    out->pkts = (const sl_rtp_pkt_ref_t *)(void *)(b->data + idx_off);
    out->n = n;
    return 0;
}

void sl_rtp_payloads_release(sl_rtp_payloads_t *p)
{
    sl_buf_unref(p->buf);
    memset(p, 0, sizeof(*p));
}

/* ---- Opus ---- */

int sl_opus_packetize(const uint8_t *pkt, size_t len, sl_rtp_payloads_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return SL_EINVAL;
    if (len > SL_RTP_MAX_MTU)
        return SL_ETOOBIG;
    int rc = sl__rtp_payloads_alloc(len, 1, out);
    if (rc)
        return rc;
    memcpy(out->buf->data, pkt, len);
    sl_rtp_pkt_ref_t *r = (sl_rtp_pkt_ref_t *)out->pkts;
    r->off = 0;
    r->len = (uint16_t)len;
    r->marker = 0;
    return 0;
}

sl_buf_t *sl_opus_flv_frame_body(const uint8_t *pkt, size_t len)
{
    if (len == 0 || len > SL_RTP_MAX_FRAME)
        return NULL;
    sl_buf_t *b = sl_buf_new(5 + len);
    if (!b)
        return NULL;
    b->data[0] = 0x91; /* soundFormat 9 (ExHeader) | packet type 1 (CodedFrames) */
    sl_wr_be32(b->data + 1, SL_CODEC_OPUS);
    memcpy(b->data + 5, pkt, len);
    b->len = (uint32_t)(5 + len);
    return b;
}

/* ---- the frame cache ---- */

static int rtp_build(sl_frame_t *f, size_t mtu, const uint8_t *config, size_t config_len,
                     sl_rtp_payloads_t *out);

int sl_frame_rtp_payloads(sl_frame_t *f, size_t mtu, const uint8_t *config, size_t config_len,
                          sl_rtp_payloads_t *out)
{
    memset(out, 0, sizeof(*out));
    if (mtu == 0)
        mtu = SL_RTP_DEFAULT_MTU;
    /* Two slots, so that two MTUs (RTSP's 1400 and WebRTC's 1200 on one stream) are each
     * built once per frame; a third MTU is built privately. */
    static const sl_enc_slot_t slots[2] = {SL_ENC_RTP, SL_ENC_RTP_ALT};
    for (int i = 0; i < 2; i++) {
        sl_buf_t *cached = sl_frame_enc_get(f, slots[i], (uint32_t)mtu);
        if (cached)
            return sl_rtp_payloads_view(cached, out);
    }
    if (f->flags & (SL_FRAME_CONFIG | SL_FRAME_META | SL_FRAME_EOS))
        return SL_EINVAL;
    if (f->data_off > f->body->len)
        return SL_EINVAL;
    /* The once-guard: the claimer builds and publishes; anyone else (this MTU is being
     * built by another loop, or both slots hold other MTUs) builds a private copy. */
    int claimed = -1;
    for (int i = 0; i < 2 && claimed < 0; i++) {
        if (sl_frame_enc_claim(f, slots[i], (uint32_t)mtu))
            claimed = i;
        else if (atomic_load_explicit(&f->enc_param[slots[i]], memory_order_acquire) == (uint32_t)mtu)
            break; /* another thread is building this MTU: do not build it twice shared */
    }
    int rc = rtp_build(f, mtu, config, config_len, out);
    if (rc) {
        if (claimed >= 0)
            sl_frame_enc_abandon(f, slots[claimed]);
        return rc;
    }
    if (claimed >= 0) {
        sl_frame_enc_publish(f, slots[claimed], out->buf); /* the cache takes the builder's reference */
        out->priv = 0;
    } else {
        out->priv = 1;
    }
    return 0;
}

void sl_rtp_payloads_done(sl_rtp_payloads_t *p)
{
    if (p->priv)
        sl_buf_unref(p->buf);
    memset(p, 0, sizeof(*p));
}

/* Packetizes f for mtu into a new payloads buffer the caller owns. */
static int rtp_build(sl_frame_t *f, size_t mtu, const uint8_t *config, size_t config_len,
                     sl_rtp_payloads_t *out)
{
    const uint8_t *data = f->body->data + f->data_off;
    size_t len = f->body->len - f->data_off;
    sl_rtp_payloads_t p;
    int rc;
    if (f->kind == SL_FLV_VIDEO && f->codec == SL_CODEC_AVC) {
        int nal_len_size = 4;
        if (config) {
            sl_h264_config_t cfg;
            rc = sl_h264_config_parse(config, config_len, &cfg);
            if (rc)
                return rc;
            nal_len_size = cfg.nal_len_size;
        }
        rc = sl_h264_packetize(data, len, nal_len_size, config, config_len,
                               (f->flags & SL_FRAME_KEY) != 0, mtu, &p);
    } else if (f->kind == SL_FLV_VIDEO && f->codec == SL_CODEC_VP8) {
        rc = sl_vp8_packetize(data, len, mtu, &p);
    } else if (f->kind == SL_FLV_VIDEO && f->codec == SL_CODEC_HEVC) {
        int nal_len_size = 4;
        if (config) {
            nal_len_size = sl_h265_config_nal_len(config, config_len);
            if (nal_len_size < 0)
                return nal_len_size;
        }
        rc = sl_h265_packetize(data, len, nal_len_size, config, config_len,
                               (f->flags & SL_FRAME_KEY) != 0, mtu, &p);
    } else if (f->kind == SL_FLV_AUDIO && f->codec == SL_CODEC_OPUS) {
        rc = sl_opus_packetize(data, len, &p);
    } else if (f->kind == SL_FLV_AUDIO && f->codec == SL_CODEC_AAC) {
        rc = sl_aac_packetize(data, len, mtu, &p);
    } else if (f->kind == SL_FLV_AUDIO &&
               (f->codec == SL_CODEC_FLV_AUDIO(7) || f->codec == SL_CODEC_FLV_AUDIO(8))) {
        rc = sl_g711_packetize(data, len, mtu, &p);
    } else {
        return SL_EINVAL;
    }
    if (rc)
        return rc;
    *out = p;
    return 0;
}
