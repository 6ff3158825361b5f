/// The result of one authentication attempt, in CloudLogin's words. The PAM glue turns it into
/// a PAM code and a message in exactly one place (`PAMResult(for:)`); nothing else does.
public enum Outcome: Equatable, Sendable {
    /// The IdP said yes (or said "MFA required" after a verified password, and the admin set
    /// `ropg_mfa_required = password-verified`).
    case accepted(Identity)
    /// The IdP verified the password but requires MFA the password grant cannot do, and the
    /// admin set `ropg_mfa_required = password-verified` (MFA is enforced elsewhere). No claims
    /// come with such an answer, so no identity: a local account is never created from it.
    case acceptedPasswordOnly(idpLogin: String)
    /// The IdP said no, or the attempt was refused before anything was sent.
    case rejected(RejectionReason)
    /// A user CloudLogin leaves to the rest of the stack; the password was not asked for.
    case notCloudUser(LocalOnlyReason)
    /// The IdP could not be reached or answered 5xx/429.
    case idpUnavailable(String)
    /// The IdP or the client registration is set up wrong, or the IdP's answer was broken.
    case idpMisconfigured(String)
    /// CloudLogin's own config is missing, unreadable, unsafe or invalid.
    case configInvalid(String)
    /// The local account could not be created or updated.
    case accountStoreFailed(String)
    /// The application's conversation could not give a password (e.g. `sudo -n`).
    case noPassword

    /// A short, secret-free description for logs.
    public var summary: String {
        switch self {
        case .accepted: return "accepted"
        case .acceptedPasswordOnly: return "accepted on the password alone (the IdP requires MFA; ropg_mfa_required = password-verified)"
        case .rejected(let reason): return "rejected (\(reason.rawValue))"
        case .notCloudUser(let reason): return "not a cloud user (\(reason.rawValue))"
        case .idpUnavailable(let why): return "IdP unavailable: \(why)"
        case .idpMisconfigured(let why): return "IdP misconfigured: \(why)"
        case .configInvalid(let why): return "configuration error: \(why)"
        case .accountStoreFailed(let why): return "local account update failed: \(why)"
        case .noPassword: return "no password could be obtained"
        }
    }
}

/// Why a user is left to the rest of the PAM stack.
public enum LocalOnlyReason: String, Equatable, Sendable {
    case root = "root"
    case excluded = "listed in exclude"
    case systemAccount = "uid below min_uid"
    case unmanagedLocalAccount = "existing local account not managed by CloudLogin"
}
