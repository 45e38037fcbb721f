// The pool of idle TiDB Serverless clusters in Dify's `tidb_auth_bindings`, as Dify's two beat
// tasks keep it. `fill` tops it up to `TIDB_SERVERLESS_NUMBER` idle rows in batches of 20
// (`batchCreate`, each root password stashed in Redis for an hour as Dify stashes it, each new
// cluster's qdrant endpoint asked for, one row per cluster: tenant NULL, account `root`, status
// CREATING). `activate` moves CREATING rows to ACTIVE once the API says the cluster is. Both
// resume where they stopped: the pool is counted anew before each batch, CREATING rows are read
// anew each run. A batch that yields no usable cluster ends the run.

import Foundation
import HeraldCore
import HeraldIO

/// What one `fill` did.
public struct TiDBFillReport: Sendable, Equatable {
    /// Idle clusters before the run.
    public var idleBefore = 0
    /// `batchCreate` calls that created clusters.
    public var batches = 0
    /// Rows inserted (clusters created).
    public var created = 0
    /// Clusters returned whose stashed password had expired (skipped, as Dify skips them).
    public var withoutPassword = 0
    /// Clusters inserted without a qdrant endpoint (the status task fills it).
    public var withoutEndpoint = 0
    /// A dry run: clusters a real run would ask for.
    public var wouldCreate = 0
    /// The last batch created nothing usable and ended the run.
    public var emptyBatch = false
}

/// What one `activate` did.
public struct TiDBActivateReport: Sendable, Equatable {
    /// CREATING rows found.
    public var creating = 0
    /// `batchGet` calls.
    public var batches = 0
    /// Rows set ACTIVE.
    public var activated = 0
    /// Clusters the API reports ACTIVE whose endpoint is still unknown (account set, status kept).
    public var waitingForEndpoint = 0
}

/// The TiDB cluster pool over one database, one Redis and the TiDB Cloud API.
public struct TiDBPool: Sendable {
    public static let table = "tidb_auth_bindings"
    /// Dify's key for a new cluster's root password (`REDIS_KEY_PREFIX` applied before it).
    public static let passwordKeyPrefix = "tidb_serverless_cluster_password:"
    /// How long a stashed password lives, as in Dify.
    public static let passwordTTL = 3600

    let settings: TiDBSettings
    let client: TiDBCloudClient
    let keyPrefix: String

    /// - Parameter redisKeyPrefix: `REDIS_KEY_PREFIX` (raw, without ":").
    public init(settings: TiDBSettings, client: TiDBCloudClient, redisKeyPrefix: String) {
        self.settings = settings
        self.client = client
        keyPrefix = redisKeyPrefix.isEmpty ? "" : redisKeyPrefix + ":"
    }

    /// The Redis key of `displayName`'s root password.
    public func passwordKey(_ displayName: String) -> String { keyPrefix + Self.passwordKeyPrefix + displayName }

    /// Idle clusters: rows with `active = false`, as Dify counts them.
    public static func idleCount(_ c: PostgresConnection) throws -> Int {
        Int(try c.query("SELECT count(id) FROM tidb_auth_bindings WHERE active = false").rows[0][0] ?? "0") ?? 0
    }

    /// Tops the pool up to `TIDB_SERVERLESS_NUMBER` idle clusters. Throws the API's failure once
    /// `batchCreate` failed `attempts` times; `created` is told each batch's count.
    public func fill(
        _ pool: PostgresPool, redis: RedisClient, dryRun: Bool, shouldContinue: () -> Bool,
        created: (Int) -> Void = { _ in }
    ) throws -> TiDBFillReport {
        var report = TiDBFillReport()
        var first = true
        while shouldContinue() {
            let idle = try pool.withConnection { c in try Self.idleCount(c) }
            if first { report.idleBefore = idle; first = false }
            guard idle < settings.serverlessNumber else { break }
            if dryRun {
                let missing = settings.serverlessNumber - idle
                let batches = (missing + TiDBCloudMessages.batchSize - 1) / TiDBCloudMessages.batchSize
                report.wouldCreate = batches * TiDBCloudMessages.batchSize
                break
            }
            let rows = try batch(redis: redis, report: &report)
            guard !rows.isEmpty else {
                report.emptyBatch = true
                break
            }
            try pool.withConnection { c in try insert(c, rows) }
            report.batches += 1
            report.created += rows.count
            created(rows.count)
        }
        return report
    }

    struct NewRow {
        var clusterID, clusterName, password: String
        var endpoint: String?
    }

