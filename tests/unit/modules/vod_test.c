/*
 * VOD module tests without a server: it registers the "vod" service at
 * start and removes it at stop; it reaches recordings only through the
 * "recorder" service (absent: not found; present: the file it names is
 * tried, the bare name in both formats, and length is the recorder's).
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
#include "app/svc/recorder.h"
#include "app/svc/vod.h"
#include "base/alloc.h"
#include "modules/plugins/plugins.h"
#include "modules/vod/vod.h"
#include "sluice/errors.h"

static int g_file_of_calls;

static int fake_file_of(void *ud, const char *scope, const char *name, int attempt, char *file,
                        size_t cap)
{
    (void)ud;
    g_file_of_calls++;
    if (strstr(name, ".."))
        return SL_EINVAL;
    if (attempt > 1)
        return SL_ENOTFOUND;
    snprintf(file, cap, "/nonexistent/%s/%s.%s", scope, name, attempt == 0 ? "flv" : "mp4");
    return 0;
}

static int fake_length(void *ud, const char *scope, const char *name, uint64_t *ms)
{
    (void)ud;
    (void)scope;
    if (strcmp(name, "known") != 0)
        return SL_ENOTFOUND;
    *ms = 4321;
    return 0;
}

static const sl_svc_recorder_t fake_recorder = {
    .file_of = fake_file_of,
    .length = fake_length,
};

static void test_vod_service(void **state)
{
    (void)state;
    int64_t bytes0 = sl_alloc_bytes();
    sl_core_t core;
    memset(&core, 0, sizeof core);
    static const sl_builtin_t *const only_vod[] = {&sl_vod_builtin, NULL};
    sl_plugins_t *mod = NULL;
    assert_int_equal(sl_plugins_start(&core, NULL, only_vod, &mod), 0);
    void *ud = NULL;
    const sl_svc_vod_t *vod = sl_service_get(&core, SL_SVC_VOD, SL_SVC_VOD_MAJOR, 0, &ud);
    assert_non_null(vod);
    assert_non_null(vod->open);
    assert_non_null(vod->seek);
    assert_non_null(vod->pause);
    assert_non_null(vod->close);

    /* No recorder: nothing to play, no length. */
    void *h = NULL;
    uint64_t ms = 0;
    assert_int_equal(vod->open(ud, "live", "a", 0, NULL, NULL, NULL, &h), SL_ENOTFOUND);
    assert_int_equal(vod->length(ud, "live", "known", &ms), SL_ENOTFOUND);

    /* With a recorder: both formats tried, then not found; bad names refused. */
    assert_int_equal(sl_service_register(&core, SL_SVC_RECORDER, 1, 0, &fake_recorder, NULL), 0);
    g_file_of_calls = 0;
    assert_int_equal(vod->open(ud, "live", "a", 0, NULL, NULL, NULL, &h), SL_ENOTFOUND);
    assert_int_equal(g_file_of_calls, 2);
    assert_null(h);
    assert_int_equal(vod->open(ud, "live", "../x", 0, NULL, NULL, NULL, &h), SL_EINVAL);
    assert_int_equal(vod->length(ud, "live", "known", &ms), 0);
    assert_int_equal(ms, 4321);
    assert_int_equal(vod->length(ud, "live", "other", &ms), SL_ENOTFOUND);

    sl_plugins_stop(mod);
    assert_null(sl_service_get(&core, SL_SVC_VOD, SL_SVC_VOD_MAJOR, 0, NULL));
    sl_plugins_free(mod);
    sl_services_cleanup(&core);
    assert_int_equal(sl_alloc_bytes(), bytes0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vod_service),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
