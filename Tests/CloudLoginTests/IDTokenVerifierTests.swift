import CloudLogin
import Testing

@Suite struct IDTokenVerifierTests {
    static let fixtures = TokenFixtures.shared

    static func keys() -> KeySet {
        KeySet(document: JSONValue.parse(fixtures.jwksText) ?? .null) ?? KeySet(keys: [])
    }

    @Test func fixturesAreLoaded() {
        #expect(Self.fixtures.cases.count >= 30)
        #expect(Self.keys().keys.count == 4)
    }

    /// The password grant's provider is `[idp]`'s: issuer, client id, ID-token rules and the
    /// endpoints set by hand.
    @Test func passwordGrantSettingsAreIDPs() {
        let config = fixtureConfig {
            $0.tokenEndpoint = fixtureTokenURL
            $0.jwksURI = fixtureJWKSURL
            $0.idTokenAlgorithms = [.RS256, .PS256]
            $0.clockSkew = 7
        }
        let settings = OIDCSettings(passwordGrant: config)
        #expect(settings == OIDCSettings(issuer: Self.fixtures.issuer, clientID: Self.fixtures.client_id, idTokenAlgorithms: [.RS256, .PS256],
                                         clockSkew: 7, tokenEndpoint: fixtureTokenURL, jwksURI: fixtureJWKSURL, userinfoEndpoint: nil))
        #expect(settings.idTokenVerifier.allowedAlgorithms == [.RS256, .PS256])
        #expect(settings.idTokenVerifier.clockSkew == 7)
        #expect(OIDCSettings(passwordGrant: Config()).issuer == "")
    }

    @Test(arguments: TokenFixtures.shared.cases.map(\.name))
    func tokenCase(_ name: String) throws {
        let fixtures = Self.fixtures
        let testCase = try #require(fixtures.cases.first { $0.name == name })
        let verifier = IDTokenVerifier(issuer: fixtures.issuer, clientID: fixtures.client_id,
                                       allowedAlgorithms: JWSAlgorithm.allCases, clockSkew: 60)
        do {
            let claims = try verifier.verify(testCase.token, keys: Self.keys(), now: fixtures.now)
            #expect(testCase.expect == "valid", "\(name) was accepted")
            #expect(claims["sub"]?.stringValue == "alice")
        } catch {
            #expect(error.kind == testCase.expect, "\(name): \(error)")
        }
    }

    @Test func algorithmOutsideTheAllowListIsRefused() {
        let verifier = IDTokenVerifier(issuer: Self.fixtures.issuer, clientID: Self.fixtures.client_id,
                                       allowedAlgorithms: [.ES256], clockSkew: 60)
        #expect(throws: IDTokenError.algorithmNotAllowed("RS256")) {
            try verifier.verify(Self.fixtures.token("valid_rs256"), keys: Self.keys(), now: Self.fixtures.now)
        }
    }

    @Test func tokenFromAnotherKeySetDoesNotVerify() {
        let verifier = IDTokenVerifier(issuer: Self.fixtures.issuer, clientID: Self.fixtures.client_id,
                                       allowedAlgorithms: JWSAlgorithm.allCases, clockSkew: 60)
        #expect(throws: IDTokenError.unknownKeyID) {
            try verifier.verify(Self.fixtures.token("valid_rs256"), keys: KeySet(keys: []), now: Self.fixtures.now)
        }
    }

    @Test func skewIsConfigurable() {
        let strict = IDTokenVerifier(issuer: Self.fixtures.issuer, clientID: Self.fixtures.client_id,
                                     allowedAlgorithms: JWSAlgorithm.allCases, clockSkew: 0)
        #expect(throws: IDTokenError.expired) {
            try strict.verify(Self.fixtures.token("valid_exp_within_skew"), keys: Self.keys(), now: Self.fixtures.now)
        }
    }

    @Test func jwkWithSymmetricOrSmallKeysIsSkipped() {
        let document = JSONValue.parse("""
        {"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"RSA","n":"AQAB","e":"AQAB"},{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]}
        """)
        #expect(KeySet(document: document ?? .null)?.keys.isEmpty == true)
    }
}
