/*
 * Unit tests for the configuration system (src/base/config.c): defaults,
 * every value type, YAML overrides, error reports with the right line
 * numbers (all of them in one load), SLUICE_* environment overrides, apps,
 * bounds, hostile input, the generated sluice.yml and docs/config.md (which
 * must match the shipped files byte for byte) and, when the build has
 * SL_FAULT_INJECTION, allocation failure at every step. Every test runs
 * between a setup and a teardown that check sl_alloc_bytes() is back where
 * it started, so a leak anywhere fails the test that caused it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/config.h"
#include "base/log.h"
#include "sluice/errors.h"
#include "proto/rtmp/rtmp_config.h"
#include "builtin_config.h"

#define KB 1024LL
#define MB (1024LL * KB)
#define GB (1024LL * MB)

/* ---- helpers ---------------------------------------------------------- */

typedef struct {
    char where[128];
    int line;
    char msg[512];
} rec_t;

typedef struct {
    rec_t e[64];
    int n;
} errs_t;

/* The error callback under test: records every report. */
static void rec(void *ud, const char *where, int line, const char *msg)
{
    errs_t *errs = ud;
    if (errs->n < (int)(sizeof errs->e / sizeof errs->e[0])) {
        rec_t *r = &errs->e[errs->n];
        snprintf(r->where, sizeof r->where, "%s", where ? where : "(null)");
        r->line = line;
        snprintf(r->msg, sizeof r->msg, "%s", msg);
    }
    errs->n++;
}

static int load(sl_config_t *cfg, const char *yaml, errs_t *errs)
{
    memset(errs, 0, sizeof *errs);
    return sl_config_load_string(cfg, yaml, strlen(yaml), "test.yml", rec, errs);
}

static int env(sl_config_t *cfg, char *const *envp, errs_t *errs)
{
    memset(errs, 0, sizeof *errs);
    return sl_config_apply_env(cfg, envp, rec, errs);
}

static void dump(const errs_t *errs)
{
    for (int i = 0; i < errs->n && i < 64; i++)
        print_message("  [%d] %s:%d: %s\n", i, errs->e[i].where, errs->e[i].line, errs->e[i].msg);
}

/* Asserts that report i is at line and its message contains needle. */
static void assert_err(const errs_t *errs, int i, int line, const char *needle)
{
    if (i >= errs->n || errs->e[i].line != line || !strstr(errs->e[i].msg, needle)) {
        print_message("expected report %d at line %d containing '%s'; got:\n", i, line, needle);
        dump(errs);
        fail();
    }
}

/* Loads one `section:\n  key: value` over defaults; returns the load's code. */
static int load_one(sl_config_t *cfg, const char *section, const char *key, const char *value,
                    errs_t *errs)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml, "%s:\n  %s: %s\n", section, key, value);
    return load(cfg, yaml, errs);
}

/* Runs a writer into a malloc'd string. */
static char *write_to_string(void (*writer)(FILE *), size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    assert_non_null(f);
    writer(f);
    fclose(f);
    return buf;
}

/* ---- setup: every test must leave the allocator where it found it ----- */

static int64_t g_baseline;

static int setup(void **state)
{
    g_baseline = sl_alloc_bytes();
    return 0;
}

static int teardown(void **state)
{
    assert_int_equal(sl_alloc_bytes(), g_baseline);
    return 0;
}

/* ---- defaults and types ----------------------------------------------- */

static void test_defaults(void **state)
{
    sl_config_t cfg;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_string_equal(cfg.server_data_dir, "./data");
    assert_string_equal(cfg.server_node_name, "");
    assert_int_equal(cfg.server_max_connections, 10000);
    assert_int_equal(cfg.server_shutdown_timeout_ms, 5000);
    assert_int_equal(cfg.log_level, SL_LOG_INFO);
    assert_int_equal(cfg.log_format, 0);
    assert_int_equal(sl_rtmp_cfg(&cfg)->enabled, 1);
    assert_string_equal(sl_rtmp_cfg(&cfg)->bind, "0.0.0.0");
    assert_int_equal(sl_rtmp_cfg(&cfg)->port, 1935);
    assert_int_equal(sl_rtmp_cfg(&cfg)->chunk_size, 4096);
    assert_int_equal(sl_rtmp_cfg(&cfg)->max_chunk_size, 65536);
    assert_int_equal(sl_rtmp_cfg(&cfg)->max_message_size, 8 * MB);
    assert_int_equal(sl_rtmp_cfg(&cfg)->handshake_timeout_ms, 5000);
    assert_int_equal(sl_rtmp_cfg(&cfg)->idle_timeout_ms, 60000);
    assert_int_equal(sl_rtmp_cfg(&cfg)->amf_max_depth, 32);
    assert_int_equal(sl_rtmp_cfg(&cfg)->window_ack_size, 2500000);
    assert_int_equal(sl_rtmp_cfg(&cfg)->ping_interval_ms, 30000);
    assert_int_equal(sl_rtmp_cfg(&cfg)->tcp_nodelay, 1);
    assert_int_equal(cfg.media_gop_cache_max_bytes, 16 * MB);
    assert_int_equal(cfg.media_queue_max_bytes, 8 * MB);
    assert_int_equal(cfg.media_queue_max_ms, 5000);
    assert_int_equal(cfg.media_slow_disconnect_ms, 30000);
    assert_int_equal(cfg.media_write_merge_ms, 0);
    assert_int_equal(cfg.n_apps, 1);
    const sl_app_config_t *live = sl_config_app(&cfg, "live");
    assert_non_null(live);
    assert_string_equal(live->name, "live");
    assert_int_equal(live->enabled, 1);
    assert_int_equal(live->allow_publish, 1);
    assert_int_equal(live->allow_play, 1);
    /* Lookup is exact: URLs are case-sensitive. */
    assert_null(sl_config_app(&cfg, "LIVE"));
    assert_null(sl_config_app(&cfg, "vod"));
    sl_config_cleanup(&cfg);
    /* cleanup zeroes, so a second cleanup and a refill are safe. */
    sl_config_cleanup(&cfg);
    assert_null(cfg.apps);
    assert_int_equal(sl_config_defaults(&cfg), 0);
    sl_config_cleanup(&cfg);
}

/* The enum names are the table's; their index must be sl_log_level_t. */
static void test_enums(void **state)
{
    static const char *const levels[] = {"error", "warn", "info", "debug", "trace"};
    sl_config_t cfg;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(load_one(&cfg, "log", "level", levels[i], &errs), 0);
        assert_int_equal(cfg.log_level, sl_log_level_parse(levels[i]));
        assert_int_equal(cfg.log_level, i);
    }
    assert_int_equal(load_one(&cfg, "log", "level", "DEBUG", &errs), 0);
    assert_int_equal(cfg.log_level, SL_LOG_DEBUG);
    assert_int_equal(load_one(&cfg, "log", "format", "json", &errs), 0);
    assert_int_equal(cfg.log_format, 1);
    assert_int_equal(load_one(&cfg, "log", "format", "text", &errs), 0);
    assert_int_equal(cfg.log_format, 0);
    assert_int_equal(load_one(&cfg, "log", "format", "xml", &errs), SL_EINVAL);
    assert_err(&errs, 0, 2, "expected one of text, json");
    assert_int_equal(cfg.log_format, 0);
    sl_config_cleanup(&cfg);
}

