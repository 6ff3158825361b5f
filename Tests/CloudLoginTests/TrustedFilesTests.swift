@testable import CloudLogin
import Foundation
import Glibc
import Testing

/// The module's readers and writers of trusted files on a real file system, each with the
/// expected owner passed in (root in the module; here whoever runs the tests).
@Suite struct SafeFileTests {
    static let config = "[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = linux-login\n"

    @Test func readsAConfigOnlyItsOwnerCanWrite() throws {
        let temporary = TemporaryDirectory()
        let path = temporary.file("cloudlogin.conf", Self.config, mode: 0o644)
        let config = try ConfigLoader.load(path: path, owner: me).get()
        #expect(config.clientID == "linux-login")
        let read = try SafeFile.read(path, owner: me).get()
        #expect(!read.ownerOnly)
        chmod(path, 0o600)
        #expect(try SafeFile.read(path, owner: me).get().ownerOnly)
    }

    @Test func refusesWhatOthersCouldHaveWritten() {
        let temporary = TemporaryDirectory()
        let path = temporary.file("cloudlogin.conf", Self.config, mode: 0o664)
        #expect(failure(SafeFile.read(path, owner: me)) == .writableByOthers(path))
        #expect(failure(SafeFile.read(path, owner: me))?.description == "\(path) is writable by group or others; run chmod go-w \(path)")
        chmod(path, 0o644)
        #expect(failure(SafeFile.read(path, owner: someoneElse)) == .wrongOwner(path, owner: me, expected: someoneElse))
        #expect(SafeFileError.wrongOwner(path, owner: 1000, expected: 0).description == "\(path) is owned by uid 1000, not root; run chown root:root \(path)")
        let missing = "\(temporary.path)/missing.conf"
        #expect(failure(SafeFile.read(missing, owner: me)) == .missing(missing))
        let fifo = temporary.fifo("fifo.conf")
        #expect(failure(SafeFile.read(fifo, owner: me)) == .notRegular(fifo))
        let large = temporary.file("large.conf", String(repeating: "#\n", count: SafeFile.maximumSize / 2 + 1))
        #expect(failure(SafeFile.read(large, owner: me)) == .tooLarge(large))
        // Through a symlink, the file it names is judged.
        let link = temporary.symlink("link.conf", to: path)
        #expect(throws: Never.self) { try SafeFile.read(link, owner: me).get() }
    }

    @Test func aSecretFileMustBeReadableByItsOwnerOnly() throws {
        let temporary = TemporaryDirectory()
        let path = temporary.file("client_secret", "s3cret\r\n", mode: 0o640)
        #expect(failure(SafeFile.readSecret(path, owner: me)) == .readableByOthers(path))
        chmod(path, 0o600)
        #expect(try SafeFile.readSecret(path, owner: me).get().withBytes { Array($0) } == Array("s3cret".utf8))
    }

    @Test func aCAFileIsCheckedNotRead() {
        let temporary = TemporaryDirectory()
        let path = temporary.file("ca.pem", String(repeating: "-", count: SafeFile.maximumSize * 2), mode: 0o644)
        #expect(SafeFile.check(path, owner: me) == nil)
        chmod(path, 0o666)
        #expect(SafeFile.check(path, owner: me) == .writableByOthers(path))
        #expect(SafeFile.check(temporary.directory("ca.d"), owner: me) == .notRegular("\(temporary.path)/ca.d"))
    }

    @Test func theLoaderPassesTheOwnerOnToTheSecretAndCAFiles() throws {
        let temporary = TemporaryDirectory()
        let secret = temporary.file("client_secret", "s3cret\n", mode: 0o600)
        let ca = temporary.file("ca.pem", "pem\n", mode: 0o666)
        let path = temporary.file("cloudlogin.conf", Self.config + "client_secret_file = \(secret)\nca_file = \(ca)\n", mode: 0o600)
        #expect(failure(ConfigLoader.load(path: path, owner: me))?.description.contains("\(ca) is writable by group or others; run chmod go-w \(ca)") == true)
        chmod(ca, 0o644)
        let config = try ConfigLoader.load(path: path, owner: me).get()
        #expect(config.caFile == ca && config.clientSecret?.withBytes { Array($0) } == Array("s3cret".utf8))
    }
}

