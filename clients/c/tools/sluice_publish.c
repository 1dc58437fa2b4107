/*
 * sluice-publish: publishes an FLV file (or FLV on standard input) to an
 * RTMP URL with libsluice-client; the command-line face of
 * sl_client_publish_flv.
 *
 *   sluice-publish [-re] [-loop] [-reconnect] [-u USER] [-p PASS] [-token T]
 *                  [-timeout MS] [--ca FILE] [--insecure] [-q]
 *                  FILE|- rtmp[s]://host[:port]/app/stream
 *
 * Exits 0 when the whole file was sent (or on SIGINT/SIGTERM after a clean
 * unpublish), 1 when the server refused or the connection failed, 2 on
 * bad usage. Status events go to stderr unless -q.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sluice/client.h"

typedef struct {
    sl_client_t *c;
    uv_signal_t sigint, sigterm;
    int quiet;
    int exit_code;
    int active_once;
} app_t;

static void usage(void)
{
    fprintf(stderr, "usage: sluice-publish [-re] [-loop] [-reconnect] [-u USER] [-p PASS] [-token T]\n"
                    "                      [-timeout MS] [--ca FILE] [--insecure] [-q]\n"
                    "                      FILE|- rtmp[s]://host[:port]/app/stream\n");
}

static void on_status(sl_client_t *c, const char *level, const char *code, const char *desc, void *ud)
{
    app_t *a = ud;
    (void)c;
    if (!a->quiet)
        fprintf(stderr, "sluice-publish: %s %s%s%s\n", level, code, desc[0] ? ": " : "", desc);
}

static void on_state(sl_client_t *c, sl_client_state_t s, int err, void *ud)
{
    app_t *a = ud;
    if (s == SL_CLIENT_ACTIVE)
        a->active_once = 1;
    if (s == SL_CLIENT_RECONNECTING && !a->quiet)
        fprintf(stderr, "sluice-publish: connection lost (%s), reconnecting\n", sl_strerror(err));
    if (s != SL_CLIENT_CLOSED)
        return;
    a->exit_code = err == 0 && a->active_once ? 0 : 1;
    if (err && !a->quiet)
        fprintf(stderr, "sluice-publish: %s\n", sl_strerror(err));
    sl_client_free(c);
    a->c = NULL;
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    app_t *a = s->data;
    (void)signum;
    if (a->c)
        sl_client_close(a->c);
}

int main(int argc, char **argv)
{
    sl_client_opts_t o;
    sl_client_opts_init(&o);
    unsigned flags = 0;
    const char *args[2] = {NULL, NULL};
    int n_args = 0;
    app_t a;
    memset(&a, 0, sizeof a);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        if (strcmp(s, "-re") == 0) {
            flags |= SL_CLIENT_FLV_REALTIME;
        } else if (strcmp(s, "-loop") == 0) {
            flags |= SL_CLIENT_FLV_LOOP;
        } else if (strcmp(s, "-reconnect") == 0) {
            o.reconnect.enabled = 1;
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
        } else if ((s[0] != '-' || strcmp(s, "-") == 0) && n_args < 2) {
            args[n_args++] = s;
        } else {
            usage();
            return 2;
        }
    }
    if (n_args != 2) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    o.on_status = on_status;
    o.on_state = on_state;
    o.ud = &a;
    int rc = sl_client_new(loop, args[1], &o, &a.c);
    if (rc) {
        if (rc == SL_EINVAL && o.tls_ca_file)
            fprintf(stderr, "sluice-publish: %s: %s (a bad URL, or --ca %s is not a readable PEM "
                            "certificate file)\n", args[1], sl_strerror(rc), o.tls_ca_file);
        else
            fprintf(stderr, "sluice-publish: %s: %s\n", args[1], sl_strerror(rc));
        return 2;
    }
    uv_signal_init(loop, &a.sigint);
    uv_signal_init(loop, &a.sigterm);
    a.sigint.data = a.sigterm.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    a.exit_code = 1;
    rc = sl_client_publish_flv(a.c, args[0], flags);
    if (rc) {
        fprintf(stderr, "sluice-publish: %s: %s\n", args[0], sl_strerror(rc));
        sl_client_free(a.c);
        uv_close((uv_handle_t *)&a.sigint, NULL);
        uv_close((uv_handle_t *)&a.sigterm, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        uv_loop_close(loop);
        return 1;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return a.exit_code;
}
