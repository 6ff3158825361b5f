import CloudLogin
import Glibc

/// Standard error, for what is not the command's result.
public func printError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// Log lines to standard error; debug lines only with --trace.
public struct TerminalLog: EventLog {
    public var trace: Bool

    public init(trace: Bool) {
        self.trace = trace
    }

    public func record(_ level: LogLevel, _ message: String) {
        switch level {
        case .debug: if trace { printError("trace: \(message)") }
        case .info, .notice: if trace { printError("info: \(message)") }
        case .warning: printError("warning: \(message)")
        case .error: printError("error: \(message)")
        }
    }

    /// One step of `cloudlogin login --trace`: "trace: [phase] message".
    public func step(_ phase: String, _ message: @autoclosure () -> String) {
        if trace { printError("trace: [\(phase)] \(message())") }
    }
}
