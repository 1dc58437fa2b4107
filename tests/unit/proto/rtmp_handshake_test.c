/*
 * Unit tests for the RTMP handshake state machine (src/proto/rtmp/
 * rtmp_handshake.c). Our server and client talk to each other, plain and
 * digest, with the bytes cut in every way a socket can cut them; packets
 * are checked against an independent digest implementation written here
 * with libcrypto's one-shot HMAC(), and against known-answer vectors
 * computed outside C (Python's hmac module) so that the two cannot share a
 * mistake. Error paths: bad version bytes, digests that do not verify,
 * full output builders and allocation failure. Every test ends by checking
 * that no sl_malloc block is left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/rtmp/rtmp_handshake.h"
#include "sluice/errors.h"

#define HS SL_RTMP_HS_SIZE
#define OUT_MAX (64 * 1024)

/* The keys again, typed independently of the implementation's copy. */
static const uint8_t key_tail[32] = {
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
};
static const char fp_text[] = "Genuine Adobe Flash Player 001";
static const char fms_text[] = "Genuine Adobe Flash Media Server 001";

/* Writes text + key_tail into key (62 or 68 bytes) and returns its length. */
static size_t full_key(uint8_t *key, const char *text)
{
    size_t n = strlen(text);
    memcpy(key, text, n);
    memcpy(key + n, key_tail, sizeof(key_tail));
    return n + sizeof(key_tail);
}

static void t_hmac(const uint8_t *key, size_t key_len, const uint8_t *p, size_t n, uint8_t out[32])
{
    unsigned len = 0;
    assert_non_null(HMAC(EVP_sha256(), key, (int)key_len, p, n, out, &len));
    assert_int_equal(len, 32);
}

static size_t t_offset(const uint8_t *pkt, int scheme)
{
    size_t base = scheme == 0 ? 8 : 772;
    return (pkt[base] + pkt[base + 1] + pkt[base + 2] + pkt[base + 3]) % 728 + base + 4;
}

/* 1 when pkt carries a valid packet 1 digest under scheme, keyed with text. */
static int t_packet1_valid(const uint8_t *pkt, int scheme, const char *text)
{
    uint8_t rest[HS - 32], digest[32];
    size_t off = t_offset(pkt, scheme);
    memcpy(rest, pkt, off);
    memcpy(rest + off, pkt + off + 32, HS - off - 32);
    t_hmac((const uint8_t *)text, strlen(text), rest, sizeof(rest), digest);
    return memcmp(digest, pkt + off, 32) == 0;
}

/* 1 when pkt is a valid digest packet 2 answering peer_digest. */
static int t_packet2_valid(const uint8_t *pkt, const char *text, const uint8_t *peer_digest)
{
    uint8_t key[68], derived[32], sig[32];
    size_t key_len = full_key(key, text);
    t_hmac(key, key_len, peer_digest, 32, derived);
    t_hmac(derived, 32, pkt, HS - 32, sig);
    return memcmp(sig, pkt + HS - 32, 32) == 0;
}

/* Deterministic filler so known-answer packets are reproducible. */
static void pattern(uint8_t *p, unsigned mul, unsigned add)
{
    for (unsigned i = 0; i < HS; i++)
        p[i] = (uint8_t)(i * mul + add);
}

/*
 * Known-answer vectors computed with Python's hmac/hashlib:
 * A: pattern(31, 7), time 01020304, version 9.0.124.2, bytes 8..11 = 200
 *    -> scheme 0, offset 84, signed with the Flash Player key (30 bytes).
 * B: pattern(13, 101), version 128.0.3.2, bytes 772..775 = 255,255,217,0
 *    -> scheme 1, offset 1503 (the largest possible), Flash Player key.
 * C: pattern(17, 3), version 3.5.1.1, bytes 8..11 = 0 -> scheme 0,
 *    offset 12 (the smallest), signed with the FMS key (36 bytes).
 */
