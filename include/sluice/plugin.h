/*
 * The sluice plugin interface: what a shared object exports to be loaded
 * by sluice (docs/plugins.md is the tutorial; this header is the manual).
 *
 * A plugin is data: one const sl_plugin_t, filled with designated
 * initialisers, returned by the one exported function sl_plugin_entry().
 * Build with -fvisibility=hidden; SL_PLUGIN_INIT exports the entry point
 * with SL_EXTERN. Everything the plugin asks of the server goes through the
 * host API (host.h) handed to init, so the plugin links to no sluice
 * symbol:
 *
 *     #include <sluice/plugin.h>
 *
 *     static int init(const sl_host_api_t *api, sl_host_t *h, void **state)
 *     {
 *         api->log(h, SL_PLUGIN_LOG_INFO, "hello");
 *         *state = NULL;
 *         return 0;
 *     }
 *     static void destroy(void *state) { (void)state; }
 *
 *     static const sl_plugin_t plugin = {
 *         SL_PLUGIN_ABI,
 *         .name = "hello", .version = "1.0",
 *         .init = init, .destroy = destroy,
 *     };
 *     SL_PLUGIN_INIT(plugin)
 *
 *     cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags sluice-plugin) \
 *        -o hello.so hello.c
 *
 * Loading (sluice.yml `plugins:`): dlopen(RTLD_NOW | RTLD_LOCAL), then
 * sl_plugin_entry(), then the ABI check both ways: the plugin's abi_major
 * must equal the host's, its abi_minor must not be newer than the host's,
 * its size must cover every field of its minor and not exceed the host's
 * struct, name, init and destroy must be set. Anything else is refused
 * loudly (the log names the file, the plugin's ABI and the host's) and the
 * server does not start; `sluice --check-config` reports the same.
 *
 * Lifecycle, all on the loop thread: init (once, after the built-in
 * modules started; register routes, RPC methods, timers here; an error
 * aborts startup) -> events, admission checks, routes... -> stop (the
 * server is shutting down: close what you opened; the host has already
 * stopped your timers and removed your listeners) -> destroy (after the
 * loop closed every handle and every queued work item finished: free the
 * state) -> dlclose.
 *
 * ABI rules: this struct and every struct of host.h only grow, by
 * appending fields marked "valid from ABI 1.x"; values of enums are never
 * renumbered. A host fills fields a plugin did not know as absent (NULL).
 */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/errors.h"
#include "sluice/host.h"
#include "sluice/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Marks a symbol exported from a plugin built with -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define SL_EXTERN __attribute__((visibility("default")))
#else
#define SL_EXTERN
#endif

/** The name of the one symbol a plugin exports (a function returning its descriptor). */
#define SL_PLUGIN_ENTRY_SYMBOL "sl_plugin_entry"

/**
 * The plugin descriptor. Keep it `static const` in the plugin; the host
 * copies what it needs and never writes to it.
 */
typedef struct sl_plugin {
    int abi_major;           /**< SL_ABI_MAJOR the plugin was built against */
    int abi_minor;           /**< SL_ABI_MINOR the plugin was built against */
    size_t size;             /**< sizeof(sl_plugin_t) as the plugin saw it */
    const char *name;        /**< short name for logs ("hello"); mandatory */
    const char *version;     /**< the plugin's own version, free text; may be NULL */
    const char *description; /**< one line; may be NULL */

    /**
     * Mandatory. Starts the plugin: read settings (api->setting), register
     * routes and RPC methods, start timers. api and h stay valid until
     * destroy returns. Store the plugin's state in *state (it is passed to
     * every callback below). Return 0, or a negative SL_E* to refuse to
     * start (the server then exits with that reason); after a failed init
     * neither stop nor destroy is called, so free what init allocated.
     */
    int (*init)(const sl_host_api_t *api, sl_host_t *h, void **state);
    /**
     * Optional. The server is stopping: close connections and files, stop
     * anything that would keep the loop alive. Timers, event and admission
     * listeners and RPC methods of the plugin are already removed.
     */
    void (*stop)(void *state);
    /** Mandatory. Frees the state; nothing of the plugin runs afterwards. */
    void (*destroy)(void *state);
    /**
     * Optional. Called for every event of an app the plugin serves, after
     * the built-in listeners (phase "plugin"). Must not block. Ignore types
     * you do not know: new ones are appended (from ABI 1.2: app_start,
     * app_stop, room_start, room_stop, delivered to plugins of any minor).
     */
    void (*on_event)(void *state, const sl_plugin_event_t *ev);
    /**
     * Optional. An admission check (connect, publish, play) for an app the
     * plugin serves, after the built-in checks. Return SL_OK (allow; the
     * next check runs), SL_EDECLINED (no opinion), SL_EDENIED (after
     * api->admission_set_reason) or SL_EPENDING (after
     * api->admission_hold; answer later with api->admission_resume).
     */
    int (*admit)(void *state, sl_admission_t *a);

    /* ---- valid from ABI 1.1 ---- */

    /**
     * Optional. The configuration was reloaded: settings may have changed
     * (read them again). 0 keeps the plugin; a negative SL_E* says it
     * cannot follow without a restart (the host logs it). NULL: the plugin
     * does not reload.
     */
    int (*reload)(void *state);
} sl_plugin_t;

/** The size of sl_plugin_t in ABI 1.0 (every field before reload). */
#define SL_PLUGIN_SIZE_1_0 (offsetof(sl_plugin_t, reload))
/**
 * The size of sl_plugin_t in ABI 1.1 (through reload). ABI 1.2 added event
 * types (app/room start and stop, host.h), no descriptor field; ABI 1.3
 * added a host call (invoke_client), no descriptor field either.
 */
#define SL_PLUGIN_SIZE_1_1 (offsetof(sl_plugin_t, reload) + sizeof(int (*)(void *)))

/**
 * The first three fields of a descriptor, for designated initialisers:
 * `static const sl_plugin_t p = { SL_PLUGIN_ABI, .name = ... };`
 */
#define SL_PLUGIN_ABI .abi_major = SL_ABI_MAJOR, .abi_minor = SL_ABI_MINOR, \
                      .size = sizeof(sl_plugin_t)

/** The entry point's type. */
typedef const sl_plugin_t *(*sl_plugin_entry_fn)(void);

/**
 * Defines and exports the entry point returning desc (a static const
 * sl_plugin_t). Use once per plugin, at file scope.
 */
#define SL_PLUGIN_INIT(desc)                                   \
    SL_EXTERN const sl_plugin_t *sl_plugin_entry(void);        \
    SL_EXTERN const sl_plugin_t *sl_plugin_entry(void) { return &(desc); }

#ifdef __cplusplus
}
#endif
#endif
