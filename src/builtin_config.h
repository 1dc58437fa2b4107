/*
 * The configuration of this process: every section that the built-in
 * protocols, the API and the built-in modules own, in the order sluice.yml
 * lists them. main.c, the unit tests and the fuzz targets all load through
 * this list, so they see the same keys.
 *
 * It sits at the top of src/ (like main.c) because it names every layer's
 * section; nothing below it includes this header.
 */
#ifndef SL_BUILTIN_CONFIG_H
#define SL_BUILTIN_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "base/config.h"

/**
 * The sections of the process in file order (base's server, log and media
 * among them); sets *n to their number. Static, never freed.
 */
const sl_config_section_t *const *sl_builtin_config_sections(size_t *n);
/**
 * Fills cfg with every default of the built-in sections (sl_config_init
 * with sl_builtin_config_sections()). Same returns as sl_config_init.
 */
int sl_config_defaults(sl_config_t *cfg);
/** Writes the shipped sluice.yml: sl_config_print_yaml of the built-in sections. */
void sl_config_write_yaml(FILE *out);
/** Writes docs/config.md: sl_config_print_markdown of the built-in sections. */
void sl_config_write_markdown(FILE *out);

#endif
