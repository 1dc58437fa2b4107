/*
 * AMF0 codec and the value tree (sl_amf_t) shared with AMF3 (amf3.c).
 *
 * RTMP commands ("connect", "publish", onMetaData, ...) arrive as AMF0
 * values; the RTMP layer decodes a message body with sl_amf0_decode_all()
 * into small trees and the command handlers read them with sl_amf_get() and
 * friends. Replies go out through the streaming puts at the bottom, which
 * write exact wire bytes into a capped sl_wbuf_t. Nothing here is on the
 * media hot path, so clarity wins over speed, but every input-driven size
 * is checked against the bytes actually present before anything is
 * allocated, every nesting is bounded by max_depth, and what references may
 * copy is bounded by a budget (see amf.h for the decisions and their why).
 */
#include "proto/rtmp/amf.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "sluice/errors.h"

/* AMF0 markers (AMF0 specification, section 2.1). */
enum {
    AMF0_NUMBER = 0x00,
    AMF0_BOOLEAN = 0x01,
    AMF0_STRING = 0x02,
    AMF0_OBJECT = 0x03,
    AMF0_MOVIECLIP = 0x04, /* reserved, never valid */
    AMF0_NULL = 0x05,
    AMF0_UNDEFINED = 0x06,
    AMF0_REFERENCE = 0x07,
    AMF0_ECMA_ARRAY = 0x08,
    AMF0_OBJECT_END = 0x09,
    AMF0_STRICT_ARRAY = 0x0A,
    AMF0_DATE = 0x0B,
    AMF0_LONG_STRING = 0x0C,
    AMF0_UNSUPPORTED = 0x0D,
    AMF0_RECORDSET = 0x0E, /* reserved, never valid */
    AMF0_XML_DOC = 0x0F,
    AMF0_TYPED_OBJECT = 0x10,
    AMF0_AVMPLUS = 0x11,
};

/* AMF0 reference indexes are u16, so only this many complex values count. */
#define AMF0_MAX_REFS 65536u

/* One entry of the AMF0 reference table: a complex value already seen. */
typedef struct {
    const sl_amf_t *val; /* borrowed from the tree being built */
    int done;            /* 0 while its members are still being decoded */
} amf0_ref_t;

/* State of one AMF0 decode call (a single value or a whole body). */
typedef struct {
    const uint8_t *p;     /* input, borrowed */
    size_t n;             /* input length */
    size_t pos;           /* next byte to read */
    sl__amf_limits_t lim; /* depth and reference budget */
    amf0_ref_t *refs;     /* complex values in wire order, for 0x07 */
    uint32_t n_refs;      /* entries in use */
    uint32_t cap_refs;    /* entries allocated */
} amf0_dec_t;

/* ------------------------------------------------------------------------ */
/* The value tree                                                            */
/* ------------------------------------------------------------------------ */

/*
 * sl__amf_new: allocates a value of the given type with a zeroed payload.
 * Returns NULL on ENOMEM. The caller owns the result.
 */
sl_amf_t *sl__amf_new(sl_amf_type_t type)
{
    sl_amf_t *v = sl_calloc(1, sizeof(*v));
    if (v)
        v->type = type;
    return v;
}

/*
 * sl__amf_new_bytes: a STRING, XML or BYTEARRAY holding a NUL-terminated
 * copy of s[0..n) (s may be NULL when n is 0). NULL on ENOMEM or when n does
 * not fit the 32-bit length field. The caller owns the result.
 */
sl_amf_t *sl__amf_new_bytes(sl_amf_type_t type, const char *s, size_t n)
{
    if (n >= UINT32_MAX)
        return NULL;
    sl_amf_t *v = sl__amf_new(type);
    if (!v)
        return NULL;
    v->u.str.ptr = sl_malloc(n + 1);
    if (!v->u.str.ptr) {
        sl_free(v);
        return NULL;
    }
    if (n)
        memcpy(v->u.str.ptr, s, n);
    v->u.str.ptr[n] = '\0';
    v->u.str.len = (uint32_t)n;
    return v;
}

/*
 * Constructors: each returns a new value owned by the caller, or NULL on
 * ENOMEM. Strings are copied.
 */
sl_amf_t *sl_amf_new_number(double v)
{
    sl_amf_t *a = sl__amf_new(SL_AMF_NUMBER);
    if (a)
        a->u.num = v;
    return a;
}

/* A BOOLEAN; any nonzero v is stored as 1. */
sl_amf_t *sl_amf_new_bool(int v)
{
    sl_amf_t *a = sl__amf_new(SL_AMF_BOOLEAN);
    if (a)
        a->u.boolean = v != 0;
    return a;
}

/* A STRING copied from the NUL-terminated s; NULL if s is NULL. */
sl_amf_t *sl_amf_new_string(const char *s)
{
    return s ? sl__amf_new_bytes(SL_AMF_STRING, s, strlen(s)) : NULL;
}

