/*
 * Fuzz target for the JSON form of shared objects (Red5's
 * sharedObjectGetRemote/Connect/SetProperty/Send/Close messages,
 * src/modules/shared_objects/so_json.c) with the whole handling behind it:
 * each input starts a core with only the shared_objects module and a fake
 * "webrtc-ws" service (as tests/unit/modules/so_json_test.c does), plays
 * the input on three fake sockets, closes them, stops everything and
 * aborts if the counted allocator is not back where it started, so a leak
 * on any path (a queued message, a persistent object, a subscriber of a
 * closed socket) is a finding, not only a crash.
 *
 * Input: byte 0 picks how each socket's first admission answers (two bits
 * a socket: allowed, pending, refused, allowed; from service 1.2 its top
 * two bits pick the same for every object's own admission, admit_kind).
 * The rest is a sequence of
 * records separated by 0x1e (RS, which JSON never contains unescaped).
 * A record's first byte says what happens ((b & 3) % 3 is the socket):
 *   (b & 0x0c) == 0x00  the rest of the record is a message on the socket,
 *                       dispatched as webrtc_ws.c does (parsed with
 *                       duplicates rejected, must be an object, first key
 *                       that names a handler);
 *   (b & 0x0c) == 0x04  the socket closes (its handlers' on_close), and a
 *                       new socket takes its place (same address, as
 *                       memory reuse would give);
 *   (b & 0x0c) == 0x08  a pending admission ends: allowed (the socket's,
 *                       else an object's);
 *   (b & 0x0c) == 0x0c  a pending admission ends: refused.
 * Printable seeds: '`' 'a' 'b' are messages on sockets 0, 1, 2; 'd' 'e'
 * 'f' close them; 'h' 'i' 'j' admit them; 'l' 'm' 'n' refuse them.
 * Limits are small (4 objects, 8 keys, 64-byte values, 2 subscribers) so
 * that the fuzzer reaches them. Messages the fake carrier is asked to send
 * are checked to be JSON objects (every answer the adapter makes is one).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "app/admission.h"
#include "app/core.h"
#include "app/services.h"
#include "app/svc/webrtc_ws.h"
#include "base/alloc.h"
#include "base/log.h"
#include "builtin_config.h"
#include "modules/plugins/plugins.h"
#include "modules/shared_objects/shared_objects.h"
#include "sluice/errors.h"

#define N_CONNS 3
#define MAX_KEYS 8

struct sl_wsig_conn {
    int admit_rc;        /* what admit() answers: 0, SL_EDENIED or SL_EPENDING */
    sl_wsig_admit_cb cb; /* the pending admission's callback */
    void *cb_ud;
    int dc;              /* answers is_datachannel() (socket 2 is a data channel) */
    int so_rc;           /* what admit_kind answers (service 1.2) */
    void (*so_done)(struct sl_admit *a, int result, const char *reason, void *ud);
    void *so_ud;         /* the pending object admission */
    char id[16];
};

typedef struct fake {
    sl_wsig_handler_spec_t h[MAX_KEYS];
    char keys[MAX_KEYS][64];
    int n;
} fake_t;

static fake_t g_fake;

static int f_add(void *svc, const sl_wsig_handler_spec_t *spec)
{
    fake_t *f = svc;
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->keys[i], spec->key))
            return SL_EBUSY;
    if (f->n == MAX_KEYS)
        return SL_ETOOBIG;
    snprintf(f->keys[f->n], sizeof f->keys[0], "%s", spec->key);
    f->h[f->n] = *spec;
    f->h[f->n].key = f->keys[f->n];
    f->n++;
    return 0;
}

static void f_remove(void *svc, const char *key)
{
    fake_t *f = svc;
    for (int i = 0; i < f->n; i++) {
        if (!strcmp(f->keys[i], key)) {
            for (int k = i; k + 1 < f->n; k++) {
                memcpy(f->keys[k], f->keys[k + 1], sizeof f->keys[k]);
                f->h[k] = f->h[k + 1];
                f->h[k].key = f->keys[k];
            }
            f->n--;
            return;
        }
    }
}

