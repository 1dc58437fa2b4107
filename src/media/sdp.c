/*
 * SDP offer parsing, codec picking and answer writing for WHIP / WHEP (see
 * sdp.h). The parser walks the text one line at a time, copying each line
 * (at most SL_SDP_MAX_LINE bytes) into a NUL-terminated scratch buffer so
 * that the attribute code can use the C string functions without ever
 * reading past the caller's length. Control characters other than TAB are
 * refused, so that nothing echoed from the offer (mid, proto, codec names,
 * fmtp) can smuggle a line break into our answer. Per-m-line facts that
 * may arrive in any order (rtpmap after fmtp, ssrc-group before or after
 * the ssrc lines, rtcp-fb:*) are gathered while the m-section is open and
 * resolved when it closes. The writer appends to a capped buffer and fails
 * with SL_ETOOBIG as a whole rather than return a cut answer.
 */
#include "media/sdp.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sluice/errors.h"

/* ---------------------------------------------------------------- lines */

/* Iterates the lines of a bounded text; line[] holds the current one. */
typedef struct lines {
    const char *text;
    size_t len, pos;
    int lineno;
    char line[SL_SDP_MAX_LINE + 1];
    size_t n;
} lines_t;

/*
 * Moves to the next line: 1 with it->line / it->n set, 0 at the end, -1
 * with *reason set for a line that is too long or holds a control byte.
 */
static int next_line(lines_t *it, const char **reason)
{
    if (it->pos >= it->len)
        return 0;
    const char *start = it->text + it->pos;
    size_t rest = it->len - it->pos;
    const char *nl = memchr(start, '\n', rest);
    size_t n = nl ? (size_t)(nl - start) : rest;
    it->pos += nl ? n + 1 : n;
    it->lineno++;
    if (n && start[n - 1] == '\r')
        n--;
    if (n > SL_SDP_MAX_LINE) {
        *reason = "line longer than 4096 bytes";
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)start[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            *reason = "control character";
            return -1;
        }
    }
    memcpy(it->line, start, n);
    it->line[n] = '\0';
    it->n = n;
    return 1;
}

/* Formats "line N: reason" (or the reason alone when lineno is 0) into err. */
static int fail(char *err, size_t err_cap, int lineno, const char *fmt, ...)
{
    if (err && err_cap) {
        size_t off = 0;
        if (lineno > 0) {
            int r = snprintf(err, err_cap, "line %d: ", lineno);
            off = r < 0 ? 0 : (size_t)r < err_cap ? (size_t)r : err_cap - 1;
        }
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + off, err_cap - off, fmt, ap);
        va_end(ap);
    }
    return SL_EPROTO;
}

/* --------------------------------------------------------------- tokens */

/* Returns the next space-separated token of *cur (cut in place), or NULL. */
static char *tok(char **cur)
{
    char *s = *cur;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s) {
        *cur = s;
        return NULL;
    }
    char *e = s;
    while (*e && *e != ' ' && *e != '\t')
        e++;
    if (*e)
        *e++ = '\0';
    *cur = e;
    return s;
}

/* Parses the decimal digits s[0..n) (1 to 10 of them) into *v, at most max. */
static int parse_uint_n(const char *s, size_t n, uint32_t max, uint32_t *v)
{
    if (n == 0 || n > 10)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    if (x > max)
        return -1;
    *v = (uint32_t)x;
    return 0;
}

static int parse_uint(const char *s, uint32_t max, uint32_t *v)
{
    return s ? parse_uint_n(s, strlen(s), max, v) : -1;
}

/* Copies s into dst (cap bytes); -1 (dst untouched) when it does not fit. */
static int copy_str(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        return -1;
    memcpy(dst, s, n + 1);
    return 0;
}

