/*
 * The S3 upload module: its settings, a section of the configuration (base/config.h).
 *
 * The table in s3_config.c declares every key (YAML `s3.*`, env SLUICE_S3_<KEY>); the engine fills the structs
 * below, which the owner reads with sl_s3_cfg(cfg).
 */
#ifndef SL_MODULES_S3_UPLOAD_S3_CONFIG_H
#define SL_MODULES_S3_UPLOAD_S3_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* The `s3` section. */
typedef struct sl_s3_config {
    char *endpoint;                      /* "http(s)://host[:port]"; "" = no upload */
    char *bucket;
    char *region;
    char *access_key;
    char *secret_key;
    int64_t part_size;                   /* multipart above this size */
    int delete_after_upload;             /* Red5 delete.recordings */
    int64_t retry_max_ms;                /* longest wait between two attempts */
    int64_t timeout_ms;                  /* one HTTP request */
} sl_s3_config_t;

/** The section descriptor, to list in the configuration (see src/builtin_config.c). */
extern const sl_config_section_t sl_s3_config_section;

/** This section of cfg (borrowed; never NULL once the section is registered). */
static inline sl_s3_config_t *sl_s3_cfg(const sl_config_t *cfg)
{
    return (sl_s3_config_t *)sl_config_get(cfg, &sl_s3_config_section);
}

#endif
