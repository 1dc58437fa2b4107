/*
 * Simple Auth (see auth_simple.h): the credentials table, its reloading,
 * and the admission check.
 *
 * Threads: the table is built on a worker (reload) or at start, then only
 * read; a table is refcounted on the loop thread so a crypt(3)
 * verification running on the thread pool keeps the table (and the user
 * entry it reads) alive across a reload. The one mutable field of a user,
 * the "verified with this password" digest, is written and read on the
 * loop thread only.
 *
 * Timing: plain and sha256 entries are compared as SHA-256 digests with
 * CRYPTO_memcmp, so neither the password's length nor its content shows
 * in the time taken; an unknown username costs the same digest (and, when
 * the file has crypt(3) users, the same slow verification, answered no),
 * so response times do not tell which usernames exist.
 */
#include "modules/auth_simple/auth_simple.h"

#include <crypt.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "app/admission.h"
#include "app/core.h"
#include "base/alloc.h"
#include "base/list.h"
#include "base/log.h"
#include "base/str.h"
#include "base/map.h"
#include "modules/auth_common.h"
#include "sluice/errors.h"
#include "modules/auth_config.h"

#define RELOAD_INTERVAL_MS 1000
#define MAX_CRYPT_RUNNING 2     /* crypt(3) verifications at once on the thread pool */
#define MAX_CRYPT_QUEUED 1000   /* waiting beyond this: refused as busy */
#define MAX_RELOAD_WARNINGS 20  /* warnings kept from one reload for the log */

#define REASON_INVALID "Invalid credentials."
#define REASON_MISSING "Missing credentials."

struct sl_auth_simple_user {
    char *name;               /* owned */
    sl_auth_pw_kind_t kind;
    uint8_t digest[32];       /* plain: SHA-256(password); sha256: the stored digest */
    char *salt;               /* sha256: owned; else NULL */
    char *hash;               /* crypt: the hash string, owned; else NULL */
    uint8_t ok_digest[32];    /* crypt: SHA-256 of the password that last verified */
    int ok_valid;             /* ok_digest is set (loop thread only) */
};

struct sl_auth_simple_table {
    int refs;                       /* loop thread (or the only owner) */
    sl_map_t by_name;               /* name -> sl_auth_simple_user_t* */
    sl_auth_simple_user_t **users;  /* owned array of owned users */
    size_t n, cap;
    const sl_auth_simple_user_t *any_crypt;
};

/* ------------------------------------------------------------------ */
/* digests                                                             */

static int sha256_2(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, a, alen) &&
             EVP_DigestUpdate(ctx, b, blen) && EVP_DigestFinal_ex(ctx, out, &n) && n == 32;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : SL_ENOMEM;
}

