/*
 * Red5's restreamer servlet body (see restream_servlet.h): JSON in, one
 * checked request out. The mapping onto pulls and pushes is documented in
 * docs/restream.md ("Red5's restreamer servlet"): push types take
 * parameters.url or host/port/application/streamName (srt-push: ip or
 * host, port, streamid); pull types take parameters.url, or for srt and
 * rtmp the same keys. The entry built here is parsed by sl_rs_spec_parse
 * so the servlet cannot make a pull or push the configuration could not.
 */
#include "modules/restream/restream_servlet.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "sluice/errors.h"

typedef struct sv_type {
    const char *name;
    int push;
    const char *schemes; /* space-separated, each ending in "://" */
    int builds;          /* 1: rtmp URL from host/port/application/streamName; 2: srt from ip/port */
} sv_type_t;

static const sv_type_t g_types[] = {
    {"rtmp-push", 1, "rtmp://", 1},
    {"rtmps-push", 1, "rtmps://", 1},
    {"srt-push", 1, "srt://", 2},
    {"srt-caller", 1, "srt://", 2}, /* Red5's SRT egress name */
    {"srt", 0, "srt://", 2},
    {"mpegts", 0, "srt:// http:// https://", 0},
    {"rtsp", 0, "rtsp:// rtsps://", 0},
    {"rtmp", 0, "rtmp:// rtmps://", 1},
    {"hls", 0, "http:// https://", 0},
};

/* A string field into out: 0, -1 absent (or JSON null), -2 not a string or too long. */
static int get_str(json_t *o, const char *k, char *out, size_t cap)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return -1;
    if (!json_is_string(v) || json_string_length(v) >= cap ||
        strlen(json_string_value(v)) != json_string_length(v))
        return -2;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* Text that can sit in an entry or a URL: no whitespace, control bytes or any of bad. */
static int clean(const char *s, const char *bad)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f || (bad && strchr(bad, *s)))
            return 0;
    return 1;
}

/* A port as an integer or a decimal string: 1..65535, or -1. */
static int get_port(json_t *o)
{
    json_t *v = json_object_get(o, "port");
    long long p = -1;
    if (json_is_integer(v)) {
        p = json_integer_value(v);
    } else if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 5) {
        p = 0;
        for (const char *s = json_string_value(v); *s; s++) {
            if (*s < '0' || *s > '9')
                return -1;
            p = p * 10 + (*s - '0');
        }
    }
    return p >= 1 && p <= 65535 ? (int)p : -1;
}

static int scheme_fits(const char *url, const char *schemes)
{
    const char *s = schemes;
    while (*s) {
        size_t n = strcspn(s, " ");
        if (strncmp(url, s, n) == 0)
            return 1;
        s += n;
        while (*s == ' ')
            s++;
    }
    return 0;
}

/* Builds the URL from parameters' parts for t (t->builds). 0 or SL_EINVAL with *why. */
static int build_url(json_t *p, const sv_type_t *t, const char *name, char *url, size_t cap,
                     const char **why)
{
    char host[256], app[SL_RS_NAME_MAX], sname[SL_RS_NAME_MAX], sid[512];
    int rc = get_str(p, "host", host, sizeof host);
    if (rc == -1)
        rc = get_str(p, "ip", host, sizeof host);
    if (rc) {
        *why = "parameters.url, or parameters.host (or ip) and port, are required";
        return SL_EINVAL;
    }
    if (!host[0] || !clean(host, "/?#@&\\\"'"))
        goto bad_host;
    int bracket = strchr(host, ':') && host[0] != '[';
    int port = get_port(p);
    int n;
    if (t->builds == 2) {
        if (port < 0) {
            *why = "parameters.port (1-65535) is required for SRT";
            return SL_EINVAL;
        }
        n = snprintf(url, cap, "srt://%s%s%s:%d", bracket ? "[" : "", host, bracket ? "]" : "", port);
        rc = get_str(p, "streamid", sid, sizeof sid);
        if (rc == -2 || (rc == 0 && !clean(sid, "&#\"'\\"))) {
            *why = "parameters.streamid must be a string without spaces, '&' or '#'";
            return SL_EINVAL;
        }
        if (!t->push)
            n += snprintf(url + n, cap - (size_t)n, "?mode=caller");
        if (rc == 0 && sid[0] && n < (int)cap)
            n += snprintf(url + n, cap - (size_t)n, "%sstreamid=%s", t->push ? "?" : "&", sid);
    } else {
        if (json_object_get(p, "port") && port < 0) {
            *why = "parameters.port must be 1-65535";
            return SL_EINVAL;
        }
        if (get_str(p, "application", app, sizeof app) || !app[0] ||
            !clean(app, "?#&\"'\\")) {
            *why = "parameters.application is required (a string without spaces)";
            return SL_EINVAL;
        }
        rc = get_str(p, "streamName", sname, sizeof sname);
        if (rc == -1)
            snprintf(sname, sizeof sname, "%s", name);
        if (rc == -2 || !sname[0] || !clean(sname, "/?#&\"'\\")) {
            *why = "parameters.streamName must be a stream name without spaces or '/'";
            return SL_EINVAL;
        }
        const char *scheme = strcmp(t->name, "rtmps-push") == 0 ? "rtmps" : "rtmp";
        if (port < 0)
            port = strcmp(scheme, "rtmps") == 0 ? 443 : 1935;
        n = snprintf(url, cap, "%s://%s%s%s:%d/%s/%s", scheme, bracket ? "[" : "", host,
                     bracket ? "]" : "", port, app, sname);
    }
    if (n < 0 || (size_t)n >= cap) {
        *why = "the URL built from parameters is too long";
        return SL_EINVAL;
    }
    return 0;
bad_host:
    *why = "parameters.host (or ip) must be a host name or address";
    return SL_EINVAL;
}

