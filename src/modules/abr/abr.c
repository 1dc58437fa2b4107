/*
 * The abr module (see abr.h, docs/abr.md).
 *
 * Provisions: a list of entries, each from one source (configuration, API
 * or cluster setting). When the same GUID comes from several, the cluster's
 * wins over the API's, which wins over the configuration's: the cluster is
 * the truth shared with the stream manager. The cluster's are re-read every
 * abr.settings_interval (the cluster service has no change notification;
 * its settings are a local snapshot, so a read is cheap).
 *
 * Jobs: one per live provisioned source (the level-1 stream) on a node that
 * transcodes. A job is an internal sink on the source stream feeding one
 * video transcoder (media/vtranscode.h) whose outputs are pushed into the
 * variant streams; each variant is published by a socketless session of
 * protocol "abr" (remote address "transcoder"), like a restream pull, so
 * that it is listed, kickable and announced (publish/unpublish events, and
 * webhooks) like any publisher. Audio frames of the source are pushed to
 * every variant as they are (frames are immutable and shared).
 *
 * Everything is reconciled in one place, scan(), run on the next loop turn
 * after anything changed (a publish event, a source's unpublish, a
 * provision added or removed, a kick) and on every tick: start the jobs
 * that should run, stop those that should not. Nothing starts or stops
 * inside another module's callback (an event, a sink callback).
 */
#include "modules/abr/abr.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/core.h"
#include "app/events.h"
#include "app/services.h"
#include "app/svc/abr.h"
#include "app/svc/api.h"
#include "app/svc/cluster.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/time.h"
#include "media/stream.h"
#include "media/vtranscode.h"
#include "modules/abr/abr_config.h"
#include "modules/abr/abr_prov.h"
#include "proto/http/http.h"
#include "sluice/errors.h"

enum { SRC_CONFIG = 0, SRC_API = 1, SRC_CLUSTER = 2 };
static const char *const g_src_names[] = {"config", "api", "cluster"};

#define SETTING_PREFIX "provision/"

static const sl_log_ctx_t g_ctx = {.proto = "abr"};

typedef struct abr_mod abr_mod_t;
typedef struct job job_t;

typedef struct prov {
    sl_list_t link;               /* in m->provs */
    int src;                      /* SRC_* */
    int valid;                    /* parsed (a bad cluster setting is kept, not used, logged once) */
    int mark;                     /* cluster sweep */
    char *json;                   /* cluster: the setting's text (change detection), owned */
    char key[SL_ABR_PATH_MAX + 16]; /* cluster: its setting key */
    sl_abr_prov_t p;
} prov_t;

/* One published variant: a publisher without a socket. */
typedef struct variant {
    sl_session_t sess;            /* must stay first; registered while live */
    job_t *job;
    const sl_abr_level_t *lv;     /* points into job->prov (copied, stable for the job's life) */
    sl_stream_t *st;              /* while live */
    int live;                     /* published, session registered */
    int kicked;                   /* unpublish at the next scan; stays down for the job's life */
    int claimed;                  /* placement claimed in the cluster */
} variant_t;

struct job {
    sl_list_t link;               /* in m->jobs */
    abr_mod_t *m;
    sl_abr_prov_t prov;           /* copy: the provision this job runs (compared at each scan) */
    sl_sink_t sink;               /* internal, on the level-1 stream */
    sl_vtranscoder_t *vt;
    variant_t *v[SL_ABR_LEVELS_MAX]; /* levels 2..n, v[i] for prov.lv[i + 1] */
    size_t n_v;
    int stopping;                 /* the source unpublished: stop at the next scan */
    int claimed_src;              /* the level-1 placement is ours (transcoder role) */
    uint64_t started_mono;
    uint64_t video_in, audio_in, refused; /* source frames seen; frames the transcoder refused */
};

struct abr_mod {
    sl_core_t *core;
    const sl_abr_config_t *cfg;
    sl_list_t provs;
    size_t n_provs;
    sl_list_t jobs;
    size_t n_jobs;
    uint64_t jobs_refused;        /* over max_transcoders, or the transcoder would not start */
    int ev_id;
    int svc_registered;
    const sl_svc_api_t *api;
    void *api_ud;
    uv_timer_t tick;              /* cluster settings, and a scan */
    uv_timer_t defer;             /* a scan on the next loop turn */
    int stopping;
};

static const sl_session_ops_t variant_session_ops;
static const sl_sink_ops_t job_sink_ops;

/* ------------------------------------------------------------------ */
/* provisions                                                          */

/* The provision in force for guid (the highest source), or NULL. */
static const sl_abr_prov_t *prov_get(abr_mod_t *m, const char *guid)
{
    const prov_t *best = NULL;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->provs) {
        const prov_t *p = sl_container_of(it, prov_t, link);
        if (p->valid && strcmp(p->p.guid, guid) == 0 && (!best || p->src > best->src))
            best = p;
    }
    return best ? &best->p : NULL;
}

