import CloudLogin
import Glibc

/// The files and directories CloudLogin trusts, judged by the module's own rule (`FileTrust`)
/// and described in the admin's words. `owner` is the uid that must own them: root (tests pass
/// their own).
public enum FileCheck {
    public struct Problem: Equatable, Sendable {
        public var message: String
        public var fix: String
    }

    public enum DirectoryState: Equatable, Sendable {
        case fine(String)
        /// Safe, but more open than CloudLogin makes it.
        case loose(String)
        case missing(String)
        case unsafe(Problem)
    }

    /// A mode as chmod takes it: "0755".
    public static func octal(_ mode: mode_t) -> String {
        let text = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - text.count)) + text
    }

    public static func mode(_ path: String) -> mode_t? {
        try? FileTrust.status(of: path, followingSymlinks: true).get().st_mode
    }

    /// A directory whose files CloudLogin trusts: whoever can write it can replace them.
    public static func trustedDirectory(_ path: String, owner: uid_t = 0) -> Problem? {
        switch FileTrust(kind: nil, owner: owner).examine(path, followingSymlinks: true) {
        case .success, .failure(.untrusted(.symlink)), .failure(.untrusted(.wrongKind)): return nil
        case .failure(.system(let error)):
            return Problem(message: "files: \(path) cannot be examined: \(error)", fix: "create it: install -d -o root -g root -m 0755 \(path)")
        case .failure(.untrusted(.wrongOwner(let found))):
            return Problem(message: "files: the directory \(path) is owned by uid \(found), not \(FileTrust.name(of: owner)): that user can replace the config",
                           fix: "chown root:root \(path)")
        case .failure(.untrusted(.writableByOthers(let mode))):
            return Problem(message: "files: the directory \(path) is writable by group or others (mode \(octal(mode))): anyone who can write it can replace the config",
                           fix: "chmod go-w \(path)")
        }
    }

    /// A file CloudLogin trusts (the CA file): root-owned, writable by root only.
    public static func trustedFile(_ path: String, what: String, owner: uid_t = 0) -> Problem? {
        switch FileTrust.regularFile(owner: owner).examine(path, followingSymlinks: true) {
        case .success: return nil
        case .failure(.system(let error)):
            return Problem(message: "files: \(what) \(path) cannot be read: \(error); TLS with the IdP will fail",
                           fix: "put the PEM of the CA that signed the IdP's certificate there, or remove ca_file")
        case .failure(.untrusted(.symlink)), .failure(.untrusted(.wrongKind)):
            return Problem(message: "files: \(what) \(path) is not a regular file", fix: "point \(what) at a PEM file")
        case .failure(.untrusted(.wrongOwner(let found))):
            return Problem(message: "files: \(what) \(path) is owned by uid \(found), not \(FileTrust.name(of: owner)): that user can add a CA and impersonate the IdP",
                           fix: "chown root:root \(path)")
        case .failure(.untrusted(.writableByOthers(let mode))):
            return Problem(message: "files: \(what) \(path) is writable by group or others (mode \(octal(mode))): anyone can add a CA and impersonate the IdP",
                           fix: "chmod 644 \(path)")
        }
    }

    /// The state or cache directory, as the module will find it.
    public static func stateDirectory(_ path: String, wanted: mode_t, what: String, owner: uid_t = 0) -> DirectoryState {
        switch FileTrust.directory(owner: owner).examine(path, followingSymlinks: false) {
        case .failure(.system(let error)) where error.code == ENOENT:
            return .missing("files: the \(what) \(path) does not exist yet (the package creates it; the module makes it at the first sign-in as root)")
        case .failure(.system(let error)):
            return .unsafe(Problem(message: "files: the \(what) \(path) cannot be examined: \(error)", fix: "check the path in the config"))
        case .failure(.untrusted(.symlink)):
            return .unsafe(Problem(message: "files: the \(what) \(path) is a symlink: CloudLogin refuses to use it",
                                   fix: "replace it by a real directory: rm \(path); install -d -o root -g root -m \(octal(wanted)) \(path)"))
        case .failure(.untrusted(.wrongKind)):
            return .unsafe(Problem(message: "files: the \(what) \(path) is not a directory", fix: "rm \(path); install -d -o root -g root -m \(octal(wanted)) \(path)"))
        case .failure(.untrusted(.wrongOwner(let found))):
            return .unsafe(Problem(message: "files: the \(what) \(path) is owned by uid \(found), not \(FileTrust.name(of: owner)): CloudLogin will not use it, and that user could forge its content",
                                   fix: "chown root:root \(path)"))
        case .failure(.untrusted(.writableByOthers(let mode))):
            return .unsafe(Problem(message: "files: the \(what) \(path) is writable by group or others (mode \(octal(mode))): CloudLogin will not use it, since anyone could plant records or signing keys there",
                                   fix: "chmod \(octal(wanted)) \(path)"))
        case .success(let info):
            if info.st_mode & 0o7777 & ~wanted != 0 {
                return .loose("files: the \(what) \(path) is mode \(octal(info.st_mode)), more open than the \(octal(wanted)) CloudLogin gives it (readable, not writable, by others)")
            }
            return .fine("files: the \(what) \(path) is owned by \(FileTrust.name(of: owner)), mode \(octal(info.st_mode))")
        }
    }

    /// The service files of a pam.d directory (no hidden files, backups or package leftovers).
    public static func serviceFiles(in directory: String) -> [String]? {
        guard let handle = opendir(directory) else { return nil }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name.hasPrefix(".") || name.hasSuffix("~") || name.contains(".dpkg-") || name.contains(".ucf-") { continue }
            guard case .success(let info) = FileTrust.status(of: "\(directory)/\(name)", followingSymlinks: true),
                  (info.st_mode & S_IFMT) == S_IFREG else { continue }
            names.append(name)
        }
        return names.sorted()
    }

    /// A small text file (pam.d files are a few KiB).
    public static func readText(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let got = fread(&buffer, 1, buffer.count, file)
            if got == 0 { break }
            bytes.append(contentsOf: buffer[0..<got])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
