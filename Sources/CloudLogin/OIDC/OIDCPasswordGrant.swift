/// The OIDC Resource Owner Password Grant (RFC 6749 §4.3): one POST to the token endpoint,
/// then the ID token verified against the IdP's keys, or userinfo when there is no ID token.
public final class OIDCPasswordGrant: IdentityProvider {
    private let config: Config
    private let transport: HTTPTransport
    private let directory: ProviderDirectory
    private let clock: Clock
    private let log: EventLog

    /// `directory` is the provider of `[idp]`: built with `OIDCSettings(passwordGrant: config)`,
    /// whose ID-token rules it checks the grant's ID token against.
    public init(config: Config, transport: HTTPTransport, directory: ProviderDirectory, clock: Clock, log: EventLog) {
        self.config = config
        self.transport = transport
        self.directory = directory
        self.clock = clock
        self.log = log
    }

    public func verifyPassword(login: String, password: SecretBytes, conversation: Conversation, deadline: Deadline) -> IdentityVerdict {
        verifyPassword(login: login, password: password, conversation: conversation, deadline: deadline, mfaInPrompt: config.usesMFAAPI)
    }

    /// The password grant; with `mfaInPrompt`, an `mfa_required` answer that carries an
    /// `mfa_token` is completed in the prompt through the MFA API (`MFAAPI`).
    public func verifyPassword(login: String, password: SecretBytes, conversation: Conversation, deadline: Deadline, mfaInPrompt: Bool) -> IdentityVerdict {
        let tokenEndpoint: String
        switch directory.tokenEndpoint(deadline: deadline) {
        case .success(let url): tokenEndpoint = url
        case .failure(let problem): return .problem(problem)
        }

        let request = tokenRequest(url: tokenEndpoint, login: login, password: password)
        defer { request.body?.wipe() }
        let response: HTTPResponse
        switch transport.send(request, deadline: deadline) {
        case .success(let answer): response = answer
        case .failure(let error): return .problem(IdPClassifier.problem(error, stage: .token))
        }
        defer { response.body.wipe() }
        guard response.status == 200 else {
            if mfaInPrompt, let mfaToken = Self.mfaToken(in: response), let dialect = MFAAPI.dialect(config: config, tokenEndpoint: tokenEndpoint) {
                defer { mfaToken.wipe() }
                log.info("the IdP verified the password of \(login) and requires MFA; answering it in the prompt")
                let mfa = MFAAPI(dialect: dialect, config: config, transport: transport, tokens: self, clock: clock, log: log)
                return mfa.complete(mfaToken: mfaToken, login: login, tokenEndpoint: tokenEndpoint, conversation: conversation, deadline: deadline)
            }
            let answer = IdPErrorAnswer(status: response.status, body: response.body)
            let verdict = IdPClassifier.verdict(for: answer, stage: .token)
            if verdict == .rejected(.unrecognizedRefusal) {
                log.warning("the token endpoint refused the sign-in with an error CloudLogin does not know (\(answer.summary)); treated as a refusal")
            }
            return verdict
        }
        return readTokenResponse(response.body, login: login, deadline: deadline)
    }

    /// The `mfa_token` of an `mfa_required` answer (Auth0, Okta direct authentication), which
    /// comes only after a correct password; nil for any other answer.
    static func mfaToken(in response: HTTPResponse) -> SecretBytes? {
        guard (400...403).contains(response.status), let document = JSONValue.parse(response.body),
              document["error"]?.stringValue == "mfa_required", let token = document["mfa_token"]?.stringValue,
              !token.isEmpty, token.utf8.count <= 8192 else { return nil }
        return SecretBytes(token.utf8)
    }

    /// The POST: grant_type=password, credentials in the body, client authentication as
    /// configured. Password and secret go only into wiped buffers.
    func tokenRequest(url: String, login: String, password: SecretBytes) -> HTTPRequest {
        let body = SecretBytes(capacity: 256)
        body.append("grant_type=password&username=")
        FormEncoding.append(login, to: body)
        body.append("&password=")
        FormEncoding.append(password, to: body)
        body.append("&scope=")
        FormEncoding.append(config.scopes.joined(separator: " "), to: body)
        return Self.clientRequest(url: url, body: body, config: config)
    }

