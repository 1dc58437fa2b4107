/*
 * The WebRTC protocol's entry in the protocol table (proto/proto.h):
 * WHIP publish and WHEP play over one UDP port (and ICE-TCP), DTLS-SRTP and
 * data channels, bridged with every other protocol through the hub. See
 * webrtc_internal.h for how its files divide the work, and
 * docs/webrtc.md for what clients see.
 */
#ifndef SL_PROTO_WEBRTC_WEBRTC_H
#define SL_PROTO_WEBRTC_WEBRTC_H

#include "proto/proto.h"

extern const sl_proto_t sl_webrtc_proto;

#endif
