/*
 * The restream module's worker threads (restream_io.c): libavformat as
 * the protocol client, so that no protocol code is duplicated. An input
 * (a pull's live source, or its standby file played in a loop at real
 * time) demuxes on its own thread and turns packets into FLV tag bodies
 * (sl_buf_t, what sl_frame_new takes), posted to the loop through a
 * channel. An output (one push destination) takes copies of a stream's
 * frames from a bounded queue the loop fills, muxes them as FLV (rtmp://,
 * rtmps://) or MPEG-TS (srt://) and writes them, reconnecting with
 * backoff. Neither ever runs on the loop; the loop never waits for them.
 *
 * Lifetimes: threads are detached. The loop "stops" an input or output
 * (a flag and a signal, no join) and forgets it; the thread notices within
 * one interrupt check (libavformat's interrupt callback is polled every
 * few ms inside blocking calls), releases its references and frees what it
 * owns. A channel is shared by its loop side and its threads and freed
 * with the last reference; once the loop closed it, posts are dropped.
 */
#ifndef SL_MODULES_RESTREAM_IO_H
#define SL_MODULES_RESTREAM_IO_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"

/* What a thread tells the loop. */
typedef enum {
    SL_RS_ITEM_FRAME = 0, /* a frame: kind, dts, body */
    SL_RS_ITEM_UP,        /* connected (msg: what was found, e.g. "h264 640x360, aac") */
    SL_RS_ITEM_DOWN,      /* disconnected or failed to connect (msg: why) */
    SL_RS_ITEM_NOTE,      /* something worth a log line (msg) */
} sl_rs_item_type_t;

typedef struct sl_rs_item {
    struct sl_rs_item *next;
    sl_rs_item_type_t type;
    int src;              /* the poster's tag (a pull: 0 live, 1 standby) */
    int seg_start;        /* frames: first of a new timeline (a connection, a file loop) */
    uint8_t kind;         /* SL_FLV_AUDIO / _VIDEO / _DATA */
    int64_t dts_ms;       /* the source's own timeline */
    sl_buf_t *body;       /* FLV tag body, owned (frames) */
    char msg[200];        /* up/down/note text (never a URL's secret) */
} sl_rs_item_t;

typedef struct sl_rs_chan sl_rs_chan_t;

/** Called on the loop with a batch of items (a list the callee owns: sl_rs_item_free each). */
typedef void (*sl_rs_items_cb)(void *ud, sl_rs_item_t *items);

/**
 * A channel from threads to the loop. cb(ud, items) runs on the loop
 * whenever items arrived. max_bytes bounds the frame bytes waiting (past
 * it, frames are dropped and counted; control items always pass). 0 and
 * *out (one reference, the loop's), or SL_ENOMEM / a libuv error.
 */
int sl_rs_chan_new(uv_loop_t *loop, size_t max_bytes, sl_rs_items_cb cb, void *ud,
                   sl_rs_chan_t **out);
/** The loop side is done: no more callbacks; items waiting are freed. Drops the loop's reference. */
void sl_rs_chan_close(sl_rs_chan_t *ch);
/** Frames dropped because the loop was behind. */
uint64_t sl_rs_chan_dropped(sl_rs_chan_t *ch);
/** Frees an item and its body. */
void sl_rs_item_free(sl_rs_item_t *it);

/* Timeouts and pacing shared by inputs and outputs. */
typedef struct sl_rs_timing {
    uint64_t open_ms;     /* connecting */
    uint64_t read_ms;     /* silence from a source */
    uint64_t retry_min_ms, retry_max_ms;
} sl_rs_timing_t;

typedef struct sl_rs_input sl_rs_input_t;

/**
 * Starts an input thread reading url (borrowed, copied) and posting into
 * ch with tag src. file_loop: a local file played at real time and looped
 * for ever (standby); else a live source, reconnected with backoff.
 * rtsp_udp: RTSP media over UDP (TCP interleaved otherwise). log_url is
 * the URL as logs may show it (redacted). 0 and *out, or SL_ENOMEM / an
 * errno from thread creation.
 */
