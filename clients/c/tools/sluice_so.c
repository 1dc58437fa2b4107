/*
 * sluice-so: joins a Remote Shared Object of an RTMP app with
 * libsluice-client and prints every event as one JSON line on stdout;
 * can set and delete attributes, send messages, call server methods and
 * answer the server's calls. The command-line face of sl_client_so_* and
 * sl_client_call_timeout / sl_client_on_invoke.
 *
 *   sluice-so [--persistent] [--set KEY=JSON]... [--delete KEY]...
 *             [--send HANDLER [ARGS-JSON]]... [--call METHOD ARGS-JSON]...
 *             [--call-timeout MS] [--answer METHOD=JSON]... [--once]
 *             [--duration MS] [-u USER] [-p PASS] [-token T] [-timeout MS]
 *             [--ca FILE] [--insecure] [-q]
 *             rtmp[s]://host[:port]/app [OBJECT]
 *
 * Operations run in command-line order once the object's initial data has
 * arrived (without OBJECT: once connected, calls only). Lines, flushed one
 * by one:
 *
 *   {"event":"initial","so":"room","version":0}
 *   {"event":"change","so":"room","key":"k","value":1,"version":3}
 *   {"event":"success"|"reject"|"delete","so":..,"key":..,"version":..}
 *   {"event":"clear","so":..,"version":..}
 *   {"event":"message","so":..,"handler":"h","args":[..],"version":..}
 *   {"event":"status","so":..,"code":"SharedObject...","level":"error",..}
 *   {"event":"result"|"error"|"timeout"|"closed","method":"m","value":[..]}
 *   {"event":"invoke","method":"m","args":[..]}   (a server call, --answer)
 *
 * --once exits after the last set and call are answered (sends and deletes
 * are flushed before the goodbye); with no operation, once the object's
 * data has been printed (a one-shot read), and at once, exit 1, when the
 * join is refused; --duration after MS; else on
 * SIGINT/SIGTERM. Exit: 0, 1 when the connection failed or an operation
 * was refused or failed, 2 on bad usage.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sluice/client.h"

#define MAX_OPS 256
#define MAX_ANSWERS 64

typedef enum { OP_SET, OP_DELETE, OP_SEND, OP_CALL } op_kind_t;

typedef struct {
    op_kind_t kind;
    const char *a;    /* key, handler, method */
    const char *b;    /* JSON value / arguments, or NULL */
    size_t a_len;     /* bytes of a (KEY=JSON is split in place by length) */
} op_t;

typedef struct {
    char method[256];
    const char *json;
} answer_t;

typedef struct {
    sl_client_t *c;
    sl_client_so_t *so;
    const char *so_name;
    int persistent;
    uv_signal_t sigint, sigterm;
    uv_timer_t duration;
    uv_timer_t ops_timer; /* runs the operations one loop turn after INITIAL */
    uint64_t duration_ms;
    uint32_t call_timeout;
    int quiet, once, ops_done, failed, closing;
    int outstanding;  /* sets and calls not yet answered */
    op_t ops[MAX_OPS];
    int n_ops;
    answer_t answers[MAX_ANSWERS];
    int n_answers;
    int exit_code;
} app_t;

static void usage(void)
{
    fprintf(stderr,
            "usage: sluice-so [--persistent] [--set KEY=JSON]... [--delete KEY]...\n"
            "                 [--send HANDLER [ARGS-JSON]]... [--call METHOD ARGS-JSON]...\n"
            "                 [--call-timeout MS] [--answer METHOD=JSON]... [--once] [--duration MS]\n"
            "                 [-u USER] [-p PASS] [-token T] [-timeout MS] [--ca FILE] [--insecure] [-q]\n"
            "                 rtmp[s]://host[:port]/app [OBJECT]\n");
}

/* Prints obj as one line and releases it; JSON text fields are parsed in. */
static void print_line(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(s);
    }
    json_decref(obj);
}

