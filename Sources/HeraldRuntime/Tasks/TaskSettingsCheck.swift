// Every task setting is checked when the daemon starts, as docs/configuration.md says: the
// enable flags and schedules of every task in the topology (with LOG_TZ and
// CELERY_BEAT_SCHEDULER_TIME), the dataset, retention, mail and TiDB settings. A bad value stops
// `herald run` with exit code 2 and the key named, instead of surfacing as a failed run hours
// later. `herald tasks` and `herald run-task` read the same settings.

import HeraldCore
import HeraldTasks

/// Validates the task settings of an environment.
public enum TaskSettingsCheck {
    /// The first invalid task setting, as `invalid setting KEY: reason`; nil when all are valid.
    /// `topology` (when the daemon has one) adds every task's enable flags and schedule.
    public static func problem(environment: [String: String], topology: Topology?) -> String? {
        let settings = TaskSettings(environment)
        if let topology {
            let zone: CronZone
            do { zone = try settings.logTimeZone() } catch { return "invalid setting \(error)" }
            for name in topology.graph.order {
                guard let task = topology.task(name) else { continue }
                do { _ = try task.disablingSettings(settings) } catch { return "invalid setting \(error)" }
                if let schedule = task.schedule {
                    do { _ = try schedule.resolve(settings, zone: zone) } catch {
                        return "invalid setting for \(name.rawValue): \(error)"
                    }
                }
            }
        }
        do { _ = try DatasetTaskSettings.load(from: settings.values) } catch { return error.description }
        do { _ = try RetentionSettings.load(from: settings.values) } catch { return error.description }
        do { _ = try MailSettings.load(from: settings.values) } catch { return error.description }
        do { _ = try TiDBSettings.load(from: settings.values) } catch { return "invalid setting \(error)" }
        return nil
    }
}
