/*
 * AMF3 codec: decodes AMF3 values into the tree of amf.c and encodes trees
 * back. AMF3 reaches sluice behind the AMF0 avmplus switch (0x11), mostly
 * from Flash-era clients that set objectEncoding 3, and in AMF3 shared
 * object and data messages.
 *
 * AMF3 compresses by reference: a string, an object (or array, date, xml,
 * bytearray) or a class definition (traits) seen earlier in the same value
 * can be sent again as an index. The decoder keeps the three tables for one
 * top-level value only; strings and traits are kept as spans of the input
 * (no copies), objects as pointers into the tree being built. Because the
 * result must be a tree, an object reference is resolved by copying the
 * earlier value, which is charged to the caller's budget (sl__amf_limits_t)
 * together with every key or string a reference produces, so that a few
 * bytes of references cannot expand into gigabytes. A reference to an
 * object still being decoded (a cycle) is refused.
 *
 * The encoder writes everything inline (no references): replies are small
 * and the decoder on the other side need not trust our indexes.
 *
 * Refused: externalizable traits (their body format is private to the
 * class), vectors and dictionaries (0x0D-0x11), which no RTMP peer sends.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "proto/rtmp/amf.h"
#include "sluice/errors.h"

/* AMF3 markers (AMF3 specification, section 3.1). */
enum {
    AMF3_UNDEFINED = 0x00,
    AMF3_NULL = 0x01,
    AMF3_FALSE = 0x02,
    AMF3_TRUE = 0x03,
    AMF3_INTEGER = 0x04,
    AMF3_DOUBLE = 0x05,
    AMF3_STRING = 0x06,
    AMF3_XML_DOC = 0x07,
    AMF3_DATE = 0x08,
    AMF3_ARRAY = 0x09,
    AMF3_OBJECT = 0x0A,
    AMF3_XML = 0x0B,
    AMF3_BYTEARRAY = 0x0C,
};

/* U29 values are 29 bits; lengths and counts shifted left by one are 28. */
#define U29_MAX 0x1FFFFFFFu
#define LEN_MAX 0x0FFFFFFFu
#define INT_MIN29 (-268435456)
#define INT_MAX29 268435455

/* A string of the input (string table entries, trait names): borrowed. */
typedef struct {
    const char *ptr; /* into the input; not NUL-terminated */
    uint32_t len;    /* bytes */
} span_t;

/* A class definition, kept for later traits references. */
typedef struct {
    span_t class_name;   /* empty for anonymous objects */
    span_t *members;     /* owned array of sealed member names */
    uint32_t n_members;  /* sealed member count */
    int dynamic;         /* dynamic members follow the sealed ones */
    uint64_t name_units; /* class name + member name bytes: what a reference copies */
} traits_t;

/* An object table entry: a complex value decoded earlier in this value. */
typedef struct {
    const sl_amf_t *val; /* borrowed from the tree being built */
    int done;            /* 0 while its members are still being decoded */
} obj_ref_t;

/* State of decoding one top-level AMF3 value. */
typedef struct {
    const uint8_t *p;        /* input, borrowed */
    size_t n;                /* input length */
    size_t pos;              /* next byte to read */
    sl__amf_limits_t *lim;   /* the caller's depth and budget */
    span_t *strs;            /* string table */
    uint32_t n_strs, cap_strs;
    traits_t *traits;        /* traits table */
    uint32_t n_traits, cap_traits;
    obj_ref_t *objs;         /* object table */
    uint32_t n_objs, cap_objs;
} dec3_t;

/* ------------------------------------------------------------------------ */
/* Decoding                                                                  */
/* ------------------------------------------------------------------------ */

static int need(const dec3_t *d, size_t k)
{
    return d->n - d->pos >= k ? 0 : SL_EPROTO;
}

/*
 * U29: 1 to 4 bytes, big-endian groups of 7 bits with a continuation bit,
 * except that a fourth byte contributes all 8 bits.
 */
