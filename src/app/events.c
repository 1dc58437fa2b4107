/*
 * The event bus (see events.h). Listeners live in a small array kept
 * sorted by (priority, name). Delivery walks a snapshot count so that a
 * listener added during delivery is not called for the current event, and
 * removal marks a slot dead and compacts after the delivery. Events emitted
 * from inside a listener are deep-copied into a FIFO and delivered when the
 * outer delivery returns, so every listener sees events in one global order.
 */
#include "app/events.h"

#include <jansson.h>
#include <string.h>

#include "app/core.h"
#include "base/alloc.h"
#include "base/time.h"
#include "sluice/errors.h"

typedef struct listener {
    int id;
    int priority;
    char *name;
    sl_event_cb cb;
    void *ud;
    int dead;
} listener_t;

typedef struct queued {
    sl_event_t ev;
    char *strs[8];
    struct queued *next;
} queued_t;

struct sl_events {
    listener_t *ls;
    size_t n, cap;
    int next_id;
    int delivering;
    int dirty;
    uint64_t next_event_id;
    queued_t *head, *tail;
};

static const char *const names[SL_EV_COUNT] = {
    "connect", "disconnect", "publish", "unpublish", "play", "play_stop",
    "record_start", "record_done", "upload_done", "upload_failed", "so_update",
    "rpc", "stream_idle", "node_up", "node_down", "record_deleted", "app_start", "app_stop",
    "room_start", "room_stop", "pull_up", "pull_down", "push_up", "push_down",
};

const char *sl_event_name(sl_event_type_t type)
{
    return (unsigned)type < SL_EV_COUNT ? names[type] : "unknown";
}

int sl_event_parse(const char *name)
{
    for (int i = 0; i < SL_EV_COUNT; i++)
        if (name && strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

static struct sl_events *bus(sl_core_t *core)
{
    if (!core->events) {
        core->events = sl_calloc(1, sizeof(struct sl_events));
        if (core->events)
            core->events->next_event_id = 1;
    }
    return core->events;
}

const char *sl_event_phase_name(int phase)
{
    switch (phase) {
    case SL_EV_PHASE_STATE: return "state";
    case SL_EV_PHASE_QUEUE: return "queue";
    case SL_EV_PHASE_STREAM: return "stream";
    case SL_EV_PHASE_NOTIFY: return "notify";
    case SL_EV_PHASE_PLUGIN: return "plugin";
    default: return "?";
    }
}

void sl_events_each(sl_core_t *core, void (*each)(void *arg, const char *name, int phase),
                    void *arg)
{
    struct sl_events *b = core->events;
    for (size_t i = 0; b && i < b->n; i++)
        if (!b->ls[i].dead)
            each(arg, b->ls[i].name, b->ls[i].priority);
}

int sl_events_subscribe(sl_core_t *core, const char *name, sl_event_phase_t phase, sl_event_cb cb,
                        void *ud)
{
    int priority = (int)phase;
    struct sl_events *b = bus(core);
    if (!b)
        return SL_ENOMEM;
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 8;
        listener_t *nl = sl_realloc(b->ls, ncap * sizeof(*nl));
        if (!nl)
            return SL_ENOMEM;
        b->ls = nl;
        b->cap = ncap;
    }
    char *n = sl_strdup(name ? name : "");
    if (!n)
        return SL_ENOMEM;
    /* insertion keeps (priority, name) order; never during a delivery's snapshot range */
    size_t pos = b->n;
    if (!b->delivering) {
        pos = 0;
        while (pos < b->n && (b->ls[pos].priority < priority ||
                              (b->ls[pos].priority == priority && strcmp(b->ls[pos].name, n) <= 0)))
            pos++;
        memmove(&b->ls[pos + 1], &b->ls[pos], (b->n - pos) * sizeof(*b->ls));
    } else {
        b->dirty = 1; /* re-sorted after the delivery */
    }
    b->ls[pos] = (listener_t){.id = ++b->next_id, .priority = priority, .name = n, .cb = cb, .ud = ud};
    b->n++;
    return b->ls[pos].id;
}

static int cmp_listener(const void *a, const void *b)
{
    const listener_t *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void compact(struct sl_events *b)
{
    size_t w = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->ls[i].dead) {
            sl_free(b->ls[i].name);
            continue;
        }
        b->ls[w++] = b->ls[i];
    }
    b->n = w;
    qsort(b->ls, b->n, sizeof(*b->ls), cmp_listener);
    b->dirty = 0;
}

