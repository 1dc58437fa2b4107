/*
 * Unit tests for RTMPS in the RTMP server (src/proto/rtmp with the TLS
 * filter of src/base/tls.c), on a real loop: the server listens on a free
 * loopback TLS port and a client in the same thread drives a non-blocking
 * socket through an OpenSSL client on memory BIOs, so the loop and the
 * client take turns. The client speaks just enough RTMP for the server to
 * do its part: the plain handshake (C0C1, C2) and a connect command.
 * Covered: TLS + RTMP handshakes and connect answered over TLS; the
 * server's stop ending the session with close_notify; plain RTMP on the
 * TLS port closed while an established client carries on; a silent client
 * closed by rtmp.handshake_timeout; RTMPS off without a certificate or
 * with tls_port 0; a bad certificate failing the start; and (with
 * SL_FAULT_INJECTION) an allocation failure at each step of an RTMPS
 * connection's life, each run ending with the loop closed cleanly and
 * sl_malloc back where it started.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "app/core.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "proto/rtmp/rtmp_chunk.h"
#include "proto/rtmp/rtmp_server.h"
#include "sluice/errors.h"
#include "proto/http/http_config.h"
#include "proto/rtmp/rtmp_config.h"
#include "builtin_config.h"

#define HS_SIZE 1536

static char g_dir[64], g_cert[128], g_key[128];

/* ---- certificate ------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/sl_rtmps_test.XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_cert, sizeof g_cert, "%s/cert.pem", g_dir);
    snprintf(g_key, sizeof g_key, "%s/key.pem", g_dir);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!k || !x)
        return -1;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_sign(x, k, EVP_sha256());
    FILE *fc = fopen(g_cert, "wb"), *fk = fopen(g_key, "wb");
    if (!fc || !fk)
        return -1;
    PEM_write_X509(fc, x);
    PEM_write_PrivateKey(fk, k, NULL, NULL, 0, NULL, NULL);
    fclose(fc);
    fclose(fk);
    X509_free(x);
    EVP_PKEY_free(k);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(g_cert);
    unlink(g_key);
    rmdir(g_dir);
    return 0;
}

/* ---- the server -------------------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

typedef struct fix {
    uv_loop_t loop;
    sl_config_t cfg;
    sl_core_t core;
    sl_rtmp_server_t *srv;
    int tls_port;
    int64_t mem_before;
} fix_t;

static void set_str(char **slot, const char *v)
{
    sl_free(*slot);
    *slot = sl_strdup(v);
    assert_non_null(*slot);
}

/* A config for a test server; with_tls sets RTMPS's own certificate. */
static void fix_config(fix_t *f, int with_tls, const char *cert)
{
    assert_int_equal(sl_config_defaults(&f->cfg), 0);
    set_str(&sl_rtmp_cfg(&f->cfg)->bind, "127.0.0.1");
    sl_rtmp_cfg(&f->cfg)->port = free_port();
    sl_rtmp_cfg(&f->cfg)->tls_port = free_port();
    f->cfg.server_shutdown_timeout_ms = 300;
    sl_rtmp_cfg(&f->cfg)->handshake_timeout_ms = 1000;
    if (with_tls) {
        set_str(&sl_rtmp_cfg(&f->cfg)->tls_cert, cert);
        set_str(&sl_rtmp_cfg(&f->cfg)->tls_key, g_key);
    }
}

static fix_t *fix_new(int with_tls)
{
    fix_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->mem_before = sl_alloc_bytes();
    fix_config(f, with_tls, g_cert);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(sl_core_init(&f->core, &f->loop, &f->cfg), 0);
    assert_int_equal(sl_rtmp_server_start(&f->core, &f->srv), 0);
    f->tls_port = sl_rtmp_server_tls_port(f->srv);
    return f;
}

