/*
 * The outgoing HTTP client (see http_client.h): curl's multi-socket API on
 * the libuv loop.
 *
 * The glue is the one curl documents for event loops (docs/examples
 * multi-uv.c), with the lifetime rules a server needs on top:
 *  - one sock_t (a uv_poll) per socket curl asks us to watch, attached to
 *    the socket with curl_multi_assign and closed on CURL_POLL_REMOVE;
 *  - one uv_timer for curl's timeout (CURLMOPT_TIMERFUNCTION). curl must
 *    not be re-entered from its own callbacks, so even a zero timeout goes
 *    through the timer and is acted on in the next loop iteration; this is
 *    also why a request's callback can never run inside the call that
 *    started it;
 *  - a sweep timer fails any request still running well past its own
 *    timeout: curl's timeout needs curl's bookkeeping, and an allocation
 *    failure inside curl_multi_socket_action can leave a transfer with no
 *    socket watched and no timer (seen under fault injection), so the
 *    "every request ends" promise is kept here, not left to curl;
 *  - finished transfers are collected after every curl_multi_socket_action
 *    (process_done). A user callback may start, cancel, close or free
 *    anything: closing is deferred while callbacks run (depth), and the
 *    client is only freed from a uv_close callback, never from inside its
 *    own call stack (STYLE.md, Memory).
 */
#include "base/http_client.h"

#include <curl/curl.h>
#include <string.h>

#include "base/alloc.h"
#include "base/list.h"
#include "base/log.h"
#include "base/redact.h"
#include "sluice/errors.h"
#include "sluice/version.h"

#define DEFAULT_MAX_CONNECTIONS 16
#define DEFAULT_MAX_RESPONSE (1024 * 1024)
#define DEFAULT_TIMEOUT_MS 10000
#define MAX_CONNECT_TIMEOUT_MS 10000
#define SWEEP_INTERVAL_MS 500
#define SWEEP_GRACE_MS 1000

/* A socket curl asked us to watch. */
typedef struct sock {
    uv_poll_t poll;              /* the watcher; data = this */
    curl_socket_t fd;            /* the socket */
    struct sl_http_client *cli;  /* owner */
    sl_list_t link;              /* in cli->socks while open */
} sock_t;

struct sl_http_client_req {
    struct sl_http_client *cli;  /* owner */
    CURL *easy;                  /* the transfer (owned) */
    struct curl_slist *hdrs;     /* request headers (owned) */
    sl_http_client_cb cb;        /* completion, NULL once cancelled */
    void (*on_header)(const char *line, size_t len, void *ud); /* response head lines, or NULL */
    void *ud;
    char *resp;                  /* response body (owned, NUL-terminated when set) */
    size_t resp_len, resp_cap;
    int too_big;                 /* the body passed max_response_bytes */
    int done;                    /* its callback is running: freed right after */
    uint64_t deadline_ms;        /* loop time by which it must have ended (sweep) */
    char errbuf[CURL_ERROR_SIZE];/* curl's reason for a failure (logs) */
    sl_list_t link;              /* in cli->reqs */
};

struct sl_http_client {
    uv_loop_t *loop;             /* borrowed */
    CURLM *multi;                /* owned; NULL after close */
    uv_timer_t timer;            /* curl's timeout */
    uv_timer_t drain_timer;      /* end of the close drain */
    uv_timer_t sweep_timer;      /* fails requests curl left past their deadline */
    sl_list_t reqs;              /* sl_http_client_req_t in flight */
    sl_list_t socks;             /* sock_t open */
    size_t n_reqs;
    size_t max_response_bytes;
    char *user_agent;            /* owned */
    int depth;                   /* > 0 while user callbacks may run */
    int closing;                 /* sl_http_client_close called */
    int finishing;               /* handles are being closed */
    int closed;                  /* every handle closed */
    int free_on_close;           /* sl_http_client_free came first */
    int open_handles;            /* uv handles not yet closed */
    sl_http_client_closed_cb closed_cb;
    void *closed_ud;
};

/* ------------------------------------------------------------------ */
/* curl global state                                                   */

/* Clients alive; curl is initialised with the first and cleaned up with
 * the last (loop thread only, like the clients). */
static int g_clients;

static int global_ref(void)
{
    if (g_clients == 0) {
        /* curl's allocations go through the counted allocator. */
        if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, sl_malloc, sl_free, sl_realloc, sl_strdup,
                                 sl_calloc) != CURLE_OK)
            return SL_EIO;
    }
    g_clients++;
    return 0;
}

