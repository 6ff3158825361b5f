import CSpawn
import Glibc

/// The result of running a system tool.
public struct ToolResult: Equatable, Sendable {
    public var status: Int32
    /// What the tool wrote to stdout and stderr (bounded), for error messages.
    public var output: String
}

/// Runs the system's account tools (useradd, usermod, groupadd, gpasswd, chpasswd) as root (real and
/// effective uid 0): a fixed argument vector, a clean environment, no shell, input only on
/// stdin, every other descriptor closed.
public enum ToolRunner {
    static let environment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"]
    static let maximumOutput = 4096
    /// How long one tool may run at most.
    public static let timeLimitMilliseconds: Int64 = 30_000

    /// Writes `input` to a pipe. A tool that exits before reading would raise SIGPIPE, which
    /// kills the host (login, sudo) by default: SIGPIPE is blocked in this thread for the write
    /// and a SIGPIPE the write caused is taken back before the mask is restored.
    static func writeWithoutSIGPIPE(_ input: SecretBytes, to descriptor: Int32) {
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        var previousMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previousMask)
        var pendingBefore = sigset_t()
        sigpending(&pendingBefore)
        let wasPending = sigismember(&pendingBefore, SIGPIPE) == 1
        input.withBytes { bytes in
            var offset = 0
            while offset < bytes.count, let base = bytes.baseAddress {
                let written = write(descriptor, base + offset, bytes.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { break }
                offset += written
            }
        }
        var pendingAfter = sigset_t()
        sigpending(&pendingAfter)
        if !wasPending && sigismember(&pendingAfter, SIGPIPE) == 1 {
            var noWait = timespec(tv_sec: 0, tv_nsec: 0)
            _ = sigtimedwait(&pipeSignal, nil, &noWait)
        }
        pthread_sigmask(SIG_SETMASK, &previousMask, nil)
    }

    /// Runs `path` with `arguments` (argv[1...]); `input` goes to stdin and is not kept.
    public static func run(_ path: String, _ arguments: [String], input: SecretBytes? = nil,
                           timeLimit: Int64 = timeLimitMilliseconds) -> Result<ToolResult, AccountError> {
        guard timeLimit > 0 else { return .failure(.toolFailed(path, "not started: the sign-in's time is up")) }
        var inputPipe: [Int32] = [-1, -1]
        var outputPipe: [Int32] = [-1, -1]
        guard CSpawn_pipe_cloexec(&inputPipe) == 0 else { return .failure(.toolFailed(path, "pipe: \(errnoText())")) }
        guard CSpawn_pipe_cloexec(&outputPipe) == 0 else {
            close(inputPipe[0]); close(inputPipe[1])
            return .failure(.toolFailed(path, "pipe: \(errnoText())"))
        }
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        // As root, whatever the host's real uid (sudo and su run us with the caller's): the
        // tools check getuid(). The child starts with default signal handling, no blocked
        // signals, the host's lowered resource limits lifted and only stdin/stdout/stderr open.
        var pid: pid_t = 0
        let spawned = CSpawn_spawn_as_root(path, argv, envp, inputPipe[0], outputPipe[1], &pid)
        close(inputPipe[0])
        close(outputPipe[1])
        guard spawned == 0 else {
            close(inputPipe[1]); close(outputPipe[0])
            return .failure(.toolFailed(path, "cannot start: \(String(cString: strerror(spawned)))"))
        }

        if let input { writeWithoutSIGPIPE(input, to: inputPipe[1]) }
        close(inputPipe[1])

        // Read what the tool says until it closes its end, at most `timeLimit` in all: a tool
        // that hangs (a stale lock in /etc) is killed rather than hanging login or sudo.
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        var timedOut = false
        var waitedMilliseconds: Int64 = 0
        while true {
            var descriptor = pollfd(fd: outputPipe[0], events: Int16(truncatingIfNeeded: POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 100)
            if ready == 0 {
                waitedMilliseconds &+= 100
                if waitedMilliseconds >= timeLimit { timedOut = true; break }
                continue
            }
            if ready < 0 && errno == EINTR { continue }
            let got = chunk.withUnsafeMutableBytes { read(outputPipe[0], $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { break }
            if output.count < maximumOutput { output.append(contentsOf: chunk[0..<min(got, maximumOutput - output.count)]) }
        }
        close(outputPipe[0])
        if timedOut { kill(pid, SIGKILL) }

        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno == EINTR { continue }
            // The host reaped our child (a SIGCHLD handler): the exit status is lost.
            return .failure(.toolFailed(path, "exit status lost: \(errnoText())"))
        }
        if timedOut {
            return .failure(.toolFailed(path, "did not finish within \(timeLimit) ms and was stopped"))
        }
        let exited = (status & 0x7F) == 0
        let code: Int32 = exited ? (status >> 8) & 0xFF : 128 &+ (status & 0x7F)
        let text = String(decoding: output, as: UTF8.self)
        return .success(ToolResult(status: code, output: text))
    }

    /// Runs a tool and turns a non-zero exit into an error naming the tool and its message.
    public static func check(_ path: String, _ arguments: [String], input: SecretBytes? = nil,
                             timeLimit: Int64 = timeLimitMilliseconds) -> Result<Void, AccountError> {
        run(path, arguments, input: input, timeLimit: timeLimit).flatMap { result in
            guard result.status == 0 else {
                let name = path.split(separator: "/").last.map(String.init) ?? path
                let message = result.output.split(separator: "\n").first.map(String.init) ?? ""
                return .failure(.toolFailed(name, "exit \(result.status): \(message)"))
            }
            return .success(())
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
