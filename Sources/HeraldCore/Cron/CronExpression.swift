// A parsed five-field cron expression, independent of any time zone. It keeps each
// field as a bit set plus croniter's notion of "this field is `*`", because that
// notion (not the set of values) decides the day-of-month/day-of-week OR rule and the
// DST behaviour, and Dify's schedules must fire exactly when croniter says they do.

/// A validated cron expression in croniter's dialect (Dify's `croniter>=6.2.2,<7`).
///
/// Accepted: five fields `minute hour day-of-month month day-of-week`; numbers, `*`,
/// ranges `a-b` (wrapping when `a > b`), steps `*/n`, `a-b/n`, `a/n`; comma lists;
/// month names `jan`…`dec` and weekday names `sun`…`sat` (any case); `L` (last day)
/// in day-of-month, also inside lists; `?` (same as `*`) in day-of-month and
/// day-of-week; Sunday as `0` or `7`; and the macros `@yearly`, `@annually`,
/// `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`. Also croniter's
/// extensions `mon#2` (second Monday), `L5` (last Friday) and `15W` (weekday
/// nearest the 15th), with croniter's semantics.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    /// The text the expression was parsed from, unchanged.
    public let source: String
    /// Whether day-of-month and day-of-week combine with OR when both are restricted
    /// (croniter's `day_or`, true by default and in Dify).
    public let dayOr: Bool

    let minuteMask: UInt64
    let hourMask: UInt64
    let dayMask: UInt64
    let monthMask: UInt64
    let weekdayMask: UInt64
    /// `L` appears in day-of-month.
    public let includesLastDayOfMonth: Bool
    let wildcards: Set<CronField>
    /// Day-of-week `#n` / `Ln` occurrences, one byte per weekday (see `CronParser.Field.nth`).
    let nthWeekdays: UInt64
    /// Day-of-month `nW` (0 when absent).
    let nearestWeekdayDay: Int

    /// Whether the job is a cron(8) "fixed-time" job: its minute and hour fields hold
    /// only plain numbers or lists of numbers (no `*`, step or range). Such a job fires
    /// once, at the first occurrence, when its local time repeats at a DST fall-back.
    public let isFixedTime: Bool

    /// Parses `text`, throwing a ``CronError`` that names the offending field.
    /// - Parameters:
    ///   - text: the expression, e.g. `"30 2 * * 1-5"` or `"@daily"`.
    ///   - dayOr: croniter's `day_or`; leave it true for Dify compatibility.
    public init(_ text: String, dayOr: Bool = true) throws(CronError) {
        let parsed = try CronParser.parse(text)
        source = text
        self.dayOr = dayOr
        minuteMask = parsed[0].mask
        hourMask = parsed[1].mask
        dayMask = parsed[2].mask
        monthMask = parsed[3].mask
        weekdayMask = parsed[4].mask
        includesLastDayOfMonth = parsed[2].last
        var stars = Set<CronField>()
        for field in CronField.allCases where parsed[field.rawValue].isWildcard { stars.insert(field) }
        wildcards = stars
        nthWeekdays = parsed[4].nth
        nearestWeekdayDay = parsed[2].nearest
        isFixedTime = parsed[0].isPlainList && parsed[1].isPlainList
    }

    /// Whether croniter treats `field` as unrestricted (`*`, `?`, or every value listed).
    /// A stepped field such as `*/2` is restricted even though it starts with `*`.
    public func isWildcard(_ field: CronField) -> Bool { wildcards.contains(field) }

    /// The values the field matches, ascending (day-of-month excludes `L`; see
    /// ``includesLastDayOfMonth``). Sunday is `0`.
    public func values(of field: CronField) -> [Int] {
        let mask: UInt64
        switch field {
        case .minute: mask = minuteMask
        case .hour: mask = hourMask
        case .dayOfMonth: mask = dayMask
        case .month: mask = monthMask
        case .dayOfWeek: mask = weekdayMask
        }
        return field.bounds.filter { mask & (1 << UInt64($0)) != 0 }
    }

    /// True when a day matches if EITHER its day-of-month or its weekday matches: both
    /// fields are restricted and ``dayOr`` is set. Otherwise both must match.
    public var daysCombineWithOr: Bool {
        dayOr && !isWildcard(.dayOfMonth) && !isWildcard(.dayOfWeek)
    }

    public var description: String { source }

    /// The value sets to search with; croniter's OR mode searches once ignoring each day
    /// field. Like croniter, it never ignores `W` or `#`/`Ln` items: their rules replace
    /// the plain day-of-month and weekday checks in both searches.
    func matcher(ignoringDayOfMonth: Bool = false, ignoringDayOfWeek: Bool = false) -> CronMatcher {
        let allDays = ignoringDayOfMonth || isWildcard(.dayOfMonth)
        let allWeekdays = ignoringDayOfWeek || isWildcard(.dayOfWeek)
        return CronMatcher(
            minutes: isWildcard(.minute) ? CronMatcher.all(.minute) : minuteMask,
            hours: isWildcard(.hour) ? CronMatcher.all(.hour) : hourMask,
            days: allDays ? CronMatcher.all(.dayOfMonth) : dayMask,
            lastDay: allDays ? false : includesLastDayOfMonth,
            months: isWildcard(.month) ? CronMatcher.all(.month) : monthMask,
            weekdays: allWeekdays ? CronMatcher.all(.dayOfWeek) : weekdayMask,
            anyDay: allDays,
            anyWeekday: allWeekdays,
            nearestDay: nearestWeekdayDay,
            nth: nthWeekdays
        )
    }
}
