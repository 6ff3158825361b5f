import CloudLogin

/// What a sign-in needs from the program it runs in — the PAM handle in the module
/// (`PAMSession`), the terminal in `cloudlogin login` — so that both run the same phases
/// (`SignIn`), the way kanidm's PAM module drives its core through a `PamHandler`.
public protocol SignInHost: Conversation {
    /// Where the phases report: syslog in the module, standard error in the CLI.
    var log: EventLog { get }
    /// The config file (`config=` module argument, `--config`).
    var configPath: String { get }
    /// The user name the application gives (asking for it if it has none).
    func user() -> String?
    /// The password (read at most once, only for a cloud user).
    func password() -> PasswordAnswer
    /// Takes `name` as the signed-in user from now on (PAM_USER, which `login` re-reads).
    func setUser(_ name: String) -> Bool
    /// Shows a result message (dropped where the application asked for silence).
    func show(_ message: String, isError: Bool)
    /// Remembers whether CloudLogin said yes to the sign-in in this PAM handle.
    func rememberSignIn(_ accepted: Bool)
    /// Whether CloudLogin said yes to the last sign-in in this PAM handle.
    func signedInHere() -> Bool
}

/// One sign-in as the module runs it: what happened and what the host was told.
public struct SignInReport {
    public var outcome: Outcome
    public var result: PAMResult
    /// The one syslog line every attempt leaves (also shown by `cloudlogin login`).
    public var summary: String
    /// The metadata requests the sign-in made (discovery, JWKS), for `--trace`.
    public var fetches: [String] = []
}

/// The PAM phases, for the module and `cloudlogin login` alike. Each reads in one direction:
/// screen the name (before any CloudLogin file for root and system accounts), read the config,
/// run the core, map the outcome to a PAM code in `PAMResult`, report.
public enum SignIn {
    /// Builds the seams of one call for a config (the module: `SignInSeams.system`; the CLI
    /// wraps them for `--trace` and `--dry-run`). `network` is false in the phases that never
    /// ask the IdP.
    public typealias SeamsFactory = (_ config: Config, _ network: Bool) -> SignInSeams

    /// pam_sm_authenticate.
    public static func authenticate(_ host: SignInHost, directory: LocalAccountDirectory = SystemAccounts(),
                                    seams: SeamsFactory? = nil) -> SignInReport {
        let makeSeams = seams ?? { config, network in SignInSeams.system(config: config, log: host.log, network: network) }
        let clock = SystemClock()
        let started = clock.monotonicMilliseconds()
        var idp = "-"
        var fetches: [String] = []
        let outcome: Outcome
        if let user = host.user() {
            if let reason = EarlyScreen.localOnly(typedName: user, accounts: directory) {
                outcome = .notCloudUser(reason)
            } else {
                switch ConfigLoader.load(path: host.configPath) {
                case .failure(let problem):
                    host.log.error("configuration unusable: \(problem.description)")
                    if let reason = EarlyScreen.localOnlyWithoutConfig(typedName: user, accounts: directory) {
                        outcome = .notCloudUser(reason)
                    } else {
                        let builtIn = Config()
                        outcome = LoginFlow(config: builtIn, seams: makeSeams(builtIn, false)).withoutConfig(typedName: user, problem: problem)
                    }
                case .success(let config):
                    idp = config.issuer ?? config.oktaDomain ?? "-"
                    let flow = LoginFlow(config: config, seams: makeSeams(config, true))
                    outcome = takeLocalName(flow.authenticate(typedName: user, conversation: host) { host.password() },
                                            typedName: user, host: host, directory: directory)
                    fetches = flow.directory.fetches
                }
            }
        } else {
            outcome = .noPassword
        }
        let result = PAMResult(for: outcome)
        host.rememberSignIn(result.code == PAMResult.success)
        let latency = clock.monotonicMilliseconds() &- started
        let summary = "authentication \(outcome.summary); \(PAMResult.name(of: result.code)); \(mode(of: outcome)); idp \(idp); \(latency) ms"
        host.log.record(result.logLevel, summary)
        if let message = result.message { host.show(message, isError: result.messageIsError) }
        return SignInReport(outcome: outcome, result: result, summary: summary, fetches: fetches)
    }

