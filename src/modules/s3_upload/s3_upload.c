/*
 * The s3_upload module (see s3_upload.h). On the loop: a record_done
 * listener that copies the file path into a small in-memory list for the
 * worker, and a uv_async that turns the worker's results into
 * upload_done / upload_failed events. On the worker thread: the uploads
 * (libcurl easy handles, blocking, which is why they live there) and the
 * queue's SQL, handed to the store (app/store.h, the process's one SQLite
 * connection) with sl_store_call. The recordings catalog's upload_state
 * belongs to the recorder: it is set through the service "catalog" from
 * the loop. The queue answers the service "uploads" (is a file waiting?).
 *
 * Durability: a recording is a row of upload_queue (state pending) before
 * its first attempt; a row only moves to done after the object's size has
 * been verified with HEAD. A failed attempt sets next_attempt with
 * exponential backoff (1 s doubling, up to s3.retry_max_interval); rows are
 * retried forever, and at start every pending row is due again. When the
 * queue itself cannot be written (the outcome of an attempt cannot be
 * recorded, so the row would stay due), the worker backs off in memory
 * instead, with the same cap, and says so once per failing streak.
 */
#include "modules/s3_upload/s3_upload.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/events.h"
#include "app/services.h"
#include "app/store.h"
#include "app/svc/catalog.h"
#include "app/svc/uploads.h"
#include "base/alloc.h"
#include "base/backoff.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/time.h"
#include "modules/s3_upload/s3_sigv4.h"
#include "sluice/errors.h"
#include "modules/s3_upload/s3_config.h"

#define IDLE_WAIT_MS 60000
#define MAX_KEY 1024
#define MAX_ERR 256
#define MAX_PARTS 10000

static const sl_log_ctx_t g_ctx = {.proto = "s3"};

/* The queue's migrations (sl_store_migrate, module "s3_upload"); the first is
 * the schema of every sluice before the store, adopted as it is. */
static const char *const migrations[] = {
    "CREATE TABLE IF NOT EXISTS upload_queue ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " file TEXT NOT NULL,"              /* local path */
    " key TEXT NOT NULL,"               /* object key below the bucket */
    " app TEXT, stream TEXT,"
    " state TEXT NOT NULL DEFAULT 'pending'," /* pending | done */
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt INTEGER NOT NULL,"   /* wall clock ms */
    " last_error TEXT,"
    " created INTEGER NOT NULL,"
    " done_at INTEGER);"
    "CREATE INDEX IF NOT EXISTS upload_queue_due ON upload_queue (next_attempt) WHERE state = 'pending';",
};

/* A saved recording handed to the worker (one block: struct + strings). */
typedef struct item {
    struct item *next;
    char *file, *key, *app, *stream;
} item_t;

/* A result for the loop. */
typedef struct result {
    struct result *next;
    int ok;
    uint64_t size;
    char file[1024], app[128], stream[128], err[MAX_ERR];
} result_t;

typedef struct s3 {
    sl_core_t *core;
    const sl_config_t *cfg;       /* replaced by a reload (old ones live until exit): the
                                     worker reads it with s3_cfg() */
    char *db_path;                /* for log lines */
    sl_store_t *store;            /* the service "store" (borrowed) */
    size_t data_dir_len;
    int listener_id;
    uv_async_t async;
    uv_thread_t thread;
    int thread_started;
    int curl_ref;                 /* curl_global_init done (undone in free) */
    uv_mutex_t mu;
    uv_cond_t cv;
    item_t *items;                /* (mu) newest first; the worker inserts them */
    result_t *results;            /* (mu) newest first */
    int stop;                     /* (mu) */
    sl_backoff_t store_bo;        /* (worker) consecutive queue write failures */
    int64_t hold_until_ms;        /* (worker) wall clock; no attempt before this */
} s3_t;

/* The configuration in force, from any thread (a reload swaps it on the loop). */
static const sl_config_t *s3_cfg(const s3_t *s)
{
    return __atomic_load_n(&s->cfg, __ATOMIC_ACQUIRE);
}

/* ------------------------------------------------------------------ */
/* HTTP with libcurl (worker thread)                                   */

typedef struct {
    const uint8_t *p;
    size_t len, pos;
} body_t;

static size_t read_body(char *buf, size_t size, size_t n, void *ud)
{
    body_t *b = ud;
    size_t want = size * n, left = b->len - b->pos;
    size_t k = want < left ? want : left;
    memcpy(buf, b->p + b->pos, k);
    b->pos += k;
    return k;
}