/* The create part: type, URL, options, then the entry through sl_rs_spec_parse. */
static int parse_create(json_t *p, sl_rs_sv_req_t *out, const char **why)
{
    const sv_type_t *t = NULL;
    for (size_t i = 0; i < sizeof g_types / sizeof g_types[0]; i++)
        if (strcmp(out->type, g_types[i].name) == 0)
            t = &g_types[i];
    if (!t) {
        *why = "parameters.type must be rtmp-push, rtmps-push, srt-push (srt-caller), srt, mpegts, "
               "rtsp, rtmp or hls";
        return SL_EINVAL;
    }
    out->push = t->push;
    if (!out->name[0]) {
        *why = "name (the stream) is required";
        return SL_EINVAL;
    }
    char url[SL_RS_URL_MAX];
    int rc = get_str(p, "url", url, sizeof url);
    if (rc == -1)
        rc = get_str(p, "rtmpUri", url, sizeof url); /* Red5's name for an rtmp-push's URL */
    if (rc == -2) {
        *why = "parameters.url (or rtmpUri) must be a string (at most 2047 bytes)";
        return SL_EINVAL;
    }
    if (rc == -1) {
        if (!t->builds) {
            *why = "parameters.url is required for this type";
            return SL_EINVAL;
        }
        if ((rc = build_url(p, t, out->name, url, sizeof url, why)))
            return rc;
    }
    if (!clean(url, NULL)) {
        *why = "parameters.url must not contain spaces";
        return SL_EINVAL;
    }
    if (!scheme_fits(url, t->schemes)) {
        *why = strcmp(t->name, "mpegts") == 0
                   ? "mpegts takes srt:// or http(s):// sources (no UDP ingest)"
                   : "the URL's scheme does not fit parameters.type";
        return SL_EINVAL;
    }
    char mode[32] = "", idle[32] = "", standby[SL_RS_PATH_MAX] = "", tr[8] = "";
    if (!t->push) {
        json_t *it = json_object_get(p, "idle_timeout");
        if (json_is_integer(it))
            snprintf(idle, sizeof idle, "%llds", (long long)json_integer_value(it));
        else if (get_str(p, "idle_timeout", idle, sizeof idle) == -2) {
            *why = "parameters.idle_timeout must be seconds or a duration string";
            return SL_EINVAL;
        }
        if (get_str(p, "mode", mode, sizeof mode) == -2 ||
            get_str(p, "standby", standby, sizeof standby) == -2 ||
            get_str(p, "rtsp_transport", tr, sizeof tr) == -2) {
            *why = "parameters.mode, standby and rtsp_transport must be short strings";
            return SL_EINVAL;
        }
        if (!clean(mode, NULL) || !clean(idle, NULL) || !clean(standby, NULL) ||
            !clean(tr, NULL)) {
            *why = "parameters must not contain spaces";
            return SL_EINVAL;
        }
    }
    char line[SL_RS_LINE_MAX];
    int n = snprintf(line, sizeof line, "%s/%s %s", out->context, out->name, url);
    if (mode[0] && n > 0 && n < (int)sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, " mode=%s", mode);
    if (idle[0] && n > 0 && n < (int)sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, " idle_timeout=%s", idle);
    if (standby[0] && n > 0 && n < (int)sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, " standby=%s", standby);
    if (tr[0] && n > 0 && n < (int)sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, " rtsp_transport=%s", tr);
    if (n < 0 || n >= (int)sizeof line) {
        *why = "the request is too long";
        return SL_EINVAL;
    }
    rc = sl_rs_spec_parse(line, (size_t)n, t->push, &out->spec, why);
    if (rc == 1) {
        *why = "empty entry";
        return SL_EINVAL;
    }
    return rc ? SL_EINVAL : 0;
}

