/*
 * WebRTC data channels over libusrsctp (see sctp.h for the contract).
 *
 * How the pieces fit. usrsctp is initialised without threads; each
 * association is a one-to-one (SOCK_STREAM) AF_CONN socket whose
 * "address" is a small integer id registered with usrsctp, never a
 * pointer: usrsctp may still hold the id in a timer after the association
 * is freed, and conn_output looks the id up among the live associations,
 * so a stale one is dropped instead of dereferenced.
 *
 * Every public entry point does its usrsctp call(s) with g.in_usrsctp set
 * and then runs pump(), the only place that reads sockets and calls the
 * callbacks other than ops->send. pump() drains the re-entrancy queue
 * (packets fed while usrsctp was running), reads every association whose
 * upcall fired, and releases the associations freed meanwhile, until
 * nothing is left. A callback that feeds, sends or frees runs inside pump()
 * (g.pumping): its feed is queued and processed by the same pump, its free
 * is deferred to the end of it. The read buffer is process-wide (one
 * thread), so a message callback's pointer stays valid for the call only.
 */
#include "net/sctp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <usrsctp.h>

#include "base/alloc.h"
#include "base/assert.h"
#include "base/log.h"
#include "sluice/errors.h"

/* Not in usrsctp.h but implemented by usrsctp (FreeBSD's sctp.h). */
#ifndef SCTP_GET_SNDBUF_USE
#define SCTP_GET_SNDBUF_USE 0x00001101
struct sctp_sockstat {
    sctp_assoc_t ss_assoc_id;
    uint32_t ss_total_sndbuf;
    uint32_t ss_total_recv_buf;
};
#endif

#define DCEP_OPEN 0x03
#define DCEP_ACK 0x02
#define DCEP_OPEN_HDR 12
#define DCEP_RELIABLE 0x00
#define DCEP_PR_REXMIT 0x01
#define DCEP_PR_TIMED 0x02
#define DCEP_UNORDERED 0x80
#define PPID_STRING_PARTIAL 52 /* deprecated, refused */
#define PPID_BINARY_PARTIAL 54
#define READ_BUF 65536
#define RX_KEEP 65536 /* a reassembly buffer larger than this is released after use */

static const sl_log_ctx_t LOGCTX = {NULL, "sctp", NULL, NULL};

typedef struct chan {
    uint16_t sid;
    uint8_t ours;          /* opened by us (DCEP OPEN sent or to send) */
    uint8_t open_sent;     /* our OPEN is out (or the peer's OPEN was ACKed) */
    uint8_t acked;         /* the peer ACKed our OPEN, or it is the peer's channel */
    uint8_t unordered;     /* channel type asks for unordered delivery */
    uint8_t in_reset;      /* the peer reset its outgoing stream: reported closed */
    uint8_t out_req;       /* we want our outgoing stream reset */
    uint8_t out_sent;      /* the reset request is out */
    uint8_t out_done;      /* our outgoing stream is reset */
    uint16_t pr_policy;    /* 0, SCTP_PR_SCTP_RTX or SCTP_PR_SCTP_TTL */
    uint32_t pr_value;     /* retransmissions or ms */
    char *label, *protocol; /* ours, until the OPEN goes out (owned) */
} chan_t;

typedef struct pkt {
    struct pkt *next;
    uintptr_t id;          /* destination association */
    size_t len;
    uint8_t data[];
} pkt_t;

struct sl_sctp {
    sl_sctp_t *next;       /* g.list */
    uintptr_t id;          /* the AF_CONN address registered with usrsctp */
    struct socket *sock;
    const sl_sctp_ops_t *ops; /* borrowed */
    void *ud;
    uint16_t local_port, remote_port;
    size_t max_message_size;
    int is_client;
    int connecting;        /* usrsctp_connect was called */
    int up;                /* COMM_UP seen */
    int closed;            /* ops->closed reported */
    int dead;              /* sl_sctp_free called: no more callbacks */
    int abort_ok;          /* dead, but ops->send may still carry the ABORT */
    int poll;              /* the upcall fired: read the socket */
    int want_writable;     /* a send got SL_EAGAIN */
    int resets_pending;    /* some chan has out_req && !out_sent */
    uint16_t n_out, n_in;  /* negotiated streams */
    chan_t *chans;         /* open channels, unsorted */
    size_t n_chans, cap_chans;
    uint8_t *rx;           /* reassembly of a message read in pieces */
    size_t rx_len, rx_cap;
    uint16_t rx_sid;
    uint32_t rx_ppid;
    int rx_active;         /* a message is being reassembled */
    int rx_drop;           /* ... and is over the cap: discard to its end */
    int notif_skip;        /* a notification bigger than READ_BUF: skip to its end */
    size_t sndbuf;         /* SO_SNDBUF given to usrsctp */
    uint8_t *tail;         /* the rest of a message usrsctp took only in part (owned) */
    size_t tail_len, tail_off;
    struct sctp_sendv_spa tail_spa; /* how it was sent (same stream, same flags) */
};

static struct {
    int inited;
    uintptr_t next_id;
    sl_sctp_t *list;
    int in_usrsctp;        /* depth of usrsctp calls on the stack */
    int pumping;
    pkt_t *q_head, *q_tail;
    size_t q_len;
    uint8_t rbuf[READ_BUF];
} g;

