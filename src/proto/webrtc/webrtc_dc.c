/*
 * WebRTC data channels through the hub (see webrtc_internal.h): a
 * publisher's messages go as they are to the stream's viewers and into the
 * hub as AMF0 data frames (Red5's `send` JSON form becomes
 * `handler(data)`, anything else `onTextData({text})`); the hub's data
 * frames (RTMP `@setDataFrame` / `send`) go to viewers' channels as
 * {"send":{"method","data"}} JSON. Messages whose top-level key has a
 * "webrtc-ws" handler (shared objects) go to that handler instead, from
 * publishers and viewers alike (webrtc_ws.c: wrtc_ws_dc_message).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "app/events.h"
#include "base/alloc.h"
#include "base/log.h"
#include "media/flv.h"
#include "media/frame.h"
#include "media/rtcp.h"
#include "media/rtp.h"
#include "media/rtp_h264.h"
#include "media/rtp_rx.h"
#include "media/rtp_vp8.h"
#include "media/transcode.h"
#include "proto/webrtc/webrtc_internal.h"
#include "sluice/errors.h"

/* JSON -> AMF0 value, bounded in depth; appends to w. */
static int amf0_from_json(sl_wbuf_t *w, json_t *v, int depth)
{
    if (depth > 16)
        return SL_EDEPTH;
    if (json_is_object(v)) {
        if (sl_wbuf_put_u8(w, 0x03))
            return SL_ENOMEM;
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            size_t kl = strlen(k);
            if (kl > 0xFFFF || sl_wbuf_put_be16(w, (uint16_t)kl) || sl_wbuf_put(w, k, kl) ||
                amf0_from_json(w, x, depth + 1))
                return SL_ENOMEM;
        }
        return sl_wbuf_put_be16(w, 0) || sl_wbuf_put_u8(w, 0x09) ? SL_ENOMEM : 0;
    }
    if (json_is_array(v)) {
        if (sl_wbuf_put_u8(w, 0x0A) || sl_wbuf_put_be32(w, (uint32_t)json_array_size(v)))
            return SL_ENOMEM;
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            if (amf0_from_json(w, x, depth + 1))
                return SL_ENOMEM;
        }
        return 0;
    }
    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        if (n > 0xFFFF)
            return sl_wbuf_put_u8(w, 0x0C) || sl_wbuf_put_be32(w, (uint32_t)n) ||
                   sl_wbuf_put(w, json_string_value(v), n) ? SL_ENOMEM : 0;
        return sl_wbuf_put_u8(w, 0x02) || sl_wbuf_put_be16(w, (uint16_t)n) ||
               sl_wbuf_put(w, json_string_value(v), n) ? SL_ENOMEM : 0;
    }
    if (json_is_number(v)) {
        double d = json_number_value(v);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        return sl_wbuf_put_u8(w, 0x00) || sl_wbuf_put_be64(w, bits) ? SL_ENOMEM : 0;
    }
    if (json_is_boolean(v))
        return sl_wbuf_put_u8(w, 0x01) || sl_wbuf_put_u8(w, json_is_true(v)) ? SL_ENOMEM : 0;
    return sl_wbuf_put_u8(w, 0x05) ? SL_ENOMEM : 0; /* null */
}

static int amf0_string(sl_wbuf_t *w, const char *s, size_t n)
{
    if (n > 0xFFFF)
        n = 0xFFFF;
    return sl_wbuf_put_u8(w, 0x02) || sl_wbuf_put_be16(w, (uint16_t)n) || sl_wbuf_put(w, s, n) ? SL_ENOMEM : 0;
}

/*
 * A publisher's data channel message as an RTMP data message in the hub:
 * Red5's `send` form {"send":{"method":M,"data":D}} (or {"method":M,
 * "data":D}) becomes the AMF0 call M(D); anything else becomes
 * onTextData({text: message}).
 */
static void dc_to_hub(wrtc_pc_t *pc, const uint8_t *p, size_t len, int is_text)
{
    if (!pc->stream)
        return;
    sl_wbuf_t w;
    sl_wbuf_init(&w, len * 2 + 256);
    int done = 0;
    if (is_text && len && p[0] == '{') {
        json_error_t err;
        json_t *root = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &err);
        json_t *call = root ? json_object_get(root, "send") : NULL;
        if (!json_is_object(call))
            call = root;
        json_t *method = call ? json_object_get(call, "method") : NULL;
        if (json_is_string(method)) {
            json_t *data = json_object_get(call, "data");
            if (!amf0_string(&w, json_string_value(method), json_string_length(method)) &&
                (!data || !amf0_from_json(&w, data, 0)))
                done = 1;
        }
        json_decref(root);
    }
    if (!done) {
        sl_wbuf_reset(&w);
        static const char k[] = "onTextData";
        if (amf0_string(&w, k, sizeof k - 1) || sl_wbuf_put_u8(&w, 0x03) ||
            sl_wbuf_put_be16(&w, 4) || sl_wbuf_put(&w, "text", 4) || amf0_string(&w, (const char *)p, len) ||
            sl_wbuf_put_be16(&w, 0) || sl_wbuf_put_u8(&w, 0x09)) {
            sl_wbuf_cleanup(&w);
            return;
        }
    }
    sl_buf_t *b = sl_wbuf_to_buf(&w);
    sl_wbuf_cleanup(&w);
    if (!b)
        return;
    wrtc_pub_push(pc, SL_FLV_DATA, wrtc_pub_now_dts(pc), b);
}

