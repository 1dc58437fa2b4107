/*
 * The STUN codec of the WebRTC ICE-lite agent (see stun.h): a bounded
 * parser that borrows from the packet, MESSAGE-INTEGRITY (HMAC-SHA1 from
 * libcrypto) and FINGERPRINT (a table-driven CRC-32 written here, so that
 * no zlib is linked for 4 bytes), builders for the three messages an
 * ICE-lite agent and its test client send, the RFC 7983 first-byte demux,
 * the RFC 6544 ICE-TCP framer and ICE credential and priority helpers.
 * Nothing here touches a socket or the loop, and only the framer allocates.
 *
 * Wire format (RFC 5389 6 and 15):
 *   header  type(16, top two bits 0) length(16, bytes after the header,
 *           multiple of 4) magic cookie(32) transaction id(96)
 *   attr    type(16) length(16, unpadded) value, padded with zeros to 4
 * MESSAGE-INTEGRITY covers the message up to its own header, with the
 * header length field set as if the message ended right after it;
 * FINGERPRINT likewise, up to its own header and with the length counting
 * it. The checks rebuild that length rather than trusting the sender's.
 */
#include "proto/webrtc/stun.h"

#include <netinet/in.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "sluice/errors.h"

#define MI_LEN 20                  /* HMAC-SHA1 output, MESSAGE-INTEGRITY value */
#define MI_ATTR_LEN (4 + MI_LEN)   /* MESSAGE-INTEGRITY with its attribute header */
#define FP_ATTR_LEN 8              /* FINGERPRINT with its attribute header */
#define FINGERPRINT_XOR 0x5354554eu

/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) table: the CRC of
 * each byte value, as zlib's crc32() uses it. Generated once, by hand. */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
    0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
    0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
    0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
    0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
    0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
    0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
    0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
    0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
    0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
    0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
    0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
    0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
    0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
    0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
    0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
    0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
    0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
    0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
    0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
    0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
    0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
    0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
    0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
    0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
    0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
    0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
    0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
    0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
    0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
    0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
    0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
    0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
    0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
    0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

/* Continues a CRC-32: crc is the value returned so far (0 to start). */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- demux --------------------------------------------------------------- */

sl_pkt_kind_t sl_webrtc_classify(const uint8_t *p, size_t len)
{
    if (len < 1)
        return SL_PKT_UNKNOWN;
    uint8_t b = p[0];
    if (b <= 3)
        return SL_PKT_STUN;
    if (b >= 20 && b <= 63)
        return SL_PKT_DTLS;
    if (b >= 128 && b <= 191) {
        /* RFC 5761 4: with RTP and RTCP on one port, RTP avoids payload
         * types 64..95, so a second byte of 192..223 (marker bit set on
         * those) can only be an RTCP packet type (SR 200, RR 201, ...). */
        if (len < 2)
            return SL_PKT_UNKNOWN;
        return (p[1] >= 192 && p[1] <= 223) ? SL_PKT_RTCP : SL_PKT_RTP;
    }
    return SL_PKT_UNKNOWN; /* 16..19 ZRTP, 64..79 TURN channels, unassigned */
}

/* ---- parser -------------------------------------------------------------- */

/* Comprehension-required attribute types (< 0x8000) that the parser
 * understands; any other one is reported in unknown_required. REALM and
 * NONCE are long-term credential attributes, which ICE does not use: a
 * request carrying them gets a 420, which is what RFC 5389 7.3.1 asks. */
static int known_required(uint16_t type)
{
    switch (type) {
    case SL_STUN_ATTR_MAPPED_ADDRESS:
    case SL_STUN_ATTR_USERNAME:
    case SL_STUN_ATTR_MESSAGE_INTEGRITY:
    case SL_STUN_ATTR_ERROR_CODE:
    case SL_STUN_ATTR_UNKNOWN_ATTRIBUTES:
    case SL_STUN_ATTR_XOR_MAPPED_ADDRESS:
    case SL_STUN_ATTR_PRIORITY:
    case SL_STUN_ATTR_USE_CANDIDATE:
        return 1;
    default:
        return 0;
    }
}

