/*
 * A tiny HTTP/1.1 server on the test's own libuv loop (127.0.0.1, a free
 * port), for unit tests of code that makes HTTP requests (the HTTP
 * client, round-trip authentication) without any network beyond loopback.
 *
 * It reads a request head and a Content-Length body, records the request,
 * asks the test's respond callback what to answer (status, body, delay,
 * or no answer at all), and keeps the connection alive for the next
 * request. Header-only (static functions) so that each *_test.c that
 * includes it stays one translation unit. Plain malloc: the stub's memory
 * is not the code under test's and must not show in sl_alloc counts.
 */
#ifndef SL_TESTS_HTTP_STUB_H
#define SL_TESTS_HTTP_STUB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define STUB_MAX_REQ 65536
#define STUB_MAX_CONNS 64

typedef struct stub stub_t;

/* What to answer: fill *status and *body (borrowed until sent); return the
 * delay in ms, or -1 to never answer (the connection stays open). */
typedef long (*stub_respond_cb)(stub_t *s, const char *path, const char *body, int *status,
                                 const char **resp_body, void *ud);

typedef struct stub_conn {
    uv_tcp_t tcp;
    uv_timer_t delay;
    stub_t *srv;
    char buf[STUB_MAX_REQ + 1];
    size_t len;
    int busy;           /* a response is pending (delay) */
    int closing;
    char *out;          /* response being written */
} stub_conn_t;

struct stub {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    int accepts;                    /* connections accepted */
    int requests;                   /* requests received */
    char last_head[4096];           /* the last request's head */
    char last_body[STUB_MAX_REQ];   /* the last request's body */
    char last_path[256];
    stub_respond_cb respond;
    void *ud;
    stub_conn_t *conns[STUB_MAX_CONNS];
};

static void stub_conn_closed(uv_handle_t *h)
{
    stub_conn_t *c = h->data;
    if (h == (uv_handle_t *)&c->tcp) {
        uv_close((uv_handle_t *)&c->delay, stub_conn_closed);
        return;
    }
    free(c->out);
    free(c);
}

static void stub_conn_close(stub_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    for (int i = 0; i < STUB_MAX_CONNS; i++)
        if (c->srv->conns[i] == c)
            c->srv->conns[i] = NULL;
    uv_timer_stop(&c->delay);
    uv_close((uv_handle_t *)&c->tcp, stub_conn_closed);
}

static void stub_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void stub_try_request(stub_conn_t *c);

static void stub_send(uv_timer_t *t)
{
    stub_conn_t *c = t->data;
    uv_buf_t b = uv_buf_init(c->out, (unsigned)strlen(c->out));
    uv_write_t *w = malloc(sizeof(*w));
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, stub_written);
    c->busy = 0;
    stub_try_request(c); /* a pipelined next request */
}

/* Handles one complete request in c->buf, if there is one. */
static void stub_try_request(stub_conn_t *c)
{
    if (c->busy || c->closing)
        return;
    c->buf[c->len] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end)
        return;
    size_t head_len = (size_t)(end - c->buf) + 4;
    size_t clen = 0;
    for (const char *p = c->buf; p < end;) {
        const char *eol = strstr(p, "\r\n");
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            clen = strtoul(p + 15, NULL, 10);
        p = eol + 2;
    }
    if (c->len < head_len + clen)
        return;
    stub_t *s = c->srv;
    s->requests++;
    snprintf(s->last_head, sizeof s->last_head, "%.*s", (int)head_len, c->buf);
    snprintf(s->last_body, sizeof s->last_body, "%.*s", (int)clen, c->buf + head_len);
    char *sp = strchr(c->buf, ' ');
    snprintf(s->last_path, sizeof s->last_path, "%.*s", sp ? (int)strcspn(sp + 1, " ") : 0,
             sp ? sp + 1 : "");
    int status = 200;
    const char *body = "";
    long delay = s->respond ? s->respond(s, s->last_path, s->last_body, &status, &body, s->ud) : 0;
    memmove(c->buf, c->buf + head_len + clen, c->len - head_len - clen);
    c->len -= head_len + clen;
    if (delay < 0) {
        c->busy = 1; /* never answered */
        return;
    }
    size_t blen = strlen(body);
    free(c->out);
    c->out = malloc(blen + 256);
    sprintf(c->out, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
            status, blen, body);
    c->busy = 1;
    uv_timer_start(&c->delay, stub_send, (uint64_t)delay, 0);
}

static void stub_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    stub_conn_t *c = h->data;
    (void)hint;
    b->base = c->buf + c->len;
    b->len = STUB_MAX_REQ - c->len;
}

static void stub_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    stub_conn_t *c = st->data;
    (void)b;
    if (n < 0 || (n == 0 && c->len == STUB_MAX_REQ)) {
        stub_conn_close(c);
        return;
    }
    c->len += (size_t)n;
    stub_try_request(c);
}

static void stub_accept(uv_stream_t *l, int status)
{
    stub_t *s = l->data;
    if (status < 0)
        return;
    stub_conn_t *c = calloc(1, sizeof(*c));
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->delay);
    c->tcp.data = c->delay.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        stub_conn_close(c);
        return;
    }
    s->accepts++;
    for (int i = 0; i < STUB_MAX_CONNS; i++) {
        if (!s->conns[i]) {
            s->conns[i] = c;
            break;
        }
    }
    uv_read_start((uv_stream_t *)&c->tcp, stub_alloc, stub_read);
}

/* Starts listening on 127.0.0.1 (free port in s->port). 0 or a libuv error. */
static int stub_start(stub_t *s, uv_loop_t *loop, stub_respond_cb respond, void *ud)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->respond = respond;
    s->ud = ud;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    rc = rc ? rc : uv_listen((uv_stream_t *)&s->listener, 64, stub_accept);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    rc = rc ? rc : uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
    if (!rc)
        s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return rc;
}

/* Closes every connection (the client sees the server go away). */
static inline void stub_drop_conns(stub_t *s)
{
    for (int i = 0; i < STUB_MAX_CONNS; i++)
        if (s->conns[i])
            stub_conn_close(s->conns[i]);
}

static void stub_listener_closed(uv_handle_t *h) { (void)h; }

/* Closes the listener and every connection; run the loop afterwards. */
static void stub_stop(stub_t *s)
{
    stub_drop_conns(s);
    uv_close((uv_handle_t *)&s->listener, stub_listener_closed);
}

/* Formats http://127.0.0.1:<port><path> into buf. */
static inline const char *stub_url(const stub_t *s, const char *path, char *buf, size_t n)
{
    snprintf(buf, n, "http://127.0.0.1:%d%s", s->port, path);
    return buf;
}

#endif
