/*
 * The relay's pure helpers (see relay_util.h).
 */
#include "cluster/relay/relay_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/str.h"
#include "sluice/errors.h"

static int is_sep(char c) { return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

/* One entry (p, len) into *a. 0 or SL_EINVAL with *why. */
static int parse_one(const char *p, size_t len, sl_relay_addr_t *a, const char **why)
{
    if (len >= 7 && strncmp(p, "rtmp://", 7) == 0) {
        p += 7;
        len -= 7;
    }
    while (len && p[len - 1] == '/')
        len--; /* rtmp://host:port/ */
    const char *host = p, *port = NULL;
    size_t host_len = len;
    if (len && p[0] == '[') {
        const char *close = memchr(p, ']', len);
        if (!close) {
            *why = "unclosed '[' in an address";
            return SL_EINVAL;
        }
        host = p + 1;
        host_len = (size_t)(close - host);
        size_t rest = len - (size_t)(close + 1 - p);
        if (rest) {
            if (close[1] != ':') {
                *why = "junk after ']' in an address";
                return SL_EINVAL;
            }
            port = close + 2;
        }
        for (size_t i = 0; i < host_len; i++)
            if (!(host_char_ok(host[i]) || host[i] == ':')) {
                *why = "bad character in an address";
                return SL_EINVAL;
            }
    } else {
        const char *colon = memchr(p, ':', len);
        if (colon) {
            host_len = (size_t)(colon - p);
            port = colon + 1;
        }
        for (size_t i = 0; i < host_len; i++)
            if (!host_char_ok(host[i])) {
                *why = "bad character in a host name";
                return SL_EINVAL;
            }
    }
    if (host_len == 0 || host_len >= SL_RELAY_HOST_MAX) {
        *why = host_len ? "host name too long" : "an entry has no host";
        return SL_EINVAL;
    }
    memcpy(a->host, host, host_len);
    a->host[host_len] = '\0';
    a->port = 1935;
    if (port) {
        size_t plen = len - (size_t)(port - p);
        unsigned v = 0;
        if (plen == 0 || plen > 5) {
            *why = "bad port";
            return SL_EINVAL;
        }
        for (size_t i = 0; i < plen; i++) {
            if (port[i] < '0' || port[i] > '9') {
                *why = "bad port";
                return SL_EINVAL;
            }
            v = v * 10 + (unsigned)(port[i] - '0');
        }
        if (v == 0 || v > 65535) {
            *why = "port out of range";
            return SL_EINVAL;
        }
        a->port = (uint16_t)v;
    }
    return 0;
}

int sl_relay_origins_parse(const char *text, sl_relay_addr_t *out, size_t cap,
                           const char **why)
{
    static const char *ignored;
    if (!why)
        why = &ignored;
    if (!text)
        return 0;
    int n = 0;
    const char *p = text;
    for (;;) {
        while (*p && is_sep(*p))
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && !is_sep(*p))
            p++;
        if ((size_t)n >= cap || n >= SL_RELAY_MAX_ORIGINS) {
            *why = "too many origins";
            return SL_ETOOBIG;
        }
        int rc = parse_one(start, (size_t)(p - start), &out[n], why);
        if (rc)
            return rc;
        n++;
    }
    return n;
}

size_t sl_relay_pick(const char *path, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)path; p && *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return n ? (size_t)(h % n) : 0;
}

int sl_relay_secret_eq(const char *a, const char *b)
{
    a = a ? a : "";
    b = b ? b : "";
    size_t la = strlen(a), lb = strlen(b);
    size_t n = la > lb ? la : lb;
    volatile unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < la ? (unsigned char)a[i] : 0;
        unsigned char y = i < lb ? (unsigned char)b[i] : 0;
        diff |= (unsigned char)(x ^ y);
    }
    return diff == 0;
}

