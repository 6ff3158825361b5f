import CloudLogin
import Glibc

/// Wrappers around the core's seams that tell the admin what happened, for `cloudlogin login
/// --trace` and `cloudlogin check`. They see requests and answers but print no token, header
/// value or password: method, URL and request body with every value hidden that is not on
/// `TraceRedaction`'s short list (Okta's sessionToken in the /authorize query, stateToken,
/// code, PKCE verifier, password), status, a redirect's Location redacted the same way, time
/// and (for refusals) the error codes as the core's classifier reads them (`IdPErrorAnswer`).
/// Answers' bodies (tokens) are never shown.

/// One HTTP exchange, as far as it may be shown.
public struct TracedExchange: Sendable {
    public var method: String
    /// Redacted (`TraceRedaction.url`).
    public var url: String
    public var status: Int?
    public var failure: String?
    public var milliseconds: Int64
    /// A non-200 answer as the classifier reads it: status and error codes, never the body.
    public var errorAnswer: IdPErrorAnswer?
}

public final class TracingTransport: HTTPTransport {
    private let inner: HTTPTransport
    private let clock: Clock
    private let log: TerminalLog
    public private(set) var exchanges: [TracedExchange] = []

    public init(_ inner: HTTPTransport, clock: Clock = SystemClock(), log: TerminalLog) {
        self.inner = inner
        self.clock = clock
        self.log = log
    }

    public func send(_ request: HTTPRequest, deadline: Deadline) -> Result<HTTPResponse, TransportError> {
        let started = clock.monotonicMilliseconds()
        let result = inner.send(request, deadline: deadline)
        var exchange = TracedExchange(method: request.method.rawValue, url: TraceRedaction.url(request.url), status: nil, failure: nil,
                                      milliseconds: clock.monotonicMilliseconds() &- started, errorAnswer: nil)
        var location = ""
        switch result {
        case .success(let response):
            exchange.status = response.status
            if response.status != 200 { exchange.errorAnswer = IdPErrorAnswer(status: response.status, body: response.body) }
            if (300...399).contains(response.status), let target = response.headers["location"] {
                location = " to \(TraceRedaction.url(target))"
            }
        case .failure(let error):
            exchange.failure = error.description
        }
        exchanges.append(exchange)
        var what = ""
        if request.authorization != nil { what += " (Authorization header: not shown)" }
        if let body = request.body { what += " (\(TraceRedaction.body(body, headers: request.headers)))" }
        let answer = exchange.errorAnswer.map { $0.summary + location } ?? exchange.status.map { "HTTP \($0)" + location } ?? "failed: \(exchange.failure ?? "")"
        log.step("network", "\(exchange.method) \(exchange.url)\(what) -> \(answer) in \(exchange.milliseconds) ms")
        return result
    }
}

/// Tells whether discovery and JWKS came from the disk cache or the network.
public final class TracingCache: MetadataCache {
    private let inner: MetadataCache
    private let log: TerminalLog
    private let clock: Clock

    public init(_ inner: MetadataCache, clock: Clock = SystemClock(), log: TerminalLog) {
        self.inner = inner
        self.log = log
        self.clock = clock
    }

    static func kind(of name: String) -> String {
        if name.hasSuffix(".discovery.json") { return "discovery document" }
        if name.hasSuffix(".jwks.json") { return "JWKS" }
        return name
    }

    public func read(_ name: String) -> (fetchedAt: Int64, body: [UInt8])? {
        let found = inner.read(name)
        if let found {
            log.step("cache", "\(Self.kind(of: name)) in the cache, fetched \(clock.now() &- found.fetchedAt) s ago (fresh for \(ProviderDirectory.freshSeconds) s)")
        } else {
            log.step("cache", "no \(Self.kind(of: name)) in the cache")
        }
        return found
    }

    public func write(_ name: String, body: [UInt8], fetchedAt: Int64) {
        log.step("cache", "storing the \(Self.kind(of: name)) (\(body.count) bytes)")
        inner.write(name, body: body, fetchedAt: fetchedAt)
    }
}

/// Reports every change to the local user and group database; with `dryRun`, changes nothing
/// and answers as if each change had worked.
public final class TracingAccounts: LocalAccountStore {
    private let inner: LocalAccountStore
    private let log: TerminalLog
    private let dryRun: Bool
    public private(set) var changes: [String] = []
    private var created: Set<String> = []
    /// `name:group` memberships a dry run pretends to have made.
    private var joined: Set<String> = []

    public init(_ inner: LocalAccountStore, log: TerminalLog, dryRun: Bool) {
        self.inner = inner
        self.log = log
        self.dryRun = dryRun
    }

    private func change(_ what: String, _ perform: () -> Result<Void, AccountError>) -> Result<Void, AccountError> {
        changes.append(what)
        if dryRun {
            log.step("local", "would \(what) (--dry-run: not done)")
            return .success(())
        }
        let result = perform()
        switch result {
        case .success: log.step("local", "did \(what)")
        case .failure(let error): log.step("local", "could not \(what): \(error)")
        }
        return result
    }

