/*
 * Stream provisions (ABR), the stream manager's side of the contract with
 * the abr module (docs/stream-manager.md, "Provisions"): pure functions that
 * validate a provision in Red5 SM 2.0's shape (the canonical form stored as
 * the cluster setting `provision/<app>/<name>`), convert SM 4.0's
 * `{"meta":{"stream":[...]}}` body to it and back, so that the rules can be
 * unit-tested and fuzzed without Redis or a loop.
 *
 * Limits (both sides of the contract validate them): 1..8 variants, abrLevel
 * 1..8 distinct, each variant's streamGuid in the provision's app, width and
 * height even in 16..4096, videoBitRate 32000..50000000, videoFPS 1..120,
 * the canonical JSON at most SL_SM_PROV_MAX bytes.
 */
#ifndef SL_CLUSTER_STREAMMANAGER_SM_PROVISION_H
#define SL_CLUSTER_STREAMMANAGER_SM_PROVISION_H

#include <jansson.h>
#include <stddef.h>

#define SL_SM_PROV_MAX 8192          /* canonical JSON, bytes */
#define SL_SM_PROV_BODY_MAX 65536    /* one request body (SM 2.0 may carry several) */
#define SL_SM_PROV_MAX_PER_BODY 32   /* provisions in one SM 2.0 body */
#define SL_SM_PROV_MAX_VARIANTS 8
#define SL_SM_PROV_GUID_MAX 512      /* a stream GUID, bytes with the NUL */

/**
 * Validates one SM 2.0 ProvisionRequest (in: borrowed; `streamGuid`, or
 * Red5's later `provisionGuid` when streamGuid is absent) and builds its
 * canonical form into *out (a new reference the caller decrefs): only the
 * contract's fields, variants sorted by abrLevel. guid: when non-NULL the
 * GUID the URL names, which the body's must equal (or may omit).
 * 0, or SL_EINVAL with err (cap bytes) saying why, for a 400.
 */
int sl_sm_prov_canon(const json_t *in, const char *guid, json_t **out, char *err, size_t cap);

/**
 * Converts SM 4.0's body {"meta":{"stream":[{"name","level","bandwidth"?,
 * "properties":{"videoWidth","videoHeight","videoBR"|"videoBitRate",
 * "videoFPS"?}}], ...}} for stream app/name (borrowed) to the canonical
 * form (as sl_sm_prov_canon). A variant name without '/' is in app. Levels
 * may be numbers or digit strings (Red5's own examples quote them).
 * 0 or SL_EINVAL with err.
 */
int sl_sm_prov_from_sm4(const json_t *in, const char *app, const char *name, json_t **out,
                        char *err, size_t cap);

/**
 * SM 4.0's answer for a canonical provision (borrowed):
 * {"name","scope","data":{"meta":{"stream":[{"name","level","bandwidth",
 * "properties":{...}}]}},"updated":updated_ms}. A new reference, or NULL
 * (out of memory, or canon not canonical).
 */
json_t *sl_sm_prov_to_sm4(const json_t *canon, long long updated_ms);

/**
 * Parses text (len bytes, at most SL_SM_PROV_BODY_MAX, no NUL needed) as
 * JSON with a depth cap; a new reference or NULL (too large, not JSON).
 */
json_t *sl_sm_prov_parse(const char *text, size_t len);

/**
 * The GUID of the variant a broadcaster publishes for a canonical
 * provision (canon_text, borrowed, NUL-terminated): level 1's, copied
 * into out (cap bytes). 0, or SL_EINVAL (not canonical, or no level 1).
 */
int sl_sm_prov_level1(const char *canon_text, char *out, size_t cap);

/*
 * Restreamer provisions (Red5 SM 2.0: a stream with camParams): the
 * stream manager stores them as the cluster setting
 * `restreamer/<provisionGuid>` and the node it distributes one to carries
 * it out (the restream module). Canonical form:
 *   {"provisionGuid":"srt1",
 *    "streams":[{"streamGuid":"live/stream1","abrLevel":0,
 *                "camParams":{"properties":{"action":"create","type":"srt",...}}}],
 *    "capabilities":["PUBLISH"]}                      (capabilities optional)
 * Limits: provisionGuid 3..63 of [A-Za-z0-9_.-] (Red5: 256; a node's restreamer guid holds 63);
 * exactly one stream;
 * properties at most SL_SM_RS_MAX_PROPS flat members (string, number or
 * boolean), keys up to 63 bytes of [A-Za-z0-9_.-], strings up to 2047
 * bytes; the canonical JSON at most SL_SM_PROV_MAX bytes.
 */
#define SL_SM_RS_GUID_MAX 64         /* provisionGuid, bytes with the NUL (the node's guid cap) */
#define SL_SM_RS_MAX_PROPS 32        /* camParams.properties members */

/** 1 when in (borrowed, any JSON) is a restreamer provision: a stream carries camParams. */
int sl_sm_prov_is_restream(const json_t *in);

/**
 * Validates one restreamer ProvisionRequest (in: borrowed) and builds its
 * canonical form into *out (a new reference the caller decrefs): only the
 * fields above; action defaults to "create" and must be it; type must be
 * one sluice carries out (srt, srt-caller, srt-push, rtsp, ipcam, rtmp,
 * rtmp-push, rtmps-push, mpegts, hls) with what it needs (a URL, or a
 * host and port; srt's ip may not be a wildcard: sluice calls the source).
 * guid: when non-NULL the GUID the URL names, which the body's must equal.
 * 0, or SL_EINVAL with err (cap bytes) saying why, for a 400.
 */
int sl_sm_prov_restream_canon(const json_t *in, const char *guid, json_t **out, char *err,
                              size_t cap);

/**
 * The capabilities a distribution of canon (borrowed, canonical ABR or
 * restreamer provision) asks for, Red5's three-level precedence: the API's
 * list (api: "PUBLISH,TRANSCODE", NULL or "" when not given), else the
 * provision's "capabilities", else implicit (camParams: PUBLISH;
 * videoParams: TRANSCODE). Returns a mask of SL_SM_CAP_*, or -1 when api
 * names an unknown capability or is longer than 128 bytes.
 */
#define SL_SM_CAP_PUBLISH 1
#define SL_SM_CAP_SUBSCRIBE 2
#define SL_SM_CAP_TRANSCODE 4
#define SL_SM_CAP_OTHER 8 /* MIX, ZIXI, XILINX: named by Red5, not carried out by sluice */
int sl_sm_prov_caps(const json_t *canon, const char *api);

#endif
