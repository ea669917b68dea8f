/* SPDX-License-Identifier: MIT */
/*
 * proc.h - process plumbing shared by the test helpers that run real
 * programs (redis_server.c, azurite.c, certs.c): fork + exec (never a shell),
 * waiting with a timeout, kill-and-reap, capturing output, log tails, free
 * loopback ports, private temp dirs and absolute paths.
 *
 * Children die with the *thread* that started them (PR_SET_PDEATHSIG =
 * SIGKILL before exec: start them from the main thread) and inherit no fds
 * beyond 0-2. Temp dirs made by proc_mkdtemp sit in one table together with
 * the pid of the process that lives in each; an atexit hook kills those
 * processes and removes those dirs, so a failed CHECK that returns before the
 * helper's destroy call leaves nothing behind. Crashes skip atexit; the death
 * signal still kills the children then, only dirs remain.
 *
 * Errors are -errno. None of this is thread-safe: use it from the test's
 * main thread.
 */
#ifndef LR_TEST_PROC_H
#define LR_TEST_PROC_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Every temp dir proc_mkdtemp makes starts with this; proc_rmtree removes
 * nothing else. */
#define PROC_DIR_PREFIX "/tmp/leasering-"

/* ---- time ---- */

/* proc_now_ms - CLOCK_MONOTONIC in milliseconds. */
uint64_t proc_now_ms(void);

/* proc_sleep_ms - sleep @ms milliseconds (resumed across EINTR). */
void proc_sleep_ms(unsigned ms);

/* ---- children ---- */

/* proc_waitpid - waitpid, retried on EINTR. */
pid_t proc_waitpid(pid_t pid, int *status, int flags);

/*
 * proc_spawn - fork + execvp @argv (argv[0] looked up on PATH unless it
 * contains a '/'), no shell.
 * @cwd: directory the child changes into first, or NULL to keep ours.
 * @in_fd: its stdin, or -1 for /dev/null.
 * @out_fd/@err_fd: its stdout/stderr, or -1 to inherit ours.
 * Returns: 0 with *@pid set once exec has succeeded; -ENOENT no such program;
 * other -errno (from fork, pipe, chdir or exec; the child is reaped).
 */
int proc_spawn(const char *const *argv, const char *cwd, int in_fd, int out_fd, int err_fd,
               pid_t *pid);

/*
 * proc_spawn_logged - proc_spawn with stdout and stderr appended to
 * @logfile (created 0600 if missing) and stdin from /dev/null.
 * @log_from: receives the log's size before the spawn, so that a caller can
 *            look only at what this run wrote (proc_log_contains).
 * Returns: as proc_spawn; -errno if the log cannot be opened.
 */
int proc_spawn_logged(const char *const *argv, const char *cwd, const char *logfile,
                      off_t *log_from, pid_t *pid);

/*
 * proc_reaped - reap *@pid if it has exited (WNOHANG).
 * @dir: its proc_mkdtemp dir, whose exit-hook entry then forgets the pid, or NULL.
 * Returns: 1 and *@pid = 0 if it is gone (also when someone else reaped it);
 * 0 while it runs.
 */
int proc_reaped(pid_t *pid, const char *dir);

/* proc_kill - SIGKILL and reap *@pid; *@pid = 0 and @dir's exit-hook entry
 * (if @dir) is updated. Returns: 0; -ESRCH *@pid was 0 (nothing done). */
int proc_kill(pid_t *pid, const char *dir);

/*
 * proc_stop - SIGTERM (plus SIGCONT, so a stopped process handles it too),
 * then wait up to @timeout_ms for it to exit, then SIGKILL. Always reaps;
 * *@pid = 0, and @dir's exit-hook entry (if @dir) is updated.
 * Returns: 0 (also when *@pid is 0); -ETIMEDOUT it needed the SIGKILL.
 */
int proc_stop(pid_t *pid, const char *dir, int timeout_ms);

/* How proc_await_ready knows a freshly spawned server is up: */
struct proc_ready {
    int (*ready)(void *ctx); /* 1 up, 0 not yet, < 0 give up with that error */
    void *ctx;
    const char *in_use; /* log text (proc_log_contains) meaning "port taken" */
    int timeout_ms;
    unsigned poll_ms;
};

/*
 * proc_await_ready - after proc_spawn_logged: poll r->ready every
 * r->poll_ms until it answers 1, then check *@pid still runs (a port thief
 * may have answered).
 * @dir/@logfile/@log_from: its proc_mkdtemp dir, its log and where this
 *            run's part of the log starts.
 * Returns: 0 ready; -EIO it exited (-EADDRINUSE when this run's log has
 * r->in_use); -ETIMEDOUT not ready within r->timeout_ms; a negative answer of
 * r->ready. On failure the process is killed and reaped (*@pid = 0).
 */
