/// PASSWORD_EXPIRED: the new password is asked for twice and changed at Okta, three tries in
/// all; once Okta takes it, it is the password the local account is synced to.
struct OktaPasswordChange {
    let client: OktaClient
    let conversation: Conversation

    /// Changes the password through the transaction's `next` link. `password` (the old one)
    /// becomes the new one when Okta accepts it.
    func change(_ transaction: OktaTransaction, password: SecretBytes) -> OktaStep {
        guard let change = transaction.links["next"] else {
            client.cancel(transaction)
            return .finished(.problem(.malformed(.oktaPassword, "Okta's PASSWORD_EXPIRED has no link to change the password")))
        }
        conversation.tell("Your Okta password has expired. Choose a new one.")
        for _ in 0..<OktaAuthentication.maximumTries {
            guard let first = client.waitingForPerson({ conversation.ask("New password: ", secret: true) }),
                  let second = client.waitingForPerson({ conversation.ask("Repeat the new password: ", secret: true) }) else {
                client.cancel(transaction)
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
            switch client.send(change.href, body: body.finish(), stage: .oktaPassword) {
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
                return .finished(client.verdict(for: other, transaction: transaction, stage: .oktaPassword))
            }
        }
        client.cancel(transaction)
        return .finished(.rejected(.passwordChangeFailed))
    }
}
