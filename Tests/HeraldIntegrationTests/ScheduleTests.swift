// Workflow schedules against real PostgreSQL and Redis: timers fire due plans
// exactly once with Dify's task, queue and deterministic ids; events re-arm;
// the sweep finds what no timer fired and re-sends what never reached the
// queue without duplicating it; bad plans are quarantined, not poison pills.

import Foundation
import HeraldCelery
import HeraldCore
import HeraldIO
import HeraldTasks
import XCTest

final class ScheduleTests: ScheduleDaemonTestCase {

    func testDuePlansFireOnceWithDifyTaskQueueAndDeterministicIDs() throws {
        let plans = try fixture.addPlans(40, dueIn: 2)
        let h = try startDaemon()
        try waitUntil("40 messages queued", timeout: 20) { try fixture.queued().count >= 40 }
        let messages = try fixture.queued()
        XCTAssertEqual(messages.count, 40)
        let fires = try fixture.fires()
        XCTAssertEqual(fires.count, 40)
        XCTAssertTrue(fires.allSatisfy { $0.kind == "cron" && $0.via == "timer" && $0.enqueued })
        var expected: [String: String] = [:]
        for f in fires { expected[f.plan] = CeleryMessage.taskID(scheduleID: f.plan, scheduledAt: f.at / 1_000_000) }
        XCTAssertEqual(Set(messages.map(\.id)), Set(expected.values), "task ids derive from (plan, scheduled time)")
        for m in messages {
            XCTAssertEqual(m.task, "tasks.workflow_schedule_tasks.run_schedule_trigger")
            XCTAssertEqual(m.queue, "schedule_executor")
            guard case .string(let id)? = m.args.first else { return XCTFail("args must be [schedule_id]") }
            XCTAssertEqual(expected[id], m.id)
        }
        // next_run_at moved to the plan's next slot (yearly here), strictly in the future.
        for p in plans {
            let next = try XCTUnwrap(try fixture.nextRunAt(p))
            XCTAssertEqual(next % 60_000_000, 0)
            XCTAssertGreaterThan(next, fires[0].at + 86_400_000_000)
        }
        try waitUntil("metrics counted (updated on the loop after the push)") {
            h.metric("herald_schedule_fires_total", ["via": "timer"]) == 40
                && h.metric("herald_dispatch_total", ["queue": "schedule_executor"]) == 40
                && h.metric("herald_schedule_fire_lateness_seconds_count") == 40
        }
        // One marker per chunk in the broker, shortened to minutes once the claim is recorded as enqueued.
        let redis = try TestServers.redis()
        try waitUntil("markers settled") {
            guard case .array(let keys) = try redis.command(["KEYS", fixture.keyPrefix + ":herald:sent:*"]),
                !keys.isEmpty
            else { return false }
            return try keys.allSatisfy { k in
                guard case .string(let b) = k, let ttl = try redis.command([Array("TTL".utf8), b]).integer else {
                    return false
                }
                return ttl > 0 && ttl <= 900
            }
        }
    }

    func testABurstBeyondEncodeAheadIsEncodedAsItIsPushed() throws {
        // 1,200 plans due together, pre-claimed; at most 500 held encoded: the other chunks are encoded
        // at their instant. Same messages, same ids, once each.
        let plans = try fixture.addPlans(1_200, dueIn: 3)
        let h = try startDaemon(["HERALD_SCHEDULE_ENCODE_AHEAD": "500"])
        try waitUntil("1,200 messages queued", timeout: 20) { try fixture.queued().count >= 1_200 }
        let messages = try fixture.queued()
        XCTAssertEqual(messages.count, 1_200)
        let fires = try fixture.fires()
        XCTAssertEqual(Set(fires.map(\.plan)), Set(plans.map(\.description)))
        XCTAssertTrue(fires.allSatisfy { $0.via == "timer" })
        var expected: [String: String] = [:]
        for f in fires { expected[f.plan] = CeleryMessage.taskID(scheduleID: f.plan, scheduledAt: f.at / 1_000_000) }
        XCTAssertEqual(Set(messages.map(\.id)), Set(expected.values))
        for m in messages {
            guard case .string(let id)? = m.args.first else { return XCTFail("args must be [schedule_id]") }
            XCTAssertEqual(expected[id], m.id)
        }
        try waitUntil("every claim recorded as enqueued") { try fixture.fires().allSatisfy(\.enqueued) }
        XCTAssertEqual(h.metric("herald_dispatch_total", ["queue": "schedule_executor"]), 1_200)
    }

