/*
 * The settings table of the RTSP protocol (see rtsp_config.h): keys, types,
 * defaults, bounds and docs, as the YAML, the environment and the generated
 * docs show them. Budgets before admission (request and SDP size, the time
 * to the first request) are tight; the UDP port range is the per-server
 * budget of RTP/RTCP sockets.
 */
#include "proto/rtsp/rtsp_config.h"

#include <stddef.h>

static const sl_config_slot_t g_slots[] = {
    {"enabled", SL_CONFIG_BOOL, offsetof(sl_rtsp_config_t, enabled), "true", 0, 0, NULL,
     "Accept RTSP clients (publish with ANNOUNCE/RECORD, play with DESCRIBE/PLAY).", SL_CONFIG_RESTART},
    {"bind", SL_CONFIG_STRING, offsetof(sl_rtsp_config_t, bind), "0.0.0.0", 1, 255, NULL,
     "Address to listen on: 0.0.0.0 for every IPv4 address, :: for IPv6.", SL_CONFIG_RESTART},
    {"port", SL_CONFIG_INT, offsetof(sl_rtsp_config_t, port), "8554", 1, 65535, NULL,
     "TCP port of RTSP (rtsp://host:8554/{app}/{stream}).", SL_CONFIG_RESTART},
    {"tls_port", SL_CONFIG_INT, offsetof(sl_rtsp_config_t, tls_port), "8322", 0, 65535, NULL,
     "TCP port of RTSPS (RTSP over TLS), open when a certificate is set (tls_cert/tls_key, "
     "else http's); 0 = no RTSPS.", SL_CONFIG_RESTART},
    {"tls_bind", SL_CONFIG_STRING, offsetof(sl_rtsp_config_t, tls_bind), "", 0, 255, NULL,
     "Address of the RTSPS listener; empty means the same as bind.", SL_CONFIG_RESTART},
    {"tls_cert", SL_CONFIG_STRING, offsetof(sl_rtsp_config_t, tls_cert), "", 0, 4095, NULL,
     "PEM certificate file (leaf first) for RTSPS; empty = http.tls_cert.", SL_CONFIG_RESTART},
    {"tls_key", SL_CONFIG_STRING, offsetof(sl_rtsp_config_t, tls_key), "", 0, 4095, NULL,
     "PEM private key file of tls_cert (set both or neither); empty = http.tls_key.", SL_CONFIG_RESTART},
    {"udp", SL_CONFIG_BOOL, offsetof(sl_rtsp_config_t, udp), "true", 0, 0, NULL,
     "Offer RTP over UDP (unicast, a server port pair per track from udp_port_min..udp_port_max); "
     "false = interleaved TCP only.", 0},
    {"udp_port_min", SL_CONFIG_INT, offsetof(sl_rtsp_config_t, udp_port_min), "16000", 1024, 65534, NULL,
     "First UDP port of the RTP/RTCP range (RTP on even ports, RTCP on the next).", SL_CONFIG_RESTART},
    {"udp_port_max", SL_CONFIG_INT, offsetof(sl_rtsp_config_t, udp_port_max), "16999", 1025, 65535, NULL,
     "Last UDP port of the RTP/RTCP range.", SL_CONFIG_RESTART},
    {"max_udp_pairs", SL_CONFIG_INT, offsetof(sl_rtsp_config_t, max_udp_pairs), "400", 1, 32768, NULL,
     "Whole server: RTP/RTCP port pairs open at once (one per UDP track); a SETUP past it gets "
     "453 Not Enough Bandwidth (TCP still works).", 0},
    {"max_request_size", SL_CONFIG_SIZE, offsetof(sl_rtsp_config_t, max_request_size), "8KB", 1 * SL_CONFIG_KB,
     64 * SL_CONFIG_KB, NULL, "Largest request line and headers; a larger request closes the connection.", 0},
    {"max_sdp_size", SL_CONFIG_SIZE, offsetof(sl_rtsp_config_t, max_sdp_size), "64KB", 1 * SL_CONFIG_KB,
     64 * SL_CONFIG_KB, NULL, "Largest request body (an ANNOUNCE's SDP); larger gets 413 and a close.", 0},
    {"max_interleaved_size", SL_CONFIG_SIZE, offsetof(sl_rtsp_config_t, max_interleaved_size), "65535", 1500,
     65535, NULL, "Largest $-framed (interleaved) RTP/RTCP packet accepted from a client.", 0},
    {"max_pending_bytes", SL_CONFIG_SIZE, offsetof(sl_rtsp_config_t, max_pending_bytes), "4MB", 64 * SL_CONFIG_KB,
     256 * SL_CONFIG_MB, NULL, "A TCP player's unsent output; past it frames are dropped up to the next "
     "keyframe (counted in frames_dropped).", 0},
    {"mtu", SL_CONFIG_INT, offsetof(sl_rtsp_config_t, mtu), "1400", 576, 8192, NULL,
     "RTP payload size of the packets sent to players.", 0},
    {"request_timeout", SL_CONFIG_DURATION, offsetof(sl_rtsp_config_t, request_timeout_ms), "10s", 100,
     5 * SL_CONFIG_MINUTE, NULL, "Time a new connection has to send its first complete request.", 0},
    {"session_timeout", SL_CONFIG_DURATION, offsetof(sl_rtsp_config_t, session_timeout_ms), "60s",
     1 * SL_CONFIG_SEC, 1 * SL_CONFIG_HOUR, NULL, "A session that sends nothing (request, keep-alive, "
     "RTP or RTCP) for this long is ended; announced in the Session header's timeout.", 0},
    {"realm", SL_CONFIG_STRING, offsetof(sl_rtsp_config_t, realm), "sluice", 1, 64, NULL,
     "Realm of the Basic and Digest challenges (WWW-Authenticate).", 0},
    {"digest_file", SL_CONFIG_STRING, offsetof(sl_rtsp_config_t, digest_file), "", 0, 4095, NULL,
     "Credentials in clear (`username password` per line, Simple Auth's format) for HTTP Digest "
     "(RFC 2617/7616 MD5): a client that answers a Digest challenge is checked here and its "
     "username and password then go to the admission chain. Empty = Basic only.", 0},
};

const sl_config_section_t sl_rtsp_config_section = {
    .name = "rtsp",
    .doc = "The RTSP server (rtsp://host:8554/{app}/{stream}): publish (ANNOUNCE/RECORD) and play "
           "(DESCRIBE/PLAY) over interleaved TCP or UDP, and RTSPS (rtsps://host:8322/...) when a "
           "certificate is configured.",
    .size = sizeof(sl_rtsp_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
};
