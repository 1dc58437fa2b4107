/*
 * allowlist: a custom, asynchronous admission check. A publish (and, with
 * `check_play: true`, a play) is allowed only when the stream name is a
 * line of the allow-list file (setting `file`; `#` starts a comment). The
 * file is read on a worker thread for every request, so edits apply at
 * once and the event loop never waits for the disk: the check holds the
 * admission, returns SL_EPENDING, and resumes it from the loop.
 *
 *   plugins:
 *     - name: allowlist
 *       path: .../allowlist.so
 *       apps: [live]
 *       settings: {file: /etc/sluice/allowed-streams.txt}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/plugin.h>

typedef struct {
    const sl_host_api_t *api;
    sl_host_t *h;
    char file[1024];
    int check_play;
} allowlist_t;

typedef struct {
    allowlist_t *al;
    sl_admission_t *a;  /* held until resumed */
    char stream[256];
    int found;          /* 1 listed, 0 not listed, -1 file unreadable */
} lookup_t;

static void lookup_work(void *arg) /* worker thread: blocking reads are fine */
{
    lookup_t *l = arg;
    FILE *f = fopen(l->al->file, "r");
    char line[512];
    if (!f) {
        l->found = -1;
        return;
    }
    l->found = 0;
    while (!l->found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "#\r\n")] = '\0';
        char *s = line, *e;
        while (*s == ' ' || *s == '\t')
            s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        if (*s && strcmp(s, l->stream) == 0)
            l->found = 1;
    }
    fclose(f);
}

static void lookup_done(void *arg, int status) /* loop */
{
    lookup_t *l = arg;
    allowlist_t *al = l->al;
    if (status == 0 && l->found == 1) {
        al->api->log(al->h, SL_PLUGIN_LOG_INFO, "stream %s is on the allow-list", l->stream);
        al->api->admission_resume(l->a, SL_OK, NULL);
    } else {
        al->api->log(al->h, SL_PLUGIN_LOG_INFO, "stream %s refused: %s", l->stream,
                     l->found < 0 ? "allow-list unreadable" : "not on the allow-list");
        al->api->admission_resume(l->a, SL_EDENIED, "not on the allow-list");
    }
    free(l);
}

static int allowlist_admit(void *state, sl_admission_t *a)
{
    allowlist_t *al = state;
    sl_admission_info_t info;
    if (al->api->admission_info(a, &info))
        return SL_EDECLINED;
    if (info.kind == SL_ADMISSION_CONNECT || (info.kind == SL_ADMISSION_PLAY && !al->check_play))
        return SL_EDECLINED;
    lookup_t *l = calloc(1, sizeof *l);
    if (!l) {
        al->api->admission_set_reason(a, "out of memory");
        return SL_EDENIED;
    }
    l->al = al;
    l->a = a;
    snprintf(l->stream, sizeof l->stream, "%s", info.stream ? info.stream : "");
    al->api->admission_hold(a);
    if (al->api->work_queue(al->h, lookup_work, lookup_done, l)) {
        al->api->admission_resume(a, SL_EDENIED, "allow-list check failed");
        free(l);
    }
    return SL_EPENDING;
}

static int allowlist_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    const char *file = api->setting(h, "file");
    const char *play = api->setting(h, "check_play");
    if (!file || !*file) {
        api->log(h, SL_PLUGIN_LOG_ERROR, "the setting 'file' is required");
        return SL_EINVAL;
    }
    allowlist_t *al = calloc(1, sizeof *al);
    if (!al)
        return SL_ENOMEM;
    al->api = api;
    al->h = h;
    snprintf(al->file, sizeof al->file, "%s", file);
    al->check_play = play && (strcmp(play, "true") == 0 || strcmp(play, "1") == 0);
    *state = al;
    return 0;
}

static void allowlist_destroy(void *state) { free(state); }

static const sl_plugin_t allowlist_plugin = {
    SL_PLUGIN_ABI,
    .name = "allowlist",
    .version = "1.0",
    .description = "asynchronous allow-list admission for publishers",
    .init = allowlist_init,
    .destroy = allowlist_destroy,
    .admit = allowlist_admit,
};

SL_PLUGIN_INIT(allowlist_plugin)
