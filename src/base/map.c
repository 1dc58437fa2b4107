/*
 * String hash map (see map.h): FNV-1a hashing, linear probing, growth at
 * 70% load counting tombstones.
 */
#include "base/map.h"

#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "sluice/errors.h"

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

void sl_map_init(sl_map_t *m) { memset(m, 0, sizeof(*m)); }

void sl_map_cleanup(sl_map_t *m)
{
    for (size_t i = 0; i < m->cap; i++)
        sl_free(m->slots[i].key);
    sl_free(m->slots);
    sl_map_init(m);
}

static sl_map_entry_t *find(const sl_map_t *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
        sl_map_entry_t *e = &m->slots[i];
        if (!e->key && !e->tomb)
            return NULL;
        if (e->key && strcmp(e->key, key) == 0)
            return e;
    }
}

void *sl_map_get(const sl_map_t *m, const char *key)
{
    sl_map_entry_t *e = find(m, key);
    return e ? e->val : NULL;
}

static int grow(sl_map_t *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    sl_map_entry_t *ns = sl_calloc(ncap, sizeof(*ns));
    if (!ns)
        return SL_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        sl_map_entry_t *e = &m->slots[i];
        if (!e->key)
            continue;
        size_t j = hash(e->key) & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j].key = e->key;
        ns[j].val = e->val;
    }
    sl_free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->used = m->n;
    return 0;
}

int sl_map_set(sl_map_t *m, const char *key, void *val)
{
    sl_map_entry_t *e = find(m, key);
    if (e) {
        e->val = val;
        return 0;
    }
    if ((m->used + 1) * 10 > m->cap * 7) {
        int rc = grow(m);
        if (rc)
            return rc;
    }
    char *k = sl_strdup(key);
    if (!k)
        return SL_ENOMEM;
    size_t mask = m->cap - 1;
    size_t i = hash(key) & mask;
    while (m->slots[i].key)
        i = (i + 1) & mask;
    if (!m->slots[i].tomb)
        m->used++;
    m->slots[i].key = k;
    m->slots[i].val = val;
    m->slots[i].tomb = 0;
    m->n++;
    return 0;
}

void *sl_map_del(sl_map_t *m, const char *key)
{
    sl_map_entry_t *e = find(m, key);
    if (!e)
        return NULL;
    void *v = e->val;
    sl_free(e->key);
    e->key = NULL;
    e->val = NULL;
    e->tomb = 1;
    m->n--;
    return v;
}

sl_map_entry_t *sl_map_next(const sl_map_t *m, size_t *pos)
{
    while (*pos < m->cap) {
        sl_map_entry_t *e = &m->slots[(*pos)++];
        if (e->key)
            return e;
    }
    return NULL;
}
