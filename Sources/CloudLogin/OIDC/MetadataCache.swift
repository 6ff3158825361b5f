import COpenSSL
import Glibc

/// Where discovery documents and JWKS are kept between logins, so that a steady-state login
/// makes one request (the token request).
public protocol MetadataCache {
    /// The stored document called `name` and when it was fetched.
    func read(_ name: String) -> (fetchedAt: Int64, body: [UInt8])?
    /// Stores `body` under `name`; failures are logged, never fatal.
    func write(_ name: String, body: [UInt8], fetchedAt: Int64)
}

/// The on-disk cache in `cache_dir` (default /var/cache/cloudlogin).
///
/// Only a directory owned by the current user and writable by nobody else is used: whoever
/// can write a JWKS there could forge tokens. Files are written to a temporary name, synced
/// and renamed, so a reader never sees half a document. A process that is not root (a screen
/// locker) reads nothing from and writes nothing to root's cache; it fetches instead.
public final class DiskMetadataCache: MetadataCache {
    public let directory: String
    private let log: EventLog
    private let owner: uid_t

    /// Opens (creating if needed, mode 0700) the cache directory, or nil if it is unsafe.
    public init?(directory: String, log: EventLog) {
        self.directory = directory
        self.log = log
        self.owner = geteuid()
        var info = stat()
        if lstat(directory, &info) != 0 {
            guard errno == ENOENT, mkdir(directory, 0o700) == 0, lstat(directory, &info) == 0 else {
                log.debug("metadata cache \(directory) unavailable: \(String(cString: strerror(errno)))")
                return nil
            }
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            log.warning("metadata cache \(directory) is not a directory (or is a symlink); not caching")
            return nil
        }
        guard info.st_uid == owner, info.st_mode & (S_IWGRP | S_IWOTH) == 0 else {
            if owner == 0 {
                log.warning("metadata cache \(directory) is not owned by root or is writable by others; not caching (chown root: \(directory); chmod 700 \(directory))")
            }
            return nil
        }
    }

    public func read(_ name: String) -> (fetchedAt: Int64, body: [UInt8])? {
        let path = "\(directory)/\(name)"
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG,
              info.st_uid == owner, info.st_mode & (S_IWGRP | S_IWOTH) == 0,
              info.st_size <= CurlTransport.maximumResponseBytes + 64 else { return nil }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let got = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { return nil }
            if got == 0 { break }
            bytes.append(contentsOf: chunk[0..<got])
        }
        // First line: "cloudlogin-cache 1 <fetched-at>".
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")),
              let header = String(validating: bytes[0..<newline], as: UTF8.self) else { return nil }
        let fields = header.split(separator: " ")
        guard fields.count == 3, fields[0] == "cloudlogin-cache", fields[1] == "1",
              let fetchedAt = Int64(fields[2], radix: 10) else { return nil }
        return (fetchedAt, Array(bytes[(newline + 1)...]))
    }

    public func write(_ name: String, body: [UInt8], fetchedAt: Int64) {
        let path = "\(directory)/\(name)"
        let temporary = "\(path).tmp.\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else {
            log.warning("cannot write the metadata cache \(temporary): \(String(cString: strerror(errno)))")
            return
        }
        let content = Array("cloudlogin-cache 1 \(fetchedAt)\n".utf8) + body
        var written = 0
        var ok = true
        while written < content.count {
            let result = content.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress.map { $0 + written }, content.count - written) }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else { ok = false; break }
            written += result
        }
        if fsync(descriptor) != 0 { ok = false }
        close(descriptor)
        guard ok, rename(temporary, path) == 0 else {
            log.warning("cannot write the metadata cache \(path): \(String(cString: strerror(errno)))")
            unlink(temporary)
            return
        }
    }

    /// A file name for one document: the first half of the SHA-256 of `issuer` (callers pass
    /// the issuer and the document's URL) in hex, then `kind`, so any issuer or URL is safe.
    public static func key(for issuer: String, kind: String) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var issuer = issuer
        let ok = issuer.withUTF8 { bytes in
            digest.withUnsafeMutableBufferPointer { output in
                guard let input = bytes.baseAddress, let out = output.baseAddress else { return false }
                return COpenSSL_sha256(input, bytes.count, out) == 1
            }
        }
        let hex = ok ? digest.prefix(16).map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(truncatingIfNeeded: byte >> 4)], digits[Int(truncatingIfNeeded: byte & 0x0F)]], as: UTF8.self)
        }.joined() : "issuer"
        return "\(hex).\(kind).json"
    }
}
