/*
 * Internals of the VOD module: the player (vod_play.c) that vod.c's
 * service calls drive. file is a path the recorder named (its "file_of"),
 * already checked to be inside a streams folder.
 */
#ifndef SL_MODULES_VOD_INTERNAL_H
#define SL_MODULES_VOD_INTERNAL_H

#include <stdint.h>
#include <uv.h>

#include "media/stream.h"

/**
 * Opens file (FLV, or MP4 by its ".mp4" name) and starts playing it into
 * sink from the keyframe at or before start_ms (see app/svc/vod.h's open).
 * 0 and the handle in *out, SL_ENOTFOUND (no such regular file) or
 * SL_ENOMEM.
 */
int sl__vod_play_open(uv_loop_t *loop, const char *file, uint32_t start_ms, sl_sink_t *sink,
                      void (*on_end)(void *ctx), void *ctx, void **out);
/** Seeks to the keyframe at or before ms. */
void sl__vod_play_seek(void *vod, uint32_t ms);
/** Pauses (1) or resumes (0). */
void sl__vod_play_pause(void *vod, int pause);
/** Ends the player; its memory goes once its handles closed. NULL is ignored. */
void sl__vod_play_close(void *vod);

#endif
