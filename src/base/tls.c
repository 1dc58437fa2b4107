/*
 * The TLS filter (see tls.h): one OpenSSL SSL object per connection between
 * two memory BIOs. rbio receives the peer's ciphertext (sl_tls_feed), wbio
 * collects ours (sl_tls_out_take drains it); SSL_read/SSL_write run the
 * protocol in between. Nothing here knows about sockets or about the
 * protocol carried, so HTTPS and (later) RTMPS share it.
 *
 * An empty rbio must read as "retry", not as end of file: BIO_s_mem's eof
 * return is set to -1, so OpenSSL reports SSL_ERROR_WANT_READ and we
 * answer "need more input". wbio is a memory BIO and never refuses a
 * write, so SSL_ERROR_WANT_WRITE cannot happen; the only output limit is
 * the budget the owner passes to sl_tls_write().
 */
#include "base/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/alloc.h"
#include "sluice/errors.h"

/* Plaintext gathered before one SSL_write: one full record. */
#define STAGE_BYTES 16384
/* A buffer at least this large is encrypted where it lies, not copied to the stage. */
#define DIRECT_MIN_BYTES 4096

/*
 * TLS 1.2 suites: ECDHE key exchange (forward secrecy) with AEAD ciphers,
 * as in Mozilla's "intermediate" profile without the DHE ones (no DH
 * parameters to manage). TLS 1.3 uses OpenSSL's default suites, all AEAD.
 */
