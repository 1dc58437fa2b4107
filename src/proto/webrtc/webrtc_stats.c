/*
 * The "webrtc" service (src/app/svc/webrtc.h): WebRTC's counters and each
 * session's transport and media statistics, for the Server API's client
 * detail and /metrics, which reach the protocol only through the service
 * registry (DESIGN.md §2). Registered by webrtc.c at start, unregistered
 * at stop.
 *
 * Everything is read on request from what the sessions already keep
 * (webrtc_internal.h); the only work done ahead of a request is one byte
 * sample per session and second, taken from the tick, from which the
 * bitrates over the last few seconds are computed. The transcoder gauges
 * are counted on request (publishers and per-stream states: a walk).
 */
#include <string.h>

#include "app/services.h"
#include "app/svc/webrtc.h"
#include "media/flv.h"
#include "media/rtp_rx.h"
#include "proto/webrtc/webrtc_internal.h"
#include "sluice/errors.h"

/* True while the publisher's audio bridge runs its Opus->AAC transcoder. */
static int wrtc_pub_transcoding(const wrtc_pc_t *pc)
{
    sl_audio_bridge_stats_t s;
    sl_audio_bridge_stats(pc->abridge, &s, NULL);
    return s.transcoding;
}

static void get_counters(void *ud, sl_webrtc_counters_t *out, size_t out_size)
{
    wrtc_t *w = ud;
    sl_webrtc_counters_t c;
    memset(&c, 0, sizeof c);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &w->pcs) {
        const wrtc_pc_t *pc = sl_container_of(it, wrtc_pc_t, link);
        if (pc->kind == WRTC_PUBLISHER) {
            c.publishers_now++;
            if (pc->abridge && wrtc_pub_transcoding(pc))
                c.transcoders_to_aac++;
        } else
            c.viewers_now++;
    }
    c.sessions_total = w->c.sessions_total;
    c.sessions_failed = w->c.sessions_failed;
    c.stun_in = w->c.stun_in;
    c.stun_refused = w->c.stun_bad;
    c.dtls_handshakes = w->c.dtls_done;
    c.rtp_in = w->c.rtp_in;
    c.rtp_out = w->c.rtp_out;
    c.rtp_bytes_in = w->c.rtp_bytes_in;
    c.rtp_bytes_out = w->c.rtp_bytes_out;
    c.srtp_failures = w->c.srtp_fail;
    c.nack_in = w->c.nack_in;
    c.nack_out = w->c.nack_out;
    c.retransmissions = w->c.rtx_out;
    c.pli_in = w->c.pli_in;
    c.pli_out = w->c.pli_out;
    c.datagrams_unknown = w->c.datagrams_unknown;
    c.dc_messages_in = w->c.dc_messages_in;
    c.dc_messages_out = w->c.dc_messages_out;
    size_t pos = 0;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&w->streams, &pos)) != NULL) {
        const wrtc_stream_t *ws = e->val;
        if (ws->to_opus)
            c.transcoders_to_opus++;
    }
    c.bframes_dropped = w->c.bframes_dropped;
    c.frames_dropped = w->c.frames_dropped;
    c.send_retries = w->c.send_retries;
    c.remb_in = w->c.remb_in;
    c.worker_send_drops = atomic_load_explicit(&w->wout_drops, memory_order_relaxed);
    memcpy(out, &c, out_size < sizeof c ? out_size : sizeof c);
}

/* kbit/s between the oldest sample kept and now (0 before the first second). */
static double rate_kbps(const wrtc_pc_t *pc, const uint64_t *samples, uint64_t now_bytes, uint64_t now_ms)
{
    if (pc->rate_n == 0)
        return 0;
    int oldest = pc->rate_n < WRTC_RATE_N ? 0 : pc->rate_n % WRTC_RATE_N;
    uint64_t ms = now_ms - pc->rate_ms[oldest];
    if (ms < 500 || now_bytes < samples[oldest])
        return 0;
    return (double)(now_bytes - samples[oldest]) * 8.0 / (double)ms;
}

