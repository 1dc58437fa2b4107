/*
 * JWT tests. Tokens are built and signed here with OpenSSL (HS256/384/512,
 * RS256, PS256, ES256/384) from keys generated for the run, so every case
 * is exact: valid tokens, expiry and not-before with and without leeway,
 * bad signatures, alg none, HS/RS algorithm confusion (the RSA public key
 * used as an HMAC secret), key choice by kid in a JWKS built from the
 * generated keys, issuer and audience, malformed tokens; then Red5's
 * authorisation claims (roles, red5-transport, red5-room) and sluice's
 * (app, stream with `*`, action), and the module's admission check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/admission.h"
#include "app/core.h"
#include "base/alloc.h"
#include "base/config.h"
#include "modules/plugins/plugins.h"
#include "modules/auth_jwt/auth_jwt.h"

/* The module under test, started by the host as in the server. */
static const sl_builtin_t *const g_only[] = {&sl_auth_jwt_builtin, NULL};
#include "modules/auth_jwt/jwt.h"
#include "sluice/errors.h"
#include "builtin_config.h"

#define SECRET "0123456789abcdef0123456789abcdef-test-secret"

static EVP_PKEY *g_rsa, *g_rsa2, *g_ec, *g_ec384;
static char g_rsa_pem[4096], g_rsa2_pem[4096], g_ec_pem[1024];

/* ------------------------------------------------------------------ */
/* signing                                                             */

static void b64(const void *in, size_t len, char *out)
{
    sl_jwt_b64url_encode(in, len, out);
}

static const EVP_MD *md_of(const char *alg)
{
    return strstr(alg, "384") ? EVP_sha384() : strstr(alg, "512") ? EVP_sha512() : EVP_sha256();
}

/* Builds header.payload.signature; key NULL = HMAC with secret; alg "none" = empty signature. */
static char *sign(const char *alg, const char *header, const char *payload, EVP_PKEY *key,
                  const char *secret)
{
    static char tok[8192];
    char h[2048], p[4096];
    b64(header, strlen(header), h);
    b64(payload, strlen(payload), p);
    int n = snprintf(tok, sizeof tok, "%s.%s.", h, p);
    size_t input_len = (size_t)n - 1;
    uint8_t sig[1024];
    size_t sig_len = 0;
    if (strcmp(alg, "none") == 0) {
        return tok;
    } else if (!key) {
        unsigned int l = 0;
        HMAC(md_of(alg), secret, (int)strlen(secret), (const uint8_t *)tok, input_len, sig, &l);
        sig_len = l;
    } else {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        assert_int_equal(EVP_DigestSignInit(ctx, &pctx, md_of(alg), NULL, key), 1);
        if (alg[0] == 'P') {
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
        }
        uint8_t der[1024];
        size_t der_len = sizeof der;
        assert_int_equal(EVP_DigestSign(ctx, der, &der_len, (const uint8_t *)tok, input_len), 1);
        EVP_MD_CTX_free(ctx);
        if (alg[0] == 'E') {
            /* DER -> R || S, each the curve's size */
            size_t half = strstr(alg, "384") ? 48 : 32;
            const uint8_t *q = der;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)der_len);
            const BIGNUM *r, *s;
            ECDSA_SIG_get0(es, &r, &s);
            BN_bn2binpad(r, sig, (int)half);
            BN_bn2binpad(s, sig + half, (int)half);
            ECDSA_SIG_free(es);
            sig_len = 2 * half;
        } else {
            memcpy(sig, der, der_len);
            sig_len = der_len;
        }
    }
    b64(sig, sig_len, tok + n);
    return tok;
}

static long now_s(void) { return (long)time(NULL); }

/* A header for alg (and kid when given). */
static const char *hdr(const char *alg, const char *kid)
{
    static char h[256];
    if (kid)
        snprintf(h, sizeof h, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
    else
        snprintf(h, sizeof h, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    return h;
}

/* A payload valid for an hour, with extra members appended (",\"x\":1"). */
static const char *pl(const char *extra)
{
    static char p[2048];
    snprintf(p, sizeof p, "{\"sub\":\"user1\",\"exp\":%ld%s}", now_s() + 3600, extra ? extra : "");
    return p;
}

static void pem_of(EVP_PKEY *k, char *out, size_t n)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, k);
    int len = BIO_read(b, out, (int)n - 1);
    out[len > 0 ? len : 0] = '\0';
    BIO_free(b);
}

static void jwk_bn(EVP_PKEY *k, const char *param, size_t pad, char *out)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, param, &bn), 1);
    uint8_t buf[600];
    int len = pad ? BN_bn2binpad(bn, buf, (int)pad) : BN_bn2bin(bn, buf);
    b64(buf, (size_t)len, out);
    BN_free(bn);
}

