// Batch sizing under a duration target, with made-up durations.

import HeraldCore
import XCTest

final class AdaptiveBatchSizeTests: XCTestCase {
    func testStartsAtTheCeilingAndNeverExceedsIt() {
        var s = AdaptiveBatchSize(ceiling: 1000, targetSeconds: 0.1)
        XCTAssertEqual(s.current, 1000)
        for _ in 0..<10 { s.record(rows: s.current, seconds: 0.001) }
        XCTAssertEqual(s.current, 1000, "fast full batches stay at the configured size")
    }

    func testSlowBatchShrinksInProportionThenRecovers() {
        var s = AdaptiveBatchSize(ceiling: 1000, targetSeconds: 0.1)
        s.record(rows: 1000, seconds: 0.4)
        XCTAssertEqual(s.current, 225, "4x over target: a quarter, aimed at 90 % of the target")
        s.record(rows: 225, seconds: 0.09)
        XCTAssertEqual(s.current, 225, "within the target and above half of it: unchanged")
        s.record(rows: 225, seconds: 0.01)
        XCTAssertEqual(s.current, 337, "full and fast: grows by half")
        s.record(rows: 100, seconds: 0.01)
        XCTAssertEqual(s.current, 337, "a short (last) batch says nothing about capacity")
        for _ in 0..<10 { s.record(rows: s.current, seconds: 0.01) }
        XCTAssertEqual(s.current, 1000)
    }

    func testSlightlySlowBatchStillShrinksByAQuarterAndFloorHolds() {
        var s = AdaptiveBatchSize(ceiling: 100, targetSeconds: 0.1, floor: 10)
        s.record(rows: 100, seconds: 0.101)
        XCTAssertEqual(s.current, 75)
        for _ in 0..<20 { s.record(rows: s.current, seconds: 5) }
        XCTAssertEqual(s.current, 10)
        s.record(rows: 10, seconds: .nan)
        XCTAssertEqual(s.current, 10, "a nonsense duration changes nothing")
    }

    func testGrowsFromTheConfiguredSizeUpToTheCeilingWhileFast() {
        var s = AdaptiveBatchSize(start: 100, ceiling: 1000, targetSeconds: 0.1)
        XCTAssertEqual(s.current, 100)
        var seen: [Int] = []
        for _ in 0..<8 {
            s.record(rows: s.current, seconds: Double(s.current) * 0.00008)  // 80 µs per row
            seen.append(s.current)
        }
        XCTAssertEqual(
            seen, [150, 225, 337, 505, 757, 757, 757, 757],
            "grows by half while a batch takes under half the target, then holds (757 rows = 61 ms)")
        XCTAssertLessThanOrEqual(
            Double(s.current) * 0.00008, 0.075, "a grown batch stays under three quarters of the target")
    }

    func testTinyCeilingAndFloor() {
        var s = AdaptiveBatchSize(ceiling: 1, targetSeconds: 0.1, floor: 10)
        XCTAssertEqual(s.floor, 1)
        s.record(rows: 1, seconds: 10)
        XCTAssertEqual(s.current, 1)
    }
}
