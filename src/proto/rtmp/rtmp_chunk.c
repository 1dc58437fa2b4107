/*
 * RTMP chunk stream reader and writers (see rtmp_chunk.h).
 *
 * Timestamp rules (RTMP spec 5.3.1): a type-0 header carries the absolute
 * timestamp; types 1 and 2 carry a delta added to the chunk stream's last
 * timestamp; a type-3 chunk that starts a new message repeats the last
 * delta, where the delta of a type-0 header is its absolute timestamp.
 * A field value of 0xFFFFFF means a 4-byte extended timestamp follows the
 * header, and type-3 chunks on that chunk stream then carry it too.
 *
 * Leniency: a type-0/1/2 header arriving while a message is half assembled
 * on the same chunk stream drops the partial message and starts a new one
 * (some encoders do this after an internal reset); everything else that
 * breaks the rules is an error that closes the connection.
 */
#include "proto/rtmp/rtmp_chunk.h"

#include <string.h>

#include "base/alloc.h"
#include "sluice/errors.h"

void sl_rtmp_chunk_reader_init(sl_rtmp_chunk_reader_t *r, uint32_t max_chunk_size,
                               uint32_t max_message_size)
{
    memset(r, 0, sizeof(*r));
    r->chunk_size = 128;
    r->max_chunk_size = max_chunk_size;
    r->max_message_size = max_message_size;
}

void sl_rtmp_chunk_reader_cleanup(sl_rtmp_chunk_reader_t *r)
{
    for (uint32_t i = 0; i < r->n_cs; i++) {
        sl_buf_unref(r->cs[i].partial);
        r->cs[i].partial = NULL;
    }
    sl_free(r->cs);
    r->cs = NULL;
    r->n_cs = r->cap_cs = 0;
    r->cur = NULL;
}

int sl_rtmp_chunk_reader_set_chunk_size(sl_rtmp_chunk_reader_t *r, uint32_t size)
{
    if (size == 0 || (size & 0x80000000u))
        return SL_EPROTO;
    if (size > r->max_chunk_size)
        return SL_ETOOBIG;
    r->chunk_size = size;
    return 0;
}

#define CSTATE_INITIAL 4

/*
 * The state of chunk stream csid, or NULL. With create, a missing one is
 * added (growing the array; r->cur is re-pointed when the array moves);
 * NULL then means the SL_RTMP_MAX_CSIDS limit is reached, or out of memory
 * when *oom is set. Slots are never removed, so the array stays dense.
 */
static sl_rtmp_cstate_t *cstate_find(sl_rtmp_chunk_reader_t *r, uint32_t csid, int create, int *oom)
{
    for (uint32_t i = 0; i < r->n_cs; i++) {
        if (r->cs[i].csid == csid)
            return &r->cs[i];
    }
    if (!create || r->n_cs >= SL_RTMP_MAX_CSIDS)
        return NULL;
    if (r->n_cs == r->cap_cs) {
        uint32_t ncap = r->cap_cs ? r->cap_cs * 2 : CSTATE_INITIAL;
        if (ncap > SL_RTMP_MAX_CSIDS)
            ncap = SL_RTMP_MAX_CSIDS;
        sl_rtmp_cstate_t *ncs = sl_realloc(r->cs, ncap * sizeof(*ncs));
        if (!ncs) {
            *oom = 1;
            return NULL;
        }
        if (r->cur)
            r->cur = ncs + (r->cur - r->cs);
        r->cs = ncs;
        r->cap_cs = ncap;
    }
    sl_rtmp_cstate_t *slot = &r->cs[r->n_cs++];
    memset(slot, 0, sizeof(*slot));
    slot->csid = csid;
    return slot;
}

void sl_rtmp_chunk_reader_abort(sl_rtmp_chunk_reader_t *r, uint32_t csid)
{
    sl_rtmp_cstate_t *cs = cstate_find(r, csid, 0, NULL);
    if (!cs)
        return;
    sl_buf_unref(cs->partial);
    cs->partial = NULL;
    if (r->cur == cs)
        r->cur = NULL;
}

