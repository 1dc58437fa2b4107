/*
 * The autoscaler's drivers (as_driver.h): none, process (uv_spawn of this
 * machine's sluice binary, one child per node) and webhook (signed POSTs
 * through the loop's HTTP client, retried with backoff). Handles are closed
 * through uv_close and the driver is freed by the last close callback.
 */
#include "cluster/autoscale/as_driver.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/stat.h>
#include <unistd.h>

#include "app/store.h"
#include "base/alloc.h"
#include "base/backoff.h"
#include "base/http_client.h"
#include "base/list.h"
#include "base/log.h"
#include "base/str.h"
#include "base/time.h"
#include "sluice/errors.h"

extern char **environ;

static const sl_log_ctx_t g_ctx = {.proto = "autoscale"};

#define N_PORTS 5                       /* rtmp, http, rtsp, srt, webrtc */
#define TEMPLATE_MAX (1024 * 1024)      /* config template file */
#define KILL_GRACE_MS 15000             /* SIGTERM, then SIGKILL after this */
#define WH_BACKOFF_MIN_MS 500
#define WH_BACKOFF_MAX_MS 30000
#define WH_MAX_INFLIGHT 256             /* deliveries queued or retrying */

typedef struct child {
    sl_list_t link;
    struct sl_as_driver *drv;
    char id[SL_CLUSTER_ID_MAX];
    uv_process_t proc;
    uv_timer_t kill_timer;
    int running;                        /* spawned and not exited */
    int term_sent;
    int closes_left;                    /* handles still closing */
    uint16_t ports[N_PORTS];
} child_t;

typedef struct delivery {
    sl_list_t link;
    struct sl_as_driver *drv;
    char *body;
    char id[SL_CLUSTER_ID_MAX * 2 + 32];
    uint32_t attempts;
    uv_timer_t timer;
    sl_http_client_req_t *req;
    sl_backoff_t bo;
} delivery_t;

struct sl_as_driver {
    uv_loop_t *loop;
    const sl_autoscale_config_t *cfg;
    int kind;                           /* sl_as_driver_kind_t */
    char *dir;                          /* process: configs, data, logs */
    char *binary;                       /* process: the executable */
    sl_list_t children;
    int n_running;
    sl_http_client_t *http;             /* webhook */
    sl_list_t deliveries;
    int n_deliveries;
    char failed[16][SL_CLUSTER_ID_MAX]; /* process: nodes that exited unasked (ring) */
    int failed_next;
    int closing;
    int open_handles;                   /* handles (and store work) not yet done: freed at 0 when closing */
    sl_store_t *store;                  /* webhook: the durable outbox, NULL = memory only */
};

static void maybe_free(sl_as_driver_t *d)
{
    if (!d->closing || d->open_handles > 0 || d->http)
        return;
    sl_free(d->dir);
    sl_free(d->binary);
    sl_free(d);
}

/* ------------------------------------------------------------------ */
/* helpers shared by the drivers                                       */

/* The value of the placeholder at p ("{name}"), with *nlen its length; NULL when none. */
static const char *placeholder(const char *p, const char *const *vars, size_t *nlen)
{
    if (*p != '{')
        return NULL;
    for (int i = 0; vars[i] && vars[i + 1]; i += 2) {
        size_t n = strlen(vars[i]);
        if (strncmp(p + 1, vars[i], n) == 0 && p[1 + n] == '}') {
            *nlen = n + 2;
            return vars[i + 1];
        }
    }
    return NULL;
}

