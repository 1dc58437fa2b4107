/*
 * Fuzz target: the RTMP chunk stream reader. The first input byte picks the
 * feed step and a chunk size; the rest is fed as a peer's chunk stream.
 * Completed messages of type 1 apply their chunk size, as the server does,
 * so header-type and chunk-size interplay is explored. Bit 0x40 of the
 * first byte turns on a small partial-message budget (8 KB, 3 messages in
 * flight, a 12 KB pool) so the budget paths are explored too; whatever
 * happens, the bytes held must be back in the pool after cleanup.
 */
#include <stddef.h>
#include <stdint.h>

#include "proto/rtmp/rtmp_chunk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] & 0x0F) * 7 + 1;
    sl_rtmp_chunk_reader_t r;
    sl_rtmp_chunk_reader_init(&r, 65536, 1 << 20);
    sl_byte_pool_t pool = {.limit = 12 * 1024};
    if (data[0] & 0x40)
        sl_rtmp_chunk_reader_set_budget(&r, 8 * 1024, 3, &pool);
    if (data[0] & 0x80)
        r.chunk_size = 4096;
    data++;
    size--;
    size_t off = 0;
    while (off < size) {
        size_t piece = size - off < step ? size - off : step;
        size_t pos = 0;
        int dead = 0;
        while (pos < piece) {
            size_t used = 0;
            sl_rtmp_msg_t m;
            int rc = sl_rtmp_chunk_read(&r, data + off + pos, piece - pos, &used, &m);
            pos += used;
            if (rc < 0) {
                dead = 1;
                break;
            }
            if (rc == 1) {
                if (m.type == SL_RTMP_SET_CHUNK_SIZE && m.body->len >= 4 &&
                    sl_rtmp_chunk_reader_set_chunk_size(&r, sl_rd_be32(m.body->data)) < 0)
                    dead = 1;
                if (m.type == SL_RTMP_ABORT && m.body->len >= 4)
                    sl_rtmp_chunk_reader_abort(&r, sl_rd_be32(m.body->data));
                sl_buf_unref(m.body);
                if (dead)
                    break;
            } else if (used == 0) {
                break;
            }
        }
        if (dead)
            break;
        off += piece;
    }
    if (r.held < 0 || (r.pool && r.held != pool.used))
        __builtin_trap();
    sl_rtmp_chunk_reader_cleanup(&r);
    if (r.held != 0 || pool.used != 0)
        __builtin_trap();
    return 0;
}
