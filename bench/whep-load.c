/*
 * whep-load: a WHEP viewer load generator for bench/whep. N WebRTC viewers
 * in one libuv loop against one server, each doing what a browser does on
 * the wire and nothing more: POST an SDP offer (recvonly audio + video,
 * Opus and H.264, our ICE ufrag/pwd and DTLS fingerprint, a=setup:active),
 * ICE connectivity checks (STUN binding requests with USE-CANDIDATE and
 * MESSAGE-INTEGRITY, as the controlling agent, to the answer's UDP host
 * candidate; repeated every 2 s afterwards as consent), DTLS 1.2 as the
 * client (src/net/dtls.c), then SRTP/SRTCP unprotect (src/net/srtp.c) of
 * every packet received. Nothing is decoded.
 *
 *   whep-load -n N [--rate SESSIONS_PER_S] [--seconds S] [--settle S]
 *             [--pid SERVER_PID] [--latency-only] URL
 *
 * URL is the WHEP endpoint, e.g.
 * http://127.0.0.1:8080/live/whep/endpoint/stream. Sessions are created at
 * --rate per second (signalling is a libcurl POST in libuv's thread pool,
 * four at a time, so a slow server never stalls the loop: consent checks,
 * ICE retransmissions with backoff from 100 ms to 1.6 s, and socket reads go
 * on); when all have media (or 15 s after its answer a session has failed)
 * the tool waits --settle seconds, then measures for
 * --seconds and prints one JSON object:
 *   sessions / media       sessions created, sessions that received SRTP
 *   mbps                   SRTP bytes (UDP payload) received by all sessions
 *                          over the window, in Mbit/s
 *   loss_pct               RTP sequence gaps over the window, per SSRC:
 *                          (expected - received) / expected
 *   auth_fail              packets libsrtp refused (should be 0)
 *   server_cpu_s           utime + stime of --pid over the window
 *                          (/proc/PID/stat), and cpu_s_per_gbit
 *   lag_ms p50/p95/p99     glass-to-glass without decoding, when the
 *                          publisher is sluice-bench (RTMP): it puts an
 *                          H.264 SEI NAL unit (user data unregistered,
 *                          UUID "sluice-bench-lag") with the wall-clock
 *                          send time in front of every video frame; the
 *                          server forwards it inside the RTP payload
 *                          (single NAL, STAP-A or the first FU-A fragment)
 *                          and every viewer computes now - send time
 *                          for frames sent after it joined, in the window
 *   tool_cpu_s             this process's own CPU over the window
 *   udp_rcvbuf_errors      the machine's UDP RcvbufErrors / SndbufErrors over
 *   udp_sndbuf_errors      the window (/proc/net/snmp; every process counts):
 *                          whether loss happened in a socket buffer
 * --sample K (K > 1): only sessions with index % K == 0 unprotect their SRTP
 * (lag, auth failures); the others count bytes and read the sequence numbers
 * from the RTP header, which SRTP leaves in clear, so loss is still seen on
 * every session. The decryption was most of the tool's cost, and on a small
 * machine the tool shares the cores with the server it measures.
 * Nothing is asserted; the exit status is 0 when every session got media.
 *
 * Not part of sluice: a bench tool, built only on request (CMake target
 * whep-load). It links sluice_core for the DTLS, SRTP and STUN code.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/alloc.h"
#include "media/rtp.h"
#include "media/rtp_h264.h"
#include "net/dtls.h"
#include "net/srtp.h"
#include "proto/webrtc/stun.h"

#define MAX_SSRC 4
#define HIST_BINS 100000        /* 0.1 ms bins, 0 .. 10 s */
#define SEI_UUID "sluice-bench-lag"
#define SEI_PAYLOAD 48
#define SEI_NAL_LEN (3 + SEI_PAYLOAD + 1)
#define STUN_RETRY_MS 100      /* first ICE retransmission; doubles up to STUN_RETRY_MAX_MS */
#define STUN_RETRY_MAX_MS 1600
#define CONSENT_MS 2000
#define SETUP_TIMEOUT_MS 15000

enum { ST_SIGNAL, ST_ICE, ST_DTLS, ST_MEDIA, ST_FAILED };

typedef struct {
    uint32_t ssrc;
    int64_t max;                /* extended highest sequence number */
} ssrc_t;

typedef struct sess {
    int idx;
    int state;
    uv_udp_t udp;
    struct sockaddr_in peer;
    char lufrag[9], lpwd[25];
    char rufrag[256], rpwd[256], rfp[160], username[520];
    uint64_t created_ms, next_stun_ms;
    uint64_t answered_ms;       /* signalling done: the setup timeout counts from here */
    uint64_t stun_retry_ms;     /* current ICE retransmission interval */
    uv_work_t work;             /* signalling, off the loop (libuv's thread pool) */
    int signal_rc;
    uint64_t media_wall_us;     /* wall clock when the first SRTP packet came */
    sl_dtls_t *dtls;
    sl_srtp_t *srtp;
    ssrc_t ssrc[MAX_SSRC];
    int n_ssrc;
    int pub;                    /* the WHIP publisher (--whip), not a viewer */
    uint64_t bytes, bytes0;     /* SRTP bytes received; at the window's start */
    uint64_t last_rx_ms;        /* last SRTP packet received (mono ms) */
    uint64_t last_stun_ok_ms;   /* last binding success from the server (mono ms) */
    uint64_t consent_sent;      /* binding requests sent after ICE */
} sess_t;

static struct {
    uint64_t bytes, pkts, rtcp, auth_fail, expected, received, sei;
} tot;

static sl_dtls_ctx_t *g_ctx;
static uv_loop_t *g_loop;
static sess_t *g_sess;
static int g_n, g_created, g_media, g_failed;
static double g_rate = 200;
static double g_seconds = 10, g_settle = 2;
static int g_pid;
static const char *g_url;
static char g_peer_ip[64];
static uv_timer_t g_tick, g_spawn, g_phase;
static int g_measuring;
static uint32_t *g_hist;
static uint64_t g_hist_n;
static const sl_dtls_ops_t g_dtls_ops;