typedef struct {
    char etag[128];
    uint64_t content_length;
    int have_length;
    char *resp;                   /* response body (bounded), owned */
    size_t resp_len;
} reply_t;

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    reply_t *r = ud;
    size_t len = size * n;
    if (len > 5 && strncasecmp(buf, "etag:", 5) == 0) {
        const char *v = buf + 5;
        while (*v == ' ')
            v++;
        size_t vn = len - (size_t)(v - buf);
        while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' '))
            vn--;
        if (vn < sizeof r->etag) {
            memcpy(r->etag, v, vn);
            r->etag[vn] = '\0';
        }
    } else if (len > 15 && strncasecmp(buf, "content-length:", 15) == 0) {
        r->content_length = strtoull(buf + 15, NULL, 10);
        r->have_length = 1;
    }
    return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ud)
{
    reply_t *r = ud;
    size_t len = size * n;
    if (r->resp_len + len > 64 * 1024)
        return len; /* keep the start: enough for UploadId and error codes */
    char *nb = sl_realloc(r->resp, r->resp_len + len + 1);
    if (!nb)
        return 0;
    memcpy(nb + r->resp_len, buf, len);
    r->resp = nb;
    r->resp_len += len;
    r->resp[r->resp_len] = '\0';
    return len;
}

/*
 * One signed request: method on /{bucket}/{key}?query with an optional
 * body. Returns the HTTP status (2xx success) or a negative error, with a
 * message in err.
 */
static long s3_request(s3_t *s, const char *method, const char *key, const char *query,
                       const uint8_t *body, size_t body_len, reply_t *reply, char *err)
{
    const sl_config_t *cfg = s3_cfg(s); /* one configuration for the whole request */
    const char *host = strstr(sl_s3_cfg(cfg)->endpoint, "://"); /* Host header: "host[:port]" */
    host = host ? host + 3 : sl_s3_cfg(cfg)->endpoint;
    char path[MAX_KEY + 300], enc[3 * (MAX_KEY + 300)], url[4 * MAX_KEY], amz_date[17];
    char payload[SL_S3_SHA256_HEX], auth[512], h_auth[600], h_date[64], h_sha[100];
    long status = -1;
    struct curl_slist *hdrs = NULL;
    CURL *curl = NULL;
    memset(reply, 0, sizeof *reply);
    snprintf(path, sizeof path, "/%s/%s", sl_s3_cfg(cfg)->bucket, key);
    if (sl_s3_uri_encode(path, 1, enc, sizeof enc)) {
        snprintf(err, MAX_ERR, "object key too long");
        return -1;
    }
    snprintf(url, sizeof url, "%s%s%s%s", sl_s3_cfg(cfg)->endpoint, enc, query && query[0] ? "?" : "",
             query ? query : "");
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", &tm);
    sl_s3_sha256_hex(body ? (const void *)body : "", body ? body_len : 0, payload);
    const sl_s3_header_t sh[] = {{"host", host}, {"x-amz-content-sha256", payload},
                                 {"x-amz-date", amz_date}};
    sl_s3_request_t rq = {.method = method, .path = path, .query = query, .headers = sh,
                          .n_headers = 3, .payload_sha256 = payload, .amz_date = amz_date,
                          .region = sl_s3_cfg(cfg)->region, .service = "s3",
                          .access_key = sl_s3_cfg(cfg)->access_key, .secret_key = sl_s3_cfg(cfg)->secret_key};
    int rc = sl_s3_sign(&rq, auth, sizeof auth);
    if (rc) {
        snprintf(err, MAX_ERR, "signing failed: %s", sl_strerror(rc));
        return -1;
    }
    snprintf(h_auth, sizeof h_auth, "Authorization: %s", auth);
    snprintf(h_date, sizeof h_date, "x-amz-date: %s", amz_date);
    snprintf(h_sha, sizeof h_sha, "x-amz-content-sha256: %s", payload);
    curl = curl_easy_init();
    if (!curl) {
        snprintf(err, MAX_ERR, "curl_easy_init failed");
        return -1;
    }
    struct curl_slist *l = NULL;
    size_t key_len = strlen(key);
    int is_mp4 = key_len > 4 && strcmp(key + key_len - 4, ".mp4") == 0;
    const char *add[] = {h_auth, h_date, h_sha, "Expect:",
                         strcmp(method, "PUT") == 0 && !query
                             ? is_mp4 ? "Content-Type: video/mp4" : "Content-Type: video/x-flv"
                             : NULL};
    for (size_t i = 0; i < sizeof add / sizeof add[0]; i++) {
        if (!add[i])
            continue;
        l = curl_slist_append(hdrs, add[i]);
        if (!l) {
            snprintf(err, MAX_ERR, "out of memory");
            goto out;
        }
        hdrs = l;
    }
    body_t b = {body, body_len, 0};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)sl_s3_cfg(cfg)->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, reply);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, reply);
    if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_body);
        curl_easy_setopt(curl, CURLOPT_READDATA, &b);
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode cc = curl_easy_perform(curl);
    if (cc != CURLE_OK) {
        snprintf(err, MAX_ERR, "%s %s: %s", method, key, curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) {
        char why[160]; /* S3 answers an XML <Error>: its Code and Message, on one line */
        snprintf(err, MAX_ERR, "%s %s: HTTP %ld %s", method, key, status,
                 sl_s3_error_text(reply->resp, why, sizeof why));
    }
out:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    return status;
}

