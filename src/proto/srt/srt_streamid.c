/*
 * The SRT streamid parser (see srt_streamid.h). Every field is copied into
 * a fixed array of the result with its length checked first; percent
 * escapes in `?` values are decoded; the path is checked with
 * sl_name_is_safe like every other protocol's names.
 */
#include "proto/srt/srt_streamid.h"

#include <string.h>

#include "app/core.h"
#include "base/str.h"
#include "sluice/errors.h"

static int fail(const char **why, const char *msg, int rc)
{
    if (why)
        *why = msg;
    return rc;
}

/* Copies n bytes into out (cap with the NUL); 0 or SL_ETOOBIG. */
static int put(char *out, size_t cap, const char *p, size_t n)
{
    if (n >= cap)
        return SL_ETOOBIG;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* Splits out->path into scope and stream at its last '/'. */
static int split_path(sl_srt_streamid_t *out, const char **why)
{
    if (!out->path[0])
        return fail(why, "no app/stream in the streamid", SL_EINVAL);
    if (!sl_name_is_safe(out->path, SL_SRT_PATH_MAX))
        return fail(why, "bad stream name", SL_EINVAL);
    char *slash = strrchr(out->path, '/');
    if (!slash || slash == out->path || !slash[1])
        return fail(why, "the streamid must name app/stream", SL_EINVAL);
    size_t sl = (size_t)(slash - out->path);
    memcpy(out->scope, out->path, sl);
    out->scope[sl] = '\0';
    strcpy(out->stream, slash + 1);
    return 0;
}

/* `#!::k=v,k=v` (SRT access control). */
static int parse_ac(const char *p, size_t n, sl_srt_streamid_t *out, const char **why)
{
    int mode_seen = 0;
    const char *end = p + n;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        const char *eq = memchr(p, '=', (size_t)(item_end - p));
        if (!eq)
            return fail(why, "access-control item without '='", SL_EINVAL);
        size_t kl = (size_t)(eq - p);
        const char *v = eq + 1;
        size_t vl = (size_t)(item_end - v);
        int rc = 0;
        if (kl == 1 && p[0] == 'r')
            rc = put(out->path, sizeof out->path, v, vl);
        else if (kl == 1 && p[0] == 'u')
            rc = put(out->user, sizeof out->user, v, vl);
        else if (kl == 1 && p[0] == 's')
            rc = put(out->pass, sizeof out->pass, v, vl);
        else if (kl == 1 && p[0] == 't')
            rc = put(out->token, sizeof out->token, v, vl);
        else if (kl == 1 && p[0] == 'm') {
            mode_seen = 1;
            if (vl == 7 && memcmp(v, "publish", 7) == 0)
                out->mode = SL_SRT_MODE_PUBLISH;
            else if (vl == 7 && memcmp(v, "request", 7) == 0)
                out->mode = SL_SRT_MODE_READ;
            else
                return fail(why, "access-control mode must be publish or request", SL_EINVAL);
        }
        if (rc)
            return fail(why, "access-control value too long", rc);
        p = comma ? comma + 1 : end;
    }
    if (!mode_seen)
        out->mode = SL_SRT_MODE_READ;
    /* A bare secret (s without u and t) is a token, e.g. a JWT. */
    if (out->pass[0] && !out->user[0] && !out->token[0]) {
        strcpy(out->token, out->pass);
        out->pass[0] = '\0';
    }
    return 0;
}

/* `mode:path[?query]` or a bare path. */
static int parse_plain(const char *p, size_t n, sl_srt_streamid_t *out, const char **why)
{
    out->mode = SL_SRT_MODE_READ;
    if (n >= 8 && memcmp(p, "publish:", 8) == 0) {
        out->mode = SL_SRT_MODE_PUBLISH;
        p += 8, n -= 8;
    } else if (n >= 5 && memcmp(p, "read:", 5) == 0) {
        p += 5, n -= 5;
    } else if (n >= 5 && memcmp(p, "play:", 5) == 0) {
        p += 5, n -= 5;
    }
    const char *q = memchr(p, '?', n);
    size_t pl = q ? (size_t)(q - p) : n;
    if (put(out->path, sizeof out->path, p, pl))
        return fail(why, "stream path too long", SL_ETOOBIG);
    if (q) {
        if (put(out->query, sizeof out->query, q + 1, n - pl - 1))
            return fail(why, "query too long", SL_ETOOBIG);
        /* -2 (cut) counts as too long: a truncated credential must not be tried. */
        if (sl_query_get(out->query, "username", SL_QUERY_LAST, out->user, sizeof out->user) == -2 ||
            sl_query_get(out->query, "password", SL_QUERY_LAST, out->pass, sizeof out->pass) == -2 ||
            sl_query_get(out->query, "token", SL_QUERY_LAST, out->token, sizeof out->token) == -2)
            return fail(why, "credential too long", SL_ETOOBIG);
        if (out->user[0] == '\0' && sl_query_get(out->query, "user", SL_QUERY_LAST, out->user, sizeof out->user) == -2)
            return fail(why, "credential too long", SL_ETOOBIG);
        if (out->pass[0] == '\0' && sl_query_get(out->query, "pass", SL_QUERY_LAST, out->pass, sizeof out->pass) == -2)
            return fail(why, "credential too long", SL_ETOOBIG);
    }
    return 0;
}

int sl_srt_streamid_parse(const char *sid, size_t len, sl_srt_streamid_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (why)
        *why = NULL;
    if (!sid || len == 0)
        return fail(why, "no streamid (use publish:app/stream or read:app/stream)", SL_EINVAL);
    if (len > SL_SRT_STREAMID_MAX)
        return fail(why, "streamid too long", SL_ETOOBIG);
    /* Callers that put the streamid in an srt:// URL percent-encode '?', '&'
     * and '=' in it (ffmpeg 5 hands it on undecoded): a streamid with a '%'
     * is decoded once, so a literal '%' is written %25. */
    char dec[SL_SRT_STREAMID_MAX + 1];
    if (memchr(sid, '%', len)) {
        memcpy(dec, sid, len);
        dec[len] = '\0';
        len = sl_url_decode(dec, 0);
        sid = dec;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)sid[i] < 0x20 || sid[i] == 0x7f)
            return fail(why, "control byte in the streamid", SL_EINVAL);
    int rc = len >= 4 && memcmp(sid, "#!::", 4) == 0 ? parse_ac(sid + 4, len - 4, out, why)
                                                      : parse_plain(sid, len, out, why);
    if (rc)
        return rc;
    /* Decoded credentials must not hold control bytes either (%00 cuts a C string). */
    if (!sl_query_is_safe(out->query))
        return fail(why, "control byte in the streamid query", SL_EINVAL);
    if ((rc = split_path(out, why)))
        return rc;
    out->had_creds = out->user[0] || out->pass[0] || out->token[0];
    return 0;
}
