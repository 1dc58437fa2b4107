/*
 * H.264 RTP payload format, packetization-mode 1 (see rtp_h264.h).
 *
 * Payload shapes (RFC 6184 §5.6-5.8): the first byte is a NAL unit header
 * F(1) NRI(2) type(5). Types 1-23 are a single NAL unit; 24 (STAP-A) is a
 * list of 16-bit length + NAL unit; 28 (FU-A) is an FU indicator (F, NRI,
 * type 28) then an FU header S(1) E(1) R(1) type(5) then a fragment of the
 * NAL unit without its header byte, which the receiver rebuilds from the
 * indicator's F/NRI and the FU header's type.
 *
 * The depacketizer writes NAL units straight into one capped builder as
 * AVCC (4-byte length, then the NAL unit); an FU-A reserves the length and
 * patches it when the end fragment arrives, so no fragment is copied twice.
 */
#include "media/rtp_h264.h"

#include <string.h>

#include "base/alloc.h"
#include "media/flv.h"
#include "sluice/errors.h"

/* ---- configuration record ---- */

int sl_h264_config_parse(const uint8_t *rec, size_t len, sl_h264_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    if (len < 7 || rec[0] != 1)
        return SL_EPROTO;
    cfg->profile_idc = rec[1];
    cfg->profile_compat = rec[2];
    cfg->level_idc = rec[3];
    int lsm1 = rec[4] & 3;
    if (lsm1 == 2)
        return SL_EPROTO;
    cfg->nal_len_size = lsm1 + 1;
    size_t off = 5;
    for (int pass = 0; pass < 2; pass++) {
        if (off >= len)
            return SL_EPROTO;
        int count = pass == 0 ? (rec[off] & 0x1F) : rec[off];
        off++;
        if (count > SL_H264_MAX_PS)
            return SL_ETOOBIG;
        for (int i = 0; i < count; i++) {
            if (len - off < 2)
                return SL_EPROTO;
            size_t n = sl_rd_be16(rec + off);
            off += 2;
            if (n == 0 || len - off < n)
                return SL_EPROTO;
            if (pass == 0) {
                cfg->sps[i] = rec + off;
                cfg->sps_len[i] = (uint16_t)n;
            } else {
                cfg->pps[i] = rec + off;
                cfg->pps_len[i] = (uint16_t)n;
            }
            off += n;
        }
        if (pass == 0)
            cfg->n_sps = count;
        else
            cfg->n_pps = count;
    }
    return 0;
}

int sl_h264_avcc_record(const uint8_t *sps, size_t sps_len, const uint8_t *pps, size_t pps_len,
                        uint8_t *out, size_t cap)
{
    if (sps_len < 4 || pps_len < 1 || sps_len > 0xFFFF || pps_len > 0xFFFF)
        return SL_EINVAL;
    size_t need = 11 + sps_len + pps_len;
    if (cap < need)
        return SL_ETOOBIG;
    out[0] = 1;
    out[1] = sps[1]; /* profile_idc */
    out[2] = sps[2]; /* constraint flags = profile_compatibility */
    out[3] = sps[3]; /* level_idc */
    out[4] = 0xFF;   /* reserved 6 bits | lengthSizeMinusOne 3 */
    out[5] = 0xE1;   /* reserved 3 bits | one SPS */
    sl_wr_be16(out + 6, (uint16_t)sps_len);
    memcpy(out + 8, sps, sps_len);
    size_t o = 8 + sps_len;
    out[o++] = 1; /* one PPS */
    sl_wr_be16(out + o, (uint16_t)pps_len);
    memcpy(out + o + 2, pps, pps_len);
    return (int)need;
}

/* ---- packetizer ---- */

typedef struct nal_ref {
    const uint8_t *p;
    size_t len;
} nal_ref_t;

/* Walks the NAL plan once: counts packets and payload bytes, and writes them
 * when dst is not NULL (pkts then receives the index). */