static void test_sizes(void **state)
{
    static const struct {
        const char *text;
        int64_t bytes;
    } ok[] = {
        {"4096", 4096},     {"0", 0},           {"100b", 100},     {"64k", 64 * KB},
        {"64K", 64 * KB},   {"64kb", 64 * KB},  {"64KiB", 64 * KB}, {"16MB", 16 * MB},
        {"16 MB", 16 * MB}, {"16m", 16 * MB},   {"3mib", 3 * MB},  {"1g", 1 * GB},
        {"1G", 1 * GB},     {"1GiB", 1 * GB},   {"\"2MB\"", 2 * MB},
    };
    static const char *const bad[] = {"1.5MB", "-1", "12x", "k", "\"\"", "16 MB extra", "1t",
                                      "0x10", "MB16"};
    sl_config_t cfg;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (load_one(&cfg, "media", "gop_cache_max_bytes", ok[i].text, &errs) != 0) {
            print_message("size '%s' rejected\n", ok[i].text);
            dump(&errs);
            fail();
        }
        assert_int_equal(cfg.media_gop_cache_max_bytes, ok[i].bytes);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(load_one(&cfg, "media", "gop_cache_max_bytes", bad[i], &errs), SL_EINVAL);
        assert_err(&errs, 0, 2, "media.gop_cache_max_bytes: expected a size");
        assert_int_equal(cfg.media_gop_cache_max_bytes, 2 * MB); /* the last good value */
    }
    /* Overflow and past-the-bound are range errors, not parse errors. */
    assert_int_equal(load_one(&cfg, "media", "gop_cache_max_bytes", "99999999999999999999",
                              &errs), SL_EINVAL);
    assert_err(&errs, 0, 2, "out of range (0..1GB)");
    assert_int_equal(load_one(&cfg, "media", "gop_cache_max_bytes", "9000000000g", &errs),
                     SL_EINVAL);
    assert_err(&errs, 0, 2, "out of range");
    assert_int_equal(load_one(&cfg, "media", "gop_cache_max_bytes", "1025m", &errs), SL_EINVAL);
    assert_err(&errs, 0, 2, "'1025m' is out of range (0..1GB)");
    sl_config_cleanup(&cfg);
}

static void test_durations(void **state)
{
    static const struct {
        const char *text;
        int64_t ms;
    } ok[] = {
        {"500ms", 500}, {"5s", 5000},  {"2m", 120000},  {"1h", 3600000},
        {"250", 250},   {"0", 0},      {"5 s", 5000},   {"10S", 10000}, {"0ms", 0},
    };
    static const char *const bad[] = {"5 sec", "1d", "5.5s", "-5s", "soon", "s", "1h30m"};
    sl_config_t cfg;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (load_one(&cfg, "rtmp", "ping_interval", ok[i].text, &errs) != 0) {
            print_message("duration '%s' rejected\n", ok[i].text);
            dump(&errs);
            fail();
        }
        assert_int_equal(sl_rtmp_cfg(&cfg)->ping_interval_ms, ok[i].ms);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(load_one(&cfg, "rtmp", "ping_interval", bad[i], &errs), SL_EINVAL);
        assert_err(&errs, 0, 2, "rtmp.ping_interval: expected a duration");
    }
    assert_int_equal(sl_rtmp_cfg(&cfg)->ping_interval_ms, 0);
    assert_int_equal(load_one(&cfg, "rtmp", "ping_interval", "61m", &errs), SL_EINVAL);
    assert_err(&errs, 0, 2, "out of range (0..1h)");
    sl_config_cleanup(&cfg);
}

static void test_bools(void **state)
{
    static const struct {
        const char *text;
        int value;
    } ok[] = {
        {"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0},    {"on", 1},     {"off", 0},
        {"TRUE", 1}, {"Off", 0},   {"1", 1},   {"0", 0},     {"\"yes\"", 1},
    };
    sl_config_t cfg;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(load_one(&cfg, "rtmp", "tcp_nodelay", ok[i].text, &errs), 0);
        assert_int_equal(sl_rtmp_cfg(&cfg)->tcp_nodelay, ok[i].value);
    }
    assert_int_equal(load_one(&cfg, "rtmp", "tcp_nodelay", "maybe", &errs), SL_EINVAL);
    assert_err(&errs, 0, 2, "expected true or false");
    assert_int_equal(load_one(&cfg, "rtmp", "tcp_nodelay", "2", &errs), SL_EINVAL);
    assert_int_equal(sl_rtmp_cfg(&cfg)->tcp_nodelay, 1); /* the last good value, "yes" */
    sl_config_cleanup(&cfg);
}

static void test_ints_and_strings(void **state)
{
    sl_config_t cfg;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(load_one(&cfg, "rtmp", "port", "19350", &errs), 0);
    assert_int_equal(sl_rtmp_cfg(&cfg)->port, 19350);
    assert_int_equal(load_one(&cfg, "rtmp", "port", "+80", &errs), 0);
    assert_int_equal(sl_rtmp_cfg(&cfg)->port, 80);
    static const char *const bad[] = {"12ab", "0x10", "1e3", "\"\"", "\"- 5\"", "1935.0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(load_one(&cfg, "rtmp", "port", bad[i], &errs), SL_EINVAL);
        assert_err(&errs, 0, 2, "rtmp.port: expected an integer");
    }
    assert_int_equal(load_one(&cfg, "rtmp", "port", "99999999999999999999", &errs), SL_EINVAL);
    assert_err(&errs, 0, 2, "out of range (1..65535)");
    assert_int_equal(sl_rtmp_cfg(&cfg)->port, 80);

    /* Strings: plain, quoted, empty; `key:` alone is an empty string. */
    assert_int_equal(load_one(&cfg, "server", "node_name", "edge-7", &errs), 0);
    assert_string_equal(cfg.server_node_name, "edge-7");
    assert_int_equal(load_one(&cfg, "server", "node_name", "\"a: b # c\"", &errs), 0);
    assert_string_equal(cfg.server_node_name, "a: b # c");
    assert_int_equal(load_one(&cfg, "server", "node_name", "", &errs), 0);
    assert_string_equal(cfg.server_node_name, "");
    assert_int_equal(load_one(&cfg, "server", "node_name", "~", &errs), SL_EINVAL);
    assert_err(&errs, 0, 2, "server.node_name has no value");
    assert_int_equal(load_one(&cfg, "server", "data_dir", "\"\"", &errs), SL_EINVAL);
    assert_err(&errs, 0, 2, "server.data_dir: must not be empty");
    assert_int_equal(load_one(&cfg, "server", "data_dir", "\"a\\0b\"", &errs), SL_EINVAL);
    assert_err(&errs, 0, 2, "NUL byte");
    char big[400];
    memset(big, 'x', 300);
    big[300] = '\0';
    assert_int_equal(load_one(&cfg, "server", "node_name", big, &errs), SL_EINVAL);
    assert_err(&errs, 0, 2, "longer than 255 bytes");
    assert_string_equal(cfg.server_data_dir, "./data");
    /* A forgotten value on a number. */
    assert_int_equal(load_one(&cfg, "rtmp", "port", "", &errs), SL_EINVAL);
    assert_err(&errs, 0, 2, "rtmp.port has no value");
    sl_config_cleanup(&cfg);
}

static void test_out_of_range(void **state)
{
    static const struct {
        const char *section, *key, *value, *bounds;
    } cases[] = {
        {"rtmp", "port", "0", "(1..65535)"},
        {"rtmp", "port", "65536", "(1..65535)"},
        {"rtmp", "port", "-1", "(1..65535)"},
        {"rtmp", "chunk_size", "127", "(128..65536)"},
        {"rtmp", "chunk_size", "65537", "(128..65536)"},
        {"rtmp", "max_chunk_size", "16777216", "(128..16777215)"},
        {"rtmp", "max_message_size", "1023", "(1KB..64MB)"},
        {"rtmp", "max_message_size", "65MB", "(1KB..64MB)"},
        {"rtmp", "amf_max_depth", "0", "(1..1000)"},
        {"rtmp", "amf_max_depth", "1001", "(1..1000)"},
        {"media", "write_merge", "1001ms", "(0..1s)"},
        {"media", "queue_max_bytes", "1k", "(64KB..1GB)"},
        {"server", "max_connections", "0", "(1..1000000)"},
    };
    sl_config_t cfg, def;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(sl_config_defaults(&def), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(load_one(&cfg, cases[i].section, cases[i].key, cases[i].value, &errs),
                         SL_EINVAL);
        assert_int_equal(errs.n, 1);
        assert_err(&errs, 0, 2, "out of range");
        assert_err(&errs, 0, 2, cases[i].bounds);
    }
    /* A rejected value never changes the setting. */
    assert_true(sl_config_equal(&cfg, &def));
    /* The bounds themselves are accepted. */
    assert_int_equal(load(&cfg, "rtmp: {port: 65535, chunk_size: 128, max_chunk_size: 16777215,"
                                " max_message_size: 64MB}\nmedia: {write_merge: 1s}\n",
                          &errs), 0);
    assert_int_equal(sl_rtmp_cfg(&cfg)->port, 65535);
    assert_int_equal(sl_rtmp_cfg(&cfg)->max_message_size, 64 * MB);
    assert_int_equal(cfg.media_write_merge_ms, 1000);
    sl_config_cleanup(&def);
    sl_config_cleanup(&cfg);
}

