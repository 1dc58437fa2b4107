/*
 * RTMP Remote Shared Object messages (types 19, AMF0, and 16, the "flex"
 * form with one leading encoding byte): the parser and builder of their
 * bytes, the AMF <-> JSON mapping of values, and the glue that connects a
 * client to the service "sharedobjects" (app/svc/sharedobjects.h). Layout,
 * from Red5's RTMPProtocolDecoder.decodeSharedObject / RTMPProtocolEncoder.
 * doEncodeSharedObject:
 *
 *     [16 only: u8 encoding, 0 = AMF0]
 *     u16 name length, name (UTF-8)
 *     u32 version, u32 flags (2 = persistent), u32 reserved (0)
 *     events until the end: u8 type, u32 length, length bytes of body
 *
 * Bodies by event type (RED5-COMPAT.md §5):
 *     1 connect, 2 disconnect, 8 clear, 11 initial data: empty
 *     3 set (client), 4 update data (server): u16 key, AMF0 value
 *       (4 may hold several key/value pairs)
 *     5 update attribute (server: "success"), 9 delete data, 10 delete
 *       attribute (client): u16 key
 *     6 send message: AMF0 string (with its marker) handler, AMF0 arguments
 *     7 status: u16 code, u16 level
 * AMF0 values may switch to AMF3 with the 0x11 marker.
 */
#ifndef SL_PROTO_RTMP_SO_H
#define SL_PROTO_RTMP_SO_H

#include <stddef.h>
#include <stdint.h>

#include "app/svc/sharedobjects.h"
#include "base/buf.h"
#include "proto/rtmp/amf.h"

/* Event types on the wire. */
enum {
    SL_RTMP_SO_CONNECT = 1,
    SL_RTMP_SO_DISCONNECT = 2,
    SL_RTMP_SO_SET_ATTRIBUTE = 3,
    SL_RTMP_SO_UPDATE_DATA = 4,
    SL_RTMP_SO_UPDATE_ATTRIBUTE = 5,
    SL_RTMP_SO_SEND_MESSAGE = 6,
    SL_RTMP_SO_STATUS = 7,
    SL_RTMP_SO_CLEAR_DATA = 8,
    SL_RTMP_SO_DELETE_DATA = 9,
    SL_RTMP_SO_DELETE_ATTRIBUTE = 10,
    SL_RTMP_SO_INITIAL_DATA = 11,
};

/** Most events one message may carry (more: SL_ETOOBIG). */
#define SL_RTMP_SO_MAX_EVENTS 256
/** Most arguments of one send event, and pairs of one update-data event. */
#define SL_RTMP_SO_MAX_ARGS 64
/** AMF nesting allowed inside a value. */
#define SL_RTMP_SO_MAX_DEPTH 32

/** One event of a parsed message. */
typedef struct sl_rtmp_so_event {
    uint8_t type;      /* SL_RTMP_SO_* */
    char *key;         /* attribute, handler or status code (owned), or NULL */
    char *level;       /* status level (owned), or NULL */
    sl_amf_t *value;   /* set: the value; update data: an ECMA array of the pairs;
                          send: a strict array of the arguments (owned), or NULL */
} sl_rtmp_so_event_t;

/** A parsed message (sl_rtmp_so_msg_cleanup frees it). */
typedef struct sl_rtmp_so_msg {
    char name[SL_SO_NAME_MAX + 1];
    uint32_t version;
    int persistent;
    sl_rtmp_so_event_t *events; /* owned array */
    size_t n_events;
} sl_rtmp_so_msg_t;

/*
 * Parses one message body (p, n borrowed). flex: the body of a type 16
 * message (leading encoding byte, which must be 0). Returns 0 and fills
 * *out (caller cleans it up, also on error), SL_EPROTO (malformed: a length
 * past the end, a bad type, an encoding other than AMF0), SL_ETOOBIG (name
 * over SL_SO_NAME_MAX, key over SL_SO_KEY_MAX, too many events or
 * arguments), SL_EDEPTH, SL_ENOMEM. Never reads outside p[0..n).
 */
int sl_rtmp_so_parse(const uint8_t *p, size_t n, int flex, sl_rtmp_so_msg_t *out);
/** Frees what a parse allocated and zeroes *m (safe twice). */
void sl_rtmp_so_msg_cleanup(sl_rtmp_so_msg_t *m);

/*
 * Appends the body of one message to w: the header (flex: with the leading
 * 0 byte) then one event per change, as Red5 sends them (INITIAL -> 11,
 * CHANGE -> 4, SUCCESS -> 5, DELETE -> 9, CLEAR -> 8, SEND -> 6, STATUS ->
 * 7 with value as the level). Values are written as AMF0. Returns 0,
 * SL_ETOOBIG (w's cap), SL_EINVAL (a key over 65535 bytes), SL_ENOMEM.
 */
int sl_rtmp_so_build(sl_wbuf_t *w, int flex, const char *name, uint32_t version, int persistent,
                     const sl_so_change_t *changes, size_t n);

/*
 * Value mapping. sl_rtmp_so_to_json: numbers (integers when integral and
 * within 2^53), booleans, strings (must be UTF-8), objects and ECMA arrays
 * -> objects, strict arrays -> arrays, null/undefined -> null, dates -> ms,
 * XML -> string; a ByteArray or a non-UTF-8 string is SL_EINVAL. Returns a
 * new reference in *out. sl_rtmp_so_from_json: the reverse (objects become
 * anonymous AMF objects); NULL on ENOMEM. Both borrow their input.
 */
int sl_rtmp_so_to_json(const sl_amf_t *v, json_t **out);
sl_amf_t *sl_rtmp_so_from_json(const json_t *v);

/*
 * The connection's side (rtmp_conn.c calls these; the rest of the RTMP
 * code does not know about shared objects).
 */
struct sl_rtmp_conn;
/*
 * Handles a type 19 (flex 0) or 16 (flex 1) message body of a connected
 * client: connect/disconnect, set/delete attributes and send messages as
 * one update, through the service "sharedobjects". Errors of the service
 * and malformed messages go back to the client as an SO status event (Red5's
 * codes) and the connection stays up. Returns 0, or <0 to close (only when
 * queueing the answer failed).
 */
int sl__rtmp_on_so(struct sl_rtmp_conn *c, const uint8_t *p, size_t n, int flex);
/** The connection is closing: leaves every object it joined. */
void sl__rtmp_so_closed(struct sl_rtmp_conn *c);

#endif
