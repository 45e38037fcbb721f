// clean_unused_datasets against a real PostgreSQL and Redis, on generated data for
// several tenants and plans: every dataset inside Dify's rules is cleaned (documents
// disabled, logs written, index cleanup queued) and every row outside them is byte for
// byte unchanged; a dry run changes nothing and predicts the real run; a second run is a
// no-op; and keyset paging cleans the candidates Dify's OFFSET paging skips.

import Foundation
import HeraldIO
import HeraldTasks
import XCTest

final class DatasetUnusedCleanerTests: XCTestCase {
    /// What the generated data must turn into.
    struct Expected {
        var disabled: Set<String> = []
        /// (tenant, dataset, document) of every log the run must write.
        var logs: Set<[String]> = []
        /// Documents whose index must be cleaned.
        var queued: Set<String> = []
        var datasets: [String: String] = [:]
    }

    /// Nine kinds of dataset per tenant; `sandbox` says whether pass 2 applies to the tenant.
    private func generate(_ f: DatasetFixture, tenant t: String, sandbox: Bool, into e: inout Expected) throws {
        // K1: stale for 40 days: pass 1 cleans it for every tenant, with logs.
        let k1 = try f.addDataset(tenant: t, name: "stale40", createdDaysAgo: 60)
        for _ in 0..<2 {
            let d = try f.addDocument(dataset: k1, tenant: t, updatedDaysAgo: 40)
            e.disabled.insert(d); e.logs.insert([t, k1, d]); e.queued.insert(d)
        }
        // K2: stale for 10 days: only pass 2 (7 days, sandbox tenants), no logs.
        let k2 = try f.addDataset(tenant: t, name: "stale10", createdDaysAgo: 60)
        for _ in 0..<2 {
            let d = try f.addDocument(dataset: k2, tenant: t, updatedDaysAgo: 10)
            if sandbox { e.disabled.insert(d); e.queued.insert(d) }
        }
        // K3: a document updated 2 days ago: untouched.
        let k3 = try f.addDataset(tenant: t, name: "fresh", createdDaysAgo: 60)
        try f.addDocument(dataset: k3, tenant: t, updatedDaysAgo: 2)
        // K4: stale documents but queried 5 days ago: untouched by both passes.
        let k4 = try f.addDataset(tenant: t, name: "queried5", createdDaysAgo: 60)
        try f.addDocument(dataset: k4, tenant: t, updatedDaysAgo: 40)
        try f.addQuery(dataset: k4, daysAgo: 5)
        // K5: queried 20 days ago: pass 1 keeps it, pass 2 cleans it for sandbox tenants.
        let k5 = try f.addDataset(tenant: t, name: "queried20", createdDaysAgo: 60)
        let d5 = try f.addDocument(dataset: k5, tenant: t, updatedDaysAgo: 40)
        try f.addQuery(dataset: k5, daysAgo: 20)
        try f.addQuery(dataset: k5, daysAgo: 45)
        if sandbox { e.disabled.insert(d5); e.queued.insert(d5) }
        // K6: created 3 days ago: too young for either pass.
        let k6 = try f.addDataset(tenant: t, name: "young", createdDaysAgo: 3)
        try f.addDocument(dataset: k6, tenant: t, updatedDaysAgo: 40)
        // K7: one stale and one fresh document: untouched.
        let k7 = try f.addDataset(tenant: t, name: "mixed", createdDaysAgo: 60)
        try f.addDocument(dataset: k7, tenant: t, updatedDaysAgo: 40)
        try f.addDocument(dataset: k7, tenant: t, updatedDaysAgo: 2)
        // K8: no live document (disabled, archived, still indexing): not a candidate.
        let k8 = try f.addDataset(tenant: t, name: "nolive", createdDaysAgo: 60)
        try f.addDocument(dataset: k8, tenant: t, updatedDaysAgo: 40, enabled: false)
        try f.addDocument(dataset: k8, tenant: t, updatedDaysAgo: 40, archived: true)
        try f.addDocument(dataset: k8, tenant: t, updatedDaysAgo: 40, status: "indexing")
        // K9: a live stale document beside an archived, an indexing and a disabled one. Every enabled
        // document is disabled; logs for enabled non-archived ones; index cleanup for the completed live one.
        let k9 = try f.addDataset(tenant: t, name: "partial", createdDaysAgo: 60)
        let live = try f.addDocument(dataset: k9, tenant: t, updatedDaysAgo: 40)
        let archived = try f.addDocument(dataset: k9, tenant: t, updatedDaysAgo: 40, archived: true)
        let indexing = try f.addDocument(dataset: k9, tenant: t, updatedDaysAgo: 1, status: "indexing")
        try f.addDocument(dataset: k9, tenant: t, updatedDaysAgo: 40, enabled: false)
        e.disabled.formUnion([live, archived, indexing])
        e.logs.formUnion([[t, k9, live], [t, k9, indexing]])
        e.queued.insert(live)
        for (id, name) in [
            (k1, "stale40"), (k2, "stale10"), (k3, "fresh"), (k4, "queried5"), (k5, "queried20"),
            (k6, "young"), (k7, "mixed"), (k8, "nolive"), (k9, "partial"),
        ] {
            e.datasets[id] = name
        }
    }

