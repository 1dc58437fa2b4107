/*
 * RTSP media (see rtsp_internal.h): the publish side (the ANNOUNCE SDP's
 * tracks -> receive buffer -> depacketizer -> FLV-bodied frames pushed to
 * the hub stream, so RTMP, HLS, HTTP-FLV, WHEP and the recorder see an
 * RTSP publisher like any other) and the play side (a hub sink whose
 * frames go out as RTP from the frame cache, built once per frame and
 * shared by every RTSP player; only the RTP header is per player).
 *
 * Timestamps in: each track is anchored at its first packet's arrival and
 * advanced by its RTP clock, until both tracks have a sender report; then
 * the sender's clock lip-syncs them (media/rtp_sync.h, as for WHIP).
 * RTP timestamps carry presentation time. B-frames (a video timestamp
 * older than the newest one) switch the track to a reorder window: frames
 * wait until RTSP_REORDER later ones arrived, and each leaves with the
 * smallest presentation time not yet given out as its decode time (the
 * i-th smallest pts is a valid dts of the i-th frame when the reorder
 * depth is at most the window), so the hub gets decode times and
 * composition offsets as from RTMP. Streams without B-frames never wait.
 * Timestamps out: pts (dts + cts) in the track's clock from a random base.
 *
 * Codecs: H.264 (RFC 6184), H.265 (RFC 7798) -> 'hvc1' E-RTMP frames, AAC
 * (RFC 3640 AAC-hbr), Opus (RFC 7587), G.711 PCMA/PCMU (FLV sound formats
 * 7/8). Opus and G.711 go through an audio bridge (media/audio_bridge.h):
 * the hub gets AAC while a sink needs it (HLS, RTMP, the recorder), and
 * RTSP players and WHEP viewers get the original through the bridge's
 * side path, as do this file's players of any bridged publisher (WHIP,
 * SRT, a pull).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "app/events.h"
#include "base/alloc.h"
#include "base/log.h"
#include "media/flv.h"
#include "media/frame.h"
#include "media/rtcp.h"
#include "media/rtp.h"
#include "proto/rtsp/rtsp_internal.h"
#include "sluice/errors.h"

#define SR_INTERVAL_MS 3000
#define RR_INTERVAL_MS 2000
#define UDP_REORDER_MS 100

/* ------------------------------------------------------------------ */
/* SDP in                                                              */

/* Decodes one base64 item of n bytes into out (cap); the length or -1. */
static int b64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    uint8_t tmp[800];
    if (n == 0 || n % 4 || n / 4 * 3 > sizeof tmp)
        return -1;
    int got = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
    if (got < 0)
        return -1;
    for (size_t i = n; i > 0 && s[i - 1] == '='; i--)
        got--;
    if (got <= 0 || (size_t)got > cap)
        return -1;
    memcpy(out, tmp, (size_t)got);
    return got;
}

/* The value of key in an fmtp ("a=1; key=v; ..."), borrowed with its length; NULL when absent. */
static const char *fmtp_get(const char *fmtp, const char *key, size_t *len)
{
    size_t kl = strlen(key);
    for (const char *p = fmtp; *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *e = p;
        while (*e && *e != ';')
            e++;
        if ((size_t)(e - p) > kl && !strncasecmp(p, key, kl) && p[kl] == '=') {
            *len = (size_t)(e - p) - kl - 1;
            while (*len && p[kl + *len] == ' ')
                (*len)--;
            return p + kl + 1;
        }
        p = e;
    }
    return NULL;
}

/* One sprop value into t->ps[i]. */
static void sprop(rtsp_track_t *t, int i, const char *v, size_t n)
{
    int got = b64_decode(v, n, t->ps[i], sizeof t->ps[i]);
    t->ps_len[i] = got > 0 ? (size_t)got : 0;
}

