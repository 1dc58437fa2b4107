/*
 * RTMP commands: NetConnection (connect, createStream, ...) and NetStream
 * (publish, play, pause, ...) as Red5/FMS clients expect them, the media
 * and data messages of a publisher, and the player side of the hub (the
 * RTMP sink).
 *
 * Names: the scope path comes from connect's `app` ("live" or
 * "live/room1"); a publish/play name may add further rooms
 * ("room1/stream1") and a query string ("stream1?token=x"), which is kept
 * on the session for admission. The stream's hub name is the full path
 * "live/room1/stream1", the same whichever way the client split it.
 *
 * Timestamps: a player's timeline starts at 0 on its first media frame
 * and continues without a jump over a republish (rebased on the first
 * frame after PublishNotify); the value is fixed when the frame enters the
 * player's queue.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "app/admission.h"
#include "app/events.h"
#include "app/services.h"
#include "app/svc/vod.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/str.h"
#include "proto/rtmp/rtmp_conn.h"
#include "sluice/errors.h"
#include "sluice/version.h"
#include "proto/rtmp/rtmp_config.h"

#define MAX_STREAMS_PER_CONN 16
#define NAME_MAX_LEN 512
/* A query (on tcUrl, the app or the stream name) may carry a signed token
 * several kilobytes long. The cap is above the JWT verifier's own (8192), so
 * that an over-long token reaches it whole and is refused as "Token too
 * long." rather than cut or dropped here; a query over this cap is refused
 * with "Query string too long.". Each decoded query value fits in
 * QUERY_MAX_LEN + 1 bytes, since each part of the session's query is capped. */
#define QUERY_MAX_LEN 16384
#define QUERY_TOO_LONG "Query string too long."
#define CMD_MAX_BYTES (64u * 1024u)

/* Red5's identity in connect replies; clients print it, a few test it. */
#define FMS_VERSION "RED5/1,0,7,0"

static const sl_sink_ops_t rtmp_sink_ops;

/* ------------------------------------------------------------------ */
/* replies                                                             */

static int send_cmd(sl_rtmp_conn_t *c, uint32_t csid, uint32_t sid, sl_wbuf_t *w)
{
    int rc = sl__rtmp_send(c, csid, SL_RTMP_COMMAND_AMF0, sid, 0, w->data, w->len);
    sl_wbuf_cleanup(w);
    return rc;
}

int sl__rtmp_send_status(sl_rtmp_conn_t *c, uint32_t sid, const char *level, const char *code,
                         const char *desc, const char *details)
{
    sl_wbuf_t w;
    sl_wbuf_init(&w, CMD_MAX_BYTES);
    int rc = sl_amf0_put_string(&w, "onStatus");
    rc = rc ? rc : sl_amf0_put_number(&w, 0);
    rc = rc ? rc : sl_amf0_put_null(&w);
    rc = rc ? rc : sl_amf0_put_object_start(&w);
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "level", level);
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "code", code);
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "description", desc ? desc : "");
    if (details)
        rc = rc ? rc : sl_amf0_put_prop_string(&w, "details", details);
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "clientid", c->sess.id);
    rc = rc ? rc : sl_amf0_put_object_end(&w);
    if (rc) {
        sl_wbuf_cleanup(&w);
        return rc;
    }
    SL_LOGD(&c->sess.log, "onStatus %s: %s", code, desc ? desc : "");
    return send_cmd(c, sid ? SL_RTMP_CSID_DATA : SL_RTMP_CSID_COMMAND, sid, &w);
}

/* _result(txn, null, value) with a number, or undefined/null when !has_num. */
static int send_result_num(sl_rtmp_conn_t *c, double txn, int has_num, double v)
{
    sl_wbuf_t w;
    sl_wbuf_init(&w, CMD_MAX_BYTES);
    int rc = sl_amf0_put_string(&w, "_result");
    rc = rc ? rc : sl_amf0_put_number(&w, txn);
    rc = rc ? rc : sl_amf0_put_null(&w);
    if (has_num)
        rc = rc ? rc : sl_amf0_put_number(&w, v);
    else
        rc = rc ? rc : sl_wbuf_put_u8(&w, 0x06); /* undefined */
    if (rc) {
        sl_wbuf_cleanup(&w);
        return rc;
    }
    return send_cmd(c, SL_RTMP_CSID_COMMAND, 0, &w);
}

/* _error(txn, null, {level: error, code, description}) */
static int send_error(sl_rtmp_conn_t *c, double txn, const char *code, const char *desc)
{
    sl_wbuf_t w;
    sl_wbuf_init(&w, CMD_MAX_BYTES);
    int rc = sl_amf0_put_string(&w, "_error");
    rc = rc ? rc : sl_amf0_put_number(&w, txn);
    rc = rc ? rc : sl_amf0_put_null(&w);
    rc = rc ? rc : sl_amf0_put_object_start(&w);
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "level", "error");
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "code", code);
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "description", desc);
    rc = rc ? rc : sl_amf0_put_object_end(&w);
    if (rc) {
        sl_wbuf_cleanup(&w);
        return rc;
    }
    SL_LOGI(&c->sess.log, "%s: %s", code, desc);
    return send_cmd(c, SL_RTMP_CSID_COMMAND, 0, &w);
}

/* ------------------------------------------------------------------ */
/* names                                                               */

/*
 * Splits "name?query" in place: returns the query part (or NULL) and cuts
 * the name at '?'. Also strips leading/trailing slashes from the name.
 */
static char *split_query(char *name)
{
    char *q = strchr(name, '?');
    if (q)
        *q++ = '\0';
    size_t n = strlen(name);
    while (n && name[n - 1] == '/')
        name[--n] = '\0';
    if (name[0] == '/')
        memmove(name, name + 1, n);
    return q;
}

/* Builds "scope/name" into out; 0, SL_ETOOBIG when the query is over
 * QUERY_MAX_LEN, or SL_EINVAL when the name is unsafe or too long. */
static int stream_path(sl_rtmp_conn_t *c, const char *raw, char *out, size_t cap, char **query_out)
{
    if (query_out)
        *query_out = NULL;
    if (!raw)
        return SL_EINVAL;
    /* The name and its query have separate limits: a query may carry a
     * signed token several kilobytes long. */
    const char *qm = strchr(raw, '?');
    size_t name_len = qm ? (size_t)(qm - raw) : strlen(raw);
    if (qm && strnlen(qm + 1, QUERY_MAX_LEN + 1) > QUERY_MAX_LEN)
        return SL_ETOOBIG;
    if (name_len > NAME_MAX_LEN)
        return SL_EINVAL;
    if (qm && !sl_query_is_safe(qm + 1))
        return SL_EINVAL; /* %00 would cut a credential short */
    char name[NAME_MAX_LEN + 1];
    memcpy(name, raw, name_len);
    name[name_len] = '\0';
    split_query(name);
    if (query_out && qm && qm[1])
        *query_out = sl_strdup(qm + 1);
    if (!name[0])
        return SL_EINVAL;
    int n = snprintf(out, cap, "%s/%s", c->sess.app, name);
    if (n < 0 || (size_t)n >= cap || !sl_name_is_safe(out, NAME_MAX_LEN))
        return SL_EINVAL;
    return 0;
}

