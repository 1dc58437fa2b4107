/*
 * Unit tests for the STUN codec of the WebRTC ICE-lite agent
 * (src/proto/webrtc/stun.c): the RFC 5769 test vectors (request, IPv4 and
 * IPv6 responses) verify and every single-bit change is caught, builders
 * round-trip through the parser (XOR-MAPPED-ADDRESS v4 and v6, requests,
 * errors including 420), the parser refuses truncated and lying input and
 * breaks of the attribute order, unknown comprehension-required
 * attributes are reported, the RFC 7983 demux classifies each first-byte
 * range, the ICE-TCP framer gives the same packets whatever the split of
 * the stream and refuses oversized frames, and the ICE helpers.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "proto/webrtc/stun.h"
#include "sluice/errors.h"

/* RFC 5769 2.1: sample request (username "evtj:h6vY" padded with spaces,
 * software "STUN test client", PRIORITY, ICE-CONTROLLED). */
static const uint8_t rfc_request[] = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
    0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09,
    0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14,
    0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
};

/* RFC 5769 2.2: sample IPv4 response, mapped 192.0.2.1:32853. */
static const uint8_t rfc_response_v4[] = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};

/* RFC 5769 2.3: sample IPv6 response, mapped
 * [2001:db8:1234:5678:11:2233:4455:6677]:32853. */
static const uint8_t rfc_response_v6[] = {
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
    0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14,
    0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75,
    0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
};

static const char rfc_password[] = "VOkJxbRl1RmTxUk/WvJxBt";
#define RFC_KEY (const uint8_t *)rfc_password, strlen(rfc_password)

static const uint8_t tid1[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

/* Parses p and asserts that integrity (with key) and fingerprint verify. */
static void assert_verifies(const uint8_t *p, size_t len, const uint8_t *key, size_t key_len,
                            sl_stun_msg_t *m)
{
    assert_int_equal(sl_stun_parse(p, len, m), 0);
    assert_true(m->has_integrity);
    assert_true(m->has_fingerprint);
    assert_int_equal(sl_stun_check_integrity(p, len, m, key, key_len), 0);
    assert_int_equal(sl_stun_check_fingerprint(p, len, m), 0);
}

/* Every single-bit change of a protected message is caught: it no longer
 * parses, or its integrity or its fingerprint fails. A change before the
 * MESSAGE-INTEGRITY value end (header included) fails integrity, a change
 * in the FINGERPRINT value fails the fingerprint. */
static void assert_every_bit_flip_caught(const uint8_t *orig, size_t len)
{
    uint8_t p[SL_STUN_MAX_MSG];
    sl_stun_msg_t m0, m;
    assert_int_equal(sl_stun_parse(orig, len, &m0), 0);
    size_t mi_end = m0.integrity_off + 24;
    for (size_t bit = 0; bit < len * 8; bit++) {
        memcpy(p, orig, len);
        p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (sl_stun_parse(p, len, &m) != 0)
            continue;
        int integrity = sl_stun_check_integrity(p, len, &m, RFC_KEY);
        int fingerprint = sl_stun_check_fingerprint(p, len, &m);
        if (bit / 8 < mi_end)
            assert_int_equal(integrity, SL_EDENIED);
        else
            assert_int_equal(fingerprint, SL_EPROTO);
        assert_true(integrity != 0 || fingerprint != 0);
    }
}

static void test_rfc5769_request(void **state)
{
    (void)state;
    sl_stun_msg_t m;
    assert_verifies(rfc_request, sizeof rfc_request, RFC_KEY, &m);
    assert_int_equal(m.type, SL_STUN_BINDING_REQUEST);
    assert_memory_equal(m.tid, rfc_request + 8, 12);
    assert_int_equal(m.username_len, 9);
    assert_memory_equal(m.username, "evtj:h6vY", 9);
    assert_true(m.has_priority);
    assert_int_equal(m.priority, 0x6e0001ff);
    assert_true(m.ice_controlled);
    assert_false(m.ice_controlling);
    assert_true(m.tiebreaker == 0x932ff9b151263b36ull);
    assert_false(m.use_candidate);
    assert_false(m.has_mapped);
    assert_int_equal(m.n_unknown_required, 0); /* SOFTWARE is comprehension-optional */
    assert_int_equal(m.error_code, 0);

    /* The ufrag split the agent's demux uses. */
    const uint8_t *local;
    size_t local_len;
    assert_int_equal(sl_stun_username_split(m.username, m.username_len, &local, &local_len), 0);
    assert_int_equal(local_len, 4);
    assert_memory_equal(local, "evtj", 4);

    /* Wrong keys: another password, one character short, empty. */
    assert_int_equal(sl_stun_check_integrity(rfc_request, sizeof rfc_request, &m,
                                             (const uint8_t *)"VOkJxbRl1RmTxUk/WvJxBu", 22),
                     SL_EDENIED);
    assert_int_equal(sl_stun_check_integrity(rfc_request, sizeof rfc_request, &m,
                                             (const uint8_t *)rfc_password, 21),
                     SL_EDENIED);
    assert_int_equal(sl_stun_check_integrity(rfc_request, sizeof rfc_request, &m, NULL, 0),
                     SL_EDENIED);

    /* One bit in SOFTWARE: both fail. One bit in the fingerprint: only it. */
    uint8_t p[sizeof rfc_request];
    memcpy(p, rfc_request, sizeof p);
    p[24] ^= 0x01;
    assert_int_equal(sl_stun_parse(p, sizeof p, &m), 0);
    assert_int_equal(sl_stun_check_integrity(p, sizeof p, &m, RFC_KEY), SL_EDENIED);
    assert_int_equal(sl_stun_check_fingerprint(p, sizeof p, &m), SL_EPROTO);
    memcpy(p, rfc_request, sizeof p);
    p[sizeof p - 1] ^= 0x80;
    assert_int_equal(sl_stun_parse(p, sizeof p, &m), 0);
    assert_int_equal(sl_stun_check_integrity(p, sizeof p, &m, RFC_KEY), 0);
    assert_int_equal(sl_stun_check_fingerprint(p, sizeof p, &m), SL_EPROTO);

    assert_every_bit_flip_caught(rfc_request, sizeof rfc_request);
}

static void test_rfc5769_response_v4(void **state)
{
    (void)state;
    sl_stun_msg_t m;
    assert_verifies(rfc_response_v4, sizeof rfc_response_v4, RFC_KEY, &m);
    assert_int_equal(m.type, SL_STUN_BINDING_SUCCESS);
    assert_true(m.has_mapped);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&m.mapped;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 32853);
    char text[INET6_ADDRSTRLEN];
    assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text));
    assert_string_equal(text, "192.0.2.1");
    assert_null(m.username);
    assert_false(m.has_priority);

    uint8_t p[sizeof rfc_response_v4];
    memcpy(p, rfc_response_v4, sizeof p);
    p[45] ^= 0x04; /* the address */
    assert_int_equal(sl_stun_parse(p, sizeof p, &m), 0);
    assert_int_equal(sl_stun_check_integrity(p, sizeof p, &m, RFC_KEY), SL_EDENIED);
    assert_int_equal(sl_stun_check_fingerprint(p, sizeof p, &m), SL_EPROTO);

    assert_every_bit_flip_caught(rfc_response_v4, sizeof rfc_response_v4);
}

