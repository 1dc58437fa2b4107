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

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Hard caps (STYLE: every parser has a maximum input size and depth). */
#define SL_CONFIG_MAX_APPS 1024                 /* apps in one configuration */
#define SL_CONFIG_APP_NAME_MAX 64               /* app names: [A-Za-z0-9_-]{1,64} */
#define SL_CONFIG_MAX_INPUT_BYTES (1024 * 1024) /* largest sluice.yml accepted */
#define SL_CONFIG_MAX_DEPTH 64                  /* deepest YAML nesting accepted */

typedef struct sl_app_config {
    char *name;            /* app (scope) name, e.g. "live"; owned */
    int enabled;           /* 0 = app refused like an unknown one */
    int allow_publish;     /* publishing allowed at all */
    int allow_play;        /* playing allowed at all */
    int auth_simple;       /* check auth.simple_file */
    int auth_jwt;          /* require a JWT */
    int auth_roundtrip;    /* round-trip validate at publish/play */
    char *auth_protocols;  /* protocols the auth checks apply to; "*" = all */
    char *webhook_url;     /* extra webhook endpoints for this app */
    int hls;               /* serve live streams as HLS */
    int64_t hls_segment_ms;/* target segment length (Red5 itemLength) */
    int64_t hls_window;    /* segments in the live playlist (Red5 itemCount) */
    int64_t hls_format;    /* sl_hls_format_t: 0 ts, 1 fmp4 */
    int hls_low_latency;   /* LL-HLS: parts, blocking reload (implies fmp4) */
    int64_t hls_part_ms;   /* LL-HLS part target */
    int hls_disk;          /* also write segments and playlists to data_dir */
    int httpflv;           /* serve live streams as HTTP-FLV */
    int record;            /* record every stream published to this app */
    char *record_pattern;  /* file name for policy recordings ({name}, strftime); "" = stream name */
    int64_t record_max_age_ms;  /* the cleaner deletes recordings older than this; 0 = keep */
    int64_t record_max_bytes;   /* the cleaner keeps the app's recordings under this; 0 = no quota */
    int64_t record_format;      /* sl_record_format_t: container of recordings without an extension */
} sl_app_config_t;

/* Values of sl_app_config_t.hls_format (the order of the names in config.c). */
typedef enum {
    SL_HLS_FORMAT_TS = 0,
    SL_HLS_FORMAT_FMP4 = 1,
} sl_hls_format_t;

/* Values of sl_app_config_t.record_format (the order of the names in config.c). */
typedef enum {
    SL_RECORD_FORMAT_FLV = 0,
    SL_RECORD_FORMAT_MP4 = 1, /* fragmented MP4 */
} sl_record_format_t;

/*
 * plugins: one entry of the `plugins:` list (a list, not slots: each entry
 * names a shared object to dlopen; src/modules/plugins loads them). The
 * origin of entry i is recorded under the key "plugins.<name>".
 */
typedef struct sl_plugin_config {
    char *name;            /* unique name, [A-Za-z0-9_-]{1,64}; owned */
    char *path;            /* the shared object (.so); owned */
    char **apps;           /* apps it serves (owned strings); none = every app */
    size_t n_apps;
    char **settings;       /* free settings as key, value pairs (2 * n_settings strings) */
    size_t n_settings;
    int line;              /* where the entry starts in its file (0: not from a file) */
} sl_plugin_config_t;

#define SL_CONFIG_MAX_PLUGINS 64          /* entries of `plugins:` */
#define SL_CONFIG_MAX_PLUGIN_SETTINGS 256 /* settings of one plugin */

/* Where one setting was last set (see sl_config_origin). */
typedef struct sl_config_origin {
    char *key;   /* "auth.simple_file" or "apps.live.auth_simple"; owned */
    char *where; /* the file or the SLUICE_* variable that set it; owned */
    int line;    /* 1-based line in the file; 0 for a variable */
} sl_config_origin_t;

