import Glibc

/// A POSIX thread that the module starts inside a PAM call and always joins before that call
/// returns: the warm-up of the IdP connection while the person types (`CurlTransport.warmUp`)
/// and the check of the synced local password while the IdP answers
/// (`ShadowUtilsAccounts.startPasswordCheck`).
///
/// The host's rules (docs/design.md, "Host-process discipline"): no Foundation `Thread`, no
/// detached thread, nothing left running when the module returns, no signal, no fork. The
/// thread runs a C start routine on a C context the caller made; the caller keeps the context
/// alive until `join()` has returned and only then reads what the thread wrote (pthread_join
/// orders those writes before the reads). The thread starts with every signal blocked, so a
/// signal sent to the host (SIGINT, SIGALRM, SIGCHLD, ...) is always delivered to the host's
/// own threads, as if CloudLogin had started none.
///
/// Not Sendable: the handle is owned by the thread that started it, which joins it.
struct JoinedThread {
    typealias StartRoutine = @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer?

    private var thread: pthread_t?

    /// Starts `routine(context)`, or returns nil when no thread could be started (the caller then
    /// does the work itself or goes without it).
    static func start(_ routine: StartRoutine, context: UnsafeMutableRawPointer) -> JoinedThread? {
        var all = sigset_t()
        var previous = sigset_t()
        sigfillset(&all)
        // The new thread inherits the mask in force at pthread_create: all blocked.
        guard pthread_sigmask(SIG_SETMASK, &all, &previous) == 0 else { return nil }
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, routine, context)
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        guard started == 0 else { return nil }
        return JoinedThread(thread: thread)
    }

    /// Waits for the thread to end. Idempotent.
    mutating func join() {
        guard let running = thread else { return }
        thread = nil
        pthread_join(running, nil)
    }
}
