/*
 * Recorded files over HTTP: GET /{app}/streams/{name} (Red5's VOD address
 * beside the live webapp), with single byte ranges (206 + Content-Range,
 * 416 when unsatisfiable) so that players can seek and downloads resume.
 *
 * The file is read in 64 KB pieces with uv_fs_read on libuv's thread pool,
 * never on the loop, and each piece is queued on a sized streaming
 * response (proto/http: Content-Length framing, so a 206 carries
 * Content-Length and Content-Range as curl and players expect, and the
 * connection stays usable; a read error mid-way closes it). The next read starts only once the
 * connection's queue is under a bound, polled with a short timer (the
 * HTTP layer offers no drain callback), so a slow client costs at most
 * that bound in memory whatever the file size. The static handler is not
 * used: it refuses files of 1 MB and more and reads on the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "modules/recorder/recorder_internal.h"
#include "proto/http/http.h"
#include "sluice/errors.h"

#define PIECE_BYTES (64 * 1024)        /* one read, one chunk */
#define MAX_PENDING_BYTES (256 * 1024) /* queued behind the socket before reads pause */
#define DRAIN_POLL_MS 5

typedef struct download {
    sl_http_req_t *req;      /* until close_cb (NULL after) */
    uv_file fd;
    uint64_t offset;         /* next byte to read */
    uint64_t remaining;      /* bytes still to send */
    uv_fs_t fs;              /* the read in flight */
    sl_buf_t *piece;         /* its buffer (owned while reading) */
    int reading;             /* fs in flight */
    int ended;               /* stream_end called */
    uv_timer_t timer;        /* drain poll */
    int gone;                /* close_cb came: free once no read is in flight */
} download_t;

static const sl_log_ctx_t g_ctx = {.proto = "recorder"};

static void on_timer_closed(uv_handle_t *h)
{
    download_t *d = h->data;
    sl_free(d);
}

/* Frees the download when nothing refers to it any more. */
static void maybe_free(download_t *d)
{
    if (!d->gone || d->reading)
        return;
    if (d->fd >= 0) {
        uv_fs_t close_req;
        uv_fs_close(NULL, &close_req, d->fd, NULL); /* synchronous close(2): cheap */
        uv_fs_req_cleanup(&close_req);
        d->fd = -1;
    }
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
}

static void read_next(download_t *d);

static void end_stream(download_t *d)
{
    if (!d->ended && !d->gone) {
        d->ended = 1;
        sl_http_stream_end(d->req);
    }
}

static void on_read(uv_fs_t *fs)
{
    download_t *d = fs->data;
    ssize_t n = fs->result;
    uv_fs_req_cleanup(fs);
    d->reading = 0;
    sl_buf_t *piece = d->piece;
    d->piece = NULL;
    if (d->gone) {
        sl_buf_unref(piece);
        maybe_free(d);
        return;
    }
    if (n <= 0) {
        /* Truncated under us (deleted, cleaned): end early; the client sees a short body. */
        SL_LOGW(&g_ctx, "recorder: download read failed at %" PRIu64 ": %s", d->offset,
                n < 0 ? uv_strerror((int)n) : "end of file");
        sl_buf_unref(piece);
        end_stream(d);
        return;
    }
    piece->len = (uint32_t)n;
    d->offset += (uint64_t)n;
    d->remaining -= (uint64_t)n;
    int rc = sl_http_stream_write(d->req, piece);
    sl_buf_unref(piece);
    if (rc == SL_ECLOSED)
        return; /* close_cb follows */
    read_next(d);
}

static void on_timer(uv_timer_t *t)
{
    read_next(t->data);
}

