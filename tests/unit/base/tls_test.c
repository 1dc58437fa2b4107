/*
 * Unit tests for the TLS filter (src/base/tls.c). A client SSL object on
 * two memory BIOs talks to the filter in the same thread: a shuttle moves
 * ciphertext between them, so every step is deterministic and no socket
 * is involved. The certificate and keys are made once per run with
 * OpenSSL's API (self-signed P-256, CN and SAN localhost / 127.0.0.1) into
 * a temporary folder. Covered: context errors (missing file, not PEM, key
 * mismatch), handshake with certificate verification and ALPN, data both
 * ways, small pieces coalesced, a large transfer under a write budget,
 * close_notify both ways, writes before the handshake, garbage and a
 * plain-HTTP request refused with an error string, TLS 1.1 refused, and
 * (with SL_FAULT_INJECTION) sl_tls_new failing cleanly. Each test checks
 * that sl_malloc is back where it started.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/alloc.h"
#include "base/tls.h"
#include "sluice/errors.h"

static char g_dir[64];
static char g_cert[128], g_key[128], g_other_key[128], g_garbage[128], g_other_cert[128];

/* ---- fixtures ---------------------------------------------------------- */

static EVP_PKEY *make_key(const char *path)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    return k;
}

static void make_cert(EVP_PKEY *k, const char *path)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext =
        X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
    X509_free(x);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/sl_tls_test.XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_cert, sizeof g_cert, "%s/cert.pem", g_dir);
    snprintf(g_key, sizeof g_key, "%s/key.pem", g_dir);
    snprintf(g_other_key, sizeof g_other_key, "%s/other.pem", g_dir);
    snprintf(g_garbage, sizeof g_garbage, "%s/garbage.pem", g_dir);
    snprintf(g_other_cert, sizeof g_other_cert, "%s/other_cert.pem", g_dir);
    EVP_PKEY *k = make_key(g_key);
    make_cert(k, g_cert);
    EVP_PKEY_free(k);
    k = make_key(g_other_key);
    make_cert(k, g_other_cert); /* same names, another issuer: an untrusted CA */
    EVP_PKEY_free(k);
    FILE *f = fopen(g_garbage, "wb");
    if (!f)
        return -1;
    fputs("this is not a certificate\n", f);
    fclose(f);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(g_cert);
    unlink(g_key);
    unlink(g_other_key);
    unlink(g_garbage);
    unlink(g_other_cert);
    rmdir(g_dir);
    return 0;
}

/* A client on memory BIOs: c2s holds what it sends, s2c what it receives. */
typedef struct {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *in;  /* server -> client ciphertext */
    BIO *out; /* client -> server ciphertext */
} client_t;

static void client_init(client_t *c, int max_version, const char *alpn_wire, size_t alpn_len)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(c->ctx);
    if (max_version) {
        SSL_CTX_set_min_proto_version(c->ctx, TLS1_VERSION);
        SSL_CTX_set_max_proto_version(c->ctx, max_version);
        SSL_CTX_set_security_level(c->ctx, 0); /* let OpenSSL 3 offer the old versions */
    }
    assert_int_equal(SSL_CTX_load_verify_locations(c->ctx, g_cert, NULL), 1);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(c->ctx);
    assert_non_null(c->ssl);
    assert_int_equal(SSL_set1_host(c->ssl, "localhost"), 1);
    if (alpn_wire)
        assert_int_equal(SSL_set_alpn_protos(c->ssl, (const unsigned char *)alpn_wire,
                                             (unsigned)alpn_len), 0);
    c->in = BIO_new(BIO_s_mem());
    c->out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(c->in, -1);
    BIO_set_mem_eof_return(c->out, -1);
    SSL_set_bio(c->ssl, c->in, c->out);
    SSL_set_connect_state(c->ssl);
}

static void client_cleanup(client_t *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    ERR_clear_error();
}

