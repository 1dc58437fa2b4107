/*
 * RTMP Remote Shared Object messages (see rtmp_so.h for the byte layout):
 * a bounded parser, the builder, AMF <-> JSON values, and the adapter
 * between an RTMP connection and the service "sharedobjects". The adapter
 * holds no state of its own: the service keeps each subscription keyed by
 * the connection (its owner), and the listener's user data is the
 * connection itself, so a change becomes one SO message queued on the
 * command chunk stream, of the type (19 or 16) the client's object
 * encoding calls for.
 *
 * Joining an object is admitted first (kind SL_ADMIT_SO_CONNECT, Red5's
 * onSharedObjectAuthenticate): while that runs, the connect message and
 * any later message for the same object wait in the connection's
 * c->so_adms (at most SO_ADM_MAX objects, SO_ADM_QUEUE messages each), then
 * run in order once admitted; a refusal answers SharedObject.NoReadAccess
 * and drops them. Closing the connection cancels what is pending.
 */
#include "proto/rtmp/rtmp_so.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "app/admission.h"
#include "app/services.h"
#include "base/alloc.h"
#include "base/log.h"
#include "proto/rtmp/rtmp_conn.h"
#include "sluice/errors.h"

/* ------------------------------------------------------------------ */
/* parsing                                                            */

typedef struct rd {
    const uint8_t *p;
    size_t n, off;
} rd_t;

static int rd_u32(rd_t *r, uint32_t *v)
{
    if (r->n - r->off < 4)
        return SL_EPROTO;
    const uint8_t *b = r->p + r->off;
    *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    r->off += 4;
    return 0;
}

/* A u16-length UTF-8 string without NULs, at most max bytes, copied to an
 * owned C string (or into buf when buf is not NULL). */
static int rd_str(rd_t *r, size_t max, char **owned, char *buf)
{
    if (r->n - r->off < 2)
        return SL_EPROTO;
    size_t len = (size_t)r->p[r->off] << 8 | r->p[r->off + 1];
    r->off += 2;
    if (len > r->n - r->off)
        return SL_EPROTO;
    if (len > max)
        return SL_ETOOBIG;
    const char *s = (const char *)r->p + r->off;
    if (memchr(s, 0, len))
        return SL_EPROTO;
    if (buf) {
        memcpy(buf, s, len);
        buf[len] = 0;
    } else if (!(*owned = sl_strndup(s, len))) {
        return SL_ENOMEM;
    }
    r->off += len;
    return 0;
}

static int rd_value(rd_t *r, sl_amf_t **out)
{
    size_t used = 0;
    int rc = sl_amf0_decode(r->p + r->off, r->n - r->off, &used, SL_RTMP_SO_MAX_DEPTH, out);
    if (rc == 0)
        r->off += used;
    else if (rc == SL_EAGAIN)
        rc = SL_EPROTO; /* the event's length says the value is complete */
    return rc;
}

