// Against the real Redis and PostgreSQL: each source turns into events, bad
// payloads are rejected and counted while good ones keep flowing, and every
// connection comes back after the server kills it, followed by a sweep.

import Foundation
import HeraldCore
import HeraldIO
import HeraldRuntime
import XCTest

final class EventSourcesTests: XCTestCase {
    var harness: DaemonHarness!

    override func setUpWithError() throws {
        harness = try DaemonHarness()
        try waitUntil("all sources up") { harness.allUp }
    }

    override func tearDown() {
        harness?.stop()
        harness = nil
    }

    func uuid() -> String { UUID().uuidString.lowercased() }

    func testPublishNotifyAndExpiryArriveAsEvents() throws {
        let redis = try TestServers.redis()
        let pg = try TestServers.postgres()
        let id1 = uuid(), id2 = uuid(), id3 = uuid()
        try redis.command(["PUBLISH", Channels.scheduleEvents, "{\"schedule_id\":\"\(id1)\",\"run_now\":true}"])
        try pg.query(
            "SELECT pg_notify($1, $2)",
            [Channels.postgresEvents, "{\"table\":\"workflow_schedule_plans\",\"op\":\"UPDATE\",\"id\":\"\(id2)\"}"])
        try redis.command(["SET", "herald:expiry:test:\(id3)", "1", "PX", "30"])
        try waitUntil("three events") { harness.sourceEvents.count >= 3 }
        let events = harness.sourceEvents
        XCTAssertTrue(events.contains(.scheduleChanged(scheduleID: id1, runNow: true)))
        XCTAssertTrue(
            events.contains(.tableChanged(TableChange(table: "workflow_schedule_plans", operation: .update, id: id2))))
        XCTAssertTrue(events.contains(.keyExpired(name: "test:\(id3)")))
        XCTAssertEqual(harness.metric("herald_events_total", ["source": "redis_pubsub", "outcome": "accepted"]), 1)
        XCTAssertEqual(harness.metric("herald_events_total", ["source": "postgres_notify", "outcome": "accepted"]), 1)
        XCTAssertEqual(harness.metric("herald_events_total", ["source": "redis_expiry", "outcome": "accepted"]), 1)
        XCTAssertEqual(harness.status.keyspaceEvents, true)
    }

    func testMalformedPayloadsAreRejectedWhileValidEventsFlow() throws {
        let redis = try TestServers.redis()
        let pg = try TestServers.postgres()
        let bad: [[UInt8]] = [
            Array("not json at all".utf8),
            [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20),
            [0x00, 0xFF, 0xFE, 0x80, 0x7B],
            Array((String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)).utf8),
            Array("{\"schedule_id\": 12345}".utf8),
            Array("{\"schedule_id\": \"\(uuid())\", \"run_now\": \"yes\"}".utf8),
            Array("[\"\(uuid())\"]".utf8),
        ]
        var good: [String] = []
        for payload in bad {
            try redis.command([Array("PUBLISH".utf8), Array(Channels.scheduleEvents.utf8), payload])
            let id = uuid()
            good.append(id)
            try redis.command(["PUBLISH", Channels.scheduleEvents, "{\"schedule_id\":\"\(id)\"}"])
        }
        for payload in ["{", "{\"table\":\"app_triggers\",\"op\":\"MERGE\",\"id\":\"\(uuid())\"}", "\"str\""] {
            try pg.query("SELECT pg_notify($1, $2)", [Channels.postgresEvents, payload])
        }
        let notifyID = uuid()
        try pg.query(
            "SELECT pg_notify($1, $2)",
            [Channels.postgresEvents, "{\"table\":\"app_triggers\",\"op\":\"DELETE\",\"id\":\"\(notifyID)\"}"])

