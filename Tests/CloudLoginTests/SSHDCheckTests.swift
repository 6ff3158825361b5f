import CloudLogin
@testable import CloudLoginAdmin
import Glibc
import Testing

/// `cloudlogin check`'s reading of sshd: the config as `sshd -T` prints it and as the files say
/// it, and what each setting means for a cloud user signing in over SSH.
@Suite struct SSHDConfigTests {
    @Test(arguments: [
        ("UsePAM yes", "UsePAM", ["yes"]),
        ("  usepam=no", "usepam", ["no"]),
        ("\tUsePAM = yes   # a comment", "UsePAM", ["yes"]),
        ("UsePAM\tyes\r", "UsePAM", ["yes"]),
        (#"AuthenticationMethods "publickey,password" keyboard-interactive"#, "AuthenticationMethods", ["publickey,password", "keyboard-interactive"]),
        (#"Banner 'a b' c\ d "e\"f" g#h"#, "Banner", ["a b", "c d", "e\"f", "g#h"]),
        (#"Banner "" x"#, "Banner", ["", "x"]),
    ])
    func linesSplitAsSshdSplitsThem(line: String, keyword: String, arguments: [String]) {
        let split = SSHDConfig.split(Substring(line))
        #expect(split?.0 == keyword && split?.1 == arguments)
    }

    @Test func blankLinesAndCommentsAreNothing() {
        for line in ["", "   ", "# UsePAM no", "   #UsePAM no"] { #expect(SSHDConfig.split(Substring(line)) == nil) }
    }

    @Test func theEffectiveConfigKeepsTheFirstLineOfAKeyword() {
        let config = SSHDConfig.effective("port 22\nhostkey /etc/ssh/a\nhostkey /etc/ssh/b\nusepam yes\r\nchallengeresponseauthentication no\nauthenticationmethods publickey,password keyboard-interactive:pam\n")
        #expect(config.settings["hostkey"]?.values == ["/etc/ssh/a"])
        #expect(config.settings["usepam"]?.values == ["yes"] && config.settings["usepam"]?.file == nil)
        // sshd before 8.7 printed the old name.
        #expect(config.settings["kbdinteractiveauthentication"]?.keyword == "challengeresponseauthentication")
        let settings = SSHDSettings(config)
        #expect(settings == SSHDSettings(usePAM: true, keyboardInteractive: false, password: true,
                                         methodLists: [["publickey", "password"], ["keyboard-interactive:pam"]]))
        #expect(settings.methodsAllowKeyboardInteractive && settings.methodsAllowPassword)
    }

    @Test func sshdsDefaultsForWhatIsNotSet() {
        let settings = SSHDSettings(SSHDConfig())
        #expect(settings == SSHDSettings(usePAM: false, keyboardInteractive: true, password: true, methodLists: nil))
        #expect(settings.methodsText == "any")
        let any = SSHDSettings(SSHDConfig.effective("authenticationmethods any\nusepam YES\n"))
        #expect(any.methodLists == nil && any.usePAM)
        #expect(!SSHDSettings(usePAM: true, keyboardInteractive: true, password: true, methodLists: [["keyboard-interactive:bsdauth"]]).methodsAllowKeyboardInteractive)
    }

    /// Files as sshd reads them: Debian's `Include /etc/ssh/sshd_config.d/*.conf` at the top, so
    /// a drop-in wins (first value); a Match block runs to the next Match or the end of its file.
    func files(_ texts: [String: String], globs: [String: [String]] = [:]) -> SSHDConfig? {
        SSHDConfig.read("/etc/ssh/sshd_config", readFile: { texts[$0] }, expand: { globs[$0] ?? (texts[$0] == nil ? [] : [$0]) })
    }

    @Test func includesAreFollowedInPlaceAndTheFirstValueWins() throws {
        let config = try #require(files([
            "/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\nInclude local.conf\nPasswordAuthentication no\n",
            "/etc/ssh/sshd_config.d/10-cloud.conf": "ChallengeResponseAuthentication yes\n",
            "/etc/ssh/sshd_config.d/20-other.conf": "KbdInteractiveAuthentication no\n",
            "/etc/ssh/local.conf": "PasswordAuthentication yes\n",
        ], globs: ["/etc/ssh/sshd_config.d/*.conf": ["/etc/ssh/sshd_config.d/10-cloud.conf", "/etc/ssh/sshd_config.d/20-other.conf"]]))
        #expect(config.files == ["/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/10-cloud.conf", "/etc/ssh/sshd_config.d/20-other.conf", "/etc/ssh/local.conf"])
        let kbd = try #require(config.settings["kbdinteractiveauthentication"])
        #expect(kbd.keyword == "ChallengeResponseAuthentication" && kbd.file == "/etc/ssh/sshd_config.d/10-cloud.conf" && kbd.line == 1)
        // A relative Include is taken from /etc/ssh.
        #expect(config.settings["passwordauthentication"]?.file == "/etc/ssh/local.conf")
        #expect(SSHDSettings(config) == SSHDSettings(usePAM: true, keyboardInteractive: true, password: true, methodLists: nil))
        #expect(config.notes.isEmpty && config.matchBlocks.isEmpty)
    }

    @Test func matchBlocksAreNotGlobalAndAreListed() throws {
        let config = try #require(files([
            "/etc/ssh/sshd_config": "UsePAM yes\nInclude /etc/ssh/inc.conf\nPasswordAuthentication yes\nMatch User bob\n  KbdInteractiveAuthentication no\n  Include /etc/ssh/bob.conf\n  X11Forwarding no\nMatch Address 10.0.0.0/8\n  AuthenticationMethods publickey\n",
            // A Match in an included file ends with that file.
            "/etc/ssh/inc.conf": "Match Group admins\n  PasswordAuthentication no\n",
            "/etc/ssh/bob.conf": "PasswordAuthentication no\n",
        ]))
        #expect(SSHDSettings(config) == SSHDSettings(usePAM: true, keyboardInteractive: true, password: true, methodLists: nil))
        #expect(config.settings["passwordauthentication"]?.line == 3)
        #expect(config.matchBlocks == [
            SSHDConfig.MatchBlock(file: "/etc/ssh/inc.conf", line: 1, criteria: "Group admins", keywords: ["passwordauthentication"]),
            SSHDConfig.MatchBlock(file: "/etc/ssh/sshd_config", line: 4, criteria: "User bob", keywords: ["kbdinteractiveauthentication", "passwordauthentication"]),
            SSHDConfig.MatchBlock(file: "/etc/ssh/sshd_config", line: 8, criteria: "Address 10.0.0.0/8", keywords: ["authenticationmethods"]),
        ])
    }

    @Test func whatCannotBeReadIsNoted() {
        #expect(files([:]) == nil)
        let config = files(["/etc/ssh/sshd_config": "Include /etc/ssh/gone.conf\nInclude /etc/ssh/sshd_config\n"],
                           globs: ["/etc/ssh/gone.conf": ["/etc/ssh/gone.conf"]])
        #expect(config?.notes.first == "/etc/ssh/gone.conf (included at /etc/ssh/sshd_config line 1) could not be read")
        // Including itself ends at sshd's depth limit.
        #expect(config?.notes.last == "/etc/ssh/sshd_config line 2: includes nested more than 16 deep were not followed")
        #expect(config?.files.count == 17)
    }

    @Test func globFindsFilesInLexicalOrder() {
        let temporary = TemporaryDirectory()
        temporary.file("b.conf")
        temporary.file("a.conf")
        temporary.file("c.txt")
        #expect(SSHDConfig.glob("\(temporary.path)/*.conf") == ["\(temporary.path)/a.conf", "\(temporary.path)/b.conf"])
        #expect(SSHDConfig.glob("\(temporary.path)/none/*.conf").isEmpty)
    }
}

