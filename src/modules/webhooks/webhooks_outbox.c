/*
 * The webhooks outbox (see webhooks_internal.h for who runs what): the
 * SQLite table of deliveries, the writer thread that fills it and the
 * sender threads that empty it. Nothing here runs on the loop thread.
 *
 * Durability: a delivery is a row in {data_dir}/sluice.db
 * (webhook_deliveries) written through the store (app/store.h: WAL,
 * synchronous=FULL, one connection whose statements all run on the store's
 * worker; the threads here hand it their SQL with sl_store_call and block)
 * before its first attempt, so it survives kill -9 and power loss once committed. A
 * sender only ever moves a row forward by an UPDATE after an attempt; a
 * row is never deleted before it is delivered (delivered rows are pruned
 * after webhooks.retention). At start every undelivered row is due again.
 *
 * Ordering: rows are numbered (seq) in the order the writer inserts them,
 * which is the bus order. For its endpoint, a sender only considers the
 * oldest undelivered row of each ordering key (the Red5 guid), and among
 * those the one due first; so a later delivery for a key never overtakes
 * an earlier one, while other keys and other endpoints go on.
 *
 * Idempotency: a row's id ("<node>-<event seq>-<endpoint index>") is in the
 * body and the X-Sluice-Delivery header and never changes across retries.
 * The event seq is the bus's event id plus a base kept in webhook_meta (the
 * highest seq ever written), so ids stay unique across restarts even though
 * the bus numbers events from 1 in every process.
 */
#include <curl/curl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "app/store.h"
#include "base/alloc.h"
#include "base/backoff.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/str.h"
#include "base/time.h"
#include "modules/webhooks/webhooks_internal.h"
#include "sluice/errors.h"
#include "sluice/version.h"
#include "modules/webhooks/webhooks_config.h"

#define IDLE_WAIT_MS (60 * 1000)          /* a sender re-checks the outbox at least this often */
#define DB_RETRY_MS 1000                  /* first wait after a database error (then doubling) */
#define PRUNE_INTERVAL_MS (10 * 60 * 1000)
#define WRITER_STOP_RETRIES 5             /* failed commits tolerated while stopping */
#define MAX_ERROR_TEXT 256

static const sl_log_ctx_t g_ctx = {.proto = "webhooks"};

/* The outbox's migrations (sl_store_migrate, module "webhooks"). The first
 * is the schema every sluice before the store created, with IF NOT EXISTS,
 * so that an outbox written by an older server is adopted as it is. */
static const char *const migrations[] = {
    "CREATE TABLE IF NOT EXISTS webhook_deliveries ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT," /* insertion (= bus) order */
    " id TEXT NOT NULL UNIQUE,"               /* idempotency id */
    " event TEXT NOT NULL,"                   /* Red5 / payload event name */
    " endpoint TEXT NOT NULL,"
    " okey TEXT NOT NULL,"                    /* ordering key (guid) */
    " body TEXT NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'pending'," /* pending | retrying | delivered */
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " last_status INTEGER,"                   /* HTTP status of the last attempt, 0 = none */
    " last_error TEXT,"
    " created INTEGER NOT NULL,"              /* wall clock ms */
    " next_attempt INTEGER NOT NULL,"         /* wall clock ms */
    " delivered_at INTEGER);"
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_open ON webhook_deliveries"
    " (endpoint, okey, seq) WHERE state <> 'delivered';"
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_done ON webhook_deliveries"
    " (delivered_at) WHERE state = 'delivered';"
    "CREATE TABLE IF NOT EXISTS webhook_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);",
};

/* Waits on a condition for at most ms (mu held). */
static void timed_wait(uv_cond_t *cv, uv_mutex_t *mu, uint64_t ms)
{
    (void)uv_cond_timedwait(cv, mu, ms * 1000000ull);
}

/* Sleeps ms unless a stop flag rises (used after database errors). New
 * events signal the same condition: they must not cut the pause short, or
 * a busy server would retry a failing commit once per event. */
static void pause_ms(sl_webhooks_t *w, uint64_t ms)
{
    uint64_t deadline = sl_time_mono_ms() + ms;
    uv_mutex_lock(&w->mu);
    for (uint64_t now = sl_time_mono_ms(); !w->writer_stop && now < deadline;
         now = sl_time_mono_ms())
        timed_wait(&w->writer_cv, &w->mu, deadline - now);
    uv_mutex_unlock(&w->mu);
}

/* ------------------------------------------------------------------ */
/* the writer                                                          */

