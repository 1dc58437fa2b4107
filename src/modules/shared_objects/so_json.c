/*
 * Shared objects as Red5's JSON messages (HTML5 SDK <= 12, RED5-COMPAT.md
 * §6.1): a thin adapter that takes `sharedObjectGetRemote`,
 * `sharedObjectConnect`, `sharedObjectSetProperty`, `sharedObjectSend` and
 * `sharedObjectClose` through the "webrtc-ws" service (a signalling
 * WebSocket `/{app}/?id=...`, or the `red5pro` data channel of a WebRTC
 * session: the service hides which) and maps them to the "sharedobjects"
 * service; the service's batches go back as the SDK's events:
 *
 *   {"data":{"name":N,"status":"SharedObject.Status.GetRemote|Connect|Disconnect",
 *            "message":"Success"|"Fail"|...}}
 *   {"data":{"name":N,"type":"sharedobject","version":V,"events":[
 *       {"subtype":4,"attribute":K,"value":X},   change (PropertyUpdate)
 *       {"subtype":5,"attribute":K},             the receiver's own write applied
 *       {"subtype":9,"attribute":K},             delete (PropertyRemove)
 *       {"subtype":8},                           clear
 *       {"subtype":6,"method":M,"value":[...]},  send (MethodUpdate)
 *       {"subtype":7,"code":C,"level":L}]}}      status (an error)
 *
 * Subtypes are RTMP's SO event types, as the SDK's Red5ProSharedObject
 * reads them (4, 6 and 9; it ignores the others). "version" is sluice's.
 *
 * Each conn is a client (one subscriber per object, owner = the client).
 * Before a socket's first shared-object message is acted on, the conn is
 * admitted through the service's admit(): messages that arrive while the
 * admission is pending wait in a small queue (SOJ_MAX_QUEUED), then run in
 * order; a refused socket gets `Fail` answers. Joining an object is then
 * admitted on its own (kind SL_ADMIT_SO_CONNECT through the service's
 * admit_kind, Red5's onSharedObjectAuthenticate): while that runs the
 * client's messages wait in the same queue (the connect first), and a
 * refusal answers Connect `Fail` with code SharedObject.NoReadAccess.
 * Budgets: objects per conn
 * (SOJ_MAX_OBJECTS), the service's per-app limits, the socket's own message
 * size and rate caps. Everything runs on the loop thread.
 */
#include "modules/shared_objects/so_json.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "app/admission.h"
#include "app/core.h"
#include "app/services.h"
#include "app/svc/sharedobjects.h"
#include "app/svc/webrtc_ws.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/map.h"
#include "sluice/errors.h"

#define SOJ_MAX_OBJECTS 64        /* objects one conn may have joined at once */
#define SOJ_MAX_QUEUED 16         /* messages held while the admission runs */
#define SOJ_RETRY_MS 250          /* looking for the "webrtc-ws" service */

static const sl_log_ctx_t g_jctx = {.proto = "so-json"};

static const char *const g_keys[] = {
    "sharedObjectGetRemote", "sharedObjectConnect", "sharedObjectSetProperty",
    "sharedObjectSend",      "sharedObjectClose",
};
#define SOJ_N_KEYS (sizeof g_keys / sizeof g_keys[0])

typedef struct soj_msg {
    struct soj_msg *next;
    size_t len;
    char text[];                  /* the message as received */
} soj_msg_t;

typedef struct soj_client {
    struct sl_so_json *j;
    sl_wsig_conn_t *c;            /* borrowed: valid until the handler's on_close */
    char key[24];                 /* in j->clients */
    size_t n_objects;             /* objects joined */
    soj_msg_t *queue, *queue_tail; /* waiting for the admission */
    size_t n_queued;
    int admit_pending;            /* the conn's or an object's admission runs: messages queue */
    sl_admit_t *so_admit;         /* an object's pending admission (our reference), or NULL */
    int so_admit_in_call;         /* inside admit_kind: its answer waits for the return */
    int so_admit_result;
    const char *so_admitted;      /* while its connect replays: the object just admitted */
} soj_client_t;

