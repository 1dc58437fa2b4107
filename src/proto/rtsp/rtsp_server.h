/*
 * The RTSP server (RFC 2326): one protocol "rtsp" in the protocol table
 * (rtsp_proto.c), RTSP on rtsp.port and RTSPS on rtsp.tls_port through the
 * same TLS filter as RTMPS (base/tls.h, net/listener.h).
 *
 * A connection carries one session at a time. Publish: OPTIONS, ANNOUNCE
 * (SDP: H.264, H.265, AAC mpeg4-generic, Opus, PCMA/PCMU), SETUP per track
 * with mode=record, RECORD; its RTP becomes frames of a hub stream, so
 * every other protocol plays it. Play: DESCRIBE (an SDP made from the
 * stream's codecs), SETUP, PLAY, PAUSE; the RTP payloads of a frame are
 * built once and shared by every player (the frame cache, media/rtp.h).
 * RTP travels interleaved on the connection ($ framing) or over UDP on a
 * server port pair per track from rtsp.udp_port_min..udp_port_max. RTCP:
 * sender reports to players, receiver reports to publishers. Admission
 * (transport "rtsp"): credentials from Basic or Digest Authorization, Red5's
 * `;username=..;password=..;token=..;` path parameters, or the query.
 *
 * Loop thread only.
 */
#ifndef SL_PROTO_RTSP_RTSP_SERVER_H
#define SL_PROTO_RTSP_RTSP_SERVER_H

#include "app/core.h"
#include "proto/proto.h"

typedef struct sl_rtsp_server sl_rtsp_server_t;

/** The protocol table's entry (rtsp_proto.c). */
extern const sl_proto_t sl_rtsp_proto;

/**
 * Starts the listeners (RTSPS too when rtsp.tls_port and a certificate are
 * set). Returns 0 and the server (owned: sl_rtsp_server_free after the
 * loop closed its handles), or a libuv / SL_E* error after logging why.
 */
int sl_rtsp_server_start(sl_core_t *core, sl_rtsp_server_t **out);
/** The port RTSP (is_tls 0) or RTSPS (1) listens on, -1 when not listening. */
int sl_rtsp_server_port(const sl_rtsp_server_t *srv, int is_tls);
/** Stops accepting and closes every connection (sessions end with their events). */
void sl_rtsp_server_stop(sl_rtsp_server_t *srv);
/** Frees the server (NULL is ignored). */
void sl_rtsp_server_free(sl_rtsp_server_t *srv);
/** 1 when RTSPS should open (tls_port set and a certificate configured, own or http's). */
int sl_rtsp_server_tls_enabled(const sl_config_t *cfg);
/** Checks the RTSPS certificate loads: 0, or SL_EINVAL with a sentence in err. */
int sl_rtsp_server_tls_check(const sl_config_t *cfg, char *err, size_t err_cap);

#endif
