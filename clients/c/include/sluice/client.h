/*
 * libsluice-client: the native C client of sluice (and of any RTMP server:
 * nginx-rtmp, SRS, Red5, ...). It connects to rtmp://host[:port]/app[/room]/
 * stream[?query] (or rtmps://, RTMP over TLS 1.2+), publishes (an FLV file paced by its timestamps, or frames
 * the caller pushes), plays (frames to a callback and/or an FLV file), calls
 * server methods, and reconnects with exponential backoff when asked to.
 *
 * The API is event driven on libuv: the caller owns a uv_loop_t and runs
 * it; the library never blocks the loop (the one exception is stated at
 * sl_client_flv_open, a helper for reading local files) and never creates
 * threads. Thousands of clients can share one loop; this is how
 * sluice-bench runs.
 *
 * Rules that hold for every call below:
 *  - Errors are 0 or a negative code: sluice's SL_E* (sluice/errors.h) or a
 *    libuv code passed through; sl_strerror() names both.
 *  - Strings and buffers passed in are borrowed for the call only: the
 *    library copies what it keeps. Pointers passed to callbacks are borrowed
 *    for the duration of the callback only.
 *  - Callbacks run on the loop thread. Any call of this API, including
 *    sl_client_free() of the client the callback is about, may be made from
 *    inside a callback.
 *  - A client's memory is released by sl_client_free() together with the
 *    loop: free closes libuv handles, so the loop must run (uv_run) until
 *    they are closed before it is itself closed. No callback is made after
 *    sl_client_free() returns.
 *
 * Everything here is plain C with libc types; libuv's loop type is only
 * forward-declared, so including this header does not pull in uv.h.
 */
#ifndef SLUICE_CLIENT_H
#define SLUICE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SL_EXTERN
#define SL_EXTERN __attribute__((visibility("default")))
#endif

/* libuv's loop, forward-declared (the same typedef as uv.h's). */
typedef struct uv_loop_s uv_loop_t;

/** One RTMP client connection (opaque). */
typedef struct sl_client sl_client_t;

/** Frame kinds: the FLV tag types. */
#define SL_CLIENT_AUDIO 8
#define SL_CLIENT_VIDEO 9
#define SL_CLIENT_DATA 18

/** Where a client is in its life. */
typedef enum {
    SL_CLIENT_IDLE = 0,         /**< created, not started */
    SL_CLIENT_CONNECTING,       /**< resolving, TCP, handshake, connect command */
    SL_CLIENT_CONNECTED,        /**< NetConnection.Connect.Success received */
    SL_CLIENT_ACTIVE,           /**< Play.Start / Publish.Start received (connect-only: = CONNECTED) */
    SL_CLIENT_RECONNECTING,     /**< connection lost; waiting for the backoff delay */
    SL_CLIENT_CLOSED,           /**< over for good (error, rejection, or sl_client_close) */
} sl_client_state_t;

/**
 * A media or data frame, received (play) or read from an FLV file. body is
 * the FLV tag body (what RTMP carries): for video the frame type/codec
 * byte(s) first, for data an AMF0 name and values. Borrowed: valid during
 * the callback (or until the next read of an FLV reader) only.
 */
typedef struct sl_client_frame {
    int kind;               /**< SL_CLIENT_AUDIO, _VIDEO or _DATA */
    uint32_t ts_ms;         /**< decode timestamp (ms) as the server sent it */
    int32_t cts_ms;         /**< composition offset (video): pts = ts + cts */
    int keyframe;           /**< video keyframe (not a sequence header) */
    int config;             /**< codec configuration (sequence header) */
    uint32_t codec;         /**< FourCC in host order ('avc1', 'mp4a', ...), 0 unknown/data */
    const uint8_t *body;    /**< the FLV tag body */
    size_t len;             /**< its length */
} sl_client_frame_t;

/** Frames of a played stream, in arrival order. */
typedef void (*sl_client_frame_cb)(sl_client_t *c, const sl_client_frame_t *f, void *ud);
/**
 * Status events: every onStatus the server sends (NetStream.Play.Start,
 * NetStream.Play.UnpublishNotify, NetStream.Publish.BadName, ...), connect
 * results (NetConnection.Connect.Success/Rejected/InvalidApp), and the two
 * a Flash NetConnection reports itself: NetConnection.Connect.Failed (could
 * not connect) and NetConnection.Connect.Closed (connection lost).
 * Strings are borrowed for the call; description may be "".
 */
