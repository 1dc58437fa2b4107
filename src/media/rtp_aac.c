/*
 * AAC (RFC 3640 mpeg4-generic, AAC-hbr) and G.711 RTP payloads: see
 * rtp_aac.h. The AU-header section is read with a bounded bit reader that
 * never reads past the header length the packet states, and that length
 * never past the payload.
 */
#include "media/rtp_aac.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/str.h"
#include "sluice/errors.h"

/* ---- fmtp ---- */

/* Reads a small decimal value of "key=value" into *out. 0 or SL_EPROTO. */
static int small_int(const char *v, size_t n, int max, int *out)
{
    int x = 0;
    if (n == 0 || n > 3)
        return SL_EPROTO;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)v[i]))
            return SL_EPROTO;
        x = x * 10 + (v[i] - '0');
    }
    if (x > max)
        return SL_EPROTO;
    *out = x;
    return 0;
}

int sl_aac_fmtp_parse(const char *fmtp, sl_aac_fmtp_t *out)
{
    memset(out, 0, sizeof *out);
    out->sizelength = -1;
    const char *p = fmtp ? fmtp : "";
    while (*p) {
        while (*p == ' ' || *p == ';' || *p == '\t')
            p++;
        if (!*p)
            break;
        const char *key = p, *eq = NULL;
        while (*p && *p != ';') {
            if (*p == '=' && !eq)
                eq = p;
            p++;
        }
        if (!eq)
            continue;
        size_t kn = (size_t)(eq - key), vn = (size_t)(p - eq - 1);
        const char *v = eq + 1;
        while (vn && v[vn - 1] == ' ')
            vn--;
        if (kn == 4 && !strncasecmp(key, "mode", 4)) {
            if (vn != 7 || strncasecmp(v, "AAC-hbr", 7))
                return SL_EPROTO;
        } else if (kn == 10 && !strncasecmp(key, "sizelength", 10)) {
            if (small_int(v, vn, 16, &out->sizelength) || out->sizelength < 1)
                return SL_EPROTO;
        } else if (kn == 11 && !strncasecmp(key, "indexlength", 11)) {
            if (small_int(v, vn, 8, &out->indexlength))
                return SL_EPROTO;
        } else if (kn == 16 && !strncasecmp(key, "indexdeltalength", 16)) {
            if (small_int(v, vn, 8, &out->indexdeltalength))
                return SL_EPROTO;
        } else if (kn == 6 && !strncasecmp(key, "config", 6)) {
            if (vn < 4 || vn % 2 || vn / 2 > SL_AAC_MAX_CONFIG ||
                sl_hex_decode(v, vn, out->config, sizeof out->config) != (int)(vn / 2))
                return SL_EPROTO;
            out->config_len = vn / 2;
        }
    }
    return out->sizelength > 0 ? 0 : SL_EPROTO;
}

int sl_aac_asc_info(const uint8_t *asc, size_t len, uint32_t *rate, int *channels)
{
    static const uint32_t rates[13] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                       22050, 16000, 12000, 11025, 8000, 7350};
    if (!asc || len < 2)
        return SL_EPROTO;
    int aot = asc[0] >> 3;
    if (aot == 31)
        return SL_EPROTO; /* escaped object types: not AAC as RTSP carries it */
    int idx = ((asc[0] & 7) << 1) | (asc[1] >> 7);
    if (idx >= 13)
        return SL_EPROTO; /* 15 = explicit 24-bit rate: not produced by the encoders of interest */
    *rate = rates[idx];
    *channels = (asc[1] >> 3) & 0xF;
    return 0;
}

/* ---- depacketizer ---- */

struct sl_aac_depack {
    sl_aac_fmtp_t fmtp;
    uint32_t spa;            /* samples per access unit */
    sl_aac_frame_cb on_frame;
    void *ud;
    uint8_t frag[SL_AAC_MAX_AU]; /* a fragmented access unit being collected */
    size_t frag_len, frag_size;  /* collected / announced */
    uint32_t frag_ts;
    int in_frag;
};

sl_aac_depack_t *sl_aac_depack_new(const sl_aac_fmtp_t *fmtp, uint32_t samples_per_au,
                                   sl_aac_frame_cb on_frame, void *ud)
{
    sl_aac_depack_t *d = sl_calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->fmtp = *fmtp;
    d->spa = samples_per_au ? samples_per_au : 1024;
    d->on_frame = on_frame;
    d->ud = ud;
    return d;
}

void sl_aac_depack_free(sl_aac_depack_t *d)
{
    sl_free(d);
}

void sl_aac_depack_loss(sl_aac_depack_t *d)
{
    d->in_frag = 0;
    d->frag_len = 0;
}

/* Reads n (<= 16) bits at bit offset *pos of p, which holds nbits bits. -1 past the end. */
static int bits(const uint8_t *p, size_t nbits, size_t *pos, int n)
{
    if (n == 0)
        return 0;
    if (*pos + (size_t)n > nbits)
        return -1;
    int v = 0;
    for (int i = 0; i < n; i++, (*pos)++)
        v = (v << 1) | ((p[*pos >> 3] >> (7 - (*pos & 7))) & 1);
    return v;
}