/* A STRING copied from s[0..n), which may hold NULs. */
sl_amf_t *sl_amf_new_stringn(const char *s, size_t n)
{
    return (s || n == 0) ? sl__amf_new_bytes(SL_AMF_STRING, s, n) : NULL;
}

/* NULL, UNDEFINED and the empty containers. */
sl_amf_t *sl_amf_new_null(void) { return sl__amf_new(SL_AMF_NULL); }
sl_amf_t *sl_amf_new_undefined(void) { return sl__amf_new(SL_AMF_UNDEFINED); }
sl_amf_t *sl_amf_new_object(void) { return sl__amf_new(SL_AMF_OBJECT); }
sl_amf_t *sl_amf_new_ecma_array(void) { return sl__amf_new(SL_AMF_ECMA_ARRAY); }
sl_amf_t *sl_amf_new_strict_array(void) { return sl__amf_new(SL_AMF_STRICT_ARRAY); }

static int is_props(const sl_amf_t *v)
{
    return v && (v->type == SL_AMF_OBJECT || v->type == SL_AMF_ECMA_ARRAY);
}

/*
 * sl__amf_grow: geometric growth of the tree's and the decoders' arrays. The
 * array pointer is read and written through memcpy so that any T ** can be
 * passed without type punning.
 */
int sl__amf_grow(void *arrp, uint32_t *cap, uint32_t want, size_t elem)
{
    void *arr;

    if (want <= *cap)
        return 0;
    uint64_t ncap = *cap ? *cap : 4;
    while (ncap < want)
        ncap *= 2;
    if (ncap > UINT32_MAX)
        ncap = UINT32_MAX;
    if (ncap > SIZE_MAX / elem)
        return SL_ENOMEM;
    memcpy(&arr, arrp, sizeof(arr));
    arr = sl_realloc(arr, (size_t)ncap * elem);
    if (!arr)
        return SL_ENOMEM;
    memcpy(arrp, &arr, sizeof(arr));
    *cap = (uint32_t)ncap;
    return 0;
}

/*
 * sl__amf_reserve: makes room for want properties (OBJECT, ECMA_ARRAY) or
 * items (STRICT_ARRAY) so later appends do not reallocate. 0, SL_EINVAL
 * (wrong type), SL_ENOMEM; v is unchanged on error.
 */
int sl__amf_reserve(sl_amf_t *v, uint32_t want)
{
    if (is_props(v))
        return sl__amf_grow(&v->u.obj.props, &v->u.obj.cap, want, sizeof(sl_amf_prop_t));
    if (v && v->type == SL_AMF_STRICT_ARRAY)
        return sl__amf_grow(&v->u.arr.items, &v->u.arr.cap, want, sizeof(sl_amf_t *));
    return SL_EINVAL;
}

/*
 * sl__amf_add_prop: appends without a duplicate check (see amf.h). Takes
 * ownership of val in every case; the key is copied.
 */
int sl__amf_add_prop(sl_amf_t *obj, const char *key, size_t key_len, sl_amf_t *val)
{
    int rc;
    char *k = NULL;

    if (!val) {
        rc = SL_ENOMEM; /* lets callers pass a constructor's result straight in */
        goto fail;
    }
    if (!is_props(obj) || !key || key_len >= UINT32_MAX || obj->u.obj.n == UINT32_MAX) {
        rc = SL_EINVAL;
        goto fail;
    }
    rc = sl__amf_reserve(obj, obj->u.obj.n + 1);
    if (rc)
        goto fail;
    k = sl_strndup(key, key_len);
    if (!k) {
        rc = SL_ENOMEM;
        goto fail;
    }
    sl_amf_prop_t *pr = &obj->u.obj.props[obj->u.obj.n++];
    pr->key = k;
    pr->key_len = (uint32_t)key_len;
    pr->val = val;
    return 0;
fail:
    sl_amf_free(val);
    return rc;
}

/*
 * sl_amf_set: sets key on an OBJECT or ECMA_ARRAY. An existing key (the last
 * one, if a decoded object holds duplicates) has its value replaced. Takes
 * ownership of val in every case; a NULL val is SL_ENOMEM so that the result
 * of a failed constructor can be passed straight in.
 */
int sl_amf_set(sl_amf_t *obj, const char *key, sl_amf_t *val)
{
    if (!val)
        return SL_ENOMEM;
    if (!is_props(obj) || !key) {
        sl_amf_free(val);
        return SL_EINVAL;
    }
    size_t key_len = strlen(key);
    for (uint32_t i = obj->u.obj.n; i-- > 0;) {
        sl_amf_prop_t *pr = &obj->u.obj.props[i];
        if (pr->key_len == key_len && memcmp(pr->key, key, key_len) == 0) {
            sl_amf_free(pr->val);
            pr->val = val;
            return 0;
        }
    }
    return sl__amf_add_prop(obj, key, key_len, val);
}

/*
 * sl_amf_push: appends val to a STRICT_ARRAY. Takes ownership of val in
 * every case. 0, SL_EINVAL (not a strict array), SL_ENOMEM (also for NULL val).
 */
