// Dify's `clean_unused_datasets_task`: a dataset none of whose live documents changed and
// that nobody queried for N days has its documents disabled and its index cleaned. Two passes
// with Dify's rules (every tenant at PLAN_SANDBOX_CLEAN_DAY_SETTING days, writing the auto-disable
// logs the weekly mail reads; sandbox tenants at PLAN_PRO_CLEAN_DAY_SETTING days). Herald pages by
// primary key, so nothing is skipped, and cleans each dataset in one short transaction.

import Foundation
import HeraldIO

/// Disables the documents of unused datasets and queues their index cleanup.
public struct UnusedDatasetCleaner: Sendable {
    /// One of Dify's two passes.
    public struct Pass: Sendable, Equatable {
        /// `all_tenants` or `sandbox` (for logs and reports).
        public var name: String
        /// The pass's age limit in days.
        public var days: Int
        /// Only tenants whose plan equals this are cleaned (nil: every tenant).
        public var planFilter: String?
        /// Whether `dataset_auto_disable_logs` rows are written (the mail's input).
        public var writesLogs: Bool

        public init(name: String, days: Int, planFilter: String?, writesLogs: Bool) {
            self.name = name
            self.days = days
            self.planFilter = planFilter
            self.writesLogs = writesLogs
        }
    }

    /// Dify's passes, in Dify's order: every tenant at `sandboxCleanDays` with logs, then sandbox
    /// tenants at `proCleanDays` without.
    public static func difyPasses(_ settings: DatasetTaskSettings) -> [Pass] {
        [
            Pass(name: "all_tenants", days: settings.sandboxCleanDays, planFilter: nil, writesLogs: true),
            Pass(name: "sandbox", days: settings.proCleanDays, planFilter: DifyPlan.sandbox, writesLogs: false),
        ]
    }

    /// What one pass did (dry run: would do).
    public struct PassReport: Sendable, Equatable {
        public var pass: Pass
        /// The pass's cut-off, naive UTC.
        public var cutoff: String
        /// Datasets whose documents qualify (old live documents, none recent).
        public var candidates = 0
        /// Candidates skipped because they were queried after the cut-off.
        public var skippedRecentQuery = 0
        /// Candidates skipped because their tenant's plan is not the pass's filter.
        public var skippedPlan = 0
        /// Candidates skipped because their tenant's plan could not be read (billing failed); a later run retries.
        public var skippedPlanUnavailable = 0
        /// The last plan-lookup error, for the log.
        public var lastPlanError: DatasetTaskError?
        /// Candidates that changed (or were locked by another cleaner) between the page read and their transaction.
        public var skippedChanged = 0
        /// Datasets cleaned.
        public var cleanedDatasets = 0
        /// Documents switched to `enabled = false`.
        public var disabledDocuments = 0
        /// `dataset_auto_disable_logs` rows written.
        public var logsWritten = 0
        /// Documents queued for index cleanup.
        public var indexCleanupsQueued = 0
        /// Pages read (each `pageSize` datasets in primary-key order, the last one shorter).
        public var pages = 0
        /// Datasets examined (every dataset once per pass).
        public var datasetsExamined = 0
    }

    /// What a run did.
    public struct Report: Sendable, Equatable {
        public var passes: [PassReport]
        /// Index cleanups handed to the strategy (including ones left over from earlier runs).
        public var indexCleanupsDispatched: Int
        public var dryRun: Bool
    }

    public let passes: [Pass]
    /// Datasets examined per page, in primary-key order.
    public let pageSize: Int
    public let dispatchBatchSize: Int
    public let plans: TenantPlanLookup
    public let strategy: any IndexCleanupStrategy

    /// - Parameters:
    ///   - plans: plan lookup (Redis `features:` cache, billing when enabled).
    ///   - strategy: what happens to the cleaned documents' index entries.
    ///   - passes: Dify's passes unless given.
    public init(
        settings: DatasetTaskSettings, plans: TenantPlanLookup, strategy: any IndexCleanupStrategy,
        passes: [Pass]? = nil
    ) {
        self.passes = passes ?? Self.difyPasses(settings)
        self.pageSize = max(1, settings.unusedDatasetsPageSize)
        self.dispatchBatchSize = max(1, settings.indexCleanupDispatchBatchSize)
        self.plans = plans
        self.strategy = strategy
    }

