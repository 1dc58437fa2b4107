/*
 * App and room lifetimes (sl_session_set_app, sl_session_unregister in
 * src/app/core.c): the first session in an app emits app_start, the first
 * in a room (a scope below an app) room_start, outermost first; the last to
 * leave emits room_stop then app_stop, innermost first; rooms nest
 * ("live/a/b" starts "live/a" too) and are counted with the sessions below
 * them; a session that changes its app leaves the old scopes first; every
 * event names the scope in `app` and the session that caused it. Nothing
 * is left allocated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "app/core.h"
#include "app/events.h"
#include "base/alloc.h"
#include "builtin_config.h"

static const sl_session_ops_t no_ops = {0};

/* What the listener saw: "type:scope:session;" per scope event, the
 * session named by its index in g_sess (a, b, c, d). */
static char g_seen[1024];
static sl_session_t *g_sess[4];

static char who(const char *id)
{
    for (int i = 0; i < 4; i++)
        if (id && g_sess[i] && strcmp(g_sess[i]->id, id) == 0)
            return (char)('a' + i);
    return '?';
}

static void on_event(const sl_event_t *ev, void *ud)
{
    (void)ud;
    if (ev->type < SL_EV_APP_START)
        return;
    size_t n = strlen(g_seen);
    snprintf(g_seen + n, sizeof g_seen - n, "%s:%s:%c;", sl_event_name(ev->type),
             ev->app ? ev->app : "-", who(ev->session_id));
}

/* Returns what was seen since the last call, and forgets it. */
static const char *seen(void)
{
    static char out[1024];
    snprintf(out, sizeof out, "%s", g_seen);
    g_seen[0] = '\0';
    return out;
}

static void test_app_and_room_lifetimes(void **state)
{
    (void)state;
    int64_t blocks0 = sl_alloc_blocks();
    sl_config_t cfg;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    sl_core_t core;
    assert_int_equal(sl_core_init(&core, NULL, &cfg), 0);
    assert_true(sl_events_subscribe(&core, "test", SL_EV_PHASE_STATE, on_event, NULL) > 0);
    sl_session_t a, b, c, d;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b), memset(&c, 0, sizeof c);
    memset(&d, 0, sizeof d);
    sl_session_register(&core, &a, &no_ops, "rtmp");
    sl_session_register(&core, &b, &no_ops, "rtmp");
    sl_session_register(&core, &c, &no_ops, "hls");
    sl_session_register(&core, &d, &no_ops, "rtmp");
    g_sess[0] = &a, g_sess[1] = &b, g_sess[2] = &c, g_sess[3] = &d;
    g_seen[0] = '\0';

    /* First session in the app: app_start only (no room). */
    assert_int_equal(sl_session_set_app(&a, "live"), 0);
    assert_string_equal(seen(), "app_start:live:a;");
    /* A nested room: the app runs already; both rooms start, outermost first. */
    assert_int_equal(sl_session_set_app(&b, "live/r1/sub"), 0);
    assert_string_equal(seen(), "room_start:live/r1:b;room_start:live/r1/sub:b;");
    /* Another session in the outer room: nothing starts. */
    assert_int_equal(sl_session_set_app(&c, "live/r1"), 0);
    assert_string_equal(seen(), "");
    /* Another app entirely, straight into a room: app then room. */
    assert_int_equal(sl_session_set_app(&d, "other/x"), 0);
    assert_string_equal(seen(), "app_start:other:d;room_start:other/x:d;");

    /* The inner room's only session leaves: the inner room stops, the outer
     * keeps c, the app keeps a. */
    sl_session_unregister(&core, &b);
    assert_string_equal(seen(), "room_stop:live/r1/sub:b;");
    sl_session_unregister(&core, &b); /* twice: counted once */
    assert_string_equal(seen(), "");
    /* The app's plain session leaves: c still holds the app through its room. */
    sl_session_unregister(&core, &a);
    assert_string_equal(seen(), "");
    /* A session moving to another scope leaves the old ones first. */
    assert_int_equal(sl_session_set_app(&d, "live/r2"), 0);
    assert_string_equal(seen(), "room_stop:other/x:d;app_stop:other:d;room_start:live/r2:d;");
    /* The last sessions leave: innermost first, the app last. */
    sl_session_unregister(&core, &c);
    assert_string_equal(seen(), "room_stop:live/r1:c;");
    sl_session_unregister(&core, &d);
    assert_string_equal(seen(), "room_stop:live/r2:d;app_stop:live:d;");
    assert_int_equal(core.scopes.n, 0);

    /* Clearing the app leaves too, and a session without a core counts nowhere. */
    sl_session_register(&core, &a, &no_ops, "rtmp");
    assert_int_equal(sl_session_set_app(&a, "live"), 0);
    assert_int_equal(sl_session_set_app(&a, NULL), 0);
    assert_string_equal(seen(), "app_start:live:a;app_stop:live:a;");
    sl_session_unregister(&core, &a);
    sl_session_t loose;
    memset(&loose, 0, sizeof loose);
    assert_int_equal(sl_session_set_app(&loose, "live"), 0);
    assert_string_equal(seen(), "");
    sl_free(loose.app);

    sl_events_cleanup(&core);
    sl_core_cleanup(&core);
    sl_config_cleanup(&cfg);
    assert_int_equal(sl_alloc_blocks(), blocks0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_and_room_lifetimes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
