/*
 * Inside the SRT protocol folder: the server, its sessions, and the frame
 * queue that carries demuxed frames from an ingest thread (an SRT
 * publisher's, a UDP listener's) to the loop. Not a public interface.
 *
 * Threads (docs/srt.md has the why): libsrt runs its own threads; the
 * accept thread blocks in srt_accept; every SRT publisher and every UDP
 * listener has a thread that blocks in its receive call inside
 * libavformat's demuxer (sl_ts_demux_run) and hands FLV tag bodies to the
 * loop through an sl__srt_q_t (bounded in bytes) and one uv_async_t. The
 * loop owns sessions, the hub and every sl_frame_t; readers are written
 * from the loop with non-blocking srt_sendmsg2.
 */
#ifndef SL_PROTO_SRT_SRT_INTERNAL_H
#define SL_PROTO_SRT_SRT_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "app/core.h"
#include "base/buf.h"
#include "base/list.h"
#include "media/audio_bridge.h"

/* One demuxed frame on its way to the loop. */
typedef struct sl__srt_qitem {
    sl_list_t link;
    uint8_t kind;
    int64_t dts_ms;
    sl_buf_t *body; /* owned */
} sl__srt_qitem_t;

/*
 * Thread -> loop frame queue. push (any thread) drops frames past max_bytes
 * and then video until the next keyframe (configs are never dropped);
 * take (loop) moves everything out at once.
 */
typedef struct sl__srt_q {
    uv_mutex_t mu;
    sl_list_t items;
    size_t bytes, max_bytes;
    int drop_to_key;        /* over budget: video waits for a keyframe */
    uint64_t dropped;       /* frames dropped here */
} sl__srt_q_t;

int sl__srt_q_init(sl__srt_q_t *q, size_t max_bytes);
/** Takes body; returns 1 when it was queued (0: dropped and freed). */
int sl__srt_q_push(sl__srt_q_t *q, uint8_t kind, int64_t dts_ms, sl_buf_t *body);
/** Moves every queued item into out (an initialised list), oldest first. */
void sl__srt_q_take(sl__srt_q_t *q, sl_list_t *out);
/** Frees the items of a list taken with sl__srt_q_take, or still queued (cleanup). */
void sl__srt_q_free_list(sl_list_t *l);
void sl__srt_q_cleanup(sl__srt_q_t *q);

/** 1 when an FLV tag body of kind is a sequence header (legacy or E-RTMP). */
int sl__srt_body_is_config(uint8_t kind, const sl_buf_t *body);
/** 1 when an FLV video tag body is a keyframe. */
int sl__srt_body_is_key(const sl_buf_t *body);
/**
 * Pushes taken items into st (NULL: just frees them); returns the bytes
 * pushed. Audio other than AAC (Opus in TS) goes through the publisher's
 * audio bridge *ab, created here at its first such frame (loop and log,
 * borrowed, are for that); the caller frees *ab before unpublishing.
 */
uint64_t sl__srt_push_items(sl_stream_t *st, sl_audio_bridge_t **ab, uv_loop_t *loop,
                            const sl_log_ctx_t *log, sl_list_t *items);

/* The servers (srt_server.c, mpegts_udp.c). */
typedef struct sl__srt_server sl__srt_server_t;
typedef struct sl__ts_udp sl__ts_udp_t;

/**
 * Opens the SRT listener (srt.bind:srt.port), starts the accept thread and
 * registers the "srt" service. *out is set even on failure (a partial
 * state for stop/free to clean up). Returns 0, SL_EINVAL (bad bind
 * address), SL_EIO (libsrt refused the socket, bind or listen; logged) or
 * SL_ENOMEM.
 */
int sl__srt_server_start(sl_core_t *core, sl__srt_server_t **out);
/**
 * Stops accepting, closes every session (publishers' threads joined,
 * events emitted) and closes the loop handles; the loop must run once more
 * before free. Idempotent; NULL is ignored.
 */
void sl__srt_server_stop(sl__srt_server_t *srv);
/** Stops if needed and frees the server (after the loop closed its handles). NULL is ignored. */
void sl__srt_server_free(sl__srt_server_t *srv);

/**
 * Opens every `mpegts.udp` entry (a socket and a thread each). *out is set
 * even on failure. Returns 0, SL_EINVAL (a bad entry, logged), SL_EIO (a
 * port that cannot be bound, logged), SL_ETOOBIG (more than 64 entries) or
 * SL_ENOMEM.
 */
int sl__ts_udp_start(sl_core_t *core, sl__ts_udp_t **out);
/** Joins the threads, ends the publishes, closes the async handle. Idempotent; NULL ignored. */
void sl__ts_udp_stop(sl__ts_udp_t *u);
/** Stops if needed and frees everything (sockets closed). NULL is ignored. */
void sl__ts_udp_free(sl__ts_udp_t *u);
/** MPEG-TS/UDP counters for the srt service (bytes received, listeners publishing now). */
void sl__ts_udp_counters(const sl__ts_udp_t *u, uint64_t *bytes_in, uint64_t *publishing);
/** The one running UDP ingest (set by start, cleared by free), for the srt service's counters. */
extern sl__ts_udp_t *sl__ts_udp_running;

#endif