static sl_sctp_t *find(uintptr_t id)
{
    for (sl_sctp_t *s = g.list; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static int conn_output(void *addr, void *buf, size_t len, uint8_t tos, uint8_t set_df)
{
    (void)tos;
    (void)set_df;
    sl_sctp_t *s = find((uintptr_t)addr);
    if (!s || (s->dead && !s->abort_ok))
        return 0; /* freed: the packet is lost, as on a closed DTLS link */
    s->ops->send(s->ud, buf, len);
    return 0;
}

/* Called by usrsctp with its socket locks held: only note it. */
static void upcall(struct socket *sock, void *arg, int flags)
{
    (void)sock;
    (void)flags;
    sl_sctp_t *s = find((uintptr_t)arg);
    if (s)
        s->poll = 1;
}

/* ---- channels ---- */

static chan_t *chan_find(sl_sctp_t *s, uint16_t sid)
{
    for (size_t i = 0; i < s->n_chans; i++)
        if (s->chans[i].sid == sid)
            return &s->chans[i];
    return NULL;
}

static chan_t *chan_add(sl_sctp_t *s, uint16_t sid)
{
    if (s->n_chans == s->cap_chans) {
        size_t cap = s->cap_chans ? s->cap_chans * 2 : 4;
        if (cap > SL_SCTP_STREAMS)
            cap = SL_SCTP_STREAMS;
        if (cap <= s->n_chans)
            return NULL;
        chan_t *c = sl_realloc(s->chans, cap * sizeof *c);
        if (!c)
            return NULL;
        s->chans = c;
        s->cap_chans = cap;
    }
    chan_t *c = &s->chans[s->n_chans++];
    memset(c, 0, sizeof *c);
    c->sid = sid;
    return c;
}

static void chan_remove(sl_sctp_t *s, chan_t *c)
{
    sl_free(c->label);
    sl_free(c->protocol);
    *c = s->chans[--s->n_chans];
}

/* ---- sending ---- */

/* The room usrsctp's send buffer keeps for chunk headers, by payload size. */
static size_t overhead(size_t len) { return len / 64 + 1024; }

static size_t queued_bytes(sl_sctp_t *s)
{
    struct sctp_sockstat ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len = sizeof ss;
    g.in_usrsctp++;
    int r = usrsctp_getsockopt(s->sock, IPPROTO_SCTP, SCTP_GET_SNDBUF_USE, &ss, &len);
    g.in_usrsctp--;
    return r == 0 ? ss.ss_total_sndbuf : 0;
}

/*
 * Pushes the rest of a message usrsctp took in part. With SCTP_EXPLICIT_EOR
 * the message stays open until a send with SCTP_EOR completes it, and no
 * other message may be sent meanwhile: every send waits (SL_EAGAIN) for the
 * tail. Returns 0 when no tail is left.
 */
static int flush_tail(sl_sctp_t *s)
{
    while (s->tail) {
        size_t left = s->tail_len - s->tail_off;
        g.in_usrsctp++;
        ssize_t n = usrsctp_sendv(s->sock, s->tail + s->tail_off, left, NULL, 0, &s->tail_spa,
                                  (socklen_t)sizeof s->tail_spa, SCTP_SENDV_SPA, 0);
        int err = errno;
        g.in_usrsctp--;
        if (n < 0 && (err == EWOULDBLOCK || err == EAGAIN))
            return SL_EAGAIN;
        if (n <= 0) {
            SL_LOGD(&LOGCTX, "sctp: rest of a message lost (errno %d)", err);
            n = (ssize_t)left; /* the association is failing: drop it */
        }
        s->tail_off += (size_t)n;
        if (s->tail_off >= s->tail_len) {
            sl_free(s->tail);
            s->tail = NULL;
            s->tail_len = s->tail_off = 0;
        }
    }
    return 0;
}

static int do_send(sl_sctp_t *s, uint16_t sid, uint32_t ppid, const uint8_t *p, size_t len,
                   int unordered, uint16_t pr_policy, uint32_t pr_value)
{
    if (s->tail && flush_tail(s) != 0) {
        s->want_writable = 1;
        return SL_EAGAIN;
    }
    /* usrsctp may take part of a message when its buffer is nearly full:
     * keep to whole messages by checking the room first. */
    if (queued_bytes(s) + len + overhead(len) > s->sndbuf) {
        s->want_writable = 1;
        return SL_EAGAIN;
    }
    struct sctp_sendv_spa spa;
    memset(&spa, 0, sizeof spa);
    spa.sendv_flags = SCTP_SEND_SNDINFO_VALID;
    spa.sendv_sndinfo.snd_sid = sid;
    spa.sendv_sndinfo.snd_flags = SCTP_EOR | (unordered ? SCTP_UNORDERED : 0);
    spa.sendv_sndinfo.snd_ppid = htonl(ppid);
    if (pr_policy) {
        spa.sendv_flags |= SCTP_SEND_PRINFO_VALID;
        spa.sendv_prinfo.pr_policy = pr_policy;
        spa.sendv_prinfo.pr_value = pr_value;
    }
    g.in_usrsctp++;
    ssize_t n = usrsctp_sendv(s->sock, p, len, NULL, 0, &spa, (socklen_t)sizeof spa,
                              SCTP_SENDV_SPA, 0);
    int err = errno;
    g.in_usrsctp--;
    if (n == (ssize_t)len)
        return 0;
    if (n > 0 && (size_t)n < len) {
        /* Taken in part all the same: keep the rest (bounded by the
         * message cap) and finish it before anything else. */
        s->tail = sl_malloc(len - (size_t)n);
        if (!s->tail) {
            SL_LOGE(&LOGCTX, "sctp: out of memory keeping %zu bytes of a message", len - (size_t)n);
            return SL_ENOMEM;
        }
        memcpy(s->tail, p + n, len - (size_t)n);
        s->tail_len = len - (size_t)n;
        s->tail_off = 0;
        s->tail_spa = spa;
        if (flush_tail(s) != 0)
            s->want_writable = 1;
        return 0;
    }
    if (n < 0 && (err == EWOULDBLOCK || err == EAGAIN)) {
        s->want_writable = 1;
        return SL_EAGAIN;
    }
    if (n < 0 && err == EMSGSIZE)
        return SL_ETOOBIG;
    SL_LOGD(&LOGCTX, "sctp: send on sid %u failed (%zd of %zu, errno %d)", sid, n, len, err);
    return SL_EIO;
}

/* Builds and sends the DCEP OPEN of one of our channels (RFC 8832 §5.1). */
static int send_open(sl_sctp_t *s, chan_t *c)
{
    size_t llen = c->label ? strlen(c->label) : 0, plen = c->protocol ? strlen(c->protocol) : 0;
    size_t n = DCEP_OPEN_HDR + llen + plen;
    uint8_t *m = sl_malloc(n);
    if (!m)
        return SL_ENOMEM;
    m[0] = DCEP_OPEN;
    m[1] = c->unordered ? DCEP_UNORDERED : DCEP_RELIABLE;
    m[2] = 0;
    m[3] = 0;                    /* priority */
    memset(m + 4, 0, 4);         /* reliability parameter */
    m[8] = (uint8_t)(llen >> 8);
    m[9] = (uint8_t)llen;
    m[10] = (uint8_t)(plen >> 8);
    m[11] = (uint8_t)plen;
    if (llen)
        memcpy(m + DCEP_OPEN_HDR, c->label, llen);
    if (plen)
        memcpy(m + DCEP_OPEN_HDR + llen, c->protocol, plen);
    /* The OPEN, and everything before the ACK, goes ordered (RFC 8832 §6). */
    int r = do_send(s, c->sid, SL_SCTP_PPID_DCEP, m, n, 0, 0, 0);
    sl_free(m);
    if (r == 0) {
        c->open_sent = 1;
        sl_free(c->label);
        sl_free(c->protocol);
        c->label = c->protocol = NULL;
    }
    return r;
}

/*
 * Sends one SCTP_RESET_STREAMS for every channel waiting for its outgoing
 * reset. usrsctp runs one reset request at a time per association and
 * refuses another meanwhile: those stay pending and go out on the next
 * reset event or tick.
 */
static void flush_resets(sl_sctp_t *s)
{
    if (!s->resets_pending || !s->up || s->closed)
        return;
    size_t n = 0;
    for (size_t i = 0; i < s->n_chans; i++)
        if (s->chans[i].out_req && !s->chans[i].out_sent)
            n++;
    s->resets_pending = 0;
    if (!n)
        return;
    size_t size = sizeof(struct sctp_reset_streams) + n * sizeof(uint16_t);
    struct sctp_reset_streams *rs = sl_calloc(1, size);
    if (!rs) {
        s->resets_pending = 1; /* try again on the next tick */
        return;
    }
    rs->srs_flags = SCTP_STREAM_RESET_OUTGOING;
    rs->srs_number_streams = (uint16_t)n;
    size_t k = 0;
    for (size_t i = 0; i < s->n_chans; i++)
        if (s->chans[i].out_req && !s->chans[i].out_sent)
            rs->srs_stream_list[k++] = s->chans[i].sid;
    g.in_usrsctp++;
    int r = usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_RESET_STREAMS, rs, (socklen_t)size);
    int err = errno;
    g.in_usrsctp--;
    sl_free(rs);
    if (r == 0) {
        for (size_t i = 0; i < s->n_chans; i++)
            if (s->chans[i].out_req)
                s->chans[i].out_sent = 1;
    } else {
        /* One reset at a time: EALREADY/EBUSY until the previous completes. */
        SL_LOGD(&LOGCTX, "sctp: stream reset deferred (errno %d)", err);
        s->resets_pending = 1;
    }
}

/* ---- receiving ---- */

static void report_closed(sl_sctp_t *s, const char *why)
{
    if (s->closed || s->dead)
        return;
    s->closed = 1;
    SL_LOGD(&LOGCTX, "sctp: association closed: %s", why);
    if (s->ops->closed)
        s->ops->closed(s->ud, why);
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * DCEP (RFC 8832): an OPEN from the peer creates the channel with the
 * reliability it asks for, is ACKed at once (ordered, PPID 50) and then
 * announced; an ACK lets our own channel go unordered if it asked to.
 * Anything malformed is dropped with a debug line: peer misbehaviour.
 */
static void handle_dcep(sl_sctp_t *s, uint16_t sid, const uint8_t *p, size_t n)
{
    if (n < 1)
        return;
    if (p[0] == DCEP_ACK) {
        chan_t *c = chan_find(s, sid);
        if (c && c->ours)
            c->acked = 1;
        return;
    }
    if (p[0] != DCEP_OPEN || n < DCEP_OPEN_HDR) {
        SL_LOGD(&LOGCTX, "sctp: bad DCEP message (type %u, %zu bytes) on sid %u", p[0], n, sid);
        return;
    }
    uint8_t type = p[1];
    uint32_t rel = be32(p + 4);
    size_t llen = be16(p + 8), plen = be16(p + 10);
    if (DCEP_OPEN_HDR + llen + plen > n) {
        SL_LOGD(&LOGCTX, "sctp: truncated DCEP OPEN on sid %u", sid);
        return;
    }
    if (chan_find(s, sid)) {
        SL_LOGD(&LOGCTX, "sctp: DCEP OPEN on sid %u already in use, ignored", sid);
        return;
    }
    uint8_t pr = type & 0x7f;
    if (pr > DCEP_PR_TIMED) {
        SL_LOGD(&LOGCTX, "sctp: DCEP OPEN with unknown channel type 0x%02x", type);
        return;
    }
    char *label = sl_strndup((const char *)p + DCEP_OPEN_HDR, llen);
    char *protocol = sl_strndup((const char *)p + DCEP_OPEN_HDR + llen, plen);
    chan_t *c = (label && protocol) ? chan_add(s, sid) : NULL;
    if (!c) {
        SL_LOGW(&LOGCTX, "sctp: no room for channel on sid %u", sid);
        sl_free(label);
        sl_free(protocol);
        return;
    }
    c->open_sent = 1;
    c->acked = 1;
    c->unordered = (type & DCEP_UNORDERED) != 0;
    c->pr_policy = pr == DCEP_PR_REXMIT ? SCTP_PR_SCTP_RTX : pr == DCEP_PR_TIMED ? SCTP_PR_SCTP_TTL : 0;
    c->pr_value = rel;
    static const uint8_t ack = DCEP_ACK;
    int r = do_send(s, sid, SL_SCTP_PPID_DCEP, &ack, 1, 0, 0, 0);
    if (r != 0)
        SL_LOGD(&LOGCTX, "sctp: DCEP ACK on sid %u not sent: %s", sid, sl_strerror(r));
    if (s->ops->channel_open)
        s->ops->channel_open(s->ud, sid, label, protocol);
    sl_free(label);
    sl_free(protocol);
}

static void deliver(sl_sctp_t *s, uint16_t sid, uint32_t ppid, const uint8_t *p, size_t n)
{
    if (ppid == SL_SCTP_PPID_DCEP) {
        handle_dcep(s, sid, p, n);
        return;
    }
    int is_text;
    switch (ppid) {
    case SL_SCTP_PPID_STRING: is_text = 1; break;
    case SL_SCTP_PPID_BINARY: is_text = 0; break;
    case SL_SCTP_PPID_STRING_EMPTY: is_text = 1; n = 0; break;
    case SL_SCTP_PPID_BINARY_EMPTY: is_text = 0; n = 0; break;
    default:
        SL_LOGD(&LOGCTX, "sctp: message with PPID %u on sid %u dropped", ppid, sid);
        return;
    }
    chan_t *c = chan_find(s, sid);
    if (!c || c->in_reset) {
        SL_LOGD(&LOGCTX, "sctp: message on sid %u without a channel dropped", sid);
        return;
    }
    if (n > s->max_message_size) {
        SL_LOGI(&LOGCTX, "sctp: message of %zu bytes on sid %u over the cap %zu, dropped", n, sid,
                s->max_message_size);
        return;
    }
    if (s->ops->message)
        s->ops->message(s->ud, sid, n ? p : (const uint8_t *)"", n, is_text);
}

static void rx_reset(sl_sctp_t *s)
{
    s->rx_active = 0;
    s->rx_drop = 0;
    s->rx_len = 0;
    if (s->rx_cap > RX_KEEP) {
        sl_free(s->rx);
        s->rx = NULL;
        s->rx_cap = 0;
    }
}

static void rx_append(sl_sctp_t *s, const uint8_t *p, size_t n)
{
    if (s->rx_drop)
        return;
    if (n > s->max_message_size - s->rx_len) {
        SL_LOGI(&LOGCTX, "sctp: message on sid %u over the cap %zu, dropped", s->rx_sid,
                s->max_message_size);
        s->rx_drop = 1;
        s->rx_len = 0;
        return;
    }
    if (s->rx_len + n > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : 4096;
        while (cap < s->rx_len + n)
            cap *= 2;
        if (cap > s->max_message_size)
            cap = s->max_message_size;
        uint8_t *b = sl_realloc(s->rx, cap);
        if (!b) {
            SL_LOGE(&LOGCTX, "sctp: out of memory reassembling %zu bytes, message dropped",
                    s->rx_len + n);
            s->rx_drop = 1;
            s->rx_len = 0;
            return;
        }
        s->rx = b;
        s->rx_cap = cap;
    }
    memcpy(s->rx + s->rx_len, p, n);
    s->rx_len += n;
}

/*
 * One read from the socket: a whole message (MSG_EOR on the first piece,
 * delivered straight from the read buffer) or a piece of one (copied into
 * s->rx up to max_message_size; past it the rest is discarded as it comes
 * and the message is dropped with a log line, so a peer cannot make us
 * buffer more than the cap). Pieces of one message come back to back: the
 * default fragment interleave level of a one-to-one socket does not mix
 * streams inside a partial delivery.
 */
static void handle_data(sl_sctp_t *s, const uint8_t *p, size_t n, const struct sctp_rcvinfo *info,
                        int eor)
{
    uint16_t sid = info ? info->rcv_sid : s->rx_sid;
    uint32_t ppid = info ? ntohl(info->rcv_ppid) : s->rx_ppid;
    if (s->rx_active && sid != s->rx_sid) {
        SL_LOGD(&LOGCTX, "sctp: interleaved partial message on sid %u dropped", s->rx_sid);
        rx_reset(s);
    }
    if (!s->rx_active && eor) {
        deliver(s, sid, ppid, p, n); /* the common case: one piece, no copy */
        return;
    }
    if (!s->rx_active) {
        s->rx_active = 1;
        s->rx_drop = 0;
        s->rx_len = 0;
        s->rx_sid = sid;
        s->rx_ppid = ppid;
    }
    rx_append(s, p, n);
    if (eor) {
        if (!s->rx_drop)
            deliver(s, s->rx_sid, s->rx_ppid, s->rx, s->rx_len);
        if (!s->dead)
            rx_reset(s);
    }
}

/* On COMM_UP: the OPENs of channels opened before the association was up. */
static void send_pending_opens(sl_sctp_t *s)
{
    for (size_t i = 0; i < s->n_chans && !s->dead;) {
        chan_t *c = &s->chans[i];
        if (!c->ours || c->open_sent) {
            i++;
            continue;
        }
        uint16_t sid = c->sid;
        int r = sid < s->n_out ? send_open(s, c) : SL_ETOOBIG;
        if (r == 0) {
            i++;
            continue;
        }
        SL_LOGI(&LOGCTX, "sctp: channel on sid %u could not open: %s", sid, sl_strerror(r));
        chan_remove(s, c);
        if (s->ops->channel_closed)
            s->ops->channel_closed(s->ud, sid);
    }
}

/*
 * Stream resets (RFC 8831 §6.7). Closing a channel resets both directions:
 * the side that closes resets its outgoing stream, the other sees its
 * incoming one reset, reports the channel closed and resets its own
 * outgoing stream in turn. A sid is free again when both directions are
 * reset; until then its entry stays so that it is not handed out again.
 */
static void handle_reset(sl_sctp_t *s, const struct sctp_stream_reset_event *ev, size_t len)
{
    size_t n = len > sizeof *ev ? (len - sizeof *ev) / sizeof(uint16_t) : 0;
    uint16_t flags = ev->strreset_flags;
    for (size_t i = 0; i < n && !s->dead; i++) {
        uint16_t sid = ev->strreset_stream_list[i];
        chan_t *c = chan_find(s, sid);
        if (!c && (flags & SCTP_STREAM_RESET_INCOMING_SSN) &&
            !(flags & (SCTP_STREAM_RESET_DENIED | SCTP_STREAM_RESET_FAILED))) {
            /* A stream we never announced (an OPEN we ignored): still answer
             * with our reset, or the peer's channel never finishes closing. */
            c = chan_add(s, sid);
            if (c) {
                c->in_reset = 1;
                c->out_req = 1;
                c->open_sent = 1;
                s->resets_pending = 1;
            }
            continue;
        }
        if (!c)
            continue;
        if (flags & (SCTP_STREAM_RESET_DENIED | SCTP_STREAM_RESET_FAILED)) {
            if (flags & SCTP_STREAM_RESET_OUTGOING_SSN) {
                SL_LOGD(&LOGCTX, "sctp: peer refused to reset sid %u", sid);
                c->out_done = 1; /* give up: the peer will not reuse it either */
            }
        } else if (flags & SCTP_STREAM_RESET_INCOMING_SSN) {
            if (!c->out_req) {
                c->out_req = 1; /* answer with ours (RFC 8831 §6.7) */
                s->resets_pending = 1;
            }
            if (!c->in_reset) {
                c->in_reset = 1;
                if (s->ops->channel_closed)
                    s->ops->channel_closed(s->ud, sid);
                if (s->dead)
                    return;
                c = chan_find(s, sid); /* the callback may have opened channels */
                if (!c)
                    continue;
            }
        } else if (flags & SCTP_STREAM_RESET_OUTGOING_SSN) {
            c->out_done = 1;
        }
        if (c->in_reset && c->out_done)
            chan_remove(s, c);
    }
    s->resets_pending = 1; /* whatever waited for this one may go now */
}

static void handle_notification(sl_sctp_t *s, const uint8_t *p, size_t n)
{
    const union sctp_notification *nt = (const void *)p;
    if (n < sizeof nt->sn_header)
        return;
    switch (nt->sn_header.sn_type) {
    case SCTP_ASSOC_CHANGE:
        if (n < sizeof nt->sn_assoc_change)
            return;
        switch (nt->sn_assoc_change.sac_state) {
        case SCTP_COMM_UP:
            if (s->up)
                break;
            s->up = 1;
            s->n_out = nt->sn_assoc_change.sac_outbound_streams;
            s->n_in = nt->sn_assoc_change.sac_inbound_streams;
            SL_LOGD(&LOGCTX, "sctp: association up (%u out, %u in streams)", s->n_out, s->n_in);
            send_pending_opens(s);
            if (!s->dead && s->ops->connected)
                s->ops->connected(s->ud);
            break;
        case SCTP_COMM_LOST: report_closed(s, "association lost"); break;
        case SCTP_SHUTDOWN_COMP: report_closed(s, "shutdown complete"); break;
        case SCTP_CANT_STR_ASSOC: report_closed(s, "association refused"); break;
        case SCTP_RESTART: SL_LOGD(&LOGCTX, "sctp: peer restarted the association"); break;
        default: break;
        }
        break;
    case SCTP_SHUTDOWN_EVENT:
        report_closed(s, "peer shut down");
        break;
    case SCTP_STREAM_RESET_EVENT:
        if (n >= sizeof nt->sn_strreset_event)
            handle_reset(s, &nt->sn_strreset_event, n);
        break;
    case SCTP_PARTIAL_DELIVERY_EVENT:
        /* The peer abandoned a message midway (PR-SCTP): drop the pieces. */
        if (n >= sizeof nt->sn_pdapi_event &&
            nt->sn_pdapi_event.pdapi_indication == SCTP_PARTIAL_DELIVERY_ABORTED && s->rx_active)
            rx_reset(s);
        break;
    case SCTP_STREAM_CHANGE_EVENT:
        if (n >= sizeof nt->sn_strchange_event)
            s->n_out = nt->sn_strchange_event.strchange_outstrms;
        break;
    case SCTP_REMOTE_ERROR:
        SL_LOGD(&LOGCTX, "sctp: remote error");
        break;
    default:
        break;
    }
}

/* Reads everything the socket holds. Stops as soon as s is freed. */
static void service(sl_sctp_t *s)
{
    for (int guard = 0; guard < 100000 && !s->dead; guard++) {
        struct sctp_rcvinfo info;
        socklen_t infolen = sizeof info;
        unsigned int infotype = 0;
        int flags = 0;
        struct sockaddr_conn from;
        socklen_t fromlen = sizeof from;
        g.in_usrsctp++;
        ssize_t n = usrsctp_recvv(s->sock, g.rbuf, sizeof g.rbuf, (struct sockaddr *)&from,
                                  &fromlen, &info, &infolen, &infotype, &flags);
        int err = errno;
        g.in_usrsctp--;
        if (n < 0) {
            if (err != EWOULDBLOCK && err != EAGAIN && err != ENOTCONN)
                report_closed(s, "socket error");
            break;
        }
        if (n == 0) {
            if (s->up)
                report_closed(s, "peer shut down");
            break;
        }
        if (flags & MSG_NOTIFICATION) {
            if (!s->notif_skip && (flags & MSG_EOR))
                handle_notification(s, g.rbuf, (size_t)n);
            s->notif_skip = !(flags & MSG_EOR);
            continue;
        }
        handle_data(s, g.rbuf, (size_t)n, infotype == SCTP_RECVV_RCVINFO ? &info : NULL,
                    (flags & MSG_EOR) != 0);
    }
    if (s->dead)
        return;
    flush_resets(s);
    if (s->tail && flush_tail(s) != 0)
        return;
    /* Writable again once half the buffer is free: not at the first free
     * byte, so that a caller retrying a large message does not spin. */
    if (s->want_writable && !s->dead && queued_bytes(s) <= s->sndbuf / 2) {
        s->want_writable = 0;
        if (s->ops->writable)
            s->ops->writable(s->ud);
    }
}

/* Releases a freed association (not in any list iteration). */
static void destroy(sl_sctp_t *s)
{
    g.in_usrsctp++;
    usrsctp_set_upcall(s->sock, NULL, NULL);
    usrsctp_close(s->sock); /* SO_LINGER 0: an ABORT, through conn_output if abort_ok */
    usrsctp_deregister_address((void *)s->id);
    g.in_usrsctp--;
    for (sl_sctp_t **pp = &g.list; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    for (size_t i = 0; i < s->n_chans; i++) {
        sl_free(s->chans[i].label);
        sl_free(s->chans[i].protocol);
    }
    sl_free(s->chans);
    sl_free(s->rx);
    sl_free(s->tail);
    sl_free(s);
}

static int start_connect(sl_sctp_t *s);

static void pump(void)
{
    if (g.pumping || g.in_usrsctp)
        return;
    g.pumping = 1;
    for (;;) {
        int progress = 0;
        pkt_t *q = g.q_head;
        if (q) {
            g.q_head = q->next;
            if (!g.q_head)
                g.q_tail = NULL;
            g.q_len--;
            sl_sctp_t *s = find(q->id);
            if (s && !s->dead) {
                start_connect(s);
                g.in_usrsctp++;
                usrsctp_conninput((void *)s->id, q->data, q->len, 0);
                g.in_usrsctp--;
            }
            sl_free(q);
            progress = 1;
        }
        for (sl_sctp_t *s = g.list; s; s = s->next) {
            if ((s->poll || s->resets_pending) && !s->dead) {
                s->poll = 0;
                service(s);
                progress = 1;
            }
        }
        for (sl_sctp_t *s = g.list, *next; s; s = next) {
            next = s->next;
            if (s->dead) {
                destroy(s);
                progress = 1;
            }
        }
        if (!progress)
            break;
    }
    g.pumping = 0;
}

/* ---- public API ---- */

int sl_sctp_global_init(void)
{
    if (g.inited)
        return 0;
    usrsctp_init_nothreads(0, conn_output, NULL);
    usrsctp_sysctl_set_sctp_ecn_enable(0);
    usrsctp_sysctl_set_sctp_pr_enable(1);
    usrsctp_sysctl_set_sctp_max_chunks_on_queue(10 * 1024);
    usrsctp_sysctl_set_sctp_heartbeat_interval_default(10000);
    usrsctp_sysctl_set_sctp_delayed_sack_time_default(20);
    usrsctp_sysctl_set_sctp_init_rtx_max_default(5);
    usrsctp_sysctl_set_sctp_path_rtx_max_default(5);
    usrsctp_sysctl_set_sctp_assoc_rtx_max_default(5);
    usrsctp_sysctl_set_sctp_rto_min_default(1000);
    usrsctp_sysctl_set_sctp_rto_max_default(10000);
    usrsctp_sysctl_set_sctp_rto_initial_default(1000);
    usrsctp_sysctl_set_sctp_init_rto_max_default(10000);
    usrsctp_sysctl_set_sctp_sendspace(SL_SCTP_SNDBUF);
    usrsctp_sysctl_set_sctp_recvspace(SL_SCTP_RCVBUF);
    g.inited = 1;
    if (!g.next_id)
        g.next_id = 1;
    return 0;
}

void sl_sctp_global_cleanup(void)
{
    if (!g.inited)
        return;
    if (g.list) {
        SL_LOGE(&LOGCTX, "sctp: global cleanup with associations alive, skipped");
        return;
    }
    while (g.q_head) {
        pkt_t *q = g.q_head;
        g.q_head = q->next;
        sl_free(q);
    }
    g.q_tail = NULL;
    g.q_len = 0;
    /* Closed sockets may wait for a timer to be reclaimed: run them out. */
    for (int i = 0; i < 200 && usrsctp_finish() != 0; i++)
        usrsctp_handle_timers(100);
    g.inited = 0;
}

static int setopt_int(struct socket *sock, int level, int name, int v)
{
    return usrsctp_setsockopt(sock, level, name, &v, (socklen_t)sizeof v);
}

int sl_sctp_new(uint16_t local_port, uint16_t remote_port, size_t max_message_size,
                int is_client, const sl_sctp_ops_t *ops, void *ud, sl_sctp_t **out)
{
    if (!out || !ops || !ops->send || !g.inited || max_message_size == 0 ||
        max_message_size > SL_SCTP_MAX_MESSAGE_CAP || g.in_usrsctp)
        return SL_EINVAL;
    *out = NULL;
    sl_sctp_t *s = sl_calloc(1, sizeof *s);
    if (!s)
        return SL_ENOMEM;
    s->id = g.next_id++;
    s->ops = ops;
    s->ud = ud;
    s->local_port = local_port;
    s->remote_port = remote_port;
    s->max_message_size = max_message_size;
    s->is_client = is_client != 0;
    int r = SL_EIO;
    g.in_usrsctp++;
    s->sock = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, NULL, NULL, 0, NULL);
    if (!s->sock) {
        g.in_usrsctp--;
        sl_free(s);
        SL_LOGE(&LOGCTX, "sctp: usrsctp_socket failed (errno %d)", errno);
        return SL_EIO;
    }
    usrsctp_register_address((void *)s->id);
    s->next = g.list;
    g.list = s;
    if (usrsctp_set_non_blocking(s->sock, 1) < 0)
        goto fail;
    usrsctp_set_upcall(s->sock, upcall, (void *)s->id);

    struct linger lg = {1, 0}; /* close = ABORT, no lingering state */
    if (usrsctp_setsockopt(s->sock, SOL_SOCKET, SO_LINGER, &lg, (socklen_t)sizeof lg) < 0)
        goto fail;
    struct sctp_assoc_value av = {.assoc_id = SCTP_ALL_ASSOC,
                                  .assoc_value = SCTP_ENABLE_RESET_STREAM_REQ};
    if (usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_ENABLE_STREAM_RESET, &av,
                           (socklen_t)sizeof av) < 0)
        goto fail;
    if (setopt_int(s->sock, IPPROTO_SCTP, SCTP_RECVRCVINFO, 1) < 0 ||
        setopt_int(s->sock, IPPROTO_SCTP, SCTP_EXPLICIT_EOR, 1) < 0 ||
        setopt_int(s->sock, IPPROTO_SCTP, SCTP_NODELAY, 1) < 0)
        goto fail;
    static const uint16_t events[] = {SCTP_ASSOC_CHANGE, SCTP_REMOTE_ERROR, SCTP_SHUTDOWN_EVENT,
                                      SCTP_STREAM_RESET_EVENT, SCTP_STREAM_CHANGE_EVENT,
                                      SCTP_PARTIAL_DELIVERY_EVENT};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        struct sctp_event ev = {.se_assoc_id = SCTP_ALL_ASSOC, .se_type = events[i], .se_on = 1};
        if (usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_EVENT, &ev, (socklen_t)sizeof ev) < 0)
            goto fail;
    }
    struct sctp_initmsg im = {.sinit_num_ostreams = SL_SCTP_STREAMS,
                              .sinit_max_instreams = SL_SCTP_STREAMS};
    if (usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_INITMSG, &im, (socklen_t)sizeof im) < 0)
        goto fail;
    /* DTLS over UDP over the Internet: a fixed, safe path MTU, no probing. */
    struct sctp_paddrparams pp;
    memset(&pp, 0, sizeof pp);
    pp.spp_flags = SPP_PMTUD_DISABLE;
    pp.spp_pathmtu = 1200;
    if (usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp,
                           (socklen_t)sizeof pp) < 0)
        SL_LOGD(&LOGCTX, "sctp: path MTU not set (errno %d)", errno);
    size_t sndbuf = SL_SCTP_SNDBUF;
    if (sndbuf < 2 * max_message_size)
        sndbuf = 2 * max_message_size;
    s->sndbuf = sndbuf;
    if (setopt_int(s->sock, SOL_SOCKET, SO_SNDBUF, (int)sndbuf) < 0 ||
        setopt_int(s->sock, SOL_SOCKET, SO_RCVBUF, SL_SCTP_RCVBUF) < 0)
        goto fail;

    struct sockaddr_conn sc;
    memset(&sc, 0, sizeof sc);
    sc.sconn_family = AF_CONN;
    sc.sconn_port = htons(local_port);
    sc.sconn_addr = (void *)s->id;
    if (usrsctp_bind(s->sock, (struct sockaddr *)&sc, (socklen_t)sizeof sc) < 0)
        goto fail;
    g.in_usrsctp--;
    *out = s;
    return 0;

