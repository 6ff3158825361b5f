/// Okta's classic Authentication API (`POST /api/v1/authn`), the flow Mac login windows use
/// with Okta, with MFA factors answered through the conversation (docs/facts.md, "Okta's
/// Authentication API").
///
/// This type is the transaction's state machine: it sends the password, then moves from state
/// to state until Okta says SUCCESS or the sign-in ends. The requests, the link checks and
/// cancelling are `OktaClient`'s; the factors are `OktaFactorChoice`, `OktaCodeFactor` and
/// `OktaPush`; an expired password is `OktaPasswordChange`. Only the first URL is built here;
/// every later request follows a link of the transaction, and only links on the configured
/// Okta origin are followed. Whenever the flow is abandoned, the transaction is cancelled.
public final class OktaAuthentication: IdentityProvider {
    /// Most transaction steps one sign-in may take (polls of a push are not steps).
    static let maximumSteps = 25
    /// Tries for a code, a factor's number in the menu, or a new password.
    static let maximumTries = 3

    private let config: Config
    private let transport: HTTPTransport
    private let cache: MetadataCache?
    private let clock: Clock
    private let log: EventLog

    public init(config: Config, transport: HTTPTransport, cache: MetadataCache? = nil, clock: Clock, log: EventLog) {
        self.config = config
        self.transport = transport
        self.cache = cache
        self.clock = clock
        self.log = log
    }

