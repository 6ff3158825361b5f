import Glibc

/// Where time enters CloudLogin: wall-clock seconds for token validity and offline age, a
/// monotonic clock for timeouts and latency. Tests inject their own.
public protocol Clock: Sendable {
    /// Seconds since the Unix epoch.
    func now() -> Int64
    /// Milliseconds on a clock that never jumps.
    func monotonicMilliseconds() -> Int64
    /// Waits (between polls of a push approval).
    func sleep(milliseconds: Int64)
}

public struct SystemClock: Clock {
    public init() {}

    public func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(truncatingIfNeeded: spec.tv_sec)
    }

    public func monotonicMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(truncatingIfNeeded: spec.tv_sec) &* 1000 &+ Int64(truncatingIfNeeded: spec.tv_nsec) / 1_000_000
    }

    public func sleep(milliseconds: Int64) {
        guard milliseconds > 0 else { return }
        var request = timespec(tv_sec: Int(truncatingIfNeeded: milliseconds / 1000),
                               tv_nsec: Int(truncatingIfNeeded: (milliseconds % 1000) &* 1_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}

/// A point on the monotonic clock by which some work must be done: the IdP exchange
/// (`timeout` in the config), or the whole sign-in (`timeout` plus the local part,
/// `LoginFlow.localUpdateSeconds`), which bounds the state lock and the account tools.
public struct Deadline: Sendable {
    public let clock: any Clock
    public let endMilliseconds: Int64
    /// The sign-in's time spent waiting for the person, shared by all its deadlines: a wait
    /// moves every one of them (the IdP exchange and the local part) later.
    public let personTime: PersonTime?

    public init(clock: any Clock, seconds: Int, personTime: PersonTime? = nil) {
        self.clock = clock
        self.endMilliseconds = clock.monotonicMilliseconds() &+ Int64(truncatingIfNeeded: seconds) &* 1000
        self.personTime = personTime
    }

    /// A deadline `milliseconds` later than this one (time spent waiting for a person, which
    /// the sign-in's deadline does not count).
    public func extended(byMilliseconds milliseconds: Int64) -> Deadline {
        Deadline(clock: clock, endMilliseconds: endMilliseconds &+ max(0, milliseconds), personTime: personTime)
    }

    init(clock: any Clock, endMilliseconds: Int64, personTime: PersonTime? = nil) {
        self.clock = clock
        self.endMilliseconds = endMilliseconds
        self.personTime = personTime
    }

    /// Milliseconds left, never negative.
    public var remainingMilliseconds: Int64 {
        max(0, endMilliseconds &+ (personTime?.milliseconds ?? 0) &- clock.monotonicMilliseconds())
    }

    /// Runs `body`, which waits for the person (a prompt, a push or device approval), and
    /// moves the deadline later by the time it took: through the shared `personTime` when
    /// there is one (every deadline of the sign-in moves), else this one alone.
    public mutating func waitingForPerson<T>(_ body: () -> T) -> T {
        let started = clock.monotonicMilliseconds()
        let result = body()
        let waited = clock.monotonicMilliseconds() &- started
        if let personTime { personTime.add(milliseconds: waited) } else { self = extended(byMilliseconds: waited) }
        return result
    }
}

/// The time one sign-in spent waiting for the person. One per sign-in (`SignInSeams`), read
/// by every deadline built with it; a sign-in runs on one thread.
public final class PersonTime: @unchecked Sendable {
    public private(set) var milliseconds: Int64 = 0

    public init() {}

    func add(milliseconds waited: Int64) {
        milliseconds = milliseconds &+ max(0, waited)
    }
}
