// The breaker's states with a hand-driven clock: closed → open after the threshold, calls refused
// while open, one probe when half-open, closed by a successful probe, re-opened by a failed one;
// each open and close reported once.

import HeraldCore
import XCTest

final class CircuitBreakerTests: XCTestCase {
    func testOpensRefusesProbesAndCloses() {
        var b = CircuitBreaker(failureThreshold: 3, openFor: .seconds(30))
        var now = MonotonicInstant(nanoseconds: 1_000_000_000)
        for i in 1...2 {
            XCTAssertTrue(b.allow(now: now))
            XCTAssertNil(b.record(success: false, failure: "timeout \(i)", now: now))
        }
        XCTAssertEqual(b.state, .closed)
        XCTAssertTrue(b.allow(now: now))
        XCTAssertEqual(b.record(success: false, failure: "timeout 3", now: now), .opened(afterFailures: 3))
        XCTAssertEqual(b.state, .open)
        XCTAssertEqual(b.lastFailure, "timeout 3")
        // Refused while open, however often asked: no call, no retry loop.
        for _ in 0..<1000 { XCTAssertFalse(b.allow(now: now)) }
        now = now.advanced(by: .seconds(29))
        XCTAssertFalse(b.allow(now: now))
        // After openFor: one probe; the others wait for its outcome.
        now = now.advanced(by: .seconds(1))
        XCTAssertTrue(b.allow(now: now))
        XCTAssertEqual(b.state, .halfOpen)
        XCTAssertFalse(b.allow(now: now))
        // A failed probe opens it again for another 30 s, without a second "opened".
        XCTAssertNil(b.record(success: false, failure: "still down", now: now))
        XCTAssertEqual(b.state, .open)
        XCTAssertFalse(b.allow(now: now.advanced(by: .seconds(10))))
        now = now.advanced(by: .seconds(30))
        XCTAssertTrue(b.allow(now: now))
        XCTAssertEqual(b.record(success: true, now: now), .closed)
        XCTAssertEqual(b.state, .closed)
        XCTAssertNil(b.lastFailure)
        XCTAssertTrue(b.allow(now: now))
        XCTAssertNil(b.record(success: true, now: now), "closed stays closed: no line")
    }

    func testASuccessResetsTheFailureCount() {
        var b = CircuitBreaker(failureThreshold: 2, openFor: .seconds(1))
        let now = MonotonicInstant(nanoseconds: 0)
        _ = b.record(success: false, now: now)
        _ = b.record(success: true, now: now)
        XCTAssertNil(b.record(success: false, now: now))
        XCTAssertEqual(b.state, .closed)
        XCTAssertEqual(CircuitState.allCases.map(\.gaugeValue), [0, 1, 2])
    }
}