/* Reads len bytes at off of fd into a new buffer (caller frees). NULL on error. */
static uint8_t *read_range(int fd, uint64_t off, size_t len)
{
    uint8_t *buf = sl_malloc(len ? len : 1);
    if (buf && sl_pread_full(fd, buf, len, (off_t)off) != 1) {
        sl_free(buf);
        return NULL;
    }
    return buf;
}

/* Text between <tag> and </tag> in xml, into out. 0 when absent. */
static int xml_value(const char *xml, const char *tag, char *out, size_t cap)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = xml ? strstr(xml, open) : NULL;
    const char *b = a ? strstr(a, close) : NULL;
    if (!a || !b)
        return 0;
    a += strlen(open);
    size_t n = (size_t)(b - a);
    if (n >= cap)
        return 0;
    memcpy(out, a, n);
    out[n] = '\0';
    return 1;
}

/* Multipart upload of size bytes of fd. 0, or -1 with err. */
static int upload_multipart(s3_t *s, int fd, uint64_t size, const char *key, char *err)
{
    reply_t rep;
    char upload_id[512], query[700];
    size_t part = (size_t)sl_s3_cfg(s3_cfg(s))->part_size;
    uint64_t n_parts = (size + part - 1) / part;
    char (*etags)[128] = NULL;
    char *xml = NULL;
    int rc = -1;
    if (n_parts > MAX_PARTS) {
        snprintf(err, MAX_ERR, "file too large for %" PRIu64 " parts", n_parts);
        return -1;
    }
    long st = s3_request(s, "POST", key, "uploads", NULL, 0, &rep, err);
    int have_id = st >= 200 && st < 300 && xml_value(rep.resp, "UploadId", upload_id,
                                                     sizeof upload_id);
    sl_free(rep.resp);
    if (!have_id) {
        if (st >= 200 && st < 300)
            snprintf(err, MAX_ERR, "no UploadId in the answer to CreateMultipartUpload");
        return -1;
    }
    char enc_id[1600];
    if (sl_s3_uri_encode(upload_id, 0, enc_id, sizeof enc_id))
        goto abort;
    etags = sl_calloc((size_t)n_parts, sizeof *etags);
    xml = sl_malloc((size_t)n_parts * 200 + 128);
    if (!etags || !xml) {
        snprintf(err, MAX_ERR, "out of memory");
        goto abort;
    }
    for (uint64_t i = 0; i < n_parts; i++) {
        uint64_t off = i * part;
        size_t len = (size_t)(size - off < part ? size - off : part);
        uint8_t *buf = read_range(fd, off, len);
        if (!buf) {
            snprintf(err, MAX_ERR, "cannot read the file at %" PRIu64, off);
            goto abort;
        }
        /* The signer encodes the query itself: give it the raw id. */
        snprintf(query, sizeof query, "partNumber=%" PRIu64 "&uploadId=%s", i + 1, upload_id);
        st = s3_request(s, "PUT", key, query, buf, len, &rep, err);
        sl_free(buf);
        sl_free(rep.resp);
        if (st < 200 || st > 299)
            goto abort;
        if (!rep.etag[0]) {
            snprintf(err, MAX_ERR, "part %" PRIu64 " answered without an ETag", i + 1);
            goto abort;
        }
        snprintf(etags[i], sizeof etags[i], "%s", rep.etag);
    }
    size_t o = (size_t)sprintf(xml, "<CompleteMultipartUpload>");
    for (uint64_t i = 0; i < n_parts; i++)
        o += (size_t)sprintf(xml + o, "<Part><PartNumber>%" PRIu64 "</PartNumber><ETag>%s</ETag></Part>",
                             i + 1, etags[i]);
    o += (size_t)sprintf(xml + o, "</CompleteMultipartUpload>");
    snprintf(query, sizeof query, "uploadId=%s", upload_id);
    st = s3_request(s, "POST", key, query, (const uint8_t *)xml, o, &rep, err);
    /* S3 may answer 200 with an <Error> body for CompleteMultipartUpload. */
    int bad = st < 200 || st > 299 || (rep.resp && strstr(rep.resp, "<Error>"));
    if (bad && st >= 200 && st < 300)
        snprintf(err, MAX_ERR, "CompleteMultipartUpload failed: %s",
                 sl_s3_error_text(rep.resp, (char[160]){0}, 160));
    sl_free(rep.resp);
    if (bad)
        goto abort;
    rc = 0;
    goto out;
abort:
    snprintf(query, sizeof query, "uploadId=%s", upload_id);
    {
        char ignored[MAX_ERR];
        s3_request(s, "DELETE", key, query, NULL, 0, &rep, ignored);
        sl_free(rep.resp);
    }
out:
    sl_free(etags);
    sl_free(xml);
    return rc;
}