@Suite struct StateDirectoryTests {
    let record = ManagedUser(name: "alice", subject: "sub-1", idpLogin: "alice@example.com", origin: .created,
                             grantedGroups: ["sudo"], lastOnlineSuccess: 1_700_000_000)
    var ownerName: String { FileTrust.name(of: me) }

    @Test func savesAndReadsRecordsWithTheModesTheModuleGivesThem() throws {
        let temporary = TemporaryDirectory()
        let path = "\(temporary.path)/state"
        let store = StateDirectory(path: path, owner: me)
        #expect(try store.user(named: "alice").get() == nil)
        #expect(try store.allUsers().get().isEmpty)
        try store.save(record).get()
        #expect(try store.user(named: "alice").get() == record)
        #expect(try store.allUsers().get() == [record])
        #expect(mode(of: path) == 0o755 && mode(of: "\(path)/users") == 0o755 && mode(of: "\(path)/users/alice") == 0o644)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: "\(path)/users")) == ["alice"])
        var changed = record
        changed.lastVerdict = .revoked
        try store.save(changed).get()
        #expect(try store.user(named: "alice").get() == changed)
    }

    /// One deadline per sign-in: a lock another sign-in holds is not waited for beyond it (the
    /// body never runs), and a free lock is taken at once.
    @Test func theLockIsNotWaitedForBeyondTheSignInsDeadline() throws {
        let temporary = TemporaryDirectory()
        let path = "\(temporary.path)/state"
        let clock = FixedClock(1_700_000_000)
        let store = StateDirectory(path: path, deadline: Deadline(clock: clock, seconds: 10), owner: me, effectiveUID: me)
        #expect(try store.withLock { .success(1) }.get() == 1)
        let holder = open("\(path)/lock", O_RDWR | O_CLOEXEC)
        #expect(holder >= 0 && flock(holder, LOCK_EX) == 0)
        defer { close(holder) }
        var ran = false
        let body = { () -> Result<Void, AccountError> in
            ran = true
            return .success(())
        }
        // 10 s of the deadline left: waited for 10 s (not the 30 s a lock may take at most), then refused.
        guard case .failure(.lockFailed) = store.withLock(body) else { Issue.record("a held lock was taken"); return }
        #expect(clock.slept.reduce(0, +) == 10_000)
        // The deadline has passed: refused without waiting.
        let before = clock.slept.count
        guard case .failure(.lockFailed) = store.withLock(body) else { Issue.record("a held lock was taken"); return }
        #expect(clock.slept.count == before)
        #expect(!ran)
    }

    @Test func refusesADirectoryOthersCouldWrite() throws {
        let temporary = TemporaryDirectory()
        let path = temporary.directory("state", mode: 0o775)
        let store = StateDirectory(path: path, owner: me)
        #expect(failure(store.user(named: "alice")) == .stateLayout("\(path) is writable by group or others; run chmod go-w \(path)"))
        #expect(failure(store.save(record)) == .stateLayout("\(path) is writable by group or others; run chmod go-w \(path)"))
        chmod(path, 0o755)
        let foreign = StateDirectory(path: path, owner: someoneElse)
        #expect(failure(foreign.allUsers()) == .stateLayout("\(path) is owned by uid \(me), not \(FileTrust.name(of: someoneElse)); refusing to use it"))
        let link = temporary.symlink("link", to: path)
        #expect(failure(StateDirectory(path: link, owner: me).user(named: "alice")) == .stateLayout("\(link) is not a directory (a symlink?); refusing to use it"))
        let users = temporary.directory("state/users", mode: 0o777)
        #expect(failure(store.allUsers()) == .stateLayout("\(users) is writable by group or others; run chmod go-w \(users)"))
    }