static void global_unref(void)
{
    if (--g_clients == 0)
        curl_global_cleanup();
}

/* ------------------------------------------------------------------ */
/* handles and closing                                                 */

static void free_client(sl_http_client_t *cli)
{
    sl_free(cli->user_agent);
    sl_free(cli);
    global_unref();
}

static void on_handle_closed(uv_handle_t *h)
{
    sl_http_client_t *cli;
    if (h->type == UV_POLL) {
        sock_t *s = h->data;
        cli = s->cli;
        sl_free(s);
    } else {
        cli = h->data;
    }
    if (--cli->open_handles > 0)
        return;
    cli->closed = 1;
    if (cli->closed_cb)
        cli->closed_cb(cli, cli->closed_ud);
    if (cli->free_on_close)
        free_client(cli);
}

static void close_sock(sock_t *s)
{
    sl_list_remove(&s->link);
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

static void req_free(sl_http_client_req_t *req)
{
    sl_http_client_t *cli = req->cli;
    if (req->easy) {
        if (cli->multi)
            curl_multi_remove_handle(cli->multi, req->easy);
        curl_easy_cleanup(req->easy);
    }
    curl_slist_free_all(req->hdrs);
    sl_list_remove(&req->link);
    if (--cli->n_reqs == 0)
        uv_timer_stop(&cli->sweep_timer);
    sl_free(req->resp);
    sl_free(req);
}

/* Cancels what is left, lets curl release its connections, closes every handle. */
static void finish_close(sl_http_client_t *cli)
{
    if (cli->finishing)
        return;
    cli->finishing = 1;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &cli->reqs) {
        sl_http_client_req_t *req = sl_container_of(it, sl_http_client_req_t, link);
        SL_LOGD(NULL, "http client: request cancelled at close");
        req_free(req);
    }
    /* Closing the cached connections may call the socket callback with
     * CURL_POLL_REMOVE, which closes their polls (multi is already NULL
     * then, so the callback leaves curl's socket hash alone). */
    CURLM *multi = cli->multi;
    cli->multi = NULL;
    curl_multi_cleanup(multi);
    sl_list_foreach_safe(it, nx, &cli->socks) close_sock(sl_container_of(it, sock_t, link));
    uv_timer_stop(&cli->timer);
    uv_timer_stop(&cli->drain_timer);
    uv_timer_stop(&cli->sweep_timer);
    uv_close((uv_handle_t *)&cli->timer, on_handle_closed);
    uv_close((uv_handle_t *)&cli->drain_timer, on_handle_closed);
    uv_close((uv_handle_t *)&cli->sweep_timer, on_handle_closed);
}

/* A close was asked and is no longer waiting for requests to drain. */
static int close_due(const sl_http_client_t *cli)
{
    return cli->closing &&
           (cli->n_reqs == 0 || !uv_is_active((const uv_handle_t *)&cli->drain_timer));
}

/* Closes now if a close is due and no user callback is on the stack. */
static void maybe_finish_close(sl_http_client_t *cli)
{
    if (!cli->finishing && cli->depth == 0 && close_due(cli))
        finish_close(cli);
}

static void on_drain_timeout(uv_timer_t *t)
{
    sl_http_client_t *cli = t->data;
    if (cli->n_reqs)
        SL_LOGI(NULL, "http client: %zu requests still running at close, cancelled", cli->n_reqs);
    if (cli->depth == 0)
        finish_close(cli);
}

/* ------------------------------------------------------------------ */
/* completion                                                          */

static int map_curl_error(const sl_http_client_req_t *req, CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return UV_ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return UV_ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return UV_EAI_NONAME;
    case CURLE_OUT_OF_MEMORY:
        return SL_ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return SL_EINVAL;
    case CURLE_WRITE_ERROR:
        return req->too_big ? SL_ETOOBIG : SL_EIO;
    default:
        return SL_EIO;
    }
}

/* Calls req's callback (depth is held by the caller) and frees it. */
static void deliver(sl_http_client_t *cli, sl_http_client_req_t *req, int status)
{
    /* Out of the multi handle before the callback: it may cancel other
     * requests or close the client, but this one is already finished. */
    curl_multi_remove_handle(cli->multi, req->easy);
    sl_http_client_cb cb = req->cb;
    void *ud = req->ud;
    req->cb = NULL;
    req->done = 1; /* a cancel from inside its own callback is ignored */
    const char *body = status > 0 && req->resp ? req->resp : "";
    size_t len = status > 0 && req->resp ? req->resp_len : 0;
    if (cb)
        cb(status, body, len, ud);
    req_free(req);
}

