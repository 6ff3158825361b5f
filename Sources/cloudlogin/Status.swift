import ArgumentParser
import CloudLogin
import CloudLoginAdmin
import Glibc

/// `cloudlogin status [USER]`: its options; the report is `StatusReport`'s.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the local accounts CloudLogin manages: subject, last online sign-in, offline days left, granted groups.",
        discussion: "Exit status: 0, 1 on a config error, 4 when USER is not managed by CloudLogin."
    )

    @OptionGroup var options: ConfigOption

    @Argument(help: "Show only this local user.")
    var user: String?

    @Flag(name: .long, help: "Print the records as one JSON object.")
    var json = false

    func run() throws {
        let config = try options.load()
        let output = StatusReport.run(config: config, store: StateDirectory(path: config.stateDirectory), user: user,
                                      json: json, now: SystemClock().now())
        for line in output.lines { print(line) }
        for line in output.errors { printError(line) }
        if output.status != .success { throw ExitCode(output.status.code) }
    }
}
