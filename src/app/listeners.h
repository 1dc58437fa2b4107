/*
 * The listeners table: every socket a protocol listens on, announced by
 * the protocol when it opens it (name, address, port, TLS), so that parts
 * that print or report addresses (the Server API's server information, a
 * console, the startup log) read one table instead of each protocol's
 * configuration or headers. RTMP announces "rtmp" (and "rtmp" with tls for
 * RTMPS), HTTP "http" (and "http" with tls for HTTPS); a future RTSP, SRT
 * or WebRTC listener announces itself the same way and is reported
 * without a change elsewhere. Loop thread only.
 */
#ifndef SL_APP_LISTENERS_H
#define SL_APP_LISTENERS_H

typedef struct sl_core sl_core_t;

#define SL_LISTENER_NAME_MAX 15 /* longest protocol name, in bytes */

typedef struct sl_listener_info {
    char name[SL_LISTENER_NAME_MAX + 1]; /* protocol: "rtmp", "http", ... */
    char bind[64];                       /* the listen address as configured */
    int port;                            /* the port actually listened on */
    int tls;                             /* 1: TLS on this socket (rtmps, https) */
    int udp;                             /* 1: a UDP socket (SRT, WebRTC media), else TCP */
} sl_listener_info_t;

/**
 * Announces a listener (copied). A second announcement of the same name
 * and tls replaces the first. 0, SL_EINVAL (name empty or too long, port
 * out of range) or SL_ENOMEM.
 */
int sl_listeners_announce(sl_core_t *core, const char *name, const char *bind, int port, int tls,
                         int udp);
/** The port of the listener name (tls: its TLS one), or -1 when none was announced. */
int sl_listeners_port(const sl_core_t *core, const char *name, int tls);
/** Calls each(arg, info) for every listener in announcement order (info borrowed for the call). */
void sl_listeners_each(const sl_core_t *core,
                       void (*each)(void *arg, const sl_listener_info_t *info), void *arg);
/** Frees the table (sl_core_cleanup calls it). */
void sl_listeners_cleanup(sl_core_t *core);

#endif
