/*
 * The configuration engine: typed structs filled from tables of slots.
 *
 * Each setting is a slot (key, type, offset into its owner's struct,
 * default, bounds, one-line doc, flags). Slots come in sections
 * (sl_config_section_t): base owns the process-wide ones (server, log,
 * media, whose values are fields of sl_config_t); every protocol and module
 * declares its own section with its own struct (and optionally per-app
 * slots with a per-app struct), and the process hands the whole list to
 * sl_config_init before loading. The same tables drive the defaults, the
 * YAML loader (sluice.yml), the SLUICE_<SECTION>_<KEY> environment
 * overrides, the shipped sluice.yml and docs/config.md, so none of them can
 * disagree. Apps are a YAML mapping under `apps:` (name -> per-app slots of
 * every section); an app named there exists, `live` exists unless the file
 * says `live: {enabled: false}`.
 *
 * An owner reads its block with sl_config_get(cfg, &its_section) and an
 * app's block with sl_config_app_get(app, &its_section).
 *
 * Loading happens on the main (loop) thread, at start and on reload; a
 * loaded struct is then read-only. Reload (main.c) loads a new struct and
 * swaps the core's pointer; old structs stay allocated until exit, because
 * sessions and modules borrow pointers into them (apps, strings).
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
#define SL_CONFIG_MAX_SECTIONS 32               /* sections in one configuration */
#define SL_CONFIG_MAX_SLOTS 128                 /* slots of one section; per-app slots in all */

/* Units for slot bounds in the tables. */
#define SL_CONFIG_KB 1024LL
#define SL_CONFIG_MB (1024LL * SL_CONFIG_KB)
#define SL_CONFIG_GB (1024LL * SL_CONFIG_MB)
#define SL_CONFIG_SEC 1000LL
#define SL_CONFIG_MINUTE (60LL * SL_CONFIG_SEC)
#define SL_CONFIG_HOUR (60LL * SL_CONFIG_MINUTE)

/* The type of a slot, which says the C type of its field. */
typedef enum {
    SL_CONFIG_INT,      /* int64_t, decimal integer */
    SL_CONFIG_BOOL,     /* int 0/1: true/false, yes/no, on/off, 1/0 */
    SL_CONFIG_STRING,   /* char *, owned; min/max bound the length in bytes */
    SL_CONFIG_SIZE,     /* int64_t bytes: 4096, 64k, 16MB, 1g (powers of 1024) */
    SL_CONFIG_DURATION, /* int64_t milliseconds: 500ms, 5s, 2m, 1h; plain = ms */
    SL_CONFIG_ENUM,     /* int64_t index into names */
} sl_config_type_t;

/* Slot flags. */
#define SL_CONFIG_RESTART 1u /* takes effect only after a restart (listeners, data_dir...) */

/* One setting: a line of a section's table. */
typedef struct sl_config_slot {
    const char *key;          /* YAML key, lower_snake_case */
    sl_config_type_t type;
    size_t offset;            /* into the section's struct (or sl_config_t / sl_app_config_t
                                 for base's sections, whose size is 0) */
    const char *def;          /* default, as a user would write it */
    int64_t min, max;         /* inclusive bounds; string length; unused for bool/enum */
    const char *const *names; /* SL_CONFIG_ENUM: value names, NULL-terminated */
    const char *doc;          /* one line for sluice.yml and docs/config.md */
    unsigned flags;           /* SL_CONFIG_RESTART... */
} sl_config_slot_t;

/*
 * A section: the settings one part of the process owns. `name` is the YAML
 * section (SLUICE_<NAME>_<KEY>); a section with no slots (only per-app
 * ones) is not a YAML section and may have a NULL name. The engine
 * allocates a zeroed block of `size` bytes per configuration and one of
 * `app_size` bytes per app, fills them with defaults and frees their string
 * slots; size 0 (base's own sections only) means the offsets are into
 * sl_config_t (app_size 0: into sl_app_config_t). Descriptors are const and
 * static; their address is the key of sl_config_get.
 */
typedef struct sl_config_section {
    const char *name;                 /* YAML section, e.g. "webhooks"; NULL = per-app only */
    const char *doc;                  /* heading of the section in sluice.yml and config.md */
    size_t size;                      /* bytes of the owner's struct */
    const sl_config_slot_t *slots;    /* the section's settings, in file order */
    size_t n_slots;
    size_t app_size;                  /* bytes of the owner's per-app struct; 0 = none */
    const sl_config_slot_t *app_slots;/* per-app settings (apps.<name>.<key>) */
    size_t n_app_slots;
} sl_config_section_t;

typedef struct sl_app_config {
    char *name;            /* app (scope) name, e.g. "live"; owned */
    int enabled;           /* 0 = app refused like an unknown one */
    int allow_publish;     /* publishing allowed at all */
    int allow_play;        /* playing allowed at all */
    /* the per-app blocks of the sections (see sl_config_app_get) */
    const sl_config_section_t *const *sections; /* the configuration's list; borrowed */
    size_t n_sections;
    void **blocks;         /* one per section, NULL when it has no per-app slots; owned */
} sl_app_config_t;

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
    int64_t server_workers;            /* event-loop threads, the main loop included; 0 = one per
                                          core (net/workers.h, docs/internals/threads.md) */
    /* log */
    int64_t log_level;                 /* sl_log_level_t */
    int64_t log_format;                /* 0 text, 1 json */
    /* media */
    int64_t media_gop_cache_max_bytes; /* per stream; 0 disables the GOP cache */
    int64_t media_queue_max_bytes;     /* per subscriber queue bound */
    int64_t media_queue_max_ms;        /* per subscriber queue bound in media time */
    int64_t media_slow_disconnect_ms;  /* lagging this long after drops: disconnect */
    int64_t media_write_merge_ms;      /* 0 = write at once; else batch window */
    int64_t media_audio_hold_ms;       /* audio waits for video at most this; 0 = off */
    /* the sections in file order (the core's per-app keys first, base's
     * server/log/media, the caller's; see sl_config_init) and their
     * blocks, one per section, NULL for base's own (size 0) */
    const sl_config_section_t **sections; /* owned array of borrowed descriptors */
    size_t n_sections;
    void **blocks;                     /* owned array of owned blocks */
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

