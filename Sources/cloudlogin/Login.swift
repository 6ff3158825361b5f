import ArgumentParser
import CloudLogin
import CloudLoginAdmin
import CloudLoginPAM
import Glibc

/// `cloudlogin login USER`: runs exactly the module's authentication flow and shows what it
/// decided. Prints claims, never a token or the password.
struct Login: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign in USER with the cloud password, as the PAM module would, and show the result.",
        discussion: "Exit status: 0 when the module would return PAM_SUCCESS, 1 on a config error, 3 otherwise."
    )

    @OptionGroup var options: ConfigOption

    @Argument(help: "The name as the user would type it at login.")
    var user: String

    @Flag(name: .long, help: "Read the password from the first line of standard input instead of the terminal.")
    var passwordStdin = false

    @Flag(name: .long, help: "Show each step of the flow: screening, cache or network, requests, verified claims, name mapping, local changes, PAM code.")
    var trace = false

    @Flag(name: .long, help: "Change nothing locally: show what the sign-in would change (account, password, groups, record).")
    var dryRun = false

    func run() throws {
        let config = try options.load()
        let log = TerminalLog(trace: trace)
        let host = TerminalHost(typedName: user, configPath: config.path, terminal: log,
                                conversation: TerminalConversation(fromStandardInput: passwordStdin), passwordStdin: passwordStdin)
        log.step("config", "\(config.path): provider \(config.provider.rawValue), issuer \(config.issuer ?? config.oktaDomain ?? "-"), client \(config.clientID), username_suffix '\(config.usernameSuffix)'")
        // The module's seams, each wrapped to tell what happens (and, with --dry-run, to change
        // nothing): the same phases run as in the module (`SignIn.authenticate`).
        var tracedAccounts: TracingAccounts?
        let report = SignIn.authenticate(host, seams: { config, network in
            var seams = SignInSeams.system(config: config, log: log, network: network)
            seams.transport = TracingTransport(seams.transport, clock: seams.clock, log: log)
            if let disk = seams.cache {
                seams.cache = TracingCache(disk, clock: seams.clock, log: log)
            } else if network {
                log.step("cache", "the cache \(config.cacheDirectory) is not used (not root, or unsafe): discovery and JWKS come from the network")
            }
            let accounts = TracingAccounts(seams.accounts, log: log, dryRun: dryRun)
            tracedAccounts = accounts
            seams.accounts = accounts
            seams.state = TracingState(seams.state, directory: config.stateDirectory, log: log, dryRun: dryRun)
            if !seams.canChangeAccounts { log.step("local", "not running as root: the local account is not changed (as in a screen locker)") }
            switch LoginFlow(config: config, seams: seams).screen(typedName: user) {
            case .cloud(let login, let localName):
                log.step("screen", "cloud user: the IdP is asked about \(login)" + (localName.map { "; local name \($0)" } ?? "; the local name comes from the \(config.nameClaim) claim"))
            case .localOnly(let reason):
                log.step("screen", "local-only user (\(reason.rawValue)): left to pam_unix; the password is not asked for and never sent")
            case .refuse(let reason):
                log.step("screen", "refused before anything is sent: \(reason.rawValue)")
            }
            return seams
        })
        if case .notCloudUser(let reason) = report.outcome, tracedAccounts == nil {
            log.step("screen", "local-only user (\(reason.rawValue)): left to pam_unix; the password is not asked for and never sent")
        }
        if trace {
            for fetch in report.fetches { printError("trace: fetched \(TraceRedaction.url(fetch))") }
        }
        let outcome = report.outcome
        let result = report.result
        if case .accepted(let identity, let localName, let created) = outcome {
            log.step("claims", "verified identity: subject \(identity.subject), claims \(identity.claims.keys.sorted().joined(separator: ", ")) (no token is shown)")
            let claimValue = identity.claims[config.nameClaim]?.stringValue ?? "?"
            log.step("name", "\(config.nameClaim) = '\(claimValue)' -> local account \(localName)\(created ? " (created now)" : "")")
            let groups = identity.groups(claim: config.groupsClaim)
            log.step("groups", "\(config.groupsClaim): \(groups.isEmpty ? "none" : groups.joined(separator: ", "))")
        }
        let changes = tracedAccounts?.changes ?? []
        if changes.isEmpty, case .accepted = outcome { log.step("local", "nothing to change: the local account already matches") }
        log.step("pam", "outcome \(outcome.summary) -> \(PAMResult.name(of: result.code))")
        print("outcome: \(outcome.summary)")
        print("pam: \(PAMResult.name(of: result.code))")
        if let message = result.message { print("user sees: \(message)") }
        if case .accepted(let identity, let localName, _) = outcome {
            print("local account: \(localName)")
            print("subject: \(identity.subject)")
            for key in identity.claims.keys.sorted() {
                guard let value = identity.claims[key] else { continue }
                print("claim \(key): \(render(value))")
            }
        }
        print("syslog: \(report.summary)")
        if dryRun {
            print(changes.isEmpty ? "dry run: no local change" : "dry run: would " + changes.joined(separator: "; "))
        }
        if result.code != PAMResult.success { throw ExitCode(ExitStatus.notSignedIn.code) }
    }

    func render(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let number): return Int64(exactly: number).map(String.init) ?? String(number)
        case .string(let text): return text
        case .array(let values): return "[" + values.map(render).joined(separator: ", ") + "]"
        case .object: return "{…}"
        }
    }
}

