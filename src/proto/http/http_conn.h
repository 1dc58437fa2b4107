/*
 * One HTTP connection and its requests (internal to src/proto/http): the
 * structures shared by http_server.c (socket I/O, ordering, responses,
 * streams), http_ws.c (WebSocket after an upgrade) and http_static.c.
 *
 * Ordering: every parsed request becomes a transaction (sl_http_txn_t) at
 * the tail of the connection's queue. Only the transaction at the head
 * writes to the connection's output list; a later one that answers early
 * keeps its bytes on its own list until every earlier one is complete, so
 * pipelined responses leave in request order whatever order the handlers
 * answer in. The queue is advanced, and the output written, from the
 * server's flush pass (a uv_prepare, just before the loop sleeps), never
 * from inside a handler's call stack.
 *
 * Output: a list of pieces (sl_http_out_t), each an optional small prefix
 * (a chunk-size line), a shared sl_buf_t and an optional CRLF, so a chunk of
 * a streaming response is queued without copying its payload. A flush
 * gathers up to SL_HTTP_MAX_IOV buffers into one uv_try_write and hands
 * what the socket did not take to one uv_write; only one write is in
 * flight per connection.
 *
 * Lifetime: sl__http_conn_close() marks the connection closing, unregisters
 * its session and closes the socket; the memory goes in the uv_close
 * callback, where streams and WebSockets learn through their close
 * callbacks that the client is gone. A plain request whose handler has not
 * answered yet outlives its connection (an orphan): the connection memory
 * stays until that answer arrives, so req->session stays readable.
 *
 * TLS: a connection accepted on the HTTPS listener has a TLS filter
 * (base/tls.h) between its socket and everything above. Ciphertext read is
 * fed to it and the plaintext goes to the framer or the WebSocket as a
 * plain read would; the output list stays plaintext (so every bound above
 * counts plaintext, as on plain HTTP) and is encrypted at write time, a
 * bounded batch at a time, and only while little ciphertext is waiting.
 * Nothing above the socket layer knows whether a connection is TLS.
 */
#ifndef SL_PROTO_HTTP_CONN_H
#define SL_PROTO_HTTP_CONN_H

#include <uv.h>
#include <wslay/wslay.h>

#include "base/tls.h"
#include "proto/http/http.h"
#include "proto/http/http_parse.h"

#define SL_HTTP_MAX_IOV 64
#define SL_HTTP_MAX_PIPELINE 16 /* requests queued on one connection before parsing pauses */

typedef struct sl_http_conn sl_http_conn_t;

/* One piece of output: pre bytes, then buf (shared), then post bytes. */
typedef struct sl_http_out {
    sl_list_t link;       /* in conn->out or txn->out */
    sl_buf_t *buf;        /* owned reference, or NULL */
    uint32_t off;         /* bytes of the whole piece already written */
    uint8_t pre_len;      /* bytes used in pre */
    uint8_t post_len;     /* 0 or 2 ("\r\n" after a chunk) */
    uint8_t pre[14];      /* chunk-size line ("1f40\r\n"), or the last chunk "0\r\n\r\n" */
} sl_http_out_t;

typedef enum {
    SL_HTTP_TXN_PENDING = 0, /* the handler owes an answer */
    SL_HTTP_TXN_DONE,        /* the whole response is queued */
    SL_HTTP_TXN_STREAM,      /* a streaming response is running */
    SL_HTTP_TXN_STREAM_ENDED,/* stream_end was called: done once at the head */
    SL_HTTP_TXN_WS,          /* an accepted WebSocket upgrade (101 queued) */
} sl_http_txn_state_t;