    /// Dify's candidate rule for the dataset `d` at cut-off `$<n>`: created before it, with at least
    /// one live (completed, enabled, not archived) document updated before it and none after it.
    /// A document updated exactly at the cut-off counts as neither, as in Dify.
    static func eligible(_ n: Int) -> String {
        """
        d.created_at < $\(n)::timestamp
        AND EXISTS (SELECT 1 FROM documents o WHERE o.dataset_id = d.id AND o.indexing_status = 'completed'
                    AND o.enabled AND NOT o.archived AND o.updated_at < $\(n)::timestamp)
        AND NOT EXISTS (SELECT 1 FROM documents w WHERE w.dataset_id = d.id AND w.indexing_status = 'completed'
                        AND w.enabled AND NOT w.archived AND w.updated_at > $\(n)::timestamp)
        """
    }

    /// Dify's recent-query rule: a query after the cut-off keeps the dataset.
    static func queried(_ n: Int) -> String {
        "EXISTS (SELECT 1 FROM dataset_queries q WHERE q.dataset_id = d.id AND q.created_at > $\(n)::timestamp)"
    }

    /// One page: the next `$3` datasets after the cursor `$2` (NULL: from the start) in primary-key
    /// order (an index range scan), and those of them that are candidates at cut-off `$1`, each
    /// probed through the `dataset_id` indexes of documents and queries. Every row carries the page's
    /// last id and size (one row with no candidate when none qualifies). On a dry run of a later
    /// pass, `$4` is the earlier pass's cut-off and datasets that pass would already clean are left out.
    static func page(excludingEarlierPass: Bool) -> String {
        """
        WITH chunk AS MATERIALIZED (
            SELECT id, tenant_id, created_at FROM datasets
             WHERE ($2::uuid IS NULL OR id > $2::uuid) ORDER BY id LIMIT $3
        ), candidate AS (
            SELECT d.id, d.tenant_id, r.hit IS NOT NULL AS queried
              FROM chunk d
              LEFT JOIN LATERAL (SELECT 1 AS hit FROM dataset_queries q
                                  WHERE q.dataset_id = d.id AND q.created_at > $1::timestamp LIMIT 1) r ON true
             WHERE \(eligible(1))
            \(excludingEarlierPass ? "AND NOT (\(eligible(4)) AND NOT \(queried(4)))" : "")
        )
        SELECT (SELECT id::text FROM chunk ORDER BY id DESC LIMIT 1), (SELECT count(*) FROM chunk),
               c.id::text, c.tenant_id::text, c.queried
          FROM (SELECT 1) one LEFT JOIN candidate c ON true
         ORDER BY c.id
        """
    }

    /// Re-checks one candidate under a row lock (another cleaner holding it is skipped).
    static let lockCandidate = """
        SELECT d.tenant_id::text FROM datasets d
         WHERE d.id = $1::uuid AND \(eligible(2)) AND NOT \(queried(2))
         FOR NO KEY UPDATE OF d SKIP LOCKED
        """

    /// Disables every enabled document of the dataset (and bumps `updated_at`, as Dify's ORM
    /// update does through the column's `onupdate`), writes one log per disabled live document when
    /// `$3`, and queues the completed live ones for index cleanup when `$4`. One round trip.
    static let disableDataset = """
        WITH disabled AS (
            UPDATE documents SET enabled = false, updated_at = CURRENT_TIMESTAMP
             WHERE dataset_id = $1::uuid AND enabled
            RETURNING id, archived, indexing_status
        ), logs AS (
            INSERT INTO dataset_auto_disable_logs (tenant_id, dataset_id, document_id)
            SELECT $2::uuid, $1::uuid, id FROM disabled WHERE NOT archived AND $3::boolean
            RETURNING 1
        ), queued AS (
            INSERT INTO herald.dataset_index_cleanups (document_id, dataset_id, tenant_id)
            SELECT id, $1::uuid, $2::uuid FROM disabled
             WHERE NOT archived AND indexing_status = 'completed' AND $4::boolean
            ON CONFLICT (document_id) DO NOTHING
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM disabled), (SELECT count(*) FROM logs), (SELECT count(*) FROM queued)
        """

