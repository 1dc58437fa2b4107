/*
 * Fuzz target for the RTMP shared object message parser (rtmp_so.c), in
 * both forms: the first byte of the input picks type 19 (even) or type 16
 * (odd), the rest is the message body. Beyond "does not crash, leak or read
 * out of bounds", every message that parses is mapped the way the
 * connection maps it (each value to JSON), and a message rebuilt from the
 * parsed name, version and events parses again with the same header.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/rtmp/rtmp_so.h"
#include "sluice/errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int64_t bytes0 = sl_alloc_bytes();
    int flex = data[0] & 1;
    sl_rtmp_so_msg_t m;
    int rc = sl_rtmp_so_parse(data + 1, size - 1, flex, &m);
    if (rc == 0) {
        sl_so_change_t ch[SL_RTMP_SO_MAX_EVENTS];
        size_t n = 0;
        for (size_t i = 0; i < m.n_events; i++) {
            json_t *v = NULL;
            if (m.events[i].value && sl_rtmp_so_to_json(m.events[i].value, &v) != 0)
                continue;
            if (m.events[i].type == SL_RTMP_SO_SEND_MESSAGE && !json_is_array(v)) {
                json_decref(v);
                continue;
            }
            ch[n++] = (sl_so_change_t){m.events[i].type == SL_RTMP_SO_SEND_MESSAGE ? SL_SO_SEND
                                                                                 : SL_SO_CHANGE,
                                       m.events[i].key ? m.events[i].key : "k", v};
        }
        sl_wbuf_t w;
        sl_wbuf_init(&w, 64u << 20);
        if (sl_rtmp_so_build(&w, flex, m.name, m.version, m.persistent, ch, n) == 0) {
            sl_rtmp_so_msg_t again;
            int rc2 = sl_rtmp_so_parse(w.data, w.len, flex, &again);
            if (rc2 == 0 && (strcmp(again.name, m.name) != 0 || again.version != m.version ||
                             again.persistent != m.persistent || again.n_events != n))
                abort();
            sl_rtmp_so_msg_cleanup(&again);
        }
        sl_wbuf_cleanup(&w);
        for (size_t i = 0; i < n; i++)
            json_decref(ch[i].value);
    }
    sl_rtmp_so_msg_cleanup(&m);
    if (sl_alloc_bytes() != bytes0)
        abort();
    return 0;
}
