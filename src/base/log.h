/*
 * Logging with context. Every line names what it is about: the session id,
 * protocol and app/stream when known (sl_log_ctx_t), so an operator can grep
 * one client's story out of a busy server. Output is text by default or one
 * JSON object per line (log.format: json). Lines go to stderr; writing is
 * synchronous and line-buffered, cheap enough at info level because the hot
 * path logs nothing per frame.
 */
#ifndef SL_BASE_LOG_H
#define SL_BASE_LOG_H

#include <stdarg.h>

typedef enum {
    SL_LOG_ERROR = 0,
    SL_LOG_WARN = 1,
    SL_LOG_INFO = 2,
    SL_LOG_DEBUG = 3,
    SL_LOG_TRACE = 4,
} sl_log_level_t;

/* Who a line is about; any field may be NULL. Borrowed for the call only. */
typedef struct sl_log_ctx {
    const char *sid;    /* session id */
    const char *proto;  /* "rtmp", "http", ... */
    const char *app;    /* app (scope) path */
    const char *stream; /* stream name */
} sl_log_ctx_t;

/** Sets the lowest level printed (default info). */
void sl_log_set_level(sl_log_level_t level);
/** Chooses JSON lines (1) or text (0). */
void sl_log_set_json(int json);
/** Parses "error|warn|info|debug|trace"; returns -1 when unknown. */
int sl_log_level_parse(const char *name);
/** True when a line at this level would be printed. */
int sl_log_enabled(sl_log_level_t level);

/** Writes one line. ctx may be NULL. */
void sl_log(sl_log_level_t level, const sl_log_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sl_logv(sl_log_level_t level, const sl_log_ctx_t *ctx, const char *fmt, va_list ap);

#define SL_LOGE(ctx, ...) sl_log(SL_LOG_ERROR, ctx, __VA_ARGS__)
#define SL_LOGW(ctx, ...) sl_log(SL_LOG_WARN, ctx, __VA_ARGS__)
#define SL_LOGI(ctx, ...) sl_log(SL_LOG_INFO, ctx, __VA_ARGS__)
#define SL_LOGD(ctx, ...) do { if (sl_log_enabled(SL_LOG_DEBUG)) sl_log(SL_LOG_DEBUG, ctx, __VA_ARGS__); } while (0)
#define SL_LOGT(ctx, ...) do { if (sl_log_enabled(SL_LOG_TRACE)) sl_log(SL_LOG_TRACE, ctx, __VA_ARGS__); } while (0)

#endif
