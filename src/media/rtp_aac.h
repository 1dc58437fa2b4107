/*
 * Audio RTP payloads beyond Opus, for RTSP: AAC as mpeg4-generic (RFC 3640,
 * AAC-hbr mode: AU headers of sizelength/indexlength/indexdeltalength
 * bits) and G.711 (RFC 3551 PCMU/PCMA, payload = the samples). Between RTP
 * and sluice's frames, whose AAC is an FLV AAC body (0xAF, packet type 0
 * with the AudioSpecificConfig, 1 with one raw access unit) and whose G.711
 * is FLV sound format 7 (A-law) / 8 (mu-law), 8 kHz mono.
 *
 * The packetizer runs once per frame (through the frame cache,
 * sl_frame_rtp_payloads() in rtp.h) and every RTSP player shares its
 * output. The depacketizer is bounded: at most SL_AAC_MAX_AUS access units
 * per packet, an access unit at most SL_AAC_MAX_AU bytes (a fragmented one
 * included). Pure over bytes; fuzzed by tests/fuzz/rtp_aac_fuzz.c.
 */
#ifndef SL_MEDIA_RTP_AAC_H
#define SL_MEDIA_RTP_AAC_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "media/rtp.h"

#define SL_AAC_MAX_AUS 64         /* access units per packet */
#define SL_AAC_MAX_AU 8192        /* bytes per access unit (AAC frames are < 1600 for 48 kHz stereo) */
#define SL_AAC_MAX_CONFIG 64      /* AudioSpecificConfig bytes kept */

/* The mpeg4-generic parameters of an fmtp line (RFC 3640 4.1). */
typedef struct sl_aac_fmtp {
    int sizelength;        /* bits of an AU size (13 for AAC-hbr) */
    int indexlength;       /* bits of the first AU index (3) */
    int indexdeltalength;  /* bits of the later AU index deltas (3) */
    uint8_t config[SL_AAC_MAX_CONFIG]; /* AudioSpecificConfig from config=<hex> */
    size_t config_len;     /* 0 when absent */
} sl_aac_fmtp_t;

/**
 * Reads an a=fmtp value of mpeg4-generic ("streamtype=5; profile-level-id=1;
 * mode=AAC-hbr; sizelength=13; indexlength=3; indexdeltalength=3;
 * config=1210"; borrowed). Returns 0 and fills out, SL_EPROTO when a mode
 * other than AAC-hbr is named, sizelength is missing or out of 1..16,
 * index lengths out of 0..8, or config is not hex of 2..64 bytes.
 */
int sl_aac_fmtp_parse(const char *fmtp, sl_aac_fmtp_t *out);

/** One access unit out of the depacketizer (bytes borrowed for the call); ts in the RTP clock. */
typedef void (*sl_aac_frame_cb)(void *ud, uint32_t rtp_ts, const uint8_t *au, size_t len);

typedef struct sl_aac_depack sl_aac_depack_t;

/**
 * Makes a depacketizer with the parameters of fmtp (copied); samples_per_au
 * (1024 for AAC-LC) advances the timestamp of each further access unit of
 * a packet. on_frame and ud are borrowed. NULL on allocation failure;
 * caller owns the result (sl_aac_depack_free()).
 */
sl_aac_depack_t *sl_aac_depack_new(const sl_aac_fmtp_t *fmtp, uint32_t samples_per_au,
                                   sl_aac_frame_cb on_frame, void *ud);
/**
 * Feeds one RTP packet (borrowed for the call), in sequence order. Every
 * whole access unit in it goes to on_frame; a fragment (one AU header whose
 * size is larger than the data) is collected until the packet with the
 * marker bit. Returns 0, SL_EPROTO for a malformed packet (the headers run
 * past the payload, sizes disagree with the data) or SL_ETOOBIG past a cap;
 * an error drops any partial access unit and the depacketizer stays usable.
 */
int sl_aac_depack_push(sl_aac_depack_t *d, const sl_rtp_hdr_t *h);
/** Packets were lost: a partial access unit is dropped. */
void sl_aac_depack_loss(sl_aac_depack_t *d);
/** Frees the depacketizer (NULL is ignored). */
void sl_aac_depack_free(sl_aac_depack_t *d);

/**
 * Packetizes one AAC access unit in AAC-hbr mode (13-bit size, 3-bit
 * index): one AU per packet, fragmented over several packets (each with
 * the whole AU's header, marker on the last) when it does not fit mtu
 * (0 = SL_RTP_DEFAULT_MTU). The caller owns out->buf. Returns 0,
 * SL_EINVAL for an empty AU or a bad mtu, SL_ETOOBIG above 8191 bytes,
 * SL_ENOMEM.
 */
int sl_aac_packetize(const uint8_t *au, size_t len, size_t mtu, sl_rtp_payloads_t *out);

/**
 * G.711 (PCMU/PCMA) payloads of one frame: the samples split at mtu bytes,
 * no marker. Same contract as sl_aac_packetize, without the size limit.
 */
int sl_g711_packetize(const uint8_t *samples, size_t len, size_t mtu, sl_rtp_payloads_t *out);

/**
 * FLV bodies for sl_frame_new(SL_FLV_AUDIO, ...), each a new sl_buf_t the
 * caller owns (NULL on allocation failure or len 0 / over SL_RTP_MAX_FRAME):
 *   aac config: 0xAF 0x00 + AudioSpecificConfig;  aac frame: 0xAF 0x01 + AU;
 *   g711: 0x72 (A-law, format 7) or 0x82 (mu-law, format 8) + samples.
 */
sl_buf_t *sl_aac_flv_config_body(const uint8_t *asc, size_t len);
sl_buf_t *sl_aac_flv_frame_body(const uint8_t *au, size_t len);
sl_buf_t *sl_g711_flv_frame_body(int alaw, const uint8_t *samples, size_t len);

/**
 * Reads an AudioSpecificConfig's sampling rate and channel count (for the
 * RTP clock and the SDP rtpmap). Returns 0, or SL_EPROTO when it is
 * shorter than 2 bytes or names an escape rate index without the rate.
 */
int sl_aac_asc_info(const uint8_t *asc, size_t len, uint32_t *rate, int *channels);

#endif
