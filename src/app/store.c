/*
 * The store (see store.h): one SQLite connection, one worker thread that
 * runs every statement, a FIFO of work items between them, and a uv_async
 * that brings the results of submitted work back to the loop.
 *
 * Threads: the queue, the list of finished items and the flags are under
 * mu. A synchronous call waits on call_cv for its own item's `finished`
 * flag (the item lives on the caller's stack); the worker waits on work_cv
 * for new items. The async handle is unreferenced: the store alone never
 * keeps the loop alive, so sl_store_close runs the done callbacks that
 * were still pending when the loop ended.
 */
#include "app/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "app/core.h"
#include "app/services.h"
#include "base/alloc.h"
#include "base/log.h"
#include "sluice/errors.h"

#define BUSY_TIMEOUT_MS 5000

static const sl_log_ctx_t g_ctx = {.proto = "store"};

typedef struct item {
    struct item *next;
    sl_store_work_cb work;
    sl_store_done_cb done;       /* NULL for a synchronous call */
    void *arg;
    int rc;                      /* work's result */
    int finished;                /* synchronous: set by the worker under mu */
} item_t;

struct sl_store {
    sl_core_t *core;             /* borrowed */
    char *path;                  /* owned */
    sqlite3 *db;                 /* used by the worker only (and by open/close around it) */
    uv_thread_t thread;
    uv_thread_t worker_id;       /* the worker's identity, for inline nested calls (mu) */
    int worker_started;          /* worker_id is set (mu) */
    uv_mutex_t mu;
    uv_cond_t work_cv, call_cv;
    item_t *head, *tail;         /* queued (mu) */
    item_t *done_head, *done_tail; /* finished submitted items for the loop (mu) */
    int stopping;                /* no new work; the worker exits when the queue is empty (mu) */
    int closed;                  /* set by sl_store_close (loop) */
    uv_async_t async;
};

static const sl_store_service_t g_service;

/* ------------------------------------------------------------------ */
/* the worker                                                          */

static void worker_main(void *arg)
{
    sl_store_t *st = arg;
    uv_mutex_lock(&st->mu);
    st->worker_id = uv_thread_self();
    st->worker_started = 1;
    for (;;) {
        item_t *it = st->head;
        if (!it) {
            if (st->stopping)
                break;
            uv_cond_wait(&st->work_cv, &st->mu);
            continue;
        }
        st->head = it->next;
        if (!st->head)
            st->tail = NULL;
        uv_mutex_unlock(&st->mu);
        int rc = it->work(st->db, it->arg);
        /* A work function must not leave a transaction open: the next
         * module's statements would join it. Roll it back and say so. */
        if (!sqlite3_get_autocommit(st->db)) {
            SL_LOGE(&g_ctx, "store: a work function left a transaction open; rolled back");
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        }
        uv_mutex_lock(&st->mu);
        it->rc = rc;
        if (it->done) {
            it->next = NULL;
            if (st->done_tail)
                st->done_tail->next = it;
            else
                st->done_head = it;
            st->done_tail = it;
            uv_async_send(&st->async);
        } else {
            it->finished = 1;
            uv_cond_broadcast(&st->call_cv);
        }
    }
    uv_mutex_unlock(&st->mu);
}

/* ------------------------------------------------------------------ */
/* the loop side                                                       */

/* Runs the done callbacks of finished submitted work (loop thread). */
static void drain_done(sl_store_t *st)
{
    uv_mutex_lock(&st->mu);
    item_t *it = st->done_head;
    st->done_head = st->done_tail = NULL;
    uv_mutex_unlock(&st->mu);
    while (it) {
        item_t *next = it->next;
        it->done(it->arg, it->rc);
        sl_free(it);
        it = next;
    }
}

static void on_async(uv_async_t *h)
{
    drain_done(h->data);
}

static void on_async_closed(uv_handle_t *h)
{
    sl_store_t *st = h->data;
    uv_cond_destroy(&st->work_cv);
    uv_cond_destroy(&st->call_cv);
    uv_mutex_destroy(&st->mu);
    sl_free(st->path);
    sl_free(st);
}

