/*
 * The shared_objects module: Remote Shared Objects (RED5-COMPAT.md §5) as
 * the service "sharedobjects" 1.0 (app/svc/sharedobjects.h). Objects live
 * in one map keyed by scope and name; each holds its attributes as one
 * jansson object, a version, statistics and its subscribers in join order.
 * Transports (rtmp_so.c now, the JSON forms later) only translate: every
 * rule (limits, versions, who gets `success` and who gets `change`) is
 * here, so that an RTMP client, a browser and the API see one object.
 *
 * An update (apply) is checked whole before anything changes, then bumps
 * the version once and hands one batch to each subscriber, in join order,
 * synchronously: a batch reaches every subscriber before the next update
 * starts, so everyone sees the same order. Subscribers that leave during a
 * delivery are only marked and freed after it.
 *
 * Persistence: a persistent object's rows are written through the store
 * (app/store.h, one SQLite writer off the loop) after each update, as the
 * whole object's JSON text with its version (objects are capped in size by
 * so_max_object_bytes, so rewriting the row is bounded). The writer's
 * confirmation (SL_SO_SUCCESS) is held until that commit returns, so an
 * acknowledged write survives kill -9; others see the change at once. At
 * start every stored object is restored with its version and no
 * subscriber. Non-persistent objects are in memory only and freed with
 * their last subscriber.
 *
 * Events: every update emits so_update (SL_EV_SO_UPDATE) per change with
 * app = scope, stream = object name, reason = "set" | "delete" | "clear" |
 * "send" | "connect" | "disconnect", path = key or handler, bytes_in = the
 * version after the change, session_id/proto = the writer (none for the API).
 */
#include "modules/shared_objects/shared_objects.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "app/events.h"
#include "app/services.h"
#include "app/store.h"
#include "app/svc/sharedobjects.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/map.h"
#include "base/time.h"
#include "modules/shared_objects/so_config.h"
#include "modules/shared_objects/so_json.h"
#include "sluice/errors.h"

static const sl_log_ctx_t g_ctx = {.proto = "so"};

struct sl_so_sub {
    struct sl_so_sub *next;       /* in obj->subs, join order */
    struct so_obj *obj;           /* the object (borrowed) */
    uint64_t id;                  /* unique in the process (held confirmations find it) */
    const void *owner;            /* the transport's connection */
    const sl_so_listener_t *l;    /* borrowed, static */
    void *lud;
    char session_id[24];
    char proto[16];
    int dead;                     /* left during a delivery: freed after it */
    uint64_t rate_start_ms;       /* start of the current one-second window */
    uint64_t rate_n;              /* updates in it */
};

typedef struct so_obj {
    char *key;                    /* map key: scope \x01 name (owned) */
    char *scope, *name;           /* owned */
    int persistent;
    uint32_t version;
    json_t *data;                 /* JSON object of the attributes (owned reference) */
    size_t data_bytes;            /* sum of key length + JSON size of each value */
    struct sl_so_sub *subs;       /* owned list */
    size_t n_subs;
    int delivering;               /* inside a delivery: leaving subscribers are only marked */
    uint64_t total_listeners, max_listeners, total_changes, total_deletes, total_sends;
} so_obj_t;

typedef struct so_mod {
    sl_core_t *core;
    sl_store_t *store;            /* NULL: persistent objects are kept in memory only */
    sl_map_t objs;                /* key -> so_obj_t (owned) */
    uint64_t next_sub_id;
    sl_so_json_t *json;           /* the JSON form on "webrtc-ws" (so_json.c), or NULL */
} so_mod_t;

/* The running module, for store completions that may come after it is freed. */
static so_mod_t *g_mod;

static const char *const g_migrations[] = {
    "CREATE TABLE IF NOT EXISTS shared_objects (scope TEXT NOT NULL, name TEXT NOT NULL, "
    "version INTEGER NOT NULL, data TEXT NOT NULL, updated_ms INTEGER NOT NULL, "
    "PRIMARY KEY (scope, name))",
};

/* ------------------------------------------------------------------ */
/* objects                                                            */

