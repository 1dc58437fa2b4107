/*
 * The RTMP handshake state machine (see rtmp_handshake.h): gathers the
 * peer's C0/C1/C2 (server) or S0/S1/S2 (client) from arbitrarily fragmented
 * input, answers with S0+S1+S2 or C2, and implements both the plain
 * handshake and the Flash-era digest ("complex") handshake with
 * HMAC-SHA256 from libcrypto. It owns no memory beyond the caller's
 * sl_rtmp_hs_t and never touches a socket: the RTMP connection code feeds it
 * bytes and sends what it appends to the output builder, so the same code
 * runs under unit tests, the fuzzer and both the server and the client.
 *
 * Packet 1 layout in both variants (1536 bytes):
 *   [0..3]  time (epoch for the sender's timestamps)
 *   [4..7]  version: zero for plain, a Flash Player / FMS version for digest
 *   [8..]   random; in the digest variant a 32-byte HMAC-SHA256 digest sits
 *           at an offset derived from four bytes of the packet itself:
 *           scheme 0: (sum of bytes 8..11)    % 728 + 12
 *           scheme 1: (sum of bytes 772..775) % 728 + 776
 *           The digest covers the 1504 other bytes of the packet.
 */
#include "proto/rtmp/rtmp_handshake.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "sluice/errors.h"

#define DIGEST_LEN 32                      /* HMAC-SHA256 output */
#define VERSION_PLAIN 3                    /* C0/S0: unencrypted RTMP */
#define FP_KEY_TEXT_LEN 30                 /* "Genuine Adobe Flash Player 001" */
#define FMS_KEY_TEXT_LEN 36                /* "Genuine Adobe Flash Media Server 001" */
#define PACKET2_BODY (SL_RTMP_HS_SIZE - DIGEST_LEN) /* signed part of C2/S2 */

/*
 * The two well-known keys: a readable prefix, used alone to sign packet 1,
 * followed by 32 shared bytes; the full key derives the packet 2 key. They
 * are public (every RTMP implementation carries them), so the digests prove
 * "speaks Flash-style RTMP", not identity.
 */
static const uint8_t fp_key[FP_KEY_TEXT_LEN + 32] = {
    'G', 'e', 'n', 'u', 'i', 'n', 'e', ' ', 'A', 'd', 'o', 'b', 'e', ' ', 'F',
    'l', 'a', 's', 'h', ' ', 'P', 'l', 'a', 'y', 'e', 'r', ' ', '0', '0', '1',
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1,
    0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB,
    0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
};

static const uint8_t fms_key[FMS_KEY_TEXT_LEN + 32] = {
    'G', 'e', 'n', 'u', 'i', 'n', 'e', ' ', 'A', 'd', 'o', 'b', 'e', ' ', 'F',
    'l', 'a', 's', 'h', ' ', 'M', 'e', 'd', 'i', 'a', ' ', 'S', 'e', 'r', 'v',
    'e', 'r', ' ', '0', '0', '1',
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1,
    0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB,
    0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
};

/*
 * Versions we claim in packet 1 of the digest variant. Clients look at the
 * server's: librtmp treats a zero first byte as "no digest" and ffmpeg only
 * verifies digests when it is >= 3, so it must be >= 3 when we sign S1 and
 * all zero when we answer plainly. The client's mimics Flash Player 9.0.124.2,
 * the version ffmpeg sends, which servers that check a minimum accept.
 */
static const uint8_t server_version[4] = {4, 5, 0, 1};
static const uint8_t client_version[4] = {9, 0, 124, 2};

/* OSSL_PARAM wants a mutable string; this one is never written. */
static char sha256_name[] = "SHA256";

/*
 * HMAC-SHA256 of the concatenation p1[0..n1) p2[0..n2) into out. Two
 * ranges let packet digests skip their own 32-byte hole without a copy.
 * The MAC is fetched per call: a handshake needs at most four of them, and
 * a cached fetch would need thread-safe lazy initialisation for nothing.
 * Returns 0 or SL_ENOMEM (libcrypto fails only when it cannot allocate).
 */
static int hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *p1, size_t n1,
                       const uint8_t *p2, size_t n2, uint8_t out[DIGEST_LEN])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = NULL;
    size_t out_len = 0;
    int rc = SL_ENOMEM;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha256_name, 0),
        OSSL_PARAM_construct_end(),
    };

    if (!mac)
        goto fail;
    ctx = EVP_MAC_CTX_new(mac);
    if (!ctx)
        goto fail;
    if (!EVP_MAC_init(ctx, key, key_len, params) || !EVP_MAC_update(ctx, p1, n1))
        goto fail;
    if (n2 && !EVP_MAC_update(ctx, p2, n2))
        goto fail;
    if (!EVP_MAC_final(ctx, out, &out_len, DIGEST_LEN) || out_len != DIGEST_LEN)
        goto fail;
    rc = 0;