typedef void (*sl_client_status_cb)(sl_client_t *c, const char *level, const char *code,
                                    const char *description, void *ud);
/**
 * State changes. err says why for RECONNECTING and CLOSED: 0 after
 * sl_client_close(), SL_EDENIED for a rejection, SL_ECLOSED when the server
 * ended the connection, a libuv code for socket errors, UV_ETIMEDOUT when
 * opts.timeout_ms passed.
 */
typedef void (*sl_client_state_cb)(sl_client_t *c, sl_client_state_t state, int err, void *ud);
/**
 * Result of sl_client_call: err is 0 for _result, SL_EDENIED for _error,
 * SL_ECLOSED when the connection ended first. json holds the values that
 * followed the transaction id as a JSON array (the command object first,
 * usually null), e.g. [null, {"code": "NetConnection.Call.Failed", ...}].
 * Borrowed for the call.
 */
typedef void (*sl_client_result_cb)(sl_client_t *c, int err, const char *json, void *ud);

/** Reconnection policy (off by default). */
typedef struct sl_client_reconnect {
    int enabled;            /**< reconnect after a loss or a failed attempt */
    uint32_t initial_ms;    /**< first delay (default 500) */
    uint32_t max_ms;        /**< delay ceiling (default 30000) */
    double multiplier;      /**< delay growth per failed attempt (default 2.0) */
    uint32_t jitter_pct;    /**< +- random spread of each delay in percent (default 20) */
    uint32_t max_attempts;  /**< attempts in a row before giving up; 0 = no limit */
} sl_client_reconnect_t;

/**
 * Options of a client. Fill with sl_client_opts_init() first, then set what
 * differs; sl_client_new() copies the whole struct and every string in it.
 */
typedef struct sl_client_opts {
    const char *username;        /**< connect args S:username S:password S:token, or NULL */
    const char *password;
    const char *token;
    const char *app;             /**< override the URL split: the app (scope) path, e.g.
                                      "live/room1"; default: the first path segment */
    uint32_t timeout_ms;         /**< start of an attempt -> ACTIVE, else fail (default 10000) */
    uint32_t idle_timeout_ms;    /**< no byte received for this long -> fail (0 = off, default) */
    uint32_t chunk_size;         /**< our outgoing chunk size (default 4096) */
    uint32_t buffer_ms;          /**< play: SetBufferLength sent to the server (default 1000) */
    uint32_t max_message_size;   /**< largest incoming message accepted (default 16 MB) */
    uint32_t max_queue_bytes;    /**< publish: unsent bytes above which writes are refused
                                      with SL_EAGAIN (default 4 MB) */
    int digest_handshake;        /**< 1: Flash-style digest C1; 0: plain (default) */
    sl_client_reconnect_t reconnect;
    const char *flv_out;         /**< play: also write the stream to this FLV file ("-" = stdout) */
    const char *tls_ca_file;     /**< rtmps: PEM file of the CA certificates to trust (a
                                      self-signed server certificate itself works); NULL =
                                      the system CAs (default). Loaded by sl_client_new;
                                      the path is not kept. */
    int tls_insecure;            /**< rtmps: 1 = do not verify the server's certificate or
                                      host name (testing only); 0 = verify (default) */
    sl_client_state_cb on_state;
    sl_client_status_cb on_status;
    sl_client_frame_cb on_frame; /**< play: each received frame */
    void *ud;                    /**< passed to every callback */
} sl_client_opts_t;

/** Flags of sl_client_publish_flv. */
#define SL_CLIENT_FLV_REALTIME 0x01 /**< pace by timestamps (ffmpeg -re); else as fast as the socket takes */
#define SL_CLIENT_FLV_LOOP 0x02     /**< at the end, start over with continuing timestamps */

/** Counters of one client, cumulative over reconnections. */
typedef struct sl_client_stats {
    uint64_t bytes_in, bytes_out;  /**< wire bytes */
    uint64_t frames_in;            /**< audio/video/data frames received */
    uint64_t frames_out;           /**< frames sent */
    uint64_t frames_dropped;       /**< pushed frames dropped (not publishing, or waiting for a keyframe) */
    uint32_t reconnects;           /**< attempts after the first */
    uint32_t sid;                  /**< current message stream id (0 = none) */
} sl_client_stats_t;

