/*
 * Unit tests of the stream manager's node choice (src/cluster/streammanager/
 * sm_choose.c): the weighted score, the rules of who may be named (alive,
 * INSERVICE, role, group, region, strict), the origin fallback, the group
 * limits, the spread of lookups between two reports, and the weights text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/streammanager/sm_choose.h"
#include "sluice/errors.h"

#define NOW 1000000ULL

static sl_cluster_node_t mk(const char *id, const char *role, const char *group,
                            const char *region)
{
    sl_cluster_node_t n;
    memset(&n, 0, sizeof n);
    snprintf(n.id, sizeof n.id, "%s", id);
    snprintf(n.role, sizeof n.role, "%s", role);
    snprintf(n.group, sizeof n.group, "%s", group);
    snprintf(n.region, sizeof n.region, "%s", region);
    snprintf(n.state, sizeof n.state, "INSERVICE");
    snprintf(n.host, sizeof n.host, "127.0.0.1");
    n.reported_ms = NOW - 500;
    return n;
}

static const sl_sm_weights_t W1 = {1, 1, 1, 1, 1, 1};

static sl_sm_view_t view(sl_cluster_node_t *nodes, size_t n, const char *origin)
{
    sl_sm_view_t v;
    memset(&v, 0, sizeof v);
    v.nodes = nodes;
    v.n_nodes = n;
    v.now_ms = NOW;
    v.node_timeout_ms = 3000;
    v.weights = &W1;
    v.origin_id = origin;
    return v;
}

static int choose1(const sl_sm_view_t *v, sl_sm_action_t a, const char *group, const char *region,
                   int strict, size_t *idx, const char **why)
{
    sl_sm_query_t q = {.action = a, .group = group, .path = "live/s", .region = region,
                       .strict = strict};
    size_t n = 0;
    int rc = sl_sm_choose(v, &q, idx, 1, &n, why);
    if (rc == 0)
        assert_int_equal(n, 1);
    return rc;
}

/* The score is the weighted mean of the metrics; lower wins; pending counts. */
static void test_score(void **state)
{
    (void)state;
    sl_cluster_node_t a = mk("a", "edge", "g", "");
    sl_sm_weights_t w = {0};
    assert_true(sl_sm_score(&a, &w, 0) == 0.0);
    w.cpu = 1;
    a.cpu_load = 40;
    assert_true(sl_sm_score(&a, &w, 0) == 40.0);
    w.connections = 1;
    a.connections = 20; /* no capacity: raw count */
    assert_true(sl_sm_score(&a, &w, 0) == 30.0);
    a.max_connections = 200; /* capacity: percent of it */
    assert_true(sl_sm_score(&a, &w, 0) == 25.0);
    assert_true(sl_sm_score(&a, &w, 20) > sl_sm_score(&a, &w, 0));
    /* Weights matter: with cpu weighted 3x, a busy-CPU node loses to a busy-connections one. */
    sl_cluster_node_t b = mk("b", "edge", "g", "");
    b.cpu_load = 80;
    sl_cluster_node_t c = mk("c", "edge", "g", "");
    c.connections = 80;
    sl_sm_weights_t wc = {.cpu = 3, .connections = 1};
    assert_true(sl_sm_score(&b, &wc, 0) > sl_sm_score(&c, &wc, 0));
    sl_sm_weights_t wn = {.cpu = 1, .connections = 3};
    assert_true(sl_sm_score(&b, &wn, 0) < sl_sm_score(&c, &wn, 0));
}

static void test_weights_parse(void **state)
{
    (void)state;
    sl_sm_weights_t w = {1, 1, 1, 1, 1, 1};
    assert_int_equal(sl_sm_weights_parse("streams=2, cpu=0.5 memory=0", &w), 0);
    assert_true(w.streams == 2 && w.cpu == 0.5 && w.memory == 0 && w.connections == 1);
    assert_int_equal(sl_sm_weights_parse("", &w), 0);
    assert_int_equal(sl_sm_weights_parse("disk=1", &w), SL_EINVAL);
    assert_int_equal(sl_sm_weights_parse("cpu=-1", &w), SL_EINVAL);
    assert_int_equal(sl_sm_weights_parse("cpu=nan", &w), SL_EINVAL);
    assert_int_equal(sl_sm_weights_parse("cpu=1001", &w), SL_EINVAL);
    assert_int_equal(sl_sm_weights_parse("cpu", &w), SL_EINVAL);
    assert_int_equal(sl_sm_weights_parse("cpu=", &w), SL_EINVAL);
    assert_int_equal(sl_sm_weights_parse("cpu=1x", &w), SL_EINVAL);
}

