/*
 * A TLS filter over OpenSSL with memory BIOs: the server side (HTTPS,
 * RTMPS) and the client side (libsluice-client's rtmps://) of TLS 1.2+
 * as a pure byte transformer with no socket and no protocol inside, so any
 * stream protocol can sit on top of it (HTTPS today, RTMPS later). The
 * owner reads ciphertext from its socket and feeds it in, pulls plaintext
 * out, encrypts its plaintext output and takes the ciphertext to write.
 *
 *     socket --read--> sl_tls_feed() --> sl_tls_read() --> protocol parser
 *     socket <-write-- sl_tls_out_take() <-- sl_tls_write() <-- responses
 *
 * The filter never buffers on its own initiative beyond what the owner put
 * in: input is what was fed and not yet decrypted (at most one partial
 * record once the owner has read everything out), output is what was
 * encrypted and not yet taken. Bounding both is the owner's job, and cheap:
 * sl_tls_in_pending() and sl_tls_out_pending() say how much there is, and
 * sl_tls_write() takes a byte budget.
 *
 * Contexts (sl_tls_ctx_t) hold the certificate, key and settings: TLS 1.2
 * and 1.3 only, forward-secret AEAD ciphers only for 1.2 (OpenSSL's
 * defaults for 1.3), no renegotiation, no compression, and an optional
 * ALPN protocol the server selects when the client offers it. A context
 * must outlive every connection made from it.
 *
 * Memory: the sl_tls_t and sl_tls_ctx_t structs come from sl_malloc;
 * OpenSSL allocates its own state with malloc (it keeps global state until
 * exit, so routing it through sl_malloc would spoil the exit report).
 * With SSL_MODE_RELEASE_BUFFERS an idle connection holds no record buffers.
 *
 * Threading: a context may be shared by threads once made; one sl_tls_t is
 * used by one thread at a time. Every call clears the thread's OpenSSL
 * error queue first, so errors left there by other users of OpenSSL (JWT,
 * libcurl) are never mistaken for ours.
 */
#ifndef SL_BASE_TLS_H
#define SL_BASE_TLS_H

#include <stddef.h>
#include <sys/uio.h>

/*
 * The largest TLS record on the wire: 2^14 plaintext bytes, 2048 bytes of
 * expansion allowed by TLS 1.2, and the 5-byte header. Feeding n bytes of
 * ciphertext can yield up to n + SL_TLS_RECORD_MAX bytes of plaintext (the
 * partial record left from the previous feed completes).
 */
#define SL_TLS_RECORD_MAX (16384 + 2048 + 5)

typedef struct sl_tls_ctx sl_tls_ctx_t;
typedef struct sl_tls sl_tls_t;

/**
 * Makes a server context from a PEM certificate file (the leaf first, then
 * any intermediates: a chain file) and a PEM private key file. alpn, when
 * not NULL, is one protocol name ("http/1.1") selected when the client
 * offers it; a client offering only others continues without ALPN.
 * Returns 0 and *out (owned: sl_tls_ctx_free), or SL_EINVAL with a
 * sentence naming the file and the reason in err (always NUL-terminated
 * when err_cap > 0), or SL_ENOMEM.
 */
int sl_tls_ctx_new_server(const char *cert_file, const char *key_file, const char *alpn,
                          sl_tls_ctx_t **out, char *err, size_t err_cap);
/**
 * Sends no session tickets from connections made from ctx afterwards (no
 * TLS 1.3 NewSessionTicket, no 1.2 ticket extension; resumption is then
 * unavailable). For clients that break on the post-handshake ticket
 * message: librtmp over GnuTLS (Debian's rtmpdump) fails its handshake.
 */
void sl_tls_ctx_no_tickets(sl_tls_ctx_t *ctx);
/**
 * Makes a client context: TLS 1.2+ with the same cipher policy as the
 * server side. ca_file, when not NULL or "", is a PEM file of the CA
 * certificates to trust (a self-signed server certificate itself works);
 * NULL uses the system default paths (/etc/ssl/certs). With verify set,
 * connections check the server's certificate chain and (see
 * sl_tls_new_client) its name; with verify 0 nothing is checked (testing
 * only: anyone in the path can read and change the traffic).
 * Returns 0 and *out (owned: sl_tls_ctx_free), SL_EINVAL with a sentence
 * in err (an unreadable or non-PEM CA file), or SL_ENOMEM.
 */
int sl_tls_ctx_new_client(const char *ca_file, int verify, sl_tls_ctx_t **out, char *err,
                          size_t err_cap);
