/*
 * Provision JSON (see abr_prov.h): jansson parses (it bounds nesting
 * itself; the size cap bounds everything else), then every field is
 * checked against the limits the stream manager side checks too.
 */
#include "modules/abr/abr_prov.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/core.h"
#include "sluice/errors.h"

static int fail(char *why, size_t cap, const char *fmt, ...)
{
    if (why && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return SL_EINVAL;
}

/* An integer field in [lo, hi]; 1 absent (when optional), 0 ok, -1 bad. */
static int get_int(json_t *o, const char *k, int64_t lo, int64_t hi, int optional, int64_t *v)
{
    json_t *j = json_object_get(o, k);
    if (!j)
        return optional ? 1 : -1;
    if (!json_is_integer(j))
        return -1;
    *v = json_integer_value(j);
    return *v >= lo && *v <= hi ? 0 : -1;
}

/* A GUID "app/name": safe, and the app part (before the last '/') copied into app. */
static int split_guid(const char *g, char *app, size_t cap)
{
    if (!g || !sl_name_is_safe(g, SL_ABR_PATH_MAX - 1))
        return -1;
    const char *slash = strrchr(g, '/');
    if (!slash || slash == g || !slash[1] || (size_t)(slash - g) >= cap)
        return -1;
    memcpy(app, g, (size_t)(slash - g));
    app[slash - g] = '\0';
    return 0;
}

static int by_level(const void *a, const void *b)
{
    return ((const sl_abr_level_t *)a)->level - ((const sl_abr_level_t *)b)->level;
}

int sl_abr_prov_parse(const char *json, size_t len, sl_abr_prov_t *out, char *why,
                      size_t why_cap)
{
    if (why && why_cap)
        why[0] = '\0';
    if (!json || !out)
        return SL_EINVAL;
    if (len > SL_ABR_JSON_MAX) {
        fail(why, why_cap, "A provision is at most %d bytes.", SL_ABR_JSON_MAX);
        return SL_ETOOBIG;
    }
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    int rc = SL_EINVAL;
    if (!json_is_object(root)) {
        fail(why, why_cap, "The provision must be a JSON object.");
        goto done;
    }
    const char *guid = json_string_value(json_object_get(root, "streamGuid"));
    if (split_guid(guid, out->app, sizeof out->app)) {
        fail(why, why_cap, "streamGuid must be \"app/name\" with safe names.");
        goto done;
    }
    snprintf(out->guid, sizeof out->guid, "%s", guid);
    json_t *tc = json_object_get(root, "transcode");
    if (tc && !json_is_boolean(tc)) {
        fail(why, why_cap, "transcode must be true or false.");
        goto done;
    }
    out->transcode = tc ? json_is_true(tc) : 1;
    json_t *arr = json_object_get(root, "streams");
    size_t n = json_array_size(arr);
    if (!json_is_array(arr) || n == 0 || n > SL_ABR_LEVELS_MAX) {
        fail(why, why_cap, "streams must be an array of 1 to %d variants.", SL_ABR_LEVELS_MAX);
        goto done;
    }
    unsigned seen = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        sl_abr_level_t *lv = &out->lv[i];
        char app[SL_ABR_PATH_MAX];
        const char *vg = json_string_value(json_object_get(v, "streamGuid"));
        if (!json_is_object(v) || split_guid(vg, app, sizeof app) || strcmp(app, out->app) != 0) {
            fail(why, why_cap, "streams[%zu].streamGuid must be \"%s/name\" with a safe name.", i,
                 out->app);
            goto done;
        }
        if (strcmp(vg, out->guid) == 0) {
            fail(why, why_cap, "streams[%zu].streamGuid must differ from the provision's.", i);
            goto done;
        }
        snprintf(lv->guid, sizeof lv->guid, "%s", vg);
        for (size_t k = 0; k < i; k++)
            if (strcmp(out->lv[k].guid, lv->guid) == 0) {
                fail(why, why_cap, "streams[%zu].streamGuid is listed twice.", i);
                goto done;
            }
        int64_t x = 0;
        if (get_int(v, "abrLevel", 1, SL_ABR_LEVELS_MAX, 0, &x) || (seen & (1u << x))) {
            fail(why, why_cap, "streams[%zu].abrLevel must be 1 to %d, each level once.", i,
                 SL_ABR_LEVELS_MAX);
            goto done;
        }
        seen |= 1u << x;
        lv->level = (int)x;
        json_t *vp = json_object_get(v, "videoParams");
        if (!json_is_object(vp)) {
            fail(why, why_cap, "streams[%zu].videoParams must be an object.", i);
            goto done;
        }
        if (get_int(vp, "videoWidth", 16, 4096, 0, &x) || (x & 1)) {
            fail(why, why_cap, "streams[%zu].videoParams.videoWidth must be even, 16 to 4096.", i);
            goto done;
        }
        lv->width = (uint32_t)x;
        if (get_int(vp, "videoHeight", 16, 4096, 0, &x) || (x & 1)) {
            fail(why, why_cap, "streams[%zu].videoParams.videoHeight must be even, 16 to 4096.", i);
            goto done;
        }
        lv->height = (uint32_t)x;
        if (get_int(vp, "videoBitRate", 32000, 50000000, 0, &x)) {
            fail(why, why_cap, "streams[%zu].videoParams.videoBitRate must be 32000 to 50000000.", i);
            goto done;
        }
        lv->bitrate = (uint32_t)x;
        int r = get_int(vp, "videoFPS", 1, 120, 1, &x);
        if (r < 0) {
            fail(why, why_cap, "streams[%zu].videoParams.videoFPS must be 1 to 120.", i);
            goto done;
        }
        lv->fps = r == 0 ? (uint32_t)x : 0;
    }
    if (!(seen & 2u)) {
        fail(why, why_cap, "A provision needs its abrLevel 1 variant (what the encoder publishes).");
        goto done;
    }
    out->n = n;
    qsort(out->lv, n, sizeof out->lv[0], by_level);
    rc = 0;
done:
    json_decref(root);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

json_t *sl_abr_prov_json(const sl_abr_prov_t *p)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < p->n; i++) {
        const sl_abr_level_t *l = &p->lv[i];
        json_t *vp = json_pack("{s:i, s:i, s:i}", "videoWidth", (int)l->width, "videoHeight",
                               (int)l->height, "videoBitRate", (json_int_t)l->bitrate);
        if (vp && l->fps)
            json_object_set_new(vp, "videoFPS", json_integer(l->fps));
        json_array_append_new(arr, json_pack("{s:s, s:i, s:o*}", "streamGuid", l->guid,
                                             "abrLevel", l->level, "videoParams", vp));
    }
    return arr ? json_pack("{s:s, s:b, s:o}", "streamGuid", p->guid, "transcode", p->transcode,
                           "streams", arr)
               : NULL;
}

const sl_abr_level_t *sl_abr_prov_level(const sl_abr_prov_t *p, const char *guid)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->lv[i].guid, guid) == 0)
            return &p->lv[i];
    return NULL;
}
