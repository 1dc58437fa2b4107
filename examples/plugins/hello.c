/*
 * hello: the smallest useful sluice plugin. It logs every event of the apps
 * it serves (from ABI 1.2 that includes app_start, room_start, room_stop and
 * app_stop: an app or room got its first client, or lost its last), with
 * the plugin's name as context, and a greeting taken from its settings at
 * start.
 *
 *   plugins:
 *     - name: hello
 *       path: /usr/local/lib/sluice/plugins/hello.so
 *       settings: {greeting: "hello from a plugin"}
 */
#include <sluice/plugin.h>

typedef struct {
    const sl_host_api_t *api;
    sl_host_t *h;
    unsigned long n_events;
} hello_t;

static hello_t g_hello; /* one instance per load: static state is enough here */

static int hello_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    const char *greeting = api->setting(h, "greeting");
    g_hello.api = api;
    g_hello.h = h;
    g_hello.n_events = 0;
    api->log(h, SL_PLUGIN_LOG_INFO, "%s (server %s, host ABI %d.%d)",
             greeting ? greeting : "hello", api->server_version, api->abi_major, api->abi_minor);
    *state = &g_hello;
    return 0;
}

static void hello_on_event(void *state, const sl_plugin_event_t *ev)
{
    hello_t *p = state;
    p->n_events++;
    p->api->log(p->h, SL_PLUGIN_LOG_INFO, "event %s session=%s proto=%s app=%s stream=%s%s%s",
                ev->name, ev->session_id ? ev->session_id : "-", ev->proto ? ev->proto : "-",
                ev->app ? ev->app : "-", ev->stream ? ev->stream : "-",
                ev->reason ? " reason=" : "", ev->reason ? ev->reason : "");
}

static void hello_stop(void *state)
{
    hello_t *p = state;
    p->api->log(p->h, SL_PLUGIN_LOG_INFO, "goodbye after %lu events", p->n_events);
}

static void hello_destroy(void *state) { (void)state; }

static const sl_plugin_t hello_plugin = {
    SL_PLUGIN_ABI,
    .name = "hello",
    .version = "1.0",
    .description = "logs every event",
    .init = hello_init,
    .stop = hello_stop,
    .destroy = hello_destroy,
    .on_event = hello_on_event,
};

SL_PLUGIN_INIT(hello_plugin)