/* --whip: one publisher session sending an FLV's H.264 with our SEI stamps. */
static const char *g_whip_url, *g_flv_path;
static sess_t g_pubs;
static uv_timer_t g_pace;
typedef struct {
    uint32_t ts;                /* FLV timestamp, ms */
    int key;
    const uint8_t *data;        /* AVCC NAL units (after the 5-byte AVC header) */
    size_t len;
} vtag_t;
static uint8_t *g_flv;
static vtag_t *g_tags;
static size_t g_ntags, g_next_tag;
static const uint8_t *g_avcc;   /* AVCDecoderConfigurationRecord */
static size_t g_avcc_len;
static int g_nal_len = 4;
static uint64_t g_pub_t0, g_loops, g_span_ms, g_sei_seq, g_pub_frames;
static uint16_t g_pub_seq;
static uint32_t g_pub_ssrc;
static uint64_t g_spawn_every = 1;
static int g_sample = 1;        /* --sample: 1 session in K unprotects */
static int g_janus;             /* --janus: the URL is Janus's HTTP API, mountpoint g_mount */
static long g_mount = 1;
static void on_spawn(uv_timer_t *t);
static void on_pace(uv_timer_t *t);

static uint64_t mono_ms(void) { return uv_hrtime() / 1000000u; }

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static double proc_cpu_s(int pid)
{
    if (pid <= 0)
        return 0;
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long ut = 0, st = 0;
    /* After ") ": state(3) ... utime is field 14, stime 15. */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The machine's UDP RcvbufErrors and SndbufErrors (/proc/net/snmp): drops in socket buffers. */
static void udp_buf_errors(uint64_t *rcv, uint64_t *snd)
{
    *rcv = *snd = 0;
    FILE *f = fopen("/proc/net/snmp", "r");
    if (!f)
        return;
    char line[1024];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "Udp: ", 5) != 0)
            continue;
        if (!seen++)
            continue;            /* the header line */
        unsigned long long v[6] = {0};
        if (sscanf(line + 5, "%llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5]) == 6) {
            *rcv = v[4];
            *snd = v[5];
        }
        break;
    }
    fclose(f);
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ---- signalling ---------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} growbuf_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    growbuf_t *b = ud;
    size_t add = sz * n;
    if (b->len + add + 1 > 262144)
        return 0;
    if (b->len + add + 1 > b->cap) {
        size_t cap = (b->len + add + 1) * 2;
        char *q = sl_realloc(b->p, cap);
        if (!q)
            return 0;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, add);
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

