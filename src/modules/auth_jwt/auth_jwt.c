/*
 * JWT authentication module (see auth_jwt.h): loads the keys at start,
 * registers the admission check, and applies Red5's claims.
 *
 * Paths: a request names its scope (req->app: "live" or "live/room1") and,
 * for publish/play, a stream name that may add rooms ("room1/stream1").
 * The full path "live/room1/stream1" splits into the app ("live"), the
 * room ("room1", everything between) and the stream name ("stream1"),
 * however the client divided it between connect and publish.
 */
#include "modules/auth_jwt/auth_jwt.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "app/core.h"
#include "base/alloc.h"
#include "base/log.h"
#include "modules/auth_common.h"
#include "modules/auth_jwt/jwt.h"
#include "sluice/errors.h"
#include "modules/auth_config.h"

#define PATH_MAX_LEN 1100 /* scope + stream name as RTMP limits them */
#define MIN_SECRET_BYTES 32

/* ------------------------------------------------------------------ */
/* claims                                                              */

int sl_auth_jwt_glob(const char *p, const char *s)
{
    /* Iterative '*' matching with one backtrack point (linear enough for
     * short names, no recursion). */
    const char *star = NULL, *mark = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            mark = s;
        } else if (*p == *s) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++mark;
        } else {
            return 0;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

/*
 * A list claim (a comma-separated string or an array of such strings):
 * 1 when word is in it, 0 when not, -1 when the claim has the wrong type.
 */
static int claim_has(const json_t *v, const char *word)
{
    if (json_is_string(v))
        return sl__auth_list_has(json_string_value(v), word);
    if (!json_is_array(v))
        return -1;
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        if (!json_is_string(item))
            return -1;
        if (sl__auth_list_has(json_string_value(item), word))
            return 1;
    }
    return 0;
}

/* Does the red5-transport claim allow this transport for this kind? */
static int transport_allowed(const json_t *v, const char *transport, sl_admit_kind_t kind)
{
    if (!transport)
        return 0;
    int r = claim_has(v, transport);
    if (r != 0)
        return r;
    if (strcasecmp(transport, "webrtc") == 0) {
        if (claim_has(v, "rtc") == 1)
            return 1;
        if (kind != SL_ADMIT_PLAY && claim_has(v, "whip") == 1)
            return 1;
        if (kind != SL_ADMIT_PUBLISH && claim_has(v, "whep") == 1)
            return 1;
    }
    if (strcasecmp(transport, "hls") == 0 || strcasecmp(transport, "http-flv") == 0)
        return claim_has(v, "http");
    return 0;
}

/* Room rule; room is the request's room path ("" = app level). */
static int room_allowed(const char *claim, const char *room, int connect)
{
    while (*claim == '/')
        claim++;
    size_t cl = strlen(claim);
    while (cl && claim[cl - 1] == '/')
        cl--;
    if (cl == 0)
        return 1; /* an empty claim names no room */
    size_t rl = strlen(room);
    /* The room itself or a room nested below it. */
    if (rl >= cl && strncmp(room, claim, cl) == 0 && (room[cl] == '\0' || room[cl] == '/'))
        return 1;
    /* At connect the stream name may still add the rest of the room:
     * "live" or "live/room1" with claim "room1/sub" is not refused yet. */
    if (connect && (rl == 0 || (rl < cl && strncmp(room, claim, rl) == 0 && claim[rl] == '/')))
        return 1;
    return 0;
}

static int refuse(const char **reason, const char *r, char *detail, size_t n, const char *d)
{
    *reason = r;
    if (detail && n)
        snprintf(detail, n, "%s", d);
    return SL_EDENIED;
}

