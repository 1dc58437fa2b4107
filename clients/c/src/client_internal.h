/*
 * Internals of libsluice-client shared by its files (not installed, not
 * API): the client and connection structs, the incremental FLV parser, the
 * FLV file writer used by play-to-file, the FLV publishing source, and the
 * JSON <-> AMF0 conversion of sl_client_call.
 *
 * Shape: an sl_client_t outlives its connections. Each attempt allocates a
 * connection (sl__client_conn_t) with its own TCP handle, handshake state,
 * chunk reader and output buffer; a lost connection is detached from its
 * client (conn->client = NULL) and frees itself in its close callback, so a
 * reconnection never waits for the old socket and never shares its state.
 * The protocol code itself (handshake, chunk stream, AMF, FLV tag bodies) is
 * the server's, from sluice_core: one implementation for both sides.
 */
#ifndef SL_CLIENT_INTERNAL_H
#define SL_CLIENT_INTERNAL_H

#include <stdio.h>
#include <uv.h>

#include "base/buf.h"
#include "base/tls.h"
#include "proto/rtmp/amf.h"
#include "proto/rtmp/rtmp_chunk.h"
#include "proto/rtmp/rtmp_handshake.h"
#include "sluice/client.h"

#define SL__CLIENT_MAX_TAG (16u * 1024u * 1024u) /* largest FLV tag / pushed frame */

/* ---- incremental FLV parser ------------------------------------------ */

/*
 * Bytes in, tags out. Input is appended to `in`; a tag comes out once its
 * 11-byte header and whole body are buffered. The trailing previous-tag-size
 * field is skipped lazily, so a file cut after its last body still yields
 * that tag. A body pointer stays valid until the next feed.
 */
typedef struct sl__flv_parser {
    sl_wbuf_t in;          /* buffered input (capped) */
    size_t off;            /* bytes of `in` consumed */
    size_t skip;           /* bytes still to skip (header tail, previous tag size) */
    int header_done;       /* the FLV file header has been read */
} sl__flv_parser_t;

/** Initialises a parser that buffers at most SL__CLIENT_MAX_TAG + 64 KB. */
void sl__flv_parser_init(sl__flv_parser_t *p);
/** Frees the buffer. */
void sl__flv_parser_cleanup(sl__flv_parser_t *p);
/** Forgets everything buffered and expects a file header again (looping). */
void sl__flv_parser_reset(sl__flv_parser_t *p);
/** Appends n bytes. 0, SL_ETOOBIG (more buffered than one tag can need), SL_ENOMEM. */
int sl__flv_parser_feed(sl__flv_parser_t *p, const uint8_t *b, size_t n);
/** Bytes buffered and not yet consumed. */
size_t sl__flv_parser_buffered(const sl__flv_parser_t *p);
/**
 * Takes the next tag: 1 with *f filled (kind, ts, body; flags parsed),
 * 0 when more input is needed, SL_EPROTO for input that is not FLV or a tag
 * of an unknown type or over the size limit.
 */
int sl__flv_parser_next(sl__flv_parser_t *p, sl_client_frame_t *f);
/** Fills keyframe/config/codec/cts of f from its body (kind and body set). */
void sl__flv_frame_classify(sl_client_frame_t *f);

/* ---- FLV writer -------------------------------------------------------- */

typedef struct sl__flv_writer {
    FILE *fp;              /* the output (owned unless stdout) */
    int is_stdout;
    int64_t base_ts;       /* first media timestamp (the file starts at 0), -1 unset */
    int failed;            /* a write failed: stop writing */
} sl__flv_writer_t;

/** Opens path ("-" = stdout) and writes the FLV header. 0 or a negated errno. */
int sl__flv_writer_open(sl__flv_writer_t *w, const char *path);
/** Appends one tag (data tags other than onMetaData are skipped). 0 or a negated errno. */
int sl__flv_writer_put(sl__flv_writer_t *w, const sl_client_frame_t *f);
/** Flushes and closes (stdout is flushed only). */
void sl__flv_writer_close(sl__flv_writer_t *w);

/* ---- the connection ---------------------------------------------------- */