/* The 32 bytes of a 64-hex-digit SHA-256 digest; 0 or -1. */
static int unhex32(const char *s, size_t len, uint8_t out[32])
{
    return len == 64 && sl_hex_decode(s, len, out, 32) == 32 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* table                                                               */

static void user_free(sl_auth_simple_user_t *u)
{
    if (!u)
        return;
    sl_free(u->name);
    sl_free(u->salt);
    if (u->hash) {
        OPENSSL_cleanse(u->hash, strlen(u->hash));
        sl_free(u->hash);
    }
    OPENSSL_cleanse(u, sizeof(*u));
    sl_free(u);
}

static void table_free(sl_auth_simple_table_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        user_free(t->users[i]);
    sl_free(t->users);
    sl_map_cleanup(&t->by_name);
    sl_free(t);
}

sl_auth_simple_table_t *sl_auth_simple_table_ref(sl_auth_simple_table_t *t)
{
    if (t)
        t->refs++;
    return t;
}

void sl_auth_simple_table_unref(sl_auth_simple_table_t *t)
{
    if (t && --t->refs == 0)
        table_free(t);
}

size_t sl_auth_simple_table_size(const sl_auth_simple_table_t *t) { return t ? t->n : 0; }

const sl_auth_simple_user_t *sl_auth_simple_find(const sl_auth_simple_table_t *t, const char *name)
{
    return t && name ? sl_map_get(&t->by_name, name) : NULL;
}

sl_auth_pw_kind_t sl_auth_simple_user_kind(const sl_auth_simple_user_t *u) { return u->kind; }

const sl_auth_simple_user_t *sl_auth_simple_any_crypt_user(const sl_auth_simple_table_t *t)
{
    return t ? t->any_crypt : NULL;
}

static void warnf(sl_auth_simple_warn_cb warn, void *ud, int line, const char *fmt, const char *arg)
{
    if (!warn)
        return;
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    warn(ud, line, msg);
}

/*
 * Fills u's password fields from pw (NUL-terminated). Returns 0, 1 when the
 * line is to be skipped (reported), or SL_ENOMEM.
 */
static int classify(sl_auth_simple_user_t *u, const char *pw, int line, sl_auth_simple_warn_cb warn,
                    void *ud)
{
    size_t len = strlen(pw);
    if (strncmp(pw, "sha256:", 7) == 0) {
        const char *last = strrchr(pw, ':');
        if (last == pw + 6 || unhex32(last + 1, strlen(last + 1), u->digest) != 0) {
            warnf(warn, ud, line, "user %s: expected sha256:<salt>:<64 hex digits>; line skipped",
                  u->name);
            return 1;
        }
        u->kind = SL_AUTH_PW_SHA256;
        u->salt = sl_strndup(pw + 7, (size_t)(last - (pw + 7)));
        return u->salt ? 0 : SL_ENOMEM;
    }
    if (pw[0] == '$') {
        int cs = crypt_checksalt(pw);
        if (cs == CRYPT_SALT_OK || cs == CRYPT_SALT_METHOD_LEGACY || cs == CRYPT_SALT_TOO_CHEAP) {
            if (cs != CRYPT_SALT_OK)
                warnf(warn, ud, line, "user %s: weak password hash method (accepted; rehash it)",
                      u->name);
            u->kind = SL_AUTH_PW_CRYPT;
            u->hash = sl_strdup(pw);
            return u->hash ? 0 : SL_ENOMEM;
        }
        if (cs == CRYPT_SALT_METHOD_DISABLED) {
            warnf(warn, ud, line, "user %s: password hash method not supported here; line skipped",
                  u->name);
            return 1;
        }
        /* Not a hash this system knows: a plain password that starts with '$'. */
    }
    u->kind = SL_AUTH_PW_PLAIN;
    return sha256_2(pw, len, "", 0, u->digest);
}

/* Adds u (or replaces the user of the same name). On error u is the caller's to free. */
static int table_add(sl_auth_simple_table_t *t, sl_auth_simple_user_t *u, int line,
                     sl_auth_simple_warn_cb warn, void *ud)
{
    sl_auth_simple_user_t *old = sl_map_get(&t->by_name, u->name);
    if (old) {
        /* A later line replaces an earlier one, in place. */
        warnf(warn, ud, line, "user %s appears again; this line replaces the earlier one", u->name);
        if (sl_map_set(&t->by_name, u->name, u))
            return SL_ENOMEM;
        for (size_t i = 0; i < t->n; i++)
            if (t->users[i] == old)
                t->users[i] = u;
        user_free(old);
        return 0;
    }
    if (t->n == SL_AUTH_SIMPLE_MAX_USERS)
        return SL_ETOOBIG;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        sl_auth_simple_user_t **nu = sl_realloc(t->users, cap * sizeof(*nu));
        if (!nu)
            return SL_ENOMEM;
        t->users = nu;
        t->cap = cap;
    }
    if (sl_map_set(&t->by_name, u->name, u))
        return SL_ENOMEM;
    t->users[t->n++] = u;
    return 0;
}

