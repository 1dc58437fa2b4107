/*
 * Pure helpers of the HTTP server (see http_parse.h and http.h): URL
 * decoding, query-string lookup, header lookup and token lists, route
 * matching by prefix, the static-file path check, content types, reason
 * phrases, dates, the WebSocket accept key and UTF-8 validation. Nothing
 * here touches a socket, the loop or global state, so the unit tests and
 * the fuzz target call these directly.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/str.h"
#include "proto/http/http_parse.h"
#include "sluice/errors.h"

/* URL decoding and query lookup are base's (base/str.h); these names stay
 * for the HTTP server's callers. */
size_t sl_http_url_decode(char *s, int plus_space) { return sl_url_decode(s, plus_space); }

int sl_http_query_get(const char *query, const char *key, char *out, size_t cap)
{
    return sl_query_get(query, key, SL_QUERY_FIRST, out, cap);
}

const char *sl__http_header_find(const sl_http_header_t *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, name) == 0)
            return h[i].value;
    return NULL;
}

const char *sl_http_req_header(const sl_http_req_t *req, const char *name)
{
    return sl__http_header_find(req->headers, req->n_headers, name);
}

/* Token lists (RFC 9110 5.6.1): comma-separated, blanks around items ignored. */
int sl__http_header_has_token(const char *value, const char *token)
{
    return sl_list_has(value, token);
}

/*
 * HEAD is answered by GET routes (the server drops the body), so that no
 * route has to register it; a route for HEAD alone still sees only HEAD.
 */
int sl__http_route_match(const char *method, const char *prefix, const char *suffixes,
                         const char *req_method, const char *path)
{
    if (method && strcmp(method, req_method) != 0 &&
        !(strcmp(method, "GET") == 0 && strcmp(req_method, "HEAD") == 0))
        return 0;
    size_t pl = strlen(prefix);
    if (strncmp(path, prefix, pl) != 0)
        return 0;
    /* Whole segments: the prefix ends at a '/' of its own or of the path. */
    if (pl > 0 && prefix[pl - 1] != '/' && path[pl] != '\0' && path[pl] != '/')
        return 0;
    if (!suffixes || !suffixes[0])
        return 1;
    size_t len = strlen(path);
    for (const char *s = suffixes; *s;) {
        while (*s == ' ')
            s++;
        size_t n = strcspn(s, " ");
        if (n > 0 && n <= len && memcmp(path + len - n, s, n) == 0)
            return 1;
        s += n;
    }
    return 0;
}

/*
 * Segment by segment, so "..a" and "a.." (legal names) pass while ".."
 * as a whole segment, at any depth, does not. The path is already
 * percent-decoded: "%2e%2e" arrives here as "..".
 */
int sl__http_static_path_ok(const char *rel, size_t len)
{
    if (strlen(rel) != len)
        return 0; /* a NUL inside: %00 in the URL */
    const char *seg = rel;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)rel[i];
        if (c == '/' || c == '\0') {
            size_t sl = (size_t)(rel + i - seg);
            if (sl == 2 && seg[0] == '.' && seg[1] == '.')
                return 0;
            seg = rel + i + 1;
            continue;
        }
        if (c < 0x20 || c == 0x7f || c == '\\')
            return 0;
    }
    return 1;
}

typedef struct {
    const char *ext;
    const char *type;
} ctype_t;

static const ctype_t g_ctypes[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"svg", "image/svg+xml"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"m3u8", "application/vnd.apple.mpegurl"},
    {"ts", "video/mp2t"},
    {"m4s", "video/iso.segment"},
    {"mp4", "video/mp4"},
    {"flv", "video/x-flv"},
};

/* By the extension of the last path segment, case-insensitively. */
const char *sl__http_content_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    const char *dot = strrchr(base, '.');
    if (dot && dot[1]) {
        for (size_t i = 0; i < sizeof g_ctypes / sizeof g_ctypes[0]; i++)
            if (strcasecmp(dot + 1, g_ctypes[i].ext) == 0)
                return g_ctypes[i].type;
    }
    return "application/octet-stream";
}

const char *sl__http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status >= 100 && status < 600 ? "Status" : "Unknown";
    }
}

void sl__http_date(int64_t t, char out[32])
{
    /* Formatted by hand: strftime's %a and %b follow the locale. */
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        memset(&tm, 0, sizeof tm);
        tm.tm_mday = 1;
        tm.tm_year = 70;
        tm.tm_wday = 4;
    }
    /* Formatted into a roomy buffer: gcc cannot prove the fields' ranges. */
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
             tm.tm_mday % 100, months[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000,
             tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100);
    snprintf(out, 32, "%.31s", tmp);
}

int sl__http_ws_accept_key(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    out[0] = '\0';
    /* 16 random bytes in base64: 22 characters and "==". */
    if (!key || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
        return SL_EINVAL;
    for (int i = 0; i < 22; i++) {
        char c = key[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return SL_EINVAL;
    }
    unsigned char in[24 + sizeof guid - 1];
    memcpy(in, key, 24);
    memcpy(in + 24, guid, sizeof guid - 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(in, sizeof in, md, &md_len, EVP_sha1(), NULL) != 1 || md_len != 20)
        return SL_EIO;
    if (EVP_EncodeBlock((unsigned char *)out, md, 20) != 28)
        return SL_EIO;
    return 0;
}

/*
 * RFC 3629: the lead byte gives the length, every continuation byte is
 * 10xxxxxx, and the value must need that length (no overlongs), be a
 * scalar value (no surrogates) and not pass U+10FFFF.
 */
int sl__http_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            need = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i - 1 < need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += need + 1;
    }
    return 1;
}
