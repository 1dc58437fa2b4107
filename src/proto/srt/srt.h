/*
 * SRT (publish and read of MPEG-TS over libsrt, UDP 8890) and MPEG-TS over
 * plain UDP ingest: their lines in the protocol table (proto/proto.h).
 * See docs/srt.md.
 */
#ifndef SL_PROTO_SRT_SRT_H
#define SL_PROTO_SRT_SRT_H

#include "proto/proto.h"

extern const sl_proto_t sl_srt_proto;
extern const sl_proto_t sl_mpegts_proto;

#endif