    /// What cleaning the dataset would do, for dry runs.
    static let previewDataset = """
        SELECT count(*) FILTER (WHERE enabled),
               count(*) FILTER (WHERE enabled AND NOT archived),
               count(*) FILTER (WHERE enabled AND NOT archived AND indexing_status = 'completed')
          FROM documents WHERE dataset_id = $1::uuid
        """

    /// Runs every pass, then hands the queued index cleanups to the strategy.
    ///
    /// - Parameters:
    ///   - now: the run's reference instant; each pass's cut-off is `now − days`, naive UTC.
    ///   - dryRun: read only: counts what would be cleaned; no row, cache or queue changes.
    public func run(_ conn: PostgresConnection, now: Date, dryRun: Bool = false) throws(DatasetTaskError) -> Report {
        var report = Report(passes: [], indexCleanupsDispatched: 0, dryRun: dryRun)
        if !dryRun { report.indexCleanupsDispatched += try dispatchPendingIndexCleanups(conn) }
        var earlierCutoff: String?
        for pass in passes {
            let cutoff = try EmbeddingCacheCleaner.cutoff(conn, now: now, days: pass.days)
            var pr = PassReport(pass: pass, cutoff: cutoff)
            var cursor: String?
            while true {
                let exclude = dryRun ? earlierCutoff : nil
                var params: [String?] = [cutoff, cursor, String(pageSize)]
                if let exclude { params.append(exclude) }
                let rows = try DatasetTaskError.db("read unused dataset candidates") {
                    try conn.query(Self.page(excludingEarlierPass: exclude != nil), params).rows
                }
                guard let first = rows.first, first.count == 5, let seen = first[1].flatMap({ Int($0) }) else {
                    throw .unexpectedResult(operation: "read unused dataset candidates", detail: "\(rows.prefix(1))")
                }
                guard seen > 0, let last = first[0] else { break }
                pr.pages += 1
                pr.datasetsExamined += seen
                try process(rows.filter { $0[2] != nil }, pass: pass, cutoff: cutoff, dryRun: dryRun, conn, into: &pr)
                if !dryRun { report.indexCleanupsDispatched += try dispatchPendingIndexCleanups(conn) }
                guard seen == pageSize else { break }
                cursor = last
            }
            report.passes.append(pr)
            earlierCutoff = earlierCutoff ?? (pass.planFilter == nil ? cutoff : nil)
        }
        return report
    }

    /// Applies the query and plan filters to one page, then cleans (or previews) each survivor.
    private func process(
        _ rows: [[String?]], pass: Pass, cutoff: String, dryRun: Bool,
        _ conn: PostgresConnection, into pr: inout PassReport
    ) throws(DatasetTaskError) {
        var survivors: [(dataset: String, tenant: String)] = []
        for row in rows {
            guard row.count == 5, let dataset = row[2], let tenant = row[3] else {
                throw .unexpectedResult(operation: "read unused dataset candidates", detail: "\(row)")
            }
            pr.candidates += 1
            if row[4] == "t" { pr.skippedRecentQuery += 1 } else { survivors.append((dataset, tenant)) }
        }
        if let filter = pass.planFilter, !survivors.isEmpty {
            let looked = try plans.cachedPlans(tenantIDs: survivors.map(\.tenant), writeCache: !dryRun)
            var kept: [(dataset: String, tenant: String)] = []
            for s in survivors {
                if let plan = looked.plans[s.tenant] {
                    if plan == filter { kept.append(s) } else { pr.skippedPlan += 1 }
                } else {
                    pr.skippedPlanUnavailable += 1
                    pr.lastPlanError = looked.failures[s.tenant]
                }
            }
            survivors = kept
        }
        for s in survivors {
            if dryRun {
                let r = try DatasetTaskError.db("preview dataset \(s.dataset)") {
                    try conn.query(Self.previewDataset, [s.dataset]).rows
                }
                let counts = (r.first ?? []).map { $0.flatMap { Int($0) } ?? 0 }
                guard counts.count == 3 else { throw .unexpectedResult(operation: "preview dataset", detail: "\(r)") }
                pr.cleanedDatasets += 1
                pr.disabledDocuments += counts[0]
                pr.logsWritten += pass.writesLogs ? counts[1] : 0
                pr.indexCleanupsQueued += strategy.queuesDocuments ? counts[2] : 0
            } else {
                try clean(dataset: s.dataset, pass: pass, cutoff: cutoff, conn, into: &pr)
            }
        }
    }

