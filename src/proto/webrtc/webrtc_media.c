/*
 * WebRTC media through the hub (see webrtc_internal.h):
 *
 * Publishers (WHIP): SRTP-decrypted RTP -> the receive buffer (reorder,
 * NACK, loss after webrtc.nack_buffer) -> the H.264 depacketizer -> FLV
 * AVC frames pushed to the stream, so RTMP, HTTP-FLV, HLS and the recorder
 * see a WebRTC publisher like any other. Opus goes two ways: as is to the
 * stream's WebRTC viewers, and through one Opus->AAC transcoder (off the
 * loop) into the hub for everyone else. Timestamps: each track is anchored
 * at the arrival of its first packet and advanced by its RTP clock.
 *
 * Viewers (WHEP): a hub sink. Video frames are packetized once per frame
 * (the payloads are cached on the frame, media/rtp.h) and each viewer only
 * writes its 12-byte header and encrypts; audio is Opus from the
 * publisher, or from one AAC->Opus transcoder per stream fed by an internal
 * hub sink (the "tap"), shared by the stream's viewers. NACKs are answered
 * from a per-viewer history of what was sent (references, no copies).
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

#define HIST_N 1024               /* sent packets kept per viewer track for NACK */

/* ------------------------------------------------------------------ */
/* publisher                                                           */

static void push_frame(wrtc_pc_t *pc, uint8_t kind, int64_t dts, sl_buf_t *body)
{
    if (!pc->stream) {
        sl_buf_unref(body);
        return;
    }
    if (dts < 0)
        dts = 0;
    sl_frame_t *f;
    if (sl_frame_new(kind, (uint32_t)dts, body, &f))
        return;
    sl_stream_push(pc->stream, f);
    sl_frame_unref(f);
}

static int64_t track_dts(wrtc_pc_t *pc, int video, uint32_t rtp_ts)
{
    uint64_t now = uv_now(pc->w->core->loop);
    int64_t *anchor = video ? &pc->v_anchor_ms : &pc->a_anchor_ms;
    uint32_t *first = video ? &pc->v_first_ts : &pc->a_first_ts;
    int *started = video ? &pc->v_started : &pc->a_started;
    uint32_t clock = video ? 90000 : 48000;
    if (!*started) {
        *started = 1;
        *first = rtp_ts;
        if (!pc->pub_zero_set) {
            pc->pub_zero_set = 1;
            pc->pub_zero_ms = now;
        }
        *anchor = (int64_t)(now - pc->pub_zero_ms);
    }
    int32_t d = (int32_t)(rtp_ts - *first);
    return *anchor + (int64_t)d * 1000 / clock;
}

static void on_avc_config(void *ud, const uint8_t *rec, size_t len)
{
    wrtc_pc_t *pc = ud;
    sl_buf_t *b = sl_h264_flv_config_body(rec, len);
    if (b)
        push_frame(pc, SL_FLV_VIDEO, pc->v_started ? track_dts(pc, 1, pc->v_last_ts) : 0, b);
}

static void on_avc_frame(void *ud, uint32_t rtp_ts, const uint8_t *avcc, size_t len, int is_key)
{
    wrtc_pc_t *pc = ud;
    pc->v_last_ts = rtp_ts;
    int64_t dts = track_dts(pc, 1, rtp_ts);
    /* WebRTC has no B-frames in its profiles: pts = dts (CTS 0). */
    sl_buf_t *b = sl_h264_flv_frame_body(avcc, len, is_key, 0);
    if (b)
        push_frame(pc, SL_FLV_VIDEO, dts, b);
}

static void on_vp8_frame(void *ud, uint32_t rtp_ts, const uint8_t *frame, size_t len, int is_key)
{
    wrtc_pc_t *pc = ud;
    int64_t dts = track_dts(pc, 1, rtp_ts);
    sl_buf_t *b = sl_vp8_flv_frame_body(frame, len, is_key);
    if (b)
        push_frame(pc, SL_FLV_VIDEO, dts, b);
}

