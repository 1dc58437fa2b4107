/*
 * SDP, shared by WebRTC and RTSP (media layer, so both protocols use one
 * parser). For the WHIP (RFC 9725) / WHEP endpoints: the offer parser, codec
 * picking, the answer writer, and the trickle-ICE / ICE-restart fragments
 * (RFC 8840) of the PATCH requests. sluice is an ICE-lite peer with one
 * transport for every m-line (BUNDLE + rtcp-mux only) that answers DTLS
 * with a=setup:passive; the offers come from Chrome, Firefox, Safari, aiortc
 * and GStreamer webrtcbin. The session logic of src/proto/webrtc sits on
 * top: it parses the offer, picks codecs, fills sl_sdp_answer_params_t and
 * writes the answer. For RTSP (src/proto/rtsp): sl_sdp_parse_description()
 * reads an ANNOUNCE body (no ICE or DTLS required; a=control kept). Pure functions over caller-owned memory: no
 * allocation, no global state, safe on any thread. Every parser is bounded
 * (text size, line length, m-lines, codecs, ssrcs) and never reads past
 * the length it is given; the text need not be NUL-terminated.
 */
#ifndef SL_MEDIA_SDP_H
#define SL_MEDIA_SDP_H

#include <stddef.h>
#include <stdint.h>

#define SL_SDP_MAX_TEXT 65536   /* largest offer or fragment accepted, bytes */
#define SL_SDP_MAX_LINE 4096    /* longest line accepted, bytes without CRLF */
#define SL_SDP_MAX_MEDIA 8      /* m-lines per offer (more is an error) */
#define SL_SDP_MAX_CODECS 48    /* payload types kept per m-line (the rest are ignored);
                                   Chromium 156 offers 34 for a recvonly video m-line */
#define SL_SDP_MAX_CONTROL 256 /* a=control URL, bytes with the NUL */
#define SL_SDP_MAX_SSRCS 8      /* primary SSRCs kept per m-line (the rest are ignored) */

/* Media kinds (sl_sdp_media_t.kind); 0 is any other ("text", "message"...). */
enum { SL_SDP_AUDIO = 1, SL_SDP_VIDEO = 2, SL_SDP_APPLICATION = 3 };
/* Directions (sl_sdp_media_t.direction), from the writer's point of view. */
enum { SL_SDP_SENDRECV, SL_SDP_SENDONLY, SL_SDP_RECVONLY, SL_SDP_INACTIVE };

#define SL_SDP_FB_NACK 1u  /* a=rtcp-fb:<pt> nack */
#define SL_SDP_FB_PLI 2u   /* a=rtcp-fb:<pt> nack pli */
#define SL_SDP_FB_FIR 4u   /* a=rtcp-fb:<pt> ccm fir */
#define SL_SDP_FB_REMB 8u  /* a=rtcp-fb:<pt> goog-remb */
#define SL_SDP_FB_TWCC 16u /* a=rtcp-fb:<pt> transport-cc */

/* One payload type of an m-line, as offered. */
typedef struct sl_sdp_codec {
    uint8_t pt;                /* payload type 0..127 */
    char name[16];             /* encoding name as written ("H264", "opus", "OPUS", "rtx"...);
                                  "" when neither rtpmap nor a static type names it */
    uint32_t clock;            /* clock rate, Hz (0 if unknown) */
    uint8_t channels;          /* audio channels (1 when the rtpmap gives none) */
    char fmtp[512];            /* raw fmtp parameters (H.265 sprop sets are long), "" if none; a longer value is cut at
                                  the last ';' that fits */
    unsigned fb;               /* SL_SDP_FB_* from a=rtcp-fb:<pt> and a=rtcp-fb:* */
    int rtx_pt;                /* payload type of its RTX (the rtx whose apt= names it), -1 if none */
    int apt;                   /* for an "rtx" codec: the payload type it repairs, -1 otherwise */
    /* H.264 only (from fmtp; RFC 6184 defaults when absent): */
    int packetization_mode;    /* 0 (default), 1 or 2 */
    uint32_t profile_level_id; /* 0xPPCCLL, 0x42000A when absent */
    int has_profile_level_id;  /* 1 when the fmtp gave one */
    int level_asymmetry;       /* level-asymmetry-allowed=1 */
} sl_sdp_codec_t;

