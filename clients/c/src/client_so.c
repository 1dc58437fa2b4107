/*
 * libsluice-client: Remote Shared Objects (RTMP message types 19 and 16)
 * and methods the server calls on the client (see include/sluice/client.h).
 *
 * The shared-object bytes are written here from Red5's layout (the server's
 * src/proto/rtmp/rtmp_so.c is tied to the server's services, so the client
 * keeps its own small codec over the shared AMF0 code):
 *
 *     [16 only: u8 encoding, 0 = AMF0]
 *     u16 name length, name; u32 version; u32 flags (2 = persistent); u32 0
 *     events until the end: u8 type, u32 length, body
 *
 * We send 1 connect, 2 disconnect, 3 set (u16 key, AMF0 value), 10 delete
 * attribute (u16 key) and 6 send (AMF0 handler string, AMF0 arguments); we
 * read 11 initial data, 4 update data (key/value pairs), 5 update
 * attribute (our write applied), 9 delete data, 8 clear, 6 send and 7
 * status (u16 code, u16 level). Every length is checked against what is
 * left of the message, keys are capped at SL__SO_RX_KEY_MAX, events per
 * message at SL__SO_MAX_EVENTS and AMF nesting at SL__SO_MAX_DEPTH; the
 * message itself is bounded by opts.max_message_size.
 *
 * Rejects: sluice (like Red5) refuses a write with a status event for the
 * whole message, naming no key. Each set goes out as its own message, so
 * a status error while sets are waiting is the refusal of the oldest one:
 * it is reported as REJECT of that key, then as STATUS.
 */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "client_internal.h"
#include "sluice/errors.h"

#define SO_MSG_CAP (1024u * 1024u) /* largest message we build */

enum {
    EV_CONNECT = 1, EV_DISCONNECT = 2, EV_SET = 3, EV_UPDATE_DATA = 4, EV_UPDATE_ATTR = 5,
    EV_SEND = 6, EV_STATUS = 7, EV_CLEAR = 8, EV_DELETE_DATA = 9, EV_DELETE_ATTR = 10,
    EV_INITIAL = 11,
};

/* ------------------------------------------------------------------ */
/* building                                                            */

static int put_key(sl_wbuf_t *w, const char *key)
{
    size_t n = strlen(key);
    int rc = sl_wbuf_put_be16(w, (uint16_t)n);
    return rc ? rc : sl_wbuf_put(w, key, n);
}

/* Header of a type 19 message for so. */
static int put_header(sl_wbuf_t *w, const sl_client_so_t *so)
{
    int rc = put_key(w, so->name);
    rc = rc ? rc : sl_wbuf_put_be32(w, so->version);
    rc = rc ? rc : sl_wbuf_put_be32(w, so->persistent ? 2 : 0);
    return rc ? rc : sl_wbuf_put_be32(w, 0);
}

/* Starts an event: type and a length placeholder; returns its offset. */
static int event_start(sl_wbuf_t *w, uint8_t type, size_t *at)
{
    int rc = sl_wbuf_put_u8(w, type);
    *at = w->len;
    return rc ? rc : sl_wbuf_put_be32(w, 0);
}

static void event_end(sl_wbuf_t *w, size_t at)
{
    sl_wr_be32(w->data + at, (uint32_t)(w->len - at - 4));
}

/* Sends the built message and flushes. */
static int send_so(sl_client_t *c, sl_wbuf_t *w, int rc)
{
    if (!rc)
        rc = sl__client_send0(c, SL_RTMP_SO_AMF0, w->data, w->len);
    sl_wbuf_cleanup(w);
    if (!rc)
        sl__client_flush(c);
    return rc;
}

/* One event without body (connect, disconnect). */
static int send_simple_event(sl_client_so_t *so, uint8_t type)
{
    sl_wbuf_t w;
    sl_wbuf_init(&w, SO_MSG_CAP);
    size_t at;
    int rc = put_header(&w, so);
    rc = rc ? rc : event_start(&w, type, &at);
    if (!rc)
        event_end(&w, at);
    return send_so(so->c, &w, rc);
}

