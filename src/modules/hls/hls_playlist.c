/*
 * The HLS segment store and playlist rendering (see hls_playlist.h for
 * the rules). Everything here runs on the loop thread, from the stream's
 * sink callback (adding segments and parts) and from HTTP handlers
 * (rendering, lookups); nothing blocks and nothing is shared.
 *
 * Durations are kept in integer milliseconds and printed with three
 * decimals, so a target duration computed from them is exact: a segment
 * of 6000 ms gives EXT-X-TARGETDURATION:6, one of 6001 ms gives 7.
 */
#include "modules/hls/hls_playlist.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "sluice/errors.h"

#define PARTS_LISTED_TDS 3 /* parts listed within this many target durations of the end */
#define PARTS_KEPT_TDS 4   /* part bytes kept within this many */
#define SKIP_TDS 6         /* CAN-SKIP-UNTIL in target durations */

static sl_hls_segment_t *at(const sl_hls_playlist_t *pl, uint32_t i)
{
    return &pl->ring[(pl->head + i) % pl->cap];
}

static void seg_clear(sl_hls_segment_t *s)
{
    for (uint32_t i = 0; i < s->n_parts; i++)
        sl_buf_unref(s->parts[i].data);
    sl_free(s->parts);
    sl_buf_unref(s->data);
    sl_buf_unref(s->init);
    memset(s, 0, sizeof(*s));
}

static void seg_drop_parts(sl_hls_segment_t *s)
{
    for (uint32_t i = 0; i < s->n_parts; i++)
        sl_buf_unref(s->parts[i].data);
    sl_free(s->parts);
    s->parts = NULL;
    s->n_parts = s->cap_parts = 0;
}

int sl_hls_pl_init(sl_hls_playlist_t *pl, uint32_t window, uint32_t extra, uint32_t seg_target_ms,
                   uint32_t part_target_ms, int fmp4)
{
    memset(pl, 0, sizeof(*pl));
    if (window < 1 || window > SL_HLS_MAX_WINDOW || extra > SL_HLS_MAX_WINDOW || seg_target_ms == 0)
        return SL_EINVAL;
    pl->cap = window + extra + 1;
    pl->ring = sl_calloc(pl->cap, sizeof(*pl->ring));
    if (!pl->ring)
        return SL_ENOMEM;
    pl->window = window;
    pl->seg_target_ms = seg_target_ms;
    pl->part_target_ms = part_target_ms;
    pl->fmp4 = fmp4 || part_target_ms > 0;
    return 0;
}

void sl_hls_pl_cleanup(sl_hls_playlist_t *pl)
{
    if (!pl->ring)
        return;
    for (uint32_t i = 0; i < pl->count; i++)
        seg_clear(at(pl, i));
    sl_free(pl->ring);
    memset(pl, 0, sizeof(*pl));
}

sl_hls_segment_t *sl_hls_pl_open(sl_hls_playlist_t *pl)
{
    if (!pl->count)
        return NULL;
    sl_hls_segment_t *s = at(pl, pl->count - 1);
    return s->complete ? NULL : s;
}

uint32_t sl_hls_pl_complete_count(const sl_hls_playlist_t *pl)
{
    if (!pl->count)
        return 0;
    return at(pl, pl->count - 1)->complete ? pl->count : pl->count - 1;
}

int sl_hls_pl_begin(sl_hls_playlist_t *pl, uint64_t pdt_ms, int discontinuity, sl_buf_t *init,
                    uint32_t init_gen, uint64_t *dropped_msn)
{
    if (dropped_msn)
        *dropped_msn = UINT64_MAX;
    if (!pl->ring || sl_hls_pl_open(pl))
        return SL_EINVAL;
    if (pl->count == pl->cap) {
        sl_hls_segment_t *old = at(pl, 0);
        if (dropped_msn)
            *dropped_msn = old->msn;
        pl->disc_dropped += old->discontinuity;
        seg_clear(old);
        pl->head = (pl->head + 1) % pl->cap;
        pl->count--;
    }
    sl_hls_segment_t *s = at(pl, pl->count);
    memset(s, 0, sizeof(*s));
    s->msn = pl->next_msn++;
    s->pdt_ms = pdt_ms;
    s->discontinuity = discontinuity ? 1 : 0;
    s->init = init ? sl_buf_ref(init) : NULL;
    s->init_gen = init_gen;
    pl->count++;
    return 0;
}

