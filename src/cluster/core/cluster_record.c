/*
 * Node records and bus messages as JSON (see cluster_record.h). Writing
 * uses jansson's builder; parsing checks the size before jansson sees a
 * byte, then reads each field with a typed getter that refuses what does
 * not fit the C struct (lengths against the fixed buffers, integers
 * against their ranges), so that a record written by a hostile or buggy
 * peer is refused whole rather than half-applied.
 */
#include "cluster/core/cluster_record.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app/core.h"
#include "base/alloc.h"
#include "sluice/errors.h"

int sl_cluster_id_is_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= SL_CLUSTER_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* A printable single-line name (role, group, region, state, host): no control bytes. */
static int plain(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

char *sl_cluster_record_write(const sl_cluster_node_t *n, const sl_cluster_rec_presence_t *p,
                              size_t n_p)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", n->id, "role", n->role,
                          "group", n->group, "region", n->region, "state", n->state, "host",
                          n->host, "private_host", n->private_host);
    if (!o)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(o, "ports", json_pack("{s:i, s:i, s:i, s:i}", "rtmp", n->rtmp_port,
                                                     "http", n->http_port, "rtsp", n->rtsp_port,
                                                     "srt", n->srt_port));
    bad |= json_object_set_new(o, "started", json_integer((json_int_t)n->started_ms));
    bad |= json_object_set_new(o, "reported", json_integer((json_int_t)n->reported_ms));
    bad |= json_object_set_new(
        o, "load",
        json_pack("{s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I}", "connections",
                  (json_int_t)n->connections, "publishers", (json_int_t)n->publishers,
                  "subscribers", (json_int_t)n->subscribers, "streams", (json_int_t)n->streams,
                  "cpu", n->cpu_load, "mem", n->mem_load, "bytes_in_rate",
                  (json_int_t)n->bytes_in_rate, "bytes_out_rate", (json_int_t)n->bytes_out_rate,
                  "max_connections", (json_int_t)n->max_connections));
    json_t *a = json_array();
    bad |= json_object_set_new(o, "streams", a);
    for (size_t i = 0; a && i < n_p && i < SL_CLUSTER_PRESENCES_MAX; i++)
        bad |= json_array_append_new(
            a, json_pack("{s:s, s:b, s:I, s:I}", "path", p[i].path, "origin", p[i].is_origin,
                         "subscribers", (json_int_t)p[i].subscribers, "started",
                         (json_int_t)p[i].started_ms));
    char *txt = bad ? NULL : json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!txt)
        return NULL;
    char *out = sl_strdup(txt);
    free(txt); /* jansson allocates with malloc */
    return out;
}

/* Copies string field key of o into dst (cap bytes). Missing: "" when optional, else error. */
static int get_str(json_t *o, const char *key, char *dst, size_t cap, int optional)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        dst[0] = '\0';
        return optional ? 0 : SL_EINVAL;
    }
    const char *s = json_string_value(v);
    if (!s || json_string_length(v) >= cap || strlen(s) != json_string_length(v) || !plain(s))
        return SL_EINVAL;
    memcpy(dst, s, json_string_length(v) + 1);
    return 0;
}

/* An integer field in [0, max]; missing = 0. */
static int get_uint(json_t *o, const char *key, uint64_t max, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return SL_EINVAL;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* A percentage field (number in [0, 100]; a little over is clamped); missing = 0. */
static int get_pct(json_t *o, const char *key, double *out)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (!v)
        return 0;
    if (!json_is_number(v))
        return SL_EINVAL;
    double d = json_number_value(v);
    if (!isfinite(d) || d < 0 || d > 1000)
        return SL_EINVAL;
    *out = d > 100 ? 100 : d;
    return 0;
}

void sl_cluster_presences_free(sl_cluster_rec_presence_t *p, size_t n_p)
{
    for (size_t i = 0; p && i < n_p; i++)
        sl_free(p[i].path);
    sl_free(p);
}

static int parse_presences(json_t *a, sl_cluster_rec_presence_t **p, size_t *n_p)
{
    *p = NULL;
    *n_p = 0;
    if (!a)
        return 0;
    if (!json_is_array(a))
        return SL_EINVAL;
    size_t n = json_array_size(a);
    if (n > SL_CLUSTER_PRESENCES_MAX)
        n = SL_CLUSTER_PRESENCES_MAX;
    if (n == 0)
        return 0;
    sl_cluster_rec_presence_t *v = sl_calloc(n, sizeof *v);
    if (!v)
        return SL_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(a, i);
        const char *path = json_string_value(json_object_get(e, "path"));
        uint64_t subs, started;
        if (!json_is_object(e) || !path || strlen(path) >= SL_CLUSTER_PATH_MAX ||
            !sl_name_is_safe(path, SL_CLUSTER_PATH_MAX - 1) ||
            get_uint(e, "subscribers", UINT32_MAX, &subs) ||
            get_uint(e, "started", UINT64_MAX >> 1, &started))
            continue; /* one bad entry does not hide the node */
        v[k].path = sl_strdup(path);
        if (!v[k].path) {
            sl_cluster_presences_free(v, k);
            return SL_ENOMEM;
        }
        v[k].is_origin = json_is_true(json_object_get(e, "origin"));
        v[k].subscribers = (uint32_t)subs;
        v[k].started_ms = started;
        k++;
    }
    if (k == 0) {
        sl_free(v);
        return 0;
    }
    *p = v;
    *n_p = k;
    return 0;
}

