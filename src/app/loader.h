/*
 * The plugin loader: opens a plugin's shared object and checks its ABI
 * both ways before anything of it runs (DESIGN.md §5, include/sluice/
 * plugin.h). It knows nothing of what a plugin does: the host side
 * (src/modules/plugins) starts a checked plugin with the host API. Built-in
 * modules are sl_plugin_t descriptors too and pass the same check
 * (sl_plugin_lib_builtin) before the host runs them the same way.
 *
 * Rules, each refused with a message that names the file, the plugin's
 * ABI and the host's:
 *  - the shared object opens with dlopen(RTLD_NOW | RTLD_LOCAL) (every
 *    symbol it needs resolves now, none leaks into the next plugin);
 *  - it exports SL_PLUGIN_ENTRY_SYMBOL, which returns a descriptor;
 *  - the descriptor's abi_major equals SL_ABI_MAJOR and its abi_minor is
 *    not newer than SL_ABI_MINOR;
 *  - its size covers every field of its minor and does not exceed the
 *    host's sizeof(sl_plugin_t) (sizes from a newer minor are refused above);
 *  - name, init and destroy are set.
 */
#ifndef SL_APP_LOADER_H
#define SL_APP_LOADER_H

#include <stddef.h>

#include "sluice/plugin.h"

/* A loaded, checked plugin library. */
typedef struct sl_plugin_lib {
    void *handle;     /* from dlopen; NULL when closed or built in */
    sl_plugin_t desc; /* the plugin's descriptor copied up to its size, the rest zeroed:
                         a field of a newer minor than the plugin's reads as NULL */
} sl_plugin_lib_t;

/**
 * Checks a descriptor (borrowed) against the host's ABI. Returns 0, or
 * SL_EINVAL with a one-line reason in why (without the file name).
 * Pure: unit tests call it on hand-made descriptors.
 */
int sl_plugin_abi_check(const sl_plugin_t *p, char *why, size_t why_cap);

/**
 * Opens path, finds the entry point, checks the ABI and fills *lib. On any
 * failure nothing stays open and why holds a full sentence naming path,
 * the plugin's ABI (when known) and the host's. Returns 0, SL_ENOTFOUND
 * (cannot open / no entry symbol) or SL_EINVAL (ABI refused).
 */
int sl_plugin_lib_open(const char *path, sl_plugin_lib_t *lib, char *why, size_t why_cap);

/**
 * The same check for a built-in module's descriptor (desc, static, linked
 * into the server): sl_plugin_abi_check, then *lib is filled as for a
 * plugin with handle NULL, so that the host runs both kinds alike. Returns
 * 0, or SL_EINVAL with why naming the module (a build mistake).
 */
int sl_plugin_lib_builtin(const sl_plugin_t *desc, sl_plugin_lib_t *lib, char *why,
                          size_t why_cap);

/** Unloads the library (dlclose); no-op when closed. Nothing of the plugin may run afterwards. */
void sl_plugin_lib_close(sl_plugin_lib_t *lib);

#endif