/*
 * Adds a stream name's query to the session's query (after the connect's),
 * so credentials given either way reach admission; lookups take the last
 * occurrence, so the stream's values win. The connect part is kept once
 * even across several publish/play calls.
 */
static int merge_query(sl_rtmp_conn_t *c, const char *query)
{
    if (!c->connect_query_len && c->sess.query && !c->query_merged)
        c->connect_query_len = strlen(c->sess.query) + 1;
    c->query_merged = 1;
    size_t base = c->connect_query_len ? c->connect_query_len - 1 : 0;
    size_t n = base + 1 + strlen(query) + 1;
    char *m = sl_malloc(n);
    if (!m)
        return SL_ENOMEM;
    if (base)
        snprintf(m, n, "%.*s&%s", (int)base, c->sess.query, query);
    else
        snprintf(m, n, "%s", query);
    int rc = sl_session_set_query(&c->sess, m);
    sl_free(m);
    return rc;
}

/* ------------------------------------------------------------------ */
/* connect                                                             */

static int reject_connect(sl_rtmp_conn_t *c, double txn, const char *code, const char *desc)
{
    int rc = send_error(c, txn, code, desc);
    sl__rtmp_close_after_flush(c, desc);
    return rc;
}

/*
 * Credentials as Red5 clients pass them: connect arguments (username,
 * password[, token], or one object with those keys) and the query string
 * on the app or stream name (?username=&password=&token=). The query wins
 * when both are present. Nothing is copied or cut: a connect argument is
 * pointed to where it lies in c->connect_args (bounded by the RTMP message
 * size), a query value is decoded into a buffer that always holds it (see
 * QUERY_MAX_LEN), so a verifier sees the whole credential and can say when
 * it is too long. The pointers stay valid until the next call (loop thread
 * only). Empty values come back as NULL.
 */
static void find_credentials(sl_rtmp_conn_t *c, const char *query, const char **user,
                             const char **pass, const char **token)
{
    static char qv[3][QUERY_MAX_LEN + 1]; /* loop thread only */
    const char *v[3] = {NULL, NULL, NULL};
    static const char *const keys[3] = {"username", "password", "token"};
    const sl_amf_t *args = c->connect_args;
    if (args && args->type == SL_AMF_STRICT_ARRAY && args->u.arr.n) {
        const sl_amf_t *a0 = args->u.arr.items[0];
        for (size_t i = 0; i < 3; i++) {
            if (a0->type == SL_AMF_OBJECT || a0->type == SL_AMF_ECMA_ARRAY)
                v[i] = sl_amf_get_str(a0, keys[i]);
            else if (args->u.arr.n > i)
                v[i] = sl_amf_str(args->u.arr.items[i]);
        }
    }
    for (size_t i = 0; i < 3; i++) {
        if (sl__rtmp_query_get(query, keys[i], qv[i], sizeof qv[i]) >= 0)
            v[i] = qv[i];
    }
    *user = v[0] && v[0][0] ? v[0] : NULL;
    *pass = v[1] && v[1][0] ? v[1] : NULL;
    *token = v[2] && v[2][0] ? v[2] : NULL;
}

const char *sl__rtmp_username(sl_rtmp_conn_t *c)
{
    const char *user, *pass, *token;
    find_credentials(c, c->sess.query, &user, &pass, &token);
    return user;
}

/* Starts an admission for kind; done is called now or later. */
static int admit(sl_rtmp_conn_t *c, sl_admit_kind_t kind, const char *stream, const char *mode,
                 sl_admit_done_cb done)
{
    const char *user, *pass, *token;
    find_credentials(c, c->sess.query, &user, &pass, &token);
    sl_admit_req_t req = {
        .kind = kind,
        .app = c->sess.app,
        .stream = stream,
        .transport = "rtmp",
        .query = c->sess.query,
        .username = user,
        .password = pass,
        .token = token,
        .publish_mode = mode,
    };
    sl_admit_t *a = NULL;
    int rc = sl_admit(c->core, &c->sess, &req, done, c, &a);
    if (rc == SL_EPENDING)
        c->admit = a;
    return rc == SL_EPENDING ? 0 : rc;
}

int sl__rtmp_admit_so(sl_rtmp_conn_t *c, const char *name, sl_admit_done_cb done, void *ud,
                      sl_admit_t **out)
{
    const char *user, *pass, *token;
    find_credentials(c, c->sess.query, &user, &pass, &token);
    sl_admit_req_t req = {
        .kind = SL_ADMIT_SO_CONNECT,
        .app = c->sess.app,
        .stream = name,
        .transport = "rtmp",
        .query = c->sess.query,
        .username = user,
        .password = pass,
        .token = token,
    };
    return sl_admit(c->core, &c->sess, &req, done, ud, out);
}

static int send_connect_result(sl_rtmp_conn_t *c)
{
    const sl_config_t *cfg = c->core->cfg;
    double txn = c->connect_txn;
    uint32_t window = (uint32_t)sl_rtmp_cfg(cfg)->window_ack_size;
    int rc = sl__rtmp_send_u32(c, SL_RTMP_WINDOW_ACK_SIZE, window);
    if (!rc) {
        uint8_t bw[5];
        sl_wr_be32(bw, window);
        bw[4] = 2; /* dynamic */
        rc = sl__rtmp_send(c, SL_RTMP_CSID_CONTROL, SL_RTMP_SET_PEER_BW, 0, 0, bw, 5);
    }
    rc = rc ? rc : sl__rtmp_send_u32(c, SL_RTMP_SET_CHUNK_SIZE, (uint32_t)sl_rtmp_cfg(cfg)->chunk_size);
    if (rc)
        return rc;
    c->out_chunk_size = (uint32_t)sl_rtmp_cfg(cfg)->chunk_size;

    sl_wbuf_t w;
    sl_wbuf_init(&w, CMD_MAX_BYTES);
    rc = sl_amf0_put_string(&w, "_result");
    rc = rc ? rc : sl_amf0_put_number(&w, txn);
    rc = rc ? rc : sl_amf0_put_object_start(&w);
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "fmsVer", FMS_VERSION);
    rc = rc ? rc : sl_amf0_put_prop_number(&w, "capabilities", 31);
    rc = rc ? rc : sl_amf0_put_prop_number(&w, "mode", 1);
    rc = rc ? rc : sl_amf0_put_object_end(&w);
    rc = rc ? rc : sl_amf0_put_object_start(&w);
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "level", "status");
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "code", "NetConnection.Connect.Success");
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "description", "Connection succeeded.");
    rc = rc ? rc : sl_amf0_put_prop_number(&w, "objectEncoding", c->object_encoding == 3 ? 3 : 0);
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "clientid", c->sess.id);
    /* Enhanced RTMP: echo the FourCC list the client offered; sluice passes
     * every codec through unchanged. */
    if (!rc && c->fourcc_list) {
        rc = sl_amf0_put_key(&w, "fourCcList");
        rc = rc ? rc : sl_amf0_encode(&w, c->fourcc_list);
    }
    rc = rc ? rc : sl_amf0_put_key(&w, "data");
    rc = rc ? rc : sl_amf0_put_ecma_start(&w, 1);
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "version", SL_VERSION_STRING);
    rc = rc ? rc : sl_amf0_put_object_end(&w);
    rc = rc ? rc : sl_amf0_put_object_end(&w);
    if (rc) {
        sl_wbuf_cleanup(&w);
        return rc;
    }
    return send_cmd(c, SL_RTMP_CSID_COMMAND, 0, &w);
}