typedef struct {
    sl_webhooks_t *w;
    sqlite3_stmt *insert, *set_meta, *prune; /* on the store's connection: store worker only */
    sl_wh_item_t *batch;         /* the batch write_batch_work writes */
    char *const *globals;        /* webhooks.url split, as the batch was taken (a reload keeps
                                    replaced lists until free) */
    size_t n_globals;
    uint64_t seq_base;           /* event seq = seq_base + bus event id */
    uint64_t seq_high;           /* highest event seq written so far */
    uint64_t last_prune_ms;
    sl_backoff_t bo;             /* consecutive failed commits */
    char err[MAX_ERROR_TEXT];    /* the last commit error */
} writer_t;

/* Reads the seq base and prepares the writer's statements (store worker). */
static int writer_open_work(sqlite3 *db, void *arg)
{
    writer_t *wr = arg;
    sl_webhooks_t *w = wr->w;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT value FROM webhook_meta WHERE key = 'event_seq'", -1,
                                &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        wr->seq_base = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    wr->seq_high = wr->seq_base;
    rc = sqlite3_prepare_v2(db,
                            "INSERT OR IGNORE INTO webhook_deliveries (id, event, endpoint, okey,"
                            " body, state, attempts, created, next_attempt)"
                            " VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6)",
                            -1, &wr->insert, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "INSERT INTO webhook_meta (key, value) VALUES ('event_seq', ?1)"
                                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                                -1, &wr->set_meta, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "DELETE FROM webhook_deliveries WHERE state = 'delivered'"
                                " AND delivered_at < ?1",
                                -1, &wr->prune, NULL);
    if (rc != SQLITE_OK) {
        SL_LOGE(&g_ctx, "webhooks: outbox statements: %s", sqlite3_errmsg(db));
        return SL_EIO;
    }
    sqlite3_stmt *cnt = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT COUNT(*) FROM webhook_deliveries WHERE state <> 'delivered'",
                           -1, &cnt, NULL) == SQLITE_OK &&
        sqlite3_step(cnt) == SQLITE_ROW && sqlite3_column_int64(cnt, 0) > 0)
        SL_LOGI(&g_ctx, "webhooks: %lld undelivered deliveries in the outbox are due again",
                (long long)sqlite3_column_int64(cnt, 0));
    sqlite3_finalize(cnt);
    /* Rows for a URL that is no longer configured have no sender: say so
     * (they stay, listed by the API, and go out if the URL comes back). */
    if (sqlite3_prepare_v2(db,
                           "SELECT endpoint, COUNT(*) FROM webhook_deliveries"
                           " WHERE state <> 'delivered' GROUP BY endpoint",
                           -1, &cnt, NULL) == SQLITE_OK) {
        while (sqlite3_step(cnt) == SQLITE_ROW) {
            const char *url = (const char *)sqlite3_column_text(cnt, 0);
            size_t i = 0;
            while (url && i < w->n_eps && strcmp(w->eps[i].url, url) != 0)
                i++;
            char rb[SL_REDACT_MAX];
            if (url && i == w->n_eps)
                SL_LOGW(&g_ctx, "webhooks: %lld undelivered deliveries for %s, which is no "
                        "longer configured: kept, not sent",
                        (long long)sqlite3_column_int64(cnt, 1), sl_redact(url, rb, sizeof rb));
        }
    }
    sqlite3_finalize(cnt);
    return 0;
}

/* Migrates the outbox's schema, then prepares the writer (blocking). */
static int writer_open(sl_webhooks_t *w, writer_t *wr)
{
    wr->w = w;
    if (!w->store) {
        SL_LOGE(&g_ctx, "webhooks: no store: the outbox %s cannot be opened", w->db_path);
        return SL_EIO;
    }
    int rc = sl_store_migrate(w->store, "webhooks", migrations,
                              sizeof migrations / sizeof migrations[0]);
    if (rc) {
        SL_LOGE(&g_ctx, "webhooks: cannot create the outbox tables in %s", w->db_path);
        return SL_EIO;
    }
    return sl_store_call(w->store, writer_open_work, wr);
}

static int writer_close_work(sqlite3 *db, void *arg)
{
    writer_t *wr = arg;
    (void)db;
    sqlite3_finalize(wr->insert);
    sqlite3_finalize(wr->set_meta);
    sqlite3_finalize(wr->prune);
    wr->insert = wr->set_meta = wr->prune = NULL;
    return 0;
}

