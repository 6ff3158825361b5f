// How the account tools are started. Two reasons for C here:
// - Swift's Glibc module is built without _GNU_SOURCE, so pipe2 is not visible to it (and
//   defining _GNU_SOURCE here would change struct layouts other modules see).
// - The tools must run with real AND effective uid 0 (shadow-utils' gpasswd and usermod check
//   getuid(), and sudo/su run the module with the caller's real uid), without changing the host
//   process's own credentials. posix_spawn cannot change credentials in the child, so the child
//   is made with fork() and does only async-signal-safe system calls before execve.
#ifndef CLOUDLOGIN_CSPAWN_SHIM_H
#define CLOUDLOGIN_CSPAWN_SHIM_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern int pipe2(int pipefd[2], int flags);

/// pipe2(fds, O_CLOEXEC): neither end leaks into another child of the host process.
static inline int CSpawn_pipe_cloexec(int *_Nonnull fds) { return pipe2(fds, O_CLOEXEC); }

/// In the child only: report `error` on `fd` and exit without running atexit handlers or
/// flushing the host's stdio buffers.
static inline void CSpawn_child_fail(int fd, int error) {
    ssize_t ignored = write(fd, &error, sizeof error);
    (void)ignored;
    _exit(127);
}

/// Starts `path` with `argv` and `envp` as root: real, effective and saved uid and gid 0, no
/// supplementary groups, umask 022, every signal at its default and unblocked, the resource
/// limits a caller could have lowered (file size, CPU, memory) lifted, `input` on stdin,
/// `output` on stdout and stderr, every other descriptor closed. Needs euid 0. Returns 0 and
/// the child's pid, or an errno value (the fork failed, or the child could not become root
/// or exec the tool).
///
/// The credential changes use raw system calls: they act on the calling thread only, which
/// in the child of fork() is the only thread (glibc's wrappers would try to signal the
/// host's other threads, which do not exist there).
static inline int CSpawn_spawn_as_root(const char *_Nonnull path, char *_Nullable const *_Nonnull argv,
                                       char *_Nullable const *_Nonnull envp, int input, int output,
                                       pid_t *_Nonnull pid) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return errno;
    pid_t child = fork();
    if (child < 0) {
        int error = errno;
        close(report[0]);
        close(report[1]);
        return error;
    }
    if (child == 0) {
        sigset_t none;
        struct sigaction defaults;
        sigemptyset(&none);
        for (int sig = 1; sig < NSIG; sig++) {
            if (sig == SIGKILL || sig == SIGSTOP) continue;
            defaults.sa_handler = SIG_DFL;
            defaults.sa_flags = 0;
            sigemptyset(&defaults.sa_mask);
            sigaction(sig, &defaults, NULL);
        }
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (syscall(SYS_setgroups, 0, NULL) != 0) CSpawn_child_fail(report[1], errno);
        if (syscall(SYS_setresgid, 0, 0, 0) != 0) CSpawn_child_fail(report[1], errno);
        if (syscall(SYS_setresuid, 0, 0, 0) != 0) CSpawn_child_fail(report[1], errno);
        struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
        setrlimit(RLIMIT_FSIZE, &unlimited);
        setrlimit(RLIMIT_CPU, &unlimited);
        setrlimit(RLIMIT_AS, &unlimited);
        setrlimit(RLIMIT_DATA, &unlimited);
        umask(022);
        // A host may run with stdin/stdout/stderr closed, so any of the three descriptors can
        // be 0, 1 or 2: move them above 2 before they are put in place.
        int keep = fcntl(report[1], F_DUPFD_CLOEXEC, 3);
        int in = fcntl(input, F_DUPFD_CLOEXEC, 3);
        int out = fcntl(output, F_DUPFD_CLOEXEC, 3);
        if (keep < 0 || in < 0 || out < 0) CSpawn_child_fail(keep < 0 ? report[1] : keep, errno);
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) CSpawn_child_fail(keep, errno);
        // Every other descriptor of the host, except the report pipe (close-on-exec).
        if (keep > 3) syscall(SYS_close_range, 3, keep - 1, 0);
        if (syscall(SYS_close_range, keep + 1, ~0U, 0) != 0) {
            for (int fd = keep + 1; fd < 65536; fd++) close(fd);
        }
        execve(path, argv, envp);
        CSpawn_child_fail(keep, errno);
    }
    close(report[1]);
    int error = 0;
    ssize_t got;
    do {
        got = read(report[0], &error, sizeof error);
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof error) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        return error == 0 ? ECHILD : error;
    }
    *pid = child;
    return 0;
}

#endif