/* One event's body: r spans exactly that body. */
static int parse_event(rd_t *r, sl_rtmp_so_event_t *ev)
{
    int rc = 0;
    switch (ev->type) {
    case SL_RTMP_SO_CONNECT:
    case SL_RTMP_SO_DISCONNECT:
    case SL_RTMP_SO_CLEAR_DATA:
    case SL_RTMP_SO_INITIAL_DATA:
        return 0; /* a body, if any, is ignored as Red5 does */
    case SL_RTMP_SO_STATUS:
        if ((rc = rd_str(r, SL_SO_KEY_MAX, &ev->key, NULL)) != 0)
            return rc;
        return rd_str(r, SL_SO_KEY_MAX, &ev->level, NULL);
    case SL_RTMP_SO_UPDATE_DATA: {
        if (!(ev->value = sl_amf_new_ecma_array()))
            return SL_ENOMEM;
        for (size_t i = 0; r->off < r->n; i++) {
            char *key = NULL;
            sl_amf_t *v = NULL;
            if (i == SL_RTMP_SO_MAX_ARGS)
                return SL_ETOOBIG;
            if ((rc = rd_str(r, SL_SO_KEY_MAX, &key, NULL)) != 0)
                return rc;
            if ((rc = rd_value(r, &v)) == 0)
                rc = sl_amf_set(ev->value, key, v);
            sl_free(key);
            if (rc)
                return rc;
        }
        return 0;
    }
    case SL_RTMP_SO_SEND_MESSAGE: {
        sl_amf_t *h = NULL;
        if ((rc = rd_value(r, &h)) != 0)
            return rc;
        if (h->type != SL_AMF_STRING || h->u.str.len > SL_SO_KEY_MAX ||
            memchr(h->u.str.ptr, 0, h->u.str.len)) {
            sl_amf_free(h);
            return SL_EPROTO;
        }
        ev->key = h->u.str.ptr;
        h->u.str.ptr = NULL;
        sl_amf_free(h);
        if (!ev->key)
            return SL_ENOMEM;
        if (!(ev->value = sl_amf_new_strict_array()))
            return SL_ENOMEM;
        for (size_t i = 0; r->off < r->n; i++) {
            sl_amf_t *v = NULL;
            if (i == SL_RTMP_SO_MAX_ARGS)
                return SL_ETOOBIG;
            if ((rc = rd_value(r, &v)) != 0)
                return rc;
            if ((rc = sl_amf_push(ev->value, v)) != 0)
                return rc;
        }
        return 0;
    }
    default: /* 3, 5, 9, 10: a key, and for a set a value */
        if (r->n == 0)
            return 0;
        if ((rc = rd_str(r, SL_SO_KEY_MAX, &ev->key, NULL)) != 0)
            return rc;
        if (r->off < r->n)
            return rd_value(r, &ev->value);
        return 0;
    }
}

int sl_rtmp_so_parse(const uint8_t *p, size_t n, int flex, sl_rtmp_so_msg_t *out)
{
    memset(out, 0, sizeof *out);
    rd_t r = {p, n, 0};
    uint32_t flags, reserved;
    int rc;
    if (flex) {
        if (n < 1 || p[0] != 0)
            return SL_EPROTO;
        r.off = 1;
    }
    if ((rc = rd_str(&r, SL_SO_NAME_MAX, NULL, out->name)) != 0 ||
        (rc = rd_u32(&r, &out->version)) != 0 || (rc = rd_u32(&r, &flags)) != 0 ||
        (rc = rd_u32(&r, &reserved)) != 0)
        return rc;
    out->persistent = flags == 2;
    size_t cap = 0;
    while (r.off < r.n) {
        uint32_t len;
        if (r.n - r.off < 5)
            return SL_EPROTO;
        uint8_t type = r.p[r.off++];
        if ((rc = rd_u32(&r, &len)) != 0)
            return rc;
        if (type < SL_RTMP_SO_CONNECT || type > SL_RTMP_SO_INITIAL_DATA || len > r.n - r.off)
            return SL_EPROTO;
        if (out->n_events == SL_RTMP_SO_MAX_EVENTS)
            return SL_ETOOBIG;
        if (out->n_events == cap) {
            size_t nc = cap ? cap * 2 : 4;
            sl_rtmp_so_event_t *ne = sl_realloc(out->events, nc * sizeof *ne);
            if (!ne)
                return SL_ENOMEM;
            out->events = ne;
            cap = nc;
        }
        sl_rtmp_so_event_t *ev = &out->events[out->n_events++];
        memset(ev, 0, sizeof *ev);
        ev->type = type;
        rd_t body = {r.p + r.off, len, 0};
        if ((rc = parse_event(&body, ev)) != 0)
            return rc;
        r.off += len;
    }
    return 0;
}