static int connected(const sl_client_t *c)
{
    return c->conn && !c->freeing &&
           (c->state == SL_CLIENT_CONNECTED || c->state == SL_CLIENT_ACTIVE);
}

static int valid_name(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    return n >= 1 && n <= max;
}

/* ------------------------------------------------------------------ */
/* objects                                                             */

static void so_free(sl_client_so_t *so)
{
    for (size_t i = 0; i < so->n_pending; i++)
        sl_free(so->pending[i]);
    sl_free(so->pending);
    sl_free(so->name);
    sl_free(so);
}

static void forget_pending(sl_client_so_t *so)
{
    for (size_t i = 0; i < so->n_pending; i++)
        sl_free(so->pending[i]);
    so->n_pending = 0;
}

/* Removes so from its client's list (it stays allocated). */
static void so_unlink(sl_client_so_t *so)
{
    sl_client_t *c = so->c;
    for (sl_client_so_t **pp = &c->sos; *pp; pp = &(*pp)->next) {
        if (*pp == so) {
            *pp = so->next;
            c->n_sos--;
            return;
        }
    }
}

/*
 * Joins an object (client.h). The handle is owned by the client; the join
 * is sent now when connected, else at CONNECTED.
 */
int sl_client_so_join(sl_client_t *c, const char *name, int persistent, sl_client_so_cb cb,
                      void *ud, sl_client_so_t **out)
{
    *out = NULL;
    if (!valid_name(name, SL__SO_NAME_MAX) || c->freeing || c->mode == SL__MODE_NONE ||
        c->state == SL_CLIENT_CLOSED)
        return SL_EINVAL;
    for (sl_client_so_t *s = c->sos; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return SL_EBUSY;
    if (c->n_sos >= SL__CLIENT_MAX_SOS)
        return SL_ETOOBIG;
    sl_client_so_t *so = sl_calloc(1, sizeof(*so));
    if (!so)
        return SL_ENOMEM;
    so->name = sl_strdup(name);
    if (!so->name) {
        sl_free(so);
        return SL_ENOMEM;
    }
    so->c = c;
    so->persistent = persistent ? 1 : 0;
    so->cb = cb;
    so->ud = ud;
    so->next = c->sos;
    c->sos = so;
    c->n_sos++;
    if (connected(c)) {
        int rc = send_simple_event(so, EV_CONNECT);
        if (rc) {
            so_unlink(so);
            so_free(so);
            return rc;
        }
    }
    *out = so;
    return 0;
}

/* Remembers key as a set waiting for its answer (the oldest goes when full). */
static int add_pending(sl_client_so_t *so, const char *key)
{
    if (!so->pending) {
        so->pending = sl_calloc(SL__SO_MAX_PENDING, sizeof(char *));
        if (!so->pending)
            return SL_ENOMEM;
    }
    char *k = sl_strdup(key);
    if (!k)
        return SL_ENOMEM;
    if (so->n_pending == SL__SO_MAX_PENDING) {
        sl_free(so->pending[0]);
        memmove(so->pending, so->pending + 1, (so->n_pending - 1) * sizeof(char *));
        so->n_pending--;
    }
    so->pending[so->n_pending++] = k;
    return 0;
}

/* Drops pending entry i. */
static void drop_pending(sl_client_so_t *so, size_t i)
{
    sl_free(so->pending[i]);
    memmove(so->pending + i, so->pending + i + 1, (so->n_pending - i - 1) * sizeof(char *));
    so->n_pending--;
}

/*
 * Sets key to a JSON value (client.h): one set event in its own message.
 * Returns 0, SL_EINVAL, SL_ENOMEM or a send error.
 */
int sl_client_so_set(sl_client_so_t *so, const char *key, const char *json)
{
    if (!so || so->dead || !valid_name(key, SL__SO_KEY_MAX) || !json || !connected(so->c))
        return SL_EINVAL;
    sl_wbuf_t w;
    sl_wbuf_init(&w, SO_MSG_CAP);
    size_t at;
    int rc = put_header(&w, so);
    rc = rc ? rc : event_start(&w, EV_SET, &at);
    rc = rc ? rc : put_key(&w, key);
    if (!rc) {
        rc = sl__json_value_to_amf0(json, &w);
        if (rc == SL_EINVAL) {
            sl_wbuf_cleanup(&w);
            return rc;
        }
    }
    if (!rc)
        event_end(&w, at);
    rc = rc ? rc : add_pending(so, key);
    return send_so(so->c, &w, rc);
}

/* Deletes key (client.h). */
int sl_client_so_delete(sl_client_so_t *so, const char *key)
{
    if (!so || so->dead || !valid_name(key, SL__SO_KEY_MAX) || !connected(so->c))
        return SL_EINVAL;
    sl_wbuf_t w;
    sl_wbuf_init(&w, SO_MSG_CAP);
    size_t at;
    int rc = put_header(&w, so);
    rc = rc ? rc : event_start(&w, EV_DELETE_ATTR, &at);
    rc = rc ? rc : put_key(&w, key);
    if (!rc)
        event_end(&w, at);
    return send_so(so->c, &w, rc);
}

/* Sends a message to every member (client.h). */
int sl_client_so_send(sl_client_so_t *so, const char *handler, const char *args_json)
{
    if (!so || so->dead || !valid_name(handler, SL__SO_KEY_MAX) || !connected(so->c))
        return SL_EINVAL;
    sl_wbuf_t w;
    sl_wbuf_init(&w, SO_MSG_CAP);
    size_t at;
    int rc = put_header(&w, so);
    rc = rc ? rc : event_start(&w, EV_SEND, &at);
    rc = rc ? rc : sl_amf0_put_string(&w, handler);
    if (!rc) {
        rc = sl__json_args_to_amf0(args_json, &w);
        if (rc == SL_EINVAL) {
            sl_wbuf_cleanup(&w);
            return rc;
        }
    }
    if (!rc)
        event_end(&w, at);
    return send_so(so->c, &w, rc);
}

/* The object's name, borrowed from the handle (client.h). */
const char *sl_client_so_name(const sl_client_so_t *so) { return so->name; }
/* The last version the server reported (client.h). */
uint32_t sl_client_so_version(const sl_client_so_t *so) { return so->version; }
/* The owning client (client.h). */
sl_client_t *sl_client_so_client(const sl_client_so_t *so) { return so->c; }

/*
 * Leaves and releases the object (client.h). Inside its own callback the
 * memory stays until the dispatch loop is done with it.
 */
void sl_client_so_close(sl_client_so_t *so)
{
    if (!so || so->dead)
        return;
    sl_client_t *c = so->c;
    if (connected(c))
        send_simple_event(so, EV_DISCONNECT);
    so_unlink(so);
    if (c->so_busy == so)
        so->dead = 1;
    else
        so_free(so);
}

/* Sends the join of every object (after connect succeeded). */
void sl__client_so_rejoin(sl_client_t *c)
{
    for (sl_client_so_t *so = c->sos; so; so = so->next) {
        forget_pending(so);
        if (connected(c))
            send_simple_event(so, EV_CONNECT);
    }
}

/* The connection ended: our waiting writes will not be answered (no callback). */
void sl__client_so_lost(sl_client_t *c)
{
    for (sl_client_so_t *so = c->sos; so; so = so->next)
        forget_pending(so);
}

/*
 * Releases every object and invoke handler without callbacks; an object
 * whose events are being delivered is freed by the dispatch loop. Safe twice.
 */
void sl__client_so_free_all(sl_client_t *c)
{
    while (c->sos) {
        sl_client_so_t *so = c->sos;
        c->sos = so->next;
        if (c->so_busy == so)
            so->dead = 1; /* the dispatch loop frees it */
        else
            so_free(so);
    }
    c->n_sos = 0;
    for (size_t i = 0; i < c->n_invokes; i++)
        sl_free(c->invokes[i].method);
    sl_free(c->invokes);
    c->invokes = NULL;
    c->n_invokes = 0;
}

/* ------------------------------------------------------------------ */
/* parsing                                                             */

/* Reads a u16-prefixed string of p[*off..n) into a new string (NUL-free). */
static int read_key(const uint8_t *p, size_t n, size_t *off, char **out)
{
    if (n - *off < 2)
        return SL_EPROTO;
    size_t len = sl_rd_be16(p + *off);
    if (len > SL__SO_RX_KEY_MAX || len > n - *off - 2)
        return SL_EPROTO;
    if (memchr(p + *off + 2, 0, len))
        return SL_EPROTO;
    char *s = sl_malloc(len + 1);
    if (!s)
        return SL_ENOMEM;
    memcpy(s, p + *off + 2, len);
    s[len] = 0;
    *off += 2 + len;
    *out = s;
    return 0;
}

/*
 * Calls the object's callback; returns 0 to go on, 1 when the object was
 * closed or the client freed by it.
 */
static int emit(sl_client_so_t *so, sl_client_so_event_t ev, const char *key, const char *json)
{
    if (so->cb)
        so->cb(so, ev, key, json, so->version, so->ud);
    return so->dead || so->c->freeing;
}

/* Emits a value event: the value decoded from p[*off..n) as JSON. */
static int emit_value(sl_client_so_t *so, sl_client_so_event_t ev, const char *key,
                      const uint8_t *p, size_t n, size_t *off, int *stop)
{
    sl_amf_t *v = NULL;
    size_t used = 0;
    int rc = sl_amf0_decode(p + *off, n - *off, &used, SL__SO_MAX_DEPTH, &v);
    if (rc)
        return rc == SL_ENOMEM ? rc : SL_EPROTO;
    *off += used;
    char *json = sl__amf_value_json(v);
    sl_amf_free(v);
    if (!json)
        return SL_ENOMEM;
    *stop = emit(so, ev, key, json);
    free(json);
    return 0;
}

/* One event body b[0..n) of type t. Sets *stop when delivery must end. */
static int on_event(sl_client_so_t *so, uint8_t t, const uint8_t *b, size_t n, int *stop)
{
    size_t off = 0;
    char *key = NULL, *level = NULL;
    int rc = 0;
    switch (t) {
    case EV_INITIAL:
        *stop = emit(so, SL_CLIENT_SO_INITIAL, NULL, NULL);
        break;
    case EV_CLEAR:
        *stop = emit(so, SL_CLIENT_SO_CLEAR, NULL, NULL);
        break;
    case EV_UPDATE_DATA:
        /* One or more key/value pairs. */
        while (!rc && !*stop && off < n) {
            rc = read_key(b, n, &off, &key);
            rc = rc ? rc : emit_value(so, SL_CLIENT_SO_CHANGE, key, b, n, &off, stop);
            sl_free(key);
            key = NULL;
        }
        break;
    case EV_UPDATE_ATTR:
    case EV_DELETE_DATA:
        rc = read_key(b, n, &off, &key);
        if (rc)
            break;
        if (t == EV_UPDATE_ATTR) {
            for (size_t i = 0; i < so->n_pending; i++) {
                if (strcmp(so->pending[i], key) == 0) {
                    drop_pending(so, i);
                    break;
                }
            }
        }
        *stop = emit(so, t == EV_UPDATE_ATTR ? SL_CLIENT_SO_SUCCESS : SL_CLIENT_SO_DELETE, key, NULL);
        break;
    case EV_SEND: {
        sl_amf_t *h = NULL;
        size_t used = 0;
        rc = sl_amf0_decode(b, n, &used, SL__SO_MAX_DEPTH, &h);
        if (rc || !sl_amf_str(h)) {
            sl_amf_free(h);
            rc = rc == SL_ENOMEM ? rc : SL_EPROTO;
            break;
        }
        sl_amf_t **args = NULL;
        size_t count = 0;
        rc = sl_amf0_decode_all(b + used, n - used, SL__SO_MAX_DEPTH, &args, &count);
        if (!rc) {
            char *json = sl__amf_to_json(args, count);
            if (json)
                *stop = emit(so, SL_CLIENT_SO_MESSAGE, sl_amf_str(h), json);
            else
                rc = SL_ENOMEM;
            free(json);
        } else if (rc != SL_ENOMEM) {
            rc = SL_EPROTO;
        }
        sl_amf_free_list(args, count);
        sl_amf_free(h);
        break;
    }
    case EV_STATUS: {
        rc = read_key(b, n, &off, &key);
        rc = rc ? rc : read_key(b, n, &off, &level);
        if (rc)
            break;
        if (strcmp(level, "error") == 0 && so->n_pending) {
            char *k = so->pending[0];
            so->pending[0] = NULL;
            drop_pending(so, 0);
            *stop = emit(so, SL_CLIENT_SO_REJECT, k, NULL);
            sl_free(k);
            if (*stop)
                break;
        }
        char lv[SL__SO_RX_KEY_MAX + 3];
        snprintf(lv, sizeof lv, "\"%s\"", level); /* levels are plain words */
        for (char *q = lv + 1; q[1]; q++)
            if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20)
                *q = '_';
        *stop = emit(so, SL_CLIENT_SO_STATUS, key, lv);
        break;
    }
    default:
        break; /* events a client does not receive: ignored */
    }
    sl_free(key);
    sl_free(level);
    return rc;
}