/* Uploads and verifies one file. 0 and *size, or -1 with err. */
static int upload_file(s3_t *s, const char *file, const char *key, uint64_t *size, char *err)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat stt;
    int rc = -1;
    reply_t rep;
    if (fd < 0 || fstat(fd, &stt)) {
        snprintf(err, MAX_ERR, "cannot open %.160s: %.60s", file, strerror(errno));
        goto out;
    }
    *size = (uint64_t)stt.st_size;
    if (*size > (uint64_t)sl_s3_cfg(s3_cfg(s))->part_size) {
        if (upload_multipart(s, fd, *size, key, err))
            goto out;
    } else {
        uint8_t *buf = read_range(fd, 0, (size_t)*size);
        if (!buf) {
            snprintf(err, MAX_ERR, "cannot read %.200s", file);
            goto out;
        }
        long st = s3_request(s, "PUT", key, NULL, buf, (size_t)*size, &rep, err);
        sl_free(buf);
        sl_free(rep.resp);
        if (st < 200 || st > 299)
            goto out;
    }
    /* Verify before anything relies on it (the local copy may be deleted next). */
    long st = s3_request(s, "HEAD", key, NULL, NULL, 0, &rep, err);
    sl_free(rep.resp);
    if (st < 200 || st > 299)
        goto out;
    if (!rep.have_length || rep.content_length != *size) {
        snprintf(err, MAX_ERR, "verification failed: %.150s holds %" PRIu64 " bytes, not %" PRIu64,
                 key, rep.content_length, *size);
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the worker                                                          */

static void post(s3_t *s, int ok, const char *file, const char *app, const char *stream,
                 uint64_t size, const char *err)
{
    result_t *r = sl_calloc(1, sizeof *r);
    if (!r)
        return; /* the event is lost, not the upload (the queue is in SQLite) */
    r->ok = ok;
    r->size = size;
    snprintf(r->file, sizeof r->file, "%s", file);
    snprintf(r->app, sizeof r->app, "%s", app ? app : "");
    snprintf(r->stream, sizeof r->stream, "%s", stream ? stream : "");
    snprintf(r->err, sizeof r->err, "%s", err ? err : "");
    uv_mutex_lock(&s->mu);
    r->next = s->results;
    s->results = r;
    uv_mutex_unlock(&s->mu);
    uv_async_send(&s->async);
}

/* Brings the queue's schema up to date (worker thread, blocking). 1 usable, 0 not (logged). */
static int db_open(s3_t *s)
{
    int rc = s->store ? sl_store_migrate(s->store, "s3_upload", migrations,
                                         sizeof migrations / sizeof migrations[0])
                      : SL_ECLOSED;
    if (rc)
        SL_LOGE(&g_ctx, "s3: upload queue %s unusable: %s", s->db_path, sl_strerror(rc));
    return rc == 0;
}

/* Moves the items handed over by the loop into the table (store worker). */
static int insert_items_work(sqlite3 *db, void *arg)
{
    item_t *it = arg;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO upload_queue (file, key, app, stream, next_attempt,"
                               " created) VALUES (?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
        st = NULL;
    while (it) {
        item_t *next = it->next;
        int64_t now = (int64_t)sl_time_wall_ms();
        if (st) {
            sqlite3_reset(st);
            sqlite3_bind_text(st, 1, it->file, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, it->key, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, it->app, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, it->stream, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 5, now);
            sqlite3_bind_int64(st, 6, now);
            if (sqlite3_step(st) != SQLITE_DONE)
                SL_LOGE(&g_ctx, "s3: cannot queue %s: %s", it->file, sqlite3_errmsg(db));
        }
        sl_free(it);
        it = next;
    }
    sqlite3_finalize(st);
    return 0;
}

static void insert_items(s3_t *s, item_t *it)
{
    if (sl_store_call(s->store, insert_items_work, it) == 0)
        return;
    while (it) { /* the store closed: nothing ran */
        item_t *n = it->next;
        SL_LOGE(&g_ctx, "s3: queue unavailable: %s will not be uploaded", it->file);
        sl_free(it);
        it = n;
    }
}

/* One UPDATE with an int64, a text and an int64 bound, run on the store. */
typedef struct {
    const char *sql;
    int64_t a, b;
    const char *text;
    char err[MAX_ERR];           /* SQLite's message when it failed */
} update_t;

static int update_work(sqlite3 *db, void *arg)
{
    update_t *u = arg;
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(db, u->sql, -1, &st, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_int64(st, 1, u->a);
        if (u->text)
            sqlite3_bind_text(st, 2, u->text, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 2);
        sqlite3_bind_int64(st, 3, u->b);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    if (!ok)
        snprintf(u->err, sizeof u->err, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return ok;
}

/* Runs one UPDATE (see update_t); 1 if it succeeded, else 0 and the reason in err. */
static int run_update(s3_t *s, const char *sql, int64_t a, const char *text, int64_t b,
                      char *err, size_t err_cap)
{
    update_t u = {.sql = sql, .a = a, .b = b, .text = text};
    int rc = sl_store_call(s->store, update_work, &u);
    if (rc != 1)
        snprintf(err, err_cap, "%s", rc == SL_ECLOSED ? "the store is closed" : u.err);
    return rc == 1;
}

/* The queue could not record an attempt's outcome: hold every attempt for a
 * backoff kept in memory (the row's next_attempt did not move). Logged once
 * per failing streak. */
static void store_failed(s3_t *s, const char *dberr, const char *file, int64_t now)
{
    uint64_t delay = sl_backoff_fail(&s->store_bo, 1000, (uint64_t)sl_s3_cfg(s3_cfg(s))->retry_max_ms);
    s->hold_until_ms = now + (int64_t)delay;
    if (s->store_bo.failures == 1)
        SL_LOGE(&g_ctx, "s3: the upload queue %s cannot be written (%s) after an attempt on %s: "
                "uploads back off in memory until it can", s->db_path, dberr, file);
    else
        SL_LOGD(&g_ctx, "s3: upload queue still not writable (%u in a row): next try in %" PRIu64
                " ms", s->store_bo.failures, delay);
}

static void store_ok(s3_t *s)
{
    uint32_t n = sl_backoff_ok(&s->store_bo);
    s->hold_until_ms = 0;
    if (n)
        SL_LOGI(&g_ctx, "s3: the upload queue %s is writable again after %u failures", s->db_path,
                n);
}

/* The oldest due row of the queue, read on the store. */
typedef struct {
    int64_t now, id, next;
    int attempts;
    char file[1024], key[MAX_KEY], app[128], stream[128];
} due_t;

/* 1 a row was read (due or not: compare next), 0 none, <0 error (store worker). */
static int next_due_work(sqlite3 *db, void *arg)
{
    due_t *d = arg;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT id, file, key, app, stream, attempts, next_attempt FROM"
                               " upload_queue WHERE state = 'pending' ORDER BY next_attempt, id"
                               " LIMIT 1", -1, &st, NULL) != SQLITE_OK)
        return SL_EIO;
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return 0;
    }
    d->next = sqlite3_column_int64(st, 6);
    d->id = sqlite3_column_int64(st, 0);
    d->attempts = sqlite3_column_int(st, 5);
    snprintf(d->file, sizeof d->file, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(d->key, sizeof d->key, "%s", (const char *)sqlite3_column_text(st, 2));
    snprintf(d->app, sizeof d->app, "%s", sqlite3_column_text(st, 3) ? (const char *)sqlite3_column_text(st, 3) : "");
    snprintf(d->stream, sizeof d->stream, "%s", sqlite3_column_text(st, 4) ? (const char *)sqlite3_column_text(st, 4) : "");
    sqlite3_finalize(st);
    return 1;
}

/* Tries the oldest due row. Returns 1 if one was tried, 0 if none is due; *wait_ms
 * is set to the time until the next due row. */
static int attempt_one(s3_t *s, uint64_t *wait_ms)
{
    int64_t now = (int64_t)sl_time_wall_ms();
    *wait_ms = IDLE_WAIT_MS;
    if (s->hold_until_ms > now) {
        *wait_ms = (uint64_t)(s->hold_until_ms - now);
        return 0;
    }
    due_t *d = sl_calloc(1, sizeof *d);
    if (!d)
        return 0;
    if (sl_store_call(s->store, next_due_work, d) != 1) {
        sl_free(d);
        return 0;
    }
    if (d->next > now) {
        *wait_ms = (uint64_t)(d->next - now);
        sl_free(d);
        return 0;
    }
    int64_t id = d->id;
    int attempts = d->attempts;
    const char *file = d->file, *key = d->key, *app = d->app, *stream = d->stream;
    char err[MAX_ERR] = "", dberr[MAX_ERR];
    uint64_t size = 0;
    int rc = upload_file(s, file, key, &size, err);
    now = (int64_t)sl_time_wall_ms();
    if (rc == 0) {
        if (run_update(s, "UPDATE upload_queue SET state = 'done', attempts = attempts + 1,"
                          " done_at = ?1, last_error = ?2 WHERE id = ?3", now, NULL, id,
                       dberr, sizeof dberr))
            store_ok(s);
        else
            store_failed(s, dberr, file, now); /* uploaded again later: same key, same bytes */
        /* The catalog's upload_state is set by on_async, on the loop. */
        SL_LOGI(&g_ctx, "s3: uploaded %s to %s/%s (%" PRIu64 " bytes, verified)", file,
                sl_s3_cfg(s3_cfg(s))->bucket, key, size);
        if (sl_s3_cfg(s3_cfg(s))->delete_after_upload) {
            if (unlink(file) == 0)
                SL_LOGI(&g_ctx, "s3: deleted the local copy %s", file);
            else
                SL_LOGW(&g_ctx, "s3: cannot delete %s: %s", file, strerror(errno));
        }
        post(s, 1, file, app, stream, size, NULL);
    } else {
        /* Exponential backoff from 1 s, capped; retried until done. */
        uint64_t delay = 1000;
        for (int i = 0; i < attempts && delay < (uint64_t)sl_s3_cfg(s3_cfg(s))->retry_max_ms; i++)
            delay *= 2;
        if (delay > (uint64_t)sl_s3_cfg(s3_cfg(s))->retry_max_ms)
            delay = (uint64_t)sl_s3_cfg(s3_cfg(s))->retry_max_ms;
        if (run_update(s, "UPDATE upload_queue SET attempts = attempts + 1, next_attempt = ?1,"
                          " last_error = ?2 WHERE id = ?3", now + (int64_t)delay, err, id,
                       dberr, sizeof dberr))
            store_ok(s);
        else
            store_failed(s, dberr, file, now);
        SL_LOGW(&g_ctx, "s3: upload of %s failed (attempt %d): %s; retrying in %" PRIu64 " ms",
                file, attempts + 1, err, delay);
        post(s, 0, file, app, stream, size, err);
    }
    sl_free(d);
    return 1;
}

static void worker_main(void *arg)
{
    s3_t *s = arg;
    sl_backoff_init(&s->store_bo, sl_time_mono_ms() ^ (uint64_t)(uintptr_t)s);
    int have_queue = db_open(s);
    uint64_t wait_ms = 0;
    sl_backoff_t open_bo;
    sl_backoff_init(&open_bo, sl_time_mono_ms());
    for (;;) {
        uv_mutex_lock(&s->mu);
        if (!s->stop && !s->items && wait_ms)
            (void)uv_cond_timedwait(&s->cv, &s->mu, wait_ms * 1000000ull);
        item_t *items = s->items;
        s->items = NULL;
        int stop = s->stop;
        uv_mutex_unlock(&s->mu);
        if (!have_queue) {
            have_queue = db_open(s);
            wait_ms = have_queue ? 0 : sl_backoff_fail(&open_bo, 1000, (uint64_t)sl_s3_cfg(s3_cfg(s))->retry_max_ms);
        }
        /* Oldest first: the list is newest first. */
        item_t *rev = NULL;
        while (items) {
            item_t *n = items->next;
            items->next = rev;
            rev = items;
            items = n;
        }
        if (have_queue)
            insert_items(s, rev);
        else
            while (rev) {
                item_t *n = rev->next;
                SL_LOGE(&g_ctx, "s3: queue unavailable: %s will not be uploaded", rev->file);
                sl_free(rev);
                rev = n;
            }
        if (stop)
            break;
        if (have_queue) {
            uint64_t next_wait = IDLE_WAIT_MS;
            wait_ms = attempt_one(s, &next_wait) ? 0 : (next_wait ? next_wait : 1);
        }
    }
}

/* ------------------------------------------------------------------ */
/* the service "uploads" (any thread but the loop's)                   */

typedef struct {
    const char *path;
} pending_t;

static int pending_work(sqlite3 *db, void *arg)
{
    pending_t *p = arg;
    sqlite3_stmt *st = NULL;
    int found;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM upload_queue WHERE file = ? AND state ="
                               " 'pending' LIMIT 1", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, p->path, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        found = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : SL_EIO;
    } else {
        /* No such table: nothing ever waited for upload. Any other failure (busy,
         * I/O): unknown, and a caller about to delete must keep the file. */
        found = sqlite3_errcode(db) == SQLITE_ERROR && strstr(sqlite3_errmsg(db), "no such table")
                    ? 0
                    : SL_EIO;
    }
    sqlite3_finalize(st);
    return found;
}

/* uploads.pending: the state is the store (the queue is read even while
 * uploading is off: rows left by an earlier configuration still wait). */
static int uploads_pending(void *ud, const char *path)
{
    pending_t p = {.path = path};
    return sl_store_call(ud, pending_work, &p);
}

static const sl_uploads_service_t g_uploads = {.pending = uploads_pending};

/* ------------------------------------------------------------------ */
/* the loop side                                                       */

/* Records the upload state in the recorder's catalog, when there is one. */
static void set_upload_state(s3_t *s, const char *file, const char *state)
{
    void *ud = NULL;
    const sl_catalog_service_t *cat = sl_service_get(s->core, SL_CATALOG_SERVICE,
                                                     SL_CATALOG_MAJOR, 0, &ud);
    if (cat)
        (void)cat->set_upload_state(ud, file, state);
}

static void on_event(const sl_event_t *ev, void *ud)
{
    s3_t *s = ud;
    if (ev->type != SL_EV_RECORD_DONE || !ev->path)
        return;
    if (ev->reason && strcmp(ev->reason, "recovered") != 0)
        return; /* failed recordings are not uploaded */
    /* The key is the path below data_dir: {app}/streams/{name}. */
    const char *dd = s3_cfg(s)->server_data_dir;
    if (strncmp(ev->path, dd, s->data_dir_len) != 0 || ev->path[s->data_dir_len] != '/')
        return;
    const char *key = ev->path + s->data_dir_len + 1;
    const char *app = ev->app ? ev->app : "", *stream = ev->stream ? ev->stream : "";
    size_t n = sizeof(item_t) + strlen(ev->path) + strlen(key) + strlen(app) + strlen(stream) + 4;
    item_t *it = sl_malloc(n);
    if (!it) {
        SL_LOGE(&g_ctx, "s3: out of memory: %s not queued for upload", ev->path);
        return;
    }
    char *p = (char *)(it + 1);
    const char *src[4] = {ev->path, key, app, stream};
    char **dst[4] = {&it->file, &it->key, &it->app, &it->stream};
    for (int i = 0; i < 4; i++) {
        size_t k = strlen(src[i]) + 1;
        memcpy(p, src[i], k);
        *dst[i] = p;
        p += k;
    }
    uv_mutex_lock(&s->mu);
    it->next = s->items;
    s->items = it;
    uv_cond_signal(&s->cv);
    uv_mutex_unlock(&s->mu);
    set_upload_state(s, ev->path, "pending");
}

static void on_async(uv_async_t *h)
{
    s3_t *s = h->data;
    uv_mutex_lock(&s->mu);
    result_t *r = s->results;
    s->results = NULL;
    uv_mutex_unlock(&s->mu);
    result_t *rev = NULL;
    while (r) {
        result_t *n = r->next;
        r->next = rev;
        rev = r;
        r = n;
    }
    while (rev) {
        result_t *n = rev->next;
        sl_event_t ev = {.type = rev->ok ? SL_EV_UPLOAD_DONE : SL_EV_UPLOAD_FAILED,
                         .app = rev->app, .stream = rev->stream, .path = rev->file,
                         .reason = rev->ok ? NULL : rev->err, .bytes_out = rev->size};
        if (rev->ok)
            set_upload_state(s, rev->file, "done");
        sl_events_emit(s->core, &ev);
        sl_free(rev);
        rev = n;
    }
}

static void on_async_closed(uv_handle_t *h)
{
    (void)h;
}

static int s3_init(const sl_host_api_t *api, sl_host_t *host, void **state)
{
    sl_core_t *core = sl_host_core(host);
    (void)api;
    const sl_config_t *cfg = core->cfg;
    *state = NULL;
    /* The queue answers "is this file waiting?" whether uploading is on or
     * not (the cleaner asks); its state is the store, which outlives us. */
    sl_store_t *store = sl_store_find(core);
    if (store) {
        int rc = sl_service_register(core, SL_UPLOADS_SERVICE, SL_UPLOADS_MAJOR, SL_UPLOADS_MINOR,
                                     &g_uploads, store);
        if (rc)
            return rc;
    }
    if (!sl_s3_cfg(cfg)->endpoint[0] || !sl_s3_cfg(cfg)->bucket[0])
        return 0;
    const char *h = strstr(sl_s3_cfg(cfg)->endpoint, "://");
    if (!h || strchr(h + 3, '/') || !sl_s3_cfg(cfg)->access_key[0] || !sl_s3_cfg(cfg)->secret_key[0]) {
        SL_LOGE(&g_ctx, "s3: s3.endpoint must be scheme://host[:port] without a path, and "
                        "s3.access_key and s3.secret_key must be set");
        return SL_EINVAL;
    }
    int rc = SL_ENOMEM, have_sync = 0;
    s3_t *s = sl_calloc(1, sizeof *s);
    if (!s)
        return SL_ENOMEM;
    s->core = core;
    s->cfg = cfg;
    s->store = store;
    s->data_dir_len = strlen(cfg->server_data_dir);
    size_t n = s->data_dir_len + sizeof "/sluice.db";
    s->db_path = sl_malloc(n);
    if (!s->db_path)
        goto fail;
    snprintf(s->db_path, n, "%s/sluice.db", cfg->server_data_dir);
    /* libcurl's global state is reference-counted: ours keeps it alive for the worker
     * whatever other clients do (same allocator as every other curl user here). */
    if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, sl_malloc, sl_free, sl_realloc, sl_strdup,
                             sl_calloc) != CURLE_OK) {
        rc = SL_EIO;
        goto fail;
    }
    s->curl_ref = 1;
    if ((rc = uv_mutex_init(&s->mu)))
        goto fail;
    if ((rc = uv_cond_init(&s->cv))) {
        uv_mutex_destroy(&s->mu);
        goto fail;
    }
    have_sync = 1;
    rc = sl_events_subscribe(core, "s3_upload", SL_EV_PHASE_QUEUE, on_event, s);
    if (rc < 0)
        goto fail;
    s->listener_id = rc;
    if ((rc = uv_async_init(core->loop, &s->async, on_async)))
        goto fail;
    s->async.data = s;
    if ((rc = uv_thread_create(&s->thread, worker_main, s))) {
        uv_close((uv_handle_t *)&s->async, on_async_closed);
        sl_events_unsubscribe(core, s->listener_id);
        SL_LOGE(&g_ctx, "s3: cannot start the worker: %s", uv_strerror(rc));
        return rc; /* the state stays allocated: the process exits on this error */
    }
    s->thread_started = 1;
    char rb[SL_REDACT_MAX];
    SL_LOGI(&g_ctx, "s3: uploading recordings to %s/%s", sl_redact(sl_s3_cfg(cfg)->endpoint, rb, sizeof rb),
            sl_s3_cfg(cfg)->bucket);
    *state = s;
    return 0;