fail:
    SL_LOGE(&LOGCTX, "sctp: socket setup failed (errno %d)", errno);
    g.in_usrsctp--;
    s->dead = 1;
    destroy(s);
    return r;
}

int sl_sctp_feed(sl_sctp_t *s, const uint8_t *p, size_t len)
{
    if (!s || !p || len == 0)
        return SL_EINVAL;
    if (s->dead)
        return SL_ECLOSED;
    if (len > SL_SCTP_PACKET_MAX)
        return SL_ETOOBIG;
    if (g.in_usrsctp || g.pumping) {
        if (g.q_len >= SL_SCTP_QUEUE_MAX)
            return SL_EAGAIN;
        pkt_t *q = sl_malloc(sizeof *q + len);
        if (!q)
            return SL_ENOMEM;
        q->next = NULL;
        q->id = s->id;
        q->len = len;
        memcpy(q->data, p, len);
        if (g.q_tail)
            g.q_tail->next = q;
        else
            g.q_head = q;
        g.q_tail = q;
        g.q_len++;
        return 0;
    }
    /* A one-to-one socket that has not connected answers an INIT with an
     * ABORT: connect first, so that a peer faster than our caller meets a
     * simultaneous open (RFC 4960 §5.2.1) instead. */
    start_connect(s);
    g.in_usrsctp++;
    usrsctp_conninput((void *)s->id, p, len, 0);
    g.in_usrsctp--;
    pump();
    return 0;
}

