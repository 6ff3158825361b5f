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
        /// The IdP refused the synced password, or gave an answer that revokes offline sign-in
        /// (`RejectionReason.revokesOfflineSignIn`: unknown, disabled, blocked, locked out,
        /// refused by access policy): no offline sign-in until the next online success.
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
    /// Local groups CloudLogin took away again (demoted, or refused by the IdP). A process
    /// started before that may still carry the group's id: such a process is refused
    /// (`LoginFlow.groupsTakenAway`). Cleared for a group when CloudLogin grants it again.
    public var revokedGroups: [String] = []

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
        case revokedGroups = "revoked_groups"
    }

    /// Reads records of every release: `revoked_groups` came with 0.2 and is empty when absent
    /// (docs/state.md).
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        subject = try container.decode(String.self, forKey: .subject)
        idpLogin = try container.decode(String.self, forKey: .idpLogin)
        origin = try container.decode(Origin.self, forKey: .origin)
        grantedGroups = try container.decode([String].self, forKey: .grantedGroups)
        lastOnlineSuccess = try container.decode(Int64.self, forKey: .lastOnlineSuccess)
        lastVerdict = try container.decode(Verdict.self, forKey: .lastVerdict)
        allowed = try container.decode(Bool.self, forKey: .allowed)
        revokedGroups = try container.decodeIfPresent([String].self, forKey: .revokedGroups) ?? []
    }
}

/// The durable mark of an account CloudLogin manages: membership in the local group
/// `cloudlogin`. It lives in /etc/group, beside the account, so it survives the loss of the
/// account's record in /var/lib/cloudlogin: an account with the mark is never taken for an
/// unmanaged local account (docs/state.md). Users cannot take themselves out of a group.
public enum ManagedMark {
    public static let group = "cloudlogin"
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