typedef struct sl__client_conn {
    sl_client_t *client;         /* owner, NULL once detached */
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_getaddrinfo_t gai;
    uv_shutdown_t sreq;
    uv_timer_t linger;           /* bounds a graceful close */
    int refs;                    /* open handles (tcp, linger) + resolve in flight */
    int tcp_open;                /* tcp initialised and not yet closed */
    int tcp_connected;           /* the TCP connect completed */
    int linger_open;             /* linger initialised and not yet closed */
    int resolving;               /* getaddrinfo in flight */
    int closing;                 /* close or shutdown started */
    sl_rtmp_hs_t *hs;            /* during the handshake only (owned) */
    sl_rtmp_chunk_reader_t rd;   /* incoming chunk stream */
    sl_wbuf_t out;               /* bytes not yet handed to libuv (plaintext under TLS) */
    sl_tls_t *tls;               /* rtmps: the TLS filter at the socket edges (owned), else NULL */
    sl_wbuf_t wire;              /* rtmps: ciphertext not yet handed to libuv */
    size_t inflight;             /* bytes in uv_write requests */
    uint32_t out_chunk;          /* chunk size we write with */
    uint64_t bytes_in;           /* bytes received on this connection */
    uint64_t acked;              /* bytes_in at our last acknowledgement */
    uint32_t peer_window;        /* the server's window ack size (0 = none) */
    int window_sent;             /* we answered SetPeerBandwidth */
    /* sl__client_discard_input: input counted and dropped in the kernel */
    uv_poll_t discard;           /* readability of discard_fd */
    int discard_fd;              /* a dup of the socket (-1 = not discarding) */
    int discard_open;            /* discard initialised and not yet closed */
} sl__client_conn_t;

/* A call waiting for its _result/_error. */
typedef struct sl__client_call {
    double txn;
    uint64_t deadline;           /* loop time after which it times out (0 = never) */
    sl_client_result_cb cb;
    void *ud;
} sl__client_call_t;

typedef enum {
    SL__MODE_NONE = 0,
    SL__MODE_CONNECT,
    SL__MODE_PLAY,
    SL__MODE_PUBLISH,            /* frames from sl_client_write or the FLV source */
} sl__client_mode_t;

typedef struct sl__flv_src sl__flv_src_t;

/* A method the server may call (sl_client_on_invoke). */
typedef struct sl__client_invoke {
    char *method;                /* owned */
    sl_client_invoke_cb cb;
    void *ud;
} sl__client_invoke_t;

#define SL__CLIENT_MAX_INVOKES 64
#define SL__CLIENT_MAX_SOS 64
#define SL__SO_NAME_MAX 255      /* as the server's SL_SO_NAME_MAX */
#define SL__SO_KEY_MAX 255       /* keys we send (the server's SL_SO_KEY_MAX) */
#define SL__SO_RX_KEY_MAX 4096   /* keys we accept from a server */
#define SL__SO_MAX_EVENTS 1024   /* events of one incoming message */
#define SL__SO_MAX_PENDING 256   /* our sets awaiting their answer, per object */
#define SL__SO_MAX_DEPTH 32      /* AMF nesting inside a value */

/* A joined shared object (client_so.c). */
struct sl_client_so {
    sl_client_t *c;
    char *name;                  /* owned */
    int persistent;
    uint32_t version;
    sl_client_so_cb cb;
    void *ud;
    char **pending;              /* keys of our sets not yet answered, oldest first (owned) */
    size_t n_pending;
    int dead;                    /* closed inside its own callback: freed after dispatch */
    struct sl_client_so *next;
};

struct sl_client {
    uv_loop_t *loop;             /* borrowed from the caller */
    sl_client_opts_t o;          /* copy; string fields point at owned copies */
    char *host;                  /* owned */
    int port;
    int tls;                     /* rtmps:// */
    sl_tls_ctx_t *tls_ctx;       /* rtmps: client context shared by attempts (owned) */
    char tls_err[192];           /* why TLS failed this attempt ("" = it did not) */
    char *app;                   /* scope path, owned */
    char *stream;                /* stream name without query ("" when none), owned */
    char *query;                 /* query string without '?', owned or NULL */
    char *tc_url;                /* rtmp://host:port/app[?query], owned */
    char *stream_arg;            /* stream[?query] sent with play/publish, owned */
    sl__client_mode_t mode;
    sl_client_state_t state;
    int freeing;                 /* sl_client_free called */
    int user_closed;             /* sl_client_close called: no reconnection */
    int terminal;                /* the last failure must not be retried */
    uv_timer_t timer;            /* attempt timeout, idle check, reconnect delay */
    int handles_open;            /* client handles not yet closed (timer, source) */
    sl__client_conn_t *conn;     /* current connection or NULL */
    int connected_once;          /* this attempt reached CONNECTED */
    uint64_t last_in_ms;         /* loop time of the last byte received */
    uint32_t failures;           /* failed attempts in a row */
    uint32_t sid;                /* message stream id from createStream (0 = none) */
    double txn_next;             /* next transaction id */
    double txn_connect, txn_create;
    sl__client_call_t *calls;    /* pending calls (owned array) */
    size_t n_calls, cap_calls;
    uv_timer_t call_timer;       /* deadlines of calls with a timeout */
    sl__client_invoke_t *invokes; /* server -> client methods (owned array) */
    size_t n_invokes;
    struct sl_client_so *sos;    /* joined shared objects (owned list) */
    size_t n_sos;
    struct sl_client_so *so_busy; /* the object whose events are being delivered */
    /* publishing */
    sl_buf_t *hdr_meta;          /* remembered onMetaData body (owned ref) */
    sl_buf_t *hdr_video;         /* remembered video sequence header */
    sl_buf_t *hdr_audio;         /* remembered audio sequence header */
    uint32_t last_out_ts;        /* timestamp of the last frame sent */
    int wait_key;                /* hold video back until a keyframe */
    sl__flv_src_t *src;          /* FLV source of sl_client_publish_flv (owned) */
    /* playing */
    sl__flv_writer_t *fout;      /* opts.flv_out (owned) */
    sl_client_stats_t st;
};