void sl_rtmp_so_msg_cleanup(sl_rtmp_so_msg_t *m)
{
    for (size_t i = 0; i < m->n_events; i++) {
        sl_free(m->events[i].key);
        sl_free(m->events[i].level);
        sl_amf_free(m->events[i].value);
    }
    sl_free(m->events);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ */
/* values                                                             */

int sl_rtmp_so_to_json(const sl_amf_t *v, json_t **out)
{
    json_t *j = NULL;
    *out = NULL;
    switch (v->type) {
    case SL_AMF_NUMBER:
    case SL_AMF_DATE:
        if (isfinite(v->u.num) && v->u.num == floor(v->u.num) && fabs(v->u.num) <= 9007199254740992.0)
            j = json_integer((json_int_t)v->u.num);
        else
            j = json_real(isfinite(v->u.num) ? v->u.num : 0);
        break;
    case SL_AMF_BOOLEAN:
        j = json_boolean(v->u.boolean);
        break;
    case SL_AMF_STRING:
    case SL_AMF_XML:
        j = json_stringn(v->u.str.ptr ? v->u.str.ptr : "", v->u.str.len);
        if (!j)
            return SL_EINVAL; /* not UTF-8 (or ENOMEM: same answer to the client) */
        break;
    case SL_AMF_NULL:
    case SL_AMF_UNDEFINED:
        j = json_null();
        break;
    case SL_AMF_OBJECT:
    case SL_AMF_ECMA_ARRAY:
        j = json_object();
        for (uint32_t i = 0; j && i < v->u.obj.n; i++) {
            json_t *c;
            int rc = sl_rtmp_so_to_json(v->u.obj.props[i].val, &c);
            if (rc || json_object_set_new(j, v->u.obj.props[i].key, c)) {
                json_decref(j);
                return rc ? rc : SL_EINVAL;
            }
        }
        break;
    case SL_AMF_STRICT_ARRAY:
        j = json_array();
        for (uint32_t i = 0; j && i < v->u.arr.n; i++) {
            json_t *c;
            int rc = sl_rtmp_so_to_json(v->u.arr.items[i], &c);
            if (rc || json_array_append_new(j, c)) {
                json_decref(j);
                return rc ? rc : SL_ENOMEM;
            }
        }
        break;
    default:
        return SL_EINVAL; /* ByteArray: no JSON form */
    }
    if (!j)
        return SL_ENOMEM;
    *out = j;
    return 0;
}

sl_amf_t *sl_rtmp_so_from_json(const json_t *v)
{
    sl_amf_t *a = NULL;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *c;
        if (!(a = sl_amf_new_object()))
            return NULL;
        json_object_foreach((json_t *)v, k, c) {
            sl_amf_t *x = sl_rtmp_so_from_json(c);
            if (!x || sl_amf_set(a, k, x)) {
                sl_amf_free(x);
                sl_amf_free(a);
                return NULL;
            }
        }
        return a;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *c;
        if (!(a = sl_amf_new_strict_array()))
            return NULL;
        json_array_foreach(v, i, c) {
            sl_amf_t *x = sl_rtmp_so_from_json(c);
            if (!x || sl_amf_push(a, x)) {
                sl_amf_free(x);
                sl_amf_free(a);
                return NULL;
            }
        }
        return a;
    }
    case JSON_STRING:
        return sl_amf_new_stringn(json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return sl_amf_new_number((double)json_integer_value(v));
    case JSON_REAL:
        return sl_amf_new_number(json_real_value(v));
    case JSON_TRUE:
        return sl_amf_new_bool(1);
    case JSON_FALSE:
        return sl_amf_new_bool(0);
    default:
        return sl_amf_new_null();
    }
}

/* ------------------------------------------------------------------ */
/* building                                                           */

static int put_str(sl_wbuf_t *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > 0xFFFF)
        return SL_EINVAL;
    int rc = sl_wbuf_put_be16(w, (uint16_t)n);
    return rc ? rc : sl_wbuf_put(w, s, n);
}

static int put_value(sl_wbuf_t *w, const json_t *v)
{
    sl_amf_t *a = v ? sl_rtmp_so_from_json(v) : sl_amf_new_null();
    if (!a)
        return SL_ENOMEM;
    int rc = sl_amf0_encode(w, a);
    sl_amf_free(a);
    return rc;
}

