@testable import CloudLogin
import Foundation
import Glibc
import Testing

/// A directory of its own under TMPDIR for one test, removed afterwards.
final class TemporaryDirectory {
    let path: String

    init() {
        var template = Array("\(ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp")/cloudlogin-test.XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.flatMap { mkdtemp($0) }.map { String(cString: $0) } ?? "/nonexistent"
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `text` to `name` with `mode` (set with chmod: not the umask's).
    @discardableResult
    func file(_ name: String, _ text: String = "x\n", mode: mode_t = 0o644) -> String {
        let file = "\(path)/\(name)"
        _ = FileManager.default.createFile(atPath: file, contents: Data(text.utf8))
        chmod(file, mode)
        return file
    }

    @discardableResult
    func directory(_ name: String, mode: mode_t = 0o755) -> String {
        let directory = "\(path)/\(name)"
        mkdir(directory, 0o700)
        chmod(directory, mode)
        return directory
    }

    @discardableResult
    func symlink(_ name: String, to target: String) -> String {
        let link = "\(path)/\(name)"
        Glibc.symlink(target, link)
        return link
    }

    @discardableResult
    func fifo(_ name: String) -> String {
        let fifo = "\(path)/\(name)"
        mkfifo(fifo, 0o644)
        return fifo
    }

    var names: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }
}

/// The error of a failed result (nil for a success), for results whose value is not Equatable.
func failure<Value, Failure: Error>(_ result: Result<Value, Failure>) -> Failure? {
    if case .failure(let error) = result { return error }
    return nil
}

func mode(of path: String) -> mode_t? {
    var info = stat()
    return lstat(path, &info) == 0 ? info.st_mode & 0o7777 : nil
}

/// The uid these tests expect to own what they create: whoever runs them (root in CI, anyone
/// elsewhere). The module passes 0; nothing here needs root.
let me = geteuid()
/// A uid that owns none of the test's files.
let someoneElse: uid_t = me == 0 ? 1 : 0

@Suite struct FileTrustTests {
    func status(_ path: String, following: Bool = false) throws -> stat {
        try FileTrust.status(of: path, followingSymlinks: following).get()
    }

    @Test func aFileOrDirectoryOnlyItsOwnerCanWriteIsTrusted() throws {
        let temporary = TemporaryDirectory()
        let file = temporary.file("config", mode: 0o644)
        let directory = temporary.directory("state", mode: 0o755)
        #expect(FileTrust.regularFile(owner: me).violation(of: try status(file)) == nil)
        #expect(FileTrust.directory(owner: me).violation(of: try status(directory)) == nil)
        // Read access for others is the caller's business (a secret file), not the rule's.
        chmod(file, 0o604)
        #expect(FileTrust.regularFile(owner: me).violation(of: try status(file)) == nil)
    }

    @Test func writableByGroupOrOthersIsNot() throws {
        let temporary = TemporaryDirectory()
        for bits: mode_t in [0o664, 0o646, 0o666] {
            let file = temporary.file("f\(bits)", mode: bits)
            #expect(FileTrust.regularFile(owner: me).violation(of: try status(file)) == .writableByOthers(mode: S_IFREG | bits))
        }
        let directory = temporary.directory("open", mode: 0o777)
        #expect(FileTrust.directory(owner: me).violation(of: try status(directory)) == .writableByOthers(mode: S_IFDIR | 0o777))
    }

    @Test func anotherOwnerIsNot() throws {
        let temporary = TemporaryDirectory()
        let file = temporary.file("config")
        #expect(FileTrust.regularFile(owner: someoneElse).violation(of: try status(file)) == .wrongOwner(me))
        // Kind first, then owner, then mode: a foreign, open directory is named for its owner.
        let directory = temporary.directory("open", mode: 0o777)
        #expect(FileTrust.directory(owner: someoneElse).violation(of: try status(directory)) == .wrongOwner(me))
    }

