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

/// Looks up local accounts (NSS). Tests pass a fixed table.
public protocol LocalAccountDirectory {
    func account(named name: String) -> LocalAccount?
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
}
