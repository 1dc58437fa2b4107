/*
 * The server-made SDP offer for WebSocket viewers (see sdp_offer.h): the
 * counterpart of sl_sdp_answer in sdp.c, written with the same attribute
 * set so that both directions of negotiation look alike on the wire.
 */
#include "proto/webrtc/sdp_offer.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sluice/errors.h"

typedef struct wbuf {
    char *p;
    size_t cap, len;
    int err;
} wbuf_t;

static void put(wbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(wbuf_t *b, const char *fmt, ...)
{
    if (b->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        b->err = SL_ETOOBIG;
        return;
    }
    b->len += (size_t)n;
}

/* A token that may go on an SDP line: non-empty, no CR, LF or space. */
static int token_ok(const char *s)
{
    return s && *s && !strpbrk(s, "\r\n ");
}

/* The transport lines every m-line repeats (BUNDLE keeps one transport). */
static void transport(wbuf_t *b, const sl_sdp_offer_params_t *p, const char *mid)
{
    put(b, "c=IN IP4 0.0.0.0\r\n");
    put(b, "a=mid:%s\r\n", mid);
    put(b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\n", p->ice_ufrag, p->ice_pwd);
    put(b, "a=fingerprint:sha-256 %s\r\n", p->fingerprint_sha256);
    put(b, "a=setup:actpass\r\n");
}

static void candidates(wbuf_t *b, const sl_sdp_offer_params_t *p)
{
    for (int i = 0; i < p->n_cands; i++) {
        const sl_sdp_candidate_t *c = &p->cands[i];
        put(b, "a=candidate:%s %d %s %u %s %d typ host%s\r\n", c->foundation, c->component,
            c->is_tcp ? "tcp" : "udp", c->priority, c->addr, c->port, c->is_tcp ? " tcptype passive" : "");
    }
    put(b, "a=end-of-candidates\r\n");
}

static void ssrc_lines(wbuf_t *b, uint32_t ssrc, const char *cname, const char *track)
{
    put(b, "a=msid:sluice %s\r\n", track);
    if (!ssrc)
        return;
    put(b, "a=ssrc:%u cname:%s\r\n", ssrc, cname);
    put(b, "a=ssrc:%u msid:sluice %s\r\n", ssrc, track);
}

/* One H.264 payload type (packetization-mode 1) and its RTX. */
static void h264_lines(wbuf_t *b, uint8_t pt, uint8_t rtx_pt, uint32_t plid)
{
    plid = plid ? plid : 0x42e01f;
    put(b, "a=rtpmap:%u H264/90000\r\n", pt);
    put(b, "a=rtcp-fb:%u nack\r\na=rtcp-fb:%u nack pli\r\na=rtcp-fb:%u ccm fir\r\na=rtcp-fb:%u goog-remb\r\n",
        pt, pt, pt, pt);
    put(b, "a=fmtp:%u level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=%06x\r\n", pt,
        plid & 0xffffffu);
    if (rtx_pt)
        put(b, "a=rtpmap:%u rtx/90000\r\na=fmtp:%u apt=%u\r\n", rtx_pt, rtx_pt, pt);
}

int sl_sdp_offer(const sl_sdp_offer_params_t *p, char *out, size_t cap)
{
    if (!p || !out || !cap || !token_ok(p->ice_ufrag) || !token_ok(p->ice_pwd) ||
        !token_ok(p->fingerprint_sha256) || (p->cname && !token_ok(p->cname)) ||
        (!p->video && !p->audio && !p->datachannel) || p->n_cands < 0 || (p->n_cands && !p->cands))
        return SL_EINVAL;
    for (int i = 0; i < p->n_cands; i++)
        if (!token_ok(p->cands[i].foundation) || !token_ok(p->cands[i].addr))
            return SL_EINVAL;
    const char *cname = p->cname ? p->cname : "sluice";
    wbuf_t b = {out, cap, 0, 0};
    char mids[3][2] = {"", "", ""};
    int n = 0;
    if (p->video)
        snprintf(mids[0], 2, "%d", n++);
    if (p->audio)
        snprintf(mids[1], 2, "%d", n++);
    if (p->datachannel)
        snprintf(mids[2], 2, "%d", n++);
    put(&b, "v=0\r\no=- %llu 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", (unsigned long long)p->session_id);
    put(&b, "a=ice-lite\r\na=group:BUNDLE");
    for (int i = 0; i < 3; i++)
        if (mids[i][0])
            put(&b, " %s", mids[i]);
    put(&b, "\r\na=msid-semantic: WMS sluice\r\n");
    if (p->video) {
        put(&b, "m=video 9 UDP/TLS/RTP/SAVPF %u", p->video_pt);
        if (p->video_rtx_pt)
            put(&b, " %u", p->video_rtx_pt);
        if (p->video_pt2)
            put(&b, " %u", p->video_pt2);
        if (p->video_pt2 && p->video_rtx_pt2)
            put(&b, " %u", p->video_rtx_pt2);
        put(&b, "\r\n");
        transport(&b, p, mids[0]);
        put(&b, "a=sendonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\n");
        if (p->ext_mid)
            put(&b, "a=extmap:%d urn:ietf:params:rtp-hdrext:sdes:mid\r\n", p->ext_mid);
        h264_lines(&b, p->video_pt, p->video_rtx_pt, p->profile_level_id);
        if (p->video_pt2)
            h264_lines(&b, p->video_pt2, p->video_rtx_pt2, p->profile_level_id2);
        ssrc_lines(&b, p->video_ssrc, cname, "video");
        candidates(&b, p);
    }
    if (p->audio) {
        put(&b, "m=audio 9 UDP/TLS/RTP/SAVPF %u\r\n", p->audio_pt);
        transport(&b, p, mids[1]);
        put(&b, "a=sendonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\n");
        if (p->ext_mid)
            put(&b, "a=extmap:%d urn:ietf:params:rtp-hdrext:sdes:mid\r\n", p->ext_mid);
        put(&b, "a=rtpmap:%u opus/48000/2\r\na=fmtp:%u minptime=10;useinbandfec=1\r\n", p->audio_pt,
            p->audio_pt);
        ssrc_lines(&b, p->audio_ssrc, cname, "audio");
        candidates(&b, p);
    }
    if (p->datachannel) {
        put(&b, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n");
        transport(&b, p, mids[2]);
        put(&b, "a=sctp-port:5000\r\na=max-message-size:262144\r\n");
        candidates(&b, p);
    }
    if (b.err)
        return b.err;
    return (int)b.len;
}