static void connect_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    sl_rtmp_conn_t *c = ud;
    if (c->admit == a) {
        c->admit = NULL;
        sl_admit_unref(a);
    }
    if (result) {
        reject_connect(c, c->connect_txn, "NetConnection.Connect.Rejected",
                       reason ? reason : "Authentication failed.");
        return;
    }
    int rc = send_connect_result(c);
    if (rc) {
        sl__rtmp_close(c, sl_strerror(rc));
        return;
    }
    sl__rtmp_conn_admitted(c);
    c->state = SL_RTMP_CONN_CONNECTED;
    sl_session_admitted(&c->sess); /* out of the pending share (see sl_session_accept) */
    sl_events_emit_session(c->core, &c->sess, SL_EV_CONNECT, NULL);
    char rb[SL_REDACT_MAX]; /* the tcUrl may carry ?password= or ?token= */
    SL_LOGI(&c->sess.log, "connected from %s:%d (tcUrl %s)", c->sess.remote_addr,
            c->sess.remote_port, sl_redact(c->tc_url, rb, sizeof rb));
}

/*
 * 1 when v is not a string, or a string without a NUL byte inside (AMF
 * strings carry a length, and a C string read of "secret\0x" is
 * "secret") and, when `creds`, without any other control byte.
 */
static int amf_text_ok(const sl_amf_t *v, int creds)
{
    if (!v || v->type != SL_AMF_STRING)
        return 1;
    if (strlen(v->u.str.ptr) != v->u.str.len)
        return 0;
    for (uint32_t i = 0; creds && i < v->u.str.len; i++) {
        unsigned char ch = (unsigned char)v->u.str.ptr[i];
        if (ch < 0x20 || ch == 0x7f)
            return 0;
    }
    return 1;
}

/* The credential strings find_credentials() may read from connect arguments. */
static int connect_args_ok(sl_amf_t **args, size_t n_args)
{
    static const char *const keys[] = {"username", "password", "token"};
    for (size_t i = 0; i < n_args && i < 3; i++) {
        if (!amf_text_ok(args[i], 1))
            return 0;
        if (i == 0 && (args[0]->type == SL_AMF_OBJECT || args[0]->type == SL_AMF_ECMA_ARRAY))
            for (size_t k = 0; k < 3; k++)
                if (!amf_text_ok(sl_amf_get(args[0], keys[k]), 1))
                    return 0;
    }
    return 1;
}

/*
 * A user named in connect arguments (Red5's publisher and player SDKs log
 * in that way) is written into the session's query as username=, unless
 * the query names one already, so events, webhooks (Red5's "username"
 * field) and the API tell who the session is whichever way the client
 * logged in. Only the user name: passwords and tokens stay where they
 * were. A name that would not fit QUERY_MAX_LEN is left out. 0 or
 * SL_ENOMEM.
 */
static int note_connect_user(sl_rtmp_conn_t *c)
{
    const char *user, *pass, *token;
    find_credentials(c, c->sess.query, &user, &pass, &token);
    char probe[2];
    if (!user || sl_query_get(c->sess.query, "username", SL_QUERY_LAST, probe, sizeof probe) != -1)
        return 0; /* no user, or the query names one (-2: present, longer than probe) */
    size_t qlen = c->sess.query ? strlen(c->sess.query) : 0;
    size_t cap = qlen + sizeof "&username=" + 3 * strlen(user);
    if (cap > QUERY_MAX_LEN)
        return 0;
    char *m = sl_malloc(cap);
    if (!m)
        return SL_ENOMEM;
    size_t n = (size_t)snprintf(m, cap, "%s%susername=", qlen ? c->sess.query : "", qlen ? "&" : "");
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)user; *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p)) {
            m[n++] = (char)*p;
        } else {
            m[n++] = '%';
            m[n++] = hex[*p >> 4];
            m[n++] = hex[*p & 15];
        }
    }
    m[n] = '\0';
    int rc = sl_session_set_query(&c->sess, m);
    sl_free(m);
    return rc;
}

static int cmd_connect(sl_rtmp_conn_t *c, double txn, const sl_amf_t *obj, sl_amf_t **args,
                       size_t n_args)
{
    if (c->state != SL_RTMP_CONN_READY)
        return reject_connect(c, txn, "NetConnection.Connect.Rejected", "Already connected.");
    const char *app_raw = sl_amf_get_str(obj, "app");
    const char *tc_url = sl_amf_get_str(obj, "tcUrl");
    char app[NAME_MAX_LEN + 1];
    /* The app name and its query (rtmp://host/live?token=x/stream, which
     * clients send as app "live?token=x") have separate limits, as for
     * stream names: the query may carry a token of several kilobytes. The
     * query may also ride on tcUrl (rtmp://host/live?token=x). */
    const char *app_q = app_raw ? strchr(app_raw, '?') : NULL;
    size_t app_len = app_raw ? (app_q ? (size_t)(app_q - app_raw) : strlen(app_raw)) : 0;
    if (!app_raw || app_len > NAME_MAX_LEN)
        return reject_connect(c, txn, "NetConnection.Connect.Rejected", "Missing or invalid app.");
    if (!amf_text_ok(sl_amf_get(obj, "app"), 0) || !amf_text_ok(sl_amf_get(obj, "tcUrl"), 0) ||
        !connect_args_ok(args, n_args)) {
        /* A NUL inside would cut a credential (or the query) short. */
        SL_LOGI(&c->sess.log, "connect refused: control byte in app, tcUrl or credentials");
        return reject_connect(c, txn, "NetConnection.Connect.Rejected",
                              "Invalid connect: control characters are not allowed.");
    }
    const char *q = app_q ? app_q + 1 : NULL;
    if (!q && tc_url && strchr(tc_url, '?'))
        q = strchr(tc_url, '?') + 1;
    if (q && strnlen(q, QUERY_MAX_LEN + 1) > QUERY_MAX_LEN)
        return reject_connect(c, txn, "NetConnection.Connect.Rejected", QUERY_TOO_LONG);
    memcpy(app, app_raw, app_len);
    app[app_len] = '\0';
    split_query(app); /* trims slashes */
    if (q && !q[0])
        q = NULL;
    if (!app[0] || !sl_name_is_safe(app, NAME_MAX_LEN))
        return reject_connect(c, txn, "NetConnection.Connect.InvalidApp", "Invalid application name.");
    if (q && !sl_query_is_safe(q)) {
        /* A control byte (%00 above all) would cut a credential short. */
        SL_LOGI(&c->sess.log, "connect refused: control byte in the query");
        return reject_connect(c, txn, "NetConnection.Connect.Rejected",
                              "Invalid query string: control characters are not allowed.");
    }
    if (!sl_core_app(c->core, app)) {
        char desc[NAME_MAX_LEN + 64];
        snprintf(desc, sizeof desc, "Application '%.*s' does not exist.", (int)strcspn(app, "/"),
                 app);
        return reject_connect(c, txn, "NetConnection.Connect.InvalidApp", desc);
    }
    if (sl_session_set_app(&c->sess, app))
        return SL_ENOMEM;
    c->tc_url = tc_url ? sl_strdup(tc_url) : NULL;
    if (q && sl_session_set_query(&c->sess, q))
        return SL_ENOMEM;
    c->object_encoding = (int)sl_amf_get_num(obj, "objectEncoding", 0);
    c->connect_txn = txn;
    const sl_amf_t *fourcc = sl_amf_get(obj, "fourCcList");
    if (fourcc && !(c->fourcc_list = sl_amf_clone(fourcc)))
        return SL_ENOMEM;
    if (n_args) {
        /* Extra connect arguments (username, password, token, ...) are kept
         * for admission checks. */
        c->connect_args = sl_amf_new_strict_array();
        for (size_t i = 0; c->connect_args && i < n_args; i++)
            if (sl_amf_push(c->connect_args, sl_amf_clone(args[i])))
                break;
        if (c->connect_args && note_connect_user(c))
            return SL_ENOMEM;
    }
    if (sl_log_enabled(SL_LOG_DEBUG)) {
        char rb[SL_REDACT_MAX];
        SL_LOGD(&c->sess.log, "connect (tcUrl %s, flashVer %s)", sl_redact(tc_url, rb, sizeof rb),
                sl_amf_get_str(obj, "flashVer") ? sl_amf_get_str(obj, "flashVer") : "-");
    }
    c->state = SL_RTMP_CONN_CONNECTING;
    return admit(c, SL_ADMIT_CONNECT, NULL, NULL, connect_done);
}

