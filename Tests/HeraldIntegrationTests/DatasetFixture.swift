// A private, migrated database and a private REDIS_KEY_PREFIX per dataset test, with
// builders for Dify's tenants, datasets, documents, queries, logs and cache rows placed
// at ages relative to one reference instant, and full-table snapshots so a test can
// prove that rows outside the rules were not touched. Dropped again afterwards.

import Foundation
import HeraldCelery
import HeraldCore
import HeraldIO
import HeraldRuntime
import HeraldTasks
import XCTest

/// A fake billing service: a fixed plan per tenant, `team` otherwise; listed tenants fail.
struct FakeBilling: BillingPlanSource {
    var plans: [String: String]
    var failing: Set<String> = []

    func subscriptionPlan(tenantID: String) throws(DatasetTaskError) -> String {
        if failing.contains(tenantID) { throw .billing(tenantID: tenantID, reason: "billing unreachable (test)") }
        return plans[tenantID] ?? DifyPlan.team
    }
}

final class DatasetFixture {
    let database: String
    let keyPrefix: String
    let conn: PostgresConnection
    let redis: RedisClient
    /// The reference instant of every age below and of the cleaners' runs.
    let now = Date()
    private let admin: PostgresConnection

    init() throws {
        // The process's breakers are shared: a test starts with them closed, whatever the last did.
        Circuits.shared.reset()
        let (_, d) = try TestServers.require()
        var info = try PostgresConnInfo(d)
        info["dbname"] = "postgres"
        admin = try PostgresConnection(connInfo: info)
        database = "herald_ds_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        try TestServers.createDatabase(admin, database)
        info["dbname"] = database
        conn = try PostgresConnection(connInfo: info)
        keyPrefix = "ds" + UUID().uuidString.lowercased().prefix(8)
        redis = try TestServers.redis()
    }

    /// Migrates with Herald's migrations (call after creating any pre-existing table a test needs).
    func migrate() throws {
        _ = try Migrator.migrate(conn)
    }

    /// A second connection to the same database (for concurrent sessions).
    func connect() throws -> PostgresConnection {
        let (_, d) = try TestServers.require()
        var info = try PostgresConnInfo(d)
        info["dbname"] = database
        return try PostgresConnection(connInfo: info)
    }

