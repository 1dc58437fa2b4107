/*
 * Static files (sl_http_static, see http.h): the console and the per-app
 * web pages under http.web_root. GET and HEAD only; a directory serves its
 * index.html (a directory URL without its trailing slash is redirected to
 * it, so relative links in the page resolve); a path with a ".." segment,
 * a NUL (%00), a backslash or a control byte is refused with 403; a file
 * that does not exist is answered 404, the server's own answer (see I/O
 * below).
 *
 * I/O: nothing touches the disk on the loop thread. The route has the
 * static priority, so it runs only after every other route declined, and
 * then stat/open/fstat/read/close run on libuv's thread pool (uv_fs_*),
 * each callback starting the next step; the request is answered from the
 * last one. Files are web pages: only those below STATIC_MAX_BYTES (1 MB)
 * are served, read whole into one buffer; a larger one is refused with 403
 * (media is served by the HLS and HTTP-FLV routes, never from here). The
 * file is opened with O_NONBLOCK|O_NOCTTY and checked to be a regular file
 * by fstat on the open descriptor, so a FIFO or device in the folder
 * cannot block a pool thread either. Because nothing runs after it, a
 * missing file is answered 404 here, as the server would.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "proto/http/http_conn.h"
#include "sluice/errors.h"

#define STATIC_MAX_BYTES (1024u * 1024u)
#define STATIC_PATH_MAX 4096

typedef struct static_root {
    char *prefix;   /* URL prefix, e.g. "/" */
    char *dir;      /* folder, without a trailing slash */
} static_root_t;

static void root_free(void *p)
{
    static_root_t *r = p;
    if (!r)
        return;
    sl_free(r->prefix);
    sl_free(r->dir);
    sl_free(r);
}

static int respond_text(sl_http_req_t *req, int status, const char *text)
{
    return sl_http_respond(req, status, "text/plain; charset=utf-8", text, strlen(text), NULL);
}

/*
 * One request on its way through the thread pool: stat the path (a
 * directory redirects or becomes its index.html), open it, fstat the
 * descriptor (a regular file under the size cap), read it whole, close it,
 * answer. Each step is a uv_fs_* call whose callback starts the next; the
 * loop thread only ever sees the results.
 */
typedef struct static_job {
    uv_fs_t fs;
    sl_http_req_t *req;          /* valid until answered */
    char path[STATIC_PATH_MAX];
    int fd;                      /* -1 until opened */
    uint8_t *data;               /* the file (owned), read into */
    size_t size;
    int status;                  /* the answer, once known: 200, or 403/404/500 */
} static_job_t;

static void job_close_done(uv_fs_t *fs);

/* Ends the job: closes the file (off the loop) when open, then answers. */
static void job_finish(static_job_t *j, int status)
{
    j->status = status;
    uv_fs_req_cleanup(&j->fs);
    if (j->fd >= 0) {
        int fd = j->fd;
        j->fd = -1;
        if (uv_fs_close(sl__http_req_loop(j->req), &j->fs, fd, job_close_done) == 0)
            return;
        uv_fs_req_cleanup(&j->fs);
    }
    job_close_done(&j->fs);
}

static void job_close_done(uv_fs_t *fs)
{
    static_job_t *j = fs->data;
    uv_fs_req_cleanup(fs);
    sl_http_req_t *req = j->req;
    switch (j->status) {
    case 200:
        if (strcmp(req->method, "HEAD") == 0) /* the length GET would send; no body */
            sl_http_respond(req, 200, sl__http_content_type(j->path), NULL, j->size,
                            "Cache-Control: no-cache\r\n");
        else
            sl_http_respond(req, 200, sl__http_content_type(j->path), j->data, j->size,
                            "Cache-Control: no-cache\r\n");
        break;
    case 403:
        respond_text(req, 403, "file too large for the static server\n");
        break;
    case 404:
        /* Nothing runs after the static route: the server's own 404. */
        respond_text(req, 404, "not found\n");
        break;
    default:
        respond_text(req, 500, "internal server error\n");
        break;
    }
    sl_free(j->data);
    sl_free(j);
}

static void on_read(uv_fs_t *fs)
{
    static_job_t *j = fs->data;
    ssize_t n = fs->result;
    if (n < 0) {
        job_finish(j, 500);
        return;
    }
    j->size = (size_t)n; /* shrank under us: serve what is there */
    job_finish(j, 200);
}

static void on_fstat(uv_fs_t *fs)
{
    static_job_t *j = fs->data;
    if (fs->result < 0 || !S_ISREG(fs->statbuf.st_mode)) {
        job_finish(j, 404);
        return;
    }
    uint64_t size = fs->statbuf.st_size;
    if (size >= STATIC_MAX_BYTES) {
        SL_LOGI(&j->req->session->log, "static: %s is %llu bytes, over the %u-byte limit", j->path,
                (unsigned long long)size, STATIC_MAX_BYTES);
        job_finish(j, 403);
        return;
    }
    j->size = (size_t)size;
    if (strcmp(j->req->method, "HEAD") == 0) {
        job_finish(j, 200);
        return;
    }
    uv_fs_req_cleanup(fs);
    if (!(j->data = sl_malloc(j->size ? j->size : 1))) {
        job_finish(j, 500);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)j->data, (unsigned)j->size);
    if (uv_fs_read(sl__http_req_loop(j->req), fs, j->fd, &b, 1, 0, on_read) != 0)
        job_finish(j, 500);
}