/**
 * Publishes a frame through the same path as sl_client_write (header
 * memory, keyframe wait, @setDataFrame) without flushing. Contract of
 * sl_client_write otherwise.
 */
int sl__client_publish_frame(sl_client_t *c, int kind, uint32_t ts_ms, const uint8_t *body,
                             size_t len);
/** Hands buffered output to the socket. */
void sl__client_flush(sl_client_t *c);
/** Bytes published but not yet written to the socket (0 without a connection). */
size_t sl__client_queued(const sl_client_t *c);
/** The FLV source reached its end: close gracefully. */
void sl__client_source_done(sl_client_t *c, int err);
/** One of the client's handles (its timer, the source's) finished closing. */
void sl__client_handle_done(sl_client_t *c);

/** Queues a message of type on chunk stream 3, message stream 0 (not flushed). */
int sl__client_send0(sl_client_t *c, uint8_t type, const uint8_t *p, size_t n);

/* ---- shared objects and server calls (client_so.c) -------------------- */

/**
 * A type 19 (flex 0) or 16 (flex 1) message body: parsed under the caps
 * above and delivered to its object's callback. A malformed message or one
 * for an object not joined is dropped (returns 0); SL_ENOMEM otherwise.
 * The client may be freed by a callback: callers check c->freeing.
 */
int sl__client_on_so(sl_client_t *c, const uint8_t *p, size_t n, int flex);
/** CONNECTED (first time or again): sends the join of every object. */
void sl__client_so_rejoin(sl_client_t *c);
/** The connection ended: forgets the writes that will not be answered. */
void sl__client_so_lost(sl_client_t *c);
/** sl_client_free: releases every object and invoke handler, no callback. */
void sl__client_so_free_all(sl_client_t *c);
/**
 * A command from the server that is not an answer or a status: runs the
 * registered handler and answers _result/_error when txn is not 0 (an
 * unknown method with a txn gets _error "Method not found"). args are the
 * values after the command object. Returns 0 or a send error.
 */
int sl__client_on_invoke(sl_client_t *c, const char *method, double txn, sl_amf_t *const *args,
                         size_t n);

/* ---- the FLV publishing source (client_flv.c) ------------------------ */

/** Opens the source for sl_client_publish_flv. 0 or an error (nothing left open). */
int sl__src_open(sl_client_t *c, const char *path, unsigned flags);
/** Publishing started (or restarted): resume pacing from the next tag. */
void sl__src_start(sl_client_t *c);
/** Publishing stopped (connection lost): stop pacing. */
void sl__src_stop(sl_client_t *c);
/** The socket took data: send more if the pacing allows. */
void sl__src_pump(sl_client_t *c);
/** Releases the source; its handles close through sl__client_handle_done. */
void sl__src_close(sl_client_t *c);

/* ---- JSON <-> AMF0 (client_json.c) ----------------------------------- */

/**
 * Encodes each element of a JSON array (text) as one AMF0 value into w.
 * NULL or empty text encodes nothing. 0, SL_EINVAL (not a JSON array, or
 * nesting deeper than 32), or a wbuf error.
 */
int sl__json_args_to_amf0(const char *json, sl_wbuf_t *w);
/**
 * Renders values as a JSON array. Returns a string to release with free()
 * (jansson's allocator), or NULL on ENOMEM.
 */
char *sl__amf_to_json(sl_amf_t *const *vals, size_t n);
/** One JSON value (any type) as one AMF0 value. 0, SL_EINVAL, or a wbuf error. */
int sl__json_value_to_amf0(const char *json, sl_wbuf_t *w);
/** One value as JSON text (NULL -> "null"); free() it; NULL on ENOMEM. */
char *sl__amf_value_json(const sl_amf_t *v);

/*
 * Load generators only (sluice-bench's counting players): from now on the
 * connection's input is counted and discarded by the kernel (recv with
 * MSG_TRUNC: no copy to user space, no parsing); acknowledgements still follow
 * the server's window, the byte counters and the idle clock still move, and
 * the end of the stream still ends the connection. Pings go unanswered and no
 * callback sees a frame again. lowat > 0 sets SO_RCVLOWAT (wake once that
 * many bytes wait). Plain rtmp:// only, on an established play: SL_EINVAL
 * otherwise; SL_ENOMEM or a negated errno if the socket cannot be watched.
 */
int sl__client_discard_input(sl_client_t *c, int lowat);

#endif