static void test_rfc5769_response_v6(void **state)
{
    (void)state;
    sl_stun_msg_t m;
    assert_verifies(rfc_response_v6, sizeof rfc_response_v6, RFC_KEY, &m);
    assert_int_equal(m.type, SL_STUN_BINDING_SUCCESS);
    assert_true(m.has_mapped);
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&m.mapped;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 32853);
    char text[INET6_ADDRSTRLEN];
    assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text));
    assert_string_equal(text, "2001:db8:1234:5678:11:2233:4455:6677");

    assert_every_bit_flip_caught(rfc_response_v6, sizeof rfc_response_v6);
}

static void test_build_success_roundtrip(void **state)
{
    (void)state;
    const uint8_t key[] = "local-password-0123456789";
    uint8_t out[SL_STUN_MAX_MSG];
    sl_stun_msg_t m;

    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(54321);
    assert_int_equal(inet_pton(AF_INET, "203.0.113.77", &sin.sin_addr), 1);
    int n = sl_stun_build_binding_success(out, sizeof out, tid1, (struct sockaddr *)&sin, key,
                                          sizeof key - 1);
    assert_int_equal(n, 20 + 12 + 24 + 8);
    assert_verifies(out, (size_t)n, key, sizeof key - 1, &m);
    assert_int_equal(m.type, SL_STUN_BINDING_SUCCESS);
    assert_memory_equal(m.tid, tid1, 12);
    const struct sockaddr_in *got = (const struct sockaddr_in *)&m.mapped;
    assert_true(m.has_mapped);
    assert_int_equal(got->sin_family, AF_INET);
    assert_int_equal(got->sin_port, sin.sin_port);
    assert_memory_equal(&got->sin_addr, &sin.sin_addr, 4);
    assert_int_equal(sl_stun_check_integrity(out, (size_t)n, &m, (const uint8_t *)"other", 5),
                     SL_EDENIED);

    struct sockaddr_in6 sin6 = {0};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(9);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::dead:beef:1", &sin6.sin6_addr), 1);
    n = sl_stun_build_binding_success(out, sizeof out, tid1, (struct sockaddr *)&sin6, key,
                                      sizeof key - 1);
    assert_int_equal(n, 20 + 24 + 24 + 8);
    assert_verifies(out, (size_t)n, key, sizeof key - 1, &m);
    const struct sockaddr_in6 *got6 = (const struct sockaddr_in6 *)&m.mapped;
    assert_int_equal(got6->sin6_family, AF_INET6);
    assert_int_equal(got6->sin6_port, sin6.sin6_port);
    assert_memory_equal(&got6->sin6_addr, &sin6.sin6_addr, 16);

    /* The RFC 5769 IPv6 response minus SOFTWARE, rebuilt: same XOR bytes. */
    assert_int_equal(inet_pton(AF_INET6, "2001:db8:1234:5678:11:2233:4455:6677", &sin6.sin6_addr), 1);
    sin6.sin6_port = htons(32853);
    n = sl_stun_build_binding_success(out, sizeof out, rfc_response_v6 + 8,
                                      (struct sockaddr *)&sin6, RFC_KEY);
    assert_true(n > 44);
    assert_memory_equal(out + 20, rfc_response_v6 + 36, 24);

    /* No key: no MESSAGE-INTEGRITY, fingerprint still there. */
    n = sl_stun_build_binding_success(out, sizeof out, tid1, (struct sockaddr *)&sin, NULL, 0);
    assert_int_equal(n, 20 + 12 + 8);
    assert_int_equal(sl_stun_parse(out, (size_t)n, &m), 0);
    assert_false(m.has_integrity);
    assert_int_equal(sl_stun_check_integrity(out, (size_t)n, &m, key, sizeof key - 1), SL_EDENIED);
    assert_int_equal(sl_stun_check_fingerprint(out, (size_t)n, &m), 0);

    /* Every capacity short of the message is refused, never overrun. */
    int full = sl_stun_build_binding_success(out, sizeof out, tid1, (struct sockaddr *)&sin6, key,
                                             sizeof key - 1);
    for (int cap = 0; cap < full; cap++) {
        uint8_t *small = malloc((size_t)cap + 1); /* exact size for ASan; +1 for malloc(0) */
        assert_int_equal(sl_stun_build_binding_success(small, (size_t)cap, tid1,
                                                       (struct sockaddr *)&sin6, key,
                                                       sizeof key - 1),
                         SL_ETOOBIG);
        free(small);
    }

    struct sockaddr bad = {0};
    bad.sa_family = AF_UNIX;
    assert_int_equal(sl_stun_build_binding_success(out, sizeof out, tid1, &bad, NULL, 0), SL_EINVAL);
}

