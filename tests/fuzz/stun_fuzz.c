/*
 * Fuzz target: the STUN codec and the ICE-TCP framer of the WebRTC ICE-lite
 * agent (src/proto/webrtc/stun.c). The whole input is parsed as one STUN
 * datagram and, when it parses, its MESSAGE-INTEGRITY is checked with a
 * fixed key (the RFC 5769 password, so the seed vectors verify) and its
 * FINGERPRINT too; a parsed request is answered the way the agent does
 * (success, 420 or 487) and the answer must parse and verify. Then the
 * same bytes are fed to an ICE-TCP framer in chunks whose sizes come from
 * the input itself, and every frame goes through the same checks.
 */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/webrtc/stun.h"

static const uint8_t key[] = "VOkJxbRl1RmTxUk/WvJxBt";
#define KEY_LEN (sizeof key - 1)

/* Asserts that a message we built parses and verifies. */
static void check_built(const uint8_t *out, int n)
{
    if (n < 0)
        __builtin_trap(); /* the builders cannot fail with a 1500-byte buffer */
    sl_stun_msg_t m;
    if (sl_stun_parse(out, (size_t)n, &m) != 0 || sl_stun_check_fingerprint(out, (size_t)n, &m) != 0 ||
        sl_stun_check_integrity(out, (size_t)n, &m, key, KEY_LEN) != 0)
        __builtin_trap();
}

static void one_packet(const uint8_t *p, size_t len)
{
    sl_pkt_kind_t kind = sl_webrtc_classify(p, len);
    sl_stun_msg_t m;
    if (sl_stun_parse(p, len, &m) != 0)
        return;
    /* A message type's top two bits are zero; the demux's STUN range 0..3
     * is narrower (RFC 7983 leaves 4..63 to DTLS and others). */
    if (p[0] > 63 || (p[0] <= 3 && kind != SL_PKT_STUN))
        __builtin_trap();
    if (m.has_integrity && m.integrity_off + 24 > len)
        __builtin_trap();
    if (m.has_fingerprint && m.fingerprint_off + 8 != len)
        __builtin_trap(); /* FINGERPRINT is last */
    if (m.username && (m.username < p || m.username + m.username_len > p + len))
        __builtin_trap();
    int integrity_ok = sl_stun_check_integrity(p, len, &m, key, KEY_LEN) == 0;
    (void)sl_stun_check_fingerprint(p, len, &m);
    if (m.username) {
        const uint8_t *local;
        size_t local_len;
        if (sl_stun_username_split(m.username, m.username_len, &local, &local_len) == 0 &&
            local_len >= m.username_len)
            __builtin_trap();
    }

    if (m.type != SL_STUN_BINDING_REQUEST)
        return;
    uint8_t out[SL_STUN_MAX_MSG];
    if (m.n_unknown_required > 0) {
        check_built(out, sl_stun_build_error_unknown(out, sizeof out, SL_STUN_METHOD_BINDING, m.tid,
                                                     m.unknown_required, m.n_unknown_required,
                                                     key, KEY_LEN));
    } else if (integrity_ok && m.ice_controlling) {
        check_built(out, sl_stun_build_error(out, sizeof out, SL_STUN_METHOD_BINDING, m.tid,
                                             SL_STUN_ERR_ROLE_CONFLICT, NULL, key, KEY_LEN));
    } else {
        struct sockaddr_in6 peer;
        memset(&peer, 0, sizeof peer);
        peer.sin6_family = AF_INET6;
        peer.sin6_port = htons(5000);
        memcpy(&peer.sin6_addr, m.tid, 12); /* any address */
        check_built(out, sl_stun_build_binding_success(out, sizeof out, m.tid,
                                                       (struct sockaddr *)&peer, key, KEY_LEN));
    }
}

static void on_frame(void *ud, const uint8_t *pkt, size_t len)
{
    (void)ud;
    if (len == 0 || len > 1600)
        __builtin_trap(); /* the framer skips empty frames and honours its cap */
    one_packet(pkt, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one_packet(data, size);

    /* The framer: chunk sizes from the input's own bytes (1..16), so the
     * fuzzer explores split points. */
    sl_ice_tcp_framer_t f;
    sl_ice_tcp_framer_init(&f, 1600);
    size_t off = 0, i = 0;
    while (off < size) {
        size_t chunk = (size_t)(data[i++ % size] & 15) + 1;
        if (chunk > size - off)
            chunk = size - off;
        if (sl_ice_tcp_framer_feed(&f, data + off, chunk, on_frame, NULL) != 0)
            break;
        off += chunk;
    }
    sl_ice_tcp_framer_cleanup(&f);
    return 0;
}