        try waitUntil("all valid events") { harness.sourceEvents.count >= good.count + 1 }
        let seen = harness.sourceEvents
        for id in good { XCTAssertTrue(seen.contains(.scheduleChanged(scheduleID: id, runNow: false)), id) }
        XCTAssertTrue(
            seen.contains(.tableChanged(TableChange(table: "app_triggers", operation: .delete, id: notifyID))))
        try waitUntil("rejections counted") {
            harness.metric("herald_events_total", ["source": "redis_pubsub", "outcome": "rejected"])
                == Double(bad.count)
                && harness.metric("herald_events_total", ["source": "postgres_notify", "outcome": "rejected"]) == 3
        }
        XCTAssertTrue(harness.allUp, "no bad payload may take a source down")
    }

    func testSubscriberKilledReconnectsResubscribesAndSweeps() throws {
        let redis = try TestServers.redis()
        let sweepsBefore = harness.metric("herald_sweeps_total", ["reason": "reconnect"])
        let reply = try redis.command(["CLIENT", "KILL", "TYPE", "pubsub"])
        XCTAssertGreaterThanOrEqual(reply.integer ?? 0, 1)
        try waitUntil("subscriber back") {
            harness.transitions.contains { $0 == ("redis_subscriber", "disconnected") } && harness.allUp
        }
        XCTAssertEqual(harness.metric("herald_source_up", ["source": "redis_subscriber"]), 1)
        try waitUntil("a reconnect sweep") {
            harness.metric("herald_sweeps_total", ["reason": "reconnect"]) > sweepsBefore
        }
        let id = uuid()
        try waitUntil("events flow again") {
            try redis.command(["PUBLISH", Channels.scheduleEvents, "{\"schedule_id\":\"\(id)\"}"])
            return harness.sourceEvents.contains(.scheduleChanged(scheduleID: id, runNow: false))
        }
    }

    func testCommandConnectionKilledReconnects() throws {
        let redis = try TestServers.redis()
        // Kill every normal client except ourselves: that includes the daemon's command connection.
        try redis.command(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
        try waitUntil("command connection back") {
            harness.transitions.contains { $0 == ("redis_command", "disconnected") } && harness.allUp
        }
    }

    func testListenerTerminatedReconnectsRelistensAndSweeps() throws {
        let pg = try TestServers.postgres()
        guard let pid = harness.listenerPID else { return XCTFail("listener has no backend pid") }
        let sweepsBefore = harness.metric("herald_sweeps_total", ["reason": "reconnect"])
        let r = try pg.query("SELECT pg_terminate_backend($1)", [String(pid)])
        XCTAssertEqual(r.rows.first?.first ?? nil, "t")
        try waitUntil("listener back") {
            harness.transitions.contains { $0 == ("postgres_listener", "disconnected") } && harness.allUp
        }
        XCTAssertNotEqual(harness.listenerPID, pid)
        try waitUntil("a reconnect sweep") {
            harness.metric("herald_sweeps_total", ["reason": "reconnect"]) > sweepsBefore
        }
        let id = uuid()
        try waitUntil("notifications flow again") {
            try pg.query(
                "SELECT pg_notify($1, $2)",
                [Channels.postgresEvents, "{\"table\":\"app_triggers\",\"op\":\"INSERT\",\"id\":\"\(id)\"}"])
            return harness.sourceEvents.contains(
                .tableChanged(TableChange(table: "app_triggers", operation: .insert, id: id)))
        }
    }

    func testFullRedisRestartIsSurvived() throws {
        try TestServers.services("redis-restart")
        try waitUntil("both redis connections back", timeout: 30) {
            harness.transitions.contains { $0 == ("redis_subscriber", "disconnected") } && harness.allUp
        }
        // The restarted server has default notify-keyspace-events: the daemon must set it again.
        try waitUntil("keyspace events re-enabled") {
            let r = try TestServers.redis().command(["CONFIG", "GET", "notify-keyspace-events"])
            if case .array(let items) = r, items.count == 2, let v = items[1].text {
                return v.contains("E") && v.contains("x")
            }
            return false
        }
        let redis = try TestServers.redis()
        let id = uuid()
        try waitUntil("events flow after restart") {
            try redis.command(["PUBLISH", Channels.scheduleEvents, "{\"schedule_id\":\"\(id)\"}"])
            return harness.sourceEvents.contains(.scheduleChanged(scheduleID: id, runNow: false))
        }
    }
}
