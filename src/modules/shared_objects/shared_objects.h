/*
 * The shared_objects module: Remote Shared Objects per scope, provided to
 * transports and the API as the service "sharedobjects" 1.0
 * (app/svc/sharedobjects.h), persistent ones kept in the store
 * (see shared_objects.c and docs/integration/shared-objects.md).
 */
#ifndef SL_MODULES_SHARED_OBJECTS_SHARED_OBJECTS_H
#define SL_MODULES_SHARED_OBJECTS_SHARED_OBJECTS_H

#include "modules/module.h"

/* The built-in module (modules.c lists it). */
extern const sl_builtin_t sl_shared_objects_builtin;

#endif
