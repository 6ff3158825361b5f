import Glibc

/// What the flow asks of its caller when it needs the password: the PAM glue reads it through
/// `pam_get_authtok`, the CLI from the terminal.
public enum PasswordAnswer {
    case password(SecretBytes)
    case unavailable
}

/// Who is asking, decided from the typed name before any password is read.
public enum NameDecision: Equatable, Sendable {
    /// Cloud sign-in with this IdP login; `localName` when already known (a short name).
    case cloud(idpLogin: String, localName: String?)
    case localOnly(LocalOnlyReason)
    case refuse(RejectionReason)
}

/// One sign-in, exactly as the module runs it; the CLI's `cloudlogin login` runs the same.
///
/// The flow knows nothing of PAM. The world comes in through the seams it is built with:
/// HTTP transport, metadata cache, local accounts, managed-user state, clock and log.
public final class LoginFlow {
    public let config: Config
    private let transport: HTTPTransport
    private let accounts: LocalAccountStore
    private let state: ManagedUserStore
    private let clock: Clock
    private let log: EventLog
    private let canChangeAccounts: Bool
    public let directory: ProviderDirectory

    public init(config: Config, transport: HTTPTransport, cache: MetadataCache?, accounts: LocalAccountStore,
                state: ManagedUserStore, clock: Clock, log: EventLog, canChangeAccounts: Bool) {
        self.config = config
        self.transport = transport
        self.accounts = accounts
        self.state = state
        self.clock = clock
        self.log = log
        self.canChangeAccounts = canChangeAccounts
        self.directory = ProviderDirectory(config: config, transport: transport, cache: cache, clock: clock, log: log)
    }

    /// The flow with the real world: libcurl, the cache and state directories, NSS and
    /// shadow-utils, the system clock. Account changes only when running as root.
    public static func system(config: Config, log: EventLog) -> LoginFlow {
        LoginFlow(config: config,
                  transport: CurlTransport(config: config),
                  cache: DiskMetadataCache(directory: config.cacheDirectory, log: log),
                  accounts: ShadowUtilsAccounts(), state: StateDirectory(path: config.stateDirectory),
                  clock: SystemClock(), log: log, canChangeAccounts: geteuid() == 0)
    }