@Suite struct SSHDJudgementTests {
    static let good = SSHDSettings(usePAM: true, keyboardInteractive: true, password: true, methodLists: nil)

    func judge(_ settings: SSHDSettings, stack: SSHDCheck.Stack = .cloudLogin(service: "sshd"), files: SSHDConfig? = nil) -> [CheckReport.Finding] {
        SSHDCheck.judge(settings, source: "sshd -T -f /etc/ssh/sshd_config", files: files, configPath: "/etc/ssh/sshd_config",
                        stack: stack, pamDirectory: "/etc/pam.d")
    }

    func ids(_ findings: [CheckReport.Finding]) -> [String] { findings.map { "\($0.id) \($0.status.rawValue)" } }

    @Test func keyboardInteractiveThroughPAMIsFine() {
        let found = judge(Self.good)
        #expect(ids(found) == ["sshd ok"])
        #expect(found.first?.message == "sshd: UsePAM yes, KbdInteractiveAuthentication yes, AuthenticationMethods any (sshd -T -f /etc/ssh/sshd_config): cloud users sign in over SSH through PAM's keyboard-interactive prompts (pam_cloudlogin in /etc/pam.d/sshd)")
        var methods = Self.good
        methods.methodLists = [["publickey", "keyboard-interactive:pam"]]
        #expect(ids(judge(methods)) == ["sshd ok"])
    }

