/*
 * Checking the Bearer JWT of Red5 SM 2.0's admin API (/as/v1/admin/...):
 * the stream manager issues it at PUT /as/v1/auth/login (src/cluster/
 * streammanager) signed HS256 with its secret; the autoscaler checks it
 * with autoscale.jwt_secret, which must hold the same secret. Only HS256 is
 * accepted (never "none"); exp, when present, must be in the future. Pure
 * and bounded (token length capped); fuzzed with the expressions.
 */
#ifndef SL_CLUSTER_AUTOSCALE_AS_AUTH_H
#define SL_CLUSTER_AUTOSCALE_AS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define SL_AS_JWT_MAX 4096  /* bytes of a token */

/**
 * Checks token (len bytes, untrusted) against secret at now_s (Unix
 * seconds). Returns 0 when valid; SL_ETOOBIG (too long), SL_EDENIED (bad
 * signature, algorithm or expired), SL_EINVAL (malformed).
 */
int sl_as_jwt_check(const char *token, size_t len, const char *secret, uint64_t now_s);

#endif