static int prov_in_force(abr_mod_t *m, const prov_t *p)
{
    return p->valid && prov_get(m, p->p.guid) == &p->p;
}

static prov_t *prov_find(abr_mod_t *m, int src, const char *guid)
{
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->provs) {
        prov_t *p = sl_container_of(it, prov_t, link);
        if (p->src == src && strcmp(p->p.guid, guid) == 0)
            return p;
    }
    return NULL;
}

static prov_t *prov_find_key(abr_mod_t *m, const char *key)
{
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->provs) {
        prov_t *p = sl_container_of(it, prov_t, link);
        if (p->src == SRC_CLUSTER && strcmp(p->key, key) == 0)
            return p;
    }
    return NULL;
}

static void prov_free(abr_mod_t *m, prov_t *p)
{
    sl_list_remove(&p->link);
    m->n_provs--;
    sl_free(p->json);
    sl_free(p);
}

/* Adds or replaces the provision of src for p->guid. 0, SL_ETOOBIG (budget), SL_ENOMEM. */
static int prov_put(abr_mod_t *m, int src, const sl_abr_prov_t *pv, const char *json,
                    const char *key)
{
    prov_t *p = key ? prov_find_key(m, key) : prov_find(m, src, pv ? pv->guid : "");
    if (!p) {
        if ((int64_t)m->n_provs >= m->cfg->max_provisions)
            return SL_ETOOBIG;
        if (!(p = sl_calloc(1, sizeof *p)))
            return SL_ENOMEM;
        p->src = src;
        sl_list_push_back(&m->provs, &p->link);
        m->n_provs++;
    }
    char *copy = json ? sl_strdup(json) : NULL;
    if (json && !copy)
        return SL_ENOMEM;
    sl_free(p->json);
    p->json = copy;
    if (key)
        snprintf(p->key, sizeof p->key, "%s", key);
    p->valid = pv != NULL;
    if (pv)
        p->p = *pv;
    else
        memset(&p->p, 0, sizeof p->p);
    return 0;
}

/* The provision whose level-1 variant is path and that a transcoder makes, or NULL. */
static const sl_abr_prov_t *prov_of_source(abr_mod_t *m, const char *path)
{
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->provs) {
        const prov_t *p = sl_container_of(it, prov_t, link);
        if (prov_in_force(m, p) && p->p.transcode && p->p.n >= 2 &&
            strcmp(p->p.lv[0].guid, path) == 0)
            return &p->p;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* role                                                                */

static const sl_svc_cluster_t *cluster_svc(abr_mod_t *m, void **ud)
{
    *ud = NULL;
    return sl_service_get(m->core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR, 0, ud);
}

/* This node makes variants: no cluster, or a cluster role of transcoder or all. */
static int transcodes(abr_mod_t *m, int *is_transcoder_role)
{
    void *cud;
    const sl_svc_cluster_t *cl = cluster_svc(m, &cud);
    *is_transcoder_role = 0;
    if (!cl)
        return 1;
    const sl_cluster_node_t *self = cl->self(cud);
    if (!self)
        return 0;
    *is_transcoder_role = strcmp(self->role, "transcoder") == 0;
    return *is_transcoder_role || strcmp(self->role, "all") == 0;
}

/* ------------------------------------------------------------------ */
/* jobs                                                                */

static void on_defer(uv_timer_t *t);

static void schedule_scan(abr_mod_t *m)
{
    if (!m->stopping && !uv_is_closing((uv_handle_t *)&m->defer))
        uv_timer_start(&m->defer, on_defer, 0, 0);
}

/* Splits "app/name" at its last '/': the app part into app, the name into name. */
static void split_path(const char *path, char *app, size_t app_cap, const char **name)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= app_cap)
        n = app_cap - 1;
    memcpy(app, path, n);
    app[n] = '\0';
    *name = slash ? slash + 1 : path;
}

static void variant_claim(abr_mod_t *m, const char *path, int *claimed)
{
    void *cud;
    const sl_svc_cluster_t *cl = sl_service_get(m->core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR, 1, &cud);
    if (cl && cl->claim(cud, path) == 0)
        *claimed = 1;
}

static void variant_release(abr_mod_t *m, const char *path, int *claimed)
{
    void *cud;
    const sl_svc_cluster_t *cl = sl_service_get(m->core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR, 1, &cud);
    if (cl && *claimed)
        cl->release(cud, path);
    *claimed = 0;
}

static uint8_t *amf_num(uint8_t *p, const char *key, double v)
{
    size_t n = strlen(key);
    p[0] = 0;
    p[1] = (uint8_t)n;
    memcpy(p + 2, key, n);
    p += 2 + n;
    *p++ = 0; /* AMF0 number */
    uint64_t u;
    memcpy(&u, &v, 8);
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(u >> (56 - 8 * i));
    return p;
}

