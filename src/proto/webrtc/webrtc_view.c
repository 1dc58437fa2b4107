/*
 * WebRTC viewers (WHEP) of the hub (see webrtc_internal.h): a hub sink.
 * Video frames are packetized once per frame (the payloads are cached on
 * the frame, media/rtp.h) and each viewer only writes its 12-byte header
 * and encrypts; audio is Opus from the publisher (a WHIP one directly, an
 * RTSP/SRT/pulled one through its audio bridge's side path, untouched), or
 * from one AAC->Opus transcoder per stream fed by an internal hub sink (the
 * "tap"), shared by the stream's viewers. NACKs are answered from a per-viewer history of
 * what was sent, audio and video (references, no copies). The RTCP of both
 * kinds of session is dispatched here (wrtc_on_rtcp).
 *
 * Congestion control and pacing (docs/webrtc.md "Congestion control and
 * pacing"): every viewer has an estimator (media/cc.h: its REMB, and the
 * loss of its receiver reports) and a pacer (media/pacer.h: a bounded
 * queue of payload references). Packets are queued and drained at 2.5 x
 * the estimate, audio and retransmissions first, by the viewer itself when
 * it has budget and otherwise by one protocol-wide 5 ms timer (webrtc.c)
 * that runs only while some viewer has packets queued. The sequence
 * number is given when a packet leaves, so video dropped from the queue
 * leaves no gap for the viewer to NACK. A send the socket refuses
 * (EAGAIN/ENOBUFS) stays queued and is retried. A viewer whose queue holds
 * more than webrtc.max_queue_ms of media loses its queued video (not a
 * frame already begun on the wire) and resumes at the next keyframe (a
 * WHIP source is asked for one); audio goes on. Video packets carry the
 * abs-send-time header extension when the viewer offered it, which is
 * what makes aiortc (and Chromium's best estimator) send REMB.
 */
#include <stdio.h>
#include <string.h>

#include "app/events.h"
#include "base/alloc.h"
#include "base/log.h"
#include "media/cc.h"
#include "media/flv.h"
#include "media/frame.h"
#include "media/pacer.h"
#include "media/rtcp.h"
#include "media/rtp.h"
#include "media/rtp_h264.h"
#include "media/rtp_rx.h"
#include "media/rtp_vp8.h"
#include "media/transcode.h"
#include "net/srtp.h"
#include "proto/webrtc/webrtc_internal.h"
#include "sluice/errors.h"

#define HIST_N 1024               /* sent packets kept per viewer track for NACK */
#define PACE_VIDEO_CAP 4096       /* queued video packets per viewer (~5 MB of payload) */
#define PACE_PRIO_CAP 512         /* queued audio + retransmissions per viewer */
#define PACING_FACTOR 2.5         /* pacing rate = factor x estimate (libwebrtc's) */
#define REPLAY_GRACE_MAX_MS 3000  /* longest time a GOP-cache replay may hold the queue */
#define ABS_SEND_TIME_LEN 8       /* RFC 8285 one-byte header: 4 + 1 + 3 bytes */

/* A viewer's pacing state (allocated at play, freed at stop). */
struct wrtc_pacer {
    wrtc_pc_t *v;
    sl_list_t link;                /* in w->pacing while packets are queued */
    sl_cc_t cc;                    /* the bandwidth estimate */
    sl_pacer_t q;                  /* the queue */
    uint32_t frame;                /* video frames queued (the pacer's frame numbers) */
    int recovering;                /* video dropped: waiting for a keyframe (skips counted) */
    uint64_t replay_until_ms;      /* the GOP-cache replay may be behind until then */
    uint64_t last_log_ms;          /* drops are logged at most every 10 s */
    uint64_t drops;                /* times the queue was cut */
    uint64_t rr_ms[3], rr_octets[3]; /* send totals at the last receiver reports (delivered rate) */
    int rr_n;
    uint64_t started_ms;           /* play start (a viewer silent since then has no estimate) */
    uint64_t nacked;               /* distinct packets NACKed since the last report */
    uint64_t rr_packets;           /* packets sent at the last report */
};

/* ------------------------------------------------------------------ */
/* viewer                                                              */