static int read_u29(dec3_t *d, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 3; i++) {
        if (need(d, 1))
            return SL_EPROTO;
        uint8_t b = d->p[d->pos++];
        v = (v << 7) | (b & 0x7F);
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    if (need(d, 1))
        return SL_EPROTO;
    *out = (v << 8) | d->p[d->pos++];
    return 0;
}

/*
 * UTF-8-vr: a U29S header that is either a string table index (low bit 0)
 * or an inline length. Inline non-empty strings join the string table.
 * *from_ref says whether the bytes came from the table (and so must be
 * charged to the budget when copied).
 */
static int read_str(dec3_t *d, span_t *s, int *from_ref)
{
    uint32_t u;
    int rc = read_u29(d, &u);
    if (rc)
        return rc;
    if (!(u & 1)) {
        if ((u >> 1) >= d->n_strs)
            return SL_EPROTO;
        *s = d->strs[u >> 1];
        *from_ref = 1;
        return 0;
    }
    uint32_t len = u >> 1;
    rc = need(d, len);
    if (rc)
        return rc;
    s->ptr = (const char *)d->p + d->pos;
    s->len = len;
    *from_ref = 0;
    d->pos += len;
    if (len == 0)
        return 0; /* the empty string is never referenced */
    if (d->n_strs == UINT32_MAX)
        return SL_ETOOBIG;
    rc = sl__amf_grow(&d->strs, &d->cap_strs, d->n_strs + 1, sizeof(span_t));
    if (rc)
        return rc;
    d->strs[d->n_strs++] = *s;
    return 0;
}

/* Keys and class names become C strings, so they may not hold a NUL. */
static int check_name(span_t s)
{
    return memchr(s.ptr, 0, s.len) ? SL_EPROTO : 0;
}

/* Adds a complex value to the object table; its index goes to *idx. */
static int obj_add(dec3_t *d, const sl_amf_t *v, uint32_t *idx)
{
    if (d->n_objs == UINT32_MAX)
        return SL_ETOOBIG;
    int rc = sl__amf_grow(&d->objs, &d->cap_objs, d->n_objs + 1, sizeof(obj_ref_t));
    if (rc)
        return rc;
    d->objs[d->n_objs].val = v;
    d->objs[d->n_objs].done = 0;
    *idx = d->n_objs++;
    return 0;
}

/*
 * Resolves an object table reference by copying the value. The marker must
 * agree with what the entry holds (an array marker may name either array
 * kind, both XML markers name XML).
 */
static int obj_ref(dec3_t *d, uint32_t idx, uint8_t marker, sl_amf_t **out)
{
    if (idx >= d->n_objs || !d->objs[idx].done)
        return SL_EPROTO; /* unknown index, or a cycle through an ancestor */
    const sl_amf_t *v = d->objs[idx].val;
    int ok;
    switch (marker) {
    case AMF3_ARRAY:
        ok = v->type == SL_AMF_STRICT_ARRAY || v->type == SL_AMF_ECMA_ARRAY;
        break;
    case AMF3_OBJECT: ok = v->type == SL_AMF_OBJECT; break;
    case AMF3_DATE: ok = v->type == SL_AMF_DATE; break;
    case AMF3_BYTEARRAY: ok = v->type == SL_AMF_BYTEARRAY; break;
    default: ok = v->type == SL_AMF_XML; break;
    }
    if (!ok)
        return SL_EPROTO;
    return sl__amf_clone_ref(v, d->lim, out);
}

static int dec3(dec3_t *d, sl_amf_t **out);

/* Decodes one value and appends it under key (copied) to obj. */
static int dec_member(dec3_t *d, sl_amf_t *obj, span_t key)
{
    sl_amf_t *v;
    int rc = dec3(d, &v);
    if (rc)
        return rc;
    return sl__amf_add_prop(obj, key.ptr, key.len, v);
}