static int f_send(sl_wsig_conn_t *c, const char *json, size_t len)
{
    json_t *o = json_loadb(json, len, 0, NULL);
    if (!json_is_object(o))
        abort(); /* the adapter only ever sends objects */
    json_decref(o);
    if (getenv("SL_FUZZ_TRACE")) /* what a seed reaches: SL_FUZZ_TRACE=1 so_json_fuzz_replay FILE */
        fprintf(stderr, "%s <- %.*s\n", c->id, (int)len, json);
    return 0;
}

static const char *f_scope(const sl_wsig_conn_t *c) { (void)c; return "live"; }
static const char *f_id(const sl_wsig_conn_t *c) { return c->id; }
static const char *f_remote(const sl_wsig_conn_t *c) { (void)c; return "127.0.0.1"; }
static sl_session_t *f_session(const sl_wsig_conn_t *c) { (void)c; return NULL; }
static int f_is_dc(const sl_wsig_conn_t *c) { return c->dc; }

static int f_admit(sl_wsig_conn_t *c, sl_wsig_admit_cb cb, void *ud)
{
    if (c->admit_rc == SL_EPENDING) {
        if (c->cb)
            abort(); /* the adapter asks once while one is pending */
        c->cb = cb;
        c->cb_ud = ud;
    }
    return c->admit_rc;
}

#if SL_WEBRTC_WS_SVC_MINOR >= 2
/* An object's own admission (kind SL_ADMIT_SO_CONNECT); no handle: closing
 * the socket drops a pending one, as cancelling it does. */
static int f_admit_kind(sl_wsig_conn_t *c, int kind, const char *stream,
                        void (*done)(struct sl_admit *a, int result, const char *reason, void *ud),
                        void *ud, struct sl_admit **out)
{
    (void)kind;
    if (!stream)
        abort();
    *out = NULL;
    if (c->so_rc == SL_EPENDING) {
        if (c->so_done)
            abort(); /* one at a time: what follows waits */
        c->so_done = done;
        c->so_ud = ud;
        return SL_EPENDING;
    }
    done(NULL, c->so_rc, NULL, ud);
    return 0;
}
#endif

static const sl_wsig_svc_t g_fake_svc = {
    .handler_add = f_add, .handler_remove = f_remove, .send = f_send, .scope = f_scope,
    .id = f_id, .remote = f_remote, .session = f_session, .admit = f_admit, .is_datachannel = f_is_dc,
#if SL_WEBRTC_WS_SVC_MINOR >= 2
    .admit_kind = f_admit_kind,
#endif
};

/* One message, dispatched as webrtc_ws.c's on_ws_message does. */
static void deliver(sl_wsig_conn_t *c, const uint8_t *p, size_t len)
{
    json_error_t jerr;
    json_t *m = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(m)) {
        json_decref(m);
        return;
    }
    for (int i = 0; i < g_fake.n; i++) {
        if (json_object_get(m, g_fake.keys[i])) {
            /* The carrier passes the text it parsed (borrowed for the call). */
            g_fake.h[i].on_message(c, (const char *)p, len, g_fake.h[i].ud);
            break;
        }
    }
    json_decref(m);
}

static void closed(sl_wsig_conn_t *c)
{
    /* The carrier ends a pending admission without calling back. */
    c->cb = NULL;
    c->cb_ud = NULL;
    c->so_done = NULL;
    c->so_ud = NULL;
    for (int i = 0; i < g_fake.n; i++)
        if (g_fake.h[i].on_close)
            g_fake.h[i].on_close(c, g_fake.h[i].ud);
}

static void on_tick(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, NULL);
}

static int admit_mode(unsigned bits)
{
    static const int modes[4] = {0, SL_EPENDING, SL_EDENIED, 0};
    return modes[bits & 3];
}

