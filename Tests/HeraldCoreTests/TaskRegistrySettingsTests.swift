// Enable flags and schedules read Dify's settings as Dify does: pydantic's
// booleans, defaults when unset, `{day}` from CELERY_BEAT_SCHEDULER_TIME and
// crontabs evaluated in LOG_TZ; a bad value is an error naming its key.

import HeraldCore
import XCTest

final class TaskRegistrySettingsTests: XCTestCase {
    func testEnableSettingsUseDifyDefaultsAndAllMustHold() throws {
        let plugin = TaskDescriptor(
            name: .checkUpgradablePlugin, queue: "plugin",
            enabledBy: [
                EnableSetting("ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK", default: true),
                EnableSetting("MARKETPLACE_ENABLED", default: true),
            ])
        XCTAssertTrue(try plugin.isEnabled(TaskSettings([:])))
        XCTAssertFalse(try plugin.isEnabled(TaskSettings(["MARKETPLACE_ENABLED": "false"])))
        XCTAssertEqual(
            try plugin.disablingSettings(TaskSettings(["MARKETPLACE_ENABLED": "0"])).map(\.key),
            ["MARKETPLACE_ENABLED"])
        XCTAssertTrue(try plugin.isEnabled(TaskSettings(["MARKETPLACE_ENABLED": " "])), "empty means unset")
        let messages = TaskDescriptor(
            name: .cleanMessages, queue: "retention",
            enabledBy: [EnableSetting("ENABLE_CLEAN_MESSAGES", default: false)])
        XCTAssertFalse(try messages.isEnabled(TaskSettings([:])))
        for yes in ["true", "True", "1", "yes", "on", "t", "Y"] {
            XCTAssertTrue(try messages.isEnabled(TaskSettings(["ENABLE_CLEAN_MESSAGES": yes])), yes)
        }
        XCTAssertThrowsError(try messages.isEnabled(TaskSettings(["ENABLE_CLEAN_MESSAGES": "maybe"]))) {
            XCTAssertEqual($0 as? TaskSettingError, .notBoolean(key: "ENABLE_CLEAN_MESSAGES", value: "maybe"))
            XCTAssertEqual(($0 as? TaskSettingError)?.key, "ENABLE_CLEAN_MESSAGES")
        }
        XCTAssertEqual(TaskDescriptor(name: "x", queue: "q").lock, .exclusive(.standard(for: "x")))
    }

    func testDailyCrontabStepsByBeatSchedulerTimeInLogTZ() throws {
        let schedule = TaskSchedule.cron("0 2 */{day} * *")
        XCTAssertNoThrow(try schedule.validate())
        let settings = TaskSettings(["CELERY_BEAT_SCHEDULER_TIME": "3", "LOG_TZ": "Asia/Shanghai"])
        guard case .cron(let cron) = try schedule.resolve(settings) else { return XCTFail("expected a crontab") }
        XCTAssertEqual(cron.expression.source, "0 2 */3 * *")
        XCTAssertEqual(cron.zone.identifier, "Asia/Shanghai")
        // From 2026-01-01T00:00Z: days 1, 4, 7 of the month at 02:00 Shanghai time.
        let fires = try cron.fires(afterUnixSeconds: 1_767_225_600, count: 3).map(\.iso8601)
        XCTAssertEqual(fires, ["2026-01-04T02:00:00+08:00", "2026-01-07T02:00:00+08:00", "2026-01-10T02:00:00+08:00"])
        XCTAssertEqual(try schedule.resolve(TaskSettings([:])).description, "0 2 */1 * * (UTC)")
    }