static void plan(const nal_ref_t *nals, int n, size_t mtu, uint8_t *dst, sl_rtp_pkt_ref_t *pkts,
                 uint32_t *n_pkts, size_t *n_bytes)
{
    uint32_t np = 0;
    size_t off = 0;
    int i = 0;
    while (i < n) {
        size_t len = nals[i].len;
        const uint8_t *nal = nals[i].p;
        if (len > mtu) {
            /* FU-A: fragments of (len - 1) bytes split evenly, 2 header bytes each. */
            size_t body = len - 1, room = mtu - 2;
            size_t k = (body + room - 1) / room;
            size_t chunk = (body + k - 1) / k;
            size_t done = 0;
            for (size_t f = 0; f < k; f++) {
                size_t take = body - done < chunk ? body - done : chunk;
                if (dst) {
                    uint8_t *o = dst + off;
                    o[0] = (uint8_t)((nal[0] & 0xE0) | 28);
                    o[1] = (uint8_t)((f == 0 ? 0x80 : 0) | (f == k - 1 ? 0x40 : 0) | (nal[0] & 0x1F));
                    memcpy(o + 2, nal + 1 + done, take);
                    pkts[np] = (sl_rtp_pkt_ref_t){(uint32_t)off, (uint16_t)(take + 2), 0, 0};
                }
                np++;
                off += take + 2;
                done += take;
            }
            i++;
            continue;
        }
        /* Aggregate as many following NAL units as fit in one STAP-A. */
        size_t sum = 1 + 2 + len;
        int j = i + 1;
        while (j < n && sum + 2 + nals[j].len <= mtu)
            sum += 2 + nals[j++].len;
        if (j - i >= 2) {
            if (dst) {
                uint8_t *o = dst + off;
                uint8_t nri = 0;
                size_t w = 1;
                for (int k = i; k < j; k++) {
                    if ((nals[k].p[0] & 0x60) > nri)
                        nri = nals[k].p[0] & 0x60;
                    sl_wr_be16(o + w, (uint16_t)nals[k].len);
                    memcpy(o + w + 2, nals[k].p, nals[k].len);
                    w += 2 + nals[k].len;
                }
                o[0] = (uint8_t)(nri | 24);
                pkts[np] = (sl_rtp_pkt_ref_t){(uint32_t)off, (uint16_t)sum, 0, 0};
            }
            np++;
            off += sum;
            i = j;
        } else {
            if (dst) {
                memcpy(dst + off, nal, len);
                pkts[np] = (sl_rtp_pkt_ref_t){(uint32_t)off, (uint16_t)len, 0, 0};
            }
            np++;
            off += len;
            i++;
        }
    }
    *n_pkts = np;
    *n_bytes = off;
}

/* ---- access unit info ---- */

/* A bit reader over at most 16 bytes of a NAL unit's payload, with the
 * emulation prevention bytes (00 00 03) taken out. */
typedef struct bits {
    uint8_t b[16];
    size_t n, pos; /* bytes held, bit position */
} bits_t;

static void bits_init(bits_t *r, const uint8_t *p, size_t len)
{
    int zeros = 0;
    r->n = r->pos = 0;
    for (size_t i = 0; i < len && r->n < sizeof r->b; i++) {
        if (zeros >= 2 && p[i] == 3) {
            zeros = 0;
            continue;
        }
        zeros = p[i] == 0 ? zeros + 1 : 0;
        r->b[r->n++] = p[i];
    }
}

/* Reads an unsigned exp-Golomb value (at most 31 leading zeros); -1 past the end. */
static int64_t bits_ue(bits_t *r)
{
    int lz = 0;
    for (;;) {
        if (r->pos >= r->n * 8)
            return -1;
        int bit = (r->b[r->pos / 8] >> (7 - r->pos % 8)) & 1;
        r->pos++;
        if (bit)
            break;
        if (++lz > 31)
            return -1;
    }
    uint64_t v = 0;
    for (int i = 0; i < lz; i++) {
        if (r->pos >= r->n * 8)
            return -1;
        v = v << 1 | ((r->b[r->pos / 8] >> (7 - r->pos % 8)) & 1);
        r->pos++;
    }
    return (int64_t)((1ull << lz) - 1 + v);
}

