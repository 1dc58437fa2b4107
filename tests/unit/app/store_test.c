/*
 * Store tests (src/app/store.c): a migration runs once and its version is
 * recorded, a failing migration is rolled back, a database newer than the
 * module is refused, submitted work runs off the loop and its done
 * callback on the loop, close drains queued work, the service is found by
 * name, the file is WAL with synchronous=FULL, and nothing is left
 * allocated or open on the loop afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "app/core.h"
#include "app/store.h"
#include "base/alloc.h"
#include "base/config.h"
#include "sluice/errors.h"

typedef struct {
    uv_loop_t loop;
    sl_config_t cfg;
    sl_core_t core;
    char dir[64];
    char path[128];
    sl_store_t *st;
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/sl_store_test_XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/sluice.db", fx->dir);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(sl_config_defaults(&fx->cfg), 0);
    assert_int_equal(sl_core_init(&fx->core, &fx->loop, &fx->cfg), 0);
    assert_int_equal(sl_store_open(&fx->core, fx->path, &fx->st), 0);
    *state = fx;
    return 0;
}

static void close_store(fx_t *fx)
{
    sl_store_close(fx->st);
    fx->st = NULL;
    uv_run(&fx->loop, UV_RUN_DEFAULT);
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    close_store(fx);
    sl_core_cleanup(&fx->core);
    sl_config_cleanup(&fx->cfg);
    /* The loop is left clean: the async handle is closed. */
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

/* ---- helpers run on the worker ---- */

typedef struct {
    const char *sql;
    int64_t value;
} query_t;

static int query_int(sqlite3 *db, void *arg)
{
    query_t *q = arg;
    sqlite3_stmt *s = NULL;
    q->value = -1;
    if (sqlite3_prepare_v2(db, q->sql, -1, &s, NULL) != SQLITE_OK)
        return SL_EIO;
    if (sqlite3_step(s) == SQLITE_ROW)
        q->value = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return 0;
}

static int64_t ask(fx_t *fx, const char *sql)
{
    query_t q = {.sql = sql};
    assert_int_equal(sl_store_call(fx->st, query_int, &q), 0);
    return q.value;
}

/* ---- tests ---- */

static void test_migrations_run_once(void **state)
{
    fx_t *fx = *state;
    const char *const v1[] = {
        "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);",
    };
    const char *const v2[] = {
        "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);",
        "INSERT INTO t VALUES (2);",
    };
    assert_int_equal(sl_store_migrate(fx->st, "demo", v1, 1), 0);
    assert_int_equal(sl_store_migrate(fx->st, "demo", v1, 1), 0); /* again: nothing runs */
    assert_int_equal(ask(fx, "SELECT COUNT(*) FROM t"), 1);
    assert_int_equal(ask(fx, "SELECT version FROM schema_versions WHERE module = 'demo'"), 1);
    assert_int_equal(sl_store_migrate(fx->st, "demo", v2, 2), 0); /* only the new one runs */
    assert_int_equal(ask(fx, "SELECT COUNT(*) FROM t"), 2);
    assert_int_equal(ask(fx, "SELECT version FROM schema_versions WHERE module = 'demo'"), 2);
    /* Another module has its own version. */
    const char *const other[] = {"CREATE TABLE u (y);"};
    assert_int_equal(sl_store_migrate(fx->st, "other", other, 1), 0);
    assert_int_equal(ask(fx, "SELECT version FROM schema_versions WHERE module = 'other'"), 1);
    /* A database newer than the module is left alone. */
    assert_int_equal(sl_store_migrate(fx->st, "demo", v1, 1), SL_EINVAL);
    assert_int_equal(ask(fx, "SELECT COUNT(*) FROM t"), 2);
}

