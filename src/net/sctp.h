/*
 * WebRTC data channels: SCTP over DTLS (RFC 8261) through libusrsctp, with
 * the Data Channel Establishment Protocol (DCEP, RFC 8832) and the message
 * rules of RFC 8831 (PPIDs 50/51/53/56/57, even/odd stream ids by DTLS
 * role, closing a channel by resetting its streams). This module only
 * speaks SCTP: the DTLS association below it belongs to the caller, who
 * hands it every decrypted SCTP packet (sl_sctp_feed) and receives every
 * packet to encrypt through ops->send. It sits in src/net (base and net
 * only) and knows nothing of sessions or streams.
 *
 * usrsctp runs without threads (usrsctp_init_nothreads): every callback
 * comes on the caller's thread, the loop, from inside one of the sl_sctp_*
 * calls below, and the caller drives usrsctp's timers with sl_sctp_tick
 * from a libuv timer (every 10-50 ms). usrsctp's state is process-wide, so
 * all of this is loop-thread only, for every association together.
 *
 * Re-entrancy. usrsctp must not be entered from inside itself: a packet
 * fed while usrsctp is running (ops->send of one association feeding
 * another, back to back, or a callback feeding) is copied to a bounded
 * process-wide queue and processed before the outermost sl_sctp_* call
 * returns. Incoming messages and notifications are read after usrsctp
 * returns, never from inside it, so callbacks may call sl_sctp_send,
 * sl_sctp_open_channel, sl_sctp_close_channel, sl_sctp_feed and
 * sl_sctp_free freely (only ops->send is called from inside usrsctp: from
 * there, sl_sctp_send / open / close return SL_EBUSY; feed and free work).
 *
 * Bounds. A message larger than max_message_size is refused on send
 * (SL_ETOOBIG) and dropped on receipt (logged; the rest of it is
 * discarded as it arrives, nothing is buffered past the cap). The send
 * buffer is bounded (SL_SCTP_SNDBUF or twice max_message_size, whichever
 * is larger): past it sl_sctp_send returns SL_EAGAIN. The receive window
 * is bounded by usrsctp (SL_SCTP_RCVBUF), and the cross-association packet
 * queue by SL_SCTP_QUEUE_MAX packets (dropped past it; SCTP retransmits).
 */
#ifndef SL_NET_SCTP_H
#define SL_NET_SCTP_H

#include <stddef.h>
#include <stdint.h>

/** Send buffer of an association in bytes (raised to 2 * max_message_size). */
#define SL_SCTP_SNDBUF (1024 * 1024)
/** Receive buffer (window) of an association in bytes. */
#define SL_SCTP_RCVBUF (1024 * 1024)
/** Largest max_message_size accepted by sl_sctp_new. */
#define SL_SCTP_MAX_MESSAGE_CAP (16 * 1024 * 1024)
/** Streams offered each way (stream ids 0 .. SL_SCTP_STREAMS - 1). */
#define SL_SCTP_STREAMS 1024
/** Packets held at most in the re-entrancy queue (all associations). */
#define SL_SCTP_QUEUE_MAX 4096
/** Largest SCTP packet accepted by sl_sctp_feed (one DTLS record). */
#define SL_SCTP_PACKET_MAX 65536

/* The PPIDs of RFC 8831 / 8832. */
#define SL_SCTP_PPID_DCEP 50
#define SL_SCTP_PPID_STRING 51
#define SL_SCTP_PPID_BINARY 53
#define SL_SCTP_PPID_STRING_EMPTY 56
#define SL_SCTP_PPID_BINARY_EMPTY 57

typedef struct sl_sctp sl_sctp_t;

/**
 * What the caller hands an association. Every callback gets the ud given to
 * sl_sctp_new and runs on the loop thread; pointers passed in are borrowed
 * for the call only. Only send is mandatory; the others may be NULL.
 */
typedef struct sl_sctp_ops {
    /** One SCTP packet to send through DTLS (called from inside usrsctp). */
    void (*send)(void *ud, const uint8_t *p, size_t len);
    /** The peer opened a channel (DCEP OPEN, already ACKed). label/protocol NUL-terminated. */
    void (*channel_open)(void *ud, uint16_t sid, const char *label, const char *protocol);
    /** One whole message (reassembled); len 0 for PPID 56/57. */
    void (*message)(void *ud, uint16_t sid, const uint8_t *p, size_t len, int is_text);
    /** The channel on sid is closed (its incoming stream was reset); sid may be reused after. */
    void (*channel_closed)(void *ud, uint16_t sid);
    /** The association is gone (ABORT, SHUTDOWN, lost, refused); called once, nothing follows. */
    void (*closed)(void *ud, const char *why);
    /** The association is up (channels opened before now have their OPEN sent now). */
    void (*connected)(void *ud);
    /** After sl_sctp_send returned SL_EAGAIN: the send buffer has room again. */
    void (*writable)(void *ud);
} sl_sctp_ops_t;

