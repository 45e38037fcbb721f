// Versioned, idempotent schema changes. Each migration runs once, in order,
// inside a transaction holding an advisory lock, so several instances starting
// together neither race nor apply anything twice; a second run changes nothing.

import HeraldIO

/// One schema step.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String
    /// False for a step PostgreSQL refuses inside a transaction (`CREATE INDEX CONCURRENTLY`):
    /// it runs after every transactional step, alone, under a session advisory lock.
    public let transactional: Bool
    /// For a concurrent index build: the index's name. A build that failed half-way leaves
    /// an INVALID index that `IF NOT EXISTS` would keep forever; it is dropped and rebuilt.
    public let repairInvalidIndex: String?

    public init(version: Int, name: String, transactional: Bool = true, sql: String, repairInvalidIndex: String? = nil)
    {
        self.version = version
        self.name = name
        self.sql = sql
        self.transactional = transactional
        self.repairInvalidIndex = repairInvalidIndex
    }
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
    public static func migrate(
        _ conn: PostgresConnection, migrations: [Migration] = Migrations.all
    ) throws -> MigrationReport {
        var report = try migrateTransactional(conn, migrations: migrations.filter(\.transactional))
        let concurrent = migrations.filter { !$0.transactional }.sorted(by: { $0.version < $1.version })
        guard !concurrent.isEmpty else { return report }
        try conn.query("SELECT pg_advisory_lock($1)", [String(lockKey)])
        defer { _ = try? conn.query("SELECT pg_advisory_unlock($1)", [String(lockKey)]) }
        let done = Set(
            try conn.query("SELECT version FROM herald.schema_migrations").rows.compactMap { $0[0].flatMap { Int($0) } }
        )
        for m in concurrent where !done.contains(m.version) {
            if let index = m.repairInvalidIndex {
                let invalid = try conn.query(
                    """
                    SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                     WHERE c.relname = $1 AND NOT i.indisvalid
                    """, [index])
                if !invalid.rows.isEmpty { try conn.execute(script: "DROP INDEX CONCURRENTLY IF EXISTS \(index)") }
            }
            try conn.execute(script: m.sql)
            try conn.query(
                "INSERT INTO herald.schema_migrations (version, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                [String(m.version), m.name])
            report.applied.append("\(m.version) \(m.name)")
        }
        return report
    }

    private static func migrateTransactional(
        _ conn: PostgresConnection, migrations: [Migration]
    ) throws -> MigrationReport {
        try conn.transaction { c in
            try c.query("SELECT pg_advisory_xact_lock($1)", [String(lockKey)])
            try c.execute(
                script: """
                    CREATE SCHEMA IF NOT EXISTS herald;
                    CREATE TABLE IF NOT EXISTS herald.schema_migrations (
                        version integer PRIMARY KEY,
                        name text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    );
                    """)
            let done = Set(
                try c.query("SELECT version FROM herald.schema_migrations").rows.compactMap {
                    $0[0].flatMap { Int($0) }
                })
            var applied: [String] = []
            for m in migrations.sorted(by: { $0.version < $1.version }) where !done.contains(m.version) {
                try c.execute(script: m.sql)
                try c.query(
                    "INSERT INTO herald.schema_migrations (version, name) VALUES ($1, $2)", [String(m.version), m.name])
                applied.append("\(m.version) \(m.name)")
            }
            return MigrationReport(applied: applied, alreadyApplied: done.count)
        }
    }

    /// Versions applied so far (empty when Herald never migrated this database).
    public static func appliedVersions(_ conn: PostgresConnection) throws -> [Int] {
        let exists = try conn.query("SELECT to_regclass('herald.schema_migrations') IS NOT NULL")
        guard exists.rows.first?.first == "t" else { return [] }
        return try conn.query("SELECT version FROM herald.schema_migrations ORDER BY version").rows.compactMap {
            $0[0].flatMap { Int($0) }
        }
    }
}
