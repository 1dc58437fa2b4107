/*
 * DTLS-SRTP over OpenSSL with memory BIOs (see dtls.h). One SSL object per
 * connection between two memory BIOs: rbio holds the one datagram being
 * fed (emptied before each feed, so a datagram OpenSSL did not consume
 * never merges with the next), wbio collects what OpenSSL writes.
 *
 * A memory BIO keeps no datagram boundaries: a flight written as several
 * records reads back as one byte string. flush() cuts it again at record
 * boundaries (every DTLS record starts with a 13-byte header whose last two
 * bytes are its length) and packs whole records into datagrams of at most
 * SL_DTLS_MTU bytes, which DTLS allows (RFC 6347 §4.1.1) and which saves
 * datagrams in the handshake. Only OpenSSL's own output is parsed there.
 *
 * Reentrancy: callbacks run only between OpenSSL calls, never inside one,
 * and flush() copies a datagram out of wbio before handing it to
 * ops->send, so sl_dtls_send from inside ops->data (usrsctp answering at
 * once) is safe. A free requested from a callback is deferred through a
 * depth count until the outermost public call returns.
 */
#include "net/dtls.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "base/alloc.h"
#include "base/assert.h"
#include "base/str.h"
#include "base/time.h"
#include "sluice/errors.h"

/* DTLS record header: type 1, version 2, epoch 2, sequence 6, length 2. */
#define RECORD_HEADER 13
/* The largest record OpenSSL writes: a full plaintext record plus AEAD expansion, with margin. */
#define RECORD_MAX (SL_DTLS_MAX_APP + 256 + RECORD_HEADER)

/* Retransmission timer (RFC 6347 §4.2.4.1 suggests 1 s; WebRTC stacks start lower). */
#define FIRST_RETRANSMIT_US 400000u
#define MAX_RETRANSMIT_US 8000000u
#define HANDSHAKE_DEADLINE_MS 30000

/* Certificate lifetime: browsers accept any, the SDP fingerprint is the identity. */
#define CERT_DAYS 30

/*
 * DTLS 1.2 suites: ECDHE with AEAD only (RFC 8827 §6.5 requires
 * ECDHE-ECDSA-AES128-GCM-SHA256). Our certificate is ECDSA; the RSA suites
 * serve as client towards a peer with an RSA certificate.
 */
static const char k_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
                                "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305";
/* use_srtp, in our order of preference: GCM (no separate HMAC), then the one every browser has. */
static const char k_srtp_profiles[] = "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80";
static const char k_exporter_label[] = "EXTRACTOR-dtls_srtp";

struct sl_dtls_ctx {
    SSL_CTX *ssl_ctx;      /* owned; holds the key and certificate */
    char fingerprint[96];  /* "AB:CD:..." (32 pairs) */
};

enum { ST_HANDSHAKE, ST_CONNECTED, ST_CLOSED };

struct sl_dtls {
    SSL *ssl;                  /* owned; owns rbio and wbio */
    BIO *rbio;                 /* the datagram being fed */
    BIO *wbio;                 /* what OpenSSL wrote, cut into datagrams by flush() */
    const sl_dtls_ops_t *ops;  /* borrowed */
    void *ud;                  /* passed to every callback */
    const EVP_MD *fp_md;       /* the digest of the peer's SDP fingerprint */
    uint8_t fp[EVP_MAX_MD_SIZE]; /* the peer's expected certificate digest */
    unsigned fp_len;
    int is_server;
    int state;                 /* ST_* */
    int depth;                 /* public calls on the stack (deferred free) */
    int free_pending;          /* sl_dtls_free was called from a callback */
    unsigned first_rtx_us;     /* first retransmission timeout */
    uint64_t deadline_ms;      /* handshake must complete by then (monotonic) */
    char alert[64];            /* the fatal alert the peer sent, "" if none */
};

/* ---- the context -------------------------------------------------------- */

