/*
 * File-system helpers of the lowest layer: mkdir -p and whole reads and
 * writes that survive short transfers and EINTR. Blocking: call them at startup
 * or from a worker thread, never on the event loop.
 */
#ifndef SL_BASE_FS_H
#define SL_BASE_FS_H

#include <stddef.h>
#include <sys/types.h>

/*
 * mkdir -p: creates path and every missing parent, mode 0755 (umask
 * applies); folders that exist already are fine. Returns 0, -ENAMETOOLONG
 * for a path of 4096 bytes or more, or -errno of the mkdir that failed.
 */
int sl_mkdir_p(const char *path);

/*
 * Writes all n bytes of buf to fd at its current position (sl_write_full)
 * or at off (sl_pwrite_full), retrying short writes and EINTR. Returns 0
 * or -errno (-EIO if the kernel accepts nothing without an error).
 */
int sl_write_full(int fd, const void *buf, size_t n);
int sl_pwrite_full(int fd, const void *buf, size_t n, off_t off);

/*
 * Reads exactly n bytes at off into buf, retrying short reads and EINTR.
 * Returns 1 when all were read, 0 when the file ended first (buf partly
 * filled), or -errno.
 */
int sl_pread_full(int fd, void *buf, size_t n, off_t off);

#endif
