/*
 * The service registry: how one part of sluice reaches another without a
 * typed field on the core and without including its headers (DESIGN.md §2,
 * §5). A provider (a module, a protocol, the API) registers a const table
 * of functions under a name and a version; a user looks it up by name and
 * the version it was written against, like Redis's shared module API.
 *
 * Versions: a service's table is append-only. Its major changes only when
 * a function changes meaning or is removed (never, in practice); its minor
 * grows when functions are appended. A lookup names the major it needs and
 * the lowest minor whose functions it calls; it gets the table only when the
 * majors are equal and the provider's minor is at least that. The table
 * types live in src/app/svc/<name>.h (internal) or include/sluice/services/
 * (public, for plugins).
 *
 * Everything runs on the loop thread. Lookups are cheap (a short linear
 * scan) but users that call a service per frame should look it up once, at
 * start, and again only when they get an SL_ENOTFOUND-like answer: a
 * provider may stop (it unregisters) while users remain.
 */
#ifndef SL_APP_SERVICES_H
#define SL_APP_SERVICES_H

#include <stdint.h>

typedef struct sl_core sl_core_t;

/** The longest service name, in bytes. */
#define SL_SERVICE_NAME_MAX 63

/**
 * Registers the table `api` (borrowed: it must stay valid until
 * unregistered; normally a static const struct) with its state `ud` under
 * name. Returns 0, SL_EBUSY when the name is taken (one provider per
 * name), SL_EINVAL (bad name) or SL_ENOMEM.
 */
int sl_service_register(sl_core_t *core, const char *name, int major, int minor,
                        const void *api, void *ud);
/** Removes the service registered under name with table api (no-op when absent). */
void sl_service_unregister(sl_core_t *core, const char *name, const void *api);
/**
 * Looks up a service: returns its table (borrowed) and its state in *ud (ud
 * may be NULL), or NULL when no provider of that name is running, its major
 * differs or its minor is older than min_minor.
 */
const void *sl_service_get(const sl_core_t *core, const char *name, int major, int min_minor,
                           void **ud);
/**
 * Calls each(arg, name, major, minor) for every registered service in
 * registration order (the API lists them).
 */
void sl_services_each(const sl_core_t *core,
                      void (*each)(void *arg, const char *name, int major, int minor), void *arg);
/** Frees the registry (at shutdown, after every provider stopped). */
void sl_services_cleanup(sl_core_t *core);

#endif
