/*
 * Intrusive doubly linked list (circular, with a sentinel head), in the
 * style of the Linux kernel and libuv's queue.h. Nodes are embedded in the
 * objects they link, so linking and unlinking never allocate.
 */
#ifndef SL_BASE_LIST_H
#define SL_BASE_LIST_H

#include <stddef.h>

typedef struct sl_list {
    struct sl_list *prev, *next;
} sl_list_t;

/** Makes an empty list head (or an unlinked node). */
static inline void sl_list_init(sl_list_t *h) { h->prev = h->next = h; }
static inline int sl_list_empty(const sl_list_t *h) { return h->next == h; }
/** Appends n at the tail of h. n must be unlinked. */
static inline void sl_list_push_back(sl_list_t *h, sl_list_t *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}
/** Unlinks n and leaves it as an empty (self-linked) node: unlinking twice is safe. */
static inline void sl_list_remove(sl_list_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}
/** True when n is currently in some list. */
static inline int sl_list_linked(const sl_list_t *n) { return n->next != n; }

#define sl_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
/* Iterates safely: the current node may be removed inside the body. */
#define sl_list_foreach_safe(it, nx, head) \
    for ((it) = (head)->next, (nx) = (it)->next; (it) != (head); (it) = (nx), (nx) = (it)->next)

#endif
