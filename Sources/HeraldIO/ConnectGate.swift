// One reconnect policy per server, shared by every connection Herald opens to it. Connecting
// is gated: after a failed connect, the next attempt through the gate waits out a backoff
// (100 ms doubling to 5 s, with jitter) and every caller meanwhile fails at once without
// touching the network. However many threads want the server while it is away (the pool's
// jobs, the pushes to the broker, the task locks, the status events), it sees about one attempt
// per second from this process, not a storm when it comes back.
//
// The gate is also the dependency's circuit breaker (ConnectBreaker.swift in HeraldCore, the
// pure state): after three failed connects in a row it is open, refusing until its backoff has
// passed; then half-open, letting one probe through; a success closes it. Connections that keep their
// own reconnect timer on the loop (RedisConnection, PostgresListener) report their outcomes to
// the same gate, so the breaker sees the server as everything in the process sees it.

import HeraldCore
import Synchronization

/// The connect gate and breaker of one server (a dependency at one address).
public final class ConnectGate: Sendable {
    /// The breaker's dependency label: `postgresql` or `redis`.
    public let dependency: String
    /// The server, without credentials.
    public let target: String
    private let state: Mutex<ConnectBreaker>

    /// An open or close: the gate, its new state, the transition, the failure.
    public typealias Observer = @Sendable (ConnectGate, CircuitState, CircuitBreaker.Transition?, String?) -> Void

    public init(
        dependency: String, target: String,
        backoff: Backoff = Backoff(base: .milliseconds(100), cap: .seconds(5))
    ) {
        self.dependency = dependency
        self.target = target
        state = Mutex(ConnectBreaker(backoff: backoff))
    }

    /// Runs a connect through the gate: refused without an attempt while a backoff runs; a
    /// failure starts (or lengthens) the backoff, a success ends it.
    public func pass<T>(_ connect: () throws(IOError) -> T) throws(IOError) -> T {
        let wait: (Duration, String)? = state.withLock { b in
            b.admit(now: MonotonicNow.instant).map { ($0, b.lastFailure ?? "") }
        }
        if let (d, last) = wait {
            let message =
                "\(target) not retried for another \(Int(d.seconds * 1000)) ms after a failed connect: \(last)"
            throw dependency == "redis"
                ? IOError.redis(call: "redisConnect", message: message)
                : IOError.postgres(call: "PQconnectdb", message: message)
        }
        do {
            let value = try connect()
            record(success: true)
            return value
        } catch {
            record(success: false, failure: "\(error)")
            throw error
        }
    }

    /// Records the outcome of a connect made outside `pass` (a loop connection's own timer).
    public func record(success: Bool, failure: String? = nil) {
        let transition = state.withLock { $0.record(success: success, failure: failure, now: MonotonicNow.instant) }
        guard let transition else { return }
        ConnectGates.notify(self, transition == .closed ? .closed : .open, transition, failure)
    }

    /// The breaker's state now: closed, open (refusing), or half-open (the next connect is a probe).
    public var circuitState: CircuitState { state.withLock { $0.state(now: MonotonicNow.instant) } }

    /// The last connect failure while the breaker is not closed.
    public var lastFailure: String? {
        state.withLock { $0.state(now: MonotonicNow.instant) == .closed ? nil : $0.lastFailure }
    }

    /// Connection attempts made, failed, and refused by the backoff without an attempt.
    public var counts: (attempts: Int, failures: Int, refused: Int) {
        state.withLock { ($0.attempts, $0.failures, $0.refused) }
    }
}

/// The process's gates, one per server: every connection to the same server shares one.
public enum ConnectGates {
    private static let all = Mutex<[String: ConnectGate]>([:])
    private static let observer = Mutex<ConnectGate.Observer?>(nil)

    /// The gate of `target` for `dependency`, made on first use.
    public static func gate(dependency: String, target: String) -> ConnectGate {
        all.withLock { all in
            let key = dependency + " " + target
            if let g = all[key] { return g }
            let g = ConnectGate(dependency: dependency, target: target)
            all[key] = g
            return g
        }
    }

    /// Every gate made so far.
    public static var gates: [ConnectGate] { all.withLock { Array($0.values) } }

    /// Called on every open and close of any gate (the daemon's gauge and log); replaces the
    /// observer set before.
    public static func observe(_ f: @escaping ConnectGate.Observer) { observer.withLock { $0 = f } }

    static func notify(_ g: ConnectGate, _ s: CircuitState, _ t: CircuitBreaker.Transition?, _ f: String?) {
        let o = observer.withLock { $0 }
        o?(g, s, t, f)
    }

    /// The worst state among the gates of `dependency` (closed when there are none), and the
    /// failure of the first gate in that state.
    public static func state(of dependency: String) -> (state: CircuitState, lastFailure: String?) {
        let mine = gates.filter { $0.dependency == dependency }.sorted { $0.target < $1.target }
        var worst: (CircuitState, String?) = (.closed, nil)
        for g in mine {
            let s = g.circuitState
            if s.gaugeValue > worst.0.gaugeValue { worst = (s, g.lastFailure.map { "\(g.target): \($0)" }) }
        }
        return worst
    }
}
