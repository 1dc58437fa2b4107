/*
 * JWT verification with OpenSSL 3 and jansson (see jwt.h for the rules and
 * why the key, never the token, decides the algorithm family).
 *
 * Order of work for a token: split the compact form, decode and parse the
 * header (duplicate keys refused), refuse `none`/unknown/`crit`, pick the
 * key the configuration allows for that algorithm (kid first), verify the
 * signature over the ASCII "header.payload", and only then parse the
 * claims and check the times, issuer and audience. Nothing in the header
 * (jku, jwk, x5u, x5c) is ever used to find a key.
 */
#include "modules/auth_jwt/jwt.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/time.h"
#include "sluice/errors.h"

#define MAX_HEADER_B64 2048      /* a JOSE header is small */
#define MIN_RSA_BITS 2048        /* RFC 7518 §3.3 */
#define MAX_KEY_FILE (1024 * 1024)

typedef enum { FAM_HMAC, FAM_RSA, FAM_PSS, FAM_EC } family_t;

typedef struct alg {
    const char *name;
    family_t family;
    const EVP_MD *(*md)(void);
    int ec_nid;          /* ES*: the curve the key must be on */
    size_t ec_len;       /* ES*: bytes of r and of s */
} alg_t;

static const alg_t g_algs[] = {
    {"HS256", FAM_HMAC, EVP_sha256, 0, 0},
    {"HS384", FAM_HMAC, EVP_sha384, 0, 0},
    {"HS512", FAM_HMAC, EVP_sha512, 0, 0},
    {"RS256", FAM_RSA, EVP_sha256, 0, 0},
    {"RS384", FAM_RSA, EVP_sha384, 0, 0},
    {"RS512", FAM_RSA, EVP_sha512, 0, 0},
    {"PS256", FAM_PSS, EVP_sha256, 0, 0},
    {"PS384", FAM_PSS, EVP_sha384, 0, 0},
    {"PS512", FAM_PSS, EVP_sha512, 0, 0},
    {"ES256", FAM_EC, EVP_sha256, NID_X9_62_prime256v1, 32},
    {"ES384", FAM_EC, EVP_sha384, NID_secp384r1, 48},
    {"ES512", FAM_EC, EVP_sha512, NID_secp521r1, 66},
};

typedef struct jkey {
    EVP_PKEY *pkey;  /* owned */
    char *kid;       /* owned, or NULL (a PEM key) */
    char *alg;       /* the JWK's alg, owned, or NULL = any of its family */
    int is_rsa;      /* else EC */
    int ec_nid;      /* EC: the curve */
} jkey_t;

struct sl_jwt_keys {
    uint8_t *secret;           /* HMAC secret (owned) or NULL */
    size_t secret_len;
    jkey_t keys[SL_JWT_MAX_KEYS];
    size_t n;
};

