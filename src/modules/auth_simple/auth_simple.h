/*
 * Simple Auth (Red5 Pro's red5pro-simple-auth-plugin, RED5-COMPAT.md §3.1-3.3):
 * clients present a username and password, checked against a credentials
 * file (auth.simple_file) for apps with auth_simple on and transports in
 * the app's auth_protocols.
 *
 * The file keeps Red5's format, `username password` per line, `#`
 * comments and blank lines, and adds hashed passwords:
 *   plain text                     compared in constant time
 *   sha256:<salt>:<hex>            hex = SHA-256(salt + password)
 *   $2b$.. $y$.. $6$.. (crypt(3))  bcrypt, yescrypt, sha512-crypt, ... as
 *                                  libxcrypt verifies them (crypt_r)
 * The file is watched (uv_fs_poll, every second) and re-read off the loop
 * when it changes; a file that cannot be read keeps the previous table.
 *
 * When: an RTMP client that brings credentials at connect is checked there
 * (a wrong pair gets NetConnection.Connect.Rejected). Publish and play are
 * always checked, with the credentials of the connection or of the stream
 * name's query (`stream1?username=u&password=p`), so a client that brought
 * nothing at connect still cannot publish or play. crypt(3) hashes are slow
 * by design (bcrypt: ~0.1 s) and are verified on the thread pool, two at a
 * time, with the admission pending; a successful verification is
 * remembered (as a SHA-256 of the password) until the file changes, so a
 * connection's later publish/play costs nothing.
 *
 * This header also exposes the credentials table for the unit tests.
 */
#ifndef SL_MODULES_AUTH_SIMPLE_H
#define SL_MODULES_AUTH_SIMPLE_H

#include <stddef.h>

#include "modules/module.h"

/** The module (listed in modules.c). */
extern const sl_builtin_t sl_auth_simple_builtin;

/* ------------------------------------------------------------------ */
/* Credentials table                                                   */

#define SL_AUTH_SIMPLE_MAX_FILE_BYTES (4 * 1024 * 1024) /* larger files are refused */
#define SL_AUTH_SIMPLE_MAX_LINE 4096                    /* longer lines are skipped */
#define SL_AUTH_SIMPLE_MAX_USERS 100000                 /* more users are refused */
#define SL_AUTH_SIMPLE_MAX_NAME 256                     /* longest username */

typedef enum {
    SL_AUTH_PW_PLAIN = 0,  /* stored as SHA-256(password), compared in constant time */
    SL_AUTH_PW_SHA256 = 1, /* sha256:<salt>:<hex> */
    SL_AUTH_PW_CRYPT = 2,  /* a crypt(3) hash string */
} sl_auth_pw_kind_t;

typedef struct sl_auth_simple_table sl_auth_simple_table_t;
typedef struct sl_auth_simple_user sl_auth_simple_user_t;

/** A problem in the file: 1-based line and a message (borrowed for the call). */
typedef void (*sl_auth_simple_warn_cb)(void *ud, int line, const char *msg);

/**
 * Parses a credentials file's text (len bytes, need not be NUL-terminated;
 * borrowed). Bad lines are reported through warn (may be NULL) and
 * skipped; a later line for the same user replaces an earlier one.
 * Returns 0 and a table holding one reference in *out, SL_ETOOBIG (over
 * SL_AUTH_SIMPLE_MAX_FILE_BYTES or _MAX_USERS) or SL_ENOMEM.
 */
int sl_auth_simple_parse(const char *text, size_t len, sl_auth_simple_warn_cb warn, void *ud,
                         sl_auth_simple_table_t **out);

/**
 * Reads and parses a file (blocking: call off the loop or at start).
 * Same returns as sl_auth_simple_parse plus negative errno values
 * (UV_ENOENT style) when the file cannot be read.
 */
int sl_auth_simple_load(const char *path, sl_auth_simple_warn_cb warn, void *ud,
                        sl_auth_simple_table_t **out);

/** Takes / drops a reference (the table is freed with its last one). NULL is ignored. */
sl_auth_simple_table_t *sl_auth_simple_table_ref(sl_auth_simple_table_t *t);
void sl_auth_simple_table_unref(sl_auth_simple_table_t *t);
/** Users in the table. */
size_t sl_auth_simple_table_size(const sl_auth_simple_table_t *t);

/** A user by exact (case-sensitive) name, or NULL. Borrowed from the table. */
const sl_auth_simple_user_t *sl_auth_simple_find(const sl_auth_simple_table_t *t, const char *name);
/** How a user's password is stored. */
sl_auth_pw_kind_t sl_auth_simple_user_kind(const sl_auth_simple_user_t *u);

/**
 * Checks a password without blocking: returns 0 (right), SL_EDENIED
 * (wrong) or SL_EAGAIN when the user's password is a crypt(3) hash that
 * has not been verified with this password yet (call
 * sl_auth_simple_verify_slow off the loop, then sl_auth_simple_remember).
 * Constant time in the password for plain and sha256 entries.
 */
int sl_auth_simple_verify_fast(const sl_auth_simple_user_t *u, const char *password);

/**
 * Verifies a password against a crypt(3) hash with crypt_r; blocking
 * (tens to hundreds of milliseconds for bcrypt/yescrypt), thread-safe.
 * Returns 0 (right), SL_EDENIED (wrong) or SL_ENOMEM. Also accepts the
 * other kinds (then the same as verify_fast).
 */
int sl_auth_simple_verify_slow(const sl_auth_simple_user_t *u, const char *password);

/**
 * Remembers that password verified for a crypt(3) user, so the next
 * verify_fast with the same password answers 0 at once. Forgotten when
 * the table is replaced (the file changed). Writes the user's one mutable
 * field (hence const is cast away inside): loop thread only.
 */
void sl_auth_simple_remember(const sl_auth_simple_user_t *u, const char *password);

/**
 * Any crypt(3) user of the table (to spend the same time on an unknown
 * username as on a known one), or NULL when the table has none.
 */
const sl_auth_simple_user_t *sl_auth_simple_any_crypt_user(const sl_auth_simple_table_t *t);

#endif
