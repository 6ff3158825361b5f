import CloudLogin
import Glibc

/// The identity-provider half of `cloudlogin check` (and of `cloudlogin setup`): discovery,
/// JWKS, the clock, and optionally a real password grant for a test user.
public struct IdPCheck {
    public let config: Config
    public let testUser: String?
    /// Reads the test user's password (from standard input).
    private let readPassword: () -> PasswordAnswer

    /// What each request got is in the typed `IdPProblem` the core hands back (`IdPClassifier`);
    /// the tracing transport only counts and times requests.
    private let transport: TracingTransport
    private let directory: ProviderDirectory

    public init(config: Config, testUser: String?, readPassword: @escaping () -> PasswordAnswer) {
        self.config = config
        self.testUser = testUser
        self.readPassword = readPassword
        self.transport = TracingTransport(CurlTransport(config: config), log: TerminalLog(trace: false))
        // No cache: check always asks the IdP itself, and leaves the module's cache alone.
        self.directory = ProviderDirectory(settings: OIDCSettings(passwordGrant: config), transport: transport, cache: nil, clock: SystemClock(), log: SilentLog())
    }

    var discoveryURL: String? {
        guard let issuer = config.issuer else { return nil }
        return issuer.hasSuffix("/") ? "\(issuer).well-known/openid-configuration" : "\(issuer)/.well-known/openid-configuration"
    }

    /// Returns false when the IdP cannot be used at all (later steps would only repeat it).
    @discardableResult
    public func run(into report: inout CheckReport) -> Bool {
        let deadline = Deadline(clock: SystemClock(), seconds: config.timeout)
        var grantsListed: [String]?
        var deviceEndpoint = config.deviceAuthorizationEndpoint
        if config.tokenEndpoint == nil || config.jwksURI == nil || config.userinfoEndpoint == nil
            || (config.usesDeviceAuthorization && deviceEndpoint == nil) {
            switch directory.discovery(deadline: deadline, refresh: true) {
            case .failure(let problem):
                let advice = advice(for: problem)
                report.add(advice.id, .error, .idp, "discovery: \(problem.detail)", fix: advice.fix)
                return false
            case .success(let metadata):
                report.add("idp.discovery", .ok, .none, "discovery: issuer \(metadata.issuer)", fix: nil)
                report.detail("token endpoint: \(metadata.tokenEndpoint)")
                report.detail("userinfo endpoint: \(metadata.userinfoEndpoint ?? "(none)")")
                report.detail("jwks: \(metadata.jwksURI ?? "(none)")")
                grantsListed = metadata.grantTypesSupported
                if deviceEndpoint == nil { deviceEndpoint = metadata.deviceAuthorizationEndpoint }
            }
        }
        if config.usesDeviceAuthorization {
            checkDeviceGrant(endpoint: deviceEndpoint, grantsListed: grantsListed, into: &report)
        }
        if let override = config.tokenEndpoint { report.detail("token endpoint (from config): \(override)") }
        checkClock(into: &report)

        switch directory.keys(deadline: deadline, refresh: true) {
        case .failure(let problem):
            let advice = advice(for: problem)
            report.add(advice.id == "idp.unreachable" ? "idp.jwks" : advice.id, .error, .idp, "jwks: \(problem.detail)", fix: advice.fix)
        case .success(let found):
            if found.keys.keys.isEmpty {
                report.add("idp.jwks", .error, .idp, "jwks: the JWKS holds no signing key CloudLogin can use (RSA ≥ 2048 bits, EC P-256/P-384)",
                           fix: "have the IdP publish an RS256/ES256 signing key, or set jwks_uri to the right key set")
            } else {
                report.add("idp.jwks", .ok, .none, "jwks: \(found.keys.keys.count) usable signing key(s)", fix: nil)
            }
        }
        report.detail("client: \(config.clientID), authentication \(config.clientAuthentication.rawValue), scopes \(config.scopes.joined(separator: " "))")

        if !config.passwordGrant {
            report.add("idp.grant", .ok, .none, "grant: password_grant = no; the password grant is not used", fix: nil)
        } else if let testUser {
            checkGrant(user: testUser, into: &report)
        } else {
            if let grants = grantsListed, !grants.contains("password") {
                report.add("idp.grant-not-listed", .warning, .none,
                           "grant: the IdP's grant_types_supported does not list 'password' (some IdPs allow it anyway)",
                           fix: "allow the Resource Owner Password grant for client \(config.clientID), then try: cloudlogin check --test-user USER (password on standard input)")
            }
            report.add("idp.grant", .ok, .none, "grant: not tried; give --test-user USER (password on standard input) to try a real sign-in", fix: nil)
        }
        return true
    }