/* The handshake takes any certificate: the SDP fingerprint is checked once it is complete. */
static int verify_accept(int preverify_ok, X509_STORE_CTX *store)
{
    (void)preverify_ok;
    (void)store;
    return 1;
}

/* A self-signed certificate for pkey: CN "sluice", random positive 64-bit serial, 30 days. */
static X509 *make_cert(EVP_PKEY *pkey)
{
    X509 *x = X509_new();
    BIGNUM *bn = NULL;
    uint8_t serial[8];
    if (!x || RAND_bytes(serial, sizeof serial) != 1)
        goto fail;
    serial[0] &= 0x7f; /* positive, as RFC 5280 requires */
    serial[0] |= 0x01; /* and never zero */
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        goto fail;
    if (!X509_set_version(x, 2) || /* v3 */
        !X509_gmtime_adj(X509_getm_notBefore(x), -86400L) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 86400L * CERT_DAYS))
        goto fail;
    X509_NAME *name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"sluice",
                                    -1, -1, 0) ||
        !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, pkey) ||
        !X509_sign(x, pkey, EVP_sha256()))
        goto fail;
    BN_free(bn);
    return x;

fail:
    BN_free(bn);
    X509_free(x);
    return NULL;
}

/* "AB:CD:..." for n digest bytes into out (3n bytes of room). */
static void format_fp(const uint8_t *md, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++) {
        sl_hex_encode(md + i, 1, out + 3 * i, 1);
        out[3 * i + 2] = i + 1 < n ? ':' : '\0';
    }
    if (n == 0)
        out[0] = '\0';
}

/* See dtls.h. */
int sl_dtls_ctx_new(sl_dtls_ctx_t **out)
{
    *out = NULL;
    ERR_clear_error();
    int rc = SL_EIO;
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    sl_dtls_ctx_t *c = sl_calloc(1, sizeof *c);
    if (!c)
        return SL_ENOMEM;

    pkey = EVP_EC_gen("P-256");
    if (!pkey || !(cert = make_cert(pkey)))
        goto fail;

    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    if (!X509_digest(cert, EVP_sha256(), md, &md_len) || md_len != 32)
        goto fail;
    format_fp(md, md_len, c->fingerprint);

    SSL_CTX *s = SSL_CTX_new(DTLS_method());
    if (!s)
        goto fail;
    c->ssl_ctx = s;
    if (!SSL_CTX_set_min_proto_version(s, DTLS1_2_VERSION) ||
        SSL_CTX_use_certificate(s, cert) != 1 || SSL_CTX_use_PrivateKey(s, pkey) != 1 ||
        SSL_CTX_check_private_key(s) != 1 || SSL_CTX_set_cipher_list(s, k_ciphers) != 1 ||
        SSL_CTX_set1_groups_list(s, "X25519:P-256:P-384") != 1 ||
        SSL_CTX_set_tlsext_use_srtp(s, k_srtp_profiles) != 0) /* 0 is success here */
        goto fail;
    SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_accept);
    /* The MTU is ours to set (there is no socket to ask); no tickets, no renegotiation. */
    SSL_CTX_set_options(s, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_read_ahead(s, 1);

    X509_free(cert);
    EVP_PKEY_free(pkey); /* the SSL_CTX holds its own references */
    *out = c;
    return 0;

fail:
    X509_free(cert);
    EVP_PKEY_free(pkey);
    sl_dtls_ctx_free(c);
    ERR_clear_error();
    return rc;
}

/* See dtls.h. */
const char *sl_dtls_ctx_fingerprint(const sl_dtls_ctx_t *ctx)
{
    return ctx->fingerprint;
}

/* See dtls.h. */
void sl_dtls_ctx_free(sl_dtls_ctx_t *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    sl_free(ctx);
}

/* ---- connection: helpers ------------------------------------------------ */