static void send_pli(wrtc_pc_t *pc, uint64_t now)
{
    if (!pc->in_video_ssrc || now - pc->last_pli_ms < 300)
        return;
    pc->last_pli_ms = now;
    uint8_t buf[64 + WRTC_SRTP_ROOM];
    int n = sl_rtcp_build_pli(buf, 64, pc->our_ssrc, pc->in_video_ssrc);
    if (n > 0) {
        wrtc_pc_send_rtcp(pc, buf, (size_t)n, sizeof buf);
        pc->w->c.pli_out++;
        pc->pli_out++;
        SL_LOGD(&pc->sess.log, "webrtc: PLI to the publisher (ssrc %08x)", pc->in_video_ssrc);
    }
}

static void on_video_packet(void *ud, const uint8_t *pkt, size_t len)
{
    wrtc_pc_t *pc = ud;
    sl_rtp_hdr_t h;
    if (sl_rtp_parse(pkt, len, &h))
        return;
    if (pc->h264)
        sl_h264_depack_push(pc->h264, &h);
    else if (pc->vp8)
        sl_vp8_depack_push(pc->vp8, &h);
}

static void on_video_loss(void *ud, uint16_t first, uint16_t count)
{
    wrtc_pc_t *pc = ud;
    (void)first;
    (void)count;
    if (pc->h264)
        sl_h264_depack_loss(pc->h264);
    if (pc->vp8)
        sl_vp8_depack_loss(pc->vp8);
}

static void on_aac_out(void *ud, sl_frame_t *f)
{
    wrtc_pc_t *pc = ud;
    if (pc->stream)
        sl_stream_push(pc->stream, f);
}

static void view_send_opus(wrtc_pc_t *v, const uint8_t *opus, size_t len, int64_t dts_ms);

/* An Opus packet of the publisher: to the viewers as is, to the hub as AAC. */
static void on_opus(wrtc_pc_t *pc, const uint8_t *opus, size_t len, uint32_t rtp_ts)
{
    int64_t dts = track_dts(pc, 0, rtp_ts);
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(pc->w->core->cfg);
    if (!wc->transcode_audio) {
        /* No AAC wanted: Opus goes into the hub as Enhanced RTMP audio. */
        sl_buf_t *b = sl_opus_flv_frame_body(opus, len);
        if (b)
            push_frame(pc, SL_FLV_AUDIO, dts, b);
        return;
    }
    if (pc->ws) {
        sl_list_t *it, *nx;
        sl_list_foreach_safe(it, nx, &pc->ws->viewers) {
            view_send_opus(sl_container_of(it, wrtc_pc_t, vlink), opus, len, dts);
        }
    }
    if (!pc->to_aac)
        return;
    sl_buf_t *b = sl_opus_flv_frame_body(opus, len);
    if (!b)
        return;
    sl_frame_t *f;
    if (sl_frame_new(SL_FLV_AUDIO, (uint32_t)(dts < 0 ? 0 : dts), b, &f) == 0) {
        sl_transcoder_push(pc->to_aac, f);
        sl_frame_unref(f);
    }
}

