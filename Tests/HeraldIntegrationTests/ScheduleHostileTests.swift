// Hostile conditions for workflow schedules, against real PostgreSQL and Redis: one unusable
// `next_run_at` does not stop the others (it is quarantined, counted, and released once fixed);
// an ALTER TABLE of the kind a Dify upgrade makes, while plans fire, costs a failed statement or
// two, not a stall; a push on a killed Redis connection reconnects at once; a burst of bulk NOTIFY
// notices coalesces into a few window loads. Each failure
// is counted in `herald_schedule_errors_total{operation}` and shown by health while it lasts.

import Foundation
import HeraldCelery
import HeraldCore
import HeraldIO
import HeraldRuntime
import HeraldTasks
import XCTest

final class ScheduleHostileTests: ScheduleDaemonTestCase {

    func queuedPlans() throws -> [String] {
        try fixture.queued().compactMap { if case .string(let s)? = $0.args.first { return s } else { return nil } }
    }

    /// The latest fire's delay from its scheduled time to its claim being recorded enqueued, in s.
    func latestFireDelay() throws -> String {
        try fixture.conn.query(
            """
            SELECT round(max(extract(epoch from enqueued_at - (scheduled_at AT TIME ZONE 'UTC')))::numeric, 3)
              FROM herald.schedule_fire_log
            """
        ).rows.first?[0] ?? "?"
    }

    func errors(_ h: DaemonHarness, _ operation: String) -> Double {
        h.metric("herald_schedule_errors_total", ["operation": operation])
    }

    func testUnusableNextRunAtIsQuarantinedAndEveryOtherPlanFires() throws {
        // Written before the daemon starts, as after a restart: the first window load and sweep meet them.
        let negative = try fixture.addPlan(dueIn: 1, notify: false)
        let farFuture = try fixture.addPlan(dueIn: 1, notify: false)
        try fixture.conn.query(
            "UPDATE workflow_schedule_plans SET next_run_at = '-infinity' WHERE id = $1", [negative.description])
        try fixture.conn.query(
            "UPDATE workflow_schedule_plans SET next_run_at = '294276-12-31 23:59:59' WHERE id = $1",
            [farFuture.description])
        let good = try fixture.addPlans(5, dueIn: 2)
        let h = try startDaemon(["HERALD_SWEEP_INTERVAL": "1"])
        try waitUntil("the other plans fired", timeout: 15) { try self.queuedPlans().count == 5 }
        XCTAssertEqual(Set(try queuedPlans()), Set(good.map(\.description)))
        try waitUntil("the -infinity plan quarantined") {
            try self.fixture.conn.query(
                "SELECT error FROM herald.schedule_quarantine WHERE plan_id = $1", [negative.description]
            ).rows.first?[0]?.hasPrefix("next_run_at ") == true
        }
        XCTAssertEqual(h.metric("herald_schedule_quarantined_total"), 1, "counted once")
        let sweeps = h.metric("herald_sweeps_total")
        try waitUntil("two more sweeps") { h.metric("herald_sweeps_total") >= sweeps + 2 }
        XCTAssertEqual(h.metric("herald_schedule_quarantined_total"), 1, "not again at every sweep")
        for operation in ["window_load", "read", "claim", "sweep"] {
            XCTAssertEqual(errors(h, operation), 0, operation)
        }
        XCTAssertTrue(h.allUp)
        // A usable next_run_at releases it (the far-future plan is simply not due).
        try fixture.conn.query(
            """
            UPDATE workflow_schedule_plans SET next_run_at = date_trunc('second', now() AT TIME ZONE 'UTC') + interval '1 second'
             WHERE id = $1
            """, [negative.description])
        try waitUntil("the fixed plan fires", timeout: 15) { try self.queuedPlans().count == 6 }
        XCTAssertFalse(try queuedPlans().contains(farFuture.description))
    }