static const uint8_t kat_a_digest[32] = {
    0xb9, 0xfc, 0x73, 0x1a, 0xd1, 0xfa, 0xfb, 0x13, 0x94, 0x4f, 0x1a, 0x83, 0x9e, 0x47, 0xfc, 0x9e,
    0xe1, 0x2a, 0x7d, 0xba, 0x99, 0xf5, 0x6e, 0xe2, 0x6d, 0xde, 0x57, 0x87, 0x7a, 0x91, 0x14, 0x2a,
};
/* HMAC(FMS key, 68 bytes; kat_a_digest): the key that signs S2 for C1 = A. */
static const uint8_t kat_a_s2_key[32] = {
    0x04, 0x71, 0x32, 0xca, 0x0f, 0x7d, 0xe4, 0xff, 0x44, 0xa5, 0x6f, 0xcb, 0xae, 0x73, 0xa0, 0x55,
    0xa2, 0xee, 0x82, 0xdd, 0x54, 0x0c, 0x2f, 0x1b, 0x7e, 0xb6, 0x10, 0xa4, 0x9e, 0xe1, 0x8f, 0xfe,
};
static const uint8_t kat_b_digest[32] = {
    0x7a, 0x32, 0x9a, 0x02, 0x66, 0x9f, 0x2c, 0x3a, 0x91, 0x87, 0x71, 0x8b, 0x4d, 0x76, 0x0c, 0xe6,
    0xf1, 0xc4, 0x42, 0xa8, 0x95, 0x2e, 0xbf, 0x84, 0xdf, 0x80, 0x4e, 0x75, 0x06, 0xf9, 0x20, 0x10,
};
static const uint8_t kat_c_digest[32] = {
    0x31, 0x15, 0x9a, 0x66, 0xc5, 0x77, 0x19, 0xb4, 0x02, 0x5f, 0x9d, 0x7a, 0x90, 0xf9, 0x3a, 0xc2,
    0x58, 0x33, 0x6d, 0x6b, 0xef, 0x85, 0x0a, 0x25, 0x46, 0x7d, 0x43, 0x84, 0x51, 0x80, 0xe1, 0xdf,
};

/* Builds C0 + vector A (with its digest) into c0c1. */
static void kat_a(uint8_t c0c1[1 + HS])
{
    uint8_t *c1 = c0c1 + 1;
    c0c1[0] = 3;
    pattern(c1, 31, 7);
    memcpy(c1, "\x01\x02\x03\x04", 4);
    memcpy(c1 + 4, "\x09\x00\x7c\x02", 4);
    memset(c1 + 8, 200, 4);
    memcpy(c1 + 84, kat_a_digest, 32);
}

/* Builds C0 + vector B into c0c1. */
static void kat_b(uint8_t c0c1[1 + HS])
{
    uint8_t *c1 = c0c1 + 1;
    c0c1[0] = 3;
    pattern(c1, 13, 101);
    memcpy(c1 + 4, "\x80\x00\x03\x02", 4);
    memcpy(c1 + 772, "\xff\xff\xd9\x00", 4);
    memcpy(c1 + 1503, kat_b_digest, 32);
}

/* How feed_pieces() cuts its input. */
enum { CUT_WHOLE, CUT_BYTES, CUT_RANDOM };

static size_t piece_len(int cut, unsigned *seed, size_t left)
{
    size_t n = left;
    if (cut == CUT_BYTES)
        n = 1;
    else if (cut == CUT_RANDOM)
        n = (size_t)rand_r(seed) % 700 + 1;
    return n < left ? n : left;
}

/*
 * Feeds data to hs in pieces until the handshake completes, fails or the
 * data runs out, checking the contract on the way: a 0 return consumed the
 * whole piece and produced nothing unless the peer's packet just completed.
 * Returns the last rc and the total consumed in *total.
 */
static int feed_pieces(sl_rtmp_hs_t *hs, const uint8_t *data, size_t n, int cut, unsigned *seed,
                       sl_wbuf_t *out, size_t *total)
{
    size_t pos = 0;
    int rc = 0;
    while (pos < n) {
        size_t len = piece_len(cut, seed, n - pos), used = 12345;
        rc = sl_rtmp_hs_feed(hs, data + pos, len, &used, out);
        assert_true(used <= len);
        pos += used;
        if (rc != 0)
            break;
        assert_int_equal(used, len);
    }
    *total = pos;
    return rc;
}

/*
 * Runs our client against our server with every transfer cut as cut says,
 * and checks each packet: plain packets echo, digest packets verify.
 */
