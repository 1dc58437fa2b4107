/*
 * HS256 JWT check for the SM 2.0 admin API (as_auth.h): base64url decoding
 * into fixed buffers, the header's alg, a constant-time compare of the MAC,
 * and the payload's exp.
 */
#include "cluster/autoscale/as_auth.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "sluice/errors.h"

/* base64url without padding into out (cap bytes): the decoded length, or -1. */
static int b64url(const char *s, size_t n, unsigned char *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i], v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-')
            v = 62;
        else if (c == '_')
            v = 63;
        else if (c == '=' && i + 2 >= n)
            break;
        else
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (int)o;
}

int sl_as_jwt_check(const char *token, size_t len, const char *secret, uint64_t now_s)
{
    unsigned char head[SL_AS_JWT_MAX], body[SL_AS_JWT_MAX], sig[64];
    if (len > SL_AS_JWT_MAX)
        return SL_ETOOBIG;
    if (!secret || !secret[0])
        return SL_EDENIED;
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return SL_EINVAL;
    int hl = b64url(token, (size_t)(d1 - token), head, sizeof head);
    int bl = b64url(d1 + 1, (size_t)(d2 - d1 - 1), body, sizeof body);
    int sl = b64url(d2 + 1, len - (size_t)(d2 + 1 - token), sig, sizeof sig);
    if (hl <= 0 || bl <= 0 || sl < 0)
        return SL_EINVAL;
    json_t *h = json_loadb((const char *)head, (size_t)hl, 0, NULL);
    const char *alg = json_string_value(json_object_get(h, "alg"));
    int alg_ok = alg && strcmp(alg, "HS256") == 0;
    json_decref(h);
    if (!alg_ok)
        return SL_EDENIED;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)token,
              (size_t)(d2 - token), mac, &mac_len) ||
        mac_len != 32 || sl != 32 || CRYPTO_memcmp(mac, sig, 32) != 0)
        return SL_EDENIED;
    json_t *p = json_loadb((const char *)body, (size_t)bl, 0, NULL);
    if (!json_is_object(p)) {
        json_decref(p);
        return SL_EINVAL;
    }
    json_t *exp = json_object_get(p, "exp");
    int ok = !exp || (json_is_number(exp) && json_number_value(exp) > (double)now_s);
    json_decref(p);
    return ok ? 0 : SL_EDENIED;
}
