/*
 * STUN for sluice's WebRTC ICE-lite agent: the message codec (RFC 5389 /
 * RFC 8489 wire format with the ICE attributes of RFC 8445), short-term
 * credential MESSAGE-INTEGRITY and FINGERPRINT, the RFC 7983 demultiplexer
 * that tells STUN, DTLS, RTP and RTCP apart on the shared media port, the
 * RFC 6544 framer for ICE-TCP streams, and ICE credential and priority
 * helpers. It sits in src/proto/webrtc below the ICE-lite agent: pure
 * functions over bytes, no sockets, no loop, no logging, so everything here
 * is unit-tested against the RFC 5769 vectors and fuzzed
 * (tests/fuzz/stun_fuzz.c). Every function is reentrant and may be called
 * from any thread; only the framer holds state, owned by its caller.
 *
 * Caps: a STUN message is at most SL_STUN_MAX_MSG (1500) bytes and carries
 * at most SL_STUN_MAX_ATTRS (64) attributes; longer input is refused, never
 * read past. The parser borrows: pointers in sl_stun_msg_t point into the
 * packet and stay valid as long as the packet does.
 */
#ifndef SL_PROTO_WEBRTC_STUN_H
#define SL_PROTO_WEBRTC_STUN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define SL_STUN_MAX_MSG 1500          /* bytes, header included */
#define SL_STUN_MAX_ATTRS 64          /* attributes per message */
#define SL_STUN_HEADER_LEN 20
#define SL_STUN_MAGIC_COOKIE 0x2112A442u
#define SL_STUN_MAX_USERNAME 513      /* RFC 5389 15.3: < 513 bytes */
#define SL_STUN_MAX_REASON 127        /* characters of an ERROR-CODE reason we write */
#define SL_STUN_MAX_UNKNOWN 8         /* unknown attribute types kept / answered */

/* Message types (method | class). */
#define SL_STUN_METHOD_BINDING 0x0001
#define SL_STUN_BINDING_REQUEST 0x0001
#define SL_STUN_BINDING_INDICATION 0x0011
#define SL_STUN_BINDING_SUCCESS 0x0101
#define SL_STUN_BINDING_ERROR 0x0111
#define SL_STUN_CLASS_MASK 0x0110     /* the two class bits of a type */
#define SL_STUN_CLASS_REQUEST 0x0000
#define SL_STUN_CLASS_INDICATION 0x0010
#define SL_STUN_CLASS_SUCCESS 0x0100
#define SL_STUN_CLASS_ERROR 0x0110

/* Attribute types this codec knows. */
#define SL_STUN_ATTR_MAPPED_ADDRESS 0x0001
#define SL_STUN_ATTR_USERNAME 0x0006
#define SL_STUN_ATTR_MESSAGE_INTEGRITY 0x0008
#define SL_STUN_ATTR_ERROR_CODE 0x0009
#define SL_STUN_ATTR_UNKNOWN_ATTRIBUTES 0x000A
#define SL_STUN_ATTR_REALM 0x0014
#define SL_STUN_ATTR_NONCE 0x0015
#define SL_STUN_ATTR_XOR_MAPPED_ADDRESS 0x0020
#define SL_STUN_ATTR_PRIORITY 0x0024
#define SL_STUN_ATTR_USE_CANDIDATE 0x0025
#define SL_STUN_ATTR_SOFTWARE 0x8022
#define SL_STUN_ATTR_FINGERPRINT 0x8028
#define SL_STUN_ATTR_ICE_CONTROLLED 0x8029
#define SL_STUN_ATTR_ICE_CONTROLLING 0x802A

/* Error codes the ICE-lite agent answers with. */
#define SL_STUN_ERR_BAD_REQUEST 400
#define SL_STUN_ERR_UNAUTHORIZED 401
#define SL_STUN_ERR_UNKNOWN_ATTRIBUTE 420
#define SL_STUN_ERR_ROLE_CONFLICT 487

/* RFC 7983 demux of the first byte of a datagram on the shared WebRTC port. */
typedef enum {
    SL_PKT_UNKNOWN = 0, /* empty, ZRTP, TURN channel or anything unassigned */
    SL_PKT_STUN,        /* first byte 0..3 */
    SL_PKT_DTLS,        /* first byte 20..63 */
    SL_PKT_RTP,         /* first byte 128..191, second byte outside 192..223 */
    SL_PKT_RTCP,        /* first byte 128..191, second byte 192..223 (RFC 5761) */
} sl_pkt_kind_t;

/**
 * Classifies a datagram (or an ICE-TCP frame) by its first byte per
 * RFC 7983, and RTP against RTCP by the second byte per RFC 5761 (RTCP
 * packet types 192..223). Needs 1 byte for STUN/DTLS and 2 for RTP/RTCP;
 * shorter input is SL_PKT_UNKNOWN. Only demultiplexes: the packet still
 * has to be parsed by its protocol.
 */
