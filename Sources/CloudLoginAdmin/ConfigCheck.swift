import CloudLogin
import Glibc

/// `cloudlogin check`: reads the config and talks to the IdP the way the module will, looks at
/// the files and the PAM stack, and says in words what is wrong and how to fix it.
public struct ConfigCheck {
    public var configPath: String
    /// The PAM service directory (/etc/pam.d).
    public var pamDirectory: String
    /// Also signs this user in with a real password grant.
    public var testUser: String?
    public var json: Bool
    /// The uid that must own the config, secret and CA files and the directories: root.
    public var owner: uid_t
    /// Reads the test user's password (from standard input).
    public var readPassword: () -> PasswordAnswer
    /// The sshd program asked for its effective config (`sshd -T`) and sshd's config file.
    public var sshdProgram: String
    public var sshdConfig: String

    public init(configPath: String, pamDirectory: String, testUser: String?, json: Bool, owner: uid_t = 0,
                sshdProgram: String = SSHDCheck.defaultProgram, sshdConfig: String = SSHDCheck.defaultConfig,
                readPassword: @escaping () -> PasswordAnswer) {
        self.configPath = configPath
        self.pamDirectory = pamDirectory
        self.testUser = testUser
        self.json = json
        self.owner = owner
        self.sshdProgram = sshdProgram
        self.sshdConfig = sshdConfig
        self.readPassword = readPassword
    }

    /// Runs every check. Text findings go to `output` as they are made; the config's own errors
    /// and warnings to `errors` (standard error, as the other commands print them).
    public func run(output: @escaping (String) -> Void = { print($0) }, errors: (String) -> Void = printError) -> CheckReport {
        var report = CheckReport(json: json, output: output)
        switch ConfigLoader.load(path: configPath, owner: owner) {
        case .failure(let problem):
            if !json { errors("error: \(problem)") }
            report.record("config", .error, .config, "\(problem)", fix: nil)
        case .success(let config):
            for warning in config.warnings {
                if !json { errors("warning: \(warning)") }
                report.record("config.warning", .warning, .none, "\(warning)", fix: "remove or correct the line")
            }
            report.add("config", .ok, .none, "config: \(config.path) is valid (provider \(config.provider.rawValue))", fix: nil)
            checkFiles(config, into: &report)
            checkPAMStack(into: &report)
            SSHDCheck(program: sshdProgram, configPath: sshdConfig, pamDirectory: pamDirectory).run(into: &report)
            let idp = IdPCheck(config: config, testUser: testUser, readPassword: readPassword)
            // Okta direct authentication is the OpenID password grant at Okta's authorization server.
            if config.provider == .oidc || config.isOktaDirect {
                idp.run(into: &report)
            } else {
                idp.runOkta(into: &report)
            }
        }
        return report
    }

    // MARK: - Files

    public func checkFiles(_ config: Config, into report: inout CheckReport) {
        let configDirectory = FileTrust.directory(containing: config.path)
        if let problem = FileCheck.trustedDirectory(configDirectory, owner: owner) {
            report.add("files.config-dir", .error, .local, problem.message, fix: problem.fix)
        }
        if let mode = FileCheck.mode(config.path) {
            report.add("files.config", .ok, .none, "files: \(config.path) is owned by \(FileTrust.name(of: owner)), mode \(FileCheck.octal(mode))", fix: nil)
        }
        if let caFile = config.caFile {
            if let problem = FileCheck.trustedFile(caFile, what: "ca_file", owner: owner) {
                report.add("files.ca", .error, .local, problem.message, fix: problem.fix)
            }
        }
        for (id, path, wanted, what) in [("files.state-dir", config.stateDirectory, 0o755 as mode_t, "state directory (state_dir)"),
                                         ("files.cache-dir", config.cacheDirectory, 0o700 as mode_t, "cache directory (cache_dir)")] {
            switch FileCheck.stateDirectory(path, wanted: wanted, what: what, owner: owner) {
            case .fine(let text): report.add(id, .ok, .none, text, fix: nil)
            case .loose(let text): report.add(id, .warning, .none, text, fix: "chmod \(FileCheck.octal(wanted)) \(path)")
            case .missing(let text): report.add(id, .warning, .none, text, fix: "install -d -o root -g root -m \(FileCheck.octal(wanted)) \(path)")
            case .unsafe(let problem): report.add(id, .error, .local, problem.message, fix: problem.fix)
            }
        }
    }

    // MARK: - PAM stack

    public func checkPAMStack(into report: inout CheckReport) {
        let pamDir = pamDirectory
        guard let names = FileCheck.serviceFiles(in: pamDir) else {
            report.add("pam", .warning, .none, "pam: cannot read the PAM directory \(pamDir)", fix: "give the directory with --pam-dir")
            return
        }
        let read: (String) -> String? = { name in
            FileCheck.readText(name.hasPrefix("/") ? name : "\(pamDir)/\(name)")
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
            report.add(finding.id, finding.bitesNow ? .error : .warning, finding.bitesNow ? .local : .none,
                       "pam: \(pamDir)/\(finding.file) line \(finding.line): \(finding.message)", fix: finding.fix)
        }
        if !findings.contains(where: \.bitesNow) {
            report.add("pam", .ok, .none, "pam: pam_cloudlogin in \(using.joined(separator: ", ")) (\(pamDir)): before pam_unix, offline fallback and refusals as they should be", fix: nil)
        }
    }
}