static int group_setup(void **state)
{
    (void)state;
    g_rsa = EVP_RSA_gen(2048);
    g_rsa2 = EVP_RSA_gen(2048);
    g_ec = EVP_EC_gen("P-256");
    g_ec384 = EVP_EC_gen("P-384");
    assert_true(g_rsa && g_rsa2 && g_ec && g_ec384);
    pem_of(g_rsa, g_rsa_pem, sizeof g_rsa_pem);
    pem_of(g_rsa2, g_rsa2_pem, sizeof g_rsa2_pem);
    pem_of(g_ec, g_ec_pem, sizeof g_ec_pem);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(g_rsa);
    EVP_PKEY_free(g_rsa2);
    EVP_PKEY_free(g_ec);
    EVP_PKEY_free(g_ec384);
    return 0;
}

/* Verifies; returns 0 or SL_EDENIED, with the reason/detail in *e. */
static int verify(const sl_jwt_keys_t *k, const char *tok, const sl_jwt_opts_t *o, sl_jwt_error_t *e)
{
    json_t *claims = NULL;
    int rc = sl_jwt_verify(k, tok, o, &claims, e);
    if (rc == 0) {
        assert_non_null(claims);
        assert_string_equal(json_string_value(json_object_get(claims, "sub")), "user1");
    } else {
        assert_null(claims);
        assert_non_null(e->reason);
    }
    json_decref(claims);
    return rc;
}

static sl_jwt_keys_t *keys(const char *secret, const char *pem)
{
    sl_jwt_keys_t *k;
    assert_int_equal(sl_jwt_keys_new(&k), 0);
    if (secret)
        assert_int_equal(sl_jwt_keys_set_secret(k, secret, strlen(secret)), 0);
    if (pem) {
        char err[160];
        assert_int_equal(sl_jwt_keys_add_pem(k, pem, strlen(pem), NULL, err, sizeof err), 0);
    }
    return k;
}

/* ------------------------------------------------------------------ */
/* verification                                                        */

static void test_hmac(void **state)
{
    (void)state;
    int64_t blocks = sl_alloc_blocks();
    sl_jwt_keys_t *k = keys(SECRET, NULL);
    sl_jwt_error_t e;
    sl_jwt_opts_t o = {.leeway_ms = 30000};
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL), pl(NULL), NULL, SECRET), &o, &e), 0);
    assert_int_equal(verify(k, sign("HS384", hdr("HS384", NULL), pl(NULL), NULL, SECRET), &o, &e), 0);
    assert_int_equal(verify(k, sign("HS512", hdr("HS512", NULL), pl(NULL), NULL, SECRET), &o, &e), 0);
    /* another secret */
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL), pl(NULL), NULL, "other"), &o, &e), SL_EDENIED);
    assert_string_equal(e.reason, "Invalid token.");
    assert_non_null(strstr(e.detail, "signature"));
    /* header says HS512, signed HS256 */
    assert_int_equal(verify(k, sign("HS256", hdr("HS512", NULL), pl(NULL), NULL, SECRET), &o, &e), SL_EDENIED);
    /* tampered payload, same signature */
    char tok[8192];
    strcpy(tok, sign("HS256", hdr("HS256", NULL), pl(",\"roles\":\"red5-subscriber\""), NULL, SECRET));
    char *p1 = strchr(tok, '.') + 1, *p2 = strchr(p1, '.');
    char other[8192];
    strcpy(other, sign("HS256", hdr("HS256", NULL), pl(",\"roles\":\"red5-publisher\""), NULL, SECRET));
    char *q1 = strchr(other, '.') + 1;
    char forged[8192];
    snprintf(forged, sizeof forged, "%.*s%.*s%s", (int)(p1 - tok), tok, (int)(strchr(q1, '.') - q1), q1, p2);
    assert_int_equal(verify(k, forged, &o, &e), SL_EDENIED);
    /* a flipped signature character */
    strcpy(tok, sign("HS256", hdr("HS256", NULL), pl(NULL), NULL, SECRET));
    size_t len = strlen(tok);
    tok[len - 3] = tok[len - 3] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(k, tok, &o, &e), SL_EDENIED);
    sl_jwt_keys_free(k);
    assert_int_equal(sl_alloc_blocks(), blocks);
}