/* Decodes an XOR-MAPPED-ADDRESS value (RFC 5389 15.2) of n bytes into
 * m->mapped. The port is XORed with the top of the cookie, an IPv4
 * address with the cookie, an IPv6 address with cookie || transaction id. */
static int parse_xor_mapped(const uint8_t *v, size_t n, const uint8_t *hdr, sl_stun_msg_t *m)
{
    if (n < 4)
        return SL_EPROTO;
    uint16_t port = (uint16_t)(sl_rd_be16(v + 2) ^ (SL_STUN_MAGIC_COOKIE >> 16));
    memset(&m->mapped, 0, sizeof m->mapped);
    if (v[1] == 0x01) {
        if (n != 8)
            return SL_EPROTO;
        struct sockaddr_in *sin = (struct sockaddr_in *)&m->mapped;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        uint8_t a[4];
        for (int i = 0; i < 4; i++)
            a[i] = v[4 + i] ^ hdr[4 + i];
        memcpy(&sin->sin_addr, a, 4);
    } else if (v[1] == 0x02) {
        if (n != 20)
            return SL_EPROTO;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&m->mapped;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        for (int i = 0; i < 16; i++)
            sin6->sin6_addr.s6_addr[i] = v[4 + i] ^ hdr[4 + i]; /* cookie then tid */
    } else {
        return SL_EPROTO;
    }
    m->has_mapped = 1;
    return 0;
}

int sl_stun_parse(const uint8_t *p, size_t len, sl_stun_msg_t *m)
{
    memset(m, 0, sizeof *m);
    if (len < SL_STUN_HEADER_LEN || len > SL_STUN_MAX_MSG)
        return SL_EPROTO;
    if (p[0] & 0xC0)
        return SL_EPROTO;
    size_t body_len = sl_rd_be16(p + 2);
    if (body_len % 4 != 0 || body_len != len - SL_STUN_HEADER_LEN)
        return SL_EPROTO;
    if (sl_rd_be32(p + 4) != SL_STUN_MAGIC_COOKIE)
        return SL_EPROTO;
    m->type = sl_rd_be16(p);
    memcpy(m->tid, p + 8, 12);

    size_t off = SL_STUN_HEADER_LEN;
    int n_attrs = 0;
    int have_username = 0, have_error = 0, have_role = 0;
    while (off < len) {
        if (++n_attrs > SL_STUN_MAX_ATTRS)
            return SL_EPROTO;
        if (len - off < 4)
            return SL_EPROTO;
        uint16_t type = sl_rd_be16(p + off);
        size_t n = sl_rd_be16(p + off + 2);
        size_t padded = (n + 3) & ~(size_t)3;
        if (padded > len - off - 4)
            return SL_EPROTO;
        const uint8_t *v = p + off + 4;

        /* Order: FINGERPRINT is last; only FINGERPRINT follows MESSAGE-INTEGRITY.
         * (RFC 5389 says to ignore what follows; refusing is stricter and no
         * ICE agent sends anything there.) */
        if (m->has_fingerprint)
            return SL_EPROTO;
        if (m->has_integrity && type != SL_STUN_ATTR_FINGERPRINT)
            return SL_EPROTO;

        switch (type) {
        case SL_STUN_ATTR_USERNAME:
            if (n > SL_STUN_MAX_USERNAME)
                return SL_EPROTO;
            if (!have_username) { /* RFC 5389 15: only the first occurrence counts */
                m->username = v;
                m->username_len = n;
                have_username = 1;
            }
            break;
        case SL_STUN_ATTR_MESSAGE_INTEGRITY:
            if (n != MI_LEN)
                return SL_EPROTO;
            m->has_integrity = 1;
            m->integrity_off = off;
            break;
        case SL_STUN_ATTR_FINGERPRINT:
            if (n != 4)
                return SL_EPROTO;
            m->has_fingerprint = 1;
            m->fingerprint_off = off;
            break;
        case SL_STUN_ATTR_PRIORITY:
            if (n != 4)
                return SL_EPROTO;
            if (!m->has_priority) {
                m->priority = sl_rd_be32(v);
                m->has_priority = 1;
            }
            break;
        case SL_STUN_ATTR_USE_CANDIDATE:
            if (n != 0)
                return SL_EPROTO;
            m->use_candidate = 1;
            break;
        case SL_STUN_ATTR_ICE_CONTROLLING:
        case SL_STUN_ATTR_ICE_CONTROLLED:
            if (n != 8)
                return SL_EPROTO;
            if (type == SL_STUN_ATTR_ICE_CONTROLLING)
                m->ice_controlling = 1;
            else
                m->ice_controlled = 1;
            if (!have_role) {
                m->tiebreaker = sl_rd_be64(v);
                have_role = 1;
            }
            break;
        case SL_STUN_ATTR_ERROR_CODE: {
            if (n < 4)
                return SL_EPROTO;
            int cls = v[2] & 0x07, number = v[3];
            if (cls < 3 || cls > 6 || number > 99)
                return SL_EPROTO;
            if (!have_error) {
                m->error_code = cls * 100 + number;
                have_error = 1;
            }
            break;
        }
        case SL_STUN_ATTR_XOR_MAPPED_ADDRESS:
            if (!m->has_mapped) {
                int rc = parse_xor_mapped(v, n, p, m);
                if (rc < 0)
                    return rc;
            }
            break;
        default:
            if (type < 0x8000 && !known_required(type)) {
                int dup = 0;
                for (int i = 0; i < m->n_unknown_required; i++)
                    dup |= m->unknown_required[i] == type;
                if (!dup && m->n_unknown_required < SL_STUN_MAX_UNKNOWN)
                    m->unknown_required[m->n_unknown_required++] = type;
            }
            break; /* comprehension-optional or known but unused: skipped */
        }
        off += 4 + padded;
    }
    return 0;
}