int wrtc_pub_start(wrtc_pc_t *pc)
{
    wrtc_t *w = pc->w;
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(w->core->cfg);
    sl_stream_t *st;
    int rc = sl_hub_publish(w->core->hub, pc->path, &pc->sess, &st);
    if (rc)
        return rc;
    pc->stream = st;
    pc->ws = wrtc_stream_get(w, pc->path);
    if (pc->ws)
        pc->ws->publisher = pc;
    if (pc->has_video && pc->video_codec == SL_CODEC_AVC) {
        pc->h264 = sl_h264_depack_new(on_avc_config, on_avc_frame, pc);
        pc->vrx = sl_rtp_rx_new(90000, (uint32_t)wc->nack_buffer_ms, on_video_packet, on_video_loss, pc);
    } else if (pc->has_video && pc->video_codec == SL_CODEC_VP8) {
        pc->vp8 = sl_vp8_depack_new(on_vp8_frame, pc);
        pc->vrx = sl_rtp_rx_new(90000, (uint32_t)wc->nack_buffer_ms, on_video_packet, on_video_loss, pc);
    }
    if (pc->has_audio && wc->transcode_audio)
        sl_transcoder_new(w->core->loop, SL_CODEC_AAC, on_aac_out, pc, &pc->to_aac);
    /* Transport-wide congestion control feedback (the browser's bandwidth
     * estimate rises only with it when transport-cc was negotiated). */
    if (pc->ext_twcc)
        pc->twcc = sl_twcc_rx_new(pc->our_ssrc, pc->in_video_ssrc ? pc->in_video_ssrc : pc->in_audio_ssrc);
    sl_session_set_role(&pc->sess, SL_ROLE_PUBLISHER);
    SL_LOGI(&pc->sess.log, "webrtc publish started (%s)",
            pc->sess.publish_mode == SL_PUBLISH_RECORD ? "record"
            : pc->sess.publish_mode == SL_PUBLISH_APPEND ? "append" : "live");
    sl_events_emit_session(w->core, &pc->sess, SL_EV_PUBLISH, NULL);
    return 0;
}

void wrtc_pub_stop(wrtc_pc_t *pc, const char *reason)
{
    (void)reason;
    if (pc->to_aac) {
        sl_transcoder_free(pc->to_aac);
        pc->to_aac = NULL;
    }
    if (pc->vrx) {
        sl_rtp_rx_free(pc->vrx);
        pc->vrx = NULL;
    }
    if (pc->twcc) {
        sl_twcc_rx_free(pc->twcc);
        pc->twcc = NULL;
    }
    if (pc->h264) {
        sl_h264_depack_free(pc->h264);
        pc->h264 = NULL;
    }
    if (pc->vp8) {
        sl_vp8_depack_free(pc->vp8);
        pc->vp8 = NULL;
    }
    if (pc->ws) {
        wrtc_stream_t *ws = pc->ws;
        pc->ws = NULL;
        if (ws->publisher == pc)
            ws->publisher = NULL;
        wrtc_stream_release(ws);
    }
    if (pc->stream) {
        sl_stream_t *st = pc->stream;
        pc->stream = NULL;
        SL_LOGI(&pc->sess.log, "webrtc publish stopped (%llu frames, %llu bytes)",
                (unsigned long long)st->stats.frames_in, (unsigned long long)st->stats.bytes_in);
        sl_stream_unpublish(st);
        sl_events_emit_session(pc->w->core, &pc->sess, SL_EV_UNPUBLISH, NULL);
        sl_session_set_role(&pc->sess, SL_ROLE_NONE);
    }
}

void wrtc_pub_on_rtp(wrtc_pc_t *pc, const uint8_t *p, size_t len)
{
    sl_rtp_hdr_t h;
    if (sl_rtp_parse(p, len, &h))
        return;
    uint64_t now = uv_now(pc->w->core->loop);
    if (pc->twcc && pc->ext_twcc) {
        const uint8_t *x;
        size_t xl;
        if (sl_rtp_ext_get(&h, pc->ext_twcc, &x, &xl) == 0 && xl >= 2)
            sl_twcc_rx_record(pc->twcc, (uint16_t)(x[0] << 8 | x[1]), uv_hrtime() / 1000);
    }
    if (pc->has_video && h.pt == pc->video_pt) {
        if (!pc->in_video_ssrc)
            pc->in_video_ssrc = h.ssrc;
        if (h.ssrc != pc->in_video_ssrc || !pc->vrx)
            return;
        sl_rtp_rx_push(pc->vrx, h.seq, h.ts, now, p, len);
        return;
    }
    if (pc->has_video && pc->video_rtx_pt && h.pt == pc->video_rtx_pt && pc->vrx && h.payload_len > 2) {
        /* RFC 4588: the original sequence number, then the original payload. */
        uint8_t buf[WRTC_MAX_DATAGRAM];
        size_t hl = (size_t)(h.payload - p);
        if (hl + h.payload_len > sizeof buf)
            return;
        uint16_t osn = (uint16_t)(h.payload[0] << 8 | h.payload[1]);
        memcpy(buf, p, hl);
        buf[1] = (uint8_t)((buf[1] & 0x80) | pc->video_pt);
        buf[2] = (uint8_t)(osn >> 8);
        buf[3] = (uint8_t)osn;
        buf[8] = (uint8_t)(pc->in_video_ssrc >> 24);
        buf[9] = (uint8_t)(pc->in_video_ssrc >> 16);
        buf[10] = (uint8_t)(pc->in_video_ssrc >> 8);
        buf[11] = (uint8_t)pc->in_video_ssrc;
        buf[0] &= (uint8_t)~0x20; /* no padding left after the move */
        memcpy(buf + hl, h.payload + 2, h.payload_len - 2);
        sl_rtp_rx_push(pc->vrx, osn, h.ts, now, buf, hl + h.payload_len - 2);
        return;
    }
    if (pc->has_audio && h.pt == pc->audio_pt) {
        if (!pc->in_audio_ssrc)
            pc->in_audio_ssrc = h.ssrc;
        if (h.ssrc != pc->in_audio_ssrc || !h.payload_len)
            return;
        on_opus(pc, h.payload, h.payload_len, h.ts);
    }
}

