/*
 * The RTMP chunk stream: reassembling messages from chunks (all four
 * header types, extended timestamps, per-chunk-stream state, abort) and
 * writing messages as chunks.
 *
 * Reading: the reader assembles each message straight into an sl_buf_t,
 * which then becomes a frame's body with no copy. Limits (largest chunk
 * size, largest message, number of chunk streams) are enforced before any
 * allocation of a declared size.
 *
 * Budget: a declared length is a claim, not bytes. The buffer of a message
 * being assembled starts at what has arrived (at least 4 KB, at most the
 * declared length; a frame that arrives whole in one read is allocated
 * once, at its size) and grows as chunks come, doubling, capped at the
 * declared length. What all partial messages of a connection reserve (the
 * capacity of their buffers) is counted in `held` and bounded by
 * `max_held`; the number of messages in flight at once by `max_partial`;
 * and every reservation is also taken from an optional server-wide
 * sl_byte_pool_t shared by all connections. Going over any of them fails the
 * read with SL_ETOOBIG and says which in `over`. Completing, abandoning or
 * aborting a message and cleanup give its bytes back.
 *
 * Writing has two paths. Control and command messages are chunked whole
 * into a builder (sl_rtmp_chunk_write). Media frames are chunked once per
 * frame and shared (sl_rtmp_chunk_media_body): the encoding holds the
 * payload with the type-3 continuation headers already interleaved, and
 * each subscriber only writes its own 12-byte type-0 header before it
 * (sl_rtmp_chunk_media_header), so N players cost one encoding and N small
 * headers. See docs/internals/FANOUT.md.
 */
#ifndef SL_PROTO_RTMP_CHUNK_H
#define SL_PROTO_RTMP_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "base/budget.h"
#include "base/buf.h"
#include "media/frame.h"

/* Message type ids. */
enum {
    SL_RTMP_SET_CHUNK_SIZE = 1,
    SL_RTMP_ABORT = 2,
    SL_RTMP_ACK = 3,
    SL_RTMP_USER_CONTROL = 4,
    SL_RTMP_WINDOW_ACK_SIZE = 5,
    SL_RTMP_SET_PEER_BW = 6,
    SL_RTMP_AUDIO = 8,
    SL_RTMP_VIDEO = 9,
    SL_RTMP_DATA_AMF3 = 15,
    SL_RTMP_SO_AMF3 = 16,
    SL_RTMP_COMMAND_AMF3 = 17,
    SL_RTMP_DATA_AMF0 = 18,
    SL_RTMP_SO_AMF0 = 19,
    SL_RTMP_COMMAND_AMF0 = 20,
    SL_RTMP_AGGREGATE = 22,
};

/* User control event types. */
enum {
    SL_RTMP_UC_STREAM_BEGIN = 0,
    SL_RTMP_UC_STREAM_EOF = 1,
    SL_RTMP_UC_STREAM_DRY = 2,
    SL_RTMP_UC_SET_BUFFER_LENGTH = 3,
    SL_RTMP_UC_STREAM_IS_RECORDED = 4,
    SL_RTMP_UC_PING_REQUEST = 6,
    SL_RTMP_UC_PING_RESPONSE = 7,
};

/* Chunk stream ids sluice uses when it writes. */
#define SL_RTMP_CSID_CONTROL 2
#define SL_RTMP_CSID_COMMAND 3
#define SL_RTMP_CSID_AUDIO 4
#define SL_RTMP_CSID_DATA 5
#define SL_RTMP_CSID_VIDEO 6

#define SL_RTMP_MAX_CSIDS 64 /* distinct chunk streams one peer may use */

/* A complete message. */
typedef struct sl_rtmp_msg {
    uint8_t type;        /* message type id */
    uint32_t csid;       /* chunk stream it came on */
    uint32_t stream_id;  /* message stream id */
    uint32_t ts;         /* absolute timestamp (ms, wraps at 2^32) */
    sl_buf_t *body;      /* owned by whoever receives the msg */
} sl_rtmp_msg_t;

typedef struct sl_rtmp_cstate {
    uint32_t csid;       /* chunk stream id (0 = free slot) */
    uint32_t ts;         /* timestamp of the current/last message */
    uint32_t delta;      /* last timestamp delta (type 1/2; type 0: its ts) */
    uint32_t len;        /* message length */
    uint8_t type;        /* message type */
    uint8_t ext;         /* last header carried an extended timestamp */
    uint8_t started;     /* a header has been seen on this chunk stream */
    uint32_t stream_id;  /* message stream id */
    sl_buf_t *partial;   /* message being assembled (owned) or NULL */
} sl_rtmp_cstate_t;