/*
 * Moves ciphertext both ways once and lets each side process it. Server
 * plaintext read on the way goes to sink (up to *sink_len bytes, appended;
 * NULL drops it). Returns the last sl_tls_read code.
 */
static int shuttle(client_t *c, sl_tls_t *t, uint8_t *sink, size_t sink_cap, size_t *sink_len)
{
    uint8_t buf[32768];
    int rc = 0;
    if (!SSL_is_init_finished(c->ssl))
        SSL_do_handshake(c->ssl);
    int n;
    while ((n = BIO_read(c->out, buf, sizeof buf)) > 0)
        assert_int_equal(sl_tls_feed(t, buf, (size_t)n), 0);
    for (;;) {
        size_t got = 0;
        rc = sl_tls_read(t, buf, sizeof buf, &got);
        if (rc || !got)
            break;
        if (sink) {
            assert_true(*sink_len + got <= sink_cap);
            memcpy(sink + *sink_len, buf, got);
            *sink_len += got;
        }
    }
    size_t m;
    while ((m = sl_tls_out_take(t, buf, sizeof buf)) > 0)
        assert_int_equal(BIO_write(c->in, buf, (int)m), (int)m);
    if (!SSL_is_init_finished(c->ssl))
        SSL_do_handshake(c->ssl);
    return rc;
}

static sl_tls_ctx_t *server_ctx(void)
{
    sl_tls_ctx_t *ctx = NULL;
    char err[256];
    assert_int_equal(sl_tls_ctx_new_server(g_cert, g_key, "http/1.1", &ctx, err, sizeof err), 0);
    assert_string_equal(err, "");
    return ctx;
}

static void handshake(client_t *c, sl_tls_t *t)
{
    for (int i = 0; i < 10 && !(SSL_is_init_finished(c->ssl) && sl_tls_handshake_done(t)); i++)
        assert_int_equal(shuttle(c, t, NULL, 0, NULL), 0);
    assert_true(SSL_is_init_finished(c->ssl));
    assert_true(sl_tls_handshake_done(t));
    assert_int_equal(SSL_get_verify_result(c->ssl), X509_V_OK);
}

/* Client plaintext read until nothing more is available; appended to out. */
static size_t client_read_all(client_t *c, uint8_t *out, size_t cap)
{
    size_t total = 0, got = 0;
    while (total < cap && SSL_read_ex(c->ssl, out + total, cap - total, &got) == 1)
        total += got;
    ERR_clear_error();
    return total;
}

/* ---- tests ------------------------------------------------------------- */

static void test_ctx_errors(void **state)
{
    (void)state;
    int64_t before = sl_alloc_bytes();
    sl_tls_ctx_t *ctx = NULL;
    char err[512];

    assert_int_equal(sl_tls_ctx_new_server("/nonexistent/cert.pem", g_key, NULL, &ctx, err,
                                           sizeof err), SL_EINVAL);
    assert_null(ctx);
    assert_non_null(strstr(err, "cannot read the certificate file /nonexistent/cert.pem"));
    assert_non_null(strstr(err, "No such file"));

    assert_int_equal(sl_tls_ctx_new_server(g_cert, "/nonexistent/key.pem", NULL, &ctx, err,
                                           sizeof err), SL_EINVAL);
    assert_non_null(strstr(err, "cannot read the private key file"));

    assert_int_equal(sl_tls_ctx_new_server(g_garbage, g_key, NULL, &ctx, err, sizeof err),
                     SL_EINVAL);
    assert_non_null(strstr(err, "cannot load the certificate"));
    assert_non_null(strstr(err, g_garbage));

    assert_int_equal(sl_tls_ctx_new_server(g_cert, g_garbage, NULL, &ctx, err, sizeof err),
                     SL_EINVAL);
    assert_non_null(strstr(err, "cannot load the private key"));

    assert_int_equal(sl_tls_ctx_new_server(g_cert, g_other_key, NULL, &ctx, err, sizeof err),
                     SL_EINVAL);
    assert_non_null(strstr(err, "does not match"));

    assert_int_equal(sl_tls_ctx_new_server("", g_key, NULL, &ctx, err, sizeof err), SL_EINVAL);
    assert_non_null(strstr(err, "both"));

    assert_int_equal(sl_tls_ctx_new_server(g_cert, g_key, NULL, &ctx, NULL, 0), 0);
    sl_tls_ctx_free(ctx);
    assert_int_equal(ERR_peek_error(), 0);
    assert_int_equal(sl_alloc_bytes(), before);
}

