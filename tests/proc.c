/* SPDX-License-Identifier: MIT */
/* proc.c - see proc.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

#define MAX_TRACKED 96
#define LOG_READ_MAX 16384

/* ---- time ---- */

uint64_t proc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void proc_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

pid_t proc_waitpid(pid_t pid, int *status, int flags)
{
    pid_t r;
    do
        r = waitpid(pid, status, flags);
    while (r < 0 && errno == EINTR);
    return r;
}

/* ---- cleanup at exit ----
 * The helpers' structs (often on the stack) are gone when a failed CHECK
 * returns early, so this table keeps copies of each temp dir and the pid
 * living in it. */

struct tracked {
    pid_t pid;
    char dir[256];
};

static struct tracked tracked[MAX_TRACKED];
static int exit_hook_armed;

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    remove(path);
    return 0; /* keep going: remove as much as possible */
}

static void remove_tree(const char *dir)
{
    if (strncmp(dir, PROC_DIR_PREFIX, strlen(PROC_DIR_PREFIX)) != 0 || strstr(dir, ".."))
        return;
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup_at_exit(void)
{
    for (int i = 0; i < MAX_TRACKED; i++) {
        struct tracked *t = &tracked[i];
        if (t->pid > 0) {
            kill(t->pid, SIGKILL);
            proc_waitpid(t->pid, NULL, 0);
        }
        if (t->dir[0])
            remove_tree(t->dir);
        memset(t, 0, sizeof(*t));
    }
}

/* @dir's entry, else a free one, else NULL. */
static struct tracked *find_tracked(const char *dir)
{
    struct tracked *free_slot = NULL;
    for (int i = 0; i < MAX_TRACKED; i++) {
        if (!strcmp(tracked[i].dir, dir))
            return &tracked[i];
        if (!free_slot && !tracked[i].dir[0])
            free_slot = &tracked[i];
    }
    return free_slot;
}

void proc_track(const char *dir, pid_t pid)
{
    if (!dir || !dir[0])
        return;
    if (!exit_hook_armed) {
        exit_hook_armed = 1;
        atexit(cleanup_at_exit);
    }
    struct tracked *t = find_tracked(dir);
    if (!t)
        return;
    t->pid = pid;
    snprintf(t->dir, sizeof(t->dir), "%s", dir);
}

static void forget(const char *dir)
{
    struct tracked *t = find_tracked(dir);
    if (t && t->dir[0])
        memset(t, 0, sizeof(*t));
}

/* ---- spawning ---- */

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

/* Between fork and exec: async-signal-safe calls only (the parent may have
 * threads holding malloc or stdio locks). Reports failure as an errno on
 * @report_fd, which exec closes on success. */
static _Noreturn void child_exec(const char *const *argv, const char *cwd, int in_fd, int out_fd,
                                 int err_fd, int report_fd, pid_t parent)
{
    int err;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(SIGPIPE, &dfl, NULL);
    /* Die with the thread that forked us, even on its crash; if it already
     * died before prctl, we were reparented and must not run at all. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        goto fail;
    if (getppid() != parent) {
        errno = ESRCH;
        goto fail;
    }
    if (cwd && chdir(cwd) < 0)
        goto fail;
    if (in_fd < 0)
        in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in_fd < 0 || dup2(in_fd, STDIN_FILENO) < 0)
        goto fail;
    if (out_fd >= 0 && dup2(out_fd, STDOUT_FILENO) < 0)
        goto fail;
    if (err_fd >= 0 && dup2(err_fd, STDERR_FILENO) < 0)
        goto fail;
    set_cloexec_from(STDERR_FILENO + 1);
    execvp(argv[0], (char *const *)argv);
fail:
    err = errno;
    while (write(report_fd, &err, sizeof(err)) < 0 && errno == EINTR)
        ;
    _exit(127);
}

int proc_spawn(const char *const *argv, const char *cwd, int in_fd, int out_fd, int err_fd,
               pid_t *pid)
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
        child_exec(argv, cwd, in_fd, out_fd, err_fd, ep[1], parent);
    close(ep[1]);
    int err = 0;
    ssize_t n;
    do
        n = read(ep[0], &err, sizeof(err));
    while (n < 0 && errno == EINTR);
    close(ep[0]);
    if (n == (ssize_t)sizeof(err)) {
        proc_waitpid(child, NULL, 0);
        return err > 0 ? -err : -EIO;
    }
    *pid = child; /* EOF: exec closed the pipe */
    return 0;
}

int proc_spawn_logged(const char *const *argv, const char *cwd, const char *logfile,
                      off_t *log_from, pid_t *pid)
{
    int log_fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0)
        return -errno;
    *log_from = proc_file_size(logfile);
    int rc = proc_spawn(argv, cwd, -1, log_fd, log_fd, pid);
    close(log_fd);
    return rc;
}

int proc_reaped(pid_t *pid, const char *dir)
{
    pid_t r = proc_waitpid(*pid, NULL, WNOHANG);
    if (r == 0)
        return 0;
    *pid = 0; /* r == pid, or ECHILD: someone else reaped it */
    proc_track(dir, 0);
    return 1;
}

int proc_kill(pid_t *pid, const char *dir)
{
    if (!*pid)
        return -ESRCH;
    kill(*pid, SIGKILL);
    proc_waitpid(*pid, NULL, 0);
    *pid = 0;
    proc_track(dir, 0);
    return 0;
}

int proc_stop(pid_t *pid, const char *dir, int timeout_ms)
{
    if (!*pid)
        return 0;
    kill(*pid, SIGTERM);
    kill(*pid, SIGCONT); /* a stopped process handles SIGTERM only once continued */
    uint64_t deadline = proc_now_ms() + (uint64_t)timeout_ms;
    while (!proc_reaped(pid, dir)) {
        if (proc_now_ms() >= deadline) {
            proc_kill(pid, dir);
            return -ETIMEDOUT;
        }
        proc_sleep_ms(5);
    }
    return 0;
}

