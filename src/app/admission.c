/*
 * The admission chain (see admission.h).
 *
 * Each admission walks the registered checks by index. A check that
 * answers SL_EPENDING holds a reference and calls sl_admit_resume later;
 * the walk then continues from the next check. If a check resumes before
 * it has even returned SL_EPENDING (an answer that happened to be ready),
 * the walk notices and carries on in the same call, so the completion
 * callback is never called from two places.
 */
#include "app/admission.h"

#include <stdlib.h>
#include <string.h>

#include "app/core.h"
#include "base/alloc.h"
#include "base/log.h"
#include "sluice/errors.h"

typedef struct check {
    int id;
    int priority;
    char *name;
    sl_admit_check_cb cb;
    void *ud;
} check_t;

struct sl_admission {
    check_t *checks;
    size_t n, cap;
    int next_id;
    const char **names; /* for sl_admit_checks_list */
};

#define MAX_NOTES 8

struct sl_admit {
    int refs;
    sl_core_t *core;
    sl_session_t *session;   /* NULL once cancelled */
    sl_admit_done_cb done;
    void *ud;
    sl_admit_req_t req;      /* strings owned */
    size_t next;             /* index of the next check to run */
    int running;             /* inside run() */
    int waiting;             /* a check answered SL_EPENDING */
    int resumed;             /* the pending check has answered */
    int resumed_result;
    int finished;
    int skip_below;          /* checks of a phase below this are passed over (sl_admit_skip_to) */
    char *reason;
    char *note_keys[MAX_NOTES];
    char *note_vals[MAX_NOTES];
};

static struct sl_admission *adm(sl_core_t *core)
{
    if (!core->admission)
        core->admission = sl_calloc(1, sizeof(struct sl_admission));
    return core->admission;
}

static int cmp_check(const void *a, const void *b)
{
    const check_t *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return strcmp(x->name, y->name);
}

const char *sl_admit_phase_name(int phase)
{
    switch (phase) {
    case SL_ADMIT_PHASE_CLUSTER: return "cluster";
    case SL_ADMIT_PHASE_CREDENTIALS: return "credentials";
    case SL_ADMIT_PHASE_TOKEN: return "token";
    case SL_ADMIT_PHASE_REMOTE: return "remote";
    case SL_ADMIT_PHASE_PLUGIN: return "plugin";
    case SL_ADMIT_PHASE_SOURCE: return "source";
    default: return "?";
    }
}

int sl_admit_add_check(sl_core_t *core, const char *name, sl_admit_phase_t phase,
                       sl_admit_check_cb cb, void *ud)
{
    int priority = (int)phase;
    struct sl_admission *m = adm(core);
    if (!m)
        return SL_ENOMEM;
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 8;
        check_t *nc = sl_realloc(m->checks, ncap * sizeof(*nc));
        if (!nc)
            return SL_ENOMEM;
        m->checks = nc;
        m->cap = ncap;
    }
    char *n = sl_strdup(name);
    if (!n)
        return SL_ENOMEM;
    m->checks[m->n++] = (check_t){.id = ++m->next_id, .priority = priority, .name = n, .cb = cb, .ud = ud};
    qsort(m->checks, m->n, sizeof(*m->checks), cmp_check);
    SL_LOGD(NULL, "admission: check %s added (priority %d)", name, priority);
    return m->next_id;
}

void sl_admit_remove_check(sl_core_t *core, int id)
{
    struct sl_admission *m = core->admission;
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        if (m->checks[i].id == id) {
            sl_free(m->checks[i].name);
            memmove(&m->checks[i], &m->checks[i + 1], (m->n - i - 1) * sizeof(*m->checks));
            m->n--;
            return;
        }
    }
}

const char *const *sl_admit_checks_list(sl_core_t *core, int *count)
{
    struct sl_admission *m = adm(core);
    *count = 0;
    if (!m)
        return NULL;
    sl_free(m->names);
    m->names = sl_calloc(m->n + 1, sizeof(*m->names));
    if (!m->names)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        m->names[i] = m->checks[i].name;
    *count = (int)m->n;
    return m->names;
}

void sl_admit_checks_each(sl_core_t *core, void (*each)(void *arg, const char *name, int phase),
                          void *arg)
{
    struct sl_admission *m = adm(core);
    for (size_t i = 0; m && i < m->n; i++)
        each(arg, m->checks[i].name, m->checks[i].priority);
}

void sl_admit_cleanup(sl_core_t *core)
{
    struct sl_admission *m = core->admission;
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        sl_free(m->checks[i].name);
    sl_free(m->checks);
    sl_free(m->names);
    sl_free(m);
    core->admission = NULL;
}

sl_admit_t *sl_admit_ref(sl_admit_t *a)
{
    a->refs++;
    return a;
}

void sl_admit_unref(sl_admit_t *a)
{
    if (!a || --a->refs > 0)
        return;
    const char **strs[] = {&a->req.app, &a->req.stream, &a->req.transport, &a->req.query,
                           &a->req.username, &a->req.password, &a->req.token, &a->req.publish_mode};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        sl_free((void *)*strs[i]);
    for (int i = 0; i < MAX_NOTES; i++) {
        sl_free(a->note_keys[i]);
        sl_free(a->note_vals[i]);
    }
    sl_free(a->reason);
    sl_free(a);
}

