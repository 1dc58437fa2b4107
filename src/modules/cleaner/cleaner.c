/*
 * The cleaner module: per app, deletes recordings older than
 * apps.<app>.record_max_age, and the oldest ones while the app's
 * recordings take more than apps.<app>.record_max_bytes; never a file
 * being written (the recorder's list, taken on the loop when a sweep
 * starts) nor one waiting for upload (asked of the service "uploads", the
 * upload queue's). Every cleaner.interval a sweep runs on libuv's thread
 * pool: it walks {data_dir}/{app}/streams (rooms included, hls/ excepted),
 * asks the upload queue, unlinks, and has the recorder mark the catalog
 * rows `deleted` (the service "catalog"); the cleaner owns no table. Both
 * services are looked up on the loop when a sweep starts and called from
 * the pool (they block on the store, never on the loop). Back on
 * the loop, each deletion is logged and emitted as record_deleted (path,
 * reason "age" or "quota", bytes_in = size). Inert when no app sets either
 * limit.
 */
#include "modules/cleaner/cleaner.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/events.h"
#include "app/services.h"
#include "app/svc/catalog.h"
#include "app/svc/recorder.h"
#include "app/svc/uploads.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/time.h"
#include "sluice/errors.h"
#include "modules/cleaner/cleaner_config.h"

#define MAX_DEPTH 4
#define PATH_CAP 1024

static const sl_log_ctx_t g_ctx = {.proto = "cleaner"};

typedef struct file {
    char *path;          /* owned */
    uint64_t mtime_ms, size;
    int keep;            /* busy or waiting for upload */
} file_t;

typedef struct deletion {
    struct deletion *next;
    char app[SL_CONFIG_APP_NAME_MAX + 1];
    char reason[8];
    uint64_t size;
    char path[];
} deletion_t;

typedef struct cleaner {
    sl_core_t *core;
    const sl_config_t *cfg; /* the configuration whose interval the timer runs with */
    uv_timer_t timer;
    uv_work_t work;
    int running;          /* a sweep is on the thread pool */
    int stopping;
    char **busy;          /* files being written, snapshot for the sweep (owned) */
    size_t n_busy, cap_busy;
    deletion_t *done;     /* the sweep's deletions (owned) */
    /* The services the sweep calls, looked up on the loop when it starts
     * (NULL when their provider is not running). */
    const sl_uploads_service_t *uploads;
    void *uploads_ud;
    const sl_catalog_service_t *catalog;
    void *catalog_ud;
    const sl_config_t *sweep_cfg; /* core->cfg when the sweep was queued: the pool thread
                                     reads the apps there, not core->cfg that a reload swaps */
} cleaner_t;

/* ------------------------------------------------------------------ */
/* the sweep (thread pool)                                             */

typedef struct {
    file_t *v;
    size_t n, cap;
} files_t;

static void add_file(files_t *fs, const char *path, const struct stat *st)
{
    if (fs->n == fs->cap) {
        size_t cap = fs->cap ? fs->cap * 2 : 64;
        file_t *nv = sl_realloc(fs->v, cap * sizeof *nv);
        if (!nv)
            return;
        fs->v = nv;
        fs->cap = cap;
    }
    char *p = sl_strdup(path);
    if (!p)
        return;
    fs->v[fs->n++] = (file_t){.path = p,
                              .mtime_ms = (uint64_t)st->st_mtim.tv_sec * 1000 +
                                          (uint64_t)st->st_mtim.tv_nsec / 1000000,
                              .size = (uint64_t)st->st_size};
}

static void walk(const char *dir, int depth, files_t *fs)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[PATH_CAP];
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path)
            continue;
        struct stat st;
        if (lstat(path, &st))
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < MAX_DEPTH && !(depth == 0 && strcmp(de->d_name, "hls") == 0))
                walk(path, depth + 1, fs);
        } else if (S_ISREG(st.st_mode)) {
            const char *dot = strrchr(de->d_name, '.');
            if (dot && (strcmp(dot, ".flv") == 0 || strcmp(dot, ".mp4") == 0))
                add_file(fs, path, &st);
        }
    }
    closedir(d);
}

static int by_mtime(const void *a, const void *b)
{
    const file_t *x = a, *y = b;
    return x->mtime_ms < y->mtime_ms ? -1 : x->mtime_ms > y->mtime_ms;
}

