/*
 * The "server" service (src/app/services.h): what the process itself
 * (main.c) offers to the other parts, registered by main once the loop
 * runs. Today: reload the configuration, which the Server API exposes as
 * POST /api/v1/server/reload. Looked up by name, so that the API does not
 * depend on main and the core grows no field for it.
 *
 * Version 1.0. Append only (see services.h).
 */
#ifndef SL_APP_SVC_SERVER_H
#define SL_APP_SVC_SERVER_H

#define SL_SVC_SERVER_NAME "server"
#define SL_SVC_SERVER_MAJOR 1
#define SL_SVC_SERVER_MINOR 0

typedef struct sl_svc_server {
    /**
     * Re-reads the configuration file and environment overrides that the
     * process started with, checks it completely, and applies it (see
     * main.c reload). On return *out_json holds a JSON object text
     * (sl_malloc'd; the caller sl_frees it; may be NULL on ENOMEM):
     *  - 0: applied; {"changes": n, "apps_added": [...], "apps_removed":
     *    [...], "apps_changed": [...], "keys_changed": [...],
     *    "restart_required": [...]} (keys as "section.key" or
     *    "apps.<name>.<key>"; restart_required lists the changed keys that
     *    keep their running value until a restart);
     *  - SL_EINVAL: the new configuration has problems and nothing changed;
     *    {"problems": ["file:line: message", ...]};
     *  - SL_EBUSY: the server is shutting down; SL_ENOMEM.
     * Loop thread only.
     */
    int (*reload)(void *ud, char **out_json);
} sl_svc_server_t;

#endif
