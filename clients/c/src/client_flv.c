/*
 * FLV files in libsluice-client: the incremental tag parser (bytes in, tags
 * out) shared by the public reader (sl_client_flv_*) and the publishing
 * source, the FLV writer of play-to-file, and the publishing source of
 * sl_client_publish_flv with its real-time pacing and looping.
 *
 * Only the file container is handled here (header, 11-byte tag headers,
 * previous-tag-size fields). What a tag body means (codec, keyframe,
 * sequence header) is read by src/media/flv.c, the server's parser, so the
 * client and the server always agree on what a keyframe is.
 *
 * Pacing (SL_CLIENT_FLV_REALTIME): the first tag sent after publishing
 * starts fixes (wall t0, timestamp ts0); a later tag with timestamp ts goes
 * out at t0 + (ts - ts0). A tag that is not yet due is copied aside and a
 * timer fires when it is. Without REALTIME, tags go out as fast as the
 * socket drains: the source stops when more than half of max_queue_bytes
 * waits to be written and resumes from the write callback. Looping rebases
 * the next pass so that timestamps continue past the last one sent.
 *
 * Standard input is read through a libuv pipe when it is one, so a slow
 * producer (ffmpeg writing FLV to a pipe) never blocks the loop; the pipe
 * is paused while more than SRC_PIPE_HIGH bytes wait in the parser.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "client_internal.h"
#include "media/flv.h"
#include "sluice/errors.h"

#define PARSER_CAP (2u * SL__CLIENT_MAX_TAG)
#define READ_CHUNK 65536
#define SRC_PIPE_HIGH (4u * 1024u * 1024u)
#define DEFAULT_FRAME_GAP_MS 40

/* ------------------------------------------------------------------ */
/* parser                                                              */

/*
 * The parser functions below implement client_internal.h's contract. The
 * buffer is capped at two maximal tags: a pipe that delivers faster than
 * the publisher sends is paused long before that (SRC_PIPE_HIGH).
 */
void sl__flv_parser_init(sl__flv_parser_t *p)
{
    memset(p, 0, sizeof(*p));
    sl_wbuf_init(&p->in, PARSER_CAP);
}

void sl__flv_parser_cleanup(sl__flv_parser_t *p)
{
    sl_wbuf_cleanup(&p->in);
}

void sl__flv_parser_reset(sl__flv_parser_t *p)
{
    sl_wbuf_reset(&p->in);
    p->off = 0;
    p->skip = 0;
    p->header_done = 0;
}

size_t sl__flv_parser_buffered(const sl__flv_parser_t *p)
{
    return p->in.len - p->off;
}

/*
 * Appends input, compacting consumed bytes away first. Bodies handed out
 * before this call point into the old layout and are invalid afterwards,
 * which is why the source copies a tag that has to wait.
 */
int sl__flv_parser_feed(sl__flv_parser_t *p, const uint8_t *b, size_t n)
{
    if (p->off) {
        /* Compact: bodies handed out earlier are documented as invalid now. */
        memmove(p->in.data, p->in.data + p->off, p->in.len - p->off);
        p->in.len -= p->off;
        p->off = 0;
    }
    return sl_wbuf_put(&p->in, b, n);
}

/*
 * Fills the derived fields of a frame from its body with the server's FLV
 * parser (media/flv.h). A sequence header is never a keyframe here, nor is
 * a video info/command frame or an end-of-sequence marker. Bodies the
 * parser refuses keep all flags at 0.
 */
void sl__flv_frame_classify(sl_client_frame_t *f)
{
    sl_flv_info_t info;
    f->keyframe = f->config = 0;
    f->cts_ms = 0;
    f->codec = 0;
    if (f->kind == SL_CLIENT_VIDEO && sl_flv_parse_video(f->body, f->len, &info) == 0) {
        f->keyframe = info.is_key && !info.is_config && !info.is_info && !info.is_eos;
        f->config = info.is_config;
        f->codec = info.codec;
        f->cts_ms = info.cts_ms;
    } else if (f->kind == SL_CLIENT_AUDIO && sl_flv_parse_audio(f->body, f->len, &info) == 0) {
        f->config = info.is_config;
        f->codec = info.codec;
    }
}

/*
 * Takes the next audio/video/data tag (other tag types are skipped). The
 * body in *f is borrowed from the parser until the next feed.
 */
