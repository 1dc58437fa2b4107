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
 *
 * Budget: every byte of buffer capacity a partial message holds has been
 * reserved with reserve() and goes back through partial_drop() or when the
 * message completes, so `held` is always the sum of the capacities of the
 * partial buffers and the pool's count the sum over readers. A peer that
 * declares 8 MB and sends one chunk costs that chunk (or 4 KB), not 8 MB.
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
    r->max_partial = SL_RTMP_MAX_CSIDS;
}

void sl_rtmp_chunk_reader_set_budget(sl_rtmp_chunk_reader_t *r, int64_t max_held,
                                     uint32_t max_partial, sl_byte_pool_t *pool)
{
    r->max_held = max_held > 0 ? max_held : 0;
    r->max_partial = max_partial ? max_partial : SL_RTMP_MAX_CSIDS;
    if (pool != r->pool) {
        /* What is held already moves with the reader, even past the new
         * pool's limit: it is memory that exists. */
        sl_byte_pool_give(r->pool, r->held);
        if (pool)
            pool->used += r->held;
        r->pool = pool;
    }
}

/* Smallest buffer a partial message starts with (unless declared smaller). */
#define PARTIAL_MIN_BYTES 4096

/*
 * Reserves delta more bytes of partial-message capacity: 0, or SL_ETOOBIG
 * with r->over and r->over_want set and nothing taken.
 */
static int reserve(sl_rtmp_chunk_reader_t *r, int64_t delta)
{
    if (r->max_held && r->held + delta > r->max_held) {
        r->over = SL_RTMP_OVER_CONN;
        r->over_want = r->held + delta;
        return SL_ETOOBIG;
    }
    if (!sl_byte_pool_take(r->pool, delta) &&
        !(r->pool_full && r->pool_full(r->pool_full_ud, delta) &&
          sl_byte_pool_take(r->pool, delta))) {
        r->over = SL_RTMP_OVER_SERVER;
        r->over_want = r->held + delta;
        return SL_ETOOBIG;
    }
    r->held += delta;
    return 0;
}

static void release(sl_rtmp_chunk_reader_t *r, int64_t n)
{
    r->held -= n;
    sl_byte_pool_give(r->pool, n);
}

/* Frees the partial message of cs, if any, and gives its bytes back. */
static void partial_drop(sl_rtmp_chunk_reader_t *r, sl_rtmp_cstate_t *cs)
{
    if (!cs->partial)
        return;
    release(r, cs->partial->cap);
    sl_buf_unref(cs->partial);
    cs->partial = NULL;
    r->n_partial--;
}

void sl_rtmp_chunk_reader_cleanup(sl_rtmp_chunk_reader_t *r)
{
    for (uint32_t i = 0; i < r->n_cs; i++)
        partial_drop(r, &r->cs[i]);
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
    partial_drop(r, cs);
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

/*
 * Applies a complete header in r->hdr; sets r->cur and r->chunk_left.
 * avail: input bytes after the header in this read, which sizes the first
 * buffer of a new message (a frame that arrived whole is allocated once).
 */
static int header_apply(sl_rtmp_chunk_reader_t *r, size_t hlen, size_t avail)
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
    if (fmt <= 1 && sl_rd_be24(h + off + 3) > r->max_message_size) {
        r->over = SL_RTMP_OVER_MESSAGE;
        return SL_ETOOBIG;
    }
    int oom = 0;
    sl_rtmp_cstate_t *cs = cstate_find(r, csid, fmt == 0, &oom);
    if (!cs) {
        if (!oom && fmt == 0)
            r->over = SL_RTMP_OVER_CSIDS;
        return oom ? SL_ENOMEM : fmt == 0 ? SL_ETOOBIG : SL_EPROTO; /* too many streams / no prior header */
    }
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
        partial_drop(r, cs); /* lenient: a new header abandons the half message */
    } else if (cs->partial) {
        new_msg = 0; /* continuation */
    } else {
        cs->ts += cs->delta;
    }
    cs->started = 1;
    if (new_msg) {
        if (cs->len > r->max_message_size) {
            r->over = SL_RTMP_OVER_MESSAGE;
            return SL_ETOOBIG;
        }
        if (r->n_partial >= r->max_partial) {
            r->over = SL_RTMP_OVER_PARTIAL;
            return SL_ETOOBIG;
        }
        uint32_t first = cs->len;
        size_t want = avail > PARTIAL_MIN_BYTES ? avail : PARTIAL_MIN_BYTES;
        if (first > want)
            first = (uint32_t)want;
        int rc = reserve(r, first);
        if (rc)
            return rc;
        cs->partial = sl_buf_new(first);
        if (!cs->partial) {
            release(r, first);
            return SL_ENOMEM;
        }
        r->n_partial++;
    }
    uint32_t left = cs->len - cs->partial->len;
    r->cur = cs;
    r->chunk_left = left < r->chunk_size ? left : r->chunk_size;
    return 0;
}

/*
 * Makes room in the partial message of cs for need more bytes (it has
 * fewer): doubles its capacity, or takes what the rest of this read holds
 * when that is more, never past the declared length. When the budget
 * refuses that, exactly what is needed is tried before giving up, so a
 * peer is refused only for bytes it has really sent. 0, SL_ETOOBIG (r->over
 * set) or SL_ENOMEM; cs->partial stays valid either way.
 */
static int partial_grow(sl_rtmp_chunk_reader_t *r, sl_rtmp_cstate_t *cs, size_t need, size_t avail)
{
    sl_buf_t *b = cs->partial;
    uint64_t min = (uint64_t)b->len + need;
    uint64_t ncap = (uint64_t)b->cap * 2;
    if (ncap < (uint64_t)b->len + avail)
        ncap = (uint64_t)b->len + avail;
    if (ncap > cs->len)
        ncap = cs->len;
    if (ncap < min)
        ncap = min;
    if (reserve(r, (int64_t)(ncap - b->cap))) {
        if (ncap == min || reserve(r, (int64_t)(min - b->cap)))
            return SL_ETOOBIG;
        r->over = SL_RTMP_OVER_NONE;
        ncap = min;
    }
    sl_buf_t *nb = sl_realloc(b, sizeof(*nb) + ncap);
    if (!nb) {
        release(r, (int64_t)(ncap - b->cap));
        return SL_ENOMEM;
    }
    nb->cap = (uint32_t)ncap;
    cs->partial = nb;
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
            int rc = header_apply(r, need, n - i);
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
        if (cs->partial->len + take > cs->partial->cap) {
            int rc = partial_grow(r, cs, take, n - i);
            if (rc) {
                *used = i;
                return rc;
            }
        }
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
            release(r, out->body->cap); /* the caller's now; cap == len here */
            r->n_partial--;
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
    if (!sl_frame_enc_claim(f, SL_ENC_RTMP, chunk_size))
        return NULL; /* another loop builds it, or built it for another chunk size */
    uint32_t len = f->body->len;
    uint32_t n_cont = len ? (len - 1) / chunk_size : 0;
    sl_buf_t *b = sl_buf_new((size_t)len + n_cont);
    if (!b) {
        sl_frame_enc_abandon(f, SL_ENC_RTMP);
        return NULL;
    }
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
    sl_frame_enc_publish(f, SL_ENC_RTMP, b);
    return b;
}