/* ---- integrity and fingerprint ------------------------------------------- */

/* HMAC-SHA1 of msg[0..end) with the header length field replaced by
 * body_len, into mac[MI_LEN]. The message is at most SL_STUN_MAX_MSG
 * bytes, so it is copied once to patch the header: one HMAC call. */
static int hmac_sha1_patched(const uint8_t *msg, size_t end, size_t body_len, const uint8_t *key,
                             size_t key_len, uint8_t mac[MI_LEN])
{
    uint8_t tmp[SL_STUN_MAX_MSG];
    if (end < SL_STUN_HEADER_LEN || end > sizeof tmp || key_len > INT32_MAX)
        return SL_EINVAL;
    memcpy(tmp, msg, end);
    sl_wr_be16(tmp + 2, (uint16_t)body_len);
    unsigned int mac_len = 0;
    static const uint8_t empty_key = 0; /* HMAC() wants a pointer even for "" */
    if (!HMAC(EVP_sha1(), key_len ? key : &empty_key, (int)key_len, tmp, end, mac, &mac_len) ||
        mac_len != MI_LEN)
        return SL_EIO;
    return 0;
}

int sl_stun_check_integrity(const uint8_t *p, size_t len, const sl_stun_msg_t *m,
                            const uint8_t *key, size_t key_len)
{
    if (!m->has_integrity || m->integrity_off < SL_STUN_HEADER_LEN ||
        m->integrity_off + MI_ATTR_LEN > len || (!key && key_len))
        return SL_EDENIED;
    size_t off = m->integrity_off;
    uint8_t mac[MI_LEN];
    if (hmac_sha1_patched(p, off, off + MI_ATTR_LEN - SL_STUN_HEADER_LEN, key, key_len, mac) < 0)
        return SL_EDENIED;
    int ok = CRYPTO_memcmp(mac, p + off + 4, MI_LEN) == 0;
    OPENSSL_cleanse(mac, sizeof mac);
    return ok ? 0 : SL_EDENIED;
}