typedef struct hist_ent {
    sl_buf_t *buf;                 /* the packet payload's buffer (reference) */
    uint32_t off;
    uint16_t len;
    uint16_t seq;
    uint32_t ts;
    uint8_t marker, used;
    uint8_t nacked;                /* the viewer asked for it at least once */
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
    e->nacked = 0;
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

/* The 24-bit abs-send-time (6.18 fixed-point seconds) of now. */
static uint32_t abs_send_time_now(void)
{
    uint64_t ns = uv_hrtime();
    uint64_t sec = ns / 1000000000u, frac = ns % 1000000000u;
    return (uint32_t)(((sec << 18) | ((frac << 18) / 1000000000u)) & 0xFFFFFF);
}

/*
 * Builds, protects and sends one RTP packet. 0 when it left (or was lost
 * for good), SL_EAGAIN when the socket is full (nothing counted: the
 * caller retries the same packet), else an error.
 */
static int send_one(wrtc_pc_t *v, wrtc_out_track_t *t, sl_buf_t *buf, uint32_t off, size_t len, int marker,
                    uint16_t seq, uint32_t ts, int abs_id)
{
    uint8_t pkt[WRTC_MAX_DATAGRAM + WRTC_SRTP_ROOM];
    size_t hl = 12 + (abs_id ? ABS_SEND_TIME_LEN : 0);
    if (len + hl > WRTC_MAX_DATAGRAM)
        return SL_ETOOBIG;
    if (!v->srtp || !v->have_addr)
        return SL_ECLOSED;
    pkt[0] = abs_id ? 0x90 : 0x80;
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
    if (abs_id) {
        /* RFC 8285 one-byte header: 0xBEDE, one word, id | (3 - 1), 24 bits. */
        uint32_t ast = abs_send_time_now();
        pkt[12] = 0xBE;
        pkt[13] = 0xDE;
        pkt[14] = 0;
        pkt[15] = 1;
        pkt[16] = (uint8_t)((abs_id << 4) | 2);
        pkt[17] = (uint8_t)(ast >> 16);
        pkt[18] = (uint8_t)(ast >> 8);
        pkt[19] = (uint8_t)ast;
    }
    if (v->wout) {
        /* Protected and sent by the viewer's worker (webrtc_wout.c). */
        int rc = wrtc_wout_rtp(v, pkt, hl, buf, off, (uint16_t)len);
        if (rc)
            return rc;
        v->w->c.rtp_out++;
        v->w->c.rtp_bytes_out += hl + len;
        v->rtp_out++;
        v->sess.msgs_out++;
        v->sess.bytes_out += hl + len + v->wout_overhead;
        return 0;
    }
    memcpy(pkt + hl, buf->data + off, len);
    size_t n = hl + len;
    /* SRTP may protect the same sequence number again on a retry
     * (allow_repeat_tx, net/srtp.c), as it does for NACKed packets. */
    if (sl_srtp_protect(v->srtp, pkt, &n, sizeof pkt))
        return SL_EIO;
    int rc = wrtc_send(v, pkt, n);
    if (rc == SL_EAGAIN)
        return rc;
    v->w->c.rtp_out++;
    v->w->c.rtp_bytes_out += hl + len;
    v->rtp_out++;
    v->sess.msgs_out++;
    return rc;
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

/* ---- pacing ---- */

#define SILENT_VIEWER_MS 5000     /* no RTCP feedback for this long after play: no estimate */

static uint64_t pacing_rate(const wrtc_pc_t *v)
{
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(v->w->core->cfg);
    const struct wrtc_pacer *pp = v->pacer;
    if (!wc->pacing)
        return 0;
    /* A viewer that sends neither receiver reports nor REMB (a load tool,
     * a minimal client) gives nothing to estimate with: start_bitrate
     * would be a guess that only drops its video. It is paced at the
     * maximum (bursts still smoothed) and limited by the socket (EAGAIN)
     * and the queue's age only. */
    if (!pp->cc.n_remb && !pp->cc.n_reports && uv_now(v->w->core->loop) - pp->started_ms > SILENT_VIEWER_MS)
        return (uint64_t)((double)wc->max_bitrate * PACING_FACTOR);
    return (uint64_t)((double)sl_cc_estimate(&pp->cc) * PACING_FACTOR);
}

/* The pacer's send callback: one queued packet to the wire. */
static int pace_send(void *ud, const sl_pacer_pkt_t *k)
{
    wrtc_pc_t *v = ud;
    wrtc_out_track_t *t = k->track ? &v->aout : &v->vout;
    int rtx = k->kind == SL_PACER_RTX;
    uint16_t seq = rtx ? k->seq : t->seq;
    int rc = send_one(v, t, k->buf, k->off, k->len, k->marker, seq, k->ts,
                      k->track ? 0 : v->ext_abs_send_time);
    if (rc == SL_EAGAIN) {
        v->send_retries++;
        v->w->c.send_retries++;
        return rc;
    }
    uint64_t now = uv_now(v->w->core->loop);
    if (rtx) {
        v->w->c.rtx_out++;
        v->rtx_out++;
        return rc;
    }
    /* Sent, or lost for good: either way it is in the history for NACK. */
    hist_put(t, k->buf, k->off, k->len, seq, k->ts, k->marker, now);
    t->seq++;
    track_sent(v, t, k->ts, k->len);
    return rc;
}

/* Drains v's queue now; keeps it on the timer's list while anything remains. */
static int pace_drain(wrtc_pc_t *v, uint64_t now)
{
    struct wrtc_pacer *pp = v->pacer;
    sl_pacer_set_rate(&pp->q, pacing_rate(v));
    int rc = sl_pacer_drain(&pp->q, now, pace_send, v);
    if (v->wout)
        wrtc_wout_flush(v); /* what left goes to the worker in one message */
    if (sl_pacer_empty(&pp->q)) {
        sl_list_remove(&pp->link);
    } else if (!sl_list_linked(&pp->link)) {
        sl_list_push_back(&v->w->pacing, &pp->link);
        wrtc_pace_arm(v->w);
    }
    return rc;
}

/* Queues one packet (a reference to buf) and sends what the budget allows. */
static void pace_push(wrtc_pc_t *v, const sl_pacer_pkt_t *k)
{
    if (sl_pacer_push(&v->pacer->q, k, uv_now(v->w->core->loop)) == 0)
        return;
    SL_LOGD(&v->sess.log, "webrtc pacer: queue full");
}

/*
 * The viewer fell behind (or its video ring is full): its queued video
 * goes, but a frame already begun; the next keyframe restarts it (a WHIP
 * publisher is asked for one now). Frames are counted.
 */
static void view_drop_video(wrtc_pc_t *v, uint64_t now, uint32_t queue_ms)
{
    struct wrtc_pacer *pp = v->pacer;
    uint32_t frames = sl_pacer_drop_video(&pp->q);
    v->frames_dropped += frames;
    v->w->c.frames_dropped += frames;
    pp->drops++;
    v->need_key = 1;
    pp->recovering = 1;
    if (v->ws && v->ws->publisher)
        v->ws->publisher->want_key = 1;
    if (!pp->last_log_ms || now - pp->last_log_ms >= 10000) {
        pp->last_log_ms = now;
        SL_LOGI(&v->sess.log, "webrtc viewer behind (queue %u ms, estimate %llu kbit/s): video dropped "
                "to the next keyframe (%llu frames so far)", queue_ms,
                (unsigned long long)(sl_cc_estimate(&pp->cc) / 1000), (unsigned long long)v->frames_dropped);
    }
}

/* 1 when the viewer's queue holds more media than webrtc.max_queue_ms. */
static int view_behind(wrtc_pc_t *v, uint64_t now, uint32_t *queue_ms)
{
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(v->w->core->cfg);
    struct wrtc_pacer *pp = v->pacer;
    sl_pacer_set_rate(&pp->q, pacing_rate(v));
    *queue_ms = sl_pacer_queue_ms(&pp->q, now);
    if (pp->replay_until_ms && now < pp->replay_until_ms)
        return 0; /* the GOP cache's replay is still going out */
    return *queue_ms > (uint32_t)wc->max_queue_ms;
}

/* Creates v's pacer (at play). 0 or SL_ENOMEM. */
static int pacer_new(wrtc_pc_t *v)
{
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(v->w->core->cfg);
    struct wrtc_pacer *pp = sl_calloc(1, sizeof(*pp));
    if (!pp)
        return SL_ENOMEM;
    pp->v = v;
    sl_list_init(&pp->link);
    sl_cc_init(&pp->cc, (uint64_t)wc->min_bitrate, (uint64_t)wc->start_bitrate, (uint64_t)wc->max_bitrate);
    if (sl_pacer_init(&pp->q, PACE_VIDEO_CAP, PACE_PRIO_CAP)) {
        sl_free(pp);
        return SL_ENOMEM;
    }
    /* The first report's interval starts at play: the floor is known from it. */
    pp->rr_ms[0] = uv_now(v->w->core->loop);
    pp->rr_n = 1;
    pp->started_ms = pp->rr_ms[0];
    v->pacer = pp;
    return 0;
}

static void pacer_free(wrtc_pc_t *v)
{
    struct wrtc_pacer *pp = v->pacer;
    if (!pp)
        return;
    v->pacer = NULL;
    sl_list_remove(&pp->link);
    sl_pacer_cleanup(&pp->q);
    sl_free(pp);
}

/* A viewer's pacing figures for the API; see webrtc_internal.h. */
void wrtc_view_pace_stats(const wrtc_pc_t *v, uint64_t now_ms, uint64_t *estimated_bps, uint64_t *remb_bps,
                          uint32_t *queue_ms, uint64_t *queue_bytes)
{
    const struct wrtc_pacer *pp = v->pacer;
    *estimated_bps = sl_cc_estimate(&pp->cc);
    *remb_bps = pp->cc.remb_bps;
    *queue_ms = sl_pacer_queue_ms(&pp->q, now_ms);
    *queue_bytes = pp->q.bytes;
}

/* Sends one audio packet (now, or queued ahead of video). */
void wrtc_view_send_opus_buf(wrtc_pc_t *v, sl_buf_t *buf, uint32_t off, size_t len, int64_t dts_ms)
{
    wrtc_out_track_t *t = &v->aout;
    /* At the start audio waits for the first keyframe (both tracks' RTP
     * clocks start there); while video recovers from drops it goes on. */
    if (!t->on || !v->dtls_up || !v->sink_on || !v->pacer || (v->need_key && !v->pacer->recovering) ||
        len > 0xFFFF)
        return;
    sl_pacer_pkt_t k = {.buf = buf, .off = off, .len = (uint16_t)len, .kind = SL_PACER_AUDIO, .marker = 1,
                        .track = 1, .ts = rtp_ts_of(v, t, dts_ms)};
    pace_push(v, &k);
    pace_drain(v, uv_now(v->w->core->loop));
}

static void view_send_video(wrtc_pc_t *v, sl_frame_t *f)
{
    wrtc_out_track_t *t = &v->vout;
    sl_stream_t *st = v->sink.stream;
    if (!t->on || !st || !v->pacer || (f->codec == SL_CODEC_AVC && !st->video_config))
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
    struct wrtc_pacer *pp = v->pacer;
    uint32_t frame = ++pp->frame;
    for (uint32_t i = 0; i < pl->n; i++) {
        const sl_rtp_pkt_ref_t *r = &pl->pkts[i];
        sl_pacer_pkt_t k = {.buf = pl->buf, .off = r->off, .len = r->len, .kind = SL_PACER_VIDEO,
                            .marker = r->marker, .key = (f->flags & SL_FRAME_KEY) ? 1 : 0, .ts = ts,
                            .frame = frame};
        if (sl_pacer_push(&pp->q, &k, now)) {
            /* The video ring is full: this frame cannot go whole. */
            view_drop_video(v, now, sl_pacer_queue_ms(&pp->q, now));
            break;
        }
    }
    sl_rtp_payloads_done(&payloads); /* the queue holds its own references */
    pace_drain(v, now);
}

/*
 * The pacing timer (webrtc.c): drains every viewer on the list, starting
 * one further each round so that a full socket does not always starve the
 * same viewers. Returns 1 while some viewer still has packets queued.
 */
int wrtc_view_pace(wrtc_t *w, uint64_t now_ms)
{
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &w->pacing) {
        struct wrtc_pacer *pp = sl_container_of(it, struct wrtc_pacer, link);
        if (pace_drain(pp->v, now_ms) == SL_EAGAIN)
            break; /* the shared socket is full: everyone waits for the next round */
    }
    if (!sl_list_empty(&w->pacing)) {
        sl_list_t *first = w->pacing.next;
        sl_list_remove(first);
        sl_list_push_back(&w->pacing, first);
    }
    return !sl_list_empty(&w->pacing);
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
        uint32_t queue_ms;
        if (v->pacer && !v->need_key && view_behind(v, uv_now(v->w->core->loop), &queue_ms))
            view_drop_video(v, uv_now(v->w->core->loop), queue_ms);
        if (v->need_key) {
            if (!(f->flags & SL_FRAME_KEY)) {
                if (v->pacer && v->pacer->recovering) {
                    v->frames_dropped++; /* skipped while waiting for the keyframe */
                    v->w->c.frames_dropped++;
                }
                return;
            }
            v->need_key = 0;
            if (v->pacer)
                v->pacer->recovering = 0;
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
            wrtc_view_send_opus_buf(v, f->body, f->data_off, f->body->len - f->data_off, f->dts_ms);
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
        wrtc_view_send_opus_buf(sl_container_of(it, wrtc_pc_t, vlink), f->body, f->data_off,
                                f->body->len - f->data_off, f->dts_ms);
    }
}

/* True when the stream's (non-WebRTC) publisher has Opus behind an audio bridge. */
static int bridged_opus(const sl_stream_t *st)
{
    return sl_audio_bridge_codec(sl_audio_bridge_of(st)) == SL_CODEC_OPUS;
}

static void tap_on_frame(sl_sink_t *sink, sl_frame_t *f)
{
    wrtc_stream_t *ws = sink->ctx;
    if (f->kind != SL_FLV_AUDIO || f->codec != SL_CODEC_AAC || ws->publisher || bridged_opus(sink->stream))
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

/* The publisher's Opus through its audio bridge, as is (no AAC round trip). */
static void view_on_side(sl_audio_side_t *side, sl_frame_t *f)
{
    wrtc_pc_t *v = side->ctx;
    if (f->codec == SL_CODEC_OPUS && !(f->flags & SL_FRAME_CONFIG) && f->body->len > f->data_off)
        wrtc_view_send_opus_buf(v, f->body, f->data_off, f->body->len - f->data_off, f->dts_ms);
}

static void tap_update(wrtc_stream_t *ws)
{
    /* No tap for an Opus publisher behind a bridge: its viewers take the
     * Opus from the bridge's side path (the tap would also count as a sink
     * needing AAC and keep the bridge's transcoder running for nothing). */
    int want = ws->n_viewers > 0 && !ws->publisher && sl_webrtc_cfg(ws->w->core->cfg)->transcode_audio &&
               !bridged_opus(sl_hub_find(ws->w->core->hub, ws->path));
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
    if (!v->pacer && pacer_new(v))
        return SL_ENOMEM;
    if (wrtc_wout_attach(v))
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
    sl_audio_bridge_t *ab = ws->publisher ? NULL : sl_audio_bridge_of(v->sink.stream);
    if (ab && sl_audio_bridge_codec(ab) == SL_CODEC_OPUS) {
        v->aside = (sl_audio_side_t){.on_frame = view_on_side, .ctx = v, .sink = &v->sink};
        sl_audio_bridge_side_add(ab, &v->aside);
    }
    /* The hub replayed its GOP cache into the queue just now: that backlog
     * may take longer than max_queue_ms to leave at the pacing rate, and
     * is not a sign of a slow viewer until it should have left. */
    uint64_t now = uv_now(w->core->loop);
    uint32_t replay_ms = sl_pacer_queue_ms(&v->pacer->q, now);
    if (replay_ms > REPLAY_GRACE_MAX_MS)
        replay_ms = REPLAY_GRACE_MAX_MS;
    v->pacer->replay_until_ms = now + replay_ms;
    return 0;
}

void wrtc_view_stop(wrtc_pc_t *v, const char *reason)
{
    sl_audio_bridge_side_remove(&v->aside);
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
    wrtc_wout_detach(v);
    pacer_free(v);
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
    if (!e->nacked) {
        e->nacked = 1;
        if (v->pacer)
            v->pacer->nacked++;
    }
    uint64_t now = uv_now(v->w->core->loop);
    if (now - e->sent_ms < (v->rtt_ms ? v->rtt_ms : 20))
        return; /* asked again within a round trip: the first resend is on its way */
    if (!v->pacer || e->len == 0)
        return;
    e->sent_ms = now;
    /* Ahead of queued video, behind nothing but audio; counted when it leaves. */
    sl_pacer_pkt_t k = {.buf = e->buf, .off = e->off, .len = e->len, .kind = SL_PACER_RTX, .marker = e->marker,
                        .track = t == &v->aout ? 1 : 0, .seq = e->seq, .ts = e->ts};
    pace_push(v, &k);
    pace_drain(v, now);
}

static void rtcp_remb(void *ud, uint32_t sender_ssrc, uint64_t bitrate_bps, const uint32_t *ssrcs, int n)
{
    wrtc_pc_t *v = ud;
    (void)sender_ssrc;
    (void)ssrcs;
    (void)n;
    if (v->kind != WRTC_VIEWER || !v->pacer)
        return;
    v->w->c.remb_in++;
    sl_cc_on_remb(&v->pacer->cc, bitrate_bps, uv_now(v->w->core->loop));
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

/*
 * A viewer's report into its estimator: the loss, and the rate it got
 * over the last two or three report intervals (a window that spans a
 * keyframe) as the floor when every one of them was low-loss.
 */
static void rr_to_cc(wrtc_pc_t *pc, uint8_t fraction_lost)
{
    struct wrtc_pacer *pp = pc->pacer;
    uint64_t now = uv_now(pc->w->core->loop);
    uint64_t octets = pc->vout.octets + pc->aout.octets;
    /* We resend on the same SSRC (no RTX stream), so a packet recovered by
     * NACK counts as received in the report and its fraction lost says
     * little on a policed path. The packets NACKed for the first time in
     * the interval, over those sent, is the loss the path really had. */
    uint64_t packets = pc->vout.packets + pc->aout.packets;
    if (packets > pp->rr_packets && pp->nacked) {
        uint64_t f = pp->nacked * 256 / (packets - pp->rr_packets);
        if (f > 255)
            f = 255;
        if (f > fraction_lost)
            fraction_lost = (uint8_t)f;
    }
    pp->nacked = 0;
    pp->rr_packets = packets;
    sl_cc_on_loss(&pp->cc, fraction_lost, pc->rtt_ms, now);
    int n = pp->rr_n < 3 ? pp->rr_n : 3;
    uint64_t delivered = 0;
    if (n) {
        int oldest = pp->rr_n < 3 ? 0 : pp->rr_n % 3;
        uint64_t ms = now - pp->rr_ms[oldest];
        if (ms >= 500 && octets >= pp->rr_octets[oldest])
            delivered = (octets - pp->rr_octets[oldest]) * 8000 / ms;
    }
    if (fraction_lost >= (uint8_t)(SL_CC_LOW_LOSS * 256)) {
        /* Lossy: no floor, and the window restarts here (what was sent
         * during lossy intervals was not all delivered). */
        sl_cc_on_delivered(&pp->cc, 0);
        pp->rr_n = 0;
    } else {
        sl_cc_on_delivered(&pp->cc, delivered * 85 / 100); /* a margin under what got through */
    }
    pp->rr_ms[pp->rr_n % 3] = now;
    pp->rr_octets[pp->rr_n % 3] = octets;
    pp->rr_n++;
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
    if (pc->pacer)
        rr_to_cc(pc, rb->fraction_lost);
}

void wrtc_on_rtcp(wrtc_pc_t *pc, const uint8_t *p, size_t len)
{
    const sl_rtcp_cb_t cb = {
        .sr = rtcp_sr,
        .rr_block = rtcp_rr,
        .nack = rtcp_nack,
        .pli = rtcp_pli,
        .fir = rtcp_fir,
        .remb = rtcp_remb,
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