// "Logged once per burst": a flood of bad payloads must not become a flood of
// log lines. The first rejection of a burst is logged at once; the rest are
// counted and summarised when the burst has been quiet for `quiet`.

/// Decides whether to log an occurrence now, and reports what was suppressed.
public struct BurstLimiter: Sendable {
    public let quiet: Duration
    private var lastSeen: MonotonicInstant?
    public private(set) var suppressed: Int = 0

    public init(quiet: Duration = .seconds(10)) { self.quiet = quiet }

    public enum Decision: Sendable, Equatable {
        /// Log this occurrence. `previouslySuppressed` occurrences of the last burst were not logged.
        case log(previouslySuppressed: Int)
        /// Count it, do not log.
        case suppress
    }

    public mutating func record(now: MonotonicInstant) -> Decision {
        defer { lastSeen = now }
        if let last = lastSeen, now.duration(since: last) < quiet {
            suppressed += 1
            return .suppress
        }
        let before = suppressed
        suppressed = 0
        return .log(previouslySuppressed: before)
    }
}
