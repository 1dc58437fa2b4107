/*
 * The listener scaffold (see listener.h): listen, accept or shed, the sweep
 * and prepare handles, and the stop deadline, shared by the HTTP and the
 * RTMP servers so that each keeps only its protocol.
 */
#include "net/listener.h"

#include <string.h>

#include "base/log.h"
#include "sluice/errors.h"

int sl_listener_tcp_listen(uv_loop_t *loop, uv_tcp_t *h, void *data, uv_connection_cb cb,
                           const char *bind, int64_t port, int *opened)
{
    struct sockaddr_storage sa;
    *opened = 0;
    int rc = uv_ip4_addr(bind, (int)port, (struct sockaddr_in *)&sa);
    if (rc)
        rc = uv_ip6_addr(bind, (int)port, (struct sockaddr_in6 *)&sa);
    if (rc)
        return rc;
    uv_tcp_init(loop, h);
    h->data = data;
    *opened = 1;
    rc = uv_tcp_bind(h, (struct sockaddr *)&sa, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)h, 511, cb);
    if (rc)
        uv_close((uv_handle_t *)h, NULL);
    return rc;
}

static void on_handle_closed(uv_handle_t *h)
{
    sl_listener_t *l = h->data;
    l->handles_open--;
}

static void shed_one(sl_listener_t *l, int is_tls);

static void on_shed_closed(uv_handle_t *h)
{
    sl_listener_t *l = h->data;
    l->shed_busy = 0;
    l->handles_open--;
    int pending = l->shed_pending;
    l->shed_pending = 0;
    if ((pending & 1) && l->open[0]) {
        shed_one(l, 0);
        l->shed_pending |= pending & 2; /* the TLS listener's turn comes next */
    } else if ((pending & 2) && l->open[1]) {
        shed_one(l, 1);
    }
}

static void shed_one(sl_listener_t *l, int is_tls)
{
    if (l->shed_busy) {
        l->shed_pending |= is_tls ? 2 : 1;
        return;
    }
    uv_tcp_init(l->loop, &l->shed);
    l->shed.data = l;
    l->shed_busy = 1;
    l->handles_open++;
    uv_accept((uv_stream_t *)&l->tcp[is_tls], (uv_stream_t *)&l->shed);
    uv_close((uv_handle_t *)&l->shed, on_shed_closed);
}

void sl_listener_shed(sl_listener_t *l, int is_tls)
{
    if (l->open[is_tls ? 1 : 0])
        shed_one(l, is_tls ? 1 : 0);
}

static void on_connection(uv_stream_t *ls, int status)
{
    sl_listener_t *l = ls->data;
    int is_tls = ls == (uv_stream_t *)&l->tcp[1];
    const char *name = is_tls ? l->tls_name : l->name;
    if (status == UV_EMFILE || status == UV_ENFILE) {
        /* libuv has shed the waiting clients with its reserve descriptor. */
        uint64_t now = uv_now(l->loop);
        if (!l->emfile_log_ms[is_tls] || now - l->emfile_log_ms[is_tls] >= SL_LISTENER_EMFILE_LOG_MS) {
            l->emfile_log_ms[is_tls] = now;
            SL_LOGE(NULL, "%s: out of file descriptors (%s): refusing new clients", name,
                    uv_strerror(status));
        }
        return;
    }
    if (status < 0) {
        SL_LOGW(NULL, "%s accept failed: %s", name, uv_strerror(status));
        return;
    }
    l->ops->on_connection(l->ud, is_tls);
}

int sl_listener_accept(sl_listener_t *l, int is_tls, uv_tcp_t *client)
{
    return uv_accept((uv_stream_t *)&l->tcp[is_tls ? 1 : 0], (uv_stream_t *)client);
}

static void on_sweep(uv_timer_t *t)
{
    sl_listener_t *l = t->data;
    l->ops->on_sweep(l->ud, uv_now(l->loop));
}

static void on_prepare(uv_prepare_t *h)
{
    sl_listener_t *l = h->data;
    l->ops->on_prepare(l->ud);
}

static void on_stop_deadline(uv_timer_t *t)
{
    sl_listener_t *l = t->data;
    l->ops->on_deadline(l->ud);
}

