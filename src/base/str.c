/*
 * String helpers (see str.h): hex, URL decoding, query lookup, comma lists.
 * Everything here is a pure function over caller-owned memory; the HTTP
 * and RTMP servers, the core and the modules share these single copies.
 */
#include "base/str.h"

#include <string.h>
#include <strings.h>

int sl_hex_val(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void sl_hex_encode(const uint8_t *in, size_t n, char *out, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int sl_hex_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
    if (len % 2 || len / 2 > cap)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = sl_hex_val((unsigned char)s[2 * i]), lo = sl_hex_val((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(len / 2);
}

size_t sl_url_decode(char *s, int plus_space)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        int hi, lo;
        if (*r == '%' && (hi = sl_hex_val((unsigned char)r[1])) >= 0 &&
            (lo = sl_hex_val((unsigned char)r[2])) >= 0) {
            *w++ = (char)(hi << 4 | lo);
            r += 2;
        } else if (*r == '+' && plus_space) {
            *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

int sl_url_decode_n(const char *p, size_t n, char *out, size_t cap)
{
    size_t w = 0;
    if (cap == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        int hi, lo;
        if (ch == '%' && i + 2 < n && (hi = sl_hex_val((unsigned char)p[i + 1])) >= 0 &&
            (lo = sl_hex_val((unsigned char)p[i + 2])) >= 0) {
            ch = (char)(hi << 4 | lo);
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (w + 1 >= cap) {
            out[w] = '\0';
            return -1;
        }
        out[w++] = ch;
    }
    out[w] = '\0';
    return (int)w;
}

/*
 * Linear scan of "k=v&k2=v2": queries are short and looked up a few times
 * per request, so no table is built. With SL_QUERY_LAST the scan goes on
 * after a match and a later one overwrites out.
 */
int sl_query_get(const char *query, const char *key, int which, char *out, size_t cap)
{
    if (!query || !key)
        return -1;
    size_t key_len = strlen(key);
    int found = -1;
    const char *p = query;
    while (*p) {
        size_t pair_len = strcspn(p, "&");
        const char *eq = memchr(p, '=', pair_len);
        size_t name_len = eq ? (size_t)(eq - p) : pair_len;
        /* Names are compared decoded, so "a%5Fb" finds "a_b"; a name too
         * long for the scratch buffer cannot be the key we look for
         * unless the key is that long too. */
        char name[256];
        int dn = sl_url_decode_n(p, name_len, name, sizeof name);
        if (dn >= 0 && (size_t)dn == key_len && memcmp(name, key, key_len) == 0) {
            int n = eq ? sl_url_decode_n(eq + 1, pair_len - name_len - 1, out, cap)
                       : sl_url_decode_n("", 0, out, cap);
            found = n < 0 && cap ? -2 : n; /* present, but cut at cap - 1 bytes */
            if (which == SL_QUERY_FIRST)
                return found;
        }
        p += pair_len;
        if (*p == '&')
            p++;
    }
    return found;
}

const char *sl_list_next(const char **cursor, size_t *len)
{
    const char *p = *cursor;
    if (!p)
        return NULL;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p) {
            *cursor = p;
            return NULL;
        }
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end > start) {
            *cursor = *p ? p + 1 : p; /* past the comma: the item may be cut in place */
            *len = (size_t)(end - start);
            return start;
        }
    }
}

int sl_list_has(const char *list, const char *word)
{
    if (!list || !word)
        return 0;
    size_t wl = strlen(word), n;
    for (const char *c = list, *it; (it = sl_list_next(&c, &n));)
        if (n == wl && strncasecmp(it, word, n) == 0)
            return 1;
    return 0;
}

int sl_json_depth_ok(const char *text, size_t len, int max_depth)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return 0;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 1;
}
