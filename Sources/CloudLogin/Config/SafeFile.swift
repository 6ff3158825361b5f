import Glibc

/// Why a file CloudLogin trusts (config, client secret, CA file) was refused.
public enum SafeFileError: Error, Equatable, Sendable, CustomStringConvertible {
    case missing(String)
    case unreadable(String, errno: Int32)
    case notRegular(String)
    case wrongOwner(String, owner: UInt32, expected: UInt32)
    case writableByOthers(String)
    case readableByOthers(String)
    case tooLarge(String)

    public var description: String {
        switch self {
        case .missing(let path): return "\(path) does not exist"
        case .unreadable(let path, let code): return "\(path) cannot be read: \(String(cString: strerror(code)))"
        case .notRegular(let path): return "\(path) is not a regular file"
        case .wrongOwner(let path, let owner, let expected):
            return "\(path) is owned by uid \(owner), not \(FileTrust.name(of: expected)); run chown root:root \(path)"
        case .writableByOthers(let path): return "\(path) is writable by group or others; run chmod go-w \(path)"
        case .readableByOthers(let path): return "\(path) holds a secret but is readable by group or others; run chmod 600 \(path)"
        case .tooLarge(let path): return "\(path) is larger than CloudLogin accepts (64 KiB)"
        }
    }
}

/// Reads files whose content CloudLogin trusts, after checking who could have written them.
public enum SafeFile {
    public static let maximumSize = 64 * 1024

    /// The content of `path` and whether only its owner can read it. Refuses a file not owned
    /// by `owner`, writable by group or others, not regular, or larger than 64 KiB.
    public static func read(_ path: String, owner: uid_t, secret: Bool = false) -> Result<(content: SecretBytes, ownerOnly: Bool), SafeFileError> {
        let file: OpenedFile
        switch open(path, owner: owner) {
        case .failure(let problem): return .failure(problem)
        case .success(let opened): file = opened
        }
        let ownerOnly = file.info.st_mode & (S_IRWXG | S_IRWXO) == 0
        if secret && !ownerOnly { return .failure(.readableByOthers(path)) }
        guard file.info.st_size <= maximumSize else { return .failure(.tooLarge(path)) }
        switch file.readAll(limit: maximumSize) {
        case .success(let content): return .success((content, ownerOnly))
        case .failure(.tooLarge): return .failure(.tooLarge(path))
        case .failure(.system(let error)): return .failure(.unreadable(path, errno: error.code))
        }
    }

    /// Checks a file that others read on CloudLogin's behalf (`ca_file`, which libcurl opens) by
    /// the rules `read` applies: it exists, is a regular file, is owned by `owner` and is not
    /// writable by group or others. nil when it may be trusted. Its size is not limited (a CA
    /// bundle may be large) and it is not read.
    public static func check(_ path: String, owner: uid_t) -> SafeFileError? {
        if case .failure(let problem) = open(path, owner: owner) { return problem }
        return nil
    }

    /// Opens `path` (following symlinks: the rules apply to the file they lead to) under the
    /// file-trust rules, in the words of `SafeFileError`.
    private static func open(_ path: String, owner: uid_t) -> Result<OpenedFile, SafeFileError> {
        FileTrust.regularFile(owner: owner).open(path, followingSymlinks: true).mapError { failure in
            switch failure {
            case .system(let error): return error.code == ENOENT ? .missing(path) : .unreadable(path, errno: error.code)
            case .untrusted(.symlink), .untrusted(.wrongKind): return .notRegular(path)
            case .untrusted(.wrongOwner(let found)): return .wrongOwner(path, owner: found, expected: owner)
            case .untrusted(.writableByOthers): return .writableByOthers(path)
            }
        }
    }

    /// A secret file's content without a trailing newline.
    public static func readSecret(_ path: String, owner: uid_t) -> Result<SecretBytes, SafeFileError> {
        read(path, owner: owner, secret: true).map { file in
            let trimmed = SecretBytes(capacity: file.content.count)
            file.content.withBytes { bytes in
                var end = bytes.count
                while end > 0, bytes[end - 1] == UInt8(ascii: "\n") || bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                trimmed.append(UnsafeRawBufferPointer(rebasing: bytes[0..<end]))
            }
            return trimmed
        }
    }
}

/// Loads the config file with the file-trust checks (docs/design.md, "Configuration";
/// docs/security.md §1).
public enum ConfigLoader {
    /// Reads and parses `path`. `owner` is the uid that must own the config, secret and CA
    /// files (root, except in tests that run unprivileged).
    public static func load(path: String = Config.defaultPath, owner: uid_t = 0) -> Result<Config, ConfigDiagnostic> {
        let file: (content: SecretBytes, ownerOnly: Bool)
        switch SafeFile.read(path, owner: owner) {
        case .success(let read): file = read
        case .failure(let error): return .failure(ConfigDiagnostic(path: path, line: 0, key: nil, message: error.description))
        }
        guard let text = file.content.withBytes({ String(validating: $0, as: UTF8.self) }) else {
            return .failure(ConfigDiagnostic(path: path, line: 0, key: nil, message: "is not valid UTF-8 text"))
        }
        let context = ConfigParser.Context(fileIsPrivate: file.ownerOnly,
                                           readSecretFile: { SafeFile.readSecret($0, owner: owner) },
                                           checkTrustedFile: { SafeFile.check($0, owner: owner) })
        return ConfigParser.parse(text, path: path, context: context)
    }
}
