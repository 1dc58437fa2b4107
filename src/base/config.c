/*
 * The configuration system (see config.h): two tables of typed slots and the
 * code they drive. g_slots lists every setting of sl_config_t (section, key,
 * type, offset, default spelled as a user writes it, bounds, doc); g_app_slots
 * lists the per-app settings of sl_app_config_t. The defaults, the YAML
 * loader (libyaml's event API, so every node keeps its line), the SLUICE_*
 * environment overrides, sl_config_equal and the two writers (the shipped
 * sluice.yml and docs/config.md) all walk these tables and nothing else, so
 * adding a setting is one table line plus its struct field.
 *
 * Loading runs once at start on the main thread; nothing here is shared
 * between threads and there is no global state besides the const tables.
 */
#include "base/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "base/alloc.h"
#include "base/log.h"
#include "sluice/errors.h"

/* ---- the tables ------------------------------------------------------- */

typedef enum {
    T_INT,      /* int64_t, decimal integer */
    T_BOOL,     /* int 0/1: true/false, yes/no, on/off, 1/0 */
    T_STRING,   /* char *, owned; min/max bound the length in bytes */
    T_SIZE,     /* int64_t bytes: 4096, 64k, 16MB, 1g (powers of 1024) */
    T_DURATION, /* int64_t milliseconds: 500ms, 5s, 2m, 1h; plain = ms */
    T_ENUM,     /* int64_t index into names */
} slot_type_t;

typedef struct {
    const char *section;      /* YAML section; NULL in the app table */
    const char *key;          /* YAML key, lower_snake_case */
    slot_type_t type;
    size_t offset;            /* into sl_config_t, or sl_app_config_t */
    const char *def;          /* default, as a user would write it */
    int64_t min, max;         /* inclusive bounds; string length; unused for bool/enum */
    const char *const *names; /* T_ENUM: value names, NULL-terminated */
    const char *doc;          /* one line for sluice.yml and docs/config.md */
} slot_t;

#define KB 1024LL
#define MB (1024LL * KB)
#define GB (1024LL * MB)
#define SEC 1000LL
#define MINUTE (60LL * SEC)
#define HOUR (60LL * MINUTE)

#define CFG(f) offsetof(sl_config_t, f)
#define APP(f) offsetof(sl_app_config_t, f)

/* Index order is the value: it must match sl_log_level_t (checked by a test). */
static const char *const log_level_names[] = {"error", "warn", "info", "debug", "trace", NULL};
static const char *const log_format_names[] = {"text", "json", NULL};
static const char *const deny_allow_names[] = {"deny", "allow", NULL};
/* Index order is the value: it must match sl_hls_format_t. */
static const char *const hls_format_names[] = {"ts", "fmp4", NULL};
/* Index order is the value: it must match sl_record_format_t. */
static const char *const record_format_names[] = {"flv", "mp4", NULL};

