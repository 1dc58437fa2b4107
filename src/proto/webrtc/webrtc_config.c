/*
 * The settings table of the WebRTC protocol (see webrtc_config.h): keys,
 * types, defaults, bounds and docs, exactly as the YAML, the environment
 * and the generated docs show them.
 */
#include "proto/webrtc/webrtc_config.h"

#include <stddef.h>

#define O(f) offsetof(sl_webrtc_config_t, f)

static const char *const bframes_names[] = {"drop", "send", NULL};

static const sl_config_slot_t g_slots[] = {
    {"enabled", SL_CONFIG_BOOL, O(enabled), "true", 0, 0, NULL,
     "Serve WebRTC: WHIP publish and WHEP play at /{app}/whip|whep/endpoint/{stream}.",
     SL_CONFIG_RESTART},
    {"bind", SL_CONFIG_STRING, O(bind), "0.0.0.0", 1, 255, NULL,
     "Address the media socket binds (UDP, and TCP for ICE-TCP).", SL_CONFIG_RESTART},
    {"port", SL_CONFIG_INT, O(port), "8000", 1, 65535, NULL,
     "The one UDP port every WebRTC session uses (ICE-lite, demultiplexed by ICE username and "
     "address); ICE-TCP listens on the same TCP port.", SL_CONFIG_RESTART},
    {"tcp", SL_CONFIG_BOOL, O(tcp), "true", 0, 0, NULL,
     "Also offer ICE-TCP candidates (RFC 6544) on `port`, for networks that block UDP.",
     SL_CONFIG_RESTART},
    {"candidates", SL_CONFIG_STRING, O(candidates), "", 0, 1023, NULL,
     "Addresses announced to clients as ICE candidates, comma-separated (e.g. the public IP); "
     "empty = every address of the machine's interfaces (loopback last).", 0},
    {"nat_1to1", SL_CONFIG_STRING, O(nat_1to1), "", 0, 1023, NULL,
     "NAT 1:1 mappings, 'private=public' comma-separated: an announced private address is "
     "replaced by its public one.", 0},
    {"ice_servers", SL_CONFIG_STRING, O(ice_servers), "", 0, 2047, NULL,
     "STUN/TURN server URLs handed to WHIP/WHEP clients in Link headers (RFC 9725 4.6), "
     "comma-separated, e.g. stun:stun.example.com:3478,turn:turn.example.com?transport=udp.", 0},
    {"ice_username", SL_CONFIG_STRING, O(ice_username), "", 0, 255, NULL,
     "Username for the TURN URLs of ice_servers.", 0},
    {"ice_credential", SL_CONFIG_STRING, O(ice_credential), "", 0, 255, NULL,
     "Credential for the TURN URLs of ice_servers (never logged).", 0},
    {"setup_timeout", SL_CONFIG_DURATION, O(setup_timeout_ms), "15s", 500, 5 * SL_CONFIG_MINUTE, NULL,
     "Time a client has from the SDP answer to complete ICE and DTLS; then the session ends.", 0},
    {"consent_timeout", SL_CONFIG_DURATION, O(consent_timeout_ms), "30s", 500, 10 * SL_CONFIG_MINUTE, NULL,
     "A session whose peer sent no ICE consent check (RFC 7675) for this long ends.", 0},
    {"max_sessions", SL_CONFIG_INT, O(max_sessions), "5000", 1, 1000000, NULL,
     "Whole server: WebRTC sessions at once (publishers and viewers); more answer 503.", 0},
    {"max_sessions_per_address", SL_CONFIG_INT, O(max_sessions_per_address), "100", 1, 1000000, NULL,
     "WebRTC sessions at once from one client address; more answer 429.", 0},
    {"max_sdp_bytes", SL_CONFIG_SIZE, O(max_sdp_bytes), "64KB", 1 * SL_CONFIG_KB, 1 * SL_CONFIG_MB, NULL,
     "Largest SDP offer accepted; a larger body answers 413.", 0},
    {"keyframe_interval", SL_CONFIG_DURATION, O(keyframe_interval_ms), "2s", 0, 1 * SL_CONFIG_HOUR, NULL,
     "Ask WHIP publishers for a keyframe (PLI) this often, so HLS can cut segments and new "
     "viewers start soon; 0 = only when needed (loss, a new viewer).", 0},
    {"nack_buffer", SL_CONFIG_DURATION, O(nack_buffer_ms), "150ms", 0, 2 * SL_CONFIG_SEC, NULL,
     "How long a gap in a publisher's packets waits for its NACKed retransmission before it is "
     "declared lost (latency added only while a packet is missing).", 0},
    {"h264", SL_CONFIG_BOOL, O(h264), "true", 0, 0, NULL,
     "Accept H.264 (packetization-mode 1) video.", 0},
    {"vp8", SL_CONFIG_BOOL, O(vp8), "true", 0, 0, NULL,
     "Accept VP8 video when the offer has no H.264 (RTMP and HLS outputs need H.264).", 0},
    {"transcode_audio", SL_CONFIG_BOOL, O(transcode_audio), "true", 0, 0, NULL,
     "Transcode Opus to AAC for RTMP/HLS/recording and AAC to Opus for WHEP viewers, once per "
     "stream, off the event loop, only while someone needs it.", 0},
    {"datachannel", SL_CONFIG_BOOL, O(datachannel), "true", 0, 0, NULL,
     "Accept data channels (SCTP over DTLS).", 0},
    {"max_message_size", SL_CONFIG_SIZE, O(max_message_size), "256KB", 1 * SL_CONFIG_KB, 16 * SL_CONFIG_MB, NULL,
     "Largest data channel message accepted or sent.", 0},
    {"mtu", SL_CONFIG_INT, O(mtu), "1200", 576, 1400, NULL,
     "RTP payload bytes per packet sent to viewers (before SRTP's overhead).", 0},
    {"bframes", SL_CONFIG_ENUM, O(bframes), "drop", 0, 0, bframes_names,
     "H.264 B-frames of RTMP/file sources to WHEP viewers: drop (browsers do not reorder "
     "frames and fail on them; viewers get the I and P frames) or send (for clients that "
     "decode them, e.g. libavcodec-based ones). See docs/webrtc.md, B-frames.", 0},
    {"ws", SL_CONFIG_BOOL, O(ws), "true", 0, 0, NULL,
     "Red5 Pro's WebSocket signalling (HTML5 SDK <= 12 RTCPublisher/RTCSubscriber) on the HTTP "
     "port: ws://host:5080/{app}/?id={stream}, JSON offer/answer/candidate messages.", SL_CONFIG_RESTART},
    {"ws_max_message_bytes", SL_CONFIG_SIZE, O(ws_max_message_bytes), "128KB", 1 * SL_CONFIG_KB,
     1 * SL_CONFIG_MB, NULL,
     "Largest JSON message of the WebSocket signalling; a larger one closes the socket (1009).", 0},
    {"ws_messages_per_second", SL_CONFIG_INT, O(ws_messages_per_second), "50", 1, 100000, NULL,
     "Messages a signalling socket may send per second; more closes it (1008).", 0},
    {"ws_max_sockets", SL_CONFIG_INT, O(ws_max_sockets), "5000", 1, 1000000, NULL,
     "Whole server: WebSocket signalling sockets at once; more answer 503.", 0},
    {"ws_max_sockets_per_address", SL_CONFIG_INT, O(ws_max_sockets_per_address), "50", 1, 1000000,
     NULL, "WebSocket signalling sockets at once from one client address; more answer 429.", 0},
    {"ws_idle_timeout", SL_CONFIG_DURATION, O(ws_idle_timeout_ms), "10s", 500, 10 * SL_CONFIG_MINUTE,
     NULL,
     "A signalling socket that sent no valid message for this long before its session exists (or "
     "before it was admitted on its own, e.g. for shared objects) is closed.", 0},
    {"pacing", SL_CONFIG_BOOL, O(pacing), "true", 0, 0, NULL,
     "Pace each WHEP viewer's packets at 2.5 x its bandwidth estimate (REMB, receiver-report "
     "loss), audio and retransmissions first, and drop its video to the next keyframe when it "
     "falls behind; off = every packet is sent at once (a full socket still retries).", 0},
    {"max_queue", SL_CONFIG_DURATION, O(max_queue_ms), "500ms", 50, 10 * SL_CONFIG_SEC, NULL,
     "A viewer whose pacing queue holds more than this much media (age of its oldest packet, or "
     "time to send it at the pacing rate) loses its queued video and resumes at the next "
     "keyframe; audio is kept.", 0},
    {"min_bitrate", SL_CONFIG_INT, O(min_bitrate), "50000", 10000, 1000000000, NULL,
     "Lowest bandwidth estimate of a viewer, bit/s.", 0},
    {"start_bitrate", SL_CONFIG_INT, O(start_bitrate), "2000000", 10000, 1000000000, NULL,
     "A viewer's bandwidth estimate before its first feedback, bit/s. High on purpose: the "
     "server cannot make the stream smaller, so a low start would only drop video until the "
     "estimate climbs; loss and REMB bring it down within seconds on a narrower path.", 0},
    {"max_bitrate", SL_CONFIG_INT, O(max_bitrate), "50000000", 10000, 1000000000, NULL,
     "Highest bandwidth estimate of a viewer, bit/s.", 0},
};

static const sl_config_slot_t g_app_slots[] = {
    {"webrtc", SL_CONFIG_BOOL, offsetof(sl_webrtc_app_config_t, webrtc), "true", 0, 0, NULL,
     "Serve WHIP publish and WHEP play for this app.", 0},
};

const sl_config_section_t sl_webrtc_config_section = {
    .name = "webrtc",
    .doc = "WebRTC: WHIP publish (POST /{app}/whip/endpoint/{stream}) and WHEP play "
           "(POST /{app}/whep/endpoint/{stream}) over one UDP port, with ICE-TCP, DTLS-SRTP and "
           "data channels.",
    .size = sizeof(sl_webrtc_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
    .app_size = sizeof(sl_webrtc_app_config_t),
    .app_slots = g_app_slots,
    .n_app_slots = sizeof g_app_slots / sizeof g_app_slots[0],
};
