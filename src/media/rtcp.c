/*
 * RTCP compound parsing and packet building (see rtcp.h).
 *
 * Common header (RFC 3550 6.4): V=2 (2 bits) | P (1) | count/fmt (5) |
 * PT (8) | length (16, in 32-bit words minus one). With P set, the last
 * byte of the packet counts the padding bytes (including itself). Every
 * item's declared length must fit in what remains of the datagram, and
 * every field read from a body is checked against the body's length, so a
 * lying length or count ends the parse with SL_EPROTO instead of a read
 * past the end.
 */
#include "media/rtcp.h"

#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "sluice/errors.h"

#define NTP_UNIX_OFFSET 2208988800u /* seconds from 1900 to 1970 */

uint64_t sl_ntp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t sec = (uint64_t)ts.tv_sec + NTP_UNIX_OFFSET;
    uint64_t frac = ((uint64_t)ts.tv_nsec << 32) / 1000000000u;
    return sec << 32 | frac;
}

int sl_rtcp_is_rtcp(const uint8_t *p, size_t len)
{
    return len >= 4 && (p[0] >> 6) == 2 && p[1] >= 192 && p[1] <= 223;
}

/* ---- parsing ---- */

static int32_t rd_s24(const uint8_t *p)
{
    uint32_t v = sl_rd_be24(p);
    return (v & 0x800000u) ? (int32_t)(v | 0xFF000000u) : (int32_t)v;
}

static void rd_block(const uint8_t *b, sl_rtcp_report_t *rb)
{
    memset(rb, 0, sizeof(*rb)); /* padding too: callers may compare blocks bytewise */
    rb->source = sl_rd_be32(b);
    rb->fraction_lost = b[4];
    rb->cum_lost = rd_s24(b + 5);
    rb->ext_high_seq = sl_rd_be32(b + 8);
    rb->jitter = sl_rd_be32(b + 12);
    rb->lsr = sl_rd_be32(b + 16);
    rb->dlsr = sl_rd_be32(b + 20);
}

/* Report blocks of an SR or RR: count blocks of 24 bytes at b, within len. */
static int parse_blocks(const uint8_t *b, size_t len, int count, uint32_t reporter,
                        const sl_rtcp_cb_t *cb, void *ud)
{
    if ((size_t)count * 24 > len)
        return SL_EPROTO;
    for (int i = 0; cb->rr_block && i < count; i++) {
        sl_rtcp_report_t rb;
        rd_block(b + 24 * i, &rb);
        cb->rr_block(ud, reporter, &rb);
    }
    return 0;
}

/*
 * Transport-wide CC feedback FCI (after the two SSRCs): base seq (16),
 * status count (16), reference time (s24), feedback count (8), then packet
 * chunks until status_count statuses are described, then one receive delta
 * per received packet (1 byte unsigned for "small", 2 bytes signed for
 * "large"), all in 250 us units.
 */
static int parse_twcc(const uint8_t *b, size_t len, uint32_t media_ssrc, const sl_rtcp_cb_t *cb, void *ud)
{
    if (len < 8)
        return SL_EPROTO;
    uint16_t base_seq = sl_rd_be16(b);
    uint16_t n = sl_rd_be16(b + 2);
    int32_t ref = rd_s24(b + 4);
    uint8_t fb_count = b[7];
    if (n == 0 || n > SL_TWCC_MAX_STATUS)
        return SL_EPROTO;
    uint8_t status[SL_TWCC_MAX_STATUS];
    int16_t delta[SL_TWCC_MAX_STATUS];
    size_t pos = 8;
    int k = 0;
    while (k < n) {
        if (pos + 2 > len)
            return SL_EPROTO;
        uint16_t c = sl_rd_be16(b + pos);
        pos += 2;
        if (!(c & 0x8000)) { /* run length: status (2) | run (13) */
            uint8_t s = (c >> 13) & 3;
            int run = c & 0x1FFF;
            for (int i = 0; i < run && k < n; i++)
                status[k++] = s;
        } else if (!(c & 0x4000)) { /* 14 one-bit statuses */
            for (int i = 13; i >= 0 && k < n; i--)
                status[k++] = (c >> i) & 1;
        } else { /* 7 two-bit statuses */
            for (int i = 6; i >= 0 && k < n; i--)
                status[k++] = (c >> (2 * i)) & 3;
        }
    }
    for (k = 0; k < n; k++) {
        switch (status[k]) {
        case 0:
            delta[k] = SL_TWCC_NOT_RECEIVED;
            break;
        case 1:
            if (pos + 1 > len)
                return SL_EPROTO;
            delta[k] = b[pos++];
            break;
        case 2:
            if (pos + 2 > len)
                return SL_EPROTO;
            delta[k] = (int16_t)sl_rd_be16(b + pos);
            pos += 2;
            break;
        default: /* status 3 is reserved */
            return SL_EPROTO;
        }
    }
    if (cb->twcc)
        cb->twcc(ud, media_ssrc, base_seq, ref, fb_count, delta, n);
    return 0;
}

