/// How a sign-in talks to the person at the keyboard while it runs: the PAM conversation in the
/// module, the terminal in the CLI. Needed when the IdP asks for more than the password (an
/// MFA code, a push approval, a device approval, a new password).
public protocol Conversation {
    /// Asks a question. `secret` answers are not echoed. Nil when no answer can be had (no
    /// conversation, a non-interactive caller, Ctrl-D): the sign-in is then abandoned at once.
    func ask(_ prompt: String, secret: Bool) -> SecretBytes?
    /// Shows information the user needs to go on (e.g. "Approve the sign-in on Okta Verify").
    /// False when it could not be shown (no conversation, or the application's failed).
    @discardableResult
    func tell(_ text: String) -> Bool
    /// Whether what `tell` shows reaches the person at once. False in sshd, which holds PAM
    /// messages until its next prompt (OpenSSH bug 2876): there, what the person must see
    /// while CloudLogin waits is put into a prompt (`showWhileWaiting`).
    var showsMessagesAtOnce: Bool { get }
}

extension Conversation {
    public var showsMessagesAtOnce: Bool { true }

    /// Shows `text`, which the person needs while CloudLogin waits for them (a push to
    /// approve, a device code to enter): as a message where messages are shown at once, else
    /// as the text of a prompt that ends with "Press Enter once you have approved …", answered
    /// before CloudLogin starts to wait. False when the person cannot see it or cancelled
    /// (Ctrl-D at that prompt): the step ends at once.
    public func showWhileWaiting(_ text: String, approval: String) -> Bool {
        if showsMessagesAtOnce { return tell(text) }
        guard let answer = ask("\(text)\nPress Enter once you have \(approval): ", secret: false) else { return false }
        answer.wipe()
        return true
    }
}

/// A conversation that cannot ask anything; for flows that need only the password.
public struct NoConversation: Conversation {
    public init() {}
    public func ask(_ prompt: String, secret: Bool) -> SecretBytes? { nil }
    public func tell(_ text: String) -> Bool { false }
}