/*
 * How many header bytes the chunk in r->hdr needs in all, given the bytes
 * gathered so far; 0 when that cannot be told yet. Needs the chunk stream's
 * "ext" flag for type 3, hence the lookup.
 */
static size_t header_need(sl_rtmp_chunk_reader_t *r)
{
    uint8_t b0 = r->hdr[0];
    size_t basic = (b0 & 0x3f) == 0 ? 2 : (b0 & 0x3f) == 1 ? 3 : 1;
    if (r->hdr_have < basic)
        return basic;
    static const size_t mh[4] = {11, 7, 3, 0};
    unsigned fmt = b0 >> 6;
    size_t need = basic + mh[fmt];
    if (r->hdr_have < need)
        return need;
    if (fmt < 3) {
        if (sl_rd_be24(r->hdr + basic) == 0xFFFFFF)
            need += 4;
    } else {
        uint32_t csid = (b0 & 0x3f) == 0 ? 64u + r->hdr[1]
                      : (b0 & 0x3f) == 1 ? 64u + r->hdr[1] + 256u * r->hdr[2] : (b0 & 0x3fu);
        sl_rtmp_cstate_t *cs = cstate_find(r, csid, 0, NULL);
        if (cs && cs->ext)
            need += 4;
    }
    return need;
}

/* Applies a complete header in r->hdr; sets r->cur and r->chunk_left. */
static int header_apply(sl_rtmp_chunk_reader_t *r, size_t hlen)
{
    const uint8_t *h = r->hdr;
    unsigned fmt = h[0] >> 6;
    uint32_t csid;
    size_t off;
    if ((h[0] & 0x3f) == 0) {
        csid = 64u + h[1];
        off = 2;
    } else if ((h[0] & 0x3f) == 1) {
        csid = 64u + h[1] + 256u * h[2];
        off = 3;
    } else {
        csid = h[0] & 0x3fu;
        off = 1;
    }
    /* A declared length over the limit is refused before anything is
     * allocated for it, chunk stream state included. */
    if (fmt <= 1 && sl_rd_be24(h + off + 3) > r->max_message_size)
        return SL_ETOOBIG;
    int oom = 0;
    sl_rtmp_cstate_t *cs = cstate_find(r, csid, fmt == 0, &oom);
    if (!cs)
        return oom ? SL_ENOMEM : fmt == 0 ? SL_ETOOBIG : SL_EPROTO; /* too many streams / no prior header */
    if (fmt != 0 && !cs->started)
        return SL_EPROTO;
    int new_msg = 1;
    if (fmt < 3) {
        uint32_t field = sl_rd_be24(h + off);
        int ext = field == 0xFFFFFF;
        if (ext)
            field = sl_rd_be32(h + hlen - 4);
        cs->ext = (uint8_t)ext;
        if (fmt <= 1) {
            cs->len = sl_rd_be24(h + off + 3);
            cs->type = h[off + 6];
        }
        if (fmt == 0) {
            cs->stream_id = sl_rd_le32(h + off + 7);
            cs->ts = field;
            cs->delta = field;
        } else {
            cs->delta = field;
            cs->ts += field;
        }
        if (cs->partial) { /* lenient: a new header abandons the half message */
            sl_buf_unref(cs->partial);
            cs->partial = NULL;
        }
    } else if (cs->partial) {
        new_msg = 0; /* continuation */
    } else {
        cs->ts += cs->delta;
    }
    cs->started = 1;
    if (new_msg) {
        if (cs->len > r->max_message_size)
            return SL_ETOOBIG;
        cs->partial = sl_buf_new(cs->len);
        if (!cs->partial)
            return SL_ENOMEM;
    }
    uint32_t left = cs->len - cs->partial->len;
    r->cur = cs;
    r->chunk_left = left < r->chunk_size ? left : r->chunk_size;
    return 0;
}