static int configure(sl_store_t *st)
{
    char *err = NULL;
    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    /* WAL: readers outside the process (an operator's sqlite3, the tests)
     * do not block the writer. FULL: a commit is on disk before the row is
     * acted upon (the webhook and upload promises). */
    int rc = sqlite3_exec(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL,
                          NULL, &err);
    if (rc != SQLITE_OK) {
        SL_LOGE(&g_ctx, "store: %s: %s", st->path, err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        return SL_EIO;
    }
    return 0;
}

int sl_store_open(sl_core_t *core, const char *path, sl_store_t **out)
{
    *out = NULL;
    sl_store_t *st = sl_calloc(1, sizeof *st);
    if (!st)
        return SL_ENOMEM;
    st->core = core;
    st->path = sl_strdup(path);
    if (!st->path) {
        sl_free(st);
        return SL_ENOMEM;
    }
    int rc = sqlite3_open_v2(path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        SL_LOGE(&g_ctx, "store: cannot open %s: %s", path,
                st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        rc = SL_EIO;
        goto fail_db;
    }
    if ((rc = configure(st)))
        goto fail_db;
    if ((rc = uv_mutex_init(&st->mu)))
        goto fail_db;
    if ((rc = uv_cond_init(&st->work_cv)))
        goto fail_mu;
    if ((rc = uv_cond_init(&st->call_cv)))
        goto fail_cv;
    if ((rc = uv_async_init(core->loop, &st->async, on_async)))
        goto fail_cv2;
    st->async.data = st;
    uv_unref((uv_handle_t *)&st->async);
    if ((rc = uv_thread_create(&st->thread, worker_main, st))) {
        st->closed = 1;
        sqlite3_close(st->db);
        uv_close((uv_handle_t *)&st->async, on_async_closed);
        return rc;
    }
    rc = sl_service_register(core, SL_STORE_SERVICE, SL_STORE_MAJOR, SL_STORE_MINOR, &g_service,
                             st);
    if (rc) {
        sl_store_close(st);
        return rc;
    }
    *out = st;
    return 0;
fail_cv2:
    uv_cond_destroy(&st->call_cv);
fail_cv:
    uv_cond_destroy(&st->work_cv);
fail_mu:
    uv_mutex_destroy(&st->mu);
fail_db:
    sqlite3_close(st->db);
    sl_free(st->path);
    sl_free(st);
    return rc;
}

/* Appends an item to the queue unless the store is stopping (mu held). */
static int enqueue_locked(sl_store_t *st, item_t *it)
{
    if (st->stopping)
        return SL_ECLOSED;
    it->next = NULL;
    if (st->tail)
        st->tail->next = it;
    else
        st->head = it;
    st->tail = it;
    uv_cond_signal(&st->work_cv);
    return 0;
}

int sl_store_submit(sl_store_t *st, sl_store_work_cb work, sl_store_done_cb done, void *arg)
{
    if (!st || st->closed)
        return SL_ECLOSED;
    item_t *it = sl_calloc(1, sizeof *it);
    if (!it)
        return SL_ENOMEM;
    it->work = work;
    it->done = done;
    it->arg = arg;
    uv_mutex_lock(&st->mu);
    int rc = enqueue_locked(st, it);
    uv_mutex_unlock(&st->mu);
    if (rc)
        sl_free(it);
    return rc;
}

int sl_store_call(sl_store_t *st, sl_store_work_cb work, void *arg)
{
    if (!st)
        return SL_ECLOSED;
    uv_thread_t self = uv_thread_self();
    item_t it = {.work = work, .arg = arg};
    uv_mutex_lock(&st->mu);
    if (st->worker_started && uv_thread_equal(&self, &st->worker_id)) {
        uv_mutex_unlock(&st->mu);
        return work(st->db, arg); /* nested in a work function: already on the worker */
    }
    int rc = enqueue_locked(st, &it);
    while (!rc && !it.finished)
        uv_cond_wait(&st->call_cv, &st->mu);
    uv_mutex_unlock(&st->mu);
    return rc ? rc : it.rc;
}

/* ------------------------------------------------------------------ */
/* migrations                                                          */

typedef struct {
    const char *module;
    const char *const *migrations;
    size_t n;
    const char *path;
} migrate_t;

static int read_version(sqlite3 *db, const char *module, int64_t *version)
{
    sqlite3_stmt *q = NULL;
    *version = 0;
    int rc = sqlite3_prepare_v2(db, "SELECT version FROM schema_versions WHERE module = ?", -1,
                                &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, module, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            *version = sqlite3_column_int64(q, 0);
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(q);
    return rc;
}

static int migrate_work(sqlite3 *db, void *arg)
{
    migrate_t *m = arg;
    char *err = NULL;
    int64_t version = 0;
    int rc = sqlite3_exec(db,
                          "CREATE TABLE IF NOT EXISTS schema_versions ("
                          " module TEXT PRIMARY KEY, version INTEGER NOT NULL)",
                          NULL, NULL, &err);
    if (rc == SQLITE_OK)
        rc = read_version(db, m->module, &version);
    if (rc != SQLITE_OK) {
        SL_LOGE(&g_ctx, "store: %s: schema versions: %s", m->path, err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return SL_EIO;
    }
    if (version > (int64_t)m->n) {
        SL_LOGE(&g_ctx, "store: %s: %s's schema is at version %lld, newer than this sluice "
                "knows (%zu): refusing to touch it", m->path, m->module, (long long)version, m->n);
        return SL_EINVAL;
    }
    for (size_t i = (size_t)version; i < m->n; i++) {
        sqlite3_stmt *set = NULL;
        rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &err);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, m->migrations[i], NULL, NULL, &err);
        if (rc == SQLITE_OK)
            rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO schema_versions (module, version)"
                                    " VALUES (?, ?)", -1, &set, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(set, 1, m->module, -1, SQLITE_STATIC);
            sqlite3_bind_int64(set, 2, (sqlite3_int64)(i + 1));
            rc = sqlite3_step(set) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        }
        sqlite3_finalize(set);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &err);
        if (rc != SQLITE_OK) {
            SL_LOGE(&g_ctx, "store: %s: %s migration %zu failed: %s", m->path, m->module, i + 1,
                    err ? err : sqlite3_errmsg(db));
            sqlite3_free(err);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return SL_EIO;
        }
        SL_LOGD(&g_ctx, "store: %s schema now at version %zu", m->module, i + 1);
    }
    return 0;
}