/* ------------------------------------------------------------------ */
/* RTCP                                                                */

static void rtcp_nack(void *ud, uint32_t sender_ssrc, uint32_t media_ssrc, uint16_t seq);
static void rtcp_pli(void *ud, uint32_t sender_ssrc, uint32_t media_ssrc);
static void rtcp_fir(void *ud, uint32_t sender_ssrc, uint32_t media_ssrc, uint8_t seq_nr)
{
    (void)seq_nr;
    rtcp_pli(ud, sender_ssrc, media_ssrc);
}

static void rtcp_sr(void *ud, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts, uint32_t pkts, uint32_t octets)
{
    wrtc_pc_t *pc = ud;
    (void)pkts;
    (void)octets;
    if (pc->vrx && ssrc == pc->in_video_ssrc)
        sl_rtp_rx_on_sr(pc->vrx, ntp, rtp_ts, uv_now(pc->w->core->loop));
}

static void rtcp_rr(void *ud, uint32_t reporter, const sl_rtcp_report_t *rb)
{
    wrtc_pc_t *pc = ud;
    (void)reporter;
    /* Loss as the viewer reports it: its video track's block when it has
     * one (audio's would overwrite it every second), else audio's. A
     * publisher's own loss is what we report to it (wrtc_media_tick). */
    if (pc->kind != WRTC_VIEWER || (pc->vout.on && rb->source != pc->vout.ssrc))
        return;
    pc->loss_fraction = rb->fraction_lost;
    pc->rr_lost = rb->cum_lost;
    if (rb->lsr) {
        /* RTT = now - LSR - DLSR, in 1/65536 s of the middle 32 bits of NTP. */
        uint32_t now = sl_ntp_mid32(sl_ntp_now());
        uint32_t rtt = now - rb->lsr - rb->dlsr;
        if (rtt < 0x10000 * 10u)
            pc->rtt_ms = (uint32_t)(((uint64_t)rtt * 1000) >> 16);
    }
}

void wrtc_on_rtcp(wrtc_pc_t *pc, const uint8_t *p, size_t len)
{
    const sl_rtcp_cb_t cb = {
        .sr = rtcp_sr,
        .rr_block = rtcp_rr,
        .nack = rtcp_nack,
        .pli = rtcp_pli,
        .fir = rtcp_fir,
    };
    sl_rtcp_parse(p, len, &cb, pc);
}

/* ------------------------------------------------------------------ */
/* data channels                                                       */

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
    uint64_t now = uv_now(pc->w->core->loop);
    push_frame(pc, SL_FLV_DATA, pc->pub_zero_set ? (int64_t)(now - pc->pub_zero_ms) : 0, b);
}

