@testable import CloudLogin
@testable import CloudLoginAdmin
import Foundation
import Glibc
import Testing

/// The admin tool's logic without a network: the exit-code table, the check report, the file
/// and PAM-stack checks, setup's checks and writer, status, and the --trace seams.
@Suite struct ExitStatusTests {
    @Test func theNumbersScriptsRelyOn() {
        #expect(ExitStatus.success.code == 0)
        #expect(ExitStatus.configUnusable.code == 1 && ExitStatus.setupRefused.code == 1)
        #expect(ExitStatus.identityProviderFails.code == 2)
        #expect(ExitStatus.localProblem.code == 3 && ExitStatus.notSignedIn.code == 3)
        #expect(ExitStatus.notManaged.code == 4)
    }

    /// cloudlogin(1)'s EXIT STATUS lists, per command, exactly the numbers of the table.
    @Test func theManPageListsTheSameNumbers() throws {
        let page = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../man/cloudlogin.1").standardized
        let text = try String(contentsOf: page, encoding: .utf8)
        let section = try #require(text.components(separatedBy: ".SH \"EXIT STATUS\"").dropFirst().first?
            .components(separatedBy: "\n.SH ").first)
        var documented: [String: Set<Int32>] = [:]
        for entry in section.components(separatedBy: ".TP\n.B ").dropFirst() {
            let command = String(entry.prefix { $0 != "\n" })
            let words = entry.dropFirst(command.count).split(whereSeparator: { !$0.isNumber })
            documented[command] = Set(words.compactMap { Int32($0) })
        }
        var table: [String: Set<Int32>] = [:]
        for status in ExitStatus.allCases {
            for command in status.commands { table[command, default: []].insert(status.code) }
        }
        #expect(documented == table)
        #expect(table.keys.sorted() == ["check", "login", "setup", "status"])
    }
}

@Suite struct CheckReportTests {
    final class Lines: @unchecked Sendable {
        var lines: [String] = []
        func add(_ line: String) { lines.append(line) }
    }

    @Test func textFindingsArePrintedAsTheyAreMadeWithTheirFix() {
        let printed = Lines()
        var report = CheckReport(json: false, output: printed.add)
        report.add("config", .ok, .none, "config: fine", fix: "not shown for ok")
        report.add("files.ca", .error, .local, "files: bad", fix: "chmod 644 ca.pem")
        report.add("pam.not-enabled", .warning, .none, "pam: not yet", fix: nil)
        report.detail("token endpoint: x")
        report.record("config.warning", .warning, .none, "kept, not printed", fix: "fix")
        #expect(printed.lines == ["ok: config: fine", "PROBLEM: files: bad", "  fix: chmod 644 ca.pem", "warning: pam: not yet", "  token endpoint: x"])
        #expect(report.findings.map(\.id) == ["config", "files.ca", "pam.not-enabled", "config.warning"])
        #expect(report.summary(configPath: "/c") == "check: 1 problem(s) (exit 3)")
    }

    @Test func aConfigErrorWinsOverTheIdPAndTheIdPOverLocalProblems() {
        var report = CheckReport(json: true, output: { _ in Issue.record("JSON reports print nothing as they go") })
        #expect(report.exitStatus == .success)
        report.add("pam", .warning, .local, "a warning counts for nothing", fix: nil)
        #expect(report.exitStatus == .success)
        report.add("files.ca", .error, .local, "local", fix: nil)
        #expect(report.exitStatus == .localProblem)
        report.add("idp.tls", .error, .idp, "idp", fix: nil)
        #expect(report.exitStatus == .identityProviderFails)
        report.add("config", .error, .config, "config", fix: nil)
        #expect(report.exitStatus == .configUnusable)
    }

    @Test func theSummary() {
        var report = CheckReport(json: false, output: { _ in })
        #expect(report.summary(configPath: "/c") == "check: no problems")
        report.add("pam", .warning, .none, "w", fix: nil)
        #expect(report.summary(configPath: "/c") == "check: no problems, 1 warning(s)")
        var json = CheckReport(json: true)
        json.add("config", .error, .config, "/c:2: idp.provider: \"saml\"\tis not\none", fix: nil)
        json.add("pam", .warning, .none, "w", fix: "do \\ this")
        #expect(json.summary(configPath: "/etc/c\"l") == #"{"config":"/etc/c\"l","ok":false,"exit_code":1,"findings":[{"id":"config","status":"error","message":"/c:2: idp.provider: \"saml\"\tis not\none","fix":null},{"id":"pam","status":"warning","message":"w","fix":"do \\ this"}]}"#)
    }

