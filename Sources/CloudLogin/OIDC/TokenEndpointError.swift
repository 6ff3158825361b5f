/// Reads a non-200 answer of the token endpoint (RFC 6749 §5.2 and the IdP dialects in
/// FACTS.md). "Unavailable" comes from the HTTP class alone; the error code decides between a
/// definite rejection and a misconfiguration. `error_description` is not read, except the
/// exact Okta sentences below, which are Okta's only signal for these two cases.
public enum TokenEndpointError {
    static let oktaPasswordExpired = "Password has expired."
    static let oktaMFAEnabled = "Resource owner password credentials cannot be used with MFA enabled."

    public static func classify(status: Int, body: SecretBytes) -> IdentityVerdict {
        switch status {
        case 408, 429, 500...599:
            return .problem(.unavailable("the token endpoint answered HTTP \(status)"))
        default:
            break
        }
        let document = JSONValue.parse(body)
        let error = document?["error"]?.stringValue
        let codes: [Int] = document?["error_codes"]?.arrayValue?.compactMap { $0.integerValue.flatMap { Int(exactly: $0) } } ?? []

        // Microsoft Entra ID: error_codes are the reliable signal (never the description).
        for code in codes {
            switch code {
            case 50126: return .rejected(.badCredentials)
            case 50034: return .rejected(.unknownUser)
            case 50057: return .rejected(.disabled)
            case 50053: return .rejected(.badCredentials) // locked after too many attempts
            case 50055, 50144: return .rejected(.passwordExpired)
            case 50076, 50079: return .mfaRequired(passwordVerified: true)
            case 53003: return .rejected(.accessPolicy)
            case 65001, 7000218, 7000215, 700016, 700027, 7000112, 50128, 50059:
                return .problem(.misconfigured("the IdP refused the client (Entra error \(code)); check the app registration, client_id and secret"))
            default: continue
            }
        }

        switch error {
        case "invalid_grant"?:
            switch document?["error_description"]?.stringValue {
            case oktaPasswordExpired?: return .rejected(.passwordExpired)
            case oktaMFAEnabled?: return .mfaRequired(passwordVerified: false)
            default: return .rejected(.badCredentials)
            }
        case "mfa_required"?:
            // Auth0 sends this (with an mfa_token) only after the password was right.
            return .mfaRequired(passwordVerified: true)
        case "password_auth_denied_mfa"?, "interaction_required"?:
            return .mfaRequired(passwordVerified: false)
        case "invalid_client"?:
            return .problem(.misconfigured("the IdP refused the client credentials (invalid_client); check client_id, the client secret and client_auth"))
        case "unauthorized_client"?:
            return .problem(.misconfigured("the client may not use the password grant (unauthorized_client); allow the Resource Owner Password grant for it at the IdP"))
        case "unsupported_grant_type"?:
            return .problem(.misconfigured("the IdP does not support the password grant (unsupported_grant_type)"))
        case "invalid_scope"?:
            return .problem(.misconfigured("the IdP refused the scopes (invalid_scope); check scopes"))
        case "invalid_request"?:
            return .problem(.misconfigured("the IdP says the token request is invalid (invalid_request)"))
        case let other?:
            return .problem(.misconfigured("the token endpoint answered HTTP \(status) with error '\(ConfigParser.printable(other))'"))
        case nil:
            // Some IdPs refuse bad credentials with a bare 400/401/403 and no body. A page that
            // is not JSON (a proxy's or firewall's) is not the IdP's word on the password.
            switch status {
            case 400, 401, 403:
                guard body.isEmpty || document != nil else {
                    return .problem(.misconfigured("the token endpoint answered HTTP \(status) with a page that is not JSON (a proxy in the way?)"))
                }
                return .rejected(.badCredentials)
            default: return .problem(.misconfigured("the token endpoint answered HTTP \(status); check token_endpoint or issuer"))
            }
        }
    }
}
