// What a schedule fires on, in UTC so that only the field semantics are under test:
// strict "after", steps, L, names, the day-of-month/day-of-week OR rule and croniter's
// quirks around it, croniter's #/L/W extensions, impossible dates, and speed.

import Foundation
import HeraldCore
import XCTest

final class CronScheduleTests: XCTestCase {
    private func fires(_ expression: String, from: String, count: Int, dayOr: Bool = true) throws -> [String] {
        try CronTest.fires(expression, "UTC", from: from, count: count, dayOr: dayOr)
    }

    func testNextIsStrictlyAfterTheBase() throws {
        XCTAssertEqual(try fires("0 12 * * *", from: "2024-01-01T12:00:00Z", count: 1), ["2024-01-02T12:00:00+00:00"])
        XCTAssertEqual(
            try fires("*/15 * * * *", from: "2024-01-01T10:07:30Z", count: 2),
            ["2024-01-01T10:15:00+00:00", "2024-01-01T10:30:00+00:00"])
        let schedule = try CronSchedule("* * * * *")
        XCTAssertEqual(try schedule.next(afterUnixSeconds: 59.999), 60)
        XCTAssertEqual(try schedule.next(afterUnixSeconds: 60), 120)
        XCTAssertEqual(try schedule.next(after: Date(timeIntervalSince1970: 0)), Date(timeIntervalSince1970: 60))
    }

    func testSequenceIsIncreasingAndCounted() throws {
        let schedule = try CronSchedule("0 */6 * * *", timeZone: "Europe/Berlin")
        let dates = try schedule.sequence(after: Date(timeIntervalSince1970: 1_700_000_000), count: 10)
        XCTAssertEqual(dates.count, 10)
        XCTAssertEqual(zip(dates, dates.dropFirst()).filter { $0 >= $1 }.count, 0)
        XCTAssertEqual(try schedule.sequence(after: Date(), count: 0), [])
    }

    func testMacros() throws {
        XCTAssertEqual(
            try fires("@weekly", from: "2024-01-01T00:00:00Z", count: 2),
            ["2024-01-07T00:00:00+00:00", "2024-01-14T00:00:00+00:00"])
        XCTAssertEqual(try fires("@hourly", from: "2024-01-01T00:30:00Z", count: 1), ["2024-01-01T01:00:00+00:00"])
        XCTAssertEqual(try fires("@MIDNIGHT", from: "2024-01-01T00:30:00Z", count: 1), ["2024-01-02T00:00:00+00:00"])
        XCTAssertEqual(try fires("@monthly", from: "2024-01-01T00:30:00Z", count: 1), ["2024-02-01T00:00:00+00:00"])
        XCTAssertEqual(try fires("@yearly", from: "2024-01-01T00:30:00Z", count: 1), ["2025-01-01T00:00:00+00:00"])
        XCTAssertEqual(try fires("@annually", from: "2024-01-01T00:30:00Z", count: 1), ["2025-01-01T00:00:00+00:00"])
    }

    func testLastDayOfMonth() throws {
        XCTAssertEqual(
            try fires("0 0 L 2 *", from: "2023-01-01T00:00:00Z", count: 2),
            ["2023-02-28T00:00:00+00:00", "2024-02-29T00:00:00+00:00"])
        // Dify's monthly visual mode: "{m} {h} {days},L * *".
        XCTAssertEqual(
            try fires("0 0 1,15,L * *", from: "2024-02-10T00:00:00Z", count: 3),
            ["2024-02-15T00:00:00+00:00", "2024-02-29T00:00:00+00:00", "2024-03-01T00:00:00+00:00"])
    }

    func testNamesQuestionMarkAndSundayAsSeven() throws {
        XCTAssertEqual(
            try fires("0 0 ? jan,MAR-apr SUN", from: "2024-01-31T00:00:00Z", count: 3),
            ["2024-03-03T00:00:00+00:00", "2024-03-10T00:00:00+00:00", "2024-03-17T00:00:00+00:00"])
        XCTAssertEqual(
            try fires("0 0 * * 5-7", from: "2024-01-01T00:00:00Z", count: 4),
            [
                "2024-01-05T00:00:00+00:00", "2024-01-06T00:00:00+00:00", "2024-01-07T00:00:00+00:00",
                "2024-01-12T00:00:00+00:00",
            ])
        XCTAssertEqual(
            try fires("0 0 * * 7", from: "2024-01-01T00:00:00Z", count: 1),
            try fires("0 0 * * 0", from: "2024-01-01T00:00:00Z", count: 1))
    }

    func testDayOfMonthOrDayOfWeek() throws {
        // Both restricted: Fridays OR the 13th.
        XCTAssertEqual(
            try fires("0 0 13 * fri", from: "2024-01-01T00:00:00Z", count: 4),
            [
                "2024-01-05T00:00:00+00:00", "2024-01-12T00:00:00+00:00", "2024-01-13T00:00:00+00:00",
                "2024-01-19T00:00:00+00:00",
            ])
        // day_or=False: Friday the 13th.
        XCTAssertEqual(
            try fires("0 0 13 * fri", from: "2024-01-01T00:00:00Z", count: 2, dayOr: false),
            ["2024-09-13T00:00:00+00:00", "2024-12-13T00:00:00+00:00"])
        // `*/2` is restricted although it starts with `*`: odd days OR Mondays.
        XCTAssertEqual(
            try fires("0 0 */2 * mon", from: "2024-01-01T00:00:00Z", count: 6),
            [
                "2024-01-03T00:00:00+00:00", "2024-01-05T00:00:00+00:00", "2024-01-07T00:00:00+00:00",
                "2024-01-08T00:00:00+00:00", "2024-01-09T00:00:00+00:00", "2024-01-11T00:00:00+00:00",
            ])
    }

