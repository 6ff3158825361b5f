import Glibc

/// Managed-user records on disk, by default in /var/lib/cloudlogin/users/.
///
/// The directory must be a real directory (not a symlink), owned by root and writable by
/// nobody else; otherwise nothing is read or written. Records are written to a temporary file,
/// synced and renamed. Records are readable by everyone (mode 0644): they hold no secret, and
/// a screen locker that runs as the user needs them for the offline rule.
public final class StateDirectory: ManagedUserStore {
    public let path: String
    /// The sign-in's overall deadline: the lock is not waited for beyond it.
    private let deadline: Deadline?
    private var usersPath: String { "\(path)/users" }

    public init(path: String, deadline: Deadline? = nil) {
        self.path = path
        self.deadline = deadline
    }

    /// Checks (and, for root, creates) the directory layout. False: it does not exist (and
    /// `create` is off, or this process is not root), so there are no records.
    func checkLayout(create: Bool) -> Result<Bool, AccountError> {
        for directory in [path, usersPath] {
            var info = stat()
            if lstat(directory, &info) != 0 {
                guard errno == ENOENT, create, geteuid() == 0 else {
                    if errno == ENOENT { return create ? .failure(.stateFailed("\(directory) does not exist")) : .success(false) }
                    return .failure(.stateLayout("\(directory): \(String(cString: strerror(errno)))"))
                }
                guard mkdir(directory, 0o755) == 0 || errno == EEXIST, lstat(directory, &info) == 0 else {
                    return .failure(.stateLayout("cannot create \(directory): \(String(cString: strerror(errno)))"))
                }
                // Not the host's umask: a screen locker running as the user must read records.
                if (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == 0, info.st_mode & 0o777 != 0o755 {
                    chmod(directory, 0o755)
                    info.st_mode = (info.st_mode & ~0o777) | 0o755
                }
            }
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                return .failure(.stateLayout("\(directory) is not a directory (a symlink?); refusing to use it"))
            }
            guard info.st_uid == 0 else {
                return .failure(.stateLayout("\(directory) is owned by uid \(info.st_uid), not root; refusing to use it"))
            }
            guard info.st_mode & (S_IWGRP | S_IWOTH) == 0 else {
                return .failure(.stateLayout("\(directory) is writable by group or others; run chmod go-w \(directory)"))
            }
        }
        return .success(true)
    }

    public func user(named name: String) -> Result<ManagedUser?, AccountError> {
        guard LoginName.isValidLocalName(name) else { return .success(nil) }
        switch checkLayout(create: false) {
        case .success(false): return .success(nil)
        case .failure(let error): return .failure(error)
        case .success(true): break
        }
        let file = "\(usersPath)/\(name)"
        let descriptor = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else {
            if errno == ENOENT { return .success(nil) }
            return .failure(.stateFailed("cannot read \(file): \(String(cString: strerror(errno)))"))
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == 0,
              info.st_mode & (S_IWGRP | S_IWOTH) == 0, info.st_size < 65536 else {
            return .failure(.stateFailed("\(file) is not a root-owned regular file writable by root only"))
        }
        var bytes = [UInt8](repeating: 0, count: Int(truncatingIfNeeded: info.st_size))
        var offset = 0
        while offset < bytes.count {
            let got = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress.map { $0 + offset }, $0.count - offset) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { break }
            offset += got
        }
        guard offset == bytes.count, bytes.withUnsafeBytes({ JSONValue.nestingDepth(of: $0) }) <= 4,
              let record = try? JSONDecoder().decode(ManagedUser.self, from: Data(bytes)),
              record.name == name else {
            return .failure(.stateFailed("\(file) is not a CloudLogin record"))
        }
        return .success(record)
    }

    public func save(_ user: ManagedUser) -> Result<Void, AccountError> {
        guard LoginName.isValidLocalName(user.name) else { return .failure(.stateFailed("invalid name")) }
        if case .failure(let error) = checkLayout(create: true) { return .failure(error) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        guard let data = try? encoder.encode(user) else { return .failure(.stateFailed("cannot encode the record")) }
        let file = "\(usersPath)/\(user.name)"
        let temporary = "\(file).tmp.\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else { return .failure(.stateFailed("cannot write \(temporary): \(String(cString: strerror(errno)))")) }
        let bytes = [UInt8](data) + [UInt8(ascii: "\n")]
        var offset = 0
        var ok = true
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress.map { $0 + offset }, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { ok = false; break }
            offset += written
        }
        if fchmod(descriptor, 0o644) != 0 || fsync(descriptor) != 0 { ok = false }
        close(descriptor)
        guard ok, rename(temporary, file) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(temporary)
            return .failure(.stateFailed("cannot write \(file): \(why)"))
        }
        let directory = open(usersPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
        return .success(())
    }

    public func allUsers() -> Result<[ManagedUser], AccountError> {
        switch checkLayout(create: false) {
        case .success(false): return .success([])
        case .failure(let error): return .failure(error)
        case .success(true): break
        }
        guard let directory = opendir(usersPath) else { return .failure(.stateFailed("cannot list \(usersPath)")) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if LoginName.isValidLocalName(name) { names.append(name) }
        }
        var users: [ManagedUser] = []
        for name in names.sorted() {
            switch user(named: name) {
            case .success(let record?): users.append(record)
            case .success(nil): continue
            case .failure(let error): return .failure(error)
            }
        }
        return .success(users)
    }

    public func withLock<T>(_ body: () -> Result<T, AccountError>) -> Result<T, AccountError> {
        if case .failure(let error) = checkLayout(create: true) { return .failure(error) }
        let lockPath = "\(path)/lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { return .failure(.lockFailed("cannot open \(lockPath): \(String(cString: strerror(errno)))")) }
        defer { close(descriptor) }
        // Bounded (30 s, and the sign-in's deadline): a process stuck while holding the lock
        // must not hang every login. Only sign-ins that change a managed account wait here.
        let limit = min(30_000, deadline?.remainingMilliseconds ?? 30_000)
        var waited: Int64 = 0
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, waited < limit else {
                return .failure(.lockFailed("cannot lock \(lockPath): \(String(cString: strerror(errno)))"))
            }
            usleep(10_000)
            waited += 10
        }
        defer { flock(descriptor, LOCK_UN) }
        return body()
    }
}
