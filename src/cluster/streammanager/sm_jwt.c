/*
 * HS256 tokens of the SM 2.0 login (see sm_jwt.h): base64url, HMAC-SHA256
 * through OpenSSL, claims through jansson.
 */
#include "cluster/streammanager/sm_jwt.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "sluice/errors.h"

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding of n bytes into out (cap with the NUL): length or -1. */
static int b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t need = (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0);
    if (need + 1 > cap)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = B64URL[(v >> 18) & 63];
        out[o++] = B64URL[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = B64URL[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = B64URL[v & 63];
    }
    out[o] = '\0';
    return (int)o;
}

static int b64val(char c)
{
    const char *p = c ? strchr(B64URL, c) : NULL;
    return p ? (int)(p - B64URL) : -1;
}

/* Decodes n base64url characters (no padding) into out (cap): length or -1. */
static int b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val(in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (int)o;
}

static int hmac(const uint8_t *secret, size_t secret_len, const char *data, size_t n,
                uint8_t mac[32])
{
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)data, n, mac, &len) ||
        len != 32)
        return SL_ENOMEM;
    return 0;
}

int sl_sm_jwt_sign(const uint8_t *secret, size_t secret_len, const char *sub, const char *role,
                   uint64_t now_s, uint64_t ttl_s, char *out, size_t cap)
{
    if (!secret_len || strlen(sub) >= SL_SM_JWT_SUB_MAX || strlen(role) >= SL_SM_JWT_ROLE_MAX)
        return SL_EINVAL;
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    json_t *claims = json_pack("{s:s, s:s, s:[s], s:I, s:I}", "sub", sub, "role", role, "roles",
                               role, "iat", (json_int_t)now_s, "exp", (json_int_t)(now_s + ttl_s));
    char *payload = claims ? json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(claims);
    if (!payload)
        return SL_ENOMEM;
    int rc = SL_ETOOBIG;
    char buf[SL_SM_JWT_MAX];
    int h = b64url_encode((const uint8_t *)header, strlen(header), buf, sizeof buf);
    if (h < 0 || (size_t)h + 1 >= sizeof buf)
        goto fail;
    buf[h] = '.';
    int p = b64url_encode((const uint8_t *)payload, strlen(payload), buf + h + 1,
                          sizeof buf - (size_t)h - 1);
    if (p < 0)
        goto fail;
    size_t signed_len = (size_t)h + 1 + (size_t)p;
    uint8_t mac[32];
    if ((rc = hmac(secret, secret_len, buf, signed_len, mac)) != 0)
        goto fail;
    rc = SL_ETOOBIG;
    if (signed_len + 2 >= sizeof buf)
        goto fail;
    buf[signed_len] = '.';
    if (b64url_encode(mac, sizeof mac, buf + signed_len + 1, sizeof buf - signed_len - 1) < 0)
        goto fail;
    if (strlen(buf) + 1 > cap)
        goto fail;
    memcpy(out, buf, strlen(buf) + 1);
    rc = 0;
fail:
    free(payload);
    return rc;
}

int sl_sm_jwt_verify(const uint8_t *secret, size_t secret_len, const char *token, size_t len,
                     uint64_t now_s, char *role, char *sub)
{
    if (len > SL_SM_JWT_MAX)
        return SL_ETOOBIG;
    if (!secret_len)
        return SL_EDENIED;
    const char *d1 = memchr(token, '.', len);
    if (!d1)
        return SL_EINVAL;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return SL_EINVAL;
    /* The header first: this verifier knows one algorithm, and a token
     * naming another is refused whatever its signature. */
    char header[256];
    int hl = b64url_decode(token, (size_t)(d1 - token), (uint8_t *)header, sizeof header - 1);
    if (hl < 0)
        return SL_EINVAL;
    header[hl] = '\0';
    json_t *h = json_loadb(header, (size_t)hl, JSON_REJECT_DUPLICATES, NULL);
    json_t *alg = json_object_get(h, "alg");
    int alg_ok = json_is_string(alg) && strcmp(json_string_value(alg), "HS256") == 0 &&
                 !json_object_get(h, "crit");
    json_decref(h);
    if (!alg_ok)
        return SL_EDENIED;
    uint8_t mac[32], got[33];
    if (hmac(secret, secret_len, token, (size_t)(d2 - token), mac))
        return SL_ENOMEM;
    size_t sl = len - (size_t)(d2 + 1 - token);
    if (sl != 43 || b64url_decode(d2 + 1, sl, got, sizeof got) != 32 ||
        CRYPTO_memcmp(mac, got, 32) != 0)
        return SL_EDENIED;
    char payload[1024];
    int pl = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), (uint8_t *)payload, sizeof payload - 1);
    if (pl < 0)
        return SL_EINVAL;
    json_t *c = json_loadb(payload, (size_t)pl, JSON_REJECT_DUPLICATES, NULL);
    json_t *exp = json_object_get(c, "exp");
    json_t *r = json_object_get(c, "role");
    json_t *s = json_object_get(c, "sub");
    int rc = SL_EINVAL;
    if (!json_is_integer(exp) || !json_is_string(r) || json_string_length(r) >= SL_SM_JWT_ROLE_MAX)
        goto fail;
    rc = SL_EDENIED;
    if (json_integer_value(exp) <= 0 || (uint64_t)json_integer_value(exp) <= now_s)
        goto fail;
    memcpy(role, json_string_value(r), json_string_length(r) + 1);
    if (sub) {
        sub[0] = '\0';
        if (json_is_string(s) && json_string_length(s) < SL_SM_JWT_SUB_MAX)
            memcpy(sub, json_string_value(s), json_string_length(s) + 1);
    }
    rc = 0;
fail:
    json_decref(c);
    return rc;
}
