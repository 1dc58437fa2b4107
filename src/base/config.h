/*
 * The configuration: one typed struct, filled from a table of slots.
 *
 * Each setting is a slot (section, key, type, offset into sl_config_t,
 * default, bounds, one-line doc). The same table drives the defaults, the
 * YAML loader (sluice.yml), the SLUICE_<SECTION>_<KEY> environment
 * overrides, the shipped sluice.yml and docs/config.md, so none of them can
 * disagree. Apps are a YAML mapping under `apps:` (name -> per-app slots,
 * from a second table); an app named there exists, `live` exists unless the
 * file says `live: {enabled: false}`.
 *
 * Loading happens once at start on the main thread; the struct is then
 * read-only for the life of the process.
 */
#ifndef SL_BASE_CONFIG_H
#define SL_BASE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

typedef struct sl_app_config {
    char *name;            /* app (scope) name, e.g. "live"; owned */
    int enabled;           /* 0 = app refused like an unknown one */
    int allow_publish;     /* publishing allowed at all */
    int allow_play;        /* playing allowed at all */
} sl_app_config_t;

typedef struct sl_config {
    /* server */
    char *server_data_dir;             /* data folder (SQLite, recordings) */
    char *server_node_name;            /* this node's name in events and logs */
    int64_t server_max_connections;    /* all protocols together */
    int64_t server_shutdown_timeout_ms;/* graceful shutdown deadline */
    /* log */
    int64_t log_level;                 /* sl_log_level_t */
    int64_t log_format;                /* 0 text, 1 json */
    /* rtmp */
    int rtmp_enabled;
    char *rtmp_bind;                   /* listen address */
    int64_t rtmp_port;
    int64_t rtmp_chunk_size;           /* outgoing chunk size we announce */
    int64_t rtmp_max_chunk_size;       /* largest incoming chunk size accepted */
    int64_t rtmp_max_message_size;     /* largest incoming message accepted */
    int64_t rtmp_handshake_timeout_ms;
    int64_t rtmp_idle_timeout_ms;      /* no bytes in for this long: close */
    int64_t rtmp_amf_max_depth;        /* AMF nesting limit */
    int64_t rtmp_window_ack_size;      /* window we announce */
    int64_t rtmp_ping_interval_ms;     /* 0 = never ping */
    int rtmp_tcp_nodelay;
    /* media */
    int64_t media_gop_cache_max_bytes; /* per stream; 0 disables the GOP cache */
    int64_t media_queue_max_bytes;     /* per subscriber queue bound */
    int64_t media_queue_max_ms;        /* per subscriber queue bound in media time */
    int64_t media_slow_disconnect_ms;  /* lagging this long after drops: disconnect */
    int64_t media_write_merge_ms;      /* 0 = write at once; else batch window */
    /* apps */
    sl_app_config_t *apps;             /* owned array */
    size_t n_apps;
} sl_config_t;

/* Reports one problem; line is 0 when not tied to a line (env, general). */
typedef void (*sl_config_err_cb)(void *ud, const char *where, int line, const char *msg);

/** Fills cfg with every default (including the `live` app). 0 or SL_ENOMEM. */
int sl_config_defaults(sl_config_t *cfg);
/**
 * Loads a YAML file over the current values. Every problem (unknown key,
 * wrong type, out of range, YAML syntax) is reported through err with its
 * line, and loading goes on to find the rest. Returns 0 when there were no
 * problems, SL_EINVAL when there were, an I/O code if the file can't be read.
 */
int sl_config_load_file(sl_config_t *cfg, const char *path, sl_config_err_cb err, void *ud);
/** Same, from a string (tests, fuzzing). `where` names it in messages. */
int sl_config_load_string(sl_config_t *cfg, const char *yaml, size_t len, const char *where,
                          sl_config_err_cb err, void *ud);
/**
 * Applies SLUICE_<SECTION>_<KEY> overrides from envp (NULL-terminated,
 * e.g. environ). Unknown SLUICE_ variables are reported. Same returns.
 */
int sl_config_apply_env(sl_config_t *cfg, char *const *envp, sl_config_err_cb err, void *ud);
/** Frees everything cfg owns; cfg may then be filled again. */
void sl_config_cleanup(sl_config_t *cfg);
/** Finds an enabled-or-not app by name; NULL when absent. Borrowed. */
const sl_app_config_t *sl_config_app(const sl_config_t *cfg, const char *name);
/** Writes the fully commented default sluice.yml generated from the tables. */
void sl_config_write_yaml(FILE *out);
/** Writes docs/config.md (a table of every key) generated from the tables. */
void sl_config_write_markdown(FILE *out);

#endif