/*
 * A shared-object message from the server (client_internal.h). The
 * header is read first; events are then delivered one by one, each after
 * its own bounds check, so that a bad event later in a message does not
 * undo what was already reported.
 */
int sl__client_on_so(sl_client_t *c, const uint8_t *p, size_t n, int flex)
{
    size_t off = 0;
    if (flex) {
        if (n < 1 || p[0] != 0)
            return 0;
        off = 1;
    }
    if (n - off < 2)
        return 0;
    size_t nl = sl_rd_be16(p + off);
    if (nl == 0 || nl > SL__SO_NAME_MAX || nl + 14 > n - off)
        return 0;
    const char *name = (const char *)p + off + 2;
    off += 2 + nl;
    uint32_t version = sl_rd_be32(p + off);
    off += 12;
    sl_client_so_t *so = c->sos;
    while (so && !(strlen(so->name) == nl && memcmp(so->name, name, nl) == 0))
        so = so->next;
    if (!so)
        return 0;
    so->version = version;
    c->so_busy = so;
    int rc = 0, stop = 0;
    for (size_t events = 0; off < n && !stop && !rc; events++) {
        if (events >= SL__SO_MAX_EVENTS || n - off < 5)
            break;
        uint8_t t = p[off];
        uint32_t len = sl_rd_be32(p + off + 1);
        off += 5;
        if (len > n - off)
            break;
        rc = on_event(so, t, p + off, len, &stop);
        off += len;
    }
    if (c->so_busy == so)
        c->so_busy = NULL;
    if (so->dead)
        so_free(so);
    return rc == SL_ENOMEM ? rc : 0;
}