    func testEventsRearmAndRepublishingAnUnchangedPlanChangesNothing() throws {
        let plan = try fixture.addPlan(dueIn: 3600)
        let h = try startDaemon()
        let before = try fixture.nextRunAt(plan)
        let redis = try TestServers.redis()
        for _ in 0..<3 { try redis.command(["PUBLISH", Channels.scheduleEvents, "{\"schedule_id\":\"\(plan)\"}"]) }
        try waitUntil("three events seen") {
            h.sourceEvents.filter { $0 == .scheduleChanged(scheduleID: plan.description, runNow: false) }.count == 3
        }
        XCTAssertEqual(try fixture.nextRunAt(plan), before)
        XCTAssertTrue(try fixture.fires().isEmpty)

        // A writer moves next_run_at to one second from now: the NOTIFY trigger announces it, Herald
        // claims it ahead (within HERALD_SCHEDULE_LEAD) and releases it at its time, not before.
        try fixture.conn.query(
            "UPDATE workflow_schedule_plans SET next_run_at = (now() AT TIME ZONE 'UTC') + interval '1 second' WHERE id = $1",
            [plan.description])
        var arrival = Date.distantPast
        try waitUntil("fired after the update", timeout: 15) {
            arrival = Date()
            return try fixture.queued().count == 1
        }
        let fire = try XCTUnwrap(try fixture.fires().first)
        XCTAssertEqual(fire.via, "event")
        XCTAssertGreaterThanOrEqual(
            arrival.timeIntervalSince1970 * 1e6, Double(fire.at) - 5_000, "never pushed before its time")
        XCTAssertTrue(
            h.sourceEvents.contains {
                if case .tableChanged(let c) = $0 { return c.id == plan.description } else { return false }
            })
    }

    func testTriggersAnnounceIDsAndBulkStatementsOnce() throws {
        let few = try fixture.addPlans(3, dueIn: 3600)
        _ = try fixture.addPlans(150, dueIn: 7200)
        let h = try startDaemon()
        func tableEvents() -> [TableChange] {
            h.sourceEvents.compactMap {
                if case .tableChanged(let c) = $0, c.table == "workflow_schedule_plans" { return c } else { return nil }
            }
        }
        // A statement touching three rows: one notification per id.
        try fixture.conn.query(
            "UPDATE workflow_schedule_plans SET updated_at = now() WHERE id = ANY($1::uuid[])",
            ["{" + few.map(\.description).joined(separator: ",") + "}"])
        try waitUntil("three id notifications") { tableEvents().count == 3 }
        XCTAssertEqual(Set(tableEvents().compactMap(\.id)), Set(few.map(\.description)))
        // A statement touching 153 rows: a single bulk notice.
        try fixture.conn.query("UPDATE workflow_schedule_plans SET updated_at = now()")
        try waitUntil("one bulk notice") { tableEvents().count == 4 }
        XCTAssertEqual(tableEvents().last, TableChange(table: "workflow_schedule_plans", operation: .update, id: nil))
        // app_triggers are announced too.
        try fixture.conn.query(
            "UPDATE app_triggers SET status = 'disabled' WHERE app_id = (SELECT app_id FROM workflow_schedule_plans WHERE id = $1)",
            [few[0].description])
        try waitUntil("trigger change announced") {
            h.sourceEvents.contains {
                if case .tableChanged(let c) = $0 {
                    return c.table == "app_triggers" && c.id != nil
                } else {
                    return false
                }
            }
        }
        XCTAssertEqual(h.metric("herald_events_total", ["source": "postgres_notify", "outcome": "rejected"]), 0)
    }

    func testAFloodOfEventsIsCoalescedIntoFewReads() throws {
        let plan = try fixture.addPlan(dueIn: 3600)
        let h = try startDaemon()
        let redis = try TestServers.redis()
        let n = 3000
        var batch: [[[UInt8]]] = []
        for _ in 0..<n {
            batch.append(["PUBLISH", Channels.scheduleEvents, "{\"schedule_id\":\"\(plan)\"}"].map { Array($0.utf8) })
        }
        _ = try redis.pipeline(batch)
        try waitUntil("all events consumed") {
            h.metric("herald_events_total", ["source": "redis_pubsub", "outcome": "accepted"]) == Double(n)
        }
        // Give in-flight reads a moment to finish, then compare reads with events.
        try waitUntil("reads settle") { h.metric("herald_schedule_plan_reads_total") >= 1 }
        let reads = h.metric("herald_schedule_plan_reads_total")
        XCTAssertLessThan(reads, Double(n) / 10, "\(n) events cost \(reads) reads")
        XCTAssertTrue(try fixture.fires().isEmpty)
        XCTAssertTrue(h.allUp)
    }