static void read_next(download_t *d)
{
    if (d->gone || d->ended || d->reading)
        return;
    if (d->remaining == 0) {
        end_stream(d);
        return;
    }
    if (sl_http_stream_pending(d->req) > MAX_PENDING_BYTES) {
        uv_timer_start(&d->timer, on_timer, DRAIN_POLL_MS, 0);
        return;
    }
    size_t n = d->remaining < PIECE_BYTES ? (size_t)d->remaining : PIECE_BYTES;
    d->piece = sl_buf_new(n);
    if (!d->piece) {
        uv_timer_start(&d->timer, on_timer, DRAIN_POLL_MS * 10, 0); /* memory may come back */
        return;
    }
    uv_buf_t iov = uv_buf_init((char *)d->piece->data, (unsigned)n);
    d->fs.data = d;
    int rc = uv_fs_read(d->timer.loop, &d->fs, d->fd, &iov, 1, (int64_t)d->offset, on_read);
    if (rc) {
        sl_buf_unref(d->piece);
        d->piece = NULL;
        end_stream(d);
        return;
    }
    d->reading = 1;
}

static void on_close(sl_http_req_t *req, void *ud)
{
    download_t *d = ud;
    (void)req;
    d->gone = 1;
    d->req = NULL;
    uv_timer_stop(&d->timer);
    maybe_free(d);
}

/*
 * Parses a single "bytes=a-b" / "bytes=a-" / "bytes=-n" range against size.
 * 1 and [*from, *to] when satisfiable, 0 when absent or not understood (serve
 * all, as RFC 9110 allows), -1 when unsatisfiable (416).
 */
static int parse_range(const char *h, uint64_t size, uint64_t *from, uint64_t *to)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0;
    const char *p = h + 6;
    char *end;
    if (*p == '-') {
        errno = 0;
        unsigned long long n = strtoull(p + 1, &end, 10);
        if (errno || end == p + 1 || *end)
            return 0;
        if (n == 0 || size == 0)
            return -1;
        *from = n >= size ? 0 : size - n;
        *to = size - 1;
        return 1;
    }
    errno = 0;
    unsigned long long a = strtoull(p, &end, 10);
    if (errno || end == p || *end != '-')
        return 0;
    p = end + 1;
    unsigned long long b = size ? size - 1 : 0;
    if (*p) {
        errno = 0;
        b = strtoull(p, &end, 10);
        if (errno || *end || b < a)
            return 0;
        if (size && b >= size)
            b = size - 1;
    }
    if (a >= size)
        return -1;
    *from = a;
    *to = b;
    return 1;
}

int sl__recorder_http_file(sl_recorder_t *m, sl_http_req_t *req, const char *file)
{
    char headers[256];
    struct stat stt;
    if (stat(file, &stt) || !S_ISREG(stt.st_mode))
        return sl_http_respond(req, 404, "text/plain", "not found\n", 10, NULL);
    uint64_t size = (uint64_t)stt.st_size, from = 0, to = size ? size - 1 : 0;
    int ranged = parse_range(sl_http_req_header(req, "range"), size, &from, &to);
    if (ranged < 0) {
        snprintf(headers, sizeof headers, "Content-Range: bytes */%" PRIu64 "\r\n", size);
        return sl_http_respond(req, 416, "text/plain", "range not satisfiable\n", 22, headers);
    }
    const char *ctype = strstr(file, ".mp4") ? "video/mp4" : "video/x-flv";
    if (ranged)
        snprintf(headers, sizeof headers,
                 "Accept-Ranges: bytes\r\nContent-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64
                 "\r\n", from, to, size);
    else
        snprintf(headers, sizeof headers, "Accept-Ranges: bytes\r\n");
    if (size == 0)
        return sl_http_respond(req, 200, ctype, "", 0, headers);
    download_t *d = sl_calloc(1, sizeof *d);
    if (!d)
        return SL_ENOMEM;
    d->fd = open(file, O_RDONLY | O_CLOEXEC);
    if (d->fd < 0) {
        sl_free(d);
        return sl_http_respond(req, 404, "text/plain", "not found\n", 10, NULL);
    }
    uv_timer_init(m->core->loop, &d->timer);
    d->timer.data = d;
    d->req = req;
    d->offset = from;
    d->remaining = to - from + 1;
    int rc = sl_http_stream_start_sized(req, ranged ? 206 : 200, ctype, headers, d->remaining,
                                        on_close, d);
    if (rc) {
        /* HEAD or the client is gone: no close_cb will come. */
        d->gone = 1;
        maybe_free(d);
        return 0;
    }
    read_next(d);
    return 0;
}
