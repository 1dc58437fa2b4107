/*
 * Static files (sl_http_static, see http.h): the console and the per-app
 * web pages under http.web_root. GET and HEAD only; a directory serves its
 * index.html (a directory URL without its trailing slash is redirected to
 * it, so relative links in the page resolve); a path with a ".." segment,
 * a NUL (%00), a backslash or a control byte is refused with 403; a file
 * that does not exist declines the request (SL_EDECLINED), so routes added
 * after a static route at "/" still get their requests and an unmatched
 * path ends as the server's 404.
 *
 * I/O choice: the files are web pages, small and usually in the page
 * cache, so they are read with plain blocking open/fstat/read on the loop
 * thread, and only when below STATIC_MAX_BYTES (1 MB): a larger file is
 * refused with 403 rather than stalling the loop (media is served by the
 * HLS and HTTP-FLV routes, never from here). The read is bounded by that
 * size, and the file is opened with O_NONBLOCK|O_NOCTTY and checked to be
 * a regular file by fstat on the open descriptor, so a FIFO or device in
 * the folder cannot block the loop either.
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

/* Reads a regular file of at most STATIC_MAX_BYTES; *out owned by the caller. */
static int read_small_file(int fd, size_t size, uint8_t **out)
{
    uint8_t *data = sl_malloc(size ? size : 1);
    if (!data)
        return SL_ENOMEM;
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* shrank under us, or an error: serve what is there */
        got += (size_t)n;
    }
    *out = data;
    return (int)got;
}

static int static_handler(sl_http_req_t *req, void *ud)
{
    static_root_t *root = ud;
    const char *rel = req->path + strlen(root->prefix);
    while (*rel == '/')
        rel++;
    if (!sl__http_static_path_ok(rel, strlen(rel)))
        return respond_text(req, 403, "forbidden\n");
    char path[STATIC_PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", root->dir, rel);
    if (n < 0 || (size_t)n >= sizeof path - sizeof "/index.html")
        return SL_EDECLINED;
    struct stat st;
    if (stat(path, &st) != 0)
        return SL_EDECLINED;
    if (S_ISDIR(st.st_mode)) {
        size_t rl = strlen(req->raw_path);
        if (rl == 0 || req->raw_path[rl - 1] != '/') {
            /* http-parser admits no CR or LF in a URL: safe to echo. */
            char loc[STATIC_PATH_MAX + 64];
            if (rl + strlen(req->query) + 16 > sizeof loc)
                return SL_EDECLINED;
            snprintf(loc, sizeof loc, "Location: %s/%s%s\r\n", req->raw_path,
                     req->query[0] ? "?" : "", req->query);
            return sl_http_respond(req, 301, "text/plain; charset=utf-8", "moved\n", 6, loc);
        }
        strcat(path, (size_t)n > 0 && path[n - 1] == '/' ? "index.html" : "/index.html");
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return SL_EDECLINED;
    int rc;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return SL_EDECLINED;
    }
    if ((uint64_t)st.st_size >= STATIC_MAX_BYTES) {
        close(fd);
        SL_LOGI(&req->session->log, "static: %s is %lld bytes, over the %u-byte limit", path,
                (long long)st.st_size, STATIC_MAX_BYTES);
        return respond_text(req, 403, "file too large for the static server\n");
    }
    const char *ctype = sl__http_content_type(path);
    if (strcmp(req->method, "HEAD") == 0) {
        close(fd);
        /* The length of what GET would send; no body (see sl_http_respond). */
        return sl_http_respond(req, 200, ctype, NULL, (size_t)st.st_size,
                               "Cache-Control: no-cache\r\n");
    }
    uint8_t *data = NULL;
    int got = read_small_file(fd, (size_t)st.st_size, &data);
    close(fd);
    if (got < 0)
        return got; /* answered 500 by the server */
    rc = sl_http_respond(req, 200, ctype, data, (size_t)got, "Cache-Control: no-cache\r\n");
    sl_free(data);
    return rc;
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
