/// One answer of Okta's Authentication API (`/api/v1/authn…`): a transaction in some state,
/// with links to follow. Unknown members and unknown factor types are ignored.
public struct OktaTransaction: Equatable, Sendable {
    /// The transaction's state (`status`), as Okta's Authentication API documents them; a state
    /// CloudLogin does not know (one Okta adds later) is `other`, never dropped (`OktaName`).
    public enum Status: OktaName {
        case unauthenticated
        case passwordWarn
        case passwordExpired
        case recovery
        case recoveryChallenge
        case passwordReset
        case lockedOut
        case mfaEnroll
        case mfaEnrollActivate
        case mfaRequired
        case mfaChallenge
        case success
        /// A state CloudLogin does not know, as Okta sent it.
        case other(String)

        public static let known: [Status] = [.unauthenticated, .passwordWarn, .passwordExpired, .recovery, .recoveryChallenge,
                                             .passwordReset, .lockedOut, .mfaEnroll, .mfaEnrollActivate, .mfaRequired,
                                             .mfaChallenge, .success]

        /// Okta's name for the state, e.g. "MFA_REQUIRED", as it was sent.
        public var name: String {
            switch self {
            case .unauthenticated: return "UNAUTHENTICATED"
            case .passwordWarn: return "PASSWORD_WARN"
            case .passwordExpired: return "PASSWORD_EXPIRED"
            case .recovery: return "RECOVERY"
            case .recoveryChallenge: return "RECOVERY_CHALLENGE"
            case .passwordReset: return "PASSWORD_RESET"
            case .lockedOut: return "LOCKED_OUT"
            case .mfaEnroll: return "MFA_ENROLL"
            case .mfaEnrollActivate: return "MFA_ENROLL_ACTIVATE"
            case .mfaRequired: return "MFA_REQUIRED"
            case .mfaChallenge: return "MFA_CHALLENGE"
            case .success: return "SUCCESS"
            case .other(let name): return name
            }
        }
    }

    /// Where a factor challenge stands (`factorResult`); an unknown result is `other`
    /// (`OktaName`).
    public enum FactorResult: OktaName {
        /// A push not answered yet.
        case waiting
        /// A code sent (SMS) and not yet entered.
        case challenge
        case success
        /// The push was refused on the phone.
        case rejected
        case timeout
        case timeWindowExceeded
        case passcodeReplayed
        case cancelled
        case failed
        case error
        /// A result CloudLogin does not know, as Okta sent it.
        case other(String)

        public static let known: [FactorResult] = [.waiting, .challenge, .success, .rejected, .timeout, .timeWindowExceeded,
                                                   .passcodeReplayed, .cancelled, .failed, .error]

        /// Okta's name for the result, e.g. "WAITING", as it was sent.
        public var name: String {
            switch self {
            case .waiting: return "WAITING"
            case .challenge: return "CHALLENGE"
            case .success: return "SUCCESS"
            case .rejected: return "REJECTED"
            case .timeout: return "TIMEOUT"
            case .timeWindowExceeded: return "TIME_WINDOW_EXCEEDED"
            case .passcodeReplayed: return "PASSCODE_REPLAYED"
            case .cancelled: return "CANCELLED"
            case .failed: return "FAILED"
            case .error: return "ERROR"
            case .other(let name): return name
            }
        }
    }

    public var status: Status
    public var stateToken: String?
    public var sessionToken: String?
    /// For a factor challenge: waiting, rejected, timeout, …
    public var factorResult: FactorResult?
    public var user: OktaUser?
    /// The enrolled factors under MFA_REQUIRED (`_embedded.factors`, or `_embedded.factor`
    /// as an array, as the current docs name it).
    public var factors: [OktaFactor]
    /// The factor being challenged (`_embedded.factor` as an object).
    public var challengedFactor: OktaFactor?
    /// The number to pick in Okta Verify, when the push uses number matching.
    public var correctAnswer: Int?
    /// Days until the password expires (PASSWORD_WARN).
    public var passwordExpireDays: Int?
    /// `_links`: name → the first link under it.
    public var links: [String: OktaLink]

