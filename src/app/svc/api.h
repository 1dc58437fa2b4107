/*
 * Service "api" 1.1, provided by the Server API (src/api/api.c) while it
 * runs: how a module adds endpoints under /api/v1/ and answers them in the
 * API's envelope without including the API's headers (DESIGN.md §2: a
 * module sits below the API). Types only; look it up with
 *
 *   void *ud;
 *   const sl_svc_api_t *api = sl_service_get(core, SL_SVC_API, 1, 0, &ud);
 *
 * and pass ud back as each call's first argument. Absent when HTTP is off.
 * Every call runs on the loop thread. The table is append-only: new calls
 * go at the end with a "valid from 1.N" note and the minor grows.
 */
#ifndef SL_APP_SVC_API_H
#define SL_APP_SVC_API_H

#include "app/services.h"

#define SL_SVC_API "api"
#define SL_SVC_API_MAJOR 1
#define SL_SVC_API_MINOR 1

struct sl_http_req;
struct json_t;

typedef struct sl_svc_api {
    /**
     * Serves /api/v1/{segment}/... with cb (the contract of sl_http_route's
     * handler: return 0 once answered or answering): a request whose first
     * path segment after /api/v1/ is segment (and that the API does not
     * serve itself) reaches cb after the API's access check (allow-list,
     * token, failure rate limit). segment is copied; cb_ud is borrowed until
     * the API is freed. 0, SL_EINVAL (empty, too long or with a '/'),
     * SL_EBUSY (segment taken) or SL_ETOOBIG (table full).
     */
    int (*add_route)(void *ud, const char *segment,
                     int (*cb)(struct sl_http_req *req, void *cb_ud), void *cb_ud);
    /** Answers 200 with data in the envelope {status, code, data, timestamp}; steals data. */
    int (*ok)(struct sl_http_req *req, struct json_t *data);
    /** Answers an error status code with msg (copied) in the envelope. */
    int (*err)(struct sl_http_req *req, int code, const char *msg);
    /**
     * Valid from 1.1. The Server API's access check (allow-list, token as
     * ?accessToken= or Authorization: Bearer, failure rate limit) for a
     * module's own route outside /api/v1/ (e.g. Red5's /{app}/restream).
     * Returns 0 when the request may go on; otherwise it has answered req
     * (403, 401 or 429, in the envelope) and returns 1. Never logs the token.
     */
    int (*check_access)(void *ud, struct sl_http_req *req);
} sl_svc_api_t;

#endif
