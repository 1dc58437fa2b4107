/*
 * Fuzz target for the Redis Cluster redirection parser
 * (sl_cluster_redis_parse_redirect, src/cluster/core/cluster_redis.c): the
 * text of a MOVED/ASK error reply comes from whatever answers on a Redis
 * address. An accepted redirection must respect the caps (slot, port,
 * host length and alphabet) and format back to a text that parses to the
 * same fields; the input is also read as a key prefix, whose hash-tagged
 * form must fit its buffer and keep the prefix's bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/core/cluster_redis.h"
#include "sluice/errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_cluster_redis_redirect_t r, again;
    int rc = sl_cluster_redis_parse_redirect((const char *)data, size, &r);
    if (rc != 0 && rc != SL_EDECLINED && rc != SL_EINVAL)
        abort();
    if (rc == 0) {
        size_t hl = strlen(r.host);
        if (size > SL_CLUSTER_REDIS_REDIRECT_MAX || r.slot < 0 || r.slot > 16383 || r.port < 1 ||
            r.port > 65535 || hl > SL_CLUSTER_REDIS_HOST_MAX)
            abort();
        for (size_t i = 0; i < hl; i++)
            if ((unsigned char)r.host[i] <= ' ' || r.host[i] == '[' || r.host[i] == ']')
                abort();
        char txt[SL_CLUSTER_REDIS_REDIRECT_MAX + 32];
        int n = snprintf(txt, sizeof txt, "%s %d %s:%d", r.ask ? "ASK" : "MOVED", r.slot, r.host,
                         r.port);
        if (n < 0 || (size_t)n >= sizeof txt)
            abort();
        if (sl_cluster_redis_parse_redirect(txt, (size_t)n, &again) != 0 || again.ask != r.ask ||
            again.slot != r.slot || again.port != r.port || strcmp(again.host, r.host) != 0)
            abort();
    }
    if (size < 64 && !memchr(data, 0, size)) {
        char prefix[64], out[80];
        memcpy(prefix, data, size);
        prefix[size] = '\0';
        if (sl_cluster_redis_prefix(prefix, 1, out, sizeof out) == 0 &&
            (strlen(out) < size || !strchr(out, '{') || !strchr(out, '}')))
            abort();
    }
    return 0;
}