int proc_await_ready(pid_t *pid, const char *dir, const char *logfile, off_t log_from,
                     const struct proc_ready *r)
{
    int rc;
    uint64_t deadline = proc_now_ms() + (uint64_t)r->timeout_ms;
    for (;;) {
        if (proc_reaped(pid, dir)) {
            rc = -EIO;
            break;
        }
        int up = r->ready(r->ctx);
        if (up < 0) {
            rc = up;
            break;
        }
        if (up) {
            /* Something answered; make sure it was ours, not a port thief. */
            if (!proc_reaped(pid, dir))
                return 0;
            rc = -EIO;
            break;
        }
        if (proc_now_ms() >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        proc_sleep_ms(r->poll_ms);
    }
    proc_kill(pid, dir);
    if (rc == -EIO && r->in_use && proc_log_contains(logfile, log_from, r->in_use))
        rc = -EADDRINUSE;
    return rc;
}

/* ---- capturing output ---- */

int proc_capture(const char *const *argv, const char *input, char *out, size_t cap,
                 int timeout_ms, int err_fd)
{
    if (!argv || !argv[0] || timeout_ms <= 0 || (out == NULL) != (cap == 0) ||
        err_fd < PROC_ERR_CAPTURE)
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
    int rc = proc_spawn(argv, NULL, ip[0], op[1], err_fd == PROC_ERR_CAPTURE ? op[1] : err_fd,
                        &pid);
    close(op[1]);
    if (ip[0] >= 0)
        close(ip[0]);
    if (rc < 0) {
        close(op[0]);
        if (ip[1] >= 0)
            close(ip[1]);
        return rc;
    }

    /* Feed stdin and drain the output together, so neither side can block
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
    uint64_t deadline = proc_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t now = proc_now_ms();
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
    if (proc_waitpid(pid, &status, 0) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        return rc;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

int run_capture(const char *const *argv, const char *input, char *out, size_t cap,
                int timeout_ms)
{
    return proc_capture(argv, input, out, cap, timeout_ms, PROC_ERR_CAPTURE);
}

/* ---- logs ---- */

off_t proc_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

int proc_log_contains(const char *logfile, off_t from, const char *needle)
{
    char buf[LOG_READ_MAX];
    int fd = open(logfile, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    size_t len = strlen(needle);
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++)
        if (p[len] < '0' || p[len] > '9')
            return 1;
    return 0;
}

void proc_log_tail(const char *logfile, int lines)
{
    char buf[LOG_READ_MAX];
    int fd = open(logfile, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "  (no log: %s)\n", strerror(errno));
        return;
    }
    off_t size = proc_file_size(logfile);
    off_t from = size > (off_t)sizeof(buf) ? size - (off_t)sizeof(buf) : 0;
    ssize_t n = pread(fd, buf, sizeof(buf), from);
    close(fd);
    if (n <= 0) {
        fprintf(stderr, "  (log is empty)\n");
        return;
    }
    size_t start = (size_t)n;
    if (buf[start - 1] == '\n')
        start--; /* the final newline ends the last line, it does not start one */
    for (int seen = 0; start > 0; start--)
        if (buf[start - 1] == '\n' && ++seen == lines)
            break;
    fwrite(buf + start, 1, (size_t)n - start, stderr);
    if (buf[n - 1] != '\n')
        fputc('\n', stderr);
}

/* ---- loopback ---- */

void proc_loopback_addr(int port, struct sockaddr_in *out)
{
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    out->sin_port = htons((uint16_t)port);
}

int proc_pick_port(int *port)
{
    for (int i = 0; i < 16; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        struct sockaddr_in sa;
        proc_loopback_addr(0, &sa);
        socklen_t len = sizeof(sa);
        int rc = 0;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
            rc = -errno;
        close(fd); /* free again; the server binds it next (a race callers retry) */
        if (rc < 0)
            return rc;
        *port = ntohs(sa.sin_port);
        /* A system redis and Azurite's default ports (someone may run one). */
        if (*port != 6379 && (*port < 10000 || *port > 10002))
            return 0;
    }
    return -EADDRINUSE;
}

int proc_connect(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (timeout_ms > 0) {
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    struct sockaddr_in sa;
    proc_loopback_addr(port, &sa);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- files and dirs ---- */

int proc_mkdtemp(char *dir, size_t cap, const char *prefix)
{
    if (strncmp(prefix, PROC_DIR_PREFIX, strlen(PROC_DIR_PREFIX)) != 0) {
        if (cap)
            dir[0] = '\0';
        return -EINVAL;
    }
    int n = snprintf(dir, cap, "%sXXXXXX", prefix);
    if (n < 0 || (size_t)n >= cap) {
        if (cap)
            dir[0] = '\0';
        return -ENAMETOOLONG;
    }
    if (!mkdtemp(dir)) {
        int rc = -errno;
        dir[0] = '\0';
        return rc;
    }
    proc_track(dir, 0);
    return 0;
}

void proc_rmtree(const char *dir)
{
    if (!dir || !dir[0])
        return;
    remove_tree(dir);
    forget(dir);
}

int proc_abs_path(char *out, size_t cap, const char *who, const char *path)
{
    char buf[PATH_MAX];
    if (!path)
        return -EINVAL;
    if (!realpath(path, buf)) {
        int rc = -errno;
        if (who)
            fprintf(stderr, "%s %s: %s\n", who, path, strerror(-rc));
        return rc;
    }
    return snprintf(out, cap, "%s", buf) >= (int)cap ? -ENAMETOOLONG : 0;
}
