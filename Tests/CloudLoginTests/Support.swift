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
    private(set) var slept: [Int64] = []
    func sleep(milliseconds: Int64) {
        slept.append(milliseconds)
        self.milliseconds += milliseconds
        seconds += milliseconds / 1000
    }
}

/// An HTTP transport that answers from a table and records what was asked.
final class ScriptedTransport: HTTPTransport {
    struct Answer {
        var status: Int
        var body: String
        var headers: [String: String] = [:]
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
        return next.map { HTTPResponse(status: $0.status, body: SecretBytes($0.body.utf8), headers: $0.headers) }
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

/// Local accounts in memory, with a log of the changes made to them.
final class AccountTable: LocalAccountStore {
    var uids: [String: UInt32] = ["root": 0, "daemon": 1, "localuser": 1001]
    var gecosFields: [String: String] = [:]
    var passwords: [String: String] = [:]
    var groups: [String: Set<String>] = ["sudo": [], "developers": [], "adm": []]
    var changes: [String] = []
    var failing: String?

    func account(named name: String) -> LocalAccount? {
        uids[name].map { LocalAccount(name: name, uid: $0, gid: $0, home: "/home/\(name)") }
    }

    func createAccount(name: String, gecos: String, shell: String, groups: [String]) -> Result<Void, AccountError> {
        if failing == "useradd" { return .failure(.toolFailed("useradd", "exit 1: disk full")) }
        uids[name] = 2000 + UInt32(uids.count)
        gecosFields[name] = gecos
        for group in groups { self.groups[group, default: []].insert(name) }
        changes.append("useradd \(name) \(shell) \(gecos)")
        return .success(())
    }

    func createSystemGroup(_ group: String) -> Result<Void, AccountError> {
        if groups[group] == nil { groups[group] = [] }
        return .success(())
    }

    func groupID(of group: String) -> UInt32? {
        guard groups[group] != nil else { return nil }
        return 5000 + UInt32(groups.keys.sorted().firstIndex(of: group) ?? 0)
    }

    func gecos(of name: String) -> String? { gecosFields[name] }

    func setGECOS(name: String, gecos: String) -> Result<Void, AccountError> {
        gecosFields[name] = gecos
        changes.append("usermod -c \(name) \(gecos)")
        return .success(())
    }

    func passwordMatches(name: String, password: SecretBytes) -> Bool? {
        guard let stored = passwords[name] else { return nil }
        return password.withBytes { String(decoding: $0, as: UTF8.self) } == stored
    }

    func setPassword(name: String, password: SecretBytes) -> Result<Void, AccountError> {
        passwords[name] = password.withBytes { String(decoding: $0, as: UTF8.self) }
        changes.append("chpasswd \(name)")
        return .success(())
    }

    func lockPassword(name: String) -> Result<Void, AccountError> {
        passwords[name] = nil
        changes.append("usermod --lock \(name)")
        return .success(())
    }

    func groupExists(_ group: String) -> Bool { groups[group] != nil }
    func isMember(_ name: String, of group: String) -> Bool { groups[group]?.contains(name) == true }

    func addMember(_ name: String, to group: String) -> Result<Void, AccountError> {
        if failing == "gpasswd -a \(group)" { return .failure(.toolFailed("gpasswd", "exit 1: cannot lock /etc/group")) }
        groups[group, default: []].insert(name)
        changes.append("gpasswd -a \(name) \(group)")
        return .success(())
    }

    func removeMember(_ name: String, from group: String) -> Result<Void, AccountError> {
        groups[group]?.remove(name)
        changes.append("gpasswd -d \(name) \(group)")
        return .success(())
    }
}

/// A caller's credentials the test sets (sudo runs with the invoking user's uid and groups).
struct FixedCaller: CallerCredentials {
    var realUID: UInt32 = 0
    var groups: [UInt32] = []
    func groupIDs() -> [UInt32] { groups }
}

/// Managed-user records in memory.
final class StateTable: ManagedUserStore {
    var records: [String: ManagedUser] = [:]

    func user(named name: String) -> Result<ManagedUser?, AccountError> { .success(records[name]) }
    func save(_ user: ManagedUser) -> Result<Void, AccountError> { records[user.name] = user; return .success(()) }
    func allUsers() -> Result<[ManagedUser], AccountError> { .success(records.values.sorted { $0.name < $1.name }) }
    func withLock<T>(_ body: () -> Result<T, AccountError>) -> Result<T, AccountError> { body() }
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