static const slot_t g_slots[] = {
    {"server", "data_dir", T_STRING, CFG(server_data_dir), "./data", 1, 4095, NULL,
     "Data folder: SQLite database, recordings, shared-object store."},
    {"server", "node_name", T_STRING, CFG(server_node_name), "", 0, 255, NULL,
     "This node's name in events, logs and the cluster; empty means the host name."},
    {"server", "max_connections", T_INT, CFG(server_max_connections), "10000", 1, 1000000, NULL,
     "Most client connections at once, all protocols together; more are refused."},
    {"server", "max_connections_per_address", T_INT, CFG(server_max_connections_per_address), "64",
     0, 1000000, NULL,
     "Most connections at once from one client address, all protocols together (loopback "
     "included); more are refused. 0 = no limit. Raise it for many clients behind one NAT."},
    {"server", "max_pending_connections", T_INT, CFG(server_max_pending_connections), "0", 0,
     1000000, NULL,
     "Most connections at once without a complete HTTP request or accepted RTMP connect; a new one "
     "past it closes the oldest. 0 = a quarter of max_connections."},
    {"server", "shutdown_timeout", T_DURATION, CFG(server_shutdown_timeout_ms), "5s", 0,
     10 * MINUTE, NULL, "On SIGTERM/SIGINT, how long sessions get to finish before they are closed."},

    {"log", "level", T_ENUM, CFG(log_level), "info", 0, 0, log_level_names,
     "Lowest level written to stderr. Up to debug, secrets (passwords, tokens, JWTs, URL userinfo) are masked; trace may print raw protocol data, credentials included."},
    {"log", "format", T_ENUM, CFG(log_format), "text", 0, 0, log_format_names,
     "text: one readable line per event; json: one JSON object per line."},

    {"rtmp", "enabled", T_BOOL, CFG(rtmp_enabled), "true", 0, 0, NULL,
     "Accept RTMP connections."},
    {"rtmp", "bind", T_STRING, CFG(rtmp_bind), "0.0.0.0", 1, 255, NULL,
     "Address to listen on: 0.0.0.0 for every IPv4 address, :: for IPv6."},
    {"rtmp", "port", T_INT, CFG(rtmp_port), "1935", 1, 65535, NULL,
     "TCP port to listen on."},
    {"rtmp", "chunk_size", T_INT, CFG(rtmp_chunk_size), "4096", 128, 65536, NULL,
     "Outgoing chunk size announced to peers: larger means fewer chunk headers."},
    {"rtmp", "max_chunk_size", T_INT, CFG(rtmp_max_chunk_size), "65536", 128, 16777215, NULL,
     "Largest incoming chunk size a peer may set; a larger Set Chunk Size closes the connection."},
    {"rtmp", "max_message_size", T_SIZE, CFG(rtmp_max_message_size), "8MB", 1 * KB, 64 * MB, NULL,
     "Largest incoming message (e.g. one video frame); a larger one closes the connection."},
    {"rtmp", "max_partial_bytes", T_SIZE, CFG(rtmp_max_partial_bytes), "24MB", 64 * KB, 1 * GB,
     NULL, "Per connection after connect: bytes of half-received messages held over all chunk "
     "streams (never less than max_message_size); more closes the connection."},
    {"rtmp", "max_partial_bytes_before_connect", T_SIZE, CFG(rtmp_max_partial_bytes_before_connect),
     "64KB", 4 * KB, 64 * MB, NULL, "Per connection until connect is admitted: bytes of "
     "half-received messages held; more closes the connection."},
    {"rtmp", "max_partial_messages", T_INT, CFG(rtmp_max_partial_messages), "16", 1, 64, NULL,
     "Per connection: chunk streams with a message half received at once; more closes it."},
    {"rtmp", "max_partial_bytes_total", T_SIZE, CFG(rtmp_max_partial_bytes_total), "256MB",
     1 * MB, 64 * GB, NULL, "Whole server: bytes of half-received RTMP messages over all "
     "connections; a connection that would go over is closed (logged at warn)."},
    {"rtmp", "max_control_bytes_before_connect", T_SIZE, CFG(rtmp_max_control_bytes_before_connect),
     "64KB", 4 * KB, 4 * MB, NULL, "Per connection until connect is admitted: bytes of replies "
     "(pings, acknowledgements) queued for a peer that does not read; more closes it."},
    {"rtmp", "handshake_timeout", T_DURATION, CFG(rtmp_handshake_timeout_ms), "5s", 100,
     5 * MINUTE, NULL, "Time a client has to complete the RTMP handshake."},
    {"rtmp", "connect_timeout", T_DURATION, CFG(rtmp_connect_timeout_ms), "10s", 100, 5 * MINUTE,
     NULL, "Time a client has, from accept, to send its connect command after the handshake."},
    {"rtmp", "idle_timeout", T_DURATION, CFG(rtmp_idle_timeout_ms), "60s", 1 * SEC, 24 * HOUR,
     NULL, "Close a connection that has sent nothing for this long."},
    {"rtmp", "amf_max_depth", T_INT, CFG(rtmp_amf_max_depth), "32", 1, 1000, NULL,
     "Deepest AMF object/array nesting accepted in commands and metadata."},
    {"rtmp", "window_ack_size", T_SIZE, CFG(rtmp_window_ack_size), "2500000", 1 * KB,
     1 * GB, NULL, "Acknowledgement window announced to peers, in bytes."},
    {"rtmp", "ping_interval", T_DURATION, CFG(rtmp_ping_interval_ms), "30s", 0, 1 * HOUR, NULL,
     "Send a ping request this often to detect dead peers; 0 = never."},
    {"rtmp", "tcp_nodelay", T_BOOL, CFG(rtmp_tcp_nodelay), "true", 0, 0, NULL,
     "Disable Nagle's algorithm on RTMP sockets (lower latency, more packets)."},
    {"rtmp", "tls_port", T_INT, CFG(rtmp_tls_port), "1936", 0, 65535, NULL,
     "TCP port of the RTMPS listener (RTMP over TLS 1.2/1.3), open when a certificate is set "
     "(tls_cert/tls_key, else http's); 0 = no RTMPS."},
    {"rtmp", "tls_bind", T_STRING, CFG(rtmp_tls_bind), "", 0, 255, NULL,
     "Address of the RTMPS listener; empty means the same as bind."},
    {"rtmp", "tls_cert", T_STRING, CFG(rtmp_tls_cert), "", 0, 4095, NULL,
     "PEM certificate file (leaf first, then intermediates) for RTMPS; empty = http.tls_cert."},
    {"rtmp", "tls_key", T_STRING, CFG(rtmp_tls_key), "", 0, 4095, NULL,
     "PEM private key file of tls_cert (set both or neither); empty = http.tls_key."},

    {"media", "gop_cache_max_bytes", T_SIZE, CFG(media_gop_cache_max_bytes), "16MB", 0, 1 * GB,
     NULL, "Per stream: bytes of the last GOP kept so new players start on a keyframe; 0 disables."},
    {"media", "queue_max_bytes", T_SIZE, CFG(media_queue_max_bytes), "8MB", 64 * KB, 1 * GB, NULL,
     "Per subscriber: bytes queued before it drops frames up to the next keyframe."},
    {"media", "queue_max_ms", T_DURATION, CFG(media_queue_max_ms), "5s", 100, 10 * MINUTE, NULL,
     "Per subscriber: media time queued before it drops frames up to the next keyframe."},
    {"media", "slow_disconnect", T_DURATION, CFG(media_slow_disconnect_ms), "30s", 1 * SEC,
     1 * HOUR, NULL, "A subscriber still dropping frames after this long is disconnected."},
    {"media", "write_merge", T_DURATION, CFG(media_write_merge_ms), "0ms", 0, 1 * SEC, NULL,
     "Gather writes to each subscriber over this window: fewer syscalls, more latency; 0 = at once."},
    {"media", "audio_hold", T_DURATION, CFG(media_audio_hold_ms), "50ms", 0, 1 * SEC, NULL,
     "With write_merge 0: an RTMP player's audio waits for the next video frame, at most this long, "
     "so both go out in one write; 0 = every audio frame written at once."},

    {"http", "enabled", T_BOOL, CFG(http_enabled), "true", 0, 0, NULL,
     "Serve HTTP: the REST API, metrics, the event stream and web pages."},
    {"http", "bind", T_STRING, CFG(http_bind), "0.0.0.0", 1, 255, NULL,
     "Address to listen on: 0.0.0.0 for every IPv4 address, :: for IPv6."},
    {"http", "port", T_INT, CFG(http_port), "5080", 1, 65535, NULL,
     "TCP port to listen on."},
    {"http", "max_header_bytes", T_SIZE, CFG(http_max_header_bytes), "16KB", 1 * KB, 1 * MB, NULL,
     "Largest request head (request line and headers); larger is answered 431."},
    {"http", "max_headers", T_INT, CFG(http_max_headers), "100", 1, 10000, NULL,
     "Most request headers; more are answered 431."},
    {"http", "max_body_bytes", T_SIZE, CFG(http_max_body_bytes), "1MB", 0, 1 * GB, NULL,
     "Largest request body; larger is answered 413."},
    {"http", "max_url_bytes", T_SIZE, CFG(http_max_url_bytes), "8KB", 256, 1 * MB, NULL,
     "Longest request URL; longer is answered 414."},
    {"http", "header_timeout", T_DURATION, CFG(http_header_timeout_ms), "10s", 100, 10 * MINUTE,
     NULL, "Time a client has to send a complete request head (slowloris guard): 408."},
    {"http", "request_timeout", T_DURATION, CFG(http_request_timeout_ms), "30s", 100, 1 * HOUR,
     NULL, "Time a client has to send a whole request, head and body, from its first byte: 408."},
    {"http", "idle_timeout", T_DURATION, CFG(http_idle_timeout_ms), "60s", 1 * SEC, 24 * HOUR, NULL,
     "Close a keep-alive connection idle for this long."},
    {"http", "cors_origin", T_STRING, CFG(http_cors_origin), "*", 0, 1024, NULL,
     "Access-Control-Allow-Origin sent on every response; empty disables CORS."},
    {"http", "web_root", T_STRING, CFG(http_web_root), "./web", 0, 4095, NULL,
     "Folder of static web pages served at / (the console and test pages)."},
    {"http", "ws_max_message_bytes", T_SIZE, CFG(http_ws_max_message_bytes), "1MB", 1 * KB,
     64 * MB, NULL, "Largest WebSocket message accepted."},
    {"http", "stream_max_pending_bytes", T_SIZE, CFG(http_stream_max_pending_bytes), "8MB",
     64 * KB, 1 * GB, NULL, "Bytes queued on one streaming response or WebSocket before it is cut; a WebSocket "
     "counts the pongs and close replies its client's frames make us queue."},
    {"http", "tls_cert", T_STRING, CFG(http_tls_cert), "", 0, 4095, NULL,
     "PEM certificate file (leaf first, then intermediates) for HTTPS; HTTPS is on when this and "
     "tls_key are set."},
    {"http", "tls_key", T_STRING, CFG(http_tls_key), "", 0, 4095, NULL,
     "PEM private key file of tls_cert."},
    {"http", "tls_port", T_INT, CFG(http_tls_port), "5443", 1, 65535, NULL,
     "TCP port of the HTTPS listener (same routes as the HTTP one; TLS 1.2 and 1.3)."},
    {"http", "tls_bind", T_STRING, CFG(http_tls_bind), "", 0, 255, NULL,
     "Address of the HTTPS listener; empty means the same as bind."},

    {"hls", "session_timeout", T_DURATION, CFG(hls_session_timeout_ms), "30s", 1 * SEC, 1 * HOUR,
     NULL, "An HLS player that sends no request for this long has left (play_stop is emitted)."},
    {"hls", "max_sessions", T_INT, CFG(hls_max_sessions), "5000", 1, 1000000, NULL,
     "HLS player sessions in all (they are not connections: server.max_connections does not count "
     "them); past it a new player gets 429."},
    {"hls", "max_sessions_per_address", T_INT, CFG(hls_max_sessions_per_address), "200", 1, 1000000,
     NULL, "HLS player sessions from one client address (viewers behind one NAT share it: raise it "
     "for a large office); past it a new player from that address gets 429."},

    {"api", "access_token", T_STRING, CFG(api_access_token), "", 0, 128, NULL,
     "Server API token (?accessToken= or Authorization: Bearer); empty = generate one in data_dir/api_token."},
    {"api", "hosts", T_STRING, CFG(api_hosts), "*", 0, 1023, NULL,
     "Comma-separated client addresses allowed to use the API (localhost matches loopback); * = any."},
    {"api", "auth_fail_limit", T_INT, CFG(api_auth_fail_limit), "20", 1, 100000, NULL,
     "Failed token checks per address per minute before wrong tokens from the address get 429 (a right token always passes)."},
    {"api", "auth_fail_max_addresses", T_INT, CFG(api_auth_fail_max_addrs), "4096", 16, 1000000, NULL,
     "Addresses whose failed token checks are counted (IPv6 per /64); when full, the oldest record is forgotten."},
    {"api", "metrics_public", T_BOOL, CFG(api_metrics_public), "true", 0, 0, NULL,
     "Serve /metrics without the token (for Prometheus scrapers)."},

    {"auth", "simple_file", T_STRING, CFG(auth_simple_file), "", 0, 4095, NULL,
     "Simple auth credentials file (Red5 format: 'username password' per line, # comments); reloaded when it changes."},
    {"auth", "jwt_secret", T_STRING, CFG(auth_jwt_secret), "", 0, 4096, NULL,
     "Shared secret for HS256/384/512 tokens."},
    {"auth", "jwt_public_key_file", T_STRING, CFG(auth_jwt_public_key_file), "", 0, 4095, NULL,
     "PEM public key for RS256/ES256 tokens."},
    {"auth", "jwt_jwks_file", T_STRING, CFG(auth_jwt_jwks_file), "", 0, 4095, NULL,
     "JWKS file (keys by kid) for RS256/ES256 tokens."},
    {"auth", "jwt_issuer", T_STRING, CFG(auth_jwt_issuer), "", 0, 1024, NULL,
     "Required iss claim; empty = not checked."},
    {"auth", "jwt_audience", T_STRING, CFG(auth_jwt_audience), "", 0, 1024, NULL,
     "Required aud claim; empty = not checked."},
    {"auth", "jwt_leeway", T_DURATION, CFG(auth_jwt_leeway_ms), "30s", 0, 1 * HOUR, NULL,
     "Clock skew allowed when checking exp and nbf."},
    {"auth", "roundtrip_validate_url", T_STRING, CFG(auth_roundtrip_validate_url), "", 0, 4095, NULL,
     "Round Trip Authentication: the business's validate endpoint (POST {username,password,token,type,streamID})."},
    {"auth", "roundtrip_invalidate_url", T_STRING, CFG(auth_roundtrip_invalidate_url), "", 0, 4095,
     NULL, "Round Trip Authentication: called with the same body when an authenticated client leaves."},
    {"auth", "roundtrip_timeout", T_DURATION, CFG(auth_roundtrip_timeout_ms), "5s", 100, 5 * MINUTE,
     NULL, "How long to wait for the validate endpoint."},
    {"auth", "roundtrip_default", T_ENUM, CFG(auth_roundtrip_default), "deny", 0, 0, deny_allow_names,
     "What to answer when the validate endpoint fails or times out."},
    {"auth", "roundtrip_lazy", T_BOOL, CFG(auth_roundtrip_lazy), "false", 0, 0, NULL,
     "Admit at once and disconnect the client if the answer is no."},

    {"webhooks", "url", T_STRING, CFG(webhooks_url), "", 0, 4095, NULL,
     "Endpoints that receive events (comma-separated); empty = none."},
    {"webhooks", "secret", T_STRING, CFG(webhooks_secret), "", 0, 1024, NULL,
     "HMAC-SHA256 key for the X-Sluice-Signature header; empty = unsigned."},
    {"webhooks", "events", T_STRING, CFG(webhooks_events), "", 0, 1024, NULL,
     "Event names to send (comma-separated, Red5 or sluice names); empty = all."},
    {"webhooks", "timeout", T_DURATION, CFG(webhooks_timeout_ms), "10s", 100, 5 * MINUTE, NULL,
     "Time one delivery attempt may take."},
    {"webhooks", "retry_max_interval", T_DURATION, CFG(webhooks_retry_max_ms), "5m", 1 * SEC,
     24 * HOUR, NULL, "Longest wait between two attempts (exponential backoff with jitter up to this)."},
    {"webhooks", "retention", T_DURATION, CFG(webhooks_retention_ms), "168h", 0, 8760 * HOUR, NULL,
     "How long delivered rows stay in the outbox (listed by the API) before they are deleted; 0 = forever."},

    {"exec", "on_connect", T_STRING, CFG(exec_on_connect), "", 0, 4095, NULL,
     "Command run when a client connects (event fields in SLUICE_* variables, see docs/integration/exec-hooks.md)."},
    {"exec", "on_disconnect", T_STRING, CFG(exec_on_disconnect), "", 0, 4095, NULL,
     "Command run when a client disconnects."},
    {"exec", "on_publish", T_STRING, CFG(exec_on_publish), "", 0, 4095, NULL,
     "Command run when a stream starts (e.g. ffmpeg making a thumbnail)."},
    {"exec", "on_unpublish", T_STRING, CFG(exec_on_unpublish), "", 0, 4095, NULL,
     "Command run when a stream ends."},
    {"exec", "on_play", T_STRING, CFG(exec_on_play), "", 0, 4095, NULL,
     "Command run when a player starts."},
    {"exec", "on_play_stop", T_STRING, CFG(exec_on_play_stop), "", 0, 4095, NULL,
     "Command run when a player stops."},
    {"exec", "on_record_done", T_STRING, CFG(exec_on_record_done), "", 0, 4095, NULL,
     "Command run when a recording is saved (its file in SLUICE_EVENT_PATH)."},
    {"exec", "timeout", T_DURATION, CFG(exec_timeout_ms), "60s", 100, 24 * HOUR, NULL,
     "A hook still running after this long is killed."},
    {"exec", "max_concurrent", T_INT, CFG(exec_max_concurrent), "4", 1, 1024, NULL,
     "Hooks running at once; more wait in a queue."},
    {"exec", "shell", T_BOOL, CFG(exec_shell), "false", 0, 0, NULL,
     "Run commands through /bin/sh -c (pipes, redirections); otherwise split on spaces and exec directly."},

    {"recorder", "queue_max", T_SIZE, CFG(recorder_queue_max_bytes), "64MB", 64 * KB, 4 * GB, NULL,
     "Bytes one recording may have waiting for the disk; past it frames are dropped up to the next keyframe."},

    {"cleaner", "interval", T_DURATION, CFG(cleaner_interval_ms), "10m", 1 * SEC, 24 * HOUR, NULL,
     "Time between two sweeps of the recordings of apps with record_max_age or record_max_bytes."},

    {"s3", "endpoint", T_STRING, CFG(s3_endpoint), "", 0, 1024, NULL,
     "S3-compatible endpoint, e.g. https://s3.us-east-1.amazonaws.com or http://127.0.0.1:4568; empty = no upload."},
    {"s3", "bucket", T_STRING, CFG(s3_bucket), "", 0, 255, NULL,
     "Bucket; objects are {app}/streams/{name}.flv (path-style URLs)."},
    {"s3", "region", T_STRING, CFG(s3_region), "us-east-1", 1, 64, NULL,
     "Region used in the SigV4 signature."},
    {"s3", "access_key", T_STRING, CFG(s3_access_key), "", 0, 256, NULL,
     "Access key id."},
    {"s3", "secret_key", T_STRING, CFG(s3_secret_key), "", 0, 200, NULL,
     "Secret access key (prefer SLUICE_S3_SECRET_KEY over the file)."},
    {"s3", "part_size", T_SIZE, CFG(s3_part_size), "8MB", 5 * MB, 1 * GB, NULL,
     "Files larger than this are sent as a multipart upload in parts of this size."},
    {"s3", "delete_after_upload", T_BOOL, CFG(s3_delete_after_upload), "false", 0, 0, NULL,
     "Delete the local file once its upload is verified (Red5 delete.recordings; keep false with append)."},
    {"s3", "retry_max_interval", T_DURATION, CFG(s3_retry_max_ms), "5m", 1 * SEC, 24 * HOUR, NULL,
     "Longest wait between two attempts of a failed upload (exponential backoff up to this; retried until done)."},
    {"s3", "timeout", T_DURATION, CFG(s3_timeout_ms), "10m", 1 * SEC, 24 * HOUR, NULL,
     "Time one HTTP request (one part) may take."},
};
#define N_SLOTS (sizeof g_slots / sizeof g_slots[0])

