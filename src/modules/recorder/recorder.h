/*
 * The recorder module: live streams recorded to FLV or fragmented MP4 files under
 * {data_dir}/{app}/streams/ (Red5's layout; rooms are subfolders), started
 * by an RTMP publish in mode record/append, by the Server API's
 * startrecord, or by an app's `record: true` policy. It is a hub sink on
 * the loop thread; the file I/O and the SQLite catalog ({data_dir}/sluice.db,
 * table recordings) live on one writer thread, fed by a bounded queue, so
 * the loop never waits for the disk. See docs/recording.md.
 *
 * This header is the module's entry (for modules.c) and the pure helpers
 * the unit tests reach: recording names and FLV file repair.
 */
#ifndef SL_MODULES_RECORDER_RECORDER_H
#define SL_MODULES_RECORDER_RECORDER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "modules/module.h"

/* The built-in module (modules.c lists it). */
extern const sl_builtin_t sl_recorder_builtin;

#define SL_RECORDER_NAME_MAX 255 /* longest relative file name accepted */

/**
 * Makes the file name of a recording relative to the app's streams
 * folder: `pattern` (NULL or "" = "{name}") with {name} replaced by
 * `stream` (the stream path below the app, "s1" or "room1/s1") and strftime
 * fields expanded for `now` (UTC); ".flv" is appended unless the result
 * already ends in ".flv" or ".mp4" (which pick the container). The result must stay inside the folder: no
 * absolute path, no "." or ".." segment, no empty segment, no backslash,
 * only printable ASCII. Writes the NUL-terminated name into out. Returns
 * 0, or SL_EINVAL (unsafe or empty name; out is then "") or SL_ETOOBIG
 * (longer than SL_RECORDER_NAME_MAX or cap).
 */
int sl_recorder_make_name(const char *pattern, const char *stream, time_t now, char *out,
                          size_t cap);

/**
 * sl_recorder_make_name with the extension appended to a name that has
 * neither ".flv" nor ".mp4" chosen by ext: "mp4", else "flv" (an app's
 * record_format). Same results and errors.
 */
int sl_recorder_make_name_ext(const char *pattern, const char *stream, time_t now,
                              const char *ext, char *out, size_t cap);

/* What a scan of an FLV file found (sl_recorder_flv_repair). */
typedef struct sl_recorder_flv_scan {
    uint64_t size;          /* bytes of whole tags kept (the file's new length) */
    uint64_t n_tags;        /* complete tags */
    uint32_t first_ts;      /* timestamp of the first audio/video tag */
    uint32_t last_ts;       /* timestamp of the last complete tag */
    int has_media;          /* an audio or video tag was seen */
    int64_t duration_off;   /* file offset of onMetaData's duration number, or -1 */
    int64_t filesize_off;   /* same for filesize, or -1 */
    uint64_t truncated;     /* bytes of a torn tail cut off */
} sl_recorder_flv_scan_t;

/**
 * Scans the FLV file open for reading and writing on fd: checks the
 * header, walks the tags, and truncates the file after the last complete,
 * consistent tag (a torn tail left by a crash). Fills *scan. Returns 0,
 * SL_EPROTO (not an FLV file: nothing is changed) or SL_EIO. Blocking:
 * call from a worker thread only.
 */
int sl_recorder_flv_repair(int fd, sl_recorder_flv_scan_t *scan);

/**
 * Rewrites onMetaData's duration (seconds) and filesize (bytes) in place
 * at the offsets a scan found (an offset of -1 is skipped). 0 or SL_EIO.
 * Blocking, worker thread only.
 */
int sl_recorder_flv_set_meta(int fd, const sl_recorder_flv_scan_t *scan, double duration_s,
                             double filesize);

#endif
