import CloudLogin

/// One rule of a pam.d service file, as Linux-PAM reads it (pam.d(5)).
public struct PAMRule: Equatable, Sendable {
    /// auth, account, password or session (a leading '-' is dropped).
    public var type: String
    public var control: PAMControl
    /// The module as written (a name or a path); for `include`/`substack`, the included file.
    public var module: String
    public var arguments: [String]
    /// Where the rule stands.
    public var file: String
    public var line: Int

    /// The module's file name without its directory ("pam_unix.so").
    public var moduleName: String {
        module.split(separator: "/").last.map(String.init) ?? module
    }

    public var isCloudLogin: Bool { moduleName == "pam_cloudlogin.so" }
    public var isUnix: Bool { moduleName == "pam_unix.so" }
}

/// The control field: a keyword (`required`) or `[value=action ...]`.
public enum PAMControl: Equatable, Sendable, CustomStringConvertible {
    case keyword(String)
    case actions([String: String])

    /// What PAM does with `returnValue` (`authinfo_unavail`, `auth_err`, `ignore`, `success`):
    /// "ok", "done", "bad", "die", "ignore", "reset" or a jump count. Keywords are expanded as
    /// pam.d(5) defines them.
    public func action(for returnValue: String) -> String {
        switch self {
        case .keyword(let word):
            switch word {
            case "required": return returnValue == "success" ? "ok" : (returnValue == "ignore" ? "ignore" : "bad")
            case "requisite": return returnValue == "success" ? "ok" : (returnValue == "ignore" ? "ignore" : "die")
            case "sufficient": return returnValue == "success" || returnValue == "new_authtok_reqd" ? "done" : "ignore"
            case "optional": return returnValue == "success" ? "ok" : "ignore"
            default: return "bad"
            }
        case .actions(let table):
            // Linux-PAM: a value without an action and without default= is "bad".
            return table[returnValue] ?? table["default"] ?? "bad"
        }
    }

    public var description: String {
        switch self {
        case .keyword(let word): return word
        case .actions(let table): return "[" + table.keys.sorted().map { "\($0)=\(table[$0] ?? "")" }.joined(separator: " ") + "]"
        }
    }
}

/// A problem in the PAM stack that bypasses CloudLogin or locks people out.
public struct PAMStackFinding: Equatable, Sendable {
    /// A stable name for scripts (`--json`): `pam.order`, `pam.no-unix`, ...
    public var id: String
    public var file: String
    public var line: Int
    public var message: String
    public var fix: String
    /// False for a risk that does not bite today (a line that fails only once the module is
    /// removed): a warning, not an error.
    public var bitesNow = true
}