static void finish(sl_admit_t *a, int result)
{
    if (a->finished)
        return;
    a->finished = 1;
    if (a->session && a->done)
        a->done(a, result, a->reason, a->ud);
}

/* Walks the checks from a->next; stops at a pending one. */
static void run(sl_admit_t *a)
{
    struct sl_admission *m = a->core->admission;
    sl_admit_ref(a);
    a->running = 1;
    while (!a->finished && a->session) {
        if (a->waiting) {
            if (!a->resumed)
                break;
            a->waiting = 0;
            a->resumed = 0;
            if (a->resumed_result == SL_EDENIED) {
                finish(a, SL_EDENIED);
                break;
            }
            continue;
        }
        if (!m || a->next >= m->n) {
            finish(a, 0);
            break;
        }
        check_t *c = &m->checks[a->next++];
        if (c->priority < a->skip_below)
            continue; /* an earlier check vouched for the client (sl_admit_skip_to) */
        int rc = c->cb(a, c->ud);
        if (rc == SL_EPENDING) {
            a->waiting = 1;
            continue; /* re-checks a->resumed at the top */
        }
        if (rc == SL_EDENIED || (rc < 0 && rc != SL_EDECLINED)) {
            if (!a->reason)
                sl_admit_set_reason(a, rc == SL_EDENIED ? "Access denied." : "Admission check failed.");
            finish(a, SL_EDENIED);
            break;
        }
    }
    a->running = 0;
    sl_admit_unref(a);
}

static char *dup_or_null(const char *s) { return s ? sl_strdup(s) : NULL; }

int sl_admit(sl_core_t *core, sl_session_t *s, const sl_admit_req_t *req, sl_admit_done_cb done,
             void *ud, sl_admit_t **out)
{
    *out = NULL;
    sl_admit_t *a = sl_calloc(1, sizeof(*a));
    if (!a)
        return SL_ENOMEM;
    a->refs = 1;
    a->core = core;
    a->session = s;
    a->done = done;
    a->ud = ud;
    a->req.kind = req->kind;
    a->req.app = dup_or_null(req->app);
    a->req.stream = dup_or_null(req->stream);
    a->req.transport = dup_or_null(req->transport);
    a->req.query = dup_or_null(req->query);
    a->req.username = dup_or_null(req->username);
    a->req.password = dup_or_null(req->password);
    a->req.token = dup_or_null(req->token);
    a->req.publish_mode = dup_or_null(req->publish_mode);
    if ((req->app && !a->req.app) || (req->stream && !a->req.stream) ||
        (req->transport && !a->req.transport) || (req->query && !a->req.query) ||
        (req->username && !a->req.username) || (req->password && !a->req.password) ||
        (req->token && !a->req.token) || (req->publish_mode && !a->req.publish_mode)) {
        sl_admit_unref(a);
        return SL_ENOMEM;
    }
    run(a);
    if (a->finished) {
        sl_admit_unref(a);
        return SL_OK;
    }
    *out = a;
    return SL_EPENDING;
}

void sl_admit_cancel(sl_admit_t *a)
{
    if (!a)
        return;
    a->session = NULL;
    sl_admit_unref(a);
}

void sl_admit_resume(sl_admit_t *a, int result, const char *reason)
{
    if (reason && result == SL_EDENIED)
        sl_admit_set_reason(a, reason);
    if (!a->resumed && !a->finished) {
        /* Inside run() (even before the check has returned SL_EPENDING)
         * the walk picks this up itself; otherwise continue it now. */
        a->resumed = 1;
        a->resumed_result = result == SL_EDENIED ? SL_EDENIED : SL_OK;
        if (a->waiting && !a->running)
            run(a);
    }
    sl_admit_unref(a);
}

void sl_admit_skip_to(sl_admit_t *a, int phase)
{
    if (phase > a->skip_below)
        a->skip_below = phase;
}

const sl_admit_req_t *sl_admit_request(const sl_admit_t *a) { return &a->req; }
sl_session_t *sl_admit_session(const sl_admit_t *a) { return a->session; }
sl_core_t *sl_admit_core(const sl_admit_t *a) { return a->core; }

void sl_admit_set_reason(sl_admit_t *a, const char *reason)
{
    char *r = reason ? sl_strdup(reason) : NULL;
    sl_free(a->reason);
    a->reason = r;
}

void sl_admit_set_note(sl_admit_t *a, const char *key, const char *value)
{
    int slot = -1;
    for (int i = 0; i < MAX_NOTES; i++) {
        if (a->note_keys[i] && strcmp(a->note_keys[i], key) == 0) {
            slot = i;
            break;
        }
        if (!a->note_keys[i] && slot < 0)
            slot = i;
    }
    if (slot < 0)
        return;
    char *v = value ? sl_strdup(value) : NULL;
    if (!a->note_keys[slot])
        a->note_keys[slot] = sl_strdup(key);
    sl_free(a->note_vals[slot]);
    a->note_vals[slot] = v;
}

const char *sl_admit_note(const sl_admit_t *a, const char *key)
{
    for (int i = 0; i < MAX_NOTES; i++)
        if (a->note_keys[i] && strcmp(a->note_keys[i], key) == 0)
            return a->note_vals[i];
    return NULL;
}
