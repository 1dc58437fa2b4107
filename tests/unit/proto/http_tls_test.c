/*
 * Unit tests for HTTPS in the HTTP server core (src/proto/http with the TLS
 * filter of src/base/tls.c), on a real loop: the server listens on an
 * ephemeral TLS port and a client in the same thread drives a non-blocking
 * socket through an OpenSSL client on memory BIOs, so the loop and the
 * client take turns and every run is deterministic enough to repeat.
 * Covered: the handshake, keep-alive and pipelined requests answered in
 * order with a large body and a chunked stream between small answers,
 * Connection: close ending with close_notify, a WebSocket echo over TLS,
 * plain HTTP on the TLS port closed while an established client carries
 * on, no TLS listener without a certificate, a bad certificate failing the
 * start, and (with SL_FAULT_INJECTION) an allocation failure at each step
 * of a TLS connection's life, each run ending with the loop closed cleanly
 * and sl_malloc back where it started.
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
#include "proto/http/http.h"
#include "sluice/errors.h"

#define BIG_BYTES (1536u * 1024u)

static char g_dir[64], g_cert[128], g_key[128];

/* ---- certificate ------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/sl_http_tls_test.XXXXXX");
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

typedef struct fix {
    uv_loop_t loop;
    sl_config_t cfg;
    sl_core_t core;
    sl_http_server_t *srv;
    int port;      /* plain */
    int tls_port;
    int64_t mem_before;
    int stream_closed;
    int ws_closed;
} fix_t;

static int h_fast(sl_http_req_t *req, void *ud)
{
    return sl_http_respond(req, 200, "text/plain", "fast-body", 9, NULL);
}

static int h_big(sl_http_req_t *req, void *ud)
{
    uint8_t *body = sl_malloc(BIG_BYTES);
    if (!body)
        return SL_ENOMEM;
    for (size_t i = 0; i < BIG_BYTES; i++)
        body[i] = (uint8_t)('a' + i % 26);
    int rc = sl_http_respond(req, 200, "application/octet-stream", body, BIG_BYTES, NULL);
    sl_free(body);
    return rc == SL_ECLOSED ? 0 : rc;
}

static void stream_closed(sl_http_req_t *req, void *ud) { ((fix_t *)ud)->stream_closed++; }

/* Three 20 KB chunks of 's', then the end. */
static int h_stream(sl_http_req_t *req, void *ud)
{
    int rc = sl_http_stream_start(req, 200, "text/plain", NULL, stream_closed, ud);
    if (rc)
        return rc == SL_ECLOSED ? 0 : rc;
    sl_buf_t *b = sl_buf_new(20000);
    if (!b) {
        sl_http_stream_end(req);
        return 0;
    }
    memset(b->data, 's', 20000);
    b->len = 20000;
    for (int i = 0; i < 3; i++)
        sl_http_stream_write(req, b);
    sl_buf_unref(b);
    sl_http_stream_end(req);
    return 0;
}

static void ws_msg(sl_ws_t *ws, const uint8_t *data, size_t len, int is_text, void *ud)
{
    sl_ws_send_text(ws, (const char *)data, len);
}

static void ws_close_cb(sl_ws_t *ws, void *ud) { ((fix_t *)ud)->ws_closed++; }

static const sl_ws_ops_t echo_ops = {.on_message = ws_msg, .on_close = ws_close_cb};

static int h_ws(sl_http_req_t *req, void *ud)
{
    sl_ws_t *ws;
    sl_http_ws_accept(req, &echo_ops, ud, &ws);
    return 0;
}

static void set_str(char **slot, const char *v)
{
    sl_free(*slot);
    *slot = sl_strdup(v);
    assert_non_null(*slot);
}

