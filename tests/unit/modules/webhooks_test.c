/*
 * Webhooks, the pure rules a receiver depends on: Red5 event names and the
 * names webhooks.events accepts, the guid (ordering key), the username
 * taken from the query, delivery ids, the exact payload fields, the
 * X-Sluice-Signature scheme against an independently computed HMAC, and
 * the bounds of the backoff with full jitter. The outbox, threads and HTTP
 * are exercised end to end by tests/e2e/test_webhooks.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "app/events.h"
#include "base/alloc.h"
#include "modules/webhooks/webhooks.h"
#include "sluice/errors.h"

static void test_event_names(void **state)
{
    (void)state;
    assert_string_equal(sl__webhooks_event_name(SL_EV_CONNECT), "connection-connect");
    assert_string_equal(sl__webhooks_event_name(SL_EV_DISCONNECT), "connection-disconnect");
    assert_string_equal(sl__webhooks_event_name(SL_EV_PUBLISH), "stream-published");
    assert_string_equal(sl__webhooks_event_name(SL_EV_UNPUBLISH), "stream-unpublished");
    assert_string_equal(sl__webhooks_event_name(SL_EV_PLAY), "stream-subscribed");
    assert_string_equal(sl__webhooks_event_name(SL_EV_PLAY_STOP), "stream-unsubscribed");
    assert_string_equal(sl__webhooks_event_name(SL_EV_RECORD_START), "video-started");
    assert_string_equal(sl__webhooks_event_name(SL_EV_RECORD_DONE), "video-saved");
    assert_string_equal(sl__webhooks_event_name(SL_EV_UPLOAD_DONE), "upload-done");
    assert_string_equal(sl__webhooks_event_name(SL_EV_UPLOAD_FAILED), "upload-failed");
    assert_string_equal(sl__webhooks_event_name(SL_EV_SO_UPDATE), "so-update");
    assert_string_equal(sl__webhooks_event_name(SL_EV_STREAM_IDLE), "stream-idle");
    assert_string_equal(sl__webhooks_event_name(SL_EV_NODE_DOWN), "node-down");
    assert_string_equal(sl__webhooks_event_name(SL_EV_APP_START), "app-start");
    assert_string_equal(sl__webhooks_event_name(SL_EV_ROOM_STOP), "room-stop");
    assert_string_equal(sl__webhooks_event_name(SL_EV_COUNT), "unknown");
    /* Every name we send parses back to its event. */
    for (int t = 0; t < SL_EV_COUNT; t++) {
        assert_int_equal(sl__webhooks_event_parse(sl__webhooks_event_name(t)), t);
        assert_int_equal(sl__webhooks_event_parse(sl_event_name(t)), t);
    }
}

