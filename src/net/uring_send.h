/*
 * Batched socket sends through io_uring: many sendmsg calls, on as many
 * sockets, handed to the kernel in one io_uring_enter instead of one
 * writev each. The RTMP write path (proto/rtmp) uses it when
 * rtmp.write_mode is io_uring: the flush before the loop sleeps queues one
 * send per player with data, then submits them all at once.
 *
 * Every send carries MSG_DONTWAIT, so the kernel completes it inline during
 * the submit (a partial count, or -EAGAIN when the socket is full: io_uring
 * marks such a request "nowait" and does not arm a poll for it) and the
 * caller sees the result as it would see a writev's, before
 * sl_uring_send_submit returns. No send outlives the submit that carried
 * it, so the caller's buffers need no reference counting beyond the call
 * and nothing has to be linked to the libuv loop (no eventfd wake-up per
 * iteration). A kernel that did not complete them inline (older ones armed
 * a poll for -EAGAIN) gets a short wait, then the sends left are cancelled
 * and waited for, and submit reports it so the caller can go back to
 * writev for good.
 *
 * Unavailable (no liburing at build time, a kernel without io_uring, or a
 * seccomp filter that refuses io_uring_setup, as in many containers):
 * sl_uring_send_new fails and the caller keeps writing with writev.
 *
 * Loop thread only. The caller owns the message, its iovecs and every byte
 * they point at until the completion callback for that send has run.
 */
#ifndef SL_NET_URING_SEND_H
#define SL_NET_URING_SEND_H

#include <stdint.h>
#include <sys/socket.h>

typedef struct sl_uring_send sl_uring_send_t;

/* A send finished: result is the byte count the kernel took (maybe partial),
 * or a negative errno (-EAGAIN: the socket took nothing; -ECANCELED: a send
 * the kernel did not complete inline was cancelled and took nothing; -EIO:
 * one that could not be cancelled either, whose bytes may still go). */
typedef void (*sl_uring_send_cb)(void *ud, int result);

/*
 * A ring of `entries` submission slots (1..4096). 0 and *out set, or a
 * negative errno from io_uring_setup (-ENOSYS: no io_uring; -EPERM: seccomp)
 * or SL_ENOMEM / SL_EINVAL, with *out NULL and nothing left open. Without
 * liburing at build time it always fails with -ENOSYS. Setting the
 * environment variable SL_TEST_NO_IO_URING (tests: the fallback path) makes it
 * fail with -ENOSYS too. Free with sl_uring_send_free.
 */
int sl_uring_send_new(unsigned entries, sl_uring_send_t **out);

/*
 * Queues one sendmsg on fd (flags get MSG_DONTWAIT | MSG_NOSIGNAL added).
 * msg and what it points at are borrowed until cb(ud, result) runs, which
 * is never before the next sl_uring_send_submit. 0, or SL_EAGAIN when every
 * slot is taken (submit first, then queue again).
 */
int sl_uring_send_add(sl_uring_send_t *u, int fd, const struct msghdr *msg, int flags,
                      sl_uring_send_cb cb, void *ud);

/*
 * Hands every queued send to the kernel in one system call and runs the
 * callback of every one of them before it returns (a callback may queue
 * sends, which wait for the next submit). 0; or SL_EIO when the kernel did
 * not complete them inline: they were waited for (at most
 * SL_URING_SEND_WAIT_MS) and the rest cancelled (their callbacks get
 * -ECANCELED); or a negative errno when io_uring_enter failed, in which
 * case every callback got that errno. After a non-zero return the caller
 * should stop using the ring.
 */
int sl_uring_send_submit(sl_uring_send_t *u);

/** How long submit waits for sends that did not complete inline. */
#define SL_URING_SEND_WAIT_MS 5

/* Submissions (system calls) made and sends completed, for the docs' figures. */
void sl_uring_send_stats(const sl_uring_send_t *u, uint64_t *submits, uint64_t *sends);

/* Closes the ring and frees it (no send is ever in flight between submits). NULL is a no-op. */
void sl_uring_send_free(sl_uring_send_t *u);

#endif
