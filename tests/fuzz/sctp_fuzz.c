/*
 * Fuzz target: SCTP packets (and the DCEP / data channel messages they
 * carry) fed to a server-side association of src/net/sctp.c.
 *
 * Input: one flags byte, then packets as [u16 big-endian length][bytes].
 * Flags: 0x08 feeds a fresh server (no handshake: the INIT path); otherwise
 * an in-process client first brings the association up, then only the
 * fuzzed packets reach the server. 0x01 writes the server's verification
 * tag into each packet, 0x02 adds the client's initial TSN to the TSN of
 * each DATA chunk (so recorded DATA lands in the window), 0x04 keeps the
 * CRC32c as given (otherwise it is recomputed, so that usrsctp looks past
 * the checksum). Ports are always set to 5000/5000. Seeds come from
 * tests/unit/net/sctp_test.c (SL_SCTP_SEED_DIR).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <usrsctp.h>

#include "net/sctp.h"

#define MAX_PKT 4096

typedef struct fz {
    sl_sctp_t *s;          /* the peer (client) of this side */
    sl_sctp_t **other;
    int cut;
    int up;
    uint32_t init_tsn;     /* the client's, from its INIT */
    uint32_t server_vtag;  /* the vtag of the client's packets after its INIT */
    int n_msgs;
} fz_t;

static fz_t C, S;
static sl_sctp_t *cli, *srv;

static void on_send(void *ud, const uint8_t *p, size_t len)
{
    fz_t *me = ud;
    if (me == &C && len >= 32) {
        if (p[12] == 1)
            me->init_tsn = (uint32_t)p[28] << 24 | (uint32_t)p[29] << 16 | p[30] << 8 | p[31];
        else
            me->server_vtag = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | p[6] << 8 | p[7];
    }
    if (!me->cut && *me->other)
        sl_sctp_feed(*me->other, p, len);
}

static void on_message(void *ud, uint16_t sid, const uint8_t *p, size_t len, int is_text)
{
    fz_t *me = ud;
    if (getenv("SL_SCTP_FUZZ_VERBOSE"))
        fprintf(stderr, "sctp_fuzz: message of %zu bytes on %u (text %d)\n", len, sid, is_text);
    if (len && p[0] == 0xfe && p[len - 1] == 0xfe)
        me->n_msgs++; /* touch the bytes */
}

static void on_open(void *ud, uint16_t sid, const char *label, const char *protocol)
{
    (void)ud;
    if (getenv("SL_SCTP_FUZZ_VERBOSE"))
        fprintf(stderr, "sctp_fuzz: channel %u \"%s\" opened\n", sid, label);
    if (strlen(label) > 65535 || strlen(protocol) > 65535)
        __builtin_trap();
}

static void on_connected(void *ud) { ((fz_t *)ud)->up = 1; }

static const sl_sctp_ops_t OPS = {
    .send = on_send, .message = on_message, .channel_open = on_open, .connected = on_connected,
};

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        sl_sctp_global_init();
        inited = 1;
    }
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    memset(&C, 0, sizeof C);
    memset(&S, 0, sizeof S);
    C.other = &srv;
    S.other = &cli;
    cli = srv = NULL;
    if (sl_sctp_new(5000, 5000, 65536, 0, &OPS, &S, &srv) != 0)
        return 0;
    if (!(flags & 0x08)) {
        if (sl_sctp_new(5000, 5000, 65536, 1, &OPS, &C, &cli) != 0)
            goto out;
        sl_sctp_connect(cli);
        sl_sctp_connect(srv);
        for (int i = 0; i < 50 && !(C.up && S.up); i++)
            sl_sctp_tick(10);
        if (!(C.up && S.up))
            goto out;
        C.cut = S.cut = 1; /* from now on only fuzzed packets reach the server */
    } else {
        S.cut = 1;
    }

    uint8_t pkt[MAX_PKT];
    size_t off = 1;
    for (int n = 0; n < 64 && off + 2 <= size; n++) {
        size_t len = (size_t)data[off] << 8 | data[off + 1];
        off += 2;
        if (len > size - off)
            len = size - off;
        if (len > MAX_PKT)
            len = MAX_PKT;
        memcpy(pkt, data + off, len);
        off += len;
        if (len >= 12) {
            pkt[0] = 0x13;
            pkt[1] = 0x88;
            pkt[2] = 0x13;
            pkt[3] = 0x88;
            if ((flags & 0x01) && !(flags & 0x08))
                put32(pkt + 4, C.server_vtag);
            if (flags & 0x02) {
                /* DATA chunks: type 0, TSN at +4, lengths padded to 4. */
                for (size_t c = 12; c + 8 <= len;) {
                    size_t clen = (size_t)pkt[c + 2] << 8 | pkt[c + 3];
                    if (clen < 4)
                        break;
                    if (pkt[c] == 0) {
                        uint32_t tsn = (uint32_t)pkt[c + 4] << 24 | (uint32_t)pkt[c + 5] << 16 |
                                       pkt[c + 6] << 8 | pkt[c + 7];
                        put32(pkt + c + 4, tsn + C.init_tsn);
                    }
                    c += (clen + 3) & ~(size_t)3;
                }
            }
            if (!(flags & 0x04)) {
                memset(pkt + 8, 0, 4);
                uint32_t crc = usrsctp_crc32c(pkt, len);
                memcpy(pkt + 8, &crc, 4); /* usrsctp's value is in wire order already */
            }
        }
        if (len)
            sl_sctp_feed(srv, pkt, len);
        sl_sctp_tick(10);
    }
out:
    sl_sctp_free(cli);
    sl_sctp_free(srv);
    cli = srv = NULL;
    return 0;
}