int sl__flv_parser_next(sl__flv_parser_t *p, sl_client_frame_t *f)
{
    for (;;) {
        const uint8_t *b = p->in.data + p->off;
        size_t avail = p->in.len - p->off;
        if (!p->header_done) {
            if (avail < 9)
                return 0;
            if (b[0] != 'F' || b[1] != 'L' || b[2] != 'V')
                return SL_EPROTO;
            uint32_t data_off = sl_rd_be32(b + 5);
            if (data_off < 9 || data_off > 1024)
                return SL_EPROTO;
            p->header_done = 1;
            p->skip = data_off + 4; /* header, then PreviousTagSize0 */
            continue;
        }
        if (p->skip) {
            size_t k = avail < p->skip ? avail : p->skip;
            p->off += k;
            p->skip -= k;
            if (p->skip)
                return 0;
            continue;
        }
        if (avail < 11)
            return 0;
        if (b[0] & 0x20) /* encrypted tags (filter bit) are not FLV we can send */
            return SL_EPROTO;
        uint8_t type = b[0] & 0x1f;
        uint32_t size = sl_rd_be24(b + 1);
        uint32_t ts = sl_rd_be24(b + 4) | (uint32_t)b[7] << 24;
        if (size > SL__CLIENT_MAX_TAG)
            return SL_EPROTO;
        if (avail < 11 + (size_t)size)
            return 0;
        p->off += 11 + (size_t)size;
        p->skip = 4;
        if (type != SL_CLIENT_AUDIO && type != SL_CLIENT_VIDEO && type != SL_CLIENT_DATA)
            continue; /* unknown tag types are skipped, as players do */
        memset(f, 0, sizeof(*f));
        f->kind = type;
        f->ts_ms = ts;
        f->body = b + 11;
        f->len = size;
        sl__flv_frame_classify(f);
        return 1;
    }
}

/* ------------------------------------------------------------------ */
/* the public reader                                                   */

struct sl_client_flv {
    FILE *fp;              /* the file (owned unless stdin) */
    int is_stdin;
    sl__flv_parser_t p;
};

/*
 * Public reader (client.h): stdio reads, meant for local files. The reader
 * owns the FILE (except stdin) and the parser buffer.
 */
int sl_client_flv_open(const char *path, sl_client_flv_t **out)
{
    *out = NULL;
    sl_client_flv_t *r = sl_calloc(1, sizeof(*r));
    if (!r)
        return SL_ENOMEM;
    int rc = 0;
    r->is_stdin = strcmp(path, "-") == 0;
    r->fp = r->is_stdin ? stdin : fopen(path, "rb");
    if (!r->fp) {
        rc = -errno;
        goto fail;
    }
    sl__flv_parser_init(&r->p);
    *out = r;
    return 0;
fail:
    sl_free(r);
    return rc;
}

/* Next tag (client.h): 1, 0 at the end, SL_EPROTO/SL_EIO/SL_ENOMEM. */
int sl_client_flv_next(sl_client_flv_t *r, sl_client_frame_t *f)
{
    uint8_t buf[READ_CHUNK];
    for (;;) {
        int rc = sl__flv_parser_next(&r->p, f);
        if (rc)
            return rc;
        size_t n = fread(buf, 1, sizeof buf, r->fp);
        if (n == 0)
            return ferror(r->fp) ? SL_EIO : 0;
        rc = sl__flv_parser_feed(&r->p, buf, n);
        if (rc)
            return rc;
    }
}

/* Closes the file (not stdin) and frees the reader; NULL is ignored. */
void sl_client_flv_close(sl_client_flv_t *r)
{
    if (!r)
        return;
    if (r->fp && !r->is_stdin)
        fclose(r->fp);
    sl__flv_parser_cleanup(&r->p);
    sl_free(r);
}

/* ------------------------------------------------------------------ */
/* writer                                                              */

/*
 * Play-to-file: an FLV header announcing audio and video, then one tag per
 * received frame with timestamps rebased so that the file starts at 0.
 * Writes are buffered stdio on the loop thread: a local file takes them in
 * microseconds; a full disk shows up as an error once and stops writing.
 */
int sl__flv_writer_open(sl__flv_writer_t *w, const char *path)
{
    static const uint8_t hdr[13] = {'F', 'L', 'V', 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0};
    memset(w, 0, sizeof(*w));
    w->base_ts = -1;
    w->is_stdout = strcmp(path, "-") == 0;
    w->fp = w->is_stdout ? stdout : fopen(path, "wb");
    if (!w->fp)
        return -errno;
    if (fwrite(hdr, 1, sizeof hdr, w->fp) != sizeof hdr) {
        int rc = -errno;
        sl__flv_writer_close(w);
        return rc ? rc : SL_EIO;
    }
    return 0;
}