/* One m-line of the offer. */
typedef struct sl_sdp_media {
    int kind;                  /* SL_SDP_AUDIO / VIDEO / APPLICATION, 0 for any other */
    char media_name[16];       /* the media token as written ("audio", "text"...) */
    int port;                  /* 0 = rejected (or bundle-only) by the offerer */
    int rejected;              /* port == 0 */
    char proto[32];            /* "UDP/TLS/RTP/SAVPF", "UDP/DTLS/SCTP", "DTLS/SCTP"... */
    char mid[33];              /* a=mid, "" if none */
    int direction;             /* SL_SDP_SENDRECV (default) ... the offerer's */
    int rtcp_mux;              /* a=rtcp-mux present */
    sl_sdp_codec_t codecs[SL_SDP_MAX_CODECS]; /* in offer order */
    int n_codecs;
    uint32_t ssrcs[SL_SDP_MAX_SSRCS];        /* primary SSRCs (RTX ones of FID groups left out) */
    int n_ssrcs;
    uint32_t rtx_ssrc_of[SL_SDP_MAX_SSRCS];  /* RTX SSRC of ssrcs[i] (a=ssrc-group:FID), 0 if none */
    char cname[64];            /* first a=ssrc:<n> cname: value */
    char msid[128];            /* a=msid value ("<stream> <track>"), else the a=ssrc msid: one */
    int ext_mid, ext_twcc, ext_abs_send_time, ext_sdes_rtp_stream_id; /* extmap ids, 0 = absent */
    int sctp_port;             /* application: a=sctp-port (or a=sctpmap / the m= format), 0 if none */
    uint32_t max_message_size; /* application: a=max-message-size, 0 if none */
    char ice_ufrag[257], ice_pwd[257];       /* media-level, falling back to session-level */
    char fingerprint_alg[16];  /* lower case, "sha-256" preferred when several are given */
    char fingerprint[200];     /* "AB:CD:..." as written */
    char setup[16];            /* "actpass", "active", "passive" */
    char control[SL_SDP_MAX_CONTROL]; /* a=control (RTSP track URL), "" if none */
} sl_sdp_media_t;

/* A parsed offer. About 130 KiB: allocate it, do not put it on a small stack. */
typedef struct sl_sdp {
    sl_sdp_media_t media[SL_SDP_MAX_MEDIA];
    int n_media;
    char bundle[SL_SDP_MAX_MEDIA][33]; /* a=group:BUNDLE mids, in order */
    int n_bundle;
    int ice_lite;                      /* a=ice-lite */
    int ice_trickle;                   /* a=ice-options: with "trickle" (session or any media) */
    char ice_ufrag[257], ice_pwd[257]; /* session's, else the first media's */
    char fingerprint_alg[16];
    char fingerprint[200];
    char setup[16];
    char control[SL_SDP_MAX_CONTROL];  /* session-level a=control (RTSP), "" if none */
} sl_sdp_t;

/*
 * Parses the offer text[0..len) (CRLF or LF line ends; the text need not
 * be NUL-terminated) into *out, which is overwritten. Bounds: len at most
 * SL_SDP_MAX_TEXT, lines at most SL_SDP_MAX_LINE, SL_SDP_MAX_MEDIA m-lines;
 * payload types past SL_SDP_MAX_CODECS and SSRCs past SL_SDP_MAX_SSRCS are
 * ignored, as are unknown attributes and line types. The offer must start
 * with v=0, hold at least one m-line and, after the media-to-session
 * fallback, an ICE ufrag, password and fingerprint.
 * Returns 0, or SL_EPROTO with a one-line reason written to err (err_cap
 * bytes, may be 0), e.g. "line 12: m= without port", fit for a 400 body.
 * *out is then partly filled and must not be used.
 */
int sl_sdp_parse(const char *text, size_t len, sl_sdp_t *out, char *err, size_t err_cap);

/*
 * Parses any session description (an RTSP ANNOUNCE body) with the same
 * bounds, rules and errors as sl_sdp_parse() but without the WebRTC
 * transport requirements (ICE ufrag/password, fingerprint): v=0 first and
 * at least one m-line. Returns 0 or SL_EPROTO with a reason in err.
 */
int sl_sdp_parse_description(const char *text, size_t len, sl_sdp_t *out, char *err, size_t err_cap);

/*
 * Picks the video codec of m: the first "H264" with packetization-mode=1
 * whose profile_idc (top byte of profile-level-id) is want_profile_idc
 * (0x42 baseline / constrained baseline, 0x4d main, 0x64 high; 0 = any),
 * else the first H264 with packetization-mode=1 of any profile, else the
 * first "VP8" when allow_vp8. Names are compared without regard to case.
 * Returns the index in m->codecs, or -1 when none fits.
 */
int sl_sdp_pick_video(const sl_sdp_media_t *m, uint8_t want_profile_idc, int allow_vp8);

/*
 * H.264 profiles as RFC 6184 8.1 and libwebrtc tell them apart: a
 * profile-level-id (0xPPCCLL: profile_idc, the constraint_set flags byte
 * "profile-iop", level_idc) names one of these. Constrained Baseline is
 * 0x42 with constraint_set1, 0x4D with constraint_set0, or 0x58 with both;
 * Constrained High is 0x64 with constraint_set4 and constraint_set5.
 */
