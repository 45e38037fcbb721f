// PostgreSQL and Redis both go away for 20 s while plans fall due, and a listener on each of
// their ports accepts and closes every connection meanwhile (a proxy in front of a restarting
// server looks like this). `herald run` must not storm them: its connection attempts stay about
// one per second per connection and its CPU stays low; once the servers are back, every plan
// that fell due fires exactly once, within seconds.

import Foundation
import HeraldCore
import HeraldIO
import XCTest

/// A listener on 127.0.0.1:`port` that accepts and at once closes every connection, counting them.
private final class CountingListener: @unchecked Sendable {
    private let fd: Int32
    private let lock = NSLock()
    private var accepted = 0
    private var stopped = false

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 128) == 0 else {
            close(fd)
            throw XCTSkip("cannot listen on \(port): errno \(errno)")
        }
        Thread.detachNewThread { [self] in
            while !lock.withLock({ stopped }) {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, 100) > 0 else { continue }
                let c = accept(fd, nil, nil)
                if c >= 0 {
                    lock.withLock { accepted += 1 }
                    close(c)
                }
            }
            close(fd)
        }
    }

    var count: Int { lock.withLock { accepted } }

    func stop() {
        lock.withLock { stopped = true }
        usleep(300_000)
    }
}

final class OutageTests: XCTestCase {
    private func services(_ command: String) -> Int32 {
        guard let script = Binary.env["HERALD_TEST_SERVICES"] else { return -1 }
        var pid: pid_t = 0
        let args: [String] = ["/bin/bash", script, command]
        let argv = args.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawn(&pid, "/bin/bash", nil, nil, argv, environ) == 0 else { return -1 }
        return Binary.wait(pid, timeout: 120) ?? -1
    }

