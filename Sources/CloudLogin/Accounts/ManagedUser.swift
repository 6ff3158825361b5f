/// What CloudLogin remembers about a local account it manages (`/var/lib/cloudlogin/users/NAME`).
public struct ManagedUser: Codable, Equatable, Sendable {
    /// How the account came to be managed.
    public enum Origin: String, Codable, Sendable {
        /// CloudLogin created it at the first sign-in.
        case created
        /// It existed and became managed with `migrate = yes`.
        case migrated
    }

    /// The IdP's last word on this user.
    public enum Verdict: String, Codable, Sendable {
        /// The last online sign-in succeeded.
        case accepted
        /// The IdP refused the synced password, or said the user is disabled or unknown:
        /// no offline sign-in until the next online success.
        case revoked
    }

    public var name: String
    /// The IdP subject the account is bound to.
    public var subject: String
    public var idpLogin: String
    public var origin: Origin
    /// Local groups CloudLogin added the user to (only these are ever taken away).
    public var grantedGroups: [String]
    /// Seconds since the epoch of the last online success.
    public var lastOnlineSuccess: Int64
    public var lastVerdict: Verdict
    /// Whether the user was in `allow_groups` at the last online sign-in.
    public var allowed: Bool

    public init(name: String, subject: String, idpLogin: String, origin: Origin, grantedGroups: [String] = [],
                lastOnlineSuccess: Int64, lastVerdict: Verdict = .accepted, allowed: Bool = true) {
        self.name = name
        self.subject = subject
        self.idpLogin = idpLogin
        self.origin = origin
        self.grantedGroups = grantedGroups
        self.lastOnlineSuccess = lastOnlineSuccess
        self.lastVerdict = lastVerdict
        self.allowed = allowed
    }

    enum CodingKeys: String, CodingKey {
        case name, subject, origin, allowed
        case idpLogin = "idp_login"
        case grantedGroups = "granted_groups"
        case lastOnlineSuccess = "last_online_success"
        case lastVerdict = "last_verdict"
    }
}

/// Where managed-user records live. The module uses `StateDirectory`; tests a dictionary.
public protocol ManagedUserStore {
    /// The record for `name`, nil if CloudLogin does not manage that account.
    func user(named name: String) -> Result<ManagedUser?, AccountError>
    func save(_ user: ManagedUser) -> Result<Void, AccountError>
    /// Every record, sorted by name.
    func allUsers() -> Result<[ManagedUser], AccountError>
    /// Runs `body` holding the store's exclusive lock (one account change at a time on this
    /// machine, across processes).
    func withLock<T>(_ body: () -> Result<T, AccountError>) -> Result<T, AccountError>
}