static void test_handshake_and_data(void **state)
{
    (void)state;
    int64_t before = sl_alloc_bytes();
    sl_tls_ctx_t *ctx = server_ctx();
    sl_tls_t *t = NULL;
    assert_int_equal(sl_tls_new(ctx, &t), 0);
    assert_string_equal(sl_tls_error(t), "");
    assert_string_equal(sl_tls_version(t), "");

    /* Writing before the handshake takes nothing. */
    struct iovec early = {.iov_base = "x", .iov_len = 1};
    size_t used = 99;
    assert_int_equal(sl_tls_write(t, &early, 1, 100, &used), SL_EAGAIN);
    assert_int_equal(used, 0);

    client_t c;
    static const char alpn[] = "\x02h2\x08http/1.1";
    client_init(&c, 0, alpn, sizeof alpn - 1);
    handshake(&c, t);
    const unsigned char *sel = NULL;
    unsigned sel_len = 0;
    SSL_get0_alpn_selected(c.ssl, &sel, &sel_len);
    assert_int_equal(sel_len, 8);
    assert_memory_equal(sel, "http/1.1", 8);
    assert_string_equal(sl_tls_version(t), "TLSv1.3");
    assert_true(strlen(sl_tls_cipher(t)) > 0);

    /* client -> server */
    size_t w = 0;
    assert_int_equal(SSL_write_ex(c.ssl, "GET / HTTP/1.1\r\n\r\n", 18, &w), 1);
    uint8_t got[256];
    size_t got_len = 0;
    assert_int_equal(shuttle(&c, t, got, sizeof got, &got_len), 0);
    assert_int_equal(got_len, 18);
    assert_memory_equal(got, "GET / HTTP/1.1\r\n\r\n", 18);

    /* server -> client: small pieces become one record, not one per piece */
    struct iovec iov[3] = {{.iov_base = "HTTP/1.1 200 OK\r\n", .iov_len = 17},
                           {.iov_base = "Content-Length: 2\r\n\r\n", .iov_len = 21},
                           {.iov_base = "ok", .iov_len = 2}};
    assert_int_equal(sl_tls_write(t, iov, 3, SIZE_MAX, &used), 0);
    assert_int_equal(used, 40);
    size_t pending = sl_tls_out_pending(t);
    assert_true(pending > 40 && pending < 40 + 64); /* one record's overhead */
    shuttle(&c, t, NULL, 0, NULL);
    uint8_t back[128];
    assert_int_equal(client_read_all(&c, back, sizeof back), 40);
    assert_memory_equal(back, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 40);

    /* The budget is honoured across pieces. */
    assert_int_equal(sl_tls_write(t, iov, 3, 20, &used), 0);
    assert_int_equal(used, 20);
    shuttle(&c, t, NULL, 0, NULL);
    assert_int_equal(client_read_all(&c, back, sizeof back), 20);
    assert_memory_equal(back, "HTTP/1.1 200 OK\r\nCon", 20);

    /* A small header before a large body (an RTMP player's 12-byte header
     * and its frame) is one record, not a tiny one plus the body's. */
    static uint8_t body[10000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 7);
    struct iovec hb[2] = {{.iov_base = "HEADER12byte", .iov_len = 12},
                          {.iov_base = body, .iov_len = sizeof body}};
    assert_int_equal(sl_tls_write(t, hb, 2, SIZE_MAX, &used), 0);
    assert_int_equal(used, 12 + sizeof body);
    pending = sl_tls_out_pending(t);
    assert_true(pending > used && pending < used + 32); /* one record: 22 bytes of overhead in TLS 1.3 */
    shuttle(&c, t, NULL, 0, NULL);
    static uint8_t back2[12 + sizeof body];
    assert_int_equal(client_read_all(&c, back2, sizeof back2), (int)sizeof back2);
    assert_memory_equal(back2, "HEADER12byte", 12);
    assert_memory_equal(back2 + 12, body, sizeof body);

    client_cleanup(&c);
    sl_tls_free(t);
    sl_tls_ctx_free(ctx);
    assert_int_equal(sl_alloc_bytes(), before);
}