static void run_pair(int digest, int cut, unsigned seed)
{
    sl_rtmp_hs_t *srv = malloc(sizeof(*srv)), *cli = malloc(sizeof(*cli));
    sl_wbuf_t to_srv, to_cli;
    size_t used;

    assert_non_null(srv);
    assert_non_null(cli);
    sl_wbuf_init(&to_srv, OUT_MAX);
    sl_wbuf_init(&to_cli, OUT_MAX);
    sl_rtmp_hs_server_init(srv);
    assert_int_equal(sl_rtmp_hs_client_start(cli, digest, &to_srv), 0);
    assert_int_equal(to_srv.len, 1 + HS);
    assert_int_equal(to_srv.data[0], 3);

    /* C0+C1 -> server: S0+S1+S2 appear only once C1 is complete. */
    assert_int_equal(feed_pieces(srv, to_srv.data, 1 + HS, cut, &seed, &to_cli, &used), 0);
    assert_int_equal(used, 1 + HS);
    assert_int_equal(srv->state, SL_RTMP_HS_SERVER_WAIT_C2);
    assert_int_equal(to_cli.len, 1 + 2 * HS);
    assert_int_equal(to_cli.data[0], 3);

    /* S0+S1+S2 -> client: C2 appended after C0+C1 in to_srv. */
    assert_int_equal(feed_pieces(cli, to_cli.data, to_cli.len, cut, &seed, &to_srv, &used), 1);
    assert_int_equal(used, 1 + 2 * HS);
    assert_int_equal(cli->state, SL_RTMP_HS_DONE);
    assert_int_equal(to_srv.len, 1 + 2 * HS);

    /* C2 -> server: done, nothing more to send. */
    assert_int_equal(feed_pieces(srv, to_srv.data + 1 + HS, HS, cut, &seed, &to_cli, &used), 1);
    assert_int_equal(used, HS);
    assert_int_equal(srv->state, SL_RTMP_HS_DONE);
    assert_int_equal(to_cli.len, 1 + 2 * HS);

    const uint8_t *c1 = to_srv.data + 1, *c2 = to_srv.data + 1 + HS;
    const uint8_t *s1 = to_cli.data + 1, *s2 = to_cli.data + 1 + HS;
    assert_memory_equal(s1, srv->own1, HS);
    assert_memory_equal(c1, cli->own1, HS);
    assert_int_equal(srv->digest, digest);
    assert_int_equal(cli->digest, digest);
    assert_int_equal(srv->peer_epoch, sl_rd_be32(c1));
    assert_int_equal(cli->peer_epoch, sl_rd_be32(s1));
    if (digest) {
        /* Our client signs with scheme 0, the server answers in kind. */
        assert_true(t_packet1_valid(c1, 0, fp_text));
        assert_true(t_packet1_valid(s1, 0, fms_text));
        assert_memory_equal(srv->peer1_digest, c1 + t_offset(c1, 0), 32);
        assert_memory_equal(cli->peer1_digest, s1 + t_offset(s1, 0), 32);
        assert_true(t_packet2_valid(s2, fms_text, c1 + t_offset(c1, 0)));
        assert_true(t_packet2_valid(c2, fp_text, s1 + t_offset(s1, 0)));
        assert_true(s1[4] >= 3); /* ffmpeg checks digests only from FMS 3 on */
    } else {
        assert_memory_equal(c1 + 4, "\0\0\0\0", 4);
        assert_memory_equal(s1 + 4, "\0\0\0\0", 4);
        assert_memory_equal(s2, c1, HS);
        assert_memory_equal(c2, s1, HS);
    }

    sl_wbuf_cleanup(&to_srv);
    sl_wbuf_cleanup(&to_cli);
    free(srv);
    free(cli);
}

static void assert_no_blocks(void)
{
    assert_int_equal(sl_alloc_blocks(), 0);
    assert_int_equal(sl_alloc_bytes(), 0);
}

static void test_plain_pair(void **state)
{
    run_pair(0, CUT_WHOLE, 1);
    run_pair(0, CUT_BYTES, 1);
    for (unsigned seed = 1; seed <= 20; seed++)
        run_pair(0, CUT_RANDOM, seed);
    assert_no_blocks();
}

static void test_digest_pair(void **state)
{
    run_pair(1, CUT_WHOLE, 1);
    run_pair(1, CUT_BYTES, 1);
    for (unsigned seed = 1; seed <= 20; seed++)
        run_pair(1, CUT_RANDOM, seed);
    assert_no_blocks();
}

