/*
 * Red5's statistics objects and the per-application endpoints (see
 * RED5-COMPAT.md §1.3 for every field): ServerInfo, ServerStatistics,
 * ScopeStatistics, Client, ClientStatistics, StreamStatistics,
 * BroadcastStreamStatistics; the unpublish and kick actions; sluice's
 * additions (stream subscribers, kick one subscriber, codec and rate
 * fields on streams).
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "api/api_internal.h"
#include "app/listeners.h"
#include "app/services.h"
#include "app/svc/recorder.h"
#include "app/svc/relay.h"
#include "app/svc/srt.h"
#include "app/svc/webrtc.h"
#include "base/alloc.h"
#include "base/time.h"
#include "media/flv.h"
#include "sluice/errors.h"
#include "sluice/version.h"

#define FMS_VERSION "RED5/1,0,7,0"

/* ------------------------------------------------------------------ */
/* helpers                                                             */

/* unit=b|kb|mb|gb: the divisor for byte counts, and its name. */
static double unit_div(sl_http_req_t *req, char *name, size_t cap)
{
    char u[8];
    if (sl_http_query_get(req->query, "unit", u, sizeof u) < 0)
        snprintf(u, sizeof u, "b");
    for (char *p = u; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    double d = 1;
    if (strcmp(u, "kb") == 0)
        d = 1024.0;
    else if (strcmp(u, "mb") == 0)
        d = 1024.0 * 1024.0;
    else if (strcmp(u, "gb") == 0)
        d = 1024.0 * 1024.0 * 1024.0;
    else
        snprintf(u, sizeof u, "b");
    snprintf(name, cap, "%s", u);
    return d;
}

static json_t *bytes_json(uint64_t v, double div)
{
    if (div == 1)
        return json_integer((json_int_t)v);
    return json_real((double)v / div);
}

/* Red5 scope paths: "/default/live/room1". */
static void red5_path(char *out, size_t cap, const char *scope)
{
    snprintf(out, cap, "/default/%s", scope ? scope : "");
}

/*
 * The scope an app request targets: the app, or the room named by
 * ?scope= ("room1", "live/room1", "/live/room1", "/default/live/room1").
 * Returns 0, or SL_EINVAL for a scope outside the app.
 */
static int target_scope(sl_http_req_t *req, const sl_app_config_t *app, char *out, size_t cap,
                        int *whole_app)
{
    char sc[512];
    *whole_app = 1;
    snprintf(out, cap, "%s", app->name);
    if (sl_http_query_get(req->query, "scope", sc, sizeof sc) <= 0)
        return 0;
    const char *p = sc;
    while (*p == '/')
        p++;
    if (strncmp(p, "default/", 8) == 0)
        p += 8;
    size_t al = strlen(app->name);
    if (strncmp(p, app->name, al) == 0 && (p[al] == '/' || p[al] == '\0'))
        p += al;
    while (*p == '/')
        p++;
    size_t n = strlen(p);
    while (n && p[n - 1] == '/')
        n--;
    if (n == 0)
        return 0; /* the app itself */
    if (snprintf(out, cap, "%s/%.*s", app->name, (int)n, p) >= (int)cap ||
        !sl_name_is_safe(out, 1024))
        return SL_EINVAL;
    *whole_app = 0;
    return 0;
}

static int session_in_scope(const sl_session_t *s, const char *scope, int whole_app)
{
    if (!s->app)
        return 0;
    size_t n = strlen(scope);
    if (strcmp(s->app, scope) == 0)
        return 1;
    return whole_app && strncmp(s->app, scope, n) == 0 && s->app[n] == '/';
}

static uint64_t live_sum(sl_core_t *core, const char *app_name, int field)
{
    uint64_t sum = 0;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &core->sessions) {
        sl_session_t *s = sl_container_of(it, sl_session_t, link);
        if (app_name && !session_in_scope(s, app_name, 1))
            continue;
        sum += field == 0 ? s->bytes_in : field == 1 ? s->bytes_out : field == 2 ? s->msgs_in
             : field == 3 ? s->msgs_out : s->frames_dropped;
    }
    return sum;
}

/* The "recorder" service while the recorder runs, else NULL (no recordings). */
static const sl_svc_recorder_t *recorder_of(const sl_api_t *api, void **ud)
{
    return sl_service_get(api->core, SL_SVC_RECORDER, SL_SVC_RECORDER_MAJOR, 0, ud);
}

/* ------------------------------------------------------------------ */
/* server                                                              */

