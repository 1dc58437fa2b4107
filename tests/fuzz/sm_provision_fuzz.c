/*
 * libFuzzer target for the stream manager's provision parsers
 * (src/cluster/streammanager/sm_provision.c): any input is parsed under the
 * body cap and depth cap, then validated as an SM 2.0 ProvisionRequest and
 * as an SM 4.0 meta body. Whatever is accepted must be a fixed point: its
 * canonical form validates again to itself, its SM 4.0 answer converts back
 * to it, and its level-1 variant is found. The same input as a restreamer
 * provision (camParams): what is accepted is a fixed point too, and its
 * capabilities resolve. Seeds: tests/fuzz/corpus/sm_provision/.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/streammanager/sm_provision.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fixed_point(json_t *canon)
{
    char err[200];
    json_t *again = NULL;
    if (sl_sm_prov_canon(canon, NULL, &again, err, sizeof err) != 0 || !json_equal(again, canon))
        abort();
    json_decref(again);
    char *text = json_dumps(canon, JSON_COMPACT);
    if (!text || strlen(text) > SL_SM_PROV_MAX)
        abort();
    char l1[SL_SM_PROV_GUID_MAX];
    int has1 = sl_sm_prov_level1(text, l1, sizeof l1) == 0;
    free(text);
    json_t *sm4 = sl_sm_prov_to_sm4(canon, 1);
    if (!sm4)
        abort();
    const char *g = json_string_value(json_object_get(canon, "streamGuid"));
    const char *slash = strrchr(g, '/');
    char app[SL_SM_PROV_GUID_MAX];
    memcpy(app, g, (size_t)(slash - g));
    app[slash - g] = '\0';
    json_t *body = json_pack("{s:O}", "meta", json_object_get(json_object_get(sm4, "data"), "meta"));
    json_t *back = NULL;
    if (sl_sm_prov_from_sm4(body, app, slash + 1, &back, err, sizeof err) != 0 ||
        !json_equal(back, canon))
        abort();
    /* Level 1 is present exactly when some variant has abrLevel 1. */
    size_t i;
    json_t *v;
    int want1 = 0;
    json_array_foreach(json_object_get(canon, "streams"), i, v) want1 |=
        json_integer_value(json_object_get(v, "abrLevel")) == 1;
    if (want1 != has1)
        abort();
    json_decref(back);
    json_decref(body);
    json_decref(sm4);
}

/* Entry point called by libFuzzer (or the replayer) once per input; always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = sl_sm_prov_parse((const char *)data, size);
    if (!j)
        return 0;
    char err[200];
    json_t *canon = NULL;
    json_t *one = json_is_array(j) ? json_array_get(j, 0) : j;
    if (sl_sm_prov_canon(one, NULL, &canon, err, sizeof err) == 0) {
        check_fixed_point(canon);
        json_decref(canon);
    }
    if (sl_sm_prov_restream_canon(one, NULL, &canon, err, sizeof err) == 0) {
        json_t *again = NULL;
        char *text = json_dumps(canon, JSON_COMPACT);
        if (!text || strlen(text) > SL_SM_PROV_MAX || !sl_sm_prov_is_restream(canon) ||
            sl_sm_prov_restream_canon(canon, NULL, &again, err, sizeof err) != 0 ||
            !json_equal(again, canon) || sl_sm_prov_caps(canon, NULL) <= 0)
            abort();
        free(text);
        json_decref(again);
        json_decref(canon);
    } else if (!err[0]) {
        abort();
    }
    /* The input's last bytes as an API capabilities list. */
    char api[17];
    size_t an = size < 16 ? size : 16;
    memcpy(api, data + size - an, an);
    api[an] = '\0';
    if (sl_sm_prov_caps(one, api) == 0)
        abort();
    if (sl_sm_prov_from_sm4(j, "live", "fz", &canon, err, sizeof err) == 0) {
        check_fixed_point(canon);
        json_decref(canon);
    }
    json_decref(j);
    return 0;
}
