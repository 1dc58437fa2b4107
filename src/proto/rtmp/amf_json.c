/*
 * AMF <-> JSON conversion (see amf_json.h). Both directions go through a
 * jansson tree; recursion is bounded by max_depth, itself capped at
 * SL_AMF_DEPTH_CAP for the stack's sake.
 */
#include "proto/rtmp/amf_json.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "sluice/errors.h"

/* Jansson's own checks decide UTF-8: json_stringn and json_object_setn_new refuse invalid text. */
static int to_j(const sl_amf_t *v, int depth, json_t **out)
{
    json_t *j = NULL;
    *out = NULL;
    switch (v->type) {
    case SL_AMF_NUMBER:
    case SL_AMF_DATE: {
        double d = v->u.num;
        if (!isfinite(d))
            j = json_null(); /* NaN and infinities have no JSON form */
        else if (d == floor(d) && fabs(d) <= 9007199254740992.0)
            j = json_integer((json_int_t)d);
        else
            j = json_real(d);
        break;
    }
    case SL_AMF_BOOLEAN:
        j = json_boolean(v->u.boolean);
        break;
    case SL_AMF_STRING:
    case SL_AMF_XML:
        j = json_stringn(v->u.str.ptr, v->u.str.len);
        if (!j)
            return SL_EINVAL;
        break;
    case SL_AMF_NULL:
    case SL_AMF_UNDEFINED:
    case SL_AMF_BYTEARRAY:
        j = json_null();
        break;
    case SL_AMF_OBJECT:
    case SL_AMF_ECMA_ARRAY:
        if (depth <= 0)
            return SL_EDEPTH;
        if (!(j = json_object()))
            return SL_ENOMEM;
        for (uint32_t i = 0; i < v->u.obj.n; i++) {
            json_t *c;
            int rc = to_j(v->u.obj.props[i].val, depth - 1, &c);
            if (rc) {
                json_decref(j);
                return rc;
            }
            if (json_object_setn_new(j, v->u.obj.props[i].key, v->u.obj.props[i].key_len, c)) {
                json_decref(j);
                return SL_EINVAL; /* a key that is not UTF-8 (c was freed) */
            }
        }
        break;
    case SL_AMF_STRICT_ARRAY:
        if (depth <= 0)
            return SL_EDEPTH;
        if (!(j = json_array()))
            return SL_ENOMEM;
        for (uint32_t i = 0; i < v->u.arr.n; i++) {
            json_t *c;
            int rc = to_j(v->u.arr.items[i], depth - 1, &c);
            if (rc || json_array_append_new(j, c)) {
                json_decref(j);
                return rc ? rc : SL_ENOMEM;
            }
        }
        break;
    }
    if (!j)
        return SL_ENOMEM;
    *out = j;
    return 0;
}

static int cap_depth(int max_depth)
{
    return max_depth < 0 ? 0 : (max_depth > SL_AMF_DEPTH_CAP ? SL_AMF_DEPTH_CAP : max_depth);
}

/* Dumps j (stolen) into an sl_malloc'ed text of at most max_bytes. */
static int dump(json_t *j, size_t max_bytes, char **out)
{
    char *txt = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(j);
    if (!txt)
        return SL_ENOMEM;
    size_t len = strlen(txt);
    int rc = 0;
    if (len > max_bytes)
        rc = SL_ETOOBIG;
    else if (!(*out = sl_strndup(txt, len)))
        rc = SL_ENOMEM;
    free(txt); /* jansson's allocator */
    return rc;
}

int sl_amf_list_to_json(sl_amf_t *const *vals, size_t n, int max_depth, size_t max_bytes,
                        char **out)
{
    *out = NULL;
    int depth = cap_depth(max_depth);
    json_t *a = json_array();
    if (!a)
        return SL_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *c;
        int rc = to_j(vals[i], depth, &c);
        if (rc || json_array_append_new(a, c)) {
            json_decref(a);
            return rc ? rc : SL_ENOMEM;
        }
    }
    return dump(a, max_bytes, out);
}

int sl_amf_to_json(const sl_amf_t *v, int max_depth, size_t max_bytes, char **out)
{
    *out = NULL;
    json_t *j;
    int rc = v ? to_j(v, cap_depth(max_depth), &j) : ((j = json_null()) ? 0 : SL_ENOMEM);
    return rc ? rc : dump(j, max_bytes, out);
}

static int from_j(const json_t *j, int depth, sl_amf_t **out)
{
    sl_amf_t *v = NULL;
    *out = NULL;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        if (depth <= 0)
            return SL_EDEPTH;
        if (!(v = sl_amf_new_object()))
            return SL_ENOMEM;
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)j, k, c) {
            sl_amf_t *cv;
            int rc = from_j(c, depth - 1, &cv);
            if (!rc)
                rc = sl__amf_add_prop(v, k, strlen(k), cv); /* keys are unique in jansson */
            if (rc) {
                sl_amf_free(v);
                return rc;
            }
        }
        break;
    }
    case JSON_ARRAY: {
        if (depth <= 0)
            return SL_EDEPTH;
        if (!(v = sl_amf_new_strict_array()))
            return SL_ENOMEM;
        size_t i;
        json_t *c;
        json_array_foreach((json_t *)j, i, c) {
            sl_amf_t *cv;
            int rc = from_j(c, depth - 1, &cv);
            if (!rc)
                rc = sl_amf_push(v, cv);
            if (rc) {
                sl_amf_free(v);
                return rc;
            }
        }
        break;
    }
    case JSON_STRING:
        v = sl_amf_new_stringn(json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        v = sl_amf_new_number((double)json_integer_value(j));
        break;
    case JSON_REAL:
        v = sl_amf_new_number(json_real_value(j));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        v = sl_amf_new_bool(json_is_true(j));
        break;
    case JSON_NULL:
        v = sl_amf_new_null();
        break;
    }
    if (!v)
        return SL_ENOMEM;
    *out = v;
    return 0;
}

int sl_amf_from_jansson(const void *j, int max_depth, sl_amf_t **out)
{
    *out = NULL;
    return j ? from_j(j, cap_depth(max_depth), out) : SL_EINVAL;
}

int sl_amf_from_json(const char *json, size_t len, int max_depth, size_t max_bytes, sl_amf_t **out)
{
    *out = NULL;
    if (len > max_bytes)
        return SL_ETOOBIG;
    /* jansson's parser has its own depth limit (JSON_PARSER_MAX_DEPTH); ours is applied after. */
    json_t *j = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!j)
        return SL_EINVAL;
    int rc = from_j(j, cap_depth(max_depth), out);
    json_decref(j);
    return rc;
}
