// The settings of the three dataset tasks (embedding cache, unused datasets, the
// document-clean mail's data), read once by Dify's environment names with Dify's
// defaults and rules, plus Herald's batch sizes and index-cleanup strategy. A bad
// value is rejected at start with the key at fault, never half-applied mid-run.
// The typed errors of the dataset tasks live here too.

import HeraldIO

/// A setting of the dataset tasks that cannot be used (same shape as the runtime's `SettingsError`).
public struct TaskSettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The environment name at fault, e.g. `PLAN_PRO_CLEAN_DAY_SETTING`.
    public var key: String
    /// What is wrong with its value.
    public var reason: String

    public init(key: String, reason: String) {
        self.key = key
        self.reason = reason
    }

    public var description: String { "invalid setting \(key): \(reason)" }
}

/// Why a dataset task run failed. Each case names the step that failed.
public enum DatasetTaskError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A PostgreSQL statement or connection failed.
    case database(operation: String, underlying: IOError)
    /// A Redis command failed (connection or error reply).
    case redis(operation: String, underlying: IOError)
    /// The billing service gave no usable plan for a tenant.
    case billing(tenantID: String, reason: String)
    /// A statement returned something other than the shape the task relies on.
    case unexpectedResult(operation: String, detail: String)

    public var description: String {
        switch self {
        case .database(let op, let e): return "\(op): \(e)"
        case .redis(let op, let e): return "\(op): \(e)"
        case .billing(let tenant, let reason): return "billing plan of tenant \(tenant): \(reason)"
        case .unexpectedResult(let op, let detail): return "\(op): unexpected result: \(detail)"
        }
    }

    /// Runs `body`, turning an `IOError` into `.database(operation:)` and keeping a `DatasetTaskError`.
    static func db<T>(_ operation: String, _ body: () throws -> T) throws(DatasetTaskError) -> T {
        do {
            return try body()
        } catch let e as DatasetTaskError {
            throw e
        } catch let e as IOError {
            throw .database(operation: operation, underlying: e)
        } catch {
            throw .unexpectedResult(operation: operation, detail: "\(error)")
        }
    }
}

/// How `clean_unused_datasets` removes a cleaned dataset's index (`HERALD_DATASET_INDEX_CLEANUP`).
public enum IndexCleanupMode: String, Sendable, Equatable, CaseIterable {
    /// Enqueue Dify's own `remove_document_from_index_task` per disabled document (the default).
    case celery
    /// Leave the vector/keyword index alone; only the database rows change.
    case none
}

/// The settings of `clean_embedding_cache_task`, `clean_unused_datasets_task` and
/// `mail_clean_document_notify_task`'s data side.
public struct DatasetTaskSettings: Sendable, Equatable {
    /// `PLAN_SANDBOX_CLEAN_DAY_SETTING` (Dify: PositiveInt, 30): the embedding cache's retention
    /// and the cut-off of the unused-dataset pass over every tenant.
    public var sandboxCleanDays: Int
    /// `PLAN_PRO_CLEAN_DAY_SETTING` (Dify: PositiveInt, 7): the cut-off of the unused-dataset
    /// pass over sandbox tenants (Dify's naming, not a typo here).
    public var proCleanDays: Int
    /// `BILLING_ENABLED` (false): ask the billing service for a tenant's plan; when false every
    /// tenant's plan is `sandbox`, as in Dify's `FeatureService`.
    public var billingEnabled: Bool
    /// `HERALD_DATASET_INDEX_CLEANUP` (`celery`): the index-cleanup strategy.
    public var indexCleanup: IndexCleanupMode
    /// `HERALD_EMBEDDING_CACHE_CLEAN_BATCH_SIZE` (1000): rows deleted per transaction.
    public var embeddingCleanBatchSize: Int
    /// `HERALD_UNUSED_DATASETS_PAGE_SIZE` (1000): datasets examined per page, in primary-key order
    /// (Dify reads 50 candidates per page with OFFSET; see docs/tasks-datasets.md).
    public var unusedDatasetsPageSize: Int
    /// `HERALD_INDEX_CLEANUP_DISPATCH_BATCH_SIZE` (500): index-cleanup messages per broker round trip.
    public var indexCleanupDispatchBatchSize: Int
    /// `HERALD_DOCUMENT_NOTIFY_TENANT_BATCH_SIZE` (100): tenants per `pendingNotifications` page.
    public var notifyTenantBatchSize: Int

    /// Dify's defaults and Herald's.
    public static let defaults = DatasetTaskSettings(
        sandboxCleanDays: 30, proCleanDays: 7, billingEnabled: false, indexCleanup: .celery,
        embeddingCleanBatchSize: 1000, unusedDatasetsPageSize: 1000, indexCleanupDispatchBatchSize: 500,
        notifyTenantBatchSize: 100)