char *sl_as_template_fill(const char *tmpl, const char *const *vars)
{
    /* Two passes: the exact size first (values such as {dir} are paths of any length). */
    size_t need = 1;
    for (const char *p = tmpl; *p;) {
        size_t nlen;
        const char *val = placeholder(p, vars, &nlen);
        need += val ? strlen(val) : 1;
        p += val ? nlen : 1;
        if (need > TEMPLATE_MAX)
            return NULL;
    }
    char *out = sl_malloc(need);
    if (!out)
        return NULL;
    size_t len = 0;
    for (const char *p = tmpl; *p;) {
        size_t nlen;
        const char *val = placeholder(p, vars, &nlen);
        if (val) {
            size_t vl = strlen(val);
            memcpy(out + len, val, vl);
            len += vl;
            p += nlen;
        } else {
            out[len++] = *p++;
        }
    }
    out[len] = '\0';
    return out;
}

int sl_as_sign(const char *secret, const char *ts, const char *body, char out[72])
{
    size_t tl = strlen(ts), bl = strlen(body);
    unsigned char *msg = sl_malloc(tl + 1 + bl + 1);
    if (!msg)
        return SL_EIO;
    memcpy(msg, ts, tl);
    msg[tl] = '.';
    memcpy(msg + tl + 1, body, bl);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    int ok = HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, tl + 1 + bl, mac, &mac_len) &&
             mac_len == 32;
    sl_free(msg);
    if (!ok)
        return SL_EIO;
    memcpy(out, "sha256=", 7);
    sl_hex_encode(mac, mac_len, out + 7, 0);
    return 0;
}

/* mkdir -p for one or two levels (the parent of dir must exist or be creatable). */
static int make_dir(const char *path)
{
    char tmp[4096];
    if (strlen(path) >= sizeof tmp)
        return SL_ETOOBIG;
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) && errno != EEXIST)
                return SL_EIO;
            *p = '/';
        }
    if (mkdir(tmp, 0755) && errno != EEXIST)
        return SL_EIO;
    return 0;
}

/* ------------------------------------------------------------------ */
/* process driver                                                      */

static child_t *child_find(const sl_as_driver_t *d, const char *id)
{
    for (sl_list_t *it = d->children.next; it != &d->children; it = it->next) {
        child_t *c = sl_container_of(it, child_t, link);
        if (strcmp(c->id, id) == 0)
            return c;
    }
    return NULL;
}

