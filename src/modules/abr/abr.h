/*
 * The abr module (docs/abr.md): Red5 Pro's transcoder role. It holds
 * stream provisions (ABR ladders) from three places: the cluster's
 * settings `provision/<app>/<name>` (src/app/svc/cluster.h), its own
 * configuration (`abr.provisions`) and its API (/api/v1/abr/provisions).
 * When the level-1 variant of a provision is published on a node that
 * transcodes, it starts one video transcoder (media/vtranscode.h) and
 * publishes every other level as a live stream of the node, audio copied;
 * in a cluster it claims their placement. It provides the "abr" service
 * (src/app/svc/abr.h) from which the HLS module builds multivariant
 * playlists.
 */
#ifndef SL_MODULES_ABR_H
#define SL_MODULES_ABR_H

#include "modules/module.h"

extern const sl_builtin_t sl_abr_builtin;

#endif
