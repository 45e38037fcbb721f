// Puts claimed fires on Celery's queue, exactly once. Each message is pushed by
// a small Lua script that first sets a per-task-id marker with SET NX: the
// marker and the LPUSH happen atomically in the broker, so a fire re-sent after
// a crash (same deterministic task id) is recognised and never queued twice.

import Glibc
import HeraldCelery
import HeraldCore
import HeraldIO

/// Enqueues schedule fires on the Celery broker. One instance per thread.
public final class FireDispatcher: @unchecked Sendable {
    /// `KEYS[1]` marker, `KEYS[2]` queue list; `ARGV[1]` message, `ARGV[2]` marker TTL (s).
    static let script = """
        if redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[2])) then
          redis.call('LPUSH', KEYS[2], ARGV[1])
          return 1
        end
        return 0
        """
    static let markerTTLSeconds = 7 * 86_400

    private let broker: RedisEndpoint
    private let keyPrefix: String
    private let origin: String
    private let replyTo: String
    private var client: RedisClient?
    private var scriptSHA: String?

    /// - Parameters:
    ///   - redisKeyPrefix: Dify's `REDIS_KEY_PREFIX` (Celery's global_keyprefix is derived from it).
    public init(broker: RedisEndpoint, redisKeyPrefix: String, instanceID: String) {
        self.broker = broker
        self.keyPrefix = CeleryMessage.globalKeyPrefix(redisKeyPrefix: redisKeyPrefix)
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count)
        let hostname = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.origin = "herald\(getpid())@\(hostname)"
        self.replyTo = CeleryUUID.v5(namespace: CeleryMessage.taskIDNamespace, name: "reply-to:\(instanceID)").description
    }

    /// The list key of Dify's schedule queue.
    public var queueKey: String {
        CeleryMessage.listKey(queue: DifyCeleryTasks.runScheduleTrigger.queue, keyPrefix: keyPrefix)
    }

    /// Enqueues `fires`; returns, per fire, true when it was pushed now and false when an
    /// earlier push of the same task id already happened. Throws when the broker fails.
    public func enqueue(_ fires: [ClaimedFire]) throws -> [Bool] {
        guard !fires.isEmpty else { return [] }
        let c = try connection()
        let sha = try loadScript(c)
        var commands: [[[UInt8]]] = []
        commands.reserveCapacity(fires.count)
        let queueKey = Array(self.queueKey.utf8)
        let ttl = Array(String(Self.markerTTLSeconds).utf8)
        for f in fires {
            let task = DifyCeleryTasks.runScheduleTrigger(scheduleID: f.plan.description, taskID: f.taskID)
            let message = CeleryMessage.encode(task, origin: origin, replyTo: replyTo, deliveryTag: CeleryUUID.v4().description)
            let marker = Array((keyPrefix + "herald:fire:" + f.taskID).utf8)
            commands.append([Array("EVALSHA".utf8), Array(sha.utf8), Array("2".utf8), marker, queueKey, message, ttl])
        }
        let replies: [RedisValue]
        do {
            replies = try c.pipeline(commands)
        } catch {
            client = nil
            throw error
        }
        var out: [Bool] = []
        out.reserveCapacity(replies.count)
        for r in replies {
            switch r {
            case .integer(let n): out.append(n == 1)
            case .error(let m):
                if m.hasPrefix("NOSCRIPT") { scriptSHA = nil }
                throw IOError.redisReply(message: m)
            default: throw IOError.redisReply(message: "unexpected reply to EVALSHA")
            }
        }
        return out
    }

    private func connection() throws -> RedisClient {
        if let c = client, c.isHealthy { return c }
        let c = try RedisClient(endpoint: broker)
        client = c
        scriptSHA = nil
        return c
    }

    private func loadScript(_ c: RedisClient) throws -> String {
        if let s = scriptSHA { return s }
        let r = try c.command(["SCRIPT", "LOAD", Self.script])
        guard let sha = r.text else { throw IOError.redisReply(message: "SCRIPT LOAD: \(r)") }
        scriptSHA = sha
        return sha
    }
}
