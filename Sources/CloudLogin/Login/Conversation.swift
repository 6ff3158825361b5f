/// How a sign-in talks to the person at the keyboard while it runs: the PAM conversation in the
/// module, the terminal in the CLI. Needed when the IdP asks for more than the password (an
/// MFA code, a push approval, a new password).
public protocol Conversation {
    /// Asks a question. `secret` answers are not echoed. Nil when no answer can be had (no
    /// conversation, a non-interactive caller, Ctrl-D): the sign-in is then abandoned at once.
    func ask(_ prompt: String, secret: Bool) -> SecretBytes?
    /// Shows information the user needs to go on (e.g. "Approve the sign-in on Okta Verify").
    func tell(_ text: String)
}

/// A conversation that cannot ask anything; for flows that need only the password.
public struct NoConversation: Conversation {
    public init() {}
    public func ask(_ prompt: String, secret: Bool) -> SecretBytes? { nil }
    public func tell(_ text: String) {}
}

