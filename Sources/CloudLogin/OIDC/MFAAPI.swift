/// MFA in the prompt through the MFA API on the password grant: the password grant answered
/// `mfa_required` with an `mfa_token` (so the password was right), and the person answers a code,
/// a push or an SMS code through the PAM conversation; the token endpoint then issues the ID
/// token with `…/mfa-otp` or `…/mfa-oob` (docs/facts.md, "The MFA API on the password grant").
///
/// Two dialects of one API: Auth0 lists the person's authenticators (`GET /mfa/authenticators`)
/// and challenges the one picked (`POST /mfa/challenge`, JSON); Okta's direct authentication has
/// no list, and its challenge (`POST …/v1/challenge`, form) takes the kinds the client supports
/// and a channel hint. Polling a push follows RFC 8628's rules, as Okta's and Auth0's SDKs do:
/// go on only on `authorization_pending` and `slow_down` (5 s slower), stop on anything else.
struct MFAAPI {
    static let otpGrant = "http://auth0.com/oauth/grant-type/mfa-otp"
    static let oobGrant = "http://auth0.com/oauth/grant-type/mfa-oob"
    /// Codes are asked for at most this often (a wrong code, then a new try).
    static let maximumTries = 3
    /// The polling interval when the challenge names none (Okta's documented default).
    static let defaultIntervalSeconds: Int64 = 5

    enum Dialect: Equatable {
        /// `GET {issuer}mfa/authenticators`, `POST {issuer}mfa/challenge` with JSON.
        case auth0(authenticators: String, challenge: String)
        /// `POST …/v1/challenge` (the token endpoint with `/token` replaced), form-encoded.
        case okta(challenge: String)
    }

    /// One way the person can answer.
    struct Method: Equatable {
        enum Kind: Equatable {
            /// A code from an authenticator app (Okta Verify, Google Authenticator, Guardian).
            case otp
            /// A push to the phone (Okta Verify, Auth0 Guardian).
            case push
            /// A code sent by `channel` (sms, voice, email), typed back here.
            case sentCode(channel: String)
        }

        var kind: Kind
        /// Auth0's authenticator id; nil for Okta.
        var authenticatorID: String?
        /// What the menu says.
        var label: String
    }

    let dialect: Dialect
    let config: Config
    let transport: HTTPTransport
    /// Reads the final token answer exactly as the password grant's (ID token, userinfo).
    let tokens: OIDCPasswordGrant
    let clock: Clock
    let log: EventLog
    /// How long the person has to approve a push.
    var pushTimeoutSeconds: Int {
        if case .okta = dialect { return config.oktaPushTimeout }
        return config.deviceTimeout
    }

    /// The dialect for `config` and the token endpoint the password grant used; nil when the
    /// IdP's MFA API cannot be found (then the device step is the way, if it is on).
    static func dialect(config: Config, tokenEndpoint: String) -> Dialect? {
        if config.isOktaDirect {
            guard tokenEndpoint.hasSuffix("/token") else { return nil }
            return .okta(challenge: String(tokenEndpoint.dropLast("token".count)) + "challenge")
        }
        // Auth0: the MFA API lives beside /oauth/token at the tenant's root (the issuer).
        guard let issuer = config.issuer, tokenEndpoint.hasSuffix("/oauth/token") else { return nil }
        let root = issuer.hasSuffix("/") ? issuer : issuer + "/"
        return .auth0(authenticators: root + "mfa/authenticators", challenge: root + "mfa/challenge")
    }