    func testAlteringThePlanAndTriggerTablesWhilePlansFireLosesNoSlot() throws {
        let first = try fixture.addPlans(3, dueIn: 2)
        let h = try startDaemon(["HERALD_SWEEP_INTERVAL": "1"])
        try waitUntil("the first plans fired (the claim statements are prepared)", timeout: 15) {
            try self.queuedPlans().count == 3
        }
        let sweeps = h.metric("herald_sweeps_total")
        try waitUntil("the sweep's statement is prepared too") { h.metric("herald_sweeps_total") >= sweeps + 2 }
        // The kind of change a Dify upgrade makes: a result column of the claim changes type.
        try fixture.conn.execute(
            script: """
                ALTER TABLE workflow_schedule_plans ALTER COLUMN cron_expression TYPE varchar(512);
                ALTER TABLE app_triggers ALTER COLUMN title TYPE varchar(300);
                """)
        let later = try fixture.addPlans(20, dueIn: 3)
        try waitUntil("every later plan fired", timeout: 20) { try self.queuedPlans().count == 23 }
        XCTAssertEqual(Set(try queuedPlans()), Set((first + later).map(\.description)))
        XCTAssertEqual(try fixture.fires().count, 23, "no slot lost, none doubled")
        // One ALTER costs at most a failed statement per pooled session (the first one makes every
        // session prepare again), not one per retry.
        let failed = errors(h, "claim") + errors(h, "sweep") + errors(h, "read") + errors(h, "window_load")
        XCTAssertLessThanOrEqual(failed, 4, "\(failed) failed statements after one ALTER")
        print(
            "alter while firing: \(Int(failed)) failed statements; latest fire \(try latestFireDelay()) s after its time"
        )
        try waitUntil("healthy again") { h.allUp }
    }

    func testAPushOnAKilledConnectionReconnectsInsteadOfWaitingForTheSweep() throws {
        let plans = try fixture.addPlans(10, dueIn: 4)
        let h = try startDaemon(["HERALD_SCHEDULE_RESEND_AFTER": "30"])
        // Every client of Herald's is killed: the push connection (opened at start) is dead when the
        // fires are due.
        let redis = try TestServers.redis()
        XCTAssertNotEqual(try redis.command(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]), .integer(0))
        try waitUntil("the plans fired", timeout: 20) { try self.queuedPlans().count == plans.count }
        XCTAssertEqual(Set(try fixture.fires().map(\.via)), ["timer"])
        XCTAssertEqual(h.metric("herald_sweep_found_total", ["kind": "schedule_unenqueued"]), 0, "no re-send needed")
        XCTAssertEqual(errors(h, "push"), 0)
        XCTAssertEqual(try fixture.fires().filter(\.enqueued).count, plans.count)
        print("killed push connection: latest fire \(try latestFireDelay()) s after its time")
    }

    func testHealthNamesAFailingSweepUntilItRecovers() throws {
        let h = try startDaemon(["HERALD_SWEEP_INTERVAL": "1"])
        XCTAssertTrue(h.allUp)
        // Every sweep now fails (a table its statement reads is gone), until it is back.
        try fixture.conn.query("ALTER TABLE herald.schedule_quarantine RENAME TO schedule_quarantine_away")
        try waitUntil("health names the failing sweep") {
            !h.allUp && h.status.scheduleFailures.contains { $0.operation == "sweep" }
        }
        XCTAssertGreaterThan(errors(h, "sweep"), 0)
        let json = StatusJSON.render(h.status, now: Date().timeIntervalSince1970)
        XCTAssertTrue(json.contains("\"status\":\"degraded\""), json)
        XCTAssertTrue(json.contains("\"failing\":[{\"operation\":\"sweep\""), json)
        try fixture.conn.query("ALTER TABLE herald.schedule_quarantine_away RENAME TO schedule_quarantine")
        try waitUntil("healthy again after a successful sweep") { h.allUp }
        XCTAssertFalse(StatusJSON.render(h.status, now: Date().timeIntervalSince1970).contains("failing"))
    }

    func testABurstOfBulkNoticesCoalescesIntoAFewWindowLoads() throws {
        let plan = try fixture.addPlans(1, dueIn: 8)
        let h = try startDaemon()
        let loads = h.metric("herald_schedule_window_loads_total")
        let n = 20_000
        try fixture.conn.query(
            """
            SELECT pg_notify('herald_events', json_build_object('table', 'workflow_schedule_plans', 'op', 'UPDATE',
                                                                'bulk', true, 'rows', g)::text)
              FROM generate_series(1, $1::int) g
            """, [String(n)])
        try waitUntil("every notice consumed", timeout: 20) {
            h.metric("herald_events_total", ["source": "postgres_notify", "outcome": "accepted"]) >= Double(n)
        }
        let cost = h.metric("herald_schedule_window_loads_total") - loads
        // Coalesced: one load in flight and one pending, however many notices arrive meanwhile. How
        // many loads the burst spans depends on the machine's speed, so the bound is loose: one
        // load per notice would be 20,000.
        XCTAssertLessThan(cost, 1_000, "\(n) bulk notices cost \(cost) window loads")
        try waitUntil("the plan fired", timeout: 15) { try self.queuedPlans() == plan.map(\.description) }
        print("bulk notices: \(n) cost \(Int(cost)) window loads; the fire \(try latestFireDelay()) s after its time")
    }
}
