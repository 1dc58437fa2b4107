/*
 * Red5 Pro's WebSocket signalling for WebRTC, as its HTML5 SDK up to 12.x
 * speaks it (RTCPublisher / RTCSubscriber; docs/webrtc.md "Red5 WebSocket
 * signalling"): a WebSocket upgrade on the HTTP port at
 * `/{app}[/{room}]/?id={stream|subscriptionId}&{connectionParams}`, then JSON
 * messages. It sets up the very sessions WHIP/WHEP do (webrtc_pc.c), with
 * the same admission (transport "webrtc", credentials from the URL's query
 * or `Authorization: Bearer`), and only the negotiation differs:
 *
 *   publisher:  <- Connect.Success   -> {isAvailable,bundle}  <- {isAvailable:true}
 *               -> {handleOffer,data:{sdp:offer}}  <- {data:{sdp:answer}}
 *               <- TrickleCompleted  -> {publish,mode}  <- "<name> starting"
 *   subscriber: <- Connect.Success   -> {requestOffer,requestId,datachannel}
 *               <- {data:{sdp:offer}} (sdp_offer.c)  -> {handleAnswer,data:{sdp:answer}}
 *               <- TrickleCompleted  -> {subscribe}  <- "<name> starting"
 *
 * Messages dispatch through a table keyed by the message's top-level key;
 * other modules add keys through the "webrtc-ws" service
 * (app/svc/webrtc_ws.h). Budgets: a message size cap, messages per second
 * per socket, sockets in total and per address, an idle deadline while no
 * session is up, and one session per socket.
 *
 * Lifetimes: a connection (sl_wsig_conn_t) lives from ws_accept to the
 * WebSocket's on_close; its session (wrtc_pc_t) is linked both ways
 * (conn->pc, pc->ws_owner) and either end unlinks the other when it goes:
 * the socket closing ends a session that has no open data channel;
 * the session ending (kick, timeout) closes the socket with
 * `NetConnection.Connect.Closed`. The state (wrtc_wsig_t) outlives the
 * protocol's stop until its last socket and its timer have closed.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "app/admission.h"
#include "app/events.h"
#include "app/services.h"
#include "app/svc/webrtc_ws.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/str.h"
#include "base/time.h"
#include "net/dtls.h"
#include "media/sdp.h"
#include "proto/webrtc/sdp_offer.h"
#include "proto/webrtc/stun.h"
#include "proto/webrtc/webrtc_internal.h"
#include "sluice/errors.h"

#define WSIG_MAX_HANDLERS 32
#define WSIG_KEY_MAX 64
#define WSIG_TIMER_MS 250
#define WSIG_NAME_MAX 256          /* stream names and request ids */
#define WSIG_TOKEN_MAX 4096        /* a JWT from the query or a Bearer header */
#define WSIG_OFFER_CAP 16384       /* our offer / answer texts */
#define WSIG_VIDEO_PT 102          /* payload types of our offer (Chrome's usual H.264 ones) */
#define WSIG_RTX_PT 103
#define WSIG_VIDEO_PT2 104         /* constrained baseline fallback */
#define WSIG_RTX_PT2 105
#define WSIG_AUDIO_PT 111
#define WSIG_EXT_MID 4             /* extmap id of sdes:mid in our offer */

typedef struct wrtc_wsig wrtc_wsig_t;

typedef struct wsig_handler {
    char key[WSIG_KEY_MAX];
    int (*on_message)(sl_wsig_conn_t *c, const char *json, size_t len, void *ud);
    void (*on_close)(sl_wsig_conn_t *c, void *ud);
    void *ud;
    int (*builtin)(sl_wsig_conn_t *c, json_t *msg, const char *value); /* built-in: parsed form */
} wsig_handler_t;

struct wrtc_wsig {
    wrtc_t *w;                       /* NULL after stop */
    sl_core_t *core;
    const sl_http_svc_t *http;       /* the route service (borrowed) */
    void *http_ud;
    sl_http_route_t *route;
    uv_timer_t timer;
    int timer_open;                  /* the timer handle is open (closed at stop) */
    sl_list_t conns;
    size_t n_conns;
    sl_map_t per_addr;               /* address -> (void*)(uintptr_t)count */
    wsig_handler_t handlers[WSIG_MAX_HANDLERS];
    int n_handlers;
    int n_builtin;
    int svc_registered;
    int stopped;
    size_t n_dc_conns;               /* data channel conns (wrtc_ws_dc_message), not in conns */
};

typedef enum { WSIG_NONE = 0, WSIG_PUBLISHER, WSIG_VIEWER } wsig_role_t;

struct sl_wsig_conn {
    wrtc_wsig_t *st;
    sl_ws_t *ws;                     /* NULL once closed */
    sl_list_t link;
    char addr[64];
    int port;
    char scope[WRTC_PATH_MAX + 1];   /* "live", "live/room1" */
    char id[WSIG_NAME_MAX];          /* the URL's id= */
    char *query;                     /* the URL's query (owned) */
    char user[256], pass[256];
    char *token;                     /* owned, "" when none */
    uint64_t opened_ms, last_valid_ms, window_ms;
    unsigned n_in_window;
    int closing;                     /* closing: ignore further messages */
    int close_sent;                  /* the close handshake was started */
    int close_code;                  /* for it */
    char close_reason[124];

    wsig_role_t role;
    char stream[WSIG_NAME_MAX];      /* the stream of the session */
    char request_id[WSIG_NAME_MAX];  /* subscriber's requestId */
    int want_dc;                     /* subscriber asked for a data channel */
    wrtc_pc_t *pc;                   /* the session (one per socket), NULL before/after */
    sl_admit_t *admit;               /* admission pending */
    int admit_in_call, admit_finished, admit_result;
    char admit_reason[256];
    char *offer;                     /* publisher's offer text, held until admitted (owned) */
    size_t offer_len;
    const char *mode;                /* publish mode admitted: "live" / "record" / "append" */
    int answered;                    /* viewer: its answer was applied */

    /* The connect admission of features without a session (svc_admit). */
    wrtc_pc_t *dc_pc;                /* set: this conn is that session's data channel */
    sl_session_t *asess;             /* detached session the admission checks see (owned) */
    sl_admit_t *conn_admit;          /* pending, or NULL */
    int conn_admit_state;            /* 0 not run, 1 pending, 2 admitted, 3 refused */
    int in_conn_admit;               /* inside sl_admit(): the callback waits for the return */
    sl_wsig_admit_cb admit_cb;       /* the first pending caller's callback */
    void *admit_cb_ud;
};

static int conn_send_raw(sl_wsig_conn_t *c, const char *json, size_t len);

/* ---- sending ---- */

static int send_json(sl_wsig_conn_t *c, json_t *o)
{
    if (!o)
        return SL_ENOMEM;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return SL_ENOMEM;
    int rc = conn_send_raw(c, s, strlen(s));
    free(s); /* jansson's allocator */
    return rc;
}

/* {data:{type:"status"|"error", code, message}} as Red5's server sends them. */
static int send_status(sl_wsig_conn_t *c, const char *type, const char *code, const char *message)
{
    json_t *d = json_pack("{s:s, s:s}", "type", type, "code", code);
    if (d && message)
        json_object_set_new(d, "message", json_string(message));
    if (d && c->stream[0])
        json_object_set_new(d, "streamName", json_string(c->stream));
    return send_json(c, d ? json_pack("{s:o}", "data", d) : NULL);
}

static void conn_close_now(sl_wsig_conn_t *c);