    @Test(arguments: [
        // UsePAM no: an error when sshd's stack has pam_cloudlogin (bypassed), else a warning.
        (SSHDSettings(usePAM: false, keyboardInteractive: true, password: true, methodLists: nil), SSHDCheck.Stack.cloudLogin(service: "sshd"), ["sshd.use-pam error"]),
        (SSHDSettings(usePAM: false, keyboardInteractive: true, password: false, methodLists: nil), SSHDCheck.Stack.cloudLogin(service: "sshd"), ["sshd.use-pam error"]),
        (SSHDSettings(usePAM: false, keyboardInteractive: true, password: true, methodLists: nil), SSHDCheck.Stack.notJudged, ["sshd.use-pam warning"]),
        (SSHDSettings(usePAM: false, keyboardInteractive: false, password: true, methodLists: nil), SSHDCheck.Stack.notJudged, ["sshd.use-pam warning", "sshd.kbd-interactive warning"]),
        // Debian's stock sshd: PAM through the password method only.
        (SSHDSettings(usePAM: true, keyboardInteractive: false, password: true, methodLists: nil), SSHDCheck.Stack.cloudLogin(service: "sshd"), ["sshd.password-only warning"]),
        (SSHDSettings(usePAM: true, keyboardInteractive: false, password: false, methodLists: nil), SSHDCheck.Stack.cloudLogin(service: "sshd"), ["sshd.kbd-interactive warning"]),
        (SSHDSettings(usePAM: true, keyboardInteractive: false, password: true, methodLists: [["publickey"]]), SSHDCheck.Stack.cloudLogin(service: "sshd"), ["sshd.kbd-interactive warning", "sshd.authentication-methods warning"]),
        (SSHDSettings(usePAM: true, keyboardInteractive: false, password: true, methodLists: [["publickey"], ["password"]]), SSHDCheck.Stack.cloudLogin(service: "sshd"), ["sshd.password-only warning", "sshd.authentication-methods warning"]),
        (SSHDSettings(usePAM: true, keyboardInteractive: true, password: true, methodLists: [["publickey"]]), SSHDCheck.Stack.cloudLogin(service: "sshd"), ["sshd.authentication-methods warning"]),
        (SSHDSettings(usePAM: true, keyboardInteractive: true, password: true, methodLists: [["publickey", "keyboard-interactive:bsdauth"]]), SSHDCheck.Stack.cloudLogin(service: "sshd"), ["sshd.authentication-methods warning"]),
        // sshd's PAM service without pam_cloudlogin (only judged once some service has it).
        (SSHDSettings(usePAM: true, keyboardInteractive: true, password: true, methodLists: nil), SSHDCheck.Stack.without(service: "sshd", unix: true), ["sshd ok", "sshd.pam-stack warning"]),
        (SSHDSettings(usePAM: false, keyboardInteractive: true, password: true, methodLists: nil), SSHDCheck.Stack.without(service: "sshd", unix: true), ["sshd.use-pam warning"]),
    ])
    func eachSettingThatKeepsCloudUsersOutIsNamed(settings: SSHDSettings, stack: SSHDCheck.Stack, expected: [String]) {
        #expect(ids(judge(settings, stack: stack)) == expected)
    }

    @Test func aBypassedStackIsALocalProblemThatSaysWhy() throws {
        let found = try #require(judge(SSHDSettings(usePAM: false, keyboardInteractive: true, password: true, methodLists: nil)).first)
        #expect(found.area == .local)
        #expect(found.message.contains("although /etc/pam.d/sshd has pam_cloudlogin"))
        #expect(found.message.contains("a cloud user's synced password keeps working over SSH after the identity provider refused them"))
        #expect(found.fix == "add the line 'UsePAM yes' to /etc/ssh/sshd_config, above any Match block (sshd keeps the first value it reads), then reload sshd (systemctl reload ssh)")
        let keysOnly = try #require(judge(SSHDSettings(usePAM: false, keyboardInteractive: false, password: false, methodLists: nil)).first)
        #expect(!keysOnly.message.contains("synced password"))
        var report = CheckReport(json: true)
        for finding in judge(SSHDSettings(usePAM: false, keyboardInteractive: true, password: true, methodLists: nil)) {
            report.add(finding.id, finding.status, finding.area, finding.message, fix: finding.fix)
        }
        #expect(report.exitStatus == .localProblem)
    }

