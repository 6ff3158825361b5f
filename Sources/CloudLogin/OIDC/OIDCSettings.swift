/// What the OpenID code needs to know of one provider and of CloudLogin's client at it: the
/// issuer, the client id, what an ID token must satisfy, and the endpoints an admin set by hand
/// (the others come from discovery).
///
/// The OIDC password grant reads it from `[idp]` (`init(passwordGrant:)`); the Okta groups
/// exchange builds its own for the Okta authorization server and the Native app
/// (`OktaGroupsExchange.settings(for:)`). `ProviderDirectory` takes nothing else.
public struct OIDCSettings: Equatable, Sendable {
    /// The issuer: discovery is read from `issuer/.well-known/openid-configuration`, and every
    /// ID token must name it (`iss`).
    public var issuer: String
    /// The client ID tokens must be issued to (`aud`, `azp`).
    public var clientID: String
    /// The signature algorithms an ID token may use (`id_token_algs`).
    public var idTokenAlgorithms: [JWSAlgorithm]
    /// Seconds of clock difference tolerated on `exp`, `iat` and `nbf` (`clock_skew`).
    public var clockSkew: Int
    /// The token endpoint, when set by hand (`token_endpoint`); else discovery's.
    public var tokenEndpoint: String?
    /// The key set's URL, when set by hand (`jwks_uri`); else discovery's.
    public var jwksURI: String?
    /// The userinfo endpoint, when set by hand (`userinfo_endpoint`); else discovery's.
    public var userinfoEndpoint: String?
    /// The device authorization endpoint, when set by hand (`device_authorization_endpoint`);
    /// else discovery's.
    public var deviceAuthorizationEndpoint: String?

    public init(issuer: String, clientID: String, idTokenAlgorithms: [JWSAlgorithm], clockSkew: Int,
                tokenEndpoint: String? = nil, jwksURI: String? = nil, userinfoEndpoint: String? = nil,
                deviceAuthorizationEndpoint: String? = nil) {
        self.issuer = issuer
        self.clientID = clientID
        self.idTokenAlgorithms = idTokenAlgorithms
        self.clockSkew = clockSkew
        self.tokenEndpoint = tokenEndpoint
        self.jwksURI = jwksURI
        self.userinfoEndpoint = userinfoEndpoint
        self.deviceAuthorizationEndpoint = deviceAuthorizationEndpoint
    }

    /// The settings of the OIDC password grant: `[idp]`'s issuer, client id and endpoints.
    public init(passwordGrant config: Config) {
        self.init(issuer: config.issuer ?? "", clientID: config.clientID,
                  idTokenAlgorithms: config.idTokenAlgorithms, clockSkew: config.clockSkew,
                  tokenEndpoint: config.tokenEndpoint, jwksURI: config.jwksURI, userinfoEndpoint: config.userinfoEndpoint,
                  deviceAuthorizationEndpoint: config.deviceAuthorizationEndpoint)
    }

    /// The checks every ID token for this client must pass (OIDC Core §3.1.3.7).
    public var idTokenVerifier: IDTokenVerifier {
        IDTokenVerifier(issuer: issuer, clientID: clientID, allowedAlgorithms: idTokenAlgorithms, clockSkew: clockSkew)
    }
}