/* ---- YAML ------------------------------------------------------------- */

static void test_yaml_overrides(void **state)
{
    static const char yaml[] = "# a comment\n"
                               "server:\n"
                               "  data_dir: /var/lib/sluice\n"
                               "  node_name: edge-1\n"
                               "log:\n"
                               "  level: debug\n"
                               "  format: json\n"
                               "rtmp:\n"
                               "  enabled: off\n"
                               "  port: 19350\n"
                               "  max_message_size: 16MB\n"
                               "  idle_timeout: 2m\n"
                               "media: {queue_max_bytes: 1MB, write_merge: 20ms}\n";
    sl_config_t cfg;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(load(&cfg, yaml, &errs), 0);
    assert_int_equal(errs.n, 0);
    assert_string_equal(cfg.server_data_dir, "/var/lib/sluice");
    assert_string_equal(cfg.server_node_name, "edge-1");
    assert_int_equal(cfg.log_level, SL_LOG_DEBUG);
    assert_int_equal(cfg.log_format, 1);
    assert_int_equal(sl_rtmp_cfg(&cfg)->enabled, 0);
    assert_int_equal(sl_rtmp_cfg(&cfg)->port, 19350);
    assert_int_equal(sl_rtmp_cfg(&cfg)->max_message_size, 16 * MB);
    assert_int_equal(sl_rtmp_cfg(&cfg)->idle_timeout_ms, 120000);
    assert_int_equal(cfg.media_queue_max_bytes, 1 * MB);
    assert_int_equal(cfg.media_write_merge_ms, 20);
    /* What the file does not name keeps its value. */
    assert_int_equal(sl_rtmp_cfg(&cfg)->chunk_size, 4096);
    assert_string_equal(sl_rtmp_cfg(&cfg)->bind, "0.0.0.0");
    assert_int_equal(cfg.n_apps, 1);
    /* A second load goes over the first. */
    assert_int_equal(load(&cfg, "rtmp:\n  port: 1936\n", &errs), 0);
    assert_int_equal(sl_rtmp_cfg(&cfg)->port, 1936);
    assert_int_equal(sl_rtmp_cfg(&cfg)->enabled, 0);
    sl_config_cleanup(&cfg);
}

/* One load reports every problem, each at its own line, and applies the rest. */
static void test_all_errors_with_lines(void **state)
{
    static const char yaml[] = "server:\n"                      /* 1 */
                               "  data_dir: /srv/sluice\n"       /* 2 */
                               "  max_conections: 5\n"           /* 3 unknown key */
                               "  shutdown_timeout: soon\n"      /* 4 bad value */
                               "log:\n"                          /* 5 */
                               "  level: verbose\n"              /* 6 bad enum */
                               "rtmp:\n"                         /* 7 */
                               "  port: 70000\n"                 /* 8 out of range */
                               "  port: 1936\n"                  /* 9 duplicate */
                               "  chunk_size: [1, 2]\n"          /* 10 not a scalar */
                               "metrics:\n"                      /* 11 unknown section */
                               "  enabled: true\n"               /* 12 */
                               "media:\n"                        /* 13 */
                               "  queue_max_ms: 2s\n"            /* 14 fine */
                               "log:\n"                          /* 15 duplicate section */
                               "  level: error\n";               /* 16 */
    sl_config_t cfg;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(load(&cfg, yaml, &errs), SL_EINVAL);
    if (errs.n != 8)
        dump(&errs);
    assert_int_equal(errs.n, 8);
    assert_err(&errs, 0, 3, "unknown key 'server.max_conections' (did you mean 'max_connections'?)");
    assert_err(&errs, 1, 4, "server.shutdown_timeout: expected a duration");
    assert_err(&errs, 2, 6, "log.level: expected one of error, warn, info, debug, trace");
    assert_err(&errs, 3, 8, "rtmp.port: '70000' is out of range (1..65535)");
    assert_err(&errs, 4, 9, "duplicate key 'rtmp.port' (first set at line 8)");
    assert_err(&errs, 5, 10, "rtmp.chunk_size takes a single value, not a list");
    assert_err(&errs, 6, 11, "unknown section 'metrics'");
    assert_err(&errs, 7, 15, "duplicate section 'log' (first at line 5)");
    for (int i = 0; i < errs.n; i++)
        assert_string_equal(errs.e[i].where, "test.yml");
    /* Good lines around the bad ones were applied; bad and duplicate ones were not. */
    assert_string_equal(cfg.server_data_dir, "/srv/sluice");
    assert_int_equal(cfg.media_queue_max_ms, 2000);
    assert_int_equal(sl_rtmp_cfg(&cfg)->port, 1935);
    assert_int_equal(cfg.log_level, SL_LOG_INFO);
    /* A NULL callback is allowed: the return code still tells. */
    assert_int_equal(sl_config_load_string(&cfg, yaml, strlen(yaml), NULL, NULL, NULL), SL_EINVAL);
    sl_config_cleanup(&cfg);
}