    func testAnOutageOfBothServersCostsFewAttemptsAndLosesNothing() throws {
        let (redisURL, _) = try Binary.servers()
        guard Binary.env["HERALD_TEST_SERVICES"] != nil, let redisPort = Binary.env["HERALD_TEST_REDIS_PORT"],
            let pgPort = Binary.env["HERALD_TEST_PG_PORT"]
        else { throw XCTSkip("needs the harness's services.sh") }
        let db = try PrivateDatabase(prefix: "herald_outage")
        let prefix = "out" + UUID().uuidString.lowercased().prefix(8)
        var outage = false
        var pid: pid_t = 0
        defer {
            if pid > 0 {
                kill(pid, SIGKILL)
                _ = Binary.wait(pid, timeout: 5)
            }
            if outage { _ = services("outage-end") }
            db.drop()
            if let redis = try? RedisClient(endpoint: RedisEndpoint.parse(redisURL)) {
                Binary.deleteKeys(redis, prefix: prefix + ":")
            }
        }
        let metricsPort = Binary.freePort()
        let env = [
            "HERALD_REDIS_URL": redisURL, "HERALD_DATABASE_URL": db.url, "REDIS_KEY_PREFIX": prefix,
            "HERALD_SWEEP_INTERVAL": "5", "HERALD_METRICS_ADDR": "127.0.0.1:\(metricsPort)",
            "HERALD_LOG_LEVEL": "notice",
        ]
        XCTAssertEqual(try Binary.run(["migrate", "--create-dify-tables"], env: env).status, 0)
        // 60 plans due 8 to 19 s from now: all of them inside the outage.
        let n = 60
        try PostgresConnection(connInfo: db.info).transaction { c in
            let tenant = UUID().uuidString.lowercased()
            try c.query("INSERT INTO tenants (id, name) VALUES ($1, 't')", [tenant])
            try c.query(
                """
                INSERT INTO apps (tenant_id, name, mode, enable_site, enable_api)
                SELECT $1, 'a' || g, 'workflow', true, true FROM generate_series(1, $2::int) g
                """, [tenant, String(n)])
            try c.query(
                """
                INSERT INTO app_triggers (tenant_id, app_id, node_id, trigger_type, title, status, updated_at)
                SELECT $1, id, 'n', 'trigger-schedule', 's', 'enabled', now() AT TIME ZONE 'UTC' FROM apps
                """, [tenant])
            try c.query(
                """
                INSERT INTO workflow_schedule_plans (app_id, node_id, tenant_id, cron_expression, timezone, next_run_at)
                SELECT id, 'n', $1, '0 0 1 1 *', 'UTC',
                       date_trunc('seconds', now() AT TIME ZONE 'UTC') + make_interval(secs => 8 + (row_number() OVER () % 12))
                  FROM apps
                """, [tenant])
        }
        let log = NSTemporaryDirectory() + "herald-outage-\(UUID()).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        pid = try Binary.spawn(["run"], env: env, log: log)
        try eventually("the daemon is up", timeout: 20) {
            (try? String(contentsOfFile: log, encoding: .utf8)) != nil && Binary.cpuSeconds(pid) > 0
        }
        Thread.sleep(forTimeInterval: 2)  // connected, window loaded

        // The outage: both servers stopped, a listener on each port.
        XCTAssertEqual(services("outage-start"), 0)
        outage = true
        let redisListener = try CountingListener(port: Int(redisPort)!)
        let pgListener = try CountingListener(port: Int(pgPort)!)
        let cpuBefore = Binary.cpuSeconds(pid)
        let seconds = 20.0
        Thread.sleep(forTimeInterval: seconds / 2)
        // Halfway: both breakers open (2) or probing (1) in the metrics and in /healthz.
        let metrics = String(
            decoding: try HTTPClient.get("http://127.0.0.1:\(metricsPort)/metrics").body, as: UTF8.self)
        let health = String(
            decoding: try HTTPClient.get("http://127.0.0.1:\(metricsPort)/healthz").body, as: UTF8.self)
        Thread.sleep(forTimeInterval: seconds / 2)
        let cpu = Binary.cpuSeconds(pid) - cpuBefore
        for dependency in ["postgresql", "redis"] {
            let line = metrics.split(separator: "\n").first {
                $0.hasPrefix("herald_circuit_state{dependency=\"\(dependency)\"}")
            }
            XCTAssertTrue(
                line?.hasSuffix(" 2.0") == true || line?.hasSuffix(" 1.0") == true,
                "\(dependency) breaker during the outage: \(line.map(String.init) ?? "no gauge")")
            XCTAssertTrue(
                health.contains("\"\(dependency)\":{\"state\":\"open\"")
                    || health.contains("\"\(dependency)\":{\"state\":\"half_open\""), health)
        }
        let redisAttempts = redisListener.count, pgAttempts = pgListener.count
        redisListener.stop()
        pgListener.stop()
        XCTAssertEqual(services("outage-end"), 0)
        outage = false
        let backAt = Date()

        print(
            "outage of \(Int(seconds)) s: \(redisAttempts) Redis and \(pgAttempts) PostgreSQL connection attempts, "
                + "\(String(format: "%.2f", cpu)) s of CPU")
        // Herald holds 2 loop connections to Redis, 1 listener and a pool of 4 to PostgreSQL (plus the
        // blocking push and lock clients): about one attempt per second per connection is the bound.
        XCTAssertLessThanOrEqual(Double(redisAttempts), seconds * 3, "Redis attempts")
        XCTAssertLessThanOrEqual(Double(pgAttempts), seconds * 5, "PostgreSQL attempts")
        XCTAssertLessThan(cpu, 2.0, "CPU seconds during the outage (debug build)")

        // Back: every plan that fell due fires exactly once.
        let conn = try PostgresConnection(connInfo: db.info)
        try eventually("every plan fired after the outage", timeout: 40) {
            try conn.query("SELECT count(*) FROM herald.schedule_fire_log WHERE enqueued_at IS NOT NULL").rows[0][0]
                == String(n)
        }
        print(
            "after the outage: every plan fired \(String(format: "%.1f", Date().timeIntervalSince(backAt))) s after the servers were back"
        )
        let redis = try RedisClient(endpoint: RedisEndpoint.parse(redisURL))
        guard case .array(let items) = try redis.command(["LRANGE", prefix + ":schedule_executor", "0", "-1"]) else {
            return XCTFail("no queue")
        }
        XCTAssertEqual(items.count, n, "one message per plan")
        XCTAssertEqual(try conn.query("SELECT count(*) FROM herald.schedule_fires").rows[0][0], String(n))

        // The breakers: each server's opened once during the outage and closed once after it.
        let lines = (try String(contentsOfFile: log, encoding: .utf8)).split(separator: "\n")
        for dependency in ["postgresql", "redis"] {
            let opened = lines.filter { $0.contains("circuit opened: connects to \(dependency) at") }.count
            let closed = lines.filter { $0.contains("circuit closed: \(dependency) at") }.count
            print("\(dependency): \(opened) circuit opened, \(closed) closed log lines")
            XCTAssertGreaterThanOrEqual(opened, 1, "\(dependency) breaker opened")
            XCTAssertLessThanOrEqual(opened, 2, "\(dependency): one line per server, not per attempt")
            XCTAssertEqual(closed, opened, "\(dependency) breaker closed again")
        }
    }
}
