import CloudLogin
import Glibc

/// `cloudlogin status [USER]`: the accounts CloudLogin manages and where they stand.
public enum StatusReport {
    /// What the command prints and how it exits.
    public struct Output: Equatable, Sendable {
        /// For standard output, one `print` each.
        public var lines: [String] = []
        /// For standard error.
        public var errors: [String] = []
        public var status: ExitStatus = .success
    }

    /// The records in `store` (only `user`'s, when given) as text or JSON; `now` decides the
    /// offline days left.
    public static func run(config: Config, store: ManagedUserStore, user: String?, json: Bool, now: Int64) -> Output {
        let users: [ManagedUser]
        if let user {
            switch store.user(named: user) {
            case .success(let record?): users = [record]
            case .success(nil):
                let line = json
                    ? JSONText.object([("state_dir", .string(config.stateDirectory)), ("users", .array([])),
                                       ("not_managed", .string(user))]).rendered
                    : "\(user): not managed by CloudLogin"
                return Output(lines: [line], status: .notManaged)
            case .failure(let error):
                return Output(errors: ["error: \(error)"], status: .configUnusable)
            }
        } else {
            switch store.allUsers() {
            case .success(let all): users = all
            case .failure(let error):
                return Output(errors: ["error: \(error)"], status: .configUnusable)
            }
        }
        if json {
            return Output(lines: [JSONText.object([("state_dir", .string(config.stateDirectory)),
                                                   ("users", .array(users.map { Self.json($0, config: config, now: now) }))]).rendered])
        }
        var lines = users.isEmpty ? ["no managed accounts in \(config.stateDirectory)"] : []
        for record in users {
            let offline: String
            switch OfflinePolicy.decide(record: record, config: config, now: now) {
            case .allowed(let days): offline = "\(days) day(s) left"
            case .refused(let reason): offline = "refused: \(reason.rawValue)"
            }
            lines.append("""
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
        return Output(lines: lines)
    }

    public static func json(_ record: ManagedUser, config: Config, now: Int64) -> JSONText {
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
    public static func utc(_ seconds: Int64) -> String {
        var time = time_t(truncatingIfNeeded: seconds)
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil else { return "\(seconds)" }
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) UTC"
    }
}
