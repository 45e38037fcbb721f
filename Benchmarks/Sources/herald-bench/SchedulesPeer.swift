// Column "dify poller" of the `schedules` scenario: Tests/Support/bench_dify_poller.py,
// Dify's poll_workflow_schedules written for the benchmark (its SQL, batches of
// 100, croniter from now, a Celery group sent with kombu before the commit), as
// one long-lived child process on a copy of the same data with a key prefix of
// its own. This type speaks its line protocol: a ready line, then one
// `tick START_NS MAX_SECONDS` per measurement, answered when the tick is over.

import Foundation
import HeraldCore

/// The Python reference poller.
final class DifyPollerPeer {
    private let python: String
    private let script: String
    private let databaseURL: String
    private let brokerURL: String
    private let keyPrefix: String
    private let batch: Int
    private var process: Process?
    private var stdinPipe: Pipe?
    private var reader: LineReader?
    /// Library versions the peer reported.
    private(set) var versions = ""

    /// One tick as the peer saw it.
    struct Tick: Sendable {
        var dispatched = 0
        var batches = 0
        var startNs: Int64 = 0
        var endNs: Int64 = 0
        /// select, cron, dispatch, update_commit (ns summed over the tick).
        var phases: [String: Int64] = [:]
        var error: String?
    }

    /// Celery's `global_keyprefix` for Dify's REDIS_KEY_PREFIX `keyPrefix`.
    init(python: String, script: String, databaseURL: String, brokerURL: String, keyPrefix: String, batch: Int) {
        self.python = python
        self.script = script
        self.databaseURL = databaseURL
        self.brokerURL = brokerURL
        self.keyPrefix = keyPrefix
        self.batch = batch
    }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [
            script, "--postgres", databaseURL, "--broker", brokerURL, "--key-prefix", keyPrefix + ":",
            "--batch", String(batch),
        ]
        let out = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardInput = inp
        p.standardError = FileHandle.standardError
        try p.run()
        process = p
        stdinPipe = inp
        let r = LineReader(fd: out.fileHandleForReading.fileDescriptor)
        reader = r
        guard let line = r.line(), let v = try? JSONReader.parse(Array(line.utf8), maxDepth: 4),
            case .bool(true)? = v["ready"]
        else {
            p.terminate()
            p.waitUntilExit()
            throw BenchFailure("the Dify poller peer did not start (exit \(p.terminationStatus))")
        }
        var parts: [String] = []
        for k in ["celery", "kombu", "psycopg", "croniter", "python"] {
            if case .string(let s)? = v[k] { parts.append("\(k) \(s)") }
        }
        versions = parts.joined(separator: ", ")
    }

    /// Runs one poller tick starting at `startNs` (CLOCK_REALTIME); returns when it is over.
    func tick(startNs: Int64, maxSeconds: Double) -> Tick {
        guard let w = stdinPipe?.fileHandleForWriting, let r = reader else { return Tick(error: "peer not running") }
        w.write(Data("tick \(startNs) \(maxSeconds)\n".utf8))
        guard let line = r.line(), let v = try? JSONReader.parse(Array(line.utf8), maxDepth: 4) else {
            return Tick(error: "the peer printed no tick result")
        }
        func int(_ value: JSONValue?) -> Int64 {
            if case .number(let d)? = value { return Int64(d) }
            return 0
        }
        var t = Tick(
            dispatched: Int(int(v["dispatched"])), batches: Int(int(v["batches"])),
            startNs: int(v["start_ns"]), endNs: int(v["end_ns"]))
        if case .object(let phases)? = v["phases_ns"] { t.phases = phases.mapValues { int($0) } }
        if case .string(let e)? = v["error"] { t.error = e }
        return t
    }

    /// Ends the peer; returns its VmRSS and VmHWM (KiB).
    func quit() -> (rss: Int?, hwm: Int?) {
        guard let p = process else { return (nil, nil) }
        defer {
            process = nil
            stdinPipe = nil
            reader = nil
        }
        stdinPipe?.fileHandleForWriting.write(Data("quit\n".utf8))
        var rss: Int?, hwm: Int?
        if let line = reader?.line(), let v = try? JSONReader.parse(Array(line.utf8), maxDepth: 4) {
            if case .number(let d)? = v["rss_kib"] { rss = Int(d) }
            if case .number(let d)? = v["hwm_kib"] { hwm = Int(d) }
        }
        if !BenchClock.wait(timeout: .seconds(5), until: { !p.isRunning }) { p.terminate() }
        p.waitUntilExit()
        return (rss, hwm)
    }
}
