/*
 * RTSP 1.0 (RFC 2326) message parsing: requests from clients, the
 * Transport header, the Authorization header (Basic, Digest) and the
 * request URL (path, Red5's `;key=value;` parameters, the query). Pure
 * functions over bytes, no allocation: a request is copied into the
 * caller's sl_rtsp_req_t, whose header pointers point into that copy.
 * Every field is bounded (SL_RTSP_MAX_*), nothing is read past the length
 * given. Fuzzed by tests/fuzz/rtsp_req_fuzz.c.
 */
#ifndef SL_PROTO_RTSP_RTSP_REQ_H
#define SL_PROTO_RTSP_RTSP_REQ_H

#include <stddef.h>
#include <stdint.h>

#define SL_RTSP_MAX_HEAD 65536    /* hard cap of a request head (rtsp.max_request_size is lower) */
#define SL_RTSP_MAX_HEADERS 64    /* header lines per request */
#define SL_RTSP_MAX_URL 2048      /* request URL bytes */

typedef struct sl_rtsp_header {
    const char *name;  /* NUL-terminated, inside the request's copy */
    const char *value; /* trimmed, NUL-terminated */
} sl_rtsp_header_t;

typedef struct sl_rtsp_req {
    char method[24];                 /* "OPTIONS", "ANNOUNCE", ... */
    char url[SL_RTSP_MAX_URL];       /* as sent */
    int cseq;                        /* CSeq, -1 when absent */
    size_t content_length;           /* 0 when absent */
    size_t head_len;                 /* bytes of the head, the blank line included */
    int n_headers;
    sl_rtsp_header_t headers[SL_RTSP_MAX_HEADERS];
    char copy[SL_RTSP_MAX_HEAD];     /* the header lines, NUL-split */
} sl_rtsp_req_t;

/**
 * Parses the request head at the start of p[0..len) (CRLF or LF line ends).
 * Returns 0 with out filled (the body, content_length bytes, follows at
 * p + out->head_len); SL_EAGAIN when the head is not complete and len is
 * below max_head; SL_ETOOBIG when no complete head fits in max_head bytes
 * (at most SL_RTSP_MAX_HEAD), or the URL or a header count is over its cap;
 * SL_EPROTO for a malformed request line (not "<METHOD> <url> RTSP/1.0"),
 * a header line without a colon, or a bad CSeq / Content-Length.
 */
int sl_rtsp_req_parse(const uint8_t *p, size_t len, size_t max_head, sl_rtsp_req_t *out);

/** The value of header name (case-insensitive), borrowed from r; NULL when absent. */
const char *sl_rtsp_req_header(const sl_rtsp_req_t *r, const char *name);

/* One transport specification (the first acceptable of a Transport header). */
typedef struct sl_rtsp_transport {
    int tcp;              /* RTP/AVP/TCP (interleaved), else UDP */
    int multicast;        /* "multicast" was asked (refused by the server) */
    int interleaved[2];   /* channels, -1 when not given */
    int client_port[2];   /* UDP ports of the client, -1 when not given */
    int record;           /* mode=record (or mode="RECORD") */
} sl_rtsp_transport_t;

/**
 * Parses a Transport header value: the comma-separated specifications are
 * tried in order and the first RTP/AVP one (UDP or TCP) is returned.
 * Returns 0, or SL_EPROTO when none is RTP/AVP or a port/channel is bad.
 */
int sl_rtsp_transport_parse(const char *value, sl_rtsp_transport_t *out);

/* Credentials from an Authorization header. */
typedef struct sl_rtsp_auth {
    int scheme;           /* SL_RTSP_AUTH_BASIC or SL_RTSP_AUTH_DIGEST */
    char username[256];
    char password[256];   /* Basic only */
    char realm[128], nonce[128], uri[SL_RTSP_MAX_URL], response[64]; /* Digest */
    char qop[16], nc[16], cnonce[128];
} sl_rtsp_auth_t;

enum { SL_RTSP_AUTH_BASIC = 1, SL_RTSP_AUTH_DIGEST = 2 };

/**
 * Parses an Authorization header value. Returns 0, SL_EPROTO for an
 * unknown scheme, bad base64 or a Basic pair without a colon, a Digest
 * without username/nonce/response, or a value over its field's cap.
 */
int sl_rtsp_auth_parse(const char *value, sl_rtsp_auth_t *out);

/**
 * Splits a request URL ("rtsp://host:port/live/cam1;username=u;password=p/trackID=1?token=t")
 * into its path without the leading '/' or the parameters ("live/cam1/trackID=1"),
 * the Red5 parameters turned into query form ("username=u&password=p") and the query
 * ("token=t"); each written NUL-terminated into its buffer. Returns 0, SL_EPROTO for a URL
 * that is not rtsp:// or rtsps:// or has no path, SL_ETOOBIG when a part does not fit.
 */
int sl_rtsp_url_split(const char *url, char *path, size_t path_cap, char *params, size_t params_cap,
                      char *query, size_t query_cap);

#endif
