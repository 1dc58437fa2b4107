/*
 * The pure part of the webhooks module (see webhooks.h): event names in
 * Red5's vocabulary, the event filter, the guid / ordering key, delivery
 * ids, the JSON payload, the HMAC signature and the retry backoff. Nothing
 * here touches the loop, a thread or the database, so the unit tests can
 * pin every rule a receiver depends on.
 */
#include "modules/webhooks/webhooks.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/redact.h"
#include "base/str.h"
#include "proto/http/http.h"
#include "sluice/errors.h"

/* Red5 Pro's webhook names (RED5-COMPAT.md §7.1); NULL = use sluice's own. */
static const char *const red5_names[SL_EV_COUNT] = {
    [SL_EV_CONNECT] = "connection-connect",
    [SL_EV_DISCONNECT] = "connection-disconnect",
    [SL_EV_PUBLISH] = "stream-published",
    [SL_EV_UNPUBLISH] = "stream-unpublished",
    [SL_EV_PLAY] = "stream-subscribed",
    [SL_EV_PLAY_STOP] = "stream-unsubscribed",
    [SL_EV_RECORD_START] = "video-started",
    [SL_EV_RECORD_DONE] = "video-saved",
};

/* sluice's names with '-' for '_', for the events Red5 has no name for. */
static const char *const dashed_names[SL_EV_COUNT] = {
    "connect", "disconnect", "publish", "unpublish", "play", "play-stop",
    "record-start", "record-done", "upload-done", "upload-failed", "so-update",
    "rpc", "stream-idle", "node-up", "node-down", "record-deleted", "app-start", "app-stop",
    "room-start", "room-stop", "pull-up", "pull-down", "push-up", "push-down",
};

const char *sl__webhooks_event_name(sl_event_type_t type)
{
    if ((unsigned)type >= SL_EV_COUNT)
        return "unknown";
    return red5_names[type] ? red5_names[type] : dashed_names[type];
}

int sl__webhooks_event_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < SL_EV_COUNT; i++) {
        if ((red5_names[i] && strcasecmp(name, red5_names[i]) == 0) ||
            strcasecmp(name, dashed_names[i]) == 0 || strcasecmp(name, sl_event_name(i)) == 0)
            return i;
    }
    return -1;
}

int sl__webhooks_parse_events(const char *list, uint32_t *mask, char *bad, size_t cap)
{
    _Static_assert(SL_EV_COUNT <= 32, "the event mask is 32 bits");
    if (bad && cap)
        bad[0] = '\0';
    *mask = 0;
    const char *p = list ? list : "";
    while (*p) {
        size_t skip = strspn(p, ", \t");
        p += skip;
        size_t len = strcspn(p, ", \t");
        if (!len)
            break;
        char name[64];
        int t = -1;
        if (len < sizeof name) {
            memcpy(name, p, len);
            name[len] = '\0';
            t = sl__webhooks_event_parse(name);
        }
        if (t < 0) {
            if (bad && cap)
                snprintf(bad, cap, "%.*s", (int)len, p);
            *mask = 0;
            return SL_EINVAL;
        }
        *mask |= 1u << t;
        p += len;
    }
    if (!*mask) /* none listed: the default selection (app/room lifetimes only by name) */
        *mask = SL_EV_DEFAULT_MASK;
    return 0;
}

size_t sl__webhooks_guid(const sl_event_t *ev, char *out, size_t cap)
{
    int n;
    int conn = ev->type == SL_EV_CONNECT || ev->type == SL_EV_DISCONNECT;
    int scope = ev->type >= SL_EV_APP_START && ev->type <= SL_EV_ROOM_STOP;
    if (conn && ev->session_id)
        n = snprintf(out, cap, "%s", ev->session_id);
    else if (scope && ev->app) /* a scope's start and stop are delivered in order */
        n = snprintf(out, cap, "%s", ev->app);
    else if (ev->app && ev->stream)
        n = snprintf(out, cap, "%s/%s", ev->app, ev->stream);
    else if (ev->session_id)
        n = snprintf(out, cap, "%s", ev->session_id);
    else if (ev->app)
        n = snprintf(out, cap, "%s", ev->app);
    else
        n = snprintf(out, cap, "%s", "");
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : (cap ? cap - 1 : 0);
}

void sl__webhooks_username(const char *query, char *out, size_t cap)
{
    if (!cap)
        return;
    out[0] = '\0';
    if (query && sl_http_query_get(query, "username", out, cap) < 0)
        out[0] = '\0';
}

int sl__webhooks_delivery_id(char *out, size_t cap, const char *node, uint64_t event_seq,
                             int endpoint_index)
{
    int n = snprintf(out, cap, "%s-%llu-%d", node && node[0] ? node : "sluice",
                     (unsigned long long)event_seq, endpoint_index);
    return n < 0 || (size_t)n >= cap ? SL_ETOOBIG : 0;
}

/* A string field, or JSON null when absent. */
static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

const char *sl__webhooks_cluster_type(const char *role)
{
    static const char *const map[][2] = {{"origin", "TYPE_ORIGIN"}, {"edge", "TYPE_EDGE"},
                                         {"relay", "TYPE_RELAY"}, {"transcoder", "TYPE_TRANSCODER"}};
    for (size_t i = 0; role && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(role, map[i][0]) == 0)
            return map[i][1];
    return "TYPE_AUTO"; /* "all": the node takes whichever part a stream needs */
}