/*
 * XMLDocument, XML and ByteArray share one shape: U29 reference or inline
 * length, then the bytes. Inline ones join the object table.
 */
static int dec_blob(dec3_t *d, uint8_t marker, sl_amf_type_t type, sl_amf_t **out)
{
    uint32_t u, idx;
    int rc = read_u29(d, &u);
    if (rc)
        return rc;
    if (!(u & 1))
        return obj_ref(d, u >> 1, marker, out);
    rc = need(d, u >> 1);
    if (rc)
        return rc;
    sl_amf_t *v = sl__amf_new_bytes(type, (const char *)d->p + d->pos, u >> 1);
    if (!v)
        return SL_ENOMEM;
    d->pos += u >> 1;
    rc = obj_add(d, v, &idx);
    if (rc) {
        sl_amf_free(v);
        return rc;
    }
    d->objs[idx].done = 1;
    *out = v;
    return 0;
}

/* Date: U29 reference, or 1 followed by a double of ms since the epoch. */
static int dec_date(dec3_t *d, sl_amf_t **out)
{
    uint32_t u, idx;
    int rc = read_u29(d, &u);
    if (rc)
        return rc;
    if (!(u & 1))
        return obj_ref(d, u >> 1, AMF3_DATE, out);
    rc = need(d, 8);
    if (rc)
        return rc;
    uint64_t bits = sl_rd_be64(d->p + d->pos);
    d->pos += 8;
    sl_amf_t *v = sl__amf_new(SL_AMF_DATE);
    if (!v)
        return SL_ENOMEM;
    memcpy(&v->u.num, &bits, sizeof(bits));
    rc = obj_add(d, v, &idx);
    if (rc) {
        sl_amf_free(v);
        return rc;
    }
    d->objs[idx].done = 1;
    *out = v;
    return 0;
}

/*
 * Array: U29A (reference, or inline dense count), then the associative part
 * (key/value pairs up to the empty key), then the dense items. A purely
 * dense array becomes a STRICT_ARRAY; one with associative members becomes
 * an ECMA_ARRAY holding them followed by the dense items under the keys
 * "0", "1", ... (the tree has no mixed array).
 */
static int dec_array(dec3_t *d, sl_amf_t **out)
{
    uint32_t u, idx;
    span_t key;
    int from_ref, rc;
    sl_amf_t *v = NULL;

    rc = read_u29(d, &u);
    if (rc)
        return rc;
    if (!(u & 1))
        return obj_ref(d, u >> 1, AMF3_ARRAY, out);
    if (d->lim->depth >= d->lim->max_depth)
        return SL_EDEPTH;
    uint32_t n_dense = u >> 1;
    if (n_dense > d->n - d->pos)
        return SL_EPROTO; /* every item takes at least one byte */
    /* The first key decides the kind; keys live in the string table only. */
    rc = read_str(d, &key, &from_ref);
    if (rc)
        return rc;
    v = sl__amf_new(key.len ? SL_AMF_ECMA_ARRAY : SL_AMF_STRICT_ARRAY);
    if (!v)
        return SL_ENOMEM;
    rc = obj_add(d, v, &idx);
    if (rc)
        goto fail;
    d->lim->depth++;
    while (rc == 0 && key.len) {
        rc = check_name(key);
        if (rc == 0 && from_ref)
            rc = sl__amf_charge(d->lim, key.len);
        if (rc == 0)
            rc = dec_member(d, v, key);
        if (rc == 0)
            rc = read_str(d, &key, &from_ref);
    }
    if (rc == 0)
        rc = sl__amf_reserve(v, (v->type == SL_AMF_STRICT_ARRAY ? 0 : v->u.obj.n) + n_dense);
    for (uint32_t i = 0; rc == 0 && i < n_dense; i++) {
        if (v->type == SL_AMF_STRICT_ARRAY) {
            sl_amf_t *item;
            rc = dec3(d, &item);
            if (rc == 0)
                rc = sl_amf_push(v, item);
        } else {
            char num[12];
            int num_len = snprintf(num, sizeof(num), "%" PRIu32, i);
            rc = dec_member(d, v, (span_t){num, (uint32_t)num_len});
        }
    }
    d->lim->depth--;
    if (rc)
        goto fail;
    d->objs[idx].done = 1;
    *out = v;
    return 0;
fail:
    sl_amf_free(v);
    return rc;
}