static void fix_free(fix_t *f)
{
    sl_rtmp_server_stop(f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* runs dry once every handle is closed */
    assert_int_equal(sl_rtmp_server_connections(f->srv), 0);
    sl_rtmp_server_free(f->srv);
    sl_core_cleanup(&f->core);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sl_config_cleanup(&f->cfg);
    assert_int_equal(sl_alloc_bytes(), f->mem_before);
    free(f);
}

static int setup(void **state)
{
    *state = fix_new(1);
    return 0;
}

static int teardown(void **state)
{
    fix_free(*state);
    return 0;
}

/* ---- the client -------------------------------------------------------- */

typedef struct cli {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;            /* NULL for a plain client */
    BIO *in, *out;
    uint8_t *buf;        /* plaintext received */
    size_t len, cap;
    int eof;             /* the socket reached EOF or an error */
    int closed_ok;       /* the server's close_notify arrived */
    int failed;          /* the TLS layer failed */
    uint8_t early[4096]; /* plaintext queued before the handshake completes */
    size_t early_len;
    int rtmp_step;       /* 0 C0C1 sent, 1 C2 and connect sent */
    uint8_t connect_msg[512]; /* the chunked connect command, built at open (no sl_malloc later) */
    size_t connect_len;
} cli_t;

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(0x7f000001);
    /* The listener's backlog completes the connection without the loop. */
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/*
 * AMF0 connect("live") on chunk stream 3 (128-byte chunks), built into
 * c->connect_msg when the client opens: the chunk writer allocates through
 * sl_malloc, which the fault-injection walk must find only in the server.
 */
static void cli_build_connect(cli_t *c)
{
    static const char tc_url[] = "rtmps://localhost/live";
    uint8_t amf[256];
    size_t n = 0;
#define PUT_STR(s)                                            \
    do {                                                      \
        amf[n++] = 0x02;                                      \
        amf[n++] = 0;                                         \
        amf[n++] = (uint8_t)(sizeof(s) - 1);                  \
        memcpy(amf + n, s, sizeof(s) - 1);                    \
        n += sizeof(s) - 1;                                   \
    } while (0)
#define PUT_KEY(s)                                            \
    do {                                                      \
        amf[n++] = 0;                                         \
        amf[n++] = (uint8_t)(sizeof(s) - 1);                  \
        memcpy(amf + n, s, sizeof(s) - 1);                    \
        n += sizeof(s) - 1;                                   \
    } while (0)
    PUT_STR("connect");
    static const uint8_t one[9] = {0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0}; /* number 1.0 */
    memcpy(amf + n, one, sizeof one);
    n += sizeof one;
    amf[n++] = 0x03; /* object */
    PUT_KEY("app");
    PUT_STR("live");
    PUT_KEY("tcUrl");
    PUT_STR(tc_url);
    amf[n++] = 0;
    amf[n++] = 0;
    amf[n++] = 0x09; /* object end */
#undef PUT_STR
#undef PUT_KEY
    sl_wbuf_t w;
    sl_wbuf_init(&w, 4096);
    assert_int_equal(sl_rtmp_chunk_write(&w, SL_RTMP_CSID_COMMAND, SL_RTMP_COMMAND_AMF0, 0, 0,
                                         amf, n, 128), 0);
    assert_true(w.len <= sizeof c->connect_msg);
    memcpy(c->connect_msg, w.data, w.len);
    c->connect_len = w.len;
    sl_wbuf_cleanup(&w);
}

static cli_t *cli_open(int port, int tls)
{
    cli_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->cap = 1u << 20;
    c->buf = malloc(c->cap + 1);
    assert_non_null(c->buf);
    c->fd = connect_to(port);
    cli_build_connect(c);
    if (!tls)
        return c;
    c->ctx = SSL_CTX_new(TLS_client_method());
    assert_int_equal(SSL_CTX_load_verify_locations(c->ctx, g_cert, NULL), 1);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(c->ctx);
    SSL_set1_host(c->ssl, "localhost");
    c->in = BIO_new(BIO_s_mem());
    c->out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(c->in, -1);
    BIO_set_mem_eof_return(c->out, -1);
    SSL_set_bio(c->ssl, c->in, c->out);
    SSL_set_connect_state(c->ssl);
    return c;
}

static void cli_close(cli_t *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    ERR_clear_error();
    close(c->fd);
    free(c->buf);
    free(c);
}

/* Queues plaintext (encrypted when TLS; sent once the handshake is done). */
static void cli_send(cli_t *c, const void *p, size_t n)
{
    if (!c->ssl) {
        assert_int_equal(send(c->fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
        return;
    }
    if (!SSL_is_init_finished(c->ssl) || c->early_len) {
        assert_true(c->early_len + n <= sizeof c->early);
        memcpy(c->early + c->early_len, p, n);
        c->early_len += n;
        return;
    }
    size_t w = 0;
    if (SSL_write_ex(c->ssl, p, n, &w) != 1 || w != n)
        c->failed = 1;
}

/* One turn of the client: socket -> TLS -> plaintext, and TLS -> socket. */
static void cli_turn(cli_t *c)
{
    uint8_t tmp[65536];
    if (!c->eof) {
        ssize_t n = recv(c->fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n > 0) {
            if (c->ssl)
                BIO_write(c->in, tmp, (int)n);
            else if (c->len + (size_t)n <= c->cap) {
                memcpy(c->buf + c->len, tmp, (size_t)n);
                c->len += (size_t)n;
            }
        } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            c->eof = 1;
        }
    }
    if (c->ssl && !c->failed && !c->closed_ok) {
        if (!SSL_is_init_finished(c->ssl)) {
            int r = SSL_do_handshake(c->ssl);
            if (r != 1 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
                c->failed = 1;
        }
        size_t got = 0;
        if (SSL_is_init_finished(c->ssl) && c->early_len) {
            if (SSL_write_ex(c->ssl, c->early, c->early_len, &got) != 1)
                c->failed = 1;
            c->early_len = 0;
        }
        while (SSL_is_init_finished(c->ssl) && c->len < c->cap) {
            int r = SSL_read_ex(c->ssl, c->buf + c->len, c->cap - c->len, &got);
            if (r == 1) {
                c->len += got;
                continue;
            }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN)
                c->closed_ok = 1;
            else if (e != SSL_ERROR_WANT_READ)
                c->failed = 1;
            break;
        }
        ERR_clear_error();
        int n;
        while ((n = BIO_read(c->out, tmp, sizeof tmp)) > 0)
            if (send(c->fd, tmp, (size_t)n, MSG_NOSIGNAL) != n)
                c->eof = 1;
    }
    c->buf[c->len] = '\0';
}

/* C0C1: version 3, time 0, zero, then bytes the server echoes in S2. */
static void cli_send_c0c1(cli_t *c)
{
    uint8_t c0c1[1 + HS_SIZE];
    memset(c0c1, 0, sizeof c0c1);
    c0c1[0] = 3;
    for (size_t i = 9; i < sizeof c0c1; i++)
        c0c1[i] = (uint8_t)(i * 7);
    cli_send(c, c0c1, sizeof c0c1);
}

typedef int (*pred_cb)(cli_t *c, const void *arg);

/* Runs the loop and the client until pred holds or timeout_ms passes; returns pred's value. */
static int pump(fix_t *f, cli_t *c, pred_cb pred, const void *arg, int timeout_ms)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (c)
            cli_turn(c);
        if (pred(c, arg))
            return 1;
        if (uv_hrtime() > deadline)
            return 0;
        usleep(500); /* the poll interval of a deadline-bounded wait */
    }
}