/*
 * The variant's own onMetaData (its size, rate and codecs, not the
 * source's), pushed before its first frame and kept by the stream for
 * every player that joins; the stream's fields the API reports are set
 * the way a publisher's metadata sets them.
 */
static void variant_metadata(variant_t *v, const sl_stream_t *src)
{
    sl_stream_t *st = v->st;
    const sl_abr_level_t *l = v->lv;
    double fps = l->fps ? (double)l->fps : src->fps;
    st->width = l->width;
    st->height = l->height;
    st->fps = fps;
    st->meta_video_kbps = l->bitrate / 1000.0;
    st->meta_audio_kbps = src->meta_audio_kbps;
    uint8_t body[320], *p = body;
    *p++ = 2; /* string */
    *p++ = 0;
    *p++ = 10;
    memcpy(p, "onMetaData", 10);
    p += 10;
    *p++ = 8; /* ECMA array */
    memset(p, 0, 4);
    p += 4;
    p = amf_num(p, "width", l->width);
    p = amf_num(p, "height", l->height);
    p = amf_num(p, "videodatarate", l->bitrate / 1000.0);
    p = amf_num(p, "videocodecid", 7);
    if (fps > 0)
        p = amf_num(p, "framerate", fps);
    if (src->audio_codec == SL_CODEC_AAC) {
        p = amf_num(p, "audiocodecid", 10);
        if (src->meta_audio_kbps > 0)
            p = amf_num(p, "audiodatarate", src->meta_audio_kbps);
    }
    p[0] = p[1] = 0;
    p[2] = 9; /* object end */
    p += 3;
    sl_buf_t *b = sl_buf_new((size_t)(p - body));
    sl_frame_t *f = NULL;
    if (!b)
        return;
    memcpy(b->data, body, (size_t)(p - body));
    b->len = (uint32_t)(p - body);
    if (sl_frame_new(SL_FLV_DATA, src->last_dts, b, &f))
        return;
    f->flags |= SL_FRAME_META;
    sl_stream_push(st, f);
    sl_frame_unref(f);
}

/* Publishes one variant stream. 0 or an error (nothing held). */
static int variant_start(abr_mod_t *m, variant_t *v, const sl_stream_t *src)
{
    const char *path = v->lv->guid;
    char app[SL_ABR_PATH_MAX];
    const char *name;
    split_path(path, app, sizeof app, &name);
    memset(&v->sess, 0, sizeof v->sess);
    v->sess.socketless = 1;
    sl_session_register(m->core, &v->sess, &variant_session_ops, "abr");
    snprintf(v->sess.remote_addr, sizeof v->sess.remote_addr, "%s", "transcoder");
    int rc = sl_session_set_app(&v->sess, app);
    if (!rc)
        rc = sl_session_set_stream(&v->sess, name);
    if (!rc)
        rc = sl_hub_publish(m->core->hub, path, &v->sess, &v->st);
    if (rc) {
        v->st = NULL;
        sl_session_unregister(m->core, &v->sess);
        SL_LOGW(&g_ctx, "variant %s not published: %s", path,
                rc == SL_EBUSY ? "the stream is published by someone else" : sl_strerror(rc));
        return rc;
    }
    v->live = 1;
    variant_metadata(v, src);
    sl_session_set_role(&v->sess, SL_ROLE_PUBLISHER);
    variant_claim(m, path, &v->claimed); /* before the publish event (cluster.h) */
    SL_LOGI(&v->sess.log, "variant %s published (level %d, %ux%u, %u bit/s)", path, v->lv->level,
            v->lv->width, v->lv->height, v->lv->bitrate);
    sl_events_emit_session(m->core, &v->sess, SL_EV_PUBLISH, NULL);
    return 0;
}

static void variant_stop(abr_mod_t *m, variant_t *v, const char *why)
{
    if (!v->live)
        return;
    v->live = 0;
    sl_stream_t *st = v->st;
    v->st = NULL;
    sl_stream_unpublish(st);
    sl_events_emit_session(m->core, &v->sess, SL_EV_UNPUBLISH, why);
    variant_release(m, v->lv->guid, &v->claimed); /* the unpublish event released it already */
    SL_LOGI(&v->sess.log, "variant %s unpublished: %s", v->lv->guid, why);
    sl_session_set_role(&v->sess, SL_ROLE_NONE);
    sl_session_unregister(m->core, &v->sess);
}

/* Transcoder output (loop thread): into the variant's stream. */
static void on_vt_out(void *ud, size_t idx, sl_frame_t *f)
{
    job_t *j = ud;
    if (idx < j->n_v && j->v[idx]->live && !j->stopping)
        sl_stream_push(j->v[idx]->st, f);
}

static void job_free(job_t *j, const char *why)
{
    abr_mod_t *m = j->m;
    sl_stream_remove_sink(&j->sink);
    sl_vtranscoder_free(j->vt);
    j->vt = NULL;
    for (size_t i = 0; i < j->n_v; i++) {
        variant_stop(m, j->v[i], why);
        sl_free(j->v[i]);
    }
    if (j->claimed_src)
        variant_release(m, j->prov.lv[0].guid, &j->claimed_src);
    SL_LOGI(&g_ctx, "transcoder of %s stopped: %s", j->prov.lv[0].guid, why);
    sl_list_remove(&j->link);
    m->n_jobs--;
    sl_free(j);
}