/*
 * Ends the socket: a last status (when code is set), then the close
 * handshake (the HTTP server sends the close frame after the messages
 * queued before it).
 */
static void conn_close(sl_wsig_conn_t *c, const char *code, const char *message, int ws_code)
{
    if (c->closing || !c->ws)
        return;
    if (code)
        send_status(c, "error", code, message);
    c->closing = 1;
    c->close_code = ws_code;
    snprintf(c->close_reason, sizeof c->close_reason, "%.120s", message ? message : "");
    conn_close_now(c);
}

/* The close handshake conn_close asked for. */
static void conn_close_now(sl_wsig_conn_t *c)
{
    if (c->ws && c->closing && !c->close_sent) {
        c->close_sent = 1;
        c->st->http->ws_close(c->ws, c->close_code, c->close_reason);
    }
}

/* ---- budgets ---- */

static size_t addr_count(wrtc_wsig_t *st, const char *addr)
{
    return (size_t)(uintptr_t)sl_map_get(&st->per_addr, addr);
}

static void addr_add(wrtc_wsig_t *st, const char *addr, int delta)
{
    size_t n = addr_count(st, addr);
    if (delta < 0 && n <= 1) {
        sl_map_del(&st->per_addr, addr);
        return;
    }
    sl_map_set(&st->per_addr, addr, (void *)(uintptr_t)(n + (size_t)delta));
}

/* ---- the session link ---- */

/* Forgets the session on both sides; ends it unless it lives on its data channel. */
static void unlink_pc(sl_wsig_conn_t *c, int end_session)
{
    wrtc_pc_t *pc = c->pc;
    if (c->admit) {
        sl_admit_cancel(c->admit);
        c->admit = NULL;
    }
    if (!pc)
        return;
    c->pc = NULL;
    pc->ws_owner = NULL;
    if (end_session)
        wrtc_pc_close(pc, "signalling socket closed");
}

void wrtc_ws_pc_gone(wrtc_pc_t *pc)
{
    sl_wsig_conn_t *c = pc->ws_owner;
    pc->ws_owner = NULL;
    if (!c || c->pc != pc)
        return;
    if (c->admit) {
        sl_admit_cancel(c->admit);
        c->admit = NULL;
    }
    c->pc = NULL;
    if (c->role == WSIG_VIEWER)
        send_status(c, "status", "NetStream.Play.UnpublishNotify", pc->close_reason);
    conn_close(c, "NetConnection.Connect.Closed", pc->close_reason[0] ? pc->close_reason : "session ended",
               1000);
}

/* ---- answers and offers ---- */

/* Our host candidates, as the WHIP answer lists them. */
static int our_candidates(wrtc_t *w, sl_sdp_candidate_t *cands, int cap)
{
    int n = 0;
    int tcp = sl_webrtc_cfg(w->core->cfg)->tcp;
    for (int i = 0; i < w->n_cands && n < cap; i++) {
        for (int t = 0; t <= tcp && n < cap; t++) {
            sl_sdp_candidate_t *cd = &cands[n++];
            memset(cd, 0, sizeof(*cd));
            snprintf(cd->foundation, sizeof cd->foundation, "%d", i * 2 + t + 1);
            cd->component = 1;
            cd->is_tcp = t;
            cd->priority = sl_ice_priority(126, (t ? 0 : 32768) + 65535 / 2 - i, 1);
            snprintf(cd->addr, sizeof cd->addr, "%s", w->cands[i]);
            cd->port = w->udp_port;
        }
    }
    return n;
}

static uint32_t rand_u32(void)
{
    uint32_t v = 0;
    RAND_bytes((uint8_t *)&v, sizeof v);
    return v ? v : 1;
}

/* The H.264 profile-level-id of the stream's AVC sequence header, 0 when unknown. */
static uint32_t stream_profile_level_id(const sl_stream_t *st)
{
    const sl_frame_t *f = st ? st->video_config : NULL;
    if (!f || !f->body || f->body->len < 9 || (f->body->data[0] & 0x0f) != 7 || f->body->data[1] != 0)
        return 0;
    const uint8_t *d = f->body->data;
    return (uint32_t)d[6] << 16 | (uint32_t)d[7] << 8 | d[8];
}

/* Sends {data:{sdp:{type, sdp}}}. */
static int send_sdp(sl_wsig_conn_t *c, const char *type, const char *sdp)
{
    return send_json(c, json_pack("{s:{s:{s:s, s:s}}}", "data", "sdp", "type", type, "sdp", sdp));
}

/* The candidates are in the SDP (ICE-lite, gathered at start): trickling ends at once. */
static void send_trickle_end(sl_wsig_conn_t *c)
{
    send_status(c, "status", "NetConnection.ICE.TrickleCompleted", NULL);
}

/* Publisher admitted: parse, set up and answer its offer; claim the stream. */
static void publisher_go(sl_wsig_conn_t *c)
{
    wrtc_pc_t *pc = c->pc;
    wrtc_t *w = c->st->w;
    char why[256] = "";
    const char *code = "NetStream.Publish.Failed";
    sl_sdp_t *offer = NULL;
    char *answer = NULL;
    sl_stream_t *hs = sl_hub_find(w->core->hub, pc->path);
    if (hs && hs->publisher) {
        snprintf(why, sizeof why, "%.200s is already being published", c->stream);
        code = "NetStream.Publish.BadName";
        goto fail;
    }
    offer = sl_malloc(sizeof(*offer));
    char err[160] = "";
    if (!offer) {
        snprintf(why, sizeof why, "out of memory");
        goto fail;
    }
    if (sl_sdp_parse(c->offer, c->offer_len, offer, err, sizeof err)) {
        snprintf(why, sizeof why, "bad SDP offer: %s", err);
        goto fail;
    }
    if (wrtc_pc_setup(pc, offer, why, sizeof why))
        goto fail;
    answer = sl_malloc(WSIG_OFFER_CAP);
    int alen = answer ? wrtc_pc_answer(pc, offer, answer, WSIG_OFFER_CAP) : SL_ENOMEM;
    if (alen < 0) {
        snprintf(why, sizeof why, "cannot write the answer: %s", sl_strerror(alen));
        goto fail;
    }
    if (wrtc_pub_start(pc)) {
        snprintf(why, sizeof why, "stream %.200s unavailable", c->stream);
        code = "NetStream.Publish.BadName";
        goto fail;
    }
    pc->created_ms = uv_now(w->core->loop); /* the setup deadline runs from the answer */
    w->c.sessions_total++;
    pc->answered = 1; /* counted as failed if it ends before media flows */
    SL_LOGI(&pc->sess.log, "webrtc publisher over WebSocket signalling (%s:%d)", c->addr, c->port);
    send_sdp(c, "answer", answer);
    send_trickle_end(c);
    sl_free(answer);
    sl_free(offer);
    sl_free(c->offer);
    c->offer = NULL;
    return;
fail:
    SL_LOGI(&pc->sess.log, "webrtc ws publish refused: %s", why);
    sl_free(answer);
    sl_free(offer);
    unlink_pc(c, 1);
    send_status(c, "error", code, why);
}