/* ------------------------------------------------------------------ */
/* base64url                                                           */

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long sl_jwt_b64url_decode(const char *in, size_t len, uint8_t *out)
{
    if (len % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Canonical form only: the bits left over must be zero. */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    return (long)o;
}

size_t sl_jwt_b64url_encode(const uint8_t *in, size_t len, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

/* Decodes into a fresh buffer (caller sl_frees); NULL when malformed or on ENOMEM (*nomem set). */
static uint8_t *b64_dup(const char *in, size_t len, size_t *out_len, int *nomem)
{
    uint8_t *buf = sl_malloc(len / 4 * 3 + 4);
    if (!buf) {
        *nomem = 1;
        return NULL;
    }
    long n = sl_jwt_b64url_decode(in, len, buf);
    if (n < 0) {
        sl_free(buf);
        return NULL;
    }
    *out_len = (size_t)n;
    return buf;
}

/* ------------------------------------------------------------------ */
/* keys                                                                */

int sl_jwt_keys_new(sl_jwt_keys_t **out)
{
    *out = sl_calloc(1, sizeof(**out));
    return *out ? 0 : SL_ENOMEM;
}

void sl_jwt_keys_free(sl_jwt_keys_t *k)
{
    if (!k)
        return;
    if (k->secret) {
        OPENSSL_cleanse(k->secret, k->secret_len);
        sl_free(k->secret);
    }
    for (size_t i = 0; i < k->n; i++) {
        EVP_PKEY_free(k->keys[i].pkey);
        sl_free(k->keys[i].kid);
        sl_free(k->keys[i].alg);
    }
    sl_free(k);
}

int sl_jwt_keys_set_secret(sl_jwt_keys_t *k, const void *secret, size_t len)
{
    if (!len)
        return SL_EINVAL;
    uint8_t *s = sl_malloc(len);
    if (!s)
        return SL_ENOMEM;
    memcpy(s, secret, len);
    if (k->secret) {
        OPENSSL_cleanse(k->secret, k->secret_len);
        sl_free(k->secret);
    }
    k->secret = s;
    k->secret_len = len;
    return 0;
}

size_t sl_jwt_keys_count(const sl_jwt_keys_t *k) { return k->n; }
int sl_jwt_keys_has_secret(const sl_jwt_keys_t *k) { return k->secret != NULL; }

static void seterr(char *err, size_t err_len, const char *msg)
{
    if (err && err_len)
        snprintf(err, err_len, "%s", msg);
}

static int curve_nid(EVP_PKEY *pkey)
{
    char name[64];
    if (EVP_PKEY_get_group_name(pkey, name, sizeof name, NULL) != 1)
        return NID_undef;
    int nid = OBJ_sn2nid(name);
    return nid != NID_undef ? nid : OBJ_txt2nid(name);
}

/* Takes ownership of pkey (freed on error). */
static int add_pkey(sl_jwt_keys_t *k, EVP_PKEY *pkey, const char *kid, const char *alg, char *err,
                    size_t err_len)
{
    jkey_t key = {.pkey = pkey};
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (EVP_PKEY_get_bits(pkey) < MIN_RSA_BITS) {
            seterr(err, err_len, "RSA key shorter than 2048 bits");
            EVP_PKEY_free(pkey);
            return SL_EINVAL;
        }
        key.is_rsa = 1;
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        key.ec_nid = curve_nid(pkey);
        if (key.ec_nid != NID_X9_62_prime256v1 && key.ec_nid != NID_secp384r1 &&
            key.ec_nid != NID_secp521r1) {
            seterr(err, err_len, "EC key not on P-256, P-384 or P-521");
            EVP_PKEY_free(pkey);
            return SL_EINVAL;
        }
    } else {
        seterr(err, err_len, "unsupported key type (RSA or EC expected)");
        EVP_PKEY_free(pkey);
        return SL_EINVAL;
    }
    if (k->n == SL_JWT_MAX_KEYS) {
        seterr(err, err_len, "too many keys");
        EVP_PKEY_free(pkey);
        return SL_ETOOBIG;
    }
    if ((kid && !(key.kid = sl_strdup(kid))) || (alg && !(key.alg = sl_strdup(alg)))) {
        sl_free(key.kid);
        EVP_PKEY_free(pkey);
        return SL_ENOMEM;
    }
    k->keys[k->n++] = key;
    return 0;
}

int sl_jwt_keys_add_pem(sl_jwt_keys_t *k, const char *pem, size_t len, const char *kid, char *err,
                        size_t err_len)
{
    if (len > MAX_KEY_FILE || len > INT32_MAX)
        return SL_ETOOBIG;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return SL_ENOMEM;
    EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (!pkey) {
        /* Not a bare public key: maybe a certificate. */
        ERR_clear_error();
        BIO_free(bio);
        if (!(bio = BIO_new_mem_buf(pem, (int)len)))
            return SL_ENOMEM;
        X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (cert) {
            pkey = X509_get_pubkey(cert);
            X509_free(cert);
        }
    }
    ERR_clear_error();
    BIO_free(bio);
    if (!pkey) {
        seterr(err, err_len, "no PEM public key or certificate found");
        return SL_EINVAL;
    }
    return add_pkey(k, pkey, kid, NULL, err, err_len);
}

/* A JWK member that is base64url: decoded into a fresh buffer. */
static uint8_t *jwk_bytes(json_t *jwk, const char *name, size_t *len, int *nomem)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    if (!s || !s[0])
        return NULL;
    return b64_dup(s, strlen(s), len, nomem);
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    if (pkey && strcmp(type, "EC") == 0) {
        /* fromdata does not check that the point is on the curve. */
        EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        int ok = chk && EVP_PKEY_public_check(chk) == 1;
        EVP_PKEY_CTX_free(chk);
        if (!ok) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    }
    ERR_clear_error();
    return pkey;
}

