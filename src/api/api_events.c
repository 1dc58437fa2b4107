/*
 * The live event stream: GET /api/v1/events upgrades to a WebSocket that
 * receives the events of the bus as one JSON text message each (the same JSON
 * as webhooks, see sl_event_to_json). Optional filters in the query:
 * app= (scope path or its prefix), stream=, type= (comma-separated event
 * names; without it, SL_EV_DEFAULT_MASK: app/room start and stop, and rpc,
 * only by name). A watcher whose send queue overflows is disconnected (close code
 * 1008) rather than allowed to grow memory: an integration that needs
 * every event durably uses webhooks.
 */
#include <string.h>

#include "api/api_internal.h"
#include "app/events.h"
#include "app/services.h"
#include "app/svc/cluster.h"
#include "base/alloc.h"
#include "base/log.h"
#include "sluice/errors.h"

typedef struct watcher {
    sl_api_t *api;
    sl_ws_t *ws;
    sl_list_t link;
    char app[256];       /* "" = any */
    char stream[256];    /* "" = any */
    uint32_t type_mask;  /* bit per sl_event_type_t; 0 = SL_EV_DEFAULT_MASK (no type=) */
    int closing;
} watcher_t;

static int matches(const watcher_t *w, const sl_event_t *ev)
{
    if (!((w->type_mask ? w->type_mask : SL_EV_DEFAULT_MASK) & (1u << ev->type)))
        return 0;
    if (w->app[0]) {
        size_t n = strlen(w->app);
        if (!ev->app || strncmp(ev->app, w->app, n) != 0 || (ev->app[n] != '\0' && ev->app[n] != '/'))
            return 0;
    }
    if (w->stream[0] && (!ev->stream || strcmp(ev->stream, w->stream) != 0))
        return 0;
    return 1;
}

static void on_event(const sl_event_t *ev, void *ud)
{
    sl_api_t *api = ud;
    if (!api->n_watchers)
        return;
    const char *node = api->core->cfg->server_node_name;
    if (!node || !node[0]) {
        /* In cluster mode an unnamed node is named by its cluster id. */
        void *cl_ud;
        const sl_svc_cluster_t *cl =
            sl_service_get(api->core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR, 0, &cl_ud);
        node = cl ? cl->self(cl_ud)->id : NULL;
    }
    char *json = sl_event_to_json(ev, node && node[0] ? node : NULL);
    if (!json)
        return;
    size_t len = strlen(json);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &api->watchers) {
        watcher_t *w = sl_container_of(it, watcher_t, link);
        if (w->closing || !matches(w, ev))
            continue;
        int rc = sl_ws_send_text(w->ws, json, len);
        if (rc == SL_ETOOBIG) {
            w->closing = 1;
            sl_ws_close(w->ws, 1008, "event consumer too slow");
        }
    }
    sl_free(json);
}

static void ws_on_message(sl_ws_t *ws, const uint8_t *data, size_t len, int is_text, void *ud)
{
    (void)ws;
    (void)data;
    (void)len;
    (void)is_text;
    (void)ud; /* the stream is one-way; client messages are ignored */
}

static void ws_on_close(sl_ws_t *ws, void *ud)
{
    watcher_t *w = ud;
    (void)ws;
    sl_list_remove(&w->link);
    w->api->n_watchers--;
    sl_free(w);
}

static const sl_ws_ops_t watcher_ops = {
    .on_message = ws_on_message,
    .on_close = ws_on_close,
};

int sl__api_events_accept(sl_api_t *api, sl_http_req_t *req)
{
    /* A plain GET (a browser tab, curl without upgrade headers) gets the
     * API's error envelope, as every other /api/v1 error does; an upgrade
     * attempt is judged by sl_http_ws_accept, whose own answer covers the
     * malformed ones. */
    if (!sl_http_req_header(req, "upgrade"))
        return sl__api_err(req, 400, "This endpoint is a WebSocket: connect with Upgrade: websocket.");
    watcher_t *w = sl_calloc(1, sizeof(*w));
    if (!w)
        return sl__api_err(req, 500, "Out of memory.");
    w->api = api;
    sl_list_init(&w->link);
    if (sl_http_query_get(req->query, "app", w->app, sizeof w->app) < 0)
        w->app[0] = '\0';
    if (sl_http_query_get(req->query, "stream", w->stream, sizeof w->stream) < 0)
        w->stream[0] = '\0';
    char types[512];
    if (sl_http_query_get(req->query, "type", types, sizeof types) > 0) {
        char *save = NULL;
        for (char *t = strtok_r(types, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
            int ty = sl_event_parse(t);
            if (ty < 0) {
                sl_free(w);
                char msg[160];
                snprintf(msg, sizeof msg, "Unknown event type %.80s.", t);
                return sl__api_err(req, 400, msg);
            }
            w->type_mask |= 1u << ty;
        }
    }
    sl_ws_t *ws;
    int rc = sl_http_ws_accept(req, &watcher_ops, w, &ws);
    if (rc) {
        sl_free(w);
        return 0; /* sl_http_ws_accept answered */
    }
    w->ws = ws;
    sl_list_push_back(&api->watchers, &w->link);
    api->n_watchers++;
    return 0;
}

int sl__api_events_start(sl_api_t *api)
{
    int id = sl_events_subscribe(api->core, "api.events", SL_EV_PHASE_STREAM, on_event, api);
    if (id < 0)
        return id;
    api->bus_listener = id;
    return 0;
}

void sl__api_events_stop(sl_api_t *api)
{
    sl_events_unsubscribe(api->core, api->bus_listener);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &api->watchers) {
        watcher_t *w = sl_container_of(it, watcher_t, link);
        if (!w->closing) {
            w->closing = 1;
            sl_ws_close(w->ws, 1001, "server shutting down");
        }
    }
}
