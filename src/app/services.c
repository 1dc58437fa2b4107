/*
 * The service registry (see services.h): a small array in registration
 * order. There are a few dozen services at most and lookups happen at start
 * or per request, never per frame, so a linear scan is the simplest thing
 * that is fast enough.
 */
#include "app/services.h"

#include <string.h>

#include "app/core.h"
#include "base/alloc.h"
#include "sluice/errors.h"

typedef struct service {
    char name[SL_SERVICE_NAME_MAX + 1];
    int major, minor;
    const void *api; /* the provider's table (borrowed) */
    void *ud;        /* the provider's state (borrowed) */
} service_t;

struct sl_services {
    service_t *v;
    size_t n, cap;
};

static service_t *find(const struct sl_services *r, const char *name)
{
    for (size_t i = 0; r && i < r->n; i++)
        if (strcmp(r->v[i].name, name) == 0)
            return &r->v[i];
    return NULL;
}

int sl_service_register(sl_core_t *core, const char *name, int major, int minor,
                        const void *api, void *ud)
{
    if (!name || !name[0] || strlen(name) > SL_SERVICE_NAME_MAX || !api || major < 0 || minor < 0)
        return SL_EINVAL;
    if (!core->services) {
        core->services = sl_calloc(1, sizeof *core->services);
        if (!core->services)
            return SL_ENOMEM;
    }
    struct sl_services *r = core->services;
    if (find(r, name))
        return SL_EBUSY;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        service_t *v = sl_realloc(r->v, cap * sizeof *v);
        if (!v)
            return SL_ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    service_t *s = &r->v[r->n++];
    memset(s, 0, sizeof *s);
    memcpy(s->name, name, strlen(name) + 1);
    s->major = major;
    s->minor = minor;
    s->api = api;
    s->ud = ud;
    return 0;
}

void sl_service_unregister(sl_core_t *core, const char *name, const void *api)
{
    struct sl_services *r = core->services;
    service_t *s = name ? find(r, name) : NULL;
    if (!s || s->api != api)
        return;
    size_t i = (size_t)(s - r->v);
    memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof *s);
    r->n--;
}

const void *sl_service_get(const sl_core_t *core, const char *name, int major, int min_minor,
                           void **ud)
{
    const service_t *s = name ? find(core->services, name) : NULL;
    if (!s || s->major != major || s->minor < min_minor)
        return NULL;
    if (ud)
        *ud = s->ud;
    return s->api;
}

void sl_services_each(const sl_core_t *core,
                      void (*each)(void *arg, const char *name, int major, int minor), void *arg)
{
    const struct sl_services *r = core->services;
    for (size_t i = 0; r && i < r->n; i++)
        each(arg, r->v[i].name, r->v[i].major, r->v[i].minor);
}

void sl_services_cleanup(sl_core_t *core)
{
    if (!core->services)
        return;
    sl_free(core->services->v);
    sl_free(core->services);
    core->services = NULL;
}
