import Glibc

/// Who could have written a file or directory whose content CloudLogin trusts: the config, a
/// secret or CA file, the state directory and its records, the metadata cache — and what
/// `cloudlogin check` and `setup` say about them. One rule for all of them: the path is the kind
/// asked for (a regular file or a directory; never a symlink where it is examined without
/// following one), it is owned by `owner` (root for the module; tests pass their own uid), and
/// neither group nor others may write it. Whoever else could write it could forge what it says.
///
/// The rule only judges; each caller words the refusal for its reader (syslog, `check`).
public struct FileTrust: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case regularFile, directory

        var fileType: mode_t { self == .regularFile ? S_IFREG : S_IFDIR }
    }

    /// Why a path may not be trusted, in the order the rule looks: kind, owner, mode.
    public enum Violation: Equatable, Sendable {
        /// A symlink where the path was examined without following it (lstat, O_NOFOLLOW).
        case symlink
        /// Not the kind asked for (a directory, a FIFO, a device…).
        case wrongKind
        case wrongOwner(uid_t)
        /// Writable by group or others; the full mode, for the message.
        case writableByOthers(mode: mode_t)
    }

    /// What must be at the path; nil: anything (the directory that holds a file, examined
    /// through symlinks: only who could replace the file matters).
    public var kind: Kind?
    /// The uid that must own it.
    public var owner: uid_t

    public init(kind: Kind?, owner: uid_t) {
        self.kind = kind
        self.owner = owner
    }

    public static func regularFile(owner: uid_t) -> FileTrust { FileTrust(kind: .regularFile, owner: owner) }
    public static func directory(owner: uid_t) -> FileTrust { FileTrust(kind: .directory, owner: owner) }

    /// nil when a path with this status may be trusted.
    public func violation(of info: stat) -> Violation? {
        if let kind {
            let type = info.st_mode & S_IFMT
            if type == S_IFLNK { return .symlink }
            if type != kind.fileType { return .wrongKind }
        }
        guard info.st_uid == owner else { return .wrongOwner(info.st_uid) }
        guard info.st_mode & (S_IWGRP | S_IWOTH) == 0 else { return .writableByOthers(mode: info.st_mode) }
        return nil
    }

    /// The status of `path` itself (lstat: a symlink is reported as one) or, following
    /// symlinks, of what it names (stat); the errno when there is none.
    public static func status(of path: String, followingSymlinks: Bool) -> Result<stat, SystemError> {
        var info = stat()
        let found = followingSymlinks ? stat(path, &info) : lstat(path, &info)
        return found == 0 ? .success(info) : .failure(SystemError(errno))
    }

    /// Why a path was not trusted: it could not be examined, or it breaks the rule.
    public enum Refusal: Error, Equatable, Sendable {
        /// stat, open or fstat failed (ENOENT: nothing there; ELOOP: a symlink not followed).
        case system(SystemError)
        case untrusted(Violation)
    }

    /// The status of what is at `path` (lstat, or stat when `followingSymlinks`) if it may be
    /// trusted.
    public func examine(_ path: String, followingSymlinks: Bool) -> Result<stat, Refusal> {
        switch Self.status(of: path, followingSymlinks: followingSymlinks) {
        case .failure(let error): return .failure(.system(error))
        case .success(let info): return violation(of: info).map { .failure(.untrusted($0)) } ?? .success(info)
        }
    }

    /// Opens `path` for reading and checks the open file (so what is read is what was checked):
    /// non-blocking, so a FIFO or device at the path cannot hang the host (it is refused as
    /// the wrong kind; reading a regular file is unaffected), and without following a symlink
    /// at the last component unless `followingSymlinks`.
    public func open(_ path: String, followingSymlinks: Bool) -> Result<OpenedFile, Refusal> {
        let flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (followingSymlinks ? 0 : O_NOFOLLOW)
        let descriptor = Glibc.open(path, flags)
        guard descriptor >= 0 else { return .failure(.system(SystemError(errno))) }
        let file = OpenedFile(descriptor: descriptor)
        guard fstat(descriptor, &file.info) == 0 else { return .failure(.system(SystemError(errno))) }
        if let violation = violation(of: file.info) { return .failure(.untrusted(violation)) }
        return .success(file)
    }

    /// How a message names the owner a path should have: "root", or "uid 1000" (tests).
    public static func name(of owner: uid_t) -> String {
        owner == 0 ? "root" : "uid \(owner)"
    }

    /// The directory that holds `path` ("." for a bare name, "/" for a file at the root).
    public static func directory(containing path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }
}

/// A file `FileTrust.open` checked, open for reading; closed when the value goes away.
public final class OpenedFile {
    public let descriptor: Int32
    /// Its status when it was opened.
    public fileprivate(set) var info = stat()

    fileprivate init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    public enum ReadFailure: Error, Equatable, Sendable {
        case system(SystemError)
        /// More than the limit.
        case tooLarge
    }

    /// The rest of the file, at most `limit` bytes, into wiped storage (a secret file's
    /// content never sits in an ordinary array).
    public func readAll(limit: Int) -> Result<SecretBytes, ReadFailure> {
        let content = SecretBytes(capacity: 1024)
        var chunk = [UInt8](repeating: 0, count: 4096)
        defer { explicit_bzero(&chunk, chunk.count) }
        while true {
            let got = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if got < 0 {
                if errno == EINTR { continue }
                return .failure(.system(SystemError(errno)))
            }
            if got == 0 { return .success(content) }
            chunk.withUnsafeBytes { content.append(UnsafeRawBufferPointer(rebasing: $0[0..<got])) }
            if content.count > limit { return .failure(.tooLarge) }
        }
    }
}

/// An errno, with strerror's words as its description.
public struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: Int32

    public init(_ code: Int32) { self.code = code }

    public var description: String { String(cString: strerror(code)) }
}
