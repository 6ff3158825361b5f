/// The result of one authentication attempt, in CloudLogin's words. The PAM glue turns it into
/// a PAM code and a message in exactly one place (`PAMResult`); nothing else does.
public enum Outcome: Equatable, Sendable {
    /// The IdP said yes and the local account `localName` matches the identity (`created` at
    /// the first sign-in).
    case accepted(Identity, localName: String, created: Bool)
    /// The IdP verified the password but requires MFA the password grant cannot do, and the
    /// admin set `ropg_mfa_required = password-verified` (MFA is enforced elsewhere). No claims
    /// come with such an answer: it only signs in an account CloudLogin already manages.
    case acceptedPasswordOnly(localName: String)
    /// The IdP said no, or the attempt was refused before anything was sent.
    case rejected(RejectionReason)
    /// The IdP said yes, but this machine refuses the sign-in (name, binding, groups).
    case refusedHere(AccountRefusal)
    /// A user CloudLogin leaves to the rest of the stack; the password was not asked for.
    case notCloudUser(LocalOnlyReason)
    /// The IdP could not be reached (or answered 5xx/408/429) and offline sign-in is allowed:
    /// pam_unix checks the synced password of `localName`. The problem's `kind` is
    /// `.unavailable`.
    case idpUnavailable(IdPProblem, localName: String?)
    /// The IdP or the client registration is set up wrong, or the IdP's answer was broken;
    /// offline sign-in is allowed as for `idpUnavailable`. The problem's `kind` is
    /// `.misconfigured`.
    case idpMisconfigured(IdPProblem, localName: String?)
    /// The IdP could not be used (either kind of problem) and offline sign-in is not allowed
    /// for this user.
    case offlineRefused(problem: IdPProblem, reason: OfflineRefusal)
    /// CloudLogin's own config is missing, unreadable, unsafe or invalid, for a user who is not
    /// a local one. `offlineFor`: the managed account that may sign in offline under the
    /// built-in rule (pam_unix checks its synced password); nil: refused.
    case configInvalid(ConfigDiagnostic, offlineFor: String?)
    /// The local account could not be created or updated.
    case accountStoreFailed(AccountError)
    /// The IdP said yes for the local account `localName`, but the host would not take that
    /// name as the signed-in user (PAM_USER could not be set).
    case localNameNotSet(String)
    /// The application could not give a user name or a password (e.g. `sudo -n`).
    case noPassword

    /// A short, secret-free description for logs.
    public var summary: String {
        switch self {
        case .accepted(_, _, let created): return created ? "accepted; local account created" : "accepted"
        case .acceptedPasswordOnly: return "accepted on the password alone (the IdP requires MFA; ropg_mfa_required = password-verified)"
        case .rejected(let reason): return "rejected (\(reason.rawValue))"
        case .refusedHere(let reason): return "refused on this machine (\(reason.rawValue))"
        case .notCloudUser(let reason): return "not a cloud user (\(reason.rawValue))"
        case .idpUnavailable(let why, _): return "IdP unavailable, offline sign-in allowed: \(why)"
        case .idpMisconfigured(let why, _): return "IdP misconfigured, offline sign-in allowed: \(why)"
        case .offlineRefused(let problem, let reason): return "offline sign-in refused (\(reason.rawValue)); \(problem)"
        case .configInvalid(let why, let offline?): return "configuration error, offline sign-in of \(offline) allowed under the built-in rule: \(why)"
        case .configInvalid(let why, nil): return "configuration error: \(why)"
        case .accountStoreFailed(let why): return "local account update failed: \(why)"
        case .localNameNotSet(let name): return "accepted, but PAM_USER could not be set to the local name \(name)"
        case .noPassword: return "no password could be obtained"
        }
    }
}

/// Why a user is left to the rest of the PAM stack.
public enum LocalOnlyReason: String, Equatable, Sendable, CaseIterable {
    case root = "root"
    case excluded = "listed in exclude"
    case systemAccount = "uid below min_uid"
    case unmanagedLocalAccount = "existing local account not managed by CloudLogin"
    case unmanagedAdmin = "existing local administrator not listed in migrate_admins"
}

/// The account phase (`pam_sm_acct_mgmt`) for one user.
public enum AccountDecision: Equatable, Sendable {
    /// The application gave no user name.
    case noUser
    /// Not managed by CloudLogin: the rest of the stack decides.
    case notManaged
    /// Managed and in good standing: the rest of the stack still decides (never a bare yes).
    case inGoodStanding
    case denied(AccountDenial)
}

public enum AccountDenial: String, Equatable, Sendable, CaseIterable {
    case revoked = "the identity provider refused this account"
    case notAllowed = "the account is no longer in allow_groups"
    case recordUnreadable = "CloudLogin's record of this account cannot be read"
    case recordMissing = "CloudLogin's record of this account is missing; sign in with your cloud password to restore it"
    case groupsTakenAway = "your identity provider took away group rights this session still holds; sign out and sign in again"
}

/// The password phase (`pam_sm_chauthtok`) for one user.
public enum PasswordChangeDecision: Equatable, Sendable {
    case notManaged
    /// The password belongs to the IdP; `where` says where to change it.
    case managedByIdP(where: String)
}
