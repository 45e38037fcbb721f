// Turns cron text into bit sets the way croniter 6.2 `_expand` does, quirks included
// (`5-5` means every minute, `50-10/15` restarts its step at 6, `0-0` in day-of-month
// is every day), because Dify stores whatever croniter accepted and Herald must fire
// those schedules at the same instants. Differences are listed in docs/cron.md.

enum CronParser {
    /// One parsed field: the matched values as bits, plus croniter's flags.
    struct Field: Sendable {
        var mask: UInt64 = 0
        var last = false
        var isWildcard = false
        var isPlainList = false
        /// Day-of-week `#n` / `Ln` items: byte `w` holds bit n (1-5) or ``lastOccurrence``.
        var nth: UInt64 = 0
        /// Day-of-month `nW`: the day whose nearest weekday fires (0 when absent).
        var nearest = 0
    }

    /// The bit for "last occurrence in the month" (`L5`) in a ``Field/nth`` byte.
    static let lastOccurrence: UInt64 = 1 << 6

    /// croniter's macro table (the non-hashed column).
    static let macros: [String: String] = [
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
        "@daily": "0 0 * * *",
        "@weekly": "0 0 * * 0",
        "@monthly": "0 0 1 * *",
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
    ]

    static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let weekdayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
    /// A number larger than any field bound or useful step; parsing saturates here.
    static let saturation = 1_000_000

    static func parse(_ text: String) throws(CronError) -> [Field] {
        let lowered = asciiLowercased(text)
        let body = macros[lowered] ?? lowered
        let parts = splitOnWhitespace(body)
        guard parts.count == 5 else {
            if parts.count == 6 || parts.count == 7 {
                throw .unsupported(field: nil, text: text, feature: .secondsOrYears)
            }
            throw .wrongFieldCount(found: parts.count)
        }
        var fields: [Field] = []
        for field in CronField.allCases {
            fields.append(try parseField(field, parts[field.rawValue], dayText: parts[2], weekdayText: parts[4]))
        }
        return fields
    }

