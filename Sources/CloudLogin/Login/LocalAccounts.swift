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
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        while true {
            let status = getpwnam_r(name, &entry, &buffer, buffer.count, &result)
            if status == ERANGE && buffer.count < 1 << 20 {
                buffer = [CChar](repeating: 0, count: buffer.count * 4)
                continue
            }
            guard status == 0, let found = result?.pointee, let entryName = found.pw_name else { return nil }
            return LocalAccount(name: String(cString: entryName), uid: found.pw_uid, gid: found.pw_gid,
                                home: found.pw_dir.map { String(cString: $0) } ?? "")
        }
    }
}