fail:
    if (s->listener_id > 0)
        sl_events_unsubscribe(core, s->listener_id);
    if (have_sync) {
        uv_cond_destroy(&s->cv);
        uv_mutex_destroy(&s->mu);
    }
    if (s->curl_ref)
        curl_global_cleanup();
    sl_free(s->db_path);
    sl_free(s);
    return rc;
}

static void s3_stop(void *state)
{
    s3_t *s = state;
    if (!s)
        return;
    /* The upload in progress finishes (bounded by s3.timeout per request); pending
     * rows stay in the queue for the next start. */
    uv_mutex_lock(&s->mu);
    s->stop = 1;
    uv_cond_signal(&s->cv);
    uv_mutex_unlock(&s->mu);
    if (s->thread_started)
        uv_thread_join(&s->thread);
    s->thread_started = 0;
    on_async(&s->async);
    sl_events_unsubscribe(s->core, s->listener_id);
    uv_close((uv_handle_t *)&s->async, on_async_closed);
}

static void s3_free(void *state)
{
    s3_t *s = state;
    if (!s)
        return;
    uv_cond_destroy(&s->cv);
    uv_mutex_destroy(&s->mu);
    if (s->curl_ref)
        curl_global_cleanup();
    sl_free(s->db_path);
    sl_free(s);
}