    public func account(named name: String) -> LocalAccount? {
        if let found = inner.account(named: name) { return found }
        // A dry run pretends the account it "created" exists, as the real run would see it.
        return created.contains(name) ? LocalAccount(name: name, uid: UInt32.max, gid: UInt32.max, home: "/home/\(name)") : nil
    }

    public func createAccount(name: String, gecos: String, shell: String, groups: [String]) -> Result<Void, AccountError> {
        let member = groups.isEmpty ? "" : ", member of \(groups.joined(separator: ", "))"
        let result = change("create the account \(name) (useradd -m, GECOS '\(gecos)', shell \(shell)\(member))") {
            inner.createAccount(name: name, gecos: gecos, shell: shell, groups: groups)
        }
        if dryRun {
            created.insert(name)
            for group in groups { joined.insert("\(name):\(group)") }
        }
        return result
    }

    public func createSystemGroup(_ group: String) -> Result<Void, AccountError> {
        guard !inner.groupExists(group) else { return .success(()) }
        return change("create the system group \(group) (groupadd --system)") { inner.createSystemGroup(group) }
    }

    public func gecos(of name: String) -> String? { inner.gecos(of: name) }

    public func setGECOS(name: String, gecos: String) -> Result<Void, AccountError> {
        change("set the GECOS of \(name) to '\(gecos)'") { inner.setGECOS(name: name, gecos: gecos) }
    }

    public func passwordMatches(name: String, password: SecretBytes) -> Bool? {
        let matches = inner.passwordMatches(name: name, password: password)
        log.step("local", "local password of \(name): \(matches == true ? "already the cloud password" : matches == false ? "differs from the cloud password" : "no local hash to compare")")
        return matches
    }

    public func setPassword(name: String, password: SecretBytes) -> Result<Void, AccountError> {
        change("set the local password of \(name) to the cloud password (chpasswd, on stdin)") { inner.setPassword(name: name, password: password) }
    }

    public func lockPassword(name: String) -> Result<Void, AccountError> {
        change("lock the local password of \(name): sign-in is by device authorization only (usermod --lock)") { inner.lockPassword(name: name) }
    }

    public func groupExists(_ group: String) -> Bool { inner.groupExists(group) }
    public func groupID(of group: String) -> UInt32? { inner.groupID(of: group) }
    public func isMember(_ name: String, of group: String) -> Bool { joined.contains("\(name):\(group)") || inner.isMember(name, of: group) }

    public func addMember(_ name: String, to group: String) -> Result<Void, AccountError> {
        if dryRun { joined.insert("\(name):\(group)") }
        return change("add \(name) to the local group \(group)") { inner.addMember(name, to: group) }
    }

    public func removeMember(_ name: String, from group: String) -> Result<Void, AccountError> {
        change("remove \(name) from the local group \(group)") { inner.removeMember(name, from: group) }
    }
}

/// The managed-user records: reads go to the state directory; with `dryRun`, saves are kept in
/// memory only and reported.
public final class TracingState: ManagedUserStore {
    private let inner: ManagedUserStore
    private let log: TerminalLog
    private let dryRun: Bool
    private var pending: [String: ManagedUser] = [:]
    /// The records' directory: a dry run on a machine where no sign-in happened yet finds none.
    private let recordsDirectory: String

    public init(_ inner: ManagedUserStore, directory: String, log: TerminalLog, dryRun: Bool) {
        self.inner = inner
        self.recordsDirectory = "\(directory)/users"
        self.log = log
        self.dryRun = dryRun
    }

    public func user(named name: String) -> Result<ManagedUser?, AccountError> {
        if let record = pending[name] { return .success(record) }
        let found = inner.user(named: name)
        if dryRun, case .failure = found, access(recordsDirectory, F_OK) != 0 {
            // The real sign-in creates the directory before its first record.
            return .success(nil)
        }
        return found
    }

    public func save(_ user: ManagedUser) -> Result<Void, AccountError> {
        let what = "record \(user.name) as managed: subject \(user.subject), origin \(user.origin.rawValue), granted groups \(user.grantedGroups.isEmpty ? "none" : user.grantedGroups.joined(separator: ", ")), verdict \(user.lastVerdict.rawValue)"
        if dryRun {
            pending[user.name] = user
            log.step("local", "would \(what) (--dry-run: not written)")
            return .success(())
        }
        let result = inner.save(user)
        if case .success = result { log.step("local", "did \(what)") }
        return result
    }

    public func allUsers() -> Result<[ManagedUser], AccountError> { inner.allUsers() }

    public func withLock<T>(_ body: () -> Result<T, AccountError>) -> Result<T, AccountError> {
        dryRun ? body() : inner.withLock(body)
    }
}
