/// Okta's classic Authentication API (`POST /api/v1/authn`), the flow Mac login windows use
/// with Okta, with MFA factors answered through the conversation (FACTS.md).
///
/// Only the first URL is built here; every later request follows a link of the transaction,
/// and only links on the configured Okta origin are followed. Whenever the flow is abandoned,
/// the transaction is cancelled.
public final class OktaAuthentication: IdentityProvider {
    /// Most transaction steps one sign-in may take (polls of a push are not steps).
    static let maximumSteps = 25
    /// Tries for a code, or for a new password.
    static let maximumTries = 3
    /// Pause between polls of a push approval, well under Okta's 4 requests/second per user.
    static let pollIntervalMilliseconds: Int64 = 2000

    private let config: Config
    private let transport: HTTPTransport
    private let cache: MetadataCache?
    private let clock: Clock
    private let log: EventLog
    private let base: String
    /// Set when Okta's last answer said the rate-limit window is used up
    /// (`X-Rate-Limit-Remaining: 0`): milliseconds until `X-Rate-Limit-Reset`.
    private var exhaustedWindowWait: Int64?
    /// The sign-in's one deadline (`timeout`) for everything Okta's steps do — requests,
    /// rate-limit waits, the groups exchange — moved later by the time spent waiting for the
    /// person: typing at a prompt, approving a push (which `push_timeout` bounds).
    private var deadline: Deadline?

    public init(config: Config, transport: HTTPTransport, cache: MetadataCache? = nil, clock: Clock, log: EventLog) {
        self.config = config
        self.transport = transport
        self.cache = cache
        self.clock = clock
        self.log = log
        var base = config.oktaDomain ?? ""
        while base.hasSuffix("/") { base.removeLast() }
        self.base = base
    }

    /// What one request to Okta came back with.
    enum Answer {
        case transaction(OktaTransaction)
        /// An error status: what it means (`IdPClassifier`), and Okta's error body (when it
        /// sent one) for the flow's own retries (a wrong code, a new password Okta refused).
        case error(status: Int, OktaError?, IdentityVerdict)
        /// 429 (a rate limit, not a block): wait until this many milliseconds have passed, then
        /// try again; `problem` when the flow gives up.
        case rateLimited(waitMilliseconds: Int64, IdPProblem)
        case problem(IdPProblem)
    }