    /// A form POST from CloudLogin's client (the password grant, the device authorization
    /// request and its polls): `body` gets the client's credentials as `client_auth` says (or
    /// they go into the Authorization header). Secrets go only into wiped buffers.
    static func clientRequest(url: String, body: SecretBytes, config: Config) -> HTTPRequest {
        var authorization: SecretBytes?
        switch config.clientAuthentication {
        case .none:
            body.append("&client_id=")
            FormEncoding.append(config.clientID, to: body)
        case .post:
            body.append("&client_id=")
            FormEncoding.append(config.clientID, to: body)
            body.append("&client_secret=")
            if let secret = config.clientSecret { FormEncoding.append(secret, to: body) }
        case .basic:
            // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined.
            let credentials = SecretBytes(capacity: 128)
            FormEncoding.append(config.clientID, to: credentials)
            credentials.append(UInt8(ascii: ":"))
            if let secret = config.clientSecret { FormEncoding.append(secret, to: credentials) }
            let header = SecretBytes(capacity: 192)
            header.append("Basic ")
            credentials.withBytes { Base64URL.encodeStandard($0, into: header) }
            authorization = header
        }
        return HTTPRequest(method: .post, url: url,
                           headers: ["Accept: application/json", "Content-Type: application/x-www-form-urlencoded"],
                           authorization: authorization, body: body)
    }

    /// A 200 from the token endpoint: only a well-formed token response with a verified
    /// identity is a yes.
    func readTokenResponse(_ body: SecretBytes, login: String, deadline: Deadline) -> IdentityVerdict {
        guard let document = JSONValue.parse(body), document.objectValue != nil else {
            return .problem(.malformed(.token, "the token endpoint answered 200 with a body that is not a JSON object"))
        }
        if document["error"] != nil {
            return .problem(.malformed(.token, "the token endpoint answered 200 with an error body"))
        }
        guard let accessToken = document["access_token"]?.stringValue, !accessToken.isEmpty else {
            return .problem(.malformed(.token, "the token endpoint answered 200 without an access_token"))
        }
        if let tokenType = document["token_type"]?.stringValue, tokenType.lowercased() != "bearer" {
            return .problem(.malformed(.token, "the token endpoint issued a '\(ConfigParser.printable(tokenType))' token, not Bearer"))
        }

        var claims: [String: JSONValue]
        if let idToken = document["id_token"] {
            guard let token = idToken.stringValue else {
                return .problem(.malformed(.token, "the token endpoint's id_token is not a string"))
            }
            switch directory.verify(token, now: clock.now(), deadline: deadline) {
            case .success(let verified): claims = verified
            case .failure(let problem): return .problem(problem)
            }
            // Complete the claims from userinfo only when the ID token lacks the local name.
            if claims[config.nameClaim] == nil {
                switch userinfo(accessToken: accessToken, deadline: deadline) {
                case .success(let extra):
                    guard extra["sub"] == claims["sub"] else {
                        return .problem(.malformed(.userinfo, "userinfo names a different subject than the ID token"))
                    }
                    claims.merge(extra) { fromToken, _ in fromToken }
                case .failure(let problem):
                    return .problem(problem)
                }
            }
        } else {
            switch userinfo(accessToken: accessToken, deadline: deadline) {
            case .success(let extra): claims = extra
            case .failure(let problem): return .problem(problem)
            }
        }
        guard let subject = claims["sub"]?.stringValue, !subject.isEmpty else {
            return .problem(.malformed(.token, "the IdP's answer names no subject (sub)"))
        }
        return .accepted(Identity(subject: subject, idpLogin: login, claims: claims))
    }

    private func userinfo(accessToken: String, deadline: Deadline) -> Result<[String: JSONValue], IdPProblem> {
        let url: String
        switch directory.userinfoEndpoint(deadline: deadline) {
        case .success(let found): url = found
        case .failure(let problem): return .failure(problem)
        }
        let bearer = SecretBytes(capacity: accessToken.utf8.count + 8)
        bearer.append("Bearer ")
        bearer.append(accessToken)
        switch transport.send(HTTPRequest(method: .get, url: url, authorization: bearer), deadline: deadline) {
        case .failure(let error):
            return .failure(IdPClassifier.problem(error, stage: .userinfo))
        case .success(let response):
            defer { response.body.wipe() }
            guard response.status == 200 else { return .failure(IdPClassifier.problem(status: response.status, stage: .userinfo)) }
            guard let claims = JSONValue.parse(response.body)?.objectValue else {
                return .failure(.malformed(.userinfo, "userinfo did not answer a JSON object"))
            }
            return .success(claims)
        }
    }
}
