/*
 * Internals shared by the API's files (api.c routing and access,
 * api_stats.c Red5 objects, api_events.c the event WebSocket,
 * api_metrics.c Prometheus). Not a public interface.
 */
#ifndef SL_API_INTERNAL_H
#define SL_API_INTERNAL_H

#include <jansson.h>

#include "api/api.h"
#include "base/list.h"
#include "base/map.h"

#define SL_API_MAX_EXT 16 /* module endpoint families (sl_api_add_route) */

typedef struct sl_api_ext {
    char segment[32];         /* first path segment after /api/v1/ */
    sl_http_handler_cb cb;
    void *ud;
} sl_api_ext_t;

struct sl_api {
    sl_core_t *core;
    sl_http_server_t *http;   /* the server it routes on (borrowed): lists routes */
    char token[129];          /* the access token in force */
    int token_generated;      /* 0 from config, 1 read from file, 2 newly generated */
    sl_map_t fails;           /* address (IPv6: /64) -> failed-auth record */
    uint64_t n_auth_failed;   /* wrong or missing tokens answered 401 */
    uint64_t n_auth_limited;  /* answered 429 by api.auth_fail_limit */
    uint64_t n_fail_evicted;  /* records forgotten because the table was full */
    sl_list_t watchers;       /* event WebSockets */
    size_t n_watchers;
    int bus_listener;         /* event bus listener id */
    uv_timer_t lag_timer;     /* measures event-loop lag */
    uint64_t lag_last_ns;
    double loop_lag_ms, loop_lag_max_ms;
    int stopped;
    sl_api_ext_t ext[SL_API_MAX_EXT]; /* module endpoints, tried after the API's own */
    size_t n_ext;
};

/* api.c */
int sl__api_ok(sl_http_req_t *req, json_t *data); /* steals data */
int sl__api_err(sl_http_req_t *req, int code, const char *msg);
int sl__api_check_access(sl_api_t *api, sl_http_req_t *req);

/* api_stats.c */
int sl__api_server_info(sl_api_t *api, sl_http_req_t *req);
int sl__api_server_stats(sl_api_t *api, sl_http_req_t *req);
int sl__api_app_list(sl_api_t *api, sl_http_req_t *req);
int sl__api_apps_stats(sl_api_t *api, sl_http_req_t *req);
int sl__api_app_route(sl_api_t *api, sl_http_req_t *req, const sl_app_config_t *app, char **seg,
                      int n, int is_get, int is_del, int is_post);

/* api_so.c */
int sl__api_so_route(sl_api_t *api, sl_http_req_t *req, const char *scope, char **seg, int n);

/* api_events.c */
int sl__api_events_start(sl_api_t *api);
void sl__api_events_stop(sl_api_t *api);
int sl__api_events_accept(sl_api_t *api, sl_http_req_t *req);

/* api_metrics.c */
int sl__api_metrics(sl_api_t *api, sl_http_req_t *req);

#endif