int sl_auth_jwt_authorize(const json_t *claims, const sl_admit_req_t *req, const char **reason,
                          char *detail, size_t detail_len)
{
    int connect = req->kind == SL_ADMIT_CONNECT;
    int publish = req->kind == SL_ADMIT_PUBLISH;
    /* A shared object lives in the scope itself: its name is no part of the
     * path; the scope is final, so red5-room is checked strictly. */
    int so = req->kind == SL_ADMIT_SO_CONNECT;
    char d[200];

    /* Split app / room / stream name out of the full path. */
    char path[PATH_MAX_LEN];
    int n = snprintf(path, sizeof path, "%s%s%s", req->app ? req->app : "",
                     !connect && !so && req->stream ? "/" : "",
                     !connect && !so && req->stream ? req->stream : "");
    if (n < 0 || (size_t)n >= sizeof path)
        return refuse(reason, "Invalid path.", detail, detail_len, "path too long");
    char *app = path;
    char *room = strchr(path, '/');
    const char *name = "";
    if (room)
        *room++ = '\0';
    else
        room = path + strlen(path);
    if (!connect && !so) {
        char *last = strrchr(room, '/');
        if (last) {
            *last = '\0';
            name = last + 1;
        } else {
            name = room;
            room = path + strlen(path); /* "" */
        }
    }

    json_t *v = json_object_get(claims, "red5-transport");
    if (v && transport_allowed(v, req->transport, req->kind) != 1) {
        snprintf(d, sizeof d, "transport %.40s not in red5-transport", req->transport ? req->transport : "?");
        return refuse(reason, "Transport not allowed.", detail, detail_len, d);
    }
    v = json_object_get(claims, "app");
    if (v && (!json_is_string(v) ||
              (strcmp(json_string_value(v), "*") != 0 && strcmp(json_string_value(v), app) != 0))) {
        snprintf(d, sizeof d, "app %.100s not allowed by the app claim", app);
        return refuse(reason, "Application not allowed.", detail, detail_len, d);
    }
    v = json_object_get(claims, "red5-room");
    if (v && (!json_is_string(v) || !room_allowed(json_string_value(v), room, connect))) {
        snprintf(d, sizeof d, "room \"%.100s\" not in red5-room", room);
        return refuse(reason, "Room not allowed.", detail, detail_len, d);
    }
    if (connect || so)
        return 0; /* so: roles, action and stream name streams, not objects; both roles may join */

    v = json_object_get(claims, "roles");
    if (v) {
        int pub = claim_has(v, "red5-publisher"), sub = claim_has(v, "red5-subscriber");
        if (pub < 0 || sub < 0)
            return refuse(reason, "Invalid token.", detail, detail_len, "roles is not a string or array");
        if (!(pub == 1 || (!publish && sub == 1))) {
            snprintf(d, sizeof d, "roles do not allow %s", publish ? "publishing" : "playing");
            return refuse(reason, "Role not allowed.", detail, detail_len, d);
        }
    }
    v = json_object_get(claims, "action");
    if (v) {
        int ok = claim_has(v, publish ? "publish" : "play");
        if (ok != 1) {
            snprintf(d, sizeof d, "action claim does not allow %s", publish ? "publish" : "play");
            return refuse(reason, "Action not allowed.", detail, detail_len, d);
        }
    }
    v = json_object_get(claims, "stream");
    if (v) {
        int ok = 0;
        if (json_is_string(v)) {
            ok = sl_auth_jwt_glob(json_string_value(v), name);
        } else if (json_is_array(v)) {
            size_t i;
            json_t *p;
            json_array_foreach(v, i, p) ok |= json_is_string(p) && sl_auth_jwt_glob(json_string_value(p), name);
        }
        if (!ok) {
            snprintf(d, sizeof d, "stream %.100s does not match the stream claim", name);
            return refuse(reason, "Stream not allowed.", detail, detail_len, d);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* the module                                                          */

typedef struct state {
    sl_core_t *core;
    sl_jwt_keys_t *keys;   /* owned */
    int check_id;          /* 0 once removed */
} state_t;

static const char *kind_name(sl_admit_kind_t k)
{
    return k == SL_ADMIT_CONNECT ? "connect" : k == SL_ADMIT_PUBLISH ? "publish"
           : k == SL_ADMIT_SO_CONNECT ? "shared object connect" : "play";
}

static int check(sl_admit_t *a, void *ud)
{
    state_t *st = ud;
    const sl_admit_req_t *req = sl_admit_request(a);
    if (!sl__auth_app_for(a, offsetof(sl_auth_app_config_t, auth_jwt)))
        return SL_EDECLINED;
    if (!req->token || !req->token[0]) {
        if (req->kind == SL_ADMIT_CONNECT)
            return SL_EDECLINED; /* it may come with the stream name */
        SL_LOGW(sl__auth_log(a), "jwt: %s without a token refused", kind_name(req->kind));
        sl_admit_set_reason(a, "Missing token.");
        return SL_EDENIED;
    }
    const sl_config_t *cfg = st->core->cfg;
    sl_jwt_opts_t opts = {
        .leeway_ms = (uint64_t)sl_auth_cfg(cfg)->jwt_leeway_ms,
        .issuer = sl_auth_cfg(cfg)->jwt_issuer,
        .audience = sl_auth_cfg(cfg)->jwt_audience,
    };
    json_t *claims = NULL;
    sl_jwt_error_t e;
    int rc = sl_jwt_verify(st->keys, req->token, &opts, &claims, &e);
    if (rc == SL_EDENIED) {
        SL_LOGW(sl__auth_log(a), "jwt: token refused at %s: %s", kind_name(req->kind), e.detail);
        sl_admit_set_reason(a, e.reason);
        return SL_EDENIED;
    }
    if (rc)
        return rc;
    const char *reason = NULL;
    char detail[200];
    rc = sl_auth_jwt_authorize(claims, req, &reason, detail, sizeof detail);
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    if (rc) {
        SL_LOGW(sl__auth_log(a), "jwt: %s refused for sub %s: %s", kind_name(req->kind),
                sub ? sub : "-", detail);
        sl_admit_set_reason(a, reason);
    } else {
        if (sub)
            sl_admit_set_note(a, "jwt_sub", sub);
        SL_LOGD(sl__auth_log(a), "jwt: %s accepted for sub %s", kind_name(req->kind), sub ? sub : "-");
    }
    json_decref(claims);
    return rc;
}

/* Loads every configured key; logs and returns an error on any problem. */
static int load_keys(const sl_config_t *cfg, sl_jwt_keys_t *keys)
{
    char err[160] = "";
    int rc;
    if (sl_auth_cfg(cfg)->jwt_secret && sl_auth_cfg(cfg)->jwt_secret[0]) {
        size_t len = strlen(sl_auth_cfg(cfg)->jwt_secret);
        if (len < MIN_SECRET_BYTES)
            SL_LOGW(NULL, "jwt: auth.jwt_secret is %zu bytes; use at least %d (Red5 requires it)", len,
                    MIN_SECRET_BYTES);
        if ((rc = sl_jwt_keys_set_secret(keys, sl_auth_cfg(cfg)->jwt_secret, len)) != 0)
            return rc;
    }
    const char *files[2] = {sl_auth_cfg(cfg)->jwt_public_key_file, sl_auth_cfg(cfg)->jwt_jwks_file};
    for (int i = 0; i < 2; i++) {
        if (!files[i] || !files[i][0])
            continue;
        char *text;
        size_t len;
        if ((rc = sl_jwt_read_file(files[i], &text, &len)) != 0) {
            SL_LOGE(NULL, "jwt: cannot read %s: %s", files[i], sl_strerror(rc));
            return rc;
        }
        err[0] = '\0';
        rc = i == 0 ? sl_jwt_keys_add_pem(keys, text, len, NULL, err, sizeof err)
                    : sl_jwt_keys_add_jwks(keys, text, len, err, sizeof err);
        sl_free(text);
        if (rc < 0) {
            SL_LOGE(NULL, "jwt: %s: %s", files[i], err[0] ? err : sl_strerror(rc));
            return rc;
        }
        if (i == 1 && err[0])
            SL_LOGW(NULL, "jwt: %s: some keys skipped (last: %s)", files[i], err);
    }
    if (!sl_jwt_keys_has_secret(keys) && sl_jwt_keys_count(keys) == 0) {
        SL_LOGE(NULL, "jwt: auth_jwt is on but no key is configured (auth.jwt_secret, "
                      "auth.jwt_public_key_file or auth.jwt_jwks_file)");
        return SL_EINVAL;
    }
    return 0;
}

static void stop(void *state)
{
    state_t *st = state;
    if (!st)
        return;
    if (st->check_id > 0)
        sl_admit_remove_check(st->core, st->check_id);
    st->check_id = 0;
}

static void free_state(void *state)
{
    state_t *st = state;
    if (!st)
        return;
    sl_jwt_keys_free(st->keys);
    sl_free(st);
}

static int start(sl_core_t *core, void **out)
{
    *out = NULL;
    const sl_config_t *cfg = core->cfg;
    int used = 0;
    for (size_t i = 0; i < cfg->n_apps; i++)
        used |= cfg->apps[i].enabled && sl_auth_app_cfg(&cfg->apps[i])->auth_jwt;
    if (!used)
        return 0;
    state_t *st = sl_calloc(1, sizeof(*st));
    if (!st)
        return SL_ENOMEM;
    st->core = core;
    int rc = sl_jwt_keys_new(&st->keys);
    if (rc)
        goto fail;
    if ((rc = load_keys(cfg, st->keys)) != 0)
        goto fail;
    rc = sl_admit_add_check(core, "auth_jwt", SL_ADMIT_PHASE_TOKEN, check, st);
    if (rc < 0)
        goto fail;
    st->check_id = rc;
    SL_LOGI(NULL, "jwt: %s%zu public keys", sl_jwt_keys_has_secret(st->keys) ? "HMAC secret, " : "",
            sl_jwt_keys_count(st->keys));
    *out = st;
    return 0;
fail:
    free_state(st);
    return rc;
}

/* The plugin's init: the module starts when an enabled app has auth_jwt on. */
static int init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    (void)api;
    return start(sl_host_core(h), state);
}

/*
 * Configuration reload: inert until now, the module starts when an app
 * turned auth_jwt on (the host runs init again). Running, it loads the keys
 * of the new configuration (secret, key files, JWKS: files are read again
 * even when their names did not change) and swaps them in; issuer, audience
 * and leeway are read from core->cfg at each check anyway. When no app uses
 * JWT any more the old keys stay: the check passes for apps with auth_jwt
 * off.
 */
static int reload(void *state)
{
    state_t *st = state;
    const sl_config_t *new_cfg = st->core->cfg;
    int used = 0;
    for (size_t i = 0; i < new_cfg->n_apps; i++)
        used |= new_cfg->apps[i].enabled && sl_auth_app_cfg(&new_cfg->apps[i])->auth_jwt;
    if (!used)
        return 0;
    sl_jwt_keys_t *keys = NULL;
    int rc = sl_jwt_keys_new(&keys);
    if (!rc)
        rc = load_keys(new_cfg, keys);
    if (rc) {
        sl_jwt_keys_free(keys);
        return rc;
    }
    sl_jwt_keys_free(st->keys); /* checks are synchronous: nothing holds the old keys */
    st->keys = keys;
    SL_LOGI(NULL, "jwt: reloaded: %s%zu public keys",
            sl_jwt_keys_has_secret(st->keys) ? "HMAC secret, " : "", sl_jwt_keys_count(st->keys));
    return 0;
}

/*
 * --check-config and start: when an app has auth_jwt on, every configured
 * key source must load (a key file that is missing or holds no usable key
 * is an error, as at start) and at least one must be configured.
 */
static int check_config(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    const char *used_by = NULL;
    for (size_t i = 0; i < cfg->n_apps && !used_by; i++)
        if (cfg->apps[i].enabled && sl_auth_app_cfg(&cfg->apps[i])->auth_jwt)
            used_by = cfg->apps[i].name;
    if (!used_by)
        return 0;
    sl_jwt_keys_t *keys = NULL;
    int n = 0, rc = sl_jwt_keys_new(&keys);
    if (rc) {
        sl_config_report(cfg, "auth.jwt_secret", err, ud, "%s", sl_strerror(rc));
        return 1;
    }
    if (sl_auth_cfg(cfg)->jwt_secret && sl_auth_cfg(cfg)->jwt_secret[0] &&
        (rc = sl_jwt_keys_set_secret(keys, sl_auth_cfg(cfg)->jwt_secret, strlen(sl_auth_cfg(cfg)->jwt_secret)))) {
        sl_config_report(cfg, "auth.jwt_secret", err, ud, "%s", sl_strerror(rc));
        n++;
    }
    const char *files[2] = {sl_auth_cfg(cfg)->jwt_public_key_file, sl_auth_cfg(cfg)->jwt_jwks_file};
    const char *keynames[2] = {"auth.jwt_public_key_file", "auth.jwt_jwks_file"};
    for (int i = 0; i < 2; i++) {
        if (!files[i] || !files[i][0])
            continue;
        char *text = NULL, why[160] = "";
        size_t len = 0;
        if ((rc = sl_jwt_read_file(files[i], &text, &len)) != 0) {
            sl_config_report(cfg, keynames[i], err, ud, "cannot read %s: %s", files[i],
                             sl_strerror(rc));
            n++;
            continue;
        }
        rc = i == 0 ? sl_jwt_keys_add_pem(keys, text, len, NULL, why, sizeof why)
                    : sl_jwt_keys_add_jwks(keys, text, len, why, sizeof why);
        sl_free(text);
        if (rc < 0) {
            sl_config_report(cfg, keynames[i], err, ud, "%s: %s", files[i],
                             why[0] ? why : sl_strerror(rc));
            n++;
        }
    }
    if (!n && !sl_jwt_keys_has_secret(keys) && sl_jwt_keys_count(keys) == 0) {
        char key[SL_CONFIG_APP_NAME_MAX + 24];
        snprintf(key, sizeof key, "apps.%s.auth_jwt", used_by);
        sl_config_report(cfg, key, err, ud,
                         "is on but no key is configured (auth.jwt_secret, "
                         "auth.jwt_public_key_file or auth.jwt_jwks_file)");
        n++;
    }
    sl_jwt_keys_free(keys);
    return n;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "auth_jwt",
    .description = "admission by signed tokens (JWT)",
    .init = init,
    .stop = stop,
    .destroy = free_state,
    .reload = reload,
};

const sl_builtin_t sl_auth_jwt_builtin = {
    .plugin = &plugin,
    .config = &sl_auth_config_section,
    .check = check_config,
};