static int get_session(void *ud, const char *session_id, sl_webrtc_session_stats_t *out, size_t out_size)
{
    wrtc_t *w = ud;
    const wrtc_pc_t *pc = session_id ? sl_map_get(&w->by_id, session_id) : NULL;
    if (!pc)
        return SL_ENOTFOUND;
    uint64_t now = uv_now(w->core->loop);
    sl_webrtc_session_stats_t s;
    memset(&s, 0, sizeof s);
    s.kind = pc->kind == WRTC_PUBLISHER ? "publisher" : "viewer";
    s.transport = !pc->have_addr ? "none" : pc->tcp ? "tcp" : "udp";
    s.ice_state = pc->closing       ? "closed"
                  : pc->have_addr   ? "connected"
                  : pc->ufrag[0]    ? "checking"
                                    : "new";
    s.dtls_state = pc->closing ? "closed" : pc->dtls_up ? "connected" : pc->dtls ? "connecting" : "new";
    s.video_codec = !pc->has_video                      ? ""
                    : pc->video_codec == SL_CODEC_AVC   ? "H264"
                    : pc->video_codec == SL_CODEC_VP8   ? "VP8"
                                                        : "";
    s.audio_codec = pc->has_audio ? "opus" : "";
    s.datachannel = pc->dc_open;
    s.connect_ms = pc->connected_ms ? (int64_t)(pc->connected_ms - pc->created_ms) : -1;
    s.bytes_in = pc->sess.bytes_in;
    s.bytes_out = pc->sess.bytes_out;
    s.packets_in = pc->rtp_in;
    s.packets_out = pc->rtp_out;
    s.bitrate_in_kbps = rate_kbps(pc, pc->rate_in, pc->sess.bytes_in, now);
    s.bitrate_out_kbps = rate_kbps(pc, pc->rate_out, pc->sess.bytes_out, now);
    if (pc->kind == WRTC_PUBLISHER) {
        if (pc->vrx) {
            sl_rtp_rx_stats_t rx;
            sl_rtp_rx_get_stats(pc->vrx, &rx);
            s.packets_lost = rx.lost;
        }
        s.rtt_ms = -1; /* a publisher's RTT would need its own receiver reports of us: none */
    } else {
        s.packets_lost = pc->rr_lost > 0 ? (uint64_t)pc->rr_lost : 0;
        s.rtt_ms = pc->rtt_ms ? (int32_t)pc->rtt_ms : -1;
    }
    s.loss_fraction = pc->loss_fraction / 256.0;
    s.nack_sent = pc->nack_out;
    s.nack_received = pc->nack_in;
    s.retransmissions = pc->rtx_out;
    s.pli_sent = pc->pli_out;
    s.pli_received = pc->pli_in;
    s.dc_messages_in = pc->dc_in;
    s.dc_messages_out = pc->dc_out;
    if (pc->kind == WRTC_PUBLISHER) {
        s.transcoding = pc->abridge && wrtc_pub_transcoding(pc);
        s.timestamps = sl_rtp_sync_mode_name(&pc->sync);
    } else {
        s.transcoding = pc->ws && pc->ws->tap_on && pc->ws->to_opus;
        s.timestamps = "";
    }
    if (pc->pacer) {
        wrtc_view_pace_stats(pc, now, &s.estimated_bps, &s.remb_bps, &s.pacer_queue_ms, &s.pacer_queue_bytes);
    }
    s.frames_dropped = pc->frames_dropped;
    s.send_retries = pc->send_retries;
    memcpy(out, &s, out_size < sizeof s ? out_size : sizeof s);
    return 0;
}

static const sl_svc_webrtc_t webrtc_service = {
    .counters = get_counters,
    .session = get_session,
};

/*
 * Registers the "webrtc" service with w as its state. Returns 0 or what
 * sl_service_register returns (SL_EBUSY when another provider holds the
 * name, SL_ENOMEM).
 */
int wrtc_stats_register(wrtc_t *w)
{
    return sl_service_register(w->core, SL_SVC_WEBRTC, SL_SVC_WEBRTC_MAJOR, SL_SVC_WEBRTC_MINOR,
                               &webrtc_service, w);
}

/* Unregisters the service; a no-op when it was never registered. */
void wrtc_stats_unregister(wrtc_t *w)
{
    sl_service_unregister(w->core, SL_SVC_WEBRTC, &webrtc_service);
}

/*
 * Called for every session on each tick: once a second, records the
 * session's byte totals in its ring of WRTC_RATE_N samples. Borrows pc.
 */
void wrtc_stats_sample(wrtc_pc_t *pc, uint64_t now_ms)
{
    if (pc->rate_n) {
        int last = (pc->rate_n - 1) % WRTC_RATE_N;
        if (now_ms - pc->rate_ms[last] < 1000)
            return;
    }
    int i = pc->rate_n % WRTC_RATE_N;
    pc->rate_ms[i] = now_ms;
    pc->rate_in[i] = pc->sess.bytes_in;
    pc->rate_out[i] = pc->sess.bytes_out;
    pc->rate_n++;
}