/* CRC-32 of msg[0..end) with the header length field replaced by body_len,
 * XORed with the STUN constant. */
static uint32_t fingerprint_patched(const uint8_t *msg, size_t end, size_t body_len)
{
    uint8_t hdr[4];
    memcpy(hdr, msg, 2);
    sl_wr_be16(hdr + 2, (uint16_t)body_len);
    uint32_t crc = crc32_update(0, hdr, 4);
    crc = crc32_update(crc, msg + 4, end - 4);
    return crc ^ FINGERPRINT_XOR;
}

int sl_stun_check_fingerprint(const uint8_t *p, size_t len, const sl_stun_msg_t *m)
{
    if (!m->has_fingerprint || m->fingerprint_off < SL_STUN_HEADER_LEN ||
        m->fingerprint_off + FP_ATTR_LEN > len)
        return SL_EPROTO;
    size_t off = m->fingerprint_off;
    uint32_t want = fingerprint_patched(p, off, off + FP_ATTR_LEN - SL_STUN_HEADER_LEN);
    return sl_rd_be32(p + off + 4) == want ? 0 : SL_EPROTO;
}

/* ---- builders ------------------------------------------------------------ */

/* A bounded writer over the caller's buffer: the first overflow sticks in
 * err and later writes do nothing, so builders check once at the end. */
typedef struct writer {
    uint8_t *out;
    size_t cap;
    size_t len;
    int err;
} writer_t;

/* Reserves n bytes and returns them, or NULL (err set) when they don't fit. */
static uint8_t *w_take(writer_t *w, size_t n)
{
    if (w->err || n > w->cap - w->len) {
        w->err = SL_ETOOBIG;
        return NULL;
    }
    uint8_t *p = w->out + w->len;
    w->len += n;
    return p;
}

static void w_header(writer_t *w, uint16_t type, const uint8_t tid[12])
{
    uint8_t *h = w_take(w, SL_STUN_HEADER_LEN);
    if (!h)
        return;
    sl_wr_be16(h, type);
    sl_wr_be16(h + 2, 0); /* set by w_finish */
    sl_wr_be32(h + 4, SL_STUN_MAGIC_COOKIE);
    memcpy(h + 8, tid, 12);
}

/* Appends an attribute of n value bytes (zero-padded to 4) and returns
 * where its value goes, or NULL. */
static uint8_t *w_attr(writer_t *w, uint16_t type, size_t n)
{
    size_t padded = (n + 3) & ~(size_t)3;
    if (n > 0xFFFF || padded + 4 > SL_STUN_MAX_MSG) {
        w->err = SL_EINVAL;
        return NULL;
    }
    uint8_t *a = w_take(w, 4 + padded);
    if (!a)
        return NULL;
    sl_wr_be16(a, type);
    sl_wr_be16(a + 2, (uint16_t)n);
    memset(a + 4 + n, 0, padded - n);
    return a + 4;
}

/* Appends MESSAGE-INTEGRITY (when key is set) and FINGERPRINT, setting the
 * header length as each covers it, and returns the length or the error. */