/* Builds the EVP_PKEY of one JWK; NULL with a reason in err (or *nomem). */
static EVP_PKEY *jwk_to_pkey(json_t *jwk, char *err, size_t err_len, int *nomem)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    EVP_PKEY *pkey = NULL;
    uint8_t *a = NULL, *b = NULL, *pub = NULL;
    size_t alen = 0, blen = 0;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (!bld) {
        *nomem = 1;
        goto fail;
    }
    if (kty && strcmp(kty, "RSA") == 0) {
        a = jwk_bytes(jwk, "n", &alen, nomem);
        b = jwk_bytes(jwk, "e", &blen, nomem);
        if (!a || !b) {
            seterr(err, err_len, "RSA JWK without valid n and e");
            goto fail;
        }
        n = BN_bin2bn(a, (int)alen, NULL);
        e = BN_bin2bn(b, (int)blen, NULL);
        if (!n || !e || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
            *nomem = 1;
            goto fail;
        }
        if (!(pkey = pkey_fromdata("RSA", bld)))
            seterr(err, err_len, "RSA JWK not usable");
    } else if (kty && strcmp(kty, "EC") == 0) {
        const char *crv = json_string_value(json_object_get(jwk, "crv"));
        const char *group = NULL;
        size_t flen = 0;
        if (crv && strcmp(crv, "P-256") == 0)
            group = "prime256v1", flen = 32;
        else if (crv && strcmp(crv, "P-384") == 0)
            group = "secp384r1", flen = 48;
        else if (crv && strcmp(crv, "P-521") == 0)
            group = "secp521r1", flen = 66;
        if (!group) {
            seterr(err, err_len, "EC JWK with unsupported crv");
            goto fail;
        }
        a = jwk_bytes(jwk, "x", &alen, nomem);
        b = jwk_bytes(jwk, "y", &blen, nomem);
        if (!a || !b || alen != flen || blen != flen) {
            seterr(err, err_len, "EC JWK without full-size x and y");
            goto fail;
        }
        if (!(pub = sl_malloc(1 + 2 * flen))) {
            *nomem = 1;
            goto fail;
        }
        pub[0] = 0x04; /* uncompressed point */
        memcpy(pub + 1, a, flen);
        memcpy(pub + 1 + flen, b, flen);
        if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * flen)) {
            *nomem = 1;
            goto fail;
        }
        if (!(pkey = pkey_fromdata("EC", bld)))
            seterr(err, err_len, "EC JWK not usable (point not on the curve?)");
    } else {
        /* "oct" (a shared secret) included: HMAC keys come only from auth.jwt_secret. */
        seterr(err, err_len, "JWK kty not RSA or EC; skipped");
    }
fail:
    BN_free(n);
    BN_free(e);
    OSSL_PARAM_BLD_free(bld);
    sl_free(a);
    sl_free(b);
    sl_free(pub);
    return pkey;
}

int sl_jwt_keys_add_jwks(sl_jwt_keys_t *k, const char *json, size_t len, char *err, size_t err_len)
{
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *keys = doc ? json_object_get(doc, "keys") : NULL;
    if (!json_is_array(keys)) {
        seterr(err, err_len, doc ? "JWKS without a \"keys\" array" : jerr.text);
        json_decref(doc);
        return SL_EINVAL;
    }
    int added = 0, rc = 0;
    size_t i;
    json_t *jwk;
    json_array_foreach(keys, i, jwk) {
        if (!json_is_object(jwk))
            continue;
        const char *use = json_string_value(json_object_get(jwk, "use"));
        if (use && strcmp(use, "sig") != 0) {
            seterr(err, err_len, "JWK with use other than sig skipped");
            continue;
        }
        int nomem = 0;
        EVP_PKEY *pkey = jwk_to_pkey(jwk, err, err_len, &nomem);
        if (nomem) {
            EVP_PKEY_free(pkey);
            rc = SL_ENOMEM;
            break;
        }
        if (!pkey)
            continue;
        rc = add_pkey(k, pkey, json_string_value(json_object_get(jwk, "kid")),
                      json_string_value(json_object_get(jwk, "alg")), err, err_len);
        if (rc == SL_ENOMEM || rc == SL_ETOOBIG)
            break;
        if (rc == 0)
            added++;
        rc = 0;
    }
    json_decref(doc);
    if (rc)
        return rc;
    if (!added) {
        if (err && err_len && !err[0])
            seterr(err, err_len, "JWKS has no usable key");
        return SL_EINVAL;
    }
    return added;
}

