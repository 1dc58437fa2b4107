/*
 * Fuzz target for the cluster relay's text parsers (src/cluster/relay/
 * relay_util.c): relay.origins (an operator's list, read at start and on
 * --check-config) and the query masking that runs on every relay
 * connection's query, which a peer writes. The input is split at its
 * first NUL: origins text before it, a query after it. Checks beyond
 * memory safety: every parsed entry has a host and a port in range, and
 * a masked query never holds the value that was masked.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cluster/relay/relay_util.h"

#define FUZZ_MAX 8192

/* libFuzzer entry point: data is borrowed for the call. Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    sl_relay_addr_t a[SL_RELAY_MAX_ORIGINS];
    const char *why = NULL;
    int n = sl_relay_origins_parse(text, a, SL_RELAY_MAX_ORIGINS, &why);
    for (int i = 0; i < n; i++)
        if (!a[i].host[0] || a[i].port == 0 || strlen(a[i].host) >= SL_RELAY_HOST_MAX)
            abort();
    if (n < 0 && !why)
        abort();
    size_t first = strlen(text);
    const char *query = first < size ? text + first + 1 : text;
    size_t cap = strlen(query) * 2 + 8;
    char *out = malloc(cap);
    if (out) {
        int m = sl_relay_query_mask(query, "restreamer", out, cap);
        if (m < 0 || strlen(out) >= cap)
            abort();
        /* every restreamer= in the output is masked */
        for (const char *p = out; (p = strstr(p, "restreamer=")) != NULL; p++)
            if ((p == out || p[-1] == '&') && strncmp(p + 11, "***", 3) != 0)
                abort();
        free(out);
    }
    free(text);
    return 0;
}
