/*
 * Stream provisions (see sm_provision.h): validation to the canonical SM 2.0
 * shape shared with the abr module, and the SM 4.0 conversions. Everything
 * here is pure over jansson values; the HTTP routes that store them as
 * cluster settings are in sm_http.c.
 */
#include "cluster/streammanager/sm_provision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/str.h"
#include "sluice/errors.h"

#define DEPTH_MAX 16

static int fail(char *err, size_t cap, const char *msg)
{
    if (cap)
        snprintf(err, cap, "%s", msg);
    return SL_EINVAL;
}

/* "app[/room...]/name": segments of [A-Za-z0-9_.:-], no "." or "..", at least two. */
static int guid_ok(const char *g)
{
    size_t len = strlen(g);
    if (len < 3 || len >= SL_SM_PROV_GUID_MAX || g[0] == '/' || g[len - 1] == '/' ||
        !strchr(g, '/') || strstr(g, "//"))
        return 0;
    for (const char *p = g; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':' || c == '/'))
            return 0;
        if (c == '.' && (p == g || p[-1] == '/') &&
            (p[1] == '/' || !p[1] || (p[1] == '.' && (p[2] == '/' || !p[2]))))
            return 0;
    }
    return 1;
}

/* Length of the app part of a GUID (everything before the last '/'). */
static size_t app_len(const char *g)
{
    const char *s = strrchr(g, '/');
    return s ? (size_t)(s - g) : 0;
}

/* An integer value in [lo, hi] (or a digit string when strings is set) into *v: 1, else 0. */
static int int_in(const json_t *j, long long lo, long long hi, int strings, long long *v)
{
    if (json_is_integer(j)) {
        *v = json_integer_value(j);
    } else if (json_is_real(j) && json_real_value(j) > -1e15 && json_real_value(j) < 1e15 &&
               json_real_value(j) == (double)(long long)json_real_value(j)) {
        /* Range first: converting a double past long long's range is undefined. */
        *v = (long long)json_real_value(j);
    } else if (strings && json_is_string(j) && json_string_length(j) > 0 &&
               json_string_length(j) < 12) {
        char *end;
        *v = strtoll(json_string_value(j), &end, 10);
        if (*end)
            return 0;
    } else {
        return 0;
    }
    return *v >= lo && *v <= hi;
}

static int cmp_level(const void *a, const void *b)
{
    long long x = json_integer_value(json_object_get(*(json_t *const *)a, "abrLevel"));
    long long y = json_integer_value(json_object_get(*(json_t *const *)b, "abrLevel"));
    return (x > y) - (x < y);
}

/* One variant in canonical form into *out; 0 or SL_EINVAL with err. */
static int variant(const json_t *v, const char *pguid, int strings, json_t **out, char *err,
                   size_t cap)
{
    char msg[160];
    const char *g = json_string_value(json_object_get(v, "streamGuid"));
    if (!json_is_object(v) || !g || !guid_ok(g))
        return fail(err, cap, "each stream needs a streamGuid of the form app/name");
    if (app_len(g) != app_len(pguid) || memcmp(g, pguid, app_len(g)) != 0) {
        snprintf(msg, sizeof msg, "variant %.64s is not in the provision's app", g);
        return fail(err, cap, msg);
    }
    long long level, w, h, br, fps = 0;
    if (!int_in(json_object_get(v, "abrLevel"), 1, SL_SM_PROV_MAX_VARIANTS, strings, &level))
        return fail(err, cap, "abrLevel must be an integer from 1 to 8");
    const json_t *vp = json_object_get(v, "videoParams");
    if (!json_is_object(vp))
        return fail(err, cap, "each stream needs videoParams");
    if (!int_in(json_object_get(vp, "videoWidth"), 16, 4096, strings, &w) || (w & 1) ||
        !int_in(json_object_get(vp, "videoHeight"), 16, 4096, strings, &h) || (h & 1))
        return fail(err, cap, "videoWidth and videoHeight must be even, from 16 to 4096");
    if (!int_in(json_object_get(vp, "videoBitRate"), 32000, 50000000, strings, &br))
        return fail(err, cap, "videoBitRate must be from 32000 to 50000000");
    const json_t *f = json_object_get(vp, "videoFPS");
    if (f && !json_is_null(f) && !int_in(f, 1, 120, strings, &fps))
        return fail(err, cap, "videoFPS must be from 1 to 120");
    json_t *params = json_pack("{s:I, s:I, s:I}", "videoWidth", (json_int_t)w, "videoHeight",
                               (json_int_t)h, "videoBitRate", (json_int_t)br);
    if (params && fps)
        json_object_set_new(params, "videoFPS", json_integer(fps));
    *out = params ? json_pack("{s:s, s:I, s:o}", "streamGuid", g, "abrLevel", (json_int_t)level,
                              "videoParams", params)
                  : NULL;
    return *out ? 0 : fail(err, cap, "out of memory");
}