struct sl_so_json {
    sl_core_t *core;
    const sl_wsig_svc_t *ws;      /* NULL until found */
    void *ws_ud;
    int registered;               /* our keys are in its table */
    uv_timer_t timer;
    int stopping;
    sl_map_t clients;             /* "%p" of conn -> soj_client_t */
};

/* ---- sending ---- */

static void send_obj(soj_client_t *cl, json_t *o)
{
    if (!o)
        return;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return;
    cl->j->ws->send(cl->c, s, strlen(s));
    free(s); /* jansson's allocator */
}

/* {"data":{"name","status","message"[,"code"]}}: the SDK's status answers. */
static void send_status(soj_client_t *cl, const char *name, const char *status, const char *message,
                        const char *code)
{
    json_t *d = json_pack("{s:s, s:s, s:s}", "name", name, "status", status, "message", message);
    if (d && code)
        json_object_set_new(d, "code", json_string(code));
    send_obj(cl, d ? json_pack("{s:o}", "data", d) : NULL);
}

/* {"data":{"type":"error","code","message","name"}}: a refused write or send. */
static void send_error(soj_client_t *cl, const char *name, const char *code, const char *message)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:s}", "type", "error", "name", name ? name : "", "code", code,
                          "message", message);
    send_obj(cl, d ? json_pack("{s:o}", "data", d) : NULL);
}

/* ---- the service's batches ---- */

static json_t *event_of(const sl_so_change_t *ch)
{
    switch (ch->kind) {
    case SL_SO_CHANGE:
        return json_pack("{s:i, s:s, s:O}", "subtype", 4, "attribute", ch->key ? ch->key : "", "value",
                         ch->value ? ch->value : json_null());
    case SL_SO_SUCCESS: /* the writer knows the value: only the key, as RTMP's success */
        return json_pack("{s:i, s:s}", "subtype", 5, "attribute", ch->key ? ch->key : "");
    case SL_SO_DELETE:
        return json_pack("{s:i, s:s}", "subtype", 9, "attribute", ch->key ? ch->key : "");
    case SL_SO_CLEAR:
        return json_pack("{s:i}", "subtype", 8);
    case SL_SO_SEND:
        return json_pack("{s:i, s:s, s:o}", "subtype", 6, "method", ch->key ? ch->key : "", "value",
                         ch->value ? json_incref(ch->value) : json_array());
    case SL_SO_STATUS:
        return json_pack("{s:i, s:s, s:O}", "subtype", 7, "code", ch->key ? ch->key : "", "level",
                         ch->value ? ch->value : json_null());
    default:
        return NULL;
    }
}

static void on_changes(void *ud, const char *name, uint32_t version, int persistent,
                       const sl_so_change_t *changes, size_t n)
{
    soj_client_t *cl = ud;
    json_t *events = json_array();
    if (!events)
        return;
    for (size_t i = 0; i < n; i++) {
        if (changes[i].kind == SL_SO_INITIAL) {
            /* The SDK's Connect.Success comes first, then the data as changes. */
            json_t *d = json_pack("{s:s, s:s, s:s, s:I, s:b}", "name", name, "status",
                                  "SharedObject.Status.Connect", "message", "Success", "version",
                                  (json_int_t)version, "persistent", persistent);
            send_obj(cl, d ? json_pack("{s:o}", "data", d) : NULL);
            continue;
        }
        json_t *e = event_of(&changes[i]);
        if (e)
            json_array_append_new(events, e);
    }
    if (!json_array_size(events)) {
        json_decref(events);
        return;
    }
    json_t *d = json_pack("{s:s, s:s, s:I, s:o}", "name", name, "type", "sharedobject", "version",
                          (json_int_t)version, "events", events);
    send_obj(cl, d ? json_pack("{s:o}", "data", d) : NULL);
}

static void on_closed(void *ud, const char *name)
{
    soj_client_t *cl = ud;
    if (cl->n_objects)
        cl->n_objects--;
    send_status(cl, name, "SharedObject.Status.Disconnect", "Closed", NULL);
}

static const sl_so_listener_t g_listener = {.on_changes = on_changes, .on_closed = on_closed};

/* ---- messages ---- */

static const sl_so_service_t *so_svc(sl_so_json_t *j, void **ud)
{
    return sl_service_get(j->core, SL_SO_SERVICE, SL_SO_SERVICE_MAJOR, 0, ud);
}