enum {
    SL_H264_P_UNKNOWN = 0, /* any other profile_idc (SVC, MVC, CAVLC 4:4:4...) */
    SL_H264_P_CB,          /* Constrained Baseline */
    SL_H264_P_BASELINE,    /* Baseline (may use FMO / ASO / redundant slices) */
    SL_H264_P_EXTENDED,    /* Extended */
    SL_H264_P_MAIN,        /* Main */
    SL_H264_P_CHIGH,       /* Constrained High */
    SL_H264_P_HIGH,        /* High */
    SL_H264_P_HIGH10,      /* High 10 */
    SL_H264_P_HIGH422,     /* High 4:2:2 */
    SL_H264_P_HIGH444,     /* High 4:4:4 Predictive */
};

/* The SL_H264_P_* of a profile-level-id (0xPPCCLL). */
int sl_sdp_h264_profile(uint32_t profile_level_id);

/* A short English name of an SL_H264_P_* ("Constrained Baseline"...). */
const char *sl_sdp_h264_profile_name(int profile);

/*
 * The level of a profile-level-id on a scale that orders every level:
 * 2 * level_idc, with level 1b (level_idc 11 and constraint_set3 in the
 * Baseline, Main and Extended profiles, or level_idc 9) as 21, between 1
 * (20) and 1.1 (22).
 */
int sl_sdp_h264_level_rank(uint32_t profile_level_id);

/*
 * Whether a decoder of the offered profile-level-id's profile decodes every
 * bitstream of the stream's profile (RFC 6184 8.1: a Constrained Baseline
 * stream conforms to Baseline, Main, Extended and the High profiles; Main
 * to High and above; High to High 10 and above...). Levels are not looked at.
 * For a stream of an unknown profile only the same profile_idc decodes it.
 */
int sl_sdp_h264_decodes(uint32_t offered, uint32_t stream);

/*
 * Picks the H.264 format of m that a WHEP viewer gets a stream of
 * profile-level-id stream_plid with (from its AVCDecoderConfigurationRecord:
 * AVCProfileIndication, profile_compatibility, AVCLevelIndication): among
 * the packetization-mode=1 formats whose profile decodes the stream
 * (sl_sdp_h264_decodes), first one whose level is at least the stream's,
 * then the closest profile (Constrained Baseline for a Constrained Baseline
 * stream before High), then offer order. A format of a lower level than the
 * stream is still taken when no other fits: browsers offer level 3.1 for
 * every profile and decode 1080p (level 4) streams with it; *level_ok
 * (may be NULL) tells the caller so that it can log it. The offered level
 * bounds what the viewer receives with or without level-asymmetry-allowed
 * (RFC 6184 8.2.2): the answer echoes the chosen format's profile-level-id,
 * so the lower of the two levels is the offered one.
 * Returns the index in m->codecs, or -1 when no format decodes the stream.
 */
int sl_sdp_pick_h264(const sl_sdp_media_t *m, uint32_t stream_plid, int *level_ok);

/*
 * Picks the H.264 format of m for a WHIP publisher: a packetization-mode=1
 * format of the Constrained Baseline profile, else Baseline, else the first
 * packetization-mode=1 H.264. Constrained Baseline is what every H.264
 * decoder takes (every browser's WHEP offer, Flash-era RTMP players, any
 * HLS device) and it has no B-frames, which WebRTC receivers do not
 * reorder. Returns the index in m->codecs or -1.
 */
int sl_sdp_pick_h264_publish(const sl_sdp_media_t *m);

/*
 * Writes the profile-level-ids of m's H.264 formats ("42e01f/1, 640c1f/0",
 * each with its packetization-mode) into out (cap bytes, NUL-terminated,
 * cut when full), for refusal messages. Returns out.
 */
char *sl_sdp_h264_list(const sl_sdp_media_t *m, char *out, size_t cap);

/* Picks "opus"/48000/2 in m (any case). Returns the index in m->codecs or -1. */
int sl_sdp_pick_audio(const sl_sdp_media_t *m);

/* One of our ICE candidates (host only; TCP ones are "tcptype passive"). */
typedef struct sl_sdp_candidate {
    char foundation[33]; /* 1..32 ice-chars */
    int component;       /* 1 (rtcp-mux) */
    int is_tcp;          /* 0 = udp, 1 = tcp passive */
    uint32_t priority;
    char addr[64];       /* IPv4 or IPv6 literal */
    int port;
} sl_sdp_candidate_t;