/* Parses one line (NUL-terminated, trimmed of its newline). */
static int parse_line(sl_auth_simple_table_t *t, char *s, int line, sl_auth_simple_warn_cb warn,
                      void *ud)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s || *s == '#')
        return 0;
    char *name = s;
    size_t name_len = strcspn(s, " \t");
    char *pw = s + name_len;
    if (*pw)
        *pw++ = '\0';
    while (*pw == ' ' || *pw == '\t')
        pw++;
    if (!*pw) {
        warnf(warn, ud, line, "user %s has no password; line skipped", name);
        return 0;
    }
    if (name_len > SL_AUTH_SIMPLE_MAX_NAME) {
        warnf(warn, ud, line, "%s", "username too long; line skipped");
        return 0;
    }
    sl_auth_simple_user_t *u = sl_calloc(1, sizeof(*u));
    if (!u || !(u->name = sl_strdup(name))) {
        sl_free(u);
        return SL_ENOMEM;
    }
    int rc = classify(u, pw, line, warn, ud);
    if (rc) {
        user_free(u);
        return rc == 1 ? 0 : rc;
    }
    rc = table_add(t, u, line, warn, ud);
    if (rc)
        user_free(u);
    return rc;
}

int sl_auth_simple_parse(const char *text, size_t len, sl_auth_simple_warn_cb warn, void *ud,
                         sl_auth_simple_table_t **out)
{
    *out = NULL;
    if (len > SL_AUTH_SIMPLE_MAX_FILE_BYTES)
        return SL_ETOOBIG;
    int rc = SL_ENOMEM;
    sl_auth_simple_table_t *t = sl_calloc(1, sizeof(*t));
    char *line = sl_malloc(SL_AUTH_SIMPLE_MAX_LINE + 1);
    if (!t || !line)
        goto fail;
    t->refs = 1;
    sl_map_init(&t->by_name);
    int lineno = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t n = end - pos;
        lineno++;
        if (n > SL_AUTH_SIMPLE_MAX_LINE) {
            warnf(warn, ud, lineno, "%s", "line too long; skipped");
        } else if (memchr(text + pos, '\0', n)) {
            warnf(warn, ud, lineno, "%s", "NUL byte in line; skipped");
        } else {
            memcpy(line, text + pos, n);
            line[n] = '\0';
            rc = parse_line(t, line, lineno, warn, ud);
            if (rc)
                goto fail;
        }
        pos = end + 1;
    }
    /* A crypt(3) user to spend an unknown user's time on. */
    for (size_t i = 0; i < t->n && !t->any_crypt; i++)
        if (t->users[i]->kind == SL_AUTH_PW_CRYPT)
            t->any_crypt = t->users[i];
    OPENSSL_cleanse(line, SL_AUTH_SIMPLE_MAX_LINE + 1);
    sl_free(line);
    *out = t;
    return 0;
fail:
    if (line)
        OPENSSL_cleanse(line, SL_AUTH_SIMPLE_MAX_LINE + 1);
    sl_free(line);
    if (t)
        table_free(t);
    return rc;
}

int sl_auth_simple_load(const char *path, sl_auth_simple_warn_cb warn, void *ud,
                        sl_auth_simple_table_t **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    int rc = SL_ENOMEM;
    size_t cap = 4096, len = 0;
    char *buf = sl_malloc(cap);
    while (buf) {
        if (len == cap) {
            if (cap > SL_AUTH_SIMPLE_MAX_FILE_BYTES) {
                rc = SL_ETOOBIG;
                goto fail;
            }
            char *nb = sl_realloc(buf, cap * 2);
            if (!nb)
                goto fail;
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                rc = SL_EIO;
                goto fail;
            }
            break;
        }
    }
    if (!buf)
        goto fail;
    fclose(f);
    f = NULL;
    rc = sl_auth_simple_parse(buf, len, warn, ud, out);