/*
 * Inline traits: class name, then the sealed member names. The definition
 * joins the traits table (which then owns the names array) and is copied to
 * *t. *ref_units receives the bytes that came from string references.
 */
static int read_traits(dec3_t *d, uint32_t u, traits_t *t, uint64_t *ref_units)
{
    int from_ref, rc;
    span_t *members = NULL;

    memset(t, 0, sizeof(*t));
    *ref_units = 0;
    if (u & 4)
        return SL_EPROTO; /* externalizable: a class-private body format */
    t->dynamic = (u >> 3) & 1;
    t->n_members = u >> 4;
    if (t->n_members > d->n - d->pos)
        return SL_EPROTO; /* every name takes at least one byte */
    rc = read_str(d, &t->class_name, &from_ref);
    if (rc)
        return rc;
    rc = check_name(t->class_name);
    if (rc)
        return rc;
    t->name_units = t->class_name.len;
    if (from_ref)
        *ref_units += t->class_name.len;
    if (t->n_members) {
        members = sl_malloc((size_t)t->n_members * sizeof(span_t));
        if (!members)
            return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < t->n_members; i++) {
        rc = read_str(d, &members[i], &from_ref);
        if (rc == 0)
            rc = check_name(members[i]);
        if (rc)
            goto fail;
        t->name_units += members[i].len;
        if (from_ref)
            *ref_units += members[i].len;
    }
    if (d->n_traits == UINT32_MAX) {
        rc = SL_ETOOBIG;
        goto fail;
    }
    rc = sl__amf_grow(&d->traits, &d->cap_traits, d->n_traits + 1, sizeof(traits_t));
    if (rc)
        goto fail;
    t->members = members;
    d->traits[d->n_traits++] = *t;
    return 0;
fail:
    sl_free(members);
    return rc;
}

/*
 * Object: U29O (object reference, traits reference, or inline traits), then
 * the sealed member values in trait order, then for dynamic classes
 * key/value pairs up to the empty key. Anonymous objects get a NULL
 * class_name.
 */
static int dec_object(dec3_t *d, sl_amf_t **out)
{
    uint32_t u, idx;
    traits_t t;
    uint64_t units;
    int rc;
    sl_amf_t *v = NULL;

    rc = read_u29(d, &u);
    if (rc)
        return rc;
    if (!(u & 1))
        return obj_ref(d, u >> 1, AMF3_OBJECT, out);
    if (d->lim->depth >= d->lim->max_depth)
        return SL_EDEPTH;
    if (!(u & 2)) {
        if ((u >> 2) >= d->n_traits)
            return SL_EPROTO;
        t = d->traits[u >> 2]; /* a copy: the table may move while members decode */
        units = t.name_units;
        if (t.n_members > d->n - d->pos)
            return SL_EPROTO; /* every value takes at least one byte */
    } else {
        rc = read_traits(d, u, &t, &units);
        if (rc)
            return rc;
    }
    rc = sl__amf_charge(d->lim, units);
    if (rc)
        return rc;
    v = sl__amf_new(SL_AMF_OBJECT);
    if (!v)
        return SL_ENOMEM;
    if (t.class_name.len) {
        v->u.obj.class_name = sl_strndup(t.class_name.ptr, t.class_name.len);
        if (!v->u.obj.class_name) {
            rc = SL_ENOMEM;
            goto fail;
        }
    }
    rc = obj_add(d, v, &idx);
    if (rc)
        goto fail;
    d->lim->depth++;
    rc = sl__amf_reserve(v, t.n_members);
    for (uint32_t i = 0; rc == 0 && i < t.n_members; i++)
        rc = dec_member(d, v, t.members[i]);
    while (rc == 0 && t.dynamic) {
        span_t key;
        int from_ref;
        rc = read_str(d, &key, &from_ref);
        if (rc || key.len == 0)
            break;
        rc = check_name(key);
        if (rc == 0 && from_ref)
            rc = sl__amf_charge(d->lim, key.len);
        if (rc == 0)
            rc = dec_member(d, v, key);
    }
    d->lim->depth--;
    if (rc)
        goto fail;
    d->objs[idx].done = 1;
    *out = v;
    return 0;
fail:
    sl_amf_free(v);
    return rc;
}