/* True for a data body whose first value is the string "onMetaData". */
static int is_metadata(const uint8_t *b, size_t n)
{
    return n >= 13 && b[0] == 0x02 && sl_rd_be16(b + 1) == 10 && memcmp(b + 3, "onMetaData", 10) == 0;
}

/* Appends one tag; f is borrowed for the call. */
int sl__flv_writer_put(sl__flv_writer_t *w, const sl_client_frame_t *f)
{
    if (w->failed || !w->fp)
        return SL_EIO;
    if (f->kind == SL_CLIENT_DATA && !is_metadata(f->body, f->len))
        return 0;
    if (f->len > 0xFFFFFF)
        return SL_ETOOBIG;
    if (w->base_ts < 0 && f->kind != SL_CLIENT_DATA)
        w->base_ts = f->ts_ms;
    uint32_t ts = w->base_ts >= 0 && f->ts_ms >= (uint64_t)w->base_ts ? f->ts_ms - (uint32_t)w->base_ts : 0;
    uint8_t h[11], tail[4];
    h[0] = (uint8_t)f->kind;
    sl_wr_be24(h + 1, (uint32_t)f->len);
    sl_wr_be24(h + 4, ts & 0xFFFFFF);
    h[7] = (uint8_t)(ts >> 24);
    sl_wr_be24(h + 8, 0);
    sl_wr_be32(tail, (uint32_t)f->len + 11);
    if (fwrite(h, 1, 11, w->fp) != 11 || fwrite(f->body, 1, f->len, w->fp) != f->len ||
        fwrite(tail, 1, 4, w->fp) != 4) {
        w->failed = 1;
        return errno ? -errno : SL_EIO;
    }
    return 0;
}

/* Completes the file (idempotent); stdout is flushed, not closed. */
void sl__flv_writer_close(sl__flv_writer_t *w)
{
    if (!w->fp)
        return;
    if (w->is_stdout)
        fflush(w->fp);
    else
        fclose(w->fp);
    w->fp = NULL;
}

/* ------------------------------------------------------------------ */
/* the publishing source                                               */

struct sl__flv_src {
    sl_client_t *c;              /* owner */
    sl__flv_parser_t p;
    FILE *fp;                    /* file input (owned unless stdin), or NULL for the pipe */
    int fp_is_stdin;
    uv_pipe_t pipe;              /* stdin when it is a pipe */
    int use_pipe, pipe_reading, pipe_eof;
    uv_timer_t pace;             /* fires when the pending tag is due */
    int open_handles;            /* pace + pipe not yet closed */
    unsigned flags;              /* SL_CLIENT_FLV_* */
    int running;                 /* publishing: tags may go out */
    int done;                    /* end reached and reported */
    /* a tag read but not yet due (copied aside: the parser buffer moves) */
    sl_buf_t *pend;
    int pend_kind;
    uint32_t pend_ts;            /* already rebased */
    /* timeline */
    int paced;                   /* t0/ts0 are set */
    uint64_t t0_ms;              /* loop time of the first tag since start */
    uint32_t ts0;                /* its timestamp */
    int64_t ts_offset;           /* added to file timestamps (looping) */
    int need_base;               /* next tag fixes ts_offset (after a rewind) */
    uint32_t loop_base;          /* where the next pass starts */
    uint32_t max_ts;             /* largest rebased timestamp read */
    uint32_t last_video_ts;      /* for the frame gap at a loop */
    uint32_t gap_ms;
};

static void src_handle_closed(uv_handle_t *h)
{
    sl__flv_src_t *s = h->data;
    sl_client_t *c = s->c;
    if (--s->open_handles == 0) {
        sl_buf_unref(s->pend);
        sl__flv_parser_cleanup(&s->p);
        if (s->fp && !s->fp_is_stdin)
            fclose(s->fp);
        sl_free(s);
    }
    sl__client_handle_done(c);
}

static void src_finish(sl__flv_src_t *s, int err)
{
    if (s->done)
        return;
    s->done = 1;
    s->running = 0;
    uv_timer_stop(&s->pace);
    sl__client_source_done(s->c, err);
}

static void src_pipe_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static _Thread_local char rbuf[READ_CHUNK];
    (void)h;
    (void)suggested;
    buf->base = rbuf;
    buf->len = sizeof rbuf;
}