/* Collects finished transfers and calls their callbacks. */
static void process_done(sl_http_client_t *cli)
{
    CURLMsg *msg;
    int left;
    cli->depth++;
    /* Once a close without drain is asked (maybe by a callback in this
     * very loop), what is left is cancelled, not reported. */
    while (cli->multi && !cli->finishing && !close_due(cli) &&
           (msg = curl_multi_info_read(cli->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        sl_http_client_req_t *req = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
        CURLcode rc = msg->data.result;
        int status;
        if (rc == CURLE_OK) {
            long code = 0;
            curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &code);
            status = (int)code;
        } else {
            status = map_curl_error(req, rc);
            char *url = NULL;
            curl_easy_getinfo(req->easy, CURLINFO_EFFECTIVE_URL, &url);
            char rb[SL_REDACT_MAX];
            SL_LOGD(NULL, "http client: %s: %s", sl_redact(url, rb, sizeof rb),
                    req->errbuf[0] ? req->errbuf : curl_easy_strerror(rc));
        }
        deliver(cli, req, status);
    }
    cli->depth--;
    maybe_finish_close(cli);
}

static void on_sweep(uv_timer_t *t)
{
    sl_http_client_t *cli = t->data;
    uint64_t now = uv_now(cli->loop);
    cli->depth++;
    /* Rescan from the head after each delivery: the callback may have
     * cancelled any other request. */
    for (int again = 1; again && !cli->finishing && !close_due(cli);) {
        again = 0;
        sl_list_t *it;
        for (it = cli->reqs.next; it != &cli->reqs; it = it->next) {
            sl_http_client_req_t *req = sl_container_of(it, sl_http_client_req_t, link);
            if (now >= req->deadline_ms) {
                SL_LOGW(NULL, "http client: a request outlived its timeout inside curl; failed");
                deliver(cli, req, UV_ETIMEDOUT);
                again = 1;
                break;
            }
        }
    }
    if (cli->n_reqs == 0)
        uv_timer_stop(&cli->sweep_timer);
    cli->depth--;
    maybe_finish_close(cli);
}

/* ------------------------------------------------------------------ */
/* curl <-> libuv                                                      */

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_t *s = h->data;
    sl_http_client_t *cli = s->cli;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    int running;
    /* s may be closed (CURL_POLL_REMOVE) inside this call; it is freed
     * only in its close callback, later. */
    curl_multi_socket_action(cli->multi, s->fd, flags, &running);
    process_done(cli);
}