/* Hands a canonical provision out once its compact text fits SL_SM_PROV_MAX (o is
 * taken: freed on refusal). 0, or SL_EINVAL with err filled. */
static int canon_done(json_t *o, json_t **out, char *err, size_t cap)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    size_t len = text ? strlen(text) : 0;
    free(text);
    if (!text || len > SL_SM_PROV_MAX) {
        json_decref(o);
        return fail(err, cap, text ? "the provision is larger than 8 KiB" : "out of memory");
    }
    *out = o;
    return 0;
}

/* The shared part of canon and from_sm4: streams (already in 2.0 shape) for pguid. */
static int build(const char *pguid, const json_t *streams, const json_t *transcode, int strings,
                 json_t **out, char *err, size_t cap)
{
    if (!guid_ok(pguid))
        return fail(err, cap, "streamGuid must be app/name (letters, digits, _ . : -)");
    if (!json_is_array(streams) || json_array_size(streams) == 0)
        return fail(err, cap, "streams must be a non-empty array");
    if (json_array_size(streams) > SL_SM_PROV_MAX_VARIANTS)
        return fail(err, cap, "at most 8 streams per provision");
    if (transcode && !json_is_boolean(transcode))
        return fail(err, cap, "transcode must be true or false");
    json_t *arr = json_array();
    unsigned seen = 0;
    size_t i;
    json_t *v;
    json_array_foreach(streams, i, v) {
        json_t *c;
        int rc = variant(v, pguid, strings, &c, err, cap);
        if (rc) {
            json_decref(arr);
            return rc;
        }
        long long level = json_integer_value(json_object_get(c, "abrLevel"));
        const char *g = json_string_value(json_object_get(c, "streamGuid"));
        int dup = (seen >> level) & 1;
        size_t k;
        json_t *o;
        json_array_foreach(arr, k, o) dup |= strcmp(json_string_value(json_object_get(o, "streamGuid")), g) == 0;
        if (dup || strcmp(g, pguid) == 0) {
            json_decref(c);
            json_decref(arr);
            return fail(err, cap, "abrLevel and streamGuid must differ between streams and "
                                  "from the provision's");
        }
        seen |= 1u << level;
        json_array_append_new(arr, c);
    }
    /* Sorted by level: the array is at most 8 long. */
    json_t *sorted[SL_SM_PROV_MAX_VARIANTS];
    size_t n = json_array_size(arr);
    for (i = 0; i < n; i++)
        sorted[i] = json_incref(json_array_get(arr, i));
    qsort(sorted, n, sizeof sorted[0], cmp_level);
    json_array_clear(arr);
    for (i = 0; i < n; i++)
        json_array_append_new(arr, sorted[i]);
    json_t *o = json_pack("{s:s, s:o}", "streamGuid", pguid, "streams", arr);
    if (o && transcode)
        json_object_set_new(o, "transcode", json_boolean(json_is_true(transcode)));
    return canon_done(o, out, err, cap);
}

int sl_sm_prov_canon(const json_t *in, const char *guid, json_t **out, char *err, size_t cap)
{
    *out = NULL;
    if (!json_is_object(in))
        return fail(err, cap, "a provision must be a JSON object");
    const json_t *g = json_object_get(in, "streamGuid");
    if (!g)
        g = json_object_get(in, "provisionGuid");
    if (g && !json_is_string(g))
        return fail(err, cap, "streamGuid must be a string");
    const char *pguid = g ? json_string_value(g) : guid;
    if (!pguid)
        return fail(err, cap, "streamGuid is required");
    if (guid && strcmp(pguid, guid) != 0)
        return fail(err, cap, "the body's streamGuid differs from the URL's");
    return build(pguid, json_object_get(in, "streams"), json_object_get(in, "transcode"), 0, out,
                 err, cap);
}

