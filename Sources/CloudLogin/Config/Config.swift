/// CloudLogin's configuration, `/etc/cloudlogin/cloudlogin.conf` (cloudlogin.conf(5);
/// docs/design.md, "Configuration").
///
/// The key names are a public contract. `ConfigParser` reads and checks every key into this
/// value; an unknown key is a warning, a bad value an error naming file, line and key.
public struct Config: Sendable {
    public static let defaultPath = "/etc/cloudlogin/cloudlogin.conf"

    public enum Provider: String, Sendable, CaseIterable {
        case oidc, okta
    }

    /// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
    public enum ClientAuthentication: String, Sendable, CaseIterable {
        /// HTTP Basic with the url-encoded client id and secret (client_secret_basic).
        case basic
        /// client_id and client_secret in the POST body (client_secret_post).
        case post
        /// A public client: client_id in the body, no secret.
        case none
    }

    /// What an "MFA required" answer to the password grant means (docs/design.md, "Situation
    /// by situation"; docs/security.md §5).
    public enum MFARequiredPolicy: String, Sendable, CaseIterable {
        case deny
        case passwordVerified = "password-verified"
    }

    /// When the device authorization step (RFC 8628) completes MFA after the password grant
    /// (docs/design.md, "MFA by device authorization").
    public enum MFAMode: String, Sendable, CaseIterable {
        /// Never: an "MFA required" answer is decided by `ropg_mfa_required`.
        case off
        /// When the password grant answers a documented "password right, MFA required".
        case whenRequired = "when-required"
        /// After every accepted password (for IdPs that do not demand MFA on the password grant).
        case always
    }

    /// How MFA is completed when the password grant asks for it (`mfa_method`).
    public enum MFAMethod: String, Sendable, CaseIterable {
        /// In the prompt through the MFA API when the answer carries an `mfa_token` (Auth0,
        /// Okta direct authentication); else the device step.
        case prompt
        /// Always the device authorization step.
        case device
    }

    /// Which Okta API signs people in (`okta_api`).
    public enum OktaAPI: String, Sendable, CaseIterable {
        /// The Classic Authentication API, `/api/v1/authn`.
        case authn
        /// Identity Engine direct authentication: the password grant at the authorization
        /// server with the MFA API (`mfa_required`, `…/v1/challenge`).
        case direct
    }

    public enum OktaFactor: String, Sendable, CaseIterable {
        case ask, push, totp, sms
    }

    /// The file this configuration came from (for messages).
    public var path: String = Config.defaultPath

    // [idp]
    public var provider: Provider = .oidc
    public var issuer: String?
    public var tokenEndpoint: String?
    public var jwksURI: String?
    public var userinfoEndpoint: String?
    public var clientID: String = ""
    public var clientSecret: SecretBytes?
    public var clientAuthentication: ClientAuthentication = .none
    public var scopes: [String] = ["openid", "profile", "email"]
    public var caFile: String?
    public var oktaDomain: String?
    public var usernameSuffix: String = ""
    /// Seconds for the whole IdP exchange.
    public var timeout: Int = 10
    public var connectTimeout: Int = 3
    public var ropgMFARequired: MFARequiredPolicy = .deny
    /// `mfa`: when the device authorization step runs after the password.
    public var mfa: MFAMode = .off
    /// `mfa_method`: the MFA API in the prompt, or the device step.
    public var mfaMethod: MFAMethod = .prompt
    /// `okta_api`: Okta's Classic Authentication API or Identity Engine direct authentication.
    public var oktaAPI: OktaAPI = .authn
    /// `password_grant`: false for device-only sign-in (no password asked or sent; the local
    /// password is locked, so there is no offline sign-in).
    public var passwordGrant: Bool = true
    /// `device_timeout`: seconds the person has to complete the device step.
    public var deviceTimeout: Int = 120
    /// `qr_code`: whether the device step shows a QR code beside the URL and code.
    public var qrCode: Bool = true
    /// The device authorization endpoint, when set by hand; else discovery's.
    public var deviceAuthorizationEndpoint: String?
    public var idTokenAlgorithms: [JWSAlgorithm] = JWSAlgorithm.allCases
    /// Seconds of clock difference tolerated on `exp`, `iat` and `nbf`.
    public var clockSkew: Int = 60
    public var cacheDirectory: String = "/var/cache/cloudlogin"
    /// An HTTP(S) proxy for the IdP; without it, none (see `proxyFromEnvironment`).
    public var proxy: String?
    /// Whether the environment's proxy variables count (`https_proxy`, `no_proxy`, …): only when
    /// the admin says so, and never in a setuid host (su, sudo), whose environment is the
    /// caller's (`ProxyPolicy`).
    public var proxyFromEnvironment: Bool = false

