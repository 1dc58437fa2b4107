/*
 * Internals shared by the recorder's two halves: recorder.c (the loop
 * thread: sinks, events, API, HTTP) and recorder_io.c (the writer thread:
 * files and the SQLite catalog). They meet in two queues guarded by one
 * mutex: jobs go to the writer, results come back through a uv_async.
 *
 * A recording (sl_rec_t) is created by the loop and shared with the
 * writer: the loop owns the fields marked (loop), the writer those marked
 * (writer); `queued_bytes` is atomic. The loop frees a recording only
 * after the writer has reported its CLOSE job done, so the writer never
 * sees a freed one.
 */
#ifndef SL_MODULES_RECORDER_INTERNAL_H
#define SL_MODULES_RECORDER_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "app/core.h"
#include "media/frame.h"
#include "media/stream.h"
#include "modules/recorder/recorder.h"

/* Who started a recording (stoprecord stops only SL_REC_BY_API ones, as in Red5). */
typedef enum {
    SL_REC_BY_PUBLISH = 0, /* RTMP publish mode record/append */
    SL_REC_BY_POLICY = 1,  /* the app's record: true */
    SL_REC_BY_API = 2,     /* Server API startrecord */
} sl_rec_source_t;

typedef struct sl_recorder sl_recorder_t;

/* How long audio without any video may come before a recording starts as
 * audio-only (a WebRTC publisher's first keyframe can follow its first
 * audio by a second or more), and what it may hold meanwhile. */
#define SL_REC_AUDIO_WAIT_MS 3000u
#define SL_REC_HOLD_MAX 256
#define SL_REC_HOLD_MAX_BYTES (512u * 1024u)

typedef struct sl_rec {
    sl_recorder_t *mod;          /* owning module (borrowed) */
    char *stream_path;           /* "live/room1/s1", owned (loop) */
    char *app;                   /* scope path "live/room1", owned */
    char *stream;                /* "s1", owned */
    char *name;                  /* file name relative to the app's streams folder, owned */
    char *file;                  /* absolute (or data_dir-relative) path, owned */
    sl_rec_source_t source;      /* who started it (loop) */
    int append;                  /* continue an existing file (FLV only) */
    int mp4;                     /* fragmented MP4 (the name ends in .mp4), else FLV */
    sl_sink_t sink;              /* on the stream while recording (loop) */
    int started;                 /* first keyframe seen, OPEN sent (loop) */
    int dropping;                /* over the queue bound: waiting for a keyframe (loop) */
    int stopping;                /* CLOSE sent or to be sent: no more frames (loop) */
    int failed;                  /* the writer reported a failure (loop) */
    uint64_t dropped_frames;     /* frames dropped for the bound (loop) */
    sl_frame_t *vcfg, *acfg;     /* latest sequence headers seen (owned refs, loop) */
    /* Before the start: audio that may begin an audio-only file, held until
     * video shows up (then dropped: the file starts at the keyframe) or
     * SL_REC_AUDIO_WAIT_MS of it came without video (owned refs, loop). */
    sl_frame_t *held[SL_REC_HOLD_MAX];
    size_t n_held, held_bytes;
    int seen_video;              /* a video frame came before the start (loop) */
    uint64_t start_ms;           /* wall clock at start (loop) */
    _Atomic uint64_t queued_bytes; /* bytes in jobs not yet written (both) */
    sl_log_ctx_t log;            /* points at app/stream (loop) */
    /* writer-side state */
    int fd;                      /* open file or -1 (writer) */
    int64_t row_id;              /* catalog row, 0 when none (writer) */
    int have_base;               /* ts_base set (writer) */
    uint32_t ts_base;            /* first incoming dts (writer) */
    uint32_t ts_offset;          /* where the timeline continues (append) (writer) */
    uint32_t last_ts;            /* last timestamp written (writer) */
    uint32_t first_ts;           /* first timestamp of the file (writer) */
    uint64_t size;               /* file length (writer) */
    int64_t duration_off, filesize_off; /* onMetaData number offsets or -1 (writer) */
    int io_failed;               /* stop writing after an error (writer) */
    struct sl_rec_mp4 *mp4w;     /* MP4 writer, NULL for FLV (writer) */
    char codecs[64];             /* "h264,aac" (set by the loop before OPEN) */
} sl_rec_t;

/* Job kinds (loop -> writer). */
typedef enum {
    SL_RJOB_OPEN = 0,  /* open/create the file, write header + metadata, catalog row */
    SL_RJOB_TAG,       /* one FLV tag */
    SL_RJOB_CLOSE,     /* finalise: metadata, fsync, catalog; then report CLOSED */
} sl_rjob_kind_t;

