// Sends one claimed refresh as Dify's publisher would, but so that Dify's executor
// sees it: first Dify's lock `trigger_provider_refresh_lock:{tenant}_{subscription}`
// on the app Redis under the name the executor reads (with REDIS_KEY_PREFIX) and
// Dify's TTL, then `trigger_subscription_refresh` on `trigger_refresh_executor` on
// the broker. The lock holds the refresh's task id, so a re-send after a crash
// between the two steps finds its own lock; the message's marker (set in the same
// Lua call as the LPUSH) keeps a second copy off the queue. Blocking: run it off the loop.

import HeraldCelery
import HeraldCore
import HeraldIO

/// How one send ended.
public enum TriggerRefreshSendResult: String, Sendable, Equatable {
    /// The message is on the queue now.
    case enqueued
    /// Sent before (its marker was set): nothing pushed again.
    case duplicate
    /// Dify's lock is held by another refresh of the subscription: nothing pushed.
    case locked
}

/// Takes Dify's lock and pushes the refresh task.
public final class TriggerRefreshSender: @unchecked Sendable {
    public let app: RedisEndpoint
    public let broker: RedisEndpoint
    public let redisKeyPrefix: String
    public let origin: String
    /// Dify's lock TTL: `max(300, TRIGGER_PROVIDER_SUBSCRIPTION_THRESHOLD_SECONDS)`.
    public let lockTTLSeconds: Int
    private var appClient: RedisClient?
    private var brokerClient: RedisClient?

    public init(
        app: RedisEndpoint, broker: RedisEndpoint, redisKeyPrefix: String, instanceID: String,
        subscriptionThreshold: Int
    ) {
        self.app = app
        self.broker = broker
        self.redisKeyPrefix = redisKeyPrefix
        self.origin = "herald@\(instanceID)"
        self.lockTTLSeconds = max(300, subscriptionThreshold)
    }

    /// The task id of a subscription's refresh at `dueAt` (µs).
    public static func taskID(subscription: PlanID, dueAt: Int64) -> String {
        CeleryMessage.taskID(scheduleID: "trigger_refresh:\(subscription)", scheduledAt: dueAt / 1_000_000)
    }

    /// Dify's lock key as its executor reads it: `[<REDIS_KEY_PREFIX>:]trigger_provider_refresh_lock:{t}_{s}`.
    public func lockKey(tenant: String, subscription: PlanID) -> String {
        (redisKeyPrefix.isEmpty ? "" : redisKeyPrefix + ":") + "trigger_provider_refresh_lock:\(tenant)_\(subscription)"
    }

    /// The marker of one refresh on the broker.
    public func markerKey(subscription: PlanID, dueAt: Int64) -> String {
        (redisKeyPrefix.isEmpty ? "" : redisKeyPrefix + ":") + "herald:sent:trigger_refresh:\(subscription):\(dueAt)"
    }

    /// The lock is taken when free, or already ours (the same task id): 1; held by another: 0.
    static let lockScript = """
        local v = redis.call('GET', KEYS[1])
        if v == false then
          redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
          return 1
        end
        if v == ARGV[1] then return 1 end
        return 0
        """

    /// Sends `refresh`.
    public func send(_ refresh: ClaimedRefresh) throws(IOError) -> TriggerRefreshSendResult {
        let id = Self.taskID(subscription: refresh.subscription, dueAt: refresh.dueAt)
        let lock = lockKey(tenant: refresh.tenant, subscription: refresh.subscription)
        let locked = try withClient(&appClient, app) { c throws(IOError) in
            try c.command([
                Array("EVAL".utf8), Array(Self.lockScript.utf8), Array("1".utf8), Array(lock.utf8), Array(id.utf8),
                Array(String(lockTTLSeconds).utf8),
            ])
        }
        switch locked {
        case .integer(1): break
        case .integer(0): return .locked
        case .error(let m): throw .redisReply(message: m)
        default: throw .redisReply(message: "unexpected reply to the lock script")
        }
        let task = DifyCeleryTasks.triggerSubscriptionRefresh(
            tenantID: refresh.tenant, subscriptionID: refresh.subscription.description, taskID: id)
        let message = CeleryMessage.encode(task, origin: origin, deliveryTag: CeleryUUID.v4().description)
        let key = CeleryMessage.listKey(
            queue: task.queue, keyPrefix: CeleryMessage.globalKeyPrefix(redisKeyPrefix: redisKeyPrefix))
        let marker = markerKey(subscription: refresh.subscription, dueAt: refresh.dueAt)
        let pushed = try withClient(&brokerClient, broker) { c throws(IOError) in
            try c.command([
                Array("EVAL".utf8), Array(CeleryBeatSender.script.utf8), Array("2".utf8), Array(key.utf8),
                Array(marker.utf8), Array("86400".utf8), message,
            ])
        }
        switch pushed {
        case .integer(1): return .enqueued
        case .integer(0): return .duplicate
        case .error(let m): throw .redisReply(message: m)
        default: throw .redisReply(message: "unexpected reply to the push script")
        }
    }

    /// Runs `body` on a kept connection, opened on first use; a failed one is dropped and the
    /// command tried once more on a new one.
    private func withClient(
        _ client: inout RedisClient?, _ endpoint: RedisEndpoint, _ body: (RedisClient) throws(IOError) -> RedisValue
    ) throws(IOError) -> RedisValue {
        for attempt in 0..<2 {
            do {
                if client == nil { client = try RedisClient.gated(endpoint: endpoint) }
                return try body(client!)
            } catch {
                client = nil
                if attempt == 1 { throw error }
            }
        }
        throw .redisReply(message: "unreachable")
    }
}