    @Test func jsonTextEscapesControlCharacters() {
        #expect(JSONText.quote("a\u{1}b\u{1f}") == "\"a\\u0001b\\u001f\"")
        #expect(JSONText.array([.int(-3), .bool(true), .null, .optional(nil), .optional("x")]).rendered == "[-3,true,null,null,\"x\"]")
    }
}

@Suite struct FileCheckTests {
    @Test func theConfigDirectory() {
        let temporary = TemporaryDirectory()
        let directory = temporary.directory("etc", mode: 0o755)
        #expect(FileCheck.trustedDirectory(directory, owner: me) == nil)
        chmod(directory, 0o775)
        #expect(FileCheck.trustedDirectory(directory, owner: me) == FileCheck.Problem(
            message: "files: the directory \(directory) is writable by group or others (mode 0775): anyone who can write it can replace the config",
            fix: "chmod go-w \(directory)"))
        #expect(FileCheck.trustedDirectory(directory, owner: someoneElse)?.message
            == "files: the directory \(directory) is owned by uid \(me), not \(FileTrust.name(of: someoneElse)): that user can replace the config")
        #expect(FileCheck.trustedDirectory("\(directory)/missing", owner: me)?.message == "files: \(directory)/missing cannot be examined: No such file or directory")
    }

    @Test func theCAFile() {
        let temporary = TemporaryDirectory()
        let ca = temporary.file("ca.pem", mode: 0o644)
        #expect(FileCheck.trustedFile(ca, what: "ca_file", owner: me) == nil)
        chmod(ca, 0o646)
        #expect(FileCheck.trustedFile(ca, what: "ca_file", owner: me) == FileCheck.Problem(
            message: "files: ca_file \(ca) is writable by group or others (mode 0646): anyone can add a CA and impersonate the IdP", fix: "chmod 644 \(ca)"))
        #expect(FileCheck.trustedFile(ca, what: "--ca-file", owner: someoneElse) == FileCheck.Problem(
            message: "files: --ca-file \(ca) is owned by uid \(me), not \(FileTrust.name(of: someoneElse)): that user can add a CA and impersonate the IdP", fix: "chown root:root \(ca)"))
        #expect(FileCheck.trustedFile(temporary.path, what: "ca_file", owner: me) == FileCheck.Problem(
            message: "files: ca_file \(temporary.path) is not a regular file", fix: "point ca_file at a PEM file"))
    }

    @Test func theStateAndCacheDirectories() {
        let temporary = TemporaryDirectory()
        let state = temporary.directory("state", mode: 0o755)
        #expect(FileCheck.stateDirectory(state, wanted: 0o755, what: "state directory (state_dir)", owner: me)
            == .fine("files: the state directory (state_dir) \(state) is owned by \(FileTrust.name(of: me)), mode 0755"))
        #expect(FileCheck.stateDirectory(state, wanted: 0o700, what: "cache directory (cache_dir)", owner: me)
            == .loose("files: the cache directory (cache_dir) \(state) is mode 0755, more open than the 0700 CloudLogin gives it (readable, not writable, by others)"))
        chmod(state, 0o777)
        #expect(FileCheck.stateDirectory(state, wanted: 0o755, what: "state directory (state_dir)", owner: me) == .unsafe(FileCheck.Problem(
            message: "files: the state directory (state_dir) \(state) is writable by group or others (mode 0777): CloudLogin will not use it, since anyone could plant records or signing keys there",
            fix: "chmod 0755 \(state)")))
        let link = temporary.symlink("link", to: state)
        #expect(FileCheck.stateDirectory(link, wanted: 0o700, what: "cache directory (cache_dir)", owner: me) == .unsafe(FileCheck.Problem(
            message: "files: the cache directory (cache_dir) \(link) is a symlink: CloudLogin refuses to use it",
            fix: "replace it by a real directory: rm \(link); install -d -o root -g root -m 0700 \(link)")))
        let file = temporary.file("file")
        #expect(FileCheck.stateDirectory(file, wanted: 0o755, what: "state directory (state_dir)", owner: me) == .unsafe(FileCheck.Problem(
            message: "files: the state directory (state_dir) \(file) is not a directory", fix: "rm \(file); install -d -o root -g root -m 0755 \(file)")))
        #expect(FileCheck.stateDirectory("\(temporary.path)/none", wanted: 0o755, what: "state directory (state_dir)", owner: me)
            == .missing("files: the state directory (state_dir) \(temporary.path)/none does not exist yet (the package creates it; the module makes it at the first sign-in as root)"))
    }

    @Test func theServiceFilesOfAPamDirectory() {
        let temporary = TemporaryDirectory()
        for name in ["sudo", "login", ".hidden", "login~", "sudo.dpkg-old", "su.ucf-dist"] { temporary.file(name) }
        temporary.directory("subdir")
        #expect(FileCheck.serviceFiles(in: temporary.path) == ["login", "sudo"])
        #expect(FileCheck.serviceFiles(in: "\(temporary.path)/missing") == nil)
    }
}

