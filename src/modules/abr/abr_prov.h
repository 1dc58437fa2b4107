/*
 * Stream provisions (ABR ladders): the JSON shape shared with the stream
 * manager (Red5 Pro Stream Manager 2.0's provision, the contract in
 * docs/abr.md) parsed and validated into a fixed struct, and written back.
 * Pure functions over bytes, no state: the abr module, the API and the
 * fuzz target use them alike.
 *
 *   {"streamGuid":"live/mystream", "transcode":true,
 *    "streams":[{"streamGuid":"live/mystream_1","abrLevel":1,
 *                "videoParams":{"videoWidth":1280,"videoHeight":720,
 *                               "videoBitRate":2000000,"videoFPS":30}}, ...]}
 *
 * Limits (a violation is refused with a reason fit for a 400): the whole
 * JSON at most SL_ABR_JSON_MAX bytes; 1..SL_ABR_LEVELS_MAX variants with
 * distinct abrLevel 1..8 and distinct GUIDs, level 1 present; every GUID
 * "app/name" (safe names) in the provision's app; width and height even,
 * 16..4096; bitrate 32,000..50,000,000; videoFPS 1..120.
 */
#ifndef SL_MODULES_ABR_PROV_H
#define SL_MODULES_ABR_PROV_H

#include <stddef.h>
#include <stdint.h>

#include "app/svc/abr.h"

#define SL_ABR_JSON_MAX 8192
#define SL_ABR_LEVELS_MAX 8
#define SL_ABR_PATH_MAX SL_SVC_ABR_PATH_MAX

struct json_t;

typedef struct sl_abr_level {
    char guid[SL_ABR_PATH_MAX];   /* "app/name_2" (hub name) */
    int level;                    /* 1..8, 1 = highest quality */
    uint32_t width, height;       /* pixels, even */
    uint32_t bitrate;             /* bit/s */
    uint32_t fps;                 /* 0 = the source's */
} sl_abr_level_t;

typedef struct sl_abr_prov {
    char guid[SL_ABR_PATH_MAX];   /* "app/name" */
    char app[SL_ABR_PATH_MAX];    /* the app part (may hold rooms: "app/room") */
    int transcode;                /* 1: a transcoder makes levels 2..n from level 1 */
    size_t n;                     /* variants, sorted by level (lv[0] is level 1) */
    sl_abr_level_t lv[SL_ABR_LEVELS_MAX];
} sl_abr_prov_t;

/**
 * Parses and validates one provision of len bytes (need not be
 * NUL-terminated). Returns 0 and fills *out; or SL_ETOOBIG (over
 * SL_ABR_JSON_MAX), SL_EINVAL (not JSON, wrong shape, a limit broken) with
 * a one-sentence reason in why (why_cap bytes, may be 0). Never reads
 * past json + len.
 */
int sl_abr_prov_parse(const char *json, size_t len, sl_abr_prov_t *out, char *why,
                      size_t why_cap);

/** The provision as JSON in the canonical shape (new reference, NULL on ENOMEM). */
struct json_t *sl_abr_prov_json(const sl_abr_prov_t *p);

/** The variant of GUID guid, or NULL. Borrowed from p. */
const sl_abr_level_t *sl_abr_prov_level(const sl_abr_prov_t *p, const char *guid);

#endif