void wrtc_on_dc_message(wrtc_pc_t *pc, const uint8_t *p, size_t len, int is_text)
{
    if (pc->kind != WRTC_PUBLISHER)
        return; /* a viewer's messages: nothing listens yet (shared objects will) */
    if (pc->ws) {
        sl_list_t *it, *nx;
        sl_list_foreach_safe(it, nx, &pc->ws->viewers) {
            wrtc_pc_dc_send(sl_container_of(it, wrtc_pc_t, vlink), p, len, is_text);
        }
    }
    dc_to_hub(pc, p, len, is_text);
}

/* ------------------------------------------------------------------ */
/* viewer                                                              */

typedef struct hist_ent {
    sl_buf_t *buf;                 /* the packet payload's buffer (reference) */
    uint32_t off;
    uint16_t len;
    uint16_t seq;
    uint32_t ts;
    uint8_t marker, used;
    uint64_t sent_ms;
} hist_ent_t;

struct wrtc_hist {
    hist_ent_t e[HIST_N];
};

static void hist_put(wrtc_out_track_t *t, sl_buf_t *buf, uint32_t off, uint16_t len, uint16_t seq, uint32_t ts,
                     int marker, uint64_t now)
{
    if (!t->hist) {
        t->hist = sl_calloc(1, sizeof(*t->hist));
        if (!t->hist)
            return;
    }
    hist_ent_t *e = &t->hist->e[seq % HIST_N];
    if (e->buf)
        sl_buf_unref(e->buf);
    e->buf = sl_buf_ref(buf);
    e->off = off;
    e->len = len;
    e->seq = seq;
    e->ts = ts;
    e->marker = (uint8_t)marker;
    e->used = 1;
    e->sent_ms = now;
}

static void hist_free(wrtc_out_track_t *t)
{
    if (!t->hist)
        return;
    for (int i = 0; i < HIST_N; i++)
        if (t->hist->e[i].buf)
            sl_buf_unref(t->hist->e[i].buf);
    sl_free(t->hist);
    t->hist = NULL;
}

static void send_one(wrtc_pc_t *v, wrtc_out_track_t *t, const uint8_t *payload, size_t len, int marker,
                     uint16_t seq, uint32_t ts)
{
    uint8_t pkt[WRTC_MAX_DATAGRAM + WRTC_SRTP_ROOM];
    if (len + 12 > WRTC_MAX_DATAGRAM)
        return;
    pkt[0] = 0x80;
    pkt[1] = (uint8_t)((marker ? 0x80 : 0) | t->pt);
    pkt[2] = (uint8_t)(seq >> 8);
    pkt[3] = (uint8_t)seq;
    pkt[4] = (uint8_t)(ts >> 24);
    pkt[5] = (uint8_t)(ts >> 16);
    pkt[6] = (uint8_t)(ts >> 8);
    pkt[7] = (uint8_t)ts;
    pkt[8] = (uint8_t)(t->ssrc >> 24);
    pkt[9] = (uint8_t)(t->ssrc >> 16);
    pkt[10] = (uint8_t)(t->ssrc >> 8);
    pkt[11] = (uint8_t)t->ssrc;
    memcpy(pkt + 12, payload, len);
    wrtc_pc_send_rtp(v, pkt, 12 + len, sizeof pkt);
}

static uint32_t rtp_ts_of(wrtc_pc_t *v, wrtc_out_track_t *t, int64_t ms)
{
    if (!v->ts_zero_set) {
        v->ts_zero_set = 1;
        v->ts_zero_ms = ms;
    }
    return t->ts_base + (uint32_t)((ms - v->ts_zero_ms) * (int64_t)(t->clock / 1000));
}

static void track_sent(wrtc_pc_t *v, wrtc_out_track_t *t, uint32_t ts, size_t len)
{
    t->packets++;
    t->octets += len;
    t->last_ts = ts;
    t->last_wall_ms = uv_now(v->w->core->loop);
}

