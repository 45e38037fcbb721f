// The time-zone-free half of the engine: the first wall-clock minute at or after a
// given one whose fields all match. It jumps field by field (month, day, hour,
// minute) like croniter's `_calc` loop, so a search costs a handful of steps even
// for `0 0 29 2 *`, and gives up after croniter's 50-year window.

/// A wall-clock minute counted from 1970-01-01 00:00 in no particular zone.
typealias LocalMinute = Int64

/// Calendar arithmetic on proleptic Gregorian civil dates (Howard Hinnant's algorithms).
enum CivilCalendar {
    /// Days since 1970-01-01 of a civil date.
    static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The civil date of a day count since 1970-01-01.
    static func date(days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        let year = Int(yoe + era * 400) + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    /// Day of the week, Sunday = 0.
    static func weekday(days: Int64) -> Int { Int(((days % 7) + 11) % 7) }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Floor division, so that minutes before 1970 land on the right day.
    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }
}

/// The value sets of one search: all five fields AND-ed (croniter's `_calc`).
struct CronMatcher: Sendable {
    var minutes: UInt64
    var hours: UInt64
    var days: UInt64
    var lastDay: Bool
    var months: UInt64
    var weekdays: UInt64
    var anyDay: Bool
    var anyWeekday: Bool
    /// `nW`: only the weekday nearest day n matches (replaces the day set when non-zero).
    var nearestDay: Int
    /// `#n` / `Ln` occurrences per weekday (replaces the weekday set when non-zero).
    var nth: UInt64

    /// croniter's `max_years_between_matches` default.
    static let searchYears = 50

    static func all(_ field: CronField) -> UInt64 {
        field.bounds.reduce(UInt64(0)) { $0 | (1 << UInt64($1)) }
    }

    /// The smallest set bit of `mask` that is >= `from`, if any.
    @inline(__always)
    static func nextBit(_ mask: UInt64, from: Int) -> Int? {
        guard from < 64 else { return nil }
        let rest = mask & (~UInt64(0) << UInt64(from))
        return rest == 0 ? nil : rest.trailingZeroBitCount
    }

    /// The first minute >= `start` matching every field, or nil when none falls within
    /// ``searchYears`` calendar years of `start` (croniter raises CroniterBadDateError).
    func firstMatch(atOrAfter start: LocalMinute) -> LocalMinute? {
        var dayNumber = CivilCalendar.floorDiv(start, 1440)
        var minuteOfDay = Int(start - dayNumber * 1440)
        var (year, month, day) = CivilCalendar.date(days: dayNumber)
        let lastYear = year + Self.searchYears
        var hour = minuteOfDay / 60
        var minute = minuteOfDay % 60

        func startOfDay(_ newDays: Int64) {
            dayNumber = newDays
            (year, month, day) = CivilCalendar.date(days: dayNumber)
            hour = 0
            minute = 0
        }

        while year <= lastYear {
            if months & (1 << UInt64(month)) == 0 {
                if let next = Self.nextBit(months, from: month + 1) {
                    startOfDay(CivilCalendar.days(year: year, month: next, day: 1))
                } else {
                    let first = Self.nextBit(months, from: 1) ?? 1
                    startOfDay(CivilCalendar.days(year: year + 1, month: first, day: 1))
                }
                continue
            }
            if nearestDay > 0 {
                let length = CivilCalendar.daysInMonth(year: year, month: month)
                let target = Self.nearestWeekday(
                    to: nearestDay, firstOfMonth: dayNumber - Int64(day - 1), length: length)
                if day != target {
                    let firstOfMonth = dayNumber - Int64(day - 1)
                    startOfDay(firstOfMonth + Int64((day < target ? target : length + 1) - 1))
                    continue
                }
            } else if !anyDay {
                let length = CivilCalendar.daysInMonth(year: year, month: month)
                if !matchesDay(day, length: length) {
                    var target: Int? = nil
                    var candidate = day + 1
                    while candidate <= length {
                        if matchesDay(candidate, length: length) { target = candidate; break }
                        candidate += 1
                    }
                    let firstOfMonth = dayNumber - Int64(day - 1)
                    startOfDay(firstOfMonth + Int64((target ?? (length + 1)) - 1))
                    continue
                }
            }
            if nth != 0 {
                let length = CivilCalendar.daysInMonth(year: year, month: month)
                let firstOfMonth = dayNumber - Int64(day - 1)
                let target = Self.nextOccurrence(nth, from: day, firstOfMonth: firstOfMonth, length: length)
                if day != target {
                    startOfDay(firstOfMonth + Int64((target ?? (length + 1)) - 1))
                    continue
                }
            } else if !anyWeekday {
                let weekday = CivilCalendar.weekday(days: dayNumber)
                if weekdays & (1 << UInt64(weekday)) == 0 {
                    let next = Self.nextBit(weekdays, from: weekday + 1) ?? ((Self.nextBit(weekdays, from: 0) ?? 0) + 7)
                    startOfDay(dayNumber + Int64(next - weekday))
                    continue
                }
            }
            if hours & (1 << UInt64(hour)) == 0 {
                if let next = Self.nextBit(hours, from: hour + 1), next < 24 {
                    hour = next
                    minute = 0
                } else {
                    startOfDay(dayNumber + 1)
                }
                continue
            }
            if minutes & (1 << UInt64(minute)) == 0 {
                if let next = Self.nextBit(minutes, from: minute + 1), next < 60 {
                    minute = next
                } else if hour < 23 {
                    hour += 1
                    minute = 0
                } else {
                    startOfDay(dayNumber + 1)
                }
                continue
            }
            minuteOfDay = hour * 60 + minute
            return dayNumber * 1440 + Int64(minuteOfDay)
        }
        return nil
    }

    /// croniter's `_get_nearest_weekday`: the Monday-Friday day nearest `day` (clamped
    /// to the month), never leaving the month.
    static func nearestWeekday(to day: Int, firstOfMonth: Int64, length: Int) -> Int {
        let day = min(day, length)
        switch CivilCalendar.weekday(days: firstOfMonth + Int64(day - 1)) {
        case 6: return day > 1 ? day - 1 : day + 2
        case 0: return day < length ? day + 1 : day - 2
        default: return day
        }
    }

    /// The first day >= `from` in this month that is a wanted occurrence of its
    /// weekday (croniter's `proc_day_of_week_nth`), or nil.
    static func nextOccurrence(_ nth: UInt64, from: Int, firstOfMonth: Int64, length: Int) -> Int? {
        let firstWeekday = CivilCalendar.weekday(days: firstOfMonth)
        var best: Int? = nil
        for weekday in 0..<7 {
            let wanted = (nth >> UInt64(8 * weekday)) & 0xFF
            if wanted == 0 { continue }
            let first = 1 + (weekday - firstWeekday + 7) % 7
            let occurrences = (length - first) / 7 + 1
            for n in 1...6 where wanted & (1 << UInt64(n)) != 0 {
                let index = n == 6 ? occurrences : n
                if index > occurrences { continue }
                let candidate = first + 7 * (index - 1)
                if candidate >= from && candidate < (best ?? Int.max) { best = candidate }
            }
        }
        return best
    }

    @inline(__always)
    func matchesDay(_ day: Int, length: Int) -> Bool {
        days & (1 << UInt64(day)) != 0 || (lastDay && day == length)
    }
}
