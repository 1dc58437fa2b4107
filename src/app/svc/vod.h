/*
 * Service "vod" 1.0, provided by the VOD module (src/modules/vod) while it
 * runs: a recording played into one subscriber's sink as if it were a live
 * stream paced at real time, for RTMP's play("name.flv") / play("flv:name")
 * and getStreamLength. Types only; look it up with
 *
 *   void *ud;
 *   const sl_svc_vod_t *vod = sl_service_get(core, SL_SVC_VOD, 1, 0, &ud);
 *
 * Absent (NULL) when the VOD module does not run: a protocol then plays
 * only live streams. open and length take ud; the other calls take the
 * handle open gave. Every call runs on the loop thread and borrows its
 * strings for the call only. The table is append-only.
 */
#ifndef SL_APP_SVC_VOD_H
#define SL_APP_SVC_VOD_H

#include <stdint.h>

#include "app/services.h"
#include "media/stream.h"

#define SL_SVC_VOD "vod"
#define SL_SVC_VOD_MAJOR 1
#define SL_SVC_VOD_MINOR 0

typedef struct sl_svc_vod {
    /**
     * Plays the recording `name` of scope (".flv" or the app's record
     * format added when it has no extension; a room's files are in its
     * subfolder) into sink, frames paced at real time from the keyframe at
     * or before start_ms. Frames arrive later, from the loop, through
     * sink->ops->on_frame (borrowed frames, as from a hub); on_end(ctx) is
     * called once when the last one is due. Returns 0 and a handle for the
     * calls below in *out, SL_EINVAL (unsafe name), SL_ENOTFOUND (no such
     * file, or no recorder) or SL_ENOMEM.
     */
    int (*open)(void *ud, const char *scope, const char *name, uint32_t start_ms,
                sl_sink_t *sink, void (*on_end)(void *ctx), void *ctx, void **out);
    /** Seeks to the keyframe at or before ms (the player should flush its queue first). */
    void (*seek)(void *vod, uint32_t ms);
    /** Pauses (1) or resumes (0) the clock and the frames. */
    void (*pause)(void *vod, int pause);
    /** Ends the VOD; no callback comes afterwards. Safe inside on_frame/on_end. */
    void (*close)(void *vod);
    /**
     * The media duration of the recording `name` of scope (named as for
     * open), from the recordings catalog. 0 and *ms, or SL_EINVAL (unsafe
     * name), SL_ENOTFOUND (no such file, not in the catalog, no recorder).
     */
    int (*length)(void *ud, const char *scope, const char *name, uint64_t *ms);
} sl_svc_vod_t;

#endif