    // MARK: - Device authorization

    /// `mfa` and `password_grant = no` need the IdP's device authorization endpoint.
    func checkDeviceGrant(endpoint: String?, grantsListed: [String]?, into report: inout CheckReport) {
        let mode = config.passwordGrant ? "mfa = \(config.mfa.rawValue)" : "password_grant = no"
        guard let endpoint else {
            report.add("idp.device", .error, .idp,
                       "device authorization: \(mode) needs the IdP's device authorization endpoint, and discovery lists none",
                       fix: "turn the device authorization grant on for client \(config.clientID) at the IdP, or set device_authorization_endpoint")
            return
        }
        report.detail("device authorization endpoint: \(endpoint)")
        if let grants = grantsListed, !grants.contains(DeviceAuthorization.grantType) {
            report.add("idp.device-not-listed", .warning, .none,
                       "device authorization: the IdP's grant_types_supported does not list \(DeviceAuthorization.grantType)",
                       fix: "allow the device authorization grant for client \(config.clientID) at the IdP")
        } else {
            report.add("idp.device", .ok, .none, "device authorization: \(mode); approvals at \(endpoint), up to \(config.deviceTimeout) s", fix: nil)
        }
        if !config.passwordGrant {
            report.add("offline.device-only", .ok, .none,
                       "offline: password_grant = no signs in by device authorization only; local passwords are locked, so there is no offline sign-in", fix: nil)
        }
    }

    // MARK: - Clock

    func checkClock(into report: inout CheckReport) {
        guard let url = discoveryURL ?? config.tokenEndpoint else { return }
        switch HTTPProbe.send(.get, url: url, caFile: config.caFile, proxy: ProxyPolicy(config: config), timeoutSeconds: config.timeout) {
        case .failure(let error):
            report.add("idp.clock", .warning, .none, "clock: cannot compare with the IdP's clock: \(error)", fix: "make sure the time is synchronised (timedatectl)")
        case .success(let answer):
            guard let serverTime = answer.serverTime else {
                report.add("idp.clock", .warning, .none, "clock: the IdP sent no Date header; the clock was not compared", fix: "make sure the time is synchronised (timedatectl)")
                return
            }
            // The Date header is whole seconds, taken somewhere during the request.
            let local = SystemClock().now()
            let skew = local &- serverTime
            let slack = 1 &+ answer.milliseconds / 1000
            let distance = abs(skew)
            if distance > Int64(truncatingIfNeeded: config.clockSkew) &+ slack {
                report.add("idp.clock-skew", .error, .idp,
                           "clock: this machine's clock is \(distance) s \(skew > 0 ? "ahead of" : "behind") the IdP's (its Date header), more than clock_skew = \(config.clockSkew) s: ID tokens will be refused as \(skew > 0 ? "expired" : "not yet valid") and every sign-in fails",
                           fix: "set the clock and keep it synchronised: timedatectl set-ntp true (systemd-timesyncd) or chrony; check timedatectl status")
            } else {
                report.add("idp.clock", .ok, .none, "clock: within \(distance) s of the IdP's (clock_skew = \(config.clockSkew) s)", fix: nil)
            }
        }
    }

    // MARK: - Password grant

