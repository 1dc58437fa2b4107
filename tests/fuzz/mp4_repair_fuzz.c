/*
 * Fuzz target: the MP4 repair's walk over top-level boxes
 * (sl_recorder_mp4_repair, recorder_mp4.c), which runs at start on every
 * MP4 recording a crash left unfinished. The input is the whole file, put
 * in a memfd (the repair works on a descriptor, reads with pread and cuts
 * with ftruncate). Checks: the kept length never exceeds the input, the
 * file is cut to exactly that length, and a second pass over the repaired
 * file keeps all of it (the repair is idempotent).
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "modules/recorder/recorder_mp4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("mp4_repair_fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    sl_recorder_mp4_scan_t scan;
    if (sl_recorder_mp4_repair(fd, &scan) == 0) {
        off_t end = lseek(fd, 0, SEEK_END);
        if (scan.size > size || end != (off_t)scan.size || scan.size + scan.truncated != size)
            __builtin_trap();
        sl_recorder_mp4_scan_t again;
        if (sl_recorder_mp4_repair(fd, &again) != 0 || again.size != scan.size ||
            again.truncated != 0)
            __builtin_trap();
    }
    close(fd);
    return 0;
}