void wrtc_on_dc_message(wrtc_pc_t *pc, const uint8_t *p, size_t len, int is_text)
{
    /* Messages a module registered a key for (shared objects) go to it, from either kind. */
    if (wrtc_ws_dc_message(pc, p, len, is_text))
        return;
    if (pc->kind != WRTC_PUBLISHER)
        return; /* a viewer's other messages: nothing listens */
    if (pc->ws) {
        sl_list_t *it, *nx;
        sl_list_foreach_safe(it, nx, &pc->ws->viewers) {
            wrtc_pc_dc_send(sl_container_of(it, wrtc_pc_t, vlink), p, len, is_text);
        }
    }
    dc_to_hub(pc, p, len, is_text);
}


/* One AMF0 value -> JSON (bounded in depth and count); NULL on a malformed value. */
static json_t *amf0_to_json(const uint8_t **pp, const uint8_t *end, int depth)
{
    const uint8_t *p = *pp;
    if (p >= end || depth > 16)
        return NULL;
    uint8_t t = *p++;
    json_t *v = NULL;
    switch (t) {
    case 0x00: /* number */
        if (end - p < 8)
            return NULL;
        {
            uint64_t bits = sl_rd_be64(p);
            double d;
            memcpy(&d, &bits, 8);
            v = json_real(d);
            p += 8;
        }
        break;
    case 0x01:
        if (p >= end)
            return NULL;
        v = json_boolean(*p++);
        break;
    case 0x02:
    case 0x0C: { /* string, long string */
        size_t n;
        if (t == 0x02) {
            if (end - p < 2)
                return NULL;
            n = sl_rd_be16(p);
            p += 2;
        } else {
            if (end - p < 4)
                return NULL;
            n = sl_rd_be32(p);
            p += 4;
        }
        if ((size_t)(end - p) < n)
            return NULL;
        v = json_stringn((const char *)p, n);
        p += n;
        break;
    }
    case 0x03:
    case 0x08: { /* object, ECMA array */
        if (t == 0x08) {
            if (end - p < 4)
                return NULL;
            p += 4;
        }
        v = json_object();
        for (int i = 0; v && i < 1024; i++) {
            if (end - p < 2) {
                json_decref(v);
                return NULL;
            }
            size_t kl = sl_rd_be16(p);
            p += 2;
            if (kl == 0) {
                if (p < end && *p == 0x09)
                    p++;
                break;
            }
            if ((size_t)(end - p) < kl) {
                json_decref(v);
                return NULL;
            }
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)(kl < 255 ? kl : 255), (const char *)p);
            p += kl;
            json_t *x = amf0_to_json(&p, end, depth + 1);
            if (!x) {
                json_decref(v);
                return NULL;
            }
            json_object_set_new(v, key, x);
        }
        break;
    }
    case 0x0A: { /* strict array */
        if (end - p < 4)
            return NULL;
        uint32_t n = sl_rd_be32(p);
        p += 4;
        if (n > 1024)
            return NULL;
        v = json_array();
        for (uint32_t i = 0; v && i < n; i++) {
            json_t *x = amf0_to_json(&p, end, depth + 1);
            if (!x) {
                json_decref(v);
                return NULL;
            }
            json_array_append_new(v, x);
        }
        break;
    }
    case 0x05: /* null */
    case 0x06: /* undefined */
        v = json_null();
        break;
    default:
        return NULL; /* references, dates, XML, AMF3: not for a data channel */
    }
    *pp = p;
    return v;
}

/*
 * A data message of the stream (an RTMP publisher's @setDataFrame /
 * onMetaData or `send("handler", ...)`) to a viewer's data channel as
 * Red5's SDK `send` form: {"send":{"method":"handler","data":value}}.
 */
void wrtc_view_send_data(wrtc_pc_t *v, const sl_frame_t *f)
{
    if (!v->dc_open || (v->ws && v->ws->publisher))
        return; /* a WebRTC publisher's messages reach its viewers as they were sent */
    const uint8_t *p = f->body->data, *end = p + f->body->len;
    json_t *name = amf0_to_json(&p, end, 0);
    if (!json_is_string(name)) {
        json_decref(name);
        return;
    }
    if (strcmp(json_string_value(name), "@setDataFrame") == 0) {
        json_decref(name);
        name = amf0_to_json(&p, end, 0);
        if (!json_is_string(name)) {
            json_decref(name);
            return;
        }
    }
    json_t *data = p < end ? amf0_to_json(&p, end, 0) : json_null();
    json_t *msg = json_pack("{s:{s:o,s:o}}", "send", "method", name, "data", data ? data : json_null());
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    if (text)
        wrtc_pc_dc_send(v, (const uint8_t *)text, strlen(text), 1);
    free(text);
    json_decref(msg);
}

void wrtc_view_on_dc_open(wrtc_pc_t *v)
{
    /* The metadata went by before the channel was open: send it now. */
    if (v->kind == WRTC_VIEWER && v->sink_on && v->sink.stream && v->sink.stream->metadata)
        wrtc_view_send_data(v, v->sink.stream->metadata);
}
