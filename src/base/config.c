/*
 * The configuration engine (see config.h): sections of typed slots and the
 * code they drive. Base declares its own sections here (server, log, media,
 * and the core's per-app keys enabled/publish/play); every protocol and
 * module declares its section next to its code, and the process lists them
 * all to sl_config_init. Each slot says key, type, offset into its owner's
 * struct, default spelled as a user writes it, bounds, doc and flags. The
 * defaults, the YAML loader (libyaml's event API, so every node keeps its
 * line), the SLUICE_* environment overrides, sl_config_diff/equal and
 * the two writers (the shipped sluice.yml and docs/config.md) all walk
 * these tables and nothing else, so adding a setting is one table line plus
 * its struct field.
 *
 * Loading runs on the main thread (at start and on reload); nothing here is shared
 * between threads and there is no global state besides the const tables.
 */
#include "base/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "base/alloc.h"
#include "base/log.h"
#include "sluice/errors.h"

/* ---- the tables ------------------------------------------------------- */

/* Short names for the slot types and units, for the tables and the code below. */
typedef sl_config_slot_t slot_t;
#define T_INT SL_CONFIG_INT
#define T_BOOL SL_CONFIG_BOOL
#define T_STRING SL_CONFIG_STRING
#define T_SIZE SL_CONFIG_SIZE
#define T_DURATION SL_CONFIG_DURATION
#define T_ENUM SL_CONFIG_ENUM
#define KB SL_CONFIG_KB
#define MB SL_CONFIG_MB
#define GB SL_CONFIG_GB
#define SEC SL_CONFIG_SEC
#define MINUTE SL_CONFIG_MINUTE
#define HOUR SL_CONFIG_HOUR

#define CFG(f) offsetof(sl_config_t, f)
#define APP(f) offsetof(sl_app_config_t, f)

/* Index order is the value: it must match sl_log_level_t (checked by a test). */
static const char *const log_level_names[] = {"error", "warn", "info", "debug", "trace", NULL};
static const char *const log_format_names[] = {"text", "json", NULL};

static const slot_t g_server_slots[] = {
    {"data_dir", SL_CONFIG_STRING, CFG(server_data_dir), "./data", 1, 4095, NULL,
     "Data folder: SQLite database, recordings, shared-object store.", SL_CONFIG_RESTART},
    {"node_name", SL_CONFIG_STRING, CFG(server_node_name), "", 0, 255, NULL,
     "This node's name in events, logs and the cluster; empty means the host name.", SL_CONFIG_RESTART},
    {"max_connections", SL_CONFIG_INT, CFG(server_max_connections), "10000", 1, 1000000, NULL,
     "Most client connections at once, all protocols together; more are refused.", 0},
    {"max_connections_per_address", SL_CONFIG_INT, CFG(server_max_connections_per_address), "64",
     0, 1000000, NULL,
     "Most connections at once from one client address, all protocols together (loopback "
     "included); more are refused. 0 = no limit. Raise it for many clients behind one NAT.", 0},
    {"max_pending_connections", SL_CONFIG_INT, CFG(server_max_pending_connections), "0", 0,
     1000000, NULL,
     "Most connections at once without a complete HTTP request or accepted RTMP connect; a new one "
     "past it closes the oldest. 0 = a quarter of max_connections.", 0},
    {"shutdown_timeout", SL_CONFIG_DURATION, CFG(server_shutdown_timeout_ms), "5s", 0,
     10 * MINUTE, NULL, "On SIGTERM/SIGINT, how long sessions get to finish before they are closed.", 0},
    {"workers", SL_CONFIG_INT, CFG(server_workers), "0", 0, 64, NULL,
     "Event-loop threads, the main loop included; 0 = one per core (the cores this process may "
     "run on). 1 runs everything on one loop. With more, each plain-TCP RTMP or plain-HTTP FLV player's queue, drop policy and socket writes run on "
     "the least loaded loop, which gets each frame of the stream once, and each WHEP viewer's "
     "SRTP encryption and sends run on its loop; reading, commands, publishing, pacing, the "
     "API and modules stay on the main loop (docs/internals/threads.md).",
     SL_CONFIG_RESTART},
};

static const slot_t g_log_slots[] = {
    {"level", SL_CONFIG_ENUM, CFG(log_level), "info", 0, 0, log_level_names,
     "Lowest level written to stderr. Up to debug, secrets (passwords, tokens, JWTs, URL userinfo) are masked; trace may print raw protocol data, credentials included.", 0},
    {"format", SL_CONFIG_ENUM, CFG(log_format), "text", 0, 0, log_format_names,
     "text: one readable line per event; json: one JSON object per line.", 0},
};

static const slot_t g_media_slots[] = {
    {"gop_cache_max_bytes", SL_CONFIG_SIZE, CFG(media_gop_cache_max_bytes), "16MB", 0, 1 * GB,
     NULL, "Per stream: bytes of the last GOP kept so new players start on a keyframe; 0 disables.", SL_CONFIG_RESTART},
    {"queue_max_bytes", SL_CONFIG_SIZE, CFG(media_queue_max_bytes), "8MB", 64 * KB, 1 * GB, NULL,
     "Per subscriber: bytes queued before it drops frames up to the next keyframe.", 0},
    {"queue_max_ms", SL_CONFIG_DURATION, CFG(media_queue_max_ms), "5s", 100, 10 * MINUTE, NULL,
     "Per subscriber: media time queued before it drops frames up to the next keyframe.", 0},
    {"slow_disconnect", SL_CONFIG_DURATION, CFG(media_slow_disconnect_ms), "30s", 1 * SEC,
     1 * HOUR, NULL, "A subscriber still dropping frames after this long is disconnected.", 0},
    {"write_merge", SL_CONFIG_DURATION, CFG(media_write_merge_ms), "0ms", 0, 1 * SEC, NULL,
     "Gather writes to each subscriber over this window: fewer syscalls, more latency; 0 = at once.", 0},
    {"audio_hold", SL_CONFIG_DURATION, CFG(media_audio_hold_ms), "50ms", 0, 1 * SEC, NULL,
     "With write_merge 0: an RTMP player's audio waits for the next video frame, at most this long, "
     "so both go out in one write; 0 = every audio frame written at once.", 0},
};

/* The per-app settings the core itself reads (sl_app_config_t's fields). */
static const slot_t g_core_app_slots[] = {
    {"enabled", SL_CONFIG_BOOL, APP(enabled), "true", 0, 0, NULL,
     "Serve this app; a disabled app is refused like an unknown one.", 0},
    {"publish", SL_CONFIG_BOOL, APP(allow_publish), "true", 0, 0, NULL,
     "Allow publishing streams to this app.", 0},
    {"play", SL_CONFIG_BOOL, APP(allow_play), "true", 0, 0, NULL,
     "Allow playing streams from this app.", 0},
};

#define COUNT(t) (sizeof t / sizeof t[0])

const sl_config_section_t sl_config_server_section = {
    .name = "server",
    .doc = "Process-wide settings.",
    .slots = g_server_slots,
    .n_slots = COUNT(g_server_slots),
};

const sl_config_section_t sl_config_log_section = {
    .name = "log",
    .doc = "Logging to stderr.",
    .slots = g_log_slots,
    .n_slots = COUNT(g_log_slots),
};

const sl_config_section_t sl_config_media_section = {
    .name = "media",
    .doc = "The media path: GOP cache and per-subscriber queues.",
    .slots = g_media_slots,
    .n_slots = COUNT(g_media_slots),
};

/* Always first in a configuration's list: its per-app slots come first. */
static const sl_config_section_t g_core_section = {
    .app_slots = g_core_app_slots,
    .n_app_slots = COUNT(g_core_app_slots),
};

/* Duplicate-key tracking uses a fixed array per mapping. */
#define MAX_TABLE SL_CONFIG_MAX_SLOTS

/* ---- section lists ---------------------------------------------------- */

/* The sections of a configuration, in file order, the core's first. */
typedef struct {
    const sl_config_section_t *s[SL_CONFIG_MAX_SECTIONS + 4];
    size_t n;
} seclist_t;

/* True when section sec is a YAML section (it has top-level keys). */
static bool is_yaml_section(const sl_config_section_t *sec)
{
    return sec->name && sec->n_slots > 0;
}

/*
 * Builds the full list from the caller's: the core's per-app section, then
 * server, log and media when the caller did not place them, then the
 * caller's sections in its order. SL_EINVAL for too many sections, a
 * section listed twice, a section with keys but no name, or more per-app
 * slots in all than SL_CONFIG_MAX_SLOTS (programming errors, logged).
 */
static int seclist_build(seclist_t *l, const sl_config_section_t *const *in, size_t n)
{
    static const sl_config_section_t *const base[] = {
        &sl_config_server_section, &sl_config_log_section, &sl_config_media_section};
    size_t n_app = 0;
    l->n = 0;
    l->s[l->n++] = &g_core_section;
    for (size_t b = 0; b < COUNT(base); b++) {
        bool listed = false;
        for (size_t i = 0; i < n; i++)
            listed |= in[i] == base[b];
        if (!listed)
            l->s[l->n++] = base[b];
    }
    if (n > SL_CONFIG_MAX_SECTIONS) {
        SL_LOGE(NULL, "config: %zu sections, at most %d", n, SL_CONFIG_MAX_SECTIONS);
        return SL_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < l->n; j++) {
            if (l->s[j] == in[i] || (in[i]->name && l->s[j]->name &&
                                     strcmp(in[i]->name, l->s[j]->name) == 0)) {
                SL_LOGE(NULL, "config: section %s listed twice", in[i]->name ? in[i]->name : "?");
                return SL_EINVAL;
            }
        }
        if (in[i]->n_slots && !in[i]->name) {
            SL_LOGE(NULL, "config: a section with keys has no name");
            return SL_EINVAL;
        }
        l->s[l->n++] = in[i];
    }
    for (size_t i = 0; i < l->n; i++) {
        if (l->s[i]->n_slots > MAX_TABLE) {
            SL_LOGE(NULL, "config: section %s has more than %d keys", l->s[i]->name, MAX_TABLE);
            return SL_EINVAL;
        }
        n_app += l->s[i]->n_app_slots;
    }
    if (n_app > MAX_TABLE) {
        SL_LOGE(NULL, "config: more than %d per-app keys", MAX_TABLE);
        return SL_EINVAL;
    }
    return 0;
}

/*
 * Writes the top-level keys, every YAML section of the list then `apps` and
 * `plugins`, as "a, b, ..., apps, plugins" (quote = "`" for markdown, "" for messages), so the
 * texts that name them cannot fall behind the tables. Cut to cap. Returns
 * the number of names written.
 */
static size_t section_names(const sl_config_section_t *const *secs, size_t n_secs, char *out,
                            size_t cap, const char *quote)
{
    size_t n = 0, count = 0;
    out[0] = '\0';
    for (size_t si = 0; si <= n_secs + 1 && n < cap; si++) {
        if (si < n_secs && !is_yaml_section(secs[si]))
            continue;
        int w = snprintf(out + n, cap - n, "%s%s%s%s", count ? ", " : "", quote,
                         si < n_secs    ? secs[si]->name
                         : si == n_secs ? "apps"
                                        : "plugins",
                         quote);
        if (w < 0)
            break;
        n += (size_t)w;
        count++;
    }
    return count;
}

