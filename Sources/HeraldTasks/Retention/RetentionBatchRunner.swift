// The loop both retention cleanups share: keyset batches over (created_at, id), each
// one short statement (its own transaction), sized to stay under the target duration,
// a failed batch retried with backoff from the same cursor (never skipped), an optional
// random pause between batches, and a stop at the next batch when asked. Memory is one
// batch's counters, whatever the table size.

import Foundation
import HeraldCore
import HeraldIO

/// A position in a (created_at, id) keyset scan.
public struct KeysetCursor: Sendable, Equatable {
    /// `created_at` as PostgreSQL prints a naive timestamp.
    public var createdAt: String
    /// The row id.
    public var id: String

    /// Before every row.
    public static let start = KeysetCursor(createdAt: "-infinity", id: "00000000-0000-0000-0000-000000000000")

    public init(createdAt: String, id: String) {
        self.createdAt = createdAt
        self.id = id
    }
}

/// What one batch did.
public struct RetentionBatch: Sendable, Equatable {
    /// Rows the keyset scan returned (the batch's size before the policy filtered it).
    public var scanned: Int
    /// The last scanned key (the next batch starts after it); nil when nothing was scanned.
    public var last: KeysetCursor?
    /// Rows deleted per table (dry run: rows that would be deleted).
    public var deleted: [String: Int]
    /// Scanned parent rows the policy kept.
    public var kept: Int

    public init(scanned: Int, last: KeysetCursor?, deleted: [String: Int], kept: Int = 0) {
        self.scanned = scanned
        self.last = last
        self.deleted = deleted
        self.kept = kept
    }
}

extension RetentionBatch {
    /// Reads a batch statement's one row: the batch's size, its last `created_at` and `id`, then
    /// one count per table of `tables`.
    static func parse(_ r: PostgresRows, tables: [String], operation: String) throws(RetentionError) -> RetentionBatch {
        guard let row = r.rows.first, row.count == 3 + tables.count, let scanned = row[0].flatMap({ Int($0) }) else {
            throw .unexpectedResult(operation: operation, detail: "\(r.rows)")
        }
        var last: KeysetCursor?
        if let at = row[1], let id = row[2] { last = KeysetCursor(createdAt: at, id: id) }
        return RetentionBatch(
            scanned: scanned, last: last,
            deleted: try counts(Array(row[3...]), tables: tables, operation: operation))
    }

    /// One count per table, zeros left out.
    static func counts(_ values: [String?], tables: [String], operation: String) throws(RetentionError) -> [String: Int]
    {
        guard values.count == tables.count else {
            throw .unexpectedResult(operation: operation, detail: "\(values.count) counts for \(tables.count) tables")
        }
        var out: [String: Int] = [:]
        for (table, v) in zip(tables, values) {
            guard let n = v.flatMap({ Int($0) }) else {
                throw .unexpectedResult(operation: operation, detail: "count of \(table): \(String(describing: v))")
            }
            if n > 0 { out[table] = n }
        }
        return out
    }
}

/// What a cleanup run did.
public struct RetentionReport: Sendable, Equatable {
    /// The cut-off (naive UTC): rows created before it expire.
    public var cutoff: String
    /// Batches that succeeded.
    public var batches = 0
    /// Parent rows scanned.
    public var scanned = 0
    /// Parent rows the policy kept.
    public var kept = 0
    /// Rows deleted per table.
    public var deleted: [String: Int] = [:]
    /// Failed batch attempts that were retried.
    public var retries = 0
    /// Of those, batches cancelled by `statement_timeout` (retried smaller).
    public var timeouts = 0
    /// The longest batch statement, in microseconds (the longest any of its row locks was held).
    public var longestBatchMicros = 0
    /// The batch size the run ended with.
    public var finalBatchSize = 0
    /// True when nothing was changed.
    public var dryRun = false
    /// False when the run stopped early on request.
    public var completed = true
    /// Parent rows created before the cut-off when the run started: the total its progress is a
    /// share of (nil when the count did not finish within 10 s).
    public var candidates: Int?

    /// Every table's deleted rows.
    public var totalDeleted: Int { deleted.values.reduce(0, +) }
}

/// Why a retention run failed.
public enum RetentionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A batch failed `attempts` times in a row; the cursor stays before it, so the next run retries it.
    case batchFailed(attempts: Int, last: String)
    /// A statement returned something other than the shape the cleaner relies on.
    case unexpectedResult(operation: String, detail: String)
    /// The billing service could not provide what the policy needs.
    case billing(String)

    public var description: String {
        switch self {
        case .batchFailed(let n, let last): return "a batch failed \(n) times in a row; last error: \(last)"
        case .unexpectedResult(let op, let detail): return "\(op): unexpected result: \(detail)"
        case .billing(let m): return "billing: \(m)"
        }
    }
}

/// Drives keyset batches on one connection.
struct RetentionBatchRunner {
    /// The progress total (``RetentionReport/candidates``), counted by the cleaner before the run.
    var candidates: Int?

    /// `SELECT count(*)` of the run's candidates, given at most 10 s (a huge table is not worth
    /// a long scan for a progress figure): nil when it took longer or failed.
    static func count(_ conn: PostgresConnection, _ sql: String, _ params: [String?]) -> Int? {
        let text = try? conn.transaction { c -> String? in
            try c.execute(script: "SET LOCAL statement_timeout = '10s'")
            let rows = try c.query(sql, params).rows
            return rows.isEmpty ? nil : rows[0][0]
        }
        return (text ?? nil).flatMap { Int($0) }
    }

