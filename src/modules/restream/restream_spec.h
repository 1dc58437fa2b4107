/*
 * The text form of pull and push entries (restream_spec.c): what the
 * `restream.pull` and `restream.push` settings hold, one entry per line,
 *
 *   live/cam1 rtsp://10.0.0.5/h264 mode=on_demand idle_timeout=20s standby=/srv/slate.mp4
 *   live/any rtmp://a.rtmp.youtube.com/live2/{stream}   (with "*" for "any": every stream)
 *
 * and what the API's JSON bodies are checked against. Pure, bounded
 * parsing of untrusted text (it has a fuzz target): no allocation, every
 * field is copied into a fixed buffer and refused when it does not fit.
 */
#ifndef SL_MODULES_RESTREAM_SPEC_H
#define SL_MODULES_RESTREAM_SPEC_H

#include <stddef.h>
#include <stdint.h>

#define SL_RS_NAME_MAX 256    /* app or stream name */
#define SL_RS_URL_MAX 2048    /* source or destination URL */
#define SL_RS_PATH_MAX 1024   /* standby file */
#define SL_RS_LINE_MAX 4096   /* one entry */

typedef enum { SL_RS_ALWAYS = 0, SL_RS_ON_DEMAND = 1 } sl_rs_mode_t;

typedef struct sl_rs_spec {
    char app[SL_RS_NAME_MAX];     /* scope path's app ("live") */
    char stream[SL_RS_NAME_MAX];  /* stream name, or "*" (push only) */
    char url[SL_RS_URL_MAX];
    sl_rs_mode_t mode;            /* pull only */
    int64_t idle_timeout_ms;      /* pull only; 0 = the section's default */
    char standby[SL_RS_PATH_MAX]; /* pull only; "" = none */
    int rtsp_udp;                 /* pull only: RTSP over UDP instead of TCP */
} sl_rs_spec_t;

/**
 * Checks a URL's scheme: pulls take rtsp, rtsps, rtmp, rtmps, srt, http,
 * https (HLS); pushes take rtmp, rtmps, srt. Returns 1 when acceptable.
 */
int sl_rs_url_ok(const char *url, int push);

/**
 * Parses one entry (line, len bytes, no newline needed) into *out. push
 * says which form (a push takes no options and may name stream "*").
 * Returns 0; 1 for a blank or comment (#) line (out untouched); or
 * SL_EINVAL with a static reason in *why.
 */
int sl_rs_spec_parse(const char *line, size_t len, int push, sl_rs_spec_t *out,
                     const char **why);

/**
 * Calls each(ud, spec, line_no) for every entry of text (NULL is empty),
 * stopping at the first error: returns 0, or SL_EINVAL with *why and
 * *bad_line (1-based) set, or what each returned (non-zero stops).
 */
int sl_rs_spec_each(const char *text, int push,
                    int (*each)(void *ud, const sl_rs_spec_t *spec, int line_no), void *ud,
                    const char **why, int *bad_line);

#endif