/* ---- small helpers ---------------------------------------------------- */

/* Reports go to a sink: the user's callback plus counters for the return code. */
typedef struct {
    sl_config_err_cb err;
    void *ud;
    const char *where; /* file name or variable name for the next report */
    int n_problems;
    int nomem;         /* an allocation failed: stop and return SL_ENOMEM */
} sink_t;

static void report(sink_t *sk, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void report(sink_t *sk, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sk->n_problems++;
    if (sk->err)
        sk->err(sk->ud, sk->where, line, msg);
}

/*
 * Copies untrusted text into out for a message: printable ASCII kept, other
 * bytes shown as '?', at most about 60 characters, so a hostile file cannot
 * put control characters or megabytes into the log.
 */
static const char *show(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = 0, i = 0, limit = cap < 64 ? cap : 64;
    for (; i < len && n + 4 < limit; i++) {
        unsigned char c = (unsigned char)s[i];
        out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (i < len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

/* Case-insensitive equality of s[0..len) with the NUL-terminated word. */
static bool eq_ci(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/* Exact equality of s[0..len) with the NUL-terminated word. */
static bool eq(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

/*
 * Levenshtein distance, case-insensitive, for "did you mean" hints; names
 * longer than 64 bytes get no hint (SIZE_MAX).
 */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t row[65];
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Remembers the closest candidate seen so far (distance <= 2 counts). */
typedef struct {
    char best[96];
    size_t dist;
} hint_t;

static void hint_try(hint_t *h, const char *s, size_t len, const char *candidate)
{
    size_t d = edit_distance(s, len, candidate, strlen(candidate));
    if (d <= 2 && d < h->dist) {
        h->dist = d;
        snprintf(h->best, sizeof h->best, "%s", candidate);
    }
}

static void *field(void *base, const slot_t *s)
{
    return (char *)base + s->offset;
}

static const void *cfield(const void *base, const slot_t *s)
{
    return (const char *)base + s->offset;
}

/* ---- value parsing ---------------------------------------------------- */

typedef struct {
    const char *name;
    int64_t mult;
} unit_t;

/* Binary multiples, as a stream engineer expects "64k" of buffer to mean. */
static const unit_t size_units[] = {
    {"", 1},       {"b", 1},       {"k", KB},  {"kb", KB},  {"kib", KB}, {"m", MB},
    {"mb", MB},    {"mib", MB},    {"g", GB},  {"gb", GB},  {"gib", GB}, {NULL, 0},
};
/* A plain number is milliseconds: every duration is stored in ms. */
static const unit_t duration_units[] = {
    {"", 1}, {"ms", 1}, {"s", SEC}, {"m", MINUTE}, {"h", HOUR}, {NULL, 0},
};

/* Parses digits[ blanks][unit]; 0, -1 (malformed) or -2 (too large). */
static int parse_with_unit(const char *s, size_t len, const unit_t *units, int64_t *out)
{
    size_t i = 0;
    int64_t v = 0;
    if (len == 0 || !isdigit((unsigned char)s[0]))
        return -1;
    for (; i < len && isdigit((unsigned char)s[i]); i++) {
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    for (const unit_t *u = units; u->name; u++) {
        if (eq_ci(s + i, len - i, u->name)) {
            if (v > INT64_MAX / u->mult)
                return -2;
            *out = v * u->mult;
            return 0;
        }
    }
    return -1;
}

/* Parses an optionally signed decimal integer; 0, -1 or -2 as above. */
static int parse_int(const char *s, size_t len, int64_t *out)
{
    int neg = 0;
    size_t i = 0;
    int64_t v = 0;
    if (len > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len)
        return -1;
    for (; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    *out = neg ? -v : v;
    return 0;
}

static int parse_bool(const char *s, size_t len, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1", NULL};
    static const char *const no[] = {"false", "no", "off", "0", NULL};
    for (int i = 0; yes[i]; i++) {
        if (eq_ci(s, len, yes[i])) {
            *out = 1;
            return 0;
        }
        if (eq_ci(s, len, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Formats a byte count with the largest exact binary unit: 65536 -> "64KB". */
static const char *fmt_size(int64_t v, char *out, size_t cap)
{
    if (v != 0 && v % GB == 0)
        snprintf(out, cap, "%lldGB", (long long)(v / GB));
    else if (v != 0 && v % MB == 0)
        snprintf(out, cap, "%lldMB", (long long)(v / MB));
    else if (v != 0 && v % KB == 0)
        snprintf(out, cap, "%lldKB", (long long)(v / KB));
    else
        snprintf(out, cap, "%lld", (long long)v);
    return out;
}

/* Formats milliseconds with the largest exact unit: 300000 -> "5m". */
static const char *fmt_duration(int64_t ms, char *out, size_t cap)
{
    if (ms != 0 && ms % HOUR == 0)
        snprintf(out, cap, "%lldh", (long long)(ms / HOUR));
    else if (ms != 0 && ms % MINUTE == 0)
        snprintf(out, cap, "%lldm", (long long)(ms / MINUTE));
    else if (ms != 0 && ms % SEC == 0)
        snprintf(out, cap, "%llds", (long long)(ms / SEC));
    else if (ms != 0)
        snprintf(out, cap, "%lldms", (long long)ms);
    else
        snprintf(out, cap, "0");
    return out;
}

static const char *fmt_bound(const slot_t *s, int64_t v, char *out, size_t cap)
{
    if (s->type == T_SIZE)
        return fmt_size(v, out, cap);
    if (s->type == T_DURATION)
        return fmt_duration(v, out, cap);
    snprintf(out, cap, "%lld", (long long)v);
    return out;
}

/* "error, warn, info" for messages and docs. */
static const char *enum_list(const slot_t *s, const char *sep, const char *quote, char *out,
                             size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; s->names[i] && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s%s%s", i ? sep : "", quote, s->names[i], quote);
    return out;
}

/*
 * Parses text[0..len) as slot s and stores it into base. Returns 0;
 * SL_EINVAL with the reason in why (the value is left unchanged); or
 * SL_ENOMEM. Strings are duplicated before the old value is freed, so a
 * failure never leaves a dangling pointer.
 */
static int slot_set(const slot_t *s, void *base, const char *text, size_t len, char *why,
                    size_t why_cap)
{
    char shown[72], lo[32], hi[32], list[128];
    int64_t v = 0;
    int rc = 0, b = 0;

    show(text, len, shown, sizeof shown);
    if (memchr(text, '\0', len)) {
        snprintf(why, why_cap, "the value contains a NUL byte");
        return SL_EINVAL;
    }
    switch (s->type) {
    case T_STRING: {
        if ((int64_t)len < s->min || (int64_t)len > s->max) {
            if (len == 0)
                snprintf(why, why_cap, "must not be empty");
            else
                snprintf(why, why_cap, "is longer than %lld bytes", (long long)s->max);
            return SL_EINVAL;
        }
        char *copy = sl_strndup(text, len);
        if (!copy)
            return SL_ENOMEM;
        char **slot = field(base, s);
        sl_free(*slot);
        *slot = copy;
        return 0;
    }
    case T_BOOL:
        if (parse_bool(text, len, &b) != 0) {
            snprintf(why, why_cap, "expected true or false (or yes/no, on/off, 1/0), got '%s'",
                     shown);
            return SL_EINVAL;
        }
        *(int *)field(base, s) = b;
        return 0;
    case T_ENUM:
        for (int i = 0; s->names[i]; i++) {
            if (eq_ci(text, len, s->names[i])) {
                *(int64_t *)field(base, s) = i;
                return 0;
            }
        }
        snprintf(why, why_cap, "expected one of %s; got '%s'",
                 enum_list(s, ", ", "", list, sizeof list), shown);
        return SL_EINVAL;
    case T_INT:
        rc = parse_int(text, len, &v);
        if (rc == -1) {
            snprintf(why, why_cap, "expected an integer, got '%s'", shown);
            return SL_EINVAL;
        }
        break;
    case T_SIZE:
        rc = parse_with_unit(text, len, size_units, &v);
        if (rc == -1) {
            snprintf(why, why_cap, "expected a size such as 4096, 64k, 16MB or 1g, got '%s'",
                     shown);
            return SL_EINVAL;
        }
        break;
    case T_DURATION:
        rc = parse_with_unit(text, len, duration_units, &v);
        if (rc == -1) {
            snprintf(why, why_cap,
                     "expected a duration such as 500ms, 5s, 2m or 1h (a plain number is "
                     "milliseconds), got '%s'",
                     shown);
            return SL_EINVAL;
        }
        break;
    }
    /* Numeric types: one range check for all, with bounds in the type's units. */
    if (rc == -2 || v < s->min || v > s->max) {
        snprintf(why, why_cap, "'%s' is out of range (%s..%s)", shown,
                 fmt_bound(s, s->min, lo, sizeof lo), fmt_bound(s, s->max, hi, sizeof hi));
        return SL_EINVAL;
    }
    *(int64_t *)field(base, s) = v;
    return 0;
}

/* Sets every slot of a table to its default. 0, SL_ENOMEM or SL_EINVAL (bad table). */
static int table_defaults(const slot_t *t, size_t n, void *base, const char *section)
{
    char why[256];
    for (size_t i = 0; i < n; i++) {
        int rc = slot_set(&t[i], base, t[i].def, strlen(t[i].def), why, sizeof why);
        if (rc == SL_EINVAL) /* a programming error in the table; the unit test catches it */
            SL_LOGE(NULL, "config: bad default for %s.%s: %s", section ? section : "app",
                    t[i].key, why);
        if (rc)
            return rc;
    }
    return 0;
}

static void table_free(const slot_t *t, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i].type == T_STRING) {
            char **p = field(base, &t[i]);
            sl_free(*p);
            *p = NULL;
        }
    }
}

static int table_equal(const slot_t *t, size_t n, const void *a, const void *b)
{
    for (size_t i = 0; i < n; i++) {
        const void *fa = cfield(a, &t[i]), *fb = cfield(b, &t[i]);
        switch (t[i].type) {
        case T_STRING: {
            const char *sa = *(char *const *)fa, *sb = *(char *const *)fb;
            if ((sa == NULL) != (sb == NULL) || (sa && strcmp(sa, sb) != 0))
                return 0;
            break;
        }
        case T_BOOL:
            if (*(const int *)fa != *(const int *)fb)
                return 0;
            break;
        default:
            if (*(const int64_t *)fa != *(const int64_t *)fb)
                return 0;
            break;
        }
    }
    return 1;
}

/* ---- blocks ----------------------------------------------------------- */

/* Where section si's values live: its block, or cfg itself for base's own. */
static void *cfg_base(const sl_config_t *cfg, size_t si)
{
    return cfg->sections[si]->size ? cfg->blocks[si] : (void *)cfg;
}

/* Where section si's per-app values of app live: its block, or the app itself. */
static void *app_base(const sl_app_config_t *app, size_t si)
{
    return app->sections[si]->app_size ? app->blocks[si] : (void *)app;
}

/* Frees what an app owns (string slots, blocks, name); safe on a half-built one. */
static void app_free(sl_app_config_t *app)
{
    for (size_t si = 0; app->blocks && si < app->n_sections; si++) {
        if (app->sections[si]->app_size && !app->blocks[si])
            continue;
        table_free(app->sections[si]->app_slots, app->sections[si]->n_app_slots,
                   app_base(app, si));
        if (app->sections[si]->app_size)
            sl_free(app->blocks[si]);
    }
    sl_free(app->blocks);
    sl_free(app->name);
    app->blocks = NULL;
    app->name = NULL;
}

/* Index of sec in cfg's list, or -1. A handful of pointers: a linear scan. */
static long section_index(const sl_config_section_t *const *secs, size_t n,
                          const sl_config_section_t *sec)
{
    for (size_t i = 0; i < n; i++)
        if (secs[i] == sec)
            return (long)i;
    return -1;
}

/* Returns the section's block of cfg; see config.h. */
void *sl_config_get(const sl_config_t *cfg, const sl_config_section_t *sec)
{
    long i = cfg ? section_index(cfg->sections, cfg->n_sections, sec) : -1;
    return i < 0 || (!sec->size && !sec->n_slots) ? NULL : cfg_base(cfg, (size_t)i);
}

/* Returns the section's per-app block of app; see config.h. */
void *sl_config_app_get(const sl_app_config_t *app, const sl_config_section_t *sec)
{
    long i = app ? section_index(app->sections, app->n_sections, sec) : -1;
    return i < 0 || (!sec->app_size && !sec->n_app_slots) ? NULL : app_base(app, (size_t)i);
}

/* ---- apps ------------------------------------------------------------- */

static bool app_name_valid(const char *s, size_t len)
{
    if (len < 1 || len > SL_CONFIG_APP_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* Index of the app named s[0..len) (exactly, or ignoring case), or -1. */
static long app_find(const sl_config_t *cfg, const char *s, size_t len, bool ci)
{
    for (size_t i = 0; i < cfg->n_apps; i++)
        if (ci ? eq_ci(s, len, cfg->apps[i].name) : eq(s, len, cfg->apps[i].name))
            return (long)i;
    return -1;
}

/*
 * Appends an app with default settings; the name is copied (lower-cased if
 * asked). Returns 0 with its index in *idx, SL_ETOOBIG past
 * SL_CONFIG_MAX_APPS, or SL_ENOMEM (cfg unchanged apart from capacity).
 */
static int app_add(sl_config_t *cfg, const char *name, size_t len, bool lower, size_t *idx)
{
    if (cfg->n_apps >= SL_CONFIG_MAX_APPS)
        return SL_ETOOBIG;
    sl_app_config_t *apps = sl_realloc(cfg->apps, (cfg->n_apps + 1) * sizeof *apps);
    if (!apps)
        return SL_ENOMEM;
    cfg->apps = apps;
    sl_app_config_t *app = &apps[cfg->n_apps];
    memset(app, 0, sizeof *app);
    int rc = SL_ENOMEM;
    app->sections = cfg->sections;
    app->n_sections = cfg->n_sections;
    app->name = sl_strndup(name, len);
    app->blocks = sl_calloc(cfg->n_sections, sizeof *app->blocks);
    if (!app->name || !app->blocks)
        goto fail;
    for (size_t i = 0; lower && i < len; i++)
        app->name[i] = (char)tolower((unsigned char)app->name[i]);
    for (size_t si = 0; si < cfg->n_sections; si++) {
        const sl_config_section_t *sec = cfg->sections[si];
        if (sec->app_size) {
            rc = SL_ENOMEM;
            if (!(app->blocks[si] = sl_calloc(1, sec->app_size)))
                goto fail;
        }
        rc = table_defaults(sec->app_slots, sec->n_app_slots, app_base(app, si), NULL);
        if (rc)
            goto fail;
    }
    *idx = cfg->n_apps++;
    return 0;
fail:
    app_free(app);
    return rc;
}

/* Why app_add failed, for a report; SL_ENOMEM also marks the sink. */
static void app_add_failed(sink_t *sk, int line, int rc)
{
    if (rc == SL_ENOMEM) {
        sk->nomem = 1;
        report(sk, line, "out of memory");
    } else {
        report(sk, line, "too many apps (at most %d)", SL_CONFIG_MAX_APPS);
    }
}

/* ---- public: lifetime ------------------------------------------------- */

/*
 * Registers the sections (see seclist_build), allocates their blocks, fills
 * every default, then adds the app `live`. See config.h for the contract.
 */
int sl_config_init(sl_config_t *cfg, const sl_config_section_t *const *sections, size_t n)
{
    seclist_t l;
    size_t idx;
    memset(cfg, 0, sizeof *cfg);
    int rc = seclist_build(&l, sections, n);
    if (rc)
        return rc;
    rc = SL_ENOMEM;
    cfg->sections = sl_calloc(l.n, sizeof *cfg->sections);
    cfg->blocks = sl_calloc(l.n, sizeof *cfg->blocks);
    if (!cfg->sections || !cfg->blocks)
        goto fail;
    memcpy(cfg->sections, l.s, l.n * sizeof *cfg->sections);
    cfg->n_sections = l.n;
    for (size_t si = 0; si < l.n; si++) {
        if (l.s[si]->size && !(cfg->blocks[si] = sl_calloc(1, l.s[si]->size)))
            goto fail;
    }
    for (size_t si = 0; si < l.n; si++) {
        rc = table_defaults(l.s[si]->slots, l.s[si]->n_slots, cfg_base(cfg, si), l.s[si]->name);
        if (rc)
            goto fail;
    }
    rc = app_add(cfg, "live", 4, false, &idx);
    if (rc)
        goto fail;
    return 0;
fail:
    sl_config_cleanup(cfg);
    return rc;
}

static void plugins_free(sl_config_t *cfg); /* the plugins block, below */
static int plugins_equal(const sl_config_t *a, const sl_config_t *b);

/* Frees every string slot, every block, every app and the arrays; zeroes cfg. */
void sl_config_cleanup(sl_config_t *cfg)
{
    if (!cfg)
        return;
    for (size_t si = 0; cfg->blocks && si < cfg->n_sections; si++) {
        if (cfg->sections[si]->size && !cfg->blocks[si])
            continue;
        table_free(cfg->sections[si]->slots, cfg->sections[si]->n_slots, cfg_base(cfg, si));
        if (cfg->sections[si]->size)
            sl_free(cfg->blocks[si]);
    }
    for (size_t i = 0; i < cfg->n_apps; i++)
        app_free(&cfg->apps[i]);
    sl_free(cfg->apps);
    sl_free(cfg->blocks);
    sl_free((void *)cfg->sections);
    plugins_free(cfg);
    for (size_t i = 0; i < cfg->n_origins; i++) {
        sl_free(cfg->origins[i].key);
        sl_free(cfg->origins[i].where);
    }
    sl_free(cfg->origins);
    memset(cfg, 0, sizeof *cfg);
}

/*
 * Remembers that label.key was set at where:line. Records are only appended
 * (a later setting of the same key is found first, as its value replaced the
 * value), so loading stays linear however many keys a file sets. 0 or
 * SL_ENOMEM (like every other allocation of a load: the load then fails).
 */
static int origin_note(sl_config_t *cfg, const char *label, const char *key, const char *where,
                       int line)
{
    char full[SL_CONFIG_APP_NAME_MAX + 96];
    snprintf(full, sizeof full, "%s.%s", label, key);
    if (cfg->n_origins == cfg->cap_origins) {
        size_t cap = cfg->cap_origins ? cfg->cap_origins * 2 : 32;
        sl_config_origin_t *grown = sl_realloc(cfg->origins, cap * sizeof *grown);
        if (!grown)
            return SL_ENOMEM;
        cfg->origins = grown;
        cfg->cap_origins = cap;
    }
    sl_config_origin_t *o = &cfg->origins[cfg->n_origins];
    o->key = sl_strdup(full);
    o->where = sl_strdup(where ? where : "");
    o->line = line;
    if (!o->key || !o->where) {
        sl_free(o->key);
        sl_free(o->where);
        return SL_ENOMEM;
    }
    cfg->n_origins++;
    return 0;
}

/* Newest record first; read only when something is wrong. */
const char *sl_config_origin(const sl_config_t *cfg, const char *key, int *line)
{
    for (size_t i = cfg && key ? cfg->n_origins : 0; i-- > 0;) {
        if (strcmp(cfg->origins[i].key, key) == 0) {
            if (line)
                *line = cfg->origins[i].line;
            return cfg->origins[i].where;
        }
    }
    if (line)
        *line = 0;
    return NULL;
}

/* Formats the message and hands it to err at key's origin (see config.h). */
void sl_config_report(const sl_config_t *cfg, const char *key, sl_config_err_cb err, void *ud,
                      const char *fmt, ...)
{
    char msg[600], body[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    int line = 0;
    const char *where = sl_config_origin(cfg, key, &line);
    if (!err)
        return;
    if (where) {
        snprintf(msg, sizeof msg, "%s: %s", key, body);
        err(ud, where, line, msg);
    } else {
        err(ud, key, 0, body);
    }
}

/* Linear search: a handful of apps, looked up once per connection. */
const sl_app_config_t *sl_config_app(const sl_config_t *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    long i = app_find(cfg, name, strlen(name), false);
    return i < 0 ? NULL : &cfg->apps[i];
}

/*
 * Reports every slot of t whose value differs between bases a and b as
 * "<label>.<key>". Returns the number reported.
 */
static size_t table_diff(const slot_t *t, size_t n, const void *a, const void *b,
                         const char *label, sl_config_diff_cb each, void *ud)
{
    char key[SL_CONFIG_APP_NAME_MAX + 160];
    size_t changed = 0;
    for (size_t i = 0; i < n; i++) {
        if (table_equal(&t[i], 1, a, b))
            continue;
        snprintf(key, sizeof key, "%s.%s", label, t[i].key);
        changed++;
        if (each)
            each(ud, SL_CONFIG_DIFF_CHANGED, key);
    }
    return changed;
}

/*
 * Section keys in section order, then each app of a (removed, or its
 * changed keys in section order), then the apps only in b (see config.h).
 */
size_t sl_config_diff(const sl_config_t *a, const sl_config_t *b, sl_config_diff_cb each, void *ud)
{
    char label[SL_CONFIG_APP_NAME_MAX + 8];
    size_t changed = 0;
    if (a->n_sections != b->n_sections ||
        memcmp(a->sections, b->sections, a->n_sections * sizeof *a->sections) != 0) {
        if (each)
            each(ud, SL_CONFIG_DIFF_CHANGED, "*"); /* nothing to compare key by key */
        return 1;
    }
    if (!plugins_equal(a, b)) { /* a list, compared whole */
        changed++;
        if (each)
            each(ud, SL_CONFIG_DIFF_CHANGED, "plugins");
    }
    for (size_t si = 0; si < a->n_sections; si++)
        changed += table_diff(a->sections[si]->slots, a->sections[si]->n_slots, cfg_base(a, si),
                              cfg_base(b, si), a->sections[si]->name, each, ud);
    for (size_t i = 0; i < a->n_apps; i++) {
        const sl_app_config_t *other = sl_config_app(b, a->apps[i].name);
        snprintf(label, sizeof label, "apps.%s", a->apps[i].name);
        if (!other) {
            changed++;
            if (each)
                each(ud, SL_CONFIG_DIFF_APP_REMOVED, label);
            continue;
        }
        for (size_t si = 0; si < a->n_sections; si++)
            changed += table_diff(a->sections[si]->app_slots, a->sections[si]->n_app_slots,
                                  app_base(&a->apps[i], si), app_base(other, si), label, each,
                                  ud);
    }
    for (size_t i = 0; i < b->n_apps; i++) {
        if (sl_config_app(a, b->apps[i].name))
            continue;
        snprintf(label, sizeof label, "apps.%s", b->apps[i].name);
        changed++;
        if (each)
            each(ud, SL_CONFIG_DIFF_APP_ADDED, label);
    }
    return changed;
}

/* Every setting equal: no difference at all. */
int sl_config_equal(const sl_config_t *a, const sl_config_t *b)
{
    return sl_config_diff(a, b, NULL, NULL) == 0;
}

/*
 * Finds the slot of key ("section.key", or "apps.<name>.<key>" whose app
 * need not exist) among cfg's sections; *si gets its section's index.
 * NULL when there is none.
 */
static const slot_t *find_slot(const sl_config_t *cfg, const char *key, size_t *si_out)
{
    const char *dot = key ? strchr(key, '.') : NULL;
    if (!cfg || !dot)
        return NULL;
    if ((size_t)(dot - key) == 4 && strncmp(key, "apps", 4) == 0) {
        const char *k = strchr(dot + 1, '.');
        if (!k)
            return NULL;
        for (size_t si = 0; si < cfg->n_sections; si++) {
            for (size_t i = 0; i < cfg->sections[si]->n_app_slots; i++) {
                if (strcmp(cfg->sections[si]->app_slots[i].key, k + 1) == 0) {
                    *si_out = si;
                    return &cfg->sections[si]->app_slots[i];
                }
            }
        }
        return NULL;
    }
    for (size_t si = 0; si < cfg->n_sections; si++) {
        const sl_config_section_t *sec = cfg->sections[si];
        if (!is_yaml_section(sec) || strlen(sec->name) != (size_t)(dot - key) ||
            strncmp(sec->name, key, (size_t)(dot - key)) != 0)
            continue;
        for (size_t i = 0; i < sec->n_slots; i++) {
            if (strcmp(sec->slots[i].key, dot + 1) == 0) {
                *si_out = si;
                return &sec->slots[i];
            }
        }
    }
    return NULL;
}

/* The flag of key's slot; see config.h. */
int sl_config_slot_needs_restart(const sl_config_t *cfg, const char *key)
{
    size_t si;
    const slot_t *s = find_slot(cfg, key, &si);
    return s ? (s->flags & SL_CONFIG_RESTART) != 0 : -1;
}

/* A section setting's value by key, for a reader that does not own it; see config.h. */
int64_t sl_config_int(const sl_config_t *cfg, const char *key)
{
    size_t si;
    const slot_t *s = strncmp(key, "apps.", 5) == 0 ? NULL : find_slot(cfg, key, &si);
    if (!s || s->type == T_STRING) {
        SL_LOGE(NULL, "config: no integer setting %s", key);
        return 0;
    }
    const void *f = cfield(cfg_base(cfg, si), s);
    return s->type == T_BOOL ? *(const int *)f : *(const int64_t *)f;
}

/* The same for a string setting. */
const char *sl_config_str(const sl_config_t *cfg, const char *key)
{
    size_t si;
    const slot_t *s = strncmp(key, "apps.", 5) == 0 ? NULL : find_slot(cfg, key, &si);
    if (!s || s->type != T_STRING) {
        SL_LOGE(NULL, "config: no string setting %s", key);
        return "";
    }
    const char *v = *(char *const *)cfield(cfg_base(cfg, si), s);
    return v ? v : "";
}

/* Copies one section setting from src to dst (see config.h). */
int sl_config_copy_key(sl_config_t *dst, const sl_config_t *src, const char *key)
{
    size_t si, di;
    if (!key || strncmp(key, "apps.", 5) == 0)
        return SL_ENOTFOUND;
    const slot_t *s = find_slot(src, key, &si);
    if (!s || find_slot(dst, key, &di) != s)
        return SL_ENOTFOUND;
    void *to = field(cfg_base(dst, di), s);
    const void *from = cfield(cfg_base(src, si), s);
    switch (s->type) {
    case T_STRING: {
        const char *v = *(char *const *)from;
        char *copy = v ? sl_strdup(v) : NULL;
        if (v && !copy)
            return SL_ENOMEM;
        sl_free(*(char **)to);
        *(char **)to = copy;
        break;
    }
    case T_BOOL:
        *(int *)to = *(const int *)from;
        break;
    default:
        *(int64_t *)to = *(const int64_t *)from;
        break;
    }
    return 0;
}

/* ---- YAML loader ------------------------------------------------------ */

typedef struct {
    yaml_parser_t parser;
    yaml_event_t ev;   /* the current event, valid while have_ev */
    int have_ev;
    int stop;          /* syntax error or ENOMEM: no further events */
    sink_t sk;
    sl_config_t *cfg;
    const char *input; /* the whole input, to turn a reader error offset into a line */
    size_t input_len;
} loader_t;

/* A mapping key, copied out of its event (the event is gone by the value). */
typedef struct {
    char text[SL_CONFIG_APP_NAME_MAX + 2]; /* raw bytes, NUL-terminated if short enough */
    size_t len;                            /* real length; > sizeof text - 1 means truncated */
    char shown[72];                        /* printable form for messages */
    int line;
} ykey_t;

static int ev_line(const loader_t *ld)
{
    size_t l = ld->ev.start_mark.line;
    return l >= INT_MAX ? INT_MAX : (int)l + 1;
}

static int line_of_offset(const loader_t *ld, size_t offset)
{
    int line = 1;
    for (size_t i = 0; i < offset && i < ld->input_len; i++)
        if (ld->input[i] == '\n' && line < INT_MAX)
            line++;
    return line;
}

/* Reports why libyaml stopped; nothing can be parsed after this. */
static void syntax_error(loader_t *ld)
{
    yaml_parser_t *p = &ld->parser;
    const char *problem = p->problem ? p->problem : "malformed input";
    size_t pl = p->problem_mark.line, cl = p->context_mark.line;
    int line = pl >= INT_MAX ? INT_MAX : (int)pl + 1;

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        ld->sk.nomem = 1;
        report(&ld->sk, 0, "out of memory while parsing YAML");
        break;
    case YAML_READER_ERROR:
        /* The reader knows only a byte offset; count lines ourselves. */
        report(&ld->sk, line_of_offset(ld, p->problem_offset),
               "unreadable input: %s (byte %zu)", problem, p->problem_offset);
        break;
    default:
        if (p->context && cl != pl)
            report(&ld->sk, line, "YAML syntax error: %s (%s that starts at line %zu)", problem,
                   p->context, cl + 1);
        else if (p->context)
            report(&ld->sk, line, "YAML syntax error: %s (%s)", problem, p->context);
        else
            report(&ld->sk, line, "YAML syntax error: %s", problem);
        break;
    }
}

/* Replaces the current event by the next one. 0, or -1 when parsing is over. */
static int next_event(loader_t *ld)
{
    if (ld->have_ev) {
        yaml_event_delete(&ld->ev);
        ld->have_ev = 0;
    }
    if (ld->stop)
        return -1;
    if (!yaml_parser_parse(&ld->parser, &ld->ev)) {
        syntax_error(ld);
        ld->stop = 1;
        return -1;
    }
    ld->have_ev = 1;
    return 0;
}

/*
 * Consumes the node whose first event is current (a scalar or alias is one
 * event; a collection runs to its matching end). Nesting past
 * SL_CONFIG_MAX_DEPTH is reported and stops the load: no sluice setting
 * nests, so such input is hostile or broken.
 */
static int skip_node(loader_t *ld)
{
    int depth = 0;
    do {
        switch (ld->ev.type) {
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (++depth > SL_CONFIG_MAX_DEPTH) {
                report(&ld->sk, ev_line(ld), "YAML nested deeper than %d levels",
                       SL_CONFIG_MAX_DEPTH);
                ld->stop = 1;
                return -1;
            }
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
        if (depth == 0)
            return 0;
    } while (next_event(ld) == 0);
    return -1;
}

/* A plain scalar that YAML would read as null: `key:`, `key: ~`, `key: null`. */
static bool ev_is_null(const loader_t *ld)
{
    if (ld->ev.type != YAML_SCALAR_EVENT || ld->ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)ld->ev.data.scalar.value;
    size_t len = ld->ev.data.scalar.length;
    return len == 0 || eq(s, len, "~") || eq(s, len, "null") || eq(s, len, "Null") ||
           eq(s, len, "NULL");
}

static const char *node_kind(const loader_t *ld)
{
    switch (ld->ev.type) {
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_SEQUENCE_START_EVENT: return "a list";
    case YAML_ALIAS_EVENT: return "an alias (anchors and aliases are not supported)";
    default: return "a scalar";
    }
}

/*
 * Reads the current event as a mapping key into k and advances to the value.
 * A key that is not a scalar is reported and skipped with its value.
 * Returns 0 when k is set and the value event is current; 1 when the entry
 * was skipped; -1 when parsing is over.
 */
static int read_key(loader_t *ld, ykey_t *k)
{
    if (ld->ev.type != YAML_SCALAR_EVENT) {
        report(&ld->sk, ev_line(ld), "a key must be a plain name, not %s", node_kind(ld));
        if (skip_node(ld) || next_event(ld) || skip_node(ld))
            return -1;
        return 1;
    }
    const char *s = (const char *)ld->ev.data.scalar.value;
    k->len = ld->ev.data.scalar.length;
    size_t n = k->len < sizeof k->text - 1 ? k->len : sizeof k->text - 1;
    memcpy(k->text, s, n);
    k->text[n] = '\0';
    show(s, k->len, k->shown, sizeof k->shown);
    k->line = ev_line(ld);
    return next_event(ld) ? -1 : 0;
}

/* True when key k is exactly word (a truncated or NUL-holding key never is). */
static bool key_is(const ykey_t *k, const char *word)
{
    return k->len < sizeof k->text && eq(k->text, k->len, word);
}

/* Applies the current (value) event to slot s of base; label is "rtmp" or "apps.live". */
static void apply_value(loader_t *ld, const slot_t *s, void *base, const char *label)
{
    char why[256];
    int line = ev_line(ld);
    if (ld->ev.type != YAML_SCALAR_EVENT) {
        report(&ld->sk, line, "%s.%s takes a single value, not %s", label, s->key, node_kind(ld));
        skip_node(ld);
        return;
    }
    const char *text = (const char *)ld->ev.data.scalar.value;
    size_t len = ld->ev.data.scalar.length;
    /* `node_name:` means an empty string; `port:` or `x: ~` is a forgotten value. */
    if (ev_is_null(ld) && !(s->type == T_STRING && len == 0)) {
        report(&ld->sk, line, "%s.%s has no value%s", label, s->key,
               s->type == T_STRING ? " (write \"\" for an empty string)" : "");
        return;
    }
    int rc = slot_set(s, base, text, len, why, sizeof why);
    if (rc == SL_ENOMEM) {
        ld->sk.nomem = 1;
        ld->stop = 1;
        report(&ld->sk, line, "out of memory");
    } else if (rc) {
        report(&ld->sk, line, "%s.%s: %s", label, s->key, why);
    } else if (origin_note(ld->cfg, label, s->key, ld->sk.where, line)) {
        ld->sk.nomem = 1;
        ld->stop = 1;
        report(&ld->sk, line, "out of memory");
    }
}

/* Slot tables that one YAML mapping fills: a section's, or every per-app one. */
typedef struct {
    const slot_t *t[SL_CONFIG_MAX_SECTIONS + 4];
    size_t n[SL_CONFIG_MAX_SECTIONS + 4];
    void *base[SL_CONFIG_MAX_SECTIONS + 4];
    size_t count;
} tables_t;

/*
 * Parses the current node as a mapping of key -> scalar for the slots of
 * tables tb, storing into their bases. Unknown and duplicate keys are
 * reported; a duplicate is ignored so that the first value wins (and the
 * report points at both lines).
 */
static void parse_mapping(loader_t *ld, const tables_t *tb, const char *label)
{
    int first_line[MAX_TABLE] = {0}; /* by slot, counted across the tables */
    if (ev_is_null(ld)) /* `rtmp:` with every key commented out */
        return;
    if (ld->ev.type != YAML_MAPPING_START_EVENT) {
        report(&ld->sk, ev_line(ld), "%s must be a mapping of key: value, not %s", label,
               node_kind(ld));
        skip_node(ld);
        return;
    }
    while (next_event(ld) == 0 && ld->ev.type != YAML_MAPPING_END_EVENT) {
        ykey_t k;
        int rc = read_key(ld, &k);
        if (rc < 0)
            return;
        if (rc > 0)
            continue;
        size_t ti = 0, i = 0, flat = 0;
        bool found = false;
        for (ti = 0; ti < tb->count && !found; ti++) {
            for (i = 0; i < tb->n[ti] && !found; i++, flat++)
                found = key_is(&k, tb->t[ti][i].key);
        }
        if (!found) {
            hint_t h = {.dist = SIZE_MAX};
            for (size_t a = 0; a < tb->count; a++)
                for (size_t j = 0; j < tb->n[a]; j++)
                    hint_try(&h, k.text, k.len, tb->t[a][j].key);
            report(&ld->sk, k.line, "unknown key '%s.%s'%s%s%s", label, k.shown,
                   h.best[0] ? " (did you mean '" : "", h.best, h.best[0] ? "'?)" : "");
            skip_node(ld);
            continue;
        }
        ti--, i--, flat--; /* the loops stepped past the match */
        const slot_t *slot = &tb->t[ti][i];
        if (first_line[flat]) {
            report(&ld->sk, k.line, "duplicate key '%s.%s' (first set at line %d); ignored",
                   label, slot->key, first_line[flat]);
            skip_node(ld);
            continue;
        }
        first_line[flat] = k.line;
        apply_value(ld, slot, tb->base[ti], label);
    }
}

/*
 * Parses `apps:`: a mapping of app name -> mapping of per-app settings.
 * Named apps are created with defaults when absent; `live` is already there
 * from sl_config_defaults. Names that differ only in case from an existing
 * app are refused, because SLUICE_APP_<NAME>_* could not tell them apart.
 */
static void parse_apps(loader_t *ld)
{
    int first_line[SL_CONFIG_MAX_APPS] = {0}; /* by app index, within this file */
    if (ev_is_null(ld))
        return;
    if (ld->ev.type != YAML_MAPPING_START_EVENT) {
        report(&ld->sk, ev_line(ld), "apps must be a mapping of app name: settings, not %s",
               node_kind(ld));
        skip_node(ld);
        return;
    }
    while (next_event(ld) == 0 && ld->ev.type != YAML_MAPPING_END_EVENT) {
        ykey_t k;
        char label[SL_CONFIG_APP_NAME_MAX + 8];
        size_t idx;
        int rc = read_key(ld, &k);
        if (rc < 0)
            return;
        if (rc > 0)
            continue;
        if (k.len >= sizeof k.text || !app_name_valid(k.text, k.len)) {
            report(&ld->sk, k.line,
                   "invalid app name '%s': use 1 to %d letters, digits, '_' or '-'", k.shown,
                   SL_CONFIG_APP_NAME_MAX);
            skip_node(ld);
            continue;
        }
        long found = app_find(ld->cfg, k.text, k.len, false);
        if (found < 0 && (found = app_find(ld->cfg, k.text, k.len, true)) >= 0) {
            report(&ld->sk, k.line,
                   "app '%s' differs from app '%s' only in case; app names must differ "
                   "ignoring case",
                   k.shown, ld->cfg->apps[found].name);
            skip_node(ld);
            continue;
        }
        if (found >= 0 && first_line[found]) {
            report(&ld->sk, k.line, "duplicate app '%s' (first at line %d); ignored", k.shown,
                   first_line[found]);
            skip_node(ld);
            continue;
        }
        if (found < 0) {
            rc = app_add(ld->cfg, k.text, k.len, false, &idx);
            if (rc) {
                app_add_failed(&ld->sk, k.line, rc);
                if (rc == SL_ENOMEM) {
                    ld->stop = 1;
                    return;
                }
                skip_node(ld);
                continue;
            }
            found = (long)idx;
        }
        first_line[found] = k.line;
        snprintf(label, sizeof label, "apps.%s", ld->cfg->apps[found].name);
        /* No app is added while its body is parsed, so the pointers stay valid. */
        tables_t tb = {.count = 0};
        const sl_app_config_t *app = &ld->cfg->apps[found];
        for (size_t si = 0; si < ld->cfg->n_sections; si++) {
            if (!ld->cfg->sections[si]->n_app_slots)
                continue;
            tb.t[tb.count] = ld->cfg->sections[si]->app_slots;
            tb.n[tb.count] = ld->cfg->sections[si]->n_app_slots;
            tb.base[tb.count++] = app_base(app, si);
        }
        parse_mapping(ld, &tb, label);
    }
}

/* ---- plugins ---------------------------------------------------------- */
/*
 * `plugins:` is a list of entries {name, path, apps, settings}, not a table
 * of slots: settings are free key/value strings only the plugin knows. The
 * block below is all of it (parse, free, compare, document); the rest of
 * this file only calls in.
 */

/* Frees every plugin entry and the array. */
/* Frees what one entry owns (not the entry itself). */
static void plugin_entry_free(sl_plugin_config_t *p)
{
    sl_free(p->name);
    sl_free(p->path);
    for (size_t j = 0; j < p->n_apps; j++)
        sl_free(p->apps[j]);
    sl_free(p->apps);
    for (size_t j = 0; j < 2 * p->n_settings; j++)
        sl_free(p->settings[j]);
    sl_free(p->settings);
    memset(p, 0, sizeof *p);
}

static void plugins_free(sl_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_plugins; i++)
        plugin_entry_free(&cfg->plugins[i]);
    sl_free(cfg->plugins);
    cfg->plugins = NULL;
    cfg->n_plugins = 0;
}

static bool str_eq_null(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* 1 when both lists hold the same entries in the same order (load order matters). */
static int plugins_equal(const sl_config_t *a, const sl_config_t *b)
{
    if (a->n_plugins != b->n_plugins)
        return 0;
    for (size_t i = 0; i < a->n_plugins; i++) {
        const sl_plugin_config_t *x = &a->plugins[i], *y = &b->plugins[i];
        if (!str_eq_null(x->name, y->name) || !str_eq_null(x->path, y->path) ||
            x->n_apps != y->n_apps || x->n_settings != y->n_settings)
            return 0;
        for (size_t j = 0; j < x->n_apps; j++)
            if (strcmp(x->apps[j], y->apps[j]))
                return 0;
        for (size_t j = 0; j < 2 * x->n_settings; j++)
            if (strcmp(x->settings[j], y->settings[j]))
                return 0;
    }
    return 1;
}

/* The current event as a new string (a scalar of any style), or NULL (reported). */
static char *plugin_scalar(loader_t *ld, const char *what)
{
    if (ld->ev.type != YAML_SCALAR_EVENT) {
        report(&ld->sk, ev_line(ld), "%s must be a scalar, not %s", what, node_kind(ld));
        skip_node(ld);
        return NULL;
    }
    char *s = sl_strndup((const char *)ld->ev.data.scalar.value, ld->ev.data.scalar.length);
    if (!s)
        ld->sk.nomem = 1;
    return s;
}

/* Appends s (taken) to *arr of *n strings. 0 or SL_ENOMEM (s freed). */
static int plugin_push(loader_t *ld, char ***arr, size_t *n, char *s)
{
    char **grown = sl_realloc(*arr, (*n + 1) * sizeof *grown);
    if (!grown) {
        sl_free(s);
        ld->sk.nomem = 1;
        return SL_ENOMEM;
    }
    grown[(*n)++] = s;
    *arr = grown;
    return 0;
}

/* Parses one entry's mapping into p (already zeroed and counted). */
static void parse_plugin_entry(loader_t *ld, sl_plugin_config_t *p)
{
    while (next_event(ld) == 0 && ld->ev.type != YAML_MAPPING_END_EVENT) {
        ykey_t k;
        int rc = read_key(ld, &k);
        if (rc < 0)
            return;
        if (rc > 0)
            continue;
        if (key_is(&k, "name") || key_is(&k, "path")) {
            char **dst = key_is(&k, "name") ? &p->name : &p->path;
            char *v = plugin_scalar(ld, key_is(&k, "name") ? "plugins[].name" : "plugins[].path");
            if (v) {
                sl_free(*dst);
                *dst = v;
            }
        } else if (key_is(&k, "apps")) {
            if (ld->ev.type == YAML_SCALAR_EVENT) { /* one app */
                char *v = plugin_scalar(ld, "plugins[].apps");
                if (v && v[0])
                    plugin_push(ld, &p->apps, &p->n_apps, v);
                else
                    sl_free(v);
                continue;
            }
            if (ld->ev.type != YAML_SEQUENCE_START_EVENT) {
                report(&ld->sk, k.line, "plugins[].apps must be a list of app names, not %s",
                       node_kind(ld));
                skip_node(ld);
                continue;
            }
            while (next_event(ld) == 0 && ld->ev.type != YAML_SEQUENCE_END_EVENT) {
                char *v = plugin_scalar(ld, "plugins[].apps[]");
                if (v)
                    plugin_push(ld, &p->apps, &p->n_apps, v);
            }
        } else if (key_is(&k, "settings")) {
            if (ev_is_null(ld))
                continue;
            if (ld->ev.type != YAML_MAPPING_START_EVENT) {
                report(&ld->sk, k.line, "plugins[].settings must be a mapping of key: value, not %s",
                       node_kind(ld));
                skip_node(ld);
                continue;
            }
            while (next_event(ld) == 0 && ld->ev.type != YAML_MAPPING_END_EVENT) {
                ykey_t sk;
                rc = read_key(ld, &sk);
                if (rc < 0)
                    return;
                if (rc > 0)
                    continue;
                char *v = plugin_scalar(ld, "a plugin setting");
                if (!v)
                    continue;
                if (p->n_settings >= SL_CONFIG_MAX_PLUGIN_SETTINGS || sk.len >= sizeof sk.text) {
                    report(&ld->sk, sk.line, "plugin setting '%s' ignored (too many, or name too long)",
                           sk.shown);
                    sl_free(v);
                    continue;
                }
                char *key = sl_strdup(sk.text);
                size_t n2 = 2 * p->n_settings;
                if (!key || plugin_push(ld, &p->settings, &n2, key) ||
                    plugin_push(ld, &p->settings, &n2, v)) {
                    if (!key)
                        sl_free(v), ld->sk.nomem = 1;
                    return;
                }
                p->n_settings++;
            }
        } else {
            report(&ld->sk, k.line,
                   "unknown key '%s' in a plugin entry (name, path, apps, settings)", k.shown);
            skip_node(ld);
        }
    }
}

/*
 * Parses `plugins:`: a list of mappings. Each entry needs a valid, unique
 * name and a path; a later file's list replaces an earlier one's whole.
 */
static void parse_plugins(loader_t *ld)
{
    plugins_free(ld->cfg);
    if (ev_is_null(ld))
        return;
    if (ld->ev.type != YAML_SEQUENCE_START_EVENT) {
        report(&ld->sk, ev_line(ld),
               "plugins must be a list of {name, path, apps, settings}, not %s", node_kind(ld));
        skip_node(ld);
        return;
    }
    while (next_event(ld) == 0 && ld->ev.type != YAML_SEQUENCE_END_EVENT) {
        int line = ev_line(ld);
        if (ld->ev.type != YAML_MAPPING_START_EVENT) {
            report(&ld->sk, line, "a plugin entry must be a mapping {name, path, ...}, not %s",
                   node_kind(ld));
            skip_node(ld);
            continue;
        }
        if (ld->cfg->n_plugins >= SL_CONFIG_MAX_PLUGINS) {
            report(&ld->sk, line, "too many plugins (at most %d)", SL_CONFIG_MAX_PLUGINS);
            skip_node(ld);
            continue;
        }
        sl_plugin_config_t *grown =
            sl_realloc(ld->cfg->plugins, (ld->cfg->n_plugins + 1) * sizeof *grown);
        if (!grown) {
            ld->sk.nomem = 1;
            ld->stop = 1;
            return;
        }
        ld->cfg->plugins = grown;
        sl_plugin_config_t *p = &grown[ld->cfg->n_plugins++];
        memset(p, 0, sizeof *p);
        p->line = line;
        parse_plugin_entry(ld, p);
        if (ld->stop || ld->sk.nomem)
            return;
        /* An entry without a valid name or a path is reported and dropped, so
         * that every entry kept has both (the duplicate check, the comparison
         * and the loader rely on it). */
        if (!p->name || !app_name_valid(p->name, strlen(p->name))) {
            report(&ld->sk, line, "a plugin needs a name of 1 to %d letters, digits, '_' or '-'",
                   SL_CONFIG_APP_NAME_MAX);
            plugin_entry_free(p);
            ld->cfg->n_plugins--;
        } else if (!p->path || !p->path[0]) {
            report(&ld->sk, line, "plugin '%s' needs a path (its .so file)", p->name);
            plugin_entry_free(p);
            ld->cfg->n_plugins--;
        } else {
            for (size_t i = 0; i + 1 < ld->cfg->n_plugins; i++)
                if (strcmp(ld->cfg->plugins[i].name, p->name) == 0)
                    report(&ld->sk, line, "duplicate plugin name '%s' (first at line %d)",
                           p->name, ld->cfg->plugins[i].line);
            if (origin_note(ld->cfg, "plugins", p->name, ld->sk.where, line))
                ld->sk.nomem = 1;
        }
    }
}

static const char plugins_doc[] =
    "Plugins: shared objects loaded at start (docs/plugins.md). Each entry is\n"
    "{name, path, apps, settings}: a unique name, the .so file, the apps it serves\n"
    "(a list; none = every app) and free key: value settings only the plugin reads.\n"
    "A plugin built for another ABI, or one that fails to start, stops sluice at start.\n";

/* The commented `plugins:` block of the shipped sluice.yml (parses back to no plugins). */
static void plugins_write_yaml(FILE *out)
{
    fputs("\n", out);
    for (const char *s = plugins_doc; *s;) {
        const char *nl = strchr(s, '\n');
        fprintf(out, "# %.*s\n", (int)(nl - s), s);
        s = nl + 1;
    }
    fputs("# Example:\n"
          "#   plugins:\n"
          "#     - name: hello\n"
          "#       path: /usr/local/lib/sluice/plugins/hello.so\n"
          "#       apps: [live]\n"
          "#       settings: {greeting: hi}\n"
          "plugins: []\n",
          out);
}

/* The `plugins` section of docs/config.md. */
static void plugins_write_markdown(FILE *out)
{
    fprintf(out, "\n## plugins\n\n%s\n", plugins_doc);
    fputs("| key | meaning |\n|---|---|\n"
          "| `name` | unique name, 1 to 64 of `A-Z a-z 0-9 _ -`; the plugin logs under it |\n"
          "| `path` | the shared object to load (dlopen) |\n"
          "| `apps` | list of apps the plugin serves (events, admission, routes); empty = every app |\n"
          "| `settings` | mapping of key: value strings handed to the plugin (`api->setting`) |\n"
          "\n"
          "```yaml\n"
          "plugins:\n"
          "  - name: hello\n"
          "    path: /usr/local/lib/sluice/plugins/hello.so\n"
          "    apps: [live]\n"
          "    settings: {greeting: hi}\n"
          "```\n"
          "\n"
          "`plugins` cannot be set by environment variables.\n",
          out);
}

/* Parses the document's root node: a mapping of section name -> section. */
static void parse_root(loader_t *ld)
{
    const sl_config_t *cfg = ld->cfg;
    const size_t apps_section = cfg->n_sections; /* `apps` after every section */
    int first_line[SL_CONFIG_MAX_SECTIONS + 5] = {0};
    if (ev_is_null(ld)) /* a document holding only `---` */
        return;
    if (ld->ev.type != YAML_MAPPING_START_EVENT) {
        char names[1024];
        section_names(cfg->sections, cfg->n_sections, names, sizeof names, "");
        report(&ld->sk, ev_line(ld), "the top level must be a mapping of sections (%s), not %s",
               names, node_kind(ld));
        skip_node(ld);
        return;
    }
    while (next_event(ld) == 0 && ld->ev.type != YAML_MAPPING_END_EVENT) {
        ykey_t k;
        int rc = read_key(ld, &k);
        if (rc < 0)
            return;
        if (rc > 0)
            continue;
        if (key_is(&k, "plugins")) { /* a list, not a section of slots (see parse_plugins) */
            parse_plugins(ld);
            continue;
        }
        int si = key_is(&k, "apps") ? (int)apps_section : -1;
        for (size_t i = 0; si < 0 && i < cfg->n_sections; i++)
            if (is_yaml_section(cfg->sections[i]) && key_is(&k, cfg->sections[i]->name))
                si = (int)i;
        if (si < 0) {
            hint_t h = {.dist = SIZE_MAX};
            for (size_t i = 0; i < cfg->n_sections; i++)
                if (is_yaml_section(cfg->sections[i]))
                    hint_try(&h, k.text, k.len, cfg->sections[i]->name);
            hint_try(&h, k.text, k.len, "apps");
            hint_try(&h, k.text, k.len, "plugins");
            report(&ld->sk, k.line, "unknown section '%s'%s%s%s", k.shown,
                   h.best[0] ? " (did you mean '" : "", h.best, h.best[0] ? "'?)" : "");
            skip_node(ld);
            continue;
        }
        if (first_line[si]) {
            report(&ld->sk, k.line, "duplicate section '%s' (first at line %d); ignored",
                   k.shown, first_line[si]);
            skip_node(ld);
            continue;
        }
        first_line[si] = k.line;
        if (si == (int)apps_section) {
            parse_apps(ld);
        } else {
            tables_t tb = {.t = {cfg->sections[si]->slots},
                           .n = {cfg->sections[si]->n_slots},
                           .base = {cfg_base(cfg, (size_t)si)},
                           .count = 1};
            parse_mapping(ld, &tb, cfg->sections[si]->name);
        }
    }
}

/* Walks the event stream: at most one document, whose root is parse_root's. */
static void parse_stream(loader_t *ld)
{
    if (next_event(ld) || ld->ev.type != YAML_STREAM_START_EVENT)
        return;
    if (next_event(ld) || ld->ev.type != YAML_DOCUMENT_START_EVENT)
        return; /* STREAM_END: an empty file or only comments changes nothing */
    if (next_event(ld))
        return;
    parse_root(ld);
    if (next_event(ld) || ld->ev.type != YAML_DOCUMENT_END_EVENT)
        return;
    if (next_event(ld) || ld->ev.type != YAML_DOCUMENT_START_EVENT)
        return;
    report(&ld->sk, ev_line(ld), "only one YAML document is allowed; the rest is ignored");
    /* Still read to the end, so that syntax errors further on are reported too. */
    while (next_event(ld) == 0 && ld->ev.type != YAML_STREAM_END_EVENT)
        ;
}

/*
 * Parses yaml[0..len) over cfg. The input is borrowed for the call only.
 * See sl_config_load_file in config.h for the contract.
 */
int sl_config_load_string(sl_config_t *cfg, const char *yaml, size_t len, const char *where,
                          sl_config_err_cb err, void *ud)
{
    loader_t ld;
    memset(&ld, 0, sizeof ld);
    ld.sk.err = err;
    ld.sk.ud = ud;
    ld.sk.where = where ? where : "<string>";
    ld.cfg = cfg;
    ld.input = yaml ? yaml : "";
    ld.input_len = yaml ? len : 0;
    if (ld.input_len > SL_CONFIG_MAX_INPUT_BYTES) {
        report(&ld.sk, 0, "larger than %d bytes", SL_CONFIG_MAX_INPUT_BYTES);
        return SL_EINVAL;
    }
    if (!yaml_parser_initialize(&ld.parser))
        return SL_ENOMEM;
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)ld.input, ld.input_len);
    parse_stream(&ld);
    if (ld.have_ev)
        yaml_event_delete(&ld.ev);
    yaml_parser_delete(&ld.parser);
    if (ld.sk.nomem)
        return SL_ENOMEM;
    return ld.sk.n_problems ? SL_EINVAL : 0;
}

/*
 * Reads the whole file (capped at SL_CONFIG_MAX_INPUT_BYTES, so a wrong path
 * such as /dev/zero cannot eat memory) and parses it with
 * sl_config_load_string. Works on pipes too: no fstat, no seek.
 */
int sl_config_load_file(sl_config_t *cfg, const char *path, sl_config_err_cb err, void *ud)
{
    sink_t sk = {.err = err, .ud = ud, .where = path};
    size_t len = 0, cap = 16 * 1024;
    char *data = NULL;
    int rc;
    FILE *f = fopen(path, "rb");
    if (!f) {
        rc = errno ? -errno : SL_EIO;
        report(&sk, 0, "cannot open: %s", strerror(errno));
        return rc;
    }
    rc = SL_ENOMEM;
    data = sl_malloc(cap);
    if (!data)
        goto fail;
    for (;;) {
        if (len == cap) {
            if (cap > SL_CONFIG_MAX_INPUT_BYTES) {
                report(&sk, 0, "larger than %d bytes", SL_CONFIG_MAX_INPUT_BYTES);
                rc = SL_EINVAL;
                goto fail;
            }
            char *bigger = sl_realloc(data, cap * 2);
            if (!bigger)
                goto fail;
            data = bigger;
            cap *= 2;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        report(&sk, 0, "read error");
        rc = SL_EIO;
        goto fail;
    }
    rc = sl_config_load_string(cfg, data, len, path, err, ud);
fail:
    sl_free(data);
    fclose(f);
    return rc;
}

/* ---- environment ------------------------------------------------------ */

/* Variables the launcher and the e2e tests use; never settings. */
static const char *const g_env_reserved[] = {"BIN", "CONFIG", NULL};

/* True when name[0..len) is SECTION_KEY for slot s of section, ignoring case. */
static bool env_is_slot(const char *name, size_t len, const char *section, const slot_t *s)
{
    size_t ls = strlen(section), lk = strlen(s->key);
    return len == ls + 1 + lk && strncasecmp(name, section, ls) == 0 && name[ls] == '_' &&
           strncasecmp(name + ls + 1, s->key, lk) == 0;
}

/* Upper-cases "SLUICE_" + parts joined by '_' into out. */
static const char *env_name(char *out, size_t cap, const char *a, const char *b)
{
    size_t n = (size_t)snprintf(out, cap, "SLUICE_%s%s%s", a, b ? "_" : "", b ? b : "");
    for (size_t i = 0; i < n && i < cap; i++)
        out[i] = (char)toupper((unsigned char)out[i]);
    return out;
}

/* Parses value into slot s of base, reporting against the variable in sk->where. */
static void env_set(sl_config_t *cfg, sink_t *sk, const slot_t *s, void *base, const char *label,
                    const char *value)
{
    char why[256];
    int rc = slot_set(s, base, value, strlen(value), why, sizeof why);
    if (rc == SL_ENOMEM) {
        sk->nomem = 1;
        report(sk, 0, "out of memory");
    } else if (rc) {
        report(sk, 0, "%s.%s: %s", label, s->key, why);
    } else if (origin_note(cfg, label, s->key, sk->where, 0)) {
        sk->nomem = 1;
        report(sk, 0, "out of memory");
    }
}

/* SLUICE_APPS=a,b: adds each app not already there (under any case). */
static void env_apps(sl_config_t *cfg, sink_t *sk, const char *value)
{
    const char *p = value;
    while (*p && !sk->nomem) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        size_t len = (size_t)(b - a), idx;
        char shown[72];
        if (len == 0) {
            /* "a,,b" or a trailing comma: harmless, skip it. */
        } else if (!app_name_valid(a, len)) {
            report(sk, 0, "invalid app name '%s': use 1 to %d letters, digits, '_' or '-'",
                   show(a, len, shown, sizeof shown), SL_CONFIG_APP_NAME_MAX);
        } else if (app_find(cfg, a, len, true) < 0) {
            int rc = app_add(cfg, a, len, false, &idx);
            if (rc)
                app_add_failed(sk, 0, rc);
        }
        p = *end ? end + 1 : end;
    }
}

/*
 * SLUICE_APP_<NAME>_<KEY>: rest is "<NAME>_<KEY>". Keys may hold '_' and so
 * may names, so every app key that ends rest is a candidate split; one
 * whose NAME is an existing app wins, then the longest key.
 */
static void env_app_key(sl_config_t *cfg, sink_t *sk, const char *rest, size_t len,
                        const char *value)
{
    const slot_t *best = NULL;
    size_t best_name_len = 0, best_si = 0;
    bool best_exists = false;
    char shown[72], label[SL_CONFIG_APP_NAME_MAX + 8];

    for (size_t si = 0; si < cfg->n_sections; si++) {
        const sl_config_section_t *sec = cfg->sections[si];
        for (size_t i = 0; i < sec->n_app_slots; i++) {
            size_t lk = strlen(sec->app_slots[i].key);
            if (len < lk + 2 || rest[len - lk - 1] != '_' ||
                strncasecmp(rest + len - lk, sec->app_slots[i].key, lk) != 0)
                continue;
            size_t nl = len - lk - 1;
            bool exists = app_find(cfg, rest, nl, true) >= 0;
            if (!best || (exists && !best_exists) ||
                (exists == best_exists && lk > strlen(best->key))) {
                best = &sec->app_slots[i];
                best_si = si;
                best_name_len = nl;
                best_exists = exists;
            }
        }
    }
    if (!best) {
        hint_t h = {.dist = SIZE_MAX};
        const char *us = NULL;
        for (size_t i = 0; i < len; i++)
            if (rest[i] == '_')
                us = rest + i;
        for (size_t si = 0; us && si < cfg->n_sections; si++)
            for (size_t i = 0; i < cfg->sections[si]->n_app_slots; i++)
                hint_try(&h, us + 1, len - (size_t)(us + 1 - rest),
                         cfg->sections[si]->app_slots[i].key);
        report(sk, 0,
               "unknown per-app setting: expected SLUICE_APP_<NAME>_<KEY> with KEY one of "
               "ENABLED, PUBLISH, PLAY%s%s%s",
               h.best[0] ? " (did you mean " : "", h.best, h.best[0] ? "?)" : "");
        return;
    }
    if (!app_name_valid(rest, best_name_len)) {
        report(sk, 0, "invalid app name '%s': use 1 to %d letters, digits, '_' or '-'",
               show(rest, best_name_len, shown, sizeof shown), SL_CONFIG_APP_NAME_MAX);
        return;
    }
    long found = app_find(cfg, rest, best_name_len, true);
    if (found < 0) {
        size_t idx;
        /* Env names are upper-case by convention; app names in URLs rarely are. */
        int rc = app_add(cfg, rest, best_name_len, true, &idx);
        if (rc) {
            app_add_failed(sk, 0, rc);
            return;
        }
        found = (long)idx;
    }
    snprintf(label, sizeof label, "apps.%s", cfg->apps[found].name);
    env_set(cfg, sk, best, app_base(&cfg->apps[found], best_si), label, value);
}

/* SLUICE_<SECTION>_<KEY>, or an unknown variable. */
static void env_key(sl_config_t *cfg, sink_t *sk, const char *name, size_t len, const char *value)
{
    char buf[96];
    hint_t h = {.dist = SIZE_MAX};
    for (size_t si = 0; si < cfg->n_sections; si++) {
        const sl_config_section_t *sec = cfg->sections[si];
        for (size_t i = 0; i < sec->n_slots; i++) {
            if (env_is_slot(name, len, sec->name, &sec->slots[i])) {
                env_set(cfg, sk, &sec->slots[i], cfg_base(cfg, si), sec->name, value);
                return;
            }
        }
    }
    for (size_t si = 0; si < cfg->n_sections; si++) {
        const sl_config_section_t *sec = cfg->sections[si];
        for (size_t i = 0; i < sec->n_slots; i++) {
            env_name(buf, sizeof buf, sec->name, sec->slots[i].key);
            hint_try(&h, name, len, buf + 7);
        }
    }
    hint_try(&h, name, len, "APPS");
    report(sk, 0, "unknown sluice variable%s%s%s; every setting is listed in docs/config.md",
           h.best[0] ? " (did you mean SLUICE_" : "", h.best, h.best[0] ? "?)" : "");
}

/*
 * Applies SLUICE_* variables in three passes (SLUICE_APPS, then section
 * settings, then per-app settings) so the result does not depend on the
 * order of envp. See config.h for the rules.
 */
int sl_config_apply_env(sl_config_t *cfg, char *const *envp, sl_config_err_cb err, void *ud)
{
    sink_t sk = {.err = err, .ud = ud};
    char where[128];
    for (int pass = 0; envp && pass < 3 && !sk.nomem; pass++) {
        for (char *const *e = envp; *e && !sk.nomem; e++) {
            const char *entry = *e, *eq_sign = strchr(entry, '=');
            if (!eq_sign || strncmp(entry, "SLUICE_", 7) != 0)
                continue;
            const char *name = entry + 7, *value = eq_sign + 1;
            size_t len = (size_t)(eq_sign - name);
            bool reserved = false;
            for (int i = 0; g_env_reserved[i]; i++)
                reserved |= eq_ci(name, len, g_env_reserved[i]);
            if (reserved)
                continue;
            bool is_apps = eq_ci(name, len, "APPS");
            bool is_app = !is_apps && len > 4 && strncasecmp(name, "APP_", 4) == 0;
            int want = is_apps ? 0 : is_app ? 2 : 1;
            if (want != pass)
                continue;
            sk.where = show(entry, (size_t)(eq_sign - entry), where, sizeof where);
            if (is_apps)
                env_apps(cfg, &sk, value);
            else if (is_app)
                env_app_key(cfg, &sk, name + 4, len - 4, value);
            else
                env_key(cfg, &sk, name, len, value);
        }
    }
    if (sk.nomem)
        return SL_ENOMEM;
    return sk.n_problems ? SL_EINVAL : 0;
}

/* ---- writers ---------------------------------------------------------- */

/* "integer, 1..65535", "size, 1KB..64MB", "one of: error, warn, ..." */
static const char *type_desc(const slot_t *s, bool markdown, char *out, size_t cap)
{
    char lo[32], hi[32], list[128];
    switch (s->type) {
    case T_BOOL:
        snprintf(out, cap, "bool");
        break;
    case T_STRING:
        if (s->min > 0)
            snprintf(out, cap, "string, not empty, at most %lld bytes", (long long)s->max);
        else
            snprintf(out, cap, "string, at most %lld bytes", (long long)s->max);
        break;
    case T_ENUM:
        snprintf(out, cap, "one of %s",
                 enum_list(s, markdown ? ", " : " | ", markdown ? "`" : "", list, sizeof list));
        break;
    default:
        snprintf(out, cap, "%s, %s..%s",
                 s->type == T_INT ? "integer" : s->type == T_SIZE ? "size" : "duration",
                 fmt_bound(s, s->min, lo, sizeof lo), fmt_bound(s, s->max, hi, sizeof hi));
        break;
    }
    return out;
}

/* A string default as YAML: plain when unambiguous, else double-quoted. */
static void yaml_value(FILE *out, const slot_t *s)
{
    const char *v = s->def;
    bool plain = s->type != T_STRING || (v[0] && v[0] != '-');
    for (const char *p = v; plain && *p; p++)
        plain = isalnum((unsigned char)*p) || strchr("._/-", *p);
    if (plain) {
        fputs(v, out);
        return;
    }
    fputc('"', out);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

static void yaml_slot(FILE *out, const slot_t *s, const char *indent, const char *env_a,
                      const char *env_b)
{
    char desc[160], env[96];
    fprintf(out, "%s# %s\n", indent, s->doc);
    fprintf(out, "%s# %s; env %s\n", indent, type_desc(s, false, desc, sizeof desc),
            env_name(env, sizeof env, env_a, env_b));
    fprintf(out, "%s%s: ", indent, s->key);
    yaml_value(out, s);
    fputc('\n', out);
}

/*
 * Writes the shipped sluice.yml: a header on overrides and value types, then
 * every section with every key at its default, each under its doc line and
 * its type/bounds/env line. The output parses back to exactly the defaults
 * (a unit test checks that, and that the shipped file is this output).
 */
void sl_config_print_yaml(FILE *out, const sl_config_section_t *const *sections, size_t n)
{
    seclist_t l;
    if (seclist_build(&l, sections, n))
        return;
    fputs("# sluice.yml: the configuration of sluice, a live-streaming media server.\n"
          "#\n"
          "# Generated from the settings tables in src/ (base/config.c, */*_config.c; sluice --print-config\n"
          "# yaml), like docs/config.md, so the two always agree. Every setting is listed\n"
          "# with its default value; change what you need, delete what you do not.\n"
          "#\n"
          "# Environment variables override this file (they are applied after it):\n"
          "#   SLUICE_<SECTION>_<KEY>=value    e.g. SLUICE_RTMP_PORT=19350, SLUICE_LOG_LEVEL=debug\n"
          "#   SLUICE_APP_<NAME>_<KEY>=value   e.g. SLUICE_APP_LIVE_PUBLISH=false; NAME matches an\n"
          "#                                   app ignoring case, or creates it (lower-cased)\n"
          "#   SLUICE_APPS=name1,name2         adds apps with default settings\n"
          "# Names after SLUICE_ are matched ignoring case. An unknown SLUICE_ variable is an\n"
          "# error, so typos are caught; SLUICE_BIN and SLUICE_CONFIG are reserved.\n"
          "#\n"
          "# Value types:\n"
          "#   bool      true/false, yes/no, on/off, 1/0\n"
          "#   size      bytes: 4096, 64k, 16MB, 1g (k = 1024, m = 1024k, g = 1024m; b, kb, kib... too)\n"
          "#   duration  500ms, 5s, 2m, 1h; a plain number is milliseconds\n"
          "# A wrong type, an out-of-range value or an unknown key stops sluice at start with\n"
          "# the file name and line of every problem.\n"
          "#\n"
          "# Reload without a restart: SIGHUP or POST /api/v1/server/reload (a file with\n"
          "# problems changes nothing; listen ports, TLS files and data_dir need a restart).\n",
          out);
    for (size_t si = 0; si < l.n; si++) {
        if (!is_yaml_section(l.s[si]))
            continue;
        fprintf(out, "\n# %s\n%s:\n", l.s[si]->doc, l.s[si]->name);
        for (size_t i = 0; i < l.s[si]->n_slots; i++)
            yaml_slot(out, &l.s[si]->slots[i], "  ", l.s[si]->name, l.s[si]->slots[i].key);
    }
    fputs("\n# Apps (scopes): rtmp://host/{app}/{stream}. Each is `name: {settings}`, the name\n"
          "# 1 to 64 of A-Z a-z 0-9 _ - (names must also differ ignoring case). `live` exists\n"
          "# even when not listed here; turn it off with `live: {enabled: false}`.\n"
          "apps:\n"
          "  live:\n",
          out);
    for (size_t si = 0; si < l.n; si++) {
        for (size_t i = 0; i < l.s[si]->n_app_slots; i++) {
            char key[64];
            snprintf(key, sizeof key, "<NAME>_%s", l.s[si]->app_slots[i].key);
            yaml_slot(out, &l.s[si]->app_slots[i], "    ", "APP", key);
        }
    }
    plugins_write_yaml(out);
}

/* Writes text for a markdown table cell: '|' escaped, newlines flattened. */
static void md_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s == '\n' ? ' ' : *s, out);
    }
}

static void md_row(FILE *out, const slot_t *s, const char *env_a, const char *env_b)
{
    char desc[160], env[96];
    fprintf(out, "| `%s` | ", s->key);
    md_cell(out, type_desc(s, true, desc, sizeof desc));
    fprintf(out, " | `%s` | `%s` | ", s->def[0] ? s->def : "\"\"",
            env_name(env, sizeof env, env_a, env_b));
    md_cell(out, s->doc);
    if (s->flags & SL_CONFIG_RESTART)
        fputs(" (restart needed)", out);
    fputs(" |\n", out);
}

static const char md_table_head[] = "| key | type | default | env variable | description |\n"
                                    "|---|---|---|---|---|\n";

/*
 * Writes docs/config.md: how configuration works, the value types, then one
 * table per section (key, type and bounds, default, env variable, doc).
 */
void sl_config_print_markdown(FILE *out, const sl_config_section_t *const *sections, size_t n)
{
    char names[1024];
    seclist_t l;
    if (seclist_build(&l, sections, n))
        return;
    size_t n_names = section_names(l.s, l.n, names, sizeof names, "`");
    fprintf(out,
          "# sluice configuration\n"
          "\n"
          "<!-- Generated from the settings tables in src/ (base/config.c, */*_config.c) by\n"
          "     `sluice --print-config markdown`; do not edit by hand (a unit test fails\n"
          "     when this file and the tables disagree). -->\n"
          "\n"
          "sluice reads one YAML file, `sluice.yml`. Its top-level keys are its %zu sections\n"
          "(%s); each section maps keys to values. Every key is\n"
          "optional: what is not set keeps its default. The shipped `sluice.yml` lists every\n"
          "key at its default with the same descriptions as this page. Keys are\n"
          "case-sensitive. Every problem (unknown section or key, duplicate key, wrong type,\n"
          "value out of range, invalid app name, YAML syntax error) is reported with its file\n"
          "and line, all of them in one run, and sluice does not start. So is every problem\n"
          "found after reading (a file named by a key that cannot be read, a certificate that\n"
          "does not load, a URL that is not http(s), an unknown webhook event name): at the\n"
          "line that set the key, by `sluice --check-config` too, before any listener opens.\n"
          "\n"
          "## Reload\n"
          "\n"
          "`SIGHUP` or `POST /api/v1/server/reload` (with the API token) reads the same file and\n"
          "environment again and applies it without a restart: apps added, removed or changed\n"
          "and module settings take effect for new clients and new work; connected clients stay\n"
          "(the sessions of a removed app stay until they leave). The new configuration is\n"
          "checked first, like at start: one with problems changes nothing, and every problem\n"
          "is logged and answered with its file and line. Listen ports and addresses, TLS\n"
          "files, `server.data_dir` and a few limits fixed at start need a restart: a reload\n"
          "that changes them says so (log, API answer) and they keep their running value;\n"
          "the tables below mark them \"(restart needed)\" (details: `docs/internals/RELOAD.md`).\n"
          "\n"
          "## Environment variables\n"
          "\n"
          "Environment variables are applied after the file and win over it:\n"
          "\n"
          "- `SLUICE_<SECTION>_<KEY>=value` sets one key, e.g. `SLUICE_RTMP_PORT=19350`,\n"
          "  `SLUICE_LOG_LEVEL=debug`, `SLUICE_MEDIA_QUEUE_MAX_BYTES=1MB`.\n"
          "- `SLUICE_APPS=name1,name2` adds apps with default settings (names as written;\n"
          "  an app that already exists under any case is left as it is).\n"
          "- `SLUICE_APP_<NAME>_<KEY>=value` sets one per-app key, e.g.\n"
          "  `SLUICE_APP_LIVE_PUBLISH=false`. `NAME` matches an existing app ignoring case;\n"
          "  when none matches, the app is created with the lower-cased name.\n"
          "- `SLUICE_BIN` and `SLUICE_CONFIG` are reserved and ignored here.\n"
          "- Any other `SLUICE_` variable is an error, so a typo cannot go unnoticed.\n"
          "\n"
          "Names after `SLUICE_` are matched ignoring case. `SLUICE_APPS` is applied first and\n"
          "per-app variables last, whatever their order in the environment.\n"
          "\n"
          "## Value types\n"
          "\n"
          "| type | accepted values |\n"
          "|---|---|\n"
          "| bool | `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0` (any case) |\n"
          "| integer | decimal digits, e.g. `1935` |\n"
          "| size | bytes with an optional unit, powers of 1024: `4096`, `64k`, `16MB`, `1g` "
          "(`k`/`kb`/`kib` = 1024, `m`/`mb`/`mib` = 1024k, `g`/`gb`/`gib` = 1024m, any case) |\n"
          "| duration | `500ms`, `5s`, `2m`, `1h`; a plain number is milliseconds |\n"
          "| string | any text; quote it (`\"\"`) when empty or when YAML would misread it |\n",
          n_names, names);
    for (size_t si = 0; si < l.n; si++) {
        if (!is_yaml_section(l.s[si]))
            continue;
        fprintf(out, "\n## %s\n\n%s\n\n%s", l.s[si]->name, l.s[si]->doc, md_table_head);
        for (size_t i = 0; i < l.s[si]->n_slots; i++)
            md_row(out, &l.s[si]->slots[i], l.s[si]->name, l.s[si]->slots[i].key);
    }
    fputs("\n## apps\n"
          "\n"
          "Apps (scopes): `rtmp://host/{app}/{stream}`. `apps` maps each app name to its\n"
          "settings, e.g. `studio: {publish: true, play: false}`. Names are 1 to 64 of\n"
          "`A-Z a-z 0-9 _ -` and must differ ignoring case. The app `live` exists even when not\n"
          "listed; turn it off with `live: {enabled: false}`. Connections to an app that does\n"
          "not exist, or is disabled, are refused.\n"
          "\n",
          out);
    fputs(md_table_head, out);
    for (size_t si = 0; si < l.n; si++) {
        for (size_t i = 0; i < l.s[si]->n_app_slots; i++) {
            char key[64];
            snprintf(key, sizeof key, "<NAME>_%s", l.s[si]->app_slots[i].key);
            md_row(out, &l.s[si]->app_slots[i], "APP", key);
        }
    }
    plugins_write_markdown(out);
}
