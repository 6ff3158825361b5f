@testable import CloudLogin
import Testing

@Suite struct TokenEndpointErrorTests {
    enum Class: String { case rejected, unavailable, misconfigured, mfaVerified, mfaUnverified, expired, disabled, unknownUser, policy }

    static func classOf(_ verdict: IdentityVerdict) -> Class? {
        switch verdict {
        case .rejected(.passwordExpired): return .expired
        case .rejected(.disabled): return .disabled
        case .rejected(.unknownUser): return .unknownUser
        case .rejected(.accessPolicy): return .policy
        case .rejected: return .rejected
        case .mfaRequired(true): return .mfaVerified
        case .mfaRequired(false): return .mfaUnverified
        case .problem(.unavailable): return .unavailable
        case .problem(.misconfigured): return .misconfigured
        case .accepted: return nil
        }
    }

    /// Every error shape in FACTS.md.
    @Test(arguments: [
        // RFC 6749 §5.2 and LemonLDAP::NG
        (400, #"{"error":"invalid_grant"}"#, Class.rejected),
        (401, #"{"error":"invalid_client"}"#, .misconfigured),
        (400, #"{"error":"invalid_client"}"#, .misconfigured),
        (400, #"{"error":"invalid_scope"}"#, .misconfigured),
        (400, #"{"error":"invalid_request"}"#, .misconfigured),
        (400, #"{"error":"unauthorized_client","error_description":"Client not allowed for direct access grants"}"#, .misconfigured),
        (400, #"{"error":"unsupported_grant_type"}"#, .misconfigured),
        (400, #"{"error":"something_new"}"#, .misconfigured),
        // Empty bodies, 401/403 instead of 400
        (400, "", .rejected),
        (401, "", .rejected),
        (403, "", .rejected),
        (403, "<html>Forbidden</html>", .misconfigured), // a proxy's page is not the IdP's no
        (401, "{}", .rejected),
        (400, "<html>Bad Request</html>", .misconfigured),
        (401, "Unauthorized", .misconfigured),
        (404, "", .misconfigured),
        (405, "", .misconfigured),
        (302, "", .misconfigured),
        // Transport-class answers
        (500, #"{"error":"invalid_grant"}"#, .unavailable),
        (502, "<html>Bad gateway</html>", .unavailable),
        (503, "", .unavailable),
        (429, #"{"error":"slow_down"}"#, .unavailable),
        // Keycloak
        (401, #"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#, .rejected),
        (400, #"{"error":"invalid_grant","error_description":"Account disabled"}"#, .rejected),
        // Auth0
        (403, #"{"error":"invalid_grant","error_description":"Wrong email or password."}"#, .rejected),
        (403, #"{"error":"mfa_required","error_description":"Multifactor authentication required","mfa_token":"Fe26..."}"#, .mfaVerified),
        // Okta OIDC
        (400, #"{"error":"invalid_grant","error_description":"The credentials provided were invalid."}"#, .rejected),
        (400, #"{"error":"invalid_grant","error_description":"Password has expired."}"#, .expired),
        (400, #"{"error":"invalid_grant","error_description":"Resource owner password credentials cannot be used with MFA enabled."}"#, .mfaUnverified),
        (400, #"{"error":"password_auth_denied_mfa"}"#, .mfaUnverified),
        // Entra ID: error_codes decide, whatever the description says
        (400, #"{"error":"invalid_grant","error_description":"AADSTS50126: ...","error_codes":[50126]}"#, .rejected),
        (400, #"{"error":"invalid_grant","error_codes":[50034]}"#, .unknownUser),
        (400, #"{"error":"invalid_grant","error_codes":[50057]}"#, .disabled),
        (400, #"{"error":"invalid_grant","error_codes":[50055]}"#, .expired),
        (400, #"{"error":"invalid_grant","error_codes":[50076]}"#, .mfaVerified),
        (400, #"{"error":"interaction_required","error_codes":[50079]}"#, .mfaVerified),
        (400, #"{"error":"invalid_grant","error_codes":[53003]}"#, .policy),
        (400, #"{"error":"invalid_grant","error_codes":[65001]}"#, .misconfigured),
        (401, #"{"error":"invalid_client","error_codes":[7000218]}"#, .misconfigured),
        (400, #"{"error":"interaction_required"}"#, .mfaUnverified),
    ] as [(Int, String, Class)])
    func errorShape(_ status: Int, _ body: String, _ expected: Class) {
        let verdict = TokenEndpointError.classify(status: status, body: SecretBytes(body.utf8))
        #expect(Self.classOf(verdict) == expected, "\(status) \(body) → \(verdict)")
    }
}