    /// The first batch's size (the configured one).
    var batchStart: Int
    var batchCeiling: Int
    var targetMs: Int
    var pauseMaxMs: Int
    var lockTimeoutMs: Int
    var statementTimeoutMs: Int
    var attempts: Int
    var retryBaseMs: Int
    /// The cut-off the run deletes before (naive UTC).
    var cutoff: String
    var dryRun: Bool

    /// A runner for rows older than `days` before `now` (the cut-off read from PostgreSQL), with
    /// the settings' target, lock timeout and retries; no pauses on a dry run.
    init(
        _ conn: PostgresConnection, now: Date, days: Int, batchSize: Int, pauseMaxMs: Int, dryRun: Bool,
        settings: RetentionSettings
    ) throws(RetentionError) {
        do {
            cutoff = try EmbeddingCacheCleaner.cutoff(conn, now: now, days: days)
        } catch {
            throw .unexpectedResult(operation: "compute cut-off", detail: "\(error)")
        }
        batchStart = batchSize
        batchCeiling = batchSize * settings.maxBatchGrowth
        targetMs = settings.batchTargetMs
        self.pauseMaxMs = dryRun ? 0 : pauseMaxMs
        lockTimeoutMs = settings.lockTimeoutMs
        statementTimeoutMs = settings.statementTimeoutMs
        attempts = settings.batchAttempts
        retryBaseMs = settings.retryBaseMs
        self.dryRun = dryRun
    }

    /// Runs `batch(conn, cursor, limit)` until a batch scans fewer rows than asked.
    /// `onBatch` sees the running report after every batch (metrics, progress).
    func run(
        _ conn: PostgresConnection, shouldContinue: () -> Bool, onBatch: (RetentionBatch, RetentionReport) -> Void,
        batch: (PostgresConnection, KeysetCursor, Int) throws -> RetentionBatch
    ) throws(RetentionError) -> RetentionReport {
        var report = RetentionReport(cutoff: cutoff)
        report.dryRun = dryRun
        report.candidates = candidates
        var sizing = AdaptiveBatchSize(start: batchStart, ceiling: batchCeiling, targetSeconds: Double(targetMs) / 1000)
        var cursor = KeysetCursor.start
        var backoff = Backoff(base: .milliseconds(Int64(retryBaseMs)), cap: .seconds(60))
        configureSession(conn)
        defer { _ = try? conn.execute(script: "RESET lock_timeout; RESET statement_timeout; RESET plan_cache_mode") }
        while true {
            guard shouldContinue() else {
                report.completed = false
                break
            }
            var limit = sizing.current
            var failures = 0
            var result: RetentionBatch
            var seconds: Double
            while true {
                let t0 = DispatchTime.now().uptimeNanoseconds
                do {
                    result = try batch(conn, cursor, limit)
                    seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                    backoff.reset()
                    break
                } catch let e as RetentionError {
                    throw e
                } catch {
                    // A failed statement held its locks until it was cancelled or failed: count that too.
                    let held = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                    report.longestBatchMicros = max(report.longestBatchMicros, Int(held * 1e6))
                    failures += 1
                    report.retries += 1
                    if failures >= attempts { throw .batchFailed(attempts: failures, last: "\(error)") }
                    if Self.isStatementTimeout(error) {
                        // The batch did not fit under statement_timeout right now: retry a much smaller one.
                        report.timeouts += 1
                        sizing.record(rows: limit, seconds: 2 * Double(statementTimeoutMs) / 1000)
                        limit = sizing.current
                    }
                    let wait = backoff.next()
                    Self.sleep(milliseconds: Int(wait.seconds * 1000), shouldContinue: shouldContinue)
                    guard shouldContinue() else {
                        report.completed = false
                        report.finalBatchSize = sizing.current
                        return report
                    }
                    if !conn.isHealthy {
                        try? conn.resetIfBroken()
                        configureSession(conn)
                    }
                }
            }
            report.batches += 1
            report.scanned += result.scanned
            report.kept += result.kept
            for (table, n) in result.deleted { report.deleted[table, default: 0] += n }
            report.longestBatchMicros = max(report.longestBatchMicros, Int(seconds * 1e6))
            sizing.record(rows: result.scanned, seconds: seconds)
            report.finalBatchSize = sizing.current
            onBatch(result, report)
            guard result.scanned >= limit, let last = result.last else { break }
            cursor = last
            if pauseMaxMs > 0 {
                Self.sleep(milliseconds: Int.random(in: 0...pauseMaxMs), shouldContinue: shouldContinue)
            }
        }
        return report
    }

    /// The session settings of a retention connection: `lock_timeout` and `statement_timeout`
    /// (a batch never holds its locks longer than the latter: PostgreSQL cancels it, the batch
    /// rolls back and a smaller one is tried), and generic plans for the prepared batch
    /// statements (PostgreSQL's default re-plans them at every execution, 2–3 ms of a batch; their
    /// shape does not depend on the parameters: keyset scans on (created_at, id), index probes by id).
    private func configureSession(_ conn: PostgresConnection) {
        _ = try? conn.query(
            """
            SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false),
                   set_config('plan_cache_mode', 'force_generic_plan', false)
            """, ["\(lockTimeoutMs)ms", "\(statementTimeoutMs)ms"])
    }

    /// SQLSTATE 57014 (query_canceled): statement_timeout fired.
    static func isStatementTimeout(_ error: any Error) -> Bool {
        if case .postgresQuery(let state, _)? = error as? IOError { return state == "57014" }
        return false
    }

    /// Sleeps in slices, returning early once `shouldContinue` says stop.
    static func sleep(milliseconds: Int, shouldContinue: () -> Bool) {
        var left = milliseconds
        while left > 0, shouldContinue() {
            let slice = min(left, 50)
            usleep(UInt32(slice * 1000))
            left -= slice
        }
    }
}
