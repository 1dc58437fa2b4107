/*
 * The cleaner module: deletes old recordings per app, by age and by disk
 * quota, oldest first, never one being written or waiting for upload, with
 * a record_deleted event for each (see cleaner.c and docs/recording.md).
 */
#ifndef SL_MODULES_CLEANER_CLEANER_H
#define SL_MODULES_CLEANER_CLEANER_H

#include "modules/module.h"

/* The built-in module (modules.c lists it). */
extern const sl_builtin_t sl_cleaner_builtin;

#endif