/* Our answer to one offer m-line; one per offer m-line, same order. */
typedef struct sl_sdp_answer_media {
    int accept;                 /* 0 = reject (port 0, a=inactive) */
    int codec_idx;              /* audio/video: chosen codec (index in the offer's m->codecs),
                                   answered with its rtx if it has one; ignored for application */
    int direction;              /* ours: SL_SDP_RECVONLY for WHIP, SL_SDP_SENDONLY for WHEP */
    uint32_t ssrc, rtx_ssrc;    /* ours when sending, 0 otherwise (rtx_ssrc needs an rtx codec) */
    const char *msid_stream;    /* ours when sending (NULL = no msid lines) */
    const char *msid_track;
} sl_sdp_answer_media_t;

/* Everything sl_sdp_answer needs beyond the offer. All strings are borrowed. */
typedef struct sl_sdp_answer_params {
    const char *ice_ufrag, *ice_pwd; /* ours (ICE-lite) */
    const char *fingerprint_sha256;  /* our certificate's, "AB:CD:..." */
    const sl_sdp_candidate_t *cands; /* our host candidates (may be NULL when n_cands is 0) */
    int n_cands;
    const char *cname;               /* our RTCP CNAME when sending (NULL = "sluice") */
    sl_sdp_answer_media_t media[SL_SDP_MAX_MEDIA];
    uint64_t session_id;             /* o= session id */
    uint32_t max_message_size;       /* a=max-message-size of data channels (0 = 262144) */
} sl_sdp_answer_params_t;

/*
 * Writes the answer to offer into out (cap bytes): v=/o=/s=/t=, a=ice-lite,
 * a=group:BUNDLE of the accepted mids, a=msid-semantic; then per offer
 * m-line, in order: rejected ones as "m=<media> 0 <proto> <fmt>" +
 * a=inactive; accepted audio/video with c=, mid, ice-ufrag/pwd, fingerprint
 * sha-256, setup:passive, direction, rtcp-mux, rtcp-rsize, the extmaps we
 * support (mid, transport-wide-cc, abs-send-time) with the offer's ids,
 * only the chosen codec (+ its rtx) with rtpmap/fmtp (the offer's fmtp
 * echoed) and the rtcp-fb lines both sides support, our ssrc/msid lines
 * when ssrc is set, the candidates and a=end-of-candidates; accepted
 * application m-lines with sctp-port 5000 + max-message-size (p's, or
 * 262144 when 0; the largest data channel message we take) (or
 * the old a=sctpmap form when the offer used "DTLS/SCTP"). An m-line
 * without a mid, with a port of 0, of another kind, audio/video without
 * a=rtcp-mux in the offer, or whose codec_idx is out of range is rejected
 * whatever accept says. Everything shares one transport, so when the offer
 * has a BUNDLE group only its members are accepted, and when it has none
 * only the first acceptable m-line is (and no a=group line is written).
 * CRLF line ends.
 * Returns the length written (out NUL-terminated), SL_ETOOBIG when cap is
 * too small, SL_EINVAL when a parameter is missing or holds a CR, LF or
 * space where none may be.
 */
int sl_sdp_answer(const sl_sdp_t *offer, const sl_sdp_answer_params_t *p, char *out, size_t cap);

/* What a trickle-ICE / ICE-restart fragment (RFC 8840 sdpfrag) holds. */
typedef struct sl_sdp_frag {
    char ice_ufrag[257], ice_pwd[257]; /* "" when absent (no restart) */
    int n_candidates;                  /* a=candidate lines */
    int end_of_candidates;             /* a=end-of-candidates seen */
} sl_sdp_frag_t;

/*
 * Parses the body of a WHIP/WHEP PATCH (application/trickle-ice-sdpfrag):
 * a=ice-ufrag, a=ice-pwd, a=candidate (counted, checked for at least the
 * six fields up to "typ") and a=end-of-candidates; a=group, a=mid, m= and
 * other lines are ignored. Same bounds as sl_sdp_parse. A new ufrag
 * without a pwd, or the reverse, is an error.
 * Returns 0 or SL_EPROTO with a one-line reason in err.
 */
int sl_sdp_parse_frag(const char *text, size_t len, sl_sdp_frag_t *out, char *err, size_t err_cap);

/*
 * Writes the answer fragment to an ICE restart: a=ice-lite, our new
 * a=ice-ufrag / a=ice-pwd and, when n > 0, the dummy "m=audio 9 RTP/AVP 0"
 * of RFC 8840 with a=mid:<mid> (the first bundled mid; required when n > 0)
 * followed by the n candidates c[] and a=end-of-candidates.
 * Returns the length written (NUL-terminated), SL_ETOOBIG or SL_EINVAL.
 */
int sl_sdp_frag_answer(const char *ufrag, const char *pwd, const char *mid,
                       const sl_sdp_candidate_t *c, int n, char *out, size_t cap);

#endif