/* Viewer admitted: the stream must be live; write and send our offer. */
static void viewer_go(sl_wsig_conn_t *c)
{
    wrtc_pc_t *pc = c->pc;
    wrtc_t *w = c->st->w;
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(w->core->cfg);
    char why[256] = "";
    sl_stream_t *hs = sl_hub_find(w->core->hub, pc->path);
    if (!hs || !hs->publisher) {
        snprintf(why, sizeof why, "stream %.200s not found", c->stream);
        unlink_pc(c, 1);
        send_status(c, "error", "NetStream.Play.StreamNotFound", why);
        return;
    }
    /* Our credentials and SSRCs now: they are in the offer, and
     * wrtc_pc_setup keeps them when the answer comes. */
    if (sl_ice_credentials(pc->ufrag, pc->pwd)) {
        unlink_pc(c, 1);
        send_status(c, "error", "NetStream.Play.Failed", "out of randomness");
        return;
    }
    pc->vout.ssrc = rand_u32();
    pc->aout.ssrc = rand_u32();
    sl_sdp_candidate_t cands[16];
    sl_sdp_offer_params_t p;
    memset(&p, 0, sizeof p);
    p.ice_ufrag = pc->ufrag;
    p.ice_pwd = pc->pwd;
    p.fingerprint_sha256 = sl_dtls_ctx_fingerprint(w->dtls_ctx);
    p.cands = cands;
    p.n_cands = our_candidates(w, cands, 16);
    p.cname = pc->sess.id;
    p.session_id = ((uint64_t)rand_u32() << 20) ^ rand_u32();
    /* H.264 only: a VP8 stream is offered without video (sdp_offer.c writes H.264). */
    p.video = wc->h264 && hs->video_codec != SL_CODEC_VP8;
    p.video_pt = WSIG_VIDEO_PT;
    p.video_rtx_pt = WSIG_RTX_PT;
    p.video_ssrc = pc->vout.ssrc;
    p.profile_level_id = stream_profile_level_id(hs);
    if (p.profile_level_id && p.profile_level_id != 0x42e01f) {
        p.video_pt2 = WSIG_VIDEO_PT2;
        p.video_rtx_pt2 = WSIG_RTX_PT2;
        p.profile_level_id2 = 0x42e01f;
    }
    p.audio = 1;
    p.audio_pt = WSIG_AUDIO_PT;
    p.audio_ssrc = pc->aout.ssrc;
    p.datachannel = c->want_dc && wc->datachannel;
    p.ext_mid = WSIG_EXT_MID;
    char *offer = sl_malloc(WSIG_OFFER_CAP);
    int n = offer ? sl_sdp_offer(&p, offer, WSIG_OFFER_CAP) : SL_ENOMEM;
    if (n < 0) {
        sl_free(offer);
        unlink_pc(c, 1);
        send_status(c, "error", "NetStream.Play.Failed", "cannot write the offer");
        return;
    }
    pc->created_ms = pc->last_consent_ms = uv_now(w->core->loop);
    SL_LOGI(&pc->sess.log, "webrtc viewer over WebSocket signalling (%s:%d): offer sent", c->addr, c->port);
    send_sdp(c, "offer", offer);
    sl_free(offer);
}

static void admitted(sl_wsig_conn_t *c)
{
    wrtc_pc_t *pc = c->pc;
    if (!pc)
        return;
    if (c->admit_result) {
        const char *why = c->admit_reason[0] ? c->admit_reason : "denied";
        SL_LOGI(&pc->sess.log, "webrtc ws %s refused: %s", c->role == WSIG_PUBLISHER ? "publish" : "play",
                why);
        unlink_pc(c, 1);
        conn_close(c, "NetConnection.Connect.Rejected", why, 1008);
        return;
    }
    sl_session_admitted(&pc->sess);
    pc->admitted = 1;
    sl_events_emit_session(c->st->core, &pc->sess, SL_EV_CONNECT, NULL);
    if (c->role == WSIG_PUBLISHER)
        publisher_go(c);
    else
        viewer_go(c);
}

static void admit_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    sl_wsig_conn_t *c = ud;
    c->admit_finished = 1;
    c->admit_result = result;
    snprintf(c->admit_reason, sizeof c->admit_reason, "%s", reason ? reason : "");
    if (c->admit_in_call)
        return;
    if (c->admit == a) {
        c->admit = NULL;
        sl_admit_unref(a);
    }
    admitted(c);
}

/*
 * Makes the socket's one session (kind) for stream and runs admission.
 * Returns 0 (going on: the answer follows by message) or an error already
 * answered to the client.
 */
static int start_session(sl_wsig_conn_t *c, wsig_role_t role, const char *stream)
{
    wrtc_wsig_t *st = c->st;
    wrtc_t *w = st->w;
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(w->core->cfg);
    const char *fail_code = role == WSIG_PUBLISHER ? "NetStream.Publish.Failed" : "NetStream.Play.Failed";
    if (c->role != WSIG_NONE) {
        send_status(c, "error", fail_code, "one session per signalling socket");
        return SL_EBUSY;
    }
    char path[WRTC_PATH_MAX + 1];
    if (!stream[0] || strlen(stream) >= WSIG_NAME_MAX || strchr(stream, '/') ||
        (size_t)snprintf(path, sizeof path, "%s/%s", c->scope, stream) >= sizeof path ||
        !sl_name_is_safe(path, WRTC_PATH_MAX)) {
        send_status(c, "error", role == WSIG_PUBLISHER ? "NetStream.Publish.BadName" : fail_code,
                    "bad stream name");
        return SL_EINVAL;
    }
    const sl_app_config_t *app = sl_core_app(w->core, c->scope);
    if (!app || (role == WSIG_PUBLISHER ? !app->allow_publish : !app->allow_play)) {
        send_status(c, "error", fail_code, role == WSIG_PUBLISHER ? "publishing is not allowed here"
                                                                  : "playing is not allowed here");
        return SL_EDENIED;
    }
    if (w->n_pcs >= (size_t)wc->max_sessions || w->stopping) {
        send_status(c, "error", fail_code, "server busy");
        return SL_EBUSY;
    }
    if ((size_t)(uintptr_t)sl_map_get(&w->per_addr, c->addr) >= (size_t)wc->max_sessions_per_address) {
        send_status(c, "error", fail_code, "too many sessions from this address");
        return SL_EBUSY;
    }
    wrtc_pc_t *pc = wrtc_pc_alloc(w, role == WSIG_PUBLISHER ? WRTC_PUBLISHER : WRTC_VIEWER, path, c->addr,
                                  c->port);
    if (!pc) {
        send_status(c, "error", fail_code, "out of memory");
        return SL_ENOMEM;
    }
    /* The session's timers run from now (WHIP's skip a session under
     * admission; here the setup deadline covers admission too). */
    pc->last_consent_ms = uv_now(w->core->loop);
    /* Counted with WHIP/WHEP's sessions of the address (released by wrtc_pc_free). */
    size_t held = (size_t)(uintptr_t)sl_map_get(&w->per_addr, pc->sess.remote_addr);
    if (sl_map_set(&w->per_addr, pc->sess.remote_addr, (void *)(uintptr_t)(held + 1)) == 0)
        pc->addr_counted = 1;
    c->role = role;
    snprintf(c->stream, sizeof c->stream, "%s", stream);
    c->pc = pc;
    pc->ws_owner = c;
    if (sl_session_set_app(&pc->sess, c->scope) || sl_session_set_stream(&pc->sess, stream) ||
        sl_session_set_query(&pc->sess, c->query && c->query[0] ? c->query : NULL)) {
        unlink_pc(c, 1);
        send_status(c, "error", fail_code, "out of memory");
        return SL_ENOMEM;
    }
    pc->sess.publish_mode = !strcmp(c->mode, "live") ? SL_PUBLISH_LIVE
                            : !strcmp(c->mode, "append") ? SL_PUBLISH_APPEND : SL_PUBLISH_RECORD;
    if (role != WSIG_PUBLISHER)
        pc->sess.publish_mode = SL_PUBLISH_LIVE;
    sl_admit_req_t ar = {
        .kind = role == WSIG_PUBLISHER ? SL_ADMIT_PUBLISH : SL_ADMIT_PLAY,
        .app = pc->sess.app,
        .stream = pc->sess.stream,
        .transport = "webrtc",
        .query = c->query,
        .username = c->user[0] ? c->user : NULL,
        .password = c->pass[0] ? c->pass : NULL,
        .token = c->token[0] ? c->token : NULL,
        .publish_mode = role == WSIG_PUBLISHER ? c->mode : NULL,
    };
    sl_admit_t *a = NULL;
    c->admit_in_call = 1;
    c->admit_finished = 0;
    int rc = sl_admit(w->core, &pc->sess, &ar, admit_done, c, &a);
    c->admit_in_call = 0;
    if (rc == SL_EPENDING) {
        c->admit = a;
        return 0;
    }
    if (rc == SL_OK && c->admit_finished) {
        admitted(c);
        return 0;
    }
    unlink_pc(c, 1);
    send_status(c, "error", fail_code, "admission failed");
    return rc ? rc : SL_EINVAL;
}