    func checkGrant(user: String, into report: inout CheckReport) {
        guard let login = LoginName.idpLogin(typed: user, suffix: config.usernameSuffix) else {
            report.add("idp.grant", .error, .config, "grant: '\(ConfigParser.printable(user))' is not a user name CloudLogin can send", fix: "give a local name (alice) or a full UPN (alice@example.com)")
            return
        }
        let password: SecretBytes
        switch readPassword() {
        case .password(let given) where !given.isEmpty: password = given
        default:
            report.add("idp.grant", .error, .config, "grant: --test-user needs the password on standard input", fix: "echo the password into cloudlogin check --test-user \(user) (or use read -s)")
            return
        }
        defer { password.wipe() }
        let grant = OIDCPasswordGrant(config: config, transport: transport, directory: directory, clock: SystemClock(), log: SilentLog())
        // The grant alone: MFA needs the person, whom check does not ask.
        let verdict = grant.verifyPassword(login: login, password: password, conversation: NoConversation(),
                                           deadline: Deadline(clock: SystemClock(), seconds: config.timeout), mfaInPrompt: false)
        switch verdict {
        case .accepted(let identity):
            let local = AccountSync.localName(for: identity, claim: config.nameClaim, usernameSuffix: config.usernameSuffix)
            report.add("idp.grant", .ok, .none, "grant: \(login) signed in with the password grant (subject \(identity.subject))", fix: nil)
            if let local {
                report.add("idp.name", .ok, .none, "name: claim \(config.nameClaim) maps \(login) to the local account \(local)", fix: nil)
            } else {
                report.add("idp.name", .error, .idp, "name: the IdP's \(config.nameClaim) claim for \(login) is missing or is not a valid local user name; every sign-in would be refused",
                           fix: "set name_claim to a claim the IdP sends (preferred_username, email, upn) whose part before @ is a valid Linux name")
            }
        case .rejected(let reason):
            report.add("idp.grant-user", .warning, .none,
                       "grant: the password grant is allowed for client \(config.clientID), but the IdP refused \(login) (\(reason.rawValue))",
                       fix: "check the test user's name (username_suffix = '\(config.usernameSuffix)') and password at the IdP")
        case .mfaRequired(true) where config.usesMFAAPI:
            report.add("idp.grant-mfa", .ok, .none,
                       "grant: the IdP verified the password of \(login) and requires MFA: the user answers it in the prompt through the MFA API (or, without an mfa_token, by device authorization); not tried here", fix: nil)
        case .mfaRequired(true) where config.mfa != .off:
            report.add("idp.grant-mfa", .ok, .none,
                       "grant: the IdP verified the password of \(login) and requires MFA: with mfa = \(config.mfa.rawValue), the user approves by device authorization", fix: nil)
        case .mfaRequired(let verified):
            report.add("idp.grant-mfa", .warning, .none,
                       "grant: the IdP requires MFA for \(login)\(verified ? " after a correct password" : ""): with ropg_mfa_required = \(config.ropgMFARequired.rawValue) this user \(verified && config.ropgMFARequired == .passwordVerified ? "signs in only to an existing managed account" : "cannot sign in")",
                       fix: "exempt the users of this client from MFA at the IdP (a sign-on policy for the password grant), or see ropg_mfa_required in cloudlogin.conf(5)")
        case .problem(let problem):
            let named = grantAdvice(problem)
            report.add(named.id, .error, .idp, "grant: \(named.message)", fix: named.fix)
        }
    }

    func grantAdvice(_ problem: IdPProblem) -> (id: String, message: String, fix: String) {
        let client = config.clientID
        switch problem.cause {
        case .oauthError(.unauthorizedClient, _):
            return ("idp.grant-not-allowed",
                    "the client \(client) may not use the password grant (the IdP answered unauthorized_client)",
                    "allow the Resource Owner Password grant for client \(client): Keycloak: Direct access grants on; Okta: grant type Resource Owner Password; Entra ID: Allow public client flows = Yes; LemonLDAP::NG: oidcRPMetaDataOptionsAllowPasswordGrant = 1")
        case .oauthError(.unsupportedGrantType, _):
            return ("idp.grant-unsupported",
                    "the IdP does not accept the password grant at this token endpoint (unsupported_grant_type)",
                    "enable the Resource Owner Password grant on the IdP or authorization server (Okta: an access policy rule that allows Resource Owner Password); check issuer/token_endpoint")
        case .oauthError(.invalidClient, _):
            return ("idp.client-refused",
                    "the IdP refused the client credentials of \(client) (invalid_client)",
                    "check client_id, the secret in client_secret_file and client_auth (basic or post) against the client registered at the IdP")
        case .entraCode(let code):
            return ("idp.client-refused",
                    "the IdP refused the client \(client) (Entra error AADSTS\(code))",
                    "check the app registration of \(client) in Entra ID: client_id, the secret, admin consent for openid profile email (AADSTS65001), Allow public client flows = Yes; look the code up at https://login.microsoftonline.com/error?code=\(code)")
        default:
            let advice = advice(for: problem)
            return (advice.id, problem.description, advice.fix)
        }
    }

    // MARK: - Advice

