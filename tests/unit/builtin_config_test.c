/*
 * Unit tests for the process's list of configuration sections
 * (src/builtin_config.c): every built-in module's section is in it, each
 * once, and every section has a doc line and a name when it has keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "builtin_config.h"
#include "modules/module.h"

/* A module whose section is missing from the list would have no keys at all. */
static void test_every_module_section_listed(void **state)
{
    (void)state;
    size_t n;
    const sl_config_section_t *const *list = sl_builtin_config_sections(&n);
    for (size_t m = 0; sl_builtin_modules[m]; m++) {
        const sl_config_section_t *sec = sl_builtin_modules[m]->config;
        if (!sec)
            continue;
        size_t found = 0;
        for (size_t i = 0; i < n; i++)
            found += list[i] == sec;
        if (found != 1)
            fail_msg("module %s: its section is listed %zu times", sl_builtin_modules[m]->plugin->name,
                     found);
    }
}

/* Each section once, named when it has keys, documented when named. */
static void test_list_well_formed(void **state)
{
    (void)state;
    size_t n;
    const sl_config_section_t *const *list = sl_builtin_config_sections(&n);
    assert_true(n > 3);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++)
            assert_ptr_not_equal(list[i], list[j]);
        if (list[i]->n_slots) {
            assert_non_null(list[i]->name);
            assert_non_null(list[i]->doc);
        }
    }
    sl_config_t cfg;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    for (size_t i = 0; i < n; i++) {
        if (list[i]->n_slots)
            assert_non_null(sl_config_get(&cfg, list[i]));
        if (list[i]->n_app_slots)
            assert_non_null(sl_config_app_get(sl_config_app(&cfg, "live"), list[i]));
    }
    sl_config_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_module_section_listed),
        cmocka_unit_test(test_list_well_formed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
