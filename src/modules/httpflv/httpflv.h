/*
 * HTTP-FLV delivery (docs/httpflv.md): a live stream as one endless FLV
 * file over a chunked HTTP response, at http://host:5080/{app}/{stream}.flv
 * (rooms nest), for flv.js / mpegts.js, ffmpeg, VLC and the like.
 *
 * A request runs the admission chain (kind play, transport "http-flv",
 * credentials from the query or a bearer token; refused: 401 without
 * credentials, 403 with) and becomes a session (proto "http-flv", role
 * subscriber) for the life of its response, with SL_EV_PLAY and
 * SL_EV_PLAY_STOP. The player is a hub sink: it starts on a keyframe
 * (the stream's GOP cache is replayed after the FLV header, metadata and
 * codec configurations), and it never blocks the publisher: frames wait
 * in a bounded per-player queue (media.queue_max_bytes / _ms) and move to
 * the socket only while the response has little unwritten data; a player
 * that cannot keep up drops to the next keyframe, and one still behind
 * after media.slow_disconnect is cut. The response ends when the
 * publisher leaves.
 *
 * Encoding is shared: each frame's FLV tag (11-byte header, body,
 * PreviousTagSize) is built once, by the first player that sends it, in
 * the frame's SL_ENC_FLV_TAG slot, and every player queues that same
 * buffer. Tags carry the stream's own timestamps (see httpflv.c for why
 * per-player rebasing is not needed here).
 */
#ifndef SL_PROTO_HTTPFLV_H
#define SL_PROTO_HTTPFLV_H

#include "media/frame.h"
#include "modules/module.h"

/** The module (listed in src/modules/modules.c). */
extern const sl_builtin_t sl_httpflv_builtin;

/**
 * The frame's FLV tag (header with the frame's dts, body, PreviousTagSize),
 * built on first use and cached in f->enc[SL_ENC_FLV_TAG]; any loop thread
 * (a loop that loses the cache's claim to another one building it gets a
 * private copy). Returns a new reference the caller drops with
 * sl_buf_unref, or NULL on ENOMEM or when the body does not fit a tag
 * (over 16 MB).
 */
sl_buf_t *sl_httpflv_tag(sl_frame_t *f);

#endif