    @Test func theFixNamesTheLineThatSetsTheValue() throws {
        let files = SSHDConfig.read("/etc/ssh/sshd_config", readFile: { path in
            path == "/etc/ssh/sshd_config" ? "Include /etc/ssh/sshd_config.d/*.conf\nChallengeResponseAuthentication no\nUsePAM yes\nAuthenticationMethods publickey\n" : nil
        }, expand: { _ in [] })
        let settings = SSHDSettings(usePAM: true, keyboardInteractive: false, password: true, methodLists: [["publickey"]])
        let found = Dictionary(judge(settings, files: files).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(found["sshd.kbd-interactive"]?.fix == "change line 2 of /etc/ssh/sshd_config ('ChallengeResponseAuthentication no') to 'KbdInteractiveAuthentication yes', then reload sshd (systemctl reload ssh)")
        #expect(found["sshd.authentication-methods"]?.fix == "change line 4 of /etc/ssh/sshd_config ('AuthenticationMethods publickey') to 'AuthenticationMethods publickey keyboard-interactive' (another list: the cloud password alone) or 'AuthenticationMethods publickey,keyboard-interactive' (the cloud password after the other methods), then reload sshd (systemctl reload ssh)")
        // When sshd -T says otherwise than the files (an include that could not be read), no line is named.
        let disagreeing = judge(SSHDSettings(usePAM: false, keyboardInteractive: true, password: true, methodLists: nil), files: files)
        #expect(disagreeing.first?.fix?.hasPrefix("add the line 'UsePAM yes' to /etc/ssh/sshd_config") == true)
    }

    @Test func passwordOnlySaysWhatWorksAndWhatDoesNot() throws {
        let found = try #require(judge(SSHDSettings(usePAM: true, keyboardInteractive: false, password: true, methodLists: nil)).first)
        #expect(found.message == "sshd: KbdInteractiveAuthentication no with PasswordAuthentication yes (sshd -T -f /etc/ssh/sshd_config): sshd runs PAM only through its password method, which answers every hidden prompt with the password the client sent and fails any other question: MFA prompts (Okta's factor menu, codes and push) cannot be answered")
        #expect(found.fix?.hasPrefix("add the line 'KbdInteractiveAuthentication yes' to /etc/ssh/sshd_config") == true)
        #expect(found.area == .none)
    }

    @Test func matchBlocksThatChangeTheJudgedKeywordsAreMentioned() {
        var files = SSHDConfig()
        files.matchBlocks = [SSHDConfig.MatchBlock(file: "/etc/ssh/sshd_config", line: 9, criteria: "User bob", keywords: ["passwordauthentication", "kbdinteractiveauthentication"]),
                             SSHDConfig.MatchBlock(file: "/etc/ssh/sshd_config", line: 12, criteria: "User carol", keywords: [])]
        let found = judge(Self.good, files: files)
        #expect(ids(found) == ["sshd ok", "sshd.match info"])
        #expect(found.last?.message.hasPrefix("sshd: /etc/ssh/sshd_config line 9 'Match User bob' sets PasswordAuthentication, KbdInteractiveAuthentication: ") == true)
    }

    @Test func theStackOfOtherWhenThereIsNoSshdFile() {
        let found = judge(Self.good, stack: .without(service: "other", unix: false))
        #expect(found.last?.message == "sshd: there is no /etc/pam.d/sshd, so libpam uses /etc/pam.d/other, and it (with what it includes) has no pam_cloudlogin in its auth stack: SSH sign-in never asks the identity provider")
    }
}

/// Writes an executable script. The descriptor is close-on-exec: tests run in parallel, and a
/// child another test starts while it is open for writing would keep it open, so that running
/// the script fails with ETXTBSY ("Text file busy").
@discardableResult
func script(_ temporary: TemporaryDirectory, _ name: String, _ text: String) -> String {
    let path = "\(temporary.path)/\(name)"
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    close(descriptor)
    return path
}

/// `check` runs the real sshd in the integration tests; here, small scripts stand in for it.
@Suite struct SSHDCheckTests {
    static let enabled = "auth [success=done ignore=ignore authinfo_unavail=ignore module_unknown=ignore default=die] pam_cloudlogin.so\nauth required pam_unix.so try_first_pass\n"