/* Sends our INIT once (usrsctp is not running). */
static int start_connect(sl_sctp_t *s)
{
    if (s->connecting)
        return 0;
    s->connecting = 1;
    struct sockaddr_conn sc;
    memset(&sc, 0, sizeof sc);
    sc.sconn_family = AF_CONN;
    sc.sconn_port = htons(s->remote_port);
    sc.sconn_addr = (void *)s->id;
    g.in_usrsctp++;
    int r = usrsctp_connect(s->sock, (struct sockaddr *)&sc, (socklen_t)sizeof sc);
    int err = errno;
    g.in_usrsctp--;
    if (r < 0 && err != EINPROGRESS) {
        SL_LOGI(&LOGCTX, "sctp: connect failed (errno %d)", err);
        return SL_EIO;
    }
    return 0;
}

int sl_sctp_connect(sl_sctp_t *s)
{
    if (!s || s->dead || s->closed)
        return SL_ECLOSED;
    if (g.in_usrsctp)
        return SL_EBUSY;
    int r = start_connect(s);
    pump();
    return r;
}

int sl_sctp_open_channel(sl_sctp_t *s, const char *label, const char *protocol, int ordered,
                         uint16_t *sid_out)
{
    if (!s || s->dead || s->closed)
        return SL_ECLOSED;
    if (!sid_out)
        return SL_EINVAL;
    if (g.in_usrsctp)
        return SL_EBUSY;
    if (!label)
        label = "";
    if (!protocol)
        protocol = "";
    if (strlen(label) > 65535 || strlen(protocol) > 65535 ||
        DCEP_OPEN_HDR + strlen(label) + strlen(protocol) > s->max_message_size)
        return SL_EINVAL;
    uint16_t limit = s->up ? s->n_out : SL_SCTP_STREAMS;
    uint32_t sid = s->is_client ? 0 : 1;
    while (sid < limit && chan_find(s, (uint16_t)sid))
        sid += 2;
    if (sid >= limit)
        return SL_ETOOBIG;
    chan_t *c = chan_add(s, (uint16_t)sid);
    if (!c)
        return SL_ENOMEM;
    c->ours = 1;
    c->unordered = !ordered;
    c->label = sl_strdup(label);
    c->protocol = sl_strdup(protocol);
    if (!c->label || !c->protocol) {
        chan_remove(s, c);
        return SL_ENOMEM;
    }
    int r = 0;
    if (s->up) {
        r = send_open(s, c);
        if (r != 0)
            chan_remove(s, c);
    }
    if (r == 0)
        *sid_out = (uint16_t)sid;
    pump();
    return r;
}

