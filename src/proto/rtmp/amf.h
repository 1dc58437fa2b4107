/*
 * AMF0 and AMF3: the value encodings of RTMP commands and data messages.
 *
 * Commands are not on the media hot path, so values decode into a small
 * tree (sl_amf_t) that the command handlers read with sl_amf_get() and
 * friends. Encoding has two forms: from a tree, and streaming puts straight
 * into a sl_wbuf_t (used for replies, which are built field by field).
 *
 * Limits: every decode takes a max nesting depth (config rtmp.amf_max_depth)
 * and refuses deeper input with SL_EDEPTH; strings and arrays are bounded by
 * the input length (a declared count larger than the bytes left is
 * SL_EPROTO, never an allocation of the declared size).
 *
 * AMF3 appears in two places: a value in an AMF0 stream prefixed by the
 * avmplus marker 0x11 (decoded transparently by sl_amf0_decode), and the
 * AMF3 command/data messages (types 17 and 15), whose body starts with a
 * 0x00 format byte followed by AMF0 values (again with 0x11 switches).
 * AMF3 reference tables (strings, objects, traits) are per value tree.
 *
 * Decisions every caller should know (see amf.c and amf3.c for the why):
 *  - Short input is SL_EPROTO, never SL_EAGAIN: RTMP hands the decoder whole
 *    messages, so a value cut short is a malformed message.
 *  - Object references (AMF0 0x07, AMF3 object/array/date/xml/bytearray
 *    references) are resolved by deep-copying the earlier value, so the
 *    result is always a tree. A reference to a value that is still being
 *    decoded (a cycle) is SL_EPROTO. What references may add is bounded by
 *    SL_AMF_REF_EXPANSION units per input byte plus SL_AMF_REF_SLACK (a unit
 *    is one value or one byte of string/key); past it decoding fails with
 *    SL_ETOOBIG, so a few bytes of input can never expand exponentially.
 *    A copied value must also fit under max_depth where it lands.
 *  - Reference tables are per decode call and never hold more entries than
 *    the input has bytes (every entry is an inline value); AMF0 references
 *    address the first 65536 complex values only (u16 index).
 *  - Decoded objects keep duplicate keys in wire order; sl_amf_get() returns
 *    the last one (a later assignment wins, as in ActionScript).
 *  - Keys and class names containing a NUL byte are refused (SL_EPROTO).
 *  - AMF3 mapping: an array with associative members becomes an ECMA_ARRAY
 *    (the dense items follow under the keys "0", "1", ...); XMLDocument and
 *    XML both become XML; anonymous objects have a NULL class_name.
 *    Externalizable objects, vectors and dictionaries are SL_EPROTO.
 *  - Depth: max_depth is how many containers (objects, arrays) may be open
 *    at once; 0 allows scalars only. Values above SL_AMF_DEPTH_CAP are
 *    treated as SL_AMF_DEPTH_CAP so that recursion stays within the stack.
 */
#ifndef SL_PROTO_RTMP_AMF_H
#define SL_PROTO_RTMP_AMF_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

typedef enum {
    SL_AMF_NUMBER,       /* double (AMF3 integers decode to this too) */
    SL_AMF_BOOLEAN,
    SL_AMF_STRING,       /* AMF0 string/long string, AMF3 string */
    SL_AMF_OBJECT,       /* anonymous or typed object (class name kept) */
    SL_AMF_NULL,
    SL_AMF_UNDEFINED,
    SL_AMF_ECMA_ARRAY,   /* associative array: props like an object */
    SL_AMF_STRICT_ARRAY, /* dense array: items */
    SL_AMF_DATE,         /* ms since epoch */
    SL_AMF_XML,          /* string payload */
    SL_AMF_BYTEARRAY,    /* AMF3 ByteArray: string payload (binary) */
} sl_amf_type_t;

typedef struct sl_amf sl_amf_t;

typedef struct sl_amf_prop {
    char *key;        /* owned, NUL-terminated (keys may not contain NUL) */
    uint32_t key_len;
    sl_amf_t *val;    /* owned */
} sl_amf_prop_t;

struct sl_amf {
    sl_amf_type_t type;
    union {
        double num;                 /* NUMBER, DATE */
        int boolean;                /* BOOLEAN */
        struct {
            char *ptr;              /* owned, NUL-terminated, may hold NULs */
            uint32_t len;
        } str;                      /* STRING, XML, BYTEARRAY */
        struct {
            sl_amf_prop_t *props;   /* owned array */
            uint32_t n, cap;
            char *class_name;       /* typed object class, or NULL */
        } obj;                      /* OBJECT, ECMA_ARRAY */
        struct {
            sl_amf_t **items;       /* owned array of owned values */
            uint32_t n, cap;
        } arr;                      /* STRICT_ARRAY */
    } u;
};

