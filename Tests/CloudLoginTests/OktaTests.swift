@testable import CloudLogin
import Testing

/// The Okta Authentication API flow against scripted answers shaped like Okta's documentation.
@Suite struct OktaTests {
    static let base = "https://example.okta.com"
    static let authn = "\(base)/api/v1/authn"
    static let cancelURL = "\(base)/api/v1/authn/cancel"
    static let user = #"{"user":{"id":"00ub0oNGTSWTBKOLGLNR","passwordChanged":"2015-09-08T20:14:45.000Z","profile":{"login":"dade.murphy@example.com","firstName":"Dade","lastName":"Murphy","locale":"en_US","timeZone":"America/Los_Angeles"}}}"#

    static func success() -> String {
        #"{"expiresAt":"2015-11-03T10:15:57.000Z","status":"SUCCESS","sessionToken":"00Fpzf4en68pCXTsMjcX8JPMctzN2Wiw4LDOBL_9pe","_embedded":\#(user)}"#
    }

    static func factor(_ id: String, _ type: String, provider: String = "OKTA", profile: String = "{}") -> String {
        #"{"id":"\#(id)","factorType":"\#(type)","provider":"\#(provider)","vendorName":"\#(provider)","profile":\#(profile),"_links":{"verify":{"href":"\#(base)/api/v1/authn/factors/\#(id)/verify","hints":{"allow":["POST"]}}}}"#
    }

    static func mfaRequired(_ factors: [String], key: String = "factors") -> String {
        #"{"stateToken":"007ucIX7PATyn94hsHfOLVaXAmOBkKHWnOOLG43bsb","expiresAt":"2015-11-03T10:15:57.000Z","status":"MFA_REQUIRED","_embedded":{"user":{"id":"00ub0oNGTSWTBKOLGLNR","profile":{"login":"dade.murphy@example.com"}},"\#(key)":[\#(factors.joined(separator: ","))]},"_links":{"cancel":{"href":"\#(cancelURL)","hints":{"allow":["POST"]}}}}"#
    }

