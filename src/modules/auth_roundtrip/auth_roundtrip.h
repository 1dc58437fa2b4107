/*
 * Round Trip Authentication (Red5 Pro's RoundTripAuthValidator,
 * RED5-COMPAT.md §3.4): before a client publishes or plays in an app with
 * auth_roundtrip on, sluice asks the business's server.
 *
 * Wire format, as Red5 sends it: POST auth.roundtrip_validate_url with
 * Content-Type and Accept application/json and the body
 *   {"username":"..","password":"..","token":"..",
 *    "type":"publisher"|"subscriber","streamID":"<stream name>"}
 * (missing credentials are sent as ""). The answer {"result": true} (or
 * "true") admits the client and its optional "url" is kept on the
 * admission (note "url", Red5's signedURL); any other answer (a 2xx-4xx
 * response without result true) refuses it with "Authentication failed.".
 * No answer within auth.roundtrip_timeout, a transport error or a 5xx
 * gives auth.roundtrip_default (deny: "Authentication service
 * unavailable.").
 *
 * The request is asynchronous (base/http_client.h): the admission is
 * pending meanwhile and no other client waits. In lazy mode
 * (auth.roundtrip_lazy) the client is admitted at once and kicked
 * (session ops->kick, found again by its id) if the answer is no.
 *
 * Invalidate: every validation answered yes is undone when that client
 * disconnects, by POSTing the same body to auth.roundtrip_invalidate_url
 * (when set), fire and forget, the answer only logged; also at shutdown
 * for clients still connected, and at once for a client that left before
 * its yes arrived.
 */
#ifndef SL_MODULES_AUTH_ROUNDTRIP_H
#define SL_MODULES_AUTH_ROUNDTRIP_H

#include <stddef.h>

#include "modules/module.h"

/** The module (listed in modules.c). */
extern const sl_builtin_t sl_auth_roundtrip_builtin;

/** Outcome of one validate answer (see sl_auth_roundtrip_decide). */
typedef enum {
    SL_RT_ALLOW = 0,   /* result true */
    SL_RT_DENY = 1,    /* answered, but not yes */
    SL_RT_FAILED = 2,  /* no usable answer: apply auth.roundtrip_default */
} sl_rt_verdict_t;

/**
 * Reads a validate answer: status as the HTTP client reports it (code or
 * negative error), body (len bytes, borrowed). On SL_RT_ALLOW, *url (may be
 * NULL) receives a copy of the "url" member or NULL (caller sl_frees).
 */
sl_rt_verdict_t sl_auth_roundtrip_decide(int status, const char *body, size_t len, char **url);

/**
 * Builds Red5's validate body (caller sl_frees); NULL strings are sent as
 * "". NULL on ENOMEM.
 */
char *sl_auth_roundtrip_body(const char *username, const char *password, const char *token,
                             int publisher, const char *stream);

#endif