char *sl__webhooks_payload(const sl_event_t *ev, const char *node, const char *delivery_id,
                           uint64_t event_seq)
{
    return sl__webhooks_payload_cluster(ev, node, delivery_id, event_seq, NULL, 0);
}

char *sl__webhooks_payload_cluster(const sl_event_t *ev, const char *node,
                                   const char *delivery_id, uint64_t event_seq,
                                   const sl__webhooks_cluster_t *cl, int raw_query)
{
    int clustered = cl && cl->type[0];
    char guid[512], username[256];
    sl__webhooks_guid(ev, guid, sizeof guid);
    sl__webhooks_username(ev->query, username, sizeof username);
    const char *node_or_empty = node ? node : "";
    json_t *o = json_object();
    if (!o)
        return NULL;
    /* Red5 Pro's fields first, with Red5's names and types. */
    int bad = 0;
    bad |= json_object_set_new(o, "event", json_string(sl__webhooks_event_name(ev->type)));
    bad |= json_object_set_new(o, "guid", json_string(guid));
    /* json_string refuses invalid UTF-8: a username that is not is sent as "". */
    json_t *u = json_string(username);
    bad |= json_object_set_new(o, "username", u ? u : json_string(""));
    bad |= json_object_set_new(o, "userAgent", json_string(""));
    bad |= json_object_set_new(o, "clusterNodeType", json_string(clustered ? cl->type : "TYPE_OFF"));
    bad |= json_object_set_new(o, "timestamp", json_integer((json_int_t)ev->time_ms));
    bad |= json_object_set_new(o, "nodePublicIp", json_string(clustered ? cl->host : node_or_empty));
    /* sluice's fields. */
    bad |= json_object_set_new(o, "id", json_string(delivery_id));
    bad |= json_object_set_new(o, "sluice_event", json_string(sl_event_name(ev->type)));
    bad |= json_object_set_new(o, "event_seq", json_integer((json_int_t)event_seq));
    bad |= json_object_set_new(o, "time", json_integer((json_int_t)ev->time_ms));
    bad |= json_object_set_new(o, "node", node_or_empty[0] ? json_string(node) : json_null());
    if (clustered)
        bad |= json_object_set_new(o, "cluster_node", json_string(cl->id));
    bad |= json_object_set_new(o, "app", str_or_null(ev->app));
    bad |= json_object_set_new(o, "stream", str_or_null(ev->stream));
    bad |= json_object_set_new(o, "session", str_or_null(ev->session_id));
    bad |= json_object_set_new(o, "protocol", str_or_null(ev->proto));
    bad |= json_object_set_new(o, "remote_address", str_or_null(ev->remote_addr));
    bad |= json_object_set_new(o, "remote_port",
                               ev->remote_port ? json_integer(ev->remote_port) : json_null());
    bad |= json_object_set_new(o, "reason", str_or_null(ev->reason));
    if (ev->query && !raw_query) {
        /* Masking a value never grows a pair past 2x ("k=" -> "k=***"). */
        size_t cap = 2 * strlen(ev->query) + 16;
        char *masked = sl_malloc(cap);
        if (!masked) {
            json_decref(o);
            return NULL;
        }
        bad |= json_object_set_new(o, "query", json_string(sl_redact(ev->query, masked, cap)));
        sl_free(masked);
    } else {
        bad |= json_object_set_new(o, "query", str_or_null(ev->query));
    }
    bad |= json_object_set_new(o, "path", str_or_null(ev->path));
    bad |= json_object_set_new(o, "bytes_in", json_integer((json_int_t)ev->bytes_in));
    bad |= json_object_set_new(o, "bytes_out", json_integer((json_int_t)ev->bytes_out));
    bad |= json_object_set_new(o, "duration_ms", json_integer((json_int_t)ev->duration_ms));
    if (ev->method) { /* rpc only, so that other payloads stay as they were */
        bad |= json_object_set_new(o, "method", json_string(ev->method));
        bad |= json_object_set_new(o, "direction", str_or_null(ev->direction));
        bad |= json_object_set_new(o, "status", str_or_null(ev->status));
    }
    char *txt = bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!txt)
        return NULL;
    char *out = sl_strdup(txt);
    free(txt); /* jansson allocates with malloc */
    return out;
}

int sl__webhooks_sign(const char *secret, const char *timestamp, const char *body,
                      size_t body_len, char *out)
{
    size_t ts_len = strlen(timestamp);
    size_t msg_len = ts_len + 1 + body_len;
    unsigned char *msg = sl_malloc(msg_len ? msg_len : 1);
    if (!msg)
        return SL_ENOMEM;
    memcpy(msg, timestamp, ts_len);
    msg[ts_len] = '.';
    if (body_len)
        memcpy(msg + ts_len + 1, body, body_len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    int rc = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, msg_len, mac, &mac_len) ||
        mac_len != 32) {
        rc = SL_EIO;
        goto fail;
    }
    memcpy(out, "sha256=", 7);
    sl_hex_encode(mac, mac_len, out + 7, 0);
fail:
    sl_free(msg);
    return rc;
}

uint64_t sl__webhooks_backoff_ms(uint32_t attempts, uint64_t cap_ms, uint64_t rnd)
{
    uint64_t window = SL_WEBHOOKS_BACKOFF_BASE_MS;
    /* Doubling stops at the cap, so large attempt counts cannot overflow. */
    for (uint32_t i = 1; i < attempts && window < cap_ms; i++)
        window *= 2;
    if (window > cap_ms)
        window = cap_ms;
    return window == UINT64_MAX ? rnd : rnd % (window + 1);
}
