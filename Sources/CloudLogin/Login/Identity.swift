/// Who the IdP says the user is, from verified ID-token claims or userinfo.
public struct Identity: Equatable, Sendable {
    /// The IdP's stable id for the user (`sub`); the local account is bound to it.
    public var subject: String
    /// The login the IdP was asked about (`alice@example.com`).
    public var idpLogin: String
    /// All verified claims. Tokens are never among them.
    public var claims: [String: JSONValue]

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
    func verifyPassword(login: String, password: SecretBytes, deadline: Deadline) -> IdentityVerdict
}