int sl_h264_au_info(const uint8_t *avcc, size_t len, int nal_len_size, sl_h264_au_info_t *out)
{
    memset(out, 0, sizeof(*out));
    if (nal_len_size != 1 && nal_len_size != 2 && nal_len_size != 4)
        return SL_EPROTO;
    size_t off = 0;
    for (int n = 0; off < len && n < SL_H264_MAX_NALS; n++) {
        if (len - off < (size_t)nal_len_size)
            return SL_EPROTO;
        size_t nal_len = 0;
        for (int i = 0; i < nal_len_size; i++)
            nal_len = nal_len << 8 | avcc[off + (size_t)i];
        off += (size_t)nal_len_size;
        if (nal_len > len - off)
            return SL_EPROTO;
        const uint8_t *nal = avcc + off;
        off += nal_len;
        if (nal_len < 2)
            continue;
        int type = nal[0] & 0x1f;
        if (type != 1 && type != 5)
            continue;
        bits_t r;
        bits_init(&r, nal + 1, nal_len - 1);
        int64_t first_mb = bits_ue(&r), slice_type = bits_ue(&r);
        if (first_mb < 0 || slice_type < 0 || slice_type > 9)
            continue; /* unreadable: neither counted nor judged */
        out->n_slices++;
        if (type == 5)
            out->is_idr = 1;
        if (nal[0] & 0x60)
            out->is_ref = 1;
        if (slice_type % 5 == 1)
            out->has_b = 1;
    }
    return 0;
}

int sl_h264_packetize(const uint8_t *avcc, size_t len, int nal_len_size,
                      const uint8_t *config, size_t config_len, int is_key, size_t mtu,
                      sl_rtp_payloads_t *out)
{
    memset(out, 0, sizeof(*out));
    if (mtu == 0)
        mtu = SL_RTP_DEFAULT_MTU;
    if (mtu < SL_RTP_MIN_MTU || mtu > SL_RTP_MAX_MTU)
        return SL_EINVAL;
    if (nal_len_size < 1 || nal_len_size > 4)
        return SL_EPROTO;
    if (len > SL_RTP_MAX_FRAME)
        return SL_ETOOBIG;
    nal_ref_t *nals = sl_malloc(sizeof(nal_ref_t) * SL_H264_MAX_NALS);
    if (!nals)
        return SL_ENOMEM;
    int rc = 0, n = 0, has_sps = 0, has_pps = 0;
    sl_h264_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    int n_cfg = 0;
    if (is_key && config) {
        rc = sl_h264_config_parse(config, config_len, &cfg);
        if (rc)
            goto fail;
        n_cfg = cfg.n_sps + cfg.n_pps;
    }
    /* Reserve the front of the list for the config's parameter sets; they are
     * filled in (or the list shifted down) once the access unit is known. */
    n = n_cfg;
    for (size_t off = 0; off < len;) {
        if (len - off < (size_t)nal_len_size) {
            rc = SL_EPROTO;
            goto fail;
        }
        size_t nl = 0;
        for (int k = 0; k < nal_len_size; k++)
            nl = nl << 8 | avcc[off + k];
        off += (size_t)nal_len_size;
        if (nl > len - off) {
            rc = SL_EPROTO;
            goto fail;
        }
        const uint8_t *nal = avcc + off;
        off += nl;
        if (nl == 0)
            continue;
        int type = nal[0] & 0x1F;
        if (type == 0 || type == 9 || type >= 24)
            continue; /* AUD and reserved/aggregation types do not travel */
        has_sps |= type == 7;
        has_pps |= type == 8;
        if (n >= SL_H264_MAX_NALS) {
            rc = SL_ETOOBIG;
            goto fail;
        }
        nals[n++] = (nal_ref_t){nal, nl};
    }
    if (n_cfg) {
        if (has_sps && has_pps) {
            memmove(nals, nals + n_cfg, sizeof(nal_ref_t) * (size_t)(n - n_cfg));
            n -= n_cfg;
        } else {
            int k = 0;
            for (int i = 0; i < cfg.n_sps; i++)
                nals[k++] = (nal_ref_t){cfg.sps[i], cfg.sps_len[i]};
            for (int i = 0; i < cfg.n_pps; i++)
                nals[k++] = (nal_ref_t){cfg.pps[i], cfg.pps_len[i]};
        }
    }
    if (n == 0) {
        rc = SL_EPROTO;
        goto fail;
    }
    uint32_t n_pkts;
    size_t n_bytes;
    plan(nals, n, mtu, NULL, NULL, &n_pkts, &n_bytes);
    rc = sl__rtp_payloads_alloc(n_bytes, n_pkts, out);
    if (rc)
        goto fail;
    sl_rtp_pkt_ref_t *pkts = (sl_rtp_pkt_ref_t *)out->pkts;
    uint32_t n_pkts2;
    size_t n_bytes2;
    plan(nals, n, mtu, out->buf->data, pkts, &n_pkts2, &n_bytes2);
    SL_ASSERT(n_pkts2 == n_pkts && n_bytes2 == n_bytes);
    pkts[n_pkts - 1].marker = 1;
    sl_free(nals);
    return 0;
fail:
    sl_free(nals);
    return rc;
}

