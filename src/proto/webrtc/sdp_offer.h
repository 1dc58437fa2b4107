/*
 * The server's SDP offer, for the one case where sluice offers: a viewer
 * of Red5's WebSocket signalling (webrtc_ws.c) asks with `requestOffer`
 * and answers what the server proposes. The offer is what an ICE-lite,
 * BUNDLE-only, rtcp-mux-only sender can keep: one transport, our
 * ufrag/pwd and certificate fingerprint, a=setup:actpass (the viewer picks
 * the DTLS role in its answer), sendonly H.264 (packetization-mode 1, the
 * stream's profile-level-id when known) with its RTX, sendonly Opus
 * 48000/2, and an SCTP application m-line for the `red5pro` data channel
 * when asked. The answer is then parsed with sl_sdp_parse (it is an SDP
 * like any other) and handed to the session code as an "offer": the codecs
 * it kept are ours, so the usual picking finds them. Pure function over
 * caller-owned memory, like sdp.c.
 */
#ifndef SL_PROTO_WEBRTC_SDP_OFFER_H
#define SL_PROTO_WEBRTC_SDP_OFFER_H

#include <stddef.h>
#include <stdint.h>

#include "media/sdp.h"

/* What the server offers to a viewer. Strings are borrowed. */
typedef struct sl_sdp_offer_params {
    const char *ice_ufrag, *ice_pwd;    /* ours (ICE-lite) */
    const char *fingerprint_sha256;     /* our certificate's, "AB:CD:..." */
    const sl_sdp_candidate_t *cands;    /* our host candidates */
    int n_cands;
    const char *cname;                  /* RTCP CNAME (NULL = "sluice") */
    uint64_t session_id;                /* o= session id */
    int video;                          /* offer an H.264 m-line */
    uint8_t video_pt, video_rtx_pt;     /* payload types (rtx 0 = none) */
    uint32_t video_ssrc;                /* ours, 0 = no ssrc lines */
    uint32_t profile_level_id;          /* 0xPPCCLL; 0 = 42e01f (constrained baseline 3.1) */
    /* A second H.264 payload type (0 = none), offered after the first: the
     * stream's profile first and constrained baseline as a fallback for
     * answerers that take only that one (aiortc); the bytes are the same. */
    uint8_t video_pt2, video_rtx_pt2;
    uint32_t profile_level_id2;
    int audio;                          /* offer an Opus m-line */
    uint8_t audio_pt;
    uint32_t audio_ssrc;
    int datachannel;                    /* offer an SCTP application m-line */
    int ext_mid;                        /* extmap id of sdes:mid, 0 = none */
} sl_sdp_offer_params_t;

/*
 * Writes the offer into out (cap bytes, CRLF line ends, NUL-terminated):
 * m-lines in the order video, audio, application (those asked for), mids
 * "0", "1", "2" in that order of those present, every one in one BUNDLE
 * group. Returns the length, SL_ETOOBIG when cap is too small, SL_EINVAL
 * when nothing is offered or a string is missing or holds a CR, LF or
 * space.
 */
int sl_sdp_offer(const sl_sdp_offer_params_t *p, char *out, size_t cap);

#endif
