/*
 * File-system helpers of the lowest layer. Blocking: call them at startup
 * or from a worker thread, never on the event loop.
 */
#ifndef SL_BASE_FS_H
#define SL_BASE_FS_H

/*
 * mkdir -p: creates path and every missing parent, mode 0755 (umask
 * applies); folders that exist already are fine. Returns 0, -ENAMETOOLONG
 * for a path of 4096 bytes or more, or -errno of the mkdir that failed.
 */
int sl_mkdir_p(const char *path);

#endif
