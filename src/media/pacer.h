/*
 * A packet pacer for one receiver (a WebRTC viewer): a bounded queue of
 * references to already-built RTP payloads (slices of refcounted sl_buf_t
 * blocks, never copies), drained at a pacing rate by a byte budget that
 * fills with time, as libwebrtc's PacingController (interval budget).
 *
 * Two rings: a priority ring (audio and retransmissions, sent first) and a
 * video ring. Each ring has a hard packet cap set at init. A full priority
 * ring drops its oldest packet (counted); a full video ring refuses the
 * push (SL_ETOOBIG) so the owner drops video and waits for a keyframe. The
 * owner adapts by sl_pacer_drop_video(): every queued video packet goes,
 * except the rest of a frame already begun on the wire (a half-sent frame
 * would be wasted either way, and a half-sent keyframe would leave the
 * receiver with nothing to decode). Audio is never dropped for video.
 *
 * Sending is the owner's callback: 0 sent, SL_EAGAIN the socket is full
 * (the packet stays at the head and the drain stops: retried on the next
 * drain, counted), any other error drops that packet. Pure logic over a
 * caller-supplied millisecond clock: unit-tested on synthetic time. Loop
 * thread only.
 */
#ifndef SL_MEDIA_PACER_H
#define SL_MEDIA_PACER_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define SL_PACER_BURST_MS 20      /* budget that may accumulate while idle */
#define SL_PACER_OVERHEAD 40      /* bytes counted per packet beyond the payload (RTP, SRTP, UDP/IP) */

typedef enum {
    SL_PACER_VIDEO = 0,           /* video media: the video ring */
    SL_PACER_AUDIO = 1,           /* audio: the priority ring */
    SL_PACER_RTX = 2,             /* a retransmission (either track): the priority ring */
} sl_pacer_kind_t;

/* One queued packet: a slice of buf (the pacer holds one reference). */
typedef struct sl_pacer_pkt {
    sl_buf_t *buf;                /* payload block */
    uint32_t off;                 /* payload = buf->data + off */
    uint16_t len;                 /* payload bytes */
    uint8_t kind;                 /* sl_pacer_kind_t */
    uint8_t marker;               /* RTP marker bit */
    uint8_t key;                  /* part of a keyframe */
    uint8_t track;                /* owner's track index (e.g. 0 video, 1 audio) */
    uint16_t seq;                 /* retransmissions: the original sequence number */
    uint32_t ts;                  /* RTP timestamp */
    uint32_t frame;               /* video: the owner's frame number (drops count frames) */
    uint64_t enq_ms;              /* when it was queued (set by sl_pacer_push) */
} sl_pacer_pkt_t;

typedef struct sl_pacer_ring {
    sl_pacer_pkt_t *e;
    uint32_t cap, head, n;
} sl_pacer_ring_t;

/* Returns 0 (sent), SL_EAGAIN (retry later; keep it) or another error (drop it). */
typedef int (*sl_pacer_send_cb)(void *ud, const sl_pacer_pkt_t *pkt);

typedef struct sl_pacer {
    sl_pacer_ring_t prio, video;
    size_t bytes;                 /* payload bytes queued (both rings) */
    uint64_t rate_bps;            /* pacing rate; 0 = unpaced (budget unlimited) */
    double budget;                /* bytes that may go now (negative: in debt) */
    uint64_t budget_ms;           /* when the budget was last filled */
    int budget_set;
    uint32_t started_frame;       /* video frame whose first packet went out */
    int started;                  /* started_frame valid and not finished */
    uint64_t sent, retries;       /* packets sent; sends refused with SL_EAGAIN */
    uint64_t prio_dropped;        /* priority packets dropped because that ring was full */
    uint64_t send_failed;         /* packets dropped because the send failed otherwise */
} sl_pacer_t;

/**
 * Initialises p with room for video_cap and prio_cap packets (each >= 1).
 * 0 or SL_ENOMEM (p is then clean: sl_pacer_cleanup is harmless).
 */
int sl_pacer_init(sl_pacer_t *p, uint32_t video_cap, uint32_t prio_cap);

/** Releases every queued reference and the rings. p may be re-initialised. */
void sl_pacer_cleanup(sl_pacer_t *p);

/** Sets the pacing rate in bit/s (0 = send as fast as the callback takes them). */
void sl_pacer_set_rate(sl_pacer_t *p, uint64_t rate_bps);

/**
 * Queues a copy of *pkt, taking a new reference on pkt->buf (the caller
 * keeps its own), stamped enq_ms = now_ms. Video into the video ring:
 * SL_ETOOBIG when it is full (nothing taken). Audio and retransmissions
 * into the priority ring: when full, its oldest packet is dropped
 * (prio_dropped) to make room; always 0.
 */
int sl_pacer_push(sl_pacer_t *p, const sl_pacer_pkt_t *pkt, uint64_t now_ms);

/**
 * Sends what the budget allows at now_ms, priority ring first, through
 * send(ud, pkt) (pkt is borrowed for the call; the pacer releases its
 * reference after a send or a failure). Returns 0 when it stopped for the
 * budget or an empty queue, SL_EAGAIN when the callback refused (the packet
 * stays first; retries counted). The callback must not push or drop.
 */
int sl_pacer_drain(sl_pacer_t *p, uint64_t now_ms, sl_pacer_send_cb send, void *ud);

/**
 * Drops the queued video but the rest of a frame already begun. Returns
 * the number of distinct frames dropped (by pkt.frame).
 */
uint32_t sl_pacer_drop_video(sl_pacer_t *p);

/**
 * How far behind the queue is, in ms: the larger of the oldest packet's
 * age and the time the queued bytes take at the pacing rate (0 when empty;
 * unpaced: the age only).
 */
uint32_t sl_pacer_queue_ms(const sl_pacer_t *p, uint64_t now_ms);

/** 1 when nothing is queued. */
static inline int sl_pacer_empty(const sl_pacer_t *p) { return p->prio.n == 0 && p->video.n == 0; }

/** 1 while video frame `frame` has packets on the wire and in the queue. */
static inline int sl_pacer_frame_started(const sl_pacer_t *p, uint32_t frame)
{
    return p->started && p->started_frame == frame;
}

#endif
