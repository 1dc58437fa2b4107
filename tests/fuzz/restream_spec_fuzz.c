/*
 * Fuzz target: the restream module's untrusted text and bytes: pull and
 * push entries (restream_spec.c; what sluice.yml and the API's bodies
 * become), and the worker's H.264 and H.265 Annex B -> length-prefixed
 * conversions of what a camera sends (restream_io.c), into a small output buffer so that the
 * bound is hit too, and the same bytes as a restreamer servlet body
 * (restream_servlet.c) and as a stream manager's restreamer provision
 * (sl_rs_servlet_from_provision). Nothing may read out of bounds; a
 * refusal says why.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "modules/restream/restream_io.h"
#include "modules/restream/restream_servlet.h"
#include "modules/restream/restream_spec.h"
#include "sluice/errors.h"

static int each(void *ud, const sl_rs_spec_t *s, int line_no)
{
    (void)ud;
    if (line_no <= 0 || !s->app[0] || !s->stream[0] || !s->url[0])
        __builtin_trap();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[65536 + 1];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    for (int push = 0; push < 2; push++) {
        const char *why = NULL;
        int bad = 0;
        int rc = sl_rs_spec_each(text, push, each, NULL, &why, &bad);
        if (rc && (rc != SL_EINVAL || !why || bad <= 0))
            __builtin_trap();
    }
    static sl_rs_sv_req_t q;
    const char *why = NULL;
    int src = sl_rs_servlet_parse((const char *)data, size, "live", &q, &why);
    if (src ? !why : (!q.context[0] || (q.action == SL_RS_SV_CREATE && !q.spec.url[0])))
        __builtin_trap();
    src = sl_rs_servlet_from_provision((const char *)data, size, &q, &why);
    if (src ? !why : (q.action != SL_RS_SV_CREATE || !q.context[0] || !q.spec.url[0]))
        __builtin_trap();
    static uint8_t out[4096], sps[1024], pps[1024];
    size_t sps_len = 0, pps_len = 0;
    int changed = 0, idr = 0;
    int rc = sl_rs_annexb_to_avcc(data, size, out, sizeof out, sps, &sps_len, pps, &pps_len,
                                  &changed, &idr);
    if (rc != SL_ETOOBIG && (rc < 0 || (size_t)rc > sizeof out))
        __builtin_trap();
    /* The same bytes as H.265 Annex B (VPS/SPS/PPS kept aside, the rest length-prefixed). */
    static uint8_t vps[1024];
    size_t vps_len = 0;
    sps_len = pps_len = 0;
    rc = sl_rs_annexb_to_hvcc(data, size, out, sizeof out, vps, &vps_len, sps, &sps_len, pps, &pps_len,
                              &changed, &idr);
    if (rc != SL_ETOOBIG && (rc < 0 || (size_t)rc > sizeof out))
        __builtin_trap();
    if (vps_len > sizeof vps || sps_len > sizeof sps || pps_len > sizeof pps)
        __builtin_trap();
    return 0;
}
