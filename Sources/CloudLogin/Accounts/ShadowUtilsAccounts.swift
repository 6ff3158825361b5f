import CCrypt
import Glibc

/// The system's accounts, changed with shadow-utils so that locking, login.defs, UID ranges and
/// skeleton files behave as the distribution intends (docs/design.md, "The local account").
public struct ShadowUtilsAccounts: LocalAccountStore {
    private let system = SystemAccounts()
    /// The sign-in's overall deadline: no tool runs past it (nor longer than 30 s).
    private let deadline: Deadline?

    public init(deadline: Deadline? = nil) {
        self.deadline = deadline
    }

    private var timeLimit: Int64 { min(ToolRunner.timeLimitMilliseconds, deadline?.remainingMilliseconds ?? ToolRunner.timeLimitMilliseconds) }

    public func account(named name: String) -> LocalAccount? { system.account(named: name) }

    public func createAccount(name: String, gecos: String, shell: String, groups: [String]) -> Result<Void, AccountError> {
        var arguments = ["--create-home", "--user-group", "--shell", shell, "--comment", gecos]
        if !groups.isEmpty { arguments += ["--groups", groups.joined(separator: ",")] }
        return ToolRunner.check("/usr/sbin/useradd", arguments + ["--", name], timeLimit: timeLimit)
    }

    public func createSystemGroup(_ group: String) -> Result<Void, AccountError> {
        guard !groupExists(group) else { return .success(()) }
        // -f: no error when a concurrent sign-in created it first.
        return ToolRunner.check("/usr/sbin/groupadd", ["--system", "--force", "--", group], timeLimit: timeLimit)
    }

    public func groupID(of group: String) -> UInt32? { system.groupID(of: group) }

    public func gecos(of name: String) -> String? {
        withPasswd(name) { entry in entry.pw_gecos.map { String(cString: $0) } ?? "" }
    }

    public func setGECOS(name: String, gecos: String) -> Result<Void, AccountError> {
        ToolRunner.check("/usr/sbin/usermod", ["--comment", gecos, "--", name], timeLimit: timeLimit)
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
        return ToolRunner.check("/usr/sbin/chpasswd", ["--crypt-method", Self.encryptMethod()], input: line, timeLimit: timeLimit)
    }

    public func lockPassword(name: String) -> Result<Void, AccountError> {
        ToolRunner.check("/usr/sbin/usermod", ["--lock", "--", name], timeLimit: timeLimit)
    }

    public func groupExists(_ group: String) -> Bool {
        system.groupID(of: group) != nil
    }

    public func isMember(_ name: String, of group: String) -> Bool { system.isMember(name, of: group) }

    public func addMember(_ name: String, to group: String) -> Result<Void, AccountError> {
        ToolRunner.check("/usr/bin/gpasswd", ["--add", name, group], timeLimit: timeLimit)
    }

    public func removeMember(_ name: String, from group: String) -> Result<Void, AccountError> {
        ToolRunner.check("/usr/bin/gpasswd", ["--delete", name, group], timeLimit: timeLimit)
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
}