    @Test func theWrongKindOrASymlinkIsNot() throws {
        let temporary = TemporaryDirectory()
        let file = temporary.file("config")
        let directory = temporary.directory("state")
        let fifo = temporary.fifo("fifo")
        #expect(FileTrust.directory(owner: me).violation(of: try status(file)) == .wrongKind)
        #expect(FileTrust.regularFile(owner: me).violation(of: try status(directory)) == .wrongKind)
        #expect(FileTrust.regularFile(owner: me).violation(of: try status(fifo)) == .wrongKind)
        let link = temporary.symlink("link", to: directory)
        #expect(FileTrust.directory(owner: me).violation(of: try status(link)) == .symlink)
        // Followed, the link is what it names.
        #expect(FileTrust.directory(owner: me).violation(of: try status(link, following: true)) == nil)
        // No kind asked for: only who could replace what is there.
        #expect(FileTrust(kind: nil, owner: me).violation(of: try status(file)) == nil)
        #expect(FileTrust(kind: nil, owner: someoneElse).violation(of: try status(directory)) == .wrongOwner(me))
    }

    @Test func examineIsStatusThenTheRule() throws {
        let temporary = TemporaryDirectory()
        let directory = temporary.directory("cache", mode: 0o700)
        #expect(try FileTrust.directory(owner: me).examine(directory, followingSymlinks: false).get().st_mode == S_IFDIR | 0o700)
        #expect(throws: FileTrust.Refusal.untrusted(.wrongOwner(me))) { try FileTrust.directory(owner: someoneElse).examine(directory, followingSymlinks: false).get() }
        let link = temporary.symlink("link", to: directory)
        #expect(throws: FileTrust.Refusal.untrusted(.symlink)) { try FileTrust.directory(owner: me).examine(link, followingSymlinks: false).get() }
        #expect(throws: Never.self) { try FileTrust.directory(owner: me).examine(link, followingSymlinks: true).get() }
        #expect(throws: FileTrust.Refusal.system(SystemError(ENOENT))) { try FileTrust.directory(owner: me).examine("\(directory)/none", followingSymlinks: true).get() }
    }

    @Test func statusNamesTheErrno() {
        let temporary = TemporaryDirectory()
        #expect(throws: SystemError(ENOENT)) { try FileTrust.status(of: "\(temporary.path)/missing", followingSymlinks: false).get() }
        #expect(SystemError(ENOENT).description == "No such file or directory")
    }

    @Test func openChecksTheFileItOpened() throws {
        let temporary = TemporaryDirectory()
        let file = temporary.file("config", "content\n")
        let opened = try FileTrust.regularFile(owner: me).open(file, followingSymlinks: false).get()
        #expect(try opened.readAll(limit: 100).get().withBytes { Array($0) } == Array("content\n".utf8))

        let rule = FileTrust.regularFile(owner: me)
        #expect(throws: FileTrust.Refusal.system(SystemError(ENOENT))) { try rule.open("\(temporary.path)/missing", followingSymlinks: false).get() }
        chmod(file, 0o666)
        #expect(throws: FileTrust.Refusal.untrusted(.writableByOthers(mode: S_IFREG | 0o666))) { try rule.open(file, followingSymlinks: false).get() }
        #expect(throws: FileTrust.Refusal.untrusted(.wrongOwner(me))) {
            try FileTrust.regularFile(owner: someoneElse).open(file, followingSymlinks: true).get()
        }
    }

    @Test func openNeverFollowsASymlinkUnlessAsked() throws {
        let temporary = TemporaryDirectory()
        let link = temporary.symlink("link", to: temporary.file("target"))
        let rule = FileTrust.regularFile(owner: me)
        #expect(throws: FileTrust.Refusal.system(SystemError(ELOOP))) { try rule.open(link, followingSymlinks: false).get() }
        #expect(throws: Never.self) { try rule.open(link, followingSymlinks: true).get() }
    }

    /// A FIFO planted where a config or record is expected must not hang the host: it is
    /// opened without blocking and refused as the wrong kind.
    @Test func aFIFOIsRefusedWithoutBlocking() {
        let temporary = TemporaryDirectory()
        let fifo = temporary.fifo("config")
        #expect(throws: FileTrust.Refusal.untrusted(.wrongKind)) {
            try FileTrust.regularFile(owner: me).open(fifo, followingSymlinks: false).get()
        }
    }

    @Test func readAllStopsAtTheLimit() throws {
        let temporary = TemporaryDirectory()
        let file = temporary.file("big", String(repeating: "a", count: 5000))
        let rule = FileTrust.regularFile(owner: me)
        #expect(throws: OpenedFile.ReadFailure.tooLarge) { try rule.open(file, followingSymlinks: false).get().readAll(limit: 4999).get() }
        #expect(try rule.open(file, followingSymlinks: false).get().readAll(limit: 5000).get().count == 5000)
    }

    @Test func theContainingDirectory() {
        #expect(FileTrust.directory(containing: "/etc/cloudlogin/cloudlogin.conf") == "/etc/cloudlogin")
        #expect(FileTrust.directory(containing: "/cloudlogin.conf") == "/")
        #expect(FileTrust.directory(containing: "cloudlogin.conf") == ".")
        #expect(FileTrust.name(of: 0) == "root" && FileTrust.name(of: 1000) == "uid 1000")
    }
}

