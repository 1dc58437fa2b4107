/*
 * Interop helper, run by hand through tests/interop/dtls_aiortc.py: one
 * sluice DTLS-SRTP endpoint (src/net/dtls.c, src/net/srtp.c) on a UDP
 * socket on 127.0.0.1, talking to a real aiortc RTCDtlsTransport. It
 * echoes application data back through DTLS and SRTP/SRTCP packets back
 * re-protected with its own key, so the Python side proves both key
 * directions. Not built by CMake (no socket code belongs in src/net/dtls);
 * build it against a configured tree:
 *
 *   cc -O1 -Isrc -Iinclude tests/interop/dtls_peer.c src/net/dtls.c src/net/srtp.c \
 *      src/base/alloc.c src/base/assert.c src/base/str.c -o /tmp/dtls_peer \
 *      $(pkg-config --cflags --libs libssl libcrypto libsrtp2)
 *
 * Usage: dtls_peer server|client PEER_PORT. Prints "PORT <n> FP <fp>",
 * reads the peer's sha-256 fingerprint from stdin, then prints one line per
 * event (CONNECTED, DATA, RTP, RTCP, CLOSED) and exits on close.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/dtls.h"
#include "net/srtp.h"

static int g_fd;
static struct sockaddr_in g_peer;
static sl_dtls_t *g_d;
static sl_srtp_t *g_srtp;
static int g_done;

static void on_send(void *ud, const uint8_t *p, size_t len)
{
    (void)ud;
    sendto(g_fd, p, len, 0, (struct sockaddr *)&g_peer, sizeof g_peer);
}

static void on_connected(void *ud, const sl_srtp_keys_t *keys)
{
    (void)ud;
    printf("CONNECTED profile=%d key_len=%zu\n", keys->profile, keys->key_len);
    if (sl_srtp_new(keys, &g_srtp) != 0)
        printf("SRTP-FAILED\n");
    fflush(stdout);
}

static void on_data(void *ud, const uint8_t *p, size_t len)
{
    (void)ud;
    printf("DATA %.*s\n", (int)len, (const char *)p);
    fflush(stdout);
    sl_dtls_send(g_d, p, len);
}

static void on_closed(void *ud, const char *why)
{
    (void)ud;
    printf("CLOSED %s\n", why);
    fflush(stdout);
    g_done = 1;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int is_server = strcmp(argv[1], "server") == 0;
    g_fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(g_fd, (struct sockaddr *)&a, sizeof a);
    getsockname(g_fd, (struct sockaddr *)&a, &al);
    g_peer.sin_family = AF_INET;
    g_peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_peer.sin_port = htons((uint16_t)atoi(argv[2]));

    sl_dtls_ctx_t *ctx;
    if (sl_dtls_ctx_new(&ctx) != 0)
        return 1;
    printf("PORT %d FP %s\n", ntohs(a.sin_port), sl_dtls_ctx_fingerprint(ctx));
    fflush(stdout);
    char fp[256];
    if (!fgets(fp, sizeof fp, stdin))
        return 1;
    fp[strcspn(fp, "\r\n")] = 0;
    static const sl_dtls_ops_t ops = {on_send, on_connected, on_data, on_closed};
    if (sl_dtls_new(ctx, is_server, "sha-256", fp, &ops, NULL, &g_d) != 0)
        return 1;
    sl_dtls_start(g_d);
    while (!g_done) {
        int64_t t = sl_dtls_timeout_ms(g_d);
        struct pollfd pfd = {g_fd, POLLIN, 0};
        int r = poll(&pfd, 1, t < 0 ? 10000 : (int)t);
        if (r == 0) {
            if (t < 0)
                break;
            sl_dtls_on_timeout(g_d);
            continue;
        }
        uint8_t buf[2048 + SL_SRTP_MAX_TRAILER];
        ssize_t n = recv(g_fd, buf, 2048, 0);
        if (n <= 0)
            continue;
        if (buf[0] >= 20 && buf[0] <= 63) {
            sl_dtls_feed(g_d, buf, (size_t)n);
        } else if (buf[0] >= 128 && buf[0] <= 191 && g_srtp) {
            size_t len = (size_t)n;
            int rtcp = buf[1] >= 192 && buf[1] <= 223; /* RFC 5761 */
            int rc = rtcp ? sl_srtp_unprotect_rtcp(g_srtp, buf, &len)
                          : sl_srtp_unprotect(g_srtp, buf, &len);
            printf("%s %s len=%zu\n", rtcp ? "RTCP" : "RTP", rc == 0 ? "ok" : "FAILED", len);
            fflush(stdout);
            if (rc == 0) {
                rc = rtcp ? sl_srtp_protect_rtcp(g_srtp, buf, &len, sizeof buf)
                          : sl_srtp_protect(g_srtp, buf, &len, sizeof buf);
                if (rc == 0)
                    sendto(g_fd, buf, len, 0, (struct sockaddr *)&g_peer, sizeof g_peer);
            }
        }
    }
    sl_dtls_close(g_d);
    sl_dtls_free(g_d);
    sl_srtp_free(g_srtp);
    sl_dtls_ctx_free(ctx);
    return 0;
}
