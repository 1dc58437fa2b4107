/*
 * FLV / Enhanced RTMP tag body parsing (see flv.h).
 *
 * Legacy video: byte 0 = frameType(4) | codecId(4); AVC (7) and the
 * de-facto HEVC id 12 add AVCPacketType(1) + composition time(si24).
 * Enhanced video (byte 0 bit 7 set): frameType(3 bits) | packetType(4),
 * then a FourCC; packet types 0 SequenceStart, 1 CodedFrames (si24 cts for
 * avc1/hvc1), 2 SequenceEnd, 3 CodedFramesX (cts 0), 4 Metadata,
 * 5 MPEG2TSSequenceStart, 6 Multitrack, 7 ModEx.
 * Legacy audio: byte 0 = soundFormat(4) | rate(2) | size(1) | type(1); AAC
 * (10) adds AACPacketType (0 = AudioSpecificConfig). Enhanced audio:
 * soundFormat 9 (ExHeader) | audioPacketType(4), then a FourCC; packet
 * types 0 SequenceStart, 1 CodedFrames, 2 SequenceEnd, 4 MultichannelConfig,
 * 5 Multitrack, 7 ModEx.
 */
#include "media/flv.h"

#include <string.h>

#include "base/buf.h"
#include "sluice/errors.h"

static int32_t si24(const uint8_t *p)
{
    uint32_t v = sl_rd_be24(p);
    return (v & 0x800000) ? (int32_t)(v | 0xFF000000u) : (int32_t)v;
}

int sl_flv_parse_video(const uint8_t *b, size_t len, sl_flv_info_t *info)
{
    memset(info, 0, sizeof(*info));
    if (len < 1)
        return SL_EPROTO;
    if (b[0] & 0x80) {
        /* Enhanced RTMP */
        uint8_t frame_type = (b[0] >> 4) & 0x07;
        uint8_t pkt = b[0] & 0x0F;
        info->is_ex = 1;
        info->is_key = frame_type == 1;
        info->is_info = frame_type == 5;
        if (pkt == 7) /* ModEx: modifiers precede the real packet; pass through as a frame */
            pkt = 1;
        if (pkt == 6) {
            /* Multitrack: byte 1 = multitrackType(4) | packetType(4), then a
             * FourCC unless the tracks carry different codecs. */
            if (len < 2)
                return SL_EPROTO;
            info->multitrack = 1;
            uint8_t inner = b[1] & 0x0F;
            info->is_config = inner == 0 || inner == 5;
            if ((b[1] >> 4) != 2 && len >= 6)
                info->codec = sl_rd_be32(b + 2);
            info->data_off = 2;
            return 0;
        }
        if (len < 5)
            return SL_EPROTO;
        info->codec = sl_rd_be32(b + 1);
        info->data_off = 5;
        switch (pkt) {
        case 0: /* SequenceStart */
        case 5: /* MPEG2TSSequenceStart */
            info->is_config = 1;
            break;
        case 1: /* CodedFrames */
            if (info->codec == SL_CODEC_AVC || info->codec == SL_CODEC_HEVC) {
                if (len < 8)
                    return SL_EPROTO;
                info->cts_ms = si24(b + 5);
                info->data_off = 8;
            }
            break;
        case 2: /* SequenceEnd */
            info->is_eos = 1;
            break;
        case 3: /* CodedFramesX */
        case 4: /* Metadata */
            break;
        default:
            return SL_EPROTO;
        }
        return 0;
    }
    uint8_t frame_type = b[0] >> 4;
    uint8_t codec_id = b[0] & 0x0F;
    info->is_key = frame_type == 1;
    info->is_info = frame_type == 5;
    info->data_off = 1;
    if (codec_id == 7 || codec_id == 12) {
        info->codec = codec_id == 7 ? SL_CODEC_AVC : SL_CODEC_HEVC;
        if (info->is_info) {
            info->data_off = len > 1 ? 2 : 1;
            return 0;
        }
        if (len < 5)
            return SL_EPROTO;
        info->is_config = b[1] == 0;
        info->is_eos = b[1] == 2;
        info->cts_ms = si24(b + 2);
        info->data_off = 5;
    } else {
        info->codec = SL_CODEC_FLV_VIDEO(codec_id);
    }
    return 0;
}

int sl_flv_parse_audio(const uint8_t *b, size_t len, sl_flv_info_t *info)
{
    memset(info, 0, sizeof(*info));
    if (len < 1)
        return SL_EPROTO;
    uint8_t fmt = b[0] >> 4;
    if (fmt == 9) {
        uint8_t pkt = b[0] & 0x0F;
        info->is_ex = 1;
        if (pkt == 7)
            pkt = 1;
        if (pkt == 5) {
            if (len < 2)
                return SL_EPROTO;
            info->multitrack = 1;
            uint8_t inner = b[1] & 0x0F;
            info->is_config = inner == 0 || inner == 4;
            if ((b[1] >> 4) != 2 && len >= 6)
                info->codec = sl_rd_be32(b + 2);
            info->data_off = 2;
            return 0;
        }
        if (len < 5)
            return SL_EPROTO;
        info->codec = sl_rd_be32(b + 1);
        info->data_off = 5;
        switch (pkt) {
        case 0: /* SequenceStart */
        case 4: /* MultichannelConfig: configuration, cached like one */
            info->is_config = 1;
            break;
        case 1:
            break;
        case 2:
            info->is_eos = 1;
            break;
        default:
            return SL_EPROTO;
        }
        return 0;
    }
    info->data_off = 1;
    if (fmt == 10) {
        info->codec = SL_CODEC_AAC;
        if (len < 2)
            return SL_EPROTO;
        info->is_config = b[1] == 0;
        info->data_off = 2;
    } else if (fmt == 2 || fmt == 14) {
        info->codec = SL_CODEC_MP3;
    } else {
        info->codec = SL_CODEC_FLV_AUDIO(fmt);
    }
    return 0;
}

const char *sl_codec_name(uint32_t codec)
{
    switch (codec) {
    case SL_CODEC_AVC: return "h264";
    case SL_CODEC_HEVC: return "hevc";
    case SL_CODEC_AV1: return "av1";
    case SL_CODEC_VP8: return "vp8";
    case SL_CODEC_VP9: return "vp9";
    case SL_CODEC_AAC: return "aac";
    case SL_CODEC_OPUS: return "opus";
    case SL_CODEC_MP3: return "mp3";
    case SL_CODEC_FLAC: return "flac";
    case SL_CODEC_AC3: return "ac3";
    case SL_CODEC_EAC3: return "eac3";
    case SL_CODEC_NONE: return "none";
    default: return "other";
    }
}