/* ---- built-in messages ---- */

static const char *str_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* data.sdp.sdp (Red5 sends the RTCSessionDescription), or data.sdp as a string. */
static const char *sdp_of(json_t *msg, const char *want_type)
{
    json_t *d = json_object_get(msg, "data");
    json_t *s = json_is_object(d) ? json_object_get(d, "sdp") : NULL;
    if (json_is_string(s))
        return json_string_value(s);
    if (!json_is_object(s))
        return NULL;
    const char *type = str_at(s, "type");
    if (type && strcmp(type, want_type) != 0)
        return NULL;
    return str_at(s, "sdp");
}

static int on_is_available(sl_wsig_conn_t *c, json_t *msg, const char *name)
{
    char path[WRTC_PATH_MAX + WSIG_NAME_MAX + 2];
    snprintf(path, sizeof path, "%s/%s", c->scope, name ? name : "");
    sl_stream_t *hs = name ? sl_hub_find(c->st->core->hub, path) : NULL;
    int live = hs && hs->publisher;
    /* The publisher asks with bundle:true whether the name is free; a subscriber whether it is live. */
    int publisher = json_is_true(json_object_get(msg, "bundle"));
    int available = publisher ? !live : live;
    json_t *o = json_pack("{s:b, s:s}", "isAvailable", available, "name", name ? name : "");
    if (o && publisher && !live) {
        json_object_set_new(o, "data", json_pack("{s:s, s:s}", "type", "status", "code",
                                                 "NetStream.Publish.IsAvailable"));
    }
    return send_json(c, o);
}

static int on_handle_offer(sl_wsig_conn_t *c, json_t *msg, const char *name)
{
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(c->st->core->cfg);
    const char *sdp = sdp_of(msg, "offer");
    if (!name || !sdp || !sdp[0])
        return send_status(c, "error", "NetStream.Publish.Failed", "handleOffer needs a name and data.sdp"), 0;
    size_t len = strlen(sdp);
    if (len > (size_t)wc->max_sdp_bytes)
        return send_status(c, "error", "NetStream.Publish.Failed", "offer too large"), 0;
    if (c->role != WSIG_NONE)
        return send_status(c, "error", "NetStream.Publish.Failed", "one session per signalling socket"), 0;
    c->offer = sl_malloc(len + 1);
    if (!c->offer)
        return SL_ENOMEM;
    memcpy(c->offer, sdp, len + 1);
    c->offer_len = len;
    if (start_session(c, WSIG_PUBLISHER, name) && c->offer) {
        sl_free(c->offer);
        c->offer = NULL;
    }
    return 0; /* refusals were answered */
}

static int on_handle_candidate(sl_wsig_conn_t *c, json_t *msg, const char *name)
{
    /* ICE-lite: the peer's address is learnt from its checks; candidates are not needed. */
    (void)c, (void)msg, (void)name;
    return 0;
}

static int on_publish(sl_wsig_conn_t *c, json_t *msg, const char *name)
{
    if (c->role != WSIG_PUBLISHER || !c->pc || !name || strcmp(name, c->stream) != 0)
        return send_status(c, "error", "NetStream.Publish.Failed", "publish before handleOffer"), 0;
    const char *mode = str_at(msg, "mode");
    if (mode && strcasecmp(mode, c->mode) != 0) {
        char why[200];
        snprintf(why, sizeof why, "mode %.20s was not admitted: pass mode=%.20s in the connection parameters",
                 mode, mode);
        return send_status(c, "error", "NetStream.Publish.Failed", why), 0;
    }
    char m[WSIG_NAME_MAX + 16];
    snprintf(m, sizeof m, "%s starting", c->stream);
    return send_status(c, "status", "NetStream.Publish.Start", m);
}

static int on_unpublish(sl_wsig_conn_t *c, json_t *msg, const char *name)
{
    (void)msg, (void)name;
    if (c->role != WSIG_PUBLISHER)
        return send_status(c, "error", "NetStream.Unpublish.Failed", "not publishing"), 0;
    char m[WSIG_NAME_MAX + 16];
    snprintf(m, sizeof m, "%s stopping", c->stream);
    if (c->pc)
        SL_LOGI(&c->pc->sess.log, "webrtc ws publisher unpublished");
    unlink_pc(c, 1);
    return send_status(c, "status", "NetStream.Unpublish.Success", m);
}

static int on_request_offer(sl_wsig_conn_t *c, json_t *msg, const char *name)
{
    if (!name)
        return send_status(c, "error", "NetStream.Play.Failed", "requestOffer needs a stream name"), 0;
    const char *rid = str_at(msg, "requestId");
    snprintf(c->request_id, sizeof c->request_id, "%s", rid ? rid : "");
    json_t *dc = json_object_get(msg, "datachannel");
    c->want_dc = json_is_true(dc);
    start_session(c, WSIG_VIEWER, name);
    return 0;
}

static int on_handle_answer(sl_wsig_conn_t *c, json_t *msg, const char *name)
{
    (void)name;
    wrtc_pc_t *pc = c->pc;
    if (c->role != WSIG_VIEWER || !pc || c->admit || !pc->ufrag[0] || c->answered)
        return send_status(c, "error", "NetStream.Play.Failed", "handleAnswer without an offer"), 0;
    const char *sdp = sdp_of(msg, "answer");
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(c->st->core->cfg);
    if (!sdp || strlen(sdp) > (size_t)wc->max_sdp_bytes)
        return send_status(c, "error", "NetStream.Play.Failed", "handleAnswer needs data.sdp"), 0;
    sl_sdp_t *ans = sl_malloc(sizeof(*ans));
    char err[160] = "", why[256] = "";
    if (!ans)
        return SL_ENOMEM;
    if (sl_sdp_parse(sdp, strlen(sdp), ans, err, sizeof err))
        snprintf(why, sizeof why, "bad SDP answer: %s", err);
    else
        wrtc_pc_setup(pc, ans, why, sizeof why); /* the answer's setup picks our DTLS role */
    sl_free(ans);
    if (why[0]) {
        SL_LOGI(&pc->sess.log, "webrtc ws answer refused: %s", why);
        unlink_pc(c, 1);
        return send_status(c, "error", "NetStream.Play.Failed", why), 0;
    }
    c->answered = 1;
    pc->created_ms = uv_now(c->st->core->loop);
    c->st->w->c.sessions_total++;
    pc->answered = 1;
    send_trickle_end(c);
    return 0;
}

