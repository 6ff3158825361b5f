import CloudLogin
import Glibc

/// `cloudlogin setup`: checks the IdP first, then writes a config the module will accept
/// (root-owned, 0600, written atomically, never over an existing one without `force`).
public struct ConfigSetup {
    /// The config file to write (an absolute path).
    public var configPath: String
    /// provider = oidc: the issuer and client.
    public var issuer: String?
    public var clientID: String?
    public var clientSecretFile: String?
    public var caFile: String?
    public var proxy: String?
    public var usernameSuffix: String?
    /// provider = okta: the org URL (instead of issuer and client).
    public var oktaDomain: String?
    /// Also signs this user in with a real password grant before writing.
    public var testUser: String?
    /// Replaces an existing config.
    public var force: Bool
    /// The uid that must own the config and the files it names, and the config's group: root.
    public var owner: uid_t
    public var group: gid_t

    public init(configPath: String, issuer: String? = nil, clientID: String? = nil, clientSecretFile: String? = nil,
                caFile: String? = nil, proxy: String? = nil, usernameSuffix: String? = nil, oktaDomain: String? = nil,
                testUser: String? = nil, force: Bool = false, owner: uid_t = 0, group: gid_t = 0) {
        self.configPath = configPath
        self.issuer = issuer
        self.clientID = clientID
        self.clientSecretFile = clientSecretFile
        self.caFile = caFile
        self.proxy = proxy
        self.usernameSuffix = usernameSuffix
        self.oktaDomain = oktaDomain
        self.testUser = testUser
        self.force = force
        self.owner = owner
        self.group = group
    }

    /// Why nothing was written, and the exit status it means.
    public struct Failure: Error, Equatable, Sendable {
        public var status: ExitStatus
        public var message: String
    }

    /// What to print once the config is written.
    public var written: [String] {
        ["wrote \(configPath) (owner \(FileTrust.name(of: owner)), mode 0600)",
         "next: cloudlogin check; cloudlogin login USER --trace; then pam-auth-update --enable cloudlogin (keep a root shell open)"]
    }

    /// Checks the paths and what would be written, then the IdP (its findings printed to
    /// `output` as they are made), then writes the config.
    public func run(readPassword: @escaping () -> PasswordAnswer, output: @escaping (String) -> Void = { print($0) }) -> Result<Void, Failure> {
        let parsed: Config
        switch prepare() {
        case .failure(let failure): return .failure(failure)
        case .success(let config): parsed = config
        }

        var report = CheckReport(json: false, output: output)
        let check = IdPCheck(config: parsed, testUser: testUser, readPassword: readPassword)
        if parsed.usesPasswordGrant || parsed.provider == .oidc {
            check.run(into: &report)
        } else {
            check.runOkta(into: &report)
        }
        if report.findings.contains(where: { $0.status == .error }) {
            return .failure(Failure(status: .identityProviderFails, message: "the identity provider check failed; nothing written to \(configPath)"))
        }
        if let testUser, !report.findings.contains(where: { $0.id == "idp.grant" && $0.status == .ok }) {
            return .failure(Failure(status: .identityProviderFails, message: "\(testUser) could not sign in with the password grant; nothing written to \(configPath)"))
        }

        switch ConfigWriter.write(configText(), to: configPath, replace: force, owner: (owner, group)) {
        case .failure(let why): return .failure(Failure(status: .setupRefused, message: "cannot write \(configPath): \(why)"))
        case .success: return .success(())
        }
    }

    /// What can be decided before asking the IdP: the path, an existing file, the directory,
    /// and the config as the module would read it (the secret file read and the CA file
    /// checked by the module's rules).
    public func prepare() -> Result<Config, Failure> {
        func refuse(_ message: String) -> Result<Config, Failure> { .failure(Failure(status: .setupRefused, message: message)) }
        guard configPath.hasPrefix("/") else { return refuse("--config must be an absolute path") }
        if !force, access(configPath, F_OK) == 0 {
            return refuse("\(configPath) already exists; nothing written. Use --force to replace it (the old file is replaced atomically)")
        }
        let directory = FileTrust.directory(containing: configPath)
        if access(directory, F_OK) == 0, let problem = FileCheck.trustedDirectory(directory, owner: owner) {
            return refuse("\(problem.message)\n  fix: \(problem.fix)")
        }
        let parsed: Config
        switch ConfigParser.parse(configText(), path: configPath, context: ConfigParser.Context(
            fileIsPrivate: true, readSecretFile: { SafeFile.readSecret($0, owner: owner) },
            checkTrustedFile: { SafeFile.check($0, owner: owner) })) {
        case .failure(let problem): return refuse("\(problem)")
        case .success(let good): parsed = good
        }
        if let caFile = parsed.caFile, let problem = FileCheck.trustedFile(caFile, what: "--ca-file", owner: owner) {
            return refuse("\(problem.message)\n  fix: \(problem.fix)")
        }
        return .success(parsed)
    }

    /// The file as written: the given values, everything else at its documented default.
    public func configText() -> String {
        var lines = ["# \(configPath): written by `cloudlogin setup`; see cloudlogin.conf(5).",
                     "# Keep it owned by root and not writable by others.", "", "[idp]"]
        if let oktaDomain {
            lines += ["provider = okta", "okta_domain = \(oktaDomain)"]
        } else {
            lines += ["provider = oidc", "issuer = \(issuer ?? "")", "client_id = \(clientID ?? "")"]
            if let clientSecretFile { lines.append("client_secret_file = \(clientSecretFile)") }
            lines.append("scopes = openid profile email")
        }
        if let caFile { lines.append("ca_file = \(caFile)") }
        if let proxy { lines.append("proxy = \(proxy)") }
        if let usernameSuffix { lines.append("username_suffix = \(usernameSuffix)") }
        lines += ["timeout = 10", "connect_timeout = 3", "", "[users]", "name_claim = preferred_username",
                  "min_uid = 1000", "exclude = root", "create = yes", "", "[offline]", "allow = yes", "max_days = 14", ""]
        return lines.joined(separator: "\n")
    }
}

/// Writes a config file the way the module wants to find it: atomically (`AtomicFile`), mode
/// 0600, owned by `owner` (root:root) — and, without `replace`, never over a file that
/// appeared meanwhile. A missing directory is created (0755, owned by `owner`).
public enum ConfigWriter {
    public struct WriteError: Error, Equatable, Sendable, CustomStringConvertible {
        public var description: String
    }

    public static func write(_ text: String, to path: String, replace: Bool,
                             owner: (uid: uid_t, gid: gid_t) = (0, 0)) -> Result<Void, WriteError> {
        let directory = FileTrust.directory(containing: path)
        if access(directory, F_OK) != 0 {
            guard mkdir(directory, 0o755) == 0 else { return .failure(WriteError(description: "cannot create \(directory): \(SystemError(errno))")) }
            _ = chown(directory, owner.uid, owner.gid)
        }
        return AtomicFile.write(Array(text.utf8), to: path, mode: 0o600, owner: owner, replacing: replace)
            .mapError { WriteError(description: $0.error.description) }
    }
}