/* The digest an SDP a=fingerprint algorithm names (RFC 8122 §5), or NULL. */
static const EVP_MD *fp_digest(const char *alg)
{
    if (!alg)
        return NULL;
    if (strcasecmp(alg, "sha-256") == 0)
        return EVP_sha256();
    if (strcasecmp(alg, "sha-1") == 0)
        return EVP_sha1();
    if (strcasecmp(alg, "sha-384") == 0)
        return EVP_sha384();
    if (strcasecmp(alg, "sha-512") == 0)
        return EVP_sha512();
    if (strcasecmp(alg, "sha-224") == 0)
        return EVP_sha224();
    return NULL;
}

/*
 * Parses "AB:cd:..." into exactly n bytes: hex pairs joined by single
 * colons, nothing before or after. Reads at most 3n characters of s.
 */
static int parse_fp(const char *s, uint8_t *out, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        int hi = sl_hex_val((unsigned char)s[0]);
        int lo = hi < 0 ? -1 : sl_hex_val((unsigned char)s[1]);
        if (lo < 0)
            return SL_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
        s += 2;
        if (i + 1 < n) {
            if (*s != ':')
                return SL_EINVAL;
            s++;
        }
    }
    return *s == '\0' ? 0 : SL_EINVAL;
}

static int live(const sl_dtls_t *d)
{
    return d->state != ST_CLOSED && !d->free_pending;
}

static void destroy(sl_dtls_t *d)
{
    SSL_free(d->ssl); /* frees both BIOs */
    OPENSSL_cleanse(d, sizeof *d);
    sl_free(d);
}

/* Every public call that may run callbacks is wrapped in enter() / leave(). */
static void enter(sl_dtls_t *d)
{
    d->depth++;
    ERR_clear_error();
}

static int leave(sl_dtls_t *d, int rc)
{
    SL_ASSERT(d->depth > 0);
    if (--d->depth == 0 && d->free_pending)
        destroy(d);
    return rc;
}

/*
 * Sends everything OpenSSL wrote: whole records packed into datagrams of
 * at most SL_DTLS_MTU bytes (a single larger record, which only
 * application data can make, goes alone). Each datagram is copied out of
 * wbio before ops->send sees it.
 */
static void flush(sl_dtls_t *d)
{
    uint8_t dg[RECORD_MAX];
    for (;;) {
        char *p;
        long avail = BIO_get_mem_data(d->wbio, &p);
        if (avail <= 0)
            return;
        size_t n = (size_t)avail, off = 0;
        while (off + RECORD_HEADER <= n) {
            size_t rec = RECORD_HEADER + ((size_t)(uint8_t)p[off + 11] << 8 | (uint8_t)p[off + 12]);
            if (rec > n - off)
                rec = n - off; /* a cut record cannot happen: send what there is */
            if (off > 0 && off + rec > SL_DTLS_MTU)
                break;
            off += rec;
        }
        if (off == 0)
            off = n; /* a tail shorter than a header: cannot happen either */
        if (SL_NEVER(off > sizeof dg)) {
            (void)BIO_reset(d->wbio);
            return;
        }
        if (BIO_read(d->wbio, dg, (int)off) != (int)off) {
            (void)BIO_reset(d->wbio);
            return;
        }
        if (d->ops->send && !d->free_pending)
            d->ops->send(d->ud, dg, off);
    }
}

/* Ends the connection: sends what OpenSSL queued (an alert), then tells the owner once. */
static int fail_conn(sl_dtls_t *d, const char *why)
{
    flush(d);
    if (d->state == ST_CLOSED)
        return SL_EPROTO;
    d->state = ST_CLOSED;
    if (d->ops->closed && !d->free_pending)
        d->ops->closed(d->ud, why);
    return SL_EPROTO;
}

