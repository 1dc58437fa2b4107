/*
 * Fuzz target for libsluice-client's shared object message parser
 * (clients/c/src/client_so.c, sl__client_on_so): the first byte of the
 * input picks type 19 (even) or type 16 (odd), the rest is a message body
 * from the "server". The client is not connected; it has joined the
 * objects "b" and "so", whose callbacks turn every event into text and
 * close "so" when it gets a message (the close-inside-callback path).
 * Beyond "does not crash or read out of bounds": no sl_malloc byte is left
 * once the client is freed. Linked with libsluice-client by
 * clients/c/CMakeLists.txt.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "client_internal.h"
#include "sluice/client.h"

static size_t sink;

static void on_so(sl_client_so_t *so, sl_client_so_event_t ev, const char *key, const char *json,
                  uint32_t version, void *ud)
{
    (void)ud;
    sink += (size_t)ev + version + (key ? strlen(key) : 0) + (json ? strlen(json) : 0);
    if (ev == SL_CLIENT_SO_MESSAGE && strcmp(sl_client_so_name(so), "so") == 0)
        sl_client_so_close(so);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int64_t bytes0 = sl_alloc_bytes();
    uv_loop_t loop;
    if (uv_loop_init(&loop))
        abort();
    sl_client_t *c = NULL;
    if (sl_client_new(&loop, "rtmp://127.0.0.1:1/live", NULL, &c))
        abort();
    c->mode = SL__MODE_CONNECT; /* as if started: joins are accepted, nothing is sent */
    sl_client_so_t *a, *b;
    if (sl_client_so_join(c, "b", 0, on_so, NULL, &a) || sl_client_so_join(c, "so", 1, on_so, NULL, &b))
        abort();
    /* The same bytes twice: the second time after a possible close of "so". */
    sl__client_on_so(c, data + 1, size - 1, data[0] & 1);
    sl__client_on_so(c, data + 1, size - 1, data[0] & 1);
    sl_client_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop))
        abort();
    if (sl_alloc_bytes() != bytes0)
        abort();
    return 0;
}