static void writer_close(writer_t *wr)
{
    if (wr->w && wr->w->store)
        (void)sl_store_call(wr->w->store, writer_close_work, wr);
}

/*
 * Splits a comma-separated URL list in place (blanks trimmed, empty items
 * skipped) and appends the pieces to urls. Returns the new count.
 */
static size_t split_urls(char *list, const char **urls, size_t n, size_t cap)
{
    size_t len;
    const char *c = list, *it;
    while (n < cap && (it = sl_list_next(&c, &len))) {
        list[it - list + len] = '\0';
        urls[n++] = it;
    }
    return n;
}

#define MAX_EVENT_ENDPOINTS 64

/*
 * Inserts one event's rows: one per distinct endpoint, global URLs first,
 * then the app's. The endpoint index in the id is the URL's position in
 * that de-duplicated list, so it is fixed once the row exists.
 */
static int insert_event(sl_webhooks_t *w, writer_t *wr, const sl_wh_item_t *it, uint64_t seq,
                        char *const *globals, size_t n_globals)
{
    const char *urls[MAX_EVENT_ENDPOINTS];
    char app_urls[4096];
    size_t n = 0;
    for (size_t i = 0; i < n_globals && n < MAX_EVENT_ENDPOINTS; i++)
        urls[n++] = globals[i];
    const char *app_list = it->app ? sl_webhooks_app_cfg(it->app)->webhook_url : NULL;
    if (app_list && app_list[0]) {
        snprintf(app_urls, sizeof app_urls, "%s", app_list);
        n = split_urls(app_urls, urls, n, MAX_EVENT_ENDPOINTS);
    }
    char okey[512], id[SL_WEBHOOKS_ID_MAX];
    sl__webhooks_guid(&it->ev, okey, sizeof okey);
    const char *event_name = sl__webhooks_event_name(it->ev.type);
    int index = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < i && strcmp(urls[j], urls[i]) != 0)
            j++;
        if (j < i)
            continue; /* the same URL listed twice gets the event once */
        if (sl__webhooks_delivery_id(id, sizeof id, w->node, seq, index++))
            return SL_ETOOBIG;
        char *body = sl__webhooks_payload_cluster(&it->ev, w->node, id, seq, &w->cluster,
                                                  sl_webhooks_cfg(sl__wh_cfg(w))->raw_query);
        if (!body)
            return SL_ENOMEM;
        sqlite3_stmt *st = wr->insert;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, event_name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, urls[i], -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, okey, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, body, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)sl_time_wall_ms());
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        sl_free(body);
        if (rc != SQLITE_DONE)
            return SL_EIO;
    }
    return 0;
}

/* Inserts every row of a batch of events in one transaction. */
static int write_batch_work(sqlite3 *db, void *arg)
{
    writer_t *wr = arg;
    sl_webhooks_t *w = wr->w;
    sl_wh_item_t *items = wr->batch;
    int rc = 0;
    uint64_t seq_high = wr->seq_high;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = SL_EIO;
        goto fail;
    }
    for (sl_wh_item_t *it = items; it; it = it->next) {
        uint64_t seq = wr->seq_base + it->ev.id;
        if (seq > seq_high)
            seq_high = seq;
        rc = insert_event(w, wr, it, seq, wr->globals, wr->n_globals);
        if (rc)
            goto fail;
    }
    sqlite3_reset(wr->set_meta);
    sqlite3_bind_int64(wr->set_meta, 1, (sqlite3_int64)seq_high);
    if (sqlite3_step(wr->set_meta) != SQLITE_DONE ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = SL_EIO;
        goto fail;
    }
    wr->seq_high = seq_high;
    return 0;
