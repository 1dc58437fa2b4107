/*
 * A string-keyed hash map (open addressing, linear probing, power-of-two
 * capacity). Keys are copied into the map; values are opaque pointers the
 * map does not own. Used for the stream registry and other name lookups
 * that are far from the per-frame path.
 */
#ifndef SL_BASE_MAP_H
#define SL_BASE_MAP_H

#include <stddef.h>

typedef struct sl_map_entry {
    char *key;  /* owned copy, NULL = empty slot */
    void *val;  /* borrowed */
    int tomb;   /* 1 = deleted slot (keeps probe chains intact) */
} sl_map_entry_t;

typedef struct sl_map {
    sl_map_entry_t *slots; /* owned */
    size_t cap;            /* power of two, or 0 */
    size_t n;              /* live entries */
    size_t used;           /* live + tombstones */
} sl_map_t;

void sl_map_init(sl_map_t *m);
/** Frees the slots and key copies (values are untouched). */
void sl_map_cleanup(sl_map_t *m);
/** Value for key or NULL. */
void *sl_map_get(const sl_map_t *m, const char *key);
/** Inserts or replaces. 0 or SL_ENOMEM. */
int sl_map_set(sl_map_t *m, const char *key, void *val);
/** Removes key; returns its value or NULL. */
void *sl_map_del(sl_map_t *m, const char *key);
/**
 * Iteration: *pos starts at 0; returns the next live entry or NULL at the
 * end. The map must not be modified during iteration.
 */
sl_map_entry_t *sl_map_next(const sl_map_t *m, size_t *pos);

#endif
