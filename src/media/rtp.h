/*
 * RTP (RFC 3550): the fixed header, header extensions (RFC 8285 one-byte
 * and two-byte forms), and the shared output of every payload packetizer
 * (sl_rtp_payloads_t), which is what WebRTC today and RTSP later send.
 *
 * The media path builds the RTP payloads of a frame once (H.264: see
 * rtp_h264.h, VP8: rtp_vp8.h, Opus here) and caches them on the frame in
 * enc[SL_ENC_RTP]; every viewer then writes only its own 12-byte header
 * (SSRC, sequence number, timestamp offset, and its own extensions) in
 * front of each shared payload before encrypting. Parsing borrows the
 * packet's bytes and copies nothing. Pure functions over bytes, loop thread
 * only for the frame cache; fuzzed by tests/fuzz/rtp_fuzz.c.
 */
#ifndef SL_MEDIA_RTP_H
#define SL_MEDIA_RTP_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "media/frame.h"

/** Largest RTP packet parsed or written (the largest UDP datagram payload). */
#define SL_RTP_MAX_PACKET 65507u
/** Payload MTU used when a packetizer is given 0. */
#define SL_RTP_DEFAULT_MTU 1200u
/** Accepted payload MTU range for the packetizers. */
#define SL_RTP_MIN_MTU 64u
#define SL_RTP_MAX_MTU 65000u
/** Largest frame (access unit) a packetizer or depacketizer handles: 4 MiB. */
#define SL_RTP_MAX_FRAME (4u * 1024u * 1024u)

/*
 * A parsed RTP packet. Every pointer borrows the packet buffer given to
 * sl_rtp_parse() and is valid as long as that buffer is.
 */
typedef struct sl_rtp_hdr {
    uint8_t marker;          /* M bit */
    uint8_t pt;              /* payload type (7 bits) */
    uint8_t cc;              /* number of CSRCs */
    uint8_t has_ext;         /* X bit: a header extension block is present */
    uint8_t padding;         /* padding bytes removed from the end (0 if none) */
    uint16_t seq;            /* sequence number */
    uint32_t ts;             /* RTP timestamp */
    uint32_t ssrc;           /* synchronisation source */
    const uint8_t *csrc;     /* cc big-endian 32-bit CSRCs (borrowed) */
    uint16_t ext_profile;    /* "defined by profile" field (0xBEDE, 0x100x, ...) */
    const uint8_t *ext;      /* extension block body, after its 4-byte head (borrowed) */
    size_t ext_len;          /* its length in bytes (4 * the length field) */
    const uint8_t *payload;  /* payload, padding removed (borrowed) */
    size_t payload_len;      /* its length; 0 for a padding-only packet */
} sl_rtp_hdr_t;

/**
 * Parses an RTP packet of len bytes (version 2 only). Returns 0 and fills h
 * with pointers into p, or SL_EPROTO when the packet is shorter than its
 * header says, has a bad version, bad padding count, or is larger than
 * SL_RTP_MAX_PACKET. RTCP is not told apart here: demultiplex first.
 */
int sl_rtp_parse(const uint8_t *p, size_t len, sl_rtp_hdr_t *h);

/**
 * Finds header extension element `id` (RFC 8285) in a parsed packet, in the
 * one-byte form (profile 0xBEDE, ids 1-14) or the two-byte form (profile
 * 0x100x, ids 1-255). Returns 0 with *data / *len pointing into the packet
 * (borrowed, like h's pointers), SL_ENOTFOUND when the packet has no such
 * element (or an extension block of another profile), SL_EPROTO when the
 * block is malformed before the element is found, SL_EINVAL for a bad id.
 */
int sl_rtp_ext_get(const sl_rtp_hdr_t *h, int id, const uint8_t **data, size_t *len);

/*
 * Extensions a sender adds in the one-byte form. An id of 0 leaves that
 * element out; ids are 1..14 as negotiated in the SDP (a=extmap).
 */
typedef struct sl_rtp_ext_out {
    int mid_id;           /* urn:ietf:params:rtp-hdrext:sdes:mid */
    const char *mid;      /* its value: 1..16 bytes, no NUL needed */
    size_t mid_len;       /* length of mid */
    int twcc_id;          /* transport-wide congestion control sequence number */
    uint16_t twcc_seq;    /* its value */
} sl_rtp_ext_out_t;

/** Bytes sl_rtp_write_hdr() will write for these extensions (12 with none). */
size_t sl_rtp_hdr_size(const sl_rtp_ext_out_t *ext);

/**
 * Writes an RTP header (version 2, no CSRC, no padding) into out, with a
 * one-byte extension block when ext names any element (ext may be NULL).
 * Returns the number of bytes written (12 without extensions, a multiple of
 * 4 in any case), SL_ETOOBIG if cap is too small, SL_EINVAL for an id out
 * of 1..14, a mid longer than 16 bytes, or pt > 127.
 */
