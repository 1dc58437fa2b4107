/*
 * Fuzz target: the stream manager proxy's untrusted text (smproxy_route.c):
 * the request path, a node's Location header, a `host=` value and a
 * forward target, each checked against a small fixed cluster. Nothing may
 * read out of bounds; an accepted forward target must name a node.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cluster/smproxy/smproxy_route.h"
#include "sluice/errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char text[4096 + 1];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    static sl_cluster_node_t nodes[2];
    memset(nodes, 0, sizeof nodes);
    strcpy(nodes[0].id, "n0");
    strcpy(nodes[0].role, "origin");
    strcpy(nodes[0].host, "127.0.0.1");
    nodes[0].http_port = 5080;
    strcpy(nodes[1].id, "n1");
    strcpy(nodes[1].role, "edge");
    strcpy(nodes[1].host, "::1");
    strcpy(nodes[1].private_host, "10.0.0.2");
    nodes[1].http_port = 5081;

    sl_smproxy_path_t p;
    if (sl_smproxy_parse_path(text, &p) == 0 && p.kind != SL_SMPROXY_FORWARD &&
        (!p.scope[0] || !p.name[0]))
        __builtin_trap();
    char out[1500];
    if (sl_smproxy_resource_path(text, "n0", out, sizeof out) == 0) {
        if (sl_smproxy_parse_path(out, &p) != 0 || !p.is_resource || strcmp(p.node, "n0") != 0)
            __builtin_trap();
    }
    (void)sl_smproxy_find_host(nodes, 2, text);
    const sl_cluster_node_t *nd = NULL;
    char url[2600];
    if (sl_smproxy_forward_target(text, nodes, 2, url, sizeof url, &nd) == 0 &&
        (!nd || strncmp(url, "http://", 7) != 0))
        __builtin_trap();
    return 0;
}
