/*
 * DTLS 1.2 with the use_srtp extension for WebRTC (RFC 5763, 5764, 8827),
 * over OpenSSL, as a datagram transformer with no socket: the owner (the
 * WebRTC session, which owns the UDP port and the ICE-TCP framing) feeds
 * each DTLS datagram it receives into sl_dtls_feed() and sends whatever
 * ops->send gives it. Between the two sits one SSL object with memory BIOs.
 *
 *     udp/ice-tcp --datagram--> sl_dtls_feed() --> ops->data (SCTP packets)
 *     udp/ice-tcp <-datagram--- ops->send <------- sl_dtls_send() / handshake
 *
 * Identity is the SDP fingerprint, not a CA: both sides use self-signed
 * certificates, the handshake accepts any certificate, and once it is
 * complete the peer's certificate digest is compared with the a=fingerprint
 * of its SDP. Only then does ops->connected run, with the SRTP keys from
 * the exporter (RFC 5764 §4.2). A mismatch ends the connection with
 * ops->closed("fingerprint mismatch").
 *
 * Timers: during the handshake OpenSSL retransmits lost flights on a timer
 * the owner drives: after every call, re-arm a timer for
 * sl_dtls_timeout_ms() (when >= 0) and call sl_dtls_on_timeout() when it
 * fires. The first retransmission is after 400 ms, doubling up to 8 s; a
 * handshake not complete 30 s after sl_dtls_new ends with
 * ops->closed("handshake timeout").
 *
 * Datagrams: handshake records are cut for an MTU of SL_DTLS_MTU (1200
 * bytes of DTLS payload, which fits IPv6 + UDP + TURN framing), and records
 * produced together are packed into one datagram up to that size. Each
 * sl_dtls_send makes one record, alone in its datagram when it does not
 * fit beside others: to keep every datagram within 1200 bytes, give
 * usrsctp an MTU of SL_DTLS_MTU - SL_DTLS_RECORD_OVERHEAD (1163).
 *
 * Callbacks run inside sl_dtls_feed / _start / _send / _on_timeout /
 * _close. From a callback the owner may call sl_dtls_send (e.g. usrsctp
 * answering at once from ops->data), sl_dtls_close and sl_dtls_free (the
 * free is deferred to the end of the outermost call); it must not call
 * sl_dtls_feed or sl_dtls_on_timeout on the same object, and ops->send
 * must not feed a datagram back into the same object synchronously.
 * ops->closed runs at most once, and no callback runs after it.
 *
 * Threading: everything here runs on one thread, the loop thread that owns
 * the WebRTC session. sl_dtls_ctx_t is made once at start and only read
 * afterwards. Every call clears the thread's OpenSSL error queue first, so
 * errors left there by other OpenSSL users are never mistaken for ours.
 *
 * Memory: structs come from sl_malloc; OpenSSL allocates its own state.
 */
#ifndef SL_NET_DTLS_H
#define SL_NET_DTLS_H

#include <stddef.h>
#include <stdint.h>

#include "net/srtp.h"

/* DTLS payload per datagram (handshake fragments and packing). */
#define SL_DTLS_MTU 1200
/* Bytes a DTLS 1.2 AEAD record adds to application data: header 13, explicit nonce 8, tag 16. */
#define SL_DTLS_RECORD_OVERHEAD 37
/* The largest datagram sl_dtls_feed accepts (a UDP datagram's payload). */
#define SL_DTLS_MAX_DATAGRAM 65535
/* The largest application payload sl_dtls_send accepts: one TLS record. */
#define SL_DTLS_MAX_APP 16384

/* ---- process-wide context ---------------------------------------------- */

typedef struct sl_dtls_ctx sl_dtls_ctx_t;

/**
 * Makes the process-wide DTLS context: a fresh ECDSA P-256 key and a
 * self-signed certificate for it (CN "sluice", random 64-bit serial, valid
 * from a day ago for 30 days, SHA-256 signature), an SSL_CTX for DTLS 1.2
 * (DTLS_method, minimum 1.2) with ECDHE AEAD suites, use_srtp offering
 * SRTP_AEAD_AES_128_GCM then SRTP_AES128_CM_SHA1_80, and a peer certificate
 * required but accepted by any issuer (the SDP fingerprint is the check).
 * Takes a few milliseconds (key generation): make it once at start and
 * remake it within 30 days (connections made from the old one keep working
 * until freed). Returns 0 and *out (owned: sl_dtls_ctx_free); SL_ENOMEM;
 * SL_EIO when OpenSSL fails (no P-256, no entropy).
 */
int sl_dtls_ctx_new(sl_dtls_ctx_t **out);

/**
 * The SHA-256 fingerprint of the context's certificate as the SDP writes
 * it after "a=fingerprint:sha-256 ": 32 upper-case hex pairs joined by ':'
 * ("AB:CD:..."). Borrowed: valid as long as ctx.
 */
const char *sl_dtls_ctx_fingerprint(const sl_dtls_ctx_t *ctx);

/** Frees a context (NULL is ignored). Every sl_dtls_t made from it must be freed first. */
void sl_dtls_ctx_free(sl_dtls_ctx_t *ctx);

/* ---- one connection ----------------------------------------------------- */

/*
 * What a connection tells its owner. Every pointer passed to a callback is
 * borrowed for the duration of the call only (copy what you keep: the
 * keys in particular, and wipe the copy when done).
 */