@Suite struct ConfigCheckTests {
    static let enabled = """
    auth [success=done ignore=ignore authinfo_unavail=ignore module_unknown=ignore default=die] pam_cloudlogin.so
    auth required pam_unix.so try_first_pass

    """

    func check(_ temporary: TemporaryDirectory, json: Bool = false) -> ConfigCheck {
        ConfigCheck(configPath: "\(temporary.path)/cloudlogin.conf", pamDirectory: "\(temporary.path)/pam.d", testUser: nil, json: json,
                    owner: me, readPassword: { Issue.record("no password is read without --test-user"); return .unavailable })
    }

    /// A config in a private directory, with state and cache directories as the module makes them.
    func config(_ temporary: TemporaryDirectory) -> Config {
        chmod(temporary.path, 0o755)
        var config = Config()
        config.path = temporary.file("cloudlogin.conf", "[idp]\n", mode: 0o600)
        config.stateDirectory = temporary.directory("state", mode: 0o755)
        config.cacheDirectory = temporary.directory("cache", mode: 0o700)
        return config
    }

    func findings(_ body: (inout CheckReport) -> Void) -> [String: CheckReport.Finding] {
        var report = CheckReport(json: true)
        body(&report)
        return Dictionary(report.findings.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    @Test func anUnusableConfigIsExit1WithTheProblemOnStandardError() {
        let temporary = TemporaryDirectory()
        let path = temporary.file("cloudlogin.conf", "[idp]\nprovider = saml\n", mode: 0o644)
        var errors: [String] = []
        let report = check(temporary).run(output: { Issue.record("nothing else is checked: \($0)") }, errors: { errors.append($0) })
        #expect(report.exitStatus == .configUnusable)
        #expect(report.findings.map(\.id) == ["config"])
        #expect(errors == ["error: \(path):2: idp.provider: 'saml' is not one of: oidc, okta"])
        #expect(report.summary(configPath: path) == "check: 1 problem(s) (exit 1)")
        // --json: the same finding in the object, nothing on standard error.
        errors = []
        let json = check(temporary, json: true).run(output: { _ in }, errors: { errors.append($0) })
        #expect(errors.isEmpty && json.findings.first?.message == "\(path):2: idp.provider: 'saml' is not one of: oidc, okta")
        chmod(path, 0o666)
        #expect(check(temporary, json: true).run(output: { _ in }).findings.first?.message == "\(path): \(path) is writable by group or others; run chmod go-w \(path)")
    }

    @Test func filesAsTheModuleWillFindThem() {
        let temporary = TemporaryDirectory()
        let config = config(temporary)
        let good = findings { check(temporary).checkFiles(config, into: &$0) }
        #expect(good.values.allSatisfy { $0.status == .ok })
        #expect(good["files.config"]?.message == "files: \(config.path) is owned by \(FileTrust.name(of: me)), mode 0600")
        #expect(Set(good.keys) == ["files.config", "files.state-dir", "files.cache-dir"])

        chmod(temporary.path, 0o777)
        chmod(config.stateDirectory, 0o777)
        chmod(config.cacheDirectory, 0o755)
        var withCA = config
        withCA.caFile = temporary.file("ca.pem", mode: 0o666)
        let bad = findings { check(temporary).checkFiles(withCA, into: &$0) }
        #expect(bad["files.config-dir"]?.status == .error && bad["files.config-dir"]?.fix == "chmod go-w \(temporary.path)")
        #expect(bad["files.ca"]?.status == .error && bad["files.ca"]?.fix == "chmod 644 \(temporary.path)/ca.pem")
        #expect(bad["files.state-dir"]?.status == .error && bad["files.state-dir"]?.fix == "chmod 0755 \(config.stateDirectory)")
        #expect(bad["files.cache-dir"]?.status == .warning && bad["files.cache-dir"]?.fix == "chmod 0700 \(config.cacheDirectory)")
        var report = CheckReport(json: true)
        check(temporary).checkFiles(withCA, into: &report)
        #expect(report.exitStatus == .localProblem)
        chmod(temporary.path, 0o700)
    }

    @Test func thePamStack() {
        let temporary = TemporaryDirectory()
        let pam = check(temporary)
        #expect(findings { pam.checkPAMStack(into: &$0) }["pam"]?.message == "pam: cannot read the PAM directory \(temporary.path)/pam.d")
        temporary.directory("pam.d")
        temporary.file("pam.d/login", "auth required pam_unix.so\n")
        #expect(findings { pam.checkPAMStack(into: &$0) }["pam.not-enabled"]?.status == .warning)
        temporary.file("pam.d/sudo", Self.enabled)
        let fine = findings { pam.checkPAMStack(into: &$0) }
        #expect(fine["pam"]?.status == .ok && fine["pam"]?.message.hasPrefix("pam: pam_cloudlogin in sudo (\(temporary.path)/pam.d): before pam_unix") == true)
        temporary.file("pam.d/su", "auth required pam_unix.so\n" + Self.enabled)
        var report = CheckReport(json: true)
        pam.checkPAMStack(into: &report)
        #expect(report.exitStatus == .localProblem)
        #expect(report.findings.contains { $0.id == "pam.order" && $0.status == .error
            && $0.message.hasPrefix("pam: \(temporary.path)/pam.d/su line 2: pam_cloudlogin comes after pam_unix") })
    }
}