/* Publish: the least loaded origin (or all) in service; never an edge. */
static void test_publish(void **state)
{
    (void)state;
    sl_cluster_node_t n[4] = {mk("e1", "edge", "g", ""), mk("o1", "origin", "g", ""),
                              mk("o2", "origin", "g", ""), mk("x", "all", "g", "")};
    n[1].cpu_load = 50;
    n[2].cpu_load = 10;
    n[3].cpu_load = 30;
    sl_sm_view_t v = view(n, 4, NULL);
    size_t idx;
    const char *why;
    assert_int_equal(choose1(&v, SL_SM_PUBLISH, "g", NULL, 0, &idx, &why), 0);
    assert_string_equal(n[idx].id, "o2");
    /* A draining, faulted or silent node is never named. */
    strcpy(n[2].state, "SOFT_SUNSET");
    assert_int_equal(choose1(&v, SL_SM_PUBLISH, "g", NULL, 0, &idx, &why), 0);
    assert_string_equal(n[idx].id, "x");
    strcpy(n[3].state, "FAULT");
    assert_int_equal(choose1(&v, SL_SM_PUBLISH, "g", NULL, 0, &idx, &why), 0);
    assert_string_equal(n[idx].id, "o1");
    n[1].reported_ms = NOW - 3001;
    assert_int_equal(choose1(&v, SL_SM_PUBLISH, "g", NULL, 0, &idx, &why), SL_ENOTFOUND);
    /* Another group's origin does not count. */
    sl_cluster_node_t m[2] = {mk("o", "origin", "other", ""), mk("e", "edge", "g", "")};
    v = view(m, 2, NULL);
    assert_int_equal(choose1(&v, SL_SM_PUBLISH, "g", NULL, 0, &idx, &why), SL_ENOTFOUND);
}

/* Publish of a live stream is refused; of a stream whose origin died, allowed. */
static void test_publish_live(void **state)
{
    (void)state;
    sl_cluster_node_t n[2] = {mk("o1", "origin", "g", ""), mk("o2", "origin", "g", "")};
    sl_sm_view_t v = view(n, 2, "o1");
    size_t idx;
    const char *why;
    assert_int_equal(choose1(&v, SL_SM_PUBLISH, "g", NULL, 0, &idx, &why), SL_EDENIED);
    n[0].reported_ms = NOW - 10000;
    assert_int_equal(choose1(&v, SL_SM_PUBLISH, "g", NULL, 0, &idx, &why), 0);
    assert_string_equal(n[idx].id, "o2");
}

/* Subscribe: an edge; 404 when not live; the origin when the group has no edge. */
static void test_subscribe(void **state)
{
    (void)state;
    sl_cluster_node_t n[3] = {mk("o", "origin", "g", ""), mk("e1", "edge", "g", ""),
                              mk("e2", "edge", "g", "")};
    n[1].subscribers = 10;
    sl_sm_view_t v = view(n, 3, NULL);
    size_t idx;
    const char *why;
    assert_int_equal(choose1(&v, SL_SM_SUBSCRIBE, "g", NULL, 0, &idx, &why), SL_ENOTFOUND);
    v.origin_id = "o";
    assert_int_equal(choose1(&v, SL_SM_SUBSCRIBE, "g", NULL, 0, &idx, &why), 0);
    assert_string_equal(n[idx].id, "e2");
    /* Both edges out of service: the origin serves. */
    strcpy(n[1].state, "SOFT_SUNSET");
    n[2].reported_ms = 0;
    assert_int_equal(choose1(&v, SL_SM_SUBSCRIBE, "g", NULL, 0, &idx, &why), 0);
    assert_string_equal(n[idx].id, "o");
    /* ...unless it drains too. */
    strcpy(n[0].state, "SOFT_SUNSET");
    assert_int_equal(choose1(&v, SL_SM_SUBSCRIBE, "g", NULL, 0, &idx, &why), SL_ENOTFOUND);
    /* A dead origin: the stream is not live. */
    strcpy(n[0].state, "INSERVICE");
    n[0].reported_ms = 0;
    assert_int_equal(choose1(&v, SL_SM_SUBSCRIBE, "g", NULL, 0, &idx, &why), SL_ENOTFOUND);
}

