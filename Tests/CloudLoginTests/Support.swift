import CloudLogin
import Foundation

/// The ID-token fixtures made by Fixtures/make_id_tokens.py.
struct TokenFixtures: Decodable {
    struct Case: Decodable {
        var name: String
        var token: String
        var expect: String
    }

    var now: Int64
    var issuer: String
    var client_id: String
    var cases: [Case]
    var jwksText: String = ""

    enum CodingKeys: String, CodingKey { case now, issuer, client_id, cases }

    static let shared: TokenFixtures = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/id_tokens.json")
        guard let data = try? Data(contentsOf: url),
              var fixtures = try? JSONDecoder().decode(TokenFixtures.self, from: data),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let jwks = object["jwks"],
              let jwksData = try? JSONSerialization.data(withJSONObject: jwks) else {
            return TokenFixtures(now: 0, issuer: "", client_id: "", cases: [])
        }
        fixtures.jwksText = String(decoding: jwksData, as: UTF8.self)
        return fixtures
    }()

    func token(_ name: String) -> String {
        cases.first(where: { $0.name == name })?.token ?? ""
    }
}

/// A clock the test sets.
final class FixedClock: CloudLogin.Clock, @unchecked Sendable {
    var seconds: Int64
    var milliseconds: Int64 = 1_000_000

    init(_ seconds: Int64) { self.seconds = seconds }

    func now() -> Int64 { seconds }
    func monotonicMilliseconds() -> Int64 { milliseconds }
}

/// An HTTP transport that answers from a table and records what was asked.
final class ScriptedTransport: HTTPTransport {
    struct Answer {
        var status: Int
        var body: String
    }

    var answers: [String: [Result<Answer, TransportError>]] = [:]
    private(set) var requests: [(method: String, url: String, body: String, authorization: String?)] = []

    func on(_ url: String, _ status: Int, _ body: String) {
        answers[url, default: []].append(.success(Answer(status: status, body: body)))
    }

    func fail(_ url: String, _ error: TransportError) {
        answers[url, default: []].append(.failure(error))
    }

    func send(_ request: HTTPRequest, deadline: Deadline) -> Result<HTTPResponse, TransportError> {
        let body = request.body.map { $0.withBytes { String(decoding: $0, as: UTF8.self) } } ?? ""
        let authorization = request.authorization.map { $0.withBytes { String(decoding: $0, as: UTF8.self) } }
        requests.append((request.method.rawValue, request.url, body, authorization))
        guard var queue = answers[request.url], !queue.isEmpty else {
            return .failure(.connect("no scripted answer for \(request.url)"))
        }
        // The last answer repeats.
        let next = queue.count > 1 ? queue.removeFirst() : queue[0]
        answers[request.url] = queue
        return next.map { HTTPResponse(status: $0.status, body: SecretBytes($0.body.utf8)) }
    }
}

/// A metadata cache in memory.
final class MemoryCache: MetadataCache {
    var entries: [String: (Int64, [UInt8])] = [:]

    func read(_ name: String) -> (fetchedAt: Int64, body: [UInt8])? {
        entries[name].map { (fetchedAt: $0.0, body: $0.1) }
    }

    func write(_ name: String, body: [UInt8], fetchedAt: Int64) {
        entries[name] = (fetchedAt, body)
    }
}

/// A fixed table of local accounts.
struct AccountTable: LocalAccountDirectory {
    var accounts: [String: UInt32] = ["root": 0, "daemon": 1, "localuser": 1001]

    func account(named name: String) -> LocalAccount? {
        accounts[name].map { LocalAccount(name: name, uid: $0, gid: $0, home: "/home/\(name)") }
    }
}

/// Log lines kept for assertions.
final class RecordingLog: EventLog {
    var lines: [(LogLevel, String)] = []
    func record(_ level: LogLevel, _ message: String) { lines.append((level, message)) }
}

/// A config for the fixture IdP.
func fixtureConfig(_ change: (inout Config) -> Void = { _ in }) -> Config {
    var config = Config()
    config.issuer = TokenFixtures.shared.issuer
    config.clientID = TokenFixtures.shared.client_id
    config.clientSecret = SecretBytes("s3cret".utf8)
    config.clientAuthentication = .basic
    config.usernameSuffix = "@example.com"
    change(&config)
    return config
}

let fixtureDiscoveryURL = "https://idp.test/realms/corp/.well-known/openid-configuration"
let fixtureTokenURL = "https://idp.test/realms/corp/token"
let fixtureJWKSURL = "https://idp.test/realms/corp/jwks"
let fixtureUserinfoURL = "https://idp.test/realms/corp/userinfo"
let fixtureDiscovery = """
{"issuer":"https://idp.test/realms/corp","token_endpoint":"\(fixtureTokenURL)","jwks_uri":"\(fixtureJWKSURL)",
 "userinfo_endpoint":"\(fixtureUserinfoURL)","grant_types_supported":["password","authorization_code"]}
"""

/// A transport answering discovery, JWKS and a token response holding `idToken`.
func fixtureTransport(idToken: String?, extra: String = "") -> ScriptedTransport {
    let transport = ScriptedTransport()
    transport.on(fixtureDiscoveryURL, 200, fixtureDiscovery)
    transport.on(fixtureJWKSURL, 200, TokenFixtures.shared.jwksText)
    let idTokenMember = idToken.map { ",\"id_token\":\"\($0)\"" } ?? ""
    transport.on(fixtureTokenURL, 200, "{\"access_token\":\"at-123\",\"token_type\":\"Bearer\",\"expires_in\":300\(idTokenMember)\(extra)}")
    return transport
}

func password(_ text: String) -> () -> PasswordAnswer {
    { .password(SecretBytes(text.utf8)) }
}