int sl_listener_start(sl_listener_t *l, uv_loop_t *loop, const sl_listener_config_t *cfg,
                      const sl_listener_ops_t *ops, void *ud)
{
    memset(l, 0, sizeof(*l));
    l->loop = loop;
    l->ops = ops;
    l->ud = ud;
    l->name = cfg->name;
    l->tls_name = cfg->tls_name;
    l->tls_ctx = cfg->tls_ctx;
    l->stop_timeout_ms = cfg->stop_timeout_ms;
    int opened[2] = {0, 0};
    int rc = sl_listener_tcp_listen(loop, &l->tcp[0], l, on_connection, cfg->bind, cfg->port,
                                    &opened[0]);
    if (rc) {
        SL_LOGE(NULL, "%s: cannot listen on %s:%lld: %s", cfg->name, cfg->bind,
                (long long)cfg->port, sl_strerror(rc));
        goto fail;
    }
    if (l->tls_ctx) {
        rc = sl_listener_tcp_listen(loop, &l->tcp[1], l, on_connection, cfg->tls_bind,
                                    cfg->tls_port, &opened[1]);
        if (rc) {
            SL_LOGE(NULL, "%s: cannot listen on %s:%lld: %s", cfg->tls_name, cfg->tls_bind,
                    (long long)cfg->tls_port, sl_strerror(rc));
            goto fail;
        }
        l->open[1] = 1;
        l->handles_open++;
    }
    l->open[0] = 1;
    l->handles_open++;
    if (ops->on_prepare) {
        uv_prepare_init(loop, &l->prepare);
        l->prepare.data = l;
        uv_prepare_start(&l->prepare, on_prepare);
        l->handles_open++;
    }
    uv_timer_init(loop, &l->sweep);
    l->sweep.data = l;
    uv_timer_start(&l->sweep, on_sweep, cfg->sweep_ms, cfg->sweep_ms);
    uv_timer_init(loop, &l->stop_deadline);
    l->stop_deadline.data = l;
    l->handles_open += 2;
    return 0;
fail:
    /* Handles must be closed before their memory goes: run the loop once. */
    for (int i = 0; i < 2; i++)
        if (opened[i] && !uv_is_closing((uv_handle_t *)&l->tcp[i]))
            uv_close((uv_handle_t *)&l->tcp[i], NULL);
    if (opened[0] || opened[1])
        uv_run(loop, UV_RUN_NOWAIT);
    sl_tls_ctx_free(l->tls_ctx);
    l->tls_ctx = NULL;
    return rc;
}

sl_tls_ctx_t *sl_listener_tls(const sl_listener_t *l) { return l->tls_ctx; }

int sl_listener_port(const sl_listener_t *l, int is_tls)
{
    int i = is_tls ? 1 : 0;
    struct sockaddr_storage sa;
    int len = sizeof sa;
    if (!l || !l->open[i] || uv_tcp_getsockname(&l->tcp[i], (struct sockaddr *)&sa, &len) != 0)
        return -1;
    if (sa.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    return ntohs(((struct sockaddr_in *)&sa)->sin_port);
}

void sl_listener_stop(sl_listener_t *l)
{
    if (l->stopping)
        return;
    l->stopping = 1;
    for (int i = 0; i < 2; i++) {
        if (l->open[i]) {
            l->open[i] = 0;
            uv_close((uv_handle_t *)&l->tcp[i], on_handle_closed);
        }
    }
    uv_timer_start(&l->stop_deadline, on_stop_deadline, l->stop_timeout_ms, 0);
}

void sl_listener_idle(sl_listener_t *l)
{
    if (!l->stopping || l->timers_closing)
        return;
    l->timers_closing = 1;
    if (l->ops->on_prepare)
        uv_close((uv_handle_t *)&l->prepare, on_handle_closed);
    uv_close((uv_handle_t *)&l->sweep, on_handle_closed);
    uv_close((uv_handle_t *)&l->stop_deadline, on_handle_closed);
}

void sl_listener_cleanup(sl_listener_t *l)
{
    sl_tls_ctx_free(l->tls_ctx);
    l->tls_ctx = NULL;
}