static int put_event(sl_wbuf_t *w, const sl_so_change_t *c)
{
    static const uint8_t types[] = {
        [SL_SO_INITIAL] = SL_RTMP_SO_INITIAL_DATA, [SL_SO_CHANGE] = SL_RTMP_SO_UPDATE_DATA,
        [SL_SO_SUCCESS] = SL_RTMP_SO_UPDATE_ATTRIBUTE, [SL_SO_DELETE] = SL_RTMP_SO_DELETE_DATA,
        [SL_SO_CLEAR] = SL_RTMP_SO_CLEAR_DATA, [SL_SO_SEND] = SL_RTMP_SO_SEND_MESSAGE,
        [SL_SO_STATUS] = SL_RTMP_SO_STATUS,
    };
    if ((unsigned)c->kind >= sizeof types)
        return SL_EINVAL;
    int rc = sl_wbuf_put_u8(w, types[c->kind]);
    if (rc || (rc = sl_wbuf_put_be32(w, 0)) != 0)
        return rc;
    size_t mark = w->len;
    switch (c->kind) {
    case SL_SO_INITIAL:
    case SL_SO_CLEAR:
        break;
    case SL_SO_CHANGE:
        if ((rc = put_str(w, c->key)) == 0)
            rc = put_value(w, c->value);
        break;
    case SL_SO_SUCCESS:
    case SL_SO_DELETE:
        rc = put_str(w, c->key);
        break;
    case SL_SO_SEND:
        if ((rc = sl_amf0_put_string(w, c->key ? c->key : "")) != 0)
            break;
        for (size_t i = 0; c->value && i < json_array_size(c->value) && !rc; i++)
            rc = put_value(w, json_array_get(c->value, i));
        break;
    case SL_SO_STATUS:
        if ((rc = put_str(w, c->key)) == 0)
            rc = put_str(w, c->value && json_is_string(c->value) ? json_string_value(c->value)
                                                                 : "error");
        break;
    }
    if (rc)
        return rc;
    size_t len = w->len - mark;
    uint8_t *b = w->data + mark - 4;
    b[0] = (uint8_t)(len >> 24);
    b[1] = (uint8_t)(len >> 16);
    b[2] = (uint8_t)(len >> 8);
    b[3] = (uint8_t)len;
    return 0;
}

