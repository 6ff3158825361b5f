/// A factor answered with a code typed at the prompt: a code app (Okta Verify or Google
/// Authenticator, TOTP), or SMS, whose first verify sends the text message. A wrong code
/// (E0000068) may be typed again, three tries in all.
struct OktaCodeFactor {
    let client: OktaClient
    let conversation: Conversation

    /// A code app: the code goes to the factor's `verify` link; `name` is the prompt
    /// ("Okta Verify code: ").
    func verifyCodeApp(_ transaction: OktaTransaction, verify: OktaLink, name: String) -> OktaStep {
        askForCode(transaction, url: verify.href, prompt: "\(name): ")
    }

    /// SMS: the factor's `verify` link sends the text message; the code goes to the
    /// challenge's `next` link.
    func verifySMS(_ transaction: OktaTransaction, verify: OktaLink) -> OktaStep {
        switch client.send(verify.href, body: client.stateBody(transaction), stage: .oktaFactor) {
        case .transaction(let challenge):
            guard let next = challenge.links["next"] else {
                client.cancel(challenge)
                return .finished(.problem(.malformed(.oktaFactor, "Okta's SMS challenge has no link to verify the code")))
            }
            return askForCode(challenge, url: next.href, prompt: "SMS code: ")
        case let other:
            return .finished(client.verdict(for: other, transaction: transaction, stage: .oktaFactor))
        }
    }

    /// Asks for a code and posts it to `url`, up to three times for wrong codes (E0000068).
    func askForCode(_ transaction: OktaTransaction, url: String, prompt: String) -> OktaStep {
        for attempt in 1...OktaAuthentication.maximumTries {
            guard let code = client.waitingForPerson({ conversation.ask(prompt, secret: false) }) else {
                client.cancel(transaction)
                return .finished(.rejected(.abandoned))
            }
            defer { code.wipe() }
            var body = JSONBody()
            if let token = transaction.stateToken { body.add("stateToken", token) }
            body.add("passCode", code)
            switch client.send(url, body: body.finish(), stage: .oktaFactor) {
            case .transaction(let next):
                return .continueWith(next)
            case .error(403, let error, _) where error?.code == .invalidPasscode:
                if attempt < OktaAuthentication.maximumTries { conversation.tell("That code is not right; try again.") }
            case let other:
                return .finished(client.verdict(for: other, transaction: transaction, stage: .oktaFactor))
            }
        }
        conversation.tell("Too many wrong codes.")
        client.cancel(transaction)
        return .finished(.rejected(.mfaFailed))
    }
}