int sl_amf_push(sl_amf_t *arr, sl_amf_t *val)
{
    int rc;

    if (!val)
        return SL_ENOMEM;
    if (!arr || arr->type != SL_AMF_STRICT_ARRAY || arr->u.arr.n == UINT32_MAX) {
        rc = SL_EINVAL;
        goto fail;
    }
    rc = sl__amf_reserve(arr, arr->u.arr.n + 1);
    if (rc)
        goto fail;
    arr->u.arr.items[arr->u.arr.n++] = val;
    return 0;
fail:
    sl_amf_free(val);
    return rc;
}

/*
 * sl__amf_charge: takes units from the reference budget. A NULL lim means
 * "no limits" (used by the public sl_amf_clone).
 */
int sl__amf_charge(sl__amf_limits_t *lim, uint64_t units)
{
    if (!lim)
        return 0;
    if (lim->budget < units)
        return SL_ETOOBIG;
    lim->budget -= units;
    return 0;
}

/*
 * Deep copy of v, whose containers sit depth levels deep. With lim set the
 * copy is charged to the budget and bounded by lim->max_depth; with lim NULL
 * it is unbounded. On error *out is NULL and the partial copy is freed.
 */
static int clone_rec(const sl_amf_t *v, int depth, sl__amf_limits_t *lim, sl_amf_t **out)
{
    int rc;
    sl_amf_t *c = NULL;

    *out = NULL;
    rc = sl__amf_charge(lim, 1);
    if (rc)
        return rc;
    switch (v->type) {
    case SL_AMF_STRING:
    case SL_AMF_XML:
    case SL_AMF_BYTEARRAY:
        rc = sl__amf_charge(lim, v->u.str.len);
        if (rc)
            return rc;
        c = sl__amf_new_bytes(v->type, v->u.str.ptr, v->u.str.len);
        if (!c)
            return SL_ENOMEM;
        break;
    case SL_AMF_OBJECT:
    case SL_AMF_ECMA_ARRAY:
        if (lim && depth >= lim->max_depth)
            return SL_EDEPTH;
        c = sl__amf_new(v->type);
        if (!c)
            return SL_ENOMEM;
        if (v->u.obj.class_name) {
            size_t len = strlen(v->u.obj.class_name);
            rc = sl__amf_charge(lim, len);
            if (rc)
                goto fail;
            c->u.obj.class_name = sl_strndup(v->u.obj.class_name, len);
            if (!c->u.obj.class_name) {
                rc = SL_ENOMEM;
                goto fail;
            }
        }
        rc = sl__amf_reserve(c, v->u.obj.n);
        if (rc)
            goto fail;
        for (uint32_t i = 0; i < v->u.obj.n; i++) {
            const sl_amf_prop_t *pr = &v->u.obj.props[i];
            sl_amf_t *cv;
            rc = sl__amf_charge(lim, pr->key_len);
            if (rc)
                goto fail;
            rc = clone_rec(pr->val, depth + 1, lim, &cv);
            if (rc)
                goto fail;
            rc = sl__amf_add_prop(c, pr->key, pr->key_len, cv);
            if (rc)
                goto fail;
        }
        break;
    case SL_AMF_STRICT_ARRAY:
        if (lim && depth >= lim->max_depth)
            return SL_EDEPTH;
        c = sl__amf_new(v->type);
        if (!c)
            return SL_ENOMEM;
        rc = sl__amf_reserve(c, v->u.arr.n);
        if (rc)
            goto fail;
        for (uint32_t i = 0; i < v->u.arr.n; i++) {
            sl_amf_t *cv;
            rc = clone_rec(v->u.arr.items[i], depth + 1, lim, &cv);
            if (rc)
                goto fail;
            rc = sl_amf_push(c, cv);
            if (rc)
                goto fail;
        }
        break;
    default: /* NUMBER, BOOLEAN, NULL, UNDEFINED, DATE: the payload is plain data */
        c = sl__amf_new(v->type);
        if (!c)
            return SL_ENOMEM;
        c->u = v->u;
        break;
    }
    *out = c;
    return 0;
fail:
    sl_amf_free(c);
    return rc;
}

/* sl_amf_clone: unbounded deep copy; NULL on ENOMEM or when v is NULL. */
sl_amf_t *sl_amf_clone(const sl_amf_t *v)
{
    sl_amf_t *c = NULL;
    if (v)
        clone_rec(v, 0, NULL, &c);
    return c;
}

/* sl__amf_clone_ref: the bounded copy behind every decoded reference. */
int sl__amf_clone_ref(const sl_amf_t *v, sl__amf_limits_t *lim, sl_amf_t **out)
{
    return clone_rec(v, lim->depth, lim, out);
}

/*
 * sl_amf_free: frees v and everything it owns. NULL is ignored. Recursion is
 * bounded by the tree's depth, which decoders bound by max_depth.
 */
