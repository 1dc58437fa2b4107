/*
 * The stream manager proxy's pure parts (smproxy_route.c): its paths
 * (endpoints, resources naming their node, WS, forward, every refusal),
 * the rewrite of a node's Location into a proxied resource, `host=`
 * lookups, the forward proxy's SSRF check (only a node's /api/ on its own
 * address and port), and the fallback choice of a node.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/smproxy/smproxy_route.h"
#include "sluice/errors.h"

static void test_paths(void **state)
{
    (void)state;
    sl_smproxy_path_t p;
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/whip/live/s1", &p), 0);
    assert_int_equal(p.kind, SL_SMPROXY_WHIP);
    assert_int_equal(p.is_resource, 0);
    assert_string_equal(p.scope, "live");
    assert_string_equal(p.name, "s1");
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/whep/live/room1/s1", &p), 0);
    assert_int_equal(p.kind, SL_SMPROXY_WHEP);
    assert_string_equal(p.scope, "live/room1");
    assert_string_equal(p.name, "s1");
    /* resources name their node */
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/whip/resource/node-a/live/abc123", &p), 0);
    assert_int_equal(p.is_resource, 1);
    assert_string_equal(p.node, "node-a");
    assert_string_equal(p.scope, "live");
    assert_string_equal(p.name, "abc123");
    /* an app named "resource" keeps its endpoints */
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/whip/resource/s1", &p), 0);
    assert_int_equal(p.is_resource, 0);
    assert_string_equal(p.scope, "resource");
    /* WS and forward */
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/ws/publish/live/s1", &p), 0);
    assert_int_equal(p.kind, SL_SMPROXY_WS);
    assert_int_equal(p.publish, 1);
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/ws/subscribe/live/s1", &p), 0);
    assert_int_equal(p.publish, 0);
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/forward/", &p), 0);
    assert_int_equal(p.kind, SL_SMPROXY_FORWARD);
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/forward", &p), 0);
    /* refusals */
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxyx/whip/live/s1", &p), SL_EDECLINED);
    assert_int_equal(sl_smproxy_parse_path("/live/whip/endpoint/s1", &p), SL_EDECLINED);
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/rtmp/live/s1", &p), SL_ENOTFOUND);
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/forward/x", &p), SL_ENOTFOUND);
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/whip/s1", &p), SL_EINVAL);
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/whip/live/", &p), SL_EINVAL);
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/whip//s1", &p), SL_EINVAL);
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/whip/../s1", &p), SL_EINVAL);
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/whip/live/a b", &p), SL_EINVAL);
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/ws/play/live/s1", &p), SL_EINVAL);
    assert_int_equal(sl_smproxy_parse_path("/as/v1/proxy/whip/resource/../live/t", &p), SL_EINVAL);
    char longp[2048];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    memcpy(longp, "/as/v1/proxy/whip/", 18);
    longp[100] = '/';
    assert_int_equal(sl_smproxy_parse_path(longp, &p), SL_EINVAL);
}

static void test_location(void **state)
{
    (void)state;
    char out[512];
    assert_int_equal(sl_smproxy_resource_path("/live/whip/resource/abc", "n1", out, sizeof out), 0);
    assert_string_equal(out, "/as/v1/proxy/whip/resource/n1/live/abc");
    assert_int_equal(sl_smproxy_resource_path("http://10.0.0.5:5080/live/room/whep/resource/xyz?x=1",
                                              "n2", out, sizeof out), 0);
    assert_string_equal(out, "/as/v1/proxy/whep/resource/n2/live/room/xyz");
    /* and it parses back to the same node, scope and token */
    sl_smproxy_path_t p;
    assert_int_equal(sl_smproxy_parse_path(out, &p), 0);
    assert_int_equal(p.is_resource, 1);
    assert_string_equal(p.node, "n2");
    assert_string_equal(p.scope, "live/room");
    assert_string_equal(p.name, "xyz");
    assert_int_equal(sl_smproxy_resource_path("/live/whip/endpoint/abc", "n1", out, sizeof out), SL_EINVAL);
    assert_int_equal(sl_smproxy_resource_path("/whip/resource/abc", "n1", out, sizeof out), SL_EINVAL);
    assert_int_equal(sl_smproxy_resource_path("/live/rtmp/resource/abc", "n1", out, sizeof out), SL_EINVAL);
    assert_int_equal(sl_smproxy_resource_path("/live/whip/resource/", "n1", out, sizeof out), SL_EINVAL);
    assert_int_equal(sl_smproxy_resource_path("/live/whip/resource/abc", "a/b", out, sizeof out), SL_EINVAL);
    assert_int_equal(sl_smproxy_resource_path("/live/whip/resource/abc", "n1", out, 10), SL_ETOOBIG);
}

static sl_cluster_node_t g_nodes[4];

static void setup_nodes(void)
{
    memset(g_nodes, 0, sizeof g_nodes);
    const char *ids[] = {"sm", "origin1", "edge1", "edge2"};
    const char *roles[] = {"all", "origin", "edge", "edge"};
    for (int i = 0; i < 4; i++) {
        strcpy(g_nodes[i].id, ids[i]);
        strcpy(g_nodes[i].role, roles[i]);
        strcpy(g_nodes[i].group, "default");
        strcpy(g_nodes[i].state, "INSERVICE");
        strcpy(g_nodes[i].host, "127.0.0.1");
        g_nodes[i].http_port = (uint16_t)(5080 + i);
        g_nodes[i].connections = (uint32_t)(10 - i);
    }
    strcpy(g_nodes[3].private_host, "10.1.0.4");
    strcpy(g_nodes[2].region, "eu");
}

