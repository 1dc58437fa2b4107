/*
 * Play admission for HTTP routes that serve stream data without a
 * player session of their own: recorded files (/{app}/streams/...), the
 * recordings list (/{app}/mediafiles), and anything else that answers
 * media or names of streams (see http.h, sl_http_admit_play). The same
 * asynchronous chain as every live protocol runs (DESIGN.md §4), with
 * credentials as Red5 clients pass them over HTTP (query username,
 * password, token, or Authorization: Bearer), so an app with auth never
 * answers data to a client the live protocols would refuse.
 *
 * A candidate session (socketless: not a connection) is registered while
 * the chain runs, so that checks see the client's address and query as
 * they do for a player; it ends with the answer. Pending admissions are
 * kept in a list so that a stopping server answers and frees them.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "app/admission.h"
#include "app/core.h"
#include "base/alloc.h"
#include "base/list.h"
#include "base/log.h"
#include "proto/http/http.h"
#include "sluice/errors.h"

typedef struct http_admit {
    sl_session_t sess;          /* must stay first; registered while the chain runs */
    sl_core_t *core;
    sl_http_req_t *req;         /* valid until answered */
    sl_http_admit_cb allowed;
    void *ud;
    sl_admit_t *admit;          /* while pending: our reference */
    sl_list_t link;             /* in g_pending while pending */
    int in_call, finished, result, had_creds;
    char reason[256];
} http_admit_t;

/* Loop thread only: admissions waiting for a remote check. */
static sl_list_t g_pending = {&g_pending, &g_pending};

static void kick(sl_session_t *s, const char *reason)
{
    (void)s;
    (void)reason; /* a request in admission has nothing to kick: it is answered soon */
}

static void shutdown_cb(sl_session_t *s) { (void)s; }

static const sl_session_ops_t admit_session_ops = {.kick = kick, .shutdown = shutdown_cb, .pending = NULL};

static void admit_free(http_admit_t *h)
{
    if (sl_list_linked(&h->link))
        sl_list_remove(&h->link);
    sl_session_unregister(h->core, &h->sess);
    sl_free(h);
}

/*
 * Answers a refusal. 401 (with a challenge) when the request carried no
 * credentials, 403 when it carried wrong ones: the same for a stream that
 * exists and one that does not, since nothing was looked up yet.
 */
void sl_http_admit_refuse(sl_http_req_t *req, int had_creds, const char *reason)
{
    char body[300];
    snprintf(body, sizeof body, "%s\n", reason && reason[0] ? reason : "Playing denied.");
    if (had_creds)
        sl_http_respond(req, 403, "text/plain; charset=utf-8", body, strlen(body),
                        "Cache-Control: no-cache\r\n");
    else
        sl_http_respond(req, 401, "text/plain; charset=utf-8", body, strlen(body),
                        "WWW-Authenticate: Bearer realm=\"sluice\"\r\nCache-Control: no-cache\r\n");
}

static void finish(http_admit_t *h)
{
    sl_http_req_t *req = h->req;
    sl_http_admit_cb allowed = h->allowed;
    void *ud = h->ud;
    if (h->result) {
        SL_LOGI(&h->sess.log, "http play refused (%s): %s", req->path,
                h->reason[0] ? h->reason : "denied");
        sl_http_admit_refuse(req, h->had_creds, h->reason);
        admit_free(h);
        return;
    }
    admit_free(h);
    allowed(req, ud);
}

static void on_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    http_admit_t *h = ud;
    h->finished = 1;
    h->result = result;
    snprintf(h->reason, sizeof h->reason, "%s", reason ? reason : "");
    if (h->in_call)
        return; /* synchronous: sl_http_admit_play goes on */
    if (h->admit == a) {
        h->admit = NULL;
        sl_admit_unref(a);
    }
    finish(h);
}

int sl_http_find_creds(const sl_http_req_t *req, char *user, size_t user_cap, char *pass,
                       size_t pass_cap, char *token, size_t token_cap)
{
    if (sl_http_query_get(req->query, "username", user, user_cap) < 0)
        user[0] = '\0';
    if (sl_http_query_get(req->query, "password", pass, pass_cap) < 0)
        pass[0] = '\0';
    if (sl_http_query_get(req->query, "token", token, token_cap) == -1) {
        /* -2: present but longer than token_cap, kept cut: the JWT check
         * then refuses it as too long rather than as missing. */
        token[0] = '\0';
        const char *auth = sl_http_req_header(req, "authorization");
        if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
            snprintf(token, token_cap, "%s", auth + 7);
    }
    return user[0] || pass[0] || token[0];
}

int sl_http_admit_play(sl_core_t *core, sl_http_req_t *req, const char *scope, const char *stream,
                       const char *transport, sl_http_admit_cb allowed, void *ud)
{
    http_admit_t *h = sl_calloc(1, sizeof *h);
    if (!h)
        return SL_ENOMEM;
    h->core = core;
    h->req = req;
    h->allowed = allowed;
    h->ud = ud;
    sl_list_init(&h->link);
    h->sess.socketless = 1;
    sl_session_register(core, &h->sess, &admit_session_ops, transport);
    snprintf(h->sess.remote_addr, sizeof h->sess.remote_addr, "%s", req->remote_addr ? req->remote_addr : "");
    h->sess.remote_port = req->remote_port;
    char *creds = sl_malloc(512 + 512 + SL_HTTP_TOKEN_MAX);
    if (!creds || sl_session_set_app(&h->sess, scope) || sl_session_set_stream(&h->sess, stream) ||
        sl_session_set_query(&h->sess, req->query && req->query[0] ? req->query : NULL)) {
        sl_free(creds);
        admit_free(h);
        return SL_ENOMEM;
    }
    char *user = creds, *pass = creds + 512, *token = creds + 1024;
    h->had_creds = sl_http_find_creds(req, user, 512, pass, 512, token, SL_HTTP_TOKEN_MAX);
    sl_admit_req_t ar = {
        .kind = SL_ADMIT_PLAY,
        .app = h->sess.app,
        .stream = h->sess.stream,
        .transport = transport,
        .query = req->query,
        .username = user[0] ? user : NULL,
        .password = pass[0] ? pass : NULL,
        .token = token[0] ? token : NULL,
    };
    sl_admit_t *a = NULL;
    h->in_call = 1;
    int rc = sl_admit(core, &h->sess, &ar, on_done, h, &a);
    h->in_call = 0;
    sl_free(creds);
    if (rc == SL_EPENDING) {
        h->admit = a;
        sl_list_push_back(&g_pending, &h->link);
        return 0;
    }
    if (rc == SL_OK && h->finished) {
        finish(h);
        return 0;
    }
    admit_free(h);
    return rc ? rc : SL_EINVAL;
}

void sl_http_admit_stop(void)
{
    while (!sl_list_empty(&g_pending)) {
        http_admit_t *h = sl_container_of(g_pending.next, http_admit_t, link);
        sl_admit_cancel(h->admit);
        sl_http_respond(h->req, 503, "text/plain", "server shutting down\n", 21, NULL);
        admit_free(h);
    }
}
