/*
 * Helpers shared by the authentication modules (see auth_common.h).
 */
#include "modules/auth_common.h"

#include <string.h>
#include <strings.h>

#include "app/core.h"
#include "base/str.h"

int sl__auth_list_has(const char *list, const char *word)
{
    size_t n;
    for (const char *c = list, *it; (it = sl_list_next(&c, &n));)
        if (n == 1 && it[0] == '*')
            return 1;
    return sl_list_has(list, word);
}

const sl_app_config_t *sl__auth_app_for(const sl_admit_t *a, size_t flag)
{
    const sl_admit_req_t *req = sl_admit_request(a);
    if (!req->app)
        return NULL;
    const sl_app_config_t *app = sl_core_app(sl_admit_core(a), req->app);
    if (!app || !*(const int *)((const char *)app + flag))
        return NULL;
    if (!sl__auth_list_has(app->auth_protocols, req->transport))
        return NULL;
    return app;
}

const sl_log_ctx_t *sl__auth_log(const sl_admit_t *a)
{
    sl_session_t *s = sl_admit_session(a);
    return s ? &s->log : NULL;
}
