// clean_embedding_cache against a real PostgreSQL: exactly the rows older than the
// cut-off go, in keyset batches (ties on created_at included), fresh rows are untouched
// byte for byte, a dry run changes nothing, and a row another session holds is skipped
// rather than waited for.

import Foundation
import HeraldIO
import HeraldTasks
import XCTest

final class DatasetEmbeddingCacheTests: XCTestCase {
    func testDeletesExactlyTheExpiredRowsInBatches() throws {
        let f = try DatasetFixture()
        defer { f.drop() }
        try f.migrate()
        try f.addEmbeddings(1_234, daysAgo: 45)
        try f.addEmbeddings(300, daysAgo: 31, sameInstant: true)  // 300 ties on created_at across batch edges
        try f.addEmbeddings(250, daysAgo: 29)
        try f.addEmbeddings(10, daysAgo: 0.5)
        let fresh = try f.conn.query(
            "SELECT id::text, row_to_json(e)::text FROM embeddings e WHERE created_at >= \(f.ago(2))",
            [f.nowParam, "30"]
        ).rows.map { "\($0[0]!) \($0[1]!)" }.sorted()
        XCTAssertEqual(fresh.count, 260)

        let cleaner = EmbeddingCacheCleaner(settings: f.settings(embeddingBatch: 100))
        let before = try f.snapshot("embeddings")
        let dry = try cleaner.run(f.conn, now: f.now, dryRun: true)
        XCTAssertEqual(dry.deleted, 1_534)
        XCTAssertEqual(dry.batches, 0)
        XCTAssertTrue(dry.dryRun)
        XCTAssertEqual(try f.snapshot("embeddings"), before, "a dry run changes nothing")

        let report = try cleaner.run(f.conn, now: f.now)
        XCTAssertEqual(report.deleted, 1_534)
        XCTAssertEqual(report.batches, 16, "15 full batches of 100 and a last partial one")
        XCTAssertTrue(report.completed)
        XCTAssertEqual(report.cutoff, dry.cutoff)
        let after = try f.conn.query("SELECT id::text, row_to_json(e)::text FROM embeddings e").rows
            .map { "\($0[0]!) \($0[1]!)" }.sorted()
        XCTAssertEqual(after, fresh, "only rows newer than the cut-off remain, unchanged")

        let again = try cleaner.run(f.conn, now: f.now)
        XCTAssertEqual(again.deleted, 0, "a second run finds nothing")
        XCTAssertEqual(again.batches, 1)
    }

    func testSkipsARowAnotherSessionHoldsAndStopsWhenAsked() throws {
        let f = try DatasetFixture()
        defer { f.drop() }
        try f.migrate()
        try f.addEmbeddings(50, daysAgo: 40)
        let other = try f.connect()
        try other.query("BEGIN")
        let held = try other.query("SELECT id::text FROM embeddings ORDER BY created_at LIMIT 1 FOR UPDATE").rows[0][0]!
        let cleaner = EmbeddingCacheCleaner(retentionDays: 30, batchSize: 10)
        let started = Date()
        let report = try cleaner.run(f.conn, now: f.now)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "did not wait for the lock")
        XCTAssertEqual(report.deleted, 49)
        XCTAssertEqual(try f.scalar("SELECT id::text FROM embeddings"), held)
        try other.query("ROLLBACK")

        try f.addEmbeddings(30, daysAgo: 40)
        var asked = 0
        let stopped = try cleaner.run(f.conn, now: f.now) {
            asked += 1; return asked <= 2
        }
        XCTAssertFalse(stopped.completed)
        XCTAssertEqual(stopped.deleted, 20, "two batches of 10, then stopped")
        XCTAssertEqual(try f.scalar("SELECT count(*) FROM embeddings"), "11")
    }
}
