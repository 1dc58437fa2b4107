/*
 * AWS Signature Version 4 for S3-compatible storage: the canonical
 * request, the string to sign, the derived signing key and the
 * Authorization header value, written here on OpenSSL's SHA-256 and
 * HMAC-SHA256 (no AWS SDK). Pure functions over strings, so the unit tests
 * check them against AWS's published examples; the s3_upload module
 * (cloud upload, DESIGN.md §6) signs each libcurl request with it. Also
 * here, pure too: the reading of an S3 error body for the log.
 */
#ifndef SL_MODULES_S3_UPLOAD_S3_SIGV4_H
#define SL_MODULES_S3_UPLOAD_S3_SIGV4_H

#include <stddef.h>

#define SL_S3_SHA256_HEX 65 /* 64 hex digits and a NUL */
#define SL_S3_MAX_HEADERS 32

/* One request header to sign (borrowed strings; names in any case). */
typedef struct sl_s3_header {
    const char *name;
    const char *value;
} sl_s3_header_t;

/* What to sign (every string borrowed for the call). */
typedef struct sl_s3_request {
    const char *method;          /* "GET", "PUT", "POST", ... */
    const char *path;            /* raw, not encoded: "/bucket/live/streams/a b.flv" */
    const char *query;           /* raw "k=v&k2" (not encoded), or NULL/"" */
    const sl_s3_header_t *headers; /* must include host and x-amz-date */
    size_t n_headers;            /* at most SL_S3_MAX_HEADERS */
    const char *payload_sha256;  /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *amz_date;        /* "20130524T000000Z" (the x-amz-date value) */
    const char *region;          /* "us-east-1" */
    const char *service;         /* "s3" */
    const char *access_key;
    const char *secret_key;
} sl_s3_request_t;

/** Writes the lower-case hex SHA-256 of len bytes at p into hex (SL_S3_SHA256_HEX bytes). */
void sl_s3_sha256_hex(const void *p, size_t len, char hex[SL_S3_SHA256_HEX]);

/**
 * URI-encodes s as SigV4 and S3 want it (unreserved bytes kept, '/' kept
 * when keep_slash, everything else %XX) into out. 0 or SL_ETOOBIG.
 */
int sl_s3_uri_encode(const char *s, int keep_slash, char *out, size_t cap);

/**
 * Builds the canonical request of r into out (cap bytes, NUL-terminated):
 * method, URI-encoded path (every byte but unreserved ones and '/'),
 * query pairs encoded and sorted, headers lower-cased, trimmed and sorted,
 * the signed header list, the payload hash. Returns 0, SL_EINVAL (no
 * amz_date, too many headers) or SL_ETOOBIG (cap too small).
 */
int sl_s3_canonical_request(const sl_s3_request_t *r, char *out, size_t cap);

/**
 * Signs r: writes the Authorization header value ("AWS4-HMAC-SHA256
 * Credential=..., SignedHeaders=..., Signature=...") into out. Returns 0,
 * SL_EINVAL, SL_ETOOBIG or SL_ENOMEM (canonical request buffer).
 */
int sl_s3_sign(const sl_s3_request_t *r, char *out, size_t cap);

/**
 * Turns an S3 error answer into one log-safe line in out (cap bytes, NUL
 * always written when cap > 0): "Code: Message" from an
 * <Error><Code>..</Code><Message>..</Message> body (XML entities decoded),
 * else the body's start; control characters become spaces, and what does
 * not fit is cut at a word with "...". body may be NULL. Returns out.
 */
char *sl_s3_error_text(const char *body, char *out, size_t cap);

#endif