/*
 * A client that sends C0+C1+C2 and its first chunks in one write (common:
 * encoders do not wait for S2): the server must consume exactly C0+C1+C2,
 * whatever the cut, and leave the chunk bytes to the caller. C2 here is
 * garbage starting with 6, which must not be taken for a version byte.
 */
static void test_server_stream_with_trailing_chunks(void **state)
{
    static const uint8_t chunks[] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x01, 0x00};
    size_t stream_len = 1 + 2 * HS + sizeof(chunks);
    uint8_t *stream = malloc(stream_len);
    sl_rtmp_hs_t *srv = malloc(sizeof(*srv));
    sl_wbuf_t out;

    assert_non_null(stream);
    assert_non_null(srv);
    kat_a(stream);
    memset(stream + 1 + HS, 0xAB, HS);
    stream[1 + HS] = 6;
    memcpy(stream + 1 + 2 * HS, chunks, sizeof(chunks));

    for (int cut = CUT_WHOLE; cut <= CUT_RANDOM; cut++) {
        for (unsigned seed = 1; seed <= (cut == CUT_RANDOM ? 50u : 1u); seed++) {
            unsigned s = seed;
            size_t used;
            sl_wbuf_init(&out, OUT_MAX);
            sl_rtmp_hs_server_init(srv);
            assert_int_equal(feed_pieces(srv, stream, stream_len, cut, &s, &out, &used), 1);
            assert_int_equal(used, 1 + 2 * HS);
            assert_int_equal(out.len, 1 + 2 * HS);
            assert_int_equal(srv->digest, 1);
            /* Once done, further input is left alone. */
            assert_int_equal(sl_rtmp_hs_feed(srv, chunks, sizeof(chunks), &used, &out), 1);
            assert_int_equal(used, 0);
            assert_int_equal(out.len, 1 + 2 * HS);
            sl_wbuf_cleanup(&out);
        }
    }
    free(stream);
    free(srv);
    assert_no_blocks();
}

/* The client side of the same: S0+S1+S2 followed by the server's chunks. */
static void test_client_stream_with_trailing_chunks(void **state)
{
    for (int digest = 0; digest <= 1; digest++) {
        sl_rtmp_hs_t *srv = malloc(sizeof(*srv)), *cli = malloc(sizeof(*cli));
        sl_wbuf_t to_srv, to_cli;
        size_t used;

        assert_non_null(srv);
        assert_non_null(cli);
        sl_wbuf_init(&to_srv, OUT_MAX);
        sl_wbuf_init(&to_cli, OUT_MAX);
        sl_rtmp_hs_server_init(srv);
        assert_int_equal(sl_rtmp_hs_client_start(cli, digest, &to_srv), 0);
        assert_int_equal(sl_rtmp_hs_feed(srv, to_srv.data, to_srv.len, &used, &to_cli), 0);
        assert_int_equal(sl_wbuf_put(&to_cli, "\x02\x00\x00\x00\x00\x00\x04\x05", 8), 0);

        assert_int_equal(sl_rtmp_hs_feed(cli, to_cli.data, to_cli.len, &used, &to_srv), 1);
        assert_int_equal(used, 1 + 2 * HS);
        assert_int_equal(to_srv.len, 1 + 2 * HS);
        assert_int_equal(cli->digest, digest);

        sl_wbuf_cleanup(&to_srv);
        sl_wbuf_cleanup(&to_cli);
        free(srv);
        free(cli);
    }
    assert_no_blocks();
}

