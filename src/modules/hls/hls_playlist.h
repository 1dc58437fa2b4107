/*
 * The HLS segment store and playlist rules of one live stream: a bounded
 * window of media segments (MPEG-TS or fMP4) with, for Low-Latency HLS,
 * their partial segments, plus the rendering of the media playlist
 * (RFC 8216 and its LL-HLS extension, draft-pantos-hls-rfc8216bis) and the
 * decisions of blocking playlist reload. Pure data and text: no I/O, no
 * loop, no libav; the muxer (hls_mux.c) fills it and the HTTP side
 * (hls.c) reads it, so the rules below are unit-tested on their own
 * (tests/unit/modules/hls_test.c).
 *
 * Model. Segments are numbered by their Media Sequence Number (msn) from 0
 * for the life of the store; parts carry a global index (their URI
 * `{name}_part{index}.m4s`, so a preload hint names the right resource
 * whichever segment the part ends up in). At most one segment is open: it
 * receives parts until sl_hls_pl_end() closes it with its complete bytes.
 * The store keeps the newest `window` complete segments in the playlist
 * and `extra` older ones that are no longer listed but still served
 * (RFC 8216 6.2.2: a segment stays available for a while after it leaves
 * the playlist).
 *
 * Rules kept here:
 *  - EXT-X-TARGETDURATION is the ceiling, in seconds, of the longest
 *    segment the store has held (so it never decreases while the playlist
 *    lives, as 6.2.1 requires) and is at least 1; before the first segment
 *    completes it is the configured segment length rounded up.
 *  - EXT-X-MEDIA-SEQUENCE is the msn of the first listed segment and
 *    grows as the window slides; EXT-X-DISCONTINUITY-SEQUENCE counts the
 *    discontinuities of the segments that left the playlist.
 *  - A segment opened after a republish or a codec change carries
 *    EXT-X-DISCONTINUITY (and, for fMP4, its own EXT-X-MAP).
 *  - LL-HLS: parts are listed (EXT-X-PART) for the segments within three
 *    target durations of the playlist end, and for the open segment; the
 *    playlist ends with EXT-X-PRELOAD-HINT for the next part; part bytes
 *    are kept a little longer than they are listed (four target durations).
 *  - Delta updates (_HLS_skip=YES): segments whose end lies more than
 *    CAN-SKIP-UNTIL (six target durations) before the playlist end are
 *    replaced by EXT-X-SKIP.
 */
#ifndef SL_PROTO_HLS_PLAYLIST_H
#define SL_PROTO_HLS_PLAYLIST_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define SL_HLS_MAX_WINDOW 100       /* segments listed at most (config bound) */
#define SL_HLS_MAX_PARTS_PER_SEG 512 /* parts in one segment before it is forced closed */

/* One LL-HLS partial segment: one CMAF chunk (moof + mdat). */
typedef struct sl_hls_part {
    sl_buf_t *data;          /* the bytes; owned reference, NULL once dropped (too old) */
    uint64_t index;          /* global part number (URI) */
    uint32_t duration_ms;    /* media time it covers */
    uint8_t independent;     /* starts with a keyframe (INDEPENDENT=YES) */
} sl_hls_part_t;

/* One media segment. */
typedef struct sl_hls_segment {
    uint64_t msn;            /* media sequence number */
    uint32_t duration_ms;    /* complete: its duration; open: the parts' total so far */
    uint64_t pdt_ms;         /* wall clock of its first frame (EXT-X-PROGRAM-DATE-TIME) */
    sl_buf_t *data;          /* complete bytes (owned reference); NULL while open */
    sl_buf_t *init;          /* fMP4: the init section it needs (owned reference), else NULL */
    uint32_t init_gen;       /* number of that init section (its URI) */
    uint8_t discontinuity;   /* EXT-X-DISCONTINUITY before it */
    uint8_t complete;        /* closed by sl_hls_pl_end */
    sl_hls_part_t *parts;    /* LL-HLS parts, owned array (n_parts used) */
    uint32_t n_parts, cap_parts;
} sl_hls_segment_t;

typedef struct sl_hls_playlist {
    sl_hls_segment_t *ring;  /* owned ring of cap segments */
    uint32_t cap;            /* window + extra + 1 (the open one) */
    uint32_t head;           /* index of the oldest stored segment */
    uint32_t count;          /* segments stored (complete ones, then maybe one open) */
    uint32_t window;         /* complete segments listed */
    uint64_t next_msn;       /* msn of the next segment to open */
    uint64_t next_part;      /* index of the next part to add */
    uint64_t disc_dropped;   /* discontinuities of segments no longer stored */
    uint32_t max_seg_ms;     /* longest complete segment so far */
    uint32_t seg_target_ms;  /* configured segment length */
    uint32_t part_target_ms; /* LL-HLS part target; 0 = no parts */
    int ended;               /* the stream ended: EXT-X-ENDLIST */
    int fmp4;                /* segments are fMP4 (EXT-X-MAP, version 7) */
} sl_hls_playlist_t;

/**
 * Initialises an empty store. window: complete segments listed (1..
 * SL_HLS_MAX_WINDOW); extra: older segments still served; part_target_ms
 * 0 for plain HLS. 0, SL_EINVAL or SL_ENOMEM.
 */