static void record(cleaner_t *c, const char *app, const file_t *f, const char *why)
{
    if (unlink(f->path)) {
        SL_LOGW(&g_ctx, "cleaner: cannot delete %s", f->path);
        return;
    }
    if (c->catalog)
        (void)c->catalog->mark_deleted(c->catalog_ud, f->path); /* a failure is logged there */
    size_t n = strlen(f->path) + 1;
    deletion_t *d = sl_calloc(1, sizeof *d + n);
    if (!d)
        return; /* deleted all the same; only the event is lost */
    snprintf(d->app, sizeof d->app, "%s", app);
    snprintf(d->reason, sizeof d->reason, "%s", why);
    d->size = f->size;
    memcpy(d->path, f->path, n);
    d->next = c->done;
    c->done = d;
}

static void sweep_app(cleaner_t *c, const sl_app_config_t *app, uint64_t now)
{
    char dir[PATH_CAP];
    files_t fs = {0};
    if (snprintf(dir, sizeof dir, "%s/%s/streams", c->sweep_cfg->server_data_dir, app->name) >=
        (int)sizeof dir)
        return;
    walk(dir, 0, &fs);
    qsort(fs.v, fs.n, sizeof *fs.v, by_mtime);
    uint64_t total = 0;
    for (size_t i = 0; i < fs.n; i++) {
        file_t *f = &fs.v[i];
        total += f->size;
        for (size_t b = 0; b < c->n_busy && !f->keep; b++)
            f->keep = strcmp(c->busy[b], f->path) == 0;
        if (!f->keep && c->uploads)
            f->keep = c->uploads->pending(c->uploads_ud, f->path) != 0; /* unknown: keep */
    }
    /* Oldest first: by age, then by quota. */
    for (size_t i = 0; i < fs.n; i++) {
        file_t *f = &fs.v[i];
        if (f->keep)
            continue;
        const char *why = NULL;
        if (sl_cleaner_app_cfg(app)->record_max_age_ms > 0 && f->mtime_ms + (uint64_t)sl_cleaner_app_cfg(app)->record_max_age_ms < now)
            why = "age";
        else if (sl_cleaner_app_cfg(app)->record_max_bytes > 0 && total > (uint64_t)sl_cleaner_app_cfg(app)->record_max_bytes)
            why = "quota";
        if (!why)
            continue;
        record(c, app->name, f, why);
        total -= f->size;
    }
    for (size_t i = 0; i < fs.n; i++)
        sl_free(fs.v[i].path);
    sl_free(fs.v);
}

static void sweep(uv_work_t *w)
{
    cleaner_t *c = w->data;
    uint64_t now = sl_time_wall_ms();
    const sl_config_t *cfg = c->sweep_cfg;
    for (size_t i = 0; i < cfg->n_apps; i++) {
        const sl_app_config_t *app = &cfg->apps[i];
        if (app->enabled && (sl_cleaner_app_cfg(app)->record_max_age_ms > 0 || sl_cleaner_app_cfg(app)->record_max_bytes > 0))
            sweep_app(c, app, now);
    }
}

/* ------------------------------------------------------------------ */
/* the loop side                                                       */

static void clear_busy(cleaner_t *c)
{
    for (size_t i = 0; i < c->n_busy; i++)
        sl_free(c->busy[i]);
    c->n_busy = 0;
}

static void add_busy(void *arg, const char *file)
{
    cleaner_t *c = arg;
    if (c->n_busy == c->cap_busy) {
        size_t cap = c->cap_busy ? c->cap_busy * 2 : 16;
        char **nb = sl_realloc(c->busy, cap * sizeof *nb);
        if (!nb)
            return;
        c->busy = nb;
        c->cap_busy = cap;
    }
    char *p = sl_strdup(file);
    if (p)
        c->busy[c->n_busy++] = p;
}

static void after_sweep(uv_work_t *w, int status)
{
    cleaner_t *c = w->data;
    (void)status;
    c->running = 0;
    clear_busy(c);
    /* The sweep prepended: reverse to report in deletion order (oldest first). */
    deletion_t *d = NULL;
    while (c->done) {
        deletion_t *n = c->done->next;
        c->done->next = d;
        d = c->done;
        c->done = n;
    }
    while (d) {
        deletion_t *next = d->next;
        if (!c->stopping) {
            sl_log_ctx_t ctx = {.proto = "cleaner", .app = d->app};
            SL_LOGI(&ctx, "cleaner: deleted %s (%s, %llu bytes)", d->path, d->reason,
                    (unsigned long long)d->size);
            sl_event_t ev = {.type = SL_EV_RECORD_DELETED, .app = d->app, .path = d->path,
                             .reason = d->reason, .bytes_in = d->size};
            sl_events_emit(c->core, &ev);
        }
        sl_free(d);
        d = next;
    }
}

