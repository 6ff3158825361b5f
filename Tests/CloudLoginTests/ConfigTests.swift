@testable import CloudLogin
import Foundation
import Testing

@Suite struct ConfigTests {
    static let full = """
    ; CloudLogin test config
    [idp]
    provider = oidc
    issuer = https://idp.example.com/realms/corp   ; discovery here
    client_id = linux-login
    scopes = openid profile email
    username_suffix = @example.com
    timeout = 8
    connect_timeout = 2
    ropg_mfa_required = password-verified
    proxy = http://proxy.example.com:3128
    proxy_from_environment = no

    [users]
    name_claim = preferred_username
    min_uid = 2000
    exclude = root, admin
    migrate = no
    create = yes
    shell = /bin/zsh
    allow_groups =
    groups_claim = groups
    admin_groups = 1234-abcd
    admin_local_group = sudo
    group_map = devs:developers, ops:adm
    demote = yes

    [offline]
    allow = yes
    max_days = 7

    [okta]
    factor = push
    push_timeout = 30
    """

    static func parse(_ text: String, private isPrivate: Bool = true,
                      secretFile: Result<SecretBytes, SafeFileError> = .success(SecretBytes("file-secret".utf8)),
                      trustedFile: SafeFileError? = nil) -> Result<Config, ConfigDiagnostic> {
        ConfigParser.parse(text, path: "/etc/cloudlogin/cloudlogin.conf",
                           context: .init(fileIsPrivate: isPrivate, readSecretFile: { _ in secretFile },
                                          checkTrustedFile: { _ in trustedFile }))
    }

    static func error(_ text: String, private isPrivate: Bool = true) -> ConfigDiagnostic? {
        if case .failure(let problem) = parse(text, private: isPrivate) { return problem }
        return nil
    }

    @Test func everyDocumentedKeyIsRead() throws {
        let config = try Self.parse(Self.full).get()
        #expect(config.warnings.isEmpty)
        #expect(config.issuer == "https://idp.example.com/realms/corp")
        #expect(config.clientID == "linux-login")
        #expect(config.clientAuthentication == .none)
        #expect(config.timeout == 8 && config.connectTimeout == 2)
        #expect(config.ropgMFARequired == .passwordVerified)
        #expect(config.proxy == "http://proxy.example.com:3128" && !config.proxyFromEnvironment)
        #expect(config.minUID == 2000)
        #expect(config.exclude == ["root", "admin"])
        #expect(config.shell == "/bin/zsh")
        #expect(config.groupMap == [GroupMapping(idpGroup: "devs", localGroup: "developers"), GroupMapping(idpGroup: "ops", localGroup: "adm")])
        #expect(config.offlineMaxDays == 7)
        #expect(config.oktaFactor == .push && config.oktaPushTimeout == 30)
    }

    @Test func theMFAKeysAreRead() throws {
        let base = "[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\n"
        let defaults = try Self.parse(base).get()
        #expect(defaults.mfa == .off && defaults.passwordGrant && defaults.deviceTimeout == 120 && defaults.qrCode)
        #expect(!defaults.usesDeviceAuthorization)
        let set = try Self.parse(base + "mfa = when-required\ndevice_timeout = 300\nqr_code = no\ndevice_authorization_endpoint = https://idp.test/device\n").get()
        #expect(set.mfa == .whenRequired && set.deviceTimeout == 300 && !set.qrCode)
        #expect(set.deviceAuthorizationEndpoint == "https://idp.test/device" && set.usesDeviceAuthorization)
        // Device only means MFA by device authorization every time.
        let deviceOnly = try Self.parse(base + "password_grant = no\n").get()
        #expect(!deviceOnly.passwordGrant && deviceOnly.mfa == .always)
    }

    @Test func secretFileMeansBasicAuthentication() throws {
        let config = try Self.parse("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\nclient_secret_file = /etc/cloudlogin/secret\n").get()
        #expect(config.clientAuthentication == .basic)
        #expect(config.clientSecret?.withBytes { Array($0) } == Array("file-secret".utf8))
    }