fail:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

/*
 * Fills p with n cryptographically random bytes. The randomness matters
 * little to RTMP itself, but the packets are echoed by peers and must not
 * leak memory or be predictable across connections. Returns 0 or SL_EIO
 * when the system's entropy source fails.
 */
static int fill_random(uint8_t *p, size_t n)
{
    return RAND_bytes(p, (int)n) == 1 ? 0 : SL_EIO;
}

/* Offset of the digest in a 1536-byte packet 1 under scheme 0 or 1. */
static size_t digest_offset(const uint8_t *pkt, int scheme)
{
    size_t base = scheme == 0 ? 8 : 772;
    unsigned sum = (unsigned)pkt[base] + pkt[base + 1] + pkt[base + 2] + pkt[base + 3];
    return base + 4 + sum % 728;
}

/*
 * Computes the digest a packet 1 should carry at offset off: the HMAC, under
 * key, of every byte except the 32 at off. Returns 0 or SL_ENOMEM.
 */
static int packet1_digest(const uint8_t *pkt, size_t off, const uint8_t *key, size_t key_len,
                          uint8_t out[DIGEST_LEN])
{
    return hmac_sha256(key, key_len, pkt, off, pkt + off + DIGEST_LEN,
                       SL_RTMP_HS_SIZE - off - DIGEST_LEN, out);
}

/*
 * Signs packet 1 in place: writes its digest at the offset scheme selects.
 * The rest of the packet (version field and random bytes) must be final.
 */
static int packet1_sign(uint8_t *pkt, int scheme, const uint8_t *key, size_t key_len)
{
    uint8_t digest[DIGEST_LEN];
    size_t off = digest_offset(pkt, scheme);
    int rc = packet1_digest(pkt, off, key, key_len, digest);
    if (rc == 0)
        memcpy(pkt + off, digest, DIGEST_LEN);
    return rc;
}

/*
 * Looks for a valid digest in the peer's packet 1 under either scheme. Real
 * peers use both (librtmp's FP10 mode and most encoders sign with scheme 1,
 * ffmpeg and Flash Player 9 with scheme 0), so both are tried; a random
 * packet matching by chance is a 2^-256 event. Returns 1 and sets *scheme
 * when found, 0 when neither validates, or SL_ENOMEM.
 */
static int packet1_find_digest(const uint8_t *pkt, const uint8_t *key, size_t key_len,
                               int *scheme)
{
    static const int order[2] = {1, 0};
    uint8_t digest[DIGEST_LEN];

    for (int i = 0; i < 2; i++) {
        size_t off = digest_offset(pkt, order[i]);
        int rc = packet1_digest(pkt, off, key, key_len, digest);
        if (rc < 0)
            return rc;
        if (memcmp(digest, pkt + off, DIGEST_LEN) == 0) {
            *scheme = order[i];
            return 1;
        }
    }
    return 0;
}

/*
 * Builds a digest packet 2 into pkt: 1504 random bytes followed by their
 * HMAC under a key that is itself HMAC(full_key, peer_digest). Tying the key
 * to the peer's packet 1 digest is what shows the peer we read its packet.
 */
static int packet2_build(uint8_t *pkt, const uint8_t *full_key, size_t full_key_len,
                         const uint8_t peer_digest[DIGEST_LEN])
{
    uint8_t key[DIGEST_LEN];
    int rc = fill_random(pkt, PACKET2_BODY);
    if (rc < 0)
        return rc;
    rc = hmac_sha256(full_key, full_key_len, peer_digest, DIGEST_LEN, NULL, 0, key);
    if (rc < 0)
        return rc;
    return hmac_sha256(key, DIGEST_LEN, pkt, PACKET2_BODY, NULL, 0, pkt + PACKET2_BODY);
}

/* 1 when a packet 1's version field is non-zero, i.e. it offers a digest. */
static int packet1_offers_digest(const uint8_t *pkt)
{
    return (pkt[4] | pkt[5] | pkt[6] | pkt[7]) != 0;
}

/*
 * Server, C0+C1 complete in hs->buf: validates C1's digest if it offers one,
 * prepares S1 (kept in hs->own1) and S2, and appends S0+S1+S2 to out in one
 * piece. Space is reserved first so that a full builder leaves out
 * untouched rather than holding half an answer.
 */