    /// Cleans one dataset in one transaction: re-check under lock, disable, log, queue.
    private func clean(
        dataset: String, pass: Pass, cutoff: String, _ conn: PostgresConnection,
        into pr: inout PassReport
    ) throws(DatasetTaskError) {
        let queues = strategy.queuesDocuments
        let counts: [Int]? = try DatasetTaskError.db("clean dataset \(dataset)") {
            try conn.transaction { c -> [Int]? in
                guard let tenant = try c.query(Self.lockCandidate, [dataset, cutoff]).rows.first?.first ?? nil else {
                    return nil
                }
                let r = try c.query(
                    Self.disableDataset,
                    [
                        dataset, tenant, pass.writesLogs ? "true" : "false",
                        queues ? "true" : "false",
                    ])
                return (r.rows.first ?? []).map { $0.flatMap { Int($0) } ?? 0 }
            }
        }
        guard let counts else {
            pr.skippedChanged += 1
            return
        }
        guard counts.count == 3 else {
            throw .unexpectedResult(operation: "clean dataset \(dataset)", detail: "\(counts)")
        }
        pr.cleanedDatasets += 1
        pr.disabledDocuments += counts[0]
        pr.logsWritten += counts[1]
        pr.indexCleanupsQueued += counts[2]
    }

    /// Hands queued index cleanups to the strategy, oldest first, `dispatchBatchSize` at a time;
    /// a batch's outbox rows are deleted in the same transaction that locked them, after the
    /// strategy returned. Rows another instance holds are skipped. Returns how many were handed over.
    @discardableResult
    public func dispatchPendingIndexCleanups(_ conn: PostgresConnection) throws(DatasetTaskError) -> Int {
        var total = 0
        while true {
            let n = try DatasetTaskError.db("dispatch index cleanups") {
                try conn.transaction { c -> Int in
                    let rows = try c.query(
                        """
                        SELECT document_id::text, dataset_id::text, tenant_id::text, extract(epoch FROM queued_at)::bigint
                          FROM herald.dataset_index_cleanups
                         ORDER BY queued_at, document_id
                         LIMIT $1
                         FOR UPDATE SKIP LOCKED
                        """, [String(dispatchBatchSize)]
                    ).rows
                    let items = rows.compactMap { r -> IndexCleanupItem? in
                        guard r.count == 4, let doc = r[0], let ds = r[1], let t = r[2],
                            let at = r[3].flatMap({ Int64($0) })
                        else { return nil }
                        return IndexCleanupItem(documentID: doc, datasetID: ds, tenantID: t, queuedAt: at)
                    }
                    guard !items.isEmpty else { return 0 }
                    try strategy.dispatch(items)
                    try c.query(
                        "DELETE FROM herald.dataset_index_cleanups WHERE document_id = ANY($1::uuid[])",
                        ["{" + items.map(\.documentID).joined(separator: ",") + "}"])
                    return items.count
                }
            }
            total += n
            if n < dispatchBatchSize { return total }
        }
    }
}