static void on_timer(uv_timer_t *t)
{
    cleaner_t *c = t->data;
    if (c->running || c->stopping)
        return;
    clear_busy(c);
    /* The files being written (the recorder's service; none when it does not run). */
    void *rec_ud;
    const sl_svc_recorder_t *rec =
        sl_service_get(c->core, SL_SVC_RECORDER, SL_SVC_RECORDER_MAJOR, 0, &rec_ud);
    if (rec)
        rec->each_busy(rec_ud, add_busy, c);
    c->uploads = sl_service_get(c->core, SL_UPLOADS_SERVICE, SL_UPLOADS_MAJOR, 0, &c->uploads_ud);
    c->catalog = sl_service_get(c->core, SL_CATALOG_SERVICE, SL_CATALOG_MAJOR, 0, &c->catalog_ud);
    c->work.data = c;
    c->sweep_cfg = c->core->cfg; /* configurations outlive every sweep (main.c reload) */
    if (uv_queue_work(c->core->loop, &c->work, sweep, after_sweep) == 0)
        c->running = 1;
}

static void on_timer_closed(uv_handle_t *h)
{
    (void)h;
}

static int cleaner_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    sl_core_t *core = sl_host_core(h);
    (void)api;
    const sl_config_t *cfg = core->cfg;
    *state = NULL;
    int any = 0;
    for (size_t i = 0; i < cfg->n_apps; i++)
        any |= sl_cleaner_app_cfg(&cfg->apps[i])->record_max_age_ms > 0 || sl_cleaner_app_cfg(&cfg->apps[i])->record_max_bytes > 0;
    if (!any)
        return 0;
    cleaner_t *c = sl_calloc(1, sizeof *c);
    if (!c)
        return SL_ENOMEM;
    c->core = core;
    c->cfg = cfg;
    uv_timer_init(core->loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, on_timer, (uint64_t)sl_cleaner_cfg(cfg)->interval_ms,
                   (uint64_t)sl_cleaner_cfg(cfg)->interval_ms);
    SL_LOGI(&g_ctx, "cleaner: sweeping recordings every %lld ms",
            (long long)sl_cleaner_cfg(cfg)->interval_ms);
    *state = c;
    return 0;
}

static void cleaner_stop(void *state)
{
    cleaner_t *c = state;
    if (!c)
        return;
    c->stopping = 1;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    /* A sweep in flight finishes on the pool; after_sweep runs before the loop ends. */
}

static void cleaner_free(void *state)
{
    cleaner_t *c = state;
    if (!c)
        return;
    clear_busy(c);
    sl_free(c->busy);
    sl_free(c);
}

/*
 * Configuration reload: inert until now, the cleaner starts (the host runs
 * its init again) when an app got
 * record_max_age or record_max_bytes. Running, it takes the new interval
 * (the timer restarts) and reads the apps' limits from the configuration
 * at each sweep; with no limit left its sweeps find nothing to do.
 */
static int cleaner_reload(void *state)
{
    cleaner_t *c = state;
    const sl_config_t *old_cfg = c->cfg, *new_cfg = c->core->cfg;
    c->cfg = new_cfg; /* configurations live until exit */
    if (sl_cleaner_cfg(old_cfg)->interval_ms != sl_cleaner_cfg(new_cfg)->interval_ms) {
        uv_timer_start(&c->timer, on_timer, (uint64_t)sl_cleaner_cfg(new_cfg)->interval_ms,
                       (uint64_t)sl_cleaner_cfg(new_cfg)->interval_ms);
        SL_LOGI(&g_ctx, "cleaner: sweeping recordings every %lld ms",
                (long long)sl_cleaner_cfg(new_cfg)->interval_ms);
    }
    return 0;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "cleaner",
    .description = "deletes recordings past their age or size limits",
    .init = cleaner_init,
    .stop = cleaner_stop,
    .destroy = cleaner_free,
    .reload = cleaner_reload,
};

const sl_builtin_t sl_cleaner_builtin = {
    .plugin = &plugin,
    .config = &sl_cleaner_config_section,
};