int sl__api_server_info(sl_api_t *api, sl_http_req_t *req)
{
    uint64_t up = sl_time_wall_ms() - api->core->start_ms;
    json_t *o = json_pack("{s:s, s:s, s:i, s:I}", "red5_pro_version", SL_VERSION_STRING,
                          "fms_version", FMS_VERSION, "capabilities", 33, "uptime", (json_int_t)up);
    /* sluice addition: where to publish and play, so a console or a client can
     * build rtmp://host:PORT/app/stream (rtmps://, https://) without knowing
     * the configuration; null when that listener is off. The ports come from
     * the listeners table the protocols fill as they open (app/listeners.h). */
    if (o) {
        int rtmp = sl_listeners_port(api->core, "rtmp", 0);
        int rtmps = sl_listeners_port(api->core, "rtmp", 1);
        int https = sl_listeners_port(api->core, "http", 1);
        json_object_set_new(o, "rtmp_port", rtmp >= 0 ? json_integer(rtmp) : json_null());
        json_object_set_new(o, "rtmps_port", rtmps >= 0 ? json_integer(rtmps) : json_null());
        json_object_set_new(o, "https_port", https >= 0 ? json_integer(https) : json_null());
        int rtsp = sl_listeners_port(api->core, "rtsp", 0), rtsps = sl_listeners_port(api->core, "rtsp", 1);
        json_object_set_new(o, "rtsp_port", rtsp >= 0 ? json_integer(rtsp) : json_null());
        json_object_set_new(o, "rtsps_port", rtsps >= 0 ? json_integer(rtsps) : json_null());
    }
    return sl__api_ok(req, o);
}

static uint64_t rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

int sl__api_server_stats(sl_api_t *api, sl_http_req_t *req)
{
    sl_core_t *core = api->core;
    char uname_buf[8];
    double div = unit_div(req, uname_buf, sizeof uname_buf);
    struct utsname u;
    uname(&u);
    uint64_t total_ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t free_ram = (uint64_t)sysconf(_SC_AVPHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    size_t n_apps = 0, active_sub = 0, total_sub = 0;
    for (size_t i = 0; i < core->cfg->n_apps; i++)
        n_apps += core->cfg->apps[i].enabled ? 1 : 0;
    size_t pos = 0;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&core->app_stats, &pos))) {
        sl_app_stats_t *as = e->val;
        total_sub += as->rooms.n;
    }
    sl_map_t active;
    sl_map_init(&active);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &core->sessions) {
        sl_session_t *s = sl_container_of(it, sl_session_t, link);
        if (s->app && strchr(s->app, '/'))
            sl_map_set(&active, s->app, (void *)1);
    }
    active_sub = active.n;
    sl_map_cleanup(&active);
    json_t *o = json_object();
    json_object_set_new(o, "red5_pro_version", json_string(SL_VERSION_STRING));
    json_object_set_new(o, "fms_version", json_string(FMS_VERSION));
    json_object_set_new(o, "up_time", json_integer((json_int_t)(sl_time_wall_ms() - core->start_ms)));
    json_object_set_new(o, "os_name", json_string(u.sysname));
    json_object_set_new(o, "os_version", json_string(u.release));
    json_object_set_new(o, "processors", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
    json_object_set_new(o, "architecture", json_string(u.machine));
    json_object_set_new(o, "total_memory", bytes_json(rss_bytes(), div));
    json_object_set_new(o, "max_memory", bytes_json(total_ram, div));
    json_object_set_new(o, "free_memory", bytes_json(free_ram, div));
    json_object_set_new(o, "num_apps", json_integer((json_int_t)n_apps));
    json_object_set_new(o, "active_sub_scopes", json_integer((json_int_t)active_sub));
    json_object_set_new(o, "total_sub_scopes", json_integer((json_int_t)total_sub));
    json_object_set_new(o, "max_sub_scopes", json_integer((json_int_t)total_sub));
    json_object_set_new(o, "total_connections", json_integer((json_int_t)core->total_sessions));
    json_object_set_new(o, "active_connections", json_integer((json_int_t)core->n_sessions));
    json_object_set_new(o, "max_connections", json_integer((json_int_t)core->max_sessions));
    json_object_set_new(o, "bytes_in", bytes_json(core->closed_bytes_in + live_sum(core, NULL, 0), div));
    json_object_set_new(o, "bytes_out", bytes_json(core->closed_bytes_out + live_sum(core, NULL, 1), div));
    json_object_set_new(o, "messages_in", json_integer((json_int_t)(core->closed_msgs_in + live_sum(core, NULL, 2))));
    json_object_set_new(o, "messages_out", json_integer((json_int_t)(core->closed_msgs_out + live_sum(core, NULL, 3))));
    json_object_set_new(o, "data_unit", json_string(uname_buf));
    /* sluice additions */
    json_object_set_new(o, "active_streams", json_integer((json_int_t)sl_hub_count(core->hub)));
    json_object_set_new(o, "memory_allocated", bytes_json((uint64_t)sl_alloc_bytes(), div));
    return sl__api_ok(req, o);
}

/* ------------------------------------------------------------------ */
/* applications                                                        */

