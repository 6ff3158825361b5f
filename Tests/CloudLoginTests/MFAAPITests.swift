@testable import CloudLogin
import Testing

/// MFA in the prompt through the MFA API on the password grant (Auth0, Okta direct
/// authentication): what is sent, what the person sees, what each answer comes to.
@Suite struct MFAAPITests {
    static let fixtures = TokenFixtures.shared
    static let tokenURL = "https://idp.test/realms/corp/oauth/token"
    static let authenticatorsURL = "https://idp.test/realms/corp/mfa/authenticators"
    static let challengeURL = "https://idp.test/realms/corp/mfa/challenge"
    static let oktaChallengeURL = "https://idp.test/realms/corp/oauth/challenge"
    static let discovery = """
    {"issuer":"https://idp.test/realms/corp","token_endpoint":"\(tokenURL)","jwks_uri":"\(fixtureJWKSURL)"}
    """
    static let mfaRequired = #"{"error":"mfa_required","error_description":"Multifactor authentication required","mfa_token":"MFA-TOKEN-1"}"#
    static var tokens: String { #"{"access_token":"at-1","token_type":"Bearer","id_token":"\#(fixtures.token("valid_rs256"))"}"# }
    static let authenticators = """
    [{"id":"recovery-code|dev_1","authenticator_type":"recovery-code","active":true},
     {"id":"totp|dev_2","authenticator_type":"otp","active":true},
     {"id":"push|dev_3","authenticator_type":"oob","active":true,"oob_channel":"auth0","name":"Alice's phone"},
     {"id":"sms|dev_4","authenticator_type":"oob","active":true,"oob_channel":"sms","name":"XXXXXXXX8730"},
     {"id":"sms|dev_5","authenticator_type":"oob","active":false,"oob_channel":"sms"}]
    """

    struct World {
        var flow: LoginFlow
        var transport: ScriptedTransport
        var accounts: AccountTable
        var clock: FixedClock
    }

    static func world(okta: Bool = false, config change: (inout Config) -> Void = { _ in }) -> World {
        let transport = ScriptedTransport()
        transport.on(fixtureDiscoveryURL, 200, discovery)
        transport.on(fixtureJWKSURL, 200, fixtures.jwksText)
        transport.on(tokenURL, 403, mfaRequired)
        let accounts = AccountTable()
        let clock = FixedClock(fixtures.now)
        let config = fixtureConfig { config in
            config.usernameSuffix = ""
            config.mfa = .whenRequired
            if okta {
                config.provider = .okta
                config.oktaAPI = .direct
                config.mfa = .off
                config.oktaPushTimeout = 30
            }
            change(&config)
        }
        let flow = LoginFlow(config: config, transport: transport, cache: MemoryCache(), accounts: accounts, state: StateTable(),
                             clock: clock, log: RecordingLog(), canChangeAccounts: true)
        return World(flow: flow, transport: transport, accounts: accounts, clock: clock)
    }

    static func tokenBodies(_ transport: ScriptedTransport) -> [String] {
        transport.requests.filter { $0.url == tokenURL }.map(\.body)
    }

    @Test func auth0PushFromTheMenuSignsInAndSyncsThePassword() throws {
        let world = Self.world()
        world.transport.on(Self.authenticatorsURL, 200, Self.authenticators)
        world.transport.on(Self.challengeURL, 200, #"{"challenge_type":"oob","oob_code":"OOB-1"}"#)
        world.transport.on(Self.tokenURL, 400, #"{"error":"authorization_pending"}"#)
        world.transport.on(Self.tokenURL, 429, #"{"error":"slow_down"}"#)
        world.transport.on(Self.tokenURL, 200, Self.tokens)
        let person = ScriptedConversation(answers: ["2"])
        let outcome = world.flow.authenticate(typedName: "alice", conversation: person, password: password("pw"))
        guard case .accepted(_, "alice", true) = outcome else {
            Issue.record("expected accepted, got \(outcome)")
            return
        }
        #expect(world.accounts.passwords["alice"] == "pw")
        // The list is asked for with the mfa_token; recovery codes and inactive ones are not offered.
        let list = try #require(world.transport.requests.first { $0.url == Self.authenticatorsURL })
        #expect(list.authorization == "Bearer MFA-TOKEN-1")
        #expect(person.transcript.first == "Choose how to confirm your sign-in:\n  1. a code from your authenticator app\n  2. a push to Auth0 Guardian (Alice's phone)\n  3. a code by SMS (XXXXXXXX8730)")
        let challenge = try #require(world.transport.requests.first { $0.url == Self.challengeURL })
        #expect(challenge.body == #"{"client_id":"linux-login","client_secret":"s3cret","mfa_token":"MFA-TOKEN-1","challenge_type":"oob","authenticator_id":"push|dev_3"}"#)
        let polls = Self.tokenBodies(world.transport).dropFirst()
        #expect(polls.count == 3)
        #expect(polls.allSatisfy { $0 == "grant_type=http%3A%2F%2Fauth0.com%2Foauth%2Fgrant-type%2Fmfa-oob&mfa_token=MFA-TOKEN-1&oob_code=OOB-1" })
        #expect(world.clock.slept == [5000, 5000, 10_000])
        #expect(person.transcript.contains("Approve the sign-in on your phone…"))
    }

    /// The device name Auth0 sends is shown on the console: control and format characters
    /// (a C1 CSI, a bidi override) are dropped.
    @Test func aHostileAuthenticatorNameShowsNoEscapes() {
        let value = JSONValue.parse(#"{"id":"push|dev_3","authenticator_type":"oob","active":true,"oob_channel":"auth0","name":"Bob\u009b2J\u202ephone\u001b[31m"}"#) ?? .null
        #expect(MFAAPI.method(fromAuth0: value)?.label == "a push to Auth0 Guardian (Bob2Jphone[31m)")
    }

    @Test func auth0CodeGetsThreeTries() {
        let world = Self.world()
        world.transport.on(Self.authenticatorsURL, 200, #"[{"id":"totp|dev_2","authenticator_type":"otp","active":true}]"#)
        world.transport.on(Self.tokenURL, 403, #"{"error":"invalid_grant","error_description":"Invalid otp_code."}"#)
        world.transport.on(Self.tokenURL, 403, #"{"error":"invalid_grant","error_description":"Invalid otp_code."}"#)
        world.transport.on(Self.tokenURL, 200, Self.tokens)
        let person = ScriptedConversation(answers: ["111111", "222222", "123456"])
        guard case .accepted = world.flow.authenticate(typedName: "alice", conversation: person, password: password("pw")) else {
            Issue.record("expected accepted")
            return
        }
        #expect(Self.tokenBodies(world.transport).last == "grant_type=http%3A%2F%2Fauth0.com%2Foauth%2Fgrant-type%2Fmfa-otp&mfa_token=MFA-TOKEN-1&otp=123456")
        #expect(person.transcript.filter { $0 == "Wrong code; try again." }.count == 2)
        // One method: no menu, no challenge call (Auth0 lets OTP skip it).
        #expect(!world.transport.requests.contains { $0.url == Self.challengeURL })
    }

    @Test func threeWrongCodesFailAndChangeNothing() {
        let world = Self.world()
        world.transport.on(Self.authenticatorsURL, 200, #"[{"id":"totp|dev_2","authenticator_type":"otp","active":true}]"#)
        world.transport.on(Self.tokenURL, 403, #"{"error":"invalid_grant","error_description":"Invalid otp_code."}"#)
        let person = ScriptedConversation(answers: ["1", "2", "3", "4"])
        #expect(world.flow.authenticate(typedName: "alice", conversation: person, password: password("pw")) == .rejected(.mfaFailed))
        #expect(Self.tokenBodies(world.transport).count == 4)
        #expect(person.transcript.last == "Too many wrong codes.")
        #expect(world.accounts.changes.isEmpty)
    }

    @Test func anSMSCodeIsTheBindingCode() {
        let world = Self.world()
        world.transport.on(Self.authenticatorsURL, 200, #"[{"id":"sms|dev_4","authenticator_type":"oob","active":true,"oob_channel":"sms"}]"#)
        world.transport.on(Self.challengeURL, 200, #"{"challenge_type":"oob","oob_code":"OOB-2","binding_method":"prompt"}"#)
        world.transport.on(Self.tokenURL, 200, Self.tokens)
        let person = ScriptedConversation(answers: ["654321"])
        guard case .accepted = world.flow.authenticate(typedName: "alice", conversation: person, password: password("pw")) else {
            Issue.record("expected accepted")
            return
        }
        #expect(person.transcript.contains("? Code sent to you by SMS: "))
        #expect(Self.tokenBodies(world.transport).last == "grant_type=http%3A%2F%2Fauth0.com%2Foauth%2Fgrant-type%2Fmfa-oob&mfa_token=MFA-TOKEN-1&oob_code=OOB-2&binding_code=654321")
    }

    @Test(arguments: [
        (#"{"error":"invalid_grant","error_description":"MFA Authorization rejected."}"#, RejectionReason.mfaFailed, "The sign-in was rejected on your phone."),
        (#"{"error":"expired_token","error_description":"mfa_token is expired"}"#, .mfaTimedOut, "The push expired before it was approved."),
    ])
    func aRejectedOrExpiredPushIsARefusal(_ body: String, _ reason: RejectionReason, _ message: String) {
        let world = Self.world()
        world.transport.on(Self.authenticatorsURL, 200, #"[{"id":"push|dev_3","authenticator_type":"oob","active":true,"oob_channel":"auth0"}]"#)
        world.transport.on(Self.challengeURL, 200, #"{"challenge_type":"oob","oob_code":"OOB-1"}"#)
        world.transport.on(Self.tokenURL, 403, body)
        let person = ScriptedConversation(answers: [])
        #expect(world.flow.authenticate(typedName: "alice", conversation: person, password: password("pw")) == .rejected(reason))
        #expect(person.transcript.last == message)
        #expect(world.accounts.changes.isEmpty)
    }

    @Test func aPushNotApprovedInTimeEnds() {
        let world = Self.world { $0.mfa = .always; $0.deviceTimeout = 30 }
        world.transport.on(Self.authenticatorsURL, 200, #"[{"id":"push|dev_3","authenticator_type":"oob","active":true,"oob_channel":"auth0"}]"#)
        world.transport.on(Self.challengeURL, 200, #"{"challenge_type":"oob","oob_code":"OOB-1"}"#)
        world.transport.on(Self.tokenURL, 400, #"{"error":"authorization_pending"}"#)
        let person = ScriptedConversation(answers: [])
        #expect(world.flow.authenticate(typedName: "alice", conversation: person, password: password("pw")) == .rejected(.mfaTimedOut))
        #expect(person.transcript.last == "The push was not approved within 30 seconds.")
    }

    @Test func theIdPGoingAwayMidMFAIsTheOfflineRule() {
        let world = Self.world()
        world.transport.on(Self.authenticatorsURL, 200, #"[{"id":"push|dev_3","authenticator_type":"oob","active":true,"oob_channel":"auth0"}]"#)
        world.transport.on(Self.challengeURL, 200, #"{"challenge_type":"oob","oob_code":"OOB-1"}"#)
        world.transport.on(Self.tokenURL, 400, #"{"error":"authorization_pending"}"#)
        world.transport.answers[Self.tokenURL]?.append(.failure(.connect("connection refused")))
        guard case .offlineRefused(let problem, .neverOnline) = world.flow.authenticate(typedName: "alice", conversation: ScriptedConversation(answers: []), password: password("pw")) else {
            Issue.record("expected the offline rule")
            return
        }
        #expect(problem.stage == .mfaToken && problem.kind == .unavailable)
    }

    @Test func noUsableAuthenticatorIsAnEnrollmentRefusal() {
        let world = Self.world()
        world.transport.on(Self.authenticatorsURL, 200, #"[{"id":"recovery-code|dev_1","authenticator_type":"recovery-code","active":true}]"#)
        #expect(world.flow.authenticate(typedName: "alice", conversation: ScriptedConversation(answers: []), password: password("pw")) == .rejected(.mfaEnrollmentRequired))
    }

    /// Where messages wait for a prompt (sshd), the push notice is a prompt answered with Enter.
    @Test func overSSHThePushNoticeIsAPrompt() {
        let world = Self.world()
        world.transport.on(Self.authenticatorsURL, 200, #"[{"id":"push|dev_3","authenticator_type":"oob","active":true,"oob_channel":"auth0"}]"#)
        world.transport.on(Self.challengeURL, 200, #"{"challenge_type":"oob","oob_code":"OOB-1"}"#)
        world.transport.on(Self.tokenURL, 200, Self.tokens)
        let person = ScriptedConversation(answers: [""], showsMessagesAtOnce: false)
        guard case .accepted = world.flow.authenticate(typedName: "alice", conversation: person, password: password("pw")) else {
            Issue.record("expected accepted")
            return
        }
        #expect(person.transcript == ["? Approve the sign-in on your phone.\nPress Enter once you have approved it on your phone: "])
    }

    @Test func mfaOffStillRefusesAndAsksNothingMore() {
        let world = Self.world { $0.mfa = .off }
        #expect(world.flow.authenticate(typedName: "alice", conversation: ScriptedConversation(answers: []), password: password("pw")) == .rejected(.mfaRequired))
        #expect(world.transport.requests.allSatisfy { $0.url != Self.authenticatorsURL })
    }

    // MARK: - Okta direct authentication

    @Test func oktaPushWithTheNumberToTap() throws {
        let world = Self.world(okta: true) { $0.oktaFactor = .push; $0.clientSecret = nil; $0.clientAuthentication = .none }
        world.transport.answers[Self.tokenURL] = []
        world.transport.on(Self.tokenURL, 403, #"{"error":"mfa_required","error_description":"Verify with an additional authenticator to complete the sign-in process.","mfa_token":"OKTA-MFA"}"#)
        world.transport.on(Self.oktaChallengeURL, 200, #"{"challenge_type":"http://auth0.com/oauth/grant-type/mfa-oob","oob_code":"OKTA-OOB","expires_in":300,"interval":5,"channel":"push","binding_method":"transfer","binding_code":"95"}"#)
        world.transport.on(Self.tokenURL, 400, #"{"error":"authorization_pending"}"#)
        world.transport.on(Self.tokenURL, 200, Self.tokens)
        let person = ScriptedConversation(answers: [])
        guard case .accepted = world.flow.authenticate(typedName: "alice", conversation: person, password: password("pw")) else {
            Issue.record("expected accepted")
            return
        }
        #expect(person.transcript.first == "Approve the sign-in on your phone: tap 95…")
        let challenge = try #require(world.transport.requests.first { $0.url == Self.oktaChallengeURL })
        #expect(challenge.body == "mfa_token=OKTA-MFA&challenge_types_supported=http%3A%2F%2Fauth0.com%2Foauth%2Fgrant-type%2Fmfa-oob%20http%3A%2F%2Fauth0.com%2Foauth%2Fgrant-type%2Fmfa-otp&channel_hint=push&client_id=linux-login")
        #expect(!world.transport.requests.contains { $0.url == Self.authenticatorsURL })
    }

    @Test func oktaAskOffersTheKindsDirectAuthenticationHas() {
        let world = Self.world(okta: true) { $0.oktaFactor = .ask }
        world.transport.on(Self.tokenURL, 200, Self.tokens)
        let person = ScriptedConversation(answers: ["2", "123456"])
        guard case .accepted = world.flow.authenticate(typedName: "alice", conversation: person, password: password("pw")) else {
            Issue.record("expected accepted")
            return
        }
        #expect(person.transcript.first == "Choose how to confirm your sign-in:\n  1. Okta Verify push\n  2. a code from Okta Verify or an authenticator app\n  3. a code by SMS")
        #expect(Self.tokenBodies(world.transport).last == "grant_type=http%3A%2F%2Fauth0.com%2Foauth%2Fgrant-type%2Fmfa-otp&mfa_token=MFA-TOKEN-1&otp=123456")
    }

    @Test func oktaDirectIsReadFromTheConfig() throws {
        let text = "[idp]\nprovider = okta\nokta_domain = https://example.okta.com\nokta_api = direct\n[okta]\nclient_id = 0oa1native\nscopes = openid profile groups\n"
        let config = try ConfigParser.parse(text, path: "/etc/cloudlogin/cloudlogin.conf",
                                            context: .init(fileIsPrivate: true, readSecretFile: { _ in .success(SecretBytes()) }, checkTrustedFile: { _ in nil })).get()
        #expect(config.isOktaDirect && config.usesMFAAPI && config.usesPasswordGrant)
        #expect(config.issuer == "https://example.okta.com/oauth2/default")
        #expect(config.clientID == "0oa1native" && config.scopes == ["openid", "profile", "groups"])
        let missing = ConfigParser.parse("[idp]\nprovider = okta\nokta_domain = https://example.okta.com\nokta_api = direct\n", path: "/c",
                                         context: .init(fileIsPrivate: true, readSecretFile: { _ in .success(SecretBytes()) }, checkTrustedFile: { _ in nil }))
        guard case .failure(let problem) = missing else {
            Issue.record("okta_api = direct without a client must be an error")
            return
        }
        #expect(problem.key == "okta.client_id")
    }
}