static int server_answer(sl_rtmp_hs_t *hs, sl_wbuf_t *out)
{
    const uint8_t *c1 = hs->buf + 1;
    uint8_t s2[SL_RTMP_HS_SIZE];
    uint8_t s0 = VERSION_PLAIN;
    int scheme = 0;
    int rc;

    hs->peer_epoch = sl_rd_be32(c1);
    if (packet1_offers_digest(c1)) {
        /* A digest that does not verify (a custom encoder filling the
         * version field with anything) gets the plain handshake, as every
         * real server does, rather than a refusal. */
        rc = packet1_find_digest(c1, fp_key, FP_KEY_TEXT_LEN, &scheme);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            hs->digest = 1;
            memcpy(hs->peer1_digest, c1 + digest_offset(c1, scheme), DIGEST_LEN);
        }
    }

    /* Our epoch is 0: the timestamps we send on this connection start at 0. */
    sl_wr_be32(hs->own1, 0);
    rc = fill_random(hs->own1 + 8, SL_RTMP_HS_SIZE - 8);
    if (rc < 0)
        return rc;
    if (hs->digest) {
        /* S1 is signed with the scheme the client used: clients that try
         * only their own scheme first (or only it) are served either way. */
        memcpy(hs->own1 + 4, server_version, 4);
        rc = packet1_sign(hs->own1, scheme, fms_key, FMS_KEY_TEXT_LEN);
        if (rc == 0)
            rc = packet2_build(s2, fms_key, sizeof(fms_key), hs->peer1_digest);
        if (rc < 0)
            return rc;
    } else {
        memset(hs->own1 + 4, 0, 4);
        memcpy(s2, c1, SL_RTMP_HS_SIZE); /* plain S2 echoes C1 */
    }

    rc = sl_wbuf_reserve(out, 1 + 2 * SL_RTMP_HS_SIZE);
    if (rc < 0)
        return rc;
    /* Cannot fail after the reservation. */
    (void)sl_wbuf_put(out, &s0, 1);
    (void)sl_wbuf_put(out, hs->own1, SL_RTMP_HS_SIZE);
    (void)sl_wbuf_put(out, s2, SL_RTMP_HS_SIZE);
    return 0;
}

/*
 * Client, S0+S1+S2 complete in hs->buf: if we offered a digest and S1
 * carries a valid FMS digest, answers with a digest C2; otherwise with a
 * plain C2 echoing S1. S2 is not checked, on purpose: it proves nothing (the
 * keys are public), servers differ in what they put there, and the server
 * side equally accepts any C2.
 */
static int client_answer(sl_rtmp_hs_t *hs, sl_wbuf_t *out)
{
    const uint8_t *s1 = hs->buf + 1;
    uint8_t c2[SL_RTMP_HS_SIZE];
    int scheme = 0;
    int rc;

    hs->peer_epoch = sl_rd_be32(s1);
    if (packet1_offers_digest(hs->own1) && packet1_offers_digest(s1)) {
        rc = packet1_find_digest(s1, fms_key, FMS_KEY_TEXT_LEN, &scheme);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            hs->digest = 1;
            memcpy(hs->peer1_digest, s1 + digest_offset(s1, scheme), DIGEST_LEN);
        }
    }
    if (hs->digest) {
        rc = packet2_build(c2, fp_key, sizeof(fp_key), hs->peer1_digest);
        if (rc < 0)
            return rc;
    } else {
        memcpy(c2, s1, SL_RTMP_HS_SIZE);
    }
    return sl_wbuf_put(out, c2, SL_RTMP_HS_SIZE);
}

/*
 * Server side: see rtmp_handshake.h. The caller owns hs (it lives inside
 * the connection); nothing is allocated, so there is no cleanup. A zeroed
 * sl_rtmp_hs_t is also a valid server handshake waiting for C0+C1.
 */
void sl_rtmp_hs_server_init(sl_rtmp_hs_t *hs)
{
    memset(hs, 0, sizeof(*hs));
    hs->state = SL_RTMP_HS_SERVER_WAIT_C0C1;
}

/*
 * Client side: see rtmp_handshake.h. Appends exactly 1537 bytes to out (or
 * nothing on error). Errors: the wbuf's SL_ETOOBIG/SL_ENOMEM, SL_ENOMEM from
 * libcrypto, SL_EIO when no random bytes can be had; hs is then FAILED.
 */
