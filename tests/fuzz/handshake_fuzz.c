/*
 * libFuzzer target for the RTMP handshake (src/proto/rtmp/rtmp_handshake.c).
 * The first input byte chooses how the rest is cut into reads (0: one read;
 * otherwise pieces of 1..16*byte bytes from a small generator seeded by it)
 * and, through its low bit, whether the client side offers a digest. The
 * rest is fed as a byte stream both to a server handshake and to a client
 * handshake after sl_rtmp_hs_client_start(). Besides memory safety (ASan,
 * UBSan, LeakSanitizer) it checks the feed contract: a 0 return consumed
 * the whole read, completion consumes exactly 3073 bytes, answers have
 * their exact sizes, and DONE/FAILED states swallow nothing further.
 * Corpus: tests/fuzz/corpus/handshake/ (replayed by tests/fuzz/replay_main.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/buf.h"
#include "proto/rtmp/rtmp_handshake.h"
#include "sluice/errors.h"

#define FULL (1 + 2 * SL_RTMP_HS_SIZE) /* C0+C1+C2 or S0+S1+S2 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the run on a broken contract; the fuzzer reports it as a crash. */
#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

/*
 * Feeds stream to hs in pieces and checks the contract. base_out is what
 * out held before (C0+C1 on the client side); answer_len what the side
 * appends once the peer's packets are in.
 */
static void drive(sl_rtmp_hs_t *hs, const uint8_t *stream, size_t n, uint8_t cut,
                  sl_wbuf_t *out, size_t base_out, size_t need, size_t answer_len)
{
    uint32_t rng = cut * 2654435761u + 1;
    size_t pos = 0;
    int rc = 0;

    while (pos < n) {
        size_t len = n - pos, used = 0;
        if (cut) {
            rng = rng * 1103515245u + 12345u;
            size_t piece = 1 + (rng >> 8) % (16u * cut);
            if (piece < len)
                len = piece;
        }
        rc = sl_rtmp_hs_feed(hs, stream + pos, len, &used, out);
        CHECK(used <= len);
        pos += used;
        if (rc == 0) {
            CHECK(used == len);
            continue;
        }
        break;
    }

    if (rc == 1) {
        CHECK(hs->state == SL_RTMP_HS_DONE);
        CHECK(pos == need);
        CHECK(out->len == base_out + answer_len);
    } else if (rc < 0) {
        CHECK(hs->state == SL_RTMP_HS_FAILED);
        CHECK(rc == SL_EPROTO);
    } else {
        CHECK(pos == n && n < need);
    }

    /* Terminal states take nothing more; waiting states take the rest. */
    size_t used = 1;
    int again = sl_rtmp_hs_feed(hs, stream + pos, n - pos, &used, out);
    if (rc == 1)
        CHECK(again == 1 && used == 0);
    else if (rc < 0)
        CHECK(again == SL_EPROTO && used == 0);
    else
        CHECK(again == 0 && used == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_rtmp_hs_t *hs;
    sl_wbuf_t out;

    if (size < 1)
        return 0;
    uint8_t cut = data[0];
    const uint8_t *stream = data + 1;
    size_t n = size - 1;

    /* Heap, not stack: the struct is 4.6 KB and ASan should see overruns. */
    hs = malloc(sizeof(*hs));
    if (!hs)
        return 0;

    sl_wbuf_init(&out, 64 * 1024);
    sl_rtmp_hs_server_init(hs);
    drive(hs, stream, n, cut, &out, 0, FULL, FULL);
    sl_wbuf_cleanup(&out);

    sl_wbuf_init(&out, 64 * 1024);
    CHECK(sl_rtmp_hs_client_start(hs, cut & 1, &out) == 0);
    CHECK(out.len == 1 + SL_RTMP_HS_SIZE);
    drive(hs, stream, n, cut, &out, 1 + SL_RTMP_HS_SIZE, FULL, SL_RTMP_HS_SIZE);
    sl_wbuf_cleanup(&out);

    free(hs);
    return 0;
}