static size_t json_size(const json_t *v)
{
    return v ? json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) : 4;
}

static int make_key(char *out, size_t cap, const char *scope, const char *name)
{
    int n = snprintf(out, cap, "%s\x01%s", scope, name);
    return n < 0 || (size_t)n >= cap ? SL_EINVAL : 0;
}

static int valid_name(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return 0;
    return 1;
}

/* The app's limits for a scope ("app" or "app/room"), or NULL when the app is unknown. */
static const sl_so_app_config_t *limits(const so_mod_t *m, const char *scope)
{
    char app[SL_CONFIG_APP_NAME_MAX + 1];
    size_t n = strcspn(scope, "/");
    if (n == 0 || n > SL_CONFIG_APP_NAME_MAX)
        return NULL;
    memcpy(app, scope, n);
    app[n] = 0;
    const sl_app_config_t *a = sl_config_app(m->core->cfg, app);
    return a && a->enabled ? sl_so_app_cfg(a) : NULL;
}

static size_t app_objects(const so_mod_t *m, const char *scope)
{
    size_t n = strcspn(scope, "/"), count = 0, pos = 0;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&m->objs, &pos))) {
        const so_obj_t *o = e->val;
        if (strncmp(o->scope, scope, n) == 0 && (o->scope[n] == 0 || o->scope[n] == '/'))
            count++;
    }
    return count;
}

static so_obj_t *obj_find(const so_mod_t *m, const char *scope, const char *name)
{
    char key[SL_SO_SCOPE_MAX + SL_SO_NAME_MAX + 2];
    if (!scope || !name || make_key(key, sizeof key, scope, name))
        return NULL;
    return sl_map_get(&m->objs, key);
}

static void obj_free(so_obj_t *o)
{
    while (o->subs) {
        struct sl_so_sub *s = o->subs;
        o->subs = s->next;
        sl_free(s);
    }
    json_decref(o->data);
    sl_free(o->key);
    sl_free(o->scope);
    sl_free(o->name);
    sl_free(o);
}

static so_obj_t *obj_new(so_mod_t *m, const char *scope, const char *name, int persistent)
{
    char key[SL_SO_SCOPE_MAX + SL_SO_NAME_MAX + 2];
    if (make_key(key, sizeof key, scope, name))
        return NULL;
    so_obj_t *o = sl_calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->key = sl_strdup(key);
    o->scope = sl_strdup(scope);
    o->name = sl_strdup(name);
    o->data = json_object();
    o->persistent = persistent;
    if (!o->key || !o->scope || !o->name || !o->data || sl_map_set(&m->objs, key, o)) {
        obj_free(o);
        return NULL;
    }
    return o;
}

static void obj_remove(so_mod_t *m, so_obj_t *o)
{
    sl_map_del(&m->objs, o->key);
    obj_free(o);
}

static void emit(so_mod_t *m, const so_obj_t *o, const struct sl_so_sub *writer,
                 const char *what, const char *key)
{
    sl_event_t ev = {.type = SL_EV_SO_UPDATE, .app = o->scope, .stream = o->name, .reason = what,
                     .path = key, .bytes_in = o->version};
    if (writer) {
        ev.session_id = writer->session_id[0] ? writer->session_id : NULL;
        ev.proto = writer->proto[0] ? writer->proto : NULL;
    }
    sl_events_emit(m->core, &ev);
}

/* Frees the subscribers marked dead during a delivery, and the object when
 * it is non-persistent and nobody is left. Returns 1 when o was freed. */
