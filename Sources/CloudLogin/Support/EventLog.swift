/// How bad a logged event is; maps to syslog priorities in the PAM glue.
public enum LogLevel: Sendable {
    case debug, info, notice, warning, error
}

/// Where the core reports what it did: syslog in the module, standard error in the CLI.
///
/// Callers never pass a password, a client secret or a token. Local account and group names
/// do reach `info` and above where a line says what changed or why a sign-in was refused (an
/// account created, a password synced, a group granted or taken back, a subject mismatch);
/// the login asked about and Okta's steps go only to `debug`, which the sink drops unless the
/// `debug` module argument (or `--trace`) is on. The one summary line per sign-in names no
/// user, but for a managed account let in offline under a broken config (`Outcome.summary`).
public protocol EventLog {
    func record(_ level: LogLevel, _ message: String)
}

extension EventLog {
    public func debug(_ message: @autoclosure () -> String) { record(.debug, message()) }
    public func info(_ message: String) { record(.info, message) }
    public func notice(_ message: String) { record(.notice, message) }
    public func warning(_ message: String) { record(.warning, message) }
    public func error(_ message: String) { record(.error, message) }
}

/// Drops everything; for callers that do not log.
public struct SilentLog: EventLog {
    public init() {}
    public func record(_ level: LogLevel, _ message: String) {}
}
