/* SPDX-License-Identifier: MIT */
/*
 * exporter_client.h - a plain-socket HTTP client for the exporter tests. The
 * exporter runs on the test's own loop, so every wait pumps the loop
 * (lr_loop_process) between short polls of the client socket.
 */
#ifndef LR_TEST_EXPORTER_CLIENT_H
#define LR_TEST_EXPORTER_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <leasering.h>

static inline uint64_t ec_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Pump @loop for @ms milliseconds. */
static inline void ec_pump(struct lr_loop *loop, unsigned ms)
{
    uint64_t end = ec_ms() + ms;
    do {
        lr_loop_process(loop);
        poll(NULL, 0, 1);
    } while (ec_ms() < end);
}

/* A TCP connection to 127.0.0.1:@port, non-blocking; -1 on failure. */
static inline int ec_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static inline int ec_send(int fd, const char *s)
{
    size_t n = strlen(s);
    return send(fd, s, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/*
 * Read one response into buf (NUL-terminated), pumping @loop, until the head
 * and Content-Length bytes of body arrived, the peer closed, or @ms passed.
 * Returns the bytes read; *closed is set when the peer closed (EOF or reset).
 */
static inline size_t ec_read(struct lr_loop *loop, int fd, char *buf, size_t cap, unsigned ms,
                             bool *closed)
{
    size_t len = 0;
    uint64_t end = ec_ms() + ms;
    *closed = false;
    while (ec_ms() < end && len + 1 < cap) {
        lr_loop_process(loop);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1) <= 0)
            continue;
        ssize_t r = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
        if (r <= 0) {
            if (r < 0 && errno == EAGAIN)
                continue;
            *closed = true;
            break;
        }
        len += (size_t)r;
        buf[len] = 0;
        const char *h = strstr(buf, "\r\n\r\n");
        const char *cl = strstr(buf, "Content-Length: ");
        if (h && cl && cl < h && len >= (size_t)(h + 4 - buf) + strtoul(cl + 16, NULL, 10))
            break;
    }
    buf[len] = 0;
    return len;
}

/* The body of a response in buf, or "" */
static inline const char *ec_body(const char *buf)
{
    const char *h = strstr(buf, "\r\n\r\n");
    return h ? h + 4 : "";
}

/* The value of the series @s (name and labels, as printed) in the metrics
 * text @body; -1 when absent. */
static inline long long ec_value(const char *body, const char *s)
{
    size_t n = strlen(s);
    for (const char *p = body; (p = strstr(p, s)); p += n)
        if ((p == body || p[-1] == '\n') && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
    return -1;
}

#endif