/* ------------------------------------------------------------------ */
/* methods the server calls                                            */

/* Registers or removes the handler of method (client.h). */
int sl_client_on_invoke(sl_client_t *c, const char *method, sl_client_invoke_cb cb, void *ud)
{
    if (!valid_name(method, 255))
        return SL_EINVAL;
    for (size_t i = 0; i < c->n_invokes; i++) {
        if (strcmp(c->invokes[i].method, method) != 0)
            continue;
        if (cb) {
            c->invokes[i].cb = cb;
            c->invokes[i].ud = ud;
        } else {
            sl_free(c->invokes[i].method);
            c->invokes[i] = c->invokes[--c->n_invokes];
        }
        return 0;
    }
    if (!cb)
        return 0;
    if (c->n_invokes >= SL__CLIENT_MAX_INVOKES)
        return SL_ETOOBIG;
    if (!c->invokes) {
        c->invokes = sl_calloc(SL__CLIENT_MAX_INVOKES, sizeof(*c->invokes));
        if (!c->invokes)
            return SL_ENOMEM;
    }
    char *m = sl_strdup(method);
    if (!m)
        return SL_ENOMEM;
    c->invokes[c->n_invokes++] = (sl__client_invoke_t){.method = m, .cb = cb, .ud = ud};
    return 0;
}

