// The async Redis connection on its own: unix sockets and database numbers from
// the URL, AUTH with ACL users, and the connect/command timeouts hiredis 0.14
// lacks, against a server that accepts connections and never answers.

import Foundation
import HeraldCore
import HeraldIO
import XCTest

final class RedisConnectionTests: XCTestCase {
    var loop: EventLoop!

    override func setUpWithError() throws {
        loop = try EventLoop()
        loop.start()
    }

    override func tearDown() {
        loop.stop()
        loop.waitUntilStopped()
        loop = nil
    }

    func env(_ k: String) throws -> String {
        guard let v = ProcessInfo.processInfo.environment[k] else {
            if ProcessInfo.processInfo.environment["HERALD_TEST_REQUIRE_SERVERS"] == "1" { XCTFail("\(k) missing") }
            throw XCTSkip("\(k) not set (run through make test)")
        }
        return v
    }

    /// Records state changes and messages of one connection.
    final class Probe: @unchecked Sendable {
        let lock = NSLock()
        var states: [(RedisConnection.State, String?)] = []
        var messages: [[UInt8]] = []
        func state(_ s: RedisConnection.State, _ r: String?) { lock.withLock { states.append((s, r)) } }
        func message(_ m: [UInt8]) { lock.withLock { messages.append(m) } }
        var ready: Bool { lock.withLock { states.last?.0 == .ready } }
        var reasons: [String] { lock.withLock { states.compactMap { $0.1 } } }
        var count: Int { lock.withLock { messages.count } }
    }

    func subscriber(_ url: String, channel: String, timeouts: Duration = .seconds(5)) throws -> (RedisConnection, Probe)
    {
        let endpoint = try RedisEndpoint.parse(url)
        let probe = Probe()
        let loop = self.loop!
        let conn = loop.sync { () -> RedisConnection in
            let c = RedisConnection(
                name: "test", loop: loop, endpoint: endpoint, connectTimeout: timeouts, commandTimeout: timeouts,
                backoff: Backoff(base: .milliseconds(50), cap: .milliseconds(200)))
            c.onStateChange = { s, r in probe.state(s, r) }
            if !channel.isEmpty { c.subscribe(channel) { probe.message($0) } }
            c.start()
            return c
        }
        addTeardownBlock { [loop] in loop.sync { conn.stop() } }
        return (conn, probe)
    }

    func wait(_ what: String, timeout: Double = 10, _ cond: () -> Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if cond() { return }
            usleep(10_000)
        }
        XCTFail("timed out waiting for \(what)")
    }

    func testUnixSocketAndDatabaseNumberFromTheURL() throws {
        let socket = try env("HERALD_TEST_REDIS_SOCKET")
        let tcp = try RedisClient(endpoint: RedisEndpoint.parse(try env("HERALD_TEST_REDIS_URL")))
        try tcp.command(["CONFIG", "SET", "notify-keyspace-events", "Ex"])
        let (_, probe) = try subscriber("unix://\(socket)?db=3", channel: Channels.expiredKeyEvents(database: 3))
        wait("subscribed over the unix socket") { probe.ready }
        let db3 = try RedisClient(endpoint: RedisEndpoint.parse("unix://\(socket)?db=3"))
        try db3.command(["SET", "herald:expiry:unix-test", "1", "PX", "10"])
        wait("expiry in database 3 arrives") { probe.count == 1 }
        XCTAssertEqual(probe.messages.first.map { String(decoding: $0, as: UTF8.self) }, "herald:expiry:unix-test")
    }

    func testAuthWithAnACLUserAndARefusedPassword() throws {
        let url = try env("HERALD_TEST_REDIS_URL")
        let admin = try RedisClient(endpoint: RedisEndpoint.parse(url))
        let user = "herald_t_\(UInt32.random(in: 0...UInt32.max))"
        try admin.command(["ACL", "SETUSER", user, "on", ">s3cret", "~*", "&*", "+@all"])
        defer { _ = try? admin.command(["ACL", "DELUSER", user]) }
        let port = try env("HERALD_TEST_REDIS_PORT")
        let (_, good) = try subscriber("redis://\(user):s3cret@127.0.0.1:\(port)/0", channel: "herald-acl-test")
        wait("authenticated and subscribed") { good.ready }
        try admin.command(["PUBLISH", "herald-acl-test", "hello"])
        wait("message through the authenticated connection") { good.count == 1 }

        let (_, bad) = try subscriber("redis://\(user):wrong@127.0.0.1:\(port)/0", channel: "herald-acl-test")
        wait("AUTH refused and retried") { bad.reasons.filter { $0.contains("AUTH refused") }.count >= 2 }
        XCTAssertFalse(bad.ready)
        XCTAssertFalse(bad.reasons.joined().contains("wrong"), "the password never appears in a reason")
    }

    func testCommandTimeoutAgainstASilentServer() throws {
        // A socket that listens but never answers: TCP connects, Redis never replies.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        XCTAssertEqual(listen(fd, 16), 0)
        let port = UInt16(bigEndian: addr.sin_port)
        let (_, probe) = try subscriber("redis://127.0.0.1:\(port)/0", channel: "", timeouts: .milliseconds(300))
        wait("command timeouts, then reconnects") { probe.reasons.filter { $0.contains("timed out") }.count >= 2 }
        XCTAssertFalse(probe.ready)
    }

    func testUnresolvableHostFailsWithoutBlockingTheLoop() throws {
        let (_, probe) = try subscriber("redis://no-such-host.invalid:6379/0", channel: "x")
        wait("resolution failure reported") { probe.reasons.contains { $0.contains("no-such-host.invalid") } }
        // The loop kept serving meanwhile.
        XCTAssertEqual(loop.sync { 42 }, 42)
    }
}
