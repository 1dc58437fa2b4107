/*
 * H.265 over RTP (RFC 7798: single NAL unit packets, aggregation packets
 * (AP, type 48) and fragmentation units (FU, type 49); no DONL, i.e.
 * sprop-max-don-diff 0, which is what encoders send), between RTP and
 * sluice's frames, whose HEVC is Enhanced RTMP 'hvc1': length-prefixed NAL
 * units, with an HEVCDecoderConfigurationRecord (hvcC) carrying
 * VPS/SPS/PPS as the sequence header.
 *
 * Like rtp_h264.h: the packetizer runs once per frame (the frame cache,
 * sl_frame_rtp_payloads()) and is shared by every player; the
 * depacketizer turns one publisher's packets into access units and
 * configuration records. Bounded: an access unit is at most
 * SL_RTP_MAX_FRAME bytes and SL_H265_MAX_NALS NAL units, a parameter set
 * SL_H265_MAX_PS_LEN bytes. Fuzzed by tests/fuzz/rtp_h265_fuzz.c.
 */
#ifndef SL_MEDIA_RTP_H265_H
#define SL_MEDIA_RTP_H265_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "media/rtp.h"

#define SL_H265_MAX_NALS 1024
#define SL_H265_MAX_PS_LEN 1024
/* Largest hvcC sl_h265_hvcc_record() writes: 23 bytes + 3 arrays of one set. */
#define SL_H265_MAX_RECORD (23 + 3 * (5 + SL_H265_MAX_PS_LEN))

/**
 * Writes an HEVCDecoderConfigurationRecord (ISO 14496-15 8.3.3) for one
 * VPS, SPS and PPS with 4-byte NAL lengths into out; profile, tier,
 * compatibility, constraint flags and level are read from the SPS's
 * profile_tier_level (emulation prevention removed), the rest set to
 * "unknown" values decoders accept. Returns the record length, SL_EINVAL
 * for an SPS shorter than 15 bytes or an empty set, SL_ETOOBIG when cap is
 * too small.
 */
int sl_h265_hvcc_record(const uint8_t *vps, size_t vps_len, const uint8_t *sps, size_t sps_len,
                        const uint8_t *pps, size_t pps_len, uint8_t *out, size_t cap);

/**
 * Packetizes one access unit given as length-prefixed NAL units
 * (nal_len_size 1..4) into single NAL unit packets and FUs for payload MTU
 * mtu (0 = SL_RTP_DEFAULT_MTU). When is_key and config (an hvcC, may be
 * NULL) are given, its VPS/SPS/PPS go first unless the access unit carries
 * its own. Access unit delimiters (35) are left out. Marker on the last
 * packet. Caller owns out->buf. Returns 0, SL_EPROTO (a length past the
 * end, nothing to send), SL_ETOOBIG, SL_EINVAL (bad mtu), SL_ENOMEM.
 */
int sl_h265_packetize(const uint8_t *au, size_t len, int nal_len_size, const uint8_t *config,
                      size_t config_len, int is_key, size_t mtu, sl_rtp_payloads_t *out);

/** The NAL length size an hvcC announces (1, 2 or 4), or SL_EPROTO for a short record. */
int sl_h265_config_nal_len(const uint8_t *rec, size_t len);

/* Callbacks as for H.264 (rtp_h264.h): bytes borrowed for the call. */
typedef void (*sl_h265_config_cb)(void *ud, const uint8_t *hvcc, size_t len);
typedef void (*sl_h265_frame_cb)(void *ud, uint32_t rtp_ts, const uint8_t *au, size_t len, int is_key);

typedef struct sl_h265_depack sl_h265_depack_t;

/** A depacketizer (needs an IRAP picture with VPS/SPS/PPS first). NULL on ENOMEM. */
sl_h265_depack_t *sl_h265_depack_new(sl_h265_config_cb on_config, sl_h265_frame_cb on_frame, void *ud);
/**
 * Seeds the parameter sets from the SDP (sprop-vps/sps/pps, decoded), for
 * senders that send them only there. Each borrowed for the call; empty or
 * too long ones are ignored.
 */
void sl_h265_depack_set_ps(sl_h265_depack_t *d, const uint8_t *vps, size_t vps_len, const uint8_t *sps,
                           size_t sps_len, const uint8_t *pps, size_t pps_len);
/**
 * Feeds one RTP packet in sequence order (see sl_h264_depack_push): an
 * access unit ends at the marker or a timestamp change, and is emitted as
 * 4-byte length-prefixed NAL units, or dropped when broken. Returns 0,
 * SL_EPROTO for a malformed or unsupported (PACI) packet, SL_ETOOBIG past
 * a cap; usable after any error.
 */
int sl_h265_depack_push(sl_h265_depack_t *d, const sl_rtp_hdr_t *h);
/** Packets lost for good: the open access unit is dropped, an IRAP picture is needed. */
void sl_h265_depack_loss(sl_h265_depack_t *d);
/** 1 while waiting for an IRAP picture. */
int sl_h265_depack_need_keyframe(const sl_h265_depack_t *d);
void sl_h265_depack_free(sl_h265_depack_t *d);

/**
 * Enhanced RTMP bodies (FourCC 'hvc1') for sl_frame_new(SL_FLV_VIDEO, ...),
 * each a new sl_buf_t the caller owns, NULL on ENOMEM or a size over
 * SL_RTP_MAX_FRAME: config 0x90 'hvc1' + hvcC (SequenceStart); frame
 * 0x91 (key) / 0xA1 'hvc1' + cts (si24) + NAL units (CodedFrames).
 */
sl_buf_t *sl_h265_flv_config_body(const uint8_t *hvcc, size_t len);
sl_buf_t *sl_h265_flv_frame_body(const uint8_t *au, size_t len, int is_key, int32_t cts_ms);

#endif
