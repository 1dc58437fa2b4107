/*
 * Admission chain and event bus tests: order by priority then name,
 * allow/decline/deny, pending checks resumed later (and resumed before
 * returning), cancellation suppressing the completion, notes and reasons;
 * event listeners in order, nested emits delivered after the current one,
 * unsubscribe during delivery.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "app/admission.h"
#include "app/core.h"
#include "app/events.h"
#include "base/alloc.h"
#include "sluice/errors.h"
#include "builtin_config.h"

static char trace[256];

typedef struct {
    const char *tag;
    int answer;          /* what the check returns */
    sl_admit_t *held;    /* pending admission */
    int resume_inline;   /* resume before returning SL_EPENDING */
} chk_t;

static int check_cb(sl_admit_t *a, void *ud)
{
    chk_t *c = ud;
    strcat(trace, c->tag);
    if (c->answer == SL_EDENIED)
        sl_admit_set_reason(a, "nope");
    if (c->answer == SL_EPENDING) {
        c->held = sl_admit_ref(a);
        sl_admit_set_note(a, "url", "http://x");
        if (c->resume_inline) {
            sl_admit_resume(c->held, SL_OK, NULL);
            c->held = NULL;
        }
    }
    return c->answer;
}

static int done_calls, done_result;
static char done_reason[64];
static void done_cb(sl_admit_t *a, int result, const char *reason, void *ud)
{
    (void)ud;
    done_calls++;
    done_result = result;
    snprintf(done_reason, sizeof done_reason, "%s", reason ? reason : "");
    if (!result && sl_admit_note(a, "url"))
        strcat(trace, "+note");
}

static sl_core_t *mkcore(sl_config_t *cfg)
{
    static sl_core_t core;
    sl_config_defaults(cfg);
    sl_core_init(&core, NULL, cfg);
    trace[0] = '\0';
    done_calls = 0;
    done_result = 99;
    return &core;
}

static void test_order_and_deny(void **state)
{
    (void)state;
    sl_config_t cfg;
    sl_core_t *core = mkcore(&cfg);
    chk_t b = {.tag = "B", .answer = SL_EDECLINED}, a = {.tag = "A", .answer = SL_OK};
    chk_t c = {.tag = "C", .answer = SL_EDENIED}, d = {.tag = "D", .answer = SL_OK};
    sl_admit_add_check(core, "b", 10, check_cb, &b);
    sl_admit_add_check(core, "a", 10, check_cb, &a);
    sl_admit_add_check(core, "c", 20, check_cb, &c);
    int id_d = sl_admit_add_check(core, "d", 5, check_cb, &d);
    int n;
    const char *const *names = sl_admit_checks_list(core, &n);
    assert_int_equal(n, 4);
    assert_string_equal(names[0], "d");
    assert_string_equal(names[1], "a");
    sl_session_t s;
    memset(&s, 0, sizeof s);
    sl_admit_req_t req = {.kind = SL_ADMIT_PUBLISH, .app = "live", .stream = "s", .transport = "rtmp"};
    sl_admit_t *h;
    assert_int_equal(sl_admit(core, &s, &req, done_cb, NULL, &h), SL_OK);
    assert_string_equal(trace, "DABC");
    assert_int_equal(done_calls, 1);
    assert_int_equal(done_result, SL_EDENIED);
    assert_string_equal(done_reason, "nope");
    sl_admit_remove_check(core, id_d);
    sl_core_cleanup(core);
    sl_config_cleanup(&cfg);
}

static int skipper_cb(sl_admit_t *a, void *ud)
{
    (void)ud;
    strcat(trace, "K");
    sl_admit_skip_to(a, 300);
    sl_admit_skip_to(a, 100); /* never lowers the mark */
    return SL_OK;
}

/* sl_admit_skip_to: a check vouches for the client; checks of lower phases are passed
 * over (even a denying one), the phase named and later ones still run. */
static void test_skip_to(void **state)
{
    (void)state;
    sl_config_t cfg;
    sl_core_t *core = mkcore(&cfg);
    chk_t deny = {.tag = "X", .answer = SL_EDENIED}, later = {.tag = "L", .answer = SL_OK};
    int vouch = sl_admit_add_check(core, "vouch", SL_ADMIT_PHASE_CLUSTER, skipper_cb, NULL);
    sl_admit_add_check(core, "creds", SL_ADMIT_PHASE_CREDENTIALS, check_cb, &deny);
    sl_admit_add_check(core, "remote", SL_ADMIT_PHASE_REMOTE, check_cb, &deny);
    sl_admit_add_check(core, "plugin", SL_ADMIT_PHASE_PLUGIN, check_cb, &later);
    assert_string_equal(sl_admit_phase_name(SL_ADMIT_PHASE_CLUSTER), "cluster");
    sl_session_t s;
    memset(&s, 0, sizeof s);
    sl_admit_req_t req = {.kind = SL_ADMIT_PLAY, .app = "live", .stream = "s", .transport = "rtmp"};
    sl_admit_t *h;
    assert_int_equal(sl_admit(core, &s, &req, done_cb, NULL, &h), SL_OK);
    assert_string_equal(trace, "KL");
    assert_int_equal(done_result, 0);
    /* the mark is per admission: the next one runs every check */
    trace[0] = '\0';
    sl_admit_remove_check(core, vouch);
    assert_int_equal(sl_admit(core, &s, &req, done_cb, NULL, &h), SL_OK);
    assert_string_equal(trace, "X");
    assert_int_equal(done_result, SL_EDENIED);
    sl_core_cleanup(core);
    sl_config_cleanup(&cfg);
}