static void src_pipe_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    sl__flv_src_t *s = st->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        uv_read_stop(st);
        s->pipe_reading = 0;
        s->pipe_eof = 1;
        if (nread != UV_EOF) {
            src_finish(s, (int)nread);
            return;
        }
    } else {
        int rc = sl__flv_parser_feed(&s->p, (const uint8_t *)buf->base, (size_t)nread);
        if (rc) {
            src_finish(s, rc);
            return;
        }
        if (sl__flv_parser_buffered(&s->p) > SRC_PIPE_HIGH) {
            uv_read_stop(st);
            s->pipe_reading = 0;
        }
    }
    sl__src_pump(s->c);
}

/*
 * Gets more input into the parser. Returns 1 when bytes were added (try
 * again), 0 when input will come later (pipe), -1 at the end of the input.
 */
static int src_fill(sl__flv_src_t *s)
{
    if (s->use_pipe) {
        if (s->pipe_eof)
            return -1;
        if (!s->pipe_reading) {
            if (uv_read_start((uv_stream_t *)&s->pipe, src_pipe_alloc, src_pipe_read) == 0)
                s->pipe_reading = 1;
            else
                return -1;
        }
        return 0;
    }
    uint8_t buf[READ_CHUNK];
    size_t n = fread(buf, 1, sizeof buf, s->fp);
    if (n == 0) {
        if (ferror(s->fp) || !(s->flags & SL_CLIENT_FLV_LOOP) || s->fp_is_stdin)
            return -1;
        /* Loop: start over; the next pass continues the timeline. */
        if (fseek(s->fp, 0, SEEK_SET) != 0)
            return -1;
        sl__flv_parser_reset(&s->p);
        s->need_base = 1;
        s->loop_base = s->max_ts + s->gap_ms;
        n = fread(buf, 1, sizeof buf, s->fp);
        if (n == 0)
            return -1;
    }
    return sl__flv_parser_feed(&s->p, buf, n) == 0 ? 1 : -1;
}

static void src_on_pace(uv_timer_t *t)
{
    sl__flv_src_t *s = t->data;
    sl__src_pump(s->c);
}

/* Sends one tag; errors other than a full queue end the source. */
static int src_send(sl__flv_src_t *s, int kind, uint32_t ts, const uint8_t *body, size_t len)
{
    int rc = sl__client_publish_frame(s->c, kind, ts, body, len);
    if (rc && rc != SL_EAGAIN) {
        src_finish(s, rc);
        return rc;
    }
    return 0;
}

/*
 * Sends what is due: tags whose time has come (REALTIME) or as many as the
 * queue allows, reading more input as needed. Called when publishing
 * starts, from the pacing timer, from write completions and from pipe
 * reads; always ends with one flush.
 */
static int src_pump_once(sl_client_t *c);

void sl__src_pump(sl_client_t *c)
{
    while (src_pump_once(c))
        ;
}

/* One batch of sl__src_pump; returns 1 when another batch is due now. */
static int src_pump_once(sl_client_t *c)
{
    sl__flv_src_t *s = c->src;
    if (!s || !s->running || s->done)
        return 0;
    uint64_t now = uv_now(c->loop);
    size_t limit = c->o.max_queue_bytes / 2;
    while (s->running && !s->done && sl__client_queued(c) <= limit) {
        int kind;
        uint32_t ts;
        const uint8_t *body;
        size_t len;
        sl_client_frame_t f;
        if (s->pend) {
            kind = s->pend_kind;
            ts = s->pend_ts;
            body = s->pend->data;
            len = s->pend->len;
        } else {
            int rc = sl__flv_parser_next(&s->p, &f);
            if (rc < 0) {
                src_finish(s, rc);
                break;
            }
            if (rc == 0) {
                int more = src_fill(s);
                if (more > 0)
                    continue;
                if (more < 0)
                    src_finish(s, 0);
                break;
            }
            if (s->need_base) {
                s->ts_offset = (int64_t)s->loop_base - f.ts_ms;
                s->need_base = 0;
            }
            int64_t t = (int64_t)f.ts_ms + s->ts_offset;
            kind = f.kind;
            ts = t < 0 ? 0 : (uint32_t)t;
            body = f.body;
            len = f.len;
            if (ts > s->max_ts)
                s->max_ts = ts;
            if (kind == SL_CLIENT_VIDEO && !f.config) {
                if (ts > s->last_video_ts && ts - s->last_video_ts < 1000)
                    s->gap_ms = ts - s->last_video_ts;
                s->last_video_ts = ts;
            }
        }
        if (s->flags & SL_CLIENT_FLV_REALTIME) {
            if (!s->paced) {
                s->paced = 1;
                s->t0_ms = now;
                s->ts0 = ts;
            }
            int64_t due = (int64_t)s->t0_ms + ((int64_t)ts - s->ts0);
            if (due > (int64_t)now) {
                if (!s->pend) {
                    s->pend = sl_buf_from(body, len);
                    if (!s->pend) {
                        src_finish(s, SL_ENOMEM);
                        break;
                    }
                    s->pend_kind = kind;
                    s->pend_ts = ts;
                }
                uv_timer_start(&s->pace, src_on_pace, (uint64_t)(due - (int64_t)now), 0);
                break;
            }
        }
        int rc = src_send(s, kind, ts, body, len);
        sl_buf_unref(s->pend);
        s->pend = NULL;
        if (rc)
            break;
    }
    if (s->use_pipe && !s->pipe_reading && !s->pipe_eof && !s->done &&
        sl__flv_parser_buffered(&s->p) < SRC_PIPE_HIGH / 2 &&
        uv_read_start((uv_stream_t *)&s->pipe, src_pipe_alloc, src_pipe_read) == 0)
        s->pipe_reading = 1;
    int full = s->running && !s->done && sl__client_queued(c) > limit;
    sl__client_flush(c);
    /* Stopped by the queue bound, and the socket took everything at once:
     * no write callback will come to pump again, so pump now (else a
     * source sent as fast as possible stalls after its first batch). */
    return full && c->src == s && s->running && !s->done && sl__client_queued(c) == 0;
}