int sl__api_app_list(sl_api_t *api, sl_http_req_t *req)
{
    json_t *a = json_array();
    for (size_t i = 0; i < api->core->cfg->n_apps; i++)
        if (api->core->cfg->apps[i].enabled)
            json_array_append_new(a, json_string(api->core->cfg->apps[i].name));
    return sl__api_ok(req, a);
}

static json_t *scope_stats(sl_api_t *api, const char *scope, int whole_app, double div,
                           const char *unit_name)
{
    sl_core_t *core = api->core;
    char path[1100];
    red5_path(path, sizeof path, scope);
    sl_app_stats_t *as = whole_app ? sl_map_get(&core->app_stats, scope) : NULL;
    size_t active = 0;
    uint64_t bin = 0, bout = 0, min = 0, mout = 0;
    sl_map_t rooms;
    sl_map_init(&rooms);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &core->sessions) {
        sl_session_t *s = sl_container_of(it, sl_session_t, link);
        if (!session_in_scope(s, scope, whole_app))
            continue;
        active++;
        bin += s->bytes_in;
        bout += s->bytes_out;
        min += s->msgs_in;
        mout += s->msgs_out;
        if (strcmp(s->app, scope) != 0)
            sl_map_set(&rooms, s->app, (void *)1);
    }
    if (as) {
        bin += as->closed_bytes_in;
        bout += as->closed_bytes_out;
        min += as->closed_msgs_in;
        mout += as->closed_msgs_out;
    }
    const char *name = strrchr(scope, '/') ? strrchr(scope, '/') + 1 : scope;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "path", json_string(path));
    json_object_set_new(o, "creation_time", json_integer((json_int_t)(as ? as->creation_ms : core->start_ms)));
    json_object_set_new(o, "depth", json_integer(1 + (json_int_t)(strchr(scope, '/') ? 1 : 0)));
    json_object_set_new(o, "active_connections", json_integer((json_int_t)active));
    json_object_set_new(o, "total_connections", json_integer((json_int_t)(as ? as->total_connections : active)));
    json_object_set_new(o, "max_connections", json_integer((json_int_t)(as ? as->max_connections : active)));
    json_object_set_new(o, "active_subscopes", json_integer((json_int_t)rooms.n));
    json_object_set_new(o, "total_subscopes", json_integer((json_int_t)(as ? as->rooms.n : rooms.n)));
    json_object_set_new(o, "max_subscopes", json_integer((json_int_t)(as ? as->rooms.n : rooms.n)));
    json_object_set_new(o, "bytes_in", bytes_json(bin, div));
    json_object_set_new(o, "bytes_out", bytes_json(bout, div));
    json_object_set_new(o, "messages_in", json_integer((json_int_t)min));
    json_object_set_new(o, "messages_out", json_integer((json_int_t)mout));
    json_object_set_new(o, "type", json_string(whole_app ? "application" : "room"));
    json_object_set_new(o, "data_unit", json_string(unit_name));
    sl_map_cleanup(&rooms);
    return o;
}

/*
 * Red5's repeatable app= filter of /applications/statistics. Returns 1 when
 * the raw query has at least one non-empty app= parameter; then *match says
 * whether one of them (percent-decoded) is `name`. Other parameters whose
 * names merely end in "app" (myapp=) are not filters.
 */