static void test_build_request_roundtrip(void **state)
{
    (void)state;
    const uint8_t key[] = "remote-password-abcdefgh";
    uint8_t out[SL_STUN_MAX_MSG];
    sl_stun_msg_t m;
    uint32_t prio = sl_ice_priority(110, 65535, 1);
    int n = sl_stun_build_binding_request(out, sizeof out, tid1, "abcd:efghij", prio, 1, 1,
                                          0x0102030405060708ull, key, sizeof key - 1);
    assert_true(n > 0);
    assert_verifies(out, (size_t)n, key, sizeof key - 1, &m);
    assert_int_equal(m.type, SL_STUN_BINDING_REQUEST);
    assert_int_equal(m.username_len, 11);
    assert_memory_equal(m.username, "abcd:efghij", 11);
    assert_int_equal(m.priority, prio);
    assert_true(m.use_candidate);
    assert_true(m.ice_controlling);
    assert_false(m.ice_controlled);
    assert_true(m.tiebreaker == 0x0102030405060708ull);

    n = sl_stun_build_binding_request(out, sizeof out, tid1, NULL, 7, 0, 0, 42, NULL, 0);
    assert_true(n > 0);
    assert_int_equal(sl_stun_parse(out, (size_t)n, &m), 0);
    assert_null(m.username);
    assert_false(m.use_candidate);
    assert_true(m.ice_controlled);
    assert_false(m.ice_controlling);
    assert_true(m.tiebreaker == 42);
    assert_false(m.has_integrity);

    /* A username at the cap is accepted, one byte more is not. */
    char user[SL_STUN_MAX_USERNAME + 2];
    memset(user, 'u', sizeof user);
    user[SL_STUN_MAX_USERNAME] = '\0';
    n = sl_stun_build_binding_request(out, sizeof out, tid1, user, 1, 0, 0, 0, key, sizeof key - 1);
    assert_true(n > 0);
    assert_verifies(out, (size_t)n, key, sizeof key - 1, &m);
    assert_int_equal(m.username_len, SL_STUN_MAX_USERNAME);
    user[SL_STUN_MAX_USERNAME] = 'u';
    user[SL_STUN_MAX_USERNAME + 1] = '\0';
    assert_int_equal(sl_stun_build_binding_request(out, sizeof out, tid1, user, 1, 0, 0, 0, NULL, 0),
                     SL_EINVAL);
}

