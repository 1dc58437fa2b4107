/*
 * notifier: on every publish, POSTs a small JSON document to the URL of its
 * `url` setting, from a worker thread (libcurl blocks; the event loop must
 * not). Settings: url (required), timeout_ms (default 5000).
 *
 *   cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags sluice-plugin) \
 *      -o notifier.so notifier.c -lcurl
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/plugin.h>

typedef struct {
    const sl_host_api_t *api;
    sl_host_t *h;
    char url[1024];
    long timeout_ms;
} notifier_t;

/* One POST: built on the loop, sent on a worker, reported on the loop. */
typedef struct {
    notifier_t *n;
    char body[1024];
    long status;      /* HTTP status, 0 when the request failed */
    char error[CURL_ERROR_SIZE];
} post_t;

/* Copies s into out as a JSON string body (quotes and control bytes escaped). */
static void json_str(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; s && *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            out[n++] = '\\', out[n++] = (char)c;
        else if (c < 0x20)
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        else
            out[n++] = (char)c;
    }
    out[n] = '\0';
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

static void post_work(void *arg) /* worker thread */
{
    post_t *p = arg;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(p->error, sizeof p->error, "curl_easy_init failed");
        return;
    }
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, p->n->url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, p->body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, p->n->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->error);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &p->status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
}

static void post_done(void *arg, int status) /* loop */
{
    post_t *p = arg;
    notifier_t *n = p->n;
    if (status)
        n->api->log(n->h, SL_PLUGIN_LOG_WARN, "notification not sent: %s", n->api->strerror(status));
    else if (p->status >= 200 && p->status < 300)
        n->api->log(n->h, SL_PLUGIN_LOG_INFO, "notified %s (HTTP %ld)", n->url, p->status);
    else
        n->api->log(n->h, SL_PLUGIN_LOG_WARN, "notification to %s failed: HTTP %ld %s", n->url,
                    p->status, p->error);
    free(p);
}

static void notifier_on_event(void *state, const sl_plugin_event_t *ev)
{
    notifier_t *n = state;
    if (ev->type != SL_PLUGIN_EV_PUBLISH)
        return;
    post_t *p = calloc(1, sizeof *p);
    if (!p)
        return;
    char app[256], stream[256], sid[64];
    json_str(app, sizeof app, ev->app);
    json_str(stream, sizeof stream, ev->stream);
    json_str(sid, sizeof sid, ev->session_id);
    p->n = n;
    snprintf(p->body, sizeof p->body,
             "{\"event\":\"publish\",\"app\":\"%s\",\"stream\":\"%s\",\"session\":\"%s\","
             "\"time_ms\":%llu}",
             app, stream, sid, (unsigned long long)ev->time_ms);
    if (n->api->work_queue(n->h, post_work, post_done, p))
        free(p);
}

static int notifier_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    const char *url = api->setting(h, "url");
    const char *timeout = api->setting(h, "timeout_ms");
    if (!url || !*url) {
        api->log(h, SL_PLUGIN_LOG_ERROR, "the setting 'url' is required");
        return SL_EINVAL;
    }
    notifier_t *n = calloc(1, sizeof *n);
    if (!n)
        return SL_ENOMEM;
    n->api = api;
    n->h = h;
    snprintf(n->url, sizeof n->url, "%s", url);
    n->timeout_ms = timeout ? atol(timeout) : 5000;
    curl_global_init(CURL_GLOBAL_DEFAULT); /* refcounted by libcurl; sluice did it already */
    api->log(h, SL_PLUGIN_LOG_INFO, "will POST publish events to %s", n->url);
    *state = n;
    return 0;
}

static void notifier_destroy(void *state)
{
    free(state);
    curl_global_cleanup(); /* balances the init above */
}

static const sl_plugin_t notifier_plugin = {
    SL_PLUGIN_ABI,
    .name = "notifier",
    .version = "1.0",
    .description = "POSTs stream starts to a URL from a worker thread",
    .init = notifier_init,
    .destroy = notifier_destroy,
    .on_event = notifier_on_event,
};

SL_PLUGIN_INIT(notifier_plugin)
