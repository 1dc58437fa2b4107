/*
 * NodeGroupConfig and rule state (as_group.h): JSON in and out with
 * jansson, into fixed structs. Each field is checked for type and bounds;
 * the first problem is reported with a static text naming the field.
 */
#include "cluster/autoscale/as_group.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/str.h"
#include "sluice/errors.h"

int sl_as_group_name_ok(const char *name)
{
    size_t n = 0;
    for (; name[n]; n++)
        if (!(isalnum((unsigned char)name[n]) || name[n] == '_' || name[n] == '-'))
            return 0;
    return n >= 1 && n < SL_AS_GROUP_NAME_MAX;
}

/* A name field: a string of [A-Za-z0-9_.-], 1..cap-1 bytes. */
static int copy_name(json_t *v, char *out, size_t cap)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n >= cap)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-' || s[i] == '.'))
            return 0;
    memcpy(out, s, n + 1);
    return 1;
}

/* An integer field in [lo, hi] (absent: def). 0 when present and bad. */
static int get_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t def, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d >= (double)lo && d <= (double)hi) || d != (double)(int64_t)d)
            return 0;
        *out = (int64_t)d;
        return 1;
    }
    if (!json_is_integer(v))
        return 0;
    json_int_t i = json_integer_value(v);
    if (i < lo || i > hi)
        return 0;
    *out = i;
    return 1;
}

static int parse_expr(json_t *o, const char *key, sl_as_expr_t *e, const char **why)
{
    json_t *v = json_object_get(o, key);
    e->n_nodes = 0;
    e->root = -1;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        *why = "an expression must be a string";
        return SL_EINVAL;
    }
    size_t at;
    int rc = sl_as_expr_parse(json_string_value(v), json_string_length(v), e, why, &at);
    return rc == SL_ETOOBIG || rc == SL_EDEPTH ? SL_EINVAL : rc;
}

static int parse_rule(json_t *o, const char *role_key, int64_t def_cool, sl_as_rule_t *r,
                      const char **why)
{
    int64_t v;
    memset(r, 0, sizeof *r);
    if (!json_is_object(o)) {
        *why = "rulesByRole: each rule must be an object";
        return SL_EINVAL;
    }
    json_t *nm = json_object_get(o, "nodeRoleName");
    if (nm && !json_is_null(nm)) {
        if (!copy_name(nm, r->role, sizeof r->role)) {
            *why = "rulesByRole: bad nodeRoleName";
            return SL_EINVAL;
        }
    } else if (!role_key || strlen(role_key) >= sizeof r->role) {
        *why = "rulesByRole: a rule needs nodeRoleName";
        return SL_EINVAL;
    } else {
        snprintf(r->role, sizeof r->role, "%s", role_key);
    }
    if (!get_int(o, "min", 0, SL_AS_NODE_MAX, 0, &v)) {
        *why = "rulesByRole: min must be an integer in 0..200";
        return SL_EINVAL;
    }
    r->min = (int)v;
    if (!get_int(o, "max", 0, SL_AS_NODE_MAX, r->min, &v) || v < r->min) {
        *why = "rulesByRole: max must be an integer in min..200";
        return SL_EINVAL;
    }
    r->max = (int)v;
    if (!get_int(o, "increment", 1, SL_AS_NODE_MAX, 1, &v)) {
        *why = "rulesByRole: increment must be an integer in 1..200";
        return SL_EINVAL;
    }
    r->increment = (int)v;
    int64_t cool = def_cool;
    if (!get_int(o, "coolDownPeriod", 0, 86400000, cool, &cool) ||
        !get_int(o, "coolDown", 0, 86400000, cool, &cool)) {
        *why = "rulesByRole: coolDownPeriod must be milliseconds in 0..86400000";
        return SL_EINVAL;
    }
    r->cooldown_ms = cool;
    int rc = parse_expr(o, "outExpression", &r->out_expr, why);
    if (!rc)
        rc = parse_expr(o, "inExpression", &r->in_expr, why);
    return rc;
}

