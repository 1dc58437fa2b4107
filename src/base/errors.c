/*
 * sl_strerror: names for sluice's own error codes, falling back to libuv's
 * names for the negated errno values that pass through unchanged.
 */
#include <uv.h>

#include "sluice/errors.h"

/* sl_strerror: see sluice/errors.h. Exported (default visibility) because
 * libsluice-client.so hands it to device programs with the client API. */
__attribute__((visibility("default"))) const char *sl_strerror(int err)
{
    switch (err) {
    case SL_OK: return "success";
    case SL_ENOMEM: return "out of memory";
    case SL_EINVAL: return "invalid argument";
    case SL_ETOOBIG: return "size limit reached";
    case SL_EPROTO: return "protocol error";
    case SL_EAGAIN: return "try again";
    case SL_EPENDING: return "pending";
    case SL_EDECLINED: return "declined";
    case SL_ENOTFOUND: return "not found";
    case SL_EBUSY: return "busy";
    case SL_ECLOSED: return "closed";
    case SL_EDEPTH: return "nesting too deep";
    case SL_EDENIED: return "denied";
    case SL_EIO: return "i/o error";
    case SL_ESLOW: return "consumer too slow";
    default: break;
    }
    if (err < 0 && err > -4096)
        return uv_strerror(err);
    return "unknown error";
}