int proc_await_ready(pid_t *pid, const char *dir, const char *logfile, off_t log_from,
                     const struct proc_ready *r);

/*
 * proc_capture - run @argv (argv[0] looked up on PATH, no shell) and wait for it.
 * @input: written to its stdin, which is then closed; NULL: stdin is /dev/null.
 * @out/@cap: receives its stdout (and stderr when @err_fd is
 *            PROC_ERR_CAPTURE), NUL-terminated, truncated to @cap-1 bytes
 *            (the rest is drained), or NULL/0 to discard.
 * @timeout_ms: the child is SIGKILLed when it has not exited by then.
 * @err_fd: where its stderr goes: PROC_ERR_CAPTURE (into @out, interleaved
 *          with stdout), -1 (inherit ours), or an fd (e.g. /dev/null).
 * Returns: the exit status (>= 0; 128+signal if killed by a signal);
 * -ENOENT no such program; -ETIMEDOUT; -EINVAL; other -errno.
 */
#define PROC_ERR_CAPTURE (-2)
int proc_capture(const char *const *argv, const char *input, char *out, size_t cap,
                 int timeout_ms, int err_fd);

/*
 * run_capture - proc_capture with stderr captured too: run @argv and get its
 * stdout AND stderr interleaved in @out (see proc_capture for the rest).
 */
int run_capture(const char *const *argv, const char *input, char *out, size_t cap,
                int timeout_ms);

/* ---- logs ---- */

/* proc_file_size - st_size of @path, or 0 if it cannot be stat'ed. */
off_t proc_file_size(const char *path);

/*
 * proc_log_contains - 1 if @logfile, from byte @from on (at most 16 KiB of
 * it), contains @needle not followed by a digit (so ":1234" does not match
 * ":12345"); else 0.
 */
int proc_log_contains(const char *logfile, off_t from, const char *needle);

/* proc_log_tail - print the last @lines lines of @logfile (at most its last
 * 16 KiB) to stderr, or "(no log: ...)" / "(log is empty)". */
void proc_log_tail(const char *logfile, int lines);

/* ---- loopback ---- */

/*
 * proc_pick_port - a free TCP port on 127.0.0.1, found by binding port 0 and
 * closing again (someone may take it before our server binds it: callers
 * retry on -EADDRINUSE). Ports 6379 (a system redis) and 10000-10002
 * (Azurite's defaults) are never returned.
 * Returns: 0 with *@port set; -EADDRINUSE only unwanted ports came up; -errno.
 */
int proc_pick_port(int *port);

/* proc_connect - a connected TCP socket (SOCK_CLOEXEC) to 127.0.0.1:@port,
 * with send and receive timeouts of @timeout_ms (0: none); -1 on failure. */
int proc_connect(int port, int timeout_ms);

/* proc_loopback_addr - 127.0.0.1:@port into @out. */
void proc_loopback_addr(int port, struct sockaddr_in *out);

/* ---- files and dirs ---- */

/*
 * proc_mkdtemp - make a private temp dir @prefix "XXXXXX" (mode 0700) into
 * @dir and enter it in the exit hook's table (a full table only loses the
 * exit-time cleanup). @prefix must start with PROC_DIR_PREFIX.
 * Returns: 0; -ENAMETOOLONG; -EINVAL a bad @prefix; other -errno from
 * mkdtemp. On failure @dir is "".
 */
int proc_mkdtemp(char *dir, size_t cap, const char *prefix);

/* proc_track - record @pid (0: none) as the process living in @dir, a
 * proc_mkdtemp dir, for the exit hook. */
void proc_track(const char *dir, pid_t pid);

/* proc_rmtree - remove @dir with all its contents and drop it from the exit
 * hook's table. Only dirs under PROC_DIR_PREFIX without ".." are touched
 * (even if a struct holds garbage). */
void proc_rmtree(const char *dir);

/*
 * proc_abs_path - realpath of @path into @out (servers chdir into their own
 * dirs, where a relative path would not resolve).
 * @who: on a realpath failure, "<who> <path>: <strerror>" goes to stderr; NULL: quiet.
 * Returns: 0; -EINVAL @path is NULL; -ENAMETOOLONG; other -errno.
 */
int proc_abs_path(char *out, size_t cap, const char *who, const char *path);

#endif
