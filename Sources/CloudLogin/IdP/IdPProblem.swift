/// A problem with the IdP as a whole, not with the user's credentials: what went wrong
/// (`cause`), where (`stage`), and from both, what it means (`kind`).
///
/// `kind` is derived from the cause and never stored: "unavailable" (the offline rule may let
/// pam_unix check the synced password) can only come from a failed transport or the HTTP class
/// of a status (408, 429, 5xx). Every other cause is a misconfiguration. A definite "no" from
/// the IdP is not an `IdPProblem` at all but a `RejectionReason` (`IdPClassifier`).
public struct IdPProblem: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Equatable, Sendable {
        /// Try later; offline sign-in may apply.
        case unavailable
        /// The IdP, CloudLogin's registration at it or the config is set up wrong, or the IdP
        /// sent something broken; offline sign-in may apply as for `unavailable`.
        case misconfigured
    }

    /// Which exchange with the IdP failed.
    public enum Stage: String, Equatable, Sendable {
        case discovery
        /// The JWKS (signing keys).
        case keys
        /// The token endpoint (the password grant).
        case token
        case userinfo
        /// Okta: the first `POST /api/v1/authn` (the password).
        case oktaAuthn = "okta-authn"
        /// Okta: an MFA factor (verify, SMS challenge, push poll).
        case oktaFactor = "okta-factor"
        /// Okta: the password states (PASSWORD_WARN skip, PASSWORD_EXPIRED change).
        case oktaPassword = "okta-password"
        /// Okta: the rest of a transaction (its shape, its links, its number of steps).
        case oktaTransaction = "okta-transaction"
        /// Okta: the sessionToken exchanged for an ID token with the groups.
        case groupsExchange = "groups-exchange"
        /// The device authorization request (RFC 8628 §3.1).
        case deviceAuthorization = "device-authorization"
        /// The token endpoint polled for the device's approval (RFC 8628 §3.4).
        case deviceToken = "device-token"
        /// The MFA API: the authenticator list and the challenge.
        case mfaChallenge = "mfa-challenge"
        /// The token endpoint completing MFA (`…/mfa-otp`, `…/mfa-oob`).
        case mfaToken = "mfa-token"

        /// The two exchanges of the device grant.
    public var isDeviceGrant: Bool { self == .deviceAuthorization || self == .deviceToken }

    /// The exchange in words, as the subject of a sentence.
        public var what: String {
            switch self {
            case .discovery: return "discovery"
            case .keys: return "the JWKS"
            case .token: return "the token endpoint"
            case .userinfo: return "userinfo"
            case .oktaAuthn: return "Okta (sign-in)"
            case .oktaFactor: return "Okta (MFA factor)"
            case .oktaPassword: return "Okta (password)"
            case .oktaTransaction: return "Okta"
            case .groupsExchange: return "the Okta groups exchange"
            case .deviceAuthorization: return "the device authorization endpoint"
            case .deviceToken: return "the token endpoint (device grant)"
            case .mfaChallenge: return "the MFA API"
            case .mfaToken: return "the token endpoint (MFA)"
            }
        }
    }

    /// The client-side OAuth error codes (RFC 6749 §5.2): the only `error` values that mean
    /// CloudLogin's registration at the IdP is wrong rather than that this attempt was refused.
    public enum OAuthClientError: String, Equatable, Sendable, CaseIterable {
        case invalidClient = "invalid_client"
        case unauthorizedClient = "unauthorized_client"
        case unsupportedGrantType = "unsupported_grant_type"
        case invalidScope = "invalid_scope"
        case invalidRequest = "invalid_request"
    }

    public enum Cause: Equatable, Sendable {
        /// No HTTP answer.
        case transport(TransportError)
        /// An HTTP status and nothing more to go on (a metadata request's non-200, a bare 404).
        case http(status: Int)
        /// A 4xx page that is not JSON: a proxy's or a firewall's, not the IdP's word.
        case notJSON(status: Int)
        /// A client-side OAuth error code.
        case oauthError(OAuthClientError, status: Int)
        /// A Microsoft Entra ID error code about the client or app registration.
        case entraCode(Int)
        /// The ID token failed validation.
        case invalidToken(IDTokenError)
        /// The authorization endpoint redirected with an `error` (Okta groups exchange).
        case authorizationError(String)
        /// An answer that does not follow the protocol (a 200 without an access token, a
        /// discovery document for another issuer, an Okta link outside okta_domain, …), in
        /// secret-free words.
        case malformed(String)
        /// Something this machine lacks for the exchange (a config value, random numbers).
        case local(String)
    }

    public var stage: Stage
    public var cause: Cause

    public init(stage: Stage, cause: Cause) {
        self.stage = stage
        self.cause = cause
    }

    /// A problem with a cause in words (`Cause.malformed`).
    public static func malformed(_ stage: Stage, _ why: String) -> IdPProblem {
        IdPProblem(stage: stage, cause: .malformed(why))
    }

    /// From the transport and the HTTP class alone.
    public var kind: Kind {
        switch cause {
        case .transport(let error):
            switch error {
            // A cap or a URL that is not https: a broken or misconfigured IdP, not an outage.
            case .tooLarge, .invalidURL: return .misconfigured
            case .resolve, .connect, .timeout, .tls, .other: return .unavailable
            }
        case .http(let status):
            return IdPClassifier.isOutage(status: status) ? .unavailable : .misconfigured
        case .notJSON, .oauthError, .entraCode, .invalidToken, .authorizationError, .malformed, .local:
            return .misconfigured
        }
    }

    /// Secret-free, for logs and `cloudlogin check`: no body, token or URL query is in it.
    public var description: String {
        switch cause {
        case .transport: return "\(stage.what): \(detail)"
        case .http, .notJSON: return "\(stage.what) \(detail)"
        default: return detail
        }
    }

    /// `description` without the stage as its subject, for a caller that names the stage
    /// itself ("discovery: cannot connect to the IdP (…)").
    public var detail: String {
        switch cause {
        case .transport(let error):
            return "\(error)"
        case .http(let status):
            guard kind == .misconfigured else { return "answered HTTP \(status)" }
            switch stage {
            case .token, .deviceToken, .mfaToken: return "answered HTTP \(status); check token_endpoint or issuer"
            case .deviceAuthorization: return "answered HTTP \(status); check device_authorization_endpoint or issuer"
            case .oktaAuthn, .oktaFactor, .oktaPassword, .oktaTransaction: return "answered HTTP \(status); check okta_domain"
            default: return "answered HTTP \(status); check the URL in the config"
            }
        case .notJSON(let status):
            return "answered HTTP \(status) with a page that is not JSON (a proxy in the way?)"
        case .oauthError(let code, _):
            switch code {
            case .invalidClient:
                return "the IdP refused the client credentials (invalid_client); check client_id, the client secret and client_auth"
            case .unauthorizedClient:
                guard !stage.isDeviceGrant else {
                    return "the client may not use the device grant (unauthorized_client); allow the Device Authorization grant for it at the IdP"
                }
                return "the client may not use the password grant (unauthorized_client); allow the Resource Owner Password grant for it at the IdP"
            case .unsupportedGrantType:
                guard !stage.isDeviceGrant else { return "the IdP does not support the device grant (unsupported_grant_type)" }
                return "the IdP does not support the password grant (unsupported_grant_type)"
            case .invalidScope:
                return "the IdP refused the scopes (invalid_scope); check scopes"
            case .invalidRequest:
                return "the IdP says the token request is invalid (invalid_request)"
            }
        case .entraCode(let code):
            return "the IdP refused the client (Entra error \(code)); check the app registration, client_id and secret"
        case .invalidToken(let error):
            return error.description
        case .authorizationError(let code):
            return "Okta refused the authorization request (\(ConfigParser.printable(code))); check that the app may use this authorization server"
        case .malformed(let why), .local(let why):
            return why
        }
    }
}
