import Glibc

/// Who the process running the module is, as far as the sign-in cares: in `sudo` the real uid
/// and the supplementary groups are the invoking user's, and sudo's default policy
/// (`group_source=static`) trusts those groups. Tests pass fixed values.
public protocol CallerCredentials {
    /// The process's real uid (the invoking user in sudo and su, root in login).
    var realUID: UInt32 { get }
    /// The process's supplementary group ids.
    func groupIDs() -> [UInt32]
}

/// The credentials of this process.
public struct ProcessCredentials: CallerCredentials {
    public init() {}

    public var realUID: UInt32 { getuid() }

    public func groupIDs() -> [UInt32] {
        let count = getgroups(0, nil)
        guard count > 0 else { return [] }
        var groups = [gid_t](repeating: 0, count: Int(count) &+ 8) // trap-check: widening Int32 to Int
        let got = groups.withUnsafeMutableBufferPointer { buffer in
            getgroups(Int32(truncatingIfNeeded: buffer.count), buffer.baseAddress)
        }
        guard got > 0 else { return [] }
        return Array(groups.prefix(Int(got))) // trap-check: widening Int32 to Int
    }
}
