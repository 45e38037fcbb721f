// `celery` beat entries against real PostgreSQL and Redis: a tick's message is
// pushed once however often it is sent, a tick claimed by an instance that died
// before pushing is sent again by the sweep, and one that was pushed but never
// recorded is not pushed twice. Requests send a fresh message each time.

import Foundation
import HeraldCelery
import HeraldCore
import HeraldIO
import HeraldRuntime
import HeraldTasks
import Logging
import Synchronization
import XCTest

final class CeleryBeatTests: XCTestCase {
    static let call = CeleryBeatCall(task: "human_input_form_timeout.check_and_resume", queue: "schedule_executor")

    /// The messages on `key`, oldest first, as (task name, id, routing key).
    private func messages(_ redis: RedisClient, _ key: String) throws -> [(String, String, String)] {
        guard case .array(let items) = try redis.command(["LRANGE", key, "0", "-1"]) else { return [] }
        return items.reversed().compactMap { item in
            guard case .string(let bytes) = item,
                let envelope = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
                let headers = envelope["headers"] as? [String: Any],
                let properties = envelope["properties"] as? [String: Any],
                let delivery = properties["delivery_info"] as? [String: Any]
            else { return nil }
            return (
                headers["task"] as? String ?? "", headers["id"] as? String ?? "",
                delivery["routing_key"] as? String ?? ""
            )
        }
    }

    func testATickIsPushedOnceAndARequestEachTime() throws {
        let (r, _) = try TestServers.require()
        let prefix = "cb" + UUID().uuidString.lowercased().prefix(8)
        let redis = try TestServers.redis()
        defer {
            if case .array(let keys)? = try? redis.command(["KEYS", prefix + ":*"]) {
                for k in keys { if case .string(let b) = k { _ = try? redis.command([Array("DEL".utf8), b]) } }
            }
        }
        let sender = CeleryBeatSender(broker: try RedisEndpoint.parse(r), redisKeyPrefix: prefix, origin: "herald@test")
        let tick: Int64 = 1_700_000_040
        let id = CeleryBeatSender.taskID(task: .humanInputFormTimeout, tick: tick)
        XCTAssertEqual(try sender.send(Self.call, task: .humanInputFormTimeout, tick: tick), .enqueued(taskID: id))
        XCTAssertEqual(try sender.send(Self.call, task: .humanInputFormTimeout, tick: tick), .alreadySent(taskID: id))
        _ = try sender.send(Self.call, task: .humanInputFormTimeout, tick: nil)
        _ = try sender.send(Self.call, task: .humanInputFormTimeout, tick: nil)
        let queued = try messages(redis, prefix + ":schedule_executor")
        XCTAssertEqual(queued.count, 3, "one per tick, one per request")
        XCTAssertEqual(queued.map(\.0), Array(repeating: Self.call.task, count: 3))
        XCTAssertEqual(queued.map(\.2), Array(repeating: "schedule_executor", count: 3))
        XCTAssertEqual(queued[0].1, id)
        XCTAssertEqual(Set(queued.map(\.1)).count, 3)
        guard
            case .integer(let ttl) = try redis.command([
                "TTL", sender.markerKey(task: .humanInputFormTimeout, tick: tick),
            ])
        else { return XCTFail("no marker") }
        XCTAssertGreaterThan(ttl, 86_000, "the marker lasts a day")
    }