static void view_send_opus(wrtc_pc_t *v, const uint8_t *opus, size_t len, int64_t dts_ms)
{
    wrtc_out_track_t *t = &v->aout;
    if (!t->on || !v->dtls_up || !v->sink_on || v->need_key)
        return;
    uint32_t ts = rtp_ts_of(v, t, dts_ms);
    send_one(v, t, opus, len, 1, t->seq, ts);
    t->seq++;
    track_sent(v, t, ts, len);
}

static void view_send_video(wrtc_pc_t *v, sl_frame_t *f)
{
    wrtc_out_track_t *t = &v->vout;
    sl_stream_t *st = v->sink.stream;
    if (!t->on || !st || (f->codec == SL_CODEC_AVC && !st->video_config))
        return;
    const sl_frame_t *cfg = st->video_config;
    sl_rtp_payloads_t payloads;
    if (sl_frame_rtp_payloads(f, (size_t)sl_webrtc_cfg(v->w->core->cfg)->mtu,
                              cfg ? cfg->body->data + cfg->data_off : NULL,
                              cfg ? cfg->body->len - cfg->data_off : 0, &payloads))
        return;
    const sl_rtp_payloads_t *pl = &payloads;
    uint32_t ts = rtp_ts_of(v, t, (int64_t)f->dts_ms + f->cts_ms);
    uint64_t now = uv_now(v->w->core->loop);
    for (uint32_t i = 0; i < pl->n; i++) {
        const sl_rtp_pkt_ref_t *r = &pl->pkts[i];
        send_one(v, t, pl->buf->data + r->off, r->len, r->marker, t->seq, ts);
        hist_put(t, pl->buf, r->off, r->len, t->seq, ts, r->marker, now);
        t->seq++;
        track_sent(v, t, ts, r->len);
    }
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
static void view_send_data(wrtc_pc_t *v, const sl_frame_t *f)
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
        view_send_data(v, v->sink.stream->metadata);
}

static void sink_on_frame(sl_sink_t *sink, sl_frame_t *f)
{
    wrtc_pc_t *v = sink->ctx;
    if (v->closing || !v->dtls_up)
        return;
    if (f->kind == SL_FLV_VIDEO) {
        if (f->codec != (uint32_t)v->video_codec || (f->flags & (SL_FRAME_CONFIG | SL_FRAME_EOS)))
            return;
        if (v->need_key) {
            if (!(f->flags & SL_FRAME_KEY))
                return;
            v->need_key = 0;
        }
        view_send_video(v, f);
        return;
    }
    if (f->kind == SL_FLV_DATA) {
        view_send_data(v, f);
        return;
    }
    if (f->kind == SL_FLV_AUDIO) {
        if (f->codec == SL_CODEC_OPUS && !(f->flags & SL_FRAME_CONFIG))
            view_send_opus(v, f->body->data + f->data_off, f->body->len - f->data_off, f->dts_ms);
        /* AAC: the stream's transcoder (or its WebRTC publisher) brings Opus. */
    }
}

static void sink_on_unpublish(sl_sink_t *sink)
{
    wrtc_pc_t *v = sink->ctx;
    wrtc_pc_close(v, "stream unpublished");
}

static const sl_sink_ops_t view_sink_ops = {
    .on_frame = sink_on_frame,
    .on_publish = NULL,
    .on_unpublish = sink_on_unpublish,
};

/* The stream's AAC -> Opus path, for viewers of a non-WebRTC publisher. */
static void on_opus_out(void *ud, sl_frame_t *f)
{
    wrtc_stream_t *ws = ud;
    if (f->codec != SL_CODEC_OPUS || (f->flags & SL_FRAME_CONFIG))
        return;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &ws->viewers) {
        view_send_opus(sl_container_of(it, wrtc_pc_t, vlink), f->body->data + f->data_off,
                       f->body->len - f->data_off, f->dts_ms);
    }
}

