/*
 * Service "recorder" 1.0, provided by the recorder module
 * (src/modules/recorder) while it runs: recording control and the
 * recordings catalog, for the Server API (startrecord/stoprecord, media
 * list/delete, is_recording in stream statistics), the cleaner (which files
 * are being written), the VOD module (which file a name stands for, its
 * length) and protocols. Types only; look it up with
 *
 *   void *ud;
 *   const sl_svc_recorder_t *rec = sl_service_get(core, SL_SVC_RECORDER, 1, 0, &ud);
 *
 * and pass ud back as each call's first argument. Absent (NULL) when the
 * recorder does not run: users then behave as without recordings. Every
 * call runs on the loop thread and borrows its strings for the call only.
 * The table is append-only (new calls at the end, "valid from 1.N").
 */
#ifndef SL_APP_SVC_RECORDER_H
#define SL_APP_SVC_RECORDER_H

#include <stddef.h>
#include <stdint.h>

#include "app/services.h"

#define SL_SVC_RECORDER "recorder"
#define SL_SVC_RECORDER_MAJOR 1
#define SL_SVC_RECORDER_MINOR 0

typedef struct sl_svc_recorder {
    /**
     * Starts an API recording of the live stream `stream_path` ("live/s1")
     * under `saveas` (NULL = the stream name; may hold a strftime pattern),
     * appending when `append`. Writes the file name relative to the app's
     * streams folder into name_out. 0, SL_ENOTFOUND (no such live stream),
     * SL_EBUSY (already recording), SL_EINVAL (unsafe name), SL_ENOMEM.
     */
    int (*start)(void *ud, const char *stream_path, const char *saveas, int append,
                 char *name_out, size_t name_cap);
    /**
     * Stops the API-started recording of stream_path. 0, SL_ENOTFOUND (not
     * recording), SL_EDENIED (recording not started by the API).
     */
    int (*stop)(void *ud, const char *stream_path);
    /** 1 when stream_path is being recorded, else 0. */
    int (*is_recording)(void *ud, const char *stream_path);
    /**
     * Calls each(arg, name, mtime_ms, size) for every recorded file of the
     * app (names relative to its streams folder), only those ending in
     * `.ext` when ext is not NULL/empty. 0 or a negative error.
     */
    int (*list)(void *ud, const char *app, const char *ext,
                void (*each)(void *arg, const char *name, uint64_t mtime_ms, uint64_t size),
                void *arg);
    /**
     * Deletes one recorded file of the app (name relative to its streams
     * folder, ext appended when the name lacks it) and reports what it was.
     * 0, SL_EINVAL (unsafe name), SL_ENOTFOUND, SL_EBUSY (being written).
     */
    int (*remove)(void *ud, const char *app, const char *name, const char *ext,
                  char *name_out, size_t name_cap, uint64_t *mtime_ms, uint64_t *size);
    /** Calls each(arg, file) for the file of every recording being written. */
    void (*each_busy)(void *ud, void (*each)(void *arg, const char *file), void *arg);
    /**
     * The file a VOD name of scope stands for ("x.flv"/"x.mp4" as named; a
     * bare "x" in the app's record_format first (attempt 0), then in the
     * other format (attempt 1); a room's files are in its subfolder),
     * written into file (cap bytes). Whether it exists is not checked.
     * 0, SL_EINVAL (unsafe name), SL_ENOTFOUND (no such attempt).
     */
    int (*file_of)(void *ud, const char *scope, const char *name, int attempt, char *file,
                   size_t cap);
    /**
     * The media duration of the recording `name` of scope (named as for
     * file_of), from the recordings catalog, without touching the file
     * beyond a stat: RTMP getStreamLength. 0 and *ms, or SL_EINVAL (unsafe
     * name), SL_ENOTFOUND (no such file, not in the catalog, or being
     * written).
     */
    int (*length)(void *ud, const char *scope, const char *name, uint64_t *ms);
} sl_svc_recorder_t;

#endif