static void test_times(void **state)
{
    (void)state;
    sl_jwt_keys_t *k = keys(SECRET, NULL);
    sl_jwt_error_t e;
    sl_jwt_opts_t o = {.leeway_ms = 30000};
    char p[256];
    snprintf(p, sizeof p, "{\"sub\":\"user1\",\"exp\":%ld}", now_s() - 100);
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL), p, NULL, SECRET), &o, &e), SL_EDENIED);
    assert_string_equal(e.reason, "Token expired.");
    snprintf(p, sizeof p, "{\"sub\":\"user1\",\"exp\":%ld}", now_s() - 10); /* within leeway */
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL), p, NULL, SECRET), &o, &e), 0);
    o.leeway_ms = 0;
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL), p, NULL, SECRET), &o, &e), SL_EDENIED);
    o.leeway_ms = 30000;
    snprintf(p, sizeof p, "{\"sub\":\"user1\",\"exp\":%ld,\"nbf\":%ld}", now_s() + 3600, now_s() + 100);
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL), p, NULL, SECRET), &o, &e), SL_EDENIED);
    assert_string_equal(e.reason, "Token not yet valid.");
    snprintf(p, sizeof p, "{\"sub\":\"user1\",\"exp\":%ld,\"nbf\":%ld}", now_s() + 3600, now_s() + 10);
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL), p, NULL, SECRET), &o, &e), 0);
    /* exp is required (as in Red5) and must be a number */
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL), "{\"sub\":\"user1\"}", NULL, SECRET), &o, &e),
                     SL_EDENIED);
    assert_string_equal(e.reason, "Token has no expiry.");
    snprintf(p, sizeof p, "{\"sub\":\"user1\",\"exp\":\"%ld\"}", now_s() + 3600);
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL), p, NULL, SECRET), &o, &e), SL_EDENIED);
    /* a fixed clock */
    o.now_s = 1000;
    snprintf(p, sizeof p, "{\"sub\":\"user1\",\"exp\":1001.5}");
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL), p, NULL, SECRET), &o, &e), 0);
    sl_jwt_keys_free(k);
}

static void test_alg_none_and_malformed(void **state)
{
    (void)state;
    sl_jwt_keys_t *k = keys(SECRET, g_rsa_pem);
    sl_jwt_error_t e;
    const char *nones[] = {"none", "None", "NONE", "nOnE"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(verify(k, sign("none", hdr(nones[i], NULL), pl(NULL), NULL, NULL), NULL, &e),
                         SL_EDENIED);
        assert_string_equal(e.reason, "Invalid token.");
    }
    /* alg none with a signature from the secret still refused */
    char tok[8192];
    strcpy(tok, sign("HS256", hdr("none", NULL), pl(NULL), NULL, SECRET));
    assert_int_equal(verify(k, tok, NULL, &e), SL_EDENIED);
    /* no alg, unknown alg, crit */
    assert_int_equal(verify(k, sign("HS256", "{\"typ\":\"JWT\"}", pl(NULL), NULL, SECRET), NULL, &e), SL_EDENIED);
    assert_int_equal(verify(k, sign("HS256", hdr("HS257", NULL), pl(NULL), NULL, SECRET), NULL, &e), SL_EDENIED);
    assert_int_equal(verify(k, sign("HS256", "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", pl(NULL),
                                    NULL, SECRET), NULL, &e),
                     SL_EDENIED);
    assert_non_null(strstr(e.detail, "crit"));
    /* duplicate members (one parser reads the first, another the last) */
    char dup[512];
    snprintf(dup, sizeof dup, "{\"sub\":\"user1\",\"exp\":%ld,\"roles\":\"a\",\"roles\":\"b\"}", now_s() + 60);
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL), dup, NULL, SECRET), NULL, &e), SL_EDENIED);
    assert_int_equal(verify(k, sign("HS256", "{\"alg\":\"HS256\",\"alg\":\"none\"}", pl(NULL), NULL, SECRET),
                            NULL, &e),
                     SL_EDENIED);
    /* shapes */
    const char *bad[] = {"", "abc", "a.b", "a.b.c.d", ".b.c", "a..c", "!!.b.c", "e30.e30.",
                         "eyJhbGciOiJIUzI1NiJ9.W10.AAAA"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(verify(k, bad[i], NULL, &e), SL_EDENIED);
    /* non-canonical base64url (set low bits) and padding */
    strcpy(tok, sign("HS256", hdr("HS256", NULL), pl(NULL), NULL, SECRET));
    size_t len = strlen(tok);
    strcat(tok, "=");
    assert_int_equal(verify(k, tok, NULL, &e), SL_EDENIED);
    tok[len] = '\0';
    assert_int_equal(verify(k, tok, NULL, &e), 0);
    /* too long */
    char *huge = malloc(SL_JWT_MAX_TOKEN + 10);
    memset(huge, 'a', SL_JWT_MAX_TOKEN + 9);
    huge[SL_JWT_MAX_TOKEN + 9] = '\0';
    huge[10] = huge[20] = '.';
    assert_int_equal(verify(k, huge, NULL, &e), SL_EDENIED);
    /* reported as too long, to the client and in the log, not as malformed */
    assert_string_equal(e.reason, "Token too long.");
    assert_non_null(strstr(e.detail, "too long"));
    /* ...even when it has no dots at all (a cut-down query value) */
    memset(huge, 'a', SL_JWT_MAX_TOKEN + 1);
    huge[SL_JWT_MAX_TOKEN + 1] = '\0';
    assert_int_equal(verify(k, huge, NULL, &e), SL_EDENIED);
    assert_string_equal(e.reason, "Token too long.");
    free(huge);
    /* a token cut short by the client: the log says how much arrived */
    strcpy(tok, sign("HS256", hdr("HS256", NULL), pl(NULL), NULL, SECRET));
    tok[strchr(strchr(tok, '.') + 1, '.') - tok - 3] = '\0';
    assert_int_equal(verify(k, tok, NULL, &e), SL_EDENIED);
    assert_string_equal(e.reason, "Invalid token.");
    assert_non_null(strstr(e.detail, "2 dot-separated parts"));
    sl_jwt_keys_free(k);

    uint8_t out[16];
    assert_int_equal(sl_jwt_b64url_decode("QQ", 2, out), 1);
    assert_int_equal(sl_jwt_b64url_decode("QR", 2, out), -1); /* non-zero leftover bits */
    assert_int_equal(sl_jwt_b64url_decode("Q", 1, out), -1);
    assert_int_equal(sl_jwt_b64url_decode("Q+==", 4, out), -1);
}

