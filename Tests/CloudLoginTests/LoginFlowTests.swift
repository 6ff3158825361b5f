@testable import CloudLogin
import Testing

@Suite struct LoginFlowTests {
    static let fixtures = TokenFixtures.shared

    static func flow(_ transport: ScriptedTransport, cache: MetadataCache? = MemoryCache(),
                     accounts: AccountTable = AccountTable(), state: StateTable = StateTable(),
                     config: Config = fixtureConfig(), clock: FixedClock = FixedClock(fixtures.now)) -> LoginFlow {
        LoginFlow(config: config, transport: transport, cache: cache, accounts: accounts, state: state,
                  clock: clock, log: RecordingLog(), canChangeAccounts: true)
    }

    @Test func rightPasswordIsAccepted() throws {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        let outcome = Self.flow(transport).authenticate(typedName: "alice", password: password("correct horse"))
        guard case .accepted(let identity, _, _) = outcome else {
            Issue.record("expected accepted, got \(outcome)")
            return
        }
        #expect(identity.subject == "alice")
        #expect(identity.idpLogin == "alice@example.com")
        #expect(identity.groups(claim: "groups") == ["admins", "staff"])
        let token = try #require(transport.requests.first { $0.url == fixtureTokenURL })
        #expect(token.body.contains("grant_type=password"))
        #expect(token.body.contains("username=alice%40example.com"))
        #expect(token.body.contains("password=correct%20horse"))
        #expect(token.body.contains("scope=openid%20profile%20email"))
        #expect(!token.body.contains("client_secret"))
        // Basic base64("linux-login:s3cret")
        #expect(token.authorization == "Basic bGludXgtbG9naW46czNjcmV0")
    }

    @Test func steadyStateMakesOneRequest() {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        let cache = MemoryCache()
        _ = Self.flow(transport, cache: cache).authenticate(typedName: "alice", password: password("pw"))
        #expect(transport.requests.count == 3)
        let before = transport.requests.count
        let outcome = Self.flow(transport, cache: cache).authenticate(typedName: "alice", password: password("pw"))
        #expect(transport.requests.count - before == 1)
        #expect(transport.requests.last?.url == fixtureTokenURL)
        if case .accepted = outcome {} else { Issue.record("second login: \(outcome)") }
    }

