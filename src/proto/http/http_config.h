/*
 * The HTTP server: its settings, a section of the configuration (base/config.h).
 *
 * The table in http_config.c declares every key (YAML `http.*`, env SLUICE_HTTP_<KEY>); the engine fills the structs
 * below, which the owner reads with sl_http_cfg(cfg).
 */
#ifndef SL_PROTO_HTTP_HTTP_CONFIG_H
#define SL_PROTO_HTTP_HTTP_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* The `http` section. */
typedef struct sl_http_config {
    int enabled;
    char *bind;                          /* listen address */
    int64_t port;
    int64_t max_header_bytes;            /* request head limit (431) */
    int64_t max_headers;                 /* header count limit (431) */
    int64_t max_body_bytes;              /* body limit (413) */
    int64_t max_url_bytes;               /* URL limit (414) */
    int64_t header_timeout_ms;           /* slow request head: 408 */
    int64_t request_timeout_ms;          /* whole request (head and body): 408 */
    int64_t idle_timeout_ms;             /* idle keep-alive close */
    char *cors_origin;                   /* "" disables CORS */
    char *web_root;                      /* static pages folder, "auto" or "" (none) */
    int64_t ws_max_message_bytes;
    int64_t stream_max_pending_bytes;
    char *tls_cert;                      /* PEM certificate (chain) file; "" = no HTTPS */
    char *tls_key;                       /* PEM private key file; "" = no HTTPS */
    int64_t tls_port;                    /* HTTPS listener port */
    char *tls_bind;                      /* HTTPS listen address; "" = http_bind */
} sl_http_config_t;

/** The section descriptor, to list in the configuration (see src/builtin_config.c). */
extern const sl_config_section_t sl_http_config_section;

/** This section of cfg (borrowed; never NULL once the section is registered). */
static inline sl_http_config_t *sl_http_cfg(const sl_config_t *cfg)
{
    return (sl_http_config_t *)sl_config_get(cfg, &sl_http_config_section);
}

#endif