static void test_algorithm_confusion(void **state)
{
    (void)state;
    sl_jwt_error_t e;
    /* Only the RSA public key is configured: an HS256 token "signed" with
     * that key's PEM text as the HMAC secret must never verify. */
    sl_jwt_keys_t *k = keys(NULL, g_rsa_pem);
    char *tok = sign("HS256", hdr("HS256", NULL), pl(NULL), NULL, g_rsa_pem);
    assert_int_equal(verify(k, tok, NULL, &e), SL_EDENIED);
    assert_non_null(strstr(e.detail, "confusion"));
    /* ... nor with a secret configured too (the secret is not the PEM). */
    sl_jwt_keys_free(k);
    k = keys(SECRET, g_rsa_pem);
    assert_int_equal(verify(k, tok, NULL, &e), SL_EDENIED);
    /* The reverse: an RS256 token when only a secret is configured. */
    sl_jwt_keys_free(k);
    k = keys(SECRET, NULL);
    assert_int_equal(verify(k, sign("RS256", hdr("RS256", NULL), pl(NULL), g_rsa, NULL), NULL, &e), SL_EDENIED);
    sl_jwt_keys_free(k);
}

static void test_asymmetric(void **state)
{
    (void)state;
    sl_jwt_error_t e;
    char err[160];
    sl_jwt_keys_t *k = keys(NULL, g_rsa_pem);
    assert_int_equal(sl_jwt_keys_add_pem(k, g_ec_pem, strlen(g_ec_pem), NULL, err, sizeof err), 0);
    assert_int_equal(verify(k, sign("RS256", hdr("RS256", NULL), pl(NULL), g_rsa, NULL), NULL, &e), 0);
    assert_int_equal(verify(k, sign("RS512", hdr("RS512", NULL), pl(NULL), g_rsa, NULL), NULL, &e), 0);
    assert_int_equal(verify(k, sign("PS256", hdr("PS256", NULL), pl(NULL), g_rsa, NULL), NULL, &e), 0);
    assert_int_equal(verify(k, sign("ES256", hdr("ES256", NULL), pl(NULL), g_ec, NULL), NULL, &e), 0);
    /* signed by a key that is not configured */
    assert_int_equal(verify(k, sign("RS256", hdr("RS256", NULL), pl(NULL), g_rsa2, NULL), NULL, &e), SL_EDENIED);
    /* PKCS#1 v1.5 signature presented as PSS, and the reverse */
    char tok[8192];
    strcpy(tok, sign("RS256", hdr("PS256", NULL), pl(NULL), g_rsa, NULL));
    assert_int_equal(verify(k, tok, NULL, &e), SL_EDENIED);
    /* ES384 needs a P-384 key: none configured */
    assert_int_equal(verify(k, sign("ES384", hdr("ES384", NULL), pl(NULL), g_ec384, NULL), NULL, &e), SL_EDENIED);
    assert_non_null(strstr(e.detail, "no matching EC key"));
    sl_jwt_keys_free(k);

    /* Keys that are refused at load */
    assert_int_equal(sl_jwt_keys_new(&k), 0);
    EVP_PKEY *small = EVP_RSA_gen(1024);
    char pem[2048];
    pem_of(small, pem, sizeof pem);
    EVP_PKEY_free(small);
    assert_int_equal(sl_jwt_keys_add_pem(k, pem, strlen(pem), NULL, err, sizeof err), SL_EINVAL);
    assert_non_null(strstr(err, "2048"));
    assert_int_equal(sl_jwt_keys_add_pem(k, "garbage", 7, NULL, err, sizeof err), SL_EINVAL);
    assert_int_equal(sl_jwt_keys_count(k), 0);
    sl_jwt_keys_free(k);
}