/*
 * Per-app settings. To add one (recording, HLS, auth...): add the field to
 * sl_app_config_t and a line here; YAML, env, docs and cleanup follow, and
 * string slots are freed by the table walk.
 */
static const slot_t g_app_slots[] = {
    {NULL, "enabled", T_BOOL, APP(enabled), "true", 0, 0, NULL,
     "Serve this app; a disabled app is refused like an unknown one."},
    {NULL, "publish", T_BOOL, APP(allow_publish), "true", 0, 0, NULL,
     "Allow publishing streams to this app."},
    {NULL, "play", T_BOOL, APP(allow_play), "true", 0, 0, NULL,
     "Allow playing streams from this app."},
    {NULL, "auth_simple", T_BOOL, APP(auth_simple), "false", 0, 0, NULL,
     "Check clients against auth.simple_file."},
    {NULL, "auth_jwt", T_BOOL, APP(auth_jwt), "false", 0, 0, NULL,
     "Require a valid JWT (auth.jwt_*) from clients."},
    {NULL, "auth_roundtrip", T_BOOL, APP(auth_roundtrip), "false", 0, 0, NULL,
     "Ask the business's server (auth.roundtrip_*) before publish and play."},
    {NULL, "auth_protocols", T_STRING, APP(auth_protocols), "*", 0, 255, NULL,
     "Protocols the auth checks apply to (comma-separated: rtmp,rtsp,webrtc,hls,http-flv,srt); * = all."},
    {NULL, "webhook_url", T_STRING, APP(webhook_url), "", 0, 4095, NULL,
     "Extra webhook endpoints for this app only (comma-separated)."},
    {NULL, "hls", T_BOOL, APP(hls), "true", 0, 0, NULL,
     "Serve this app's live streams as HLS at /{app}/{stream}.m3u8 (Red5's HLS plugin)."},
    {NULL, "hls_segment", T_DURATION, APP(hls_segment_ms), "6s", 1 * SEC, 60 * SEC, NULL,
     "HLS segment length (Red5 itemLength): a segment is cut at the first keyframe after it."},
    {NULL, "hls_window", T_INT, APP(hls_window), "5", 1, 100, NULL,
     "HLS segments listed in the live playlist (Red5 itemCount)."},
    {NULL, "hls_format", T_ENUM, APP(hls_format), "ts", 0, 0, hls_format_names,
     "HLS segment container: MPEG-TS, or fragmented MP4 (CMAF)."},
    {NULL, "hls_low_latency", T_BOOL, APP(hls_low_latency), "false", 0, 0, NULL,
     "Low-Latency HLS: partial segments, blocking playlist reload, preload hints (implies fmp4)."},
    {NULL, "hls_part", T_DURATION, APP(hls_part_ms), "333ms", 100, 2 * SEC, NULL,
     "Low-Latency HLS partial segment length (PART-TARGET)."},
    {NULL, "hls_disk", T_BOOL, APP(hls_disk), "false", 0, 0, NULL,
     "Also write HLS segments and playlists under {data_dir}/{app}/streams/hls/ (Red5 useDiskWrites)."},
    {NULL, "httpflv", T_BOOL, APP(httpflv), "true", 0, 0, NULL,
     "Serve this app's live streams as HTTP-FLV at /{app}/{stream}.flv."},
    {NULL, "record", T_BOOL, APP(record), "false", 0, 0, NULL,
     "Record every stream published to this app to {data_dir}/{app}/streams/ (as if published with mode record)."},
    {NULL, "record_pattern", T_STRING, APP(record_pattern), "", 0, 255, NULL,
     "File name of policy recordings: {name} is the stream name, strftime fields allowed (e.g. {name}_%Y%m%d-%H%M%S); empty = the stream name."},
    {NULL, "record_max_age", T_DURATION, APP(record_max_age_ms), "0", 0, 87600 * HOUR, NULL,
     "The cleaner deletes this app's recordings older than this (never one being written or waiting for upload); 0 = keep them."},
    {NULL, "record_max_bytes", T_SIZE, APP(record_max_bytes), "0", 0, 1024 * 1024 * GB, NULL,
     "The cleaner deletes this app's oldest recordings while they take more than this; 0 = no quota."},
    {NULL, "record_format", T_ENUM, APP(record_format), "flv", 0, 0, record_format_names,
     "Container of this app's recordings when the name has no extension: flv, or mp4 (fragmented; a name ending in .mp4 always picks it)."},
};
#define N_APP_SLOTS (sizeof g_app_slots / sizeof g_app_slots[0])

/* Duplicate-key tracking uses a fixed array per mapping. */
#define MAX_TABLE 128
_Static_assert(N_SLOTS <= MAX_TABLE && N_APP_SLOTS <= MAX_TABLE, "raise MAX_TABLE");

/* Sections in file order, with the heading used by both writers. */
typedef struct {
    const char *name;
    const char *doc;
} section_t;

static const section_t g_sections[] = {
    {"server", "Process-wide settings."},
    {"log", "Logging to stderr."},
    {"rtmp", "The RTMP listener (rtmp://host:1935/{app}/{stream}), and RTMPS "
             "(rtmps://host:1936/{app}/{stream}) when a certificate is configured."},
    {"media", "The media path: GOP cache and per-subscriber queues."},
    {"http", "The HTTP listener (REST API, metrics, events, web pages; http://host:5080/), and "
             "HTTPS (https://host:5443/) when tls_cert and tls_key are set."},
    {"hls", "HLS and Low-Latency HLS players (per-app settings: apps.<name>.hls*)."},
    {"api", "The Red5 Pro-compatible Server API (/api/v1) and metrics."},
    {"auth", "Admission: simple auth, JWT and Round Trip Authentication (enabled per app)."},
    {"webhooks", "Events pushed to the business's servers, durably (SQLite outbox, retried until 2xx)."},
    {"exec", "Commands run on events, without a shell unless exec.shell is set."},
    {"recorder", "Recording to FLV or fragmented MP4 under {data_dir}/{app}/streams/ (per-app settings: apps.<name>.record*)."},
    {"cleaner", "Deletes old recordings (per-app settings: apps.<name>.record_max_age, record_max_bytes)."},
    {"s3", "Upload of finished recordings to S3-compatible storage (durable queue in sluice.db, SigV4)."},
};
#define N_SECTIONS (sizeof g_sections / sizeof g_sections[0])
#define APPS_SECTION ((int)N_SECTIONS) /* index of `apps` among the top-level keys */

/*
 * Writes the top-level keys, every section of g_sections then `apps` and
 * `plugins`, as "a, b, ..., apps, plugins" (quote = "`" for markdown, "" for messages), so the
 * texts that name them cannot fall behind the table. Cut to cap.
 */