sl_pkt_kind_t sl_webrtc_classify(const uint8_t *p, size_t len);

/* One parsed STUN message. Pointers borrow from the packet. */
typedef struct sl_stun_msg {
    uint16_t type;                 /* method | class, e.g. SL_STUN_BINDING_REQUEST */
    uint8_t tid[12];               /* transaction id */
    const uint8_t *username;       /* USERNAME value (not NUL-terminated), or NULL */
    size_t username_len;           /* its length in bytes (<= SL_STUN_MAX_USERNAME) */
    uint32_t priority;             /* PRIORITY value when has_priority */
    int has_priority;              /* PRIORITY present */
    int use_candidate;             /* USE-CANDIDATE present */
    int ice_controlling;           /* ICE-CONTROLLING present (tiebreaker set) */
    int ice_controlled;            /* ICE-CONTROLLED present (tiebreaker set) */
    uint64_t tiebreaker;           /* from ICE-CONTROLLING or ICE-CONTROLLED */
    int has_integrity;             /* MESSAGE-INTEGRITY present */
    size_t integrity_off;          /* offset of the MESSAGE-INTEGRITY attribute header */
    int has_fingerprint;           /* FINGERPRINT present (always the last attribute) */
    size_t fingerprint_off;        /* offset of the FINGERPRINT attribute header */
    int error_code;                /* ERROR-CODE: 0 or 300..699 */
    int has_mapped;                /* XOR-MAPPED-ADDRESS present and decoded */
    struct sockaddr_storage mapped;/* sockaddr_in or sockaddr_in6, port and address de-XORed */
    uint16_t unknown_required[SL_STUN_MAX_UNKNOWN]; /* comprehension-required types we don't know */
    int n_unknown_required;        /* how many are in unknown_required (the rest are dropped) */
} sl_stun_msg_t;

/**
 * Parses one STUN message that fills exactly p[0..len) (a UDP datagram or
 * one ICE-TCP frame). Checks the header (top two bits zero, magic cookie,
 * length a multiple of 4 and equal to len - 20, len <= SL_STUN_MAX_MSG),
 * that every attribute lies inside the message, at most SL_STUN_MAX_ATTRS
 * attributes, the sizes of known attributes, and the order rules: nothing
 * but FINGERPRINT may follow MESSAGE-INTEGRITY, and nothing may follow
 * FINGERPRINT. Unknown comprehension-optional attributes (>= 0x8000) are
 * skipped; unknown comprehension-required ones are listed in
 * unknown_required (the caller answers a request with 420).
 * Integrity and fingerprint are not verified here: call the two check
 * functions. Returns 0 and fills m, or SL_EPROTO (m then holds garbage).
 * m borrows from p.
 */
int sl_stun_parse(const uint8_t *p, size_t len, sl_stun_msg_t *m);

/**
 * Verifies MESSAGE-INTEGRITY of a message parsed by sl_stun_parse from the
 * same bytes, with a short-term credential: key is the ICE password as
 * bytes (no SASLprep, no NUL). HMAC-SHA1 over the message up to the
 * attribute, with the header length adjusted as RFC 5389 15.4 says;
 * compared in constant time. Returns 0, or SL_EDENIED when the attribute
 * is missing or does not match.
 */
int sl_stun_check_integrity(const uint8_t *p, size_t len, const sl_stun_msg_t *m,
                            const uint8_t *key, size_t key_len);

/**
 * Verifies FINGERPRINT (CRC-32 of the message up to the attribute, XORed
 * with 0x5354554e) of a message parsed by sl_stun_parse from the same
 * bytes. Returns 0, or SL_EPROTO when it is missing or wrong.
 */
int sl_stun_check_fingerprint(const uint8_t *p, size_t len, const sl_stun_msg_t *m);

/*
 * Builders write one complete message into out (cap bytes) and return its
 * length, SL_ETOOBIG when cap is too small (out then holds garbage), or
 * SL_EINVAL on a bad argument. Every built message ends with FINGERPRINT;
 * MESSAGE-INTEGRITY is added before it when key is not NULL (key = the
 * ICE password of the agent whose credential is used: for a response the
 * local password, for a request the remote one). They allocate nothing.
 */

/**
 * Binding success response to the request with transaction id tid:
 * XOR-MAPPED-ADDRESS of mapped (AF_INET or AF_INET6, else SL_EINVAL),
 * MESSAGE-INTEGRITY with key (when not NULL), FINGERPRINT. At most 76 bytes.
 */
int sl_stun_build_binding_success(uint8_t *out, size_t cap, const uint8_t tid[12],
                                  const struct sockaddr *mapped, const uint8_t *key,
                                  size_t key_len);