    /// Every value given explicitly (tests, benchmarks). Use `load(from:)` for the environment.
    public init(
        sandboxCleanDays: Int, proCleanDays: Int, billingEnabled: Bool, indexCleanup: IndexCleanupMode,
        embeddingCleanBatchSize: Int, unusedDatasetsPageSize: Int, indexCleanupDispatchBatchSize: Int,
        notifyTenantBatchSize: Int
    ) {
        self.sandboxCleanDays = sandboxCleanDays
        self.proCleanDays = proCleanDays
        self.billingEnabled = billingEnabled
        self.indexCleanup = indexCleanup
        self.embeddingCleanBatchSize = embeddingCleanBatchSize
        self.unusedDatasetsPageSize = unusedDatasetsPageSize
        self.indexCleanupDispatchBatchSize = indexCleanupDispatchBatchSize
        self.notifyTenantBatchSize = notifyTenantBatchSize
    }

    /// The range every day setting must fall in: Dify's PositiveInt (≥ 1), capped at 100 years
    /// so the cut-off stays a valid timestamp.
    public static let dayRange = 1...36_500

    /// Reads the settings from the environment; an unset or empty value takes the default.
    public static func load(from env: [String: String]) throws(TaskSettingsError) -> DatasetTaskSettings {
        func value(_ key: String) -> String? { setting(env, key) }
        let d = defaults
        var s = d
        s.sandboxCleanDays = try integer(
            value("PLAN_SANDBOX_CLEAN_DAY_SETTING"), key: "PLAN_SANDBOX_CLEAN_DAY_SETTING",
            default: d.sandboxCleanDays, range: dayRange)
        s.proCleanDays = try integer(
            value("PLAN_PRO_CLEAN_DAY_SETTING"), key: "PLAN_PRO_CLEAN_DAY_SETTING",
            default: d.proCleanDays, range: dayRange)
        s.billingEnabled = try boolean(value("BILLING_ENABLED"), key: "BILLING_ENABLED", default: d.billingEnabled)
        if let mode = value("HERALD_DATASET_INDEX_CLEANUP") {
            guard let m = IndexCleanupMode(rawValue: mode.lowercased()) else {
                throw TaskSettingsError(
                    key: "HERALD_DATASET_INDEX_CLEANUP",
                    reason: "expected celery or none, got \"\(mode)\"")
            }
            s.indexCleanup = m
        }
        s.embeddingCleanBatchSize = try integer(
            value("HERALD_EMBEDDING_CACHE_CLEAN_BATCH_SIZE"),
            key: "HERALD_EMBEDDING_CACHE_CLEAN_BATCH_SIZE",
            default: d.embeddingCleanBatchSize, range: 1...100_000)
        s.unusedDatasetsPageSize = try integer(
            value("HERALD_UNUSED_DATASETS_PAGE_SIZE"),
            key: "HERALD_UNUSED_DATASETS_PAGE_SIZE",
            default: d.unusedDatasetsPageSize, range: 1...10_000)
        s.indexCleanupDispatchBatchSize = try integer(
            value("HERALD_INDEX_CLEANUP_DISPATCH_BATCH_SIZE"),
            key: "HERALD_INDEX_CLEANUP_DISPATCH_BATCH_SIZE",
            default: d.indexCleanupDispatchBatchSize, range: 1...10_000)
        s.notifyTenantBatchSize = try integer(
            value("HERALD_DOCUMENT_NOTIFY_TENANT_BATCH_SIZE"),
            key: "HERALD_DOCUMENT_NOTIFY_TENANT_BATCH_SIZE",
            default: d.notifyTenantBatchSize, range: 1...10_000)
        return s
    }

    /// `env[key]` without surrounding whitespace; nil when unset or blank (the default applies).
    static func setting(_ env: [String: String], _ key: String) -> String? {
        guard let v = env[key]?.trimmingWhitespace, !v.isEmpty else { return nil }
        return v
    }

    static func integer(
        _ text: String?, key: String, default d: Int, range: ClosedRange<Int>
    ) throws(TaskSettingsError) -> Int {
        guard let text else { return d }
        guard let v = Int(text), range.contains(v) else {
            throw TaskSettingsError(
                key: key, reason: "expected an integer in \(range.lowerBound)...\(range.upperBound), got \"\(text)\"")
        }
        return v
    }

    /// pydantic's boolean words, case-insensitively.
    static func boolean(_ text: String?, key: String, default d: Bool) throws(TaskSettingsError) -> Bool {
        guard let text else { return d }
        switch text.lowercased() {
        case "1", "true", "yes", "on", "t", "y": return true
        case "0", "false", "no", "off", "f", "n": return false
        default: throw TaskSettingsError(key: key, reason: "expected true or false, got \"\(text)\"")
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing whitespace.
    var trimmingWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