/* ------------------------------------------------------------------ */
/* publish                                                             */

void sl__rtmp_stop_publish(sl_rtmp_conn_t *c, int notify)
{
    if (!c->pub)
        return;
    sl_stream_t *st = c->pub;
    c->pub = NULL;
    SL_LOGI(&c->sess.log, "publish stopped (%llu frames, %llu bytes)",
            (unsigned long long)st->stats.frames_in, (unsigned long long)st->stats.bytes_in);
    (void)notify;
    sl_stream_unpublish(st);
    sl_events_emit_session(c->core, &c->sess, SL_EV_UNPUBLISH, NULL);
    if (c->sess.role == SL_ROLE_PUBLISHER)
        sl_session_set_role(&c->sess, SL_ROLE_NONE);
}

static void publish_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    sl_rtmp_conn_t *c = ud;
    if (c->admit == a) {
        c->admit = NULL;
        sl_admit_unref(a);
    }
    uint32_t sid = c->pending_sid;
    char *path = c->pending_path;
    c->pending_path = NULL;
    const char *name = path + strlen(c->sess.app) + 1;
    if (result) {
        SL_LOGI(&c->sess.log, "publish of %s refused: %s", name, reason ? reason : "denied");
        sl__rtmp_send_status(c, sid, "error", "NetStream.Publish.BadName",
                             reason ? reason : "Publishing denied.", name);
        goto out;
    }
    sl_stream_t *st;
    int rc = sl_hub_publish(c->core->hub, path, &c->sess, &st);
    if (rc == SL_EBUSY) {
        char desc[NAME_MAX_LEN + 64];
        snprintf(desc, sizeof desc, "%s is already being published.", name);
        SL_LOGI(&c->sess.log, "publish refused: %s", desc);
        sl__rtmp_send_status(c, sid, "error", "NetStream.Publish.BadName", desc, name);
        goto out;
    }
    if (rc || sl_session_set_stream(&c->sess, name)) {
        if (!rc)
            sl_stream_unpublish(st);
        sl__rtmp_close(c, "out of memory");
        goto out;
    }
    c->pub = st;
    c->pub_sid = sid;
    c->pub_mode = c->pending_mode;
    c->sess.publish_mode = c->pub_mode; /* read by the recorder on the publish event */
    sl_session_set_role(&c->sess, SL_ROLE_PUBLISHER);
    char desc[NAME_MAX_LEN + 64];
    snprintf(desc, sizeof desc, "%s is now published.", name);
    sl__rtmp_send_uc(c, SL_RTMP_UC_STREAM_BEGIN, sid);
    sl__rtmp_send_status(c, sid, "status", "NetStream.Publish.Start", desc, name);
    SL_LOGI(&c->sess.log, "publish started (%s)",
            c->pub_mode == 0 ? "live" : c->pub_mode == 1 ? "record" : "append");
    sl_events_emit_session(c->core, &c->sess, SL_EV_PUBLISH, NULL);
out:
    sl_free(path);
}

/*
 * The checks publish and play share, each refusal answered with the
 * action's own status: a created stream id, no other request being
 * checked, a safe name (path filled in, its query merged into the
 * session's), the app allowing the action. Sets *refused when a status was
 * sent (the return value is then that send's); SL_ENOMEM otherwise fatal.
 */
static int begin_stream_request(sl_rtmp_conn_t *c, uint32_t sid, const char *raw, int publish,
                                char *path, size_t cap, int *refused)
{
    const char *code = publish ? "NetStream.Publish.BadName" : "NetStream.Play.Failed";
    const char *why = NULL;
    char *query = NULL;
    int rc0;
    *refused = 1;
    if (sid == 0 || sid > c->n_streams) {
        why = publish ? "Publish on an invalid stream." : "Play on an invalid stream.";
    } else if (c->admit || c->pending_path) {
        why = "Another request is being checked.";
    } else if ((rc0 = stream_path(c, raw, path, cap, &query))) {
        why = rc0 == SL_ETOOBIG ? QUERY_TOO_LONG : "Invalid stream name.";
        if (!publish)
            code = "NetStream.Play.StreamNotFound";
    } else {
        int rc = query ? merge_query(c, query) : 0;
        if (rc) {
            sl_free(query);
            return SL_ENOMEM;
        }
        const sl_app_config_t *app = sl_core_app(c->core, c->sess.app);
        if (!app || !(publish ? app->allow_publish : app->allow_play))
            why = publish ? "Publishing is not allowed in this application."
                          : "Playing is not allowed in this application.";
    }
    sl_free(query);
    if (why)
        return sl__rtmp_send_status(c, sid, "error", code, why, raw);
    *refused = 0;
    return 0;
}

