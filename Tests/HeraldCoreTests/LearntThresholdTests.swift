// The queue monitor's learnt threshold: the floor during warm-up, mean + 4σ of the history
// after it, never below the floor, and a lasting backlog not learnt as normal.

import HeraldCore
import XCTest

final class LearntThresholdTests: XCTestCase {
    func testWarmUpUsesTheFloorThenTheHistory() {
        var t = LearntThreshold(floor: 200, halfLifeSamples: 100)
        XCTAssertEqual(t.warmUpSamples, 100)
        // A busy queue: lengths 900 to 1100 around 1000.
        for i in 0..<99 { t.learn(900 + (i * 37) % 201) }
        XCTAssertEqual(t.threshold, 200, "the floor until a half-life of history")
        t.learn(1000)
        XCTAssertGreaterThanOrEqual(t.threshold, Int((t.mean * 1.5).rounded(.up)), "at least 1.5 times the mean")
        XCTAssertLessThan(t.threshold, 1600, "not far above what the queue normally holds")
        XCTAssertEqual(t.mean, 1000, accuracy: 30)
    }

    func testNeverBelowTheFloor() {
        var t = LearntThreshold(floor: 200, halfLifeSamples: 10)
        for _ in 0..<1000 { t.learn(3) }
        XCTAssertEqual(t.threshold, 200)
    }

    func testALastingBacklogIsNotLearnt() {
        var t = LearntThreshold(floor: 50, halfLifeSamples: 20)
        for i in 0..<200 { t.learn(100 + i % 11) }
        XCTAssertEqual(t.threshold, Int((t.mean * 1.5).rounded(.up)), "steady: 1.5 times the mean")
        let before = t.threshold
        XCTAssertGreaterThan(before, 110)
        for _ in 0..<10_000 { t.learn(5000) }
        XCTAssertEqual(t.threshold, before, "the backlog stays above the threshold and is not learnt")
        t.learn(104)
        XCTAssertEqual(t.threshold, before, accuracy: 2)
    }

    func testHalfLifeWeighsOldSamplesHalf() {
        var t = LearntThreshold(floor: 1000, halfLifeSamples: 50)
        for _ in 0..<1000 { t.learn(0) }
        for _ in 0..<50 { t.learn(100) }
        // After one half-life of 100s, the mean has moved half of the way from 0 to 100.
        XCTAssertEqual(t.mean, 50, accuracy: 1)
    }
}