static void test_find_host(void **state)
{
    (void)state;
    setup_nodes();
    assert_ptr_equal(sl_smproxy_find_host(g_nodes, 4, "edge1"), &g_nodes[2]);
    assert_ptr_equal(sl_smproxy_find_host(g_nodes, 4, "127.0.0.1:5081"), &g_nodes[1]);
    assert_ptr_equal(sl_smproxy_find_host(g_nodes, 4, "10.1.0.4:5083"), &g_nodes[3]);
    assert_ptr_equal(sl_smproxy_find_host(g_nodes, 4, "10.1.0.4"), &g_nodes[3]);
    assert_null(sl_smproxy_find_host(g_nodes, 4, "127.0.0.1"));      /* ambiguous */
    assert_null(sl_smproxy_find_host(g_nodes, 4, "127.0.0.1:6000")); /* no node there */
    assert_null(sl_smproxy_find_host(g_nodes, 4, "169.254.169.254"));
    assert_null(sl_smproxy_find_host(g_nodes, 4, "127.0.0.1:x"));
}

static void test_forward_ssrf(void **state)
{
    (void)state;
    setup_nodes();
    char out[2200];
    const sl_cluster_node_t *nd;
    assert_int_equal(sl_smproxy_forward_target("http://127.0.0.1:5081/api/v1/server?accessToken=x",
                                               g_nodes, 4, out, sizeof out, &nd), 0);
    assert_ptr_equal(nd, &g_nodes[1]);
    assert_string_equal(out, "http://127.0.0.1:5081/api/v1/server?accessToken=x");
    /* the private address is used even when the public one is named */
    assert_int_equal(sl_smproxy_forward_target("http://127.0.0.1:5083/api/v1/applications",
                                               g_nodes, 4, out, sizeof out, &nd), 0);
    assert_string_equal(out, "http://10.1.0.4:5083/api/v1/applications");
    /* never elsewhere */
    const char *denied[] = {
        "http://127.0.0.1:6379/api/v1/x",        /* a port that is no node's HTTP */
        "http://169.254.169.254/api/latest",     /* not a node */
        "http://127.0.0.1:5081/live/s1.m3u8",    /* not the Server API */
        "http://127.0.0.1:5081/api/../admin",    /* dot segment */
        "http://127.0.0.1:5081/api/%2e%2e/x",    /* encoded dot segment */
        "https://127.0.0.1:5081/api/v1/x",       /* nodes speak plain HTTP */
        "file:///etc/passwd",
        "gopher://127.0.0.1:5081/api/",
        "http://localhost:5081/api/v1/x",        /* a name that is not a node's */
    };
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++)
        assert_int_equal(sl_smproxy_forward_target(denied[i], g_nodes, 4, out, sizeof out, &nd), SL_EDENIED);
    const char *bad[] = {
        "http://user@127.0.0.1:5081/api/v1/x",   /* user info */
        "http://127.0.0.1:5081",                 /* no path */
        "http://127.0.0.1:99999/api/",
        "http://127.0.0.1:5081/api/v1/x y",
        "http://127.0.0.1:5081/api/v1/x\r\nHost: a",
        "http://[::1/api/",
        "http://127.0.0.1:5081/api/#x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sl_smproxy_forward_target(bad[i], g_nodes, 4, out, sizeof out, &nd), SL_EINVAL);
    assert_null(nd);
}

static void test_fallback(void **state)
{
    (void)state;
    setup_nodes();
    const char *why = NULL;
    sl_sm_query_t q = {.action = SL_SM_PUBLISH, .path = "live/s1"};
    /* publish: the least loaded origin ("all" counts) */
    assert_ptr_equal(sl_smproxy_fallback_choose(g_nodes, 4, &q, NULL, 0, &why), &g_nodes[1]);
    strcpy(g_nodes[1].state, "SOFT_SUNSET"); /* draining: no new publisher */
    assert_ptr_equal(sl_smproxy_fallback_choose(g_nodes, 4, &q, NULL, 0, &why), &g_nodes[0]);
    q.group = "other";
    assert_null(sl_smproxy_fallback_choose(g_nodes, 4, &q, NULL, 0, &why));
    assert_non_null(why);
    /* subscribe: a serving edge before the origin; the region first */
    setup_nodes();
    const char *serving[] = {"origin1", "edge1", "edge2"};
    sl_sm_query_t s = {.action = SL_SM_SUBSCRIBE, .path = "live/s1"};
    assert_ptr_equal(sl_smproxy_fallback_choose(g_nodes, 4, &s, serving, 3, &why), &g_nodes[3]);
    s.region = "eu";
    assert_ptr_equal(sl_smproxy_fallback_choose(g_nodes, 4, &s, serving, 3, &why), &g_nodes[2]);
    s.region = "us";
    assert_ptr_equal(sl_smproxy_fallback_choose(g_nodes, 4, &s, serving, 3, &why), &g_nodes[3]);
    s.strict = 1;
    assert_null(sl_smproxy_fallback_choose(g_nodes, 4, &s, serving, 3, &why));
    s.region = NULL;
    s.strict = 0;
    assert_ptr_equal(sl_smproxy_fallback_choose(g_nodes, 4, &s, serving, 1, &why), &g_nodes[1]);
    assert_null(sl_smproxy_fallback_choose(g_nodes, 4, &s, NULL, 0, &why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_location),
        cmocka_unit_test(test_find_host),
        cmocka_unit_test(test_forward_ssrf),
        cmocka_unit_test(test_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