int sl_rtmp_so_build(sl_wbuf_t *w, int flex, const char *name, uint32_t version, int persistent,
                     const sl_so_change_t *changes, size_t n)
{
    int rc = flex ? sl_wbuf_put_u8(w, 0) : 0;
    if (rc || (rc = put_str(w, name)) != 0 || (rc = sl_wbuf_put_be32(w, version)) != 0 ||
        (rc = sl_wbuf_put_be32(w, persistent ? 2 : 0)) != 0 || (rc = sl_wbuf_put_be32(w, 0)) != 0)
        return rc;
    for (size_t i = 0; i < n && !rc; i++)
        rc = put_event(w, &changes[i]);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the connection's side                                              */

/* The largest SO message we queue for one client (a batch of a whole object
 * is bounded by so_max_object_bytes; this is the transport's own cap). */
#define SO_OUT_MAX (16u << 20)

static int send_so(sl_rtmp_conn_t *c, const char *name, uint32_t version, int persistent,
                   const sl_so_change_t *ch, size_t n)
{
    sl_wbuf_t w;
    int flex = c->object_encoding == 3;
    sl_wbuf_init(&w, SO_OUT_MAX);
    int rc = sl_rtmp_so_build(&w, flex, name, version, persistent, ch, n);
    if (rc == 0)
        rc = sl__rtmp_send(c, SL_RTMP_CSID_COMMAND, flex ? SL_RTMP_SO_AMF3 : SL_RTMP_SO_AMF0, 0, 0,
                           w.data, w.len);
    sl_wbuf_cleanup(&w);
    return rc;
}

static int send_status(sl_rtmp_conn_t *c, const char *name, int persistent, int err)
{
    json_t *level = json_string("error");
    sl_so_change_t st = {SL_SO_STATUS, sl_so_status_code(err), level};
    SL_LOGI(&c->sess.log, "shared object %s: %s (%s)", name, st.key, sl_strerror(err));
    int rc = send_so(c, name, 0, persistent, &st, 1);
    json_decref(level);
    return rc;
}

static void on_changes(void *ud, const char *name, uint32_t version, int persistent,
                       const sl_so_change_t *ch, size_t n)
{
    sl_rtmp_conn_t *c = ud;
    if (c->state == SL_RTMP_CONN_CLOSING)
        return;
    int rc = send_so(c, name, version, persistent, ch, n);
    if (rc) {
        /* A client that misses an update holds a wrong copy of the object
         * for good: it goes, like a player too slow for its stream. Closing
         * here is safe: the service only marks subscribers that leave
         * during a delivery. */
        SL_LOGI(&c->sess.log, "shared object %s: cannot queue version %u: %s", name, version,
                sl_strerror(rc));
        sl__rtmp_close(c, "shared object updates could not be queued");
    }
}

static void on_closed(void *ud, const char *name)
{
    (void)ud;
    (void)name;
}

static const sl_so_listener_t g_listener = {on_changes, on_closed};

/* The service's updates of one message: sets, deletes and sends in order. */
static int collect(const sl_rtmp_so_msg_t *m, sl_so_change_t *out, size_t *n_out)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_events; i++) {
        const sl_rtmp_so_event_t *ev = &m->events[i];
        json_t *v = NULL;
        int rc = 0;
        switch (ev->type) {
        case SL_RTMP_SO_SET_ATTRIBUTE:
            if (!ev->key)
                return SL_EINVAL;
            if (ev->value && ev->value->type != SL_AMF_NULL && ev->value->type != SL_AMF_UNDEFINED &&
                (rc = sl_rtmp_so_to_json(ev->value, &v)) != 0)
                return rc;
            out[n++] = (sl_so_change_t){SL_SO_CHANGE, ev->key, v}; /* NULL value: a delete */
            break;
        case SL_RTMP_SO_DELETE_ATTRIBUTE:
            if (!ev->key)
                return SL_EINVAL;
            out[n++] = (sl_so_change_t){SL_SO_DELETE, ev->key, NULL};
            break;
        case SL_RTMP_SO_SEND_MESSAGE:
            if ((rc = sl_rtmp_so_to_json(ev->value, &v)) != 0)
                return rc;
            out[n++] = (sl_so_change_t){SL_SO_SEND, ev->key, v};
            break;
        default:
            break;
        }
        *n_out = n;
    }
    *n_out = n;
    return 0;
}

/* ---- admission of a connect ---- */

#define SO_ADM_MAX 8     /* objects one connection may be waiting to join */
#define SO_ADM_QUEUE 16  /* messages held per object while its admission runs */

typedef struct so_qmsg {
    struct so_qmsg *next;
    size_t n;
    int flex;
    uint8_t b[];                 /* the message body as received */
} so_qmsg_t;

struct sl_rtmp_so_adm {
    struct sl_rtmp_so_adm *next; /* in c->so_adms */
    sl_rtmp_conn_t *c;
    sl_admit_t *a;               /* pending admission (our reference), or NULL */
    char name[SL_SO_NAME_MAX + 1];
    int persistent;
    int in_call;                 /* inside sl__rtmp_admit_so: the answer waits for its return */
    int finished, result;
    so_qmsg_t *q, *q_tail;
    size_t n_q;
};
typedef struct sl_rtmp_so_adm so_adm_t;

static int on_so(sl_rtmp_conn_t *c, const uint8_t *p, size_t n, int flex, const char *admitted);

static so_adm_t *adm_find(sl_rtmp_conn_t *c, const char *name)
{
    for (so_adm_t *x = c->so_adms; x; x = x->next)
        if (strcmp(x->name, name) == 0)
            return x;
    return NULL;
}

static int adm_queue(so_adm_t *x, const uint8_t *p, size_t n, int flex)
{
    if (x->n_q >= SO_ADM_QUEUE)
        return SL_ETOOBIG;
    so_qmsg_t *m = sl_malloc(sizeof *m + n);
    if (!m)
        return SL_ENOMEM;
    m->next = NULL;
    m->n = n;
    m->flex = flex;
    memcpy(m->b, p, n);
    if (x->q_tail)
        x->q_tail->next = m;
    else
        x->q = m;
    x->q_tail = m;
    x->n_q++;
    return 0;
}