@Suite struct ConfigSetupTests {
    func setup(_ temporary: TemporaryDirectory, _ change: (inout ConfigSetup) -> Void = { _ in }) -> ConfigSetup {
        var setup = ConfigSetup(configPath: "\(temporary.path)/etc/cloudlogin.conf", issuer: "https://idp.example.com/realms/corp",
                                clientID: "linux-login", usernameSuffix: "@example.com", owner: me, group: getegid())
        change(&setup)
        return setup
    }

    func refusal(_ setup: ConfigSetup) -> String? {
        guard case .failure(let failure) = setup.prepare() else { return nil }
        #expect(failure.status == .setupRefused)
        return failure.message
    }

    @Test func theConfigTextHoldsTheGivenValuesAndTheDefaults() {
        let temporary = TemporaryDirectory()
        let oidc = setup(temporary) { $0.clientSecretFile = "/etc/cloudlogin/client_secret"; $0.proxy = "http://proxy:3128" }
        #expect(oidc.configText() == """
        # \(temporary.path)/etc/cloudlogin.conf: written by `cloudlogin setup`; see cloudlogin.conf(5).
        # Keep it owned by root and not writable by others.

        [idp]
        provider = oidc
        issuer = https://idp.example.com/realms/corp
        client_id = linux-login
        client_secret_file = /etc/cloudlogin/client_secret
        scopes = openid profile email
        proxy = http://proxy:3128
        username_suffix = @example.com
        timeout = 10
        connect_timeout = 3

        [users]
        name_claim = preferred_username
        min_uid = 1000
        exclude = root
        create = yes

        [offline]
        allow = yes
        max_days = 14

        """)
        let okta = ConfigSetup(configPath: "/etc/cloudlogin/cloudlogin.conf", caFile: "/etc/ca.pem", oktaDomain: "https://example.okta.com")
        #expect(okta.configText().contains("[idp]\nprovider = okta\nokta_domain = https://example.okta.com\nca_file = /etc/ca.pem\ntimeout = 10\n"))
    }

    @Test func whatIsDecidedBeforeTheIdPIsAsked() throws {
        let temporary = TemporaryDirectory()
        #expect(refusal(setup(temporary) { $0.configPath = "cloudlogin.conf" }) == "--config must be an absolute path")
        // A directory that does not exist yet is fine: the writer creates it.
        let config = try setup(temporary).prepare().get()
        #expect(config.issuer == "https://idp.example.com/realms/corp" && config.usernameSuffix == "@example.com")

        let etc = temporary.directory("etc", mode: 0o777)
        #expect(refusal(setup(temporary)) == "files: the directory \(etc) is writable by group or others (mode 0777): anyone who can write it can replace the config\n  fix: chmod go-w \(etc)")
        chmod(etc, 0o755)
        let existing = temporary.file("etc/cloudlogin.conf", "# the admin's own\n")
        #expect(refusal(setup(temporary)) == "\(existing) already exists; nothing written. Use --force to replace it (the old file is replaced atomically)")
        #expect(throws: Never.self) { try setup(temporary) { $0.force = true }.prepare().get() }

        let secret = temporary.file("client_secret", "s3cret\n", mode: 0o644)
        #expect(refusal(setup(temporary) { $0.force = true; $0.clientSecretFile = secret })?.contains("\(secret) holds a secret but is readable by group or others; run chmod 600 \(secret)") == true)
        let ca = temporary.file("ca.pem", mode: 0o664)
        #expect(refusal(setup(temporary) { $0.force = true; $0.caFile = ca })?.contains("\(ca) is writable by group or others; run chmod go-w \(ca)") == true)
    }

    @Test func nothingIsWrittenWhenTheIdPCannotBeReached() {
        let temporary = TemporaryDirectory()
        var printed: [String] = []
        let result = setup(temporary) { $0.issuer = "https://127.0.0.1:9" }.run(readPassword: { .unavailable }, output: { printed.append($0) })
        #expect(failure(result) == ConfigSetup.Failure(status: .identityProviderFails,
                                                       message: "the identity provider check failed; nothing written to \(temporary.path)/etc/cloudlogin.conf"))
        #expect(printed.first?.hasPrefix("PROBLEM: discovery: ") == true)
        #expect(temporary.names.isEmpty)
    }

    @Test func theWriterLeavesARootOnlyFileAndNeverReplacesWithoutForce() throws {
        let temporary = TemporaryDirectory()
        let path = "\(temporary.path)/etc/cloudlogin.conf"
        let owner = (uid: me, gid: getegid())
        try ConfigWriter.write("[idp]\n", to: path, replace: false, owner: owner).get()
        #expect(mode(of: "\(temporary.path)/etc") == 0o755 && mode(of: path) == 0o600)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "[idp]\n")
        #expect(failure(ConfigWriter.write("other\n", to: path, replace: false, owner: owner))?.description == "File exists")
        try ConfigWriter.write("replaced\n", to: path, replace: true, owner: owner).get()
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "replaced\n")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: "\(temporary.path)/etc")) == ["cloudlogin.conf"])
        #expect(failure(ConfigWriter.write("x", to: "\(temporary.path)/a/b/c.conf", replace: true, owner: owner))?.description
            == "cannot create \(temporary.path)/a/b: No such file or directory")
    }
}

@Suite struct StatusReportTests {
    static let now: Int64 = 1_764_468_900   // 2025-11-30 02:15:00 UTC
    let config: Config = {
        var config = Config()
        config.stateDirectory = "/var/lib/cloudlogin"
        return config
    }()
    let alice = ManagedUser(name: "alice", subject: "sub-a", idpLogin: "alice@example.com", origin: .created,
                            grantedGroups: ["sudo", "developers"], lastOnlineSuccess: now - 3 * 86_400)
    let bob = ManagedUser(name: "bob", subject: "sub-b", idpLogin: "bob@example.com", origin: .migrated,
                          lastOnlineSuccess: now, lastVerdict: .revoked, allowed: false)

    func store(_ users: ManagedUser...) -> StateTable {
        let table = StateTable()
        for user in users { table.records[user.name] = user }
        return table
    }

    @Test func textLikeTheCommandPrintsIt() {
        let output = StatusReport.run(config: config, store: store(alice, bob), user: nil, json: false, now: Self.now)
        #expect(output.status == .success && output.errors.isEmpty)
        #expect(output.lines == ["""
        alice
          subject: sub-a
          idp login: alice@example.com
          origin: created
          last online sign-in: 2025-11-27 02:15:00 UTC
          last verdict: accepted
          offline sign-in: 11 day(s) left
          groups granted by CloudLogin: sudo, developers
        """, """
        bob
          subject: sub-b
          idp login: bob@example.com
          origin: migrated
          last online sign-in: 2025-11-30 02:15:00 UTC
          last verdict: revoked (not in allow_groups)
          offline sign-in: refused: the identity provider refused this account since its last online sign-in
          groups granted by CloudLogin: none
        """])
        #expect(StatusReport.run(config: config, store: store(), user: nil, json: false, now: Self.now).lines == ["no managed accounts in /var/lib/cloudlogin"])
    }

    @Test func json() {
        let output = StatusReport.run(config: config, store: store(alice, bob), user: "alice", json: true, now: Self.now)
        #expect(output.lines == [#"{"state_dir":"/var/lib/cloudlogin","users":[{"name":"alice","subject":"sub-a","idp_login":"alice@example.com","origin":"created","last_online_success":1764209700,"last_verdict":"accepted","allowed":true,"offline":{"allowed":true,"days_left":11},"granted_groups":["sudo","developers"]}]}"#])
    }

    @Test func aUserNotManagedIsExit4() {
        let text = StatusReport.run(config: config, store: store(alice), user: "carol", json: false, now: Self.now)
        #expect(text == StatusReport.Output(lines: ["carol: not managed by CloudLogin"], status: .notManaged))
        let json = StatusReport.run(config: config, store: store(alice), user: "carol", json: true, now: Self.now)
        #expect(json.lines == [#"{"state_dir":"/var/lib/cloudlogin","users":[],"not_managed":"carol"}"#] && json.status.code == 4)
    }

    @Test func anUnreadableStateDirectoryIsExit1() {
        let temporary = TemporaryDirectory()
        let state = temporary.directory("state", mode: 0o777)
        let output = StatusReport.run(config: config, store: StateDirectory(path: state, owner: me), user: nil, json: false, now: Self.now)
        #expect(output == StatusReport.Output(errors: ["error: state: \(state) is writable by group or others; run chmod go-w \(state)"], status: .configUnusable))
    }

    @Test func utc() {
        #expect(StatusReport.utc(0) == "1970-01-01 00:00:00 UTC")
        #expect(StatusReport.utc(Self.now) == "2025-11-30 02:15:00 UTC")
    }
}

@Suite struct TracingSeamsTests {
    let log = TerminalLog(trace: false)

    @Test func aDryRunChangesNoAccountButListsEveryChange() {
        let table = AccountTable()
        let accounts = TracingAccounts(table, log: log, dryRun: true)
        #expect(throws: Never.self) { try accounts.createAccount(name: "carol", gecos: "Carol", shell: "/bin/bash", groups: ["cloudlogin"]).get() }
        #expect(throws: Never.self) { try accounts.addMember("carol", to: "sudo").get() }
        #expect(table.changes.isEmpty && table.account(named: "carol") == nil)
        // As the real run would see it afterwards.
        #expect(accounts.account(named: "carol")?.name == "carol")
        #expect(accounts.isMember("carol", of: "sudo") && accounts.isMember("carol", of: "cloudlogin"))
        #expect(accounts.changes == ["create the account carol (useradd -m, GECOS 'Carol', shell /bin/bash, member of cloudlogin)",
                                     "add carol to the local group sudo"])
    }

    @Test func withoutDryRunTheChangesAreMade() {
        let table = AccountTable()
        let accounts = TracingAccounts(table, log: log, dryRun: false)
        #expect(throws: Never.self) { try accounts.addMember("localuser", to: "adm").get() }
        #expect(table.changes == ["gpasswd -a localuser adm"] && accounts.changes == ["add localuser to the local group adm"])
    }

    @Test func aDryRunKeepsRecordsInMemory() throws {
        let table = StateTable()
        let state = TracingState(table, directory: "/nonexistent", log: log, dryRun: true)
        let record = ManagedUser(name: "carol", subject: "s", idpLogin: "carol@example.com", origin: .created, lastOnlineSuccess: 0)
        try state.save(record).get()
        #expect(table.records.isEmpty)
        #expect(try state.user(named: "carol").get() == record)
    }
}
