// The process's circuit breakers, one per outside dependency Herald calls from its tasks
// (CircuitBreaker.swift has the states): the billing API, the marketplace API, the TiDB Cloud API and the mail
// transport. A call through
// `call(_:_:)` is refused at once while its breaker is open; the caller defers the work (the
// retention cleaner keeps the tenants it cannot look up, the mail task leaves its logs
// unnotified for the next run, the plugin checks wait for the manifest). The daemon exports each as `herald_circuit_state{dependency}`,
// shows it in /healthz and `herald status`, and logs each open and close once.
// PostgreSQL and Redis have a breaker each too, kept by their connect gates (ConnectGate.swift in
// HeraldIO, one per server, shared by every connection to it): shown and exported the same way.

import CoreMetrics
import HeraldCore
import HeraldIO
import Logging
import Synchronization

/// A call refused because its dependency's breaker is open.
public struct CircuitOpenError: Error, Sendable, CustomStringConvertible {
    public var dependency: String
    public var lastFailure: String?
    public var description: String {
        "\(dependency) circuit open after repeated failures (calls wait for the next probe)"
            + (lastFailure.map { "; last failure: \($0)" } ?? "")
    }
}

/// The breakers of the process.
public final class Circuits: Sendable {
    /// The one set of breakers every task shares.
    public static let shared = Circuits()
    /// The dependencies with a breaker.
    public static let billingAPI = "billing_api"
    public static let mail = "mail"
    public static let marketplaceAPI = "marketplace_api"
    public static let tidbAPI = "tidb_api"
    public static let dependencies = [billingAPI, marketplaceAPI, mail, tidbAPI]
    /// The servers whose breakers are their connect gates (the worst state among their servers).
    public static let postgres = "postgresql"
    public static let redis = "redis"
    public static let connectionDependencies = [postgres, redis]

    /// A state change: the dependency, its new state, the transition worth a log line (nil for a
    /// half-open probe or a re-open), and the failure that caused it.
    public typealias Observer = @Sendable (String, CircuitState, CircuitBreaker.Transition?, String?) -> Void

    private let breakers: Mutex<[String: CircuitBreaker]>
    private let observer = Mutex<Observer?>(nil)

    public init(failureThreshold: Int = 5, openFor: Duration = .seconds(30)) {
        var all: [String: CircuitBreaker] = [:]
        for d in Self.dependencies { all[d] = CircuitBreaker(failureThreshold: failureThreshold, openFor: openFor) }
        breakers = Mutex(all)
    }

    /// Closes every breaker and forgets its failures (a test's clean start; an operator's restart).
    public func reset() {
        breakers.withLock { all in
            for d in Array(all.keys) {
                all[d] = CircuitBreaker(failureThreshold: all[d]!.failureThreshold, openFor: all[d]!.openFor)
            }
        }
    }

    /// Called on every state change (the daemon's gauge and log).
    public func observe(_ f: @escaping Observer) { observer.withLock { $0 = f } }

    /// Every breaker's state and the failure that opened it, by dependency name: PostgreSQL and
    /// Redis first (from their connect gates), then the outside services.
    public var states: [(dependency: String, state: CircuitState, lastFailure: String?)] {
        let servers = Self.connectionDependencies.map { d in
            let s = ConnectGates.state(of: d)
            return (dependency: d, state: s.state, lastFailure: s.lastFailure)
        }
        return servers
            + breakers.withLock { all in
                Self.dependencies.compactMap { d in all[d].map { (d, $0.state, $0.lastFailure) } }
            }
    }

