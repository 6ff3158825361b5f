/// What the flow warms while the person types (`HTTPTransport.warmUp`): a connection to the
/// origin of the sign-in's first request after the password, opened by one cheap GET that a
/// browser or any OIDC client may make at any time — the IdP's public discovery document
/// (docs/design.md, "Performance targets"; BENCHMARKS.md says what the IdP sees).
///
/// - OIDC password grant (and Okta direct authentication): the token endpoint, when it is known
///   without the network (set by hand, or cached) and on the discovery document's origin;
///   on a cold cache, the discovery document itself, which the sign-in fetches first anyway
///   (the warm-up's answer then serves that fetch). A token endpoint on another origin than
///   discovery (rare: none of the IdPs CloudLogin documents) is not warmed.
/// - Okta's Authentication API: the Okta domain, with the discovery document of its Okta
///   authorization server (which the groups exchange reads) or, without one, the org's.
/// - Device authorization only (`password_grant = no`): no prompt comes before the first
///   request, so nothing is warmed; its requests share one connection all the same.
public enum WarmUpTarget {
    /// The GET that warms the connection for `config`'s first request after the password.
    public static func request(config: Config, directory: ProviderDirectory) -> HTTPRequest? {
        switch config.provider {
        case .okta where !config.isOktaDirect:
            guard let domain = config.oktaDomain, let domainOrigin = origin(of: domain) else { return nil }
            if let issuer = config.oktaIssuer, origin(of: issuer) == domainOrigin {
                return HTTPRequest(method: .get, url: discoveryURL(of: issuer))
            }
            return HTTPRequest(method: .get, url: "\(domainOrigin)/.well-known/openid-configuration")
        case .oidc, .okta:
            guard config.usesPasswordGrant else { return nil }
            let discovery = directory.discoveryURL
            guard let tokenEndpoint = directory.knownTokenEndpoint() else {
                return HTTPRequest(method: .get, url: discovery)
            }
            guard let tokenOrigin = origin(of: tokenEndpoint), tokenOrigin == origin(of: discovery) else { return nil }
            return HTTPRequest(method: .get, url: discovery)
        }
    }

    static func discoveryURL(of issuer: String) -> String {
        issuer.hasSuffix("/") ? "\(issuer).well-known/openid-configuration" : "\(issuer)/.well-known/openid-configuration"
    }

    /// "https://host[:port]" of an https URL, host lower-cased and the default port left out;
    /// nil for anything else.
    static func origin(of url: String) -> String? {
        guard HTTPSURL.isValid(url) else { return nil }
        let authority = url.dropFirst("https://".count).prefix { $0 != "/" && $0 != "?" }.lowercased()
        return "https://" + (authority.hasSuffix(":443") ? String(authority.dropLast(4)) : authority)
    }
}
