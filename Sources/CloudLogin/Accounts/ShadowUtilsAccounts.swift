import CCrypt
import Glibc

/// The system's accounts, changed with shadow-utils so that locking, login.defs, UID ranges and
/// skeleton files behave as the distribution intends (DESIGN.md §2).
public struct ShadowUtilsAccounts: LocalAccountStore {
    private let system = SystemAccounts()

    public init() {}

    public func account(named name: String) -> LocalAccount? { system.account(named: name) }

    public func createAccount(name: String, gecos: String, shell: String) -> Result<Void, AccountError> {
        ToolRunner.check("/usr/sbin/useradd", ["--create-home", "--user-group", "--shell", shell, "--comment", gecos, "--", name])
    }

    public func gecos(of name: String) -> String? {
        withPasswd(name) { entry in entry.pw_gecos.map { String(cString: $0) } ?? "" }
    }

    public func setGECOS(name: String, gecos: String) -> Result<Void, AccountError> {
        ToolRunner.check("/usr/sbin/usermod", ["--comment", gecos, "--", name])
    }

    public func passwordMatches(name: String, password: SecretBytes) -> Bool? {
        let answer = password.withCString { CCrypt_verify_shadow(name, $0) }
        switch answer {
        case 1: return true
        case 0: return false
        default: return nil
        }
    }

    public func setPassword(name: String, password: SecretBytes) -> Result<Void, AccountError> {
        guard !password.contains(UInt8(ascii: "\n")), !password.contains(0) else {
            return .failure(.toolFailed("chpasswd", "the password contains a line break and cannot be stored locally"))
        }
        let line = SecretBytes(capacity: name.utf8.count + password.count + 2)
        line.append(name)
        line.append(UInt8(ascii: ":"))
        line.append(password)
        line.append(UInt8(ascii: "\n"))
        defer { line.wipe() }
        // -c: hash here with login.defs' method, not through PAM's password stack (which holds
        // pam_cloudlogin, which refuses local changes for managed users).
        return ToolRunner.check("/usr/sbin/chpasswd", ["--crypt-method", Self.encryptMethod()], input: line)
    }

    public func groupExists(_ group: String) -> Bool {
        withGroup(group) { _ in true } ?? false
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

    public func addMember(_ name: String, to group: String) -> Result<Void, AccountError> {
        ToolRunner.check("/usr/bin/gpasswd", ["--add", name, group])
    }

    public func removeMember(_ name: String, from group: String) -> Result<Void, AccountError> {
        ToolRunner.check("/usr/bin/gpasswd", ["--delete", name, group])
    }

    /// ENCRYPT_METHOD from /etc/login.defs (SHA256, SHA512 or YESCRYPT; default YESCRYPT).
    static func encryptMethod() -> String {
        guard let file = fopen("/etc/login.defs", "re") else { return "YESCRYPT" }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        var method = "YESCRYPT"
        while getline(&line, &capacity, file) > 0 {
            guard let line else { break }
            let fields = String(cString: line).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
            if fields.count >= 2, fields[0] == "ENCRYPT_METHOD", ["SHA256", "SHA512", "YESCRYPT"].contains(String(fields[1])) {
                method = String(fields[1])
            }
        }
        return method
    }

    private func withPasswd<T>(_ name: String, _ body: (passwd) -> T) -> T? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        return buffer.withUnsafeMutableBufferPointer { storage -> T? in
            guard let base = storage.baseAddress, getpwnam_r(name, &entry, base, storage.count, &result) == 0,
                  let found = result?.pointee else { return nil }
            return body(found)
        }
    }

    private func withGroup<T>(_ name: String, _ body: (group) -> T) -> T? {
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
