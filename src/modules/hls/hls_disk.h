/*
 * The optional disk mirror of an HLS stream (app setting hls_disk, Red5's
 * useDiskWrites): segments, init sections and a plain live playlist
 * written under {data_dir}/{app}/streams/hls/, for a web server or CDN
 * origin that serves files. Serving by sluice itself is always from
 * memory; this is a copy.
 *
 * Writes run off the loop (uv_queue_work), one batch at a time per
 * stream so files land in the order they were queued (a playlist never
 * names a segment written after it). Files are written to a temporary
 * name and renamed, so a reader never sees half a file. The worker reads
 * the queued buffers without touching their refcounts: the writer holds a
 * reference taken on the loop and drops it on the loop after the work.
 * Errors are logged (once per batch) and do not affect serving.
 */
#ifndef SL_PROTO_HLS_DISK_H
#define SL_PROTO_HLS_DISK_H

#include <stddef.h>
#include <uv.h>

#include "base/buf.h"

typedef struct sl_hls_disk sl_hls_disk_t;

/**
 * Creates a writer for folder dir (created on first write, with parents;
 * copied). Returns 0 or SL_ENOMEM.
 */
int sl_hls_disk_new(uv_loop_t *loop, const char *dir, sl_hls_disk_t **out);
/**
 * Queues writing buf (borrowed: a reference is taken until written) as
 * file `name` (a plain file name, copied). 0 or SL_ENOMEM (nothing queued).
 */
int sl_hls_disk_write(sl_hls_disk_t *d, const char *name, sl_buf_t *buf);
/** Queues removing file `name` (copied). 0 or SL_ENOMEM. */
int sl_hls_disk_remove(sl_hls_disk_t *d, const char *name);
/**
 * The owner lets go: queued work still runs, then the writer frees
 * itself (after the loop has run it). NULL is ignored.
 */
void sl_hls_disk_release(sl_hls_disk_t *d);

#endif