/* Decodes one AMF3 value at d->pos. On error *out is NULL. */
static int dec3(dec3_t *d, sl_amf_t **out)
{
    uint32_t u;
    int rc;
    sl_amf_t *v = NULL;

    *out = NULL;
    rc = need(d, 1);
    if (rc)
        return rc;
    uint8_t marker = d->p[d->pos++];
    switch (marker) {
    case AMF3_UNDEFINED:
        v = sl_amf_new_undefined();
        break;
    case AMF3_NULL:
        v = sl_amf_new_null();
        break;
    case AMF3_FALSE:
    case AMF3_TRUE:
        v = sl_amf_new_bool(marker == AMF3_TRUE);
        break;
    case AMF3_INTEGER:
        rc = read_u29(d, &u);
        if (rc)
            return rc;
        /* 29-bit two's complement. */
        v = sl_amf_new_number((u & 0x10000000u) ? (double)u - 536870912.0 : (double)u);
        break;
    case AMF3_DOUBLE: {
        rc = need(d, 8);
        if (rc)
            return rc;
        uint64_t bits = sl_rd_be64(d->p + d->pos);
        double num;
        memcpy(&num, &bits, sizeof(num));
        d->pos += 8;
        v = sl_amf_new_number(num);
        break;
    }
    case AMF3_STRING: {
        span_t s;
        int from_ref;
        rc = read_str(d, &s, &from_ref);
        if (rc == 0 && from_ref)
            rc = sl__amf_charge(d->lim, s.len);
        if (rc)
            return rc;
        v = sl__amf_new_bytes(SL_AMF_STRING, s.ptr, s.len);
        break;
    }
    case AMF3_XML_DOC:
    case AMF3_XML:
        return dec_blob(d, marker, SL_AMF_XML, out);
    case AMF3_BYTEARRAY:
        return dec_blob(d, marker, SL_AMF_BYTEARRAY, out);
    case AMF3_DATE:
        return dec_date(d, out);
    case AMF3_ARRAY:
        return dec_array(d, out);
    case AMF3_OBJECT:
        return dec_object(d, out);
    default: /* vectors, dictionary, unknown */
        return SL_EPROTO;
    }
    if (!v)
        return SL_ENOMEM;
    *out = v;
    return 0;
}

/*
 * sl__amf3_decode_at: one AMF3 value with fresh reference tables under the
 * caller's limits (the AMF0 avmplus switch lands here). On error *out is
 * NULL, *used is 0 and the tables and partial tree are freed.
 */
int sl__amf3_decode_at(const uint8_t *p, size_t n, size_t *used, sl__amf_limits_t *lim,
                       sl_amf_t **out)
{
    dec3_t d;
    memset(&d, 0, sizeof(d));
    d.p = p;
    d.n = n;
    d.lim = lim;
    int rc = dec3(&d, out);
    *used = rc ? 0 : d.pos;
    for (uint32_t i = 0; i < d.n_traits; i++)
        sl_free(d.traits[i].members);
    sl_free(d.traits);
    sl_free(d.strs);
    sl_free(d.objs);
    return rc;
}

