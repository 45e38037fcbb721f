// Parsing: what each field means after croniter's normalisation, which expressions
// count as fixed-time for the DST rule, and the typed error (field, text, reason) for
// every kind of bad input, plus time-zone lookup.

import HeraldCore
import XCTest

final class CronExpressionTests: XCTestCase {
    private func parse(_ text: String) throws -> CronExpression { try CronExpression(text) }

    private func parseError(_ text: String) -> CronError? {
        CronTest.error { () throws(CronError) in _ = try CronExpression(text) }
    }

    func testMacrosExpand() throws {
        let cases: [(String, [Int], [Int], [Int], [Int], [Int])] = [
            ("@yearly", [0], [0], [1], [1], []),
            ("@annually", [0], [0], [1], [1], []),
            ("@monthly", [0], [0], [1], [], []),
            ("@weekly", [0], [0], [], [], [0]),
            ("@daily", [0], [0], [], [], []),
            ("@midnight", [0], [0], [], [], []),
        ]
        for (macro, minute, hour, day, month, weekday) in cases {
            let e = try parse(macro)
            XCTAssertEqual(e.values(of: .minute), minute, macro)
            XCTAssertEqual(e.values(of: .hour), hour, macro)
            XCTAssertEqual(day.isEmpty ? e.isWildcard(.dayOfMonth) : e.values(of: .dayOfMonth) == day, true, macro)
            XCTAssertEqual(month.isEmpty ? e.isWildcard(.month) : e.values(of: .month) == month, true, macro)
            XCTAssertEqual(
                weekday.isEmpty ? e.isWildcard(.dayOfWeek) : e.values(of: .dayOfWeek) == weekday, true, macro)
            XCTAssertTrue(e.isFixedTime, macro)
        }
        let hourly = try parse("@HOURLY")
        XCTAssertEqual(hourly.values(of: .minute), [0])
        XCTAssertTrue(hourly.isWildcard(.hour))
        XCTAssertFalse(hourly.isFixedTime)
    }

