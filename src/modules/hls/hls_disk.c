/*
 * The HLS disk mirror (see hls_disk.h). One queue of operations per
 * writer; a batch moves to the thread pool when none is running, and the
 * next batch starts from the after-work callback on the loop.
 */
#include "modules/hls/hls_disk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "base/log.h"
#include "sluice/errors.h"

#define DISK_MAX_QUEUED 1024 /* operations waiting; more are dropped (the disk is far behind) */

typedef struct disk_op {
    char *name;        /* file name in the folder, owned */
    sl_buf_t *buf;     /* bytes to write (owned ref), NULL = remove */
} disk_op_t;

struct sl_hls_disk {
    uv_loop_t *loop;
    char *dir;             /* owned */
    disk_op_t *queue;      /* waiting operations, owned array */
    size_t n_queue, cap_queue;
    disk_op_t *batch;      /* the operations the worker has, owned array */
    size_t n_batch;
    uv_work_t work;
    int busy;              /* a batch is on the thread pool */
    int released;          /* the owner let go */
    int dir_made;          /* the folder exists (worker-side flag, read after the work) */
    int err;               /* first error of the batch (worker), 0 */
    char err_path[256];    /* what it was about */
};

static void ops_free(disk_op_t *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sl_free(ops[i].name);
        sl_buf_unref(ops[i].buf);
    }
    sl_free(ops);
}

int sl_hls_disk_new(uv_loop_t *loop, const char *dir, sl_hls_disk_t **out)
{
    *out = NULL;
    sl_hls_disk_t *d = sl_calloc(1, sizeof(*d));
    if (!d || !(d->dir = sl_strdup(dir))) {
        sl_free(d);
        return SL_ENOMEM;
    }
    d->loop = loop;
    *out = d;
    return 0;
}

static int write_file(const char *dir, const char *name, const sl_buf_t *buf)
{
    char path[4096], tmp[4200];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return -ENAMETOOLONG;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = sl_write_full(fd, buf->data, buf->len);
    if (close(fd) && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path))
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

/* Thread pool: touches only the batch, the folder name and the error fields. */
static void on_work(uv_work_t *w)
{
    sl_hls_disk_t *d = w->data;
    d->err = 0;
    if (!d->dir_made) {
        int rc = sl_mkdir_p(d->dir);
        if (rc) {
            d->err = rc;
            snprintf(d->err_path, sizeof d->err_path, "%s", d->dir);
            return;
        }
        d->dir_made = 1;
    }
    for (size_t i = 0; i < d->n_batch; i++) {
        disk_op_t *op = &d->batch[i];
        int rc;
        if (op->buf) {
            rc = write_file(d->dir, op->name, op->buf);
        } else {
            char path[4096];
            rc = snprintf(path, sizeof path, "%s/%s", d->dir, op->name) >= (int)sizeof path
                     ? -ENAMETOOLONG : (unlink(path) && errno != ENOENT ? -errno : 0);
        }
        if (rc && !d->err) {
            d->err = rc;
            snprintf(d->err_path, sizeof d->err_path, "%s", op->name);
        }
    }
}

static void start_batch(sl_hls_disk_t *d);

static void after_work(uv_work_t *w, int status)
{
    sl_hls_disk_t *d = w->data;
    d->busy = 0;
    if (d->err)
        SL_LOGW(NULL, "hls: disk write in %s (%s): %s", d->dir, d->err_path, sl_strerror(d->err));
    else if (status)
        SL_LOGW(NULL, "hls: disk write in %s: %s", d->dir, sl_strerror(status));
    ops_free(d->batch, d->n_batch);
    d->batch = NULL;
    d->n_batch = 0;
    if (d->n_queue) {
        start_batch(d);
        return;
    }
    if (d->released) {
        sl_free(d->dir);
        sl_free(d->queue);
        sl_free(d);
    }
}

static void start_batch(sl_hls_disk_t *d)
{
    if (d->busy || !d->n_queue)
        return;
    d->batch = d->queue;
    d->n_batch = d->n_queue;
    d->queue = NULL;
    d->n_queue = d->cap_queue = 0;
    d->work.data = d;
    int rc = uv_queue_work(d->loop, &d->work, on_work, after_work);
    if (rc) {
        SL_LOGW(NULL, "hls: cannot queue a disk write: %s", sl_strerror(rc));
        ops_free(d->batch, d->n_batch);
        d->batch = NULL;
        d->n_batch = 0;
        return;
    }
    d->busy = 1;
}

static int queue_op(sl_hls_disk_t *d, const char *name, sl_buf_t *buf)
{
    if (d->n_queue >= DISK_MAX_QUEUED)
        return SL_ETOOBIG;
    if (d->n_queue == d->cap_queue) {
        size_t ncap = d->cap_queue ? d->cap_queue * 2 : 8;
        disk_op_t *nq = sl_realloc(d->queue, ncap * sizeof(*nq));
        if (!nq)
            return SL_ENOMEM;
        d->queue = nq;
        d->cap_queue = ncap;
    }
    char *copy = sl_strdup(name);
    if (!copy)
        return SL_ENOMEM;
    d->queue[d->n_queue++] = (disk_op_t){copy, buf ? sl_buf_ref(buf) : NULL};
    start_batch(d);
    return 0;
}

int sl_hls_disk_write(sl_hls_disk_t *d, const char *name, sl_buf_t *buf)
{
    return queue_op(d, name, buf);
}

int sl_hls_disk_remove(sl_hls_disk_t *d, const char *name) { return queue_op(d, name, NULL); }

void sl_hls_disk_release(sl_hls_disk_t *d)
{
    if (!d)
        return;
    d->released = 1;
    if (d->busy)
        return; /* after_work frees it */
    ops_free(d->queue, d->n_queue);
    sl_free(d->dir);
    sl_free(d);
}