int sl_sctp_send(sl_sctp_t *s, uint16_t sid, const uint8_t *p, size_t len, int is_text)
{
    if (!s || s->dead || s->closed)
        return SL_ECLOSED;
    if (g.in_usrsctp)
        return SL_EBUSY;
    if (!p && len)
        return SL_EINVAL;
    chan_t *c = chan_find(s, sid);
    if (!c || c->in_reset || c->out_req)
        return SL_ENOTFOUND;
    if (!c->open_sent)
        return SL_EAGAIN;
    if (len > s->max_message_size) {
        SL_LOGI(&LOGCTX, "sctp: message of %zu bytes over the cap %zu refused", len,
                s->max_message_size);
        return SL_ETOOBIG;
    }
    uint32_t ppid;
    static const uint8_t zero = 0;
    if (len == 0) {
        ppid = is_text ? SL_SCTP_PPID_STRING_EMPTY : SL_SCTP_PPID_BINARY_EMPTY;
        p = &zero; /* SCTP cannot carry an empty message: one byte, ignored */
        len = 1;
    } else {
        ppid = is_text ? SL_SCTP_PPID_STRING : SL_SCTP_PPID_BINARY;
    }
    int unordered = c->acked && c->unordered;
    int r = do_send(s, sid, ppid, p, len, unordered, c->acked ? c->pr_policy : 0, c->pr_value);
    pump();
    return r;
}