int sl_rs_input_start(sl_rs_chan_t *ch, int src, const char *url, int file_loop, int rtsp_udp,
                      const sl_rs_timing_t *t, sl_rs_input_t **out);
/** Asks the input to end; the thread frees it. NULL is ignored. */
void sl_rs_input_stop(sl_rs_input_t *in);

/* One frame for an output, copied from the hub (the loop's frames stay on the loop). */
typedef struct sl_rs_pkt {
    struct sl_rs_pkt *next;
    uint8_t kind, is_key, is_config;
    uint32_t codec;       /* SL_CODEC_* */
    uint32_t dts_ms;
    int32_t cts_ms;
    size_t len;           /* codec bytes (after the FLV/E-RTMP header) */
    uint8_t data[];
} sl_rs_pkt_t;

/* An output's counters, written by its thread, read by the loop (API). */
typedef struct sl_rs_out_stats {
    uint64_t bytes;        /* written to the destination */
    uint64_t frames;       /* frames written */
    uint64_t errors;       /* failed connects and writes */
    uint64_t reconnects;   /* connections after the first */
    uint64_t dropped;      /* frames dropped for a slow or absent destination */
    int up;                /* connected now */
    char last_error[160];
} sl_rs_out_stats_t;

typedef struct sl_rs_output sl_rs_output_t;

/**
 * Starts an output thread muxing to url (copied): FLV for rtmp(s)://,
 * MPEG-TS for srt://. Up/down notes go to ch with tag src. max_bytes
 * bounds the queue (sl_rs_output_offer). 0 and *out, or SL_ENOMEM.
 */
int sl_rs_output_start(sl_rs_chan_t *ch, int src, const char *url, size_t max_bytes,
                       const sl_rs_timing_t *t, sl_rs_output_t **out);
/**
 * Offers a frame (codec bytes body, len; borrowed, copied) to the output's
 * queue; never blocks for long (a mutex). When the queue is over its
 * bound, everything waiting but configurations is dropped and media
 * resumes at the next video keyframe. Returns 0, or SL_ENOMEM.
 */
int sl_rs_output_offer(sl_rs_output_t *o, uint8_t kind, uint32_t codec, int is_key,
                       int is_config, uint32_t dts_ms, int32_t cts_ms, const uint8_t *data,
                       size_t len);
/** A copy of the counters. */
void sl_rs_output_stats(sl_rs_output_t *o, sl_rs_out_stats_t *out);
/** Asks the output to end; the thread frees it. NULL is ignored. */
void sl_rs_output_stop(sl_rs_output_t *o);

/**
 * Waits up to timeout_ms for every input and output thread to have ended
 * (after they were stopped): at shutdown, so that what they own is freed
 * before the process checks its allocations. Blocking: call it off the
 * loop's work (the module's destroy). Returns the threads still running.
 */
int sl_rs_threads_wait(uint64_t timeout_ms);

/**
 * Worker side of a pull, exposed for the unit test: turns one H.264 Annex
 * B access unit (data, len) into AVCC with 4-byte lengths in out (cap),
 * collecting SPS and PPS (copied into sps/pps, lengths updated, *changed
 * set when they differ from before). Returns the AVCC length (0 when only
 * parameter sets were present), or SL_ETOOBIG.
 */
int sl_rs_annexb_to_avcc(const uint8_t *data, size_t len, uint8_t *out, size_t cap,
                         uint8_t *sps, size_t *sps_len, uint8_t *pps, size_t *pps_len,
                         int *changed, int *has_idr);

/**
 * The same for one H.265 Annex B access unit: VPS, SPS and PPS (NAL types
 * 32-34) are copied into vps/sps/pps (each buffer at least 1024 bytes;
 * larger sets are dropped), access unit delimiters dropped, *has_irap set
 * for an IRAP picture (types 16-23). Returns the length-prefixed length (0
 * when only parameter sets were present), or SL_ETOOBIG.
 */
int sl_rs_annexb_to_hvcc(const uint8_t *data, size_t len, uint8_t *out, size_t cap,
                         uint8_t *vps, size_t *vps_len, uint8_t *sps, size_t *sps_len,
                         uint8_t *pps, size_t *pps_len, int *changed, int *has_irap);

#endif