static int on_subscribe(sl_wsig_conn_t *c, json_t *msg, const char *name)
{
    (void)msg, (void)name;
    if (c->role != WSIG_VIEWER || !c->pc || !c->answered)
        return send_status(c, "error", "NetStream.Play.Failed", "subscribe before handleAnswer"), 0;
    char m[WSIG_NAME_MAX + 16];
    snprintf(m, sizeof m, "%s starting", c->stream);
    return send_status(c, "status", "NetStream.Play.Start", m);
}

static int on_log(sl_wsig_conn_t *c, json_t *msg, const char *level)
{
    const char *m = str_at(msg, "message");
    SL_LOGD(c->pc ? &c->pc->sess.log : NULL, "webrtc ws client log [%.16s]: %.200s", level ? level : "",
            m ? m : "");
    return 0;
}

static int on_switch_channel(sl_wsig_conn_t *c, json_t *msg, const char *v)
{
    /* Sent by the SDK when it moves to the data channel; we never offer the switch. */
    (void)c, (void)msg, (void)v;
    return 0;
}

static const struct {
    const char *key;
    int (*fn)(sl_wsig_conn_t *c, json_t *msg, const char *value);
} g_builtin[] = {
    {"handleOffer", on_handle_offer},       {"handleCandidate", on_handle_candidate},
    {"publish", on_publish},                {"unpublish", on_unpublish},
    {"requestOffer", on_request_offer},     {"handleAnswer", on_handle_answer},
    {"subscribe", on_subscribe},            {"isAvailable", on_is_available},
    {"log", on_log},                        {"switchChannel", on_switch_channel},
};

/* ---- the socket ---- */

static void on_ws_message(sl_ws_t *ws, const uint8_t *data, size_t len, int is_text, void *ud)
{
    (void)ws;
    sl_wsig_conn_t *c = ud;
    wrtc_wsig_t *st = c->st;
    if (c->closing || !st->w)
        return;
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(st->core->cfg);
    uint64_t now = uv_now(st->core->loop);
    if (now - c->window_ms >= 1000) {
        c->window_ms = now;
        c->n_in_window = 0;
    }
    if (++c->n_in_window > (unsigned)wc->ws_messages_per_second) {
        SL_LOGI(NULL, "webrtc ws %s: more than %lld messages/s: closed", c->addr,
                (long long)wc->ws_messages_per_second);
        conn_close(c, "NetConnection.Connect.Closed", "too many messages", 1008);
        return;
    }
    if (len > (size_t)wc->ws_max_message_bytes) {
        conn_close(c, "NetConnection.Connect.Closed", "message too large", 1009);
        return;
    }
    if (!is_text) {
        send_status(c, "error", "NetConnection.Call.Failed", "binary messages are not understood");
        return;
    }
    json_error_t jerr;
    json_t *msg = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(msg)) {
        json_decref(msg);
        send_status(c, "error", "NetConnection.Call.Failed", "not a JSON object");
        return;
    }
    wsig_handler_t *h = NULL;
    json_t *v = NULL;
    for (int i = 0; i < st->n_handlers && !h; i++) {
        if ((v = json_object_get(msg, st->handlers[i].key)))
            h = &st->handlers[i];
    }
    if (!h) {
        const char *k = json_object_iter_key(json_object_iter(msg));
        char why[160];
        snprintf(why, sizeof why, "unknown message '%.64s'", k ? k : "");
        json_decref(msg);
        send_status(c, "error", "NetConnection.Call.Failed", why);
        return;
    }
    c->last_valid_ms = now;
    int rc;
    if (h->builtin)
        rc = h->builtin(c, msg, json_is_string(v) ? json_string_value(v) : NULL);
    else
        rc = h->on_message(c, (const char *)data, len, h->ud);
    json_decref(msg);
    if (rc < 0 && !c->closing) {
        char why[160];
        snprintf(why, sizeof why, "%.64s failed: %s", h->key, sl_strerror(rc));
        send_status(c, "error", "NetConnection.Call.Failed", why);
    }
}

static void conn_free(sl_wsig_conn_t *c)
{
    if (c->conn_admit) {
        sl_admit_cancel(c->conn_admit);
        c->conn_admit = NULL;
    }
    if (c->asess) {
        sl_free(c->asess->app);
        sl_free(c->asess->query);
        sl_free(c->asess);
    }
    sl_free(c->query);
    sl_free(c->token);
    sl_free(c->offer);
    sl_free(c);
}

static void wsig_maybe_free(wrtc_wsig_t *st)
{
    if (st->stopped && !st->n_conns && !st->n_dc_conns && !st->timer_open) {
        sl_map_cleanup(&st->per_addr);
        sl_free(st);
    }
}

static void on_ws_close(sl_ws_t *ws, void *ud)
{
    (void)ws;
    sl_wsig_conn_t *c = ud;
    wrtc_wsig_t *st = c->st;
    c->ws = NULL;
    c->closing = 1;
    if (c->conn_admit) {
        sl_admit_cancel(c->conn_admit);
        c->conn_admit = NULL;
    }
    c->admit_cb = NULL;
    for (int i = 0; i < st->n_handlers; i++)
        if (st->handlers[i].on_close)
            st->handlers[i].on_close(c, st->handlers[i].ud);
    /* A session whose data channel is open lives on without its socket
     * (the SDK's signalingSocketOnly mode); any other ends with it. */
    unlink_pc(c, !(c->pc && c->pc->dc_open));
    sl_list_remove(&c->link);
    st->n_conns--;
    addr_add(st, c->addr, -1);
    conn_free(c);
    wsig_maybe_free(st);
}

static const sl_ws_ops_t g_ws_ops = {.on_message = on_ws_message, .on_close = on_ws_close};

/*
 * "/live/" or "/live" or "/live/room1/" -> "live", "live/room1". 0, or
 * SL_EDECLINED when the path has no segment or an empty inner one.
 */
static int scope_of(const char *path, char *out, size_t cap)
{
    if (path[0] != '/')
        return SL_EDECLINED;
    size_t n = strlen(path + 1);
    while (n && path[n] == '/')
        n--;
    if (!n || n >= cap)
        return SL_EDECLINED;
    memcpy(out, path + 1, n);
    out[n] = '\0';
    if (strstr(out, "//") || out[0] == '/')
        return SL_EDECLINED;
    return 0;
}

