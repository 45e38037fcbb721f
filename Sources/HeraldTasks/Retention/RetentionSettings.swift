// The settings of the two retention cleanups: Dify's names and defaults
// (SANDBOX_EXPIRED_RECORDS_* for clean_messages, WORKFLOW_LOG_* for
// clean_workflow_runlogs_precise) plus Herald's few additions (how long one batch may
// take, how long a batch waits for a row lock, how a failed batch is retried).
// Read once per run, validated, and the key named in every error.

/// Settings of `clean_messages` and `clean_workflow_runlogs_precise`.
public struct RetentionSettings: Sendable, Equatable {
    /// `SANDBOX_EXPIRED_RECORDS_RETENTION_DAYS` (30): messages older than this many days expire.
    public var messageRetentionDays: Int
    /// `SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_SIZE` (1000): messages per batch, and the ceiling of the adaptive size.
    public var messageBatchSize: Int
    /// `SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_MAX_INTERVAL` (200 ms): pause a random 0…this between batches; 0 = none.
    public var messagePauseMaxMs: Int
    /// `SANDBOX_EXPIRED_RECORDS_CLEAN_GRACEFUL_PERIOD` (21 days): a lapsed subscription's grace.
    public var gracePeriodDays: Int
    /// `BILLING_ENABLED` (false): with billing, only sandbox tenants outside grace and not whitelisted.
    public var billingEnabled: Bool
    /// `WORKFLOW_LOG_RETENTION_DAYS` (30): ended runs older than this many days expire.
    public var workflowLogRetentionDays: Int
    /// `WORKFLOW_LOG_CLEANUP_BATCH_SIZE` (100): runs per batch, and the ceiling of the adaptive size.
    public var workflowLogBatchSize: Int
    /// `WORKFLOW_LOG_CLEANUP_SPECIFIC_WORKFLOW_IDS` (""): only these workflows' runs; empty means all.
    public var workflowIDs: [String]
    /// `WORKFLOW_LOG_CLEANUP_BATCH_MAX_INTERVAL` (0 ms, Herald's; Dify pauses only the messages task).
    public var workflowLogPauseMaxMs: Int
    /// `HERALD_RETENTION_BATCH_TARGET_MS` (100): the batch size shrinks while a batch takes longer.
    public var batchTargetMs: Int
    /// `HERALD_RETENTION_MAX_BATCH_GROWTH` (10): while batches take under half the target, the
    /// size may grow up to this multiple of the configured batch size; 1 keeps it at most that size.
    public var maxBatchGrowth: Int
    /// `HERALD_RETENTION_LOCK_TIMEOUT_MS` (100): a batch waiting longer for a row lock fails and is retried.
    public var lockTimeoutMs: Int
    /// `HERALD_RETENTION_STATEMENT_TIMEOUT_MS` (150): no batch statement runs (holds its locks) longer;
    /// one that would is cancelled and retried smaller.
    public var statementTimeoutMs: Int
    /// `HERALD_RETENTION_BATCH_RETRIES` (5): attempts of one batch before the run fails.
    public var batchAttempts: Int
    /// `HERALD_RETENTION_RETRY_BASE_MS` (1000): first wait before retrying a failed batch (doubling, jittered, ≤ 60 s).
    public var retryBaseMs: Int

    /// Dify's defaults and Herald's.
    public static let defaults = RetentionSettings(
        messageRetentionDays: 30, messageBatchSize: 1000, messagePauseMaxMs: 200, gracePeriodDays: 21,
        billingEnabled: false, workflowLogRetentionDays: 30, workflowLogBatchSize: 100, workflowIDs: [],
        workflowLogPauseMaxMs: 0, batchTargetMs: 100, maxBatchGrowth: 10, lockTimeoutMs: 100, statementTimeoutMs: 150,
        batchAttempts: 5, retryBaseMs: 1000)

