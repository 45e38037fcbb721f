// The pure parts of schedules: plan ids and the fire
// decisions (Dify's overdue rule, the catch-up policies, quarantine).

import HeraldCore
import XCTest

final class PlanIDTests: XCTestCase {
    func testRoundTripAndCase() {
        let text = "0192F3C4-1111-7AAA-8BBB-123456789ABC"
        let id = PlanID(text)
        XCTAssertEqual(id?.description, text.lowercased())
        XCTAssertEqual(PlanID(text.lowercased()), id)
        XCTAssertNil(PlanID("not-a-uuid"))
        XCTAssertNil(PlanID("0192f3c4-1111-7aaa-8bbb-123456789abg"))
        XCTAssertEqual(MemoryLayout<PlanID>.size, 16)
    }
}

final class FirePlannerTests: XCTestCase {
    let plan = PlanID("0192f3c4-1111-7aaa-8bbb-123456789abc")!
    let minute: Int64 = 60_000_000
    // 2026-01-01T00:00:00Z
    let t0: Int64 = 1_767_225_600_000_000

    func decide(_ p: DuePlan, now: Int64) -> FireDecision {
        var cache: [String: CronSchedule] = [:]
        return FirePlanner.decide(p, now: now, cache: &cache)
    }

    func testOnTimeFireAdvancesToNextSlot() {
        let p = DuePlan(id: plan, cronExpression: "*/5 * * * *", timezone: "UTC", nextRunAt: t0)
        XCTAssertEqual(decide(p, now: t0 + 3_000), .fire(fires: [t0], nextRunAt: t0 + 5 * minute))
    }

    func testOverduePlanFiresOnceThenNextFutureSlot() {
        // Dify's rule: an hour overdue fires once, next_run_at moves past now.
        let p = DuePlan(id: plan, cronExpression: "*/5 * * * *", timezone: "UTC", nextRunAt: t0)
        XCTAssertEqual(decide(p, now: t0 + 61 * minute), .fire(fires: [t0], nextRunAt: t0 + 65 * minute))
    }

    func testSkipPolicyDropsLateFires() {
        var p = DuePlan(
            id: plan, cronExpression: "0 * * * *", timezone: "UTC", nextRunAt: t0, policy: .skip,
            misfireGraceSeconds: 60)
        XCTAssertEqual(decide(p, now: t0 + 30_000_000), .fire(fires: [t0], nextRunAt: t0 + 60 * minute))
        p.nextRunAt = t0
        XCTAssertEqual(decide(p, now: t0 + 2 * minute), .fire(fires: [], nextRunAt: t0 + 60 * minute))
    }

    func testAllPolicyBackfillsUpToTheCap() {
        let p = DuePlan(
            id: plan, cronExpression: "*/10 * * * *", timezone: "UTC", nextRunAt: t0, policy: .all, maxCatchUp: 100)
        XCTAssertEqual(
            decide(p, now: t0 + 35 * minute),
            .fire(fires: [t0, t0 + 10 * minute, t0 + 20 * minute, t0 + 30 * minute], nextRunAt: t0 + 40 * minute))
        let capped = DuePlan(
            id: plan, cronExpression: "* * * * *", timezone: "UTC", nextRunAt: t0, policy: .all, maxCatchUp: 3)
        XCTAssertEqual(
            decide(capped, now: t0 + 100 * minute),
            .fire(fires: [t0, t0 + minute, t0 + 2 * minute], nextRunAt: t0 + 101 * minute))
    }

    func testNotYetDueByTheDatabaseClockDoesNothing() {
        let p = DuePlan(id: plan, cronExpression: "* * * * *", timezone: "UTC", nextRunAt: t0 + minute)
        XCTAssertEqual(decide(p, now: t0), .fire(fires: [], nextRunAt: t0 + minute))
    }

    func testPreClaimWithinTheLeadComputesTheNextSlotAfterTheClaimedOne() {
        var cache: [String: CronSchedule] = [:]
        let p = DuePlan(id: plan, cronExpression: "* * * * *", timezone: "UTC", nextRunAt: t0 + minute)
        XCTAssertEqual(
            FirePlanner.decide(p, now: t0 + minute - 1_500_000, lead: 2_000_000, cache: &cache),
            .fire(fires: [t0 + minute], nextRunAt: t0 + 2 * minute))
        XCTAssertEqual(
            FirePlanner.decide(p, now: t0 + minute - 2_500_000, lead: 2_000_000, cache: &cache),
            .fire(fires: [], nextRunAt: t0 + minute), "beyond the lead: not yet")
    }

    func testBadCronOrZoneIsQuarantinedNotThrown() {
        for (cron, zone) in [
            ("61 * * * *", "UTC"), ("* * * *", "UTC"), ("* * * * *", "Mars/Olympus"), ("0 0 30 2 *", "UTC"),
        ] {
            let p = DuePlan(id: plan, cronExpression: cron, timezone: zone, nextRunAt: t0)
            guard case .quarantine = decide(p, now: t0) else {
                return XCTFail("\(cron) in \(zone) must be quarantined")
            }
        }
    }

    func testZoneAwareNextSlot() {
        // 09:00 in Asia/Shanghai is 01:00Z.
        let p = DuePlan(id: plan, cronExpression: "0 9 * * *", timezone: "Asia/Shanghai", nextRunAt: t0 + 60 * minute)
        XCTAssertEqual(
            decide(p, now: t0 + 60 * minute + 1), .fire(fires: [t0 + 60 * minute], nextRunAt: t0 + 25 * 60 * minute))
    }
}
