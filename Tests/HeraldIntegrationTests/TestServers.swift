// The real servers the harness started (Tests/Support/services.sh), and small
// helpers shared by the integration tests: bounded polls with a deadline
// (never fixed sleeps), a daemon running in-process on its own loop, and a
// reader for the Prometheus text format.

import Foundation
import HeraldCore
import HeraldIO
import HeraldRuntime
import Logging
import XCTest

enum TestServers {
    static var env: [String: String] { ProcessInfo.processInfo.environment }

    /// The private servers, or a skip (a failure when the harness promised them).
    static func require() throws -> (redis: String, database: String) {
        guard let r = env["HERALD_TEST_REDIS_URL"], let d = env["HERALD_TEST_DATABASE_URL"] else {
            if env["HERALD_TEST_REQUIRE_SERVERS"] == "1" {
                XCTFail(
                    "HERALD_TEST_REDIS_URL/HERALD_TEST_DATABASE_URL missing although the harness should have set them")
            }
            throw XCTSkip("no test servers (run through `make test`)")
        }
        return (r, d)
    }

    static func redis() throws -> RedisClient {
        let (r, _) = try require()
        return try RedisClient(endpoint: RedisEndpoint.parse(r))
    }

    static func postgres() throws -> PostgresConnection {
        let (_, d) = try require()
        return try PostgresConnection(connInfo: PostgresConnInfo(d))
    }

    /// True in the test pass on Dify's real schema (Tests/Support/run-tests.sh, pass 2).
    static var difySchema: Bool { env["HERALD_TEST_SCHEMA"] == "dify" }

    /// `CREATE DATABASE name`: empty in the first pass, a copy of Dify's real schema in the second.
    static func createDatabase(_ admin: PostgresConnection, _ name: String) throws {
        if difySchema, let template = env["HERALD_TEST_DIFY_TEMPLATE"] {
            try admin.query("CREATE DATABASE \(name) TEMPLATE \(template)")
        } else {
            try admin.query("CREATE DATABASE \(name)")
        }
    }

    /// Runs Tests/Support/services.sh with `command` (e.g. redis-restart).
    static func services(_ command: String) throws {
        guard let script = env["HERALD_TEST_SERVICES"] else { throw XCTSkip("HERALD_TEST_SERVICES not set") }
        XCTAssertEqual(spawnAndWait(["/bin/bash", script, command]), 0, "services.sh \(command)")
    }
}

/// Runs a program and waits for it with waitpid (Foundation's Process can miss
/// the exit of a child whose own children daemonize).
func spawnAndWait(_ argv: [String]) -> Int32 {
    var pid: pid_t = 0
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    let rc = posix_spawn(&pid, argv[0], nil, nil, cArgs, environ)
    guard rc == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status >> 8) & 0xFF
}

/// Polls `condition` until it holds or `timeout` passes.
func waitUntil(
    _ what: String, timeout: Double = 10, file: StaticString = #filePath, line: UInt = #line,
    _ condition: () throws -> Bool
) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return }
        usleep(10_000)
    }
    XCTFail("timed out after \(timeout)s waiting for: \(what)", file: file, line: line)
}

/// A daemon on its own loop thread, recording what it sees.
final class DaemonHarness: @unchecked Sendable {
    let loop: EventLoop
    let daemon: Daemon
    private let lock = NSLock()
    private var _events: [Event] = []
    private var _transitions: [(String, String)] = []

    /// Dify's beat entries that are on by default and run as `celery` tasks: off in tests
    /// unless a test turns them on, so that no test's queues receive another's beat messages.
    static let quietBeat = [
        "ENABLE_HUMAN_INPUT_TIMEOUT_TASK": "false", "ENABLE_TRIGGER_PROVIDER_REFRESH_TASK": "false",
        "ENABLE_API_TOKEN_LAST_USED_UPDATE_TASK": "false", "ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK": "false",
        "ENABLE_CLEAN_OAUTH_ACCESS_TOKENS_TASK": "false",
    ]