static int app_filter(const char *q, const char *name, int *match)
{
    int any = 0;
    *match = 0;
    while (q && *q) {
        size_t len = strcspn(q, "&");
        if (len > 4 && strncmp(q, "app=", 4) == 0) {
            char val[SL_CONFIG_APP_NAME_MAX + 64];
            size_t n = len - 4;
            if (n < sizeof val) {
                memcpy(val, q + 4, n);
                val[n] = '\0';
                size_t dn = sl_http_url_decode(val, 1);
                if (dn && strlen(val) == dn) {
                    any = 1;
                    if (strcmp(val, name) == 0)
                        *match = 1;
                }
            } else {
                any = 1; /* too long to be an app name: matches nothing */
            }
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return any;
}

int sl__api_apps_stats(sl_api_t *api, sl_http_req_t *req)
{
    char un[8];
    double div = unit_div(req, un, sizeof un);
    json_t *a = json_array();
    for (size_t i = 0; i < api->core->cfg->n_apps; i++) {
        const sl_app_config_t *app = &api->core->cfg->apps[i];
        if (!app->enabled)
            continue;
        int match;
        if (app_filter(req->query, app->name, &match) && !match)
            continue;
        json_array_append_new(a, scope_stats(api, app->name, 1, div, un));
    }
    return sl__api_ok(req, a);
}

/* ------------------------------------------------------------------ */
/* clients                                                             */

static const char *proto_name(const sl_session_t *s) { return s->proto ? s->proto : "unknown"; }

/*
 * The "webrtc" object of a WebRTC client's detail, from the protocol's
 * "webrtc" service; NULL when the session is not WebRTC's or the service
 * is absent (WebRTC off).
 */
static json_t *webrtc_json(const sl_session_t *s)
{
    void *ud;
    const sl_svc_webrtc_t *wr;
    sl_webrtc_session_stats_t st;
    memset(&st, 0, sizeof st); /* a provider older than this header fills only its part */
    if (!s->core || !s->proto || strcmp(s->proto, "webrtc") != 0 ||
        !(wr = sl_service_get(s->core, SL_SVC_WEBRTC, SL_SVC_WEBRTC_MAJOR, 0, &ud)) ||
        wr->session(ud, s->id, &st, sizeof st))
        return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "kind", json_string(st.kind));
    json_object_set_new(o, "transport", json_string(st.transport));
    json_object_set_new(o, "ice_state", json_string(st.ice_state));
    json_object_set_new(o, "dtls_state", json_string(st.dtls_state));
    json_object_set_new(o, "video_codec", st.video_codec[0] ? json_string(st.video_codec) : json_null());
    json_object_set_new(o, "audio_codec", st.audio_codec[0] ? json_string(st.audio_codec) : json_null());
    json_object_set_new(o, "datachannel", json_boolean(st.datachannel));
    json_object_set_new(o, "connect_ms", st.connect_ms >= 0 ? json_integer(st.connect_ms) : json_null());
    json_object_set_new(o, "bytes_in", json_integer((json_int_t)st.bytes_in));
    json_object_set_new(o, "bytes_out", json_integer((json_int_t)st.bytes_out));
    json_object_set_new(o, "packets_in", json_integer((json_int_t)st.packets_in));
    json_object_set_new(o, "packets_out", json_integer((json_int_t)st.packets_out));
    json_object_set_new(o, "bitrate_in_kbps", json_real(st.bitrate_in_kbps));
    json_object_set_new(o, "bitrate_out_kbps", json_real(st.bitrate_out_kbps));
    json_object_set_new(o, "packets_lost", json_integer((json_int_t)st.packets_lost));
    json_object_set_new(o, "loss_fraction", json_real(st.loss_fraction));
    json_object_set_new(o, "rtt_ms", st.rtt_ms >= 0 ? json_integer(st.rtt_ms) : json_null());
    json_object_set_new(o, "nack_sent", json_integer((json_int_t)st.nack_sent));
    json_object_set_new(o, "nack_received", json_integer((json_int_t)st.nack_received));
    json_object_set_new(o, "retransmissions", json_integer((json_int_t)st.retransmissions));
    json_object_set_new(o, "pli_sent", json_integer((json_int_t)st.pli_sent));
    json_object_set_new(o, "pli_received", json_integer((json_int_t)st.pli_received));
    json_object_set_new(o, "datachannel_messages_in", json_integer((json_int_t)st.dc_messages_in));
    json_object_set_new(o, "datachannel_messages_out", json_integer((json_int_t)st.dc_messages_out));
    json_object_set_new(o, "transcoding", json_boolean(st.transcoding));
    json_object_set_new(o, "timestamps", st.timestamps && st.timestamps[0] ? json_string(st.timestamps) : json_null());
    int viewer = strcmp(st.kind, "viewer") == 0;
    json_object_set_new(o, "estimated_bps", viewer ? json_integer((json_int_t)st.estimated_bps) : json_null());
    json_object_set_new(o, "remb_bps", viewer && st.remb_bps ? json_integer((json_int_t)st.remb_bps) : json_null());
    json_object_set_new(o, "pacer_queue_ms", json_integer((json_int_t)st.pacer_queue_ms));
    json_object_set_new(o, "pacer_queue_bytes", json_integer((json_int_t)st.pacer_queue_bytes));
    json_object_set_new(o, "frames_dropped", json_integer((json_int_t)st.frames_dropped));
    json_object_set_new(o, "send_retries", json_integer((json_int_t)st.send_retries));
    return o;
}

/*
 * The "srt" object of an SRT client's detail, from the SRT protocol's
 * "srt" service (libsrt's srt_bstats); NULL for other sessions or when
 * SRT is off.
 */
static json_t *srt_json(const sl_session_t *s)
{
    void *ud;
    const sl_svc_srt_t *sv;
    sl_srt_session_stats_t st;
    memset(&st, 0, sizeof st);
    if (!s->core || !s->proto || strcmp(s->proto, "srt") != 0 ||
        !(sv = sl_service_get(s->core, SL_SVC_SRT, SL_SVC_SRT_MAJOR, 0, &ud)) ||
        sv->session(ud, s->id, &st, sizeof st))
        return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "mode", json_string(st.mode));
    json_object_set_new(o, "state", json_string(st.state));
    json_object_set_new(o, "streamid_form", json_string(st.streamid_form));
    json_object_set_new(o, "encrypted", json_boolean(st.encrypted));
    json_object_set_new(o, "latency_ms", json_integer((json_int_t)st.latency_ms));
    json_object_set_new(o, "rtt_ms", json_real(st.rtt_ms));
    json_object_set_new(o, "bandwidth_mbps", json_real(st.bandwidth_mbps));
    json_object_set_new(o, "send_rate_mbps", json_real(st.send_rate_mbps));
    json_object_set_new(o, "recv_rate_mbps", json_real(st.recv_rate_mbps));
    json_object_set_new(o, "packets_sent", json_integer((json_int_t)st.packets_sent));
    json_object_set_new(o, "packets_received", json_integer((json_int_t)st.packets_received));
    json_object_set_new(o, "packets_lost_send", json_integer((json_int_t)st.packets_lost_send));
    json_object_set_new(o, "packets_lost_recv", json_integer((json_int_t)st.packets_lost_recv));
    json_object_set_new(o, "packets_retransmitted", json_integer((json_int_t)st.packets_retransmitted));
    json_object_set_new(o, "packets_dropped_send", json_integer((json_int_t)st.packets_dropped_send));
    json_object_set_new(o, "packets_dropped_recv", json_integer((json_int_t)st.packets_dropped_recv));
    json_object_set_new(o, "bytes_sent", json_integer((json_int_t)st.bytes_sent));
    json_object_set_new(o, "bytes_received", json_integer((json_int_t)st.bytes_received));
    json_object_set_new(o, "frames_dropped", json_integer((json_int_t)st.frames_dropped));
    json_object_set_new(o, "video_codec", st.video_codec && st.video_codec[0] ? json_string(st.video_codec) : json_null());
    json_object_set_new(o, "audio_codec", st.audio_codec && st.audio_codec[0] ? json_string(st.audio_codec) : json_null());
    return o;
}

