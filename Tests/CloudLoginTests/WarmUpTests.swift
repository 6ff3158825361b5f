@testable import CloudLogin
import Testing

/// What the flow warms while the password prompt is up, and the hash check it starts while the
/// IdP answers (issue 12). The threads themselves are CurlTransport's and ShadowUtilsAccounts':
/// Tests/Integration/test_warm_connection.py runs them through real libpam.
@Suite struct WarmUpTests {
    static let fixtures = TokenFixtures.shared

    static func flow(_ transport: ScriptedTransport, cache: MetadataCache? = MemoryCache(), accounts: AccountTable = AccountTable(),
                     config: Config = fixtureConfig()) -> LoginFlow {
        LoginFlow(config: config, transport: transport, cache: cache, accounts: accounts, state: StateTable(),
                  clock: FixedClock(fixtures.now), log: RecordingLog(), canChangeAccounts: true)
    }

    @Test func aCloudUserWarmsTheDiscoveryOriginBeforeThePromptAndEndsItAfter() {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        let flow = Self.flow(transport)
        var seenAtPrompt: ([String], Int)?
        let outcome = flow.authenticate(typedName: "alice") {
            seenAtPrompt = (transport.warmUps, transport.endedWarmUps)
            return .password(SecretBytes("pw".utf8))
        }
        if case .accepted = outcome {} else { Issue.record("expected accepted, got \(outcome)") }
        // Cold cache: the warm-up is the discovery fetch the sign-in makes first anyway.
        #expect(seenAtPrompt?.0 == ["GET \(fixtureDiscoveryURL)"])
        #expect(seenAtPrompt?.1 == 0)
        #expect(transport.endedWarmUps >= 1)
    }

    @Test func steadyStateWarmsTheTokenEndpointsOriginWithTheDiscoveryGET() {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        let cache = MemoryCache()
        _ = Self.flow(transport, cache: cache).authenticate(typedName: "alice", password: password("pw"))
        let second = ScriptedTransport()
        second.answers = transport.answers
        _ = Self.flow(second, cache: cache).authenticate(typedName: "alice", password: password("pw"))
        #expect(second.warmUps == ["GET \(fixtureDiscoveryURL)"])
        #expect(second.requests.map(\.url) == [fixtureTokenURL])
    }

    @Test func aLocalUserNeverWarmsAnything() {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        for name in ["root", "daemon", "localuser"] {
            var asked = false
            let outcome = Self.flow(transport).authenticate(typedName: name) {
                asked = true
                return .password(SecretBytes("pw".utf8))
            }
            guard case .notCloudUser = outcome else {
                Issue.record("\(name): \(outcome)")
                continue
            }
            #expect(!asked)
        }
        #expect(transport.warmUps.isEmpty)
        #expect(transport.requests.isEmpty)
    }

    @Test func theWarmUpEndsWhenNoPasswordCanBeHad() {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        let outcome = Self.flow(transport).authenticate(typedName: "alice") { .unavailable }
        #expect(outcome == .noPassword)
        #expect(transport.warmUps.count == 1)
        #expect(transport.endedWarmUps == 1)
        #expect(transport.requests.isEmpty)
    }

    @Test func aTokenEndpointOnAnotherOriginIsNotWarmed() {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        let config = fixtureConfig { $0.tokenEndpoint = "https://tokens.elsewhere.test/token" }
        let flow = Self.flow(transport, config: config)
        #expect(WarmUpTarget.request(config: config, directory: flow.directory) == nil)
    }

    @Test func deviceOnlySignInHasNoPromptToWarmDuring() {
        let config = fixtureConfig { $0.passwordGrant = false }
        let flow = Self.flow(ScriptedTransport(), config: config)
        #expect(WarmUpTarget.request(config: config, directory: flow.directory) == nil)
    }

    @Test func oktaAuthenticationAPIWarmsTheOktaDomain() {
        let config = fixtureConfig {
            $0.provider = .okta
            $0.oktaDomain = "https://corp.okta.test"
        }
        let flow = Self.flow(ScriptedTransport(), config: config)
        let request = WarmUpTarget.request(config: config, directory: flow.directory)
        #expect(request?.method == .get)
        #expect(request.map { WarmUpTarget.origin(of: $0.url) } == "https://corp.okta.test")
    }

    @Test func originsCompareHostAndPort() {
        #expect(WarmUpTarget.origin(of: "https://IdP.test:443/a?b") == "https://idp.test")
        #expect(WarmUpTarget.origin(of: "https://idp.test:8443/x") == "https://idp.test:8443")
        #expect(WarmUpTarget.origin(of: "http://idp.test/") == nil)
    }

    @Test func theLocalHashCheckStartsBeforeTheGrantAndEndsOnEveryPath() {
        let accounts = AccountTable()
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        let outcome = Self.flow(transport, accounts: accounts).authenticate(typedName: "alice", password: password("pw"))
        if case .accepted = outcome {} else { Issue.record("expected accepted, got \(outcome)") }
        #expect(accounts.passwordChecks == ["alice"])
        #expect(accounts.endedPasswordChecks >= 1)

        // Refused before anything is sent (empty password): no check is started.
        let quiet = AccountTable()
        _ = Self.flow(fixtureTransport(idToken: nil), accounts: quiet).authenticate(typedName: "alice", password: password(""))
        #expect(quiet.passwordChecks.isEmpty)
    }

    @Test func aColdCachePrefetchesTheKeySetBesideTheGrantAndASteadyOneDoesNot() {
        let transport = fixtureTransport(idToken: Self.fixtures.token("valid_rs256"))
        let cache = MemoryCache()
        _ = Self.flow(transport, cache: cache).authenticate(typedName: "alice", password: password("pw"))
        #expect(transport.prefetches == [fixtureJWKSURL])
        let order = transport.requests.map(\.url)
        #expect(order == [fixtureDiscoveryURL, fixtureTokenURL, fixtureJWKSURL])

        let steady = ScriptedTransport()
        steady.answers = transport.answers
        _ = Self.flow(steady, cache: cache).authenticate(typedName: "alice", password: password("pw"))
        #expect(steady.prefetches.isEmpty)
    }

    @Test func aClientWithoutIDTokensDoesNotPrefetchKeysInSteadyState() {
        // Discovery cached, no key set ever cached (userinfo only): nothing to prefetch.
        let transport = fixtureTransport(idToken: nil)
        transport.on(fixtureUserinfoURL, 200, #"{"sub":"alice","preferred_username":"alice"}"#)
        let cache = MemoryCache()
        let directory = ProviderDirectory(settings: OIDCSettings(passwordGrant: fixtureConfig()), transport: transport, cache: cache,
                                          clock: FixedClock(Self.fixtures.now), log: RecordingLog())
        _ = directory.discovery(deadline: Deadline(clock: FixedClock(Self.fixtures.now), seconds: 10))
        let later = ScriptedTransport()
        later.answers = transport.answers
        let again = ProviderDirectory(settings: OIDCSettings(passwordGrant: fixtureConfig()), transport: later, cache: cache,
                                      clock: FixedClock(Self.fixtures.now), log: RecordingLog())
        _ = again.tokenEndpoint(deadline: Deadline(clock: FixedClock(Self.fixtures.now), seconds: 10))
        #expect(later.prefetches.isEmpty)
        #expect(later.requests.isEmpty)
    }
}
