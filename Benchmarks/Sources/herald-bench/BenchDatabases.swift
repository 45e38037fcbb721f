// The private databases a scenario creates on the benchmark's PostgreSQL server,
// all named with the scenario's prefix: dropped after use, and whatever an
// interrupted run left is dropped before the next one starts.

import HeraldIO

/// A scenario's data helper: an admin connection and the prefix of its databases.
protocol BenchDatabases {
    /// A connection to the server's maintenance database.
    var admin: PostgresConnection { get }
    /// Every database the scenario creates starts with this.
    static var databasePrefix: String { get }
}

extension BenchDatabases {
    /// Ends every other session on database `name`.
    func endSessions(_ name: String) {
        _ = try? admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            [name])
    }

    /// Drops `name` if it exists, ending its sessions first.
    func drop(_ name: String) {
        endSessions(name)
        _ = try? admin.query("DROP DATABASE IF EXISTS \(name)")
    }

    /// Drops every database a previous (interrupted) run may have left.
    func dropLeftovers() {
        let rows =
            (try? admin.query("SELECT datname FROM pg_database WHERE datname LIKE $1", [Self.databasePrefix + "%"]))?
            .rows ?? []
        for r in rows { if let n = r[0] { drop(n) } }
    }
}