int sl_hls_pl_init(sl_hls_playlist_t *pl, uint32_t window, uint32_t extra, uint32_t seg_target_ms,
                   uint32_t part_target_ms, int fmp4);
/** Drops every buffer reference and frees the ring. Safe on a zeroed struct. */
void sl_hls_pl_cleanup(sl_hls_playlist_t *pl);

/**
 * Opens a new segment (an open one must have been closed first:
 * SL_EINVAL otherwise). init (fMP4, may be NULL) is borrowed: the segment
 * takes its own reference. When the ring is full the oldest segment is
 * dropped; its msn is then written to *dropped_msn (else UINT64_MAX).
 * Returns 0 or SL_EINVAL.
 */
int sl_hls_pl_begin(sl_hls_playlist_t *pl, uint64_t pdt_ms, int discontinuity, sl_buf_t *init,
                    uint32_t init_gen, uint64_t *dropped_msn);
/**
 * Appends a part to the open segment. data is borrowed (a reference is
 * taken). Returns 0, SL_EINVAL (no open segment, or no parts configured),
 * SL_ETOOBIG (SL_HLS_MAX_PARTS_PER_SEG reached) or SL_ENOMEM.
 */
int sl_hls_pl_add_part(sl_hls_playlist_t *pl, sl_buf_t *data, uint32_t duration_ms, int independent);
/**
 * Closes the open segment with its complete bytes (borrowed; a reference
 * is taken) and duration. Parts that fell out of the part window lose
 * their bytes. 0 or SL_EINVAL (nothing open).
 */
int sl_hls_pl_end(sl_hls_playlist_t *pl, sl_buf_t *data, uint32_t duration_ms);
/**
 * Abandons the open segment when nothing was produced for it (no parts):
 * it is removed and its msn reused. Returns 0 (also when nothing is
 * open), or SL_EBUSY when it has parts (close it with sl_hls_pl_end).
 */
int sl_hls_pl_abandon(sl_hls_playlist_t *pl);

/** The open segment, or NULL. Borrowed until the next call that changes the store. */
sl_hls_segment_t *sl_hls_pl_open(sl_hls_playlist_t *pl);
/** A complete stored segment by msn, or NULL. Borrowed (same validity). */
const sl_hls_segment_t *sl_hls_pl_segment(const sl_hls_playlist_t *pl, uint64_t msn);
/** A stored part (with bytes) by global index, or NULL. Borrowed (same validity). */
const sl_hls_part_t *sl_hls_pl_part(const sl_hls_playlist_t *pl, uint64_t index);
/** The init section of generation gen still referenced by a stored segment, or NULL. */
sl_buf_t *sl_hls_pl_init_section(const sl_hls_playlist_t *pl, uint32_t gen);
/** Number of complete segments stored. */
uint32_t sl_hls_pl_complete_count(const sl_hls_playlist_t *pl);
/** EXT-X-TARGETDURATION in seconds (see the rules above). */
uint32_t sl_hls_pl_target_s(const sl_hls_playlist_t *pl);

/* What the rendering needs besides the store; strings are borrowed. */
typedef struct sl_hls_render_opts {
    const char *name;        /* URI base: the stream's last path segment ("s" for live/room1/s) */
    const char *query;       /* appended to every URI after '?', e.g. "sid=..."; "" or NULL = none */
    const char *seg_ext;     /* ".ts" or ".m4s" */
    int low_latency;         /* render LL-HLS tags (needs part_target_ms) */
    int skip;                /* _HLS_skip=YES: a delta update */
} sl_hls_render_opts_t;

/**
 * Renders the media playlist into w (appended; w's cap bounds it).
 * Returns 0, SL_ETOOBIG or SL_ENOMEM.
 */
int sl_hls_pl_render(const sl_hls_playlist_t *pl, const sl_hls_render_opts_t *o, sl_wbuf_t *w);

/* Blocking playlist reload (rfc8216bis 6.2.5.2). */
typedef enum {
    SL_HLS_BLOCK_READY = 0,  /* answer now */
    SL_HLS_BLOCK_WAIT = 1,   /* hold the request until the store changes */
    SL_HLS_BLOCK_BAD = 2,    /* too far ahead: 400 */
} sl_hls_block_t;

/**
 * Decides a request carrying _HLS_msn=msn and optionally _HLS_part=part
 * (part < 0 when absent). READY when the playlist already holds segment
 * msn complete, or (with part) that part of it, or when the stream ended;
 * BAD when msn is more than two segments past the last one in the
 * playlist, or part is beyond the Advance Part Limit (3 / PART-TARGET
 * parts when the target is under a second, else 3); otherwise WAIT.
 * Without parts in the store, part is ignored.
 */
sl_hls_block_t sl_hls_pl_block_check(const sl_hls_playlist_t *pl, int64_t msn, int64_t part);

/**
 * Decides a request for part `index` (a preload hint, or a part listed
 * earlier): READY when its bytes are stored, WAIT when it is the next part
 * to be produced and the stream goes on, BAD (404) otherwise.
 */
sl_hls_block_t sl_hls_pl_part_check(const sl_hls_playlist_t *pl, uint64_t index);

#endif