static void test_jwks_kid(void **state)
{
    (void)state;
    char n1[400], e1[16], n2[400], e2[16], x[64], y[64], jwks[4096], err[160];
    jwk_bn(g_rsa, OSSL_PKEY_PARAM_RSA_N, 0, n1);
    jwk_bn(g_rsa, OSSL_PKEY_PARAM_RSA_E, 0, e1);
    jwk_bn(g_rsa2, OSSL_PKEY_PARAM_RSA_N, 0, n2);
    jwk_bn(g_rsa2, OSSL_PKEY_PARAM_RSA_E, 0, e2);
    jwk_bn(g_ec, OSSL_PKEY_PARAM_EC_PUB_X, 32, x);
    jwk_bn(g_ec, OSSL_PKEY_PARAM_EC_PUB_Y, 32, y);
    snprintf(jwks, sizeof jwks,
             "{\"keys\":["
             "{\"kty\":\"RSA\",\"kid\":\"k1\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"},"
             "{\"kty\":\"RSA\",\"kid\":\"k2\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"},"
             "{\"kty\":\"EC\",\"kid\":\"k3\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"},"
             "{\"kty\":\"oct\",\"kid\":\"k4\",\"k\":\"c2VjcmV0\"},"
             "{\"kty\":\"RSA\",\"kid\":\"k5\",\"use\":\"enc\",\"n\":\"%s\",\"e\":\"%s\"}"
             "]}",
             n1, e1, n2, e2, x, y, n1, e1);
    sl_jwt_keys_t *k;
    assert_int_equal(sl_jwt_keys_new(&k), 0);
    assert_int_equal(sl_jwt_keys_add_jwks(k, jwks, strlen(jwks), err, sizeof err), 3);
    sl_jwt_error_t e;
    assert_int_equal(verify(k, sign("RS256", hdr("RS256", "k1"), pl(NULL), g_rsa, NULL), NULL, &e), 0);
    assert_int_equal(verify(k, sign("RS256", hdr("RS256", "k2"), pl(NULL), g_rsa2, NULL), NULL, &e), 0);
    assert_int_equal(verify(k, sign("ES256", hdr("ES256", "k3"), pl(NULL), g_ec, NULL), NULL, &e), 0);
    /* the EC key is alone of its kind: found without a kid */
    assert_int_equal(verify(k, sign("ES256", hdr("ES256", NULL), pl(NULL), g_ec, NULL), NULL, &e), 0);
    /* wrong key for the kid */
    assert_int_equal(verify(k, sign("RS256", hdr("RS256", "k1"), pl(NULL), g_rsa2, NULL), NULL, &e), SL_EDENIED);
    /* unknown kid; no kid with two RSA keys */
    assert_int_equal(verify(k, sign("RS256", hdr("RS256", "zz"), pl(NULL), g_rsa, NULL), NULL, &e), SL_EDENIED);
    assert_non_null(strstr(e.detail, "unknown kid"));
    assert_int_equal(verify(k, sign("RS256", hdr("RS256", NULL), pl(NULL), g_rsa, NULL), NULL, &e), SL_EDENIED);
    /* k2 is for RS256 only */
    assert_int_equal(verify(k, sign("RS512", hdr("RS512", "k2"), pl(NULL), g_rsa2, NULL), NULL, &e), SL_EDENIED);
    /* the oct JWK never became an HMAC secret */
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", "k4"), pl(NULL), NULL, "secret"), NULL, &e), SL_EDENIED);
    sl_jwt_keys_free(k);

    /* A JWKS with nothing usable, and not a JWKS at all */
    assert_int_equal(sl_jwt_keys_new(&k), 0);
    const char *bad = "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}";
    assert_int_equal(sl_jwt_keys_add_jwks(k, bad, strlen(bad), err, sizeof err), SL_EINVAL);
    assert_int_equal(sl_jwt_keys_add_jwks(k, "[1]", 3, err, sizeof err), SL_EINVAL);
    /* an EC point that is not on the curve */
    char off[512];
    snprintf(off, sizeof off, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}", x, x);
    assert_int_equal(sl_jwt_keys_add_jwks(k, off, strlen(off), err, sizeof err), SL_EINVAL);
    sl_jwt_keys_free(k);
}

static void test_iss_aud(void **state)
{
    (void)state;
    sl_jwt_keys_t *k = keys(SECRET, NULL);
    sl_jwt_error_t e;
    sl_jwt_opts_t o = {.issuer = "https://issuer.example", .audience = "sluice"};
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL),
                                    pl(",\"iss\":\"https://issuer.example\",\"aud\":\"sluice\""), NULL, SECRET),
                            &o, &e),
                     0);
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL),
                                    pl(",\"iss\":\"https://issuer.example\",\"aud\":[\"x\",\"sluice\"]"), NULL,
                                    SECRET),
                            &o, &e),
                     0);
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL), pl(",\"iss\":\"evil\",\"aud\":\"sluice\""), NULL,
                                    SECRET),
                            &o, &e),
                     SL_EDENIED);
    assert_string_equal(e.reason, "Token issuer not accepted.");
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL), pl(",\"aud\":\"sluice\""), NULL, SECRET), &o, &e),
                     SL_EDENIED);
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL),
                                    pl(",\"iss\":\"https://issuer.example\",\"aud\":[\"x\"]"), NULL, SECRET),
                            &o, &e),
                     SL_EDENIED);
    assert_string_equal(e.reason, "Token audience not accepted.");
    /* not configured: not checked */
    assert_int_equal(verify(k, sign("HS256", hdr("HS256", NULL), pl(",\"iss\":\"evil\""), NULL, SECRET), NULL, &e),
                     0);
    sl_jwt_keys_free(k);
}