static int w_finish(writer_t *w, const uint8_t *key, size_t key_len)
{
    if (w->err)
        return w->err;
    if (key) {
        size_t off = w->len;
        uint8_t *v = w_attr(w, SL_STUN_ATTR_MESSAGE_INTEGRITY, MI_LEN);
        if (!v)
            return w->err;
        size_t body_len = off + MI_ATTR_LEN - SL_STUN_HEADER_LEN;
        int rc = hmac_sha1_patched(w->out, off, body_len, key, key_len, v);
        if (rc < 0)
            return rc;
    }
    size_t off = w->len;
    uint8_t *v = w_attr(w, SL_STUN_ATTR_FINGERPRINT, 4);
    if (!v)
        return w->err;
    size_t body_len = off + FP_ATTR_LEN - SL_STUN_HEADER_LEN;
    sl_wr_be16(w->out + 2, (uint16_t)body_len);
    sl_wr_be32(v, fingerprint_patched(w->out, off, body_len));
    if (w->len > SL_STUN_MAX_MSG)
        return SL_ETOOBIG;
    return (int)w->len;
}

/* Appends XOR-MAPPED-ADDRESS of sa; the transaction id must be written. */
static void w_xor_mapped(writer_t *w, const struct sockaddr *sa)
{
    const uint8_t *hdr = w->out; /* cookie at 4, tid at 8: the XOR pad */
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        uint8_t *v = w_attr(w, SL_STUN_ATTR_XOR_MAPPED_ADDRESS, 8);
        if (!v)
            return;
        v[0] = 0;
        v[1] = 0x01;
        sl_wr_be16(v + 2, (uint16_t)(ntohs(sin->sin_port) ^ (SL_STUN_MAGIC_COOKIE >> 16)));
        const uint8_t *a = (const uint8_t *)&sin->sin_addr;
        for (int i = 0; i < 4; i++)
            v[4 + i] = a[i] ^ hdr[4 + i];
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        uint8_t *v = w_attr(w, SL_STUN_ATTR_XOR_MAPPED_ADDRESS, 20);
        if (!v)
            return;
        v[0] = 0;
        v[1] = 0x02;
        sl_wr_be16(v + 2, (uint16_t)(ntohs(sin6->sin6_port) ^ (SL_STUN_MAGIC_COOKIE >> 16)));
        for (int i = 0; i < 16; i++)
            v[4 + i] = sin6->sin6_addr.s6_addr[i] ^ hdr[4 + i];
    } else {
        w->err = SL_EINVAL;
    }
}

int sl_stun_build_binding_success(uint8_t *out, size_t cap, const uint8_t tid[12],
                                  const struct sockaddr *mapped, const uint8_t *key,
                                  size_t key_len)
{
    if (!out || !tid || !mapped)
        return SL_EINVAL;
    writer_t w = {out, cap, 0, 0};
    w_header(&w, SL_STUN_BINDING_SUCCESS, tid);
    w_xor_mapped(&w, mapped);
    return w_finish(&w, key, key_len);
}

/* The reason phrase RFC 5389 15.6 / RFC 8445 7.3.1.1 suggest for a code. */
static const char *default_reason(int code)
{
    switch (code) {
    case 300: return "Try Alternate";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 420: return "Unknown Attribute";
    case 438: return "Stale Nonce";
    case 487: return "Role Conflict";
    case 500: return "Server Error";
    default: return "Error";
    }
}

/* Common body of the two error builders: n_unknown types go into
 * UNKNOWN-ATTRIBUTES when code is 420. */
static int build_error(uint8_t *out, size_t cap, uint16_t method, const uint8_t tid[12],
                       int code, const char *reason, const uint16_t *unknown, int n_unknown,
                       const uint8_t *key, size_t key_len)
{
    if (!out || !tid || code < 300 || code > 699 || (method & ~0x3EEFu) != 0)
        return SL_EINVAL;
    if (!reason)
        reason = default_reason(code);
    size_t reason_len = strnlen(reason, SL_STUN_MAX_REASON + 1);
    if (reason_len > SL_STUN_MAX_REASON) {
        /* Cut at the cap without splitting a UTF-8 sequence: back off
         * over continuation bytes to the start of the cut character. */
        reason_len = SL_STUN_MAX_REASON;
        while (reason_len > 0 && ((uint8_t)reason[reason_len] & 0xC0) == 0x80)
            reason_len--;
    }
    writer_t w = {out, cap, 0, 0};
    w_header(&w, (uint16_t)(method | SL_STUN_CLASS_ERROR), tid);
    uint8_t *v = w_attr(&w, SL_STUN_ATTR_ERROR_CODE, 4 + reason_len);
    if (v) {
        v[0] = 0;
        v[1] = 0;
        v[2] = (uint8_t)(code / 100);
        v[3] = (uint8_t)(code % 100);
        memcpy(v + 4, reason, reason_len);
    }
    if (code == SL_STUN_ERR_UNKNOWN_ATTRIBUTE) {
        v = w_attr(&w, SL_STUN_ATTR_UNKNOWN_ATTRIBUTES, 2 * (size_t)n_unknown);
        for (int i = 0; v && i < n_unknown; i++)
            sl_wr_be16(v + 2 * i, unknown[i]);
    }
    return w_finish(&w, key, key_len);
}