static void test_failed_migration_rolls_back(void **state)
{
    fx_t *fx = *state;
    const char *const m[] = {
        "CREATE TABLE a (x);",
        "CREATE TABLE b (x); INSERT INTO nosuchtable VALUES (1);",
    };
    assert_int_equal(sl_store_migrate(fx->st, "bad", m, 2), SL_EIO);
    assert_int_equal(ask(fx, "SELECT version FROM schema_versions WHERE module = 'bad'"), 1);
    assert_int_equal(ask(fx, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'a'"), 1);
    assert_int_equal(ask(fx, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'b'"), 0);
}

static void test_wal_full(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ask(fx, "PRAGMA synchronous"), 2); /* FULL */
    /* journal_mode answers text, and WAL is a property of the file: ask a
     * separate reader. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

typedef struct {
    uv_thread_t loop_thread;
    uv_thread_t work_thread;
    int work_ran, done_ran;
    int done_on_loop;
    int rc_seen;
    int order[8];
    int n_order;
} probe_t;

static int probe_work(sqlite3 *db, void *arg)
{
    probe_t *p = arg;
    (void)db;
    p->work_thread = uv_thread_self();
    p->work_ran++;
    return 42;
}

static void probe_done(void *arg, int rc)
{
    probe_t *p = arg;
    uv_thread_t self = uv_thread_self();
    p->done_on_loop = uv_thread_equal(&self, &p->loop_thread);
    p->done_ran++;
    p->rc_seen = rc;
}

static void on_deadline(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static void test_submit_off_loop_done_on_loop(void **state)
{
    fx_t *fx = *state;
    probe_t p = {.loop_thread = uv_thread_self()};
    assert_int_equal(sl_store_submit(fx->st, probe_work, probe_done, &p), 0);
    assert_int_equal(p.done_ran, 0); /* never inside the call */
    /* The store's async handle is unreferenced (the store never keeps a loop
     * alive): a deadline timer keeps this one running until done arrives. */
    uv_timer_t deadline;
    int expired = 0;
    uv_timer_init(&fx->loop, &deadline);
    deadline.data = &expired;
    uv_timer_start(&deadline, on_deadline, 5000, 0);
    while (!p.done_ran && !expired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_false(expired);
    assert_int_equal(p.work_ran, 1);
    assert_int_equal(p.done_ran, 1);
    assert_int_equal(p.rc_seen, 42);
    assert_true(p.done_on_loop);
    assert_false(uv_thread_equal(&p.work_thread, &p.loop_thread));
}

typedef struct {
    int *log;
    int *n;
    int id;
} seq_t;

static int seq_work(sqlite3 *db, void *arg)
{
    seq_t *s = arg;
    (void)db;
    uv_sleep(2); /* slow enough that close finds work still queued */
    s->log[(*s->n)++] = s->id;
    return 0;
}

static int n_done;
static void seq_done(void *arg, int rc)
{
    (void)arg;
    assert_int_equal(rc, 0);
    n_done++;
}

static void test_close_drains(void **state)
{
    fx_t *fx = *state;
    int log[16], n = 0;
    seq_t items[16];
    n_done = 0;
    for (int i = 0; i < 16; i++) {
        items[i] = (seq_t){.log = log, .n = &n, .id = i};
        assert_int_equal(sl_store_submit(fx->st, seq_work, seq_done, &items[i]), 0);
    }
    close_store(fx);
    assert_int_equal(n, 16);
    assert_int_equal(n_done, 16);
    for (int i = 0; i < 16; i++)
        assert_int_equal(log[i], i); /* in submission order */
    /* After close nothing more is accepted. */
    assert_null(sl_store_find(&fx->core));
}

static int nested_inner(sqlite3 *db, void *arg)
{
    (void)db;
    *(int *)arg += 1;
    return 0;
}

typedef struct {
    sl_store_t *st;
    int count;
} nested_t;

static int nested_outer(sqlite3 *db, void *arg)
{
    nested_t *n = arg;
    (void)db;
    return sl_store_call(n->st, nested_inner, &n->count); /* inline, no deadlock */
}

static void test_service_and_nested_call(void **state)
{
    fx_t *fx = *state;
    assert_ptr_equal(sl_store_find(&fx->core), fx->st);
    nested_t n = {.st = fx->st};
    assert_int_equal(sl_store_call(fx->st, nested_outer, &n), 0);
    assert_int_equal(n.count, 1);
    assert_string_equal(sl_store_path(fx->st), fx->path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_run_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_migration_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_off_loop_done_on_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_and_nested_call, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