static int reap(so_mod_t *m, so_obj_t *o)
{
    struct sl_so_sub **pp = &o->subs;
    while (*pp) {
        struct sl_so_sub *s = *pp;
        if (s->dead) {
            *pp = s->next;
            o->n_subs--;
            sl_free(s);
        } else {
            pp = &s->next;
        }
    }
    if (!o->persistent && o->n_subs == 0) {
        obj_remove(m, o);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* persistence                                                        */

typedef struct save_job {
    char *scope, *name, *text;    /* owned */
    uint32_t version;
    uint64_t writer_id;           /* 0 = no held confirmation */
    size_t n_keys;
    char *keys[];                 /* the writer's confirmed keys (owned) */
} save_job_t;

static void save_job_free(save_job_t *j)
{
    for (size_t i = 0; i < j->n_keys; i++)
        sl_free(j->keys[i]);
    sl_free(j->scope);
    sl_free(j->name);
    sl_free(j->text);
    sl_free(j);
}

static int save_work(sqlite3 *db, void *arg)
{
    save_job_t *j = arg;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "INSERT INTO shared_objects (scope, name, version, data, updated_ms) "
                                "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (scope, name) DO UPDATE "
                                "SET version = ?3, data = ?4, updated_ms = ?5 WHERE version < ?3",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, j->scope, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, j->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, j->version);
        sqlite3_bind_text(st, 4, j->text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)sl_time_wall_ms());
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    if (rc != SQLITE_OK)
        SL_LOGE(&g_ctx, "shared object %s/%s: cannot save version %u: %s", j->scope, j->name,
                j->version, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : SL_EIO;
}

static void deliver_to(so_obj_t *o, struct sl_so_sub *s, const sl_so_change_t *c, size_t n)
{
    if (n && !s->dead && s->l && s->l->on_changes)
        s->l->on_changes(s->lud, o->name, o->version, o->persistent, c, n);
}

/* Back on the loop: the row is committed; the writer gets its confirmation. */
static void save_done(void *arg, int rc)
{
    save_job_t *j = arg;
    so_mod_t *m = g_mod;
    so_obj_t *o = m && j->writer_id ? obj_find(m, j->scope, j->name) : NULL;
    struct sl_so_sub *s = NULL;
    for (struct sl_so_sub *it = o ? o->subs : NULL; it && !s; it = it->next)
        if (it->id == j->writer_id)
            s = it;
    if (s && j->n_keys) {
        sl_so_change_t *c = sl_calloc(j->n_keys, sizeof *c);
        if (c) {
            for (size_t i = 0; i < j->n_keys; i++) {
                c[i].kind = rc == 0 ? SL_SO_SUCCESS : SL_SO_STATUS;
                c[i].key = rc == 0 ? j->keys[i] : "SharedObject.ObjectCreationFailed";
            }
            o->delivering++;
            deliver_to(o, s, c, rc == 0 ? j->n_keys : 1);
            o->delivering--;
            sl_free(c);
            reap(m, o);
        }
    }
    save_job_free(j);
}

/* Queues the object's new state for the store, holding the writer's
 * confirmation of keys until it is committed. Returns 1 when the
 * confirmation is held (the caller does not send it), 0 otherwise. */
static int save(so_mod_t *m, so_obj_t *o, const struct sl_so_sub *writer, const char *const *keys,
                size_t n_keys)
{
    if (!m->store)
        return 0;
    save_job_t *j = sl_calloc(1, sizeof *j + n_keys * sizeof(char *));
    char *text = json_dumps(o->data, JSON_COMPACT);
    if (!j || !text)
        goto fail;
    j->scope = sl_strdup(o->scope);
    j->name = sl_strdup(o->name);
    j->text = sl_strdup(text);
    free(text);
    text = NULL;
    j->version = o->version;
    j->writer_id = writer ? writer->id : 0;
    for (size_t i = 0; writer && i < n_keys; i++) {
        if (!(j->keys[i] = sl_strdup(keys[i])))
            goto fail;
        j->n_keys++;
    }
    if (!j->scope || !j->name || !j->text)
        goto fail;
    if (sl_store_submit(m->store, save_work, save_done, j))
        goto fail;
    return writer && n_keys ? 1 : 0;
fail:
    free(text);
    if (j)
        save_job_free(j);
    SL_LOGE(&g_ctx, "shared object %s/%s: cannot queue version %u for the store", o->scope,
            o->name, o->version);
    return 0;
}

typedef struct restore_ctx {
    so_mod_t *m;
    size_t n;
} restore_ctx_t;

static int restore_work(sqlite3 *db, void *arg)
{
    restore_ctx_t *rc = arg;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT scope, name, version, data FROM shared_objects", -1, &st,
                           NULL) != SQLITE_OK)
        return SL_EIO;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *scope = (const char *)sqlite3_column_text(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *text = (const char *)sqlite3_column_text(st, 3);
        if (!valid_name(scope, SL_SO_SCOPE_MAX) || !valid_name(name, SL_SO_NAME_MAX) || !text)
            continue;
        json_t *data = json_loads(text, 0, NULL);
        if (!json_is_object(data)) {
            json_decref(data);
            continue;
        }
        so_obj_t *o = obj_new(rc->m, scope, name, 1);
        if (!o) {
            json_decref(data);
            continue;
        }
        json_decref(o->data);
        o->data = data;
        o->version = (uint32_t)sqlite3_column_int64(st, 2);
        const char *k;
        json_t *v;
        json_object_foreach(data, k, v) o->data_bytes += strlen(k) + json_size(v);
        rc->n++;
    }
    sqlite3_finalize(st);
    return 0;
}

