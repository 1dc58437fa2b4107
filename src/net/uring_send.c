/*
 * Batched socket sends through io_uring (see uring_send.h): a ring and a
 * table of pending callbacks indexed by the submission's user_data. Every
 * send is finished (completed or cancelled) when submit returns. Built as a
 * stub that always reports -ENOSYS when liburing is missing.
 */
#include "net/uring_send.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "sluice/errors.h"

#ifdef SL_HAVE_URING
#include <liburing.h>

#define CANCEL_TAG UINT64_MAX /* user_data of our own cancel request */

typedef struct pending {
    sl_uring_send_cb cb;
    void *ud;
    uint32_t next_free;     /* free list link */
} pending_t;

struct sl_uring_send {
    struct io_uring ring;
    unsigned entries;
    unsigned inflight;      /* queued, callback not run yet */
    uint32_t free_head;     /* first free pending slot; entries = none */
    uint64_t submits;       /* io_uring_enter calls made by submit */
    uint64_t sends;         /* completions delivered */
    pending_t *pend;
};

/* Delivers one completion to its owner and frees its slot. */
static void complete(sl_uring_send_t *u, uint64_t tag, int res)
{
    if (tag >= u->entries)
        return; /* the cancel request's own completion */
    uint32_t i = (uint32_t)tag;
    pending_t p = u->pend[i];
    if (!p.cb)
        return; /* cannot happen: a slot completes once */
    u->pend[i].cb = NULL;
    u->pend[i].next_free = u->free_head;
    u->free_head = i;
    u->inflight--;
    u->sends++;
    p.cb(p.ud, res);
}

/* Runs the callback of every completion waiting in the ring. */
static void reap(sl_uring_send_t *u)
{
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
        uint64_t tag = cqe->user_data;
        int res = cqe->res;
        io_uring_cqe_seen(&u->ring, cqe);
        complete(u, tag, res);
    }
}

int sl_uring_send_new(unsigned entries, sl_uring_send_t **out)
{
    *out = NULL;
    if (entries < 1 || entries > 4096)
        return SL_EINVAL;
    if (getenv("SL_TEST_NO_IO_URING"))
        return -ENOSYS;
    sl_uring_send_t *u = sl_calloc(1, sizeof(*u));
    pending_t *pend = sl_calloc(entries, sizeof(*pend));
    if (!u || !pend) {
        sl_free(u);
        sl_free(pend);
        return SL_ENOMEM;
    }
    /* The completion queue holds every send plus the cancel request. */
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = entries * 2 + 2;
    int rc = io_uring_queue_init_params(entries, &u->ring, &p);
    if (rc < 0) {
        sl_free(pend);
        sl_free(u);
        return rc;
    }
    u->pend = pend;
    u->entries = entries;
    for (uint32_t i = 0; i < entries; i++)
        pend[i].next_free = i + 1;
    *out = u;
    return 0;
}

int sl_uring_send_add(sl_uring_send_t *u, int fd, const struct msghdr *msg, int flags,
                      sl_uring_send_cb cb, void *ud)
{
    if (u->free_head >= u->entries)
        return SL_EAGAIN;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe)
        return SL_EAGAIN;
    uint32_t i = u->free_head;
    u->free_head = u->pend[i].next_free;
    u->pend[i].cb = cb;
    u->pend[i].ud = ud;
    u->inflight++;
    io_uring_prep_sendmsg(sqe, fd, msg, (unsigned)(flags | MSG_DONTWAIT | MSG_NOSIGNAL));
    io_uring_sqe_set_data64(sqe, i);
    return 0;
}

/*
 * The kernel left sends in flight: wait a little, then cancel what is left
 * and wait for every completion, so that no send outlives the submit.
 */
static int drain_late(sl_uring_send_t *u)
{
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = SL_URING_SEND_WAIT_MS * 1000000L};
    struct io_uring_cqe *cqe;
    while (u->inflight && io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts) == 0)
        reap(u);
    if (!u->inflight)
        return SL_EIO;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (sqe) {
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data64(sqe, CANCEL_TAG);
        io_uring_submit(&u->ring);
    }
    while (u->inflight) {
        if (io_uring_wait_cqe(&u->ring, &cqe) < 0)
            break;
        reap(u);
    }
    /* A kernel that can neither complete nor cancel: fail what remains so
     * every owner is told (its bytes may still be read by the kernel, which
     * is why the caller must stop using the ring: see uring_send.h). -EIO,
     * not -ECANCELED: a cancelled send took nothing and may be sent again,
     * these may not. */
    for (uint32_t i = 0; i < u->entries && u->inflight; i++)
        if (u->pend[i].cb)
            complete(u, i, -EIO);
    return SL_EIO;
}

int sl_uring_send_submit(sl_uring_send_t *u)
{
    if (!u->inflight)
        return 0;
    u->submits++;
    int rc = io_uring_submit(&u->ring);
    if (rc < 0) {
        for (uint32_t i = 0; i < u->entries && u->inflight; i++)
            if (u->pend[i].cb)
                complete(u, i, rc);
        return rc;
    }
    reap(u);
    return u->inflight ? drain_late(u) : 0;
}

void sl_uring_send_stats(const sl_uring_send_t *u, uint64_t *submits, uint64_t *sends)
{
    *submits = u->submits;
    *sends = u->sends;
}

void sl_uring_send_free(sl_uring_send_t *u)
{
    if (!u)
        return;
    io_uring_queue_exit(&u->ring);
    sl_free(u->pend);
    sl_free(u);
}

#else /* no liburing */

int sl_uring_send_new(unsigned entries, sl_uring_send_t **out)
{
    (void)entries;
    *out = NULL;
    return -ENOSYS;
}

int sl_uring_send_add(sl_uring_send_t *u, int fd, const struct msghdr *msg, int flags,
                      sl_uring_send_cb cb, void *ud)
{
    (void)u, (void)fd, (void)msg, (void)flags, (void)cb, (void)ud;
    return SL_EAGAIN;
}

int sl_uring_send_submit(sl_uring_send_t *u)
{
    (void)u;
    return -ENOSYS;
}

void sl_uring_send_stats(const sl_uring_send_t *u, uint64_t *submits, uint64_t *sends)
{
    (void)u;
    *submits = *sends = 0;
}

void sl_uring_send_free(sl_uring_send_t *u) { (void)u; }

#endif