int sl_sm_prov_from_sm4(const json_t *in, const char *app, const char *name, json_t **out,
                        char *err, size_t cap)
{
    *out = NULL;
    char pguid[SL_SM_PROV_GUID_MAX];
    if ((size_t)snprintf(pguid, sizeof pguid, "%s/%s", app, name) >= sizeof pguid)
        return fail(err, cap, "path too long");
    const json_t *meta = json_object_get(in, "meta");
    if (!json_is_object(meta))
        return fail(err, cap, "expected {\"meta\":{\"stream\":[...]}}");
    const json_t *st = json_object_get(meta, "stream");
    if (!json_is_array(st) || json_array_size(st) == 0)
        return fail(err, cap, "meta.stream must be a non-empty array");
    if (json_array_size(st) > SL_SM_PROV_MAX_VARIANTS)
        return fail(err, cap, "at most 8 streams per provision");
    json_t *streams = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(st, i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));
        const json_t *p = json_object_get(v, "properties");
        if (!json_is_object(v) || !n || !json_is_object(p)) {
            json_decref(streams);
            return fail(err, cap, "each meta.stream entry needs name and properties");
        }
        char g[SL_SM_PROV_GUID_MAX];
        int w = strchr(n, '/') ? snprintf(g, sizeof g, "%s", n)
                               : snprintf(g, sizeof g, "%s/%s", app, n);
        if (w < 0 || (size_t)w >= sizeof g) {
            json_decref(streams);
            return fail(err, cap, "variant name too long");
        }
        const json_t *br = json_object_get(p, "videoBR");
        if (!br)
            br = json_object_get(p, "videoBitRate");
        if (!br)
            br = json_object_get(v, "bandwidth");
        json_t *vp = json_object();
        const char *keys[] = {"videoWidth", "videoHeight", "videoFPS"};
        for (int k = 0; k < 3; k++)
            if (json_object_get(p, keys[k]))
                json_object_set(vp, keys[k], json_object_get(p, keys[k]));
        if (br)
            json_object_set(vp, "videoBitRate", (json_t *)br);
        json_t *lvl = json_object_get(v, "level");
        json_t *e = json_pack("{s:s, s:O?, s:o}", "streamGuid", g, "abrLevel", lvl, "videoParams",
                              vp);
        if (!e || json_array_append_new(streams, e)) {
            json_decref(streams);
            return fail(err, cap, "out of memory");
        }
    }
    int rc = build(pguid, streams, json_object_get(meta, "transcode"), 1, out, err, cap);
    json_decref(streams);
    return rc;
}

json_t *sl_sm_prov_to_sm4(const json_t *canon, long long updated_ms)
{
    const char *g = json_string_value(json_object_get(canon, "streamGuid"));
    const json_t *streams = json_object_get(canon, "streams");
    if (!g || !json_is_array(streams) || !app_len(g))
        return NULL;
    json_t *arr = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(streams, i, v) {
        const char *vg = json_string_value(json_object_get(v, "streamGuid"));
        const json_t *vp = json_object_get(v, "videoParams");
        if (!vg || !json_is_object(vp))
            continue;
        json_t *props = json_pack("{s:O, s:O, s:O}", "videoWidth", json_object_get(vp, "videoWidth"),
                                  "videoHeight", json_object_get(vp, "videoHeight"), "videoBR",
                                  json_object_get(vp, "videoBitRate"));
        if (props && json_object_get(vp, "videoFPS"))
            json_object_set(props, "videoFPS", json_object_get(vp, "videoFPS"));
        json_t *e = props ? json_pack("{s:s, s:O, s:O, s:o}", "name", vg + app_len(vg) + 1, "level",
                                      json_object_get(v, "abrLevel"), "bandwidth",
                                      json_object_get(vp, "videoBitRate"), "properties", props)
                          : NULL;
        if (!e) {
            json_decref(arr);
            return NULL;
        }
        json_array_append_new(arr, e);
    }
    json_t *meta = json_pack("{s:o}", "stream", arr);
    if (meta && json_object_get(canon, "transcode"))
        json_object_set(meta, "transcode", json_object_get(canon, "transcode"));
    char scope[SL_SM_PROV_GUID_MAX];
    snprintf(scope, sizeof scope, "%.*s", (int)app_len(g), g);
    return meta ? json_pack("{s:s, s:s, s:{s:o}, s:I}", "name", g + app_len(g) + 1, "scope", scope,
                            "data", "meta", meta, "updated", (json_int_t)updated_ms)
                : NULL;
}