int sl_rtmp_chunk_read(sl_rtmp_chunk_reader_t *r, const uint8_t *p, size_t n, size_t *used,
                       sl_rtmp_msg_t *out)
{
    size_t i = 0;
    for (;;) {
        if (!r->cur) {
            /* gather the header */
            if (i == n)
                break;
            if (r->hdr_have == 0)
                r->hdr[r->hdr_have++] = p[i++];
            size_t need;
            while ((need = header_need(r)) > r->hdr_have) {
                size_t take = need - r->hdr_have;
                if (take > n - i)
                    take = n - i;
                memcpy(r->hdr + r->hdr_have, p + i, take);
                r->hdr_have += (uint8_t)take;
                i += take;
                if (r->hdr_have < need) {
                    *used = i;
                    return 0;
                }
            }
            int rc = header_apply(r, need);
            r->hdr_have = 0;
            if (rc) {
                *used = i;
                return rc;
            }
        }
        sl_rtmp_cstate_t *cs = r->cur;
        size_t take = r->chunk_left;
        if (take > n - i)
            take = n - i;
        memcpy(cs->partial->data + cs->partial->len, p + i, take);
        cs->partial->len += (uint32_t)take;
        r->chunk_left -= (uint32_t)take;
        i += take;
        if (r->chunk_left > 0)
            break; /* input exhausted mid-chunk */
        r->cur = NULL;
        if (cs->partial->len == cs->len) {
            out->type = cs->type;
            out->csid = cs->csid;
            out->stream_id = cs->stream_id;
            out->ts = cs->ts;
            out->body = cs->partial;
            cs->partial = NULL;
            *used = i;
            return 1;
        }
    }
    *used = i;
    return 0;
}

static size_t basic_header(uint8_t *b, unsigned fmt, uint32_t csid)
{
    if (csid < 64) {
        b[0] = (uint8_t)(fmt << 6 | csid);
        return 1;
    }
    if (csid < 320) {
        b[0] = (uint8_t)(fmt << 6);
        b[1] = (uint8_t)(csid - 64);
        return 2;
    }
    b[0] = (uint8_t)(fmt << 6 | 1);
    b[1] = (uint8_t)((csid - 64) & 0xff);
    b[2] = (uint8_t)((csid - 64) >> 8);
    return 3;
}

int sl_rtmp_chunk_write(sl_wbuf_t *w, uint32_t csid, uint8_t type, uint32_t stream_id,
                        uint32_t ts, const uint8_t *payload, size_t len, uint32_t chunk_size)
{
    uint8_t h[18];
    size_t hl = basic_header(h, 0, csid);
    int ext = ts >= 0xFFFFFF;
    sl_wr_be24(h + hl, ext ? 0xFFFFFF : ts);
    sl_wr_be24(h + hl + 3, (uint32_t)len);
    h[hl + 6] = type;
    sl_wr_le32(h + hl + 7, stream_id);
    hl += 11;
    if (ext) {
        sl_wr_be32(h + hl, ts);
        hl += 4;
    }
    int rc = sl_wbuf_put(w, h, hl);
    size_t off = 0;
    while (!rc) {
        size_t take = len - off < chunk_size ? len - off : chunk_size;
        rc = sl_wbuf_put(w, payload + off, take);
        off += take;
        if (rc || off >= len)
            break;
        uint8_t c[7];
        size_t cl = basic_header(c, 3, csid);
        if (ext) {
            sl_wr_be32(c + cl, ts);
            cl += 4;
        }
        rc = sl_wbuf_put(w, c, cl);
    }
    return rc;
}

sl_buf_t *sl__rtmp_chunk_media_body_build(sl_frame_t *f, uint32_t chunk_size)
{
    uint32_t len = f->body->len;
    uint32_t n_cont = len ? (len - 1) / chunk_size : 0;
    sl_buf_t *b = sl_buf_new((size_t)len + n_cont);
    if (!b)
        return NULL;
    uint8_t cont = (uint8_t)(0xC0 | sl_rtmp_frame_csid(f));
    uint8_t *o = b->data;
    for (uint32_t off = 0; off < len;) {
        uint32_t take = len - off < chunk_size ? len - off : chunk_size;
        memcpy(o, f->body->data + off, take);
        o += take;
        off += take;
        if (off < len)
            *o++ = cont;
    }
    b->len = (uint32_t)(o - b->data);
    sl_buf_unref(f->enc[SL_ENC_RTMP]);
    f->enc[SL_ENC_RTMP] = b;
    f->enc_param[SL_ENC_RTMP] = chunk_size;
    return b;
}
