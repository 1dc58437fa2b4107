/*
 * Fuzz target: the SDP code shared by WHIP / WHEP and RTSP (src/media/sdp.c).
 * The input is first parsed as an RTSP ANNOUNCE description. The input
 * is parsed as an offer; when it parses, codecs are picked the way the
 * session does, an answer is written into a bounded buffer (whose size the
 * first byte varies, so that the SL_ETOOBIG paths run too) and parsed back,
 * which must succeed whenever the answer accepted anything. The input is
 * also parsed as a trickle-ICE fragment.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "media/sdp.h"
#include "sluice/errors.h"

static sl_sdp_t offer, back;
static char answer[16384];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[128];
    sl_sdp_frag_t frag;
    int rc = sl_sdp_parse_description((const char *)data, size, &offer, err, sizeof err);
    if (rc != 0 && (rc != SL_EPROTO || !err[0]))
        __builtin_trap();
    for (int i = 0; rc == 0 && i < offer.n_media; i++)
        if (strlen(offer.media[i].control) >= SL_SDP_MAX_CONTROL)
            __builtin_trap();
    rc = sl_sdp_parse_frag((const char *)data, size, &frag, err, sizeof err);
    if (rc != 0 && rc != SL_EPROTO)
        __builtin_trap();
    rc = sl_sdp_parse((const char *)data, size, &offer, err, sizeof err);
    if (rc != 0) {
        if (rc != SL_EPROTO || !err[0])
            __builtin_trap(); /* a refusal always says why */
        return 0;
    }
    static const sl_sdp_candidate_t cands[] = {
        {.foundation = "1", .component = 1, .priority = 2130706431, .addr = "192.0.2.1", .port = 9000},
        {.foundation = "2", .component = 1, .is_tcp = 1, .priority = 1, .addr = "2001:db8::1", .port = 9000},
    };
    sl_sdp_answer_params_t p;
    memset(&p, 0, sizeof p);
    p.ice_ufrag = "abcd";
    p.ice_pwd = "0123456789012345678901";
    p.fingerprint_sha256 = "AB:CD";
    p.cands = cands;
    p.n_cands = 2;
    int sending = size > 0 && (data[0] & 1);
    for (int i = 0; i < offer.n_media; i++) {
        const sl_sdp_media_t *m = &offer.media[i];
        sl_sdp_answer_media_t *am = &p.media[i];
        am->codec_idx = m->kind == SL_SDP_AUDIO ? sl_sdp_pick_audio(m)
                                                : sl_sdp_pick_video(m, (uint8_t)(size ? data[0] : 0), 1);
        if (am->codec_idx >= m->n_codecs)
            __builtin_trap();
        /* The WHEP and WHIP H.264 picks, against a stream profile from the input. */
        uint32_t plid = size >= 4 ? (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3] : 0x42e01f;
        int lok, hv = sl_sdp_pick_h264(m, plid, &lok), hp = sl_sdp_pick_h264_publish(m);
        if (hv >= m->n_codecs || hp >= m->n_codecs || (hv >= 0 && m->codecs[hv].packetization_mode != 1))
            __builtin_trap();
        char list[64];
        if (strlen(sl_sdp_h264_list(m, list, sizeof list)) >= sizeof list)
            __builtin_trap();
        if (m->kind == SL_SDP_VIDEO && hv >= 0)
            am->codec_idx = hv;
        am->accept = am->codec_idx >= 0 || m->kind == SL_SDP_APPLICATION;
        am->direction = sending ? SL_SDP_SENDONLY : SL_SDP_RECVONLY;
        if (sending) {
            am->ssrc = 1000u + (uint32_t)i;
            am->rtx_ssrc = 2000u + (uint32_t)i;
            am->msid_stream = "s";
            am->msid_track = "t";
        }
    }
    size_t cap = size ? (size_t)data[0] * 32 : sizeof answer;
    if (cap > sizeof answer)
        cap = sizeof answer;
    int n = sl_sdp_answer(&offer, &p, answer, cap);
    if (n == SL_ETOOBIG)
        n = sl_sdp_answer(&offer, &p, answer, sizeof answer);
    if (n < 0) {
        if (n != SL_ETOOBIG)
            __builtin_trap();
        return 0;
    }
    if ((size_t)n >= sizeof answer || strlen(answer) != (size_t)n)
        __builtin_trap();
    /* An answer that accepts anything (and so carries our transport) must
     * be an offer our own parser accepts, m-line for m-line. */
    if (strstr(answer, "\r\na=group:BUNDLE ") &&
        (sl_sdp_parse(answer, (size_t)n, &back, err, sizeof err) != 0 || back.n_media != offer.n_media))
        __builtin_trap();
    return 0;
}