    static func challenge(_ factorID: String, result: String, number: Int? = nil) -> String {
        let challengeMember = number.map { #","_embedded":{"challenge":{"correctAnswer":\#($0)}}"# } ?? ""
        return #"{"stateToken":"007ucIX7PATyn94hsHfOLVaXAmOBkKHWnOOLG43bsb","status":"MFA_CHALLENGE","factorResult":"\#(result)","_embedded":{"factor":{"id":"\#(factorID)","factorType":"push","provider":"OKTA","profile":{"name":"Dade's iPhone"}\#(challengeMember)}},"_links":{"next":{"name":"poll","href":"\#(base)/api/v1/authn/factors/\#(factorID)/verify/poll-x1","hints":{"allow":["POST"]}},"cancel":{"href":"\#(cancelURL)","hints":{"allow":["POST"]}}}}"#
    }

    static let totp = factor("ostf1", "token:software:totp")
    static let googleTOTP = factor("ostf2", "token:software:totp", provider: "GOOGLE")
    static let pushFactor = factor("opf1", "push", profile: #"{"name":"Dade's iPhone","platform":"IOS"}"#)
    static let sms = factor("sms1", "sms", profile: #"{"phoneNumber":"+1 XXX-XXX-1337"}"#)
    static let question = factor("ufs1", "question", profile: #"{"question":"favorite_art_piece","questionText":"What is your favorite piece of art?"}"#)
    static let webauthn = factor("fwf1", "webauthn", provider: "FIDO")
    static let invalidCode = #"{"errorCode":"E0000068","errorSummary":"Invalid Passcode/Answer","errorLink":"E0000068","errorId":"oael69itLSMTbioahsUZ-7xiQ","errorCauses":[{"errorSummary":"Your passcode doesn't match our records. Please try again."}]}"#

    final class World {
        let transport = ScriptedTransport()
        let clock = FixedClock(1_900_000_000)
        var config: Config = {
            var config = Config()
            config.provider = .okta
            config.oktaDomain = OktaTests.base
            return config
        }()

        func run(answers: [String] = [], password: String = "correct horse") -> (IdentityVerdict, ScriptedConversation, SecretBytes) {
            let conversation = ScriptedConversation(answers: answers)
            let secret = SecretBytes(password.utf8)
            let verdict = OktaAuthentication(config: config, transport: transport, clock: clock, log: RecordingLog())
                .verifyPassword(login: "dade.murphy@example.com", password: secret, conversation: conversation,
                                deadline: Deadline(clock: clock, seconds: 10))
            return (verdict, conversation, secret)
        }

        var posted: [String] { transport.requests.map(\.url) }
        var cancelled: Bool { posted.contains(OktaTests.cancelURL) }
    }

    @Test func passwordOnly() throws {
        let world = World()
        world.transport.on(Self.authn, 200, Self.success())
        let (verdict, _, _) = world.run()
        guard case .accepted(let identity) = verdict else { Issue.record("\(verdict)"); return }
        #expect(identity.subject == "00ub0oNGTSWTBKOLGLNR")
        #expect(identity.claims["preferred_username"]?.stringValue == "dade.murphy@example.com")
        #expect(identity.displayName == "Dade Murphy")
        let body = try #require(world.transport.requests.first?.body)
        #expect(body == #"{"username":"dade.murphy@example.com","password":"correct horse","options":{"multiOptionalFactorEnroll":false,"warnBeforePasswordExpired":true}}"#)
    }

    @Test func passwordWithQuotesIsEscaped() {
        let world = World()
        world.transport.on(Self.authn, 200, Self.success())
        _ = world.run(password: "a\"b\\c\u{1}")
        #expect(world.transport.requests.first?.body.contains(#""password":"a\"b\\c\u0001""#) == true)
    }

    @Test func badCredentials() {
        let world = World()
        world.transport.on(Self.authn, 401, #"{"errorCode":"E0000004","errorSummary":"Authentication failed","errorLink":"E0000004","errorId":"oaeuHRrvMnuRga5UEetS3ti7w","errorCauses":[]}"#)
        #expect(world.run().0 == .rejected(.badCredentials))
    }

    @Test(arguments: ["factors", "factor"])
    func menuOffersOnlySupportedFactorsAndTOTPWorks(_ key: String) {
        let world = World()
        world.transport.on(Self.authn, 200, Self.mfaRequired([Self.question, Self.totp, Self.webauthn, Self.pushFactor], key: key))
        world.transport.on("\(Self.base)/api/v1/authn/factors/ostf1/verify", 200, Self.success())
        let (verdict, conversation, _) = world.run(answers: ["1", "123456"])
        guard case .accepted = verdict else { Issue.record("\(verdict)"); return }
        let menu = conversation.transcript.first { $0.hasPrefix("Choose") } ?? ""
        #expect(menu.contains("1. Okta Verify code"))
        #expect(menu.contains("2. Okta Verify push (Dade's iPhone)"))
        #expect(!menu.contains("3."))
        #expect(!menu.contains("question") && !menu.contains("webauthn"))
        #expect(world.transport.requests.last?.body.contains(#""passCode":"123456""#) == true)
        #expect(world.transport.requests.last?.body.contains(#""stateToken":"007ucIX7PATyn94hsHfOLVaXAmOBkKHWnOOLG43bsb""#) == true)
    }

    @Test func wrongCodeThenRight() {
        let world = World()
        world.config.oktaFactor = .totp
        world.transport.on(Self.authn, 200, Self.mfaRequired([Self.googleTOTP]))
        let verify = "\(Self.base)/api/v1/authn/factors/ostf2/verify"
        world.transport.answers[verify] = [.success(.init(status: 403, body: Self.invalidCode)), .success(.init(status: 200, body: Self.success()))]
        let (verdict, conversation, _) = world.run(answers: ["000000", "123456"])
        guard case .accepted = verdict else { Issue.record("\(verdict)"); return }
        #expect(conversation.transcript.contains("That code is not right; try again."))
        #expect(conversation.transcript.contains("? Google Authenticator code: "))
    }

    /// A transport that takes `cost` milliseconds of the test clock per request and records the
    /// time each request was given.
    final class SlowTransport: HTTPTransport {
        let inner: ScriptedTransport
        let clock: FixedClock
        let cost: Int64
        private(set) var given: [Int64] = []
        init(_ inner: ScriptedTransport, clock: FixedClock, cost: Int64) { (self.inner, self.clock, self.cost) = (inner, clock, cost) }
        func send(_ request: HTTPRequest, deadline: Deadline) -> Result<HTTPResponse, TransportError> {
            given.append(deadline.remainingMilliseconds)
            clock.sleep(milliseconds: cost)
            return inner.send(request, deadline: deadline)
        }
    }

    /// A person who takes a minute to answer each prompt.
    final class SlowPerson: Conversation {
        let inner: ScriptedConversation
        let clock: FixedClock
        init(_ answers: [String], clock: FixedClock) { (inner, self.clock) = (ScriptedConversation(answers: answers), clock) }
        func ask(_ prompt: String, secret: Bool) -> SecretBytes? {
            clock.sleep(milliseconds: 60_000)
            return inner.ask(prompt, secret: secret)
        }
        func tell(_ text: String) -> Bool { inner.tell(text) }
    }

    /// One deadline for all of Okta's steps: each request gets what is left of `timeout`, and
    /// the minute the person takes to type the code is not counted.
    @Test func oktaStepsShareTheSignInsDeadlineButNotThePersonsTime() {
        let world = World()
        world.transport.on(Self.authn, 200, Self.mfaRequired([Self.totp]))
        world.transport.on("\(Self.base)/api/v1/authn/factors/ostf1/verify", 403, Self.invalidCode)
        world.transport.on(Self.cancelURL, 200, #"{"status":"UNAUTHENTICATED"}"#)
        let slow = SlowTransport(world.transport, clock: world.clock, cost: 3000)
        let verdict = OktaAuthentication(config: world.config, transport: slow, clock: world.clock, log: RecordingLog())
            .verifyPassword(login: "dade.murphy@example.com", password: SecretBytes("pw".utf8),
                            conversation: SlowPerson(["1", "2", "3"], clock: world.clock), deadline: Deadline(clock: world.clock, seconds: 10))
        // authn (10 s left), verify (7), verify (4), verify (1): the fourth request has no time
        // for another, so the cancel gets nothing; the typing minutes never count.
        #expect(Array(slow.given.prefix(4)) == [10_000, 7_000, 4_000, 1_000])
        #expect(verdict == .rejected(.mfaFailed))
    }

    @Test func threeWrongCodesFailAndCancel() {
        let world = World()
        world.transport.on(Self.authn, 200, Self.mfaRequired([Self.totp]))
        world.transport.on("\(Self.base)/api/v1/authn/factors/ostf1/verify", 403, Self.invalidCode)
        world.transport.on(Self.cancelURL, 200, #"{"status":"UNAUTHENTICATED"}"#)
        let (verdict, _, _) = world.run(answers: ["1", "2", "3"])
        #expect(verdict == .rejected(.mfaFailed))
        #expect(world.posted.filter { $0.hasSuffix("/verify") }.count == 3)
        #expect(world.cancelled)
    }

    @Test func pushApprovedWithNumberChallenge() {
        let world = World()
        world.config.oktaFactor = .push
        world.transport.on(Self.authn, 200, Self.mfaRequired([Self.totp, Self.pushFactor]))
        world.transport.on("\(Self.base)/api/v1/authn/factors/opf1/verify", 200, Self.challenge("opf1", result: "WAITING", number: 42))
        let poll = "\(Self.base)/api/v1/authn/factors/opf1/verify/poll-x1"
        world.transport.answers[poll] = [.success(.init(status: 200, body: Self.challenge("opf1", result: "WAITING"))),
                                         .success(.init(status: 200, body: Self.success()))]
        let (verdict, conversation, _) = world.run()
        guard case .accepted = verdict else { Issue.record("\(verdict)"); return }
        #expect(conversation.transcript.contains("Approve the sign-in on Okta Verify: tap 42 on your phone."))
        #expect(world.posted.filter { $0 == poll }.count == 2)
        #expect(world.clock.slept.allSatisfy { $0 >= OktaPush.pollIntervalMilliseconds })
    }

    @Test(arguments: [("REJECTED", RejectionReason.mfaFailed), ("TIMEOUT", .mfaTimedOut)])
    func pushNotApproved(_ result: String, _ reason: RejectionReason) {
        let world = World()
        world.config.oktaFactor = .push
        world.transport.on(Self.authn, 200, Self.mfaRequired([Self.pushFactor]))
        world.transport.on("\(Self.base)/api/v1/authn/factors/opf1/verify", 200, Self.challenge("opf1", result: "WAITING"))
        world.transport.on("\(Self.base)/api/v1/authn/factors/opf1/verify/poll-x1", 200, Self.challenge("opf1", result: result))
        world.transport.on(Self.cancelURL, 200, #"{"status":"UNAUTHENTICATED"}"#)
        #expect(world.run().0 == .rejected(reason))
        #expect(world.cancelled)
    }

    @Test func pushNeverAnsweredStopsAtPushTimeout() {
        let world = World()
        world.config.oktaFactor = .push
        world.config.oktaPushTimeout = 10
        world.transport.on(Self.authn, 200, Self.mfaRequired([Self.pushFactor]))
        world.transport.on("\(Self.base)/api/v1/authn/factors/opf1/verify", 200, Self.challenge("opf1", result: "WAITING"))
        world.transport.on("\(Self.base)/api/v1/authn/factors/opf1/verify/poll-x1", 200, Self.challenge("opf1", result: "WAITING"))
        #expect(world.run().0 == .rejected(.mfaTimedOut))
        #expect(world.clock.slept.reduce(0, +) <= 10_000)
        #expect(world.cancelled)
    }

    @Test func pushWaitsForTheRateLimitWindowWhenOktaSaysItIsUsedUp() {
        let world = World()
        world.config.oktaFactor = .push
        world.transport.on(Self.authn, 200, Self.mfaRequired([Self.pushFactor]))
        let reset = String(world.clock.seconds + 7)
        world.transport.answers["\(Self.base)/api/v1/authn/factors/opf1/verify"] = [
            .success(.init(status: 200, body: Self.challenge("opf1", result: "WAITING"),
                           headers: ["x-rate-limit-remaining": "0", "x-rate-limit-reset": reset]))]
        world.transport.on("\(Self.base)/api/v1/authn/factors/opf1/verify/poll-x1", 200, Self.success())
        guard case .accepted = world.run().0 else { Issue.record("not accepted"); return }
        #expect(world.clock.slept.first == 7000)
    }

    /// Neither a 429 to a poll (a rate limit) nor a factorResult CloudLogin does not act on
    /// (CANCELLED, or one Okta might add) decides the push: it is polled on until Okta decides.
    @Test(arguments: [
        ("WAITING", 429, #"{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}"#),
        ("SOMETHING_NEW", 200, OktaTests.challenge("opf1", result: "CANCELLED")),
    ])
    func pushRespectsRateLimitsAndPollsOnThroughUnknownResults(_ firstResult: String, _ pollStatus: Int, _ pollBody: String) {
        let world = World()
        world.config.oktaFactor = .push
        world.transport.on(Self.authn, 200, Self.mfaRequired([Self.pushFactor]))
        world.transport.on("\(Self.base)/api/v1/authn/factors/opf1/verify", 200, Self.challenge("opf1", result: firstResult))
        let poll = "\(Self.base)/api/v1/authn/factors/opf1/verify/poll-x1"
        world.transport.answers[poll] = [.success(.init(status: pollStatus, body: pollBody)),
                                         .success(.init(status: 200, body: Self.success()))]
        guard case .accepted = world.run().0 else { Issue.record("the poll answer ended the sign-in"); return }
        #expect(world.posted.filter { $0 == poll }.count == 2)
    }

    /// Okta's names read into the typed values and back unchanged, known or not (logs and
    /// messages show Okta's own name).
    @Test func oktaNamesAreTypedAndKeptAsSent() {
        for status in OktaTransaction.Status.known {
            #expect(OktaTransaction.Status(status.name) == status)
        }
        #expect(OktaTransaction.Status("MFA_REQUIRED") == .mfaRequired)
        #expect(OktaTransaction.Status("SOMETHING_NEW") == .other("SOMETHING_NEW"))
        #expect(OktaTransaction.Status("mfa_required") == .other("mfa_required"))
        #expect("\(OktaTransaction.Status.other("X_Y"))" == "X_Y")
        for result in OktaTransaction.FactorResult.known {
            #expect(OktaTransaction.FactorResult(result.name) == result)
        }
        #expect(OktaTransaction.FactorResult("TIMEOUT") == .timeout)
        #expect(OktaTransaction.FactorResult("") == .other(""))
        for code in OktaError.Code.known {
            #expect(OktaError.Code(code.name) == code)
        }
        #expect(OktaError.Code("E0000068") == .invalidPasscode)
        #expect(OktaError.Code("E0000047") == .other("E0000047"))
        let transaction = OktaTransaction(.object(["status": .string("MFA_CHALLENGE"), "factorResult": .string("REJECTED")]))
        #expect(transaction?.status == .mfaChallenge)
        #expect(transaction?.factorResult == .rejected)
        #expect(OktaTransaction(.object(["status": .string("")])) == nil)
    }

    @Test func smsSendsThenAsks() {
        let world = World()
        world.config.oktaFactor = .sms
        world.transport.on(Self.authn, 200, Self.mfaRequired([Self.sms]))
        let verify = "\(Self.base)/api/v1/authn/factors/sms1/verify"
        world.transport.answers[verify] = [
            .success(.init(status: 200, body: #"{"stateToken":"st2","status":"MFA_CHALLENGE","factorResult":"CHALLENGE","_embedded":{"factor":{"id":"sms1","factorType":"sms","provider":"OKTA","profile":{"phoneNumber":"+1 XXX-XXX-1337"}}},"_links":{"next":{"name":"verify","href":"\#(verify)"},"cancel":{"href":"\#(Self.cancelURL)"}}}"#)),
            .success(.init(status: 200, body: Self.success()))]
        let (verdict, conversation, _) = world.run(answers: ["654321"])
        guard case .accepted = verdict else { Issue.record("\(verdict)"); return }
        #expect(conversation.transcript.contains("? SMS code: "))
        #expect(world.transport.requests.last?.body == #"{"stateToken":"st2","passCode":"654321"}"#)
    }

    @Test func passwordWarnTellsAndSkips() {
        let world = World()
        world.transport.on(Self.authn, 200, #"{"stateToken":"st","status":"PASSWORD_WARN","_embedded":{"user":{"id":"00u1"},"policy":{"expiration":{"passwordExpireDays":3},"complexity":{"minLength":8}}},"_links":{"skip":{"name":"skip","href":"\#(Self.base)/api/v1/authn/skip"},"cancel":{"href":"\#(Self.cancelURL)"}}}"#)
        world.transport.on("\(Self.base)/api/v1/authn/skip", 200, Self.success())
        let (verdict, conversation, _) = world.run()
        guard case .accepted = verdict else { Issue.record("\(verdict)"); return }
        #expect(conversation.transcript.contains("Your Okta password expires in 3 days; change it soon."))
    }

    @Test func expiredPasswordIsChangedAndBecomesTheSyncedOne() {
        let world = World()
        let change = "\(Self.base)/api/v1/authn/credentials/change_password"
        world.transport.on(Self.authn, 200, #"{"stateToken":"st","status":"PASSWORD_EXPIRED","_embedded":{"user":{"id":"00u1"},"policy":{"complexity":{"minLength":8}}},"_links":{"next":{"name":"changePassword","href":"\#(change)"},"cancel":{"href":"\#(Self.cancelURL)"}}}"#)
        world.transport.answers[change] = [
            .success(.init(status: 403, body: #"{"errorCode":"E0000080","errorSummary":"The password does not meet the complexity requirements of the current password policy.","errorCauses":[{"errorSummary":"Password requirements were not met."}]}"#)),
            .success(.init(status: 200, body: Self.success()))]
        let (verdict, conversation, secret) = world.run(answers: ["short", "short", "New secret 2", "Other", "New secret 2", "New secret 2"])
        guard case .accepted = verdict else { Issue.record("\(verdict)"); return }
        #expect(conversation.transcript.contains("Okta did not accept the new password: Password requirements were not met.."))
        #expect(conversation.transcript.contains("The passwords do not match."))
        #expect(secret.withBytes { String(decoding: $0, as: UTF8.self) } == "New secret 2")
        #expect(world.transport.requests.last?.body == #"{"stateToken":"st","oldPassword":"correct horse","newPassword":"New secret 2"}"#)
    }

    @Test(arguments: [
        ("LOCKED_OUT", RejectionReason.lockedOut),
        ("MFA_ENROLL", .mfaEnrollmentRequired),
        ("MFA_ENROLL_ACTIVATE", .mfaEnrollmentRequired),
        ("RECOVERY", .recoveryInProgress),
        ("UNAUTHENTICATED", .unsupportedState),
        ("SOMETHING_NEW", .unsupportedState),
    ])
    func statesThatEndTheSignIn(_ status: String, _ reason: RejectionReason) {
        let world = World()
        world.transport.on(Self.authn, 200, #"{"stateToken":"st","status":"\#(status)","_links":{"cancel":{"href":"\#(Self.cancelURL)"}}}"#)
        world.transport.on(Self.cancelURL, 200, #"{"status":"UNAUTHENTICATED"}"#)
        #expect(world.run().0 == .rejected(reason))
        #expect(world.cancelled)
    }

    @Test(arguments: [408, 429, 503])
    func unavailable(_ status: Int) {
        let world = World()
        world.transport.on(Self.authn, status, #"{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}"#)
        let problem = IdPProblem(stage: .oktaAuthn, cause: .http(status: status))
        #expect(world.run().0 == .problem(problem))
        #expect(problem.kind == .unavailable)
        #expect(problem.description == "Okta (sign-in) answered HTTP \(status)")
    }

    /// The first answer goes through the same classifier as the OIDC token endpoint.
    @Test(arguments: [
        (401, #"{"errorCode":"E0000004","errorSummary":"Authentication failed"}"#, IdentityVerdict.rejected(.badCredentials)),
        (400, #"{"errorCode":"E0000001","errorSummary":"Api validation failed: username"}"#, .rejected(.unrecognizedRefusal)),
        (403, #"{"errorCode":"E0000006","errorSummary":"You do not have permission to perform the requested action"}"#, .rejected(.unrecognizedRefusal)),
        (403, "<html>proxy says no</html>", .problem(IdPProblem(stage: .oktaAuthn, cause: .notJSON(status: 403)))),
        (404, #"{"errorCode":"E0000007","errorSummary":"Not found"}"#, .problem(IdPProblem(stage: .oktaAuthn, cause: .http(status: 404)))),
    ] as [(Int, String, IdentityVerdict)])
    func firstAnswerIsClassifiedOnce(_ status: Int, _ body: String, _ expected: IdentityVerdict) {
        let world = World()
        world.transport.on(Self.authn, status, body)
        #expect(world.run().0 == expected)
        #expect(world.transport.requests.count == 1)
    }

    @Test func transportFailureIsUnavailable() {
        let world = World()
        world.transport.fail(Self.authn, .connect("refused"))
        guard case .problem(let problem) = world.run().0, problem.kind == .unavailable else { Issue.record("not unavailable"); return }
        #expect(problem.cause == .transport(.connect("refused")))
        #expect(problem.stage == .oktaAuthn)
    }

    @Test func expiredStateToken() {
        let world = World()
        world.transport.on(Self.authn, 200, Self.mfaRequired([Self.totp]))
        world.transport.on("\(Self.base)/api/v1/authn/factors/ostf1/verify", 401, #"{"errorCode":"E0000011","errorSummary":"Invalid token provided"}"#)
        #expect(world.run(answers: ["123456"]).0 == .rejected(.transactionExpired))
    }

    @Test func linksOutsideTheOktaDomainAreNotFollowed() {
        let world = World()
        world.transport.on(Self.authn, 200, #"{"stateToken":"st","status":"MFA_REQUIRED","_embedded":{"factors":[{"id":"x","factorType":"token:software:totp","provider":"OKTA","_links":{"verify":{"href":"https://evil.example/steal"}}}]},"_links":{"cancel":{"href":"\#(Self.cancelURL)"}}}"#)
        // A refusal, not "misconfigured": after the password, only an outage may lead offline.
        #expect(world.run(answers: ["123456"]).0 == .rejected(.unsupportedState))
        #expect(!world.posted.contains { $0.hasPrefix("https://evil.example") })
    }

    @Test func noConversationAbandonsAndCancels() {
        let world = World()
        world.transport.on(Self.authn, 200, Self.mfaRequired([Self.totp, Self.pushFactor]))
        world.transport.on(Self.cancelURL, 200, #"{"status":"UNAUTHENTICATED"}"#)
        #expect(world.run(answers: []).0 == .rejected(.abandoned))
        #expect(world.cancelled)
        #expect(world.transport.requests.count == 2)
    }

    @Test func noUsableFactorMeansEnroll() {
        let world = World()
        world.transport.on(Self.authn, 200, Self.mfaRequired([Self.question, Self.webauthn]))
        world.transport.on(Self.cancelURL, 200, #"{"status":"UNAUTHENTICATED"}"#)
        let (verdict, conversation, _) = world.run(answers: ["1"])
        #expect(verdict == .rejected(.mfaEnrollmentRequired))
        #expect(conversation.transcript.contains { $0.contains("Enroll one at Okta first") })
    }

    @Test func malformedTransactionIsMisconfigured() {
        let world = World()
        world.transport.on(Self.authn, 200, #"{"no":"status"}"#)
        guard case .problem(let problem) = world.run().0, problem.kind == .misconfigured else { Issue.record("accepted a broken answer"); return }
    }

    @Test(arguments: [
        (403, #"{"errorCode":"E0000079","errorSummary":"This operation is not allowed in the current authentication state."}"#),
        (400, #"{"errorCode":"E0000001","errorSummary":"Api validation failed"}"#),
        (200, "<html>not json</html>"),
    ])
    func aFailureAfterThePasswordIsARefusalNotAnOutage(_ status: Int, _ body: String) {
        let world = World()
        world.transport.on(Self.authn, 200, Self.mfaRequired([Self.totp]))
        world.transport.on("\(Self.base)/api/v1/authn/factors/ostf1/verify", status, body)
        world.transport.on(Self.cancelURL, 200, "{}")
        #expect(world.run(answers: ["123456"]).0 == .rejected(.unsupportedState))
    }

    @Test func anOutageAfterThePasswordIsStillAnOutage() {
        let world = World()
        world.transport.on(Self.authn, 200, Self.mfaRequired([Self.totp]))
        world.transport.fail("\(Self.base)/api/v1/authn/factors/ostf1/verify", .connect("refused"))
        guard case .problem(let problem) = world.run(answers: ["123456"]).0, problem.kind == .unavailable else { Issue.record("not unavailable"); return }
        #expect(problem.stage == .oktaFactor)
    }

    @Test func withoutAnOIDCClientGroupsAreUnknown() {
        let world = World()
        world.transport.on(Self.authn, 200, Self.success())
        guard case .accepted(let identity) = world.run().0 else { Issue.record("not accepted"); return }
        #expect(!identity.groupsKnown)
        #expect(world.transport.requests.count == 1)
    }

    @Test func failedGroupsExchangeStillSignsInWithoutGroups() {
        let world = World()
        world.config.oktaClientID = "0oa-native"
        world.config.oktaRedirectURI = "com.example.cloudlogin:/callback"
        world.transport.on(Self.authn, 200, Self.success())
        world.transport.on("\(Self.base)/oauth2/default/.well-known/openid-configuration", 503, "")
        guard case .accepted(let identity) = world.run().0 else { Issue.record("not accepted"); return }
        #expect(!identity.groupsKnown)
    }

    /// The groups exchange asks the Okta authorization server as the Native app, with `[idp]`'s
    /// ID-token rules, and never with `[idp]`'s hand-set endpoints (another provider's).
    @Test func groupsExchangeSettingsAreOktasOwn() throws {
        var config = fixtureConfig {
            $0.provider = .okta
            $0.oktaDomain = Self.base + "/"
            $0.tokenEndpoint = fixtureTokenURL
            $0.jwksURI = fixtureJWKSURL
            $0.userinfoEndpoint = fixtureUserinfoURL
            $0.idTokenAlgorithms = [.ES256]
            $0.clockSkew = 5
        }
        #expect(OktaGroupsExchange.settings(for: config) == nil)
        config.oktaClientID = "0oa-native"
        let settings = try #require(OktaGroupsExchange.settings(for: config))
        #expect(settings == OIDCSettings(issuer: "\(Self.base)/oauth2/default", clientID: "0oa-native", idTokenAlgorithms: [.ES256], clockSkew: 5))
        #expect(settings.idTokenVerifier.issuer == "\(Self.base)/oauth2/default")
        #expect(settings.idTokenVerifier.clientID == "0oa-native")
        config.oktaDomain = nil
        #expect(OktaGroupsExchange.settings(for: config) == nil)
    }

    @Test func pkceChallengeIsBase64URLOfSHA256() {
        // Checked with Python: base64url(sha256(verifier)).
        #expect(OktaGroupsExchange.challenge(for: "dBjftJeZ4CVP-mJ92K27uhbUJU1p1r_wW1gFWFOEjXk") == "ngF5GsXcbwljx6u133FFr3Xht9xooA_DuaX_3QwODtc")
        #expect(OktaGroupsExchange.queryParameters(of: "com.x:/cb?code=a%2Bb&state=s1#frag") == ["code": "a+b", "state": "s1"])
    }
}

@Suite struct OktaGroupsInAccountSyncTests {
    @Test func unknownGroupsNeitherGrantNorDemoteNorPassAllowGroups() {
        let accounts = AccountTable()
        let state = StateTable()
        state.records["alice"] = ManagedUser(name: "alice", subject: "00u1", idpLogin: "alice@example.com", origin: .created,
                                             grantedGroups: ["sudo"], lastOnlineSuccess: 1)
        accounts.uids["alice"] = 2001
        accounts.groups["sudo"] = ["alice"]
        var config = fixtureConfig()
        config.adminGroups = ["g-admins"]
        var identity = Identity(subject: "00u1", idpLogin: "alice@example.com", claims: ["preferred_username": .string("alice@example.com")])
        identity.groupsKnown = false
        let sync = AccountSync(config: config, accounts: accounts, state: state, clock: FixedClock(100), log: RecordingLog(), canChangeAccounts: true)
        #expect(sync.sync(identity: identity, typedName: "alice", password: SecretBytes("pw".utf8)) == .ready(localName: "alice", created: false))
        #expect(accounts.groups["sudo"] == ["alice"])
        #expect(state.records["alice"]?.grantedGroups == ["sudo"])
        config.allowGroups = ["g-linux"]
        let gated = AccountSync(config: config, accounts: accounts, state: state, clock: FixedClock(100), log: RecordingLog(), canChangeAccounts: true)
        #expect(gated.sync(identity: identity, typedName: "alice", password: SecretBytes("pw".utf8)) == .refused(.notInAllowedGroups))
    }
}