@Suite struct AtomicFileTests {
    @Test func writesTheContentWithTheModeAskedForAndLeavesNoTemporaryFile() throws {
        let temporary = TemporaryDirectory()
        let path = "\(temporary.path)/record"
        // 0660: the umask (022 in most shells) would take group write away; the mode is set
        // explicitly.
        try AtomicFile.write(Array("first\n".utf8), to: path, mode: 0o660).get()
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "first\n")
        #expect(mode(of: path) == 0o660)
        try AtomicFile.write(Array("second\n".utf8), to: path, mode: 0o644).get()
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "second\n")
        #expect(mode(of: path) == 0o644)
        #expect(temporary.names == ["record"])
    }

    @Test func withoutReplacingAnExistingFileIsLeftAlone() throws {
        let temporary = TemporaryDirectory()
        let path = temporary.file("cloudlogin.conf", "# the admin's own\n")
        let result = AtomicFile.write(Array("new\n".utf8), to: path, mode: 0o600, replacing: false)
        #expect(failure(result) == AtomicFile.Failure(step: .publish, path: path, error: SystemError(EEXIST)))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "# the admin's own\n")
        #expect(temporary.names == ["cloudlogin.conf"])
        let fresh = "\(temporary.path)/fresh.conf"
        try AtomicFile.write(Array("new\n".utf8), to: fresh, mode: 0o600, replacing: false).get()
        #expect(try String(contentsOfFile: fresh, encoding: .utf8) == "new\n" && mode(of: fresh) == 0o600)
        #expect(temporary.names == ["cloudlogin.conf", "fresh.conf"])
    }

    @Test func setsTheOwnerWhenAsked() throws {
        let temporary = TemporaryDirectory()
        let path = "\(temporary.path)/cloudlogin.conf"
        try AtomicFile.write(Array("x\n".utf8), to: path, mode: 0o600, owner: (me, getegid())).get()
        let info = try FileTrust.status(of: path, followingSymlinks: false).get()
        #expect(info.st_uid == me && info.st_gid == getegid())
    }

    /// A temporary file left by a process that died (same pid), or a symlink planted at its
    /// name, is removed, never written through.
    @Test func aLeftoverAtTheTemporaryNameIsReplacedNotFollowed() throws {
        let temporary = TemporaryDirectory()
        let path = "\(temporary.path)/record"
        let victim = temporary.file("victim", "untouched\n")
        temporary.symlink("record.tmp.\(getpid())", to: victim)
        try AtomicFile.write(Array("record\n".utf8), to: path, mode: 0o644).get()
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "untouched\n")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "record\n")
        temporary.file("record.tmp.\(getpid())", "stale")
        try AtomicFile.write(Array("again\n".utf8), to: path, mode: 0o644).get()
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "again\n")
        #expect(temporary.names == ["record", "victim"])
    }

    @Test func namesTheStepThatFailed() {
        let temporary = TemporaryDirectory()
        let path = "\(temporary.path)/missing/record"
        let result = AtomicFile.write([], to: path, mode: 0o644)
        let expected = AtomicFile.Failure(step: .create, path: "\(path).tmp.\(getpid())", error: SystemError(ENOENT))
        #expect(failure(result) == expected)
        #expect(expected.description == "cannot write \(path).tmp.\(getpid()): No such file or directory")
        // A directory where the file should go: rename cannot replace it.
        temporary.directory("taken")
        let taken = "\(temporary.path)/taken"
        #expect(failure(AtomicFile.write([1], to: taken, mode: 0o644)) == AtomicFile.Failure(step: .publish, path: taken, error: SystemError(EISDIR)))
        #expect(temporary.names == ["taken"])
    }
}
