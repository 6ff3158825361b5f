/// Who the IdP says the user is, from verified ID-token claims or userinfo.
public struct Identity: Equatable, Sendable {
    /// The IdP's stable id for the user (`sub`); the local account is bound to it.
    public var subject: String
    /// The login the IdP was asked about (`alice@example.com`).
    public var idpLogin: String
    /// All verified claims. Tokens are never among them.
    public var claims: [String: JSONValue]
    /// False when the IdP's answer says nothing about groups (Okta without an OIDC client):
    /// then no group is granted or taken back, and `allow_groups` cannot be met.
    public var groupsKnown = true

    public init(subject: String, idpLogin: String, claims: [String: JSONValue]) {
        self.subject = subject
        self.idpLogin = idpLogin
        self.claims = claims
    }

    public var displayName: String? { claims["name"]?.stringValue }
    public var email: String? { claims["email"]?.stringValue }

    /// Values of the groups claim: an array of strings, or one string whose values are
    /// separated by ';' or ',' (as some IdPs send multi-valued attributes).
    public func groups(claim: String) -> [String] {
        switch claims[claim] {
        case .array(let values)?:
            return values.compactMap(\.stringValue)
        case .string(let text)?:
            return text.split(whereSeparator: { $0 == ";" || $0 == "," }).map(\.trimmed).filter { !$0.isEmpty }
        default:
            return []
        }
    }
}

/// Why the IdP said no. All of them are `PAM_AUTH_ERR`, so names cannot be probed; the
/// reason goes to the log and (later) to the offline policy.
public enum RejectionReason: String, Equatable, Sendable {
    /// Wrong password, or the IdP does not say which of password/user is wrong.
    case badCredentials = "bad credentials"
    case unknownUser = "unknown user"
    case disabled = "user disabled"
    /// Conditional access or a similar policy refused the sign-in.
    case accessPolicy = "refused by access policy"
    case mfaRequired = "MFA required"
    case passwordExpired = "password expired"
    /// Empty password: nothing was sent.
    case emptyPassword = "empty password"
    /// The typed name is not one CloudLogin can send or map: nothing was sent.
    case invalidName = "invalid user name"
    /// Okta: the account is locked out.
    case lockedOut = "account locked out"
    /// Okta: MFA is required but no factor CloudLogin can use is enrolled.
    case mfaEnrollmentRequired = "MFA factor must be enrolled"
    /// The MFA challenge failed: rejected push, wrong codes, too many tries.
    case mfaFailed = "MFA failed"
    /// The push was not approved in time.
    case mfaTimedOut = "MFA timed out"
    /// Okta: a password recovery is in progress for this account.
    case recoveryInProgress = "password recovery in progress"
    /// Okta: the transaction expired (E0000011).
    case transactionExpired = "sign-in transaction expired"
    /// The user abandoned the sign-in (no answer, interrupt) or the caller cannot ask.
    case abandoned = "sign-in abandoned"
    /// Okta: a state CloudLogin does not handle.
    case unsupportedState = "unsupported sign-in state"
    /// Okta: the new password was not accepted.
    case passwordChangeFailed = "password change failed"
    /// CloudLogin's record of the account cannot be read: neither the IdP nor pam_unix is asked.
    case stateUnreadable = "managed-user record unreadable"
}

/// What an identity provider answered to a password.
public enum IdentityVerdict: Equatable, Sendable {
    case accepted(Identity)
    /// A definite no: never a reason for offline sign-in.
    case rejected(RejectionReason)
    /// The IdP wants MFA that the password grant cannot do. `passwordVerified` is true only
    /// for answers documented to come after a correct password (Entra 50076/50079, Auth0).
    case mfaRequired(passwordVerified: Bool)
    case problem(IdPProblem)
}

/// Checks a password with the IdP. One implementation per protocol (ROPG now, Okta next),
/// chosen once from the config.
public protocol IdentityProvider {
    /// Checks `password` for `login`. A provider that changes the password on the way (Okta's
    /// PASSWORD_EXPIRED) replaces the content of `password` with the new one, which is then
    /// what the local account is synced to.
    func verifyPassword(login: String, password: SecretBytes, conversation: Conversation, deadline: Deadline) -> IdentityVerdict
}