/* Region: preferred, or only it when strict. */
static void test_region(void **state)
{
    (void)state;
    sl_cluster_node_t n[3] = {mk("o", "origin", "g", "us"), mk("eu", "edge", "g", "eu"),
                              mk("us", "edge", "g", "us")};
    n[1].subscribers = 100; /* the eu edge is busier */
    sl_sm_view_t v = view(n, 3, "o");
    size_t idx;
    const char *why;
    assert_int_equal(choose1(&v, SL_SM_SUBSCRIBE, "g", "eu", 0, &idx, &why), 0);
    assert_string_equal(n[idx].id, "eu");
    assert_int_equal(choose1(&v, SL_SM_SUBSCRIBE, "g", "asia", 0, &idx, &why), 0);
    assert_string_equal(n[idx].id, "us");
    assert_int_equal(choose1(&v, SL_SM_SUBSCRIBE, "g", "asia", 1, &idx, &why), SL_ENOTFOUND);
    assert_int_equal(choose1(&v, SL_SM_PUBLISH, "g", "eu", 1, &idx, &why), SL_EDENIED);
}

/* maxPublishers / maxSubscribers: SL_EBUSY when reached. */
static void test_limits(void **state)
{
    (void)state;
    sl_cluster_node_t n[2] = {mk("o", "origin", "g", ""), mk("e", "edge", "g", "")};
    sl_sm_view_t v = view(n, 2, NULL);
    size_t idx;
    const char *why;
    v.max_publishers = 2;
    v.n_publishers = 2;
    assert_int_equal(choose1(&v, SL_SM_PUBLISH, "g", NULL, 0, &idx, &why), SL_EBUSY);
    v.n_publishers = 1;
    assert_int_equal(choose1(&v, SL_SM_PUBLISH, "g", NULL, 0, &idx, &why), 0);
    v.origin_id = "o";
    v.max_subscribers = 1;
    v.n_subscribers = 1;
    assert_int_equal(choose1(&v, SL_SM_SUBSCRIBE, "g", NULL, 0, &idx, &why), SL_EBUSY);
    v.n_subscribers = 0;
    assert_int_equal(choose1(&v, SL_SM_SUBSCRIBE, "g", NULL, 0, &idx, &why), 0);
}

/* Equal edges: lookups alternate (rotation, then pending placements). */
static void test_spread(void **state)
{
    (void)state;
    sl_cluster_node_t n[3] = {mk("o", "origin", "g", ""), mk("e1", "edge", "g", ""),
                              mk("e2", "edge", "g", "")};
    uint32_t pending[3] = {0, 0, 0};
    sl_sm_view_t v = view(n, 3, "o");
    v.pending = pending;
    int seen[3] = {0, 0, 0};
    for (unsigned i = 0; i < 10; i++) {
        size_t idx;
        const char *why;
        v.rotation = 0; /* no rotation: the pending counts alone spread */
        assert_int_equal(choose1(&v, SL_SM_SUBSCRIBE, "g", NULL, 0, &idx, &why), 0);
        pending[idx]++;
        seen[idx]++;
    }
    assert_int_equal(seen[0], 0);
    assert_int_equal(seen[1], 5);
    assert_int_equal(seen[2], 5);
    /* And with nothing pending, the rotation alone turns equal scores. */
    v.pending = NULL;
    int first[3] = {0, 0, 0};
    for (unsigned i = 0; i < 4; i++) {
        size_t idx;
        const char *why;
        v.rotation = i;
        assert_int_equal(choose1(&v, SL_SM_SUBSCRIBE, "g", NULL, 0, &idx, &why), 0);
        first[idx]++;
    }
    assert_true(first[1] > 0 && first[2] > 0);
}

