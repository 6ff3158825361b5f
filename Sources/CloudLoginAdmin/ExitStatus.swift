/// Every exit status `cloudlogin` chooses, in one table: README ("The `cloudlogin` command")
/// and cloudlogin(1) (EXIT STATUS) list the same numbers per command, and scripts rely on them.
/// (Usage errors — an unknown option, `setup --okta-domain` with `--issuer` — are
/// ArgumentParser's own: 64.)
public enum ExitStatus: Equatable, Sendable, CaseIterable {
    /// Every command: done, no problem (`check`: warnings allowed).
    case success
    /// `check`: the config cannot be used; `login`, `status`: a config error.
    case configUnusable
    /// `setup`: bad arguments, an unsafe file, a config already there (without --force), or it
    /// could not be written.
    case setupRefused
    /// `check`: sign-in with the identity provider would fail; `setup`: its check failed
    /// (nothing written).
    case identityProviderFails
    /// `check`: a local problem (file owners and modes, the PAM stack).
    case localProblem
    /// `login`: the module would not return PAM_SUCCESS.
    case notSignedIn
    /// `status USER`: USER is not managed by CloudLogin.
    case notManaged

    public var code: Int32 {
        switch self {
        case .success: return 0
        case .configUnusable, .setupRefused: return 1
        case .identityProviderFails: return 2
        case .localProblem, .notSignedIn: return 3
        case .notManaged: return 4
        }
    }

    /// The commands that exit with it.
    public var commands: [String] {
        switch self {
        case .success: return ["setup", "check", "login", "status"]
        case .configUnusable: return ["check", "login", "status"]
        case .setupRefused: return ["setup"]
        case .identityProviderFails: return ["setup", "check"]
        case .localProblem: return ["check"]
        case .notSignedIn: return ["login"]
        case .notManaged: return ["status"]
        }
    }
}