    /// A fake sshd that checks it was asked `-T -f CONFIG` and prints `output` (or fails).
    func sshd(_ temporary: TemporaryDirectory, config: String, output: String, status: Int = 0, stderr: String = "") -> String {
        script(temporary, "sshd", """
        #!/bin/sh
        [ "$#" = 3 ] && [ "$1" = -T ] && [ "$2" = -f ] && [ "$3" = '\(config)' ] || { echo "unexpected arguments: $*" >&2; exit 9; }
        printf '%s' '\(output)'
        printf '%s' '\(stderr)' >&2
        exit \(status)

        """)
    }

    func run(_ check: SSHDCheck) -> CheckReport {
        var report = CheckReport(json: true)
        check.run(into: &report)
        return report
    }

    func pamDirectory(_ temporary: TemporaryDirectory, _ files: [String: String]) -> String {
        let directory = temporary.directory("pam.d")
        for (name, text) in files { temporary.file("pam.d/\(name)", text) }
        return directory
    }

    @Test func withoutSshdSSHIsNotChecked() {
        let temporary = TemporaryDirectory()
        let report = run(SSHDCheck(program: "\(temporary.path)/no-sshd", configPath: "\(temporary.path)/sshd_config", pamDirectory: temporary.path))
        #expect(report.findings == [CheckReport.Finding(id: "sshd", status: .info, area: .none,
                                                        message: "sshd: not installed (no \(temporary.path)/no-sshd); SSH sign-in not checked", fix: nil)])
        #expect(report.exitStatus == .success)
        // Info is neither a warning nor a problem; the text says "info:".
        var lines: [String] = []
        var text = CheckReport(json: false, output: { lines.append($0) })
        SSHDCheck(program: "\(temporary.path)/no-sshd", configPath: "\(temporary.path)/sshd_config", pamDirectory: temporary.path).run(into: &text)
        #expect(lines == ["info: sshd: not installed (no \(temporary.path)/no-sshd); SSH sign-in not checked"])
        #expect(text.summary(configPath: "c") == "check: no problems")
    }

    @Test func theEffectiveConfigComesFromSshd() {
        let temporary = TemporaryDirectory()
        let config = temporary.file("sshd_config", "UsePAM yes\n")  // sshd -T says otherwise: it wins
        let program = sshd(temporary, config: config, output: "port 22\nusepam no\nkbdinteractiveauthentication yes\npasswordauthentication yes\nauthenticationmethods any\n")
        let pam = pamDirectory(temporary, ["sshd": Self.enabled])
        let report = run(SSHDCheck(program: program, configPath: config, pamDirectory: pam))
        #expect(report.findings.map(\.id) == ["sshd.use-pam"])
        #expect(report.findings.first?.message.hasPrefix("sshd: UsePAM no (sshd -T -f \(config)): ") == true)
        #expect(report.findings.first?.fix?.hasPrefix("add the line 'UsePAM yes' to \(config)") == true)
        #expect(report.exitStatus == .localProblem)
    }

    @Test func whenSshdCannotSayTheFilesAreRead() {
        let temporary = TemporaryDirectory()
        let config = temporary.file("sshd_config", "UsePAM yes\nKbdInteractiveAuthentication no\n")
        let program = sshd(temporary, config: config, output: "", status: 255, stderr: "Missing privilege separation directory: /run/sshd\r\n")
        let report = run(SSHDCheck(program: program, configPath: config, pamDirectory: pamDirectory(temporary, ["sshd": Self.enabled])))
        #expect(report.findings.map(\.id) == ["sshd.effective-config", "sshd.password-only"])
        #expect(report.findings.first?.status == .info)
        #expect(report.findings.first?.message == "sshd: `\(program) -T -f \(config)` did not run (exit 255: Missing privilege separation directory: /run/sshd): judged from \(config) as written (with the files it includes) and sshd's defaults for the rest")
        #expect(report.findings.last?.message.contains("(read from \(config))") == true)
        #expect(report.findings.last?.fix?.hasPrefix("change line 2 of \(config) ('KbdInteractiveAuthentication no') to 'KbdInteractiveAuthentication yes'") == true)
        #expect(report.exitStatus == .success)
    }

    @Test func nothingToReadIsAWarning() {
        let temporary = TemporaryDirectory()
        let config = "\(temporary.path)/missing"
        let program = sshd(temporary, config: config, output: "", status: 1, stderr: "\(config): No such file or directory\n")
        let report = run(SSHDCheck(program: program, configPath: config, pamDirectory: temporary.path))
        #expect(report.findings.map(\.id) == ["sshd.config"] && report.findings.first?.status == .warning)
        #expect(report.findings.first?.fix == "name sshd's config file with --sshd-config")
    }

    /// Debian's sshd reaches pam_cloudlogin through `@include common-auth`: what sshd puts in
    /// front of it is judged on sshd's whole stack.
    @Test func sshdsStackIsJudgedWithWhatItIncludes() {
        let temporary = TemporaryDirectory()
        let config = temporary.file("sshd_config", "")
        let program = sshd(temporary, config: config, output: "usepam yes\nkbdinteractiveauthentication yes\npasswordauthentication no\nauthenticationmethods any\n")
        let pam = pamDirectory(temporary, ["common-auth": Self.enabled, "sshd": "@include common-auth\n"])
        #expect(run(SSHDCheck(program: program, configPath: config, pamDirectory: pam)).findings.map(\.id) == ["sshd"])
        temporary.file("pam.d/sshd", "auth sufficient pam_unix.so\n@include common-auth\n")
        let report = run(SSHDCheck(program: program, configPath: config, pamDirectory: pam))
        #expect(report.findings.map(\.id) == ["sshd", "pam.order"])
        #expect(report.findings.last?.message.hasPrefix("pam: \(pam)/common-auth line 1: pam_cloudlogin comes after pam_unix (sshd line 1) in the auth stack of sshd") == true)
        #expect(report.exitStatus == .localProblem)
        // A problem of the included file itself is `pam`'s to report, not repeated here.
        temporary.file("pam.d/sshd", "@include common-auth\n")
        temporary.file("pam.d/common-auth", "auth required pam_cloudlogin.so\nauth required pam_unix.so\n")
        #expect(run(SSHDCheck(program: program, configPath: config, pamDirectory: pam)).findings.map(\.id) == ["sshd"])
        // sshd's stack without pam_cloudlogin while another service has it.
        temporary.file("pam.d/sshd", "auth required pam_unix.so\n")
        #expect(run(SSHDCheck(program: program, configPath: config, pamDirectory: pam)).findings.map(\.id) == ["sshd", "sshd.pam-stack"])
    }
}

