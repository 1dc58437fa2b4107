/*
 * The store: the one SQLite database of a sluice process (DESIGN.md §6),
 * {server.data_dir}/sluice.db, opened once, in WAL mode with
 * synchronous=FULL and a busy timeout, and written by one thread only. Every
 * statement of every module runs on the store's worker thread, on its one
 * connection; nothing touches SQLite on the loop.
 *
 * File: sluice.db is the name every module already used (the webhook
 * outbox, the upload queue and the recordings catalog were three
 * connections to this same file, plus the cleaner's fourth), so a server
 * upgraded in place keeps its tables as they are: nothing is copied. Each
 * module's first migration is its old "CREATE ... IF NOT EXISTS" schema,
 * which is a no-op on an old database and records version 1.
 *
 * Durability: synchronous=FULL for everything. The outbox and the upload
 * queue promise that a committed row survives a power cut; the recorder's
 * catalog used NORMAL, but it commits twice per recording, so FULL costs it
 * nothing that shows (docs/internals/STORE.md has the measurement).
 *
 * Two ways to run work, both on the worker thread, in submission order:
 * - sl_store_submit (loop thread): work(db, arg) runs on the worker, then
 *   done(arg, rc) runs back on the loop (through a uv_async).
 * - sl_store_call (any thread but the worker's; on the loop only at start-up
 *   and shutdown): blocks until work(db, arg) ran and returns its result.
 *   Module threads that already block (the webhook senders, the uploader,
 *   the recorder's writer) use it; called on the worker itself (a work
 *   function that calls it) it runs inline.
 * A work function must leave no transaction open and must not keep the db
 * pointer; statements it prepares may be kept across calls (they belong
 * to the one connection) and must be finalised by a work function before
 * sl_store_close.
 *
 * Schemas: each module owns its tables and lists its migrations;
 * sl_store_migrate runs those not yet applied, each once, in its own
 * transaction, and records the module's version in
 * schema_versions(module TEXT PRIMARY KEY, version INTEGER).
 *
 * Found by modules as the service "store" 1.0 (sl_store_find); the process
 * (main.c) opens it before the modules start and closes it after they are
 * freed, once pending work has drained.
 */
#ifndef SL_APP_STORE_H
#define SL_APP_STORE_H

#include <stddef.h>

typedef struct sl_core sl_core_t;
typedef struct sl_store sl_store_t;
struct sqlite3;

/** The store's file name inside server.data_dir. */
#define SL_STORE_FILE "sluice.db"
/** The service name and version under which the store is registered. */
#define SL_STORE_SERVICE "store"
#define SL_STORE_MAJOR 1
#define SL_STORE_MINOR 0

/** Work run on the store's worker thread with its connection (borrowed for
 *  the call). Returns 0 or a negative SL_E* code, handed to done/the caller. */
typedef int (*sl_store_work_cb)(struct sqlite3 *db, void *arg);
/** Completion of sl_store_submit, on the loop thread; rc is work's result,
 *  or SL_ECLOSED when the store closed before the work could run. */
typedef void (*sl_store_done_cb)(void *arg, int rc);

/*
 * The table registered as the service "store" 1.0 (its state is the
 * sl_store_t). Modules may call the functions below directly with the
 * pointer sl_store_find returns; the table exists for those that only know
 * the registry (plugins, later).
 */
typedef struct sl_store_service {
    int (*submit)(sl_store_t *st, sl_store_work_cb work, sl_store_done_cb done, void *arg);
    int (*call)(sl_store_t *st, sl_store_work_cb work, void *arg);
    int (*migrate)(sl_store_t *st, const char *module, const char *const migrations[], size_t n);
    const char *(*path)(const sl_store_t *st);
} sl_store_service_t;

/*
 * Opens (creates) the database at path (copied), sets WAL, synchronous=FULL
 * and the busy timeout, starts the worker thread and registers the service
 * "store" 1.0 on core. Call on the loop thread before the loop runs.
 * Returns 0 and the store in *out (caller closes it with sl_store_close),
 * or SL_EIO (logged: the file cannot be opened or set to WAL), SL_ENOMEM,
 * a libuv error (thread), or SL_EBUSY (a store is already registered).
 */
int sl_store_open(sl_core_t *core, const char *path, sl_store_t **out);

/*
 * Brings module's schema to version n: runs migrations[v..n-1] where v is
 * the version recorded for module in schema_versions (0 when none), each
 * in its own transaction together with the new version number, so that a
 * migration runs once. Blocks (sl_store_call): call at module start.
 * Returns 0, or SL_EIO (logged with the module name and SQLite's message;
 * the failed migration is rolled back and earlier ones stay), SL_EINVAL
 * when the database is newer than the module (v > n), SL_ECLOSED.
 */
int sl_store_migrate(sl_store_t *st, const char *module, const char *const migrations[],
                     size_t n);

/*
 * Queues work(db, arg) for the worker thread; done(arg, rc) runs later on
 * the loop thread (never inside this call). Loop thread only. arg is the
 * caller's until done runs. Pending work does not keep the loop alive (the
 * store's handle is unreferenced): a done callback still due when the loop
 * ends runs in sl_store_close. Returns 0, SL_ENOMEM or SL_ECLOSED (the store
 * is closing: neither callback will run).
 */
int sl_store_submit(sl_store_t *st, sl_store_work_cb work, sl_store_done_cb done, void *arg);

/*
 * Runs work(db, arg) on the worker thread after the work queued before it
 * and waits for it; returns its result, or SL_ECLOSED when the store is
 * closed. Any thread; on the loop thread only before the loop runs or
 * after it ended (it would stall every client).
 */
int sl_store_call(sl_store_t *st, sl_store_work_cb work, void *arg);

/** The database file's path (for log lines); valid until the store is freed. */
const char *sl_store_path(const sl_store_t *st);

/** The store registered on core (the service "store" 1.x), or NULL. */
sl_store_t *sl_store_find(const sl_core_t *core);

/*
 * Closes the store: unregisters the service, lets the worker finish every
 * queued work, runs the pending done callbacks (on this, the loop thread),
 * closes the connection and the async handle; the memory is freed in the
 * handle's close callback, so the loop must run once more (main.c's last
 * uv_run does). NULL is a no-op. Call after the modules that use it are freed.
 */
void sl_store_close(sl_store_t *st);

#endif