/* ------------------------------------------------------------------ */
/* the service                                                        */

static int svc_connect(void *ud, const char *scope, const char *name, int persistent,
                       const sl_so_client_t *client, sl_so_sub_t **out)
{
    so_mod_t *m = ud;
    *out = NULL;
    if (!valid_name(scope, SL_SO_SCOPE_MAX) || !valid_name(name, SL_SO_NAME_MAX) || !client)
        return SL_EINVAL;
    const sl_so_app_config_t *lim = limits(m, scope);
    if (!lim)
        return SL_EINVAL;
    if (lim->so_max_objects == 0)
        return SL_EDENIED;
    persistent = persistent ? 1 : 0;
    so_obj_t *o = obj_find(m, scope, name);
    if (o) {
        if (o->persistent != persistent)
            return SL_EBUSY;
        if ((int64_t)o->n_subs >= lim->so_max_subscribers)
            return SL_ETOOBIG;
        for (struct sl_so_sub *s = o->subs; s; s = s->next)
            if (s->owner == client->owner && !s->dead)
                return SL_EBUSY;
    } else {
        if ((int64_t)app_objects(m, scope) >= lim->so_max_objects)
            return SL_ETOOBIG;
        if (!(o = obj_new(m, scope, name, persistent)))
            return SL_ENOMEM;
    }
    struct sl_so_sub *s = sl_calloc(1, sizeof *s);
    if (!s) {
        if (!o->persistent && !o->n_subs)
            obj_remove(m, o);
        return SL_ENOMEM;
    }
    s->obj = o;
    s->id = ++m->next_sub_id;
    s->owner = client->owner;
    s->l = client->listener;
    s->lud = client->listener_ud;
    snprintf(s->session_id, sizeof s->session_id, "%s", client->session_id ? client->session_id : "");
    snprintf(s->proto, sizeof s->proto, "%s", client->proto ? client->proto : "");
    struct sl_so_sub **pp = &o->subs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    o->n_subs++;
    o->total_listeners++;
    if (o->n_subs > o->max_listeners)
        o->max_listeners = o->n_subs;

    /* The initial batch: INITIAL, then one CHANGE per attribute. */
    size_t n = 1 + json_object_size(o->data), i = 1;
    sl_so_change_t *c = sl_calloc(n, sizeof *c);
    if (c) {
        c[0].kind = SL_SO_INITIAL;
        const char *k;
        json_t *v;
        json_object_foreach(o->data, k, v) c[i++] = (sl_so_change_t){SL_SO_CHANGE, k, v};
        o->delivering++;
        deliver_to(o, s, c, i);
        o->delivering--;
        sl_free(c);
    }
    *out = s;
    emit(m, o, s, "connect", NULL);
    SL_LOGD(&g_ctx, "session %s joined shared object %s/%s (%zu subscribers)", s->session_id,
            scope, name, o->n_subs);
    return 0;
}

static void svc_disconnect(void *ud, sl_so_sub_t *s)
{
    so_mod_t *m = ud;
    if (!s || s->dead)
        return;
    so_obj_t *o = s->obj;
    s->dead = 1;
    emit(m, o, s, "disconnect", NULL);
    if (!o->delivering)
        reap(m, o);
}

