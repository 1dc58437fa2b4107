/*
 * H.265 RTP payloads (RFC 7798): see rtp_h265.h. The depacketizer mirrors
 * rtp_h264.c's: one growing access unit buffer with a hard cap, the latest
 * parameter sets, and a need-keyframe state that drops everything until an
 * IRAP picture (NAL types 16..21) with its VPS/SPS/PPS.
 */
#include "media/rtp_h265.h"

#include <string.h>

#include "base/alloc.h"
#include "sluice/errors.h"

#define NAL_TYPE(b0) (((b0) >> 1) & 0x3F)
enum { T_VPS = 32, T_SPS = 33, T_PPS = 34, T_AUD = 35, T_AP = 48, T_FU = 49, T_PACI = 50 };

static int is_irap(int t) { return t >= 16 && t <= 21; }
static int is_vcl(int t) { return t < 32; }

/* ---- hvcC ---- */

int sl_h265_hvcc_record(const uint8_t *vps, size_t vps_len, const uint8_t *sps, size_t sps_len,
                        const uint8_t *pps, size_t pps_len, uint8_t *out, size_t cap)
{
    if (!vps || !sps || !pps || vps_len < 2 || sps_len < 15 || pps_len < 2 || vps_len > 0xFFFF ||
        sps_len > 0xFFFF || pps_len > 0xFFFF)
        return SL_EINVAL;
    /* The SPS's first 16 bytes without emulation prevention (00 00 03). */
    uint8_t rb[16];
    size_t n = 0, zeros = 0;
    for (size_t i = 2; i < sps_len && n < sizeof rb; i++) {
        if (zeros >= 2 && sps[i] == 3) {
            zeros = 0;
            continue;
        }
        zeros = sps[i] == 0 ? zeros + 1 : 0;
        rb[n++] = sps[i];
    }
    if (n < 13)
        return SL_EINVAL;
    size_t need = 23 + 3 * 5 + vps_len + sps_len + pps_len;
    if (need > cap)
        return SL_ETOOBIG;
    /* rb[0]: sps_video_parameter_set_id(4) max_sub_layers_minus1(3) nesting(1);
     * rb[1..12]: general profile_space/tier/idc, 32 compat flags, 48 constraint bits, level. */
    out[0] = 1;
    memcpy(out + 1, rb + 1, 12); /* profile byte, compat (4), constraint (6), level */
    out[13] = 0xF0; /* reserved 1111 + min_spatial_segmentation_idc 0 */
    out[14] = 0x00;
    out[15] = 0xFC; /* parallelismType unknown */
    out[16] = 0xFD; /* chroma_format_idc 1 (4:2:0) */
    out[17] = 0xF8; /* bit depth luma 8 */
    out[18] = 0xF8; /* bit depth chroma 8 */
    out[19] = 0;
    out[20] = 0;    /* avgFrameRate unknown */
    /* constantFrameRate 0, numTemporalLayers from the SPS, temporalIdNested, lengthSizeMinusOne 3 */
    out[21] = (uint8_t)(((((rb[0] >> 1) & 7) + 1) << 3) | ((rb[0] & 1) << 2) | 3);
    out[22] = 3;
    size_t o = 23;
    const uint8_t *ps[3] = {vps, sps, pps};
    size_t pl[3] = {vps_len, sps_len, pps_len};
    for (int i = 0; i < 3; i++) {
        out[o++] = (uint8_t)(0x80 | (T_VPS + i)); /* array_completeness */
        sl_wr_be16(out + o, 1);
        sl_wr_be16(out + o + 2, (uint16_t)pl[i]);
        memcpy(out + o + 4, ps[i], pl[i]);
        o += 4 + pl[i];
    }
    return (int)o;
}

int sl_h265_config_nal_len(const uint8_t *rec, size_t len)
{
    if (!rec || len < 23)
        return SL_EPROTO;
    int n = (rec[21] & 3) + 1;
    return n == 3 ? SL_EPROTO : n;
}

/* Finds the first parameter set of type t in an hvcC: 0 with p and n set, or -1. */
static int hvcc_find(const uint8_t *rec, size_t len, int t, const uint8_t **p, size_t *n)
{
    if (!rec || len < 23)
        return -1;
    size_t o = 23;
    for (int a = 0; a < rec[22]; a++) {
        if (o + 3 > len)
            return -1;
        int type = rec[o] & 0x3F;
        int cnt = sl_rd_be16(rec + o + 1);
        o += 3;
        for (int i = 0; i < cnt; i++) {
            if (o + 2 > len)
                return -1;
            size_t l = sl_rd_be16(rec + o);
            if (o + 2 + l > len)
                return -1;
            if (type == t && l > 0) {
                *p = rec + o + 2;
                *n = l;
                return 0;
            }
            o += 2 + l;
        }
    }
    return -1;
}

