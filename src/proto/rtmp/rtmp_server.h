/*
 * The RTMP listener: accepts TCP connections on rtmp.bind:rtmp.port and
 * runs one RTMP connection (rtmp_conn.h) per client on the loop.
 */
#ifndef SL_PROTO_RTMP_SERVER_H
#define SL_PROTO_RTMP_SERVER_H

#include "app/core.h"

typedef struct sl_rtmp_server sl_rtmp_server_t;

/**
 * Binds and starts listening. Returns 0 and the server in *out, or a libuv
 * error (e.g. UV_EADDRINUSE) with nothing left open.
 */
int sl_rtmp_server_start(sl_core_t *core, sl_rtmp_server_t **out);
/**
 * Graceful stop: closes the listener, tells every client that its stream
 * is closing, and closes every connection once its pending writes are out
 * (or the shutdown deadline passes). The loop then runs dry; call
 * sl_rtmp_server_free afterwards.
 */
void sl_rtmp_server_stop(sl_rtmp_server_t *srv);
/** Frees the server after the loop has closed all its handles. */
void sl_rtmp_server_free(sl_rtmp_server_t *srv);
/** Number of open RTMP connections. */
size_t sl_rtmp_server_connections(const sl_rtmp_server_t *srv);

#endif