static int cmd_publish(sl_rtmp_conn_t *c, uint32_t sid, sl_amf_t **v, size_t n)
{
    const char *raw = n > 3 ? sl_amf_str(v[3]) : NULL;
    const char *type = n > 4 ? sl_amf_str(v[4]) : NULL;
    char path[NAME_MAX_LEN * 2 + 2];
    int refused;
    int rc = begin_stream_request(c, sid, raw, 1, path, sizeof path, &refused);
    if (rc || refused)
        return rc;
    if (c->pub)
        return sl__rtmp_send_status(c, sid, "error", "NetStream.Publish.BadName",
                                    "This connection is already publishing.", raw);
    int mode = 0;
    if (type && strcmp(type, "record") == 0)
        mode = 1;
    else if (type && strcmp(type, "append") == 0)
        mode = 2;
    c->pending_path = sl_strdup(path);
    if (!c->pending_path)
        return SL_ENOMEM;
    c->pending_sid = sid;
    c->pending_mode = mode;
    static const char *const modes[] = {"live", "record", "append"};
    return admit(c, SL_ADMIT_PUBLISH, path + strlen(c->sess.app) + 1, modes[mode], publish_done);
}

int sl__rtmp_on_media(sl_rtmp_conn_t *c, uint8_t type, uint32_t ts, sl_buf_t *body)
{
    if (!c->pub || body->len == 0) {
        sl_buf_unref(body);
        return 0;
    }
    sl_frame_t *f;
    int rc = sl_frame_new(type, ts, body, &f);
    if (rc == SL_EPROTO) {
        SL_LOGD(&c->sess.log, "dropping malformed %s message", type == SL_RTMP_AUDIO ? "audio" : "video");
        return 0;
    }
    if (rc)
        return rc;
    sl_stream_push(c->pub, f);
    sl_frame_unref(f);
    return 0;
}

/* Makes a data frame "name, args..." from decoded values and pushes it. */
static int push_data(sl_rtmp_conn_t *c, uint32_t ts, sl_amf_t **v, size_t n, uint8_t flags)
{
    sl_wbuf_t w;
    sl_wbuf_init(&w, sl_rtmp_cfg(c->core->cfg)->max_message_size);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = sl_amf0_encode(&w, v[i]);
    sl_buf_t *body = rc ? NULL : sl_wbuf_to_buf(&w);
    sl_wbuf_cleanup(&w);
    if (!body)
        return rc ? rc : SL_ENOMEM;
    sl_frame_t *f;
    rc = sl_frame_new(SL_FLV_DATA, ts, body, &f);
    if (rc)
        return rc;
    f->flags |= flags;
    sl_stream_push(c->pub, f);
    sl_frame_unref(f);
    return 0;
}

int sl__rtmp_on_data(sl_rtmp_conn_t *c, sl_rtmp_msg_t *m)
{
    if (!c->pub)
        return 0;
    const uint8_t *p = m->body->data;
    size_t n = m->body->len;
    if (m->type == SL_RTMP_DATA_AMF3 && n && p[0] == 0) {
        p++;
        n--;
    }
    sl_amf_t **v = NULL;
    size_t count = 0;
    int rc = sl_amf0_decode_all(p, n, (int)sl_rtmp_cfg(c->core->cfg)->amf_max_depth, &v, &count);
    if (rc) {
        SL_LOGD(&c->sess.log, "dropping malformed data message: %s", sl_strerror(rc));
        return 0;
    }
    const char *name = count ? sl_amf_str(v[0]) : NULL;
    const sl_amf_t *meta = NULL;
    if (name && strcmp(name, "@setDataFrame") == 0 && count >= 3 && sl_amf_str(v[1]) &&
        strcmp(sl_amf_str(v[1]), "onMetaData") == 0)
        meta = v[2];
    else if (name && strcmp(name, "onMetaData") == 0 && count >= 2)
        meta = v[1];
    if (meta) {
        /* What the encoder declares: shown in the API until measured values exist. */
        c->pub->width = (uint32_t)sl_amf_get_num(meta, "width", 0);
        c->pub->height = (uint32_t)sl_amf_get_num(meta, "height", 0);
        c->pub->fps = sl_amf_get_num(meta, "framerate", sl_amf_get_num(meta, "fps", 0));
        c->pub->meta_video_kbps = sl_amf_get_num(meta, "videodatarate", 0);
        c->pub->meta_audio_kbps = sl_amf_get_num(meta, "audiodatarate", 0);
    }
    if (name && strcmp(name, "@setDataFrame") == 0 && count >= 3) {
        /* Players get "onMetaData", {...} without the @setDataFrame wrapper. */
        const char *inner = sl_amf_str(v[1]);
        rc = push_data(c, m->ts, v + 1, count - 1,
                       inner && strcmp(inner, "onMetaData") == 0 ? SL_FRAME_META : 0);
    } else if (name && strcmp(name, "@clearDataFrame") == 0) {
        rc = 0;
    } else if (name && count) {
        rc = push_data(c, m->ts, v, count, strcmp(name, "onMetaData") == 0 ? SL_FRAME_META : 0);
    }
    sl_amf_free_list(v, count);
    return rc == SL_ETOOBIG || rc == SL_EPROTO ? 0 : rc;
}

/* ------------------------------------------------------------------ */
/* play: the RTMP sink                                                 */

/* The rare outcomes of queueing a frame for a player, kept out of the
 * per-frame path (its registers and stack frame). */
static __attribute__((noinline, cold)) void sink_queue_trouble(sl_rtmp_conn_t *c, int rc)
{
    if (rc == SL_ESLOW) {
        char why[128];
        sl__rtmp_close(c, sl_subq_slow_reason(&c->q, why, sizeof why));
        return;
    }
    if (rc == SL_ENOMEM || rc == SL_ETOOBIG) {
        /* The frame could not be queued (the ring could not grow): a gap
         * would smear the picture, so resync on the next keyframe. */
        SL_LOGE(&c->sess.log, "subscriber queue: %s; skipping to the next keyframe", sl_strerror(rc));
        sl_subq_flush(&c->q);
    }
    if (rc == SL_SUBQ_FELL_BEHIND)
        SL_LOGI(&c->sess.log, "subscriber falling behind: dropping to the next keyframe");
}

static void sink_on_frame(sl_sink_t *sink, sl_frame_t *f)
{
    sl_rtmp_conn_t *c = sink->ctx;
    if (c->state == SL_RTMP_CONN_CLOSING || c->paused)
        return;
    if (__builtin_expect(c->play_remote, 0)) {
        sl__rtmp_ws_post_frame(c, f); /* a play on a worker: an unpause replay, a recording */
        return;
    }
    int is_cfg = (f->flags & (SL_FRAME_CONFIG | SL_FRAME_META)) != 0;
    if ((f->kind == SL_FLV_AUDIO && !c->recv_audio) || (f->kind == SL_FLV_VIDEO && !c->recv_video))
        return;
    uint32_t ts = sl__rtmp_out_ts(f, &c->ts_rebase, &c->ts_base, &c->sent_media, &c->last_out_ts);
    int rc = sl_subq_offer(&c->q, f, ts, uv_now(c->core->loop), &c->sess.frames_dropped);
    if (rc) {
        sink_queue_trouble(c, rc);
        if (rc == SL_ESLOW)
            return;
    }
    /* Audio of a stream with video may ride with the next video frame. */
    int hold = f->kind == SL_FLV_AUDIO && !is_cfg && c->q.video_seen && c->recv_video;
    sl__rtmp_schedule_media(c, hold);
}

