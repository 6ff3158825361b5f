import ArgumentParser
import CloudLogin

/// `cloudlogin check`: reads the config and talks to the IdP the way the module will, and says
/// in words what is wrong and how to fix it.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the config file and the identity provider (discovery, JWKS).",
        discussion: "Exit status: 0 all good, 1 the config file has an error, 2 the identity provider is unreachable or misconfigured."
    )

    @OptionGroup var options: ConfigOption

    func run() throws {
        let config = try options.load()
        print("config: \(config.path) is valid (provider \(config.provider.rawValue))")
        guard config.provider == .oidc else {
            print("provider = okta is not supported by this version; use provider = oidc with an Okta OIDC app")
            throw ExitCode(2)
        }
        let log = TerminalLog(trace: false)
        let flow = LoginFlow.system(config: config, log: log)
        let deadline = Deadline(clock: SystemClock(), seconds: config.timeout)
        var failed = false

        if config.tokenEndpoint == nil || config.jwksURI == nil || config.userinfoEndpoint == nil {
            switch flow.directory.discovery(deadline: deadline, refresh: true) {
            case .failure(let problem):
                print("discovery: FAILED: \(problem)")
                print(advice(for: problem))
                throw ExitCode(2)
            case .success(let metadata):
                print("discovery: issuer \(metadata.issuer)")
                print("  token endpoint: \(metadata.tokenEndpoint)")
                print("  userinfo endpoint: \(metadata.userinfoEndpoint ?? "(none)")")
                print("  jwks: \(metadata.jwksURI ?? "(none)")")
                if let grants = metadata.grantTypesSupported, !grants.contains("password") {
                    print("  note: grant_types_supported does not list 'password'; some IdPs allow it anyway. If sign-in fails with unauthorized_client, enable the Resource Owner Password grant for client \(config.clientID).")
                }
            }
        }
        if let override = config.tokenEndpoint { print("token endpoint (from config): \(override)") }
        switch flow.directory.keys(deadline: deadline, refresh: true) {
        case .failure(let problem):
            print("jwks: FAILED: \(problem)")
            print(advice(for: problem))
            failed = true
        case .success(let found):
            if found.keys.keys.isEmpty {
                print("jwks: FAILED: the JWKS holds no signing key CloudLogin can use (RSA ≥ 2048 bits, EC P-256/P-384)")
                failed = true
            } else {
                print("jwks: \(found.keys.keys.count) usable signing key(s)")
            }
        }
        print("client: \(config.clientID), authentication \(config.clientAuthentication.rawValue), scopes \(config.scopes.joined(separator: " "))")
        if failed { throw ExitCode(2) }
        print("ok: try a sign-in with: cloudlogin login USER")
    }

    func advice(for problem: IdPProblem) -> String {
        switch problem {
        case .unavailable(let why) where why.contains("TLS"):
            return "fix: the IdP's certificate is not trusted or does not match its name; set ca_file to the PEM of the CA that signed it, and check the host name in issuer."
        case .unavailable:
            return "fix: check that the issuer host is reachable from this machine (DNS, firewall, https_proxy)."
        case .misconfigured:
            return "fix: check issuer (it must be the exact issuer the IdP announces) and the client registration."
        }
    }
}