/* One RTCP packet: pt, count/fmt, and its body (after the 4-byte header,
 * padding removed). */
static int parse_item(uint8_t pt, int count, const uint8_t *b, size_t len, const sl_rtcp_cb_t *cb, void *ud)
{
    switch (pt) {
    case SL_RTCP_SR: {
        if (len < 24)
            return SL_EPROTO;
        uint32_t ssrc = sl_rd_be32(b);
        if (cb->sr)
            cb->sr(ud, ssrc, sl_rd_be64(b + 4), sl_rd_be32(b + 12), sl_rd_be32(b + 16), sl_rd_be32(b + 20));
        return parse_blocks(b + 24, len - 24, count, ssrc, cb, ud);
    }
    case SL_RTCP_RR:
        if (len < 4)
            return SL_EPROTO;
        return parse_blocks(b + 4, len - 4, count, sl_rd_be32(b), cb, ud);
    case SL_RTCP_BYE:
        if ((size_t)count * 4 > len)
            return SL_EPROTO;
        for (int i = 0; cb->bye && i < count; i++)
            cb->bye(ud, sl_rd_be32(b + 4 * i));
        return 0;
    case SL_RTCP_RTPFB:
    case SL_RTCP_PSFB:
        break;
    default: /* SDES, APP, XR, unknown: skipped by length */
        return 0;
    }
    /* Feedback (RFC 4585 6.1): sender SSRC, media SSRC, FCI. */
    if (len < 8)
        return SL_EPROTO;
    uint32_t sender = sl_rd_be32(b), media = sl_rd_be32(b + 4);
    const uint8_t *fci = b + 8;
    size_t fci_len = len - 8;
    if (pt == SL_RTCP_RTPFB && count == 1) { /* generic NACK: PID (16) | BLP (16) */
        if (fci_len % 4)
            return SL_EPROTO;
        for (size_t i = 0; cb->nack && i < fci_len; i += 4) {
            uint16_t pid = sl_rd_be16(fci + i), blp = sl_rd_be16(fci + i + 2);
            cb->nack(ud, sender, media, pid);
            for (int bit = 0; bit < 16; bit++)
                if (blp & (1u << bit))
                    cb->nack(ud, sender, media, (uint16_t)(pid + bit + 1));
        }
        return 0;
    }
    if (pt == SL_RTCP_RTPFB && count == 15)
        return parse_twcc(fci, fci_len, media, cb, ud);
    if (pt == SL_RTCP_PSFB && count == 1) {
        if (cb->pli)
            cb->pli(ud, sender, media);
        return 0;
    }
    if (pt == SL_RTCP_PSFB && count == 4) { /* FIR: SSRC (32) | seq nr (8) | reserved (24) */
        if (fci_len % 8)
            return SL_EPROTO;
        for (size_t i = 0; cb->fir && i < fci_len; i += 8)
            cb->fir(ud, sender, sl_rd_be32(fci + i), fci[i + 4]);
        return 0;
    }
    if (pt == SL_RTCP_PSFB && count == 15 && fci_len >= 4 && memcmp(fci, "REMB", 4) == 0) {
        /* "REMB" | num SSRC (8) | exp (6) | mantissa (18) | SSRCs */
        if (fci_len < 8)
            return SL_EPROTO;
        int n = fci[4];
        if (8 + (size_t)n * 4 > fci_len)
            return SL_EPROTO;
        uint32_t exp = fci[5] >> 2;
        uint64_t mant = (uint64_t)(fci[5] & 3) << 16 | sl_rd_be16(fci + 6);
        /* 18 bits shifted by up to 63 would overflow: saturate instead. */
        uint64_t bps = (exp > 46 && mant) ? UINT64_MAX : mant << exp;
        uint32_t ssrcs[255];
        for (int i = 0; i < n; i++)
            ssrcs[i] = sl_rd_be32(fci + 8 + 4 * i);
        if (cb->remb)
            cb->remb(ud, sender, bps, ssrcs, n);
        return 0;
    }
    return 0; /* other feedback formats (SLI, RPSI, TMMBR, app-specific): skipped */
}

