/*
 * The socket-free half of the HTTP server (internal to src/proto/http):
 * request framing on byte buffers and the pure helpers around it.
 *
 * sl_http_parser_t wraps the http-parser library. It takes bytes as they
 * arrive, stops after each complete request (so that pipelined requests
 * come out one at a time and nothing of the next is consumed), and
 * enforces the limits itself: raw head bytes (431), header count (431),
 * URL length (414) and body size (413, checked against Content-Length
 * before a byte of the body is read, and against the bytes of a chunked
 * body as they come). Everything a request holds is copied out of the
 * input into an sl_http_msg_t, so the caller may reuse its read buffer.
 * The server feeds it from the socket; the fuzz target and the unit tests
 * feed it from memory, through exactly the same code.
 *
 * The helpers (URL decoding, query lookup, routing by prefix, static path
 * safety, content types, the WebSocket accept key, UTF-8 checking) are
 * pure functions so that the unit tests can reach every branch.
 */
#ifndef SL_PROTO_HTTP_PARSE_H
#define SL_PROTO_HTTP_PARSE_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "proto/http/http.h"

/* The limits one parser enforces (bytes unless said otherwise). */
typedef struct sl_http_limits {
    size_t max_header_bytes; /* request line + header lines as sent, CRLFs included */
    size_t max_headers;      /* header lines */
    size_t max_body_bytes;   /* body after chunked decoding */
    size_t max_url_bytes;    /* request target as sent */
} sl_http_limits_t;

/* One complete request, owned by whoever took it from the parser. */
typedef struct sl_http_msg {
    const char *method;          /* static string, e.g. "GET" */
    int method_id;               /* enum http_method */
    const char *url;             /* request target as sent */
    const char *raw_path;        /* path part as sent ("/" when the target has none) */
    const char *path;            /* raw_path percent-decoded (no '+' rule); never holds a NUL */
    const char *query;           /* query without '?', "" when none */
    sl_http_header_t *headers;   /* owned array of n_headers; names lower-cased */
    size_t n_headers;
    uint8_t *body;               /* owned, NULL when empty */
    size_t body_len;
    char *strings;               /* owned block holding every string above */
    unsigned http_major, http_minor;
    int keep_alive;              /* the connection may carry another request */
    int upgrade;                 /* the bytes after this request are another protocol */
} sl_http_msg_t;

/** Frees a message and everything it owns. NULL is ignored. */
void sl_http_msg_free(sl_http_msg_t *m);

typedef enum {
    SL_HTTP_PHASE_IDLE = 0, /* between requests: no byte of the next one yet */
    SL_HTTP_PHASE_HEAD,     /* inside the request line or headers */
    SL_HTTP_PHASE_BODY,     /* headers done, body incomplete */
    SL_HTTP_PHASE_DONE,     /* a request is complete and waits to be taken */
    SL_HTTP_PHASE_FAILED,   /* a limit or syntax error; only cleanup is allowed */
} sl_http_phase_t;

typedef struct sl_http_parser {
    http_parser hp;              /* the library's state */
    sl_http_limits_t lim;
    sl_http_phase_t phase;
    size_t head_bytes;           /* raw bytes of the current head so far */
    sl_wbuf_t strings;           /* url, then name\0value\0 pairs, of the current request */
    uint32_t (*hoff)[2];         /* name/value offsets into strings (owned) */
    size_t n_headers, cap_headers;
    size_t url_len;
    int mode;                    /* what the strings block ends with: URL, name, value, done */
    int expect_continue;         /* the current request sent Expect: 100-continue */
    sl_wbuf_t body;              /* body of the current request */
    sl_http_msg_t *done;         /* the completed request, until taken */
    int status;                  /* HTTP status to answer on failure (400, 413, 414, 431) */
    int err;                     /* SL_E* code of the failure */
} sl_http_parser_t;

/** Prepares a parser for requests under lim (copied). Never fails (no allocation yet). */
void sl_http_parser_init(sl_http_parser_t *p, const sl_http_limits_t *lim);
/** Frees everything the parser holds, including an untaken request. */
void sl_http_parser_cleanup(sl_http_parser_t *p);
/**
 * Feeds len bytes (borrowed for the call). Consumes bytes up to and
 * including the end of one request, and no further; *used says how many.
 * Returns:
 *   1            a request is complete: take it with sl_http_parser_take()
 *                before feeding again (the rest of the input is unread);
 *   0            all len bytes consumed, the request is not complete yet;
 *   SL_EPROTO    malformed request (p->status 400);
 *   SL_ETOOBIG   a limit was reached (p->status 413, 414 or 431);
 *   SL_ENOMEM    allocation failure (p->status 500).
 * After an error the parser stays failed: only cleanup may follow.
 */
int sl_http_parser_feed(sl_http_parser_t *p, const uint8_t *data, size_t len, size_t *used);
/**
 * Hands over the completed request (the caller frees it with
 * sl_http_msg_free) and readies the parser for the next one. NULL when
 * no request is complete.
 */
sl_http_msg_t *sl_http_parser_take(sl_http_parser_t *p);

/* ---- pure helpers (http_util.c) ---- */

/** Reason phrase for a status code ("OK", "Not Found", ...); never NULL. */
const char *sl__http_reason(int status);
/**
 * 1 when a request (req_method, decoded path) matches a route: the method
 * is equal (NULL = any; "GET" takes "HEAD" too), the prefix matches on
 * whole segments ("/api" takes "/api" and "/api/x", not "/apix"; a prefix
 * ending in '/' takes whatever starts with it; "/" takes every path), and
 * when suffixes (space-separated) is neither NULL nor empty, the path ends
 * with one of them.
 */
int sl__http_route_match(const char *method, const char *prefix, const char *suffixes,
                         const char *req_method, const char *path);
/** Header lookup in an array (names lower-case; the lookup name is compared case-insensitively). */
const char *sl__http_header_find(const sl_http_header_t *h, size_t n, const char *name);
/**
 * True when a comma-separated header value holds token, compared
 * case-insensitively: "keep-alive, Upgrade" holds "upgrade". NULL holds nothing.
 */
int sl__http_header_has_token(const char *value, const char *token);
/**
 * Checks a static-file path relative to the served folder (the decoded URL
 * path after the route prefix): refuses ".." segments, NULs (len must be
 * the decoded length), backslashes and control bytes. 1 when safe.
 */
int sl__http_static_path_ok(const char *rel, size_t len);
/** Content-Type for a file name by extension; application/octet-stream when unknown. */
const char *sl__http_content_type(const char *name);
/**
 * Computes Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64 of the
 * SHA-1 of key + the RFC 6455 GUID. out receives 28 characters and a NUL.
 * 0, or SL_EINVAL when key is not 24 characters of base64, or SL_EIO.
 */
int sl__http_ws_accept_key(const char *key, char out[29]);
/** True when p[0..n) is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
int sl__http_utf8_valid(const uint8_t *p, size_t n);
/** Writes the IMF-fixdate of unix time t ("Sun, 06 Nov 1994 08:49:37 GMT") into out. */
void sl__http_date(int64_t t, char out[32]);

#endif