/* 1 when port is bindable now on TCP and UDP (any address) and no child of ours holds it. */
static int port_free(const sl_as_driver_t *d, uint16_t port)
{
    for (const sl_list_t *it = d->children.next; it != &d->children; it = it->next) {
        const child_t *c = sl_container_of(it, child_t, link);
        for (int i = 0; c->running && i < N_PORTS; i++)
            if (c->ports[i] == port)
                return 0;
    }
    for (int type = 0; type < 2; type++) {
        int fd = socket(AF_INET, (type ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return 0;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        a.sin_addr.s_addr = htonl(INADDR_ANY);
        int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (!ok)
            return 0;
    }
    return 1;
}

static int take_ports(const sl_as_driver_t *d, uint16_t out[N_PORTS])
{
    int n = 0;
    for (int64_t p = d->cfg->process_port_min; p <= d->cfg->process_port_max && n < N_PORTS; p++) {
        int dup = 0;
        for (int i = 0; i < n; i++)
            dup |= out[i] == p;
        if (!dup && port_free(d, (uint16_t)p))
            out[n++] = (uint16_t)p;
    }
    return n == N_PORTS ? 0 : SL_EBUSY;
}

static void on_kill_timer(uv_timer_t *t)
{
    child_t *c = t->data;
    if (c->running) {
        SL_LOGW(&g_ctx, "autoscale: node %s did not stop within %d s of SIGTERM: SIGKILL", c->id,
                KILL_GRACE_MS / 1000);
        uv_process_kill(&c->proc, SIGKILL);
    }
}

static void on_child_closed(uv_handle_t *h)
{
    child_t *c = h->data;
    sl_as_driver_t *d = c->drv;
    d->open_handles--;
    if (--c->closes_left == 0) {
        if (sl_list_linked(&c->link))
            sl_list_remove(&c->link);
        sl_free(c);
    }
    maybe_free(d);
}

static void child_close(child_t *c)
{
    c->proc.data = c;
    c->kill_timer.data = c;
    c->closes_left = 2;
    c->drv->open_handles += 2;
    uv_close((uv_handle_t *)&c->proc, on_child_closed);
    uv_close((uv_handle_t *)&c->kill_timer, on_child_closed);
}

static void on_child_exit(uv_process_t *p, int64_t status, int sig)
{
    child_t *c = p->data;
    c->running = 0;
    c->drv->n_running--;
    uv_timer_stop(&c->kill_timer);
    if (c->term_sent)
        SL_LOGI(&g_ctx, "autoscale: node %s (pid %d) stopped (status %lld, signal %d)", c->id,
                p->pid, (long long)status, sig);
    else {
        SL_LOGW(&g_ctx, "autoscale: node %s (pid %d) exited on its own (status %lld, signal %d); "
                "its log: %s/%s.log", c->id, p->pid, (long long)status, sig, c->drv->dir, c->id);
        snprintf(c->drv->failed[c->drv->failed_next], SL_CLUSTER_ID_MAX, "%s", c->id);
        c->drv->failed_next = (c->drv->failed_next + 1) % 16;
    }
    if (!c->drv->closing)
        child_close(c);
}

void sl_as_child_guard(void)
{
    const char *v = getenv(SL_AS_PARENT_ENV);
    if (!v)
        return;
    long want = strtol(v, NULL, 10);
    unsetenv(SL_AS_PARENT_ENV);
#ifdef __linux__
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        SL_LOGW(&g_ctx, "autoscale: PR_SET_PDEATHSIG: %s", strerror(errno));
    /* The parent may have died before the request: then we were reparented. */
    if (want > 1 && (long)getppid() != want) {
        SL_LOGW(&g_ctx, "autoscale: the process driver that started this node (pid %ld) is "
                        "gone: stopping", want);
        raise(SIGTERM);
    }
#else
    (void)want;
#endif
}

/*
 * The child's environment: ours without SLUICE_* overrides (they would turn
 * the node into a copy of this one: an autoscaler with the same ports),
 * pointers borrowed from environ, plus parent (borrowed, "SL_AUTOSCALE_PARENT=<our pid>"), which
 * makes a sluice child ask the kernel for SIGTERM when we die, even by
 * kill -9 (see sl_autoscale_child_guard).
 */
static char **child_env(const char *parent)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = sl_calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "SLUICE_", 7) != 0 &&
            strncmp(environ[i], SL_AS_PARENT_ENV "=", sizeof SL_AS_PARENT_ENV) != 0)
            env[k++] = environ[i];
    env[k++] = (char *)parent;
    return env;
}

