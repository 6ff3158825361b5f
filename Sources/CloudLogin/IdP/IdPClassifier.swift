/// What CloudLogin reads from an IdP's error answer (a non-200 to a password or an MFA step):
/// the status, whether the body is empty, JSON or something else, and the documented
/// machine-readable codes of each dialect. Nothing else of the body is kept: `error_description`
/// only as "is it one of the two exact Okta sentences", Okta's `errorSummary` not at all.
public struct IdPErrorAnswer: Equatable, Sendable {
    public enum Body: Equatable, Sendable { case empty, json, notJSON }

    /// The two exact Okta sentences, Okta's only signal for these cases on its OIDC token
    /// endpoint (`error` is a plain `invalid_grant` for both).
    public enum OktaSentence: String, Equatable, Sendable {
        case passwordExpired = "Password has expired."
        case mfaEnabled = "Resource owner password credentials cannot be used with MFA enabled."
    }

    public var status: Int
    public var body: Body
    /// OAuth 2.0 `error` (RFC 6749 §5.2; also Auth0's and Entra's `error`).
    public var error: String?
    /// Microsoft Entra ID `error_codes` (the AADSTS numbers).
    public var errorCodes: [Int]
    /// Okta Authentication API `errorCode` (E0000004, …).
    public var oktaErrorCode: OktaError.Code?
    public var oktaSentence: OktaSentence?

    /// Reads an answer whose body was parsed already (`document` nil: not JSON).
    public init(status: Int, document: JSONValue?, bodyIsEmpty: Bool) {
        self.status = status
        body = bodyIsEmpty ? .empty : document == nil ? .notJSON : .json
        error = document?["error"]?.stringValue
        errorCodes = document?["error_codes"]?.arrayValue?.compactMap { $0.integerValue.flatMap { Int(exactly: $0) } } ?? []
        oktaErrorCode = document?["errorCode"]?.stringValue.map(OktaError.Code.init)
        oktaSentence = error == "invalid_grant" ? document?["error_description"]?.stringValue.flatMap(OktaSentence.init) : nil
    }

    public init(status: Int, body: SecretBytes) {
        self.init(status: status, document: JSONValue.parse(body), bodyIsEmpty: body.isEmpty)
    }

    /// For logs: the status and the codes, never the body.
    public var summary: String {
        var parts = ["HTTP \(status)"]
        if let error { parts.append("error=\(ConfigParser.printable(error))") }
        if !errorCodes.isEmpty { parts.append("error_codes=\(errorCodes.map(String.init).joined(separator: ","))") }
        if let oktaErrorCode { parts.append("errorCode=\(ConfigParser.printable(oktaErrorCode.name))") }
        return parts.joined(separator: " ")
    }
}

/// The one place that decides what an IdP's answer means — outage, misconfiguration or a
/// refusal of this attempt — for every dialect: RFC 6749 §5.2, Microsoft Entra ID, Auth0, Okta's
/// OIDC token endpoint and Okta's Authentication API. The OIDC password grant, the Okta flow,
/// the groups exchange, the metadata requests and `cloudlogin check` all ask it.
///
/// The rules:
/// - A documented blocked or disabled answer is a refusal that revokes offline sign-in, whatever
///   the status (Auth0 answers a brute-force block with 429).
/// - Otherwise "unavailable" comes from the transport and the HTTP class alone: no answer
///   (connect, DNS, TLS, timeout), 408, 429, 5xx.
/// - "Misconfigured" is only a client-side OAuth code (`IdPProblem.OAuthClientError`), Entra's
///   client and app-registration codes, a 404 or another status that is no answer to a
///   password, and a 4xx page that is not JSON (a proxy's).
/// - Any other 4xx is a refusal of this attempt (`RejectionReason`), never offline sign-in.
public enum IdPClassifier {
    /// 408 Request Timeout, 429 Too Many Requests and 5xx: the IdP cannot answer now.
    public static func isOutage(status: Int) -> Bool {
        status == 408 || status == 429 || (500...599).contains(status)
    }

    /// No HTTP answer.
    public static func problem(_ error: TransportError, stage: IdPProblem.Stage) -> IdPProblem {
        IdPProblem(stage: stage, cause: .transport(error))
    }

    /// A non-200 to a request that is not about a user (discovery, JWKS, userinfo, the groups
    /// exchange): unavailable or misconfigured by the HTTP class; the body is not read.
    public static func problem(status: Int, stage: IdPProblem.Stage) -> IdPProblem {
        IdPProblem(stage: stage, cause: .http(status: status))
    }

    /// A non-200 answer to the password (token endpoint, Okta's `/api/v1/authn`) or to a later
    /// step of an Okta transaction.
    public static func verdict(status: Int, body: SecretBytes, stage: IdPProblem.Stage) -> IdentityVerdict {
        verdict(for: IdPErrorAnswer(status: status, body: body), stage: stage)
    }

