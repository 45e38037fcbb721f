// The reconnect policy and breaker of one server, on an injected clock: the backoff refuses
// between attempts, three failures in a row open it, the passing of the backoff makes it
// half-open, a success closes it, and each open and close is reported once.

import HeraldCore
import XCTest

final class ConnectBreakerTests: XCTestCase {
    private func at(_ ms: UInt64) -> MonotonicInstant { MonotonicInstant(nanoseconds: ms * 1_000_000) }

    func testBackoffOpenHalfOpenAndClose() {
        // A fixed 100 ms backoff (no jitter: the random source returns the ceiling).
        var b = ConnectBreaker(
            openAfter: 3, backoff: Backoff(base: .milliseconds(100), cap: .milliseconds(100)) { $0.upperBound })
        var t: UInt64 = 1000
        for i in 1...2 {
            XCTAssertNil(b.admit(now: at(t)))
            XCTAssertNil(b.record(success: false, failure: "refused", now: at(t)), "failure \(i) does not open it")
            XCTAssertEqual(b.state(now: at(t)), .closed)
            XCTAssertEqual(b.admit(now: at(t + 50)), .milliseconds(50), "refused during the backoff")
            t += 100
        }
        XCTAssertNil(b.admit(now: at(t)))
        XCTAssertEqual(b.record(success: false, failure: "refused", now: at(t)), .opened(afterFailures: 3))
        XCTAssertEqual(b.state(now: at(t + 99)), .open)
        XCTAssertEqual(b.state(now: at(t + 100)), .halfOpen)
        XCTAssertNil(b.admit(now: at(t + 100)), "the probe")
        XCTAssertNil(b.record(success: false, now: at(t + 100)), "a failed probe: open again, no second line")
        XCTAssertEqual(b.state(now: at(t + 150)), .open)
        XCTAssertEqual(b.lastFailure, "connect failed")
        XCTAssertNil(b.admit(now: at(t + 200)))
        XCTAssertEqual(b.record(success: true, now: at(t + 200)), .closed)
        XCTAssertEqual(b.state(now: at(t + 200)), .closed)
        XCTAssertNil(b.lastFailure)
        XCTAssertNil(b.record(success: true, now: at(t + 300)), "closed already: no line")
        XCTAssertEqual(b.attempts, 5)
        XCTAssertEqual(b.failures, 4)
        XCTAssertEqual(b.refused, 2)
    }

    func testTheBackoffDoublesToItsCap() {
        var b = ConnectBreaker(backoff: Backoff(base: .milliseconds(100), cap: .seconds(5)) { $0.upperBound })
        var waits: [Duration] = []
        for _ in 0..<8 {
            _ = b.record(success: false, now: at(0))
            waits.append(b.admit(now: at(0)) ?? .zero)
        }
        XCTAssertEqual(waits.map { Int($0.seconds * 1000) }, [100, 200, 400, 800, 1600, 3200, 5000, 5000])
    }
}