json_t *sl_sm_prov_parse(const char *text, size_t len)
{
    if (!text || len == 0 || len > SL_SM_PROV_BODY_MAX)
        return NULL;
    /* jansson's own nesting cap is 2048: ours is far lower (no honest body nests deeper). */
    if (!sl_json_depth_ok(text, len, DEPTH_MAX))
        return NULL;
    return json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
}

int sl_sm_prov_level1(const char *canon_text, char *out, size_t cap)
{
    json_t *j = canon_text ? sl_sm_prov_parse(canon_text, strlen(canon_text)) : NULL;
    size_t i;
    json_t *v;
    int rc = SL_EINVAL;
    json_array_foreach(json_object_get(j, "streams"), i, v) {
        const char *g = json_string_value(json_object_get(v, "streamGuid"));
        if (g && json_integer_value(json_object_get(v, "abrLevel")) == 1 && strlen(g) < cap) {
            memcpy(out, g, strlen(g) + 1);
            rc = 0;
            break;
        }
    }
    json_decref(j);
    return rc;
}

/* ------------------------------------------------------------------ */
/* restreamer provisions (camParams)                                   */

/* Red5's restreamer types sluice carries out, and what each needs besides a URL. */
enum { NEED_URL = 0, NEED_HOST_PORT = 1, NEED_HOST_APP = 2, NEED_HOST = 3 };
static const struct {
    const char *name;
    int need;      /* without url: what builds it */
} g_rs_types[] = {
    {"srt", NEED_HOST_PORT},        {"srt-caller", NEED_HOST_PORT}, {"srt-push", NEED_HOST_PORT},
    {"rtsp", NEED_URL},             {"ipcam", NEED_HOST},           {"rtmp", NEED_HOST_APP},
    {"rtmp-push", NEED_HOST_APP},   {"rtmps-push", NEED_HOST_APP},  {"mpegts", NEED_URL},
    {"hls", NEED_URL},
};

int sl_sm_prov_is_restream(const json_t *in)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(in, "streams"), i, v) {
        if (json_object_get(v, "camParams"))
            return 1;
    }
    return 0;
}

