/*
 * The auth modules (simple, JWT, round trip): its settings, a section of the configuration (base/config.h).
 *
 * The table in auth_config.c declares every key (YAML `auth.*`, env SLUICE_AUTH_<KEY>) and the per-app keys apps.<name>.<key>; the engine fills the structs
 * below, which the owner reads with sl_auth_cfg(cfg) and sl_auth_app_cfg(app).
 */
#ifndef SL_MODULES_AUTH_CONFIG_H
#define SL_MODULES_AUTH_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* The `auth` section. */
typedef struct sl_auth_config {
    char *simple_file;
    char *jwt_secret;
    char *jwt_public_key_file;
    char *jwt_jwks_file;
    char *jwt_issuer;
    char *jwt_audience;
    int64_t jwt_leeway_ms;
    char *roundtrip_validate_url;
    char *roundtrip_invalidate_url;
    int64_t roundtrip_timeout_ms;
    int64_t roundtrip_default;           /* 0 deny, 1 allow */
    int roundtrip_lazy;
} sl_auth_config_t;

/* Per-app settings of this section (apps.<name>.<key>). */
typedef struct sl_auth_app_config {
    int auth_simple;                     /* check auth.simple_file */
    int auth_jwt;                        /* require a JWT */
    int auth_roundtrip;                  /* round-trip validate at publish/play */
    char *auth_protocols;                /* protocols the auth checks apply to; "*" = all */
} sl_auth_app_config_t;

/** The section descriptor, to list in the configuration (see src/builtin_config.c). */
extern const sl_config_section_t sl_auth_config_section;

/** This section of cfg (borrowed; never NULL once the section is registered). */
static inline sl_auth_config_t *sl_auth_cfg(const sl_config_t *cfg)
{
    return (sl_auth_config_t *)sl_config_get(cfg, &sl_auth_config_section);
}

/** This section's settings of one app (borrowed, like the app). */
static inline sl_auth_app_config_t *sl_auth_app_cfg(const sl_app_config_t *app)
{
    return (sl_auth_app_config_t *)sl_config_app_get(app, &sl_auth_config_section);
}

#endif
