/*
 * JSON Web Token verification (RFC 7519, JWS compact form, RFC 7515/7518)
 * with OpenSSL 3 and jansson, for the auth_jwt module.
 *
 * Why not libjwt: Debian's libjwt 1.10 picks the verification algorithm
 * from the token's own header and takes a key as raw bytes, which is the
 * textbook algorithm-confusion hole (an HS256 token "signed" with the
 * server's RSA public key as the HMAC secret) unless every caller adds
 * its own guard; it also cannot read a JWKS. Here the key decides:
 *  - HS256/384/512 are verified only with the configured shared secret;
 *  - RS256/384/512 and PS256/384/512 only with an RSA public key (PEM file
 *    or JWKS, at least 2048 bits), ES256/384/512 only with an EC key on the
 *    matching curve (P-256/P-384/P-521);
 *  - a JWKS never supplies HMAC secrets (kty "oct" keys are ignored);
 *  - `alg: none`, unknown algorithms and any `crit` header are refused.
 * Claims checked here: exp (required, as Red5 requires it), nbf, both with
 * a leeway, iss and aud when configured. Authorisation claims (roles,
 * red5-transport, red5-room, app, stream, action) are the module's.
 *
 * Threading: a key set is immutable after loading and may be shared; all
 * calls are reentrant.
 */
#ifndef SL_MODULES_AUTH_JWT_JWT_H
#define SL_MODULES_AUTH_JWT_JWT_H

#include <stddef.h>
#include <stdint.h>

typedef struct json_t json_t; /* jansson */
typedef struct sl_jwt_keys sl_jwt_keys_t;

#define SL_JWT_MAX_TOKEN 8192 /* longer tokens are refused */
#define SL_JWT_MAX_KEYS 64    /* keys in one key set */

/** Creates an empty key set. 0 or SL_ENOMEM. */
int sl_jwt_keys_new(sl_jwt_keys_t **out);
/** Frees a key set (NULL is ignored). */
void sl_jwt_keys_free(sl_jwt_keys_t *k);
/** Sets the HMAC secret (len bytes, copied). 0, SL_EINVAL (empty) or SL_ENOMEM. */
int sl_jwt_keys_set_secret(sl_jwt_keys_t *k, const void *secret, size_t len);
/**
 * Adds a public key from PEM text ("PUBLIC KEY" or a certificate), with an
 * optional kid. 0, SL_EINVAL (unreadable, unsupported type, RSA under
 * 2048 bits; a reason in err), SL_ETOOBIG (too many keys) or SL_ENOMEM.
 */
int sl_jwt_keys_add_pem(sl_jwt_keys_t *k, const char *pem, size_t len, const char *kid, char *err,
                        size_t err_len);
/**
 * Adds every usable key of a JWKS document ({"keys": [...]}: kty RSA with
 * n/e, kty EC with crv/x/y; kid, alg and use honoured). Keys that cannot
 * be used are skipped with a reason in err (the last one). Returns the
 * number of keys added (>= 0), SL_EINVAL (not a JWKS, or no usable key) or
 * SL_ENOMEM.
 */
int sl_jwt_keys_add_jwks(sl_jwt_keys_t *k, const char *json, size_t len, char *err, size_t err_len);
/** Reads a whole file (at most 1 MB) for the two functions above; caller sl_frees *out. */
int sl_jwt_read_file(const char *path, char **out, size_t *len);
/** Number of public keys, and whether a secret is set. */
size_t sl_jwt_keys_count(const sl_jwt_keys_t *k);
int sl_jwt_keys_has_secret(const sl_jwt_keys_t *k);

/** What to check besides the signature. */
typedef struct sl_jwt_opts {
    double now_s;          /* current time, seconds since the epoch (0 = the clock) */
    uint64_t leeway_ms;    /* allowed clock skew for exp and nbf */
    const char *issuer;    /* required iss, or NULL/"" */
    const char *audience;  /* required member of aud, or NULL/"" */
} sl_jwt_opts_t;

/** Why a token was refused: a short text for the client and a detail for the log. */
typedef struct sl_jwt_error {
    const char *reason;    /* for the client, e.g. "Token expired." (static) */
    char detail[256];      /* for the log, e.g. "HS256 token but no secret configured" */
} sl_jwt_error_t;

/**
 * Verifies a token (borrowed) against the key set. Returns 0 with the
 * verified claims in *claims (a jansson object the caller must
 * json_decref), SL_EDENIED with *e filled, or SL_ENOMEM.
 */
int sl_jwt_verify(const sl_jwt_keys_t *k, const char *token, const sl_jwt_opts_t *opts,
                  json_t **claims, sl_jwt_error_t *e);

/** Strict base64url (no padding accepted); returns the decoded length or -1. out needs 3*len/4+3 bytes. */
long sl_jwt_b64url_decode(const char *in, size_t len, uint8_t *out);
/** Base64url without padding; returns the encoded length; out needs 4*((len+2)/3)+1 bytes. */
size_t sl_jwt_b64url_encode(const uint8_t *in, size_t len, char *out);

#endif
