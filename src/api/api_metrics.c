/*
 * GET /metrics in the Prometheus text exposition format (version 0.0.4).
 * Counters end in _total; every metric has HELP and TYPE lines. Values are
 * computed on request from the session registry and the hub, so a scrape
 * costs O(sessions + streams) and nothing is maintained per frame.
 */
#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api/api_internal.h"
#include "app/services.h"
#include "app/svc/srt.h"
#include "app/svc/cluster.h"
#include "app/svc/webrtc.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/time.h"
#include "media/frame.h"
#include "net/workers.h"
#include "sluice/version.h"

static int put(sl_wbuf_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put(sl_wbuf_t *w, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return 0;
    return sl_wbuf_put(w, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void metric(sl_wbuf_t *w, const char *name, const char *type, const char *help)
{
    put(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * The sluice_srt_* families (and MPEG-TS over UDP's), from the SRT
 * protocol's "srt" service; nothing when SRT is off.
 */
static void srt_metrics(sl_core_t *core, sl_wbuf_t *w)
{
    void *ud;
    const sl_svc_srt_t *sv = sl_service_get(core, SL_SVC_SRT, SL_SVC_SRT_MAJOR, 0, &ud);
    if (!sv)
        return;
    sl_srt_counters_t c;
    memset(&c, 0, sizeof c);
    sv->counters(ud, &c, sizeof c);
    metric(w, "sluice_srt_sessions", "gauge", "SRT sessions live now by mode (publish, read).");
    put(w, "sluice_srt_sessions{mode=\"publish\"} %llu\n", (unsigned long long)c.publishers_now);
    put(w, "sluice_srt_sessions{mode=\"read\"} %llu\n", (unsigned long long)c.readers_now);
    metric(w, "sluice_srt_connections_total", "counter", "SRT connections accepted.");
    put(w, "sluice_srt_connections_total %llu\n", (unsigned long long)c.connections_total);
    metric(w, "sluice_srt_rejected_total", "counter",
           "SRT handshakes rejected before accepting (bad streamid, unknown app, budgets).");
    put(w, "sluice_srt_rejected_total %llu\n", (unsigned long long)c.rejected_total);
    metric(w, "sluice_srt_denied_total", "counter", "SRT connections refused by the admission chain.");
    put(w, "sluice_srt_denied_total %llu\n", (unsigned long long)c.denied_total);
    metric(w, "sluice_srt_bytes_total", "counter", "SRT bytes of sessions by direction.");
    put(w, "sluice_srt_bytes_total{direction=\"in\"} %llu\n", (unsigned long long)c.bytes_in);
    put(w, "sluice_srt_bytes_total{direction=\"out\"} %llu\n", (unsigned long long)c.bytes_out);
    metric(w, "sluice_srt_frames_dropped_total", "counter",
           "Frames SRT sessions dropped (demux queue full, frame too large, reader behind).");
    put(w, "sluice_srt_frames_dropped_total %llu\n", (unsigned long long)c.frames_dropped);
    metric(w, "sluice_mpegts_udp_bytes_total", "counter", "Bytes received by MPEG-TS over UDP ingest.");
    put(w, "sluice_mpegts_udp_bytes_total %llu\n", (unsigned long long)c.udp_ts_bytes_in);
    metric(w, "sluice_mpegts_udp_publishing", "gauge", "MPEG-TS over UDP listeners publishing now.");
    put(w, "sluice_mpegts_udp_publishing %llu\n", (unsigned long long)c.udp_ts_publishing);
}

/*
 * The sluice_cluster_* families, from the cluster core's "cluster" service
 * (src/cluster/core); nothing on a single node. Gauges of this node's view:
 * its Redis link, the live nodes of its snapshot (itself included) and the
 * stream placements in it. The autoscaler's HPA example reads them too.
 */
static void cluster_metrics(sl_core_t *core, sl_wbuf_t *w)
{
    void *ud;
    const sl_svc_cluster_t *cl = sl_service_get(core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR, 0, &ud);
    if (!cl)
        return;
    const sl_cluster_node_t *nodes;
    const sl_cluster_stream_t *streams;
    size_t n_nodes = cl->nodes(ud, &nodes), n_streams = cl->streams(ud, &streams);
    metric(w, "sluice_cluster_redis_up", "gauge",
           "1 while this node's link to Redis is up (cluster mode; docs/cluster.md).");
    put(w, "sluice_cluster_redis_up %d\n", cl->redis_up(ud, NULL) ? 1 : 0);
    metric(w, "sluice_cluster_nodes", "gauge", "Live nodes in this node's snapshot, itself included.");
    put(w, "sluice_cluster_nodes %zu\n", n_nodes);
    metric(w, "sluice_cluster_placements", "gauge", "Streams placed on an origin, cluster-wide.");
    put(w, "sluice_cluster_placements %zu\n", n_streams);
}

/*
 * The sluice_webrtc_* families, from the WebRTC protocol's "webrtc"
 * service; nothing when WebRTC is off (the service is absent).
 */
static void webrtc_metrics(sl_core_t *core, sl_wbuf_t *w)
{
    void *ud;
    const sl_svc_webrtc_t *wr = sl_service_get(core, SL_SVC_WEBRTC, SL_SVC_WEBRTC_MAJOR, 0, &ud);
    if (!wr)
        return;
    sl_webrtc_counters_t c;
    wr->counters(ud, &c, sizeof c);
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } rows[] = {
#define ROW(n, t, f, h) {"sluice_webrtc_" n, t, h, offsetof(sl_webrtc_counters_t, f)}
        ROW("sessions_created_total", "counter", sessions_total, "WebRTC sessions created (WHIP/WHEP POST answered 201)."),
        ROW("sessions_failed_total", "counter", sessions_failed,
            "WebRTC sessions answered and then ended before media flowed (setup timeout, DTLS failure, closed first)."),
        ROW("stun_requests_total", "counter", stun_in, "STUN binding requests received."),
        ROW("stun_refused_total", "counter", stun_refused,
            "STUN binding requests refused (malformed, unknown ufrag, bad integrity)."),
        ROW("dtls_handshakes_total", "counter", dtls_handshakes, "DTLS handshakes completed."),
        ROW("srtp_failures_total", "counter", srtp_failures, "SRTP/SRTCP packets that did not decrypt."),
        ROW("nacks_received_total", "counter", nack_in, "Sequence numbers WHEP viewers asked again (NACK)."),
        ROW("nacks_sent_total", "counter", nack_out, "Sequence numbers asked again of WHIP publishers (NACK)."),
        ROW("retransmissions_total", "counter", retransmissions, "RTP packets resent to viewers for their NACKs."),
        ROW("plis_received_total", "counter", pli_in, "Keyframe requests (PLI/FIR) from viewers."),
        ROW("plis_sent_total", "counter", pli_out, "Keyframe requests (PLI) sent to publishers."),
        ROW("datagrams_unknown_total", "counter", datagrams_unknown,
            "Datagrams dropped: from an address no session owns, or too large."),
        ROW("bframes_dropped_total", "counter", bframes_dropped,
            "H.264 B-frames not sent to WHEP viewers (webrtc.bframes: drop)."),
        ROW("frames_dropped_total", "counter", frames_dropped,
            "Video frames WHEP viewers did not get because their pacing queue was behind."),
        ROW("send_retries_total", "counter", send_retries,
            "Packets to viewers the socket refused (EAGAIN/ENOBUFS), kept queued and retried."),
        ROW("rembs_received_total", "counter", remb_in, "REMB bandwidth estimates received from viewers."),
        ROW("worker_send_drops_total", "counter", worker_send_drops,
            "Packets to WHEP viewers a worker loop dropped: its socket was full or its inbox refused "
            "the batch (server.workers > 1; the viewer NACKs what it misses)."),
#undef ROW
    };
    metric(w, "sluice_webrtc_sessions", "gauge", "Open WebRTC sessions by kind (publisher: WHIP, viewer: WHEP).");
    put(w, "sluice_webrtc_sessions{kind=\"publisher\"} %llu\n", (unsigned long long)c.publishers_now);
    put(w, "sluice_webrtc_sessions{kind=\"viewer\"} %llu\n", (unsigned long long)c.viewers_now);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        metric(w, rows[i].name, rows[i].type, rows[i].help);
        put(w, "%s %llu\n", rows[i].name,
            (unsigned long long)*(const uint64_t *)((const char *)&c + rows[i].off));
    }
    metric(w, "sluice_webrtc_transcoders", "gauge",
           "Audio transcoders running now (to_aac: a WHIP publisher's Opus for RTMP/HLS/recording; "
           "to_opus: a stream's AAC for WHEP viewers).");
    put(w, "sluice_webrtc_transcoders{direction=\"to_aac\"} %llu\n", (unsigned long long)c.transcoders_to_aac);
    put(w, "sluice_webrtc_transcoders{direction=\"to_opus\"} %llu\n", (unsigned long long)c.transcoders_to_opus);
    metric(w, "sluice_webrtc_packets_total", "counter", "RTP packets by direction (in: decrypted, out: sent).");
    put(w, "sluice_webrtc_packets_total{direction=\"in\"} %llu\n", (unsigned long long)c.rtp_in);
    put(w, "sluice_webrtc_packets_total{direction=\"out\"} %llu\n", (unsigned long long)c.rtp_out);
    metric(w, "sluice_webrtc_bytes_total", "counter", "RTP bytes (before SRTP) by direction.");
    put(w, "sluice_webrtc_bytes_total{direction=\"in\"} %llu\n", (unsigned long long)c.rtp_bytes_in);
    put(w, "sluice_webrtc_bytes_total{direction=\"out\"} %llu\n", (unsigned long long)c.rtp_bytes_out);
    metric(w, "sluice_webrtc_datachannel_messages_total", "counter", "Data channel messages by direction.");
    put(w, "sluice_webrtc_datachannel_messages_total{direction=\"in\"} %llu\n", (unsigned long long)c.dc_messages_in);
    put(w, "sluice_webrtc_datachannel_messages_total{direction=\"out\"} %llu\n",
        (unsigned long long)c.dc_messages_out);
}

/* Per event loop (server.workers): the workers' own counters, read as
 * relaxed snapshots (net/workers.h); one loop when there is no pool. */
static void worker_metrics(sl_core_t *core, sl_wbuf_t *w)
{
    int n = sl_workers_count(core->workers);
    sl_worker_stats_t st[SL_WORKERS_MAX];
    memset(st, 0, sizeof st);
    for (int i = 0; core->workers && i < n; i++)
        sl_worker_stats(sl_workers_get(core->workers, i), &st[i]);
    metric(w, "sluice_event_loops", "gauge", "Event-loop threads (server.workers), the main loop included.");
    put(w, "sluice_event_loops %d\n", n);
    metric(w, "sluice_worker_players", "gauge", "Players whose writes run on each event loop, worker 0 being the main loop (counted with server.workers > 1).");
    for (int i = 0; i < n; i++)
        put(w, "sluice_worker_players{worker=\"%d\"} %lld\n", i, (long long)st[i].players);
    metric(w, "sluice_worker_load", "gauge", "Cost units on each event loop by which new players are placed: 1 per RTMP or HTTP-FLV player, 6 per WHEP viewer (4 on its worker and 2 on the main loop when offloaded).");
    for (int i = 0; i < n; i++)
        put(w, "sluice_worker_load{worker=\"%d\"} %lld\n", i, (long long)st[i].load);
    metric(w, "sluice_worker_messages_total", "counter", "Messages from other loops run on each event loop.");
    for (int i = 0; i < n; i++)
        put(w, "sluice_worker_messages_total{worker=\"%d\"} %llu\n", i, (unsigned long long)st[i].msgs);
    metric(w, "sluice_worker_wakeups_total", "counter", "Inbox wakeups of each event loop (a burst of messages is one).");
    for (int i = 0; i < n; i++)
        put(w, "sluice_worker_wakeups_total{worker=\"%d\"} %llu\n", i, (unsigned long long)st[i].wakeups);
    metric(w, "sluice_worker_inbox_depth", "gauge", "Messages waiting in each event loop's inbox.");
    for (int i = 0; i < n; i++)
        put(w, "sluice_worker_inbox_depth{worker=\"%d\"} %zu\n", i, st[i].inbox_depth);
    metric(w, "sluice_worker_posts_refused_total", "counter", "Messages refused because an event loop's inbox was full.");
    for (int i = 0; i < n; i++)
        put(w, "sluice_worker_posts_refused_total{worker=\"%d\"} %llu\n", i, (unsigned long long)st[i].posts_refused);
}

static long open_fds(void)
{
    long n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n > 2 ? n - 2 : 0;
}

int sl__api_metrics(sl_api_t *api, sl_http_req_t *req)
{
    sl_core_t *core = api->core;
    sl_wbuf_t w;
    sl_wbuf_init(&w, 4 * 1024 * 1024);

    /* connections by protocol and role */
    const char *protos[16];
    uint64_t counts[16] = {0};
    int n_protos = 0;
    uint64_t players = 0, publishers = 0, bin = 0, bout = 0, dropped = 0;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &core->sessions) {
        sl_session_t *s = sl_container_of(it, sl_session_t, link);
        int i;
        for (i = 0; i < n_protos && strcmp(protos[i], s->proto) != 0; i++)
            ;
        if (i == n_protos && n_protos < 16)
            protos[n_protos++] = s->proto;
        if (i < 16)
            counts[i]++;
        players += s->role == SL_ROLE_SUBSCRIBER;
        publishers += s->role == SL_ROLE_PUBLISHER;
        bin += s->bytes_in;
        bout += s->bytes_out;
        dropped += s->frames_dropped;
    }
    size_t live_streams = 0, pos = 0;
    sl_stream_t *st;
    while ((st = sl_hub_next(core->hub, &pos)))
        live_streams += st->publisher != NULL;

    metric(&w, "sluice_build_info", "gauge", "Build information.");
    put(&w, "sluice_build_info{version=\"%s\"} 1\n", SL_VERSION_STRING);
    metric(&w, "sluice_uptime_seconds", "gauge", "Seconds since start.");
    put(&w, "sluice_uptime_seconds %.3f\n", (double)(sl_time_wall_ms() - core->start_ms) / 1000.0);
    metric(&w, "sluice_connections", "gauge", "Open client connections by protocol.");
    for (int i = 0; i < n_protos; i++)
        put(&w, "sluice_connections{protocol=\"%s\"} %llu\n", protos[i], (unsigned long long)counts[i]);
    if (!n_protos)
        put(&w, "sluice_connections{protocol=\"rtmp\"} 0\n");
    metric(&w, "sluice_connections_total", "counter", "Client connections accepted since start.");
    put(&w, "sluice_connections_total %llu\n", (unsigned long long)core->total_sessions);
    metric(&w, "sluice_streams", "gauge", "Streams being published.");
    put(&w, "sluice_streams %zu\n", live_streams);
    metric(&w, "sluice_publishers", "gauge", "Clients publishing.");
    put(&w, "sluice_publishers %llu\n", (unsigned long long)publishers);
    metric(&w, "sluice_players", "gauge", "Clients playing (subscribers).");
    put(&w, "sluice_players %llu\n", (unsigned long long)players);
    metric(&w, "sluice_received_bytes_total", "counter", "Bytes received from clients.");
    put(&w, "sluice_received_bytes_total %llu\n", (unsigned long long)(core->closed_bytes_in + bin));
    metric(&w, "sluice_sent_bytes_total", "counter", "Bytes sent to clients.");
    put(&w, "sluice_sent_bytes_total %llu\n", (unsigned long long)(core->closed_bytes_out + bout));
    metric(&w, "sluice_dropped_frames_total", "counter", "Media frames dropped for slow players.");
    put(&w, "sluice_dropped_frames_total %llu\n", (unsigned long long)(core->closed_frames_dropped + dropped));
    metric(&w, "sluice_rtmp_partial_bytes", "gauge",
           "Bytes of half-received RTMP messages held now, all connections.");
    put(&w, "sluice_rtmp_partial_bytes %lld\n", (long long)core->rtmp_partial.used);
    metric(&w, "sluice_rtmp_partial_bytes_limit", "gauge",
           "Server-wide limit on half-received RTMP message bytes (rtmp.max_partial_bytes_total).");
    put(&w, "sluice_rtmp_partial_bytes_limit %lld\n", (long long)core->rtmp_partial.limit);
    metric(&w, "sluice_event_loop_lag_seconds", "gauge", "Event-loop lag measured by a 1 s timer (last sample).");
    put(&w, "sluice_event_loop_lag_seconds %.6f\n", api->loop_lag_ms / 1000.0);
    metric(&w, "sluice_event_loop_lag_max_seconds", "gauge", "Largest event-loop lag seen.");
    put(&w, "sluice_event_loop_lag_max_seconds %.6f\n", api->loop_lag_max_ms / 1000.0);
    metric(&w, "sluice_memory_allocated_bytes", "gauge", "Bytes allocated through sl_malloc.");
    put(&w, "sluice_memory_allocated_bytes %lld\n", (long long)sl_alloc_bytes());
    metric(&w, "sluice_memory_blocks", "gauge", "Blocks allocated through sl_malloc.");
    put(&w, "sluice_memory_blocks %lld\n", (long long)sl_alloc_blocks());
    metric(&w, "sluice_frames_alive", "gauge", "Media frames referenced (caches, queues, writes).");
    put(&w, "sluice_frames_alive %lld\n", (long long)sl_frame_count());
    metric(&w, "sluice_hls_sessions", "gauge",
           "HLS player sessions (no socket of their own: not counted in server.max_connections).");
    put(&w, "sluice_hls_sessions %zu\n", core->n_socketless);
    metric(&w, "sluice_event_watchers", "gauge", "Open event-stream WebSockets.");
    put(&w, "sluice_event_watchers %zu\n", api->n_watchers);
    metric(&w, "sluice_pending_connections", "gauge",
           "Connections without a complete HTTP request or accepted RTMP connect yet.");
    put(&w, "sluice_pending_connections %zu\n", core->n_pending);
    metric(&w, "sluice_budget_exceeded_total", "counter",
           "Peers refused or closed for going over a resource budget, by budget.");
    for (int b = 0; b < SL_BUDGET_COUNT; b++)
        put(&w, "sluice_budget_exceeded_total{budget=\"%s\"} %llu\n", sl_budget_name((sl_budget_t)b),
            (unsigned long long)core->budget_exceeded[b]);
    metric(&w, "sluice_api_auth_failures_total", "counter",
           "API requests refused with 401 (wrong or missing token).");
    put(&w, "sluice_api_auth_failures_total %llu\n", (unsigned long long)api->n_auth_failed);
    metric(&w, "sluice_api_auth_limited_total", "counter",
           "API requests refused with 429 (api.auth_fail_limit reached; right tokens are never refused).");
    put(&w, "sluice_api_auth_limited_total %llu\n", (unsigned long long)api->n_auth_limited);
    metric(&w, "sluice_api_auth_fail_addresses", "gauge",
           "Addresses (IPv6: /64) with failed token checks remembered (at most api.auth_fail_max_addresses).");
    put(&w, "sluice_api_auth_fail_addresses %zu\n", api->fails.n);
    metric(&w, "sluice_api_auth_fail_evicted_total", "counter",
           "Failure records forgotten early because the table was full.");
    put(&w, "sluice_api_auth_fail_evicted_total %llu\n", (unsigned long long)api->n_fail_evicted);

    webrtc_metrics(core, &w);
    worker_metrics(core, &w);
    srt_metrics(core, &w);
    cluster_metrics(core, &w);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    metric(&w, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
    put(&w, "process_cpu_seconds_total %.3f\n", cpu);
    long rss_pages = 0, size_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size_pages, &rss_pages) != 2)
            rss_pages = 0;
        fclose(f);
    }
    metric(&w, "process_resident_memory_bytes", "gauge", "Resident memory size.");
    put(&w, "process_resident_memory_bytes %ld\n", rss_pages * sysconf(_SC_PAGESIZE));
    metric(&w, "process_open_fds", "gauge", "Open file descriptors.");
    put(&w, "process_open_fds %ld\n", open_fds());
    metric(&w, "process_start_time_seconds", "gauge", "Start time since the Unix epoch.");
    put(&w, "process_start_time_seconds %.3f\n", (double)core->start_ms / 1000.0);

    int rc = sl_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", w.data, w.len, NULL);
    sl_wbuf_cleanup(&w);
    return rc;
}
