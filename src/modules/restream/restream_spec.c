/*
 * Parsing pull and push entries (see restream_spec.h). Fields are
 * separated by spaces or tabs; options are key=value. Lines longer than
 * SL_RS_LINE_MAX, names with unsafe bytes and unknown options are refused,
 * so that a typo in sluice.yml is reported at start rather than ignored.
 */
#include "modules/restream/restream_spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/errors.h"

static int has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

int sl_rs_url_ok(const char *url, int push)
{
    static const char *const pull_schemes[] = {"rtsp://", "rtsps://", "rtmp://", "rtmps://",
                                               "srt://", "http://", "https://", NULL};
    static const char *const push_schemes[] = {"rtmp://", "rtmps://", "srt://", NULL};
    const char *const *s = push ? push_schemes : pull_schemes;
    size_t n = strlen(url);
    if (n >= SL_RS_URL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
            return 0;
    for (; *s; s++)
        if (has_prefix(url, *s) && n > strlen(*s))
            return 1;
    return 0;
}

/* A name segment list: [A-Za-z0-9_.-] and '/' between non-empty segments, no "..". */
static int name_ok(const char *s, int allow_star)
{
    if (allow_star && strcmp(s, "*") == 0)
        return 1;
    if (!*s || *s == '/' || strstr(s, "..") || strstr(s, "//"))
        return 0;
    size_t n = strlen(s);
    if (s[n - 1] == '/')
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == '/'))
            return 0;
    }
    return 1;
}

/* Copies [p, p+n) into out (cap); 0 or -1 when it does not fit. */
static int copy_field(char *out, size_t cap, const char *p, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* Parses "30s", "500ms", "2m" or plain seconds into ms; -1 when invalid. */
static int64_t parse_duration(const char *s)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 0 || v > 86400LL * 1000)
        return -1;
    if (!*end || strcmp(end, "s") == 0)
        return v * 1000;
    if (strcmp(end, "ms") == 0)
        return v;
    if (strcmp(end, "m") == 0)
        return v * 60000;
    return -1;
}

int sl_rs_spec_parse(const char *line, size_t len, int push, sl_rs_spec_t *out,
                     const char **why)
{
    char buf[SL_RS_LINE_MAX];
    if (len >= sizeof buf) {
        *why = "entry too long";
        return SL_EINVAL;
    }
    memcpy(buf, line, len);
    buf[len] = '\0';
    char *tok[8];
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
        if (n == 0 && t[0] == '#')
            return 1;
        if (n == (int)(sizeof tok / sizeof tok[0])) {
            *why = "too many fields";
            return SL_EINVAL;
        }
        tok[n++] = t;
    }
    if (n == 0)
        return 1;
    if (n < 2) {
        *why = "expected `app/stream url`";
        return SL_EINVAL;
    }
    sl_rs_spec_t s;
    memset(&s, 0, sizeof s);
    char *slash = strchr(tok[0], '/');
    if (!slash || copy_field(s.app, sizeof s.app, tok[0], (size_t)(slash - tok[0])) ||
        copy_field(s.stream, sizeof s.stream, slash + 1, strlen(slash + 1))) {
        *why = "the first field must be app/stream";
        return SL_EINVAL;
    }
    if (!name_ok(s.app, 0) || strchr(s.app, '/') || !name_ok(s.stream, push)) {
        *why = "unsafe app or stream name";
        return SL_EINVAL;
    }
    if (!sl_rs_url_ok(tok[1], push)) {
        *why = push ? "the url must be rtmp://, rtmps:// or srt://"
                    : "the url must be rtsp(s)://, rtmp(s)://, srt:// or http(s):// (HLS)";
        return SL_EINVAL;
    }
    snprintf(s.url, sizeof s.url, "%s", tok[1]);
    for (int i = 2; i < n; i++) {
        char *eq = strchr(tok[i], '=');
        if (push || !eq) {
            *why = push ? "a push entry takes no options" : "options are key=value";
            return SL_EINVAL;
        }
        *eq = '\0';
        const char *k = tok[i], *v = eq + 1;
        if (strcmp(k, "mode") == 0) {
            if (strcmp(v, "always") == 0)
                s.mode = SL_RS_ALWAYS;
            else if (strcmp(v, "on_demand") == 0)
                s.mode = SL_RS_ON_DEMAND;
            else {
                *why = "mode must be always or on_demand";
                return SL_EINVAL;
            }
        } else if (strcmp(k, "idle_timeout") == 0) {
            int64_t ms = parse_duration(v);
            if (ms < 1000) {
                *why = "idle_timeout must be a duration of at least 1s";
                return SL_EINVAL;
            }
            s.idle_timeout_ms = ms;
        } else if (strcmp(k, "standby") == 0) {
            if (!*v || copy_field(s.standby, sizeof s.standby, v, strlen(v))) {
                *why = "standby must be a file path";
                return SL_EINVAL;
            }
        } else if (strcmp(k, "rtsp_transport") == 0) {
            if (strcmp(v, "tcp") != 0 && strcmp(v, "udp") != 0) {
                *why = "rtsp_transport must be tcp or udp";
                return SL_EINVAL;
            }
            s.rtsp_udp = strcmp(v, "udp") == 0;
        } else {
            *why = "unknown option";
            return SL_EINVAL;
        }
    }
    *out = s;
    return 0;
}

int sl_rs_spec_each(const char *text, int push,
                    int (*each)(void *ud, const sl_rs_spec_t *spec, int line_no), void *ud,
                    const char **why, int *bad_line)
{
    if (!text)
        return 0;
    int line_no = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        line_no++;
        sl_rs_spec_t s;
        int rc = sl_rs_spec_parse(p, n, push, &s, why);
        if (rc < 0) {
            *bad_line = line_no;
            return rc;
        }
        if (rc == 0) {
            rc = each(ud, &s, line_no);
            if (rc)
                return rc;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}
