/*
 * One WebRTC session (a client's RTCPeerConnection): ICE-lite checks,
 * DTLS, SRTP and the SCTP association of data channels, on the transport
 * webrtc.c demultiplexes (see webrtc_internal.h).
 *
 * Life: wrtc_pc_alloc (the POST arrived: a registered session, nothing
 * else) -> admission -> wrtc_pc_setup (ICE credentials, the media choices
 * from the offer) -> a valid STUN binding request binds the peer's
 * address -> DTLS (we answered setup:passive, so the peer is the DTLS
 * client; we take the client role only for an offer that said passive) ->
 * connected: SRTP keys, publish into the hub or attach to it, SCTP when a
 * data channel was offered -> media until DELETE, kick, a consent timeout
 * or a close from the peer.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "app/events.h"
#include "base/alloc.h"
#include "base/log.h"
#include "net/dtls.h"
#include "net/sctp.h"
#include "net/srtp.h"
#include "media/sdp.h"
#include "proto/webrtc/stun.h"
#include "proto/webrtc/webrtc_internal.h"
#include "sluice/errors.h"

void wrtc__addr_release(wrtc_t *w, const char *addr);
void wrtc__post_cancel(void *post);

/* ---- the session as the core sees it ---- */

static void session_kick(sl_session_t *s, const char *reason)
{
    wrtc_pc_t *pc = (wrtc_pc_t *)s;
    SL_LOGI(&pc->sess.log, "webrtc session kicked: %s", reason ? reason : "kicked");
    wrtc_pc_close(pc, reason ? reason : "kicked");
}

static void session_shutdown(sl_session_t *s)
{
    wrtc_pc_close((wrtc_pc_t *)s, "server shutdown");
}

static const sl_session_ops_t pc_session_ops = {
    .kick = session_kick,
    .shutdown = session_shutdown,
    .pending = NULL,
    .invoke = wrtc_ws_invoke,
};

wrtc_pc_t *wrtc_pc_alloc(wrtc_t *w, wrtc_kind_t kind, const char *path, const char *remote, int port)
{
    wrtc_pc_t *pc = sl_calloc(1, sizeof(*pc));
    if (!pc)
        return NULL;
    pc->w = w;
    pc->kind = kind;
    snprintf(pc->path, sizeof pc->path, "%s", path);
    pc->created_ms = uv_now(w->core->loop);
    sl_list_init(&pc->vlink);
    sl_session_register(w->core, &pc->sess, &pc_session_ops, "webrtc");
    snprintf(pc->sess.remote_addr, sizeof pc->sess.remote_addr, "%s", remote ? remote : "");
    pc->sess.remote_port = port;
    sl_list_push_back(&w->pcs, &pc->link);
    w->n_pcs++;
    if (sl_map_set(&w->by_id, pc->sess.id, pc)) {
        wrtc_pc_close(pc, "out of memory");
        return pc;
    }
    return pc;
}