/* provisionGuid: 3..63 of [A-Za-z0-9_.-] (Red5's rule), not "." or "..". */
static int pguid_ok(const char *g)
{
    size_t len = strlen(g);
    if (len < 3 || len >= SL_SM_RS_GUID_MAX || strcmp(g, "..") == 0)
        return 0;
    for (const char *p = g; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return 0;
    return 1;
}

/* A property's string value, or NULL when absent, empty or not a string. */
static const char *prop_str(const json_t *props, const char *k)
{
    const char *s = json_string_value(json_object_get(props, k));
    return s && s[0] ? s : NULL;
}

/* A wildcard address (0.0.0.0, ::, [::], *): where a listener binds, not a source to call. */
static int wildcard(const char *h)
{
    return strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 || strcmp(h, "[::]") == 0 ||
           strcmp(h, "*") == 0;
}

/* Checks the properties for type and copies them into *out. 0 or SL_EINVAL with err. */
static int rs_props(const json_t *p, json_t **out, char *err, size_t cap)
{
    char msg[200];
    if (!json_is_object(p))
        return fail(err, cap, "camParams.properties must be an object");
    if (json_object_size(p) > SL_SM_RS_MAX_PROPS)
        return fail(err, cap, "camParams.properties has more than 32 members");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)p, k, v) {
        size_t kl = strlen(k);
        int ok = kl > 0 && kl < 64;
        for (size_t i = 0; ok && i < kl; i++)
            ok = (k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
                 (k[i] >= '0' && k[i] <= '9') || k[i] == '_' || k[i] == '.' || k[i] == '-';
        if (!ok)
            return fail(err, cap, "camParams.properties keys must be 1 to 63 of A-Z a-z 0-9 _ . -");
        if (json_is_string(v) && (json_string_length(v) > 2047 ||
                                  strlen(json_string_value(v)) != json_string_length(v))) {
            snprintf(msg, sizeof msg, "camParams.properties.%.63s is longer than 2047 bytes", k);
            return fail(err, cap, msg);
        }
        if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v) && !json_is_null(v)) {
            snprintf(msg, sizeof msg,
                     "camParams.properties.%.63s must be a string, a number or a boolean", k);
            return fail(err, cap, msg);
        }
    }
    const json_t *a = json_object_get(p, "action");
    if (a && !(json_is_string(a) && strcmp(json_string_value(a), "create") == 0))
        return fail(err, cap, "camParams.properties.action must be \"create\"");
    const char *type = prop_str(p, "type");
    if (!type)
        return fail(err, cap, "camParams.properties.type is required (srt, srt-caller, "
                              "srt-push, rtsp, ipcam, rtmp, rtmp-push, rtmps-push, mpegts, hls)");
    int need = -1;
    for (size_t i = 0; i < sizeof g_rs_types / sizeof g_rs_types[0]; i++)
        if (strcmp(type, g_rs_types[i].name) == 0)
            need = g_rs_types[i].need;
    if (need < 0) {
        snprintf(msg, sizeof msg,
                 "camParams.properties.type %.32s is not served: use srt, srt-caller, srt-push, "
                 "rtsp, ipcam, rtmp, rtmp-push, rtmps-push, mpegts or hls",
                 type);
        return fail(err, cap, msg);
    }
    const char *url = prop_str(p, "url");
    if (!url)
        url = prop_str(p, "rtmpUri");
    const char *host = prop_str(p, "ip");
    if (!host)
        host = prop_str(p, "host");
    long long port = -1;
    const json_t *pj = json_object_get(p, "port");
    if (pj && !int_in(pj, 1, 65535, 1, &port))
        return fail(err, cap, "camParams.properties.port must be 1 to 65535");
    if (!url) {
        if (need == NEED_URL) {
            snprintf(msg, sizeof msg, "camParams.properties.url is required for type %s", type);
            return fail(err, cap, msg);
        }
        if (!host) {
            snprintf(msg, sizeof msg,
                     "camParams.properties needs url, or ip (or host)%s, for type %s",
                     need == NEED_HOST_PORT ? " and port" : "", type);
            return fail(err, cap, msg);
        }
        if (need == NEED_HOST_PORT && port < 0)
            return fail(err, cap, "camParams.properties.port is required for SRT");
        if (need == NEED_HOST_APP && !prop_str(p, "application"))
            return fail(err, cap, "camParams.properties.application is required to build the "
                                  "rtmp URL (or give url / rtmpUri)");
        if (strcmp(type, "srt") == 0 && wildcard(host))
            return fail(err, cap,
                        "sluice's srt ingest calls the source (an SRT listener at ip:port); "
                        "ip 0.0.0.0 asks the node to listen: publish to the node's SRT port "
                        "instead (streamid publish:app/stream)");
    }
    *out = json_deep_copy(p);
    if (!*out)
        return fail(err, cap, "out of memory");
    if (!a)
        json_object_set_new(*out, "action", json_string("create"));
    return 0;
}

