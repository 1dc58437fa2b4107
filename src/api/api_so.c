/*
 * The Server API's shared objects (RED5-COMPAT.md §1.3) under
 * /api/v1/applications/{app}/sharedobjects, through the service
 * "sharedobjects" (app/svc/sharedobjects.h), never the module itself:
 *
 *   GET    .../sharedobjects                     names in the scope (Red5)
 *   GET    .../sharedobjects/{name}              SoStatistics (Red5)
 *   GET    .../sharedobjects/{name}/data         the attributes (sluice)
 *   PUT    .../sharedobjects/{name}/data         {key: value, ...}: one update; null deletes
 *   DELETE .../sharedobjects/{name}/data         clear
 *   DELETE .../sharedobjects/{name}/data/{key}   delete one attribute
 *   POST   .../sharedobjects/{name}/send         {"method": handler, "args": [...]}
 *
 * Writes are the server's (no writer): every subscriber gets `change`, and
 * so_update events carry no session. The body is capped by the HTTP
 * server's request limit; values by the app's so_max_value_bytes.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"
#include "app/services.h"
#include "app/svc/sharedobjects.h"
#include "base/alloc.h"
#include "sluice/errors.h"

/* Most attributes one API write may carry. */
#define MAX_KEYS_PER_WRITE 1024

static void add_name(void *arg, const char *name)
{
    json_array_append_new(arg, json_string(name));
}

static int answer(sl_http_req_t *req, int rc, const sl_so_service_t *so, void *ud,
                  const char *scope, const char *name)
{
    switch (rc) {
    case 0: {
        sl_so_stats_t st;
        if (so->get(ud, scope, name, NULL, &st))
            return sl__api_ok(req, json_object());
        return sl__api_ok(req, json_pack("{s:s, s:I}", "name", name, "version",
                                         (json_int_t)st.version));
    }
    case SL_ENOTFOUND:
        return sl__api_err(req, 404, "Shared object not found.");
    case SL_ETOOBIG:
        return sl__api_err(req, 413, "A shared object limit was reached (keys, value or object size).");
    case SL_EINVAL:
        return sl__api_err(req, 400, "Invalid key, method or arguments.");
    default:
        return sl__api_err(req, 500, sl_strerror(rc));
    }
}

/*
 * Serves seg[0] == "sharedobjects" for scope (the app or app/room the
 * request names). Returns what the HTTP handler returns; answers 404 when
 * the service is not running (shared objects disabled: an empty list).
 */
int sl__api_so_route(sl_api_t *api, sl_http_req_t *req, const char *scope, char **seg, int n)
{
    int is_get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    int is_del = strcmp(req->method, "DELETE") == 0;
    int is_post = strcmp(req->method, "POST") == 0;
    int is_put = strcmp(req->method, "PUT") == 0;
    void *ud = NULL;
    const sl_so_service_t *so =
        sl_service_get(api->core, SL_SO_SERVICE, SL_SO_SERVICE_MAJOR, 0, &ud);
    if (n == 1 && is_get) {
        json_t *a = json_array();
        if (so)
            so->list(ud, scope, add_name, a);
        return sl__api_ok(req, a);
    }
    if (!so || n < 2)
        return sl__api_err(req, 404, "Shared object not found.");
    const char *name = seg[1];
    sl_so_stats_t st;
    if (so->get(ud, scope, name, NULL, &st))
        return sl__api_err(req, 404, "Shared object not found.");
    if (n == 2 && is_get)
        return sl__api_ok(req, json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name",
                                         name, "persistent", st.persistent, "version",
                                         (json_int_t)st.version, "active_listeners",
                                         (json_int_t)st.active_listeners, "total_listeners",
                                         (json_int_t)st.total_listeners, "max_listeners",
                                         (json_int_t)st.max_listeners, "total_changes",
                                         (json_int_t)st.total_changes, "total_deletes",
                                         (json_int_t)st.total_deletes, "total_sends",
                                         (json_int_t)st.total_sends));
    if (n >= 3 && strcmp(seg[2], "data") == 0) {
        if (n == 3 && is_get) {
            json_t *data = NULL;
            int rc = so->get(ud, scope, name, &data, NULL);
            return rc ? answer(req, rc, so, ud, scope, name) : sl__api_ok(req, data);
        }
        if (n == 3 && is_del) {
            sl_so_change_t c = {SL_SO_CLEAR, NULL, NULL};
            return answer(req, so->apply(ud, NULL, scope, name, &c, 1), so, ud, scope, name);
        }
        if (n == 4 && is_del) {
            sl_so_change_t c = {SL_SO_DELETE, seg[3], NULL};
            return answer(req, so->apply(ud, NULL, scope, name, &c, 1), so, ud, scope, name);
        }
        if (n == 3 && is_put) {
            json_t *body = json_loadb((const char *)req->body, req->body_len,
                                      JSON_REJECT_DUPLICATES, NULL);
            size_t k = json_object_size(body);
            if (!json_is_object(body) || k == 0 || k > MAX_KEYS_PER_WRITE) {
                json_decref(body);
                return sl__api_err(req, 400, "Body must be a JSON object {key: value, ...}.");
            }
            sl_so_change_t *c = sl_calloc(k, sizeof *c);
            if (!c) {
                json_decref(body);
                return sl__api_err(req, 500, "Out of memory.");
            }
            size_t i = 0;
            const char *key;
            json_t *v;
            json_object_foreach(body, key, v) c[i++] = (sl_so_change_t){
                SL_SO_CHANGE, key, json_is_null(v) ? NULL : v};
            int rc = so->apply(ud, NULL, scope, name, c, k);
            sl_free(c);
            json_decref(body);
            return answer(req, rc, so, ud, scope, name);
        }
    }
    if (n == 3 && strcmp(seg[2], "send") == 0 && is_post) {
        json_t *body = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES,
                                  NULL);
        const char *method = json_string_value(json_object_get(body, "method"));
        json_t *args = json_object_get(body, "args");
        if (!method || (args && !json_is_array(args))) {
            json_decref(body);
            return sl__api_err(req, 400, "Body must be {\"method\": name, \"args\": [...]}.");
        }
        sl_so_change_t c = {SL_SO_SEND, method, args};
        int rc = so->apply(ud, NULL, scope, name, &c, 1);
        json_decref(body);
        return answer(req, rc, so, ud, scope, name);
    }
    return sl__api_err(req, 404, "No such shared object endpoint.");
}