/* One request and its response. */
typedef struct sl_http_txn {
    sl_http_req_t req;           /* must stay first: handlers see &txn->req */
    sl_http_conn_t *conn;        /* the connection (kept allocated while we exist) */
    sl_http_msg_t *msg;          /* the parsed request (owned), NULL for error answers */
    sl_list_t link;              /* in conn->txns */
    sl_list_t out;               /* pieces held back until this is the head */
    size_t out_bytes;            /* bytes in out */
    size_t n_out;                /* pieces in out */
    sl_http_txn_state_t state;
    int head_only;               /* HEAD: headers without body */
    int close_after;             /* the connection closes after this response */
    int chunked;                 /* the stream uses chunked framing (HTTP/1.1 client) */
    int64_t sized_left;          /* sized stream: body bytes still owed; -1 = not sized */
    int orphan;                  /* the connection closed while the handler still owed an answer */
    int handed_over;             /* the stream's writes belong to its owner (sl_http_stream_handover) */
    int status;                  /* status answered (for the log) */
    sl_http_close_cb close_cb;   /* streams */
    void *close_ud;
} sl_http_txn_t;

typedef enum {
    SL_HTTP_CONN_OPEN = 0,
    SL_HTTP_CONN_LINGER,  /* answered and shut down for writing; draining input before close */
    SL_HTTP_CONN_CLOSING, /* uv_close called */
} sl_http_conn_state_t;

struct sl_http_conn {
    sl_session_t sess;           /* must stay first: the core sees this */
    sl_http_server_t *srv;       /* owning server (borrowed) */
    sl_http_conn_state_t state;
    uv_tcp_t tcp;
    uv_shutdown_t shutdown_req;
    uv_write_t wreq;
    sl_list_t link;              /* in srv->conns, then srv->orphans */
    int refs;                    /* 1 for the socket + 1 per orphaned request */

    /* input */
    sl_http_parser_t parser;
    sl_wbuf_t in;                /* bytes read but not parsed yet (pipelining, upgrade) */
    int reading;                 /* uv_read_start in force */
    int eof;                     /* the client shut down its side */
    int no_more_requests;        /* Connection: close, an error, an upgrade or shutdown */
    int upgrade_pending;         /* a WebSocket upgrade request awaits its answer */
    uint64_t n_requests;

    /* requests and output */
    sl_list_t txns;              /* sl_http_txn_t, oldest first */
    size_t n_txns;
    sl_list_t out;               /* sl_http_out_t ready to write, in order */
    size_t out_bytes;            /* bytes in out not yet written (in flight included) */
    size_t n_out;                /* pieces in out */
    size_t held_bytes;           /* bytes answered by later requests, held back in their txn->out */
    int writing;                 /* a uv_write is in flight */
    size_t w_pieces;             /* pieces covered by it */
    size_t w_bytes;              /* bytes covered by it */
    int on_flush_list;
    sl_list_t flush_link;        /* in srv->flush_list */
    int close_after_flush;       /* close (lingering) once every response is written */
    int handed_over;             /* a stream's writes moved to its owner: read, drop, see EOF */

    /* timing (loop time, ms) */
    uint64_t quiet_since_ms;     /* accepted, or the request queue last emptied */
    uint64_t head_start_ms;      /* first byte of the current request head, 0 = none */
    uint64_t last_read_ms;
    uint64_t last_write_ms;      /* last write progress */
    uint64_t linger_start_ms;

    sl_ws_t *ws;                 /* after an accepted upgrade (owned) */

    /* TLS (connections of the HTTPS listener only) */
    sl_tls_t *tls;               /* the filter (owned), NULL on plain HTTP */
    uint8_t *tls_wire;           /* ciphertext of the uv_write in flight (owned), or NULL */
    int tls_established;         /* the handshake completed (logged once) */
};