static void test_large_transfer(void **state)
{
    (void)state;
    int64_t before = sl_alloc_bytes();
    enum { BIG = 3 * 1024 * 1024 + 123 };
    uint8_t *src = malloc(BIG), *dst = malloc(BIG);
    assert_non_null(src);
    assert_non_null(dst);
    for (size_t i = 0; i < BIG; i++)
        src[i] = (uint8_t)(i * 7 + (i >> 13));
    sl_tls_ctx_t *ctx = server_ctx();
    sl_tls_t *t = NULL;
    assert_int_equal(sl_tls_new(ctx, &t), 0);
    client_t c;
    client_init(&c, 0, NULL, 0);
    handshake(&c, t);

    /* server -> client in budgeted batches, as the HTTP server writes: a
     * big buffer cut at odd places plus small ones in between. */
    size_t off = 0, recvd = 0;
    while (off < BIG) {
        size_t a = (BIG - off) < 5 ? BIG - off : 5;
        struct iovec iov[2] = {{.iov_base = src + off, .iov_len = a},
                               {.iov_base = src + off + a, .iov_len = BIG - off - a}};
        size_t used = 0;
        assert_int_equal(sl_tls_write(t, iov, 2, 65536 + 17, &used), 0);
        assert_true(used > 0 && used <= 65536 + 17);
        /* ciphertext for one batch stays bounded: data plus small overhead */
        assert_true(sl_tls_out_pending(t) < used + 1024);
        off += used;
        shuttle(&c, t, NULL, 0, NULL);
        recvd += client_read_all(&c, dst + recvd, BIG - recvd);
    }
    assert_int_equal(recvd, BIG);
    assert_memory_equal(src, dst, BIG);

    /* client -> server, read out with a small buffer */
    memset(dst, 0, BIG);
    size_t sent = 0;
    recvd = 0;
    while (sent < BIG) {
        size_t n = BIG - sent < 100000 ? BIG - sent : 100000, w = 0;
        assert_int_equal(SSL_write_ex(c.ssl, src + sent, n, &w), 1);
        sent += w;
        assert_int_equal(shuttle(&c, t, dst, BIG, &recvd), 0);
        /* everything fed was decrypted: at most a partial record is left */
        assert_true(sl_tls_in_pending(t) < SL_TLS_RECORD_MAX);
    }
    assert_int_equal(recvd, BIG);
    assert_memory_equal(src, dst, BIG);

    client_cleanup(&c);
    sl_tls_free(t);
    sl_tls_ctx_free(ctx);
    free(src);
    free(dst);
    assert_int_equal(sl_alloc_bytes(), before);
}