int sl_relay_query_mask(const char *query, const char *key, char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    if (!query)
        return 0;
    size_t klen = strlen(key), o = 0;
    int masked = 0;
    const char *p = query;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t name_len = eq ? (size_t)(eq - p) : len;
        const char *piece = p;
        size_t piece_len = len;
        /* names compare decoded, as sl_query_get finds them: re%73treamer= is restreamer= */
        char name[64];
        int dn = eq && name_len < sizeof name ? sl_url_decode_n(p, name_len, name, sizeof name) : -1;
        int mask = dn >= 0 && (size_t)dn == klen && memcmp(name, key, klen) == 0;
        if (mask)
            piece_len = name_len + 1; /* "key=" then "***" */
        size_t need = piece_len + (mask ? 3 : 0) + (end ? 1 : 0);
        if (o + need + 1 > cap) {
            if (cap)
                out[0] = '\0';
            return SL_ETOOBIG;
        }
        memcpy(out + o, piece, piece_len);
        o += piece_len;
        if (mask) {
            memcpy(out + o, "***", 3);
            o += 3;
            masked++;
        }
        if (end)
            out[o++] = '&';
        out[o] = '\0';
        if (!end)
            break;
        p = end + 1;
    }
    return masked;
}

/* Appends s percent-encoded (RFC 3986 unreserved kept; '/' kept when keep_slash). */
static int put_enc(char *out, size_t cap, size_t *o, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
                    *p == '~' || (keep_slash && *p == '/');
        if (*o + (plain ? 1 : 3) + 1 > cap)
            return SL_ETOOBIG;
        if (plain) {
            out[(*o)++] = (char)*p;
        } else {
            out[(*o)++] = '%';
            out[(*o)++] = hex[*p >> 4];
            out[(*o)++] = hex[*p & 15];
        }
    }
    out[*o] = '\0';
    return 0;
}

static int put_raw(char *out, size_t cap, size_t *o, const char *s)
{
    size_t n = strlen(s);
    if (*o + n + 1 > cap)
        return SL_ETOOBIG;
    memcpy(out + *o, s, n + 1);
    *o += n;
    return 0;
}

int sl_relay_url(char *out, size_t cap, const char *host, uint16_t port, const char *app,
                 const char *stream, const char *password, int hops)
{
    if (!cap)
        return SL_ETOOBIG;
    out[0] = '\0';
    char head[SL_RELAY_HOST_MAX + 32];
    int v6 = strchr(host, ':') != NULL;
    int n = snprintf(head, sizeof head, "rtmp://%s%s%s:%u/", v6 ? "[" : "", host, v6 ? "]" : "",
                     (unsigned)port);
    if (n < 0 || (size_t)n >= sizeof head)
        return SL_ETOOBIG;
    size_t o = 0;
    char hop[32];
    snprintf(hop, sizeof hop, "&cluster-hops=%d", hops);
    int rc = put_raw(out, cap, &o, head);
    rc = rc ? rc : put_enc(out, cap, &o, app, 1);
    rc = rc ? rc : put_raw(out, cap, &o, "/");
    rc = rc ? rc : put_enc(out, cap, &o, stream, 0);
    rc = rc ? rc : put_raw(out, cap, &o, "?");
    if (!rc && password && *password) {
        rc = put_raw(out, cap, &o, "restreamer=");
        rc = rc ? rc : put_enc(out, cap, &o, password, 0);
        rc = rc ? rc : put_raw(out, cap, &o, "&");
    }
    rc = rc ? rc : put_raw(out, cap, &o, "cluster-restreamer-context=");
    rc = rc ? rc : put_enc(out, cap, &o, app, 1);
    rc = rc ? rc : put_raw(out, cap, &o, "&cluster-restreamer-name=");
    rc = rc ? rc : put_enc(out, cap, &o, stream, 0);
    rc = rc ? rc : put_raw(out, cap, &o, hop);
    if (rc) {
        out[0] = '\0';
        return rc;
    }
    return (int)o;
}