/* The object's name from {key:{name:...}}; NULL (answered) when it is not a usable one. */
static const char *name_of(soj_client_t *cl, json_t *body)
{
    json_t *n = json_is_object(body) ? json_object_get(body, "name") : NULL;
    const char *name = json_is_string(n) ? json_string_value(n) : NULL;
    if (!name || !name[0] || json_string_length(n) > SL_SO_NAME_MAX || strlen(name) != json_string_length(n)) {
        send_error(cl, name, "SharedObject.ObjectCreationFailed", "a shared object needs a name");
        return NULL;
    }
    return name;
}

static int queue_front(soj_client_t *cl, const char *text, size_t len);
static void so_admit_done(sl_admit_t *a, int result, const char *reason, void *ud);

static void do_connect(soj_client_t *cl, json_t *body, const char *name, const char *text, size_t len)
{
    void *sud;
    const sl_so_service_t *so = so_svc(cl->j, &sud);
    const char *scope = cl->j->ws->scope(cl->c);
    if (!so) {
        send_status(cl, name, "SharedObject.Status.Connect", "Fail", "SharedObject.ObjectCreationFailed");
        return;
    }
    if (so->find(sud, scope, name, cl)) {
        /* Already in: Red5 answers success again; the data is not resent. */
        send_status(cl, name, "SharedObject.Status.Connect", "Success", NULL);
        return;
    }
    if (cl->n_objects >= SOJ_MAX_OBJECTS) {
        send_status(cl, name, "SharedObject.Status.Connect", "Fail", "SharedObject.LimitExceeded");
        return;
    }
    if (!(cl->so_admitted && strcmp(cl->so_admitted, name) == 0)) {
        /* The object's own admission; this message runs again once it is allowed. */
        sl_admit_t *a = NULL;
        cl->so_admit_in_call = 1;
        cl->so_admit_result = 0;
        int arc = cl->j->ws->admit_kind(cl->c, SL_ADMIT_SO_CONNECT, name, so_admit_done, cl, &a);
        cl->so_admit_in_call = 0;
        if (arc == SL_EPENDING) {
            if (queue_front(cl, text, len)) {
                sl_admit_cancel(a);
                send_status(cl, name, "SharedObject.Status.Connect", "Fail", "SharedObject.ObjectCreationFailed");
                return;
            }
            cl->so_admit = a;
            cl->admit_pending = 1;
            return;
        }
        if (arc || cl->so_admit_result) {
            SL_LOGI(&g_jctx, "so-json %s: connect %s/%s refused by admission", cl->j->ws->remote(cl->c),
                    scope, name);
            send_status(cl, name, "SharedObject.Status.Connect", "Fail",
                        arc ? "SharedObject.ObjectCreationFailed" : "SharedObject.NoReadAccess");
            return;
        }
    }
    /* The SDK has no persistence flag: an existing object keeps its own;
     * a new one is persistent only when asked with "persistent": true. */
    sl_so_stats_t st;
    int persistent = json_is_true(json_object_get(body, "persistent"));
    if (so->get(sud, scope, name, NULL, &st) == 0)
        persistent = st.persistent;
    sl_session_t *s = cl->j->ws->session(cl->c);
    const sl_so_client_t who = {
        .session_id = s ? s->id : cl->j->ws->id(cl->c),
        .proto = cl->j->ws->is_datachannel(cl->c) ? "webrtc-dc" : "ws",
        .owner = cl,
        .listener = &g_listener,
        .listener_ud = cl,
    };
    sl_so_sub_t *sub = NULL;
    int rc = so->connect(sud, scope, name, persistent, &who, &sub);
    if (rc) {
        SL_LOGI(&g_jctx, "so-json %s: connect %s/%s refused: %s", cl->j->ws->remote(cl->c), scope, name,
                sl_strerror(rc));
        send_status(cl, name, "SharedObject.Status.Connect", "Fail", sl_so_status_code(rc));
        return;
    }
    cl->n_objects++; /* the listener already sent Connect.Success and the data */
}