static int parse_subgroup(json_t *o, const char *key, int64_t def_cool, sl_as_subgroup_t *s,
                          const char **why)
{
    memset(s, 0, sizeof *s);
    if (!json_is_object(o)) {
        *why = "groups: each subgroup must be an object";
        return SL_EINVAL;
    }
    json_t *nm = json_object_get(o, "subGroupName");
    if (!nm)
        nm = json_object_get(o, "name");
    if (nm && !json_is_null(nm)) {
        if (!copy_name(nm, s->name, sizeof s->name)) {
            *why = "groups: bad subGroupName";
            return SL_EINVAL;
        }
    } else if (key && strlen(key) < sizeof s->name) {
        snprintf(s->name, sizeof s->name, "%s", key);
    } else {
        snprintf(s->name, sizeof s->name, "default");
    }
    json_t *rules = json_object_get(o, "rulesByRole");
    if (!rules || json_is_null(rules))
        return 0;
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_object(rules)) {
        json_object_foreach(rules, k, v) {
            if (s->n_rules >= SL_AS_ROLES_MAX) {
                *why = "rulesByRole: too many rules";
                return SL_EINVAL;
            }
            int rc = parse_rule(v, k, def_cool, &s->rules[s->n_rules], why);
            if (rc)
                return rc;
            s->n_rules++;
        }
    } else if (json_is_array(rules)) {
        json_array_foreach(rules, i, v) {
            if (s->n_rules >= SL_AS_ROLES_MAX) {
                *why = "rulesByRole: too many rules";
                return SL_EINVAL;
            }
            int rc = parse_rule(v, NULL, def_cool, &s->rules[s->n_rules], why);
            if (rc)
                return rc;
            s->n_rules++;
        }
    } else {
        *why = "rulesByRole must be an object";
        return SL_EINVAL;
    }
    for (int a = 0; a < s->n_rules; a++)
        for (int b = a + 1; b < s->n_rules; b++)
            if (strcmp(s->rules[a].role, s->rules[b].role) == 0) {
                *why = "rulesByRole: two rules for one role";
                return SL_EINVAL;
            }
    return 0;
}

static int parse_role(json_t *o, const char *key, sl_as_role_t *r, const char **why)
{
    memset(r, 0, sizeof *r);
    if (!json_is_object(o)) {
        *why = "roles: each role must be an object";
        return SL_EINVAL;
    }
    json_t *nm = json_object_get(o, "name");
    if (nm && !json_is_null(nm)) {
        if (!copy_name(nm, r->name, sizeof r->name)) {
            *why = "roles: bad name";
            return SL_EINVAL;
        }
    } else if (key && strlen(key) < sizeof r->name) {
        snprintf(r->name, sizeof r->name, "%s", key);
    } else {
        *why = "roles: a role needs a name";
        return SL_EINVAL;
    }
    json_t *p = json_object_get(o, "parentRoleName");
    if (p && !json_is_null(p) && !copy_name(p, r->parent, sizeof r->parent)) {
        *why = "roles: bad parentRoleName";
        return SL_EINVAL;
    }
    json_t *caps = json_object_get(o, "capabilities"), *c;
    size_t i;
    if (caps && !json_is_null(caps)) {
        if (!json_is_array(caps) || json_array_size(caps) > 8) {
            *why = "roles: capabilities must be an array";
            return SL_EINVAL;
        }
        json_array_foreach(caps, i, c) {
            const char *s = json_string_value(c);
            if (!s) {
                *why = "roles: capabilities must be strings";
                return SL_EINVAL;
            }
            if (strcmp(s, "PUBLISH") == 0)
                r->caps |= SL_AS_CAP_PUBLISH;
            else if (strcmp(s, "SUBSCRIBE") == 0)
                r->caps |= SL_AS_CAP_SUBSCRIBE;
            else if (strcmp(s, "TRANSCODE") == 0)
                r->caps |= SL_AS_CAP_TRANSCODE;
            else if (strcmp(s, "MIX") == 0)
                r->caps |= SL_AS_CAP_MIX;
            else if (strcmp(s, "XILINX") != 0 && strcmp(s, "ZIXI") != 0) {
                *why = "roles: unknown capability (PUBLISH, SUBSCRIBE, TRANSCODE, MIX)";
                return SL_EINVAL;
            }
        }
    }
    return 0;
}