    func testIntervalsReadTheirSetting() throws {
        let monitor = TaskSchedule.every(minutes: 30, setting: "QUEUE_MONITOR_INTERVAL")
        XCTAssertEqual(try monitor.resolve(TaskSettings([:])), .every(.seconds(1800)))
        XCTAssertEqual(try monitor.resolve(TaskSettings(["QUEUE_MONITOR_INTERVAL": "0.5"])), .every(.seconds(30)))
        XCTAssertEqual(try monitor.resolve(TaskSettings([:])).description, "every 30m")
        XCTAssertEqual(monitor.description, "every 30m (QUEUE_MONITOR_INTERVAL)")
        XCTAssertThrowsError(try monitor.resolve(TaskSettings(["QUEUE_MONITOR_INTERVAL": "-1"]))) {
            XCTAssertEqual(
                $0 as? TaskScheduleError,
                .setting(.notPositiveNumber(key: "QUEUE_MONITOR_INTERVAL", value: "-1", max: 525_600)))
        }
        // 0 means the default, as Dify's `QUEUE_MONITOR_INTERVAL or 30`; for another interval it is refused.
        XCTAssertEqual(try monitor.resolve(TaskSettings(["QUEUE_MONITOR_INTERVAL": "0"])), .every(.seconds(1800)))
        XCTAssertEqual(try monitor.resolve(TaskSettings(["QUEUE_MONITOR_INTERVAL": "0.0"])), .every(.seconds(1800)))
        let other = TaskSchedule.every(minutes: 1, setting: "TRIGGER_PROVIDER_REFRESH_INTERVAL")
        XCTAssertThrowsError(try other.resolve(TaskSettings(["TRIGGER_PROVIDER_REFRESH_INTERVAL": "0"])))
        // A value whose interval would not fit in nanoseconds is refused, not trapped on.
        XCTAssertThrowsError(try monitor.resolve(TaskSettings(["QUEUE_MONITOR_INTERVAL": "1e9"]))) {
            XCTAssertEqual(
                "\($0)",
                "QUEUE_MONITOR_INTERVAL: expected a number greater than 0 and at most 525600, got \"1e9\"")
        }
    }

    func testBadSchedulesAndSettingsAreTypedErrors() {
        XCTAssertThrowsError(try TaskSchedule.cron("0 25 * * *").validate()) {
            guard case .cron(.invalidField(.hour, _, _))? = $0 as? TaskScheduleError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try TaskSchedule.cron("{day} 2 * * *").validate()) {
            XCTAssertEqual($0 as? TaskScheduleError, .misplacedDayPlaceholder("{day} 2 * * *"))
        }
        XCTAssertThrowsError(try TaskSchedule.every(minutes: 0, setting: nil).validate()) {
            XCTAssertEqual($0 as? TaskScheduleError, .nonPositiveInterval(0))
        }
        XCTAssertThrowsError(
            try TaskSchedule.cron("0 2 */{day} * *").resolve(
                TaskSettings(["CELERY_BEAT_SCHEDULER_TIME": "0"]))
        ) {
            XCTAssertEqual(
                $0 as? TaskScheduleError,
                .setting(.notInteger(key: "CELERY_BEAT_SCHEDULER_TIME", value: "0", range: 1...31)))
        }
        XCTAssertThrowsError(try TaskSchedule.cron("0 2 * * *").resolve(TaskSettings(["LOG_TZ": "Mars/Base"]))) {
            XCTAssertEqual($0 as? TaskScheduleError, .setting(.unknownTimeZone(key: "LOG_TZ", value: "Mars/Base")))
        }
    }

    func testTaskNamesAndDifyBeatEntries() {
        XCTAssertEqual(DifyBeatEntry.all.count, 15)
        XCTAssertEqual(Set(DifyBeatEntry.all.map(\.task)).count, 15, "one entry per task")
        XCTAssertTrue(DifyBeatEntry.all.allSatisfy { TaskName.isValid($0.task.rawValue) })
        XCTAssertEqual(DifyBeatEntry.entry(for: .queueMonitor)?.beatKey, "datasets-queue-monitor")
        XCTAssertEqual(
            DifyBeatEntry.entry(for: .workflowSchedule)?.celeryName,
            "schedule.workflow_schedule_task.poll_workflow_schedules")
        XCTAssertFalse(TaskName.isValid("Clean"))
        XCTAssertFalse(TaskName.isValid("1task"))
        XCTAssertFalse(TaskName.isValid("a b"))
        XCTAssertFalse(TaskName.isValid(""))
    }
}