fail:
    /* Logged by the caller, once per failing streak. */
    snprintf(wr->err, sizeof wr->err, "%s: %s", sl_strerror(rc), sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int write_batch(sl_webhooks_t *w, writer_t *wr, sl_wh_item_t *items, char *const *globals,
                       size_t n_globals)
{
    wr->batch = items;
    wr->globals = globals;
    wr->n_globals = n_globals;
    int rc = sl_store_call(w->store, write_batch_work, wr);
    wr->batch = NULL;
    wr->globals = NULL;
    wr->n_globals = 0;
    if (rc == SL_ECLOSED)
        snprintf(wr->err, sizeof wr->err, "the store is closed");
    return rc;
}

static int prune_work(sqlite3 *db, void *arg)
{
    writer_t *wr = arg;
    uint64_t now = wr->last_prune_ms;
    int64_t keep = sl_webhooks_cfg(sl__wh_cfg(wr->w))->retention_ms;
    if (!wr->prune)
        return SL_EIO;
    sqlite3_reset(wr->prune);
    sqlite3_bind_int64(wr->prune, 1, (sqlite3_int64)(now - (uint64_t)keep));
    if (sqlite3_step(wr->prune) != SQLITE_DONE)
        SL_LOGW(&g_ctx, "webhooks: pruning delivered rows failed: %s", sqlite3_errmsg(db));
    else if (sqlite3_changes(db) > 0)
        SL_LOGD(&g_ctx, "webhooks: pruned %d delivered rows", sqlite3_changes(db));
    return 0;
}

static void maybe_prune(sl_webhooks_t *w, writer_t *wr)
{
    uint64_t now = sl_time_wall_ms();
    int64_t keep = sl_webhooks_cfg(sl__wh_cfg(w))->retention_ms;
    if (keep <= 0 || now - wr->last_prune_ms < PRUNE_INTERVAL_MS)
        return;
    wr->last_prune_ms = now;
    (void)sl_store_call(w->store, prune_work, wr);
}

static void free_items(sl_wh_item_t *it)
{
    while (it) {
        sl_wh_item_t *next = it->next;
        sl_free(it);
        it = next;
    }
}

static void writer_main(void *arg)
{
    sl_webhooks_t *w = arg;
    writer_t wr;
    memset(&wr, 0, sizeof wr);
    sl_backoff_init(&wr.bo, sl_time_mono_ms() ^ (uint64_t)(uintptr_t)w);
    int rc = writer_open(w, &wr);
    uv_mutex_lock(&w->mu);
    w->writer_state = rc ? rc : 1;
    uv_cond_broadcast(&w->writer_cv);
    uv_mutex_unlock(&w->mu);
    if (rc) {
        writer_close(&wr);
        return;
    }
    for (;;) {
        uv_mutex_lock(&w->mu);
        if (!w->head && !w->writer_stop)
            timed_wait(&w->writer_cv, &w->mu, PRUNE_INTERVAL_MS);
        sl_wh_item_t *items = w->head;
        size_t n = w->n_queued;
        w->head = w->tail = NULL;
        w->n_queued = 0;
        int stop = w->writer_stop;
        char **globals = w->global_urls; /* a reload keeps replaced lists until free */
        size_t n_globals = w->n_global;
        uv_mutex_unlock(&w->mu);
        /* A batch is retried until it commits: the events exist nowhere else.
         * Only while stopping is there a limit, so that a dead disk cannot
         * hang the shutdown forever. */
        for (int tries = 0; items; tries++) {
            if (!write_batch(w, &wr, items, globals, n_globals)) {
                uint32_t failed = sl_backoff_ok(&wr.bo);
                if (failed)
                    SL_LOGI(&g_ctx, "webhooks: outbox %s writable again after %u failed "
                            "commits", w->db_path, failed);
                sl__webhooks_wake_senders(w);
                break;
            }
            /* Paced in memory (doubling up to webhooks.retry_max_interval) and
             * logged once per failing streak, not once per try. */
            uint64_t delay = sl_backoff_fail(&wr.bo, DB_RETRY_MS,
                                             (uint64_t)sl_webhooks_cfg(sl__wh_cfg(w))->retry_max_ms);
            if (wr.bo.failures == 1)
                SL_LOGE(&g_ctx, "webhooks: cannot write %zu events to the outbox %s (%s); "
                        "retrying with backoff until it can be written", n, w->db_path, wr.err);
            else
                SL_LOGD(&g_ctx, "webhooks: outbox still not writable (%u tries, %s): next in "
                        "%llu ms", wr.bo.failures, wr.err, (unsigned long long)delay);
            uv_mutex_lock(&w->mu);
            stop = w->writer_stop;
            uv_mutex_unlock(&w->mu);
            if (stop && tries >= WRITER_STOP_RETRIES) {
                SL_LOGE(&g_ctx, "webhooks: giving up on %zu events at shutdown: the outbox "
                        "cannot be written", n);
                break;
            }
            pause_ms(w, delay);
        }
        free_items(items);
        maybe_prune(w, &wr);
        if (stop && !items)
            break;
    }
    writer_close(&wr);
}

/* ------------------------------------------------------------------ */
/* the senders                                                         */

typedef struct {
    int64_t seq;
    char id[SL_WEBHOOKS_ID_MAX];
    char event[64];
    char *body;                  /* owned (sl_malloc) */
    size_t body_len;
    int64_t attempts;
    int64_t next_attempt;
} row_t;

typedef struct {
    sl_wh_endpoint_t *ep;
    sqlite3_stmt *next, *ok, *retry; /* on the store's connection: store worker only */
    row_t *row;                  /* next_row_work's output, record_work's input */
    long status;                 /* record_work: the attempt's HTTP status */
    const char *err_text;        /* record_work: the attempt's error text */
    uint64_t now_ms, delay_ms;   /* record_work: when, and the retry delay */
    char dberr[MAX_ERROR_TEXT];  /* SQLite's message for the last failed statement */
    CURL *curl;
    /* When the outbox cannot be written (disk full, I/O error) the row's
     * next_attempt cannot move forward, and the row would be picked again
     * at once: the sender then paces itself in memory instead, and the
     * whole endpoint waits until hold_until_ms. */
    sl_backoff_t store_bo;       /* consecutive outbox failures */
    uint64_t hold_until_ms;      /* wall clock; no attempt before this */
} sender_t;

static uint64_t next_rand(sl_wh_endpoint_t *ep)
{
    /* xorshift64*: plenty for jitter, and thread-local by construction. */
    uint64_t x = ep->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ep->rng = x;
    return x * 2685821657736338717ull;
}

static int sender_open_work(sqlite3 *db, void *arg)
{
    sender_t *s = arg;
    /* The head row (lowest seq) of every ordering key of this endpoint,
     * then the one due first: SQLite takes the bare columns from the row
     * that holds MIN(seq). */
    int rc = sqlite3_prepare_v2(
        db,
        "SELECT seq, id, event, body, attempts, next_attempt FROM"
        " (SELECT seq, id, event, body, attempts, next_attempt, MIN(seq)"
        "  FROM webhook_deliveries WHERE endpoint = ?1 AND state <> 'delivered' GROUP BY okey)"
        " ORDER BY next_attempt, seq LIMIT 1",
        -1, &s->next, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "UPDATE webhook_deliveries SET"
                                " state = CASE WHEN next_attempt = ?4 THEN 'delivered' ELSE state END,"
                                " attempts = attempts + 1, last_status = ?2, last_error = NULL,"
                                " delivered_at = CASE WHEN next_attempt = ?4 THEN ?3 ELSE NULL END"
                                " WHERE seq = ?1",
                                -1, &s->ok, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "UPDATE webhook_deliveries SET state = 'retrying',"
                                " attempts = attempts + 1, last_status = ?2, last_error = ?3,"
                                " next_attempt = CASE WHEN next_attempt = ?5 THEN ?4 ELSE next_attempt END"
                                " WHERE seq = ?1 AND state <> 'delivered'",
                                -1, &s->retry, NULL);
    if (rc != SQLITE_OK) {
        SL_LOGE(&g_ctx, "webhooks: sender statements: %s", sqlite3_errmsg(db));
        return SL_EIO;
    }
    return 0;
}

static int sender_open(sender_t *s)
{
    sl_webhooks_t *w = s->ep->w;
    if (!w->store)
        return SL_EIO;
    int rc = sl_store_call(w->store, sender_open_work, s);
    if (rc)
        return rc;
    s->curl = curl_easy_init();
    return s->curl ? 0 : SL_ENOMEM;
}

static int sender_close_work(sqlite3 *db, void *arg)
{
    sender_t *s = arg;
    (void)db;
    sqlite3_finalize(s->next);
    sqlite3_finalize(s->ok);
    sqlite3_finalize(s->retry);
    s->next = s->ok = s->retry = NULL;
    return 0;
}

static void sender_close(sender_t *s)
{
    if (s->next || s->ok || s->retry)
        (void)sl_store_call(s->ep->w->store, sender_close_work, s);
    if (s->curl)
        curl_easy_cleanup(s->curl);
}

/* The next row to send: 1 found, 0 none, <0 error (store worker). */
static int next_row_work(sqlite3 *db, void *arg)
{
    sender_t *s = arg;
    row_t *r = s->row;
    sqlite3_stmt *st = s->next;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, s->ep->url, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW) {
        snprintf(s->dberr, sizeof s->dberr, "%s", sqlite3_errmsg(db));
        sqlite3_reset(st);
        return SL_EIO;
    }
    r->seq = sqlite3_column_int64(st, 0);
    snprintf(r->id, sizeof r->id, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(r->event, sizeof r->event, "%s", (const char *)sqlite3_column_text(st, 2));
    const char *body = (const char *)sqlite3_column_text(st, 3);
    r->body_len = (size_t)sqlite3_column_bytes(st, 3);
    r->attempts = sqlite3_column_int64(st, 4);
    r->next_attempt = sqlite3_column_int64(st, 5);
    r->body = sl_strndup(body ? body : "", r->body_len);
    sqlite3_reset(st);
    return r->body ? 1 : SL_ENOMEM;
}

/* The next row to send (see next_row_work), read through the store. */
static int next_row(sender_t *s, row_t *r)
{
    s->row = r;
    int rc = sl_store_call(s->ep->w->store, next_row_work, s);
    if (rc == SL_ECLOSED)
        snprintf(s->dberr, sizeof s->dberr, "the store is closed");
    return rc;
}

/* Response bodies are not needed: count and drop them. */
static size_t discard_body(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* Called by libcurl during a transfer: abandon it once the stop grace is over. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    sl_webhooks_t *w = ud;
    uv_mutex_lock(&w->mu);
    int abandon = w->senders_stop && sl_time_wall_ms() >= w->stop_deadline_ms;
    uv_mutex_unlock(&w->mu);
    return abandon;
}

/* One POST; returns the HTTP status (0 when there is none) and an error text. */
static long post(sender_t *s, const row_t *r, char *err, size_t err_cap)
{
    sl_webhooks_t *w = s->ep->w;
    const sl_config_t *cfg = sl__wh_cfg(w);
    char ts[32], hdr[SL_WEBHOOKS_ID_MAX + 64], sig[SL_WEBHOOKS_SIG_LEN + 1];
    char curl_err[CURL_ERROR_SIZE];
    long status = 0;
    struct curl_slist *h = NULL, *t;
    CURL *c = s->curl;
    CURLcode cc;
    err[0] = '\0';
    curl_err[0] = '\0';
    snprintf(ts, sizeof ts, "%llu", (unsigned long long)(sl_time_wall_ms() / 1000));
#define ADD(line)                                   \
    do {                                            \
        if (!(t = curl_slist_append(h, (line)))) { \
            snprintf(err, err_cap, "out of memory"); \
            goto fail;                              \
        }                                           \
        h = t;                                      \
    } while (0)
    ADD("Content-Type: application/json");
    ADD("Expect:"); /* no 100-continue round trip */
    snprintf(hdr, sizeof hdr, "X-Sluice-Event: %s", r->event);
    ADD(hdr);
    snprintf(hdr, sizeof hdr, "X-Sluice-Delivery: %s", r->id);
    ADD(hdr);
    snprintf(hdr, sizeof hdr, "X-Sluice-Timestamp: %s", ts);
    ADD(hdr);
    snprintf(hdr, sizeof hdr, "X-Sluice-Attempt: %lld", (long long)r->attempts + 1);
    ADD(hdr);
    if (sl_webhooks_cfg(cfg)->secret && sl_webhooks_cfg(cfg)->secret[0]) {
        if (sl__webhooks_sign(sl_webhooks_cfg(cfg)->secret, ts, r->body, r->body_len, sig)) {
            snprintf(err, err_cap, "cannot compute the signature");
            goto fail;
        }
        snprintf(hdr, sizeof hdr, "X-Sluice-Signature: %s", sig);
        ADD(hdr);
    }
#undef ADD
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, s->ep->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "sluice/" SL_VERSION_STRING);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)sl_webhooks_cfg(cfg)->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)sl_webhooks_cfg(cfg)->timeout_ms);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
    cc = curl_easy_perform(c);
    /* Both point into this frame: unhook them before the handle is reused. */
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    if (cc == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(err, err_cap, "abandoned at shutdown (server.shutdown_timeout)");
        goto fail;
    }
    if (cc != CURLE_OK) {
        snprintf(err, err_cap, "%s", curl_err[0] ? curl_err : curl_easy_strerror(cc));
        goto fail;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299)
        snprintf(err, err_cap, "HTTP %ld", status);
