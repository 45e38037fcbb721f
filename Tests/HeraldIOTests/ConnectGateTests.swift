// The connect gate every connection to a server shares (its state's rules are unit-tested in
// ConnectBreakerTests): one gate for every blocking client of the same server.

import Foundation
import HeraldCore
import HeraldIO
import Synchronization
import XCTest

final class ConnectGateTests: XCTestCase {
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