static const char k_ciphers_12[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                   "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                   "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

struct sl_tls_ctx {
    SSL_CTX *ssl_ctx;      /* owned */
    unsigned char alpn[256]; /* wire format: length byte + name; alpn_len 0 = none */
    size_t alpn_len;
    int verify;            /* client: verify the server's certificate and name */
};

struct sl_tls {
    SSL *ssl;              /* owned; owns rbio and wbio */
    BIO *rbio;             /* peer's ciphertext in */
    BIO *wbio;             /* our ciphertext out */
    int failed;            /* a fatal error happened: err holds why */
    int peer_closed;       /* the peer's close_notify was read */
    int sent_close;        /* our close_notify is queued */
    int is_client;         /* made by sl_tls_new_client */
    char err[160];         /* why it failed */
};

/* ---- errors ------------------------------------------------------------ */

/*
 * The most specific text OpenSSL has for its error: the reason string
 * alone ("wrong version number", "http request", "no shared cipher") reads
 * better in a log line than the full "error:0A00010B:SSL routines::..."
 * form, which is kept only when there is no reason string. The earliest
 * error of the queue is the cause ("no start line" under the PEM layer's
 * generic "PEM lib"); a missing PEM block is said in words.
 */
static void openssl_reason(char *out, size_t cap, const char *fallback)
{
    unsigned long e = ERR_peek_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (e && ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
        snprintf(out, cap, "%s (no PEM block of the right kind in the file)", fallback);
    else if (reason)
        snprintf(out, cap, "%s", reason);
    else if (e)
        ERR_error_string_n(e, out, cap);
    else
        snprintf(out, cap, "%s", fallback);
    ERR_clear_error();
}

/* Records a fatal error from an SSL call that returned r; returns SL_EPROTO (or SL_ENOMEM). */
static int fail(sl_tls_t *t, int r)
{
    int e = SSL_get_error(t->ssl, r);
    t->failed = 1;
    if (e == SSL_ERROR_SYSCALL && !ERR_peek_last_error()) {
        /* Only a BIO can fail here, and a memory BIO fails by running out of memory. */
        snprintf(t->err, sizeof t->err, "out of memory");
        return SL_ENOMEM;
    }
    openssl_reason(t->err, sizeof t->err, "TLS protocol error");
    if (t->is_client) {
        /* "certificate verify failed" alone does not say which check failed. */
        long v = SSL_get_verify_result(t->ssl);
        if (v != X509_V_OK) {
            size_t used = strlen(t->err);
            snprintf(t->err + used, sizeof t->err - used, ": %s",
                     X509_verify_cert_error_string(v));
        }
    }
    return SL_EPROTO;
}

const char *sl_tls_error(const sl_tls_t *t) { return t->failed ? t->err : ""; }

/* ---- contexts ---------------------------------------------------------- */

/*
 * The server picks our one protocol when the client offers it. A client
 * offering only others (h2 alone) gets no ALPN answer rather than a
 * handshake failure: it can still speak what it asked for and be refused
 * at that level, which is easier to diagnose.
 */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    sl_tls_ctx_t *ctx = arg;
    unsigned char *sel = NULL;
    unsigned char sel_len = 0;
    if (SSL_select_next_proto(&sel, &sel_len, ctx->alpn, (unsigned)ctx->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    *outlen = sel_len;
    return SSL_TLSEXT_ERR_OK;
}

/* A file we are about to hand to OpenSSL: say plainly when it cannot be opened. */
static int check_readable(const char *what, const char *path, char *err, size_t err_cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_cap, "cannot read the %s file %s: %s", what, path, strerror(errno));
        return SL_EINVAL;
    }
    fclose(f);
    return 0;
}

int sl_tls_ctx_new_server(const char *cert_file, const char *key_file, const char *alpn,
                          sl_tls_ctx_t **out, char *err, size_t err_cap)
{
    char why[160];
    char dummy[1];
    if (!err || !err_cap) {
        err = dummy;
        err_cap = sizeof dummy;
    }
    err[0] = '\0';
    *out = NULL;
    if (!cert_file || !cert_file[0] || !key_file || !key_file[0]) {
        snprintf(err, err_cap, "both a certificate file and a key file are needed");
        return SL_EINVAL;
    }
    size_t name_len = alpn ? strlen(alpn) : 0;
    if (name_len > 254) {
        snprintf(err, err_cap, "ALPN protocol name too long");
        return SL_EINVAL;
    }
    int rc = check_readable("certificate", cert_file, err, err_cap);
    rc = rc ? rc : check_readable("private key", key_file, err, err_cap);
    if (rc)
        return rc;

    sl_tls_ctx_t *ctx = sl_calloc(1, sizeof(*ctx));
    if (!ctx)
        return SL_ENOMEM;
    ERR_clear_error();
    rc = SL_ENOMEM;
    ctx->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx->ssl_ctx) {
        snprintf(err, err_cap, "out of memory");
        goto fail;
    }
    rc = SL_EINVAL;
    SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                          SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Idle connections give their record buffers back (34 KB each otherwise). */
    SSL_CTX_set_mode(ctx->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx->ssl_ctx, k_ciphers_12) != 1) {
        openssl_reason(why, sizeof why, "unknown");
        snprintf(err, err_cap, "cannot set the cipher list: %s", why);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx->ssl_ctx, cert_file) != 1) {
        openssl_reason(why, sizeof why, "not a PEM certificate");
        snprintf(err, err_cap, "cannot load the certificate (chain) from %s: %s", cert_file, why);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx->ssl_ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_error();
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
            snprintf(err, err_cap, "the private key in %s does not match the certificate in %s",
                     key_file, cert_file);
            goto fail;
        }
        openssl_reason(why, sizeof why, "not a PEM private key");
        snprintf(err, err_cap,
                 "cannot load the private key from %s (an unencrypted PEM key is needed): %s",
                 key_file, why);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx->ssl_ctx) != 1) {
        openssl_reason(why, sizeof why, "mismatch");
        snprintf(err, err_cap, "the private key in %s does not match the certificate in %s: %s",
                 key_file, cert_file, why);
        goto fail;
    }
    if (name_len) {
        ctx->alpn[0] = (unsigned char)name_len;
        memcpy(ctx->alpn + 1, alpn, name_len);
        ctx->alpn_len = name_len + 1;
        SSL_CTX_set_alpn_select_cb(ctx->ssl_ctx, alpn_select, ctx);
    }
    *out = ctx;
    return 0;
fail:
    ERR_clear_error();
    sl_tls_ctx_free(ctx);
    return rc;
}

