// Whatever validates, runs: every interval a topology file or a setting can give is either
// refused by validation (the same rule for `herald topology check`, start-up and SIGHUP, which
// all call `validate()` and `resolve`) or resolves to a schedule whose arithmetic cannot trap.
// Property-checked over magnitudes from 5e-324 to the largest Double, and the edge values.

import Foundation
import HeraldCore
import XCTest

final class TaskScheduleRangeTests: XCTestCase {
    /// A fixed-seed generator, so a failure reproduces.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    var candidates: [Double] {
        var values: [Double] = [
            5e-324, 1e-12, 0.001, 1 / 60, 1, 30, 1440, 525_599.9, 525_600, 525_600.000_1, 153_722_867,
            153_722_868, 1e9, 1e18, 1e300, .greatestFiniteMagnitude, .infinity, -.infinity, .nan, 0, -0.0, -1,
        ]
        var rng = SplitMix(state: 42)
        for _ in 0..<3000 {
            let magnitude = Double.random(in: -324...308, using: &rng)
            values.append((Bool.random(using: &rng) ? 1 : -1) * pow(10, magnitude))
        }
        return values
    }

    func testWhateverATopologyIntervalValidatesToRuns() throws {
        var ran = 0
        for minutes in candidates {
            let schedule = TaskSchedule.every(minutes: minutes, setting: nil)
            guard (try? schedule.validate()) != nil else { continue }
            let resolved = try schedule.resolve(TaskSettings([:]), zone: .utc)
            for now in [0, 1.7e9, 4.1e9] {
                let tick = try resolved.nextTick(afterUnixSeconds: now)
                XCTAssertGreaterThan(Double(tick), now, "\(minutes) min after \(now)")
            }
            ran += 1
        }
        XCTAssertGreaterThan(ran, 100)
    }

    func testWhateverAnIntervalSettingValidatesToRuns() throws {
        let schedule = TaskSchedule.every(minutes: 30, setting: "QUEUE_MONITOR_INTERVAL")
        var ran = 0
        for minutes in candidates {
            for text in [String(minutes), "\(minutes)"] {
                guard let resolved = try? schedule.resolve(TaskSettings(["QUEUE_MONITOR_INTERVAL": text]), zone: .utc)
                else { continue }
                let tick = try resolved.nextTick(afterUnixSeconds: 1.7e9)
                XCTAssertGreaterThan(tick, 1_700_000_000, text)
                ran += 1
            }
        }
        XCTAssertGreaterThan(ran, 100)
        // The values that used to trap are refused with the setting named.
        for text in ["153722868", "1e9", "1e308", "99999999999999999999999"] {
            XCTAssertThrowsError(try schedule.resolve(TaskSettings(["QUEUE_MONITOR_INTERVAL": text]), zone: .utc)) {
                XCTAssertTrue("\($0)".hasPrefix("QUEUE_MONITOR_INTERVAL: expected a number"), "\($0)")
            }
        }
    }
}