void sl_events_unsubscribe(sl_core_t *core, int id)
{
    struct sl_events *b = core->events;
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        if (b->ls[i].id == id && !b->ls[i].dead) {
            b->ls[i].dead = 1;
            b->dirty = 1;
        }
    }
    if (!b->delivering)
        compact(b);
}

static void deliver(struct sl_events *b, const sl_event_t *ev)
{
    size_t n = b->n;
    for (size_t i = 0; i < n && i < b->n; i++) {
        if (!b->ls[i].dead)
            b->ls[i].cb(ev, b->ls[i].ud);
    }
}

static void queued_free(queued_t *q)
{
    for (int i = 0; i < 8; i++)
        sl_free(q->strs[i]);
    sl_free(q);
}

void sl_events_emit(sl_core_t *core, sl_event_t *ev)
{
    struct sl_events *b = bus(core);
    if (!b)
        return;
    ev->id = b->next_event_id++;
    ev->time_ms = sl_time_wall_ms();
    if (b->delivering) {
        queued_t *q = sl_calloc(1, sizeof(*q));
        if (!q)
            return;
        q->ev = *ev;
        const char **fields[8] = {&q->ev.session_id, &q->ev.proto, &q->ev.remote_addr, &q->ev.app,
                                  &q->ev.stream, &q->ev.reason, &q->ev.query, &q->ev.path};
        for (int i = 0; i < 8; i++) {
            if (*fields[i]) {
                q->strs[i] = sl_strdup(*fields[i]);
                *fields[i] = q->strs[i];
            }
        }
        if (b->tail)
            b->tail->next = q;
        else
            b->head = q;
        b->tail = q;
        return;
    }
    b->delivering = 1;
    deliver(b, ev);
    while (b->head) {
        queued_t *q = b->head;
        b->head = q->next;
        if (!b->head)
            b->tail = NULL;
        deliver(b, &q->ev);
        queued_free(q);
    }
    b->delivering = 0;
    if (b->dirty)
        compact(b);
}

void sl_events_emit_session(sl_core_t *core, const sl_session_t *s, sl_event_type_t type,
                            const char *reason)
{
    sl_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.session_id = s->id;
    ev.proto = s->proto;
    ev.remote_addr = s->remote_addr;
    ev.remote_port = s->remote_port;
    ev.app = s->app;
    ev.stream = s->stream;
    ev.reason = reason;
    ev.query = s->query;
    ev.bytes_in = s->bytes_in;
    ev.bytes_out = s->bytes_out;
    uint64_t now = sl_time_wall_ms();
    ev.duration_ms = now > s->start_ms ? now - s->start_ms : 0;
    if ((type == SL_EV_UNPUBLISH || type == SL_EV_PLAY_STOP) && s->role_start_ms)
        ev.duration_ms = now > s->role_start_ms ? now - s->role_start_ms : 0;
    sl_events_emit(core, &ev);
}

char *sl_event_to_json(const sl_event_t *ev, const char *node)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "event", json_string(sl_event_name(ev->type)));
    json_object_set_new(o, "id", json_integer((json_int_t)ev->id));
    json_object_set_new(o, "time", json_integer((json_int_t)ev->time_ms));
    if (node)
        json_object_set_new(o, "node", json_string(node));
#define S(k, v) do { if (v) json_object_set_new(o, k, json_string(v)); } while (0)
    S("session", ev->session_id);
    S("protocol", ev->proto);
    S("remote_address", ev->remote_addr);
    if (ev->remote_port)
        json_object_set_new(o, "remote_port", json_integer(ev->remote_port));
    S("app", ev->app);
    S("stream", ev->stream);
    S("reason", ev->reason);
    S("query", ev->query);
    S("path", ev->path);
    S("method", ev->method);
    S("direction", ev->direction);
    S("status", ev->status);
#undef S
    json_object_set_new(o, "bytes_in", json_integer((json_int_t)ev->bytes_in));
    json_object_set_new(o, "bytes_out", json_integer((json_int_t)ev->bytes_out));
    json_object_set_new(o, "duration_ms", json_integer((json_int_t)ev->duration_ms));
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!txt)
        return NULL;
    char *out = sl_strdup(txt);
    free(txt);
    return out;
}

void sl_events_cleanup(sl_core_t *core)
{
    struct sl_events *b = core->events;
    if (!b)
        return;
    while (b->head) {
        queued_t *q = b->head;
        b->head = q->next;
        queued_free(q);
    }
    for (size_t i = 0; i < b->n; i++)
        sl_free(b->ls[i].name);
    sl_free(b->ls);
    sl_free(b);
    core->events = NULL;
}
