/*
 * VOD: a recorded FLV file played into one subscriber's sink, as if it
 * were a live stream paced at real time (the "vod" service's open, seek,
 * pause, close: app/svc/vod.h, used by RTMP for play("name.flv") /
 * play("flv:name")). The protocol's own sink,
 * queue and writer do the rest, so a VOD player costs what a live one does.
 *
 * The file is read with uv_fs_read on libuv's thread pool into a buffer
 * of whole tags, never on the loop. Tags are handed to the sink when their
 * timestamp is due (wall clock since the first one, LEAD_MS ahead so the
 * player's buffer fills), from a timer. Seeking scans the file from the
 * start for the last video keyframe at or before the target (keeping the
 * latest configs and metadata met on the way), then plays from there
 * after handing over those configs. Pausing stops the clock. At the end,
 * once the last tag is due, on_end tells the protocol (Play.Complete).
 *
 * MP4 files (media/mp4_read.c) are read on the same thread pool, with
 * uv_queue_work: the work demuxes a batch of samples with libavformat and
 * turns them into FLV tags (onMetaData and sequence headers first), which
 * land in the same buffer; from there the FLV path above paces them. A
 * seek is done by the demuxer (av_seek_frame to the keyframe at or before
 * the target) in the next batch instead of a scan.
 *
 * Lifetime: vod_close may be called from inside on_frame/on_end (the
 * protocol closing); it only marks the player closing, and the memory goes
 * in the timer's close callback, after any read in flight has come back.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "media/flv.h"
#include "media/frame.h"
#include "media/mp4_read.h"
#include "modules/vod/vod_internal.h"
#include "sluice/errors.h"

#define READ_BYTES (256 * 1024)     /* one read */
#define MAX_TAG_BYTES (16u << 20)   /* larger tags end the file (corrupt) */
#define LEAD_MS 500                 /* tags are handed over this much before they are due */
#define FLV_TAG_HEADER 11

typedef struct sl_vod {
    uv_loop_t *loop;
    uv_file fd;
    sl_sink_t *sink;                /* the player's sink (borrowed until close) */
    void (*on_end)(void *ctx);
    void *ctx;
    uint8_t *buf;                   /* file bytes [buf_file_off, buf_file_off + buf_len) */
    size_t buf_cap, buf_len, buf_pos;
    uint64_t buf_file_off;
    uint64_t data_off;              /* first tag's offset */
    int eof;                        /* the last read hit the end of the file */
    uv_fs_t fs;
    int reading;
    unsigned gen, read_gen;         /* a seek bumps gen: a read issued before it is dropped */
    uv_timer_t timer;
    int closing, ended, paused, failed;
    uint64_t pause_start;
    /* seeking */
    int seeking;
    uint32_t target_ms;
    uint64_t key_off;               /* last keyframe at or before the target */
    sl_frame_t *vcfg, *acfg, *meta; /* met while seeking (owned refs) */
    /* clock */
    int clock_set;
    uint64_t wall0;                 /* loop time of ts0 */
    uint32_t ts0;
    uint32_t last_ts;
    /* MP4: the reader and one batch, used by the work only while `reading` */
    int mp4;
    char *file;                     /* owned */
    uv_work_t work;
    sl_mp4_reader_t *rd;            /* opened by the first batch (work side) */
    int seek_pending;               /* (loop) a seek for the next batch */
    uint32_t seek_ms;
    int w_seek;                     /* the batch's seek, its target */
    uint32_t w_seek_ms;
    size_t w_want;
    uint8_t *w_buf;                 /* the batch's FLV tags (owned) */
    size_t w_len, w_cap;
    int w_rc;                       /* 0, 1 at the end, or an error */
} sl_vod_t;

static const sl_log_ctx_t g_ctx = {.proto = "vod"};

static void pump(sl_vod_t *v);

