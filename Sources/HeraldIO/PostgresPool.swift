// A small pool of ordinary PostgreSQL connections for work done off the loop.
// Each job has one connection to itself while it runs, on the calling thread
// (`withConnection`) or on a worker of the pool's concurrent dispatch queue
// (`run`); a broken connection is re-opened before the next job. The loop
// never waits on it.
//
// Connecting is gated: after a failed connect, the pool tries again only after a
// backoff (100 ms doubling to 5 s, with jitter), and every job meanwhile fails at
// once without touching the network. However many jobs and threads want a
// connection while PostgreSQL is away, it sees about one attempt per second from
// this pool, not a storm when it comes back.

import Foundation
import HeraldCore
import Synchronization

/// When the pool may next try to connect, after failures.
struct ConnectGate: Sendable {
    var backoff: Backoff
    /// Monotonic ns before which no attempt is made (0: now).
    var notBefore: UInt64 = 0
    var lastError: String = ""
    /// Connection attempts made, failed, and refused by the gate without an attempt.
    var attempts = 0
    var failures = 0
    var refused = 0
}

/// A bounded pool of blocking connections: at most `size` in use at once (a semaphore), each
/// lent to one job at a time. Connections are not tied to threads: `run` jobs execute on the
/// concurrent dispatch queue `herald.postgres-pool`, `withConnection` on the caller's thread.
public final class PostgresPool: Sendable {
    public let size: Int
    private let connInfo: PostgresConnInfo
    private let idle = Mutex<[PostgresConnection]>([])
    private let opened = Mutex<Int>(0)
    private let slots: DispatchSemaphore
    private let queue: DispatchQueue
    private let gate: Mutex<ConnectGate>

    public init(
        connInfo: PostgresConnInfo, size: Int = 4,
        backoff: Backoff = Backoff(base: .milliseconds(100), cap: .seconds(5))
    ) {
        self.size = max(1, size)
        self.connInfo = connInfo
        self.gate = Mutex(ConnectGate(backoff: backoff))
        self.slots = DispatchSemaphore(value: self.size)
        self.queue = DispatchQueue(label: "herald.postgres-pool", attributes: .concurrent)
    }

    /// Runs `body` with a connection on the calling thread (blocking). Never call on the loop.
    public func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        slots.wait()
        defer { slots.signal() }
        let conn: PostgresConnection
        if let c = idle.withLock({ $0.popLast() }) {
            conn = c
            if !conn.isHealthy {
                do { try gated { try conn.resetIfBroken() } } catch {
                    idle.withLock { $0.append(conn) }
                    throw error
                }
            }
        } else {
            conn = try gated { try PostgresConnection(connInfo: connInfo) }
            opened.withLock { $0 += 1 }
        }
        defer { idle.withLock { $0.append(conn) } }
        return try body(conn)
    }

    /// Runs a connect through the gate: refused without an attempt while a backoff runs, and a
    /// failure starts (or lengthens) the backoff; a success ends it.
    private func gated<T>(_ connect: () throws -> T) throws -> T {
        let now = MonotonicNow.nanoseconds
        let wait: (UInt64, String)? = gate.withLock { g in
            guard now < g.notBefore else { return nil }
            g.refused += 1
            return (g.notBefore - now, g.lastError)
        }
        if let (ns, last) = wait {
            throw IOError.postgres(
                call: "PQconnectdb",
                message: "not retried for another \(ns / 1_000_000) ms after a failed connect: \(last)")
        }
        gate.withLock { $0.attempts += 1 }
        do {
            let value = try connect()
            gate.withLock { g in
                g.backoff.reset()
                g.notBefore = 0
            }
            return value
        } catch {
            gate.withLock { g in
                g.failures += 1
                g.lastError = "\(error)"
                g.notBefore = MonotonicNow.nanoseconds + UInt64(max(0, g.backoff.next().nanosecondsClamped))
            }
            throw error
        }
    }

    /// Connection attempts made, failed, and refused by the backoff gate without an attempt.
    public var connectCounts: (attempts: Int, failures: Int, refused: Int) {
        gate.withLock { ($0.attempts, $0.failures, $0.refused) }
    }

    /// Runs `body` (blocking) with a connection of its own, opened for it outside the pool's
    /// slots and closed afterwards: for long jobs (a retention run lasting hours) that must not
    /// take a slot from the schedules' short claims for their whole length.
    public func withDedicatedConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let conn = try gated { try PostgresConnection(connInfo: connInfo) }
        return try body(conn)
    }

    /// Runs `body` on a pool thread and hands the result back asynchronously.
    public func run<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { cont in
            queue.async {
                cont.resume(with: Result { try self.withConnection(body) })
            }
        }
    }

    /// Runs `body` on a pool thread and calls `done` on the loop with the result.
    public func run<T: Sendable>(
        on loop: EventLoop, _ body: @escaping @Sendable (PostgresConnection) throws -> T,
        done: @escaping @Sendable (Result<T, any Error>) -> Void
    ) {
        queue.async {
            let r = Result { try self.withConnection(body) }
            loop.execute { done(r) }
        }
    }

    /// Connections opened so far.
    public var openedCount: Int { opened.withLock { $0 } }
}