    func testRunNowAddsOneImmediateFire() throws {
        let plan = try fixture.addPlan(dueIn: 3600)
        _ = try startDaemon()
        try TestServers.redis().command([
            "PUBLISH", Channels.scheduleEvents, "{\"schedule_id\":\"\(plan)\",\"run_now\":true}",
        ])
        try waitUntil("run_now queued") { try fixture.queued().count == 1 }
        let fires = try fixture.fires()
        XCTAssertEqual(fires.map(\.kind), ["run_now"])
        XCTAssertEqual(fires.map(\.via), ["run_now"])
        XCTAssertEqual(try fixture.queued().first?.args, [.string(plan.description)])
    }

    func testSweepFindsOverduePlansThatNoEventAnnounced() throws {
        let h = try startDaemon(["HERALD_SWEEP_INTERVAL": "1"])
        let plan = try fixture.addPlan(dueIn: -600, notify: false)  // inserted with triggers off: nobody is told
        try waitUntil("sweep fired it", timeout: 15) { try fixture.queued().count == 1 }
        XCTAssertEqual(try fixture.fires().first?.via, "sweep")
        try waitUntil("counted as found by the sweep") {
            h.metric("herald_sweep_found_total", ["kind": "schedule"]) >= 1
        }
        // Overdue by ten minutes: fired once, next_run_at moved to the next future slot.
        let next = try XCTUnwrap(try fixture.nextRunAt(plan))
        XCTAssertGreaterThan(next, try fixture.fires()[0].at + 600_000_000)
        XCTAssertEqual(try fixture.fires().count, 1)
    }

    func testCrashBetweenClaimAndEnqueueIsResentExactlyOnce() throws {
        let lost = try fixture.addPlan(dueIn: 3600)
        let pushed = try fixture.addPlan(dueIn: 3600)
        // Instance A made two claims and died: one before its LPUSH, one after the LPUSH but before
        // marking the claim enqueued.
        let at: Int64 = 1_767_225_600_000_000
        var claims: [PlanID: Int64] = [:]
        for p in [lost, pushed] {
            let k = try XCTUnwrap(
                Int64(try fixture.conn.query("SELECT nextval('herald.schedule_claim_seq')").rows[0][0] ?? ""))
            claims[p] = k
            try fixture.conn.query(
                """
                INSERT INTO herald.schedule_claims (id, via, claimed_by, claimed_at, release_at, fires)
                VALUES ($1, 'timer', 'dead', now() - interval '1 minute', to_timestamp($2::bigint / 1000000.0) AT TIME ZONE 'UTC', 1)
                """, [String(k), String(at)])
            try fixture.conn.query(
                """
                INSERT INTO herald.schedule_fires (plan_id, scheduled_at, kind, task_id, via, claimed_by, claimed_at, claim_id)
                VALUES ($1, to_timestamp($2::bigint / 1000000.0) AT TIME ZONE 'UTC', 'cron', $3, 'timer', 'dead', now() - interval '1 minute', $4)
                """,
                [
                    p.description, String(at),
                    CeleryMessage.taskID(scheduleID: p.description, scheduledAt: at / 1_000_000), String(k),
                ])
        }
        let dispatcher = FireDispatcher(
            broker: try RedisEndpoint.parse(TestServers.require().redis), redisKeyPrefix: fixture.keyPrefix,
            instanceID: "dead")
        let pushedFire = ClaimedFire(
            plan: pushed, scheduledAt: at, kind: .cron,
            taskID: CeleryMessage.taskID(scheduleID: pushed.description, scheduledAt: at / 1_000_000))
        XCTAssertEqual(try dispatcher.push(dispatcher.chunks(claim: claims[pushed]!, fires: [pushedFire])), [true])
        XCTAssertEqual(try fixture.queued().count, 1)

        let h = try startDaemon(["HERALD_SWEEP_INTERVAL": "1", "HERALD_SCHEDULE_RESEND_AFTER": "1"])
        try waitUntil("both marked enqueued", timeout: 15) { try fixture.fires().allSatisfy(\.enqueued) }
        let ids = try fixture.queued().map(\.id)
        XCTAssertEqual(ids.count, 2, "the lost fire is re-sent, the pushed one is not pushed twice")
        XCTAssertEqual(Set(ids).count, 2)
        try waitUntil("re-sends counted") {
            h.metric("herald_dispatch_duplicates_suppressed_total") == 1
                && h.metric("herald_sweep_found_total", ["kind": "schedule_unenqueued"]) == 2
        }
    }

