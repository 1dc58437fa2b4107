/*
 * Secret masking for log lines (see redact.h). One pass over the input,
 * writing into a caller-provided buffer: names are recognised by the
 * character before them (start, '?', '&', ';', ',', blank, quote, '-' of a
 * command-line option) and their '=', values run to the next separator.
 */
#include "base/redact.h"

#include <ctype.h>
#include <stdio.h>
#include <strings.h>
#include <string.h>

static const char *const secret_words[] = {
    "pass", "pwd", "token", "secret", "key", "sig", "jwt", "credential", "auth", "session",
};

int sl_redact_is_secret_name(const char *name, size_t len)
{
    /* Red5's cluster restreamer carries the cluster password as restreamer=
     * (src/cluster/relay); matched whole, so that its companions
     * cluster-restreamer-context and -name (an app, a stream) stay readable. */
    if (len == 10 && strncasecmp(name, "restreamer", 10) == 0)
        return 1;
    for (size_t w = 0; w < sizeof secret_words / sizeof secret_words[0]; w++) {
        size_t n = strlen(secret_words[w]);
        for (size_t i = 0; i + n <= len; i++)
            if (strncasecmp(name + i, secret_words[w], n) == 0)
                return 1;
    }
    return 0;
}

static int is_b64url(int ch)
{
    return isalnum(ch) || ch == '-' || ch == '_' || ch == '=';
}

/* Length of a JWT-shaped run at p ("eyJ" b64url '.' b64url '.' [b64url]), 0 if none. */
static size_t jwt_len(const char *p)
{
    if (strncmp(p, "eyJ", 3) != 0)
        return 0;
    size_t i = 3;
    int dots = 0;
    for (;; i++) {
        if (is_b64url((unsigned char)p[i]))
            continue;
        if (p[i] == '.' && dots < 2) {
            dots++;
            continue;
        }
        break;
    }
    return dots == 2 ? i : 0;
}

/* Characters that end a value. */
static int ends_value(int ch)
{
    return ch == '\0' || ch == '&' || ch == ';' || ch == '#' || ch == ',' || ch == '"' ||
           ch == '\'' || ch == ')' || isspace(ch);
}

/* Characters a parameter name is made of. */
static int is_name_char(int ch)
{
    return isalnum(ch) || ch == '_' || ch == '-' || ch == '.' || ch == '[' || ch == ']';
}

typedef struct {
    char *out;
    size_t cap, len;
    int cut;
} writer_t;

static void put(writer_t *w, const char *s, size_t n)
{
    if (w->cut)
        return;
    /* Keep room for "..." and the NUL. */
    if (w->len + n + 4 > w->cap) {
        w->cut = 1;
        return;
    }
    memcpy(w->out + w->len, s, n);
    w->len += n;
}

const char *sl_redact(const char *s, char *out, size_t cap)
{
    if (!out || !cap)
        return "";
    if (cap < 8) {
        out[0] = '\0';
        return out;
    }
    if (!s) {
        snprintf(out, cap, "-");
        return out;
    }
    writer_t w = {.out = out, .cap = cap};
    const char *p = s;
    while (*p && !w.cut) {
        size_t n;
        /* URL userinfo: scheme://user:pass@ */
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') {
            put(&w, p, 3);
            p += 3;
            size_t auth = strcspn(p, "/?#@ \t");
            if (p[auth] == '@') {
                const char *colon = memchr(p, ':', auth);
                if (colon) {
                    put(&w, p, (size_t)(colon - p) + 1);
                    put(&w, "***@", 4);
                    p += auth + 1;
                }
            }
            continue;
        }
        /* A JWT starts a token: not inside one ("x=eyJ..." starts one: '=' is only
         * padding at the end of base64url, never before it). */
        if ((n = jwt_len(p)) > 0 && (p == s || p[-1] == '=' || !is_b64url((unsigned char)p[-1]))) {
            put(&w, "***", 3);
            p += n;
            continue;
        }
        /* key=value at the start of a name */
        if (is_name_char((unsigned char)*p) && (p == s || !is_name_char((unsigned char)p[-1]))) {
            size_t name_len = 0;
            while (is_name_char((unsigned char)p[name_len]))
                name_len++;
            if (p[name_len] == '=' && sl_redact_is_secret_name(p, name_len)) {
                put(&w, p, name_len + 1);
                p += name_len + 1;
                size_t v = 0;
                while (!ends_value((unsigned char)p[v]))
                    v++;
                if (v)
                    put(&w, "***", 3);
                p += v;
                continue;
            }
            put(&w, p, name_len);
            p += name_len;
            continue;
        }
        put(&w, p, 1);
        p++;
    }
    if (w.cut) {
        memcpy(out + w.len, "...", 3);
        w.len += 3;
    }
    out[w.len] = '\0';
    return out;
}
