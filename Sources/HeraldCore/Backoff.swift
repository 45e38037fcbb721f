// Reconnect delays: exponential growth with jitter, so that a fleet of Herald
// instances does not hammer a recovering Redis or PostgreSQL in lock step.

/// Exponential backoff with "equal jitter" (default: 100 ms doubling to 5 s, so a server that
/// comes back is used again within seconds): attempt n waits a random time in
/// [d/2, d], where d = min(cap, base * 2^n). Reset after a success.
public struct Backoff: Sendable {
    public let base: Duration
    public let cap: Duration
    public private(set) var attempt: Int = 0
    private var random: @Sendable (ClosedRange<Double>) -> Double

    public init(
        base: Duration = .milliseconds(100),
        cap: Duration = .seconds(5),
        random: @escaping @Sendable (ClosedRange<Double>) -> Double = { Double.random(in: $0) }
    ) {
        self.base = base
        self.cap = cap
        self.random = random
    }

    /// The ceiling of the next delay, without jitter.
    public var nextCeiling: Duration {
        let factor = attempt >= 30 ? Double(1 << 30) : Double(1 << attempt)
        let d = min(base.seconds * factor, cap.seconds)
        return .nanoseconds(Int64(d * 1e9))
    }

    /// The next delay; advances the attempt counter.
    public mutating func next() -> Duration {
        let ceiling = nextCeiling.seconds
        attempt += 1
        let s = random((ceiling / 2)...ceiling)
        return .nanoseconds(Int64(s * 1e9))
    }

    public mutating func reset() { attempt = 0 }
}