/* Copies the value of the first SDP line starting with prefix (to CR/LF). */
static int sdp_attr(const char *sdp, const char *prefix, char *out, size_t cap)
{
    const char *p = strstr(sdp, prefix);
    if (!p)
        return -1;
    p += strlen(prefix);
    size_t n = strcspn(p, "\r\n");
    if (n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static int make_offer(const sess_t *s, char *out, size_t cap)
{
    const char *fp = sl_dtls_ctx_fingerprint(g_ctx);
    if (s->pub) {
        int n = snprintf(out, cap,
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
            "a=msid-semantic: WMS whepload\r\n"
            "m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
            "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:sha-256 %s\r\na=setup:active\r\n"
            "a=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=msid:whepload v0\r\n"
            "a=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack\r\na=rtcp-fb:102 nack pli\r\n"
            "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=%02x%02x%02x\r\n"
            "a=ssrc:%u cname:whepload\r\n",
            s->lufrag, s->lpwd, fp, g_avcc[1], g_avcc[2], g_avcc[3], g_pub_ssrc);
        return n > 0 && (size_t)n < cap ? 0 : -1;
    }
    int n = snprintf(out, cap,
        "v=0\r\no=- %d 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        "a=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
        "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:sha-256 %s\r\na=setup:active\r\n"
        "a=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n"
        "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 102 106 112 127\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
        "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:sha-256 %s\r\na=setup:active\r\n"
        "a=mid:1\r\na=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\n"
        "a=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack\r\na=rtcp-fb:102 nack pli\r\n"
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
        "a=rtpmap:106 H264/90000\r\na=rtcp-fb:106 nack\r\na=rtcp-fb:106 nack pli\r\n"
        "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f\r\n"
        "a=rtpmap:112 H264/90000\r\na=rtcp-fb:112 nack\r\na=rtcp-fb:112 nack pli\r\n"
        "a=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f\r\n"
        "a=rtpmap:127 H264/90000\r\na=rtcp-fb:127 nack\r\na=rtcp-fb:127 nack pli\r\n"
        "a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n",
        s->idx + 1, s->lufrag, s->lpwd, fp, s->lufrag, s->lpwd, fp);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* POSTs the offer; fills the remote ICE credentials, fingerprint and candidate. */
static int whep_signal(sess_t *s, const char *url)
{
    char offer[4096];
    if (make_offer(s, offer, sizeof offer) != 0)
        return -1;
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    growbuf_t body = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/sdp");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, offer);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    int ret = -1;
    char cand[512], fp[200];
    if (rc != CURLE_OK || status != 201 || !body.p) {
        fprintf(stderr, "whep-load: session %d: POST: curl %d, HTTP %ld: %.200s\n", s->idx, (int)rc,
                status, body.p ? body.p : "");
        goto out;
    }
    if (sdp_attr(body.p, "a=ice-ufrag:", s->rufrag, sizeof s->rufrag) != 0 ||
        sdp_attr(body.p, "a=ice-pwd:", s->rpwd, sizeof s->rpwd) != 0 ||
        sdp_attr(body.p, "a=fingerprint:sha-256 ", fp, sizeof fp) != 0 || strlen(fp) >= sizeof s->rfp)
        goto out;
    strcpy(s->rfp, fp);
    /* The first UDP candidate: a=candidate:F 1 udp PRIO IP PORT typ host */
    const char *p = body.p;
    while ((p = strstr(p, "a=candidate:")) != NULL) {
        if (sdp_attr(p, "a=candidate:", cand, sizeof cand) != 0)
            goto out;
        char found[64], proto[8];
        unsigned comp, port;
        unsigned long prio;
        if (sscanf(cand, "%*s %u %7s %lu %63s %u", &comp, proto, &prio, found, &port) == 5 &&
            (strcmp(proto, "udp") == 0 || strcmp(proto, "UDP") == 0) && port < 65536) {
            if (g_peer_ip[0])
                snprintf(found, sizeof found, "%s", g_peer_ip);
            if (uv_ip4_addr(found, (int)port, &s->peer) == 0) {
                ret = 0;
                break;
            }
        }
        p += 12;
    }
    if (ret != 0)
        fprintf(stderr, "whep-load: session %d: no usable UDP candidate in the answer\n", s->idx);
    snprintf(s->username, sizeof s->username, "%s:%s", s->rufrag, s->lufrag);
out:
    sl_free(body.p);
    return ret;
}

/* ---- Janus (streaming plugin) signalling --------------------------------- */

/* One Janus API request (POST body, or GET when body is NULL); returns the parsed reply. */
static json_t *janus_req(const char *url, const char *body)
{
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    growbuf_t b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    json_t *j = rc == CURLE_OK && b.p ? json_loads(b.p, 0, NULL) : NULL;
    sl_free(b.p);
    return j;
}

static long long janus_id(json_t *j)
{
    json_t *d = json_object_get(j, "data");
    return d ? (long long)json_integer_value(json_object_get(d, "id")) : 0;
}

/*
 * Builds the answer to a Janus offer: every m-line mirrored recvonly with
 * the offer's mid and codecs (rtpmap/fmtp/rtcp-fb lines copied), our ICE
 * credentials, fingerprint, setup:active and our host candidate.
 */
static int janus_answer(const sess_t *s, const char *offer, const char *ip, int port, char *out,
                        size_t cap)
{
    size_t o = 0;
    const char *fp = sl_dtls_ctx_fingerprint(g_ctx);
    int n = snprintf(out, cap, "v=0\r\no=- %d 2 IN IP4 %s\r\ns=-\r\nt=0 0\r\n", s->idx + 1, ip);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    o = (size_t)n;
    char group[256];
    if (sdp_attr(offer, "a=group:", group, sizeof group) == 0) {
        n = snprintf(out + o, cap - o, "a=group:%s\r\n", group);
        o += (size_t)n;
    }
    const char *m = strstr(offer, "\nm=");
    while (m && o < cap) {
        m++;
        const char *next = strstr(m, "\nm=");
        size_t seclen = next ? (size_t)(next - m) : strlen(m);
        char line[1024];
        /* The m-line itself, with our port 9. */
        size_t l = strcspn(m, "\r\n");
        if (l >= sizeof line)
            return -1;
        memcpy(line, m, l);
        line[l] = '\0';
        char kind[16];
        const char *pts = strstr(line, "SAVPF ");
        if (sscanf(line, "m=%15s", kind) != 1 || !pts)
            return -1;
        n = snprintf(out + o, cap - o,
                     "m=%s 9 UDP/TLS/RTP/SAVPF %s\r\nc=IN IP4 %s\r\na=recvonly\r\na=rtcp-mux\r\n"
                     "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:sha-256 %s\r\na=setup:active\r\n"
                     "a=candidate:1 1 udp 2130706431 %s %d typ host\r\na=end-of-candidates\r\n",
                     kind, pts + 6, ip, s->lufrag, s->lpwd, fp, ip, port);
        if (n < 0 || (size_t)n >= cap - o)
            return -1;
        o += (size_t)n;
        /* Copy a=mid, a=rtpmap, a=fmtp, a=rtcp-fb lines of this section. */
        const char *p = m;
        while (p < m + seclen) {
            l = strcspn(p, "\r\n");
            if (l < sizeof line &&
                (strncmp(p, "a=mid:", 6) == 0 || strncmp(p, "a=rtpmap:", 9) == 0 ||
                 strncmp(p, "a=fmtp:", 7) == 0 || strncmp(p, "a=rtcp-fb:", 10) == 0)) {
                if (o + l + 3 > cap)
                    return -1;
                memcpy(out + o, p, l);
                o += l;
                memcpy(out + o, "\r\n", 2);
                o += 2;
            }
            p += l;
            while (p < m + seclen && (*p == '\r' || *p == '\n'))
                p++;
        }
        m = next;
    }
    if (o >= cap)
        return -1;
    out[o] = '\0';
    return 0;
}

/* create, attach streaming, watch, take the offer, answer with start. */
static int janus_signal(sess_t *s)
{
    char url[512], body[16384], answer[8192];
    int ret = -1;
    json_t *j = janus_req(g_url, "{\"janus\":\"create\",\"transaction\":\"c\"}");
    long long sid = janus_id(j), hid;
    json_decref(j);
    if (!sid)
        return -1;
    snprintf(url, sizeof url, "%s/%lld", g_url, sid);
    j = janus_req(url, "{\"janus\":\"attach\",\"plugin\":\"janus.plugin.streaming\",\"transaction\":\"a\"}");
    hid = janus_id(j);
    json_decref(j);
    if (!hid)
        return -1;
    snprintf(url, sizeof url, "%s/%lld/%lld", g_url, sid, hid);
    snprintf(body, sizeof body,
             "{\"janus\":\"message\",\"body\":{\"request\":\"watch\",\"id\":%ld},\"transaction\":\"w\"}",
             g_mount);
    json_decref(janus_req(url, body));
    /* The offer comes as an event on the session's long poll. */
    snprintf(url, sizeof url, "%s/%lld?maxev=1", g_url, sid);
    const char *sdp = NULL;
    json_t *ev = NULL;
    for (int tries = 0; tries < 5 && !sdp; tries++) {
        json_decref(ev);
        ev = janus_req(url, NULL);
        json_t *jsep = json_object_get(ev, "jsep");
        sdp = jsep ? json_string_value(json_object_get(jsep, "sdp")) : NULL;
    }
    if (!sdp) {
        fprintf(stderr, "whep-load: session %d: no offer from Janus\n", s->idx);
        goto out;
    }
    char fp[200], cand[512];
    if (sdp_attr(sdp, "a=ice-ufrag:", s->rufrag, sizeof s->rufrag) != 0 ||
        sdp_attr(sdp, "a=ice-pwd:", s->rpwd, sizeof s->rpwd) != 0 ||
        sdp_attr(sdp, "a=fingerprint:sha-256 ", fp, sizeof fp) != 0 || strlen(fp) >= sizeof s->rfp)
        goto out;
    strcpy(s->rfp, fp);
    /* The first IPv4 UDP candidate. */
    const char *p = sdp;
    int found = 0;
    while (!found && (p = strstr(p, "a=candidate:")) != NULL) {
        if (sdp_attr(p, "a=candidate:", cand, sizeof cand) != 0)
            break;
        char ip[64], proto[8];
        unsigned comp, port;
        unsigned long prio;
        if (sscanf(cand, "%*s %u %7s %lu %63s %u", &comp, proto, &prio, ip, &port) == 5 &&
            strcmp(proto, "udp") == 0 && !strchr(ip, ':')) {
            if (g_peer_ip[0])
                snprintf(ip, sizeof ip, "%s", g_peer_ip);
            found = uv_ip4_addr(ip, (int)port, &s->peer) == 0;
        }
        p += 12;
    }
    if (!found)
        goto out;
    struct sockaddr_in me;
    int mlen = sizeof me;
    uv_udp_getsockname(&s->udp, (struct sockaddr *)&me, &mlen);
    char peer_ip[64];
    uv_ip4_name(&s->peer, peer_ip, sizeof peer_ip);
    if (janus_answer(s, sdp, peer_ip, ntohs(me.sin_port), answer, sizeof answer) != 0)
        goto out;
    json_t *msg = json_pack("{s:s, s:{s:s}, s:{s:s, s:s}, s:s}", "janus", "message", "body", "request",
                            "start", "jsep", "type", "answer", "sdp", answer, "transaction", "s");
    char *txt = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    snprintf(url, sizeof url, "%s/%lld/%lld", g_url, sid, hid);
    json_decref(janus_req(url, txt));
    free(txt);
    json_decref(janus_req(url, "{\"janus\":\"trickle\",\"candidate\":{\"completed\":true},\"transaction\":\"t\"}"));
    snprintf(s->username, sizeof s->username, "%s:%s", s->rufrag, s->lufrag);
    ret = 0;
out:
    json_decref(ev);
    return ret;
}

/* ---- per packet ---------------------------------------------------------- */

static uint64_t g_send_errors;     /* uv_udp_try_send refusals (all sessions) */
static uint64_t g_stall_max_ms, g_stalls, g_stall_total_ms; /* gaps between ticks > 1 s */
static uint64_t g_last_tick_ms;

static void send_dgram(sess_t *s, const uint8_t *p, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    if (uv_udp_try_send(&s->udp, &b, 1, NULL) < 0)
        g_send_errors++;
}

static void send_stun(sess_t *s)
{
    uint8_t out[SL_STUN_MAX_MSG], tid[12];
    for (int i = 0; i < 12; i++)
        tid[i] = (uint8_t)rand();
    int n = sl_stun_build_binding_request(out, sizeof out, tid, s->username,
                                          sl_ice_priority(126, 65535, 1), 1, 1,
                                          ((uint64_t)rand() << 32) | (uint64_t)rand(),
                                          (const uint8_t *)s->rpwd, strlen(s->rpwd));
    if (n > 0)
        send_dgram(s, out, (size_t)n);
}

static void fail(sess_t *s, const char *why)
{
    if (s->state == ST_FAILED)
        return;
    fprintf(stderr, "whep-load: session %d failed: %s\n", s->idx, why);
    s->state = ST_FAILED;
    if (s->pub) {
        uv_stop(g_loop);
        return;
    }
    g_failed++;
}

static void hist_add(double ms)
{
    long b = (long)(ms * 10);
    if (b < 0)
        b = 0;
    if (b >= HIST_BINS)
        b = HIST_BINS - 1;
    g_hist[b]++;
    g_hist_n++;
}

static double hist_pct(double q)
{
    if (!g_hist_n)
        return -1;
    uint64_t want = (uint64_t)(q * (double)(g_hist_n - 1)) + 1, acc = 0;
    for (int i = 0; i < HIST_BINS; i++) {
        acc += g_hist[i];
        if (acc >= want)
            return i / 10.0 + 0.05;
    }
    return HIST_BINS / 10.0;
}

/* One NAL unit (header byte first): our SEI? Records its lag. */
static void check_sei(sess_t *s, const uint8_t *p, size_t n, uint64_t now)
{
    if (n < SEI_NAL_LEN || (p[0] & 0x1f) != 6 || p[1] != 5 || p[2] != SEI_PAYLOAD ||
        memcmp(p + 3, SEI_UUID, 16) != 0)
        return;
    char hex[17];
    memcpy(hex, p + 35, 16);
    hex[16] = '\0';
    uint64_t sent = strtoull(hex, NULL, 16);
    tot.sei++;
    if (g_measuring && sent >= s->media_wall_us)
        hist_add(((double)now - (double)sent) / 1000.0);
}

static void scan_h264(sess_t *s, const uint8_t *p, size_t n)
{
    if (n < 2)
        return;
    int type = p[0] & 0x1f;
    if (type == 6) {
        check_sei(s, p, n, wall_us());
    } else if (type == 24) {             /* STAP-A */
        size_t o = 1;
        while (o + 2 <= n) {
            size_t l = (size_t)p[o] << 8 | p[o + 1];
            o += 2;
            if (l > n - o)
                break;
            check_sei(s, p + o, l, wall_us());
            o += l;
        }
    } else if (type == 28 && (p[1] & 0x80) && (p[1] & 0x1f) == 6 && n > SEI_NAL_LEN + 1) {
        uint8_t tmp[SEI_NAL_LEN];        /* FU-A start of an SEI */
        tmp[0] = (uint8_t)((p[0] & 0xe0) | 6);
        memcpy(tmp + 1, p + 2, SEI_NAL_LEN - 1);
        check_sei(s, tmp, SEI_NAL_LEN, wall_us());
    }
}

static void on_rtp(sess_t *s, uint8_t *p, size_t len)
{
    size_t wire = len;
    int decrypt = g_sample <= 1 || s->idx % g_sample == 0;
    if (decrypt && sl_srtp_unprotect(s->srtp, p, &len) != 0) {
        tot.auth_fail++;
        return;
    }
    if (!s->media_wall_us)
        s->media_wall_us = wall_us();
    sl_rtp_hdr_t h;
    if (sl_rtp_parse(p, len, &h) != 0)
        return;
    tot.bytes += wire;
    s->bytes += wire;
    s->last_rx_ms = mono_ms();
    tot.pkts++;
    ssrc_t *st = NULL;
    for (int i = 0; i < s->n_ssrc; i++)
        if (s->ssrc[i].ssrc == h.ssrc)
            st = &s->ssrc[i];
    if (!st && s->n_ssrc < MAX_SSRC) {
        st = &s->ssrc[s->n_ssrc++];
        st->ssrc = h.ssrc;
        st->max = h.seq;
        tot.expected++;
    } else if (st) {
        int16_t d = (int16_t)(h.seq - (uint16_t)st->max);
        if (d > 0) {
            st->max += d;
            tot.expected += (uint64_t)d;
        }
    }
    tot.received++;
    if (decrypt && h.payload_len && h.pt != 111)
        scan_h264(s, h.payload, h.payload_len);
}

static void on_udp(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                   unsigned flags)
{
    sess_t *s = u->data;
    (void)addr;
    (void)flags;
    if (nread <= 0)
        return;
    uint8_t *p = (uint8_t *)buf->base;
    size_t len = (size_t)nread;
    switch (sl_webrtc_classify(p, len)) {
    case SL_PKT_STUN: {
        sl_stun_msg_t m;
        if (sl_stun_parse(p, len, &m) != 0)
            break;
        if (m.type == SL_STUN_BINDING_REQUEST) {
            /* A full ICE peer (Janus without ice_lite) checks us too. */
            uint8_t out[128];
            int n = sl_stun_build_binding_success(out, sizeof out, m.tid, addr ? addr : (const struct sockaddr *)&s->peer,
                                                  (const uint8_t *)s->lpwd, strlen(s->lpwd));
            if (n > 0)
                send_dgram(s, out, (size_t)n);
            break;
        }
        if (m.type == SL_STUN_BINDING_SUCCESS)
            s->last_stun_ok_ms = mono_ms();
        if (m.type == SL_STUN_BINDING_SUCCESS && s->state == ST_ICE) {
            s->state = ST_DTLS;
            if (sl_dtls_new(g_ctx, 0, "sha-256", s->rfp, &g_dtls_ops, s, &s->dtls) != 0 ||
                sl_dtls_start(s->dtls) != 0)
                fail(s, "DTLS start");
        }
        break;
    }
    case SL_PKT_DTLS:
        if (s->dtls)
            sl_dtls_feed(s->dtls, p, len);
        break;
    case SL_PKT_RTP:
        if (s->srtp && !s->pub)
            on_rtp(s, p, len);
        break;
    case SL_PKT_RTCP:
        if (s->srtp && !s->pub) {
            if (sl_srtp_unprotect_rtcp(s->srtp, p, &len) == 0)
                tot.rtcp++;
            else
                tot.auth_fail++;
        }
        break;
    default:
        break;
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static uint8_t rx[65536];
    (void)h;
    (void)hint;
    *buf = uv_buf_init((char *)rx, sizeof rx);
}

static void dtls_send(void *ud, const uint8_t *p, size_t len) { send_dgram(ud, p, len); }

static void dtls_connected(void *ud, const sl_srtp_keys_t *keys)
{
    sess_t *s = ud;
    if (sl_srtp_new(keys, &s->srtp) != 0) {
        fail(s, "SRTP keys");
        return;
    }
    s->state = ST_MEDIA;
    if (s->pub) {
        fprintf(stderr, "whep-load: WHIP publisher connected; viewers start in 2 s\n");
        g_pub_t0 = mono_ms();
        uv_timer_start(&g_pace, on_pace, 0, 5);
        uv_timer_start(&g_spawn, on_spawn, 2000, g_spawn_every);
        return;
    }
    g_media++;
}

static void dtls_data(void *ud, const uint8_t *p, size_t len)
{
    (void)ud;
    (void)p;
    (void)len;
}

static void dtls_closed(void *ud, const char *why) { fail(ud, why); }

static const sl_dtls_ops_t g_dtls_ops = {dtls_send, dtls_connected, dtls_data, dtls_closed};

/* ---- timers -------------------------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
    (void)t;
    uint64_t now = mono_ms();
    if (g_last_tick_ms && now - g_last_tick_ms > 1000) {
        g_stalls++;
        g_stall_total_ms += now - g_last_tick_ms;
        if (now - g_last_tick_ms > g_stall_max_ms)
            g_stall_max_ms = now - g_last_tick_ms;
        fprintf(stderr, "whep-load: loop stalled %" PRIu64 " ms (%d sessions created)\n", now - g_last_tick_ms,
                g_created);
    }
    g_last_tick_ms = now;
    for (int i = g_whip_url ? -1 : 0; i < g_created; i++) {
        sess_t *s = i < 0 ? &g_pubs : &g_sess[i];
        if (s->state == ST_FAILED || s->state == ST_SIGNAL)
            continue;
        if (s->state != ST_MEDIA && now - s->answered_ms > SETUP_TIMEOUT_MS) {
            fail(s, s->state == ST_ICE ? "ICE timeout" : "DTLS timeout");
            continue;
        }
        if (now >= s->next_stun_ms) {
            send_stun(s);
            if (s->state != ST_ICE)
                s->consent_sent++;
            if (s->state == ST_ICE) {
                /* Retransmissions back off (RFC 8489 6.2.1), as a browser's do: a fixed
                   50 ms retry from hundreds of sessions floods a server that is behind. */
                s->next_stun_ms = now + s->stun_retry_ms;
                if (s->stun_retry_ms < STUN_RETRY_MAX_MS)
                    s->stun_retry_ms *= 2;
            } else {
                s->next_stun_ms = now + CONSENT_MS;
            }
        }
        if (s->state == ST_DTLS && s->dtls && sl_dtls_timeout_ms(s->dtls) == 0)
            sl_dtls_on_timeout(s->dtls);
    }
}

