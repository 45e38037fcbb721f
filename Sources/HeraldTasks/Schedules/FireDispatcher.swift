// Puts claimed fires on Celery's queue, exactly once. The fires of one claim
// are cut into chunks the same way every time (by scheduled time, then plan and
// kind, 500 at a time); a small Lua script sets the chunk's marker with SET NX
// and LPUSHes its messages only when the marker was new. Marker and push happen
// atomically in the broker, so a chunk re-sent after a crash is never queued
// twice, and the broker does one marker per 500 messages instead of one each.
// A chunk's whole EVALSHA command is encoded ahead (`chunks`), so that the push
// at the fires' time is a copy into the socket and the network round trip.

import Glibc
import HeraldCelery
import HeraldCore
import HeraldIO

/// Some fires of one claim with their encoded EVALSHA command, pushed all or none.
public struct FireChunk: Sendable {
    public var claim: Int64
    public var fires: [ClaimedFire]
    /// The scheduled time shared by the chunk's fires (µs).
    public var scheduledAt: Int64 { fires.first?.scheduledAt ?? 0 }
    /// The chunk's marker key in the broker.
    public var marker: String
    /// RESP bytes of `EVALSHA <sha> 2 <queue> <marker> <ttl> <message>…`; empty until encoded.
    var wire: [UInt8]
    /// True when the command is encoded (held fires are, up to `ScheduleOptions.encodeAhead`).
    public var isEncoded: Bool { !wire.isEmpty }
}

/// Enqueues schedule fires on the Celery broker. One instance per thread.
public final class FireDispatcher: @unchecked Sendable {
    /// `KEYS[1]` the queue list, `KEYS[2]` the chunk's marker; `ARGV[1]` marker TTL (s), `ARGV[2..]`
    /// the messages. Returns 1 when pushed now, 0 when the chunk was pushed before.
    static let script = """
        if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[1])) then
          return 0
        end
        for i = 2, #ARGV, 500 do
          redis.call('LPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 499, #ARGV)))
        end
        return 1
        """
    static let scriptSHA = SHA1.hash(script.utf8).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    /// How long a chunk's marker outlives its push: a claim still open after this (PostgreSQL
    /// unreachable for a week after the push) could be queued a second time.
    static let markerTTLSeconds = 7 * 86_400
    /// How long a marker lives once its claim is recorded as enqueued (`settle`): only a sweep that
    /// read the claim as open just before and then stalled this long could still re-send it. This
    /// keeps the broker's markers to the last minutes of fires instead of a week of them.
    static let settledMarkerTTLSeconds = 900
    /// Fires per chunk (one marker, one script call).
    public static let chunkSize = 500

    private let broker: RedisEndpoint
    private let keyPrefix: String
    private let origin: String
    private let replyTo: String
    private var client: RedisClient?
    private var scriptLoaded = false
    private var writer = PythonJSONWriter(capacity: 2048)
    /// Held fires whose chunks this dispatcher encoded ahead and has not pushed yet (kept by its
    /// one user thread, for `ScheduleOptions.encodeAhead`).
    public var encodedAhead = 0