static void on_timer(uv_timer_t *t)
{
    sl_http_client_t *cli = t->data;
    int running;
    curl_multi_socket_action(cli->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    process_done(cli);
}

static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    sl_http_client_t *cli = userp;
    sock_t *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            if (cli->multi)
                curl_multi_assign(cli->multi, fd, NULL);
            close_sock(s);
        }
        return 0;
    }
    if (!s) {
        s = sl_calloc(1, sizeof(*s));
        if (!s)
            return -1; /* curl fails the transfer (CURLM_ABORTED_BY_CALLBACK) */
        if (uv_poll_init_socket(cli->loop, &s->poll, fd) != 0) {
            sl_free(s);
            return -1;
        }
        s->poll.data = s;
        s->fd = fd;
        s->cli = cli;
        sl_list_push_back(&cli->socks, &s->link);
        cli->open_handles++;
        curl_multi_assign(cli->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    return uv_poll_start(&s->poll, events, on_poll) == 0 ? 0 : -1;
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    sl_http_client_t *cli = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&cli->timer);
    else
        uv_timer_start(&cli->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    sl_http_client_req_t *req = userp;
    size_t len = size * n;
    if (len > req->cli->max_response_bytes - req->resp_len) {
        req->too_big = 1;
        return 0; /* CURLE_WRITE_ERROR */
    }
    if (req->resp_len + len + 1 > req->resp_cap) {
        size_t cap = req->resp_cap ? req->resp_cap : 1024;
        while (cap < req->resp_len + len + 1)
            cap *= 2;
        char *nb = sl_realloc(req->resp, cap);
        if (!nb)
            return 0;
        req->resp = nb;
        req->resp_cap = cap;
    }
    memcpy(req->resp + req->resp_len, data, len);
    req->resp_len += len;
    req->resp[req->resp_len] = '\0';
    return len;
}

/* One line of the response head (CURLOPT_HEADERFUNCTION): handed to the
 * caller's on_header without its CRLF; a cancelled request hears no more. */
static size_t on_head(char *data, size_t size, size_t n, void *userp)
{
    sl_http_client_req_t *req = userp;
    size_t len = size * n, line = len;
    while (line > 0 && (data[line - 1] == '\n' || data[line - 1] == '\r'))
        line--;
    if (req->cb && req->on_header && line > 0)
        req->on_header(data, line, req->ud);
    return len;
}

/* ------------------------------------------------------------------ */
/* public API                                                          */

int sl_http_client_new(uv_loop_t *loop, const sl_http_client_opts_t *opts, sl_http_client_t **out)
{
    *out = NULL;
    int rc = global_ref();
    if (rc)
        return rc;
    sl_http_client_t *cli = sl_calloc(1, sizeof(*cli));
    if (!cli) {
        global_unref();
        return SL_ENOMEM;
    }
    cli->loop = loop;
    sl_list_init(&cli->reqs);
    sl_list_init(&cli->socks);
    long max_conns = opts && opts->max_connections > 0 ? opts->max_connections : DEFAULT_MAX_CONNECTIONS;
    cli->max_response_bytes = opts && opts->max_response_bytes ? opts->max_response_bytes
                                                               : DEFAULT_MAX_RESPONSE;
    cli->user_agent = sl_strdup(opts && opts->user_agent ? opts->user_agent : "sluice/" SL_VERSION_STRING);
    cli->multi = curl_multi_init();
    if (!cli->user_agent || !cli->multi) {
        rc = SL_ENOMEM;
        goto fail;
    }
    curl_multi_setopt(cli->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(cli->multi, CURLMOPT_SOCKETDATA, cli);
    curl_multi_setopt(cli->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(cli->multi, CURLMOPT_TIMERDATA, cli);
    curl_multi_setopt(cli->multi, CURLMOPT_MAXCONNECTS, max_conns);
    uv_timer_init(loop, &cli->timer);
    uv_timer_init(loop, &cli->drain_timer);
    uv_timer_init(loop, &cli->sweep_timer);
    cli->timer.data = cli->drain_timer.data = cli->sweep_timer.data = cli;
    cli->open_handles = 3;
    *out = cli;
    return 0;
fail:
    if (cli->multi)
        curl_multi_cleanup(cli->multi);
    free_client(cli);
    return rc;
}

int sl_http_client_start(sl_http_client_t *cli, const sl_http_client_request_t *r,
                         sl_http_client_cb cb, void *ud, sl_http_client_req_t **out)
{
    if (out)
        *out = NULL;
    if (!r || !r->url || !r->url[0])
        return SL_EINVAL;
    if (cli->closing)
        return SL_ECLOSED;
    int rc = SL_ENOMEM;
    sl_http_client_req_t *req = sl_calloc(1, sizeof(*req));
    if (!req)
        return SL_ENOMEM;
    req->cli = cli;
    req->cb = cb;
    req->on_header = r->on_header;
    req->ud = ud;
    sl_list_init(&req->link);
    req->easy = curl_easy_init();
    if (!req->easy)
        goto fail;

    /* Headers: the content type, no "Expect: 100-continue" round trip,
     * then the caller's. */
    char ct[256];
    struct curl_slist *h = NULL;
    if (r->content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", r->content_type);
        if (!(h = curl_slist_append(req->hdrs, ct)))
            goto fail;
        req->hdrs = h;
    }
    if (!(h = curl_slist_append(req->hdrs, "Expect:")))
        goto fail;
    req->hdrs = h;
    for (const char *const *p = r->headers; p && *p; p++) {
        if (!(h = curl_slist_append(req->hdrs, *p)))
            goto fail;
        req->hdrs = h;
    }

    uint64_t timeout_ms = r->timeout_ms ? r->timeout_ms : DEFAULT_TIMEOUT_MS;
    CURL *e = req->easy;
    CURLcode c = CURLE_OK;
    c = c ? c : curl_easy_setopt(e, CURLOPT_URL, r->url);
    c = c ? c : curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)req);
    c = c ? c : curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    c = c ? c : curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    c = c ? c : curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    c = c ? c : curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                                 (long)(timeout_ms < MAX_CONNECT_TIMEOUT_MS ? timeout_ms
                                                                            : MAX_CONNECT_TIMEOUT_MS));
    c = c ? c : curl_easy_setopt(e, CURLOPT_USERAGENT, cli->user_agent);
    c = c ? c : curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->hdrs);
    c = c ? c : curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    c = c ? c : curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    if (r->on_header) {
        c = c ? c : curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_head);
        c = c ? c : curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
    }
    c = c ? c : curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
    const char *method = r->method ? r->method : r->body ? "POST" : "GET";
    if (r->body || strcmp(method, "POST") == 0) {
        /* The size first: COPYPOSTFIELDS copies that many bytes. */
        c = c ? c : curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        c = c ? c : curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, r->body ? r->body : "");
    }
    if (strcmp(method, "GET") == 0 && !r->body)
        c = c ? c : curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "HEAD") == 0)
        c = c ? c : curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "POST") != 0)
        c = c ? c : curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (c != CURLE_OK) {
        rc = c == CURLE_OUT_OF_MEMORY ? SL_ENOMEM : SL_EINVAL;
        goto fail;
    }
    CURLMcode mc = curl_multi_add_handle(cli->multi, e);
    if (mc != CURLM_OK) {
        rc = mc == CURLM_OUT_OF_MEMORY ? SL_ENOMEM : SL_EIO;
        goto fail;
    }
    req->deadline_ms = uv_now(cli->loop) + timeout_ms + SWEEP_GRACE_MS;
    sl_list_push_back(&cli->reqs, &req->link);
    cli->n_reqs++;
    if (!uv_is_active((uv_handle_t *)&cli->sweep_timer))
        uv_timer_start(&cli->sweep_timer, on_sweep, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
    if (out)
        *out = req;
    return 0;
fail:
    if (req->easy)
        curl_easy_cleanup(req->easy);
    curl_slist_free_all(req->hdrs);
    sl_free(req);
    return rc;
}

