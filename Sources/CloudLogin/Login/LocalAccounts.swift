import Glibc

/// A local account as the system's user database has it.
public struct LocalAccount: Equatable, Sendable {
    public var name: String
    public var uid: UInt32
    public var gid: UInt32
    public var home: String

    public init(name: String, uid: UInt32, gid: UInt32, home: String) {
        self.name = name
        self.uid = uid
        self.gid = gid
        self.home = home
    }
}

/// Looks up local accounts and groups (NSS). Tests pass a fixed table.
public protocol LocalAccountDirectory {
    func account(named name: String) -> LocalAccount?
    /// Whether `name` is a supplementary member of `group`.
    func isMember(_ name: String, of group: String) -> Bool
    /// The id of `group`, nil if there is no such group.
    func groupID(of group: String) -> UInt32?
}

extension LocalAccountDirectory {
    /// Whether `name` carries CloudLogin's durable mark (`ManagedMark`).
    public func isMarked(_ name: String) -> Bool { isMember(name, of: ManagedMark.group) }
}

/// The system's user database through `getpwnam_r`.
public struct SystemAccounts: LocalAccountDirectory {
    public init() {}

    public func account(named name: String) -> LocalAccount? {
        guard !name.isEmpty, !name.utf8.contains(0) else { return nil }
        var size = 4096
        while size <= 1 << 20 {
            var entry = passwd()
            var result: UnsafeMutablePointer<passwd>?
            var buffer = [CChar](repeating: 0, count: size)
            var status: Int32 = 0
            // The strings of the entry point into the buffer: read them while it is pinned.
            let account: LocalAccount? = buffer.withUnsafeMutableBufferPointer { storage in
                guard let base = storage.baseAddress else { return nil }
                status = getpwnam_r(name, &entry, base, storage.count, &result)
                guard status == 0, let found = result?.pointee, let entryName = found.pw_name else { return nil }
                return LocalAccount(name: String(cString: entryName), uid: found.pw_uid, gid: found.pw_gid,
                                    home: found.pw_dir.map { String(cString: $0) } ?? "")
            }
            if status == ERANGE { size *= 4; continue }
            return account
        }
        return nil
    }

    public func isMember(_ name: String, of group: String) -> Bool {
        withGroup(group) { entry in
            var member = entry.gr_mem
            while let current = member?.pointee {
                if String(cString: current) == name { return true }
                member = member?.advanced(by: 1)
            }
            return false
        } ?? false
    }

    public func groupID(of group: String) -> UInt32? {
        withGroup(group) { entry in entry.gr_gid }
    }

    /// Runs `body` with the group entry of `name` while its strings are valid.
    func withGroup<T>(_ name: String, _ body: (group) -> T) -> T? {
        guard !name.isEmpty, !name.utf8.contains(0) else { return nil }
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var size = 16384
        while size <= 1 << 22 {
            var buffer = [CChar](repeating: 0, count: size)
            var status: Int32 = 0
            let answer: T? = buffer.withUnsafeMutableBufferPointer { storage -> T? in
                guard let base = storage.baseAddress else { return nil }
                status = getgrnam_r(name, &entry, base, storage.count, &result)
                guard status == 0, let found = result?.pointee else { return nil }
                return body(found)
            }
            if status == ERANGE { size *= 4; continue }
            return answer
        }
        return nil
    }
}