int sl_tls_ctx_new_client(const char *ca_file, int verify, sl_tls_ctx_t **out, char *err,
                          size_t err_cap)
{
    char why[160];
    char dummy[1];
    if (!err || !err_cap) {
        err = dummy;
        err_cap = sizeof dummy;
    }
    err[0] = '\0';
    *out = NULL;
    if (ca_file && ca_file[0]) {
        int rc = check_readable("CA certificate", ca_file, err, err_cap);
        if (rc)
            return rc;
    }
    sl_tls_ctx_t *ctx = sl_calloc(1, sizeof(*ctx));
    if (!ctx)
        return SL_ENOMEM;
    ERR_clear_error();
    int rc = SL_ENOMEM;
    ctx->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx->ssl_ctx) {
        snprintf(err, err_cap, "out of memory");
        goto fail;
    }
    rc = SL_EINVAL;
    SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx->ssl_ctx, k_ciphers_12) != 1) {
        openssl_reason(why, sizeof why, "unknown");
        snprintf(err, err_cap, "cannot set the cipher list: %s", why);
        goto fail;
    }
    if (ca_file && ca_file[0]) {
        if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file, NULL) != 1) {
            openssl_reason(why, sizeof why, "not a PEM certificate");
            snprintf(err, err_cap, "cannot load CA certificates from %s: %s", ca_file, why);
            goto fail;
        }
    } else if (verify && SSL_CTX_set_default_verify_paths(ctx->ssl_ctx) != 1) {
        openssl_reason(why, sizeof why, "unknown");
        snprintf(err, err_cap, "cannot load the system CA certificates: %s", why);
        goto fail;
    }
    SSL_CTX_set_verify(ctx->ssl_ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    ctx->verify = verify ? 1 : 0;
    *out = ctx;
    return 0;
fail:
    ERR_clear_error();
    sl_tls_ctx_free(ctx);
    return rc;
}

void sl_tls_ctx_free(sl_tls_ctx_t *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    sl_free(ctx);
}

/* ---- connections ------------------------------------------------------- */

/* A connection between two fresh memory BIOs, in neither role yet. */
static int tls_alloc(sl_tls_ctx_t *ctx, sl_tls_t **out)
{
    *out = NULL;
    sl_tls_t *t = sl_calloc(1, sizeof(*t));
    if (!t)
        return SL_ENOMEM;
    ERR_clear_error();
    t->ssl = SSL_new(ctx->ssl_ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        sl_free(t);
        ERR_clear_error();
        return SL_ENOMEM;
    }
    BIO_set_mem_eof_return(t->rbio, -1); /* empty means "retry", not end of file */
    BIO_set_mem_eof_return(t->wbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio); /* the SSL owns both from here */
    *out = t;
    return 0;
}

int sl_tls_new(sl_tls_ctx_t *ctx, sl_tls_t **out)
{
    int rc = tls_alloc(ctx, out);
    if (rc)
        return rc;
    SSL_set_accept_state((*out)->ssl);
    return 0;
}

int sl_tls_new_client(sl_tls_ctx_t *ctx, const char *server_name, sl_tls_t **out)
{
    int rc = tls_alloc(ctx, out);
    if (rc)
        return rc;
    sl_tls_t *t = *out;
    t->is_client = 1;
    ERR_clear_error();
    if (server_name && server_name[0]) {
        /* SNI only for DNS names (RFC 6066 forbids IP literals there); the
         * name check covers both. */
        unsigned char addr[16];
        int is_ip = inet_pton(AF_INET, server_name, addr) == 1 ||
                    inet_pton(AF_INET6, server_name, addr) == 1;
        if (!is_ip && SSL_set_tlsext_host_name(t->ssl, server_name) != 1)
            goto fail;
        if (ctx->verify) {
            X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
            X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, server_name)
                       : X509_VERIFY_PARAM_set1_host(vp, server_name, 0)) != 1)
                goto fail;
        }
    }
    SSL_set_connect_state(t->ssl);
    return 0;
fail:
    ERR_clear_error();
    sl_tls_free(t);
    *out = NULL;
    return SL_ENOMEM;
}

void sl_tls_free(sl_tls_t *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    sl_free(t);
}