static int on_request(sl_http_req_t *req, void *ud)
{
    wrtc_wsig_t *st = ud;
    const sl_http_svc_t *h = st->http;
    if (!st->w || st->stopped)
        return SL_EDECLINED;
    const char *up = h->req_header(req, "Upgrade");
    if (!up || strcasecmp(up, "websocket") != 0)
        return SL_EDECLINED; /* a plain GET keeps its current answer */
    char id[WSIG_NAME_MAX];
    if (h->req_query_get(req, "id", id, sizeof id) < 0)
        return SL_EDECLINED;
    char scope[WRTC_PATH_MAX + 1];
    const char *path = h->req_path(req);
    if (scope_of(path, scope, sizeof scope))
        return SL_EDECLINED;
    /* Only /{app}/ and /{app}/{room}/: other paths (the API's event stream...) are not ours. */
    const char *slash = strchr(scope, '/');
    if (slash && strchr(slash + 1, '/'))
        return SL_EDECLINED;
    if (!strcmp(scope, "api") || !strncmp(scope, "api/", 4))
        return SL_EDECLINED;
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(st->core->cfg);
    int port = 0;
    const char *remote = h->req_remote(req, &port);
    if (!remote)
        remote = "";
    if (st->n_conns >= (size_t)wc->ws_max_sockets)
        return h->respond(req, 503, "text/plain", "server busy\n", 12, NULL);
    if (addr_count(st, remote) >= (size_t)wc->ws_max_sockets_per_address)
        return h->respond(req, 429, "text/plain", "too many sockets from this address\n", 35, NULL);
    const char *q = h->req_query(req);
    if (!sl_query_is_safe(q))
        return h->respond(req, 400, "text/plain", "bad query string\n", 17, NULL);
    sl_wsig_conn_t *c = sl_calloc(1, sizeof(*c));
    if (!c)
        return SL_ENOMEM;
    c->st = st;
    snprintf(c->addr, sizeof c->addr, "%s", remote);
    c->port = port;
    snprintf(c->scope, sizeof c->scope, "%s", scope);
    snprintf(c->id, sizeof c->id, "%s", id);
    c->query = sl_strdup(q ? q : "");
    c->token = sl_malloc(WSIG_TOKEN_MAX);
    if (!c->query || !c->token) {
        conn_free(c);
        return SL_ENOMEM;
    }
    c->token[0] = '\0';
    if (h->req_query_get(req, "username", c->user, sizeof c->user) < 0)
        c->user[0] = '\0';
    if (h->req_query_get(req, "password", c->pass, sizeof c->pass) < 0)
        c->pass[0] = '\0';
    if (h->req_query_get(req, "token", c->token, WSIG_TOKEN_MAX) < 0)
        c->token[0] = '\0';
    const char *auth = h->req_header(req, "Authorization");
    if (!c->token[0] && auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *v = auth + 7;
        while (*v == ' ')
            v++;
        snprintf(c->token, WSIG_TOKEN_MAX, "%s", v);
    }
    /* The publish mode, as WHIP takes it: mode=live|record|append, or record=. */
    char m[16];
    c->mode = "live";
    if (h->req_query_get(req, "mode", m, sizeof m) >= 0) {
        c->mode = !strcasecmp(m, "record") ? "record" : !strcasecmp(m, "append") ? "append" : "live";
    } else if (h->req_query_get(req, "record", m, sizeof m) >= 0) {
        c->mode = !strcasecmp(m, "append")                                       ? "append"
                  : (!strcasecmp(m, "false") || !strcmp(m, "0") || !strcasecmp(m, "no") ||
                     !strcasecmp(m, "live"))                                      ? "live"
                                                                                  : "record";
    }
    sl_ws_t *ws = NULL;
    int rc = h->ws_accept(req, &g_ws_ops, c, &ws);
    if (rc) {
        conn_free(c);
        return 0; /* ws_accept answered (or the client is gone) */
    }
    c->ws = ws;
    c->opened_ms = c->last_valid_ms = c->window_ms = uv_now(st->core->loop);
    sl_list_push_back(&st->conns, &c->link);
    st->n_conns++;
    addr_add(st, c->addr, 1);
    const sl_app_config_t *app = sl_core_app(st->core, scope);
    if (!app || !sl_webrtc_app_cfg(app)->webrtc) {
        conn_close(c, "NetConnection.Connect.Failed", "no such application", 1008);
        return 0;
    }
    send_status(c, "status", "NetConnection.Connect.Success", NULL);
    return 0;
}

/* Idle sockets: no valid message for ws_idle_timeout while no session is up. */
static void on_timer(uv_timer_t *t)
{
    wrtc_wsig_t *st = t->data;
    if (!st->w)
        return;
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(st->core->cfg);
    uint64_t now = uv_now(st->core->loop);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &st->conns) {
        sl_wsig_conn_t *c = sl_container_of(it, sl_wsig_conn_t, link);
        if (c->closing) {
            conn_close_now(c);
            continue;
        }
        int up = c->pc && c->pc->dtls_up;
        /* A socket admitted (or being admitted) on its own, for messages such as shared
         * objects', is held like a session: a subscriber sends nothing after joining. The
         * HTTP server's pings still close it when its peer is gone. */
        int held = c->conn_admit_state == 1 || c->conn_admit_state == 2;
        if (!c->closing && !up && !held && !c->admit &&
            now - c->last_valid_ms > (uint64_t)wc->ws_idle_timeout_ms) {
            SL_LOGI(NULL, "webrtc ws %s: idle for %lld ms: closed", c->addr, (long long)wc->ws_idle_timeout_ms);
            unlink_pc(c, 1);
            conn_close(c, "NetConnection.Connect.Closed", "idle", 1008);
        }
    }
}

/* ---- the "webrtc-ws" service ---- */

static int svc_handler_add(void *svc, const sl_wsig_handler_spec_t *spec)
{
    wrtc_wsig_t *st = svc;
    if (!spec || !spec->key || !spec->key[0] || strlen(spec->key) >= WSIG_KEY_MAX || !spec->on_message)
        return SL_EINVAL;
    for (int i = 0; i < st->n_handlers; i++)
        if (!strcmp(st->handlers[i].key, spec->key))
            return SL_EBUSY;
    if (st->n_handlers >= WSIG_MAX_HANDLERS)
        return SL_ETOOBIG;
    wsig_handler_t *h = &st->handlers[st->n_handlers++];
    memset(h, 0, sizeof(*h));
    snprintf(h->key, sizeof h->key, "%s", spec->key);
    h->on_message = spec->on_message;
    h->on_close = spec->on_close;
    h->ud = spec->ud;
    return 0;
}

static void svc_handler_remove(void *svc, const char *key)
{
    wrtc_wsig_t *st = svc;
    for (int i = st->n_builtin; i < st->n_handlers; i++) {
        if (!strcmp(st->handlers[i].key, key)) {
            memmove(&st->handlers[i], &st->handlers[i + 1], (size_t)(st->n_handlers - i - 1) * sizeof(wsig_handler_t));
            st->n_handlers--;
            return;
        }
    }
}

/* A text message to the socket or, for a data channel conn, on the channel. */
static int conn_send_raw(sl_wsig_conn_t *c, const char *json, size_t len)
{
    if (c->closing)
        return SL_ECLOSED;
    if (c->dc_pc)
        return c->dc_pc->dc_open ? wrtc_pc_dc_send(c->dc_pc, (const uint8_t *)json, len, 1) : SL_ECLOSED;
    if (!c->ws)
        return SL_ECLOSED;
    return c->st->http->ws_send(c->ws, json, len, 1);
}

static int svc_send(sl_wsig_conn_t *c, const char *json, size_t len)
{
    return conn_send_raw(c, json, len);
}

static const char *svc_scope(const sl_wsig_conn_t *c)
{
    return c->scope;
}

static const char *svc_id(const sl_wsig_conn_t *c)
{
    return c->id;
}

static const char *svc_remote(const sl_wsig_conn_t *c)
{
    return c->addr;
}

static sl_session_t *svc_session(const sl_wsig_conn_t *c)
{
    if (c->dc_pc)
        return c->dc_pc->admitted ? &c->dc_pc->sess : NULL;
    return c->pc && c->pc->admitted ? &c->pc->sess : NULL;
}

static int svc_is_datachannel(const sl_wsig_conn_t *c)
{
    return c->dc_pc != NULL;
}