    public init?(_ document: JSONValue) {
        guard let status = document["status"]?.stringValue, !status.isEmpty else { return nil }
        self.status = Status(status)
        stateToken = document["stateToken"]?.stringValue
        sessionToken = document["sessionToken"]?.stringValue
        factorResult = document["factorResult"]?.stringValue.map(FactorResult.init)
        let embedded = document["_embedded"]
        user = embedded?["user"].flatMap(OktaUser.init)
        var factors: [OktaFactor] = []
        var challenged: OktaFactor?
        for key in ["factors", "factor"] {
            switch embedded?[key] {
            case .array(let list)?: factors += list.compactMap(OktaFactor.init)
            case .object?: challenged = embedded?[key].flatMap(OktaFactor.init)
            default: break
            }
        }
        self.factors = factors
        challengedFactor = challenged
        correctAnswer = embedded?["factor"]?["_embedded"]?["challenge"]?["correctAnswer"]?.integerValue
            .flatMap { Int(exactly: $0) }
        passwordExpireDays = embedded?["policy"]?["expiration"]?["passwordExpireDays"]?.integerValue
            .flatMap { Int(exactly: $0) }
        links = OktaLink.links(in: document["_links"])
    }
}

/// A link of a transaction (`_links.next`, `_links.cancel`, a factor's `_links.verify`, …).
public struct OktaLink: Equatable, Sendable {
    public var href: String
    /// The link's `name`, e.g. "poll" or "changePassword" for `next`.
    public var name: String?

    /// Every link under `_links`; where Okta sends an array (e.g. `resend`), the first.
    static func links(in value: JSONValue?) -> [String: OktaLink] {
        guard let members = value?.objectValue else { return [:] }
        var links: [String: OktaLink] = [:]
        for (key, member) in members {
            let object = member.arrayValue?.first ?? member
            if let href = object["href"]?.stringValue {
                links[key] = OktaLink(href: href, name: object["name"]?.stringValue)
            }
        }
        return links
    }
}

/// `_embedded.user` of a transaction.
public struct OktaUser: Equatable, Sendable {
    public var id: String
    public var login: String?
    public var firstName: String?
    public var lastName: String?

    init?(_ value: JSONValue) {
        guard let id = value["id"]?.stringValue, !id.isEmpty else { return nil }
        self.id = id
        let profile = value["profile"]
        login = profile?["login"]?.stringValue
        firstName = profile?["firstName"]?.stringValue
        lastName = profile?["lastName"]?.stringValue
    }
}

/// An enrolled factor. Only the kinds CloudLogin can complete on a console have a `kind`.
public struct OktaFactor: Equatable, Sendable {
    public enum Kind: String, Sendable {
        case totp, push, sms
    }

    public var id: String
    public var factorType: String
    public var provider: String?
    public var kind: Kind?
    /// What identifies this factor to its owner: a masked phone number, a device name.
    public var detail: String?
    public var verify: OktaLink?

    init?(_ value: JSONValue) {
        guard let id = value["id"]?.stringValue, let type = value["factorType"]?.stringValue else { return nil }
        self.id = id
        factorType = type
        provider = value["provider"]?.stringValue
        switch type {
        case "token:software:totp": kind = .totp
        case "push" where provider == nil || provider == "OKTA": kind = .push
        case "sms": kind = .sms
        default: kind = nil
        }
        let profile = value["profile"]
        detail = profile?["phoneNumber"]?.stringValue ?? profile?["name"]?.stringValue ?? profile?["credentialId"]?.stringValue
        verify = OktaLink.links(in: value["_links"])["verify"]
    }

    /// What the factor is called: "Okta Verify code", "SMS code", …
    public var name: String {
        switch kind {
        case .totp?: return provider == "GOOGLE" ? "Google Authenticator code" : "Okta Verify code"
        case .push?: return "Okta Verify push"
        case .sms?: return "SMS code"
        case nil: return factorType
        }
    }

    /// How the factor is named in the menu, with what tells two of a kind apart.
    public var label: String {
        guard let detail, !detail.isEmpty else { return name }
        return "\(name) (\(ConfigParser.printable(detail)))"
    }
}
