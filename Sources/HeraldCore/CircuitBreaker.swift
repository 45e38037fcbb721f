// A circuit breaker for one outside dependency (the billing API, the mail transport, …):
// closed while calls succeed; open after `failureThreshold` failures in a row, when calls are
// refused at once (the work that needs them is deferred by its caller: a retention batch keeps
// its tenants, a mail stays unsent for the next run) instead of waiting for timeouts again and
// again; half-open after `openFor`, when one probe call is let through: its success closes the
// breaker, its failure opens it for another `openFor`. Pure state with an injected clock.

/// The state of a breaker: `herald_circuit_state` exports it as 0, 1, 2.
public enum CircuitState: String, Sendable, Equatable, CaseIterable {
    case closed, halfOpen = "half_open", open

    /// The metric's value.
    public var gaugeValue: Double {
        switch self {
        case .closed: return 0
        case .halfOpen: return 1
        case .open: return 2
        }
    }
}

/// One dependency's breaker.
public struct CircuitBreaker: Sendable, Equatable {
    public let failureThreshold: Int
    public let openFor: Duration
    public private(set) var state: CircuitState = .closed
    public private(set) var consecutiveFailures = 0
    private var openedAt: MonotonicInstant?
    private var probeInFlight = false
    /// The failure that opened the breaker (health shows it).
    public private(set) var lastFailure: String?

    public init(failureThreshold: Int = 5, openFor: Duration = .seconds(30)) {
        self.failureThreshold = max(1, failureThreshold)
        self.openFor = openFor
    }

    /// A change of state worth one log line.
    public enum Transition: Sendable, Equatable {
        case opened(afterFailures: Int)
        case closed
    }

    /// Whether a call may go out now. Open: refused until `openFor` has passed, then one probe is
    /// let through (half-open) while the others are still refused.
    public mutating func allow(now: MonotonicInstant) -> Bool {
        switch state {
        case .closed:
            return true
        case .open:
            guard let at = openedAt, now >= at.advanced(by: openFor) else { return false }
            state = .halfOpen
            probeInFlight = true
            return true
        case .halfOpen:
            guard !probeInFlight else { return false }
            probeInFlight = true
            return true
        }
    }

    /// Records the outcome of a call that `allow` let through; returns the transition, if any.
    public mutating func record(success: Bool, failure: String? = nil, now: MonotonicInstant) -> Transition? {
        probeInFlight = false
        if success {
            consecutiveFailures = 0
            let was = state
            state = .closed
            openedAt = nil
            lastFailure = nil
            return was == .closed ? nil : .closed
        }
        consecutiveFailures += 1
        lastFailure = failure
        switch state {
        case .halfOpen:
            state = .open
            openedAt = now
            return nil  // it was open already: no second "opened" line
        case .closed where consecutiveFailures >= failureThreshold:
            state = .open
            openedAt = now
            return .opened(afterFailures: consecutiveFailures)
        default:
            return nil
        }
    }
}
