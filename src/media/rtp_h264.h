/*
 * H.264 over RTP (RFC 6184, packetization-mode 1: single NAL unit, STAP-A
 * and FU-A packets), between RTP and sluice's frames, whose H.264 is AVCC
 * (length-prefixed NAL units in an FLV video body, with an
 * AVCDecoderConfigurationRecord carrying SPS/PPS as the sequence header).
 *
 * The packetizer runs once per frame per stream (through the frame cache,
 * sl_frame_rtp_payloads() in rtp.h) and its output is shared by every
 * viewer. The depacketizer turns one publisher's packets into access units
 * and configuration records, which sl_h264_flv_*_body() wrap as FLV bodies
 * for sl_frame_new(). Everything is bounded: an access unit is at most
 * SL_RTP_MAX_FRAME bytes and SL_H264_MAX_NALS NAL units.
 */
#ifndef SL_MEDIA_RTP_H264_H
#define SL_MEDIA_RTP_H264_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "media/rtp.h"

/** Most NAL units in one access unit (packetizer and depacketizer). */
#define SL_H264_MAX_NALS 1024
/** Most SPS or PPS kept from one configuration record. */
#define SL_H264_MAX_PS 16
/** Largest SPS or PPS the depacketizer keeps (bigger ones break the access unit). */
#define SL_H264_MAX_PS_LEN 1024

/* A parsed AVCDecoderConfigurationRecord; pointers borrow the record. */
typedef struct sl_h264_config {
    uint8_t profile_idc;         /* AVCProfileIndication */
    uint8_t profile_compat;      /* profile_compatibility */
    uint8_t level_idc;           /* AVCLevelIndication */
    int nal_len_size;            /* 1, 2 or 4 (lengthSizeMinusOne + 1) */
    int n_sps, n_pps;            /* parameter sets found (each <= SL_H264_MAX_PS) */
    const uint8_t *sps[SL_H264_MAX_PS];
    uint16_t sps_len[SL_H264_MAX_PS];
    const uint8_t *pps[SL_H264_MAX_PS];
    uint16_t pps_len[SL_H264_MAX_PS];
} sl_h264_config_t;

/**
 * Parses an AVCDecoderConfigurationRecord (ISO 14496-15 §5.2.4.1). The
 * high-profile trailer (chroma format, bit depths, SPS extensions) is
 * ignored. Returns 0 and fills cfg (pointers into rec, valid as long as rec
 * is), SL_EPROTO for a truncated or inconsistent record (version != 1,
 * lengthSizeMinusOne of 2, empty parameter sets), SL_ETOOBIG for more than
 * SL_H264_MAX_PS SPS or PPS.
 */
int sl_h264_config_parse(const uint8_t *rec, size_t len, sl_h264_config_t *cfg);

/**
 * Writes an AVCDecoderConfigurationRecord for one SPS and one PPS, with
 * 4-byte NAL lengths, into out. Profile, compatibility and level come from
 * SPS bytes 1-3; the high-profile trailer is not written (FLV and libavcodec
 * do not need it). Returns the record length, SL_EINVAL for an SPS shorter
 * than 4 bytes or an empty PPS or parameter sets over 65535 bytes,
 * SL_ETOOBIG when cap is too small (11 + sps_len + pps_len is enough).
 */
int sl_h264_avcc_record(const uint8_t *sps, size_t sps_len, const uint8_t *pps, size_t pps_len,
                        uint8_t *out, size_t cap);

/**
 * Packetizes one access unit given as AVCC (NAL units with nal_len_size-
 * byte big-endian lengths, 1..4) into RTP payloads for payload MTU mtu (0 =
 * SL_RTP_DEFAULT_MTU, else SL_RTP_MIN_MTU..SL_RTP_MAX_MTU). Consecutive small
 * NAL units share a STAP-A, a NAL unit larger than mtu is split into FU-As,
 * others go as single NAL unit packets; the last packet carries the marker.
 * Access unit delimiters (type 9) and reserved types are left out. When
 * is_key is set and config (an AVCDecoderConfigurationRecord, may be NULL)
 * is given, its SPS/PPS are sent first unless the access unit carries its
 * own. On success the caller owns out->buf (sl_rtp_payloads_release()).
 * Returns 0, SL_EPROTO for a NAL length running past the end, a bad
 * nal_len_size or an access unit with no NAL unit left to send,
 * SL_ETOOBIG past SL_RTP_MAX_FRAME bytes or SL_H264_MAX_NALS NAL units,
 * SL_EINVAL for a bad mtu, the config parser's errors, SL_ENOMEM.
 */
int sl_h264_packetize(const uint8_t *avcc, size_t len, int nal_len_size,
                      const uint8_t *config, size_t config_len, int is_key, size_t mtu,
                      sl_rtp_payloads_t *out);