struct sl_ws {
    sl_http_conn_t *conn;        /* NULL once the connection is gone */
    wslay_event_context_ptr ctx; /* owned (wslay allocates with malloc) */
    const sl_ws_ops_t *ops;
    void *ud;
    int active;                  /* the 101 is queued at the head: frames may follow */
    const uint8_t *in;           /* input being handed to wslay_event_recv */
    size_t in_len;
    sl_wbuf_t frames;            /* bytes wslay produced during one send pass */
    uint64_t close_sent_ms;      /* when our close frame was queued, 0 = not yet */
    uint64_t last_ping_ms;
    int close_deferred;          /* sl_ws_close came with messages still queued: wslay sends
                                    control frames first, so the close waits for them */
    uint16_t close_code;
    uint8_t close_reason[123];
    size_t close_rlen;
};

/* http_server.c */
/**
 * Adds a route whose ud the server owns: free_ud(ud) runs when the server
 * is freed or the route removed (static-file routes). 0, SL_EINVAL or
 * SL_ENOMEM (then free_ud has run). *out (when not NULL) gets the route.
 */
int sl__http_route_owned(sl_http_server_t *srv, const sl_http_route_spec_t *spec,
                         void (*free_ud)(void *), sl_http_route_t **out);
/* http_svc.c */
/** Registers the "http" service (app/svc/http.h) for srv: 0 or SL_EBUSY/SL_ENOMEM. */
int sl__http_svc_register(sl_http_server_t *srv);
/** Removes it (no-op when srv did not register it). */
void sl__http_svc_unregister(sl_http_server_t *srv);

/** The loop a request's server runs on (borrowed; for async work on its behalf). */
uv_loop_t *sl__http_req_loop(const sl_http_req_t *req);
/** The server's core (borrowed). */
sl_core_t *sl__http_core(const sl_http_server_t *srv);
/** Puts the connection on the flush list (written before the loop sleeps). */
void sl__http_schedule_flush(sl_http_conn_t *c);
/** Closes at once (idempotent); reason is logged at info when not NULL. */
void sl__http_conn_close(sl_http_conn_t *c, const char *reason);
/**
 * Queues a whole buffer on the connection's output, bypassing the request
 * queue (WebSocket frames, 100 Continue). Takes its own reference. 0 or SL_ENOMEM.
 */
int sl__http_conn_queue_raw(sl_http_conn_t *c, sl_buf_t *buf);
/**
 * Builds a response head (status line, Date, Server, CORS, Content-Type,
 * Content-Length when content_length >= 0, Connection, extra lines, blank
 * line) into w.
 */
int sl__http_build_head(sl_http_txn_t *t, sl_wbuf_t *w, int status, const char *content_type,
                        int64_t content_length, const char *extra_headers);
/**
 * Checks that t may still be answered: 0 when it may; SL_EINVAL when it
 * was answered already; SL_ECLOSED when the client is gone (an orphan is
 * released then, and t must not be used again).
 */
int sl__http_txn_answerable(sl_http_txn_t *t);
/** Queues a piece for t (the connection when t is at the head, else t's own list); takes o. */
void sl__http_txn_queue(sl_http_txn_t *t, sl_http_out_t *o);
/** A new piece around buf (reference taken by the caller and handed over); NULL on ENOMEM. */
sl_http_out_t *sl__http_out_new(sl_buf_t *buf);

/* http_ws.c */
/** The 101 is on the connection's output: start framing (feeds input held back). */
void sl__http_ws_start(sl_http_conn_t *c);
/** Bytes read on an upgraded connection (borrowed). */
void sl__http_ws_on_data(sl_http_conn_t *c, const uint8_t *p, size_t n);
/** Lets wslay write what it has queued, within the output bound. */
void sl__http_ws_pump(sl_http_conn_t *c);
/** Timers: pings, idle close, close-handshake deadline. */
void sl__http_ws_sweep(sl_http_conn_t *c, uint64_t now_ms);
/** Graceful shutdown: close frame 1001. */
void sl__http_ws_shutdown(sl_http_conn_t *c);
/** The connection is gone: on_close, then free. */
void sl__http_ws_closed(sl_http_conn_t *c);
/** Messages wslay holds for sending. */
size_t sl__http_ws_queued(const sl_http_conn_t *c);

#endif
