/// MFA by the OAuth 2.0 Device Authorization Grant (RFC 8628): the person approves the sign-in
/// at the IdP on their phone (any MFA the IdP demands happens there), while CloudLogin polls the
/// token endpoint. Runs after the password grant verified the password (`mfa`), or alone
/// (`password_grant = no`). The ID token it ends with is verified like every other; whether it
/// names the right person is `LoginFlow`'s check (`DeviceAuthorization.names`).
///
/// What the person sees: the verification URI and the user code as text, and a QR code of
/// `verification_uri_complete` (`qr_code`), then a wait of at most `device_timeout` seconds. In
/// sshd, which shows PAM messages only with its next prompt, all of it is one prompt answered
/// with Enter (`Conversation.showWhileWaiting`).
public struct DeviceAuthorization {
    /// RFC 8628 §3.2: the polling interval when the IdP names none.
    static let defaultIntervalSeconds: Int64 = 5
    /// The grant type of the polls (RFC 8628 §3.4).
    public static let grantType = "urn:ietf:params:oauth:grant-type:device_code"

    let config: Config
    let transport: HTTPTransport
    let directory: ProviderDirectory
    /// Reads the final token answer exactly as the password grant's (ID token, userinfo).
    let tokens: OIDCPasswordGrant
    let clock: Clock
    let log: EventLog

    /// The device step for `config`'s client at `directory`'s provider.
    public init(config: Config, transport: HTTPTransport, directory: ProviderDirectory, clock: Clock, log: EventLog) {
        self.init(config: config, transport: transport, directory: directory,
                  tokens: OIDCPasswordGrant(config: config, transport: transport, directory: directory, clock: clock, log: log),
                  clock: clock, log: log)
    }

    init(config: Config, transport: HTTPTransport, directory: ProviderDirectory, tokens: OIDCPasswordGrant, clock: Clock, log: EventLog) {
        self.config = config
        self.transport = transport
        self.directory = directory
        self.tokens = tokens
        self.clock = clock
        self.log = log
    }

    /// What the device authorization endpoint answered (RFC 8628 §3.2), checked: every string
    /// the person will see is printable ASCII (a hostile IdP cannot send terminal escapes).
    struct Started {
        var deviceCode: SecretBytes
        var userCode: String
        var verificationURI: String
        var verificationURIComplete: String?
        var expiresInSeconds: Int64
        var intervalSeconds: Int64
    }

    /// Runs the device step for `login`: start, show, poll. The verdict is the IdP's answer:
    /// accepted with the verified identity, a rejection (denied, expired, not approved in
    /// time, cancelled), or a problem (the IdP unavailable or broken: the offline rule).
    public func run(login: String, conversation: Conversation, deadline: Deadline) -> IdentityVerdict {
        var deadline = deadline
        let tokenEndpoint: String
        let started: Started
        switch directory.tokenEndpoint(deadline: deadline) {
        case .success(let url): tokenEndpoint = url
        case .failure(let problem): return .problem(problem)
        }
        switch start(deadline: deadline) {
        case .next(let answer): started = answer
        case .ended(let verdict): return verdict
        }
        defer { started.deviceCode.wipe() }
        log.info("device authorization started for \(login); waiting up to \(config.deviceTimeout) s for the approval")

        let began = clock.monotonicMilliseconds()
        let limit = min(Int64(truncatingIfNeeded: config.deviceTimeout), started.expiresInSeconds) &* 1000
        let shown = deadline.waitingForPerson {
            conversation.showWhileWaiting(instructions(started), approval: "approved the sign-in")
        }
        guard shown else {
            log.notice("device authorization for \(login) cancelled, or the application cannot show the code")
            return .rejected(.abandoned)
        }
        if conversation.showsMessagesAtOnce {
            conversation.tell("Waiting for your approval (up to \(limit / 1000) seconds)…")
        }

        var polls = 0
        let polling = ApprovalPolling(clock: clock, began: began, limitMilliseconds: limit,
                                      intervalMilliseconds: started.intervalSeconds &* 1000, afterPrompt: !conversation.showsMessagesAtOnce)
        let verdict = polling.run(deadline: &deadline) { deadline -> ApprovalPolling.Poll in
            polls &+= 1
            return poll(tokenEndpoint: tokenEndpoint, deviceCode: started.deviceCode, login: login, conversation: conversation, deadline: deadline)
        }
        guard let verdict else {
            conversation.tell("The sign-in was not approved within \(limit / 1000) seconds.")
            log.notice("device authorization for \(login) not approved in time (\(polls) polls)")
            return .rejected(.mfaTimedOut)
        }
        if case .accepted = verdict { log.info("device authorization for \(login) approved after \(polls) poll(s)") }
        return verdict
    }