    // [users]
    public var nameClaim: String = "preferred_username"
    public var minUID: Int = 1000
    public var exclude: [String] = ["root"]
    public var migrate: Bool = false
    /// Local accounts in `admin_local_group` that `migrate` may take over (none otherwise: an
    /// existing administrator is never handed to the IdP by accident).
    public var migrateAdmins: [String] = []
    public var create: Bool = true
    public var shell: String = "/bin/bash"
    public var allowGroups: [String] = []
    public var groupsClaim: String = "groups"
    public var adminGroups: [String] = []
    public var adminLocalGroup: String = "sudo"
    public var groupMap: [GroupMapping] = []
    public var demote: Bool = true
    /// Where managed-user records are kept.
    public var stateDirectory: String = "/var/lib/cloudlogin"

    // [offline]
    public var offlineAllowed: Bool = true
    public var offlineMaxDays: Int = 14

    // [okta]
    public var oktaFactor: OktaFactor = .ask
    public var oktaPushTimeout: Int = 60
    /// An OIDC client (Native app, PKCE, no secret) used to read groups after an Okta sign-in.
    public var oktaClientID: String?
    public var oktaRedirectURI: String?
    /// The authorization server that issues the ID token with the groups claim.
    public var oktaAuthorizationServer: String = "default"
    public var oktaScopes: [String] = ["openid", "profile", "groups"]

    /// Whether a sign-in runs the device authorization step at all.
    public var usesDeviceAuthorization: Bool { provider == .oidc && (mfa != .off || !passwordGrant) }

    /// `provider = okta` with `okta_api = direct`: the password grant at Okta's authorization
    /// server (`issuer`, `client_id` and `scopes` come from `[okta]`), MFA through the MFA API.
    public var isOktaDirect: Bool { provider == .okta && oktaAPI == .direct }

    /// Whether the OpenID password grant signs people in (`provider = oidc`, or Okta direct).
    public var usesPasswordGrant: Bool { (provider == .oidc && passwordGrant) || isOktaDirect }

    /// Whether an `mfa_required` answer with an `mfa_token` is completed in the prompt.
    public var usesMFAAPI: Bool { isOktaDirect || (provider == .oidc && mfa != .off && mfaMethod == .prompt) }

    /// The issuer of the Okta authorization server (`okta_domain/oauth2/authorization_server`).
    public var oktaIssuer: String? {
        guard var base = oktaDomain else { return nil }
        while base.hasSuffix("/") { base.removeLast() }
        return "\(base)/oauth2/\(oktaAuthorizationServer)"
    }

    /// Problems that do not stop CloudLogin (unknown keys, for example).
    public var warnings: [ConfigDiagnostic] = []

    public init() {}
}

/// One `idp-group:local-group` pair of `group_map`.
public struct GroupMapping: Equatable, Sendable {
    public var idpGroup: String
    public var localGroup: String

    public init(idpGroup: String, localGroup: String) {
        self.idpGroup = idpGroup
        self.localGroup = localGroup
    }
}

/// A problem in a config file, with where it is and how to fix it.
public struct ConfigDiagnostic: Error, Equatable, Sendable, CustomStringConvertible {
    public var path: String
    /// 1-based line, or 0 when the problem is about the file as a whole.
    public var line: Int
    /// `section.key` when the problem is about one key.
    public var key: String?
    public var message: String

    public init(path: String, line: Int, key: String?, message: String) {
        self.path = path
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        var text = path
        if line > 0 { text += ":\(line)" }
        text += ": "
        if let key { text += "\(key): " }
        return text + message
    }
}
