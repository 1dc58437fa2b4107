/*
 * Fuzz target for the SRT streamid parser (src/proto/srt/srt_streamid.c),
 * which reads the one string an unauthenticated SRT caller sends before
 * the server accepts it (on libsrt's thread). Beyond memory safety, an
 * accepted streamid must satisfy the parser's contract: a mode, a path
 * that is scope + '/' + stream, NUL-terminated fields within their arrays.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/srt/srt_streamid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_srt_streamid_t sid;
    const char *why = NULL;
    int rc = sl_srt_streamid_parse((const char *)data, size, &sid, &why);
    if (rc) {
        if (!why)
            abort();
        return 0;
    }
    if (sid.mode != SL_SRT_MODE_READ && sid.mode != SL_SRT_MODE_PUBLISH)
        abort();
    size_t sl = strlen(sid.scope), tl = strlen(sid.stream);
    if (!sl || !tl || sl + 1 + tl != strlen(sid.path) || sid.path[sl] != '/' ||
        memcmp(sid.path, sid.scope, sl) != 0 || strcmp(sid.path + sl + 1, sid.stream) != 0)
        abort();
    if (strchr(sid.stream, '/'))
        abort();
    return 0;
}