    /// One poll of the token endpoint (RFC 8628 §3.4, §3.5).
    func poll(tokenEndpoint: String, deviceCode: SecretBytes, login: String, conversation: Conversation, deadline: Deadline) -> ApprovalPolling.Poll {
        let body = SecretBytes(capacity: 128)
        body.append("grant_type=")
        FormEncoding.append(Self.grantType, to: body)
        body.append("&device_code=")
        FormEncoding.append(deviceCode, to: body)
        let request = OIDCPasswordGrant.clientRequest(url: tokenEndpoint, body: body, config: config)
        defer { request.body?.wipe() }
        let response: HTTPResponse
        switch transport.send(request, deadline: deadline) {
        case .success(let answer): response = answer
        case .failure(let error): return .done(.problem(IdPClassifier.problem(error, stage: .deviceToken)))
        }
        defer { response.body.wipe() }
        if response.status == 200 { return .done(tokens.readTokenResponse(response.body, login: login, deadline: deadline)) }
        let answer = IdPErrorAnswer(status: response.status, body: response.body)
        guard (400...499).contains(response.status) else { return .done(IdPClassifier.verdict(for: answer, stage: .deviceToken)) }
        switch answer.error {
        case "authorization_pending"?:
            return .pending
        case "slow_down"?:
            log.debug("the IdP asked to poll more slowly")
            return .slowDown
        case "access_denied"?:
            conversation.tell("The sign-in was denied.")
            log.notice("device authorization for \(login) denied at the IdP")
            return .done(.rejected(.mfaFailed))
        case "expired_token"?:
            conversation.tell("The code expired before the sign-in was approved.")
            log.notice("device authorization for \(login): the device code expired")
            return .done(.rejected(.mfaTimedOut))
        default:
            let verdict = IdPClassifier.verdict(for: answer, stage: .deviceToken)
            if case .rejected = verdict {
                log.warning("the token endpoint refused the device grant (\(answer.summary)); treated as a refusal")
            }
            return .done(verdict)
        }
    }

    /// The device authorization request (RFC 8628 §3.1) and its answer (§3.2).
    func start(deadline: Deadline) -> IdPStep<Started> {
        let endpoint: String
        switch directory.deviceAuthorizationEndpoint(deadline: deadline) {
        case .success(let url): endpoint = url
        case .failure(let problem): return .ended(.problem(problem))
        }
        let body = SecretBytes(capacity: 128)
        body.append("scope=")
        FormEncoding.append(config.scopes.joined(separator: " "), to: body)
        let request = OIDCPasswordGrant.clientRequest(url: endpoint, body: body, config: config)
        defer { request.body?.wipe() }
        switch transport.send(request, deadline: deadline) {
        case .failure(let error):
            return .ended(.problem(IdPClassifier.problem(error, stage: .deviceAuthorization)))
        case .success(let response):
            defer { response.body.wipe() }
            guard response.status == 200 else {
                let answer = IdPErrorAnswer(status: response.status, body: response.body)
                return .ended(IdPClassifier.verdict(for: answer, stage: .deviceAuthorization))
            }
            guard let document = JSONValue.parse(response.body), document.objectValue != nil else {
                return .ended(.problem(.malformed(.deviceAuthorization, "the device authorization endpoint answered 200 with a body that is not a JSON object")))
            }
            do throws(IdPProblem) {
                return .next(try Self.read(document))
            } catch {
                return .ended(.problem(error))
            }
        }
    }

