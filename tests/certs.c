/* SPDX-License-Identifier: MIT */
/* certs.c - see certs.h. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "certs.h"

#define OPENSSL_TIMEOUT_MS 10000
#define DIR_PREFIX "/tmp/leasering-certs-"
#define MAX_TRACKED 16
#define DAYS "30"

static const char openssl_hint[] = "openssl not found: install it with "
                                   "`apt-get install openssl` (or run scripts/setup)\n";

/* The extensions each certificate gets. A config of our own keeps the result
 * independent of the system's openssl.cnf defaults (v3_ca and friends). */
static const char openssl_cnf[] =
    "# written by leasering tests/certs.c\n"
    "[req]\n"
    "distinguished_name = dn\n"
    "prompt = no\n"
    "[dn]\n"
    "CN = unused\n"
    "[ca_ext]\n"
    "basicConstraints = critical,CA:TRUE\n"
    "keyUsage = critical,keyCertSign,cRLSign\n"
    "subjectKeyIdentifier = hash\n"
    "[server_ext]\n"
    "basicConstraints = critical,CA:FALSE\n"
    "keyUsage = critical,digitalSignature\n"
    "extendedKeyUsage = serverAuth\n"
    "subjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid\n"
    "subjectAltName = IP:127.0.0.1,DNS:localhost\n"
    "[wrong_ext]\n"
    "basicConstraints = critical,CA:FALSE\n"
    "keyUsage = critical,digitalSignature\n"
    "extendedKeyUsage = serverAuth\n"
    "subjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid\n"
    "subjectAltName = DNS:wrong.example\n";

/* ---- time ---- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static pid_t waitpid_eintr(pid_t pid, int *status, int flags)
{
    pid_t r;
    do
        r = waitpid(pid, status, flags);
    while (r < 0 && errno == EINTR);
    return r;
}

/* ---- running a tool ---- */

static void set_cloexec_from(int first)
{
#ifdef CLOSE_RANGE_CLOEXEC
    if (close_range((unsigned)first, ~0u, CLOSE_RANGE_CLOEXEC) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = first; fd < max; fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC); /* EBADF for closed fds: fine */
}

/* Between fork and exec: async-signal-safe calls only. Reports failure as an
 * errno on @err_fd, which exec closes on success. */
static _Noreturn void child_exec(const char *const *argv, int in_fd, int out_fd, int err_fd,
                                 pid_t parent)
{
    int err;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(SIGPIPE, &dfl, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        goto fail;
    if (getppid() != parent) {
        errno = ESRCH;
        goto fail;
    }
    if (in_fd < 0)
        in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in_fd < 0 || dup2(in_fd, STDIN_FILENO) < 0)
        goto fail;
    if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(out_fd, STDERR_FILENO) < 0)
        goto fail;
    set_cloexec_from(STDERR_FILENO + 1);
    execvp(argv[0], (char *const *)argv);
fail:
    err = errno;
    while (write(err_fd, &err, sizeof(err)) < 0 && errno == EINTR)
        ;
    _exit(127);
}

/* fork + execvp; 0 with *pid set once exec succeeded, or -errno. */
static int spawn(const char *const *argv, int in_fd, int out_fd, pid_t *pid)
{
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0)
        return -errno;
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        int rc = -errno;
        close(ep[0]);
        close(ep[1]);
        return rc;
    }
    if (child == 0)
        child_exec(argv, in_fd, out_fd, ep[1], parent);
    close(ep[1]);
    int err = 0;
    ssize_t n;
    do
        n = read(ep[0], &err, sizeof(err));
    while (n < 0 && errno == EINTR);
    close(ep[0]);
    if (n == (ssize_t)sizeof(err)) {
        waitpid_eintr(child, NULL, 0);
        return err > 0 ? -err : -EIO;
    }
    *pid = child;
    return 0;
}