    func testTheSweepSendsTicksThatWereClaimedButNeverEnqueuedOnce() throws {
        let fx = try DatasetFixture()
        defer { fx.drop() }
        try fx.migrate()
        let (r, d) = try TestServers.require()
        var info = try PostgresConnInfo(d)
        info["dbname"] = fx.database
        let pool = PostgresPool(connInfo: info, size: 3)
        let broker = try RedisEndpoint.parse(r)
        let descriptor = TaskDescriptor(
            name: .humanInputFormTimeout, schedule: .every(minutes: 60, setting: nil), queue: "schedule_executor",
            lock: LockPolicy.none, run: .celery, celery: Self.call)
        let topology = try Topology.make(
            queues: [TopologyQueue(name: "schedule_executor", concurrency: 2)],
            tasks: [descriptor])
        let resolved = try HeraldTaskCatalog.resolve(topology, path: "test")
        XCTAssertEqual(resolved.mode(.humanInputFormTimeout), .celery)
        let resources = DatasetTaskResources(
            pool: pool, redis: broker, broker: broker, redisKeyPrefix: fx.keyPrefix,
            origin: "herald@test")
        let registry = try HeraldTaskCatalog.make(resolved, resources: resources)
        let loop = try EventLoop()
        var logger = Logger(label: "test.beat")
        logger.logLevel = .error
        let recorder = StatusRecorder()
        let executor = try TaskExecutor(
            loop: loop, pool: pool, topology: topology, registry: registry, settings: TaskSettings([:]), locks: nil,
            instanceID: "survivor", modes: resolved.modes, observers: [recorder], logger: logger)
        loop.start(name: "test-beat")
        defer {
            loop.sync { executor.stop() }
            loop.stop()
            loop.waitUntilStopped()
        }
        loop.sync { executor.start(armingSchedules: false) }

        // An instance claimed three ticks and died: before pushing the first, after pushing the
        // second; the third is older than the markers' lifetime and is left alone.
        let sender = CeleryBeatSender(broker: broker, redisKeyPrefix: fx.keyPrefix, origin: "herald@dead")
        let now = Int64(Date().timeIntervalSince1970)
        let (lost, pushed, old) = (now - 120, now - 60, now - 2 * 86_400)
        _ = try sender.send(Self.call, task: .humanInputFormTimeout, tick: pushed)
        for tick in [lost, pushed, old] {
            try fx.conn.query(
                """
                INSERT INTO herald.task_ticks (task, tick_at, claimed_by, claimed_at, run_mode)
                VALUES ('human_input_form_timeout', to_timestamp($1::double precision) AT TIME ZONE 'UTC', 'dead',
                        now() - interval '1 minute', 'celery')
                """, [String(tick)])
        }
        let ticks = [lost, pushed]

        // As the daemon's sweep does: one tick per task per pass, until none is left.
        try waitUntil("both recent ticks recorded as enqueued", timeout: 15) {
            loop.sync { executor.resendUnsentTicks(olderThan: 1) }
            Thread.sleep(forTimeInterval: 0.2)
            return try fx.conn.query(
                """
                SELECT count(*) FROM herald.task_ticks WHERE enqueued_at IS NOT NULL
                """
            ).rows[0][0] == "2"
        }
        for _ in 0..<3 {  // more sweeps find nothing more to send (checked below)
            loop.sync { executor.resendUnsentTicks(olderThan: 1) }
            Thread.sleep(forTimeInterval: 0.2)
        }
        let queued = try messages(fx.redis, fx.keyPrefix + ":schedule_executor")
        let ids = queued.map(\.1)
        XCTAssertEqual(
            ids.filter { $0 == CeleryBeatSender.taskID(task: .humanInputFormTimeout, tick: ticks[0]) }.count, 1,
            "the tick that was never pushed is sent once")
        XCTAssertEqual(
            ids.filter { $0 == CeleryBeatSender.taskID(task: .humanInputFormTimeout, tick: ticks[1]) }.count, 1,
            "the tick that was pushed is not pushed again")
        XCTAssertEqual(ids.count, 2, "the old tick stays unsent")
        let taken = try fx.conn.query("SELECT claimed_by FROM herald.task_ticks WHERE enqueued_at IS NOT NULL").rows
        XCTAssertEqual(Set(taken.compactMap { $0[0] }), ["survivor"])
        XCTAssertTrue(recorder.statuses.contains { $0.task == .humanInputFormTimeout && $0.status == .succeeded })
    }
}

/// Collects status events.
private final class StatusRecorder: TaskObserver, @unchecked Sendable {
    private let lock = NSLock()
    private var events: [TaskStatusEvent] = []

    func observe(_ event: TaskStatusEvent) { lock.withLock { events.append(event) } }

    var statuses: [TaskStatusEvent] { lock.withLock { events } }
}
