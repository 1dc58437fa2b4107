/*
 * The webhooks module's configuration check (sl_builtin_t.check, see
 * module.h): what wh_start refuses, found without starting anything, so
 * that --check-config and a start refused before any listener opens both
 * name every problem with the file and line that set it. wh_start keeps
 * its own tests as a safety net; this file must accept exactly what it
 * accepts.
 */
#include <stdio.h>
#include <string.h>

#include "base/str.h"
#include "modules/webhooks/webhooks.h"
#include "modules/webhooks/webhooks_config.h"

#define CHECK_MAX_URLS 256 /* distinct URLs across the configuration (MAX_ENDPOINTS in webhooks.c) */

typedef struct {
    const char *url[CHECK_MAX_URLS + 1];
    size_t len[CHECK_MAX_URLS + 1];
    size_t n;
} seen_t;

/* Counts url[0..len) once in seen (up to one past the cap, enough to tell). */
static void seen_add(seen_t *seen, const char *url, size_t len)
{
    for (size_t i = 0; i < seen->n; i++)
        if (seen->len[i] == len && memcmp(seen->url[i], url, len) == 0)
            return;
    if (seen->n <= CHECK_MAX_URLS) {
        seen->url[seen->n] = url;
        seen->len[seen->n] = len;
        seen->n++;
    }
}

/* Checks one comma-separated URL list set by key; returns the problems found. */
static int check_urls(const sl_config_t *cfg, const char *key, const char *list, seen_t *seen,
                      sl_config_err_cb err, void *ud)
{
    int n = 0;
    size_t len;
    for (const char *c = list, *p; (p = sl_list_next(&c, &len));) {
        if (!(len > 7 && strncmp(p, "http://", 7) == 0) &&
            !(len > 8 && strncmp(p, "https://", 8) == 0)) {
            sl_config_report(cfg, key, err, ud, "'%.*s' is not an http:// or https:// URL",
                             len > 200 ? 200 : (int)len, p);
            n++;
        } else {
            seen_add(seen, p, len);
        }
    }
    return n;
}

/*
 * Every unknown name in webhooks.events (not only the first), every URL
 * that is not http(s) in webhooks.url and apps.<name>.webhook_url, and more
 * distinct URLs than the module holds. Returns the number of problems.
 */
int sl__webhooks_check(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    int n = 0;
    const char *p = sl_webhooks_cfg(cfg)->events ? sl_webhooks_cfg(cfg)->events : "";
    while (*p) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (!len)
            break;
        char name[64];
        if (len >= sizeof name || (memcpy(name, p, len), name[len] = '\0',
                                   sl__webhooks_event_parse(name) < 0)) {
            sl_config_report(cfg, "webhooks.events", err, ud,
                             "unknown event '%.*s' (names: connection-connect, stream-published, "
                             "..., or sluice's: connect, publish, upload_done, ...; see "
                             "docs/integration/webhooks.md)",
                             len > 64 ? 64 : (int)len, p);
            n++;
        }
        p += len;
    }
    seen_t seen = {.n = 0};
    n += check_urls(cfg, "webhooks.url", sl_webhooks_cfg(cfg)->url, &seen, err, ud);
    for (size_t i = 0; i < cfg->n_apps; i++) {
        char key[SL_CONFIG_APP_NAME_MAX + 24];
        snprintf(key, sizeof key, "apps.%s.webhook_url", cfg->apps[i].name);
        n += check_urls(cfg, key, sl_webhooks_app_cfg(&cfg->apps[i])->webhook_url, &seen, err, ud);
    }
    if (seen.n > CHECK_MAX_URLS) {
        sl_config_report(cfg, "webhooks.url", err, ud, "more than %d distinct webhook URLs",
                         CHECK_MAX_URLS);
        n++;
    }
    return n;
}