    var sync: AccountSync {
        AccountSync(config: config, accounts: accounts, state: state, clock: clock, log: log, canChangeAccounts: canChangeAccounts)
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
            switch managedState(typedName) {
            case .managed: break
            case .notManaged: if !config.migrate { return .localOnly(.unmanagedLocalAccount) }
            // Neither sent to the IdP (it may be a local user) nor left to pam_unix (it may be
            // a managed user the IdP has refused).
            case .unreadable: return .refuse(.stateUnreadable)
            }
        }
        guard let login = LoginName.idpLogin(typed: typedName, suffix: config.usernameSuffix) else {
            return .refuse(.invalidName)
        }
        return .cloud(idpLogin: login, localName: typedName.contains("@") ? nil : typedName)
    }

    /// Whether CloudLogin manages `name`. An account that exists without a record may be in
    /// the middle of its first sign-in in another process (created, record not yet written):
    /// the record is looked for again under the lock the creating process holds.
    func managedState(_ name: String) -> ManagedState {
        switch state.user(named: name) {
        case .success(.some): return .managed
        case .failure(let error):
            log.error("cannot read the managed-user record of \(name): \(error)")
            return .unreadable
        case .success(nil): break
        }
        guard canChangeAccounts else { return .notManaged }
        switch state.withLock({ state.user(named: name) }) {
        case .success(.some): return .managed
        case .success(nil): return .notManaged
        case .failure(let error):
            log.error("cannot read the managed-user record of \(name): \(error)")
            return .unreadable
        }
    }

    enum ManagedState { case managed, notManaged, unreadable }

    /// Authenticates `typedName`. `password` is called at most once, only for a cloud user.
    public func authenticate(typedName: String, conversation: Conversation = NoConversation(),
                             password: () -> PasswordAnswer) -> Outcome {
        let login: String
        let knownLocalName: String?
        switch screen(typedName: typedName) {
        case .localOnly(let reason): return .notCloudUser(reason)
        case .refuse(let reason): return .rejected(reason)
        case .cloud(let idpLogin, let localName): (login, knownLocalName) = (idpLogin, localName)
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
            verdict = provider.verifyPassword(login: login, password: secret, conversation: conversation,
                                              deadline: Deadline(clock: clock, seconds: config.timeout))
        case .failure(let problem):
            verdict = .problem(problem)
        }
        // The local account this sign-in is about, when it is known without the IdP.
        let localName = knownLocalName ?? managedName(forLogin: login)

        switch verdict {
        case .accepted(let identity):
            switch sync.sync(identity: identity, typedName: typedName, password: secret) {
            case .ready(let name, let created): return .accepted(identity, localName: name, created: created)
            case .refused(let refusal): return .refusedHere(refusal)
            case .failed(let error):
                log.error("local account update failed: \(error)")
                return .accountStoreFailed(error.description)
            }
        case .mfaRequired(let passwordVerified):
            guard passwordVerified && config.ropgMFARequired == .passwordVerified else { return .rejected(.mfaRequired) }
            guard let localName, case .success(let record?) = state.user(named: localName), record.lastVerdict == .accepted,
                  record.allowed, record.idpLogin.lowercased() == login.lowercased() else {
                return .refusedHere(.noAccount)
            }
            return .acceptedPasswordOnly(localName: localName)
        case .rejected(let reason):
            if let localName { sync.recordRejection(localName: localName, reason: reason, password: secret) }
            return .rejected(reason)
        case .problem(let problem):
            return offline(problem, localName: localName)
        }
    }

    /// The offline rule, when the IdP could not be used.
    func offline(_ problem: IdPProblem, localName: String?) -> Outcome {
        var decision = OfflinePolicy.Decision.refused(.neverOnline)
        if let localName {
            switch state.user(named: localName) {
            case .success(let record?):
                decision = OfflinePolicy.decide(record: record, config: config, now: clock.now())
            case .success(nil):
                // An existing local account not yet managed (migrate = yes) keeps its own
                // password while the IdP is away, as before CloudLogin.
                if config.migrate, accounts.account(named: localName) != nil { decision = .allowed(daysLeft: 0) }
                if !config.offlineAllowed { decision = .refused(.turnedOff) }
            case .failure(let error):
                log.error("cannot read the managed-user state: \(error)")
            }
        }
        switch (decision, problem) {
        case (.allowed, .unavailable(let why)): return .idpUnavailable(why, localName: localName)
        case (.allowed, .misconfigured(let why)): return .idpMisconfigured(why, localName: localName)
        case (.refused(let reason), _): return .offlineRefused(problem: problem.description, reason: reason)
        }
    }

    /// The managed account whose IdP login is `login` (for a UPN typed at `login`).
    func managedName(forLogin login: String) -> String? {
        guard case .success(let users) = state.allUsers() else { return nil }
        return users.first { $0.idpLogin.lowercased() == login.lowercased() }?.name
    }

    /// The account phase: managed users the IdP refused, or who left `allow_groups`, are
    /// denied; everyone else is left to the rest of the stack.
    public func accountDecision(user: String) -> AccountDecision {
        let record: ManagedUser
        switch state.user(named: user) {
        case .success(nil): return .notManaged
        case .success(let found?): record = found
        case .failure(let error):
            log.error("cannot read the managed-user record of \(user): \(error)")
            return .denied(.recordUnreadable)
        }
        if record.lastVerdict == .revoked { return .denied(.revoked) }
        if !record.allowed { return .denied(.notAllowed) }
        return .inGoodStanding
    }

    /// The password phase: a managed user's password belongs to the IdP.
    public func passwordChangeDecision(user: String) -> PasswordChangeDecision {
        guard case .success(.some) = state.user(named: user) else { return .notManaged }
        return .managedByIdP(where: config.issuer ?? config.oktaDomain ?? "your identity provider")
    }

    /// The identity provider for the configured protocol.
    func provider() -> Result<IdentityProvider, IdPProblem> {
        switch config.provider {
        case .oidc:
            return .success(OIDCPasswordGrant(config: config, transport: transport, directory: directory, clock: clock, log: log))
        case .okta:
            return .success(OktaAuthentication(config: config, transport: transport, cache: directory.cache, clock: clock, log: log))
        }
    }
}
