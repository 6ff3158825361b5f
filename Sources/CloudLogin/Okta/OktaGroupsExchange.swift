import COpenSSL

/// Reads the user's groups after an Okta sign-in: the one-time `sessionToken` is exchanged for an
/// ID token through the authorization code flow with PKCE (`prompt=none`, `sessionToken`), and
/// the verified token's groups claim is used. Needs `[okta] client_id` and `redirect_uri` (a
/// Native app); without them group mapping is off.
struct OktaGroupsExchange {
    let config: Config
    let transport: HTTPTransport
    let cache: MetadataCache?
    let clock: Clock
    let log: EventLog

    /// The OIDC side: the Okta authorization server (`oktaIssuer`) and the Native app
    /// (`[okta] client_id`), with `[idp]`'s ID-token rules; every endpoint from discovery.
    /// Nil without a client id or an Okta domain.
    static func settings(for config: Config) -> OIDCSettings? {
        guard let issuer = config.oktaIssuer, let clientID = config.oktaClientID else { return nil }
        return OIDCSettings(issuer: issuer, clientID: clientID, idTokenAlgorithms: config.idTokenAlgorithms, clockSkew: config.clockSkew)
    }

    /// The verified ID-token claims for the session of `sessionToken`.
    func claims(sessionToken: String, deadline: Deadline) -> Result<[String: JSONValue], IdPProblem> {
        guard let settings = Self.settings(for: config), let redirectURI = config.oktaRedirectURI else {
            return .failure(IdPProblem(stage: .groupsExchange, cause: .local("no [okta] client_id/redirect_uri")))
        }
        let clientID = settings.clientID
        let directory = ProviderDirectory(settings: settings, transport: transport, cache: cache, clock: clock, log: log)
        let metadata: ProviderMetadata
        switch directory.discovery(deadline: deadline) {
        case .success(let found): metadata = found
        case .failure(let problem): return .failure(problem)
        }
        guard let authorize = metadata.authorizationEndpoint else {
            return .failure(.malformed(.groupsExchange, "the Okta authorization server lists no authorization_endpoint"))
        }
        guard let verifier = Self.randomToken(32), let state = Self.randomToken(16), let nonce = Self.randomToken(16) else {
            return .failure(IdPProblem(stage: .groupsExchange, cause: .local("no random numbers for PKCE")))
        }
        let challenge = Self.challenge(for: verifier)

        // 1. The authorization request: Okta answers with a redirect carrying the code.
        let query = [("client_id", clientID), ("response_type", "code"), ("response_mode", "query"),
                     ("scope", config.oktaScopes.joined(separator: " ")), ("redirect_uri", redirectURI),
                     ("state", state), ("nonce", nonce), ("code_challenge", challenge),
                     ("code_challenge_method", "S256"), ("prompt", "none"), ("sessionToken", sessionToken)]
        let url = authorize + (authorize.contains("?") ? "&" : "?") + Self.formEncoded(query)
        let redirect: HTTPResponse
        switch transport.send(HTTPRequest(method: .get, url: url), deadline: deadline) {
        case .failure(let error): return .failure(IdPClassifier.problem(error, stage: .groupsExchange))
        case .success(let response): redirect = response
        }
        defer { redirect.body.wipe() }
        guard (300...399).contains(redirect.status), let location = redirect.headers["location"] else {
            guard redirect.status != 200 else {
                return .failure(.malformed(.groupsExchange, "Okta answered the authorization request with a page, not a redirect"))
            }
            return .failure(IdPClassifier.problem(status: redirect.status, stage: .groupsExchange))
        }
        guard location.hasPrefix(redirectURI) else {
            return .failure(.malformed(.groupsExchange, "Okta redirected somewhere other than redirect_uri"))
        }
        let parameters = Self.queryParameters(of: location)
        if let error = parameters["error"] {
            return .failure(IdPProblem(stage: .groupsExchange, cause: .authorizationError(error)))
        }
        guard parameters["state"] == state, let code = parameters["code"], !code.isEmpty else {
            return .failure(.malformed(.groupsExchange, "Okta's redirect has no code for this request"))
        }

        // 2. The code for tokens, with the PKCE verifier.
        let body = SecretBytes(capacity: 256)
        body.append("grant_type=authorization_code&code=")
        FormEncoding.append(code, to: body)
        body.append("&redirect_uri=")
        FormEncoding.append(redirectURI, to: body)
        body.append("&client_id=")
        FormEncoding.append(clientID, to: body)
        body.append("&code_verifier=")
        FormEncoding.append(verifier, to: body)
        let request = HTTPRequest(method: .post, url: metadata.tokenEndpoint,
                                  headers: ["Accept: application/json", "Content-Type: application/x-www-form-urlencoded"], body: body)
        let response: HTTPResponse
        switch transport.send(request, deadline: deadline) {
        case .failure(let error): return .failure(IdPClassifier.problem(error, stage: .groupsExchange))
        case .success(let answer): response = answer
        }
        defer { response.body.wipe() }
        guard response.status == 200 else { return .failure(IdPClassifier.problem(status: response.status, stage: .groupsExchange)) }
        guard let token = JSONValue.parse(response.body)?["id_token"]?.stringValue else {
            return .failure(.malformed(.groupsExchange, "Okta's token response has no id_token"))
        }

        // 3. The ID token, verified like any other, and bound to this request by the nonce.
        return directory.verify(token, now: clock.now(), deadline: deadline, stage: .groupsExchange).flatMap { claims in
            guard claims["nonce"]?.stringValue == nonce else {
                return .failure(.malformed(.groupsExchange, "Okta's ID token does not carry this request's nonce"))
            }
            return .success(claims)
        }
    }

    static func randomToken(_ bytes: Int) -> String? {
        var buffer = [UInt8](repeating: 0, count: bytes)
        let ok = buffer.withUnsafeMutableBufferPointer { pointer in
            pointer.baseAddress.map { COpenSSL_random($0, Int32(truncatingIfNeeded: bytes)) == 1 } ?? false
        }
        return ok ? Base64URL.encode(buffer) : nil
    }

    /// The S256 code challenge (RFC 7636 §4.2).
    static func challenge(for verifier: String) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var text = verifier
        _ = text.withUTF8 { input in
            digest.withUnsafeMutableBufferPointer { output in
                guard let source = input.baseAddress, let target = output.baseAddress else { return Int32(0) }
                return COpenSSL_sha256(source, input.count, target)
            }
        }
        return Base64URL.encode(digest)
    }

    static func formEncoded(_ pairs: [(String, String)]) -> String {
        pairs.map { key, value in
            let output = SecretBytes(capacity: value.utf8.count + key.utf8.count + 8)
            FormEncoding.append(key, to: output)
            output.append(UInt8(ascii: "="))
            FormEncoding.append(value, to: output)
            return output.withBytes { String(decoding: $0, as: UTF8.self) }
        }.joined(separator: "&")
    }

    /// The query parameters of a redirect URL, percent-decoded.
    static func queryParameters(of url: String) -> [String: String] {
        guard let questionMark = url.firstIndex(of: "?") else { return [:] }
        let query = url[url.index(after: questionMark)...].prefix { $0 != "#" }
        var result: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = parts.first.map(String.init) else { continue }
            result[key] = parts.count > 1 ? percentDecoded(String(parts[1])) : ""
        }
        return result
    }

    static func percentDecoded(_ text: String) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "+") { bytes.append(UInt8(ascii: " ")); continue }
            guard byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                  let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else {
                bytes.append(byte)
                continue
            }
            bytes.append(value)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
