/*
 * The s3_upload module: every recording saved (record_done without a
 * failure) is uploaded to S3-compatible storage as
 * {bucket}/{app}/streams/{name}.flv (Red5's cloud storage layout), through
 * a durable queue in {data_dir}/sluice.db (table upload_queue) that a
 * worker thread empties with libcurl, signing each request with SigV4
 * (s3_sigv4.h): one PUT, or a multipart upload above s3.part_size; then a
 * HEAD verifies the size. Failures are retried with exponential backoff
 * until they succeed, across restarts. Emits upload_done / upload_failed.
 * Inert while s3.endpoint or s3.bucket is empty. See docs/integration/s3.md.
 */
#ifndef SL_MODULES_S3_UPLOAD_S3_UPLOAD_H
#define SL_MODULES_S3_UPLOAD_S3_UPLOAD_H

#include "modules/module.h"

/* The built-in module (modules.c lists it). */
extern const sl_builtin_t sl_s3_upload_builtin;

#endif
