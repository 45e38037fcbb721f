// Backoff, the adaptive sweep policy and burst logging, driven by a manual
// clock: no test here sleeps.

import HeraldCore
import XCTest

final class BackoffTests: XCTestCase {
    func testGrowsDoublesAndCaps() {
        var b = Backoff(base: .milliseconds(100), cap: .seconds(2), random: { $0.upperBound })
        let delays = (0..<8).map { _ in b.next().milliseconds.rounded() }
        XCTAssertEqual(delays, [100, 200, 400, 800, 1600, 2000, 2000, 2000])
        b.reset()
        XCTAssertEqual(b.next().milliseconds.rounded(), 100)
    }

    func testJitterStaysInUpperHalf() {
        var b = Backoff(base: .milliseconds(100), cap: .seconds(30))
        for attempt in 0..<12 {
            let ceiling = b.nextCeiling.milliseconds
            let d = b.next().milliseconds
            XCTAssertGreaterThanOrEqual(d, ceiling / 2 - 0.001, "attempt \(attempt)")
            XCTAssertLessThanOrEqual(d, ceiling + 0.001, "attempt \(attempt)")
        }
    }

    func testHugeAttemptCountsDoNotOverflow() {
        var b = Backoff(base: .seconds(1), cap: .seconds(60), random: { $0.upperBound })
        for _ in 0..<200 { _ = b.next() }
        XCTAssertEqual(b.next().seconds, 60, accuracy: 0.001)
    }
}

final class SweepPlannerTests: XCTestCase {
    func testStartupSweepThenHealthyInterval() {
        let clock = ManualClock()
        var p = SweepPlanner(healthyInterval: .seconds(30), start: clock.now)
        XCTAssertEqual(p.reasonIfDue(now: clock.now), .startup)
        p.didSweep(at: clock.now)
        clock.advance(by: .seconds(29))
        XCTAssertNil(p.reasonIfDue(now: clock.now))
        clock.advance(by: .seconds(1))
        XCTAssertEqual(p.reasonIfDue(now: clock.now), .interval)
    }

    func testDegradedIntervalWhileASourceIsDown() {
        let clock = ManualClock()
        var p = SweepPlanner(healthyInterval: .seconds(30), start: clock.now)
        p.didSweep(at: clock.now)
        clock.advance(by: .milliseconds(200))
        p.sourceChanged("redis_subscriber", up: false, now: clock.now)
        XCTAssertEqual(p.interval, .seconds(1))
        XCTAssertFalse(p.allUp)
        clock.advance(by: .milliseconds(799))
        XCTAssertNil(p.reasonIfDue(now: clock.now))
        clock.advance(by: .milliseconds(1))
        XCTAssertEqual(p.reasonIfDue(now: clock.now), .interval)
        p.didSweep(at: clock.now)
        clock.advance(by: .seconds(1))
        XCTAssertEqual(p.reasonIfDue(now: clock.now), .interval, "keeps sweeping every second while down")
    }

    func testReconnectSweepsAtOnceThenReturnsToHealthy() {
        let clock = ManualClock()
        var p = SweepPlanner(healthyInterval: .seconds(30), start: clock.now)
        p.didSweep(at: clock.now)
        p.sourceChanged("postgres_listener", up: false, now: clock.now)
        clock.advance(by: .milliseconds(300))
        p.sourceChanged("postgres_listener", up: true, now: clock.now)
        XCTAssertEqual(p.reasonIfDue(now: clock.now), .reconnect)
        p.didSweep(at: clock.now)
        XCTAssertEqual(p.interval, .seconds(30))
        clock.advance(by: .seconds(29))
        XCTAssertNil(p.reasonIfDue(now: clock.now))
    }

    func testUpWithoutPriorDownDoesNotSweep() {
        let clock = ManualClock()
        var p = SweepPlanner(healthyInterval: .seconds(30), start: clock.now)
        p.didSweep(at: clock.now)
        p.sourceChanged("redis_command", up: true, now: clock.now)
        XCTAssertNil(p.reasonIfDue(now: clock.now))
    }

    func testTwoSourcesDownNeedBothBackForHealthyInterval() {
        let clock = ManualClock()
        var p = SweepPlanner(healthyInterval: .seconds(30), start: clock.now)
        p.sourceChanged("a", up: false, now: clock.now)
        p.sourceChanged("b", up: false, now: clock.now)
        p.sourceChanged("a", up: true, now: clock.now)
        XCTAssertEqual(p.interval, .seconds(1))
        p.sourceChanged("b", up: true, now: clock.now)
        XCTAssertEqual(p.interval, .seconds(30))
    }
}

final class BurstLimiterTests: XCTestCase {
    func testLogsFirstOfBurstAndReportsSuppressed() {
        let clock = ManualClock()
        var b = BurstLimiter(quiet: .seconds(10))
        XCTAssertEqual(b.record(now: clock.now), .log(previouslySuppressed: 0))
        for _ in 0..<500 {
            clock.advance(by: .milliseconds(1))
            XCTAssertEqual(b.record(now: clock.now), .suppress)
        }
        clock.advance(by: .seconds(10))
        XCTAssertEqual(b.record(now: clock.now), .log(previouslySuppressed: 500))
    }
}

final class RedisEndpointTests: XCTestCase {
    func testForms() throws {
        XCTAssertEqual(
            try RedisEndpoint.parse("redis://127.0.0.1:6379/0"),
            RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 6379)))
        XCTAssertEqual(
            try RedisEndpoint.parse("redis://:difyai123456@redis:6379/1"),
            RedisEndpoint(address: .tcp(host: "redis", port: 6379), password: "difyai123456", database: 1))
        XCTAssertEqual(
            try RedisEndpoint.parse("redis://user:p%40ss@h"),
            RedisEndpoint(address: .tcp(host: "h", port: 6379), username: "user", password: "p@ss"))
        XCTAssertEqual(
            try RedisEndpoint.parse("redis://[::1]:7000/3"),
            RedisEndpoint(address: .tcp(host: "::1", port: 7000), database: 3))
        XCTAssertEqual(
            try RedisEndpoint.parse("unix:///run/redis.sock?db=2&password=x"),
            RedisEndpoint(address: .unix(path: "/run/redis.sock"), password: "x", database: 2))
    }

    func testErrors() {
        XCTAssertThrowsError(try RedisEndpoint.parse("http://x"))
        XCTAssertThrowsError(try RedisEndpoint.parse("redis://h:99999"))
        XCTAssertThrowsError(try RedisEndpoint.parse("redis://h/x"))
        XCTAssertThrowsError(try RedisEndpoint.parse("rediss://h"))
        // An empty password is none (Redis refuses AUTH "", and the connection would flap forever).
        XCTAssertNil(try RedisEndpoint.parse("redis://:@h:1/0").password)
        XCTAssertNil(try RedisEndpoint.parse("unix:///tmp/r.sock?password=").password)
        XCTAssertThrowsError(try RedisEndpoint.parse("unix://relative.sock"))
        XCTAssertThrowsError(try RedisEndpoint.parse("nonsense"))
    }

    func testRedactionHidesPassword() throws {
        let e = try RedisEndpoint.parse("redis://:s3cret@h:1/2")
        XCTAssertFalse(e.redacted.contains("s3cret"))
        XCTAssertEqual(e.redacted, "redis://:***@h:1/2")
    }
}