/** Fills o with the defaults listed above. */
SL_EXTERN void sl_client_opts_init(sl_client_opts_t *o);

/**
 * Creates a client for url (rtmp://host[:port]/app[/room...]/stream[?query];
 * the port defaults to 1935; rtmps://host[:port]/... is RTMP over TLS,
 * port 1936 by default, with the server's certificate checked against
 * opts.tls_ca_file or the system CAs and against the URL's host unless
 * opts.tls_insecure; the query is sent on tcUrl and on the stream
 * name, where Red5-style servers look for credentials). Copies url and
 * opts (o may be NULL for defaults). Nothing happens on the network until
 * one of the start calls below. Returns 0 with the client in *out (owned by
 * the caller: release with sl_client_free), SL_EINVAL for a URL it cannot
 * parse (not rtmp:// or rtmps://, no host, no app, a bad port) or an
 * rtmps:// client whose tls_ca_file cannot be read or holds no PEM
 * certificate, or SL_ENOMEM. A TLS failure during a connection attempt
 * (certificate not trusted, host name mismatch) ends the attempt with
 * SL_EPROTO, and its NetConnection.Connect.Failed status carries the
 * reason as description, e.g. "certificate verify failed: self-signed
 * certificate". On error *out is NULL and nothing is left to release.
 */
SL_EXTERN int sl_client_new(uv_loop_t *loop, const char *url, const sl_client_opts_t *o,
                            sl_client_t **out);

/**
 * Starts the client: connect, then play the URL's stream; frames go to
 * opts.on_frame and/or opts.flv_out. Each start call may be made once per
 * client; returns 0, SL_EBUSY when already started, SL_EINVAL when the URL
 * has no stream name, or an error opening flv_out (then nothing started).
 * The start calls report CONNECTING through on_state before they return.
 */
SL_EXTERN int sl_client_play(sl_client_t *c);
/**
 * Starts the client: connect, then publish the URL's stream ("live" mode).
 * Once ACTIVE, push frames with sl_client_write. Same returns as play.
 */
SL_EXTERN int sl_client_publish(sl_client_t *c);
/**
 * Starts the client to publish an FLV file (path "-" = standard input, read
 * without blocking when it is a pipe). flags: SL_CLIENT_FLV_REALTIME,
 * SL_CLIENT_FLV_LOOP (not for stdin). Script tags named onMetaData go out as
 * @setDataFrame. At the end of the file (without LOOP) the client closes
 * gracefully (state CLOSED, err 0). After a reconnection the codec headers
 * and metadata are sent again before the next frame. Same returns as play,
 * plus the error of opening the file.
 */
SL_EXTERN int sl_client_publish_flv(sl_client_t *c, const char *path, unsigned flags);
/** Starts the client: connect only (for sl_client_call). Same returns as play. */
SL_EXTERN int sl_client_connect(sl_client_t *c);

/**
 * Publishes one frame (sl_client_publish only): kind SL_CLIENT_AUDIO,
 * _VIDEO or _DATA, its decode timestamp, and the FLV tag body, which is
 * copied. Codec headers (sequence headers, onMetaData) are remembered and
 * re-sent after a reconnection; after one, video is held back until the
 * next keyframe. Returns 0 when queued, SL_EAGAIN when not ACTIVE (the
 * frame is dropped and counted; headers are still remembered) or when more
 * than max_queue_bytes wait to be written, SL_EINVAL for a wrong kind or
 * client mode, SL_ETOOBIG for a body over 16 MB, SL_ENOMEM.
 */
SL_EXTERN int sl_client_write(sl_client_t *c, int kind, uint32_t ts_ms, const uint8_t *body,
                              size_t len);

/**
 * Calls a server method (NetConnection.call): a command named method with
 * a fresh transaction id, a null command object, then the values of
 * args_json, a JSON array (numbers, strings, booleans, null, objects,
 * arrays; NULL or "[]" = no arguments) encoded as AMF0. cb (may be NULL)
 * is called once with the result. Needs CONNECTED or ACTIVE. Returns 0,
 * SL_EINVAL for bad JSON or a client not connected, SL_ENOMEM.
 */