/* A config for a test server; with_tls sets the certificate. */
static void fix_config(fix_t *f, int with_tls, const char *cert)
{
    assert_int_equal(sl_config_defaults(&f->cfg), 0);
    f->cfg.http_port = 0;
    f->cfg.http_tls_port = 0;
    set_str(&f->cfg.http_bind, "127.0.0.1");
    f->cfg.server_shutdown_timeout_ms = 300;
    f->cfg.http_header_timeout_ms = 1000;
    if (with_tls) {
        set_str(&f->cfg.http_tls_cert, cert);
        set_str(&f->cfg.http_tls_key, g_key);
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
    assert_int_equal(sl_http_server_start(&f->core, &f->srv), 0);
    f->port = sl_http_server_port(f->srv);
    f->tls_port = sl_http_server_tls_port(f->srv);
    assert_true(f->port > 0);
    assert_int_equal(sl_http_route(f->srv, "GET", "/fast", SL_HTTP_PRIO_CORE, h_fast, f), 0);
    assert_int_equal(sl_http_route(f->srv, "GET", "/big", SL_HTTP_PRIO_CORE, h_big, f), 0);
    assert_int_equal(sl_http_route(f->srv, "GET", "/stream", SL_HTTP_PRIO_CORE, h_stream, f), 0);
    assert_int_equal(sl_http_route(f->srv, "GET", "/ws", SL_HTTP_PRIO_CORE, h_ws, f), 0);
    return f;
}

static void fix_free(fix_t *f)
{
    sl_http_server_stop(f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* runs dry once every handle is closed */
    sl_http_server_free(f->srv);
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
    SSL *ssl;   /* NULL for a plain client */
    BIO *in, *out;
    uint8_t *buf;  /* plaintext received */
    size_t len, cap;
    int eof;       /* the socket reached EOF or an error */
    int closed_ok; /* the server's close_notify arrived */
    int failed;    /* the TLS layer failed */
    uint8_t early[4096]; /* plaintext queued before the handshake completes */
    size_t early_len;
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

static cli_t *cli_open(int port, int tls)
{
    cli_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->cap = 4u * 1024u * 1024u;
    c->buf = malloc(c->cap + 1);
    assert_non_null(c->buf);
    c->fd = connect_to(port);
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

/* Queues plaintext (encrypted when TLS; the handshake must be done or under way). */
static void cli_send(cli_t *c, const void *p, size_t n)
{
    if (!c->ssl) {
        assert_int_equal(send(c->fd, p, n, 0), (ssize_t)n);
        return;
    }
    if (!SSL_is_init_finished(c->ssl) || c->early_len) {
        assert_true(c->early_len + n <= sizeof c->early);
        memcpy(c->early + c->early_len, p, n);
        c->early_len += n;
        return;
    }
    size_t w = 0;
    assert_int_equal(SSL_write_ex(c->ssl, p, n, &w), 1);
    assert_int_equal(w, n);
}

static void cli_sends(cli_t *c, const char *s) { cli_send(c, s, strlen(s)); }

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

static int has(cli_t *c, const void *needle)
{
    return memmem(c->buf, c->len, needle, strlen(needle)) != NULL;
}
static int is_eof(cli_t *c, const void *unused) { return c->eof || c->closed_ok || c->failed; }
static int ready(cli_t *c, const void *unused) { return c->ssl && SSL_is_init_finished(c->ssl); }
static int at_least(cli_t *c, const void *n) { return c->len >= *(const size_t *)n; }

static size_t count(const cli_t *c, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    for (const uint8_t *p = c->buf; (p = memmem(p, c->len - (size_t)(p - c->buf), needle, nl));
         p += nl)
        n++;
    return n;
}

static int two_fast(cli_t *c, const void *unused) { return count(c, "fast-body") == 2; }

/* ---- tests ------------------------------------------------------------- */

static void test_tls_pipelined_in_order(void **state)
{
    fix_t *f = *state;
    assert_true(f->tls_port > 0);
    cli_t *c = cli_open(f->tls_port, 1);
    assert_true(pump(f, c, ready, NULL, 3000));
    assert_int_equal(SSL_get_verify_result(c->ssl), X509_V_OK);
    cli_sends(c, "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /big HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n");
    size_t want = BIG_BYTES + 60000;
    assert_true(pump(f, c, at_least, &want, 5000));
    assert_true(pump(f, c, has, "404 Not Found", 3000));
    assert_true(pump(f, c, has, "0\r\n\r\nHTTP/1.1 404", 3000));
    assert_true(pump(f, c, two_fast, NULL, 3000));
    assert_int_equal(count(c, "HTTP/1.1 200 OK"), 4);
    assert_int_equal(count(c, "fast-body"), 2);
    const uint8_t *first = memmem(c->buf, c->len, "fast-body", 9);
    const uint8_t *big = memmem(c->buf, c->len, "abcdefghijklmnopqrstuvwxyzabc", 29);
    const uint8_t *stream = memmem(c->buf, c->len, "Transfer-Encoding: chunked", 26);
    const uint8_t *missing = memmem(c->buf, c->len, "404 Not Found", 13);
    const uint8_t *last = memmem(first + 9, c->len - (size_t)(first + 9 - c->buf), "fast-body", 9);
    assert_true(first && big && stream && missing && last);
    assert_true(first < big && big < stream && stream < missing && missing < last);
    assert_int_equal(f->stream_closed, 1);
    /* keep-alive, then Connection: close ends with close_notify */
    size_t before = c->len;
    cli_sends(c, "GET /fast HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_true(pump(f, c, is_eof, NULL, 3000));
    assert_true(c->closed_ok);
    assert_false(c->failed);
    assert_non_null(memmem(c->buf + before, c->len - before, "Connection: close", 17));
    cli_close(c);
}

static int ws_gone(cli_t *c, const void *f) { return ((const fix_t *)f)->ws_closed == 1; }

static void test_tls_websocket(void **state)
{
    fix_t *f = *state;
    cli_t *c = cli_open(f->tls_port, 1);
    cli_sends(c, "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n");
    assert_true(pump(f, c, has, "\r\n\r\n", 3000));
    assert_true(has(c, "101 Switching Protocols"));
    /* a masked text frame "hello" (mask 0) */
    static const uint8_t frame[] = {0x81, 0x85, 0, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'};
    cli_send(c, frame, sizeof frame);
    static const char echo[] = "\x81\x05hello";
    assert_true(pump(f, c, has, echo, 3000));
    /* close frame 1000, masked; the server answers and closes */
    static const uint8_t close_frame[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8};
    cli_send(c, close_frame, sizeof close_frame);
    assert_true(pump(f, c, is_eof, NULL, 3000));
    assert_false(c->failed);
    assert_true(pump(f, c, ws_gone, f, 3000));
    cli_close(c);
}

static void test_tls_plaintext_closed_others_fine(void **state)
{
    fix_t *f = *state;
    cli_t *good = cli_open(f->tls_port, 1);
    cli_sends(good, "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(f, good, has, "fast-body", 3000));
    cli_t *plain = cli_open(f->tls_port, 0);
    cli_sends(plain, "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(f, plain, is_eof, NULL, 3000));
    /* one 400 in clear that says why, then the close */
    assert_true(plain->len > 12 && memcmp(plain->buf, "HTTP/1.1 400", 12) == 0);
    cli_close(plain);
    /* garbage that is neither TLS nor HTTP: closed with nothing in clear */
    cli_t *junk = cli_open(f->tls_port, 0);
    cli_sends(junk, "\x01\x02\x03\x04 not tls, not http \r\n\r\n");
    assert_true(pump(f, junk, is_eof, NULL, 3000));
    assert_true(junk->len == 0 || memcmp(junk->buf, "HTTP", 4) != 0);
    cli_close(junk);
    /* a silent TLS client is closed after the header timeout (1 s here) */
    cli_t *silent = cli_open(f->tls_port, 0);
    uint64_t t0 = uv_hrtime();
    assert_true(pump(f, silent, is_eof, NULL, 4000));
    assert_true(uv_hrtime() - t0 > 900u * 1000000u);
    cli_close(silent);
    good->len = 0;
    cli_sends(good, "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(f, good, has, "fast-body", 3000));
    cli_close(good);
    /* plain HTTP still works on the plain port */
    cli_t *p = cli_open(f->port, 0);
    cli_sends(p, "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(f, p, has, "fast-body", 3000));
    cli_close(p);
}

static void test_no_tls_without_certificate(void **state)
{
    (void)state;
    fix_t *f = fix_new(0);
    assert_int_equal(sl_http_server_tls_port(f->srv), -1);
    assert_false(sl_http_server_tls_enabled(&f->cfg));
    fix_free(f);
}

static void test_bad_certificate_fails_start(void **state)
{
    (void)state;
    int64_t before = sl_alloc_bytes();
    fix_t f;
    memset(&f, 0, sizeof f);
    fix_config(&f, 1, "/nonexistent/cert.pem");
    char err[512];
    assert_int_equal(sl_http_server_tls_check(&f.cfg, err, sizeof err), SL_EINVAL);
    assert_non_null(strstr(err, "/nonexistent/cert.pem"));
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(sl_core_init(&f.core, &f.loop, &f.cfg), 0);
    sl_http_server_t *srv = (sl_http_server_t *)1;
    assert_int_equal(sl_http_server_start(&f.core, &srv), SL_EINVAL);
    assert_null(srv);
    sl_core_cleanup(&f.core);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    sl_config_cleanup(&f.cfg);
    assert_int_equal(sl_alloc_bytes(), before);
}

/*
 * An allocation failure at each step of a TLS connection's life: accept,
 * filter, handshake, request, answers, streaming, close. Whatever fails,
 * the client gets its answers or a close, and once the server has stopped
 * the loop is empty and every byte is back (checked by fix_free).
 */
static void test_tls_alloc_failures(void **state)
{
    (void)state;
    if (!sl_alloc_fail_at(0, 0))
        skip();
    for (uint64_t n = 1; n < 400; n++) {
        fix_t *f = fix_new(1);
        cli_t *c = cli_open(f->tls_port, 1);
        uint64_t failed_before = sl_alloc_failed_count();
        sl_alloc_fail_at(n, 0);
        cli_sends(c, "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"
                     "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"
                     "GET /fast HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        int done = pump(f, c, is_eof, NULL, 3000);
        sl_alloc_fail_at(0, 0);
        int injected = sl_alloc_failed_count() != failed_before;
        if (!injected) {
            /* past the last allocation: the whole exchange must have worked */
            assert_true(done && c->closed_ok);
            assert_int_equal(count(c, "HTTP/1.1 200 OK"), 3);
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
        cmocka_unit_test_setup_teardown(test_tls_pipelined_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_websocket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_plaintext_closed_others_fine, setup, teardown),
        cmocka_unit_test(test_no_tls_without_certificate),
        cmocka_unit_test(test_bad_certificate_fails_start),
        cmocka_unit_test(test_tls_alloc_failures),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