/* ---- packetizer ---- */

typedef struct {
    const uint8_t *p;
    size_t n;
} nal_t;

int sl_h265_packetize(const uint8_t *au, size_t len, int nal_len_size, const uint8_t *config,
                      size_t config_len, int is_key, size_t mtu, sl_rtp_payloads_t *out)
{
    memset(out, 0, sizeof *out);
    if (mtu == 0)
        mtu = SL_RTP_DEFAULT_MTU;
    if (mtu < SL_RTP_MIN_MTU || mtu > SL_RTP_MAX_MTU)
        return SL_EINVAL;
    if (nal_len_size < 1 || nal_len_size > 4 || nal_len_size == 3)
        return SL_EPROTO;
    if (len > SL_RTP_MAX_FRAME)
        return SL_ETOOBIG;
    static nal_t nals[SL_H265_MAX_NALS + 3]; /* loop thread only */
    int k = 0, has_ps = 0;
    for (size_t o = 0; o < len;) {
        if (len - o < (size_t)nal_len_size)
            return SL_EPROTO;
        size_t l = 0;
        for (int i = 0; i < nal_len_size; i++)
            l = l << 8 | au[o + (size_t)i];
        o += (size_t)nal_len_size;
        if (l > len - o)
            return SL_EPROTO;
        if (l >= 2) {
            int t = NAL_TYPE(au[o]);
            has_ps |= t == T_SPS;
            if (t != T_AUD) {
                if (k >= SL_H265_MAX_NALS)
                    return SL_ETOOBIG;
                nals[3 + k++] = (nal_t){au + o, l};
            }
        }
        o += l;
    }
    if (k == 0)
        return SL_EPROTO;
    int first = 3;
    if (is_key && config && !has_ps) {
        for (int t = T_PPS; t >= T_VPS; t--) {
            const uint8_t *p;
            size_t n;
            if (hvcc_find(config, config_len, t, &p, &n) == 0)
                nals[--first] = (nal_t){p, n};
        }
    }
    int total = 3 + k;
    /* Size the buffer: a NAL unit over mtu becomes FUs of mtu - 3 bytes of payload each. */
    size_t bytes = 0, pkts = 0;
    for (int i = first; i < total; i++) {
        if (nals[i].n <= mtu) {
            bytes += nals[i].n;
            pkts++;
        } else {
            size_t body = nals[i].n - 2, room = mtu - 3, cnt = (body + room - 1) / room;
            bytes += body + 3 * cnt;
            pkts += cnt;
        }
    }
    int rc = sl__rtp_payloads_alloc(bytes, (uint32_t)pkts, out);
    if (rc)
        return rc;
    sl_rtp_pkt_ref_t *r = (sl_rtp_pkt_ref_t *)out->pkts;
    uint8_t *w = out->buf->data;
    size_t at = 0, pi = 0;
    for (int i = first; i < total; i++) {
        const uint8_t *p = nals[i].p;
        size_t n = nals[i].n;
        if (n <= mtu) {
            memcpy(w + at, p, n);
            r[pi++] = (sl_rtp_pkt_ref_t){.off = (uint32_t)at, .len = (uint16_t)n};
            at += n;
            continue;
        }
        int t = NAL_TYPE(p[0]);
        size_t room = mtu - 3;
        for (size_t o = 2; o < n;) {
            size_t take = n - o < room ? n - o : room;
            w[at] = (uint8_t)((p[0] & 0x81) | (T_FU << 1)); /* F, type 49, LayerId high bit */
            w[at + 1] = p[1];                              /* LayerId low, TID */
            w[at + 2] = (uint8_t)((o == 2 ? 0x80 : 0) | (o + take == n ? 0x40 : 0) | t);
            memcpy(w + at + 3, p + o, take);
            r[pi++] = (sl_rtp_pkt_ref_t){.off = (uint32_t)at, .len = (uint16_t)(take + 3)};
            at += take + 3;
            o += take;
        }
    }
    r[pi - 1].marker = 1;
    return 0;
}

/* ---- depacketizer ---- */

