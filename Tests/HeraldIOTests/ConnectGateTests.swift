// The connect gate every connection to a server shares, and the breaker it keeps: opened after
// three failed connects in a row, refusing between retries, half-open when the backoff has
// passed, closed by a success; and one gate for every client of the same server.

import Foundation
import HeraldCore
import HeraldIO
import Synchronization
import XCTest

final class ConnectGateTests: XCTestCase {
    private struct Refused: Error {}

    func testOpensAfterThreeFailuresRefusesThenProbesAndCloses() throws {
        let gate = ConnectGate(
            dependency: "redis", target: "test-\(UUID())",
            backoff: Backoff(base: .milliseconds(50), cap: .milliseconds(50)))
        let calls = Mutex(0)
        func attempt(_ ok: Bool) -> Bool {
            (try? gate.pass { () throws(IOError) -> Int in
                calls.withLock { $0 += 1 }
                if !ok { throw IOError.redis(call: "redisConnect", message: "Connection refused") }
                return 1
            }) != nil
        }
        for i in 0..<3 {
            XCTAssertEqual(gate.circuitState, .closed, "closed before failure \(i + 1)")
            XCTAssertFalse(attempt(false))
            Thread.sleep(forTimeInterval: 0.06)  // past the backoff: the next call is an attempt
        }
        XCTAssertEqual(gate.circuitState, .halfOpen, "three failures opened it; the backoff passed")
        XCTAssertFalse(attempt(false))
        XCTAssertEqual(gate.circuitState, .open)
        XCTAssertNotNil(gate.lastFailure)
        let before = calls.withLock { $0 }
        for _ in 0..<100 { XCTAssertFalse(attempt(true)) }
        XCTAssertEqual(calls.withLock { $0 }, before, "refused without an attempt while open")
        Thread.sleep(forTimeInterval: 0.06)
        XCTAssertTrue(attempt(true), "the probe goes through")
        XCTAssertEqual(gate.circuitState, .closed)
        XCTAssertNil(gate.lastFailure)
        let counts = gate.counts
        XCTAssertEqual(counts.attempts, 5)
        XCTAssertEqual(counts.failures, 4)
        XCTAssertEqual(counts.refused, 100)
    }

    /// Blocking Redis clients of one server share its gate: 4 threads wanting a client of a port
    /// where nothing listens for 2 s make a few attempts between them, not one each per call.
    func testBlockingRedisClientsShareOneBackoff() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
                _ = bind(fd, p, len)
                return getsockname(fd, p, &len)
            }
        }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        close(fd)  // a free port: every connect is refused
        let endpoint = try RedisEndpoint.parse("redis://127.0.0.1:\(port)/0")
        let calls = Mutex(0)
        let deadline = Date().addingTimeInterval(2)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            while Date() < deadline {
                _ = try? RedisClient.gated(endpoint: endpoint)
                calls.withLock { $0 += 1 }
            }
        }
        let gate = RedisClient.gate(for: endpoint)
        let counts = gate.counts
        print("4 threads, 2 s, refused port: \(calls.withLock { $0 }) calls, \(counts.attempts) connects")
        XCTAssertGreaterThan(calls.withLock { $0 }, 100)
        XCTAssertLessThanOrEqual(counts.attempts, 12, "100 ms doubling to 5 s: a handful in 2 s")
        XCTAssertEqual(gate.circuitState == .closed, false, "the breaker is open or probing")
        XCTAssertTrue(ConnectGates.gates.contains { $0 === gate })
        XCTAssertNotEqual(ConnectGates.state(of: "redis").state, .closed)
    }
}
