/*
 * The exec hooks module (see exec_hooks.h): a bus listener that turns an
 * event with a configured command into a job, a FIFO of jobs bounded by
 * exec.max_concurrent, and the life of each child process on the loop:
 * uv_spawn, two pipes read line by line into the log, a timer for
 * exec.timeout (SIGTERM to the hook's process group, then SIGKILL), and
 * the exit status.
 *
 * A job is built completely when its event arrives (arguments substituted,
 * environment made, log context copied), since the event's strings only
 * live for the delivery. A job's memory goes when its last handle has
 * closed (process, timer, both pipes), never inside one of its own
 * callbacks' stacks; the next queued job starts from there.
 */
#include "modules/exec_hooks/exec_hooks.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "app/events.h"
#include "base/alloc.h"
#include "base/list.h"
#include "base/log.h"
#include "base/redact.h"
#include "sluice/errors.h"
#include "modules/exec_hooks/exec_hooks_config.h"

extern char **environ;

#define MAX_QUEUED 1000          /* jobs waiting for a slot; more are dropped (logged) */
#define KILL_GRACE_MS 3000       /* SIGTERM, then SIGKILL this much later */
#define PIPE_DRAIN_MS 1000       /* after exit, output still read for this long */
#define LINE_MAX_BYTES 960       /* longer output lines are logged in pieces (log lines hold 1 KB) */
#define READ_BYTES 4096

typedef struct sl_exec_hooks sl_exec_hooks_t;

/* The command configured for one event type. */
typedef struct {
    const char *hook;            /* "on_publish" (static), NULL = no command */
    const char *cmd;             /* the configured text (config-owned) */
    char **argv_tmpl;            /* split template (owned); NULL in shell mode */
} hook_t;

/* One output stream of a running hook. */
typedef struct {
    uv_pipe_t pipe;
    int open;                    /* not yet closed */
    size_t len;                  /* bytes in line */
    char line[LINE_MAX_BYTES + 1];
    char rbuf[READ_BYTES];       /* the loop reads into this */
} out_t;

typedef struct job {
    sl_list_t link;              /* in x->queue, then x->running */
    sl_exec_hooks_t *x;
    const char *hook;            /* static name */
    uint64_t event_id;
    char **argv;                 /* owned, NULL-terminated */
    char **env;                  /* NULL-terminated; entries from env_own on are owned */
    size_t env_own;
    char *sid, *proto, *app, *stream; /* log context copies (owned, may be NULL) */
    sl_log_ctx_t log;
    uv_process_t proc;
    uv_timer_t timer;
    out_t out[2];                /* stdout, stderr */
    int n_handles;               /* initialised and not yet closed */
    int spawned, exited, closing;
    int kill_stage;              /* 0 none, 1 SIGTERM sent, 2 SIGKILL sent */
    uint64_t start_ms;           /* loop time at spawn */
} job_t;

struct sl_exec_hooks {
    sl_core_t *core;             /* borrowed */
    const sl_config_t *cfg;      /* borrowed, read-only */
    hook_t hooks[SL_EV_COUNT];   /* by event type */
    int listener;                /* bus listener id, 0 = none */
    sl_list_t queue;             /* jobs waiting, oldest first */
    size_t n_queued;
    sl_list_t running;           /* jobs started and not yet freed */
    size_t n_running;
    int stopping;
};

static void pump(sl_exec_hooks_t *x);
static void free_hooks(hook_t *hooks);
static void on_timer(uv_timer_t *t);

/* ------------------------------------------------------------------ */
/* jobs: building                                                      */

static void job_free(job_t *j)
{
    sl__exec_argv_free(j->argv);
    if (j->env) {
        for (size_t i = j->env_own; j->env[i]; i++)
            sl_free(j->env[i]);
        sl_free(j->env);
    }
    sl_free(j->sid);
    sl_free(j->proto);
    sl_free(j->app);
    sl_free(j->stream);
    sl_free(j);
}

/* Does environ entry e set one of the names in ours ("NAME=value")? */
static int env_overridden(const char *e, char *const *ours, size_t n)
{
    const char *eq = strchr(e, '=');
    size_t len = eq ? (size_t)(eq - e) : strlen(e);
    for (size_t i = 0; i < n; i++)
        if (strncmp(ours[i], e, len) == 0 && ours[i][len] == '=')
            return 1;
    return 0;
}