int sl_rtcp_parse(const uint8_t *p, size_t len, const sl_rtcp_cb_t *cb, void *ud)
{
    static const sl_rtcp_cb_t none = {0};
    if (!cb)
        cb = &none;
    if (len < 4)
        return SL_EPROTO;
    size_t pos = 0;
    int items = 0;
    while (pos < len) {
        if (++items > SL_RTCP_MAX_ITEMS || len - pos < 4)
            return SL_EPROTO;
        const uint8_t *h = p + pos;
        if ((h[0] >> 6) != 2)
            return SL_EPROTO;
        size_t plen = ((size_t)sl_rd_be16(h + 2) + 1) * 4;
        if (plen > len - pos)
            return SL_EPROTO;
        size_t body = plen - 4;
        if (h[0] & 0x20) { /* padding: the last byte counts it, itself included */
            uint8_t pad = h[plen - 1];
            if (pad == 0 || pad > body)
                return SL_EPROTO;
            body -= pad;
        }
        int rc = parse_item(h[1], h[0] & 0x1F, h + 4, body, cb, ud);
        if (rc)
            return rc;
        pos += plen;
    }
    return 0;
}

/* ---- building ---- */

/* Writes the common header for a packet of total length plen (multiple of 4). */
static void wr_header(uint8_t *out, int padding, int count, uint8_t pt, size_t plen)
{
    out[0] = (uint8_t)(0x80 | (padding ? 0x20 : 0) | (count & 0x1F));
    out[1] = pt;
    sl_wr_be16(out + 2, (uint16_t)(plen / 4 - 1));
}

static void wr_block(uint8_t *b, const sl_rtcp_report_t *rb)
{
    int32_t lost = rb->cum_lost;
    if (lost > 0x7FFFFF)
        lost = 0x7FFFFF;
    if (lost < -0x800000)
        lost = -0x800000;
    sl_wr_be32(b, rb->source);
    b[4] = rb->fraction_lost;
    sl_wr_be24(b + 5, (uint32_t)lost & 0xFFFFFFu);
    sl_wr_be32(b + 8, rb->ext_high_seq);
    sl_wr_be32(b + 12, rb->jitter);
    sl_wr_be32(b + 16, rb->lsr);
    sl_wr_be32(b + 20, rb->dlsr);
}

int sl_rtcp_build_sr(uint8_t *out, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts,
                     uint32_t pkts, uint32_t octets, const sl_rtcp_report_t *blocks, int n)
{
    if (n < 0 || n > 31 || (n && !blocks))
        return SL_EINVAL;
    size_t plen = 28 + 24 * (size_t)n;
    if (cap < plen)
        return SL_ETOOBIG;
    wr_header(out, 0, n, SL_RTCP_SR, plen);
    sl_wr_be32(out + 4, ssrc);
    sl_wr_be32(out + 8, (uint32_t)(ntp >> 32));
    sl_wr_be32(out + 12, (uint32_t)ntp);
    sl_wr_be32(out + 16, rtp_ts);
    sl_wr_be32(out + 20, pkts);
    sl_wr_be32(out + 24, octets);
    for (int i = 0; i < n; i++)
        wr_block(out + 28 + 24 * i, &blocks[i]);
    return (int)plen;
}