int run_capture(const char *const *argv, const char *input, char *out, size_t cap,
                int timeout_ms)
{
    if (!argv || !argv[0] || timeout_ms <= 0 || (out == NULL) != (cap == 0))
        return -EINVAL;
    if (out)
        out[0] = '\0';
    int op[2];
    int ip[2] = {-1, -1};
    if (pipe2(op, O_CLOEXEC) < 0)
        return -errno;
    if (input && pipe2(ip, O_CLOEXEC) < 0) {
        int rc = -errno;
        close(op[0]);
        close(op[1]);
        return rc;
    }
    pid_t pid = 0;
    int rc = spawn(argv, ip[0], op[1], &pid);
    close(op[1]);
    if (ip[0] >= 0)
        close(ip[0]);
    if (rc < 0) {
        close(op[0]);
        if (ip[1] >= 0)
            close(ip[1]);
        return rc;
    }

    /* Feed stdin and drain stdout+stderr together, so neither side can block
     * the other on a full pipe. */
    int in_fd = ip[1];
    if (in_fd >= 0)
        fcntl(in_fd, F_SETFL, O_NONBLOCK);
    size_t in_len = input ? strlen(input) : 0;
    size_t in_off = 0;
    if (in_fd >= 0 && in_len == 0) {
        close(in_fd);
        in_fd = -1;
    }
    size_t have = 0;
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        struct pollfd pfd[2] = {{.fd = op[0], .events = POLLIN}, {.fd = in_fd, .events = POLLOUT}};
        int pr = poll(pfd, in_fd >= 0 ? 2 : 1, (int)(deadline - now));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            rc = -errno;
            break;
        }
        if (in_fd >= 0 && pfd[1].revents) {
            ssize_t n = write(in_fd, input + in_off, in_len - in_off);
            if (n > 0)
                in_off += (size_t)n;
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || in_off == in_len) {
                close(in_fd); /* done, or the child closed its stdin (EPIPE) */
                in_fd = -1;
            }
        }
        if (!pfd[0].revents)
            continue;
        char buf[4096];
        ssize_t n = read(op[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        if (out) {
            size_t take = (size_t)n;
            if (take > cap - 1 - have)
                take = cap - 1 - have;
            memcpy(out + have, buf, take);
            have += take;
            out[have] = '\0';
        }
    }
    close(op[0]);
    if (in_fd >= 0)
        close(in_fd);
    if (rc < 0)
        kill(pid, SIGKILL);
    int status;
    if (waitpid_eintr(pid, &status, 0) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        return rc;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

/* ---- cleanup at exit (temp dirs a failed CHECK left behind) ---- */

static char tracked[MAX_TRACKED][sizeof(((struct certs *)0)->dir)];
static int exit_hook_armed;

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    /* Only ever our own mkdtemp dirs, even if a struct holds garbage. */
    if (strncmp(dir, DIR_PREFIX, strlen(DIR_PREFIX)) != 0 || strstr(dir, ".."))
        return;
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup_at_exit(void)
{
    for (int i = 0; i < MAX_TRACKED; i++) {
        if (tracked[i][0])
            remove_tree(tracked[i]);
        tracked[i][0] = '\0';
    }
}

static void track(const char *dir)
{
    if (!exit_hook_armed) {
        exit_hook_armed = 1;
        atexit(cleanup_at_exit);
    }
    for (int i = 0; i < MAX_TRACKED; i++) {
        if (!tracked[i][0]) {
            snprintf(tracked[i], sizeof(tracked[i]), "%s", dir);
            return;
        }
    }
}

static void forget(const char *dir)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (!strcmp(tracked[i], dir))
            tracked[i][0] = '\0';
}

/* ---- the certificates ---- */

static int join(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    size_t off = 0;
    int rc = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        off += (size_t)n;
    }
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* One openssl run; on failure prints what ran and what it said. */
static int openssl(const char *const *argv)
{
    char out[4096];
    int rc = run_capture(argv, NULL, out, sizeof(out), OPENSSL_TIMEOUT_MS);
    if (rc == -ENOENT) {
        fputs(openssl_hint, stderr);
        return rc;
    }
    if (rc == 0)
        return 0;
    fprintf(stderr, "certs:");
    for (size_t i = 0; argv[i]; i++)
        fprintf(stderr, " %s", argv[i]);
    if (rc < 0)
        fprintf(stderr, "\n  failed: %s\n", strerror(-rc));
    else
        fprintf(stderr, "\n  exited with status %d; its output:\n%s\n", rc, out);
    return rc < 0 ? rc : -EIO;
}

/* A key and a certificate for @cn signed by the CA, with [@ext] of @cnf. */
static int make_server(const struct certs *c, const char *cnf, const char *csr, const char *cn,
                       const char *ext, const char *cert, const char *key, const char *serial)
{
    const char *const req[] = {
        "openssl", "req", "-new", "-config", cnf, "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", cn, "-out", csr, NULL,
    };
    const char *const sign[] = {
        "openssl", "x509", "-req", "-in", csr, "-CA", c->ca, "-CAkey", c->ca_key,
        "-set_serial", serial, "-days", DAYS, "-extfile", cnf, "-extensions", ext,
        "-out", cert, NULL,
    };
    int rc = openssl(req);
    if (rc == 0)
        rc = openssl(sign);
    unlink(csr);
    return rc;
}

static int make_all(struct certs *c)
{
    char cnf[CERTS_PATH_MAX];
    char csr[CERTS_PATH_MAX];
    int rc;
    if ((rc = join(cnf, sizeof(cnf), c->dir, "openssl.cnf")) < 0 ||
        (rc = join(csr, sizeof(csr), c->dir, "request.csr")) < 0 ||
        (rc = join(c->ca, sizeof(c->ca), c->dir, "ca.pem")) < 0 ||
        (rc = join(c->ca_key, sizeof(c->ca_key), c->dir, "ca.key")) < 0 ||
        (rc = join(c->server_cert, sizeof(c->server_cert), c->dir, "server.pem")) < 0 ||
        (rc = join(c->server_key, sizeof(c->server_key), c->dir, "server.key")) < 0 ||
        (rc = join(c->wrong_cert, sizeof(c->wrong_cert), c->dir, "wrong.pem")) < 0 ||
        (rc = join(c->wrong_key, sizeof(c->wrong_key), c->dir, "wrong.key")) < 0)
        return rc;
    if ((rc = write_file(cnf, openssl_cnf)) < 0)
        return rc;

    /* Random serials: certificates of different runs must never look alike to
     * a client that caches by issuer + serial. */
    char serial_ca[32];
    char serial_server[32];
    char serial_wrong[32];
    unsigned seed = (unsigned)getpid() * 2654435761u ^ (unsigned)now_ms();
    snprintf(serial_ca, sizeof(serial_ca), "%u", 1000u + seed % 1000000u * 3u);
    snprintf(serial_server, sizeof(serial_server), "%u", 1001u + seed % 1000000u * 3u);
    snprintf(serial_wrong, sizeof(serial_wrong), "%u", 1002u + seed % 1000000u * 3u);

    const char *const ca[] = {
        "openssl", "req", "-x509", "-config", cnf, "-extensions", "ca_ext", "-newkey", "ec",
        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", c->ca_key, "-out", c->ca,
        "-subj", "/CN=leasering test CA", "-days", DAYS, "-set_serial", serial_ca, NULL,
    };
    rc = openssl(ca);
    if (rc == 0)
        rc = make_server(c, cnf, csr, "/CN=127.0.0.1", "server_ext", c->server_cert,
                         c->server_key, serial_server);
    if (rc == 0)
        rc = make_server(c, cnf, csr, "/CN=wrong.example", "wrong_ext", c->wrong_cert,
                         c->wrong_key, serial_wrong);
    unlink(cnf);
    return rc;
}

int certs_make(struct certs *c, const char *dir)
{
    memset(c, 0, sizeof(*c));
    if (dir) {
        /* Absolute paths: servers chdir into their own dirs before reading them. */
        char abs[PATH_MAX];
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
            return -errno;
        if (!realpath(dir, abs))
            return -errno;
        if (snprintf(c->dir, sizeof(c->dir), "%s", abs) >= (int)sizeof(c->dir))
            return -ENAMETOOLONG;
    } else {
        snprintf(c->dir, sizeof(c->dir), "%sXXXXXX", DIR_PREFIX);
        if (!mkdtemp(c->dir)) {
            int rc = -errno;
            c->dir[0] = '\0';
            return rc;
        }
        c->own_dir = 1;
        track(c->dir);
    }
    int rc = make_all(c);
    if (rc < 0 && c->own_dir)
        certs_destroy(c);
    return rc;
}

void certs_destroy(struct certs *c)
{
    if (c->own_dir) {
        remove_tree(c->dir);
        forget(c->dir);
    } else {
        const char *files[] = {c->ca,          c->ca_key,     c->server_cert,
                               c->server_key,  c->wrong_cert, c->wrong_key};
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
            if (files[i][0])
                unlink(files[i]);
    }
    memset(c, 0, sizeof(*c));
}
