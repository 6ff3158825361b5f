import CloudLogin

/// A conversation that answers from a script and records what it was told (prompts as
/// "? PROMPT"). When the script runs out it answers nil, as a user who gives up would.
final class ScriptedConversation: Conversation {
    private(set) var answers: [String]
    private(set) var transcript: [String] = []

    /// False plays sshd, which holds messages until its next prompt.
    var showsMessagesAtOnce = true

    init(answers: [String], showsMessagesAtOnce: Bool = true) {
        self.answers = answers
        self.showsMessagesAtOnce = showsMessagesAtOnce
    }

    func ask(_ prompt: String, secret: Bool) -> SecretBytes? {
        transcript.append("? \(prompt)")
        guard !answers.isEmpty else { return nil }
        return SecretBytes(answers.removeFirst().utf8)
    }

    func tell(_ text: String) -> Bool {
        transcript.append(text)
        return true
    }
}