    /// Before/after of the documents: expected ones differ only in `enabled` (now false) and
    /// `updated_at`; every other row is identical.
    private func checkDocuments(
        before: [String: String], after: [String: String], disabled: Set<String>,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        XCTAssertEqual(Set(after.keys), Set(before.keys), file: file, line: line)
        for (id, old) in before {
            if disabled.contains(id) {
                var o = try JSONSerialization.jsonObject(with: Data(old.utf8)) as! [String: Any]
                var n = try JSONSerialization.jsonObject(with: Data(after[id]!.utf8)) as! [String: Any]
                XCTAssertEqual(n["enabled"] as? Bool, false, "document \(id) disabled", file: file, line: line)
                XCTAssertNotEqual(n["updated_at"] as? String, o["updated_at"] as? String, file: file, line: line)
                for k in ["enabled", "updated_at"] { o[k] = nil; n[k] = nil }
                XCTAssertEqual(
                    NSDictionary(dictionary: o), NSDictionary(dictionary: n), "only enabled/updated_at change",
                    file: file, line: line)
            } else {
                XCTAssertEqual(after[id], old, "document \(id) outside the rules is untouched", file: file, line: line)
            }
        }
    }

    func testTwoPassesOverSeveralTenantsAndPlans() throws {
        let f = try DatasetFixture()
        defer { f.drop() }
        try f.migrate()
        var e = Expected()
        let team = try f.addTenant(name: "team"), sand = try f.addTenant(name: "sandbox")
        let cached = try f.addTenant(name: "cached-sandbox"), pro = try f.addTenant(name: "professional")
        try generate(f, tenant: team, sandbox: false, into: &e)
        try generate(f, tenant: sand, sandbox: true, into: &e)
        try generate(f, tenant: cached, sandbox: true, into: &e)
        try generate(f, tenant: pro, sandbox: false, into: &e)
        // Billing says team for `cached`, but Dify trusts the features cache first.
        try f.redis.command(["SET", f.keyPrefix + ":features:" + cached, "sandbox"])
        try f.redis.command(["SET", f.keyPrefix + ":features:" + pro, "professional"])
        let plans = f.plans([sand: DifyPlan.sandbox, team: DifyPlan.team, cached: DifyPlan.team])
        let strategy = RecordingStrategy()
        let cleaner = UnusedDatasetCleaner(settings: f.settings(pageSize: 2), plans: plans, strategy: strategy)

        let before = try f.snapshotAll()
        let keysBefore = try f.redisKeys()
        let dry = try cleaner.run(f.conn, now: f.now, dryRun: true)
        XCTAssertEqual(try f.snapshotAll(), before, "a dry run changes no row")
        XCTAssertEqual(try f.redisKeys(), keysBefore, "a dry run writes no cache key")
        XCTAssertTrue(strategy.items.isEmpty)

        let report = try cleaner.run(f.conn, now: f.now)
        let after = try f.snapshotAll()
        try checkDocuments(before: before["documents"]!, after: after["documents"]!, disabled: e.disabled)
        for t in ["datasets", "dataset_queries", "embeddings", "tenants", "accounts", "tenant_account_joins"] {
            XCTAssertEqual(after[t], before[t], "\(t) untouched")
        }
        let logs = try f.conn.query(
            """
            SELECT tenant_id::text, dataset_id::text, document_id::text, notified FROM dataset_auto_disable_logs
            """
        ).rows
        XCTAssertEqual(Set(logs.map { [$0[0]!, $0[1]!, $0[2]!] }), e.logs)
        XCTAssertEqual(logs.count, e.logs.count, "one log per document")
        XCTAssertTrue(logs.allSatisfy { $0[3] == "f" })
        XCTAssertEqual(Set(strategy.items.map(\.documentID)), e.queued)
        XCTAssertEqual(strategy.items.count, e.queued.count, "each document handed over once")
        XCTAssertEqual(try f.scalar("SELECT count(*) FROM herald.dataset_index_cleanups"), "0", "outbox drained")

        let p1 = report.passes[0], p2 = report.passes[1]
        XCTAssertEqual([p1.candidates, p1.skippedRecentQuery, p1.skippedPlan, p1.cleanedDatasets], [16, 8, 0, 8])
        XCTAssertEqual([p1.disabledDocuments, p1.logsWritten, p1.indexCleanupsQueued], [20, 16, 12])
        XCTAssertEqual([p2.candidates, p2.skippedRecentQuery, p2.skippedPlan, p2.cleanedDatasets], [12, 4, 4, 4])
        XCTAssertEqual([p2.disabledDocuments, p2.logsWritten, p2.indexCleanupsQueued], [6, 0, 6])
        XCTAssertEqual(report.indexCleanupsDispatched, 18)
        XCTAssertEqual(p1.datasetsExamined, 36, "every dataset examined once")
        XCTAssertEqual(p1.pages, 18, "paged two at a time")
        for (d, r) in zip(dry.passes, report.passes) {
            XCTAssertEqual(
                [
                    d.candidates, d.skippedRecentQuery, d.skippedPlan, d.cleanedDatasets, d.disabledDocuments,
                    d.logsWritten, d.indexCleanupsQueued,
                ],
                [
                    r.candidates, r.skippedRecentQuery, r.skippedPlan, r.cleanedDatasets, r.disabledDocuments,
                    r.logsWritten, r.indexCleanupsQueued,
                ], "the dry run predicted pass \(r.pass.name)")
        }

        // The plan cache: misses were filled with Dify's 600 s TTL; existing entries kept.
        XCTAssertEqual(try f.redis.command(["GET", f.keyPrefix + ":features:" + team]).text, "team")
        XCTAssertEqual(try f.redis.command(["GET", f.keyPrefix + ":features:" + sand]).text, "sandbox")
        XCTAssertEqual(try f.redis.command(["GET", f.keyPrefix + ":features:" + cached]).text, "sandbox")
        let ttl = try f.redis.command(["TTL", f.keyPrefix + ":features:" + team]).integer ?? -9
        XCTAssertTrue((1...600).contains(ttl), "TTL \(ttl)")

        // Idempotent: a second run cleans nothing and changes nothing.
        let again = try cleaner.run(f.conn, now: f.now)
        XCTAssertEqual(again.passes.map(\.cleanedDatasets), [0, 0])
        XCTAssertEqual(try f.snapshotAll(), after)
        XCTAssertEqual(strategy.items.count, e.queued.count)
    }