static int is_eof(cli_t *c, const void *unused) { return c->eof || c->closed_ok || c->failed; }

static int has(cli_t *c, const void *needle)
{
    return memmem(c->buf, c->len, needle, strlen(needle)) != NULL;
}

/*
 * Drives the RTMP side: once S0S1S2 are in, C2 (S1 echoed) and connect go
 * out. True when the connect is answered, or the connection is over.
 */
static int connected_or_gone(cli_t *c, const void *unused)
{
    if (is_eof(c, NULL))
        return 1;
    if (c->rtmp_step == 0 && c->len >= 1 + 2 * HS_SIZE) {
        cli_send(c, c->buf + 1, HS_SIZE);
        cli_send(c, c->connect_msg, c->connect_len);
        c->rtmp_step = 1;
    }
    return c->rtmp_step == 1 && has(c, "NetConnection.Connect.Success");
}

/* An RTMPS client through connect; asserts it got there. */
static cli_t *rtmps_connected(fix_t *f)
{
    cli_t *c = cli_open(f->tls_port, 1);
    cli_send_c0c1(c);
    assert_true(pump(f, c, connected_or_gone, NULL, 5000));
    assert_int_equal(c->eof || c->failed || c->closed_ok, 0);
    assert_int_equal(SSL_get_verify_result(c->ssl), X509_V_OK);
    assert_int_equal(c->buf[0], 3); /* S0 */
    return c;
}

/* ---- tests ------------------------------------------------------------- */

static void test_connect_and_close_notify_on_stop(void **state)
{
    fix_t *f = *state;
    assert_true(f->tls_port > 0);
    cli_t *c = rtmps_connected(f);
    /* The server's stop closes a connected session after its last bytes: close_notify first. */
    sl_rtmp_server_stop(f->srv);
    assert_true(pump(f, c, is_eof, NULL, 3000));
    assert_true(c->closed_ok);
    assert_false(c->failed);
    cli_close(c);
}

static void test_plain_rtmp_closed_others_fine(void **state)
{
    fix_t *f = *state;
    cli_t *good = rtmps_connected(f);
    cli_t *plain = cli_open(f->tls_port, 0);
    cli_send_c0c1(plain);
    uint64_t t0 = uv_hrtime();
    assert_true(pump(f, plain, is_eof, NULL, 3000));
    assert_true(uv_hrtime() - t0 < 900u * 1000000u); /* at once, not by the handshake timeout */
    /* What came back, if anything, is a TLS alert record (type 21), never RTMP. */
    assert_true(plain->len == 0 || plain->buf[0] == 21);
    cli_close(plain);
    /* A silent client is closed by the handshake timeout (1 s here). */
    cli_t *silent = cli_open(f->tls_port, 0);
    t0 = uv_hrtime();
    assert_true(pump(f, silent, is_eof, NULL, 4000));
    assert_true(uv_hrtime() - t0 > 900u * 1000000u);
    cli_close(silent);
    /* The established one was not disturbed. */
    assert_false(is_eof(good, NULL));
    assert_int_equal(sl_rtmp_server_connections(f->srv), 1);
    cli_close(good);
}

