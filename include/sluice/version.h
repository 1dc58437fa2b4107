/*
 * sluice version and plugin ABI version.
 *
 * SL_VERSION_STRING is the release; SL_ABI_MAJOR/MINOR version the plugin
 * interface (include/sluice/plugin.h): a plugin built against major M and
 * minor m loads into a host with the same major and a minor >= m.
 */
#ifndef SLUICE_VERSION_H
#define SLUICE_VERSION_H

#define SL_VERSION_MAJOR 0
#define SL_VERSION_MINOR 1
#define SL_VERSION_PATCH 0
#define SL_VERSION_STRING "0.1.0"

#define SL_ABI_MAJOR 1
#define SL_ABI_MINOR 0

#endif