static void test_event_parse(void **state)
{
    (void)state;
    assert_int_equal(sl__webhooks_event_parse("stream-published"), SL_EV_PUBLISH);
    assert_int_equal(sl__webhooks_event_parse("STREAM-PUBLISHED"), SL_EV_PUBLISH);
    assert_int_equal(sl__webhooks_event_parse("publish"), SL_EV_PUBLISH);
    assert_int_equal(sl__webhooks_event_parse("play_stop"), SL_EV_PLAY_STOP);
    assert_int_equal(sl__webhooks_event_parse("play-stop"), SL_EV_PLAY_STOP);
    assert_int_equal(sl__webhooks_event_parse("upload_done"), SL_EV_UPLOAD_DONE);
    assert_int_equal(sl__webhooks_event_parse("upload-done"), SL_EV_UPLOAD_DONE);
    assert_int_equal(sl__webhooks_event_parse("video-saved"), SL_EV_RECORD_DONE);
    assert_int_equal(sl__webhooks_event_parse("thumb-created"), -1);
    assert_int_equal(sl__webhooks_event_parse(""), -1);
    assert_int_equal(sl__webhooks_event_parse(NULL), -1);

    uint32_t mask = 0;
    char bad[32];
    /* Nothing listed: every event up to record_deleted but rpc (the scope
     * lifetimes of ABI 1.2 and rpc, one per call, are sent only when named,
     * so the default stream is as it was). */
    const uint32_t before_scopes = ((1u << SL_EV_APP_START) - 1) & ~((1u << SL_EV_RPC) | (1u << SL_EV_SO_UPDATE));
    assert_int_equal(sl__webhooks_parse_events("", &mask, bad, sizeof bad), 0);
    assert_int_equal(mask, before_scopes);
    assert_int_equal(sl__webhooks_parse_events(NULL, &mask, bad, sizeof bad), 0);
    assert_int_equal(mask, before_scopes);
    assert_int_equal(sl__webhooks_parse_events("app-start,room_stop", &mask, bad, sizeof bad), 0);
    assert_int_equal(mask, (1u << SL_EV_APP_START) | (1u << SL_EV_ROOM_STOP));
    assert_int_equal(sl__webhooks_parse_events(" stream-published, unpublish ,video-saved", &mask,
                                               bad, sizeof bad), 0);
    assert_int_equal(mask, (1u << SL_EV_PUBLISH) | (1u << SL_EV_UNPUBLISH) |
                               (1u << SL_EV_RECORD_DONE));
    assert_int_equal(sl__webhooks_parse_events("publish,bogus-event", &mask, bad, sizeof bad),
                     SL_EINVAL);
    assert_string_equal(bad, "bogus-event");
    assert_int_equal(mask, 0);
}

static sl_event_t mkevent(sl_event_type_t type)
{
    sl_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.id = 42;
    ev.time_ms = 1700000000123ull;
    ev.session_id = "S9YD7FMFXK9WG";
    ev.proto = "rtmp";
    ev.remote_addr = "127.0.0.1";
    ev.remote_port = 50000;
    ev.app = "live/room1";
    ev.stream = "cam1";
    ev.query = "username=alice%20b&password=secret";
    ev.bytes_in = 1000;
    ev.bytes_out = 2000;
    ev.duration_ms = 3000;
    return ev;
}

static void test_guid_and_username(void **state)
{
    (void)state;
    char g[64];
    sl_event_t ev = mkevent(SL_EV_CONNECT);
    sl__webhooks_guid(&ev, g, sizeof g);
    assert_string_equal(g, "S9YD7FMFXK9WG");
    ev.type = SL_EV_DISCONNECT;
    sl__webhooks_guid(&ev, g, sizeof g);
    assert_string_equal(g, "S9YD7FMFXK9WG");
    ev.type = SL_EV_PUBLISH;
    sl__webhooks_guid(&ev, g, sizeof g);
    assert_string_equal(g, "live/room1/cam1");
    ev.type = SL_EV_PLAY_STOP;
    sl__webhooks_guid(&ev, g, sizeof g);
    assert_string_equal(g, "live/room1/cam1");
    ev.stream = NULL;
    ev.type = SL_EV_RPC;
    sl__webhooks_guid(&ev, g, sizeof g);
    assert_string_equal(g, "S9YD7FMFXK9WG");
    ev.type = SL_EV_ROOM_START; /* a scope's lifetime is keyed by the scope, not the client */
    sl__webhooks_guid(&ev, g, sizeof g);
    assert_string_equal(g, "live/room1");
    ev.type = SL_EV_RPC;
    ev.session_id = NULL;
    sl__webhooks_guid(&ev, g, sizeof g);
    assert_string_equal(g, "live/room1");
    ev.app = NULL;
    sl__webhooks_guid(&ev, g, sizeof g);
    assert_string_equal(g, "");
    /* Truncation keeps a terminated string. */
    ev = mkevent(SL_EV_PUBLISH);
    assert_int_equal(sl__webhooks_guid(&ev, g, 5), 4);
    assert_string_equal(g, "live");

    char u[32];
    sl__webhooks_username("username=alice%20b&password=secret", u, sizeof u);
    assert_string_equal(u, "alice b");
    sl__webhooks_username("token=x", u, sizeof u);
    assert_string_equal(u, "");
    sl__webhooks_username(NULL, u, sizeof u);
    assert_string_equal(u, "");
}

