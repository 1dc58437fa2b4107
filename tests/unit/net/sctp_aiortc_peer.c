/*
 * The sluice side of the aiortc interoperability check
 * (tests/unit/net/sctp_aiortc_check.py builds and runs it): one sl_sctp
 * association whose SCTP packets travel as UDP datagrams on 127.0.0.1, no
 * DTLS, to aiortc's RTCSctpTransport on the other end. It echoes every
 * message on its channel (same kind), resets the channel on the text
 * "close", opens a channel "from-sluice" once up and says "hello from
 * sluice" on it, and prints what happens on stdout, one event a line.
 * Timers run on real elapsed time. Exits when the association closes or
 * after 30 s.
 *
 * Usage: sctp_aiortc_peer LOCAL_UDP_PORT REMOTE_UDP_PORT IS_DTLS_CLIENT
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/sctp.h"

static int fd;
static struct sockaddr_in peer;
static sl_sctp_t *s;
static int done;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_send(void *ud, const uint8_t *p, size_t len)
{
    (void)ud;
    sendto(fd, p, len, 0, (struct sockaddr *)&peer, sizeof peer);
}

static void on_open(void *ud, uint16_t sid, const char *label, const char *protocol)
{
    (void)ud;
    printf("open %u %s %s\n", sid, label, protocol[0] ? protocol : "-");
    fflush(stdout);
}

static void on_message(void *ud, uint16_t sid, const uint8_t *p, size_t len, int is_text)
{
    (void)ud;
    printf("message %u %zu %s\n", sid, len, is_text ? "text" : "binary");
    fflush(stdout);
    if (is_text && len == 5 && memcmp(p, "close", 5) == 0) {
        printf("reset %u %d\n", sid, sl_sctp_close_channel(s, sid));
        fflush(stdout);
        return;
    }
    int r = sl_sctp_send(s, sid, p, len, is_text);
    if (r != 0) {
        printf("echo-failed %d\n", r);
        fflush(stdout);
    }
}

static void on_channel_closed(void *ud, uint16_t sid)
{
    (void)ud;
    printf("channel-closed %u\n", sid);
    fflush(stdout);
}

static void on_closed(void *ud, const char *why)
{
    (void)ud;
    printf("closed %s\n", why);
    fflush(stdout);
    done = 1;
}

static void on_connected(void *ud)
{
    (void)ud;
    uint16_t sid;
    int r = sl_sctp_open_channel(s, "from-sluice", "", 1, &sid);
    printf("connected, opened %u (%d)\n", sid, r);
    if (r == 0) {
        r = sl_sctp_send(s, sid, (const uint8_t *)"hello from sluice", 17, 1);
        printf("hello sent (%d)\n", r);
    }
    fflush(stdout);
}

static const sl_sctp_ops_t OPS = {
    .send = on_send, .channel_open = on_open, .message = on_message,
    .channel_closed = on_channel_closed, .closed = on_closed, .connected = on_connected,
};

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0)
        return 1;
    peer = me;
    peer.sin_port = htons((uint16_t)atoi(argv[2]));
    sl_sctp_global_init();
    if (sl_sctp_new(5000, 5000, 262144, atoi(argv[3]), &OPS, NULL, &s) != 0)
        return 1;
    printf("ready\n");
    fflush(stdout);
    sl_sctp_connect(s);
    uint64_t start = now_ms(), last = start;
    static uint8_t buf[65536];
    while (!done && now_ms() - start < 30000) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 10) > 0) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n > 0)
                sl_sctp_feed(s, buf, (size_t)n);
        }
        uint64_t t = now_ms();
        if (t - last >= 10) {
            sl_sctp_tick((uint32_t)(t - last));
            last = t;
        }
    }
    sl_sctp_free(s);
    sl_sctp_global_cleanup();
    close(fd);
    return 0;
}
