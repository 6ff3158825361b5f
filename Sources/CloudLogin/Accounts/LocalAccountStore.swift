/// Why the local account could not be created or updated.
public enum AccountError: Error, Equatable, Sendable, CustomStringConvertible {
    case toolFailed(String, String)
    case stateFailed(String)
    /// The state directory itself fails its checks (owner, mode, symlink): no record can be
    /// trusted, including the absence of one.
    case stateLayout(String)
    case lockFailed(String)

    public var description: String {
        switch self {
        case .toolFailed(let tool, let why): return "\(tool) failed: \(why)"
        case .stateFailed(let why), .stateLayout(let why): return "state: \(why)"
        case .lockFailed(let why): return "lock: \(why)"
        }
    }
}

/// The local user and group database, as CloudLogin changes it. The system implementation
/// uses shadow-utils; tests of the policy use a table.
public protocol LocalAccountStore: LocalAccountDirectory {
    /// Creates `name` with a home from /etc/skel, its own group, `shell`, `gecos`, and as a
    /// member of `groups` from the start (the managed mark).
    func createAccount(name: String, gecos: String, shell: String, groups: [String]) -> Result<Void, AccountError>
    /// Creates a system group (the managed mark's group) if it does not exist.
    func createSystemGroup(_ group: String) -> Result<Void, AccountError>
    /// The GECOS field of `name`.
    func gecos(of name: String) -> String?
    func setGECOS(name: String, gecos: String) -> Result<Void, AccountError>
    /// Whether `password` matches the local shadow hash (nil: no usable hash, or not root).
    func passwordMatches(name: String, password: SecretBytes) -> Bool?
    /// Sets the local password (the tool gets it on stdin).
    func setPassword(name: String, password: SecretBytes) -> Result<Void, AccountError>
    /// Locks the local password (`usermod --lock`), so that no password signs in to it.
    func lockPassword(name: String) -> Result<Void, AccountError>
    func groupExists(_ group: String) -> Bool
    func addMember(_ name: String, to group: String) -> Result<Void, AccountError>
    func removeMember(_ name: String, from group: String) -> Result<Void, AccountError>
}
