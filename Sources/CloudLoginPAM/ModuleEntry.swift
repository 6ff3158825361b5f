import CShim
import CloudLogin

/// The one entry from C (CShim.c): every pam_sm_* call lands here.
@_cdecl("cl_dispatch")
public func cloudLoginDispatch(_ handle: OpaquePointer, _ phase: Int32, _ flags: Int32, _ argc: Int32,
                               _ argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    let session = PAMSession(handle: handle, flags: flags,
                             arguments: ModuleArguments(argc: argc, argv: UnsafePointer(argv)))
    for argument in session.arguments.unknown {
        session.warning("unknown module argument '\(argument)' ignored")
    }
    switch phase {
    case Int32(CLOUDLOGIN_PHASE_AUTHENTICATE.rawValue): // trap-check: enum constant fits
        return authenticate(session)
    case Int32(CLOUDLOGIN_PHASE_SETCRED.rawValue): // trap-check: enum constant fits
        // CloudLogin sets no credentials. It answers for its own sign-ins only (so that
        // `success=done` stacks end cleanly); after another module's sign-in it stays out of
        // the way, and that module's setcred (Kerberos tickets, for example) runs.
        return CShim_was_authenticated(session.handle) != 0 ? PAM_SUCCESS : PAM_IGNORE
    case Int32(CLOUDLOGIN_PHASE_ACCT_MGMT.rawValue): // trap-check: enum constant fits
        return accountManagement(session)
    case Int32(CLOUDLOGIN_PHASE_CHAUTHTOK.rawValue): // trap-check: enum constant fits
        return changePassword(session)
    default:
        return PAM_SERVICE_ERR
    }
}

/// pam_sm_authenticate: screen the name, read the config, ask the IdP, sync the account,
/// report once. Root and system accounts are screened before any CloudLogin file is read;
/// when the config cannot be used, accounts without CloudLogin's mark are left to the stack.
func authenticate(_ session: PAMSession) -> Int32 {
    let clock = SystemClock()
    let started = clock.monotonicMilliseconds()
    let outcome: Outcome
    var idp = "-"
    if let user = session.user() {
        let accounts = SystemAccounts()
        if let reason = EarlyScreen.localOnly(typedName: user, accounts: accounts) {
            outcome = .notCloudUser(reason)
        } else {
            switch ConfigLoader.load(path: session.arguments.configPath) {
            case .failure(let problem):
                session.error("configuration unusable: \(problem.description)")
                if let reason = EarlyScreen.localOnlyWithoutConfig(typedName: user, accounts: accounts) {
                    outcome = .notCloudUser(reason)
                } else {
                    outcome = LoginFlow.system(config: Config(), log: session).withoutConfig(typedName: user, problem: problem.description)
                }
            case .success(let config):
                idp = config.issuer ?? config.oktaDomain ?? "-"
                let flow = LoginFlow.system(config: config, log: session)
                outcome = flow.authenticate(typedName: user, conversation: session) { session.password() }
                // A full UPN typed at `login` becomes the local name (login re-reads PAM_USER).
                switch outcome {
                case .accepted(_, let localName, _), .acceptedPasswordOnly(let localName),
                     .idpUnavailable(_, let localName?), .idpMisconfigured(_, let localName?):
                    // Only for a name with no local account (a UPN at `login`): sudo and su looked
                    // the user up before PAM, and PAM_USER must not change under them.
                    if localName != user, accounts.account(named: user) == nil, !session.setUser(localName) {
                        session.error("could not set PAM_USER to the local name")
                        _ = CShim_set_authenticated(session.handle, 0)
                        return PAM_SYSTEM_ERR
                    }
                default:
                    break
                }
            }
        }
    } else {
        outcome = .noPassword
    }
    let result = PAMResult(for: outcome)
    _ = CShim_set_authenticated(session.handle, result.code == PAM_SUCCESS ? 1 : 0)
    let latency = clock.monotonicMilliseconds() &- started
    let mode: String
    switch outcome {
    case .idpUnavailable, .idpMisconfigured, .offlineRefused, .configInvalid(_, offlineFor: .some): mode = "offline"
    case .notCloudUser, .configInvalid, .noPassword, .rejected(.emptyPassword), .rejected(.invalidName): mode = "local"
    default: mode = "online"
    }
    session.record(result.logLevel, "authentication \(outcome.summary); \(PAMResult.name(of: result.code)); \(mode); idp \(idp); \(latency) ms")
    if let message = result.message { session.tell(message, isError: result.messageIsError) }
    return result.code
}

/// pam_sm_acct_mgmt: deny managed users the IdP refused, who left allow_groups, whose record
/// is lost, or who call from a process holding a group CloudLogin took away. Root and system
/// accounts are screened before any CloudLogin file is read; when the config cannot be used,
/// a managed account is judged by its record under the built-in defaults.
func accountManagement(_ session: PAMSession) -> Int32 {
    guard let user = session.user() else { return PAM_USER_UNKNOWN }
    guard let config = configForManagedPhase(session, user: user) else { return PAM_IGNORE }
    let decision = LoginFlow.system(config: config, log: session).accountDecision(user: user)
    let result = PAMResult(for: decision)
    if case .denied(let denial) = decision { session.record(result.logLevel, "account denied: \(denial.rawValue)") }
    if let message = result.message { session.tell(message, isError: result.messageIsError) }
    return result.code
}

/// pam_sm_chauthtok: a managed user's password is changed at the IdP, not here.
func changePassword(_ session: PAMSession) -> Int32 {
    guard let user = session.user(), let config = configForManagedPhase(session, user: user) else { return PAM_IGNORE }
    let decision = LoginFlow.system(config: config, log: session).passwordChangeDecision(user: user)
    let result = PAMResult(for: decision)
    // Tell the user once, in the preliminary check (chauthtok runs twice).
    if session.flags & PAM_PRELIM_CHECK != 0, let message = result.message {
        session.tell(message, isError: result.messageIsError)
    }
    return result.code
}

/// The config for the account and password phases, or nil when the rest of the stack decides
/// alone: root and unmarked system accounts before any CloudLogin file is read, and every
/// account without CloudLogin's mark when the config cannot be used. A managed account is
/// judged by the built-in defaults then.
func configForManagedPhase(_ session: PAMSession, user: String) -> Config? {
    let accounts = SystemAccounts()
    if EarlyScreen.localOnly(typedName: user, accounts: accounts) != nil { return nil }
    switch ConfigLoader.load(path: session.arguments.configPath) {
    case .success(let loaded): return loaded
    case .failure(let problem):
        if EarlyScreen.localOnlyWithoutConfig(typedName: user, accounts: accounts) != nil { return nil }
        session.error("configuration unusable: \(problem.description); judging \(user) by the built-in defaults")
        return Config()
    }
}
