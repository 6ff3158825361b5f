import ArgumentParser
import CloudLogin
import Glibc

/// `cloudlogin check`: reads the config and talks to the IdP the way the module will, looks at
/// the files and the PAM stack, and says in words what is wrong and how to fix it.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the config, the identity provider, file modes and the PAM stack; name every problem with its fix.",
        discussion: """
        Checks: the config file as the module reads it; discovery and JWKS; the clock against \
        the IdP's Date header; with --test-user (password on standard input), a real password \
        grant; owners and modes of the config, secret, CA file, state and cache directories; \
        where pam_cloudlogin stands in the PAM stack (--pam-dir).

        Exit status: 0 no problem (warnings allowed), 1 the config file cannot be used, \
        2 sign-in with the identity provider would fail (unreachable, TLS, grant refused, \
        clock skew), 3 a local problem (unsafe file modes, a PAM stack that bypasses \
        CloudLogin or locks people out). 2 wins over 3; --json lists every finding.
        """
    )

    @OptionGroup var options: ConfigOption

    @Option(name: .long, help: "The PAM service directory to check.")
    var pamDir: String = "/etc/pam.d"

    @Option(name: .long, help: "Also sign in USER with a real password grant (the password is read from standard input); nothing local is changed.")
    var testUser: String?

    @Flag(name: .long, help: "Print the findings as one JSON object.")
    var json = false

    func run() throws {
        var report = CheckReport(json: json)
        let config: Config
        switch ConfigLoader.load(path: options.config, owner: ConfigOption.owner) {
        case .failure(let problem):
            // As the other commands do: the config's own errors and warnings go to stderr.
            if !json { printError("error: \(problem)") }
            report.record("config", .error, .config, "\(problem)", fix: nil)
            report.finish(configPath: options.config)
        case .success(let loaded):
            config = loaded
            for warning in loaded.warnings {
                if !json { printError("warning: \(warning)") }
                report.record("config.warning", .warning, .none, "\(warning)", fix: "remove or correct the line")
            }
            report.add("config", .ok, .none, "config: \(config.path) is valid (provider \(config.provider.rawValue))", fix: nil)
            checkFiles(config, into: &report)
            checkPAMStack(into: &report)
            switch config.provider {
            case .oidc: IdPCheck(config: config, testUser: testUser, quiet: json).run(into: &report)
            case .okta: IdPCheck(config: config, testUser: testUser, quiet: json).runOkta(into: &report)
            }
            report.finish(configPath: config.path)
        }
    }

    // MARK: - Files

    func checkFiles(_ config: Config, into report: inout CheckReport) {
        let configDirectory = FileCheck.parent(of: config.path)
        if let problem = FileCheck.trustedDirectory(configDirectory) {
            report.add("files.config-dir", .error, .local, problem.message, fix: problem.fix)
        }
        if let mode = FileCheck.mode(config.path) {
            report.add("files.config", .ok, .none, "files: \(config.path) is owned by root, mode \(FileCheck.octal(mode))", fix: nil)
        }
        if let caFile = config.caFile {
            if let problem = FileCheck.trustedFile(caFile, what: "ca_file") {
                report.add("files.ca", .error, .local, problem.message, fix: problem.fix)
            }
        }
        for (id, path, wanted, what) in [("files.state-dir", config.stateDirectory, 0o755 as mode_t, "state directory (state_dir)"),
                                         ("files.cache-dir", config.cacheDirectory, 0o700 as mode_t, "cache directory (cache_dir)")] {
            switch FileCheck.stateDirectory(path, wanted: wanted, what: what) {
            case .fine(let text): report.add(id, .ok, .none, text, fix: nil)
            case .loose(let text): report.add(id, .warning, .none, text, fix: "chmod \(FileCheck.octal(wanted)) \(path)")
            case .missing(let text): report.add(id, .warning, .none, text, fix: "install -d -o root -g root -m \(FileCheck.octal(wanted)) \(path)")
            case .unsafe(let problem): report.add(id, .error, .local, problem.message, fix: problem.fix)
            }
        }
    }

    // MARK: - PAM stack

    func checkPAMStack(into report: inout CheckReport) {
        guard let names = FileCheck.serviceFiles(in: pamDir) else {
            report.add("pam", .warning, .none, "pam: cannot read the PAM directory \(pamDir)", fix: "give the directory with --pam-dir")
            return
        }
        let directory = pamDir
        let read: (String) -> String? = { name in
            FileCheck.readText(name.hasPrefix("/") ? name : "\(directory)/\(name)")
        }
        let using = names.filter { name in read(name).map { PAMStack.parse($0, file: name).contains { $0.isCloudLogin } } ?? false }
        guard !using.isEmpty else {
            report.add("pam.not-enabled", .warning, .none,
                       "pam: no service in \(pamDir) uses pam_cloudlogin yet",
                       fix: "when check and `cloudlogin login USER` pass, run `pam-auth-update --enable cloudlogin` (or copy a stack from /usr/share/cloudlogin/pam.d)")
            return
        }
        let findings = PAMStack.check(files: using, read: read)
        for finding in findings {
            report.add(finding.id, .error, .local, "pam: \(pamDir)/\(finding.file) line \(finding.line): \(finding.message)", fix: finding.fix)
        }
        if findings.isEmpty {
            report.add("pam", .ok, .none, "pam: pam_cloudlogin in \(using.joined(separator: ", ")) (\(pamDir)): before pam_unix, offline fallback and refusals as they should be", fix: nil)
        }
    }
}

