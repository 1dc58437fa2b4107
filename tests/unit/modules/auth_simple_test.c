/*
 * Simple Auth tests: the credentials file format (comments, blanks, CRLF,
 * tabs, duplicates, bad lines), the three password forms (plain,
 * sha256:<salt>:<hex>, crypt(3) bcrypt/yescrypt/sha512-crypt made here
 * with libxcrypt), allocation failures while parsing, and the module on a
 * real loop: connect/publish/play decisions, crypt(3) verified off the
 * loop with the admission pending, the verification cache, auth_protocols,
 * and a reload of the file without restart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/admission.h"
#include "app/core.h"
#include "base/alloc.h"
#include "base/config.h"
#include "modules/plugins/plugins.h"
#include "modules/auth_simple/auth_simple.h"

/* The module under test, started by the host as in the server. */
static const sl_builtin_t *const g_only[] = {&sl_auth_simple_builtin, NULL};
#include "sluice/errors.h"
#include "builtin_config.h"

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static int n_warnings;
static char last_warning[256];
static void on_warn(void *ud, int line, const char *msg)
{
    (void)ud;
    n_warnings++;
    snprintf(last_warning, sizeof last_warning, "%d: %s", line, msg);
}

/* A crypt(3) hash of pw with the given method prefix ("$2b$", "$y$", "$6$"). */
static void make_hash(const char *prefix, const char *pw, char *out, size_t n)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    /* Low cost: these tests verify formats, not strength. */
    unsigned long cost = strcmp(prefix, "$2b$") == 0 ? 4 : 0;
    assert_non_null(crypt_gensalt_rn(prefix, cost, NULL, 0, setting, sizeof setting));
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *h = crypt_r(pw, setting, &cd);
    assert_non_null(h);
    assert_true(h[0] == '$');
    snprintf(out, n, "%s", h);
}

/* "sha256:<salt>:<hex of SHA-256(salt + pw)>" */
static void make_sha256(const char *salt, const char *pw, char *out, size_t n)
{
    unsigned char d[32];
    unsigned int len;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, salt, strlen(salt));
    EVP_DigestUpdate(ctx, pw, strlen(pw));
    EVP_DigestFinal_ex(ctx, d, &len);
    EVP_MD_CTX_free(ctx);
    int o = snprintf(out, n, "sha256:%s:", salt);
    for (int i = 0; i < 32; i++)
        o += snprintf(out + o, n - (size_t)o, "%02x", d[i]);
}

static sl_auth_simple_table_t *parse(const char *text)
{
    sl_auth_simple_table_t *t = NULL;
    n_warnings = 0;
    assert_int_equal(sl_auth_simple_parse(text, strlen(text), on_warn, NULL, &t), 0);
    return t;
}

static int verify(const sl_auth_simple_table_t *t, const char *user, const char *pw)
{
    const sl_auth_simple_user_t *u = sl_auth_simple_find(t, user);
    if (!u)
        return SL_ENOTFOUND;
    int rc = sl_auth_simple_verify_fast(u, pw);
    return rc == SL_EAGAIN ? sl_auth_simple_verify_slow(u, pw) : rc;
}

/* ------------------------------------------------------------------ */
/* the file                                                            */