static void test_build_errors(void **state)
{
    (void)state;
    const uint8_t key[] = "pw";
    uint8_t out[SL_STUN_MAX_MSG];
    sl_stun_msg_t m;

    int n = sl_stun_build_error(out, sizeof out, SL_STUN_METHOD_BINDING, tid1,
                                SL_STUN_ERR_ROLE_CONFLICT, NULL, key, 2);
    assert_true(n > 0);
    assert_verifies(out, (size_t)n, key, 2, &m);
    assert_int_equal(m.type, SL_STUN_BINDING_ERROR);
    assert_int_equal(m.error_code, 487);
    assert_memory_equal(out + 28, "Role Conflict", 13);

    n = sl_stun_build_error(out, sizeof out, SL_STUN_METHOD_BINDING, tid1, 401, NULL, NULL, 0);
    assert_true(n > 0);
    assert_int_equal(sl_stun_parse(out, (size_t)n, &m), 0);
    assert_int_equal(m.error_code, 401);
    assert_false(m.has_integrity);
    assert_int_equal(sl_stun_check_fingerprint(out, (size_t)n, &m), 0);

    n = sl_stun_build_error(out, sizeof out, SL_STUN_METHOD_BINDING, tid1, 400, "custom", NULL, 0);
    assert_int_equal(sl_stun_parse(out, (size_t)n, &m), 0);
    assert_int_equal(m.error_code, 400);
    assert_memory_equal(out + 28, "custom", 6);

    /* A long reason is cut at 127 bytes, not inside a UTF-8 character:
     * 126 ASCII bytes then a 2-byte character that would end at 128. */
    char reason[200];
    memset(reason, 'r', 126);
    strcpy(reason + 126, "\xc3\xa9tail");
    n = sl_stun_build_error(out, sizeof out, SL_STUN_METHOD_BINDING, tid1, 500, reason, NULL, 0);
    assert_true(n > 0);
    assert_int_equal((out[22] << 8 | out[23]), 4 + 126);

    /* Bad arguments. */
    assert_int_equal(sl_stun_build_error(out, sizeof out, 1, tid1, 420, NULL, NULL, 0), SL_EINVAL);
    assert_int_equal(sl_stun_build_error(out, sizeof out, 1, tid1, 299, NULL, NULL, 0), SL_EINVAL);
    assert_int_equal(sl_stun_build_error(out, sizeof out, 1, tid1, 700, NULL, NULL, 0), SL_EINVAL);
    assert_int_equal(sl_stun_build_error(out, sizeof out, 0x0101, tid1, 400, NULL, NULL, 0),
                     SL_EINVAL); /* class bits in the method */
    assert_int_equal(sl_stun_build_error(out, 30, 1, tid1, 400, NULL, NULL, 0), SL_ETOOBIG);
}

/* Builds a message of the given attributes (type, value length, value
 * byte) with a correct header; returns its length. */
typedef struct {
    uint16_t type;
    uint16_t len;
    uint8_t fill;
} attr_spec_t;

static size_t make_msg(uint8_t *out, uint16_t type, const attr_spec_t *attrs, int n)
{
    size_t off = 20;
    for (int i = 0; i < n; i++) {
        out[off] = (uint8_t)(attrs[i].type >> 8);
        out[off + 1] = (uint8_t)attrs[i].type;
        out[off + 2] = (uint8_t)(attrs[i].len >> 8);
        out[off + 3] = (uint8_t)attrs[i].len;
        size_t padded = (attrs[i].len + 3u) & ~3u;
        memset(out + off + 4, 0, padded);
        memset(out + off + 4, attrs[i].fill, attrs[i].len);
        off += 4 + padded;
    }
    out[0] = (uint8_t)(type >> 8);
    out[1] = (uint8_t)type;
    out[2] = (uint8_t)((off - 20) >> 8);
    out[3] = (uint8_t)(off - 20);
    out[4] = 0x21;
    out[5] = 0x12;
    out[6] = 0xa4;
    out[7] = 0x42;
    memcpy(out + 8, tid1, 12);
    return off;
}