static void test_close_notify(void **state)
{
    (void)state;
    int64_t before = sl_alloc_bytes();
    sl_tls_ctx_t *ctx = server_ctx();
    sl_tls_t *t = NULL;

    /* ours: the client reads a clean end; later writes are refused */
    assert_int_equal(sl_tls_new(ctx, &t), 0);
    client_t c;
    client_init(&c, 0, NULL, 0);
    handshake(&c, t);
    assert_int_equal(sl_tls_close_notify(t), 0);
    assert_int_equal(sl_tls_close_notify(t), 0); /* idempotent */
    assert_true(sl_tls_out_pending(t) > 0);
    shuttle(&c, t, NULL, 0, NULL);
    uint8_t buf[64];
    size_t n = 0;
    int r = SSL_read_ex(c.ssl, buf, sizeof buf, &n);
    assert_int_equal(r, 0);
    assert_int_equal(SSL_get_error(c.ssl, r), SSL_ERROR_ZERO_RETURN);
    struct iovec iov = {.iov_base = "late", .iov_len = 4};
    size_t used = 0;
    assert_int_equal(sl_tls_write(t, &iov, 1, 100, &used), SL_ECLOSED);
    client_cleanup(&c);
    sl_tls_free(t);

    /* theirs: data before it still arrives, then SL_ECLOSED; we may still write */
    assert_int_equal(sl_tls_new(ctx, &t), 0);
    client_init(&c, 0, NULL, 0);
    handshake(&c, t);
    size_t w = 0;
    assert_int_equal(SSL_write_ex(c.ssl, "bye", 3, &w), 1);
    SSL_shutdown(c.ssl);
    uint8_t got[16];
    size_t got_len = 0;
    assert_int_equal(shuttle(&c, t, got, sizeof got, &got_len), SL_ECLOSED);
    assert_int_equal(got_len, 3);
    assert_memory_equal(got, "bye", 3);
    assert_int_equal(sl_tls_read(t, buf, sizeof buf, &n), SL_ECLOSED);
    assert_int_equal(sl_tls_write(t, &iov, 1, 100, &used), 0);
    assert_int_equal(used, 4);
    client_cleanup(&c);
    sl_tls_free(t);

    sl_tls_ctx_free(ctx);
    assert_int_equal(sl_alloc_bytes(), before);
}

/* Feeds bytes to a fresh connection; expects the handshake to fail with a reason. */
static void expect_refused(sl_tls_ctx_t *ctx, const void *data, size_t len, const char *why_part)
{
    sl_tls_t *t = NULL;
    assert_int_equal(sl_tls_new(ctx, &t), 0);
    assert_int_equal(sl_tls_feed(t, data, len), 0);
    uint8_t buf[256];
    size_t n = 7;
    assert_int_equal(sl_tls_read(t, buf, sizeof buf, &n), SL_EPROTO);
    assert_int_equal(n, 0);
    assert_true(strlen(sl_tls_error(t)) > 0);
    if (why_part)
        assert_non_null(strstr(sl_tls_error(t), why_part));
    /* dead from now on */
    assert_int_equal(sl_tls_read(t, buf, sizeof buf, &n), SL_EPROTO);
    struct iovec iov = {.iov_base = "x", .iov_len = 1};
    assert_int_equal(sl_tls_write(t, &iov, 1, 1, &n), SL_EPROTO);
    assert_int_equal(sl_tls_close_notify(t), 0);
    sl_tls_free(t);
    assert_int_equal(ERR_peek_error(), 0); /* nothing left for other OpenSSL users */
}

static void test_garbage(void **state)
{
    (void)state;
    int64_t before = sl_alloc_bytes();
    sl_tls_ctx_t *ctx = server_ctx();
    static const char http[] = "GET /api/v1/server HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_refused(ctx, http, sizeof http - 1, "http request");
    uint8_t junk[300];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 131 + 17);
    expect_refused(ctx, junk, sizeof junk, NULL);
    /* a handshake record header with a nonsense body */
    static const uint8_t bad_hello[] = {0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00,
                                        0x04, 0xff, 0xff, 0xff, 0xff};
    expect_refused(ctx, bad_hello, sizeof bad_hello, NULL);

    /* garbage after a good handshake kills the connection too */
    sl_tls_t *t = NULL;
    assert_int_equal(sl_tls_new(ctx, &t), 0);
    client_t c;
    client_init(&c, 0, NULL, 0);
    handshake(&c, t);
    assert_int_equal(sl_tls_feed(t, junk, sizeof junk), 0);
    uint8_t buf[64];
    size_t n = 0;
    assert_int_equal(sl_tls_read(t, buf, sizeof buf, &n), SL_EPROTO);
    assert_true(strlen(sl_tls_error(t)) > 0);
    client_cleanup(&c);
    sl_tls_free(t);

    sl_tls_ctx_free(ctx);
    assert_int_equal(sl_alloc_bytes(), before);
}

