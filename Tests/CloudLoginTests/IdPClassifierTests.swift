@testable import CloudLogin
import Testing

/// The one classifier of IdP answers, dialect by dialect. Each row: the status and body the IdP
/// sent, and the exact verdict (a refusal with its reason, MFA, or a typed problem).
@Suite struct IdPClassifierTests {
    static func token(_ cause: IdPProblem.Cause) -> IdentityVerdict { .problem(IdPProblem(stage: .token, cause: cause)) }
    static func okta(_ cause: IdPProblem.Cause) -> IdentityVerdict { .problem(IdPProblem(stage: .oktaAuthn, cause: cause)) }

    static func classify(_ status: Int, _ body: String, stage: IdPProblem.Stage = .token) -> IdentityVerdict {
        IdPClassifier.verdict(status: status, body: SecretBytes(body.utf8), stage: stage)
    }

    /// RFC 6749 §5.2 as LemonLDAP::NG and Keycloak speak it, and answers without a usable body.
    @Test(arguments: [
        (400, #"{"error":"invalid_grant"}"#, IdentityVerdict.rejected(.badCredentials)),
        (401, #"{"error":"invalid_client"}"#, token(.oauthError(.invalidClient, status: 401))),
        (400, #"{"error":"invalid_client"}"#, token(.oauthError(.invalidClient, status: 400))),
        (400, #"{"error":"unauthorized_client","error_description":"Client not allowed for direct access grants"}"#, token(.oauthError(.unauthorizedClient, status: 400))),
        (400, #"{"error":"unsupported_grant_type"}"#, token(.oauthError(.unsupportedGrantType, status: 400))),
        (400, #"{"error":"invalid_scope"}"#, token(.oauthError(.invalidScope, status: 400))),
        (400, #"{"error":"invalid_request"}"#, token(.oauthError(.invalidRequest, status: 400))),
        // An error code nobody documented: a refusal of this attempt, never the offline rule.
        (400, #"{"error":"something_new"}"#, .rejected(.unrecognizedRefusal)),
        (401, #"{"error":"temporarily_unavailable"}"#, .rejected(.unrecognizedRefusal)),
        (403, #"{"error":"invalid_user_password"}"#, .rejected(.unrecognizedRefusal)),
        (409, #"{"error":"conflict"}"#, .rejected(.unrecognizedRefusal)),
        // Keycloak: the description is not read ("Account disabled" is a plain invalid_grant).
        (401, #"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#, .rejected(.badCredentials)),
        (400, #"{"error":"invalid_grant","error_description":"Account disabled"}"#, .rejected(.badCredentials)),
        // Bare refusals and pages that are not the IdP's.
        (400, "", .rejected(.badCredentials)),
        (401, "", .rejected(.badCredentials)),
        (403, "", .rejected(.badCredentials)),
        (401, "{}", .rejected(.badCredentials)),
        (403, "<html>Forbidden</html>", token(.notJSON(status: 403))),
        (400, "<html>Bad Request</html>", token(.notJSON(status: 400))),
        (401, "Unauthorized", token(.notJSON(status: 401))),
        (404, "", token(.http(status: 404))),
        (404, #"{"error":"not_found"}"#, token(.http(status: 404))),
        (405, "", token(.http(status: 405))),
        (302, "", token(.http(status: 302))),
        (302, #"{"error":"something_new"}"#, token(.http(status: 302))),
        // The HTTP class: unavailable whatever the body says.
        (500, #"{"error":"invalid_grant"}"#, token(.http(status: 500))),
        (502, "<html>Bad gateway</html>", token(.http(status: 502))),
        (503, "", token(.http(status: 503))),
        (408, "", token(.http(status: 408))),
        (429, #"{"error":"slow_down"}"#, token(.http(status: 429))),
        (429, #"{"errorCode":"E0000047"}"#, token(.http(status: 429))),
    ] as [(Int, String, IdentityVerdict)])
    func oauth(_ status: Int, _ body: String, _ expected: IdentityVerdict) {
        #expect(Self.classify(status, body) == expected, "\(status) \(body)")
    }

    /// Auth0 (https://auth0.com/docs/api/authentication#resource-owner-password).
    @Test(arguments: [
        (403, #"{"error":"invalid_grant","error_description":"Wrong email or password."}"#, IdentityVerdict.rejected(.badCredentials)),
        (403, #"{"error":"mfa_required","error_description":"Multifactor authentication required","mfa_token":"Fe26..."}"#, .mfaRequired(passwordVerified: true)),
        // Blocked in the dashboard.
        (403, #"{"error":"unauthorized","error_description":"user is blocked"}"#, .rejected(.blocked)),
        // Denied by an Action or rule.
        (403, #"{"error":"access_denied","error_description":"Unauthorized"}"#, .rejected(.blocked)),
        // Brute-force protection: a block, not a rate limit, though it comes as 429.
        (429, #"{"error":"too_many_attempts","error_description":"Your account has been blocked after multiple consecutive login attempts."}"#, .rejected(.blocked)),
        (401, #"{"error":"invalid_client","error_description":"Client authentication failed"}"#, token(.oauthError(.invalidClient, status: 401))),
        (403, #"{"error":"unauthorized_client","error_description":"Grant type 'password' not allowed for the client."}"#, token(.oauthError(.unauthorizedClient, status: 403))),
        // A 429 without the brute-force code is Auth0's rate limit: unavailable.
        (429, #"{"error":"too_many_requests"}"#, token(.http(status: 429))),
        (429, "", token(.http(status: 429))),
    ] as [(Int, String, IdentityVerdict)])
    func auth0(_ status: Int, _ body: String, _ expected: IdentityVerdict) {
        #expect(Self.classify(status, body) == expected, "\(status) \(body)")
    }

    /// Microsoft Entra ID: error_codes decide, whatever `error` and the description say
    /// (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
    @Test(arguments: [
        (400, #"{"error":"invalid_grant","error_description":"AADSTS50126: ...","error_codes":[50126]}"#, IdentityVerdict.rejected(.badCredentials)),
        (400, #"{"error":"invalid_grant","error_codes":[50034]}"#, .rejected(.unknownUser)),
        (400, #"{"error":"invalid_grant","error_codes":[50057]}"#, .rejected(.disabled)),
        (400, #"{"error":"invalid_grant","error_codes":[50053]}"#, .rejected(.blocked)),
        (400, #"{"error":"interaction_required","error_description":"AADSTS53003: Access has been blocked by Conditional Access policies.","error_codes":[53003]}"#, .rejected(.accessPolicy)),
        (400, #"{"error":"invalid_grant","error_codes":[53003]}"#, .rejected(.accessPolicy)),
        (400, #"{"error":"invalid_grant","error_codes":[50055]}"#, .rejected(.passwordExpired)),
        (400, #"{"error":"invalid_grant","error_codes":[50144]}"#, .rejected(.passwordExpired)),
        (400, #"{"error":"invalid_grant","error_codes":[50076]}"#, .mfaRequired(passwordVerified: true)),
        (400, #"{"error":"interaction_required","error_codes":[50079]}"#, .mfaRequired(passwordVerified: true)),
        (400, #"{"error":"invalid_grant","error_codes":[65001]}"#, token(.entraCode(65001))),
        (401, #"{"error":"invalid_client","error_codes":[7000218]}"#, token(.entraCode(7000218))),
        (400, #"{"error":"unauthorized_client","error_codes":[700016]}"#, token(.entraCode(700016))),
        (400, #"{"error":"invalid_request","error_codes":[90014]}"#, token(.oauthError(.invalidRequest, status: 400))),
        (400, #"{"error":"invalid_grant","error_codes":[99999]}"#, .rejected(.badCredentials)),
        (400, #"{"error":"interaction_required"}"#, .mfaRequired(passwordVerified: false)),
        // A documented block wins over the status; other codes do not.
        (503, #"{"error":"invalid_grant","error_codes":[50053]}"#, .rejected(.blocked)),
        (503, #"{"error":"invalid_grant","error_codes":[50126]}"#, token(.http(status: 503))),
    ] as [(Int, String, IdentityVerdict)])
    func entra(_ status: Int, _ body: String, _ expected: IdentityVerdict) {
        #expect(Self.classify(status, body) == expected, "\(status) \(body)")
    }

    /// Okta's OIDC token endpoint: the two exact sentences are its only signal.
    @Test(arguments: [
        (400, #"{"error":"invalid_grant","error_description":"The credentials provided were invalid."}"#, IdentityVerdict.rejected(.badCredentials)),
        (400, #"{"error":"invalid_grant","error_description":"Password has expired."}"#, .rejected(.passwordExpired)),
        (400, #"{"error":"invalid_grant","error_description":"Resource owner password credentials cannot be used with MFA enabled."}"#, .mfaRequired(passwordVerified: false)),
        (400, #"{"error":"invalid_grant","error_description":"password has expired."}"#, .rejected(.badCredentials)),
        (400, #"{"error":"password_auth_denied_mfa"}"#, .mfaRequired(passwordVerified: false)),
        (400, #"{"error":"unsupported_grant_type","error_description":"The authorization grant type is not supported by the authorization server. Configured grant types: [authorization_code]."}"#, token(.oauthError(.unsupportedGrantType, status: 400))),
        (401, #"{"error":"invalid_client","error_description":"The client secret supplied for a confidential client is invalid."}"#, token(.oauthError(.invalidClient, status: 401))),
    ] as [(Int, String, IdentityVerdict)])
    func oktaTokenEndpoint(_ status: Int, _ body: String, _ expected: IdentityVerdict) {
        #expect(Self.classify(status, body) == expected, "\(status) \(body)")
    }

    /// Okta's Authentication API (https://developer.okta.com/docs/reference/error-codes/), for
    /// the password (`okta-authn`) and for a step after it.
    @Test(arguments: [
        (401, #"{"errorCode":"E0000004","errorSummary":"Authentication failed"}"#, IdPProblem.Stage.oktaAuthn, IdentityVerdict.rejected(.badCredentials)),
        (401, "", .oktaAuthn, .rejected(.badCredentials)),
        (401, #"{"errorCode":"E0000011","errorSummary":"Invalid token provided"}"#, .oktaFactor, .rejected(.transactionExpired)),
        (429, #"{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}"#, .oktaAuthn, okta(.http(status: 429))),
        (500, #"{"errorCode":"E0000009","errorSummary":"Internal Server Error"}"#, .oktaAuthn, okta(.http(status: 500))),
        (404, #"{"errorCode":"E0000022","errorSummary":"The endpoint does not support the provided HTTP method"}"#, .oktaAuthn, okta(.http(status: 404))),
        (403, "<html>blocked by proxy</html>", .oktaAuthn, okta(.notJSON(status: 403))),
        // Unknown codes: before the password a refusal, after it a step CloudLogin cannot do.
        (400, #"{"errorCode":"E0000001","errorSummary":"Api validation failed"}"#, .oktaAuthn, .rejected(.unrecognizedRefusal)),
        (403, #"{"errorCode":"E0000006","errorSummary":"You do not have permission"}"#, .oktaAuthn, .rejected(.unrecognizedRefusal)),
        (403, #"{"errorCode":"E0000079","errorSummary":"This operation is not allowed in the current authentication state."}"#, .oktaFactor, .rejected(.unsupportedState)),
        (400, #"{"errorCode":"E0000001","errorSummary":"Api validation failed"}"#, .oktaPassword, .rejected(.unsupportedState)),
        (403, "", .oktaFactor, .rejected(.unsupportedState)),
    ] as [(Int, String, IdPProblem.Stage, IdentityVerdict)])
    func oktaAuthenticationAPI(_ status: Int, _ body: String, _ stage: IdPProblem.Stage, _ expected: IdentityVerdict) {
        #expect(Self.classify(status, body, stage: stage) == expected, "\(status) \(body) at \(stage)")
    }

    /// Unavailable comes from the transport and the HTTP class only.
    @Test(arguments: [
        (TransportError.resolve("no such host"), IdPProblem.Kind.unavailable),
        (.connect("refused"), .unavailable),
        (.timeout, .unavailable),
        (.tls("certificate verify failed"), .unavailable),
        (.other("recv failure"), .unavailable),
        (.tooLarge(limit: 1 << 20), .misconfigured),
        (.invalidURL("http://idp"), .misconfigured),
    ])
    func transport(_ error: TransportError, _ kind: IdPProblem.Kind) {
        let problem = IdPClassifier.problem(error, stage: .discovery)
        #expect(problem.kind == kind)
        #expect(problem.cause == .transport(error))
    }

    @Test(arguments: [(408, IdPProblem.Kind.unavailable), (429, .unavailable), (500, .unavailable), (503, .unavailable), (599, .unavailable),
                      (400, .misconfigured), (401, .misconfigured), (403, .misconfigured), (404, .misconfigured), (302, .misconfigured), (200, .misconfigured)])
    func metadataStatus(_ status: Int, _ kind: IdPProblem.Kind) {
        for stage in [IdPProblem.Stage.discovery, .keys, .userinfo, .groupsExchange] {
            #expect(IdPClassifier.problem(status: status, stage: stage).kind == kind)
        }
    }

    /// Every cause other than a transport failure or an outage status is a misconfiguration.
    @Test(arguments: [
        IdPProblem.Cause.notJSON(status: 403), .oauthError(.invalidScope, status: 400), .entraCode(65001),
        .invalidToken(.expired), .authorizationError("login_required"), .malformed("no issuer"), .local("no client_id"),
    ])
    func onlyTheTransportAndTheHTTPClassMeanUnavailable(_ cause: IdPProblem.Cause) {
        #expect(IdPProblem(stage: .token, cause: cause).kind == .misconfigured)
    }

    @Test(arguments: [
        (RejectionReason.disabled, true), (.unknownUser, true), (.blocked, true), (.accessPolicy, true), (.lockedOut, true),
        (.badCredentials, false), (.unrecognizedRefusal, false), (.mfaRequired, false), (.passwordExpired, false),
        (.emptyPassword, false), (.invalidName, false), (.mfaEnrollmentRequired, false), (.mfaFailed, false),
        (.mfaTimedOut, false), (.recoveryInProgress, false), (.transactionExpired, false), (.abandoned, false),
        (.unsupportedState, false), (.passwordChangeFailed, false), (.stateUnreadable, false),
    ])
    func whichRefusalsRevokeOfflineSignIn(_ reason: RejectionReason, _ revokes: Bool) {
        #expect(reason.revokesOfflineSignIn == revokes)
    }

    /// Only codes are read; the description (which may quote anything) reaches no log.
    @Test func descriptionsAndSummariesCarryNoBodyText() {
        let body = #"{"error":"invalid_client","error_description":"secret s3cr3t for alice","errorSummary":"s3cr3t"}"#
        let answer = IdPErrorAnswer(status: 401, body: SecretBytes(body.utf8))
        #expect(answer.summary == "HTTP 401 error=invalid_client")
        guard case .problem(let problem) = IdPClassifier.verdict(for: answer, stage: .token) else { Issue.record("not a problem"); return }
        #expect(!problem.description.contains("s3cr3t"))
        #expect(answer.oktaSentence == nil)
    }

    @Test func descriptionNamesTheStage() {
        #expect(IdPClassifier.problem(.connect("refused"), stage: .discovery).description == "discovery: cannot connect to the IdP (refused)")
        #expect(IdPClassifier.problem(status: 503, stage: .keys).description == "the JWKS answered HTTP 503")
        #expect(IdPClassifier.problem(status: 404, stage: .userinfo).description == "userinfo answered HTTP 404; check the URL in the config")
        #expect(IdPClassifier.problem(status: 404, stage: .token).detail == "answered HTTP 404; check token_endpoint or issuer")
    }
}
