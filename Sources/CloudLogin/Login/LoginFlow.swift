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

/// Where CloudLogin stands with a local account name: one answer, used by the screening, the
/// offline rule and the account and password phases.
public enum Standing: Equatable, Sendable {
    /// A record exists.
    case managed(ManagedUser)
    /// The account carries CloudLogin's mark but its record is gone: managed, with no standing
    /// (sent to the IdP, never offline, denied in the account phase until it signs in again).
    case markedWithoutRecord
    /// No record, no mark.
    case notManaged
    /// No mark, and the state directory fails its checks, so a record cannot be looked for:
    /// taken for a local user's account (a broken state directory never locks one out).
    case unmarkedStateUnusable
    /// A record that cannot be read (or a marked account whose record cannot be looked for).
    case unreadable
}

/// One sign-in, exactly as the module runs it; the CLI's `cloudlogin login` runs the same.
///
/// The flow knows nothing of PAM. The world comes in through the seams it is built with:
/// HTTP transport, metadata cache, local accounts, managed-user state, clock, log and the
/// caller's credentials.
public final class LoginFlow {
    /// How long the local part of a sign-in (state lock, account tools) may take beyond the
    /// IdP's `timeout`: the sign-in's overall deadline is `timeout` plus this.
    public static let localUpdateSeconds = 30

    public let config: Config
    private let transport: HTTPTransport
    private let accounts: LocalAccountStore
    private let state: ManagedUserStore
    private let clock: Clock
    private let log: EventLog
    private let canChangeAccounts: Bool
    private let caller: CallerCredentials
    /// The person's time of this sign-in, shared with the seams' deadline (`SignInSeams`).
    private let personTime: PersonTime?
    public let directory: ProviderDirectory

    /// The flow for `config`, with the world of `seams`.
    public init(config: Config, seams: SignInSeams) {
        self.config = config
        self.transport = seams.transport
        self.accounts = seams.accounts
        self.state = seams.state
        self.clock = seams.clock
        self.log = seams.log
        self.canChangeAccounts = seams.canChangeAccounts
        self.caller = seams.caller
        self.personTime = seams.deadline.personTime
        self.directory = ProviderDirectory(settings: OIDCSettings(passwordGrant: config), transport: seams.transport, cache: seams.cache, clock: seams.clock, log: seams.log)
    }

    /// The flow with each seam given by name (tests).
    public convenience init(config: Config, transport: HTTPTransport, cache: MetadataCache?, accounts: LocalAccountStore,
                            state: ManagedUserStore, clock: Clock, log: EventLog, canChangeAccounts: Bool,
                            caller: CallerCredentials = ProcessCredentials()) {
        self.init(config: config, seams: SignInSeams(transport: transport, cache: cache, accounts: accounts, state: state, clock: clock,
                                                     log: log, caller: caller, canChangeAccounts: canChangeAccounts))
    }

    /// The flow with the real world (`SignInSeams.system`).
    public static func system(config: Config, log: EventLog) -> LoginFlow {
        LoginFlow(config: config, seams: .system(config: config, log: log))
    }

    var sync: AccountSync {
        AccountSync(config: config, accounts: accounts, state: state, clock: clock, log: log, canChangeAccounts: canChangeAccounts)
    }

    /// Where CloudLogin stands with the account `name` (which exists or not). Reads the mark
    /// and the record; takes no lock, so a local user never waits for a managed one.
    public func standing(of name: String) -> Standing {
        let marked = accounts.isMarked(name)
        switch state.user(named: name) {
        case .success(let record?): return .managed(record)
        case .success(nil): return marked ? .markedWithoutRecord : .notManaged
        case .failure(let error):
            log.error("cannot read the managed-user record of \(name): \(error)")
            if case .stateLayout = error, !marked { return .unmarkedStateUnusable }
            return .unreadable
        }
    }

