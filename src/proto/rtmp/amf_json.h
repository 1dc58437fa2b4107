/*
 * AMF values <-> JSON, for RPC: a client's call arguments go to handlers
 * and the business server as JSON, and their JSON results come back to the
 * client as AMF0 (src/proto/rtmp/rtmp_rpc.c).
 *
 * Mapping, AMF -> JSON: number and date -> number (integral values within
 * 2^53 as integers), boolean -> boolean, string and XML -> string, null
 * and undefined -> null, object and ECMA array -> object (keys in wire
 * order; a duplicate key keeps its last value), strict array -> array,
 * ByteArray -> null (binary has no JSON form). Strings and keys must be
 * valid UTF-8 (SL_EINVAL otherwise: JSON cannot carry them). JSON -> AMF:
 * object -> anonymous object, array -> strict array, integer and real ->
 * number, string, boolean, null.
 *
 * Both directions are bounded: nesting by max_depth (SL_EDEPTH) and the
 * JSON text by max_bytes (SL_ETOOBIG). The AMF side arrives already
 * bounded by its decoder (amf.h); the JSON side is parsed by jansson.
 */
#ifndef SL_PROTO_RTMP_AMF_JSON_H
#define SL_PROTO_RTMP_AMF_JSON_H

#include <stddef.h>

#include "proto/rtmp/amf.h"

/**
 * Converts n values (vals[0..n), borrowed) to one JSON array text in *out
 * (caller sl_frees). 0, SL_EINVAL (a string or key is not UTF-8),
 * SL_EDEPTH (deeper than max_depth containers), SL_ETOOBIG (text over
 * max_bytes), SL_ENOMEM. On error *out is NULL.
 */
int sl_amf_list_to_json(sl_amf_t *const *vals, size_t n, int max_depth, size_t max_bytes,
                        char **out);

/**
 * Converts one value to a JSON text in *out (caller sl_frees); same errors
 * as sl_amf_list_to_json.
 */
int sl_amf_to_json(const sl_amf_t *v, int max_depth, size_t max_bytes, char **out);

/**
 * Parses a JSON text (json[0..len), borrowed; any value, not only objects)
 * and converts it to a new owned AMF tree in *out. 0, SL_EINVAL (not
 * JSON), SL_EDEPTH, SL_ETOOBIG (len over max_bytes), SL_ENOMEM. On error
 * *out is NULL.
 */
int sl_amf_from_json(const char *json, size_t len, int max_depth, size_t max_bytes, sl_amf_t **out);

/**
 * Same for an already parsed jansson value (borrowed; a json_t *, declared
 * void * here so that callers need not include jansson).
 */
int sl_amf_from_jansson(const void *j, int max_depth, sl_amf_t **out);

#endif