/* The servlet body b (borrowed) into *out: 0 or SL_EINVAL with *why. */
static int parse_obj(json_t *b, const char *url_app, sl_rs_sv_req_t *out, const char **why)
{
    int rc = SL_EINVAL;
    if (!json_is_object(b)) {
        *why = "the body must be a JSON object";
        goto out;
    }
    char ctx[SL_RS_NAME_MAX + 1] = "";
    if (get_str(b, "guid", out->guid, sizeof out->guid) == -2 ||
        !clean(out->guid, "\"'\\?#&%")) {
        *why = "guid must be a string of at most 63 characters without spaces";
        goto out;
    }
    if (get_str(b, "context", ctx, sizeof ctx) == -2 ||
        get_str(b, "name", out->name, sizeof out->name) == -2) {
        *why = "context and name must be strings";
        goto out;
    }
    const char *c = ctx;
    while (*c == '/')
        c++;
    size_t cl = strlen(c);
    while (cl > 0 && c[cl - 1] == '/')
        cl--;
    if (cl == 0) {
        c = url_app ? url_app : "";
        cl = strlen(c);
    }
    if (cl == 0 || cl >= sizeof out->context) {
        *why = "context (the app) is required";
        goto out;
    }
    memcpy(out->context, c, cl);
    out->context[cl] = '\0';
    if (!clean(out->context, NULL) || !clean(out->name, "/")) {
        *why = "context and name must not contain spaces (name no '/')";
        goto out;
    }
    json_t *lv = json_object_get(b, "level");
    if (lv && !json_is_integer(lv) && !json_is_null(lv)) {
        *why = "level must be an integer";
        goto out;
    }
    json_t *p = json_object_get(b, "parameters");
    if (!json_is_object(p)) {
        *why = "parameters must be an object";
        goto out;
    }
    /* Red5: "list is also the default action if none is provided". */
    char action[16] = "list";
    if (get_str(p, "action", action, sizeof action) == -2) {
        *why = "parameters.action must be create, list, kill or update";
        goto out;
    }
    int tr = get_str(p, "type", out->type, sizeof out->type);
    if (tr == -2) {
        *why = "parameters.type must be a short string";
        goto out;
    }
    if (strcmp(action, "create") == 0) {
        out->action = SL_RS_SV_CREATE;
        if (tr) {
            *why = "parameters.type is required to create";
            goto out;
        }
        rc = parse_create(p, out, why);
        goto out;
    }
    if (strcmp(action, "list") == 0)
        out->action = SL_RS_SV_LIST;
    else if (strcmp(action, "kill") == 0)
        out->action = SL_RS_SV_KILL;
    else if (strcmp(action, "update") == 0)
        out->action = SL_RS_SV_UPDATE;
    else {
        *why = "parameters.action must be create, list, kill or update";
        goto out;
    }
    if (out->action == SL_RS_SV_KILL && !out->guid[0] && !out->name[0]) {
        *why = "kill needs guid, or context and name";
        goto out;
    }
    rc = 0;
out:
    return rc;
}

int sl_rs_servlet_parse(const char *body, size_t len, const char *url_app, sl_rs_sv_req_t *out,
                        const char **why)
{
    memset(out, 0, sizeof *out);
    if (len > SL_RS_SV_BODY_MAX) {
        *why = "the body is larger than 16 KB";
        return SL_ETOOBIG;
    }
    json_error_t je;
    json_t *b = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    int rc = parse_obj(b, url_app, out, why);
    json_decref(b);
    return rc;
}