static void test_syntax_errors(void **state)
{
    sl_config_t cfg;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);

    /* A problem before the syntax error is reported too, then the syntax error. */
    assert_int_equal(load(&cfg, "log:\n"             /* 1 */
                                "  level: loud\n"    /* 2 bad value */
                                "rtmp:\n"            /* 3 */
                                "  port: 1936\n"     /* 4 */
                                "   chunk_size: 1\n" /* 5 bad indentation */
                                "media:\n",
                          &errs), SL_EINVAL);
    /* libyaml folds "1936\n   chunk_size" into one plain scalar before it sees the ':'. */
    assert_int_equal(errs.n, 3);
    assert_err(&errs, 0, 2, "log.level");
    assert_err(&errs, 1, 4, "rtmp.port: expected an integer, got '1936 chunk_size'");
    assert_err(&errs, 2, 5, "YAML syntax error: mapping values are not allowed");
    assert_int_equal(sl_rtmp_cfg(&cfg)->port, 1935);

    /* An unclosed flow list: found on the next line, which points back at the start. */
    assert_int_equal(load(&cfg, "rtmp:\n  port: 1\n  bind: [a, b\nmedia:\n  x: 1\n", &errs),
                     SL_EINVAL);
    assert_int_equal(errs.n, 2);
    assert_err(&errs, 0, 3, "rtmp.bind takes a single value, not a list");
    assert_err(&errs, 1, 4, "(while parsing a flow sequence that starts at line 3)");

    /* A tab used for indentation. */
    assert_int_equal(load(&cfg, "rtmp:\n  port: 1\n\tbind: x\n", &errs), SL_EINVAL);
    assert_err(&errs, errs.n - 1, 3, "YAML syntax error");

    /* An unterminated quote at the end of the file. */
    assert_int_equal(load(&cfg, "server:\n  node_name: \"abc\n", &errs), SL_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_err(&errs, 0, 3, "quoted scalar");

    /* Invalid UTF-8 on line 3: the reader gives a byte offset, turned into a line. */
    assert_int_equal(load(&cfg, "rtmp:\n  port: 1\n  bind: \xff\xfe\n", &errs), SL_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_err(&errs, 0, 3, "unreadable input: invalid leading UTF-8 octet");
    sl_config_cleanup(&cfg);
}

static void test_yaml_shapes(void **state)
{
    sl_config_t cfg, def;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(sl_config_defaults(&def), 0);

    /* Empty, comments only, a bare document marker, empty sections: no change. */
    assert_int_equal(load(&cfg, "", &errs), 0);
    assert_int_equal(load(&cfg, "# nothing\n\n", &errs), 0);
    assert_int_equal(load(&cfg, "---\n", &errs), 0);
    assert_int_equal(load(&cfg, "server:\nrtmp: ~\napps:\nmedia: {}\n", &errs), 0);
    assert_int_equal(sl_config_load_string(&cfg, NULL, 0, "null", rec, &errs), 0);
    assert_true(sl_config_equal(&cfg, &def));

    assert_int_equal(load(&cfg, "- a\n- b\n", &errs), SL_EINVAL);
    assert_err(&errs, 0, 1, "the top level must be a mapping of sections");
    assert_int_equal(load(&cfg, "just a string\n", &errs), SL_EINVAL);
    assert_err(&errs, 0, 1, "the top level must be a mapping");
    assert_int_equal(load(&cfg, "rtmp: 1935\nlog: [a]\n", &errs), SL_EINVAL);
    assert_int_equal(errs.n, 2);
    assert_err(&errs, 0, 1, "rtmp must be a mapping of key: value, not a scalar");
    assert_err(&errs, 1, 2, "log must be a mapping of key: value, not a list");

    /* Non-scalar keys, aliases and several documents are refused, with lines. */
    assert_int_equal(load(&cfg, "rtmp:\n  ? [a]\n  : 1\n  port: 1937\n", &errs), SL_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_err(&errs, 0, 2, "a key must be a plain name, not a list");
    assert_int_equal(sl_rtmp_cfg(&cfg)->port, 1937);
    assert_int_equal(load(&cfg, "x: &p 1940\nrtmp:\n  port: *p\n", &errs), SL_EINVAL);
    assert_int_equal(errs.n, 2);
    assert_err(&errs, 0, 1, "unknown section 'x'");
    assert_err(&errs, 1, 3, "not an alias (anchors and aliases are not supported)");
    assert_int_equal(load(&cfg, "rtmp:\n  port: 1938\n---\nrtmp:\n  port: 1939\n", &errs),
                     SL_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_err(&errs, 0, 3, "only one YAML document is allowed");
    assert_int_equal(sl_rtmp_cfg(&cfg)->port, 1938);

    /* Unknown sections and keys come with a hint when one is close. */
    assert_int_equal(load(&cfg, "rmtp:\n  port: 1\nrtmp:\n  prot: 2\n  zzzzzz: 3\n", &errs),
                     SL_EINVAL);
    assert_int_equal(errs.n, 3);
    assert_err(&errs, 0, 1, "unknown section 'rmtp' (did you mean 'rtmp'?)");
    assert_err(&errs, 1, 4, "unknown key 'rtmp.prot' (did you mean 'port'?)");
    assert_err(&errs, 2, 5, "unknown key 'rtmp.zzzzzz'");
    assert_null(strstr(errs.e[2].msg, "did you mean"));
    /* Keys are case-sensitive, as YAML is. */
    assert_int_equal(load(&cfg, "RTMP:\n  port: 1\n", &errs), SL_EINVAL);
    sl_config_cleanup(&def);
    sl_config_cleanup(&cfg);
}

/* Input that tries to hurt: huge, deep, control characters, long names. */
static void test_hostile_input(void **state)
{
    sl_config_t cfg;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);

    char deep[400];
    size_t n = (size_t)snprintf(deep, sizeof deep, "x: ");
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    assert_int_equal(load(&cfg, deep, &errs), SL_EINVAL);
    assert_err(&errs, errs.n - 1, 1, "nested deeper than 64 levels");

    /* A long, unprintable key is shown shortened and sanitised. */
    char key[1200];
    n = (size_t)snprintf(key, sizeof key, "rtmp:\n  \"\\x01");
    memset(key + n, 'k', 1000);
    snprintf(key + n + 1000, sizeof key - n - 1000, "\": 1\n");
    assert_int_equal(load(&cfg, key, &errs), SL_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_err(&errs, 0, 2, "unknown key 'rtmp.?kkk");
    assert_non_null(strstr(errs.e[0].msg, "...'"));
    assert_true(strlen(errs.e[0].msg) < 120);

    /* Over the size cap: refused before parsing. */
    size_t big_len = SL_CONFIG_MAX_INPUT_BYTES + 1;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, '#', big_len);
    memset(&errs, 0, sizeof errs);
    assert_int_equal(sl_config_load_string(&cfg, big, big_len, "big.yml", rec, &errs), SL_EINVAL);
    assert_err(&errs, 0, 0, "larger than");
    free(big);

    /* Embedded NUL bytes in the input itself. */
    static const char nul[] = "rtmp:\n  port: 1\0\n";
    memset(&errs, 0, sizeof errs);
    assert_int_equal(sl_config_load_string(&cfg, nul, sizeof nul - 1, "nul.yml", rec, &errs),
                     SL_EINVAL);
    sl_config_cleanup(&cfg);
}

/* ---- apps ------------------------------------------------------------- */

static void test_apps_yaml(void **state)
{
    char yaml[1024];
    char name64[65], name65[66];
    memset(name64, 'a', 64);
    name64[64] = '\0';
    memset(name65, 'b', 65);
    name65[65] = '\0';
    snprintf(yaml, sizeof yaml,
             "apps:\n"                      /* 1 */
             "  live: {enabled: false}\n"   /* 2 */
             "  studio:\n"                  /* 3 */
             "    publish: false\n"         /* 4 */
             "  vod-1_x:\n"                 /* 5: null body, all defaults */
             "  Bad Name: {}\n"             /* 6 invalid */
             "  \"\": {}\n"                 /* 7 invalid */
             "  %s: {}\n"                   /* 8 invalid, 65 chars */
             "  %s: {play: no}\n"           /* 9 valid, 64 chars */
             "  studio: {play: false}\n"    /* 10 duplicate */
             "  LIVE: {}\n"                 /* 11 differs only in case */
             "  thing: 5\n"                 /* 12 not a mapping */
             "  other: {publsh: no}\n"      /* 13 unknown key */
             "  \"caf\xc3\xa9\": {}\n",     /* 14 non-ASCII */
             name65, name64);
    sl_config_t cfg;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(load(&cfg, yaml, &errs), SL_EINVAL);
    if (errs.n != 8)
        dump(&errs);
    assert_int_equal(errs.n, 8);
    assert_err(&errs, 0, 6, "invalid app name 'Bad Name': use 1 to 64 letters, digits");
    assert_err(&errs, 1, 7, "invalid app name ''");
    assert_err(&errs, 2, 8, "invalid app name 'bbbb");
    assert_err(&errs, 3, 10, "duplicate app 'studio' (first at line 3)");
    assert_err(&errs, 4, 11, "app 'LIVE' differs from app 'live' only in case");
    assert_err(&errs, 5, 12, "apps.thing must be a mapping of key: value, not a scalar");
    assert_err(&errs, 6, 13, "unknown key 'apps.other.publsh' (did you mean 'publish'?)");
    assert_err(&errs, 7, 14, "invalid app name 'caf?" "?'");

    const sl_app_config_t *live = sl_config_app(&cfg, "live");
    assert_non_null(live);
    assert_int_equal(live->enabled, 0);
    assert_int_equal(live->allow_publish, 1);
    const sl_app_config_t *studio = sl_config_app(&cfg, "studio");
    assert_non_null(studio);
    assert_int_equal(studio->enabled, 1);
    assert_int_equal(studio->allow_publish, 0);
    assert_int_equal(studio->allow_play, 1); /* the duplicate's play: false was ignored */
    const sl_app_config_t *vod = sl_config_app(&cfg, "vod-1_x");
    assert_non_null(vod);
    assert_int_equal(vod->enabled + vod->allow_publish + vod->allow_play, 3);
    const sl_app_config_t *a64 = sl_config_app(&cfg, name64);
    assert_non_null(a64);
    assert_int_equal(a64->allow_play, 0);
    assert_null(sl_config_app(&cfg, name65));
    assert_null(sl_config_app(&cfg, "Bad Name"));
    /* live, studio, vod-1_x, aaaa..., thing, other */
    assert_int_equal(cfg.n_apps, 6);
    sl_config_cleanup(&cfg);

    /* `live` stays when the file has apps but does not name it. */
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(load(&cfg, "apps:\n  studio: {}\n", &errs), 0);
    assert_int_equal(cfg.n_apps, 2);
    assert_non_null(sl_config_app(&cfg, "live"));
    assert_int_equal(sl_config_app(&cfg, "live")->enabled, 1);
    assert_int_equal(load(&cfg, "apps: [live]\n", &errs), SL_EINVAL);
    assert_err(&errs, 0, 1, "apps must be a mapping of app name: settings, not a list");
    sl_config_cleanup(&cfg);
}

static void test_apps_cap(void **state)
{
    sl_config_t cfg;
    errs_t errs;
    size_t cap = 64 * 1024, n = 0;
    char *yaml = malloc(cap);
    assert_non_null(yaml);
    n += (size_t)snprintf(yaml + n, cap - n, "apps:\n");
    for (int i = 0; i < SL_CONFIG_MAX_APPS + 2; i++)
        n += (size_t)snprintf(yaml + n, cap - n, "  a%d: {}\n", i);
    assert_true(n < cap);
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(load(&cfg, yaml, &errs), SL_EINVAL);
    /* live + 1023 from the file; the last three are refused. */
    assert_int_equal(cfg.n_apps, SL_CONFIG_MAX_APPS);
    assert_int_equal(errs.n, 3);
    assert_err(&errs, 0, 2 + SL_CONFIG_MAX_APPS - 1, "too many apps (at most 1024)");
    free(yaml);
    sl_config_cleanup(&cfg);
}

/* ---- environment ------------------------------------------------------ */

static void test_env_overrides(void **state)
{
    char *envp[] = {
        "PATH=/usr/bin",
        "SLUICE_RTMP_PORT=19350",
        "SLUICE_LOG_LEVEL=debug",
        "SLUICE_SERVER_DATA_DIR=/tmp/x",
        "SLUICE_MEDIA_QUEUE_MAX_BYTES=1MB",
        "SLUICE_RTMP_IDLE_TIMEOUT=90s",
        "SLUICE_RTMP_TCP_NODELAY=off",
        "sluice_rtmp_port=1",        /* not the SLUICE_ prefix: not ours */
        "SLUICE_Log_Format=JSON",    /* after the prefix, case does not matter */
        "SLUICE_SERVER_NODE_NAME=",  /* empty string */
        "SLUICE_APP_LIVE_PUBLISH=false",
        "SLUICE_BIN=/usr/local/bin/sluice",
        "SLUICE_CONFIG=/etc/sluice.yml",
        "SLUICE_NO_EQUALS_SIGN",
        NULL,
    };
    sl_config_t cfg;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    if (env(&cfg, envp, &errs) != 0)
        dump(&errs);
    assert_int_equal(errs.n, 0);
    assert_int_equal(sl_rtmp_cfg(&cfg)->port, 19350);
    assert_int_equal(cfg.log_level, SL_LOG_DEBUG);
    assert_string_equal(cfg.server_data_dir, "/tmp/x");
    assert_int_equal(cfg.media_queue_max_bytes, 1 * MB);
    assert_int_equal(sl_rtmp_cfg(&cfg)->idle_timeout_ms, 90000);
    assert_int_equal(sl_rtmp_cfg(&cfg)->tcp_nodelay, 0);
    assert_int_equal(cfg.log_format, 1);
    assert_string_equal(cfg.server_node_name, "");
    assert_int_equal(sl_config_app(&cfg, "live")->allow_publish, 0);
    assert_int_equal(sl_config_app(&cfg, "live")->allow_play, 1);
    assert_int_equal(cfg.n_apps, 1);
    /* No envp at all is fine. */
    assert_int_equal(env(&cfg, NULL, &errs), 0);
    sl_config_cleanup(&cfg);
}

static void test_env_errors(void **state)
{
    char *envp[] = {
        "SLUICE_RTMP_PROT=1",          /* typo */
        "SLUICE_RTMP_PORT=abc",        /* bad value */
        "SLUICE_RTMP_CHUNK_SIZE=1",    /* out of range */
        "SLUICE_SERVER_DATA_DIR=",     /* empty where not allowed */
        "SLUICE_APP_LIVE_PUBLSH=no",   /* per-app typo */
        "SLUICE_APP_LIVE_PLAY=sure",   /* per-app bad value */
        "SLUICE_APPS=ok1, bad name ,ok2",
        "SLUICE_APP_my.app_PLAY=true", /* invalid app name */
        "SLUICE_=1",
        "SLUICE_COMPLETELY_UNRELATED=1",
        NULL,
    };
    sl_config_t cfg;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(env(&cfg, envp, &errs), SL_EINVAL);
    if (errs.n != 10)
        dump(&errs);
    assert_int_equal(errs.n, 10);
    for (int i = 0; i < errs.n; i++)
        assert_int_equal(errs.e[i].line, 0);
    /* Pass 1: SLUICE_APPS. */
    assert_string_equal(errs.e[0].where, "SLUICE_APPS");
    assert_non_null(strstr(errs.e[0].msg, "invalid app name 'bad name'"));
    /* Pass 2: section settings and unknown variables, in envp order. */
    assert_string_equal(errs.e[1].where, "SLUICE_RTMP_PROT");
    assert_non_null(strstr(errs.e[1].msg, "unknown sluice variable (did you mean SLUICE_RTMP_PORT?)"));
    assert_string_equal(errs.e[2].where, "SLUICE_RTMP_PORT");
    assert_non_null(strstr(errs.e[2].msg, "rtmp.port: expected an integer, got 'abc'"));
    assert_string_equal(errs.e[3].where, "SLUICE_RTMP_CHUNK_SIZE");
    assert_non_null(strstr(errs.e[3].msg, "out of range (128..65536)"));
    assert_string_equal(errs.e[4].where, "SLUICE_SERVER_DATA_DIR");
    assert_non_null(strstr(errs.e[4].msg, "must not be empty"));
    assert_string_equal(errs.e[5].where, "SLUICE_");
    assert_string_equal(errs.e[6].where, "SLUICE_COMPLETELY_UNRELATED");
    assert_null(strstr(errs.e[6].msg, "did you mean"));
    /* Pass 3: per-app settings. */
    assert_string_equal(errs.e[7].where, "SLUICE_APP_LIVE_PUBLSH");
    assert_non_null(strstr(errs.e[7].msg, "(did you mean publish?)"));
    assert_string_equal(errs.e[8].where, "SLUICE_APP_LIVE_PLAY");
    assert_non_null(strstr(errs.e[8].msg, "apps.live.play: expected true or false"));
    assert_string_equal(errs.e[9].where, "SLUICE_APP_my.app_PLAY");
    assert_non_null(strstr(errs.e[9].msg, "invalid app name 'my.app'"));
    /* The valid parts were applied: both good names in SLUICE_APPS. */
    assert_non_null(sl_config_app(&cfg, "ok1"));
    assert_non_null(sl_config_app(&cfg, "ok2"));
    assert_int_equal(cfg.n_apps, 3);
    assert_int_equal(sl_rtmp_cfg(&cfg)->port, 1935);
    sl_config_cleanup(&cfg);
}

static void test_env_apps(void **state)
{
    /* Per-app variables come first in envp on purpose: the order must not matter. */
    char *envp[] = {
        "SLUICE_APP_STUDIO_PLAY=false",     /* matches "Studio" from SLUICE_APPS */
        "SLUICE_APP_NEWONE_ENABLED=false",  /* creates "newone" */
        "SLUICE_APP_live_play=off",         /* lower-case works too */
        "SLUICE_APP_MY_APP_PUBLISH=0",      /* names may hold '_' */
        "SLUICE_APPS=Studio,,vod , LIVE",   /* LIVE exists as live: left alone */
        NULL,
    };
    sl_config_t cfg;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    if (env(&cfg, envp, &errs) != 0)
        dump(&errs);
    assert_int_equal(errs.n, 0);
    /* live, Studio, vod, newone, my_app */
    assert_int_equal(cfg.n_apps, 5);
    assert_null(sl_config_app(&cfg, "LIVE"));
    const sl_app_config_t *studio = sl_config_app(&cfg, "Studio");
    assert_non_null(studio);
    assert_int_equal(studio->allow_play, 0);
    assert_int_equal(studio->allow_publish, 1);
    assert_non_null(sl_config_app(&cfg, "vod"));
    const sl_app_config_t *newone = sl_config_app(&cfg, "newone");
    assert_non_null(newone);
    assert_int_equal(newone->enabled, 0);
    assert_int_equal(sl_config_app(&cfg, "live")->allow_play, 0);
    const sl_app_config_t *my = sl_config_app(&cfg, "my_app");
    assert_non_null(my);
    assert_int_equal(my->allow_publish, 0);
    sl_config_cleanup(&cfg);
}

/* File first, then the environment over it: the order main uses. */
static void test_file_then_env(void **state)
{
    char *envp[] = {"SLUICE_RTMP_PORT=2000", "SLUICE_APP_STUDIO_PUBLISH=yes", NULL};
    sl_config_t cfg;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(load(&cfg, "rtmp: {port: 1000, chunk_size: 8192}\n"
                                "apps: {studio: {publish: false, play: false}}\n",
                          &errs), 0);
    assert_int_equal(env(&cfg, envp, &errs), 0);
    assert_int_equal(sl_rtmp_cfg(&cfg)->port, 2000);
    assert_int_equal(sl_rtmp_cfg(&cfg)->chunk_size, 8192);
    assert_int_equal(sl_config_app(&cfg, "studio")->allow_publish, 1);
    assert_int_equal(sl_config_app(&cfg, "studio")->allow_play, 0);
    sl_config_cleanup(&cfg);
}

/* Each setting remembers where it was set, for the checks that run after loading
 * (a missing key file is reported at the line that named it); the newest wins. */
static void test_origins(void **state)
{
    char *envp[] = {"SLUICE_RTMP_PORT=2000", NULL};
    sl_config_t cfg;
    errs_t errs;
    int line = -1;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(load(&cfg, "rtmp:\n"
                                "  port: 1000\n"
                                "  chunk_size: 8192\n"
                                "apps:\n"
                                "  studio:\n"
                                "    auth_simple: true\n",
                          &errs), 0);
    assert_string_equal(sl_config_origin(&cfg, "rtmp.chunk_size", &line), "test.yml");
    assert_int_equal(line, 3);
    assert_string_equal(sl_config_origin(&cfg, "apps.studio.auth_simple", &line), "test.yml");
    assert_int_equal(line, 6);
    assert_null(sl_config_origin(&cfg, "rtmp.bind", &line)); /* a default */
    assert_int_equal(line, 0);
    assert_int_equal(env(&cfg, envp, &errs), 0);
    assert_string_equal(sl_config_origin(&cfg, "rtmp.port", &line), "SLUICE_RTMP_PORT");
    assert_int_equal(line, 0);
    /* sl_config_report: at the origin with the key prefixed, or at the key itself. */
    memset(&errs, 0, sizeof errs);
    sl_config_report(&cfg, "rtmp.chunk_size", rec, &errs, "too %s", "big");
    sl_config_report(&cfg, "rtmp.bind", rec, &errs, "wrong");
    assert_int_equal(errs.n, 2);
    assert_string_equal(errs.e[0].where, "test.yml");
    assert_int_equal(errs.e[0].line, 3);
    assert_string_equal(errs.e[0].msg, "rtmp.chunk_size: too big");
    assert_string_equal(errs.e[1].where, "rtmp.bind");
    assert_string_equal(errs.e[1].msg, "wrong");
    sl_config_cleanup(&cfg);
}

/* ---- files ------------------------------------------------------------ */

static void test_load_file(void **state)
{
    sl_config_t cfg;
    errs_t errs;
    char path[] = "/tmp/sluice_config_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char yaml[] = "rtmp:\n  port: 1940\n  bogus: 1\n";
    assert_int_equal(write(fd, yaml, sizeof yaml - 1), (ssize_t)(sizeof yaml - 1));
    close(fd);

    assert_int_equal(sl_config_defaults(&cfg), 0);
    memset(&errs, 0, sizeof errs);
    assert_int_equal(sl_config_load_file(&cfg, path, rec, &errs), SL_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.e[0].where, path);
    assert_err(&errs, 0, 3, "unknown key 'rtmp.bogus'");
    assert_int_equal(sl_rtmp_cfg(&cfg)->port, 1940);
    unlink(path);

    memset(&errs, 0, sizeof errs);
    assert_int_equal(sl_config_load_file(&cfg, path, rec, &errs), UV_ENOENT);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.e[0].where, path);
    assert_err(&errs, 0, 0, "cannot open");
    sl_config_cleanup(&cfg);
}

/*
 * The written sluice.yml parses with no problem to exactly the defaults,
 * and it sets every key: loaded over a config where every setting differs
 * from its default, it brings every one of them back.
 */
static void test_writer_round_trip(void **state)
{
    char *envp[] = {
        "SLUICE_SERVER_DATA_DIR=/x", "SLUICE_SERVER_NODE_NAME=n", "SLUICE_SERVER_MAX_CONNECTIONS=7",
        "SLUICE_SERVER_SHUTDOWN_TIMEOUT=1s", "SLUICE_LOG_LEVEL=trace", "SLUICE_LOG_FORMAT=json",
        "SLUICE_RTMP_ENABLED=no", "SLUICE_RTMP_BIND=::", "SLUICE_RTMP_PORT=1",
        "SLUICE_RTMP_CHUNK_SIZE=128", "SLUICE_RTMP_MAX_CHUNK_SIZE=128",
        "SLUICE_RTMP_MAX_MESSAGE_SIZE=1k", "SLUICE_RTMP_HANDSHAKE_TIMEOUT=1s",
        "SLUICE_RTMP_IDLE_TIMEOUT=1s", "SLUICE_RTMP_AMF_MAX_DEPTH=1",
        "SLUICE_RTMP_WINDOW_ACK_SIZE=1k", "SLUICE_RTMP_PING_INTERVAL=0",
        "SLUICE_RTMP_TCP_NODELAY=no", "SLUICE_MEDIA_GOP_CACHE_MAX_BYTES=0",
        "SLUICE_MEDIA_QUEUE_MAX_BYTES=64k", "SLUICE_MEDIA_QUEUE_MAX_MS=100",
        "SLUICE_MEDIA_SLOW_DISCONNECT=1s", "SLUICE_MEDIA_WRITE_MERGE=1",
        "SLUICE_APP_LIVE_ENABLED=no", "SLUICE_APP_LIVE_PUBLISH=no", "SLUICE_APP_LIVE_PLAY=no",
        NULL,
    };
    sl_config_t cfg, def, one;
    errs_t errs;
    size_t len;
    char *yaml = write_to_string(sl_config_write_yaml, &len);
    assert_int_equal(sl_config_defaults(&def), 0);
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(env(&cfg, envp, &errs), 0);
    /* Each variable above changed something: undo one and cfg must differ. */
    for (size_t i = 0; envp[i]; i++) {
        char *only[] = {envp[i], NULL};
        assert_int_equal(sl_config_defaults(&one), 0);
        assert_int_equal(env(&one, only, &errs), 0);
        assert_false(sl_config_equal(&one, &def));
        sl_config_cleanup(&one);
    }
    assert_false(sl_config_equal(&cfg, &def));
    memset(&errs, 0, sizeof errs);
    assert_int_equal(sl_config_load_string(&cfg, yaml, len, "written.yml", rec, &errs), 0);
    assert_int_equal(errs.n, 0);
    assert_true(sl_config_equal(&cfg, &def));
    free(yaml);
    sl_config_cleanup(&def);
    sl_config_cleanup(&cfg);
}

static void test_equal(void **state)
{
    sl_config_t a, b;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&a), 0);
    assert_int_equal(sl_config_defaults(&b), 0);
    assert_true(sl_config_equal(&a, &b));
    assert_int_equal(load(&a, "apps: {x: {}, y: {}}\n", &errs), 0);
    assert_int_equal(load(&b, "apps: {y: {}, x: {}}\n", &errs), 0);
    assert_true(sl_config_equal(&a, &b)); /* app order does not matter */
    assert_int_equal(load(&b, "apps: {y: {play: off}}\n", &errs), 0);
    assert_false(sl_config_equal(&a, &b));
    assert_int_equal(load(&a, "apps: {y: {play: off}}\nserver: {node_name: q}\n", &errs), 0);
    assert_false(sl_config_equal(&a, &b));
    assert_int_equal(load(&b, "server: {node_name: q}\napps: {z: {}}\n", &errs), 0);
    assert_false(sl_config_equal(&a, &b)); /* app count */
    sl_config_cleanup(&a);
    sl_config_cleanup(&b);
}

