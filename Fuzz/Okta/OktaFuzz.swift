// libFuzzer target: Okta's Authentication API answers. The input is a sequence of answers
// (separated by a 0xFF byte; the first byte of each picks its HTTP status) that an in-memory
// Okta plays back to the whole OktaAuthentication flow, with a conversation that answers every
// question. Whatever the answers, the flow must end (no hang, no trap), follow no link outside
// the Okta domain, and accept only on a SUCCESS transaction with a user.
import CloudLogin
import FuzzDriver
import FuzzSupport
import Glibc

private let statuses = [200, 200, 200, 200, 200, 200, 401, 403, 429, 500, 400, 404, 200, 200, 200, 200]
private let base = "https://example.okta.com"

/// Plays back the answers in order, then refuses to connect.
private final class PlaybackTransport: HTTPTransport {
    var answers: [(Int, [UInt8])]
    init(_ answers: [(Int, [UInt8])]) { self.answers = answers }

    func send(_ request: HTTPRequest, deadline: Deadline) -> Result<HTTPResponse, TransportError> {
        if !request.url.hasPrefix(base + "/") { abort() } // a link outside okta_domain was followed
        guard !answers.isEmpty else { return .failure(.connect("no more answers")) }
        let (status, body) = answers.removeFirst()
        return .success(HTTPResponse(status: status, body: SecretBytes(body)))
    }
}

private struct AnsweringConversation: Conversation {
    func ask(_ prompt: String, secret: Bool) -> SecretBytes? { SecretBytes("1".utf8) }
    func tell(_ text: String) -> Bool { true }
}

@_cdecl("fuzz_okta_main")
public func fuzzOktaMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    FuzzDriver_run(argc, argv, { data, size in fuzzOkta(data, size) })
}

public func fuzzOkta(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var answers: [(Int, [UInt8])] = []
    for chunk in bytes.split(separator: 0xFF, omittingEmptySubsequences: false).prefix(40) {
        guard let first = chunk.first else { continue }
        answers.append((statuses[Int(first & 0x0F)], Array(chunk.dropFirst())))
    }
    if let value = answers.first.flatMap({ JSONValue.parse(SecretBytes($0.1)) }) {
        _ = OktaTransaction(value)
    }
    var config = Config()
    config.provider = .okta
    config.oktaDomain = base
    config.oktaPushTimeout = 5
    let flow = OktaAuthentication(config: config, transport: PlaybackTransport(answers), clock: FixtureClock(), log: SilentLog())
    let verdict = flow.verifyPassword(login: "dade@example.com", password: SecretBytes("pw".utf8),
                                      conversation: AnsweringConversation(), deadline: Deadline(clock: FixtureClock(), seconds: 10))
    if case .accepted(let identity) = verdict, identity.subject.isEmpty { abort() }
    return 0
}
