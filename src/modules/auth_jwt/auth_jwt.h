/*
 * JWT authentication (Red5 Pro's JWT authenticator, RED5-COMPAT.md §3.5)
 * for apps with auth_jwt on and transports in the app's auth_protocols.
 *
 * Keys (auth.*): jwt_secret for HS256/384/512; jwt_public_key_file (PEM)
 * and/or jwt_jwks_file (JWKS, keys chosen by kid) for RS*, PS* and ES*.
 * The configured keys decide which algorithm families are accepted (see
 * jwt.h). Read once at start.
 *
 * The token travels as `token` where Red5 clients put credentials: RTMP
 * connect arguments (username "jwt", password "jwt", token) or the query
 * string on the app or stream name (`?token=...`).
 *
 * When: at connect, a token that is present is verified (signature, exp,
 * nbf, iss, aud) together with what is already known (transport, app,
 * room of the connect path); a connect without a token is let in because
 * the token may come with the stream name. Publish and play always need a
 * valid token, checked in full, including the claims that name a stream:
 *   roles           "red5-publisher,red5-subscriber" (string or array);
 *                   absent = both. A publisher may also play.
 *   red5-transport  "rtmp,rtsp,webrtc,hls,http-flv,srt" (string or array,
 *                   any case); WHIP = webrtc publish, WHEP = webrtc play,
 *                   RTC = webrtc, HTTP = hls and http-flv; absent = any.
 *   red5-room       the room (scope under the app, "room1" or "room1/sub")
 *                   the stream must be in, itself or nested below it;
 *                   app-level streams are then refused.
 *   app             the app name; absent = any.
 *   stream          pattern for the stream name, `*` = any run of
 *                   characters ("cam*"); string or array; absent = any.
 *   action          "publish", "play" or "*" (string or array); absent = any.
 * A verified token's `sub` is attached to the admission as note "jwt_sub".
 */
#ifndef SL_MODULES_AUTH_JWT_H
#define SL_MODULES_AUTH_JWT_H

#include "app/admission.h"
#include "modules/module.h"

typedef struct json_t json_t; /* jansson */

/** The module (listed in modules.c). */
extern const sl_builtin_t sl_auth_jwt_builtin;

/**
 * Applies the authorisation claims above to a request, the token already
 * verified. For SL_ADMIT_CONNECT only what the connect knows is checked
 * (transport, app, a room already in the connect path). Returns 0 or
 * SL_EDENIED with *reason (static, for the client) and detail (for the
 * log, detail_len bytes) filled.
 */
int sl_auth_jwt_authorize(const json_t *claims, const sl_admit_req_t *req, const char **reason,
                          char *detail, size_t detail_len);

/** `*` glob match (the `stream` claim): 1 when name matches pattern. */
int sl_auth_jwt_glob(const char *pattern, const char *name);

#endif