#define N_VARS 17

/*
 * Makes the job's environment: sluice's own (borrowed strings: environ
 * lives as long as the process) minus any variable we set, then ours.
 */
static int build_env(job_t *j, const sl_exec_var_t *vars, size_t n_vars, const char *json)
{
    /* Variable names for the substitution names, in the same order. */
    static const char *const env_names[N_VARS] = {
        "SLUICE_EVENT", "SLUICE_HOOK", "SLUICE_EVENT_ID", "SLUICE_EVENT_TIME", "SLUICE_APP",
        "SLUICE_STREAM", "SLUICE_NAME", "SLUICE_STREAM_PATH", "SLUICE_EVENT_PATH",
        "SLUICE_SESSION", "SLUICE_PROTOCOL", "SLUICE_REMOTE_ADDRESS", "SLUICE_REMOTE_PORT",
        "SLUICE_NODE", "SLUICE_DATA_DIR", "SLUICE_RTMP_PORT", "SLUICE_HTTP_PORT",
    };
    char *ours[N_VARS + 8];
    size_t n = 0;
    int rc = SL_ENOMEM;
    for (size_t i = 0; i < n_vars && i < N_VARS; i++) {
        size_t len = strlen(env_names[i]) + strlen(vars[i].value) + 2;
        if (!(ours[n] = sl_malloc(len)))
            goto fail;
        snprintf(ours[n++], len, "%s=%s", env_names[i], vars[i].value);
    }
    /* Fields that are not substitutions: only in the environment. */
    const char *extra[][2] = {
        {"SLUICE_QUERY", vars[N_VARS].value},
        {"SLUICE_REASON", vars[N_VARS + 1].value},
        {"SLUICE_BYTES_IN", vars[N_VARS + 2].value},
        {"SLUICE_BYTES_OUT", vars[N_VARS + 3].value},
        {"SLUICE_DURATION_MS", vars[N_VARS + 4].value},
        {"SLUICE_EVENT_JSON", json ? json : "{}"},
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        size_t len = strlen(extra[i][0]) + strlen(extra[i][1]) + 2;
        if (!(ours[n] = sl_malloc(len)))
            goto fail;
        snprintf(ours[n++], len, "%s=%s", extra[i][0], extra[i][1]);
    }
    size_t n_env = 0;
    for (char **e = environ; e && *e; e++)
        n_env++;
    j->env = sl_calloc(n_env + n + 1, sizeof(char *));
    if (!j->env)
        goto fail;
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++)
        if (!env_overridden(environ[i], ours, n))
            j->env[k++] = environ[i];
    j->env_own = k;
    for (size_t i = 0; i < n; i++)
        j->env[k++] = ours[i];
    j->env[k] = NULL;
    return 0;
fail:
    while (n)
        sl_free(ours[--n]);
    return rc;
}

/* Copies a string for the job (NULL stays NULL). 0 or SL_ENOMEM. */
static int dup_field(char **dst, const char *src)
{
    *dst = NULL;
    if (src && !(*dst = sl_strdup(src)))
        return SL_ENOMEM;
    return 0;
}

/* Builds the job for an event (everything copied). NULL on ENOMEM/ETOOBIG, or when
 * an event value would be read as an option (logged either way). */
