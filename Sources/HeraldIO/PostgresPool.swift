// A small pool of ordinary PostgreSQL connections for work done off the loop.
// Each job has one connection to itself while it runs, on the calling thread
// (`withConnection`) or on a worker of the pool's concurrent dispatch queue
// (`run`); a broken connection is re-opened before the next job. The loop
// never waits on it.
//
// Connecting goes through the server's ConnectGate (ConnectGate.swift), shared with
// every other pool and the listener of the same server: after a failed connect, the
// next attempt waits out a backoff (100 ms doubling to 5 s, with jitter), and every
// job meanwhile fails at once without touching the network. However many jobs and
// threads want a connection while PostgreSQL is away, it sees about one attempt per
// second from this process, not a storm when it comes back.

import Foundation
import HeraldCore
import Synchronization

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
    /// The server's connect gate and breaker (shared by every connection to it).
    public let gate: ConnectGate

    /// `gate`: the server's shared one unless given (a test's own).
    public init(connInfo: PostgresConnInfo, size: Int = 4, gate: ConnectGate? = nil) {
        self.size = max(1, size)
        self.connInfo = connInfo
        self.gate = gate ?? ConnectGates.gate(dependency: "postgresql", target: connInfo.redacted)
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
                do { try gated { () throws(IOError) in try conn.resetIfBroken() } } catch {
                    idle.withLock { $0.append(conn) }
                    throw error
                }
            }
        } else {
            conn = try gated { () throws(IOError) in try PostgresConnection(connInfo: connInfo) }
            opened.withLock { $0 += 1 }
        }
        defer { idle.withLock { $0.append(conn) } }
        return try body(conn)
    }

    private func gated<T>(_ connect: () throws(IOError) -> T) throws(IOError) -> T { try gate.pass(connect) }

    /// Connection attempts made, failed, and refused by the backoff gate without an attempt.
    public var connectCounts: (attempts: Int, failures: Int, refused: Int) { gate.counts }

    /// Runs `body` (blocking) with a connection of its own, opened for it outside the pool's
    /// slots and closed afterwards: for long jobs (a retention run lasting hours) that must not
    /// take a slot from the schedules' short claims for their whole length.
    public func withDedicatedConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let conn = try gated { () throws(IOError) in try PostgresConnection(connInfo: connInfo) }
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