    static func parseField(
        _ field: CronField, _ raw: String, dayText: String, weekdayText: String
    ) throws(CronError) -> Field {
        if isHashedOrRandom(raw) { throw .unsupported(field: field, text: raw, feature: .hashedOrRandom) }
        var text = raw
        if raw.contains("?") {
            guard raw == "?", field == .dayOfMonth || field == .dayOfWeek else {
                throw .invalidField(field: field, text: raw, reason: .misplacedQuestionMark)
            }
            text = "*"
        }
        var result = Field()
        var count = 0
        func add(_ value: Int, _ element: String) throws(CronError) {
            let value = alias(value, field)
            guard field.bounds.contains(value) else {
                throw .invalidField(
                    field: field, text: element, reason: .outOfRange(value: value, bounds: field.bounds))
            }
            let bit: UInt64 = 1 << UInt64(value)
            if result.mask & bit == 0 { count += 1 }
            result.mask |= bit
        }
        let elements = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        for original in elements {
            var element = original
            var occurrence: UInt64 = 0
            if field == .dayOfWeek, let special = try nthWeekday(original) {
                (element, occurrence) = special
            }
            if field == .dayOfMonth, let day = nearestWeekdayDay(original) {
                guard (1...31).contains(day) else {
                    throw .invalidField(field: field, text: original, reason: .outOfRange(value: day, bounds: 1...31))
                }
                guard elements.count == 1 else {
                    throw .invalidField(field: field, text: original, reason: .nearestWeekdayNotAlone)
                }
                result.nearest = day
                try add(day, original)
                continue
            }
            var values: [Int] = []
            if let range = try stepRange(field, element) {
                values = range
            } else {
                switch try singleValue(field, element) {
                case .star:
                    if !result.isWildcard { count += 1 }
                    result.isWildcard = true
                case .last:
                    if !result.last { count += 1 }
                    result.last = true
                case .number(let value):
                    values = [value]
                }
            }
            for value in values {
                try add(value, original)
                if occurrence != 0 { result.nth |= occurrence << UInt64(8 * alias(value, field)) }
            }
        }
        // croniter collapses a field listing every value to `*`, except day-of-month
        // (day-of-week) when the other day field contains no `*` character.
        let full = [60, 24, 31, 12, 7][field.rawValue]
        if count == full {
            let keep =
                (field == .dayOfMonth && !weekdayText.contains("*"))
                || (field == .dayOfWeek && !dayText.contains("*"))
            if !keep { result.isWildcard = true }
        }
        if result.nth != 0 {
            // croniter refuses plain weekdays beside nth ones unless all seven are listed.
            var plain = result.mask
            for weekday in 0..<7 where (result.nth >> UInt64(8 * weekday)) & 0xFF != 0 {
                plain &= ~(UInt64(1) << UInt64(weekday))
            }
            if plain != 0 && count != full {
                throw .invalidField(field: field, text: raw, reason: .mixedNthWeekday)
            }
        }
        result.isPlainList = !raw.isEmpty && raw.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || $0 == 44 }
        return result
    }

    enum Single { case star, last, number(Int) }

    /// A lone element: `*`, a number, a name, or `l` in day-of-month.
    static func singleValue(_ field: CronField, _ element: String) throws(CronError) -> Single {
        if element.hasPrefix("-") { throw .invalidField(field: field, text: element, reason: .negativeNumber) }
        if element == "*" { return .star }
        if let number = decimal(element) { return .number(number) }
        if element.isEmpty || element.contains("/") || element.contains("-") {
            throw .invalidField(field: field, text: element, reason: .malformed)
        }
        switch name(field, element) {
        case .some(.last): return .last
        case .some(let value): return value
        case .none: throw .invalidField(field: field, text: element, reason: .unknownName(element))
        }
    }

    /// Values of a range or step element, or nil when the element is neither.
    static func stepRange(_ field: CronField, _ element: String) throws(CronError) -> [Int]? {
        let lo = field.bounds.lowerBound, hi = field.bounds.upperBound
        var candidate = element
        if element.hasPrefix("*/") && element.count > 2 { candidate = "\(lo)-\(hi)" + element.dropFirst() }
        var parts = splitStepRange(candidate)
        if parts == nil, let slash = lastUsableSlash(element) {
            candidate = String(element[..<slash]) + "-\(hi)" + String(element[slash...])
            parts = splitStepRange(candidate)
            if parts == nil { throw .invalidField(field: field, text: element, reason: .malformed) }
        }
        guard let (lowText, highTextRaw, stepText) = parts else { return nil }
        let highText = (field == .dayOfMonth && highTextRaw == "l") ? "31" : highTextRaw
        let low = try bound(field, lowText, element)
        let high = try bound(field, highText, element)
        let step = stepText.map { decimal($0) ?? saturation } ?? 1
        if step == 0 { throw .invalidField(field: field, text: element, reason: .zeroStep) }
        let a = alias(low, field), b = alias(high, field)
        if max(a, b) > hi {
            throw .invalidField(
                field: field, text: element, reason: .outOfRange(value: max(a, b), bounds: field.bounds))
        }
        if a == b { return Array(stride(from: lo, through: hi, by: step)) }
        if a < b { return Array(stride(from: a, through: b, by: step)) }
        // Wrapping range (`fri-mon`, `50-10/15`): croniter's own restart rule.
        var values = Array(stride(from: a, through: hi, by: step))
        var skip = 0
        if let last = values.last {
            let alreadySkipped = hi - last
            if (last - lo) + step > (hi - lo + 1) && alreadySkipped < step { skip = step - alreadySkipped }
        }
        values += Array(stride(from: lo + skip, through: b, by: step))
        return values
    }

    /// One end of a range: digits or a name; `l` is refused (croniter's "bands" check).
    static func bound(_ field: CronField, _ text: String, _ element: String) throws(CronError) -> Int {
        if let number = decimal(text) { return number }
        switch name(field, text) {
        case .some(.number(let value)): return value
        case .some: throw .invalidField(field: field, text: element, reason: .malformedRange)
        case .none:
            if text.contains("/") || text.contains("*") || text.isEmpty {
                throw .invalidField(field: field, text: element, reason: .malformedRange)
            }
            throw .invalidField(field: field, text: element, reason: .unknownName(text))
        }
    }

    /// croniter's `ALPHACONV`: month names, weekday names, and `l` in day-of-month.
    static func name(_ field: CronField, _ text: String) -> Single? {
        switch field {
        case .month: return monthNames.firstIndex(of: text).map { .number($0 + 1) }
        case .dayOfWeek: return weekdayNames.firstIndex(of: text).map { .number($0) }
        case .dayOfMonth: return text == "l" ? .last : nil
        case .minute, .hour: return nil
        }
    }

    /// croniter's `LOWMAP` for five-field expressions: only day-of-week 7 becomes 0.
    static func alias(_ value: Int, _ field: CronField) -> Int {
        field == .dayOfWeek && value == 7 ? 0 : value
    }

    /// `^([^-]+)-([^-/]+)(/(\d+))?$` → (low, high, step digits).
    static func splitStepRange(_ text: String) -> (String, String, String?)? {
        guard let dash = text.firstIndex(of: "-"), dash != text.startIndex else { return nil }
        let low = String(text[..<dash])
        let rest = text[text.index(after: dash)...]
        let highEnd = rest.firstIndex(where: { $0 == "-" || $0 == "/" }) ?? rest.endIndex
        let high = String(rest[..<highEnd])
        guard !high.isEmpty else { return nil }
        let tail = rest[highEnd...]
        if tail.isEmpty { return (low, high, nil) }
        guard tail.first == "/" else { return nil }
        let digits = String(tail.dropFirst())
        guard decimal(digits) != nil else { return nil }
        return (low, high, digits)
    }

    /// The split point of `^(.+)/(.+)$`: the last `/` with text on both sides.
    static func lastUsableSlash(_ text: String) -> String.Index? {
        var index = text.endIndex
        while let slash = text[..<index].lastIndex(of: "/") {
            if slash != text.startIndex && text.index(after: slash) != text.endIndex { return slash }
            index = slash
        }
        return nil
    }

    /// ASCII digits only, saturating at ``saturation``; nil for anything else.
    static func decimal<S: StringProtocol>(_ text: S) -> Int? {
        guard !text.isEmpty else { return nil }
        var value = 0
        for byte in text.utf8 {
            guard byte >= 48 && byte <= 57 else { return nil }
            value = min(saturation, value * 10 + Int(byte - 48))
        }
        return value
    }

    /// croniter's `special_dow_re`: `X#n` (X a weekday, weekday range, month name or
    /// word) and `Ln`. Returns the text left to parse and its occurrence bit.
    static func nthWeekday(_ element: String) throws(CronError) -> (String, UInt64)? {
        if element.hasPrefix("l"), decimal(element.dropFirst()) != nil {
            return (String(element.dropFirst()), lastOccurrence)
        }
        let pieces = element.split(separator: "#", omittingEmptySubsequences: false)
        guard pieces.count == 2, let occurrence = decimal(pieces[1]) else { return nil }
        let head = String(pieces[0])
        let isWord =
            !head.isEmpty
            && head.utf8.allSatisfy { byte in
                (byte >= 48 && byte <= 57) || (byte >= 97 && byte <= 122) || byte == 95
            }
        let ends = head.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        let isNameRange =
            ends.count == 2
            && ((weekdayNames.contains(ends[0]) && weekdayNames.contains(ends[1]))
                || (monthNames.contains(ends[0]) && monthNames.contains(ends[1])))
        guard isWord || isNameRange else { return nil }
        guard (1...5).contains(occurrence) else {
            throw .invalidField(field: .dayOfWeek, text: element, reason: .nthOutOfRange(occurrence))
        }
        return (head, UInt64(1) << UInt64(occurrence))
    }

    /// croniter's `nearest_weekday_re`: `15w` or `w15`; the day, or nil.
    static func nearestWeekdayDay(_ element: String) -> Int? {
        guard element.count > 1 else { return nil }
        if element.hasSuffix("w"), let day = decimal(element.dropLast()) { return day }
        if element.hasPrefix("w"), let day = decimal(element.dropFirst()) { return day }
        return nil
    }

    /// croniter's hash expander pattern: `h`, `r`, optionally `(a-b)` and `/n`.
    static func isHashedOrRandom(_ text: String) -> Bool {
        guard let first = text.first, first == "h" || first == "r" else { return false }
        var rest = text.dropFirst()
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return false }
            let inner = rest[rest.index(after: rest.startIndex)..<close]
            let ends = inner.split(separator: "-", omittingEmptySubsequences: false)
            guard ends.count == 2, decimal(ends[0]) != nil, decimal(ends[1]) != nil else { return false }
            rest = rest[rest.index(after: close)...]
        }
        if rest.isEmpty { return true }
        return rest.first == "/" && decimal(rest.dropFirst()) != nil
    }

    static func asciiLowercased(_ text: String) -> String {
        String(decoding: text.utf8.map { ($0 >= 65 && $0 <= 90) ? $0 + 32 : $0 }, as: UTF8.self)
    }

    /// Python's `str.split()`: runs of Unicode whitespace (including U+001C–U+001F) separate fields.
    static func splitOnWhitespace(_ text: String) -> [String] {
        var parts: [String] = []
        var current = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isPythonWhitespace(scalar) {
                if !current.isEmpty { parts.append(String(current)); current = String.UnicodeScalarView() }
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { parts.append(String(current)) }
        return parts
    }

    static func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }
}
