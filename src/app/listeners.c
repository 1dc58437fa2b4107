/*
 * The listeners table (see listeners.h): a small array on the core, filled
 * at start by the protocols and read by whoever reports addresses. A
 * handful of entries: a linear scan.
 */
#include "app/listeners.h"

#include <stdio.h>
#include <string.h>

#include "app/core.h"
#include "base/alloc.h"
#include "sluice/errors.h"

struct sl_listeners {
    sl_listener_info_t *v;
    size_t n, cap;
};

static sl_listener_info_t *find(const struct sl_listeners *t, const char *name, int tls)
{
    for (size_t i = 0; t && i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0 && t->v[i].tls == !!tls)
            return &t->v[i];
    return NULL;
}

int sl_listeners_announce(sl_core_t *core, const char *name, const char *bind, int port, int tls,
                         int udp)
{
    if (!name || !name[0] || strlen(name) > SL_LISTENER_NAME_MAX || port < 0 || port > 65535)
        return SL_EINVAL;
    if (!core->listeners && !(core->listeners = sl_calloc(1, sizeof *core->listeners)))
        return SL_ENOMEM;
    struct sl_listeners *t = core->listeners;
    sl_listener_info_t *l = find(t, name, tls);
    if (!l) {
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 8;
            sl_listener_info_t *v = sl_realloc(t->v, cap * sizeof *v);
            if (!v)
                return SL_ENOMEM;
            t->v = v;
            t->cap = cap;
        }
        l = &t->v[t->n++];
    }
    memset(l, 0, sizeof *l);
    snprintf(l->name, sizeof l->name, "%s", name);
    snprintf(l->bind, sizeof l->bind, "%s", bind ? bind : "");
    l->port = port;
    l->tls = !!tls;
    l->udp = !!udp;
    return 0;
}

int sl_listeners_port(const sl_core_t *core, const char *name, int tls)
{
    const sl_listener_info_t *l = name ? find(core->listeners, name, tls) : NULL;
    return l ? l->port : -1;
}

void sl_listeners_each(const sl_core_t *core,
                       void (*each)(void *arg, const sl_listener_info_t *info), void *arg)
{
    const struct sl_listeners *t = core->listeners;
    for (size_t i = 0; t && i < t->n; i++)
        each(arg, &t->v[i]);
}

void sl_listeners_cleanup(sl_core_t *core)
{
    if (!core->listeners)
        return;
    sl_free(core->listeners->v);
    sl_free(core->listeners);
    core->listeners = NULL;
}
