// The queue monitor against real Redis (a Celery list under REDIS_KEY_PREFIX, with a priority
// sub-list) and a real SMTP server. Two instances sample every 0.2 s: a queue filled past its
// threshold, held there and drained gives exactly one alert mail, none during the cool-down,
// and one recovery mail; herald_queue_length counts the priority sub-list too.

import Foundation
import HeraldCore
import HeraldIO
import HeraldRuntime
import XCTest

final class QueueMonitorTests: XCTestCase {
    func testOneAlertNoReminderDuringTheCoolDownOneRecovery() throws {
        let sink = try SMTPSink()
        addTeardownBlock { sink.stop() }
        let fixture = try ScheduleFixture()
        defer { fixture.drop() }
        Circuits.shared.reset()
        let env = fixture.env.merging([
            "ENABLE_DATASETS_QUEUE_MONITOR": "true", "QUEUE_MONITOR_THRESHOLD": "50",
            "HERALD_QUEUE_MONITOR_THRESHOLDS": "plugin=5", "QUEUE_MONITOR_INTERVAL": "1",
            "QUEUE_MONITOR_ALERT_EMAILS": " ops@example.com , oncall@example.com",
            "HERALD_QUEUE_SAMPLE_INTERVAL": "0.2", "MAIL_TYPE": "smtp", "SMTP_SERVER": "127.0.0.1",
            "SMTP_PORT": "\(sink.port)", "MAIL_DEFAULT_SEND_FROM": "Dify <no-reply@example.com>",
        ]) { _, new in new }
        var harnesses: [DaemonHarness] = []
        defer { for h in harnesses { h.stop() } }
        for i in 0..<2 {
            harnesses.append(try DaemonHarness(env: env.merging(["HERALD_INSTANCE_ID": "qm-\(i)"]) { _, new in new }))
        }
        let redis = try TestServers.redis()
        let list = fixture.keyPrefix + ":plugin"
        // 4 on the queue, 3 on its priority-6 sub-list: 7, past plugin's threshold of 5.
        for _ in 0..<4 { try redis.command(["LPUSH", list, "m"]) }
        for _ in 0..<3 { try redis.command(["LPUSH", list + "\u{06}\u{16}6", "m"]) }
        try waitUntil("the length is exported", timeout: 10) {
            harnesses.allSatisfy { $0.metric("herald_queue_length", ["queue": "plugin"]) == 7 }
        }
        let monitor = try XCTUnwrap(harnesses[0].daemon.queueMonitor)
        XCTAssertTrue(harnesses[0].loop.sync { monitor.alerting }, "alerts are on")
        try waitUntil("the alert mail", timeout: 15) { (try? sink.messages().count) == 1 }
        // Held above the threshold for 5 s (25 samples on each instance): no reminder within the
        // cool-down (QUEUE_MONITOR_INTERVAL, a minute here).
        Thread.sleep(forTimeInterval: 5)
        var mails = try sink.messages()
        XCTAssertEqual(mails.count, 1, "\(mails.map { $0.headers["Subject"] ?? "" })")
        guard mails.count == 1 else { return }
        XCTAssertEqual(mails[0].headers["Subject"], "Alert: Queue plugin pending tasks exceeded the limit")
        XCTAssertEqual(Set(mails[0].rcptTos), ["ops@example.com", "oncall@example.com"])
        XCTAssertTrue(
            mails[0].parts.contains { $0.body.contains("Queue \"plugin\" has 7 pending tasks (Threshold: 5)") },
            "\(mails[0].parts.map(\.body))")
        // Other queues stay under the default threshold (50): no mail for them.
        XCTAssertEqual(harnesses[0].metric("herald_queue_length", ["queue": "dataset"]), 0)

        // Drained below half the threshold: one recovery mail.
        try redis.command(["DEL", list, list + "\u{06}\u{16}6"])
        try waitUntil("the recovery mail", timeout: 15) { (try? sink.messages().count) == 2 }
        Thread.sleep(forTimeInterval: 2)
        mails = try sink.messages()
        XCTAssertEqual(mails.count, 2)
        XCTAssertEqual(mails[1].headers["Subject"], "Recovered: Queue plugin is back under its limit")
        let sent = harnesses.reduce(0.0) { $0 + $1.metric("herald_queue_alert_mails_total") }
        XCTAssertEqual(sent, 2, "one alert and one recovery across both instances")
        XCTAssertEqual(harnesses.reduce(0.0) { $0 + $1.metric("herald_queue_monitor_errors_total") }, 0)
    }

    /// HERALD_QUEUE_MONITOR_LEARN: the floor during the first half-life (3 s here), then what the
    /// queue normally holds (40: at least 1.5 times that), and a backlog of 400 is not learnt.
    func testTheLearntThresholdFollowsTheQueueButNotItsBacklog() throws {
        let fixture = try ScheduleFixture()
        defer { fixture.drop() }
        let env = fixture.env.merging([
            "HERALD_QUEUE_MONITOR_THRESHOLDS": "plugin=10", "HERALD_QUEUE_MONITOR_LEARN": "true",
            "HERALD_QUEUE_MONITOR_LEARN_HALF_LIFE": "0.05", "HERALD_QUEUE_SAMPLE_INTERVAL": "0.1",
        ]) { _, new in new }
        let redis = try TestServers.redis()
        let list = fixture.keyPrefix + ":plugin"
        for _ in 0..<40 { try redis.command(["LPUSH", list, "m"]) }
        let harness = try DaemonHarness(env: env)
        defer { harness.stop() }
        try waitUntil("the length is exported", timeout: 10) {
            harness.metric("herald_queue_length", ["queue": "plugin"]) == 40
        }
        XCTAssertEqual(harness.metric("herald_queue_threshold", ["queue": "plugin"]), 10, "the floor while warming up")
        try waitUntil("the learnt threshold", timeout: 15) {
            harness.metric("herald_queue_threshold", ["queue": "plugin"]) == 60
        }
        for _ in 0..<360 { try redis.command(["LPUSH", list, "m"]) }
        try waitUntil("the backlog is sampled", timeout: 10) {
            harness.metric("herald_queue_length", ["queue": "plugin"]) == 400
        }
        Thread.sleep(forTimeInterval: 3)  // 30 samples of the backlog, one half-life
        XCTAssertEqual(harness.metric("herald_queue_threshold", ["queue": "plugin"]), 60, "the backlog is not learnt")
    }
}
