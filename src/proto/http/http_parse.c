/*
 * Request framing on byte buffers (see http_parse.h): http-parser does the
 * parsing, this file does the bookkeeping around it (copying the request
 * out of the input, limits, one request at a time).
 *
 * How each limit is enforced:
 *  - head bytes (431): while a head is incomplete, the parser is never
 *    handed more than the bytes still allowed, so a head that does not end
 *    within max_header_bytes fails exactly there, whatever the way the
 *    input was cut; leading CRLFs count too.
 *  - header count (431): at the header that would be one too many.
 *  - URL (414): as the URL's bytes arrive, before the request line ends.
 *  - body (413): a Content-Length above the limit fails when the headers
 *    end, before the body is read; a chunked body fails at the chunk that
 *    crosses the limit. Trailers are parsed and dropped.
 * Storage for the strings is capped as well, so no input can make it grow
 * past the limits whatever http-parser reports.
 *
 * One request at a time: the parser is paused in on_message_complete, so
 * http_parser_execute() returns right after the request's last byte and the
 * next pipelined request stays in the caller's input.
 */
#include <string.h>
#include <strings.h>

#include "app/core.h"
#include "base/alloc.h"
#include "proto/http/http_parse.h"
#include "sluice/errors.h"

/* What the strings block holds last: the URL, a header name, or a value. */
enum { MODE_URL = 0, MODE_FIELD, MODE_VALUE, MODE_DONE };

static int fail(sl_http_parser_t *p, int err, int status)
{
    if (!p->status) {
        p->err = err;
        p->status = status;
    }
    return -1;
}

/* A wbuf error as the status it answers: the cap means too big, else memory. */
static int fail_put(sl_http_parser_t *p, int rc, int status_if_big)
{
    return rc == SL_ETOOBIG ? fail(p, SL_ETOOBIG, status_if_big) : fail(p, SL_ENOMEM, 500);
}

/* Ends the string being written (URL, name or value) with a NUL. */
static int end_string(sl_http_parser_t *p)
{
    if (p->mode == MODE_VALUE) {
        /* http-parser drops leading blanks of a value but not trailing ones. */
        size_t start = p->hoff[p->n_headers - 1][1];
        while (p->strings.len > start &&
               (p->strings.data[p->strings.len - 1] == ' ' ||
                p->strings.data[p->strings.len - 1] == '\t'))
            p->strings.len--;
    }
    int rc = sl_wbuf_put_u8(&p->strings, 0);
    if (rc)
        return fail_put(p, rc, 431);
    if (p->mode == MODE_FIELD) {
        /* A name with no value callback at all: give it an empty value. */
        p->hoff[p->n_headers - 1][1] = (uint32_t)p->strings.len;
        rc = sl_wbuf_put_u8(&p->strings, 0);
        if (rc)
            return fail_put(p, rc, 431);
    }
    return 0;
}

static int on_message_begin(http_parser *hp)
{
    sl_http_parser_t *p = hp->data;
    p->phase = SL_HTTP_PHASE_HEAD;
    return 0;
}

/*
 * The URL may come in several calls (one per buffer it spans); the limit
 * is checked as it grows, so a huge URL fails before it is all read.
 */
static int on_url(http_parser *hp, const char *at, size_t len)
{
    sl_http_parser_t *p = hp->data;
    p->url_len += len;
    if (p->url_len > p->lim.max_url_bytes)
        return fail(p, SL_ETOOBIG, 414);
    int rc = sl_wbuf_put(&p->strings, at, len);
    return rc ? fail_put(p, rc, 431) : 0;
}

/*
 * A field after a value (or after the URL) starts a new header; a field
 * after a field is the same name continued from the previous buffer.
 * Names are lower-cased as they are copied.
 */
static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    sl_http_parser_t *p = hp->data;
    if (p->phase != SL_HTTP_PHASE_HEAD)
        return 0; /* a trailer of a chunked body: dropped */
    if (p->mode != MODE_FIELD) {
        if (end_string(p))
            return -1;
        if (p->n_headers >= p->lim.max_headers)
            return fail(p, SL_ETOOBIG, 431);
        if (p->n_headers == p->cap_headers) {
            size_t ncap = p->cap_headers ? p->cap_headers * 2 : 16;
            if (ncap > p->lim.max_headers)
                ncap = p->lim.max_headers;
            void *n = sl_realloc(p->hoff, ncap * sizeof(*p->hoff));
            if (!n)
                return fail(p, SL_ENOMEM, 500);
            p->hoff = n;
            p->cap_headers = ncap;
        }
        p->hoff[p->n_headers][0] = (uint32_t)p->strings.len;
        p->hoff[p->n_headers][1] = 0;
        p->n_headers++;
        p->mode = MODE_FIELD;
    }
    int rc = sl_wbuf_reserve(&p->strings, len);
    if (rc)
        return fail_put(p, rc, 431);
    uint8_t *w = p->strings.data + p->strings.len;
    for (size_t i = 0; i < len; i++) {
        char c = at[i];
        w[i] = (uint8_t)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    p->strings.len += len;
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    sl_http_parser_t *p = hp->data;
    if (p->phase != SL_HTTP_PHASE_HEAD)
        return 0;
    if (p->mode == MODE_FIELD) {
        int rc = sl_wbuf_put_u8(&p->strings, 0);
        if (rc)
            return fail_put(p, rc, 431);
        p->hoff[p->n_headers - 1][1] = (uint32_t)p->strings.len;
        p->mode = MODE_VALUE;
    } else if (p->mode != MODE_VALUE) {
        return fail(p, SL_EPROTO, 400); /* cannot happen with http-parser */
    }
    int rc = sl_wbuf_put(&p->strings, at, len);
    return rc ? fail_put(p, rc, 431) : 0;
}

