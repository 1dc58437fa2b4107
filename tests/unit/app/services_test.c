/*
 * Service registry tests: register and look up by name and version (same
 * major, minor at least the asked one), one provider per name, unregister
 * only by the owner's table, listing in registration order, and nothing
 * left allocated after cleanup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "app/core.h"
#include "app/services.h"
#include "base/alloc.h"
#include "sluice/errors.h"

typedef struct {
    int (*twice)(int x);
} demo_api_t;

static int twice(int x) { return 2 * x; }
static const demo_api_t demo = {.twice = twice};
static const demo_api_t other = {.twice = twice};

static void each_name(void *arg, const char *name, int major, int minor)
{
    char *out = arg;
    char one[96];
    snprintf(one, sizeof one, "%s:%d.%d;", name, major, minor);
    strcat(out, one);
}

static void test_register_lookup(void **state)
{
    (void)state;
    int64_t bytes0 = sl_alloc_bytes();
    sl_core_t core;
    memset(&core, 0, sizeof core);
    int st = 7;
    assert_int_equal(sl_service_register(&core, "demo", 1, 2, &demo, &st), 0);
    void *ud = NULL;
    const demo_api_t *api = sl_service_get(&core, "demo", 1, 2, &ud);
    assert_non_null(api);
    assert_ptr_equal(ud, &st);
    assert_int_equal(api->twice(21), 42);
    assert_non_null(sl_service_get(&core, "demo", 1, 0, NULL)); /* older minor asked: fine */
    assert_null(sl_service_get(&core, "demo", 1, 3, NULL));     /* newer minor than provided */
    assert_null(sl_service_get(&core, "demo", 2, 0, NULL));     /* another major */
    assert_null(sl_service_get(&core, "absent", 1, 0, NULL));
    assert_int_equal(sl_service_register(&core, "demo", 1, 3, &other, NULL), SL_EBUSY);
    assert_int_equal(sl_service_register(&core, "", 1, 0, &other, NULL), SL_EINVAL);
    assert_int_equal(sl_service_register(&core, "x", 1, 0, NULL, NULL), SL_EINVAL);
    assert_int_equal(sl_service_register(&core, "second", 3, 0, &other, NULL), 0);
    char list[256] = "";
    sl_services_each(&core, each_name, list);
    assert_string_equal(list, "demo:1.2;second:3.0;");
    sl_service_unregister(&core, "demo", &other); /* not the owner's table: no-op */
    assert_non_null(sl_service_get(&core, "demo", 1, 0, NULL));
    sl_service_unregister(&core, "demo", &demo);
    assert_null(sl_service_get(&core, "demo", 1, 0, NULL));
    assert_non_null(sl_service_get(&core, "second", 3, 0, NULL));
    sl_services_cleanup(&core);
    assert_null(core.services);
    assert_int_equal(sl_alloc_bytes(), bytes0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