    @Test func refusesARecordThatIsNotARootOwnedRegularFile() throws {
        let temporary = TemporaryDirectory()
        let path = "\(temporary.path)/state"
        let store = StateDirectory(path: path, owner: me)
        try store.save(record).get()
        let file = "\(path)/users/alice"
        chmod(file, 0o664)
        #expect(failure(store.user(named: "alice")) == .stateFailed("\(file) is not a \(ownerName)-owned regular file writable by \(ownerName) only"))
        unlink(file)
        mkfifo(file, 0o644)
        #expect(failure(store.user(named: "alice")) == .stateFailed("\(file) is not a \(ownerName)-owned regular file writable by \(ownerName) only"))
        unlink(file)
        symlink(temporary.file("elsewhere", "{}"), file)
        #expect(failure(store.user(named: "alice")) == .stateFailed("cannot read \(file): Too many levels of symbolic links"))
        unlink(file)
        temporary.file("state/users/alice", "{\"name\": \"bob\"}")
        #expect(failure(store.user(named: "alice")) == .stateFailed("\(file) is not a CloudLogin record"))
        #expect(failure(store.allUsers()) == .stateFailed("\(file) is not a CloudLogin record"))
    }

    @Test func aMissingDirectoryIsCreatedOnlyByItsOwner() {
        let temporary = TemporaryDirectory()
        let path = "\(temporary.path)/state"
        #expect(failure(StateDirectory(path: path, owner: someoneElse).save(record)) == .stateFailed("\(path) does not exist"))
        #expect(access(path, F_OK) != 0)
    }
}

@Suite struct DiskMetadataCacheTests {
    @Test func createsAPrivateDirectoryAndKeepsDocuments() throws {
        let temporary = TemporaryDirectory()
        let directory = "\(temporary.path)/cache"
        let log = RecordingLog()
        let cache = try #require(DiskMetadataCache(directory: directory, log: log))
        #expect(mode(of: directory) == 0o700)
        #expect(cache.read("a.jwks.json") == nil)
        cache.write("a.jwks.json", body: Array("{\"keys\":[]}".utf8), fetchedAt: 1_700_000_000)
        let found = try #require(cache.read("a.jwks.json"))
        #expect(found.fetchedAt == 1_700_000_000 && found.body == Array("{\"keys\":[]}".utf8))
        #expect(mode(of: "\(directory)/a.jwks.json") == 0o600)
        #expect(temporary.names == ["cache"] && (try? FileManager.default.contentsOfDirectory(atPath: directory)) == ["a.jwks.json"])
        #expect(log.lines.isEmpty)
    }

    @Test func refusesADirectoryOthersCouldWrite() {
        let temporary = TemporaryDirectory()
        let directory = temporary.directory("cache", mode: 0o770)
        let log = RecordingLog()
        #expect(DiskMetadataCache(directory: directory, log: log) == nil)
        // Only root's cache is worth a warning: a screen locker's process simply fetches.
        #expect(log.lines.map(\.1) == (me == 0 ? ["metadata cache \(directory) is not owned by root or is writable by others; not caching (chown root: \(directory); chmod 700 \(directory))"] : []))
        let link = temporary.symlink("link", to: temporary.directory("real", mode: 0o700))
        #expect(DiskMetadataCache(directory: link, log: log) == nil)
        #expect(log.lines.last?.1 == "metadata cache \(link) is not a directory (or is a symlink); not caching")
    }

    @Test func ignoresADocumentOthersCouldHaveWritten() throws {
        let temporary = TemporaryDirectory()
        let cache = try #require(DiskMetadataCache(directory: temporary.directory("cache", mode: 0o700), log: RecordingLog()))
        cache.write("a.discovery.json", body: Array("{}".utf8), fetchedAt: 1)
        chmod("\(cache.directory)/a.discovery.json", 0o622)
        #expect(cache.read("a.discovery.json") == nil)
        temporary.file("cache/b.discovery.json", "not a cache file\n{}", mode: 0o600)
        #expect(cache.read("b.discovery.json") == nil)
    }
}
