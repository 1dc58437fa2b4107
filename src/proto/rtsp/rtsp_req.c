/*
 * RTSP request parsing: see rtsp_req.h. Every copy checks its
 * destination's size; a line is looked at only up to the end of the head.
 */
#include "proto/rtsp/rtsp_req.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "sluice/errors.h"

/* Where the head ends (just past the blank line), or 0 when not within len bytes. */
static size_t head_end(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (p[i] != '\n')
            continue;
        if (p[i + 1] == '\n')
            return i + 2;
        if (p[i + 1] == '\r' && i + 2 < len && p[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static int parse_uint(const char *s, size_t max, size_t *out)
{
    size_t v = 0;
    if (!*s)
        return SL_EPROTO;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return SL_EPROTO;
        v = v * 10 + (size_t)(*s - '0');
        if (v > max)
            return SL_EPROTO;
    }
    *out = v;
    return 0;
}

int sl_rtsp_req_parse(const uint8_t *p, size_t len, size_t max_head, sl_rtsp_req_t *out)
{
    if (max_head > SL_RTSP_MAX_HEAD)
        max_head = SL_RTSP_MAX_HEAD;
    /* Blank lines between requests are allowed (RFC 2326 allows keep-alive CRLFs). */
    size_t skip = 0;
    while (skip < len && (p[skip] == '\r' || p[skip] == '\n'))
        skip++;
    size_t look = len - skip < max_head ? len - skip : max_head;
    size_t end = head_end(p + skip, look);
    if (!end)
        return len - skip >= max_head ? SL_ETOOBIG : SL_EAGAIN;
    if (end >= sizeof out->copy)
        return SL_ETOOBIG;
    memcpy(out->copy, p + skip, end);
    out->copy[end] = '\0';
    out->head_len = skip + end;
    out->cseq = -1;
    out->content_length = 0;
    out->n_headers = 0;
    for (size_t i = 0; i < end; i++)
        if (out->copy[i] == '\0')
            return SL_EPROTO;
    char *save = NULL, *line = strtok_r(out->copy, "\r\n", &save);
    if (!line)
        return SL_EPROTO;
    /* Request line: METHOD SP URL SP RTSP/1.0 */
    char *sp1 = strchr(line, ' ');
    if (!sp1 || sp1 == line || (size_t)(sp1 - line) >= sizeof out->method)
        return SL_EPROTO;
    char *sp2 = strchr(sp1 + 1, ' ');
    if (!sp2 || sp2 == sp1 + 1 || strcmp(sp2 + 1, "RTSP/1.0"))
        return SL_EPROTO;
    if ((size_t)(sp2 - sp1 - 1) >= sizeof out->url)
        return SL_ETOOBIG;
    memcpy(out->method, line, (size_t)(sp1 - line));
    out->method[sp1 - line] = '\0';
    for (char *m = out->method; *m; m++)
        if (!isupper((unsigned char)*m) && *m != '_')
            return SL_EPROTO;
    memcpy(out->url, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    out->url[sp2 - sp1 - 1] = '\0';
    while ((line = strtok_r(NULL, "\r\n", &save))) {
        char *colon = strchr(line, ':');
        if (!colon || colon == line)
            return SL_EPROTO;
        if (out->n_headers == SL_RTSP_MAX_HEADERS)
            return SL_ETOOBIG;
        *colon = '\0';
        char *v = colon + 1, *e;
        while (*v == ' ' || *v == '\t')
            v++;
        e = v + strlen(v);
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        out->headers[out->n_headers++] = (sl_rtsp_header_t){line, v};
        size_t n;
        if (!strcasecmp(line, "CSeq")) {
            if (parse_uint(v, 999999999, &n))
                return SL_EPROTO;
            out->cseq = (int)n;
        } else if (!strcasecmp(line, "Content-Length")) {
            if (parse_uint(v, 1u << 30, &n))
                return SL_EPROTO;
            out->content_length = n;
        }
    }
    return 0;
}

const char *sl_rtsp_req_header(const sl_rtsp_req_t *r, const char *name)
{
    for (int i = 0; i < r->n_headers; i++)
        if (!strcasecmp(r->headers[i].name, name))
            return r->headers[i].value;
    return NULL;
}

/* "a-b" or "a" into two ints in 0..max; 0 or SL_EPROTO. */
static int pair(const char *v, size_t n, int max, int out[2])
{
    char buf[32];
    if (n == 0 || n >= sizeof buf)
        return SL_EPROTO;
    memcpy(buf, v, n);
    buf[n] = '\0';
    char *dash = strchr(buf, '-');
    if (dash)
        *dash = '\0';
    size_t a, b;
    if (parse_uint(buf, (size_t)max, &a))
        return SL_EPROTO;
    if (dash) {
        if (parse_uint(dash + 1, (size_t)max, &b))
            return SL_EPROTO;
    } else {
        b = a + 1;
    }
    out[0] = (int)a;
    out[1] = (int)b;
    return 0;
}

/* One specification (no commas) into t. 0, or SL_EPROTO when it is not usable. */
static int one_spec(const char *s, size_t n, sl_rtsp_transport_t *t)
{
    memset(t, 0, sizeof *t);
    t->interleaved[0] = t->interleaved[1] = -1;
    t->client_port[0] = t->client_port[1] = -1;
    int first = 1;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j] != ';')
            j++;
        const char *f = s + i;
        size_t fl = j - i;
        while (fl && (*f == ' ' || *f == '\t'))
            f++, fl--;
        while (fl && (f[fl - 1] == ' ' || f[fl - 1] == '\t'))
            fl--;
        if (first) {
            if (fl == 7 && !strncasecmp(f, "RTP/AVP", 7))
                t->tcp = 0;
            else if (fl == 11 && !strncasecmp(f, "RTP/AVP/UDP", 11))
                t->tcp = 0;
            else if (fl == 11 && !strncasecmp(f, "RTP/AVP/TCP", 11))
                t->tcp = 1;
            else
                return SL_EPROTO;
            first = 0;
        } else if (fl == 9 && !strncasecmp(f, "multicast", 9)) {
            t->multicast = 1;
        } else if (fl > 12 && !strncasecmp(f, "interleaved=", 12)) {
            if (pair(f + 12, fl - 12, 255, t->interleaved))
                return SL_EPROTO;
        } else if (fl > 12 && !strncasecmp(f, "client_port=", 12)) {
            if (pair(f + 12, fl - 12, 65535, t->client_port))
                return SL_EPROTO;
        } else if (fl > 5 && !strncasecmp(f, "mode=", 5)) {
            const char *m = f + 5;
            size_t ml = fl - 5;
            if (ml >= 2 && m[0] == '"')
                m++, ml -= 2;
            t->record = ml == 6 && !strncasecmp(m, "RECORD", 6);
        }
        i = j + 1;
    }
    return first ? SL_EPROTO : 0;
}