    func testStepsRangesListsAndNames() throws {
        XCTAssertEqual(try parse("*/15 * * * *").values(of: .minute), [0, 15, 30, 45])
        XCTAssertEqual(try parse("5/15 * * * *").values(of: .minute), [5, 20, 35, 50])
        XCTAssertEqual(try parse("1-10/2 * * * *").values(of: .minute), [1, 3, 5, 7, 9])
        XCTAssertEqual(try parse("0 22-2 * * *").values(of: .hour), [0, 1, 2, 22, 23])
        XCTAssertEqual(try parse("0 0 * nov-FEB *").values(of: .month), [1, 2, 11, 12])
        XCTAssertEqual(try parse("0 0 * jan/3 *").values(of: .month), [1, 4, 7, 10])
        XCTAssertEqual(try parse("0 0 * * Mon-FRI").values(of: .dayOfWeek), [1, 2, 3, 4, 5])
        XCTAssertEqual(try parse("0 0 * * fri-mon").values(of: .dayOfWeek), [0, 1, 5, 6])
        XCTAssertEqual(try parse("0 0 * * 7").values(of: .dayOfWeek), [0])
        XCTAssertEqual(try parse("0 0 * * 1-7").values(of: .dayOfWeek), [0, 1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try parse("0 0 1,15,L * *").values(of: .dayOfMonth), [1, 15])
        XCTAssertTrue(try parse("0 0 1,15,L * *").includesLastDayOfMonth)
        XCTAssertTrue(try parse("0 0 l * *").includesLastDayOfMonth)
        XCTAssertEqual(try parse("0 0 20-L/5 * *").values(of: .dayOfMonth), [20, 25, 30])
        XCTAssertEqual(try parse("\t0  0\n* * *").values(of: .hour), [0])
    }

    func testWildcardsFollowCroniter() throws {
        XCTAssertTrue(try parse("0 0 ? * ?").isWildcard(.dayOfMonth))
        XCTAssertTrue(try parse("0 0 ? * ?").isWildcard(.dayOfWeek))
        XCTAssertTrue(try parse("0-59 0-23 * 1-12 *").isWildcard(.minute))
        XCTAssertTrue(try parse("*/1 */1 * * *").isWildcard(.hour))
        XCTAssertFalse(try parse("*/2 * * * *").isWildcard(.minute))
        XCTAssertTrue(try parse("5-5 * * * *").isWildcard(.minute))  // croniter: a-a is the whole cycle
        XCTAssertEqual(try parse("0 0 5-0 * *").values(of: .dayOfMonth), Array(5...31))  // wraps, no error
        XCTAssertTrue(try parse("0 0 */2 * mon").daysCombineWithOr)
        XCTAssertFalse(try parse("0 0 * * mon").daysCombineWithOr)
        XCTAssertFalse(try CronExpression("0 0 */2 * mon", dayOr: false).daysCombineWithOr)
    }

    func testFixedTimeClassification() throws {
        for text in ["30 2 * * *", "0,30 1,2 * * *", "@daily", "0 0 1 1 *", "15 3 * * 1-5"] {
            XCTAssertTrue(try parse(text).isFixedTime, text)
        }
        for text in ["*/5 2 * * *", "0 * * * *", "0 1-3 * * *", "5/15 1 * * *", "0 */2 * * *", "@hourly"] {
            XCTAssertFalse(try parse(text).isFixedTime, text)
        }
    }

    func testErrorsNameTheField() {
        let cases: [(String, CronError)] = [
            ("60 * * * *", .invalidField(field: .minute, text: "60", reason: .outOfRange(value: 60, bounds: 0...59))),
            ("* 25 * * *", .invalidField(field: .hour, text: "25", reason: .outOfRange(value: 25, bounds: 0...23))),
            ("* * 0 * *", .invalidField(field: .dayOfMonth, text: "0", reason: .outOfRange(value: 0, bounds: 1...31))),
            ("* * * 13 *", .invalidField(field: .month, text: "13", reason: .outOfRange(value: 13, bounds: 1...12))),
            ("* * * * 8", .invalidField(field: .dayOfWeek, text: "8", reason: .outOfRange(value: 8, bounds: 0...6))),
            ("* 0-24 * * *", .invalidField(field: .hour, text: "0-24", reason: .outOfRange(value: 24, bounds: 0...23))),
            ("*/0 * * * *", .invalidField(field: .minute, text: "*/0", reason: .zeroStep)),
            ("-1 * * * *", .invalidField(field: .minute, text: "-1", reason: .negativeNumber)),
            ("* * * foo *", .invalidField(field: .month, text: "foo", reason: .unknownName("foo"))),
            ("* * * * jan", .invalidField(field: .dayOfWeek, text: "jan", reason: .unknownName("jan"))),
            ("L * * * *", .invalidField(field: .minute, text: "l", reason: .unknownName("l"))),
            ("? * * * *", .invalidField(field: .minute, text: "?", reason: .misplacedQuestionMark)),
            ("* * ?5 * *", .invalidField(field: .dayOfMonth, text: "?5", reason: .misplacedQuestionMark)),
            ("* * l-5 * *", .invalidField(field: .dayOfMonth, text: "l-5", reason: .malformedRange)),
            ("1,,2 * * * *", .invalidField(field: .minute, text: "", reason: .malformed)),
            ("*/5/2 * * * *", .invalidField(field: .minute, text: "*/5/2", reason: .malformedRange)),
            ("0 0 * * mon#6", .invalidField(field: .dayOfWeek, text: "mon#6", reason: .nthOutOfRange(6))),
            ("0 0 * * 1#2,3", .invalidField(field: .dayOfWeek, text: "1#2,3", reason: .mixedNthWeekday)),
            ("0 0 15w,1 * *", .invalidField(field: .dayOfMonth, text: "15w", reason: .nearestWeekdayNotAlone)),
            (
                "0 0 32W * *",
                .invalidField(field: .dayOfMonth, text: "32w", reason: .outOfRange(value: 32, bounds: 1...31))
            ),
            ("* * * *", .wrongFieldCount(found: 4)),
            ("", .wrongFieldCount(found: 0)),
            (" @daily", .wrongFieldCount(found: 1)),
            ("@reboot", .wrongFieldCount(found: 1)),
            ("0 0 0 1 1 *", .unsupported(field: nil, text: "0 0 0 1 1 *", feature: .secondsOrYears)),
            ("H * * * *", .unsupported(field: .minute, text: "h", feature: .hashedOrRandom)),
            ("0 R * * *", .unsupported(field: .hour, text: "r", feature: .hashedOrRandom)),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(parseError(text), expected, "'\(text)'")
        }
    }

    func testErrorDescriptionsAreReadable() {
        XCTAssertEqual(parseError("* 25 * * *")?.description, "invalid hour field '25': 25 is outside 0-23")
        XCTAssertEqual(
            parseError("* * * *")?.description,
            "a cron expression needs 5 fields (minute hour day-of-month month day-of-week) or an @macro, found 4")
        XCTAssertEqual(
            CronError.neverFires(expression: "0 0 30 2 *", searchedYears: 50).description,
            "'0 0 30 2 *' never fires (no match within 50 years)")
    }

    func testTimeZones() throws {
        XCTAssertEqual(try CronZone(identifier: "America/New_York").identifier, "America/New_York")
        XCTAssertEqual(try CronZone(identifier: "america/new_york").timeZone.identifier, "America/New_York")
        XCTAssertNoThrow(try CronZone(identifier: "UTC"))
        XCTAssertNoThrow(try CronZone(identifier: "Etc/GMT+5"))
        for bad in ["Mars/Olympus", "", "GMT+5", "UTC-03:00", "../etc/passwd", "America/New York"] {
            XCTAssertEqual(
                CronTest.error { () throws(CronError) in _ = try CronZone(identifier: bad) },
                .unknownTimeZone(bad), bad)
        }
        XCTAssertEqual(
            CronTest.error { () throws(CronError) in _ = try CronSchedule("* * * * *", timeZone: "Nowhere") },
            .unknownTimeZone("Nowhere"))
    }
}
