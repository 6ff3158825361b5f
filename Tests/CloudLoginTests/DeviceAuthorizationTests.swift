@testable import CloudLogin
import Testing

/// MFA by the device authorization grant (RFC 8628) after the password, and device-only
/// sign-in: what is sent, what the person sees, and what each answer of the IdP comes to.
@Suite struct DeviceAuthorizationTests {
    static let fixtures = TokenFixtures.shared
    static let deviceURL = "https://idp.test/realms/corp/device"
    static let discovery = """
    {"issuer":"https://idp.test/realms/corp","token_endpoint":"\(fixtureTokenURL)","jwks_uri":"\(fixtureJWKSURL)",
     "userinfo_endpoint":"\(fixtureUserinfoURL)","device_authorization_endpoint":"\(deviceURL)"}
    """
    static let started = #"{"device_code":"dc-SECRET-1","user_code":"WDJB-MJHT","verification_uri":"https://idp.test/device","verification_uri_complete":"https://idp.test/device?user_code=WDJB-MJHT","expires_in":600,"interval":5}"#
    static let mfaRequired = #"{"error":"invalid_grant","error_codes":[50076]}"#
    static let pending = #"{"error":"authorization_pending"}"#
    static var approved: String {
        #"{"access_token":"at-1","token_type":"Bearer","id_token":"\#(fixtures.token("valid_rs256"))"}"#
    }

    /// An IdP that answers the password grant with `passwordAnswer`, then the polls in order.
    static func transport(passwordAnswer: (Int, String)? = (400, mfaRequired), polls: [(Int, String)]) -> ScriptedTransport {
        let transport = ScriptedTransport()
        transport.on(fixtureDiscoveryURL, 200, discovery)
        transport.on(fixtureJWKSURL, 200, fixtures.jwksText)
        transport.on(deviceURL, 200, started)
        if let passwordAnswer { transport.on(fixtureTokenURL, passwordAnswer.0, passwordAnswer.1) }
        for (status, body) in polls { transport.on(fixtureTokenURL, status, body) }
        return transport
    }

    struct World {
        var flow: LoginFlow
        var accounts: AccountTable
        var state: StateTable
        var clock: FixedClock
    }

    static func world(_ transport: ScriptedTransport, config change: (inout Config) -> Void = { $0.mfa = .whenRequired }) -> World {
        let accounts = AccountTable()
        let state = StateTable()
        let clock = FixedClock(fixtures.now)
        let config = fixtureConfig { config in
            config.usernameSuffix = ""
            change(&config)
        }
        let flow = LoginFlow(config: config, transport: transport, cache: MemoryCache(), accounts: accounts, state: state,
                             clock: clock, log: RecordingLog(), canChangeAccounts: true)
        return World(flow: flow, accounts: accounts, state: state, clock: clock)
    }

    static func polls(_ transport: ScriptedTransport) -> [String] {
        transport.requests.filter { $0.url == fixtureTokenURL && $0.body.contains("device_code") }.map(\.body)
    }

