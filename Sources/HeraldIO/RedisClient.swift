// A blocking Redis client, for work that runs off the loop thread: the command
// line (`herald publish`), tests, and the daemon's blocking Redis work (the
// schedule dispatcher's pushes to the Celery broker, task locks and their
// renewal, task status events, the tasks' own Redis calls). Never used on the
// loop thread: there everything is async (RedisConnection).

import CHeraldShim
import CHiredis
import Glibc
import HeraldCore

/// A synchronous hiredis connection. One thread at a time.
public final class RedisClient: @unchecked Sendable {
    private var ctx: UnsafeMutablePointer<redisContext>?
    public let endpoint: RedisEndpoint

    /// Connects (blocking, with a timeout), then AUTH and SELECT as the URL says. Through
    /// Sentinel, the sentinels are asked for the master first, and the server reached must say
    /// it is the master (`ROLE`): a stale answer during a failover is an error, not a replica.
    public init(endpoint: RedisEndpoint, timeout: Duration = .seconds(5)) throws(IOError) {
        self.endpoint = endpoint
        let tv = timeout.timeval
        let c: UnsafeMutablePointer<redisContext>?
        var viaSentinel = false
        switch endpoint.address {
        case .tcp(let host, let port): c = redisConnectWithTimeout(host, Int32(port), tv)
        case .unix(let path): c = redisConnectUnixWithTimeout(path, tv)
        case .sentinel(let s):
            let master: (host: String, port: Int)
            switch RedisSentinelResolver.master(s) {
            case .success(let m): master = m
            case .failure(let e): throw e
            }
            viaSentinel = true
            c = redisConnectWithTimeout(master.host, Int32(master.port), tv)
        }
        guard let c else { throw IOError.redis(call: "redisConnect", message: "out of memory") }
        if c.pointee.err != 0 {
            let message = withUnsafeBytes(of: c.pointee.errstr) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            redisFree(c)
            throw IOError.redis(call: "redisConnect(\(endpoint.redacted))", message: message)
        }
        redisSetTimeout(c, tv)
        herald_redis_limit_reader(c.pointee.reader)
        ctx = c
        if let pw = endpoint.password {
            var args = ["AUTH"]
            if let u = endpoint.username { args.append(u) }
            args.append(pw)
            if case .error(let m) = try command(args) { throw IOError.redisReply(message: "AUTH: \(m)") }
        }
        if endpoint.database != 0 {
            if case .error(let m) = try command(["SELECT", String(endpoint.database)]) {
                throw IOError.redisReply(message: "SELECT: \(m)")
            }
        }
        if viaSentinel, !RedisSentinelResolver.isMaster(try command(["ROLE"])) {
            throw IOError.redisReply(message: "the server Sentinel named is not the master (a failover is under way)")
        }
    }

    deinit {
        if let c = ctx { redisFree(c) }
    }

    /// Connects through the server's ConnectGate, the reconnect policy every blocking client of
    /// the daemon shares (pushes, locks, status events, the tasks' own calls): while the server is
    /// away, one attempt per backoff step from the whole process, the others refused at once.
    public static func gated(endpoint: RedisEndpoint, timeout: Duration = .seconds(5)) throws(IOError) -> RedisClient {
        try gate(for: endpoint).pass { () throws(IOError) in try RedisClient(endpoint: endpoint, timeout: timeout) }
    }

    /// The connect gate of `endpoint`'s server.
    public static func gate(for endpoint: RedisEndpoint) -> ConnectGate {
        ConnectGates.gate(dependency: "redis", target: endpoint.redacted)
    }

    /// Runs one command and returns its reply (an error reply is a value, not a throw).
    @discardableResult
    public func command(_ args: [String]) throws(IOError) -> RedisValue {
        try command(args.map { Array($0.utf8) })
    }

    /// Sends every command, then reads every reply: one round trip for the batch.
    public func pipeline(_ commands: [[[UInt8]]]) throws(IOError) -> [RedisValue] {
        guard let c = ctx else { throw IOError.notConnected("redis") }
        for args in commands {
            let rc = RedisArgv.with(args) { argc, argv, lens in redisAppendCommandArgv(c, argc, argv, lens) }
            guard rc == REDIS_OK else { throw IOError.redis(call: "redisAppendCommandArgv", message: errorText(c)) }
        }
        return try replies(c, count: commands.count)
    }

    /// Sends commands already in RESP form (see `RESPCommand`), then reads every reply: one
    /// round trip, and no formatting at send time. Each command is written out before the next
    /// is copied, so the server starts on the first while the rest are still on their way.
    public func pipeline(formatted commands: [[UInt8]]) throws(IOError) -> [RedisValue] {
        try pipeline(formattedCount: commands.count) { commands[$0] }
    }

    /// The same, with each command's bytes made when it is its turn to be written (so that making
    /// the next one overlaps the server's work on the previous).
    public func pipeline(formattedCount count: Int, _ command: (Int) -> [UInt8]) throws(IOError) -> [RedisValue] {
        guard let c = ctx else { throw IOError.notConnected("redis") }
        for i in 0..<count {
            let bytes = command(i)
            let rc = bytes.withUnsafeBufferPointer { b in
                b.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(c, $0.baseAddress, $0.count) }
            }
            guard rc == REDIS_OK else {
                throw IOError.redis(call: "redisAppendFormattedCommand", message: errorText(c))
            }
            var done: Int32 = 0
            while done == 0 {
                guard redisBufferWrite(c, &done) == REDIS_OK else {
                    throw IOError.redis(call: "redisBufferWrite", message: errorText(c))
                }
            }
        }
        return try replies(c, count: count)
    }

    /// Reads `count` replies of commands already sent.
    private func replies(_ c: UnsafeMutablePointer<redisContext>, count: Int) throws(IOError) -> [RedisValue] {
        var out: [RedisValue] = []
        out.reserveCapacity(count)
        for _ in 0..<count {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(c, &raw) == REDIS_OK, let raw else {
                throw IOError.redis(call: "redisGetReply", message: errorText(c))
            }
            out.append(RedisValue(UnsafePointer(raw.assumingMemoryBound(to: redisReply.self))))
            freeReplyObject(raw)
        }
        return out
    }

    private func errorText(_ c: UnsafeMutablePointer<redisContext>) -> String {
        RedisReaderError.describe(
            withUnsafeBytes(of: c.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
    }

    /// True while the connection has not failed.
    public var isHealthy: Bool { ctx.map { $0.pointee.err == 0 } ?? false }

    /// Runs one binary-safe command.
    @discardableResult
    public func command(_ args: [[UInt8]]) throws(IOError) -> RedisValue {
        guard let c = ctx else { throw IOError.notConnected("redis") }
        let raw = RedisArgv.with(args) { argc, argv, lens in redisCommandArgv(c, argc, argv, lens) }
        guard let raw else {
            let message = withUnsafeBytes(of: c.pointee.errstr) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            throw IOError.redis(call: "redisCommandArgv", message: message)
        }
        let reply = raw.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(raw) }
        return RedisValue(UnsafePointer(reply))
    }
}