/*
 * --check-config and start: with s3.endpoint and s3.bucket set, the
 * endpoint must be http(s)://host[:port] without a path and both keys must
 * be set (s3_start refuses the same).
 */
static int s3_check(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    if (!sl_s3_cfg(cfg)->endpoint[0] || !sl_s3_cfg(cfg)->bucket[0])
        return 0;
    int n = 0;
    const char *e = sl_s3_cfg(cfg)->endpoint, *h = strstr(e, "://");
    if (!h || strchr(h + 3, '/') || !h[3] ||
        !(strncmp(e, "http://", 7) == 0 || strncmp(e, "https://", 8) == 0)) {
        sl_config_report(cfg, "s3.endpoint", err, ud,
                         "'%.200s' must be http(s)://host[:port], without a path", e);
        n++;
    }
    if (!sl_s3_cfg(cfg)->access_key[0] || !sl_s3_cfg(cfg)->secret_key[0]) {
        sl_config_report(cfg, sl_s3_cfg(cfg)->access_key[0] ? "s3.secret_key" : "s3.access_key", err, ud,
                         "must be set to upload to %.200s", e);
        n++;
    }
    return n;
}

/*
 * Configuration reload: inert until now, the module starts (the host runs
 * its init again) when an endpoint and bucket were configured. Running, the worker takes the new
 * endpoint, bucket, keys and limits from its next request on (an upload in
 * flight may finish its parts against the new settings; a failed one is
 * retried from the start). Turning upload off needs a restart (the queue
 * and the worker stay as they are: SL_EAGAIN).
 */
static int s3_reload(void *state)
{
    s3_t *s = state;
    const sl_config_t *new_cfg = s->core->cfg;
    if (!sl_s3_cfg(new_cfg)->endpoint[0] || !sl_s3_cfg(new_cfg)->bucket[0])
        return SL_EAGAIN;
    __atomic_store_n(&s->cfg, new_cfg, __ATOMIC_RELEASE);
    return 0;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "s3_upload",
    .description = "uploads recordings to S3-compatible storage",
    .init = s3_init,
    .stop = s3_stop,
    .destroy = s3_free,
    .reload = s3_reload,
};

const sl_builtin_t sl_s3_upload_builtin = {
    .plugin = &plugin,
    .config = &sl_s3_config_section,
    .check = s3_check,
};