static void tap_on_frame(sl_sink_t *sink, sl_frame_t *f)
{
    wrtc_stream_t *ws = sink->ctx;
    if (f->kind != SL_FLV_AUDIO || f->codec != SL_CODEC_AAC || ws->publisher)
        return;
    if (!ws->to_opus && sl_transcoder_new(ws->w->core->loop, SL_CODEC_OPUS, on_opus_out, ws, &ws->to_opus))
        return;
    sl_transcoder_push(ws->to_opus, f);
}

static const sl_sink_ops_t tap_sink_ops = {
    .on_frame = tap_on_frame,
    .on_publish = NULL,
    .on_unpublish = NULL,
};

static void tap_update(wrtc_stream_t *ws)
{
    int want = ws->n_viewers > 0 && !ws->publisher && sl_webrtc_cfg(ws->w->core->cfg)->transcode_audio;
    if (want && !ws->tap_on) {
        ws->tap.ops = &tap_sink_ops;
        ws->tap.ctx = ws;
        ws->tap.internal = 1;
        if (sl_hub_add_sink(ws->w->core->hub, ws->path, &ws->tap) == 0)
            ws->tap_on = 1;
    } else if (!want && ws->tap_on) {
        sl_stream_remove_sink(&ws->tap);
        ws->tap_on = 0;
        if (ws->to_opus) {
            sl_transcoder_free(ws->to_opus);
            ws->to_opus = NULL;
        }
    }
}

int wrtc_view_start(wrtc_pc_t *v)
{
    wrtc_t *w = v->w;
    wrtc_stream_t *ws = wrtc_stream_get(w, v->path);
    if (!ws)
        return SL_ENOMEM;
    v->ws = ws;
    sl_list_push_back(&ws->viewers, &v->vlink);
    ws->n_viewers++;
    v->need_key = 1;
    sl_session_set_role(&v->sess, SL_ROLE_SUBSCRIBER);
    SL_LOGI(&v->sess.log, "webrtc play started");
    sl_events_emit_session(w->core, &v->sess, SL_EV_PLAY, NULL);
    v->playing = 1;
    tap_update(ws);
    v->sink.ops = &view_sink_ops;
    v->sink.ctx = v;
    v->sink_on = 1;
    if (sl_hub_add_sink(w->core->hub, v->path, &v->sink)) {
        v->sink_on = 0;
        return SL_ENOMEM;
    }
    return 0;
}

void wrtc_view_stop(wrtc_pc_t *v, const char *reason)
{
    if (v->sink_on) {
        v->sink_on = 0;
        sl_stream_remove_sink(&v->sink);
    }
    if (v->ws) {
        wrtc_stream_t *ws = v->ws;
        v->ws = NULL;
        sl_list_remove(&v->vlink);
        ws->n_viewers--;
        tap_update(ws);
        wrtc_stream_release(ws);
    }
    if (v->playing) {
        v->playing = 0;
        SL_LOGI(&v->sess.log, "webrtc play stopped: %s", reason ? reason : "closed");
        sl_events_emit_session(v->w->core, &v->sess, SL_EV_PLAY_STOP, reason);
        sl_session_set_role(&v->sess, SL_ROLE_NONE);
    }
    hist_free(&v->vout);
    hist_free(&v->aout);
}

static void rtcp_nack(void *ud, uint32_t sender_ssrc, uint32_t media_ssrc, uint16_t seq)
{
    (void)sender_ssrc;
    wrtc_pc_t *v = ud;
    v->w->c.nack_in++;
    v->nack_in++;
    wrtc_out_track_t *t = media_ssrc == v->vout.ssrc ? &v->vout : media_ssrc == v->aout.ssrc ? &v->aout : NULL;
    if (!t || !t->hist)
        return;
    hist_ent_t *e = &t->hist->e[seq % HIST_N];
    if (!e->used || e->seq != seq || !e->buf)
        return;
    uint64_t now = uv_now(v->w->core->loop);
    if (now - e->sent_ms < (v->rtt_ms ? v->rtt_ms : 20))
        return; /* asked again within a round trip: the first resend is on its way */
    e->sent_ms = now;
    send_one(v, t, e->buf->data + e->off, e->len, e->marker, e->seq, e->ts);
    v->w->c.rtx_out++;
    v->rtx_out++;
}