    public static func verdict(for answer: IdPErrorAnswer, stage: IdPProblem.Stage) -> IdentityVerdict {
        let status = answer.status
        if let blocked = blockedOrDisabled(answer) { return .rejected(blocked) }
        if isOutage(status: status) { return .problem(problem(status: status, stage: stage)) }
        // Not the endpoint (a wrong token_endpoint, issuer or okta_domain), whatever the body.
        if status == 404 { return .problem(problem(status: status, stage: stage)) }

        // Microsoft Entra ID: error_codes are the reliable signal, never the description
        // (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
        for code in answer.errorCodes {
            switch code {
            case 50126: return .rejected(.badCredentials)          // InvalidUserNameOrPassword
            case 50034: return .rejected(.unknownUser)             // UserAccountNotFound
            case 50055, 50144: return .rejected(.passwordExpired)  // InvalidPasswordExpiredPassword, …OnPremPassword
            case 50076, 50079: return .mfaRequired(passwordVerified: true)
            case 65001, 7000218, 7000215, 700016, 700027, 7000112, 50128, 50059:
                return .problem(IdPProblem(stage: stage, cause: .entraCode(code)))
            default: continue
            }
        }

        // Okta's Authentication API (https://developer.okta.com/docs/reference/error-codes/).
        switch answer.oktaErrorCode {
        case .authenticationFailed?: return .rejected(.badCredentials)   // E0000004
        case .invalidToken?: return .rejected(.transactionExpired)       // E0000011: the stateToken expired
        case .apiValidationFailed?, .credentialsUpdateFailed?, .invalidPasscode?, .passwordPolicyNotMet?, .other?, nil: break
        }

        switch answer.error {
        case "invalid_grant"?:
            switch answer.oktaSentence {
            case .passwordExpired?: return .rejected(.passwordExpired)
            case .mfaEnabled?: return .mfaRequired(passwordVerified: false)
            case nil: return .rejected(.badCredentials)
            }
        case "mfa_required"?:
            // Auth0 sends this (with an mfa_token) only after the password was right
            // (https://auth0.com/docs/secure/multi-factor-authentication/authenticate-using-ropg-flow-with-mfa).
            return .mfaRequired(passwordVerified: true)
        case "password_auth_denied_mfa"?, "interaction_required"?:
            return .mfaRequired(passwordVerified: false)
        case let code?:
            if let client = IdPProblem.OAuthClientError(rawValue: code) {
                return .problem(IdPProblem(stage: stage, cause: .oauthError(client, status: status)))
            }
        case nil:
            break
        }

        guard (400...499).contains(status) else {
            // 3xx, 201, 204, …: no answer to a password at all.
            return .problem(problem(status: status, stage: stage))
        }
        switch answer.body {
        case .notJSON:
            // A page that is not JSON (a proxy's or firewall's) is not the IdP's word on the password.
            return .problem(IdPProblem(stage: stage, cause: .notJSON(status: status)))
        case .json where answer.error != nil || answer.oktaErrorCode != nil:
            // An error code CloudLogin does not know: this attempt was refused.
            return .rejected(unrecognized(stage))
        case .empty, .json:
            // Some IdPs refuse bad credentials with a bare 400/401/403 and no body.
            guard [400, 401, 403].contains(status) else { return .problem(problem(status: status, stage: stage)) }
            return .rejected(stage.afterPassword ? .unsupportedState : .badCredentials)
        }
    }

    /// The documented answers that say the account is blocked or disabled. They are read before
    /// the status, because a brute-force block is not an outage even when it comes as a 429.
    static func blockedOrDisabled(_ answer: IdPErrorAnswer) -> RejectionReason? {
        for code in answer.errorCodes {
            switch code {
            // AADSTS50057 UserDisabled.
            case 50057: return .disabled
            // AADSTS50053 IdsLocked: Smart Lockout after too many wrong passwords, or sign-ins
            // from an IP with malicious activity blocked.
            case 50053: return .blocked
            // AADSTS53003 BlockedByConditionalAccess (sent with error=interaction_required).
            case 53003: return .accessPolicy
            default: continue
            }
        }
        switch answer.error {
        // Auth0, POST /oauth/token (https://auth0.com/docs/api/authentication#resource-owner-password):
        // 429 too_many_attempts "Your account has been blocked after multiple consecutive login
        // attempts" (brute-force protection); 403 access_denied (denied by an Action or rule);
        // 403 unauthorized "user is blocked" (blocked in the dashboard, auth0/docs#4767).
        case "too_many_attempts"?, "access_denied"?, "unauthorized"?: return .blocked
        default: return nil
        }
    }

    /// An answer CloudLogin does not know: before the password was accepted a plain refusal;
    /// within an Okta transaction (after it), a step CloudLogin cannot do.
    static func unrecognized(_ stage: IdPProblem.Stage) -> RejectionReason {
        stage.afterPassword ? .unsupportedState : .unrecognizedRefusal
    }
}

extension IdPProblem.Stage {
    /// Okta's steps after `/api/v1/authn` accepted the password.
    var afterPassword: Bool {
        switch self {
        case .oktaFactor, .oktaPassword, .oktaTransaction, .mfaChallenge, .mfaToken: return true
        case .discovery, .keys, .token, .userinfo, .oktaAuthn, .groupsExchange, .deviceAuthorization, .deviceToken: return false
        }
    }
}