    /// - Parameters:
    ///   - redisKeyPrefix: Dify's `REDIS_KEY_PREFIX` (Celery's global_keyprefix is derived from it).
    public init(broker: RedisEndpoint, redisKeyPrefix: String, instanceID: String) {
        self.broker = broker
        self.keyPrefix = CeleryMessage.globalKeyPrefix(redisKeyPrefix: redisKeyPrefix)
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count)
        let hostname = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.origin = "herald\(getpid())@\(hostname)"
        self.replyTo =
            CeleryUUID.v5(namespace: CeleryMessage.taskIDNamespace, name: "reply-to:\(instanceID)").description
    }

    /// The list key of Dify's schedule queue.
    public var queueKey: String {
        CeleryMessage.listKey(queue: DifyCeleryTasks.runScheduleTrigger.queue, keyPrefix: keyPrefix)
    }

    /// The marker key of chunk `index` of `claim`'s fires scheduled at `scheduledAt`.
    func markerKey(claim: Int64, scheduledAt: Int64, index: Int) -> String {
        keyPrefix + "herald:sent:\(claim):\(scheduledAt):\(index)"
    }

    /// Cuts one claim's fires into chunks and, unless `encoded` is false, encodes them (pure CPU;
    /// any thread). The same set of fires always gives the same chunks, whatever order it comes in.
    public func chunks(claim: Int64, fires: [ClaimedFire], encoded: Bool = true) -> [FireChunk] {
        let sorted = fires.sorted {
            ($0.scheduledAt, $0.plan, $0.kind.rawValue) < ($1.scheduledAt, $1.plan, $1.kind.rawValue)
        }
        var out: [FireChunk] = []
        var start = 0
        while start < sorted.count {
            let at = sorted[start].scheduledAt
            var end = start
            while end < sorted.count, sorted[end].scheduledAt == at { end += 1 }
            var index = 0
            var i = start
            while i < end {
                let part = Array(sorted[i..<min(i + Self.chunkSize, end)])
                let marker = markerKey(claim: claim, scheduledAt: at, index: index)
                out.append(
                    encoded
                        ? encode(claim: claim, fires: part, marker: marker)
                        : FireChunk(claim: claim, fires: part, marker: marker, wire: []))
                index += 1
                i += part.count
            }
            start = end
        }
        return out
    }

    /// `chunk` with its command encoded.
    public func encoded(_ chunk: FireChunk) -> FireChunk {
        chunk.isEncoded ? chunk : encode(claim: chunk.claim, fires: chunk.fires, marker: chunk.marker)
    }

    private func encode(claim: Int64, fires: [ClaimedFire], marker: String) -> FireChunk {
        let queue = queueKey
        let ttl = String(Self.markerTTLSeconds)
        var cmd = RESPCommand(count: 6 + fires.count, capacity: 160 + fires.count * 1_200)
        cmd.append("EVALSHA")
        cmd.append(Self.scriptSHA)
        cmd.append("2")
        cmd.append(queue)
        cmd.append(marker)
        cmd.append(ttl)
        for f in fires {
            writer.bytes.removeAll(keepingCapacity: true)
            let task = DifyCeleryTasks.runScheduleTrigger(scheduleID: f.plan.description, taskID: f.taskID)
            CeleryMessage.encode(
                task, origin: origin, replyTo: replyTo, deliveryTag: CeleryUUID.v4().description, into: &writer)
            cmd.append(writer.bytes)
        }
        return FireChunk(claim: claim, fires: fires, marker: marker, wire: cmd.bytes)
    }

    /// Pushes chunks (one pipeline, one round trip; a chunk not yet encoded is encoded as its turn
    /// comes); returns, per chunk, true when it was pushed now and false when the same chunk had
    /// been pushed before. Throws when the broker fails.
    public func push(_ chunks: [FireChunk]) throws -> [Bool] {
        guard !chunks.isEmpty else { return [] }
        do {
            return try pushOnce(chunks)
        } catch IOError.redis {
            // The connection failed under the push (a killed client, a Redis restart, a failover):
            // once more on a new connection, at once, rather than leaving the fires to the sweep's
            // re-send. Safe: a chunk that did reach the broker is recognised by its marker.
            client = nil
            return try pushOnce(chunks)
        }
    }

    private func pushOnce(_ chunks: [FireChunk]) throws -> [Bool] {
        let c = try connection()
        try loadScript(c)
        var replies = try send(c, count: chunks.count) { encoded(chunks[$0]).wire }
        // The script cache was flushed behind our back (SCRIPT FLUSH, a failover): load, send again.
        let missing = replies.indices.filter {
            if case .error(let m) = replies[$0] { return m.hasPrefix("NOSCRIPT") } else { return false }
        }
        if !missing.isEmpty {
            scriptLoaded = false
            try loadScript(c)
            let again = try send(c, count: missing.count) { encoded(chunks[missing[$0]]).wire }
            for (i, r) in zip(missing, again) { replies[i] = r }
        }
        return try replies.map { r in
            switch r {
            case .integer(let n): return n == 1
            case .error(let m): throw IOError.redisReply(message: m)
            default: throw IOError.redisReply(message: "unexpected reply to EVALSHA: \(r)")
            }
        }
    }

    /// Shortens the markers of chunks whose claim is recorded as enqueued to
    /// `settledMarkerTTLSeconds` (one pipeline). Best effort: a marker left as it was expires
    /// after `markerTTLSeconds`.
    public func settle(markers: [String]) throws {
        guard !markers.isEmpty else { return }
        let c = try connection()
        let ttl = String(Self.settledMarkerTTLSeconds)
        _ = try send(c, count: markers.count) { i in
            var cmd = RESPCommand(count: 3, capacity: markers[i].utf8.count + 32)
            cmd.append("EXPIRE")
            cmd.append(markers[i])
            cmd.append(ttl)
            return cmd.bytes
        }
    }

    private func send(_ c: RedisClient, count: Int, _ wire: (Int) -> [UInt8]) throws -> [RedisValue] {
        do {
            return try c.pipeline(formattedCount: count, wire)
        } catch {
            client = nil
            throw error
        }
    }

    /// Connects and loads the script ahead of the first push.
    public func warmUp() throws {
        try loadScript(try connection())
    }

    private func connection() throws -> RedisClient {
        if let c = client, c.isHealthy { return c }
        let c = try RedisClient.gated(endpoint: broker)
        client = c
        scriptLoaded = false
        return c
    }

    private func loadScript(_ c: RedisClient) throws {
        if scriptLoaded { return }
        let r = try c.command(["SCRIPT", "LOAD", Self.script])
        guard let sha = r.text else { throw IOError.redisReply(message: "SCRIPT LOAD: \(r)") }
        guard sha == Self.scriptSHA else {
            throw IOError.redisReply(message: "SCRIPT LOAD returned \(sha), expected \(Self.scriptSHA)")
        }
        scriptLoaded = true
    }
}