int rtsp_tracks_from_sdp(rtsp_conn_t *c, const sl_sdp_t *sdp, const char **why)
{
    c->n_tracks = 0;
    c->video_track = c->audio_track = -1;
    for (int i = 0; i < sdp->n_media; i++) {
        const sl_sdp_media_t *m = &sdp->media[i];
        if (m->kind != SL_SDP_VIDEO && m->kind != SL_SDP_AUDIO)
            continue;
        if ((m->kind == SL_SDP_VIDEO && c->video_track >= 0) || (m->kind == SL_SDP_AUDIO && c->audio_track >= 0))
            continue;
        for (int k = 0; k < m->n_codecs; k++) {
            const sl_sdp_codec_t *cd = &m->codecs[k];
            rtsp_track_t *t = &c->tracks[c->n_tracks];
            memset(t, 0, sizeof *t);
            t->kind = m->kind;
            t->pt = cd->pt;
            t->clock = cd->clock;
            t->channels = cd->channels;
            size_t n;
            const char *v;
            if (m->kind == SL_SDP_VIDEO && !strcasecmp(cd->name, "H264")) {
                t->codec = SL_CODEC_AVC;
                if ((v = fmtp_get(cd->fmtp, "sprop-parameter-sets", &n))) {
                    const char *comma = memchr(v, ',', n);
                    sprop(t, 1, v, comma ? (size_t)(comma - v) : n);
                    if (comma)
                        sprop(t, 2, comma + 1, n - (size_t)(comma - v) - 1);
                }
            } else if (m->kind == SL_SDP_VIDEO && (!strcasecmp(cd->name, "H265") || !strcasecmp(cd->name, "HEVC"))) {
                t->codec = SL_CODEC_HEVC;
                if ((v = fmtp_get(cd->fmtp, "sprop-vps", &n)))
                    sprop(t, 0, v, n);
                if ((v = fmtp_get(cd->fmtp, "sprop-sps", &n)))
                    sprop(t, 1, v, n);
                if ((v = fmtp_get(cd->fmtp, "sprop-pps", &n)))
                    sprop(t, 2, v, n);
            } else if (m->kind == SL_SDP_AUDIO && !strcasecmp(cd->name, "MPEG4-GENERIC")) {
                if (sl_aac_fmtp_parse(cd->fmtp, &t->aac_fmtp) || !t->aac_fmtp.config_len)
                    continue;
                t->codec = SL_CODEC_AAC;
            } else if (m->kind == SL_SDP_AUDIO && !strcasecmp(cd->name, "opus")) {
                t->codec = SL_CODEC_OPUS;
                t->clock = 48000;
            } else if (m->kind == SL_SDP_AUDIO && !strcasecmp(cd->name, "PCMA")) {
                t->codec = SL_CODEC_FLV_AUDIO(7);
            } else if (m->kind == SL_SDP_AUDIO && !strcasecmp(cd->name, "PCMU")) {
                t->codec = SL_CODEC_FLV_AUDIO(8);
            } else {
                continue;
            }
            if (!t->clock)
                t->clock = m->kind == SL_SDP_VIDEO ? 90000 : 8000;
            snprintf(t->control, sizeof t->control, "%s", m->control[0] ? m->control : "");
            if (!t->control[0])
                snprintf(t->control, sizeof t->control, "streamid=%d", c->n_tracks);
            if (m->kind == SL_SDP_VIDEO)
                c->video_track = c->n_tracks;
            else
                c->audio_track = c->n_tracks;
            c->n_tracks++;
            break;
        }
        if (c->n_tracks == RTSP_MAX_TRACKS)
            break;
    }
    if (c->n_tracks == 0) {
        *why = "no supported codec (H.264, H.265, AAC, Opus, PCMA, PCMU) in the SDP";
        return SL_EPROTO;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* publish                                                             */

static void push_body(rtsp_conn_t *c, uint8_t kind, int64_t dts, sl_buf_t *body)
{
    if (!body)
        return;
    if (!c->stream) {
        sl_buf_unref(body);
        return;
    }
    sl_frame_t *f;
    if (sl_frame_new(kind, (uint32_t)(dts < 0 ? 0 : dts), body, &f))
        return;
    sl_stream_push(c->stream, f);
    sl_frame_unref(f);
}

/* A step of the timeline at the switch this large restarts the GOP cache. */
#define RTSP_SYNC_RESTART_MS 20

/*
 * Once the timeline switched to the sender's reports (in an SR or at a
 * packet): logs it, and when a track stepped forward restarts the GOP
 * cache, so a player joining now starts on frames of the new timeline (as
 * for WHIP, webrtc_media.c).
 */
static void sync_note(rtsp_conn_t *c)
{
    if (c->sync_noted || c->sync.mode != SL_RTP_SYNC_SR)
        return;
    c->sync_noted = 1;
    int64_t step = 0;
    for (int i = 0; i < c->sync.n_tracks; i++)
        if (c->sync.t[i].jump_us / 1000 > step)
            step = c->sync.t[i].jump_us / 1000;
    SL_LOGI(&c->sess.log, "rtsp: timestamps now from the sender's reports (largest step %lld ms)",
            (long long)step);
    if (step >= RTSP_SYNC_RESTART_MS && c->stream)
        sl_stream_gop_restart(c->stream);
}

static int64_t track_dts(rtsp_conn_t *c, rtsp_track_t *t, uint32_t rtp_ts)
{
    int64_t dts = sl_rtp_sync_dts(&c->sync, t->sync, rtp_ts, uv_now(c->srv->core->loop));
    sync_note(c);
    return dts;
}

static void on_avc_config(void *ud, const uint8_t *rec, size_t len)
{
    rtsp_track_t *t = ud;
    rtsp_conn_t *c = t->conn;
    push_body(c, SL_FLV_VIDEO, c->sync.t[t->sync].started ? c->sync.t[t->sync].last_us / 1000 : 0,
              sl_h264_flv_config_body(rec, len));
}

/* Writes cts into a video body (AVC: bytes 2-4; Enhanced RTMP CodedFrames: 5-7). */
static void set_cts(sl_buf_t *b, int32_t cts)
{
    if (b->len >= 5 && !(b->data[0] & 0x80))
        sl_wr_be24(b->data + 2, (uint32_t)cts & 0xFFFFFF);
    else if (b->len >= 8 && (b->data[0] & 0x0F) == 1)
        sl_wr_be24(b->data + 5, (uint32_t)cts & 0xFFFFFF);
}

/* Releases the oldest held frame with the smallest unassigned pts as its dts. */
static void release_held(rtsp_conn_t *c, rtsp_track_t *t)
{
    int mi = 0;
    for (int i = 1; i < t->n_held; i++)
        if (t->pts_pool[i] < t->pts_pool[mi])
            mi = i;
    int64_t dts = t->pts_pool[mi];
    t->pts_pool[mi] = t->pts_pool[t->n_held - 1];
    rtsp_held_t h = t->held[0];
    memmove(t->held, t->held + 1, (size_t)(t->n_held - 1) * sizeof t->held[0]);
    t->n_held--;
    if (dts < t->last_dts)
        dts = t->last_dts;
    if (dts > h.pts_ms)
        dts = h.pts_ms > t->last_dts ? h.pts_ms : t->last_dts;
    t->last_dts = dts;
    set_cts(h.body, (int32_t)(h.pts_ms - dts));
    push_body(c, SL_FLV_VIDEO, dts, h.body);
}

/* Pushes what the window holds (publish end). */
static void flush_held(rtsp_conn_t *c, rtsp_track_t *t)
{
    while (t->n_held)
        release_held(c, t);
}

/*
 * A video access unit with RTP timestamp ts: its presentation time, then
 * straight to the hub, or through the B-frame window.
 */
static void video_frame(rtsp_conn_t *c, rtsp_track_t *t, uint32_t ts, sl_buf_t *body)
{
    if (!body)
        return;
    int64_t pts;
    if (!t->have_max || (int32_t)(ts - t->max_ts) >= 0) {
        pts = track_dts(c, t, ts);
        t->have_max = 1;
        t->max_ts = ts;
        t->max_ms = pts;
    } else {
        /* Older than the newest frame: a B-frame. */
        pts = t->max_ms - (int64_t)(uint32_t)(t->max_ts - ts) * 1000 / t->clock;
        if (!t->reorder) {
            t->reorder = 1;
            SL_LOGI(&c->sess.log, "rtsp: the publisher sends B-frames: video decode times from a %d-frame window",
                    RTSP_REORDER);
        }
    }
    if (!t->reorder) {
        t->last_dts = pts;
        push_body(c, SL_FLV_VIDEO, pts, body);
        return;
    }
    t->held[t->n_held] = (rtsp_held_t){body, pts};
    t->pts_pool[t->n_held] = pts;
    t->n_held++;
    if (t->n_held > RTSP_REORDER)
        release_held(c, t);
}

static void on_avc_frame(void *ud, uint32_t ts, const uint8_t *au, size_t len, int key)
{
    rtsp_track_t *t = ud;
    video_frame(t->conn, t, ts, sl_h264_flv_frame_body(au, len, key, 0));
}

static void on_hevc_config(void *ud, const uint8_t *rec, size_t len)
{
    rtsp_track_t *t = ud;
    rtsp_conn_t *c = t->conn;
    push_body(c, SL_FLV_VIDEO, c->sync.t[t->sync].started ? c->sync.t[t->sync].last_us / 1000 : 0,
              sl_h265_flv_config_body(rec, len));
}

static void on_hevc_frame(void *ud, uint32_t ts, const uint8_t *au, size_t len, int key)
{
    rtsp_track_t *t = ud;
    rtsp_conn_t *c = t->conn;
    video_frame(c, t, ts, sl_h265_flv_frame_body(au, len, key, 0));
}

static void on_aac_frame(void *ud, uint32_t ts, const uint8_t *au, size_t len)
{
    rtsp_track_t *t = ud;
    rtsp_conn_t *c = t->conn;
    int64_t dts = track_dts(c, t, ts);
    if (!t->config_sent) {
        t->config_sent = 1;
        push_body(c, SL_FLV_AUDIO, dts, sl_aac_flv_config_body(t->aac_fmtp.config, t->aac_fmtp.config_len));
    }
    push_body(c, SL_FLV_AUDIO, dts, sl_aac_flv_frame_body(au, len));
}

/*
 * Opus or G.711 of the publisher: into its audio bridge, which gives the
 * hub AAC while a sink needs it and hands the original to side players
 * (RTSP players, WHEP viewers). Without a bridge (no memory) the hub gets
 * the original, as RTMP would carry it.
 */
static void push_bridged(rtsp_conn_t *c, int64_t dts, sl_buf_t *body)
{
    if (!body)
        return;
    if (!c->abridge || !c->stream) {
        push_body(c, SL_FLV_AUDIO, dts, body);
        return;
    }
    sl_frame_t *f;
    if (sl_frame_new(SL_FLV_AUDIO, (uint32_t)(dts < 0 ? 0 : dts), body, &f))
        return;
    sl_audio_bridge_push(c->abridge, f);
    sl_frame_unref(f);
}

/* A packet in sequence order out of the receive buffer. */
static void on_packet(void *ud, const uint8_t *p, size_t len)
{
    rtsp_track_t *t = ud;
    rtsp_conn_t *c = t->conn;
    sl_rtp_hdr_t h;
    if (sl_rtp_parse(p, len, &h) || !h.payload_len)
        return;
    if (t->h264)
        sl_h264_depack_push(t->h264, &h);
    else if (t->h265)
        sl_h265_depack_push(t->h265, &h);
    else if (t->aac)
        sl_aac_depack_push(t->aac, &h);
    else if (t->codec == SL_CODEC_OPUS)
        push_bridged(c, track_dts(c, t, h.ts), sl_opus_flv_frame_body(h.payload, h.payload_len));
    else if (t->codec == SL_CODEC_FLV_AUDIO(7) || t->codec == SL_CODEC_FLV_AUDIO(8))
        push_bridged(c, track_dts(c, t, h.ts),
                     sl_g711_flv_frame_body(t->codec == SL_CODEC_FLV_AUDIO(7), h.payload, h.payload_len));
}

static void on_loss(void *ud, uint16_t first, uint16_t count)
{
    rtsp_track_t *t = ud;
    (void)first;
    (void)count;
    if (t->h264)
        sl_h264_depack_loss(t->h264);
    if (t->h265)
        sl_h265_depack_loss(t->h265);
    if (t->aac)
        sl_aac_depack_loss(t->aac);
}

int rtsp_pub_start(rtsp_conn_t *c)
{
    sl_stream_t *st;
    int rc = sl_hub_publish(c->srv->core->hub, c->path, &c->sess, &st);
    if (rc)
        return rc;
    c->stream = st;
    sl_rtp_sync_init(&c->sync);
    c->sync_noted = 0;
    for (int i = 0; i < c->n_tracks; i++) {
        rtsp_track_t *t = &c->tracks[i];
        t->conn = c;
        if (!t->setup)
            continue;
        t->sync = sl_rtp_sync_add_track(&c->sync, t->clock);
        t->rx = sl_rtp_rx_new(t->clock, t->tcp ? 0 : UDP_REORDER_MS, on_packet, on_loss, t);
        if (!t->rx)
            goto nomem;
        if (t->codec == SL_CODEC_AVC) {
            if (!(t->h264 = sl_h264_depack_new(on_avc_config, on_avc_frame, t)))
                goto nomem;
            sl_h264_depack_set_ps(t->h264, t->ps[1], t->ps_len[1], t->ps[2], t->ps_len[2]);
        } else if (t->codec == SL_CODEC_HEVC) {
            if (!(t->h265 = sl_h265_depack_new(on_hevc_config, on_hevc_frame, t)))
                goto nomem;
            sl_h265_depack_set_ps(t->h265, t->ps[0], t->ps_len[0], t->ps[1], t->ps_len[1], t->ps[2], t->ps_len[2]);
        } else if (t->codec == SL_CODEC_AAC) {
            uint32_t rate = 0;
            int ch = 0;
            if (sl_aac_asc_info(t->aac_fmtp.config, t->aac_fmtp.config_len, &rate, &ch) == 0 && rate)
                t->clock = rate;
            if (!(t->aac = sl_aac_depack_new(&t->aac_fmtp, 1024, on_aac_frame, t)))
                goto nomem;
        } else if (t->kind == SL_SDP_AUDIO && !c->abridge) {
            /* Opus, PCMA, PCMU: HLS, RTMP and the recorder need AAC. */
            if (sl_audio_bridge_new(c->srv->core->loop, st, &c->sess.log, &c->abridge))
                goto nomem;
            sl_audio_bridge_set_codec(c->abridge, t->codec);
        }
    }
    sl_session_set_role(&c->sess, SL_ROLE_PUBLISHER);
    SL_LOGI(&c->sess.log, "rtsp publish started (%s%s%s)", c->video_track >= 0 ?
            sl_codec_name(c->tracks[c->video_track].codec) : "", c->video_track >= 0 && c->audio_track >= 0 ? ", " : "",
            c->audio_track >= 0 ? sl_codec_name(c->tracks[c->audio_track].codec) : "");
    sl_events_emit_session(c->srv->core, &c->sess, SL_EV_PUBLISH, NULL);
    return 0;
nomem:
    rtsp_pub_stop(c);
    return SL_ENOMEM;
}

void rtsp_pub_stop(rtsp_conn_t *c)
{
    for (int i = 0; i < c->n_tracks; i++) {
        rtsp_track_t *t = &c->tracks[i];
        flush_held(c, t); /* to the stream while it is still published (dropped if not) */
        sl_rtp_rx_free(t->rx);
        sl_h264_depack_free(t->h264);
        sl_h265_depack_free(t->h265);
        sl_aac_depack_free(t->aac);
        t->rx = NULL;
        t->h264 = NULL;
        t->h265 = NULL;
        t->aac = NULL;
    }
    sl_audio_bridge_free(c->abridge); /* before the unpublish: it pushes to the stream */
    c->abridge = NULL;
    if (!c->stream)
        return;
    sl_stream_t *st = c->stream;
    c->stream = NULL;
    SL_LOGI(&c->sess.log, "rtsp publish stopped (%llu frames, %llu bytes)",
            (unsigned long long)st->stats.frames_in, (unsigned long long)st->stats.bytes_in);
    sl_stream_unpublish(st);
    sl_events_emit_session(c->srv->core, &c->sess, SL_EV_UNPUBLISH, NULL);
    sl_session_set_role(&c->sess, SL_ROLE_NONE);
}

void rtsp_pub_rtp(rtsp_conn_t *c, int ti, const uint8_t *p, size_t len)
{
    rtsp_track_t *t = &c->tracks[ti];
    sl_rtp_hdr_t h;
    if (!t->rx || sl_rtp_parse(p, len, &h))
        return;
    if (!t->in_ssrc)
        t->in_ssrc = h.ssrc;
    if (h.ssrc != t->in_ssrc)
        return;
    sl_rtp_rx_push(t->rx, h.seq, h.ts, uv_now(c->srv->core->loop), p, len);
}

typedef struct {
    rtsp_conn_t *c;
    int ti;
} rtcp_ud_t;

static void rtcp_sr(void *ud, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts, uint32_t pkts, uint32_t octets)
{
    rtcp_ud_t *u = ud;
    rtsp_conn_t *c = u->c;
    rtsp_track_t *t = &c->tracks[u->ti];
    (void)pkts;
    (void)octets;
    if (c->role != RTSP_ROLE_PUBLISH || !c->stream || !t->rx || (t->in_ssrc && ssrc != t->in_ssrc))
        return;
    sl_rtp_rx_on_sr(t->rx, ntp, rtp_ts, uv_now(c->srv->core->loop));
    sl_rtp_sync_on_sr(&c->sync, t->sync, ntp, rtp_ts);
    sync_note(c);
}

void rtsp_rtcp_in(rtsp_conn_t *c, int ti, const uint8_t *p, size_t len)
{
    static const sl_rtcp_cb_t cb = {.sr = rtcp_sr};
    rtcp_ud_t u = {c, ti};
    if (ti >= 0 && ti < c->n_tracks)
        (void)sl_rtcp_parse(p, len, &cb, &u);
}

/* ------------------------------------------------------------------ */
/* play                                                                */

static void b64(const uint8_t *p, size_t n, char *out, size_t cap)
{
    if (cap < 4 * ((n + 2) / 3) + 1) {
        out[0] = '\0';
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

/* The codec bytes of a config frame (borrowed), or NULL. */
static const uint8_t *config_of(const sl_frame_t *f, size_t *len)
{
    if (!f || f->data_off > f->body->len)
        return NULL;
    *len = f->body->len - f->data_off;
    return f->body->data + f->data_off;
}

static void track_init_out(rtsp_track_t *t)
{
    uint8_t r[10];
    RAND_bytes(r, sizeof r);
    t->ssrc = sl_rd_be32(r) | 1;
    t->seq = sl_rd_be16(r + 4);
    t->ts_base = sl_rd_be32(r + 6);
}

int rtsp_describe(rtsp_conn_t *c, sl_stream_t *st, const char *host, char *out, size_t cap)
{
    size_t o = 0;
#define W(...)                                                                       \
    do {                                                                             \
        int n_ = snprintf(out + o, cap - o, __VA_ARGS__);                            \
        if (n_ < 0 || (size_t)n_ >= cap - o)                                         \
            return SL_ETOOBIG;                                                       \
        o += (size_t)n_;                                                             \
    } while (0)
    c->n_tracks = 0;
    c->video_track = c->audio_track = -1;
    W("v=0\r\no=- %llu 1 IN IP4 %s\r\ns=%s\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=tool:sluice\r\na=control:*\r\n"
      "a=range:npt=now-\r\n", (unsigned long long)st->seq, host, c->sess.stream ? c->sess.stream : "stream");
    size_t clen = 0;
    const uint8_t *cfg = config_of(st->video_config, &clen);
    if (st->video_codec == SL_CODEC_AVC || st->video_codec == SL_CODEC_HEVC) {
        rtsp_track_t *t = &c->tracks[c->n_tracks];
        memset(t, 0, sizeof *t);
        t->kind = SL_SDP_VIDEO;
        t->codec = st->video_codec;
        t->pt = 96;
        t->clock = 90000;
        snprintf(t->control, sizeof t->control, "trackID=%d", c->n_tracks);
        if (st->video_codec == SL_CODEC_AVC) {
            W("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1");
            sl_h264_config_t hc;
            if (cfg && sl_h264_config_parse(cfg, clen, &hc) == 0 && hc.n_sps && hc.n_pps) {
                char s1[700], s2[700];
                b64(hc.sps[0], hc.sps_len[0], s1, sizeof s1);
                b64(hc.pps[0], hc.pps_len[0], s2, sizeof s2);
                W(";profile-level-id=%02X%02X%02X;sprop-parameter-sets=%s,%s", hc.profile_idc, hc.profile_compat,
                  hc.level_idc, s1, s2);
            }
        } else {
            W("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\na=fmtp:96 ");
            static const char *names[3] = {"sprop-vps", "sprop-sps", "sprop-pps"};
            int first = 1;
            for (int i = 0; i < 3 && cfg; i++) {
                /* The first set of each type in the hvcC. */
                size_t off = 23;
                for (int a = 0; cfg && clen >= 23 && a < cfg[22] && off + 3 <= clen; a++) {
                    int type = cfg[off] & 0x3F, cnt = sl_rd_be16(cfg + off + 1);
                    off += 3;
                    for (int k = 0; k < cnt && off + 2 <= clen; k++) {
                        size_t l = sl_rd_be16(cfg + off);
                        if (off + 2 + l > clen)
                            break;
                        if (type == 32 + i && l && l < 500) {
                            char s[700];
                            b64(cfg + off + 2, l, s, sizeof s);
                            W("%s%s=%s", first ? "" : ";", names[i], s);
                            first = 0;
                            type = -1; /* only the first */
                        }
                        off += 2 + l;
                    }
                }
            }
        }
        W("\r\na=control:%s\r\n", t->control);
        c->video_track = c->n_tracks++;
    }
    const uint8_t *acfg = config_of(st->audio_config, &clen);
    uint32_t ac = st->audio_codec;
    /* A bridged publisher's original audio (Opus, G.711) when RTP carries it:
     * the player gets it untouched through the bridge's side path. */
    uint32_t bc = sl_audio_bridge_codec(sl_audio_bridge_of(st));
    if (bc == SL_CODEC_OPUS || bc == SL_CODEC_FLV_AUDIO(7) || bc == SL_CODEC_FLV_AUDIO(8))
        ac = bc;
    if ((ac == SL_CODEC_AAC && acfg && clen >= 2) || ac == SL_CODEC_OPUS || ac == SL_CODEC_FLV_AUDIO(7) ||
        ac == SL_CODEC_FLV_AUDIO(8)) {
        rtsp_track_t *t = &c->tracks[c->n_tracks];
        memset(t, 0, sizeof *t);
        t->kind = SL_SDP_AUDIO;
        t->codec = ac;
        snprintf(t->control, sizeof t->control, "trackID=%d", c->n_tracks);
        if (ac == SL_CODEC_AAC) {
            uint32_t rate = 44100;
            int ch = 2;
            sl_aac_asc_info(acfg, clen, &rate, &ch);
            char hex[2 * SL_AAC_MAX_CONFIG + 1];
            size_t hl = clen < SL_AAC_MAX_CONFIG ? clen : SL_AAC_MAX_CONFIG;
            for (size_t i = 0; i < hl; i++)
                snprintf(hex + 2 * i, 3, "%02X", acfg[i]);
            hex[2 * hl] = '\0';
            t->pt = 97;
            t->clock = rate;
            W("m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/%u/%d\r\na=fmtp:97 streamtype=5;"
              "profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=%s\r\n",
              rate, ch ? ch : 1, hex);
        } else if (ac == SL_CODEC_OPUS) {
            t->pt = 97;
            t->clock = 48000;
            W("m=audio 0 RTP/AVP 97\r\na=rtpmap:97 opus/48000/2\r\na=fmtp:97 sprop-stereo=1\r\n");
        } else {
            int alaw = ac == SL_CODEC_FLV_AUDIO(7);
            t->pt = alaw ? 8 : 0;
            t->clock = 8000;
            W("m=audio 0 RTP/AVP %d\r\na=rtpmap:%d %s/8000\r\n", t->pt, t->pt, alaw ? "PCMA" : "PCMU");
        }
        W("a=control:%s\r\n", t->control);
        c->audio_track = c->n_tracks++;
    }
#undef W
    if (c->n_tracks == 0)
        return SL_ENOTFOUND;
    for (int i = 0; i < c->n_tracks; i++)
        track_init_out(&c->tracks[i]);
    return (int)o;
}

static void send_frame(rtsp_conn_t *c, rtsp_track_t *t, sl_frame_t *f)
{
    sl_stream_t *st = c->sink.stream;
    const sl_frame_t *cf = f->kind == SL_FLV_VIDEO ? st->video_config : NULL;
    size_t clen = 0;
    const uint8_t *cfg = cf ? config_of(cf, &clen) : NULL;
    sl_rtp_payloads_t pl;
    if (sl_frame_rtp_payloads(f, (size_t)sl_rtsp_cfg(c->srv->core->cfg)->mtu, cfg, clen, &pl))
        return;
    int64_t pts = (int64_t)f->dts_ms + f->cts_ms;
    if (pts < 0)
        pts = 0;
    uint32_t ts = t->ts_base + (uint32_t)((uint64_t)pts * t->clock / 1000);
    uint8_t hdr[12];
    for (uint32_t i = 0; i < pl.n; i++) {
        const sl_rtp_pkt_ref_t *r = &pl.pkts[i];
        int marker = f->kind == SL_FLV_VIDEO ? r->marker : (t->codec == SL_CODEC_AAC ? r->marker : i == 0);
        sl_rtp_write_hdr(hdr, sizeof hdr, marker, t->pt, t->seq++, ts, t->ssrc, NULL);
        if (rtsp_send_packet(c, t, 0, hdr, sizeof hdr, pl.buf->data + r->off, r->len))
            break;
        t->pkts++;
        t->octets += r->len;
    }
    sl_rtp_payloads_done(&pl);
    t->last_ts = ts;
    t->last_send_ms = uv_now(c->srv->core->loop);
    c->sess.msgs_out++;
}

static void sink_on_frame(sl_sink_t *sink, sl_frame_t *f)
{
    rtsp_conn_t *c = sink->ctx;
    if (c->closing || c->paused || (f->flags & (SL_FRAME_CONFIG | SL_FRAME_META | SL_FRAME_EOS)))
        return;
    int ti = f->kind == SL_FLV_VIDEO ? c->video_track : f->kind == SL_FLV_AUDIO ? c->audio_track : -1;
    if (ti < 0)
        return;
    rtsp_track_t *t = &c->tracks[ti];
    if (!t->setup || f->codec != t->codec)
        return;
    const sl_rtsp_config_t *rc = sl_rtsp_cfg(c->srv->core->cfg);
    if (f->kind == SL_FLV_VIDEO) {
        if (t->tcp && rtsp_pending(c) > (size_t)rc->max_pending_bytes / 2 && !c->need_key) {
            /* The player does not keep up: skip to the next keyframe. */
            c->need_key = 1;
        }
        if (c->need_key) {
            if (!(f->flags & SL_FRAME_KEY)) {
                c->sess.frames_dropped++;
                return;
            }
            c->need_key = 0;
        }
    } else if (t->tcp && rtsp_pending(c) > (size_t)rc->max_pending_bytes / 2) {
        c->sess.frames_dropped++;
        return;
    }
    send_frame(c, t, f);
    rtsp_flush(c);
}

static void sink_on_unpublish(sl_sink_t *sink)
{
    rtsp_conn_t *c = sink->ctx;
    /* RTSP has no way to announce a new publish: the player ends (it may reconnect). */
    rtsp_conn_close(c, "stream unpublished");
}

static const sl_sink_ops_t sink_ops = {
    .on_frame = sink_on_frame,
    .on_unpublish = sink_on_unpublish,
};

/* The publisher's original audio from its bridge: as any frame of the track
 * (the hub's AAC has another codec than the track and is skipped). */
static void side_on_frame(sl_audio_side_t *side, sl_frame_t *f)
{
    rtsp_conn_t *c = side->ctx;
    if (c->sink_on)
        sink_on_frame(&c->sink, f);
}

int rtsp_play_start(rtsp_conn_t *c)
{
    sl_stream_t *st = sl_hub_find(c->srv->core->hub, c->path);
    if (!st || !st->publisher)
        return SL_ENOTFOUND;
    c->sink.ops = &sink_ops;
    c->sink.ctx = c;
    c->need_key = c->video_track >= 0;
    sl_session_set_role(&c->sess, SL_ROLE_SUBSCRIBER);
    sl_events_emit_session(c->srv->core, &c->sess, SL_EV_PLAY, NULL);
    c->sink_on = 1;
    int rc = sl_hub_add_sink(c->srv->core->hub, c->path, &c->sink);
    if (rc) {
        c->sink_on = 0;
        return rc;
    }
    sl_audio_bridge_t *ab = sl_audio_bridge_of(c->sink.stream);
    if (ab && c->audio_track >= 0 && c->tracks[c->audio_track].codec == sl_audio_bridge_codec(ab)) {
        c->aside = (sl_audio_side_t){.on_frame = side_on_frame, .ctx = c, .sink = &c->sink};
        sl_audio_bridge_side_add(ab, &c->aside);
    }
    SL_LOGI(&c->sess.log, "rtsp play started");
    return 0;
}

void rtsp_play_stop(rtsp_conn_t *c, const char *reason)
{
    if (!c->sink_on)
        return;
    c->sink_on = 0;
    sl_audio_bridge_side_remove(&c->aside);
    sl_stream_remove_sink(&c->sink);
    sl_events_emit_session(c->srv->core, &c->sess, SL_EV_PLAY_STOP, reason);
    sl_session_set_role(&c->sess, SL_ROLE_NONE);
}

/* ------------------------------------------------------------------ */
/* timers                                                              */

void rtsp_media_tick(rtsp_conn_t *c, uint64_t now)
{
    if (c->closing || !c->live)
        return;
    for (int i = 0; i < c->n_tracks; i++) {
        rtsp_track_t *t = &c->tracks[i];
        if (!t->setup)
            continue;
        uint8_t buf[128];
        if (c->role == RTSP_ROLE_PUBLISH && t->rx) {
            uint16_t seqs[32];
            (void)sl_rtp_rx_poll(t->rx, now, seqs, 32); /* gives up gaps; RTSP senders take no NACKs */
            if (t->in_ssrc && now - t->last_rr_ms >= RR_INTERVAL_MS) {
                t->last_rr_ms = now;
                sl_rtcp_report_t rb;
                sl_rtp_rx_report(t->rx, t->in_ssrc, now, &rb);
                int n = sl_rtcp_build_rr(buf, sizeof buf, t->ssrc ? t->ssrc : 0x5a5a0001u + (uint32_t)i, &rb, 1);
                if (n > 0)
                    rtsp_send_packet(c, t, 1, buf, (size_t)n, NULL, 0);
            }
        } else if (c->role == RTSP_ROLE_PLAY && t->pkts && now - t->last_sr_ms >= SR_INTERVAL_MS) {
            t->last_sr_ms = now;
            /* The RTP time of now: the last packet's, advanced by the time since. */
            uint32_t rtp_now = t->last_ts + (uint32_t)((now - t->last_send_ms) * t->clock / 1000);
            int n = sl_rtcp_build_sr(buf, sizeof buf, t->ssrc, sl_ntp_now(), rtp_now, t->pkts, t->octets, NULL, 0);
            if (n > 0)
                rtsp_send_packet(c, t, 1, buf, (size_t)n, NULL, 0);
        }
    }
}