    func testCroniterCollapsesFullDayListsOnlyBesideAStar() throws {
        // 1-31 stays a list next to "mon" (OR: every day) ...
        XCTAssertEqual(
            try fires("0 0 1-31 * mon", from: "2024-01-01T00:00:00Z", count: 2),
            ["2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00"])
        XCTAssertTrue(try CronExpression("0 0 1-31 * mon").daysCombineWithOr)
        // ... but becomes `*` next to "*/3", leaving only the weekdays.
        XCTAssertEqual(
            try fires("0 0 1-31 * */3", from: "2024-01-01T00:00:00Z", count: 3),
            ["2024-01-03T00:00:00+00:00", "2024-01-06T00:00:00+00:00", "2024-01-07T00:00:00+00:00"])
        XCTAssertFalse(try CronExpression("0 0 1-31 * */3").daysCombineWithOr)
    }

    func testCroniterRangeQuirks() throws {
        XCTAssertEqual(
            try fires("50-10/15 * * * *", from: "2024-01-01T00:00:00Z", count: 4),
            [
                "2024-01-01T00:06:00+00:00", "2024-01-01T00:50:00+00:00", "2024-01-01T01:06:00+00:00",
                "2024-01-01T01:50:00+00:00",
            ])
        XCTAssertEqual(
            try fires("5-5 9 * * *", from: "2024-01-01T00:00:00Z", count: 2),
            ["2024-01-01T09:00:00+00:00", "2024-01-01T09:01:00+00:00"])
        XCTAssertEqual(
            try fires("0 0 0-0 * mon", from: "2024-01-01T00:00:00Z", count: 2),
            ["2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00"])
    }

    func testNthWeekdayAndNearestWeekday() throws {
        XCTAssertEqual(
            try fires("0 9 * * mon#1", from: "2024-01-01T00:00:00Z", count: 3),
            ["2024-01-01T09:00:00+00:00", "2024-02-05T09:00:00+00:00", "2024-03-04T09:00:00+00:00"])
        XCTAssertEqual(
            try fires("0 9 * * L5", from: "2024-01-01T00:00:00Z", count: 3),
            ["2024-01-26T09:00:00+00:00", "2024-02-23T09:00:00+00:00", "2024-03-29T09:00:00+00:00"])
        XCTAssertEqual(
            try fires("0 9 15W * *", from: "2024-06-01T00:00:00Z", count: 3),
            ["2024-06-14T09:00:00+00:00", "2024-07-15T09:00:00+00:00", "2024-08-15T09:00:00+00:00"])
        XCTAssertEqual(try fires("0 9 1W * *", from: "2024-06-01T00:00:00Z", count: 1), ["2024-06-03T09:00:00+00:00"])
        XCTAssertEqual(
            try fires("0 9 31W * *", from: "2024-06-01T00:00:00Z", count: 2),
            ["2024-06-28T09:00:00+00:00", "2024-07-31T09:00:00+00:00"])
        // croniter keeps W and # rules in both halves of its OR search: "1 * mon#1" is
        // first Mondays only, and "15W * sat" can never fire.
        XCTAssertEqual(
            try fires("0 9 1 * mon#1", from: "2024-01-01T00:00:00Z", count: 3),
            ["2024-01-01T09:00:00+00:00", "2024-02-05T09:00:00+00:00", "2024-03-04T09:00:00+00:00"])
        XCTAssertEqual(
            CronTest.error { () throws(CronError) in _ = try CronSchedule("0 9 15W * sat").next(afterUnixSeconds: 0) },
            .neverFires(expression: "0 9 15W * sat", searchedYears: 50))
    }

    func testImpossibleDatesNeverFire() throws {
        for expression in ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30 2 mon"] {
            let schedule = try CronSchedule(expression)
            XCTAssertEqual(
                CronTest.error { () throws(CronError) in _ = try schedule.next(afterUnixSeconds: 1_700_000_000) },
                .neverFires(expression: expression, searchedYears: 50), expression)
        }
        // Feb 29 skips 2100: eight years apart, still found.
        XCTAssertEqual(try fires("0 0 29 2 *", from: "2097-01-01T00:00:00Z", count: 1), ["2104-02-29T00:00:00+00:00"])
    }

    func testExtremeInstantsDoNotTrap() throws {
        let schedule = try CronSchedule("0 0 1 1 *", timeZone: "America/New_York")
        XCTAssertNoThrow(try schedule.next(afterUnixSeconds: .infinity))
        XCTAssertNoThrow(try schedule.next(afterUnixSeconds: -.infinity))
        XCTAssertNoThrow(try schedule.next(afterUnixSeconds: .nan))
        XCTAssertNoThrow(try schedule.next(afterUnixSeconds: 1e300))
        XCTAssertEqual(try fires("0 0 1 1 *", from: "9998-06-01T00:00:00Z", count: 1), ["9999-01-01T00:00:00+00:00"])
    }

    func testNextIsFast() throws {
        let schedules = try ["*/5 * * * *", "30 2 * * 1-5", "0 0 L * *", "0 9 * * mon#2", "0 0 29 2 *"].map {
            try CronSchedule($0, timeZone: "America/New_York")
        }
        var base = 1_700_000_000.0
        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            for i in 0..<20_000 {
                base += 3_617
                _ = try schedules[i % schedules.count].next(afterUnixSeconds: base)
            }
        }
        // Microseconds per call in release builds; a loose ceiling for debug builds.
        XCTAssertLessThan(elapsed, .seconds(4), "20,000 next() calls took \(elapsed)")
    }
}
