/*
 * Context logging (see log.h). Text lines look like
 *   2026-11-21T12:00:00.123Z INFO  [rtmp S9YD7FMFXK9WG live/stream1] publish started
 * JSON lines carry the same fields as keys: ts, level, sid, proto, app,
 * stream, msg.
 *
 * Thread-safe: every event-loop thread (server.workers) logs. The level and
 * format are atomics (set at start and on reload, read per line); a line is
 * formatted in stack buffers and written with one fprintf, which stdio
 * locks for the call, so lines from different threads never interleave.
 */
#include "base/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static _Atomic int g_level = SL_LOG_INFO;
static _Atomic int g_json;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

void sl_log_set_level(sl_log_level_t level) { atomic_store_explicit(&g_level, (int)level, memory_order_relaxed); }
void sl_log_set_json(int json) { atomic_store_explicit(&g_json, json, memory_order_relaxed); }
int sl_log_enabled(sl_log_level_t level) { return (int)level <= atomic_load_explicit(&g_level, memory_order_relaxed); }

int sl_log_level_parse(const char *name)
{
    for (int i = 0; i < 5; i++)
        if (name && strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

/* Appends s to out as a JSON string body (no quotes), escaping as needed. */
static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; s && *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    return n;
}

void sl_logv(sl_log_level_t level, const sl_log_ctx_t *ctx, const char *fmt, va_list ap)
{
    if (!sl_log_enabled(level))
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[96];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));

    char line[2048];
    if (atomic_load_explicit(&g_json, memory_order_relaxed)) {
        char esc[1200];
        size_t n = (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\"", ts,
                                    level_names[level]);
        const char *keys[4] = {"sid", "proto", "app", "stream"};
        const char *vals[4] = {ctx ? ctx->sid : NULL, ctx ? ctx->proto : NULL,
                               ctx ? ctx->app : NULL, ctx ? ctx->stream : NULL};
        for (int i = 0; i < 4 && n < sizeof line; i++) {
            if (!vals[i])
                continue;
            json_escape(esc, sizeof esc, vals[i]);
            n += (size_t)snprintf(line + n, sizeof line - n, ",\"%s\":\"%s\"", keys[i], esc);
        }
        json_escape(esc, sizeof esc, msg);
        if (n < sizeof line)
            snprintf(line + n, sizeof line - n, ",\"msg\":\"%s\"}", esc);
    } else {
        char where[300] = "";
        if (ctx && (ctx->sid || ctx->proto || ctx->app)) {
            snprintf(where, sizeof where, "[%s %s %s%s%s] ", ctx->proto ? ctx->proto : "-",
                     ctx->sid ? ctx->sid : "-", ctx->app ? ctx->app : "-",
                     ctx->stream ? "/" : "", ctx->stream ? ctx->stream : "");
        }
        static const char *const upper[] = {"ERROR", "WARN ", "INFO ", "DEBUG", "TRACE"};
        snprintf(line, sizeof line, "%s %s %s%s", ts, upper[level], where, msg);
    }
    fprintf(stderr, "%s\n", line);
}

void sl_log(sl_log_level_t level, const sl_log_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl_logv(level, ctx, fmt, ap);
    va_end(ap);
}