int sl_as_group_parse(const char *json, size_t len, int64_t def_cool, sl_as_group_t *g,
                      const char **why)
{
    memset(g, 0, sizeof *g);
    *why = NULL;
    if (len > SL_AS_GROUP_JSON_MAX) {
        *why = "node group config too large";
        return SL_ETOOBIG;
    }
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = SL_EINVAL;
    const char *k;
    json_t *v, *x;
    size_t i;
    if (!root || !json_is_object(root)) {
        *why = "the body must be a JSON object";
        goto fail;
    }
    if (!copy_name(json_object_get(root, "name"), g->name, sizeof g->name) ||
        !sl_as_group_name_ok(g->name)) {
        *why = "name: 1..16 characters of [A-Za-z0-9_-]";
        goto fail;
    }
    x = json_object_get(root, "cloudPlatform");
    if (x && !json_is_null(x) && !copy_name(x, g->platform, sizeof g->platform)) {
        *why = "cloudPlatform: bad value";
        goto fail;
    }
    if (!get_int(root, "maxPublishers", 0, INT32_MAX, 0, &g->max_publishers) ||
        !get_int(root, "maxSubscribers", 0, INT32_MAX, 0, &g->max_subscribers)) {
        *why = "maxPublishers / maxSubscribers: integers >= 0";
        goto fail;
    }
    x = json_object_get(root, "scalingPaused");
    if (x && !json_is_null(x) && !json_is_boolean(x)) {
        *why = "scalingPaused: a boolean";
        goto fail;
    }
    g->paused = json_is_true(x);
    x = json_object_get(root, "roles");
    if (x && json_is_object(x)) {
        json_object_foreach(x, k, v) {
            if (g->n_roles >= SL_AS_ROLES_MAX) {
                *why = "roles: too many";
                goto fail;
            }
            if ((rc = parse_role(v, k, &g->roles[g->n_roles], why)))
                goto fail;
            g->n_roles++;
        }
    } else if (x && json_is_array(x)) {
        json_array_foreach(x, i, v) {
            if (g->n_roles >= SL_AS_ROLES_MAX) {
                *why = "roles: too many";
                goto fail;
            }
            if ((rc = parse_role(v, NULL, &g->roles[g->n_roles], why)))
                goto fail;
            g->n_roles++;
        }
    } else if (x && !json_is_null(x)) {
        *why = "roles: an object keyed by role name";
        rc = SL_EINVAL;
        goto fail;
    }
    rc = SL_EINVAL;
    x = json_object_get(root, "groups");
    if (!x)
        x = json_object_get(root, "subGroups");
    if (x && json_is_object(x)) {
        json_object_foreach(x, k, v) {
            if (g->n_subs >= SL_AS_SUBGROUPS_MAX) {
                *why = "groups: too many subgroups";
                goto fail;
            }
            if ((rc = parse_subgroup(v, k, def_cool, &g->subs[g->n_subs], why)))
                goto fail;
            g->n_subs++;
        }
    } else if (x && json_is_array(x)) {
        json_array_foreach(x, i, v) {
            if (g->n_subs >= SL_AS_SUBGROUPS_MAX) {
                *why = "groups: too many subgroups";
                goto fail;
            }
            if ((rc = parse_subgroup(v, NULL, def_cool, &g->subs[g->n_subs], why)))
                goto fail;
            g->n_subs++;
        }
    } else if (x && !json_is_null(x)) {
        *why = "groups: an object keyed by subgroup name";
        goto fail;
    }
    rc = SL_EINVAL; /* for the checks below; parse_* left 0 */
    for (int a = 0; a < g->n_subs; a++)
        for (int b = a + 1; b < g->n_subs; b++)
            if (strcmp(g->subs[a].name, g->subs[b].name) == 0) {
                *why = "groups: two subgroups with one name";
                goto fail;
            }
    /* A rule's role must be a declared role when roles are given. */
    for (int s = 0; s < g->n_subs; s++)
        for (int r = 0; g->n_roles && r < g->subs[s].n_rules; r++) {
            int found = 0;
            for (int q = 0; q < g->n_roles; q++)
                found |= strcmp(g->roles[q].name, g->subs[s].rules[r].role) == 0;
            if (!found) {
                *why = "rulesByRole: a rule names a role not in roles";
                goto fail;
            }
        }
    rc = 0;
fail:
    if (!rc && *why)
        rc = SL_EINVAL; /* a refusal after a sub-parser had left rc at 0 */
    json_decref(root);
    if (rc)
        g->n_roles = g->n_subs = 0;
    return rc;
}

const sl_as_rule_t *sl_as_group_rule(const sl_as_group_t *g, const char *sub, const char *role)
{
    for (int s = 0; s < g->n_subs; s++) {
        if (strcmp(g->subs[s].name, sub) != 0)
            continue;
        for (int r = 0; r < g->subs[s].n_rules; r++)
            if (strcmp(g->subs[s].rules[r].role, role) == 0)
                return &g->subs[s].rules[r];
    }
    return NULL;
}

static void read_tracked(json_t *arr, sl_as_tracked_t *out, int *n)
{
    size_t i;
    json_t *v;
    *n = 0;
    if (!json_is_array(arr))
        return;
    json_array_foreach(arr, i, v) {
        if (*n >= SL_AS_PENDING_MAX)
            break;
        json_t *id = json_object_get(v, "id");
        if (!json_is_string(id) || json_string_length(id) == 0 ||
            json_string_length(id) >= SL_CLUSTER_ID_MAX)
            continue;
        sl_as_tracked_t *t = &out[(*n)++];
        memset(t, 0, sizeof *t);
        memcpy(t->id, json_string_value(id), json_string_length(id) + 1);
        json_t *s = json_object_get(v, "since");
        t->since_ms = json_is_integer(s) && json_integer_value(s) > 0
                          ? (uint64_t)json_integer_value(s) : 0;
        t->hard = json_is_true(json_object_get(v, "hard"));
    }
}