fail:
    if (f)
        fclose(f);
    if (buf) {
        OPENSSL_cleanse(buf, len);
        sl_free(buf);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* verification                                                        */

int sl_auth_simple_verify_fast(const sl_auth_simple_user_t *u, const char *password)
{
    uint8_t d[32];
    size_t len = strlen(password);
    int rc;
    switch (u->kind) {
    case SL_AUTH_PW_PLAIN:
        rc = sha256_2(password, len, "", 0, d);
        break;
    case SL_AUTH_PW_SHA256:
        rc = sha256_2(u->salt, strlen(u->salt), password, len, d);
        break;
    default:
        if (!u->ok_valid)
            return SL_EAGAIN;
        rc = sha256_2(password, len, "", 0, d);
        if (!rc)
            return CRYPTO_memcmp(d, u->ok_digest, 32) == 0 ? 0 : SL_EAGAIN;
        return rc;
    }
    if (rc)
        return rc;
    return CRYPTO_memcmp(d, u->digest, 32) == 0 ? 0 : SL_EDENIED;
}

int sl_auth_simple_verify_slow(const sl_auth_simple_user_t *u, const char *password)
{
    if (u->kind != SL_AUTH_PW_CRYPT)
        return sl_auth_simple_verify_fast(u, password);
    struct crypt_data *cd = sl_calloc(1, sizeof(*cd));
    if (!cd)
        return SL_ENOMEM;
    const char *out = crypt_r(password, u->hash, cd);
    size_t hlen = strlen(u->hash);
    /* On failure crypt_r returns "*0"/"*1" (never equal to a hash) or NULL. */
    int ok = out && out[0] != '*' && strlen(out) == hlen && CRYPTO_memcmp(out, u->hash, hlen) == 0;
    OPENSSL_cleanse(cd, sizeof(*cd));
    sl_free(cd);
    return ok ? 0 : SL_EDENIED;
}

void sl_auth_simple_remember(const sl_auth_simple_user_t *cu, const char *password)
{
    /* The cache is the user's one mutable field (loop thread only). */
    sl_auth_simple_user_t *u = (sl_auth_simple_user_t *)cu;
    if (u->kind != SL_AUTH_PW_CRYPT)
        return;
    if (sha256_2(password, strlen(password), "", 0, u->ok_digest) == 0)
        u->ok_valid = 1;
}

/* ------------------------------------------------------------------ */
/* the module                                                          */

typedef struct state state_t;

/* One crypt(3) verification on the thread pool. */
typedef struct work {
    uv_work_t w;
    state_t *st;
    sl_admit_t *a;                  /* the check's reference */
    sl_auth_simple_table_t *table;  /* reference: keeps user alive */
    const sl_auth_simple_user_t *user;
    char *password;                 /* owned copy, wiped when done */
    int dummy;                      /* unknown user: spend the time, answer no */
    int result;                     /* from the worker */
    sl_list_t link;                 /* in st->queue while waiting */
} work_t;

/* One reload on the thread pool. */
typedef struct reload {
    uv_work_t w;
    state_t *st;
    char *path;                          /* owned copy */
    int rc;
    sl_auth_simple_table_t *table;       /* the result */
    int n_warnings;
    char *warnings[MAX_RELOAD_WARNINGS]; /* owned messages for the log */
} reload_t;

struct state {
    sl_core_t *core;
    char *path;                     /* owned */
    int check_id;                   /* admission check, 0 once removed */
    sl_auth_simple_table_t *table;  /* current table (reference) */
    uv_fs_poll_t *poll;             /* watches the file; frees itself when closed */
    reload_t *reload;               /* running reload, or NULL */
    int reload_again;               /* the file changed during a reload */
    sl_list_t queue;                /* work_t waiting for a thread */
    size_t n_queued;
    int n_running;
    int stopped;
};

static const char *kind_name(sl_admit_kind_t k)
{
    return k == SL_ADMIT_CONNECT ? "connect" : k == SL_ADMIT_PUBLISH ? "publish"
           : k == SL_ADMIT_SO_CONNECT ? "shared object connect" : "play";
}

static void work_free(work_t *w)
{
    if (w->password) {
        OPENSSL_cleanse(w->password, strlen(w->password));
        sl_free(w->password);
    }
    sl_auth_simple_table_unref(w->table);
    sl_free(w);
}

static void crypt_work(uv_work_t *req)
{
    work_t *w = req->data;
    w->result = sl_auth_simple_verify_slow(w->user, w->password);
}

static void start_queued(state_t *st);

static void crypt_done(uv_work_t *req, int status)
{
    work_t *w = req->data;
    state_t *st = w->st;
    st->n_running--;
    int ok = status == 0 && w->result == 0 && !w->dummy;
    if (ok)
        sl_auth_simple_remember(w->user, w->password);
    if (!ok)
        SL_LOGW(sl__auth_log(w->a), "simple auth: user %s refused at %s (%s)",
                sl_admit_request(w->a)->username, kind_name(sl_admit_request(w->a)->kind),
                w->result == SL_ENOMEM ? "out of memory" : w->dummy ? "unknown user" : "wrong password");
    sl_admit_resume(w->a, ok ? SL_OK : SL_EDENIED, ok ? NULL : REASON_INVALID);
    work_free(w);
    start_queued(st);
}

static void start_queued(state_t *st)
{
    while (!st->stopped && st->n_running < MAX_CRYPT_RUNNING && !sl_list_empty(&st->queue)) {
        work_t *w = sl_container_of(st->queue.next, work_t, link);
        sl_list_remove(&w->link);
        st->n_queued--;
        w->w.data = w;
        if (uv_queue_work(st->core->loop, &w->w, crypt_work, crypt_done) != 0) {
            sl_admit_resume(w->a, SL_EDENIED, "Authentication unavailable.");
            work_free(w);
            continue;
        }
        st->n_running++;
    }
}

/* Queues a crypt(3) verification; the admission stays pending. */
static int verify_async(state_t *st, sl_admit_t *a, const sl_auth_simple_user_t *u, const char *pw,
                        int dummy)
{
    if (st->n_queued >= MAX_CRYPT_QUEUED) {
        SL_LOGW(sl__auth_log(a), "simple auth: %zu verifications waiting; refusing", st->n_queued);
        sl_admit_set_reason(a, "Server busy, try again.");
        return SL_EDENIED;
    }
    work_t *w = sl_calloc(1, sizeof(*w));
    if (!w || !(w->password = sl_strdup(pw))) {
        sl_free(w);
        return SL_ENOMEM;
    }
    w->st = st;
    w->user = u;
    w->dummy = dummy;
    w->table = sl_auth_simple_table_ref(st->table);
    w->a = sl_admit_ref(a);
    sl_list_push_back(&st->queue, &w->link);
    st->n_queued++;
    start_queued(st);
    return SL_EPENDING;
}

static int check(sl_admit_t *a, void *ud)
{
    state_t *st = ud;
    const sl_admit_req_t *req = sl_admit_request(a);
    if (!sl__auth_app_for(a, offsetof(sl_auth_app_config_t, auth_simple)))
        return SL_EDECLINED;
    int have = req->username && req->username[0] && req->password && req->password[0];
    if (!have) {
        /* A connect without credentials is let in: they may come with the
         * stream name, and publish/play are always checked. */
        if (req->kind == SL_ADMIT_CONNECT)
            return SL_EDECLINED;
        SL_LOGW(sl__auth_log(a), "simple auth: %s without credentials refused", kind_name(req->kind));
        sl_admit_set_reason(a, REASON_MISSING);
        return SL_EDENIED;
    }
    const sl_auth_simple_user_t *u = sl_auth_simple_find(st->table, req->username);
    if (!u) {
        const sl_auth_simple_user_t *dummy = sl_auth_simple_any_crypt_user(st->table);
        if (dummy)
            return verify_async(st, a, dummy, req->password, 1);
        uint8_t d[32];
        (void)sha256_2(req->password, strlen(req->password), "", 0, d); /* same time as a known user */
        SL_LOGW(sl__auth_log(a), "simple auth: unknown user %s refused at %s", req->username,
                kind_name(req->kind));
        sl_admit_set_reason(a, REASON_INVALID);
        return SL_EDENIED;
    }
    int rc = sl_auth_simple_verify_fast(u, req->password);
    if (rc == SL_EAGAIN)
        return verify_async(st, a, u, req->password, 0);
    if (rc == SL_EDENIED) {
        SL_LOGW(sl__auth_log(a), "simple auth: user %s refused at %s (wrong password)", req->username,
                kind_name(req->kind));
        sl_admit_set_reason(a, REASON_INVALID);
        return SL_EDENIED;
    }
    if (rc)
        return rc;
    SL_LOGD(sl__auth_log(a), "simple auth: user %s accepted at %s", req->username, kind_name(req->kind));
    return SL_OK;
}

/* ---- reloading ---- */

static void reload_warn(void *ud, int line, const char *msg)
{
    reload_t *r = ud;
    if (r->n_warnings < MAX_RELOAD_WARNINGS) {
        char buf[600];
        snprintf(buf, sizeof buf, "line %d: %s", line, msg);
        r->warnings[r->n_warnings] = sl_strdup(buf);
    }
    r->n_warnings++;
}

static void reload_work(uv_work_t *req)
{
    reload_t *r = req->data;
    r->rc = sl_auth_simple_load(r->path, reload_warn, r, &r->table);
}

static void start_reload(state_t *st);

static void reload_done(uv_work_t *req, int status)
{
    reload_t *r = req->data;
    state_t *st = r->st;
    st->reload = NULL;
    for (int i = 0; i < r->n_warnings && i < MAX_RELOAD_WARNINGS; i++)
        if (r->warnings[i])
            SL_LOGW(NULL, "simple auth: %s: %s", r->path, r->warnings[i]);
    if (r->n_warnings > MAX_RELOAD_WARNINGS)
        SL_LOGW(NULL, "simple auth: %s: %d more warnings", r->path, r->n_warnings - MAX_RELOAD_WARNINGS);
    int stale = strcmp(r->path, st->path) != 0; /* the configuration named another file since */
    if (stale) {
        /* its result is not the current file's: dropped (below) */
    } else if (status == 0 && r->rc == 0 && !st->stopped) {
        SL_LOGI(NULL, "simple auth: %s reloaded (%zu users)", r->path, sl_auth_simple_table_size(r->table));
        sl_auth_simple_table_unref(st->table);
        st->table = r->table;
        r->table = NULL;
    } else if (!st->stopped) {
        SL_LOGW(NULL, "simple auth: cannot reload %s: %s; keeping the previous %zu users", r->path,
                sl_strerror(status ? status : r->rc), sl_auth_simple_table_size(st->table));
    }
    sl_auth_simple_table_unref(r->table);
    for (int i = 0; i < r->n_warnings && i < MAX_RELOAD_WARNINGS; i++)
        sl_free(r->warnings[i]);
    sl_free(r->path);
    sl_free(r);
    if (st->reload_again && !st->stopped) {
        st->reload_again = 0;
        start_reload(st);
    }
}

static void start_reload(state_t *st)
{
    if (st->reload) {
        st->reload_again = 1;
        return;
    }
    reload_t *r = sl_calloc(1, sizeof(*r));
    if (!r || !(r->path = sl_strdup(st->path))) {
        sl_free(r);
        SL_LOGW(NULL, "simple auth: out of memory; %s not reloaded", st->path);
        return;
    }
    r->st = st;
    r->w.data = r;
    if (uv_queue_work(st->core->loop, &r->w, reload_work, reload_done) != 0) {
        sl_free(r->path);
        sl_free(r);
        return;
    }
    st->reload = r;
}

static void on_file_change(uv_fs_poll_t *h, int status, const uv_stat_t *prev, const uv_stat_t *curr)
{
    state_t *st = h->data;
    (void)prev;
    (void)curr;
    if (status < 0) {
        SL_LOGW(NULL, "simple auth: %s: %s; keeping the previous %zu users", st->path,
                uv_strerror(status), sl_auth_simple_table_size(st->table));
        return;
    }
    start_reload(st);
}

/* ---- lifecycle ---- */

static void start_warn(void *ud, int line, const char *msg)
{
    SL_LOGW(NULL, "simple auth: %s: line %d: %s", (const char *)ud, line, msg);
}

static void poll_closed(uv_handle_t *h) { sl_free(h); }

static void stop(void *state)
{
    state_t *st = state;
    if (!st || st->stopped)
        return;
    st->stopped = 1;
    if (st->check_id > 0)
        sl_admit_remove_check(st->core, st->check_id);
    st->check_id = 0;
    if (st->poll) {
        /* The handle outlives the state if need be: it frees itself. */
        uv_fs_poll_stop(st->poll);
        uv_close((uv_handle_t *)st->poll, poll_closed);
        st->poll = NULL;
    }
    /* Verifications not started yet are answered now; running ones finish
     * (their completion runs before the loop ends). */
    while (!sl_list_empty(&st->queue)) {
        work_t *w = sl_container_of(st->queue.next, work_t, link);
        sl_list_remove(&w->link);
        st->n_queued--;
        sl_admit_resume(w->a, SL_EDENIED, "Server shutting down.");
        work_free(w);
    }
}

static void free_state(void *state)
{
    state_t *st = state;
    if (!st)
        return;
    sl_auth_simple_table_unref(st->table);
    sl_free(st->path);
    sl_free(st);
}

static int start(const sl_host_api_t *api, sl_host_t *h, void **out)
{
    sl_core_t *core = sl_host_core(h);
    (void)api;
    *out = NULL;
    const sl_config_t *cfg = core->cfg;
    const char *used_by = NULL;
    for (size_t i = 0; i < cfg->n_apps; i++)
        if (cfg->apps[i].enabled && sl_auth_app_cfg(&cfg->apps[i])->auth_simple && !used_by)
            used_by = cfg->apps[i].name;
    if (!used_by)
        return 0;
    if (!sl_auth_cfg(cfg)->simple_file || !sl_auth_cfg(cfg)->simple_file[0]) {
        SL_LOGE(NULL, "simple auth: app %s has auth_simple on but auth.simple_file is not set", used_by);
        return SL_EINVAL;
    }
    int rc = SL_ENOMEM;
    state_t *st = sl_calloc(1, sizeof(*st));
    if (!st)
        return SL_ENOMEM;
    st->core = core;
    sl_list_init(&st->queue);
    if (!(st->path = sl_strdup(sl_auth_cfg(cfg)->simple_file)))
        goto fail;
    rc = sl_auth_simple_load(st->path, start_warn, st->path, &st->table);
    if (rc) {
        SL_LOGE(NULL, "simple auth: cannot load %s: %s", st->path, sl_strerror(rc));
        goto fail;
    }
    rc = SL_ENOMEM;
    if (!(st->poll = sl_malloc(sizeof(*st->poll))))
        goto fail;
    if ((rc = uv_fs_poll_init(core->loop, st->poll)) != 0) {
        sl_free(st->poll);
        st->poll = NULL;
        goto fail;
    }
    st->poll->data = st;
    rc = uv_fs_poll_start(st->poll, on_file_change, st->path, RELOAD_INTERVAL_MS);
    if (rc)
        goto fail;
    rc = sl_admit_add_check(core, "auth_simple", SL_ADMIT_PHASE_CREDENTIALS, check, st);
    if (rc < 0)
        goto fail;
    st->check_id = rc;
    SL_LOGI(NULL, "simple auth: %zu users from %s (watched for changes)",
            sl_auth_simple_table_size(st->table), st->path);
    *out = st;
    return 0;
fail:
    /* main does not stop or free a module whose start failed: undo here.
     * The poll handle, if any, is closed and frees itself later. */
    stop(st);
    free_state(st);
    return rc;
}

/*
 * Configuration reload: inert until now, the module starts when an app
 * turned auth_simple on (the host runs start, its init, again; it reads
 * the new core->cfg). Running, it re-reads its file now (its users may
 * have changed with the configuration), or switches to another
 * auth.simple_file: the new file is
 * loaded here (the check just did the same, so it loads) and watched
 * instead of the old one. The check stays registered when no app uses
 * simple auth any more: it passes for apps with auth_simple off.
 */
static int reload(void *state)
{
    state_t *st = state;
    const sl_config_t *new_cfg = st->core->cfg;
    const char *file = sl_auth_cfg(new_cfg)->simple_file;
    if (!file || !file[0] || strcmp(file, st->path) == 0) {
        start_reload(st);
        return 0;
    }
    sl_auth_simple_table_t *table = NULL;
    char *path = sl_strdup(file);
    if (!path)
        return SL_ENOMEM;
    int rc = sl_auth_simple_load(path, start_warn, path, &table);
    if (rc) {
        sl_free(path);
        return rc;
    }
    uv_fs_poll_stop(st->poll);
    rc = uv_fs_poll_start(st->poll, on_file_change, path, RELOAD_INTERVAL_MS);
    if (rc) { /* keep the old file, watched as before */
        uv_fs_poll_start(st->poll, on_file_change, st->path, RELOAD_INTERVAL_MS);
        sl_auth_simple_table_unref(table);
        sl_free(path);
        return rc;
    }
    sl_auth_simple_table_unref(st->table);
    st->table = table;
    sl_free(st->path);
    st->path = path;
    SL_LOGI(NULL, "simple auth: %zu users from %s (watched for changes)",
            sl_auth_simple_table_size(st->table), st->path);
    return 0;
}

/*
 * --check-config and start: an app with auth_simple on needs
 * auth.simple_file, and the file must load (readable, within the size and
 * user caps). Bad lines in it stay warnings, as at start.
 */
static int check_config(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    const char *used_by = NULL;
    for (size_t i = 0; i < cfg->n_apps && !used_by; i++)
        if (cfg->apps[i].enabled && sl_auth_app_cfg(&cfg->apps[i])->auth_simple)
            used_by = cfg->apps[i].name;
    if (!used_by)
        return 0;
    if (!sl_auth_cfg(cfg)->simple_file || !sl_auth_cfg(cfg)->simple_file[0]) {
        char key[SL_CONFIG_APP_NAME_MAX + 24];
        snprintf(key, sizeof key, "apps.%s.auth_simple", used_by);
        sl_config_report(cfg, key, err, ud, "is on but auth.simple_file is not set");
        return 1;
    }
    sl_auth_simple_table_t *table = NULL;
    int rc = sl_auth_simple_load(sl_auth_cfg(cfg)->simple_file, NULL, NULL, &table);
    sl_auth_simple_table_unref(table);
    if (rc == 0)
        return 0;
    sl_config_report(cfg, "auth.simple_file", err, ud, "cannot load %s: %s", sl_auth_cfg(cfg)->simple_file,
                     sl_strerror(rc));
    return 1;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "auth_simple",
    .description = "admission by username and password from a file",
    .init = start,
    .stop = stop,
    .destroy = free_state,
    .reload = reload,
};

const sl_builtin_t sl_auth_simple_builtin = {
    .plugin = &plugin,
    .config = &sl_auth_config_section,
    .check = check_config,
};