/* ---- sections owned by their parts ------------------------------------ */

/* A part's own section, as a module declares it (see e.g. webhooks_config.c). */
typedef struct {
    int64_t depth;
    char *name;
} demo_config_t;

typedef struct {
    int on;
} demo_app_config_t;

static const sl_config_slot_t g_demo_slots[] = {
    {"depth", SL_CONFIG_INT, offsetof(demo_config_t, depth), "3", 1, 9, NULL, "Depth.", 0},
    {"name", SL_CONFIG_STRING, offsetof(demo_config_t, name), "x", 0, 9, NULL, "Name.",
     SL_CONFIG_RESTART},
};
static const sl_config_slot_t g_demo_app_slots[] = {
    {"demo_on", SL_CONFIG_BOOL, offsetof(demo_app_config_t, on), "false", 0, 0, NULL, "On.", 0},
};
static const sl_config_section_t g_demo_section = {
    .name = "demo",
    .doc = "A test section.",
    .size = sizeof(demo_config_t),
    .slots = g_demo_slots,
    .n_slots = 2,
    .app_size = sizeof(demo_app_config_t),
    .app_slots = g_demo_app_slots,
    .n_app_slots = 1,
};

/* A list of one section gets base's three first; other parts' keys are unknown. */
static void test_section_alone(void **state)
{
    const sl_config_section_t *list[] = {&g_demo_section};
    sl_config_t cfg;
    errs_t errs;
    assert_int_equal(sl_config_init(&cfg, list, 1), 0);
    const demo_config_t *d = sl_config_get(&cfg, &g_demo_section);
    assert_non_null(d);
    assert_int_equal(d->depth, 3);
    assert_string_equal(d->name, "x");
    assert_string_equal(cfg.server_data_dir, "./data");
    assert_null(sl_config_get(&cfg, &sl_rtmp_config_section));
    assert_int_equal(load(&cfg, "demo: {depth: 7}\napps: {a: {demo_on: yes, play: no}}\n", &errs),
                     0);
    assert_int_equal(d->depth, 7);
    const sl_app_config_t *a = sl_config_app(&cfg, "a");
    assert_non_null(a);
    assert_false(a->allow_play);
    assert_true(((const demo_app_config_t *)sl_config_app_get(a, &g_demo_section))->on);
    char *envp[] = {"SLUICE_DEMO_NAME=yz", "SLUICE_APP_LIVE_DEMO_ON=1", NULL};
    assert_int_equal(env(&cfg, envp, &errs), 0);
    assert_string_equal(d->name, "yz");
    assert_true(((const demo_app_config_t *)sl_config_app_get(sl_config_app(&cfg, "live"),
                                                              &g_demo_section))->on);
    assert_int_equal(load(&cfg, "rtmp: {port: 1}\ndemo: {depth: 10}\n", &errs), SL_EINVAL);
    assert_int_equal(errs.n, 2);
    assert_err(&errs, 0, 1, "unknown section 'rtmp'");
    assert_err(&errs, 1, 2, "demo.depth");
    assert_int_equal(sl_config_int(&cfg, "demo.depth"), 7);
    assert_string_equal(sl_config_str(&cfg, "demo.name"), "yz");
    sl_config_cleanup(&cfg);
    /* A section listed twice is a programming error. */
    const sl_config_section_t *twice[] = {&g_demo_section, &g_demo_section};
    assert_int_equal(sl_config_init(&cfg, twice, 2), SL_EINVAL);
    sl_config_cleanup(&cfg);
}