    func testWithBillingOffEveryTenantIsSandbox() throws {
        let f = try DatasetFixture()
        defer { f.drop() }
        try f.migrate()
        var e = Expected()
        for _ in 0..<3 { try generate(f, tenant: try f.addTenant(), sandbox: true, into: &e) }
        let before = try f.snapshot("documents")
        let cleaner = UnusedDatasetCleaner(
            settings: f.settings(pageSize: 4), plans: f.plans(billingEnabled: false),
            strategy: NoIndexCleanup())
        let report = try cleaner.run(f.conn, now: f.now)
        try checkDocuments(before: before, after: try f.snapshot("documents"), disabled: e.disabled)
        XCTAssertEqual(report.passes[1].skippedPlan, 0)
        XCTAssertEqual(report.passes[1].cleanedDatasets, 6)
        XCTAssertEqual(report.passes.map(\.indexCleanupsQueued), [0, 0], "`none` queues nothing")
        XCTAssertEqual(try f.scalar("SELECT count(*) FROM herald.dataset_index_cleanups"), "0")
    }

    func testABillingFailureSkipsOnlyThatTenant() throws {
        let f = try DatasetFixture()
        defer { f.drop() }
        try f.migrate()
        var ok = Expected(), down = Expected()
        let good = try f.addTenant(), bad = try f.addTenant()
        try generate(f, tenant: good, sandbox: true, into: &ok)
        try generate(f, tenant: bad, sandbox: false, into: &down)  // pass 1 still applies, pass 2 cannot
        let before = try f.snapshot("documents")
        let cleaner = UnusedDatasetCleaner(
            settings: f.settings(), plans: f.plans([good: DifyPlan.sandbox], failing: [bad]),
            strategy: NoIndexCleanup())
        let report = try cleaner.run(f.conn, now: f.now)
        try checkDocuments(
            before: before, after: try f.snapshot("documents"), disabled: ok.disabled.union(down.disabled))
        XCTAssertEqual(report.passes[1].skippedPlanUnavailable, 2, "stale10 and queried20 of the failing tenant")
        XCTAssertEqual(report.passes[1].cleanedDatasets, 2)
        XCTAssertNotNil(report.passes[1].lastPlanError)
        XCTAssertEqual(try f.redisKeys("features:*"), [f.keyPrefix + ":features:" + good], "a failure is not cached")
    }

