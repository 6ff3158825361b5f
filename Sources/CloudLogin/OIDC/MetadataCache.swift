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
    /// `owner`: this process's effective uid (the directory must be its own).
    public init?(directory: String, log: EventLog, owner: uid_t = geteuid()) {
        self.directory = directory
        self.log = log
        self.owner = owner
        let rule = FileTrust.directory(owner: owner)
        var examined = rule.examine(directory, followingSymlinks: false)
        if case .failure(.system(let error)) = examined, error.code == ENOENT {
            examined = mkdir(directory, 0o700) == 0 ? rule.examine(directory, followingSymlinks: false) : .failure(.system(SystemError(errno)))
        }
        switch examined {
        case .success: break
        case .failure(.system(let error)):
            log.debug("metadata cache \(directory) unavailable: \(error)")
            return nil
        case .failure(.untrusted(.symlink)), .failure(.untrusted(.wrongKind)):
            log.warning("metadata cache \(directory) is not a directory (or is a symlink); not caching")
            return nil
        case .failure(.untrusted(.wrongOwner)), .failure(.untrusted(.writableByOthers)):
            if owner == 0 {
                log.warning("metadata cache \(directory) is not owned by root or is writable by others; not caching (chown root: \(directory); chmod 700 \(directory))")
            }
            return nil
        }
    }

    public func read(_ name: String) -> (fetchedAt: Int64, body: [UInt8])? {
        guard case .success(let file) = FileTrust.regularFile(owner: owner).open("\(directory)/\(name)", followingSymlinks: false),
              file.info.st_size <= CurlTransport.maximumResponseBytes + 64,
              case .success(let content) = file.readAll(limit: CurlTransport.maximumResponseBytes + 64) else { return nil }
        let bytes = content.withBytes { Array($0) }
        // First line: "cloudlogin-cache 1 <fetched-at>".
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")),
              let header = String(validating: bytes[0..<newline], as: UTF8.self) else { return nil }
        let fields = header.split(separator: " ")
        guard fields.count == 3, fields[0] == "cloudlogin-cache", fields[1] == "1",
              let fetchedAt = Int64(fields[2], radix: 10) else { return nil }
        return (fetchedAt, Array(bytes[(newline + 1)...]))
    }

    public func write(_ name: String, body: [UInt8], fetchedAt: Int64) {
        let content = Array("cloudlogin-cache 1 \(fetchedAt)\n".utf8) + body
        if case .failure(let failure) = AtomicFile.write(content, to: "\(directory)/\(name)", mode: 0o600) {
            log.warning("cannot write the metadata cache \(failure.path): \(failure.error)")
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