static void do_apply(soj_client_t *cl, const char *name, const sl_so_change_t *ch)
{
    void *sud;
    const sl_so_service_t *so = so_svc(cl->j, &sud);
    sl_so_sub_t *sub = so ? so->find(sud, cl->j->ws->scope(cl->c), name, cl) : NULL;
    if (!sub) {
        send_error(cl, name, "SharedObject.NotConnected", "connect to the shared object first");
        return;
    }
    int rc = so->apply(sud, sub, NULL, NULL, ch, 1);
    if (rc)
        send_error(cl, name, sl_so_status_code(rc), sl_strerror(rc));
}

/* One message, admitted: parsed again (the text is all the service gives). */
static int handle(soj_client_t *cl, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(msg)) {
        json_decref(msg);
        return SL_EINVAL;
    }
    size_t k = 0;
    json_t *body = NULL;
    for (; k < SOJ_N_KEYS && !body; k++)
        body = json_object_get(msg, g_keys[k]);
    k--;
    const char *name = body ? name_of(cl, body) : NULL;
    if (!name) {
        json_decref(msg);
        return 0;
    }
    switch (k) {
    case 0: { /* sharedObjectGetRemote: the SDK then sends sharedObjectConnect */
        send_status(cl, name, "SharedObject.Status.GetRemote", "Success", NULL);
        break;
    }
    case 1:
        do_connect(cl, body, name, text, len);
        break;
    case 2: { /* sharedObjectSetProperty {name, key, value} */
        json_t *key = json_object_get(body, "key");
        if (!json_is_string(key) || !json_string_length(key) || json_string_length(key) > SL_SO_KEY_MAX) {
            send_error(cl, name, "SharedObject.BadValue", "setProperty needs a key");
            break;
        }
        json_t *v = json_object_get(body, "value");
        /* A missing value removes the key, as Red5 does for undefined. */
        sl_so_change_t ch = {.kind = v ? SL_SO_CHANGE : SL_SO_DELETE, .key = json_string_value(key), .value = v};
        do_apply(cl, name, &ch);
        break;
    }
    case 3: { /* sharedObjectSend {name, method, message} */
        json_t *m = json_object_get(body, "method");
        if (!json_is_string(m) || !json_string_length(m) || json_string_length(m) > SL_SO_KEY_MAX) {
            send_error(cl, name, "SharedObject.BadValue", "send needs a method");
            break;
        }
        json_t *arg = json_object_get(body, "message");
        json_t *args = json_array();
        if (!args || json_array_append(args, arg ? arg : json_null())) {
            json_decref(args);
            json_decref(msg);
            return SL_ENOMEM;
        }
        sl_so_change_t ch = {.kind = SL_SO_SEND, .key = json_string_value(m), .value = args};
        do_apply(cl, name, &ch);
        json_decref(args);
        break;
    }
    default: { /* sharedObjectClose */
        void *sud;
        const sl_so_service_t *so = so_svc(cl->j, &sud);
        sl_so_sub_t *sub = so ? so->find(sud, cl->j->ws->scope(cl->c), name, cl) : NULL;
        if (sub) {
            so->disconnect(sud, sub);
            if (cl->n_objects)
                cl->n_objects--;
        }
        send_status(cl, name, "SharedObject.Status.Disconnect", "Closed", NULL);
        break;
    }
    }
    json_decref(msg);
    return 0;
}

/* A refused socket's queued or new message: the SDK's Fail, or an error. */
static void refuse(soj_client_t *cl, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(text, len, 0, &jerr);
    json_t *b;
    const char *name = NULL;
    const char *status = NULL;
    if ((b = json_object_get(msg, "sharedObjectGetRemote")))
        status = "SharedObject.Status.GetRemote";
    else if ((b = json_object_get(msg, "sharedObjectConnect")))
        status = "SharedObject.Status.Connect";
    else
        b = json_object_iter_value(json_object_iter(msg));
    json_t *n = json_is_object(b) ? json_object_get(b, "name") : NULL;
    name = json_is_string(n) ? json_string_value(n) : "";
    if (status)
        send_status(cl, name, status, "Fail", "NetConnection.Connect.Rejected");
    else
        send_error(cl, name, "NetConnection.Connect.Rejected", "not admitted");
    json_decref(msg);
}