static void svc_disconnect_owner(void *ud, const void *owner)
{
    so_mod_t *m = ud;
    /* Collected first: leaving may free an object, which changes the map. */
    size_t pos = 0, n = 0, cap = 0;
    struct sl_so_sub **subs = NULL;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&m->objs, &pos))) {
        for (struct sl_so_sub *s = ((so_obj_t *)e->val)->subs; s; s = s->next) {
            if (s->owner != owner || s->dead)
                continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 8;
                struct sl_so_sub **ns = sl_realloc(subs, nc * sizeof *ns);
                if (!ns)
                    break;
                subs = ns;
                cap = nc;
            }
            subs[n++] = s;
        }
    }
    for (size_t i = 0; i < n; i++)
        svc_disconnect(m, subs[i]);
    sl_free(subs);
}

static sl_so_sub_t *svc_find(void *ud, const char *scope, const char *name, const void *owner)
{
    so_obj_t *o = obj_find(ud, scope, name);
    for (struct sl_so_sub *s = o ? o->subs : NULL; s; s = s->next)
        if (s->owner == owner && !s->dead)
            return s;
    return NULL;
}

static const char *kind_event(sl_so_kind_t k, const json_t *v)
{
    switch (k) {
    case SL_SO_CHANGE:
        return v ? "set" : "delete";
    case SL_SO_DELETE:
        return "delete";
    case SL_SO_CLEAR:
        return "clear";
    case SL_SO_SEND:
        return "send";
    default:
        return "?";
    }
}

/*
 * Checks a batch against the limits without changing anything: the keys
 * and sizes the object would have after it.
 */
static int check(const so_obj_t *o, const sl_so_app_config_t *lim, const sl_so_change_t *c,
                 size_t n)
{
    int64_t keys = (int64_t)json_object_size(o->data);
    int64_t bytes = (int64_t)o->data_bytes;
    for (size_t i = 0; i < n; i++) {
        switch (c[i].kind) {
        case SL_SO_CHANGE:
        case SL_SO_DELETE: {
            if (!valid_name(c[i].key, SL_SO_KEY_MAX))
                return SL_EINVAL;
            /* Earlier changes of this batch to the same key are counted as
             * if applied; good enough for the cap (it errs on the safe side). */
            json_t *old = json_object_get(o->data, c[i].key);
            if (old) {
                keys--;
                bytes -= (int64_t)(strlen(c[i].key) + json_size(old));
            }
            if (c[i].kind == SL_SO_CHANGE && c[i].value) {
                size_t vs = json_size(c[i].value);
                if ((int64_t)vs > lim->so_max_value_bytes)
                    return SL_ETOOBIG;
                keys++;
                bytes += (int64_t)(strlen(c[i].key) + vs);
            }
            break;
        }
        case SL_SO_CLEAR:
            keys = 0;
            bytes = 0;
            break;
        case SL_SO_SEND:
            if (!valid_name(c[i].key, SL_SO_KEY_MAX) ||
                (c[i].value && !json_is_array(c[i].value)))
                return SL_EINVAL;
            if ((int64_t)json_size(c[i].value) > lim->so_max_value_bytes)
                return SL_ETOOBIG;
            break;
        default:
            return SL_EINVAL;
        }
    }
    if (keys > lim->so_max_keys || bytes > lim->so_max_object_bytes)
        return SL_ETOOBIG;
    return 0;
}