static int read_file(const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return SL_ENOTFOUND;
    char *buf = sl_malloc(TEMPLATE_MAX + 1);
    size_t n = buf ? fread(buf, 1, TEMPLATE_MAX + 1, f) : 0;
    fclose(f);
    if (!buf)
        return SL_ENOMEM;
    if (n > TEMPLATE_MAX) {
        sl_free(buf);
        return SL_ETOOBIG;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static int process_launch(sl_as_driver_t *d, const sl_as_decision_t *dec, const char *id)
{
    char path[4200], logp[4200], datadir[4200], ports[N_PORTS][8];
    char *tmpl = NULL, *text = NULL;
    char **env = NULL;
    int fd = -1, rc;
    child_t *c = NULL;
    if (child_find(d, id)) {
        SL_LOGI(&g_ctx, "autoscale: node %s already launched (decision %s): skipped", id, dec->id);
        return 0;
    }
    if (d->n_running >= d->cfg->process_max) {
        SL_LOGW(&g_ctx, "autoscale: cannot start node %s: %d processes running "
                "(autoscale.process_max)", id, d->n_running);
        return SL_ETOOBIG;
    }
    if (!(c = sl_calloc(1, sizeof *c)))
        return SL_ENOMEM;
    c->drv = d;
    snprintf(c->id, sizeof c->id, "%s", id);
    if ((rc = take_ports(d, c->ports))) {
        SL_LOGW(&g_ctx, "autoscale: cannot start node %s: no %d free ports in %lld..%lld", id,
                N_PORTS, (long long)d->cfg->process_port_min, (long long)d->cfg->process_port_max);
        goto fail;
    }
    for (int i = 0; i < N_PORTS; i++)
        snprintf(ports[i], sizeof ports[i], "%u", c->ports[i]);
    snprintf(datadir, sizeof datadir, "%s/%s", d->dir, id);
    snprintf(path, sizeof path, "%s/%s.yml", d->dir, id);
    snprintf(logp, sizeof logp, "%s/%s.log", d->dir, id);
    if ((rc = make_dir(datadir))) {
        SL_LOGW(&g_ctx, "autoscale: cannot create %s: %s", datadir, strerror(errno));
        goto fail;
    }
    if ((rc = read_file(d->cfg->process_config, &tmpl))) {
        SL_LOGW(&g_ctx, "autoscale: cannot read the config template %s: %s",
                d->cfg->process_config, sl_strerror(rc));
        goto fail;
    }
    const char *vars[] = {"node_id", id, "role", dec->role, "group", dec->group, "subgroup",
                          dec->sub, "dir", datadir, "rtmp_port", ports[0], "http_port", ports[1],
                          "rtsp_port", ports[2], "srt_port", ports[3], "webrtc_port", ports[4],
                          NULL, NULL};
    rc = SL_ENOMEM;
    if (!(text = sl_as_template_fill(tmpl, vars))) {
        SL_LOGW(&g_ctx, "autoscale: cannot fill the config template for node %s (over 1 MB?)", id);
        goto fail;
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, strlen(text), f) != strlen(text) || fclose(f)) {
        if (f)
            fclose(f);
        SL_LOGW(&g_ctx, "autoscale: cannot write %s", path);
        rc = SL_EIO;
        goto fail;
    }
    fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        SL_LOGW(&g_ctx, "autoscale: cannot open %s: %s", logp, strerror(errno));
        rc = SL_EIO;
        goto fail;
    }
    char parent[64];
    snprintf(parent, sizeof parent, SL_AS_PARENT_ENV "=%ld", (long)getpid());
    if (!(env = child_env(parent)))
        goto fail;
    char *args[] = {d->binary, "--config", path, NULL};
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = fd},
        {.flags = UV_INHERIT_FD, .data.fd = fd}};
    uv_process_options_t opt = {.exit_cb = on_child_exit, .file = d->binary, .args = args,
                                .env = env, .cwd = datadir, .stdio_count = 3, .stdio = stdio};
    c->proc.data = c;
    uv_timer_init(d->loop, &c->kill_timer);
    c->kill_timer.data = c;
    if ((rc = uv_spawn(d->loop, &c->proc, &opt))) {
        SL_LOGW(&g_ctx, "autoscale: cannot start %s for node %s: %s", d->binary, id,
                uv_strerror(rc));
        /* the process handle must be closed even when spawn failed */
        sl_list_push_back(&d->children, &c->link);
        child_close(c);
        c = NULL;
        goto fail;
    }
    c->running = 1;
    d->n_running++;
    sl_list_push_back(&d->children, &c->link);
    SL_LOGI(&g_ctx, "autoscale: started node %s (role %s, group %s/%s, pid %d, rtmp %u, http %u) "
            "for %s; log %s", id, dec->role, dec->group, dec->sub, c->proc.pid, c->ports[0],
            c->ports[1], dec->id, logp);
    c = NULL;
    rc = 0;
fail:
    if (fd >= 0)
        close(fd);
    sl_free(env);
    sl_free(text);
    sl_free(tmpl);
    sl_free(c);
    return rc;
}