int sl_store_migrate(sl_store_t *st, const char *module, const char *const migrations[],
                     size_t n)
{
    if (!st)
        return SL_ECLOSED;
    migrate_t m = {.module = module, .migrations = migrations, .n = n, .path = st->path};
    return sl_store_call(st, migrate_work, &m);
}

/* ------------------------------------------------------------------ */
/* lookup and close                                                    */

const char *sl_store_path(const sl_store_t *st)
{
    return st ? st->path : "(no store)";
}

sl_store_t *sl_store_find(const sl_core_t *core)
{
    void *ud = NULL;
    if (!sl_service_get(core, SL_STORE_SERVICE, SL_STORE_MAJOR, 0, &ud))
        return NULL;
    return ud;
}

void sl_store_close(sl_store_t *st)
{
    if (!st || st->closed)
        return;
    st->closed = 1;
    sl_service_unregister(st->core, SL_STORE_SERVICE, &g_service);
    uv_mutex_lock(&st->mu);
    st->stopping = 1;
    uv_cond_signal(&st->work_cv);
    uv_mutex_unlock(&st->mu);
    uv_thread_join(&st->thread);
    drain_done(st); /* the queue drained on the worker; their done callbacks run here */
    if (sqlite3_close(st->db) != SQLITE_OK) {
        /* A module kept a statement: say so, and let SQLite close once it is gone. */
        SL_LOGW(&g_ctx, "store: %s: statements left unfinalised at close: %s", st->path,
                sqlite3_errmsg(st->db));
        sqlite3_close_v2(st->db);
    }
    st->db = NULL;
    uv_close((uv_handle_t *)&st->async, on_async_closed);
}

static const sl_store_service_t g_service = {
    .submit = sl_store_submit,
    .call = sl_store_call,
    .migrate = sl_store_migrate,
    .path = sl_store_path,
};
