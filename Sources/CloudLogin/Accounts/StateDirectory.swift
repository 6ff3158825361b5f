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
    /// Who must own the directories and records: root (tests pass their own uid).
    private let owner: uid_t
    private let effectiveUID: uid_t
    private var usersPath: String { "\(path)/users" }

    /// `owner`: who must own the directory and records (root). `effectiveUID`: this process's
    /// (only the owner itself creates a missing directory).
    public init(path: String, deadline: Deadline? = nil, owner: uid_t = 0, effectiveUID: uid_t = geteuid()) {
        self.path = path
        self.deadline = deadline
        self.owner = owner
        self.effectiveUID = effectiveUID
    }

    /// Checks (and, for root, creates) the directory layout. False: it does not exist (and
    /// `create` is off, or this process is not root), so there are no records.
    func checkLayout(create: Bool) -> Result<Bool, AccountError> {
        for directory in [path, usersPath] {
            var info: stat
            switch FileTrust.status(of: directory, followingSymlinks: false) {
            case .success(let found): info = found
            case .failure(let error):
                guard error.code == ENOENT, create, effectiveUID == owner else {
                    if error.code == ENOENT { return create ? .failure(.stateFailed("\(directory) does not exist")) : .success(false) }
                    return .failure(.stateLayout("\(directory): \(error)"))
                }
                guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
                    return .failure(.stateLayout("cannot create \(directory): \(SystemError(errno))"))
                }
                switch FileTrust.status(of: directory, followingSymlinks: false) {
                case .failure(let error): return .failure(.stateLayout("cannot create \(directory): \(error)"))
                case .success(let made): info = made
                }
                // Not the host's umask: a screen locker running as the user must read records.
                if (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == owner, info.st_mode & 0o777 != 0o755 {
                    chmod(directory, 0o755)
                    info.st_mode = (info.st_mode & ~0o777) | 0o755
                }
            }
            switch FileTrust.directory(owner: owner).violation(of: info) {
            case nil: continue
            case .symlink, .wrongKind:
                return .failure(.stateLayout("\(directory) is not a directory (a symlink?); refusing to use it"))
            case .wrongOwner(let found):
                return .failure(.stateLayout("\(directory) is owned by uid \(found), not \(FileTrust.name(of: owner)); refusing to use it"))
            case .writableByOthers:
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
        let untrusted = AccountError.stateFailed("\(file) is not a \(FileTrust.name(of: owner))-owned regular file writable by \(FileTrust.name(of: owner)) only")
        let opened: OpenedFile
        switch FileTrust.regularFile(owner: owner).open(file, followingSymlinks: false) {
        case .success(let found): opened = found
        case .failure(.system(let error)):
            if error.code == ENOENT { return .success(nil) }
            return .failure(.stateFailed("cannot read \(file): \(error)"))
        case .failure(.untrusted): return .failure(untrusted)
        }
        guard opened.info.st_size < 65536 else { return .failure(untrusted) }
        let notARecord = AccountError.stateFailed("\(file) is not a CloudLogin record")
        guard case .success(let bytes) = opened.readAll(limit: 65535),
              bytes.withBytes({ JSONValue.nestingDepth(of: $0) }) <= 4,
              let record = try? JSONDecoder().decode(ManagedUser.self, from: bytes.withBytes { Data($0) }),
              record.name == name else {
            return .failure(notARecord)
        }
        return .success(record)
    }

    public func save(_ user: ManagedUser) -> Result<Void, AccountError> {
        guard LoginName.isValidLocalName(user.name) else { return .failure(.stateFailed("invalid name")) }
        if case .failure(let error) = checkLayout(create: true) { return .failure(error) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        guard let data = try? encoder.encode(user) else { return .failure(.stateFailed("cannot encode the record")) }
        // Mode 0644: records hold no secret, and a screen locker running as the user reads them.
        switch AtomicFile.write([UInt8](data) + [UInt8(ascii: "\n")], to: "\(usersPath)/\(user.name)", mode: 0o644) {
        case .success: return .success(())
        case .failure(let failure): return .failure(.stateFailed(failure.description))
        }
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
            // On the deadline's clock (the system's in the module), so the wait is the deadline's.
            (deadline?.clock ?? SystemClock()).sleep(milliseconds: 10)
            waited += 10
        }
        defer { flock(descriptor, LOCK_UN) }
        return body()
    }
}