struct sl_h265_depack {
    sl_h265_config_cb on_config;
    sl_h265_frame_cb on_frame;
    void *ud;
    sl_wbuf_t au;          /* 4-byte length-prefixed NAL units of the open access unit */
    uint32_t ts;
    int open, broken, in_fu, n_nals, has_irap, n_vcl, need_key;
    size_t fu_off;
    uint8_t ps[3][SL_H265_MAX_PS_LEN]; /* VPS, SPS, PPS */
    size_t ps_len[3];
    uint8_t rec[SL_H265_MAX_RECORD];   /* the last record given to on_config */
    size_t rec_len;
};

sl_h265_depack_t *sl_h265_depack_new(sl_h265_config_cb on_config, sl_h265_frame_cb on_frame, void *ud)
{
    sl_h265_depack_t *d = sl_calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->on_config = on_config;
    d->on_frame = on_frame;
    d->ud = ud;
    sl_wbuf_init(&d->au, SL_RTP_MAX_FRAME);
    d->need_key = 1;
    return d;
}

void sl_h265_depack_free(sl_h265_depack_t *d)
{
    if (!d)
        return;
    sl_wbuf_cleanup(&d->au);
    sl_free(d);
}

int sl_h265_depack_need_keyframe(const sl_h265_depack_t *d) { return d->need_key; }

void sl_h265_depack_loss(sl_h265_depack_t *d)
{
    d->need_key = 1;
    if (d->open)
        d->broken = 1;
}

static void keep_ps(sl_h265_depack_t *d, int t, const uint8_t *p, size_t n)
{
    if (t < T_VPS || t > T_PPS || n < 2 || n > SL_H265_MAX_PS_LEN)
        return;
    memcpy(d->ps[t - T_VPS], p, n);
    d->ps_len[t - T_VPS] = n;
}

void sl_h265_depack_set_ps(sl_h265_depack_t *d, const uint8_t *vps, size_t vps_len, const uint8_t *sps,
                           size_t sps_len, const uint8_t *pps, size_t pps_len)
{
    if (vps)
        keep_ps(d, T_VPS, vps, vps_len);
    if (sps)
        keep_ps(d, T_SPS, sps, sps_len);
    if (pps)
        keep_ps(d, T_PPS, pps, pps_len);
}

static void nal_done(sl_h265_depack_t *d, size_t off)
{
    const uint8_t *nal = d->au.data + off;
    size_t len = d->au.len - off;
    int t = NAL_TYPE(nal[0]);
    keep_ps(d, t, nal, len);
    if (is_vcl(t)) {
        d->n_vcl++;
        d->has_irap |= is_irap(t);
    }
}

static int add_nal(sl_h265_depack_t *d, const uint8_t *nal, size_t len)
{
    if (len < 2 || (nal[0] & 0x80))
        return SL_EPROTO;
    if (d->n_nals >= SL_H265_MAX_NALS)
        return SL_ETOOBIG;
    int rc = sl_wbuf_put_be32(&d->au, (uint32_t)len);
    if (!rc)
        rc = sl_wbuf_put(&d->au, nal, len);
    if (rc)
        return rc;
    d->n_nals++;
    nal_done(d, d->au.len - len);
    return 0;
}

static void au_finish(sl_h265_depack_t *d)
{
    if (d->in_fu)
        d->broken = 1;
    if (d->broken) {
        d->need_key = 1;
        goto done;
    }
    if (d->n_vcl == 0)
        goto done;
    int have_ps = d->ps_len[0] && d->ps_len[1] && d->ps_len[2];
    if (d->need_key && (!d->has_irap || !have_ps))
        goto done;
    if (have_ps) {
        uint8_t rec[SL_H265_MAX_RECORD];
        int n = sl_h265_hvcc_record(d->ps[0], d->ps_len[0], d->ps[1], d->ps_len[1], d->ps[2], d->ps_len[2],
                                    rec, sizeof rec);
        if (n > 0 && ((size_t)n != d->rec_len || memcmp(rec, d->rec, (size_t)n) != 0)) {
            memcpy(d->rec, rec, (size_t)n);
            d->rec_len = (size_t)n;
            if (d->on_config)
                d->on_config(d->ud, d->rec, d->rec_len);
        }
    }
    if (d->has_irap)
        d->need_key = 0;
    if (d->on_frame)
        d->on_frame(d->ud, d->ts, d->au.data, d->au.len, d->has_irap);
done:
    sl_wbuf_reset(&d->au);
    d->open = d->broken = d->in_fu = d->n_nals = d->has_irap = d->n_vcl = 0;
}