static void test_parse_rejects(void **state)
{
    (void)state;
    sl_stun_msg_t m;
    uint8_t p[4096];

    /* Every truncation of a valid message (and one byte more) is refused. */
    for (size_t len = 0; len < sizeof rfc_request; len++)
        assert_int_equal(sl_stun_parse(rfc_request, len, &m), SL_EPROTO);
    memcpy(p, rfc_request, sizeof rfc_request);
    p[sizeof rfc_request] = 0;
    assert_int_equal(sl_stun_parse(p, sizeof rfc_request + 1, &m), SL_EPROTO);
    assert_int_equal(sl_stun_parse(p, sizeof rfc_request + 4, &m), SL_EPROTO);

    /* Lying header length: larger, smaller, not a multiple of 4. */
    memcpy(p, rfc_request, sizeof rfc_request);
    for (int delta = -8; delta <= 8; delta++) {
        if (delta == 0)
            continue;
        p[3] = (uint8_t)(0x58 + delta);
        assert_int_equal(sl_stun_parse(p, sizeof rfc_request, &m), SL_EPROTO);
    }
    p[3] = 0x58;
    p[2] = 0x01;
    assert_int_equal(sl_stun_parse(p, sizeof rfc_request, &m), SL_EPROTO);
    p[2] = 0x00;

    /* Lying attribute length: SOFTWARE claims to run past the end. */
    p[22] = 0x01;
    assert_int_equal(sl_stun_parse(p, sizeof rfc_request, &m), SL_EPROTO);
    p[22] = 0x00;
    p[23] = 0x5d; /* 0x58 - 4 + 1: padding past the end */
    assert_int_equal(sl_stun_parse(p, sizeof rfc_request, &m), SL_EPROTO);
    p[23] = 0x10;
    assert_int_equal(sl_stun_parse(p, sizeof rfc_request, &m), 0);

    /* Bad cookie, top bits of the type. */
    p[4] ^= 1;
    assert_int_equal(sl_stun_parse(p, sizeof rfc_request, &m), SL_EPROTO);
    p[4] ^= 1;
    p[0] |= 0x80;
    assert_int_equal(sl_stun_parse(p, sizeof rfc_request, &m), SL_EPROTO);
    p[0] = 0x40;
    assert_int_equal(sl_stun_parse(p, sizeof rfc_request, &m), SL_EPROTO);

    /* A header-only message is fine; over 1500 bytes is not. */
    attr_spec_t none[1] = {{0, 0, 0}};
    size_t n = make_msg(p, 0x0001, none, 0);
    assert_int_equal(n, 20);
    assert_int_equal(sl_stun_parse(p, n, &m), 0);
    attr_spec_t big[] = {{0x8022, 1476, 'x'}};
    n = make_msg(p, 0x0001, big, 1);
    assert_int_equal(n, 1500);
    assert_int_equal(sl_stun_parse(p, n, &m), 0);
    big[0].len = 1480;
    n = make_msg(p, 0x0001, big, 1);
    assert_int_equal(sl_stun_parse(p, n, &m), SL_EPROTO);

    /* 64 attributes are fine, 65 are not. */
    attr_spec_t many[65];
    for (int i = 0; i < 65; i++)
        many[i] = (attr_spec_t){0x8022, 0, 0};
    n = make_msg(p, 0x0001, many, 64);
    assert_int_equal(sl_stun_parse(p, n, &m), 0);
    n = make_msg(p, 0x0001, many, 65);
    assert_int_equal(sl_stun_parse(p, n, &m), SL_EPROTO);

    /* Known attributes with a wrong size. */
    const attr_spec_t wrong[] = {
        {SL_STUN_ATTR_PRIORITY, 3, 1},       {SL_STUN_ATTR_PRIORITY, 8, 1},
        {SL_STUN_ATTR_USE_CANDIDATE, 4, 1},  {SL_STUN_ATTR_ICE_CONTROLLING, 4, 1},
        {SL_STUN_ATTR_ICE_CONTROLLED, 12, 1}, {SL_STUN_ATTR_MESSAGE_INTEGRITY, 16, 1},
        {SL_STUN_ATTR_FINGERPRINT, 8, 1},    {SL_STUN_ATTR_ERROR_CODE, 3, 4},
        {SL_STUN_ATTR_USERNAME, 514, 'a'},   {SL_STUN_ATTR_XOR_MAPPED_ADDRESS, 12, 1},
    };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        n = make_msg(p, 0x0001, &wrong[i], 1);
        assert_int_equal(sl_stun_parse(p, n, &m), SL_EPROTO);
    }
    /* XOR-MAPPED-ADDRESS with an unknown family; ERROR-CODE class 7. */
    attr_spec_t xma[] = {{SL_STUN_ATTR_XOR_MAPPED_ADDRESS, 8, 0}};
    n = make_msg(p, 0x0101, xma, 1);
    p[25] = 0x03;
    assert_int_equal(sl_stun_parse(p, n, &m), SL_EPROTO);
    p[25] = 0x01;
    assert_int_equal(sl_stun_parse(p, n, &m), 0);
    attr_spec_t ec[] = {{SL_STUN_ATTR_ERROR_CODE, 4, 0}};
    n = make_msg(p, 0x0111, ec, 1);
    p[26] = 7;
    assert_int_equal(sl_stun_parse(p, n, &m), SL_EPROTO);
    p[26] = 4;
    p[27] = 100;
    assert_int_equal(sl_stun_parse(p, n, &m), SL_EPROTO);
    p[27] = 20;
    assert_int_equal(sl_stun_parse(p, n, &m), 0);
    assert_int_equal(m.error_code, 420);
}

static void test_attribute_order(void **state)
{
    (void)state;
    sl_stun_msg_t m;
    uint8_t p[256];
    /* Only FINGERPRINT after MESSAGE-INTEGRITY. */
    const attr_spec_t after_mi[] = {{SL_STUN_ATTR_MESSAGE_INTEGRITY, 20, 1}, {0x8022, 4, 's'}};
    size_t n = make_msg(p, 0x0001, after_mi, 2);
    assert_int_equal(sl_stun_parse(p, n, &m), SL_EPROTO);
    const attr_spec_t two_mi[] = {{SL_STUN_ATTR_MESSAGE_INTEGRITY, 20, 1},
                                  {SL_STUN_ATTR_MESSAGE_INTEGRITY, 20, 1}};
    n = make_msg(p, 0x0001, two_mi, 2);
    assert_int_equal(sl_stun_parse(p, n, &m), SL_EPROTO);
    /* Nothing after FINGERPRINT, not even MESSAGE-INTEGRITY. */
    const attr_spec_t after_fp[] = {{SL_STUN_ATTR_FINGERPRINT, 4, 1},
                                    {SL_STUN_ATTR_MESSAGE_INTEGRITY, 20, 1}};
    n = make_msg(p, 0x0001, after_fp, 2);
    assert_int_equal(sl_stun_parse(p, n, &m), SL_EPROTO);
    /* The allowed shapes. */
    const attr_spec_t ok[] = {{0x8022, 4, 's'},
                              {SL_STUN_ATTR_MESSAGE_INTEGRITY, 20, 1},
                              {SL_STUN_ATTR_FINGERPRINT, 4, 1}};
    n = make_msg(p, 0x0001, ok, 3);
    assert_int_equal(sl_stun_parse(p, n, &m), 0);
    assert_int_equal(m.integrity_off, 28);
    assert_int_equal(m.fingerprint_off, 52);
    n = make_msg(p, 0x0001, ok, 2);
    assert_int_equal(sl_stun_parse(p, n, &m), 0);
    assert_false(m.has_fingerprint);
    assert_int_equal(sl_stun_check_fingerprint(p, n, &m), SL_EPROTO);
}

