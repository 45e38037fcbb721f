// Dify's three dataset jobs as executor tasks: the embedding cache cleanup, the
// unused-dataset cleanup and the weekly document-clean mail. Each reads its
// settings from the run's context (Dify's names), honours dry-run, and runs its
// blocking database, Redis and SMTP work on the executor's queue thread.

import Foundation
import HeraldCore
import HeraldIO
import HeraldTasks
import Logging

/// What the dataset tasks need from the world, fixed at start-up.
public struct DatasetTaskResources: Sendable {
    /// Connections for the tasks' queries.
    public var pool: PostgresPool
    /// Dify's application Redis (`features:` cache, indexing guards).
    public var redis: RedisEndpoint
    /// The Celery broker (index-cleanup messages).
    public var broker: RedisEndpoint
    /// `REDIS_KEY_PREFIX` (raw, without ":").
    public var redisKeyPrefix: String
    /// The Celery `origin` header of messages Herald sends (`herald@<instance>`).
    public var origin: String
    /// The billing service when `BILLING_ENABLED=true`; nil fails such runs with a clear error.
    public var billing: (any BillingPlanSource)?
    /// The billing service's bulk endpoints (retention tasks) when `BILLING_ENABLED=true`.
    public var billingBulk: (any BillingBulkSource)?
    /// Counts deleted rows per task and table (`herald_rows_deleted_total`); nil counts nothing.
    public var rowsDeleted: (@Sendable (TaskName, String, Int) -> Void)?
    /// Counts billing lookup errors by kind (`herald_billing_lookup_errors_total`); nil counts nothing.
    public var billingErrors: (@Sendable (String, Int) -> Void)?
    /// The TiDB pool tasks' counters; nil counts nothing.
    public var tidbMetrics: TiDBMetrics?
    /// How the TiDB client waits between tries of a call (tests pass one that returns at once).
    public var tidbSleep: @Sendable (Duration) -> Void = TiDBCloudClient.blockingSleep

    /// Resources for the dataset and retention tasks.
    public init(
        pool: PostgresPool, redis: RedisEndpoint, broker: RedisEndpoint, redisKeyPrefix: String,
        origin: String, billing: (any BillingPlanSource)? = nil, billingBulk: (any BillingBulkSource)? = nil,
        rowsDeleted: (@Sendable (TaskName, String, Int) -> Void)? = nil,
        billingErrors: (@Sendable (String, Int) -> Void)? = nil
    ) {
        self.pool = pool
        self.redis = redis
        self.broker = broker
        self.redisKeyPrefix = redisKeyPrefix
        self.origin = origin
        self.billing = billing
        self.billingBulk = billingBulk
        self.rowsDeleted = rowsDeleted
        self.billingErrors = billingErrors
    }

    func datasetSettings(_ context: any TaskContext) throws(DatasetTaskRunError) -> DatasetTaskSettings {
        do { return try DatasetTaskSettings.load(from: context.settings.values) } catch { throw .settings("\(error)") }
    }

    func planLookup(
        _ settings: DatasetTaskSettings, redis: RedisClient?
    ) throws(DatasetTaskRunError) -> TenantPlanLookup {
        if settings.billingEnabled {
            guard let billing else {
                throw .settings("BILLING_ENABLED=true but Herald has no billing client configured")
            }
            return TenantPlanLookup(billing: .enabled(billing), redis: redis, redisKeyPrefix: redisKeyPrefix)
        }
        return TenantPlanLookup(billing: .disabled, redis: redis, redisKeyPrefix: redisKeyPrefix)
    }

    func redisClient(_ endpoint: RedisEndpoint) throws(DatasetTaskRunError) -> RedisClient {
        do { return try RedisClient.gated(endpoint: endpoint) } catch { throw .redis("\(error)") }
    }
}