/*
 * Chunk stream states are allocated as the peer opens chunk streams: a
 * player uses two or three, a publisher four or five, and an idle
 * connection none, so a fixed array of SL_RTMP_MAX_CSIDS (2 KB) would
 * mostly be wasted across 10,000 connections. The array starts at
 * CSTATE_INITIAL entries on the first header and doubles up to the limit.
 */
typedef struct sl_rtmp_chunk_reader {
    uint32_t chunk_size;       /* current incoming chunk size */
    uint32_t max_chunk_size;   /* refuse larger SetChunkSize */
    uint32_t max_message_size; /* refuse larger messages */
    sl_rtmp_cstate_t *cs;      /* chunk stream states (owned; NULL until the first header) */
    uint32_t n_cs;             /* entries of cs in use (csid != 0) */
    uint32_t cap_cs;           /* entries allocated, at most SL_RTMP_MAX_CSIDS */
    /* header parse state: bytes of the current chunk header gathered so far */
    uint8_t hdr[18];
    uint8_t hdr_have;
    sl_rtmp_cstate_t *cur;     /* chunk stream whose payload is being read, or NULL */
    uint32_t chunk_left;       /* payload bytes left in the current chunk */
    /* budget of partial messages (see the file comment) */
    int64_t held;              /* bytes reserved by partial messages now (sum of capacities) */
    int64_t max_held;          /* limit on held; 0 = none */
    uint32_t n_partial;        /* chunk streams with a message half assembled */
    uint32_t max_partial;      /* limit on n_partial */
    sl_byte_pool_t *pool;      /* server-wide pool the bytes also come from (borrowed), or NULL */
    /* Called when the pool refuses `want` bytes: may give pool bytes back
     * (closing other holders) and return 1 to have the take retried once. */
    int (*pool_full)(void *ud, int64_t want);
    void *pool_full_ud;        /* its argument */
    uint8_t over;              /* after SL_ETOOBIG: which limit (SL_RTMP_OVER_*), else 0 */
    int64_t over_want;         /* after a budget refusal: the bytes held had it been granted */
} sl_rtmp_chunk_reader_t;

/* Which limit a read went over (sl_rtmp_chunk_reader_t.over). */
enum {
    SL_RTMP_OVER_NONE = 0,
    SL_RTMP_OVER_MESSAGE,      /* a declared length above max_message_size */
    SL_RTMP_OVER_CSIDS,        /* more than SL_RTMP_MAX_CSIDS chunk streams */
    SL_RTMP_OVER_PARTIAL,      /* more than max_partial messages in flight */
    SL_RTMP_OVER_CONN,         /* the connection's max_held */
    SL_RTMP_OVER_SERVER,       /* the server-wide pool's limit */
};

/**
 * Initialises a reader (chunk size 128) with its limits. Partial messages
 * are not budgeted (no byte limit, SL_RTMP_MAX_CSIDS in flight, no pool)
 * until sl_rtmp_chunk_reader_set_budget.
 */
void sl_rtmp_chunk_reader_init(sl_rtmp_chunk_reader_t *r, uint32_t max_chunk_size,
                               uint32_t max_message_size);
/**
 * Sets the partial-message budget: at most max_held bytes reserved (0 =
 * no limit) and max_partial messages in flight (0 = SL_RTMP_MAX_CSIDS),
 * every reservation also taken from pool (borrowed; it must outlive the
 * reader; NULL = none). May be called at any time: bytes already held stay
 * held (and are moved to a new pool), and a lower limit applies from the
 * next reservation on.
 */
void sl_rtmp_chunk_reader_set_budget(sl_rtmp_chunk_reader_t *r, int64_t max_held,
                                     uint32_t max_partial, sl_byte_pool_t *pool);
/**
 * Frees partial messages and the chunk stream states, giving their bytes
 * back to the pool; init makes it usable again.
 */
void sl_rtmp_chunk_reader_cleanup(sl_rtmp_chunk_reader_t *r);
/**
 * Applies a SetChunkSize from the peer. SL_ETOOBIG above the limit,
 * SL_EPROTO for 0 or a size with the top bit set.
 */