/*
 * sl_amf3_decode: one AMF3 value from p[0..n); contract in amf.h. Errors:
 * SL_EINVAL (bad arguments), SL_EPROTO (short or malformed input, a bad or
 * cyclic reference, externalizable traits, vectors, dictionaries),
 * SL_EDEPTH, SL_ETOOBIG (reference budget), SL_ENOMEM.
 */
int sl_amf3_decode(const uint8_t *p, size_t n, size_t *used, int max_depth, sl_amf_t **out)
{
    sl__amf_limits_t lim;

    if (!used || !out)
        return SL_EINVAL;
    *out = NULL;
    *used = 0;
    if (!p && n)
        return SL_EINVAL;
    int rc = sl__amf_limits_init(&lim, n, max_depth);
    if (rc)
        return rc;
    return sl__amf3_decode_at(p, n, used, &lim, out);
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */
/* ------------------------------------------------------------------------ */

/* v must be <= U29_MAX. */
static int put_u29(sl_wbuf_t *w, uint32_t v)
{
    uint8_t b[4];
    size_t n;

    if (v < 0x80) {
        b[0] = (uint8_t)v;
        n = 1;
    } else if (v < 0x4000) {
        b[0] = (uint8_t)(v >> 7 | 0x80);
        b[1] = (uint8_t)(v & 0x7F);
        n = 2;
    } else if (v < 0x200000) {
        b[0] = (uint8_t)(v >> 14 | 0x80);
        b[1] = (uint8_t)((v >> 7 & 0x7F) | 0x80);
        b[2] = (uint8_t)(v & 0x7F);
        n = 3;
    } else {
        b[0] = (uint8_t)(v >> 22 | 0x80);
        b[1] = (uint8_t)((v >> 15 & 0x7F) | 0x80);
        b[2] = (uint8_t)((v >> 8 & 0x7F) | 0x80);
        b[3] = (uint8_t)v;
        n = 4;
    }
    return sl_wbuf_put(w, b, n);
}

/* An inline UTF-8-vr (also the body of XML and ByteArray): length, bytes. */
static int put_str(sl_wbuf_t *w, const char *s, size_t len)
{
    if (len > LEN_MAX)
        return SL_ETOOBIG;
    int rc = put_u29(w, (uint32_t)len << 1 | 1);
    return rc ? rc : sl_wbuf_put(w, s, len);
}

static int put_double(sl_wbuf_t *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return sl_wbuf_put_be64(w, bits);
}

/* A number that is a 29-bit integer (and not -0) goes out as an integer. */
static int is_int29(double v)
{
    return v >= INT_MIN29 && v <= INT_MAX29 && v == floor(v) && !(v == 0 && signbit(v));
}

static int enc3(sl_wbuf_t *w, const sl_amf_t *v);

/*
 * Objects go out with inline traits. Normally the members are dynamic (as
 * Flash sends anonymous objects); when a key is empty, which the dynamic
 * list cannot carry (the empty key ends it), every member is sealed instead.
 */
static int enc_object(sl_wbuf_t *w, const sl_amf_t *v)
{
    int sealed = 0, rc;
    uint32_t n = v->u.obj.n;

    for (uint32_t i = 0; i < n; i++)
        if (v->u.obj.props[i].key_len == 0)
            sealed = 1;
    if (sealed && n > (U29_MAX >> 4))
        return SL_ETOOBIG;
    rc = sl_wbuf_put_u8(w, AMF3_OBJECT);
    if (rc == 0)
        rc = put_u29(w, sealed ? n << 4 | 0x03 : 0x0B);
    if (rc == 0) {
        const char *cls = v->u.obj.class_name ? v->u.obj.class_name : "";
        rc = put_str(w, cls, strlen(cls));
    }
    for (uint32_t i = 0; rc == 0 && sealed && i < n; i++)
        rc = put_str(w, v->u.obj.props[i].key, v->u.obj.props[i].key_len);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        if (!sealed)
            rc = put_str(w, v->u.obj.props[i].key, v->u.obj.props[i].key_len);
        if (rc == 0)
            rc = enc3(w, v->u.obj.props[i].val);
    }
    if (rc == 0 && !sealed)
        rc = put_u29(w, 0x01); /* the empty key */
    return rc;
}