@Suite struct ProgramRunnerTests {
    @Test func standardOutputAndErrorApartWithTheExitStatus() throws {
        let temporary = TemporaryDirectory()
        let program = script(temporary, "tool", "#!/bin/sh\necho \"out $1 $PATH\"\necho err >&2\nread line && echo \"stdin: $line\"\nexit 3\n")
        let output = try ProgramRunner.run(program, ["a b"]).get()
        #expect(output == ProgramRunner.Output(status: 3, standardOutput: "out a b /usr/sbin:/usr/bin:/sbin:/bin\n", standardError: "err\n"))
    }

    @Test func aProgramThatHangsIsStopped() {
        let temporary = TemporaryDirectory()
        let program = script(temporary, "hang", "#!/bin/sh\nexec sleep 30\n")
        var started = timespec()
        clock_gettime(CLOCK_MONOTONIC, &started)
        #expect(failure(ProgramRunner.run(program, [], timeLimit: 300)) == .timedOut(300))
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        #expect(now.tv_sec - started.tv_sec < 10)
    }

    @Test func outputIsBoundedAndAMissingProgramCannotStart() throws {
        let temporary = TemporaryDirectory()
        let program = script(temporary, "loud", "#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\000' x\n")
        let output = try ProgramRunner.run(program, [], maximumOutput: 1000).get()
        #expect(output.status == 0 && output.standardOutput.utf8.count == 1000)
        #expect(failure(ProgramRunner.run("\(temporary.path)/none", [])) == .cannotStart("No such file or directory"))
    }
}