static void queue_free(soj_client_t *cl)
{
    while (cl->queue) {
        soj_msg_t *m = cl->queue;
        cl->queue = m->next;
        sl_free(m);
    }
    cl->queue_tail = NULL;
    cl->n_queued = 0;
}

/* Runs queued messages in order until one starts another admission. */
static void drain(soj_client_t *cl, int refused)
{
    while (cl->queue && !cl->admit_pending) {
        soj_msg_t *m = cl->queue;
        cl->queue = m->next;
        if (!cl->queue)
            cl->queue_tail = NULL;
        cl->n_queued--;
        if (refused)
            refuse(cl, m->text, m->len);
        else
            handle(cl, m->text, m->len);
        sl_free(m);
    }
}

static void admitted(sl_wsig_conn_t *c, int result, void *ud)
{
    (void)c;
    soj_client_t *cl = ud;
    cl->admit_pending = 0;
    drain(cl, result);
}

/* Holds text first in the queue (the connect whose admission runs). */
static int queue_front(soj_client_t *cl, const char *text, size_t len)
{
    soj_msg_t *m = sl_malloc(sizeof *m + len + 1);
    if (!m)
        return SL_ENOMEM;
    m->len = len;
    memcpy(m->text, text, len);
    m->text[len] = '\0';
    m->next = cl->queue;
    cl->queue = m;
    if (!cl->queue_tail)
        cl->queue_tail = m;
    cl->n_queued++;
    return 0;
}

/* An object's admission answered: its connect runs (or is refused), then the rest. */
static void so_admit_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    (void)reason;
    soj_client_t *cl = ud;
    if (a && cl->so_admit == a) {
        cl->so_admit = NULL;
        sl_admit_unref(a);
    }
    cl->so_admit_result = result;
    if (cl->so_admit_in_call)
        return;
    cl->admit_pending = 0;
    soj_msg_t *m = cl->queue; /* the connect, held first */
    if (!m)
        return;
    cl->queue = m->next;
    if (!cl->queue)
        cl->queue_tail = NULL;
    cl->n_queued--;
    json_t *msg = json_loadb(m->text, m->len, 0, NULL);
    json_t *n = json_object_get(json_object_get(msg, "sharedObjectConnect"), "name");
    char name[SL_SO_NAME_MAX + 1];
    snprintf(name, sizeof name, "%s", json_is_string(n) ? json_string_value(n) : "");
    json_decref(msg);
    if (result) {
        SL_LOGI(&g_jctx, "so-json %s: connect %s/%s refused by admission", cl->j->ws->remote(cl->c),
                cl->j->ws->scope(cl->c), name);
        send_status(cl, name, "SharedObject.Status.Connect", "Fail", "SharedObject.NoReadAccess");
    } else {
        cl->so_admitted = name;
        handle(cl, m->text, m->len);
        cl->so_admitted = NULL;
    }
    sl_free(m);
    drain(cl, 0);
}

static soj_client_t *client_get(sl_so_json_t *j, sl_wsig_conn_t *c, int create)
{
    char key[24];
    snprintf(key, sizeof key, "%p", (void *)c);
    soj_client_t *cl = sl_map_get(&j->clients, key);
    if (cl || !create)
        return cl;
    cl = sl_calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    cl->j = j;
    cl->c = c;
    snprintf(cl->key, sizeof cl->key, "%s", key);
    if (sl_map_set(&j->clients, cl->key, cl)) {
        sl_free(cl);
        return NULL;
    }
    return cl;
}

static int on_message(sl_wsig_conn_t *c, const char *json, size_t len, void *ud)
{
    sl_so_json_t *j = ud;
    if (j->stopping)
        return SL_ECLOSED;
    soj_client_t *cl = client_get(j, c, 1);
    if (!cl)
        return SL_ENOMEM;
    if (cl->admit_pending) {
        if (cl->n_queued >= SOJ_MAX_QUEUED)
            return SL_ETOOBIG;
        soj_msg_t *m = sl_malloc(sizeof *m + len + 1);
        if (!m)
            return SL_ENOMEM;
        m->next = NULL;
        m->len = len;
        memcpy(m->text, json, len);
        m->text[len] = '\0';
        if (cl->queue_tail)
            cl->queue_tail->next = m;
        else
            cl->queue = m;
        cl->queue_tail = m;
        cl->n_queued++;
        return 0;
    }
    int rc = j->ws->admit(c, admitted, cl);
    if (rc == SL_EPENDING) {
        cl->admit_pending = 1;
        return on_message(c, json, len, ud); /* queued */
    }
    if (rc == SL_EDENIED) {
        refuse(cl, json, len);
        return 0;
    }
    if (rc)
        return rc;
    return handle(cl, json, len);
}

