/*
 * The table of built-in modules (see module.h). Order matters: admission
 * checks register in their own priority order, but event listeners that
 * must see an event before others (none yet) would be listed first.
 */
#include <stddef.h>

#include "modules/module.h"

const sl_module_t *const sl_builtin_modules[] = {
    NULL,
};
