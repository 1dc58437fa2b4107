/*
 * libFuzzer target for the HTTP request framer (src/proto/http/
 * http_parse.c), the code every byte from an HTTP client goes through
 * before a socket-level decision is made. Small limits (512-byte heads, 8
 * headers, 64-byte URLs, 256-byte bodies) put the 431/414/413 paths within
 * reach of short inputs.
 *
 * Each input runs twice: fed whole, and fed in pieces whose sizes come
 * from the input's first byte (1 to 16 bytes, varying). Both runs must see
 * the same requests (method, paths, query, headers, body) and end the same
 * way: the framing and every limit must not depend on how the network cut
 * the bytes. One difference is allowed, found by this target: a request
 * that is both malformed and over a URL, header-count or body limit may
 * be answered 400 in one run and 413/414/431 in the other, because
 * http-parser reports a field's bytes at the end of each buffer but not
 * before a syntax error; which of two faults is reported first is not a
 * framing decision. Each complete request is checked (lower-case
 * header names, a path without NUL and decoding to no more than it was,
 * bounds respected) and handed to the pure helpers that routes use on
 * requests (query lookup, header tokens, route match, static path check).
 * A run must leave sl_alloc_bytes() where it found it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "proto/http/http_parse.h"

#define MAX_REQS 32
#define SIG_MAX 4096

static const sl_http_limits_t g_lim = {
    .max_header_bytes = 512, .max_headers = 8, .max_body_bytes = 256, .max_url_bytes = 64};

/* A compact summary of one run, compared between the two ways of feeding. */
typedef struct run {
    unsigned char sig[SIG_MAX];
    size_t sig_len;
    int n_reqs;
    int status;
} run_t;

static void sig_add(run_t *r, const void *p, size_t n)
{
    /* Length first, so that concatenations cannot collide. */
    uint32_t len = (uint32_t)n;
    for (int i = 0; i < 2; i++) {
        const void *src = i ? p : (const void *)&len;
        size_t sn = i ? n : sizeof len;
        if (r->sig_len + sn > SIG_MAX) {
            r->sig_len = SIG_MAX; /* saturated: equal prefixes still compare */
            return;
        }
        memcpy(r->sig + r->sig_len, src, sn);
        r->sig_len += sn;
    }
}

static void check_msg(const sl_http_msg_t *m, run_t *r)
{
    if (m->body_len > g_lim.max_body_bytes || (m->body_len && !m->body) ||
        m->n_headers > g_lim.max_headers || strlen(m->url) > g_lim.max_url_bytes)
        abort();
    if (strlen(m->path) > strlen(m->raw_path) || m->raw_path[0] == '\0')
        abort();
    for (size_t i = 0; i < m->n_headers; i++) {
        for (const char *c = m->headers[i].name; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                abort();
        sig_add(r, m->headers[i].name, strlen(m->headers[i].name));
        sig_add(r, m->headers[i].value, strlen(m->headers[i].value));
    }
    sig_add(r, m->method, strlen(m->method));
    sig_add(r, m->url, strlen(m->url));
    sig_add(r, m->path, strlen(m->path));
    sig_add(r, m->query, strlen(m->query));
    sig_add(r, m->body ? (const void *)m->body : "", m->body_len);
    unsigned char flags[2] = {(unsigned char)m->keep_alive, (unsigned char)m->upgrade};
    sig_add(r, flags, sizeof flags);

    /* What a route does with a request. */
    char out[64];
    int q = sl_http_query_get(m->query, "a", out, sizeof out);
    if (q >= (int)sizeof out || (q >= 0 && strlen(out) > (size_t)q))
        abort();
    sl__http_header_has_token(sl__http_header_find(m->headers, m->n_headers, "connection"),
                              "upgrade");
    sl__http_route_match("GET", "/api/", NULL, m->method, m->path);
    sl__http_route_match(NULL, "/live", ".m3u8 .ts", m->method, m->path);
    sl__http_static_path_ok(m->path, strlen(m->path));
    sl__http_content_type(m->path);
    char key[29];
    sl__http_ws_accept_key(sl__http_header_find(m->headers, m->n_headers, "sec-websocket-key"),
                           key);
}

/* Feeds everything, in pieces of the given sizes (0 = whole), like the server does. */
static void run_once(const uint8_t *data, size_t size, uint8_t cut, run_t *r)
{
    sl_http_parser_t p;
    sl_http_parser_init(&p, &g_lim);
    memset(r, 0, sizeof *r);
    size_t off = 0, avail = cut ? 0 : size;
    unsigned step = cut;
    while (off < size) {
        if (cut && avail <= off) {
            step = (step * 7 + 3) % 16 + 1;
            avail = off + step > size ? size : off + step;
        }
        size_t used = 0;
        int rc = sl_http_parser_feed(&p, data + off, avail - off, &used);
        if (used > avail - off)
            abort();
        off += used;
        if (rc < 0) {
            r->status = p.status;
            if (p.status != 400 && p.status != 413 && p.status != 414 && p.status != 431 &&
                p.status != 500)
                abort();
            break;
        }
        if (rc == 1) {
            sl_http_msg_t *m = sl_http_parser_take(&p);
            if (!m)
                abort();
            check_msg(m, r);
            r->n_reqs++;
            int last = !m->keep_alive || m->upgrade || r->n_reqs >= MAX_REQS;
            sl_http_msg_free(m);
            if (last)
                break; /* the server stops reading HTTP here too */
        } else if (used == 0 && avail - off > 0) {
            abort(); /* no progress without a reason */
        }
    }
    sl_http_parser_cleanup(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Entry point called by libFuzzer (or the replayer) once per input; always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static run_t whole, pieces;
    int64_t before = sl_alloc_bytes();
    if (size == 0)
        return 0;
    uint8_t cut = (uint8_t)(data[0] % 16 + 1);
    run_once(data, size, 0, &whole);
    run_once(data, size, cut, &pieces);
    int same_end = whole.status == pieces.status ||
                   (whole.status && pieces.status && (whole.status == 400 || pieces.status == 400));
    if (whole.n_reqs != pieces.n_reqs || !same_end ||
        whole.sig_len != pieces.sig_len || memcmp(whole.sig, pieces.sig, whole.sig_len) != 0)
        abort();
    if (sl_alloc_bytes() != before)
        abort();
    return 0;
}