static json_t *client_json(const sl_session_t *s, int full)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(s->id));
    json_object_set_new(o, "creation_time", json_integer((json_int_t)s->start_ms));
    json_object_set_new(o, "last_ping", json_integer(-1));
    json_object_set_new(o, "remote_address", json_string(s->remote_addr));
    if (!full)
        return o;
    char path[1100];
    red5_path(path, sizeof path, s->app);
    json_object_set_new(o, "path", json_string(path));
    json_object_set_new(o, "bytes_out", json_integer((json_int_t)s->bytes_out));
    json_object_set_new(o, "bytes_in", json_integer((json_int_t)s->bytes_in));
    json_object_set_new(o, "messages_written", json_integer((json_int_t)s->msgs_out));
    json_object_set_new(o, "messages_read", json_integer((json_int_t)s->msgs_in));
    json_object_set_new(o, "messages_dropped", json_integer((json_int_t)s->frames_dropped));
    json_object_set_new(o, "messages_pending",
                        json_integer((json_int_t)(s->ops && s->ops->pending ? s->ops->pending(s) : 0)));
    json_object_set_new(o, "remote_port", json_integer(s->remote_port));
    json_object_set_new(o, "connection_protocol", json_string(proto_name(s)));
    json_object_set_new(o, "host", json_string(s->core && s->core->cfg->server_node_name[0]
                                                   ? s->core->cfg->server_node_name : "localhost"));
    /* sluice additions */
    json_object_set_new(o, "app", s->app ? json_string(s->app) : json_null());
    json_object_set_new(o, "stream", s->stream ? json_string(s->stream) : json_null());
    json_object_set_new(o, "role", json_string(s->role == SL_ROLE_PUBLISHER ? "publisher"
                                               : s->role == SL_ROLE_SUBSCRIBER ? "subscriber" : "none"));
    /* A relay connection of another node (Red5's cluster restreamer): not a player. */
    void *rud;
    const sl_svc_relay_t *rl = s->core ? sl_service_get(s->core, SL_SVC_RELAY, SL_SVC_RELAY_MAJOR, 0,
                                                        &rud) : NULL;
    if (rl && rl->is_restreamer(rud, s->id))
        json_object_set_new(o, "restreamer", json_true());
    json_t *wr = webrtc_json(s);
    if (wr)
        json_object_set_new(o, "webrtc", wr);
    json_t *sr = srt_json(s);
    if (sr)
        json_object_set_new(o, "srt", sr);
    return o;
}

/* ------------------------------------------------------------------ */
/* streams                                                             */

/* Stream name relative to the target scope, or NULL when outside it. */
static const char *rel_name(const sl_stream_t *st, const char *scope, int whole_app)
{
    size_t n = strlen(scope);
    if (strncmp(st->name, scope, n) != 0 || st->name[n] != '/')
        return NULL;
    const char *rel = st->name + n + 1;
    if (!whole_app && strchr(rel, '/'))
        return NULL;
    return rel;
}

/* Whether session s is a player (subscriber) of stream st. */
static int plays_stream(const sl_session_t *s, const sl_stream_t *st)
{
    if (s->role != SL_ROLE_SUBSCRIBER || !s->app || !s->stream)
        return 0;
    size_t al = strlen(s->app);
    return strncmp(st->name, s->app, al) == 0 && st->name[al] == '/' &&
           strcmp(st->name + al + 1, s->stream) == 0;
}

