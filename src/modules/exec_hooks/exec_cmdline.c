/*
 * Command lines of exec hooks (see exec_hooks.h): splitting a configured
 * command into arguments, {placeholder} substitution and quoting for
 * /bin/sh. Pure string work, so the unit tests pin every rule users read
 * in docs/integration/exec-hooks.md.
 */
#include "modules/exec_hooks/exec_hooks.h"

#include <string.h>

#include "base/alloc.h"
#include "sluice/errors.h"

/* A growable string with a hard cap (STYLE: every buffer has one). */
#define MAX_EXPANDED_BYTES (64 * 1024)

typedef struct {
    char *p;
    size_t len, cap;
    int err;                     /* SL_ENOMEM / SL_ETOOBIG once a write failed */
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (b->len + n + 1 > MAX_EXPANDED_BYTES) {
        b->err = SL_ETOOBIG;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = sl_realloc(b->p, cap);
        if (!np) {
            b->err = SL_ENOMEM;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Takes the finished string (an empty one when nothing was written). */
static char *sb_take(sbuf_t *b)
{
    if (!b->err && !b->p)
        sb_put(b, "", 0);
    if (b->err) {
        sl_free(b->p);
        return NULL;
    }
    return b->p;
}

void sl__exec_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **a = argv; *a; a++)
        sl_free(*a);
    sl_free(argv);
}

int sl__exec_split(const char *cmd, char ***argv_out, size_t *argc_out)
{
    *argv_out = NULL;
    *argc_out = 0;
    char **argv = NULL;
    size_t argc = 0;
    int rc = 0;
    sbuf_t arg = {0};
    const char *p = cmd ? cmd : "";
    for (;;) {
        p += strspn(p, " \t");
        if (!*p)
            break;
        /* One argument: until an unquoted blank or the end. */
        int quoted = 0;
        memset(&arg, 0, sizeof arg);
        while (*p && (quoted || (*p != ' ' && *p != '\t'))) {
            if (*p == '"') {
                quoted = !quoted; /* "" alone still makes an (empty) argument */
                p++;
                continue;
            }
            if (quoted && *p == '\\' && (p[1] == '"' || p[1] == '\\')) {
                sb_put(&arg, p + 1, 1);
                p += 2;
                continue;
            }
            sb_put(&arg, p, 1);
            p++;
        }
        if (quoted) {
            rc = SL_EINVAL;
            goto fail;
        }
        char *s = sb_take(&arg);
        arg.p = NULL;
        if (!s) {
            rc = SL_ENOMEM;
            goto fail;
        }
        char **nv = sl_realloc(argv, (argc + 2) * sizeof(char *));
        if (!nv) {
            sl_free(s);
            rc = SL_ENOMEM;
            goto fail;
        }
        argv = nv;
        argv[argc++] = s;
        argv[argc] = NULL;
    }
    if (!argc) {
        rc = SL_EINVAL;
        goto fail;
    }
    *argv_out = argv;
    *argc_out = argc;
    return 0;
fail:
    sl_free(arg.p);
    sl__exec_argv_free(argv);
    return rc;
}

char *sl__exec_shell_quote(const char *s)
{
    sbuf_t b = {0};
    sb_put(&b, "'", 1);
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '\'')
            sb_put(&b, "'\\''", 4); /* close, escaped quote, reopen */
        else
            sb_put(&b, p, 1);
    }
    sb_put(&b, "'", 1);
    return sb_take(&b);
}

char *sl__exec_substitute(const char *tmpl, const sl_exec_var_t *vars, size_t n_vars,
                          int shell_quote)
{
    sbuf_t b = {0};
    const char *p = tmpl ? tmpl : "";
    while (*p) {
        const char *open = strchr(p, '{');
        if (!open) {
            sb_put(&b, p, strlen(p));
            break;
        }
        sb_put(&b, p, (size_t)(open - p));
        const char *close = strchr(open + 1, '}');
        const sl_exec_var_t *v = NULL;
        if (close) {
            size_t n = (size_t)(close - open - 1);
            for (size_t i = 0; i < n_vars && !v; i++)
                if (strlen(vars[i].name) == n && memcmp(vars[i].name, open + 1, n) == 0)
                    v = &vars[i];
        }
        if (!v) {
            sb_put(&b, "{", 1); /* not a placeholder: keep the brace, go on after it */
            p = open + 1;
            continue;
        }
        if (shell_quote) {
            char *q = sl__exec_shell_quote(v->value);
            if (!q) {
                b.err = SL_ENOMEM;
                break;
            }
            sb_put(&b, q, strlen(q));
            sl_free(q);
        } else {
            sb_put(&b, v->value, strlen(v->value));
        }
        p = close + 1;
    }
    return sb_take(&b);
}

int sl__exec_option_like(const char *tmpl, const sl_exec_var_t *vars, size_t n_vars, int shell,
                         const char **var_out)
{
    for (const char *p = tmpl ? tmpl : ""; (p = strchr(p, '{')) != NULL; p++) {
        int starts_arg = p == tmpl;
        if (!starts_arg && shell) {
            const char *q = p;
            while (q > tmpl && (q[-1] == '"' || q[-1] == '\''))
                q--; /* opening quotes glued to the placeholder */
            starts_arg = q == tmpl || q[-1] == ' ' || q[-1] == '\t' || q[-1] == ';' ||
                         q[-1] == '|' || q[-1] == '&' || q[-1] == '(';
        }
        if (!starts_arg)
            continue;
        const char *close = strchr(p + 1, '}');
        if (!close)
            return 0;
        size_t n = (size_t)(close - p - 1);
        for (size_t i = 0; i < n_vars; i++) {
            if (strlen(vars[i].name) == n && memcmp(vars[i].name, p + 1, n) == 0) {
                if (vars[i].value && vars[i].value[0] == '-') {
                    if (var_out)
                        *var_out = vars[i].name;
                    return 1;
                }
                break;
            }
        }
    }
    return 0;
}