/* Starts the job of provision pv whose source st is live. 0 or an error (logged). */
static int job_start(abr_mod_t *m, const sl_abr_prov_t *pv, sl_stream_t *st, int transcoder_role)
{
    if ((int64_t)m->n_jobs >= m->cfg->max_transcoders) {
        m->jobs_refused++;
        SL_LOGW(&g_ctx, "%s not transcoded: abr.max_transcoders (%lld) reached", pv->lv[0].guid,
                (long long)m->cfg->max_transcoders);
        return SL_ETOOBIG;
    }
    job_t *j = sl_calloc(1, sizeof *j);
    if (!j)
        return SL_ENOMEM;
    j->m = m;
    j->prov = *pv;
    j->started_mono = sl_time_mono_ms();
    sl_vt_variant_t vv[SL_VT_VARIANTS_MAX];
    j->n_v = pv->n - 1;
    int rc = 0;
    for (size_t i = 0; i < j->n_v; i++) {
        const sl_abr_level_t *l = &j->prov.lv[i + 1];
        vv[i] = (sl_vt_variant_t){l->width, l->height, l->bitrate, l->fps};
        if (!(j->v[i] = sl_calloc(1, sizeof *j->v[i]))) {
            rc = SL_ENOMEM;
            break;
        }
        j->v[i]->job = j;
        j->v[i]->lv = l;
    }
    if (!rc)
        rc = sl_vtranscoder_new(m->core->loop, vv, j->n_v, st->fps, m->cfg->preset, on_vt_out, j,
                                &j->vt);
    if (rc) {
        m->jobs_refused++;
        SL_LOGW(&g_ctx, "cannot start the transcoder of %s: %s", pv->lv[0].guid, sl_strerror(rc));
        for (size_t i = 0; i < j->n_v; i++)
            sl_free(j->v[i]);
        sl_free(j);
        return rc;
    }
    sl_list_push_back(&m->jobs, &j->link);
    m->n_jobs++;
    if (transcoder_role) /* admission placed the source already (cluster.c: origin_capable); idempotent */
        variant_claim(m, j->prov.lv[0].guid, &j->claimed_src);
    for (size_t i = 0; i < j->n_v; i++)
        (void)variant_start(m, j->v[i], st); /* a variant someone else publishes stays theirs */
    SL_LOGI(&g_ctx, "transcoder of %s started: %zu variant(s), preset %s", pv->lv[0].guid, j->n_v,
            m->cfg->preset);
    j->sink.ops = &job_sink_ops;
    j->sink.ctx = j;
    j->sink.internal = 1;
    if ((rc = sl_hub_add_sink(m->core->hub, pv->lv[0].guid, &j->sink))) {
        job_free(j, "out of memory");
        return rc;
    }
    return 0;
}

static int prov_equal(const sl_abr_prov_t *a, const sl_abr_prov_t *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

/* Starts and stops jobs until they match the provisions and the live sources. */
static void scan(abr_mod_t *m)
{
    if (m->stopping)
        return;
    int tr_role = 0;
    int on = m->cfg->enabled && transcodes(m, &tr_role);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->jobs) {
        job_t *j = sl_container_of(it, job_t, link);
        const sl_abr_prov_t *pv = on ? prov_of_source(m, j->prov.lv[0].guid) : NULL;
        const char *why = j->stopping ? "the source stopped"
                          : !on       ? "this node does not transcode"
                          : !pv       ? "the provision was removed"
                          : !prov_equal(pv, &j->prov) ? "the provision changed"
                                                      : NULL;
        if (why) {
            job_free(j, why);
            continue;
        }
        for (size_t i = 0; i < j->n_v; i++)
            if (j->v[i]->kicked && j->v[i]->live)
                variant_stop(m, j->v[i], "kicked");
    }
    if (!on)
        return;
    sl_list_foreach_safe(it, nx, &m->provs) {
        prov_t *p = sl_container_of(it, prov_t, link);
        if (!prov_in_force(m, p) || !p->p.transcode || p->p.n < 2)
            continue;
        sl_stream_t *st = sl_hub_find(m->core->hub, p->p.lv[0].guid);
        if (!st || !st->publisher)
            continue;
        /* A copy pulled from another node (cluster relay) is not a source: its origin
         * transcodes, and this node's variants would contend for the same placements. */
        const sl_session_t *pub = st->publisher;
        if (pub->proto && strcmp(pub->proto, "cluster") == 0)
            continue;
        int running = 0;
        sl_list_t *jt, *jn;
        sl_list_foreach_safe(jt, jn, &m->jobs) {
            job_t *j = sl_container_of(jt, job_t, link);
            running |= strcmp(j->prov.lv[0].guid, p->p.lv[0].guid) == 0;
        }
        if (!running)
            (void)job_start(m, &p->p, st, tr_role);
    }
}

