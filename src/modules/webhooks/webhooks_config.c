/*
 * The settings table of the webhooks module (see webhooks_config.h): keys, types, defaults,
 * bounds and docs, exactly as the YAML, the environment and the generated
 * docs show them.
 */
#include "modules/webhooks/webhooks_config.h"

#include <stddef.h>

static const sl_config_slot_t g_slots[] = {
    {"url", SL_CONFIG_STRING, offsetof(sl_webhooks_config_t, url), "", 0, 4095, NULL,
     "Endpoints that receive events (comma-separated); empty = none.", 0},
    {"secret", SL_CONFIG_STRING, offsetof(sl_webhooks_config_t, secret), "", 0, 1024, NULL,
     "HMAC-SHA256 key for the X-Sluice-Signature header; empty = unsigned.", 0},
    {"events", SL_CONFIG_STRING, offsetof(sl_webhooks_config_t, events), "", 0, 1024, NULL,
     "Event names to send (comma-separated, Red5 or sluice names); empty = all but app/room start and stop.", 0},
    {"timeout", SL_CONFIG_DURATION, offsetof(sl_webhooks_config_t, timeout_ms), "10s", 100, 5 * SL_CONFIG_MINUTE, NULL,
     "Time one delivery attempt may take.", 0},
    {"retry_max_interval", SL_CONFIG_DURATION, offsetof(sl_webhooks_config_t, retry_max_ms), "5m", 1 * SL_CONFIG_SEC,
     24 * SL_CONFIG_HOUR, NULL, "Longest wait between two attempts (exponential backoff with jitter up to this).", 0},
    {"retention", SL_CONFIG_DURATION, offsetof(sl_webhooks_config_t, retention_ms), "168h", 0, 8760 * SL_CONFIG_HOUR, NULL,
     "How long delivered rows stay in the outbox (listed by the API) before they are deleted; 0 = forever.", 0},
    {"raw_query", SL_CONFIG_BOOL, offsetof(sl_webhooks_config_t, raw_query), "false", 0, 0, NULL,
     "Send the client's query string as sent, credentials included; false = the values of "
     "secret-named keys (password, token, key, secret, auth, sig, ...) and JWTs are \"***\".", 0},
};

static const sl_config_slot_t g_app_slots[] = {
    {"webhook_url", SL_CONFIG_STRING, offsetof(sl_webhooks_app_config_t, webhook_url), "", 0, 4095, NULL,
     "Extra webhook endpoints for this app only (comma-separated).", 0},
};

const sl_config_section_t sl_webhooks_config_section = {
    .name = "webhooks",
    .doc = "Events pushed to the business's servers, durably (SQLite outbox, retried until 2xx).",
    .size = sizeof(sl_webhooks_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
    .app_size = sizeof(sl_webhooks_app_config_t),
    .app_slots = g_app_slots,
    .n_app_slots = sizeof g_app_slots / sizeof g_app_slots[0],
};