static job_t *job_new(sl_exec_hooks_t *x, const hook_t *h, const sl_event_t *ev)
{
    const sl_config_t *cfg = x->cfg;
    char id[24], time_ms[24], port[16], rtmp_port[16], http_port[16], bin[24], bout[24], dur[24];
    char stream_path[1024], name[1024];
    snprintf(id, sizeof id, "%llu", (unsigned long long)ev->id);
    snprintf(time_ms, sizeof time_ms, "%llu", (unsigned long long)ev->time_ms);
    snprintf(port, sizeof port, "%d", ev->remote_port);
    snprintf(rtmp_port, sizeof rtmp_port, "%lld", (long long)sl_config_int(cfg, "rtmp.port"));
    snprintf(http_port, sizeof http_port, "%lld", (long long)sl_config_int(cfg, "http.port"));
    snprintf(bin, sizeof bin, "%llu", (unsigned long long)ev->bytes_in);
    snprintf(bout, sizeof bout, "%llu", (unsigned long long)ev->bytes_out);
    snprintf(dur, sizeof dur, "%llu", (unsigned long long)ev->duration_ms);
    if (ev->app && ev->stream)
        snprintf(stream_path, sizeof stream_path, "%s/%s", ev->app, ev->stream);
    else
        snprintf(stream_path, sizeof stream_path, "%s", ev->app ? ev->app : "");
    snprintf(name, sizeof name, "%s", stream_path);
    for (char *c = name; *c; c++)
        if (*c == '/')
            *c = '_';
#define V(s) ((s) ? (s) : "")
    /* The first N_VARS are substitutions and SLUICE_* variables (build_env
     * names them in this order); the rest are variables only. */
    const sl_exec_var_t vars[N_VARS + 5] = {
        {"event", sl_event_name(ev->type)},
        {"hook", h->hook},
        {"id", id},
        {"time", time_ms},
        {"app", V(ev->app)},
        {"stream", V(ev->stream)},
        {"name", name},
        {"stream_path", stream_path},
        {"path", V(ev->path)},
        {"session", V(ev->session_id)},
        {"protocol", V(ev->proto)},
        {"remote_address", V(ev->remote_addr)},
        {"remote_port", ev->remote_port ? port : ""},
        {"node", V(cfg->server_node_name)},
        {"data_dir", V(cfg->server_data_dir)},
        {"rtmp_port", rtmp_port},
        {"http_port", http_port},
        {"query", V(ev->query)},
        {"reason", V(ev->reason)},
        {"bytes_in", bin},
        {"bytes_out", bout},
        {"duration_ms", dur},
    };
#undef V
    job_t *j = sl_calloc(1, sizeof(*j));
    char *json = NULL;
    if (!j)
        goto fail;
    sl_list_init(&j->link);
    j->x = x;
    j->hook = h->hook;
    j->event_id = ev->id;
    if (dup_field(&j->sid, ev->session_id) || dup_field(&j->proto, ev->proto) ||
        dup_field(&j->app, ev->app) || dup_field(&j->stream, ev->stream))
        goto fail;
    j->log = (sl_log_ctx_t){.sid = j->sid, .proto = j->proto, .app = j->app, .stream = j->stream};
    /* A value that would start an argument with '-' (a stream named -rf or
     * --output=x) is never handed to the program, which would read it as an
     * option: the hook is not run for this event (one line, this event). */
    const char *opt_var = NULL;
    int option_like = 0;
    if (sl_exec_cfg(cfg)->shell)
        option_like = sl__exec_option_like(h->cmd, vars, N_VARS, 1, &opt_var);
    for (size_t i = 0; !sl_exec_cfg(cfg)->shell && h->argv_tmpl[i] && !option_like; i++)
        option_like = sl__exec_option_like(h->argv_tmpl[i], vars, N_VARS, 0, &opt_var);
    if (option_like) {
        SL_LOGW(&j->log, "exec %s: not run for event %llu: {%s} starts with '-' and would be "
                "read as an option", h->hook, (unsigned long long)ev->id, opt_var);
        job_free(j);
        return NULL;
    }
    if (sl_exec_cfg(cfg)->shell) {
        j->argv = sl_calloc(4, sizeof(char *));
        if (!j->argv || !(j->argv[0] = sl_strdup("/bin/sh")) || !(j->argv[1] = sl_strdup("-c")) ||
            !(j->argv[2] = sl__exec_substitute(h->cmd, vars, N_VARS, 1)))
            goto fail;
    } else {
        size_t n = 0;
        while (h->argv_tmpl[n])
            n++;
        j->argv = sl_calloc(n + 1, sizeof(char *));
        if (!j->argv)
            goto fail;
        for (size_t i = 0; i < n; i++)
            if (!(j->argv[i] = sl__exec_substitute(h->argv_tmpl[i], vars, N_VARS, 0)))
                goto fail;
    }
    const char *node = cfg->server_node_name;
    json = sl_event_to_json(ev, node && node[0] ? node : NULL);
    if (!json || build_env(j, vars, N_VARS + 5, json))
        goto fail;
    sl_free(json);
    return j;
fail:
    SL_LOGE(&(sl_log_ctx_t){.sid = ev->session_id, .proto = ev->proto, .app = ev->app,
                            .stream = ev->stream},
            "exec %s: out of memory (or a command over 64 KB): event %llu not handled", h->hook,
            (unsigned long long)ev->id);
    sl_free(json);
    if (j)
        job_free(j);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* jobs: running                                                       */

static void on_handle_closed(uv_handle_t *h)
{
    job_t *j = h->data;
    if (--j->n_handles > 0)
        return;
    sl_exec_hooks_t *x = j->x;
    sl_list_remove(&j->link);
    x->n_running--;
    job_free(j);
    pump(x);
}

static void close_handle(job_t *j, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

/* Logs what is in an output's line buffer. */
static void flush_line(job_t *j, out_t *o)
{
    if (!o->len)
        return;
    o->line[o->len] = '\0';
    char rb[SL_REDACT_MAX];
    SL_LOGI(&j->log, "exec %s [pid %d] %s: %s", j->hook, j->proc.pid,
            o == &j->out[0] ? "stdout" : "stderr", sl_redact(o->line, rb, sizeof rb));
    o->len = 0;
}

static void close_out(job_t *j, out_t *o)
{
    if (!o->open)
        return;
    flush_line(j, o);
    o->open = 0;
    close_handle(j, (uv_handle_t *)&o->pipe);
}

/* Closes whatever is still open once the process is gone and output drained. */
static void maybe_finish(job_t *j)
{
    if (!j->exited || j->out[0].open || j->out[1].open || j->closing)
        return;
    j->closing = 1;
    close_handle(j, (uv_handle_t *)&j->timer);
    close_handle(j, (uv_handle_t *)&j->proc);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    out_t *o = sl_container_of((uv_pipe_t *)h, out_t, pipe);
    *buf = uv_buf_init(o->rbuf, sizeof o->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    job_t *j = s->data;
    out_t *o = sl_container_of((uv_pipe_t *)s, out_t, pipe);
    if (n < 0) { /* EOF or error: the hook closed its end */
        close_out(j, o);
        maybe_finish(j);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char c = buf->base[i];
        if (c == '\n' || c == '\r') {
            flush_line(j, o);
            continue;
        }
        o->line[o->len++] = c;
        if (o->len == LINE_MAX_BYTES)
            flush_line(j, o);
    }
}

static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    job_t *j = p->data;
    uint64_t ms = uv_now(j->x->core->loop) - j->start_ms;
    j->exited = 1;
    if (term_signal)
        SL_LOGW(&j->log, "exec %s [pid %d] killed by signal %d after %llu ms%s", j->hook, p->pid,
                term_signal, (unsigned long long)ms, j->kill_stage ? " (timeout or shutdown)" : "");
    else if (status)
        SL_LOGW(&j->log, "exec %s [pid %d] exited with status %lld after %llu ms", j->hook, p->pid,
                (long long)status, (unsigned long long)ms);
    else
        SL_LOGI(&j->log, "exec %s [pid %d] exited with status 0 after %llu ms", j->hook, p->pid,
                (unsigned long long)ms);
    if (j->out[0].open || j->out[1].open) {
        /* Output may still be in the pipes; a hook that left a background
         * child holding them open does not keep its slot for long. */
        uv_timer_start(&j->timer, on_timer, PIPE_DRAIN_MS, 0);
    }
    maybe_finish(j);
}

/* Sends sig to the hook's whole process group (it leads its own session). */
static void kill_group(job_t *j, int sig)
{
    if (uv_kill(-j->proc.pid, sig) != 0)
        uv_kill(j->proc.pid, sig);
}

static void on_timer(uv_timer_t *t)
{
    job_t *j = t->data;
    if (j->exited) { /* the drain time is over */
        close_out(j, &j->out[0]);
        close_out(j, &j->out[1]);
        maybe_finish(j);
        return;
    }
    if (j->kill_stage == 0) {
        SL_LOGW(&j->log, "exec %s [pid %d] still running after %lld ms: SIGTERM", j->hook,
                j->proc.pid, (long long)sl_exec_cfg(j->x->cfg)->timeout_ms);
        j->kill_stage = 1;
        kill_group(j, SIGTERM);
        uv_timer_start(&j->timer, on_timer, KILL_GRACE_MS, 0);
    } else if (j->kill_stage == 1) {
        SL_LOGW(&j->log, "exec %s [pid %d] ignored SIGTERM: SIGKILL", j->hook, j->proc.pid);
        j->kill_stage = 2;
        kill_group(j, SIGKILL);
    }
}

/* Starts a job's process. On failure the job's handles are closing and it goes away. */
static void job_start(sl_exec_hooks_t *x, job_t *j)
{
    uv_loop_t *loop = x->core->loop;
    sl_list_push_back(&x->running, &j->link);
    x->n_running++;
    j->start_ms = uv_now(loop);
    uv_timer_init(loop, &j->timer);
    j->timer.data = j;
    j->n_handles++;
    for (int i = 0; i < 2; i++) {
        uv_pipe_init(loop, &j->out[i].pipe, 0);
        j->out[i].pipe.data = j;
        j->out[i].open = 1;
        j->n_handles++;
    }
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&j->out[0].pipe;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&j->out[1].pipe;
    uv_process_options_t opt;
    memset(&opt, 0, sizeof opt);
    opt.exit_cb = on_exit_cb;
    opt.file = j->argv[0];
    opt.args = j->argv;
    opt.env = j->env;
    opt.stdio_count = 3;
    opt.stdio = stdio;
    /* Its own session and process group, so that a timeout reaches the
     * children a hook starts (ffmpeg under a shell) too. */
    opt.flags = UV_PROCESS_DETACHED;
    j->proc.data = j;
    int rc = uv_spawn(loop, &j->proc, &opt);
    j->n_handles++; /* the process handle is initialised even when spawning fails */
    if (rc) {
        char rb[SL_REDACT_MAX];
        SL_LOGE(&j->log, "exec %s: cannot run '%s': %s", j->hook,
                sl_redact(j->argv[0], rb, sizeof rb), uv_strerror(rc));
        j->exited = 1;
        j->out[0].open = j->out[1].open = 0;
        j->closing = 1;
        close_handle(j, (uv_handle_t *)&j->out[0].pipe);
        close_handle(j, (uv_handle_t *)&j->out[1].pipe);
        close_handle(j, (uv_handle_t *)&j->timer);
        close_handle(j, (uv_handle_t *)&j->proc);
        return;
    }
    j->spawned = 1;
    char rb[SL_REDACT_MAX]; /* a substituted {query} may carry a token */
    SL_LOGI(&j->log, "exec %s [pid %d] started for event %llu: %s", j->hook, j->proc.pid,
            (unsigned long long)j->event_id,
            sl_redact(sl_exec_cfg(x->cfg)->shell ? j->argv[2] : j->argv[0], rb, sizeof rb));
    uv_read_start((uv_stream_t *)&j->out[0].pipe, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&j->out[1].pipe, on_alloc, on_read);
    uv_timer_start(&j->timer, on_timer, (uint64_t)sl_exec_cfg(x->cfg)->timeout_ms, 0);
}

/* Starts queued jobs while there are free slots. */
static void pump(sl_exec_hooks_t *x)
{
    while (!x->stopping && !sl_list_empty(&x->queue) &&
           x->n_running < (size_t)sl_exec_cfg(x->cfg)->max_concurrent) {
        job_t *j = sl_container_of(x->queue.next, job_t, link);
        sl_list_remove(&j->link);
        x->n_queued--;
        job_start(x, j);
    }
}

/* ------------------------------------------------------------------ */
/* the listener                                                        */

static void on_event(const sl_event_t *ev, void *ud)
{
    sl_exec_hooks_t *x = ud;
    if ((unsigned)ev->type >= SL_EV_COUNT || !x->hooks[ev->type].hook || x->stopping)
        return;
    const hook_t *h = &x->hooks[ev->type];
    if (x->n_queued >= MAX_QUEUED) {
        SL_LOGW(&(sl_log_ctx_t){.sid = ev->session_id, .proto = ev->proto, .app = ev->app,
                                .stream = ev->stream},
                "exec %s: %d hooks already waiting: event %llu skipped", h->hook, MAX_QUEUED,
                (unsigned long long)ev->id);
        return;
    }
    job_t *j = job_new(x, h, ev);
    if (!j)
        return;
    sl_list_push_back(&x->queue, &j->link);
    x->n_queued++;
    if (x->n_running >= (size_t)sl_exec_cfg(x->cfg)->max_concurrent)
        SL_LOGD(&j->log, "exec %s: queued (%zu running, %zu waiting)", h->hook, x->n_running,
                x->n_queued);
    pump(x);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */

static void ex_free(void *state)
{
    sl_exec_hooks_t *x = state;
    if (!x)
        return;
    if (x->listener > 0)
        sl_events_unsubscribe(x->core, x->listener);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &x->queue) {
        sl_list_remove(it);
        job_free(sl_container_of(it, job_t, link));
    }
    /* Running jobs are gone by now: stop() killed them and the loop ran
     * until their handles closed. */
    if (!sl_list_empty(&x->running))
        SL_LOGE(NULL, "exec: %zu hooks still running at exit (leaked)", x->n_running);
    free_hooks(x->hooks);
    sl_free(x);
}

/*
 * Fills hooks (zeroed by the caller, SL_EV_COUNT entries) with the commands
 * of cfg, split into argument templates unless exec.shell is on, and logs
 * each. Returns the number of hooks in *n_hooks; 0, or an error after
 * which hooks holds templates the caller frees (free_hooks).
 */
static int build_hooks(const sl_config_t *cfg, hook_t *hooks, size_t *n_hooks)
{
    const struct {
        sl_event_type_t type;
        const char *hook;
        const char *cmd;
    } table[] = {
        {SL_EV_CONNECT, "on_connect", sl_exec_cfg(cfg)->on_connect},
        {SL_EV_DISCONNECT, "on_disconnect", sl_exec_cfg(cfg)->on_disconnect},
        {SL_EV_PUBLISH, "on_publish", sl_exec_cfg(cfg)->on_publish},
        {SL_EV_UNPUBLISH, "on_unpublish", sl_exec_cfg(cfg)->on_unpublish},
        {SL_EV_PLAY, "on_play", sl_exec_cfg(cfg)->on_play},
        {SL_EV_PLAY_STOP, "on_play_stop", sl_exec_cfg(cfg)->on_play_stop},
        {SL_EV_RECORD_DONE, "on_record_done", sl_exec_cfg(cfg)->on_record_done},
    };
    *n_hooks = 0;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const char *cmd = table[i].cmd;
        if (!cmd || !cmd[strspn(cmd, " \t")])
            continue;
        hook_t *h = &hooks[table[i].type];
        h->hook = table[i].hook;
        h->cmd = cmd;
        if (!sl_exec_cfg(cfg)->shell) {
            size_t argc;
            int rc = sl__exec_split(cmd, &h->argv_tmpl, &argc);
            if (rc) {
                SL_LOGE(NULL, "exec.%s: %s", h->hook,
                        rc == SL_EINVAL ? "unterminated double quote" : sl_strerror(rc));
                return rc;
            }
        }
        (*n_hooks)++;
        char rb[SL_REDACT_MAX]; /* API_TOKEN=... or --secret=... in the command */
        SL_LOGI(NULL, "exec.%s: %s%s", h->hook, sl_exec_cfg(cfg)->shell ? "/bin/sh -c " : "",
                sl_redact(cmd, rb, sizeof rb));
    }
    return 0;
}

static void free_hooks(hook_t *hooks)
{
    for (int i = 0; i < SL_EV_COUNT; i++) {
        sl__exec_argv_free(hooks[i].argv_tmpl);
        hooks[i].argv_tmpl = NULL;
    }
}

/* Counts the hooks configured in cfg without building them. */
static size_t count_hooks(const sl_config_t *cfg)
{
    const sl_exec_config_t *ec = sl_exec_cfg(cfg);
    const char *cmds[] = {ec->on_connect, ec->on_disconnect, ec->on_publish, ec->on_unpublish,
                          ec->on_play, ec->on_play_stop, ec->on_record_done};
    size_t n = 0;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        n += cmds[i] && cmds[i][strspn(cmds[i], " \t")];
    return n;
}

static int ex_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    sl_core_t *core = sl_host_core(h);
    (void)api;
    *state = NULL;
    const sl_config_t *cfg = core->cfg;
    if (!count_hooks(cfg))
        return 0; /* nothing configured: inert */
    sl_exec_hooks_t *x = sl_calloc(1, sizeof(*x));
    if (!x)
        return SL_ENOMEM;
    x->core = core;
    x->cfg = cfg;
    sl_list_init(&x->queue);
    sl_list_init(&x->running);
    size_t n_hooks;
    int rc = build_hooks(cfg, x->hooks, &n_hooks);
    if (rc)
        goto fail;
    rc = sl_events_subscribe(core, "exec_hooks", SL_EV_PHASE_NOTIFY, on_event, x);
    if (rc < 0)
        goto fail;
    x->listener = rc;
    *state = x;
    return 0;
fail:
    ex_free(x);
    return rc;
}

