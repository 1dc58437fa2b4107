/*
 * Built-in modules: features that sit on the core's extension points
 * (event bus listeners, admission checks, HTTP routes) rather than inside
 * a protocol. Each is one const struct; main.c starts them in table order
 * after the listeners are up and stops them in reverse order on shutdown.
 *
 * This is the internal form of the plugin interface of DESIGN.md §5: the
 * stable C ABI (include/sluice/plugin.h, dlopen'ed plugins) will wrap the
 * same extension points; built-ins then move onto it unchanged in shape.
 */
#ifndef SL_MODULES_MODULE_H
#define SL_MODULES_MODULE_H

#include "app/core.h"

typedef struct sl_http_server sl_http_server_t;

typedef struct sl_module {
    const char *name;
    /**
     * Starts the module: reads its configuration from core->cfg, registers
     * its listeners/checks/routes (http may be NULL when HTTP is off), and
     * returns its state in *state. A module with nothing configured returns
     * 0 with *state NULL and stays inert. An error aborts startup.
     */
    int (*start)(sl_core_t *core, sl_http_server_t *http, void **state);
    /** Graceful stop (close handles, finish or persist work). May be NULL. */
    void (*stop)(void *state);
    /** Frees the state after the loop has closed the module's handles. May be NULL. */
    void (*free)(void *state);
} sl_module_t;

/** The built-in modules in start order; NULL-terminated. */
extern const sl_module_t *const sl_builtin_modules[];

#endif
