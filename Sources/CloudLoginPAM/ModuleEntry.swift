import CShim
import CloudLogin

/// The one entry from C (CShim.c): every pam_sm_* call lands here and goes to the phase of
/// `SignIn` it names, with the PAM handle as the host. The PAM code comes from `PAMResult`.
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
        return SignIn.authenticate(session).result.code
    case Int32(CLOUDLOGIN_PHASE_SETCRED.rawValue): // trap-check: enum constant fits
        return SignIn.setCredentials(session).code
    case Int32(CLOUDLOGIN_PHASE_ACCT_MGMT.rawValue): // trap-check: enum constant fits
        return SignIn.accountManagement(session).code
    case Int32(CLOUDLOGIN_PHASE_CHAUTHTOK.rawValue): // trap-check: enum constant fits
        return SignIn.changePassword(session, preliminary: session.isPreliminaryCheck).code
    default:
        return PAMResult.unknownPhase.code
    }
}