    /// Completes MFA for `login` with `mfaToken`.
    func complete(mfaToken: SecretBytes, login: String, tokenEndpoint: String, conversation: Conversation, deadline: Deadline) -> IdentityVerdict {
        var deadline = deadline
        let methods: [Method]
        switch availableMethods(mfaToken: mfaToken, deadline: deadline) {
        case .next(let found): methods = found
        case .ended(let verdict): return verdict
        }
        guard !methods.isEmpty else {
            conversation.tell("Your organisation requires MFA, and your account has no method this computer can use (an authenticator app, a push or SMS). Enroll one at your identity provider first.")
            return .rejected(.mfaEnrollmentRequired)
        }
        guard let method = choose(from: methods, conversation: conversation, deadline: &deadline) else { return .rejected(.abandoned) }
        log.info("MFA for \(login) through the MFA API: \(method.label)")
        switch method.kind {
        case .otp:
            return answerCode(prompt: "Code from your authenticator app: ", mfaToken: mfaToken, oobCode: nil, login: login,
                              tokenEndpoint: tokenEndpoint, conversation: conversation, deadline: &deadline)
        case .push, .sentCode:
            let challenge: Challenge
            switch requestChallenge(method, mfaToken: mfaToken, deadline: deadline) {
            case .next(let answer): challenge = answer
            case .ended(let verdict): return verdict
            }
            defer { challenge.oobCode.wipe() }
            if case .sentCode(let channel) = method.kind, challenge.bindingMethod == "prompt" {
                return answerCode(prompt: "Code sent to you by \(channel == "sms" ? "SMS" : channel): ", mfaToken: mfaToken, oobCode: challenge.oobCode,
                                  login: login, tokenEndpoint: tokenEndpoint, conversation: conversation, deadline: &deadline)
            }
            if challenge.challengeType == "otp" || challenge.challengeType == Self.otpGrant {
                return answerCode(prompt: "Code from your authenticator app: ", mfaToken: mfaToken, oobCode: nil, login: login,
                                  tokenEndpoint: tokenEndpoint, conversation: conversation, deadline: &deadline)
            }
            return waitForPush(challenge, mfaToken: mfaToken, login: login, tokenEndpoint: tokenEndpoint,
                               conversation: conversation, deadline: &deadline)
        }
    }

    // MARK: - Methods

    /// Auth0: the active authenticators the person can use here; Okta: the kinds direct
    /// authentication offers (Okta picks the authenticator itself).
    func availableMethods(mfaToken: SecretBytes, deadline: Deadline) -> IdPStep<[Method]> {
        switch dialect {
        case .okta:
            let all = [Method(kind: .push, label: "Okta Verify push"),
                       Method(kind: .otp, label: "a code from Okta Verify or an authenticator app"),
                       Method(kind: .sentCode(channel: "sms"), label: "a code by SMS")]
            switch config.oktaFactor {
            case .ask: return .next(all)
            case .push: return .next([all[0]])
            case .totp: return .next([all[1]])
            case .sms: return .next([all[2]])
            }
        case .auth0(let url, _):
            let bearer = SecretBytes(capacity: mfaToken.count + 8)
            bearer.append("Bearer ")
            bearer.append(mfaToken)
            defer { bearer.wipe() }
            let request = HTTPRequest(method: .get, url: url, headers: ["Accept: application/json"], authorization: bearer)
            let response: HTTPResponse
            switch transport.send(request, deadline: deadline) {
            case .success(let answer): response = answer
            case .failure(let error): return .ended(.problem(IdPClassifier.problem(error, stage: .mfaChallenge)))
            }
            defer { response.body.wipe() }
            guard response.status == 200 else {
                return .ended(IdPClassifier.verdict(for: IdPErrorAnswer(status: response.status, body: response.body), stage: .mfaChallenge))
            }
            guard let list = JSONValue.parse(response.body)?.arrayValue else {
                return .ended(.problem(.malformed(.mfaChallenge, "the MFA API's authenticator list is not a JSON array")))
            }
            return .next(list.prefix(20).compactMap(Self.method(fromAuth0:)))
        }
    }

    /// An Auth0 authenticator as a method, or nil for one that cannot be used here (inactive,
    /// a recovery code, an unknown type or channel).
    static func method(fromAuth0 value: JSONValue) -> Method? {
        guard value["active"] == .bool(true), let id = value["id"]?.stringValue, !id.isEmpty, id.utf8.count <= 256,
              id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        // The IdP's name for the device is shown on the console: no control or format
        // characters (C1 escapes, bidi overrides), as for GECOS, and short.
        let shown = value["name"]?.stringValue.map { String(AccountSync.gecos(from: $0).prefix(40)) } ?? ""
        let name = shown.isEmpty ? "" : " (\(shown))"
        switch value["authenticator_type"]?.stringValue {
        case "otp"?:
            return Method(kind: .otp, authenticatorID: id, label: "a code from your authenticator app")
        case "oob"?:
            switch value["oob_channel"]?.stringValue {
            case "auth0"?: return Method(kind: .push, authenticatorID: id, label: "a push to Auth0 Guardian\(name)")
            case "sms"?: return Method(kind: .sentCode(channel: "sms"), authenticatorID: id, label: "a code by SMS\(name)")
            case "voice"?: return Method(kind: .sentCode(channel: "voice"), authenticatorID: id, label: "a code by phone call\(name)")
            case "email"?: return Method(kind: .sentCode(channel: "email"), authenticatorID: id, label: "a code by email\(name)")
            default: return nil
            }
        default:
            return nil
        }
    }

