/* SPDX-License-Identifier: MIT */
/*
 * test_cosmos.c - the Cosmos DB emulator fixture (tests/cosmos.h): it starts,
 * answers over HTTP with keep-alive, and stops. Limits of the emulator
 * (docs/STORES.md): it checks neither signatures nor TTLs, so the
 * Authorization sent here is a real one (lr__cosmos_auth) only to show the
 * shape; test_cosmossign is what checks signatures. A missing emulator FAILS
 * (cosmos_start prints the install hint).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cosmos.h"
#include "cosmossign_int.h"
#include "harness.h"
#include "proc.h"

#define KEY                                                                                        \
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="

/* Send one POST on @fd and read the answer's status code (the body is small:
 * one read of up to 4 KiB holds the whole answer here). */
static int post(int fd, struct lr__cosmos_key *k, const char *path, const char *type,
                const char *link, const char *body)
{
    char date[LR_AZ_DATE_SIZE], auth[LR_COSMOS_AUTH_SIZE], req[2048], resp[4096];
    if (lr__az_date_format(time(NULL), date) < 0 ||
        lr__cosmos_auth(k, "POST", type, link, date, auth, sizeof(auth)) < 0)
        return -1;
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nx-ms-date: %s\r\n"
                     "x-ms-version: 2018-12-31\r\nAuthorization: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     path, date, auth, strlen(body), body);
    if (write(fd, req, (size_t)n) != n)
        return -1;
    ssize_t got = read(fd, resp, sizeof(resp) - 1);
    if (got < 12)
        return -1;
    resp[got] = '\0';
    if (!strstr(resp, "connection: keep-alive"))
        fprintf(stderr, "no keep-alive in: %.200s\n", resp);
    int status = 0;
    return sscanf(resp, "HTTP/1.1 %d", &status) == 1 ? status : -1;
}

TEST(starts_creates_database_and_stops)
{
    struct cosmos c;
    struct lr__cosmos_key k;
    CHECK_OK(lr__cosmos_key_init(&k, KEY));
    CHECK_OK(cosmos_start(&c));
    int fd = proc_connect(c.port, 5000);
    CHECK(fd >= 0);
    CHECK_EQ(post(fd, &k, "/dbs", "dbs", "", "{\"id\":\"leasering\"}"), 201);
    /* Same connection: keep-alive is on. */
    CHECK_EQ(post(fd, &k, "/dbs/leasering/colls", "colls", "dbs/leasering",
                  "{\"id\":\"leases\",\"partitionKey\":{\"paths\":[\"/id\"],\"kind\":\"Hash\"}}"),
             201);
    CHECK_EQ(post(fd, &k, "/dbs", "dbs", "", "{\"id\":\"leasering\"}"), 409);
    close(fd);
    CHECK_OK(cosmos_stop(&c));
    CHECK(proc_connect(c.port, 500) < 0);
    cosmos_destroy(&c);
    lr__cosmos_key_deinit(&k);
}

TESTS(T(starts_creates_database_and_stops))
