import ArgumentParser
import CloudLogin
import CloudLoginAdmin
import Glibc

/// `cloudlogin check`: its options; the checks are `ConfigCheck`'s.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the config, the identity provider, file modes and the PAM stack; name every problem with its fix.",
        discussion: """
        Checks: the config file as the module reads it; discovery and JWKS; the clock against \
        the IdP's Date header; with --test-user (password on standard input), a real password \
        grant; owners and modes of the config, secret, CA file, state and cache directories; \
        where pam_cloudlogin stands in the PAM stack (--pam-dir); whether sshd hands SSH \
        sign-ins to it: UsePAM, KbdInteractiveAuthentication and AuthenticationMethods, as \
        `sshd -T` reports them (--sshd, --sshd-config) or, when that cannot run, as the files say.

        Exit status: 0 no problem (warnings allowed), 1 the config file cannot be used, \
        2 sign-in with the identity provider would fail (unreachable, TLS, grant refused, \
        clock skew), 3 a local problem (unsafe file modes, a PAM stack that bypasses \
        CloudLogin or locks people out, an sshd that bypasses the PAM stack). 2 wins over 3; \
        --json lists every finding.
        """
    )

    @OptionGroup var options: ConfigOption

    @Option(name: .long, help: "The PAM service directory to check.")
    var pamDir: String = "/etc/pam.d"

    @Option(name: .long, help: "sshd's config file (read with sshd -T -f FILE).")
    var sshdConfig: String = SSHDCheck.defaultConfig

    @Option(name: .long, help: "The sshd program asked for its effective config; when it does not exist, SSH sign-in is not checked.")
    var sshd: String = SSHDCheck.defaultProgram

    @Option(name: .long, help: "Also sign in USER with a real password grant (the password is read from standard input); nothing local is changed.")
    var testUser: String?

    @Flag(name: .long, help: "Print the findings as one JSON object.")
    var json = false

    func run() throws {
        let check = ConfigCheck(configPath: options.config, pamDirectory: pamDir, testUser: testUser, json: json,
                                owner: ConfigOption.owner, sshdProgram: sshd, sshdConfig: sshdConfig, readPassword: PasswordReader.fromStandardInput)
        let report = check.run()
        print(report.summary(configPath: options.config))
        fflush(stdout)
        Glibc.exit(report.exitStatus.code)
    }
}