int sl_rtmp_hs_client_start(sl_rtmp_hs_t *hs, int digest, sl_wbuf_t *out)
{
    uint8_t c0 = VERSION_PLAIN;
    int rc;

    memset(hs, 0, sizeof(*hs));
    hs->state = SL_RTMP_HS_CLIENT_WAIT_S0S1S2;
    /* Epoch 0 and, for the plain variant, a zero version field: the
     * version field is how the server tells the two variants apart, and
     * how client_answer() later remembers which one we offered. */
    rc = fill_random(hs->own1 + 8, SL_RTMP_HS_SIZE - 8);
    if (rc < 0)
        goto fail;
    if (digest) {
        /* Scheme 0, like ffmpeg and Flash Player 9: servers try both. */
        memcpy(hs->own1 + 4, client_version, 4);
        rc = packet1_sign(hs->own1, 0, fp_key, FP_KEY_TEXT_LEN);
        if (rc < 0)
            goto fail;
    }
    rc = sl_wbuf_reserve(out, 1 + SL_RTMP_HS_SIZE);
    if (rc < 0)
        goto fail;
    (void)sl_wbuf_put(out, &c0, 1);
    (void)sl_wbuf_put(out, hs->own1, SL_RTMP_HS_SIZE);
    return 0;
fail:
    hs->state = SL_RTMP_HS_FAILED;
    return rc;
}

/*
 * Both sides: see rtmp_handshake.h. Borrows in for the call only (the bytes
 * it needs are copied into hs->buf); in may be NULL when n is 0. Output is
 * appended whole or not at all: 3073 bytes (server, once C0+C1 are in) or
 * 1536 (client, once S0+S1+S2 are in). Once DONE, further calls return 1
 * and consume nothing. Any error leaves hs FAILED, after which every call
 * returns SL_EPROTO and consumes nothing. Errors besides SL_EPROTO: the
 * wbuf's SL_ETOOBIG/SL_ENOMEM, SL_ENOMEM from libcrypto, SL_EIO when no
 * random bytes can be had.
 */
int sl_rtmp_hs_feed(sl_rtmp_hs_t *hs, const uint8_t *in, size_t n, size_t *consumed,
                    sl_wbuf_t *out)
{
    size_t used = 0;
    int rc = 0;

    for (;;) {
        size_t need;
        switch (hs->state) {
        case SL_RTMP_HS_SERVER_WAIT_C0C1:
            need = 1 + SL_RTMP_HS_SIZE;
            break;
        case SL_RTMP_HS_SERVER_WAIT_C2:
            need = SL_RTMP_HS_SIZE;
            break;
        case SL_RTMP_HS_CLIENT_WAIT_S0S1S2:
            need = 1 + 2 * SL_RTMP_HS_SIZE;
            break;
        case SL_RTMP_HS_DONE:
            /* Everything after the handshake belongs to the caller. */
            *consumed = used;
            return 1;
        case SL_RTMP_HS_FAILED:
        default:
            *consumed = used;
            return SL_EPROTO;
        }
        if (used == n) {
            *consumed = used;
            return 0;
        }

        size_t take = need - hs->have;
        if (take > n - used)
            take = n - used;
        /* Check the version byte the moment it arrives: an HTTP request or
         * an RTMPE client is refused without waiting for 1536 more bytes. */
        if (hs->have == 0 && hs->state != SL_RTMP_HS_SERVER_WAIT_C2 &&
            in[used] != VERSION_PLAIN) {
            rc = SL_EPROTO;
            goto fail;
        }
        /* C2's content is not used (see below), so it is only counted. */
        if (hs->state != SL_RTMP_HS_SERVER_WAIT_C2)
            memcpy(hs->buf + hs->have, in + used, take);
        hs->have += take;
        used += take;
        if (hs->have < need)
            continue;

        switch (hs->state) {
        case SL_RTMP_HS_SERVER_WAIT_C0C1:
            rc = server_answer(hs, out);
            if (rc < 0)
                goto fail;
            hs->state = SL_RTMP_HS_SERVER_WAIT_C2;
            hs->have = 0;
            break;
        case SL_RTMP_HS_SERVER_WAIT_C2:
            /* C2 should echo S1 (or carry a digest keyed from S1's), but
             * many encoders send anything there; nginx-rtmp and SRS accept
             * it unchecked and so do we: it authenticates nothing. */
            hs->state = SL_RTMP_HS_DONE;
            break;
        default: /* SL_RTMP_HS_CLIENT_WAIT_S0S1S2 */
            rc = client_answer(hs, out);
            if (rc < 0)
                goto fail;
            hs->state = SL_RTMP_HS_DONE;
            break;
        }
    }

fail:
    hs->state = SL_RTMP_HS_FAILED;
    *consumed = used;
    return rc;
}