int sl_http_client_post_json(sl_http_client_t *cli, const char *url, const char *json_body,
                             uint64_t timeout_ms, const char *const *headers,
                             sl_http_client_cb cb, void *ud, sl_http_client_req_t **out)
{
    /* "Accept: application/json" first, then the caller's headers. */
    const char *hdrs[32];
    size_t n = 0;
    hdrs[n++] = "Accept: application/json";
    for (const char *const *p = headers; p && *p; p++) {
        if (n == sizeof hdrs / sizeof *hdrs - 1) {
            if (out)
                *out = NULL;
            return SL_ETOOBIG;
        }
        hdrs[n++] = *p;
    }
    hdrs[n] = NULL;
    sl_http_client_request_t r = {
        .method = "POST",
        .url = url,
        .body = json_body ? json_body : "",
        .body_len = json_body ? strlen(json_body) : 0,
        .content_type = "application/json",
        .headers = hdrs,
        .timeout_ms = timeout_ms,
    };
    return sl_http_client_start(cli, &r, cb, ud, out);
}

void sl_http_client_cancel(sl_http_client_req_t *req)
{
    if (!req || req->done)
        return;
    sl_http_client_t *cli = req->cli;
    req_free(req);
    maybe_finish_close(cli);
}

size_t sl_http_client_pending(const sl_http_client_t *cli) { return cli->n_reqs; }

void sl_http_client_close(sl_http_client_t *cli, uint64_t drain_ms, sl_http_client_closed_cb closed_cb,
                          void *ud)
{
    if (cli->closing)
        return;
    cli->closing = 1;
    cli->closed_cb = closed_cb;
    cli->closed_ud = ud;
    if (drain_ms && cli->n_reqs)
        uv_timer_start(&cli->drain_timer, on_drain_timeout, drain_ms, 0);
    maybe_finish_close(cli);
}

void sl_http_client_free(sl_http_client_t *cli)
{
    if (!cli)
        return;
    if (cli->closed) {
        free_client(cli);
        return;
    }
    cli->free_on_close = 1;
    if (!cli->closing)
        sl_http_client_close(cli, 0, NULL, NULL);
    else if (!cli->finishing) {
        /* A drain was running: give it up. */
        uv_timer_stop(&cli->drain_timer);
        maybe_finish_close(cli);
    }
}
