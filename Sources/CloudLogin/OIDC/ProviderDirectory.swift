/// Finds the provider's metadata and keys: from the settings' endpoints, from the cache while
/// fresh, or from the network. Discovery is fetched at most once per sign-in; the JWKS once more
/// after an ID token names a key the cached set lacks (key rotation).
public final class ProviderDirectory {
    /// How long a cached discovery document or JWKS is used before it is fetched again.
    public static let freshSeconds: Int64 = 24 * 3600
    /// How long an expired copy still serves when the IdP cannot be reached.
    public static let staleSeconds: Int64 = 30 * 24 * 3600

    /// The provider and the client: issuer, client id, ID-token rules, endpoints set by hand.
    public let settings: OIDCSettings
    private let transport: HTTPTransport
    let cache: MetadataCache?
    private let clock: Clock
    private let log: EventLog
    private var metadata: ProviderMetadata?
    /// Requests this directory made (for `cloudlogin login --trace` and tests).
    public private(set) var fetches: [String] = []

    public init(settings: OIDCSettings, transport: HTTPTransport, cache: MetadataCache?, clock: Clock, log: EventLog) {
        self.settings = settings
        self.transport = transport
        self.cache = cache
        self.clock = clock
        self.log = log
    }

    private var issuer: String { settings.issuer }

    /// The token endpoint: the one set by hand, else discovery's.
    public func tokenEndpoint(deadline: Deadline) -> Result<String, IdPProblem> {
        if let override = settings.tokenEndpoint { return .success(override) }
        return discovery(deadline: deadline).map(\.tokenEndpoint)
    }

    public func userinfoEndpoint(deadline: Deadline) -> Result<String, IdPProblem> {
        if let override = settings.userinfoEndpoint { return .success(override) }
        return discovery(deadline: deadline).flatMap { metadata in
            guard let url = metadata.userinfoEndpoint else {
                return .failure(.malformed(.userinfo, "the IdP returned no id_token and lists no userinfo_endpoint; add openid to scopes or set userinfo_endpoint"))
            }
            return .success(url)
        }
    }

    /// The device authorization endpoint (RFC 8628 §4): the one set by hand, else discovery's.
    public func deviceAuthorizationEndpoint(deadline: Deadline) -> Result<String, IdPProblem> {
        if let override = settings.deviceAuthorizationEndpoint { return .success(override) }
        return discovery(deadline: deadline).flatMap { metadata in
            guard let url = metadata.deviceAuthorizationEndpoint else {
                return .failure(.malformed(.deviceAuthorization, "the IdP lists no device_authorization_endpoint, so MFA by device authorization (mfa, password_grant = no) cannot run; turn the device grant on for the client at the IdP, or set device_authorization_endpoint"))
            }
            return .success(url)
        }
    }

    /// Discovery, from the cache while fresh.
    public func discovery(deadline: Deadline, refresh: Bool = false) -> Result<ProviderMetadata, IdPProblem> {
        if let metadata, !refresh { return .success(metadata) }
        let url = issuer.hasSuffix("/") ? "\(issuer).well-known/openid-configuration" : "\(issuer)/.well-known/openid-configuration"
        let result = document(url: url, kind: "discovery", stage: .discovery, refresh: refresh, deadline: deadline)
            .flatMap { (document: JSONValue) -> Result<ProviderMetadata, IdPProblem> in
                do throws(IdPProblem) {
                    return .success(try ProviderMetadata(discovery: document, expectedIssuer: issuer))
                } catch {
                    return .failure(error)
                }
            }
        if case .success(let found) = result { metadata = found }
        return result
    }

    /// The signing keys. With `refresh`, the cached set is bypassed (after an unknown `kid`).
    public func keys(deadline: Deadline, refresh: Bool) -> Result<(keys: KeySet, fromCache: Bool), IdPProblem> {
        let jwksURL: String
        if let override = settings.jwksURI {
            jwksURL = override
        } else {
            switch discovery(deadline: deadline) {
            case .failure(let problem): return .failure(problem)
            case .success(let metadata):
                guard let url = metadata.jwksURI else {
                    return .failure(.malformed(.keys, "the IdP's discovery document lists no jwks_uri, so ID tokens cannot be verified; set jwks_uri"))
                }
                jwksURL = url
            }
        }
        var fromCache = false
        let result = document(url: jwksURL, kind: "jwks", stage: .keys, refresh: refresh, deadline: deadline, usedCache: &fromCache)
        return result.flatMap { document in
            guard let keys = KeySet(document: document) else {
                return .failure(.malformed(.keys, "the JWKS at \(jwksURL) is not a JSON Web Key Set"))
            }
            return .success((keys, fromCache))
        }
    }

