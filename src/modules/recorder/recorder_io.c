/*
 * The recorder's writer thread (see recorder_internal.h): FLV files and
 * the recordings catalog. Nothing here runs on the loop thread.
 *
 * Crash safety: a file is an FLV header, one onMetaData tag written by us
 * (duration and filesize as AMF0 numbers at known offsets, zero while
 * recording), then every frame appended as a complete tag with its
 * PreviousTagSize. write(2) of each tag goes to the page cache at once, so
 * a kill -9 of the process loses nothing and leaves a playable file; only
 * a power cut can tear the last tag. Each recording has a catalog row in
 * {data_dir}/sluice.db (the store, app/store.h: this thread hands its SQL
 * to the store's worker with sl_store_call and waits) in state
 * `recording` from the start; at the
 * next start every such row is finalised: the file is scanned, a torn
 * last tag is cut off, onMetaData's duration and filesize are rewritten,
 * and the row becomes `done` (reported to the loop, which logs it and
 * emits record_done).
 *
 * MP4 recordings (recorder_mp4.c) are fragmented: ftyp+moov first, then
 * one moof+mdat per keyframe (2 s at most), each written whole; a kill -9
 * leaves a file that plays up to its last fragment. At the next start the
 * same catalog pass cuts a torn fragment off (a power cut) and reads the
 * duration back by demuxing the file.
 *
 * Errors: an I/O error while recording (ENOSPC above all) marks the
 * recording failed, drops its remaining frames, and is reported to the
 * loop, which stops the sink; live streaming goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/services.h"
#include "app/store.h"
#include "app/svc/catalog.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/time.h"
#include "media/flv.h"
#include "modules/recorder/recorder_internal.h"
#include "modules/recorder/recorder_mp4.h"
#include "sluice/errors.h"

#define FLV_HEADER_LEN 13          /* 9-byte header + PreviousTagSize0 */
#define TAG_HEADER_LEN 11
#define MAX_TAG_BODY (16u << 20)   /* tags larger than this are treated as garbage by the scan */
#define APPEND_GAP_MS 40           /* distance between the old last tag and the appended first */
#define MP4_FRAGMENT_MS 2000       /* an MP4 fragment lasts at most this (and ends at keyframes) */

static const sl_log_ctx_t g_ctx = {.proto = "recorder"};

/* The catalog's migrations (sl_store_migrate, module "recorder"); the first is
 * the schema of every sluice before the store, adopted as it is. */
static const char *const migrations[] = {
    "CREATE TABLE IF NOT EXISTS recordings ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " app TEXT NOT NULL,"                 /* scope path */
    " stream TEXT NOT NULL,"
    " file TEXT NOT NULL,"                /* path as opened */
    " name TEXT NOT NULL,"                /* relative to {data_dir}/{app}/streams */
    " start INTEGER NOT NULL,"            /* wall clock ms */
    " end INTEGER,"                       /* wall clock ms */
    " duration INTEGER,"                  /* ms of media in the file */
    " size INTEGER,"                      /* bytes */
    " codecs TEXT,"
    " state TEXT NOT NULL,"               /* recording | done | failed */
    " upload_state TEXT);"                /* NULL | pending | done | failed (s3_upload) */
    "CREATE INDEX IF NOT EXISTS recordings_state ON recordings (state);",
};

/* ------------------------------------------------------------------ */
/* byte helpers (the big-endian ones are base/buf.h's sl_rd_* / sl_wr_*) */

static void put_double(uint8_t *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (56 - 8 * i));
}

/* ------------------------------------------------------------------ */
/* FLV repair (pure over a file descriptor; unit-tested)               */

/* Finds "\0\x08<key>\0" (an AMF0 property named key holding a number) in buf. */
static int64_t find_number(const uint8_t *buf, size_t n, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 3 + 8 <= n; i++) {
        if (buf[i] == 0 && buf[i + 1] == kl && memcmp(buf + i + 2, key, kl) == 0 &&
            buf[i + 2 + kl] == 0)
            return (int64_t)(i + 3 + kl);
    }
    return -1;
}