/* The connect admission's answer (svc_admit). */
static void conn_admit_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    sl_wsig_conn_t *c = ud;
    if (c->conn_admit == a) {
        c->conn_admit = NULL;
        sl_admit_unref(a);
    }
    c->conn_admit_state = result ? 3 : 2;
    SL_LOGI(c->asess ? &c->asess->log : NULL, "webrtc ws %s: connect admission %s%s%s", c->addr,
            result ? "refused" : "allowed", result && reason ? ": " : "", result && reason ? reason : "");
    if (result)
        send_status(c, "error", "NetConnection.Connect.Rejected", reason && reason[0] ? reason : "denied");
    if (c->in_conn_admit || !c->admit_cb)
        return;
    sl_wsig_admit_cb cb = c->admit_cb;
    c->admit_cb = NULL;
    cb(c, result ? SL_EDENIED : 0, c->admit_cb_ud);
}

static int svc_admit(sl_wsig_conn_t *c, sl_wsig_admit_cb cb, void *ud)
{
    if (c->dc_pc || svc_session(c))
        return 0; /* the session was admitted (a data channel only exists on one) */
    if (c->closing)
        return SL_ECLOSED;
    switch (c->conn_admit_state) {
    case 2:
        return 0;
    case 3:
        return SL_EDENIED;
    case 1:
        if (!c->admit_cb) {
            c->admit_cb = cb;
            c->admit_cb_ud = ud;
        }
        return SL_EPENDING;
    default:
        break;
    }
    /* The checks read a session: a detached one (not registered with the
     * core, so never listed) that carries the socket's peer, app and query. */
    if (!c->asess) {
        sl_session_t *s = sl_calloc(1, sizeof *s);
        if (!s)
            return SL_ENOMEM;
        snprintf(s->id, sizeof s->id, "W%08X", rand_u32());
        s->proto = "webrtc";
        snprintf(s->remote_addr, sizeof s->remote_addr, "%s", c->addr);
        s->remote_port = c->port;
        s->app = sl_strdup(c->scope);
        s->query = c->query && c->query[0] ? sl_strdup(c->query) : NULL;
        s->start_ms = sl_time_wall_ms();
        s->log.sid = s->id;
        s->log.proto = s->proto;
        s->log.app = s->app;
        c->asess = s;
        if (!s->app) {
            sl_free(s->query);
            sl_free(s);
            c->asess = NULL;
            return SL_ENOMEM;
        }
    }
    sl_admit_req_t ar = {
        .kind = SL_ADMIT_CONNECT,
        .app = c->scope,
        .transport = "webrtc",
        .query = c->query,
        .username = c->user[0] ? c->user : NULL,
        .password = c->pass[0] ? c->pass : NULL,
        .token = c->token && c->token[0] ? c->token : NULL,
    };
    sl_admit_t *a = NULL;
    c->conn_admit_state = 1;
    c->admit_cb = cb;
    c->admit_cb_ud = ud;
    c->in_conn_admit = 1;
    int rc = sl_admit(c->st->core, c->asess, &ar, conn_admit_done, c, &a);
    c->in_conn_admit = 0;
    if (rc == SL_EPENDING) {
        c->conn_admit = a;
        return SL_EPENDING;
    }
    c->admit_cb = NULL;
    if (rc) {
        c->conn_admit_state = 0;
        return rc;
    }
    return c->conn_admit_state == 2 ? 0 : SL_EDENIED;
}

static int svc_admit_kind(sl_wsig_conn_t *c, int kind, const char *stream, sl_admit_done_cb done,
                          void *ud, sl_admit_t **out)
{
    if (c->closing)
        return SL_ECLOSED;
    sl_session_t *s = c->dc_pc ? &c->dc_pc->sess : c->pc ? &c->pc->sess : c->asess;
    if (!s)
        return SL_ECLOSED; /* admit() first */
    char user[256], pass[256], token[WSIG_TOKEN_MAX];
    const char *u = c->user[0] ? c->user : NULL, *pw = c->pass[0] ? c->pass : NULL;
    const char *tk = c->token && c->token[0] ? c->token : NULL;
    const char *query = c->query;
    if (c->dc_pc) { /* the session's own query carries its credentials */
        query = s->query;
        u = query && sl_query_get(query, "username", SL_QUERY_FIRST, user, sizeof user) > 0 ? user : NULL;
        pw = query && sl_query_get(query, "password", SL_QUERY_FIRST, pass, sizeof pass) > 0 ? pass : NULL;
        tk = query && sl_query_get(query, "token", SL_QUERY_FIRST, token, sizeof token) > 0 ? token : NULL;
    }
    sl_admit_req_t ar = {
        .kind = (sl_admit_kind_t)kind,
        .app = s->app ? s->app : c->scope,
        .stream = stream,
        .transport = "webrtc",
        .query = query,
        .username = u,
        .password = pw,
        .token = tk,
    };
    return sl_admit(c->st->core, s, &ar, done, ud, out);
}

/* ---- data channel conns ---- */

static sl_wsig_conn_t *dc_conn_get(wrtc_wsig_t *st, wrtc_pc_t *pc)
{
    if (pc->dc_conn)
        return pc->dc_conn;
    sl_wsig_conn_t *c = sl_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->st = st;
    c->dc_pc = pc;
    c->mode = "live";
    snprintf(c->addr, sizeof c->addr, "%s", pc->sess.remote_addr);
    c->port = pc->sess.remote_port;
    snprintf(c->scope, sizeof c->scope, "%s", pc->sess.app ? pc->sess.app : "");
    snprintf(c->id, sizeof c->id, "%s", pc->sess.stream ? pc->sess.stream : "");
    c->window_ms = uv_now(st->core->loop);
    pc->dc_conn = c;
    st->n_dc_conns++;
    return c;
}

/* 1 when key occurs in p[0..len) (a cheap test before parsing a channel's message). */
static int has_text(const uint8_t *p, size_t len, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; kl && i + kl <= len; i++)
        if (p[i] == (uint8_t)key[0] && memcmp(p + i, key, kl) == 0)
            return 1;
    return 0;
}

int wrtc_ws_dc_message(wrtc_pc_t *pc, const uint8_t *p, size_t len, int is_text)
{
    wrtc_wsig_t *st = pc->w->wsig;
    if (!st || st->stopped || st->n_handlers == st->n_builtin || !is_text || len < 2 || p[0] != '{')
        return 0;
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(st->core->cfg);
    if (len > (size_t)wc->ws_max_message_bytes)
        return 0;
    /* A publisher's other messages (chat, metadata) are not parsed twice. */
    int maybe = 0;
    for (int i = st->n_builtin; i < st->n_handlers && !maybe; i++)
        maybe = has_text(p, len, st->handlers[i].key);
    if (!maybe)
        return 0;
    json_error_t jerr;
    json_t *msg = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(msg)) {
        json_decref(msg);
        return 0;
    }
    wsig_handler_t *h = NULL;
    for (int i = st->n_builtin; i < st->n_handlers && !h; i++) {
        if (json_object_get(msg, st->handlers[i].key))
            h = &st->handlers[i];
    }
    json_decref(msg);
    if (!h)
        return 0;
    sl_wsig_conn_t *c = dc_conn_get(st, pc);
    if (!c)
        return 1; /* out of memory: dropped */
    /* The socket's message rate budget, per channel: over it, messages are dropped. */
    uint64_t now = uv_now(st->core->loop);
    if (now - c->window_ms >= 1000) {
        c->window_ms = now;
        c->n_in_window = 0;
    }
    if (++c->n_in_window > (unsigned)wc->ws_messages_per_second)
        return 1;
    int rc = h->on_message(c, (const char *)p, len, h->ud);
    if (rc < 0 && pc->dc_conn == c) {
        char why[160];
        snprintf(why, sizeof why, "%.64s failed: %s", h->key, sl_strerror(rc));
        send_status(c, "error", "NetConnection.Call.Failed", why);
    }
    return 1;
}