static void test_parse_format(void **state)
{
    (void)state;
    int64_t blocks = sl_alloc_blocks();
    sl_auth_simple_table_t *t = parse("# Red5 credentials\n"
                                      "\n"
                                      "alice secret\r\n"
                                      "   bob\tpass word with spaces  \n"
                                      "# carol nope\n"
                                      "dave\n"                  /* no password: skipped */
                                      "eve first\n"
                                      "eve second\n"            /* replaces */
                                      "frank sha256:salt:zz\n"  /* bad hex: skipped */
                                      "gina $notahash$\n"       /* plain that starts with $ */
                                      "last pw");               /* no final newline */
    assert_int_equal(sl_auth_simple_table_size(t), 5);
    assert_int_equal(n_warnings, 3);
    assert_int_equal(verify(t, "alice", "secret"), 0);
    assert_int_equal(verify(t, "alice", "secret\r"), SL_EDENIED);
    assert_int_equal(verify(t, "alice", "Secret"), SL_EDENIED);
    assert_int_equal(verify(t, "alice", "secre"), SL_EDENIED);
    assert_int_equal(verify(t, "alice", ""), SL_EDENIED);
    assert_int_equal(verify(t, "bob", "pass word with spaces"), 0);
    assert_int_equal(verify(t, "carol", "nope"), SL_ENOTFOUND);
    assert_int_equal(verify(t, "dave", ""), SL_ENOTFOUND);
    assert_int_equal(verify(t, "eve", "first"), SL_EDENIED);
    assert_int_equal(verify(t, "eve", "second"), 0);
    assert_int_equal(verify(t, "frank", "x"), SL_ENOTFOUND);
    assert_int_equal(verify(t, "gina", "$notahash$"), 0);
    assert_int_equal(verify(t, "last", "pw"), 0);
    assert_int_equal(verify(t, "ALICE", "secret"), SL_ENOTFOUND); /* names are case-sensitive */
    assert_null(sl_auth_simple_any_crypt_user(t));
    sl_auth_simple_table_unref(t);
    assert_int_equal(sl_alloc_blocks(), blocks);
}

static void test_parse_limits(void **state)
{
    (void)state;
    /* An overlong line is skipped, the rest is read. */
    size_t n = SL_AUTH_SIMPLE_MAX_LINE + 100;
    char *text = malloc(n + 64);
    memset(text, 'x', n);
    strcpy(text + n, "\nok pw\n");
    sl_auth_simple_table_t *t = parse(text);
    assert_int_equal(sl_auth_simple_table_size(t), 1);
    assert_int_equal(n_warnings, 1);
    sl_auth_simple_table_unref(t);
    free(text);
    /* An oversized file is refused. */
    assert_int_equal(sl_auth_simple_parse("x", SL_AUTH_SIMPLE_MAX_FILE_BYTES + 1, NULL, NULL, &t),
                     SL_ETOOBIG);
    assert_null(t);
}

static void test_hash_formats(void **state)
{
    (void)state;
    char bcrypt[256], yescrypt[256], sha512[256], sha256[256], text[2048];
    make_hash("$2b$", "b-pass", bcrypt, sizeof bcrypt);
    make_hash("$y$", "y-pass", yescrypt, sizeof yescrypt);
    make_hash("$6$", "s-pass", sha512, sizeof sha512);
    make_sha256("NaCl", "h-pass", sha256, sizeof sha256);
    snprintf(text, sizeof text, "b %s\ny %s\ns %s\nh %s\n", bcrypt, yescrypt, sha512, sha256);
    sl_auth_simple_table_t *t = parse(text);
    assert_int_equal(n_warnings, 0);
    assert_int_equal(sl_auth_simple_user_kind(sl_auth_simple_find(t, "b")), SL_AUTH_PW_CRYPT);
    assert_int_equal(sl_auth_simple_user_kind(sl_auth_simple_find(t, "y")), SL_AUTH_PW_CRYPT);
    assert_int_equal(sl_auth_simple_user_kind(sl_auth_simple_find(t, "s")), SL_AUTH_PW_CRYPT);
    assert_int_equal(sl_auth_simple_user_kind(sl_auth_simple_find(t, "h")), SL_AUTH_PW_SHA256);
    assert_non_null(sl_auth_simple_any_crypt_user(t));

    /* sha256: fast, both ways. */
    assert_int_equal(sl_auth_simple_verify_fast(sl_auth_simple_find(t, "h"), "h-pass"), 0);
    assert_int_equal(sl_auth_simple_verify_fast(sl_auth_simple_find(t, "h"), "h-pas"), SL_EDENIED);
    assert_int_equal(sl_auth_simple_verify_fast(sl_auth_simple_find(t, "h"), "NaClh-pass"), SL_EDENIED);

    /* crypt(3): slow path, then remembered. */
    const char *users[] = {"b", "y", "s"}, *pws[] = {"b-pass", "y-pass", "s-pass"};
    for (int i = 0; i < 3; i++) {
        const sl_auth_simple_user_t *u = sl_auth_simple_find(t, users[i]);
        assert_int_equal(sl_auth_simple_verify_fast(u, pws[i]), SL_EAGAIN);
        assert_int_equal(sl_auth_simple_verify_slow(u, "wrong"), SL_EDENIED);
        assert_int_equal(sl_auth_simple_verify_slow(u, pws[i]), 0);
        sl_auth_simple_remember(u, pws[i]);
        assert_int_equal(sl_auth_simple_verify_fast(u, pws[i]), 0);
        assert_int_equal(sl_auth_simple_verify_fast(u, "wrong"), SL_EAGAIN);
    }
    sl_auth_simple_table_unref(t);

    /* A malformed hash never matches anything, not even itself. */
    t = parse("bad $2b$10$short\n");
    assert_int_equal(verify(t, "bad", "short"), SL_EDENIED);
    assert_int_equal(verify(t, "bad", "$2b$10$short"), SL_EDENIED);
    sl_auth_simple_table_unref(t);
}