int sl_rtcp_build_rr(uint8_t *out, size_t cap, uint32_t ssrc, const sl_rtcp_report_t *blocks, int n)
{
    if (n < 0 || n > 31 || (n && !blocks))
        return SL_EINVAL;
    size_t plen = 8 + 24 * (size_t)n;
    if (cap < plen)
        return SL_ETOOBIG;
    wr_header(out, 0, n, SL_RTCP_RR, plen);
    sl_wr_be32(out + 4, ssrc);
    for (int i = 0; i < n; i++)
        wr_block(out + 8 + 24 * i, &blocks[i]);
    return (int)plen;
}

int sl_rtcp_build_sdes_cname(uint8_t *out, size_t cap, uint32_t ssrc, const char *cname)
{
    size_t clen = cname ? strlen(cname) : 0;
    if (clen > 255)
        return SL_EINVAL;
    /* SSRC, CNAME item (type 1, length, text), then at least one null
     * octet ending the item list, up to the next 32-bit boundary. */
    size_t chunk = 4 + 2 + clen + 1;
    chunk = (chunk + 3) & ~(size_t)3;
    size_t plen = 4 + chunk;
    if (cap < plen)
        return SL_ETOOBIG;
    memset(out, 0, plen);
    wr_header(out, 0, 1, SL_RTCP_SDES, plen);
    sl_wr_be32(out + 4, ssrc);
    out[8] = 1;
    out[9] = (uint8_t)clen;
    if (clen)
        memcpy(out + 10, cname, clen);
    return (int)plen;
}

int sl_rtcp_build_bye(uint8_t *out, size_t cap, uint32_t ssrc)
{
    if (cap < 8)
        return SL_ETOOBIG;
    wr_header(out, 0, 1, SL_RTCP_BYE, 8);
    sl_wr_be32(out + 4, ssrc);
    return 8;
}

int sl_rtcp_build_nack(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       const uint16_t *seqs, int n)
{
    if (n < 1 || !seqs)
        return SL_EINVAL;
    size_t pos = 12;
    uint16_t pid = seqs[0], blp = 0;
    for (int i = 1; i <= n; i++) {
        if (i < n) {
            uint16_t d = (uint16_t)(seqs[i] - pid); /* serial distance, wraps at 65536 */
            if (d == 0)
                continue;
            if (d <= 16) {
                blp |= (uint16_t)(1u << (d - 1));
                continue;
            }
        }
        /* Close the current pair (at the end, or when seqs[i] is out of reach). */
        if (pos + 4 > cap || pos + 4 > 4 * 65536u)
            return SL_ETOOBIG;
        sl_wr_be16(out + pos, pid);
        sl_wr_be16(out + pos + 2, blp);
        pos += 4;
        if (i < n) {
            pid = seqs[i];
            blp = 0;
        }
    }
    wr_header(out, 0, 1, SL_RTCP_RTPFB, pos);
    sl_wr_be32(out + 4, sender_ssrc);
    sl_wr_be32(out + 8, media_ssrc);
    return (int)pos;
}

int sl_rtcp_build_pli(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc)
{
    if (cap < 12)
        return SL_ETOOBIG;
    wr_header(out, 0, 1, SL_RTCP_PSFB, 12);
    sl_wr_be32(out + 4, sender_ssrc);
    sl_wr_be32(out + 8, media_ssrc);
    return 12;
}

int sl_rtcp_build_fir(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc, uint8_t seq_nr)
{
    if (cap < 20)
        return SL_ETOOBIG;
    wr_header(out, 0, 4, SL_RTCP_PSFB, 20);
    sl_wr_be32(out + 4, sender_ssrc);
    sl_wr_be32(out + 8, 0); /* RFC 5104 4.3.1.2: media SSRC unused, 0 */
    sl_wr_be32(out + 12, media_ssrc);
    sl_wr_be32(out + 16, (uint32_t)seq_nr << 24);
    return 20;
}