/* Known-answer vector A (scheme 0): the server finds the digest at 84. */
static void test_kat_scheme0(void **state)
{
    uint8_t c0c1[1 + HS], key[68], expect_key[32];
    sl_rtmp_hs_t *srv = malloc(sizeof(*srv));
    sl_wbuf_t out;
    size_t used;

    assert_non_null(srv);
    kat_a(c0c1);
    /* The test's own digest code must agree with the vector first. */
    assert_int_equal(t_offset(c0c1 + 1, 0), 84);
    assert_true(t_packet1_valid(c0c1 + 1, 0, fp_text));
    t_hmac(key, full_key(key, fms_text), kat_a_digest, 32, expect_key);
    assert_memory_equal(expect_key, kat_a_s2_key, 32);

    sl_wbuf_init(&out, OUT_MAX);
    sl_rtmp_hs_server_init(srv);
    assert_int_equal(sl_rtmp_hs_feed(srv, c0c1, sizeof(c0c1), &used, &out), 0);
    assert_int_equal(used, sizeof(c0c1));
    assert_int_equal(srv->digest, 1);
    assert_memory_equal(srv->peer1_digest, kat_a_digest, 32);
    assert_int_equal(srv->peer_epoch, 0x01020304);

    const uint8_t *s1 = out.data + 1, *s2 = out.data + 1 + HS;
    uint8_t sig[32];
    assert_int_equal(out.data[0], 3);
    assert_true(s1[4] != 0);
    assert_true(t_packet1_valid(s1, 0, fms_text));
    t_hmac(kat_a_s2_key, 32, s2, HS - 32, sig);
    assert_memory_equal(sig, s2 + HS - 32, 32);

    sl_wbuf_cleanup(&out);
    free(srv);
    assert_no_blocks();
}

/* Vector B (scheme 1, digest ending at the last byte): S1 uses scheme 1. */
static void test_kat_scheme1(void **state)
{
    uint8_t c0c1[1 + HS];
    sl_rtmp_hs_t *srv = malloc(sizeof(*srv));
    sl_wbuf_t out;
    size_t used;

    assert_non_null(srv);
    kat_b(c0c1);
    assert_int_equal(t_offset(c0c1 + 1, 1), 1503);
    assert_true(t_packet1_valid(c0c1 + 1, 1, fp_text));

    sl_wbuf_init(&out, OUT_MAX);
    sl_rtmp_hs_server_init(srv);
    assert_int_equal(sl_rtmp_hs_feed(srv, c0c1, sizeof(c0c1), &used, &out), 0);
    assert_int_equal(srv->digest, 1);
    assert_memory_equal(srv->peer1_digest, kat_b_digest, 32);
    assert_true(t_packet1_valid(out.data + 1, 1, fms_text));
    assert_true(t_packet2_valid(out.data + 1 + HS, fms_text, kat_b_digest));

    sl_wbuf_cleanup(&out);
    free(srv);
    assert_no_blocks();
}

/* Vector C (an FMS-signed S1, offset 12): our digest client accepts it. */
static void test_kat_client_s1(void **state)
{
    uint8_t s0s1s2[1 + 2 * HS];
    sl_rtmp_hs_t *cli = malloc(sizeof(*cli));
    sl_wbuf_t out;
    size_t used;

    assert_non_null(cli);
    s0s1s2[0] = 3;
    pattern(s0s1s2 + 1, 17, 3);
    memcpy(s0s1s2 + 1 + 4, "\x03\x05\x01\x01", 4);
    memset(s0s1s2 + 1 + 8, 0, 4);
    memcpy(s0s1s2 + 1 + 12, kat_c_digest, 32);
    memset(s0s1s2 + 1 + HS, 0x5A, HS); /* S2 is not checked */
    assert_true(t_packet1_valid(s0s1s2 + 1, 0, fms_text));

    sl_wbuf_init(&out, OUT_MAX);
    assert_int_equal(sl_rtmp_hs_client_start(cli, 1, &out), 0);
    assert_int_equal(sl_rtmp_hs_feed(cli, s0s1s2, sizeof(s0s1s2), &used, &out), 1);
    assert_int_equal(used, sizeof(s0s1s2));
    assert_int_equal(cli->digest, 1);
    assert_memory_equal(cli->peer1_digest, kat_c_digest, 32);
    assert_int_equal(out.len, 1 + 2 * HS);
    assert_true(t_packet2_valid(out.data + 1 + HS, fp_text, kat_c_digest));

    sl_wbuf_cleanup(&out);
    free(cli);
    assert_no_blocks();
}

/*
 * C1 claims a digest (non-zero version) that does not verify: one bit
 * flipped in the digest, or in the signed bytes. The server falls back to
 * the plain handshake: zero version in S1 (so librtmp and ffmpeg switch to
 * plain too) and S2 == C1.
 */