/** Frees a context (NULL is ignored). Every sl_tls_t made from it must be freed first. */
void sl_tls_ctx_free(sl_tls_ctx_t *ctx);

/**
 * A server connection in its initial state (waiting for the ClientHello).
 * Returns 0 and *out (owned: sl_tls_free), or SL_ENOMEM.
 */
int sl_tls_new(sl_tls_ctx_t *ctx, sl_tls_t **out);
/**
 * A client connection from a client context. server_name (borrowed, may be
 * NULL) is sent as SNI when it is a DNS name, and, when the context
 * verifies, is the name (or IP address) the server's certificate must
 * match; a mismatch fails the handshake with SL_EPROTO from sl_tls_read()
 * and sl_tls_error() saying "certificate verify failed: hostname
 * mismatch" (or the chain's problem, e.g. "...: self-signed certificate").
 *
 * Nothing is sent until the owner calls sl_tls_read(): the first call,
 * with nothing fed (cap may be 0), produces the ClientHello in the output,
 * so the owner calls sl_tls_read() once when the socket connects, then
 * sends sl_tls_out_take()'s bytes. From there it is the server's flow:
 * feed, read, send what is pending. Returns 0 and *out (owned:
 * sl_tls_free), or SL_ENOMEM.
 */
int sl_tls_new_client(sl_tls_ctx_t *ctx, const char *server_name, sl_tls_t **out);
/** Frees a connection (NULL is ignored). Sends nothing: see sl_tls_close_notify(). */
void sl_tls_free(sl_tls_t *t);

/**
 * Hands ciphertext from the peer to the filter (copied; data is borrowed
 * for the call). Nothing is decrypted until sl_tls_read(). 0 or SL_ENOMEM.
 */
int sl_tls_feed(sl_tls_t *t, const void *data, size_t len);
/** Ciphertext fed in and not yet consumed by sl_tls_read(). */
size_t sl_tls_in_pending(const sl_tls_t *t);

/**
 * Advances the handshake, then decrypts up to cap bytes of plaintext into
 * buf and sets *n_out (0 when more ciphertext is needed). Handshake
 * messages and alerts this produces wait in the output: check
 * sl_tls_out_pending() afterwards even when *n_out is 0. Call again while
 * it returns plaintext: one feed may hold several records.
 * Returns 0; SL_ECLOSED once the peer's close_notify was read (no more
 * plaintext will come, writing is still possible); SL_EPROTO when the
 * handshake or a record failed (sl_tls_error() says why; the connection
 * is dead, though an alert for the peer may be pending in the output).
 */
int sl_tls_read(sl_tls_t *t, void *buf, size_t cap, size_t *n_out);
/** 1 once the handshake is complete (plaintext can flow both ways). */
int sl_tls_handshake_done(const sl_tls_t *t);

/**
 * Encrypts plaintext from iov[0..n_iov) (borrowed for the call), at most
 * max_bytes of it, and sets *consumed to the plaintext bytes taken (all of
 * them or max_bytes, whichever is less). Small buffers are coalesced so
 * that a gathered list of headers and payloads becomes full records rather
 * than one record per buffer. The ciphertext waits for sl_tls_out_take().
 * Returns 0; SL_EAGAIN before the handshake is complete (nothing taken);
 * SL_ECLOSED after sl_tls_close_notify(); SL_EPROTO after an error;
 * SL_ENOMEM.
 */
int sl_tls_write(sl_tls_t *t, const struct iovec *iov, size_t n_iov, size_t max_bytes,
                 size_t *consumed);
/** Ciphertext waiting to be sent to the peer. */
size_t sl_tls_out_pending(const sl_tls_t *t);
/** Moves up to cap bytes of waiting ciphertext into buf; returns how many. */
size_t sl_tls_out_take(sl_tls_t *t, void *buf, size_t cap);

/**
 * Queues our close_notify alert in the output (idempotent; does nothing
 * before the handshake is complete or after an error). Later writes fail
 * with SL_ECLOSED. 0, or SL_EPROTO when it could not be produced.
 */
int sl_tls_close_notify(sl_tls_t *t);

/** Why the connection failed: a static or per-connection string, "" when it did not. */
const char *sl_tls_error(const sl_tls_t *t);
/** The negotiated protocol version ("TLSv1.3"), or "" before the handshake. */
const char *sl_tls_version(const sl_tls_t *t);
/** The negotiated cipher suite name, or "" before the handshake. */
const char *sl_tls_cipher(const sl_tls_t *t);

#endif