/* Hard ceiling on any max_depth passed to the decoders (stack safety). */
#define SL_AMF_DEPTH_CAP 512
/* Reference expansion budget per decode call: units per input byte, plus slack. */
#define SL_AMF_REF_EXPANSION 8
#define SL_AMF_REF_SLACK 65536

/* ---- building values (each returns a new owned value or NULL on ENOMEM) ---- */
sl_amf_t *sl_amf_new_number(double v);
sl_amf_t *sl_amf_new_bool(int v);
sl_amf_t *sl_amf_new_string(const char *s);            /* copies s */
sl_amf_t *sl_amf_new_stringn(const char *s, size_t n); /* copies n bytes */
sl_amf_t *sl_amf_new_null(void);
sl_amf_t *sl_amf_new_undefined(void);
sl_amf_t *sl_amf_new_object(void);
sl_amf_t *sl_amf_new_ecma_array(void);
sl_amf_t *sl_amf_new_strict_array(void);
/**
 * Sets key on an OBJECT or ECMA_ARRAY, replacing an existing key. Takes
 * ownership of val in every case (freed on error). 0, SL_EINVAL, SL_ENOMEM.
 */
int sl_amf_set(sl_amf_t *obj, const char *key, sl_amf_t *val);
/** Appends to a STRICT_ARRAY; takes ownership of val in every case. */
int sl_amf_push(sl_amf_t *arr, sl_amf_t *val);
/** Deep copy; NULL on ENOMEM. */
sl_amf_t *sl_amf_clone(const sl_amf_t *v);
/** Frees a tree (NULL ignored). */
void sl_amf_free(sl_amf_t *v);

/* ---- reading values (all tolerate NULL and wrong types: they return the fallback) ---- */
/** Property of an OBJECT/ECMA_ARRAY by key; NULL when absent. Borrowed from obj. */
const sl_amf_t *sl_amf_get(const sl_amf_t *obj, const char *key);
/** String content or NULL if v is not a STRING. Borrowed. */
const char *sl_amf_str(const sl_amf_t *v);
/** Number value or fallback. */
double sl_amf_num(const sl_amf_t *v, double fallback);
/** Boolean value (numbers: nonzero) or fallback. */
int sl_amf_bool(const sl_amf_t *v, int fallback);
/** Shorthands: sl_amf_str(sl_amf_get(obj, key)) etc. */
const char *sl_amf_get_str(const sl_amf_t *obj, const char *key);
double sl_amf_get_num(const sl_amf_t *obj, const char *key, double fallback);

/* ---- decoding ---- */
/**
 * Decodes one AMF0 value from p[0..n). On success stores a new owned tree in
 * *out, the bytes consumed in *used, and returns 0. The avmplus marker
 * (0x11) decodes the following AMF3 value. Errors: SL_EPROTO when the input
 * is short or malformed (never SL_EAGAIN, see above), SL_EDEPTH past
 * max_depth, SL_ETOOBIG when references exceed their budget, SL_ENOMEM,
 * SL_EINVAL for NULL pointers or a negative max_depth. p is borrowed for the
 * call; the tree owns copies of everything. On error *out is NULL, *used is
 * 0 and nothing leaks.
 */
int sl_amf0_decode(const uint8_t *p, size_t n, size_t *used, int max_depth, sl_amf_t **out);
/** Decodes one AMF3 value (fresh reference tables). Same contract. */
int sl_amf3_decode(const uint8_t *p, size_t n, size_t *used, int max_depth, sl_amf_t **out);
/**
 * Decodes every AMF0 value in p[0..n) into a new owned array (*vals, with
 * *count entries; free with sl_amf_free_list). Used for whole command and
 * data message bodies. Returns 0 or an error as above. Empty input gives
 * *vals = NULL, *count = 0. Object references may point across values of
 * the same body. Trailing bytes that do not form a value are SL_EPROTO, with
 * one tolerated exception: a stray object-end sequence 00 00 09 as the very
 * last three bytes (some encoders append one after the last value); it is
 * skipped. On error *vals is NULL, *count is 0 and nothing leaks.
 */