    public func verifyPassword(login: String, password: SecretBytes, conversation: Conversation, deadline: Deadline) -> IdentityVerdict {
        self.deadline = deadline
        var body = JSONBody()
        body.add("username", login)
        body.add("password", password)
        body.addRaw("options", #"{"multiOptionalFactorEnroll":false,"warnBeforePasswordExpired":true}"#)
        let first = send("\(base)/api/v1/authn", body: body.finish(), stage: .oktaAuthn, retryWhenRateLimited: false)
        var transaction: OktaTransaction
        switch first {
        case .transaction(let answer): transaction = answer
        case let other: return verdict(for: other, transaction: nil, stage: .oktaAuthn)
        }

        for _ in 0..<Self.maximumSteps {
            log.debug("Okta transaction state \(transaction.status.name)")
            let next: Step
            switch transaction.status {
            case .success:
                return afterPasswordAccepted(success(transaction, login: login))
            case .mfaRequired:
                next = multiFactor(transaction, conversation: conversation)
            case .passwordWarn:
                if let days = transaction.passwordExpireDays {
                    conversation.tell("Your Okta password expires in \(days) day\(days == 1 ? "" : "s"); change it soon.")
                } else {
                    conversation.tell("Your Okta password expires soon; change it soon.")
                }
                next = follow(transaction, link: "skip", body: stateBody(transaction), stage: .oktaPassword)
            case .passwordExpired:
                next = changePassword(transaction, password: password, conversation: conversation)
            case .mfaEnroll, .mfaEnrollActivate:
                cancel(transaction)
                return .rejected(.mfaEnrollmentRequired)
            case .lockedOut:
                cancel(transaction)
                return .rejected(.lockedOut)
            case .recovery, .recoveryChallenge, .passwordReset:
                cancel(transaction)
                return .rejected(.recoveryInProgress)
            case .unauthenticated, .mfaChallenge, .other:
                // UNAUTHENTICATED, MFA_CHALLENGE outside a factor flow, anything new.
                log.warning("Okta sign-in ended in state \(ConfigParser.printable(transaction.status.name)), which CloudLogin does not handle")
                cancel(transaction)
                return .rejected(.unsupportedState)
            }
            switch next {
            case .continueWith(let answer): transaction = answer
            case .finished(let verdict): return afterPasswordAccepted(verdict)
            }
        }
        cancel(transaction)
        return afterPasswordAccepted(.problem(.malformed(.oktaTransaction, "the Okta sign-in took more than \(Self.maximumSteps) steps")))
    }

    /// Runs `body`, which waits for the person (a prompt, a push approval), and moves the
    /// sign-in's deadline later by the time it took: the deadline bounds CloudLogin's own work.
    func waitingForPerson<T>(_ body: () -> T) -> T {
        let started = clock.monotonicMilliseconds()
        let result = body()
        deadline = deadline?.extended(byMilliseconds: clock.monotonicMilliseconds() &- started)
        return result
    }

    /// The deadline for the next request: what is left of the sign-in's.
    var requestDeadline: Deadline { deadline ?? Deadline(clock: clock, seconds: config.timeout) }

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

    /// Where a step of the flow leads.
    enum Step {
        case continueWith(OktaTransaction)
        case finished(IdentityVerdict)
    }

    // MARK: - States

    func success(_ transaction: OktaTransaction, login: String) -> IdentityVerdict {
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
            switch exchange.claims(sessionToken: sessionToken, deadline: requestDeadline) {
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

    func multiFactor(_ transaction: OktaTransaction, conversation: Conversation) -> Step {
        let usable = transaction.factors.filter { $0.kind != nil && $0.verify != nil }
        let factor: OktaFactor
        switch config.oktaFactor {
        case .ask:
            guard let chosen = chooseFactor(usable, conversation: conversation) else {
                cancel(transaction)
                return .finished(.rejected(usable.isEmpty ? .mfaEnrollmentRequired : .abandoned))
            }
            factor = chosen
        case .push, .totp, .sms:
            let wanted: OktaFactor.Kind = config.oktaFactor == .push ? .push : config.oktaFactor == .totp ? .totp : .sms
            guard let found = usable.first(where: { $0.kind == wanted }) else {
                conversation.tell("Your Okta account has no \(wanted.rawValue) factor enrolled, which this computer requires.")
                cancel(transaction)
                return .finished(.rejected(.mfaEnrollmentRequired))
            }
            factor = found
        }
        guard let verify = factor.verify else {
            cancel(transaction)
            return .finished(.rejected(.mfaEnrollmentRequired))
        }
        switch factor.kind {
        case .totp?:
            return askForCode(transaction, url: verify.href, prompt: "\(factor.name): ", conversation: conversation)
        case .sms?:
            // The first verify sends the text message; the code goes to the challenge's link.
            switch send(verify.href, body: stateBody(transaction), stage: .oktaFactor) {
            case .transaction(let challenge):
                guard let next = challenge.links["next"] else {
                    cancel(challenge)
                    return .finished(.problem(.malformed(.oktaFactor, "Okta's SMS challenge has no link to verify the code")))
                }
                return askForCode(challenge, url: next.href, prompt: "SMS code: ", conversation: conversation)
            case let other:
                return .finished(verdict(for: other, transaction: transaction, stage: .oktaFactor))
            }
        case .push?:
            return push(transaction, url: verify.href, conversation: conversation)
        case nil:
            cancel(transaction)
            return .finished(.rejected(.mfaEnrollmentRequired))
        }
    }

    /// The numbered menu of usable factors; the only one without asking.
    func chooseFactor(_ factors: [OktaFactor], conversation: Conversation) -> OktaFactor? {
        guard factors.count > 1 else {
            if factors.isEmpty {
                conversation.tell("Your organisation requires MFA, and your Okta account has no factor this computer can use (Okta Verify, a code app or SMS). Enroll one at Okta first.")
            }
            return factors.first
        }
        conversation.tell("Choose how to confirm your sign-in:\n" + factors.enumerated().map { "  \($0.offset + 1). \($0.element.label)" }.joined(separator: "\n"))
        for _ in 0..<Self.maximumTries {
            guard let answer = waitingForPerson({ conversation.ask("Factor [1-\(factors.count)]: ", secret: false) }) else { return nil }
            let text = answer.withBytes { String(decoding: $0, as: UTF8.self) }.trimmed
            if let number = Int(text, radix: 10), number >= 1, number <= factors.count {
                return factors[number - 1]
            }
            conversation.tell("Please type a number from 1 to \(factors.count).")
        }
        return nil
    }

    /// Asks for a code and posts it to `url`, up to three times for wrong codes (E0000068).
    func askForCode(_ transaction: OktaTransaction, url: String, prompt: String, conversation: Conversation) -> Step {
        for attempt in 1...Self.maximumTries {
            guard let code = waitingForPerson({ conversation.ask(prompt, secret: false) }) else {
                cancel(transaction)
                return .finished(.rejected(.abandoned))
            }
            defer { code.wipe() }
            var body = JSONBody()
            if let token = transaction.stateToken { body.add("stateToken", token) }
            body.add("passCode", code)
            switch send(url, body: body.finish(), stage: .oktaFactor) {
            case .transaction(let next):
                return .continueWith(next)
            case .error(403, let error, _) where error?.code == .invalidPasscode:
                if attempt < Self.maximumTries { conversation.tell("That code is not right; try again.") }
            case let other:
                return .finished(verdict(for: other, transaction: transaction, stage: .oktaFactor))
            }
        }
        conversation.tell("Too many wrong codes.")
        cancel(transaction)
        return .finished(.rejected(.mfaFailed))
    }

    /// Sends the push, then polls the transaction until it is approved, rejected or times out.
    func push(_ transaction: OktaTransaction, url: String, conversation: Conversation) -> Step {
        var current: OktaTransaction
        switch send(url, body: stateBody(transaction), stage: .oktaFactor) {
        case .transaction(let challenge): current = challenge
        case let other: return .finished(verdict(for: other, transaction: transaction, stage: .oktaFactor))
        }
        let started = clock.monotonicMilliseconds()
        let limit = Int64(truncatingIfNeeded: config.oktaPushTimeout) &* 1000
        var told = false
        var toldNumber: Int?
        while true {
            if current.status != .mfaChallenge { return .continueWith(current) }
            // Okta sends the number to tap only in poll answers, once the phone shows the
            // three numbers: say it when it comes (once).
            if let number = current.correctAnswer, number != toldNumber {
                conversation.tell("Approve the sign-in on Okta Verify: tap \(number) on your phone.")
                toldNumber = number
                told = true
            } else if !told {
                conversation.tell("Approve the sign-in on Okta Verify…")
                told = true
            }
            switch current.factorResult {
            case .rejected?:
                conversation.tell("The sign-in was rejected on Okta Verify.")
                cancel(current)
                return .finished(.rejected(.mfaFailed))
            case .timeout?:
                conversation.tell("The Okta Verify push timed out.")
                cancel(current)
                return .finished(.rejected(.mfaTimedOut))
            case .waiting?, .challenge?, .success?, .timeWindowExceeded?, .passcodeReplayed?, .cancelled?, .failed?, .error?, .other?, nil:
                // Not decided on the phone yet, as far as CloudLogin knows: poll on, until
                // `push_timeout` at the latest.
                break
            }
            guard let poll = current.links["next"] else {
                cancel(current)
                return .finished(.problem(.malformed(.oktaFactor, "Okta's push challenge has no link to poll")))
            }
            var wait = Self.pollIntervalMilliseconds
            var answered = false
            while !answered {
                let elapsed = clock.monotonicMilliseconds() &- started
                guard elapsed &+ wait <= limit else {
                    conversation.tell("The push was not approved within \(config.oktaPushTimeout) seconds.")
                    cancel(current)
                    return .finished(.rejected(.mfaTimedOut))
                }
                // Okta's headers said the window is used up: wait for its reset first.
                if let windowWait = exhaustedWindowWait { wait = max(wait, min(windowWait, 60_000)) }
                // Waiting for the approval (the pause and the poll) is the person's time:
                // `push_timeout` bounds it, not the sign-in's deadline.
                let polled = waitingForPerson { () -> Answer in
                    clock.sleep(milliseconds: wait)
                    return send(poll.href, body: stateBody(current), stage: .oktaFactor)
                }
                switch polled {
                case .transaction(let next):
                    current = next
                    answered = true
                case .rateLimited(let milliseconds, _):
                    wait = max(milliseconds, Self.pollIntervalMilliseconds)
                case let other:
                    return .finished(verdict(for: other, transaction: current, stage: .oktaFactor))
                }
            }
        }
    }

    func changePassword(_ transaction: OktaTransaction, password: SecretBytes, conversation: Conversation) -> Step {
        guard let change = transaction.links["next"] else {
            cancel(transaction)
            return .finished(.problem(.malformed(.oktaPassword, "Okta's PASSWORD_EXPIRED has no link to change the password")))
        }
        conversation.tell("Your Okta password has expired. Choose a new one.")
        for _ in 0..<Self.maximumTries {
            guard let first = waitingForPerson({ conversation.ask("New password: ", secret: true) }),
                  let second = waitingForPerson({ conversation.ask("Repeat the new password: ", secret: true) }) else {
                cancel(transaction)
                return .finished(.rejected(.abandoned))
            }
            defer { first.wipe(); second.wipe() }
            guard !first.isEmpty, first.constantTimeEquals(second) else {
                conversation.tell(first.isEmpty ? "The new password cannot be empty." : "The passwords do not match.")
                continue
            }
            var body = JSONBody()
            if let token = transaction.stateToken { body.add("stateToken", token) }
            body.add("oldPassword", password)
            body.add("newPassword", first)
            switch send(change.href, body: body.finish(), stage: .oktaPassword) {
            case .transaction(let next):
                // The local account is synced to the new password.
                password.wipe()
                password.append(first)
                conversation.tell("Your Okta password was changed.")
                return .continueWith(next)
            case .error(403, let error?, _) where [.passwordPolicyNotMet, .credentialsUpdateFailed, .apiValidationFailed].contains(error.code):
                let why = error.causes.isEmpty ? error.summary : error.causes.joined(separator: " ")
                conversation.tell("Okta did not accept the new password: \(ConfigParser.printable(why)).")
            case let other:
                return .finished(verdict(for: other, transaction: transaction, stage: .oktaPassword))
            }
        }
        cancel(transaction)
        return .finished(.rejected(.passwordChangeFailed))
    }

    // MARK: - Requests

    func stateBody(_ transaction: OktaTransaction) -> SecretBytes {
        var body = JSONBody()
        if let token = transaction.stateToken { body.add("stateToken", token) }
        return body.finish()
    }

    func follow(_ transaction: OktaTransaction, link: String, body: SecretBytes, stage: IdPProblem.Stage) -> Step {
        guard let target = transaction.links[link] else {
            cancel(transaction)
            return .finished(.problem(.malformed(stage, "Okta's \(ConfigParser.printable(transaction.status.name)) has no '\(link)' link")))
        }
        switch send(target.href, body: body, stage: stage) {
        case .transaction(let next): return .continueWith(next)
        case let other: return .finished(verdict(for: other, transaction: transaction, stage: stage))
        }
    }

    /// Cancels the transaction (best effort): whenever a flow is abandoned.
    func cancel(_ transaction: OktaTransaction) {
        guard transaction.stateToken != nil else { return }
        let url = transaction.links["cancel"]?.href ?? "\(base)/api/v1/authn/cancel"
        _ = send(url, body: stateBody(transaction), stage: .oktaTransaction)
        log.info("cancelled the Okta sign-in transaction (\(ConfigParser.printable(transaction.status.name)))")
    }

    /// The verdict for an answer that is not the transaction the flow expected. A transaction
    /// the flow gives up on is cancelled, unless Okta cannot answer now or the transaction is
    /// over already.
    func verdict(for answer: Answer, transaction: OktaTransaction?, stage: IdPProblem.Stage) -> IdentityVerdict {
        let verdict: IdentityVerdict
        switch answer {
        case .transaction(let unexpected):
            verdict = .problem(.malformed(stage, "Okta answered an unexpected \(ConfigParser.printable(unexpected.status.name))"))
        case .error(let status, let error, let classified):
            verdict = classified
            if classified == .rejected(.unrecognizedRefusal) || classified == .rejected(.unsupportedState) {
                log.warning("Okta answered HTTP \(status)\(error.map { " " + ConfigParser.printable($0.code.name) } ?? "") to \(stage.rawValue), which CloudLogin does not know; treated as a refusal")
            }
        case .rateLimited(_, let problem), .problem(let problem):
            verdict = .problem(problem)
        }
        switch verdict {
        case .problem(let problem) where problem.kind == .unavailable: break
        case .rejected(.transactionExpired), .rejected(.badCredentials): break
        default: if let transaction { cancel(transaction) }
        }
        return verdict
    }

    /// POSTs `body` (JSON) to `url`, which must be on the configured Okta origin. Within a
    /// transaction, a 429 is waited out (as Okta's headers say, at most 5 s, twice); on the
    /// first request it means the IdP is unavailable.
    func send(_ url: String, body: SecretBytes, stage: IdPProblem.Stage, retryWhenRateLimited: Bool = true) -> Answer {
        defer { body.wipe() }
        var answer = sendOnce(url, body: body, stage: stage)
        var retries = 0
        while retryWhenRateLimited, retries < 2, case .rateLimited(let wait, _) = answer {
            // A wait past the sign-in's deadline is not worth it: the request would time out.
            guard min(wait, 5000) < requestDeadline.remainingMilliseconds else { break }
            clock.sleep(milliseconds: min(wait, 5000))
            answer = sendOnce(url, body: body, stage: stage)
            retries += 1
        }
        return answer
    }

    private func sendOnce(_ url: String, body: SecretBytes, stage: IdPProblem.Stage) -> Answer {
        guard url.hasPrefix(base + "/"), HTTPSURL.isValid(url) else {
            log.error("Okta sent a link outside \(base); not following it")
            return .problem(.malformed(stage, "Okta sent a link outside okta_domain"))
        }
        let request = HTTPRequest(method: .post, url: url,
                                  headers: ["Accept: application/json", "Content-Type: application/json"], body: body)
        let response: HTTPResponse
        switch transport.send(request, deadline: requestDeadline) {
        case .failure(let error): return .problem(IdPClassifier.problem(error, stage: stage))
        case .success(let answer): response = answer
        }
        defer { response.body.wipe() }
        if response.integerHeader("x-rate-limit-remaining") == 0, let reset = response.integerHeader("x-rate-limit-reset") {
            exhaustedWindowWait = max(reset &- clock.now(), 1) &* 1000
        } else {
            exhaustedWindowWait = nil
        }
        let document = JSONValue.parse(response.body)
        switch response.status {
        case 200:
            guard let document, let transaction = OktaTransaction(document) else {
                return .problem(.malformed(stage, "Okta answered 200 with something that is not a transaction"))
            }
            return .transaction(transaction)
        default:
            let answer = IdPErrorAnswer(status: response.status, document: document, bodyIsEmpty: response.body.isEmpty)
            let verdict = IdPClassifier.verdict(for: answer, stage: stage)
            if response.status == 429, case .problem(let problem) = verdict {
                return .rateLimited(waitMilliseconds: rateLimitWait(response), problem)
            }
            return .error(status: response.status, OktaError(document), verdict)
        }
    }

    /// How long a 429 asks us to wait: Retry-After, else until X-Rate-Limit-Reset (capped).
    func rateLimitWait(_ response: HTTPResponse) -> Int64 {
        if let seconds = response.integerHeader("retry-after"), seconds >= 0 {
            return min(seconds, 60) &* 1000
        }
        if let reset = response.integerHeader("x-rate-limit-reset") {
            return min(max(reset &- clock.now(), 1), 60) &* 1000
        }
        return Self.pollIntervalMilliseconds
    }
}