/// Why a dataset task run failed outside the cleaners' own errors.
public enum DatasetTaskRunError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A setting is invalid or a needed client is missing.
    case settings(String)
    /// Redis could not be reached.
    case redis(String)
    /// Sending mail failed for `failed` of `attempted` tenants (their logs stay unnotified).
    case mail(failed: Int, attempted: Int, firstError: String)

    public var description: String {
        switch self {
        case .settings(let m): return "settings: \(m)"
        case .redis(let m): return "redis: \(m)"
        case .mail(let failed, let attempted, let first):
            return "mail failed for \(failed) of \(attempted) tenants (logs left unnotified): \(first)"
        }
    }
}

/// `clean_embedding_cache_task`: deletes embedding cache rows older than `PLAN_SANDBOX_CLEAN_DAY_SETTING`.
public struct EmbeddingCacheTask: HeraldTask {
    public let descriptor: TaskDescriptor
    let resources: DatasetTaskResources

    /// The task as `descriptor` declares it.
    public init(descriptor: TaskDescriptor, resources: DatasetTaskResources) {
        self.descriptor = descriptor
        self.resources = resources
    }

    public func run(_ context: any TaskContext) async throws -> TaskReport {
        let cleaner = EmbeddingCacheCleaner(settings: try resources.datasetSettings(context))
        let now = Date(timeIntervalSince1970: context.clock.wallSeconds)
        let report = try resources.pool.withConnection { c in
            try cleaner.run(c, now: now, dryRun: context.isDryRun, shouldContinue: { !context.isCancelled })
        }
        try context.checkCancellation()
        context.progress("embedding cache cleaned", [("cutoff", report.cutoff), ("rows", String(report.deleted))])
        return TaskReport(
            counts: ["deleted": report.deleted, "batches": report.batches],
            note: report.dryRun ? "dry run: \(report.deleted) rows would be deleted" : nil)
    }
}

/// `clean_unused_datasets_task`: disables the documents of datasets nobody queried,
/// with the index-cleanup strategy of `HERALD_DATASET_INDEX_CLEANUP`.
public struct UnusedDatasetsTask: HeraldTask {
    public let descriptor: TaskDescriptor
    let resources: DatasetTaskResources

    /// The task as `descriptor` declares it.
    public init(descriptor: TaskDescriptor, resources: DatasetTaskResources) {
        self.descriptor = descriptor
        self.resources = resources
    }

    public func run(_ context: any TaskContext) async throws -> TaskReport {
        let settings = try resources.datasetSettings(context)
        let redis = try resources.redisClient(resources.redis)
        let strategy: any IndexCleanupStrategy
        switch settings.indexCleanup {
        case .none:
            strategy = NoIndexCleanup()
        case .celery:
            strategy = CeleryIndexCleanup(
                broker: try resources.redisClient(resources.broker), redis: redis,
                redisKeyPrefix: resources.redisKeyPrefix, origin: resources.origin)
        }
        let cleaner = UnusedDatasetCleaner(
            settings: settings, plans: try resources.planLookup(settings, redis: redis),
            strategy: strategy)
        let now = Date(timeIntervalSince1970: context.clock.wallSeconds)
        let report = try resources.pool.withConnection { c in try cleaner.run(c, now: now, dryRun: context.isDryRun) }
        var counts: [String: Int] = ["index_cleanups": report.indexCleanupsDispatched]
        for pass in report.passes {
            counts["datasets_cleaned", default: 0] += pass.cleanedDatasets
            counts["datasets_examined", default: 0] += pass.datasetsExamined
            counts["documents_disabled", default: 0] += pass.disabledDocuments
            context.progress("pass finished", [("pass", pass.pass.name), ("cleaned", String(pass.cleanedDatasets))])
        }
        return TaskReport(counts: counts, note: report.dryRun ? "dry run: nothing changed" : nil)
    }
}

/// `mail_clean_document_notify_task`: mails each non-sandbox tenant's owner about the
/// documents `clean_unused_datasets_task` disabled, marking logs notified only after the
/// send returned. With `MAIL_TYPE` unset it does nothing, as Dify.
public struct DocumentNotifyMailTask: HeraldTask {
    public let descriptor: TaskDescriptor
    let resources: DatasetTaskResources