int sl_amf0_decode_all(const uint8_t *p, size_t n, int max_depth, sl_amf_t ***vals,
                       size_t *count);
/** Frees an array returned by sl_amf0_decode_all. */
void sl_amf_free_list(sl_amf_t **vals, size_t count);

/* ---- encoding ---- */
/** Encodes a tree as AMF0 (AMF3-only types go out through the 0x11 switch). */
int sl_amf0_encode(sl_wbuf_t *w, const sl_amf_t *v);
/** Encodes a tree as AMF3. */
int sl_amf3_encode(sl_wbuf_t *w, const sl_amf_t *v);
/* Streaming AMF0 puts, for replies built field by field. */
int sl_amf0_put_number(sl_wbuf_t *w, double v);
int sl_amf0_put_bool(sl_wbuf_t *w, int v);
int sl_amf0_put_string(sl_wbuf_t *w, const char *s); /* long string if > 65535 */
int sl_amf0_put_null(sl_wbuf_t *w);
int sl_amf0_put_object_start(sl_wbuf_t *w);
int sl_amf0_put_ecma_start(sl_wbuf_t *w, uint32_t count_hint);
int sl_amf0_put_key(sl_wbuf_t *w, const char *key); /* a property name (u16 length + bytes) */
int sl_amf0_put_object_end(sl_wbuf_t *w);          /* 00 00 09 */
/* key + value in one call */
int sl_amf0_put_prop_string(sl_wbuf_t *w, const char *key, const char *v);
int sl_amf0_put_prop_number(sl_wbuf_t *w, const char *key, double v);
int sl_amf0_put_prop_bool(sl_wbuf_t *w, const char *key, int v);

/* ---- internals shared by amf.c and amf3.c; not for other modules ---- */

/* Limits carried through one decode call (AMF0 and any AMF3 inside it). */
typedef struct sl__amf_limits {
    int depth;       /* containers open around the value being decoded */
    int max_depth;   /* containers that may be open at once */
    uint64_t budget; /* units that references may still produce */
} sl__amf_limits_t;

/** Initialises limits for decoding n input bytes; SL_EINVAL if max_depth < 0. */
int sl__amf_limits_init(sl__amf_limits_t *lim, size_t n, int max_depth);
/**
 * Decodes one AMF3 value from p[0..n) with fresh reference tables, under the
 * caller's limits (depth continues from lim->depth, budget is shared).
 * Contract otherwise as sl_amf3_decode.
 */
int sl__amf3_decode_at(const uint8_t *p, size_t n, size_t *used, sl__amf_limits_t *lim,
                       sl_amf_t **out);
/**
 * Deep-copies v to resolve a reference: charges one unit per value and per
 * string/key byte to lim->budget (SL_ETOOBIG when exhausted) and refuses
 * containers that would sit deeper than lim->max_depth (SL_EDEPTH).
 * On error *out is NULL and nothing leaks.
 */
int sl__amf_clone_ref(const sl_amf_t *v, sl__amf_limits_t *lim, sl_amf_t **out);
/** Charges units to lim->budget; SL_ETOOBIG when it would go negative. */
int sl__amf_charge(sl__amf_limits_t *lim, uint64_t units);
/**
 * Appends key/val to an OBJECT or ECMA_ARRAY without looking for an existing
 * key (decoders keep wire order and duplicates). Copies key[0..key_len),
 * which must hold no NUL. Takes ownership of val in every case.
 * 0, SL_EINVAL (not an object, or too many properties), SL_ENOMEM.
 */
int sl__amf_add_prop(sl_amf_t *obj, const char *key, size_t key_len, sl_amf_t *val);
/**
 * Grows an array of elem-sized entries to hold at least want of them
 * (doubling). arrp points to the array pointer (any T **); it and *cap are
 * updated. 0 or SL_ENOMEM (array unchanged).
 */
int sl__amf_grow(void *arrp, uint32_t *cap, uint32_t want, size_t elem);
/** Makes room for want properties (OBJECT/ECMA) or items (STRICT_ARRAY). */
int sl__amf_reserve(sl_amf_t *v, uint32_t want);
/** New STRING, XML or BYTEARRAY holding a copy of s[0..n); NULL on ENOMEM. */
sl_amf_t *sl__amf_new_bytes(sl_amf_type_t type, const char *s, size_t n);
/** New value of the given type with zeroed payload; NULL on ENOMEM. */
sl_amf_t *sl__amf_new(sl_amf_type_t type);

#endif