void wrtc_ws_dc_gone(wrtc_pc_t *pc)
{
    sl_wsig_conn_t *c = pc->dc_conn;
    pc->dc_conn = NULL;
    if (!c)
        return;
    wrtc_wsig_t *st = c->st;
    c->closing = 1;
    for (int i = 0; i < st->n_handlers; i++)
        if (st->handlers[i].on_close)
            st->handlers[i].on_close(c, st->handlers[i].ud);
    st->n_dc_conns--;
    conn_free(c);
    wsig_maybe_free(st);
}

/* ---- server -> client calls (the session op invoke) ---- */

typedef struct wsig_sent {
    uv_timer_t timer;
    sl_session_invoke_cb cb;
    void *ud;
} wsig_sent_t;

static void sent_closed(uv_handle_t *h)
{
    sl_free(h->data);
}

static void sent_fire(uv_timer_t *t)
{
    wsig_sent_t *x = t->data;
    x->cb(x->ud, 0, NULL); /* sent; Red5's SDK never answers */
    uv_close((uv_handle_t *)&x->timer, sent_closed);
}

int wrtc_ws_invoke(sl_session_t *s, const char *method, const char *params_json,
                   uint64_t timeout_ms, sl_session_invoke_cb cb, void *ud)
{
    (void)timeout_ms; /* nothing to wait for */
    wrtc_pc_t *pc = (wrtc_pc_t *)s;
    if (pc->closing)
        return SL_ECLOSED;
    sl_wsig_conn_t *sock = pc->ws_owner;
    if (!pc->dc_open && (!sock || sock->closing || !sock->ws))
        return SL_EDECLINED; /* no carrier: a WHIP/WHEP session without a data channel */
    json_t *params = json_loads(params_json ? params_json : "[]", JSON_DECODE_ANY, NULL);
    if (!json_is_array(params)) {
        json_decref(params);
        return SL_EINVAL;
    }
    /* data: the one argument as is (the SDK spreads an object into its
     * event), {} for none, the array for several. */
    size_t n = json_array_size(params);
    json_t *data = n == 0 ? json_object()
                   : n == 1 && !json_is_null(json_array_get(params, 0)) ? json_incref(json_array_get(params, 0))
                   : n == 1 ? json_object() : json_incref(params);
    json_decref(params);
    /* The SDK's socket reads `send` only beside a top-level `data`. */
    json_t *msg = data ? json_pack("{s:{s:s,s:O}}", "send", "method", method, "data", data) : NULL;
    if (msg && !pc->dc_open)
        json_object_set(msg, "data", data);
    json_decref(data);
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    wsig_sent_t *x = text ? sl_calloc(1, sizeof *x) : NULL;
    if (!x) {
        free(text);
        return SL_ENOMEM;
    }
    int rc = pc->dc_open ? wrtc_pc_dc_send(pc, (const uint8_t *)text, strlen(text), 1)
                         : conn_send_raw(sock, text, strlen(text));
    free(text); /* jansson's allocator */
    if (rc) {
        sl_free(x);
        return rc == SL_ETOOBIG ? SL_EBUSY : rc;
    }
    x->cb = cb;
    x->ud = ud;
    uv_timer_init(pc->w->core->loop, &x->timer);
    x->timer.data = x;
    uv_timer_start(&x->timer, sent_fire, 0, 0);
    SL_LOGD(&pc->sess.log, "rpc: %s sent to the client on its %s", method,
            pc->dc_open ? "data channel" : "signalling socket");
    return 0;
}

static const sl_wsig_svc_t g_svc = {
    .handler_add = svc_handler_add,
    .handler_remove = svc_handler_remove,
    .send = svc_send,
    .scope = svc_scope,
    .id = svc_id,
    .remote = svc_remote,
    .session = svc_session,
    .admit = svc_admit,
    .is_datachannel = svc_is_datachannel,
    .admit_kind = svc_admit_kind,
};

/* ---- start / stop ---- */

int wrtc_ws_start(wrtc_t *w)
{
    if (!w->http || !sl_webrtc_cfg(w->core->cfg)->ws)
        return 0;
    wrtc_wsig_t *st = sl_calloc(1, sizeof(*st));
    if (!st)
        return SL_ENOMEM;
    st->w = w;
    st->core = w->core;
    st->http = w->http;
    st->http_ud = w->http_ud;
    sl_list_init(&st->conns);
    sl_map_init(&st->per_addr);
    for (size_t i = 0; i < sizeof g_builtin / sizeof g_builtin[0]; i++) {
        wsig_handler_t *h = &st->handlers[st->n_handlers++];
        snprintf(h->key, sizeof h->key, "%s", g_builtin[i].key);
        h->builtin = g_builtin[i].fn;
    }
    st->n_builtin = st->n_handlers;
    w->wsig = st;
    uv_timer_init(w->core->loop, &st->timer);
    st->timer.data = st;
    st->timer_open = 1;
    uv_timer_start(&st->timer, on_timer, WSIG_TIMER_MS, WSIG_TIMER_MS);
    const sl_http_route_spec_t route = {
        .method = "GET", .prefix = "/", .suffixes = NULL, .prio = SL_HTTP_PRIO_APP,
        .name = "webrtc-ws", .serves = "", .cb = on_request, .ud = st,
    };
    int rc = w->http->route_add(w->http_ud, &route, &st->route);
    if (rc)
        return rc;
    rc = sl_service_register(w->core, SL_WEBRTC_WS_SVC_NAME, SL_WEBRTC_WS_SVC_MAJOR, SL_WEBRTC_WS_SVC_MINOR,
                             &g_svc, st);
    if (rc)
        return rc;
    st->svc_registered = 1;
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    wrtc_wsig_t *st = h->data;
    st->timer_open = 0;
    wsig_maybe_free(st);
}

void wrtc_ws_stop(wrtc_t *w)
{
    wrtc_wsig_t *st = w->wsig;
    if (!st)
        return;
    w->wsig = NULL;
    if (st->svc_registered)
        sl_service_unregister(w->core, SL_WEBRTC_WS_SVC_NAME, &g_svc);
    if (st->route)
        w->http->route_remove(w->http_ud, st->route);
    st->route = NULL;
    sl_list_t *it, *nx;
    /* Data channel conns end here: their handlers must not outlive the table. */
    sl_list_foreach_safe(it, nx, &w->pcs) {
        wrtc_pc_t *pc = sl_container_of(it, wrtc_pc_t, link);
        if (pc->dc_conn) {
            sl_wsig_conn_t *dc = pc->dc_conn;
            pc->dc_conn = NULL;
            dc->closing = 1;
            for (int i = 0; i < st->n_handlers; i++)
                if (st->handlers[i].on_close)
                    st->handlers[i].on_close(dc, st->handlers[i].ud);
            st->n_dc_conns--;
            conn_free(dc);
        }
    }
    sl_list_foreach_safe(it, nx, &st->conns) {
        sl_wsig_conn_t *c = sl_container_of(it, sl_wsig_conn_t, link);
        unlink_pc(c, 1);
        conn_close(c, "NetConnection.Connect.Closed", "server shutting down", 1001);
        conn_close_now(c);
    }
    st->w = NULL;
    st->stopped = 1;
    uv_timer_stop(&st->timer);
    uv_close((uv_handle_t *)&st->timer, timer_closed);
}