static void test_verify_alloc_failures(void **state)
{
    (void)state;
    if (!sl_alloc_fail_at(0, 0))
        skip();
    sl_jwt_keys_t *k = keys(SECRET, g_rsa_pem);
    char tok[8192];
    strcpy(tok, sign("RS256", hdr("RS256", NULL), pl(NULL), g_rsa, NULL));
    int done = 0;
    for (uint64_t n = 1; n < 100 && !done; n++) {
        int64_t blocks = sl_alloc_blocks();
        uint64_t failed = sl_alloc_failed_count();
        json_t *c = NULL;
        sl_jwt_error_t e;
        sl_alloc_fail_at(n, 0);
        int rc = sl_jwt_verify(k, tok, NULL, &c, &e);
        sl_alloc_fail_at(0, 0);
        assert_true(rc == 0 || rc == SL_ENOMEM);
        json_decref(c);
        assert_int_equal(sl_alloc_blocks(), blocks);
        done = sl_alloc_failed_count() == failed;
    }
    assert_true(done);
    sl_jwt_keys_free(k);
}

/* ------------------------------------------------------------------ */
/* authorisation claims                                                */

static int authz(const char *claims_json, sl_admit_kind_t kind, const char *app, const char *stream,
                 const char *transport)
{
    json_t *c = json_loads(claims_json, 0, NULL);
    assert_non_null(c);
    sl_admit_req_t req = {.kind = kind, .app = app, .stream = stream, .transport = transport};
    const char *reason = NULL;
    char detail[200];
    int rc = sl_auth_jwt_authorize(c, &req, &reason, detail, sizeof detail);
    if (rc)
        assert_non_null(reason);
    json_decref(c);
    return rc;
}

#define PUB SL_ADMIT_PUBLISH
#define PLAY SL_ADMIT_PLAY
#define CONN SL_ADMIT_CONNECT
#define SOC SL_ADMIT_SO_CONNECT

/* A shared object connect: the scope is final (red5-room strict), the
 * object's name is no stream (stream/roles/action do not apply). */
static void test_so_connect(void **state)
{
    (void)state;
    const char *r1 = "{\"red5-room\":\"room1\"}";
    assert_int_equal(authz(r1, SOC, "live/room1", "chat", "rtmp"), 0);
    assert_int_equal(authz(r1, SOC, "live", "room1", "rtmp"), SL_EDENIED); /* app level, even named room1 */
    assert_int_equal(authz(r1, SOC, "live/room2", "chat", "rtmp"), SL_EDENIED);
    assert_int_equal(authz("{\"app\":\"other\"}", SOC, "live", "chat", "rtmp"), SL_EDENIED);
    assert_int_equal(authz("{\"red5-transport\":\"rtmp\"}", SOC, "live", "chat", "webrtc"), SL_EDENIED);
    assert_int_equal(authz("{\"roles\":\"red5-subscriber\",\"stream\":\"cam*\",\"action\":\"play\"}", SOC,
                           "live", "chat", "rtmp"), 0);
}

static void test_roles(void **state)
{
    (void)state;
    assert_int_equal(authz("{}", PUB, "live", "s", "rtmp"), 0);
    assert_int_equal(authz("{}", PLAY, "live", "s", "rtmp"), 0);
    assert_int_equal(authz("{\"roles\":\"red5-subscriber\"}", PUB, "live", "s", "rtmp"), SL_EDENIED);
    assert_int_equal(authz("{\"roles\":\"red5-subscriber\"}", PLAY, "live", "s", "rtmp"), 0);
    assert_int_equal(authz("{\"roles\":\"red5-publisher\"}", PUB, "live", "s", "rtmp"), 0);
    assert_int_equal(authz("{\"roles\":\"red5-publisher\"}", PLAY, "live", "s", "rtmp"), 0);
    assert_int_equal(authz("{\"roles\":\"red5-subscriber, red5-publisher\"}", PUB, "live", "s", "rtmp"), 0);
    assert_int_equal(authz("{\"roles\":[\"red5-subscriber\"]}", PUB, "live", "s", "rtmp"), SL_EDENIED);
    assert_int_equal(authz("{\"roles\":[\"x\",\"red5-publisher\"]}", PUB, "live", "s", "rtmp"), 0);
    assert_int_equal(authz("{\"roles\":\"admin\"}", PLAY, "live", "s", "rtmp"), SL_EDENIED);
    assert_int_equal(authz("{\"roles\":5}", PLAY, "live", "s", "rtmp"), SL_EDENIED);
    /* roles are not checked at connect */
    assert_int_equal(authz("{\"roles\":\"admin\"}", CONN, "live", NULL, "rtmp"), 0);
}