typedef struct sl_rjob {
    struct sl_rjob *next;
    sl_rjob_kind_t kind;
    sl_rec_t *rec;
    uint8_t tag_type;            /* SL_FLV_* (TAG) */
    uint32_t dts;                /* stream dts (TAG) */
    /* OPEN: stream facts for onMetaData */
    uint32_t width, height;
    double fps, vcodec_id, acodec_id;
    int has_video, has_audio;
    size_t len;                  /* body bytes (TAG) */
    uint8_t data[];              /* body (TAG) */
} sl_rjob_t;

/* Result kinds (writer -> loop). */
typedef enum {
    SL_RRES_OPENED = 0, /* file open: emit record_start */
    SL_RRES_FAILED,     /* I/O error while recording (ENOSPC...): stop it */
    SL_RRES_CLOSED,     /* CLOSE done: emit record_done, free the recording */
    SL_RRES_RECOVERED,  /* an unfinished recording from an earlier run was finalised */
    SL_RRES_ENDED,      /* MP4: the codec configuration changed, the file was finished: stop */
    SL_RRES_KNOWN,      /* at start: finished recordings of the catalog (known: file, duration) */
} sl_rres_kind_t;

typedef struct sl_rres {
    struct sl_rres *next;
    sl_rres_kind_t kind;
    sl_rec_t *rec;               /* NULL for RECOVERED */
    int err;                     /* SL_E* / errno-style detail for FAILED/CLOSED */
    uint64_t duration_ms;        /* of the file */
    uint64_t size;
    char app[128], stream[128];  /* RECOVERED: from the catalog */
    char file[1024];             /* RECOVERED: the file */
    char detail[160];            /* RECOVERED: what was repaired */
    int64_t row_id;              /* RECOVERED: its catalog row (writer thread) */
    char *known;                 /* KNOWN: entries of 8 bytes of duration_ms (host order) then
                                  * the NUL-terminated file, back to back (sl_malloc'd; the
                                  * loop frees it) */
    size_t known_len;
} sl_rres_t;

struct sl_recorder {
    sl_core_t *core;             /* borrowed */
    char *db_path;               /* {data_dir}/sluice.db, owned (for log lines) */
    struct sl_store *store;      /* the service "store" (borrowed), NULL: no catalog */
    uint64_t queue_max_bytes;    /* per recording bound */
    sl_map_t active;             /* stream path -> sl_rec_t* being recorded (loop) */
    sl_map_t lengths;            /* file -> (void *)(duration_ms + 1) of finished recordings (loop) */
    int listener_id;
    uv_async_t async;            /* writer -> loop wake-up */
    int async_open;
    uv_thread_t thread;
    int thread_started;
    uv_mutex_t mu;
    uv_cond_t cv;
    sl_rjob_t *jobs_head, *jobs_tail; /* (mu) */
    sl_rres_t *res_head, *res_tail;   /* (mu) */
    int stop;                    /* (mu) writer exits once its queue is empty */
    size_t n_live;               /* recordings not yet CLOSED (loop) */
    unsigned test_write_delay_ms;/* fault-injection builds: a slow disk (SL_TEST_RECORDER_WRITE_DELAY_MS) */
};

typedef struct sl_http_req sl_http_req_t;
/**
 * Answers req with the file (borrowed path; the caller checked it is inside
 * a streams folder): 200, or 206 for a Range request, read off the loop
 * (recorder_http.c). Returns 0 once answered (or answering), or SL_ENOMEM.
 */
int sl__recorder_http_file(sl_recorder_t *m, sl_http_req_t *req, const char *file);

/** Starts the writer thread (recovery first, then jobs). 0 or a libuv error. */
int sl__recorder_io_start(sl_recorder_t *m);
/** Asks the writer to finish every queued job and exit, and joins it. */
void sl__recorder_io_stop(sl_recorder_t *m);
/** Queues a job for the writer (takes it). Never fails. */
void sl__recorder_io_push(sl_recorder_t *m, sl_rjob_t *job);
/** Takes every pending result (loop thread), oldest first; caller frees each with sl_free. */
sl_rres_t *sl__recorder_io_results(sl_recorder_t *m);

/**
 * Registers the service "catalog" 1.0 (app/svc/catalog.h) for m's catalog:
 * loop thread, at start, after m->store is set. 0 (also when there is no
 * store: no service then) or sl_service_register's error.
 */
int sl__recorder_catalog_register(sl_recorder_t *m);
/** Removes the service "catalog" (at free, once every user stopped). */
void sl__recorder_catalog_unregister(sl_recorder_t *m);

#endif
