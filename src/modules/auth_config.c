/*
 * The settings table of the auth modules (simple, JWT, round trip) (see auth_config.h): keys, types, defaults,
 * bounds and docs, exactly as the YAML, the environment and the generated
 * docs show them.
 */
#include "modules/auth_config.h"

#include <stddef.h>

static const char *const deny_allow_names[] = {"deny", "allow", NULL};

static const sl_config_slot_t g_slots[] = {
    {"simple_file", SL_CONFIG_STRING, offsetof(sl_auth_config_t, simple_file), "", 0, 4095, NULL,
     "Simple auth credentials file (Red5 format: 'username password' per line, # comments); reloaded when it changes.", 0},
    {"jwt_secret", SL_CONFIG_STRING, offsetof(sl_auth_config_t, jwt_secret), "", 0, 4096, NULL,
     "Shared secret for HS256/384/512 tokens.", 0},
    {"jwt_public_key_file", SL_CONFIG_STRING, offsetof(sl_auth_config_t, jwt_public_key_file), "", 0, 4095, NULL,
     "PEM public key for RS256/ES256 tokens.", 0},
    {"jwt_jwks_file", SL_CONFIG_STRING, offsetof(sl_auth_config_t, jwt_jwks_file), "", 0, 4095, NULL,
     "JWKS file (keys by kid) for RS256/ES256 tokens.", 0},
    {"jwt_issuer", SL_CONFIG_STRING, offsetof(sl_auth_config_t, jwt_issuer), "", 0, 1024, NULL,
     "Required iss claim; empty = not checked.", 0},
    {"jwt_audience", SL_CONFIG_STRING, offsetof(sl_auth_config_t, jwt_audience), "", 0, 1024, NULL,
     "Required aud claim; empty = not checked.", 0},
    {"jwt_leeway", SL_CONFIG_DURATION, offsetof(sl_auth_config_t, jwt_leeway_ms), "30s", 0, 1 * SL_CONFIG_HOUR, NULL,
     "Clock skew allowed when checking exp and nbf.", 0},
    {"roundtrip_validate_url", SL_CONFIG_STRING, offsetof(sl_auth_config_t, roundtrip_validate_url), "", 0, 4095, NULL,
     "Round Trip Authentication: the business's validate endpoint (POST {username,password,token,type,streamID}).", 0},
    {"roundtrip_invalidate_url", SL_CONFIG_STRING, offsetof(sl_auth_config_t, roundtrip_invalidate_url), "", 0, 4095,
     NULL, "Round Trip Authentication: called with the same body when an authenticated client leaves.", 0},
    {"roundtrip_timeout", SL_CONFIG_DURATION, offsetof(sl_auth_config_t, roundtrip_timeout_ms), "5s", 100, 5 * SL_CONFIG_MINUTE,
     NULL, "How long to wait for the validate endpoint.", 0},
    {"roundtrip_default", SL_CONFIG_ENUM, offsetof(sl_auth_config_t, roundtrip_default), "deny", 0, 0, deny_allow_names,
     "What to answer when the validate endpoint fails or times out.", 0},
    {"roundtrip_lazy", SL_CONFIG_BOOL, offsetof(sl_auth_config_t, roundtrip_lazy), "false", 0, 0, NULL,
     "Admit at once and disconnect the client if the answer is no.", 0},
};

static const sl_config_slot_t g_app_slots[] = {
    {"auth_simple", SL_CONFIG_BOOL, offsetof(sl_auth_app_config_t, auth_simple), "false", 0, 0, NULL,
     "Check clients against auth.simple_file.", 0},
    {"auth_jwt", SL_CONFIG_BOOL, offsetof(sl_auth_app_config_t, auth_jwt), "false", 0, 0, NULL,
     "Require a valid JWT (auth.jwt_*) from clients.", 0},
    {"auth_roundtrip", SL_CONFIG_BOOL, offsetof(sl_auth_app_config_t, auth_roundtrip), "false", 0, 0, NULL,
     "Ask the business's server (auth.roundtrip_*) before publish and play.", 0},
    {"auth_protocols", SL_CONFIG_STRING, offsetof(sl_auth_app_config_t, auth_protocols), "*", 0, 255, NULL,
     "Protocols the auth checks apply to (comma-separated: rtmp,rtsp,webrtc,hls,http-flv,srt); * = all.", 0},
};

const sl_config_section_t sl_auth_config_section = {
    .name = "auth",
    .doc = "Admission: simple auth, JWT and Round Trip Authentication (enabled per app).",
    .size = sizeof(sl_auth_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
    .app_size = sizeof(sl_auth_app_config_t),
    .app_slots = g_app_slots,
    .n_app_slots = sizeof g_app_slots / sizeof g_app_slots[0],
};