/// Reads pam.d files and checks where pam_cloudlogin stands in them.
public enum PAMStack {
    /// The rules of one file; `@include FILE` becomes an include rule of every type.
    public static func parse(_ text: String, file: String) -> [PAMRule] {
        var rules: [PAMRule] = []
        var pending = ""
        var pendingLine = 0
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            var line = String(raw)
            if let hash = line.firstIndex(of: "#") { line = String(line[..<hash]) }
            if pending.isEmpty { pendingLine = number }
            if line.hasSuffix("\\") {
                pending += line.dropLast() + " "
                continue
            }
            let logical = pending + line
            pending = ""
            let fields = tokens(logical)
            guard let first = fields.first else { continue }
            if first == "@include", fields.count >= 2 {
                for type in ["auth", "account", "password", "session"] {
                    rules.append(PAMRule(type: type, control: .keyword("include"), module: fields[1], arguments: [], file: file, line: pendingLine))
                }
                continue
            }
            guard fields.count >= 3 else { continue }
            let type = first.hasPrefix("-") ? String(first.dropFirst()) : first
            rules.append(PAMRule(type: type.lowercased(), control: control(fields[1]), module: fields[2],
                                 arguments: Array(fields.dropFirst(3)), file: file, line: pendingLine))
        }
        return rules
    }

    /// Splits a rule into fields; a `[...]` control (which may hold spaces) is one field.
    static func tokens(_ line: String) -> [String] {
        var fields: [String] = []
        var current = ""
        var depth = 0
        for character in line {
            if character == "[" { depth += 1 }
            if character == "]" { depth = max(0, depth - 1) }
            if (character == " " || character == "\t" || character == "\r") && depth == 0 {
                if !current.isEmpty { fields.append(current); current = "" }
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { fields.append(current) }
        return fields
    }

    static func control(_ field: String) -> PAMControl {
        guard field.hasPrefix("["), field.hasSuffix("]") else { return .keyword(field.lowercased()) }
        var table: [String: String] = [:]
        for pair in tokens(String(field.dropFirst().dropLast())) {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { table[String(parts[0]).lowercased()] = String(parts[1]).lowercased() }
        }
        return .actions(table)
    }

    /// The rules of `type` in `file` with includes and substacks expanded in place.
    public static func expanded(_ file: String, type: String, read: (String) -> String?, depth: Int = 0) -> [PAMRule] {
        guard depth < 8, let text = read(file) else { return [] }
        var result: [PAMRule] = []
        for rule in parse(text, file: file) where rule.type == type {
            if rule.control == .keyword("include") || rule.control == .keyword("substack") {
                result += expanded(rule.module, type: type, read: read, depth: depth + 1)
            } else {
                result.append(rule)
            }
        }
        return result
    }

    /// The auth control the shipped stacks use; module_unknown=ignore skips the line when the module
    /// is missing (package removed) instead of refusing everyone.
    static let recommended = "[success=done ignore=ignore authinfo_unavail=ignore module_unknown=ignore default=die] pam_cloudlogin.so"

    /// Checks every service in `files` (names relative to the directory `read` resolves) that
    /// names pam_cloudlogin itself.
    public static func check(files: [String], read: (String) -> String?) -> [PAMStackFinding] {
        var findings: [PAMStackFinding] = []
        for file in files.sorted() {
            guard let text = read(file) else { continue }
            let own = parse(text, file: file)
            guard own.contains(where: { $0.isCloudLogin }) else { continue }
            for rule in own where rule.isCloudLogin && rule.control.action(for: "module_unknown") != "ignore" {
                findings.append(PAMStackFinding(
                    id: "pam.removal-lockout", file: file, line: rule.line,
                    message: "\(rule.type) line with '\(rule.control)' and no module_unknown=ignore: once pam_cloudlogin.so is removed (the package uninstalled), libpam answers PAM_MODULE_UNKNOWN here and this line refuses everyone, root included",
                    fix: "add module_unknown=ignore to the control, as the shipped stacks do (for example '\(recommended)')",
                    bitesNow: false))
            }
            findings += checkAuth(file: file, rules: expanded(file, type: "auth", read: read))
            for rule in own where rule.type == "account" && rule.isCloudLogin {
                let denial = rule.control.action(for: "perm_denied")
                if denial == "ignore" || denial == "ok" || denial == "done" || Int(denial, radix: 10) != nil {
                    findings.append(PAMStackFinding(
                        id: "pam.account-sufficient", file: file, line: rule.line,
                        message: "account phase: pam_cloudlogin is '\(rule.control)': its refusal of users the identity provider disabled (or who left allow_groups) is ignored, and a module that succeeds under 'sufficient' skips pam_unix's expiry checks",
                        fix: "use 'account [success=ok new_authtok_reqd=ok ignore=ignore module_unknown=ignore default=bad] pam_cloudlogin.so' (required, skipped only when the module is missing) and keep 'account required pam_unix.so' (or Debian's common-account) with it"))
                }
            }
        }
        return findings
    }

    static func checkAuth(file: String, rules: [PAMRule]) -> [PAMStackFinding] {
        guard let index = rules.firstIndex(where: { $0.isCloudLogin }) else { return [] }
        let rule = rules[index]
        var findings: [PAMStackFinding] = []
        func add(_ id: String, _ message: String, _ fix: String) {
            findings.append(PAMStackFinding(id: id, file: rule.file, line: rule.line, message: message, fix: fix))
        }
        if let unix = rules[..<index].first(where: { $0.isUnix }) {
            add("pam.order",
                "pam_cloudlogin comes after pam_unix (\(unix.file) line \(unix.line)) in the auth stack of \(file): when pam_unix accepts the local password the stack ends and pam_cloudlogin is never reached, so the identity provider is never asked and a password it revoked keeps working",
                "put pam_cloudlogin before pam_unix: '\(recommended)' followed by 'pam_unix.so try_first_pass' (pam-auth-update --enable cloudlogin does this in common-auth)")
        }
        let control = rule.control
        let unavailable = control.action(for: "authinfo_unavail")
        if unavailable != "ignore" {
            add("pam.lockout",
                "pam_cloudlogin is '\(control)' without authinfo_unavail=ignore in the auth stack of \(file): when the identity provider is down its PAM_AUTHINFO_UNAVAIL fails the whole stack, so cloud users cannot sign in offline (lockout)",
                "use the control '\(recommended)'")
        }
        let ignored = control.action(for: "ignore")
        if ignored != "ignore" {
            add("pam.local-users-refused",
                "pam_cloudlogin is '\(control)' without ignore=ignore in the auth stack of \(file): root and the local accounts it leaves to pam_unix (PAM_IGNORE) are refused",
                "use the control '\(recommended)'")
        }
        let refused = control.action(for: "auth_err")
        if refused == "ignore" || refused == "ok" || Int(refused, radix: 10) != nil {
            add("pam.refusal-not-final",
                "pam_cloudlogin is '\(control)' in the auth stack of \(file): when the identity provider says no (wrong password, disabled user) the stack goes on to pam_unix, which accepts the old synced password: the identity provider's no is not final",
                "use the control '\(recommended)' (default=die makes a refusal final)")
        }
        if !rules[(index + 1)...].contains(where: { $0.isUnix }) {
            add("pam.no-unix",
                "no pam_unix after pam_cloudlogin in the auth stack of \(file): root and every local account have no way in, and there is no offline sign-in with the synced password",
                "add 'auth required pam_unix.so try_first_pass' right after pam_cloudlogin (or @include common-auth after it)")
        }
        return findings
    }
}