static void test_wrong_digest_falls_back(void **state)
{
    static const size_t flip_at[] = {1 + 84, 1 + 84 + 31, 1 + 500, 1 + 4};
    uint8_t c0c1[1 + HS];
    sl_rtmp_hs_t *srv = malloc(sizeof(*srv));
    sl_wbuf_t out;
    size_t used;

    assert_non_null(srv);
    for (size_t i = 0; i < sizeof(flip_at) / sizeof(flip_at[0]); i++) {
        kat_a(c0c1);
        c0c1[flip_at[i]] ^= 0x01;
        sl_wbuf_init(&out, OUT_MAX);
        sl_rtmp_hs_server_init(srv);
        assert_int_equal(sl_rtmp_hs_feed(srv, c0c1, sizeof(c0c1), &used, &out), 0);
        assert_int_equal(srv->digest, 0);
        assert_int_equal(out.len, 1 + 2 * HS);
        assert_memory_equal(out.data + 1 + 4, "\0\0\0\0", 4);
        assert_memory_equal(out.data + 1 + HS, c0c1 + 1, HS);
        sl_wbuf_cleanup(&out);
    }
    free(srv);
    assert_no_blocks();
}

/*
 * Our digest client against a server that answers plainly (zero version)
 * or with a version but no valid digest: the client settles for plain and
 * echoes S1 as C2.
 */
static void test_client_accepts_plain_server(void **state)
{
    uint8_t s0s1s2[1 + 2 * HS];
    sl_rtmp_hs_t *cli = malloc(sizeof(*cli));
    sl_wbuf_t out;
    size_t used;

    assert_non_null(cli);
    for (int with_version = 0; with_version <= 1; with_version++) {
        s0s1s2[0] = 3;
        pattern(s0s1s2 + 1, 7, 1);
        memcpy(s0s1s2 + 1 + 4, with_version ? "\x03\x05\x01\x01" : "\0\0\0\0", 4);
        sl_wbuf_init(&out, OUT_MAX);
        assert_int_equal(sl_rtmp_hs_client_start(cli, 1, &out), 0);
        memcpy(s0s1s2 + 1 + HS, out.data + 1, HS); /* S2 echoes C1 */
        assert_int_equal(sl_rtmp_hs_feed(cli, s0s1s2, sizeof(s0s1s2), &used, &out), 1);
        assert_int_equal(cli->digest, 0);
        assert_memory_equal(out.data + 1 + HS, s0s1s2 + 1, HS);
        sl_wbuf_cleanup(&out);
    }
    free(cli);
    assert_no_blocks();
}

/*
 * A version byte other than 3 fails at once (before C1 arrives), leaves the
 * state FAILED, and every later call fails without consuming anything.
 */
static void test_bad_version(void **state)
{
    static const uint8_t bad[] = {0, 6, 8, 'G', 0xFF};
    sl_rtmp_hs_t *hs = malloc(sizeof(*hs));
    sl_wbuf_t out;
    size_t used;

    assert_non_null(hs);
    for (size_t i = 0; i < sizeof(bad); i++) {
        uint8_t in[4] = {bad[i], 0, 0, 0};

        sl_wbuf_init(&out, OUT_MAX);
        sl_rtmp_hs_server_init(hs);
        assert_int_equal(sl_rtmp_hs_feed(hs, in, 1, &used, &out), SL_EPROTO);
        assert_int_equal(hs->state, SL_RTMP_HS_FAILED);
        assert_int_equal(out.len, 0);
        assert_int_equal(sl_rtmp_hs_feed(hs, in, sizeof(in), &used, &out), SL_EPROTO);
        assert_int_equal(used, 0);

        assert_int_equal(sl_rtmp_hs_client_start(hs, (int)(i & 1), &out), 0);
        sl_wbuf_reset(&out);
        assert_int_equal(sl_rtmp_hs_feed(hs, in, sizeof(in), &used, &out), SL_EPROTO);
        assert_int_equal(hs->state, SL_RTMP_HS_FAILED);
        assert_int_equal(out.len, 0);
        sl_wbuf_cleanup(&out);
    }
    free(hs);
    assert_no_blocks();
}

