/*
 * The SM 2.0 tokens (PUT /as/v1/auth/login): JWTs signed with HS256 under
 * the stream manager's secret, holding the user (sub), its role ("admin" or
 * "proxy"), iat and exp. Made with OpenSSL's HMAC, not libjwt: Debian's
 * libjwt 1.10 takes the algorithm from the token's own header (the reason
 * src/modules/auth_jwt has its own verifier too), and these tokens only
 * ever need one algorithm and one key, which this file pins: a token whose
 * header is not exactly HS256 is refused before its signature is looked at.
 *
 * Hard caps: a token is at most SL_SM_JWT_MAX bytes; header and payload
 * decode into fixed buffers. Pure functions, any thread.
 */
#ifndef SL_CLUSTER_STREAMMANAGER_SM_JWT_H
#define SL_CLUSTER_STREAMMANAGER_SM_JWT_H

#include <stddef.h>
#include <stdint.h>

#define SL_SM_JWT_MAX 2048     /* bytes of a token we make or accept */
#define SL_SM_JWT_ROLE_MAX 16  /* "admin", "proxy" */
#define SL_SM_JWT_SUB_MAX 128

/**
 * Signs a token for sub with role, valid from now_s for ttl_s seconds,
 * into out (cap bytes with the NUL). 0, SL_EINVAL (empty secret, sub or
 * role too long), SL_ETOOBIG (cap too small), SL_ENOMEM.
 */
int sl_sm_jwt_sign(const uint8_t *secret, size_t secret_len, const char *sub, const char *role,
                   uint64_t now_s, uint64_t ttl_s, char *out, size_t cap);

/**
 * Verifies token (len bytes, not necessarily NUL-terminated) under secret
 * at now_s: HS256 header, signature (constant-time), exp > now_s. On
 * success copies its role into role (SL_SM_JWT_ROLE_MAX bytes) and sub into
 * sub (SL_SM_JWT_SUB_MAX bytes; may be NULL) and returns 0; otherwise
 * SL_EDENIED (bad signature, expired, wrong algorithm), SL_EINVAL
 * (malformed) or SL_ETOOBIG (over SL_SM_JWT_MAX).
 */
int sl_sm_jwt_verify(const uint8_t *secret, size_t secret_len, const char *token, size_t len,
                     uint64_t now_s, char *role, char *sub);

#endif