/* Fails the connection with the best reason OpenSSL gives for a failed call. */
static int fail_openssl(sl_dtls_t *d, const char *what)
{
    char why[160];
    if (d->alert[0]) {
        snprintf(why, sizeof why, "fatal alert: %s", d->alert);
    } else {
        unsigned long e = ERR_peek_error();
        const char *reason = e ? ERR_reason_error_string(e) : NULL;
        snprintf(why, sizeof why, "%s: %s", what, reason ? reason : "unknown error");
    }
    ERR_clear_error();
    return fail_conn(d, why);
}

/* Remembers a fatal alert from the peer, to name it in ops->closed. */
static void info_cb(const SSL *ssl, int where, int ret)
{
    if (!(where & SSL_CB_READ_ALERT) || (ret >> 8) != SSL3_AL_FATAL)
        return;
    sl_dtls_t *d = SSL_get_app_data(ssl);
    if (d)
        snprintf(d->alert, sizeof d->alert, "%s", SSL_alert_desc_string_long(ret));
}

/* OpenSSL's retransmission timer: our first timeout, then doubling up to a cap. */
static unsigned int timer_cb(SSL *ssl, unsigned int prev_us)
{
    sl_dtls_t *d = SSL_get_app_data(ssl);
    if (prev_us == 0)
        return d ? d->first_rtx_us : FIRST_RETRANSMIT_US;
    return prev_us >= MAX_RETRANSMIT_US / 2 ? MAX_RETRANSMIT_US : prev_us * 2;
}

/*
 * The handshake is complete: check the peer's certificate against the SDP
 * fingerprint, export the SRTP keys and tell the owner. Returns 0, or
 * SL_EPROTO after closing.
 */
static int handshake_done(sl_dtls_t *d)
{
    X509 *peer = SSL_get1_peer_certificate(d->ssl);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    int ok = peer && X509_digest(peer, d->fp_md, md, &md_len) && md_len == d->fp_len &&
             memcmp(md, d->fp, md_len) == 0;
    X509_free(peer);
    if (!ok) {
        (void)SSL_shutdown(d->ssl); /* close_notify: the peer learns at once */
        return fail_conn(d, "fingerprint mismatch");
    }

    const SRTP_PROTECTION_PROFILE *prof = SSL_get_selected_srtp_profile(d->ssl);
    size_t key = 16, salt;
    sl_srtp_keys_t keys;
    memset(&keys, 0, sizeof keys);
    if (prof && prof->id == SRTP_AES128_CM_SHA1_80) {
        keys.profile = SL_SRTP_AES128_CM_SHA1_80;
        salt = 14;
    } else if (prof && prof->id == SRTP_AEAD_AES_128_GCM) {
        keys.profile = SL_SRTP_AEAD_AES_128_GCM;
        salt = 12;
    } else {
        (void)SSL_shutdown(d->ssl);
        return fail_conn(d, "no SRTP profile negotiated");
    }

    /* RFC 5764 §4.2: client key | server key | client salt | server salt. */
    uint8_t km[2 * (16 + 14)];
    if (SSL_export_keying_material(d->ssl, km, 2 * (key + salt), k_exporter_label,
                                   sizeof k_exporter_label - 1, NULL, 0, 0) != 1)
        return fail_openssl(d, "key export failed");
    const uint8_t *client_key = km, *server_key = km + key;
    const uint8_t *client_salt = km + 2 * key, *server_salt = km + 2 * key + salt;
    uint8_t *local = keys.local_key, *remote = keys.remote_key;
    memcpy(local, d->is_server ? server_key : client_key, key);
    memcpy(local + key, d->is_server ? server_salt : client_salt, salt);
    memcpy(remote, d->is_server ? client_key : server_key, key);
    memcpy(remote + key, d->is_server ? client_salt : server_salt, salt);
    keys.key_len = key + salt;
    OPENSSL_cleanse(km, sizeof km);

    d->state = ST_CONNECTED;
    if (d->ops->connected && !d->free_pending)
        d->ops->connected(d->ud, &keys);
    OPENSSL_cleanse(&keys, sizeof keys);
    return 0;
}