static void rtcp_pli(void *ud, uint32_t sender_ssrc, uint32_t media_ssrc)
{
    wrtc_pc_t *v = ud;
    (void)sender_ssrc;
    (void)media_ssrc;
    v->w->c.pli_in++;
    v->pli_in++;
    /* Forward to a WebRTC publisher of the stream: it makes a keyframe. */
    if (v->ws && v->ws->publisher)
        v->ws->publisher->want_key = 1;
}

/* ------------------------------------------------------------------ */
/* timers                                                              */

static void send_sr(wrtc_pc_t *v, wrtc_out_track_t *t, uint64_t now)
{
    if (!t->on || !t->packets)
        return;
    uint8_t buf[80 + WRTC_SRTP_ROOM];
    uint32_t ts = t->last_ts + (uint32_t)((now - t->last_wall_ms) * (t->clock / 1000));
    int n = sl_rtcp_build_sr(buf, 80, t->ssrc, sl_ntp_now(), ts, (uint32_t)t->packets, (uint32_t)t->octets,
                             NULL, 0);
    if (n > 0)
        wrtc_pc_send_rtcp(v, buf, (size_t)n, sizeof buf);
}

void wrtc_media_tick(wrtc_pc_t *pc, uint64_t now)
{
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(pc->w->core->cfg);
    if (pc->kind == WRTC_PUBLISHER) {
        if (pc->vrx) {
            uint16_t seqs[64];
            int n = sl_rtp_rx_poll(pc->vrx, now, seqs, 64);
            if (n > 0) {
                uint8_t buf[400 + WRTC_SRTP_ROOM];
                int len = sl_rtcp_build_nack(buf, 400, pc->our_ssrc, pc->in_video_ssrc, seqs, n);
                if (len > 0) {
                    wrtc_pc_send_rtcp(pc, buf, (size_t)len, sizeof buf);
                    pc->w->c.nack_out += (uint64_t)n;
                    pc->nack_out += (uint64_t)n;
                }
            }
            if ((pc->h264 && sl_h264_depack_need_keyframe(pc->h264)) ||
                (pc->vp8 && sl_vp8_depack_need_keyframe(pc->vp8)))
                pc->want_key = 1;
        }
        if (pc->twcc && now - pc->last_twcc_ms >= 50) {
            pc->last_twcc_ms = now;
            uint8_t buf[1200 + WRTC_SRTP_ROOM];
            int len;
            for (int i = 0; i < 4 && (len = sl_twcc_rx_build(pc->twcc, buf, 1200)) > 0; i++)
                wrtc_pc_send_rtcp(pc, buf, (size_t)len, sizeof buf);
        }
        if (wc->keyframe_interval_ms && now - pc->last_pli_ms >= (uint64_t)wc->keyframe_interval_ms)
            pc->want_key = 1;
        if (pc->want_key && pc->in_video_ssrc && now - pc->last_pli_ms >= 300) {
            pc->want_key = 0;
            send_pli(pc, now);
        }
        if (now - pc->last_rr_ms >= 1000 && pc->vrx && pc->in_video_ssrc) {
            pc->last_rr_ms = now;
            sl_rtcp_report_t rb;
            sl_rtp_rx_report(pc->vrx, pc->in_video_ssrc, now, &rb);
            pc->loss_fraction = rb.fraction_lost; /* what we tell the publisher, for the API */
            uint8_t buf[96 + WRTC_SRTP_ROOM];
            int len = sl_rtcp_build_rr(buf, 96, pc->our_ssrc, &rb, 1);
            if (len > 0)
                wrtc_pc_send_rtcp(pc, buf, (size_t)len, sizeof buf);
        }
        return;
    }
    if (now - pc->last_sr_ms >= 1000) {
        pc->last_sr_ms = now;
        send_sr(pc, &pc->vout, now);
        send_sr(pc, &pc->aout, now);
    }
}