static int process_stop(sl_as_driver_t *d, const char *id)
{
    child_t *c = child_find(d, id);
    if (!c || !c->running) {
        SL_LOGD(&g_ctx, "autoscale: node %s has no running process here", id);
        return 0;
    }
    if (!c->term_sent) {
        c->term_sent = 1;
        SL_LOGI(&g_ctx, "autoscale: stopping node %s (pid %d): SIGTERM", id, c->proc.pid);
        uv_process_kill(&c->proc, SIGTERM);
        uv_timer_start(&c->kill_timer, on_kill_timer, KILL_GRACE_MS, 0);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* webhook driver                                                      */

static void delivery_send(delivery_t *w);

static void on_delivery_closed(uv_handle_t *h)
{
    delivery_t *w = h->data;
    sl_as_driver_t *d = w->drv;
    d->open_handles--;
    sl_free(w->body);
    sl_free(w);
    maybe_free(d);
}

static void outbox_forget(sl_as_driver_t *d, const char *id);

/* Ends a delivery; forget: delivered or given up, so its outbox row goes too (at close the
 * row stays, and the delivery starts again at the next start). */
static void delivery_end(delivery_t *w, int forget)
{
    if (forget)
        outbox_forget(w->drv, w->id);
    sl_list_remove(&w->link);
    w->drv->n_deliveries--;
    w->drv->open_handles++;
    uv_close((uv_handle_t *)&w->timer, on_delivery_closed);
}

static void on_retry(uv_timer_t *t)
{
    delivery_send(t->data);
}

static void on_posted(int status, const char *body, size_t len, void *ud)
{
    (void)body;
    (void)len;
    delivery_t *w = ud;
    w->req = NULL;
    if (status >= 200 && status <= 299) {
        SL_LOGI(&g_ctx, "autoscale: decision %s delivered (HTTP %d, attempt %u)", w->id, status,
                w->attempts);
        delivery_end(w, 1);
        return;
    }
    if (w->attempts > (uint32_t)w->drv->cfg->webhook_retries) {
        SL_LOGE(&g_ctx, "autoscale: decision %s not delivered after %u attempts (last: %s%d): "
                "given up", w->id, w->attempts, status < 0 ? "error " : "HTTP ", status);
        delivery_end(w, 1);
        return;
    }
    uint64_t wait = sl_backoff_fail(&w->bo, WH_BACKOFF_MIN_MS, WH_BACKOFF_MAX_MS);
    SL_LOGW(&g_ctx, "autoscale: decision %s: %s%d; retry in %llu ms", w->id,
            status < 0 ? "error " : "HTTP ", status, (unsigned long long)wait);
    uv_timer_start(&w->timer, on_retry, wait, 0);
}

static void delivery_send(delivery_t *w)
{
    sl_as_driver_t *d = w->drv;
    char ts[32], sig[72], h_ts[64], h_sig[96], h_id[sizeof w->id + 32], h_at[48];
    const char *headers[5] = {NULL};
    int n = 0;
    w->attempts++;
    snprintf(ts, sizeof ts, "%llu", (unsigned long long)(sl_time_wall_ms() / 1000));
    snprintf(h_ts, sizeof h_ts, "X-Sluice-Timestamp: %s", ts);
    snprintf(h_id, sizeof h_id, "X-Sluice-Delivery: %s", w->id);
    snprintf(h_at, sizeof h_at, "X-Sluice-Attempt: %u", w->attempts);
    headers[n++] = h_ts;
    headers[n++] = h_id;
    headers[n++] = h_at;
    if (d->cfg->webhook_secret && d->cfg->webhook_secret[0] &&
        sl_as_sign(d->cfg->webhook_secret, ts, w->body, sig) == 0) {
        snprintf(h_sig, sizeof h_sig, "X-Sluice-Signature: %s", sig);
        headers[n++] = h_sig;
    }
    int rc = sl_http_client_post_json(d->http, d->cfg->webhook_url, w->body,
                                      (uint64_t)d->cfg->webhook_timeout_ms, headers, on_posted, w,
                                      &w->req);
    if (rc) {
        w->req = NULL;
        on_posted(rc, "", 0, w);
    }
}

/* A delivery of body (copied) under id, sent now: 0 or SL_ENOMEM. */
static int delivery_start(sl_as_driver_t *d, const char *id, const char *body)
{
    delivery_t *w = sl_calloc(1, sizeof *w);
    if (!w || !(w->body = sl_strdup(body))) {
        sl_free(w);
        return SL_ENOMEM;
    }
    w->drv = d;
    snprintf(w->id, sizeof w->id, "%s", id);
    sl_backoff_init(&w->bo, sl_time_mono_ms() ^ (uintptr_t)w);
    uv_timer_init(d->loop, &w->timer);
    w->timer.data = w;
    sl_list_push_back(&d->deliveries, &w->link);
    d->n_deliveries++;
    delivery_send(w);
    return 0;
}

/* ---- the durable outbox: table autoscale_webhook in the store (sluice.db) ---- */

static const char *const g_outbox_migrations[] = {
    "CREATE TABLE IF NOT EXISTS autoscale_webhook("
    " id TEXT PRIMARY KEY, body TEXT NOT NULL, created_ms INTEGER NOT NULL)",
};

typedef struct outbox_op {
    sl_as_driver_t *d;
    int insert;                         /* 1: insert, then send; 0: delete */
    char id[sizeof(((delivery_t *)0)->id)];
    char *body;                         /* insert: sl_malloc'ed */
} outbox_op_t;

static int outbox_work(struct sqlite3 *db, void *arg)
{
    outbox_op_t *op = arg;
    sqlite3_stmt *st = NULL;
    const char *sql = op->insert
        ? "INSERT OR REPLACE INTO autoscale_webhook(id, body, created_ms) VALUES(?1, ?2, ?3)"
        : "DELETE FROM autoscale_webhook WHERE id = ?1";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return SL_EIO;
    sqlite3_bind_text(st, 1, op->id, -1, SQLITE_STATIC);
    if (op->insert) {
        sqlite3_bind_text(st, 2, op->body, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)sl_time_wall_ms());
    }
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SL_EIO;
    sqlite3_finalize(st);
    return rc;
}

static void outbox_done(void *arg, int rc)
{
    outbox_op_t *op = arg;
    sl_as_driver_t *d = op->d;
    d->open_handles--;
    if (rc)
        SL_LOGW(&g_ctx, "autoscale: the webhook outbox could not %s decision %s (%s)",
                op->insert ? "keep" : "forget", op->id, sl_strerror(rc));
    /* Sent once it is kept, so that a crash never loses a decision it did not send. */
    if (op->insert && !d->closing && delivery_start(d, op->id, op->body))
        SL_LOGE(&g_ctx, "autoscale: out of memory: decision %s not sent", op->id);
    sl_free(op->body);
    sl_free(op);
    maybe_free(d);
}

static int outbox_submit(sl_as_driver_t *d, int insert, const char *id, const char *body)
{
    outbox_op_t *op = sl_calloc(1, sizeof *op);
    if (!op || (body && !(op->body = sl_strdup(body)))) {
        sl_free(op);
        return SL_ENOMEM;
    }
    op->d = d;
    op->insert = insert;
    snprintf(op->id, sizeof op->id, "%s", id);
    int rc = sl_store_submit(d->store, outbox_work, outbox_done, op);
    if (rc) {
        sl_free(op->body);
        sl_free(op);
        return rc;
    }
    d->open_handles++;
    return 0;
}

static void outbox_forget(sl_as_driver_t *d, const char *id)
{
    if (d->store && outbox_submit(d, 0, id, NULL))
        SL_LOGW(&g_ctx, "autoscale: the webhook outbox could not forget decision %s", id);
}

typedef struct outbox_load {
    json_t *rows;                       /* [[id, body], ...] */
} outbox_load_t;

static int outbox_load_work(struct sqlite3 *db, void *arg)
{
    outbox_load_t *l = arg;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT id, body FROM autoscale_webhook ORDER BY created_ms, id "
                               "LIMIT 256", -1, &st, NULL) != SQLITE_OK)
        return SL_EIO;
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(l->rows,
                              json_pack("[s, s]", (const char *)sqlite3_column_text(st, 0),
                                        (const char *)sqlite3_column_text(st, 1)));
    sqlite3_finalize(st);
    return 0;
}