static void test_unknown_required(void **state)
{
    (void)state;
    sl_stun_msg_t m;
    uint8_t p[512];
    const attr_spec_t attrs[] = {
        {0x7777, 4, 1}, {0x8777, 4, 1}, /* required unknown, optional unknown */
        {0x7777, 2, 1},                 /* duplicate: listed once */
        {SL_STUN_ATTR_REALM, 3, 'r'},   /* long-term credentials: not ours */
        {SL_STUN_ATTR_USERNAME, 5, 'u'},
    };
    size_t n = make_msg(p, 0x0001, attrs, 5);
    assert_int_equal(sl_stun_parse(p, n, &m), 0);
    assert_int_equal(m.n_unknown_required, 2);
    assert_int_equal(m.unknown_required[0], 0x7777);
    assert_int_equal(m.unknown_required[1], SL_STUN_ATTR_REALM);
    assert_int_equal(m.username_len, 5);

    /* The 420 answer lists them. */
    uint8_t out[256];
    int len = sl_stun_build_error_unknown(out, sizeof out, SL_STUN_METHOD_BINDING, m.tid,
                                          m.unknown_required, m.n_unknown_required,
                                          (const uint8_t *)"k", 1);
    assert_true(len > 0);
    sl_stun_msg_t r;
    assert_verifies(out, (size_t)len, (const uint8_t *)"k", 1, &r);
    assert_int_equal(r.error_code, 420);
    assert_int_equal(r.n_unknown_required, 0); /* UNKNOWN-ATTRIBUTES is known */
    /* ERROR-CODE "Unknown Attribute" (4 + 17 -> 24 padded), then the list. */
    const uint8_t list[] = {0x00, 0x0a, 0x00, 0x04, 0x77, 0x77, 0x00, 0x14};
    assert_memory_equal(out + 20 + 4 + 24, list, sizeof list);
    assert_int_equal(sl_stun_build_error_unknown(out, sizeof out, 1, m.tid, m.unknown_required, 0,
                                                 NULL, 0),
                     SL_EINVAL);

    /* More than the kept maximum: the first SL_STUN_MAX_UNKNOWN are kept. */
    attr_spec_t lots[12];
    for (int i = 0; i < 12; i++)
        lots[i] = (attr_spec_t){(uint16_t)(0x4000 + i), 0, 0};
    n = make_msg(p, 0x0001, lots, 12);
    assert_int_equal(sl_stun_parse(p, n, &m), 0);
    assert_int_equal(m.n_unknown_required, SL_STUN_MAX_UNKNOWN);
    assert_int_equal(m.unknown_required[SL_STUN_MAX_UNKNOWN - 1], 0x4000 + SL_STUN_MAX_UNKNOWN - 1);
}

static void test_classify(void **state)
{
    (void)state;
    uint8_t p[2] = {0, 0};
    assert_int_equal(sl_webrtc_classify(p, 0), SL_PKT_UNKNOWN);
    for (int b = 0; b < 256; b++) {
        p[0] = (uint8_t)b;
        p[1] = 96; /* an RTP payload type */
        sl_pkt_kind_t want = SL_PKT_UNKNOWN;
        if (b <= 3)
            want = SL_PKT_STUN;
        else if (b >= 20 && b <= 63)
            want = SL_PKT_DTLS;
        else if (b >= 128 && b <= 191)
            want = SL_PKT_RTP;
        assert_int_equal(sl_webrtc_classify(p, 2), want);
    }
    /* RTP vs RTCP by the second byte (RFC 5761): 192..223 are RTCP. */
    p[0] = 0x80;
    const struct { uint8_t b1; sl_pkt_kind_t kind; } second[] = {
        {0, SL_PKT_RTP},     {96, SL_PKT_RTP},    {111, SL_PKT_RTP},   {127, SL_PKT_RTP},
        {128 | 96, SL_PKT_RTP}, {191, SL_PKT_RTP}, {192, SL_PKT_RTCP}, {200, SL_PKT_RTCP},
        {201, SL_PKT_RTCP},  {206, SL_PKT_RTCP},  {223, SL_PKT_RTCP}, {224, SL_PKT_RTP},
        {255, SL_PKT_RTP},
    };
    for (size_t i = 0; i < sizeof second / sizeof second[0]; i++) {
        p[1] = second[i].b1;
        assert_int_equal(sl_webrtc_classify(p, 2), second[i].kind);
    }
    /* One byte: enough for STUN and DTLS, not for RTP/RTCP. */
    p[0] = 0x80;
    assert_int_equal(sl_webrtc_classify(p, 1), SL_PKT_UNKNOWN);
    p[0] = 0x16;
    assert_int_equal(sl_webrtc_classify(p, 1), SL_PKT_DTLS);
    assert_int_equal(sl_webrtc_classify(rfc_request, sizeof rfc_request), SL_PKT_STUN);
}

/* ---- ICE-TCP framer ---- */

