/*
 * The "webrtc-ws" service, version 1.2: Red5 Pro's WebSocket signalling
 * (ws://host:5080/{app}/?id={stream}, src/proto/webrtc/webrtc_ws.c) lets
 * other code add JSON messages to its dispatch table, so that features
 * carried on the same socket by Red5's HTML5 SDK (shared objects:
 * `sharedObjectGetRemote`, `sharedObjectConnect`, `sharedObjectSend`,
 * `sharedObjectSetProperty`, `sharedObjectClose`; issue 15) live in their
 * own module and never include the protocol's headers.
 *
 * A message is a JSON object; it is dispatched on the first of its
 * top-level keys that names a handler (built-in ones first: publish,
 * handleOffer, handleCandidate, requestOffer, handleAnswer, subscribe,
 * unpublish, isAvailable, log, switchChannel). A message no handler takes is answered
 * {"data":{"type":"error","code":"NetConnection.Call.Failed",...}} and the
 * socket stays open.
 *
 * A "conn" is either a signalling socket or (from 1.1) the `red5pro` data
 * channel of a WHIP/WHEP (or WebSocket-negotiated) session: a data channel
 * message whose top-level key names a handler added here goes to that
 * handler instead of the stream's viewers; send() answers on the same
 * channel, scope() is the session's app, id() its stream, session() the
 * session, and on_close runs when the session ends. Built-in keys never
 * match on a data channel.
 *
 * Look it up with sl_service_get(core, SL_WEBRTC_WS_SVC_NAME,
 * SL_WEBRTC_WS_SVC_MAJOR, 0, &ud) and pass ud as `svc`. Loop thread only.
 * This table is append-only (a later function bumps the minor).
 */
#ifndef SL_APP_SVC_WEBRTC_WS_H
#define SL_APP_SVC_WEBRTC_WS_H

#include <stddef.h>

#define SL_WEBRTC_WS_SVC_NAME "webrtc-ws"
#define SL_WEBRTC_WS_SVC_MAJOR 1
#define SL_WEBRTC_WS_SVC_MINOR 2

typedef struct sl_wsig_conn sl_wsig_conn_t; /* one signalling socket (opaque) */
struct sl_admit;
typedef struct sl_session sl_session_t;

/** An admission's late answer: result 0 (admitted) or SL_EDENIED. */
typedef void (*sl_wsig_admit_cb)(sl_wsig_conn_t *c, int result, void *ud);

/** What a handler module registers (copied by handler_add; key copied, ud borrowed). */
typedef struct sl_wsig_handler_spec {
    const char *key; /* the top-level JSON key it takes, e.g. "sharedObjectConnect" (<= 63 bytes) */
    /**
     * A message whose key matched: json[0..len) is the whole message text
     * (borrowed for the call; it parsed as a JSON object). Return 0 when
     * handled, or a negative SL_E* to have an error status sent (the
     * socket stays open either way).
     */
    int (*on_message)(sl_wsig_conn_t *c, const char *json, size_t len, void *ud);
    /** The socket closed (NULL = not wanted): c is invalid after this returns. */
    void (*on_close)(sl_wsig_conn_t *c, void *ud);
    void *ud;
} sl_wsig_handler_spec_t;

typedef struct sl_wsig_svc {
    /**
     * Adds a handler for spec->key. 0, SL_EBUSY (the key is taken, built-in
     * keys included), SL_EINVAL (no key / too long / no on_message) or
     * SL_ETOOBIG (the table holds 32 handlers).
     */
    int (*handler_add)(void *svc, const sl_wsig_handler_spec_t *spec);
    /** Removes the handler of key (no-op when absent). */
    void (*handler_remove)(void *svc, const char *key);
    /**
     * Sends a text message (json[0..len), copied) to the client. 0,
     * SL_ECLOSED once the socket is closing, SL_ETOOBIG when its queue is
     * full.
     */
    int (*send)(sl_wsig_conn_t *c, const char *json, size_t len);
    /** The scope the socket connected to ("live", "live/room1"; borrowed, valid as c). */
    const char *(*scope)(const sl_wsig_conn_t *c);
    /** The `id` query parameter of the socket's URL (borrowed, valid as c). */
    const char *(*id)(const sl_wsig_conn_t *c);
    /** The peer's address (borrowed, valid as c). */
    const char *(*remote)(const sl_wsig_conn_t *c);
    /** The WebRTC session of the socket once admitted, else NULL (borrowed, valid for the call). */
    sl_session_t *(*session)(const sl_wsig_conn_t *c);
    /* valid from 1.1 */
    /**
     * Admits c for features that need no WebRTC session (shared objects):
     * a data channel or a socket whose session was admitted is in already;
     * any other socket runs the connect admission (kind connect, transport
     * "webrtc", the URL's query, username/password/token) once, and the
     * answer is kept for the socket's life. Returns 0 (admitted), SL_EDENIED
     * (refused: the socket was sent {data:{type:"error",code:
     * "NetConnection.Connect.Rejected",message}} and stays open), or
     * SL_EPENDING: cb(c, result, ud) runs once later, unless the socket
     * closes first (only the first pending caller's cb is kept; later
     * callers get SL_EPENDING and no callback). SL_ENOMEM.
     */
    int (*admit)(sl_wsig_conn_t *c, sl_wsig_admit_cb cb, void *ud);
    /** 1 when c is a data channel rather than a signalling socket. */
    int (*is_datachannel)(const sl_wsig_conn_t *c);
    /* valid from 1.2 */
    /**
     * Runs the admission chain (app/admission.h) for kind (an
     * sl_admit_kind_t, e.g. SL_ADMIT_SO_CONNECT) and stream on c, with c's
     * credentials (a socket: its URL query or Bearer header; a data
     * channel: its session's query) and session (its WebRTC session, else
     * the detached one admit() made; call admit() first). sl_admit()'s
     * contract: 0 after done ran (allowed or denied), SL_EPENDING with *out
     * (the caller's reference: sl_admit_cancel it if c closes first),
     * SL_ECLOSED, SL_ENOMEM (done not called).
     */
    int (*admit_kind)(sl_wsig_conn_t *c, int kind, const char *stream,
                      void (*done)(struct sl_admit *a, int result, const char *reason, void *ud),
                      void *ud, struct sl_admit **out);
} sl_wsig_svc_t;

#endif