/* endpoints=N: up to N, best first. */
static void test_many(void **state)
{
    (void)state;
    sl_cluster_node_t n[4] = {mk("o", "origin", "g", ""), mk("e1", "edge", "g", ""),
                              mk("e2", "edge", "g", ""), mk("e3", "edge", "g", "")};
    n[1].cpu_load = 30;
    n[2].cpu_load = 10;
    n[3].cpu_load = 20;
    sl_sm_view_t v = view(n, 4, "o");
    sl_sm_query_t q = {.action = SL_SM_SUBSCRIBE, .group = "g", .path = "live/s"};
    size_t idx[8], got;
    const char *why;
    assert_int_equal(sl_sm_choose(&v, &q, idx, 8, &got, &why), 0);
    assert_int_equal(got, 3);
    assert_string_equal(n[idx[0]].id, "e2");
    assert_string_equal(n[idx[1]].id, "e3");
    assert_string_equal(n[idx[2]].id, "e1");
    assert_int_equal(sl_sm_choose(&v, &q, idx, 0, &got, &why), SL_EINVAL);
}

/* "default" means the one group when only one exists. */
static void test_group_resolve(void **state)
{
    (void)state;
    sl_cluster_node_t n[2] = {mk("o", "origin", "main", ""), mk("e", "edge", "main", "")};
    sl_sm_view_t v = view(n, 2, NULL);
    assert_string_equal(sl_sm_group_resolve(&v, "default"), "main");
    assert_string_equal(sl_sm_group_resolve(&v, NULL), "main");
    assert_string_equal(sl_sm_group_resolve(&v, "main"), "main");
    assert_string_equal(sl_sm_group_resolve(&v, "other"), "other");
    strcpy(n[1].group, "second");
    assert_string_equal(sl_sm_group_resolve(&v, "default"), "default");
    v.n_nodes = 0;
    assert_string_equal(sl_sm_group_resolve(&v, NULL), "default");
}

/* Transcode (ABR, 1.2): a transcoder or all-in-one node; none in service is EBUSY (503). */
static void test_transcode(void **state)
{
    (void)state;
    sl_cluster_node_t n[4] = {mk("o1", "origin", "g", ""), mk("t1", "transcoder", "g", ""),
                              mk("t2", "transcoder", "g", ""), mk("e1", "edge", "g", "")};
    n[1].cpu_load = 90;
    sl_sm_view_t v = view(n, 4, NULL);
    size_t idx;
    const char *why;
    assert_int_equal(choose1(&v, SL_SM_TRANSCODE, "g", NULL, 0, &idx, &why), 0);
    assert_int_equal(idx, 2); /* the idler transcoder, never the origin */
    snprintf(n[2].state, sizeof n[2].state, "SOFT_SUNSET");
    assert_int_equal(choose1(&v, SL_SM_TRANSCODE, "g", NULL, 0, &idx, &why), 0);
    assert_int_equal(idx, 1);
    n[1].reported_ms = NOW - 10000; /* dead */
    assert_int_equal(choose1(&v, SL_SM_TRANSCODE, "g", NULL, 0, &idx, &why), SL_EBUSY);
    assert_non_null(strstr(why, "transcoder"));
    /* an all-in-one node transcodes too */
    snprintf(n[0].role, sizeof n[0].role, "all");
    assert_int_equal(choose1(&v, SL_SM_TRANSCODE, "g", NULL, 0, &idx, &why), 0);
    assert_int_equal(idx, 0);
    /* the level-1 variant already live: refused as any broadcast */
    sl_sm_view_t live = view(n, 4, "o1");
    assert_int_equal(choose1(&live, SL_SM_TRANSCODE, "g", NULL, 0, &idx, &why), SL_EDENIED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transcode),
        cmocka_unit_test(test_score),         cmocka_unit_test(test_weights_parse),
        cmocka_unit_test(test_publish),       cmocka_unit_test(test_publish_live),
        cmocka_unit_test(test_subscribe),     cmocka_unit_test(test_region),
        cmocka_unit_test(test_limits),        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_many),          cmocka_unit_test(test_group_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