int sl_rtsp_transport_parse(const char *value, sl_rtsp_transport_t *out)
{
    size_t n = strlen(value);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && value[j] != ',')
            j++;
        if (one_spec(value + i, j - i, out) == 0)
            return 0;
        i = j + 1;
    }
    memset(out, 0, sizeof *out);
    return SL_EPROTO;
}

/* Copies a Digest parameter value (quoted or token) of at most cap - 1 bytes. */
static int dparam(const char **pp, char *out, size_t cap)
{
    const char *p = *pp;
    size_t n = 0;
    if (*p == '"') {
        p++;
        while (*p && *p != '"') {
            if (*p == '\\' && p[1])
                p++;
            if (n + 1 >= cap)
                return SL_EPROTO;
            out[n++] = *p++;
        }
        if (*p != '"')
            return SL_EPROTO;
        p++;
    } else {
        while (*p && *p != ',' && *p != ' ') {
            if (n + 1 >= cap)
                return SL_EPROTO;
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    *pp = p;
    return 0;
}

int sl_rtsp_auth_parse(const char *value, sl_rtsp_auth_t *out)
{
    memset(out, 0, sizeof *out);
    while (*value == ' ')
        value++;
    if (!strncasecmp(value, "Basic ", 6)) {
        const char *b = value + 6;
        while (*b == ' ')
            b++;
        size_t n = strlen(b);
        uint8_t dec[600];
        if (n == 0 || n % 4 || n / 4 * 3 >= sizeof dec)
            return SL_EPROTO;
        int got = EVP_DecodeBlock(dec, (const unsigned char *)b, (int)n);
        if (got < 0)
            return SL_EPROTO;
        while (got > 0 && n && b[n - 1] == '=')
            got--, n--; /* EVP_DecodeBlock counts the padding as zero bytes */
        dec[got] = '\0';
        if (memchr(dec, '\0', (size_t)got))
            return SL_EPROTO;
        char *colon = strchr((char *)dec, ':');
        if (!colon)
            return SL_EPROTO;
        *colon = '\0';
        if (strlen((char *)dec) >= sizeof out->username || strlen(colon + 1) >= sizeof out->password)
            return SL_EPROTO;
        strcpy(out->username, (char *)dec);
        strcpy(out->password, colon + 1);
        out->scheme = SL_RTSP_AUTH_BASIC;
        return 0;
    }
    if (strncasecmp(value, "Digest ", 7))
        return SL_EPROTO;
    const char *p = value + 7;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *k = p;
        while (*p && *p != '=' && *p != ',')
            p++;
        if (*p != '=')
            return SL_EPROTO;
        size_t kl = (size_t)(p - k);
        while (kl && k[kl - 1] == ' ')
            kl--;
        p++;
        while (*p == ' ')
            p++;
        char tmp[8];
        char *dst = tmp;
        size_t cap = sizeof tmp;
#define KEY(s, f) else if (kl == sizeof(s) - 1 && !strncasecmp(k, s, kl)) { dst = out->f; cap = sizeof out->f; }
        if (0) {
        }
        KEY("username", username) KEY("realm", realm) KEY("nonce", nonce) KEY("uri", uri)
        KEY("response", response) KEY("qop", qop) KEY("nc", nc) KEY("cnonce", cnonce)
#undef KEY
        char skip[SL_RTSP_MAX_URL];
        if (dst == tmp) {
            dst = skip;
            cap = sizeof skip;
        }
        if (dparam(&p, dst, cap))
            return SL_EPROTO;
    }
    if (!out->username[0] || !out->nonce[0] || !out->response[0])
        return SL_EPROTO;
    out->scheme = SL_RTSP_AUTH_DIGEST;
    return 0;
}

/* Appends s[0..n) to out (cap) at *o; SL_ETOOBIG when it does not fit. */
static int put(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    if (*o + n >= cap)
        return SL_ETOOBIG;
    memcpy(out + *o, s, n);
    *o += n;
    out[*o] = '\0';
    return 0;
}

int sl_rtsp_url_split(const char *url, char *path, size_t path_cap, char *params, size_t params_cap,
                      char *query, size_t query_cap)
{
    if (!path_cap || !params_cap || !query_cap)
        return SL_ETOOBIG;
    path[0] = params[0] = query[0] = '\0';
    const char *p;
    if (!strncasecmp(url, "rtsp://", 7))
        p = url + 7;
    else if (!strncasecmp(url, "rtsps://", 8))
        p = url + 8;
    else if (url[0] == '/')
        p = url; /* a path alone, as some clients send it */
    else
        return SL_EPROTO;
    if (p != url) {
        p = strchr(p, '/'); /* past the authority */
        if (!p)
            return SL_EPROTO;
    }
    const char *q = strchr(p, '?');
    size_t plen = q ? (size_t)(q - p) : strlen(p);
    if (q) {
        size_t o = 0;
        if (put(query, query_cap, &o, q + 1, strlen(q + 1)))
            return SL_ETOOBIG;
    }
    size_t po = 0, ao = 0;
    /* Walk segments; within a segment, ';'-separated parameters after the name. */
    for (size_t i = 0; i < plen;) {
        while (i < plen && p[i] == '/')
            i++;
        size_t j = i;
        while (j < plen && p[j] != '/')
            j++;
        if (j > i) {
            size_t k = i;
            while (k < j && p[k] != ';')
                k++;
            if (k > i) {
                if ((po && put(path, path_cap, &po, "/", 1)) || put(path, path_cap, &po, p + i, k - i))
                    return SL_ETOOBIG;
            }
            while (k < j) {
                size_t s = k + 1, e = s;
                while (e < j && p[e] != ';')
                    e++;
                if (e > s && memchr(p + s, '=', e - s)) {
                    if ((ao && put(params, params_cap, &ao, "&", 1)) || put(params, params_cap, &ao, p + s, e - s))
                        return SL_ETOOBIG;
                }
                k = e;
            }
        }
        i = j;
    }
    return path[0] ? 0 : SL_EPROTO;
}
