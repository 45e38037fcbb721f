// The broker side of exactly-once, against a real Redis: a claim's fires are cut
// into the same chunks whatever order they come in, each chunk is queued at most
// once (its marker is set in the same script as the LPUSH), a flushed script
// cache is recovered from, pre-encoded commands go out byte for byte, and only
// claims enqueued long ago are pruned, with their fires. Also
// migration 9, which moves fire records made before it into claims.

import Foundation
import HeraldCelery
import HeraldCore
import HeraldIO
import HeraldTasks
import XCTest

final class FireDispatcherTests: XCTestCase {
    private var fixture: ScheduleFixture!

    override func tearDown() {
        fixture?.drop()
        fixture = nil
    }

    private func makeFires(_ n: Int, at: Int64) -> [ClaimedFire] {
        (0..<n).map { _ in
            let plan = PlanID(UUID().uuidString)!
            return ClaimedFire(
                plan: plan, scheduledAt: at, kind: .cron,
                taskID: CeleryMessage.taskID(scheduleID: plan.description, scheduledAt: at / 1_000_000))
        }
    }

    func testFormattedPipelineSendsBytesUnchanged() throws {
        let redis = try TestServers.redis()
        let key = "t" + UUID().uuidString.prefix(8) + ":formatted"
        defer { _ = try? redis.command(["DEL", key]) }
        let value = (0...255).map(UInt8.init) + Array("\r\n$3\r\n*1\r\n".utf8)
        var set = RESPCommand(count: 3)
        set.append("SET")
        set.append(key)
        set.append(value)
        var get = RESPCommand(count: 2)
        get.append("GET")
        get.append(key)
        var empty = RESPCommand(count: 2)
        empty.append("ECHO")
        empty.append([UInt8]())
        let replies = try redis.pipeline(formatted: [set.bytes, get.bytes, empty.bytes])
        XCTAssertEqual(replies.count, 3)
        XCTAssertEqual(replies[0].text, "OK")
        guard case .string(let got) = replies[1] else { return XCTFail("GET: \(replies[1])") }
        XCTAssertEqual(got, value)
        guard case .string(let echoed) = replies[2] else { return XCTFail("ECHO: \(replies[2])") }
        XCTAssertEqual(echoed, [])
        XCTAssertEqual(RESPCommand.bulkSize(value.count), 5 + String(value.count).count + value.count)
    }

    func testChunksAreTheSameInAnyOrderAndEachIsQueuedOnce() throws {
        fixture = try ScheduleFixture()
        let dispatcher = FireDispatcher(
            broker: try RedisEndpoint.parse(TestServers.require().redis), redisKeyPrefix: fixture.keyPrefix,
            instanceID: "test")
        let t1: Int64 = 1_767_225_600_000_000, t2 = t1 + 60_000_000
        let all = makeFires(1_200, at: t1) + makeFires(3, at: t2)
        let chunks = dispatcher.chunks(claim: 42, fires: all)
        XCTAssertEqual(chunks.map(\.fires.count), [500, 500, 200, 3])
        XCTAssertEqual(chunks.map(\.scheduledAt), [t1, t1, t1, t2])
        XCTAssertEqual(Set(chunks.flatMap(\.fires).map(\.taskID)), Set(all.map(\.taskID)))
        let again = dispatcher.chunks(claim: 42, fires: all.shuffled())
        XCTAssertEqual(
            again.map { $0.fires.map(\.taskID) }, chunks.map { $0.fires.map(\.taskID) }, "same chunks in any order")

        XCTAssertEqual(try dispatcher.push(chunks), [true, true, true, true])
        XCTAssertEqual(try fixture.queued().count, 1_203)
        let redis = try TestServers.redis()
        for c in chunks {
            XCTAssertTrue(c.marker.hasPrefix(fixture.keyPrefix + ":herald:sent:42:"), c.marker)
            XCTAssertGreaterThan(
                try redis.command(["TTL", c.marker]).integer ?? 0, 6 * 86_400, "a week until the claim is recorded")
        }
        try dispatcher.settle(markers: chunks.map(\.marker))
        for c in chunks {
            let ttl = try redis.command(["TTL", c.marker]).integer ?? 0
            XCTAssertTrue(ttl > 0 && ttl <= 900, "minutes once it is: \(ttl)")
        }
        XCTAssertEqual(try dispatcher.push(again), [false, false, false, false], "a re-send queues nothing")
        XCTAssertEqual(try fixture.queued().count, 1_203)
        // Another claim of the same fires is another set of chunks (the primary key in PostgreSQL is what
        // stops a second claim of a slot; the markers only make re-sends of one claim idempotent).
        XCTAssertEqual(try dispatcher.push(dispatcher.chunks(claim: 43, fires: Array(all.prefix(2)))), [true])

        // The broker forgot the script (SCRIPT FLUSH, a failover): loaded again, nothing lost or doubled.
        try TestServers.redis().command(["SCRIPT", "FLUSH"])
        let later = makeFires(7, at: t2)
        XCTAssertEqual(try dispatcher.push(dispatcher.chunks(claim: 44, fires: later)), [true])
        XCTAssertEqual(try dispatcher.push(dispatcher.chunks(claim: 44, fires: later)), [false])
        let queued = try fixture.queued()
        XCTAssertEqual(queued.count, 1_212)
        XCTAssertEqual(Set(queued.map(\.id)).count, 1_210, "only claim 43 repeated two task ids")
        XCTAssertTrue(
            queued.allSatisfy { $0.task == DifyCeleryTasks.runScheduleTrigger.name && $0.queue == "schedule_executor" })
    }

