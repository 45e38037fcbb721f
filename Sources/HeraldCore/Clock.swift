// Time is injected: timers, cron, breakers, backoff and the sweep read a clock,
// so unit tests advance a manual clock and never sleep.

/// A point on a monotonic timeline, in nanoseconds.
public struct MonotonicInstant: Sendable, Comparable, Hashable {
    public var nanoseconds: UInt64
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static func < (a: Self, b: Self) -> Bool { a.nanoseconds < b.nanoseconds }

    public func advanced(by d: Duration) -> MonotonicInstant {
        let ns = d.nanosecondsClamped
        if ns >= 0 { return MonotonicInstant(nanoseconds: nanoseconds &+ UInt64(ns)) }
        let back = UInt64(-ns)
        return MonotonicInstant(nanoseconds: back > nanoseconds ? 0 : nanoseconds - back)
    }

    public func duration(since earlier: MonotonicInstant) -> Duration {
        if nanoseconds >= earlier.nanoseconds { return .nanoseconds(Int64(nanoseconds - earlier.nanoseconds)) }
        return .nanoseconds(-Int64(earlier.nanoseconds - nanoseconds))
    }
}

/// Reads the time. `now` is monotonic; `wallSeconds` is Unix time for display and cron.
public protocol HeraldClock: Sendable {
    var now: MonotonicInstant { get }
    var wallSeconds: Double { get }
}

/// A clock that moves only when a test says so.
public final class ManualClock: HeraldClock, @unchecked Sendable {
    private var current: MonotonicInstant
    private var wall: Double
    public init(wallSeconds: Double = 1_767_225_600) {
        current = MonotonicInstant(nanoseconds: 1_000_000_000)
        wall = wallSeconds
    }
    public var now: MonotonicInstant { current }
    public var wallSeconds: Double { wall }
    public func advance(by d: Duration) {
        current = current.advanced(by: d)
        wall += d.seconds
    }
}

extension Duration {
    /// Nanoseconds, clamped to Int64.
    public var nanosecondsClamped: Int64 {
        let (s, atto) = components
        let (m, o) = s.multipliedReportingOverflow(by: 1_000_000_000)
        if o { return s < 0 ? .min : .max }
        let (r, o2) = m.addingReportingOverflow(atto / 1_000_000_000)
        return o2 ? (s < 0 ? .min : .max) : r
    }

    /// Seconds as a Double.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }

    /// Milliseconds as a Double.
    public var milliseconds: Double { seconds * 1000 }
}
