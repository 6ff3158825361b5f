import CloudLogin

/// A conversation that answers from a script and records what it was told (prompts as
/// "? PROMPT"). When the script runs out it answers nil, as a user who gives up would.
final class ScriptedConversation: Conversation {
    private(set) var answers: [String]
    private(set) var transcript: [String] = []

    init(answers: [String]) { self.answers = answers }

    func ask(_ prompt: String, secret: Bool) -> SecretBytes? {
        transcript.append("? \(prompt)")
        guard !answers.isEmpty else { return nil }
        return SecretBytes(answers.removeFirst().utf8)
    }

    func tell(_ text: String) { transcript.append(text) }
}
