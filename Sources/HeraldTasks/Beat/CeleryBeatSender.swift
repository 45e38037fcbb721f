// Sends one beat entry's Celery task, as Celery beat would: Dify's task name on
// its queue, with the entry's args and kwargs. A tick is sent once however often
// it is sent: its task id is derived from (task, tick) and a marker set in the
// same Lua call as the LPUSH drops a second copy, so a tick re-sent after a crash
// (claimed, maybe pushed, never recorded as enqueued) reaches the queue once.

import HeraldCelery
import HeraldCore
import HeraldIO

/// Why a beat entry's message could not be sent.
public enum CeleryBeatError: Error, Sendable, CustomStringConvertible {
    /// The broker could not be reached or refused the command.
    case broker(operation: String, underlying: IOError)
    /// A positional or keyword argument cannot be sent as JSON (a non-finite number).
    case badArgument(String)

    public var description: String {
        switch self {
        case .broker(let operation, let underlying): return "broker: \(operation): \(underlying)"
        case .badArgument(let what): return "argument \(what) cannot be sent"
        }
    }
}

/// What one send did.
public enum CeleryBeatSendResult: Sendable, Equatable {
    /// The message is on the queue now.
    case enqueued(taskID: String)
    /// The tick's message was already on its way (its marker was set): nothing pushed.
    case alreadySent(taskID: String)
}

/// Encodes and pushes beat entries' Celery tasks onto the broker.
public struct CeleryBeatSender: Sendable {
    /// The broker (Dify's `CELERY_BROKER_URL`).
    public let broker: RedisEndpoint
    /// Dify's `REDIS_KEY_PREFIX` (raw, without ":").
    public let redisKeyPrefix: String
    /// The Celery `origin` header, `herald@<instance>`.
    public let origin: String
    /// How long a tick's marker keeps a second copy out (seconds).
    public let markerTTLSeconds: Int

    /// A sender onto `broker`.
    public init(broker: RedisEndpoint, redisKeyPrefix: String, origin: String, markerTTLSeconds: Int = 86_400) {
        self.broker = broker
        self.redisKeyPrefix = redisKeyPrefix
        self.origin = origin
        self.markerTTLSeconds = markerTTLSeconds
    }

    /// `SET marker NX EX ttl` and, only if it was set, `LPUSH queue message`: 1 pushed, 0 duplicate.
    static let script = """
        if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
          redis.call('LPUSH', KEYS[1], ARGV[2])
          return 1
        end
        return 0
        """

    /// The task id of `task`'s tick at `tick` (Unix seconds): `uuid5(ns, "beat:<task>@<tick>")`.
    public static func taskID(task: TaskName, tick: Int64, key: String? = nil) -> String {
        CeleryMessage.taskID(scheduleID: "beat:\(task.rawValue)" + (key.map { ":" + $0 } ?? ""), scheduledAt: tick)
    }

    /// The list `call` goes to: `[<REDIS_KEY_PREFIX>:]<queue>`.
    public func queueKey(_ call: CeleryBeatCall) -> String {
        CeleryMessage.listKey(
            queue: call.queue, keyPrefix: CeleryMessage.globalKeyPrefix(redisKeyPrefix: redisKeyPrefix))
    }

    /// The marker of one tick: `[<REDIS_KEY_PREFIX>:]herald:sent:beat:<task>:<tick>`.
    public func markerKey(task: TaskName, tick: Int64, key: String? = nil) -> String {
        (redisKeyPrefix.isEmpty ? "" : redisKeyPrefix + ":") + "herald:sent:beat:\(task.rawValue):"
            + (key.map { $0 + ":" } ?? "") + "\(tick)"
    }

    /// The Celery task for `call`, with the tick's id (or a random one without a tick).
    public static func celeryTask(
        _ call: CeleryBeatCall, task: TaskName, tick: Int64?, key: String? = nil
    ) throws(CeleryBeatError)
        -> CeleryTask
    {
        let id = tick.map { taskID(task: task, tick: $0, key: key) } ?? CeleryUUID.v4().description
        var args: [CeleryValue] = []
        for (i, value) in call.args.enumerated() { args.append(try celeryValue(value, "args[\(i)]")) }
        var kwargs: [CeleryMember] = []
        for member in call.kwargs { kwargs.append(CeleryMember(member.key, try celeryValue(member.value, member.key))) }
        return CeleryTask(name: call.task, queue: call.queue, id: id, args: args, kwargs: kwargs)
    }

    /// Sends `call` for `task`: once per `tick` (and `key`, one of several calls of a tick, such as
    /// a tenant) when given (marker and push in one script), else a plain LPUSH with a random id
    /// (a request). Blocking; run off the loop.
    public func send(
        _ call: CeleryBeatCall, task: TaskName, tick: Int64?, key: String? = nil
    ) throws(CeleryBeatError)
        -> CeleryBeatSendResult
    {
        let celery = try Self.celeryTask(call, task: task, tick: tick, key: key)
        let message = CeleryMessage.encode(celery, origin: origin, deliveryTag: CeleryUUID.v4().description)
        let client: RedisClient
        do { client = try RedisClient.gated(endpoint: broker) } catch {
            throw .broker(operation: "connect", underlying: error)
        }
        let list = queueKey(call)
        guard let tick else {
            let reply: RedisValue
            do {
                reply = try client.command([Array("LPUSH".utf8), Array(list.utf8), message])
            } catch {
                throw .broker(operation: "LPUSH \(list)", underlying: error)
            }
            if case .error(let m) = reply {
                throw .broker(operation: "LPUSH \(list)", underlying: .redisReply(message: m))
            }
            return .enqueued(taskID: celery.id)
        }
        let marker = markerKey(task: task, tick: tick, key: key)
        let reply: RedisValue
        do {
            reply = try client.command([
                Array("EVAL".utf8), Array(Self.script.utf8), Array("2".utf8), Array(list.utf8), Array(marker.utf8),
                Array(String(markerTTLSeconds).utf8), message,
            ])
        } catch {
            throw .broker(operation: "EVAL (LPUSH \(list))", underlying: error)
        }
        switch reply {
        case .integer(1): return .enqueued(taskID: celery.id)
        case .integer(0): return .alreadySent(taskID: celery.id)
        case .error(let m): throw .broker(operation: "EVAL (LPUSH \(list))", underlying: .redisReply(message: m))
        default: throw .broker(operation: "EVAL (LPUSH \(list))", underlying: .redisReply(message: "unexpected reply"))
        }
    }

    private static func celeryValue(_ value: JSONValue, _ path: String) throws(CeleryBeatError) -> CeleryValue {
        switch value {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .string(let s): return .string(s)
        case .number(let n):
            guard n.isFinite else { throw .badArgument(path) }
            if n == n.rounded(), abs(n) < 9.007_199_254_740_992e15 { return .int(Int64(n)) }
            return .double(n)
        case .array(let items):
            var out: [CeleryValue] = []
            for (i, item) in items.enumerated() { out.append(try celeryValue(item, "\(path)[\(i)]")) }
            return .array(out)
        case .object(let members):
            var out: [CeleryMember] = []
            for (key, item) in members.sorted(by: { $0.key < $1.key }) {
                out.append(CeleryMember(key, try celeryValue(item, "\(path).\(key)")))
            }
            return .object(out)
        }
    }
}