/*
 * Configuration reload: inert until now, the module starts (the host runs
 * its init again) when a command was configured. Running, it builds the new commands and swaps them in:
 * jobs copy their command line when they are queued, so waiting and
 * running jobs finish as they were; timeout and max_concurrent are read
 * from x->cfg (now the new configuration) when next used. With no command
 * left the module stays subscribed and runs nothing.
 */
static int ex_reload(void *state)
{
    sl_exec_hooks_t *x = state;
    const sl_config_t *new_cfg = x->core->cfg;
    hook_t hooks[SL_EV_COUNT];
    memset(hooks, 0, sizeof hooks);
    size_t n_hooks;
    int rc = build_hooks(new_cfg, hooks, &n_hooks);
    if (rc) {
        free_hooks(hooks);
        return rc;
    }
    free_hooks(x->hooks);
    memcpy(x->hooks, hooks, sizeof hooks);
    x->cfg = new_cfg;
    return 0;
}

/* Graceful stop: no new hooks; waiting ones are dropped; running ones get
 * SIGTERM now and SIGKILL after KILL_GRACE_MS, and the loop runs until
 * their handles have closed. */
static void ex_stop(void *state)
{
    sl_exec_hooks_t *x = state;
    if (!x || x->stopping)
        return;
    x->stopping = 1;
    if (x->listener > 0) {
        sl_events_unsubscribe(x->core, x->listener);
        x->listener = 0;
    }
    if (x->n_queued)
        SL_LOGW(NULL, "exec: shutting down: %zu waiting hooks not run", x->n_queued);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &x->queue) {
        sl_list_remove(it);
        job_free(sl_container_of(it, job_t, link));
    }
    x->n_queued = 0;
    sl_list_foreach_safe(it, nx, &x->running) {
        job_t *j = sl_container_of(it, job_t, link);
        if (!j->spawned || j->exited || j->kill_stage)
            continue;
        SL_LOGI(&j->log, "exec %s [pid %d]: shutting down: SIGTERM", j->hook, j->proc.pid);
        j->kill_stage = 1;
        kill_group(j, SIGTERM);
        uv_timer_start(&j->timer, on_timer, KILL_GRACE_MS, 0);
    }
}

