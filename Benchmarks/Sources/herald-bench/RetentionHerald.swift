// Column "herald" of the `retention` scenario: `herald run-task clean_messages` or
// `clean_workflow_runlogs_precise` as a child process on the column's copy of the
// data, with a REDIS_KEY_PREFIX of its own (its task lock) and the retention
// settings. Its figures come from the run's row in herald.task_runs (status, report
// counts, started_at → finished_at); a binary without the task is "not run".

import Foundation
import HeraldCore
import HeraldIO

/// Which task a column runs.
enum RetentionTask: String, Sendable {
    case messages
    case runs

    var heraldTask: String { self == .messages ? "clean_messages" : "clean_workflow_runlogs_precise" }
    /// The parent's name in the report (Herald's key is the table name; `runs`/`messages` also read).
    var parentKey: String { self == .messages ? "messages" : "runs" }
    var parentTable: String { self == .messages ? "messages" : "workflow_runs" }
}

/// Runs `herald run-task` on one database.
struct RetentionHeraldRunner {
    let environment: BenchEnvironment
    let keyPrefix: String

    /// The retention settings of one run.
    static func settings(task: RetentionTask, days: Int, batch: Int, maxIntervalMs: Int) -> [String: String] {
        switch task {
        case .messages:
            return [
                "SANDBOX_EXPIRED_RECORDS_RETENTION_DAYS": String(days),
                "SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_SIZE": String(batch),
                "SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_MAX_INTERVAL": String(maxIntervalMs), "BILLING_ENABLED": "false",
                "ENABLE_CLEAN_MESSAGES": "true",
            ]
        case .runs:
            return [
                "WORKFLOW_LOG_RETENTION_DAYS": String(days), "WORKFLOW_LOG_CLEANUP_BATCH_SIZE": String(batch),
                "WORKFLOW_LOG_CLEANUP_BATCH_MAX_INTERVAL": String(maxIntervalMs),
                "WORKFLOW_LOG_CLEANUP_ENABLED": "true",
            ]
        }
    }

    func run(
        _ task: RetentionTask, column: RetentionColumn = .herald, databaseURL: String, database: PostgresConnInfo,
        settings: [String: String]
    ) -> RetentionRun {
        var out = RetentionRun(column: column)
        guard FileManager.default.isExecutableFile(atPath: environment.heraldBinary) else {
            out.available = false
            out.note = "no herald binary at \(environment.heraldBinary) (set HERALD_BIN)"
            return out
        }
        var env = ProcessInfo.processInfo.environment
        // Only the settings below: nothing inherited may change the batch size, target or pauses.
        let owned = ["HERALD_TEST_", "HERALD_RETENTION_", "SANDBOX_EXPIRED_RECORDS_", "WORKFLOW_LOG_", "BILLING_"]
        for k in env.keys where owned.contains(where: { k.hasPrefix($0) }) { env[k] = nil }
        env["HERALD_DATABASE_URL"] = databaseURL
        env["HERALD_REDIS_URL"] = environment.redisURL
        env["REDIS_KEY_PREFIX"] = keyPrefix
        env["HERALD_INSTANCE_ID"] = "herald-bench-retention"
        env["HERALD_LOG_LEVEL"] = "warning"
        env["HERALD_METRICS_ADDR"] = "off"
        for (k, v) in BenchEnvironment.quietBeat { env[k] = v }
        if (env["HERALD_TOPOLOGY"] ?? "").isEmpty, let root = BenchEnvironment.repositoryRoot(),
            FileManager.default.fileExists(atPath: root + "/topology/default.json")
        {
            env["HERALD_TOPOLOGY"] = root + "/topology/default.json"
        }
        for (k, v) in settings { env[k] = v }
        let child: ChildResult
        do {
            child = try ChildProcess.run(environment.heraldBinary, ["run-task", task.heraldTask], environment: env)
        } catch {
            out.error = "\(error)"
            return out
        }
        out.processWallNs = child.wallNs
        out.maxRSSKiB = child.maxRSSKiB > 0 ? child.maxRSSKiB : nil
        if child.exitCode == 2, child.stderr.contains("unknown or unimplemented task") {
            out.available = false
            out.note = "`herald run-task \(task.heraldTask)`: not implemented in this binary (exit 2)"
            return out
        }
        // The run's record: the newest row of the task.
        do {
            let c = try PostgresConnection(connInfo: database)
            let r = try c.query(
                """
                SELECT status, report::text, (EXTRACT(EPOCH FROM finished_at - started_at) * 1e9)::bigint, error
                  FROM herald.task_runs WHERE task = $1 AND NOT dry_run ORDER BY started_at DESC LIMIT 1
                """, [task.heraldTask])
            guard let row = r.rows.first else {
                out.error =
                    "no herald.task_runs row for \(task.heraldTask) (\(child.describeExit)): \(Self.tail(child.stderr))"
                return out
            }
            let status = row[0] ?? "?"
            out.workNs = row[2].flatMap { Int64($0) }
            if let text = row[1], let report = try? JSONReader.parse(Array(text.utf8), maxDepth: 8),
                case .object(let counts)? = report["counts"]
            {
                func int(_ key: String) -> Int? {
                    if case .number(let d)? = counts[key] { return Int(d) }
                    return nil
                }
                out.reportedParents = int(task.parentTable) ?? int(task.parentKey)
                out.reportedRows = int("rows")
                out.batches = int("batches")
                out.longestBatchNs = int("longest_batch_us").map { Int64($0) * 1000 }
                out.counts = counts.keys.sorted().compactMap { k in int(k).map { (k, $0) } }
            }
            if status != "succeeded" || child.exitCode != 0 {
                out.error =
                    "run \(status), \(child.describeExit)" + (row[3].map { ": \($0)" } ?? "")
                    + (child.stderr.isEmpty ? "" : " (stderr: \(Self.tail(child.stderr)))")
            }
        } catch {
            out.error = "cannot read herald.task_runs: \(error) (\(child.describeExit))"
        }
        if out.workNs == nil { out.workNs = child.wallNs }
        return out
    }

    static func tail(_ s: String, _ n: Int = 400) -> String {
        s.split(whereSeparator: \.isNewline).suffix(4).joined(separator: " | ").suffix(n).description
    }
}