static void test_parse_alloc_failures(void **state)
{
    (void)state;
    if (!sl_alloc_fail_at(0, 0))
        skip();
    char bcrypt[256], text[1024];
    make_hash("$2b$", "pw", bcrypt, sizeof bcrypt);
    snprintf(text, sizeof text, "a one\nb sha256:s:%064d\nc %s\nc again\n# x\nd two\n", 0, bcrypt);
    int done = 0;
    for (uint64_t n = 1; n < 500 && !done; n++) {
        int64_t blocks = sl_alloc_blocks();
        uint64_t failed = sl_alloc_failed_count();
        sl_auth_simple_table_t *t = NULL;
        sl_alloc_fail_at(n, 0);
        int rc = sl_auth_simple_parse(text, strlen(text), NULL, NULL, &t);
        sl_alloc_fail_at(0, 0);
        if (rc == 0) {
            assert_non_null(t);
            sl_auth_simple_table_unref(t);
        } else {
            assert_int_equal(rc, SL_ENOMEM);
            assert_null(t);
        }
        assert_int_equal(sl_alloc_blocks(), blocks);
        done = sl_alloc_failed_count() == failed;
    }
    assert_true(done);
}

/* ------------------------------------------------------------------ */
/* the module on a loop                                                */

typedef struct done_rec {
    int calls;
    int result;
    char reason[128];
} done_rec_t;

static void on_admit_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    (void)a;
    done_rec_t *d = ud;
    d->calls++;
    d->result = result;
    snprintf(d->reason, sizeof d->reason, "%s", reason ? reason : "");
}

static uv_loop_t g_loop;
static int64_t g_blocks;
static sl_config_t g_cfg;
static sl_core_t g_core;
static sl_plugins_t *g_state;
static char g_path[256];

static void write_file(const char *text)
{
    /* Write a new file and rename it over the old one, as editors and
     * deployment tools do (the watcher sees the new inode). */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, g_path), 0);
}

static void tick(uv_timer_t *t) { (void)t; }

/* Runs the loop until d->calls or ms pass. */
static int wait_done(done_rec_t *d, uint64_t ms)
{
    uv_timer_t wd;
    uv_timer_init(&g_loop, &wd);
    uv_timer_start(&wd, tick, 10, 10);
    uv_update_time(&g_loop);
    uint64_t end = uv_now(&g_loop) + ms;
    while (!d->calls && uv_now(&g_loop) < end)
        uv_run(&g_loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wd, NULL);
    uv_run(&g_loop, UV_RUN_NOWAIT);
    return d->calls;
}

/* One admission; waits for a pending answer. */
static int admit(sl_admit_kind_t kind, const char *app, const char *transport, const char *user,
                 const char *pw, done_rec_t *d, int *was_pending)
{
    static sl_session_t s;
    memset(&s, 0, sizeof s);
    memset(d, 0, sizeof(*d));
    sl_admit_req_t req = {.kind = kind, .app = app, .stream = kind == SL_ADMIT_CONNECT ? NULL : "s1",
                          .transport = transport, .username = user, .password = pw};
    sl_admit_t *h = NULL;
    int rc = sl_admit(&g_core, &s, &req, on_admit_done, d, &h);
    if (was_pending)
        *was_pending = rc == SL_EPENDING;
    if (rc == SL_EPENDING) {
        assert_int_equal(d->calls, 0);
        assert_true(wait_done(d, 10000));
        sl_admit_unref(h);
    }
    assert_int_equal(d->calls, 1);
    return d->result;
}

