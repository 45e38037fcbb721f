// Column "herald" of the `schedules` scenario: the real `herald run` binary as a
// child process on a private database and a private REDIS_KEY_PREFIX (so its
// Celery list is `<prefix>:schedule_executor`), with its metrics endpoint on a
// free port. The benchmark reads /healthz, /metrics and /proc/<pid>/status from
// outside, and stops it with SIGTERM (a clean exit is part of the result).

import Foundation
import Glibc
import HeraldIO

/// One `herald run` child process.
final class HeraldDaemonProcess {
    let environment: BenchEnvironment
    let databaseURL: String
    let keyPrefix: String
    let instanceID: String
    private(set) var port = 0
    private var process: Process?
    private let logPath: String
    /// From spawn to the first /healthz 200.
    private(set) var readyNs: Int64?
    private var spawnedNs: Int64 = 0

    init(environment: BenchEnvironment, databaseURL: String, keyPrefix: String, instanceID: String) {
        self.environment = environment
        self.databaseURL = databaseURL
        self.keyPrefix = keyPrefix
        self.instanceID = instanceID
        logPath = NSTemporaryDirectory() + "herald-bench-\(instanceID)-\(getpid()).log"
    }

    var pid: Int32? { process?.processIdentifier }
    var isRunning: Bool { process?.isRunning ?? false }
    var spawnedAtMonotonicNs: Int64 { spawnedNs }

    /// Starts the daemon and waits for /healthz to answer 200.
    func start(extraEnvironment: [String: String] = [:]) throws {
        guard FileManager.default.isExecutableFile(atPath: environment.heraldBinary) else {
            throw BenchFailure("no herald binary at \(environment.heraldBinary) (set HERALD_BIN)")
        }
        guard let port = IdleRSSProbe.freePort() else { throw BenchFailure("no free TCP port for HERALD_METRICS_ADDR") }
        self.port = port
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: environment.heraldBinary)
        p.arguments = ["run"]
        var env = ProcessInfo.processInfo.environment
        for k in env.keys where k.hasPrefix("HERALD_TEST_") { env[k] = nil }
        env["HERALD_REDIS_URL"] = environment.redisURL
        env["HERALD_DATABASE_URL"] = databaseURL
        env["REDIS_KEY_PREFIX"] = keyPrefix
        env["HERALD_METRICS_ADDR"] = "127.0.0.1:\(port)"
        env["HERALD_LOG_LEVEL"] = "warning"
        env["HERALD_INSTANCE_ID"] = instanceID
        for (k, v) in BenchEnvironment.quietBeat { env[k] = v }
        for (k, v) in extraEnvironment { env[k] = v }
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle(forWritingAtPath: logPath)
        spawnedNs = BenchClock.monotonicNs()
        try p.run()
        process = p
        let url = "http://127.0.0.1:\(port)/healthz"
        let healthy = BenchClock.wait(timeout: .seconds(20), every: .milliseconds(10)) {
            guard p.isRunning else { return true }
            return (try? HTTPClient.get(url, timeout: .milliseconds(500)).status) == 200
        }
        guard healthy, p.isRunning else {
            let tail = logTail()
            _ = stop()
            throw BenchFailure("herald run did not become healthy: \(tail)")
        }
        readyNs = BenchClock.monotonicNs() - spawnedNs
    }

    /// Every sample of /metrics, keyed by `name{labels}` as printed.
    func metrics() -> [String: Double] {
        guard port > 0, let r = try? HTTPClient.get("http://127.0.0.1:\(port)/metrics", timeout: .seconds(2)),
            r.status == 200
        else { return [:] }
        var out: [String: Double] = [:]
        for line in String(decoding: r.body, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else {
                continue
            }
            out[String(line[..<space])] = v
        }
        return out
    }

    /// The sum of every sample of `name` (all label sets), or nil when absent.
    func metric(_ name: String, in samples: [String: Double]) -> Double? {
        var total: Double?
        for (k, v) in samples where k == name || k.hasPrefix(name + "{") { total = (total ?? 0) + v }
        return total
    }

    /// Plans armed as timers now (`herald_schedule_armed_plans`).
    func armed() -> Int? { metric("herald_schedule_armed_plans", in: metrics()).map { Int($0) } }

    /// Fields of /proc/<pid>/status and smaps_rollup (kB values, `Threads` a count).
    func memory() -> [String: Int] {
        guard let pid else { return [:] }
        var out: [String: Int] = [:]
        if let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) {
            for f in ["VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"] { out[f] = IdleRSSProbe.field(f, in: s) }
        }
        if let s = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8) {
            out["Pss"] = IdleRSSProbe.field("Pss", in: s)
        }
        return out
    }

    /// SIGTERM, then waits up to 10 s (SIGKILL after that); returns the exit status.
    @discardableResult
    func stop() -> Int32? {
        guard let p = process else { return nil }
        defer { process = nil }
        if p.isRunning { kill(p.processIdentifier, SIGTERM) }
        if !BenchClock.wait(timeout: .seconds(10), every: .milliseconds(10), until: { !p.isRunning }) {
            kill(p.processIdentifier, SIGKILL)
        }
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// The last lines of the daemon's log (warnings and errors only).
    func logTail(_ bytes: Int = 600) -> String {
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return String(log.suffix(bytes))
    }

    /// Warning and error lines the daemon logged.
    func logLines() -> [String] {
        ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func removeLog() { try? FileManager.default.removeItem(atPath: logPath) }
}