    /// Dify's loop, with Dify's query (aggregate joins, `created_at DESC`, `LIMIT/OFFSET`), for comparison.
    private func difyOffsetRun(_ f: DatasetFixture, cutoff: String, perPage: Int) throws -> [String] {
        var cleaned: [String] = []
        var page = 1
        while true {
            let rows = try f.conn.query(
                """
                SELECT d.id::text FROM datasets d
                  LEFT JOIN (SELECT dataset_id, count(id) c FROM documents WHERE indexing_status = 'completed' AND enabled
                              AND NOT archived AND updated_at > $1::timestamp GROUP BY dataset_id) n ON d.id = n.dataset_id
                  LEFT JOIN (SELECT dataset_id, count(id) c FROM documents WHERE indexing_status = 'completed' AND enabled
                              AND NOT archived AND updated_at < $1::timestamp GROUP BY dataset_id) o ON d.id = o.dataset_id
                 WHERE d.created_at < $1::timestamp AND coalesce(n.c, 0) = 0 AND coalesce(o.c, 0) > 0
                 ORDER BY d.created_at DESC LIMIT $2 OFFSET $3
                """, [cutoff, String(perPage), String((page - 1) * perPage)]
            ).rows
            if rows.isEmpty { break }
            for r in rows {
                let id = r[0]!
                let recent = try f.scalar(
                    "SELECT count(*) FROM dataset_queries WHERE dataset_id = $1 AND created_at > $2::timestamp",
                    [id, cutoff])
                if recent == "0" {
                    try f.conn.query("UPDATE documents SET enabled = false WHERE dataset_id = $1", [id])
                    cleaned.append(id)
                }
            }
            page += 1
        }
        return cleaned
    }

