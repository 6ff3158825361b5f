import ArgumentParser
import CloudLogin
import CloudLoginPAM
import Glibc

@main
struct CloudLoginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloudlogin",
        abstract: "Set up and diagnose CloudLogin, the PAM module for signing in to Linux with a cloud identity.",
        version: CloudLoginVersion.string,
        subcommands: [Setup.self, Check.self, Login.self, Status.self]
    )
}

/// Options every command takes.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The config file.")
    var config: String = Config.defaultPath

    /// Loads the config as the module would, printing warnings; exits 1 on an error.
    func load() throws -> Config {
        switch ConfigLoader.load(path: config, owner: ConfigOption.owner) {
        case .failure(let problem):
            printError("error: \(problem)")
            throw ExitCode(1)
        case .success(let loaded):
            for warning in loaded.warnings { printError("warning: \(warning)") }
            return loaded
        }
    }
}

extension ConfigOption {
    /// The uid that must own the config and secret files: root, as in the module.
    static let owner: uid_t = 0
}

/// Standard error, for what is not the command's result.
func printError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// Log lines to standard error; debug lines only with --trace.
struct TerminalLog: EventLog {
    var trace: Bool

    func record(_ level: LogLevel, _ message: String) {
        switch level {
        case .debug: if trace { printError("trace: \(message)") }
        case .info, .notice: if trace { printError("info: \(message)") }
        case .warning: printError("warning: \(message)")
        case .error: printError("error: \(message)")
        }
    }

    /// One step of `cloudlogin login --trace`: "trace: [phase] message".
    func step(_ phase: String, _ message: @autoclosure () -> String) {
        if trace { printError("trace: [\(phase)] \(message())") }
    }
}