/* An empty feed is a no-op in every waiting state. */
static void test_empty_feed(void **state)
{
    sl_rtmp_hs_t *hs = malloc(sizeof(*hs));
    sl_wbuf_t out;
    size_t used = 99;

    assert_non_null(hs);
    sl_wbuf_init(&out, OUT_MAX);
    sl_rtmp_hs_server_init(hs);
    assert_int_equal(sl_rtmp_hs_feed(hs, NULL, 0, &used, &out), 0);
    assert_int_equal(used, 0);
    assert_int_equal(sl_rtmp_hs_client_start(hs, 1, &out), 0);
    sl_wbuf_reset(&out);
    assert_int_equal(sl_rtmp_hs_feed(hs, NULL, 0, &used, &out), 0);
    assert_int_equal(used, 0);
    assert_int_equal(hs->state, SL_RTMP_HS_CLIENT_WAIT_S0S1S2);
    assert_int_equal(out.len, 0);
    sl_wbuf_cleanup(&out);
    free(hs);
    assert_no_blocks();
}

/*
 * An output builder too small for the answer: the wbuf error comes back,
 * the state is FAILED and the builder holds no half-written packet.
 */
static void test_output_full(void **state)
{
    uint8_t c0c1[1 + HS], s0s1s2[1 + 2 * HS];
    sl_rtmp_hs_t *hs = malloc(sizeof(*hs));
    sl_wbuf_t out;
    size_t used;

    assert_non_null(hs);
    kat_a(c0c1);
    sl_wbuf_init(&out, 2 * HS); /* room for S0+S1 but not S2 */
    sl_rtmp_hs_server_init(hs);
    assert_int_equal(sl_rtmp_hs_feed(hs, c0c1, sizeof(c0c1), &used, &out), SL_ETOOBIG);
    assert_int_equal(hs->state, SL_RTMP_HS_FAILED);
    assert_int_equal(out.len, 0);
    sl_wbuf_cleanup(&out);

    sl_wbuf_init(&out, HS); /* no room for C0+C1 */
    assert_int_equal(sl_rtmp_hs_client_start(hs, 1, &out), SL_ETOOBIG);
    assert_int_equal(hs->state, SL_RTMP_HS_FAILED);
    assert_int_equal(out.len, 0);
    sl_wbuf_cleanup(&out);

    sl_wbuf_init(&out, 1 + HS); /* C0+C1 fit, C2 does not */
    assert_int_equal(sl_rtmp_hs_client_start(hs, 0, &out), 0);
    s0s1s2[0] = 3;
    pattern(s0s1s2 + 1, 3, 3);
    memset(s0s1s2 + 1 + 4, 0, 4);
    assert_int_equal(sl_rtmp_hs_feed(hs, s0s1s2, sizeof(s0s1s2), &used, &out), SL_ETOOBIG);
    assert_int_equal(hs->state, SL_RTMP_HS_FAILED);
    assert_int_equal(out.len, 1 + HS);
    sl_wbuf_cleanup(&out);
    free(hs);
    assert_no_blocks();
}

/* With SL_FAULT_INJECTION: a failing allocation in the builder is reported. */
static void test_alloc_failure(void **state)
{
    uint8_t c0c1[1 + HS];
    sl_rtmp_hs_t *hs = malloc(sizeof(*hs));
    sl_wbuf_t out;
    size_t used;

    assert_non_null(hs);
    if (!sl_alloc_fail_at(1, 0)) {
        free(hs);
        skip();
    }
    kat_a(c0c1);
    sl_wbuf_init(&out, OUT_MAX);
    sl_rtmp_hs_server_init(hs);
    assert_int_equal(sl_rtmp_hs_feed(hs, c0c1, sizeof(c0c1), &used, &out), SL_ENOMEM);
    assert_int_equal(hs->state, SL_RTMP_HS_FAILED);
    sl_alloc_fail_at(1, 0);
    assert_int_equal(sl_rtmp_hs_client_start(hs, 1, &out), SL_ENOMEM);
    sl_alloc_fail_at(0, 0);
    sl_wbuf_cleanup(&out);
    free(hs);
    assert_no_blocks();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_pair),
        cmocka_unit_test(test_digest_pair),
        cmocka_unit_test(test_server_stream_with_trailing_chunks),
        cmocka_unit_test(test_client_stream_with_trailing_chunks),
        cmocka_unit_test(test_kat_scheme0),
        cmocka_unit_test(test_kat_scheme1),
        cmocka_unit_test(test_kat_client_s1),
        cmocka_unit_test(test_wrong_digest_falls_back),
        cmocka_unit_test(test_client_accepts_plain_server),
        cmocka_unit_test(test_bad_version),
        cmocka_unit_test(test_empty_feed),
        cmocka_unit_test(test_output_full),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
