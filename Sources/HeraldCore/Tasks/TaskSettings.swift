// Tasks read Dify's settings by their environment names (ENABLE_*, LOG_TZ,
// CELERY_BEAT_SCHEDULER_TIME, *_INTERVAL). This is the one place that turns those
// strings into typed values, with Dify's (pydantic's) parsing rules and an error
// that names the key, so `herald tasks`, the daemon and the tasks agree.

/// Why a setting's value is unusable.
public enum TaskSettingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The value is not a boolean pydantic accepts (`true/false`, `1/0`, `yes/no`, `on/off`, `t/f`, `y/n`).
    case notBoolean(key: String, value: String)
    /// The value is not a whole number within `range`.
    case notInteger(key: String, value: String, range: ClosedRange<Int>)
    /// The value is not a finite number greater than zero.
    case notPositiveNumber(key: String, value: String)
    /// `LOG_TZ` (or another zone setting) is not an IANA zone name.
    case unknownTimeZone(key: String, value: String)

    /// The setting at fault.
    public var key: String {
        switch self {
        case .notBoolean(let key, _), .notInteger(let key, _, _), .notPositiveNumber(let key, _),
            .unknownTimeZone(let key, _):
            return key
        }
    }

    public var description: String {
        switch self {
        case .notBoolean(let key, let value):
            return "\(key): expected true or false, got \"\(value)\""
        case .notInteger(let key, let value, let range):
            return "\(key): expected an integer in \(range.lowerBound)...\(range.upperBound), got \"\(value)\""
        case .notPositiveNumber(let key, let value):
            return "\(key): expected a number greater than 0, got \"\(value)\""
        case .unknownTimeZone(let key, let value):
            return "\(key): unknown time zone \"\(value)\" (expected an IANA name such as Asia/Shanghai)"
        }
    }
}

/// A read-only view of the environment's settings, with typed accessors.
///
/// An unset or empty value means "use the default", as in Dify's pydantic settings.
public struct TaskSettings: Sendable {
    /// The raw values by environment name.
    public let values: [String: String]

    /// Wraps a dictionary such as `ProcessInfo.processInfo.environment`.
    public init(_ values: [String: String]) { self.values = values }

    /// `CELERY_BEAT_SCHEDULER_TIME`: the `N` of `day_of_month="*/N"` in Dify's daily crontabs.
    public static let beatSchedulerTimeKey = "CELERY_BEAT_SCHEDULER_TIME"
    /// `LOG_TZ`: the zone Dify's beat evaluates every crontab in.
    public static let logTimeZoneKey = "LOG_TZ"

    /// The raw value, or nil when unset or empty.
    public func string(_ key: String) -> String? {
        guard let value = values[key]?.trimmingSpaces, !value.isEmpty else { return nil }
        return value
    }

    /// A boolean as pydantic parses it; `defaultValue` when unset.
    public func bool(_ key: String, default defaultValue: Bool) throws(TaskSettingError) -> Bool {
        guard let text = string(key) else { return defaultValue }
        switch text.lowercased() {
        case "1", "true", "yes", "on", "t", "y": return true
        case "0", "false", "no", "off", "f", "n": return false
        default: throw .notBoolean(key: key, value: text)
        }
    }

    /// A whole number within `range`; `defaultValue` when unset.
    public func int(_ key: String, default defaultValue: Int, range: ClosedRange<Int>) throws(TaskSettingError) -> Int {
        guard let text = string(key) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw .notInteger(key: key, value: text, range: range)
        }
        return value
    }

    /// A finite number greater than zero; `defaultValue` when unset.
    public func positiveNumber(_ key: String, default defaultValue: Double) throws(TaskSettingError) -> Double {
        guard let text = string(key) else { return defaultValue }
        guard let value = Double(text), value.isFinite, value > 0 else {
            throw .notPositiveNumber(key: key, value: text)
        }
        return value
    }

    /// `CELERY_BEAT_SCHEDULER_TIME` (Dify default 1), the day step of the daily crontabs.
    public func beatSchedulerDays() throws(TaskSettingError) -> Int {
        try int(Self.beatSchedulerTimeKey, default: 1, range: 1...31)
    }

    /// `LOG_TZ` (Dify default `UTC`) as a cron zone.
    public func logTimeZone() throws(TaskSettingError) -> CronZone {
        guard let name = string(Self.logTimeZoneKey) else { return .utc }
        do {
            return try CronZone(identifier: name)
        } catch {
            throw .unknownTimeZone(key: Self.logTimeZoneKey, value: name)
        }
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines (no Foundation).
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