typedef struct sl_dtls_ops {
    /* One datagram for the peer (at most SL_DTLS_MTU bytes in the handshake). */
    void (*send)(void *ud, const uint8_t *p, size_t len);
    /* The handshake is complete AND the peer's certificate matched the SDP fingerprint. */
    void (*connected)(void *ud, const sl_srtp_keys_t *keys);
    /* Application data from the peer: one record, in sluice one SCTP packet. */
    void (*data)(void *ud, const uint8_t *p, size_t len);
    /*
     * The connection is over; why is a short sentence: "close_notify",
     * "fatal alert: <name>", "fingerprint mismatch", "no SRTP profile
     * negotiated", "handshake timeout", or "handshake failed: <OpenSSL's
     * reason>". Not called for the owner's own sl_dtls_close.
     */
    void (*closed)(void *ud, const char *why);
} sl_dtls_ops_t;

typedef struct sl_dtls sl_dtls_t;

/**
 * A connection in its initial state. is_server: 1 when we are the DTLS
 * server (we answered a=setup:passive, the browser connects: the usual
 * case), 0 when we are the client (a=setup:active, answering an offer that
 * said passive). remote_fp_alg / remote_fp are the peer's a=fingerprint
 * from its SDP ("sha-256" and "AB:CD:..."; sha-1, sha-224, sha-384 and
 * sha-512 too; case-insensitive), borrowed for the call. ops and ud are
 * borrowed and must outlive the connection; ctx must too.
 * Returns 0 and *out (owned: sl_dtls_free); SL_EINVAL for an unknown
 * algorithm or a fingerprint that is not hex pairs of the digest's size;
 * SL_ENOMEM; SL_EIO when OpenSSL fails.
 */
int sl_dtls_new(sl_dtls_ctx_t *ctx, int is_server, const char *remote_fp_alg,
                const char *remote_fp, const sl_dtls_ops_t *ops, void *ud, sl_dtls_t **out);

/**
 * Starts the handshake: the client role sends its ClientHello (through
 * ops->send, before returning) and arms the retransmission timer; the
 * server role does nothing (it waits for the ClientHello in
 * sl_dtls_feed). Returns 0; SL_ECLOSED after close; SL_EPROTO when OpenSSL
 * fails (ops->closed has run).
 */
int sl_dtls_start(sl_dtls_t *d);

/**
 * Processes one datagram from the peer (borrowed for the call; one whole
 * datagram per call, as received). Drives the handshake and emits send,
 * connected, data and closed. Records OpenSSL cannot authenticate or parse
 * are dropped silently, as DTLS requires (RFC 6347 §4.1.2.7), so garbage
 * never closes the connection. Returns 0 (including for dropped
 * garbage); SL_EINVAL for an empty datagram or one that is not DTLS
 * (first byte outside 20..63, RFC 7983); SL_ETOOBIG past
 * SL_DTLS_MAX_DATAGRAM; SL_ECLOSED when the connection was already over;
 * SL_EPROTO when this datagram ended it (ops->closed has run).
 */
int sl_dtls_feed(sl_dtls_t *d, const uint8_t *p, size_t len);

/**
 * Encrypts application data (borrowed for the call) into one record and
 * sends it through ops->send. Returns 0; SL_EAGAIN before ops->connected;
 * SL_ECLOSED after close; SL_ETOOBIG past SL_DTLS_MAX_APP (or empty:
 * SL_EINVAL); SL_EPROTO when OpenSSL fails (ops->closed has run).
 */
int sl_dtls_send(sl_dtls_t *d, const uint8_t *p, size_t len);

/**
 * Milliseconds until sl_dtls_on_timeout() must run (0 = now), or -1 when
 * no timer is needed (connected or closed). During the handshake there is
 * always a timer: the retransmission timer once a flight is out, and at
 * the latest the handshake deadline (a server waiting for its ClientHello
 * has only that one). Ask again after every sl_dtls_* call: feeds and
 * sends move it. OpenSSL counts a timer within 15 ms of expiry as expired.
 */
int64_t sl_dtls_timeout_ms(sl_dtls_t *d);

/**
 * Runs the handshake timers: retransmits the last flight when its timer
 * expired, or closes with "handshake timeout" past the deadline. Calling it
 * early does no harm. Nothing to do after close.
 */
void sl_dtls_on_timeout(sl_dtls_t *d);

/**
 * Ends the connection from our side: sends close_notify when the
 * handshake is complete (through ops->send, before returning), then
 * refuses everything (SL_ECLOSED). ops->closed is not called for it.
 * Idempotent.
 */
void sl_dtls_close(sl_dtls_t *d);

/**
 * Frees a connection (NULL is ignored) without sending anything (see
 * sl_dtls_close). Called from one of the connection's own callbacks, the
 * free happens when the outermost sl_dtls_* call returns.
 */
void sl_dtls_free(sl_dtls_t *d);

/* ---- tuning (tests) ----------------------------------------------------- */

/**
 * Sets the first retransmission timeout (doubling from there, capped at
 * 8 s; default 400 ms) when first_retransmit_ms > 0, and the handshake
 * deadline to now + handshake_ms when handshake_ms >= 0 (default 30 s
 * from sl_dtls_new). Tests use tiny values to run the timer paths without
 * sleeping; production code has no reason to call it.
 */
void sl_dtls_set_timeouts(sl_dtls_t *d, int64_t first_retransmit_ms, int64_t handshake_ms);

#endif