    @Test func unknownKidRefetchesTheJWKSOnce() {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        let cache = MemoryCache()
        // A stale key set in the cache, fresh by date: the kid is not in it.
        let name = DiskMetadataCache.key(for: "\(Self.fixtures.issuer) \(fixtureJWKSURL)", kind: "jwks")
        cache.write(name, body: Array(#"{"keys":[]}"#.utf8), fetchedAt: Self.fixtures.now - 10)
        let outcome = Self.flow(transport, cache: cache).authenticate(typedName: "alice", password: password("pw"))
        if case .accepted = outcome {} else { Issue.record("expected accepted after refetch, got \(outcome)") }
        #expect(transport.requests.filter { $0.url == fixtureJWKSURL }.count == 1)
    }

    @Test func unknownKidAfterAFreshFetchIsRefused() {
        let transport = fixtureTransport(idToken: Self.fixtures.token("unknown_kid"))
        let outcome = Self.flow(transport).authenticate(typedName: "alice", password: password("pw"))
        guard case .offlineRefused(let why, _) = outcome else {
            Issue.record("expected a refusal, got \(outcome)")
            return
        }
        #expect(why.cause == .invalidToken(.unknownKeyID))
        #expect(why.description.contains("not in the IdP's JWKS"))
        #expect(transport.requests.filter { $0.url == fixtureJWKSURL }.count == 1)
    }

    @Test(arguments: ["expired", "wrong_issuer", "wrong_audience_string", "azp_mismatch", "alg_none", "alg_hs256_key_confusion", "bad_signature_flipped_byte", "malformed_payload_not_json"])
    func untrustworthyTokenIsNeverAccepted(_ name: String) {
        let transport = fixtureTransport(idToken: Self.fixtures.token(name))
        let outcome = Self.flow(transport).authenticate(typedName: "alice", password: password("pw"))
        guard case .offlineRefused = outcome else {
            Issue.record("\(name): expected a refusal, got \(outcome)")
            return
        }
    }

    @Test func emptyPasswordSendsNothing() {
        let transport = fixtureTransport(idToken: nil)
        let outcome = Self.flow(transport).authenticate(typedName: "alice", password: password(""))
        #expect(outcome == .rejected(.emptyPassword))
        #expect(transport.requests.isEmpty)
    }

    @Test(arguments: [
        ("root", LocalOnlyReason.root),
        ("root@example.com", .root),
        ("daemon", .systemAccount),
        ("localuser", .unmanagedLocalAccount),
        ("admin", .excluded),
    ])
    func localOnlyUsersAreNeverAskedForAPassword(_ name: String, _ reason: LocalOnlyReason) {
        let transport = fixtureTransport(idToken: nil)
        var asked = false
        let config = fixtureConfig { $0.exclude = ["root", "admin"] }
        let outcome = Self.flow(transport, config: config).authenticate(typedName: name) {
            asked = true
            return .password(SecretBytes("pw".utf8))
        }
        #expect(outcome == .notCloudUser(reason))
        #expect(!asked)
        #expect(transport.requests.isEmpty)
    }

    @Test func migrateTakesOverAnExistingLocalUser() {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        let accounts = AccountTable()
        accounts.uids["alice"] = 1500
        let state = StateTable()
        let outcome = Self.flow(transport, accounts: accounts, state: state, config: fixtureConfig { $0.migrate = true })
            .authenticate(typedName: "alice", password: password("pw"))
        guard case .accepted(_, "alice", false) = outcome else {
            Issue.record("expected accepted, got \(outcome)")
            return
        }
        #expect(state.records["alice"]?.origin == .migrated)
        #expect(!accounts.changes.contains { $0.hasPrefix("useradd") })
    }

    @Test(arguments: ["-o", "../x", "a:b", String(repeating: "a", count: 300), "Alice", "élodie", "a b", "a\nb", "", "x@y@z", "@example.com"])
    func hostileNamesAreRefusedBeforeAnything(_ name: String) {
        let transport = fixtureTransport(idToken: nil)
        var asked = false
        let outcome = Self.flow(transport).authenticate(typedName: name) {
            asked = true
            return .password(SecretBytes("pw".utf8))
        }
        #expect(outcome == .rejected(.invalidName))
        #expect(!asked)
        #expect(transport.requests.isEmpty)
    }

    @Test func fullPrincipalNameIsSentAsTyped() {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        _ = Self.flow(transport).authenticate(typedName: "Alice.Smith@Example.com", password: password("pw"))
        #expect(transport.requests.first { $0.url == fixtureTokenURL }?.body.contains("username=Alice.Smith%40Example.com") == true)
    }

    @Test func withoutIDTokenClaimsComeFromUserinfo() throws {
        let transport = fixtureTransport(idToken: nil)
        transport.on(fixtureUserinfoURL, 200, #"{"sub":"alice","preferred_username":"alice","name":"Alice Example","groups":"g1; g2"}"#)
        let outcome = Self.flow(transport).authenticate(typedName: "alice", password: password("pw"))
        guard case .accepted(let identity, _, _) = outcome else {
            Issue.record("expected accepted, got \(outcome)")
            return
        }
        #expect(identity.groups(claim: "groups") == ["g1", "g2"])
        let userinfo = try #require(transport.requests.first { $0.url == fixtureUserinfoURL })
        #expect(userinfo.authorization == "Bearer at-123")
    }

    @Test func userinfoWithAnotherSubjectIsRefused() {
        // The ID token lacks the name claim, so userinfo completes it, and must agree on sub.
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        transport.on(fixtureUserinfoURL, 200, #"{"sub":"mallory","upn":"mallory"}"#)
        let config = fixtureConfig { $0.nameClaim = "upn" }
        let outcome = Self.flow(transport, config: config).authenticate(typedName: "alice", password: password("pw"))
        #expect(outcome == .offlineRefused(problem: .malformed(.userinfo, "userinfo names a different subject than the ID token"), reason: .neverOnline))
    }

    @Test(arguments: [
        (#"{"access_token":"x","token_type":"Bearer","error":"invalid_grant"}"#, "error body"),
        ("<html>ok</html>", "not a JSON object"),
        (#"{"access_token":"x","token_type":"Bea"#, "not a JSON object"),
        (#"{"token_type":"Bearer"}"#, "without an access_token"),
        (#"{"access_token":"x","token_type":"mac"}"#, "not Bearer"),
        (String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000), "not a JSON object"),
    ])
    func brokenTokenResponseIsNotSuccess(_ body: String, _ why: String) {
        let transport = ScriptedTransport()
        transport.on(fixtureDiscoveryURL, 200, fixtureDiscovery)
        transport.on(fixtureTokenURL, 200, body)
        let outcome = Self.flow(transport).authenticate(typedName: "alice", password: password("pw"))
        guard case .offlineRefused(let message, _) = outcome else {
            Issue.record("expected a refusal, got \(outcome)")
            return
        }
        #expect(message.description.contains(why), "\(message)")
        #expect(message.stage == .token && message.kind == .misconfigured)
    }

    @Test func invalidUTF8IsRefused() {
        #expect(JSONValue.parse(SecretBytes([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D])) == nil)
    }

    @Test func unreachableIdPIsUnavailable() {
        let transport = ScriptedTransport()
        transport.fail(fixtureDiscoveryURL, .connect("refused"))
        let outcome = Self.flow(transport).authenticate(typedName: "alice", password: password("pw"))
        guard case .offlineRefused(_, .neverOnline) = outcome else {
            Issue.record("expected unavailable without offline, got \(outcome)")
            return
        }
    }

    @Test func tlsFailureIsUnavailable() {
        let transport = ScriptedTransport()
        transport.fail(fixtureDiscoveryURL, .tls("certificate verify failed"))
        guard case .offlineRefused(let why, _) = Self.flow(transport).authenticate(typedName: "alice", password: password("pw")), why.cause == .transport(.tls("certificate verify failed")), why.kind == .unavailable, why.description.contains("TLS") else {
            Issue.record("TLS failure not unavailable")
            return
        }
    }

    @Test func discoveryForAnotherIssuerIsRefused() {
        let transport = ScriptedTransport()
        transport.on(fixtureDiscoveryURL, 200, #"{"issuer":"https://evil.test","token_endpoint":"https://evil.test/token"}"#)
        guard case .offlineRefused(let why, _) = Self.flow(transport).authenticate(typedName: "alice", password: password("pw")) else {
            Issue.record("accepted discovery for another issuer")
            return
        }
        #expect(why.stage == .discovery && why.description.contains("not the configured"))
        #expect(transport.requests.count == 1)
    }

    @Test func staleCachedDiscoveryServesWhenTheIdPIsDown() {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        let cache = MemoryCache()
        _ = Self.flow(transport, cache: cache).authenticate(typedName: "alice", password: password("pw"))
        // Two days later the JWKS endpoint is down; the cached keys still verify.
        let later = FixedClock(Self.fixtures.now + 2 * 86400)
        transport.answers[fixtureJWKSURL] = [.failure(.connect("refused"))]
        transport.answers[fixtureDiscoveryURL] = [.failure(.connect("refused"))]
        let flow = Self.flow(transport, cache: cache, config: fixtureConfig { $0.clockSkew = 300 }, clock: later)
        // The token is expired at that time; what matters is that keys came from the cache
        // and the refusal is about the token, not about the IdP being down.
        let outcome = flow.authenticate(typedName: "alice", password: password("pw"))
        #expect(outcome == .offlineRefused(problem: IdPProblem(stage: .token, cause: .invalidToken(.expired)), reason: .neverOnline))
    }

    @Test(arguments: [
        (Config.MFARequiredPolicy.deny, #"{"error":"invalid_grant","error_codes":[50076]}"#, Outcome.rejected(.mfaRequired)),
        (.passwordVerified, #"{"error":"invalid_grant","error_codes":[50076]}"#, .acceptedPasswordOnly(localName: "alice")),
        (.passwordVerified, #"{"error":"mfa_required","mfa_token":"x"}"#, .acceptedPasswordOnly(localName: "alice")),
        // Okta does not document that the password was checked first: never a yes.
        (.passwordVerified, #"{"error":"invalid_grant","error_description":"Resource owner password credentials cannot be used with MFA enabled."}"#, .rejected(.mfaRequired)),
        (.passwordVerified, #"{"error":"invalid_grant","error_codes":[50126]}"#, .rejected(.badCredentials)),
    ])
    func mfaRequiredFollowsThePolicy(_ policy: Config.MFARequiredPolicy, _ body: String, _ expected: Outcome) {
        let transport = ScriptedTransport()
        transport.on(fixtureDiscoveryURL, 200, fixtureDiscovery)
        transport.on(fixtureTokenURL, 400, body)
        // Only an account CloudLogin already manages can sign in on the password alone.
        let state = StateTable()
        state.records["alice"] = ManagedUser(name: "alice", subject: "alice", idpLogin: "alice@example.com", origin: .created, lastOnlineSuccess: Self.fixtures.now)
        let accounts = AccountTable()
        accounts.uids["alice"] = 2001
        accounts.passwords["alice"] = "pw"
        let flow = Self.flow(transport, accounts: accounts, state: state, config: fixtureConfig { $0.ropgMFARequired = policy })
        #expect(flow.authenticate(typedName: "alice", password: password("pw")) == expected)
    }

    /// An "MFA required" answer proves only that whoever holds the login at the IdP today typed
    /// their own password: it opens the account only with the account's synced password, and
    /// only while the offline rule allows the account.
    @Test func passwordVerifiedIsBoundToTheSyncedPasswordAndTheOfflineRule() {
        let transport = ScriptedTransport()
        transport.on(fixtureDiscoveryURL, 200, fixtureDiscovery)
        transport.on(fixtureTokenURL, 400, #"{"error":"mfa_required","mfa_token":"x"}"#)
        let state = StateTable()
        state.records["alice"] = ManagedUser(name: "alice", subject: "alice", idpLogin: "alice@example.com", origin: .created, lastOnlineSuccess: Self.fixtures.now)
        let accounts = AccountTable()
        accounts.uids["alice"] = 2001
        accounts.passwords["alice"] = "the old owner's password"
        let config = fixtureConfig { $0.ropgMFARequired = .passwordVerified }
        // The login now belongs to someone else at the IdP, whose own password the IdP verified.
        #expect(Self.flow(transport, accounts: accounts, state: state, config: config)
            .authenticate(typedName: "alice", password: password("the new holder's password")) == .refusedHere(.noAccount))
        // The synced password, but the account is past the offline rule or was revoked.
        state.records["alice"]?.lastOnlineSuccess = Self.fixtures.now - 30 * 86_400
        #expect(Self.flow(transport, accounts: accounts, state: state, config: config)
            .authenticate(typedName: "alice", password: password("the old owner's password")) == .refusedHere(.noAccount))
        state.records["alice"]?.lastOnlineSuccess = Self.fixtures.now
        state.records["alice"]?.lastVerdict = .revoked
        #expect(Self.flow(transport, accounts: accounts, state: state, config: config)
            .authenticate(typedName: "alice", password: password("the old owner's password")) == .refusedHere(.noAccount))
        state.records["alice"]?.lastVerdict = .accepted
        #expect(Self.flow(transport, accounts: accounts, state: state, config: config)
            .authenticate(typedName: "alice", password: password("the old owner's password")) == .acceptedPasswordOnly(localName: "alice"))
    }

    /// sshd passes "\u{8}\n\r\u{7F}INCORRECT" for an unknown user; no password with a control
    /// character is ever sent to the IdP.
    @Test(arguments: ["\u{8}\n\r\u{7F}INCORRECT", "a\u{0}b", "tab\there", "del\u{7F}"])
    func passwordsWithControlCharactersAreNeverSent(_ typed: String) {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        let outcome = Self.flow(transport).authenticate(typedName: "alice", password: password(typed))
        #expect(outcome == .rejected(.badCredentials))
        #expect(!transport.requests.contains { $0.url == fixtureTokenURL })
    }

    @Test func publicClientSendsClientIDInBody() {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        let config = fixtureConfig { $0.clientSecret = nil; $0.clientAuthentication = .none }
        _ = Self.flow(transport, config: config).authenticate(typedName: "alice", password: password("pw"))
        let token = transport.requests.first { $0.url == fixtureTokenURL }
        #expect(token?.body.contains("client_id=linux-login") == true)
        #expect(token?.authorization == nil)
    }

    @Test func postClientAuthenticationPutsTheSecretInTheBody() {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        let config = fixtureConfig { $0.clientAuthentication = .post; $0.clientSecret = SecretBytes("a b&c".utf8) }
        _ = Self.flow(transport, config: config).authenticate(typedName: "alice", password: password("pw"))
        let token = transport.requests.first { $0.url == fixtureTokenURL }
        #expect(token?.body.contains("client_id=linux-login&client_secret=a%20b%26c") == true)
        #expect(token?.authorization == nil)
    }

    @Test func tokenEndpointOverrideSkipsDiscoveryForTheRequest() {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        let config = fixtureConfig { $0.tokenEndpoint = fixtureTokenURL; $0.jwksURI = fixtureJWKSURL }
        let outcome = Self.flow(transport, config: config).authenticate(typedName: "alice", password: password("pw"))
        if case .accepted = outcome {} else { Issue.record("\(outcome)") }
        #expect(!transport.requests.contains { $0.url == fixtureDiscoveryURL })
    }

    @Test func oktaProviderIsReportedAsUnsupportedNotAccepted() {
        let transport = ScriptedTransport()
        var config = fixtureConfig()
        config.provider = .okta
        guard case .offlineRefused = Self.flow(transport, config: config).authenticate(typedName: "alice", password: password("pw")) else {
            Issue.record("okta provider did not report misconfigured")
            return
        }
    }
}

@Suite struct EncodingTests {
    @Test func base64URL() {
        #expect(Base64URL.decode("aGVsbG8") == Array("hello".utf8))
        #expect(Base64URL.decode("aGVsbG8=") == nil)
        #expect(Base64URL.decode("aGVsbG8=", allowPadding: true) == Array("hello".utf8))
        #expect(Base64URL.decode("a+b/") == nil)
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
        #expect(Base64URL.decode("a") == nil)
        #expect(Base64URL.decode("") == [])
    }

    @Test func formEncoding() {
        let output = SecretBytes()
        FormEncoding.append("a b+c&d=é~", to: output)
        #expect(output.withBytes { String(decoding: $0, as: UTF8.self) } == "a%20b%2Bc%26d%3D%C3%A9~")
    }

    @Test func secretBytesWipe() {
        let secret = SecretBytes("password".utf8)
        secret.wipe()
        #expect(secret.isEmpty)
        #expect(secret.constantTimeEquals(SecretBytes()))
    }

    @Test func deepJSONIsRefusedWithoutRecursion() {
        #expect(JSONValue.parse(String(repeating: "[", count: 100_000)) == nil)
        #expect(JSONValue.parse(#"{"a":[1,2,{"b":"c"}]}"#)?["a"]?.arrayValue?.count == 3)
    }

    @Test(arguments: ["alice", "_svc", "a-b_c9", String(repeating: "a", count: 32)])
    func validLocalNames(_ name: String) { #expect(LoginName.isValidLocalName(name)) }

    @Test(arguments: ["", "-o", "9lives", "Alice", "a.b", "a:b", "../x", String(repeating: "a", count: 33), "é"])
    func invalidLocalNames(_ name: String) { #expect(!LoginName.isValidLocalName(name)) }
}