/* Unlinks x from its connection and frees it (its admission must be over or cancelled). */
static void adm_free(so_adm_t *x)
{
    so_adm_t **pp = &x->c->so_adms;
    while (*pp && *pp != x)
        pp = &(*pp)->next;
    if (*pp)
        *pp = x->next;
    while (x->q) {
        so_qmsg_t *m = x->q;
        x->q = m->next;
        sl_free(m);
    }
    sl_free(x);
}

static int send_status_code(sl_rtmp_conn_t *c, const char *name, int persistent, const char *code)
{
    json_t *level = json_string("error");
    sl_so_change_t st = {SL_SO_STATUS, code, level};
    int rc = send_so(c, name, 0, persistent, &st, 1);
    json_decref(level);
    return rc;
}

/* The admission's answer is known: run (admitted) or refuse the held messages. */
static void adm_finish(so_adm_t *x)
{
    sl_rtmp_conn_t *c = x->c;
    so_qmsg_t *q = x->q;
    x->q = x->q_tail = NULL;
    int result = x->result;
    char name[SL_SO_NAME_MAX + 1];
    memcpy(name, x->name, sizeof name);
    int persistent = x->persistent;
    adm_free(x); /* before the replay: a later connect of the name starts afresh */
    int rc = 0;
    if (result) {
        SL_LOGI(&c->sess.log, "shared object %s: connect refused by admission", name);
        rc = send_status_code(c, name, persistent, "SharedObject.NoReadAccess");
    }
    int first = 1;
    while (q) {
        so_qmsg_t *m = q;
        q = m->next;
        if (!result && !rc && c->state != SL_RTMP_CONN_CLOSING) {
            rc = on_so(c, m->b, m->n, m->flex, first ? name : NULL);
            first = 0;
        }
        sl_free(m);
    }
    if (rc < 0 && c->state != SL_RTMP_CONN_CLOSING)
        sl__rtmp_close(c, "shared object answers could not be queued");
}

static void adm_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    (void)reason;
    so_adm_t *x = ud;
    if (a && x->a == a) {
        x->a = NULL;
        sl_admit_unref(a);
    }
    x->finished = 1;
    x->result = result;
    if (!x->in_call)
        adm_finish(x);
}

/*
 * A message that joins name while the connection is not in it: holds it
 * and starts (or joins) the admission. 0, or <0 to close.
 */
static int adm_start(sl_rtmp_conn_t *c, const char *name, int persistent, const uint8_t *p, size_t n,
                     int flex)
{
    size_t count = 0;
    for (so_adm_t *y = c->so_adms; y; y = y->next)
        count++;
    if (count >= SO_ADM_MAX)
        return send_status(c, name, persistent, SL_ETOOBIG);
    so_adm_t *x = sl_calloc(1, sizeof *x);
    if (!x)
        return SL_ENOMEM;
    x->c = c;
    snprintf(x->name, sizeof x->name, "%s", name);
    x->persistent = persistent;
    if (adm_queue(x, p, n, flex)) {
        sl_free(x);
        return SL_ENOMEM;
    }
    x->next = c->so_adms;
    c->so_adms = x;
    x->in_call = 1;
    sl_admit_t *a = NULL;
    int rc = sl__rtmp_admit_so(c, name, adm_done, x, &a);
    x->in_call = 0;
    if (rc == SL_EPENDING) {
        x->a = a;
        return 0;
    }
    if (rc) { /* ENOMEM: done was not called */
        adm_free(x);
        return send_status(c, name, persistent, rc);
    }
    adm_finish(x); /* answered inside the call */
    return 0;
}

int sl__rtmp_on_so(sl_rtmp_conn_t *c, const uint8_t *p, size_t n, int flex)
{
    return on_so(c, p, n, flex, NULL);
}

