import Glibc

/// Writes a file so that a reader finds the old content or the new one, never half of either,
/// and a crash leaves one of them: the managed-user records, the metadata cache, and the config
/// `cloudlogin setup` writes.
public enum AtomicFile {
    /// Why nothing was written (the file at the path is as it was).
    public struct Failure: Error, Equatable, Sendable, CustomStringConvertible {
        public enum Step: Equatable, Sendable {
            /// The temporary file could not be created.
            case create
            /// Setting its owner or mode, writing it or syncing it failed.
            case write
            /// Moving it into place failed (rename, or link without `replacing`: EEXIST when a
            /// file is there).
            case publish
        }

        public var step: Step
        /// The temporary file for `.create`, else the file to write.
        public var path: String
        public var error: SystemError

        public var description: String { "cannot write \(path): \(error)" }
    }

    /// Writes `bytes` to a temporary file beside `path` (`path.tmp.PID`, created exclusively
    /// and never through a symlink; one left by a dead process with the same pid is removed
    /// first), with `mode` set explicitly (not the host's umask) and, when given, `owner`;
    /// syncs it, moves it into place — `rename`, or with `replacing: false` `link`, which
    /// refuses to replace a file that is there — and syncs the directory.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t,
                             owner: (uid: uid_t, gid: gid_t)? = nil, replacing: Bool = true) -> Result<Void, Failure> {
        let temporary = "\(path).tmp.\(getpid())"
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW
        var descriptor = open(temporary, flags, mode)
        if descriptor < 0 && errno == EEXIST {
            unlink(temporary)
            descriptor = open(temporary, flags, mode)
        }
        guard descriptor >= 0 else { return .failure(Failure(step: .create, path: temporary, error: SystemError(errno))) }

        var problem: SystemError?
        if let owner, fchown(descriptor, owner.uid, owner.gid) != 0 { problem = SystemError(errno) }
        if problem == nil, fchmod(descriptor, mode) != 0 { problem = SystemError(errno) }
        if problem == nil { problem = writeAll(bytes, to: descriptor) }
        if problem == nil, fsync(descriptor) != 0 { problem = SystemError(errno) }
        close(descriptor)
        if let problem {
            unlink(temporary)
            return .failure(Failure(step: .write, path: path, error: problem))
        }

        let moved = replacing ? rename(temporary, path) : link(temporary, path)
        let why = SystemError(errno)
        if moved != 0 || !replacing { unlink(temporary) }
        guard moved == 0 else { return .failure(Failure(step: .publish, path: path, error: why)) }

        // The rename itself is durable only once the directory is.
        let directory = open(FileTrust.directory(containing: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
        return .success(())
    }

    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32) -> SystemError? {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress.map { $0 + offset }, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return SystemError(written == 0 ? EIO : errno) }
            offset += written
        }
        return nil
    }
}
