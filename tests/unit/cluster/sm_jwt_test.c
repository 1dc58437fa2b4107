/*
 * Unit tests of the SM 2.0 tokens (src/cluster/streammanager/sm_jwt.c):
 * a signed token verifies and gives back its role and user; expiry, a
 * wrong secret, a changed payload, `alg: none` and another algorithm, a
 * token over the cap, and malformed text are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/streammanager/sm_jwt.h"
#include "sluice/errors.h"

static const uint8_t K[] = "0123456789abcdef0123456789abcdef";
#define KL (sizeof K - 1)

static void test_roundtrip(void **state)
{
    (void)state;
    char tok[SL_SM_JWT_MAX], role[SL_SM_JWT_ROLE_MAX], sub[SL_SM_JWT_SUB_MAX];
    assert_int_equal(sl_sm_jwt_sign(K, KL, "admin", "admin", 1000, 60, tok, sizeof tok), 0);
    assert_int_equal(sl_sm_jwt_verify(K, KL, tok, strlen(tok), 1059, role, sub), 0);
    assert_string_equal(role, "admin");
    assert_string_equal(sub, "admin");
    /* Expired at exp. */
    assert_int_equal(sl_sm_jwt_verify(K, KL, tok, strlen(tok), 1060, role, sub), SL_EDENIED);
    /* Another secret. */
    static const uint8_t K2[] = "0123456789abcdef0123456789abcdeX";
    assert_int_equal(sl_sm_jwt_verify(K2, KL, tok, strlen(tok), 1000, role, sub), SL_EDENIED);
    /* Too small a buffer. */
    char small[40];
    assert_int_equal(sl_sm_jwt_sign(K, KL, "admin", "admin", 1000, 60, small, sizeof small),
                     SL_ETOOBIG);
}

static void test_tampered(void **state)
{
    (void)state;
    char tok[SL_SM_JWT_MAX], role[SL_SM_JWT_ROLE_MAX];
    assert_int_equal(sl_sm_jwt_sign(K, KL, "proxy", "proxy", 1000, 60, tok, sizeof tok), 0);
    /* The payload of an admin token under the proxy token's signature. */
    char adm[SL_SM_JWT_MAX], forged[SL_SM_JWT_MAX * 2];
    assert_int_equal(sl_sm_jwt_sign(K, KL, "proxy", "admin", 1000, 60, adm, sizeof adm), 0);
    const char *p1 = strchr(adm, '.'), *p2 = strrchr(adm, '.'), *s = strrchr(tok, '.');
    snprintf(forged, sizeof forged, "%.*s%s", (int)(p2 - adm), adm, s);
    assert_true(p1 != p2);
    assert_int_equal(sl_sm_jwt_verify(K, KL, forged, strlen(forged), 1000, role, NULL),
                     SL_EDENIED);
    /* alg none, and HS512, are refused whatever follows. */
    const char *none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJyb2xlIjoiYWRtaW4iLCJleHAiOjk5OTk5OTk5OTl9.";
    assert_int_equal(sl_sm_jwt_verify(K, KL, none, strlen(none), 1000, role, NULL), SL_EDENIED);
    const char *hs512 = "eyJhbGciOiJIUzUxMiJ9.eyJyb2xlIjoiYWRtaW4iLCJleHAiOjk5OTk5OTk5OTl9.AAAA";
    assert_int_equal(sl_sm_jwt_verify(K, KL, hs512, strlen(hs512), 1000, role, NULL), SL_EDENIED);
    /* Malformed. */
    const char *bad[] = {"", "a", "a.b", "a.b.c.d", "!!.b.c", "eyJ.eyJ.x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_true(sl_sm_jwt_verify(K, KL, bad[i], strlen(bad[i]), 1000, role, NULL) < 0);
    /* Over the cap. */
    static char big[SL_SM_JWT_MAX + 10];
    memset(big, 'a', sizeof big - 1);
    assert_int_equal(sl_sm_jwt_verify(K, KL, big, strlen(big), 1000, role, NULL), SL_ETOOBIG);
    /* No secret: nothing verifies. */
    assert_int_equal(sl_sm_jwt_verify(K, 0, tok, strlen(tok), 1000, role, NULL), SL_EDENIED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_tampered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