int sl_aac_depack_push(sl_aac_depack_t *d, const sl_rtp_hdr_t *h)
{
    const uint8_t *p = h->payload;
    size_t len = h->payload_len;
    if (len == 0)
        return 0;
    if (len < 2)
        goto bad;
    size_t hbits = sl_rd_be16(p), hbytes = (hbits + 7) / 8;
    if (hbits == 0 || 2 + hbytes > len)
        goto bad;
    const uint8_t *hp = p + 2, *data = p + 2 + hbytes;
    size_t data_len = len - 2 - hbytes;
    int sizes[SL_AAC_MAX_AUS], n = 0;
    size_t pos = 0;
    while (pos < hbits) {
        if (n == SL_AAC_MAX_AUS) {
            sl_aac_depack_loss(d);
            return SL_ETOOBIG;
        }
        int sz = bits(hp, hbits, &pos, d->fmtp.sizelength);
        int ix = bits(hp, hbits, &pos, n ? d->fmtp.indexdeltalength : d->fmtp.indexlength);
        if (sz < 0 || ix < 0)
            goto bad;
        sizes[n++] = sz;
    }
    if (n == 1 && (size_t)sizes[0] > data_len) {
        /* A fragment of one large access unit (RFC 3640 3.2.3): same size in each. */
        if (!d->in_frag || d->frag_ts != h->ts || d->frag_size != (size_t)sizes[0]) {
            d->in_frag = 1;
            d->frag_len = 0;
            d->frag_ts = h->ts;
            d->frag_size = (size_t)sizes[0];
        }
        if (d->frag_size > SL_AAC_MAX_AU) {
            sl_aac_depack_loss(d);
            return SL_ETOOBIG;
        }
        if (d->frag_len + data_len > d->frag_size)
            goto bad;
        memcpy(d->frag + d->frag_len, data, data_len);
        d->frag_len += data_len;
        if (h->marker) {
            if (d->frag_len == d->frag_size && d->on_frame)
                d->on_frame(d->ud, d->frag_ts, d->frag, d->frag_len);
            sl_aac_depack_loss(d);
        }
        return 0;
    }
    d->in_frag = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += (size_t)sizes[i];
    if (total > data_len)
        goto bad;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (sizes[i] > 0 && d->on_frame)
            d->on_frame(d->ud, h->ts + (uint32_t)i * d->spa, data + off, (size_t)sizes[i]);
        off += (size_t)sizes[i];
    }
    return 0;
bad:
    sl_aac_depack_loss(d);
    return SL_EPROTO;
}

/* ---- packetizers ---- */

int sl_aac_packetize(const uint8_t *au, size_t len, size_t mtu, sl_rtp_payloads_t *out)
{
    memset(out, 0, sizeof *out);
    if (mtu == 0)
        mtu = SL_RTP_DEFAULT_MTU;
    if (!au || len == 0 || mtu < SL_RTP_MIN_MTU || mtu > SL_RTP_MAX_MTU)
        return SL_EINVAL;
    if (len > 8191)
        return SL_ETOOBIG; /* the 13-bit size field */
    size_t room = mtu - 4, n = (len + room - 1) / room;
    int rc = sl__rtp_payloads_alloc(len + 4 * n, (uint32_t)n, out);
    if (rc)
        return rc;
    sl_rtp_pkt_ref_t *r = (sl_rtp_pkt_ref_t *)out->pkts;
    uint8_t *w = out->buf->data;
    size_t off = 0, at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t take = len - off < room ? len - off : room;
        w[at] = 0x00;
        w[at + 1] = 0x10; /* 16 bits of AU headers: one header */
        sl_wr_be16(w + at + 2, (uint16_t)(len << 3)); /* size (13 bits), index 0 */
        memcpy(w + at + 4, au + off, take);
        r[i].off = (uint32_t)at;
        r[i].len = (uint16_t)(take + 4);
        r[i].marker = i + 1 == n;
        at += take + 4;
        off += take;
    }
    return 0;
}

int sl_g711_packetize(const uint8_t *samples, size_t len, size_t mtu, sl_rtp_payloads_t *out)
{
    memset(out, 0, sizeof *out);
    if (mtu == 0)
        mtu = SL_RTP_DEFAULT_MTU;
    if (!samples || len == 0 || mtu < SL_RTP_MIN_MTU || mtu > SL_RTP_MAX_MTU)
        return SL_EINVAL;
    if (len > SL_RTP_MAX_FRAME)
        return SL_ETOOBIG;
    size_t n = (len + mtu - 1) / mtu;
    int rc = sl__rtp_payloads_alloc(len, (uint32_t)n, out);
    if (rc)
        return rc;
    memcpy(out->buf->data, samples, len);
    sl_rtp_pkt_ref_t *r = (sl_rtp_pkt_ref_t *)out->pkts;
    for (size_t i = 0, off = 0; i < n; i++, off += mtu) {
        r[i].off = (uint32_t)off;
        r[i].len = (uint16_t)(len - off < mtu ? len - off : mtu);
        r[i].marker = 0;
    }
    return 0;
}

/* ---- FLV bodies ---- */

static sl_buf_t *body2(uint8_t b0, int b1, const uint8_t *p, size_t len)
{
    if (!p || len == 0 || len > SL_RTP_MAX_FRAME)
        return NULL;
    size_t head = b1 >= 0 ? 2 : 1;
    sl_buf_t *b = sl_buf_new(head + len);
    if (!b)
        return NULL;
    b->data[0] = b0;
    if (b1 >= 0)
        b->data[1] = (uint8_t)b1;
    memcpy(b->data + head, p, len);
    b->len = (uint32_t)(head + len);
    return b;
}

sl_buf_t *sl_aac_flv_config_body(const uint8_t *asc, size_t len) { return body2(0xAF, 0, asc, len); }
sl_buf_t *sl_aac_flv_frame_body(const uint8_t *au, size_t len) { return body2(0xAF, 1, au, len); }

sl_buf_t *sl_g711_flv_frame_body(int alaw, const uint8_t *samples, size_t len)
{
    /* Sound format 7 / 8, rate index 0, 16-bit, mono: what FLV muxers write for 8 kHz G.711. */
    return body2(alaw ? 0x72 : 0x82, -1, samples, len);
}
