/*
 * Exec hooks, the command-line rules users read in
 * docs/integration/exec-hooks.md: splitting on blanks with double quotes
 * and their two escapes, {placeholder} substitution (unknown braces kept),
 * quoting for /bin/sh, and allocation failure at every step leaving
 * nothing behind. Spawning, timeouts and output capture are exercised end
 * to end by tests/e2e/test_exec_hooks.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "modules/exec_hooks/exec_hooks.h"
#include "sluice/errors.h"

/* Splits cmd and checks the arguments against want (NULL-terminated). */
static void check_split(const char *cmd, const char *const *want)
{
    char **argv = NULL;
    size_t argc = 0;
    assert_int_equal(sl__exec_split(cmd, &argv, &argc), 0);
    size_t n = 0;
    while (want[n])
        n++;
    assert_int_equal(argc, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(argv[i], want[i]);
    assert_null(argv[n]);
    sl__exec_argv_free(argv);
}

static void test_split(void **state)
{
    (void)state;
    check_split("ffmpeg -y -i in.flv", (const char *const[]){"ffmpeg", "-y", "-i", "in.flv", NULL});
    check_split("  a \t b   c  ", (const char *const[]){"a", "b", "c", NULL});
    check_split("echo \"hello world\" x", (const char *const[]){"echo", "hello world", "x", NULL});
    check_split("x\"a b\"y", (const char *const[]){"xa by", NULL});
    check_split("a \"\" b", (const char *const[]){"a", "", "b", NULL});
    check_split("\"say \\\"hi\\\"\" \"back\\\\slash\"",
                (const char *const[]){"say \"hi\"", "back\\slash", NULL});
    /* Outside quotes, backslashes and single quotes are ordinary. */
    check_split("a\\b 'c d'", (const char *const[]){"a\\b", "'c", "d'", NULL});
    /* Inside quotes, other backslashes stay. */
    check_split("\"a\\nb\"", (const char *const[]){"a\\nb", NULL});
    check_split("-vf \"scale=320:-1,fps=1\"", (const char *const[]){"-vf", "scale=320:-1,fps=1", NULL});

    char **argv = (char **)1;
    size_t argc = 9;
    assert_int_equal(sl__exec_split("echo \"open", &argv, &argc), SL_EINVAL);
    assert_null(argv);
    assert_int_equal(argc, 0);
    assert_int_equal(sl__exec_split("   ", &argv, &argc), SL_EINVAL);
    assert_int_equal(sl__exec_split("", &argv, &argc), SL_EINVAL);
    assert_int_equal(sl__exec_split(NULL, &argv, &argc), SL_EINVAL);
}

static const sl_exec_var_t vars[] = {
    {"app", "live/room1"},
    {"stream", "cam 1"},
    {"name", "live_room1_cam 1"},
    {"data_dir", "/srv/data"},
    {"rtmp_port", "1935"},
    {"path", ""},
    {"evil", "x'; rm -rf / #"},
};
#define N_VARS_T (sizeof vars / sizeof vars[0])

static void check_subst(const char *tmpl, int shell, const char *want)
{
    char *s = sl__exec_substitute(tmpl, vars, N_VARS_T, shell);
    assert_non_null(s);
    assert_string_equal(s, want);
    sl_free(s);
}

static void test_substitute(void **state)
{
    (void)state;
    check_subst("rtmp://127.0.0.1:{rtmp_port}/{app}/{stream}", 0,
                "rtmp://127.0.0.1:1935/live/room1/cam 1");
    check_subst("{data_dir}/{name}.jpg", 0, "/srv/data/live_room1_cam 1.jpg");
    check_subst("{app}{stream}", 0, "live/room1cam 1");
    check_subst("[{path}]", 0, "[]");
    /* Anything that is not a known placeholder stays as written. */
    check_subst("{\"json\": {unknown}} {} { {app", 0, "{\"json\": {unknown}} {} { {app");
    check_subst("{{app}}", 0, "{live/room1}");
    check_subst("", 0, "");
    /* Shell mode: every value is one single-quoted word. */
    check_subst("echo {stream} > {data_dir}/{name}.txt", 1,
                "echo 'cam 1' > '/srv/data'/'live_room1_cam 1'.txt");
    check_subst("echo {evil}", 1, "echo 'x'\\''; rm -rf / #'");
    check_subst("echo {path}", 1, "echo ''");
}

/* Values that would start an argument with '-' are detected (issue 11). */
static void test_option_like(void **state)
{
    (void)state;
    const sl_exec_var_t v[] = {{"stream", "-rf"}, {"app", "live"}, {"q", "--output=/etc/x"},
                               {"empty", ""}};
    const char *name = NULL;
    assert_true(sl__exec_option_like("{stream}", v, 4, 0, &name));
    assert_string_equal(name, "stream");
    assert_true(sl__exec_option_like("{q}", v, 4, 0, &name));
    assert_string_equal(name, "q");
    /* Inside an argument, after the template's own text: a value, not an option. */
    assert_false(sl__exec_option_like("--name={stream}", v, 4, 0, NULL));
    assert_false(sl__exec_option_like("x{stream}", v, 4, 0, NULL));
    assert_false(sl__exec_option_like("{app}{stream}", v, 4, 0, NULL));
    assert_false(sl__exec_option_like("{app}", v, 4, 0, NULL));
    assert_false(sl__exec_option_like("{empty}", v, 4, 0, NULL));
    assert_false(sl__exec_option_like("{unknown}", v, 4, 0, NULL));
    /* argv mode: a blank inside one argument is not a word start. */
    assert_false(sl__exec_option_like("a {stream}", v, 4, 0, NULL));
    /* Shell mode: any word start, quoted or not. */
    assert_true(sl__exec_option_like("rm {stream}", v, 4, 1, NULL));
    assert_true(sl__exec_option_like("rm \"{stream}\"", v, 4, 1, NULL));
    assert_true(sl__exec_option_like("a;{q}", v, 4, 1, NULL));
    assert_false(sl__exec_option_like("rm ./{stream}", v, 4, 1, NULL));
    assert_false(sl__exec_option_like("rm -- x{stream}", v, 4, 1, NULL));
}

static void test_shell_quote(void **state)
{
    (void)state;
    char *q = sl__exec_shell_quote("it's");
    assert_string_equal(q, "'it'\\''s'");
    sl_free(q);
    q = sl__exec_shell_quote("$(reboot) `x` \"y\"");
    assert_string_equal(q, "'$(reboot) `x` \"y\"'");
    sl_free(q);
    q = sl__exec_shell_quote(NULL);
    assert_string_equal(q, "''");
    sl_free(q);
}

/* The documented thumbnail command, split once and substituted per event. */
static void test_thumbnail_command(void **state)
{
    (void)state;
    char **argv = NULL;
    size_t argc = 0;
    assert_int_equal(sl__exec_split("ffmpeg -y -i rtmp://127.0.0.1:{rtmp_port}/{app}/{stream} "
                                    "-frames:v 1 {data_dir}/{name}.jpg",
                                    &argv, &argc),
                     0);
    assert_int_equal(argc, 7);
    const char *want[] = {"ffmpeg", "-y", "-i", "rtmp://127.0.0.1:1935/live/room1/cam 1",
                          "-frames:v", "1", "/srv/data/live_room1_cam 1.jpg"};
    for (size_t i = 0; i < argc; i++) {
        char *s = sl__exec_substitute(argv[i], vars, N_VARS_T, 0);
        assert_non_null(s);
        assert_string_equal(s, want[i]); /* a value with a space stays one argument */
        sl_free(s);
    }
    sl__exec_argv_free(argv);
}

/* Every allocation failing in turn: an error, and no block left behind. */
static void test_nomem(void **state)
{
    (void)state;
    if (!sl_alloc_fail_at(0, 0))
        skip();
    int64_t blocks = sl_alloc_blocks();
    int saw_ok = 0;
    for (uint64_t n = 1; n < 200 && !saw_ok; n++) {
        char **argv = NULL;
        size_t argc = 0;
        sl_alloc_fail_at(n, 0);
        int rc = sl__exec_split("a \"b c\" d e f g h i j k l m n o p", &argv, &argc);
        sl_alloc_fail_at(0, 0);
        if (rc == 0) {
            saw_ok = 1;
            sl__exec_argv_free(argv);
        } else {
            assert_int_equal(rc, SL_ENOMEM);
            assert_null(argv);
        }
        assert_int_equal(sl_alloc_blocks(), blocks);
    }
    assert_true(saw_ok);
    for (uint64_t n = 1; n < 50; n++) {
        sl_alloc_fail_at(n, 0);
        char *s = sl__exec_substitute("{evil} {app} {stream} {data_dir}", vars, N_VARS_T, 1);
        sl_alloc_fail_at(0, 0);
        sl_free(s);
        assert_int_equal(sl_alloc_blocks(), blocks);
        if (s)
            break;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_substitute),
        cmocka_unit_test(test_option_like),
        cmocka_unit_test(test_shell_quote),
        cmocka_unit_test(test_thumbnail_command),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
