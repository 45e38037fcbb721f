// Every way a cron expression, a time zone or a schedule can be refused, as one
// typed error. Parse errors name the field and the exact piece of text at fault so
// an operator can fix a Dify schedule without reading croniter's source.

/// One of the five fields of a cron expression, in the order they are written.
public enum CronField: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case minute = 0
    case hour = 1
    case dayOfMonth = 2
    case month = 3
    case dayOfWeek = 4

    /// The smallest and largest value the field accepts (croniter's ranges).
    public var bounds: ClosedRange<Int> {
        switch self {
        case .minute: return 0...59
        case .hour: return 0...23
        case .dayOfMonth: return 1...31
        case .month: return 1...12
        case .dayOfWeek: return 0...6
        }
    }

    /// The field's name as an operator would say it ("day-of-month").
    public var description: String {
        switch self {
        case .minute: return "minute"
        case .hour: return "hour"
        case .dayOfMonth: return "day-of-month"
        case .month: return "month"
        case .dayOfWeek: return "day-of-week"
        }
    }
}

/// Why one element of a field was refused.
public enum CronFieldProblem: Sendable, Hashable, CustomStringConvertible {
    /// A number outside the field's bounds (for a range: its larger end).
    case outOfRange(value: Int, bounds: ClosedRange<Int>)
    /// A word that is not a month or weekday name valid in this field.
    case unknownName(String)
    /// A step of zero (`*/0`).
    case zeroStep
    /// A leading minus sign: croniter has no negative values.
    case negativeNumber
    /// `?` combined with other text, or used outside day-of-month and day-of-week.
    case misplacedQuestionMark
    /// A range whose ends are not numbers or names (`l-5`, `1-2-3`).
    case malformedRange
    /// Text that is none of number, name, `*`, range, step or list (including empty list items).
    case malformed
    /// An nth-weekday occurrence outside 1-5 (`mon#6`).
    case nthOutOfRange(Int)
    /// `W` combined with other day-of-month items (croniter allows a single `15W` only).
    case nearestWeekdayNotAlone
    /// Plain weekdays listed beside nth-weekday items (`1#2,3`), which croniter refuses.
    case mixedNthWeekday

    public var description: String {
        switch self {
        case .outOfRange(let value, let bounds):
            return "\(value) is outside \(bounds.lowerBound)-\(bounds.upperBound)"
        case .unknownName(let name):
            return "'\(name)' is not a number or a name this field accepts"
        case .zeroStep: return "a step must be at least 1"
        case .negativeNumber: return "negative numbers are not allowed"
        case .misplacedQuestionMark:
            return "'?' must stand alone, in day-of-month or day-of-week"
        case .malformedRange: return "both ends of a range must be numbers or names"
        case .malformed: return "not a number, name, '*', range, step or list"
        case .nthOutOfRange(let n): return "occurrence \(n) is outside 1-5"
        case .nearestWeekdayNotAlone: return "'W' must be the only day-of-month item"
        case .mixedNthWeekday: return "plain weekdays cannot be mixed with '#' or 'L' weekdays"
        }
    }
}

/// Syntax croniter accepts but Herald deliberately does not (Dify never generates it).
public enum CronUnsupportedFeature: String, Sendable, Hashable, CustomStringConvertible {
    /// Jenkins-style `H` / `R` hashed or random values.
    case hashedOrRandom
    /// Six- or seven-field expressions (seconds, years): Dify accepts five fields only.
    case secondsOrYears

    public var description: String {
        switch self {
        case .hashedOrRandom: return "hashed or random values ('H', 'R')"
        case .secondsOrYears: return "seconds or years fields"
        }
    }
}

/// Every failure of the cron engine.
public enum CronError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The expression does not have five whitespace-separated fields and is not a known `@` macro.
    case wrongFieldCount(found: Int)
    /// One element of one field is invalid. `text` is the element as written (lower-cased).
    case invalidField(field: CronField, text: String, reason: CronFieldProblem)
    /// Valid croniter syntax that Herald refuses.
    case unsupported(field: CronField?, text: String, feature: CronUnsupportedFeature)
    /// The time zone is not an IANA identifier known to this system.
    case unknownTimeZone(String)
    /// No fire time exists within croniter's search window (50 years), e.g. `0 0 30 2 *`.
    case neverFires(expression: String, searchedYears: Int)

    public var description: String {
        switch self {
        case .wrongFieldCount(let found):
            return "a cron expression needs 5 fields (minute hour day-of-month month day-of-week)"
                + " or an @macro, found \(found)"
        case .invalidField(let field, let text, let reason):
            return "invalid \(field) field '\(text)': \(reason)"
        case .unsupported(let field, let text, let feature):
            let place = field.map { " in the \($0) field" } ?? ""
            return "unsupported \(feature)\(place): '\(text)'"
        case .unknownTimeZone(let name):
            return "unknown time zone '\(name)' (expected an IANA name such as Europe/London)"
        case .neverFires(let expression, let years):
            return "'\(expression)' never fires (no match within \(years) years)"
        }
    }
}
