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
 * (0x11) decodes the following AMF3 value. Errors: SL_EAGAIN/SL_EPROTO when
 * the input is short or malformed, SL_EDEPTH past max_depth, SL_ENOMEM.
 * On error *out is NULL and nothing leaks.
 */
int sl_amf0_decode(const uint8_t *p, size_t n, size_t *used, int max_depth, sl_amf_t **out);
/** Decodes one AMF3 value (fresh reference tables). Same contract. */
int sl_amf3_decode(const uint8_t *p, size_t n, size_t *used, int max_depth, sl_amf_t **out);
/**
 * Decodes every AMF0 value in p[0..n) into a new owned array (*vals, with
 * *count entries; free with sl_amf_free_list). Used for whole command and
 * data message bodies. Returns 0 or an error as above.
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

#endif
