/*
 * Audio transcoder: the bridge between WebRTC (Opus) and RTMP/HLS (AAC).
 * One transcoder serves one stream in one direction (AAC -> Opus for WebRTC
 * viewers of an RTMP publisher, Opus -> AAC for RTMP/HLS viewers of a
 * WebRTC publisher), is created when the first viewer needing it appears
 * and freed when the last one leaves; its output frames are built once and
 * fanned out like any other frame (DESIGN.md §3).
 *
 * Threading: the loop thread owns the object and calls every function
 * here. Decoding, resampling (libswresample) and encoding (libavcodec) run
 * on one dedicated worker thread per transcoder, fed through a bounded
 * queue under a mutex + condition variable; results come back as sl_buf_t
 * bodies through a uv_async_t and are turned into sl_frame_t on the loop,
 * because frames and their refcounts belong to the loop thread alone.
 *
 * Output: FLV audio tag bodies. AAC: a sequence header (0xAF 0x00 +
 * AudioSpecificConfig) before the first packet, then 0xAF 0x01 + raw AAC
 * frames of 1024 samples; 48 kHz, stereo, 128 kb/s AAC-LC. 48 kHz because
 * Opus always decodes at 48 kHz, so the WebRTC -> RTMP direction (the busy
 * one) needs no sample-rate conversion, and every HLS/RTMP player takes
 * 48 kHz AAC-LC; 128 kb/s stereo is the usual transparent rate for AAC-LC.
 * Opus: the Enhanced RTMP body (0x90 | packetType, FourCC 'Opus'): a
 * SequenceStart with the encoder's OpusHead, then CodedFrames each holding
 * one 20 ms Opus packet (960 samples, 48 kHz, stereo, 64 kb/s: Chrome's
 * own stereo target, ~160 bytes a packet) that a WebRTC sender can put in
 * an RTP payload as is. The output format never changes during a
 * transcoder's life, so the sequence header is sent once, before the
 * first coded frame.
 *
 * Timestamps: the first output frame carries the dts of the first input
 * frame minus the encoder's delay (AAC-LC primes 1024 samples, 21 ms; a
 * decoder outputs them before the first input sample, so without the
 * shift sound would lag picture by that much); each next one advances by its sample count / 48000 s, computed
 * from a 64-bit sample counter (no drift: the AAC step of 21.33 ms is
 * rounded down per frame, never accumulated). A jump of more than 200 ms
 * in the input (a gap, a rewind, or drops) resynchronises: the resampling
 * FIFO is emptied and the output timeline restarts at the new input dts.
 */
#ifndef SL_MEDIA_TRANSCODE_H
#define SL_MEDIA_TRANSCODE_H

#include <stdint.h>
#include <uv.h>

#include "media/frame.h"

#define SL_TRANSCODE_QUEUE_MAX 256        /* input frames waiting (> 5 s of AAC or Opus) */
#define SL_TRANSCODE_OUT_MAX 512          /* output frames waiting for the loop */
#define SL_TRANSCODE_FRAME_MAX (64 * 1024) /* larger audio frames are refused */
#define SL_TRANSCODE_RESYNC_MS 200        /* an input jump beyond this restarts the timeline */
#define SL_TRANSCODE_RATE 48000           /* output sample rate, both codecs */
#define SL_TRANSCODE_CHANNELS 2           /* output channels, both codecs */
#define SL_TRANSCODE_AAC_BITRATE 128000
#define SL_TRANSCODE_OPUS_BITRATE 64000

typedef struct sl_transcoder sl_transcoder_t;

/*
 * Receives one output frame, on the loop thread. The frame is borrowed for
 * the call: take a reference (sl_frame_ref) to keep it. The callback may
 * call sl_transcoder_free() on its own transcoder; no callback follows.
 */
typedef void (*sl_transcoder_out_cb)(void *ud, sl_frame_t *frame);

typedef struct sl_transcoder_stats {
    uint64_t in_frames;  /* frames accepted by sl_transcoder_push (including later drops) */
    uint64_t out_frames; /* frames handed to the output callback */
    uint64_t dropped;    /* input frames dropped by a full queue, plus outputs the loop did not take in time */
    uint64_t errors;     /* undecodable frames, bad configurations, coded frames without one, encoder failures */
    double worker_ms;    /* CPU time the worker thread spent transcoding (thread CPU clock) */
    uint64_t processed;  /* input frames the worker has finished (their output is queued) */
    uint64_t pending_out;/* output frames built but not yet delivered on the loop */
} sl_transcoder_stats_t;

/**
 * True when the transcoder takes input frames of codec: AAC, Opus, MP3
 * and G.711 (SL_CODEC_FLV_AUDIO(7) A-law, (8) mu-law), when this
 * libavcodec has their decoder. Pure; any thread.
 */
int sl_transcode_can_decode(uint32_t codec);

/**
 * Creates a transcoder producing to_codec (SL_CODEC_AAC or SL_CODEC_OPUS)
 * and starts its worker thread. The encoder is opened here, so a missing
 * codec fails now, with a log line, not later. out is called on the loop
 * thread with each output frame; ud is passed through unchanged.
 * Returns 0 and the new transcoder (owned by the caller, released with
 * sl_transcoder_free) in *out_t, or SL_EINVAL (other codec, NULL
 * arguments), SL_ENOMEM, SL_EIO (libavcodec could not open the encoder),
 * or a libuv error (thread, async handle). Nothing is left on error.
 */
int sl_transcoder_new(uv_loop_t *loop, uint32_t to_codec, sl_transcoder_out_cb out, void *ud,
                      sl_transcoder_t **out_t);

/**
 * Feeds one input audio frame: an AAC sequence header or raw frame, an
 * Opus SequenceStart (OpusHead) or coded frame, or a G.711 or MP3 frame
 * (no configuration needed; G.711 is 8 kHz mono). The codec bytes are copied;
 * the frame stays the caller's (it is never referenced off the loop).
 * Never blocks: when SL_TRANSCODE_QUEUE_MAX frames wait, the oldest coded
 * frame is dropped and counted (configurations are kept). End-of-sequence
 * markers are accepted and ignored. Returns 0, SL_EINVAL (not audio, a
 * codec sl_transcode_can_decode refuses, or already the output codec), SL_ETOOBIG (frame larger than
 * SL_TRANSCODE_FRAME_MAX), SL_ENOMEM, SL_ECLOSED (being freed).
 * Undecodable content is not an error here: the worker counts it.
 */
int sl_transcoder_push(sl_transcoder_t *t, const sl_frame_t *in);

/**
 * Stops the worker (it finishes the frame in hand; at most a few ms, the
 * loop waits for it), discards queued input and undelivered output, and
 * closes the async handle; the memory is released in its close callback,
 * so the loop must run once more. Safe to call from inside the output
 * callback: no further callback is made. NULL is ignored.
 */
void sl_transcoder_free(sl_transcoder_t *t);

/** Copies the counters into *st (loop thread, or any thread: they are read under the lock). */
void sl_transcoder_stats(const sl_transcoder_t *t, sl_transcoder_stats_t *st);

/*
 * Test hook: while paused the worker takes nothing from the queue, so a
 * test can fill it deterministically. Not for production use.
 */
void sl__transcoder_pause(sl_transcoder_t *t, int paused);

#endif
