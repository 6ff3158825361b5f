/// What CloudLogin needs to know about an OpenID provider, from discovery
/// (`issuer/.well-known/openid-configuration`) or from config overrides.
public struct ProviderMetadata: Equatable, Sendable {
    public var issuer: String
    public var tokenEndpoint: String
    public var authorizationEndpoint: String?
    public var jwksURI: String?
    public var userinfoEndpoint: String?
    /// The device authorization endpoint (RFC 8628 §4), when the IdP offers the device grant.
    public var deviceAuthorizationEndpoint: String?
    /// `grant_types_supported`, when the IdP lists it (not all do).
    public var grantTypesSupported: [String]?

    /// Reads a discovery document, checking that it is for `expectedIssuer` (OIDC Discovery
    /// §4.3) and that every endpoint is https.
    public init(discovery document: JSONValue, expectedIssuer: String) throws(IdPProblem) {
        guard let issuer = document["issuer"]?.stringValue else {
            throw .malformed(.discovery, "the discovery document has no issuer; check that issuer points at the OpenID provider")
        }
        guard issuer == expectedIssuer else {
            throw .malformed(.discovery, "the discovery document is for issuer '\(ConfigParser.printable(issuer))', not the configured '\(expectedIssuer)'; set issuer to the exact value")
        }
        guard let token = document["token_endpoint"]?.stringValue, HTTPSURL.isValid(token) else {
            throw .malformed(.discovery, "the discovery document has no https token_endpoint")
        }
        func optionalEndpoint(_ name: String) throws(IdPProblem) -> String? {
            guard let value = document[name] else { return nil }
            guard let url = value.stringValue, HTTPSURL.isValid(url) else {
                throw .malformed(.discovery, "the discovery document's \(name) is not an https URL")
            }
            return url
        }
        self.issuer = issuer
        self.tokenEndpoint = token
        self.jwksURI = try optionalEndpoint("jwks_uri")
        self.authorizationEndpoint = try optionalEndpoint("authorization_endpoint")
        self.userinfoEndpoint = try optionalEndpoint("userinfo_endpoint")
        self.deviceAuthorizationEndpoint = try optionalEndpoint("device_authorization_endpoint")
        self.grantTypesSupported = document["grant_types_supported"]?.stringArray
    }
}
