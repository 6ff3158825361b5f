// libFuzzer target: what the token endpoint answers. The first byte picks the HTTP status (200
// most of the time); the rest is the body. A non-200 goes through IdPClassifier.verdict;
// a 200 through the whole OIDC password grant (token response, ID token, claims) with an
// in-memory IdP whose JWKS is the fixtures'.
import CloudLogin
import Glibc
import FuzzDriver
import FuzzSupport

private let statuses = [200, 200, 200, 200, 400, 401, 403, 404, 408, 429, 500, 502, 503, 302, 307, 0]

private let config: Config = {
    var config = Config()
    config.issuer = fixtureIssuer
    config.clientID = fixtureClientID
    config.tokenEndpoint = "https://idp.test/realms/corp/token"
    config.jwksURI = "https://idp.test/realms/corp/jwks"
    config.userinfoEndpoint = "https://idp.test/realms/corp/userinfo"
    return config
}()

@_cdecl("fuzz_token_response_main")
public func fuzzTokenResponseMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    FuzzDriver_run(argc, argv, { data, size in fuzzTokenResponse(data, size) })
}

public func fuzzTokenResponse(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let status = statuses[Int(data[0] & 0x0F)]
    let body = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let verdict: IdentityVerdict
    if status == 200 {
        let transport = OneAnswerTransport(status: status, body: body)
        let directory = ProviderDirectory(settings: OIDCSettings(passwordGrant: config), transport: transport, cache: nil, clock: FixtureClock(), log: SilentLog())
        let grant = OIDCPasswordGrant(config: config, transport: transport, directory: directory, clock: FixtureClock(), log: SilentLog())
        verdict = grant.verifyPassword(login: "alice", password: SecretBytes("pw".utf8), conversation: NoConversation(),
                                       deadline: Deadline(clock: FixtureClock(), seconds: 10))
    } else {
        verdict = IdPClassifier.verdict(status: status, body: SecretBytes(body), stage: .token)
    }
    // Success only from an explicit positive answer: a body that is not a verified token
    // response must never come out as accepted.
    if status != 200, case .accepted = verdict { abort() }
    return 0
}