void sl_amf_free(sl_amf_t *v)
{
    if (!v)
        return;
    switch (v->type) {
    case SL_AMF_STRING:
    case SL_AMF_XML:
    case SL_AMF_BYTEARRAY:
        sl_free(v->u.str.ptr);
        break;
    case SL_AMF_OBJECT:
    case SL_AMF_ECMA_ARRAY:
        for (uint32_t i = 0; i < v->u.obj.n; i++) {
            sl_free(v->u.obj.props[i].key);
            sl_amf_free(v->u.obj.props[i].val);
        }
        sl_free(v->u.obj.props);
        sl_free(v->u.obj.class_name);
        break;
    case SL_AMF_STRICT_ARRAY:
        for (uint32_t i = 0; i < v->u.arr.n; i++)
            sl_amf_free(v->u.arr.items[i]);
        sl_free(v->u.arr.items);
        break;
    default:
        break;
    }
    sl_free(v);
}

/* sl_amf_free_list: frees what sl_amf0_decode_all returned (NULL ignored). */
void sl_amf_free_list(sl_amf_t **vals, size_t count)
{
    if (!vals)
        return;
    for (size_t i = 0; i < count; i++)
        sl_amf_free(vals[i]);
    sl_free(vals);
}

/*
 * Readers. All tolerate NULL and wrong types and return their fallback;
 * returned pointers are borrowed from the tree and live as long as it does.
 */
const sl_amf_t *sl_amf_get(const sl_amf_t *obj, const char *key)
{
    if (!is_props(obj) || !key)
        return NULL;
    size_t key_len = strlen(key);
    /* Backwards: with duplicate keys the last one wins. */
    for (uint32_t i = obj->u.obj.n; i-- > 0;) {
        const sl_amf_prop_t *pr = &obj->u.obj.props[i];
        if (pr->key_len == key_len && memcmp(pr->key, key, key_len) == 0)
            return pr->val;
    }
    return NULL;
}

/* String content of a STRING (NUL-terminated; may hold NULs), else NULL. */
const char *sl_amf_str(const sl_amf_t *v)
{
    return v && v->type == SL_AMF_STRING ? v->u.str.ptr : NULL;
}

/* Value of a NUMBER, else fallback. */
double sl_amf_num(const sl_amf_t *v, double fallback)
{
    return v && v->type == SL_AMF_NUMBER ? v->u.num : fallback;
}

/*
 * BOOLEAN value, or for a NUMBER whether it is nonzero (NaN counts as false,
 * as in ActionScript's Boolean(NaN)); otherwise fallback.
 */
int sl_amf_bool(const sl_amf_t *v, int fallback)
{
    if (v && v->type == SL_AMF_BOOLEAN)
        return v->u.boolean != 0;
    if (v && v->type == SL_AMF_NUMBER)
        return v->u.num != 0 && !isnan(v->u.num);
    return fallback;
}

/* sl_amf_str(sl_amf_get(obj, key)). */
const char *sl_amf_get_str(const sl_amf_t *obj, const char *key)
{
    return sl_amf_str(sl_amf_get(obj, key));
}

/* sl_amf_num(sl_amf_get(obj, key), fallback). */
double sl_amf_get_num(const sl_amf_t *obj, const char *key, double fallback)
{
    return sl_amf_num(sl_amf_get(obj, key), fallback);
}

/* ------------------------------------------------------------------------ */
/* AMF0 decoding                                                             */
/* ------------------------------------------------------------------------ */

/*
 * sl__amf_limits_init: limits for one decode call over n input bytes.
 * SL_EINVAL for a negative max_depth; values above SL_AMF_DEPTH_CAP are
 * clamped so that the recursive decoders cannot exhaust the stack.
 */
int sl__amf_limits_init(sl__amf_limits_t *lim, size_t n, int max_depth)
{
    if (max_depth < 0)
        return SL_EINVAL;
    lim->depth = 0;
    lim->max_depth = max_depth > SL_AMF_DEPTH_CAP ? SL_AMF_DEPTH_CAP : max_depth;
    uint64_t nn = n;
    if (nn > (UINT64_MAX - SL_AMF_REF_SLACK) / SL_AMF_REF_EXPANSION)
        lim->budget = UINT64_MAX;
    else
        lim->budget = nn * SL_AMF_REF_EXPANSION + SL_AMF_REF_SLACK;
    return 0;
}