static void start_window(uv_timer_t *t);

/* Sends one access unit as RTP: our SEI NAL first, then the frame's NAL units. */
static void pub_send_frame(const vtag_t *v, uint32_t ts_ms)
{
    static uint8_t au[4 * 1024 * 1024];
    size_t o = 0;
    if (v->len + 64 > sizeof au)
        return;
    for (int i = g_nal_len - 1; i >= 0; i--)
        au[o++] = (uint8_t)(SEI_NAL_LEN >> (8 * i));
    au[o++] = 0x06;
    au[o++] = 0x05;
    au[o++] = SEI_PAYLOAD;
    memcpy(au + o, SEI_UUID, 16);
    o += 16;
    char hex[33];
    snprintf(hex, sizeof hex, "%016" PRIx64 "%016" PRIx64, g_sei_seq++, wall_us());
    memcpy(au + o, hex, 32);
    o += 32;
    au[o++] = 0x80;
    memcpy(au + o, v->data, v->len);
    o += v->len;
    sl_rtp_payloads_t pl;
    if (sl_h264_packetize(au, o, g_nal_len, g_avcc, g_avcc_len, v->key, 1200, &pl) != 0)
        return;
    for (uint32_t i = 0; i < pl.n; i++) {
        uint8_t pkt[1500];
        int h = sl_rtp_write_hdr(pkt, sizeof pkt, pl.pkts[i].marker, 102, g_pub_seq++, ts_ms * 90u,
                                 g_pub_ssrc, NULL);
        if (h < 0 || (size_t)h + pl.pkts[i].len + SL_SRTP_MAX_TRAILER > sizeof pkt)
            continue;
        memcpy(pkt + h, pl.buf->data + pl.pkts[i].off, pl.pkts[i].len);
        size_t len = (size_t)h + pl.pkts[i].len;
        if (sl_srtp_protect(g_pubs.srtp, pkt, &len, sizeof pkt) == 0)
            send_dgram(&g_pubs, pkt, len);
    }
    sl_rtp_payloads_release(&pl);
    g_pub_frames++;
}