static void client_free(sl_so_json_t *j, soj_client_t *cl)
{
    void *sud;
    const sl_so_service_t *so = so_svc(j, &sud);
    if (so)
        so->disconnect_owner(sud, cl);
    if (cl->so_admit)
        sl_admit_cancel(cl->so_admit); /* so_admit_done will not come */
    cl->so_admit = NULL;
    queue_free(cl);
    sl_map_del(&j->clients, cl->key);
    sl_free(cl);
}

static void on_close(sl_wsig_conn_t *c, void *ud)
{
    sl_so_json_t *j = ud;
    soj_client_t *cl = client_get(j, c, 0);
    if (cl)
        client_free(j, cl);
}

/* ---- finding the "webrtc-ws" service ---- */

static int try_register(sl_so_json_t *j)
{
    void *ud = NULL;
    const sl_wsig_svc_t *ws = sl_service_get(j->core, SL_WEBRTC_WS_SVC_NAME, SL_WEBRTC_WS_SVC_MAJOR, 2, &ud);
    if (!ws)
        return SL_ENOTFOUND;
    j->ws = ws;
    j->ws_ud = ud;
    for (size_t i = 0; i < SOJ_N_KEYS; i++) {
        const sl_wsig_handler_spec_t spec = {
            .key = g_keys[i], .on_message = on_message, .on_close = i == 0 ? on_close : NULL, .ud = j};
        int rc = ws->handler_add(ud, &spec);
        if (rc) {
            SL_LOGE(&g_jctx, "shared objects: cannot take the JSON message %s: %s", g_keys[i], sl_strerror(rc));
            for (size_t k = 0; k < i; k++)
                ws->handler_remove(ud, g_keys[k]);
            return rc;
        }
    }
    j->registered = 1;
    SL_LOGI(&g_jctx, "shared objects: JSON messages taken on the WebSocket and data channels");
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    sl_so_json_t *j = t->data;
    int rc = try_register(j);
    if (rc != SL_ENOTFOUND)
        uv_timer_stop(t); /* registered, or failed for good (logged) */
}

sl_so_json_t *sl_so_json_start(sl_core_t *core)
{
    sl_so_json_t *j = sl_calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->core = core;
    sl_map_init(&j->clients);
    uv_timer_init(core->loop, &j->timer);
    j->timer.data = j;
    uv_unref((uv_handle_t *)&j->timer); /* never what keeps the loop running */
    /* The WebRTC protocol starts after modules: look now, and until found
     * from a timer (its first run is in the loop's first turn, after every
     * start; a server without WebSocket signalling keeps a cheap timer). */
    if (try_register(j) == SL_ENOTFOUND)
        uv_timer_start(&j->timer, on_timer, 0, SOJ_RETRY_MS);
    return j;
}

static void timer_closed(uv_handle_t *h)
{
    sl_so_json_t *j = h->data;
    sl_map_cleanup(&j->clients);
    sl_free(j);
}

void sl_so_json_stop(sl_so_json_t *j)
{
    if (!j)
        return;
    j->stopping = 1;
    if (j->registered) {
        void *ud = NULL;
        const sl_wsig_svc_t *ws = sl_service_get(j->core, SL_WEBRTC_WS_SVC_NAME, SL_WEBRTC_WS_SVC_MAJOR, 2, &ud);
        if (ws == j->ws && ud == j->ws_ud) /* else it stopped first: its table is gone */
            for (size_t i = 0; i < SOJ_N_KEYS; i++)
                ws->handler_remove(ud, g_keys[i]);
        j->registered = 0;
    }
    size_t pos = 0;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&j->clients, &pos))) {
        client_free(j, e->val);
        pos = 0; /* the map changed under the iteration */
    }
    uv_timer_stop(&j->timer);
    uv_close((uv_handle_t *)&j->timer, timer_closed);
}
