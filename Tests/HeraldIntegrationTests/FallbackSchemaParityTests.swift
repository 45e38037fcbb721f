// Herald's fallback tables (migrations 1, 4 and 6 create Dify's tables where they are absent) against
// Dify 1.14.2's real schema, the DDL Dify's own migrations make (the template database
// Tests/Support/run-tests.sh loads): after `herald migrate`, every table Herald can create has the
// same columns, types, nullability, server defaults and indexes on both. So a row that one accepts,
// the other accepts too, and a fixture or the demo that works on one works on the other.

import Foundation
import HeraldIO
import HeraldTasks
import XCTest

final class FallbackSchemaParityTests: XCTestCase {
    /// A database from `template` (nil: empty), migrated; dropped by the caller.
    private func migratedDatabase(
        _ admin: PostgresConnection, template: String?
    ) throws -> (name: String, conn: PostgresConnection) {
        let (_, d) = try TestServers.require()
        let name = "herald_parity_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(10)
        try admin.query("CREATE DATABASE \(name)" + (template.map { " TEMPLATE \($0)" } ?? ""))
        var info = try PostgresConnInfo(d)
        info["dbname"] = name
        let conn = try PostgresConnection(connInfo: info)
        _ = try Migrator.migrate(conn)
        return (name, conn)
    }

    /// One line per column: type, nullability and server default. Defaults are compared as
    /// expressions, except that Dify's id generators (`uuid_generate_v4()`, its own `uuidv7()`) and
    /// Herald's `gen_random_uuid()` all count as "a random uuid", and a literal's cast is ignored.
    private func columns(_ c: PostgresConnection, tables: [String]) throws -> [String: String] {
        let rows = try c.query(
            """
            SELECT table_name || '.' || column_name,
                   data_type || coalesce('(' || character_maximum_length || ')', '')
                       || coalesce('(' || numeric_precision || ',' || numeric_scale || ')', ''),
                   is_nullable, coalesce(column_default, '')
              FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = ANY($1::text[])
            """, ["{" + tables.joined(separator: ",") + "}"]
        ).rows
        var out: [String: String] = [:]
        for r in rows {
            var def = r[3] ?? ""
            for generator in ["public.uuid_generate_v4()", "uuid_generate_v4()", "public.uuidv7()", "uuidv7()"]
            where def == generator {
                def = "gen_random_uuid()"
            }
            if let cast = def.range(of: "::") { def = String(def[..<cast.lowerBound]) }
            out[r[0]!] = "\(r[1]!) null=\(r[2]!) default=\(def.isEmpty ? "none" : def)"
        }
        return out
    }

    /// Index definitions, keyed by table and index name.
    private func indexes(_ c: PostgresConnection, tables: [String]) throws -> [String: String] {
        let rows = try c.query(
            """
            SELECT tablename || '.' || indexname, regexp_replace(indexdef, '^.* USING ', '')
              FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY($1::text[])
            """, ["{" + tables.joined(separator: ",") + "}"]
        ).rows
        return Dictionary(uniqueKeysWithValues: rows.map { ($0[0]!, $0[1]!) })
    }

    func testFallbackTablesMatchDifysRealSchema() throws {
        let (_, d) = try TestServers.require()
        guard let template = TestServers.env["HERALD_TEST_DIFY_TEMPLATE"] else {
            if TestServers.env["HERALD_TEST_REQUIRE_DIFY_SCHEMA"] == "1" {
                XCTFail("HERALD_TEST_DIFY_TEMPLATE missing although Dify's real schema is required")
            }
            throw XCTSkip("Dify's real schema was not loaded (Tests/Support/run-tests.sh loads it when found)")
        }
        var info = try PostgresConnInfo(d)
        info["dbname"] = "postgres"
        let admin = try PostgresConnection(connInfo: info)
        let fallback = try migratedDatabase(admin, template: nil)
        let dify = try migratedDatabase(admin, template: template)
        defer {
            for db in [fallback.name, dify.name] {
                _ = try? admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [db])
                _ = try? admin.query("DROP DATABASE IF EXISTS \(db)")
            }
        }
        // Every public table in the fallback database is one Herald created.
        let tables = try fallback.conn.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            .rows.map { $0[0]! }
        XCTAssertGreaterThanOrEqual(tables.count, 29, "\(tables)")
        let missing = Set(tables).subtracting(
            try dify.conn.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").rows.map { $0[0]! })
        XCTAssertEqual(missing, [], "tables Herald creates that Dify 1.14.2 does not have")

        let ours = try columns(fallback.conn, tables: tables)
        let theirs = try columns(dify.conn, tables: tables)
        for key in Set(ours.keys).union(theirs.keys).sorted() where ours[key] != theirs[key] {
            XCTFail(
                "\(key): Herald's fallback \(ours[key] ?? "has no such column"), Dify \(theirs[key] ?? "has no such column")"
            )
        }
        let ourIndexes = try indexes(fallback.conn, tables: tables)
        let theirIndexes = try indexes(dify.conn, tables: tables)
        for key in Set(ourIndexes.keys).union(theirIndexes.keys).sorted() where ourIndexes[key] != theirIndexes[key] {
            XCTFail(
                "index \(key): Herald's fallback \(ourIndexes[key] ?? "lacks it"), Dify \(theirIndexes[key] ?? "lacks it")"
            )
        }
        // The NOTIFY triggers Herald adds are the same on both.
        let triggers = "SELECT event_object_table || '.' || trigger_name FROM information_schema.triggers ORDER BY 1"
        XCTAssertEqual(
            try fallback.conn.query(triggers).rows.map { $0[0]! }, try dify.conn.query(triggers).rows.map { $0[0]! })
    }
}