typedef struct {
    uint8_t data[8192]; /* packets concatenated */
    size_t lens[32];
    int n;
    size_t used;
} sink_t;

static void sink_cb(void *ud, const uint8_t *pkt, size_t len)
{
    sink_t *s = ud;
    assert_true(s->n < 32);
    assert_true(s->used + len <= sizeof s->data);
    memcpy(s->data + s->used, pkt, len);
    s->used += len;
    s->lens[s->n++] = len;
}

/* The stream: the RFC request, a zero-length frame, a 1-byte packet, a
 * packet of exactly max_packet bytes, and the IPv6 response. */
#define FRAMER_MAX 1600
static size_t make_stream(uint8_t *out, sink_t *expect)
{
    static uint8_t big[FRAMER_MAX];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    const struct { const uint8_t *p; size_t len; } pkts[] = {
        {rfc_request, sizeof rfc_request}, {NULL, 0}, {(const uint8_t *)"\x80", 1},
        {big, sizeof big}, {rfc_response_v6, sizeof rfc_response_v6},
    };
    size_t off = 0;
    memset(expect, 0, sizeof *expect);
    for (size_t i = 0; i < sizeof pkts / sizeof pkts[0]; i++) {
        out[off] = (uint8_t)(pkts[i].len >> 8);
        out[off + 1] = (uint8_t)pkts[i].len;
        if (pkts[i].len)
            memcpy(out + off + 2, pkts[i].p, pkts[i].len);
        off += 2 + pkts[i].len;
        if (pkts[i].len)
            sink_cb(expect, pkts[i].p, pkts[i].len);
    }
    return off;
}

static void assert_same_packets(const sink_t *a, const sink_t *b)
{
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++)
        assert_int_equal(a->lens[i], b->lens[i]);
    assert_int_equal(a->used, b->used);
    assert_memory_equal(a->data, b->data, a->used);
}

static void test_framer_splits(void **state)
{
    (void)state;
    static uint8_t stream[4096];
    static sink_t expect, got;
    size_t len = make_stream(stream, &expect);
    assert_int_equal(expect.n, 4);
    int64_t bytes0 = sl_alloc_bytes();
    sl_ice_tcp_framer_t f;

    /* Whole: straight from the input, nothing allocated. */
    sl_ice_tcp_framer_init(&f, FRAMER_MAX);
    memset(&got, 0, sizeof got);
    assert_int_equal(sl_ice_tcp_framer_feed(&f, stream, len, sink_cb, &got), 0);
    assert_same_packets(&expect, &got);
    assert_null(f.buf);
    sl_ice_tcp_framer_cleanup(&f);

    /* One byte at a time, each from its own exact-size block. */
    sl_ice_tcp_framer_init(&f, FRAMER_MAX);
    memset(&got, 0, sizeof got);
    for (size_t i = 0; i < len; i++) {
        uint8_t *one = malloc(1);
        *one = stream[i];
        assert_int_equal(sl_ice_tcp_framer_feed(&f, one, 1, sink_cb, &got), 0);
        free(one);
    }
    assert_same_packets(&expect, &got);
    assert_int_equal(f.len, 0);
    assert_true(f.cap == FRAMER_MAX + 2);
    sl_ice_tcp_framer_cleanup(&f);

    /* Every two-piece split. */
    for (size_t cut = 0; cut <= len; cut++) {
        sl_ice_tcp_framer_init(&f, FRAMER_MAX);
        memset(&got, 0, sizeof got);
        assert_int_equal(sl_ice_tcp_framer_feed(&f, stream, cut, sink_cb, &got), 0);
        assert_int_equal(sl_ice_tcp_framer_feed(&f, stream + cut, len - cut, sink_cb, &got), 0);
        assert_same_packets(&expect, &got);
        sl_ice_tcp_framer_cleanup(&f);
    }

    /* Pseudo-random chunk sizes (fixed seed: reproducible). */
    uint32_t seed = 12345;
    for (int round = 0; round < 50; round++) {
        sl_ice_tcp_framer_init(&f, FRAMER_MAX);
        memset(&got, 0, sizeof got);
        for (size_t off = 0; off < len;) {
            seed = seed * 1103515245u + 12345u;
            size_t chunk = (seed >> 16) % 300;
            if (chunk > len - off)
                chunk = len - off;
            assert_int_equal(sl_ice_tcp_framer_feed(&f, stream + off, chunk, sink_cb, &got), 0);
            off += chunk;
        }
        assert_same_packets(&expect, &got);
        sl_ice_tcp_framer_cleanup(&f);
    }
    assert_int_equal(sl_alloc_bytes(), bytes0);
}

