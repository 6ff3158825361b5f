/// Okta's Authentication API as one sign-in talks to it: JSON POSTs to links on the configured
/// Okta origin only, Okta's rate limits waited out, every request within what is left of the
/// sign-in's one deadline, and the transaction cancelled whenever the flow gives it up.
///
/// One client serves one sign-in (`OktaAuthentication.verifyPassword`): it holds that sign-in's
/// deadline and what Okta's last answer said about the rate-limit window.
final class OktaClient {
    /// What one request to Okta came back with.
    enum Answer {
        /// A 200 with a transaction in some state.
        case transaction(OktaTransaction)
        /// An error status: what it means (`IdPClassifier`), and Okta's error body (when it
        /// sent one) for the flow's own retries (a wrong code, a new password Okta refused).
        case error(status: Int, OktaError?, IdentityVerdict)
        /// 429 (a rate limit, not a block): wait until this many milliseconds have passed, then
        /// try again; `problem` when the flow gives up.
        case rateLimited(waitMilliseconds: Int64, IdPProblem)
        /// No usable answer: a transport failure, a link off the Okta origin, a 200 that is
        /// not a transaction.
        case problem(IdPProblem)
    }

    /// `okta_domain` without a trailing slash: every URL the client follows starts with it
    /// and a slash.
    let base: String
    let clock: Clock
    private let transport: HTTPTransport
    private let log: EventLog
    /// The sign-in's one deadline (`timeout`) for everything Okta's steps do — requests,
    /// rate-limit waits, the groups exchange — moved later by the time spent waiting for the
    /// person: typing at a prompt, approving a push (which `push_timeout` bounds).
    private(set) var deadline: Deadline
    /// Set when Okta's last answer said the rate-limit window is used up
    /// (`X-Rate-Limit-Remaining: 0`): milliseconds until `X-Rate-Limit-Reset`.
    private(set) var exhaustedWindowWait: Int64?

    /// A client for one sign-in on `oktaDomain`, within `deadline`.
    init(oktaDomain: String, deadline: Deadline, transport: HTTPTransport, clock: Clock, log: EventLog) {
        var base = oktaDomain
        while base.hasSuffix("/") { base.removeLast() }
        self.base = base
        self.deadline = deadline
        self.transport = transport
        self.clock = clock
        self.log = log
    }

    /// Runs `body`, which waits for the person (a prompt, a push approval), and moves the
    /// sign-in's deadline later by the time it took: the deadline bounds CloudLogin's own work.
    func waitingForPerson<T>(_ body: () -> T) -> T {
        // On a copy: `body` sends requests, which read `deadline` (changing it in place while
        // they run would be an exclusivity violation, a trap).
        var moved = deadline
        let result = moved.waitingForPerson(body)
        deadline = moved
        return result
    }

    // MARK: - Requests

    /// The body that carries only the transaction's `stateToken`.
    func stateBody(_ transaction: OktaTransaction) -> SecretBytes {
        var body = JSONBody()
        if let token = transaction.stateToken { body.add("stateToken", token) }
        return body.finish()
    }

    /// POSTs `body` to the transaction's link named `link`; without such a link, the
    /// transaction is cancelled.
    func follow(_ transaction: OktaTransaction, link: String, body: SecretBytes, stage: IdPProblem.Stage) -> OktaStep {
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
            guard min(wait, 5000) < deadline.remainingMilliseconds else { break }
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
        switch transport.send(request, deadline: deadline) {
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

    /// How long a 429 asks us to wait: Retry-After, else until X-Rate-Limit-Reset (capped),
    /// else one poll interval.
    func rateLimitWait(_ response: HTTPResponse) -> Int64 {
        if let seconds = response.integerHeader("retry-after"), seconds >= 0 {
            return min(seconds, 60) &* 1000
        }
        if let reset = response.integerHeader("x-rate-limit-reset") {
            return min(max(reset &- clock.now(), 1), 60) &* 1000
        }
        return OktaPush.pollIntervalMilliseconds
    }
}