    /// A full UPN typed at `login` becomes the local name (login re-reads PAM_USER). Only for a
    /// name with no local account: sudo and su looked the user up before PAM, and PAM_USER must
    /// not change under them.
    static func takeLocalName(_ outcome: Outcome, typedName: String, host: SignInHost, directory: LocalAccountDirectory) -> Outcome {
        switch outcome {
        case .accepted(_, let localName, _), .acceptedPasswordOnly(let localName),
             .idpUnavailable(_, let localName?), .idpMisconfigured(_, let localName?):
            if localName != typedName, directory.account(named: typedName) == nil, !host.setUser(localName) {
                return .localNameNotSet(localName)
            }
            return outcome
        default:
            return outcome
        }
    }

    /// Whether the IdP was asked (online), could not be (offline), or was never in question (local).
    static func mode(of outcome: Outcome) -> String {
        switch outcome {
        case .idpUnavailable, .idpMisconfigured, .offlineRefused, .configInvalid(_, offlineFor: .some): return "offline"
        case .notCloudUser, .configInvalid, .noPassword, .rejected(.emptyPassword), .rejected(.invalidName): return "local"
        default: return "online"
        }
    }

    /// pam_sm_acct_mgmt.
    public static func accountManagement(_ host: SignInHost, directory: LocalAccountDirectory = SystemAccounts(),
                                         seams: SeamsFactory? = nil) -> PAMResult {
        let decision: AccountDecision
        if let user = host.user() {
            if let config = configForManagedPhase(host, user: user, directory: directory) {
                let makeSeams = seams ?? { config, network in SignInSeams.system(config: config, log: host.log, network: network) }
                decision = LoginFlow(config: config, seams: makeSeams(config, false)).accountDecision(user: user)
            } else {
                decision = .notManaged
            }
        } else {
            decision = .noUser
        }
        let result = PAMResult(for: decision)
        if case .denied(let denial) = decision { host.log.record(result.logLevel, "account denied: \(denial.rawValue)") }
        if let message = result.message { host.show(message, isError: result.messageIsError) }
        return result
    }

    /// pam_sm_chauthtok. `preliminary`: the first of its two calls (PAM_PRELIM_CHECK), where the
    /// user is told.
    public static func changePassword(_ host: SignInHost, preliminary: Bool, directory: LocalAccountDirectory = SystemAccounts(),
                                      seams: SeamsFactory? = nil) -> PAMResult {
        var decision = PasswordChangeDecision.notManaged
        if let user = host.user(), let config = configForManagedPhase(host, user: user, directory: directory) {
            let makeSeams = seams ?? { config, network in SignInSeams.system(config: config, log: host.log, network: network) }
            decision = LoginFlow(config: config, seams: makeSeams(config, false)).passwordChangeDecision(user: user)
        }
        let result = PAMResult(for: decision)
        if preliminary, let message = result.message { host.show(message, isError: result.messageIsError) }
        return result
    }

    /// pam_sm_setcred: CloudLogin sets no credentials. It answers for its own sign-ins only (so
    /// that `success=done` stacks end cleanly); after another module's sign-in it stays out of
    /// the way, and that module's setcred (Kerberos tickets, for example) runs.
    public static func setCredentials(_ host: SignInHost) -> PAMResult {
        PAMResult(forCredentialsAfterOwnSignIn: host.signedInHere())
    }

    /// The config for the account and password phases, or nil when the rest of the stack decides
    /// alone: root and unmarked system accounts before any CloudLogin file is read, and every
    /// account without CloudLogin's mark when the config cannot be used. A managed account is
    /// judged by the built-in defaults then.
    static func configForManagedPhase(_ host: SignInHost, user: String, directory: LocalAccountDirectory) -> Config? {
        if EarlyScreen.localOnly(typedName: user, accounts: directory) != nil { return nil }
        switch ConfigLoader.load(path: host.configPath) {
        case .success(let loaded): return loaded
        case .failure(let problem):
            if EarlyScreen.localOnlyWithoutConfig(typedName: user, accounts: directory) != nil { return nil }
            host.log.error("configuration unusable: \(problem.description); judging \(user) by the built-in defaults")
            return Config()
        }
    }
}
