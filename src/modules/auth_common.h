/*
 * Small helpers shared by the three authentication modules (auth_simple,
 * auth_jwt, auth_roundtrip): whether an app's auth_protocols list covers a
 * transport, and comma-list matching. Internal to src/modules (sl__auth_*),
 * not plugin API.
 */
#ifndef SL_MODULES_AUTH_COMMON_H
#define SL_MODULES_AUTH_COMMON_H

#include <stddef.h>

#include "app/admission.h"
#include "base/config.h"

/**
 * True (1) when `word` is one of the comma-separated items of `list`
 * (blanks around items ignored, ASCII case-insensitive) or list is "*".
 * A NULL or empty list matches nothing; a NULL word matches only "*".
 */
int sl__auth_list_has(const char *list, const char *word);

/**
 * The app configuration an admission is about, when `flag` (the offset of
 * one of the app's int switches, e.g. offsetof(sl_auth_app_config_t,
 * auth_simple)) is on and the app's auth_protocols covers the request's
 * transport; NULL otherwise (the check then declines). Borrowed from the
 * core's read-only configuration.
 */
const sl_app_config_t *sl__auth_app_for(const sl_admit_t *a, size_t flag);

/**
 * The log context of the admission's session, or NULL once the client is
 * gone (log calls accept NULL).
 */
const struct sl_log_ctx *sl__auth_log(const sl_admit_t *a);

#endif
