/*
 * Admission: the asynchronous chain of checks that decides whether a
 * client may connect, publish or play (DESIGN.md §4).
 *
 * Checks (simple auth, JWT, round-trip HTTP, plugins) register with a name
 * and a phase (sl_admit_phase_t) and run in that visible order. Each check answers:
 *   SL_OK        allow, go on to the next check
 *   SL_EDECLINED no opinion (not configured for this app/protocol): next
 *   SL_EDENIED   deny; the reason given to sl_admit_set_reason() reaches the client
 *   SL_EPENDING  the answer comes later through sl_admit_resume() (a
 *                remote call); the loop is never blocked
 * When every check has allowed or declined, the request is allowed. The
 * protocol gets one completion callback (possibly synchronously, from
 * inside sl_admit()) and answers the client in its own terms (RTMP:
 * NetConnection.Connect.Rejected / NetStream.Publish.BadName with the
 * reason; HTTP: 401/403).
 *
 * Lifetime: an admission is refcounted. sl_admit_cancel() (the client went
 * away) guarantees the completion callback is never called; a pending
 * check keeps its own reference (sl_admit_ref) and must still call
 * sl_admit_resume() or sl_admit_unref() when its work ends.
 */
#ifndef SL_APP_ADMISSION_H
#define SL_APP_ADMISSION_H

#include <stdint.h>

typedef struct sl_core sl_core_t;
typedef struct sl_session sl_session_t;
typedef struct sl_admit sl_admit_t;

typedef enum {
    SL_ADMIT_CONNECT = 0,
    SL_ADMIT_PUBLISH = 1,
    SL_ADMIT_PLAY = 2,
    SL_ADMIT_SO_CONNECT = 3, /* a connected client joins a shared object (Red5's
                                onSharedObjectAuthenticate): stream = the object's name */
} sl_admit_kind_t;

/* What is being asked; strings are copied by sl_admit(). */
typedef struct sl_admit_req {
    sl_admit_kind_t kind;
    const char *app;       /* scope path: "live", "live/room1" */
    const char *stream;    /* stream name for publish/play (without scope), the object's name
                              for so-connect, else NULL */
    const char *transport; /* "rtmp", "rtsp", "webrtc", "hls", "http-flv", "srt" */
    const char *query;     /* the client's query string (connect + stream), or NULL */
    const char *username;  /* credentials as the protocol found them, or NULL */
    const char *password;
    const char *token;     /* a bearer/JWT/round-trip token, or NULL */
    const char *publish_mode; /* "live", "record", "append" for publish, else NULL */
} sl_admit_req_t;

/**
 * A check. Reads the request with sl_admit_request(a) and the session with
 * sl_admit_session(a); returns SL_OK, SL_EDECLINED, SL_EDENIED (after
 * sl_admit_set_reason) or SL_EPENDING (after taking a reference).
 */
typedef int (*sl_admit_check_cb)(sl_admit_t *a, void *ud);

/** Completion: result is 0 (allowed) or SL_EDENIED; reason is borrowed for the call. */
typedef void (*sl_admit_done_cb)(sl_admit_t *a, int result, const char *reason, void *ud);

/*
 * Where a check runs in the chain, by the kind of proof it weighs: local
 * and cheap first, remote (a round trip to the business's server) after
 * every local check has allowed, plugins last. Within a phase, checks run
 * by name.
 */
typedef enum {
    SL_ADMIT_PHASE_CLUSTER = 50,      /* another node of the cluster vouches for the client (its
                                         cluster password: src/cluster/relay); may skip to
                                         SL_ADMIT_PHASE_SOURCE with sl_admit_skip_to */
    SL_ADMIT_PHASE_CREDENTIALS = 100, /* username/password against a local file (simple auth) */
    SL_ADMIT_PHASE_TOKEN = 110,       /* a signed token checked locally (JWT) */
    SL_ADMIT_PHASE_REMOTE = 200,      /* a call to the business's server (round trip) */
    SL_ADMIT_PHASE_PLUGIN = 300,      /* external plugins' checks */
    SL_ADMIT_PHASE_SOURCE = 400,      /* starts what an allowed request needs (an on-demand
                                         pull: modules/restream); never denies */
} sl_admit_phase_t;

/** The phase's name for listings ("credentials", ...); "?" when unknown. */
const char *sl_admit_phase_name(int phase);

/**
 * Registers a check in phase (an sl_admit_phase_t); ties run by name. Returns a
 * positive id or SL_ENOMEM. The list is visible through
 * sl_admit_checks_list (the API shows it).
 */
int sl_admit_add_check(sl_core_t *core, const char *name, sl_admit_phase_t phase,
                       sl_admit_check_cb cb, void *ud);
/** Removes a check by id. */
void sl_admit_remove_check(sl_core_t *core, int id);
/** Names of the checks in order, for listing (borrowed; n in *count). */
const char *const *sl_admit_checks_list(sl_core_t *core, int *count);
/**
 * Calls each(arg, name, phase) for every check in the order the chain runs
 * them (the API lists them with sl_admit_phase_name).
 */
void sl_admit_checks_each(sl_core_t *core, void (*each)(void *arg, const char *name, int phase),
                          void *arg);

/**
 * Runs the chain for session s. Returns SL_OK after calling done (allowed
 * or denied synchronously), SL_EPENDING when done will come later (*out
 * then holds the admission, one reference owned by the caller, to cancel
 * with sl_admit_cancel), or SL_ENOMEM (done not called).
 */
int sl_admit(sl_core_t *core, sl_session_t *s, const sl_admit_req_t *req, sl_admit_done_cb done,
             void *ud, sl_admit_t **out);
/** The client is gone: done will not be called. Drops the caller's reference. */
void sl_admit_cancel(sl_admit_t *a);

/* For checks */
const sl_admit_req_t *sl_admit_request(const sl_admit_t *a);
sl_session_t *sl_admit_session(const sl_admit_t *a); /* NULL once cancelled */
sl_core_t *sl_admit_core(const sl_admit_t *a);
/**
 * Passes over every check of a phase below phase for the rest of this
 * admission (a check that answers SL_OK after calling it skips them). For
 * a proof that makes the business's own checks moot: a node of the same
 * cluster, authenticated with the cluster password, relaying a stream whose
 * players its own chain admitted (src/cluster/relay). Never lowers a
 * skip already set.
 */
void sl_admit_skip_to(sl_admit_t *a, int phase);
/** Sets the reason sent to the client with a denial (copied). */
void sl_admit_set_reason(sl_admit_t *a, const char *reason);
/** Attaches a value for later (e.g. Red5's round-trip `url`, JWT subject), copied. */
void sl_admit_set_note(sl_admit_t *a, const char *key, const char *value);
const char *sl_admit_note(const sl_admit_t *a, const char *key);
sl_admit_t *sl_admit_ref(sl_admit_t *a);
void sl_admit_unref(sl_admit_t *a);
/**
 * A pending check's answer: result SL_OK/SL_EDECLINED continues the chain,
 * SL_EDENIED ends it (reason may be NULL). Drops the check's reference.
 */
void sl_admit_resume(sl_admit_t *a, int result, const char *reason);
/** Frees the registered checks (shutdown). */
void sl_admit_cleanup(sl_core_t *core);

#endif
