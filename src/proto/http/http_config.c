/*
 * The settings table of the HTTP server (see http_config.h): keys, types, defaults,
 * bounds and docs, exactly as the YAML, the environment and the generated
 * docs show them.
 */
#include "proto/http/http_config.h"

#include <stddef.h>

static const sl_config_slot_t g_slots[] = {
    {"enabled", SL_CONFIG_BOOL, offsetof(sl_http_config_t, enabled), "true", 0, 0, NULL,
     "Serve HTTP: the REST API, metrics, the event stream and web pages.", SL_CONFIG_RESTART},
    {"bind", SL_CONFIG_STRING, offsetof(sl_http_config_t, bind), "0.0.0.0", 1, 255, NULL,
     "Address to listen on: 0.0.0.0 for every IPv4 address, :: for IPv6.", SL_CONFIG_RESTART},
    {"port", SL_CONFIG_INT, offsetof(sl_http_config_t, port), "5080", 1, 65535, NULL,
     "TCP port to listen on.", SL_CONFIG_RESTART},
    {"max_header_bytes", SL_CONFIG_SIZE, offsetof(sl_http_config_t, max_header_bytes), "16KB", 1 * SL_CONFIG_KB, 1 * SL_CONFIG_MB, NULL,
     "Largest request head (request line and headers); larger is answered 431.", SL_CONFIG_RESTART},
    {"max_headers", SL_CONFIG_INT, offsetof(sl_http_config_t, max_headers), "100", 1, 10000, NULL,
     "Most request headers; more are answered 431.", SL_CONFIG_RESTART},
    {"max_body_bytes", SL_CONFIG_SIZE, offsetof(sl_http_config_t, max_body_bytes), "1MB", 0, 1 * SL_CONFIG_GB, NULL,
     "Largest request body; larger is answered 413.", SL_CONFIG_RESTART},
    {"max_url_bytes", SL_CONFIG_SIZE, offsetof(sl_http_config_t, max_url_bytes), "8KB", 256, 1 * SL_CONFIG_MB, NULL,
     "Longest request URL; longer is answered 414.", SL_CONFIG_RESTART},
    {"header_timeout", SL_CONFIG_DURATION, offsetof(sl_http_config_t, header_timeout_ms), "10s", 100, 10 * SL_CONFIG_MINUTE,
     NULL, "Time a client has to send a complete request head (slowloris guard): 408.", 0},
    {"request_timeout", SL_CONFIG_DURATION, offsetof(sl_http_config_t, request_timeout_ms), "30s", 100, 1 * SL_CONFIG_HOUR,
     NULL, "Time a client has to send a whole request, head and body, from its first byte: 408.", 0},
    {"idle_timeout", SL_CONFIG_DURATION, offsetof(sl_http_config_t, idle_timeout_ms), "60s", 1 * SL_CONFIG_SEC, 24 * SL_CONFIG_HOUR, NULL,
     "Close a keep-alive connection idle for this long.", 0},
    {"cors_origin", SL_CONFIG_STRING, offsetof(sl_http_config_t, cors_origin), "*", 0, 1024, NULL,
     "Access-Control-Allow-Origin sent on every response; empty disables CORS.", 0},
    {"web_root", SL_CONFIG_STRING, offsetof(sl_http_config_t, web_root), "auto", 0, 4095, NULL,
     "Folder of static web pages served at / (the console, SDK and test pages); empty serves none. "
     "auto: ./web when the working directory has web/index.html (the source tree), else the "
     "folder compiled in at configure time (PREFIX/share/sluice/web; sluice --help shows it).",
     SL_CONFIG_RESTART},
    {"ws_max_message_bytes", SL_CONFIG_SIZE, offsetof(sl_http_config_t, ws_max_message_bytes), "1MB", 1 * SL_CONFIG_KB,
     64 * SL_CONFIG_MB, NULL, "Largest WebSocket message accepted.", 0},
    {"stream_max_pending_bytes", SL_CONFIG_SIZE, offsetof(sl_http_config_t, stream_max_pending_bytes), "8MB",
     64 * SL_CONFIG_KB, 1 * SL_CONFIG_GB, NULL, "Bytes queued on one streaming response or WebSocket before it is cut; a WebSocket "
     "counts the pongs and close replies its client's frames make us queue.", 0},
    {"tls_cert", SL_CONFIG_STRING, offsetof(sl_http_config_t, tls_cert), "", 0, 4095, NULL,
     "PEM certificate file (leaf first, then intermediates) for HTTPS; HTTPS is on when this and "
     "tls_key are set.", SL_CONFIG_RESTART},
    {"tls_key", SL_CONFIG_STRING, offsetof(sl_http_config_t, tls_key), "", 0, 4095, NULL,
     "PEM private key file of tls_cert.", SL_CONFIG_RESTART},
    {"tls_port", SL_CONFIG_INT, offsetof(sl_http_config_t, tls_port), "5443", 1, 65535, NULL,
     "TCP port of the HTTPS listener (same routes as the HTTP one; TLS 1.2 and 1.3).", SL_CONFIG_RESTART},
    {"tls_bind", SL_CONFIG_STRING, offsetof(sl_http_config_t, tls_bind), "", 0, 255, NULL,
     "Address of the HTTPS listener; empty means the same as bind.", SL_CONFIG_RESTART},
};

const sl_config_section_t sl_http_config_section = {
    .name = "http",
    .doc = "The HTTP listener (REST API, metrics, events, web pages; http://host:5080/), and "
             "HTTPS (https://host:5443/) when tls_cert and tls_key are set.",
    .size = sizeof(sl_http_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
};