static json_t *stream_json(sl_api_t *api, sl_stream_t *st, const char *rel, const char *scope,
                           int broadcast)
{
    void *rec_ud;
    const sl_svc_recorder_t *rec = recorder_of(api, &rec_ud);
    char path[1100];
    red5_path(path, sizeof path, scope);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer((json_int_t)st->seq));
    json_object_set_new(o, "name", json_string(st->uuid));
    json_object_set_new(o, "publish_name", json_string(rel));
    json_object_set_new(o, "creation_time", json_integer((json_int_t)st->publish_time_ms));
    json_object_set_new(o, "scope_path", json_string(path));
    json_object_set_new(o, "is_recording",
                        json_boolean(rec && rec->is_recording(rec_ud, st->name)));
    json_object_set_new(o, "state", json_string(st->publisher ? "PUBLISHING" : "CLOSED"));
    if (!broadcast)
        return o;
    /* Subscribers are the player sessions, as listed by .../subscribers and
     * counted by sluice_players: the stream's sinks also include the server's
     * own outputs (the HLS segmenter), which are not clients. total and max
     * still come from the hub's sink counters, which cannot tell them apart;
     * they are raised to at least the active count. */
    uint64_t bytes_out = 0, dropped = 0, n_players = 0;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &api->core->sessions) {
        sl_session_t *s = sl_container_of(it, sl_session_t, link);
        if (plays_stream(s, st)) {
            n_players++;
            bytes_out += s->bytes_out;
            dropped += s->frames_dropped;
        }
    }
    uint64_t total = st->stats.total_sinks, max = st->stats.max_sinks;
    json_object_set_new(o, "bytes_received", json_integer((json_int_t)st->stats.bytes_in));
    json_object_set_new(o, "active_subscribers", json_integer((json_int_t)n_players));
    json_object_set_new(o, "total_subscribers", json_integer((json_int_t)(total > n_players ? total : n_players)));
    json_object_set_new(o, "max_subscribers", json_integer((json_int_t)(max > n_players ? max : n_players)));
    /* sluice additions */
    uint64_t now = sl_time_wall_ms();
    double secs = now > st->publish_time_ms ? (double)(now - st->publish_time_ms) / 1000.0 : 0;
    json_object_set_new(o, "video_codec", st->video_codec ? json_string(sl_codec_name(st->video_codec)) : json_null());
    json_object_set_new(o, "audio_codec", st->audio_codec ? json_string(sl_codec_name(st->audio_codec)) : json_null());
    json_object_set_new(o, "width", json_integer(st->width));
    json_object_set_new(o, "height", json_integer(st->height));
    double fps = st->fps;
    if (secs > 1 && st->stats.video_frames)
        fps = (double)st->stats.video_frames / secs;
    json_object_set_new(o, "fps", json_real(fps));
    json_object_set_new(o, "bitrate_in_kbps", json_real(secs > 0 ? (double)st->stats.bytes_in * 8 / 1000 / secs : 0));
    json_object_set_new(o, "bitrate_out_kbps", json_real(secs > 0 ? (double)bytes_out * 8 / 1000 / secs : 0));
    json_object_set_new(o, "keyframe_interval_ms", json_integer(st->stats.key_interval_ms));
    json_object_set_new(o, "frames_in", json_integer((json_int_t)st->stats.frames_in));
    json_object_set_new(o, "frames_dropped", json_integer((json_int_t)dropped));
    json_object_set_new(o, "uptime_ms", json_integer((json_int_t)(now - st->publish_time_ms)));
    if (st->publisher) {
        const sl_session_t *p = st->publisher;
        json_object_set_new(o, "publisher", json_pack("{s:s, s:s, s:s, s:i}", "id", p->id, "protocol",
                                                      proto_name(p), "remote_address", p->remote_addr,
                                                      "remote_port", p->remote_port));
    }
    return o;
}

/* Finds a live stream by relative name in the target scope. */
static sl_stream_t *find_stream(sl_api_t *api, const char *scope, const char *name)
{
    char full[2048];
    if (snprintf(full, sizeof full, "%s/%s", scope, name) >= (int)sizeof full)
        return NULL;
    sl_stream_t *st = sl_hub_find(api->core->hub, full);
    return st && st->publisher ? st : NULL;
}

static int subscribers_of(sl_api_t *api, sl_http_req_t *req, sl_stream_t *st)
{
    json_t *a = json_array();
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &api->core->sessions) {
        sl_session_t *s = sl_container_of(it, sl_session_t, link);
        if (plays_stream(s, st))
            json_array_append_new(a, client_json(s, 1));
    }
    return sl__api_ok(req, a);
}

static sl_session_t *find_client(sl_api_t *api, const char *id, const char *scope, int whole_app)
{
    sl_session_t *s = sl_core_find_session(api->core, id);
    return s && session_in_scope(s, scope, whole_app) ? s : NULL;
}