    /// A daemon on the test servers; `env` adds settings, which the tasks read too.
    init(env extra: [String: String] = [:], quietBeat: Bool = true) throws {
        let (r, d) = try TestServers.require()
        var env = [
            "HERALD_REDIS_URL": r, "CELERY_BROKER_URL": r, "HERALD_DATABASE_URL": d,
            "HERALD_METRICS_ADDR": "127.0.0.1:0", "HERALD_SWEEP_INTERVAL": "30", "HERALD_INSTANCE_ID": "test",
        ]
        if quietBeat { env.merge(Self.quietBeat) { _, new in new } }
        env.merge(extra) { _, new in new }
        let settings = try Settings.load(from: env)
        var logger = Logger(label: "herald-test") { label in
            HeraldLogHandler(label: label, format: .logfmt, level: .warning)
        }
        logger.logLevel = .warning
        loop = try EventLoop()
        daemon = Daemon(settings: settings, loop: loop, logger: logger)
        loop.start()
        let d2 = daemon
        d2.taskEnvironment = TaskSettings.applyingHeraldOverrides(
            ProcessInfo.processInfo.environment.merging(env) { _, new in new })
        let startError: String? = loop.sync {
            d2.onEvent = { [weak self] e in self?.record(e) }
            d2.onSourceChange = { [weak self] n, s in self?.transition(n, s) }
            do { try d2.start(installSignalHandlers: false) } catch { return "\(error)" }
            return nil
        }
        if let e = startError { throw XCTSkip("daemon did not start: \(e)") }
    }

    func stop() {
        let d = daemon
        loop.sync { d.shutdown(reason: "test") }
        loop.stop()
        loop.waitUntilStopped()
    }

    private func record(_ e: Event) { lock.withLock { _events.append(e) } }
    private func transition(_ n: String, _ s: String) { lock.withLock { _transitions.append((n, s)) } }

    var events: [Event] { lock.withLock { _events } }
    var transitions: [(String, String)] { lock.withLock { _transitions } }

    /// Events other than sweeps.
    var sourceEvents: [Event] { events.filter { if case .sweep = $0 { return false } else { return true } } }

    var status: DaemonStatus {
        let d = daemon
        return loop.sync { d.status() }
    }

    /// Every source ready and no schedule operation failing (the daemon's `healthy` also wants
    /// the schema at its version and a usable topology, which not every test sets up).
    var allUp: Bool {
        let s = status
        return s.sources.allSatisfy { $0.state == "ready" } && s.scheduleFailures.isEmpty
    }

    /// The value of one sample in the daemon's /metrics text.
    func metric(_ name: String, _ labels: [String: String] = [:]) -> Double {
        let text = String(decoding: daemon.metrics.render(), as: UTF8.self)
        return PrometheusText.value(text, name, labels)
    }

    var metricsPort: Int {
        let d = daemon
        return loop.sync { d.metricsPort ?? 0 }
    }

    var listenerPID: Int32? {
        let d = daemon
        return loop.sync { d.listenerBackendPID }
    }
}

/// Reads samples out of the Prometheus text format.
enum PrometheusText {
    static func value(_ text: String, _ name: String, _ labels: [String: String]) -> Double {
        var total = 0.0
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard line.hasPrefix(name) else { continue }
            let rest = line.dropFirst(name.count)
            guard rest.first == "{" || rest.first == " " else { continue }
            var sampleLabels: [String: String] = [:]
            var valueText = rest
            if rest.first == "{", let close = rest.firstIndex(of: "}") {
                for pair in rest[rest.index(after: rest.startIndex)..<close].split(separator: ",") {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    if kv.count == 2 { sampleLabels[String(kv[0])] = String(kv[1].dropFirst().dropLast()) }
                }
                valueText = rest[rest.index(after: close)...]
            }
            guard labels.allSatisfy({ sampleLabels[$0.key] == $0.value }) else { continue }
            total += Double(valueText.trimmingCharacters(in: .whitespaces)) ?? 0
        }
        return total
    }
}