    @Test func unknownKeysAndSectionsWarnWithTheirLine() throws {
        let config = try Self.parse("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\ncolour = blue\n[extra]\nkey = 1\n").get()
        #expect(config.warnings.map(\.description) == [
            "/etc/cloudlogin/cloudlogin.conf:5: idp.colour: unknown key is ignored",
            "/etc/cloudlogin/cloudlogin.conf:6: unknown section [extra] is ignored",
        ])
    }

    @Test(arguments: [
        ("[idp]\nissuer = https://idp.test\nclient_id = x\n", 1, "idp.provider", "is required"),
        ("[idp]\nprovider = oidc\nclient_id = x\n", 1, "idp.issuer", "is required"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\n", 1, "idp.client_id", "is required"),
        ("[idp]\nprovider = okta\n", 1, "idp.okta_domain", "is required"),
        ("[idp]\nprovider = saml\n", 2, "idp.provider", "'saml' is not one of: oidc, okta"),
        ("[idp]\nprovider = oidc\nissuer = http://idp.test\nclient_id = x\n", 3, "idp.issuer", "must be an https:// URL"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\ntimeout = soon\n", 5, "idp.timeout", "'soon' must be a whole number of seconds from 1 to 120"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\ntimeout = 0\n", 5, "idp.timeout", "from 1 to 120"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\ntimeout = 3\nconnect_timeout = 5\n", 6, "idp.connect_timeout", "longer than timeout"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\nclient_id = y\n", 5, "idp.client_id", "set twice"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\nid_token_algs = RS256 HS256\n", 5, "idp.id_token_algs", "'HS256' is not allowed"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\nid_token_algs = none\n", 5, "idp.id_token_algs", "'none' is not allowed"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\nclient_auth = basic\n", 5, "idp.client_auth", "no client_secret"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\nclient_secret = a\nclient_secret_file = /s\n", 6, "idp.client_secret_file", "keep one"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\nca_file = relative.pem\n", 5, "idp.ca_file", "absolute path"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\nusername_suffix = example.com\n", 5, "idp.username_suffix", "must be empty or '@'"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\nproxy_from_environment = sometimes\n", 5, "idp.proxy_from_environment", "must be yes or no"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\nproxy = socks5://127.0.0.1:1080\n", 5, "idp.proxy", "must be an http:// or https:// proxy URL"),
        ("[users]\nmin_uid = -1\n", 2, "users.min_uid", "whole number"),
        ("[users]\nmigrate = maybe\n", 2, "users.migrate", "must be yes or no"),
        ("[users]\nadmin_local_group = Wheel\n", 2, "users.admin_local_group", "not a valid local group name"),
        ("[users]\ngroup_map = devs\n", 2, "users.group_map", "must be idp-group:local-group"),
        ("[offline]\nmax_days = forever\n", 2, "offline.max_days", "whole number of days"),
        ("[okta]\nfactor = email\n", 2, "okta.factor", "not one of: ask, push, totp, sms"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\nmfa = sometimes\n", 5, "idp.mfa", "not one of: off, when-required, always"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\ndevice_timeout = 5\n", 5, "idp.device_timeout", "from 30 to 900"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\npassword_grant = no\nmfa = off\n", 6, "idp.mfa", "password_grant = no signs in by device authorization only"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\nmfa = always\nropg_mfa_required = password-verified\n", 6, "idp.ropg_mfa_required", "keep one of them"),
        ("[idp]\nprovider = okta\nokta_domain = https://x.okta.com\nmfa = always\n", 4, "idp.mfa", "is for provider = oidc"),
        ("[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\ndevice_authorization_endpoint = http://idp.test/device\n", 5, "idp.device_authorization_endpoint", "must be an https:// URL"),
        ("provider = oidc\n", 1, "provider", "outside any section"),
        ("[idp\n", 1, nil, "malformed section header"),
        ("[idp]\njust words\n", 2, nil, "expected 'key = value'"),
    ] as [(String, Int, String?, String)])
    func badValueNamesFileLineAndKey(_ text: String, _ line: Int, _ key: String?, _ message: String) throws {
        let problem = try #require(Self.error(text))
        #expect(problem.path == "/etc/cloudlogin/cloudlogin.conf")
        #expect(problem.line == line)
        #expect(problem.key == key)
        #expect(problem.message.contains(message), "\(problem)")
    }

    @Test func inlineSecretNeedsAPrivateFile() throws {
        let text = "[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\nclient_secret = hunter2\n"
        let problem = try #require(Self.error(text, private: false))
        #expect(problem.key == "idp.client_secret")
        #expect(problem.message.contains("chmod 600"))
        #expect(!problem.description.contains("hunter2"))
        #expect(try Self.parse(text, private: true).get().clientAuthentication == .basic)
    }

    @Test func unsafeSecretFileIsNamed() throws {
        let text = "[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\nclient_secret_file = /etc/cloudlogin/secret\n"
        guard case .failure(let problem) = Self.parse(text, secretFile: .failure(.readableByOthers("/etc/cloudlogin/secret"))) else {
            Issue.record("accepted a world-readable secret file")
            return
        }
        #expect(problem.line == 5)
        #expect(problem.message.contains("chmod 600 /etc/cloudlogin/secret"))
    }

    // MARK: - Proxy

    @Test func theEnvironmentsProxyIsIgnoredUnlessTheAdminOptsIn() throws {
        let config = try Self.parse(Self.minimal).get()
        #expect(config.proxy == nil && !config.proxyFromEnvironment)
        #expect(ProxyPolicy(config: config) == ProxyPolicy(proxy: nil, fromEnvironment: false))
        for value in ["yes", "true", "1"] {
            #expect(try Self.parse(Self.minimal + "proxy_from_environment = \(value)\n").get().proxyFromEnvironment)
        }
        for value in ["no", "false", "0"] {
            #expect(try !Self.parse(Self.minimal + "proxy_from_environment = \(value)\n").get().proxyFromEnvironment)
        }
        let optedIn = try Self.parse(Self.minimal + "proxy = http://proxy.test:3128\nproxy_from_environment = yes\n").get()
        #expect(ProxyPolicy(config: optedIn) == ProxyPolicy(proxy: "http://proxy.test:3128", fromEnvironment: true))
    }

    @Test(arguments: [
        // (proxy key, opted in, setuid host) -> CURLOPT_PROXY (nil: unset), CURLOPT_NOPROXY
        (nil, false, false, "", ""),
        (nil, false, true, "", ""),
        ("http://proxy.test:3128", false, false, "http://proxy.test:3128", ""),
        ("http://proxy.test:3128", false, true, "http://proxy.test:3128", ""),
        (nil, true, true, "", ""),
        ("http://proxy.test:3128", true, true, "http://proxy.test:3128", ""),
        (nil, true, false, nil, "internal.test"),
        ("http://proxy.test:3128", true, false, "http://proxy.test:3128", "internal.test"),
    ] as [(String?, Bool, Bool, String?, String)])
    func curlProxyOptionsAreAlwaysExplicitUnlessATrustedEnvironmentIsOptedIn(
        _ proxy: String?, _ optedIn: Bool, _ setuid: Bool, _ curlProxy: String?, _ noProxy: String) {
        let environment = ["no_proxy": "internal.test", "NO_PROXY": "*", "https_proxy": "http://caller.test:9"]
        let options = ProxyPolicy(proxy: proxy, fromEnvironment: optedIn)
            .curlOptions(environmentIsUntrusted: setuid) { environment[$0] }
        #expect(options == ProxyPolicy.CurlOptions(proxy: curlProxy, noProxy: noProxy))
    }

    @Test func noProxyFromATrustedEnvironmentIsReadAsLibcurlReadsIt() {
        let policy = ProxyPolicy(proxy: nil, fromEnvironment: true)
        #expect(policy.curlOptions(environmentIsUntrusted: false) { ["NO_PROXY": "upper.test"][$0] }.noProxy == "upper.test")
        #expect(policy.curlOptions(environmentIsUntrusted: false) { _ in nil }.noProxy == "")
    }

    // MARK: - CA file

    @Test func anUntrustedCAFileMakesTheConfigInvalid() throws {
        let text = Self.minimal + "ca_file = /etc/cloudlogin/ca.pem\n"
        #expect(try Self.parse(text).get().caFile == "/etc/cloudlogin/ca.pem")
        let problem = try #require(Self.parse(text, trustedFile: .writableByOthers("/etc/cloudlogin/ca.pem")).failure)
        #expect(problem.line == 5 && problem.key == "idp.ca_file")
        #expect(problem.message.contains("/etc/cloudlogin/ca.pem is writable by group or others; run chmod go-w /etc/cloudlogin/ca.pem"), "\(problem)")
    }

    @Test func inlineCommentsNeedSpaceBefore() throws {
        let config = try Self.parse("[idp]\nprovider = oidc ; the protocol\nissuer = https://idp.test/a;b\nclient_id = x # id\n").get()
        #expect(config.issuer == "https://idp.test/a;b")
        #expect(config.clientID == "x")
    }

    // MARK: - The file on disk

    static func writeFile(_ text: String, mode: mode_t, owner: uid_t = 0) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cloudlogin-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("cloudlogin.conf").path
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, mode)
        chown(path, owner, 0)
        return path
    }

    static let minimal = "[idp]\nprovider = oidc\nissuer = https://idp.test\nclient_id = x\n"

    @Test func rootOwnedFileLoads() throws {
        let path = try Self.writeFile(Self.minimal, mode: 0o644)
        #expect(throws: Never.self) { try ConfigLoader.load(path: path, owner: geteuid()).get() }
    }

    @Test func missingFileIsNamed() {
        guard case .failure(let problem) = ConfigLoader.load(path: "/nonexistent/cloudlogin.conf", owner: geteuid()) else {
            Issue.record("loaded a missing file")
            return
        }
        #expect(problem.description == "/nonexistent/cloudlogin.conf: /nonexistent/cloudlogin.conf does not exist")
    }

    @Test func groupWritableFileIsRefused() throws {
        let path = try Self.writeFile(Self.minimal, mode: 0o664)
        guard case .failure(let problem) = ConfigLoader.load(path: path, owner: geteuid()) else {
            Issue.record("loaded a group-writable config")
            return
        }
        #expect(problem.message.contains("writable by group or others"))
    }

    @Test(.enabled(if: geteuid() == 0, "needs root to give the file away"))
    func fileOwnedBySomeoneElseIsRefused() throws {
        let path = try Self.writeFile(Self.minimal, mode: 0o644, owner: 65534)
        guard case .failure(let problem) = ConfigLoader.load(path: path, owner: 0) else {
            Issue.record("loaded a config owned by nobody")
            return
        }
        #expect(problem.message.contains("owned by uid 65534, not root"))
    }

    @Test func caFileMustBeOwnedByRootAndNotWritableByOthers() throws {
        let ca = try Self.writeFile("-----BEGIN CERTIFICATE-----\n", mode: 0o644, owner: geteuid())
        let path = try Self.writeFile(Self.minimal + "ca_file = \(ca)\n", mode: 0o644)
        #expect(try ConfigLoader.load(path: path, owner: geteuid()).get().caFile == ca)
        for mode: mode_t in [0o664, 0o646, 0o666] {
            chmod(ca, mode)
            guard case .failure(let problem) = ConfigLoader.load(path: path, owner: geteuid()) else {
                Issue.record("loaded a config whose CA file has mode \(String(mode, radix: 8))")
                continue
            }
            #expect(problem.key == "idp.ca_file" && problem.line == 5)
            #expect(problem.message.contains("\(ca) is writable by group or others; run chmod go-w \(ca)"), "\(problem)")
        }
        chmod(ca, 0o644)
        unlink(ca)
        guard case .failure(let missing) = ConfigLoader.load(path: path, owner: geteuid()) else {
            Issue.record("loaded a config whose CA file does not exist")
            return
        }
        #expect(missing.message.contains("\(ca) does not exist"))
        let directory = String(ca.dropLast("/cloudlogin.conf".count))
        let notAFile = try Self.writeFile(Self.minimal + "ca_file = \(directory)\n", mode: 0o644)
        #expect(ConfigLoader.load(path: notAFile, owner: geteuid()).failure?.message.contains("is not a regular file") == true)
    }

    @Test(.enabled(if: geteuid() == 0, "needs root to give the file away"))
    func caFileOwnedBySomeoneElseIsRefused() throws {
        let ca = try Self.writeFile("-----BEGIN CERTIFICATE-----\n", mode: 0o644, owner: 65534)
        let path = try Self.writeFile(Self.minimal + "ca_file = \(ca)\n", mode: 0o644)
        guard case .failure(let problem) = ConfigLoader.load(path: path, owner: 0) else {
            Issue.record("loaded a config whose CA file belongs to nobody")
            return
        }
        #expect(problem.message.contains("\(ca) is owned by uid 65534, not root; run chown root:root \(ca)"), "\(problem)")
    }

    @Test func worldReadableSecretFileIsRefused() throws {
        let secret = try Self.writeFile("topsecret\n", mode: 0o644)
        let path = try Self.writeFile(Self.minimal + "client_secret_file = \(secret)\n", mode: 0o644)
        guard case .failure(let problem) = ConfigLoader.load(path: path, owner: geteuid()) else {
            Issue.record("loaded a world-readable secret")
            return
        }
        #expect(problem.message.contains("readable by group or others"))
        chmod(secret, 0o600)
        let config = try ConfigLoader.load(path: path, owner: geteuid()).get()
        #expect(config.clientSecret?.withBytes { Array($0) } == Array("topsecret".utf8))
    }
}

private extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