fail:
    curl_slist_free_all(h);
    return status;
}

/*
 * The outbox could not be read or written: the sender holds every attempt
 * of its endpoint for a backoff kept in memory (from DB_RETRY_MS, doubling,
 * up to webhooks.retry_max_interval, with jitter), so a delivery whose
 * outcome cannot be recorded is not re-sent in a hot loop. Logged once when
 * the outbox starts failing (and again, once, when it works again); the
 * repeats are debug lines.
 */
static void store_failed(sender_t *s, const char *what, const char *id, uint64_t now)
{
    sl_webhooks_t *w = s->ep->w;
    uint64_t delay = sl_backoff_fail(&s->store_bo, DB_RETRY_MS,
                                     (uint64_t)sl_webhooks_cfg(sl__wh_cfg(w))->retry_max_ms);
    s->hold_until_ms = now + delay;
    if (s->store_bo.failures == 1)
        SL_LOGE(&g_ctx, "webhooks: outbox %s: %s (%s%s): deliveries to %s back off in memory "
                "until it can be written again", w->db_path, s->dberr, what,
                id ? id : "", s->ep->log_url);
    else
        SL_LOGD(&g_ctx, "webhooks: outbox still failing (%s, %u in a row): next try in %llu ms",
                what, s->store_bo.failures, (unsigned long long)delay);
}

