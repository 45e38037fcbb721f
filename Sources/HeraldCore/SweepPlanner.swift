// When the fallback sweep runs. Events are hints; the sweep is the safety net.
// Its interval adapts to the health of the event sources: the configured
// interval while all are up, one second while any is down, and one sweep at
// once after each reconnect (anything sent during the gap was lost).

/// Decides when to sweep. Pure: the caller supplies the time and arms a timer.
public struct SweepPlanner: Sendable {
    public let healthyInterval: Duration
    public let degradedInterval: Duration
    public private(set) var down: Set<String> = []
    public private(set) var lastSweep: MonotonicInstant?
    public private(set) var pendingReason: SweepReason?
    private var nextDue: MonotonicInstant

    public init(healthyInterval: Duration, degradedInterval: Duration = .seconds(1), start: MonotonicInstant) {
        self.healthyInterval = healthyInterval
        self.degradedInterval = degradedInterval
        self.nextDue = start
        self.pendingReason = .startup
    }

    /// The interval in force now.
    public var interval: Duration { down.isEmpty ? healthyInterval : degradedInterval }

    /// Every source is up.
    public var allUp: Bool { down.isEmpty }

    /// A source changed state. Going down shortens the interval; coming back
    /// up asks for an immediate sweep.
    public mutating func sourceChanged(_ source: String, up: Bool, now: MonotonicInstant) {
        if up {
            let wasDown = down.remove(source) != nil
            if wasDown {
                pendingReason = .reconnect
                nextDue = now
            }
        } else {
            down.insert(source)
            let candidate = (lastSweep ?? now).advanced(by: degradedInterval)
            if candidate < nextDue { nextDue = max(candidate, now) }
        }
    }

    /// When the next sweep is due.
    public var due: MonotonicInstant { nextDue }

    /// The reason for a sweep run at `now`, or nil when none is due yet.
    public func reasonIfDue(now: MonotonicInstant) -> SweepReason? {
        guard now >= nextDue else { return nil }
        return pendingReason ?? .interval
    }

    /// Record that a sweep ran at `now`; schedules the next one.
    public mutating func didSweep(at now: MonotonicInstant) {
        lastSweep = now
        pendingReason = nil
        nextDue = now.advanced(by: interval)
    }
}
