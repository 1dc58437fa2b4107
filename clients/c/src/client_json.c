/*
 * JSON <-> AMF0 for sl_client_call: the caller writes a method's arguments
 * as a JSON array and reads its result as one, so the public API needs no
 * AMF types. jansson (a sluice_core dependency) parses and prints; the AMF
 * side is the server's encoder and value tree (src/proto/rtmp/amf.h).
 *
 * Mapping: JSON numbers -> AMF numbers (doubles); strings, booleans, null
 * as themselves; objects -> anonymous AMF objects (key order kept);
 * arrays -> strict arrays. Back: ECMA arrays and typed objects print as
 * JSON objects (the class name is dropped), dates as their number of ms,
 * undefined as null, XML and ByteArray as strings.
 */
#include <jansson.h>
#include <string.h>

#include "client_internal.h"
#include "sluice/errors.h"

#define JSON_MAX_DEPTH 32

/* One JSON value as AMF0, recursively (bounded by JSON_MAX_DEPTH). */
static int put_value(sl_wbuf_t *w, json_t *v, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return SL_EINVAL;
    switch (json_typeof(v)) {
    case JSON_NULL:
        return sl_amf0_put_null(w);
    case JSON_TRUE:
        return sl_amf0_put_bool(w, 1);
    case JSON_FALSE:
        return sl_amf0_put_bool(w, 0);
    case JSON_INTEGER:
    case JSON_REAL:
        return sl_amf0_put_number(w, json_number_value(v));
    case JSON_STRING:
        return sl_amf0_put_string(w, json_string_value(v));
    case JSON_OBJECT: {
        int rc = sl_amf0_put_object_start(w);
        const char *key;
        json_t *val;
        json_object_foreach(v, key, val) {
            rc = rc ? rc : sl_amf0_put_key(w, key);
            rc = rc ? rc : put_value(w, val, depth + 1);
        }
        return rc ? rc : sl_amf0_put_object_end(w);
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        int rc = sl_wbuf_put_u8(w, 0x0A); /* strict array */
        rc = rc ? rc : sl_wbuf_put_be32(w, (uint32_t)n);
        for (size_t i = 0; i < n && !rc; i++)
            rc = put_value(w, json_array_get(v, i), depth + 1);
        return rc;
    }
    }
    return SL_EINVAL;
}

/*
 * Arguments of a call: each element of the JSON array becomes one AMF0
 * value after the command's null object. json is borrowed; w receives the
 * bytes (on error it may hold a partial value: the caller discards it).
 */
int sl__json_args_to_amf0(const char *json, sl_wbuf_t *w)
{
    if (!json || !*json)
        return 0;
    json_error_t err;
    json_t *root = json_loads(json, JSON_DECODE_ANY, &err);
    if (!root || !json_is_array(root)) {
        json_decref(root);
        return SL_EINVAL;
    }
    int rc = 0;
    for (size_t i = 0; i < json_array_size(root) && !rc; i++)
        rc = put_value(w, json_array_get(root, i), 1);
    json_decref(root);
    return rc;
}

/*
 * Encodes one JSON value (any type, text borrowed) as one AMF0 value into
 * w. 0, SL_EINVAL (not JSON, NULL, or nesting deeper than 32), or a wbuf
 * error.
 */
int sl__json_value_to_amf0(const char *json, sl_wbuf_t *w)
{
    if (!json)
        return SL_EINVAL;
    json_error_t err;
    json_t *root = json_loads(json, JSON_DECODE_ANY, &err);
    if (!root)
        return SL_EINVAL;
    int rc = put_value(w, root, 1);
    json_decref(root);
    return rc;
}

/* A new JSON value for an AMF value, or NULL on ENOMEM. */
static json_t *to_json(const sl_amf_t *v)
{
    switch (v->type) {
    case SL_AMF_NUMBER:
    case SL_AMF_DATE:
        /* Whole numbers print as integers (AMF has only doubles). */
        if (v->u.num > -9007199254740992.0 && v->u.num < 9007199254740992.0 &&
            v->u.num == (double)(json_int_t)v->u.num)
            return json_integer((json_int_t)v->u.num);
        return json_real(v->u.num);
    case SL_AMF_BOOLEAN:
        return json_boolean(v->u.boolean);
    case SL_AMF_STRING:
    case SL_AMF_XML:
    case SL_AMF_BYTEARRAY:
        return json_stringn(v->u.str.ptr, v->u.str.len);
    case SL_AMF_NULL:
    case SL_AMF_UNDEFINED:
        return json_null();
    case SL_AMF_OBJECT:
    case SL_AMF_ECMA_ARRAY: {
        json_t *o = json_object();
        for (uint32_t i = 0; o && i < v->u.obj.n; i++) {
            json_t *x = to_json(v->u.obj.props[i].val);
            if (!x || json_object_set_new(o, v->u.obj.props[i].key, x)) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    case SL_AMF_STRICT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < v->u.arr.n; i++) {
            json_t *x = to_json(v->u.arr.items[i]);
            if (!x || json_array_append_new(a, x)) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    }
    return json_null();
}

/*
 * A result for the caller: the values after the transaction id as a JSON
 * array. vals are borrowed. The string comes from jansson's allocator (as
 * everywhere sluice prints JSON), so it is released with free().
 */
char *sl__amf_to_json(sl_amf_t *const *vals, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *x = to_json(vals[i]);
        if (!x || json_array_append_new(a, x)) {
            json_decref(a);
            return NULL;
        }
    }
    char *txt = a ? json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(a);
    return txt;
}

/*
 * Renders one value as JSON text (NULL v renders "null"). Returns a string
 * to release with free(), or NULL on ENOMEM.
 */
char *sl__amf_value_json(const sl_amf_t *v)
{
    json_t *x = v ? to_json(v) : json_null();
    char *txt = x ? json_dumps(x, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    json_decref(x);
    return txt;
}