static int push_ap(sl_h265_depack_t *d, const uint8_t *p, size_t len)
{
    size_t off = 2;
    int count = 0;
    while (off < len) {
        if (len - off < 2)
            return SL_EPROTO;
        size_t n = sl_rd_be16(p + off);
        off += 2;
        if (n < 2 || n > len - off)
            return SL_EPROTO;
        off += n;
        count++;
    }
    if (count == 0)
        return SL_EPROTO;
    for (off = 2; off < len;) {
        size_t n = sl_rd_be16(p + off);
        int rc = add_nal(d, p + off + 2, n);
        if (rc)
            return rc;
        off += 2 + n;
    }
    return 0;
}

static int push_fu(sl_h265_depack_t *d, const uint8_t *p, size_t len)
{
    if (len < 4)
        return SL_EPROTO;
    int start = p[2] >> 7, end = (p[2] >> 6) & 1, t = p[2] & 0x3F;
    if ((start && end) || t == T_AP || t == T_FU || t == T_PACI)
        return SL_EPROTO;
    int rc;
    if (start) {
        if (d->in_fu)
            return SL_EPROTO;
        if (d->n_nals >= SL_H265_MAX_NALS)
            return SL_ETOOBIG;
        d->fu_off = d->au.len;
        rc = sl_wbuf_put_be32(&d->au, 0);
        if (!rc)
            rc = sl_wbuf_put_u8(&d->au, (uint8_t)((p[0] & 0x81) | (t << 1)));
        if (!rc)
            rc = sl_wbuf_put_u8(&d->au, p[1]);
        if (rc)
            return rc;
        d->in_fu = 1;
        d->n_nals++;
    } else if (!d->in_fu || NAL_TYPE(d->au.data[d->fu_off + 4]) != t) {
        return SL_EPROTO;
    }
    rc = sl_wbuf_put(&d->au, p + 3, len - 3);
    if (rc)
        return rc;
    if (end) {
        d->in_fu = 0;
        sl_wr_be32(d->au.data + d->fu_off, (uint32_t)(d->au.len - d->fu_off - 4));
        nal_done(d, d->fu_off + 4);
    }
    return 0;
}

int sl_h265_depack_push(sl_h265_depack_t *d, const sl_rtp_hdr_t *h)
{
    if (h->payload_len == 0)
        return 0;
    if (d->open && h->ts != d->ts)
        au_finish(d);
    if (!d->open) {
        d->open = 1;
        d->ts = h->ts;
    }
    int rc = 0;
    if (!d->broken) {
        const uint8_t *p = h->payload;
        if (h->payload_len < 2 || (p[0] & 0x80)) {
            rc = SL_EPROTO;
        } else {
            int t = NAL_TYPE(p[0]);
            if (t == T_AP)
                rc = d->in_fu ? SL_EPROTO : push_ap(d, p, h->payload_len);
            else if (t == T_FU)
                rc = push_fu(d, p, h->payload_len);
            else if (t == T_PACI)
                rc = SL_EPROTO;
            else
                rc = d->in_fu ? SL_EPROTO : add_nal(d, p, h->payload_len);
        }
        if (rc)
            d->broken = 1;
    }
    if (h->marker)
        au_finish(d);
    return rc;
}

/* ---- FLV bodies ---- */

sl_buf_t *sl_h265_flv_config_body(const uint8_t *hvcc, size_t len)
{
    if (!hvcc || len == 0 || len > SL_RTP_MAX_FRAME)
        return NULL;
    sl_buf_t *b = sl_buf_new(5 + len);
    if (!b)
        return NULL;
    b->data[0] = 0x90; /* ExHeader | keyframe | SequenceStart */
    sl_wr_be32(b->data + 1, SL_FOURCC('h', 'v', 'c', '1'));
    memcpy(b->data + 5, hvcc, len);
    b->len = (uint32_t)(5 + len);
    return b;
}

sl_buf_t *sl_h265_flv_frame_body(const uint8_t *au, size_t len, int is_key, int32_t cts_ms)
{
    if (!au || len == 0 || len > SL_RTP_MAX_FRAME)
        return NULL;
    sl_buf_t *b = sl_buf_new(8 + len);
    if (!b)
        return NULL;
    b->data[0] = is_key ? 0x91 : 0xA1; /* ExHeader | frame type | CodedFrames */
    sl_wr_be32(b->data + 1, SL_FOURCC('h', 'v', 'c', '1'));
    sl_wr_be24(b->data + 5, (uint32_t)cts_ms & 0xFFFFFF);
    memcpy(b->data + 8, au, len);
    b->len = (uint32_t)(8 + len);
    return b;
}
