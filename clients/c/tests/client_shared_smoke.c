/*
 * client_shared_smoke: a device program as an integrator writes it, linked
 * against libsluice-client.so only (plus libuv for its own loop). It proves
 * that the shared library exports the API a program needs and resolves
 * everything it uses by itself; clients/c/tests/check_deps.sh runs it and
 * reads its dynamic links. It connects to a port where nothing listens and
 * expects the client to report the refusal and close.
 */
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "sluice/client.h"

static int closed_err = 1;

static void on_state(sl_client_t *c, sl_client_state_t s, int err, void *ud)
{
    (void)c;
    (void)ud;
    if (s == SL_CLIENT_CLOSED)
        closed_err = err;
}

int main(void)
{
    uv_loop_t loop;
    sl_client_opts_t o;
    sl_client_t *c = NULL;
    int rc;

    uv_loop_init(&loop);
    sl_client_opts_init(&o);
    o.on_state = on_state;
    o.timeout_ms = 5000;
    /* Port 1 on loopback: nothing listens there, the connect is refused. */
    rc = sl_client_new(&loop, "rtmp://127.0.0.1:1/live/smoke", &o, &c);
    if (rc < 0) {
        fprintf(stderr, "client_shared_smoke: new: %s\n", sl_strerror(rc));
        return 1;
    }
    rc = sl_client_play(c);
    if (rc == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    sl_client_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "client_shared_smoke: handles left on the loop\n");
        return 1;
    }
    if (rc == 0 && closed_err >= 0) {
        fprintf(stderr, "client_shared_smoke: expected a refusal, got %d\n", closed_err);
        return 1;
    }
    printf("client_shared_smoke: %s (%s)\n", sl_client_state_name(SL_CLIENT_CLOSED),
           sl_strerror(rc ? rc : closed_err));
    return 0;
}
