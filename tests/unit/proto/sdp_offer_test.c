/*
 * Unit tests for the server's SDP offer to WebSocket subscribers
 * (src/proto/webrtc/sdp_offer.c): the offer is parsed back with sl_sdp_parse
 * (the parser every answer and offer goes through) and its fields checked;
 * answers a browser and aiortc would give are parsed and picked the way
 * webrtc_ws.c hands them to wrtc_pc_setup (codec, RTX, DTLS role); then the
 * refusals (nothing to offer, bad tokens, a buffer too small).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "media/sdp.h"
#include "proto/webrtc/sdp_offer.h"
#include "sluice/errors.h"

static sl_sdp_t g_sdp; /* ~130 KiB: not on the stack */
static char g_text[16384];

static sl_sdp_candidate_t g_cands[2] = {
    {"1", 1, 0, 2130706431u, "127.0.0.1", 8000},
    {"2", 1, 1, 2113929215u, "127.0.0.1", 8000},
};

static sl_sdp_offer_params_t full_params(void)
{
    sl_sdp_offer_params_t p;
    memset(&p, 0, sizeof p);
    p.ice_ufrag = "Ab12Cd34";
    p.ice_pwd = "0123456789abcdef01234567";
    p.fingerprint_sha256 = "AB:CD:EF:01";
    p.cands = g_cands;
    p.n_cands = 2;
    p.cname = "SESSION1";
    p.session_id = 42;
    p.video = 1;
    p.video_pt = 102;
    p.video_rtx_pt = 103;
    p.video_ssrc = 1111;
    p.profile_level_id = 0x4d401e;
    p.video_pt2 = 104;
    p.video_rtx_pt2 = 105;
    p.profile_level_id2 = 0x42e01f;
    p.audio = 1;
    p.audio_pt = 111;
    p.audio_ssrc = 2222;
    p.datachannel = 1;
    p.ext_mid = 4;
    return p;
}

static void test_offer_round_trip(void **state)
{
    (void)state;
    sl_sdp_offer_params_t p = full_params();
    int n = sl_sdp_offer(&p, g_text, sizeof g_text);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(g_text));
    char err[160] = "";
    assert_int_equal(sl_sdp_parse(g_text, (size_t)n, &g_sdp, err, sizeof err), 0);
    assert_int_equal(g_sdp.n_media, 3);
    assert_true(g_sdp.ice_lite);
    assert_int_equal(g_sdp.n_bundle, 3);
    assert_string_equal(g_sdp.bundle[0], "0");
    assert_string_equal(g_sdp.bundle[2], "2");
    assert_string_equal(g_sdp.ice_ufrag, "Ab12Cd34");
    assert_string_equal(g_sdp.ice_pwd, "0123456789abcdef01234567");
    assert_string_equal(g_sdp.fingerprint, "AB:CD:EF:01");
    assert_string_equal(g_sdp.setup, "actpass");
    const sl_sdp_media_t *v = &g_sdp.media[0];
    assert_int_equal(v->kind, SL_SDP_VIDEO);
    assert_int_equal(v->direction, SL_SDP_SENDONLY);
    assert_true(v->rtcp_mux);
    assert_int_equal(v->ext_mid, 4);
    assert_int_equal(v->n_codecs, 4);
    int k = sl_sdp_pick_video(v, 0x4d, 0);
    assert_int_equal(v->codecs[k].pt, 102);
    assert_int_equal(v->codecs[k].rtx_pt, 103);
    assert_int_equal(v->codecs[k].packetization_mode, 1);
    assert_int_equal(v->codecs[k].profile_level_id, 0x4d401e);
    assert_true(v->codecs[k].fb & SL_SDP_FB_NACK);
    assert_true(v->codecs[k].fb & SL_SDP_FB_PLI);
    k = sl_sdp_pick_video(v, 0x42, 0);
    assert_int_equal(v->codecs[k].pt, 104);
    assert_int_equal(v->codecs[k].rtx_pt, 105);
    assert_int_equal(v->n_ssrcs, 1);
    assert_int_equal(v->ssrcs[0], 1111);
    assert_string_equal(v->cname, "SESSION1");
    const sl_sdp_media_t *a = &g_sdp.media[1];
    assert_int_equal(a->kind, SL_SDP_AUDIO);
    k = sl_sdp_pick_audio(a);
    assert_int_equal(a->codecs[k].pt, 111);
    assert_int_equal(a->ssrcs[0], 2222);
    const sl_sdp_media_t *d = &g_sdp.media[2];
    assert_int_equal(d->kind, SL_SDP_APPLICATION);
    assert_int_equal(d->sctp_port, 5000);
    assert_string_equal(d->mid, "2");
    assert_non_null(strstr(g_text, "a=candidate:2 1 tcp 2113929215 127.0.0.1 8000 typ host tcptype passive\r\n"));
    assert_non_null(strstr(g_text, "a=end-of-candidates\r\n"));
}