static void test_old_version_refused(void **state)
{
    (void)state;
    int64_t before = sl_alloc_bytes();
    sl_tls_ctx_t *ctx = server_ctx();
    sl_tls_t *t = NULL;
    assert_int_equal(sl_tls_new(ctx, &t), 0);
    client_t c;
    client_init(&c, TLS1_1_VERSION, NULL, 0);
    int rc = 0;
    for (int i = 0; i < 5 && !rc; i++)
        rc = shuttle(&c, t, NULL, 0, NULL);
    assert_int_equal(rc, SL_EPROTO);
    assert_false(sl_tls_handshake_done(t));
    assert_string_equal(sl_tls_error(t), "unsupported protocol");
    client_cleanup(&c);
    sl_tls_free(t);

    /* TLS 1.2 is fine, with an ECDHE AEAD suite */
    assert_int_equal(sl_tls_new(ctx, &t), 0);
    client_init(&c, TLS1_2_VERSION, NULL, 0);
    handshake(&c, t);
    assert_string_equal(sl_tls_version(t), "TLSv1.2");
    assert_non_null(strstr(sl_tls_cipher(t), "ECDHE"));
    client_cleanup(&c);
    sl_tls_free(t);
    sl_tls_ctx_free(ctx);
    assert_int_equal(sl_alloc_bytes(), before);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    if (!sl_alloc_fail_at(0, 0))
        skip();
    int64_t before = sl_alloc_bytes();
    sl_tls_ctx_t *ctx = NULL;
    sl_alloc_fail_at(1, 0);
    assert_int_equal(sl_tls_ctx_new_server(g_cert, g_key, "http/1.1", &ctx, NULL, 0), SL_ENOMEM);
    assert_null(ctx);
    ctx = server_ctx();
    sl_tls_t *t = (sl_tls_t *)1;
    sl_alloc_fail_at(1, 0);
    assert_int_equal(sl_tls_new(ctx, &t), SL_ENOMEM);
    assert_null(t);
    sl_alloc_fail_at(0, 0);
    sl_tls_ctx_free(ctx);
    assert_int_equal(sl_alloc_bytes(), before);
}

/* ---- the client side: our client filter against our server filter -------- */

/*
 * Runs both filters until nothing moves: reads on each side (which drives
 * the handshake), then moves each side's output to the other. Plaintext is
 * appended to the sinks (may be NULL); the last return of each side's
 * sl_tls_read lands in *rc_cl / *rc_sv.
 */
static void pump(sl_tls_t *cl, sl_tls_t *sv, uint8_t *got_cl, size_t *len_cl, uint8_t *got_sv,
                 size_t *len_sv, size_t sink_cap, int *rc_cl, int *rc_sv)
{
    static uint8_t buf[4 * SL_TLS_RECORD_MAX];
    sl_tls_t *side[2] = {cl, sv};
    uint8_t *sink[2] = {got_cl, got_sv};
    size_t *len[2] = {len_cl, len_sv};
    int *rc[2] = {rc_cl, rc_sv};
    for (int round = 0; round < 64; round++) {
        int moved = 0;
        for (int i = 0; i < 2; i++) {
            size_t n = 0;
            do {
                *rc[i] = sl_tls_read(side[i], buf, sizeof buf, &n);
                if (n && sink[i]) {
                    assert_true(*len[i] + n <= sink_cap);
                    memcpy(sink[i] + *len[i], buf, n);
                    *len[i] += n;
                }
            } while (*rc[i] == 0 && n);
        }
        for (int i = 0; i < 2; i++) {
            size_t n;
            while ((n = sl_tls_out_take(side[i], buf, sizeof buf)) > 0) {
                assert_int_equal(sl_tls_feed(side[1 - i], buf, n), 0);
                moved = 1;
            }
        }
        if (!moved)
            break;
    }
}