int sl_sctp_close_channel(sl_sctp_t *s, uint16_t sid)
{
    if (!s || s->dead || s->closed)
        return SL_ECLOSED;
    if (g.in_usrsctp)
        return SL_EBUSY;
    chan_t *c = chan_find(s, sid);
    if (!c || c->out_req)
        return SL_ENOTFOUND;
    c->out_req = 1;
    if (!c->open_sent) {
        /* Never announced: nothing to reset. */
        chan_remove(s, c);
        if (s->ops->channel_closed)
            s->ops->channel_closed(s->ud, sid);
        return 0;
    }
    s->resets_pending = 1;
    flush_resets(s);
    pump();
    return 0;
}

size_t sl_sctp_buffered(const sl_sctp_t *s)
{
    if (!s || s->dead || g.in_usrsctp)
        return 0;
    return queued_bytes((sl_sctp_t *)s) + (s->tail ? s->tail_len - s->tail_off : 0);
}

void sl_sctp_tick(uint32_t elapsed_ms)
{
    if (!g.inited || g.in_usrsctp)
        return;
    g.in_usrsctp++;
    usrsctp_handle_timers(elapsed_ms);
    g.in_usrsctp--;
    for (sl_sctp_t *s = g.list; s; s = s->next)
        if (s->tail || s->want_writable)
            s->poll = 1; /* in case no upcall said the buffer drained */
    pump();
}

void sl_sctp_free(sl_sctp_t *s)
{
    if (!s || s->dead)
        return;
    s->dead = 1;
    if (g.in_usrsctp || g.pumping)
        return; /* released at the end of the running pump (or the caller's pump) */
    s->abort_ok = 1;
    destroy(s);
    pump();
}