int sl_stun_build_error(uint8_t *out, size_t cap, uint16_t method, const uint8_t tid[12],
                        int code, const char *reason, const uint8_t *key, size_t key_len)
{
    if (code == SL_STUN_ERR_UNKNOWN_ATTRIBUTE)
        return SL_EINVAL; /* needs the list: sl_stun_build_error_unknown */
    return build_error(out, cap, method, tid, code, reason, NULL, 0, key, key_len);
}

int sl_stun_build_error_unknown(uint8_t *out, size_t cap, uint16_t method, const uint8_t tid[12],
                                const uint16_t *types, int n, const uint8_t *key,
                                size_t key_len)
{
    if (!types || n < 1 || n > SL_STUN_MAX_UNKNOWN)
        return SL_EINVAL;
    return build_error(out, cap, method, tid, SL_STUN_ERR_UNKNOWN_ATTRIBUTE, NULL, types, n, key,
                       key_len);
}

int sl_stun_build_binding_request(uint8_t *out, size_t cap, const uint8_t tid[12],
                                  const char *username, uint32_t priority, int use_candidate,
                                  int controlling, uint64_t tiebreaker, const uint8_t *key,
                                  size_t key_len)
{
    if (!out || !tid)
        return SL_EINVAL;
    writer_t w = {out, cap, 0, 0};
    w_header(&w, SL_STUN_BINDING_REQUEST, tid);
    if (username) {
        size_t n = strnlen(username, SL_STUN_MAX_USERNAME + 1);
        if (n > SL_STUN_MAX_USERNAME)
            return SL_EINVAL;
        uint8_t *v = w_attr(&w, SL_STUN_ATTR_USERNAME, n);
        if (v)
            memcpy(v, username, n);
    }
    uint8_t *v = w_attr(&w, SL_STUN_ATTR_PRIORITY, 4);
    if (v)
        sl_wr_be32(v, priority);
    if (use_candidate)
        w_attr(&w, SL_STUN_ATTR_USE_CANDIDATE, 0);
    v = w_attr(&w, controlling ? SL_STUN_ATTR_ICE_CONTROLLING : SL_STUN_ATTR_ICE_CONTROLLED, 8);
    if (v) {
        sl_wr_be32(v, (uint32_t)(tiebreaker >> 32));
        sl_wr_be32(v + 4, (uint32_t)tiebreaker);
    }
    return w_finish(&w, key, key_len);
}

/* ---- ICE helpers --------------------------------------------------------- */

int sl_stun_username_split(const uint8_t *u, size_t len, const uint8_t **local, size_t *local_len)
{
    const uint8_t *colon = u ? memchr(u, ':', len) : NULL;
    if (!colon || colon == u || (size_t)(colon - u) + 1 == len)
        return SL_EPROTO;
    *local = u;
    *local_len = (size_t)(colon - u);
    return 0;
}