static json_t *parse_or_string(const char *txt)
{
    if (!txt)
        return json_null();
    json_t *v = json_loads(txt, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(txt);
}

static void finish(app_t *a)
{
    if (a->closing)
        return;
    a->closing = 1;
    if (a->c)
        sl_client_close(a->c); /* flushes, goodbye, CLOSED -> on_state frees */
}

static void op_answered(app_t *a)
{
    if (--a->outstanding <= 0 && a->once && a->ops_done)
        finish(a);
}

static void on_result(sl_client_t *c, int err, const char *json, void *ud)
{
    (void)c;
    const char **pm = ud; /* method, app */
    app_t *app = (app_t *)pm[1];
    const char *ev = err == 0 ? "result" : err == SL_EDENIED ? "error"
                   : err == SL_ECLOSED ? "closed" : "timeout";
    if (err)
        app->failed = 1;
    json_t *o = json_object();
    json_object_set_new(o, "event", json_string(ev));
    json_object_set_new(o, "method", json_string(pm[0]));
    json_object_set_new(o, "value", parse_or_string(json));
    print_line(o);
    free(pm);
    op_answered(app);
}

static void run_ops(app_t *a)
{
    if (a->ops_done)
        return;
    a->ops_done = 1;
    for (int i = 0; i < a->n_ops; i++) {
        op_t *op = &a->ops[i];
        int rc = 0;
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)op->a_len, op->a);
        switch (op->kind) {
        case OP_SET:
            rc = sl_client_so_set(a->so, key, op->b);
            if (!rc)
                a->outstanding++;
            break;
        case OP_DELETE:
            rc = sl_client_so_delete(a->so, key);
            break;
        case OP_SEND:
            rc = sl_client_so_send(a->so, key, op->b);
            break;
        case OP_CALL: {
            const char **pm = malloc(2 * sizeof(char *));
            if (!pm) {
                rc = SL_ENOMEM;
                break;
            }
            pm[0] = op->a;
            pm[1] = (const char *)a;
            rc = sl_client_call_timeout(a->c, op->a, op->b, a->call_timeout, on_result, pm);
            if (rc)
                free(pm);
            else
                a->outstanding++;
            break;
        }
        }
        if (rc) {
            fprintf(stderr, "sluice-so: %s %s: %s\n",
                    op->kind == OP_SET ? "set" : op->kind == OP_DELETE ? "delete"
                    : op->kind == OP_SEND ? "send" : "call", key, sl_strerror(rc));
            a->failed = 1;
        }
        if (a->closing || !a->c)
            return;
    }
    if (a->once && a->outstanding <= 0)
        finish(a);
}

static void on_ops_timer(uv_timer_t *t)
{
    app_t *a = t->data;
    if (a->c && a->so && !a->closing)
        run_ops(a);
}

static const char *const ev_names[] = {"initial", "change", "success", "reject",
                                       "delete", "clear", "message", "status"};