static int on_headers_complete(http_parser *hp)
{
    sl_http_parser_t *p = hp->data;
    if (end_string(p))
        return -1;
    p->mode = MODE_DONE;
    p->phase = SL_HTTP_PHASE_BODY;
    if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > p->lim.max_body_bytes)
        return fail(p, SL_ETOOBIG, 413);
    /* Told to the server, which may answer 100 Continue before the body. */
    for (size_t i = 0; i < p->n_headers; i++) {
        const char *name = (const char *)p->strings.data + p->hoff[i][0];
        const char *value = (const char *)p->strings.data + p->hoff[i][1];
        if (strcmp(name, "expect") == 0 && strcasecmp(value, "100-continue") == 0)
            p->expect_continue = 1;
    }
    return 0;
}

/* Body bytes, already de-chunked by http-parser; the builder's cap is the body limit. */
static int on_body(http_parser *hp, const char *at, size_t len)
{
    sl_http_parser_t *p = hp->data;
    int rc = sl_wbuf_put(&p->body, at, len);
    return rc ? fail_put(p, rc, 413) : 0;
}

/*
 * Splits the URL into path and query and builds the message: the strings
 * block and the body change hands, pointers are fixed up only now because
 * the block may have moved while it grew.
 */
static int on_message_complete(http_parser *hp)
{
    sl_http_parser_t *p = hp->data;
    sl_http_msg_t *m = NULL;
    if (p->mode != MODE_DONE) /* cannot happen: headers always complete first */
        return fail(p, SL_EPROTO, 400);
    const char *url = (const char *)p->strings.data;
    size_t url_len = p->url_len;
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (url_len == 0 || http_parser_parse_url(url, url_len, hp->method == HTTP_CONNECT, &u) != 0)
        return fail(p, SL_EPROTO, 400);
    /* Room for raw path, query and decoded path first: the appends below
     * copy from the URL at the start of the same block, which must not move. */
    int rc = sl_wbuf_reserve(&p->strings, 2 * url_len + 8);
    if (rc)
        return fail_put(p, rc, 431);
    url = (const char *)p->strings.data;
    size_t raw_path_off = p->strings.len;
    if (u.field_set & (1 << UF_PATH))
        rc = sl_wbuf_put(&p->strings, url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    else
        rc = sl_wbuf_put(&p->strings, "/", 1);
    rc = rc ? rc : sl_wbuf_put_u8(&p->strings, 0);
    size_t query_off = p->strings.len;
    if (!rc && (u.field_set & (1 << UF_QUERY)))
        rc = sl_wbuf_put(&p->strings, url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    rc = rc ? rc : sl_wbuf_put_u8(&p->strings, 0);
    size_t path_off = p->strings.len;
    rc = rc ? rc : sl_wbuf_put(&p->strings, url + raw_path_off, query_off - raw_path_off);
    if (rc)
        return fail_put(p, rc, 431);
    char *path = (char *)p->strings.data + path_off;
    if (sl_http_url_decode(path, 0) != strlen(path))
        return fail(p, SL_EPROTO, 400); /* %00 in the path: never a valid name */
    if (!sl_query_is_safe((const char *)p->strings.data + query_off))
        return fail(p, SL_EPROTO, 400); /* %00 would cut a credential short: see core.h */

    m = sl_calloc(1, sizeof(*m));
    if (!m)
        goto nomem;
    if (p->n_headers) {
        m->headers = sl_malloc(p->n_headers * sizeof(*m->headers));
        if (!m->headers)
            goto nomem;
    }
    char *base = (char *)p->strings.data;
    m->strings = base;
    m->url = base;
    m->raw_path = base + raw_path_off;
    m->query = base + query_off;
    m->path = base + path_off;
    m->n_headers = p->n_headers;
    for (size_t i = 0; i < p->n_headers; i++) {
        m->headers[i].name = base + p->hoff[i][0];
        m->headers[i].value = base + p->hoff[i][1];
    }
    sl_wbuf_init(&p->strings, p->strings.max); /* the block now belongs to m */
    m->body = p->body.len ? p->body.data : NULL;
    m->body_len = p->body.len;
    if (!m->body)
        sl_wbuf_cleanup(&p->body);
    sl_wbuf_init(&p->body, p->lim.max_body_bytes);
    m->method_id = hp->method;
    m->method = http_method_str((enum http_method)hp->method);
    m->http_major = hp->http_major;
    m->http_minor = hp->http_minor;
    m->keep_alive = http_should_keep_alive(hp);
    m->upgrade = hp->upgrade;
    p->done = m;
    p->phase = SL_HTTP_PHASE_DONE;
    http_parser_pause(hp, 1);
    return 0;
nomem:
    if (m)
        sl_free(m->headers);
    sl_free(m);
    return fail(p, SL_ENOMEM, 500);
}

static const http_parser_settings g_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Starts the bookkeeping of a new request (the strings block is empty). */
static void reset_request(sl_http_parser_t *p)
{
    p->phase = SL_HTTP_PHASE_IDLE;
    p->head_bytes = 0;
    p->n_headers = 0;
    p->url_len = 0;
    p->mode = MODE_URL;
    p->expect_continue = 0;
    sl_wbuf_reset(&p->strings);
    sl_wbuf_reset(&p->body);
}

void sl_http_parser_init(sl_http_parser_t *p, const sl_http_limits_t *lim)
{
    memset(p, 0, sizeof(*p));
    p->lim = *lim;
    if (p->lim.max_headers > UINT32_MAX / 4)
        p->lim.max_headers = UINT32_MAX / 4;
    http_parser_init(&p->hp, HTTP_REQUEST);
    p->hp.data = p;
    /* The URL and headers, their NULs (fewer than the CRLFs and colons they
     * replace), then raw path, query and decoded path (each <= the URL). */
    size_t cap = p->lim.max_header_bytes + 3 * p->lim.max_url_bytes + 16;
    if (cap > UINT32_MAX)
        cap = UINT32_MAX; /* offsets are 32-bit */
    sl_wbuf_init(&p->strings, cap);
    sl_wbuf_init(&p->body, p->lim.max_body_bytes);
    reset_request(p);
}

void sl_http_parser_cleanup(sl_http_parser_t *p)
{
    sl_wbuf_cleanup(&p->strings);
    sl_wbuf_cleanup(&p->body);
    sl_free(p->hoff);
    p->hoff = NULL;
    p->cap_headers = 0;
    sl_http_msg_free(p->done);
    p->done = NULL;
}

/*
 * While a head is incomplete, http-parser gets at most the bytes the head
 * limit still allows; a pause (set by on_message_complete) ends the call
 * exactly after one request.
 */
int sl_http_parser_feed(sl_http_parser_t *p, const uint8_t *data, size_t len, size_t *used)
{
    size_t off = 0;
    *used = 0;
    if (p->phase == SL_HTTP_PHASE_FAILED)
        return p->err;
    if (p->done)
        return 1; /* take the request first */
    while (off < len) {
        size_t chunk = len - off;
        int in_head = p->phase == SL_HTTP_PHASE_IDLE || p->phase == SL_HTTP_PHASE_HEAD;
        if (in_head) {
            if (p->head_bytes >= p->lim.max_header_bytes) {
                fail(p, SL_ETOOBIG, 431);
                break;
            }
            size_t room = p->lim.max_header_bytes - p->head_bytes;
            if (chunk > room)
                chunk = room;
        }
        size_t n = http_parser_execute(&p->hp, &g_settings, (const char *)data + off, chunk);
        enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
        if (in_head && (p->phase == SL_HTTP_PHASE_IDLE || p->phase == SL_HTTP_PHASE_HEAD))
            p->head_bytes += n;
        off += n;
        if (e == HPE_PAUSED) {
            http_parser_pause(&p->hp, 0);
            *used = off;
            return 1;
        }
        if (e != HPE_OK) {
            if (!p->status) {
                if (e == HPE_HEADER_OVERFLOW)
                    fail(p, SL_ETOOBIG, 431);
                else
                    fail(p, SL_EPROTO, 400);
            }
            break;
        }
        if (n != chunk) { /* http-parser stops short only on errors */
            fail(p, SL_EPROTO, 400);
            break;
        }
    }
    *used = off;
    if (p->status) {
        p->phase = SL_HTTP_PHASE_FAILED;
        return p->err;
    }
    return 0;
}

sl_http_msg_t *sl_http_parser_take(sl_http_parser_t *p)
{
    sl_http_msg_t *m = p->done;
    if (!m)
        return NULL;
    p->done = NULL;
    reset_request(p);
    return m;
}

void sl_http_msg_free(sl_http_msg_t *m)
{
    if (!m)
        return;
    sl_free(m->headers);
    sl_free(m->strings);
    sl_free(m->body);
    sl_free(m);
}
