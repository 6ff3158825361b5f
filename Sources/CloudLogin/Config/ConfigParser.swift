/// Turns the text of a config file into a `Config`, or names the first problem with its file,
/// line and key. Unknown sections and keys are warnings; everything else is an error.
public enum ConfigParser {
    /// Where a value stood, for messages.
    struct Origin {
        var path: String
        var line: Int
        var key: String

        func problem(_ message: String) -> ConfigDiagnostic {
            ConfigDiagnostic(path: path, line: line, key: key, message: message)
        }
    }

    typealias Setter = (inout Config, String, Origin, ConfigParser.Context) throws(ConfigDiagnostic) -> Void

    /// What the parser knows about the file it is reading.
    public struct Context {
        /// True when the config file is readable by its owner only (mode 0600 or stricter).
        public var fileIsPrivate: Bool
        /// Reads `client_secret_file`; the module passes a reader with the file-safety checks.
        public var readSecretFile: (String) -> Result<SecretBytes, SafeFileError>
        /// Checks `ca_file` (owner and mode, `SafeFile.check`); nil when it may be trusted.
        public var checkTrustedFile: (String) -> SafeFileError?

        public init(fileIsPrivate: Bool, readSecretFile: @escaping (String) -> Result<SecretBytes, SafeFileError>,
                    checkTrustedFile: @escaping (String) -> SafeFileError?) {
            self.fileIsPrivate = fileIsPrivate
            self.readSecretFile = readSecretFile
            self.checkTrustedFile = checkTrustedFile
        }
    }

    /// Parses `text` read from `path`.
    public static func parse(_ text: String, path: String, context: Context) -> Result<Config, ConfigDiagnostic> {
        do throws(ConfigDiagnostic) {
            return .success(try parseOrThrow(text, path: path, context: context))
        } catch {
            return .failure(error)
        }
    }