typedef struct sl_config {
    /* server */
    char *server_data_dir;             /* data folder (SQLite, recordings) */
    char *server_node_name;            /* this node's name in events and logs */
    int64_t server_max_connections;    /* all protocols together */
    int64_t server_max_connections_per_address; /* from one remote address, 0 = no limit */
    int64_t server_max_pending_connections;     /* not yet admitted; 0 = max_connections / 4 */
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
    int64_t rtmp_max_partial_bytes;    /* per connection after connect: half-received bytes */
    int64_t rtmp_max_partial_bytes_before_connect; /* the same until connect is admitted */
    int64_t rtmp_max_partial_messages; /* per connection: messages half received at once */
    int64_t rtmp_max_partial_bytes_total; /* whole server: half-received bytes */
    int64_t rtmp_max_control_bytes_before_connect; /* queued replies until connect is admitted */
    int64_t rtmp_handshake_timeout_ms;
    int64_t rtmp_connect_timeout_ms;   /* accept to connect command: close */
    int64_t rtmp_idle_timeout_ms;      /* no bytes in for this long: close */
    int64_t rtmp_amf_max_depth;        /* AMF nesting limit */
    int64_t rtmp_window_ack_size;      /* window we announce */
    int64_t rtmp_ping_interval_ms;     /* 0 = never ping */
    int rtmp_tcp_nodelay;
    int64_t rtmp_tls_port;             /* RTMPS listener port; 0 = no RTMPS */
    char *rtmp_tls_bind;               /* RTMPS listen address; "" = rtmp_bind */
    char *rtmp_tls_cert;               /* PEM certificate (chain) for RTMPS; "" = http_tls_cert */
    char *rtmp_tls_key;                /* PEM private key for RTMPS; "" = http_tls_key */
    /* media */
    int64_t media_gop_cache_max_bytes; /* per stream; 0 disables the GOP cache */
    int64_t media_queue_max_bytes;     /* per subscriber queue bound */
    int64_t media_queue_max_ms;        /* per subscriber queue bound in media time */
    int64_t media_slow_disconnect_ms;  /* lagging this long after drops: disconnect */
    int64_t media_write_merge_ms;      /* 0 = write at once; else batch window */
    int64_t media_audio_hold_ms;       /* audio waits for video at most this; 0 = off */
    /* http */
    int http_enabled;
    char *http_bind;                   /* listen address */
    int64_t http_port;
    int64_t http_max_header_bytes;     /* request head limit (431) */
    int64_t http_max_headers;          /* header count limit (431) */
    int64_t http_max_body_bytes;       /* body limit (413) */
    int64_t http_max_url_bytes;        /* URL limit (414) */
    int64_t http_header_timeout_ms;    /* slow request head: 408 */
    int64_t http_request_timeout_ms;   /* whole request (head and body): 408 */
    int64_t http_idle_timeout_ms;      /* idle keep-alive close */
    char *http_cors_origin;            /* "" disables CORS */
    char *http_web_root;               /* static pages folder */
    int64_t http_ws_max_message_bytes;
    int64_t http_stream_max_pending_bytes;
    char *http_tls_cert;               /* PEM certificate (chain) file; "" = no HTTPS */
    char *http_tls_key;                /* PEM private key file; "" = no HTTPS */
    int64_t http_tls_port;             /* HTTPS listener port */
    char *http_tls_bind;               /* HTTPS listen address; "" = http_bind */
    /* hls */
    int64_t hls_session_timeout_ms;    /* an HLS player silent this long has left */
    int64_t hls_max_sessions;          /* HLS sessions in all (not connections) */
    int64_t hls_max_sessions_per_address; /* HLS sessions from one remote address */
    /* api */
    char *api_access_token;            /* "" = generated, kept in data_dir/api_token */
    char *api_hosts;                   /* allow-list, "*" = any */
    int64_t api_auth_fail_limit;       /* failures per address per minute */
    int64_t api_auth_fail_max_addrs;   /* failure records kept (oldest evicted) */
    int api_metrics_public;            /* /metrics without token */
    /* auth */
    char *auth_simple_file;
    char *auth_jwt_secret;
    char *auth_jwt_public_key_file;
    char *auth_jwt_jwks_file;
    char *auth_jwt_issuer;
    char *auth_jwt_audience;
    int64_t auth_jwt_leeway_ms;
    char *auth_roundtrip_validate_url;
    char *auth_roundtrip_invalidate_url;
    int64_t auth_roundtrip_timeout_ms;
    int64_t auth_roundtrip_default;    /* 0 deny, 1 allow */
    int auth_roundtrip_lazy;
    /* webhooks */
    char *webhooks_url;
    char *webhooks_secret;
    char *webhooks_events;
    int64_t webhooks_timeout_ms;
    int64_t webhooks_retry_max_ms;
    int64_t webhooks_retention_ms;     /* delivered rows kept this long; 0 = forever */
    /* exec hooks */
    char *exec_on_connect;
    char *exec_on_disconnect;
    char *exec_on_publish;
    char *exec_on_unpublish;
    char *exec_on_play;
    char *exec_on_play_stop;
    char *exec_on_record_done;
    int64_t exec_timeout_ms;
    int64_t exec_max_concurrent;
    int exec_shell;
    /* recorder */
    int64_t recorder_queue_max_bytes;  /* per recording: bytes waiting for the disk */
    /* cleaner */
    int64_t cleaner_interval_ms;       /* time between two sweeps */
    /* s3 (cloud upload of finished recordings) */
    char *s3_endpoint;                 /* "http(s)://host[:port]"; "" = no upload */
    char *s3_bucket;
    char *s3_region;
    char *s3_access_key;
    char *s3_secret_key;
    int64_t s3_part_size;              /* multipart above this size */
    int s3_delete_after_upload;        /* Red5 delete.recordings */
    int64_t s3_retry_max_ms;           /* longest wait between two attempts */
    int64_t s3_timeout_ms;             /* one HTTP request */
    /* apps */
    sl_app_config_t *apps;             /* owned array */
    size_t n_apps;
    /* plugins (in load order) */
    sl_plugin_config_t *plugins;       /* owned array */
    size_t n_plugins;
    /* where each setting that is not a default came from (for file:line in
     * the checks that run after loading); not a setting, ignored by equal */
    sl_config_origin_t *origins;       /* owned array, newest last */
    size_t n_origins, cap_origins;
} sl_config_t;