int sl_recorder_flv_repair(int fd, sl_recorder_flv_scan_t *scan)
{
    memset(scan, 0, sizeof *scan);
    scan->duration_off = scan->filesize_off = -1;
    uint8_t hdr[FLV_HEADER_LEN];
    struct stat stt;
    if (fstat(fd, &stt))
        return SL_EIO;
    uint64_t file_len = (uint64_t)stt.st_size;
    int r = sl_pread_full(fd, hdr, sizeof hdr, 0);
    if (r < 0)
        return SL_EIO;
    if (r == 0 || memcmp(hdr, "FLV", 3) != 0 || sl_rd_be32(hdr + 5) < 9)
        return SL_EPROTO;
    uint64_t pos = sl_rd_be32(hdr + 5) + 4;
    uint8_t th[TAG_HEADER_LEN];
    uint8_t *meta = NULL;
    while (pos + TAG_HEADER_LEN <= file_len) {
        if (sl_pread_full(fd, th, sizeof th, (off_t)pos) != 1)
            break;
        uint8_t type = th[0] & 0x1f;
        uint32_t len = sl_rd_be24(th + 1);
        uint32_t ts = sl_rd_be24(th + 4) | (uint32_t)th[7] << 24;
        if ((type != SL_FLV_AUDIO && type != SL_FLV_VIDEO && type != SL_FLV_DATA) ||
            len > MAX_TAG_BODY || pos + TAG_HEADER_LEN + len + 4 > file_len)
            break;
        uint8_t pts[4];
        if (sl_pread_full(fd, pts, 4, (off_t)(pos + TAG_HEADER_LEN + len)) != 1 ||
            sl_rd_be32(pts) != len + TAG_HEADER_LEN)
            break;
        if (type == SL_FLV_DATA && scan->n_tags == 0 && len <= 4096) {
            /* Our onMetaData is the first tag: find its two rewritable numbers. */
            meta = sl_malloc(len ? len : 1);
            if (meta && sl_pread_full(fd, meta, len, (off_t)(pos + TAG_HEADER_LEN)) == 1) {
                int64_t d = find_number(meta, len, "duration");
                int64_t f = find_number(meta, len, "filesize");
                if (d >= 0)
                    scan->duration_off = (int64_t)pos + TAG_HEADER_LEN + d;
                if (f >= 0)
                    scan->filesize_off = (int64_t)pos + TAG_HEADER_LEN + f;
            }
            sl_free(meta);
            meta = NULL;
        }
        if (type != SL_FLV_DATA) {
            if (!scan->has_media)
                scan->first_ts = ts;
            scan->has_media = 1;
        }
        scan->last_ts = ts;
        scan->n_tags++;
        pos += TAG_HEADER_LEN + len + 4;
    }
    scan->size = pos;
    if (pos < file_len) {
        scan->truncated = file_len - pos;
        if (ftruncate(fd, (off_t)pos))
            return SL_EIO;
    }
    return 0;
}

