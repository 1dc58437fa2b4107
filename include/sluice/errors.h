/*
 * sluice public error codes.
 *
 * Every sluice function that can fail returns an int: 0 on success or a
 * negative code. Codes from libuv (UV_E*, which are negated errno values on
 * Unix) pass through unchanged; sluice's own codes live in a range of their
 * own (-30000 and below) so the two never collide. sl_strerror() names both.
 * Part of the stable plugin ABI: values are never renumbered, only appended.
 */
#ifndef SLUICE_ERRORS_H
#define SLUICE_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

#define SL_OK 0
#define SL_ENOMEM (-30001)     /* an allocation failed */
#define SL_EINVAL (-30002)     /* an argument or value is invalid */
#define SL_ETOOBIG (-30003)    /* a size limit was reached */
#define SL_EPROTO (-30004)     /* the peer broke its protocol */
#define SL_EAGAIN (-30005)     /* need more input / try again later */
#define SL_EPENDING (-30006)   /* the answer comes later by callback */
#define SL_EDECLINED (-30007)  /* not mine: ask the next handler */
#define SL_ENOTFOUND (-30008)  /* no such object */
#define SL_EBUSY (-30009)      /* the object is in use (e.g. name taken) */
#define SL_ECLOSED (-30010)    /* the object is closing or closed */
#define SL_EDEPTH (-30011)     /* nesting too deep */
#define SL_EDENIED (-30012)    /* refused by policy (admission) */
#define SL_EIO (-30013)        /* an I/O error */
#define SL_ESLOW (-30014)      /* a consumer could not keep up */

/**
 * Returns a static, human-readable description of an error code: one of
 * sluice's own SL_E* codes or a libuv/errno code. Never returns NULL.
 */
const char *sl_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