/* What the slices of one access unit say about it (sl_h264_au_info()). */
typedef struct sl_h264_au_info {
    int n_slices;  /* coded slice NAL units (types 1 and 5) whose header was read */
    int is_idr;    /* an IDR slice (type 5) is present */
    int is_ref;    /* some slice has nal_ref_idc != 0: later pictures may predict from it */
    int has_b;     /* some slice is a B slice (slice_type 1 or 6) */
} sl_h264_au_info_t;

/**
 * Reads the NAL unit headers and the start of each slice header
 * (first_mb_in_slice, slice_type; emulation prevention bytes removed) of
 * one access unit given as AVCC with nal_len_size-byte lengths (1, 2 or
 * 4). At most SL_H264_MAX_NALS NAL units are looked at; only the first 16
 * bytes of a slice are read. Used to find B-frames, which WebRTC receivers
 * do not reorder (a non-reference B-frame can be left out without harming
 * any other picture). Returns 0 and fills *out, SL_EPROTO when a NAL
 * length runs past the end or nal_len_size is bad (*out then holds what
 * was read before).
 */
int sl_h264_au_info(const uint8_t *avcc, size_t len, int nal_len_size, sl_h264_au_info_t *out);

/*
 * Depacketizer callbacks. Both borrow their bytes for the duration of the
 * call only. They run inside sl_h264_depack_push(); they must not free the
 * depacketizer.
 *   on_config: a new AVCDecoderConfigurationRecord (first SPS/PPS seen, or
 *              a change), always delivered before the frame that uses it.
 *   on_frame:  one complete access unit as AVCC with 4-byte lengths (every
 *              NAL unit received, SPS/PPS and SEI included), its RTP
 *              timestamp and whether it holds an IDR slice.
 */
typedef void (*sl_h264_config_cb)(void *ud, const uint8_t *avcc_record, size_t len);
typedef void (*sl_h264_frame_cb)(void *ud, uint32_t rtp_ts, const uint8_t *avcc, size_t len,
                                 int is_key);

typedef struct sl_h264_depack sl_h264_depack_t;

/**
 * Makes a depacketizer for one SSRC. The callbacks and ud are borrowed for
 * the depacketizer's life. It starts needing a keyframe: nothing is emitted
 * before the first IDR with its SPS/PPS. Returns NULL on allocation failure.
 * Caller owns the result (sl_h264_depack_free()).
 */
sl_h264_depack_t *sl_h264_depack_new(sl_h264_config_cb on_config, sl_h264_frame_cb on_frame,
                                     void *ud);

/**
 * Feeds one RTP packet (borrowed for the call). Packets must come in
 * sequence order with duplicates removed: reordering is the caller's
 * jitter buffer's job, and a gap it gives up on must be reported with
 * sl_h264_depack_loss() before the next packet is pushed (the
 * depacketizer does not look at sequence numbers; a padding-only packet
 * may be pushed or skipped). An access unit ends at the marker bit or when
 * the timestamp changes; it is then emitted, or dropped if it is broken
 * (loss, missing fragment, bad packet, over a cap) or if a keyframe is
 * needed and it is not one. Returns 0, or for a packet that was refused
 * (its access unit is then dropped and a keyframe needed): SL_EPROTO for a
 * malformed or unsupported (STAP-B, MTAP, FU-B) packet, SL_ETOOBIG for a
 * cap. The depacketizer stays usable after any error.
 */
int sl_h264_depack_push(sl_h264_depack_t *d, const sl_rtp_hdr_t *h);

/**
 * Seeds the parameter sets from the SDP's sprop-parameter-sets (decoded
 * NAL units, borrowed for the call), for senders that send them only
 * there (ffmpeg's RTSP muxer with global headers). Sets that are too short
 * or too long are ignored.
 */
void sl_h264_depack_set_ps(sl_h264_depack_t *d, const uint8_t *sps, size_t sps_len, const uint8_t *pps,
                           size_t pps_len);
/**
 * Reports packets lost for good (a gap the caller will not fill): the open
 * access unit is dropped, and nothing is emitted until the next IDR.
 */
void sl_h264_depack_loss(sl_h264_depack_t *d);

/**
 * 1 while the depacketizer drops everything until an IDR: the caller sends
 * a PLI (RTCP payload-specific feedback) at a rate it chooses.
 */
int sl_h264_depack_need_keyframe(const sl_h264_depack_t *d);

/** Frees the depacketizer and any partial access unit. NULL is ignored. */
void sl_h264_depack_free(sl_h264_depack_t *d);

/**
 * FLV AVC bodies for sl_frame_new(SL_FLV_VIDEO, ...), each a new sl_buf_t
 * the caller owns, NULL on allocation failure or a size over
 * SL_RTP_MAX_FRAME:
 *   config: 0x17 0x00 0 0 0 + record (the sequence header);
 *   frame:  0x17 (key) / 0x27, 0x01, composition time cts_ms (si24), AVCC.
 */
sl_buf_t *sl_h264_flv_config_body(const uint8_t *record, size_t len);
sl_buf_t *sl_h264_flv_frame_body(const uint8_t *avcc, size_t len, int is_key, int32_t cts_ms);

#endif