static void on_defer(uv_timer_t *t)
{
    scan(t->data);
}

/* ---- the source sink ---- */

static void sink_frame(sl_sink_t *sink, sl_frame_t *f)
{
    job_t *j = sink->ctx;
    if (j->stopping)
        return;
    if (f->kind == SL_FLV_VIDEO) {
        j->video_in++;
        if (sl_vtranscoder_push(j->vt, f))
            j->refused++; /* VP8/AV1 sources, oversized frames: counted, the variants stall */
        return;
    }
    if (f->kind != SL_FLV_AUDIO)
        return; /* metadata names the source's size: the variants carry none */
    j->audio_in++;
    for (size_t i = 0; i < j->n_v; i++)
        if (j->v[i]->live)
            sl_stream_push(j->v[i]->st, f); /* audio copied: the same immutable frame */
}

static void sink_publish(sl_sink_t *sink)
{
    (void)sink;
}

static void sink_unpublish(sl_sink_t *sink)
{
    job_t *j = sink->ctx;
    j->stopping = 1;
    schedule_scan(j->m);
}

static const sl_sink_ops_t job_sink_ops = {
    .on_frame = sink_frame,
    .on_publish = sink_publish,
    .on_unpublish = sink_unpublish,
};

/* ---- variant sessions ---- */

static void variant_kick(sl_session_t *s, const char *reason)
{
    variant_t *v = (variant_t *)s;
    (void)reason;
    v->kicked = 1;
    schedule_scan(v->job->m);
}

static const sl_session_ops_t variant_session_ops = {
    .kick = variant_kick,
    .shutdown = NULL,
};

/* ---- events ---- */

static void on_event(const sl_event_t *ev, void *ud)
{
    abr_mod_t *m = ud;
    if (ev->type != SL_EV_PUBLISH || !ev->app || !ev->stream || m->stopping)
        return;
    char path[SL_ABR_PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", ev->app, ev->stream);
    if (n > 0 && (size_t)n < sizeof path && prov_of_source(m, path))
        schedule_scan(m);
}

/* ------------------------------------------------------------------ */
/* cluster settings                                                    */

typedef struct sweep {
    abr_mod_t *m;
    int changed;
} sweep_t;

static void each_setting(void *arg, const char *key, const char *json)
{
    sweep_t *sw = arg;
    abr_mod_t *m = sw->m;
    prov_t *p = prov_find_key(m, key);
    if (p && p->json && strcmp(p->json, json) == 0) {
        p->mark = 1;
        return;
    }
    sl_abr_prov_t pv;
    char why[SL_ABR_PATH_MAX + 64];
    int rc = sl_abr_prov_parse(json, strlen(json), &pv, why, sizeof why);
    char want[SL_ABR_PATH_MAX + 16];
    if (!rc && snprintf(want, sizeof want, SETTING_PREFIX "%s", pv.guid) > 0 &&
        strcmp(want, key) != 0) {
        rc = SL_EINVAL;
        snprintf(why, sizeof why, "its streamGuid %s does not match the key", pv.guid);
    }
    if (rc)
        SL_LOGW(&g_ctx, "cluster setting %s ignored: %s", key, why);
    if (prov_put(m, SRC_CLUSTER, rc ? NULL : &pv, json, key) == 0) {
        p = prov_find_key(m, key);
        if (p)
            p->mark = 1;
        sw->changed = 1;
        if (!rc)
            SL_LOGI(&g_ctx, "provision %s from the cluster (%zu variants)", pv.guid, pv.n);
    }
}

/* Reads the cluster's provision settings; drops the ones that are gone. */
static void read_cluster(abr_mod_t *m)
{
    void *cud;
    const sl_svc_cluster_t *cl = cluster_svc(m, &cud);
    sweep_t sw = {m, 0};
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->provs)
        sl_container_of(it, prov_t, link)->mark = 0;
    if (cl)
        cl->settings(cud, SETTING_PREFIX, each_setting, &sw);
    sl_list_foreach_safe(it, nx, &m->provs) {
        prov_t *p = sl_container_of(it, prov_t, link);
        if (p->src == SRC_CLUSTER && !p->mark) {
            SL_LOGI(&g_ctx, "provision %s removed from the cluster", p->valid ? p->p.guid : p->key);
            prov_free(m, p);
            sw.changed = 1;
        }
    }
    (void)sw.changed; /* the scan below runs anyway */
}

static void on_tick(uv_timer_t *t)
{
    abr_mod_t *m = t->data;
    read_cluster(m);
    scan(m);
}

/* ------------------------------------------------------------------ */
/* the "abr" service                                                   */

