/*
 * File-system helpers (see fs.h): the one mkdir -p that main (the data
 * folder), the recorder and the HLS writer share.
 */
#include "base/fs.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

int sl_mkdir_p(const char *path)
{
    char tmp[4096];
    size_t len = strlen(path);
    if (len >= sizeof tmp)
        return -ENAMETOOLONG;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) && errno != EEXIST)
        return -errno;
    return 0;
}
