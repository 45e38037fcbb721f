// Daylight-saving behaviour, zone by zone: spring-forward gaps and fall-back overlaps
// for fixed-time and wildcard/step jobs, including 30-minute (Lord Howe) and odd-offset
// (Chatham +12:45/+13:45, Kolkata +5:30) zones. Expected values were checked against
// croniter 6.2.4 + pytz; the only deliberate difference is marked "cron(8)".

import HeraldCore
import XCTest

final class CronDSTTests: XCTestCase {
    // MARK: America/New_York: 2024-03-10 02:00 -> 03:00, 2024-11-03 02:00 -> 01:00

    func testNewYorkFixedTimeInGapFiresOnceAtEndOfGap() throws {
        XCTAssertEqual(
            try CronTest.fires("30 2 * * *", "America/New_York", from: "2024-03-10T00:00:00-05:00", count: 2),
            ["2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"])
    }

    func testNewYorkFixedTimeInOverlapFiresOnceAtFirstOccurrence() throws {
        XCTAssertEqual(
            try CronTest.fires("30 1 * * *", "America/New_York", from: "2024-11-03T00:00:00-04:00", count: 2),
            ["2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"])
        // cron(8) rule vs croniter, which runs the job again an hour later.
        XCTAssertEqual(
            try CronTest.croniterFires("30 1 * * *", "America/New_York", from: "2024-11-03T00:00:00-04:00", count: 2),
            ["2024-11-03T01:30:00-04:00", "2024-11-03T01:30:00-05:00"])
        // Starting inside the repeated hour, after the first occurrence: not again today.
        XCTAssertEqual(
            try CronTest.fires("30 1 * * *", "America/New_York", from: "2024-11-03T01:10:00-05:00", count: 1),
            ["2024-11-04T01:30:00-05:00"])
    }

    func testNewYorkFixedTimeListSkipsOnlyTheRepeat() throws {
        XCTAssertEqual(
            try CronTest.fires("0 1,2 * * *", "America/New_York", from: "2024-11-03T00:30:00-04:00", count: 3),
            ["2024-11-03T01:00:00-04:00", "2024-11-03T02:00:00-05:00", "2024-11-04T01:00:00-05:00"])
    }

    func testNewYorkWildcardJobFiresInBothOccurrences() throws {
        XCTAssertEqual(
            try CronTest.fires("*/30 * * * *", "America/New_York", from: "2024-11-03T00:50:00-04:00", count: 5),
            [
                "2024-11-03T01:00:00-04:00", "2024-11-03T01:30:00-04:00", "2024-11-03T01:00:00-05:00",
                "2024-11-03T01:30:00-05:00", "2024-11-03T02:00:00-05:00",
            ])
        // A range in the hour field is not fixed-time: both 01:00 runs happen, as in croniter.
        XCTAssertEqual(
            try CronTest.fires("0 1-3 * * *", "America/New_York", from: "2024-11-03T00:30:00-04:00", count: 4),
            [
                "2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00", "2024-11-03T02:00:00-05:00",
                "2024-11-03T03:00:00-05:00",
            ])
    }

    func testNewYorkWildcardJobSkipsNonexistentTimes() throws {
        XCTAssertEqual(
            try CronTest.fires("*/30 * * * *", "America/New_York", from: "2024-03-10T01:40:00-05:00", count: 2),
            ["2024-03-10T03:00:00-04:00", "2024-03-10T03:30:00-04:00"])
        XCTAssertEqual(
            try CronTest.fires("30 * * * *", "America/New_York", from: "2024-03-10T01:30:00-05:00", count: 2),
            ["2024-03-10T03:30:00-04:00", "2024-03-10T04:30:00-04:00"])
    }

    func testNewYorkRestrictedHourInGapFollowsCroniter() throws {
        // croniter only skips nonexistent times when the hour field is `*`; a fixed or
        // stepped hour moves to the first instant after the gap, once.
        XCTAssertEqual(
            try CronTest.fires("*/15 2 * * *", "America/New_York", from: "2024-03-10T00:00:00-05:00", count: 3),
            ["2024-03-10T03:00:00-04:00", "2024-03-11T02:00:00-04:00", "2024-03-11T02:15:00-04:00"])
        XCTAssertEqual(
            try CronTest.fires("0 */2 * * *", "America/New_York", from: "2024-03-10T00:30:00-05:00", count: 3),
            ["2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00", "2024-03-10T06:00:00-04:00"])
    }

    // MARK: Europe/London: 2024-03-31 01:00 -> 02:00, 2024-10-27 02:00 -> 01:00

    func testLondonGapAndOverlap() throws {
        XCTAssertEqual(
            try CronTest.fires("30 1 * * *", "Europe/London", from: "2024-03-31T00:00:00+00:00", count: 2),
            ["2024-03-31T02:00:00+01:00", "2024-04-01T01:30:00+01:00"])
        XCTAssertEqual(
            try CronTest.fires("30 1 * * *", "Europe/London", from: "2024-10-27T00:00:00+01:00", count: 2),
            ["2024-10-27T01:30:00+01:00", "2024-10-28T01:30:00+00:00"])
        XCTAssertEqual(
            try CronTest.fires("*/20 1 * * *", "Europe/London", from: "2024-10-27T00:50:00+01:00", count: 7),
            [
                "2024-10-27T01:00:00+01:00", "2024-10-27T01:20:00+01:00", "2024-10-27T01:40:00+01:00",
                "2024-10-27T01:00:00+00:00", "2024-10-27T01:20:00+00:00", "2024-10-27T01:40:00+00:00",
                "2024-10-28T01:00:00+00:00",
            ])
    }

