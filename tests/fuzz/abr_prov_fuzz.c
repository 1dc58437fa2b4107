/*
 * Fuzz target: the abr module's untrusted bytes: a provision's JSON (what
 * the API's POST body, a cluster setting and abr.provisions become;
 * abr_prov.c), and the video transcoder's Annex B -> AVCC rewriting and
 * avcC building (vtranscode.c) on the same bytes. A parse either fails
 * with a reason or yields a provision inside every limit, and writing it
 * back parses to the same provision. Nothing may read out of bounds.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "media/vtranscode.h"
#include "modules/abr/abr_prov.h"
#include "sluice/errors.h"

static void check_limits(const sl_abr_prov_t *p)
{
    if (p->n < 1 || p->n > SL_ABR_LEVELS_MAX || p->lv[0].level != 1)
        __builtin_trap();
    for (size_t i = 0; i < p->n; i++) {
        const sl_abr_level_t *l = &p->lv[i];
        if (l->width < 16 || l->width > 4096 || (l->width & 1) || l->height < 16 ||
            l->height > 4096 || (l->height & 1) || l->bitrate < 32000 || l->bitrate > 50000000 ||
            l->fps > 120 || (i && l->level <= p->lv[i - 1].level))
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sl_abr_prov_t p, q;
    char why[200];
    int rc = sl_abr_prov_parse((const char *)data, size, &p, why, sizeof why);
    if (rc) {
        if ((rc != SL_EINVAL && rc != SL_ETOOBIG) || !why[0])
            __builtin_trap();
    } else {
        check_limits(&p);
        json_t *o = sl_abr_prov_json(&p);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (s) {
            if (sl_abr_prov_parse(s, strlen(s), &q, why, sizeof why) ||
                memcmp(&p, &q, sizeof p) != 0)
                __builtin_trap();
            free(s);
        }
    }
    size_t n = sl__vt_to_avcc(data, size, NULL);
    if (n) {
        uint8_t *out = malloc(n);
        if (out && sl__vt_to_avcc(data, size, out) != n)
            __builtin_trap();
        free(out);
    }
    uint8_t *avcc = NULL;
    size_t avcc_len = 0;
    if (sl__vt_make_avcc(data, size, &avcc, &avcc_len) == 0)
        sl_free(avcc);
    return 0;
}
