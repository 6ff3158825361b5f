import Glibc

/// Owner and mode checks of the files and directories CloudLogin trusts, in the admin's words.
enum FileCheck {
    struct Problem {
        var message: String
        var fix: String
    }

    enum DirectoryState {
        case fine(String)
        /// Safe, but more open than CloudLogin makes it.
        case loose(String)
        case missing(String)
        case unsafe(Problem)
    }

    static func octal(_ mode: mode_t) -> String {
        let text = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - text.count)) + text
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode : nil
    }

    /// A directory whose files CloudLogin trusts: whoever can write it can replace them.
    static func trustedDirectory(_ path: String) -> Problem? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            return Problem(message: "files: \(path) cannot be examined: \(String(cString: strerror(errno)))", fix: "create it: install -d -o root -g root -m 0755 \(path)")
        }
        if info.st_uid != 0 {
            return Problem(message: "files: the directory \(path) is owned by uid \(info.st_uid), not root: that user can replace the config",
                           fix: "chown root:root \(path)")
        }
        if info.st_mode & (S_IWGRP | S_IWOTH) != 0 {
            return Problem(message: "files: the directory \(path) is writable by group or others (mode \(octal(info.st_mode))): anyone who can write it can replace the config",
                           fix: "chmod go-w \(path)")
        }
        return nil
    }

    /// A file CloudLogin trusts (the CA file): root-owned, writable by root only.
    static func trustedFile(_ path: String, what: String) -> Problem? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            return Problem(message: "files: \(what) \(path) cannot be read: \(String(cString: strerror(errno))); TLS with the IdP will fail",
                           fix: "put the PEM of the CA that signed the IdP's certificate there, or remove ca_file")
        }
        if (info.st_mode & S_IFMT) != S_IFREG {
            return Problem(message: "files: \(what) \(path) is not a regular file", fix: "point \(what) at a PEM file")
        }
        if info.st_uid != 0 {
            return Problem(message: "files: \(what) \(path) is owned by uid \(info.st_uid), not root: that user can add a CA and impersonate the IdP",
                           fix: "chown root:root \(path)")
        }
        if info.st_mode & (S_IWGRP | S_IWOTH) != 0 {
            return Problem(message: "files: \(what) \(path) is writable by group or others (mode \(octal(info.st_mode))): anyone can add a CA and impersonate the IdP",
                           fix: "chmod 644 \(path)")
        }
        return nil
    }

    /// The state or cache directory, as the module will find it.
    static func stateDirectory(_ path: String, wanted: mode_t, what: String) -> DirectoryState {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT {
                return .missing("files: the \(what) \(path) does not exist yet (the package creates it; the module makes it at the first sign-in as root)")
            }
            return .unsafe(Problem(message: "files: the \(what) \(path) cannot be examined: \(String(cString: strerror(errno)))", fix: "check the path in the config"))
        }
        if (info.st_mode & S_IFMT) == S_IFLNK {
            return .unsafe(Problem(message: "files: the \(what) \(path) is a symlink: CloudLogin refuses to use it",
                                   fix: "replace it by a real directory: rm \(path); install -d -o root -g root -m \(octal(wanted)) \(path)"))
        }
        if (info.st_mode & S_IFMT) != S_IFDIR {
            return .unsafe(Problem(message: "files: the \(what) \(path) is not a directory", fix: "rm \(path); install -d -o root -g root -m \(octal(wanted)) \(path)"))
        }
        if info.st_uid != 0 {
            return .unsafe(Problem(message: "files: the \(what) \(path) is owned by uid \(info.st_uid), not root: CloudLogin will not use it, and that user could forge its content",
                                   fix: "chown root:root \(path)"))
        }
        if info.st_mode & (S_IWGRP | S_IWOTH) != 0 {
            return .unsafe(Problem(message: "files: the \(what) \(path) is writable by group or others (mode \(octal(info.st_mode))): CloudLogin will not use it, since anyone could plant records or signing keys there",
                                   fix: "chmod \(octal(wanted)) \(path)"))
        }
        if info.st_mode & 0o7777 & ~wanted != 0 {
            return .loose("files: the \(what) \(path) is mode \(octal(info.st_mode)), more open than the \(octal(wanted)) CloudLogin gives it (readable, not writable, by others)")
        }
        return .fine("files: the \(what) \(path) is owned by root, mode \(octal(info.st_mode))")
    }

    /// The service files of a pam.d directory (no hidden files, backups or package leftovers).
    static func serviceFiles(in directory: String) -> [String]? {
        guard let handle = opendir(directory) else { return nil }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name.hasPrefix(".") || name.hasSuffix("~") || name.contains(".dpkg-") || name.contains(".ucf-") { continue }
            var info = stat()
            guard stat("\(directory)/\(name)", &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            names.append(name)
        }
        return names.sorted()
    }

    /// A small text file (pam.d files are a few KiB).
    static func readText(_ path: String) -> String? {
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