int sl_rtcp_build_remb(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint64_t bps,
                       const uint32_t *ssrcs, int n)
{
    if (n < 0 || n > 255 || (n && !ssrcs))
        return SL_EINVAL;
    size_t plen = 20 + 4 * (size_t)n;
    if (cap < plen)
        return SL_ETOOBIG;
    uint32_t exp = 0;
    while (bps > 0x3FFFFu) {
        bps >>= 1;
        exp++;
    }
    wr_header(out, 0, 15, SL_RTCP_PSFB, plen);
    sl_wr_be32(out + 4, sender_ssrc);
    sl_wr_be32(out + 8, 0); /* media SSRC: 0, the SSRCs are in the FCI */
    memcpy(out + 12, "REMB", 4);
    out[16] = (uint8_t)n;
    out[17] = (uint8_t)(exp << 2 | (uint32_t)(bps >> 16));
    sl_wr_be16(out + 18, (uint16_t)bps);
    for (int i = 0; i < n; i++)
        sl_wr_be32(out + 20 + 4 * i, ssrcs[i]);
    return (int)plen;
}

/* TWCC status of one packet from its delta: 0 lost, 1 small, 2 large. */
static uint8_t twcc_status(int16_t d)
{
    if (d == SL_TWCC_NOT_RECEIVED)
        return 0;
    return (d >= 0 && d <= 255) ? 1 : 2;
}

int sl_rtcp_build_twcc(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       uint16_t base_seq, int32_t ref_time_64ms, uint8_t fb_count,
                       const int16_t *delta_250us, int n)
{
    if (n < 1 || n > SL_TWCC_MAX_STATUS || !delta_250us)
        return SL_EINVAL;
    if (cap < 20)
        return SL_ETOOBIG;
    size_t pos = 20;
    /* Packet status chunks. A run of at least 14 equal statuses (or the
     * rest of the list) is one run-length chunk; otherwise 14 one-bit
     * statuses when none of them is "large", else 7 two-bit statuses. */
    int i = 0;
    while (i < n) {
        uint8_t s = twcc_status(delta_250us[i]);
        int run = 1;
        while (i + run < n && run < 0x1FFF && twcc_status(delta_250us[i + run]) == s)
            run++;
        uint16_t chunk;
        if (run >= 14 || i + run == n) {
            chunk = (uint16_t)(s << 13 | run);
            i += run;
        } else {
            int large = 0;
            for (int k = i; k < i + 14 && k < n; k++)
                large |= twcc_status(delta_250us[k]) == 2;
            if (!large) {
                chunk = 0x8000;
                for (int k = 0; k < 14; k++)
                    if (i + k < n)
                        chunk |= (uint16_t)(twcc_status(delta_250us[i + k]) << (13 - k));
                i += 14;
            } else {
                chunk = 0xC000;
                for (int k = 0; k < 7; k++)
                    if (i + k < n)
                        chunk |= (uint16_t)(twcc_status(delta_250us[i + k]) << (2 * (6 - k)));
                i += 7;
            }
        }
        if (pos + 2 > cap)
            return SL_ETOOBIG;
        sl_wr_be16(out + pos, chunk);
        pos += 2;
    }
    /* Receive deltas. */
    for (i = 0; i < n; i++) {
        uint8_t s = twcc_status(delta_250us[i]);
        if (s == 0)
            continue;
        if (pos + s > cap)
            return SL_ETOOBIG;
        if (s == 1)
            out[pos] = (uint8_t)delta_250us[i];
        else
            sl_wr_be16(out + pos, (uint16_t)delta_250us[i]);
        pos += s;
    }
    size_t pad = (4 - pos % 4) % 4;
    if (pos + pad > cap)
        return SL_ETOOBIG;
    if (pos + pad > 4 * 65536u)
        return SL_ETOOBIG;
    if (pad) {
        memset(out + pos, 0, pad);
        out[pos + pad - 1] = (uint8_t)pad;
    }
    pos += pad;
    wr_header(out, pad != 0, 15, SL_RTCP_RTPFB, pos);
    sl_wr_be32(out + 4, sender_ssrc);
    sl_wr_be32(out + 8, media_ssrc);
    sl_wr_be16(out + 12, base_seq);
    sl_wr_be16(out + 14, (uint16_t)n);
    sl_wr_be24(out + 16, (uint32_t)ref_time_64ms & 0xFFFFFFu);
    out[19] = fb_count;
    return (int)pos;
}