    func testInvalidCronOrZoneIsQuarantinedAndOthersKeepFiring() throws {
        let badCron = try fixture.addPlan(cron: "61 * * * *", dueIn: 1)
        let badZone = try fixture.addPlan(cron: "* * * * *", zone: "Mars/Olympus_Mons", dueIn: 1)
        let good = try fixture.addPlans(5, dueIn: 2)
        let h = try startDaemon(["HERALD_SWEEP_INTERVAL": "1"])
        try waitUntil("good plans fired", timeout: 15) { try fixture.queued().count == 5 }
        try waitUntil("both bad plans quarantined") {
            try fixture.conn.query("SELECT count(*) FROM herald.schedule_quarantine").rows[0][0] == "2"
        }
        XCTAssertEqual(
            Set(
                try fixture.queued().compactMap {
                    if case .string(let s)? = $0.args.first { return s } else { return nil }
                }),
            Set(good.map(\.description)))
        try waitUntil("quarantines counted") { h.metric("herald_schedule_quarantined_total") == 2 }
        // Quarantined plans stay untouched and are not retried on every sweep.
        let sweeps = h.metric("herald_sweeps_total")
        try waitUntil("two more sweeps") { h.metric("herald_sweeps_total") >= sweeps + 2 }
        XCTAssertEqual(
            try fixture.conn.query(
                "SELECT occurrences FROM herald.schedule_quarantine WHERE plan_id = $1",
                [badCron.description]
            ).rows[0][0], "1")
        // Fixing the expression releases it.
        try fixture.conn.query(
            "UPDATE workflow_schedule_plans SET cron_expression = '* * * * *' WHERE id = $1", [badCron.description])
        try waitUntil("fixed plan fires", timeout: 15) { try fixture.queued().count == 6 }
        XCTAssertTrue(h.allUp)
        _ = badZone
    }

    func testRateLimitedAndDisabledTriggersAreSkipped() throws {
        _ = try fixture.addPlan(dueIn: 1, triggerStatus: "rate_limited")
        _ = try fixture.addPlan(dueIn: 1, triggerStatus: "disabled")
        let enabled = try fixture.addPlan(dueIn: 1)
        let h = try startDaemon(["HERALD_SWEEP_INTERVAL": "1"])
        try waitUntil("enabled plan fired", timeout: 15) { try fixture.queued().count == 1 }
        let sweeps = h.metric("herald_sweeps_total")
        try waitUntil("two more sweeps") { h.metric("herald_sweeps_total") >= sweeps + 2 }
        XCTAssertEqual(try fixture.fires().map(\.plan), [enabled.description])
    }

    func testCatchUpPolicyAllBackfillsMissedSlots() throws {
        let plan = try fixture.addPlan(cron: "*/10 * * * *", dueIn: -3600, notify: false)
        try fixture.conn.query(
            "INSERT INTO herald.schedule_policies (plan_id, catch_up) VALUES ($1, 'all')", [plan.description])
        _ = try startDaemon()
        try waitUntil("backfilled", timeout: 15) { try fixture.queued().count >= 6 }
        let fires = try fixture.fires()
        XCTAssertTrue((6...7).contains(fires.count), "an hour of */10 slots: \(fires.count)")
        XCTAssertEqual(Set(try fixture.queued().map(\.id)).count, fires.count)
    }

    func testMaxDispatchPerTickCapsABurst() throws {
        _ = try fixture.addPlans(30, dueIn: -5)
        let h = try startDaemon(["WORKFLOW_SCHEDULE_MAX_DISPATCH_PER_TICK": "10"])
        try waitUntil("all 30 fired eventually", timeout: 20) { try fixture.queued().count == 30 }
        let perSecond = try fixture.conn.query(
            """
            SELECT count(*) FROM herald.schedule_fires GROUP BY date_trunc('second', claimed_at)
            """
        ).rows.compactMap { $0[0].flatMap { Int($0) } }
        // The budget is kept on the local clock and claimed_at is the database's: a claim decided in
        // the last instant of a second may be stamped in the next, so one second can hold two budgets.
        XCTAssertTrue(perSecond.allSatisfy { $0 <= 20 }, "claims per second: \(perSecond)")
        XCTAssertGreaterThanOrEqual(
            perSecond.count, 3, "30 fires at 10 per second need at least 3 seconds: \(perSecond)")
        try waitUntil("dispatches counted") { h.metric("herald_dispatch_total") == 30 }
    }
}
