/*
 * The settings table of the S3 upload module (see s3_config.h): keys, types, defaults,
 * bounds and docs, exactly as the YAML, the environment and the generated
 * docs show them.
 */
#include "modules/s3_upload/s3_config.h"

#include <stddef.h>

static const sl_config_slot_t g_slots[] = {
    {"endpoint", SL_CONFIG_STRING, offsetof(sl_s3_config_t, endpoint), "", 0, 1024, NULL,
     "S3-compatible endpoint, e.g. https://s3.us-east-1.amazonaws.com or http://127.0.0.1:4568; empty = no upload.", 0},
    {"bucket", SL_CONFIG_STRING, offsetof(sl_s3_config_t, bucket), "", 0, 255, NULL,
     "Bucket; objects are {app}/streams/{name}.flv (path-style URLs).", 0},
    {"region", SL_CONFIG_STRING, offsetof(sl_s3_config_t, region), "us-east-1", 1, 64, NULL,
     "Region used in the SigV4 signature.", 0},
    {"access_key", SL_CONFIG_STRING, offsetof(sl_s3_config_t, access_key), "", 0, 256, NULL,
     "Access key id.", 0},
    {"secret_key", SL_CONFIG_STRING, offsetof(sl_s3_config_t, secret_key), "", 0, 200, NULL,
     "Secret access key (prefer SLUICE_S3_SECRET_KEY over the file).", 0},
    {"part_size", SL_CONFIG_SIZE, offsetof(sl_s3_config_t, part_size), "8MB", 5 * SL_CONFIG_MB, 1 * SL_CONFIG_GB, NULL,
     "Files larger than this are sent as a multipart upload in parts of this size.", 0},
    {"delete_after_upload", SL_CONFIG_BOOL, offsetof(sl_s3_config_t, delete_after_upload), "false", 0, 0, NULL,
     "Delete the local file once its upload is verified (Red5 delete.recordings; keep false with append).", 0},
    {"retry_max_interval", SL_CONFIG_DURATION, offsetof(sl_s3_config_t, retry_max_ms), "5m", 1 * SL_CONFIG_SEC, 24 * SL_CONFIG_HOUR, NULL,
     "Longest wait between two attempts of a failed upload (exponential backoff up to this; retried until done).", 0},
    {"timeout", SL_CONFIG_DURATION, offsetof(sl_s3_config_t, timeout_ms), "10m", 1 * SL_CONFIG_SEC, 24 * SL_CONFIG_HOUR, NULL,
     "Time one HTTP request (one part) may take.", 0},
};

const sl_config_section_t sl_s3_config_section = {
    .name = "s3",
    .doc = "Upload of finished recordings to S3-compatible storage (durable queue in sluice.db, SigV4).",
    .size = sizeof(sl_s3_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
};