int sl_rtp_write_hdr(uint8_t *out, size_t cap, int marker, uint8_t pt, uint16_t seq,
                     uint32_t ts, uint32_t ssrc, const sl_rtp_ext_out_t *ext);

/* ---- Packetizer output, shared by every packetizer ---- */

/* One RTP payload inside an sl_rtp_payloads_t buffer. */
typedef struct sl_rtp_pkt_ref {
    uint32_t off;    /* offset of the payload in buf->data */
    uint16_t len;    /* payload length in bytes */
    uint8_t marker;  /* RTP marker bit for this packet (last packet of a frame) */
    uint8_t flags;   /* reserved, 0 */
} sl_rtp_pkt_ref_t;

/*
 * The RTP payloads of one frame, back to back in one refcounted sl_buf_t.
 * The packet index lives inside the same buffer, after the payloads:
 *
 *     [payloads][pad to 4][sl_rtp_pkt_ref_t x n][u32 n][u32 payload bytes]
 *
 * so the one reference on buf keeps payloads and index alive together and
 * the frame cache frees both by unreferencing the buffer. The struct itself
 * is a view: copy it freely; it is valid while a reference on buf is held.
 */
typedef struct sl_rtp_payloads {
    sl_buf_t *buf;               /* the buffer (owned or borrowed: see each function) */
    const sl_rtp_pkt_ref_t *pkts;/* n packet references, inside buf */
    uint32_t n;                  /* number of packets (>= 1) */
    int priv;                    /* sl_frame_rtp_payloads: buf is a private build the caller owns */
} sl_rtp_payloads_t;

/**
 * Rebuilds the view of a payloads buffer made by a packetizer (e.g. taken
 * from a frame's cache). Borrows b (no reference taken). Returns 0, or
 * SL_EINVAL when b does not hold a well-formed payloads layout.
 */
int sl_rtp_payloads_view(sl_buf_t *b, sl_rtp_payloads_t *out);

/** Drops the reference a packetizer returned in p->buf and clears p. */
void sl_rtp_payloads_release(sl_rtp_payloads_t *p);

/**
 * Opus (RFC 7587): one packet per frame, marker clear. Copies the Opus
 * packet into a new payloads buffer whose reference the caller owns in
 * out->buf. Returns 0, SL_EINVAL for an empty packet, SL_ETOOBIG above
 * SL_RTP_MAX_MTU bytes, SL_ENOMEM.
 */
int sl_opus_packetize(const uint8_t *pkt, size_t len, sl_rtp_payloads_t *out);

/**
 * Builds an Enhanced-RTMP audio body for one Opus packet (0x91 'Opus'
 * data) into a new sl_buf_t the caller owns, ready for sl_frame_new(
 * SL_FLV_AUDIO, ...). Returns NULL on allocation failure or len 0.
 */
sl_buf_t *sl_opus_flv_frame_body(const uint8_t *pkt, size_t len);

/**
 * The frame cache: returns the RTP payloads of frame f for payload MTU mtu
 * (0 = SL_RTP_DEFAULT_MTU), building them on first use and keeping them in
 * f->enc[SL_ENC_RTP] (enc_param = mtu), so every viewer of the frame shares
 * one buffer. Handles H.264 (config is the stream's AVC decoder
 * configuration record: its NAL length size is used, and its SPS/PPS are
 * sent before a keyframe that lacks them; NULL means 4-byte lengths and no
 * parameter sets), H.265 (config: the hvcC, used alike), VP8, Opus, AAC
 * (RFC 3640 AAC-hbr) and G.711 frames. Two slots (SL_ENC_RTP and
 * SL_ENC_RTP_ALT) keep the first two MTUs asked for, each set once (the
 * once-guard of media/frame.h); a caller that asks for a third MTU, or
 * finds its MTU still being built by another thread, gets a private build
 * (out->priv set) for this call. Any thread. The view
 * in *out is valid while f is alive and until sl_rtp_payloads_done(out),
 * which every successful call must be paired with (it releases a private
 * build, and does nothing for the shared one); take sl_buf_ref(out->buf) to
 * keep the payloads longer. The cache is keyed on mtu only: a stream passes
 * the same config for a given frame every time. Returns 0; SL_EINVAL for a
 * config, metadata or unsupported-codec frame; the packetizer's errors
 * otherwise.
 */
int sl_frame_rtp_payloads(sl_frame_t *f, size_t mtu, const uint8_t *config, size_t config_len,
                          sl_rtp_payloads_t *out);
/** Ends the use of a view from sl_frame_rtp_payloads (releases a private build). */
void sl_rtp_payloads_done(sl_rtp_payloads_t *p);

/*
 * Internal to the rtp_*.c packetizers: allocates a payloads buffer for n
 * packets carrying payload_bytes bytes in total; out->buf (caller owns) has
 * its index zeroed and its trailer written, and out->pkts points at the
 * index for the caller to fill. Returns 0, SL_ETOOBIG, SL_ENOMEM.
 */
int sl__rtp_payloads_alloc(size_t payload_bytes, uint32_t n, sl_rtp_payloads_t *out);

#endif