SL_EXTERN int sl_client_call(sl_client_t *c, const char *method, const char *args_json,
                             sl_client_result_cb cb, void *ud);

/**
 * Ends the session gracefully: unpublishes (FCUnpublish + deleteStream) or
 * stops playing, flushes what is queued, closes the connection, cancels
 * reconnection, and reports CLOSED with err 0. Idempotent. The client stays
 * allocated until sl_client_free.
 */
SL_EXTERN void sl_client_close(sl_client_t *c);
/**
 * Releases the client: aborts its connection at once if one is open (no
 * goodbye is sent), closes an FLV output file, and frees the memory once
 * libuv has closed its handles (keep running the loop). No callback runs
 * after it returns. NULL is ignored.
 */
SL_EXTERN void sl_client_free(sl_client_t *c);

/** The current state. */
SL_EXTERN sl_client_state_t sl_client_state(const sl_client_t *c);
/** Copies the client's counters into *st. */
SL_EXTERN void sl_client_get_stats(const sl_client_t *c, sl_client_stats_t *st);
/** The stream name the client plays or publishes (without query), "" for none. Borrowed. */
SL_EXTERN const char *sl_client_stream_name(const sl_client_t *c);
/** A printable state name ("connecting", "active", ...). Static. */
SL_EXTERN const char *sl_client_state_name(sl_client_state_t s);

/* ---- calls with a timeout, and calls from the server ------------------ */

/**
 * sl_client_call with a deadline: when no answer came after timeout_ms
 * (0 = none, as sl_client_call) cb gets UV_ETIMEDOUT with "[]" and a late
 * answer is ignored. Same returns as sl_client_call.
 */
SL_EXTERN int sl_client_call_timeout(sl_client_t *c, const char *method, const char *args_json,
                                     uint32_t timeout_ms, sl_client_result_cb cb, void *ud);

/**
 * A method the server may call on this client (Red5's
 * IServiceCapableConnection.invoke; sluice's POST .../clients/{id}/invoke):
 * args_json is the JSON array of the call's arguments (after the command
 * object). The handler returns the answer as JSON text allocated with
 * malloc (the library frees it; NULL = null). With *is_error left 0 it
 * goes back as _result; set to 1 it goes back as _error: a JSON string
 * becomes the description of {level: "error", code:
 * "NetConnection.Call.Failed", description}, any other value is sent as is.
 * Text that is not JSON is sent as a string.
 */
typedef char *(*sl_client_invoke_cb)(sl_client_t *c, const char *method, const char *args_json,
                                     int *is_error, void *ud);
/**
 * Registers (or with cb NULL removes) the handler of method (at most 64
 * methods, names up to 255 bytes). Server calls of methods with no handler
 * are answered with _error "Method not found (name)." when they carry a
 * transaction id. Returns 0, SL_EINVAL (no name, too long), SL_ETOOBIG (64
 * registered), SL_ENOMEM.
 */
SL_EXTERN int sl_client_on_invoke(sl_client_t *c, const char *method, sl_client_invoke_cb cb,
                                  void *ud);

/* ---- Remote Shared Objects ------------------------------------------- */

/** A shared object joined by a client (opaque, owned by the client). */
typedef struct sl_client_so sl_client_so_t;

/** What a shared-object callback reports (Red5's SyncEvent codes in the names). */
typedef enum {
    SL_CLIENT_SO_INITIAL = 0, /**< joined (or rejoined after a reconnection); the data follows
                                   as CHANGE events; key and json NULL */
    SL_CLIENT_SO_CHANGE,      /**< key = json, written by someone else (or initial data) */
    SL_CLIENT_SO_SUCCESS,     /**< our own write of key was applied (json NULL) */
    SL_CLIENT_SO_REJECT,      /**< our own write of key was refused (json NULL); the server's
                                   STATUS event with the reason follows. sluice and Red5 refuse
                                   a whole message without naming a key: this is the oldest
                                   sl_client_so_set still waiting for its answer */
    SL_CLIENT_SO_DELETE,      /**< key was removed */
    SL_CLIENT_SO_CLEAR,       /**< every key was removed */
    SL_CLIENT_SO_MESSAGE,     /**< a send: key = handler, json = array of the arguments */
    SL_CLIENT_SO_STATUS,      /**< an error from the server: key = Red5's code
                                   (SharedObject.NoWriteAccess, ...), json = level as a string */
} sl_client_so_event_t;

