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
        // CloudLogin sets no credentials; it succeeds so that `success=done` stacks end cleanly.
        return PAM_SUCCESS
    default:
        // Account and password phases come with local account management; until then the
        // rest of the stack decides.
        return PAM_IGNORE
    }
}

/// pam_sm_authenticate: read the config, ask the IdP, report once.
func authenticate(_ session: PAMSession) -> Int32 {
    let clock = SystemClock()
    let started = clock.monotonicMilliseconds()
    let outcome: Outcome
    var idp = "-"
    switch ConfigLoader.load(path: session.arguments.configPath) {
    case .failure(let problem):
        outcome = .configInvalid(problem.description)
    case .success(let config):
        idp = config.issuer ?? config.oktaDomain ?? "-"
        if let user = session.user() {
            let flow = LoginFlow.system(config: config, log: session)
            outcome = flow.authenticate(typedName: user) { session.password() }
        } else {
            outcome = .noPassword
        }
    }
    let result = PAMResult(for: outcome)
    let latency = clock.monotonicMilliseconds() &- started
    session.record(result.logLevel, "authentication \(outcome.summary); \(PAMResult.name(of: result.code)); idp \(idp); \(latency) ms")
    if let message = result.message { session.tell(message, isError: result.messageIsError) }
    return result.code
}