static void drop_saved(sl_vod_t *v)
{
    sl_frame_t **slots[3] = {&v->vcfg, &v->acfg, &v->meta};
    for (int i = 0; i < 3; i++) {
        if (*slots[i])
            sl_frame_unref(*slots[i]);
        *slots[i] = NULL;
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    sl_vod_t *v = h->data;
    drop_saved(v);
    if (v->fd >= 0)
        close(v->fd);
    sl_mp4_reader_close(v->rd);
    sl_free(v->w_buf);
    sl_free(v->file);
    sl_free(v->buf);
    sl_free(v);
}

static void finish_close(sl_vod_t *v)
{
    if (v->reading || uv_is_closing((uv_handle_t *)&v->timer))
        return;
    uv_close((uv_handle_t *)&v->timer, on_timer_closed);
}

/* Restarts reading at file offset off (buffer emptied). */
static void reposition(sl_vod_t *v, uint64_t off)
{
    v->buf_file_off = off;
    v->buf_len = v->buf_pos = 0;
    v->eof = 0;
}

static void on_read(uv_fs_t *fs)
{
    sl_vod_t *v = fs->data;
    ssize_t n = fs->result;
    uv_fs_req_cleanup(fs);
    v->reading = 0;
    if (v->closing) {
        finish_close(v);
        return;
    }
    if (v->read_gen != v->gen) {
        pump(v); /* a seek moved on: this read's bytes are for the old position */
        return;
    }
    if (n < 0) {
        SL_LOGW(&g_ctx, "vod: read failed: %s", uv_strerror((int)n));
        v->failed = 1;
        v->eof = 1;
    } else if (n == 0) {
        v->eof = 1;
    } else {
        v->buf_len += (size_t)n;
    }
    pump(v);
}

/* Thread pool: one MP4 batch (open on the first, seek when asked). */
static void mp4_work(uv_work_t *req)
{
    sl_vod_t *v = req->data;
    int rc = 0;
    if (!v->rd)
        rc = sl_mp4_reader_open(v->file, &v->rd);
    if (!rc && v->w_seek)
        rc = sl_mp4_reader_seek(v->rd, v->w_seek_ms);
    v->w_len = 0;
    if (!rc)
        rc = sl_mp4_reader_read(v->rd, v->w_want, &v->w_buf, &v->w_len, &v->w_cap);
    v->w_rc = rc;
}

static void mp4_after(uv_work_t *req, int status)
{
    sl_vod_t *v = req->data;
    v->reading = 0;
    if (v->closing) {
        finish_close(v);
        return;
    }
    if (v->read_gen != v->gen) {
        pump(v); /* a seek moved on: this batch is for the old position */
        return;
    }
    if (status < 0 || v->w_rc < 0) {
        SL_LOGW(&g_ctx, "vod: reading %s failed: %s", v->file,
                sl_strerror(status < 0 ? status : v->w_rc));
        v->failed = v->eof = 1;
    } else {
        if (v->buf_len + v->w_len > v->buf_cap) {
            uint8_t *nb = sl_realloc(v->buf, v->buf_len + v->w_len);
            if (!nb) {
                v->failed = v->eof = 1;
                pump(v);
                return;
            }
            v->buf = nb;
            v->buf_cap = v->buf_len + v->w_len;
        }
        if (v->w_len)
            memcpy(v->buf + v->buf_len, v->w_buf, v->w_len);
        v->buf_len += v->w_len;
        if (v->w_rc == 1)
            v->eof = 1;
    }
    pump(v);
}

/* Drops the bytes already played from the front of the buffer. */
static void compact(sl_vod_t *v)
{
    if (v->buf_pos) {
        memmove(v->buf, v->buf + v->buf_pos, v->buf_len - v->buf_pos);
        v->buf_len -= v->buf_pos;
        v->buf_file_off += v->buf_pos;
        v->buf_pos = 0;
    }
}

/* MP4: starts a batch of at least `need` bytes of tags. */
static void fill_mp4(sl_vod_t *v, size_t need)
{
    compact(v);
    v->w_seek = v->seek_pending;
    v->w_seek_ms = v->seek_ms;
    v->seek_pending = 0;
    v->w_want = need > READ_BYTES ? need : READ_BYTES;
    v->read_gen = v->gen;
    v->work.data = v;
    if (uv_queue_work(v->loop, &v->work, mp4_work, mp4_after)) {
        v->failed = v->eof = 1;
        return;
    }
    v->reading = 1;
}

/* Starts a read of more bytes behind the buffer (making room first). */
static void fill(sl_vod_t *v, size_t need)
{
    if (v->reading || v->eof)
        return;
    if (v->mp4) {
        fill_mp4(v, need);
        return;
    }
    compact(v);
    size_t want = need > v->buf_len + READ_BYTES ? need : v->buf_len + READ_BYTES;
    if (want > v->buf_cap) {
        uint8_t *nb = sl_realloc(v->buf, want);
        if (!nb) {
            v->failed = v->eof = 1;
            return;
        }
        v->buf = nb;
        v->buf_cap = want;
    }
    uv_buf_t iov = uv_buf_init((char *)v->buf + v->buf_len, (unsigned)(v->buf_cap - v->buf_len));
    v->fs.data = v;
    v->read_gen = v->gen;
    if (uv_fs_read(v->loop, &v->fs, v->fd, &iov, 1, (int64_t)(v->buf_file_off + v->buf_len),
                   on_read)) {
        v->failed = v->eof = 1;
        return;
    }
    v->reading = 1;
}

/* The tag at buf_pos: 1 when whole (type/ts/body filled), 0 when more bytes are needed
 * (a read was started or the file ended: see v->eof), -1 when corrupt. */
static int peek_tag(sl_vod_t *v, uint8_t *type, uint32_t *ts, const uint8_t **body, size_t *len)
{
    size_t avail = v->buf_len - v->buf_pos;
    const uint8_t *p = v->buf + v->buf_pos;
    if (avail < FLV_TAG_HEADER) {
        fill(v, FLV_TAG_HEADER);
        return 0;
    }
    size_t n = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    if (n > MAX_TAG_BYTES)
        return -1;
    if (avail < FLV_TAG_HEADER + n + 4) {
        fill(v, FLV_TAG_HEADER + n + 4);
        return 0;
    }
    *type = p[0] & 0x1f;
    *ts = ((uint32_t)p[4] << 16 | (uint32_t)p[5] << 8 | p[6]) | (uint32_t)p[7] << 24;
    *body = p + FLV_TAG_HEADER;
    *len = n;
    return 1;
}

static sl_frame_t *make_frame(uint8_t type, uint32_t ts, const uint8_t *body, size_t len)
{
    if (type != SL_FLV_AUDIO && type != SL_FLV_VIDEO && type != SL_FLV_DATA)
        return NULL;
    if (len == 0)
        return NULL;
    sl_buf_t *b = sl_buf_from(body, len);
    if (!b)
        return NULL;
    sl_frame_t *f;
    if (sl_frame_new(type, ts, b, &f))
        return NULL;
    if (type == SL_FLV_DATA && len >= 13 && memcmp(body, "\x02\x00\x0aonMetaData", 13) == 0)
        f->flags |= SL_FRAME_META;
    return f;
}

/* Hands a frame to the sink; 1 if the player closed us meanwhile. */
static int deliver(sl_vod_t *v, sl_frame_t *f)
{
    v->sink->ops->on_frame(v->sink, f);
    return v->closing;
}

/* Seeking: scans for the keyframe; returns 1 when the scan is over. */
static int scan_step(sl_vod_t *v)
{
    uint8_t type;
    uint32_t ts;
    const uint8_t *body;
    size_t len;
    for (;;) {
        int r = peek_tag(v, &type, &ts, &body, &len);
        if (r == 0 && !v->eof)
            return 0; /* waiting for a read */
        int done = r != 1;
        if (r == 1 && type != SL_FLV_DATA && ts > v->target_ms)
            done = 1;
        if (done) {
            v->seeking = 0;
            reposition(v, v->key_off);
            /* Hand over what the keyframe needs: metadata and configs. */
            sl_frame_t *saved[3] = {v->meta, v->vcfg, v->acfg};
            for (int i = 0; i < 3; i++)
                if (saved[i] && deliver(v, saved[i]))
                    return 1;
            return 1;
        }
        uint64_t off = v->buf_file_off + v->buf_pos;
        /* Only what may be metadata, a config or a keyframe is parsed (copied). */
        int want = type == SL_FLV_DATA;
        if (type == SL_FLV_VIDEO && len)
            want = ((body[0] >> 4) & 7) == 1;
        else if (type == SL_FLV_AUDIO && len)
            want = (body[0] >> 4) == 9 || ((body[0] >> 4) == 10 && len > 1 && body[1] == 0);
        sl_frame_t *f = want ? make_frame(type, ts, body, len) : NULL;
        if (f) {
            sl_frame_t **slot = NULL;
            if (f->flags & SL_FRAME_META)
                slot = &v->meta;
            else if (f->flags & SL_FRAME_CONFIG)
                slot = f->kind == SL_FLV_VIDEO ? &v->vcfg : &v->acfg;
            else if (f->kind == SL_FLV_VIDEO && (f->flags & SL_FRAME_KEY))
                v->key_off = off;
            if (slot) {
                if (*slot)
                    sl_frame_unref(*slot);
                *slot = f;
            } else {
                sl_frame_unref(f);
            }
        }
        v->buf_pos += FLV_TAG_HEADER + len + 4;
    }
}

static void on_timer(uv_timer_t *t)
{
    pump(t->data);
}

static void pump(sl_vod_t *v)
{
    if (v->closing || v->paused || v->ended)
        return;
    if (v->seeking && !scan_step(v))
        return;
    if (v->closing)
        return;
    uint8_t type;
    uint32_t ts;
    const uint8_t *body;
    size_t len;
    for (;;) {
        int r = peek_tag(v, &type, &ts, &body, &len);
        if (r == 0 && !v->eof)
            return; /* on_read calls again */
        if (r != 1) {
            /* The end: Play.Complete once the last tag is due. */
            uint64_t now = uv_now(v->loop);
            uint64_t due = v->clock_set ? v->wall0 + (v->last_ts - v->ts0) : now;
            if (due > now) {
                uv_timer_start(&v->timer, on_timer, due - now, 0);
                v->eof = 1;
                return;
            }
            v->ended = 1;
            if (v->on_end)
                v->on_end(v->ctx);
            return;
        }
        uint64_t now = uv_now(v->loop);
        if (type != SL_FLV_DATA) {
            if (!v->clock_set) {
                v->clock_set = 1;
                v->ts0 = ts;
                v->wall0 = now;
            }
            uint64_t due = v->wall0 + (ts >= v->ts0 ? ts - v->ts0 : 0);
            if (due > now + LEAD_MS) {
                uv_timer_start(&v->timer, on_timer, due - now - LEAD_MS, 0);
                return;
            }
            if (ts > v->last_ts)
                v->last_ts = ts;
        }
        sl_frame_t *f = make_frame(type, ts, body, len);
        v->buf_pos += FLV_TAG_HEADER + len + 4;
        if (f) {
            int closed = deliver(v, f);
            sl_frame_unref(f);
            if (closed)
                return;
        }
    }
}

/* The "vod" service's calls (vod.c), declared in vod_internal.h. */

int sl__vod_play_open(uv_loop_t *loop, const char *file, uint32_t start_ms, sl_sink_t *sink,
                      void (*on_end)(void *ctx), void *ctx, void **out)
{
    struct stat stt;
    if (stat(file, &stt) || !S_ISREG(stt.st_mode))
        return SL_ENOTFOUND;
    sl_vod_t *v = sl_calloc(1, sizeof *v);
    if (!v)
        return SL_ENOMEM;
    size_t n = strlen(file);
    v->mp4 = n >= 4 && strcmp(file + n - 4, ".mp4") == 0;
    if (v->mp4) {
        /* libavformat opens the file by name in the first batch. */
        v->fd = -1;
        if (!(v->file = sl_strdup(file))) {
            sl_free(v);
            return SL_ENOMEM;
        }
    } else if ((v->fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
        sl_free(v);
        return SL_ENOTFOUND;
    }
    v->loop = loop;
    v->sink = sink;
    v->on_end = on_end;
    v->ctx = ctx;
    uv_timer_init(v->loop, &v->timer);
    v->timer.data = v;
    /* Our recordings (and nearly every FLV) have a 9-byte header; the scan treats
     * anything else at that offset as the end of the file. */
    v->data_off = 13;
    v->key_off = v->data_off;
    reposition(v, v->data_off);
    if (start_ms > 0 && v->mp4) {
        v->seek_pending = 1;
        v->seek_ms = start_ms;
    } else if (start_ms > 0) {
        v->seeking = 1;
        v->target_ms = start_ms;
    }
    *out = v;
    pump(v);
    return 0;
}

void sl__vod_play_seek(void *vod, uint32_t ms)
{
    sl_vod_t *v = vod;
    if (v->closing)
        return;
    uv_timer_stop(&v->timer);
    drop_saved(v);
    v->ended = 0;
    v->clock_set = 0;
    v->last_ts = 0;
    v->key_off = v->data_off;
    v->seeking = ms > 0 && !v->mp4;
    v->target_ms = ms;
    if (v->mp4) {
        v->seek_pending = 1; /* the next batch seeks (a batch in flight is dropped) */
        v->seek_ms = ms;
    }
    v->gen++; /* a read in flight is for the old position: on_read drops it */
    reposition(v, v->data_off);
    if (!v->reading)
        pump(v);
}

void sl__vod_play_pause(void *vod, int pause)
{
    sl_vod_t *v = vod;
    uint64_t now = uv_now(v->loop);
    if (pause && !v->paused) {
        v->paused = 1;
        v->pause_start = now;
        uv_timer_stop(&v->timer);
    } else if (!pause && v->paused) {
        v->paused = 0;
        v->wall0 += now - v->pause_start;
        if (!v->reading)
            pump(v);
    }
}

void sl__vod_play_close(void *vod)
{
    sl_vod_t *v = vod;
    if (!v || v->closing)
        return;
    v->closing = 1;
    v->sink = NULL;
    uv_timer_stop(&v->timer);
    finish_close(v);
}