int sl_as_driver_use_store(sl_as_driver_t *d, sl_store_t *store)
{
    if (d->kind != SL_AS_DRIVER_WEBHOOK || !store)
        return 0;
    int rc = sl_store_migrate(store, "autoscale", g_outbox_migrations,
                              sizeof g_outbox_migrations / sizeof g_outbox_migrations[0]);
    if (rc)
        return rc;
    d->store = store;
    outbox_load_t l = {.rows = json_array()};
    rc = sl_store_call(store, outbox_load_work, &l);
    size_t i;
    json_t *row;
    json_array_foreach(l.rows, i, row) {
        const char *id = json_string_value(json_array_get(row, 0));
        SL_LOGI(&g_ctx, "autoscale: decision %s from before the restart: delivering it", id);
        if (delivery_start(d, id, json_string_value(json_array_get(row, 1))))
            break;
    }
    json_decref(l.rows);
    return rc;
}

static int webhook_post(sl_as_driver_t *d, const sl_as_decision_t *dec)
{
    if (d->n_deliveries >= WH_MAX_INFLIGHT) {
        SL_LOGE(&g_ctx, "autoscale: %d decisions waiting for the webhook: %s dropped",
                d->n_deliveries, dec->id);
        return SL_ETOOBIG;
    }
    json_t *nodes = json_array();
    for (int i = 0; nodes && i < dec->n_nodes; i++)
        json_array_append_new(nodes, json_string(dec->nodes[i]));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:o?, s:s, s:I}", "id", dec->id,
                          "group", dec->group, "subGroup", dec->sub, "role", dec->role, "action",
                          sl_as_action_name(dec->action), "count", dec->n_nodes, "nodes", nodes,
                          "reason", dec->reason ? dec->reason : "", "timestamp",
                          (json_int_t)sl_time_wall_ms());
    char *txt = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!txt)
        return SL_ENOMEM;
    /* Durable: kept in the store first, sent when kept (outbox_done); without a store, now. */
    int rc = d->store ? outbox_submit(d, 1, dec->id, txt) : delivery_start(d, dec->id, txt);
    free(txt);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the driver                                                          */

