/*
 * Corpus replayer: the main() that turns any libFuzzer target into an
 * ordinary program, so that every committed corpus file (seeds and crash
 * reproducers) runs on each `make test` without libFuzzer or clang.
 *
 * Usage: X_replay PATH...  Each PATH is a file, or a directory whose regular
 * files are run (one level: subdirectories are not entered; names starting
 * with '.' are skipped so that .gitkeep and editor files do not count).
 * Files of a directory run in name order, so a failure is reproducible.
 * Each file is read into an exact-size heap block, so that a target reading
 * past the end of its input trips ASan as it would under libFuzzer.
 *
 * A target signals a bug by crashing or aborting (as under libFuzzer); the
 * replayer then names the input on stderr ("replay: failed on PATH") from a
 * SIGABRT handler and from the sanitizers' death callback, so the culprit
 * is in the log next to the report. The program only fails on its own for
 * unreadable paths. It prints one summary line and exits 0 when every file
 * ran, 1 if a path could not be read, 2 on usage errors.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional, as in libFuzzer: a target may define it to set itself up. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);
/* Present when linked with a sanitizer runtime. */
__attribute__((weak)) void __sanitizer_set_death_callback(void (*callback)(void));

/* The input being run, for the failure report. */
static const char *volatile g_current;

/* Names the current input on stderr; async-signal-safe (write only). */
static void report_current(void)
{
    const char *path = g_current;
    if (!path)
        return;
    static const char msg[] = "replay: failed on ";
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0 ||
        write(STDERR_FILENO, path, strlen(path)) < 0 || write(STDERR_FILENO, "\n", 1) < 0)
        return;
}

static void on_abort(int sig)
{
    report_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads path whole and runs the target on it. 0, or -1 (message printed). */
static int run_file(const char *path)
{
    FILE *f = NULL;
    uint8_t *data = NULL;
    struct stat st;
    int rc = -1;

    f = fopen(path, "rb");
    if (!f || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        goto fail;
    }
    size_t size = (size_t)st.st_size;
    /* At least one byte allocated so that an empty input is not a NULL. */
    data = sl_malloc(size ? size : 1);
    if (!data) {
        fprintf(stderr, "replay: %s: out of memory (%zu bytes)\n", path, size);
        goto fail;
    }
    if (size && fread(data, 1, size, f) != size) {
        fprintf(stderr, "replay: %s: short read\n", path);
        goto fail;
    }
    g_current = path;
    LLVMFuzzerTestOneInput(data, size);
    g_current = NULL;
    rc = 0;
fail:
    sl_free(data);
    if (f)
        fclose(f);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Runs every regular file directly inside dir, in name order; *ran counts
 * them. 0, or -1 when the directory or one of its files cannot be read.
 */
static int run_dir(const char *dir, size_t *ran)
{
    DIR *d = NULL;
    char **names = NULL;
    size_t n_names = 0, cap_names = 0;
    int rc = -1;

    d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        goto fail;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n_names == cap_names) {
            size_t ncap = cap_names ? cap_names * 2 : 64;
            char **nn = sl_realloc(names, ncap * sizeof(*names));
            if (!nn)
                goto fail;
            names = nn;
            cap_names = ncap;
        }
        size_t len = strlen(dir) + 1 + strlen(e->d_name) + 1;
        names[n_names] = sl_malloc(len);
        if (!names[n_names])
            goto fail;
        snprintf(names[n_names], len, "%s/%s", dir, e->d_name);
        n_names++;
    }
    qsort(names, n_names, sizeof(*names), by_name);
    rc = 0;
    for (size_t i = 0; i < n_names; i++) {
        struct stat st;
        if (stat(names[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", names[i], strerror(errno));
            rc = -1;
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        if (run_file(names[i]) != 0)
            rc = -1;
        else
            (*ran)++;
    }
fail:
    for (size_t i = 0; i < n_names; i++)
        sl_free(names[i]);
    sl_free(names);
    if (d)
        closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    size_t ran = 0;
    int failed = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    signal(SIGABRT, on_abort);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(report_current);
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            failed = 1;
        } else if (S_ISDIR(st.st_mode)) {
            if (run_dir(argv[i], &ran) != 0)
                failed = 1;
        } else if (run_file(argv[i]) != 0) {
            failed = 1;
        } else {
            ran++;
        }
    }
    printf("replay: %zu inputs run%s\n", ran, failed ? ", some paths unreadable" : "");
    return failed ? 1 : 0;
}