    /// The one method, or the person's pick from a numbered menu (three tries).
    func choose(from methods: [Method], conversation: Conversation, deadline: inout Deadline) -> Method? {
        guard methods.count > 1 else { return methods.first }
        conversation.tell("Choose how to confirm your sign-in:\n" + methods.enumerated().map { "  \($0.offset + 1). \($0.element.label)" }.joined(separator: "\n"))
        for _ in 0..<Self.maximumTries {
            guard let answer = deadline.waitingForPerson({ conversation.ask("Method [1-\(methods.count)]: ", secret: false) }) else { return nil }
            defer { answer.wipe() }
            let text = answer.withBytes { String(decoding: $0, as: UTF8.self) }.trimmed
            if let number = Int(text, radix: 10), number >= 1, number <= methods.count {
                return methods[number - 1]
            }
            conversation.tell("Please type a number from 1 to \(methods.count).")
        }
        return nil
    }

    // MARK: - Challenge

    /// What a challenge answered.
    struct Challenge {
        var challengeType: String
        var oobCode: SecretBytes
        var bindingMethod: String?
        /// The number to tap on the phone (Okta Verify's number challenge, `transfer`).
        var bindingCode: String?
        var intervalSeconds: Int64
    }

    func requestChallenge(_ method: Method, mfaToken: SecretBytes, deadline: Deadline) -> IdPStep<Challenge> {
        let request: HTTPRequest
        switch dialect {
        case .auth0(_, let url):
            var body = JSONBody()
            body.add("client_id", config.clientID)
            if let secret = config.clientSecret { body.add("client_secret", secret) }
            body.add("mfa_token", mfaToken)
            body.add("challenge_type", method.kind == .otp ? "otp" : "oob")
            if let id = method.authenticatorID { body.add("authenticator_id", id) }
            request = HTTPRequest(method: .post, url: url, headers: ["Accept: application/json", "Content-Type: application/json"], body: body.finish())
        case .okta(let url):
            let body = SecretBytes(capacity: 256)
            body.append("mfa_token=")
            FormEncoding.append(mfaToken, to: body)
            body.append("&challenge_types_supported=")
            FormEncoding.append("\(Self.oobGrant) \(Self.otpGrant)", to: body)
            body.append("&channel_hint=")
            if case .sentCode(let channel) = method.kind { FormEncoding.append(channel, to: body) } else { body.append("push") }
            request = OIDCPasswordGrant.clientRequest(url: url, body: body, config: config)
        }
        defer { request.body?.wipe() }
        let response: HTTPResponse
        switch transport.send(request, deadline: deadline) {
        case .success(let answer): response = answer
        case .failure(let error): return .ended(.problem(IdPClassifier.problem(error, stage: .mfaChallenge)))
        }
        defer { response.body.wipe() }
        guard response.status == 200 else {
            let answer = IdPErrorAnswer(status: response.status, body: response.body)
            switch answer.error {
            case "unsupported_challenge_type"?, "invalid_challenge_types_supported"?, "association_required"?:
                log.notice("the MFA API offers no challenge of that kind for this account (\(answer.summary))")
                return .ended(.rejected(.mfaEnrollmentRequired))
            case "expired_token"?:
                return .ended(.rejected(.transactionExpired))
            default:
                return .ended(IdPClassifier.verdict(for: answer, stage: .mfaChallenge))
            }
        }
        guard let document = JSONValue.parse(response.body), let type = document["challenge_type"]?.stringValue else {
            return .ended(.problem(.malformed(.mfaChallenge, "the MFA challenge answer has no challenge_type")))
        }
        if type == "otp" || type == Self.otpGrant {
            return .next(Challenge(challengeType: type, oobCode: SecretBytes(), bindingMethod: nil, bindingCode: nil, intervalSeconds: Self.defaultIntervalSeconds))
        }
        guard let oob = document["oob_code"]?.stringValue, !oob.isEmpty, oob.utf8.count <= 4096 else {
            return .ended(.problem(.malformed(.mfaChallenge, "the MFA challenge answer has no oob_code")))
        }
        var binding: String?
        if let code = document["binding_code"]?.stringValue {
            // Shown to the person: a short printable code only.
            guard code.utf8.count <= 16, code.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                return .ended(.problem(.malformed(.mfaChallenge, "the MFA challenge's binding_code is not a short printable code")))
            }
            binding = code
        }
        let interval = document["interval"]?.integerValue.map { min(max($0, 1), ApprovalPolling.maximumIntervalMilliseconds / 1000) } ?? Self.defaultIntervalSeconds
        return .next(Challenge(challengeType: type, oobCode: SecretBytes(oob.utf8), bindingMethod: document["binding_method"]?.stringValue,
                                  bindingCode: binding, intervalSeconds: interval))
    }

    // MARK: - Completion

    /// The token request that completes MFA: `…/mfa-otp` with `otp`, or `…/mfa-oob` with
    /// `oob_code` (and `binding_code`).
    func tokenRequest(url: String, mfaToken: SecretBytes, otp: SecretBytes?, oobCode: SecretBytes?, bindingCode: SecretBytes?) -> HTTPRequest {
        let body = SecretBytes(capacity: 256)
        body.append("grant_type=")
        FormEncoding.append(oobCode == nil ? Self.otpGrant : Self.oobGrant, to: body)
        body.append("&mfa_token=")
        FormEncoding.append(mfaToken, to: body)
        if let otp {
            body.append("&otp=")
            FormEncoding.append(otp, to: body)
        }
        if let oobCode {
            body.append("&oob_code=")
            FormEncoding.append(oobCode, to: body)
        }
        if let bindingCode {
            body.append("&binding_code=")
            FormEncoding.append(bindingCode, to: body)
        }
        return OIDCPasswordGrant.clientRequest(url: url, body: body, config: config)
    }

    /// A code typed by the person: from an authenticator app (`oobCode` nil) or sent by SMS,
    /// voice or email (the `binding_code` of `oobCode`). Three tries.
    func answerCode(prompt: String, mfaToken: SecretBytes, oobCode: SecretBytes?, login: String, tokenEndpoint: String,
                    conversation: Conversation, deadline: inout Deadline) -> IdentityVerdict {
        for attempt in 1...Self.maximumTries {
            guard let code = deadline.waitingForPerson({ conversation.ask(prompt, secret: false) }) else { return .rejected(.abandoned) }
            defer { code.wipe() }
            guard !code.isEmpty else { return .rejected(.abandoned) }
            guard !code.containsControlCharacter, code.count <= 64 else {
                conversation.tell("That is not a code.")
                continue
            }
            let request = tokenRequest(url: tokenEndpoint, mfaToken: mfaToken, otp: oobCode == nil ? code : nil, oobCode: oobCode,
                                       bindingCode: oobCode == nil ? nil : code)
            defer { request.body?.wipe() }
            let response: HTTPResponse
            switch transport.send(request, deadline: deadline) {
            case .success(let answer): response = answer
            case .failure(let error): return .problem(IdPClassifier.problem(error, stage: .mfaToken))
            }
            defer { response.body.wipe() }
            if response.status == 200 { return tokens.readTokenResponse(response.body, login: login, deadline: deadline) }
            let answer = IdPErrorAnswer(status: response.status, body: response.body)
            switch answer.error {
            case "invalid_grant"? where (400...499).contains(response.status):
                // Auth0: "Invalid otp_code." / "Invalid binding_code."; Okta: a wrong code.
                log.notice("wrong MFA code for \(login) (try \(attempt) of \(Self.maximumTries))")
                if attempt < Self.maximumTries { conversation.tell("Wrong code; try again.") }
            case "expired_token"?:
                // The result message says it ("The sign-in took too long; please start again.").
                return .rejected(.transactionExpired)
            default:
                return verdict(for: answer)
            }
        }
        conversation.tell("Too many wrong codes.")
        return .rejected(.mfaFailed)
    }

    /// A push: the notice (with the number to tap, when the IdP sends one), then polls of the
    /// token endpoint until approved, rejected, expired or `pushTimeoutSeconds` pass.
    func waitForPush(_ challenge: Challenge, mfaToken: SecretBytes, login: String, tokenEndpoint: String,
                     conversation: Conversation, deadline: inout Deadline) -> IdentityVerdict {
        let began = clock.monotonicMilliseconds()
        let notice = challenge.bindingCode.map { "Approve the sign-in on your phone: tap \($0)." } ?? "Approve the sign-in on your phone."
        let shown = deadline.waitingForPerson { conversation.showWhileWaiting(conversation.showsMessagesAtOnce ? notice.replacingLastPeriod() : notice, approval: "approved it on your phone") }
        guard shown else { return .rejected(.abandoned) }
        let polling = ApprovalPolling(clock: clock, began: began, limitMilliseconds: Int64(truncatingIfNeeded: pushTimeoutSeconds) &* 1000,
                                      intervalMilliseconds: challenge.intervalSeconds &* 1000, afterPrompt: !conversation.showsMessagesAtOnce)
        let verdict = polling.run(deadline: &deadline) { deadline in
            pollPush(challenge, mfaToken: mfaToken, login: login, tokenEndpoint: tokenEndpoint, conversation: conversation, deadline: deadline)
        }
        guard let verdict else {
            conversation.tell("The push was not approved within \(pushTimeoutSeconds) seconds.")
            return .rejected(.mfaTimedOut)
        }
        return verdict
    }

    /// One poll of a push (`…/mfa-oob` with the `oob_code`).
    func pollPush(_ challenge: Challenge, mfaToken: SecretBytes, login: String, tokenEndpoint: String,
                  conversation: Conversation, deadline: Deadline) -> ApprovalPolling.Poll {
        let request = tokenRequest(url: tokenEndpoint, mfaToken: mfaToken, otp: nil, oobCode: challenge.oobCode, bindingCode: nil)
        defer { request.body?.wipe() }
        let response: HTTPResponse
        switch transport.send(request, deadline: deadline) {
        case .success(let answer): response = answer
        case .failure(let error): return .done(.problem(IdPClassifier.problem(error, stage: .mfaToken)))
        }
        defer { response.body.wipe() }
        if response.status == 200 {
            log.info("push approved for \(login)")
            return .done(tokens.readTokenResponse(response.body, login: login, deadline: deadline))
        }
        let answer = IdPErrorAnswer(status: response.status, body: response.body)
        switch answer.error {
        case "authorization_pending"?, "direct_auth_authorization_pending"?:
            return .pending
        case "slow_down"?:
            return .slowDown
        case "invalid_grant"?, "access_denied"?, "oob_rejected"?:
            // Auth0 documents invalid_grant for a rejected push; the others are Okta's SDK's.
            conversation.tell("The sign-in was rejected on your phone.")
            log.notice("push rejected for \(login) (\(answer.summary))")
            return .done(.rejected(.mfaFailed))
        case "expired_token"?:
            conversation.tell("The push expired before it was approved.")
            return .done(.rejected(.mfaTimedOut))
        default:
            return .done(verdict(for: answer))
        }
    }

    /// Any other error answer during MFA: blocked accounts are refusals that revoke
    /// (too_many_attempts), outages are outages, the rest a step CloudLogin cannot do.
    func verdict(for answer: IdPErrorAnswer) -> IdentityVerdict {
        IdPClassifier.verdict(for: answer, stage: .mfaToken)
    }
}

extension String {
    /// "…." becomes "…" (a notice followed by a wait reads as ongoing).
    fileprivate func replacingLastPeriod() -> String {
        hasSuffix(".") ? String(dropLast()) + "…" : self
    }
}