int sl_cluster_record_parse(const char *txt, size_t len, sl_cluster_node_t *out,
                            sl_cluster_rec_presence_t **p, size_t *n_p)
{
    if (p)
        *p = NULL;
    if (n_p)
        *n_p = 0;
    if (!txt || len > SL_CLUSTER_RECORD_MAX)
        return SL_ETOOBIG;
    json_t *o = json_loadb(txt, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return SL_EINVAL;
    }
    memset(out, 0, sizeof *out);
    int rc = SL_EINVAL;
    uint64_t v;
    if (get_str(o, "id", out->id, sizeof out->id, 0) || !sl_cluster_id_is_valid(out->id) ||
        get_str(o, "role", out->role, sizeof out->role, 0) ||
        get_str(o, "group", out->group, sizeof out->group, 1) ||
        get_str(o, "region", out->region, sizeof out->region, 1) ||
        get_str(o, "state", out->state, sizeof out->state, 1) ||
        get_str(o, "host", out->host, sizeof out->host, 1) ||
        get_str(o, "private_host", out->private_host, sizeof out->private_host, 1))
        goto fail;
    json_t *ports = json_object_get(o, "ports");
    if (ports) {
        if (!json_is_object(ports))
            goto fail;
        if (get_uint(ports, "rtmp", 65535, &v))
            goto fail;
        out->rtmp_port = (uint16_t)v;
        if (get_uint(ports, "http", 65535, &v))
            goto fail;
        out->http_port = (uint16_t)v;
        if (get_uint(ports, "rtsp", 65535, &v))
            goto fail;
        out->rtsp_port = (uint16_t)v;
        if (get_uint(ports, "srt", 65535, &v))
            goto fail;
        out->srt_port = (uint16_t)v;
    }
    if (get_uint(o, "started", UINT64_MAX >> 1, &out->started_ms) ||
        get_uint(o, "reported", UINT64_MAX >> 1, &out->reported_ms))
        goto fail;
    json_t *load = json_object_get(o, "load");
    if (load) {
        if (!json_is_object(load))
            goto fail;
#define U32(k, f)                                       \
    do {                                                \
        if (get_uint(load, k, UINT32_MAX, &v))          \
            goto fail;                                  \
        out->f = (uint32_t)v;                           \
    } while (0)
        U32("connections", connections);
        U32("publishers", publishers);
        U32("subscribers", subscribers);
        U32("streams", streams);
        U32("max_connections", max_connections);
#undef U32
        if (get_pct(load, "cpu", &out->cpu_load) || get_pct(load, "mem", &out->mem_load) ||
            get_uint(load, "bytes_in_rate", UINT64_MAX >> 1, &out->bytes_in_rate) ||
            get_uint(load, "bytes_out_rate", UINT64_MAX >> 1, &out->bytes_out_rate))
            goto fail;
    }
    if (!out->state[0])
        snprintf(out->state, sizeof out->state, "INSERVICE");
    if (p && n_p) {
        rc = parse_presences(json_object_get(o, "streams"), p, n_p);
        if (rc)
            goto fail;
    }
    rc = 0;
fail:
    json_decref(o);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

char *sl_cluster_msg_write(const char *from, const char *to, const char *topic, const char *json)
{
    if (!sl_cluster_id_is_valid(from) || (to && to[0] && !sl_cluster_id_is_valid(to)) || !topic ||
        !topic[0] || strlen(topic) >= SL_CLUSTER_TOPIC_MAX || !plain(topic))
        return NULL;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "from", from, "to", to ? to : "", "topic",
                          topic, "json", json ? json : "{}");
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!txt)
        return NULL;
    char *out = NULL;
    if (strlen(txt) <= SL_CLUSTER_MSG_MAX)
        out = sl_strdup(txt);
    free(txt);
    return out;
}

int sl_cluster_msg_parse(const char *txt, size_t len, sl_cluster_msg_t *out)
{
    memset(out, 0, sizeof *out);
    if (!txt || len > SL_CLUSTER_MSG_MAX)
        return SL_ETOOBIG;
    json_t *o = json_loadb(txt, len, JSON_REJECT_DUPLICATES, NULL);
    int rc = SL_EINVAL;
    json_t *payload = NULL;
    if (!json_is_object(o) || get_str(o, "from", out->from, sizeof out->from, 0) ||
        !sl_cluster_id_is_valid(out->from) || get_str(o, "to", out->to, sizeof out->to, 1) ||
        (out->to[0] && !sl_cluster_id_is_valid(out->to)) ||
        get_str(o, "topic", out->topic, sizeof out->topic, 0) || !out->topic[0])
        goto fail;
    json_t *j = json_object_get(o, "json");
    const char *js = json_string_value(j);
    if (!js || strlen(js) != json_string_length(j))
        goto fail;
    /* The payload must be JSON itself: listeners parse it without checking again. */
    payload = json_loads(js, JSON_DECODE_ANY, NULL);
    if (!payload)
        goto fail;
    out->json = sl_strdup(js);
    rc = out->json ? 0 : SL_ENOMEM;
fail:
    json_decref(payload);
    json_decref(o);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}