/**
 * Events of one object, in the server's order; version is the object's
 * version after the message that carried the event. key and json are
 * borrowed for the call. The callback may call any function of this API,
 * sl_client_so_close of this object included.
 */
typedef void (*sl_client_so_cb)(sl_client_so_t *so, sl_client_so_event_t ev, const char *key,
                                const char *json, uint32_t version, void *ud);

/**
 * Joins the shared object name (1..255 bytes) of the client's app;
 * persistent as Red5's getRemote(name, uri, persistent). The client must
 * have been started (sl_client_connect or any other start call); the join
 * goes out once CONNECTED, and again after each reconnection (INITIAL
 * then says the data is complete again). At most 64 objects per client,
 * one handle per name. Returns 0 with the handle in *out (valid until
 * sl_client_so_close or sl_client_free), SL_EINVAL (bad name, not
 * started, closed), SL_EBUSY (already joined), SL_ETOOBIG (64 joined),
 * SL_ENOMEM.
 */
SL_EXTERN int sl_client_so_join(sl_client_t *c, const char *name, int persistent,
                                sl_client_so_cb cb, void *ud, sl_client_so_t **out);
/**
 * Sets key (1..255 bytes) to the JSON value json (any JSON type: objects
 * become AMF0 objects). The answer comes as SUCCESS (or a STATUS error);
 * the others get CHANGE. Needs the object joined on a connected client.
 * Returns 0, SL_EINVAL (bad key or JSON, not connected), SL_ENOMEM.
 */
SL_EXTERN int sl_client_so_set(sl_client_so_t *so, const char *key, const char *json);
/** Deletes key; everyone gets DELETE. Returns as sl_client_so_set. */
SL_EXTERN int sl_client_so_delete(sl_client_so_t *so, const char *key);
/**
 * Sends a message to every member (Red5's so.send(handler, args...)):
 * args_json a JSON array (NULL = none). Returns as sl_client_so_set.
 */
SL_EXTERN int sl_client_so_send(sl_client_so_t *so, const char *handler, const char *args_json);
/** The object's name. Borrowed. */
SL_EXTERN const char *sl_client_so_name(const sl_client_so_t *so);
/** The last version the server reported (0 before the first). */
SL_EXTERN uint32_t sl_client_so_version(const sl_client_so_t *so);
/** The client the object belongs to. */
SL_EXTERN sl_client_t *sl_client_so_client(const sl_client_so_t *so);
/**
 * Leaves the object (a disconnect event when connected) and releases the
 * handle; no callback follows. NULL is ignored.
 */
SL_EXTERN void sl_client_so_close(sl_client_so_t *so);

/* ---- FLV files ------------------------------------------------------- */

/** A reader of FLV files (opaque). */
typedef struct sl_client_flv sl_client_flv_t;

/**
 * Opens an FLV file for reading ("-" = standard input). This helper reads
 * with plain blocking stdio, so it is meant for local files read before or
 * beside the loop (sluice-bench loads its source with it); the publishing
 * path of sl_client_publish_flv does not block. Returns 0 with the reader in
 * *out (release with sl_client_flv_close), SL_EPROTO when the file does not
 * start with an FLV header, a negated errno, or SL_ENOMEM.
 */
SL_EXTERN int sl_client_flv_open(const char *path, sl_client_flv_t **out);
/**
 * Reads the next tag into *f (body borrowed until the next call or close).
 * Returns 1 with a tag, 0 at the end of the file, SL_EPROTO for a damaged
 * tag, SL_ETOOBIG for a tag over 16 MB, or a negated errno.
 */
SL_EXTERN int sl_client_flv_next(sl_client_flv_t *r, sl_client_frame_t *f);
/** Closes the reader (and the file unless it is stdin). NULL is ignored. */
SL_EXTERN void sl_client_flv_close(sl_client_flv_t *r);

#ifdef __cplusplus
}
#endif
#endif