    /// Every value given explicitly (tests, benchmarks). Use `load(from:)` for the environment.
    public init(
        messageRetentionDays: Int, messageBatchSize: Int, messagePauseMaxMs: Int, gracePeriodDays: Int,
        billingEnabled: Bool, workflowLogRetentionDays: Int, workflowLogBatchSize: Int, workflowIDs: [String],
        workflowLogPauseMaxMs: Int, batchTargetMs: Int, maxBatchGrowth: Int, lockTimeoutMs: Int,
        statementTimeoutMs: Int, batchAttempts: Int, retryBaseMs: Int
    ) {
        self.messageRetentionDays = messageRetentionDays
        self.messageBatchSize = messageBatchSize
        self.messagePauseMaxMs = messagePauseMaxMs
        self.gracePeriodDays = gracePeriodDays
        self.billingEnabled = billingEnabled
        self.workflowLogRetentionDays = workflowLogRetentionDays
        self.workflowLogBatchSize = workflowLogBatchSize
        self.workflowIDs = workflowIDs
        self.workflowLogPauseMaxMs = workflowLogPauseMaxMs
        self.batchTargetMs = batchTargetMs
        self.maxBatchGrowth = maxBatchGrowth
        self.lockTimeoutMs = lockTimeoutMs
        self.statementTimeoutMs = statementTimeoutMs
        self.batchAttempts = batchAttempts
        self.retryBaseMs = retryBaseMs
    }

    /// Reads the settings from the environment; an unset or empty value takes the default.
    public static func load(from env: [String: String]) throws(TaskSettingsError) -> RetentionSettings {
        func value(_ key: String) -> String? { DatasetTaskSettings.setting(env, key) }
        func int(_ key: String, _ d: Int, _ range: ClosedRange<Int>) throws(TaskSettingsError) -> Int {
            try DatasetTaskSettings.integer(value(key), key: key, default: d, range: range)
        }
        let d = defaults
        var s = d
        let days = DatasetTaskSettings.dayRange
        s.messageRetentionDays = try int("SANDBOX_EXPIRED_RECORDS_RETENTION_DAYS", d.messageRetentionDays, days)
        s.messageBatchSize = try int("SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_SIZE", d.messageBatchSize, 1...100_000)
        s.messagePauseMaxMs = try int(
            "SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_MAX_INTERVAL", d.messagePauseMaxMs, 0...600_000)
        s.gracePeriodDays = try int("SANDBOX_EXPIRED_RECORDS_CLEAN_GRACEFUL_PERIOD", d.gracePeriodDays, 0...36_500)
        s.billingEnabled = try DatasetTaskSettings.boolean(
            value("BILLING_ENABLED"), key: "BILLING_ENABLED", default: d.billingEnabled)
        s.workflowLogRetentionDays = try int("WORKFLOW_LOG_RETENTION_DAYS", d.workflowLogRetentionDays, days)
        s.workflowLogBatchSize = try int("WORKFLOW_LOG_CLEANUP_BATCH_SIZE", d.workflowLogBatchSize, 1...100_000)
        s.workflowLogPauseMaxMs = try int(
            "WORKFLOW_LOG_CLEANUP_BATCH_MAX_INTERVAL", d.workflowLogPauseMaxMs, 0...600_000)
        s.batchTargetMs = try int("HERALD_RETENTION_BATCH_TARGET_MS", d.batchTargetMs, 5...60_000)
        s.maxBatchGrowth = try int("HERALD_RETENTION_MAX_BATCH_GROWTH", d.maxBatchGrowth, 1...100)
        s.lockTimeoutMs = try int("HERALD_RETENTION_LOCK_TIMEOUT_MS", d.lockTimeoutMs, 1...600_000)
        s.statementTimeoutMs = try int("HERALD_RETENTION_STATEMENT_TIMEOUT_MS", d.statementTimeoutMs, 10...600_000)
        s.batchAttempts = try int("HERALD_RETENTION_BATCH_RETRIES", d.batchAttempts, 1...100)
        s.retryBaseMs = try int("HERALD_RETENTION_RETRY_BASE_MS", d.retryBaseMs, 1...600_000)
        if let ids = value("WORKFLOW_LOG_CLEANUP_SPECIFIC_WORKFLOW_IDS") {
            var list: [String] = []
            for part in ids.split(separator: ",") {
                let id = part.trimmingWhitespace.lowercased()
                if id.isEmpty { continue }
                guard isUUID(id) else {
                    throw TaskSettingsError(
                        key: "WORKFLOW_LOG_CLEANUP_SPECIFIC_WORKFLOW_IDS",
                        reason: "expected comma-separated workflow UUIDs, got \"\(part)\"")
                }
                list.append(id)
            }
            s.workflowIDs = list
        }
        return s
    }

    /// True for the canonical 8-4-4-4-12 hexadecimal form.
    static func isUUID(_ s: String) -> Bool {
        let bytes = Array(s.utf8)
        guard bytes.count == 36 else { return false }
        for (i, b) in bytes.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                if b != UInt8(ascii: "-") { return false }
            } else if !((b >= 48 && b <= 57) || (b >= 97 && b <= 102) || (b >= 65 && b <= 70)) {
                return false
            }
        }
        return true
    }
}