/*
 * Opens the source of sl_client_publish_flv and attaches it to c (which
 * then owns it). Standard input becomes a libuv pipe when it is one, so it
 * is never read with a blocking call; a regular file (or a file redirected
 * to stdin) is read with stdio, a chunk at a time.
 */
int sl__src_open(sl_client_t *c, const char *path, unsigned flags)
{
    sl__flv_src_t *s = sl_calloc(1, sizeof(*s));
    if (!s)
        return SL_ENOMEM;
    int rc = 0;
    s->c = c;
    s->flags = flags;
    s->gap_ms = DEFAULT_FRAME_GAP_MS;
    if (strcmp(path, "-") == 0) {
        s->fp_is_stdin = 1;
        if (uv_guess_handle(0) == UV_NAMED_PIPE) {
            s->use_pipe = 1;
        } else {
            s->fp = stdin;
        }
        s->flags &= ~(unsigned)SL_CLIENT_FLV_LOOP;
    } else {
        s->fp = fopen(path, "rb");
        if (!s->fp) {
            rc = -errno;
            goto fail;
        }
    }
    sl__flv_parser_init(&s->p);
    if (s->use_pipe) {
        rc = uv_pipe_init(c->loop, &s->pipe, 0);
        if (rc) {
            sl__flv_parser_cleanup(&s->p);
            goto fail;
        }
        s->pipe.data = s;
        s->open_handles++;
        c->handles_open++;
        rc = uv_pipe_open(&s->pipe, 0);
        if (rc) {
            /* The handle exists: it must be closed through the loop. */
            c->src = s;
            sl__src_close(c);
            return rc;
        }
    }
    uv_timer_init(c->loop, &s->pace);
    s->pace.data = s;
    s->open_handles++;
    c->handles_open++;
    c->src = s;
    return 0;
fail:
    sl_free(s);
    return rc;
}

/* Publishing (re)started: real-time pacing restarts from the next tag. */
void sl__src_start(sl_client_t *c)
{
    sl__flv_src_t *s = c->src;
    if (!s || s->done)
        return;
    s->running = 1;
    s->paced = 0; /* real time restarts from the next tag */
    sl__src_pump(c);
}

/* Publishing stopped: keep the position, stop the timer. */
void sl__src_stop(sl_client_t *c)
{
    sl__flv_src_t *s = c->src;
    if (!s)
        return;
    s->running = 0;
    uv_timer_stop(&s->pace);
}

/*
 * Detaches the source from c and closes its handles; its memory goes in
 * the last close callback, which also counts down the client's handles.
 */
void sl__src_close(sl_client_t *c)
{
    sl__flv_src_t *s = c->src;
    if (!s)
        return;
    c->src = NULL;
    s->running = 0;
    s->done = 1;
    if (s->use_pipe && !uv_is_closing((uv_handle_t *)&s->pipe))
        uv_close((uv_handle_t *)&s->pipe, src_handle_closed);
    if (s->pace.type == UV_TIMER && !uv_is_closing((uv_handle_t *)&s->pace))
        uv_close((uv_handle_t *)&s->pace, src_handle_closed);
}
