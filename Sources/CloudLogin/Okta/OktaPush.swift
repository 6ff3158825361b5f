/// An Okta Verify push: sent, then the transaction polled until the person approves it on the
/// phone, rejects it, Okta says it timed out, or `push_timeout` seconds pass. With number
/// matching, the number to tap is shown when Okta sends it.
struct OktaPush {
    /// Pause between polls of a push approval, well under Okta's 4 requests/second per user.
    static let pollIntervalMilliseconds: Int64 = 2000

    let client: OktaClient
    let conversation: Conversation
    /// `push_timeout`: how long the person has to approve.
    let timeoutSeconds: Int

    /// Sends the push to the factor's `verify` link, then polls the transaction until it is
    /// approved, rejected or times out.
    func verify(_ transaction: OktaTransaction, verify: OktaLink) -> OktaStep {
        var current: OktaTransaction
        switch client.send(verify.href, body: client.stateBody(transaction), stage: .oktaFactor) {
        case .transaction(let challenge): current = challenge
        case let other: return .finished(client.verdict(for: other, transaction: transaction, stage: .oktaFactor))
        }
        let clock = client.clock
        let started = clock.monotonicMilliseconds()
        let limit = Int64(truncatingIfNeeded: timeoutSeconds) &* 1000
        var told = false
        var toldNumber: Int?
        var hasPolled = false
        while true {
            if current.status != .mfaChallenge { return .continueWith(current) }
            switch current.factorResult {
            case .rejected?:
                conversation.tell("The sign-in was rejected on Okta Verify.")
                client.cancel(current)
                return .finished(.rejected(.mfaFailed))
            case .timeout?:
                conversation.tell("The Okta Verify push timed out.")
                client.cancel(current)
                return .finished(.rejected(.mfaTimedOut))
            case .waiting?, .challenge?, .success?, .timeWindowExceeded?, .passcodeReplayed?, .cancelled?, .failed?, .error?, .other?, nil:
                // Not decided on the phone yet, as far as CloudLogin knows: poll on, until
                // `push_timeout` at the latest.
                break
            }
            // Okta sends the number to tap only in poll answers, once the phone shows the
            // three numbers: say it when it comes (once). Where messages wait for a prompt
            // (sshd), the notice is a prompt the person answers with Enter, and it waits for
            // the first poll's answer so that the number can be in it.
            var notice: String?
            if let number = current.correctAnswer, number != toldNumber {
                notice = "Approve the sign-in on Okta Verify: tap \(number) on your phone."
                toldNumber = number
            } else if !told && (conversation.showsMessagesAtOnce || hasPolled) {
                notice = conversation.showsMessagesAtOnce ? "Approve the sign-in on Okta Verify…" : "Approve the sign-in on Okta Verify."
            }
            // An Enter at the notice prompt says "approved": the next poll is made at once, even
            // when `push_timeout` has passed while the prompt waited.
            var answeredPrompt = false
            if let notice {
                told = true
                let shown = client.waitingForPerson { conversation.showWhileWaiting(notice, approval: "approved it on your phone") }
                guard shown else {
                    client.cancel(current)
                    return .finished(.rejected(.abandoned))
                }
                answeredPrompt = !conversation.showsMessagesAtOnce
            }
            guard let poll = current.links["next"] else {
                client.cancel(current)
                return .finished(.problem(.malformed(.oktaFactor, "Okta's push challenge has no link to poll")))
            }
            var wait = answeredPrompt ? 0 : Self.pollIntervalMilliseconds
            var answered = false
            while !answered {
                let elapsed = clock.monotonicMilliseconds() &- started
                guard answeredPrompt || elapsed &+ wait <= limit else {
                    conversation.tell("The push was not approved within \(timeoutSeconds) seconds.")
                    client.cancel(current)
                    return .finished(.rejected(.mfaTimedOut))
                }
                // Okta's headers said the window is used up: wait for its reset first.
                if let windowWait = client.exhaustedWindowWait { wait = max(wait, min(windowWait, 60_000)) }
                // Waiting for the approval (the pause and the poll) is the person's time:
                // `push_timeout` bounds it, not the sign-in's deadline.
                let polled = client.waitingForPerson { () -> OktaClient.Answer in
                    clock.sleep(milliseconds: wait)
                    return client.send(poll.href, body: client.stateBody(current), stage: .oktaFactor)
                }
                switch polled {
                case .transaction(let next):
                    current = next
                    answered = true
                    hasPolled = true
                case .rateLimited(let milliseconds, _):
                    wait = max(milliseconds, Self.pollIntervalMilliseconds)
                    answeredPrompt = false
                case let other:
                    return .finished(client.verdict(for: other, transaction: current, stage: .oktaFactor))
                }
            }
        }
    }
}
