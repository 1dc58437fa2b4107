/*
 * Plugin loader tests: the ABI check both ways on hand-made descriptors
 * (same major, minor not newer, size within the minor's bounds, mandatory
 * fields), and sl_plugin_lib_open's refusals for a missing file and for a
 * library without the entry symbol, each with a message that names the
 * file and the host's ABI. The e2e suite (test_plugins.py) loads real
 * plugins built from an installed prefix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "app/loader.h"
#include "sluice/errors.h"
#include "sluice/plugin.h"

static int p_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    (void)api, (void)h;
    *state = NULL;
    return 0;
}
static void p_destroy(void *state) { (void)state; }

static sl_plugin_t good(void)
{
    sl_plugin_t p = {SL_PLUGIN_ABI, .name = "t", .init = p_init, .destroy = p_destroy};
    return p;
}

static void test_abi_check(void **state)
{
    (void)state;
    char why[512];
    char host[32];
    snprintf(host, sizeof host, "host's ABI %d.%d", SL_ABI_MAJOR, SL_ABI_MINOR);
    sl_plugin_t p = good();
    assert_int_equal(sl_plugin_abi_check(&p, why, sizeof why), 0);

    p = good(); /* an older minor with its smaller descriptor loads */
    p.abi_minor = 0;
    p.size = SL_PLUGIN_SIZE_1_0;
    assert_int_equal(sl_plugin_abi_check(&p, why, sizeof why), 0);

    p = good(); /* a newer minor is refused */
    p.abi_minor = SL_ABI_MINOR + 1;
    assert_int_equal(sl_plugin_abi_check(&p, why, sizeof why), SL_EINVAL);
    assert_non_null(strstr(why, "newer"));
    assert_non_null(strstr(why, host));

    p = good(); /* another major, either way */
    p.abi_major = SL_ABI_MAJOR + 1;
    assert_int_equal(sl_plugin_abi_check(&p, why, sizeof why), SL_EINVAL);
    assert_non_null(strstr(why, "another major"));
    p.abi_major = SL_ABI_MAJOR - 1;
    assert_int_equal(sl_plugin_abi_check(&p, why, sizeof why), SL_EINVAL);

    p = good(); /* sizes: too small for the minor, larger than the host's */
    p.size = SL_PLUGIN_SIZE_1_0;
    assert_int_equal(sl_plugin_abi_check(&p, why, sizeof why), SL_EINVAL);
    assert_non_null(strstr(why, "declares a descriptor"));
    p.size = sizeof(sl_plugin_t) + 8;
    assert_int_equal(sl_plugin_abi_check(&p, why, sizeof why), SL_EINVAL);

    p = good(); /* mandatory fields */
    p.init = NULL;
    assert_int_equal(sl_plugin_abi_check(&p, why, sizeof why), SL_EINVAL);
    assert_non_null(strstr(why, "'init'"));
    p = good();
    p.destroy = NULL;
    assert_int_equal(sl_plugin_abi_check(&p, why, sizeof why), SL_EINVAL);
    assert_non_null(strstr(why, "'destroy'"));
    p = good();
    p.name = "";
    assert_int_equal(sl_plugin_abi_check(&p, why, sizeof why), SL_EINVAL);
    assert_int_equal(sl_plugin_abi_check(NULL, why, sizeof why), SL_EINVAL);
}

static void test_open_refusals(void **state)
{
    (void)state;
    char why[1024];
    sl_plugin_lib_t lib;
    assert_int_equal(sl_plugin_lib_open("/nonexistent/x.so", &lib, why, sizeof why), SL_ENOTFOUND);
    assert_non_null(strstr(why, "/nonexistent/x.so"));
    assert_non_null(strstr(why, "cannot load"));
    assert_null(lib.handle);
    /* A real shared object that is not a plugin (libc has no sl_plugin_entry). */
    assert_int_equal(sl_plugin_lib_open("libc.so.6", &lib, why, sizeof why), SL_ENOTFOUND);
    assert_non_null(strstr(why, "does not export the symbol sl_plugin_entry"));
    assert_null(lib.handle);
    sl_plugin_lib_close(&lib); /* closing a closed library is a no-op */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abi_check),
        cmocka_unit_test(test_open_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