int sl_hls_pl_add_part(sl_hls_playlist_t *pl, sl_buf_t *data, uint32_t duration_ms, int independent)
{
    sl_hls_segment_t *s = sl_hls_pl_open(pl);
    if (!s || !pl->part_target_ms || !data)
        return SL_EINVAL;
    if (s->n_parts >= SL_HLS_MAX_PARTS_PER_SEG)
        return SL_ETOOBIG;
    if (s->n_parts == s->cap_parts) {
        uint32_t ncap = s->cap_parts ? s->cap_parts * 2 : 16;
        sl_hls_part_t *np = sl_realloc(s->parts, ncap * sizeof(*np));
        if (!np)
            return SL_ENOMEM;
        s->parts = np;
        s->cap_parts = ncap;
    }
    sl_hls_part_t *p = &s->parts[s->n_parts++];
    p->data = sl_buf_ref(data);
    p->index = pl->next_part++;
    p->duration_ms = duration_ms;
    p->independent = independent ? 1 : 0;
    s->duration_ms += duration_ms;
    return 0;
}

/*
 * Part bytes are released once their segment starts more than
 * PARTS_KEPT_TDS target durations before the end of the stored media;
 * rendering lists parts only up to PARTS_LISTED_TDS, so a listed part
 * always has its bytes.
 */
static void release_old_parts(sl_hls_playlist_t *pl)
{
    uint64_t keep_ms = (uint64_t)PARTS_KEPT_TDS * sl_hls_pl_target_s(pl) * 1000u;
    uint64_t from_end = 0;
    for (uint32_t i = pl->count; i-- > 0;) {
        sl_hls_segment_t *s = at(pl, i);
        from_end += s->duration_ms;
        if (from_end > keep_ms && s->complete && s->parts)
            seg_drop_parts(s);
    }
}

int sl_hls_pl_end(sl_hls_playlist_t *pl, sl_buf_t *data, uint32_t duration_ms)
{
    sl_hls_segment_t *s = sl_hls_pl_open(pl);
    if (!s || !data)
        return SL_EINVAL;
    s->data = sl_buf_ref(data);
    s->duration_ms = duration_ms;
    s->complete = 1;
    if (duration_ms > pl->max_seg_ms)
        pl->max_seg_ms = duration_ms;
    release_old_parts(pl);
    return 0;
}

int sl_hls_pl_abandon(sl_hls_playlist_t *pl)
{
    sl_hls_segment_t *s = sl_hls_pl_open(pl);
    if (!s)
        return 0;
    if (s->n_parts)
        return SL_EBUSY;
    seg_clear(s);
    pl->count--;
    pl->next_msn--;
    return 0;
}

const sl_hls_segment_t *sl_hls_pl_segment(const sl_hls_playlist_t *pl, uint64_t msn)
{
    if (!pl->count)
        return NULL;
    uint64_t first = at(pl, 0)->msn;
    if (msn < first || msn - first >= pl->count)
        return NULL;
    const sl_hls_segment_t *s = at(pl, (uint32_t)(msn - first));
    return s->complete ? s : NULL;
}

const sl_hls_part_t *sl_hls_pl_part(const sl_hls_playlist_t *pl, uint64_t index)
{
    /* Newest first: parts are asked for at the live edge. */
    for (uint32_t i = pl->count; i-- > 0;) {
        const sl_hls_segment_t *s = at(pl, i);
        if (!s->n_parts) {
            if (!s->complete)
                continue; /* the segment just opened: the part may be in the one before */
            return NULL;  /* older segments have dropped theirs */
        }
        if (index >= s->parts[0].index) {
            uint64_t k = index - s->parts[0].index;
            if (k < s->n_parts && s->parts[k].data)
                return &s->parts[k];
            return NULL;
        }
    }
    return NULL;
}

sl_buf_t *sl_hls_pl_init_section(const sl_hls_playlist_t *pl, uint32_t gen)
{
    for (uint32_t i = pl->count; i-- > 0;) {
        const sl_hls_segment_t *s = at(pl, i);
        if (s->init && s->init_gen == gen)
            return s->init;
    }
    return NULL;
}

uint32_t sl_hls_pl_target_s(const sl_hls_playlist_t *pl)
{
    uint32_t ms = pl->max_seg_ms ? pl->max_seg_ms : pl->seg_target_ms;
    uint32_t s = (ms + 999) / 1000;
    return s ? s : 1;
}

/* ------------------------------------------------------------------ */
/* rendering                                                           */