    /// Checks the device authorization answer (RFC 8628 §3.2). `verification_url` is taken
    /// for `verification_uri` (Google's name for it).
    static func read(_ document: JSONValue) throws(IdPProblem) -> Started {
        func malformed(_ why: String) -> IdPProblem { .malformed(.deviceAuthorization, why) }
        guard let deviceCode = document["device_code"]?.stringValue, !deviceCode.isEmpty, deviceCode.utf8.count <= 4096,
              deviceCode.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw malformed("the device authorization answer has no usable device_code")
        }
        guard let userCode = document["user_code"]?.stringValue, !userCode.isEmpty, userCode.utf8.count <= 64,
              userCode.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw malformed("the device authorization answer has no user_code of printable characters (at most 64)")
        }
        guard let uri = (document["verification_uri"] ?? document["verification_url"])?.stringValue,
              HTTPSURL.isValid(uri), uri.utf8.count <= 512 else {
            throw malformed("the device authorization answer has no https verification_uri (at most 512 characters)")
        }
        var complete: String?
        if let value = document["verification_uri_complete"] {
            guard let text = value.stringValue, HTTPSURL.isValid(text), text.utf8.count <= 512 else {
                throw malformed("the device authorization answer's verification_uri_complete is not an https URL (at most 512 characters)")
            }
            complete = text
        }
        guard let expiresIn = document["expires_in"]?.integerValue, expiresIn > 0 else {
            throw malformed("the device authorization answer has no positive expires_in")
        }
        var interval = defaultIntervalSeconds
        if let value = document["interval"] {
            guard let seconds = value.integerValue, seconds >= 0 else {
                throw malformed("the device authorization answer's interval is not a whole number of seconds")
            }
            interval = min(max(seconds, 1), ApprovalPolling.maximumIntervalMilliseconds / 1000)
        }
        return Started(deviceCode: SecretBytes(deviceCode.utf8), userCode: userCode, verificationURI: uri,
                       verificationURIComplete: complete, expiresInSeconds: min(expiresIn, 86_400), intervalSeconds: interval)
    }

    /// What the person reads: where to go, the code, and the QR code of the link that carries
    /// the code (or of the plain URI).
    func instructions(_ started: Started) -> String {
        var lines = ["To finish signing in, open \(started.verificationURI) and enter the code \(started.userCode)"
                     + (config.qrCode ? ", or scan this QR code with your phone:" : ".")]
        if config.qrCode {
            if let code = QRCode.lines(for: started.verificationURIComplete ?? started.verificationURI) {
                lines += code
            } else {
                log.warning("the QR code of the verification URI could not be made; showing the URI and code only")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Whether the identity the device grant ended with is the person whose login was typed:
    /// its `name_claim` maps to the same local name as `login` (`AccountSync.localName`, which
    /// also keeps a claim outside `username_suffix`'s domain out), and when both have a domain,
    /// the claim is `login` itself. Someone else approving on their own phone is refused by this.
    static func names(_ identity: Identity, login: String, config: Config) -> Bool {
        guard let value = identity.claims[config.nameClaim]?.stringValue,
              let mapped = AccountSync.localName(for: identity, claim: config.nameClaim, usernameSuffix: config.usernameSuffix) else {
            return false
        }
        let typedLocal = String(login.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        guard mapped == typedLocal.lowercased() else { return false }
        return !value.contains("@") || !login.contains("@") || value.lowercased() == login.lowercased()
    }
}
