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

/// Why the sign-in was refused (by the IdP, or before anything was sent). All of them are
/// `PAM_AUTH_ERR`; the refusals that could tell a wrong password from an unknown or disabled
/// user show the user the same message, so names cannot be probed. The reason goes to the log,
/// and `revokesOfflineSignIn` decides what it does to offline sign-in.
public enum RejectionReason: String, Equatable, Sendable, CaseIterable {
    /// Wrong password, or the IdP does not say which of password/user is wrong.
    case badCredentials = "bad credentials"
    case unknownUser = "unknown user"
    case disabled = "user disabled"
    /// Conditional access or a similar policy refused the sign-in (Entra AADSTS53003).
    case accessPolicy = "refused by access policy"
    /// The IdP blocked the account: by an administrator, or by its brute-force protection
    /// (Auth0 `unauthorized` "user is blocked", `access_denied`, `too_many_attempts`; Entra
    /// AADSTS50053).
    case blocked = "blocked by the identity provider"
    /// A 4xx with an error code CloudLogin does not know: this attempt was refused, and that is
    /// all it says (not an outage, not a misconfiguration).
    case unrecognizedRefusal = "refused by the identity provider (an error CloudLogin does not know)"
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

    /// Whether the answer is the IdP's definite word that this account may not sign in, so
    /// that offline sign-in with the synced password stops until the next online success:
    /// unknown, disabled, blocked or locked accounts and access-policy blocks. A wrong password
    /// revokes only when it is the synced one (AccountSync.recordRejection checks that).
    public var revokesOfflineSignIn: Bool {
        switch self {
        case .unknownUser, .disabled, .blocked, .accessPolicy, .lockedOut:
            return true
        case .badCredentials, .unrecognizedRefusal, .mfaRequired, .passwordExpired, .emptyPassword, .invalidName,
             .mfaEnrollmentRequired, .mfaFailed, .mfaTimedOut, .recoveryInProgress, .transactionExpired, .abandoned,
             .unsupportedState, .passwordChangeFailed, .stateUnreadable:
            return false
        }
    }
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

/// One step of an exchange with the IdP that takes several (the device grant, the MFA API): its
/// result, or the verdict that ends the exchange there.
enum IdPStep<Value> {
    case next(Value)
    case ended(IdentityVerdict)
}

/// Checks a password with the IdP. One implementation per protocol (`OIDCPasswordGrant`,
/// `OktaAuthentication`), chosen once from the config (`LoginFlow.provider()`).
public protocol IdentityProvider {
    /// Checks `password` for `login`. A provider that changes the password on the way (Okta's
    /// PASSWORD_EXPIRED) replaces the content of `password` with the new one, which is then
    /// what the local account is synced to.
    func verifyPassword(login: String, password: SecretBytes, conversation: Conversation, deadline: Deadline) -> IdentityVerdict
}
