// A cron expression bound to a time zone: the answer to "when does this Dify
// schedule fire next?". It reproduces croniter 6.2's `get_next` (as Dify calls it:
// base localized with pytz) step for step, DST corrections included, with one
// deliberate change: a fixed-time job fires once, not twice, when its wall-clock
// time repeats at a fall-back transition (cron(8)'s rule). See docs/cron.md.

import Foundation

/// A fire time: the instant (Unix seconds) and the zone's UTC offset at that instant.
public struct CronFire: Sendable, Hashable {
    /// Unix seconds; always on a whole wall-clock minute of the zone.
    public let unixSeconds: Int64
    /// Seconds east of UTC in force at the fire.
    public let offset: Int

    /// The fire as a Foundation date.
    public var date: Date { Date(timeIntervalSince1970: TimeInterval(unixSeconds)) }

    /// The fire as ISO-8601 wall-clock time with its offset, e.g. `2026-03-08T03:00:00-04:00`.
    public var iso8601: String {
        let local = unixSeconds + Int64(offset)
        let days = CivilCalendar.floorDiv(local, 86_400)
        let second = Int(local - days * 86_400)
        let (year, month, day) = CivilCalendar.date(days: days)
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let yearText = year >= 0 && year < 10_000 ? String(String(year + 10_000).dropFirst()) : String(year)
        let sign = offset < 0 ? "-" : "+"
        let magnitude = abs(offset)
        var zone = "\(sign)\(two(magnitude / 3600)):\(two(magnitude / 60 % 60))"
        if magnitude % 60 != 0 { zone += ":\(two(magnitude % 60))" }
        return
            "\(yearText)-\(two(month))-\(two(day))T\(two(second / 3600)):\(two(second / 60 % 60)):\(two(second % 60))"
            + zone
    }
}

/// A cron expression evaluated in one IANA time zone.
///
/// ```swift
/// let schedule = try CronSchedule("30 2 * * *", timeZone: "America/New_York")
/// let fire = try schedule.next(after: Date())
/// ```
public struct CronSchedule: Sendable, Hashable {
    /// The parsed expression.
    public let expression: CronExpression
    /// The zone whose wall clock the expression reads.
    public let zone: CronZone

    /// Binds an already parsed expression to a zone.
    public init(expression: CronExpression, zone: CronZone) {
        self.expression = expression
        self.zone = zone
    }

    /// Parses `expression` and looks up `timeZone` (an IANA name).
    public init(_ expression: String, timeZone: String = "UTC") throws(CronError) {
        self.init(expression: try CronExpression(expression), zone: try CronZone(identifier: timeZone))
    }

    /// The first fire strictly after `instant`.
    /// - Throws: ``CronError/neverFires(expression:searchedYears:)`` when croniter would
    ///   find nothing within 50 years (e.g. `0 0 30 2 *`).
    public func next(after instant: Date) throws(CronError) -> Date {
        try nextFire(afterUnixMicros: Self.micros(instant)).date
    }

    /// The first fire strictly after `unixSeconds` (fractions allowed), as Unix seconds.
    public func next(afterUnixSeconds unixSeconds: Double) throws(CronError) -> Int64 {
        try nextFire(afterUnixMicros: Self.micros(unixSeconds)).unixSeconds
    }

    /// The next `count` fires after `instant`, each strictly after the one before.
    public func sequence(after instant: Date, count: Int) throws(CronError) -> [Date] {
        try fires(afterUnixMicros: Self.micros(instant), count: count).map(\.date)
    }

    /// The next `count` fires after `unixSeconds`, with their UTC offsets.
    public func fires(afterUnixSeconds unixSeconds: Double, count: Int) throws(CronError) -> [CronFire] {
        try fires(afterUnixMicros: Self.micros(unixSeconds), count: count)
    }

    /// The first fire strictly after `micros` (Unix microseconds), with Herald's DST rule.
    public func nextFire(afterUnixMicros micros: Int64) throws(CronError) -> CronFire {
        var fire = try croniterNext(afterUnixMicros: micros)
        guard expression.isFixedTime else { return fire }
        // cron(8): a fixed-time job whose wall-clock time repeats fires at the first
        // occurrence only. croniter also fires at the second; skip that one.
        var skipped = 0
        while isSecondOccurrence(fire) && skipped < 8 {
            fire = try croniterNext(afterUnixMicros: fire.unixSeconds * 1_000_000)
            skipped += 1
        }
        return fire
    }

