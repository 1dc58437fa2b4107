/*
 * Fuzz target for the parser of Red5 SDK's callServer message
 * (sl_rpc_json_parse, src/modules/rpc/rpc_json.c). Beyond "does not crash,
 * leak or read out of bounds": a message that parses has a method of
 * 1..255 bytes and arguments that are a JSON array; an id is at most 64
 * bytes; cleanup frees everything it allocated.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "modules/rpc/rpc_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t bytes0 = sl_alloc_bytes();
    sl_rpc_json_call_t c;
    int rc = sl_rpc_json_parse((const char *)data, size, &c);
    if (strlen(c.id) > SL_RPC_JSON_ID_MAX)
        abort();
    if (rc == 0) {
        size_t n = strlen(c.method);
        if (n == 0 || n > 255 || !c.params_json)
            abort();
        json_t *p = json_loads(c.params_json, 0, NULL);
        if (!json_is_array(p))
            abort();
        json_decref(p);
    }
    sl_rpc_json_call_cleanup(&c);
    sl_rpc_json_call_cleanup(&c);
    if (sl_alloc_bytes() != bytes0)
        abort();
    return 0;
}
