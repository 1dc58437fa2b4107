/*
 * Fuzz target: our DTLS glue (src/net/dtls.c) in the server role, the one a
 * browser's datagrams reach first. OpenSSL's own parsers are fuzzed by
 * OpenSSL; this drives what sluice adds around them: the datagram checks,
 * the memory-BIO handling between datagrams, cutting OpenSSL's output into
 * datagrams, the timer calls and the close paths.
 *
 * Input: a sequence of datagrams, each a 2-byte big-endian length and that
 * many bytes; a last entry cut short is fed as it is. Seeds in
 * tests/fuzz/corpus/dtls/ start from a real ClientHello recorded by
 * tests/unit/net/dtls_test.c (SL_DTLS_DUMP_DIR), which makes the server
 * answer with its whole first flight.
 *
 * The context (key generation) is made once per process and kept.
 */
#include <stddef.h>
#include <stdint.h>

#include "net/dtls.h"

static sl_dtls_ctx_t *g_ctx;

static void on_send(void *ud, const uint8_t *p, size_t len)
{
    (void)ud;
    if (len == 0 || len > SL_DTLS_MAX_APP + 512)
        __builtin_trap(); /* flush() must cut sane datagrams */
    (void)p;
}

static void on_connected(void *ud, const sl_srtp_keys_t *keys)
{
    (void)ud;
    (void)keys; /* a fuzzer cannot complete a handshake against a random server */
}

static void on_data(void *ud, const uint8_t *p, size_t len)
{
    (void)ud;
    (void)p;
    (void)len;
}

static void on_closed(void *ud, const char *why)
{
    int *closed = ud;
    if (!why || ++*closed > 1)
        __builtin_trap(); /* closed runs once, with a reason */
}

static const sl_dtls_ops_t k_ops = {on_send, on_connected, on_data, on_closed};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_ctx && sl_dtls_ctx_new(&g_ctx) != 0)
        return 0;
    int closed = 0;
    sl_dtls_t *d;
    if (sl_dtls_new(g_ctx, 1, "sha-256",
                    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
                    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF",
                    &k_ops, &closed, &d) != 0)
        return 0;
    sl_dtls_start(d);
    size_t off = 0;
    for (int n = 0; off < size && n < 64; n++) {
        size_t len = size - off;
        if (len >= 2) {
            size_t want = (size_t)data[off] << 8 | data[off + 1];
            off += 2;
            len = size - off < want ? size - off : want;
        } else {
            off = size; /* one stray byte: nothing to feed */
            break;
        }
        sl_dtls_feed(d, data + off, len);
        off += len;
        if (sl_dtls_timeout_ms(d) == 0)
            sl_dtls_on_timeout(d);
    }
    sl_dtls_send(d, (const uint8_t *)"x", 1);
    sl_dtls_set_timeouts(d, -1, 0);
    sl_dtls_on_timeout(d); /* past the deadline: closes (once) unless already closed */
    sl_dtls_close(d);
    sl_dtls_free(d);
    return 0;
}