/// Reads a password without echo, into wiped storage.
enum PasswordReader {
    static func fromTerminal(prompt: String) -> PasswordAnswer {
        let descriptor = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { return fromStandardInput() }
        defer { close(descriptor) }
        var saved = termios()
        let isTerminal = tcgetattr(descriptor, &saved) == 0
        if isTerminal {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(descriptor, TCSAFLUSH, &quiet)
        }
        var text = prompt
        text.withUTF8 { _ = write(descriptor, $0.baseAddress, $0.count) }
        let answer = readLine(from: descriptor)
        if isTerminal {
            tcsetattr(descriptor, TCSAFLUSH, &saved)
            _ = write(descriptor, "\n", 1)
        }
        return answer
    }

    static func fromStandardInput() -> PasswordAnswer {
        readLine(from: 0)
    }

    private static func readLine(from descriptor: Int32) -> PasswordAnswer {
        let secret = SecretBytes(capacity: 128)
        var byte: UInt8 = 0
        var sawAny = false
        while true {
            let got = read(descriptor, &byte, 1)
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { break }
            sawAny = true
            if byte == UInt8(ascii: "\n") { break }
            secret.append(byte)
        }
        byte = 0
        return sawAny ? .password(secret) : .unavailable
    }
}

/// `cloudlogin login` as the host of the module's phases: the user name from the command line,
/// the password from the terminal or standard input, messages on the terminal. It has no PAM
/// handle: PAM_USER and the setcred bookkeeping are only reported.
struct TerminalHost: SignInHost {
    let typedName: String
    let configPath: String
    let terminal: TerminalLog
    let conversation: TerminalConversation
    let passwordStdin: Bool

    var log: EventLog { terminal }
    func user() -> String? { typedName }
    func password() -> PasswordAnswer {
        passwordStdin ? PasswordReader.fromStandardInput() : PasswordReader.fromTerminal(prompt: "Password: ")
    }
    func setUser(_ name: String) -> Bool {
        terminal.step("pam", "PAM_USER becomes \(name) (login re-reads it)")
        return true
    }
    /// The result message is printed by the command itself ("user sees: …").
    func show(_ message: String, isError: Bool) {}
    func rememberSignIn(_ accepted: Bool) {}
    func signedInHere() -> Bool { false }
    func ask(_ prompt: String, secret: Bool) -> SecretBytes? { conversation.ask(prompt, secret: secret) }
    func tell(_ text: String) -> Bool { conversation.tell(text) }
}

/// The CLI's side of an MFA dialogue: questions on the terminal (or, with --password-stdin,
/// answers read line by line from standard input), messages on standard error.
struct TerminalConversation: Conversation {
    var fromStandardInput: Bool

    func ask(_ prompt: String, secret: Bool) -> SecretBytes? {
        if fromStandardInput {
            printError(prompt)
            guard case .password(let answer) = PasswordReader.fromStandardInput() else { return nil }
            return answer
        }
        guard case .password(let answer) = PasswordReader.fromTerminal(prompt: prompt) else { return nil }
        return answer
    }

    func tell(_ text: String) -> Bool {
        printError(text)
        return true
    }
}
