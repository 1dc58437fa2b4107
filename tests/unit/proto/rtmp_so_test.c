/*
 * RTMP shared object messages (rtmp_so.c) as bytes: a client's message laid
 * out as Red5's RTMPProtocolEncoder writes it parses to the right events;
 * what the server builds for each change kind is byte-exact against the
 * layout of Red5's doEncodeSharedObject; bad lengths, names over the cap,
 * unknown event types and a flex encoding other than AMF0 are refused;
 * and AMF values map to JSON and back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/rtmp/rtmp_so.h"
#include "sluice/errors.h"

/* name "so", version 5, persistent, then: connect; set "k" = 1.5; send
 * "onMsg"("hi"); delete attribute "k"; disconnect. */
static const uint8_t g_client[] = {
    0x00, 0x02, 's', 'o', 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 0,
    0x01, 0, 0, 0, 0,
    0x03, 0, 0, 0, 12, 0x00, 0x01, 'k', 0x00, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0,
    0x06, 0, 0, 0, 13, 0x02, 0x00, 0x05, 'o', 'n', 'M', 's', 'g', 0x02, 0x00, 0x02, 'h', 'i',
    0x0A, 0, 0, 0, 3, 0x00, 0x01, 'k',
    0x02, 0, 0, 0, 0,
};

static void test_parse_client_message(void **state)
{
    (void)state;
    int64_t bytes0 = sl_alloc_bytes();
    sl_rtmp_so_msg_t m;
    assert_int_equal(sl_rtmp_so_parse(g_client, sizeof g_client, 0, &m), 0);
    assert_string_equal(m.name, "so");
    assert_int_equal(m.version, 5);
    assert_int_equal(m.persistent, 1);
    assert_int_equal(m.n_events, 5);
    assert_int_equal(m.events[0].type, SL_RTMP_SO_CONNECT);
    assert_int_equal(m.events[1].type, SL_RTMP_SO_SET_ATTRIBUTE);
    assert_string_equal(m.events[1].key, "k");
    assert_true(m.events[1].value->type == SL_AMF_NUMBER && m.events[1].value->u.num == 1.5);
    assert_int_equal(m.events[2].type, SL_RTMP_SO_SEND_MESSAGE);
    assert_string_equal(m.events[2].key, "onMsg");
    assert_int_equal(m.events[2].value->u.arr.n, 1);
    assert_string_equal(sl_amf_str(m.events[2].value->u.arr.items[0]), "hi");
    assert_int_equal(m.events[3].type, SL_RTMP_SO_DELETE_ATTRIBUTE);
    assert_string_equal(m.events[3].key, "k");
    assert_int_equal(m.events[4].type, SL_RTMP_SO_DISCONNECT);
    sl_rtmp_so_msg_cleanup(&m);

    /* The flex form: one leading 0; an AMF3 encoding byte is refused. */
    uint8_t flex[sizeof g_client + 1] = {0};
    memcpy(flex + 1, g_client, sizeof g_client);
    assert_int_equal(sl_rtmp_so_parse(flex, sizeof flex, 1, &m), 0);
    assert_int_equal(m.n_events, 5);
    sl_rtmp_so_msg_cleanup(&m);
    flex[0] = 3;
    assert_int_equal(sl_rtmp_so_parse(flex, sizeof flex, 1, &m), SL_EPROTO);
    sl_rtmp_so_msg_cleanup(&m);

    /* Every truncation is refused without reading past the end. */
    for (size_t n = 0; n < sizeof g_client; n++) {
        uint8_t *copy = sl_malloc(n ? n : 1);
        memcpy(copy, g_client, n);
        int rc = sl_rtmp_so_parse(copy, n, 0, &m);
        /* Cut exactly between events is a shorter, valid message. */
        if (n != 16 && n != 21 && n != 38 && n != 56 && n != 64)
            assert_int_not_equal(rc, 0);
        sl_rtmp_so_msg_cleanup(&m);
        sl_free(copy);
    }
    /* An unknown event type, and an event length past the end. */
    uint8_t bad[sizeof g_client];
    memcpy(bad, g_client, sizeof bad);
    bad[16] = 0x0C;
    assert_int_equal(sl_rtmp_so_parse(bad, sizeof bad, 0, &m), SL_EPROTO);
    sl_rtmp_so_msg_cleanup(&m);
    memcpy(bad, g_client, sizeof bad);
    bad[20] = 0xFF;
    assert_int_equal(sl_rtmp_so_parse(bad, sizeof bad, 0, &m), SL_EPROTO);
    sl_rtmp_so_msg_cleanup(&m);
    assert_int_equal(sl_alloc_bytes(), bytes0);
}