/* Base's own sections, whose values are fields of sl_config_t. */
extern const sl_config_section_t sl_config_server_section;
extern const sl_config_section_t sl_config_log_section;
extern const sl_config_section_t sl_config_media_section;

/**
 * Registers the sections of a configuration and fills cfg with every
 * default (including the `live` app). sections (n of them; the array is
 * copied, the descriptors are borrowed and must outlive cfg) lists the
 * YAML sections in file order; server, log and media are added first when
 * the list does not place them. The process's full list is
 * sl_builtin_config_sections() (src/builtin_config.h), which
 * sl_config_defaults uses. cfg need not be initialised; anything it held is
 * overwritten, not freed. 0, SL_ENOMEM (then cfg is left empty and safe to
 * pass to sl_config_cleanup), or SL_EINVAL for a bad list (a section twice,
 * too many sections or keys; logged).
 */
int sl_config_init(sl_config_t *cfg, const sl_config_section_t *const *sections, size_t n);
/**
 * The block of section sec in cfg (the owner casts it to its struct; base's
 * own sections return cfg itself), or NULL when sec was not registered or
 * has no section keys.
 * Borrowed, valid until cfg is cleaned up. A linear scan of a few pointers:
 * cheap, but a hot path may keep the pointer.
 */
void *sl_config_get(const sl_config_t *cfg, const sl_config_section_t *sec);
/** The same for app's per-app block of sec (NULL when sec has none registered). */
void *sl_config_app_get(const sl_app_config_t *app, const sl_config_section_t *sec);
/**
 * A setting of a section the caller does not own, by its public key
 * ("http.tls_cert"), so that a part reads another's setting without
 * including its header (the RTMPS listener falls back on HTTPS's
 * certificate; hooks export the listeners' ports). sl_config_int returns
 * an integer, size, duration, enum index or bool (0/1); sl_config_str a
 * string (borrowed from cfg, never NULL). An unknown key or a wrong type is
 * a programming error: 0 or "", logged at error.
 */
int64_t sl_config_int(const sl_config_t *cfg, const char *key);
const char *sl_config_str(const sl_config_t *cfg, const char *key);
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
 * never misses a setting.
 */
int sl_config_equal(const sl_config_t *a, const sl_config_t *b);
/* What sl_config_diff reports for one key. */
typedef enum {
    SL_CONFIG_DIFF_CHANGED = 0,     /* "section.key" or "apps.<name>.<key>": the value differs */
    SL_CONFIG_DIFF_APP_ADDED = 1,   /* "apps.<name>": only in b */
    SL_CONFIG_DIFF_APP_REMOVED = 2, /* "apps.<name>": only in a */
} sl_config_diff_t;

/* Receives one difference; key is borrowed for the call. */
typedef void (*sl_config_diff_cb)(void *ud, sl_config_diff_t kind, const char *key);
/**
 * What differs from a (the old configuration) to b (the new one), both
 * from sl_config_init with the same sections, driven by the same tables as
 * sl_config_equal: every section setting whose value differs
 * ("rtmp.port"), then for each app of a: removed ("apps.x") or its changed
 * settings ("apps.x.auth_simple"), then each app only in b ("apps.y",
 * added). each may be NULL (just count). Configurations with different
 * section lists give one CHANGED "*". Returns the number of differences (0
 * exactly when sl_config_equal is 1). sl_config_slot_needs_restart tells
 * which keys a reload cannot apply.
 */
size_t sl_config_diff(const sl_config_t *a, const sl_config_t *b, sl_config_diff_cb each, void *ud);
/**
 * Copies the value of one section setting `key` ("section.key") from src to
 * dst (strings are duplicated, dst's old string freed); the origin records
 * are not touched. Reload uses it to keep a setting that needs a restart
 * at its running value. 0, SL_ENOTFOUND (no such setting in both) or
 * SL_ENOMEM (dst unchanged).
 */
int sl_config_copy_key(sl_config_t *dst, const sl_config_t *src, const char *key);
/**
 * Whether the setting key ("section.key" or "apps.<name>.<key>") takes
 * effect only after a restart: 1 yes, 0 no (live reload can apply it), -1
 * no such key in cfg's sections.
 */
int sl_config_slot_needs_restart(const sl_config_t *cfg, const char *key);
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
/**
 * Writes the fully commented default sluice.yml generated from the tables of
 * sections (listed as for sl_config_init; nothing on a bad list).
 */
void sl_config_print_yaml(FILE *out, const sl_config_section_t *const *sections, size_t n);
/** Writes docs/config.md (a table of every key) generated from the same tables. */
void sl_config_print_markdown(FILE *out, const sl_config_section_t *const *sections, size_t n);

#endif
