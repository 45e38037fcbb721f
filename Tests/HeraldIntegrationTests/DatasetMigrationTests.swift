// Migration 4 against a real PostgreSQL: Dify's dataset tables appear with Dify's
// columns, defaults and index names; a second run changes nothing; and on a database
// where Dify already created a table (of another version) Herald adds nothing to it.
// Also the settings' defaults and validation (pure, but they belong to this family).

import Foundation
import HeraldIO
import HeraldTasks
import XCTest

final class DatasetMigrationTests: XCTestCase {
    /// Columns (name, type, default, nullability) and indexes of the public schema and Herald's outbox.
    private func catalog(_ f: DatasetFixture) throws -> [String] {
        let columns = try f.conn.query(
            """
            SELECT table_schema || '.' || table_name || '.' || column_name || ' ' || data_type || ' '
                   || coalesce(column_default, '-') || ' ' || is_nullable
              FROM information_schema.columns WHERE table_schema IN ('public', 'herald') ORDER BY 1
            """
        ).rows.map { $0[0]! }
        let indexes = try f.conn.query(
            """
            SELECT schemaname || '.' || indexname || ' ' || indexdef FROM pg_indexes
             WHERE schemaname IN ('public', 'herald') ORDER BY 1
            """
        ).rows.map { $0[0]! }
        return columns + indexes
    }

    func testCreatesDifyTablesWithDifyIndexesAndIsIdempotent() throws {
        let f = try DatasetFixture()
        defer { f.drop() }
        let first = try Migrator.migrate(f.conn)
        XCTAssertTrue(first.applied.contains("4 dify_dataset_tables"), "\(first.applied)")
        let before = try catalog(f)
        let indexes = Set(
            try f.conn.query("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'").rows.map { $0[0]! })
        for name in [
            "dataset_pkey", "dataset_tenant_idx", "document_pkey", "document_dataset_id_idx", "document_tenant_idx",
            "dataset_query_pkey", "dataset_query_dataset_id_idx", "dataset_auto_disable_log_pkey",
            "dataset_auto_disable_log_created_atx", "dataset_auto_disable_log_dataset_idx",
            "dataset_auto_disable_log_tenant_idx", "embedding_pkey", "embedding_hash_idx", "created_at_idx",
        ] {
            XCTAssertTrue(indexes.contains(name), "missing Dify index \(name)")
        }
        XCTAssertEqual(
            try f.scalar(
                """
                SELECT column_default FROM information_schema.columns WHERE table_name = 'documents' AND column_name = 'indexing_status'
                """), "'waiting'::character varying")
        XCTAssertEqual(
            try f.scalar(
                """
                SELECT column_default FROM information_schema.columns
                 WHERE table_name = 'dataset_auto_disable_logs' AND column_name = 'notified'
                """), "false")

        let second = try Migrator.migrate(f.conn)
        XCTAssertEqual(second.applied, [])
        // Running the statement itself again (as if the version row were lost) changes nothing either.
        let m = Migrations.all.first { $0.version == 4 }!
        try f.conn.execute(script: m.sql)
        XCTAssertEqual(try catalog(f), before)
    }

    func testLeavesAnExistingDifyTableAlone() throws {
        let f = try DatasetFixture()
        defer { f.drop() }
        // An older Dify's datasets table, with a few columns only (in place of Dify 1.14.2's own table in
        // the test pass on Dify's real schema).
        try f.conn.execute(
            script: """
                DROP TABLE IF EXISTS datasets;
                CREATE TABLE datasets (id uuid PRIMARY KEY, tenant_id uuid NOT NULL, name varchar(255) NOT NULL,
                                       created_by uuid NOT NULL, created_at timestamp NOT NULL DEFAULT now());
                """)
        let columnsBefore = try f.conn.query(
            """
            SELECT column_name FROM information_schema.columns WHERE table_name = 'datasets' ORDER BY 1
            """
        ).rows.map { $0[0]! }
        try f.migrate()
        let columnsAfter = try f.conn.query(
            """
            SELECT column_name FROM information_schema.columns WHERE table_name = 'datasets' ORDER BY 1
            """
        ).rows.map { $0[0]! }
        XCTAssertEqual(columnsAfter, columnsBefore)
        XCTAssertEqual(
            try f.scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 'datasets'"), "1",
            "only the table's own primary key")
        XCTAssertEqual(
            try f.scalar("SELECT to_regclass('documents') IS NOT NULL"), "t", "absent tables are still created")
    }

    func testSettingsDefaultsAndValidation() throws {
        let d = try DatasetTaskSettings.load(from: [:])
        XCTAssertEqual(d, .defaults)
        XCTAssertEqual(d.sandboxCleanDays, 30)
        XCTAssertEqual(d.proCleanDays, 7)
        XCTAssertFalse(d.billingEnabled)
        XCTAssertEqual(d.indexCleanup, .celery)
        XCTAssertEqual(d.unusedDatasetsPageSize, 1000)

        let s = try DatasetTaskSettings.load(from: [
            "PLAN_SANDBOX_CLEAN_DAY_SETTING": " 14 ", "PLAN_PRO_CLEAN_DAY_SETTING": "3", "BILLING_ENABLED": "True",
            "HERALD_DATASET_INDEX_CLEANUP": "NONE", "HERALD_EMBEDDING_CACHE_CLEAN_BATCH_SIZE": "250",
            "PLAN_SANDBOX_CLEAN_MESSAGE_DAY_SETTING": "ignored",
        ])
        XCTAssertEqual(s.sandboxCleanDays, 14)
        XCTAssertEqual(s.proCleanDays, 3)
        XCTAssertTrue(s.billingEnabled)
        XCTAssertEqual(s.indexCleanup, IndexCleanupMode.none)
        XCTAssertEqual(s.embeddingCleanBatchSize, 250)

        for (key, value) in [
            ("PLAN_PRO_CLEAN_DAY_SETTING", "0"), ("PLAN_SANDBOX_CLEAN_DAY_SETTING", "-3"),
            ("PLAN_SANDBOX_CLEAN_DAY_SETTING", "7d"), ("BILLING_ENABLED", "maybe"),
            ("HERALD_DATASET_INDEX_CLEANUP", "vector"), ("HERALD_UNUSED_DATASETS_PAGE_SIZE", "0"),
        ] {
            XCTAssertThrowsError(try DatasetTaskSettings.load(from: [key: value]), "\(key)=\(value)") { error in
                XCTAssertEqual((error as? TaskSettingsError)?.key, key)
            }
        }
    }
}
