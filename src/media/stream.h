/*
 * The stream hub: live streams by name, each with one publisher (source)
 * and any number of sinks (subscribers of any protocol).
 *
 * sl_stream_push() hands a frame to every sink in order, on the loop
 * thread, without copying it: a sink that wants to keep the frame takes a
 * reference (normally into its sl_subq_t). A sink callback must never
 * block, and must not free the stream or another sink; it may remove
 * itself (sl_stream_remove_sink) and may defer its own disconnect.
 *
 * The stream remembers what a newcomer needs to start at once: the latest
 * video and audio configuration frames, the metadata, and a GOP cache (all
 * frames since the last video keyframe, bounded in bytes). A sink added
 * while the stream is live first receives metadata, configs and the GOP,
 * then live frames.
 *
 * A stream exists while it has a publisher or at least one sink; the hub
 * frees it when both are gone. Names are full scope paths: "live/stream1",
 * "live/room1/stream1".
 */
#ifndef SL_MEDIA_STREAM_H
#define SL_MEDIA_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "base/list.h"
#include "base/map.h"
#include "media/frame.h"

typedef struct sl_stream sl_stream_t;
typedef struct sl_sink sl_sink_t;
typedef struct sl_hub sl_hub_t;

typedef struct sl_sink_ops {
    /** A frame for this sink (borrowed: take a reference to keep it). */
    void (*on_frame)(sl_sink_t *sink, sl_frame_t *frame);
    /** The stream got a publisher (also called on add_sink when already live). */
    void (*on_publish)(sl_sink_t *sink);
    /** The publisher left; the sink stays attached and waits for a republish. */
    void (*on_unpublish)(sl_sink_t *sink);
} sl_sink_ops_t;

struct sl_sink {
    const sl_sink_ops_t *ops; /* callbacks (static, borrowed) */
    void *ctx;                /* owner's context */
    sl_stream_t *stream;      /* set while attached */
    sl_list_t link;           /* in stream->sinks */
    int internal;             /* a server output (HLS segmenter, recorder), not a player:
                                 kept out of the subscriber counts; set before attaching */
    int relayed;              /* frames reach it through a relay (sl_stream_sink_relayed):
                                 sl_stream_push skips it; it is in stream->relayed */
};

/* Per-stream statistics, read by the API and metrics. */
typedef struct sl_stream_stats {
    uint64_t frames_in;      /* frames pushed since publish */
    uint64_t bytes_in;       /* payload bytes pushed since publish */
    uint64_t video_frames;   /* video frames pushed since publish */
    uint64_t keyframes;      /* video keyframes since publish */
    uint32_t last_key_dts;   /* dts of the last keyframe */
    uint32_t key_interval_ms;/* distance between the last two keyframes */
    uint64_t total_sinks;    /* player sinks ever attached (internal sinks excluded) */
    uint64_t max_sinks;      /* most player sinks at once */
} sl_stream_stats_t;

struct sl_stream {
    sl_hub_t *hub;             /* owning hub */
    char *name;                /* full path, owned */
    void *publisher;           /* the publisher's sl_session_t (as void* to keep media below app), or NULL */
    sl_list_t sinks;           /* attached sinks that sl_stream_push hands frames to */
    sl_list_t relayed;         /* attached sinks whose frames come through a relay (a worker
                                  loop's fan-out, docs/internals/threads.md): they get
                                  on_publish and on_unpublish, and count, but no frames */
    size_t n_sinks;            /* every attached sink (keeps the stream alive) */
    size_t n_players;          /* attached sinks that are players (not internal) */
    sl_frame_t *video_config;  /* latest video sequence header or NULL */
    sl_frame_t *audio_config;  /* latest audio sequence header or NULL */
    sl_frame_t *metadata;      /* latest onMetaData data frame or NULL */
    sl_frame_t **gop;          /* frames since the last video keyframe (owned refs) */
    size_t gop_n, gop_cap;
    size_t gop_bytes;
    size_t gop_max_bytes;      /* bound; 0 disables the cache */
    uint32_t video_codec;      /* SL_CODEC_* of the last video frame */
    uint32_t audio_codec;      /* SL_CODEC_* of the last audio frame */
    uint32_t last_dts;         /* dts of the last frame pushed */
    uint64_t publish_time_ms;  /* wall clock at publish start */
    uint64_t create_time_ms;   /* wall clock at creation */
    sl_stream_stats_t stats;
    char uuid[37];             /* random id of the current publish (Red5's stream "name") */
    uint64_t seq;              /* number of the current publish in this process (Red5's "id") */
    uint32_t width, height;    /* from metadata, 0 when unknown */
    double fps;                /* from metadata, 0 when unknown */
    double meta_video_kbps;    /* encoder's declared video bitrate, 0 when unknown */
    double meta_audio_kbps;    /* encoder's declared audio bitrate, 0 when unknown */
    int pushing;               /* inside sl_stream_push: defer frees */
};

