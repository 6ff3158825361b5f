import CloudLogin
import Glibc

/// The SSH part of `cloudlogin check`: whether sshd hands a password sign-in to PAM in a way
/// CloudLogin can serve. sshd needs `UsePAM yes` and keyboard-interactive authentication
/// (`KbdInteractiveAuthentication yes`, allowed by `AuthenticationMethods`): its password
/// method reaches PAM too, but through a conversation that answers every hidden prompt with
/// the password the client sent and can show nothing, so MFA prompts cannot work there.
///
/// The settings come from `sshd -T -f FILE` (the effective configuration: defaults, includes,
/// the first value of each keyword) and, when that cannot run (not root, host keys unreadable,
/// no /run/sshd while sshd is stopped), from the files themselves. The files are read in any
/// case, for the line to change and for Match blocks.
public struct SSHDCheck {
    /// The sshd program asked (`sshd -T`); when it does not exist, SSH is not checked.
    public var program: String
    /// sshd's config file (`-f`).
    public var configPath: String
    /// The PAM service directory (sshd's service is `sshd`).
    public var pamDirectory: String
    /// How long `sshd -T` may take, in milliseconds.
    public var timeLimit: Int64

    public static let defaultProgram = "/usr/sbin/sshd"
    public static let defaultConfig = "/etc/ssh/sshd_config"

    public init(program: String = SSHDCheck.defaultProgram, configPath: String = SSHDCheck.defaultConfig,
                pamDirectory: String = "/etc/pam.d", timeLimit: Int64 = 10_000) {
        self.program = program
        self.configPath = configPath
        self.pamDirectory = pamDirectory
        self.timeLimit = timeLimit
    }

    /// Where pam_cloudlogin stands for sshd's PAM service.
    public enum Stack: Equatable, Sendable {
        /// The PAM directory cannot be read, or no service uses pam_cloudlogin yet (`pam` says so).
        case notJudged
        /// The service's auth stack (`sshd`, or `other` when there is no sshd file), with what it
        /// includes, reaches pam_cloudlogin.
        case cloudLogin(service: String)
        /// It does not; `unix`: pam_unix is in it (it checks the local password alone).
        case without(service: String, unix: Bool)
    }

    /// How the reload is spelled in fixes (Debian's unit is ssh.service).
    static let reload = "then reload sshd (systemctl reload ssh)"

    // MARK: - Running

    public func run(into report: inout CheckReport) {
        var info = stat()
        if stat(program, &info) != 0 && (errno == ENOENT || errno == ENOTDIR) {
            report.add("sshd", .info, .none, "sshd: not installed (no \(program)); SSH sign-in not checked", fix: nil)
            return
        }
        var readError: Int32 = 0
        let main = configPath
        let files = SSHDConfig.read(main, readFile: { path in
            let text = FileCheck.readText(path)
            if text == nil && path == main { readError = errno }
            return text
        }, expand: SSHDConfig.glob)

        var effective: SSHDConfig?
        var why = ""
        switch ProgramRunner.run(program, ["-T", "-f", configPath], timeLimit: timeLimit) {
        case .success(let output) where output.status == 0:
            let parsed = SSHDConfig.effective(output.standardOutput)
            if parsed.settings["usepam"] != nil { effective = parsed } else { why = "it printed no usepam line (an sshd built without PAM?)" }
        case .success(let output):
            why = Self.firstLine(output.standardError).map { "exit \(output.status): \($0)" } ?? "exit \(output.status)"
        case .failure(let failure):
            why = "\(failure)"
        }
        let asked = "\(program) -T -f \(configPath)"

        let source: String
        let settings: SSHDSettings
        if let effective {
            source = "sshd -T -f \(configPath)"
            settings = SSHDSettings(effective)
        } else if let files {
            let included = files.files.count - 1
            source = included > 0 ? "read from \(configPath) and \(included) included file(s)" : "read from \(configPath)"
            settings = SSHDSettings(files)
            var message = "sshd: `\(asked)` did not run (\(why)): judged from \(configPath) as written (with the files it includes) and sshd's defaults for the rest"
            if !files.notes.isEmpty { message += "; not read: \(files.notes.joined(separator: "; "))" }
            report.add("sshd.effective-config", .info, .none, message, fix: nil)
        } else {
            let missing = readError == ENOENT || readError == ENOTDIR
            report.add("sshd.config", .warning, .none,
                       "sshd: \(configPath) cannot be read (\(SystemError(readError))) and `\(asked)` did not run (\(why)): SSH sign-in not checked",
                       fix: missing ? "name sshd's config file with --sshd-config" : "run cloudlogin check as root, or name sshd's config file with --sshd-config")
            return
        }

        let stack = sshdStack()
        for finding in Self.judge(settings, source: source, files: files, configPath: configPath, stack: stack, pamDirectory: pamDirectory) {
            report.add(finding.id, finding.status, finding.area, finding.message, fix: finding.fix)
        }
        for finding in includedStackFindings(stack) {
            report.add(finding.id, .error, .local, "pam: \(pamDirectory)/\(finding.file) line \(finding.line): \(finding.message)", fix: finding.fix)
        }
    }