static sl_tls_ctx_t *client_ctx(const char *ca, int verify)
{
    sl_tls_ctx_t *ctx = NULL;
    char err[256];
    assert_int_equal(sl_tls_ctx_new_client(ca, verify, &ctx, err, sizeof err), 0);
    assert_string_equal(err, "");
    return ctx;
}

static void test_client_ctx_errors(void **state)
{
    (void)state;
    int64_t before = sl_alloc_bytes();
    sl_tls_ctx_t *ctx = (sl_tls_ctx_t *)1;
    char err[256];
    assert_int_equal(sl_tls_ctx_new_client("/nonexistent/ca.pem", 1, &ctx, err, sizeof err),
                     SL_EINVAL);
    assert_null(ctx);
    assert_non_null(strstr(err, "cannot read the CA certificate file /nonexistent/ca.pem"));
    assert_int_equal(sl_tls_ctx_new_client(g_garbage, 1, &ctx, err, sizeof err), SL_EINVAL);
    assert_null(ctx);
    assert_non_null(strstr(err, "cannot load CA certificates from"));
    /* system CAs; no verification */
    ctx = client_ctx(NULL, 1);
    sl_tls_ctx_free(ctx);
    ctx = client_ctx(NULL, 0);
    sl_tls_ctx_free(ctx);
    assert_int_equal(sl_alloc_bytes(), before);
}