static void on_so(sl_client_so_t *so, sl_client_so_event_t ev, const char *key, const char *json,
                  uint32_t version, void *ud)
{
    app_t *a = ud;
    json_t *o = json_object();
    json_object_set_new(o, "event", json_string(ev_names[ev]));
    json_object_set_new(o, "so", json_string(sl_client_so_name(so)));
    switch (ev) {
    case SL_CLIENT_SO_CHANGE:
        json_object_set_new(o, "key", json_string(key));
        json_object_set_new(o, "value", parse_or_string(json));
        break;
    case SL_CLIENT_SO_SUCCESS:
    case SL_CLIENT_SO_REJECT:
    case SL_CLIENT_SO_DELETE:
        json_object_set_new(o, "key", json_string(key));
        break;
    case SL_CLIENT_SO_MESSAGE:
        json_object_set_new(o, "handler", json_string(key));
        json_object_set_new(o, "args", parse_or_string(json));
        break;
    case SL_CLIENT_SO_STATUS:
        json_object_set_new(o, "code", json_string(key));
        json_object_set_new(o, "level", parse_or_string(json));
        break;
    default:
        break;
    }
    json_object_set_new(o, "version", json_integer(version));
    print_line(o);
    if (ev == SL_CLIENT_SO_INITIAL) {
        /* The object's data follows INITIAL as CHANGE events of the same
         * message: run the operations (and, with --once and none, exit) on
         * the next loop turn, once all of it has been printed. */
        uv_timer_start(&a->ops_timer, on_ops_timer, 0, 0);
    } else if (ev == SL_CLIENT_SO_SUCCESS) {
        op_answered(a);
    } else if (ev == SL_CLIENT_SO_REJECT) {
        a->failed = 1;
        op_answered(a);
    } else if (ev == SL_CLIENT_SO_STATUS && json && strstr(json, "error")) {
        a->failed = 1;
        if (a->once && !a->ops_done)
            finish(a); /* the join itself was refused (e.g. SharedObject.BadPersistence) */
    }
}

static char *on_invoke(sl_client_t *c, const char *method, const char *args_json, int *is_error,
                       void *ud)
{
    app_t *a = ud;
    (void)c;
    (void)is_error;
    json_t *o = json_object();
    json_object_set_new(o, "event", json_string("invoke"));
    json_object_set_new(o, "method", json_string(method));
    json_object_set_new(o, "args", parse_or_string(args_json));
    print_line(o);
    for (int i = 0; i < a->n_answers; i++)
        if (strcmp(a->answers[i].method, method) == 0)
            return strdup(a->answers[i].json);
    return NULL;
}

static void on_status(sl_client_t *c, const char *level, const char *code, const char *desc, void *ud)
{
    app_t *a = ud;
    (void)c;
    if (!a->quiet)
        fprintf(stderr, "sluice-so: %s %s%s%s\n", level, code, desc[0] ? ": " : "", desc);
}

static void close_handles(app_t *a)
{
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->duration, NULL);
    uv_close((uv_handle_t *)&a->ops_timer, NULL);
}

static void on_state(sl_client_t *c, sl_client_state_t s, int err, void *ud)
{
    app_t *a = ud;
    if (s == SL_CLIENT_ACTIVE && !a->so_name) {
        run_ops(a);
        return;
    }
    if (s == SL_CLIENT_ACTIVE && !a->so) {
        int rc = sl_client_so_join(c, a->so_name, a->persistent, on_so, a, &a->so);
        if (rc) {
            fprintf(stderr, "sluice-so: join %s: %s\n", a->so_name, sl_strerror(rc));
            a->failed = 1;
            finish(a);
        }
        return;
    }
    if (s != SL_CLIENT_CLOSED)
        return;
    a->exit_code = err == 0 && !a->failed ? 0 : 1;
    if (err && !a->quiet)
        fprintf(stderr, "sluice-so: %s\n", sl_strerror(err));
    sl_client_free(c);
    a->c = NULL;
    a->so = NULL;
    close_handles(a);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    finish(s->data);
}

static void on_duration(uv_timer_t *t) { finish(t->data); }

/* KEY=JSON: returns the key length, or -1. */
static int split_eq(const char *s, const char **json)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s || eq - s > 255)
        return -1;
    *json = eq + 1;
    return (int)(eq - s);
}