    /// Names the kind of failure from the typed problem: the transport's own error, else its kind.
    func advice(for problem: IdPProblem) -> (id: String, fix: String) {
        switch problem.cause {
        case .transport(.tls):
            return ("idp.tls", "the IdP's certificate is not trusted or does not match its name: set ca_file to the PEM of the CA that signed it (wrong CA?), and check the host name in issuer")
        case .transport(.resolve):
            return ("idp.unreachable", "the issuer's host name does not resolve: check issuer and DNS (resolv.conf)")
        case .transport(.connect), .transport(.timeout), .transport(.other):
            return ("idp.unreachable", "check that the issuer host is reachable from this machine (firewall; behind a proxy set proxy in [idp]: https_proxy/no_proxy count only with proxy_from_environment = yes), and that issuer is right")
        case .transport(.tooLarge), .transport(.invalidURL):
            return ("idp.misconfigured", "check issuer, token_endpoint and jwks_uri: they must be https URLs of the IdP")
        case .notJSON:
            return ("idp.misconfigured", "something other than the IdP answered (a proxy or firewall page): check the proxy key, https_proxy/no_proxy and the URL")
        case .invalidToken:
            return ("idp.id-token", "check issuer (the exact iss of the tokens), client_id (the aud), id_token_algs and this machine's clock")
        case .http, .oauthError, .entraCode, .authorizationError, .malformed, .local:
            switch problem.kind {
            case .unavailable: return ("idp.unavailable", "the IdP answers with a server error or rate limit; try again later or ask its operator")
            case .misconfigured: return ("idp.misconfigured", "check issuer (it must be the exact issuer the IdP announces) and the client registration")
            }
        }
    }

    // MARK: - Okta

    /// provider = okta: the Authentication API must answer over verified TLS.
    public func runOkta(into report: inout CheckReport) {
        guard let domain = config.oktaDomain else { return }
        let url = (domain.hasSuffix("/") ? String(domain.dropLast()) : domain) + "/api/v1/authn"
        // An empty sign-in: Okta refuses it (400/401), which shows it is there. What the answer
        // means comes from the one classifier, by status (the probe keeps no body).
        let problem: IdPProblem?
        var status = 0
        switch HTTPProbe.send(.post, url: url, caFile: config.caFile, proxy: ProxyPolicy(config: config), timeoutSeconds: config.timeout) {
        case .failure(let error):
            problem = IdPClassifier.problem(error, stage: .oktaAuthn)
        case .success(let answer):
            status = answer.status
            let classified = IdPClassifier.problem(status: answer.status, stage: .oktaAuthn)
            problem = classified.kind == .unavailable || answer.status == 404 ? classified : nil
        }
        if let problem {
            let fix: String
            switch problem.cause {
            case .transport(.tls):
                fix = "the certificate of \(domain) is not trusted: set ca_file, or check okta_domain"
            case .transport:
                fix = "check okta_domain and that it is reachable from this machine (firewall; behind a proxy set proxy in [idp])"
            default:
                fix = problem.kind == .unavailable
                    ? "Okta answers with a server error or rate limit; try again later"
                    : "check okta_domain: it must be your Okta org, e.g. https://example.okta.com"
            }
            let separator: String
            if case .transport = problem.cause { separator = ": " } else { separator = " " }
            report.add("idp.okta", .error, .idp, "okta: \(url)\(separator)\(problem.detail)", fix: fix)
        } else {
            report.add("idp.okta", .ok, .none, "okta: \(url) answers over TLS (HTTP \(status) to an empty request)", fix: nil)
        }
        // Groups: the Authentication API says nothing about them.
        let usesGroups = !config.adminGroups.isEmpty || !config.groupMap.isEmpty || !config.allowGroups.isEmpty
        if config.oktaClientID == nil {
            report.add("idp.okta.groups", usesGroups ? .warning : .ok, usesGroups ? .config : .none,
                       "okta: group mapping is off: Okta's Authentication API names no groups, and no [okta] client_id is set"
                           + (usesGroups ? "; admin_groups, group_map and allow_groups cannot be met" : ""),
                       fix: usesGroups ? "register an Okta OIDC Native app (PKCE, no secret) allowed on the authorization server, with a groups claim, and set [okta] client_id and redirect_uri" : nil)
        } else {
            report.add("idp.okta.groups", .ok, .none,
                       "okta: groups come from an ID token of \(config.oktaIssuer ?? "-") for client \(config.oktaClientID ?? "-") after each sign-in", fix: nil)
        }
    }
}