    /// The task as `descriptor` declares it.
    public init(descriptor: TaskDescriptor, resources: DatasetTaskResources) {
        self.descriptor = descriptor
        self.resources = resources
    }

    public func run(_ context: any TaskContext) async throws -> TaskReport {
        let mail: MailSettings.Transport?
        do {
            mail = try MailSettings.load(from: context.settings.values).transport(requiredBy: name.rawValue)
        } catch {
            throw DatasetTaskRunError.settings("\(error)")
        }
        guard let mail else { return TaskReport(note: "mail disabled: MAIL_TYPE unset") }
        let settings = try resources.datasetSettings(context)
        let redis = try resources.redisClient(resources.redis)
        let notifications = DocumentCleanNotifications(
            settings: settings, plans: try resources.planLookup(settings, redis: redis))
        let consoleURL = context.settings.string("CONSOLE_WEB_URL") ?? ""
        var counts = ["mailed": 0, "marked_without_mail": 0, "skipped": 0, "failed": 0]
        var firstError: String?
        var after: String?
        while true {
            try context.checkCancellation()
            let page = try resources.pool.withConnection { c in
                try notifications.pendingNotifications(c, afterTenant: after)
            }
            guard let last = page.last else { break }
            after = last.tenantID
            for notification in page {
                switch notification.disposition {
                case .skip:
                    counts["skipped"]! += 1
                case .markWithoutMail:
                    counts["marked_without_mail"]! += 1
                    if !context.isDryRun {
                        _ = try resources.pool.withConnection { c in try notifications.markNotified(c, notification) }
                    }
                case .mail:
                    if context.isDryRun {
                        counts["mailed"]! += 1
                        continue
                    }
                    do {
                        try send(notification, via: mail, consoleURL: consoleURL)
                    } catch {
                        counts["failed"]! += 1
                        if firstError == nil { firstError = "\(error)" }
                        context.progress("mail failed; logs left unnotified", [("tenant", notification.tenantID)])
                        continue
                    }
                    counts["mailed"]! += 1
                    _ = try resources.pool.withConnection { c in try notifications.markNotified(c, notification) }
                }
            }
        }
        if let firstError {
            throw DatasetTaskRunError.mail(
                failed: counts["failed"]!, attempted: counts["failed"]! + counts["mailed"]!,
                firstError: firstError)
        }
        return TaskReport(counts: counts, note: context.isDryRun ? "dry run: nothing sent or marked" : nil)
    }

    private func send(_ notification: TenantNotification, via mail: MailSettings.Transport, consoleURL: String) throws {
        guard let owner = notification.owner, let userName = notification.userName else { return }
        let language = DocumentCleanMail.Language(interfaceLanguage: TenantNotification.difyLanguageCode)
        let fields = DocumentCleanMail.Fields(
            userName: userName,
            datasets: notification.knowledgeBases.map { .init(name: $0.name, disabledDocuments: $0.documents) },
            consoleWebURL: consoleURL)
        let content = DocumentCleanMail.render(language, fields)
        let message = try SMTPMessage(
            from: mail.from, to: [try SMTPMessage.Address(owner.email)], subject: content.subject,
            text: content.text, html: content.html)
        // Behind the mail transport's breaker: once the server keeps failing, the other tenants'
        // mails fail at once (left unnotified for the next run) instead of each waiting for a
        // timeout. A refused address or message is the message's fault, not the transport's.
        _ = try Circuits.shared.call(Circuits.mail, counts: Self.isTransportFailure) { try mail.send(message) }
    }

    static func isTransportFailure(_ error: any Error) -> Bool {
        if let e = error as? MailAPIError { return e.kind != .rejected }
        guard let e = error as? SMTPError else { return true }
        switch e.kind {
        case .connect, .tls, .timeout, .transfer, .loginDenied: return true
        case .invalidMessage, .senderRejected, .recipientRejected, .messageRejected: return false
        }
    }
}