int sl_tls_feed(sl_tls_t *t, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
        int w = BIO_write(t->rbio, p, chunk);
        if (w <= 0) {
            ERR_clear_error();
            return SL_ENOMEM;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

size_t sl_tls_in_pending(const sl_tls_t *t) { return BIO_ctrl_pending(t->rbio); }

int sl_tls_handshake_done(const sl_tls_t *t) { return SSL_is_init_finished(t->ssl); }

int sl_tls_read(sl_tls_t *t, void *buf, size_t cap, size_t *n_out)
{
    *n_out = 0;
    if (t->failed)
        return SL_EPROTO;
    if (t->peer_closed)
        return SL_ECLOSED;
    ERR_clear_error();
    if (!SSL_is_init_finished(t->ssl)) {
        int r = SSL_do_handshake(t->ssl);
        if (r != 1) {
            int e = SSL_get_error(t->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return 0;
            return fail(t, r);
        }
    }
    if (!cap)
        return 0;
    size_t got = 0;
    int r = SSL_read_ex(t->ssl, buf, cap, &got);
    if (r == 1) {
        *n_out = got;
        return 0;
    }
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        ERR_clear_error();
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        t->peer_closed = 1;
        return SL_ECLOSED;
    default:
        return fail(t, r);
    }
}

/* One SSL_write of a whole buffer (a memory wbio takes everything or fails). */
static int write_all(sl_tls_t *t, const void *p, size_t n)
{
    size_t done = 0;
    if (!n)
        return 0;
    int r = SSL_write_ex(t->ssl, p, n, &done);
    if (r != 1 || done != n)
        return fail(t, r);
    return 0;
}

/*
 * The hot path of every TLS response: buffers of at least DIRECT_MIN_BYTES
 * (media payloads, big bodies) are encrypted where they lie; smaller ones
 * (response heads, chunk-size lines, CRLFs, small bodies) are copied into
 * a record-sized stage first, so a gathered list of a few hundred small
 * pieces costs a few records instead of one record (and 22+ bytes of
 * overhead, and one AEAD call) per piece. A chunked stream of large frames
 * thus costs one small record per frame for its framing (the CRLF and the
 * next chunk-size line together) besides the frame's own records: a cost
 * per frame, where filling every record would copy every byte.
 */
int sl_tls_write(sl_tls_t *t, const struct iovec *iov, size_t n_iov, size_t max_bytes,
                 size_t *consumed)
{
    uint8_t stage[STAGE_BYTES];
    size_t staged = 0, taken = 0;
    int rc = 0;
    *consumed = 0;
    if (t->failed)
        return SL_EPROTO;
    if (t->sent_close)
        return SL_ECLOSED;
    if (!SSL_is_init_finished(t->ssl))
        return SL_EAGAIN;
    ERR_clear_error();
    for (size_t i = 0; i < n_iov && taken < max_bytes; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        if (len > max_bytes - taken)
            len = max_bytes - taken;
        if (len >= DIRECT_MIN_BYTES) {
            /* Small buffers staged before a large one (a media header before
             * its frame) are topped up with the large one's start, so they
             * do not cost a record of their own; the rest goes direct. */
            if (staged) {
                size_t n = STAGE_BYTES - staged < len ? STAGE_BYTES - staged : len;
                memcpy(stage + staged, p, n);
                staged += n;
                p += n;
                len -= n;
                taken += n;
                if ((rc = write_all(t, stage, staged)) != 0)
                    return rc;
                staged = 0;
                *consumed = taken;
            }
            if (len && (rc = write_all(t, p, len)) != 0)
                return rc;
            taken += len;
            *consumed = taken;
            continue;
        }
        while (len) {
            size_t n = STAGE_BYTES - staged < len ? STAGE_BYTES - staged : len;
            memcpy(stage + staged, p, n);
            staged += n;
            p += n;
            len -= n;
            taken += n;
            if (staged == STAGE_BYTES) {
                if ((rc = write_all(t, stage, staged)) != 0)
                    return rc;
                staged = 0;
                *consumed = taken;
            }
        }
    }
    if ((rc = write_all(t, stage, staged)) != 0)
        return rc;
    *consumed = taken;
    return 0;
}

void sl_tls_ctx_no_tickets(sl_tls_ctx_t *ctx)
{
    SSL_CTX_set_num_tickets(ctx->ssl_ctx, 0);
    SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_TICKET);
}

size_t sl_tls_out_pending(const sl_tls_t *t) { return BIO_ctrl_pending(t->wbio); }

size_t sl_tls_out_take(sl_tls_t *t, void *buf, size_t cap)
{
    if (!cap)
        return 0;
    int r = BIO_read(t->wbio, buf, cap > (1u << 30) ? 1 << 30 : (int)cap);
    return r > 0 ? (size_t)r : 0;
}

int sl_tls_close_notify(sl_tls_t *t)
{
    if (t->failed || t->sent_close || !SSL_is_init_finished(t->ssl))
        return 0;
    t->sent_close = 1;
    ERR_clear_error();
    /* 0 = ours sent, the peer's not read yet; 1 = both done. Either is fine. */
    int r = SSL_shutdown(t->ssl);
    if (r < 0) {
        ERR_clear_error();
        return SL_EPROTO;
    }
    return 0;
}

const char *sl_tls_version(const sl_tls_t *t)
{
    return SSL_is_init_finished(t->ssl) ? SSL_get_version(t->ssl) : "";
}

const char *sl_tls_cipher(const sl_tls_t *t)
{
    const char *name = SSL_is_init_finished(t->ssl) ? SSL_get_cipher_name(t->ssl) : NULL;
    return name ? name : "";
}