static int module_setup(void **state)
{
    (void)state;
    g_blocks = sl_alloc_blocks();
    snprintf(g_path, sizeof g_path, "/tmp/sluice-auth-simple-%d.txt", (int)getpid());
    char bcrypt[256], text[1024];
    make_hash("$2b$", "bpw", bcrypt, sizeof bcrypt);
    snprintf(text, sizeof text, "# users\nalice secret\nbob %s\n", bcrypt);
    write_file(text);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "auth:\n  simple_file: %s\n"
             "apps:\n  live:\n    auth_simple: true\n"
             "  open: {}\n"
             "  rtsponly:\n    auth_simple: true\n    auth_protocols: rtsp, webrtc\n",
             g_path);
    assert_int_equal(sl_config_defaults(&g_cfg), 0);
    assert_int_equal(sl_config_load_string(&g_cfg, yaml, strlen(yaml), "test", NULL, NULL), 0);
    assert_int_equal(uv_loop_init(&g_loop), 0);
    assert_int_equal(sl_core_init(&g_core, &g_loop, &g_cfg), 0);
    assert_int_equal(sl_plugins_start(&g_core, NULL, g_only, &g_state), 0);
    assert_non_null(sl_plugins_state(g_state, "auth_simple"));
    return 0;
}

static int module_teardown(void **state)
{
    (void)state;
    sl_plugins_stop(g_state);
    uv_run(&g_loop, UV_RUN_DEFAULT);
    sl_plugins_free(g_state);
    sl_admit_cleanup(&g_core);
    sl_core_cleanup(&g_core);
    assert_int_equal(uv_loop_close(&g_loop), 0);
    sl_config_cleanup(&g_cfg);
    unlink(g_path);
    assert_int_equal(sl_alloc_blocks(), g_blocks);
    return 0;
}

static void test_module_decisions(void **state)
{
    (void)state;
    done_rec_t d;
    int pending;
    /* connect: no credentials -> in (they may come with the stream name);
     * wrong ones -> out at once. */
    assert_int_equal(admit(SL_ADMIT_CONNECT, "live", "rtmp", NULL, NULL, &d, NULL), 0);
    assert_int_equal(admit(SL_ADMIT_CONNECT, "live", "rtmp", "alice", "bad", &d, NULL), SL_EDENIED);
    assert_string_equal(d.reason, "Invalid credentials.");
    assert_int_equal(admit(SL_ADMIT_CONNECT, "live/room1", "rtmp", "alice", "secret", &d, NULL), 0);
    /* publish/play always need them */
    assert_int_equal(admit(SL_ADMIT_PUBLISH, "live", "rtmp", NULL, NULL, &d, NULL), SL_EDENIED);
    assert_string_equal(d.reason, "Missing credentials.");
    assert_int_equal(admit(SL_ADMIT_PLAY, "live", "rtmp", "alice", "", &d, NULL), SL_EDENIED);
    assert_int_equal(admit(SL_ADMIT_PUBLISH, "live", "rtmp", "alice", "secret", &d, &pending), 0);
    assert_false(pending);
    assert_int_equal(admit(SL_ADMIT_PLAY, "live", "rtsp", "nobody", "secret", &d, &pending), SL_EDENIED);
    /* An unknown user costs a crypt(3) verification like a known one. */
    assert_true(pending);
    assert_string_equal(d.reason, "Invalid credentials.");
    /* bcrypt: verified off the loop, then remembered */
    assert_int_equal(admit(SL_ADMIT_PUBLISH, "live", "rtmp", "bob", "nope", &d, &pending), SL_EDENIED);
    assert_true(pending);
    assert_int_equal(admit(SL_ADMIT_PUBLISH, "live", "rtmp", "bob", "bpw", &d, &pending), 0);
    assert_true(pending);
    assert_int_equal(admit(SL_ADMIT_PLAY, "live", "rtmp", "bob", "bpw", &d, &pending), 0);
    assert_false(pending);
    /* other apps and transports */
    assert_int_equal(admit(SL_ADMIT_PUBLISH, "open", "rtmp", NULL, NULL, &d, NULL), 0);
    assert_int_equal(admit(SL_ADMIT_PUBLISH, "rtsponly", "rtmp", NULL, NULL, &d, NULL), 0);
    assert_int_equal(admit(SL_ADMIT_PUBLISH, "rtsponly", "WebRTC", NULL, NULL, &d, NULL), SL_EDENIED);
}

