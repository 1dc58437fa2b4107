/*
 * HLS and Low-Latency HLS delivery (docs/hls.md): every live stream of an
 * app with `hls` on is served at http://host:5080/{app}/{stream}.m3u8
 * (Red5's URL; rooms nest), as MPEG-TS segments or fMP4 (CMAF), with
 * LL-HLS partial segments, blocking playlist reload, preload hints and
 * delta updates when the app asks for low latency.
 *
 * Shape: a built-in module (modules.c) on three extension points. An event
 * bus listener attaches a muxer (a hub sink, hls.c + hls_mux.c) to each
 * stream when it is published, so the playlist exists before the first
 * player asks and a player starts on segments already made; a muxer stays
 * attached across a republish (EXT-X-DISCONTINUITY) and is removed a while
 * after the publisher leaves. One HTTP route serves the playlists,
 * segments, parts and init sections from memory (hls_playlist.c) and
 * holds blocking requests without a thread. Players are sessions (proto
 * "hls", role subscriber) admitted through the admission chain
 * (transport "hls") and identified by a `sid` query parameter the server
 * adds to the URIs it hands out.
 */
#ifndef SL_PROTO_HLS_H
#define SL_PROTO_HLS_H

#include "modules/module.h"

/** The module (listed in src/modules/modules.c). */
extern const sl_builtin_t sl_hls_builtin;

#endif