static void random_etag(char *out, size_t cap)
{
    uint8_t r[8];
    RAND_bytes(r, sizeof r);
    snprintf(out, cap, "%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
}

static uint32_t random_u32(void)
{
    uint32_t v = 0;
    RAND_bytes((uint8_t *)&v, sizeof v);
    return v ? v : 1;
}

/* ---- setup from the offer ---- */

/*
 * The profile-level-id of the stream's H.264 from its sequence header
 * (AVCDecoderConfigurationRecord: AVCProfileIndication,
 * profile_compatibility, AVCLevelIndication), 0 when it has none or the
 * video is not H.264.
 */
static uint32_t stream_h264_plid(const sl_stream_t *st)
{
    const sl_frame_t *cfg = st->video_config;
    if (!cfg || cfg->codec != SL_CODEC_AVC || !cfg->body || cfg->body->len < (size_t)cfg->data_off + 4u)
        return 0;
    const uint8_t *rec = cfg->body->data + cfg->data_off;
    if (rec[0] != 1)
        return 0; /* not configurationVersion 1 */
    return (uint32_t)rec[1] << 16 | (uint32_t)rec[2] << 8 | rec[3];
}

int wrtc_pc_setup(wrtc_pc_t *pc, const sl_sdp_t *offer, char *why, size_t why_cap)
{
    wrtc_t *w = pc->w;
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(w->core->cfg);
    if (!offer->ice_ufrag[0] || !offer->ice_pwd[0]) {
        snprintf(why, why_cap, "the offer has no ICE credentials");
        return 400;
    }
    if (!offer->fingerprint[0]) {
        snprintf(why, why_cap, "the offer has no DTLS fingerprint");
        return 400;
    }
    snprintf(pc->remote_ufrag, sizeof pc->remote_ufrag, "%s", offer->ice_ufrag);
    snprintf(pc->remote_fp_alg, sizeof pc->remote_fp_alg, "%s", offer->fingerprint_alg);
    snprintf(pc->remote_fp, sizeof pc->remote_fp, "%s", offer->fingerprint);
    pc->dtls_client = strcmp(offer->setup, "passive") == 0;
    int want_send = pc->kind == WRTC_VIEWER;
    /* Credentials made already: the SDP is the peer's answer to our offer
     * (Red5's WebSocket signalling, webrtc_ws.c), whose H.264 formats were
     * the stream's profile and 42e01f; the peer chose among them, so the
     * profile match below (an offer's) does not apply. */
    int is_answer = pc->ufrag[0] != '\0';
    /* A viewer gets the stream's codec as it is (no video transcoding): VP8
     * for a VP8 WebRTC publisher, else H.264. */
    uint32_t stream_video = 0;
    uint32_t stream_plid = 0; /* the stream's H.264 profile-level-id, 0 = no sequence header yet */
    if (want_send) {
        sl_stream_t *st = sl_hub_find(w->core->hub, pc->path);
        stream_video = st ? st->video_codec : 0;
        stream_plid = st ? stream_h264_plid(st) : 0;
    }
    for (int i = 0; i < offer->n_media; i++) {
        const sl_sdp_media_t *m = &offer->media[i];
        pc->answer_codec[i] = -1;
        if (m->rejected || m->port == 0)
            continue;
        if (m->kind == SL_SDP_VIDEO && !pc->has_video) {
            int idx = -1;
            if (stream_video == SL_CODEC_VP8) {
                for (int k = 0; k < m->n_codecs && idx < 0; k++)
                    if (strcasecmp(m->codecs[k].name, "VP8") == 0)
                        idx = k;
            } else if (want_send && stream_plid && wc->h264 && !is_answer) {
                /* RFC 6184 8.1: the format whose profile decodes the stream. */
                int level_ok = 0;
                idx = sl_sdp_pick_h264(m, stream_plid, &level_ok);
                if (idx < 0) {
                    char offered[160];
                    if (!sl_sdp_h264_list(m, offered, sizeof offered)[0])
                        snprintf(offered, sizeof offered, "no H.264");
                    snprintf(why, why_cap,
                             "the stream is H.264 %s level %u.%u (profile-level-id %06x) and the offer has no "
                             "packetization-mode=1 H.264 format that decodes it (offered: %s)",
                             sl_sdp_h264_profile_name(sl_sdp_h264_profile(stream_plid)),
                             (stream_plid & 0xff) / 10, (stream_plid & 0xff) % 10, (unsigned)stream_plid,
                             offered);
                    return 406;
                }
                if (!level_ok)
                    SL_LOGI(&pc->sess.log,
                            "webrtc: the stream's H.264 level (%06x) is above the viewer's %06x; sent anyway "
                            "(browsers offer level 3.1 and decode more)",
                            (unsigned)stream_plid, (unsigned)m->codecs[idx].profile_level_id);
            } else {
                /* A publisher: what every player decodes; a viewer of a
                 * stream whose sequence header has not come yet: any. */
                if (wc->h264)
                    idx = want_send ? sl_sdp_pick_video(m, 0, 0) : sl_sdp_pick_h264_publish(m);
                if (idx < 0 && wc->vp8 && !want_send)
                    idx = sl_sdp_pick_video(m, 0, 1);
            }
            if (idx < 0)
                continue;
            const sl_sdp_codec_t *c = &m->codecs[idx];
            pc->has_video = 1;
            pc->answer_codec[i] = idx;
            pc->video_codec = strcasecmp(c->name, "H264") == 0 ? SL_CODEC_AVC : SL_CODEC_VP8;
            pc->video_pt = c->pt;
            pc->video_rtx_pt = c->rtx_pt >= 0 ? (uint8_t)c->rtx_pt : 0;
            snprintf(pc->video_mid, sizeof pc->video_mid, "%s", m->mid);
            if (m->ext_twcc)
                pc->ext_twcc = m->ext_twcc;
            if (m->ext_mid)
                pc->ext_mid = m->ext_mid;
            /* Viewers stamp it on video so the receiver can send REMB (webrtc_view.c). */
            pc->ext_abs_send_time = m->ext_abs_send_time;
            if (m->n_ssrcs)
                pc->in_video_ssrc = m->ssrcs[0];
        } else if (m->kind == SL_SDP_AUDIO && !pc->has_audio) {
            int idx = sl_sdp_pick_audio(m);
            if (idx < 0)
                continue;
            pc->has_audio = 1;
            pc->answer_codec[i] = idx;
            pc->audio_pt = m->codecs[idx].pt;
            snprintf(pc->audio_mid, sizeof pc->audio_mid, "%s", m->mid);
            if (m->ext_mid)
                pc->ext_mid = m->ext_mid;
            if (m->n_ssrcs)
                pc->in_audio_ssrc = m->ssrcs[0];
        } else if (m->kind == SL_SDP_APPLICATION && !pc->has_app && wc->datachannel) {
            pc->has_app = 1;
            pc->answer_codec[i] = 0;
            pc->sctp_port_remote = m->sctp_port ? m->sctp_port : 5000;
        }
    }
    if (!pc->has_video && !pc->has_audio && !pc->has_app) {
        snprintf(why, why_cap, "no media the server can take (H.264%s, Opus, data channel)",
                 wc->vp8 ? ", VP8" : "");
        return 406;
    }
    /* Credentials made earlier are kept: they are in the offer the server
     * wrote for a WebSocket subscriber (webrtc_ws.c), set up from its answer. */
    if ((!pc->ufrag[0] && sl_ice_credentials(pc->ufrag, pc->pwd)) || sl_map_set(&w->by_ufrag, pc->ufrag, pc)) {
        snprintf(why, why_cap, "out of memory");
        return 500;
    }
    random_etag(pc->etag, sizeof pc->etag);
    uint8_t r[16];
    if (RAND_bytes(r, sizeof r) != 1) {
        snprintf(why, why_cap, "no randomness");
        return 500;
    }
    for (int i = 0; i < 16; i++)
        snprintf(pc->resource + 2 * i, 3, "%02x", r[i]);
    if (sl_map_set(&w->by_resource, pc->resource, pc)) {
        pc->resource[0] = '\0';
        snprintf(why, why_cap, "out of memory");
        return 500;
    }
    pc->our_ssrc = random_u32();
    if (want_send) {
        if (pc->has_video) {
            pc->vout.on = 1;
            pc->vout.pt = pc->video_pt;
            pc->vout.ssrc = pc->vout.ssrc ? pc->vout.ssrc : random_u32(); /* kept from our offer */
            pc->vout.seq = (uint16_t)random_u32();
            pc->vout.ts_base = random_u32();
            pc->vout.clock = 90000;
        }
        if (pc->has_audio) {
            pc->aout.on = 1;
            pc->aout.pt = pc->audio_pt;
            pc->aout.ssrc = pc->aout.ssrc ? pc->aout.ssrc : random_u32(); /* kept from our offer */
            pc->aout.seq = (uint16_t)random_u32();
            pc->aout.ts_base = random_u32();
            pc->aout.clock = 48000;
        }
    }
    pc->last_consent_ms = uv_now(w->core->loop);
    return 0;
}

int wrtc_pc_answer(wrtc_pc_t *pc, const sl_sdp_t *offer, char *out, size_t cap)
{
    wrtc_t *w = pc->w;
    sl_sdp_candidate_t cands[16];
    int n = 0;
    int tcp = sl_webrtc_cfg(w->core->cfg)->tcp;
    for (int i = 0; i < w->n_cands && n < 16; i++) {
        for (int t = 0; t <= tcp && n < 16; t++) {
            sl_sdp_candidate_t *c = &cands[n++];
            memset(c, 0, sizeof(*c));
            snprintf(c->foundation, sizeof c->foundation, "%d", i * 2 + t + 1);
            c->component = 1;
            c->is_tcp = t;
            /* UDP before TCP, and earlier addresses first. */
            c->priority = sl_ice_priority(126, (t ? 0 : 32768) + 65535 / 2 - i, 1);
            snprintf(c->addr, sizeof c->addr, "%s", w->cands[i]);
            c->port = w->udp_port;
        }
    }
    sl_sdp_answer_params_t p;
    memset(&p, 0, sizeof p);
    p.ice_ufrag = pc->ufrag;
    p.ice_pwd = pc->pwd;
    p.fingerprint_sha256 = sl_dtls_ctx_fingerprint(w->dtls_ctx);
    p.cands = cands;
    p.n_cands = n;
    p.cname = pc->sess.id;
    p.session_id = ((uint64_t)random_u32() << 20) ^ random_u32();
    p.max_message_size = (uint32_t)sl_webrtc_cfg(w->core->cfg)->max_message_size;
    for (int i = 0; i < offer->n_media && i < 8; i++) {
        sl_sdp_answer_media_t *am = &p.media[i];
        const sl_sdp_media_t *m = &offer->media[i];
        am->accept = pc->answer_codec[i] >= 0;
        am->codec_idx = pc->answer_codec[i] >= 0 ? pc->answer_codec[i] : 0;
        am->direction = pc->kind == WRTC_PUBLISHER ? SL_SDP_RECVONLY : SL_SDP_SENDONLY;
        if (pc->kind == WRTC_VIEWER && am->accept) {
            if (m->kind == SL_SDP_VIDEO) {
                am->ssrc = pc->vout.ssrc;
                am->msid_stream = "sluice";
                am->msid_track = "video";
            } else if (m->kind == SL_SDP_AUDIO) {
                am->ssrc = pc->aout.ssrc;
                am->msid_stream = "sluice";
                am->msid_track = "audio";
            }
        }
    }
    int n_out = sl_sdp_answer(offer, &p, out, cap);
    if (n_out > 0 && pc->dtls_client) {
        /* The offer said passive: we are the DTLS client (same length). */
        char *setup = strstr(out, "a=setup:passive");
        while (setup) {
            memcpy(setup + 8, "active ", 7);
            memmove(setup + 14, setup + 15, strlen(setup + 15) + 1);
            n_out--;
            setup = strstr(setup, "a=setup:passive");
        }
    }
    return n_out;
}

int wrtc_pc_ice_restart(wrtc_pc_t *pc, const char *remote_ufrag)
{
    wrtc_t *w = pc->w;
    char ufrag[9], pwd[25];
    if (sl_ice_credentials(ufrag, pwd) || sl_map_set(&w->by_ufrag, ufrag, pc))
        return SL_ENOMEM;
    sl_map_del(&w->by_ufrag, pc->ufrag);
    memcpy(pc->ufrag, ufrag, sizeof ufrag);
    memcpy(pc->pwd, pwd, sizeof pwd);
    snprintf(pc->remote_ufrag, sizeof pc->remote_ufrag, "%s", remote_ufrag);
    random_etag(pc->etag, sizeof pc->etag);
    pc->last_consent_ms = uv_now(w->core->loop);
    return 0;
}

int wrtc_pc_frag_answer(wrtc_pc_t *pc, char *out, size_t cap)
{
    return sl_sdp_frag_answer(pc->ufrag, pc->pwd, NULL, NULL, 0, out, cap);
}

/* ---- DTLS ---- */

static void dtls_send(void *ud, const uint8_t *p, size_t len)
{
    wrtc_send(ud, p, len);
}

static void sctp_send(void *ud, const uint8_t *p, size_t len)
{
    wrtc_pc_t *pc = ud;
    if (pc->dtls && pc->dtls_up)
        sl_dtls_send(pc->dtls, p, len);
}

static void sctp_channel_open(void *ud, uint16_t sid, const char *label, const char *protocol)
{
    wrtc_pc_t *pc = ud;
    (void)protocol;
    SL_LOGD(&pc->sess.log, "webrtc data channel %u open (%s)", sid, label ? label : "");
    if (!pc->dc_open) {
        pc->dc_open = 1;
        pc->dc_sid = sid;
        wrtc_view_on_dc_open(pc);
    }
}

static void sctp_message(void *ud, uint16_t sid, const uint8_t *p, size_t len, int is_text)
{
    wrtc_pc_t *pc = ud;
    if (!pc->dc_open) {
        pc->dc_open = 1;
        pc->dc_sid = sid;
    }
    pc->w->c.dc_messages_in++;
    pc->dc_in++;
    pc->sess.msgs_in++;
    SL_LOGD(&pc->sess.log, "webrtc data channel %u: %zu-byte %s message", sid, len, is_text ? "text" : "binary");
    wrtc_on_dc_message(pc, p, len, is_text);
}

static void sctp_channel_closed(void *ud, uint16_t sid)
{
    wrtc_pc_t *pc = ud;
    if (pc->dc_open && pc->dc_sid == sid)
        pc->dc_open = 0;
}

static void sctp_closed(void *ud, const char *why)
{
    wrtc_pc_t *pc = ud;
    SL_LOGD(&pc->sess.log, "webrtc SCTP closed: %s", why ? why : "");
    pc->dc_open = 0;
}

static const sl_sctp_ops_t pc_sctp_ops = {
    .send = sctp_send,
    .channel_open = sctp_channel_open,
    .message = sctp_message,
    .channel_closed = sctp_channel_closed,
    .closed = sctp_closed,
};

/*
 * Whether the viewer's stream has a publisher. A viewer attaches to the
 * hub only once DTLS is up; one whose publisher left while it was still
 * in ICE or DTLS setup would otherwise attach to an empty stream and wait
 * there with nothing to play (a viewer already attached is closed by the
 * sink's on_unpublish).
 */
static int stream_published(const wrtc_pc_t *pc)
{
    sl_stream_t *st = sl_hub_find(pc->w->core->hub, pc->path);
    return st && st->publisher;
}

static void dtls_connected(void *ud, const sl_srtp_keys_t *keys)
{
    wrtc_pc_t *pc = ud;
    wrtc_t *w = pc->w;
    if (sl_srtp_new(keys, &pc->srtp)) {
        wrtc_pc_close(pc, "SRTP setup failed");
        return;
    }
    pc->dtls_up = 1;
    pc->connected_ms = uv_now(w->core->loop);
    w->c.dtls_done++;
    SL_LOGI(&pc->sess.log, "webrtc connected (%s, %lld ms after the answer)", pc->tcp ? "ice-tcp" : "udp",
            (long long)(pc->connected_ms - pc->created_ms));
    if (pc->has_app && sl_webrtc_cfg(w->core->cfg)->datachannel) {
        if (sl_sctp_new(5000, (uint16_t)pc->sctp_port_remote,
                        (size_t)sl_webrtc_cfg(w->core->cfg)->max_message_size, pc->dtls_client,
                        &pc_sctp_ops, pc, &pc->sctp) == 0)
            sl_sctp_connect(pc->sctp);
    }
    if (pc->kind == WRTC_VIEWER && !stream_published(pc)) {
        wrtc_pc_close(pc, "stream unpublished");
        return;
    }
    if (pc->kind == WRTC_VIEWER && wrtc_view_start(pc))
        wrtc_pc_close(pc, "cannot attach to the stream");
}

static void dtls_data(void *ud, const uint8_t *p, size_t len)
{
    wrtc_pc_t *pc = ud;
    if (pc->sctp)
        sl_sctp_feed(pc->sctp, p, len);
}

static void dtls_closed(void *ud, const char *why)
{
    wrtc_pc_t *pc = ud;
    SL_LOGI(&pc->sess.log, "webrtc DTLS closed: %s", why ? why : "closed");
    wrtc_pc_close(pc, why ? why : "DTLS closed");
}

static const sl_dtls_ops_t pc_dtls_ops = {
    .send = dtls_send,
    .connected = dtls_connected,
    .data = dtls_data,
    .closed = dtls_closed,
};

/* ---- ICE ---- */

static void send_stun_error(wrtc_t *w, const sl_stun_msg_t *m, int code, const char *reason,
                            const struct sockaddr *from, wrtc_tcp_t *tcp)
{
    uint8_t out[256];
    int n = sl_stun_build_error(out, sizeof out, 0x0001, m->tid, code, reason, NULL, 0);
    if (n <= 0)
        return;
    if (tcp) {
        /* ICE-TCP errors are not worth a write on a connection nobody owns yet. */
        return;
    }
    uv_buf_t b = uv_buf_init((char *)out, (unsigned)n);
    uv_udp_try_send(&w->udp, &b, 1, from);
}

void wrtc_pc_on_stun(wrtc_t *w, const uint8_t *p, size_t len, const struct sockaddr *from, wrtc_tcp_t *tcp)
{
    sl_stun_msg_t m;
    w->c.stun_in++;
    if (sl_stun_parse(p, len, &m) || m.type != 0x0001) {
        w->c.stun_bad++; /* only binding requests concern an ICE-lite agent */
        return;
    }
    const uint8_t *local;
    size_t local_len;
    if (!m.username || sl_stun_username_split(m.username, m.username_len, &local, &local_len) ||
        local_len == 0 || local_len > 8) {
        w->c.stun_bad++;
        return;
    }
    char ufrag[9];
    memcpy(ufrag, local, local_len);
    ufrag[local_len] = '\0';
    wrtc_pc_t *pc = sl_map_get(&w->by_ufrag, ufrag);
    if (!pc || pc->closing) {
        /* No answer for a username we never handed out: the port must not
         * reflect (and amplify) packets with forged source addresses. */
        w->c.stun_bad++;
        return;
    }
    if (!m.has_integrity || sl_stun_check_integrity(p, len, &m, (const uint8_t *)pc->pwd, strlen(pc->pwd)) ||
        (m.has_fingerprint && sl_stun_check_fingerprint(p, len, &m))) {
        w->c.stun_bad++;
        send_stun_error(w, &m, 401, "Unauthorized", from, tcp);
        return;
    }
    if (m.n_unknown_required) {
        w->c.stun_bad++;
        return;
    }
    /* The time of reading, not the loop's cached time: a check read late in a long
     * iteration (a loop that was behind, or stopped) would otherwise be stamped with
     * the time before the wait, and the next tick, whose clock and socket-empty mark
     * are fresh (wrtc_heard_until_ms), would take the peer for silent. */
    uv_update_time(w->core->loop);
    uint64_t now = uv_now(w->core->loop);
    pc->last_consent_ms = now;
    /* ICE-lite: the peer is controlling; its valid check (nominated or not)
     * proves the address. The first one binds it; a later nominated one on
     * another address (the peer switched path) moves the session there. */
    char key[80];
    if (tcp)
        snprintf(key, sizeof key, "tcp|%p", (void *)tcp);
    else
        wrtc__addr_key(key, sizeof key, from);
    int rebind = !pc->have_addr || (strcmp(key, pc->addr_key) != 0 && m.use_candidate);
    if (rebind) {
        if (pc->have_addr)
            sl_map_del(&w->by_addr, pc->addr_key);
        if (sl_map_set(&w->by_addr, key, pc) == 0) {
            snprintf(pc->addr_key, sizeof pc->addr_key, "%s", key);
            memset(&pc->addr, 0, sizeof pc->addr);
            memcpy(&pc->addr, from, from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                : sizeof(struct sockaddr_in));
            pc->have_addr = 1;
            if (tcp) {
                if (!tcp->pc)
                    w->n_tcp_unbound--;
                tcp->pc = pc;
            }
            pc->tcp = tcp;
            SL_LOGD(&pc->sess.log, "webrtc ICE: peer at %s", key);
        }
    }
    uint8_t out[512];
    int n = sl_stun_build_binding_success(out, sizeof out, m.tid, from, (const uint8_t *)pc->pwd, strlen(pc->pwd));
    if (n > 0) {
        if (tcp) {
            if (pc->tcp == tcp)
                wrtc_send(pc, out, (size_t)n);
        } else {
            uv_buf_t b = uv_buf_init((char *)out, (unsigned)n);
            uv_udp_try_send(&w->udp, &b, 1, from);
        }
    }
    if (pc->have_addr && !pc->dtls) {
        if (sl_dtls_new(w->dtls_ctx, !pc->dtls_client, pc->remote_fp_alg, pc->remote_fp, &pc_dtls_ops, pc,
                        &pc->dtls)) {
            wrtc_pc_close(pc, "DTLS setup failed");
            return;
        }
        if (pc->dtls_client)
            sl_dtls_start(pc->dtls);
    }
}

void wrtc_pc_on_packet(wrtc_pc_t *pc, const uint8_t *p, size_t len)
{
    wrtc_t *w = pc->w;
    switch (sl_webrtc_classify(p, len)) {
    case SL_PKT_DTLS:
        if (pc->dtls)
            sl_dtls_feed(pc->dtls, p, len);
        break;
    case SL_PKT_RTP: {
        if (!pc->srtp || len > WRTC_MAX_DATAGRAM)
            return;
        uint8_t buf[WRTC_MAX_DATAGRAM];
        memcpy(buf, p, len);
        size_t n = len;
        if (sl_srtp_unprotect(pc->srtp, buf, &n)) {
            w->c.srtp_fail++;
            return;
        }
        w->c.rtp_in++;
        w->c.rtp_bytes_in += n;
        pc->rtp_in++;
        pc->sess.msgs_in++;
        if (pc->kind == WRTC_PUBLISHER)
            wrtc_pub_on_rtp(pc, buf, n);
        break;
    }
    case SL_PKT_RTCP: {
        if (!pc->srtp || len > WRTC_MAX_DATAGRAM)
            return;
        uint8_t buf[WRTC_MAX_DATAGRAM];
        memcpy(buf, p, len);
        size_t n = len;
        if (sl_srtp_unprotect_rtcp(pc->srtp, buf, &n)) {
            w->c.srtp_fail++;
            return;
        }
        wrtc_on_rtcp(pc, buf, n);
        break;
    }
    default:
        break;
    }
}

void wrtc_pc_send_rtp(wrtc_pc_t *pc, uint8_t *p, size_t len, size_t cap)
{
    if (pc->wout) {
        /* Only the viewer's worker holds the outbound SRTP session. */
        sl_buf_t *b = sl_buf_from(p, len);
        if (b && len > 12 && wrtc_wout_rtp(pc, p, 12, b, 12, (uint16_t)(len - 12)) == 0) {
            pc->w->c.rtp_out++;
            pc->w->c.rtp_bytes_out += len;
            pc->rtp_out++;
            pc->sess.msgs_out++;
            wrtc_wout_flush(pc);
        }
        sl_buf_unref(b);
        return;
    }
    if (!pc->srtp || !pc->have_addr)
        return;
    size_t n = len;
    if (sl_srtp_protect(pc->srtp, p, &n, cap))
        return;
    pc->w->c.rtp_out++;
    pc->w->c.rtp_bytes_out += len;
    pc->rtp_out++;
    pc->sess.msgs_out++;
    wrtc_send(pc, p, n);
}

void wrtc_pc_send_rtcp(wrtc_pc_t *pc, uint8_t *p, size_t len, size_t cap)
{
    if (pc->wout) {
        wrtc_wout_rtcp(pc, p, len); /* the worker holds the outbound SRTP session */
        return;
    }
    if (!pc->srtp || !pc->have_addr)
        return;
    size_t n = len;
    if (sl_srtp_protect_rtcp(pc->srtp, p, &n, cap))
        return;
    wrtc_send(pc, p, n);
}

int wrtc_pc_dc_send(wrtc_pc_t *pc, const uint8_t *p, size_t len, int is_text)
{
    if (!pc->sctp || !pc->dc_open)
        return SL_ECLOSED;
    int rc = sl_sctp_send(pc->sctp, pc->dc_sid, p, len, is_text);
    if (rc)
        SL_LOGD(&pc->sess.log, "webrtc data channel %u: send failed: %s", pc->dc_sid, sl_strerror(rc));
    if (rc == 0) {
        pc->w->c.dc_messages_out++;
        pc->dc_out++;
        pc->sess.msgs_out++;
    }
    return rc;
}

/* ---- timers ---- */

void wrtc_pc_tick(wrtc_pc_t *pc, uint64_t now_ms)
{
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(pc->w->core->cfg);
    if (pc->pending_post)
        return; /* admission still deciding: nothing of ours runs */
    if (pc->kind == WRTC_VIEWER && !pc->dtls_up && !stream_published(pc)) {
        wrtc_pc_close(pc, "stream unpublished");
        return;
    }
    /* Measured up to what has been read, not to now: checks still queued
     * in our socket while the loop is behind are not the peer's silence. */
    uint64_t heard = wrtc_heard_until_ms(pc, now_ms);
    if (!pc->dtls_up && heard > pc->created_ms && heard - pc->created_ms > (uint64_t)wc->setup_timeout_ms) {
        wrtc_pc_close(pc, pc->have_addr ? "DTLS did not complete in time" : "ICE did not complete in time");
        return;
    }
    if (heard > pc->last_consent_ms && heard - pc->last_consent_ms > (uint64_t)wc->consent_timeout_ms) {
        wrtc_pc_close(pc, "ICE consent expired (the peer is gone)");
        return;
    }
    if (pc->dtls && !pc->dtls_up) {
        int64_t t = sl_dtls_timeout_ms(pc->dtls);
        if (t == 0)
            sl_dtls_on_timeout(pc->dtls);
    }
    if (pc->dtls_up)
        wrtc_media_tick(pc, now_ms);
}

/* ---- freeing ---- */

void wrtc_pc_free(wrtc_pc_t *pc)
{
    wrtc_t *w = pc->w;
    if (pc->pending_post) {
        wrtc__post_cancel(pc->pending_post);
        pc->pending_post = NULL;
    }
    if (pc->ws_owner)
        wrtc_ws_pc_gone(pc); /* its signalling socket learns it (and forgets pc) */
    if (pc->dc_conn)
        wrtc_ws_dc_gone(pc); /* handlers that took its data channel messages learn it */
    if (pc->kind == WRTC_PUBLISHER)
        wrtc_pub_stop(pc, pc->close_reason);
    else
        wrtc_view_stop(pc, pc->close_reason);
    if (pc->sctp) {
        sl_sctp_free(pc->sctp);
        pc->sctp = NULL;
    }
    if (pc->dtls) {
        if (pc->dtls_up)
            sl_dtls_close(pc->dtls);
        sl_dtls_free(pc->dtls);
        pc->dtls = NULL;
    }
    if (pc->srtp) {
        sl_srtp_free(pc->srtp);
        pc->srtp = NULL;
    }
    if (pc->ufrag[0] && sl_map_get(&w->by_ufrag, pc->ufrag) == pc)
        sl_map_del(&w->by_ufrag, pc->ufrag);
    if (pc->have_addr && sl_map_get(&w->by_addr, pc->addr_key) == pc)
        sl_map_del(&w->by_addr, pc->addr_key);
    if (pc->tcp) {
        wrtc_tcp_t *t = pc->tcp;
        pc->tcp = NULL;
        /* Close while t->pc is still set: a bound connection is not counted in
         * n_tcp_unbound, and clearing it first made the close decrement that count
         * below zero, after which every new ICE-TCP connection was refused. */
        wrtc__tcp_close_bound(t);
        t->pc = NULL;
    }
    if (sl_map_get(&w->by_id, pc->sess.id) == pc)
        sl_map_del(&w->by_id, pc->sess.id);
    if (pc->resource[0] && sl_map_get(&w->by_resource, pc->resource) == pc)
        sl_map_del(&w->by_resource, pc->resource);
    if (pc->addr_counted)
        wrtc__addr_release(w, pc->sess.remote_addr);
    /* A session answered 201 that ends before any RTP flowed failed, however
     * it ended: setup timeout, DTLS handshake failure, closed or deleted
     * first (its close_reason says which). */
    if (pc->answered && !pc->rtp_in && !pc->rtp_out && !pc->dc_in && !pc->dc_out)
        w->c.sessions_failed++;
    if (pc->connected_ms || pc->admitted)
        sl_events_emit_session(w->core, &pc->sess, SL_EV_DISCONNECT, pc->close_reason);
    SL_LOGI(&pc->sess.log, "webrtc session closed: %s", pc->close_reason);
    sl_list_remove(&pc->link);
    w->n_pcs--;
    sl_session_unregister(w->core, &pc->sess);
    sl_free(pc);
}
