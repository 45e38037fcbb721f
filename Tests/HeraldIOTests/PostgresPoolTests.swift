// The pool's connect gate against a server that accepts and closes every connection (what a
// PostgreSQL port looks like behind a proxy while the database restarts): however many jobs
// want a connection, the pool makes a handful of attempts, backing off to 5 s, not one per job.

import Foundation
import Glibc
import HeraldCore
import HeraldIO
import Synchronization
import XCTest

/// A TCP listener on 127.0.0.1 that accepts and at once closes every connection, counting them.
final class SlammingListener: @unchecked Sendable {
    final class State: Sendable {
        let accepted = Mutex(0)
        let stopped = Mutex(false)
    }
    let port: Int
    private let fd: Int32
    private let state = State()
    private let thread: Thread

    init() throws {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(s, 128) == 0 else { throw XCTSkip("cannot listen") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(s, $0, &len) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
        fd = s
        let state = self.state
        thread = Thread {
            while !state.stopped.withLock({ $0 }) {
                var pfd = pollfd(fd: s, events: Int16(POLLIN), revents: 0)
                guard poll(&pfd, 1, 100) > 0 else { continue }
                let c = accept(s, nil, nil)
                if c >= 0 {
                    state.accepted.withLock { $0 += 1 }
                    close(c)
                }
            }
        }
        thread.start()
    }

    var count: Int { state.accepted.withLock { $0 } }

    func stop() {
        state.stopped.withLock { $0 = true }
        usleep(200_000)
        close(fd)
    }
}

final class PostgresPoolTests: XCTestCase {
    func testAFailingServerSeesAFewAttemptsNotAStorm() throws {
        let server = try SlammingListener()
        defer { server.stop() }
        let pool = PostgresPool(
            connInfo: try PostgresConnInfo("host=127.0.0.1 port=\(server.port) user=herald dbname=x connect_timeout=2"),
            size: 4)
        let jobs = Mutex(0)
        let deadline = Date().addingTimeInterval(3)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            while Date() < deadline {
                _ = try? pool.withConnection { _ in 0 }
                jobs.withLock { $0 += 1 }
            }
        }
        let counts = pool.connectCounts
        let attempts = server.count
        print("postgres pool against a slamming server: \(jobs.withLock { $0 }) jobs in 3 s, \(attempts) connections")
        XCTAssertGreaterThan(jobs.withLock { $0 }, 100, "jobs fail fast while the gate is closed")
        XCTAssertLessThanOrEqual(attempts, 12, "connect attempts in 3 s (backoff 100 ms doubling to 5 s)")
        XCTAssertEqual(counts.attempts, counts.failures)
        XCTAssertGreaterThan(counts.refused, 0)
    }
}