int sl_rtmp_chunk_reader_set_chunk_size(sl_rtmp_chunk_reader_t *r, uint32_t size);
/** Applies an Abort message: drops the partial message on that chunk stream (its bytes go back). */
void sl_rtmp_chunk_reader_abort(sl_rtmp_chunk_reader_t *r, uint32_t csid);
/**
 * Consumes bytes from p[0..n). Stops after the first complete message:
 * returns 1 with *out filled (out->body owned by the caller) and *used set
 * to the bytes consumed; returns 0 when all n bytes were consumed without
 * completing a message; negative on a protocol violation (SL_EPROTO,
 * SL_ETOOBIG for a message over the limit, too many chunk streams or
 * partial messages, or a budget exceeded, with r->over saying which;
 * SL_ENOMEM), after which the reader must not be fed again (cleanup
 * still gives everything back).
 */
int sl_rtmp_chunk_read(sl_rtmp_chunk_reader_t *r, const uint8_t *p, size_t n, size_t *used,
                       sl_rtmp_msg_t *out);

/**
 * Appends a whole message as chunks (type-0 header, then type-3 headers)
 * to w. Returns 0 or a wbuf error.
 */
int sl_rtmp_chunk_write(sl_wbuf_t *w, uint32_t csid, uint8_t type, uint32_t stream_id,
                        uint32_t ts, const uint8_t *payload, size_t len, uint32_t chunk_size);

/** Chunk stream id sluice writes a frame of this kind on. */
static inline uint32_t sl_rtmp_frame_csid(const sl_frame_t *f)
{
    return f->kind == SL_FLV_VIDEO ? SL_RTMP_CSID_VIDEO
         : f->kind == SL_FLV_AUDIO ? SL_RTMP_CSID_AUDIO : SL_RTMP_CSID_DATA;
}

/**
 * The shared chunked body of a media frame for chunk_size: the payload with
 * type-3 continuation headers (for the frame's chunk stream, without
 * extended timestamps) after every chunk_size bytes. A body that fits one
 * chunk is its own encoding: the frame's body itself comes back, no copy.
 * Otherwise built on first use and cached on the frame (once, whichever
 * loop thread gets there first: sl_frame_enc_claim). Returns a borrowed
 * pointer valid while the frame lives, or NULL on allocation failure or
 * when the cache is not available to this caller (another thread is
 * building it, or built it for another chunk size): the caller then
 * writes a private encoding with sl_rtmp_chunk_write.
 */
static inline sl_buf_t *sl_rtmp_chunk_media_body(sl_frame_t *f, uint32_t chunk_size);
/** The building half of sl_rtmp_chunk_media_body (first use for a chunk size). */
sl_buf_t *sl__rtmp_chunk_media_body_build(sl_frame_t *f, uint32_t chunk_size);

/* Inline: called once per frame per player on every flush. */
static inline sl_buf_t *sl_rtmp_chunk_media_body(sl_frame_t *f, uint32_t chunk_size)
{
    /* A message that fits one chunk needs no continuation header: its
     * chunked body is the payload itself, shared with no copy at all. */
    if (f->body->len <= chunk_size)
        return f->body;
    sl_buf_t *enc = sl_frame_enc_get(f, SL_ENC_RTMP, chunk_size);
    if (enc)
        return enc;
    return sl__rtmp_chunk_media_body_build(f, chunk_size);
}

/**
 * Writes the per-subscriber type-0 header of a media frame into hdr (room
 * for 16 bytes) and returns its length. ts must be below 0xFFFFFF for the
 * shared body to be valid (the caller falls back to sl_rtmp_chunk_write
 * otherwise). Inline: once per frame per player.
 */
static inline size_t sl_rtmp_chunk_media_header(uint8_t *h, const sl_frame_t *f,
                                                uint32_t stream_id, uint32_t ts)
{
    h[0] = (uint8_t)sl_rtmp_frame_csid(f); /* fmt 0, one-byte basic header */
    int ext = ts >= 0xFFFFFF;
    sl_wr_be24(h + 1, ext ? 0xFFFFFF : ts);
    sl_wr_be24(h + 4, f->body->len);
    h[7] = f->kind;
    sl_wr_le32(h + 8, stream_id);
    if (!ext)
        return 12;
    sl_wr_be32(h + 12, ts);
    return 16;
}

#endif