static void on_open(uv_fs_t *fs)
{
    static_job_t *j = fs->data;
    if (fs->result < 0) {
        job_finish(j, 404);
        return;
    }
    j->fd = (int)fs->result;
    uv_fs_req_cleanup(fs);
    if (uv_fs_fstat(sl__http_req_loop(j->req), fs, j->fd, on_fstat) != 0)
        job_finish(j, 500);
}

static void job_open(static_job_t *j)
{
    uv_fs_req_cleanup(&j->fs);
    /* O_NONBLOCK|O_NOCTTY: a FIFO or a device in the folder cannot block a
     * pool thread either; fstat on the descriptor then refuses it. */
    if (uv_fs_open(sl__http_req_loop(j->req), &j->fs, j->path,
                   O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0, on_open) != 0)
        job_finish(j, 500);
}

static void on_stat(uv_fs_t *fs)
{
    static_job_t *j = fs->data;
    if (fs->result < 0) {
        job_finish(j, 404);
        return;
    }
    if (S_ISDIR(fs->statbuf.st_mode)) {
        sl_http_req_t *req = j->req;
        size_t rl = strlen(req->raw_path);
        if (rl == 0 || req->raw_path[rl - 1] != '/') {
            /* http-parser admits no CR or LF in a URL: safe to echo. */
            char loc[STATIC_PATH_MAX + 64];
            uv_fs_req_cleanup(fs);
            if (rl + strlen(req->query) + 16 > sizeof loc) {
                respond_text(req, 404, "not found\n");
            } else {
                snprintf(loc, sizeof loc, "Location: %s/%s%s\r\n", req->raw_path,
                         req->query[0] ? "?" : "", req->query);
                sl_http_respond(req, 301, "text/plain; charset=utf-8", "moved\n", 6, loc);
            }
            sl_free(j);
            return;
        }
        size_t n = strlen(j->path);
        strcat(j->path, n > 0 && j->path[n - 1] == '/' ? "index.html" : "/index.html");
    }
    job_open(j);
}

/* Red5's page names, the file under sdk/ each is served from. */
static const struct {
    const char *name;
    const char *file;
} app_pages[] = {
    {"broadcast.jsp", "sdk/broadcast.html"}, {"broadcast.html", "sdk/broadcast.html"},
    {"subscribe.jsp", "sdk/subscribe.html"}, {"subscribe.html", "sdk/subscribe.html"},
    {"streams.jsp", "sdk/streams.html"},     {"streams.html", "sdk/streams.html"},
};

/* The sdk/ file of rel when rel is "{app}[/...]/{page}", else NULL. */
static const char *app_page(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    if (!slash || slash == rel)
        return NULL; /* a page at the root is no app's */
    for (size_t i = 0; i < sizeof app_pages / sizeof app_pages[0]; i++)
        if (strcmp(slash + 1, app_pages[i].name) == 0)
            return app_pages[i].file;
    return NULL;
}

/*
 * The static route runs last (SL_HTTP_PRIO_STATIC), so it takes every
 * request that reaches it: a miss is answered 404 as the server would,
 * after the thread pool said so. Only the path checks run on the loop.
 */
static int static_handler(sl_http_req_t *req, void *ud)
{
    static_root_t *root = ud;
    const char *rel = req->path + strlen(root->prefix);
    while (*rel == '/')
        rel++;
    if (!sl__http_static_path_ok(rel, strlen(rel)))
        return respond_text(req, 403, "forbidden\n");
    const char *page = app_page(rel);
    if (page)
        rel = page;
    static_job_t *j = sl_calloc(1, sizeof(*j));
    if (!j)
        return SL_ENOMEM;
    int n = snprintf(j->path, sizeof j->path, "%s/%s", root->dir, rel);
    if (n < 0 || (size_t)n >= sizeof j->path - sizeof "/index.html") {
        sl_free(j);
        return SL_EDECLINED;
    }
    j->req = req;
    j->fd = -1;
    j->fs.data = j;
    int rc = uv_fs_stat(sl__http_req_loop(req), &j->fs, j->path, on_stat);
    if (rc) {
        sl_free(j);
        return rc; /* answered 500 by the server */
    }
    return 0;
}

int sl_http_static(sl_http_server_t *srv, const char *prefix, const char *dir)
{
    static_root_t *r = sl_calloc(1, sizeof(*r));
    if (!r)
        return SL_ENOMEM;
    r->prefix = sl_strdup(prefix);
    r->dir = sl_strdup(dir && dir[0] ? dir : ".");
    if (!r->prefix || !r->dir) {
        root_free(r);
        return SL_ENOMEM;
    }
    size_t dl = strlen(r->dir);
    while (dl > 1 && r->dir[dl - 1] == '/')
        r->dir[--dl] = '\0';
    /* Pages of http.web_root, no stream data; last, after every other route. */
    sl_http_route_spec_t spec = {.method = "GET", .prefix = prefix, .prio = SL_HTTP_PRIO_STATIC,
                                 .name = "static", .serves = "", .cb = static_handler, .ud = r};
    return sl__http_route_owned(srv, &spec, root_free, NULL);
}