/* admitted: the name whose connect was just admitted (the replay), else NULL. */
static int on_so(sl_rtmp_conn_t *c, const uint8_t *p, size_t n, int flex, const char *admitted)
{
    if (c->state != SL_RTMP_CONN_CONNECTED || !c->sess.app)
        return 0;
    sl_rtmp_so_msg_t m;
    int rc = sl_rtmp_so_parse(p, n, flex, &m);
    if (rc) {
        SL_LOGI(&c->sess.log, "bad shared object message (%u bytes): %s", (unsigned)n,
                sl_strerror(rc));
        rc = m.name[0] ? send_status(c, m.name, m.persistent, SL_EINVAL) : 0;
        sl_rtmp_so_msg_cleanup(&m);
        return rc;
    }
    void *ud;
    const sl_so_service_t *so = sl_service_get(c->core, SL_SO_SERVICE, SL_SO_SERVICE_MAJOR, 0, &ud);
    if (!so) {
        SL_LOGD(&c->sess.log, "shared object %s: no shared objects service", m.name);
        sl_rtmp_so_msg_cleanup(&m);
        return 0;
    }
    const char *scope = c->sess.app;
    /* Held while this object's admission runs, in order. */
    so_adm_t *held = adm_find(c, m.name);
    if (held) {
        rc = adm_queue(held, p, n, flex);
        if (rc == SL_ETOOBIG)
            rc = send_status(c, m.name, m.persistent, SL_ETOOBIG);
        sl_rtmp_so_msg_cleanup(&m);
        return rc == SL_ENOMEM ? 0 : rc;
    }
    int joining = 0;
    for (size_t i = 0; i < m.n_events; i++)
        joining |= m.events[i].type == SL_RTMP_SO_CONNECT;
    if (joining && !(admitted && strcmp(admitted, m.name) == 0) && !so->find(ud, scope, m.name, c)) {
        rc = adm_start(c, m.name, m.persistent, p, n, flex);
        sl_rtmp_so_msg_cleanup(&m);
        return rc;
    }
    sl_so_change_t *ch = sl_calloc(m.n_events ? m.n_events : 1, sizeof *ch);
    size_t n_ch = 0;
    if (!ch) {
        sl_rtmp_so_msg_cleanup(&m);
        return SL_ENOMEM;
    }
    /* Connect first, the updates of the message as one, disconnect last. */
    int want_connect = 0, want_disconnect = 0, answer = 0;
    for (size_t i = 0; i < m.n_events; i++) {
        want_connect |= m.events[i].type == SL_RTMP_SO_CONNECT;
        want_disconnect |= m.events[i].type == SL_RTMP_SO_DISCONNECT;
    }
    sl_so_sub_t *sub = so->find(ud, scope, m.name, c);
    if (want_connect && !sub) {
        sl_so_client_t cl = {.session_id = c->sess.id, .proto = c->sess.proto, .owner = c,
                             .listener = &g_listener, .listener_ud = c};
        answer = so->connect(ud, scope, m.name, m.persistent, &cl, &sub);
    }
    if (!answer) {
        answer = collect(&m, ch, &n_ch);
        if (!answer && n_ch)
            answer = sub ? so->apply(ud, sub, NULL, NULL, ch, n_ch) : SL_EDENIED;
    }
    for (size_t i = 0; i < n_ch; i++)
        json_decref(ch[i].value);
    sl_free(ch);
    rc = 0;
    if (answer && answer != SL_ENOMEM)
        rc = send_status(c, m.name, m.persistent, answer);
    if (want_disconnect && sub)
        so->disconnect(ud, sub);
    sl_rtmp_so_msg_cleanup(&m);
    return rc;
}

void sl__rtmp_so_closed(sl_rtmp_conn_t *c)
{
    while (c->so_adms) {
        so_adm_t *x = c->so_adms;
        if (x->a)
            sl_admit_cancel(x->a); /* adm_done will not come */
        x->a = NULL;
        adm_free(x);
    }
    void *ud;
    const sl_so_service_t *so = sl_service_get(c->core, SL_SO_SERVICE, SL_SO_SERVICE_MAJOR, 0, &ud);
    if (so)
        so->disconnect_owner(ud, c);
}
