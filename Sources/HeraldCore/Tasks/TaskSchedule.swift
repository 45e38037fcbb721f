// When a periodic task fires, as Dify's beat declares it: either a crontab read in
// LOG_TZ (the daily jobs step their day of month by CELERY_BEAT_SCHEDULER_TIME,
// written `{day}` here) or a fixed interval whose length may come from a setting.
// The topology holds the template; the zone and the settings arrive at runtime.

/// A task's schedule as the topology declares it, before settings are applied.
public enum TaskSchedule: Sendable, Hashable, CustomStringConvertible {
    /// A five-field crontab evaluated in `LOG_TZ`. `{day}` (allowed only in the
    /// day-of-month field) stands for `CELERY_BEAT_SCHEDULER_TIME`, as Dify's
    /// `day_of_month="*/{day}"`: `"0 2 */{day} * *"`.
    case cron(String)
    /// Every `minutes` minutes (Celery's `timedelta` entries); `setting`, when given,
    /// names the environment key that overrides the default (`QUEUE_MONITOR_INTERVAL`).
    case every(minutes: Double, setting: String?)

    /// The placeholder for `CELERY_BEAT_SCHEDULER_TIME` in a crontab template.
    public static let dayPlaceholder = "{day}"

    /// Interval settings where 0 means the default, as Dify reads them
    /// (`timedelta(minutes=QUEUE_MONITOR_INTERVAL or 30)`); 0 is refused for the others.
    public static let zeroMeansDefault: Set<String> = ["QUEUE_MONITOR_INTERVAL"]

    /// The longest interval a setting may give, in minutes: a year. Longer ones are refused,
    /// so the interval's arithmetic in nanoseconds cannot overflow.
    public static let maxIntervalMinutes: Double = 525_600

    /// The template as written in the topology.
    public var description: String {
        switch self {
        case .cron(let text): return text
        case .every(let minutes, let setting):
            let amount = minutes == minutes.rounded() ? String(Int(minutes)) : String(minutes)
            return "every \(amount)m" + (setting.map { " (\($0))" } ?? "")
        }
    }

    /// The crontab with `{day}` replaced by `days`.
    public static func expand(_ template: String, days: Int) -> String {
        template.replacing(dayPlaceholder, with: String(days))
    }

    /// Checks the template without settings: a crontab must parse with `{day}` = 1
    /// and use `{day}` only in its day-of-month field; an interval must be positive.
    public func validate() throws(TaskScheduleError) {
        switch self {
        case .cron(let template):
            let fields = template.split(whereSeparator: { $0 == " " || $0 == "\t" })
            for (index, field) in fields.enumerated() where field.contains("{") || field.contains("}") {
                guard index == CronField.dayOfMonth.rawValue, fields.count == 5 else {
                    throw .misplacedDayPlaceholder(template)
                }
            }
            do {
                _ = try CronExpression(Self.expand(template, days: 1))
            } catch {
                throw .cron(error)
            }
        case .every(let minutes, _):
            guard minutes.isFinite, minutes > 0, minutes <= Self.maxIntervalMinutes else {
                throw .nonPositiveInterval(minutes)
            }
        }
    }

    /// Applies `settings` (`CELERY_BEAT_SCHEDULER_TIME`, the interval key) and binds a
    /// crontab to `zone` (normally `LOG_TZ`, see ``TaskSettings/logTimeZone()``).
    public func resolve(_ settings: TaskSettings, zone: CronZone) throws(TaskScheduleError) -> ResolvedTaskSchedule {
        switch self {
        case .cron(let template):
            let days: Int
            do { days = try settings.beatSchedulerDays() } catch { throw .setting(error) }
            do {
                return .cron(
                    CronSchedule(expression: try CronExpression(Self.expand(template, days: days)), zone: zone))
            } catch {
                throw .cron(error)
            }
        case .every(let minutes, let key):
            var value = minutes
            if let key {
                if Self.zeroMeansDefault.contains(key), let text = settings.string(key), Double(text) == 0 {
                    return .every(.nanoseconds(Int64((minutes * 60e9).rounded())))
                }
                do {
                    value = try settings.positiveNumber(key, default: minutes, max: Self.maxIntervalMinutes)
                } catch { throw .setting(error) }
            }
            return .every(.nanoseconds(Int64((value * 60e9).rounded())))
        }
    }

    /// ``resolve(_:zone:)`` in the zone named by `LOG_TZ`.
    public func resolve(_ settings: TaskSettings) throws(TaskScheduleError) -> ResolvedTaskSchedule {
        let zone: CronZone
        do { zone = try settings.logTimeZone() } catch { throw .setting(error) }
        return try resolve(settings, zone: zone)
    }
}

/// A schedule ready for timers: a crontab bound to its zone, or a fixed interval.
public enum ResolvedTaskSchedule: Sendable, Hashable, CustomStringConvertible {
    /// Fire at the crontab's times in its zone.
    case cron(CronSchedule)
    /// Fire every interval, at whole multiples of it since the Unix epoch, so that every
    /// instance computes the same ticks and claims each once (Celery beat counts from its
    /// own start, which only one beat process may do).
    case every(Duration)

    /// The interval in whole seconds (at least 1), for `every`.
    public static func intervalSeconds(_ interval: Duration) -> Int64 {
        max(1, Int64((Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18).rounded()))
    }

    /// The first tick strictly after `unixSeconds`, in Unix seconds.
    public func nextTick(afterUnixSeconds unixSeconds: Double) throws(CronError) -> Int64 {
        switch self {
        case .cron(let schedule):
            return try schedule.nextFire(afterUnixMicros: Int64((unixSeconds * 1e6).rounded(.down))).unixSeconds
        case .every(let interval):
            let step = Self.intervalSeconds(interval)
            let now = max(0, Int64(unixSeconds.rounded(.down)))
            return (now / step + 1) * step
        }
    }

    /// `0 2 */1 * * (Asia/Shanghai)` or `every 30m`.
    public var description: String {
        switch self {
        case .cron(let schedule): return "\(schedule.expression.source) (\(schedule.zone.identifier))"
        case .every(let interval):
            let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
            if seconds.truncatingRemainder(dividingBy: 60) == 0 { return "every \(Int(seconds / 60))m" }
            return "every \(seconds)s"
        }
    }
}

/// Why a schedule cannot be used.
public enum TaskScheduleError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The crontab does not parse (after `{day}` substitution).
    case cron(CronError)
    /// `{day}` appears outside the day-of-month field of a five-field crontab.
    case misplacedDayPlaceholder(String)
    /// An interval of zero, a negative or a non-finite number of minutes, or more than a year.
    case nonPositiveInterval(Double)
    /// A setting the schedule reads is invalid.
    case setting(TaskSettingError)

    public var description: String {
        switch self {
        case .cron(let error): return "\(error)"
        case .misplacedDayPlaceholder(let text):
            return "'\(text)': {day} may appear only in the day-of-month field of a five-field crontab"
        case .nonPositiveInterval(let minutes):
            return "interval must be more than 0 minutes and at most a year (525600), got \(minutes)"
        case .setting(let error): return "\(error)"
        }
    }
}
