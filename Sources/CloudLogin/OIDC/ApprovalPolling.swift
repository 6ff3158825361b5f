/// Waiting for a person who approves on another device (the device grant, a push through the MFA
/// API) by polling the token endpoint, with RFC 8628 §3.5's rules, which Okta's and Auth0's SDKs
/// follow for pushes too: the IdP's interval between polls, 5 s more for this and every later
/// poll after `slow_down`, at most `limitMilliseconds` from `began` in all. An Enter at a prompt
/// (sshd) says "approved": the first poll is then made even when the time is up, so an approval
/// made in time is seen however late the Enter came.
struct ApprovalPolling {
    /// What one poll came to.
    enum Poll {
        /// Not yet (`authorization_pending`): the same interval again.
        case pending
        /// `slow_down`: 5 s more from now on.
        case slowDown
        /// Approved, refused, or a problem.
        case done(IdentityVerdict)
    }

    /// RFC 8628 §3.5: what `slow_down` adds to the interval.
    static let slowDownMilliseconds: Int64 = 5000
    /// The longest interval CloudLogin waits, whatever the IdP asks.
    static let maximumIntervalMilliseconds: Int64 = 60_000

    let clock: Clock
    /// When the wait began (the monotonic clock), and how long it may last.
    let began: Int64
    let limitMilliseconds: Int64
    let intervalMilliseconds: Int64
    /// The person answered a prompt before the polling starts (sshd).
    let afterPrompt: Bool

    /// Polls until `poll` is done; nil when the time ran out first. The waits between polls
    /// are the person's time (`deadline` moves by them).
    func run(deadline: inout Deadline, poll: (Deadline) -> Poll) -> IdentityVerdict? {
        var interval = min(max(intervalMilliseconds, 1000), Self.maximumIntervalMilliseconds)
        var lastPoll = began
        var answeredPrompt = afterPrompt
        while true {
            let now = clock.monotonicMilliseconds()
            let wait = max(0, lastPoll &+ interval &- now)
            guard answeredPrompt || now &+ wait &- began < limitMilliseconds else { return nil }
            deadline.waitingForPerson { clock.sleep(milliseconds: wait) }
            lastPoll = clock.monotonicMilliseconds()
            answeredPrompt = false
            switch poll(deadline) {
            case .pending: continue
            case .slowDown: interval = min(interval &+ Self.slowDownMilliseconds, Self.maximumIntervalMilliseconds)
            case .done(let verdict): return verdict
            }
        }
    }
}