/* ---- depacketizer ---- */

struct sl_h264_depack {
    sl_h264_config_cb on_config; /* borrowed callbacks */
    sl_h264_frame_cb on_frame;
    void *ud;
    sl_wbuf_t au;          /* the access unit being collected, as AVCC */
    int open;              /* an access unit is being collected */
    uint32_t ts;           /* its RTP timestamp */
    int n_nals;            /* NAL units in it */
    int broken;            /* it lost something: drop it at its end */
    int in_fu;             /* an FU-A NAL unit is open */
    size_t fu_off;         /* offset of that NAL unit's 4-byte length in au */
    int has_idr;           /* it holds an IDR slice */
    int n_vcl;             /* slices in it */
    int first_mb0;         /* its first slice starts at macroblock 0 */
    int gap_first;         /* a loss was reported just before it began */
    int gap_pending;       /* a loss was reported since the last access unit began */
    int need_key;          /* drop everything until a clean IDR */
    uint8_t sps[SL_H264_MAX_PS_LEN], pps[SL_H264_MAX_PS_LEN]; /* latest parameter sets */
    size_t sps_len, pps_len;
    uint8_t rec[11 + 2 * SL_H264_MAX_PS_LEN]; /* last record given to on_config */
    size_t rec_len;
};

sl_h264_depack_t *sl_h264_depack_new(sl_h264_config_cb on_config, sl_h264_frame_cb on_frame,
                                     void *ud)
{
    sl_h264_depack_t *d = sl_calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->on_config = on_config;
    d->on_frame = on_frame;
    d->ud = ud;
    sl_wbuf_init(&d->au, SL_RTP_MAX_FRAME);
    d->need_key = 1;
    return d;
}

void sl_h264_depack_free(sl_h264_depack_t *d)
{
    if (!d)
        return;
    sl_wbuf_cleanup(&d->au);
    sl_free(d);
}

int sl_h264_depack_need_keyframe(const sl_h264_depack_t *d) { return d->need_key; }

void sl_h264_depack_set_ps(sl_h264_depack_t *d, const uint8_t *sps, size_t sps_len, const uint8_t *pps,
                           size_t pps_len)
{
    if (sps && sps_len >= 4 && sps_len <= SL_H264_MAX_PS_LEN) {
        memcpy(d->sps, sps, sps_len);
        d->sps_len = sps_len;
    }
    if (pps && pps_len >= 1 && pps_len <= SL_H264_MAX_PS_LEN) {
        memcpy(d->pps, pps, pps_len);
        d->pps_len = pps_len;
    }
}

void sl_h264_depack_loss(sl_h264_depack_t *d)
{
    /* The lost packets may be the tail of the open access unit, whole access
     * units, or the head of the next one: drop the first, and make the next
     * one prove it starts at its first slice. */
    d->need_key = 1;
    if (d->open)
        d->broken = 1;
    d->gap_pending = 1;
}