static void sink_on_publish(sl_sink_t *sink)
{
    sl_rtmp_conn_t *c = sink->ctx;
    c->ts_rebase = 1;
    sl__rtmp_ws_post_op(c, SL_RTMP_WS_REBASE, 0);
    if (c->joining)
        return; /* joining a live stream: Play.Start said it all */
    sl__rtmp_send_uc(c, SL_RTMP_UC_STREAM_BEGIN, c->play_sid);
    sl__rtmp_send_status(c, c->play_sid, "status", "NetStream.Play.PublishNotify",
                         "The stream is now published.", c->sess.stream);
}

static void sink_on_unpublish(sl_sink_t *sink)
{
    sl_rtmp_conn_t *c = sink->ctx;
    sl__rtmp_send_status(c, c->play_sid, "status", "NetStream.Play.UnpublishNotify",
                         "The stream is now unpublished.", c->sess.stream);
}

static const sl_sink_ops_t rtmp_sink_ops = {
    .on_frame = sink_on_frame,
    .on_publish = sink_on_publish,
    .on_unpublish = sink_on_unpublish,
};

void sl__rtmp_stop_play(sl_rtmp_conn_t *c)
{
    if (!c->play_sid)
        return;
    if (c->vod) {
        c->vod_svc->close(c->vod);
        c->vod = NULL;
    }
    sl__rtmp_ws_unplay(c); /* a play relayed to a worker: its queue is dropped there */
    sl_stream_remove_sink(&c->sink);
    c->play_sid = 0;
    if (c->q_ready) {
        sl_subq_cleanup(&c->q);
        c->q_ready = 0;
    }
    SL_LOGI(&c->sess.log, "play stopped");
    sl_events_emit_session(c->core, &c->sess, SL_EV_PLAY_STOP, NULL);
    if (c->sess.role == SL_ROLE_SUBSCRIBER)
        sl_session_set_role(&c->sess, SL_ROLE_NONE);
}

/* Strips the VOD prefixes and extensions players add to live names. */
static const char *live_name(const char *raw)
{
    if (raw && (strncmp(raw, "flv:", 4) == 0 || strncmp(raw, "mp4:", 4) == 0))
        return raw + 4;
    return raw;
}

/* True when a play name asks for a file: "flv:x", "mp4:x", "x.flv", "x.mp4"
 * (2 for "mp4:", whose name without extension is x.mp4). */
static int names_file(const char *raw)
{
    if (!raw)
        return 0;
    if (strncmp(raw, "mp4:", 4) == 0)
        return 2;
    if (strncmp(raw, "flv:", 4) == 0)
        return 1;
    size_t n = strcspn(raw, "?");
    return n > 4 && (strncmp(raw + n - 4, ".flv", 4) == 0 || strncmp(raw + n - 4, ".mp4", 4) == 0);
}

/* The recording a VOD name stands for: "mp4:x" is x.mp4 (buf holds it). */
static const char *vod_name(int mp4_prefix, const char *name, char *buf, size_t cap)
{
    size_t n = strlen(name);
    if (!mp4_prefix || (n > 4 && (strcmp(name + n - 4, ".mp4") == 0 ||
                                  strcmp(name + n - 4, ".flv") == 0)))
        return name;
    return snprintf(buf, cap, "%s.mp4", name) < (int)cap ? buf : name;
}

/* The recording played has ended: what Flash-era players wait for. */
static void on_vod_end(void *ctx)
{
    sl_rtmp_conn_t *c = ctx;
    if (c->state == SL_RTMP_CONN_CLOSING || !c->play_sid)
        return;
    sl__rtmp_send_status(c, c->play_sid, "status", "NetStream.Play.Stop",
                         "Stopped playing.", c->sess.stream);
    sl_wbuf_t w;
    sl_wbuf_init(&w, 512);
    int rc = sl_amf0_put_string(&w, "onPlayStatus");
    rc = rc ? rc : sl_amf0_put_object_start(&w);
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "level", "status");
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "code", "NetStream.Play.Complete");
    rc = rc ? rc : sl_amf0_put_prop_number(&w, "duration", c->last_out_ts / 1000.0);
    rc = rc ? rc : sl_amf0_put_prop_number(&w, "bytes", 0);
    rc = rc ? rc : sl_amf0_put_object_end(&w);
    rc = rc ? rc : sl__rtmp_send(c, SL_RTMP_CSID_DATA, SL_RTMP_DATA_AMF0, c->play_sid,
                                 c->last_out_ts, w.data, w.len);
    sl_wbuf_cleanup(&w);
    sl__rtmp_send_uc(c, SL_RTMP_UC_STREAM_EOF, c->play_sid);
    sl__rtmp_schedule_flush(c);
    SL_LOGI(&c->sess.log, "recording played to the end (%u ms)", c->last_out_ts);
}