    /// Runs `body` unless `dependency`'s breaker is open; a thrown error for which `counts` is true
    /// is a failure of the dependency (default: every error).
    public func call<T>(
        _ dependency: String, counts: (any Error) -> Bool = { _ in true }, _ body: () throws -> T
    ) throws -> T {
        let now = MonotonicNow.instant
        let (allowed, before, last) = breakers.withLock { all -> (Bool, CircuitState, String?) in
            var b = all[dependency] ?? CircuitBreaker()
            let before = b.state
            let ok = b.allow(now: now)
            all[dependency] = b
            return (ok, before, b.lastFailure)
        }
        guard allowed else { throw CircuitOpenError(dependency: dependency, lastFailure: last) }
        if before == .open { notify(dependency, .halfOpen, nil, last) }
        do {
            let value = try body()
            settle(dependency, success: true, failure: nil)
            return value
        } catch {
            if counts(error) {
                settle(dependency, success: false, failure: "\(error)")
            } else {
                settle(dependency, success: true, failure: nil)
            }
            throw error
        }
    }

    private func settle(_ dependency: String, success: Bool, failure: String?) {
        let now = MonotonicNow.instant
        let (changed, state, transition) = breakers.withLock {
            all -> (Bool, CircuitState, CircuitBreaker.Transition?) in
            var b = all[dependency] ?? CircuitBreaker()
            let before = b.state
            let t = b.record(success: success, failure: failure, now: now)
            all[dependency] = b
            return (before != b.state, b.state, t)
        }
        if changed { notify(dependency, state, transition, failure) }
    }

    private func notify(_ d: String, _ s: CircuitState, _ t: CircuitBreaker.Transition?, _ f: String?) {
        let f2 = observer.withLock { $0 }
        f2?(d, s, t, f)
    }
}

extension Circuits {
    /// Exports each breaker as `herald_circuit_state{dependency}` (created now, at its current
    /// state) and logs each open and close once.
    public func export(to metrics: HeraldMetrics, logger: Logger) {
        var gauges: [String: CoreMetrics.Gauge] = [:]
        for (dependency, state, _) in states {
            let g = CoreMetrics.Gauge(
                label: "herald_circuit_state", dimensions: [("dependency", dependency)], factory: metrics.factory)
            g.record(state.gaugeValue)
            gauges[dependency] = g
        }
        ConnectGates.observe { [gauges] gate, _, transition, failure in
            gauges[gate.dependency]?.record(ConnectGates.state(of: gate.dependency).state.gaugeValue)
            switch transition {
            case .opened(let n)?:
                logger.error(
                    "circuit opened: connects to \(gate.dependency) at \(gate.target) are refused between retries, the work waits",
                    metadata: [
                        "dependency": "\(gate.dependency)", "target": "\(gate.target)", "failures": "\(n)",
                        "last_failure": "\(failure ?? "")",
                    ])
            case .closed?:
                logger.notice(
                    "circuit closed: \(gate.dependency) at \(gate.target) answers again",
                    metadata: ["dependency": "\(gate.dependency)", "target": "\(gate.target)"])
            case nil:
                break
            }
        }
        observe { [gauges] dependency, state, transition, failure in
            gauges[dependency]?.record(state.gaugeValue)
            switch transition {
            case .opened(let n)?:
                logger.error(
                    "circuit opened: calls to \(dependency) are refused for now, the work waits",
                    metadata: ["dependency": "\(dependency)", "failures": "\(n)", "last_failure": "\(failure ?? "")"])
            case .closed?:
                logger.notice("circuit closed: \(dependency) answers again", metadata: ["dependency": "\(dependency)"])
            case nil:
                break
            }
        }
    }
}

extension LibeventLog {
    /// Sends libevent's own warnings (a flood of them when accept() keeps failing) to `logger`, at
    /// most one line per 10 s with the count of those suppressed.
    public static func installRateLimited(logger: Logger) {
        let burst = Mutex(BurstLimiter())
        install { severity, message in
            guard case .log(let suppressed) = burst.withLock({ $0.record(now: MonotonicNow.instant) }) else { return }
            logger.warning(
                "libevent: \(message)", metadata: ["severity": "\(severity)", "suppressed_since_last": "\(suppressed)"])
        }
    }
}
