/*
 * Fuzz target: FLV / Enhanced RTMP tag body parsing and frame creation.
 * The first byte selects audio or video; the rest is the tag body.
 */
#include <stddef.h>
#include <stdint.h>

#include "media/flv.h"
#include "media/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t kind = (data[0] & 1) ? SL_FLV_VIDEO : SL_FLV_AUDIO;
    sl_flv_info_t info;
    if (kind == SL_FLV_VIDEO)
        sl_flv_parse_video(data + 1, size - 1, &info);
    else
        sl_flv_parse_audio(data + 1, size - 1, &info);
    sl_buf_t *b = sl_buf_from(data + 1, size - 1);
    if (!b)
        return 0;
    sl_frame_t *f;
    if (sl_frame_new(kind, 0, b, &f) == 0) {
        if (f->data_off > f->body->len)
            __builtin_trap(); /* codec bytes must start inside the body */
        sl_frame_unref(f);
    }
    return 0;
}