static size_t svc_variants(void *ud, const char *path, sl_abr_variant_info_t *out, size_t cap)
{
    const sl_abr_prov_t *p = path ? prov_get(ud, path) : NULL;
    if (!p)
        return 0;
    for (size_t i = 0; i < p->n && i < cap; i++) {
        snprintf(out[i].path, sizeof out[i].path, "%s", p->lv[i].guid);
        out[i].level = p->lv[i].level;
        out[i].width = p->lv[i].width;
        out[i].height = p->lv[i].height;
        out[i].bitrate = p->lv[i].bitrate;
    }
    return p->n;
}

static int svc_provision_of(void *ud, const char *path, char *out, size_t cap)
{
    abr_mod_t *m = ud;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->provs) {
        const prov_t *p = sl_container_of(it, prov_t, link);
        if (prov_in_force(m, p) && path && sl_abr_prov_level(&p->p, path)) {
            snprintf(out, cap, "%s", p->p.guid);
            return 0;
        }
    }
    return SL_ENOTFOUND;
}

static const sl_svc_abr_t g_svc = {
    .variants = svc_variants,
    .provision_of = svc_provision_of,
};

/* ------------------------------------------------------------------ */
/* API: /api/v1/abr/provisions, /api/v1/abr/transcoders                */

static json_t *prov_json(abr_mod_t *m, const prov_t *p)
{
    json_t *o = sl_abr_prov_json(&p->p);
    if (!o)
        return NULL;
    json_object_set_new(o, "source", json_string(g_src_names[p->src]));
    json_object_set_new(o, "in_force", json_boolean(prov_in_force(m, p)));
    int running = 0;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->jobs) {
        job_t *j = sl_container_of(it, job_t, link);
        running |= strcmp(j->prov.guid, p->p.guid) == 0;
    }
    json_object_set_new(o, "transcoding", json_boolean(running && prov_in_force(m, p)));
    return o;
}

static json_t *job_json(job_t *j)
{
    sl_vtranscoder_stats_t st;
    sl_vtranscoder_stats(j->vt, &st);
    json_t *vars = json_array();
    for (size_t i = 0; vars && i < j->n_v; i++) {
        const variant_t *v = j->v[i];
        json_array_append_new(
            vars, json_pack("{s:s, s:i, s:i, s:i, s:I, s:b}", "streamGuid", v->lv->guid,
                            "abrLevel", v->lv->level, "width", (int)v->lv->width, "height",
                            (int)v->lv->height, "bitrate", (json_int_t)v->lv->bitrate, "live",
                            v->live));
    }
    return json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:f, s:i, s:i, s:I}", "streamGuid",
                     j->prov.guid, "source", j->prov.lv[0].guid, "variants", vars, "frames_in",
                     (json_int_t)st.in_frames, "decoded", (json_int_t)st.decoded, "frames_out",
                     (json_int_t)st.out_frames, "dropped", (json_int_t)st.dropped, "errors",
                     (json_int_t)(st.errors + j->refused), "cpu_ms", st.worker_ms, "source_width",
                     (int)st.src_width, "source_height", (int)st.src_height, "uptime_ms",
                     (json_int_t)(sl_time_mono_ms() - j->started_mono));
}

static int api_post(abr_mod_t *m, sl_http_req_t *req)
{
    const sl_svc_api_t *api = m->api;
    if (req->body_len > SL_ABR_JSON_MAX)
        return api->err(req, 413, "A provision is at most 8192 bytes.");
    sl_abr_prov_t pv;
    char why[200];
    if (sl_abr_prov_parse(req->body ? (const char *)req->body : "", req->body_len, &pv, why,
                          sizeof why))
        return api->err(req, 400, why);
    void *cud;
    const sl_svc_cluster_t *cl = cluster_svc(m, &cud);
    int rc;
    if (cl) {
        /* In a cluster the provision is the cluster's: every node and the stream manager read it. */
        char key[SL_ABR_PATH_MAX + 16], *text = NULL;
        json_t *o = sl_abr_prov_json(&pv);
        text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        snprintf(key, sizeof key, SETTING_PREFIX "%s", pv.guid);
        rc = text ? cl->put_setting(cud, key, text) : SL_ENOMEM;
        if (!rc)
            rc = prov_put(m, SRC_CLUSTER, &pv, text, key);
        free(text);
        if (rc == SL_EIO)
            return api->err(req, 503, "The cluster's Redis is unreachable: provision not stored.");
    } else {
        rc = prov_put(m, SRC_API, &pv, NULL, NULL);
    }
    if (rc == SL_ETOOBIG)
        return api->err(req, 429, "Too many provisions (abr.max_provisions).");
    if (rc)
        return api->err(req, 503, "Out of memory.");
    SL_LOGI(&g_ctx, "provision %s stored through the API (%zu variants)", pv.guid, pv.n);
    schedule_scan(m);
    prov_t *p = prov_find(m, cl ? SRC_CLUSTER : SRC_API, pv.guid);
    return api->ok(req, p ? prov_json(m, p) : json_object());
}

