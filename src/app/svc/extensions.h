/*
 * The service "extensions" 1.0: what the extension host runs (the built-in
 * modules and the plugins of sluice.yml, both sl_plugin_t descriptors run
 * through one path: src/modules/plugins), for listings. The Server API's
 * GET /api/v1/server/plugins reads it.
 *
 *     void *ud;
 *     const sl_svc_extensions_t *x = sl_service_get(core, SL_SVC_EXTENSIONS, 1, 0, &ud);
 *     if (x) x->each(ud, add_one, list);
 *
 * Provided by the host while it runs (registered after the built-ins
 * started, gone at stop). Loop thread; strings are borrowed for the call.
 */
#ifndef SL_APP_SVC_EXTENSIONS_H
#define SL_APP_SVC_EXTENSIONS_H

#define SL_SVC_EXTENSIONS "extensions"
#define SL_SVC_EXTENSIONS_MAJOR 1
#define SL_SVC_EXTENSIONS_MINOR 0

/** One running extension, as listed. */
typedef struct sl_extension_info {
    const char *name;        /* the built-in's name, or the plugin's name in sluice.yml */
    const char *kind;        /* "builtin" or "plugin" */
    const char *version;     /* the descriptor's own version, or NULL */
    const char *description; /* the descriptor's one line, or NULL */
    const char *path;        /* the shared object, NULL for a built-in */
    int abi_major, abi_minor; /* the ABI its descriptor was built against */
} sl_extension_info_t;

typedef struct sl_svc_extensions {
    /**
     * Calls each(arg, info) for every extension whose init succeeded, in
     * start order (built-ins in table order, then plugins in file order).
     */
    void (*each)(void *ud, void (*each)(void *arg, const sl_extension_info_t *info), void *arg);
} sl_svc_extensions_t;

#endif