int sl_jwt_read_file(const char *path, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char *buf = sl_malloc(MAX_KEY_FILE + 1);
    if (!buf) {
        fclose(f);
        return SL_ENOMEM;
    }
    size_t n = fread(buf, 1, MAX_KEY_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > MAX_KEY_FILE) {
        sl_free(buf);
        return bad ? SL_EIO : SL_ETOOBIG;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* verification                                                        */

static int deny(sl_jwt_error_t *e, const char *reason, const char *detail)
{
    if (e) {
        e->reason = reason;
        snprintf(e->detail, sizeof e->detail, "%s", detail);
    }
    return SL_EDENIED;
}

#define INVALID "Invalid token."
#define TOO_LONG "Token too long."

/* The key for alg per the configuration, or NULL with e filled. */
static const jkey_t *pick_key(const sl_jwt_keys_t *k, const alg_t *alg, const char *kid,
                              sl_jwt_error_t *e)
{
    const jkey_t *by_kid = NULL, *kidless = NULL, *only = NULL;
    size_t n_fit = 0;
    for (size_t i = 0; i < k->n; i++) {
        const jkey_t *key = &k->keys[i];
        int fits = alg->family == FAM_EC ? (!key->is_rsa && key->ec_nid == alg->ec_nid) : key->is_rsa;
        if (!fits || (key->alg && strcmp(key->alg, alg->name) != 0))
            continue;
        n_fit++;
        only = key;
        if (kid && key->kid && strcmp(kid, key->kid) == 0)
            by_kid = key;
        if (!key->kid && !kidless)
            kidless = key;
    }
    if (by_kid)
        return by_kid;
    if (kid && kidless)
        return kidless; /* the PEM key answers for any kid it is not told about */
    if (!kid && n_fit == 1)
        return only;
    if (!kid && kidless)
        return kidless;
    char d[160];
    if (!n_fit)
        snprintf(d, sizeof d, "%s token but no %s key configured", alg->name,
                 alg->family == FAM_EC ? "matching EC" : "RSA");
    else if (kid)
        snprintf(d, sizeof d, "%s token with unknown kid \"%.60s\"", alg->name, kid);
    else
        snprintf(d, sizeof d, "%s token without kid and several keys fit", alg->name);
    deny(e, INVALID, d);
    return NULL;
}

static int verify_asym(const jkey_t *key, const alg_t *alg, const uint8_t *data, size_t data_len,
                       const uint8_t *sig, size_t sig_len)
{
    int ok = 0;
    uint8_t *der = NULL;
    int der_len = 0;
    ECDSA_SIG *es = NULL;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    if (!mctx)
        return SL_ENOMEM;
    if (alg->family == FAM_EC) {
        /* JWS carries R || S; OpenSSL wants DER. */
        if (sig_len != 2 * alg->ec_len)
            goto fail;
        BIGNUM *r = BN_bin2bn(sig, (int)alg->ec_len, NULL);
        BIGNUM *s = BN_bin2bn(sig + alg->ec_len, (int)alg->ec_len, NULL);
        es = ECDSA_SIG_new();
        if (!r || !s || !es || !ECDSA_SIG_set0(es, r, s)) {
            BN_free(r);
            BN_free(s);
            goto fail;
        }
        der_len = i2d_ECDSA_SIG(es, &der);
        if (der_len <= 0)
            goto fail;
        sig = der;
        sig_len = (size_t)der_len;
    }
    if (EVP_DigestVerifyInit(mctx, &pctx, alg->md(), NULL, key->pkey) != 1)
        goto fail;
    if (alg->family == FAM_PSS &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
        goto fail;
    ok = EVP_DigestVerify(mctx, sig, sig_len, data, data_len) == 1;
fail:
    ERR_clear_error();
    ECDSA_SIG_free(es);
    OPENSSL_free(der);
    EVP_MD_CTX_free(mctx);
    return ok ? 0 : SL_EDENIED;
}

static int verify_hmac(const sl_jwt_keys_t *k, const alg_t *alg, const uint8_t *data, size_t data_len,
                       const uint8_t *sig, size_t sig_len)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(alg->md(), k->secret, (int)k->secret_len, data, data_len, mac, &mac_len))
        return SL_ENOMEM;
    return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0 ? 0 : SL_EDENIED;
}

/* exp, nbf, iss, aud. */
static int check_claims(json_t *c, const sl_jwt_opts_t *o, sl_jwt_error_t *e)
{
    double now = o && o->now_s > 0 ? o->now_s : (double)sl_time_wall_ms() / 1000.0;
    double leeway = o ? (double)o->leeway_ms / 1000.0 : 0;
    char d[160];
    json_t *exp = json_object_get(c, "exp");
    if (!exp)
        return deny(e, "Token has no expiry.", "no exp claim (required)");
    if (!json_is_number(exp))
        return deny(e, INVALID, "exp is not a number");
    if (now > json_number_value(exp) + leeway) {
        snprintf(d, sizeof d, "expired %.0f s ago", now - json_number_value(exp));
        return deny(e, "Token expired.", d);
    }
    json_t *nbf = json_object_get(c, "nbf");
    if (nbf && !json_is_number(nbf))
        return deny(e, INVALID, "nbf is not a number");
    if (nbf && now + leeway < json_number_value(nbf)) {
        snprintf(d, sizeof d, "not valid for another %.0f s", json_number_value(nbf) - now);
        return deny(e, "Token not yet valid.", d);
    }
    if (o && o->issuer && o->issuer[0]) {
        const char *iss = json_string_value(json_object_get(c, "iss"));
        if (!iss || strcmp(iss, o->issuer) != 0) {
            snprintf(d, sizeof d, "iss \"%.60s\" is not \"%.60s\"", iss ? iss : "(none)", o->issuer);
            return deny(e, "Token issuer not accepted.", d);
        }
    }
    if (o && o->audience && o->audience[0]) {
        json_t *aud = json_object_get(c, "aud");
        int found = 0;
        if (json_is_string(aud)) {
            found = strcmp(json_string_value(aud), o->audience) == 0;
        } else if (json_is_array(aud)) {
            size_t i;
            json_t *v;
            json_array_foreach(aud, i, v) found |= json_is_string(v) && strcmp(json_string_value(v), o->audience) == 0;
        }
        if (!found) {
            snprintf(d, sizeof d, "aud does not include \"%.60s\"", o->audience);
            return deny(e, "Token audience not accepted.", d);
        }
    }
    return 0;
}

int sl_jwt_verify(const sl_jwt_keys_t *k, const char *token, const sl_jwt_opts_t *opts,
                  json_t **claims, sl_jwt_error_t *e)
{
    *claims = NULL;
    if (e) {
        e->reason = NULL;
        e->detail[0] = '\0';
    }
    size_t len = token ? strnlen(token, SL_JWT_MAX_TOKEN + 1) : 0;
    if (len > SL_JWT_MAX_TOKEN) {
        char d[96];
        snprintf(d, sizeof d, "token too long (over %d characters)", SL_JWT_MAX_TOKEN);
        return deny(e, TOO_LONG, d);
    }
    if (len == 0)
        return deny(e, INVALID, "empty token");
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot1 || !dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token))) {
        /* A token cut short by the client (ffmpeg keeps 1023 characters of an
         * RTMP URL's path, query included) lands here: say how much arrived. */
        size_t parts = 1;
        for (const char *p = memchr(token, '.', len); p; p = memchr(p + 1, '.', len - (size_t)(p + 1 - token)))
            parts++;
        char d[200];
        snprintf(d, sizeof d,
                 "not a JWS compact token: %zu dot-separated part%s in %zu characters, 3 expected "
                 "(a client that cuts long URLs sends this; pass the token as a connect argument)",
                 parts, parts == 1 ? "" : "s", len);
        return deny(e, INVALID, d);
    }
    size_t hlen = (size_t)(dot1 - token), plen = (size_t)(dot2 - dot1 - 1);
    size_t slen = len - (size_t)(dot2 + 1 - token);
    if (hlen == 0 || hlen > MAX_HEADER_B64 || plen == 0)
        return deny(e, INVALID, "empty or oversized header/payload");

    int rc = SL_EDENIED, nomem = 0;
    uint8_t *hbuf = NULL, *pbuf = NULL, *sig = NULL;
    size_t hbuf_len = 0, pbuf_len = 0, sig_len = 0;
    json_t *hdr = NULL, *payload = NULL;
    json_error_t jerr;

    if (!(hbuf = b64_dup(token, hlen, &hbuf_len, &nomem))) {
        rc = nomem ? SL_ENOMEM : deny(e, INVALID, "header is not base64url");
        goto fail;
    }
    hdr = json_loadb((const char *)hbuf, hbuf_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(hdr)) {
        rc = deny(e, INVALID, "header is not a JSON object");
        goto fail;
    }
    const char *alg_name = json_string_value(json_object_get(hdr, "alg"));
    if (!alg_name) {
        rc = deny(e, INVALID, "no alg in header");
        goto fail;
    }
    const alg_t *alg = NULL;
    for (size_t i = 0; i < sizeof g_algs / sizeof *g_algs; i++)
        if (strcmp(g_algs[i].name, alg_name) == 0)
            alg = &g_algs[i];
    if (!alg) {
        char d[160];
        snprintf(d, sizeof d, "alg \"%.40s\" refused", alg_name);
        rc = deny(e, INVALID, d);
        goto fail;
    }
    if (json_object_get(hdr, "crit")) {
        rc = deny(e, INVALID, "crit header extensions are not supported");
        goto fail;
    }
    if (slen == 0 || !(sig = b64_dup(dot2 + 1, slen, &sig_len, &nomem))) {
        rc = nomem ? SL_ENOMEM : deny(e, INVALID, "signature is not base64url");
        goto fail;
    }

    /* The signing input is the ASCII "header.payload" exactly as sent. */
    const uint8_t *input = (const uint8_t *)token;
    size_t input_len = (size_t)(dot2 - token);
    if (alg->family == FAM_HMAC) {
        if (!k->secret) {
            /* Never fall back to a public key as an HMAC secret. */
            char d[160];
            snprintf(d, sizeof d, "%s token but no shared secret configured (algorithm confusion refused)",
                     alg->name);
            rc = deny(e, INVALID, d);
            goto fail;
        }
        rc = verify_hmac(k, alg, input, input_len, sig, sig_len);
    } else {
        const char *kid = json_string_value(json_object_get(hdr, "kid"));
        const jkey_t *key = pick_key(k, alg, kid, e);
        if (!key) {
            rc = SL_EDENIED;
            goto fail;
        }
        rc = verify_asym(key, alg, input, input_len, sig, sig_len);
    }
    if (rc == SL_EDENIED) {
        char d[160];
        snprintf(d, sizeof d, "bad %s signature", alg->name);
        deny(e, INVALID, d);
    }
    if (rc)
        goto fail;

    if (!(pbuf = b64_dup(dot1 + 1, plen, &pbuf_len, &nomem))) {
        rc = nomem ? SL_ENOMEM : deny(e, INVALID, "payload is not base64url");
        goto fail;
    }
    payload = json_loadb((const char *)pbuf, pbuf_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(payload)) {
        rc = deny(e, INVALID, "payload is not a JSON object");
        goto fail;
    }
    rc = check_claims(payload, opts, e);
    if (rc)
        goto fail;
    *claims = payload;
    payload = NULL;
fail:
    json_decref(hdr);
    json_decref(payload);
    sl_free(hbuf);
    sl_free(pbuf);
    sl_free(sig);
    return rc;
}