    static func firstLine(_ text: String) -> String? {
        let blank: Set<Character> = [" ", "\t", "\r"]
        return SSHDConfig.lines(text).lazy
            .map { String($0.drop(while: { blank.contains($0) }).reversed().drop(while: { blank.contains($0) }).reversed().prefix(300)) }
            .first { !$0.isEmpty }
    }

    func readPAM(_ name: String) -> String? {
        FileCheck.readText(name.hasPrefix("/") ? name : "\(pamDirectory)/\(name)")
    }

    /// sshd's PAM service: `sshd`, or `other` when there is none (libpam's fallback).
    func sshdStack() -> Stack {
        guard let names = FileCheck.serviceFiles(in: pamDirectory) else { return .notJudged }
        let enabled = names.contains { name in readPAM(name).map { PAMStack.parse($0, file: name).contains { $0.isCloudLogin } } ?? false }
        guard enabled else { return .notJudged }
        let service = names.contains("sshd") ? "sshd" : "other"
        let auth = PAMStack.expanded(service, type: "auth", read: readPAM)
        if auth.contains(where: \.isCloudLogin) { return .cloudLogin(service: service) }
        return .without(service: service, unix: auth.contains(where: \.isUnix))
    }

    /// `pam` checks the files that name pam_cloudlogin themselves. Debian's sshd reaches it
    /// through `@include common-auth`: what sshd puts before the include (a `sufficient`
    /// pam_unix, say) is judged here, on sshd's whole auth stack, without repeating what `pam`
    /// found in the included file.
    func includedStackFindings(_ stack: Stack) -> [PAMStackFinding] {
        guard case .cloudLogin(let service) = stack, let text = readPAM(service),
              !PAMStack.parse(text, file: service).contains(where: { $0.isCloudLogin }) else { return [] }
        let names = FileCheck.serviceFiles(in: pamDirectory) ?? []
        let using = names.filter { name in readPAM(name).map { PAMStack.parse($0, file: name).contains { $0.isCloudLogin } } ?? false }
        let known = PAMStack.check(files: using, read: readPAM).map { "\($0.id) \($0.file) \($0.line)" }
        return PAMStack.checkAuth(file: service, rules: PAMStack.expanded(service, type: "auth", read: readPAM))
            .filter { !known.contains("\($0.id) \($0.file) \($0.line)") }
    }

    // MARK: - Judging

