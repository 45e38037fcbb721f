// Tasks read Dify's settings by their environment names (ENABLE_*, LOG_TZ,
// CELERY_BEAT_SCHEDULER_TIME, *_INTERVAL). TaskSettings turns the ones the topology
// refers to into typed values with Dify's (pydantic's) parsing rules and an error
// that names the key, so `herald tasks`, `herald run-task` and the daemon agree.
// HeraldRuntime's Settings parses Herald's own settings and the Dify names the
// daemon itself needs (DB_*, REDIS_KEY_PREFIX, WORKFLOW_SCHEDULE_* …), and the
// dataset, retention and mail settings parse their own keys, all with the same
// rules. During a migration one .env serves Dify and Herald: `HERALD_<NAME>`
// overrides Dify's `<NAME>` for Herald alone, wherever Herald reads it.

/// Why a setting's value is unusable.
public enum TaskSettingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The value is not a boolean pydantic accepts (`true/false`, `1/0`, `yes/no`, `on/off`, `t/f`, `y/n`).
    case notBoolean(key: String, value: String)
    /// The value is not a whole number within `range`.
    case notInteger(key: String, value: String, range: ClosedRange<Int>)
    /// The value is not a finite number greater than zero and at most `max`.
    case notPositiveNumber(key: String, value: String, max: Double)
    /// `LOG_TZ` (or another zone setting) is not an IANA zone name.
    case unknownTimeZone(key: String, value: String)

    /// The setting at fault.
    public var key: String {
        switch self {
        case .notBoolean(let key, _), .notInteger(let key, _, _), .notPositiveNumber(let key, _, _),
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
        case .notPositiveNumber(let key, let value, let max):
            let bound = max == max.rounded() ? String(Int(max)) : String(max)
            return "\(key): expected a number greater than 0 and at most \(bound), got \"\(value)\""
        case .unknownTimeZone(let key, let value):
            return "\(key): unknown time zone \"\(value)\" (expected an IANA name such as Asia/Shanghai)"
        }
    }
}

/// A read-only view of the environment's settings, with typed accessors.
///
/// An unset or empty value means "use the default", as in Dify's pydantic settings.
public struct TaskSettings: Sendable {
    /// The raw values by environment name, with Herald's overrides applied
    /// (see ``applyingHeraldOverrides(_:)``).
    public let values: [String: String]

    /// Wraps a dictionary such as `ProcessInfo.processInfo.environment`, applying the
    /// `HERALD_<NAME>` overrides of Dify's names.
    public init(_ values: [String: String]) { self.values = Self.applyingHeraldOverrides(values) }

    /// The name a bad value of `key` is reported under: `HERALD_<key>` when that override set it.
    func sourceKey(_ key: String) -> String {
        let override = Self.overridePrefix + key
        guard let value = values[override], !value.trimmingSpaces.isEmpty else { return key }
        return override
    }

    /// The prefix that makes a Dify setting Herald's alone: `HERALD_ENABLE_CLEAN_MESSAGES`
    /// overrides `ENABLE_CLEAN_MESSAGES` for Herald while Dify keeps reading its own.
    public static let overridePrefix = "HERALD_"

    /// `environment` with every non-empty `HERALD_<NAME>` copied over `<NAME>`, so that
    /// everything reading Dify's names sees Herald's value. Herald's own settings
    /// (`HERALD_REDIS_URL` …) have no Dify twin and are unaffected. Idempotent.
    public static func applyingHeraldOverrides(_ environment: [String: String]) -> [String: String] {
        var result = environment
        for (key, value) in environment where key.hasPrefix(overridePrefix) && !value.trimmingSpaces.isEmpty {
            let name = String(key.dropFirst(overridePrefix.count))
            guard !name.isEmpty, !name.hasPrefix(overridePrefix) else { continue }
            result[name] = value
        }
        return result
    }

    /// The Dify names that `environment` overrides with `HERALD_<NAME>`, sorted (for the start-up log).
    public static func heraldOverrides(in environment: [String: String], among names: Set<String>) -> [String] {
        names.filter { name in
            guard let value = environment[overridePrefix + name] else { return false }
            return !value.trimmingSpaces.isEmpty
        }.sorted()
    }

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
        default: throw .notBoolean(key: sourceKey(key), value: text)
        }
    }

    /// A whole number within `range`; `defaultValue` when unset.
    public func int(_ key: String, default defaultValue: Int, range: ClosedRange<Int>) throws(TaskSettingError) -> Int {
        guard let text = string(key) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw .notInteger(key: sourceKey(key), value: text, range: range)
        }
        return value
    }

    /// A finite number greater than zero; `defaultValue` when unset.
    public func positiveNumber(
        _ key: String, default defaultValue: Double, max: Double = .greatestFiniteMagnitude
    ) throws(TaskSettingError) -> Double {
        guard let text = string(key) else { return defaultValue }
        guard let value = Double(text), value.isFinite, value > 0, value <= max else {
            throw .notPositiveNumber(key: sourceKey(key), value: text, max: max)
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
            throw .unknownTimeZone(key: sourceKey(Self.logTimeZoneKey), value: name)
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