    @Test func passwordThenApprovalSignsInAndSyncsThePassword() throws {
        let transport = Self.transport(polls: [(400, Self.pending), (400, #"{"error":"slow_down"}"#), (400, Self.pending), (200, Self.approved)])
        let world = Self.world(transport)
        let person = ScriptedConversation(answers: [])
        let outcome = world.flow.authenticate(typedName: "alice", conversation: person, password: password("pw"))
        guard case .accepted(let identity, "alice", true) = outcome else {
            Issue.record("expected accepted, got \(outcome)")
            return
        }
        #expect(identity.subject == "alice")
        #expect(world.accounts.passwords["alice"] == "pw")
        // The device request and every poll come from CloudLogin's client.
        let start = try #require(transport.requests.first { $0.url == Self.deviceURL })
        #expect(start.body == "scope=openid%20profile%20email")
        #expect(start.authorization == "Basic bGludXgtbG9naW46czNjcmV0")
        let polls = Self.polls(transport)
        #expect(polls.count == 4)
        #expect(polls.allSatisfy { $0 == "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=dc-SECRET-1" })
        // RFC 8628 §3.5: the interval, and 5 s more after slow_down.
        #expect(world.clock.slept == [5000, 5000, 10_000, 10_000])
        // The person saw where to go and the code, then that CloudLogin waits; never the device code.
        let shown = person.transcript.joined(separator: "\n")
        #expect(shown.contains("To finish signing in, open https://idp.test/device and enter the code WDJB-MJHT"))
        #expect(shown.contains("Waiting for your approval (up to 120 seconds)"))
        #expect(!shown.contains("dc-SECRET-1"))
    }

    /// The minutes the person takes to approve do not eat the time the account tools and the
    /// state lock have (`timeout` + 30 s of CloudLogin's own work): every deadline of the
    /// sign-in shares one `PersonTime`.
    @Test func thePersonsTimeMovesTheLocalDeadlineToo() {
        let transport = Self.transport(polls: Array(repeating: (400, Self.pending), count: 20) + [(200, Self.approved)])
        let clock = FixedClock(Self.fixtures.now)
        let local = Deadline(clock: clock, seconds: 10 + LoginFlow.localUpdateSeconds, personTime: PersonTime())
        let seams = SignInSeams(transport: transport, cache: MemoryCache(), accounts: AccountTable(), state: StateTable(), clock: clock,
                                log: RecordingLog(), canChangeAccounts: true, deadline: local)
        let flow = LoginFlow(config: fixtureConfig { $0.usernameSuffix = ""; $0.mfa = .whenRequired }, seams: seams)
        guard case .accepted = flow.authenticate(typedName: "alice", conversation: ScriptedConversation(answers: []), password: password("pw")) else {
            Issue.record("expected accepted")
            return
        }
        #expect(clock.slept.reduce(0, +) == 105_000)
        #expect(local.remainingMilliseconds == 40_000)
    }

    @Test(arguments: [
        (#"{"error":"access_denied"}"#, RejectionReason.mfaFailed, "The sign-in was denied."),
        (#"{"error":"expired_token"}"#, .mfaTimedOut, "The code expired before the sign-in was approved."),
    ])
    func aDeniedOrExpiredApprovalIsARejectionThatChangesNothing(_ body: String, _ reason: RejectionReason, _ message: String) {
        let transport = Self.transport(polls: [(400, Self.pending), (400, body)])
        let world = Self.world(transport)
        let person = ScriptedConversation(answers: [])
        #expect(world.flow.authenticate(typedName: "alice", conversation: person, password: password("pw")) == .rejected(reason))
        #expect(person.transcript.last == message)
        #expect(world.accounts.changes.isEmpty)
        #expect(world.state.records.isEmpty)
    }

    @Test func theStepEndsAtDeviceTimeout() {
        let transport = Self.transport(polls: [(400, Self.pending)])
        let world = Self.world(transport) { $0.mfa = .whenRequired; $0.deviceTimeout = 30 }
        let person = ScriptedConversation(answers: [])
        #expect(world.flow.authenticate(typedName: "alice", conversation: person, password: password("pw")) == .rejected(.mfaTimedOut))
        #expect(Self.polls(transport).count == 5)
        #expect(person.transcript.last == "The sign-in was not approved within 30 seconds.")
        #expect(world.accounts.changes.isEmpty)
    }

    /// Someone else approving the code on their own phone signs nobody in.
    @Test func anApprovalByAnotherUserIsRefused() {
        let transport = Self.transport(polls: [(200, #"{"access_token":"at-1","token_type":"Bearer"}"#)])
        transport.on(fixtureUserinfoURL, 200, #"{"sub":"bob-sub","preferred_username":"bob"}"#)
        let world = Self.world(transport)
        let outcome = world.flow.authenticate(typedName: "alice", conversation: ScriptedConversation(answers: []), password: password("pw"))
        #expect(outcome == .refusedHere(.approvedByAnotherUser))
        #expect(world.accounts.changes.isEmpty)
        #expect(world.state.records.isEmpty)
    }

    /// `mfa = always`: the approval must name the subject the password grant named.
    @Test func alwaysRunsTheStepAfterAYesAndBindsItToThatSubject() {
        let transport = Self.transport(passwordAnswer: (200, Self.approved), polls: [(400, Self.pending), (200, #"{"access_token":"at-1","token_type":"Bearer"}"#)])
        transport.on(fixtureUserinfoURL, 200, #"{"sub":"alice-2","preferred_username":"alice"}"#)
        let world = Self.world(transport) { $0.mfa = .always }
        let outcome = world.flow.authenticate(typedName: "alice", conversation: ScriptedConversation(answers: []), password: password("pw"))
        #expect(outcome == .refusedHere(.approvedByAnotherUser))
        #expect(Self.polls(transport).count == 2)
        #expect(world.accounts.changes.isEmpty)
    }

    @Test func offStillRefusesMFARequired() {
        let transport = Self.transport(polls: [(200, Self.approved)])
        let world = Self.world(transport) { $0.mfa = .off }
        #expect(world.flow.authenticate(typedName: "alice", password: password("pw")) == .rejected(.mfaRequired))
        #expect(!transport.requests.contains { $0.url == Self.deviceURL })
    }

    /// An "MFA required" that does not say the password was right starts nothing: the password
    /// would be synced unchecked.
    @Test func anMFARequiredThatDoesNotVerifyThePasswordStartsNothing() {
        let okta = #"{"error":"invalid_grant","error_description":"Resource owner password credentials cannot be used with MFA enabled."}"#
        let transport = Self.transport(passwordAnswer: (400, okta), polls: [(200, Self.approved)])
        let world = Self.world(transport)
        #expect(world.flow.authenticate(typedName: "alice", password: password("pw")) == .rejected(.mfaRequired))
        #expect(!transport.requests.contains { $0.url == Self.deviceURL })
    }

    @Test func theIdPGoingAwayMidPollIsTheOfflineRule() {
        let transport = Self.transport(polls: [(400, Self.pending)])
        transport.answers[fixtureTokenURL]?.append(.failure(.connect("connection refused")))
        let world = Self.world(transport)
        // Managed and recently online: pam_unix may check the synced password.
        world.accounts.uids["alice"] = 2001
        world.accounts.groups[ManagedMark.group] = ["alice"]
        world.state.records["alice"] = ManagedUser(name: "alice", subject: "alice", idpLogin: "alice", origin: .created, lastOnlineSuccess: Self.fixtures.now)
        let outcome = world.flow.authenticate(typedName: "alice", conversation: ScriptedConversation(answers: []), password: password("pw"))
        guard case .idpUnavailable(let problem, "alice") = outcome else {
            Issue.record("expected the offline rule, got \(outcome)")
            return
        }
        #expect(problem.stage == .deviceToken)
    }

    /// sshd shows messages only with a prompt: the code and the QR code are the prompt's text.
    @Test func whereMessagesWaitForAPromptTheCodeIsAPrompt() {
        let transport = Self.transport(polls: [(200, Self.approved)])
        let world = Self.world(transport)
        let person = ScriptedConversation(answers: [""], showsMessagesAtOnce: false)
        guard case .accepted = world.flow.authenticate(typedName: "alice", conversation: person, password: password("pw")) else {
            Issue.record("expected accepted")
            return
        }
        #expect(person.transcript.count == 1)
        let prompt = person.transcript.first ?? ""
        #expect(prompt.hasPrefix("? To finish signing in, open https://idp.test/device and enter the code WDJB-MJHT"))
        #expect(prompt.hasSuffix("Press Enter once you have approved the sign-in: "))
    }

    /// Someone who approves at once but presses Enter after `device_timeout` has approved in
    /// time: the Enter makes one more poll.
    @Test func aLateEnterStillGetsItsPoll() {
        final class SlowSSHPerson: Conversation {
            let clock: FixedClock
            init(clock: FixedClock) { self.clock = clock }
            var showsMessagesAtOnce: Bool { false }
            func ask(_ prompt: String, secret: Bool) -> SecretBytes? {
                clock.sleep(milliseconds: 200_000)
                return SecretBytes()
            }
            func tell(_ text: String) -> Bool { true }
        }
        let transport = Self.transport(polls: [(200, Self.approved)])
        let world = Self.world(transport)
        guard case .accepted = world.flow.authenticate(typedName: "alice", conversation: SlowSSHPerson(clock: world.clock), password: password("pw")) else {
            Issue.record("expected accepted")
            return
        }
        #expect(Self.polls(transport).count == 1)
    }

    @Test func cancellingAtThePromptEndsTheStepAtOnce() {
        let transport = Self.transport(polls: [(200, Self.approved)])
        let world = Self.world(transport)
        let person = ScriptedConversation(answers: [], showsMessagesAtOnce: false)
        #expect(world.flow.authenticate(typedName: "alice", conversation: person, password: password("pw")) == .rejected(.abandoned))
        #expect(Self.polls(transport).isEmpty)
    }

    @Test func aConversationThatCannotShowTheCodeEndsTheStep() {
        let transport = Self.transport(polls: [(200, Self.approved)])
        let world = Self.world(transport)
        #expect(world.flow.authenticate(typedName: "alice", conversation: NoConversation(), password: password("pw")) == .rejected(.abandoned))
        #expect(Self.polls(transport).isEmpty)
    }

    @Test func deviceOnlyAsksNoPasswordAndLocksTheLocalOne() {
        let transport = Self.transport(passwordAnswer: nil, polls: [(400, Self.pending), (200, Self.approved)])
        let world = Self.world(transport) { $0.passwordGrant = false; $0.mfa = .always }
        world.accounts.uids["alice"] = 2001
        world.accounts.groups[ManagedMark.group] = ["alice"]
        world.accounts.passwords["alice"] = "old synced"
        world.state.records["alice"] = ManagedUser(name: "alice", subject: "alice", idpLogin: "alice", origin: .created, lastOnlineSuccess: 0)
        var asked = false
        let outcome = world.flow.authenticate(typedName: "alice", conversation: ScriptedConversation(answers: [])) {
            asked = true
            return .password(SecretBytes("pw".utf8))
        }
        guard case .accepted(_, "alice", false) = outcome else {
            Issue.record("expected accepted, got \(outcome)")
            return
        }
        #expect(!asked)
        #expect(!transport.requests.contains { $0.body.contains("grant_type=password") })
        #expect(world.accounts.changes.contains("usermod --lock alice"))
        #expect(world.accounts.passwords["alice"] == nil)
    }

    @Test func deviceOnlyHasNoOfflineSignIn() {
        let transport = Self.transport(passwordAnswer: nil, polls: [])
        transport.answers[Self.deviceURL] = [.failure(.connect("connection refused"))]
        let world = Self.world(transport) { $0.passwordGrant = false; $0.mfa = .always }
        world.accounts.uids["alice"] = 2001
        world.accounts.groups[ManagedMark.group] = ["alice"]
        world.state.records["alice"] = ManagedUser(name: "alice", subject: "alice", idpLogin: "alice", origin: .created, lastOnlineSuccess: Self.fixtures.now)
        guard case .offlineRefused(_, .deviceOnly) = world.flow.authenticate(typedName: "alice", password: password("pw")) else {
            Issue.record("expected offline refused")
            return
        }
    }

    @Test(arguments: [
        ("alice", "alice", "", true),
        ("alice", "alice@example.com", "", true),   // an IdP whose login is short, name_claim = email
        ("alice@example.com", "alice@example.com", "@example.com", true),
        ("alice@example.com", "ALICE@Example.com", "@example.com", true),
        ("alice@example.com", "alice@contractor.example", "", false),
        ("alice@example.com", "alice", "@example.com", true),
        ("alice", "bob", "", false),
        ("alice", "bob@example.com", "", false),
        ("alice@example.com", "alice@contractor.example", "@example.com", false),
    ])
    func theApprovalMustNameTheTypedLogin(_ login: String, _ claim: String, _ suffix: String, _ expected: Bool) {
        let identity = Identity(subject: "s", idpLogin: login, claims: ["preferred_username": .string(claim)])
        let config = fixtureConfig { $0.usernameSuffix = suffix }
        #expect(DeviceAuthorization.names(identity, login: login, config: config) == expected)
    }

    @Test(arguments: [
        #"{"device_code":"d","user_code":"AB\u001b[2JCD","verification_uri":"https://idp.test/device","expires_in":600}"#,
        #"{"device_code":"d","user_code":"ABCD","verification_uri":"http://idp.test/device","expires_in":600}"#,
        #"{"device_code":"d","user_code":"ABCD","verification_uri":"https://idp.test/device\nEvil","expires_in":600}"#,
        #"{"user_code":"ABCD","verification_uri":"https://idp.test/device","expires_in":600}"#,
        #"{"device_code":"d","user_code":"ABCD","verification_uri":"https://idp.test/device","expires_in":0}"#,
        #"{"device_code":"d","user_code":"ABCD","verification_uri":"https://idp.test/device","verification_uri_complete":"javascript:x","expires_in":60}"#,
        #"[1,2]"#,
    ])
    func aHostileDeviceAnswerShowsNothingAndIsAProblem(_ body: String) {
        let transport = Self.transport(polls: [(200, Self.approved)])
        transport.answers[Self.deviceURL] = [.success(.init(status: 200, body: body))]
        let world = Self.world(transport)
        let person = ScriptedConversation(answers: [])
        let outcome = world.flow.authenticate(typedName: "alice", conversation: person, password: password("pw"))
        guard case .offlineRefused(let problem, _) = outcome else {
            Issue.record("expected a problem, got \(outcome)")
            return
        }
        #expect(problem.stage == .deviceAuthorization)
        #expect(person.transcript.isEmpty)
        #expect(Self.polls(transport).isEmpty)
    }

    @Test func anIdPWithoutTheDeviceGrantIsMisconfigured() {
        let transport = Self.transport(polls: [])
        transport.answers[fixtureDiscoveryURL] = [.success(.init(status: 200, body: fixtureDiscovery))]
        let world = Self.world(transport)
        guard case .offlineRefused(let problem, _) = world.flow.authenticate(typedName: "alice", password: password("pw")) else {
            Issue.record("expected a problem")
            return
        }
        #expect(problem.kind == .misconfigured)
        #expect(problem.description.contains("device_authorization_endpoint"))
    }
}
