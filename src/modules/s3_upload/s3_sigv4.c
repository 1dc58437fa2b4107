/*
 * AWS Signature Version 4 (see s3_sigv4.h). The steps, as AWS documents
 * them: canonical request -> its SHA-256 -> string to sign -> signing key
 * HMAC chain ("AWS4"+secret, date, region, service, "aws4_request") ->
 * signature. Everything is built in caller or heap buffers with explicit
 * caps; nothing here keeps state, so it is safe on any thread.
 */
#include "modules/s3_upload/s3_sigv4.h"

#include <ctype.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/str.h"
#include "sluice/errors.h"

#define CANON_MAX (64 * 1024) /* canonical request of any request we make */
#define MAX_QUERY_PAIRS 32

/* A growing output into a fixed buffer; `over` records truncation. */
typedef struct {
    char *p;
    size_t len, cap;
    int over;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->over || o->len + n + 1 > o->cap) {
        o->over = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void puts_(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

void sl_s3_sha256_hex(const void *p, size_t len, char out[SL_S3_SHA256_HEX])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(p, len, d);
    sl_hex_encode(d, sizeof d, out, 0);
}

/* URI-encodes n bytes as SigV4 wants: unreserved kept, '/' kept when keep_slash. */
static void put_encoded(out_t *o, const char *s, size_t n, int keep_slash)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
            put(o, (const char *)&c, 1);
        } else {
            char esc[4];
            snprintf(esc, sizeof esc, "%%%02X", c);
            put(o, esc, 3);
        }
    }
}

int sl_s3_uri_encode(const char *s, int keep_slash, char *out, size_t cap)
{
    out_t o = {out, 0, cap, 0};
    if (!cap)
        return SL_ETOOBIG;
    out[0] = '\0';
    put_encoded(&o, s, strlen(s), keep_slash);
    return o.over ? SL_ETOOBIG : 0;
}

typedef struct {
    const char *k, *v;
    size_t kn, vn;
} pair_t;

static int cmp_pair(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    size_t n = x->kn < y->kn ? x->kn : y->kn;
    int c = memcmp(x->k, y->k, n);
    if (c || x->kn != y->kn)
        return c ? c : (x->kn < y->kn ? -1 : 1);
    n = x->vn < y->vn ? x->vn : y->vn;
    c = memcmp(x->v, y->v, n);
    return c ? c : (x->vn < y->vn ? -1 : x->vn > y->vn);
}

typedef struct {
    char name[64];
    const char *value;
} hdr_t;

static int cmp_hdr(const void *a, const void *b)
{
    return strcmp(((const hdr_t *)a)->name, ((const hdr_t *)b)->name);
}

/* Sorted, lower-cased copies of the header names. 0 or SL_EINVAL. */
static int sort_headers(const sl_s3_request_t *r, hdr_t *h)
{
    if (r->n_headers > SL_S3_MAX_HEADERS)
        return SL_EINVAL;
    for (size_t i = 0; i < r->n_headers; i++) {
        size_t n = strlen(r->headers[i].name);
        if (n == 0 || n >= sizeof h[i].name)
            return SL_EINVAL;
        for (size_t j = 0; j <= n; j++)
            h[i].name[j] = (char)tolower((unsigned char)r->headers[i].name[j]);
        h[i].value = r->headers[i].value ? r->headers[i].value : "";
    }
    qsort(h, r->n_headers, sizeof *h, cmp_hdr);
    return 0;
}

static void put_signed_headers(out_t *o, const hdr_t *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            put(o, ";", 1);
        puts_(o, h[i].name);
    }
}

int sl_s3_canonical_request(const sl_s3_request_t *r, char *buf, size_t cap)
{
    out_t o = {buf, 0, cap, 0};
    hdr_t h[SL_S3_MAX_HEADERS];
    pair_t q[MAX_QUERY_PAIRS];
    size_t nq = 0;
    if (!r->method || !r->path || !r->amz_date || !r->payload_sha256 || !cap)
        return SL_EINVAL;
    buf[0] = '\0';
    if (sort_headers(r, h))
        return SL_EINVAL;
    puts_(&o, r->method);
    put(&o, "\n", 1);
    put_encoded(&o, r->path[0] ? r->path : "/", r->path[0] ? strlen(r->path) : 1, 1);
    put(&o, "\n", 1);
    /* Query: pairs split on '&', each "k=v" or "k" (= empty value), sorted encoded. */
    for (const char *p = r->query ? r->query : ""; *p;) {
        size_t n = strcspn(p, "&");
        if (n) {
            if (nq == MAX_QUERY_PAIRS)
                return SL_EINVAL;
            const char *eq = memchr(p, '=', n);
            q[nq].k = p;
            q[nq].kn = eq ? (size_t)(eq - p) : n;
            q[nq].v = eq ? eq + 1 : p + n;
            q[nq].vn = eq ? n - q[nq].kn - 1 : 0;
            nq++;
        }
        p += n + (p[n] == '&');
    }
    qsort(q, nq, sizeof *q, cmp_pair);
    for (size_t i = 0; i < nq; i++) {
        if (i)
            put(&o, "&", 1);
        put_encoded(&o, q[i].k, q[i].kn, 0);
        put(&o, "=", 1);
        put_encoded(&o, q[i].v, q[i].vn, 0);
    }
    put(&o, "\n", 1);
    /* Headers: name:value with outer blanks trimmed and inner runs collapsed. */
    for (size_t i = 0; i < r->n_headers; i++) {
        puts_(&o, h[i].name);
        put(&o, ":", 1);
        const char *v = h[i].value;
        while (*v == ' ' || *v == '\t')
            v++;
        int space = 0;
        for (; *v; v++) {
            if (*v == ' ' || *v == '\t') {
                space = 1;
                continue;
            }
            if (space)
                put(&o, " ", 1);
            space = 0;
            put(&o, v, 1);
        }
        put(&o, "\n", 1);
    }
    put(&o, "\n", 1);
    put_signed_headers(&o, h, r->n_headers);
    put(&o, "\n", 1);
    puts_(&o, r->payload_sha256);
    return o.over ? SL_ETOOBIG : 0;
}