typedef struct {
    char keys[8][96];
    int kind[8];
    int n;
} changes_t;

static void on_change(void *ud, sl_config_diff_t kind, const char *key)
{
    changes_t *c = ud;
    if (c->n < 8) {
        snprintf(c->keys[c->n], sizeof c->keys[c->n], "%s", key);
        c->kind[c->n] = (int)kind;
    }
    c->n++;
}

/* What changed between two configurations, and which of it needs a restart. */
static void test_diff_and_restart(void **state)
{
    sl_config_t a, b;
    errs_t errs;
    changes_t ch = {.n = 0};
    assert_int_equal(sl_config_defaults(&a), 0);
    assert_int_equal(sl_config_defaults(&b), 0);
    assert_int_equal(sl_config_diff(&a, &b, on_change, &ch), 0);
    assert_int_equal(load(&a, "apps: {old: {}}\n", &errs), 0);
    assert_int_equal(load(&b, "rtmp: {port: 1999, idle_timeout: 9s}\n"
                              "webhooks: {url: 'http://h/'}\n"
                              "apps: {live: {hls: off}, new: {}}\n", &errs), 0);
    assert_int_equal(sl_config_diff(&a, &b, on_change, &ch), 6);
    assert_int_equal(ch.n, 6);
    assert_string_equal(ch.keys[0], "rtmp.port");
    assert_string_equal(ch.keys[1], "rtmp.idle_timeout");
    assert_string_equal(ch.keys[2], "webhooks.url");
    assert_string_equal(ch.keys[3], "apps.live.hls");
    assert_int_equal(ch.kind[3], SL_CONFIG_DIFF_CHANGED);
    assert_string_equal(ch.keys[4], "apps.old");
    assert_int_equal(ch.kind[4], SL_CONFIG_DIFF_APP_REMOVED);
    assert_string_equal(ch.keys[5], "apps.new");
    assert_int_equal(ch.kind[5], SL_CONFIG_DIFF_APP_ADDED);
    assert_int_equal(sl_config_slot_needs_restart(&a, "rtmp.port"), 1);
    assert_int_equal(sl_config_slot_needs_restart(&a, "rtmp.idle_timeout"), 0);
    assert_int_equal(sl_config_slot_needs_restart(&a, "server.data_dir"), 1);
    assert_int_equal(sl_config_slot_needs_restart(&a, "http.tls_cert"), 1);
    assert_int_equal(sl_config_slot_needs_restart(&a, "webhooks.url"), 0);
    assert_int_equal(sl_config_slot_needs_restart(&a, "apps.any.record"), 0);
    assert_int_equal(sl_config_slot_needs_restart(&a, "rtmp.nope"), -1);
    assert_int_equal(sl_config_slot_needs_restart(&a, "nope"), -1);
    assert_int_equal(sl_config_int(&b, "rtmp.port"), 1999);
    assert_int_equal(sl_config_int(&b, "rtmp.enabled"), 1);
    assert_string_equal(sl_config_str(&b, "webhooks.url"), "http://h/");
    assert_int_equal(sl_rtmp_cfg(&b)->port, 1999);
    /* Reload keeps a restart-only key at its running value. */
    assert_int_equal(sl_config_copy_key(&b, &a, "rtmp.port"), 0);
    assert_int_equal(sl_rtmp_cfg(&b)->port, 1935);
    assert_int_equal(sl_config_copy_key(&b, &a, "webhooks.url"), 0);
    assert_string_equal(sl_config_str(&b, "webhooks.url"), "");
    assert_int_equal(sl_config_copy_key(&b, &a, "rtmp.nope"), SL_ENOTFOUND);
    assert_int_equal(sl_config_copy_key(&b, &a, "apps.live.hls"), SL_ENOTFOUND);
    sl_config_cleanup(&a);
    sl_config_cleanup(&b);
}