static void store_ok(sender_t *s)
{
    uint32_t n = sl_backoff_ok(&s->store_bo);
    s->hold_until_ms = 0;
    if (n)
        SL_LOGI(&g_ctx, "webhooks: outbox %s writable again after %u failures (deliveries to %s)",
                s->ep->w->db_path, n, s->ep->log_url);
}

/* Records an attempt's outcome (store worker): 1 recorded, 0 not. */
static int record_work(sqlite3 *db, void *arg)
{
    sender_t *s = arg;
    const row_t *r = s->row;
    int ok = s->status >= 200 && s->status <= 299;
    sqlite3_stmt *st = ok ? s->ok : s->retry;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, r->seq);
    sqlite3_bind_int64(st, 2, s->status);
    /* The row's next_attempt as it was read is the attempt's stamp: a
     * redeliver through the API while the attempt was in flight changed it,
     * and then the row stays due (the redelivery happens) instead of being
     * marked delivered by the attempt that began before it. */
    if (ok) {
        sqlite3_bind_int64(st, 3, (sqlite3_int64)s->now_ms);
        sqlite3_bind_int64(st, 4, r->next_attempt);
    } else {
        sqlite3_bind_text(st, 3, s->err_text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)(s->now_ms + s->delay_ms));
        sqlite3_bind_int64(st, 5, r->next_attempt);
    }
    int recorded = sqlite3_step(st) == SQLITE_DONE;
    if (!recorded)
        snprintf(s->dberr, sizeof s->dberr, "%s", sqlite3_errmsg(db));
    sqlite3_reset(st);
    return recorded;
}

