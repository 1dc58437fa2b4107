/*
 * Red5's restreamer servlet shape (restream_servlet.c): the body of
 * `POST /{app}/restream`,
 *
 *   {"guid": "", "context": "live", "name": "cam1", "level": 0,
 *    "parameters": {"action": "create", "type": "rtsp", "url": "rtsp://..."}}
 *
 * read into one request the restream module then carries out (a pull or
 * a push rule of its own, docs/restream.md "Red5's restreamer servlet").
 * Pure and bounded: the body has a size cap, every field is copied into a
 * fixed buffer and refused when it does not fit, and a create request's
 * entry goes through sl_rs_spec_parse, the check every pull and push
 * passes. It has a fuzz target (tests/fuzz/restream_spec_fuzz.c).
 */
#ifndef SL_MODULES_RESTREAM_SERVLET_H
#define SL_MODULES_RESTREAM_SERVLET_H

#include <stddef.h>

#include "modules/restream/restream_spec.h"

#define SL_RS_SV_BODY_MAX 16384  /* request body */
#define SL_RS_GUID_MAX 64        /* guid, with its NUL */
#define SL_RS_TYPE_MAX 16        /* type, with its NUL */

typedef enum {
    SL_RS_SV_CREATE = 0,
    SL_RS_SV_LIST = 1,
    SL_RS_SV_KILL = 2,
    SL_RS_SV_UPDATE = 3,
} sl_rs_sv_action_t;

typedef struct sl_rs_sv_req {
    sl_rs_sv_action_t action;
    char guid[SL_RS_GUID_MAX];    /* "" = none given */
    char context[SL_RS_NAME_MAX]; /* the app: "context" without leading '/', or the URL's app */
    char name[SL_RS_NAME_MAX];    /* stream name, "" = none given */
    char type[SL_RS_TYPE_MAX];    /* create: rtmp-push, rtmps-push, srt-push (srt-caller), srt,
                                   * mpegts, rtsp, rtmp, hls; other actions: as given or "" */
    int push;                     /* create: 1 for a push type, 0 for a pull */
    sl_rs_spec_t spec;            /* create: the pull or push entry */
} sl_rs_sv_req_t;

/**
 * Reads a servlet body (body, len bytes, untrusted) posted to
 * /{url_app}/restream into *out. Returns 0; SL_ETOOBIG past
 * SL_RS_SV_BODY_MAX; SL_EINVAL with a static reason in *why (bad JSON,
 * a missing or mistyped field, an unknown action or type, a URL whose
 * scheme does not fit the type, an entry sl_rs_spec_parse refuses);
 * SL_ENOMEM. Nothing is kept: out owns no memory.
 */
int sl_rs_servlet_parse(const char *body, size_t len, const char *url_app, sl_rs_sv_req_t *out,
                        const char **why);

/**
 * Reads a stream manager's restreamer provision (text, len bytes,
 * untrusted: Red5 SM 2.0's {"provisionGuid", "streams":[{"streamGuid":
 * "app/name", "camParams":{"properties":{...}}}]}, the cluster setting
 * restreamer/<guid>) into a create request, as if its properties had been
 * POSTed to the servlet with guid provisionGuid, context app, name name.
 * Red5's SM 2.0 names are mapped first: type srt-caller is srt-push,
 * ipcam is rtsp (url built as rtsp://{host}[:{port}]/{remoteContextPath}/
 * {remoteStreamName}), rtmpUri is url. Returns as sl_rs_servlet_parse
 * (SL_ETOOBIG past SL_RS_SV_BODY_MAX, SL_EINVAL with *why, SL_ENOMEM).
 */
int sl_rs_servlet_from_provision(const char *text, size_t len, sl_rs_sv_req_t *out,
                                 const char **why);

#endif