    func drop() {
        _ = try? admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            [database])
        _ = try? admin.query("DROP DATABASE IF EXISTS \(database)")
        if case .array(let keys)? = try? redis.command(["KEYS", keyPrefix + ":*"]) {
            for k in keys { if case .string(let b) = k { _ = try? redis.command([Array("DEL".utf8), b]) } }
        }
    }

    /// SQL for "the reference instant minus `$n` days", naive UTC.
    func ago(_ n: Int) -> String {
        "((to_timestamp($1::float8) AT TIME ZONE 'UTC') - make_interval(secs => $\(n)::float8 * 86400))"
    }

    var nowParam: String { String(now.timeIntervalSince1970) }

    static func uuid() -> String { UUID().uuidString.lowercased() }

    @discardableResult
    func addTenant(name: String = "tenant") throws -> String {
        let id = Self.uuid()
        try conn.query("INSERT INTO tenants (id, name) VALUES ($1, $2)", [id, name])
        return id
    }

    /// An account joined to `tenant` as owner.
    @discardableResult
    func addOwner(tenant: String, email: String, name: String = "Owner", language: String? = "en-US") throws -> String {
        let id = Self.uuid()
        try conn.query(
            "INSERT INTO accounts (id, name, email, interface_language) VALUES ($1, $2, $3, $4)",
            [id, name, email, language])
        try conn.query(
            "INSERT INTO tenant_account_joins (tenant_id, account_id, role) VALUES ($1, $2, 'owner')", [tenant, id])
        return id
    }

    @discardableResult
    func addDataset(tenant: String, name: String = "kb", createdDaysAgo: Double) throws -> String {
        let id = Self.uuid()
        try conn.query(
            """
            INSERT INTO datasets (id, tenant_id, name, created_by, created_at, updated_at)
            VALUES ($2, $3, $4, $3, \(ago(5)), \(ago(5)))
            """, [nowParam, id, tenant, name, String(createdDaysAgo)])
        return id
    }

    @discardableResult
    func addDocument(
        dataset: String, tenant: String, updatedDaysAgo: Double, status: String = "completed",
        enabled: Bool = true, archived: Bool = false
    ) throws -> String {
        let id = Self.uuid()
        try conn.query(
            """
            INSERT INTO documents (id, tenant_id, dataset_id, position, data_source_type, batch, name, created_from,
                                   created_by, created_at, updated_at, indexing_status, enabled, archived)
            VALUES ($2, $3, $4, 1, 'upload_file', 'b1', 'doc', 'web', $3, \(ago(5)), \(ago(5)), $6, $7, $8)
            """,
            [
                nowParam, id, tenant, dataset, String(updatedDaysAgo), status, enabled ? "true" : "false",
                archived ? "true" : "false",
            ])
        return id
    }

    func addQuery(dataset: String, daysAgo: Double) throws {
        try conn.query(
            """
            INSERT INTO dataset_queries (dataset_id, content, source, created_by_role, created_by, created_at)
            VALUES ($2, 'q', 'app', 'account', $2, \(ago(3)))
            """, [nowParam, dataset, String(daysAgo)])
    }

    /// `n` cache rows created `daysAgo` days before the reference instant (all at the same instant when `sameInstant`).
    func addEmbeddings(_ n: Int, daysAgo: Double, sameInstant: Bool = false) throws {
        try conn.query(
            """
            INSERT INTO embeddings (model_name, hash, embedding, created_at, provider_name)
            SELECT 'm', md5(random()::text || g::text), '\\x0102'::bytea,
                   \(ago(3)) - CASE WHEN $4::boolean THEN interval '0' ELSE make_interval(secs => g) END, 'p'
              FROM generate_series(1, $2::int) g
            """, [nowParam, String(n), String(daysAgo), sameInstant ? "true" : "false"])
    }

    @discardableResult
    func addLog(tenant: String, dataset: String, document: String? = nil, notified: Bool = false) throws -> String {
        let id = Self.uuid()
        try conn.query(
            """
            INSERT INTO dataset_auto_disable_logs (id, tenant_id, dataset_id, document_id, notified) VALUES ($1, $2, $3, $4, $5)
            """, [id, tenant, dataset, document ?? Self.uuid(), notified ? "true" : "false"])
        return id
    }

    /// Every row of `table` as JSON text, keyed by id.
    func snapshot(_ table: String) throws -> [String: String] {
        precondition(table.allSatisfy { $0.isLetter || $0 == "_" || $0 == "." })
        let rows = try conn.query("SELECT id::text, row_to_json(t)::text FROM \(table) t").rows
        return Dictionary(uniqueKeysWithValues: rows.map { ($0[0]!, $0[1]!) })
    }

    /// Snapshots of every table the dataset tasks can touch.
    func snapshotAll() throws -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        for t in [
            "datasets", "documents", "dataset_queries", "dataset_auto_disable_logs", "embeddings", "tenants",
            "accounts", "tenant_account_joins",
        ] {
            out[t] = try snapshot(t)
        }
        out["herald.dataset_index_cleanups"] = Dictionary(
            uniqueKeysWithValues: try conn.query(
                "SELECT document_id::text, row_to_json(t)::text FROM herald.dataset_index_cleanups t"
            ).rows.map { ($0[0]!, $0[1]!) })
        return out
    }

    func enabledDocuments(_ dataset: String) throws -> Int {
        Int(try conn.query("SELECT count(*) FROM documents WHERE dataset_id = $1 AND enabled", [dataset]).rows[0][0]!)!
    }

    func scalar(_ sql: String, _ params: [String?] = []) throws -> String? {
        try conn.query(sql, params).rows.first?.first ?? nil
    }

    /// The plan lookup: billing with `plans` (team by default) and this fixture's Redis cache.
    func plans(
        _ plans: [String: String] = [:], failing: Set<String> = [], billingEnabled: Bool = true,
        cache: Bool = true
    ) -> TenantPlanLookup {
        TenantPlanLookup(
            billing: billingEnabled ? .enabled(FakeBilling(plans: plans, failing: failing)) : .disabled,
            redis: cache ? redis : nil, redisKeyPrefix: keyPrefix)
    }

    /// Settings with a small page size so paging is exercised.
    func settings(pageSize: Int = 50, dispatchBatch: Int = 500, embeddingBatch: Int = 1000) -> DatasetTaskSettings {
        var s = DatasetTaskSettings.defaults
        s.unusedDatasetsPageSize = pageSize
        s.indexCleanupDispatchBatchSize = dispatchBatch
        s.embeddingCleanBatchSize = embeddingBatch
        return s
    }

    /// The `celery` strategy on this fixture's prefix (broker and application Redis are the same server here).
    func celeryStrategy() -> CeleryIndexCleanup {
        CeleryIndexCleanup(
            broker: redis, redis: redis, redisKeyPrefix: keyPrefix, origin: "herald-test@localhost",
            replyTo: CeleryUUID.v4().description)
    }

    /// The messages on this fixture's `dataset` list, oldest first.
    func datasetQueue() throws -> [DecodedCeleryMessage] {
        guard case .array(let items) = try redis.command(["LRANGE", keyPrefix + ":dataset", "0", "-1"]) else {
            return []
        }
        return try items.reversed().compactMap { v -> DecodedCeleryMessage? in
            guard case .string(let b) = v else { return nil }
            return try CeleryEnvelopeDecoder.decode(b)
        }
    }

    /// Keys under this fixture's prefix.
    func redisKeys(_ pattern: String = "*") throws -> [String] {
        guard case .array(let keys) = try redis.command(["KEYS", keyPrefix + ":" + pattern]) else { return [] }
        return keys.compactMap(\.text).sorted()
    }
}

/// A strategy that records what it is handed; it can be told to fail (a broker outage).
final class RecordingStrategy: IndexCleanupStrategy, @unchecked Sendable {
    private let lock = NSLock()
    private var _items: [IndexCleanupItem] = []
    private var _failing = false

    var name: String { "recording" }
    var queuesDocuments: Bool { true }

    var items: [IndexCleanupItem] { lock.withLock { _items } }
    var failing: Bool {
        get { lock.withLock { _failing } }
        set { lock.withLock { _failing = newValue } }
    }

    func dispatch(_ items: [IndexCleanupItem]) throws(DatasetTaskError) {
        lock.lock()
        defer { lock.unlock() }
        if _failing { throw .redis(operation: "LPUSH dataset", underlying: .notConnected("redis")) }
        _items += items
    }
}