/* Attempts one row and records the outcome. */
static void attempt(sender_t *s, row_t *r)
{
    sl_webhooks_t *w = s->ep->w;
    char err[MAX_ERROR_TEXT];
    long status = post(s, r, err, sizeof err);
    uint64_t now = sl_time_wall_ms();
    int ok = status >= 200 && status <= 299;
    uint64_t delay = 0;
    if (!ok) {
        uint32_t n = r->attempts + 1 > UINT32_MAX ? UINT32_MAX : (uint32_t)(r->attempts + 1);
        delay = sl__webhooks_backoff_ms(n, (uint64_t)sl_webhooks_cfg(sl__wh_cfg(w))->retry_max_ms,
                                        next_rand(s->ep));
    }
    s->row = r;
    s->status = status;
    s->err_text = err;
    s->now_ms = now;
    s->delay_ms = delay;
    int recorded = sl_store_call(w->store, record_work, s) == 1;
    if (!recorded)
        store_failed(s, "cannot record a delivery attempt", r->id, now);
    else
        store_ok(s);
    if (!recorded)
        delay = s->hold_until_ms - now;
    if (ok)
        SL_LOGD(&g_ctx, "webhooks: %s %s delivered to %s (HTTP %ld, attempt %lld)", r->event,
                r->id, s->ep->log_url, status, (long long)r->attempts + 1);
    else /* WARN on a delivery's first failure, INFO on its retries (one WARN per delivery) */
        sl_log(r->attempts == 0 ? SL_LOG_WARN : SL_LOG_INFO, &g_ctx,
               "webhooks: %s %s to %s failed (attempt %lld: %s); next in %llu ms", r->event, r->id,
               s->ep->log_url, (long long)r->attempts + 1, err, (unsigned long long)delay);
}