static int putf(sl_wbuf_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int putf(sl_wbuf_t *w, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        return SL_ETOOBIG;
    return sl_wbuf_put(w, line, (size_t)n);
}

/* "?query" or "" */
static const char *qsep(const sl_hls_render_opts_t *o) { return o->query && o->query[0] ? "?" : ""; }
static const char *qstr(const sl_hls_render_opts_t *o) { return o->query ? o->query : ""; }

/* ms as seconds with three decimals, e.g. 6000 -> "6.000". */
static void secs(char *out, size_t cap, uint64_t ms)
{
    snprintf(out, cap, "%" PRIu64 ".%03u", ms / 1000u, (unsigned)(ms % 1000u));
}

static int put_pdt(sl_wbuf_t *w, uint64_t wall_ms)
{
    time_t t = (time_t)(wall_ms / 1000u);
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return 0;
    return putf(w, "#EXT-X-PROGRAM-DATE-TIME:%04d-%02d-%02dT%02d:%02d:%02d.%03uZ\n",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                (unsigned)(wall_ms % 1000u));
}

static int put_parts(sl_wbuf_t *w, const sl_hls_segment_t *s, const sl_hls_render_opts_t *o)
{
    int rc = 0;
    char d[32];
    for (uint32_t k = 0; k < s->n_parts && !rc; k++) {
        const sl_hls_part_t *p = &s->parts[k];
        secs(d, sizeof d, p->duration_ms);
        rc = putf(w, "#EXT-X-PART:DURATION=%s,URI=\"%s_part%" PRIu64 ".m4s%s%s\"%s\n", d, o->name,
                  p->index, qsep(o), qstr(o), p->independent ? ",INDEPENDENT=YES" : "");
    }
    return rc;
}

/* The tags that open a segment's entry: discontinuity, map, date. */
static int put_segment_head(sl_wbuf_t *w, const sl_hls_playlist_t *pl, const sl_hls_segment_t *s,
                            const sl_hls_segment_t *prev, const sl_hls_render_opts_t *o)
{
    int rc = 0;
    if (s->discontinuity)
        rc = putf(w, "#EXT-X-DISCONTINUITY\n");
    if (!rc && pl->fmp4 && s->init && (!prev || prev->init_gen != s->init_gen))
        rc = putf(w, "#EXT-X-MAP:URI=\"%s_init%u.mp4%s%s\"\n", o->name, s->init_gen, qsep(o),
                  qstr(o));
    if (!rc && s->pdt_ms)
        rc = put_pdt(w, s->pdt_ms);
    return rc;
}

int sl_hls_pl_render(const sl_hls_playlist_t *pl, const sl_hls_render_opts_t *o, sl_wbuf_t *w)
{
    int ll = o->low_latency && pl->part_target_ms > 0;
    uint32_t td = sl_hls_pl_target_s(pl);
    uint32_t n_complete = sl_hls_pl_complete_count(pl);
    uint32_t first = n_complete > pl->window ? n_complete - pl->window : 0; /* ring position */
    const sl_hls_segment_t *open = pl->count && !at(pl, pl->count - 1)->complete ? at(pl, pl->count - 1) : NULL;
    char d[32];

    /* Media sequence and discontinuity sequence of the first listed segment. */
    uint64_t media_seq = first < pl->count ? at(pl, first)->msn : pl->next_msn;
    uint64_t disc_seq = pl->disc_dropped;
    for (uint32_t i = 0; i < first; i++)
        disc_seq += at(pl, i)->discontinuity;

    /* Playlist end, for the part window and delta updates. */
    uint64_t total_ms = 0;
    for (uint32_t i = first; i < pl->count; i++)
        total_ms += at(pl, i)->duration_ms;

    /* Delta update: skip whole segments that end before the skip boundary. */
    uint32_t skipped = 0;
    uint64_t skip_until_ms = (uint64_t)SKIP_TDS * td * 1000u;
    if (ll && o->skip) {
        uint64_t end_ms = 0;
        for (uint32_t i = first; i < n_complete; i++) {
            end_ms += at(pl, i)->duration_ms;
            if (total_ms - end_ms < skip_until_ms)
                break;
            skipped++;
        }
    }

    int rc = putf(w, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-TARGETDURATION:%u\n",
                  ll ? 9 : pl->fmp4 ? 7 : 3, td);
    if (!rc && ll) {
        secs(d, sizeof d, 3u * pl->part_target_ms);
        rc = putf(w, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=%u.0,PART-HOLD-BACK=%s\n",
                  SKIP_TDS * td, d);
        secs(d, sizeof d, pl->part_target_ms);
        rc = rc ? rc : putf(w, "#EXT-X-PART-INF:PART-TARGET=%s\n", d);
    }
    rc = rc ? rc : putf(w, "#EXT-X-MEDIA-SEQUENCE:%" PRIu64 "\n", media_seq);
    if (!rc && disc_seq)
        rc = putf(w, "#EXT-X-DISCONTINUITY-SEQUENCE:%" PRIu64 "\n", disc_seq);
    if (!rc && skipped)
        rc = putf(w, "#EXT-X-SKIP:SKIPPED-SEGMENTS=%u\n", skipped);

    /* Complete segments; parts for those near the end (LL). */
    uint64_t before_ms = 0; /* media time before segment i within the listing */
    for (uint32_t i = first; i < first + skipped; i++)
        before_ms += at(pl, i)->duration_ms;
    const sl_hls_segment_t *prev = NULL;
    uint64_t parts_from_ms = (uint64_t)PARTS_LISTED_TDS * td * 1000u;
    for (uint32_t i = first + skipped; i < n_complete && !rc; i++) {
        const sl_hls_segment_t *s = at(pl, i);
        rc = put_segment_head(w, pl, s, prev, o);
        if (!rc && ll && s->n_parts && total_ms - before_ms <= parts_from_ms)
            rc = put_parts(w, s, o);
        secs(d, sizeof d, s->duration_ms);
        rc = rc ? rc : putf(w, "#EXTINF:%s,\n%s_%" PRIu64 "%s%s%s\n", d, o->name, s->msn, o->seg_ext,
                            qsep(o), qstr(o));
        before_ms += s->duration_ms;
        prev = s;
    }
    /* The open segment's parts, then the hint for the next part (LL). */
    if (!rc && ll && open && open->n_parts) {
        rc = put_segment_head(w, pl, open, prev, o);
        rc = rc ? rc : put_parts(w, open, o);
    }
    if (!rc && ll && !pl->ended)
        rc = putf(w, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%s_part%" PRIu64 ".m4s%s%s\"\n", o->name,
                  pl->next_part, qsep(o), qstr(o));
    if (!rc && pl->ended)
        rc = putf(w, "#EXT-X-ENDLIST\n");
    return rc;
}

/* ------------------------------------------------------------------ */
/* blocking reload                                                     */

/* Parts a request may run ahead of the last one (rfc8216bis 6.2.5.2). */
static int64_t advance_part_limit(const sl_hls_playlist_t *pl)
{
    if (pl->part_target_ms >= 1000)
        return 3;
    return (3000 + pl->part_target_ms - 1) / pl->part_target_ms;
}

sl_hls_block_t sl_hls_pl_block_check(const sl_hls_playlist_t *pl, int64_t msn, int64_t part)
{
    if (pl->ended)
        return SL_HLS_BLOCK_READY;
    if (msn < 0)
        return SL_HLS_BLOCK_BAD;
    int parts = pl->part_target_ms > 0;
    if (!parts)
        part = -1;
    uint32_t n_complete = sl_hls_pl_complete_count(pl);
    const sl_hls_segment_t *open = pl->count && !at(pl, pl->count - 1)->complete ? at(pl, pl->count - 1) : NULL;
    int64_t last_complete = n_complete ? (int64_t)at(pl, n_complete - 1)->msn : -1;
    /* The last segment the playlist shows: the open one once it has parts. */
    int64_t last_listed = open && parts && open->n_parts ? (int64_t)open->msn : last_complete;
    if (msn <= last_complete)
        return SL_HLS_BLOCK_READY; /* a complete segment holds every part it will ever have */
    if (part >= 0 && open && msn == (int64_t)open->msn && part < (int64_t)open->n_parts)
        return SL_HLS_BLOCK_READY;
    if (msn > last_listed + 2)
        return SL_HLS_BLOCK_BAD;
    if (part >= 0) {
        int64_t cur = open ? (int64_t)open->msn : (int64_t)pl->next_msn;
        int64_t have = open ? (int64_t)open->n_parts : 0;
        int64_t limit = advance_part_limit(pl);
        if ((msn == cur && part >= have + limit) || (msn > cur && part >= limit))
            return SL_HLS_BLOCK_BAD;
    }
    return SL_HLS_BLOCK_WAIT;
}

sl_hls_block_t sl_hls_pl_part_check(const sl_hls_playlist_t *pl, uint64_t index)
{
    if (sl_hls_pl_part(pl, index))
        return SL_HLS_BLOCK_READY;
    if (index == pl->next_part && !pl->ended && pl->part_target_ms)
        return SL_HLS_BLOCK_WAIT;
    return SL_HLS_BLOCK_BAD;
}