static void test_delivery_id(void **state)
{
    (void)state;
    char id[SL_WEBHOOKS_ID_MAX];
    assert_int_equal(sl__webhooks_delivery_id(id, sizeof id, "", 42, 0), 0);
    assert_string_equal(id, "sluice-42-0");
    assert_int_equal(sl__webhooks_delivery_id(id, sizeof id, NULL, 7, 2), 0);
    assert_string_equal(id, "sluice-7-2");
    assert_int_equal(sl__webhooks_delivery_id(id, sizeof id, "edge-1", 18446744073709551615ull, 3),
                     0);
    assert_string_equal(id, "edge-1-18446744073709551615-3");
    assert_int_equal(sl__webhooks_delivery_id(id, 8, "node", 42, 0), SL_ETOOBIG);
}

static void test_payload_fields(void **state)
{
    (void)state;
    sl_event_t ev = mkevent(SL_EV_PUBLISH);
    char *body = sl__webhooks_payload(&ev, "node-a", "node-a-99-1", 99);
    assert_non_null(body);
    json_error_t jerr;
    json_t *o = json_loads(body, 0, &jerr);
    assert_non_null(o);
    /* Red5's fields. */
    assert_string_equal(json_string_value(json_object_get(o, "event")), "stream-published");
    assert_string_equal(json_string_value(json_object_get(o, "guid")), "live/room1/cam1");
    assert_string_equal(json_string_value(json_object_get(o, "username")), "alice b");
    assert_string_equal(json_string_value(json_object_get(o, "userAgent")), "");
    assert_string_equal(json_string_value(json_object_get(o, "clusterNodeType")), "TYPE_OFF");
    assert_int_equal(json_integer_value(json_object_get(o, "timestamp")), 1700000000123ll);
    assert_string_equal(json_string_value(json_object_get(o, "nodePublicIp")), "node-a");
    /* sluice's. */
    assert_string_equal(json_string_value(json_object_get(o, "id")), "node-a-99-1");
    assert_string_equal(json_string_value(json_object_get(o, "sluice_event")), "publish");
    assert_int_equal(json_integer_value(json_object_get(o, "event_seq")), 99);
    assert_int_equal(json_integer_value(json_object_get(o, "time")), 1700000000123ll);
    assert_string_equal(json_string_value(json_object_get(o, "node")), "node-a");
    assert_string_equal(json_string_value(json_object_get(o, "app")), "live/room1");
    assert_string_equal(json_string_value(json_object_get(o, "stream")), "cam1");
    assert_string_equal(json_string_value(json_object_get(o, "session")), "S9YD7FMFXK9WG");
    assert_string_equal(json_string_value(json_object_get(o, "protocol")), "rtmp");
    assert_string_equal(json_string_value(json_object_get(o, "remote_address")), "127.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(o, "remote_port")), 50000);
    assert_true(json_is_null(json_object_get(o, "reason")));
    assert_string_equal(json_string_value(json_object_get(o, "query")),
                        "username=alice%20b&password=***"); /* masked by default */
    assert_true(json_is_null(json_object_get(o, "path")));
    assert_int_equal(json_integer_value(json_object_get(o, "bytes_in")), 1000);
    assert_int_equal(json_integer_value(json_object_get(o, "bytes_out")), 2000);
    assert_int_equal(json_integer_value(json_object_get(o, "duration_ms")), 3000);
    assert_int_equal(json_object_size(o), 24);
    /* Red5's fields come first, in Red5's order. */
    assert_memory_equal(body, "{\"event\":\"stream-published\",\"guid\":", 35);
    json_decref(o);
    sl_free(body);

    /* No node name: "" for Red5, null for sluice; a recording's path. */
    ev = mkevent(SL_EV_RECORD_DONE);
    ev.path = "/data/live/streams/cam1.flv";
    ev.query = NULL;
    body = sl__webhooks_payload(&ev, "", "sluice-1-0", 1);
    assert_non_null(body);
    o = json_loads(body, 0, &jerr);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "event")), "video-saved");
    assert_string_equal(json_string_value(json_object_get(o, "nodePublicIp")), "");
    assert_true(json_is_null(json_object_get(o, "node")));
    assert_string_equal(json_string_value(json_object_get(o, "username")), "");
    assert_string_equal(json_string_value(json_object_get(o, "path")),
                        "/data/live/streams/cam1.flv");
    json_decref(o);
    sl_free(body);
}

