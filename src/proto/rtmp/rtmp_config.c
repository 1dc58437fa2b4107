/*
 * The settings table of the RTMP protocol (see rtmp_config.h): keys, types, defaults,
 * bounds and docs, exactly as the YAML, the environment and the generated
 * docs show them.
 */
#include "proto/rtmp/rtmp_config.h"

#include <stddef.h>

static const char *const write_mode_names[] = {"writev", "io_uring", NULL};

static const sl_config_slot_t g_slots[] = {
    {"enabled", SL_CONFIG_BOOL, offsetof(sl_rtmp_config_t, enabled), "true", 0, 0, NULL,
     "Accept RTMP connections.", SL_CONFIG_RESTART},
    {"bind", SL_CONFIG_STRING, offsetof(sl_rtmp_config_t, bind), "0.0.0.0", 1, 255, NULL,
     "Address to listen on: 0.0.0.0 for every IPv4 address, :: for IPv6.", SL_CONFIG_RESTART},
    {"port", SL_CONFIG_INT, offsetof(sl_rtmp_config_t, port), "1935", 1, 65535, NULL,
     "TCP port to listen on.", SL_CONFIG_RESTART},
    {"chunk_size", SL_CONFIG_INT, offsetof(sl_rtmp_config_t, chunk_size), "4096", 128, 65536, NULL,
     "Outgoing chunk size announced to peers: larger means fewer chunk headers.", 0},
    {"max_chunk_size", SL_CONFIG_INT, offsetof(sl_rtmp_config_t, max_chunk_size), "65536", 128, 16777215, NULL,
     "Largest incoming chunk size a peer may set; a larger Set Chunk Size closes the connection.", 0},
    {"max_message_size", SL_CONFIG_SIZE, offsetof(sl_rtmp_config_t, max_message_size), "8MB", 1 * SL_CONFIG_KB, 64 * SL_CONFIG_MB, NULL,
     "Largest incoming message (e.g. one video frame); a larger one closes the connection.", 0},
    {"max_partial_bytes", SL_CONFIG_SIZE, offsetof(sl_rtmp_config_t, max_partial_bytes), "24MB", 64 * SL_CONFIG_KB, 1 * SL_CONFIG_GB,
     NULL, "Per connection after connect: bytes of half-received messages held over all chunk "
     "streams (never less than max_message_size); more closes the connection.", 0},
    {"max_partial_bytes_before_connect", SL_CONFIG_SIZE, offsetof(sl_rtmp_config_t, max_partial_bytes_before_connect), "64KB", 4 * SL_CONFIG_KB, 64 * SL_CONFIG_MB, NULL, "Per connection until connect is admitted: bytes of "
     "half-received messages held; more closes the connection.", 0},
    {"max_partial_messages", SL_CONFIG_INT, offsetof(sl_rtmp_config_t, max_partial_messages), "16", 1, 64, NULL,
     "Per connection: chunk streams with a message half received at once; more closes it.", 0},
    {"max_partial_bytes_total", SL_CONFIG_SIZE, offsetof(sl_rtmp_config_t, max_partial_bytes_total), "256MB",
     1 * SL_CONFIG_MB, 64 * SL_CONFIG_GB, NULL, "Whole server: bytes of half-received RTMP messages over all "
     "connections; a connection that would go over is closed (logged at warn).", 0},
    {"max_control_bytes_before_connect", SL_CONFIG_SIZE, offsetof(sl_rtmp_config_t, max_control_bytes_before_connect), "64KB", 4 * SL_CONFIG_KB, 4 * SL_CONFIG_MB, NULL, "Per connection until connect is admitted: bytes of replies "
     "(pings, acknowledgements) queued for a peer that does not read; more closes it.", 0},
    {"handshake_timeout", SL_CONFIG_DURATION, offsetof(sl_rtmp_config_t, handshake_timeout_ms), "5s", 100,
     5 * SL_CONFIG_MINUTE, NULL, "Time a client has to complete the RTMP handshake.", 0},
    {"connect_timeout", SL_CONFIG_DURATION, offsetof(sl_rtmp_config_t, connect_timeout_ms), "10s", 100, 5 * SL_CONFIG_MINUTE,
     NULL, "Time a client has, from accept, to send its connect command after the handshake.", 0},
    {"idle_timeout", SL_CONFIG_DURATION, offsetof(sl_rtmp_config_t, idle_timeout_ms), "60s", 1 * SL_CONFIG_SEC, 24 * SL_CONFIG_HOUR,
     NULL, "Close a connection that has sent nothing for this long.", 0},
    {"amf_max_depth", SL_CONFIG_INT, offsetof(sl_rtmp_config_t, amf_max_depth), "32", 1, 1000, NULL,
     "Deepest AMF object/array nesting accepted in commands and metadata.", 0},
    {"window_ack_size", SL_CONFIG_SIZE, offsetof(sl_rtmp_config_t, window_ack_size), "2500000", 1 * SL_CONFIG_KB,
     1 * SL_CONFIG_GB, NULL, "Acknowledgement window announced to peers, in bytes.", 0},
    {"ping_interval", SL_CONFIG_DURATION, offsetof(sl_rtmp_config_t, ping_interval_ms), "30s", 0, 1 * SL_CONFIG_HOUR, NULL,
     "Send a ping request this often to detect dead peers; 0 = never.", 0},
    {"tcp_nodelay", SL_CONFIG_BOOL, offsetof(sl_rtmp_config_t, tcp_nodelay), "true", 0, 0, NULL,
     "Disable Nagle's algorithm on RTMP sockets (lower latency, more packets).", 0},
    {"write_mode", SL_CONFIG_ENUM, offsetof(sl_rtmp_config_t, write_mode), "io_uring", 0, 0, write_mode_names,
     "How players' bytes reach the kernel: io_uring (each loop's flush hands its players' writes "
     "to the kernel in one io_uring submission; falls back to writev, with one warning, where "
     "io_uring is unavailable, e.g. under a container's seccomp filter) or writev (one gathered "
     "write per player per flush). io_uring halves the CPU per delivered Gbit on a machine where "
     "system calls are dear; see docs/performance.md, \"Fewer, cheaper writes\".", SL_CONFIG_RESTART},
    {"zerocopy_min_bytes", SL_CONFIG_SIZE, offsetof(sl_rtmp_config_t, zerocopy_min_bytes), "0", 0, 64 * SL_CONFIG_MB, NULL,
     "Send a player's write with MSG_ZEROCOPY when it carries at least this many bytes (writev mode, "
     "plain RTMP); 0 = never. Loopback and most virtual NICs copy anyway.", SL_CONFIG_RESTART},
    {"notsent_lowat", SL_CONFIG_SIZE, offsetof(sl_rtmp_config_t, notsent_lowat), "0", 0, 64 * SL_CONFIG_MB, NULL,
     "TCP_NOTSENT_LOWAT on players' sockets (bytes of unsent data above which the socket reports "
     "full); 0 = the kernel's default (unset).", SL_CONFIG_RESTART},
    {"write_cork", SL_CONFIG_BOOL, offsetof(sl_rtmp_config_t, write_cork), "false", 0, 0, NULL,
     "Cork (TCP_CORK) a player's socket around each flush (writev mode) so a burst leaves in full segments.", SL_CONFIG_RESTART},
    {"tls_port", SL_CONFIG_INT, offsetof(sl_rtmp_config_t, tls_port), "1936", 0, 65535, NULL,
     "TCP port of the RTMPS listener (RTMP over TLS 1.2/1.3), open when a certificate is set "
     "(tls_cert/tls_key, else http's); 0 = no RTMPS.", SL_CONFIG_RESTART},
    {"tls_bind", SL_CONFIG_STRING, offsetof(sl_rtmp_config_t, tls_bind), "", 0, 255, NULL,
     "Address of the RTMPS listener; empty means the same as bind.", SL_CONFIG_RESTART},
    {"tls_cert", SL_CONFIG_STRING, offsetof(sl_rtmp_config_t, tls_cert), "", 0, 4095, NULL,
     "PEM certificate file (leaf first, then intermediates) for RTMPS; empty = http.tls_cert.", SL_CONFIG_RESTART},
    {"tls_key", SL_CONFIG_STRING, offsetof(sl_rtmp_config_t, tls_key), "", 0, 4095, NULL,
     "PEM private key file of tls_cert (set both or neither); empty = http.tls_key.", SL_CONFIG_RESTART},
};

const sl_config_section_t sl_rtmp_config_section = {
    .name = "rtmp",
    .doc = "The RTMP listener (rtmp://host:1935/{app}/{stream}), and RTMPS "
             "(rtmps://host:1936/{app}/{stream}) when a certificate is configured.",
    .size = sizeof(sl_rtmp_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
};