/* Copies s into dst (cap bytes), cut to fit. */
static void copy_cut(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* ---------------------------------------------------------------- offer */

#define TMP_SSRCS 32
#define TMP_FIDS 16

/* What is gathered while an m-section is open, resolved when it closes. */
typedef struct media_tmp {
    uint32_t ssrc[TMP_SSRCS]; /* every a=ssrc id, first-seen order */
    int n_ssrc;
    uint32_t fid_main[TMP_FIDS], fid_rtx[TMP_FIDS]; /* a=ssrc-group:FID pairs */
    int n_fid;
    unsigned wild_fb;         /* a=rtcp-fb:* bits */
    int have_msid;            /* a media-level a=msid was seen (it wins over ssrc msid:) */
} media_tmp_t;

static int codec_index(const sl_sdp_media_t *m, uint32_t pt)
{
    for (int i = 0; i < m->n_codecs; i++)
        if (m->codecs[i].pt == pt)
            return i;
    return -1;
}

static sl_sdp_codec_t *find_codec(sl_sdp_media_t *m, uint32_t pt)
{
    int i = codec_index(m, pt);
    return i < 0 ? NULL : &m->codecs[i];
}

static int tmp_has_ssrc(const media_tmp_t *t, uint32_t ssrc)
{
    for (int i = 0; i < t->n_ssrc; i++)
        if (t->ssrc[i] == ssrc)
            return 1;
    return 0;
}

static void tmp_add_ssrc(media_tmp_t *t, uint32_t ssrc)
{
    if (!tmp_has_ssrc(t, ssrc) && t->n_ssrc < TMP_SSRCS)
        t->ssrc[t->n_ssrc++] = ssrc;
}

/* Names the static payload types an offer may use without an rtpmap. */
static void static_pt(sl_sdp_codec_t *c)
{
    static const struct {
        uint8_t pt;
        const char *name;
    } tab[] = {{0, "PCMU"}, {8, "PCMA"}, {9, "G722"}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (tab[i].pt == c->pt) {
            strcpy(c->name, tab[i].name);
            c->clock = 8000;
        }
}

/*
 * m=<media> <port>[/<n>] <proto> <fmt>... opens a new m-section. For any
 * proto naming RTP the formats are payload types: each one gets a codec
 * entry in offer order, filled in later by rtpmap / fmtp / rtcp-fb. Chrome
 * offers 25 to 35 video payload types (every H.264 profile twice, with
 * and without packetization-mode 1, each with its RTX), so the cap is 48
 * and further ones are dropped rather than refused: losing a late VP9
 * profile is better than a 400 to a browser. For SCTP protos the format is
 * "webrtc-datachannel" (RFC 8841) or, in the old draft form aiortc 1.4
 * still writes, the SCTP port itself.
 */
static const char *parse_m(char *v, sl_sdp_t *out, int session_dir)
{
    if (out->n_media == SL_SDP_MAX_MEDIA)
        return "more than 8 m= lines";
    sl_sdp_media_t *m = &out->media[out->n_media++];
    m->direction = session_dir;
    char *media = tok(&v), *port = tok(&v), *proto = tok(&v);
    if (!media)
        return "m= without media";
    if (copy_str(m->media_name, sizeof m->media_name, media))
        return "m= media name too long";
    m->kind = !strcmp(media, "audio")         ? SL_SDP_AUDIO
              : !strcmp(media, "video")       ? SL_SDP_VIDEO
              : !strcmp(media, "application") ? SL_SDP_APPLICATION
                                              : 0;
    uint32_t p;
    char *slash = port ? strchr(port, '/') : NULL;
    if (!port || parse_uint_n(port, slash ? (size_t)(slash - port) : strlen(port), 65535, &p))
        return "m= without port";
    m->port = (int)p;
    m->rejected = p == 0;
    if (!proto)
        return "m= without proto";
    if (copy_str(m->proto, sizeof m->proto, proto))
        return "m= proto too long";
    int rtp = strstr(proto, "RTP") != NULL, sctp = strstr(proto, "SCTP") != NULL;
    int n_fmt = 0;
    for (char *f; (f = tok(&v)); n_fmt++) {
        uint32_t pt;
        if (rtp) {
            if (parse_uint(f, 127, &pt))
                return "m= payload type not a number in 0..127";
            if (m->n_codecs == SL_SDP_MAX_CODECS || find_codec(m, pt))
                continue; /* past the cap, or repeated: ignored */
            sl_sdp_codec_t *c = &m->codecs[m->n_codecs++];
            c->pt = (uint8_t)pt;
            c->channels = 1;
            c->rtx_pt = -1;
            c->apt = -1;
            c->profile_level_id = 0x42000A; /* RFC 6184 8.1: the default */
            static_pt(c);
        } else if (sctp && !parse_uint(f, 65535, &pt) && !m->sctp_port) {
            m->sctp_port = (int)pt; /* old form: "DTLS/SCTP 5000" */
        }
    }
    if (n_fmt == 0)
        return "m= without format";
    return NULL;
}

/*
 * Reads the fmtp parameters of c that sluice acts on (key=value;...):
 * apt for RTX, and the H.264 ones (RFC 6184 8.1). They are read from the
 * whole value, before it is cut to fit c->fmtp, so a long
 * sprop-parameter-sets cannot hide them. Other keys are ignored here; the
 * answer echoes the raw text.
 */
static void fmtp_params(sl_sdp_codec_t *c, const char *s)
{
    while (*s) {
        while (*s == ' ' || *s == ';')
            s++;
        const char *k = s;
        while (*s && *s != '=' && *s != ';')
            s++;
        size_t kn = (size_t)(s - k);
        const char *val = s;
        size_t vn = 0;
        if (*s == '=') {
            val = ++s;
            while (*s && *s != ';')
                s++;
            vn = (size_t)(s - val);
            while (vn && val[vn - 1] == ' ')
                vn--;
        }
        uint32_t x;
#define KEY(lit) (kn == sizeof(lit) - 1 && !strncasecmp(k, lit, kn))
        if (KEY("apt") && !parse_uint_n(val, vn, 127, &x)) {
            c->apt = (int)x;
        } else if (KEY("packetization-mode") && !parse_uint_n(val, vn, 2, &x)) {
            c->packetization_mode = (int)x;
        } else if (KEY("level-asymmetry-allowed") && !parse_uint_n(val, vn, 1, &x)) {
            c->level_asymmetry = (int)x;
        } else if (KEY("profile-level-id") && vn == 6) {
            uint32_t id = 0;
            size_t i;
            for (i = 0; i < 6; i++) {
                char d = val[i];
                int h = d >= '0' && d <= '9'   ? d - '0'
                        : d >= 'a' && d <= 'f' ? d - 'a' + 10
                        : d >= 'A' && d <= 'F' ? d - 'A' + 10
                                               : -1;
                if (h < 0)
                    break;
                id = id << 4 | (uint32_t)h;
            }
            if (i == 6) {
                c->profile_level_id = id;
                c->has_profile_level_id = 1;
            }
        }
#undef KEY
    }
}

/*
 * a=rtcp-fb:<pt|*> <type> [<param>]: only the five feedback types sluice
 * can act on become bits; "*" (RFC 4585 4.2) applies to every payload type
 * of the m-line and is merged when the m-section closes, since it may come
 * before the payload types' own lines.
 */
static void parse_rtcp_fb(char *v, sl_sdp_media_t *m, media_tmp_t *t)
{
    char *pt = tok(&v), *type = tok(&v), *param = tok(&v);
    if (!pt || !type)
        return;
    unsigned bit = 0;
    if (!strcmp(type, "nack"))
        bit = !param ? SL_SDP_FB_NACK : !strcmp(param, "pli") ? SL_SDP_FB_PLI : 0;
    else if (!strcmp(type, "ccm") && param && !strcmp(param, "fir"))
        bit = SL_SDP_FB_FIR;
    else if (!strcmp(type, "goog-remb"))
        bit = SL_SDP_FB_REMB;
    else if (!strcmp(type, "transport-cc"))
        bit = SL_SDP_FB_TWCC;
    uint32_t n;
    sl_sdp_codec_t *c;
    if (!strcmp(pt, "*"))
        t->wild_fb |= bit;
    else if (!parse_uint(pt, 127, &n) && (c = find_codec(m, n)))
        c->fb |= bit;
}

/*
 * a=extmap:<id>[/<direction>] <uri> [<attributes>]: records the ids of the
 * header extensions sluice reads or writes. Ids up to 255 are kept (two-byte
 * headers, a=extmap-allow-mixed); the answer reuses the offer's ids, as
 * RFC 8285 6 requires.
 */
static void parse_extmap(char *v, sl_sdp_media_t *m)
{
    char *id = tok(&v), *uri = tok(&v);
    if (!id || !uri)
        return;
    char *slash = strchr(id, '/');
    uint32_t n;
    if (parse_uint_n(id, slash ? (size_t)(slash - id) : strlen(id), 255, &n) || n == 0)
        return;
    if (!strcmp(uri, "urn:ietf:params:rtp-hdrext:sdes:mid"))
        m->ext_mid = (int)n;
    else if (!strcmp(uri, "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"))
        m->ext_twcc = (int)n;
    else if (!strcmp(uri, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"))
        m->ext_abs_send_time = (int)n;
    else if (!strcmp(uri, "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"))
        m->ext_sdes_rtp_stream_id = (int)n;
}

/*
 * a=fingerprint:<alg> <value>: keeps sha-256 over any other algorithm (an
 * offer may list several, RFC 8122 5), since that is the one the DTLS code
 * checks. The value must be hex pairs and colons; its length is bounded by
 * the field.
 */
static const char *parse_fingerprint(char *v, char *alg_out, char *fp_out)
{
    char *alg = tok(&v), *fp = tok(&v);
    if (!alg || !fp)
        return "a=fingerprint without algorithm and value";
    char alg_lc[16];
    if (copy_str(alg_lc, sizeof alg_lc, alg))
        return "a=fingerprint algorithm too long";
    for (char *s = alg_lc; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
    if (strlen(fp) >= 200)
        return "a=fingerprint value too long";
    for (const char *s = fp; *s; s++)
        if (*s != ':' && !((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
                           (*s >= 'A' && *s <= 'F')))
            return "a=fingerprint value is not hex pairs";
    if (alg_out[0] && !strcmp(alg_out, "sha-256"))
        return NULL;
    strcpy(alg_out, alg_lc);
    strcpy(fp_out, fp);
    return NULL;
}

static int direction_of(const char *name)
{
    if (!strcmp(name, "sendrecv"))
        return SL_SDP_SENDRECV;
    if (!strcmp(name, "sendonly"))
        return SL_SDP_SENDONLY;
    if (!strcmp(name, "recvonly"))
        return SL_SDP_RECVONLY;
    if (!strcmp(name, "inactive"))
        return SL_SDP_INACTIVE;
    return -1;
}

/* a=ice-ufrag / a=ice-pwd at either level: 1..256 bytes. */
static const char *ice_value(char *dst, const char *v, const char *what)
{
    if (!v || !*v)
        return !strcmp(what, "ufrag") ? "empty a=ice-ufrag" : "empty a=ice-pwd";
    if (copy_str(dst, 257, v))
        return !strcmp(what, "ufrag") ? "a=ice-ufrag longer than 256 bytes"
                                      : "a=ice-pwd longer than 256 bytes";
    return NULL;
}

/*
 * One a= line, at session level (m NULL) or in the m-section m. Returns
 * NULL or the reason the offer is refused.
 */
static const char *parse_a(char *line, sl_sdp_t *out, sl_sdp_media_t *m, media_tmp_t *t,
                           int *session_dir)
{
    char *name = line, *v = strchr(line, ':');
    if (v)
        *v++ = '\0';
    int dir = direction_of(name);
    if (dir >= 0) {
        if (m)
            m->direction = dir;
        else
            *session_dir = dir;
        return NULL;
    }
    if (!strcmp(name, "ice-ufrag"))
        return ice_value(m ? m->ice_ufrag : out->ice_ufrag, v, "ufrag");
    if (!strcmp(name, "ice-pwd"))
        return ice_value(m ? m->ice_pwd : out->ice_pwd, v, "pwd");
    if (!strcmp(name, "fingerprint"))
        return v ? parse_fingerprint(v, m ? m->fingerprint_alg : out->fingerprint_alg,
                                     m ? m->fingerprint : out->fingerprint)
                 : "a=fingerprint without value";
    if (!strcmp(name, "setup")) {
        if (!v || copy_str(m ? m->setup : out->setup, 16, v))
            return "bad a=setup";
        return NULL;
    }
    if (!strcmp(name, "ice-options")) {
        for (char *o; v && (o = tok(&v));)
            if (!strcmp(o, "trickle"))
                out->ice_trickle = 1;
        return NULL;
    }
    if (!strcmp(name, "control")) {
        /* RTSP (RFC 2326 C.1.1): the URL, absolute or relative, of a track or the session. */
        if (!v || copy_str(m ? m->control : out->control, SL_SDP_MAX_CONTROL, v))
            return "a=control empty or longer than 255 bytes";
        return NULL;
    }
    if (!m) {
        if (!strcmp(name, "ice-lite")) {
            out->ice_lite = 1;
        } else if (!strcmp(name, "group") && v && !strncmp(v, "BUNDLE", 6) &&
                   (v[6] == ' ' || v[6] == '\0') && out->n_bundle == 0) {
            v += 6;
            for (char *mid; (mid = tok(&v));) {
                if (out->n_bundle == SL_SDP_MAX_MEDIA)
                    return "more than 8 mids in a=group:BUNDLE";
                if (copy_str(out->bundle[out->n_bundle++], 33, mid))
                    return "a=group:BUNDLE mid longer than 32 bytes";
            }
        }
        return NULL; /* other session attributes are ignored */
    }
    uint32_t n;
    sl_sdp_codec_t *c;
    if (!strcmp(name, "mid")) {
        if (!v || !*v || strchr(v, ' ') || copy_str(m->mid, sizeof m->mid, v))
            return "a=mid empty, with a space or longer than 32 bytes";
    } else if (!strcmp(name, "rtcp-mux")) {
        m->rtcp_mux = 1;
    } else if (!strcmp(name, "rtpmap") && v) {
        /* <pt> <name>/<clock>[/<channels>] */
        char *pt = tok(&v), *enc = tok(&v);
        if (!pt || !enc || parse_uint(pt, 127, &n) || !(c = find_codec(m, n)))
            return NULL;
        char *clock = strchr(enc, '/'), *ch = NULL;
        if (clock) {
            *clock++ = '\0';
            if ((ch = strchr(clock, '/')))
                *ch++ = '\0';
        }
        uint32_t x;
        if (copy_str(c->name, sizeof c->name, enc))
            c->name[0] = '\0'; /* no codec of ours has so long a name */
        c->clock = clock && !parse_uint(clock, UINT32_MAX, &x) ? x : 0;
        c->channels = ch && !parse_uint(ch, 255, &x) ? (uint8_t)x : 1;
    } else if (!strcmp(name, "fmtp") && v) {
        char *pt = tok(&v);
        while (*v == ' ')
            v++;
        if (!pt || parse_uint(pt, 127, &n) || !(c = find_codec(m, n)))
            return NULL;
        fmtp_params(c, v);
        size_t len = strlen(v);
        if (len >= sizeof c->fmtp) { /* cut at the last whole parameter */
            len = sizeof c->fmtp - 1;
            while (len && v[len] != ';')
                len--;
        }
        memcpy(c->fmtp, v, len);
        c->fmtp[len] = '\0';
    } else if (!strcmp(name, "rtcp-fb") && v) {
        parse_rtcp_fb(v, m, t);
    } else if (!strcmp(name, "extmap") && v) {
        parse_extmap(v, m);
    } else if (!strcmp(name, "ssrc") && v) {
        /* <ssrc> <attribute>[:<value>] */
        char *id = tok(&v);
        if (!id || parse_uint(id, UINT32_MAX, &n))
            return NULL;
        tmp_add_ssrc(t, n);
        while (*v == ' ')
            v++;
        if (!strncmp(v, "cname:", 6) && !m->cname[0])
            copy_cut(m->cname, sizeof m->cname, v + 6);
        else if (!strncmp(v, "msid:", 5) && !t->have_msid && !m->msid[0])
            copy_cut(m->msid, sizeof m->msid, v + 5);
    } else if (!strcmp(name, "ssrc-group") && v) {
        char *sem = tok(&v), *a = tok(&v), *b = tok(&v);
        uint32_t x, y;
        if (sem && !strcmp(sem, "FID") && a && b && !parse_uint(a, UINT32_MAX, &x) &&
            !parse_uint(b, UINT32_MAX, &y) && t->n_fid < TMP_FIDS) {
            t->fid_main[t->n_fid] = x;
            t->fid_rtx[t->n_fid++] = y;
        }
    } else if (!strcmp(name, "msid") && v) {
        copy_cut(m->msid, sizeof m->msid, v);
        t->have_msid = 1;
    } else if (!strcmp(name, "sctp-port") && v) {
        if (parse_uint(v, 65535, &n))
            return "bad a=sctp-port";
        m->sctp_port = (int)n;
    } else if (!strcmp(name, "sctpmap") && v) {
        char *port = tok(&v);
        if (port && !parse_uint(port, 65535, &n))
            m->sctp_port = (int)n;
    } else if (!strcmp(name, "max-message-size") && v) {
        m->max_message_size = parse_uint(v, UINT32_MAX, &n) ? 0 : n;
    }
    return NULL;
}

/*
 * Resolves what the m-section gathered once it is complete: wildcard
 * feedback; RTX pairs (an rtx payload type names its codec with apt=, and
 * the codec learns its rtx_pt; the first rtx wins); and SSRCs. Browsers
 * list both SSRCs of a FID pair in a=ssrc lines, Chrome with the group
 * before them, Firefox after, so the primary SSRCs are known only at the
 * end: every SSRC that is not the second of a FID pair, each with its RTX.
 */
static void close_media(sl_sdp_media_t *m, const media_tmp_t *t)
{
    for (int i = 0; i < m->n_codecs; i++) {
        sl_sdp_codec_t *c = &m->codecs[i];
        c->fb |= t->wild_fb;
        if (strcasecmp(c->name, "rtx"))
            c->apt = -1;
    }
    for (int i = 0; i < m->n_codecs; i++) {
        sl_sdp_codec_t *rtx = &m->codecs[i], *target;
        if (rtx->apt >= 0 && (target = find_codec(m, (uint32_t)rtx->apt)) && target != rtx &&
            target->rtx_pt < 0 && strcasecmp(target->name, "rtx"))
            target->rtx_pt = rtx->pt;
    }
    /* Primary SSRCs: every a=ssrc id that is not the second of a FID pair. */
    media_tmp_t all = *t;
    for (int i = 0; i < t->n_fid; i++)
        tmp_add_ssrc(&all, t->fid_main[i]);
    for (int i = 0; i < all.n_ssrc && m->n_ssrcs < SL_SDP_MAX_SSRCS; i++) {
        uint32_t s = all.ssrc[i], rtx = 0;
        int is_rtx = 0;
        for (int j = 0; j < t->n_fid; j++) {
            if (t->fid_rtx[j] == s)
                is_rtx = 1;
            if (t->fid_main[j] == s && !rtx)
                rtx = t->fid_rtx[j];
        }
        if (is_rtx)
            continue;
        m->ssrcs[m->n_ssrcs] = s;
        m->rtx_ssrc_of[m->n_ssrcs++] = rtx;
    }
    if (m->kind == SL_SDP_APPLICATION && !m->sctp_port)
        m->sctp_port = 5000; /* RFC 8841 6.2: the default */
}

/* The generic part of both parsers: every line into *out, with no transport requirement. */
static int parse_text(const char *text, size_t len, sl_sdp_t *out, char *err, size_t err_cap)
{
    memset(out, 0, sizeof *out);
    if (err && err_cap)
        err[0] = '\0';
    if (len > SL_SDP_MAX_TEXT)
        return fail(err, err_cap, 0, "offer larger than %d bytes", SL_SDP_MAX_TEXT);
    if (!text || len == 0)
        return fail(err, err_cap, 0, "empty offer");
    lines_t it = {.text = text, .len = len};
    media_tmp_t tmp;
    memset(&tmp, 0, sizeof tmp);
    sl_sdp_media_t *m = NULL;
    int session_dir = SL_SDP_SENDRECV, seen_v = 0, r;
    const char *reason = NULL;
    while ((r = next_line(&it, &reason)) > 0) {
        if (it.n == 0)
            continue; /* a blank line (often the last) */
        if (it.n < 2 || it.line[1] != '=')
            return fail(err, err_cap, it.lineno, "not a <type>=<value> line");
        if (!seen_v) {
            if (strcmp(it.line, "v=0"))
                return fail(err, err_cap, it.lineno, "expected v=0 first");
            seen_v = 1;
            continue;
        }
        if (it.line[0] == 'm') {
            if (m)
                close_media(m, &tmp);
            memset(&tmp, 0, sizeof tmp);
            reason = parse_m(it.line + 2, out, session_dir);
            m = &out->media[out->n_media - 1]; /* parse_m added it, or failed at the cap */
        } else if (it.line[0] == 'a') {
            reason = parse_a(it.line + 2, out, m, &tmp, &session_dir);
        }
        if (reason)
            return fail(err, err_cap, it.lineno, "%s", reason);
    }
    if (r < 0)
        return fail(err, err_cap, it.lineno, "%s", reason);
    if (!seen_v)
        return fail(err, err_cap, 0, "empty offer");
    if (!m)
        return fail(err, err_cap, 0, "no m= line");
    close_media(m, &tmp);
    return 0;
}

int sl_sdp_parse_description(const char *text, size_t len, sl_sdp_t *out, char *err, size_t err_cap)
{
    return parse_text(text, len, out, err, err_cap);
}

int sl_sdp_parse(const char *text, size_t len, sl_sdp_t *out, char *err, size_t err_cap)
{
    int rc = parse_text(text, len, out, err, err_cap);
    if (rc)
        return rc;

    /*
     * Transport: the session-level values, else the first m-line's (Chrome
     * and aiortc write them per m-line only, Firefox the fingerprint at
     * session level). Under BUNDLE the first m-line's transport is the one
     * used; aiortc 1.4 even writes a different ufrag per m-line, which
     * belongs to transports it drops once the answer bundles them.
     */
    for (int i = 0; i < out->n_media; i++) {
        const sl_sdp_media_t *mi = &out->media[i];
        if (!out->ice_ufrag[0] && mi->ice_ufrag[0] && mi->ice_pwd[0]) {
            strcpy(out->ice_ufrag, mi->ice_ufrag);
            strcpy(out->ice_pwd, mi->ice_pwd);
        }
        if (!out->fingerprint[0] && mi->fingerprint[0]) {
            strcpy(out->fingerprint_alg, mi->fingerprint_alg);
            strcpy(out->fingerprint, mi->fingerprint);
        }
        if (!out->setup[0] && mi->setup[0])
            strcpy(out->setup, mi->setup);
    }
    if (!out->ice_ufrag[0])
        return fail(err, err_cap, 0, "no a=ice-ufrag");
    if (!out->ice_pwd[0])
        return fail(err, err_cap, 0, "no a=ice-pwd");
    if (!out->fingerprint[0])
        return fail(err, err_cap, 0, "no a=fingerprint");
    for (int i = 0; i < out->n_media; i++) {
        sl_sdp_media_t *mi = &out->media[i];
        for (int j = 0; j < i && mi->mid[0]; j++)
            if (!strcmp(out->media[j].mid, mi->mid))
                return fail(err, err_cap, 0, "a=mid:%s used twice", mi->mid);
        if (!mi->ice_ufrag[0] || !mi->ice_pwd[0]) {
            strcpy(mi->ice_ufrag, out->ice_ufrag);
            strcpy(mi->ice_pwd, out->ice_pwd);
        }
        if (!mi->fingerprint[0]) {
            strcpy(mi->fingerprint_alg, out->fingerprint_alg);
            strcpy(mi->fingerprint, out->fingerprint);
        }
        if (!mi->setup[0])
            strcpy(mi->setup, out->setup);
    }
    return 0;
}

/* ---------------------------------------------------------------- picks */

/*
 * Only packetization-mode 1 (FU-A / STAP-A) H.264 is taken: mode 0 allows a
 * single NAL unit per packet, which the depacketizer does not expect and
 * which no encoder of interest is limited to. The profile is matched on
 * profile_idc only; the constraint flags (42e0 vs 4200) do not matter to a
 * receiver, which can decode both.
 */
int sl_sdp_pick_video(const sl_sdp_media_t *m, uint8_t want_profile_idc, int allow_vp8)
{
    int any_h264 = -1, vp8 = -1;
    for (int i = 0; i < m->n_codecs; i++) {
        const sl_sdp_codec_t *c = &m->codecs[i];
        if (!strcasecmp(c->name, "H264") && c->packetization_mode == 1) {
            if (!want_profile_idc || (c->profile_level_id >> 16) == want_profile_idc)
                return i;
            if (any_h264 < 0)
                any_h264 = i;
        } else if (!strcasecmp(c->name, "VP8") && vp8 < 0) {
            vp8 = i;
        }
    }
    if (any_h264 >= 0)
        return any_h264;
    return allow_vp8 ? vp8 : -1;
}

/*
 * RFC 6184 8.1 and libwebrtc's profile table. The stream side is read
 * leniently (the reserved low bits of the flags byte and any flag that
 * does not change the profile are ignored), so that what encoders write
 * (x264: 42c0, 4d40, 6400) classifies as the profile it is.
 */
int sl_sdp_h264_profile(uint32_t profile_level_id)
{
    uint8_t idc = (uint8_t)(profile_level_id >> 16), iop = (uint8_t)(profile_level_id >> 8);
    int set0 = (iop & 0x80) != 0, set1 = (iop & 0x40) != 0;
    int set4 = (iop & 0x08) != 0, set5 = (iop & 0x04) != 0;
    switch (idc) {
    case 0x42:
        return set1 ? SL_H264_P_CB : SL_H264_P_BASELINE;
    case 0x4D:
        return set0 ? SL_H264_P_CB : SL_H264_P_MAIN;
    case 0x58:
        return set0 && set1 ? SL_H264_P_CB : set0 ? SL_H264_P_BASELINE : SL_H264_P_EXTENDED;
    case 0x64:
        return set4 && set5 ? SL_H264_P_CHIGH : SL_H264_P_HIGH;
    case 0x6E:
        return SL_H264_P_HIGH10;
    case 0x7A:
        return SL_H264_P_HIGH422;
    case 0xF4:
        return SL_H264_P_HIGH444;
    default:
        return SL_H264_P_UNKNOWN;
    }
}

const char *sl_sdp_h264_profile_name(int profile)
{
    static const char *const names[] = {"unknown",   "Constrained Baseline", "Baseline", "Extended",
                                        "Main",      "Constrained High",     "High",     "High 10",
                                        "High 4:2:2", "High 4:4:4 Predictive"};
    return profile >= 0 && profile <= SL_H264_P_HIGH444 ? names[profile] : "unknown";
}

int sl_sdp_h264_level_rank(uint32_t profile_level_id)
{
    uint8_t idc = (uint8_t)(profile_level_id >> 16), iop = (uint8_t)(profile_level_id >> 8);
    uint8_t level = (uint8_t)profile_level_id;
    if (level == 9 || (level == 11 && (iop & 0x10) && (idc == 0x42 || idc == 0x4D || idc == 0x58)))
        return 21; /* level 1b */
    return 2 * level;
}

/* For each stream profile, the offered profiles whose decoders take it. */
#define P(x) (1u << SL_H264_P_##x)
static const unsigned decoded_by[] = {
    [SL_H264_P_UNKNOWN] = 0,
    [SL_H264_P_CB] = P(CB) | P(BASELINE) | P(EXTENDED) | P(MAIN) | P(CHIGH) | P(HIGH) | P(HIGH10) |
                     P(HIGH422) | P(HIGH444),
    [SL_H264_P_BASELINE] = P(BASELINE) | P(EXTENDED),
    [SL_H264_P_EXTENDED] = P(EXTENDED),
    [SL_H264_P_MAIN] = P(MAIN) | P(HIGH) | P(HIGH10) | P(HIGH422) | P(HIGH444),
    [SL_H264_P_CHIGH] = P(CHIGH) | P(HIGH) | P(HIGH10) | P(HIGH422) | P(HIGH444),
    [SL_H264_P_HIGH] = P(HIGH) | P(HIGH10) | P(HIGH422) | P(HIGH444),
    [SL_H264_P_HIGH10] = P(HIGH10) | P(HIGH422) | P(HIGH444),
    [SL_H264_P_HIGH422] = P(HIGH422) | P(HIGH444),
    [SL_H264_P_HIGH444] = P(HIGH444),
};
#undef P

int sl_sdp_h264_decodes(uint32_t offered, uint32_t stream)
{
    int s = sl_sdp_h264_profile(stream), o = sl_sdp_h264_profile(offered);
    if (s == SL_H264_P_UNKNOWN)
        return (offered >> 16) == (stream >> 16);
    return (decoded_by[s] >> o) & 1u;
}

int sl_sdp_pick_h264(const sl_sdp_media_t *m, uint32_t stream_plid, int *level_ok)
{
    int best = -1, best_level_ok = 0, best_dist = 0;
    int s_prof = sl_sdp_h264_profile(stream_plid), s_level = sl_sdp_h264_level_rank(stream_plid);
    for (int i = 0; i < m->n_codecs; i++) {
        const sl_sdp_codec_t *c = &m->codecs[i];
        if (strcasecmp(c->name, "H264") || c->packetization_mode != 1 ||
            !sl_sdp_h264_decodes(c->profile_level_id, stream_plid))
            continue;
        int lok = sl_sdp_h264_level_rank(c->profile_level_id) >= s_level;
        /* The profiles' enum order runs from the smallest tool set up; the
         * nearest superset of the stream's profile is the best fit. */
        int dist = sl_sdp_h264_profile(c->profile_level_id) - s_prof;
        if (best < 0 || lok > best_level_ok || (lok == best_level_ok && dist < best_dist)) {
            best = i;
            best_level_ok = lok;
            best_dist = dist;
        }
    }
    if (level_ok)
        *level_ok = best_level_ok;
    return best;
}

int sl_sdp_pick_h264_publish(const sl_sdp_media_t *m)
{
    int baseline = -1, any = -1;
    for (int i = 0; i < m->n_codecs; i++) {
        const sl_sdp_codec_t *c = &m->codecs[i];
        if (strcasecmp(c->name, "H264") || c->packetization_mode != 1)
            continue;
        int prof = sl_sdp_h264_profile(c->profile_level_id);
        if (prof == SL_H264_P_CB)
            return i;
        if (prof == SL_H264_P_BASELINE && baseline < 0)
            baseline = i;
        if (any < 0)
            any = i;
    }
    return baseline >= 0 ? baseline : any;
}

char *sl_sdp_h264_list(const sl_sdp_media_t *m, char *out, size_t cap)
{
    size_t off = 0;
    if (cap)
        out[0] = '\0';
    for (int i = 0; i < m->n_codecs && cap; i++) {
        const sl_sdp_codec_t *c = &m->codecs[i];
        if (strcasecmp(c->name, "H264"))
            continue;
        int r = snprintf(out + off, cap - off, "%s%06x/%d", off ? ", " : "", (unsigned)c->profile_level_id,
                         c->packetization_mode);
        if (r < 0 || (size_t)r >= cap - off) {
            out[off] = '\0'; /* whole entries only */
            break;
        }
        off += (size_t)r;
    }
    return out;
}

int sl_sdp_pick_audio(const sl_sdp_media_t *m)
{
    for (int i = 0; i < m->n_codecs; i++) {
        const sl_sdp_codec_t *c = &m->codecs[i];
        if (!strcasecmp(c->name, "opus") && c->clock == 48000 && c->channels == 2)
            return i;
    }
    return -1;
}

/* --------------------------------------------------------------- writer */

/* An append-only capped buffer; over is set once anything did not fit. */
typedef struct wbuf {
    char *p;
    size_t cap, len;
    int over;
} wbuf_t;

__attribute__((format(printf, 2, 3))) static void w(wbuf_t *b, const char *fmt, ...)
{
    if (b->over)
        return;
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= b->cap - b->len) {
        b->over = 1;
        b->p[b->len] = '\0';
        return;
    }
    b->len += (size_t)r;
}

/* Whether s is 1..max printable bytes (spaces only when spaces is set). */
static int clean(const char *s, size_t max, int spaces)
{
    if (!s || !*s)
        return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c < 0x20 || c == 0x7f || (c == ' ' && !spaces) || n >= max)
            return 0;
    }
    return 1;
}

static int cands_ok(const sl_sdp_candidate_t *c, int n)
{
    if (n < 0 || (n > 0 && !c))
        return 0;
    for (int i = 0; i < n; i++)
        if (!clean(c[i].foundation, 32, 0) || !clean(c[i].addr, 63, 0) || c[i].port < 1 ||
            c[i].port > 65535 || c[i].component < 1 || c[i].component > 256)
            return 0;
    return 1;
}

/*
 * Our candidates, then a=end-of-candidates: an ICE-lite server knows all of
 * them up front, and the end marker lets the browser stop waiting for more.
 * TCP ones are passive (RFC 6544): the peer connects to us.
 */
static void w_cands(wbuf_t *b, const sl_sdp_candidate_t *c, int n)
{
    for (int i = 0; i < n; i++)
        w(b, "a=candidate:%s %d %s %u %s %d typ host%s\r\n", c[i].foundation, c[i].component,
          c[i].is_tcp ? "tcp" : "udp", (unsigned)c[i].priority, c[i].addr, c[i].port,
          c[i].is_tcp ? " tcptype passive" : "");
    w(b, "a=end-of-candidates\r\n");
}

static const char *const dir_names[] = {"sendrecv", "sendonly", "recvonly", "inactive"};

/* Whether the answer can accept m on its own terms (see sl_sdp_answer). */
static int acceptable(const sl_sdp_media_t *m, const sl_sdp_answer_media_t *am)
{
    if (!am->accept || m->rejected || !m->mid[0])
        return 0;
    if (m->kind == SL_SDP_APPLICATION)
        return strstr(m->proto, "SCTP") && !strstr(m->proto, "RTP");
    if (m->kind != SL_SDP_AUDIO && m->kind != SL_SDP_VIDEO)
        return 0;
    return strstr(m->proto, "RTP") && m->rtcp_mux && am->codec_idx >= 0 &&
           am->codec_idx < m->n_codecs && am->direction >= SL_SDP_SENDRECV &&
           am->direction <= SL_SDP_INACTIVE;
}

/*
 * Decides which offer m-lines the answer accepts (ok[i]). One transport
 * carries everything, so with a BUNDLE group in the offer only its members
 * can be accepted, and without one only the first acceptable m-line (no
 * group is then written: RFC 8843 7.3.1 forbids adding one).
 */
static void decide(const sl_sdp_t *offer, const sl_sdp_answer_params_t *p, int ok[SL_SDP_MAX_MEDIA])
{
    int n_ok = 0;
    for (int i = 0; i < offer->n_media; i++) {
        const sl_sdp_media_t *m = &offer->media[i];
        ok[i] = acceptable(m, &p->media[i]);
        if (!ok[i])
            continue;
        if (offer->n_bundle == 0) {
            ok[i] = n_ok == 0;
        } else {
            int in_group = 0;
            for (int j = 0; j < offer->n_bundle; j++)
                in_group |= !strcmp(offer->bundle[j], m->mid);
            ok[i] = in_group;
        }
        n_ok += ok[i];
    }
}

/*
 * The transport lines every accepted m-line repeats, as JSEP answers do
 * (RFC 8829 5.3.1): the same ufrag, pwd and fingerprint everywhere, since
 * it is one transport. setup:passive: the browser is the DTLS client and
 * sends the first flight, so sluice never has to initiate towards an
 * address it has not yet seen a STUN check from.
 */
static void w_transport(wbuf_t *b, const sl_sdp_media_t *m, const sl_sdp_answer_params_t *p,
                        const char *c_line)
{
    w(b, "%sa=mid:%s\r\na=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:sha-256 %s\r\n"
         "a=setup:passive\r\n",
      c_line, m->mid, p->ice_ufrag, p->ice_pwd, p->fingerprint_sha256);
}

/*
 * The codec lines of one payload type: rtpmap as offered (name, clock,
 * channels for audio), the offer's fmtp echoed unchanged (for H.264 the
 * answer must name the same profile; level-asymmetry-allowed lets each side
 * keep its level) and the rtcp-fb types both sides support.
 */
static void w_codec(wbuf_t *b, const sl_sdp_media_t *m, const sl_sdp_codec_t *c)
{
    if (m->kind == SL_SDP_AUDIO && c->channels > 1)
        w(b, "a=rtpmap:%u %s/%u/%u\r\n", c->pt, c->name, (unsigned)c->clock, c->channels);
    else
        w(b, "a=rtpmap:%u %s/%u\r\n", c->pt, c->name, (unsigned)c->clock);
    if (c->fmtp[0])
        w(b, "a=fmtp:%u %s\r\n", c->pt, c->fmtp);
    static const struct {
        unsigned bit;
        const char *text;
    } fbs[] = {{SL_SDP_FB_NACK, "nack"},
               {SL_SDP_FB_PLI, "nack pli"},
               {SL_SDP_FB_FIR, "ccm fir"},
               {SL_SDP_FB_REMB, "goog-remb"},
               {SL_SDP_FB_TWCC, "transport-cc"}};
    for (size_t i = 0; i < sizeof fbs / sizeof fbs[0]; i++)
        if (c->fb & fbs[i].bit)
            w(b, "a=rtcp-fb:%u %s\r\n", c->pt, fbs[i].text);
}

static void w_ssrc(wbuf_t *b, uint32_t ssrc, const char *cname, const sl_sdp_answer_media_t *am)
{
    w(b, "a=ssrc:%u cname:%s\r\n", (unsigned)ssrc, cname);
    if (am->msid_stream)
        w(b, "a=ssrc:%u msid:%s %s\r\n", (unsigned)ssrc, am->msid_stream, am->msid_track);
}

int sl_sdp_answer(const sl_sdp_t *offer, const sl_sdp_answer_params_t *p, char *out, size_t cap)
{
    if (!out || cap == 0)
        return SL_ETOOBIG;
    out[0] = '\0';
    if (!offer || !p || !clean(p->ice_ufrag, 256, 0) || !clean(p->ice_pwd, 256, 0) ||
        !clean(p->fingerprint_sha256, 199, 0) || !cands_ok(p->cands, p->n_cands) ||
        (p->cname && !clean(p->cname, 255, 0)) || offer->n_media > SL_SDP_MAX_MEDIA)
        return SL_EINVAL;
    for (int i = 0; i < offer->n_media; i++) {
        const sl_sdp_answer_media_t *am = &p->media[i];
        if (am->msid_stream && (!clean(am->msid_stream, 64, 0) || !clean(am->msid_track, 64, 0)))
            return SL_EINVAL;
    }
    const char *cname = p->cname ? p->cname : "sluice";

    /*
     * c= and the m= port name the default candidate (RFC 8839 5.1): the
     * first UDP one, or the discard port 9 / 0.0.0.0 when there is none
     * yet. Browsers ignore them once candidates are known; some older
     * stacks still use them as a first remote address.
     */
    char c_line[96] = "c=IN IP4 0.0.0.0\r\n";
    int port = 9;
    for (int i = 0; i < p->n_cands; i++)
        if (!p->cands[i].is_tcp) {
            snprintf(c_line, sizeof c_line, "c=IN %s %s\r\n",
                     strchr(p->cands[i].addr, ':') ? "IP6" : "IP4", p->cands[i].addr);
            port = p->cands[i].port;
            break;
        }

    wbuf_t b = {.p = out, .cap = cap};
    w(&b, "v=0\r\no=- %llu 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n",
      (unsigned long long)p->session_id);
    int ok[SL_SDP_MAX_MEDIA], n_accepted = 0;
    decide(offer, p, ok);
    for (int i = 0; i < offer->n_media && offer->n_bundle > 0; i++)
        if (ok[i])
            w(&b, "%s%s", n_accepted++ ? " " : "a=group:BUNDLE ", offer->media[i].mid);
    if (n_accepted)
        w(&b, "\r\n");
    w(&b, "a=msid-semantic:WMS *\r\n");

    for (int i = 0; i < offer->n_media; i++) {
        const sl_sdp_media_t *m = &offer->media[i];
        const sl_sdp_answer_media_t *am = &p->media[i];
        if (!ok[i]) {
            /* Rejected (RFC 3264 6): port 0, same proto, one of the offer's
             * formats, and the mid so that the peer can match it. */
            const char *fmt = "0";
            char pt[4];
            /* The format must read back as the parser reads it: payload
             * types for any proto with "RTP" in it, first. */
            if (strstr(m->proto, "RTP")) {
                if (m->n_codecs > 0) {
                    snprintf(pt, sizeof pt, "%u", m->codecs[0].pt);
                    fmt = pt;
                }
            } else if (!strcmp(m->proto, "DTLS/SCTP")) {
                fmt = "5000";
            } else if (strstr(m->proto, "SCTP")) {
                fmt = "webrtc-datachannel";
            }
            w(&b, "m=%s 0 %s %s\r\nc=IN IP4 0.0.0.0\r\n", m->media_name, m->proto, fmt);
            if (m->mid[0])
                w(&b, "a=mid:%s\r\n", m->mid);
            if (m->kind != SL_SDP_APPLICATION)
                w(&b, "a=inactive\r\n");
            continue;
        }
        if (m->kind == SL_SDP_APPLICATION) {
            int old = !strcmp(m->proto, "DTLS/SCTP");
            w(&b, "m=application %d %s %s\r\n", port, m->proto, old ? "5000" : "webrtc-datachannel");
            w_transport(&b, m, p, c_line);
            if (old)
                w(&b, "a=sctpmap:5000 webrtc-datachannel 65535\r\n");
            else
                w(&b, "a=sctp-port:5000\r\n");
            w(&b, "a=max-message-size:%u\r\n", p->max_message_size ? (unsigned)p->max_message_size : 262144u);
            w_cands(&b, p->cands, p->n_cands);
            continue;
        }
        const sl_sdp_codec_t *c = &m->codecs[am->codec_idx], *rtx = NULL;
        int rtx_idx = c->rtx_pt >= 0 ? codec_index(m, (uint32_t)c->rtx_pt) : -1;
        if (rtx_idx >= 0)
            rtx = &m->codecs[rtx_idx];
        if (rtx)
            w(&b, "m=%s %d %s %u %u\r\n", m->media_name, port, m->proto, c->pt, rtx->pt);
        else
            w(&b, "m=%s %d %s %u\r\n", m->media_name, port, m->proto, c->pt);
        w_transport(&b, m, p, c_line);
        w(&b, "a=%s\r\na=rtcp-mux\r\na=rtcp-rsize\r\n", dir_names[am->direction]);
        if (m->ext_mid)
            w(&b, "a=extmap:%d urn:ietf:params:rtp-hdrext:sdes:mid\r\n", m->ext_mid);
        if (m->ext_abs_send_time)
            w(&b, "a=extmap:%d http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n",
              m->ext_abs_send_time);
        if (m->ext_twcc)
            w(&b, "a=extmap:%d http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n",
              m->ext_twcc);
        w_codec(&b, m, c);
        if (rtx)
            w(&b, "a=rtpmap:%u %s/%u\r\na=fmtp:%u apt=%u\r\n", rtx->pt, rtx->name,
              (unsigned)rtx->clock, rtx->pt, c->pt);
        if (am->ssrc) {
            if (am->msid_stream)
                w(&b, "a=msid:%s %s\r\n", am->msid_stream, am->msid_track);
            int with_rtx = rtx && am->rtx_ssrc;
            if (with_rtx)
                w(&b, "a=ssrc-group:FID %u %u\r\n", (unsigned)am->ssrc, (unsigned)am->rtx_ssrc);
            w_ssrc(&b, am->ssrc, cname, am);
            if (with_rtx)
                w_ssrc(&b, am->rtx_ssrc, cname, am);
        }
        w_cands(&b, p->cands, p->n_cands);
    }
    if (b.over)
        return SL_ETOOBIG;
    return (int)b.len;
}

/* ------------------------------------------------------------ fragments */

int sl_sdp_parse_frag(const char *text, size_t len, sl_sdp_frag_t *out, char *err, size_t err_cap)
{
    memset(out, 0, sizeof *out);
    if (err && err_cap)
        err[0] = '\0';
    if (len > SL_SDP_MAX_TEXT)
        return fail(err, err_cap, 0, "fragment larger than %d bytes", SL_SDP_MAX_TEXT);
    lines_t it = {.text = text, .len = text ? len : 0};
    const char *reason = NULL;
    int r;
    while ((r = next_line(&it, &reason)) > 0) {
        if (it.n == 0)
            continue;
        if (it.n < 2 || it.line[1] != '=')
            return fail(err, err_cap, it.lineno, "not a <type>=<value> line");
        if (it.line[0] != 'a')
            continue;
        char *name = it.line + 2, *v = strchr(name, ':');
        if (v)
            *v++ = '\0';
        if (!strcmp(name, "ice-ufrag"))
            reason = ice_value(out->ice_ufrag, v, "ufrag");
        else if (!strcmp(name, "ice-pwd"))
            reason = ice_value(out->ice_pwd, v, "pwd");
        else if (!strcmp(name, "end-of-candidates"))
            out->end_of_candidates = 1;
        else if (!strcmp(name, "candidate")) {
            /* <foundation> <component> <transport> <priority> <addr> <port> typ <type> */
            char *f[8];
            int k = 0;
            while (v && k < 8 && (f[k] = tok(&v)))
                k++;
            if (k < 8 || strcmp(f[6], "typ"))
                reason = "malformed a=candidate";
            else
                out->n_candidates++;
        }
        if (reason)
            return fail(err, err_cap, it.lineno, "%s", reason);
    }
    if (r < 0)
        return fail(err, err_cap, it.lineno, "%s", reason);
    if (!out->ice_ufrag[0] != !out->ice_pwd[0])
        return fail(err, err_cap, 0, "a=ice-ufrag and a=ice-pwd must come together");
    return 0;
}

int sl_sdp_frag_answer(const char *ufrag, const char *pwd, const char *mid,
                       const sl_sdp_candidate_t *c, int n, char *out, size_t cap)
{
    if (!out || cap == 0)
        return SL_ETOOBIG;
    out[0] = '\0';
    if (!clean(ufrag, 256, 0) || !clean(pwd, 256, 0) || !cands_ok(c, n) ||
        (n > 0 && !clean(mid, 32, 0)))
        return SL_EINVAL;
    wbuf_t b = {.p = out, .cap = cap};
    w(&b, "a=ice-lite\r\na=ice-ufrag:%s\r\na=ice-pwd:%s\r\n", ufrag, pwd);
    if (n > 0) {
        w(&b, "m=audio 9 RTP/AVP 0\r\na=mid:%s\r\n", mid);
        w_cands(&b, c, n);
    }
    if (b.over)
        return SL_ETOOBIG;
    return (int)b.len;
}