/**
 * Initialises usrsctp once per process (no threads; ECN off, bounded
 * chunk queue, 10 s heartbeat, 1200-byte path MTU, CRC32c computed and
 * checked by usrsctp, as aiortc and browsers expect). Idempotent.
 * Returns 0 (usrsctp's init reports no failure).
 */
int sl_sctp_global_init(void);

/**
 * Shuts usrsctp down. Call at exit, after every association is freed
 * (returns at once, logging, if one is still alive). Idempotent; a later
 * sl_sctp_global_init starts over.
 */
void sl_sctp_global_cleanup(void);

/**
 * Creates an association endpoint bound to local_port (a=sctp-port of our
 * SDP, 5000 by default) that will talk to remote_port (the peer's). is_client
 * is the DTLS role: the client uses even stream ids, the server odd ones.
 * max_message_size caps one message each way (1 .. SL_SCTP_MAX_MESSAGE_CAP).
 * ops is borrowed and must outlive the association; ud is passed back.
 * Nothing is sent until sl_sctp_connect (or until the first packet is
 * fed: a peer's INIT is met with ours, never with an ABORT, so calling
 * connect late is harmless). Not from ops->send. On success *out owns the
 * association (free with sl_sctp_free). Returns SL_EINVAL (bad argument,
 * global init missing), SL_ENOMEM or SL_EIO (usrsctp refused a socket).
 */
int sl_sctp_new(uint16_t local_port, uint16_t remote_port, size_t max_message_size,
                int is_client, const sl_sctp_ops_t *ops, void *ud, sl_sctp_t **out);

/**
 * Hands one SCTP packet from DTLS to the association (copied when usrsctp
 * is busy, otherwise processed at once). Callbacks may run before it
 * returns. Returns 0, SL_ETOOBIG (over SL_SCTP_PACKET_MAX), SL_EAGAIN (the
 * re-entrancy queue is full: the packet is dropped) or SL_ECLOSED.
 * A malformed packet is dropped by usrsctp and still returns 0.
 */
int sl_sctp_feed(sl_sctp_t *s, const uint8_t *p, size_t len);

/**
 * Starts the association (sends INIT). In WebRTC both sides call it; the
 * INIT collision is resolved by SCTP. Returns 0, SL_EBUSY (called from
 * ops->send), SL_ECLOSED or SL_EIO.
 */
int sl_sctp_connect(sl_sctp_t *s);

/**
 * Opens a channel from our side: picks the lowest free stream id of our
 * parity, sends DCEP OPEN (at once, or when the association comes up).
 * ordered 0 asks for an unordered reliable channel. label and protocol are
 * copied (each at most 65535 bytes). *sid_out gets the stream id. Messages
 * may be sent on it as soon as the OPEN is out (SL_EAGAIN before).
 * Returns 0, SL_EINVAL, SL_ETOOBIG (no free stream id), SL_ENOMEM,
 * SL_EBUSY, SL_ECLOSED, or SL_EAGAIN/SL_EIO when usrsctp refuses the OPEN.
 */
int sl_sctp_open_channel(sl_sctp_t *s, const char *label, const char *protocol, int ordered,
                         uint16_t *sid_out);

/**
 * Sends one message on an open channel: PPID 51 (text) or 53 (binary), or
 * 56/57 for an empty one. p is copied by usrsctp. Returns 0, SL_ENOTFOUND
 * (no open channel on sid), SL_ETOOBIG (over max_message_size), SL_EAGAIN
 * (the send buffer is full or the OPEN is not out yet: retry after
 * ops->writable / ops->connected), SL_EBUSY (from ops->send), SL_ECLOSED
 * or SL_EIO.
 */
int sl_sctp_send(sl_sctp_t *s, uint16_t sid, const uint8_t *p, size_t len, int is_text);

/**
 * Closes a channel: resets our outgoing stream (RFC 8831 §6.7). The peer
 * answers by resetting its own; ops->channel_closed then reports sid on
 * both sides. Returns 0, SL_ENOTFOUND, SL_EBUSY or SL_ECLOSED.
 */
int sl_sctp_close_channel(sl_sctp_t *s, uint16_t sid);

/** Bytes queued in usrsctp's send buffer (not yet acknowledged); 0 when unknown. */
size_t sl_sctp_buffered(const sl_sctp_t *s);

/**
 * Advances usrsctp's timers (retransmission, delayed SACK, heartbeat) of
 * every association by elapsed_ms. Call from one libuv timer every 10-50
 * ms with the real time elapsed since the previous call (uv_now
 * differences): usrsctp also reads the wall clock itself (RTT, and which
 * chunks a T3 timeout resends), so the two must agree. Callbacks may run.
 * Ignored when called from ops->send.
 */
void sl_sctp_tick(uint32_t elapsed_ms);

/**
 * Frees an association (NULL is ignored): aborts it (an ABORT may go out
 * through ops->send before this returns) and releases everything. Allowed
 * from inside any callback of any association, including its own: then
 * no callback of s runs any more and the memory is released before the
 * outermost sl_sctp_* call returns.
 */
void sl_sctp_free(sl_sctp_t *s);

#endif