    func testPruneDropsOnlyOldEnqueuedClaimsAndTheirFires() throws {
        fixture = try ScheduleFixture()
        let at: Int64 = 1_767_225_600_000_000
        // (claimed days ago, enqueued): old and sent, old and still open, recent and sent.
        let cases: [(days: Int, enqueued: Bool)] = [(10, true), (10, false), (1, true)]
        var claims: [Int64] = []
        for (i, c) in cases.enumerated() {
            let k = try XCTUnwrap(
                Int64(try fixture.conn.query("SELECT nextval('herald.schedule_claim_seq')").rows[0][0] ?? ""))
            claims.append(k)
            let slot = at + Int64(i) * 60_000_000
            try fixture.conn.query(
                """
                INSERT INTO herald.schedule_claims (id, via, claimed_by, claimed_at, release_at, fires, enqueued_at)
                VALUES ($1, 'timer', 'test', now() - make_interval(days => $2::int), to_timestamp($3::bigint / 1000000.0) AT TIME ZONE 'UTC',
                        2, CASE WHEN $4::bool THEN now() - make_interval(days => $2::int) END)
                """, [String(k), String(c.days), String(slot), c.enqueued ? "true" : "false"])
            for f in makeFires(2, at: slot) {
                try fixture.conn.query(
                    """
                    INSERT INTO herald.schedule_fires (plan_id, scheduled_at, kind, task_id, via, claimed_by, claim_id)
                    VALUES ($1, to_timestamp($2::bigint / 1000000.0) AT TIME ZONE 'UTC', 'cron', $3, 'timer', 'test', $4)
                    """, [f.plan.description, String(f.scheduledAt), f.taskID, String(k)])
            }
        }
        let store = PlanStore(instanceID: "test")
        XCTAssertEqual(try store.pruneFires(fixture.conn, olderThanDays: 7), 2)
        XCTAssertEqual(
            try fixture.conn.query("SELECT id FROM herald.schedule_claims ORDER BY id").rows.map { $0[0] ?? "" },
            [String(claims[1]), String(claims[2])], "the open claim stays until it is sent")
        XCTAssertEqual(try fixture.fires().count, 4)
        XCTAssertEqual(try store.pruneFires(fixture.conn, olderThanDays: 7), 0)
    }

    func testMigrationNineMovesEarlierFireRecordsIntoClaims() throws {
        fixture = try ScheduleFixture(migrations: Migrations.all.filter { $0.version < 9 })
        let at: Int64 = 1_767_225_600_000_000
        let enqueued = makeFires(3, at: at), open = makeFires(2, at: at)
        for (list, done) in [(enqueued, true), (open, false)] {
            for f in list {
                try fixture.conn.query(
                    """
                    INSERT INTO herald.schedule_fires (plan_id, scheduled_at, kind, task_id, via, claimed_by, enqueued_at)
                    VALUES ($1, to_timestamp($2::bigint / 1000000.0) AT TIME ZONE 'UTC', 'cron', $3, 'timer', 'old', \(done ? "now()" : "NULL"))
                    """, [f.plan.description, String(f.scheduledAt), f.taskID])
            }
        }
        let report = try Migrator.migrate(fixture.conn)
        XCTAssertEqual(report.applied.first, "9 herald_schedule_claims")
        let fires = try fixture.fires()
        XCTAssertEqual(fires.count, 5)
        XCTAssertEqual(Set(fires.filter(\.enqueued).map(\.plan)), Set(enqueued.map(\.plan.description)))
        XCTAssertEqual(
            try fixture.conn.query(
                """
                SELECT count(*) FILTER (WHERE enqueued_at IS NULL), count(*) FILTER (WHERE enqueued_at IS NOT NULL), sum(fires)
                  FROM herald.schedule_claims
                """
            ).rows[0], ["1", "1", "5"])
        let store = PlanStore(instanceID: "test")
        let stale = try store.openClaims(fixture.conn, olderThanSeconds: 0, limit: 10)
        XCTAssertEqual(stale.count, 1)
        XCTAssertEqual(
            Set(stale[0].fires.map(\.taskID)), Set(open.map(\.taskID)), "the unsent ones are re-sent by the sweep")
        XCTAssertEqual(
            try fixture.conn.query(
                """
                SELECT count(*) FROM pg_indexes WHERE schemaname = 'herald' AND tablename = 'schedule_fires'
                """
            ).rows[0][0], "2", "the primary key and the claim index")
        XCTAssertEqual(try Migrator.migrate(fixture.conn).applied, [], "a second run changes nothing")
    }
}