/* The generated docs cover every setting the round trip above exercises. */
static void test_markdown_lists_every_env_variable(void **state)
{
    static const char *const vars[] = {
        "SLUICE_SERVER_DATA_DIR", "SLUICE_SERVER_NODE_NAME", "SLUICE_SERVER_MAX_CONNECTIONS",
        "SLUICE_SERVER_SHUTDOWN_TIMEOUT", "SLUICE_LOG_LEVEL", "SLUICE_LOG_FORMAT",
        "SLUICE_RTMP_ENABLED", "SLUICE_RTMP_BIND", "SLUICE_RTMP_PORT", "SLUICE_RTMP_CHUNK_SIZE",
        "SLUICE_RTMP_MAX_CHUNK_SIZE", "SLUICE_RTMP_MAX_MESSAGE_SIZE",
        "SLUICE_RTMP_HANDSHAKE_TIMEOUT", "SLUICE_RTMP_IDLE_TIMEOUT", "SLUICE_RTMP_AMF_MAX_DEPTH",
        "SLUICE_RTMP_WINDOW_ACK_SIZE", "SLUICE_RTMP_PING_INTERVAL", "SLUICE_RTMP_TCP_NODELAY",
        "SLUICE_MEDIA_GOP_CACHE_MAX_BYTES", "SLUICE_MEDIA_QUEUE_MAX_BYTES",
        "SLUICE_MEDIA_QUEUE_MAX_MS", "SLUICE_MEDIA_SLOW_DISCONNECT", "SLUICE_MEDIA_WRITE_MERGE",
        "SLUICE_APP_<NAME>_ENABLED", "SLUICE_APP_<NAME>_PUBLISH", "SLUICE_APP_<NAME>_PLAY",
    };
    size_t len;
    char *md = write_to_string(sl_config_write_markdown, &len);
    char *yml = write_to_string(sl_config_write_yaml, &len);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        char cell[80];
        snprintf(cell, sizeof cell, "| `%s` |", vars[i]);
        if (!strstr(md, cell) || !strstr(yml, vars[i])) {
            print_message("%s missing from the generated docs\n", vars[i]);
            fail();
        }
    }
    free(md);
    free(yml);
}

