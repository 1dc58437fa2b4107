/*
 * The listener scaffold every TCP server of sluice stands on (the HTTP and
 * the RTMP servers today): the plain listener and, with a TLS context, a
 * second one whose connections run through a TLS filter (base/tls.h);
 * shedding a client that cannot be served; the periodic sweep timer; the
 * flush-before-sleep prepare handle; and the stop deadline
 * (server.shutdown_timeout) that forces the last connections closed.
 *
 * It sits at base's level (src/net: base, libuv and OpenSSL only) and knows
 * nothing of a protocol: the server embeds an sl_listener_t, fills an
 * sl_listener_ops_t, and keeps its connections, timeouts and protocol to
 * itself. The order of a stop is the server's: sl_listener_stop closes the
 * listeners and arms the deadline, the server winds its connections down,
 * and calls sl_listener_idle when the last one is gone, which closes the
 * timers.
 *
 * Shedding: a client the server cannot take (out of memory for its
 * connection) must still be taken off the listener, or libuv stops
 * watching it until someone calls uv_accept and the server never accepts
 * again. sl_listener_shed accepts it into a handle kept for this
 * (uv_tcp_init allocates nothing) and closes it at once; one that arrives
 * while that handle is closing waits for its close callback. Out of file
 * descriptors (EMFILE/ENFILE), libuv itself accepts and closes the waiting
 * clients with a reserve descriptor and reports the error: the scaffold
 * logs it at most once per SL_LISTENER_EMFILE_LOG_MS, so a flood does not
 * also flood the log.
 *
 * Loop thread only.
 */
#ifndef SL_NET_LISTENER_H
#define SL_NET_LISTENER_H

#include <stdint.h>

#include <uv.h>

#include "base/tls.h"

/** At most one "out of file descriptors" line per this many ms and listener. */
#define SL_LISTENER_EMFILE_LOG_MS 10000

typedef struct sl_listener sl_listener_t;

/** What a server hands the scaffold (every callback gets the server's ud). */
typedef struct sl_listener_ops {
    /**
     * A client waits on the plain (is_tls 0) or the TLS listener: create
     * the connection and take it with sl_listener_accept, or call
     * sl_listener_shed when it cannot be served.
     */
    void (*on_connection)(void *ud, int is_tls);
    /** The sweep timer ticked (now: the loop time, ms). */
    void (*on_sweep)(void *ud, uint64_t now_ms);
    /** Before the loop sleeps (flush what was queued this turn); NULL = no prepare handle. */
    void (*on_prepare)(void *ud);
    /** The stop deadline passed with connections still open: close them all now. */
    void (*on_deadline)(void *ud);
} sl_listener_ops_t;

/** Where and how to listen (strings borrowed for the call). */
typedef struct sl_listener_config {
    const char *name;          /* for the log: "http", "rtmp" */
    const char *tls_name;      /* "https", "rtmps" */
    const char *bind;          /* plain listener address (IPv4 or IPv6 text) */
    int64_t port;              /* 0 = any free port */
    const char *tls_bind;      /* TLS listener address, when tls_ctx */
    int64_t tls_port;
    sl_tls_ctx_t *tls_ctx;     /* taken (freed by sl_listener_cleanup, or here on failure);
                                * NULL = no TLS listener */
    uint64_t sweep_ms;         /* the sweep period */
    uint64_t stop_timeout_ms;  /* server.shutdown_timeout: from stop to the deadline */
} sl_listener_config_t;

struct sl_listener {
    uv_loop_t *loop;
    const sl_listener_ops_t *ops;
    void *ud;
    const char *name, *tls_name; /* borrowed static strings */
    uv_tcp_t tcp[2];           /* [0] plain, [1] TLS */
    int open[2];               /* tcp[i] listens */
    sl_tls_ctx_t *tls_ctx;     /* owned; outlives every TLS connection */
    uv_prepare_t prepare;      /* flushes before the loop sleeps (ops->on_prepare) */
    uv_timer_t sweep;          /* ops->on_sweep every sweep_ms */
    uv_timer_t stop_deadline;  /* ops->on_deadline stop_timeout_ms after stop */
    uint64_t stop_timeout_ms;
    uv_tcp_t shed;             /* accepts and closes a client we cannot serve */
    int shed_busy;             /* shed is closing */
    int shed_pending;          /* clients wait to be shed: bit 0 on tcp[0], bit 1 on tcp[1] */
    uint64_t emfile_log_ms[2]; /* loop time of the last EMFILE line, per listener */
    int handles_open;          /* handles not closed yet (0 once everything is closed) */
    int stopping;              /* sl_listener_stop was called */
    int timers_closing;        /* sl_listener_idle closed prepare and timers */
};

/**
 * Binds and listens on bind:port (IPv4 or IPv6 text) with handle h,
 * initialised here with h->data = data; accepts go to cb. On failure after
 * the handle was initialised, h is closed (its memory must stay until the
 * loop has run) and *opened says whether that happened. 0 or a libuv error.
 * Every listener opens through this (sl_listener_start uses it).
 */
int sl_listener_tcp_listen(uv_loop_t *loop, uv_tcp_t *h, void *data, uv_connection_cb cb,
                           const char *bind, int64_t port, int *opened);
/**
 * Starts the scaffold in l (caller-allocated, zeroed or not): the
 * listeners, the sweep timer, the prepare handle (when ops->on_prepare)
 * and the (unarmed) stop deadline. ops is borrowed for l's life. On
 * failure the reason (address and port) is logged, nothing stays open
 * (the loop is run once to close what was), cfg->tls_ctx is freed, and a
 * libuv error is returned.
 */
int sl_listener_start(sl_listener_t *l, uv_loop_t *loop, const sl_listener_config_t *cfg,
                      const sl_listener_ops_t *ops, void *ud);
/**
 * Accepts the waiting client of listener is_tls into client (initialised
 * by the caller with uv_tcp_init). 0 or a libuv error.
 */
int sl_listener_accept(sl_listener_t *l, int is_tls, uv_tcp_t *client);
/** Takes the waiting client of listener is_tls off it and closes it (see above). */
void sl_listener_shed(sl_listener_t *l, int is_tls);
/** The TLS context (borrowed, for sl_tls_new), or NULL without TLS. */
sl_tls_ctx_t *sl_listener_tls(const sl_listener_t *l);
/** The port listener is_tls is bound to, or -1 when it is not listening. */
int sl_listener_port(const sl_listener_t *l, int is_tls);
/**
 * Stops accepting: closes the listeners and arms the stop deadline
 * (ops->on_deadline runs once it passes, unless sl_listener_idle came
 * first). Idempotent.
 */
void sl_listener_stop(sl_listener_t *l);
/**
 * The server has no connection left after a stop: closes the prepare
 * handle and the timers. No-op before sl_listener_stop and after the first
 * call.
 */
void sl_listener_idle(sl_listener_t *l);
/** Frees the TLS context; call once every handle is closed (the loop ran after the stop). */
void sl_listener_cleanup(sl_listener_t *l);

#endif