static void test_pending(void **state)
{
    (void)state;
    sl_config_t cfg;
    sl_core_t *core = mkcore(&cfg);
    chk_t p = {.tag = "P", .answer = SL_EPENDING}, z = {.tag = "Z", .answer = SL_OK};
    sl_admit_add_check(core, "p", 1, check_cb, &p);
    sl_admit_add_check(core, "z", 2, check_cb, &z);
    sl_session_t s;
    memset(&s, 0, sizeof s);
    sl_admit_req_t req = {.kind = SL_ADMIT_CONNECT, .app = "live", .username = "u"};
    sl_admit_t *h;
    assert_int_equal(sl_admit(core, &s, &req, done_cb, NULL, &h), SL_EPENDING);
    assert_string_equal(sl_admit_request(h)->username, "u");
    assert_int_equal(done_calls, 0);
    sl_admit_resume(p.held, SL_OK, NULL);
    assert_int_equal(done_calls, 1);
    assert_int_equal(done_result, 0);
    assert_string_equal(trace, "PZ+note");
    sl_admit_unref(h);

    /* resumed before returning SL_EPENDING: completes in the same call */
    trace[0] = '\0';
    done_calls = 0;
    p.resume_inline = 1;
    assert_int_equal(sl_admit(core, &s, &req, done_cb, NULL, &h), SL_OK);
    assert_int_equal(done_calls, 1);
    assert_string_equal(trace, "PZ+note");
    p.resume_inline = 0;

    /* cancelled while pending: done never called, no leak */
    done_calls = 0;
    assert_int_equal(sl_admit(core, &s, &req, done_cb, NULL, &h), SL_EPENDING);
    sl_admit_cancel(h);
    assert_null(sl_admit_session(p.held));
    sl_admit_resume(p.held, SL_EDENIED, "late");
    assert_int_equal(done_calls, 0);
    sl_core_cleanup(core);
    sl_config_cleanup(&cfg);
}

static char ev_trace[256];
static sl_core_t *ev_core;
static int unsub_id;
static void ev_a(const sl_event_t *ev, void *ud)
{
    (void)ud;
    char b[32];
    snprintf(b, sizeof b, "A%s ", sl_event_name(ev->type));
    strcat(ev_trace, b);
    if (ev->type == SL_EV_PUBLISH) {
        sl_event_t nested = {.type = SL_EV_PLAY, .stream = "nested"};
        sl_events_emit(ev_core, &nested);
    }
}
static void ev_b(const sl_event_t *ev, void *ud)
{
    (void)ud;
    char b[48];
    snprintf(b, sizeof b, "B%s%s ", sl_event_name(ev->type), ev->stream ? ev->stream : "");
    strcat(ev_trace, b);
    if (ev->type == SL_EV_UNPUBLISH)
        sl_events_unsubscribe(ev_core, unsub_id);
}

static void test_events(void **state)
{
    (void)state;
    sl_config_t cfg;
    ev_core = mkcore(&cfg);
    unsub_id = sl_events_subscribe(ev_core, "b", 5, ev_b, NULL);
    sl_events_subscribe(ev_core, "a", 1, ev_a, NULL);
    sl_event_t e = {.type = SL_EV_PUBLISH, .stream = "s"};
    sl_events_emit(ev_core, &e);
    assert_string_equal(ev_trace, "Apublish Bpublishs Aplay Bplaynested ");
    assert_true(e.id > 0);
    ev_trace[0] = '\0';
    sl_event_t u = {.type = SL_EV_UNPUBLISH};
    sl_events_emit(ev_core, &u);
    sl_events_emit(ev_core, &u);
    assert_string_equal(ev_trace, "Aunpublish Bunpublish Aunpublish ");
    char *json = sl_event_to_json(&e, "node1");
    assert_non_null(json);
    assert_non_null(strstr(json, "\"event\":\"publish\""));
    assert_non_null(strstr(json, "\"node\":\"node1\""));
    sl_free(json);
    assert_int_equal(sl_event_parse("play_stop"), SL_EV_PLAY_STOP);
    assert_int_equal(sl_event_parse("nope"), -1);
    sl_core_cleanup(ev_core);
    sl_config_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_deny),
        cmocka_unit_test(test_pending),
        cmocka_unit_test(test_skip_to),
        cmocka_unit_test(test_events),
    };
    int64_t before = sl_alloc_bytes();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (sl_alloc_bytes() != before) {
        fprintf(stderr, "leak: %lld bytes\n", (long long)(sl_alloc_bytes() - before));
        return 1;
    }
    return rc;
}