#ifdef SL_SOURCE_DIR
/* Reads a whole file into a malloc'd, NUL-terminated buffer (libc: not counted). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The shipped sluice.yml loads with no problem to exactly the defaults. */
static void test_shipped_yaml_is_defaults(void **state)
{
    sl_config_t cfg, def;
    errs_t errs;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(sl_config_defaults(&def), 0);
    memset(&errs, 0, sizeof errs);
    int rc = sl_config_load_file(&cfg, SL_SOURCE_DIR "/sluice.yml", rec, &errs);
    if (rc != 0)
        dump(&errs);
    assert_int_equal(rc, 0);
    assert_int_equal(errs.n, 0);
    assert_true(sl_config_equal(&cfg, &def));
    sl_config_cleanup(&def);
    sl_config_cleanup(&cfg);
}

/* Compares a shipped file with a writer's output, byte for byte. */
static void assert_file_is(const char *path, void (*writer)(FILE *), const char *regen)
{
    size_t want_len, have_len;
    char *want = write_to_string(writer, &want_len);
    char *have = slurp(path, &have_len);
    if (!have || have_len != want_len || memcmp(have, want, want_len) != 0) {
        print_message("%s differs from the config table; regenerate it with `%s`\n", path, regen);
        fail();
    }
    free(want);
    free(have);
}

static void test_shipped_files_match_writers(void **state)
{
    assert_file_is(SL_SOURCE_DIR "/sluice.yml", sl_config_write_yaml,
                   "sluice --print-config yaml > sluice.yml");
    assert_file_is(SL_SOURCE_DIR "/docs/config.md", sl_config_write_markdown,
                   "sluice --print-config markdown > docs/config.md");
}
#endif

/* ---- allocation failure ----------------------------------------------- */

/*
 * With SL_FAULT_INJECTION, fails the 1st, 2nd, ... allocation of a full
 * defaults + load + env sequence until one run gets through: every failure
 * must come back as SL_ENOMEM and leave nothing allocated after cleanup.
 */
static void test_alloc_failures(void **state)
{
    static const char yaml[] = "server: {data_dir: /srv, node_name: edge}\n"
                               "rtmp: {bind: 127.0.0.1, port: 1}\n"
                               "apps: {a: {}, b: {play: no}, c: {}}\n";
    char *envp[] = {"SLUICE_RTMP_BIND=::1", "SLUICE_APPS=d,e", "SLUICE_APP_F_PLAY=no", NULL};
    if (!sl_alloc_fail_at(0, 0))
        skip();
    for (uint64_t n = 1; n < 1000; n++) {
        sl_config_t cfg;
        int64_t before = sl_alloc_bytes();
        uint64_t failed = sl_alloc_failed_count();
        sl_alloc_fail_at(n, 1);
        int rc = sl_config_defaults(&cfg);
        if (rc == 0)
            rc = sl_config_load_string(&cfg, yaml, sizeof yaml - 1, "f.yml", NULL, NULL);
        if (rc == 0)
            rc = sl_config_apply_env(&cfg, envp, NULL, NULL);
        sl_alloc_fail_at(0, 0);
        sl_config_cleanup(&cfg);
        assert_int_equal(sl_alloc_bytes(), before);
        if (sl_alloc_failed_count() == failed) {
            assert_int_equal(rc, 0);
            return; /* nothing failed: every allocation has been tried */
        }
        assert_int_equal(rc, SL_ENOMEM);
    }
    fail_msg("more than 1000 allocations for a small config");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_enums),
        T(test_sizes),
        T(test_durations),
        T(test_bools),
        T(test_ints_and_strings),
        T(test_out_of_range),
        T(test_yaml_overrides),
        T(test_all_errors_with_lines),
        T(test_syntax_errors),
        T(test_yaml_shapes),
        T(test_hostile_input),
        T(test_apps_yaml),
        T(test_apps_cap),
        T(test_env_overrides),
        T(test_env_errors),
        T(test_env_apps),
        T(test_file_then_env),
        T(test_origins),
        T(test_load_file),
        T(test_writer_round_trip),
        T(test_equal),
        T(test_section_alone),
        T(test_diff_and_restart),
        T(test_markdown_lists_every_env_variable),
#ifdef SL_SOURCE_DIR
        T(test_shipped_yaml_is_defaults),
        T(test_shipped_files_match_writers),
#endif
        T(test_alloc_failures),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