int sl_as_driver_new(uv_loop_t *loop, const sl_autoscale_config_t *cfg, const char *data_dir,
                     sl_as_driver_t **out, const char **why)
{
    *why = NULL;
    sl_as_driver_t *d = sl_calloc(1, sizeof *d);
    if (!d)
        return SL_ENOMEM;
    d->loop = loop;
    d->cfg = cfg;
    d->kind = (int)cfg->driver;
    sl_list_init(&d->children);
    sl_list_init(&d->deliveries);
    int rc = SL_EINVAL;
    if (d->kind == SL_AS_DRIVER_PROCESS) {
        char exe[4096];
        size_t exe_len = sizeof exe;
        if (!cfg->process_config || !cfg->process_config[0]) {
            *why = "autoscale.process_config (the nodes' config template) is required";
            goto fail;
        }
        if (cfg->process_port_max - cfg->process_port_min + 1 < N_PORTS) {
            *why = "autoscale.process_port_min..process_port_max holds fewer than 5 ports";
            goto fail;
        }
        if (cfg->process_binary && cfg->process_binary[0]) {
            d->binary = sl_strdup(cfg->process_binary);
        } else if (uv_exepath(exe, &exe_len) == 0) {
            d->binary = sl_strdup(exe);
        } else {
            *why = "cannot find this process's binary: set autoscale.process_binary";
            goto fail;
        }
        char dir[4096];
        if (cfg->process_dir && cfg->process_dir[0])
            snprintf(dir, sizeof dir, "%s", cfg->process_dir);
        else
            snprintf(dir, sizeof dir, "%s/autoscale", data_dir ? data_dir : "./data");
        rc = SL_ENOMEM;
        if (!d->binary || !(d->dir = sl_strdup(dir)))
            goto fail;
    } else if (d->kind == SL_AS_DRIVER_WEBHOOK) {
        if (!cfg->webhook_url || !cfg->webhook_url[0]) {
            *why = "autoscale.webhook_url is required by the webhook driver";
            goto fail;
        }
        if ((rc = sl_http_client_new(loop, NULL, &d->http)))
            goto fail;
    }
    *out = d;
    return 0;
fail:
    sl_free(d->binary);
    sl_free(d->dir);
    sl_free(d);
    return rc;
}

