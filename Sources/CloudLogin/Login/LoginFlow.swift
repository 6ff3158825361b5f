import Glibc

/// What the flow asks of its caller when it needs the password: the PAM glue reads it through
/// `pam_get_authtok`, the CLI from the terminal.
public enum PasswordAnswer {
    case password(SecretBytes)
    case unavailable
}

/// Who is asking, decided from the typed name before any password is read.
public enum NameDecision: Equatable, Sendable {
    /// Cloud sign-in with this IdP login.
    case cloud(idpLogin: String)
    case localOnly(LocalOnlyReason)
    case refuse(RejectionReason)
}

/// One sign-in, exactly as the module runs it; the CLI's `cloudlogin login` runs the same.
///
/// The flow knows nothing of PAM. The world comes in through the seams it is built with:
/// HTTP transport, metadata cache, local account directory, clock and log.
public final class LoginFlow {
    public let config: Config
    private let transport: HTTPTransport
    private let accounts: LocalAccountDirectory
    private let clock: Clock
    private let log: EventLog
    public let directory: ProviderDirectory

    public init(config: Config, transport: HTTPTransport, cache: MetadataCache?,
                accounts: LocalAccountDirectory, clock: Clock, log: EventLog) {
        self.config = config
        self.transport = transport
        self.accounts = accounts
        self.clock = clock
        self.log = log
        self.directory = ProviderDirectory(config: config, transport: transport, cache: cache, clock: clock, log: log)
    }

    /// The flow with the real world: libcurl, the cache directory, NSS, the system clock.
    public static func system(config: Config, log: EventLog) -> LoginFlow {
        LoginFlow(config: config,
                  transport: CurlTransport(caFile: config.caFile, connectTimeoutSeconds: config.connectTimeout),
                  cache: DiskMetadataCache(directory: config.cacheDirectory, log: log),
                  accounts: SystemAccounts(), clock: SystemClock(), log: log)
    }

    /// Decides from the name alone whether the IdP is asked at all. Local-only users are
    /// decided here, so their password is never read by CloudLogin, let alone sent.
    public func screen(typedName: String) -> NameDecision {
        let shortName = typedName.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? typedName
        for name in Set([typedName, shortName.lowercased()]) {
            if name == "root" { return .localOnly(.root) }
            if config.exclude.contains(name) { return .localOnly(.excluded) }
        }
        if let account = accounts.account(named: typedName) {
            if account.uid == 0 { return .localOnly(.root) }
            if account.uid < config.minUID { return .localOnly(.systemAccount) }
            if !config.migrate { return .localOnly(.unmanagedLocalAccount) }
        }
        guard let login = LoginName.idpLogin(typed: typedName, suffix: config.usernameSuffix) else {
            return .refuse(.invalidName)
        }
        return .cloud(idpLogin: login)
    }

    /// Authenticates `typedName`. `password` is called at most once, only for a cloud user.
    public func authenticate(typedName: String, password: () -> PasswordAnswer) -> Outcome {
        let login: String
        switch screen(typedName: typedName) {
        case .localOnly(let reason): return .notCloudUser(reason)
        case .refuse(let reason): return .rejected(reason)
        case .cloud(let idpLogin): login = idpLogin
        }
        let secret: SecretBytes
        switch password() {
        case .unavailable: return .noPassword
        case .password(let given): secret = given
        }
        defer { secret.wipe() }
        guard !secret.isEmpty else { return .rejected(.emptyPassword) }
        guard !secret.contains(0) else { return .rejected(.badCredentials) }

        log.debug("asking the IdP about \(login)")
        let verdict: IdentityVerdict
        switch provider() {
        case .success(let provider):
            verdict = provider.verifyPassword(login: login, password: secret,
                                              deadline: Deadline(clock: clock, seconds: config.timeout))
        case .failure(let problem):
            verdict = .problem(problem)
        }
        return outcome(for: verdict, login: login)
    }

    /// The identity provider for the configured protocol.
    func provider() -> Result<IdentityProvider, IdPProblem> {
        switch config.provider {
        case .oidc:
            return .success(OIDCPasswordGrant(config: config, transport: transport, directory: directory, clock: clock, log: log))
        case .okta:
            return .failure(.misconfigured("provider = okta (the Okta Authentication API) is not supported by this version of CloudLogin; use provider = oidc with an Okta OIDC app"))
        }
    }

    func outcome(for verdict: IdentityVerdict, login: String) -> Outcome {
        switch verdict {
        case .accepted(let identity):
            return .accepted(identity)
        case .rejected(let reason):
            return .rejected(reason)
        case .mfaRequired(let passwordVerified):
            if passwordVerified && config.ropgMFARequired == .passwordVerified {
                return .acceptedPasswordOnly(idpLogin: login)
            }
            return .rejected(.mfaRequired)
        case .problem(.unavailable(let why)):
            return .idpUnavailable(why)
        case .problem(.misconfigured(let why)):
            return .idpMisconfigured(why)
        }
    }
}