static int enc3(sl_wbuf_t *w, const sl_amf_t *v)
{
    int rc;

    if (!v)
        return SL_EINVAL;
    switch (v->type) {
    case SL_AMF_UNDEFINED:
        return sl_wbuf_put_u8(w, AMF3_UNDEFINED);
    case SL_AMF_NULL:
        return sl_wbuf_put_u8(w, AMF3_NULL);
    case SL_AMF_BOOLEAN:
        return sl_wbuf_put_u8(w, v->u.boolean ? AMF3_TRUE : AMF3_FALSE);
    case SL_AMF_NUMBER:
        if (is_int29(v->u.num)) {
            rc = sl_wbuf_put_u8(w, AMF3_INTEGER);
            return rc ? rc : put_u29(w, (uint32_t)(int32_t)v->u.num & U29_MAX);
        }
        rc = sl_wbuf_put_u8(w, AMF3_DOUBLE);
        return rc ? rc : put_double(w, v->u.num);
    case SL_AMF_STRING:
    case SL_AMF_XML:
    case SL_AMF_BYTEARRAY:
        rc = sl_wbuf_put_u8(w, v->type == SL_AMF_STRING ? AMF3_STRING
                               : v->type == SL_AMF_XML  ? AMF3_XML_DOC
                                                        : AMF3_BYTEARRAY);
        return rc ? rc : put_str(w, v->u.str.ptr, v->u.str.len);
    case SL_AMF_DATE:
        rc = sl_wbuf_put_u8(w, AMF3_DATE);
        if (rc == 0)
            rc = put_u29(w, 0x01);
        return rc ? rc : put_double(w, v->u.num);
    case SL_AMF_OBJECT:
        return enc_object(w, v);
    case SL_AMF_ECMA_ARRAY:
        /* All members associative, no dense part. */
        rc = sl_wbuf_put_u8(w, AMF3_ARRAY);
        if (rc == 0)
            rc = put_u29(w, 0x01);
        for (uint32_t i = 0; rc == 0 && i < v->u.obj.n; i++) {
            const sl_amf_prop_t *pr = &v->u.obj.props[i];
            if (pr->key_len == 0)
                return SL_EINVAL; /* an associative part cannot carry "" */
            rc = put_str(w, pr->key, pr->key_len);
            if (rc == 0)
                rc = enc3(w, pr->val);
        }
        return rc ? rc : put_u29(w, 0x01);
    case SL_AMF_STRICT_ARRAY:
        if (v->u.arr.n > LEN_MAX)
            return SL_ETOOBIG;
        rc = sl_wbuf_put_u8(w, AMF3_ARRAY);
        if (rc == 0)
            rc = put_u29(w, v->u.arr.n << 1 | 1);
        if (rc == 0)
            rc = put_u29(w, 0x01); /* no associative part */
        for (uint32_t i = 0; rc == 0 && i < v->u.arr.n; i++)
            rc = enc3(w, v->u.arr.items[i]);
        return rc;
    }
    return SL_EINVAL;
}

/*
 * sl_amf3_encode: appends v as AMF3 with every string, object and trait
 * inline. Numbers that are 29-bit integers go out as integers, XML as
 * XMLDocument, objects as described at enc_object. Returns 0, SL_EINVAL
 * (NULL or malformed tree, ECMA array with an empty key), SL_ETOOBIG
 * (a length over AMF3's 2^28-1, or the builder's cap) or SL_ENOMEM; on
 * error w is left as it was. v is borrowed.
 */
int sl_amf3_encode(sl_wbuf_t *w, const sl_amf_t *v)
{
    if (!w)
        return SL_EINVAL;
    size_t mark = w->len;
    int rc = enc3(w, v);
    if (rc)
        w->len = mark;
    return rc;
}