static double rd_double(const uint8_t *p)
{
    uint64_t bits = sl_rd_be64(p);
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

/* SL_EPROTO unless k more bytes are present. */
static int need(const amf0_dec_t *d, size_t k)
{
    return d->n - d->pos >= k ? 0 : SL_EPROTO;
}

/*
 * Records a complex value in the reference table and returns its index in
 * *idx (UINT32_MAX when the table is full: such values cannot be addressed
 * by a u16 index anyway).
 */
static int ref_add(amf0_dec_t *d, const sl_amf_t *v, uint32_t *idx)
{
    *idx = UINT32_MAX;
    if (d->n_refs >= AMF0_MAX_REFS)
        return 0;
    int rc = sl__amf_grow(&d->refs, &d->cap_refs, d->n_refs + 1, sizeof(amf0_ref_t));
    if (rc)
        return rc;
    d->refs[d->n_refs].val = v;
    d->refs[d->n_refs].done = 0;
    *idx = d->n_refs++;
    return 0;
}

static int dec_value(amf0_dec_t *d, sl_amf_t **out);

/*
 * Reads "key value" pairs into obj until the 00 00 09 end marker. An empty
 * key followed by anything but 0x09 is an ordinary property named "".
 */
static int dec_props(amf0_dec_t *d, sl_amf_t *obj)
{
    for (;;) {
        int rc = need(d, 2);
        if (rc)
            return rc;
        size_t key_len = sl_rd_be16(d->p + d->pos);
        d->pos += 2;
        if (key_len == 0) {
            rc = need(d, 1);
            if (rc)
                return rc;
            if (d->p[d->pos] == AMF0_OBJECT_END) {
                d->pos++;
                return 0;
            }
        }
        rc = need(d, key_len);
        if (rc)
            return rc;
        const char *key = (const char *)d->p + d->pos;
        if (memchr(key, 0, key_len))
            return SL_EPROTO;
        d->pos += key_len;
        sl_amf_t *v;
        rc = dec_value(d, &v);
        if (rc)
            return rc;
        rc = sl__amf_add_prop(obj, key, key_len, v);
        if (rc)
            return rc;
    }
}

/*
 * Decodes a container of the given type whose header (marker, counts, class
 * name) has been read: checks depth, registers it for references, then
 * reads its body. count is the strict array's item count (checked against
 * the input by the caller). class_name is copied.
 */
static int dec_container(amf0_dec_t *d, sl_amf_type_t type, uint32_t count,
                         const char *class_name, size_t class_len, sl_amf_t **out)
{
    int rc;
    uint32_t idx;
    sl_amf_t *v = NULL;

    if (d->lim.depth >= d->lim.max_depth)
        return SL_EDEPTH;
    v = sl__amf_new(type);
    if (!v)
        return SL_ENOMEM;
    if (class_name) {
        v->u.obj.class_name = sl_strndup(class_name, class_len);
        if (!v->u.obj.class_name) {
            rc = SL_ENOMEM;
            goto fail;
        }
    }
    rc = ref_add(d, v, &idx);
    if (rc)
        goto fail;
    d->lim.depth++;
    if (type == SL_AMF_STRICT_ARRAY) {
        /* count <= bytes left (checked), so this is bounded by the input. */
        rc = sl__amf_reserve(v, count);
        for (uint32_t i = 0; rc == 0 && i < count; i++) {
            sl_amf_t *item;
            rc = dec_value(d, &item);
            if (rc == 0)
                rc = sl_amf_push(v, item);
        }
    } else {
        rc = dec_props(d, v);
    }
    d->lim.depth--;
    if (rc)
        goto fail;
    if (idx != UINT32_MAX)
        d->refs[idx].done = 1;
    *out = v;
    return 0;
fail:
    sl_amf_free(v);
    return rc;
}

/* Resolves a 0x07 reference by copying the value it names. */
static int dec_reference(amf0_dec_t *d, sl_amf_t **out)
{
    int rc = need(d, 2);
    if (rc)
        return rc;
    uint32_t idx = sl_rd_be16(d->p + d->pos);
    d->pos += 2;
    if (idx >= d->n_refs || !d->refs[idx].done)
        return SL_EPROTO; /* unknown index, or a cycle through an ancestor */
    return sl__amf_clone_ref(d->refs[idx].val, &d->lim, out);
}

/* Reads a string payload of len bytes into a new value of type. */
static int dec_bytes(amf0_dec_t *d, sl_amf_type_t type, size_t len, sl_amf_t **out)
{
    int rc = need(d, len);
    if (rc)
        return rc;
    *out = sl__amf_new_bytes(type, (const char *)d->p + d->pos, len);
    if (!*out)
        return SL_ENOMEM;
    d->pos += len;
    return 0;
}

/* Decodes one AMF0 value at d->pos. On error *out is NULL. */
static int dec_value(amf0_dec_t *d, sl_amf_t **out)
{
    int rc;
    uint32_t len;
    sl_amf_t *v = NULL;

    *out = NULL;
    rc = need(d, 1);
    if (rc)
        return rc;
    uint8_t marker = d->p[d->pos++];
    switch (marker) {
    case AMF0_NUMBER:
    case AMF0_DATE:
        rc = need(d, marker == AMF0_DATE ? 10 : 8);
        if (rc)
            return rc;
        v = sl__amf_new(marker == AMF0_DATE ? SL_AMF_DATE : SL_AMF_NUMBER);
        if (!v)
            return SL_ENOMEM;
        v->u.num = rd_double(d->p + d->pos);
        /* A date's trailing s16 time zone is reserved and ignored. */
        d->pos += marker == AMF0_DATE ? 10 : 8;
        break;
    case AMF0_BOOLEAN:
        rc = need(d, 1);
        if (rc)
            return rc;
        v = sl_amf_new_bool(d->p[d->pos]);
        if (!v)
            return SL_ENOMEM;
        d->pos++;
        break;
    case AMF0_STRING:
        rc = need(d, 2);
        if (rc)
            return rc;
        len = sl_rd_be16(d->p + d->pos);
        d->pos += 2;
        return dec_bytes(d, SL_AMF_STRING, len, out);
    case AMF0_LONG_STRING:
    case AMF0_XML_DOC:
        rc = need(d, 4);
        if (rc)
            return rc;
        len = sl_rd_be32(d->p + d->pos);
        d->pos += 4;
        return dec_bytes(d, marker == AMF0_XML_DOC ? SL_AMF_XML : SL_AMF_STRING, len, out);
    case AMF0_NULL:
        v = sl_amf_new_null();
        if (!v)
            return SL_ENOMEM;
        break;
    case AMF0_UNDEFINED:
    case AMF0_UNSUPPORTED: /* "no value that AMF0 can carry": read as undefined */
        v = sl_amf_new_undefined();
        if (!v)
            return SL_ENOMEM;
        break;
    case AMF0_OBJECT:
        return dec_container(d, SL_AMF_OBJECT, 0, NULL, 0, out);
    case AMF0_ECMA_ARRAY:
        /*
         * The u32 count is only a hint and encoders get it wrong (FFmpeg and
         * librtmp ignore it too): the members run to the 00 00 09 marker.
         */
        rc = need(d, 4);
        if (rc)
            return rc;
        d->pos += 4;
        return dec_container(d, SL_AMF_ECMA_ARRAY, 0, NULL, 0, out);
    case AMF0_STRICT_ARRAY:
        rc = need(d, 4);
        if (rc)
            return rc;
        len = sl_rd_be32(d->p + d->pos);
        d->pos += 4;
        if (len > d->n - d->pos)
            return SL_EPROTO; /* every item takes at least one byte */
        return dec_container(d, SL_AMF_STRICT_ARRAY, len, NULL, 0, out);
    case AMF0_TYPED_OBJECT: {
        rc = need(d, 2);
        if (rc)
            return rc;
        len = sl_rd_be16(d->p + d->pos);
        d->pos += 2;
        rc = need(d, len);
        if (rc)
            return rc;
        const char *cls = (const char *)d->p + d->pos;
        if (memchr(cls, 0, len))
            return SL_EPROTO;
        d->pos += len;
        return dec_container(d, SL_AMF_OBJECT, 0, cls, len, out);
    }
    case AMF0_REFERENCE:
        return dec_reference(d, out);
    case AMF0_AVMPLUS: {
        size_t used;
        rc = sl__amf3_decode_at(d->p + d->pos, d->n - d->pos, &used, &d->lim, out);
        if (rc)
            return rc;
        d->pos += used;
        return 0;
    }
    default: /* movieclip, recordset, a stray object end, unknown markers */
        return SL_EPROTO;
    }
    *out = v;
    return 0;
}

static void dec_init(amf0_dec_t *d, const uint8_t *p, size_t n)
{
    memset(d, 0, sizeof(*d));
    d->p = p;
    d->n = n;
}

/*
 * sl_amf0_decode: one value with a fresh reference table; contract in amf.h.
 * *used is 0 and *out NULL on error.
 */
int sl_amf0_decode(const uint8_t *p, size_t n, size_t *used, int max_depth, sl_amf_t **out)
{
    amf0_dec_t d;
    int rc;

    if (!used || !out)
        return SL_EINVAL;
    *out = NULL;
    *used = 0;
    if (!p && n)
        return SL_EINVAL;
    dec_init(&d, p, n);
    rc = sl__amf_limits_init(&d.lim, n, max_depth);
    if (rc)
        return rc;
    rc = dec_value(&d, out);
    if (rc == 0)
        *used = d.pos;
    sl_free(d.refs);
    return rc;
}

/*
 * sl_amf0_decode_all: every value of a message body, sharing one reference
 * table and one budget; contract in amf.h.
 */
int sl_amf0_decode_all(const uint8_t *p, size_t n, int max_depth, sl_amf_t ***vals,
                       size_t *count)
{
    static const uint8_t stray_end[3] = {0x00, 0x00, AMF0_OBJECT_END};
    amf0_dec_t d;
    sl_amf_t **list = NULL;
    uint32_t n_list = 0, cap_list = 0;
    int rc;

    if (!vals || !count)
        return SL_EINVAL;
    *vals = NULL;
    *count = 0;
    if (!p && n)
        return SL_EINVAL;
    dec_init(&d, p, n);
    rc = sl__amf_limits_init(&d.lim, n, max_depth);
    if (rc)
        return rc;
    while (d.pos < n) {
        if (n - d.pos == sizeof(stray_end) && memcmp(p + d.pos, stray_end, 3) == 0)
            break; /* the tolerated encoder quirk, see amf.h */
        sl_amf_t *v;
        rc = dec_value(&d, &v);
        if (rc)
            goto fail;
        if (n_list == UINT32_MAX) {
            sl_amf_free(v);
            rc = SL_ETOOBIG;
            goto fail;
        }
        rc = sl__amf_grow(&list, &cap_list, n_list + 1, sizeof(*list));
        if (rc) {
            sl_amf_free(v);
            goto fail;
        }
        list[n_list++] = v;
    }
    sl_free(d.refs);
    *vals = list;
    *count = n_list;
    return 0;
fail:
    sl_free(d.refs);
    sl_amf_free_list(list, n_list);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* AMF0 encoding                                                             */
/* ------------------------------------------------------------------------ */

static int put_double(sl_wbuf_t *w, uint8_t marker, double v)
{
    uint8_t b[9];
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    b[0] = marker;
    sl_wr_be32(b + 1, (uint32_t)(bits >> 32));
    sl_wr_be32(b + 5, (uint32_t)bits);
    return sl_wbuf_put(w, b, sizeof(b));
}

/* A string value: 0x02 + u16 length, or 0x0C + u32 length past 65535. */
static int put_string_n(sl_wbuf_t *w, const char *s, size_t len)
{
    uint8_t hdr[5];
    size_t hdr_len;

    if (len > UINT32_MAX)
        return SL_EINVAL;
    if (len > 0xFFFF) {
        hdr[0] = AMF0_LONG_STRING;
        sl_wr_be32(hdr + 1, (uint32_t)len);
        hdr_len = 5;
    } else {
        hdr[0] = AMF0_STRING;
        sl_wr_be16(hdr + 1, (uint16_t)len);
        hdr_len = 3;
    }
    int rc = sl_wbuf_reserve(w, hdr_len + len);
    if (rc == 0)
        rc = sl_wbuf_put(w, hdr, hdr_len);
    if (rc == 0)
        rc = sl_wbuf_put(w, s, len);
    return rc;
}

/* A property name: u16 length + bytes. */
static int put_key_n(sl_wbuf_t *w, const char *key, size_t len)
{
    if (len > 0xFFFF)
        return SL_EINVAL;
    int rc = sl_wbuf_reserve(w, 2 + len);
    if (rc == 0)
        rc = sl_wbuf_put_be16(w, (uint16_t)len);
    if (rc == 0)
        rc = sl_wbuf_put(w, key, len);
    return rc;
}

static int put_end(sl_wbuf_t *w)
{
    static const uint8_t end[3] = {0x00, 0x00, AMF0_OBJECT_END};
    return sl_wbuf_put(w, end, sizeof(end));
}

/*
 * Whether an OBJECT/ECMA_ARRAY can be written as AMF0 at its own level:
 * AMF0 keys and class names carry u16 lengths (longer ones only come from
 * AMF3, and go back out through the 0x11 switch).
 */
static int fits_amf0(const sl_amf_t *v)
{
    if (v->u.obj.class_name && v->type == SL_AMF_OBJECT && strlen(v->u.obj.class_name) > 0xFFFF)
        return 0;
    for (uint32_t i = 0; i < v->u.obj.n; i++)
        if (v->u.obj.props[i].key_len > 0xFFFF)
            return 0;
    return 1;
}

static int enc0(sl_wbuf_t *w, const sl_amf_t *v)
{
    int rc;

    if (!v)
        return SL_EINVAL;
    switch (v->type) {
    case SL_AMF_NUMBER:
        return put_double(w, AMF0_NUMBER, v->u.num);
    case SL_AMF_BOOLEAN:
        return sl_amf0_put_bool(w, v->u.boolean);
    case SL_AMF_STRING:
        return put_string_n(w, v->u.str.ptr, v->u.str.len);
    case SL_AMF_NULL:
        return sl_wbuf_put_u8(w, AMF0_NULL);
    case SL_AMF_UNDEFINED:
        return sl_wbuf_put_u8(w, AMF0_UNDEFINED);
    case SL_AMF_DATE:
        rc = put_double(w, AMF0_DATE, v->u.num);
        return rc ? rc : sl_wbuf_put_be16(w, 0); /* time zone: reserved, 0 */
    case SL_AMF_XML:
        rc = sl_wbuf_reserve(w, 5 + (size_t)v->u.str.len);
        if (rc == 0)
            rc = sl_wbuf_put_u8(w, AMF0_XML_DOC);
        if (rc == 0)
            rc = sl_wbuf_put_be32(w, v->u.str.len);
        if (rc == 0)
            rc = sl_wbuf_put(w, v->u.str.ptr, v->u.str.len);
        return rc;
    case SL_AMF_BYTEARRAY:
        goto avmplus;
    case SL_AMF_OBJECT:
    case SL_AMF_ECMA_ARRAY:
        if (!fits_amf0(v))
            goto avmplus;
        if (v->type == SL_AMF_ECMA_ARRAY) {
            rc = sl_amf0_put_ecma_start(w, v->u.obj.n);
        } else if (v->u.obj.class_name) {
            rc = sl_wbuf_put_u8(w, AMF0_TYPED_OBJECT);
            if (rc == 0)
                rc = put_key_n(w, v->u.obj.class_name, strlen(v->u.obj.class_name));
        } else {
            rc = sl_wbuf_put_u8(w, AMF0_OBJECT);
        }
        for (uint32_t i = 0; rc == 0 && i < v->u.obj.n; i++) {
            rc = put_key_n(w, v->u.obj.props[i].key, v->u.obj.props[i].key_len);
            if (rc == 0)
                rc = enc0(w, v->u.obj.props[i].val);
        }
        return rc ? rc : put_end(w);
    case SL_AMF_STRICT_ARRAY:
        rc = sl_wbuf_put_u8(w, AMF0_STRICT_ARRAY);
        if (rc == 0)
            rc = sl_wbuf_put_be32(w, v->u.arr.n);
        for (uint32_t i = 0; rc == 0 && i < v->u.arr.n; i++)
            rc = enc0(w, v->u.arr.items[i]);
        return rc;
    }
    return SL_EINVAL;
avmplus:
    rc = sl_wbuf_put_u8(w, AMF0_AVMPLUS);
    return rc ? rc : sl_amf3_encode(w, v);
}

/*
 * sl_amf0_encode: appends v as AMF0. Values AMF0 cannot express (ByteArray,
 * keys or class names over 65535 bytes) go out as AMF3 behind the 0x11
 * switch. Returns 0, SL_EINVAL (NULL or malformed tree), SL_ETOOBIG (the
 * builder's cap) or SL_ENOMEM; on error w is left as it was. v is borrowed.
 */
int sl_amf0_encode(sl_wbuf_t *w, const sl_amf_t *v)
{
    if (!w)
        return SL_EINVAL;
    size_t mark = w->len;
    int rc = enc0(w, v);
    if (rc)
        w->len = mark;
    return rc;
}

/*
 * Streaming puts. Each appends exact AMF0 wire bytes to w and returns 0,
 * SL_EINVAL (NULL string or key, key over 65535 bytes), SL_ETOOBIG or SL_ENOMEM;
 * on error w is left as it was. Strings are borrowed for the call.
 */
int sl_amf0_put_number(sl_wbuf_t *w, double v)
{
    return put_double(w, AMF0_NUMBER, v);
}

/* 01 00|01. */
int sl_amf0_put_bool(sl_wbuf_t *w, int v)
{
    uint8_t b[2] = {AMF0_BOOLEAN, v ? 1 : 0};
    return sl_wbuf_put(w, b, sizeof(b));
}

/* 02 + u16 length + bytes, or 0C + u32 length + bytes when over 65535. */
int sl_amf0_put_string(sl_wbuf_t *w, const char *s)
{
    return s ? put_string_n(w, s, strlen(s)) : SL_EINVAL;
}

/* 05. */
int sl_amf0_put_null(sl_wbuf_t *w)
{
    return sl_wbuf_put_u8(w, AMF0_NULL);
}

/* 03; follow with keys and values, then sl_amf0_put_object_end. */
int sl_amf0_put_object_start(sl_wbuf_t *w)
{
    return sl_wbuf_put_u8(w, AMF0_OBJECT);
}

/* 08 + u32 count_hint; members and the end marker follow as for objects. */
int sl_amf0_put_ecma_start(sl_wbuf_t *w, uint32_t count_hint)
{
    uint8_t b[5];
    b[0] = AMF0_ECMA_ARRAY;
    sl_wr_be32(b + 1, count_hint);
    return sl_wbuf_put(w, b, sizeof(b));
}

/* u16 length + bytes of a property name (no marker). */
int sl_amf0_put_key(sl_wbuf_t *w, const char *key)
{
    return key ? put_key_n(w, key, strlen(key)) : SL_EINVAL;
}

/* 00 00 09: closes an object, typed object or ECMA array. */
int sl_amf0_put_object_end(sl_wbuf_t *w)
{
    return put_end(w);
}

/* key + string value; w is unchanged on error. */
int sl_amf0_put_prop_string(sl_wbuf_t *w, const char *key, const char *v)
{
    size_t mark = w->len;
    int rc = sl_amf0_put_key(w, key);
    if (rc == 0)
        rc = sl_amf0_put_string(w, v);
    if (rc)
        w->len = mark;
    return rc;
}

/* key + number value; w is unchanged on error. */
int sl_amf0_put_prop_number(sl_wbuf_t *w, const char *key, double v)
{
    size_t mark = w->len;
    int rc = sl_amf0_put_key(w, key);
    if (rc == 0)
        rc = sl_amf0_put_number(w, v);
    if (rc)
        w->len = mark;
    return rc;
}

/* key + boolean value; w is unchanged on error. */
int sl_amf0_put_prop_bool(sl_wbuf_t *w, const char *key, int v)
{
    size_t mark = w->len;
    int rc = sl_amf0_put_key(w, key);
    if (rc == 0)
        rc = sl_amf0_put_bool(w, v);
    if (rc)
        w->len = mark;
    return rc;
}