/// What `check` found, printed as text or as JSON, and the exit code that follows.
struct CheckReport {
    enum Status: String { case ok, warning, error }
    /// Which exit code an error leads to.
    enum Area { case none, config, idp, local }

    struct Finding {
        var id: String
        var status: Status
        var area: Area
        var message: String
        var fix: String?
    }

    let json: Bool
    private(set) var findings: [Finding] = []

    init(json: Bool) { self.json = json }

    /// Keeps a finding without printing it.
    mutating func record(_ id: String, _ status: Status, _ area: Area, _ message: String, fix: String?) {
        findings.append(Finding(id: id, status: status, area: area, message: message, fix: fix))
    }

    mutating func add(_ id: String, _ status: Status, _ area: Area, _ message: String, fix: String?) {
        record(id, status, area, message, fix: fix)
        guard !json else { return }
        switch status {
        case .ok: print("ok: \(message)")
        case .warning: print("warning: \(message)")
        case .error: print("PROBLEM: \(message)")
        }
        if let fix, status != .ok { print("  fix: \(fix)") }
    }

    /// Adds an indented detail line to the text output.
    func detail(_ text: String) {
        if !json { print("  \(text)") }
    }

    var exitCode: Int32 {
        let areas = findings.filter { $0.status == .error }.map(\.area)
        if areas.contains(where: { if case .config = $0 { return true }; return false }) { return 1 }
        if areas.contains(where: { if case .idp = $0 { return true }; return false }) { return 2 }
        if areas.contains(where: { if case .local = $0 { return true }; return false }) { return 3 }
        return 0
    }

    func finish(configPath: String) -> Never {
        let code = exitCode
        if json {
            let items: [JSONText] = findings.map { finding in
                .object([("id", .string(finding.id)), ("status", .string(finding.status.rawValue)),
                         ("message", .string(finding.message)), ("fix", .optional(finding.fix))])
            }
            print(JSONText.object([("config", .string(configPath)), ("ok", .bool(code == 0)),
                                   ("exit_code", .int(Int64(code))), ("findings", .array(items))]).rendered)
        } else if code == 0 {
            let warnings = findings.filter { $0.status == .warning }.count
            print(warnings == 0 ? "check: no problems" : "check: no problems, \(warnings) warning(s)")
        } else {
            print("check: \(findings.filter { $0.status == .error }.count) problem(s) (exit \(code))")
        }
        fflush(stdout)
        exit(code)
    }
}