static int api_delete(abr_mod_t *m, sl_http_req_t *req, const char *guid)
{
    const sl_svc_api_t *api = m->api;
    void *cud;
    const sl_svc_cluster_t *cl = cluster_svc(m, &cud);
    prov_t *p = prov_find(m, SRC_API, guid);
    prov_t *c = prov_find(m, SRC_CLUSTER, guid);
    if (!p && !c)
        return api->err(req, prov_find(m, SRC_CONFIG, guid) ? 409 : 404,
                        prov_find(m, SRC_CONFIG, guid)
                            ? "That provision is in the configuration (abr.provisions)."
                            : "No provision with that streamGuid.");
    if (c && cl) {
        char key[SL_ABR_PATH_MAX + 16];
        snprintf(key, sizeof key, SETTING_PREFIX "%s", guid);
        if (cl->put_setting(cud, key, NULL) == SL_EIO)
            return api->err(req, 503, "The cluster's Redis is unreachable: provision not removed.");
        prov_free(m, c);
    }
    if (p)
        prov_free(m, p);
    SL_LOGI(&g_ctx, "provision %s removed through the API", guid);
    schedule_scan(m);
    return api->ok(req, json_pack("{s:s}", "streamGuid", guid));
}

static int api_handler(sl_http_req_t *req, void *ud)
{
    abr_mod_t *m = ud;
    const sl_svc_api_t *api = m->api;
    static const char base[] = "/api/v1/abr/";
    if (strncmp(req->path, base, sizeof base - 1) != 0)
        return api->err(req, 404, "No such API endpoint.");
    const char *rest = req->path + sizeof base - 1;
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (strcmp(rest, "transcoders") == 0) {
        if (!get)
            return api->err(req, 405, "GET only.");
        json_t *arr = json_array();
        sl_list_t *it, *nx;
        sl_list_foreach_safe(it, nx, &m->jobs)
            json_array_append_new(arr, job_json(sl_container_of(it, job_t, link)));
        return api->ok(req, arr);
    }
    static const char provs[] = "provisions";
    if (strncmp(rest, provs, sizeof provs - 1) != 0 ||
        (rest[sizeof provs - 1] && rest[sizeof provs - 1] != '/'))
        return api->err(req, 404, "No such API endpoint.");
    const char *guid = rest[sizeof provs - 1] == '/' ? rest + sizeof provs : "";
    if (!guid[0]) {
        if (get) {
            json_t *arr = json_array();
            sl_list_t *it, *nx;
            sl_list_foreach_safe(it, nx, &m->provs) {
                const prov_t *p = sl_container_of(it, prov_t, link);
                if (p->valid)
                    json_array_append_new(arr, prov_json(m, p));
            }
            return api->ok(req, arr);
        }
        if (strcmp(req->method, "POST") == 0)
            return api_post(m, req);
        return api->err(req, 405, "GET or POST.");
    }
    if (strlen(guid) >= SL_ABR_PATH_MAX)
        return api->err(req, 404, "No provision with that streamGuid.");
    if (strcmp(req->method, "DELETE") == 0)
        return api_delete(m, req, guid);
    if (!get)
        return api->err(req, 405, "GET or DELETE.");
    const sl_abr_prov_t *pv = prov_get(m, guid);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->provs) {
        const prov_t *p = sl_container_of(it, prov_t, link);
        if (pv == &p->p)
            return api->ok(req, prov_json(m, p));
    }
    return api->err(req, 404, "No provision with that streamGuid.");
}

/* ------------------------------------------------------------------ */
/* configuration                                                       */

/* Calls each(arg, provision) for every provision of the abr.provisions text. 0 or the first
 * error, with why. */
static int config_each(const char *text, int (*each)(void *arg, const sl_abr_prov_t *p),
                       void *arg, char *why, size_t cap)
{
    if (!text || !text[strspn(text, " \t\r\n")])
        return 0;
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(root) && !json_is_array(root)) {
        json_decref(root);
        snprintf(why, cap, "not a JSON provision or array of provisions (line %d: %s)", je.line,
                 je.text);
        return SL_EINVAL;
    }
    int rc = 0;
    size_t n = json_is_array(root) ? json_array_size(root) : 1;
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *o = json_is_array(root) ? json_array_get(root, i) : root;
        char *s = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
        sl_abr_prov_t pv;
        char w[200];
        snprintf(w, sizeof w, "out of memory");
        rc = s ? sl_abr_prov_parse(s, strlen(s), &pv, w, sizeof w) : SL_ENOMEM;
        free(s);
        if (rc)
            snprintf(why, cap, "provision %zu: %s", i + 1, w);
        else if (each)
            rc = each(arg, &pv);
    }
    json_decref(root);
    return rc;
}

static int check(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    const sl_abr_config_t *c = sl_abr_cfg(cfg);
    char why[256] = "";
    if (config_each(c->provisions, NULL, NULL, why, sizeof why)) {
        sl_config_report(cfg, "abr.provisions", err, ud, "%s", why);
        return 1;
    }
    return 0;
}