/* Reads every application record OpenSSL has; sends what reading produced (retransmissions). */
static int read_records(sl_dtls_t *d)
{
    uint8_t buf[SL_DTLS_MAX_APP];
    while (live(d)) {
        int n = SSL_read(d->ssl, buf, sizeof buf);
        flush(d);
        if (n > 0) {
            if (d->ops->data && live(d))
                d->ops->data(d->ud, buf, (size_t)n);
            continue;
        }
        int err = SSL_get_error(d->ssl, n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
            break;
        if (err == SSL_ERROR_ZERO_RETURN)
            return fail_conn(d, "close_notify");
        return fail_openssl(d, "read failed");
    }
    ERR_clear_error();
    return 0;
}

/* Advances the handshake with what rbio holds, then reads any application data behind it. */
static int drive(sl_dtls_t *d)
{
    if (d->state == ST_HANDSHAKE) {
        int r = SSL_do_handshake(d->ssl);
        flush(d);
        if (r != 1) {
            int err = SSL_get_error(d->ssl, r);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                ERR_clear_error();
                return 0;
            }
            return fail_openssl(d, "handshake failed");
        }
        int rc = handshake_done(d);
        if (rc != 0)
            return rc;
    }
    return read_records(d);
}

/* ---- connection: public calls ------------------------------------------- */

/* See dtls.h. */
int sl_dtls_new(sl_dtls_ctx_t *ctx, int is_server, const char *remote_fp_alg,
                const char *remote_fp, const sl_dtls_ops_t *ops, void *ud, sl_dtls_t **out)
{
    *out = NULL;
    ERR_clear_error();
    const EVP_MD *md = fp_digest(remote_fp_alg);
    if (!md || !remote_fp || !ops)
        return SL_EINVAL;
    sl_dtls_t *d = sl_calloc(1, sizeof *d);
    if (!d)
        return SL_ENOMEM;
    d->fp_md = md;
    d->fp_len = (unsigned)EVP_MD_get_size(md);
    int rc = parse_fp(remote_fp, d->fp, d->fp_len);
    if (rc != 0)
        goto fail;
    d->ops = ops;
    d->ud = ud;
    d->is_server = is_server ? 1 : 0;
    d->state = ST_HANDSHAKE;
    d->first_rtx_us = FIRST_RETRANSMIT_US;
    d->deadline_ms = sl_time_mono_ms() + HANDSHAKE_DEADLINE_MS;

    rc = SL_EIO;
    d->ssl = SSL_new(ctx->ssl_ctx);
    if (!d->ssl)
        goto fail;
    d->rbio = BIO_new(BIO_s_mem());
    d->wbio = BIO_new(BIO_s_mem());
    if (!d->rbio || !d->wbio) {
        BIO_free(d->rbio);
        BIO_free(d->wbio);
        goto fail;
    }
    /* An empty rbio reads as "retry", not end of file. */
    BIO_set_mem_eof_return(d->rbio, -1);
    BIO_set_mem_eof_return(d->wbio, -1);
    SSL_set_bio(d->ssl, d->rbio, d->wbio);
    SSL_set_app_data(d->ssl, d);
    SSL_set_info_callback(d->ssl, info_cb);
    DTLS_set_timer_cb(d->ssl, timer_cb);
    if (!SSL_set_mtu(d->ssl, SL_DTLS_MTU))
        goto fail;
    if (is_server)
        SSL_set_accept_state(d->ssl);
    else
        SSL_set_connect_state(d->ssl);
    *out = d;
    return 0;

fail:
    if (d->ssl)
        SSL_free(d->ssl);
    sl_free(d);
    ERR_clear_error();
    return rc;
}

/* See dtls.h. */
int sl_dtls_start(sl_dtls_t *d)
{
    enter(d);
    int rc = 0;
    if (!live(d))
        rc = SL_ECLOSED;
    else if (!d->is_server)
        rc = drive(d); /* nothing fed: writes the ClientHello */
    return leave(d, rc);
}

