// Column "dify peer" of the `retention` scenario: Tests/Support/bench_retention_peer.py
// (Dify's two cleanups in Python) as a child process on the column's copy of the
// data; it prints one JSON line with its counts, time and longest transaction.

import Foundation
import HeraldCore

/// Runs Tests/Support/bench_retention_peer.py on one database.
struct RetentionPeerRunner {
    let python: String
    let script: String

    func run(_ task: RetentionTask, databaseURL: String, days: Int, batch: Int, maxIntervalMs: Int) -> RetentionRun {
        var out = RetentionRun(column: .peer)
        var env = ProcessInfo.processInfo.environment
        env["PYTHONUNBUFFERED"] = "1"
        let child: ChildResult
        do {
            child = try ChildProcess.run(
                python,
                [
                    script, "--postgres", databaseURL, "--task", task.rawValue, "--days", String(days),
                    "--batch", String(batch), "--max-interval-ms", String(maxIntervalMs),
                ],
                environment: env)
        } catch {
            out.error = "\(error)"
            return out
        }
        out.processWallNs = child.wallNs
        out.maxRSSKiB = child.maxRSSKiB > 0 ? child.maxRSSKiB : nil
        guard let line = child.stdout.split(whereSeparator: \.isNewline).last,
            let v = try? JSONReader.parse(Array(line.utf8), maxDepth: 4)
        else {
            out.error =
                "the peer printed no result (\(child.describeExit)): \(RetentionHeraldRunner.tail(child.stderr))"
            return out
        }
        func num(_ key: String) -> Double? {
            if case .number(let d)? = v[key] { return d }
            return nil
        }
        out.reportedParents = num("deleted").map { Int($0) }
        out.reportedRows = num("rows").map { Int($0) }
        out.batches = num("batches").map { Int($0) }
        out.workNs = num("seconds").map { Int64($0 * 1e9) }
        out.longestBatchNs = num("longest_txn_ms").map { Int64($0 * 1e6) }
        out.pausedNs = num("paused_seconds").map { Int64($0 * 1e9) }
        if case .string(let e)? = v["error"] { out.error = e }
        if case .string(let p)? = v["python"], case .string(let pg)? = v["psycopg"] {
            out.note = "Python \(p), psycopg \(pg)"
        }
        return out
    }
}