static void test_transport(void **state)
{
    (void)state;
    assert_int_equal(authz("{\"red5-transport\":\"rtmp\"}", PUB, "live", "s", "rtmp"), 0);
    assert_int_equal(authz("{\"red5-transport\":\"RTMP,RTSP\"}", PUB, "live", "s", "rtmp"), 0);
    assert_int_equal(authz("{\"red5-transport\":\"RTSP,WHEP\"}", PUB, "live", "s", "rtmp"), SL_EDENIED);
    assert_int_equal(authz("{\"red5-transport\":\"RTSP,WHEP\"}", CONN, "live", NULL, "rtmp"), SL_EDENIED);
    assert_int_equal(authz("{\"red5-transport\":\"WHEP\"}", PLAY, "live", "s", "webrtc"), 0);
    assert_int_equal(authz("{\"red5-transport\":\"WHEP\"}", PUB, "live", "s", "webrtc"), SL_EDENIED);
    assert_int_equal(authz("{\"red5-transport\":\"WHIP\"}", PUB, "live", "s", "webrtc"), 0);
    assert_int_equal(authz("{\"red5-transport\":[\"srt\",\"hls\"]}", PLAY, "live", "s", "hls"), 0);
    assert_int_equal(authz("{\"red5-transport\":\"http\"}", PLAY, "live", "s", "http-flv"), 0);
    assert_int_equal(authz("{\"red5-transport\":\"http\"}", PLAY, "live", "s", "rtmp"), SL_EDENIED);
    assert_int_equal(authz("{\"red5-transport\":\"\"}", PLAY, "live", "s", "rtmp"), SL_EDENIED);
}

static void test_room(void **state)
{
    (void)state;
    const char *r1 = "{\"red5-room\":\"room1\"}";
    assert_int_equal(authz(r1, PUB, "live/room1", "s", "rtmp"), 0);
    assert_int_equal(authz(r1, PUB, "live", "room1/s", "rtmp"), 0);
    assert_int_equal(authz(r1, PUB, "live/room1/sub", "s", "rtmp"), 0); /* nested */
    assert_int_equal(authz(r1, PUB, "live", "s", "rtmp"), SL_EDENIED);   /* app level */
    assert_int_equal(authz(r1, PLAY, "live/room2", "s", "rtmp"), SL_EDENIED);
    assert_int_equal(authz(r1, PLAY, "live/room10", "s", "rtmp"), SL_EDENIED);
    assert_int_equal(authz(r1, PLAY, "live", "room10/s", "rtmp"), SL_EDENIED);
    /* at connect: refuse only what cannot become the room */
    assert_int_equal(authz(r1, CONN, "live", NULL, "rtmp"), 0);
    assert_int_equal(authz(r1, CONN, "live/room1", NULL, "rtmp"), 0);
    assert_int_equal(authz(r1, CONN, "live/room2", NULL, "rtmp"), SL_EDENIED);
    assert_int_equal(authz("{\"red5-room\":\"room1/sub\"}", CONN, "live/room1", NULL, "rtmp"), 0);
    assert_int_equal(authz("{\"red5-room\":\"room1/sub\"}", PUB, "live/room1", "s", "rtmp"), SL_EDENIED);
    assert_int_equal(authz("{\"red5-room\":\"room1/sub\"}", PUB, "live/room1", "sub/s", "rtmp"), 0);
    assert_int_equal(authz("{\"red5-room\":\"/room1/\"}", PUB, "live/room1", "s", "rtmp"), 0);
}

static void test_app_stream_action(void **state)
{
    (void)state;
    assert_int_equal(authz("{\"app\":\"live\"}", PUB, "live/room1", "s", "rtmp"), 0);
    assert_int_equal(authz("{\"app\":\"live\"}", CONN, "other", NULL, "rtmp"), SL_EDENIED);
    assert_int_equal(authz("{\"app\":\"*\"}", CONN, "other", NULL, "rtmp"), 0);
    assert_int_equal(authz("{\"stream\":\"cam*\"}", PUB, "live", "cam1", "rtmp"), 0);
    assert_int_equal(authz("{\"stream\":\"cam*\"}", PUB, "live", "cam", "rtmp"), 0);
    assert_int_equal(authz("{\"stream\":\"cam*\"}", PUB, "live", "xcam1", "rtmp"), SL_EDENIED);
    assert_int_equal(authz("{\"stream\":\"cam*\"}", PUB, "live", "room1/cam7", "rtmp"), 0); /* the name */
    assert_int_equal(authz("{\"stream\":\"*-hd\"}", PLAY, "live", "a-b-hd", "rtmp"), 0);
    assert_int_equal(authz("{\"stream\":[\"a\",\"b*\"]}", PLAY, "live", "bee", "rtmp"), 0);
    assert_int_equal(authz("{\"stream\":[\"a\",\"b*\"]}", PLAY, "live", "c", "rtmp"), SL_EDENIED);
    assert_int_equal(authz("{\"stream\":\"s\"}", CONN, "live", NULL, "rtmp"), 0);
    assert_int_equal(authz("{\"action\":\"publish\"}", PUB, "live", "s", "rtmp"), 0);
    assert_int_equal(authz("{\"action\":\"publish\"}", PLAY, "live", "s", "rtmp"), SL_EDENIED);
    assert_int_equal(authz("{\"action\":\"*\"}", PLAY, "live", "s", "rtmp"), 0);
    assert_int_equal(authz("{\"action\":[\"play\"]}", PLAY, "live", "s", "rtmp"), 0);
    assert_true(sl_auth_jwt_glob("a*b*c", "aXXbYYc"));
    assert_false(sl_auth_jwt_glob("a*b*c", "aXXbYY"));
    assert_true(sl_auth_jwt_glob("**", ""));
    assert_false(sl_auth_jwt_glob("", "x"));
}

