/*
 * WebRTC publishers (WHIP) into the hub (see webrtc_internal.h):
 * SRTP-decrypted RTP -> the receive buffer (reorder, NACK, loss after
 * webrtc.nack_buffer) -> the H.264 depacketizer -> FLV AVC frames pushed
 * to the stream, so RTMP, HTTP-FLV, HLS and the recorder see a WebRTC
 * publisher like any other. Opus goes two ways: as is to the stream's
 * WebRTC viewers, and through the stream's audio bridge (media/audio_bridge.h:
 * one Opus->AAC transcoder off the loop) into the hub for everyone else,
 * only while the stream has a consumer that needs AAC (checked at each
 * packet and from the tick, stopped SL_AUDIO_BRIDGE_GRACE_MS after the
 * last one left); the bridge also hands the Opus to RTSP players. Timestamps: each track is anchored at the arrival of
 * its first packet and advanced by its RTP clock until both tracks have a
 * sender report; then RTP timestamps are mapped to the sender's clock so
 * the tracks are lip-synced (media/rtp_sync.h). The publisher's timers
 * (NACK, transport-wide feedback, PLI, receiver reports, the transcoder's
 * need) run from wrtc_media_tick.
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
#include "media/audio_bridge.h"
#include "proto/webrtc/webrtc_internal.h"
#include "sluice/errors.h"


void wrtc_pub_push(wrtc_pc_t *pc, uint8_t kind, int64_t dts, sl_buf_t *body)
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

/* A step of the timeline at the switch this large restarts the GOP cache. */
#define WRTC_SYNC_RESTART_MS 20

/*
 * Logs the switch of the timeline to the sender's reports once, with how
 * far apart the tracks arrived (what arrival anchoring would have put
 * between sound and picture). The switch happens in an SR or at the first
 * packet of the last track to start, so both paths call this.
 */
static void sync_note(wrtc_pc_t *pc)
{
    if (pc->sync_noted || pc->sync.mode != SL_RTP_SYNC_SR)
        return;
    pc->sync_noted = 1;
    if (pc->sync_v >= 0 && pc->sync_a >= 0) {
        /* The early track stepped forward by what it was ahead: audio's step
         * minus video's is how late audio came relative to its video. */
        int64_t jv = pc->sync.t[pc->sync_v].jump_us / 1000, ja = pc->sync.t[pc->sync_a].jump_us / 1000;
        SL_LOGI(&pc->sess.log, "webrtc: timestamps now from the sender's reports (audio arrived %lld ms after "
                "the video it goes with; video moved %lld ms, audio %lld ms)", (long long)(jv - ja),
                (long long)jv, (long long)ja);
        /* Frames cached before the step are on the old timeline: a player
         * joining now must not start on them (its first second would be
         * that far out of sync). Newcomers start at the next keyframe,
         * which is asked for at once. */
        if (jv >= WRTC_SYNC_RESTART_MS || ja >= WRTC_SYNC_RESTART_MS) {
            if (pc->stream)
                sl_stream_gop_restart(pc->stream);
            pc->want_key = 1;
            pc->last_pli_ms = 0;
        }
    } else {
        SL_LOGI(&pc->sess.log, "webrtc: timestamps now from the sender's reports");
    }
}

/* The dts of a packet of the video (or audio) track: the publisher's timeline (media/rtp_sync.h). */
static int64_t track_dts(wrtc_pc_t *pc, int video, uint32_t rtp_ts)
{
    int64_t dts = sl_rtp_sync_dts(&pc->sync, video ? pc->sync_v : pc->sync_a, rtp_ts, uv_now(pc->w->core->loop));
    sync_note(pc);
    return dts;
}

/*
 * Where a data message of the publisher goes: the newest media dts (the
 * tracks may be ahead of the arrival clock after the switch to sender
 * reports), or the arrival clock when that is later; 0 before any media.
 */