/*
 * --check-config and start: without exec.shell each command is split into
 * words here, as at start (an unterminated double quote is an error).
 */
static int ex_check(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    const struct {
        const char *key, *cmd;
    } table[] = {
        {"exec.on_connect", sl_exec_cfg(cfg)->on_connect},     {"exec.on_disconnect", sl_exec_cfg(cfg)->on_disconnect},
        {"exec.on_publish", sl_exec_cfg(cfg)->on_publish},     {"exec.on_unpublish", sl_exec_cfg(cfg)->on_unpublish},
        {"exec.on_play", sl_exec_cfg(cfg)->on_play},           {"exec.on_play_stop", sl_exec_cfg(cfg)->on_play_stop},
        {"exec.on_record_done", sl_exec_cfg(cfg)->on_record_done},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof table / sizeof table[0] && !sl_exec_cfg(cfg)->shell; i++) {
        const char *cmd = table[i].cmd;
        if (!cmd || !cmd[strspn(cmd, " \t")])
            continue;
        char **argv = NULL;
        size_t argc;
        int rc = sl__exec_split(cmd, &argv, &argc);
        sl__exec_argv_free(argv);
        if (rc) {
            sl_config_report(cfg, table[i].key, err, ud, "%s",
                             rc == SL_EINVAL ? "unterminated double quote" : sl_strerror(rc));
            n++;
        }
    }
    return n;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "exec_hooks",
    .description = "runs a command on events",
    .init = ex_init,
    .stop = ex_stop,
    .destroy = ex_free,
    .reload = ex_reload,
};

const sl_builtin_t sl_exec_hooks_builtin = {
    .plugin = &plugin,
    .config = &sl_exec_config_section,
    .check = ex_check,
};
