/*
 * The JSON form of shared objects (Red5 HTML5 SDK <= 12, RED5-COMPAT.md
 * §6.1): an adapter between the "webrtc-ws" service's message handlers
 * (a signalling WebSocket or a session's `red5pro` data channel) and the
 * "sharedobjects" service. See so_json.c and
 * docs/integration/shared-objects.md.
 */
#ifndef SL_MODULES_SHARED_OBJECTS_SO_JSON_H
#define SL_MODULES_SHARED_OBJECTS_SO_JSON_H

typedef struct sl_core sl_core_t;
typedef struct sl_so_json sl_so_json_t;

/**
 * Starts the adapter: registers its five message keys on the "webrtc-ws"
 * service now, or (when that service is not registered yet: the WebRTC
 * protocol starts after modules) from a timer that retries until it is.
 * Returns the adapter (free with sl_so_json_stop) or NULL on ENOMEM.
 */
sl_so_json_t *sl_so_json_start(sl_core_t *core);

/**
 * Stops it: removes its handlers from the service when that service is
 * still the one it registered with, leaves every object its clients
 * joined (no event is sent), and frees itself once its timer is closed.
 * Must run while the "sharedobjects" service is still registered. NULL is
 * a no-op.
 */
void sl_so_json_stop(sl_so_json_t *j);

#endif