    // MARK: Australia/Lord_Howe: +10:30 / +11, 30-minute shifts at 02:00

    func testLordHoweHalfHourGap() throws {
        XCTAssertEqual(
            try CronTest.fires("15 2 * * *", "Australia/Lord_Howe", from: "2024-10-06T00:00:00+10:30", count: 2),
            ["2024-10-06T02:30:00+11:00", "2024-10-07T02:15:00+11:00"])
        XCTAssertEqual(
            try CronTest.fires("*/10 * * * *", "Australia/Lord_Howe", from: "2024-10-06T01:45:00+10:30", count: 2),
            ["2024-10-06T01:50:00+10:30", "2024-10-06T02:30:00+11:00"])
    }

    func testLordHoweHalfHourOverlap() throws {
        XCTAssertEqual(
            try CronTest.fires("45 1 * * *", "Australia/Lord_Howe", from: "2024-04-07T00:00:00+11:00", count: 2),
            ["2024-04-07T01:45:00+11:00", "2024-04-08T01:45:00+10:30"])
        XCTAssertEqual(
            try CronTest.fires("*/10 * * * *", "Australia/Lord_Howe", from: "2024-04-07T01:25:00+11:00", count: 7),
            [
                "2024-04-07T01:30:00+11:00", "2024-04-07T01:40:00+11:00", "2024-04-07T01:50:00+11:00",
                "2024-04-07T01:30:00+10:30", "2024-04-07T01:40:00+10:30", "2024-04-07T01:50:00+10:30",
                "2024-04-07T02:00:00+10:30",
            ])
    }

    // MARK: Pacific/Chatham: +12:45 / +13:45, shifts at 02:45 / 03:45

    func testChathamGapAndOverlap() throws {
        XCTAssertEqual(
            try CronTest.fires("0 3 * * *", "Pacific/Chatham", from: "2024-09-28T00:00:00+12:45", count: 3),
            ["2024-09-28T03:00:00+12:45", "2024-09-29T03:45:00+13:45", "2024-09-30T03:00:00+13:45"])
        XCTAssertEqual(
            try CronTest.fires("0 3 * * *", "Pacific/Chatham", from: "2024-04-07T00:00:00+13:45", count: 2),
            ["2024-04-07T03:00:00+13:45", "2024-04-08T03:00:00+12:45"])
        XCTAssertEqual(
            try CronTest.fires("*/30 * * * *", "Pacific/Chatham", from: "2024-04-07T02:20:00+13:45", count: 6),
            [
                "2024-04-07T02:30:00+13:45", "2024-04-07T03:00:00+13:45", "2024-04-07T03:30:00+13:45",
                "2024-04-07T03:00:00+12:45", "2024-04-07T03:30:00+12:45", "2024-04-07T04:00:00+12:45",
            ])
    }

    // MARK: zones without DST

    func testKolkataHalfHourOffset() throws {
        XCTAssertEqual(
            try CronTest.fires("30 2 * * *", "Asia/Kolkata", from: "2024-03-10T00:00:00+05:30", count: 2),
            ["2024-03-10T02:30:00+05:30", "2024-03-11T02:30:00+05:30"])
        XCTAssertEqual(
            try CronTest.fires("0 * * * *", "Asia/Kolkata", from: "2024-03-10T00:10:00+05:30", count: 2),
            ["2024-03-10T01:00:00+05:30", "2024-03-10T02:00:00+05:30"])
    }

    func testUTCHasNoGapOrOverlap() throws {
        XCTAssertEqual(
            try CronTest.fires("30 2 * * *", "UTC", from: "2024-03-10T00:00:00+00:00", count: 2),
            ["2024-03-10T02:30:00+00:00", "2024-03-11T02:30:00+00:00"])
        XCTAssertEqual(
            try CronTest.fires("30 1 * * *", "UTC", from: "2024-11-03T00:00:00+00:00", count: 2),
            ["2024-11-03T01:30:00+00:00", "2024-11-04T01:30:00+00:00"])
    }

    // MARK: America/Santiago: transitions at midnight

    func testSantiagoMidnightTransitions() throws {
        XCTAssertEqual(
            try CronTest.fires("0 0 * * *", "America/Santiago", from: "2024-09-07T20:00:00-04:00", count: 2),
            ["2024-09-08T01:00:00-03:00", "2024-09-09T00:00:00-03:00"])
        XCTAssertEqual(
            try CronTest.fires("30 23 * * *", "America/Santiago", from: "2024-04-06T20:00:00-03:00", count: 2),
            ["2024-04-06T23:30:00-03:00", "2024-04-07T23:30:00-04:00"])
    }

    func testSecondOccurrenceDetection() throws {
        let schedule = try CronSchedule("30 1 * * *", timeZone: "America/New_York")
        let first = try schedule.croniterNext(
            afterUnixMicros: Int64(CronTest.seconds("2024-11-03T00:00:00-04:00")) * 1_000_000)
        let second = try schedule.croniterNext(afterUnixMicros: first.unixSeconds * 1_000_000)
        XCTAssertFalse(schedule.isSecondOccurrence(first))
        XCTAssertTrue(schedule.isSecondOccurrence(second))
        XCTAssertEqual(second.unixSeconds - first.unixSeconds, 3600)
    }
}