    /// The findings for `settings` (read from `source`); `files` (the files as read) gives the
    /// line to change and the Match blocks.
    public static func judge(_ settings: SSHDSettings, source: String, files: SSHDConfig?, configPath: String,
                             stack: Stack, pamDirectory: String) -> [CheckReport.Finding] {
        var found: [CheckReport.Finding] = []
        func add(_ id: String, _ status: CheckReport.Status, _ area: CheckReport.Area, _ message: String, _ fix: String?) {
            found.append(CheckReport.Finding(id: id, status: status, area: area, message: message, fix: fix))
        }
        let fromFiles = files.map(SSHDSettings.init)
        /// Where to write `keyword value`: the line that sets the key now (when the files say
        /// what sshd says), else a new line.
        func put(_ keyword: String, _ key: String, _ value: String, agrees: Bool) -> String {
            if agrees, let setting = files?.settings[key], let file = setting.file {
                let now = ([setting.keyword] + setting.values).joined(separator: " ")
                return "change line \(setting.line) of \(file) ('\(now)') to '\(keyword) \(value)'"
            }
            return "add the line '\(keyword) \(value)' to \(configPath), above any Match block (sshd keeps the first value it reads)"
        }
        let passwordReachesPAM = settings.password && settings.methodsAllowPassword

        if !settings.usePAM {
            var message = "sshd: UsePAM no (\(source)): sshd does not use PAM, so CloudLogin is never asked over SSH"
            var bites = false
            if case .cloudLogin(let service) = stack {
                message += ", although \(pamDirectory)/\(service) has pam_cloudlogin, and the account phase that turns away users the identity provider refused does not run"
                bites = true
            }
            if passwordReachesPAM {
                message += "; sshd's own password method checks the local password instead, so a cloud user's synced password keeps working over SSH after the identity provider refused them"
            }
            add("sshd.use-pam", bites ? .error : .warning, bites ? .local : .none, message,
                "\(put("UsePAM", "usepam", "yes", agrees: fromFiles?.usePAM == settings.usePAM)), \(reload)")
        }

        if !settings.keyboardInteractive {
            let fix = "\(put("KbdInteractiveAuthentication", "kbdinteractiveauthentication", "yes", agrees: fromFiles?.keyboardInteractive == settings.keyboardInteractive)), \(reload)"
            if settings.usePAM && passwordReachesPAM {
                add("sshd.password-only", .warning, .none,
                    "sshd: KbdInteractiveAuthentication no with PasswordAuthentication yes (\(source)): sshd runs PAM only through its password method, which answers every hidden prompt with the password the client sent and fails any other question: MFA prompts (Okta's factor menu, codes and push) cannot be answered",
                    fix + "; PasswordAuthentication may then be set to no, as sshd_config(5) suggests with UsePAM")
            } else {
                add("sshd.kbd-interactive", .warning, .none,
                    "sshd: KbdInteractiveAuthentication no (the older name is ChallengeResponseAuthentication)\(settings.password ? "" : " and PasswordAuthentication no") (\(source)): sshd never asks PAM for a password, so cloud users cannot sign in over SSH with their cloud password (keys do not involve CloudLogin)",
                    fix)
            }
        }

        if !settings.methodsAllowKeyboardInteractive {
            let lists = settings.methodsText
            var suggestion = "'AuthenticationMethods \(lists) keyboard-interactive' (another list: the cloud password alone)"
            if let only = settings.methodLists, only.count == 1, let list = only.first {
                suggestion += " or 'AuthenticationMethods \(list.joined(separator: ",")),keyboard-interactive' (the cloud password after the other methods)"
            }
            let now = files?.settings["authenticationmethods"]
            let agrees = fromFiles?.methodLists == settings.methodLists
            let place: String
            if agrees, let now, let file = now.file {
                place = "change line \(now.line) of \(file) ('\(([now.keyword] + now.values).joined(separator: " "))') to \(suggestion)"
            } else {
                place = "set \(suggestion) in \(configPath)"
            }
            let consequence = settings.usePAM && passwordReachesPAM
                ? "only its password method reaches PAM, which cannot show MFA prompts"
                : "sshd never asks PAM for the cloud password"
            add("sshd.authentication-methods", .warning, .none,
                "sshd: AuthenticationMethods \(lists) (\(source)): no list includes keyboard-interactive (or keyboard-interactive:pam), so \(consequence)",
                "\(place), \(reload)")
        }

        if found.isEmpty {
            var message = "sshd: UsePAM yes, KbdInteractiveAuthentication yes, AuthenticationMethods \(settings.methodsText) (\(source)): cloud users sign in over SSH through PAM's keyboard-interactive prompts"
            if case .cloudLogin(let service) = stack { message += " (pam_cloudlogin in \(pamDirectory)/\(service))" }
            add("sshd", .ok, .none, message, nil)
        }

        if settings.usePAM, case .without(let service, let unix) = stack {
            let missing = service == "sshd" ? "\(pamDirectory)/sshd" : "there is no \(pamDirectory)/sshd, so libpam uses \(pamDirectory)/other, and it"
            var message = "sshd: \(missing) (with what it includes) has no pam_cloudlogin in its auth stack: SSH sign-in never asks the identity provider"
            if unix { message += ", and pam_unix accepts a cloud user's synced password even after the identity provider refused them" }
            add("sshd.pam-stack", .warning, .none, message,
                "pam-auth-update --enable cloudlogin (Debian's sshd includes common-auth), or copy /usr/share/cloudlogin/pam.d/sshd to \(pamDirectory)/sshd")
        }

        let blocks = (files?.matchBlocks ?? []).filter { !$0.keywords.isEmpty }
        if !blocks.isEmpty {
            let names = ["usepam": "UsePAM", "kbdinteractiveauthentication": "KbdInteractiveAuthentication",
                         "passwordauthentication": "PasswordAuthentication", "authenticationmethods": "AuthenticationMethods"]
            let listed = blocks.map { block in
                "\(block.file) line \(block.line) 'Match \(block.criteria)' sets \(block.keywords.map { names[$0] ?? $0 }.joined(separator: ", "))"
            }
            add("sshd.match", .info, .none,
                "sshd: \(listed.joined(separator: "; ")): for the connections a Match block applies to, its values count instead; the above holds for the others (see one user's with sshd -T -C user=NAME,host=HOST,addr=ADDR)",
                nil)
        }
        return found
    }
}