/* Handshake with server_name against our server; data both ways; close_notify. */
static void client_round_trip(const char *ca, int verify, const char *server_name)
{
    sl_tls_ctx_t *sctx = server_ctx();
    sl_tls_ctx_t *cctx = client_ctx(ca, verify);
    sl_tls_t *cl = NULL, *sv = NULL;
    assert_int_equal(sl_tls_new_client(cctx, server_name, &cl), 0);
    assert_int_equal(sl_tls_new(sctx, &sv), 0);

    /* Nothing is sent before the first read; that read, with nothing fed
     * and no room for plaintext, produces the ClientHello. */
    assert_int_equal(sl_tls_out_pending(cl), 0);
    size_t n = 1;
    assert_int_equal(sl_tls_read(cl, NULL, 0, &n), 0);
    assert_int_equal(n, 0);
    assert_true(sl_tls_out_pending(cl) > 5);
    uint8_t first = 0;
    assert_int_equal(sl_tls_out_take(cl, &first, 1), 1);
    assert_int_equal(first, 0x16); /* a handshake record */
    assert_int_equal(sl_tls_feed(sv, &first, 1), 0);

    int rc_cl = 0, rc_sv = 0;
    pump(cl, sv, NULL, NULL, NULL, NULL, 0, &rc_cl, &rc_sv);
    assert_int_equal(rc_cl, 0);
    assert_int_equal(rc_sv, 0);
    assert_true(sl_tls_handshake_done(cl));
    assert_true(sl_tls_handshake_done(sv));
    assert_string_equal(sl_tls_version(cl), sl_tls_version(sv));

    /* data both ways, a large buffer included */
    static uint8_t big[100000], got_sv[200000], got_cl[200000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    struct iovec iov[2] = {{.iov_base = "ping", .iov_len = 4},
                           {.iov_base = big, .iov_len = sizeof big}};
    size_t used = 0;
    assert_int_equal(sl_tls_write(cl, iov, 2, SIZE_MAX, &used), 0);
    assert_int_equal(used, 4 + sizeof big);
    struct iovec pong = {.iov_base = "pong", .iov_len = 4};
    assert_int_equal(sl_tls_write(sv, &pong, 1, SIZE_MAX, &used), 0);
    size_t len_cl = 0, len_sv = 0;
    pump(cl, sv, got_cl, &len_cl, got_sv, &len_sv, sizeof got_sv, &rc_cl, &rc_sv);
    assert_int_equal(len_sv, 4 + sizeof big);
    assert_memory_equal(got_sv, "ping", 4);
    assert_memory_equal(got_sv + 4, big, sizeof big);
    assert_int_equal(len_cl, 4);
    assert_memory_equal(got_cl, "pong", 4);

    /* the client's close_notify reads as a clean end on the server */
    assert_int_equal(sl_tls_close_notify(cl), 0);
    pump(cl, sv, NULL, NULL, NULL, NULL, 0, &rc_cl, &rc_sv);
    assert_int_equal(rc_sv, SL_ECLOSED);
    assert_string_equal(sl_tls_error(sv), "");

    sl_tls_free(cl);
    sl_tls_free(sv);
    sl_tls_ctx_free(cctx);
    sl_tls_ctx_free(sctx);
}

static void test_client_handshake_and_data(void **state)
{
    (void)state;
    int64_t before = sl_alloc_bytes();
    client_round_trip(g_cert, 1, "localhost");
    client_round_trip(g_cert, 1, "127.0.0.1");      /* IP SAN, no SNI */
    client_round_trip(g_other_cert, 0, "example.com"); /* no verification: anything goes */
    client_round_trip(NULL, 0, NULL);
    assert_int_equal(sl_alloc_bytes(), before);
}

/* The client refuses the server: SL_EPROTO with why_part in the reason. */
static void expect_client_refuses(const char *ca, const char *server_name, const char *why_part)
{
    sl_tls_ctx_t *sctx = server_ctx();
    sl_tls_ctx_t *cctx = client_ctx(ca, 1);
    sl_tls_t *cl = NULL, *sv = NULL;
    assert_int_equal(sl_tls_new_client(cctx, server_name, &cl), 0);
    assert_int_equal(sl_tls_new(sctx, &sv), 0);
    int rc_cl = 0, rc_sv = 0;
    pump(cl, sv, NULL, NULL, NULL, NULL, 0, &rc_cl, &rc_sv);
    assert_int_equal(rc_cl, SL_EPROTO);
    assert_false(sl_tls_handshake_done(cl));
    if (!strstr(sl_tls_error(cl), why_part))
        fail_msg("reason \"%s\" lacks \"%s\"", sl_tls_error(cl), why_part);
    /* the alert told the server, which fails too */
    assert_int_equal(rc_sv, SL_EPROTO);
    struct iovec iov = {.iov_base = "x", .iov_len = 1};
    size_t used = 0;
    assert_int_equal(sl_tls_write(cl, &iov, 1, 1, &used), SL_EPROTO);
    sl_tls_free(cl);
    sl_tls_free(sv);
    sl_tls_ctx_free(cctx);
    sl_tls_ctx_free(sctx);
}

static void test_client_verify_failures(void **state)
{
    (void)state;
    int64_t before = sl_alloc_bytes();
    expect_client_refuses(g_other_cert, "localhost", "certificate verify failed");
    expect_client_refuses(g_cert, "example.com", "certificate verify failed: hostname mismatch");
    expect_client_refuses(g_cert, "10.1.2.3", "certificate verify failed: IP address mismatch");
    assert_int_equal(sl_alloc_bytes(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctx_errors),
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_large_transfer),
        cmocka_unit_test(test_close_notify),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_old_version_refused),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_client_ctx_errors),
        cmocka_unit_test(test_client_handshake_and_data),
        cmocka_unit_test(test_client_verify_failures),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