static void test_no_rtmps_without_certificate_or_port(void **state)
{
    (void)state;
    fix_t *f = fix_new(0);
    assert_int_equal(sl_rtmp_server_tls_port(f->srv), -1);
    assert_false(sl_rtmp_server_tls_enabled(&f->cfg));
    fix_free(f);

    int64_t before = sl_alloc_bytes();
    fix_t g;
    memset(&g, 0, sizeof g);
    fix_config(&g, 1, g_cert);
    assert_true(sl_rtmp_server_tls_enabled(&g.cfg));
    sl_rtmp_cfg(&g.cfg)->tls_port = 0;
    assert_false(sl_rtmp_server_tls_enabled(&g.cfg));
    /* HTTPS's certificate is RTMPS's when RTMPS has none of its own. */
    set_str(&sl_rtmp_cfg(&g.cfg)->tls_cert, "");
    set_str(&sl_rtmp_cfg(&g.cfg)->tls_key, "");
    set_str(&sl_http_cfg(&g.cfg)->tls_cert, g_cert);
    set_str(&sl_http_cfg(&g.cfg)->tls_key, g_key);
    sl_rtmp_cfg(&g.cfg)->tls_port = 1936;
    assert_true(sl_rtmp_server_tls_enabled(&g.cfg));
    const char *cert, *key;
    sl_rtmp_server_tls_files(&g.cfg, &cert, &key);
    assert_string_equal(cert, g_cert);
    assert_string_equal(key, g_key);
    char err[512];
    assert_int_equal(sl_rtmp_server_tls_check(&g.cfg, err, sizeof err), 0);
    sl_config_cleanup(&g.cfg);
    assert_int_equal(sl_alloc_bytes(), before);
}

static void test_bad_certificate_fails_start(void **state)
{
    (void)state;
    int64_t before = sl_alloc_bytes();
    fix_t f;
    memset(&f, 0, sizeof f);
    fix_config(&f, 1, "/nonexistent/cert.pem");
    char err[512];
    assert_int_equal(sl_rtmp_server_tls_check(&f.cfg, err, sizeof err), SL_EINVAL);
    assert_non_null(strstr(err, "/nonexistent/cert.pem"));
    set_str(&sl_rtmp_cfg(&f.cfg)->tls_key, "");
    assert_int_equal(sl_rtmp_server_tls_check(&f.cfg, err, sizeof err), SL_EINVAL);
    assert_non_null(strstr(err, "must be set together"));
    set_str(&sl_rtmp_cfg(&f.cfg)->tls_key, g_key);
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(sl_core_init(&f.core, &f.loop, &f.cfg), 0);
    sl_rtmp_server_t *srv = (sl_rtmp_server_t *)1;
    assert_int_equal(sl_rtmp_server_start(&f.core, &srv), SL_EINVAL);
    assert_null(srv);
    sl_core_cleanup(&f.core);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    sl_config_cleanup(&f.cfg);
    assert_int_equal(sl_alloc_bytes(), before);
}

/*
 * An allocation failure at each step of an RTMPS connection's life:
 * accept, filter, TLS handshake, RTMP handshake, connect and its answers,
 * close. Whatever fails, the client gets its answer or a close, and once
 * the server has stopped the loop is empty and every byte is back
 * (checked by fix_free).
 */
static void test_rtmps_alloc_failures(void **state)
{
    (void)state;
    if (!sl_alloc_fail_at(0, 0))
        skip();
    for (uint64_t n = 1; n < 400; n++) {
        fix_t *f = fix_new(1);
        cli_t *c = cli_open(f->tls_port, 1);
        uint64_t failed_before = sl_alloc_failed_count();
        sl_alloc_fail_at(n, 0);
        cli_send_c0c1(c);
        int done = pump(f, c, connected_or_gone, NULL, 3000);
        sl_alloc_fail_at(0, 0);
        int injected = sl_alloc_failed_count() != failed_before;
        if (!injected) {
            /* past the last allocation: the whole exchange must have worked */
            assert_true(done && has(c, "NetConnection.Connect.Success"));
        }
        cli_close(c);
        fix_free(f);
        if (!injected) {
            print_message("allocation failures walked: %llu steps\n", (unsigned long long)n - 1);
            return;
        }
    }
    fail_msg("allocation failures were still being injected after 400 steps");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connect_and_close_notify_on_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_rtmp_closed_others_fine, setup, teardown),
        cmocka_unit_test(test_no_rtmps_without_certificate_or_port),
        cmocka_unit_test(test_bad_certificate_fails_start),
        cmocka_unit_test(test_rtmps_alloc_failures),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