void sl_as_state_parse(const char *json, sl_as_state_t *st)
{
    memset(st, 0, sizeof *st);
    st->manual = -1;
    if (!json || strlen(json) > SL_AS_GROUP_JSON_MAX)
        return;
    json_t *root = json_loads(json, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    json_t *v;
    if (json_is_integer(v = json_object_get(root, "gen")) && json_integer_value(v) > 0)
        st->gen = (uint64_t)json_integer_value(v);
    if (json_is_integer(v = json_object_get(root, "lastActionMs")) && json_integer_value(v) > 0)
        st->last_action_ms = (uint64_t)json_integer_value(v);
    if (json_is_integer(v = json_object_get(root, "seq")) && json_integer_value(v) > 0)
        st->next_seq = (uint64_t)json_integer_value(v);
    if (json_is_integer(v = json_object_get(root, "manual")) && json_integer_value(v) >= 0 &&
        json_integer_value(v) <= SL_AS_NODE_MAX)
        st->manual = (int)json_integer_value(v);
    read_tracked(json_object_get(root, "pending"), st->pending, &st->n_pending);
    read_tracked(json_object_get(root, "draining"), st->draining, &st->n_draining);
    json_decref(root);
}

static json_t *dump_tracked(const sl_as_tracked_t *t, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        json_t *o = json_pack("{s:s, s:I, s:b}", "id", t[i].id, "since", (json_int_t)t[i].since_ms,
                              "hard", t[i].hard);
        if (!o || json_array_append_new(a, o)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

char *sl_as_state_dump(const sl_as_state_t *st)
{
    json_t *o = json_pack("{s:I, s:I, s:I, s:i, s:o?, s:o?}", "gen", (json_int_t)st->gen,
                          "lastActionMs", (json_int_t)st->last_action_ms, "seq",
                          (json_int_t)st->next_seq, "manual", st->manual, "pending",
                          dump_tracked(st->pending, st->n_pending), "draining",
                          dump_tracked(st->draining, st->n_draining));
    if (!o)
        return NULL;
    char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!txt)
        return NULL;
    char *out = sl_strdup(txt);
    free(txt);
    return out;
}

/* ------------------------------------------------------------------ */
/* SM 4.0 launch configurations                                        */

int sl_as_launch_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
              (n[i] >= '0' && n[i] <= '9') || n[i] == '-' || n[i] == '_' || n[i] == '.'))
            return 0;
    return 1;
}

static const char *launch_check(const json_t *b, const char *url_name)
{
    const json_t *lc = json_object_get(b, "launchconfig");
    const char *name = json_string_value(json_object_get(lc, "name"));
    if (!json_is_object(lc) || !name || !sl_as_launch_name_ok(name))
        return "body {\"launchconfig\":{\"name\",...}} with a name of 1..64 [A-Za-z0-9_.-]";
    if (url_name && strcmp(name, url_name) != 0)
        return "the body's name differs from the URL's";
    const json_t *t = json_object_get(json_object_get(lc, "targets"), "target");
    if (!json_is_array(t) || json_array_size(t) == 0 || json_array_size(t) > 8)
        return "launchconfig.targets.target must be an array of 1..8 targets";
    size_t i;
    json_t *v;
    json_array_foreach(t, i, v) {
        const char *role = json_string_value(json_object_get(v, "role"));
        const json_t *cap = json_object_get(v, "connectionCapacity");
        if (!role || (strcmp(role, "origin") && strcmp(role, "edge") && strcmp(role, "relay") &&
                      strcmp(role, "transcoder") && strcmp(role, "all")))
            return "each target needs a role: origin, edge, relay, transcoder or all";
        if (cap && !(json_is_integer(cap) && json_integer_value(cap) >= 0) &&
            !(json_is_string(cap) && json_string_length(cap) > 0 && json_string_length(cap) < 10 &&
              strspn(json_string_value(cap), "0123456789") == json_string_length(cap)))
            return "connectionCapacity must be a non-negative integer";
    }
    return NULL;
}

json_t *sl_as_launch_parse(const char *text, size_t len, const char *url_name, const char **why)
{
    *why = "the body is not JSON, nests too deep or is larger than 16 KB";
    if (!text || len == 0 || len > SL_AS_LAUNCH_JSON_MAX)
        return NULL;
    if (!sl_json_depth_ok(text, len, 16))
        return NULL;
    json_t *b = json_loadb(text, len, 0, NULL);
    if (!b)
        return NULL;
    const char *bad = launch_check(b, url_name);
    if (bad) {
        *why = bad;
        json_decref(b);
        return NULL;
    }
    return b;
}
