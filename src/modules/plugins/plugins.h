/*
 * The plugins module: the host side of the public plugin ABI
 * (include/sluice/plugin.h, host.h). For every entry of `plugins:` in
 * sluice.yml it loads the shared object through the loader
 * (src/app/loader.c: dlopen, ABI checked both ways), hands it the host API
 * (the function table implemented here, on the core's extension points:
 * event bus, admission, HTTP routes, services, timers, the libuv worker
 * pool), and stops and unloads it at shutdown. It also provides the service
 * "rpc" 1.0 (src/app/svc/rpc.h), the registry of RPC method handlers.
 *
 * Listed last in the module table: plugins start after every built-in
 * module (their listeners and checks come after the built-ins' anyway, in
 * the "plugin" phase) and stop first.
 */
#ifndef SL_MODULES_PLUGINS_H
#define SL_MODULES_PLUGINS_H

#include "modules/module.h"

/** The module (listed in src/modules/modules.c). */
extern const sl_module_t sl_plugins_module;

#endif
