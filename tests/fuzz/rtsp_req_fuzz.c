/*
 * Fuzz target: the RTSP request parser and its helpers (src/proto/rtsp/
 * rtsp_req.c). The input is parsed as a request head under the default cap
 * and a small one; when it parses, every header value goes through the
 * Transport and Authorization parsers and the URL through the splitter,
 * with buffers of several sizes. Invariants: a parsed head never claims
 * more bytes than were given, and every output string is NUL-terminated
 * within its buffer.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/rtsp/rtsp_req.h"
#include "sluice/errors.h"

static sl_rtsp_req_t req;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t caps[2] = {8192, 64};
    for (int k = 0; k < 2; k++) {
        int rc = sl_rtsp_req_parse(data, size, caps[k], &req);
        if (rc != 0 && rc != SL_EAGAIN && rc != SL_ETOOBIG && rc != SL_EPROTO)
            __builtin_trap();
        if (rc != 0)
            continue;
        if (req.head_len > size || req.head_len > caps[k] + size || strlen(req.url) >= sizeof req.url)
            __builtin_trap();
        for (int i = 0; i < req.n_headers; i++) {
            sl_rtsp_transport_t t;
            if (sl_rtsp_transport_parse(req.headers[i].value, &t) == 0 &&
                (t.interleaved[0] > 255 || t.client_port[0] > 65535))
                __builtin_trap();
            sl_rtsp_auth_t a;
            if (sl_rtsp_auth_parse(req.headers[i].value, &a) == 0 &&
                (strlen(a.username) >= sizeof a.username || strlen(a.response) >= sizeof a.response))
                __builtin_trap();
        }
        static const size_t sizes[3] = {1, 16, 2048};
        for (int j = 0; j < 3; j++) {
            char path[2048], params[2048], query[2048];
            if (sl_rtsp_url_split(req.url, path, sizes[j], params, sizes[j], query, sizes[j]) == 0 &&
                (strlen(path) >= sizes[j] || strlen(params) >= sizes[j] || strlen(query) >= sizes[j] || !path[0]))
                __builtin_trap();
        }
        (void)sl_rtsp_req_header(&req, "CSeq");
    }
    return 0;
}