static int svc_apply(void *ud, sl_so_sub_t *writer, const char *scope, const char *name,
                     const sl_so_change_t *c, size_t n)
{
    so_mod_t *m = ud;
    so_obj_t *o = writer ? writer->obj : obj_find(m, scope, name);
    if (!o || (writer && writer->dead))
        return SL_ENOTFOUND;
    if (n == 0)
        return 0;
    const sl_so_app_config_t *lim = limits(m, o->scope);
    if (!lim)
        return SL_EINVAL;
    int rc = check(o, lim, c, n);
    if (rc)
        return rc;
    if (writer) {
        uint64_t now = sl_time_mono_ms();
        if (now - writer->rate_start_ms >= 1000) {
            writer->rate_start_ms = now;
            writer->rate_n = 0;
        }
        if ((int64_t)(writer->rate_n + n) > lim->so_max_updates_per_sec)
            return SL_ESLOW;
        writer->rate_n += n;
    }

    /* What everyone else sees, what the writer sees, and the writer's
     * confirmed keys (held until the store commits a persistent object). */
    sl_so_change_t *others = sl_calloc(n, sizeof *others);
    sl_so_change_t *mine = sl_calloc(n, sizeof *mine);
    const char **ok = sl_calloc(n, sizeof *ok);
    if (!others || !mine || !ok) {
        rc = SL_ENOMEM;
        goto out;
    }
    size_t n_others = 0, n_mine = 0, n_ok = 0;
    for (size_t i = 0; i < n; i++) {
        sl_so_change_t ch = c[i];
        if (ch.kind == SL_SO_CHANGE && !ch.value)
            ch.kind = SL_SO_DELETE;
        switch (ch.kind) {
        case SL_SO_CHANGE: {
            /* The object takes its own reference; the batch borrows it. */
            json_t *old = json_object_get(o->data, ch.key);
            if (old)
                o->data_bytes -= strlen(ch.key) + json_size(old);
            if (json_object_set(o->data, ch.key, ch.value)) {
                rc = SL_ENOMEM; /* partly applied: the version still moves below */
                break;
            }
            o->data_bytes += strlen(ch.key) + json_size(ch.value);
            o->total_changes++;
            others[n_others++] = ch;
            ok[n_ok++] = ch.key;
            break;
        }
        case SL_SO_DELETE: {
            json_t *old = json_object_get(o->data, ch.key);
            if (!old)
                break; /* nothing to say: Red5 only syncs a removal that happened */
            o->data_bytes -= strlen(ch.key) + json_size(old);
            json_object_del(o->data, ch.key);
            ch.value = NULL;
            others[n_others++] = ch;
            mine[n_mine++] = ch;
            o->total_deletes++;
            break;
        }
        case SL_SO_CLEAR:
            json_object_clear(o->data);
            o->data_bytes = 0;
            others[n_others++] = ch;
            mine[n_mine++] = ch;
            o->total_deletes++;
            break;
        case SL_SO_SEND:
            others[n_others++] = ch;
            mine[n_mine++] = ch;
            o->total_sends++;
            break;
        default:
            break;
        }
    }
    o->version++;

    /* The batches borrow the caller's keys (valid for this call) and the
     * values the object holds. Persist, then deliver in join order. */
    int held = 0;
    if (o->persistent)
        held = save(m, o, writer, ok, n_ok);
    if (writer && !held) {
        /* Confirmations first, in the order of the writes. */
        sl_so_change_t *all = sl_calloc(n_ok + n_mine, sizeof *all);
        if (all) {
            size_t k = 0;
            for (size_t i = 0; i < n_ok; i++)
                all[k++] = (sl_so_change_t){SL_SO_SUCCESS, ok[i], NULL};
            for (size_t i = 0; i < n_mine; i++)
                all[k++] = mine[i];
            sl_free(mine);
            mine = all;
            n_mine = k;
        }
    }
    o->delivering++;
    for (struct sl_so_sub *s = o->subs; s; s = s->next) {
        if (s == writer)
            deliver_to(o, s, mine, n_mine);
        else
            deliver_to(o, s, others, n_others);
    }
    o->delivering--;
    for (size_t i = 0; i < n_others; i++)
        emit(m, o, writer, kind_event(others[i].kind, others[i].value), others[i].key);
    reap(m, o);
out:
    sl_free(others);
    sl_free(mine);
    sl_free(ok);
    return rc;
}

