import ArgumentParser
import CloudLogin
import Glibc

/// `cloudlogin setup`: checks the IdP first, then writes a config the module will accept
/// (root-owned, 0600, written atomically, never over an existing one without --force).
struct Setup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the identity provider, then write a safe config file.",
        discussion: """
        OIDC: --issuer URL --client-id ID [--client-secret-file F]. Discovery and the JWKS are \
        fetched first; with --test-user USER (password on standard input) a real password grant \
        must succeed too. Okta: --okta-domain URL writes provider = okta after checking that \
        URL/api/v1/authn answers over TLS. Nothing is written unless every check passes.

        Exit status: 0 written, 1 bad arguments, an unsafe file, or a config already there \
        (use --force to replace it), 2 the identity provider check failed (nothing written).
        """
    )

    @Option(name: .long, help: "The config file to write.")
    var config: String = Config.defaultPath

    @Option(name: .long, help: "The OpenID issuer URL (https); discovery at ISSUER/.well-known/openid-configuration.")
    var issuer: String?

    @Option(name: .long, help: "The client registered at the IdP for the password grant.")
    var clientID: String?

    @Option(name: .long, help: "A root-owned mode-0600 file holding the client secret (for a confidential client).")
    var clientSecretFile: String?

    @Option(name: .long, help: "PEM file of the CA that signed the IdP's certificate, when it is not in the system trust store.")
    var caFile: String?

    @Option(name: .long, help: "An http:// or https:// proxy through which this machine reaches the IdP (written as proxy; the environment's proxy variables are not used).")
    var proxy: String?

    @Option(name: .long, help: "Appended to typed names without '@', e.g. @example.com.")
    var usernameSuffix: String?

    @Option(name: .long, help: "Your Okta org URL (https://example.okta.com): writes provider = okta.")
    var oktaDomain: String?

    @Option(name: .long, help: "Also sign in USER with a real password grant before writing (password on standard input).")
    var testUser: String?

    @Flag(name: .long, help: "Replace an existing config file.")
    var force = false

    func validate() throws {
        if oktaDomain != nil {
            guard issuer == nil, clientID == nil else { throw ValidationError("give either --okta-domain or --issuer with --client-id, not both") }
            guard testUser == nil else { throw ValidationError("--test-user works with --issuer only: provider = okta sign-in is not available in this version") }
        } else {
            guard issuer != nil, clientID != nil else { throw ValidationError("give --issuer URL and --client-id ID (or --okta-domain URL)") }
        }
    }

    func run() throws {
        guard config.hasPrefix("/") else { fail(1, "--config must be an absolute path") }
        if !force, access(config, F_OK) == 0 {
            fail(1, "\(config) already exists; nothing written. Use --force to replace it (the old file is replaced atomically)")
        }
        let directory = FileCheck.parent(of: config)
        if access(directory, F_OK) == 0, let problem = FileCheck.trustedDirectory(directory) {
            fail(1, "\(problem.message)\n  fix: \(problem.fix)")
        }

        let text = configText()
        // Parse what would be written exactly as the module will read it (the secret file is
        // read with the module's safety checks).
        let parsed: Config
        switch ConfigParser.parse(text, path: config, context: ConfigParser.Context(
            fileIsPrivate: true, readSecretFile: { SafeFile.readSecret($0, owner: ConfigOption.owner) },
            checkTrustedFile: { SafeFile.check($0, owner: ConfigOption.owner) })) {
        case .failure(let problem): fail(1, "\(problem)")
        case .success(let good): parsed = good
        }
        if let caFile = parsed.caFile, let problem = FileCheck.trustedFile(caFile, what: "--ca-file") {
            fail(1, "\(problem.message)\n  fix: \(problem.fix)")
        }

        var report = CheckReport(json: false)
        let check = IdPCheck(config: parsed, testUser: testUser, quiet: false)
        switch parsed.provider {
        case .oidc: check.run(into: &report)
        case .okta: check.runOkta(into: &report)
        }
        if report.findings.contains(where: { $0.status == .error }) {
            fail(2, "the identity provider check failed; nothing written to \(config)")
        }
        if let testUser, !report.findings.contains(where: { $0.id == "idp.grant" && $0.status == .ok }) {
            fail(2, "\(testUser) could not sign in with the password grant; nothing written to \(config)")
        }

        switch ConfigWriter.write(text, to: config, replace: force) {
        case .failure(let why): fail(1, "cannot write \(config): \(why)")
        case .success:
            print("wrote \(config) (owner root, mode 0600)")
            print("next: cloudlogin check; cloudlogin login USER --trace; then pam-auth-update --enable cloudlogin (keep a root shell open)")
        }
    }

    func fail(_ code: Int32, _ message: String) -> Never {
        printError("setup: \(message)")
        Glibc.exit(code)
    }

    /// The file as written: the given values, everything else at its documented default.
    func configText() -> String {
        var lines = ["# \(config): written by `cloudlogin setup`; see cloudlogin.conf(5).",
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

/// Writes a config file the way the module wants to find it: a temporary file in the same
/// directory (mode 0600, owner root), synced, then moved into place in one step.
enum ConfigWriter {
    struct WriteError: Error, CustomStringConvertible {
        var description: String
    }

    static func write(_ text: String, to path: String, replace: Bool) -> Result<Void, WriteError> {
        let directory = FileCheck.parent(of: path)
        if access(directory, F_OK) != 0 {
            guard mkdir(directory, 0o755) == 0 else { return .failure(WriteError(description: "cannot create \(directory): \(String(cString: strerror(errno)))")) }
            _ = chown(directory, 0, 0)
        }
        let temporary = "\(path).setup.\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { return .failure(WriteError(description: String(cString: strerror(errno)))) }
        var ok = fchown(descriptor, 0, 0) == 0 && fchmod(descriptor, 0o600) == 0
        var bytes = Array(text.utf8)
        var written = 0
        while ok && written < bytes.count {
            let result = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress.map { $0 + written }, bytes.count - written) }
            if result < 0 && errno == EINTR { continue }
            if result <= 0 { ok = false } else { written += result }
        }
        bytes.removeAll()
        let why = String(cString: strerror(errno))
        if fsync(descriptor) != 0 { ok = false }
        close(descriptor)
        guard ok else {
            unlink(temporary)
            return .failure(WriteError(description: why))
        }
        // Without --force, link() refuses to replace a file that appeared meanwhile.
        let moved = replace ? rename(temporary, path) == 0 : link(temporary, path) == 0
        let reason = String(cString: strerror(errno))
        if !replace || !moved { unlink(temporary) }
        guard moved else { return .failure(WriteError(description: reason)) }
        return .success(())
    }
}