    /// Decides from the name alone whether the IdP is asked at all. Local-only users are
    /// decided here, so their password is never read by CloudLogin, let alone sent. A typed
    /// `name@domain` is screened by its part before '@' as well.
    public func screen(typedName: String) -> NameDecision {
        if let reason = EarlyScreen.localOnly(typedName: typedName, accounts: accounts) { return .localOnly(reason) }
        for name in EarlyScreen.candidateNames(typedName) {
            if name == "root" { return .localOnly(.root) }
            if config.exclude.contains(name) { return .localOnly(.excluded) }
            guard let account = accounts.account(named: name) else { continue }
            if account.uid < config.minUID && !accounts.isMarked(name) { return .localOnly(.systemAccount) }
            switch standing(of: name) {
            case .managed, .markedWithoutRecord: continue
            case .unmarkedStateUnusable: return .localOnly(.unmanagedLocalAccount)
            case .notManaged:
                if !config.migrate { return .localOnly(.unmanagedLocalAccount) }
                if accounts.isMember(name, of: config.adminLocalGroup) && !config.migrateAdmins.contains(name) {
                    return .localOnly(.unmanagedAdmin)
                }
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
        if config.provider == .oidc && !config.passwordGrant {
            return deviceOnly(login: login, typedName: typedName, localName: knownLocalName ?? managedName(forLogin: login),
                              conversation: conversation)
        }
        let secret: SecretBytes
        switch password() {
        case .unavailable: return .noPassword
        case .password(let given): secret = given
        }
        defer { secret.wipe() }
        guard !secret.isEmpty else { return .rejected(.emptyPassword) }
        // Control characters (NUL, line breaks, DEL, …) are refused before anything is sent:
        // nobody types them, chpasswd could not store them, and sshd puts them in the placeholder
        // it passes for an unknown user ("\u{8}\n\r\u{7F}INCORRECT"), which would let anyone who
        // reaches port 22 make failed sign-ins at the IdP (and its lockout counters) for any name.
        guard !secret.containsControlCharacter else { return .rejected(.badCredentials) }

        log.debug("asking the IdP about \(login)")
        var verdict: IdentityVerdict
        switch provider() {
        case .success(let provider):
            verdict = provider.verifyPassword(login: login, password: secret, conversation: conversation, deadline: idpDeadline())
        case .failure(let problem):
            verdict = .problem(problem)
        }
        // The local account this sign-in is about, when it is known without the IdP.
        let localName = knownLocalName ?? managedName(forLogin: login)

        // MFA by device authorization, once the IdP verified the password.
        if let step = deviceStep(after: verdict, login: login) {
            verdict = deviceAuthorization().run(login: login, conversation: conversation, deadline: idpDeadline())
            if case .accepted(let approved) = verdict, let refusal = approvalRefusal(approved, login: login, expectedSubject: step.expectedSubject) {
                return .refusedHere(refusal)
            }
        }
        return finish(verdict, login: login, typedName: typedName, localName: localName, password: secret)
    }

    /// What a verdict of the IdP comes to: the account synced for a yes, the rejection recorded
    /// for a no, the offline rule for a problem. `password` is nil for device-only sign-in.
    func finish(_ verdict: IdentityVerdict, login: String, typedName: String, localName: String?, password secret: SecretBytes?) -> Outcome {
        switch verdict {
        case .accepted(let identity):
            switch sync.sync(identity: identity, typedName: typedName, password: secret) {
            case .ready(let name, let created):
                let held = groupsTakenAway(localName: name)
                guard held.isEmpty else {
                    log.warning("\(name) signs in from a process that still holds group(s) CloudLogin took away (\(held.joined(separator: ", "))); refusing this call")
                    return .refusedHere(.groupsTakenAway)
                }
                return .accepted(identity, localName: name, created: created)
            case .refused(let refusal): return .refusedHere(refusal)
            case .failed(let error):
                log.error("local account update failed: \(error)")
                return .accountStoreFailed(error)
            }
        case .mfaRequired(let passwordVerified):
            guard let secret else { return .rejected(.mfaRequired) }
            return passwordOnly(passwordVerified: passwordVerified, login: login, localName: localName, password: secret)
        case .rejected(let reason):
            if let localName, let secret { sync.recordRejection(localName: localName, login: login, reason: reason, password: secret) }
            return .rejected(reason)
        case .problem(let problem):
            return offline(problem, localName: localName)
        }
    }

    /// The IdP exchange's deadline (`timeout`), moved by the person's time like the sign-in's.
    func idpDeadline() -> Deadline {
        Deadline(clock: clock, seconds: config.timeout, personTime: personTime)
    }

    /// Why the device step runs after the password grant.
    enum DeviceStep {
        /// The IdP verified the password and requires MFA (a documented answer).
        case mfaRequired
        /// `mfa = always` after a yes naming `subject`, which the approval must name too.
        case afterAcceptance(subject: String)

        var expectedSubject: String? {
            if case .afterAcceptance(let subject) = self { return subject }
            return nil
        }
    }

    /// Whether the device step comes after the password grant's `verdict` (`mfa`): after a
    /// documented "password right, MFA required" (when-required, always), or after a yes
    /// (always).
    func deviceStep(after verdict: IdentityVerdict, login: String) -> DeviceStep? {
        guard config.provider == .oidc else { return nil }
        switch (verdict, config.mfa) {
        case (.mfaRequired(passwordVerified: true), .whenRequired), (.mfaRequired(passwordVerified: true), .always):
            log.info("the IdP verified the password of \(login) and requires MFA; asking for approval by device authorization")
            return .mfaRequired
        case (.mfaRequired(passwordVerified: false), .whenRequired), (.mfaRequired(passwordVerified: false), .always):
            // Such an answer (Okta's OIDC endpoint, interaction_required) does not say the
            // password was right: MFA after it would sync a password nobody checked.
            log.notice("the IdP requires MFA for \(login) but does not say the password was right; refusing (MFA by device authorization needs a verified password)")
            return nil
        case (.accepted(let identity), .always):
            log.info("the IdP accepted the password of \(login); mfa = always: asking for approval by device authorization")
            return .afterAcceptance(subject: identity.subject)
        default:
            return nil
        }
    }

    /// The device step's client (`mfa`, `password_grant = no`).
    func deviceAuthorization() -> DeviceAuthorization {
        DeviceAuthorization(config: config, transport: transport, directory: directory,
                            tokens: OIDCPasswordGrant(config: config, transport: transport, directory: directory, clock: clock, log: log),
                            clock: clock, log: log)
    }

    /// Why an approval by device authorization does not sign in `login`: it names another IdP
    /// user than the one typed, or another subject than the password grant's.
    func approvalRefusal(_ approved: Identity, login: String, expectedSubject: String?) -> AccountRefusal? {
        if let expectedSubject, approved.subject != expectedSubject {
            log.error("the device approval for \(login) names another subject than the password grant; refusing")
            return .approvedByAnotherUser
        }
        guard DeviceAuthorization.names(approved, login: login, config: config) else {
            log.error("the device approval for \(login) was given by another IdP user (its \(config.nameClaim) claim does not name \(login)); refusing")
            return .approvedByAnotherUser
        }
        return nil
    }

    /// Device-only sign-in (`password_grant = no`): no password is read or sent; the account
    /// is kept in step from the approval's ID token and its local password stays locked, so
    /// there is no offline sign-in (`OfflineRefusal.deviceOnly`).
    func deviceOnly(login: String, typedName: String, localName: String?, conversation: Conversation) -> Outcome {
        log.debug("asking the IdP about \(login) by device authorization only")
        let verdict = deviceAuthorization().run(login: login, conversation: conversation, deadline: idpDeadline())
        if case .accepted(let approved) = verdict, let refusal = approvalRefusal(approved, login: login, expectedSubject: nil) {
            return .refusedHere(refusal)
        }
        return finish(verdict, login: login, typedName: typedName, localName: localName, password: nil)
    }

    /// "Password right, MFA required" (`ropg_mfa_required = password-verified`). Such an answer
    /// carries no claims: it proves only that whoever holds the login at the IdP today typed
    /// their own password. It opens an account only when that password is also the account's
    /// synced local password, the record names the same login, and the offline rule allows
    /// the account (a login reused by someone else at the IdP opens nothing).
    func passwordOnly(passwordVerified: Bool, login: String, localName: String?, password: SecretBytes) -> Outcome {
        guard passwordVerified && config.ropgMFARequired == .passwordVerified else { return .rejected(.mfaRequired) }
        guard let localName, case .managed(let record) = standing(of: localName),
              record.idpLogin.lowercased() == login.lowercased(),
              case .allowed = OfflinePolicy.decide(record: record, config: config, now: clock.now()),
              accounts.passwordMatches(name: localName, password: password) == true else {
            return .refusedHere(.noAccount)
        }
        guard groupsTakenAway(localName: localName).isEmpty else { return .refusedHere(.groupsTakenAway) }
        return .acceptedPasswordOnly(localName: localName)
    }

    /// The sign-in when CloudLogin's own config cannot be used (missing, unsafe, invalid) and
    /// the account is not a local user's (it carries the mark, or does not exist): never a yes.
    /// This flow is built with the built-in defaults (`Config()`): a managed account may sign
    /// in offline under the built-in rule (14 days, never after the IdP refused it); anything
    /// else is refused.
    public func withoutConfig(typedName: String, problem: ConfigDiagnostic) -> Outcome {
        let localName = typedName.contains("@") ? managedName(forLogin: typedName) : typedName
        guard let localName, accounts.account(named: localName) != nil, case .managed(let record) = standing(of: localName) else {
            return .configInvalid(problem, offlineFor: nil)
        }
        switch OfflinePolicy.decide(record: record, config: config, now: clock.now()) {
        case .allowed:
            guard groupsTakenAway(localName: localName).isEmpty else { return .refusedHere(.groupsTakenAway) }
            return .configInvalid(problem, offlineFor: localName)
        case .refused(let reason):
            log.notice("offline sign-in of \(localName) under the built-in rule refused: \(reason.rawValue)")
            return .configInvalid(problem, offlineFor: nil)
        }
    }

    /// The offline rule, when the IdP could not be used.
    func offline(_ problem: IdPProblem, localName: String?) -> Outcome {
        var decision = OfflinePolicy.Decision.refused(.neverOnline)
        if let localName {
            switch standing(of: localName) {
            case .managed(let record):
                decision = OfflinePolicy.decide(record: record, config: config, now: clock.now())
                if case .allowed = decision, !groupsTakenAway(localName: localName).isEmpty { return .refusedHere(.groupsTakenAway) }
            case .notManaged:
                // An existing local account not yet managed (migrate = yes) keeps its own
                // password while the IdP is away, as before CloudLogin.
                if config.migrate, accounts.account(named: localName) != nil { decision = .allowed(daysLeft: 0) }
                if !config.offlineAllowed { decision = .refused(.turnedOff) }
                if !config.passwordGrant { decision = .refused(.deviceOnly) }
            case .markedWithoutRecord, .unmarkedStateUnusable, .unreadable:
                break
            }
        }
        switch (decision, problem.kind) {
        case (.allowed, .unavailable): return .idpUnavailable(problem, localName: localName)
        case (.allowed, .misconfigured): return .idpMisconfigured(problem, localName: localName)
        case (.refused(let reason), _): return .offlineRefused(problem: problem, reason: reason)
        }
    }

    /// Groups CloudLogin took away from `localName` whose ids this process still carries, when
    /// the process is the user's own (sudo, or su to oneself): sudo's default policy trusts
    /// those ids, so such a call must not go on. A new session gets the groups the account
    /// has now. Groups an admin gave back by hand do not count.
    public func groupsTakenAway(localName: String) -> [String] {
        guard let account = accounts.account(named: localName), caller.realUID == account.uid,
              case .managed(let record) = standing(of: localName), !record.revokedGroups.isEmpty else { return [] }
        let held = Set(caller.groupIDs())
        return record.revokedGroups.filter { group in
            guard let gid = accounts.groupID(of: group), held.contains(gid) else { return false }
            return !accounts.isMember(localName, of: group)
        }
    }

    /// The managed account whose IdP login is `login` (for a UPN typed at `login`).
    func managedName(forLogin login: String) -> String? {
        guard case .success(let users) = state.allUsers() else { return nil }
        return users.first { $0.idpLogin.lowercased() == login.lowercased() }?.name
    }

    /// The account phase: managed users the IdP refused, who left `allow_groups`, whose record
    /// is lost or unreadable, or who call from a process holding a group CloudLogin took away,
    /// are denied; everyone else is left to the rest of the stack.
    public func accountDecision(user: String) -> AccountDecision {
        if EarlyScreen.localOnly(typedName: user, accounts: accounts) != nil { return .notManaged }
        let record: ManagedUser
        switch standing(of: user) {
        case .notManaged, .unmarkedStateUnusable: return .notManaged
        case .markedWithoutRecord: return .denied(.recordMissing)
        case .unreadable: return .denied(.recordUnreadable)
        case .managed(let found): record = found
        }
        if record.lastVerdict == .revoked { return .denied(.revoked) }
        if !record.allowed { return .denied(.notAllowed) }
        if !groupsTakenAway(localName: user).isEmpty { return .denied(.groupsTakenAway) }
        return .inGoodStanding
    }

    /// The password phase: a managed user's password belongs to the IdP.
    public func passwordChangeDecision(user: String) -> PasswordChangeDecision {
        if EarlyScreen.localOnly(typedName: user, accounts: accounts) != nil { return .notManaged }
        switch standing(of: user) {
        case .notManaged, .unmarkedStateUnusable: return .notManaged
        case .managed, .markedWithoutRecord, .unreadable:
            return .managedByIdP(where: config.issuer ?? config.oktaDomain ?? "your identity provider")
        }
    }

    /// The identity provider for the configured protocol.
    func provider() -> Result<IdentityProvider, IdPProblem> {
        switch config.provider {
        case .oidc:
            return .success(OIDCPasswordGrant(config: config, transport: transport, directory: directory, clock: clock, log: log))
        case .okta where config.isOktaDirect:
            // Identity Engine direct authentication: the password grant at Okta's authorization
            // server (issuer, client and scopes from [okta]), MFA through the MFA API.
            return .success(OIDCPasswordGrant(config: config, transport: transport, directory: directory, clock: clock, log: log))
        case .okta:
            return .success(OktaAuthentication(config: config, transport: transport, cache: directory.cache, clock: clock, log: log))
        }
    }
}