int64_t wrtc_pub_now_dts(wrtc_pc_t *pc)
{
    const sl_rtp_sync_t *s = &pc->sync;
    if (!s->zero_set)
        return 0;
    uint64_t now = uv_now(pc->w->core->loop);
    int64_t dts = now > s->zero_ms ? (int64_t)(now - s->zero_ms) : 0;
    for (int i = 0; i < s->n_tracks; i++)
        if (s->t[i].started && s->t[i].last_us / 1000 > dts)
            dts = s->t[i].last_us / 1000;
    return dts;
}

static void on_avc_config(void *ud, const uint8_t *rec, size_t len)
{
    wrtc_pc_t *pc = ud;
    sl_buf_t *b = sl_h264_flv_config_body(rec, len);
    if (b)
        wrtc_pub_push(pc, SL_FLV_VIDEO, pc->v_started ? track_dts(pc, 1, pc->v_last_ts) : wrtc_pub_now_dts(pc), b);
}

static void on_avc_frame(void *ud, uint32_t rtp_ts, const uint8_t *avcc, size_t len, int is_key)
{
    wrtc_pc_t *pc = ud;
    pc->v_last_ts = rtp_ts;
    pc->v_started = 1;
    int64_t dts = track_dts(pc, 1, rtp_ts);
    /* WebRTC has no B-frames in its profiles: pts = dts (CTS 0). */
    sl_buf_t *b = sl_h264_flv_frame_body(avcc, len, is_key, 0);
    if (b)
        wrtc_pub_push(pc, SL_FLV_VIDEO, dts, b);
}

static void on_vp8_frame(void *ud, uint32_t rtp_ts, const uint8_t *frame, size_t len, int is_key)
{
    wrtc_pc_t *pc = ud;
    int64_t dts = track_dts(pc, 1, rtp_ts);
    pc->v_last_ts = rtp_ts;
    pc->v_started = 1;
    sl_buf_t *b = sl_vp8_flv_frame_body(frame, len, is_key);
    if (b)
        wrtc_pub_push(pc, SL_FLV_VIDEO, dts, b);
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

/*
 * The stream's sinks this publisher feeds Opus itself, so they need no
 * AAC: the stream's own WebRTC viewers (they get the publisher's Opus
 * from on_opus) and the AAC->Opus tap (idle while a WebRTC publisher
 * feeds the stream). Every other sink (RTMP and HTTP-FLV players, the HLS
 * segmenter, the recorder, an RTSP player without an Opus side) needs AAC:
 * the audio bridge (media/audio_bridge.h) counts them and runs Opus->AAC
 * only while there is one.
 */
static size_t own_opus_sinks(void *ud)
{
    const wrtc_pc_t *pc = ud;
    const sl_stream_t *st = pc->stream;
    size_t own = 0;
    if (!st || !pc->ws)
        return 0;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &pc->ws->viewers) {
        const wrtc_pc_t *v = sl_container_of(it, wrtc_pc_t, vlink);
        if (v->sink_on && v->sink.stream == st)
            own++;
    }
    if (pc->ws->tap_on && pc->ws->tap.stream == st)
        own++;
    return own;
}