    /// One `batchCreate` of 20: stash the passwords, create, read them back, ask each endpoint.
    private func batch(redis: RedisClient, report: inout TiDBFillReport) throws -> [NewRow] {
        let specs = (0..<TiDBCloudMessages.batchSize).map { _ in
            TiDBClusterSpec(displayName: Self.hex(), rootPassword: String(Self.hex().prefix(16)))
        }
        let ttl = Array(String(Self.passwordTTL).utf8)
        let replies = try redis.pipeline(
            specs.map {
                [Array("SETEX".utf8), Array(passwordKey($0.displayName).utf8), ttl, Array($0.rootPassword.utf8)]
            })
        if let bad = replies.first(where: { if case .error = $0 { return true } else { return false } }) {
            throw IOError.redisReply(message: "SETEX \(Self.passwordKeyPrefix)…: \(bad)")
        }
        let clusters = try client.batchCreate(
            specs, region: settings.region, projectID: settings.projectID, spendLimit: settings.spendLimit)
        guard !clusters.isEmpty else { return [] }
        let stashed = try redis.pipeline(clusters.map { [Array("GET".utf8), Array(passwordKey($0.displayName).utf8)] })
        var rows: [NewRow] = []
        for (cluster, reply) in zip(clusters, stashed) {
            guard case .string(let bytes) = reply, !bytes.isEmpty else {
                report.withoutPassword += 1
                continue
            }
            let endpoint = fetchedEndpoint(cluster.clusterID)
            if endpoint == nil { report.withoutEndpoint += 1 }
            rows.append(
                NewRow(
                    clusterID: cluster.clusterID, clusterName: cluster.displayName,
                    password: String(decoding: bytes, as: UTF8.self), endpoint: endpoint))
        }
        return rows
    }

    private func insert(_ c: PostgresConnection, _ rows: [NewRow]) throws {
        var values: [String] = []
        var params: [String?] = []
        for r in rows {
            let n = params.count
            values.append("(NULL, $\(n + 1), $\(n + 2), 'root', $\(n + 3), $\(n + 4), false, 'CREATING')")
            params += [r.clusterID, r.clusterName, r.password, r.endpoint]
        }
        try c.query(
            """
            INSERT INTO tidb_auth_bindings
                (tenant_id, cluster_id, cluster_name, account, password, qdrant_endpoint, active, status)
            VALUES \(values.joined(separator: ", "))
            """, params)
    }

    /// Moves CREATING clusters that the API reports ACTIVE (with a user prefix) to ACTIVE: account
    /// `<userPrefix>.root`, the qdrant endpoint filled when empty, status ACTIVE only with an
    /// endpoint. Throws the API's failure once `batchGet` failed `attempts` times.
    public func activate(
        _ pool: PostgresPool, dryRun: Bool, shouldContinue: () -> Bool, activated: (Int) -> Void = { _ in }
    ) throws -> TiDBActivateReport {
        var report = TiDBActivateReport()
        let rows = try pool.withConnection { c in
            try c.query(
                """
                SELECT id, cluster_id, coalesce(qdrant_endpoint, '') FROM tidb_auth_bindings
                 WHERE active = false AND status = 'CREATING' ORDER BY created_at, id
                """
            ).rows
        }
        report.creating = rows.count
        guard !dryRun else { return report }
        for start in stride(from: 0, to: rows.count, by: TiDBCloudMessages.batchSize) {
            guard shouldContinue() else { break }
            let chunk = rows[start..<min(start + TiDBCloudMessages.batchSize, rows.count)]
            var byCluster: [String: (id: String, endpoint: String)] = [:]
            for r in chunk { byCluster[r[1]!] = (r[0]!, r[2] ?? "") }
            let states = try client.batchGet(chunk.map { $0[1]! })
            report.batches += 1
            var done = 0
            for s in states where s.state == "ACTIVE" && !s.userPrefix.isEmpty {
                guard let row = byCluster[s.clusterID] else { continue }
                var endpoint: String? = row.endpoint.isEmpty ? nil : row.endpoint
                if endpoint == nil { endpoint = s.qdrantEndpoint ?? fetchedEndpoint(s.clusterID) }
                let r = try pool.withConnection { c in
                    try c.query(
                        """
                        UPDATE tidb_auth_bindings
                           SET account = $2, qdrant_endpoint = $3::varchar,
                               status = CASE WHEN $3::varchar IS NOT NULL THEN 'ACTIVE' ELSE status END
                         WHERE id = $1 AND status = 'CREATING'
                        """, [row.id, s.userPrefix + ".root", endpoint])
                }
                guard r.affected > 0 else { continue }
                if endpoint != nil { done += 1 } else { report.waitingForEndpoint += 1 }
            }
            report.activated += done
            activated(done)
        }
        return report
    }

    /// The qdrant endpoint from `GET /clusters/{id}`, or nil. As in Dify, a failed call is not an
    /// error of the run (it was counted): the endpoint stays empty and the status task fills it.
    private func fetchedEndpoint(_ clusterID: String) -> String? {
        (try? client.cluster(clusterID))?.qdrantEndpoint
    }

    /// 32 lowercase hex digits of a random UUID (Python's `uuid4().hex`).
    static func hex() -> String {
        UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }
}
