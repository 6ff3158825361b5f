import ArgumentParser
import CloudLogin
import Glibc

/// `cloudlogin status [USER]`: the accounts CloudLogin manages and where they stand.
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
        let store = StateDirectory(path: config.stateDirectory)
        let users: [ManagedUser]
        if let user {
            switch store.user(named: user) {
            case .success(let record?): users = [record]
            case .success(nil):
                if json {
                    print(JSONText.object([("state_dir", .string(config.stateDirectory)), ("users", .array([])),
                                           ("not_managed", .string(user))]).rendered)
                } else {
                    print("\(user): not managed by CloudLogin")
                }
                throw ExitCode(4)
            case .failure(let error):
                printError("error: \(error)")
                throw ExitCode(1)
            }
        } else {
            switch store.allUsers() {
            case .success(let all): users = all
            case .failure(let error):
                printError("error: \(error)")
                throw ExitCode(1)
            }
        }
        let now = SystemClock().now()
        if json {
            print(JSONText.object([("state_dir", .string(config.stateDirectory)), ("users", .array(users.map { Self.json($0, config: config, now: now) }))]).rendered)
            return
        }
        if users.isEmpty { print("no managed accounts in \(config.stateDirectory)") }
        for record in users {
            let offline: String
            switch OfflinePolicy.decide(record: record, config: config, now: now) {
            case .allowed(let days): offline = "\(days) day(s) left"
            case .refused(let reason): offline = "refused: \(reason.rawValue)"
            }
            print("""
            \(record.name)
              subject: \(record.subject)
              idp login: \(record.idpLogin)
              origin: \(record.origin.rawValue)
              last online sign-in: \(Self.utc(record.lastOnlineSuccess))
              last verdict: \(record.lastVerdict.rawValue)\(record.allowed ? "" : " (not in allow_groups)")
              offline sign-in: \(offline)
              groups granted by CloudLogin: \(record.grantedGroups.isEmpty ? "none" : record.grantedGroups.joined(separator: ", "))
            """)
        }
    }

    static func json(_ record: ManagedUser, config: Config, now: Int64) -> JSONText {
        var offline: [(String, JSONText)]
        switch OfflinePolicy.decide(record: record, config: config, now: now) {
        case .allowed(let days): offline = [("allowed", .bool(true)), ("days_left", .int(Int64(truncatingIfNeeded: days)))]
        case .refused(let reason): offline = [("allowed", .bool(false)), ("reason", .string(reason.rawValue))]
        }
        return .object([
            ("name", .string(record.name)), ("subject", .string(record.subject)), ("idp_login", .string(record.idpLogin)),
            ("origin", .string(record.origin.rawValue)), ("last_online_success", .int(record.lastOnlineSuccess)),
            ("last_verdict", .string(record.lastVerdict.rawValue)), ("allowed", .bool(record.allowed)),
            ("offline", .object(offline)), ("granted_groups", .array(record.grantedGroups.map { .string($0) })),
        ])
    }

    /// "2026-11-30 02:15:00 UTC", without Foundation's formatters.
    static func utc(_ seconds: Int64) -> String {
        var time = time_t(truncatingIfNeeded: seconds)
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil else { return "\(seconds)" }
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) UTC"
    }
}
