/*
 * Fuzz target for the cluster's wire formats (src/cluster/core/
 * cluster_record.c): node records read from Redis and bus messages from its
 * pub/sub, both written by any process that can reach Redis. The same bytes
 * go to both parsers. A record that parses is written again and must parse
 * to the same node (the writer accepts whatever the parser produces, and
 * the two agree); a message that parses is written again and must parse to
 * the same fields. Allocation balance is checked on every input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cluster/core/cluster_record.h"
#include "sluice/errors.h"

static void check_record(const uint8_t *data, size_t size)
{
    sl_cluster_node_t n, again;
    sl_cluster_rec_presence_t *p = NULL, *p2 = NULL;
    size_t n_p = 0, n_p2 = 0;
    if (sl_cluster_record_parse((const char *)data, size, &n, &p, &n_p) != 0) {
        if (p || n_p)
            abort();
        return;
    }
    if (n_p > SL_CLUSTER_PRESENCES_MAX || !sl_cluster_id_is_valid(n.id))
        abort();
    char *txt = sl_cluster_record_write(&n, p, n_p);
    if (!txt)
        abort();
    if (sl_cluster_record_parse(txt, strlen(txt), &again, &p2, &n_p2) != 0)
        abort();
    if (strcmp(n.id, again.id) || strcmp(n.role, again.role) || strcmp(n.host, again.host) ||
        strcmp(n.state, again.state) || n.rtmp_port != again.rtmp_port ||
        n.connections != again.connections || n.bytes_out_rate != again.bytes_out_rate ||
        n_p2 != n_p)
        abort();
    for (size_t i = 0; i < n_p; i++)
        if (strcmp(p[i].path, p2[i].path) || p[i].is_origin != p2[i].is_origin ||
            p[i].subscribers != p2[i].subscribers)
            abort();
    sl_free(txt);
    sl_cluster_presences_free(p, n_p);
    sl_cluster_presences_free(p2, n_p2);
}

static void check_msg(const uint8_t *data, size_t size)
{
    sl_cluster_msg_t m, again;
    if (sl_cluster_msg_parse((const char *)data, size, &m) != 0) {
        if (m.json)
            abort();
        return;
    }
    char *txt = sl_cluster_msg_write(m.from, m.to, m.topic, m.json);
    if (txt) { /* a payload near the cap may not fit once escaped again */
        if (sl_cluster_msg_parse(txt, strlen(txt), &again) != 0)
            abort();
        if (strcmp(m.from, again.from) || strcmp(m.to, again.to) ||
            strcmp(m.topic, again.topic) || strcmp(m.json, again.json))
            abort();
        sl_free(again.json);
        sl_free(txt);
    }
    sl_free(m.json);
}

/* libFuzzer entry point: data is borrowed for the call. Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t base = sl_alloc_bytes();
    check_record(data, size);
    check_msg(data, size);
    if (sl_alloc_bytes() != base)
        abort();
    return 0;
}