/* _error's Red5 object with description text. */
static int put_error_object(sl_wbuf_t *w, const char *desc)
{
    int rc = sl_amf0_put_object_start(w);
    rc = rc ? rc : sl_amf0_put_prop_string(w, "level", "error");
    rc = rc ? rc : sl_amf0_put_prop_string(w, "code", "NetConnection.Call.Failed");
    rc = rc ? rc : sl_amf0_put_prop_string(w, "description", desc);
    return rc ? rc : sl_amf0_put_object_end(w);
}

/*
 * A server call (client_internal.h). The handler's JSON answer becomes
 * the value of _result or _error; it is borrowed from the handler's
 * malloc and freed here.
 */
int sl__client_on_invoke(sl_client_t *c, const char *method, double txn, sl_amf_t *const *args,
                         size_t n)
{
    sl__client_invoke_t *h = NULL;
    for (size_t i = 0; i < c->n_invokes; i++)
        if (strcmp(c->invokes[i].method, method) == 0)
            h = &c->invokes[i];
    if (!h && txn == 0)
        return 0; /* a notification nobody listens to (onBWDone, ...) */
    sl_wbuf_t w;
    sl_wbuf_init(&w, SO_MSG_CAP);
    int rc = 0, is_error = 0;
    if (!h) {
        char desc[320];
        snprintf(desc, sizeof desc, "Method not found (%s).", method);
        rc = sl_amf0_put_string(&w, "_error");
        rc = rc ? rc : sl_amf0_put_number(&w, txn);
        rc = rc ? rc : sl_amf0_put_null(&w);
        rc = rc ? rc : put_error_object(&w, desc);
    } else {
        char *args_json = sl__amf_to_json(args, n);
        if (!args_json) {
            sl_wbuf_cleanup(&w);
            return SL_ENOMEM;
        }
        sl_client_invoke_cb cb = h->cb;
        void *ud = h->ud;
        sl__client_conn_t *k = c->conn;
        char *answer = cb(c, method, args_json, &is_error, ud);
        free(args_json);
        if (c->freeing || c->conn != k || txn == 0) {
            free(answer);
            sl_wbuf_cleanup(&w);
            return 0;
        }
        rc = sl_amf0_put_string(&w, is_error ? "_error" : "_result");
        rc = rc ? rc : sl_amf0_put_number(&w, txn);
        rc = rc ? rc : sl_amf0_put_null(&w);
        if (!rc) {
            size_t mark = w.len;
            if (is_error && answer && answer[0] == '"') {
                /* A JSON string: the description of Red5's error object. */
                sl_amf_t *tmp = NULL;
                sl_wbuf_t t;
                sl_wbuf_init(&t, SO_MSG_CAP);
                size_t used;
                if (sl__json_value_to_amf0(answer, &t) == 0 &&
                    sl_amf0_decode(t.data, t.len, &used, 2, &tmp) == 0 && sl_amf_str(tmp))
                    rc = put_error_object(&w, sl_amf_str(tmp));
                else
                    rc = put_error_object(&w, "error");
                sl_amf_free(tmp);
                sl_wbuf_cleanup(&t);
            } else {
                rc = sl__json_value_to_amf0(answer ? answer : "null", &w);
                if (rc == SL_EINVAL) {
                    w.len = mark; /* not JSON: sent as a string */
                    rc = sl_amf0_put_string(&w, answer);
                }
            }
        }
        free(answer);
    }
    if (!rc)
        rc = sl__client_send0(c, SL_RTMP_COMMAND_AMF0, w.data, w.len);
    sl_wbuf_cleanup(&w);
    if (!rc)
        sl__client_flush(c);
    return rc;
}