/**
 * Error response of method (e.g. SL_STUN_METHOD_BINDING) with ERROR-CODE
 * code (300..699) and reason (NULL: the standard phrase of 400, 401, 420,
 * 487; cut at SL_STUN_MAX_REASON bytes), MESSAGE-INTEGRITY when key is not
 * NULL (RFC 5389 10.1.2: not for 400 and 401), FINGERPRINT. Code 420 needs
 * the list of unknown attributes: use sl_stun_build_error_unknown, this
 * one returns SL_EINVAL for it.
 */
int sl_stun_build_error(uint8_t *out, size_t cap, uint16_t method, const uint8_t tid[12],
                        int code, const char *reason, const uint8_t *key, size_t key_len);

/**
 * 420 Unknown Attribute error response listing the n (1..SL_STUN_MAX_UNKNOWN)
 * attribute types in UNKNOWN-ATTRIBUTES, typically a request's
 * m->unknown_required / m->n_unknown_required. Otherwise as
 * sl_stun_build_error.
 */
int sl_stun_build_error_unknown(uint8_t *out, size_t cap, uint16_t method, const uint8_t tid[12],
                                const uint16_t *types, int n, const uint8_t *key,
                                size_t key_len);

/**
 * Binding request as an ICE agent sends it (for tests and the bench
 * client): USERNAME username (NUL-terminated, "remote:local" ufrags, at
 * most SL_STUN_MAX_USERNAME bytes), PRIORITY, USE-CANDIDATE when
 * use_candidate, ICE-CONTROLLING (controlling != 0) or ICE-CONTROLLED with
 * tiebreaker, MESSAGE-INTEGRITY with key (the remote password) when not
 * NULL, FINGERPRINT. username NULL omits USERNAME (a consent-less probe).
 */
int sl_stun_build_binding_request(uint8_t *out, size_t cap, const uint8_t tid[12],
                                  const char *username, uint32_t priority, int use_candidate,
                                  int controlling, uint64_t tiebreaker, const uint8_t *key,
                                  size_t key_len);

/**
 * Splits an ICE USERNAME "local:remote" (as received by us: our ufrag
 * first, RFC 8445 7.2.2) at its first ':'. Sets *local / *local_len to the
 * part before it (borrowed from u); the remote ufrag is
 * u[*local_len + 1 .. len). Returns 0, or SL_EPROTO when there is no ':'
 * or either part is empty.
 */
int sl_stun_username_split(const uint8_t *u, size_t len, const uint8_t **local, size_t *local_len);

/**
 * Makes fresh ICE credentials from RAND_bytes: an 8-character ufrag (48
 * bits) and a 24-character password (144 bits) from the ice-char set
 * (ALPHA / DIGIT / "+" / "/"), NUL-terminated. Returns 0, or SL_EIO when
 * the random generator fails (the buffers are then zeroed).
 */
int sl_ice_credentials(char ufrag[9], char pwd[25]);

/**
 * Candidate priority per RFC 8445 5.1.2.1:
 * 2^24 * type_pref + 2^8 * local_pref + (256 - component).
 * type_pref 0..126 (126 host), local_pref 0..65535, component 1..256;
 * out-of-range arguments are clamped.
 */
uint32_t sl_ice_priority(int type_pref, int local_pref, int component);

/* RFC 6544 (RFC 4571) framing for ICE-TCP: a 16-bit big-endian length
 * before each STUN/DTLS/RTP/RTCP packet. */
typedef struct sl_ice_tcp_framer {
    uint8_t *buf;      /* partial frame (length prefix included); sl_malloc'd lazily */
    size_t len;        /* bytes in buf */
    size_t cap;        /* size of buf: max_packet + 2 once allocated, else 0 */
    size_t max_packet; /* largest packet accepted (<= 65535) */
    int err;           /* sticky error once the stream is broken, else 0 */
} sl_ice_tcp_framer_t;

/**
 * Initialises f for packets of at most max_packet bytes (clamped to
 * 1..65535; 1500 + a little is right for WebRTC). Allocates nothing.
 */
void sl_ice_tcp_framer_init(sl_ice_tcp_framer_t *f, size_t max_packet);

/**
 * Appends stream bytes p[0..len) and calls cb(ud, pkt, pkt_len) for each
 * complete packet, in order. pkt borrows either from p or from f's buffer
 * and is valid only during the call; cb must not feed or clean up f.
 * Zero-length frames are skipped. At most max_packet + 2 bytes are held
 * between calls, and only when a frame is split across calls.
 * Returns 0; SL_ETOOBIG when the peer announces a packet longer than
 * max_packet (packets before it were delivered; the caller closes the
 * connection); SL_ENOMEM when the buffer cannot be allocated. An error is
 * sticky: later calls return it without reading.
 */
int sl_ice_tcp_framer_feed(sl_ice_tcp_framer_t *f, const uint8_t *p, size_t len,
                           void (*cb)(void *ud, const uint8_t *pkt, size_t len), void *ud);

/** Frees f's buffer; f may be initialised again. */
void sl_ice_tcp_framer_cleanup(sl_ice_tcp_framer_t *f);

#endif
