// libFuzzer target: the MFA steps after the password — the device authorization grant and the
// MFA API (Auth0 and Okta dialects) — against an IdP that answers from the input. The first
// byte picks the path; the rest is split at 0xFF into the IdP's answers after the password
// grant, each a status byte and a body. When the answers run out the IdP is gone, so every
// run ends. The person answers "1", a code, and Enter.
import CloudLogin
import Glibc
import FuzzDriver
import FuzzSupport

private let statuses = [200, 200, 200, 400, 400, 400, 401, 403, 403, 404, 429, 500, 503, 302, 204, 0]

/// Answers the password grant as `passwordAnswer`, metadata from the fixtures, and every other
/// request with the next of `answers`, then fails.
private final class ScriptedIdP: HTTPTransport {
    let passwordAnswer: (Int, String)
    var answers: [(Int, [UInt8])]
    private(set) var answeredOK = false

    init(passwordAnswer: (Int, String), answers: [(Int, [UInt8])]) {
        self.passwordAnswer = passwordAnswer
        self.answers = answers
    }

    func send(_ request: HTTPRequest, deadline: Deadline) -> Result<HTTPResponse, TransportError> {
        if request.url.hasSuffix("/jwks") { return .success(HTTPResponse(status: 200, body: SecretBytes(fixtureJWKS.utf8))) }
        if request.url.hasSuffix("/openid-configuration") {
            let discovery = """
            {"issuer":"\(fixtureIssuer)","token_endpoint":"\(fixtureIssuer)/oauth/token","jwks_uri":"\(fixtureIssuer)/jwks",
             "device_authorization_endpoint":"\(fixtureIssuer)/device"}
            """
            return .success(HTTPResponse(status: 200, body: SecretBytes(discovery.utf8)))
        }
        if let body = request.body, body.withBytes({ String(decoding: $0, as: UTF8.self) }).hasPrefix("grant_type=password") {
            return .success(HTTPResponse(status: passwordAnswer.0, body: SecretBytes(passwordAnswer.1.utf8)))
        }
        guard !answers.isEmpty else { return .failure(.connect("the fuzzed IdP is gone")) }
        let (status, body) = answers.removeFirst()
        if status == 200 { answeredOK = true }
        return .success(HTTPResponse(status: status, body: SecretBytes(body)))
    }
}

private final class Person: Conversation {
    var asked = 0
    let atOnce: Bool
    init(atOnce: Bool) { self.atOnce = atOnce }
    var showsMessagesAtOnce: Bool { atOnce }
    func ask(_ prompt: String, secret: Bool) -> SecretBytes? {
        asked += 1
        guard asked < 20 else { return nil }
        return SecretBytes((asked % 3 == 1 ? "1" : asked % 3 == 2 ? "123456" : "").utf8)
    }
    func tell(_ text: String) -> Bool { true }
}

@_cdecl("fuzz_mfa_main")
public func fuzzMFAMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    FuzzDriver_run(argc, argv, { data, size in fuzzMFA(data, size) })
}

public func fuzzMFA(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let path = data[0] & 0x07
    var answers: [(Int, [UInt8])] = []
    for chunk in UnsafeBufferPointer(start: data + 1, count: size - 1).split(separator: 0xFF, omittingEmptySubsequences: false).prefix(64) {
        guard let first = chunk.first else { continue }
        answers.append((statuses[Int(first & 0x0F)], Array(chunk.dropFirst())))
    }
    var config = Config()
    config.issuer = fixtureIssuer
    config.clientID = fixtureClientID
    config.nameClaim = "preferred_username"
    config.mfa = .whenRequired
    let passwordAnswer: (Int, String)
    switch path {
    case 0, 1:
        // Auth0: mfa_required with an mfa_token.
        passwordAnswer = (403, #"{"error":"mfa_required","mfa_token":"MFA"}"#)
    case 2, 3:
        // Okta direct authentication.
        config.provider = .okta
        config.oktaAPI = .direct
        config.oktaFactor = path == 2 ? .push : .ask
        passwordAnswer = (403, #"{"error":"mfa_required","mfa_token":"MFA"}"#)
    case 4, 5:
        // Entra's "MFA required": the device step.
        passwordAnswer = (400, #"{"error":"invalid_grant","error_codes":[50076]}"#)
    default:
        // Device only.
        config.passwordGrant = false
        config.mfa = .always
        passwordAnswer = (500, "")
    }
    let transport = ScriptedIdP(passwordAnswer: passwordAnswer, answers: answers)
    let clock = FixtureClock()
    let directory = ProviderDirectory(settings: OIDCSettings(passwordGrant: config), transport: transport, cache: nil, clock: clock, log: SilentLog())
    let grant = OIDCPasswordGrant(config: config, transport: transport, directory: directory, clock: clock, log: SilentLog())
    let person = Person(atOnce: path & 1 == 0)
    let verdict: IdentityVerdict
    if path >= 4 {
        verdict = DeviceAuthorization(config: config, transport: transport, directory: directory, clock: clock, log: SilentLog())
            .run(login: "alice", conversation: person, deadline: Deadline(clock: clock, seconds: 10))
    } else {
        verdict = grant.verifyPassword(login: "alice", password: SecretBytes("pw".utf8), conversation: person,
                                       deadline: Deadline(clock: clock, seconds: 10))
    }
    // A yes only ever comes from a 200 the IdP sent (with a verified ID token).
    if case .accepted = verdict, !transport.answeredOK { abort() }
    return 0
}