static void test_offer_minimal(void **state)
{
    (void)state;
    sl_sdp_offer_params_t p = full_params();
    p.video = 0;
    p.datachannel = 0;
    p.n_cands = 0;
    p.cname = NULL;
    int n = sl_sdp_offer(&p, g_text, sizeof g_text);
    assert_true(n > 0);
    char err[160] = "";
    assert_int_equal(sl_sdp_parse(g_text, (size_t)n, &g_sdp, err, sizeof err), 0);
    assert_int_equal(g_sdp.n_media, 1);
    assert_string_equal(g_sdp.media[0].mid, "0");
    assert_string_equal(g_sdp.media[0].cname, "sluice");
    /* Video alone, without RTX or a second payload type, default profile. */
    p = full_params();
    p.audio = 0;
    p.datachannel = 0;
    p.video_rtx_pt = 0;
    p.video_pt2 = 0;
    p.profile_level_id = 0;
    n = sl_sdp_offer(&p, g_text, sizeof g_text);
    assert_true(n > 0);
    assert_int_equal(sl_sdp_parse(g_text, (size_t)n, &g_sdp, err, sizeof err), 0);
    assert_int_equal(g_sdp.media[0].n_codecs, 1);
    assert_int_equal(g_sdp.media[0].codecs[0].profile_level_id, 0x42e01f);
    assert_int_equal(g_sdp.media[0].codecs[0].rtx_pt, -1);
}

/* An answer as Chrome writes one to our offer: it kept the baseline type. */
static const char CHROME_ANSWER[] =
    "v=0\r\no=- 77 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n"
    "a=msid-semantic: WMS\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 104 105\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:zzzz\r\n"
    "a=ice-pwd:yyyyyyyyyyyyyyyyyyyyyyyy\r\na=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 11:22:33\r\na=setup:active\r\na=mid:0\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\n"
    "a=rtpmap:104 H264/90000\r\na=rtcp-fb:104 nack\r\na=rtcp-fb:104 nack pli\r\n"
    "a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
    "a=rtpmap:105 rtx/90000\r\na=fmtp:105 apt=104\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:zzzz\r\n"
    "a=ice-pwd:yyyyyyyyyyyyyyyyyyyyyyyy\r\na=fingerprint:sha-256 11:22:33\r\na=setup:active\r\n"
    "a=mid:1\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:zzzz\r\n"
    "a=ice-pwd:yyyyyyyyyyyyyyyyyyyyyyyy\r\na=fingerprint:sha-256 11:22:33\r\na=setup:active\r\n"
    "a=mid:2\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n";

static void test_answer_handling(void **state)
{
    (void)state;
    char err[160] = "";
    assert_int_equal(sl_sdp_parse(CHROME_ANSWER, sizeof CHROME_ANSWER - 1, &g_sdp, err, sizeof err), 0);
    /* What wrtc_pc_setup takes from it: the kept codec with its RTX... */
    int k = sl_sdp_pick_video(&g_sdp.media[0], 0, 0);
    assert_true(k >= 0);
    assert_int_equal(g_sdp.media[0].codecs[k].pt, 104);
    assert_int_equal(g_sdp.media[0].codecs[k].rtx_pt, 105);
    assert_int_equal(g_sdp.media[0].ext_mid, 4);
    assert_int_equal(g_sdp.media[1].codecs[sl_sdp_pick_audio(&g_sdp.media[1])].pt, 111);
    assert_int_equal(g_sdp.media[2].sctp_port, 5000);
    /* ...and the DTLS role: setup:active makes us the DTLS server
     * (wrtc_pc_setup: dtls_client = setup is "passive"). */
    assert_string_equal(g_sdp.setup, "active");
    assert_string_equal(g_sdp.ice_ufrag, "zzzz");
    /* An answer that chose passive makes us the client. */
    static char passive[sizeof CHROME_ANSWER + 16];
    /* "active" and "passive" differ in length: rebuild the text instead. */
    char *out = passive;
    size_t o = 0;
    const char *in = CHROME_ANSWER;
    while (*in) {
        if (!strncmp(in, "a=setup:active", 14)) {
            o += (size_t)sprintf(out + o, "a=setup:passive");
            in += 14;
        } else {
            out[o++] = *in++;
        }
    }
    out[o] = '\0';
    assert_int_equal(sl_sdp_parse(out, o, &g_sdp, err, sizeof err), 0);
    assert_string_equal(g_sdp.setup, "passive");
}

static void test_refusals(void **state)
{
    (void)state;
    sl_sdp_offer_params_t p = full_params();
    p.video = p.audio = p.datachannel = 0;
    assert_int_equal(sl_sdp_offer(&p, g_text, sizeof g_text), SL_EINVAL);
    p = full_params();
    p.ice_ufrag = "a b";
    assert_int_equal(sl_sdp_offer(&p, g_text, sizeof g_text), SL_EINVAL);
    p = full_params();
    p.fingerprint_sha256 = "AB\r\nx";
    assert_int_equal(sl_sdp_offer(&p, g_text, sizeof g_text), SL_EINVAL);
    p = full_params();
    p.cands = NULL;
    assert_int_equal(sl_sdp_offer(&p, g_text, sizeof g_text), SL_EINVAL);
    p = full_params();
    assert_int_equal(sl_sdp_offer(NULL, g_text, sizeof g_text), SL_EINVAL);
    /* Every size short of the whole offer is refused, never overrun. */
    int n = sl_sdp_offer(&p, g_text, sizeof g_text);
    assert_true(n > 0);
    for (size_t cap = 1; cap <= (size_t)n; cap += 37) {
        char *small = malloc(cap + 8);
        memset(small, 'Z', cap + 8);
        assert_int_equal(sl_sdp_offer(&p, small, cap), SL_ETOOBIG);
        assert_int_equal(small[cap], 'Z');
        free(small);
    }
    char *exact = malloc((size_t)n + 1);
    assert_int_equal(sl_sdp_offer(&p, exact, (size_t)n + 1), n);
    free(exact);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offer_round_trip),
        cmocka_unit_test(test_offer_minimal),
        cmocka_unit_test(test_answer_handling),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
