import ArgumentParser
import CloudLogin
import CloudLoginAdmin
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
            throw ExitCode(ExitStatus.configUnusable.code)
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