/* Paces the FLV's video in real time, looping (timestamps keep rising). */
static void on_pace(uv_timer_t *t)
{
    (void)t;
    if (g_pubs.state != ST_MEDIA)
        return;
    uint64_t el = mono_ms() - g_pub_t0;
    for (int guard = 0; guard < 64; guard++) {
        const vtag_t *v = &g_tags[g_next_tag];
        uint64_t ts = g_loops * g_span_ms + v->ts;
        if (ts > el)
            break;
        pub_send_frame(v, (uint32_t)ts);
        if (++g_next_tag == g_ntags) {
            g_next_tag = 0;
            g_loops++;
        }
    }
}

/* Reads the FLV's H.264 video: the config record and every coded frame. */
static int load_flv(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (sz < 13 || sz > (1L << 30) || !(g_flv = sl_malloc((size_t)sz)) ||
        fread(g_flv, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        return -1;
    }
    fclose(f);
    size_t n = (size_t)sz, o = 13, cap = 0;
    while (o + 11 <= n) {
        uint8_t type = g_flv[o] & 0x1f;
        size_t len = (size_t)g_flv[o + 1] << 16 | (size_t)g_flv[o + 2] << 8 | g_flv[o + 3];
        uint32_t ts = (uint32_t)g_flv[o + 4] << 16 | (uint32_t)g_flv[o + 5] << 8 | g_flv[o + 6] |
                      (uint32_t)g_flv[o + 7] << 24;
        const uint8_t *b = g_flv + o + 11;
        if (o + 11 + len + 4 > n)
            break;
        if (type == 9 && len > 5 && (b[0] & 0x0f) == 7) {
            if (b[1] == 0 && !g_avcc && len > 10) {
                g_avcc = b + 5;
                g_avcc_len = len - 5;
                g_nal_len = (g_avcc[4] & 3) + 1;
            } else if (b[1] == 1) {
                if (g_ntags == cap) {
                    cap = cap ? cap * 2 : 1024;
                    vtag_t *nt = sl_realloc(g_tags, cap * sizeof *nt);
                    if (!nt)
                        return -1;
                    g_tags = nt;
                }
                g_tags[g_ntags++] = (vtag_t){ts, (b[0] >> 4) == 1, b + 5, len - 5};
            }
        }
        o += 11 + len + 4;
    }
    if (!g_avcc || !g_ntags)
        return -1;
    g_span_ms = g_tags[g_ntags - 1].ts - g_tags[0].ts + 33;
    for (size_t i = 1; i < g_ntags; i++)
        g_tags[i].ts -= g_tags[0].ts;
    g_tags[0].ts = 0;
    return 0;
}

/* Signalling runs in libuv's thread pool (curl blocks): the loop keeps reading the
   sockets, answering and sending consent checks while a POST waits for a slow server.
   A blocking POST on the loop stalled every session for seconds at a time at N = 400. */
static void signal_work(uv_work_t *w)
{
    sess_t *s = w->data;
    s->signal_rc = g_janus ? janus_signal(s) : whep_signal(s, g_url);
    s->answered_ms = mono_ms();
}

static uint64_t g_signal_max_ms;   /* longest signalling, queue wait included */

static void signal_done(uv_work_t *w, int status)
{
    sess_t *s = w->data;
    if (s->answered_ms - s->created_ms > g_signal_max_ms)
        g_signal_max_ms = s->answered_ms - s->created_ms;
    if (status != 0 || s->signal_rc != 0) {
        fail(s, "signalling");
        return;
    }
    s->answered_ms = mono_ms();
    s->state = ST_ICE;
    uv_udp_connect(&s->udp, (const struct sockaddr *)&s->peer);
    uv_udp_recv_start(&s->udp, on_alloc, on_udp);
    s->stun_retry_ms = STUN_RETRY_MS;
    send_stun(s);
    s->next_stun_ms = mono_ms() + s->stun_retry_ms;
}

static void on_spawn(uv_timer_t *t)
{
    if (g_created >= g_n) {
        uv_timer_stop(t);
        return;
    }
    sess_t *s = &g_sess[g_created];
    s->idx = g_created;
    s->created_ms = mono_ms();
    s->state = ST_SIGNAL;
    sl_ice_credentials(s->lufrag, s->lpwd);
    uv_udp_init(g_loop, &s->udp);
    s->udp.data = s;
    struct sockaddr_in any;
    /* Janus announces only its interfaces' addresses (never loopback): bind any. */
    uv_ip4_addr(g_janus ? "0.0.0.0" : "127.0.0.1", 0, &any);
    uv_udp_bind(&s->udp, (const struct sockaddr *)&any, 0);
    int big = 1 << 20;
    uv_recv_buffer_size((uv_handle_t *)&s->udp, &big);
    g_created++;
    s->work.data = s;
    if (uv_queue_work(g_loop, &s->work, signal_work, signal_done) != 0)
        fail(s, "signalling");
}

static double g_cpu0, g_self0, g_t0;
static uint64_t g_bytes0, g_pkts0, g_exp0, g_rcv0, g_fail0, g_rbe0, g_sbe0;

static void end_window(uv_timer_t *t)
{
    double dt = (double)(uv_hrtime()) / 1e9 - g_t0;
    double cpu = proc_cpu_s(g_pid) - g_cpu0, self = self_cpu_s() - g_self0;
    uint64_t bytes = tot.bytes - g_bytes0, exp = tot.expected - g_exp0, rcv = tot.received - g_rcv0;
    double gbit = (double)bytes * 8 / 1e9;
    double loss = exp ? 100.0 * ((double)exp - (double)rcv) / (double)exp : 0;
    if (loss < 0)
        loss = 0;
    double la[3] = {0};
    getloadavg(la, 3);
    uint64_t rbe, sbe;
    udp_buf_errors(&rbe, &sbe);
    /* Sessions that got nothing, or less than half the mean, in the window. */
    int starved = 0, short_ = 0;
    double mean = g_media ? (double)bytes / g_media : 0;
    for (int i = 0; i < g_created; i++) {
        const sess_t *s = &g_sess[i];
        if (s->state != ST_MEDIA)
            continue;
        uint64_t b = s->bytes - s->bytes0;
        if (b == 0) {
            if (starved < 8)
                fprintf(stderr, "whep-load: session %d got nothing in the window (%" PRIu64
                        " bytes before it; last packet %.1f s and last STUN answer %.1f s before the"
                        " window's end; %" PRIu64 " consent checks sent)\n", s->idx, s->bytes0,
                        s->last_rx_ms ? (double)(mono_ms() - s->last_rx_ms) / 1000 : -1.0,
                        s->last_stun_ok_ms ? (double)(mono_ms() - s->last_stun_ok_ms) / 1000 : -1.0,
                        s->consent_sent);
            starved++;
        }
        else if ((double)b < mean / 2)
            short_++;
    }
    printf("{\"sessions\": %d, \"media\": %d, \"failed\": %d, \"window_s\": %.2f, \"mbps\": %.2f, "
           "\"mbps_per_session\": %.3f, \"packets\": %" PRIu64 ", \"loss_pct\": %.4f, "
           "\"auth_fail\": %" PRIu64 ", \"server_cpu_s\": %.2f, \"server_cpu_pct\": %.1f, "
           "\"cpu_s_per_gbit\": %.3f, \"lag_n\": %" PRIu64 ", \"lag_p50_ms\": %.1f, "
           "\"lag_p95_ms\": %.1f, \"lag_p99_ms\": %.1f, \"tool_cpu_s\": %.2f, \"udp_rcvbuf_errors\": %" PRIu64
           ", \"udp_sndbuf_errors\": %" PRIu64 ", \"sessions_no_media_in_window\": %d, "
           "\"sessions_below_half_mean\": %d, \"loadavg\": [%.2f, %.2f, %.2f]}\n",
           g_created, g_media, g_failed, dt, (double)bytes * 8 / 1e6 / dt,
           g_media ? (double)bytes * 8 / 1e6 / dt / g_media : 0, tot.pkts - g_pkts0, loss,
           tot.auth_fail - g_fail0, cpu, 100 * cpu / dt, gbit > 0 && g_pid ? cpu / gbit : 0, g_hist_n,
           hist_pct(0.5), hist_pct(0.95), hist_pct(0.99), self, rbe - g_rbe0, sbe - g_sbe0, starved, short_, la[0], la[1],
           la[2]);
    fflush(stdout);
    fprintf(stderr, "whep-load: loop stalls > 1 s: %" PRIu64 " (longest %" PRIu64 " ms, %" PRIu64
            " ms in all); longest signalling (queued + POST) %" PRIu64 " ms; send errors %" PRIu64 "\n", g_stalls,
            g_stall_max_ms, g_stall_total_ms, g_signal_max_ms, g_send_errors);
    g_measuring = 0;
    uv_timer_stop(t);
    uv_stop(g_loop);
}

static void start_window(uv_timer_t *t)
{
    g_measuring = 1;
    g_t0 = (double)uv_hrtime() / 1e9;
    g_cpu0 = proc_cpu_s(g_pid);
    g_self0 = self_cpu_s();
    g_bytes0 = tot.bytes;
    g_pkts0 = tot.pkts;
    g_exp0 = tot.expected;
    g_rcv0 = tot.received;
    g_fail0 = tot.auth_fail;
    for (int i = 0; i < g_created; i++)
        g_sess[i].bytes0 = g_sess[i].bytes;
    udp_buf_errors(&g_rbe0, &g_sbe0);
    uv_timer_start(t, end_window, (uint64_t)(g_seconds * 1000), 0);
}

/* Waits for every session to have media (or the setup timeout), then settles. */
static void on_phase(uv_timer_t *t)
{
    if (g_created < g_n || g_media + g_failed < g_n)
        return;
    uv_timer_stop(t);
    fprintf(stderr, "whep-load: %d sessions with media, %d failed; settling %.1f s, measuring %.1f s\n",
            g_media, g_failed, g_settle, g_seconds);
    uv_timer_start(t, start_window, (uint64_t)(g_settle * 1000), 0);
}

static void usage(void)
{
    fprintf(stderr, "usage: whep-load -n N [--rate SESSIONS_PER_S] [--seconds S] [--settle S]\n"
                    "                 [--pid SERVER_PID] [--peer-ip IP] [--whip WHIP_URL --flv FILE]\n"
                    "                 [--janus MOUNTPOINT_ID] [--sample K] URL\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (strcmp(a, "-n") == 0 && more)
            g_n = atoi(argv[++i]);
        else if (strcmp(a, "--rate") == 0 && more)
            g_rate = atof(argv[++i]);
        else if (strcmp(a, "--seconds") == 0 && more)
            g_seconds = atof(argv[++i]);
        else if (strcmp(a, "--settle") == 0 && more)
            g_settle = atof(argv[++i]);
        else if (strcmp(a, "--pid") == 0 && more)
            g_pid = atoi(argv[++i]);
        else if (strcmp(a, "--janus") == 0 && more) {
            g_janus = 1;
            g_mount = atol(argv[++i]);
        } else if (strcmp(a, "--whip") == 0 && more)
            g_whip_url = argv[++i];
        else if (strcmp(a, "--flv") == 0 && more)
            g_flv_path = argv[++i];
        else if (strcmp(a, "--sample") == 0 && more)
            g_sample = atoi(argv[++i]);
        else if (strcmp(a, "--peer-ip") == 0 && more)
            snprintf(g_peer_ip, sizeof g_peer_ip, "%s", argv[++i]);
        else if (a[0] != '-' && !g_url)
            g_url = a;
        else
            usage();
    }
    if (g_n <= 0 || !g_url || g_rate <= 0 || g_sample < 1)
        usage();
    srand((unsigned)(uv_hrtime() ^ (uint64_t)getpid()));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (sl_dtls_ctx_new(&g_ctx) != 0) {
        fprintf(stderr, "whep-load: no DTLS context\n");
        return 1;
    }
    g_sess = sl_calloc((size_t)g_n, sizeof *g_sess);
    g_hist = sl_calloc(HIST_BINS, sizeof *g_hist);
    if (!g_sess || !g_hist)
        return 1;
    g_loop = uv_default_loop();
    uv_timer_init(g_loop, &g_tick);
    uv_timer_init(g_loop, &g_spawn);
    uv_timer_init(g_loop, &g_phase);
    uv_timer_start(&g_tick, on_tick, 10, 10);
    uint64_t every = (uint64_t)(1000.0 / g_rate);
    g_spawn_every = every ? every : 1;
    uv_timer_init(g_loop, &g_pace);
    if (g_whip_url) {
        /* The publisher first; viewers once it is connected (dtls_connected). */
        if (!g_flv_path || load_flv(g_flv_path) != 0) {
            fprintf(stderr, "whep-load: --whip needs --flv FILE with H.264 video\n");
            return 1;
        }
        g_pub_ssrc = (uint32_t)rand() | 1u;
        sess_t *s = &g_pubs;
        s->pub = 1;
        s->idx = -1;
        s->created_ms = mono_ms();
        sl_ice_credentials(s->lufrag, s->lpwd);
        uv_udp_init(g_loop, &s->udp);
        s->udp.data = s;
        struct sockaddr_in any;
        uv_ip4_addr("127.0.0.1", 0, &any);
        uv_udp_bind(&s->udp, (const struct sockaddr *)&any, 0);
        if (whep_signal(s, g_whip_url) != 0)
            return 1;
        s->state = ST_ICE;
        s->answered_ms = mono_ms();
        uv_udp_connect(&s->udp, (const struct sockaddr *)&s->peer);
        uv_udp_recv_start(&s->udp, on_alloc, on_udp);
        s->stun_retry_ms = STUN_RETRY_MS;
        send_stun(s);
        s->next_stun_ms = mono_ms() + s->stun_retry_ms;
    } else {
        uv_timer_start(&g_spawn, on_spawn, 0, g_spawn_every);
    }
    uv_timer_start(&g_phase, on_phase, 100, 100);
    uv_run(g_loop, UV_RUN_DEFAULT);
    /* Sessions are not torn down: the process exits and the server times them out
       (bench/whep restarts the server per run). */
    return g_media == g_n ? 0 : 1;
}