    func testKeysetPagingCleansWhatOffsetPagingSkips() throws {
        var cleanable: [String] = []
        func build(_ f: DatasetFixture) throws -> String {
            try f.migrate()
            let t = try f.addTenant()
            cleanable = []
            for i in 0..<10 {
                let d = try f.addDataset(tenant: t, name: "kb\(i)", createdDaysAgo: 60 + Double(i))
                try f.addDocument(dataset: d, tenant: t, updatedDaysAgo: 40)
                cleanable.append(d)
                if i % 4 == 1 {  // a candidate that stays (queried), interleaved
                    let q = try f.addDataset(tenant: t, name: "q\(i)", createdDaysAgo: 60.5 + Double(i))
                    try f.addDocument(dataset: q, tenant: t, updatedDaysAgo: 40)
                    try f.addQuery(dataset: q, daysAgo: 1)
                }
            }
            return t
        }
        var settings = DatasetTaskSettings.defaults
        settings.unusedDatasetsPageSize = 3
        let onePass = [UnusedDatasetCleaner.Pass(name: "all_tenants", days: 30, planFilter: nil, writesLogs: true)]

        // Dify's OFFSET loop first, then Herald on the same rows: Herald cleans exactly what Dify skipped.
        let f = try DatasetFixture()
        defer { f.drop() }
        _ = try build(f)
        let cutoff = try f.scalar(
            "SELECT ((to_timestamp($1::float8) AT TIME ZONE 'UTC') - interval '30 days')::text", [f.nowParam])!
        let byDify = try difyOffsetRun(f, cutoff: cutoff, perPage: 3)
        let skippedByDify = Set(cleanable).subtracting(byDify)
        XCTAssertFalse(skippedByDify.isEmpty, "Dify's OFFSET paging skips candidates that dropped out of earlier pages")
        let herald = UnusedDatasetCleaner(
            settings: settings, plans: f.plans(), strategy: NoIndexCleanup(), passes: onePass)
        let report = try herald.run(f.conn, now: f.now)
        XCTAssertEqual(report.passes[0].cleanedDatasets, skippedByDify.count)
        for d in cleanable { XCTAssertEqual(try f.enabledDocuments(d), 0, "dataset \(d) cleaned") }

        // Herald alone cleans every candidate in one run, with the same page size.
        let g = try DatasetFixture()
        defer { g.drop() }
        _ = try build(g)
        let alone = try UnusedDatasetCleaner(
            settings: settings, plans: g.plans(), strategy: NoIndexCleanup(), passes: onePass
        )
        .run(g.conn, now: g.now)
        XCTAssertEqual(alone.passes[0].cleanedDatasets, 10)
        XCTAssertEqual(alone.passes[0].skippedRecentQuery, 3)
        for d in cleanable { XCTAssertEqual(try g.enabledDocuments(d), 0) }
    }

    func testABrokerOutageLosesNoIndexCleanup() throws {
        let f = try DatasetFixture()
        defer { f.drop() }
        try f.migrate()
        var e = Expected()
        try generate(f, tenant: try f.addTenant(), sandbox: false, into: &e)
        let strategy = RecordingStrategy()
        strategy.failing = true
        let cleaner = UnusedDatasetCleaner(settings: f.settings(), plans: f.plans(), strategy: strategy)
        XCTAssertThrowsError(try cleaner.run(f.conn, now: f.now)) { error in
            XCTAssertEqual(
                error as? DatasetTaskError, .redis(operation: "LPUSH dataset", underlying: .notConnected("redis")))
        }
        XCTAssertEqual(
            try f.scalar("SELECT count(*) FROM herald.dataset_index_cleanups"), String(e.queued.count),
            "the documents are disabled and their cleanups wait in the outbox")
        strategy.failing = false
        let report = try cleaner.run(f.conn, now: f.now)
        XCTAssertEqual(report.indexCleanupsDispatched, e.queued.count, "sent by the next run")
        XCTAssertEqual(Set(strategy.items.map(\.documentID)), e.queued)
        XCTAssertEqual(try f.scalar("SELECT count(*) FROM herald.dataset_index_cleanups"), "0")
    }
}
