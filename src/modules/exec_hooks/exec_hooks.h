/*
 * Exec hooks: run a command when an event happens (exec.on_publish:
 * "ffmpeg -y -i rtmp://127.0.0.1:{rtmp_port}/{app}/{stream} -frames:v 1
 * {data_dir}/{name}.jpg"). A listener on the event bus; the commands run
 * as child processes through uv_spawn on the loop, never blocking it. See
 * docs/integration/exec-hooks.md for what a hook sees.
 *
 * Rules: without exec.shell the command is split into arguments (below)
 * and executed directly, so nothing a client chose (a stream name) can
 * reach a shell; with exec.shell it runs as /bin/sh -c "<command>" and
 * substituted values are single-quoted for the shell. The environment is
 * sluice's own plus SLUICE_* variables describing the event. At most
 * exec.max_concurrent hooks run at once; more wait in a FIFO queue. A hook
 * still running after exec.timeout gets SIGTERM, then SIGKILL a few
 * seconds later (its whole process group: hooks run in a session of their
 * own). Every line a hook writes to stdout or stderr is logged with the
 * hook's name and the event's session and app/stream; its exit status is
 * logged too.
 *
 * This header is the module's entry and the pure command-line helpers
 * that the unit tests exercise; not a public interface.
 */
#ifndef SL_MODULES_EXEC_HOOKS_H
#define SL_MODULES_EXEC_HOOKS_H

#include <stddef.h>

#include "modules/module.h"

/* The built-in module (modules.c lists it). */
extern const sl_builtin_t sl_exec_hooks_builtin;

/* A substitution: {name} in an argument becomes value. */
typedef struct sl_exec_var {
    const char *name;            /* without braces, e.g. "stream" */
    const char *value;           /* never NULL ("" when unknown) */
} sl_exec_var_t;

/**
 * Splits a command line into arguments. Rules (documented for users):
 * arguments are separated by runs of spaces or tabs; a double-quoted part
 * ("...") belongs to the argument it touches and may hold spaces (`"a b"`
 * is one argument, `x"a b"y` is `xa by`, `""` is an empty argument); inside
 * double quotes `\"` is a quote and `\\` a backslash; anywhere else a
 * backslash and single quotes are ordinary characters. Returns 0 with a
 * NULL-terminated array in *argv_out (free with sl__exec_argv_free) and
 * its length in *argc_out; SL_EINVAL for an unterminated quote or an empty
 * command (nothing is allocated then); SL_ENOMEM.
 */
int sl__exec_split(const char *cmd, char ***argv_out, size_t *argc_out);

/** Frees an array from sl__exec_split (NULL is ignored). */
void sl__exec_argv_free(char **argv);

/**
 * Replaces every {name} of tmpl whose name is in vars by its value (quoted
 * for /bin/sh when shell_quote is set); any other brace text is kept as
 * written. Returns a new string (sl_free), or NULL on ENOMEM.
 */
char *sl__exec_substitute(const char *tmpl, const sl_exec_var_t *vars, size_t n_vars,
                          int shell_quote);

/**
 * True when substituting vars into tmpl would let an event value start an
 * argument with '-', where the program would read it as an option (a stream
 * named `-rf` or `--output=/etc/x`). A placeholder starts an argument when
 * it is at the start of tmpl (argv mode: tmpl is one argument) or, with
 * shell set, also after a blank or an opening quote (tmpl is a /bin/sh
 * command line: quoting a value does not stop `rm '-rf'` reading an
 * option). *var_out names the placeholder found (static string).
 */
int sl__exec_option_like(const char *tmpl, const sl_exec_var_t *vars, size_t n_vars, int shell,
                         const char **var_out);

/**
 * Quotes s for /bin/sh: 'it'\''s' style, so the shell reads it as one word
 * with no expansion. Returns a new string (sl_free), or NULL on ENOMEM.
 */
char *sl__exec_shell_quote(const char *s);

#endif
