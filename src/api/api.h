/*
 * The Server API (Red5 Pro compatible, see RED5-COMPAT.md §1), Prometheus
 * metrics and the live event stream, as routes on the HTTP server.
 *
 *   /api/v1/...       Red5's paths, ?accessToken= (or Authorization: Bearer),
 *                     the {status, code, data, timestamp} envelope, snake_case
 *                     statistics objects, plus sluice's additions (stream
 *                     subscribers, kick one subscriber, richer stream fields)
 *   /api/v1/events    WebSocket: every bus event as one JSON message, with
 *                     optional filters ?app=&stream=&type=a,b
 *   /metrics          Prometheus text format
 *
 * Access: the token from api.access_token, or, when that is empty, a random
 * token generated at first start and kept in {data_dir}/api_token (printed
 * in the startup log); api.hosts is an allow-list of client addresses
 * ("*" = any). Failed token checks are rate-limited per address.
 */
#ifndef SL_API_API_H
#define SL_API_API_H

#include "app/core.h"
#include "proto/http/http.h"

typedef struct sl_api sl_api_t;

/**
 * Loads or creates the access token and adds the API, events and metrics
 * routes to http. Returns 0 and the API in *out, or an error (the token
 * file could not be read or written, SL_ENOMEM).
 */
int sl_api_start(sl_core_t *core, sl_http_server_t *http, sl_api_t **out);
/** Stops timers and closes event streams (graceful shutdown). */
void sl_api_stop(sl_api_t *api);
/** Frees the API after the loop has closed its handles. */
void sl_api_free(sl_api_t *api);

/**
 * Lets a module serve /api/v1/{segment}/... (e.g. "webhooks"): a request
 * whose first path segment after /api/v1/ is `segment` (and that the API
 * does not serve itself) goes to cb once it has passed the API's access
 * check (address allow-list, token, failure rate limit), so every /api/v1
 * path shares one access rule, one envelope (sl__api_ok / sl__api_err in
 * api_internal.h) and one 404. The handler contract is sl_http_route's.
 * segment is copied; ud is borrowed until sl_api_free. A module reaches
 * this through the service "api" (src/app/svc/api.h), registered by
 * sl_api_start and absent when HTTP is off. Returns 0, SL_EINVAL
 * (empty or too long segment), SL_EBUSY (segment taken) or SL_ETOOBIG
 * (table full).
 */
int sl_api_add_route(sl_api_t *api, const char *segment, sl_http_handler_cb cb, void *ud);

#endif