    /// Signs in with one deadline for every step Okta's part takes (see `OktaClient.deadline`).
    public func verifyPassword(login: String, password: SecretBytes, conversation: Conversation, deadline: Deadline) -> IdentityVerdict {
        let client = OktaClient(oktaDomain: config.oktaDomain ?? "", deadline: deadline, transport: transport, clock: clock, log: log)
        var body = JSONBody()
        body.add("username", login)
        body.add("password", password)
        body.addRaw("options", #"{"multiOptionalFactorEnroll":false,"warnBeforePasswordExpired":true}"#)
        let first = client.send("\(client.base)/api/v1/authn", body: body.finish(), stage: .oktaAuthn, retryWhenRateLimited: false)
        var transaction: OktaTransaction
        switch first {
        case .transaction(let answer): transaction = answer
        case let other: return client.verdict(for: other, transaction: nil, stage: .oktaAuthn)
        }

        for _ in 0..<Self.maximumSteps {
            log.debug("Okta transaction state \(transaction.status.name)")
            let next: OktaStep
            switch transaction.status {
            case .success:
                return afterPasswordAccepted(success(transaction, login: login, client: client))
            case .mfaRequired:
                next = multiFactor(transaction, client: client, conversation: conversation)
            case .passwordWarn:
                if let days = transaction.passwordExpireDays {
                    conversation.tell("Your Okta password expires in \(days) day\(days == 1 ? "" : "s"); change it soon.")
                } else {
                    conversation.tell("Your Okta password expires soon; change it soon.")
                }
                next = client.follow(transaction, link: "skip", body: client.stateBody(transaction), stage: .oktaPassword)
            case .passwordExpired:
                next = OktaPasswordChange(client: client, conversation: conversation).change(transaction, password: password)
            case .mfaEnroll, .mfaEnrollActivate:
                client.cancel(transaction)
                return .rejected(.mfaEnrollmentRequired)
            case .lockedOut:
                client.cancel(transaction)
                return .rejected(.lockedOut)
            case .recovery, .recoveryChallenge, .passwordReset:
                client.cancel(transaction)
                return .rejected(.recoveryInProgress)
            case .unauthenticated, .mfaChallenge, .other:
                // UNAUTHENTICATED, MFA_CHALLENGE outside a factor flow, anything new.
                log.warning("Okta sign-in ended in state \(ConfigParser.printable(transaction.status.name)), which CloudLogin does not handle")
                client.cancel(transaction)
                return .rejected(.unsupportedState)
            }
            switch next {
            case .continueWith(let answer): transaction = answer
            case .finished(let verdict): return afterPasswordAccepted(verdict)
            }
        }
        client.cancel(transaction)
        return afterPasswordAccepted(.problem(.malformed(.oktaTransaction, "the Okta sign-in took more than \(Self.maximumSteps) steps")))
    }

    /// Once Okta has answered the password with a transaction, only an outage (transport,
    /// 408, 429, 5xx) may lead to the offline rule: any other failure — a 4xx to a factor or a
    /// password change, an unexpected or broken answer — is a refusal. Otherwise someone with
    /// the password but not the second factor could end the MFA step with an error and be let
    /// in by pam_unix.
    func afterPasswordAccepted(_ verdict: IdentityVerdict) -> IdentityVerdict {
        guard case .problem(let problem) = verdict, problem.kind == .misconfigured else { return verdict }
        log.error("the Okta sign-in failed after the password was accepted: \(problem)")
        return .rejected(.unsupportedState)
    }

    // MARK: - States

    /// SUCCESS: the identity Okta names, with the groups of a verified ID token of the same
    /// user when `[okta] client_id` is set (`OktaGroupsExchange`).
    func success(_ transaction: OktaTransaction, login: String, client: OktaClient) -> IdentityVerdict {
        guard let user = transaction.user else {
            return .problem(.malformed(.oktaTransaction, "Okta answered SUCCESS without the user"))
        }
        var claims: [String: JSONValue] = ["sub": .string(user.id)]
        if let userLogin = user.login { claims["preferred_username"] = .string(userLogin); claims["login"] = .string(userLogin) }
        if let first = user.firstName { claims["given_name"] = .string(first) }
        if let last = user.lastName { claims["family_name"] = .string(last) }
        let name = [user.firstName, user.lastName].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
        if !name.isEmpty { claims["name"] = .string(name) }
        var identity = Identity(subject: user.id, idpLogin: login, claims: claims)
        // Groups come only from a verified ID token of the same user; without one, group
        // mapping is off for this sign-in.
        identity.groupsKnown = false
        if config.oktaClientID != nil, let sessionToken = transaction.sessionToken {
            let exchange = OktaGroupsExchange(config: config, transport: transport, cache: cache, clock: clock, log: log)
            switch exchange.claims(sessionToken: sessionToken, deadline: client.deadline) {
            case .success(let tokenClaims) where tokenClaims["sub"]?.stringValue == user.id:
                identity.claims[config.groupsClaim] = tokenClaims[config.groupsClaim] ?? .array([])
                identity.groupsKnown = true
            case .success:
                log.error("Okta's ID token names another user than the sign-in; groups ignored")
            case .failure(let problem):
                log.warning("cannot read the groups from Okta: \(problem); group mapping skipped for this sign-in")
            }
        }
        return .accepted(identity)
    }

    /// MFA_REQUIRED: the factor `factor` (or the person) picks, verified its own way.
    func multiFactor(_ transaction: OktaTransaction, client: OktaClient, conversation: Conversation) -> OktaStep {
        let choice = OktaFactorChoice(setting: config.oktaFactor, client: client, conversation: conversation)
        switch choice.choose(from: transaction) {
        case .noFactor(let reason):
            client.cancel(transaction)
            return .finished(.rejected(reason))
        case .chosen(let factor, .totp, let verify):
            return OktaCodeFactor(client: client, conversation: conversation).verifyCodeApp(transaction, verify: verify, name: factor.name)
        case .chosen(_, .sms, let verify):
            return OktaCodeFactor(client: client, conversation: conversation).verifySMS(transaction, verify: verify)
        case .chosen(_, .push, let verify):
            return OktaPush(client: client, conversation: conversation, timeoutSeconds: config.oktaPushTimeout).verify(transaction, verify: verify)
        }
    }
}

/// Where a step of the Okta flow leads: on to the transaction Okta answered, or to the end of
/// the sign-in.
enum OktaStep {
    /// Okta's next state of the transaction, for the state machine to handle.
    case continueWith(OktaTransaction)
    /// The sign-in's end (the transaction cancelled already where that was due).
    case finished(IdentityVerdict)
}