const char *sl_as_driver_name(const sl_as_driver_t *d)
{
    return d->kind == SL_AS_DRIVER_PROCESS ? "process"
           : d->kind == SL_AS_DRIVER_WEBHOOK ? "webhook" : "none";
}

int sl_as_driver_running(const sl_as_driver_t *d, const char *id)
{
    if (d->kind != SL_AS_DRIVER_PROCESS)
        return -1;
    const child_t *c = child_find(d, id);
    return c && c->running;
}

int sl_as_driver_failed(sl_as_driver_t *d, const char *id)
{
    for (int i = 0; i < 16; i++)
        if (d->failed[i][0] && strcmp(d->failed[i], id) == 0) {
            d->failed[i][0] = '\0';
            return 1;
        }
    return 0;
}

int sl_as_driver_apply(sl_as_driver_t *d, const sl_as_decision_t *dec)
{
    if (d->closing)
        return SL_ECLOSED;
    if (d->kind == SL_AS_DRIVER_WEBHOOK)
        return webhook_post(d, dec);
    if (d->kind != SL_AS_DRIVER_PROCESS)
        return 0;
    int rc = 0;
    for (int i = 0; i < dec->n_nodes; i++) {
        int r = dec->action == SL_AS_SCALE_OUT ? process_launch(d, dec, dec->nodes[i])
                                               : process_stop(d, dec->nodes[i]);
        if (r && !rc)
            rc = r;
    }
    return rc;
}

void sl_as_driver_close(sl_as_driver_t *d)
{
    if (!d || d->closing)
        return;
    d->closing = 1;
    while (!sl_list_empty(&d->children)) {
        child_t *c = sl_container_of(d->children.next, child_t, link);
        sl_list_remove(&c->link);
        sl_list_init(&c->link);
        if (c->running) {
            SL_LOGI(&g_ctx, "autoscale: stopping node %s (pid %d) at exit: SIGTERM", c->id,
                    c->proc.pid);
            uv_process_kill(&c->proc, SIGTERM);
        }
        if (!uv_is_closing((uv_handle_t *)&c->proc))
            child_close(c);
    }
    while (!sl_list_empty(&d->deliveries)) {
        delivery_t *w = sl_container_of(d->deliveries.next, delivery_t, link);
        if (w->req)
            sl_http_client_cancel(w->req);
        w->req = NULL;
        uv_timer_stop(&w->timer);
        delivery_end(w, 0);
    }
    /* frees itself once its handles are closed (the loop runs after the modules stop) */
    sl_http_client_free(d->http);
    d->http = NULL;
    maybe_free(d);
}