    /// The claims of an ID token signed by one of the provider's keys and valid for the
    /// settings' client (`OIDCSettings.idTokenVerifier`); an unknown `kid` after a cached key
    /// set fetches the JWKS once more (key rotation).
    public func verify(_ token: String, now: Int64, deadline: Deadline,
                       stage: IdPProblem.Stage = .token) -> Result<[String: JSONValue], IdPProblem> {
        let verifier = settings.idTokenVerifier
        var refresh = false
        while true {
            let keys: KeySet
            let fromCache: Bool
            switch self.keys(deadline: deadline, refresh: refresh) {
            case .success(let found): (keys, fromCache) = found
            case .failure(let problem): return .failure(problem)
            }
            do throws(IDTokenError) {
                return .success(try verifier.verify(token, keys: keys, now: now))
            } catch .unknownKeyID where fromCache && !refresh {
                log.info("ID token signed by a key not in the cached JWKS; fetching the JWKS again")
                refresh = true
            } catch {
                log.error("rejecting the IdP's ID token: \(error)")
                return .failure(IdPProblem(stage: stage, cause: .invalidToken(error)))
            }
        }
    }

    private func document(url: String, kind: String, stage: IdPProblem.Stage, refresh: Bool, deadline: Deadline) -> Result<JSONValue, IdPProblem> {
        var unused = false
        return document(url: url, kind: kind, stage: stage, refresh: refresh, deadline: deadline, usedCache: &unused)
    }

    /// A JSON document: fresh from the cache, else fetched (and cached), else a stale cached
    /// copy when the IdP is unavailable.
    private func document(url: String, kind: String, stage: IdPProblem.Stage, refresh: Bool, deadline: Deadline, usedCache: inout Bool) -> Result<JSONValue, IdPProblem> {
        let name = DiskMetadataCache.key(for: "\(issuer) \(url)", kind: kind)
        let now = clock.now()
        let cached = cache?.read(name)
        if !refresh, let cached, now >= cached.fetchedAt, now &- cached.fetchedAt < Self.freshSeconds,
           let document = cached.body.withUnsafeBytes({ JSONValue.parse($0) }) {
            usedCache = true
            return .success(document)
        }
        fetches.append("GET \(url)")
        let fetched = fetch(url: url, stage: stage, deadline: deadline)
        switch fetched {
        case .success(let (document, bytes)):
            cache?.write(name, body: bytes, fetchedAt: now)
            usedCache = false
            return .success(document)
        case .failure(let problem):
            if problem.kind == .unavailable, let cached, now &- cached.fetchedAt < Self.staleSeconds,
               let document = cached.body.withUnsafeBytes({ JSONValue.parse($0) }) {
                log.warning("\(problem) (\(url)); using the cached copy from \(now &- cached.fetchedAt) s ago")
                usedCache = true
                return .success(document)
            }
            return .failure(problem)
        }
    }

    private func fetch(url: String, stage: IdPProblem.Stage, deadline: Deadline) -> Result<(JSONValue, [UInt8]), IdPProblem> {
        switch transport.send(HTTPRequest(method: .get, url: url), deadline: deadline) {
        case .failure(let error):
            return .failure(IdPClassifier.problem(error, stage: stage))
        case .success(let response):
            guard response.status == 200 else { return .failure(IdPClassifier.problem(status: response.status, stage: stage)) }
            guard let document = JSONValue.parse(response.body), document.objectValue != nil else {
                return .failure(.malformed(stage, "\(stage.what) (\(url)) did not answer a JSON object"))
            }
            return .success((document, response.body.withBytes { Array($0) }))
        }
    }
}
