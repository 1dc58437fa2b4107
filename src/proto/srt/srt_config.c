/*
 * The settings tables of SRT (`srt`) and MPEG-TS over UDP (`mpegts`): see
 * srt_config.h. The YAML, the environment and the generated docs show
 * exactly these keys.
 */
#include "proto/srt/srt_config.h"

#include <stddef.h>

#define O(f) offsetof(sl_srt_config_t, f)

static const sl_config_slot_t g_slots[] = {
    {"enabled", SL_CONFIG_BOOL, O(enabled), "true", 0, 0, NULL,
     "Accept SRT callers: srt://host:8890?streamid=publish:{app}/{stream} or read:{app}/{stream}.",
     SL_CONFIG_RESTART},
    {"bind", SL_CONFIG_STRING, O(bind), "0.0.0.0", 1, 255, NULL,
     "Address the SRT listener binds (UDP).", SL_CONFIG_RESTART},
    {"port", SL_CONFIG_INT, O(port), "8890", 1, 65535, NULL, "UDP port of the SRT listener.",
     SL_CONFIG_RESTART},
    {"latency", SL_CONFIG_DURATION, O(latency_ms), "120ms", 20, 10 * SL_CONFIG_SEC, NULL,
     "SRT latency (SRTO_LATENCY): how long lost packets may be retransmitted; the larger of "
     "this and the caller's wins.", 0},
    {"passphrase", SL_CONFIG_STRING, O(passphrase), "", 0, 79, NULL,
     "Encryption passphrase (10-79 characters) every caller must use; empty = none. An app's "
     "srt_passphrase overrides it. Never logged.", 0},
    {"pbkeylen", SL_CONFIG_INT, O(pbkeylen), "0", 0, 32, NULL,
     "AES key length in bytes with a passphrase: 16, 24 or 32; 0 = the caller's choice (16).", 0},
    {"payload_size", SL_CONFIG_INT, O(payload_size), "1316", 188, 1456, NULL,
     "Bytes of MPEG-TS per SRT message sent to readers (a multiple of 188; 1316 = 7 packets).", 0},
    {"max_connections", SL_CONFIG_INT, O(max_connections), "1000", 1, 100000, NULL,
     "SRT connections open at once, whole server; more are rejected in the handshake (1402).", 0},
    {"max_connections_per_address", SL_CONFIG_INT, O(max_connections_per_address), "50", 1, 100000,
     NULL, "SRT connections open at once from one address; more are rejected in the handshake (1402).", 0},
    {"max_streamid_bytes", SL_CONFIG_INT, O(max_streamid_bytes), "512", 16, 512, NULL,
     "Longest streamid accepted; longer ones are rejected in the handshake (1400).", 0},
    {"handshake_timeout", SL_CONFIG_DURATION, O(handshake_timeout_ms), "3s", 100, 60 * SL_CONFIG_SEC,
     NULL, "Time an accepted connection has to finish SRT's handshake (SRTO_CONNTIMEO).", 0},
    {"admission_timeout", SL_CONFIG_DURATION, O(admission_timeout_ms), "10s", 100, 5 * SL_CONFIG_MINUTE,
     NULL, "Time from accept to an answer of the admission chain (e.g. a round-trip check); "
     "then the connection is closed.", 0},
    {"idle_timeout", SL_CONFIG_DURATION, O(idle_timeout_ms), "10s", 1 * SL_CONFIG_SEC, 1 * SL_CONFIG_HOUR,
     NULL, "A publisher that sends no data for this long is closed.", 0},
    {"max_frame_size", SL_CONFIG_SIZE, O(max_frame_size), "8MB", 64 * SL_CONFIG_KB, 64 * SL_CONFIG_MB,
     NULL, "Largest demuxed frame (one access unit); larger ones are dropped and counted.", 0},
    {"max_queue_bytes", SL_CONFIG_SIZE, O(max_queue_bytes), "16MB", 1 * SL_CONFIG_MB, 1 * SL_CONFIG_GB,
     NULL, "Per publisher: demuxed bytes waiting for the loop; beyond it frames are dropped "
     "(counted) until a keyframe.", 0},
};

static const sl_config_slot_t g_app_slots[] = {
    {"srt", SL_CONFIG_BOOL, offsetof(sl_srt_app_config_t, srt), "true", 0, 0, NULL,
     "Accept SRT publish and read for this app.", 0},
    {"srt_passphrase", SL_CONFIG_STRING, offsetof(sl_srt_app_config_t, passphrase), "", 0, 79, NULL,
     "SRT encryption passphrase for this app (10-79 characters); empty = srt.passphrase.", 0},
};

const sl_config_section_t sl_srt_config_section = {
    .name = "srt",
    .doc = "SRT (Secure Reliable Transport) on UDP: MPEG-TS publish and read, selected by the "
           "caller's streamid (publish:{app}/{stream}, read:{app}/{stream}, or "
           "#!::r={app}/{stream},m=publish|request,u=,s=,t=), with encryption and statistics.",
    .size = sizeof(sl_srt_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
    .app_size = sizeof(sl_srt_app_config_t),
    .app_slots = g_app_slots,
    .n_app_slots = sizeof g_app_slots / sizeof g_app_slots[0],
};

#undef O
#define O(f) offsetof(sl_mpegts_config_t, f)

static const sl_config_slot_t g_ts_slots[] = {
    {"udp", SL_CONFIG_STRING, O(udp), "", 0, 4095, NULL,
     "MPEG-TS over plain UDP ingest (Red5's mpegts ingest): '[addr:]port=app/stream' comma list, "
     "e.g. '9000=live/cam1'. No authentication exists in this protocol: bind it to a trusted "
     "network only.", SL_CONFIG_RESTART},
    {"bind", SL_CONFIG_STRING, O(bind), "127.0.0.1", 1, 255, NULL,
     "Address of the udp entries that name none (loopback by default: see udp).", SL_CONFIG_RESTART},
    {"max_frame_size", SL_CONFIG_SIZE, O(max_frame_size), "8MB", 64 * SL_CONFIG_KB, 64 * SL_CONFIG_MB,
     NULL, "Largest demuxed frame; larger ones are dropped and counted.", 0},
    {"max_queue_bytes", SL_CONFIG_SIZE, O(max_queue_bytes), "16MB", 1 * SL_CONFIG_MB, 1 * SL_CONFIG_GB,
     NULL, "Per listener: demuxed bytes waiting for the loop; beyond it frames are dropped.", 0},
    {"idle_timeout", SL_CONFIG_DURATION, O(idle_timeout_ms), "5s", 500, 1 * SL_CONFIG_HOUR, NULL,
     "No datagram for this long ends the publish (it starts again with the next datagram).", 0},
};

const sl_config_section_t sl_mpegts_config_section = {
    .name = "mpegts",
    .doc = "MPEG-TS over plain UDP ingest: each listed UDP port publishes what it receives to "
           "one app/stream. For trusted networks only (no authentication).",
    .size = sizeof(sl_mpegts_config_t),
    .slots = g_ts_slots,
    .n_slots = sizeof g_ts_slots / sizeof g_ts_slots[0],
};
