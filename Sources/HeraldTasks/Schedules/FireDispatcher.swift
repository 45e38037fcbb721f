// Puts claimed fires on Celery's queue, exactly once. A small Lua script sets a
// per-task-id marker with SET NX for each message and LPUSHes only the messages
// whose marker was new: marker and push happen atomically in the broker, so a
// fire re-sent after a crash (same deterministic task id) is never queued twice.
// Messages are encoded ahead (`prepare`) so that the push at a fire's time is
// only the network round trip.

import Glibc
import HeraldCelery
import HeraldCore
import HeraldIO

/// A fire with its Celery message already encoded.
public struct PreparedFire: Sendable {
    public var fire: ClaimedFire
    var marker: [UInt8]
    var message: [UInt8]
}

/// Enqueues schedule fires on the Celery broker. One instance per thread.
public final class FireDispatcher: @unchecked Sendable {
    /// `KEYS[1]` the queue list, `KEYS[2..]` markers; `ARGV[1]` marker TTL (s), `ARGV[2..]` messages.
    /// Returns one 1 (pushed) or 0 (already queued before) per message.
    static let script = """
        local ttl = tonumber(ARGV[1])
        local fresh = {}
        local out = {}
        for i = 2, #KEYS do
          if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ttl) then
            fresh[#fresh + 1] = ARGV[i]
            out[i - 1] = 1
          else
            out[i - 1] = 0
          end
        end
        for i = 1, #fresh, 500 do
          redis.call('LPUSH', KEYS[1], unpack(fresh, i, math.min(i + 499, #fresh)))
        end
        return out
        """
    static let markerTTLSeconds = 7 * 86_400
    /// Messages per script call (several calls are pipelined).
    static let perCall = 250

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

    /// Encodes the Celery messages of `fires` (pure CPU; any thread).
    public func prepare(_ fires: [ClaimedFire]) -> [PreparedFire] {
        fires.map { f in
            let task = DifyCeleryTasks.runScheduleTrigger(scheduleID: f.plan.description, taskID: f.taskID)
            let message = CeleryMessage.encode(task, origin: origin, replyTo: replyTo, deliveryTag: CeleryUUID.v4().description)
            return PreparedFire(fire: f, marker: Array((keyPrefix + "herald:fire:" + f.taskID).utf8), message: message)
        }
    }

    /// Enqueues `fires`; returns, per fire, true when it was pushed now and false when an
    /// earlier push of the same task id already happened. Throws when the broker fails.
    public func enqueue(_ fires: [ClaimedFire]) throws -> [Bool] {
        try push(prepare(fires))
    }

    /// Pushes prepared fires (pipelined script calls, one round trip).
    public func push(_ prepared: [PreparedFire]) throws -> [Bool] {
        guard !prepared.isEmpty else { return [] }
        let c = try connection()
        let sha = try loadScript(c)
        let queue = Array(queueKey.utf8)
        let ttl = Array(String(Self.markerTTLSeconds).utf8)
        var commands: [[[UInt8]]] = []
        var start = 0
        while start < prepared.count {
            let chunk = prepared[start..<min(start + Self.perCall, prepared.count)]
            var cmd: [[UInt8]] = [Array("EVALSHA".utf8), Array(sha.utf8), Array(String(chunk.count + 1).utf8), queue]
            cmd.reserveCapacity(5 + 2 * chunk.count)
            for p in chunk { cmd.append(p.marker) }
            cmd.append(ttl)
            for p in chunk { cmd.append(p.message) }
            commands.append(cmd)
            start += chunk.count
        }
        let replies: [RedisValue]
        do {
            replies = try c.pipeline(commands)
        } catch {
            client = nil
            throw error
        }
        var out: [Bool] = []
        out.reserveCapacity(prepared.count)
        for r in replies {
            switch r {
            case .array(let items): out += items.map { $0.integer == 1 }
            case .error(let m):
                if m.hasPrefix("NOSCRIPT") { scriptSHA = nil }
                throw IOError.redisReply(message: m)
            default: throw IOError.redisReply(message: "unexpected reply to EVALSHA")
            }
        }
        return out
    }

    /// Connects and loads the script ahead of the first push.
    public func warmUp() throws {
        _ = try loadScript(try connection())
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