    /// croniter's own answer, without Herald's fall-back rule (for comparison and tests).
    public func croniterNext(afterUnixMicros now: Int64) throws(CronError) -> CronFire {
        let nowOffset = zone.offset(atUnixSeconds: CivilCalendar.floorDiv(now, 1_000_000))
        if expression.daysCombineWithOr {
            // croniter computes the day-of-month-only and weekday-only answers (each with
            // its own DST handling) and keeps the earlier; either failing fails the whole.
            let byDay = try calc(now, nowOffset, expression.matcher(ignoringDayOfWeek: true))
            let byWeekday = try calc(now, nowOffset, expression.matcher(ignoringDayOfMonth: true))
            return byDay.unixSeconds < byWeekday.unixSeconds ? byDay : byWeekday
        }
        return try calc(now, nowOffset, expression.matcher())
    }

    /// Whether `fire` is the later of two instants showing the same wall-clock minute.
    public func isSecondOccurrence(_ fire: CronFire) -> Bool {
        let local = zone.localMinute(atUnixMicros: fire.unixSeconds * 1_000_000, offset: fire.offset)
        let instants = zone.instants(of: local)
        return instants.count > 1 && instants.last?.instant == fire.unixSeconds
    }

    // MARK: - croniter's `_calc`, DST part

    /// One croniter `_calc` from aware `now`: search wall-clock time, then correct for DST.
    private func calc(_ now: Int64, _ nowOffset: Int, _ matcher: CronMatcher) throws(CronError) -> CronFire {
        let wallNow = now + Int64(nowOffset) * 1_000_000
        guard var local = matcher.firstMatch(atOrAfter: CivilCalendar.floorDiv(wallNow, 60_000_000) + 1) else {
            throw neverFires
        }
        var (fire, exists) = attachZone(local, now: now)
        if !exists && (fire.unixSeconds * 1_000_000 <= now || expression.isWildcard(.hour)) {
            // A wildcard-hour job skips wall-clock times that do not exist; a job with a
            // restricted hour keeps croniter's "first instant after the gap" instead.
            while !exists {
                guard let later = matcher.firstMatch(atOrAfter: local + 1) else { throw neverFires }
                local = later
                (fire, exists) = attachZone(local, now: now)
            }
        }
        let delta = fire.offset - nowOffset
        if delta == 0 { return fire }
        // The offset changed between now and the answer: croniter retries the search from
        // now shifted by the change and keeps whichever answer comes first in real time.
        let shiftedStart = CivilCalendar.floorDiv(wallNow + Int64(delta) * 1_000_000, 60_000_000) + 1
        guard let alternativeLocal = matcher.firstMatch(atOrAfter: shiftedStart) else { throw neverFires }
        let (alternative, _) = attachZone(alternativeLocal, now: now)
        if alternative.unixSeconds * 1_000_000 <= now { return fire }
        return fire.unixSeconds > alternative.unixSeconds ? alternative : fire
    }

    /// croniter's `_add_tzinfo` with pytz: a gap moves forward to the first existing
    /// minute (reported as not existing); an overlap takes the earlier instant if it is
    /// after `now`, else the later one.
    private func attachZone(_ local: LocalMinute, now: Int64) -> (CronFire, exists: Bool) {
        let instants = zone.instants(of: local)
        if let only = instants.first, instants.count == 1 {
            return (CronFire(unixSeconds: only.instant, offset: only.offset), true)
        }
        if let earlier = instants.first, let later = instants.last {
            let pick = earlier.instant * 1_000_000 > now ? earlier : later
            return (CronFire(unixSeconds: pick.instant, offset: pick.offset), true)
        }
        var probe = local
        for _ in 0..<(3 * 1440) {
            probe += 1
            if let first = zone.instants(of: probe).first {
                return (CronFire(unixSeconds: first.instant, offset: first.offset), false)
            }
        }
        // Unreachable with real zone data (no gap lasts three days); fail safe as UTC.
        return (CronFire(unixSeconds: local * 60, offset: 0), false)
    }

    private var neverFires: CronError {
        .neverFires(expression: expression.source, searchedYears: CronMatcher.searchYears)
    }

    private func fires(afterUnixMicros micros: Int64, count: Int) throws(CronError) -> [CronFire] {
        var result: [CronFire] = []
        var cursor = micros
        for _ in 0..<max(0, count) {
            let fire = try nextFire(afterUnixMicros: cursor)
            result.append(fire)
            cursor = fire.unixSeconds * 1_000_000
        }
        return result
    }

    static func micros(_ date: Date) -> Int64 { micros(date.timeIntervalSince1970) }

    /// Rounds to whole microseconds as Python's `datetime.fromtimestamp` does; clamps
    /// non-finite or absurd values to years 1..9999 so no input can trap.
    static func micros(_ seconds: Double) -> Int64 {
        let limit = 253_402_300_799.0  // 9999-12-31T23:59:59Z
        let clamped = seconds.isFinite ? min(max(seconds, -62_135_596_800), limit) : 0
        return Int64((clamped * 1_000_000).rounded(.toNearestOrEven))
    }
}
