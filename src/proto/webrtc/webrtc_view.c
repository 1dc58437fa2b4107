/*
 * WebRTC viewers (WHEP) of the hub (see webrtc_internal.h): a hub sink.
 * Video frames are packetized once per frame (the payloads are cached on
 * the frame, media/rtp.h) and each viewer only writes its 12-byte header
 * and encrypts; audio is Opus from the publisher, or from one AAC->Opus
 * transcoder per stream fed by an internal hub sink (the "tap"), shared by
 * the stream's viewers. NACKs are answered from a per-viewer history of
 * what was sent (references, no copies). The RTCP of both kinds of
 * session is dispatched here (wrtc_on_rtcp).
 */
#include <stdio.h>
#include <string.h>

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

void wrtc_view_send_opus(wrtc_pc_t *v, const uint8_t *opus, size_t len, int64_t dts_ms)
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



/*
 * B-frames (webrtc.bframes, docs/webrtc.md "B-frames"). RTMP sources often
 * have them (x264's default, OBS with bframes > 0); their frames come in
 * decode order with pts = dts + cts. WebRTC receivers decode each frame
 * as it arrives and show it at once: Chromium's decoder fails on the first
 * frame whose output it must hold back, asks for a keyframe (PLI, which an
 * RTMP source cannot honour) and shows about one frame per GOP; RTP
 * timestamps by dts instead do not change that (measured; see the doc).
 * So B-frames are left out, as SRS ("bframe discard") and ZLMediaKit do:
 * the viewer gets the I and P frames, at their pts, and plays smoothly at
 * a lower frame rate. A B-frame used as a reference (x264's b-pyramid) goes
 * too, or the decoder would still have to reorder: the decoder treats the
 * frame_num gap as a lost frame. x264 streams (preset veryfast, b-pyramid
 * normal) then decode without an error or a keyframe request; an encoder
 * that predicts P frames from B-frames would show artifacts until the next
 * keyframe (webrtc.bframes: send is then the choice for capable clients).
 * Returns 1 when f is not to be sent.
 */
static int drop_bframe(wrtc_pc_t *v, const sl_frame_t *f)
{
    sl_stream_t *st = v->sink.stream;
    if (f->codec != SL_CODEC_AVC || (f->flags & SL_FRAME_KEY) || !st ||
        sl_webrtc_cfg(v->w->core->cfg)->bframes != SL_WEBRTC_BFRAMES_DROP)
        return 0;
    int nal_len_size = 4;
    const sl_frame_t *cfg = st->video_config;
    sl_h264_config_t hc;
    if (cfg && sl_h264_config_parse(cfg->body->data + cfg->data_off, cfg->body->len - cfg->data_off, &hc) == 0)
        nal_len_size = hc.nal_len_size;
    sl_h264_au_info_t ai;
    if (sl_h264_au_info(f->body->data + f->data_off, f->body->len - f->data_off, nal_len_size, &ai) || !ai.has_b)
        return 0;
    v->bframes_dropped++;
    v->w->c.bframes_dropped++;
    if (!v->bframes_warned) {
        v->bframes_warned = 1;
        SL_LOGW(&v->sess.log,
                "webrtc: the stream has H.264 B-frames, which WebRTC players do not reorder; this viewer "
                "gets its I and P frames only (webrtc.bframes: drop; encode without B-frames for the full "
                "frame rate)");
    }
    return 1;
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
        if (drop_bframe(v, f))
            return;
        view_send_video(v, f);
        return;
    }
    if (f->kind == SL_FLV_DATA) {
        wrtc_view_send_data(v, f);
        return;
    }
    if (f->kind == SL_FLV_AUDIO) {
        if (f->codec == SL_CODEC_OPUS && !(f->flags & SL_FRAME_CONFIG))
            wrtc_view_send_opus(v, f->body->data + f->data_off, f->body->len - f->data_off, f->dts_ms);
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
        wrtc_view_send_opus(sl_container_of(it, wrtc_pc_t, vlink), f->body->data + f->data_off,
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
/* RTCP                                                                */

static void rtcp_fir(void *ud, uint32_t sender_ssrc, uint32_t media_ssrc, uint8_t seq_nr)
{
    (void)seq_nr;
    rtcp_pli(ud, sender_ssrc, media_ssrc);
}

static void rtcp_sr(void *ud, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts, uint32_t pkts, uint32_t octets)
{
    (void)pkts;
    (void)octets;
    wrtc_pub_on_sr(ud, ssrc, ntp, rtp_ts);
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

void wrtc_view_tick(wrtc_pc_t *v, uint64_t now)
{
    if (now - v->last_sr_ms >= 1000) {
        v->last_sr_ms = now;
        send_sr(v, &v->vout, now);
        send_sr(v, &v->aout, now);
    }
}