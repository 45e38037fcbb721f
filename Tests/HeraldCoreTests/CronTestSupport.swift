// Helpers shared by the cron tests: they speak ISO-8601 with offsets, the form in
// which DST cases are easiest to read and to check against croniter by hand.

import Foundation
import HeraldCore
import XCTest

enum CronTest {
    /// Unix seconds of an ISO-8601 instant with offset, e.g. `2024-03-10T01:30:00-05:00`.
    static func seconds(_ iso: String, file: StaticString = #filePath, line: UInt = #line) -> Double {
        let formatter = ISO8601DateFormatter()
        guard let date = formatter.date(from: iso) else {
            XCTFail("bad ISO-8601 literal \(iso)", file: file, line: line)
            return 0
        }
        return date.timeIntervalSince1970
    }

    /// The next `count` fires of `expression` in `zone` after `from`, as ISO-8601 strings.
    static func fires(
        _ expression: String, _ zone: String, from: String, count: Int, dayOr: Bool = true
    ) throws -> [String] {
        let schedule = CronSchedule(
            expression: try CronExpression(expression, dayOr: dayOr), zone: try CronZone(identifier: zone))
        return try schedule.fires(afterUnixSeconds: seconds(from), count: count).map(\.iso8601)
    }

    /// croniter's own answers (no fall-back rule), for the tests that show the difference.
    static func croniterFires(_ expression: String, _ zone: String, from: String, count: Int) throws -> [String] {
        let schedule = try CronSchedule(expression, timeZone: zone)
        var cursor = Int64(seconds(from) * 1_000_000)
        var out: [String] = []
        for _ in 0..<count {
            let fire = try schedule.croniterNext(afterUnixMicros: cursor)
            out.append(fire.iso8601)
            cursor = fire.unixSeconds * 1_000_000
        }
        return out
    }

    /// The error `body` throws, or nil.
    static func error(_ body: () throws(CronError) -> Void) -> CronError? {
        do {
            try body()
            return nil
        } catch {
            return error
        }
    }
}