/* Reports one problem; line is 0 when not tied to a line (env, general). */
typedef void (*sl_config_err_cb)(void *ud, const char *where, int line, const char *msg);

/**
 * Fills cfg with every default (including the `live` app). cfg need not be
 * initialised; anything it held is overwritten, not freed. 0 or SL_ENOMEM
 * (then cfg is left empty and safe to pass to sl_config_cleanup).
 */
int sl_config_defaults(sl_config_t *cfg);
/**
 * Loads a YAML file over the current values. Every problem (unknown
 * section or key, duplicate key, wrong type, out of range, invalid app name,
 * YAML syntax) is reported through err (may be NULL) with its 1-based line,
 * and loading goes on to find the rest; a YAML syntax error ends the parse
 * (libyaml cannot resume) after what came before it was applied. YAML keys
 * are case-sensitive. Returns 0 when there were no problems, SL_EINVAL when
 * there were (including a file over SL_CONFIG_MAX_INPUT_BYTES), SL_ENOMEM,
 * or a negative errno (libuv style, e.g. UV_ENOENT) / SL_EIO if the file
 * can't be read. On error cfg holds a mix of old and new values: still
 * valid for sl_config_cleanup, not meant to be used.
 */
int sl_config_load_file(sl_config_t *cfg, const char *path, sl_config_err_cb err, void *ud);
/** Same, from a string (tests, fuzzing). `where` names it in messages. */
int sl_config_load_string(sl_config_t *cfg, const char *yaml, size_t len, const char *where,
                          sl_config_err_cb err, void *ud);
/**
 * Applies SLUICE_* overrides from envp (NULL-terminated "NAME=value"
 * strings, e.g. environ; borrowed). Rules (names after "SLUICE_" are
 * matched without regard to case):
 *  - SLUICE_<SECTION>_<KEY>: one setting, e.g. SLUICE_RTMP_PORT=19350.
 *  - SLUICE_APPS=a,b: adds apps (names as written, blanks trimmed); an app
 *    that exists under any case is left as it is.
 *  - SLUICE_APP_<NAME>_<KEY>: one per-app setting, e.g.
 *    SLUICE_APP_LIVE_PUBLISH=false. NAME is matched case-insensitively
 *    against existing apps; if none matches, the app is created with the
 *    lower-cased NAME and default settings.
 *  - SLUICE_BIN and SLUICE_CONFIG are reserved for the launcher and ignored.
 *  - Any other SLUICE_ variable is reported as unknown (typos are caught).
 * The three kinds are applied in that order (SLUICE_APPS first, per-app
 * last) whatever their order in envp. Problems are reported with the
 * variable name as `where` and line 0. Same returns as sl_config_load_file.
 */
int sl_config_apply_env(sl_config_t *cfg, char *const *envp, sl_config_err_cb err, void *ud);
/** Frees everything cfg owns and zeroes it; cfg may then be filled again. */
void sl_config_cleanup(sl_config_t *cfg);
/** Finds an enabled-or-not app by exact name; NULL when absent. Borrowed. */
const sl_app_config_t *sl_config_app(const sl_config_t *cfg, const char *name);
/**
 * True (1) when every setting of a and b is equal, apps compared by name
 * whatever their order; 0 otherwise. Driven by the same slot tables, so it
 * never misses a setting (tests; later, telling what a reload changed).
 */
int sl_config_equal(const sl_config_t *a, const sl_config_t *b);
/**
 * Where key ("section.key" or "apps.<name>.<key>") was last set: returns the
 * file or SLUICE_* variable (borrowed, valid until cfg is cleaned up) and
 * its line in *line (0 for a variable; line may be NULL), or NULL when the
 * setting holds its default.
 */
const char *sl_config_origin(const sl_config_t *cfg, const char *key, int *line);
/**
 * Reports a problem found after loading (a file that cannot be read, a URL
 * with the wrong scheme...) against the place that set key: err receives
 * that file and line (or the variable, line 0), or key itself when the
 * setting holds its default; the message is "key: " + fmt. err may be NULL.
 */
void sl_config_report(const sl_config_t *cfg, const char *key, sl_config_err_cb err, void *ud,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/** Writes the fully commented default sluice.yml generated from the tables. */
void sl_config_write_yaml(FILE *out);
/** Writes docs/config.md (a table of every key) generated from the tables. */
void sl_config_write_markdown(FILE *out);

#endif
