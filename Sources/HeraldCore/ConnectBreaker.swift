// The reconnect policy and circuit breaker of one server (PostgreSQL, Redis), as pure state
// with an injected clock; HeraldIO's ConnectGate holds one per server behind a lock. After a
// failed connect the next attempt waits out a backoff (100 ms doubling to 5 s, with jitter):
// callers meanwhile are refused without an attempt. After `openAfter` failed connects in a row
// the breaker is open; once the backoff has passed it is half-open (the next connect is the
// probe); a success closes it.

public struct ConnectBreaker: Sendable {
    /// Failed connects in a row after which the breaker is open.
    public let openAfter: Int
    private var backoff: Backoff
    private var notBefore: MonotonicInstant?
    private var opened = false
    public private(set) var consecutiveFailures = 0
    /// The last connect failure.
    public private(set) var lastFailure: String?
    /// Connection attempts made, failed, and refused without an attempt.
    public private(set) var attempts = 0
    public private(set) var failures = 0
    public private(set) var refused = 0

    public init(openAfter: Int = 3, backoff: Backoff = Backoff(base: .milliseconds(100), cap: .seconds(5))) {
        self.openAfter = max(1, openAfter)
        self.backoff = backoff
    }

    /// Whether a connect may be attempted now; nil when it may (and it is counted as an
    /// attempt), else how long until the next may.
    public mutating func admit(now: MonotonicInstant) -> Duration? {
        if let nb = notBefore, now < nb {
            refused += 1
            return nb.duration(since: now)
        }
        attempts += 1
        return nil
    }

    /// Records a connect's outcome (one `admit` let through, or one made elsewhere); returns the
    /// transition worth a log line, if any.
    public mutating func record(
        success: Bool, failure: String? = nil, now: MonotonicInstant
    )
        -> CircuitBreaker.Transition?
    {
        if success {
            let wasOpen = opened
            backoff.reset()
            notBefore = nil
            consecutiveFailures = 0
            opened = false
            lastFailure = nil
            return wasOpen ? .closed : nil
        }
        failures += 1
        consecutiveFailures += 1
        lastFailure = failure ?? "connect failed"
        notBefore = now.advanced(by: backoff.next())
        guard !opened, consecutiveFailures >= openAfter else { return nil }
        opened = true
        return .opened(afterFailures: consecutiveFailures)
    }

    /// The breaker's state at `now`.
    public func state(now: MonotonicInstant) -> CircuitState {
        guard opened else { return .closed }
        if let nb = notBefore, now < nb { return .open }
        return .halfOpen
    }
}
