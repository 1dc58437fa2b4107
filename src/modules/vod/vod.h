/*
 * The VOD module: recordings played back over RTMP as if live
 * (play("name.flv"), play("flv:name"), seek, pause, getStreamLength). It
 * provides the "vod" service (app/svc/vod.h) that protocols look up, and
 * reaches the recordings through the recorder's "recorder" service
 * (app/svc/recorder.h): which file a name stands for, its length. Without
 * the recorder it answers "not found".
 */
#ifndef SL_MODULES_VOD_H
#define SL_MODULES_VOD_H

#include "modules/module.h"

extern const sl_builtin_t sl_vod_builtin;

#endif