/* ipcam: rtsp://{host}[:{port}]/{remoteContextPath}/{remoteStreamName} into p's "url". */
static int ipcam_url(json_t *p, const char **why)
{
    char host[256], ctx[SL_RS_NAME_MAX] = "", name[SL_RS_NAME_MAX] = "", url[SL_RS_URL_MAX];
    if (get_str(p, "host", host, sizeof host) && get_str(p, "ip", host, sizeof host)) {
        *why = "ipcam needs url, or host (or ip)";
        return SL_EINVAL;
    }
    if (!host[0] || !clean(host, "/?#@&\\\"'") ||
        get_str(p, "remoteContextPath", ctx, sizeof ctx) == -2 ||
        get_str(p, "remoteStreamName", name, sizeof name) == -2 || !clean(ctx, "?#&\"'\\") ||
        !clean(name, "?#&\"'\\")) {
        *why = "ipcam: host, remoteContextPath and remoteStreamName must be short strings "
               "without spaces";
        return SL_EINVAL;
    }
    int port = get_port(p);
    int bracket = strchr(host, ':') && host[0] != '[';
    char portpart[16] = "";
    if (port > 0)
        snprintf(portpart, sizeof portpart, ":%d", port);
    int n = snprintf(url, sizeof url, "rtsp://%s%s%s%s%s%s%s%s", bracket ? "[" : "", host,
                     bracket ? "]" : "", portpart, ctx[0] ? "/" : "", ctx, name[0] ? "/" : "",
                     name);
    if (n < 0 || (size_t)n >= sizeof url) {
        *why = "ipcam: the URL is too long";
        return SL_EINVAL;
    }
    json_object_set_new(p, "url", json_string(url));
    return 0;
}

int sl_rs_servlet_from_provision(const char *text, size_t len, sl_rs_sv_req_t *out,
                                 const char **why)
{
    memset(out, 0, sizeof *out);
    if (len > SL_RS_SV_BODY_MAX) {
        *why = "the provision is larger than 16 KB";
        return SL_ETOOBIG;
    }
    json_error_t je;
    json_t *pv = len ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    json_t *st = json_array_get(json_object_get(pv, "streams"), 0);
    json_t *props = json_object_get(json_object_get(st, "camParams"), "properties");
    const char *guid = json_string_value(json_object_get(pv, "provisionGuid"));
    const char *sg = json_string_value(json_object_get(st, "streamGuid"));
    const char *slash = sg ? strrchr(sg, '/') : NULL;
    int rc = SL_EINVAL;
    json_t *b = NULL;
    if (!guid || !slash || slash == sg || !json_is_object(props)) {
        *why = "a restreamer provision needs provisionGuid, streams[0].streamGuid app/name and "
               "camParams.properties";
        goto out;
    }
    json_t *p = json_deep_copy(props);
    b = json_pack("{s:s, s:s#, s:s, s:o}", "guid", guid, "context", sg, (int)(slash - sg), "name",
                  slash + 1, "parameters", p);
    if (!b) {
        *why = "out of memory";
        rc = SL_ENOMEM;
        goto out;
    }
    p = json_object_get(b, "parameters");
    /* Red5's SM 2.0 names onto the servlet's. */
    char type[SL_RS_TYPE_MAX] = "";
    if (get_str(p, "type", type, sizeof type) == -2)
        type[0] = '\0'; /* parse_obj says why */
    if (strcmp(type, "srt-caller") == 0)
        json_object_set_new(p, "type", json_string("srt-push"));
    if (!json_object_get(p, "url") && json_object_get(p, "rtmpUri"))
        json_object_set(p, "url", json_object_get(p, "rtmpUri"));
    if (strcmp(type, "ipcam") == 0) {
        json_object_set_new(p, "type", json_string("rtsp"));
        if (!json_object_get(p, "url") && (rc = ipcam_url(p, why)))
            goto out;
    }
    json_object_set_new(p, "action", json_string("create"));
    /* A stream's pull keeps reconnecting: numbers as Red5 writes them are not our options. */
    json_object_del(p, "idle_timeout");
    rc = parse_obj(b, NULL, out, why);
out:
    json_decref(b);
    json_decref(pv);
    return rc;
}