/* Red5's RecordStreamStatistics: startrecord (start=1) / stoprecord through the recorder. */
static int record_action(sl_api_t *api, sl_http_req_t *req, sl_stream_t *st, const char *rel,
                         const char *scope, int start)
{
    void *rec_ud;
    const sl_svc_recorder_t *ops = recorder_of(api, &rec_ud);
    if (!ops)
        return sl__api_err(req, 409, "Recording is not available on this server.");
    int rc;
    char name[300] = "";
    if (start) {
        char saveas[300], append[16];
        int has_saveas = sl_http_query_get(req->query, "saveas", saveas, sizeof saveas) > 0;
        int app_mode = sl_http_query_get(req->query, "append", append, sizeof append) > 0 &&
                       strcmp(append, "true") == 0;
        rc = ops->start(rec_ud, st->name, has_saveas ? saveas : NULL, app_mode,
                        name, sizeof name);
        if (rc == SL_EINVAL)
            return sl__api_err(req, 400, "Invalid saveas: the name must stay inside the "
                                         "application's streams folder (no .., no absolute path, "
                                         "printable characters only).");
        if (rc == SL_EBUSY)
            return sl__api_err(req, 409, "The stream is already being recorded.");
        if (rc)
            return sl__api_err(req, rc == SL_ENOTFOUND ? 404 : 500, sl_strerror(rc));
        json_t *o = stream_json(api, st, rel, scope, 0);
        json_object_set_new(o, "record_name", json_string(name));
        json_object_set_new(o, "append", json_boolean(app_mode));
        return sl__api_ok(req, o);
    }
    rc = ops->stop(rec_ud, st->name);
    if (rc == SL_ENOTFOUND)
        return sl__api_err(req, 409, "The stream is not being recorded.");
    if (rc == SL_EDENIED)
        return sl__api_err(req, 409, "The recording was not started by the API (publish mode or "
                                     "app policy); only API-started recordings can be stopped.");
    if (rc)
        return sl__api_err(req, 500, sl_strerror(rc));
    return sl__api_ok(req, stream_json(api, st, rel, scope, 0));
}

static void media_each(void *arg, const char *name, uint64_t mtime_ms, uint64_t size)
{
    json_array_append_new(arg, json_pack("{s:s, s:I, s:I}", "name", name, "last_modified",
                                         (json_int_t)mtime_ms, "file_size", (json_int_t)size));
}

/* GET /applications/{app}/media[?extension=flv]: [OnDemandMedia]. */
static int media_list(sl_api_t *api, sl_http_req_t *req, const char *app)
{
    void *rec_ud;
    const sl_svc_recorder_t *ops = recorder_of(api, &rec_ud);
    json_t *a = json_array();
    char ext[16] = "";
    if (sl_http_query_get(req->query, "extension", ext, sizeof ext) < 0)
        ext[0] = '\0';
    if (ops)
        ops->list(rec_ud, app, ext[0] == '.' ? ext + 1 : ext, media_each, a);
    return sl__api_ok(req, a);
}

/* DELETE /applications/{app}/media?filename=&extension=: the deleted OnDemandMedia. */
static int media_delete(sl_api_t *api, sl_http_req_t *req, const char *app)
{
    void *rec_ud;
    const sl_svc_recorder_t *ops = recorder_of(api, &rec_ud);
    char fn[300], ext[16] = "", name[320];
    if (sl_http_query_get(req->query, "filename", fn, sizeof fn) <= 0)
        return sl__api_err(req, 400, "Parameter filename is required.");
    if (sl_http_query_get(req->query, "extension", ext, sizeof ext) < 0)
        ext[0] = '\0';
    if (!ops)
        return sl__api_err(req, 404, "Media file not found.");
    uint64_t mtime = 0, size = 0;
    int rc = ops->remove(rec_ud, app, fn, ext[0] == '.' ? ext + 1 : ext, name,
                         sizeof name, &mtime, &size);
    if (rc == SL_EINVAL)
        return sl__api_err(req, 400, "Invalid filename or extension.");
    if (rc == SL_EBUSY)
        return sl__api_err(req, 409, "The file is being recorded.");
    if (rc == SL_ENOTFOUND)
        return sl__api_err(req, 404, "Media file not found.");
    if (rc)
        return sl__api_err(req, 500, sl_strerror(rc));
    return sl__api_ok(req, json_pack("{s:s, s:I, s:I}", "name", name, "last_modified",
                                     (json_int_t)mtime, "file_size", (json_int_t)size));
}