static void test_payload_nomem(void **state)
{
    (void)state;
    sl_event_t ev = mkevent(SL_EV_PUBLISH);
    int64_t blocks = sl_alloc_blocks();
    if (!sl_alloc_fail_at(1, 1))
        skip();
    char *body = sl__webhooks_payload(&ev, NULL, "sluice-1-0", 1);
    sl_alloc_fail_at(0, 0);
    assert_null(body);
    assert_int_equal(sl_alloc_blocks(), blocks);
}

/* Cluster mode: Red5's clusterNodeType by role, nodePublicIp the node's host, cluster_node. */
static void test_payload_cluster(void **state)
{
    (void)state;
    sl_event_t ev = mkevent(SL_EV_PUBLISH);
    assert_string_equal(sl__webhooks_cluster_type("origin"), "TYPE_ORIGIN");
    assert_string_equal(sl__webhooks_cluster_type("edge"), "TYPE_EDGE");
    assert_string_equal(sl__webhooks_cluster_type("relay"), "TYPE_RELAY");
    assert_string_equal(sl__webhooks_cluster_type("transcoder"), "TYPE_TRANSCODER");
    assert_string_equal(sl__webhooks_cluster_type("all"), "TYPE_AUTO");
    sl__webhooks_cluster_t cl = {.type = "TYPE_EDGE", .id = "edge-7", .host = "203.0.113.9"};
    char *body = sl__webhooks_payload_cluster(&ev, "", "sluice-1-0", 1, &cl, 0);
    assert_non_null(body);
    json_t *o = json_loads(body, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "clusterNodeType")), "TYPE_EDGE");
    assert_string_equal(json_string_value(json_object_get(o, "nodePublicIp")), "203.0.113.9");
    assert_string_equal(json_string_value(json_object_get(o, "cluster_node")), "edge-7");
    json_decref(o);
    sl_free(body);
    /* Standalone (empty type): as before, no cluster_node. */
    sl__webhooks_cluster_t none = {0};
    body = sl__webhooks_payload_cluster(&ev, "", "sluice-1-0", 1, &none, 0);
    o = json_loads(body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "clusterNodeType")), "TYPE_OFF");
    assert_null(json_object_get(o, "cluster_node"));
    json_decref(o);
    sl_free(body);
}

/* The query: secrets masked (every value of a secret-named key, a JWT, URL userinfo),
 * other values kept; webhooks.raw_query sends it as the client did. */
static void test_payload_query_masking(void **state)
{
    (void)state;
    sl_event_t ev = mkevent(SL_EV_PUBLISH);
    ev.query = "username=bob&token=abc&x=1&api_key=k&t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig&"
               "password=";
    char *body = sl__webhooks_payload_cluster(&ev, "", "sluice-1-0", 1, NULL, 0);
    json_t *o = json_loads(body, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "query")),
                        "username=bob&token=***&x=1&api_key=***&t=***&password=");
    assert_string_equal(json_string_value(json_object_get(o, "username")), "bob");
    json_decref(o);
    sl_free(body);
    body = sl__webhooks_payload_cluster(&ev, "", "sluice-1-0", 1, NULL, 1);
    o = json_loads(body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "query")), ev.query);
    json_decref(o);
    sl_free(body);
}

