// Dify's `clean_embedding_cache_task`: the embedding cache (`embeddings`) keeps every
// vector it ever computed; rows older than PLAN_SANDBOX_CLEAN_DAY_SETTING days are
// deleted. Dify deletes them one `DELETE … WHERE id = :id` at a time; Herald deletes a
// keyset batch per statement, each its own short transaction, so memory and lock time
// stay bounded however large the table is.

import Foundation
import HeraldIO

/// Deletes expired rows of Dify's embedding cache in keyset batches.
public struct EmbeddingCacheCleaner: Sendable {
    /// What a run did (or, dry, would do).
    public struct Report: Sendable, Equatable {
        /// The cut-off, a naive UTC timestamp as PostgreSQL prints it: rows created before it expire.
        public var cutoff: String
        /// Rows deleted (dry run: rows that would be deleted).
        public var deleted: Int
        /// Delete statements (transactions) run; 0 on a dry run.
        public var batches: Int
        /// True when nothing was changed.
        public var dryRun: Bool
        /// False when `shouldContinue` stopped the run before the last batch.
        public var completed: Bool
    }

    /// Days a cache row lives (`PLAN_SANDBOX_CLEAN_DAY_SETTING`, Dify's choice for this table).
    public let retentionDays: Int
    /// Rows per delete statement.
    public let batchSize: Int

    public init(retentionDays: Int, batchSize: Int) {
        self.retentionDays = max(1, retentionDays)
        self.batchSize = max(1, batchSize)
    }

    /// With `sandboxCleanDays` and `embeddingCleanBatchSize` from the settings.
    public init(settings: DatasetTaskSettings) {
        self.init(retentionDays: settings.sandboxCleanDays, batchSize: settings.embeddingCleanBatchSize)
    }

    /// One batch: lock up to `$4` expired rows after the cursor, skipping rows another session
    /// holds, delete them, and return how many went and the batch's last key (the next cursor).
    static let deleteBatch = """
        WITH batch AS (
            SELECT id, created_at FROM embeddings
             WHERE created_at < $1::timestamp
               AND created_at >= $2::timestamp
               AND (created_at, id) > ($2::timestamp, $3::uuid)
             ORDER BY created_at, id
             LIMIT $4
             FOR UPDATE SKIP LOCKED
        ), gone AS (
            DELETE FROM embeddings e USING batch b WHERE e.id = b.id RETURNING e.id
        ), last AS (
            SELECT created_at, id FROM batch ORDER BY created_at DESC, id DESC LIMIT 1
        )
        SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM batch),
               (SELECT created_at::text FROM last), (SELECT id::text FROM last)
        """

    /// Deletes every row created before `now − retentionDays`.
    ///
    /// - Parameters:
    ///   - now: the run's reference instant (the executor's clock); the cut-off is naive UTC.
    ///   - dryRun: count the expired rows and change nothing.
    ///   - shouldContinue: asked before each batch; returning false ends the run early (shutdown).
    public func run(
        _ conn: PostgresConnection, now: Date, dryRun: Bool = false,
        shouldContinue: () -> Bool = { true }
    ) throws(DatasetTaskError) -> Report {
        let cutoff = try Self.cutoff(conn, now: now, days: retentionDays)
        if dryRun {
            let rows = try DatasetTaskError.db("count expired embeddings") {
                try conn.query("SELECT count(*) FROM embeddings WHERE created_at < $1::timestamp", [cutoff])
            }
            let n = Int(rows.rows.first?.first.flatMap { $0 } ?? "") ?? 0
            return Report(cutoff: cutoff, deleted: n, batches: 0, dryRun: true, completed: true)
        }
        var report = Report(cutoff: cutoff, deleted: 0, batches: 0, dryRun: false, completed: true)
        var cursor = (createdAt: "-infinity", id: "00000000-0000-0000-0000-000000000000")
        while true {
            guard shouldContinue() else {
                report.completed = false
                break
            }
            let r = try DatasetTaskError.db("delete expired embeddings") {
                try conn.query(Self.deleteBatch, [cutoff, cursor.createdAt, cursor.id, String(batchSize)])
            }
            guard let row = r.rows.first, row.count == 4, let gone = row[0].flatMap({ Int($0) }),
                let seen = row[1].flatMap({ Int($0) })
            else {
                throw .unexpectedResult(operation: "delete expired embeddings", detail: "\(r.rows)")
            }
            report.batches += 1
            report.deleted += gone
            guard seen > 0, let lastAt = row[2], let lastID = row[3] else { break }
            cursor = (lastAt, lastID)
            if seen < batchSize { break }
        }
        return report
    }

    /// `now − days` as a naive UTC timestamp (PostgreSQL's text form, microseconds kept).
    static func cutoff(_ conn: PostgresConnection, now: Date, days: Int) throws(DatasetTaskError) -> String {
        let r = try DatasetTaskError.db("compute cut-off") {
            try conn.query(
                """
                SELECT ((to_timestamp($1::float8) AT TIME ZONE 'UTC') - make_interval(days => $2::int))::text
                """, [String(now.timeIntervalSince1970), String(days)])
        }
        guard let text = r.rows.first?.first.flatMap({ $0 }) else {
            throw .unexpectedResult(operation: "compute cut-off", detail: "no row")
        }
        return text
    }
}