int sl__api_app_route(sl_api_t *api, sl_http_req_t *req, const sl_app_config_t *app, char **seg,
                      int n, int is_get, int is_del, int is_post)
{
    char un[8];
    double div = unit_div(req, un, sizeof un);
    char scope[1100];
    int whole_app;
    if (target_scope(req, app, scope, sizeof scope, &whole_app))
        return sl__api_err(req, 400, "Invalid scope.");

    if (n == 0 && is_get)
        return sl__api_ok(req, scope_stats(api, scope, whole_app, div, un));

    /* RPC: Red5's /invoke, and server -> client invokes (api_rpc.c). */
    if (is_post && ((n == 1 && strcmp(seg[0], "invoke") == 0) ||
                    (n == 2 && strcmp(seg[0], "invoke") == 0 && strcmp(seg[1], "clients") == 0) ||
                    (n == 3 && strcmp(seg[0], "clients") == 0 && strcmp(seg[2], "invoke") == 0)))
        return sl__api_rpc_route(api, req, app, scope, whole_app, seg, n);

    if (n >= 1 && strcmp(seg[0], "streams") == 0) {
        if (n == 1 && is_get) {
            json_t *a = json_array();
            size_t pos = 0;
            sl_stream_t *st;
            while ((st = sl_hub_next(api->core->hub, &pos))) {
                const char *rel = rel_name(st, scope, whole_app);
                if (rel && st->publisher)
                    json_array_append_new(a, json_string(rel));
            }
            return sl__api_ok(req, a);
        }
        sl_stream_t *st = n >= 2 ? find_stream(api, scope, seg[1]) : NULL;
        if (n >= 2 && !st) {
            char msg[200];
            snprintf(msg, sizeof msg, "Stream %.100s not found.", seg[1]);
            return sl__api_err(req, 404, msg);
        }
        if (n == 2 && is_get)
            return sl__api_ok(req, stream_json(api, st, seg[1], scope, 1));
        if (n == 3 && strcmp(seg[2], "subscribers") == 0 && is_get)
            return subscribers_of(api, req, st);
        if (n == 4 && strcmp(seg[2], "subscribers") == 0 && is_del) {
            sl_list_t *it, *nx;
            sl_list_foreach_safe(it, nx, &api->core->sessions) {
                sl_session_t *s = sl_container_of(it, sl_session_t, link);
                if (strcmp(s->id, seg[3]) == 0 && plays_stream(s, st) && s->ops && s->ops->kick) {
                    json_t *cj = client_json(s, 1);
                    s->ops->kick(s, "kicked by the API");
                    return sl__api_ok(req, cj);
                }
            }
            return sl__api_err(req, 404, "Subscriber not found.");
        }
        if (n == 4 && strcmp(seg[2], "action") == 0 && is_get) {
            if (strcmp(seg[3], "unpublish") == 0) {
                json_t *o = stream_json(api, st, seg[1], scope, 0);
                json_object_set_new(o, "state", json_string("CLOSED"));
                sl_session_t *pub = st->publisher;
                pub->ops->kick(pub, "unpublished by the API"); /* players get UnpublishNotify */
                return sl__api_ok(req, o);
            }
            if (strcmp(seg[3], "startrecord") == 0 || strcmp(seg[3], "stoprecord") == 0)
                return record_action(api, req, st, seg[1], scope, seg[3][2] == 'a');
        }
        return sl__api_err(req, 404, "No such stream endpoint.");
    }

    if (n >= 1 && strcmp(seg[0], "clients") == 0) {
        if (n == 1 && is_get) {
            json_t *a = json_array();
            sl_list_t *it, *nx;
            sl_list_foreach_safe(it, nx, &api->core->sessions) {
                sl_session_t *s = sl_container_of(it, sl_session_t, link);
                if (session_in_scope(s, scope, whole_app))
                    json_array_append_new(a, client_json(s, 0));
            }
            return sl__api_ok(req, a);
        }
        if (n == 1 && is_del) {
            sl_list_t *it, *nx;
            sl_list_foreach_safe(it, nx, &api->core->sessions) {
                sl_session_t *s = sl_container_of(it, sl_session_t, link);
                if (session_in_scope(s, scope, whole_app) && s->ops && s->ops->kick)
                    s->ops->kick(s, "kicked by the API");
            }
            return sl__api_ok(req, json_object());
        }
        sl_session_t *s = n == 2 ? find_client(api, seg[1], scope, whole_app) : NULL;
        if (n == 2 && !s)
            return sl__api_err(req, 404, "Client not found.");
        if (n == 2 && is_get)
            return sl__api_ok(req, client_json(s, 1));
        if (n == 2 && is_del) {
            json_t *cj = client_json(s, 0);
            s->ops->kick(s, "kicked by the API");
            return sl__api_ok(req, cj);
        }
    }

    if (n >= 1 && strcmp(seg[0], "sharedobjects") == 0)
        return sl__api_so_route(api, req, scope, seg, n); /* api_so.c */
    if (n == 1 && strcmp(seg[0], "media") == 0) {
        if (is_get)
            return media_list(api, req, app->name);
        if (is_del)
            return media_delete(api, req, app->name);
    }
    return sl__api_err(req, 404, "No such application endpoint.");
}
