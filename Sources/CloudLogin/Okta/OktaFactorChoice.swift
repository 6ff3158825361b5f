/// Which enrolled factor answers Okta's MFA_REQUIRED: the one `factor` names, or with
/// `factor = ask` the person's pick from a numbered menu of the factors that work on a console
/// (Okta Verify or Google Authenticator codes, Okta Verify push, SMS). Other factor types are
/// never offered; a single usable factor is used without asking.
struct OktaFactorChoice {
    /// What the choice came to.
    enum Choice {
        /// Verify `factor`, of `kind`, at its `verify` link.
        case chosen(OktaFactor, OktaFactor.Kind, verify: OktaLink)
        /// No factor: the sign-in ends with this reason (the caller cancels the transaction).
        case noFactor(RejectionReason)
    }

    /// `[okta] factor`.
    let setting: Config.OktaFactor
    /// For the time the person takes to pick, which the sign-in's deadline does not count.
    let client: OktaClient
    let conversation: Conversation

    /// The factor to verify among the transaction's enrolled ones.
    func choose(from transaction: OktaTransaction) -> Choice {
        let usable = transaction.factors.filter { $0.kind != nil && $0.verify != nil }
        let factor: OktaFactor
        switch setting {
        case .ask:
            guard let chosen = askFromMenu(usable) else {
                return .noFactor(usable.isEmpty ? .mfaEnrollmentRequired : .abandoned)
            }
            factor = chosen
        case .push, .totp, .sms:
            let wanted: OktaFactor.Kind = setting == .push ? .push : setting == .totp ? .totp : .sms
            guard let found = usable.first(where: { $0.kind == wanted }) else {
                conversation.tell("Your Okta account has no \(wanted.rawValue) factor enrolled, which this computer requires.")
                return .noFactor(.mfaEnrollmentRequired)
            }
            factor = found
        }
        guard let kind = factor.kind, let verify = factor.verify else { return .noFactor(.mfaEnrollmentRequired) }
        return .chosen(factor, kind, verify: verify)
    }

    /// The numbered menu of usable factors; the only one without asking. Nil when there is
    /// none, or the person gave no valid number in three tries or no answer at all.
    func askFromMenu(_ factors: [OktaFactor]) -> OktaFactor? {
        guard factors.count > 1 else {
            if factors.isEmpty {
                conversation.tell("Your organisation requires MFA, and your Okta account has no factor this computer can use (Okta Verify, a code app or SMS). Enroll one at Okta first.")
            }
            return factors.first
        }
        conversation.tell("Choose how to confirm your sign-in:\n" + factors.enumerated().map { "  \($0.offset + 1). \($0.element.label)" }.joined(separator: "\n"))
        for _ in 0..<OktaAuthentication.maximumTries {
            guard let answer = client.waitingForPerson({ conversation.ask("Factor [1-\(factors.count)]: ", secret: false) }) else { return nil }
            let text = answer.withBytes { String(decoding: $0, as: UTF8.self) }.trimmed
            if let number = Int(text, radix: 10), number >= 1, number <= factors.count {
                return factors[number - 1]
            }
            conversation.tell("Please type a number from 1 to \(factors.count).")
        }
        return nil
    }
}