static int svc_get(void *ud, const char *scope, const char *name, json_t **data,
                   sl_so_stats_t *st)
{
    so_obj_t *o = obj_find(ud, scope, name);
    if (!o)
        return SL_ENOTFOUND;
    if (data) {
        json_t *copy = json_deep_copy(o->data);
        if (!copy)
            return SL_ENOMEM;
        *data = copy;
    }
    if (st) {
        *st = (sl_so_stats_t){.persistent = o->persistent,
                              .version = o->version,
                              .active_listeners = o->n_subs,
                              .total_listeners = o->total_listeners,
                              .max_listeners = o->max_listeners,
                              .total_changes = o->total_changes,
                              .total_deletes = o->total_deletes,
                              .total_sends = o->total_sends,
                              .n_keys = json_object_size(o->data),
                              .data_bytes = o->data_bytes};
    }
    return 0;
}

static void svc_list(void *ud, const char *scope, void (*each)(void *arg, const char *name),
                     void *arg)
{
    so_mod_t *m = ud;
    size_t pos = 0;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&m->objs, &pos))) {
        const so_obj_t *o = e->val;
        if (strcmp(o->scope, scope) == 0)
            each(arg, o->name);
    }
}

static const sl_so_service_t g_svc = {
    .connect = svc_connect,
    .disconnect = svc_disconnect,
    .disconnect_owner = svc_disconnect_owner,
    .find = svc_find,
    .apply = svc_apply,
    .get = svc_get,
    .list = svc_list,
};

/* ------------------------------------------------------------------ */
/* the module                                                         */

static int so_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    (void)api;
    sl_core_t *core = sl_host_core(h);
    *state = NULL;
    if (!sl_so_cfg(core->cfg)->enabled)
        return 0;
    so_mod_t *m = sl_calloc(1, sizeof *m);
    if (!m)
        return SL_ENOMEM;
    m->core = core;
    sl_map_init(&m->objs);
    m->store = sl_store_find(core);
    if (m->store && sl_store_migrate(m->store, "shared_objects", g_migrations,
                                     sizeof g_migrations / sizeof g_migrations[0]) != 0)
        m->store = NULL; /* logged by the store */
    if (m->store) {
        restore_ctx_t rc = {.m = m};
        if (sl_store_call(m->store, restore_work, &rc) == 0 && rc.n)
            SL_LOGI(&g_ctx, "shared objects: restored %zu persistent objects", rc.n);
    } else {
        SL_LOGW(&g_ctx, "shared objects: no store; persistent objects are kept in memory only");
    }
    int rc = sl_service_register(core, SL_SO_SERVICE, SL_SO_SERVICE_MAJOR, SL_SO_SERVICE_MINOR,
                                 &g_svc, m);
    if (rc) {
        size_t pos = 0;
        sl_map_entry_t *e;
        while ((e = sl_map_next(&m->objs, &pos)))
            obj_free(e->val);
        sl_map_cleanup(&m->objs);
        sl_free(m);
        return rc;
    }
    g_mod = m;
    *state = m;
    m->json = sl_so_json_start(core);
    if (!m->json)
        SL_LOGE(&g_ctx, "shared objects: no memory for the JSON form: browsers cannot join objects");
    return 0;
}

static void so_stop(void *state)
{
    so_mod_t *m = state;
    if (!m)
        return;
    /* Transports that close after this find no service and leave their
     * subscribers to so_free; store completions still due deliver nothing
     * (their connections may be gone before so_free runs). */
    sl_so_json_stop(m->json); /* its clients leave while the service still answers */
    m->json = NULL;
    sl_service_unregister(m->core, SL_SO_SERVICE, &g_svc);
    if (g_mod == m)
        g_mod = NULL;
}

static void so_free(void *state)
{
    so_mod_t *m = state;
    if (!m)
        return;
    if (g_mod == m)
        g_mod = NULL;
    sl_so_json_stop(m->json);
    m->json = NULL;
    size_t pos = 0;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&m->objs, &pos)))
        obj_free(e->val);
    sl_map_cleanup(&m->objs);
    sl_free(m);
}

static int so_reload(void *state)
{
    (void)state; /* limits are read from core->cfg at each call */
    return 0;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "shared_objects",
    .description = "Remote Shared Objects (RTMP, API) with persistence in the store",
    .init = so_init,
    .stop = so_stop,
    .destroy = so_free,
    .reload = so_reload,
};

const sl_builtin_t sl_shared_objects_builtin = {
    .plugin = &plugin,
    .config = &sl_so_config_section,
};
