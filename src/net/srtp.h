/*
 * SRTP and SRTCP for WebRTC media, over libsrtp2. A session (sl_srtp_t)
 * holds two libsrtp sessions made from the keys a DTLS-SRTP handshake
 * exported (net/dtls.h): one that protects everything we send, keyed with
 * our key (any outbound SSRC), and one that checks and decrypts everything
 * the peer sends, keyed with the peer's (any inbound SSRC, with a replay
 * window). Two profiles, the ones sluice offers in use_srtp:
 * SRTP_AEAD_AES_128_GCM (preferred; 16-byte tag, no separate MAC) and
 * SRTP_AES128_CM_SHA1_80 (every browser; 10-byte HMAC tag).
 *
 * Packets are transformed in place: the caller's buffer must leave
 * SL_SRTP_MAX_TRAILER bytes of room after an outbound packet for the tag
 * (and for SRTCP the index word). No allocation happens per packet.
 *
 * Threading: libsrtp is initialised once per process (thread-safe, on the
 * first sl_srtp_new); one sl_srtp_t is used by one thread at a time, in
 * sluice the loop thread that owns the WebRTC session, or, once split
 * (sl_srtp_split_tx), its outbound half by the viewer's worker loop.
 */
#ifndef SL_NET_SRTP_H
#define SL_NET_SRTP_H

#include <stddef.h>
#include <stdint.h>

/* SRTP protection profiles, numbered as in the IANA DTLS-SRTP registry. */
#define SL_SRTP_AES128_CM_SHA1_80 0x0001
#define SL_SRTP_AEAD_AES_128_GCM 0x0007

/*
 * Room an outbound packet may grow by in protect / protect_rtcp: libsrtp's
 * own bound (its largest tag plus an MKI, which sluice never uses) plus the
 * 4-byte SRTCP index. A 16-byte GCM tag (+4 for RTCP) is what is really
 * written; the bound is what libsrtp asks for.
 */
#define SL_SRTP_MAX_TRAILER 148

/* The largest packet protect/unprotect accept (before the trailer). */
#define SL_SRTP_MAX_PACKET 8192

/*
 * Keys for one SRTP session as exported by DTLS-SRTP (RFC 5764 §4.2):
 * each key is the master key followed by the master salt, key_len bytes
 * in all (16 + 14 = 30 for AES128_CM_SHA1_80, 16 + 12 = 28 for
 * AEAD_AES_128_GCM). "local" protects what we send, "remote" checks what
 * the peer sends. Secret: never log it, and wipe copies when done.
 */
typedef struct sl_srtp_keys {
    int profile;              /* SL_SRTP_AES128_CM_SHA1_80 or SL_SRTP_AEAD_AES_128_GCM */
    uint8_t local_key[32 + 16];  /* our master key || master salt */
    uint8_t remote_key[32 + 16]; /* the peer's master key || master salt */
    size_t key_len;           /* bytes used in each of local_key and remote_key */
} sl_srtp_keys_t;

typedef struct sl_srtp sl_srtp_t;

/**
 * Makes a session from exported keys (borrowed for the call; copied into
 * libsrtp). Outbound: ssrc_any_outbound with the local key and
 * allow_repeat_tx, so that a packet resent for a NACK with its original
 * sequence number is protected again. Inbound: ssrc_any_inbound with the
 * remote key and a replay window of 1024 packets.
 * Returns 0 and *out (owned: sl_srtp_free); SL_EINVAL for an unknown
 * profile or a key_len that does not match it; SL_ENOMEM; SL_EIO when
 * libsrtp refuses (its initialisation failed).
 */
int sl_srtp_new(const sl_srtp_keys_t *keys, sl_srtp_t **out);

/**
 * Protects one RTP packet in place: pkt holds *len bytes of RTP (header
 * included) inside a buffer of cap bytes; on success *len is the SRTP
 * length (the tag appended). cap - *len must be at least
 * SL_SRTP_MAX_TRAILER. Returns 0; SL_ETOOBIG when the room is short or
 * the packet is larger than SL_SRTP_MAX_PACKET; SL_EINVAL when it is not
 * RTP (shorter than its header); SL_EPROTO when libsrtp refuses otherwise.
 * On error pkt and *len are unchanged or garbage: do not send the packet.
 * A repeated sequence number is accepted (NACK resends) and must carry
 * the same payload as the first time: the keystream repeats with it.
 */
int sl_srtp_protect(sl_srtp_t *s, uint8_t *pkt, size_t *len, size_t cap);

/**
 * Checks and decrypts one SRTP packet in place; on success *len is the RTP
 * length. Returns 0; SL_EPROTO when authentication fails, the packet is a
 * replay (a sequence number already seen or older than the window), or it
 * is malformed; SL_ETOOBIG past SL_SRTP_MAX_PACKET. Every error means:
 * drop the packet (count it; it is not worth a log line per packet).
 */
int sl_srtp_unprotect(sl_srtp_t *s, uint8_t *pkt, size_t *len);

/** As sl_srtp_protect, for one RTCP compound packet (SRTCP: tag and index appended). */
int sl_srtp_protect_rtcp(sl_srtp_t *s, uint8_t *pkt, size_t *len, size_t cap);

/** As sl_srtp_unprotect, for one SRTCP packet. */
int sl_srtp_unprotect_rtcp(sl_srtp_t *s, uint8_t *pkt, size_t *len);

/**
 * Splits the outbound half off s: *tx_out gets a new session that only
 * protects (sl_srtp_protect, sl_srtp_protect_rtcp) and s keeps only the
 * inbound half (unprotect); a call on the half a session no longer has
 * returns SL_ECLOSED. The two are separate libsrtp sessions sharing no
 * state, so each may then be used by a different thread (WebRTC: the
 * viewer's worker protects, the main loop unprotects its RTCP). Returns 0;
 * SL_ENOMEM; SL_EINVAL when s has no outbound half any more.
 */
int sl_srtp_split_tx(sl_srtp_t *s, sl_srtp_t **tx_out);

/** Bytes protect adds to an RTP packet (the tag: 10 or 16), for byte counters. */
size_t sl_srtp_rtp_overhead(const sl_srtp_t *s);

/** Frees a session and wipes its keys (NULL is ignored). */
void sl_srtp_free(sl_srtp_t *s);

#endif