static int start_play(sl_rtmp_conn_t *c, uint32_t sid, const char *path)
{
    sl__rtmp_stop_play(c);
    const sl_config_t *cfg = c->core->cfg;
    int rc = sl_subq_init(&c->q, (size_t)cfg->media_queue_max_bytes, (uint32_t)cfg->media_queue_max_ms,
                          (uint64_t)cfg->media_slow_disconnect_ms);
    if (rc)
        return rc;
    c->q_ready = 1;
    c->play_sid = sid;
    c->paused = 0;
    c->ts_rebase = 1;
    c->sent_media = 0;
    c->last_out_ts = 0;
    const char *name = path + strlen(c->sess.app) + 1;
    if (sl_session_set_stream(&c->sess, name))
        return SL_ENOMEM;
    sl_session_set_role(&c->sess, SL_ROLE_SUBSCRIBER);
    c->sink.ops = &rtmp_sink_ops;
    c->sink.ctx = c;
    /* A file name (name.flv, flv:name) plays the recording unless such a live
     * stream is being published; without a recording it waits as a live play. */
    void *vod_ud = NULL;
    const sl_svc_vod_t *vsvc = c->pending_vod ? sl_service_get(c->core, SL_SVC_VOD,
                                                                SL_SVC_VOD_MAJOR, 0, &vod_ud)
                                              : NULL;
    sl_stream_t *live = vsvc ? sl_hub_find(c->core->hub, path) : NULL;
    if (vsvc && !(live && live->publisher)) {
        char file[NAME_MAX_LEN + 8];
        rc = vsvc->open(vod_ud, c->sess.app, vod_name(c->pending_vod == 2, name, file,
                        sizeof file), c->pending_start_ms, &c->sink, on_vod_end, c, &c->vod);
        if (rc == SL_ENOMEM)
            return rc;
        if (rc == 0) {
            c->vod_svc = vsvc;
            /* From the start: the file's own timeline. From an offset: 0 at the first
             * frame, as librtmp (rtmpdump --start) expects. A later seek command keeps
             * the file's timeline (cmd_seek). */
            c->ts_rebase = c->pending_start_ms > 0;
            c->ts_base = 0;
        }
    }
    char desc[NAME_MAX_LEN + 64];
    rc = sl__rtmp_send_uc(c, SL_RTMP_UC_STREAM_IS_RECORDED, sid);
    rc = rc ? rc : sl__rtmp_send_uc(c, SL_RTMP_UC_STREAM_BEGIN, sid);
    snprintf(desc, sizeof desc, "Playing and resetting %s.", name);
    rc = rc ? rc : sl__rtmp_send_status(c, sid, "status", "NetStream.Play.Reset", desc, name);
    snprintf(desc, sizeof desc, "Started playing %s.", name);
    rc = rc ? rc : sl__rtmp_send_status(c, sid, "status", "NetStream.Play.Start", desc, name);
    if (!rc) {
        /* |RtmpSampleAccess lets Flash players read the media (as FMS/Red5 send it). */
        sl_wbuf_t w;
        sl_wbuf_init(&w, 256);
        rc = sl_amf0_put_string(&w, "|RtmpSampleAccess");
        rc = rc ? rc : sl_amf0_put_bool(&w, 1);
        rc = rc ? rc : sl_amf0_put_bool(&w, 1);
        rc = rc ? rc : sl__rtmp_send(c, SL_RTMP_CSID_DATA, SL_RTMP_DATA_AMF0, sid, 0, w.data, w.len);
        sl_wbuf_cleanup(&w);
    }
    if (rc)
        return rc;
    if (c->vod) {
        SL_LOGI(&c->sess.log, "play started (recording, from %u ms)", c->pending_start_ms);
        sl_events_emit_session(c->core, &c->sess, SL_EV_PLAY, NULL);
        sl__rtmp_conn_offload(c); /* server.workers: its writes may go to a worker loop */
        return 0;
    }
    c->joining = 1;
    rc = sl_hub_add_sink(c->core->hub, path, &c->sink);
    c->joining = 0;
    if (rc)
        return rc;
    SL_LOGI(&c->sess.log, "play started%s", c->sink.stream && c->sink.stream->publisher ? "" :
                                                 " (waiting for the publisher)");
    sl_events_emit_session(c->core, &c->sess, SL_EV_PLAY, NULL);
    sl__rtmp_conn_offload(c); /* server.workers: its writes may go to a worker loop */
    return 0;
}

static void play_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    sl_rtmp_conn_t *c = ud;
    if (c->admit == a) {
        c->admit = NULL;
        sl_admit_unref(a);
    }
    uint32_t sid = c->pending_sid;
    char *path = c->pending_path;
    c->pending_path = NULL;
    if (result) {
        const char *name = path + strlen(c->sess.app) + 1;
        SL_LOGI(&c->sess.log, "play of %s refused: %s", name, reason ? reason : "denied");
        sl__rtmp_send_status(c, sid, "error", "NetStream.Play.Failed",
                             reason ? reason : "Playing denied.", name);
    } else {
        int rc = start_play(c, sid, path);
        if (rc)
            sl__rtmp_close(c, sl_strerror(rc));
    }
    sl_free(path);
}

static int cmd_play(sl_rtmp_conn_t *c, uint32_t sid, const char *raw, double start_ms)
{
    char path[NAME_MAX_LEN * 2 + 2];
    int vod = names_file(raw);
    raw = live_name(raw);
    int refused;
    int rc = begin_stream_request(c, sid, raw, 0, path, sizeof path, &refused);
    if (rc || refused)
        return rc;
    c->pending_path = sl_strdup(path);
    if (!c->pending_path)
        return SL_ENOMEM;
    c->pending_sid = sid;
    /* start (ms, as librtmp, ffmpeg and Flash send it): -2000 live or recorded, -1000
     * live only, >= 0 recorded from there. As in Red5, a name without extension plays
     * its recording when no such live stream is published, unless live only is asked. */
    c->pending_vod = vod ? vod : !(start_ms > -1500 && start_ms < 0);
    c->pending_start_ms = start_ms > 0 && start_ms < 4e9 ? (uint32_t)start_ms : 0;
    return admit(c, SL_ADMIT_PLAY, path + strlen(c->sess.app) + 1, NULL, play_done);
}

/* ------------------------------------------------------------------ */
/* dispatch                                                            */

static int cmd_pause(sl_rtmp_conn_t *c, uint32_t sid, int pause)
{
    if (!c->play_sid || sid != c->play_sid)
        return 0;
    if (c->vod) {
        /* A recording: stop its clock; the queue is flushed, playback resumes where it was. */
        if (pause == c->paused)
            return 0;
        c->paused = pause;
        if (!sl__rtmp_ws_post_op(c, pause ? SL_RTMP_WS_PAUSE : SL_RTMP_WS_UNPAUSE, 0) && pause)
            sl_subq_flush(&c->q);
        c->vod_svc->pause(c->vod, pause);
        return sl__rtmp_send_status(c, sid, "status",
                                    pause ? "NetStream.Pause.Notify" : "NetStream.Unpause.Notify",
                                    pause ? "Paused." : "Unpaused.", c->sess.stream);
    }
    if (pause && !c->paused) {
        c->paused = 1;
        if (!sl__rtmp_ws_post_op(c, SL_RTMP_WS_PAUSE, 1))
            sl_subq_flush(&c->q);
        return sl__rtmp_send_status(c, sid, "status", "NetStream.Pause.Notify", "Paused live stream.",
                                    c->sess.stream);
    }
    if (!pause && c->paused) {
        c->paused = 0;
        c->ts_rebase = 1;
        sl__rtmp_ws_post_op(c, SL_RTMP_WS_UNPAUSE, 1);
        int rc = sl__rtmp_send_status(c, sid, "status", "NetStream.Unpause.Notify",
                                      "Unpaused live stream.", c->sess.stream);
        if (c->sink.stream)
            sl_stream_replay(c->sink.stream, &c->sink);
        return rc;
    }
    return 0;
}

/* seek(ms): recordings only (live streams ignore it, as before). */
static int cmd_seek(sl_rtmp_conn_t *c, uint32_t sid, double ms)
{
    if (!c->vod || sid != c->play_sid)
        return 0;
    uint32_t to = ms > 0 && ms < 4e9 ? (uint32_t)ms : 0;
    if (!sl__rtmp_ws_post_op(c, SL_RTMP_WS_SEEK, 0))
        sl_subq_flush(&c->q);
    c->ts_rebase = 0;
    c->ts_base = 0;
    c->vod_svc->seek(c->vod, to);
    c->vod_svc->pause(c->vod, c->paused);
    char desc[64];
    snprintf(desc, sizeof desc, "Seeking %u (stream ID: %u).", to, sid);
    int rc = sl__rtmp_send_status(c, sid, "status", "NetStream.Seek.Notify", desc, c->sess.stream);
    return rc ? rc : sl__rtmp_send_status(c, sid, "status", "NetStream.Play.Start",
                                          "Started playing.", c->sess.stream);
}

