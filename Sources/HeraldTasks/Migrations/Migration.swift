// Versioned, idempotent schema changes. Each migration runs once, in order,
// inside a transaction holding an advisory lock, so several instances starting
// together neither race nor apply anything twice; a second run changes nothing.

import HeraldIO

/// One schema step.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String
}

/// What `herald migrate` did.
public struct MigrationReport: Sendable, Equatable {
    public var applied: [String]
    public var alreadyApplied: Int
}

/// Applies `Migrations.all` to a database.
public enum Migrator {
    /// The advisory-lock key (arbitrary, fixed): "herald" in ASCII.
    static let lockKey: Int64 = 0x68_65_72_61_6C_64

    /// Applies every pending migration; returns what it applied.
    public static func migrate(_ conn: PostgresConnection, migrations: [Migration] = Migrations.all) throws -> MigrationReport {
        try conn.transaction { c in
            try c.query("SELECT pg_advisory_xact_lock($1)", [String(lockKey)])
            try c.execute(script: """
                CREATE SCHEMA IF NOT EXISTS herald;
                CREATE TABLE IF NOT EXISTS herald.schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                );
                """)
            let done = Set(try c.query("SELECT version FROM herald.schema_migrations").rows.compactMap { $0[0].flatMap { Int($0) } })
            var applied: [String] = []
            for m in migrations.sorted(by: { $0.version < $1.version }) where !done.contains(m.version) {
                try c.execute(script: m.sql)
                try c.query("INSERT INTO herald.schema_migrations (version, name) VALUES ($1, $2)", [String(m.version), m.name])
                applied.append("\(m.version) \(m.name)")
            }
            return MigrationReport(applied: applied, alreadyApplied: done.count)
        }
    }

    /// Versions applied so far (empty when Herald never migrated this database).
    public static func appliedVersions(_ conn: PostgresConnection) throws -> [Int] {
        let exists = try conn.query("SELECT to_regclass('herald.schema_migrations') IS NOT NULL")
        guard exists.rows.first?.first == "t" else { return [] }
        return try conn.query("SELECT version FROM herald.schema_migrations ORDER BY version").rows.compactMap { $0[0].flatMap { Int($0) } }
    }
}
