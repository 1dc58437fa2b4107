/*
 * The RTMP listener: accepts TCP connections on rtmp.bind:rtmp.port and
 * runs one RTMP connection (rtmp_conn.h) per client on the loop. With a
 * certificate (rtmp.tls_cert/tls_key, else http.tls_cert/tls_key) a second
 * listener on rtmp.tls_bind:rtmp.tls_port accepts RTMPS: the same
 * connections with a TLS filter (base/tls.h) at their socket edge, session
 * protocol "rtmps", admitted as transport "rtmp".
 */
#ifndef SL_PROTO_RTMP_SERVER_H
#define SL_PROTO_RTMP_SERVER_H

#include "app/core.h"

typedef struct sl_rtmp_server sl_rtmp_server_t;

/**
 * Binds and starts listening (RTMP, and RTMPS when configured). Returns 0
 * and the server in *out, or an error with nothing left open: a libuv
 * error (e.g. UV_EADDRINUSE) or SL_EINVAL for a certificate that cannot be
 * loaded; the reason (address and port, or file and cause) is logged.
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
/**
 * A reload installed cfg (main loop): the write timers (media.write_merge,
 * media.audio_hold) restart with the new values, here and, by one message
 * each, on every worker loop, whose players also take the new
 * media.slow_disconnect for their stall check. What the old timers held
 * back is flushed first.
 */
void sl_rtmp_server_reload(sl_rtmp_server_t *srv, const sl_config_t *cfg);
/** RTMP's line in the protocol table (rtmp_proto.c; proto/proto.h): "rtmp" and RTMPS. */
extern const struct sl_proto sl_rtmp_proto;
/** Number of open RTMP connections. */
size_t sl_rtmp_server_connections(const sl_rtmp_server_t *srv);

/**
 * 1 when the config asks for RTMPS: rtmp.tls_port is not 0 and a
 * certificate or key is named (rtmp.tls_cert/tls_key, or failing both,
 * http.tls_cert/tls_key). The files are checked by sl_rtmp_server_tls_check.
 */
int sl_rtmp_server_tls_enabled(const sl_config_t *cfg);
/**
 * The certificate and key files RTMPS uses (borrowed from cfg, "" when not
 * set): rtmp's pair when either of it is set, otherwise http's.
 */
void sl_rtmp_server_tls_files(const sl_config_t *cfg, const char **cert, const char **key);
/** The RTMPS listen address: rtmp.tls_bind, or rtmp.bind when that is empty (borrowed). */
const char *sl_rtmp_server_tls_bind(const sl_config_t *cfg);
/**
 * Loads the RTMPS certificate and key once and lets them go, so that
 * --check-config and the start report a bad file the same way. 0 (also
 * when RTMPS is off), or SL_EINVAL / SL_ENOMEM with a sentence in err.
 */
int sl_rtmp_server_tls_check(const sl_config_t *cfg, char *err, size_t err_cap);
/** The port RTMPS listens on, or -1 when it does not. */
int sl_rtmp_server_tls_port(const sl_rtmp_server_t *srv);

#endif