static void sender_main(void *arg)
{
    sl_wh_endpoint_t *ep = arg;
    sl_webhooks_t *w = ep->w;
    sender_t s = {.ep = ep};
    sl_backoff_t open_bo;
    sl_backoff_init(&open_bo, next_rand(ep));
    sl_backoff_init(&s.store_bo, next_rand(ep));
    int opened = 0;
    for (;;) {
        uv_mutex_lock(&w->mu);
        int stop = w->senders_stop;
        uint64_t gen = w->gen;
        uv_mutex_unlock(&w->mu);
        if (stop)
            break;
        uint64_t wait_ms = IDLE_WAIT_MS;
        if (!opened) {
            if (sender_open(&s) == 0) {
                opened = 1;
                continue;
            }
            sender_close(&s);
            sl_backoff_t keep = s.store_bo;
            memset(&s, 0, sizeof s);
            s.ep = ep;
            s.store_bo = keep;
            wait_ms = sl_backoff_fail(&open_bo, DB_RETRY_MS, (uint64_t)sl_webhooks_cfg(sl__wh_cfg(w))->retry_max_ms);
        } else {
            uint64_t now = sl_time_wall_ms();
            if (s.hold_until_ms > now) {
                /* Backing off an outbox failure (see store_failed). */
                wait_ms = s.hold_until_ms - now;
            } else {
                row_t r;
                memset(&r, 0, sizeof r);
                int found = next_row(&s, &r);
                now = sl_time_wall_ms();
                if (found > 0 && (uint64_t)r.next_attempt <= now) {
                    attempt(&s, &r);
                    sl_free(r.body);
                    continue;
                }
                sl_free(r.body);
                if (found > 0)
                    wait_ms = (uint64_t)r.next_attempt - now;
                else if (found < 0) {
                    store_failed(&s, "cannot read the next delivery", NULL, now);
                    wait_ms = s.hold_until_ms - now;
                }
            }
        }
        uv_mutex_lock(&w->mu);
        if (!w->senders_stop && w->gen == gen)
            timed_wait(&w->sender_cv, &w->mu, wait_ms);
        uv_mutex_unlock(&w->mu);
    }
    sender_close(&s);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */

int sl__webhooks_threads_start(sl_webhooks_t *w)
{
    int rc = uv_thread_create(&w->writer, writer_main, w);
    if (rc)
        return rc;
    w->writer_started = 1;
    uv_mutex_lock(&w->mu);
    while (w->writer_state == 0)
        uv_cond_wait(&w->writer_cv, &w->mu);
    rc = w->writer_state < 0 ? w->writer_state : 0;
    uv_mutex_unlock(&w->mu);
    if (rc)
        return rc;
    for (size_t i = 0; i < w->n_eps; i++) {
        rc = sl__webhooks_sender_start(w, &w->eps[i]);
        if (rc)
            return rc;
    }
    return 0;
}

int sl__webhooks_sender_start(sl_webhooks_t *w, sl_wh_endpoint_t *ep)
{
    (void)w;
    ep->rng = (sl_time_mono_ms() ^ (uint64_t)(uintptr_t)ep) * 0x9E3779B97F4A7C15ull | 1;
    int rc = uv_thread_create(&ep->thread, sender_main, ep);
    if (rc)
        return rc;
    ep->started = 1;
    return 0;
}

void sl__webhooks_wake_senders(sl_webhooks_t *w)
{
    uv_mutex_lock(&w->mu);
    w->gen++;
    uv_cond_broadcast(&w->sender_cv);
    uv_mutex_unlock(&w->mu);
}

void sl__webhooks_senders_stop(sl_webhooks_t *w, uint64_t grace_ms)
{
    uv_mutex_lock(&w->mu);
    if (!w->senders_stop) {
        w->senders_stop = 1;
        w->stop_deadline_ms = sl_time_wall_ms() + grace_ms;
    }
    uv_cond_broadcast(&w->sender_cv);
    uv_mutex_unlock(&w->mu);
}

void sl__webhooks_threads_join(sl_webhooks_t *w)
{
    uv_mutex_lock(&w->mu);
    w->writer_stop = 1;
    uv_cond_broadcast(&w->writer_cv);
    uv_mutex_unlock(&w->mu);
    if (w->writer_started) {
        uv_thread_join(&w->writer);
        w->writer_started = 0;
    }
    sl__webhooks_senders_stop(w, 0);
    for (size_t i = 0; i < w->n_eps; i++) {
        if (w->eps[i].started) {
            uv_thread_join(&w->eps[i].thread);
            w->eps[i].started = 0;
        }
    }
}
