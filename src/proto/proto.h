/*
 * The protocol table: a wire protocol is one folder under src/proto and
 * one line in protocols.c (DESIGN.md §2). Each protocol describes itself
 * with an sl_proto_t (name, whether the configuration enables it, its
 * configuration checks, start/stop/free), and main runs the table in
 * order: checks for --check-config and before anything opens, start in
 * table order (each start opens its listeners, announces them in the
 * listeners table (app/listeners.h) and logs its addresses), stop and free
 * in reverse order. Protocols are data, like modules (modules/module.h).
 */
#ifndef SL_PROTO_PROTO_H
#define SL_PROTO_PROTO_H

#include "app/core.h"
#include "base/config.h"

typedef struct sl_proto {
    const char *name; /* "rtmp", "http", ... (static) */
    /** 1 when cfg turns the protocol on (e.g. rtmp.enabled); an off protocol is skipped. */
    int (*enabled)(const sl_config_t *cfg);
    /**
     * Validates what start needs beyond the config tables (certificates that
     * load), reporting each problem through err with sl_config_report at the
     * key that set it, without side effects. Called for an enabled protocol
     * only. Returns the number of problems. May be NULL.
     */
    int (*check)(const sl_config_t *cfg, sl_config_err_cb err, void *ud);
    /**
     * Opens the listeners, announces them (sl_listeners_announce) and logs
     * where clients connect. Returns 0 and the protocol's state in *state,
     * or an error after logging why (the port, the certificate): startup
     * then fails.
     */
    int (*start)(sl_core_t *core, void **state);
    /** Graceful stop: listeners close, clients are told, writes drain. May be NULL. */
    void (*stop)(void *state);
    /** Frees the state after the loop has closed its handles. NULL state is ignored. */
    void (*free)(void *state);
    /**
     * The configuration was reloaded (main loop; core->cfg is cfg already):
     * the protocol applies what it copied at start (timers, and the copies
     * its worker loops keep, by message). May be NULL.
     */
    void (*reload)(void *state, const sl_config_t *cfg);
} sl_proto_t;

/** The built-in protocols in start order, NULL-terminated (protocols.c). */
extern const sl_proto_t *const sl_builtin_protocols[];

#endif