/* See dtls.h. */
int sl_dtls_feed(sl_dtls_t *d, const uint8_t *p, size_t len)
{
    if (!live(d))
        return SL_ECLOSED;
    if (len == 0 || p[0] < 20 || p[0] > 63)
        return SL_EINVAL;
    if (len > SL_DTLS_MAX_DATAGRAM)
        return SL_ETOOBIG;
    enter(d);
    int rc;
    (void)BIO_reset(d->rbio); /* drop what OpenSSL left of the previous datagram */
    if (BIO_write(d->rbio, p, (int)len) != (int)len)
        rc = SL_ENOMEM;
    else
        rc = drive(d);
    (void)BIO_reset(d->rbio);
    return leave(d, rc);
}

/* See dtls.h. */
int sl_dtls_send(sl_dtls_t *d, const uint8_t *p, size_t len)
{
    if (!live(d))
        return SL_ECLOSED;
    if (d->state != ST_CONNECTED)
        return SL_EAGAIN;
    if (len == 0)
        return SL_EINVAL;
    if (len > SL_DTLS_MAX_APP)
        return SL_ETOOBIG;
    enter(d);
    int rc = 0;
    int n = SSL_write(d->ssl, p, (int)len);
    if (n == (int)len)
        flush(d);
    else
        rc = fail_openssl(d, "write failed");
    return leave(d, rc);
}

/* See dtls.h. */
int64_t sl_dtls_timeout_ms(sl_dtls_t *d)
{
    if (!live(d))
        return -1;
    int64_t best = -1;
    if (d->state == ST_HANDSHAKE) {
        uint64_t now = sl_time_mono_ms();
        best = d->deadline_ms > now ? (int64_t)(d->deadline_ms - now) : 0;
    }
    struct timeval tv;
    if (DTLSv1_get_timeout(d->ssl, &tv) > 0) {
        int64_t ms = (int64_t)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
        if (best < 0 || ms < best)
            best = ms;
    }
    return best;
}

/* See dtls.h. */
void sl_dtls_on_timeout(sl_dtls_t *d)
{
    if (!live(d))
        return;
    enter(d);
    if (d->state == ST_HANDSHAKE && sl_time_mono_ms() >= d->deadline_ms) {
        fail_conn(d, "handshake timeout");
    } else {
        /* Retransmits the last flight if its timer expired; < 0 past OpenSSL's own retry limit. */
        int r = DTLSv1_handle_timeout(d->ssl);
        flush(d);
        if (r < 0)
            fail_conn(d, "handshake timeout");
        ERR_clear_error();
    }
    leave(d, 0);
}

/* See dtls.h. */
void sl_dtls_close(sl_dtls_t *d)
{
    if (!d || d->state == ST_CLOSED)
        return;
    enter(d);
    if (d->state == ST_CONNECTED) {
        (void)SSL_shutdown(d->ssl);
        flush(d);
    }
    d->state = ST_CLOSED;
    ERR_clear_error();
    leave(d, 0);
}

/* See dtls.h. */
void sl_dtls_set_timeouts(sl_dtls_t *d, int64_t first_retransmit_ms, int64_t handshake_ms)
{
    if (first_retransmit_ms > 0)
        d->first_rtx_us = first_retransmit_ms >= MAX_RETRANSMIT_US / 1000
                              ? MAX_RETRANSMIT_US
                              : (unsigned)first_retransmit_ms * 1000u;
    if (handshake_ms >= 0)
        d->deadline_ms = sl_time_mono_ms() + (uint64_t)handshake_ms;
}

/* See dtls.h. */
void sl_dtls_free(sl_dtls_t *d)
{
    if (!d)
        return;
    if (d->depth > 0) {
        d->free_pending = 1;
        return;
    }
    destroy(d);
}