int sl_sm_prov_restream_canon(const json_t *in, const char *guid, json_t **out, char *err,
                              size_t cap)
{
    *out = NULL;
    if (!json_is_object(in))
        return fail(err, cap, "a provision must be a JSON object");
    const json_t *gj = json_object_get(in, "provisionGuid");
    if (gj && !json_is_string(gj))
        return fail(err, cap, "provisionGuid must be a string");
    const char *pguid = gj ? json_string_value(gj) : guid;
    if (!pguid)
        return fail(err, cap, "provisionGuid is required for a restreamer provision");
    if (!pguid_ok(pguid))
        return fail(err, cap, "provisionGuid must be 3 to 63 of A-Z a-z 0-9 _ . -");
    if (guid && strcmp(pguid, guid) != 0)
        return fail(err, cap, "the body's provisionGuid differs from the URL's");
    const json_t *streams = json_object_get(in, "streams");
    if (!json_is_array(streams) || json_array_size(streams) != 1)
        return fail(err, cap, "a restreamer provision has exactly one stream");
    const json_t *s = json_array_get(streams, 0);
    const char *sg = json_string_value(json_object_get(s, "streamGuid"));
    if (!json_is_object(s) || !sg || !guid_ok(sg))
        return fail(err, cap, "the stream needs a streamGuid of the form app/name");
    const json_t *lv = json_object_get(s, "abrLevel");
    long long level = 0;
    if (lv && !json_is_null(lv) && !(int_in(lv, 0, 0, 1, &level)))
        return fail(err, cap, "a restreamer stream's abrLevel is 0");
    if (json_object_get(s, "videoParams"))
        return fail(err, cap, "a stream has camParams or videoParams, not both");
    const json_t *cp = json_object_get(s, "camParams");
    if (!json_is_object(cp))
        return fail(err, cap, "camParams must be an object with properties");
    json_t *props;
    int rc = rs_props(json_object_get(cp, "properties"), &props, err, cap);
    if (rc)
        return rc;
    json_t *o = json_pack("{s:s, s:[{s:s, s:i, s:{s:o}}]}", "provisionGuid", pguid, "streams",
                          "streamGuid", sg, "abrLevel", 0, "camParams", "properties", props);
    const json_t *caps = json_object_get(in, "capabilities");
    if (o && caps && !json_is_null(caps)) {
        size_t i;
        json_t *c;
        int ok = json_is_array(caps) && json_array_size(caps) <= 8;
        json_array_foreach(caps, i, c) {
            const char *cs = json_string_value(c);
            ok = ok && cs && (strcmp(cs, "PUBLISH") == 0 || strcmp(cs, "SUBSCRIBE") == 0 ||
                              strcmp(cs, "TRANSCODE") == 0 || strcmp(cs, "MIX") == 0 ||
                              strcmp(cs, "ZIXI") == 0 || strcmp(cs, "XILINX") == 0);
        }
        if (!ok) {
            json_decref(o);
            return fail(err, cap, "capabilities must be an array of PUBLISH, SUBSCRIBE, "
                                  "TRANSCODE, MIX, ZIXI, XILINX");
        }
        json_object_set(o, "capabilities", (json_t *)caps);
    }
    return canon_done(o, out, err, cap);
}

/* The mask of one capability name (n bytes), or -1. */
static int cap_bit(const char *s, size_t n)
{
    static const struct { const char *name; int bit; } caps[] = {
        {"PUBLISH", SL_SM_CAP_PUBLISH}, {"SUBSCRIBE", SL_SM_CAP_SUBSCRIBE},
        {"TRANSCODE", SL_SM_CAP_TRANSCODE}, {"MIX", SL_SM_CAP_OTHER},
        {"ZIXI", SL_SM_CAP_OTHER}, {"XILINX", SL_SM_CAP_OTHER},
    };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        if (strlen(caps[i].name) == n && memcmp(caps[i].name, s, n) == 0)
            return caps[i].bit;
    return -1;
}

int sl_sm_prov_caps(const json_t *canon, const char *api)
{
    int mask = 0;
    if (api && api[0]) {
        if (strlen(api) > 128)
            return -1;
        for (const char *p = api; *p;) {
            size_t n = strcspn(p, ",");
            int b = n ? cap_bit(p, n) : -1;
            if (b < 0)
                return -1;
            mask |= b;
            p += n;
            if (*p == ',')
                p++;
        }
        return mask;
    }
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(canon, "capabilities"), i, c) {
        const char *s = json_string_value(c);
        int b = s ? cap_bit(s, strlen(s)) : -1;
        if (b > 0)
            mask |= b;
    }
    if (mask)
        return mask;
    return sl_sm_prov_is_restream(canon) ? SL_SM_CAP_PUBLISH : SL_SM_CAP_TRANSCODE;
}
