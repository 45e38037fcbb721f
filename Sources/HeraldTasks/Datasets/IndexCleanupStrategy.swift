// What happens to a cleaned dataset's vector/keyword index, as a strategy. Herald does
// not talk to vector stores: `celery` hands each disabled document to Dify's own
// `remove_document_from_index_task` on the `dataset` queue, exactly as Dify's console does
// when a user disables a document; `none` leaves the index alone.

import Foundation
import HeraldCelery
import HeraldIO

/// One disabled document whose index entries are to be removed.
public struct IndexCleanupItem: Sendable, Equatable {
    public var documentID: String
    public var datasetID: String
    public var tenantID: String
    /// When the cleanup was queued (Unix seconds): part of the Celery task id, so a re-send is recognisable.
    public var queuedAt: Int64

    public init(documentID: String, datasetID: String, tenantID: String, queuedAt: Int64) {
        self.documentID = documentID
        self.datasetID = datasetID
        self.tenantID = tenantID
        self.queuedAt = queuedAt
    }
}

/// Removes (or deliberately keeps) the index entries of documents `clean_unused_datasets` disabled.
///
/// `dispatch` is called after the documents were disabled and committed, with items read from
/// Herald's outbox `herald.dataset_index_cleanups`; the rows are deleted only when it returns.
/// It may therefore see an item again after a crash, and must be safe to repeat.
public protocol IndexCleanupStrategy: Sendable {
    /// The name operators configure and logs show (`celery`, `none`).
    var name: String { get }
    /// Whether disabled documents are queued for `dispatch` at all (false: nothing is recorded).
    var queuesDocuments: Bool { get }
    /// Hands the items over (e.g. enqueues one Celery task each). Throws when nothing may be assumed sent.
    func dispatch(_ items: [IndexCleanupItem]) throws(DatasetTaskError)
}

/// `none`: leaves every index as it is; only the database rows change.
public struct NoIndexCleanup: IndexCleanupStrategy {
    public init() {}
    public var name: String { IndexCleanupMode.none.rawValue }
    public var queuesDocuments: Bool { false }
    public func dispatch(_ items: [IndexCleanupItem]) throws(DatasetTaskError) {}
}

/// `celery`: enqueues `tasks.remove_document_from_index_task.remove_document_from_index_task(document_id)`
/// on `dataset` for each document, after setting `document_{id}_indexing` (600 s) as Dify's
/// disable path does, so the console refuses to re-enable the document while its removal is pending.
public final class CeleryIndexCleanup: IndexCleanupStrategy, @unchecked Sendable {
    /// Dify's task (`api/tasks/remove_document_from_index_task.py`, `@shared_task(queue="dataset")`,
    /// one positional argument `document_id: str`).
    public static let removeDocumentFromIndex = CeleryTaskName(
        "tasks.remove_document_from_index_task.remove_document_from_index_task", queue: "dataset")
    /// TTL of the `document_{id}_indexing` guard, as Dify's `setex(indexing_cache_key, 600, 1)`.
    public static let indexingGuardTTLSeconds = 600

    private let broker: RedisClient
    private let app: RedisClient?
    private let redisKeyPrefix: String
    private let globalKeyPrefix: String
    private let origin: String
    private let replyTo: String
    private let lock = NSLock()

    /// - Parameters:
    ///   - broker: the Celery broker (Dify's `CELERY_BROKER_URL`, DB 1 in Dify's docker layout).
    ///   - redis: Dify's application Redis (`redis_client`, DB 0 in docker), where the
    ///     `document_{id}_indexing` guard lives; nil sets no guard.
    ///   - redisKeyPrefix: Dify's `REDIS_KEY_PREFIX`.
    ///   - origin: the Celery `origin` header, e.g. `herald<pid>@<host>`.
    ///   - replyTo: the `reply_to` property (one UUID per Herald process).
    public init(broker: RedisClient, redis: RedisClient?, redisKeyPrefix: String, origin: String, replyTo: String = "")
    {
        self.broker = broker
        self.app = redis
        self.redisKeyPrefix = redisKeyPrefix.isEmpty ? "" : redisKeyPrefix + ":"
        self.globalKeyPrefix = CeleryMessage.globalKeyPrefix(redisKeyPrefix: redisKeyPrefix)
        self.origin = origin
        self.replyTo = replyTo
    }

    public var name: String { IndexCleanupMode.celery.rawValue }
    public var queuesDocuments: Bool { true }

    /// The list the messages go to: `[<REDIS_KEY_PREFIX>:]dataset`.
    public var queueKey: String {
        CeleryMessage.listKey(queue: Self.removeDocumentFromIndex.queue, keyPrefix: globalKeyPrefix)
    }

    /// The Celery call for one item: positional `[document_id]`, with a deterministic task id
    /// `uuid5(ns, "remove_document_from_index:<document_id>@<queuedAt>")`.
    public static func task(for item: IndexCleanupItem) -> CeleryTask {
        let t = removeDocumentFromIndex
        let id = CeleryMessage.taskID(
            scheduleID: "remove_document_from_index:" + item.documentID, scheduledAt: item.queuedAt)
        return CeleryTask(name: t.name, queue: t.queue, id: id, args: [.string(item.documentID)])
    }

    /// The guard key of one document: `[<REDIS_KEY_PREFIX>:]document_<id>_indexing`.
    public func indexingGuardKey(documentID: String) -> String {
        redisKeyPrefix + "document_\(documentID)_indexing"
    }

    /// First `SETEX <guard> 600 1` per item on the application Redis (one pipeline), then one
    /// `LPUSH` of every message on the broker, in item order, so workers take them oldest first.
    /// The guard precedes the message, so a worker that finishes at once still finds and deletes it.
    public func dispatch(_ items: [IndexCleanupItem]) throws(DatasetTaskError) {
        guard !items.isEmpty else { return }
        var push: [[UInt8]] = [Array("LPUSH".utf8), Array(queueKey.utf8)]
        push.reserveCapacity(items.count + 2)
        for item in items {
            push.append(
                CeleryMessage.encode(
                    Self.task(for: item), origin: origin, replyTo: replyTo,
                    deliveryTag: CeleryUUID.v4().description))
        }
        lock.lock()
        defer { lock.unlock() }
        if let app {
            let ttl = Array(String(Self.indexingGuardTTLSeconds).utf8)
            let guards = items.map {
                [Array("SETEX".utf8), Array(indexingGuardKey(documentID: $0.documentID).utf8), ttl, Array("1".utf8)]
            }
            try Self.run(app, guards, operation: "SETEX document_<id>_indexing")
        }
        try Self.run(broker, [push], operation: "LPUSH \(queueKey)")
    }

    private static func run(_ client: RedisClient, _ commands: [[[UInt8]]], operation: String) throws(DatasetTaskError)
    {
        let replies: [RedisValue]
        do {
            replies = try client.pipeline(commands)
        } catch {
            throw .redis(operation: operation, underlying: error)
        }
        for case .error(let m) in replies {
            throw .redis(operation: operation, underlying: .redisReply(message: m))
        }
    }
}