static void test_signature(void **state)
{
    (void)state;
    char sig[SL_WEBHOOKS_SIG_LEN + 1];
    /* Vector computed with Python's hmac module:
     * hmac.new(b"whsec_test", b'1700000000.{"event":"stream-published"}',
     *          hashlib.sha256).hexdigest() */
    const char *body = "{\"event\":\"stream-published\"}";
    assert_int_equal(sl__webhooks_sign("whsec_test", "1700000000", body, strlen(body), sig), 0);
    assert_string_equal(sig, "sha256=12b1fe5af14a41ada0f48a96aacec2eb01c2363642bcc84871a1952fbe1d3af9");
    assert_int_equal(strlen(sig), SL_WEBHOOKS_SIG_LEN);
    /* RFC 4231 test case 7 (131-byte key of 0xaa), whose data contains the
     * first "." so it splits into our timestamp + "." + body. */
    char key[132];
    memset(key, 0xaa, 131);
    key[131] = '\0';
    const char *ts7 = "This is a test using a larger than block-size key and a larger than "
                      "block-size data";
    const char *body7 = " The key needs to be hashed before being used by the HMAC algorithm.";
    assert_int_equal(sl__webhooks_sign(key, ts7, body7, strlen(body7), sig), 0);
    assert_string_equal(sig, "sha256=9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
    assert_int_equal(sl__webhooks_sign("whsec_test", "1700000000", body, strlen(body), sig), 0);
    /* The timestamp is covered: another timestamp, another signature. */
    char sig2[SL_WEBHOOKS_SIG_LEN + 1];
    assert_int_equal(sl__webhooks_sign("whsec_test", "1700000001", body, strlen(body), sig2), 0);
    assert_string_not_equal(sig, sig2);
    /* And the body: one byte more changes it. */
    assert_int_equal(sl__webhooks_sign("whsec_test", "1700000000", body, strlen(body) - 1, sig2), 0);
    assert_string_not_equal(sig, sig2);
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    const uint64_t cap = 5 * 60 * 1000;
    /* The window doubles from 1 s: [0, 1 s], [0, 2 s], [0, 4 s] ... up to the cap. */
    assert_int_equal(sl__webhooks_backoff_ms(1, cap, 1000), 1000);
    assert_int_equal(sl__webhooks_backoff_ms(1, cap, 1001), 0);
    assert_int_equal(sl__webhooks_backoff_ms(2, cap, 2000), 2000);
    assert_int_equal(sl__webhooks_backoff_ms(3, cap, 4000), 4000);
    assert_int_equal(sl__webhooks_backoff_ms(3, cap, 4001), 0);
    assert_int_equal(sl__webhooks_backoff_ms(0, cap, 5), 5); /* treated as the first */
    uint64_t rnd = 0x9E3779B97F4A7C15ull;
    for (uint32_t a = 1; a < 100; a++) {
        uint64_t window = a >= 20 ? cap : 1000ull << (a - 1);
        if (window > cap)
            window = cap;
        for (int i = 0; i < 200; i++) {
            rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
            uint64_t d = sl__webhooks_backoff_ms(a, cap, rnd);
            assert_true(d <= window);
        }
        /* The top of the window is reachable: jitter is full, not partial. */
        assert_int_equal(sl__webhooks_backoff_ms(a, cap, window), window);
    }
    /* Huge attempt counts and caps do not overflow. */
    assert_true(sl__webhooks_backoff_ms(UINT32_MAX, cap, UINT64_MAX) <= cap);
    assert_true(sl__webhooks_backoff_ms(UINT32_MAX, UINT64_MAX / 2, UINT64_MAX) <= UINT64_MAX / 2);
    /* A cap below the base bounds even the first retry. */
    assert_true(sl__webhooks_backoff_ms(1, 500, UINT64_MAX) <= 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_names),
        cmocka_unit_test(test_event_parse),
        cmocka_unit_test(test_guid_and_username),
        cmocka_unit_test(test_delivery_id),
        cmocka_unit_test(test_payload_fields),
        cmocka_unit_test(test_payload_cluster),
        cmocka_unit_test(test_payload_query_masking),
        cmocka_unit_test(test_payload_nomem),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_backoff_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