static void test_name_cap(void **state)
{
    (void)state;
    uint8_t msg[2 + 300 + 12];
    memset(msg, 'a', sizeof msg);
    msg[0] = 300 >> 8;
    msg[1] = 300 & 0xFF;
    memset(msg + 302, 0, 12);
    sl_rtmp_so_msg_t m;
    assert_int_equal(sl_rtmp_so_parse(msg, sizeof msg, 0, &m), SL_ETOOBIG);
    sl_rtmp_so_msg_cleanup(&m);
}

static void test_build_server_message(void **state)
{
    (void)state;
    json_t *one = json_integer(1), *args = json_pack("[s]", "x"), *level = json_string("error");
    sl_so_change_t c[] = {
        {SL_SO_INITIAL, NULL, NULL}, {SL_SO_CHANGE, "a", one},    {SL_SO_SUCCESS, "b", NULL},
        {SL_SO_DELETE, "c", NULL},   {SL_SO_CLEAR, NULL, NULL},   {SL_SO_SEND, "h", args},
        {SL_SO_STATUS, "SharedObject.NoWriteAccess", level},
    };
    static const uint8_t want[] = {
        0x00, 0x02, 's', 'o', 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0,
        0x0B, 0, 0, 0, 0,
        0x04, 0, 0, 0, 12, 0x00, 0x01, 'a', 0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0,
        0x05, 0, 0, 0, 3, 0x00, 0x01, 'b',
        0x09, 0, 0, 0, 3, 0x00, 0x01, 'c',
        0x08, 0, 0, 0, 0,
        0x06, 0, 0, 0, 8, 0x02, 0x00, 0x01, 'h', 0x02, 0x00, 0x01, 'x',
        0x07, 0, 0, 0, 35, 0x00, 26, 'S', 'h', 'a', 'r', 'e', 'd', 'O', 'b', 'j', 'e', 'c', 't',
        '.', 'N', 'o', 'W', 'r', 'i', 't', 'e', 'A', 'c', 'c', 'e', 's', 's', 0x00, 0x05, 'e',
        'r', 'r', 'o', 'r',
    };
    sl_wbuf_t w;
    sl_wbuf_init(&w, 4096);
    assert_int_equal(sl_rtmp_so_build(&w, 0, "so", 7, 0, c, sizeof c / sizeof c[0]), 0);
    assert_int_equal(w.len, sizeof want);
    assert_memory_equal(w.data, want, sizeof want);
    sl_wbuf_cleanup(&w);
    json_decref(one);
    json_decref(args);
    json_decref(level);
}

static void test_values(void **state)
{
    (void)state;
    json_t *in = json_loads("{\"n\":1,\"r\":1.5,\"s\":\"t\",\"b\":true,\"z\":null,"
                            "\"a\":[1,{\"x\":\"y\"}]}", 0, NULL);
    assert_non_null(in);
    sl_amf_t *a = sl_rtmp_so_from_json(in);
    assert_non_null(a);
    json_t *back = NULL;
    assert_int_equal(sl_rtmp_so_to_json(a, &back), 0);
    assert_true(json_equal(in, back));
    sl_amf_free(a);
    json_decref(back);
    json_decref(in);
    /* A string that is not UTF-8 has no JSON form. */
    sl_amf_t *bad = sl_amf_new_stringn("\xff\xfe", 2);
    json_t *j = NULL;
    assert_int_equal(sl_rtmp_so_to_json(bad, &j), SL_EINVAL);
    assert_null(j);
    sl_amf_free(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_client_message),
        cmocka_unit_test(test_name_cap),
        cmocka_unit_test(test_build_server_message),
        cmocka_unit_test(test_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