/* Bookkeeping for a NAL unit now complete at au.data + off (after its length). */
static int nal_done(sl_h264_depack_t *d, size_t off)
{
    const uint8_t *nal = d->au.data + off;
    size_t len = d->au.len - off;
    int type = nal[0] & 0x1F;
    if (type == 7 || type == 8) {
        if (len > SL_H264_MAX_PS_LEN || (type == 7 && len < 4))
            return SL_EPROTO;
        memcpy(type == 7 ? d->sps : d->pps, nal, len);
        *(type == 7 ? &d->sps_len : &d->pps_len) = len;
    } else if (type >= 1 && type <= 5) {
        if (d->n_vcl++ == 0)
            d->first_mb0 = len >= 2 && (nal[1] & 0x80); /* ue(v) first_mb_in_slice == 0 */
        if (type == 5)
            d->has_idr = 1;
    }
    return 0;
}

/* Appends one whole NAL unit as AVCC. */
static int add_nal(sl_h264_depack_t *d, const uint8_t *nal, size_t len)
{
    if (len == 0 || (nal[0] & 0x80))
        return SL_EPROTO; /* empty, or the forbidden bit is set */
    int type = nal[0] & 0x1F;
    if (type == 0 || type >= 24)
        return SL_EPROTO;
    if (d->n_nals >= SL_H264_MAX_NALS)
        return SL_ETOOBIG;
    int rc = sl_wbuf_put_be32(&d->au, (uint32_t)len);
    if (!rc)
        rc = sl_wbuf_put(&d->au, nal, len);
    if (rc)
        return rc;
    d->n_nals++;
    return nal_done(d, d->au.len - len);
}

static void au_reset(sl_h264_depack_t *d)
{
    sl_wbuf_reset(&d->au);
    d->open = 0;
    d->n_nals = 0;
    d->broken = 0;
    d->in_fu = 0;
    d->has_idr = 0;
    d->n_vcl = 0;
    d->first_mb0 = 0;
    d->gap_first = 0;
}

/* Ends the open access unit: emits it, or drops it. */
static void au_finish(sl_h264_depack_t *d)
{
    if (d->in_fu)
        d->broken = 1; /* the last NAL unit never got its end fragment */
    if (d->gap_first && !d->first_mb0)
        d->broken = 1; /* packets lost right before it were its own beginning */
    if (d->broken) {
        d->need_key = 1;
        goto done;
    }
    if (d->n_vcl == 0)
        goto done; /* parameter sets or SEI alone: kept, nothing to show */
    if (d->need_key && (!d->has_idr || !d->sps_len || !d->pps_len))
        goto done;
    if (d->sps_len && d->pps_len) {
        uint8_t rec[sizeof d->rec];
        int n = sl_h264_avcc_record(d->sps, d->sps_len, d->pps, d->pps_len, rec, sizeof rec);
        if (n > 0 && ((size_t)n != d->rec_len || memcmp(rec, d->rec, (size_t)n) != 0)) {
            memcpy(d->rec, rec, (size_t)n);
            d->rec_len = (size_t)n;
            if (d->on_config)
                d->on_config(d->ud, d->rec, d->rec_len);
        }
    }
    if (d->has_idr)
        d->need_key = 0;
    if (d->on_frame)
        d->on_frame(d->ud, d->ts, d->au.data, d->au.len, d->has_idr);
done:
    au_reset(d);
}

static int push_stap_a(sl_h264_depack_t *d, const uint8_t *p, size_t len)
{
    /* Validate every length first, so a bad packet adds nothing. */
    size_t off = 1;
    int count = 0;
    while (off < len) {
        if (len - off < 2)
            return SL_EPROTO;
        size_t n = sl_rd_be16(p + off);
        off += 2;
        if (n == 0 || n > len - off)
            return SL_EPROTO;
        off += n;
        count++;
    }
    if (count == 0)
        return SL_EPROTO;
    for (off = 1; off < len;) {
        size_t n = sl_rd_be16(p + off);
        int rc = add_nal(d, p + off + 2, n);
        if (rc)
            return rc;
        off += 2 + n;
    }
    return 0;
}