/** Creates an empty hub. gop_max_bytes bounds each stream's GOP cache. */
sl_hub_t *sl_hub_new(size_t gop_max_bytes);
/** Frees the hub; every stream must be gone (asserted). */
void sl_hub_free(sl_hub_t *hub);
/** The stream of that name, or NULL. Borrowed. */
sl_stream_t *sl_hub_find(sl_hub_t *hub, const char *name);
/** Number of streams, and iteration (pos starts at 0; NULL at the end). */
size_t sl_hub_count(const sl_hub_t *hub);
sl_stream_t *sl_hub_next(sl_hub_t *hub, size_t *pos);

/**
 * Makes `publisher` the source of stream `name`, creating the stream if
 * needed. Returns 0 and the stream in *out (borrowed, valid until
 * sl_stream_unpublish), SL_EBUSY when the name already has a publisher,
 * SL_ENOMEM. Attached sinks get on_publish.
 */
int sl_hub_publish(sl_hub_t *hub, const char *name, void *publisher, sl_stream_t **out);
/**
 * Ends the publish: drops configs, metadata and the GOP cache, tells every
 * sink on_unpublish, and frees the stream if no sink remains. The stream
 * pointer must not be used by the publisher afterwards.
 */
void sl_stream_unpublish(sl_stream_t *st);
/**
 * Pushes a frame (borrowed) from the publisher to every sink and into the
 * caches. Config and metadata frames replace the cached ones.
 */
void sl_stream_push(sl_stream_t *st, sl_frame_t *f);

/**
 * Attaches a sink to stream `name`, creating the stream (without
 * publisher) if needed. If the stream is live, the sink gets on_publish and
 * then, synchronously, the metadata, configs and GOP cache as frames.
 * Returns 0 or SL_ENOMEM. sink->ops and ctx must be set by the caller.
 */
int sl_hub_add_sink(sl_hub_t *hub, const char *name, sl_sink_t *sink);
/** Detaches a sink (no-op if not attached); frees the stream if it is now unused. */
void sl_stream_remove_sink(sl_sink_t *sink);
/**
 * Marks an attached player sink relayed (on = 1) or direct again (0):
 * a relayed sink stays attached and counted and still gets on_publish and
 * on_unpublish, but sl_stream_push no longer calls its on_frame (one relay
 * sink per event loop delivers its frames; docs/internals/threads.md).
 * Main loop; not from inside the stream's own callbacks. No-op when not
 * attached.
 */
void sl_stream_sink_relayed(sl_sink_t *sink, int on);
/**
 * Drops the GOP cache: players that attach from now on get the metadata
 * and configs and start at the next keyframe. For a publisher whose
 * timeline stepped (the cached frames no longer agree with the frames to
 * come, e.g. a WebRTC publisher switching to its sender reports), so a
 * newcomer never starts on frames stamped on the old timeline.
 */
void sl_stream_gop_restart(sl_stream_t *st);
/** Replays metadata, configs and the GOP cache to one sink (used on unpause). */
void sl_stream_replay(sl_stream_t *st, sl_sink_t *sink);

#endif