/* ------------------------------------------------------------------ */
/* the module                                                          */

static int g_calls, g_result;
static char g_reason[128], g_sub[64];
static void on_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    (void)ud;
    g_calls++;
    g_result = result;
    snprintf(g_reason, sizeof g_reason, "%s", reason ? reason : "");
    const char *sub = sl_admit_note(a, "jwt_sub");
    snprintf(g_sub, sizeof g_sub, "%s", sub ? sub : "");
}

static int run_admit(sl_core_t *core, sl_admit_kind_t kind, const char *stream, const char *token)
{
    sl_session_t s;
    memset(&s, 0, sizeof s);
    sl_admit_req_t req = {.kind = kind, .app = "live", .stream = stream, .transport = "rtmp", .token = token};
    sl_admit_t *h;
    g_calls = 0;
    assert_int_equal(sl_admit(core, &s, &req, on_done, NULL, &h), SL_OK);
    assert_int_equal(g_calls, 1);
    return g_result;
}

static void test_module(void **state)
{
    (void)state;
    const char *yaml = "auth:\n  jwt_secret: " SECRET "\n  jwt_issuer: me\napps:\n  live:\n    auth_jwt: true\n";
    sl_config_t cfg;
    sl_core_t core;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(sl_config_load_string(&cfg, yaml, strlen(yaml), "t", NULL, NULL), 0);
    assert_int_equal(sl_core_init(&core, NULL, &cfg), 0);
    sl_plugins_t *st;
    assert_int_equal(sl_plugins_start(&core, NULL, g_only, &st), 0);
    assert_non_null(sl_plugins_state(st, "auth_jwt"));
    char tok[8192];
    strcpy(tok, sign("HS256", hdr("HS256", NULL), pl(",\"iss\":\"me\",\"roles\":\"red5-subscriber\""), NULL, SECRET));
    assert_int_equal(run_admit(&core, SL_ADMIT_CONNECT, NULL, NULL), 0);
    assert_int_equal(run_admit(&core, SL_ADMIT_CONNECT, NULL, tok), 0);
    assert_int_equal(run_admit(&core, SL_ADMIT_PLAY, "s", NULL), SL_EDENIED);
    assert_string_equal(g_reason, "Missing token.");
    assert_int_equal(run_admit(&core, SL_ADMIT_PLAY, "s", tok), 0);
    assert_string_equal(g_sub, "user1");
    assert_int_equal(run_admit(&core, SL_ADMIT_PUBLISH, "s", tok), SL_EDENIED);
    assert_string_equal(g_reason, "Role not allowed.");
    assert_int_equal(run_admit(&core, SL_ADMIT_CONNECT, NULL, "x.y.z"), SL_EDENIED);
    assert_string_equal(g_reason, "Invalid token.");
    sl_plugins_stop(st);
    sl_plugins_free(st);
    sl_admit_cleanup(&core);
    sl_core_cleanup(&core);
    sl_config_cleanup(&cfg);

    /* auth_jwt with no key at all: start fails */
    yaml = "apps:\n  live:\n    auth_jwt: true\n";
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(sl_config_load_string(&cfg, yaml, strlen(yaml), "t", NULL, NULL), 0);
    assert_int_equal(sl_core_init(&core, NULL, &cfg), 0);
    assert_true(sl_plugins_start(&core, NULL, g_only, &st) < 0);
    assert_null(sl_plugins_state(st, "auth_jwt"));
    sl_plugins_stop(st);
    sl_plugins_free(st);
    sl_admit_cleanup(&core);
    sl_core_cleanup(&core);
    sl_config_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_alg_none_and_malformed),
        cmocka_unit_test(test_algorithm_confusion),
        cmocka_unit_test(test_asymmetric),
        cmocka_unit_test(test_jwks_kid),
        cmocka_unit_test(test_iss_aud),
        cmocka_unit_test(test_verify_alloc_failures),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_so_connect),
        cmocka_unit_test(test_transport),
        cmocka_unit_test(test_room),
        cmocka_unit_test(test_app_stream_action),
        cmocka_unit_test(test_module),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