static void hmac(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &n);
}

int sl_s3_sign(const sl_s3_request_t *r, char *out, size_t cap)
{
    int rc = SL_ENOMEM;
    char *canon = sl_malloc(CANON_MAX);
    char scope[160], date[9], sts[512], canon_hash[SL_S3_SHA256_HEX], sig[65];
    hdr_t h[SL_S3_MAX_HEADERS];
    if (!canon)
        goto fail;
    rc = SL_EINVAL;
    if (!r->amz_date || strlen(r->amz_date) != 16 || !r->region || !r->service ||
        !r->access_key || !r->secret_key || strlen(r->secret_key) > 200)
        goto fail;
    rc = sl_s3_canonical_request(r, canon, CANON_MAX);
    if (rc)
        goto fail;
    rc = SL_ETOOBIG;
    memcpy(date, r->amz_date, 8);
    date[8] = '\0';
    if (snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date, r->region, r->service) >=
        (int)sizeof scope)
        goto fail;
    sl_s3_sha256_hex(canon, strlen(canon), canon_hash);
    if (snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", r->amz_date, scope, canon_hash) >=
        (int)sizeof sts)
        goto fail;
    /* Signing key: HMAC chain from "AWS4" + secret. */
    char k0[210];
    unsigned char k[32];
    snprintf(k0, sizeof k0, "AWS4%s", r->secret_key);
    hmac(k0, strlen(k0), date, k);
    hmac(k, sizeof k, r->region, k);
    hmac(k, sizeof k, r->service, k);
    hmac(k, sizeof k, "aws4_request", k);
    unsigned char s[32];
    hmac(k, sizeof k, sts, s);
    sl_hex_encode(s, sizeof s, sig, 0);
    memset(k0, 0, sizeof k0);
    memset(k, 0, sizeof k);
    out_t o = {out, 0, cap, 0};
    if (!cap)
        goto fail;
    out[0] = '\0';
    puts_(&o, "AWS4-HMAC-SHA256 Credential=");
    puts_(&o, r->access_key);
    put(&o, "/", 1);
    puts_(&o, scope);
    puts_(&o, ", SignedHeaders=");
    sort_headers(r, h); /* cannot fail: the canonical request sorted them already */
    put_signed_headers(&o, h, r->n_headers);
    puts_(&o, ", Signature=");
    puts_(&o, sig);
    rc = o.over ? SL_ETOOBIG : 0;
fail:
    sl_free(canon);
    return rc;
}

/* Appends src[0..n) to out (at *o, cap bytes, NUL kept), decoding the five XML
 * entities and turning control characters and runs of blanks into one space.
 * Returns 1 when src did not fit (out is then full), else 0. */
static int put_text(char *out, size_t cap, size_t *o, const char *src, size_t n)
{
    static const struct {
        const char *ent;
        char ch;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        for (size_t e = 0; ch == '&' && e < sizeof ents / sizeof ents[0]; e++) {
            size_t el = strlen(ents[e].ent);
            if (n - i >= el && memcmp(src + i, ents[e].ent, el) == 0) {
                ch = ents[e].ch;
                i += el - 1;
                break;
            }
        }
        if ((unsigned char)ch < 0x20 || ch == 0x7f)
            ch = ' ';
        if (ch == ' ' && (*o == 0 || out[*o - 1] == ' '))
            continue;
        if (*o + 1 >= cap)
            return 1;
        out[(*o)++] = ch;
        out[*o] = '\0';
    }
    return 0;
}

/* The text of the first <tag>...</tag> in body: start and length, or NULL. */
static const char *xml_text(const char *body, const char *tag, size_t *len)
{
    char open[32], close[32];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(body, open);
    const char *b = a ? strstr(a, close) : NULL;
    if (!b)
        return NULL;
    a += strlen(open);
    *len = (size_t)(b - a);
    return a;
}

/* See s3_sigv4.h. */
char *sl_s3_error_text(const char *body, char *out, size_t cap)
{
    if (!cap)
        return out;
    out[0] = '\0';
    size_t o = 0, code_len = 0, msg_len = 0;
    const char *code = body ? xml_text(body, "Code", &code_len) : NULL;
    const char *msg = body ? xml_text(body, "Message", &msg_len) : NULL;
    int cut = 0;
    if (code)
        cut = put_text(out, cap, &o, code, code_len) || (msg && put_text(out, cap, &o, ": ", 2));
    if (msg && !cut)
        cut = put_text(out, cap, &o, msg, msg_len);
    if (!code && !msg && body)
        cut = put_text(out, cap, &o, body, strlen(body));
    if (cut && cap > 8) { /* end at the last whole word that fits, marked */
        size_t end = o > cap - 4 ? cap - 4 : o;
        size_t sp = end;
        while (sp > cap / 2 && out[sp] != ' ')
            sp--;
        end = out[sp] == ' ' ? sp : end;
        memcpy(out + end, "...", 4);
        o = end + 3;
    }
    while (o > 0 && out[o - 1] == ' ')
        out[--o] = '\0';
    return out;
}
