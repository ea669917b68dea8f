/* SPDX-License-Identifier: MIT */
/*
 * test_infra.c - proves the test infrastructure itself: throwaway TLS
 * material (certs.h), a real Azurite over HTTP and HTTPS (azurite.h) and a
 * TLS-only redis-server (redis_server.h), each checked from outside with the
 * tools a person would use (openssl verify / s_client, redis-cli, raw
 * sockets), so a failing backend test can never be blamed on its harness.
 * Needs openssl, redis-server, redis-cli and node_modules/.bin/azurite-blob
 * (scripts/setup); a missing one fails with an install hint.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "azurite.h"
#include "certs.h"
#include "harness.h"
#include "redis_server.h"

#define TOOL_TIMEOUT_MS 10000

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* connect() to 127.0.0.1:@port: the fd, or -errno (-ECONNREFUSED: nobody listens). */
static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* Sends @req raw and reads the first line of the answer into @line (""
 * when the peer closed or said nothing within 2 s). Returns 0 or -errno. */
static int first_line(int port, const char *req, char *line, size_t cap)
{
    line[0] = '\0';
    int fd = connect_port(port);
    if (fd < 0)
        return fd;
    size_t len = strlen(req);
    if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    size_t have = 0;
    while (have < cap - 1 && !memchr(line, '\n', have)) {
        ssize_t n = recv(fd, line + have, cap - 1 - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    close(fd);
    line[have] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    return 0;
}

static void http_request(char *buf, size_t cap, int port)
{
    snprintf(buf, cap,
             "GET /" AZURITE_ACCOUNT "?comp=list HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Connection: close\r\n\r\n",
             port);
}

/* `openssl s_client` to 127.0.0.1:@port trusting only @ca, sending an HTTP
 * request; @verify_ip adds hostname (IP SAN) verification. Output in @out. */
static int s_client(int port, const char *ca, int verify_ip, char *out, size_t cap)
{
    char addr[32];
    char req[256];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    http_request(req, sizeof(req), port);
    const char *argv[16] = {"openssl", "s_client", "-connect", addr, "-CAfile", ca,
                            "-verify_return_error", "-quiet"};
    size_t argc = 8;
    if (verify_ip) {
        argv[argc++] = "-verify_ip";
        argv[argc++] = "127.0.0.1";
    }
    argv[argc] = NULL;
    return run_capture(argv, req, out, cap, TOOL_TIMEOUT_MS);
}

TEST(certs_verify)
{
    struct certs c;
    uint64_t t0 = now_ms();
    int rc = certs_make(&c, NULL);
    uint64_t took = now_ms() - t0;
    CHECK_EQ(rc, 0);
    printf("  certs made in %llu ms\n", (unsigned long long)took);
    CHECK(took < 2000);
    CHECK(c.ca[0] == '/' && c.server_cert[0] == '/'); /* absolute */
    CHECK(file_exists(c.ca) && file_exists(c.ca_key));
    CHECK(file_exists(c.server_cert) && file_exists(c.server_key));
    CHECK(file_exists(c.wrong_cert) && file_exists(c.wrong_key));

    char out[4096];
    const char *const verify[] = {"openssl", "verify", "-CAfile", c.ca, c.server_cert, NULL};
    CHECK_EQ(run_capture(verify, NULL, out, sizeof(out), TOOL_TIMEOUT_MS), 0);
    CHECK(strstr(out, ": OK") != NULL);
    const char *const verify_ip[] = {"openssl", "verify", "-CAfile", c.ca, "-verify_ip",
                                     "127.0.0.1", c.server_cert, NULL};
    CHECK_EQ(run_capture(verify_ip, NULL, out, sizeof(out), TOOL_TIMEOUT_MS), 0);
    const char *const verify_dns[] = {"openssl", "verify", "-CAfile", c.ca, "-verify_hostname",
                                      "localhost", c.server_cert, NULL};
    CHECK_EQ(run_capture(verify_dns, NULL, out, sizeof(out), TOOL_TIMEOUT_MS), 0);

    /* wrong.pem: the chain is fine, the name is not. */
    const char *const wrong_chain[] = {"openssl", "verify", "-CAfile", c.ca, c.wrong_cert, NULL};
    CHECK_EQ(run_capture(wrong_chain, NULL, out, sizeof(out), TOOL_TIMEOUT_MS), 0);
    const char *const wrong_ip[] = {"openssl", "verify", "-CAfile", c.ca, "-verify_ip",
                                    "127.0.0.1", c.wrong_cert, NULL};
    CHECK(run_capture(wrong_ip, NULL, out, sizeof(out), TOOL_TIMEOUT_MS) != 0);
    CHECK(strstr(out, "IP address mismatch") != NULL);

    const char *const san_server[] = {"openssl", "x509", "-in", c.server_cert, "-noout",
                                      "-ext", "subjectAltName", NULL};
    CHECK_EQ(run_capture(san_server, NULL, out, sizeof(out), TOOL_TIMEOUT_MS), 0);
    CHECK(strstr(out, "IP Address:127.0.0.1") != NULL);
    CHECK(strstr(out, "DNS:localhost") != NULL);
    const char *const san_wrong[] = {"openssl", "x509", "-in", c.wrong_cert, "-noout",
                                     "-ext", "subjectAltName", NULL};
    CHECK_EQ(run_capture(san_wrong, NULL, out, sizeof(out), TOOL_TIMEOUT_MS), 0);
    CHECK(strstr(out, "DNS:wrong.example") != NULL);
    CHECK(strstr(out, "127.0.0.1") == NULL);
    CHECK(strstr(out, "IP Address") == NULL);
    CHECK(strstr(out, "localhost") == NULL);

    /* The server key matches the server certificate. */
    char pub_cert[1024];
    char pub_key[1024];
    const char *const cert_pub[] = {"openssl", "x509", "-in", c.server_cert, "-noout", "-pubkey",
                                    NULL};
    const char *const key_pub[] = {"openssl", "pkey", "-in", c.server_key, "-pubout", NULL};
    CHECK_EQ(run_capture(cert_pub, NULL, pub_cert, sizeof(pub_cert), TOOL_TIMEOUT_MS), 0);
    CHECK_EQ(run_capture(key_pub, NULL, pub_key, sizeof(pub_key), TOOL_TIMEOUT_MS), 0);
    CHECK(strstr(pub_cert, "BEGIN PUBLIC KEY") != NULL);
    CHECK(!strcmp(pub_cert, pub_key));

    char dir[sizeof(c.dir)];
    snprintf(dir, sizeof(dir), "%s", c.dir);
    certs_destroy(&c);
    CHECK(!file_exists(dir));
}

TEST(certs_given_dir)
{
    char dir[] = "/tmp/leasering-certs-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char sub[64];
    snprintf(sub, sizeof(sub), "%s/made", dir); /* does not exist yet */
    struct certs c;
    int rc = certs_make(&c, sub);
    if (rc == 0) {
        char want[128];
        snprintf(want, sizeof(want), "%s/ca.pem", sub);
        rc = strcmp(c.ca, want) || !file_exists(c.wrong_key) ? -1 : 0;
        certs_destroy(&c); /* removes the files, keeps the caller's dir */
        rc = rc || file_exists(want) || !file_exists(sub) ? -1 : 0;
    }
    rmdir(sub);
    rmdir(dir);
    CHECK_EQ(rc, 0);
    CHECK(!file_exists(dir));
}

/* The install hints: a missing tool is an error, never a skip. */
TEST(missing_tools_fail)
{
    char *path = getenv("PATH");
    char saved[4096];
    snprintf(saved, sizeof(saved), "%s", path ? path : "/usr/bin:/bin");
    setenv("PATH", "/nonexistent", 1);
    struct certs c;
    int rc = certs_make(&c, NULL);
    setenv("PATH", saved, 1);
    CHECK_EQ(rc, -ENOENT);
    certs_destroy(&c);

    char *root = getenv("LR_SOURCE_ROOT");
    char saved_root[1024];
    snprintf(saved_root, sizeof(saved_root), "%s", root ? root : "");
    setenv("LR_SOURCE_ROOT", "/nonexistent", 1);
    struct azurite a;
    rc = azurite_start(&a, NULL, NULL, NULL);
    if (root)
        setenv("LR_SOURCE_ROOT", saved_root, 1);
    else
        unsetenv("LR_SOURCE_ROOT");
    printf("     (the openssl and azurite \"not found\" hints above are expected)\n");
    CHECK_EQ(rc, -ENOENT);
    CHECK_EQ(a.pid, 0);
    CHECK(a.dir[0] == '\0'); /* temp dir removed */
}

TEST(azurite_http)
{
    struct azurite a;
    uint64_t t0 = now_ms();
    CHECK_EQ(azurite_start(&a, NULL, NULL, NULL), 0);
    printf("  azurite (http) ready in %llu ms on port %d\n",
           (unsigned long long)(now_ms() - t0), a.port);
    CHECK(a.pid > 0);
    CHECK(a.port != 10000 && a.port != 10001 && a.port != 10002 && a.port != 6379);
    char url[128];
    CHECK(azurite_url(&a, url, sizeof(url)) > 0);
    char want[128];
    snprintf(want, sizeof(want), "http://127.0.0.1:%d/devstoreaccount1", a.port);
    CHECK(!strcmp(url, want));

    char req[256];
    char line[256];
    http_request(req, sizeof(req), a.port);
    CHECK_EQ(first_line(a.port, req, line, sizeof(line)), 0);
    /* Unsigned: Azurite refuses it, but with a real HTTP answer. */
    CHECK(!strncmp(line, "HTTP/1.1 403", 12));

    int port = a.port;
    CHECK_EQ(azurite_stop(&a), 0);
    CHECK_EQ(a.pid, 0);
    CHECK_EQ(connect_port(port), -ECONNREFUSED);
    azurite_destroy(&a);
    CHECK(a.dir[0] == '\0');
}

TEST(azurite_https)
{
    struct certs c;
    CHECK_EQ(certs_make(&c, NULL), 0);
    struct azurite a;
    uint64_t t0 = now_ms();
    CHECK_EQ(azurite_start(&a, c.server_cert, c.server_key, NULL), 0);
    printf("  azurite (https) ready in %llu ms on port %d\n",
           (unsigned long long)(now_ms() - t0), a.port);
    char url[128];
    CHECK(azurite_url(&a, url, sizeof(url)) > 0);
    CHECK(!strncmp(url, "https://127.0.0.1:", 18));

    /* Trusting only our CA, checking the IP SAN: a real HTTP answer. */
    char out[8192];
    CHECK_EQ(s_client(a.port, c.ca, 1, out, sizeof(out)), 0);
    CHECK(strstr(out, "HTTP/1.1 403") != NULL);

    /* Plain HTTP on the TLS port gets no HTTP answer. */
    char req[256];
    char line[256];
    http_request(req, sizeof(req), a.port);
    CHECK_EQ(first_line(a.port, req, line, sizeof(line)), 0);
    CHECK(strncmp(line, "HTTP/", 5) != 0);

    azurite_destroy(&a);
    certs_destroy(&c);
}

/* The wrong-name certificate: the chain verifies, the IP check does not. */
TEST(azurite_https_wrong_name)
{
    struct certs c;
    CHECK_EQ(certs_make(&c, NULL), 0);
    struct azurite a;
    CHECK_EQ(azurite_start(&a, c.wrong_cert, c.wrong_key, NULL), 0);
    char out[8192];
    CHECK_EQ(s_client(a.port, c.ca, 0, out, sizeof(out)), 0);
    CHECK(strstr(out, "HTTP/1.1 403") != NULL);
    CHECK(s_client(a.port, c.ca, 1, out, sizeof(out)) != 0);
    CHECK(strstr(out, "IP address mismatch") != NULL);
    CHECK(strstr(out, "HTTP/1.1") == NULL);
    azurite_destroy(&a);
    certs_destroy(&c);
}

TEST(azurite_kill_and_restart)
{
    struct azurite a;
    CHECK_EQ(azurite_start(&a, NULL, NULL, NULL), 0);
    int port = a.port;
    CHECK_EQ(azurite_kill(&a), 0);
    CHECK_EQ(a.pid, 0);
    CHECK_EQ(connect_port(port), -ECONNREFUSED);
    CHECK_EQ(azurite_kill(&a), -ESRCH);

    uint64_t t0 = now_ms();
    CHECK_EQ(azurite_restart(&a), 0);
    printf("  azurite restarted in %llu ms\n", (unsigned long long)(now_ms() - t0));
    CHECK_EQ(a.port, port);
    CHECK_EQ(azurite_restart(&a), -EBUSY);
    char req[256];
    char line[256];
    http_request(req, sizeof(req), a.port);
    CHECK_EQ(first_line(a.port, req, line, sizeof(line)), 0);
    CHECK(!strncmp(line, "HTTP/1.1 ", 9));
    azurite_destroy(&a);
    CHECK_EQ(connect_port(port), -ECONNREFUSED);
}

TEST(azurite_dies_with_the_test_process)
{
    /* A child "test process" starts Azurite and dies without cleaning up, as
     * a crash would (_exit: no atexit). PR_SET_PDEATHSIG must kill it. */
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        struct azurite a;
        close(p[0]);
        if (azurite_start(&a, NULL, NULL, NULL) == 0 &&
            write(p[1], &a, sizeof(a)) == (ssize_t)sizeof(a))
            _exit(0);
        _exit(1);
    }
    close(p[1]);
    struct azurite a;
    ssize_t n = read(p[0], &a, sizeof(a));
    close(p[0]);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK_EQ(n, (ssize_t)sizeof(a));
    int gone = 0;
    for (int i = 0; i < 500 && !gone; i++) {
        gone = connect_port(a.port) == -ECONNREFUSED;
        if (!gone)
            usleep(10000);
    }
    a.pid = 0; /* not our child; destroy only removes the dir it left */
    azurite_destroy(&a);
    CHECK(gone);
    CHECK(access(a.logfile, F_OK) < 0);
}

TEST(redis_tls)
{
    struct certs c;
    CHECK_EQ(certs_make(&c, NULL), 0);
    struct redis_server s;
    uint64_t t0 = now_ms();
    CHECK_EQ(redis_server_start_tls(&s, c.server_cert, c.server_key, c.ca, NULL), 0);
    printf("  redis-server (tls) ready in %llu ms on port %d\n",
           (unsigned long long)(now_ms() - t0), s.port);

    /* By hand, as a person would check it. */
    char port[16];
    snprintf(port, sizeof(port), "%d", s.port);
    char out[1024];
    const char *const cli[] = {"redis-cli", "-h", "127.0.0.1", "-p", port, "--tls", "--cacert",
                               c.ca, "PING", NULL};
    CHECK_EQ(run_capture(cli, NULL, out, sizeof(out), TOOL_TIMEOUT_MS), 0);
    CHECK(!strcmp(out, "PONG\n"));

    /* Through the harness, which adds --tls --cacert itself. */
    static const char *const ping[] = {"PING", NULL};
    CHECK_EQ(redis_cli(&s, out, sizeof(out), ping), 0);
    CHECK(!strcmp(out, "PONG"));
    static const char *const set[] = {"SET", "k", "v", NULL};
    static const char *const get[] = {"GET", "k", NULL};
    CHECK_EQ(redis_cli(&s, out, sizeof(out), set), 0);
    CHECK_EQ(redis_cli(&s, out, sizeof(out), get), 0);
    CHECK(!strcmp(out, "v"));

    /* Plain RESP on the TLS port: no reply (the handshake fails, it closes). */
    char line[256];
    CHECK_EQ(first_line(s.port, "*1\r\n$4\r\nPING\r\n", line, sizeof(line)), 0);
    CHECK(strstr(line, "PONG") == NULL);
    const char *const plain[] = {"redis-cli", "-h", "127.0.0.1", "-p", port, "PING", NULL};
    run_capture(plain, NULL, out, sizeof(out), TOOL_TIMEOUT_MS);
    CHECK(strstr(out, "PONG") == NULL);

    /* Restart keeps TLS; kill refuses connections. */
    CHECK_EQ(redis_server_stop(&s), 0);
    CHECK_EQ(redis_server_restart(&s), 0);
    CHECK_EQ(redis_cli(&s, out, sizeof(out), ping), 0);
    CHECK(!strcmp(out, "PONG"));
    CHECK_EQ(redis_server_kill(&s), 0);
    CHECK_EQ(connect_port(s.port), -ECONNREFUSED);
    redis_server_destroy(&s);
    certs_destroy(&c);
}

/* redis-cli does not check names, so a wrong-name redis starts too: the
 * certificate is there for the library's own hostname verification. */
TEST(redis_tls_wrong_name)
{
    struct certs c;
    CHECK_EQ(certs_make(&c, NULL), 0);
    struct redis_server s;
    CHECK_EQ(redis_server_start_tls(&s, c.wrong_cert, c.wrong_key, c.ca, NULL), 0);
    char port[16];
    snprintf(port, sizeof(port), "%d", s.port);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", s.port);
    char out[8192];
    const char *const sc[] = {"openssl", "s_client", "-connect", addr, "-CAfile", c.ca,
                              "-verify_return_error", "-verify_ip", "127.0.0.1", "-quiet",
                              NULL};
    CHECK(run_capture(sc, "PING\r\n", out, sizeof(out), TOOL_TIMEOUT_MS) != 0);
    CHECK(strstr(out, "IP address mismatch") != NULL);
    redis_server_destroy(&s);
    certs_destroy(&c);
}

TESTS(T(certs_verify), T(certs_given_dir), T(missing_tools_fail), T(azurite_http),
      T(azurite_https), T(azurite_https_wrong_name), T(azurite_kill_and_restart),
      T(azurite_dies_with_the_test_process), T(redis_tls),
      T(redis_tls_wrong_name))
