/*
 * Service "abr" 1.0, provided by the abr module (src/modules/abr) while it
 * runs: what other modules need to know of stream provisions (ABR ladders,
 * docs/abr.md) without including the module. The HLS module asks it for
 * the variants of a provision to serve a multivariant playlist naming each
 * of them. Types only; look it up with sl_service_get(core, SL_SVC_ABR,
 * SL_SVC_ABR_MAJOR, 0, &ud). Every call runs on the loop thread and copies
 * into the caller's memory: nothing returned is borrowed.
 */
#ifndef SL_APP_SVC_ABR_H
#define SL_APP_SVC_ABR_H

#include <stddef.h>
#include <stdint.h>

#include "app/services.h"

#define SL_SVC_ABR "abr"
#define SL_SVC_ABR_MAJOR 1
#define SL_SVC_ABR_MINOR 0

#define SL_SVC_ABR_PATH_MAX 256 /* "app/stream" of a provision or a variant, with the NUL */

/* One variant of a provision, as its provision describes it. */
typedef struct sl_abr_variant_info {
    char path[SL_SVC_ABR_PATH_MAX]; /* hub name, "app/stream_2" */
    int level;                      /* abrLevel: 1 is the highest quality */
    uint32_t width, height;         /* pixels */
    uint32_t bitrate;               /* video bit/s */
} sl_abr_variant_info_t;

typedef struct sl_svc_abr {
    /**
     * The variants of the provision whose GUID is path ("app/stream"), in
     * level order, copied into out (at most cap); returns how many the
     * provision has (0: no provision of that GUID).
     */
    size_t (*variants)(void *ud, const char *path, sl_abr_variant_info_t *out, size_t cap);
    /**
     * The GUID of the provision that has path as one of its variants,
     * copied into out (cap bytes): 0, or SL_ENOTFOUND.
     */
    int (*provision_of)(void *ud, const char *path, char *out, size_t cap);
} sl_svc_abr_t;

#endif