/* An Opus packet of the publisher: to the viewers as is, to the hub as AAC. */
static void on_opus(wrtc_pc_t *pc, const uint8_t *opus, size_t len, uint32_t rtp_ts)
{
    int64_t dts = track_dts(pc, 0, rtp_ts);
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(pc->w->core->cfg);
    if (sl_rtp_sync_take_jump(&pc->sync, pc->sync_a) > 20) {
        /* The audio track stepped forward (by more than an Opus frame) at the
         * switch to sender reports. The transcoder follows its input by
         * sample count and resyncs only beyond SL_TRANSCODE_RESYNC_MS: a new
         * one starts at this dts (a few frames in flight are lost, once). */
        sl_audio_bridge_restart(pc->abridge, "audio timeline moved to the sender's clock");
    }
    if (!wc->transcode_audio) {
        /* No AAC wanted: Opus goes into the hub as Enhanced RTMP audio. */
        sl_buf_t *b = sl_opus_flv_frame_body(opus, len);
        if (b)
            wrtc_pub_push(pc, SL_FLV_AUDIO, dts, b);
        return;
    }
    if (pc->ws && pc->ws->n_viewers) {
        /* One copy of the packet, referenced by every viewer's pacing queue. */
        sl_buf_t *b = sl_buf_from(opus, len);
        sl_list_t *it, *nx;
        sl_list_foreach_safe(it, nx, &pc->ws->viewers) {
            if (b)
                wrtc_view_send_opus_buf(sl_container_of(it, wrtc_pc_t, vlink), b, 0, len, dts);
        }
        sl_buf_unref(b);
    }
    if (!pc->abridge)
        return;
    /* To the bridge: AAC for the hub while someone needs it, and the Opus
     * as is to its side subscribers (an RTSP player of this stream). */
    sl_buf_t *b = sl_opus_flv_frame_body(opus, len);
    if (!b)
        return;
    sl_frame_t *f;
    if (sl_frame_new(SL_FLV_AUDIO, (uint32_t)(dts < 0 ? 0 : dts), b, &f) == 0) {
        sl_audio_bridge_push(pc->abridge, f);
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
    sl_rtp_sync_init(&pc->sync);
    pc->sync_v = pc->has_video && pc->vrx ? sl_rtp_sync_add_track(&pc->sync, 90000) : -1;
    pc->sync_a = pc->has_audio ? sl_rtp_sync_add_track(&pc->sync, 48000) : -1;
    /* Opus->AAC starts with the first consumer that needs it (the bridge's
     * policy); one already attached (HLS, a recorder, a waiting player)
     * starts it now. Without the bridge (webrtc.transcode_audio off, or no
     * memory) Opus goes into the hub as is. */
    if (pc->has_audio && wc->transcode_audio &&
        sl_audio_bridge_new(w->core->loop, st, &pc->sess.log, &pc->abridge) == 0) {
        sl_audio_bridge_set_own(pc->abridge, own_opus_sinks, pc);
        sl_audio_bridge_set_codec(pc->abridge, SL_CODEC_OPUS);
        sl_audio_bridge_update(pc->abridge, uv_now(w->core->loop));
    }
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
    sl_audio_bridge_free(pc->abridge);
    pc->abridge = NULL;
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


/*
 * A sender report of the publisher: the video receive buffer's LSR/DLSR,
 * and the track's mapping to the sender's clock (lip sync, media/rtp_sync.h).
 * SRs of SSRCs we do not take media from (RTX, a second stream) are ignored.
 */
void wrtc_pub_on_sr(wrtc_pc_t *pc, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts)
{
    if (pc->kind != WRTC_PUBLISHER || !pc->stream || !ssrc)
        return;
    int track = -1;
    if (ssrc == pc->in_video_ssrc) {
        if (pc->vrx)
            sl_rtp_rx_on_sr(pc->vrx, ntp, rtp_ts, uv_now(pc->w->core->loop));
        track = pc->sync_v;
    } else if (ssrc == pc->in_audio_ssrc) {
        track = pc->sync_a;
    }
    if (track < 0)
        return;
    uint64_t refused = pc->sync.refused;
    sl_rtp_sync_on_sr(&pc->sync, track, ntp, rtp_ts);
    sync_note(pc);
    if (pc->sync.refused == 1 && refused == 0)
        SL_LOGI(&pc->sess.log, "webrtc: the tracks' sender reports disagree with their arrival by more than "
                "%d ms: timestamps stay anchored at arrival", SL_RTP_SYNC_MAX_SKEW_MS);
}

/* ------------------------------------------------------------------ */
/* timers                                                              */

void wrtc_media_tick(wrtc_pc_t *pc, uint64_t now)
{
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(pc->w->core->cfg);
    if (pc->kind == WRTC_PUBLISHER) {
        sl_audio_bridge_update(pc->abridge, now);
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
    wrtc_view_tick(pc, now);
}
