/*
 * sluice version and plugin ABI version.
 *
 * SL_VERSION_STRING is the release. SL_ABI_MAJOR/MINOR version the plugin
 * interface (include/sluice/plugin.h and include/sluice/host.h): a plugin
 * built against major M and minor m loads into a host with the same major
 * and a minor >= m; the loader (src/app/loader.c) refuses anything else,
 * naming the file, the plugin's ABI and the host's.
 *
 * History (structs only grow by appending; each appended field says from
 * which minor it is valid):
 *   1.0  sl_plugin_t up to admit; sl_host_api_t up to service_get.
 *   1.1  sl_plugin_t.reload; sl_host_api_t.rpc_register/rpc_unregister.
 *   1.2  event types SL_PLUGIN_EV_APP_START, _APP_STOP, _ROOM_START,
 *        _ROOM_STOP (host.h); no struct grew.
 *   1.3  sl_host_api_t.invoke_client; sl_plugin_event_t.method/direction/status.
 *   1.4  event types SL_PLUGIN_EV_PULL_UP, _PULL_DOWN, _PUSH_UP, _PUSH_DOWN
 *        (host.h, modules/restream); no struct grew.
 */
#ifndef SLUICE_VERSION_H
#define SLUICE_VERSION_H

#define SL_VERSION_MAJOR 0
#define SL_VERSION_MINOR 1
#define SL_VERSION_PATCH 0
#define SL_VERSION_STRING "0.1.0"

/** The plugin ABI's major: changes only when a struct or a call changes meaning. */
#define SL_ABI_MAJOR 1
/** The plugin ABI's minor: grows when fields are appended. */
#define SL_ABI_MINOR 4

#endif