static void play(const uint8_t *data, size_t size, sl_wsig_conn_t *conns)
{
    size_t pos = 1;
    while (pos <= size) {
        const uint8_t *rec = data + pos;
        const uint8_t *end = memchr(rec, 0x1e, size - pos);
        size_t len = end ? (size_t)(end - rec) : size - pos;
        pos += len + 1;
        if (len == 0)
            continue;
        uint8_t b = rec[0];
        int ci = (b & 3) % N_CONNS;
        sl_wsig_conn_t *c = &conns[ci];
        switch (b & 0x0c) {
        case 0x00:
            deliver(c, rec + 1, len - 1);
            break;
        case 0x04: {
            closed(c);
            sl_wsig_conn_t fresh = {.admit_rc = admit_mode(data[0] >> (2 * ci)), .dc = c->dc,
                                    .so_rc = admit_mode(data[0] >> 6)};
            memcpy(fresh.id, c->id, sizeof fresh.id);
            *c = fresh;
            break;
        }
        default:
            if (!c->cb && c->so_done) {
                void (*done)(struct sl_admit *, int, const char *, void *) = c->so_done;
                void *ud = c->so_ud;
                c->so_done = NULL;
                c->so_ud = NULL;
                done(NULL, (b & 0x0c) == 0x08 ? 0 : SL_EDENIED, NULL, ud);
            } else if (c->cb) {
                sl_wsig_admit_cb cb = c->cb;
                void *ud = c->cb_ud;
                int result = (b & 0x0c) == 0x08 ? 0 : SL_EDENIED;
                c->cb = NULL;
                c->cb_ud = NULL;
                c->admit_rc = result; /* later admit() calls answer the same */
                cb(c, result, ud);
            }
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Entry point called by libFuzzer (or the replayer) once per input; always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    sl_log_set_level(SL_LOG_ERROR);
    int64_t bytes0 = sl_alloc_bytes();
    memset(&g_fake, 0, sizeof g_fake);

    sl_config_t cfg;
    static const char yaml[] = "apps:\n  live:\n    so_max_objects: 4\n    so_max_keys: 8\n"
                               "    so_max_value_bytes: 64\n    so_max_object_bytes: 256\n"
                               "    so_max_subscribers: 2\n";
    if (sl_config_defaults(&cfg) || sl_config_load_string(&cfg, yaml, strlen(yaml), "fuzz", NULL, NULL))
        abort();
    uv_loop_t loop;
    sl_core_t core;
    if (uv_loop_init(&loop) || sl_core_init(&core, &loop, &cfg))
        abort();
    static const sl_builtin_t *const only[] = {&sl_shared_objects_builtin, NULL};
    sl_plugins_t *mod = NULL;
    if (sl_plugins_start(&core, NULL, only, &mod))
        abort();
    /* The service comes after the module (as the WebRTC protocol does): the
     * adapter finds it from its timer, in the loop's first turn. */
    if (sl_service_register(&core, SL_WEBRTC_WS_SVC_NAME, SL_WEBRTC_WS_SVC_MAJOR, SL_WEBRTC_WS_SVC_MINOR,
                            &g_fake_svc, &g_fake))
        abort();
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 0, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (g_fake.n != 5)
        abort();

    sl_wsig_conn_t conns[N_CONNS];
    memset(conns, 0, sizeof conns);
    for (int i = 0; i < N_CONNS; i++) {
        conns[i].admit_rc = admit_mode(data[0] >> (2 * i));
        conns[i].dc = i == 2;
        conns[i].so_rc = admit_mode(data[0] >> 6);
        snprintf(conns[i].id, sizeof conns[i].id, "so-%d", i);
    }
    play(data, size, conns);
    for (int i = 0; i < N_CONNS; i++)
        closed(&conns[i]);

    sl_plugins_stop(mod);
    if (g_fake.n != 0)
        abort(); /* every key taken back at stop */
    sl_service_unregister(&core, SL_WEBRTC_WS_SVC_NAME, &g_fake_svc);
    uv_run(&loop, UV_RUN_DEFAULT);
    sl_plugins_free(mod);
    sl_admit_cleanup(&core);
    sl_core_cleanup(&core);
    if (uv_loop_close(&loop))
        abort();
    sl_config_cleanup(&cfg);
    if (sl_alloc_bytes() != bytes0)
        abort();
    return 0;
}
