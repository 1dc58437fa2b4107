/*
 * The SRT `streamid` (the one string a caller sends in its handshake),
 * parsed into what sluice needs before it accepts the connection: publish
 * or read, the scope and stream, and credentials. Three forms:
 *
 *   publish:live/s1            read:live/room1/s1       (MediaMTX/SRS style;
 *   publish:live/s1?username=u&password=p&token=t        "play:" = "read:")
 *   #!::r=live/s1,m=publish,u=user,s=secret,t=token      (SRT access control)
 *
 * In the access-control form m=request (the default) reads and m=publish
 * publishes; u is the username, s the password (and the token when no u
 * and no t are given: a bare secret), t the token; h and other keys are
 * ignored. A string with no prefix is read as `read:`. A streamid holding a
 * '%' is percent-decoded once first (clients put it in a URL encoded). Pure and
 * allocation-free: called from libsrt's listener thread, and fuzzed
 * (tests/fuzz/srt_streamid_fuzz.c).
 */
#ifndef SL_PROTO_SRT_STREAMID_H
#define SL_PROTO_SRT_STREAMID_H

#include <stddef.h>

#define SL_SRT_STREAMID_MAX 512 /* libsrt's own limit on the handshake's streamid */
#define SL_SRT_PATH_MAX 255     /* scope + '/' + stream */

typedef enum {
    SL_SRT_MODE_READ = 1,    /* the caller plays */
    SL_SRT_MODE_PUBLISH = 2, /* the caller publishes */
} sl_srt_mode_t;

typedef struct sl_srt_streamid {
    sl_srt_mode_t mode;
    char path[SL_SRT_PATH_MAX + 1]; /* "live/room1/s1" */
    char scope[SL_SRT_PATH_MAX + 1];/* "live/room1" */
    char stream[SL_SRT_PATH_MAX + 1];/* "s1" */
    char user[128];                 /* empty when absent */
    char pass[128];
    char token[SL_SRT_STREAMID_MAX + 1];
    char query[SL_SRT_STREAMID_MAX + 1]; /* the `?` part as sent (empty when none) */
    int had_creds;                  /* user, pass or token was given */
} sl_srt_streamid_t;

/**
 * Parses the len bytes of sid (need not be NUL-terminated) into *out.
 * Returns 0, SL_ETOOBIG (longer than SL_SRT_STREAMID_MAX, or a field too
 * long) or SL_EINVAL (no app/stream path, an unsafe name, a control byte,
 * an unknown mode); *why (may be NULL) then names the problem (static).
 */
int sl_srt_streamid_parse(const char *sid, size_t len, sl_srt_streamid_t *out, const char **why);

#endif