static void test_framer_oversized(void **state)
{
    (void)state;
    static uint8_t stream[4096];
    static sink_t expect, got;
    size_t len = make_stream(stream, &expect);
    sl_ice_tcp_framer_t f;

    /* max_packet one below the big packet: the two before it arrive, then
     * SL_ETOOBIG, sticky. */
    sl_ice_tcp_framer_init(&f, FRAMER_MAX - 1);
    memset(&got, 0, sizeof got);
    assert_int_equal(sl_ice_tcp_framer_feed(&f, stream, len, sink_cb, &got), SL_ETOOBIG);
    assert_int_equal(got.n, 2);
    assert_int_equal(sl_ice_tcp_framer_feed(&f, stream, 2 + sizeof rfc_request, sink_cb, &got),
                     SL_ETOOBIG);
    assert_int_equal(got.n, 2);
    sl_ice_tcp_framer_cleanup(&f);

    /* The same when the length prefix arrives one byte at a time. */
    sl_ice_tcp_framer_init(&f, FRAMER_MAX - 1);
    memset(&got, 0, sizeof got);
    int rc = 0;
    size_t i;
    for (i = 0; i < len && rc == 0; i++)
        rc = sl_ice_tcp_framer_feed(&f, stream + i, 1, sink_cb, &got);
    assert_int_equal(rc, SL_ETOOBIG);
    assert_int_equal(got.n, 2);
    /* Refused as soon as the second length byte is in, before the body. */
    assert_int_equal(i, (2 + sizeof rfc_request) + 2 + 3 + 2);
    sl_ice_tcp_framer_cleanup(&f);

    /* A 65535-byte announcement with the usual 1500 + a little cap. */
    sl_ice_tcp_framer_init(&f, 1600);
    const uint8_t huge[] = {0xff, 0xff, 0x00};
    assert_int_equal(sl_ice_tcp_framer_feed(&f, huge, sizeof huge, sink_cb, &got), SL_ETOOBIG);
    sl_ice_tcp_framer_cleanup(&f);
}

static void test_framer_nomem(void **state)
{
    (void)state;
    sl_ice_tcp_framer_t f;
    sink_t got;
    memset(&got, 0, sizeof got);
    sl_ice_tcp_framer_init(&f, 1500);
    if (!sl_alloc_fail_at(1, 0)) {
        sl_ice_tcp_framer_cleanup(&f);
        skip(); /* fault injection not compiled in */
    }
    const uint8_t partial[] = {0x00, 0x04, 0x01};
    assert_int_equal(sl_ice_tcp_framer_feed(&f, partial, sizeof partial, sink_cb, &got), SL_ENOMEM);
    sl_alloc_fail_at(0, 0);
    assert_int_equal(sl_ice_tcp_framer_feed(&f, partial, sizeof partial, sink_cb, &got), SL_ENOMEM);
    sl_ice_tcp_framer_cleanup(&f);
    assert_int_equal(got.n, 0);
}

/* ---- ICE helpers ---- */

static int is_ice_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

static void test_ice_credentials(void **state)
{
    (void)state;
    char ufrag[9], pwd[25], ufrag2[9], pwd2[25];
    assert_int_equal(sl_ice_credentials(ufrag, pwd), 0);
    assert_int_equal(sl_ice_credentials(ufrag2, pwd2), 0);
    assert_int_equal(strlen(ufrag), 8);
    assert_int_equal(strlen(pwd), 24);
    for (int i = 0; i < 8; i++)
        assert_true(is_ice_char(ufrag[i]));
    for (int i = 0; i < 24; i++)
        assert_true(is_ice_char(pwd[i]));
    /* 48 and 144 random bits: a collision means a broken generator. */
    assert_string_not_equal(ufrag, ufrag2);
    assert_string_not_equal(pwd, pwd2);
}

static void test_ice_priority_and_split(void **state)
{
    (void)state;
    assert_int_equal(sl_ice_priority(126, 65535, 1), 2130706431u); /* host, RTP */
    assert_int_equal(sl_ice_priority(0, 0, 256), 0u);
    assert_int_equal(sl_ice_priority(100, 1, 2), (100u << 24) + 256u + 254u);
    assert_int_equal(sl_ice_priority(500, 70000, 0), 2130706431u); /* clamped */
    assert_int_equal(sl_ice_priority(-1, -1, 300), 0u);

    const uint8_t *local = NULL;
    size_t local_len = 0;
    assert_int_equal(sl_stun_username_split((const uint8_t *)"abc:de:f", 8, &local, &local_len), 0);
    assert_int_equal(local_len, 3);
    assert_int_equal(sl_stun_username_split((const uint8_t *)":def", 4, &local, &local_len), SL_EPROTO);
    assert_int_equal(sl_stun_username_split((const uint8_t *)"abc:", 4, &local, &local_len), SL_EPROTO);
    assert_int_equal(sl_stun_username_split((const uint8_t *)"abcdef", 6, &local, &local_len), SL_EPROTO);
    assert_int_equal(sl_stun_username_split((const uint8_t *)"a:b", 2, &local, &local_len), SL_EPROTO);
    assert_int_equal(sl_stun_username_split(NULL, 0, &local, &local_len), SL_EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5769_request),
        cmocka_unit_test(test_rfc5769_response_v4),
        cmocka_unit_test(test_rfc5769_response_v6),
        cmocka_unit_test(test_build_success_roundtrip),
        cmocka_unit_test(test_build_request_roundtrip),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_attribute_order),
        cmocka_unit_test(test_unknown_required),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_framer_splits),
        cmocka_unit_test(test_framer_oversized),
        cmocka_unit_test(test_framer_nomem),
        cmocka_unit_test(test_ice_credentials),
        cmocka_unit_test(test_ice_priority_and_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
