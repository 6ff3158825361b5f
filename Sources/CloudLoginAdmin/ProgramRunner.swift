import CSpawn
import Glibc

/// Why a program `check` asked could not answer.
public enum ProgramFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// It could not be started (no such file, not executable, no pipe).
    case cannotStart(String)
    /// It did not finish within the time limit (milliseconds) and was killed.
    case timedOut(Int64)
    /// Its exit status could not be collected.
    case statusLost(String)

    public var description: String {
        switch self {
        case .cannotStart(let why): return "could not be started: \(why)"
        case .timedOut(let limit): return "did not finish within \(limit) ms and was stopped"
        case .statusLost(let why): return "its exit status was lost: \(why)"
        }
    }
}

/// Runs a program for `cloudlogin check` (`sshd -T`) as the calling user: a fixed argument
/// vector, a fixed environment, no shell, standard input from /dev/null, standard output and
/// standard error each read into memory (bounded), every signal at its default, and killed
/// after a time limit. The module's `ToolRunner` is for the account tools: it runs them as
/// root and is bounded for error messages; `check` changes nothing and may run as anyone.
public enum ProgramRunner {
    public struct Output: Equatable, Sendable {
        /// The exit status, or 128 + the number of the signal that ended it.
        public var status: Int32
        public var standardOutput: String
        public var standardError: String
    }

    static let environment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"]

    /// Runs `path` with `arguments` (argv[1...]). Output beyond `maximumOutput` bytes per stream
    /// is read and dropped.
    public static func run(_ path: String, _ arguments: [String], timeLimit: Int64 = 10_000,
                           maximumOutput: Int = 1 << 20) -> Result<Output, ProgramFailure> {
        var outputPipe: [Int32] = [-1, -1]
        var errorPipe: [Int32] = [-1, -1]
        guard CSpawn_pipe_cloexec(&outputPipe) == 0 else { return .failure(.cannotStart("pipe: \(errnoText())")) }
        guard CSpawn_pipe_cloexec(&errorPipe) == 0 else {
            close(outputPipe[0]); close(outputPipe[1])
            return .failure(.cannotStart("pipe: \(errnoText())"))
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errorPipe[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var every = sigset_t()
        sigfillset(&every)
        posix_spawnattr_setsigdefault(&attributes, &every)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(truncatingIfNeeded: POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        var spawned = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        // ETXTBSY is transient: the file is still open for writing somewhere (a package being
        // upgraded; or, in the tests, a child another thread forked while a script was written,
        // which holds the descriptor until its own exec).
        var tries = 0
        while spawned == ETXTBSY && tries < 50 {
            tries += 1
            usleep(20_000)
            spawned = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        }
        close(outputPipe[1])
        close(errorPipe[1])
        guard spawned == 0 else {
            close(outputPipe[0]); close(errorPipe[0])
            return .failure(.cannotStart(String(cString: strerror(spawned))))
        }

        // Read both streams until the program closes them, at most `timeLimit` in all.
        var streams = [pollfd(fd: outputPipe[0], events: Int16(truncatingIfNeeded: POLLIN), revents: 0),
                       pollfd(fd: errorPipe[0], events: Int16(truncatingIfNeeded: POLLIN), revents: 0)]
        var collected: [[UInt8]] = [[], []]
        var chunk = [UInt8](repeating: 0, count: 4096)
        let started = monotonicMilliseconds()
        var timedOut = false
        while streams.contains(where: { $0.fd >= 0 }) {
            let left = timeLimit &- (monotonicMilliseconds() &- started)
            if left <= 0 { timedOut = true; break }
            let ready = poll(&streams, nfds_t(truncatingIfNeeded: streams.count), Int32(clamping: min(left, 1000)))
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            for index in streams.indices where streams[index].fd >= 0 && streams[index].revents != 0 {
                let descriptor = streams[index].fd
                let got = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if got < 0 && errno == EINTR { continue }
                if got <= 0 {
                    close(descriptor)
                    streams[index].fd = -1
                    continue
                }
                let room = maximumOutput &- collected[index].count
                if room > 0 { collected[index].append(contentsOf: chunk.prefix(min(got, room))) }
            }
        }
        for stream in streams where stream.fd >= 0 { close(stream.fd) }
        if timedOut { kill(pid, SIGKILL) }

        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno == EINTR { continue }
            return .failure(.statusLost(errnoText()))
        }
        if timedOut { return .failure(.timedOut(timeLimit)) }
        let exited = (status & 0x7F) == 0
        let code: Int32 = exited ? (status >> 8) & 0xFF : 128 &+ (status & 0x7F)
        return .success(Output(status: code, standardOutput: String(decoding: collected[0], as: UTF8.self),
                               standardError: String(decoding: collected[1], as: UTF8.self)))
    }

    static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(truncatingIfNeeded: now.tv_sec) &* 1000 &+ Int64(truncatingIfNeeded: now.tv_nsec / 1_000_000)
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