int sl_recorder_flv_set_meta(int fd, const sl_recorder_flv_scan_t *scan, double duration_s,
                             double filesize)
{
    uint8_t num[8];
    if (scan->duration_off >= 0) {
        put_double(num, duration_s);
        if (sl_pwrite_full(fd, num, 8, (off_t)scan->duration_off))
            return SL_EIO;
    }
    if (scan->filesize_off >= 0) {
        put_double(num, filesize);
        if (sl_pwrite_full(fd, num, 8, (off_t)scan->filesize_off))
            return SL_EIO;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* catalog                                                             */

typedef struct {
    sl_store_t *store;           /* NULL: no catalog (recording goes on without it) */
    sqlite3_stmt *insert, *finish; /* on the store's connection: store worker only */
    /* one call's arguments and results (this thread fills them, the worker reads) */
    const sl_rec_t *rec;
    int64_t id;
    uint64_t duration_ms, size;
    const char *state;
    char err[256];               /* SQLite's message when a statement failed */
} catalog_t;

static int catalog_open_work(sqlite3 *db, void *arg)
{
    catalog_t *cat = arg;
    int rc = sqlite3_prepare_v2(db,
                                "INSERT INTO recordings (app, stream, file, name, start, codecs,"
                                " state) VALUES (?, ?, ?, ?, ?, ?, 'recording')",
                                -1, &cat->insert, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "UPDATE recordings SET end = ?, duration = ?, size = ?, state = ?"
                                " WHERE id = ?",
                                -1, &cat->finish, NULL);
    if (rc != SQLITE_OK) {
        snprintf(cat->err, sizeof cat->err, "%s", sqlite3_errmsg(db));
        return SL_EIO;
    }
    return 0;
}

static int catalog_close_work(sqlite3 *db, void *arg)
{
    catalog_t *cat = arg;
    (void)db;
    sqlite3_finalize(cat->insert);
    sqlite3_finalize(cat->finish);
    cat->insert = cat->finish = NULL;
    return 0;
}

static void catalog_open(sl_recorder_t *m, catalog_t *cat)
{
    memset(cat, 0, sizeof *cat);
    int rc = SL_ECLOSED;
    if (m->store) {
        rc = sl_store_migrate(m->store, "recorder", migrations,
                              sizeof migrations / sizeof migrations[0]);
        if (rc == 0) {
            cat->store = m->store;
            rc = sl_store_call(cat->store, catalog_open_work, cat);
        }
    }
    if (rc == 0)
        return;
    SL_LOGE(&g_ctx, "recorder: catalog %s unusable (%s); recording goes on without it",
            m->db_path, cat->err[0] ? cat->err : sl_strerror(rc));
    if (cat->store)
        (void)sl_store_call(cat->store, catalog_close_work, cat);
    memset(cat, 0, sizeof *cat);
}

static void catalog_close(catalog_t *cat)
{
    if (cat->store)
        (void)sl_store_call(cat->store, catalog_close_work, cat);
}

static int catalog_insert_work(sqlite3 *db, void *arg)
{
    catalog_t *cat = arg;
    const sl_rec_t *rec = cat->rec;
    sqlite3_reset(cat->insert);
    sqlite3_bind_text(cat->insert, 1, rec->app, -1, SQLITE_STATIC);
    sqlite3_bind_text(cat->insert, 2, rec->stream, -1, SQLITE_STATIC);
    sqlite3_bind_text(cat->insert, 3, rec->file, -1, SQLITE_STATIC);
    sqlite3_bind_text(cat->insert, 4, rec->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(cat->insert, 5, (sqlite3_int64)rec->start_ms);
    sqlite3_bind_text(cat->insert, 6, rec->codecs, -1, SQLITE_STATIC);
    int ok = sqlite3_step(cat->insert) == SQLITE_DONE;
    cat->id = ok ? (int64_t)sqlite3_last_insert_rowid(db) : 0;
    if (!ok)
        snprintf(cat->err, sizeof cat->err, "%s", sqlite3_errmsg(db));
    sqlite3_reset(cat->insert);
    return ok ? 0 : SL_EIO;
}

static int64_t catalog_insert(catalog_t *cat, const sl_rec_t *rec)
{
    if (!cat->insert)
        return 0;
    cat->rec = rec;
    int rc = sl_store_call(cat->store, catalog_insert_work, cat);
    cat->rec = NULL;
    if (rc) {
        SL_LOGW(&rec->log, "recorder: catalog insert failed: %s",
                rc == SL_EIO ? cat->err : sl_strerror(rc));
        return 0;
    }
    return cat->id;
}

static int catalog_finish_work(sqlite3 *db, void *arg)
{
    catalog_t *cat = arg;
    sqlite3_reset(cat->finish);
    sqlite3_bind_int64(cat->finish, 1, (sqlite3_int64)sl_time_wall_ms());
    sqlite3_bind_int64(cat->finish, 2, (sqlite3_int64)cat->duration_ms);
    sqlite3_bind_int64(cat->finish, 3, (sqlite3_int64)cat->size);
    sqlite3_bind_text(cat->finish, 4, cat->state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(cat->finish, 5, cat->id);
    int ok = sqlite3_step(cat->finish) == SQLITE_DONE;
    if (!ok)
        snprintf(cat->err, sizeof cat->err, "%s", sqlite3_errmsg(db));
    sqlite3_reset(cat->finish);
    return ok ? 0 : SL_EIO;
}

static void catalog_finish(catalog_t *cat, int64_t id, uint64_t duration_ms, uint64_t size,
                           const char *state)
{
    if (!cat->finish || id <= 0)
        return;
    cat->id = id;
    cat->duration_ms = duration_ms;
    cat->size = size;
    cat->state = state;
    int rc = sl_store_call(cat->store, catalog_finish_work, cat);
    if (rc)
        SL_LOGW(&g_ctx, "recorder: catalog update of row %lld failed: %s", (long long)id,
                rc == SL_EIO ? cat->err : sl_strerror(rc));
}

/* ------------------------------------------------------------------ */
/* results                                                             */

static void post(sl_recorder_t *m, sl_rres_t *res)
{
    uv_mutex_lock(&m->mu);
    if (m->res_tail)
        m->res_tail->next = res;
    else
        m->res_head = res;
    m->res_tail = res;
    uv_mutex_unlock(&m->mu);
    uv_async_send(&m->async);
}

static void post_simple(sl_recorder_t *m, sl_rres_kind_t kind, sl_rec_t *rec, int err,
                        uint64_t duration_ms, uint64_t size)
{
    sl_rres_t *res = sl_calloc(1, sizeof *res);
    if (!res) {
        /* The loop must learn of a CLOSE whatever happens, or the recording leaks and
         * shutdown waits forever: spin until memory comes back (it is tiny). */
        while (!(res = sl_calloc(1, sizeof *res)))
            uv_sleep(10);
    }
    res->kind = kind;
    res->rec = rec;
    res->err = err;
    res->duration_ms = duration_ms;
    res->size = size;
    post(m, res);
}

/* ------------------------------------------------------------------ */
/* recovery                                                            */

static int is_mp4_name(const char *file)
{
    size_t n = strlen(file);
    return n >= 4 && strcmp(file + n - 4, ".mp4") == 0;
}

/* Finalises one fragmented MP4 file: torn tail cut, duration read back. */
static int finalise_mp4(int fd, const char *file, sl_rres_t *res)
{
    sl_recorder_mp4_scan_t scan;
    int rc = sl_recorder_mp4_repair(fd, &scan);
    if (rc) {
        snprintf(res->detail, sizeof res->detail, "%s",
                 rc == SL_EPROTO ? "not an MP4 file (no header)" : "read error");
        return rc;
    }
    if (fsync(fd))
        return SL_EIO;
    res->size = scan.size;
    rc = sl_recorder_mp4_duration(file, &res->duration_ms, NULL, 0);
    snprintf(res->detail, sizeof res->detail, "%llu fragments kept, %llu torn bytes cut",
             (unsigned long long)scan.n_fragments, (unsigned long long)scan.truncated);
    return rc;
}

/* Finalises one file: repair, metadata. Fills res->duration_ms/size/detail. */
static int finalise_file(const char *file, sl_rres_t *res)
{
    int fd = open(file, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(res->detail, sizeof res->detail, "cannot open: %s", strerror(errno));
        return SL_EIO;
    }
    if (is_mp4_name(file)) {
        int mrc = finalise_mp4(fd, file, res);
        close(fd);
        return mrc;
    }
    sl_recorder_flv_scan_t scan;
    int rc = sl_recorder_flv_repair(fd, &scan);
    if (rc == 0) {
        uint64_t dur = scan.has_media && scan.last_ts >= scan.first_ts
                           ? scan.last_ts - scan.first_ts : 0;
        rc = sl_recorder_flv_set_meta(fd, &scan, (double)dur / 1000.0, (double)scan.size);
        if (rc == 0 && fsync(fd))
            rc = SL_EIO;
        res->duration_ms = dur;
        res->size = scan.size;
        snprintf(res->detail, sizeof res->detail, "%llu tags kept, %llu torn bytes cut",
                 (unsigned long long)scan.n_tags, (unsigned long long)scan.truncated);
    } else {
        snprintf(res->detail, sizeof res->detail, "%s",
                 rc == SL_EPROTO ? "not an FLV file" : "read error");
    }
    close(fd);
    return rc;
}

/* Reads the rows still `recording` (store worker): a list of RECOVERED
 * results, oldest first, in *(sl_rres_t **)arg. */
static int recover_rows_work(sqlite3 *db, void *arg)
{
    sl_rres_t **out = arg, **tail = out;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, app, stream, file FROM recordings WHERE state = 'recording'"
                           " ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return SL_EIO;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *app = (const char *)sqlite3_column_text(st, 1);
        const char *stream = (const char *)sqlite3_column_text(st, 2);
        const char *file = (const char *)sqlite3_column_text(st, 3);
        sl_rres_t *res = sl_calloc(1, sizeof *res);
        if (!res || !file) {
            sl_free(res);
            break;
        }
        res->kind = SL_RRES_RECOVERED;
        res->row_id = sqlite3_column_int64(st, 0);
        snprintf(res->app, sizeof res->app, "%s", app ? app : "");
        snprintf(res->stream, sizeof res->stream, "%s", stream ? stream : "");
        snprintf(res->file, sizeof res->file, "%s", file);
        *tail = res;
        tail = &res->next;
    }
    sqlite3_finalize(st);
    return 0;
}

static void recover(sl_recorder_t *m, catalog_t *cat)
{
    if (!cat->store)
        return;
    sl_rres_t *list = NULL;
    (void)sl_store_call(cat->store, recover_rows_work, &list);
    /* The files are scanned and repaired here, on the recorder's thread; only
     * each row's update goes to the store. */
    while (list) {
        sl_rres_t *res = list;
        list = res->next;
        res->next = NULL;
        res->err = finalise_file(res->file, res);
        catalog_finish(cat, res->row_id, res->duration_ms, res->size, res->err ? "failed" : "done");
        post(m, res);
    }
}

/* ------------------------------------------------------------------ */
/* jobs                                                                */

/* mkdir -p of the folder holding file. 0 or -errno. */
static int make_parent_dirs(const char *file)
{
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", file) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    char *slash = strrchr(tmp, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    return sl_mkdir_p(tmp);
}

/* AMF0 helpers for our onMetaData. */
static uint8_t *amf_key(uint8_t *p, const char *k)
{
    size_t n = strlen(k);
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
    memcpy(p + 2, k, n);
    return p + 2 + n;
}

static uint8_t *amf_num(uint8_t *p, const char *k, double v)
{
    p = amf_key(p, k);
    *p++ = 0; /* number */
    put_double(p, v);
    return p + 8;
}

/* Writes header + onMetaData to a new file; records the number offsets. */
static int write_head(sl_rec_t *rec, const sl_rjob_t *job)
{
    uint8_t buf[512];
    uint8_t *p = buf;
    memcpy(p, "FLV\x01", 4);
    p[4] = (uint8_t)((job->has_audio ? 0x04 : 0) | (job->has_video ? 0x01 : 0));
    sl_wr_be32(p + 5, 9);
    sl_wr_be32(p + 9, 0);
    p += FLV_HEADER_LEN;
    uint8_t *tag = p;
    p += TAG_HEADER_LEN;
    uint8_t *body = p;
    *p++ = 2; /* string "onMetaData" */
    p = amf_key(p, "onMetaData");
    *p++ = 8; /* ECMA array */
    sl_wr_be32(p, 0);
    p += 4;
    p = amf_num(p, "duration", 0);
    rec->duration_off = (int64_t)(p - 8 - buf);
    p = amf_num(p, "filesize", 0);
    rec->filesize_off = (int64_t)(p - 8 - buf);
    if (job->has_video) {
        p = amf_num(p, "videocodecid", job->vcodec_id);
        if (job->width)
            p = amf_num(p, "width", job->width);
        if (job->height)
            p = amf_num(p, "height", job->height);
        if (job->fps > 0)
            p = amf_num(p, "framerate", job->fps);
    }
    if (job->has_audio)
        p = amf_num(p, "audiocodecid", job->acodec_id);
    p = amf_key(p, "encoder");
    *p++ = 2;
    p = amf_key(p, "sluice");
    p[0] = p[1] = 0;
    p[2] = 9; /* object end */
    p += 3;
    uint32_t body_len = (uint32_t)(p - body);
    tag[0] = SL_FLV_DATA;
    sl_wr_be24(tag + 1, body_len);
    memset(tag + 4, 0, 7);
    sl_wr_be32(p, body_len + TAG_HEADER_LEN);
    p += 4;
    rec->size = (uint64_t)(p - buf);
    return sl_write_full(rec->fd, buf, (size_t)(p - buf));
}

static void job_open(sl_recorder_t *m, catalog_t *cat, sl_rec_t *rec, const sl_rjob_t *job)
{
    int rc = make_parent_dirs(rec->file);
    if (rc)
        goto fail;
    rec->duration_off = rec->filesize_off = -1;
    if (rec->mp4) {
        /* Append is settled on the loop (a new file); the header waits for the first frame. */
        rec->fd = open(rec->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (rec->fd < 0) {
            rc = -errno;
            goto fail;
        }
        rc = sl__rec_mp4_new(rec->fd, MP4_FRAGMENT_MS, &rec->log, &rec->mp4w);
        if (rc) {
            rc = -ENOMEM;
            goto fail;
        }
        goto opened;
    }
    if (rec->append) {
        rec->fd = open(rec->file, O_RDWR | O_CLOEXEC);
        if (rec->fd >= 0) {
            sl_recorder_flv_scan_t scan;
            int src = sl_recorder_flv_repair(rec->fd, &scan);
            if (src == 0 && scan.n_tags > 0) {
                rec->duration_off = scan.duration_off;
                rec->filesize_off = scan.filesize_off;
                rec->first_ts = scan.has_media ? scan.first_ts : 0;
                rec->ts_offset = scan.last_ts + APPEND_GAP_MS;
                rec->last_ts = scan.last_ts;
                rec->size = scan.size;
                if (lseek(rec->fd, (off_t)scan.size, SEEK_SET) < 0) {
                    rc = -errno;
                    goto fail;
                }
                SL_LOGI(&rec->log, "recorder: appending to %s at %u ms (%llu bytes)", rec->file,
                        rec->ts_offset, (unsigned long long)scan.size);
                goto opened;
            }
            /* Not a usable FLV: start it over. */
            close(rec->fd);
            rec->fd = -1;
        } else if (errno != ENOENT) {
            rc = -errno;
            goto fail;
        }
    }
    rec->fd = open(rec->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (rec->fd < 0) {
        rc = -errno;
        goto fail;
    }
    rc = write_head(rec, job);
    if (rc)
        goto fail;
opened:
    rec->row_id = catalog_insert(cat, rec);
    post_simple(m, SL_RRES_OPENED, rec, 0, 0, 0);
    return;
fail:
    SL_LOGE(&rec->log, "recorder: cannot open %s: %s", rec->file, strerror(-rc));
    rec->io_failed = 1;
    post_simple(m, SL_RRES_FAILED, rec, rc, 0, 0);
}

/* One tag into the MP4 writer; failures end the recording as for FLV. */
static void job_tag_mp4(sl_recorder_t *m, sl_rec_t *rec, const sl_rjob_t *job, uint32_t ts)
{
    int rc = sl__rec_mp4_write(rec->mp4w, job->tag_type, ts, job->data, job->len);
    rec->size = sl__rec_mp4_size(rec->mp4w);
    if (rc == SL_REC_MP4_CHANGED) {
        /* The writer ignores what comes next; the file is whole (not a failure). */
        post_simple(m, SL_RRES_ENDED, rec, 0, 0, 0);
        return;
    }
    if (rc) {
        /* -errno from the file, or ours: no usable track (SL_EINVAL), memory, libav. */
        int err = rc > -30000 ? rc : rc == SL_EINVAL ? -EINVAL : rc == SL_ENOMEM ? -ENOMEM : -EIO;
        SL_LOGE(&rec->log, "recorder: writing %s failed: %s; recording stopped", rec->file,
                rc == SL_EINVAL ? "no track MP4 can hold" : strerror(-err));
        rec->io_failed = 1;
        /* Cut a torn fragment so the file stays playable. */
        uint64_t good = sl__rec_mp4_good_size(rec->mp4w);
        if (good < rec->size && ftruncate(rec->fd, (off_t)good) == 0)
            rec->size = good;
        post_simple(m, SL_RRES_FAILED, rec, err, 0, 0);
        return;
    }
    if (job->tag_type != SL_FLV_DATA && ts > rec->last_ts)
        rec->last_ts = ts;
}

static void job_tag(sl_recorder_t *m, sl_rec_t *rec, const sl_rjob_t *job)
{
    if (rec->io_failed || rec->fd < 0)
        return;
    if (m->test_write_delay_ms)
        uv_sleep(m->test_write_delay_ms); /* tests: a disk slower than the stream */
    if (!rec->have_base) {
        rec->have_base = 1;
        rec->ts_base = job->dts;
    }
    /* Frames before the base (configs replayed with older stamps) go at the base. */
    uint32_t rel = job->dts >= rec->ts_base ? job->dts - rec->ts_base : 0;
    uint32_t ts = rel + rec->ts_offset;
    if (rec->mp4w) {
        job_tag_mp4(m, rec, job, ts);
        return;
    }
    uint8_t th[TAG_HEADER_LEN], pts[4];
    th[0] = job->tag_type;
    sl_wr_be24(th + 1, (uint32_t)job->len);
    sl_wr_be24(th + 4, ts & 0xffffff);
    th[7] = (uint8_t)(ts >> 24);
    th[8] = th[9] = th[10] = 0;
    sl_wr_be32(pts, (uint32_t)job->len + TAG_HEADER_LEN);
    /* One writev would do as well; three writes of one tag still land in the page cache
     * together, and a torn tag is cut off by the scan at the next start. */
    int rc = sl_write_full(rec->fd, th, sizeof th);
    if (!rc)
        rc = sl_write_full(rec->fd, job->data, job->len);
    if (!rc)
        rc = sl_write_full(rec->fd, pts, 4);
    if (rc) {
        SL_LOGE(&rec->log, "recorder: writing %s failed: %s; recording stopped", rec->file,
                strerror(-rc));
        rec->io_failed = 1;
        /* Cut the partial tag so the file stays playable. */
        if (ftruncate(rec->fd, (off_t)rec->size) == 0)
            (void)lseek(rec->fd, (off_t)rec->size, SEEK_SET);
        post_simple(m, SL_RRES_FAILED, rec, rc, 0, 0);
        return;
    }
    rec->size += TAG_HEADER_LEN + job->len + 4;
    if (ts > rec->last_ts)
        rec->last_ts = ts;
}

static void job_close(sl_recorder_t *m, catalog_t *cat, sl_rec_t *rec)
{
    uint64_t dur = rec->last_ts >= rec->first_ts ? rec->last_ts - rec->first_ts : 0;
    int rc = 0;
    if (rec->mp4w) {
        uint64_t size = 0, good = 0;
        int mrc = sl__rec_mp4_finish(rec->mp4w, &size, &good);
        rec->mp4w = NULL;
        rec->size = size;
        if (mrc && !rec->io_failed) {
            SL_LOGE(&rec->log, "recorder: finishing %s failed: %s", rec->file,
                    mrc > -30000 ? strerror(-mrc) : sl_strerror(mrc));
            rc = SL_EIO;
        }
        if (good < size && rec->fd >= 0 && ftruncate(rec->fd, (off_t)good) == 0)
            rec->size = good;
    }
    if (rec->fd >= 0 && rec->mp4) {
        if (fsync(rec->fd) && !rc)
            rc = SL_EIO;
        close(rec->fd);
        rec->fd = -1;
    } else if (rec->fd >= 0) {
        sl_recorder_flv_scan_t meta = {.duration_off = rec->duration_off,
                                       .filesize_off = rec->filesize_off};
        rc = sl_recorder_flv_set_meta(rec->fd, &meta, (double)dur / 1000.0, (double)rec->size);
        if (fsync(rec->fd) && !rc)
            rc = SL_EIO;
        close(rec->fd);
        rec->fd = -1;
    }
    int failed = rec->io_failed || rc || rec->size == 0;
    catalog_finish(cat, rec->row_id, dur, rec->size, failed ? "failed" : "done");
    post_simple(m, SL_RRES_CLOSED, rec, failed ? SL_EIO : 0, dur, rec->size);
}

#define KNOWN_BATCH_BYTES (64 * 1024) /* one KNOWN result carries about this much */

/* Posts the batch being filled, if any. */
static void post_known(sl_recorder_t *m, sl_rres_t **res)
{
    if (*res && (*res)->known_len) {
        post(m, *res);
    } else if (*res) {
        sl_free((*res)->known);
        sl_free(*res);
    }
    *res = NULL;
}

/*
 * Tells the loop the duration of every finished recording (getStreamLength),
 * in batches of packed entries: a row costs its path, not a whole result.
 */
static int report_known_work(sqlite3 *db, void *arg)
{
    sl_recorder_t *m = arg;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                                       "SELECT file, duration FROM recordings WHERE state = 'done'"
                                       " AND duration IS NOT NULL ORDER BY id",
                                       -1, &st, NULL) != SQLITE_OK)
        return SL_EIO;
    sl_rres_t *res = NULL;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *file = (const char *)sqlite3_column_text(st, 0);
        if (!file)
            continue;
        size_t n = strlen(file) + 1;
        if (res && res->known_len + 8 + n > KNOWN_BATCH_BYTES)
            post_known(m, &res);
        if (!res) {
            res = sl_calloc(1, sizeof *res);
            if (!res || !(res->known = sl_malloc(KNOWN_BATCH_BYTES + 8 + n))) {
                sl_free(res);
                res = NULL;
                break; /* out of memory: getStreamLength answers 0 for the rest */
            }
            res->kind = SL_RRES_KNOWN;
        }
        uint64_t ms = (uint64_t)sqlite3_column_int64(st, 1);
        memcpy(res->known + res->known_len, &ms, 8);
        memcpy(res->known + res->known_len + 8, file, n);
        res->known_len += 8 + n;
    }
    post_known(m, &res);
    sqlite3_finalize(st);
    return 0;
}

/* Reads the finished recordings' durations on the store (see report_known_work). */
static void report_known(sl_recorder_t *m, catalog_t *cat)
{
    if (cat->store)
        (void)sl_store_call(cat->store, report_known_work, m);
}

static void writer_main(void *arg)
{
    sl_recorder_t *m = arg;
    catalog_t cat;
    catalog_open(m, &cat);
    recover(m, &cat);
    report_known(m, &cat);
    uv_mutex_lock(&m->mu);
    for (;;) {
        sl_rjob_t *job = m->jobs_head;
        if (!job) {
            if (m->stop)
                break;
            uv_cond_wait(&m->cv, &m->mu);
            continue;
        }
        m->jobs_head = job->next;
        if (!m->jobs_head)
            m->jobs_tail = NULL;
        uv_mutex_unlock(&m->mu);
        sl_rec_t *rec = job->rec;
        switch (job->kind) {
        case SL_RJOB_OPEN:
            job_open(m, &cat, rec, job);
            break;
        case SL_RJOB_TAG:
            job_tag(m, rec, job);
            atomic_fetch_sub(&rec->queued_bytes, job->len);
            break;
        case SL_RJOB_CLOSE:
            job_close(m, &cat, rec);
            break;
        }
        sl_free(job);
        uv_mutex_lock(&m->mu);
    }
    uv_mutex_unlock(&m->mu);
    catalog_close(&cat);
}

/* ------------------------------------------------------------------ */
/* the loop-side interface                                             */

int sl__recorder_io_start(sl_recorder_t *m)
{
    int rc = uv_thread_create(&m->thread, writer_main, m);
    if (rc == 0)
        m->thread_started = 1;
    return rc;
}

void sl__recorder_io_stop(sl_recorder_t *m)
{
    if (!m->thread_started)
        return;
    uv_mutex_lock(&m->mu);
    m->stop = 1;
    uv_cond_signal(&m->cv);
    uv_mutex_unlock(&m->mu);
    uv_thread_join(&m->thread);
    m->thread_started = 0;
}

void sl__recorder_io_push(sl_recorder_t *m, sl_rjob_t *job)
{
    job->next = NULL;
    uv_mutex_lock(&m->mu);
    if (m->jobs_tail)
        m->jobs_tail->next = job;
    else
        m->jobs_head = job;
    m->jobs_tail = job;
    uv_cond_signal(&m->cv);
    uv_mutex_unlock(&m->mu);
}

sl_rres_t *sl__recorder_io_results(sl_recorder_t *m)
{
    uv_mutex_lock(&m->mu);
    sl_rres_t *r = m->res_head;
    m->res_head = m->res_tail = NULL;
    uv_mutex_unlock(&m->mu);
    return r;
}

/* ------------------------------------------------------------------ */
/* the service "catalog" (app/svc/catalog.h)                           */

typedef struct {
    const char *sql;             /* one UPDATE binding ?1 (text) and ?2 (file) */
    const char *text;
    const char *file;
} cat_update_t;

static int cat_update_work(sqlite3 *db, void *arg)
{
    cat_update_t *u = arg;
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(db, u->sql, -1, &st, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_text(st, 1, u->text, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, u->file, -1, SQLITE_STATIC);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    if (!ok)
        SL_LOGW(&g_ctx, "recorder: catalog update of %s failed: %s", u->file, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return ok ? 0 : SL_EIO;
}

/* catalog.mark_deleted: blocks on the store (any thread but the loop's). */
static int cat_mark_deleted(void *ud, const char *path)
{
    sl_recorder_t *m = ud;
    cat_update_t u = {.sql = "UPDATE recordings SET state = ?1 WHERE file = ?2",
                      .text = "deleted", .file = path};
    return m->store ? sl_store_call(m->store, cat_update_work, &u) : SL_ECLOSED;
}

static void cat_update_done(void *arg, int rc)
{
    (void)rc; /* logged by the work */
    sl_free(arg);
}

/* catalog.set_upload_state: loop thread, queued on the store. */
static int cat_set_upload_state(void *ud, const char *path, const char *state)
{
    sl_recorder_t *m = ud;
    if (!m->store)
        return SL_ECLOSED;
    size_t np = strlen(path) + 1, ns = strlen(state) + 1;
    cat_update_t *u = sl_malloc(sizeof *u + np + ns);
    if (!u)
        return SL_ENOMEM;
    char *p = (char *)(u + 1);
    memcpy(p, path, np);
    memcpy(p + np, state, ns);
    *u = (cat_update_t){.sql = "UPDATE recordings SET upload_state = ?1 WHERE file = ?2",
                        .text = p + np, .file = p};
    int rc = sl_store_submit(m->store, cat_update_work, cat_update_done, u);
    if (rc)
        sl_free(u);
    return rc;
}

static const sl_catalog_service_t g_catalog = {
    .mark_deleted = cat_mark_deleted,
    .set_upload_state = cat_set_upload_state,
};

int sl__recorder_catalog_register(sl_recorder_t *m)
{
    if (!m->store)
        return 0; /* no store, no catalog: users find no service and do without */
    return sl_service_register(m->core, SL_CATALOG_SERVICE, SL_CATALOG_MAJOR, SL_CATALOG_MINOR,
                               &g_catalog, m);
}

void sl__recorder_catalog_unregister(sl_recorder_t *m)
{
    sl_service_unregister(m->core, SL_CATALOG_SERVICE, &g_catalog);
}