static int add_config_prov(void *arg, const sl_abr_prov_t *p)
{
    int rc = prov_put(arg, SRC_CONFIG, p, NULL, NULL);
    return rc == SL_ETOOBIG ? 0 : rc;
}

/* ------------------------------------------------------------------ */
/* module                                                              */

static void mod_free_all(abr_mod_t *m)
{
    while (!sl_list_empty(&m->jobs))
        job_free(sl_container_of(m->jobs.next, job_t, link), "server shutdown");
    while (!sl_list_empty(&m->provs))
        prov_free(m, sl_container_of(m->provs.next, prov_t, link));
}

static int abr_init(const sl_host_api_t *hapi, sl_host_t *h, void **state)
{
    (void)hapi;
    sl_core_t *core = sl_host_core(h);
    const sl_abr_config_t *cfg = sl_abr_cfg(core->cfg);
    *state = NULL;
    if (!cfg->enabled)
        return 0; /* inert: init runs again at a reload that enables it */
    abr_mod_t *m = sl_calloc(1, sizeof *m);
    if (!m)
        return SL_ENOMEM;
    m->core = core;
    m->cfg = cfg;
    m->ev_id = -1;
    sl_list_init(&m->provs);
    sl_list_init(&m->jobs);
    char why[256];
    int rc = config_each(cfg->provisions, add_config_prov, m, why, sizeof why);
    if (rc)
        goto fail;
    if ((rc = sl_events_subscribe(core, "abr", SL_EV_PHASE_STATE, on_event, m)) < 0)
        goto fail;
    m->ev_id = rc;
    if ((rc = sl_service_register(core, SL_SVC_ABR, SL_SVC_ABR_MAJOR, SL_SVC_ABR_MINOR, &g_svc, m)))
        goto fail;
    m->svc_registered = 1;
    m->api = sl_service_get(core, SL_SVC_API, SL_SVC_API_MAJOR, 0, &m->api_ud);
    if (m->api && (rc = m->api->add_route(m->api_ud, "abr", api_handler, m)))
        goto fail;
    uv_timer_init(core->loop, &m->tick);
    m->tick.data = m;
    uv_timer_init(core->loop, &m->defer);
    m->defer.data = m;
    uv_timer_start(&m->tick, on_tick, 0, (uint64_t)cfg->settings_interval_ms);
    int tr = 0;
    SL_LOGI(&g_ctx, "abr: %zu provision(s) configured; this node %s", m->n_provs,
            transcodes(m, &tr) ? "transcodes" : "does not transcode (cluster role)");
    *state = m;
    return 0;
fail:
    if (m->svc_registered)
        sl_service_unregister(core, SL_SVC_ABR, &g_svc);
    if (m->ev_id > 0)
        sl_events_unsubscribe(core, m->ev_id);
    mod_free_all(m);
    sl_free(m);
    return rc < 0 ? rc : SL_ENOMEM;
}

static void abr_stop(void *state)
{
    abr_mod_t *m = state;
    if (!m)
        return;
    m->stopping = 1;
    uv_timer_stop(&m->tick);
    uv_close((uv_handle_t *)&m->tick, NULL);
    uv_timer_stop(&m->defer);
    uv_close((uv_handle_t *)&m->defer, NULL);
    sl_events_unsubscribe(m->core, m->ev_id);
    sl_service_unregister(m->core, SL_SVC_ABR, &g_svc);
    mod_free_all(m);
}

static void abr_destroy(void *state)
{
    sl_free(state);
}

/*
 * A reload applies everything but turning the module off (a restart): the
 * configuration's provisions are replaced (a changed or removed one restarts
 * or stops its transcoder at the scan), the preset applies to transcoders
 * started from now on, budgets at once.
 */
static int abr_reload(void *state)
{
    abr_mod_t *m = state;
    const sl_abr_config_t *n = sl_abr_cfg(m->core->cfg);
    if (!n->enabled)
        return SL_EAGAIN;
    char why[256];
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->provs) {
        prov_t *p = sl_container_of(it, prov_t, link);
        if (p->src == SRC_CONFIG)
            prov_free(m, p);
    }
    m->cfg = n;
    int rc = config_each(n->provisions, add_config_prov, m, why, sizeof why);
    if (rc) /* check() passed: only memory can fail here */
        SL_LOGW(&g_ctx, "abr.provisions not applied: %s", why);
    uv_timer_start(&m->tick, on_tick, 0, (uint64_t)n->settings_interval_ms);
    return rc;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "abr",
    .description = "ABR variants of provisioned streams (Red5 Pro's transcoder role)",
    .init = abr_init,
    .stop = abr_stop,
    .destroy = abr_destroy,
    .reload = abr_reload,
};

const sl_builtin_t sl_abr_builtin = {
    .plugin = &plugin,
    .config = &sl_abr_config_section,
    .check = check,
};