    static func parseOrThrow(_ text: String, path: String, context: Context) throws(ConfigDiagnostic) -> Config {
        var config = Config()
        config.path = path
        var section: String?
        var sectionLines: [String: Int] = [:]
        var seen: [String: Int] = [:]
        var secretLine = 0
        var secretFileLine = 0
        var clientAuthLine = 0
        var explicitClientAuth = false

        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = stripComment(rawLine).trimmed
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count > 2 else {
                    throw ConfigDiagnostic(path: path, line: lineNumber, key: nil,
                                           message: "malformed section header '\(printable(line))'; write it as [idp], [users], [offline] or [okta]")
                }
                let name = String(line.dropFirst().dropLast()).trimmed
                section = name
                if sectionLines[name] == nil { sectionLines[name] = lineNumber }
                if schema[name] == nil {
                    config.warnings.append(ConfigDiagnostic(path: path, line: lineNumber, key: nil,
                                                            message: "unknown section [\(printable(name))] is ignored"))
                }
                continue
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigDiagnostic(path: path, line: lineNumber, key: nil,
                                       message: "expected 'key = value', found '\(printable(line))'")
            }
            let key = line[..<equals].trimmed
            let value = line[line.index(after: equals)...].trimmed
            guard let section else {
                throw ConfigDiagnostic(path: path, line: lineNumber, key: key,
                                       message: "key outside any section; put it under [idp], [users], [offline] or [okta]")
            }
            guard let keys = schema[section] else { continue }
            let qualified = "\(section).\(key)"
            let origin = Origin(path: path, line: lineNumber, key: qualified)
            guard let setter = keys[key] else {
                config.warnings.append(origin.problem("unknown key is ignored"))
                continue
            }
            if let first = seen[qualified] {
                throw origin.problem("set twice (first on line \(first)); keep one")
            }
            seen[qualified] = lineNumber
            switch qualified {
            case "idp.client_secret": secretLine = lineNumber
            case "idp.client_secret_file": secretFileLine = lineNumber
            case "idp.client_auth": clientAuthLine = lineNumber; explicitClientAuth = true
            default: break
            }
            try setter(&config, value, origin, context)
        }

        try validate(&config, path: path, sectionLines: sectionLines, seen: seen,
                     secretLine: secretLine, secretFileLine: secretFileLine,
                     clientAuthLine: clientAuthLine, explicitClientAuth: explicitClientAuth,
                     context: context)
        return config
    }

    /// Checks that concern more than one key.
    private static func validate(_ config: inout Config, path: String, sectionLines: [String: Int],
                                 seen: [String: Int], secretLine: Int, secretFileLine: Int,
                                 clientAuthLine: Int, explicitClientAuth: Bool,
                                 context: Context) throws(ConfigDiagnostic) {
        let idpLine = sectionLines["idp"] ?? 0
        func missing(_ key: String, _ why: String) -> ConfigDiagnostic {
            ConfigDiagnostic(path: path, line: idpLine, key: "idp.\(key)", message: "is required \(why)")
        }
        guard seen["idp.provider"] != nil else {
            throw missing("provider", "(oidc or okta)")
        }
        if secretLine > 0 && secretFileLine > 0 {
            throw ConfigDiagnostic(path: path, line: secretFileLine, key: "idp.client_secret_file",
                                   message: "client_secret is set too (line \(secretLine)); keep one of them")
        }
        if secretLine > 0 && !context.fileIsPrivate {
            throw ConfigDiagnostic(path: path, line: secretLine, key: "idp.client_secret",
                                   message: "an inline secret needs the file to be readable by root only: chmod 600 \(path), or move the secret to client_secret_file")
        }
        switch config.provider {
        case .oidc:
            guard config.issuer != nil else { throw missing("issuer", "for provider = oidc (the https URL whose /.well-known/openid-configuration describes the IdP)") }
            guard !config.clientID.isEmpty else { throw missing("client_id", "for provider = oidc (the id of the client registered at the IdP)") }
        case .okta:
            guard config.oktaDomain != nil else { throw missing("okta_domain", "for provider = okta (for example https://example.okta.com)") }
            // The groups exchange redirects; direct authentication does not.
            if config.oktaClientID != nil && config.oktaRedirectURI == nil && config.oktaAPI == .authn {
                throw ConfigDiagnostic(path: path, line: sectionLines["okta"] ?? 0, key: "okta.redirect_uri",
                                       message: "is required with okta.client_id (the sign-in redirect URI registered for that Okta app)")
            }
        }
        if explicitClientAuth {
            let hasSecret = config.clientSecret != nil
            if config.clientAuthentication == .none && hasSecret {
                throw ConfigDiagnostic(path: path, line: clientAuthLine, key: "idp.client_auth",
                                       message: "is none but a client secret is configured; use basic or post, or remove the secret")
            }
            if config.clientAuthentication != .none && !hasSecret {
                throw ConfigDiagnostic(path: path, line: clientAuthLine, key: "idp.client_auth",
                                       message: "is \(config.clientAuthentication.rawValue) but no client_secret or client_secret_file is set")
            }
        } else {
            config.clientAuthentication = config.clientSecret == nil ? .none : .basic
        }
        try validateMFA(&config, path: path, idpLine: idpLine, seen: seen)
        if config.connectTimeout > config.timeout {
            throw ConfigDiagnostic(path: path, line: seen["idp.connect_timeout"] ?? idpLine, key: "idp.connect_timeout",
                                   message: "is \(config.connectTimeout) s, longer than timeout (\(config.timeout) s); make it shorter")
        }
    }

    /// The MFA keys together: the device step is for `provider = oidc`, device-only sign-in
    /// implies `mfa = always`, and `ropg_mfa_required = password-verified` (MFA done elsewhere)
    /// contradicts doing it here.
    private static func validateMFA(_ config: inout Config, path: String, idpLine: Int, seen: [String: Int]) throws(ConfigDiagnostic) {
        func problem(_ key: String, _ message: String) -> ConfigDiagnostic {
            ConfigDiagnostic(path: path, line: seen["idp.\(key)"] ?? idpLine, key: "idp.\(key)", message: message)
        }
        if config.provider == .okta {
            for key in ["mfa", "mfa_method", "password_grant", "device_timeout", "qr_code", "device_authorization_endpoint"] where seen["idp.\(key)"] != nil {
                throw problem(key, "is for provider = oidc; with provider = okta, MFA is Okta's own ([okta] factor, push_timeout)")
            }
            if config.oktaAPI == .direct {
                // Direct authentication is the OpenID password grant at Okta's authorization
                // server, with the app of [okta] client_id.
                guard let client = config.oktaClientID, let issuer = config.oktaIssuer else {
                    throw ConfigDiagnostic(path: path, line: seen["idp.okta_api"] ?? idpLine, key: "okta.client_id",
                                           message: "is required with okta_api = direct (the Okta app allowed the password grant and the MFA OTP and OOB grants)")
                }
                config.issuer = issuer
                config.clientID = client
                config.scopes = config.oktaScopes
            }
            return
        }
        if seen["idp.okta_api"] != nil {
            throw problem("okta_api", "is for provider = okta")
        }
        if !config.passwordGrant {
            if seen["idp.mfa"] != nil && config.mfa != .always {
                throw problem("mfa", "is \(config.mfa.rawValue), but password_grant = no signs in by device authorization only; remove the line or set mfa = always")
            }
            config.mfa = .always
        }
        if config.mfa != .off && config.ropgMFARequired == .passwordVerified {
            throw problem("ropg_mfa_required", "is password-verified (MFA is done elsewhere), but mfa = \(config.mfa.rawValue) does MFA here; keep one of them")
        }
    }

    // MARK: - The keys

    static let schema: [String: [String: Setter]] = [
        "idp": [
            "provider": { config, value, origin, _ throws(ConfigDiagnostic) in config.provider = try choice(value, origin) },
            "issuer": { config, value, origin, _ throws(ConfigDiagnostic) in config.issuer = try httpsURL(value, origin) },
            "token_endpoint": { config, value, origin, _ throws(ConfigDiagnostic) in config.tokenEndpoint = try optionalHTTPSURL(value, origin) },
            "jwks_uri": { config, value, origin, _ throws(ConfigDiagnostic) in config.jwksURI = try optionalHTTPSURL(value, origin) },
            "userinfo_endpoint": { config, value, origin, _ throws(ConfigDiagnostic) in config.userinfoEndpoint = try optionalHTTPSURL(value, origin) },
            "client_id": { config, value, origin, _ throws(ConfigDiagnostic) in config.clientID = try word(value, origin) },
            "client_secret": { config, value, origin, _ throws(ConfigDiagnostic) in
                guard !value.isEmpty else { throw origin.problem("is empty; remove the line for a public client") }
                config.clientSecret = SecretBytes(value.utf8)
            },
            "client_secret_file": { config, value, origin, context throws(ConfigDiagnostic) in
                let file = try absolutePath(value, origin)
                switch context.readSecretFile(file) {
                case .success(let secret):
                    guard !secret.isEmpty else { throw origin.problem("\(file) is empty") }
                    config.clientSecret = secret
                case .failure(let error):
                    throw origin.problem(error.description)
                }
            },
            "client_auth": { config, value, origin, _ throws(ConfigDiagnostic) in config.clientAuthentication = try choice(value, origin) },
            "scopes": { config, value, origin, _ throws(ConfigDiagnostic) in
                let scopes = list(value)
                guard !scopes.isEmpty else { throw origin.problem("is empty; the usual value is 'openid profile email'") }
                for scope in scopes where !scope.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
                    throw origin.problem("'\(printable(scope))' is not a valid scope token (RFC 6749 §3.3)")
                }
                config.scopes = scopes
            },
            "ca_file": { config, value, origin, context throws(ConfigDiagnostic) in
                guard !value.isEmpty else { config.caFile = nil; return }
                let file = try absolutePath(value, origin)
                // Whoever can write the trust anchors can forge every answer of the IdP.
                if let problem = context.checkTrustedFile(file) {
                    throw origin.problem("\(problem) (the CA file decides which IdP answers are trusted, so it must be root's like the config)")
                }
                config.caFile = file
            },
            "okta_domain": { config, value, origin, _ throws(ConfigDiagnostic) in config.oktaDomain = try optionalHTTPSURL(value, origin) },
            "username_suffix": { config, value, origin, _ throws(ConfigDiagnostic) in
                guard value.isEmpty || (value.hasPrefix("@") && value.count > 1 && value.dropFirst().allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") })) else {
                    throw origin.problem("'\(printable(value))' must be empty or '@' followed by a domain, like @example.com")
                }
                config.usernameSuffix = value
            },
            "timeout": { config, value, origin, _ throws(ConfigDiagnostic) in config.timeout = try integer(value, origin, 1...120, unit: "seconds") },
            "connect_timeout": { config, value, origin, _ throws(ConfigDiagnostic) in config.connectTimeout = try integer(value, origin, 1...60, unit: "seconds") },
            "ropg_mfa_required": { config, value, origin, _ throws(ConfigDiagnostic) in config.ropgMFARequired = try choice(value, origin) },
            "mfa": { config, value, origin, _ throws(ConfigDiagnostic) in config.mfa = try choice(value, origin) },
            "mfa_method": { config, value, origin, _ throws(ConfigDiagnostic) in config.mfaMethod = try choice(value, origin) },
            "okta_api": { config, value, origin, _ throws(ConfigDiagnostic) in config.oktaAPI = try choice(value, origin) },
            "password_grant": { config, value, origin, _ throws(ConfigDiagnostic) in config.passwordGrant = try yesNo(value, origin) },
            "device_timeout": { config, value, origin, _ throws(ConfigDiagnostic) in config.deviceTimeout = try integer(value, origin, 30...900, unit: "seconds") },
            "qr_code": { config, value, origin, _ throws(ConfigDiagnostic) in config.qrCode = try yesNo(value, origin) },
            "device_authorization_endpoint": { config, value, origin, _ throws(ConfigDiagnostic) in config.deviceAuthorizationEndpoint = try optionalHTTPSURL(value, origin) },
            "id_token_algs": { config, value, origin, _ throws(ConfigDiagnostic) in
                var algorithms: [JWSAlgorithm] = []
                for name in list(value) {
                    guard let algorithm = JWSAlgorithm(rawValue: name) else {
                        throw origin.problem("'\(printable(name))' is not allowed; choose from \(JWSAlgorithm.allCases.map(\.rawValue).joined(separator: " ")) (never none or HS*)")
                    }
                    algorithms.append(algorithm)
                }
                guard !algorithms.isEmpty else { throw origin.problem("is empty; list at least one algorithm, such as RS256") }
                config.idTokenAlgorithms = algorithms
            },
            "clock_skew": { config, value, origin, _ throws(ConfigDiagnostic) in config.clockSkew = try integer(value, origin, 0...300, unit: "seconds") },
            "cache_dir": { config, value, origin, _ throws(ConfigDiagnostic) in config.cacheDirectory = try absolutePath(value, origin) },
            "proxy": { config, value, origin, _ throws(ConfigDiagnostic) in
                guard value.isEmpty || ((value.hasPrefix("http://") || value.hasPrefix("https://")) && value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })) else {
                    throw origin.problem("'\(printable(value))' must be an http:// or https:// proxy URL")
                }
                config.proxy = value.isEmpty ? nil : value
            },
            "proxy_from_environment": { config, value, origin, _ throws(ConfigDiagnostic) in config.proxyFromEnvironment = try yesNo(value, origin) },
        ],
        "users": [
            "name_claim": { config, value, origin, _ throws(ConfigDiagnostic) in config.nameClaim = try word(value, origin) },
            "min_uid": { config, value, origin, _ throws(ConfigDiagnostic) in config.minUID = try integer(value, origin, 1...2_147_483_647, unit: "") },
            "exclude": { config, value, _, _ throws(ConfigDiagnostic) in config.exclude = list(value) },
            "migrate": { config, value, origin, _ throws(ConfigDiagnostic) in config.migrate = try yesNo(value, origin) },
            "migrate_admins": { config, value, _, _ throws(ConfigDiagnostic) in config.migrateAdmins = list(value) },
            "create": { config, value, origin, _ throws(ConfigDiagnostic) in config.create = try yesNo(value, origin) },
            "shell": { config, value, origin, _ throws(ConfigDiagnostic) in config.shell = try absolutePath(value, origin) },
            "allow_groups": { config, value, _, _ throws(ConfigDiagnostic) in config.allowGroups = list(value) },
            "groups_claim": { config, value, origin, _ throws(ConfigDiagnostic) in config.groupsClaim = try word(value, origin) },
            "admin_groups": { config, value, _, _ throws(ConfigDiagnostic) in config.adminGroups = list(value) },
            "admin_local_group": { config, value, origin, _ throws(ConfigDiagnostic) in config.adminLocalGroup = try localGroupName(value, origin) },
            "group_map": { config, value, origin, _ throws(ConfigDiagnostic) in
                var mappings: [GroupMapping] = []
                for pair in value.split(separator: ",").map({ $0.trimmed }) where !pair.isEmpty {
                    guard let colon = pair.lastIndex(of: ":") else {
                        throw origin.problem("'\(printable(pair))' must be idp-group:local-group")
                    }
                    let idpGroup = String(pair[..<colon]).trimmed
                    let localGroup = try localGroupName(String(pair[pair.index(after: colon)...]).trimmed, origin)
                    guard !idpGroup.isEmpty else { throw origin.problem("'\(printable(pair))' has no IdP group before ':'") }
                    mappings.append(GroupMapping(idpGroup: idpGroup, localGroup: localGroup))
                }
                config.groupMap = mappings
            },
            "demote": { config, value, origin, _ throws(ConfigDiagnostic) in config.demote = try yesNo(value, origin) },
            "state_dir": { config, value, origin, _ throws(ConfigDiagnostic) in config.stateDirectory = try absolutePath(value, origin) },
        ],
        "offline": [
            "allow": { config, value, origin, _ throws(ConfigDiagnostic) in config.offlineAllowed = try yesNo(value, origin) },
            "max_days": { config, value, origin, _ throws(ConfigDiagnostic) in config.offlineMaxDays = try integer(value, origin, 0...3650, unit: "days") },
        ],
        "okta": [
            "factor": { config, value, origin, _ throws(ConfigDiagnostic) in config.oktaFactor = try choice(value, origin) },
            "push_timeout": { config, value, origin, _ throws(ConfigDiagnostic) in config.oktaPushTimeout = try integer(value, origin, 5...600, unit: "seconds") },
            "client_id": { config, value, origin, _ throws(ConfigDiagnostic) in config.oktaClientID = value.isEmpty ? nil : try word(value, origin) },
            "redirect_uri": { config, value, origin, _ throws(ConfigDiagnostic) in
                guard value.isEmpty || (value.contains(":") && value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })) else {
                    throw origin.problem("'\(printable(value))' must be the redirect URI registered for the Okta app")
                }
                config.oktaRedirectURI = value.isEmpty ? nil : value
            },
            "authorization_server": { config, value, origin, _ throws(ConfigDiagnostic) in
                guard !value.isEmpty, value.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
                    throw origin.problem("'\(printable(value))' must be an authorization server id such as default or aus1a2b3c")
                }
                config.oktaAuthorizationServer = value
            },
            "scopes": { config, value, origin, _ throws(ConfigDiagnostic) in
                let scopes = list(value)
                guard scopes.contains("openid") else { throw origin.problem("must include openid") }
                config.oktaScopes = scopes
            },
        ],
    ]

    // MARK: - Value parsers

    /// Removes a comment: a line starting with ';' or '#', or ' ;' / ' #' after a value.
    static func stripComment(_ line: Substring) -> Substring {
        let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
        if trimmed.hasPrefix(";") || trimmed.hasPrefix("#") { return "" }
        var previous: Character = "="
        for index in line.indices {
            let character = line[index]
            if (character == ";" || character == "#") && (previous == " " || previous == "\t") {
                return line[..<index]
            }
            previous = character
        }
        return line
    }

    static func choice<T: RawRepresentable & CaseIterable>(_ value: String, _ origin: Origin) throws(ConfigDiagnostic) -> T where T.RawValue == String {
        guard let parsed = T(rawValue: value) else {
            throw origin.problem("'\(printable(value))' is not one of: \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return parsed
    }

    static func yesNo(_ value: String, _ origin: Origin) throws(ConfigDiagnostic) -> Bool {
        switch value.lowercased() {
        case "yes", "true", "1": return true
        case "no", "false", "0": return false
        default: throw origin.problem("'\(printable(value))' must be yes or no")
        }
    }

    static func integer(_ value: String, _ origin: Origin, _ range: ClosedRange<Int>, unit: String) throws(ConfigDiagnostic) -> Int {
        let what = unit.isEmpty ? "a whole number" : "a whole number of \(unit)"
        guard let number = Int(value, radix: 10), range.contains(number) else {
            throw origin.problem("'\(printable(value))' must be \(what) from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    static func httpsURL(_ value: String, _ origin: Origin) throws(ConfigDiagnostic) -> String {
        guard HTTPSURL.isValid(value) else {
            throw origin.problem("'\(printable(value))' must be an https:// URL with a host, no spaces, no user or fragment")
        }
        return value
    }

    static func optionalHTTPSURL(_ value: String, _ origin: Origin) throws(ConfigDiagnostic) -> String? {
        value.isEmpty ? nil : try httpsURL(value, origin)
    }

    static func absolutePath(_ value: String, _ origin: Origin) throws(ConfigDiagnostic) -> String {
        guard value.hasPrefix("/"), !value.contains("\0"), value.utf8.count < 4096 else {
            throw origin.problem("'\(printable(value))' must be an absolute path")
        }
        return value
    }

    static func word(_ value: String, _ origin: Origin) throws(ConfigDiagnostic) -> String {
        guard !value.isEmpty, value.utf8.count <= 256, value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw origin.problem("'\(printable(value))' must be a single word of printable ASCII")
        }
        return value
    }

    static func localGroupName(_ value: String, _ origin: Origin) throws(ConfigDiagnostic) -> String {
        guard LoginName.isValidLocalName(value) else {
            throw origin.problem("'\(printable(value))' is not a valid local group name (^[a-z_][a-z0-9_-]{0,31}$)")
        }
        return value
    }

    /// Splits on commas and white space.
    static func list(_ value: String) -> [String] {
        value.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }).map(String.init)
    }

    /// A value as it may be shown in a message: control characters replaced, length bounded.
    package static func printable<S: StringProtocol>(_ value: S) -> String {
        String(value.prefix(80).map { $0.isASCII && ($0.asciiValue ?? 0) < 0x20 ? "?" : $0 })
    }
}
