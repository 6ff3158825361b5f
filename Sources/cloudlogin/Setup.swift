import ArgumentParser
import CloudLogin
import CloudLoginAdmin
import Glibc

/// `cloudlogin setup`: its options; the checks and the writing are `ConfigSetup`'s.
struct Setup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the identity provider, then write a safe config file.",
        discussion: """
        OIDC: --issuer URL --client-id ID [--client-secret-file F]. Discovery and the JWKS are \
        fetched first; with --test-user USER (password on standard input) a real password grant \
        must succeed too. Okta: --okta-domain URL writes provider = okta after checking that \
        URL/api/v1/authn answers over TLS. Nothing is written unless every check passes.

        Exit status: 0 written, 1 bad arguments, an unsafe file, or a config already there \
        (use --force to replace it), 2 the identity provider check failed (nothing written).
        """
    )

    @Option(name: .long, help: "The config file to write.")
    var config: String = Config.defaultPath

    @Option(name: .long, help: "The OpenID issuer URL (https); discovery at ISSUER/.well-known/openid-configuration.")
    var issuer: String?

    @Option(name: .long, help: "The client registered at the IdP for the password grant.")
    var clientID: String?

    @Option(name: .long, help: "A root-owned mode-0600 file holding the client secret (for a confidential client).")
    var clientSecretFile: String?

    @Option(name: .long, help: "PEM file of the CA that signed the IdP's certificate, when it is not in the system trust store.")
    var caFile: String?

    @Option(name: .long, help: "An http:// or https:// proxy through which this machine reaches the IdP (written as proxy; the environment's proxy variables are not used).")
    var proxy: String?

    @Option(name: .long, help: "Appended to typed names without '@', e.g. @example.com.")
    var usernameSuffix: String?

    @Option(name: .long, help: "Your Okta org URL (https://example.okta.com): writes provider = okta.")
    var oktaDomain: String?

    @Option(name: .long, help: "Also sign in USER with a real password grant before writing (password on standard input).")
    var testUser: String?

    @Flag(name: .long, help: "Replace an existing config file.")
    var force = false

    func validate() throws {
        if oktaDomain != nil {
            guard issuer == nil, clientID == nil else { throw ValidationError("give either --okta-domain or --issuer with --client-id, not both") }
            guard testUser == nil else { throw ValidationError("--test-user works with --issuer only: setup does not sign a test user in at Okta; try `cloudlogin login USER` after setup") }
        } else {
            guard issuer != nil, clientID != nil else { throw ValidationError("give --issuer URL and --client-id ID (or --okta-domain URL)") }
        }
    }

    func run() throws {
        let setup = ConfigSetup(configPath: config, issuer: issuer, clientID: clientID, clientSecretFile: clientSecretFile,
                                caFile: caFile, proxy: proxy, usernameSuffix: usernameSuffix, oktaDomain: oktaDomain,
                                testUser: testUser, force: force, owner: ConfigOption.owner, group: 0)
        switch setup.run(readPassword: PasswordReader.fromStandardInput) {
        case .failure(let failure):
            printError("setup: \(failure.message)")
            Glibc.exit(failure.status.code)
        case .success:
            for line in setup.written { print(line) }
        }
    }
}