int main(int argc, char **argv)
{
    static app_t a;
    sl_client_opts_t o;
    sl_client_opts_init(&o);
    const char *args[2] = {NULL, NULL};
    int n_args = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        const char *json = NULL;
        if (a.n_ops >= MAX_OPS) {
            usage();
            return 2;
        }
        if (strcmp(s, "--persistent") == 0) {
            a.persistent = 1;
        } else if (strcmp(s, "--set") == 0 && more) {
            s = argv[++i];
            int kl = split_eq(s, &json);
            if (kl < 0) {
                usage();
                return 2;
            }
            a.ops[a.n_ops++] = (op_t){OP_SET, s, json, (size_t)kl};
        } else if (strcmp(s, "--delete") == 0 && more) {
            s = argv[++i];
            a.ops[a.n_ops++] = (op_t){OP_DELETE, s, NULL, strlen(s)};
        } else if (strcmp(s, "--send") == 0 && more) {
            s = argv[++i];
            if (i + 1 < argc && argv[i + 1][0] == '[')
                json = argv[++i];
            a.ops[a.n_ops++] = (op_t){OP_SEND, s, json, strlen(s)};
        } else if (strcmp(s, "--call") == 0 && i + 2 < argc) {
            s = argv[++i];
            json = argv[++i];
            a.ops[a.n_ops++] = (op_t){OP_CALL, s, json, strlen(s)};
        } else if (strcmp(s, "--call-timeout") == 0 && more) {
            a.call_timeout = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(s, "--answer") == 0 && more && a.n_answers < MAX_ANSWERS) {
            s = argv[++i];
            int kl = split_eq(s, &json);
            if (kl < 0) {
                usage();
                return 2;
            }
            snprintf(a.answers[a.n_answers].method, sizeof a.answers[0].method, "%.*s", kl, s);
            a.answers[a.n_answers++].json = json;
        } else if (strcmp(s, "--once") == 0) {
            a.once = 1;
        } else if (strcmp(s, "--duration") == 0 && more) {
            a.duration_ms = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(s, "-q") == 0) {
            a.quiet = 1;
        } else if (strcmp(s, "-u") == 0 && more) {
            o.username = argv[++i];
        } else if (strcmp(s, "-p") == 0 && more) {
            o.password = argv[++i];
        } else if (strcmp(s, "-token") == 0 && more) {
            o.token = argv[++i];
        } else if (strcmp(s, "--ca") == 0 && more) {
            o.tls_ca_file = argv[++i];
        } else if (strcmp(s, "--insecure") == 0) {
            o.tls_insecure = 1;
        } else if (strcmp(s, "-timeout") == 0 && more) {
            o.timeout_ms = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (s[0] != '-' && n_args < 2) {
            args[n_args++] = s;
        } else {
            usage();
            return 2;
        }
    }
    a.so_name = n_args == 2 ? args[1] : NULL;
    int needs_so = 0;
    for (int i = 0; i < a.n_ops; i++)
        needs_so |= a.ops[i].kind != OP_CALL;
    if (n_args < 1 || (needs_so && !a.so_name)) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    o.on_status = on_status;
    o.on_state = on_state;
    o.ud = &a;
    int rc = sl_client_new(loop, args[0], &o, &a.c);
    if (rc) {
        fprintf(stderr, "sluice-so: %s: %s\n", args[0], sl_strerror(rc));
        return 2;
    }
    for (int i = 0; i < a.n_answers && !rc; i++)
        rc = sl_client_on_invoke(a.c, a.answers[i].method, on_invoke, &a);
    uv_signal_init(loop, &a.sigint);
    uv_signal_init(loop, &a.sigterm);
    uv_timer_init(loop, &a.duration);
    uv_timer_init(loop, &a.ops_timer);
    a.sigint.data = a.sigterm.data = a.duration.data = a.ops_timer.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    if (a.duration_ms)
        uv_timer_start(&a.duration, on_duration, a.duration_ms, 0);
    a.exit_code = 1;
    rc = rc ? rc : sl_client_connect(a.c);
    if (rc) {
        fprintf(stderr, "sluice-so: %s: %s\n", args[0], sl_strerror(rc));
        sl_client_free(a.c);
        close_handles(&a);
        uv_run(loop, UV_RUN_DEFAULT);
        uv_loop_close(loop);
        return 1;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return a.exit_code;
}