int sl_ice_credentials(char ufrag[9], char pwd[25])
{
    /* ice-char (RFC 8839 5.4): 64 symbols, so a random byte's low 6 bits
     * pick one uniformly: 8 chars = 48 bits, 24 chars = 144 bits, above
     * RFC 8445's minimums of 24 and 128 bits. */
    static const char ice_chars[64] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t rnd[8 + 24];
    if (RAND_bytes(rnd, (int)sizeof rnd) != 1) {
        memset(ufrag, 0, 9);
        memset(pwd, 0, 25);
        return SL_EIO;
    }
    for (int i = 0; i < 8; i++)
        ufrag[i] = ice_chars[rnd[i] & 63];
    ufrag[8] = '\0';
    for (int i = 0; i < 24; i++)
        pwd[i] = ice_chars[rnd[8 + i] & 63];
    pwd[24] = '\0';
    OPENSSL_cleanse(rnd, sizeof rnd);
    return 0;
}

uint32_t sl_ice_priority(int type_pref, int local_pref, int component)
{
    if (type_pref < 0)
        type_pref = 0;
    if (type_pref > 126)
        type_pref = 126;
    if (local_pref < 0)
        local_pref = 0;
    if (local_pref > 65535)
        local_pref = 65535;
    if (component < 1)
        component = 1;
    if (component > 256)
        component = 256;
    return ((uint32_t)type_pref << 24) + ((uint32_t)local_pref << 8) + (uint32_t)(256 - component);
}

/* ---- ICE-TCP framing ----------------------------------------------------- */

void sl_ice_tcp_framer_init(sl_ice_tcp_framer_t *f, size_t max_packet)
{
    memset(f, 0, sizeof *f);
    if (max_packet < 1)
        max_packet = 1;
    if (max_packet > 0xFFFF)
        max_packet = 0xFFFF;
    f->max_packet = max_packet;
}

static int framer_fail(sl_ice_tcp_framer_t *f, int err)
{
    f->err = err;
    f->len = 0;
    return err;
}

int sl_ice_tcp_framer_feed(sl_ice_tcp_framer_t *f, const uint8_t *p, size_t len,
                           void (*cb)(void *ud, const uint8_t *pkt, size_t len), void *ud)
{
    if (f->err)
        return f->err;
    for (;;) {
        if (f->len == 0) {
            /* Nothing buffered: deliver whole frames straight from p, and
             * copy only a trailing partial frame. */
            while (len >= 2) {
                size_t n = sl_rd_be16(p);
                if (n > f->max_packet)
                    return framer_fail(f, SL_ETOOBIG);
                if (len - 2 < n)
                    break;
                if (n)
                    cb(ud, p + 2, n);
                p += 2 + n;
                len -= 2 + n;
            }
            if (len == 0)
                return 0;
            if (!f->buf) {
                f->buf = sl_malloc(f->max_packet + 2);
                if (!f->buf)
                    return framer_fail(f, SL_ENOMEM);
                f->cap = f->max_packet + 2;
            }
            /* len < 2 + n <= cap: the check above bounded n. */
            memcpy(f->buf, p, len);
            f->len = len;
            return 0;
        }
        /* A frame is buffered: complete its length prefix, then its body. */
        if (len == 0)
            return 0;
        if (f->len == 1) {
            f->buf[1] = *p++;
            len--;
            f->len = 2;
            if (sl_rd_be16(f->buf) > f->max_packet)
                return framer_fail(f, SL_ETOOBIG);
        }
        size_t n = sl_rd_be16(f->buf);
        size_t take = 2 + n - f->len;
        if (take > len)
            take = len;
        memcpy(f->buf + f->len, p, take);
        f->len += take;
        p += take;
        len -= take;
        if (f->len < 2 + n)
            return 0;
        f->len = 0;
        if (n)
            cb(ud, f->buf + 2, n);
    }
}

void sl_ice_tcp_framer_cleanup(sl_ice_tcp_framer_t *f)
{
    sl_free(f->buf);
    f->buf = NULL;
    f->len = 0;
    f->cap = 0;
}
