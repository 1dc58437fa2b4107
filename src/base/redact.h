/*
 * Masking secrets before they reach the log. Every log line that prints
 * something a client or an operator typed as a URL, a query string, an
 * RTMP tcUrl or connect arguments, or a command line passes it through
 * sl_redact() first, so that passwords, tokens, JWTs, signatures and URL
 * userinfo never appear in the log at any level up to debug (trace may
 * print raw protocol data; docs/security.md says so).
 *
 * What is masked (the value becomes "***"):
 *  - the value of a key=value pair (in a query string, a form, a command
 *    line or an environment assignment) whose key, compared without case,
 *    is or contains one of: pass, pwd, token, secret, key, sig, jwt,
 *    credential, auth, session (so password, accessToken, access_token,
 *    api_key, X-Amz-Signature, X-Amz-Credential, client_secret, ...), or is
 *    exactly restreamer (Red5's cluster password on a relay's connection);
 *  - the password of URL userinfo: scheme://user:pass@host -> user:***@;
 *  - anything shaped like a JWT: "eyJ" base64url "." base64url "." ...
 * Names that contain "key" also match "stream_key", on purpose: a stream
 * key is a credential in most deployments.
 */
#ifndef SL_BASE_REDACT_H
#define SL_BASE_REDACT_H

#include <stddef.h>

/** Room for a redacted copy of a typical URL or command line. */
#define SL_REDACT_MAX 1024

/**
 * Copies s into out (cap bytes, NUL-terminated when cap > 0) with every
 * secret described above replaced by "***". A copy that does not fit is
 * cut and ends with "..." (never in the middle of a secret: a value that
 * is cut is masked). s NULL gives "-". Returns out, for use as a printf
 * argument. Thread-safe; no allocation.
 */
const char *sl_redact(const char *s, char *out, size_t cap);

/** True when a parameter or variable of this name carries a secret (see above). */
int sl_redact_is_secret_name(const char *name, size_t len);

#endif
