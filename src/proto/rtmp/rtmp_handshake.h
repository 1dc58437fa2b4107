/*
 * The RTMP handshake (C0/C1/C2 and S0/S1/S2), both sides, as a pure state
 * machine over bytes: no sockets here, so it is unit-tested and fuzzed
 * directly and shared by the server and the native client library.
 *
 * Two variants are served: the plain handshake (S2 echoes C1) and the
 * "digest" (complex) handshake that Flash Player and Flash-era encoders use,
 * where C1 carries an HMAC-SHA256 digest at an offset given by one of two
 * schemes (schema 0: digest block after time+version; schema 1: key block
 * first), keyed with the Flash Player key, and the server answers with S1
 * digested by the FMS key and S2 digested by a key derived from C1's digest.
 * If C1's digest does not verify under either scheme the server falls back
 * to the plain handshake (what every real server does).
 *
 * Version byte: 3 (plain RTMP). Anything else in C0 is an error
 * (6/8 = RTMPE is refused).
 */
#ifndef SL_PROTO_RTMP_HANDSHAKE_H
#define SL_PROTO_RTMP_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define SL_RTMP_HS_SIZE 1536

typedef enum {
    SL_RTMP_HS_SERVER_WAIT_C0C1 = 0,
    SL_RTMP_HS_SERVER_WAIT_C2,
    SL_RTMP_HS_CLIENT_WAIT_S0S1S2,
    SL_RTMP_HS_DONE,
    SL_RTMP_HS_FAILED,
} sl_rtmp_hs_state_t;

typedef struct sl_rtmp_hs {
    sl_rtmp_hs_state_t state;
    int digest;                    /* 1 when the digest handshake was used */
    uint8_t own1[SL_RTMP_HS_SIZE]; /* the S1 (server) or C1 (client) we sent */
    uint8_t peer1_digest[32];      /* digest found in the peer's C1/S1 */
    uint8_t buf[1 + 2 * SL_RTMP_HS_SIZE]; /* input gathered so far */
    size_t have;                   /* bytes in buf */
    uint32_t peer_epoch;           /* timestamp field of the peer's packet 1 */
} sl_rtmp_hs_t;

/**
 * Server: initialises hs to wait for C0+C1. Never fails.
 */
void sl_rtmp_hs_server_init(sl_rtmp_hs_t *hs);

/**
 * Client: initialises hs and appends C0+C1 to out. digest selects the
 * Flash-style digest C1 (1) or a plain one (0). Returns 0 or a wbuf error.
 */
int sl_rtmp_hs_client_start(sl_rtmp_hs_t *hs, int digest, sl_wbuf_t *out);

/**
 * Feeds received bytes to either side. Consumes at most what the handshake
 * needs and reports it in *consumed (bytes after the handshake belong to
 * the chunk stream and must be handed on by the caller). Appends anything
 * to send to out (server: S0+S1+S2 once C0+C1 are in; client: C2 once
 * S0+S1+S2 are in).
 * Returns 0 when more input is needed, 1 when the handshake is complete,
 * SL_EPROTO on a bad version byte or malformed input (state FAILED),
 * or a wbuf error code.
 */
int sl_rtmp_hs_feed(sl_rtmp_hs_t *hs, const uint8_t *in, size_t n, size_t *consumed,
                    sl_wbuf_t *out);

#endif