static void stop_stream_id(sl_rtmp_conn_t *c, uint32_t sid)
{
    if (c->pub && sid == c->pub_sid) {
        sl__rtmp_send_status(c, sid, "status", "NetStream.Unpublish.Success",
                             "Stream unpublished.", c->sess.stream);
        sl__rtmp_stop_publish(c, 1);
    }
    if (c->play_sid && sid == c->play_sid)
        sl__rtmp_stop_play(c);
}

int sl__rtmp_on_command(sl_rtmp_conn_t *c, sl_rtmp_msg_t *m)
{
    const uint8_t *p = m->body->data;
    size_t n = m->body->len;
    if (m->type == SL_RTMP_COMMAND_AMF3 && n && p[0] == 0) {
        p++;
        n--;
    }
    sl_amf_t **v = NULL;
    size_t count = 0;
    int rc = sl_amf0_decode_all(p, n, (int)sl_rtmp_cfg(c->core->cfg)->amf_max_depth, &v, &count);
    if (rc) {
        SL_LOGI(&c->sess.log, "malformed command: %s", sl_strerror(rc));
        return rc == SL_ENOMEM ? rc : SL_EPROTO;
    }
    const char *name = count ? sl_amf_str(v[0]) : NULL;
    double txn = count > 1 ? sl_amf_num(v[1], 0) : 0;
    const sl_amf_t *obj = count > 2 ? v[2] : NULL;
    uint32_t sid = m->stream_id;
    rc = 0;
    if (!name) {
        rc = SL_EPROTO;
        goto done;
    }
    SL_LOGD(&c->sess.log, "command %s (txn %g, stream %u)", name, txn, sid);
    if (strcmp(name, "connect") == 0) {
        rc = cmd_connect(c, txn, obj, count > 3 ? v + 3 : NULL, count > 3 ? count - 3 : 0);
        goto done;
    }
    if (c->state == SL_RTMP_CONN_CONNECTING) {
        SL_LOGD(&c->sess.log, "ignoring %s while the connect is being checked", name);
        goto done;
    }
    if (c->state != SL_RTMP_CONN_CONNECTED) {
        /* Anything before connect: refuse politely and close. */
        rc = reject_connect(c, txn, "NetConnection.Connect.Rejected", "Connect first.");
        goto done;
    }
    if (strcmp(name, "createStream") == 0) {
        if (c->n_streams >= MAX_STREAMS_PER_CONN)
            rc = send_error(c, txn, "NetConnection.Call.Failed", "Too many streams.");
        else
            rc = send_result_num(c, txn, 1, ++c->n_streams);
    } else if (strcmp(name, "publish") == 0) {
        rc = cmd_publish(c, sid, v, count);
    } else if (strcmp(name, "play") == 0) {
        rc = cmd_play(c, sid, count > 3 ? sl_amf_str(v[3]) : NULL,
                      count > 4 ? sl_amf_num(v[4], -2000) : -2000);
    } else if (strcmp(name, "play2") == 0) {
        const sl_amf_t *params = count > 3 ? v[3] : NULL;
        rc = cmd_play(c, sid, sl_amf_get_str(params, "streamName"),
                      sl_amf_get_num(params, "start", -2000));
    } else if (strcmp(name, "deleteStream") == 0) {
        stop_stream_id(c, (uint32_t)(count > 3 ? sl_amf_num(v[3], 0) : 0));
    } else if (strcmp(name, "closeStream") == 0) {
        stop_stream_id(c, sid);
    } else if (strcmp(name, "FCUnpublish") == 0) {
        if (c->pub)
            stop_stream_id(c, c->pub_sid);
        if (txn > 0)
            rc = send_result_num(c, txn, 0, 0);
    } else if (strcmp(name, "seek") == 0) {
        rc = cmd_seek(c, sid, count > 3 ? sl_amf_num(v[3], 0) : 0);
    } else if (strcmp(name, "pause") == 0 || strcmp(name, "pauseRaw") == 0) {
        rc = cmd_pause(c, sid, count > 3 ? sl_amf_bool(v[3], 0) : 0);
    } else if (strcmp(name, "receiveAudio") == 0 || strcmp(name, "receiveVideo") == 0) {
        int on = count > 3 ? sl_amf_bool(v[3], 1) : 1;
        sl__rtmp_ws_post_op(c, name[7] == 'A' ? SL_RTMP_WS_RECV_AUDIO : SL_RTMP_WS_RECV_VIDEO, on);
        if (name[7] == 'A') {
            c->recv_audio = on;
        } else {
            if (on && !c->recv_video && c->q_ready)
                sl_subq_flush(&c->q); /* resume video on a keyframe */
            c->recv_video = on;
        }
    } else if (strcmp(name, "getStreamLength") == 0) {
        /* A recording's duration in seconds (from the catalog); 0 for a live stream. */
        void *vod_ud = NULL;
        const sl_svc_vod_t *vsvc = sl_service_get(c->core, SL_SVC_VOD, SL_SVC_VOD_MAJOR, 0,
                                                  &vod_ud);
        const char *arg = count > 3 ? sl_amf_str(v[3]) : NULL;
        uint64_t ms = 0;
        if (arg && vsvc && c->sess.app && strlen(arg) <= NAME_MAX_LEN) {
            char bare[NAME_MAX_LEN + 1], file[NAME_MAX_LEN + 8];
            snprintf(bare, sizeof bare, "%.*s", (int)strcspn(arg, "?"), arg); /* no query */
            if (vsvc->length(vod_ud, c->sess.app,
                             vod_name(strncmp(bare, "mp4:", 4) == 0, live_name(bare), file,
                                      sizeof file), &ms))
                ms = 0;
        }
        rc = send_result_num(c, txn, 1, (double)ms / 1000.0);
    } else if (strcmp(name, "releaseStream") == 0 || strcmp(name, "FCPublish") == 0 ||
               strcmp(name, "FCSubscribe") == 0 || strcmp(name, "_checkbw") == 0) {
        if (txn > 0)
            rc = send_result_num(c, txn, 0, 0);
    } else if (strcmp(name, "_result") == 0 || strcmp(name, "_error") == 0) {
        /* answers to our calls: an RPC invoke's (rtmp_rpc.c), or nothing to do */
        sl__rtmp_rpc_on_answer(c, name[1] == 'e', txn, v, count);
    } else if (strcmp(name, "onBWDone") == 0 || strcmp(name, "_onbwcheck") == 0 ||
               strcmp(name, "_onbwdone") == 0) {
        /* nothing to do for live streams */
    } else if (sid == 0) {
        /* NetConnection.call of an application method (rtmp_rpc.c) */
        rc = sl__rtmp_rpc_call(c, name, txn, count > 3 ? v + 3 : NULL, count > 3 ? count - 3 : 0);
    } else if (txn > 0) {
        char desc[160];
        snprintf(desc, sizeof desc, "Method not found (%.100s).", name);
        rc = send_error(c, txn, "NetConnection.Call.Failed", desc);
    }
done:
    sl_amf_free_list(v, count);
    return rc;
}