static int push_fu_a(sl_h264_depack_t *d, const uint8_t *p, size_t len)
{
    if (len < 3)
        return SL_EPROTO;
    int start = p[1] >> 7, end = (p[1] >> 6) & 1;
    int type = p[1] & 0x1F;
    if ((start && end) || type == 0 || type >= 24)
        return SL_EPROTO;
    int rc;
    if (start) {
        if (d->in_fu)
            return SL_EPROTO; /* the previous NAL unit lost its end */
        if (d->n_nals >= SL_H264_MAX_NALS)
            return SL_ETOOBIG;
        d->fu_off = d->au.len;
        rc = sl_wbuf_put_be32(&d->au, 0);
        if (!rc)
            rc = sl_wbuf_put_u8(&d->au, (uint8_t)((p[0] & 0x60) | type));
        if (rc)
            return rc;
        d->in_fu = 1;
        d->n_nals++;
    } else if (!d->in_fu) {
        return SL_EPROTO; /* its start was lost */
    } else if ((d->au.data[d->fu_off + 4] & 0x1F) != type) {
        return SL_EPROTO;
    }
    rc = sl_wbuf_put(&d->au, p + 2, len - 2);
    if (rc)
        return rc;
    if (end) {
        d->in_fu = 0;
        sl_wr_be32(d->au.data + d->fu_off, (uint32_t)(d->au.len - d->fu_off - 4));
        return nal_done(d, d->fu_off + 4);
    }
    return 0;
}

int sl_h264_depack_push(sl_h264_depack_t *d, const sl_rtp_hdr_t *h)
{
    if (h->payload_len == 0)
        return 0; /* padding only */
    if (d->open && h->ts != d->ts)
        au_finish(d);
    if (!d->open) {
        d->open = 1;
        d->ts = h->ts;
        d->gap_first = d->gap_pending;
        d->gap_pending = 0;
    }
    int rc = 0;
    if (!d->broken) {
        const uint8_t *p = h->payload;
        int type = p[0] & 0x1F;
        if (p[0] & 0x80)
            rc = SL_EPROTO;
        else if (type >= 1 && type <= 23)
            rc = d->in_fu ? SL_EPROTO : add_nal(d, p, h->payload_len);
        else if (type == 24)
            rc = d->in_fu ? SL_EPROTO : push_stap_a(d, p, h->payload_len);
        else if (type == 28)
            rc = push_fu_a(d, p, h->payload_len);
        else
            rc = SL_EPROTO; /* STAP-B, MTAP16/24, FU-B: not in mode 1; 0, 30, 31 reserved */
        if (rc)
            d->broken = 1;
    }
    if (h->marker)
        au_finish(d);
    return rc;
}

/* ---- FLV bodies ---- */

sl_buf_t *sl_h264_flv_config_body(const uint8_t *record, size_t len)
{
    if (len > SL_RTP_MAX_FRAME)
        return NULL;
    sl_buf_t *b = sl_buf_new(5 + len);
    if (!b)
        return NULL;
    static const uint8_t head[5] = {0x17, 0x00, 0, 0, 0};
    memcpy(b->data, head, 5);
    memcpy(b->data + 5, record, len);
    b->len = (uint32_t)(5 + len);
    return b;
}

sl_buf_t *sl_h264_flv_frame_body(const uint8_t *avcc, size_t len, int is_key, int32_t cts_ms)
{
    if (len > SL_RTP_MAX_FRAME)
        return NULL;
    sl_buf_t *b = sl_buf_new(5 + len);
    if (!b)
        return NULL;
    b->data[0] = is_key ? 0x17 : 0x27;
    b->data[1] = 0x01;
    sl_wr_be24(b->data + 2, (uint32_t)cts_ms & 0xFFFFFF);
    memcpy(b->data + 5, avcc, len);
    b->len = (uint32_t)(5 + len);
    return b;
}