static void section_names(char *out, size_t cap, const char *quote)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t si = 0; si <= N_SECTIONS + 1 && n < cap; si++) {
        int w = snprintf(out + n, cap - n, "%s%s%s%s", si ? ", " : "", quote,
                         si < N_SECTIONS    ? g_sections[si].name
                         : si == N_SECTIONS ? "apps"
                                            : "plugins",
                         quote);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

/* ---- small helpers ---------------------------------------------------- */

/* Reports go to a sink: the user's callback plus counters for the return code. */
typedef struct {
    sl_config_err_cb err;
    void *ud;
    const char *where; /* file name or variable name for the next report */
    int n_problems;
    int nomem;         /* an allocation failed: stop and return SL_ENOMEM */
} sink_t;

static void report(sink_t *sk, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void report(sink_t *sk, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sk->n_problems++;
    if (sk->err)
        sk->err(sk->ud, sk->where, line, msg);
}

/*
 * Copies untrusted text into out for a message: printable ASCII kept, other
 * bytes shown as '?', at most about 60 characters, so a hostile file cannot
 * put control characters or megabytes into the log.
 */
static const char *show(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = 0, i = 0, limit = cap < 64 ? cap : 64;
    for (; i < len && n + 4 < limit; i++) {
        unsigned char c = (unsigned char)s[i];
        out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (i < len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

/* Case-insensitive equality of s[0..len) with the NUL-terminated word. */
static bool eq_ci(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/* Exact equality of s[0..len) with the NUL-terminated word. */
static bool eq(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

/*
 * Levenshtein distance, case-insensitive, for "did you mean" hints; names
 * longer than 64 bytes get no hint (SIZE_MAX).
 */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t row[65];
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Remembers the closest candidate seen so far (distance <= 2 counts). */
typedef struct {
    char best[96];
    size_t dist;
} hint_t;

static void hint_try(hint_t *h, const char *s, size_t len, const char *candidate)
{
    size_t d = edit_distance(s, len, candidate, strlen(candidate));
    if (d <= 2 && d < h->dist) {
        h->dist = d;
        snprintf(h->best, sizeof h->best, "%s", candidate);
    }
}

static void *field(void *base, const slot_t *s)
{
    return (char *)base + s->offset;
}

static const void *cfield(const void *base, const slot_t *s)
{
    return (const char *)base + s->offset;
}

/* ---- value parsing ---------------------------------------------------- */

typedef struct {
    const char *name;
    int64_t mult;
} unit_t;

/* Binary multiples, as a stream engineer expects "64k" of buffer to mean. */
static const unit_t size_units[] = {
    {"", 1},       {"b", 1},       {"k", KB},  {"kb", KB},  {"kib", KB}, {"m", MB},
    {"mb", MB},    {"mib", MB},    {"g", GB},  {"gb", GB},  {"gib", GB}, {NULL, 0},
};
/* A plain number is milliseconds: every duration is stored in ms. */
static const unit_t duration_units[] = {
    {"", 1}, {"ms", 1}, {"s", SEC}, {"m", MINUTE}, {"h", HOUR}, {NULL, 0},
};

/* Parses digits[ blanks][unit]; 0, -1 (malformed) or -2 (too large). */
static int parse_with_unit(const char *s, size_t len, const unit_t *units, int64_t *out)
{
    size_t i = 0;
    int64_t v = 0;
    if (len == 0 || !isdigit((unsigned char)s[0]))
        return -1;
    for (; i < len && isdigit((unsigned char)s[i]); i++) {
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    for (const unit_t *u = units; u->name; u++) {
        if (eq_ci(s + i, len - i, u->name)) {
            if (v > INT64_MAX / u->mult)
                return -2;
            *out = v * u->mult;
            return 0;
        }
    }
    return -1;
}

/* Parses an optionally signed decimal integer; 0, -1 or -2 as above. */
static int parse_int(const char *s, size_t len, int64_t *out)
{
    int neg = 0;
    size_t i = 0;
    int64_t v = 0;
    if (len > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len)
        return -1;
    for (; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    *out = neg ? -v : v;
    return 0;
}

static int parse_bool(const char *s, size_t len, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1", NULL};
    static const char *const no[] = {"false", "no", "off", "0", NULL};
    for (int i = 0; yes[i]; i++) {
        if (eq_ci(s, len, yes[i])) {
            *out = 1;
            return 0;
        }
        if (eq_ci(s, len, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Formats a byte count with the largest exact binary unit: 65536 -> "64KB". */
static const char *fmt_size(int64_t v, char *out, size_t cap)
{
    if (v != 0 && v % GB == 0)
        snprintf(out, cap, "%lldGB", (long long)(v / GB));
    else if (v != 0 && v % MB == 0)
        snprintf(out, cap, "%lldMB", (long long)(v / MB));
    else if (v != 0 && v % KB == 0)
        snprintf(out, cap, "%lldKB", (long long)(v / KB));
    else
        snprintf(out, cap, "%lld", (long long)v);
    return out;
}

/* Formats milliseconds with the largest exact unit: 300000 -> "5m". */
static const char *fmt_duration(int64_t ms, char *out, size_t cap)
{
    if (ms != 0 && ms % HOUR == 0)
        snprintf(out, cap, "%lldh", (long long)(ms / HOUR));
    else if (ms != 0 && ms % MINUTE == 0)
        snprintf(out, cap, "%lldm", (long long)(ms / MINUTE));
    else if (ms != 0 && ms % SEC == 0)
        snprintf(out, cap, "%llds", (long long)(ms / SEC));
    else if (ms != 0)
        snprintf(out, cap, "%lldms", (long long)ms);
    else
        snprintf(out, cap, "0");
    return out;
}

static const char *fmt_bound(const slot_t *s, int64_t v, char *out, size_t cap)
{
    if (s->type == T_SIZE)
        return fmt_size(v, out, cap);
    if (s->type == T_DURATION)
        return fmt_duration(v, out, cap);
    snprintf(out, cap, "%lld", (long long)v);
    return out;
}

/* "error, warn, info" for messages and docs. */
static const char *enum_list(const slot_t *s, const char *sep, const char *quote, char *out,
                             size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; s->names[i] && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s%s%s", i ? sep : "", quote, s->names[i], quote);
    return out;
}

/*
 * Parses text[0..len) as slot s and stores it into base. Returns 0;
 * SL_EINVAL with the reason in why (the value is left unchanged); or
 * SL_ENOMEM. Strings are duplicated before the old value is freed, so a
 * failure never leaves a dangling pointer.
 */
static int slot_set(const slot_t *s, void *base, const char *text, size_t len, char *why,
                    size_t why_cap)
{
    char shown[72], lo[32], hi[32], list[128];
    int64_t v = 0;
    int rc = 0, b = 0;

    show(text, len, shown, sizeof shown);
    if (memchr(text, '\0', len)) {
        snprintf(why, why_cap, "the value contains a NUL byte");
        return SL_EINVAL;
    }
    switch (s->type) {
    case T_STRING: {
        if ((int64_t)len < s->min || (int64_t)len > s->max) {
            if (len == 0)
                snprintf(why, why_cap, "must not be empty");
            else
                snprintf(why, why_cap, "is longer than %lld bytes", (long long)s->max);
            return SL_EINVAL;
        }
        char *copy = sl_strndup(text, len);
        if (!copy)
            return SL_ENOMEM;
        char **slot = field(base, s);
        sl_free(*slot);
        *slot = copy;
        return 0;
    }
    case T_BOOL:
        if (parse_bool(text, len, &b) != 0) {
            snprintf(why, why_cap, "expected true or false (or yes/no, on/off, 1/0), got '%s'",
                     shown);
            return SL_EINVAL;
        }
        *(int *)field(base, s) = b;
        return 0;
    case T_ENUM:
        for (int i = 0; s->names[i]; i++) {
            if (eq_ci(text, len, s->names[i])) {
                *(int64_t *)field(base, s) = i;
                return 0;
            }
        }
        snprintf(why, why_cap, "expected one of %s; got '%s'",
                 enum_list(s, ", ", "", list, sizeof list), shown);
        return SL_EINVAL;
    case T_INT:
        rc = parse_int(text, len, &v);
        if (rc == -1) {
            snprintf(why, why_cap, "expected an integer, got '%s'", shown);
            return SL_EINVAL;
        }
        break;
    case T_SIZE:
        rc = parse_with_unit(text, len, size_units, &v);
        if (rc == -1) {
            snprintf(why, why_cap, "expected a size such as 4096, 64k, 16MB or 1g, got '%s'",
                     shown);
            return SL_EINVAL;
        }
        break;
    case T_DURATION:
        rc = parse_with_unit(text, len, duration_units, &v);
        if (rc == -1) {
            snprintf(why, why_cap,
                     "expected a duration such as 500ms, 5s, 2m or 1h (a plain number is "
                     "milliseconds), got '%s'",
                     shown);
            return SL_EINVAL;
        }
        break;
    }
    /* Numeric types: one range check for all, with bounds in the type's units. */
    if (rc == -2 || v < s->min || v > s->max) {
        snprintf(why, why_cap, "'%s' is out of range (%s..%s)", shown,
                 fmt_bound(s, s->min, lo, sizeof lo), fmt_bound(s, s->max, hi, sizeof hi));
        return SL_EINVAL;
    }
    *(int64_t *)field(base, s) = v;
    return 0;
}

/* Sets every slot of a table to its default. 0, SL_ENOMEM or SL_EINVAL (bad table). */
static int table_defaults(const slot_t *t, size_t n, void *base)
{
    char why[256];
    for (size_t i = 0; i < n; i++) {
        int rc = slot_set(&t[i], base, t[i].def, strlen(t[i].def), why, sizeof why);
        if (rc == SL_EINVAL) /* a programming error in the table; the unit test catches it */
            SL_LOGE(NULL, "config: bad default for %s.%s: %s", t[i].section ? t[i].section : "app",
                    t[i].key, why);
        if (rc)
            return rc;
    }
    return 0;
}

static void table_free(const slot_t *t, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i].type == T_STRING) {
            char **p = field(base, &t[i]);
            sl_free(*p);
            *p = NULL;
        }
    }
}

static int table_equal(const slot_t *t, size_t n, const void *a, const void *b)
{
    for (size_t i = 0; i < n; i++) {
        const void *fa = cfield(a, &t[i]), *fb = cfield(b, &t[i]);
        switch (t[i].type) {
        case T_STRING: {
            const char *sa = *(char *const *)fa, *sb = *(char *const *)fb;
            if ((sa == NULL) != (sb == NULL) || (sa && strcmp(sa, sb) != 0))
                return 0;
            break;
        }
        case T_BOOL:
            if (*(const int *)fa != *(const int *)fb)
                return 0;
            break;
        default:
            if (*(const int64_t *)fa != *(const int64_t *)fb)
                return 0;
            break;
        }
    }
    return 1;
}

/* ---- apps ------------------------------------------------------------- */

static bool app_name_valid(const char *s, size_t len)
{
    if (len < 1 || len > SL_CONFIG_APP_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* Index of the app named s[0..len) (exactly, or ignoring case), or -1. */
static long app_find(const sl_config_t *cfg, const char *s, size_t len, bool ci)
{
    for (size_t i = 0; i < cfg->n_apps; i++)
        if (ci ? eq_ci(s, len, cfg->apps[i].name) : eq(s, len, cfg->apps[i].name))
            return (long)i;
    return -1;
}

/*
 * Appends an app with default settings; the name is copied (lower-cased if
 * asked). Returns 0 with its index in *idx, SL_ETOOBIG past
 * SL_CONFIG_MAX_APPS, or SL_ENOMEM (cfg unchanged apart from capacity).
 */
static int app_add(sl_config_t *cfg, const char *name, size_t len, bool lower, size_t *idx)
{
    if (cfg->n_apps >= SL_CONFIG_MAX_APPS)
        return SL_ETOOBIG;
    sl_app_config_t *apps = sl_realloc(cfg->apps, (cfg->n_apps + 1) * sizeof *apps);
    if (!apps)
        return SL_ENOMEM;
    cfg->apps = apps;
    sl_app_config_t *app = &apps[cfg->n_apps];
    memset(app, 0, sizeof *app);
    int rc = SL_ENOMEM;
    app->name = sl_strndup(name, len);
    if (!app->name)
        goto fail;
    for (size_t i = 0; lower && i < len; i++)
        app->name[i] = (char)tolower((unsigned char)app->name[i]);
    rc = table_defaults(g_app_slots, N_APP_SLOTS, app);
    if (rc)
        goto fail;
    *idx = cfg->n_apps++;
    return 0;
fail:
    table_free(g_app_slots, N_APP_SLOTS, app);
    sl_free(app->name);
    app->name = NULL;
    return rc;
}

/* Why app_add failed, for a report; SL_ENOMEM also marks the sink. */
static void app_add_failed(sink_t *sk, int line, int rc)
{
    if (rc == SL_ENOMEM) {
        sk->nomem = 1;
        report(sk, line, "out of memory");
    } else {
        report(sk, line, "too many apps (at most %d)", SL_CONFIG_MAX_APPS);
    }
}

/* ---- public: lifetime ------------------------------------------------- */

/*
 * Fills cfg with every default from g_slots plus the app `live` with the
 * g_app_slots defaults. See config.h for the contract.
 */
int sl_config_defaults(sl_config_t *cfg)
{
    size_t idx;
    memset(cfg, 0, sizeof *cfg);
    int rc = table_defaults(g_slots, N_SLOTS, cfg);
    if (rc)
        goto fail;
    rc = app_add(cfg, "live", 4, false, &idx);
    if (rc)
        goto fail;
    return 0;
fail:
    sl_config_cleanup(cfg);
    return rc;
}

static void plugins_free(sl_config_t *cfg); /* the plugins block, below */
static int plugins_equal(const sl_config_t *a, const sl_config_t *b);

/* Frees every string slot, every app and the apps array; zeroes cfg. */
void sl_config_cleanup(sl_config_t *cfg)
{
    if (!cfg)
        return;
    table_free(g_slots, N_SLOTS, cfg);
    for (size_t i = 0; i < cfg->n_apps; i++) {
        table_free(g_app_slots, N_APP_SLOTS, &cfg->apps[i]);
        sl_free(cfg->apps[i].name);
    }
    sl_free(cfg->apps);
    plugins_free(cfg);
    for (size_t i = 0; i < cfg->n_origins; i++) {
        sl_free(cfg->origins[i].key);
        sl_free(cfg->origins[i].where);
    }
    sl_free(cfg->origins);
    memset(cfg, 0, sizeof *cfg);
}

/*
 * Remembers that label.key was set at where:line. Records are only appended
 * (a later setting of the same key is found first, as its value replaced the
 * value), so loading stays linear however many keys a file sets. 0 or
 * SL_ENOMEM (like every other allocation of a load: the load then fails).
 */
static int origin_note(sl_config_t *cfg, const char *label, const char *key, const char *where,
                       int line)
{
    char full[SL_CONFIG_APP_NAME_MAX + 96];
    snprintf(full, sizeof full, "%s.%s", label, key);
    if (cfg->n_origins == cfg->cap_origins) {
        size_t cap = cfg->cap_origins ? cfg->cap_origins * 2 : 32;
        sl_config_origin_t *grown = sl_realloc(cfg->origins, cap * sizeof *grown);
        if (!grown)
            return SL_ENOMEM;
        cfg->origins = grown;
        cfg->cap_origins = cap;
    }
    sl_config_origin_t *o = &cfg->origins[cfg->n_origins];
    o->key = sl_strdup(full);
    o->where = sl_strdup(where ? where : "");
    o->line = line;
    if (!o->key || !o->where) {
        sl_free(o->key);
        sl_free(o->where);
        return SL_ENOMEM;
    }
    cfg->n_origins++;
    return 0;
}

/* Newest record first; read only when something is wrong. */
const char *sl_config_origin(const sl_config_t *cfg, const char *key, int *line)
{
    for (size_t i = cfg && key ? cfg->n_origins : 0; i-- > 0;) {
        if (strcmp(cfg->origins[i].key, key) == 0) {
            if (line)
                *line = cfg->origins[i].line;
            return cfg->origins[i].where;
        }
    }
    if (line)
        *line = 0;
    return NULL;
}

/* Formats the message and hands it to err at key's origin (see config.h). */
void sl_config_report(const sl_config_t *cfg, const char *key, sl_config_err_cb err, void *ud,
                      const char *fmt, ...)
{
    char msg[600], body[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    int line = 0;
    const char *where = sl_config_origin(cfg, key, &line);
    if (!err)
        return;
    if (where) {
        snprintf(msg, sizeof msg, "%s: %s", key, body);
        err(ud, where, line, msg);
    } else {
        err(ud, key, 0, body);
    }
}

/* Linear search: a handful of apps, looked up once per connection. */
const sl_app_config_t *sl_config_app(const sl_config_t *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    long i = app_find(cfg, name, strlen(name), false);
    return i < 0 ? NULL : &cfg->apps[i];
}

/* Compares both tables' slots, then apps by name (order does not matter). */
int sl_config_equal(const sl_config_t *a, const sl_config_t *b)
{
    if (!table_equal(g_slots, N_SLOTS, a, b) || a->n_apps != b->n_apps || !plugins_equal(a, b))
        return 0;
    for (size_t i = 0; i < a->n_apps; i++) {
        const sl_app_config_t *other = sl_config_app(b, a->apps[i].name);
        if (!other || !table_equal(g_app_slots, N_APP_SLOTS, &a->apps[i], other))
            return 0;
    }
    return 1;
}

/* ---- YAML loader ------------------------------------------------------ */

typedef struct {
    yaml_parser_t parser;
    yaml_event_t ev;   /* the current event, valid while have_ev */
    int have_ev;
    int stop;          /* syntax error or ENOMEM: no further events */
    sink_t sk;
    sl_config_t *cfg;
    const char *input; /* the whole input, to turn a reader error offset into a line */
    size_t input_len;
} loader_t;

/* A mapping key, copied out of its event (the event is gone by the value). */
typedef struct {
    char text[SL_CONFIG_APP_NAME_MAX + 2]; /* raw bytes, NUL-terminated if short enough */
    size_t len;                            /* real length; > sizeof text - 1 means truncated */
    char shown[72];                        /* printable form for messages */
    int line;
} ykey_t;

static int ev_line(const loader_t *ld)
{
    size_t l = ld->ev.start_mark.line;
    return l >= INT_MAX ? INT_MAX : (int)l + 1;
}

static int line_of_offset(const loader_t *ld, size_t offset)
{
    int line = 1;
    for (size_t i = 0; i < offset && i < ld->input_len; i++)
        if (ld->input[i] == '\n' && line < INT_MAX)
            line++;
    return line;
}

/* Reports why libyaml stopped; nothing can be parsed after this. */
static void syntax_error(loader_t *ld)
{
    yaml_parser_t *p = &ld->parser;
    const char *problem = p->problem ? p->problem : "malformed input";
    size_t pl = p->problem_mark.line, cl = p->context_mark.line;
    int line = pl >= INT_MAX ? INT_MAX : (int)pl + 1;

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        ld->sk.nomem = 1;
        report(&ld->sk, 0, "out of memory while parsing YAML");
        break;
    case YAML_READER_ERROR:
        /* The reader knows only a byte offset; count lines ourselves. */
        report(&ld->sk, line_of_offset(ld, p->problem_offset),
               "unreadable input: %s (byte %zu)", problem, p->problem_offset);
        break;
    default:
        if (p->context && cl != pl)
            report(&ld->sk, line, "YAML syntax error: %s (%s that starts at line %zu)", problem,
                   p->context, cl + 1);
        else if (p->context)
            report(&ld->sk, line, "YAML syntax error: %s (%s)", problem, p->context);
        else
            report(&ld->sk, line, "YAML syntax error: %s", problem);
        break;
    }
}

/* Replaces the current event by the next one. 0, or -1 when parsing is over. */
static int next_event(loader_t *ld)
{
    if (ld->have_ev) {
        yaml_event_delete(&ld->ev);
        ld->have_ev = 0;
    }
    if (ld->stop)
        return -1;
    if (!yaml_parser_parse(&ld->parser, &ld->ev)) {
        syntax_error(ld);
        ld->stop = 1;
        return -1;
    }
    ld->have_ev = 1;
    return 0;
}

/*
 * Consumes the node whose first event is current (a scalar or alias is one
 * event; a collection runs to its matching end). Nesting past
 * SL_CONFIG_MAX_DEPTH is reported and stops the load: no sluice setting
 * nests, so such input is hostile or broken.
 */
static int skip_node(loader_t *ld)
{
    int depth = 0;
    do {
        switch (ld->ev.type) {
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (++depth > SL_CONFIG_MAX_DEPTH) {
                report(&ld->sk, ev_line(ld), "YAML nested deeper than %d levels",
                       SL_CONFIG_MAX_DEPTH);
                ld->stop = 1;
                return -1;
            }
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
        if (depth == 0)
            return 0;
    } while (next_event(ld) == 0);
    return -1;
}

/* A plain scalar that YAML would read as null: `key:`, `key: ~`, `key: null`. */
static bool ev_is_null(const loader_t *ld)
{
    if (ld->ev.type != YAML_SCALAR_EVENT || ld->ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)ld->ev.data.scalar.value;
    size_t len = ld->ev.data.scalar.length;
    return len == 0 || eq(s, len, "~") || eq(s, len, "null") || eq(s, len, "Null") ||
           eq(s, len, "NULL");
}

static const char *node_kind(const loader_t *ld)
{
    switch (ld->ev.type) {
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_SEQUENCE_START_EVENT: return "a list";
    case YAML_ALIAS_EVENT: return "an alias (anchors and aliases are not supported)";
    default: return "a scalar";
    }
}

/*
 * Reads the current event as a mapping key into k and advances to the value.
 * A key that is not a scalar is reported and skipped with its value.
 * Returns 0 when k is set and the value event is current; 1 when the entry
 * was skipped; -1 when parsing is over.
 */
static int read_key(loader_t *ld, ykey_t *k)
{
    if (ld->ev.type != YAML_SCALAR_EVENT) {
        report(&ld->sk, ev_line(ld), "a key must be a plain name, not %s", node_kind(ld));
        if (skip_node(ld) || next_event(ld) || skip_node(ld))
            return -1;
        return 1;
    }
    const char *s = (const char *)ld->ev.data.scalar.value;
    k->len = ld->ev.data.scalar.length;
    size_t n = k->len < sizeof k->text - 1 ? k->len : sizeof k->text - 1;
    memcpy(k->text, s, n);
    k->text[n] = '\0';
    show(s, k->len, k->shown, sizeof k->shown);
    k->line = ev_line(ld);
    return next_event(ld) ? -1 : 0;
}

/* True when key k is exactly word (a truncated or NUL-holding key never is). */
static bool key_is(const ykey_t *k, const char *word)
{
    return k->len < sizeof k->text && eq(k->text, k->len, word);
}

/* Applies the current (value) event to slot s of base; label is "rtmp" or "apps.live". */
static void apply_value(loader_t *ld, const slot_t *s, void *base, const char *label)
{
    char why[256];
    int line = ev_line(ld);
    if (ld->ev.type != YAML_SCALAR_EVENT) {
        report(&ld->sk, line, "%s.%s takes a single value, not %s", label, s->key, node_kind(ld));
        skip_node(ld);
        return;
    }
    const char *text = (const char *)ld->ev.data.scalar.value;
    size_t len = ld->ev.data.scalar.length;
    /* `node_name:` means an empty string; `port:` or `x: ~` is a forgotten value. */
    if (ev_is_null(ld) && !(s->type == T_STRING && len == 0)) {
        report(&ld->sk, line, "%s.%s has no value%s", label, s->key,
               s->type == T_STRING ? " (write \"\" for an empty string)" : "");
        return;
    }
    int rc = slot_set(s, base, text, len, why, sizeof why);
    if (rc == SL_ENOMEM) {
        ld->sk.nomem = 1;
        ld->stop = 1;
        report(&ld->sk, line, "out of memory");
    } else if (rc) {
        report(&ld->sk, line, "%s.%s: %s", label, s->key, why);
    } else if (origin_note(ld->cfg, label, s->key, ld->sk.where, line)) {
        ld->sk.nomem = 1;
        ld->stop = 1;
        report(&ld->sk, line, "out of memory");
    }
}

/*
 * Parses the current node as a mapping of key -> scalar for the slots of
 * table t whose section is `section` (all of them when NULL), storing into
 * base. Unknown and duplicate keys are reported; a duplicate is ignored so
 * that the first value wins (and the report points at both lines).
 */
static void parse_mapping(loader_t *ld, const slot_t *t, size_t n, const char *section,
                          void *base, const char *label)
{
    int first_line[MAX_TABLE] = {0};
    if (ev_is_null(ld)) /* `rtmp:` with every key commented out */
        return;
    if (ld->ev.type != YAML_MAPPING_START_EVENT) {
        report(&ld->sk, ev_line(ld), "%s must be a mapping of key: value, not %s", label,
               node_kind(ld));
        skip_node(ld);
        return;
    }
    while (next_event(ld) == 0 && ld->ev.type != YAML_MAPPING_END_EVENT) {
        ykey_t k;
        int rc = read_key(ld, &k);
        if (rc < 0)
            return;
        if (rc > 0)
            continue;
        size_t i;
        for (i = 0; i < n; i++)
            if ((!section || strcmp(t[i].section, section) == 0) && key_is(&k, t[i].key))
                break;
        if (i == n) {
            hint_t h = {.dist = SIZE_MAX};
            for (size_t j = 0; j < n; j++)
                if (!section || strcmp(t[j].section, section) == 0)
                    hint_try(&h, k.text, k.len, t[j].key);
            report(&ld->sk, k.line, "unknown key '%s.%s'%s%s%s", label, k.shown,
                   h.best[0] ? " (did you mean '" : "", h.best, h.best[0] ? "'?)" : "");
            skip_node(ld);
            continue;
        }
        if (first_line[i]) {
            report(&ld->sk, k.line, "duplicate key '%s.%s' (first set at line %d); ignored",
                   label, t[i].key, first_line[i]);
            skip_node(ld);
            continue;
        }
        first_line[i] = k.line;
        apply_value(ld, &t[i], base, label);
    }
}

/*
 * Parses `apps:`: a mapping of app name -> mapping of per-app settings.
 * Named apps are created with defaults when absent; `live` is already there
 * from sl_config_defaults. Names that differ only in case from an existing
 * app are refused, because SLUICE_APP_<NAME>_* could not tell them apart.
 */
static void parse_apps(loader_t *ld)
{
    int first_line[SL_CONFIG_MAX_APPS] = {0}; /* by app index, within this file */
    if (ev_is_null(ld))
        return;
    if (ld->ev.type != YAML_MAPPING_START_EVENT) {
        report(&ld->sk, ev_line(ld), "apps must be a mapping of app name: settings, not %s",
               node_kind(ld));
        skip_node(ld);
        return;
    }
    while (next_event(ld) == 0 && ld->ev.type != YAML_MAPPING_END_EVENT) {
        ykey_t k;
        char label[SL_CONFIG_APP_NAME_MAX + 8];
        size_t idx;
        int rc = read_key(ld, &k);
        if (rc < 0)
            return;
        if (rc > 0)
            continue;
        if (k.len >= sizeof k.text || !app_name_valid(k.text, k.len)) {
            report(&ld->sk, k.line,
                   "invalid app name '%s': use 1 to %d letters, digits, '_' or '-'", k.shown,
                   SL_CONFIG_APP_NAME_MAX);
            skip_node(ld);
            continue;
        }
        long found = app_find(ld->cfg, k.text, k.len, false);
        if (found < 0 && (found = app_find(ld->cfg, k.text, k.len, true)) >= 0) {
            report(&ld->sk, k.line,
                   "app '%s' differs from app '%s' only in case; app names must differ "
                   "ignoring case",
                   k.shown, ld->cfg->apps[found].name);
            skip_node(ld);
            continue;
        }
        if (found >= 0 && first_line[found]) {
            report(&ld->sk, k.line, "duplicate app '%s' (first at line %d); ignored", k.shown,
                   first_line[found]);
            skip_node(ld);
            continue;
        }
        if (found < 0) {
            rc = app_add(ld->cfg, k.text, k.len, false, &idx);
            if (rc) {
                app_add_failed(&ld->sk, k.line, rc);
                if (rc == SL_ENOMEM) {
                    ld->stop = 1;
                    return;
                }
                skip_node(ld);
                continue;
            }
            found = (long)idx;
        }
        first_line[found] = k.line;
        snprintf(label, sizeof label, "apps.%s", ld->cfg->apps[found].name);
        /* No app is added while its body is parsed, so the pointer stays valid. */
        parse_mapping(ld, g_app_slots, N_APP_SLOTS, NULL, &ld->cfg->apps[found], label);
    }
}

/* ---- plugins ---------------------------------------------------------- */
/*
 * `plugins:` is a list of entries {name, path, apps, settings}, not a table
 * of slots: settings are free key/value strings only the plugin knows. The
 * block below is all of it (parse, free, compare, document); the rest of
 * this file only calls in.
 */

/* Frees every plugin entry and the array. */
static void plugins_free(sl_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_plugins; i++) {
        sl_plugin_config_t *p = &cfg->plugins[i];
        sl_free(p->name);
        sl_free(p->path);
        for (size_t j = 0; j < p->n_apps; j++)
            sl_free(p->apps[j]);
        sl_free(p->apps);
        for (size_t j = 0; j < 2 * p->n_settings; j++)
            sl_free(p->settings[j]);
        sl_free(p->settings);
    }
    sl_free(cfg->plugins);
    cfg->plugins = NULL;
    cfg->n_plugins = 0;
}

static bool str_eq_null(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* 1 when both lists hold the same entries in the same order (load order matters). */
static int plugins_equal(const sl_config_t *a, const sl_config_t *b)
{
    if (a->n_plugins != b->n_plugins)
        return 0;
    for (size_t i = 0; i < a->n_plugins; i++) {
        const sl_plugin_config_t *x = &a->plugins[i], *y = &b->plugins[i];
        if (!str_eq_null(x->name, y->name) || !str_eq_null(x->path, y->path) ||
            x->n_apps != y->n_apps || x->n_settings != y->n_settings)
            return 0;
        for (size_t j = 0; j < x->n_apps; j++)
            if (strcmp(x->apps[j], y->apps[j]))
                return 0;
        for (size_t j = 0; j < 2 * x->n_settings; j++)
            if (strcmp(x->settings[j], y->settings[j]))
                return 0;
    }
    return 1;
}

/* The current event as a new string (a scalar of any style), or NULL (reported). */
static char *plugin_scalar(loader_t *ld, const char *what)
{
    if (ld->ev.type != YAML_SCALAR_EVENT) {
        report(&ld->sk, ev_line(ld), "%s must be a scalar, not %s", what, node_kind(ld));
        skip_node(ld);
        return NULL;
    }
    char *s = sl_strndup((const char *)ld->ev.data.scalar.value, ld->ev.data.scalar.length);
    if (!s)
        ld->sk.nomem = 1;
    return s;
}

/* Appends s (taken) to *arr of *n strings. 0 or SL_ENOMEM (s freed). */
static int plugin_push(loader_t *ld, char ***arr, size_t *n, char *s)
{
    char **grown = sl_realloc(*arr, (*n + 1) * sizeof *grown);
    if (!grown) {
        sl_free(s);
        ld->sk.nomem = 1;
        return SL_ENOMEM;
    }
    grown[(*n)++] = s;
    *arr = grown;
    return 0;
}

/* Parses one entry's mapping into p (already zeroed and counted). */
static void parse_plugin_entry(loader_t *ld, sl_plugin_config_t *p)
{
    while (next_event(ld) == 0 && ld->ev.type != YAML_MAPPING_END_EVENT) {
        ykey_t k;
        int rc = read_key(ld, &k);
        if (rc < 0)
            return;
        if (rc > 0)
            continue;
        if (key_is(&k, "name") || key_is(&k, "path")) {
            char **dst = key_is(&k, "name") ? &p->name : &p->path;
            char *v = plugin_scalar(ld, key_is(&k, "name") ? "plugins[].name" : "plugins[].path");
            if (v) {
                sl_free(*dst);
                *dst = v;
            }
        } else if (key_is(&k, "apps")) {
            if (ld->ev.type == YAML_SCALAR_EVENT) { /* one app */
                char *v = plugin_scalar(ld, "plugins[].apps");
                if (v && v[0])
                    plugin_push(ld, &p->apps, &p->n_apps, v);
                else
                    sl_free(v);
                continue;
            }
            if (ld->ev.type != YAML_SEQUENCE_START_EVENT) {
                report(&ld->sk, k.line, "plugins[].apps must be a list of app names, not %s",
                       node_kind(ld));
                skip_node(ld);
                continue;
            }
            while (next_event(ld) == 0 && ld->ev.type != YAML_SEQUENCE_END_EVENT) {
                char *v = plugin_scalar(ld, "plugins[].apps[]");
                if (v)
                    plugin_push(ld, &p->apps, &p->n_apps, v);
            }
        } else if (key_is(&k, "settings")) {
            if (ev_is_null(ld))
                continue;
            if (ld->ev.type != YAML_MAPPING_START_EVENT) {
                report(&ld->sk, k.line, "plugins[].settings must be a mapping of key: value, not %s",
                       node_kind(ld));
                skip_node(ld);
                continue;
            }
            while (next_event(ld) == 0 && ld->ev.type != YAML_MAPPING_END_EVENT) {
                ykey_t sk;
                rc = read_key(ld, &sk);
                if (rc < 0)
                    return;
                if (rc > 0)
                    continue;
                char *v = plugin_scalar(ld, "a plugin setting");
                if (!v)
                    continue;
                if (p->n_settings >= SL_CONFIG_MAX_PLUGIN_SETTINGS || sk.len >= sizeof sk.text) {
                    report(&ld->sk, sk.line, "plugin setting '%s' ignored (too many, or name too long)",
                           sk.shown);
                    sl_free(v);
                    continue;
                }
                char *key = sl_strdup(sk.text);
                size_t n2 = 2 * p->n_settings;
                if (!key || plugin_push(ld, &p->settings, &n2, key) ||
                    plugin_push(ld, &p->settings, &n2, v)) {
                    if (!key)
                        sl_free(v), ld->sk.nomem = 1;
                    return;
                }
                p->n_settings++;
            }
        } else {
            report(&ld->sk, k.line,
                   "unknown key '%s' in a plugin entry (name, path, apps, settings)", k.shown);
            skip_node(ld);
        }
    }
}

/*
 * Parses `plugins:`: a list of mappings. Each entry needs a valid, unique
 * name and a path; a later file's list replaces an earlier one's whole.
 */
static void parse_plugins(loader_t *ld)
{
    plugins_free(ld->cfg);
    if (ev_is_null(ld))
        return;
    if (ld->ev.type != YAML_SEQUENCE_START_EVENT) {
        report(&ld->sk, ev_line(ld),
               "plugins must be a list of {name, path, apps, settings}, not %s", node_kind(ld));
        skip_node(ld);
        return;
    }
    while (next_event(ld) == 0 && ld->ev.type != YAML_SEQUENCE_END_EVENT) {
        int line = ev_line(ld);
        if (ld->ev.type != YAML_MAPPING_START_EVENT) {
            report(&ld->sk, line, "a plugin entry must be a mapping {name, path, ...}, not %s",
                   node_kind(ld));
            skip_node(ld);
            continue;
        }
        if (ld->cfg->n_plugins >= SL_CONFIG_MAX_PLUGINS) {
            report(&ld->sk, line, "too many plugins (at most %d)", SL_CONFIG_MAX_PLUGINS);
            skip_node(ld);
            continue;
        }
        sl_plugin_config_t *grown =
            sl_realloc(ld->cfg->plugins, (ld->cfg->n_plugins + 1) * sizeof *grown);
        if (!grown) {
            ld->sk.nomem = 1;
            ld->stop = 1;
            return;
        }
        ld->cfg->plugins = grown;
        sl_plugin_config_t *p = &grown[ld->cfg->n_plugins++];
        memset(p, 0, sizeof *p);
        p->line = line;
        parse_plugin_entry(ld, p);
        if (ld->stop || ld->sk.nomem)
            return;
        if (!p->name || !app_name_valid(p->name, strlen(p->name))) {
            report(&ld->sk, line, "a plugin needs a name of 1 to %d letters, digits, '_' or '-'",
                   SL_CONFIG_APP_NAME_MAX);
        } else if (!p->path || !p->path[0]) {
            report(&ld->sk, line, "plugin '%s' needs a path (its .so file)", p->name);
        } else {
            for (size_t i = 0; i + 1 < ld->cfg->n_plugins; i++)
                if (strcmp(ld->cfg->plugins[i].name, p->name) == 0)
                    report(&ld->sk, line, "duplicate plugin name '%s' (first at line %d)",
                           p->name, ld->cfg->plugins[i].line);
            if (origin_note(ld->cfg, "plugins", p->name, ld->sk.where, line))
                ld->sk.nomem = 1;
        }
    }
}

static const char plugins_doc[] =
    "Plugins: shared objects loaded at start (docs/plugins.md). Each entry is\n"
    "{name, path, apps, settings}: a unique name, the .so file, the apps it serves\n"
    "(a list; none = every app) and free key: value settings only the plugin reads.\n"
    "A plugin built for another ABI, or one that fails to start, stops sluice at start.\n";

/* The commented `plugins:` block of the shipped sluice.yml (parses back to no plugins). */
static void plugins_write_yaml(FILE *out)
{
    fputs("\n", out);
    for (const char *s = plugins_doc; *s;) {
        const char *nl = strchr(s, '\n');
        fprintf(out, "# %.*s\n", (int)(nl - s), s);
        s = nl + 1;
    }
    fputs("# Example:\n"
          "#   plugins:\n"
          "#     - name: hello\n"
          "#       path: /usr/local/lib/sluice/plugins/hello.so\n"
          "#       apps: [live]\n"
          "#       settings: {greeting: hi}\n"
          "plugins: []\n",
          out);
}

/* The `plugins` section of docs/config.md. */
static void plugins_write_markdown(FILE *out)
{
    fprintf(out, "\n## plugins\n\n%s\n", plugins_doc);
    fputs("| key | meaning |\n|---|---|\n"
          "| `name` | unique name, 1 to 64 of `A-Z a-z 0-9 _ -`; the plugin logs under it |\n"
          "| `path` | the shared object to load (dlopen) |\n"
          "| `apps` | list of apps the plugin serves (events, admission, routes); empty = every app |\n"
          "| `settings` | mapping of key: value strings handed to the plugin (`api->setting`) |\n"
          "\n"
          "```yaml\n"
          "plugins:\n"
          "  - name: hello\n"
          "    path: /usr/local/lib/sluice/plugins/hello.so\n"
          "    apps: [live]\n"
          "    settings: {greeting: hi}\n"
          "```\n"
          "\n"
          "`plugins` cannot be set by environment variables.\n",
          out);
}

/* Parses the document's root node: a mapping of section name -> section. */
static void parse_root(loader_t *ld)
{
    int first_line[N_SECTIONS + 1] = {0};
    if (ev_is_null(ld)) /* a document holding only `---` */
        return;
    if (ld->ev.type != YAML_MAPPING_START_EVENT) {
        char names[512];
        section_names(names, sizeof names, "");
        report(&ld->sk, ev_line(ld), "the top level must be a mapping of sections (%s), not %s",
               names, node_kind(ld));
        skip_node(ld);
        return;
    }
    while (next_event(ld) == 0 && ld->ev.type != YAML_MAPPING_END_EVENT) {
        ykey_t k;
        int rc = read_key(ld, &k);
        if (rc < 0)
            return;
        if (rc > 0)
            continue;
        if (key_is(&k, "plugins")) { /* a list, not a section of slots (see parse_plugins) */
            parse_plugins(ld);
            continue;
        }
        int si = key_is(&k, "apps") ? APPS_SECTION : -1;
        for (size_t i = 0; si < 0 && i < N_SECTIONS; i++)
            if (key_is(&k, g_sections[i].name))
                si = (int)i;
        if (si < 0) {
            hint_t h = {.dist = SIZE_MAX};
            for (size_t i = 0; i < N_SECTIONS; i++)
                hint_try(&h, k.text, k.len, g_sections[i].name);
            hint_try(&h, k.text, k.len, "apps");
            hint_try(&h, k.text, k.len, "plugins");
            report(&ld->sk, k.line, "unknown section '%s'%s%s%s", k.shown,
                   h.best[0] ? " (did you mean '" : "", h.best, h.best[0] ? "'?)" : "");
            skip_node(ld);
            continue;
        }
        if (first_line[si]) {
            report(&ld->sk, k.line, "duplicate section '%s' (first at line %d); ignored",
                   k.shown, first_line[si]);
            skip_node(ld);
            continue;
        }
        first_line[si] = k.line;
        if (si == APPS_SECTION)
            parse_apps(ld);
        else
            parse_mapping(ld, g_slots, N_SLOTS, g_sections[si].name, ld->cfg,
                          g_sections[si].name);
    }
}

/* Walks the event stream: at most one document, whose root is parse_root's. */
static void parse_stream(loader_t *ld)
{
    if (next_event(ld) || ld->ev.type != YAML_STREAM_START_EVENT)
        return;
    if (next_event(ld) || ld->ev.type != YAML_DOCUMENT_START_EVENT)
        return; /* STREAM_END: an empty file or only comments changes nothing */
    if (next_event(ld))
        return;
    parse_root(ld);
    if (next_event(ld) || ld->ev.type != YAML_DOCUMENT_END_EVENT)
        return;
    if (next_event(ld) || ld->ev.type != YAML_DOCUMENT_START_EVENT)
        return;
    report(&ld->sk, ev_line(ld), "only one YAML document is allowed; the rest is ignored");
    /* Still read to the end, so that syntax errors further on are reported too. */
    while (next_event(ld) == 0 && ld->ev.type != YAML_STREAM_END_EVENT)
        ;
}

/*
 * Parses yaml[0..len) over cfg. The input is borrowed for the call only.
 * See sl_config_load_file in config.h for the contract.
 */
int sl_config_load_string(sl_config_t *cfg, const char *yaml, size_t len, const char *where,
                          sl_config_err_cb err, void *ud)
{
    loader_t ld;
    memset(&ld, 0, sizeof ld);
    ld.sk.err = err;
    ld.sk.ud = ud;
    ld.sk.where = where ? where : "<string>";
    ld.cfg = cfg;
    ld.input = yaml ? yaml : "";
    ld.input_len = yaml ? len : 0;
    if (ld.input_len > SL_CONFIG_MAX_INPUT_BYTES) {
        report(&ld.sk, 0, "larger than %d bytes", SL_CONFIG_MAX_INPUT_BYTES);
        return SL_EINVAL;
    }
    if (!yaml_parser_initialize(&ld.parser))
        return SL_ENOMEM;
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)ld.input, ld.input_len);
    parse_stream(&ld);
    if (ld.have_ev)
        yaml_event_delete(&ld.ev);
    yaml_parser_delete(&ld.parser);
    if (ld.sk.nomem)
        return SL_ENOMEM;
    return ld.sk.n_problems ? SL_EINVAL : 0;
}

/*
 * Reads the whole file (capped at SL_CONFIG_MAX_INPUT_BYTES, so a wrong path
 * such as /dev/zero cannot eat memory) and parses it with
 * sl_config_load_string. Works on pipes too: no fstat, no seek.
 */
int sl_config_load_file(sl_config_t *cfg, const char *path, sl_config_err_cb err, void *ud)
{
    sink_t sk = {.err = err, .ud = ud, .where = path};
    size_t len = 0, cap = 16 * 1024;
    char *data = NULL;
    int rc;
    FILE *f = fopen(path, "rb");
    if (!f) {
        rc = errno ? -errno : SL_EIO;
        report(&sk, 0, "cannot open: %s", strerror(errno));
        return rc;
    }
    rc = SL_ENOMEM;
    data = sl_malloc(cap);
    if (!data)
        goto fail;
    for (;;) {
        if (len == cap) {
            if (cap > SL_CONFIG_MAX_INPUT_BYTES) {
                report(&sk, 0, "larger than %d bytes", SL_CONFIG_MAX_INPUT_BYTES);
                rc = SL_EINVAL;
                goto fail;
            }
            char *bigger = sl_realloc(data, cap * 2);
            if (!bigger)
                goto fail;
            data = bigger;
            cap *= 2;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        report(&sk, 0, "read error");
        rc = SL_EIO;
        goto fail;
    }
    rc = sl_config_load_string(cfg, data, len, path, err, ud);
fail:
    sl_free(data);
    fclose(f);
    return rc;
}

/* ---- environment ------------------------------------------------------ */

/* Variables the launcher and the e2e tests use; never settings. */
static const char *const g_env_reserved[] = {"BIN", "CONFIG", NULL};

/* True when name[0..len) is SECTION_KEY for slot s, ignoring case. */
static bool env_is_slot(const char *name, size_t len, const slot_t *s)
{
    size_t ls = strlen(s->section), lk = strlen(s->key);
    return len == ls + 1 + lk && strncasecmp(name, s->section, ls) == 0 && name[ls] == '_' &&
           strncasecmp(name + ls + 1, s->key, lk) == 0;
}

/* Upper-cases "SLUICE_" + parts joined by '_' into out. */
static const char *env_name(char *out, size_t cap, const char *a, const char *b)
{
    size_t n = (size_t)snprintf(out, cap, "SLUICE_%s%s%s", a, b ? "_" : "", b ? b : "");
    for (size_t i = 0; i < n && i < cap; i++)
        out[i] = (char)toupper((unsigned char)out[i]);
    return out;
}

/* Parses value into slot s of base, reporting against the variable in sk->where. */
static void env_set(sl_config_t *cfg, sink_t *sk, const slot_t *s, void *base, const char *label,
                    const char *value)
{
    char why[256];
    int rc = slot_set(s, base, value, strlen(value), why, sizeof why);
    if (rc == SL_ENOMEM) {
        sk->nomem = 1;
        report(sk, 0, "out of memory");
    } else if (rc) {
        report(sk, 0, "%s.%s: %s", label, s->key, why);
    } else if (origin_note(cfg, label, s->key, sk->where, 0)) {
        sk->nomem = 1;
        report(sk, 0, "out of memory");
    }
}

/* SLUICE_APPS=a,b: adds each app not already there (under any case). */
static void env_apps(sl_config_t *cfg, sink_t *sk, const char *value)
{
    const char *p = value;
    while (*p && !sk->nomem) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        size_t len = (size_t)(b - a), idx;
        char shown[72];
        if (len == 0) {
            /* "a,,b" or a trailing comma: harmless, skip it. */
        } else if (!app_name_valid(a, len)) {
            report(sk, 0, "invalid app name '%s': use 1 to %d letters, digits, '_' or '-'",
                   show(a, len, shown, sizeof shown), SL_CONFIG_APP_NAME_MAX);
        } else if (app_find(cfg, a, len, true) < 0) {
            int rc = app_add(cfg, a, len, false, &idx);
            if (rc)
                app_add_failed(sk, 0, rc);
        }
        p = *end ? end + 1 : end;
    }
}

/*
 * SLUICE_APP_<NAME>_<KEY>: rest is "<NAME>_<KEY>". Keys may hold '_' and so
 * may names, so every app key that ends rest is a candidate split; one
 * whose NAME is an existing app wins, then the longest key.
 */
static void env_app_key(sl_config_t *cfg, sink_t *sk, const char *rest, size_t len,
                        const char *value)
{
    const slot_t *best = NULL;
    size_t best_name_len = 0;
    bool best_exists = false;
    char shown[72], label[SL_CONFIG_APP_NAME_MAX + 8];

    for (size_t i = 0; i < N_APP_SLOTS; i++) {
        size_t lk = strlen(g_app_slots[i].key);
        if (len < lk + 2 || rest[len - lk - 1] != '_' ||
            strncasecmp(rest + len - lk, g_app_slots[i].key, lk) != 0)
            continue;
        size_t nl = len - lk - 1;
        bool exists = app_find(cfg, rest, nl, true) >= 0;
        if (!best || (exists && !best_exists) ||
            (exists == best_exists && lk > strlen(best->key))) {
            best = &g_app_slots[i];
            best_name_len = nl;
            best_exists = exists;
        }
    }
    if (!best) {
        hint_t h = {.dist = SIZE_MAX};
        const char *us = NULL;
        for (size_t i = 0; i < len; i++)
            if (rest[i] == '_')
                us = rest + i;
        if (us)
            for (size_t i = 0; i < N_APP_SLOTS; i++)
                hint_try(&h, us + 1, len - (size_t)(us + 1 - rest), g_app_slots[i].key);
        report(sk, 0,
               "unknown per-app setting: expected SLUICE_APP_<NAME>_<KEY> with KEY one of "
               "ENABLED, PUBLISH, PLAY%s%s%s",
               h.best[0] ? " (did you mean " : "", h.best, h.best[0] ? "?)" : "");
        return;
    }
    if (!app_name_valid(rest, best_name_len)) {
        report(sk, 0, "invalid app name '%s': use 1 to %d letters, digits, '_' or '-'",
               show(rest, best_name_len, shown, sizeof shown), SL_CONFIG_APP_NAME_MAX);
        return;
    }
    long found = app_find(cfg, rest, best_name_len, true);
    if (found < 0) {
        size_t idx;
        /* Env names are upper-case by convention; app names in URLs rarely are. */
        int rc = app_add(cfg, rest, best_name_len, true, &idx);
        if (rc) {
            app_add_failed(sk, 0, rc);
            return;
        }
        found = (long)idx;
    }
    snprintf(label, sizeof label, "apps.%s", cfg->apps[found].name);
    env_set(cfg, sk, best, &cfg->apps[found], label, value);
}

/* SLUICE_<SECTION>_<KEY>, or an unknown variable. */
static void env_key(sl_config_t *cfg, sink_t *sk, const char *name, size_t len, const char *value)
{
    char buf[96];
    hint_t h = {.dist = SIZE_MAX};
    for (size_t i = 0; i < N_SLOTS; i++) {
        if (env_is_slot(name, len, &g_slots[i])) {
            env_set(cfg, sk, &g_slots[i], cfg, g_slots[i].section, value);
            return;
        }
    }
    for (size_t i = 0; i < N_SLOTS; i++) {
        env_name(buf, sizeof buf, g_slots[i].section, g_slots[i].key);
        hint_try(&h, name, len, buf + 7);
    }
    hint_try(&h, name, len, "APPS");
    report(sk, 0, "unknown sluice variable%s%s%s; every setting is listed in docs/config.md",
           h.best[0] ? " (did you mean SLUICE_" : "", h.best, h.best[0] ? "?)" : "");
}

/*
 * Applies SLUICE_* variables in three passes (SLUICE_APPS, then section
 * settings, then per-app settings) so the result does not depend on the
 * order of envp. See config.h for the rules.
 */
int sl_config_apply_env(sl_config_t *cfg, char *const *envp, sl_config_err_cb err, void *ud)
{
    sink_t sk = {.err = err, .ud = ud};
    char where[128];
    for (int pass = 0; envp && pass < 3 && !sk.nomem; pass++) {
        for (char *const *e = envp; *e && !sk.nomem; e++) {
            const char *entry = *e, *eq_sign = strchr(entry, '=');
            if (!eq_sign || strncmp(entry, "SLUICE_", 7) != 0)
                continue;
            const char *name = entry + 7, *value = eq_sign + 1;
            size_t len = (size_t)(eq_sign - name);
            bool reserved = false;
            for (int i = 0; g_env_reserved[i]; i++)
                reserved |= eq_ci(name, len, g_env_reserved[i]);
            if (reserved)
                continue;
            bool is_apps = eq_ci(name, len, "APPS");
            bool is_app = !is_apps && len > 4 && strncasecmp(name, "APP_", 4) == 0;
            int want = is_apps ? 0 : is_app ? 2 : 1;
            if (want != pass)
                continue;
            sk.where = show(entry, (size_t)(eq_sign - entry), where, sizeof where);
            if (is_apps)
                env_apps(cfg, &sk, value);
            else if (is_app)
                env_app_key(cfg, &sk, name + 4, len - 4, value);
            else
                env_key(cfg, &sk, name, len, value);
        }
    }
    if (sk.nomem)
        return SL_ENOMEM;
    return sk.n_problems ? SL_EINVAL : 0;
}

/* ---- writers ---------------------------------------------------------- */

/* "integer, 1..65535", "size, 1KB..64MB", "one of: error, warn, ..." */
static const char *type_desc(const slot_t *s, bool markdown, char *out, size_t cap)
{
    char lo[32], hi[32], list[128];
    switch (s->type) {
    case T_BOOL:
        snprintf(out, cap, "bool");
        break;
    case T_STRING:
        if (s->min > 0)
            snprintf(out, cap, "string, not empty, at most %lld bytes", (long long)s->max);
        else
            snprintf(out, cap, "string, at most %lld bytes", (long long)s->max);
        break;
    case T_ENUM:
        snprintf(out, cap, "one of %s",
                 enum_list(s, markdown ? ", " : " | ", markdown ? "`" : "", list, sizeof list));
        break;
    default:
        snprintf(out, cap, "%s, %s..%s",
                 s->type == T_INT ? "integer" : s->type == T_SIZE ? "size" : "duration",
                 fmt_bound(s, s->min, lo, sizeof lo), fmt_bound(s, s->max, hi, sizeof hi));
        break;
    }
    return out;
}

/* A string default as YAML: plain when unambiguous, else double-quoted. */
static void yaml_value(FILE *out, const slot_t *s)
{
    const char *v = s->def;
    bool plain = s->type != T_STRING || (v[0] && v[0] != '-');
    for (const char *p = v; plain && *p; p++)
        plain = isalnum((unsigned char)*p) || strchr("._/-", *p);
    if (plain) {
        fputs(v, out);
        return;
    }
    fputc('"', out);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

static void yaml_slot(FILE *out, const slot_t *s, const char *indent, const char *env_a,
                      const char *env_b)
{
    char desc[160], env[96];
    fprintf(out, "%s# %s\n", indent, s->doc);
    fprintf(out, "%s# %s; env %s\n", indent, type_desc(s, false, desc, sizeof desc),
            env_name(env, sizeof env, env_a, env_b));
    fprintf(out, "%s%s: ", indent, s->key);
    yaml_value(out, s);
    fputc('\n', out);
}

/*
 * Writes the shipped sluice.yml: a header on overrides and value types, then
 * every section with every key at its default, each under its doc line and
 * its type/bounds/env line. The output parses back to exactly the defaults
 * (a unit test checks that, and that the shipped file is this output).
 */
void sl_config_write_yaml(FILE *out)
{
    fputs("# sluice.yml: the configuration of sluice, a live-streaming media server.\n"
          "#\n"
          "# Generated from the settings table in src/base/config.c (sluice --print-config\n"
          "# yaml), like docs/config.md, so the two always agree. Every setting is listed\n"
          "# with its default value; change what you need, delete what you do not.\n"
          "#\n"
          "# Environment variables override this file (they are applied after it):\n"
          "#   SLUICE_<SECTION>_<KEY>=value    e.g. SLUICE_RTMP_PORT=19350, SLUICE_LOG_LEVEL=debug\n"
          "#   SLUICE_APP_<NAME>_<KEY>=value   e.g. SLUICE_APP_LIVE_PUBLISH=false; NAME matches an\n"
          "#                                   app ignoring case, or creates it (lower-cased)\n"
          "#   SLUICE_APPS=name1,name2         adds apps with default settings\n"
          "# Names after SLUICE_ are matched ignoring case. An unknown SLUICE_ variable is an\n"
          "# error, so typos are caught; SLUICE_BIN and SLUICE_CONFIG are reserved.\n"
          "#\n"
          "# Value types:\n"
          "#   bool      true/false, yes/no, on/off, 1/0\n"
          "#   size      bytes: 4096, 64k, 16MB, 1g (k = 1024, m = 1024k, g = 1024m; b, kb, kib... too)\n"
          "#   duration  500ms, 5s, 2m, 1h; a plain number is milliseconds\n"
          "# A wrong type, an out-of-range value or an unknown key stops sluice at start with\n"
          "# the file name and line of every problem.\n",
          out);
    for (size_t si = 0; si < N_SECTIONS; si++) {
        fprintf(out, "\n# %s\n%s:\n", g_sections[si].doc, g_sections[si].name);
        for (size_t i = 0; i < N_SLOTS; i++)
            if (strcmp(g_slots[i].section, g_sections[si].name) == 0)
                yaml_slot(out, &g_slots[i], "  ", g_slots[i].section, g_slots[i].key);
    }
    fputs("\n# Apps (scopes): rtmp://host/{app}/{stream}. Each is `name: {settings}`, the name\n"
          "# 1 to 64 of A-Z a-z 0-9 _ - (names must also differ ignoring case). `live` exists\n"
          "# even when not listed here; turn it off with `live: {enabled: false}`.\n"
          "apps:\n"
          "  live:\n",
          out);
    for (size_t i = 0; i < N_APP_SLOTS; i++) {
        char key[64];
        snprintf(key, sizeof key, "<NAME>_%s", g_app_slots[i].key);
        yaml_slot(out, &g_app_slots[i], "    ", "APP", key);
    }
    plugins_write_yaml(out);
}

/* Writes text for a markdown table cell: '|' escaped, newlines flattened. */
static void md_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s == '\n' ? ' ' : *s, out);
    }
}

static void md_row(FILE *out, const slot_t *s, const char *env_a, const char *env_b)
{
    char desc[160], env[96];
    fprintf(out, "| `%s` | ", s->key);
    md_cell(out, type_desc(s, true, desc, sizeof desc));
    fprintf(out, " | `%s` | `%s` | ", s->def[0] ? s->def : "\"\"",
            env_name(env, sizeof env, env_a, env_b));
    md_cell(out, s->doc);
    fputs(" |\n", out);
}

static const char md_table_head[] = "| key | type | default | env variable | description |\n"
                                    "|---|---|---|---|---|\n";

/*
 * Writes docs/config.md: how configuration works, the value types, then one
 * table per section (key, type and bounds, default, env variable, doc).
 */
void sl_config_write_markdown(FILE *out)
{
    char names[1024];
    section_names(names, sizeof names, "`");
    fprintf(out,
          "# sluice configuration\n"
          "\n"
          "<!-- Generated from src/base/config.c by `sluice --print-config markdown`; do not\n"
          "     edit by hand (a unit test fails when this file and the table disagree). -->\n"
          "\n"
          "sluice reads one YAML file, `sluice.yml`. Its top-level keys are its %zu sections\n"
          "(%s); each section maps keys to values. Every key is\n"
          "optional: what is not set keeps its default. The shipped `sluice.yml` lists every\n"
          "key at its default with the same descriptions as this page. Keys are\n"
          "case-sensitive. Every problem (unknown section or key, duplicate key, wrong type,\n"
          "value out of range, invalid app name, YAML syntax error) is reported with its file\n"
          "and line, all of them in one run, and sluice does not start. So is every problem\n"
          "found after reading (a file named by a key that cannot be read, a certificate that\n"
          "does not load, a URL that is not http(s), an unknown webhook event name): at the\n"
          "line that set the key, by `sluice --check-config` too, before any listener opens.\n"
          "\n"
          "## Environment variables\n"
          "\n"
          "Environment variables are applied after the file and win over it:\n"
          "\n"
          "- `SLUICE_<SECTION>_<KEY>=value` sets one key, e.g. `SLUICE_RTMP_PORT=19350`,\n"
          "  `SLUICE_LOG_LEVEL=debug`, `SLUICE_MEDIA_QUEUE_MAX_BYTES=1MB`.\n"
          "- `SLUICE_APPS=name1,name2` adds apps with default settings (names as written;\n"
          "  an app that already exists under any case is left as it is).\n"
          "- `SLUICE_APP_<NAME>_<KEY>=value` sets one per-app key, e.g.\n"
          "  `SLUICE_APP_LIVE_PUBLISH=false`. `NAME` matches an existing app ignoring case;\n"
          "  when none matches, the app is created with the lower-cased name.\n"
          "- `SLUICE_BIN` and `SLUICE_CONFIG` are reserved and ignored here.\n"
          "- Any other `SLUICE_` variable is an error, so a typo cannot go unnoticed.\n"
          "\n"
          "Names after `SLUICE_` are matched ignoring case. `SLUICE_APPS` is applied first and\n"
          "per-app variables last, whatever their order in the environment.\n"
          "\n"
          "## Value types\n"
          "\n"
          "| type | accepted values |\n"
          "|---|---|\n"
          "| bool | `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0` (any case) |\n"
          "| integer | decimal digits, e.g. `1935` |\n"
          "| size | bytes with an optional unit, powers of 1024: `4096`, `64k`, `16MB`, `1g` "
          "(`k`/`kb`/`kib` = 1024, `m`/`mb`/`mib` = 1024k, `g`/`gb`/`gib` = 1024m, any case) |\n"
          "| duration | `500ms`, `5s`, `2m`, `1h`; a plain number is milliseconds |\n"
          "| string | any text; quote it (`\"\"`) when empty or when YAML would misread it |\n",
          N_SECTIONS + 1, names);
    for (size_t si = 0; si < N_SECTIONS; si++) {
        fprintf(out, "\n## %s\n\n%s\n\n%s", g_sections[si].name, g_sections[si].doc,
                md_table_head);
        for (size_t i = 0; i < N_SLOTS; i++)
            if (strcmp(g_slots[i].section, g_sections[si].name) == 0)
                md_row(out, &g_slots[i], g_slots[i].section, g_slots[i].key);
    }
    fputs("\n## apps\n"
          "\n"
          "Apps (scopes): `rtmp://host/{app}/{stream}`. `apps` maps each app name to its\n"
          "settings, e.g. `studio: {publish: true, play: false}`. Names are 1 to 64 of\n"
          "`A-Z a-z 0-9 _ -` and must differ ignoring case. The app `live` exists even when not\n"
          "listed; turn it off with `live: {enabled: false}`. Connections to an app that does\n"
          "not exist, or is disabled, are refused.\n"
          "\n",
          out);
    fputs(md_table_head, out);
    for (size_t i = 0; i < N_APP_SLOTS; i++) {
        char key[64];
        snprintf(key, sizeof key, "<NAME>_%s", g_app_slots[i].key);
        md_row(out, &g_app_slots[i], "APP", key);
    }
    plugins_write_markdown(out);
}