static void test_module_reload(void **state)
{
    (void)state;
    done_rec_t d;
    assert_int_equal(admit(SL_ADMIT_PUBLISH, "live", "rtmp", "carol", "new", &d, NULL), SL_EDENIED);
    write_file("alice changed\ncarol new\n");
    /* The watcher polls every second; the reload runs off the loop. */
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        done_rec_t tick_d = {0};
        wait_done(&tick_d, 100);
        ok = admit(SL_ADMIT_PUBLISH, "live", "rtmp", "carol", "new", &d, NULL) == 0;
    }
    assert_true(ok);
    assert_int_equal(admit(SL_ADMIT_PUBLISH, "live", "rtmp", "alice", "secret", &d, NULL), SL_EDENIED);
    assert_int_equal(admit(SL_ADMIT_PUBLISH, "live", "rtmp", "alice", "changed", &d, NULL), 0);
    /* A file that disappears keeps the last good table. */
    unlink(g_path);
    done_rec_t tick_d = {0};
    wait_done(&tick_d, 1500);
    assert_int_equal(admit(SL_ADMIT_PUBLISH, "live", "rtmp", "carol", "new", &d, NULL), 0);
}

static void test_module_config_errors(void **state)
{
    (void)state;
    /* auth_simple on without a file, or with a missing file: start fails
     * and leaves nothing behind. */
    const char *yamls[] = {
        "apps:\n  live:\n    auth_simple: true\n",
        "auth:\n  simple_file: /nonexistent/sluice-creds\napps:\n  live:\n    auth_simple: true\n",
    };
    for (int i = 0; i < 2; i++) {
        sl_config_t cfg;
        sl_core_t core;
        uv_loop_t loop;
        assert_int_equal(sl_config_defaults(&cfg), 0);
        assert_int_equal(sl_config_load_string(&cfg, yamls[i], strlen(yamls[i]), "t", NULL, NULL), 0);
        assert_int_equal(uv_loop_init(&loop), 0);
        int64_t blocks = sl_alloc_blocks();
        assert_int_equal(sl_core_init(&core, &loop, &cfg), 0);
        sl_plugins_t *st = NULL;
        assert_true(sl_plugins_start(&core, NULL, g_only, &st) < 0);
        assert_null(sl_plugins_state(st, "auth_simple")); /* it undid its own start */
        sl_plugins_stop(st);
        uv_run(&loop, UV_RUN_DEFAULT);
        sl_plugins_free(st);
        sl_admit_cleanup(&core);
        sl_core_cleanup(&core);
        assert_int_equal(sl_alloc_blocks(), blocks);
        assert_int_equal(uv_loop_close(&loop), 0);
        sl_config_cleanup(&cfg);
    }
    /* No app uses it: inert. */
    sl_config_t cfg;
    sl_core_t core;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(sl_core_init(&core, NULL, &cfg), 0);
    sl_plugins_t *st = NULL;
    assert_int_equal(sl_plugins_start(&core, NULL, g_only, &st), 0);
    assert_null(sl_plugins_state(st, "auth_simple"));
    sl_plugins_stop(st);
    sl_plugins_free(st);
    sl_core_cleanup(&core);
    sl_config_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_format),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_hash_formats),
        cmocka_unit_test(test_parse_alloc_failures),
        cmocka_unit_test_setup_teardown(test_module_decisions, module_setup, module_teardown),
        cmocka_unit_test_setup_teardown(test_module_reload, module_setup, module_teardown),
        cmocka_unit_test(test_module_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
