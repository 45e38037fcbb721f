// One run of a task must exclude the same task's runs on every other Herald
// instance. This is the Redis lock that does it: `SET key token NX PX ttl` with a
// random token, renewed while the run lasts (compare-and-PEXPIRE in Lua) and
// released only by its owner (compare-and-DEL), so an expired lock that another
// instance took over is never deleted by the late first holder.

import Foundation
import HeraldCore
import HeraldIO
import Synchronization

/// Why a lock operation could not be carried out (the lock state is then unknown).
public enum TaskLockError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The Redis connection or command failed.
    case redis(IOError)
    /// Redis answered with an error or a reply the lock protocol does not expect.
    case unexpectedReply(operation: String, reply: String)

    public var description: String {
        switch self {
        case .redis(let error): return "task lock: \(error)"
        case .unexpectedReply(let operation, let reply): return "task lock \(operation): unexpected reply \(reply)"
        }
    }
}

/// A lock this process holds: the full Redis key, its owner token and its lifetime.
public struct TaskLockHandle: Sendable, Hashable, CustomStringConvertible {
    /// The Redis key, `REDIS_KEY_PREFIX` already applied.
    public let key: String
    /// The random token that proves ownership.
    public let token: String
    /// The lifetime set on acquisition and on each renewal, in milliseconds.
    public let ttlMilliseconds: Int

    /// A handle for `key` owned by `token` (a client makes these; tests forge them).
    public init(key: String, token: String, ttlMilliseconds: Int) {
        self.key = key
        self.token = token
        self.ttlMilliseconds = ttlMilliseconds
    }

    public var description: String { key }
}

/// Acquires, renews and releases task locks on Redis with a blocking connection.
///
/// Every call blocks on the network: use it from worker threads, never on the loop.
/// Calls are serialised on one connection; a broken connection is re-opened by the
/// next call.
public final class TaskLockClient: Sendable {
    /// The Redis server.
    public let endpoint: RedisEndpoint
    /// `REDIS_KEY_PREFIX` (Dify's; empty for none). Keys become `<prefix>:<key>`.
    public let keyPrefix: String
    private let connection = Mutex<RedisClient?>(nil)

    static let renewScript =
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
    static let releaseScript =
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

    /// A client for `endpoint`; connects on first use.
    public init(endpoint: RedisEndpoint, keyPrefix: String = "") {
        self.endpoint = endpoint
        self.keyPrefix = keyPrefix
    }

    /// The Redis key of `lock`: `REDIS_KEY_PREFIX:` + the lock's key when a prefix is set.
    public static func redisKey(_ lock: TaskLock, keyPrefix: String) -> String {
        keyPrefix.isEmpty ? lock.key : keyPrefix + ":" + lock.key
    }

    /// A fresh random owner token (128 bits, hex).
    public static func makeToken() -> String {
        var rng = SystemRandomNumberGenerator()
        let words = [rng.next() as UInt64, rng.next() as UInt64]
        return words.map { word in
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// Takes `lock` if nobody holds it; nil when it is held elsewhere.
    public func acquire(_ lock: TaskLock) throws(TaskLockError) -> TaskLockHandle? {
        let handle = TaskLockHandle(
            key: Self.redisKey(lock, keyPrefix: keyPrefix), token: Self.makeToken(),
            ttlMilliseconds: max(1, lock.ttlSeconds) * 1000)
        let reply = try command(["SET", handle.key, handle.token, "NX", "PX", String(handle.ttlMilliseconds)])
        switch reply {
        case .status(let s) where s == "OK": return handle
        case .null: return nil
        default: throw .unexpectedReply(operation: "SET NX", reply: "\(reply)")
        }
    }

    /// Extends the lock's lifetime to its full TTL; false when it is no longer ours.
    public func renew(_ handle: TaskLockHandle) throws(TaskLockError) -> Bool {
        let reply = try command([
            "EVAL", Self.renewScript, "1", handle.key, handle.token, String(handle.ttlMilliseconds),
        ])
        guard let n = reply.integer else { throw .unexpectedReply(operation: "renew", reply: "\(reply)") }
        return n == 1
    }

    /// Deletes the lock if it is still ours; false when it expired or someone else holds it.
    @discardableResult
    public func release(_ handle: TaskLockHandle) throws(TaskLockError) -> Bool {
        let reply = try command(["EVAL", Self.releaseScript, "1", handle.key, handle.token])
        guard let n = reply.integer else { throw .unexpectedReply(operation: "release", reply: "\(reply)") }
        return n == 1
    }

    /// Acquires `lock` and keeps renewing it on a background thread every
    /// `renewEvery` (default a third of the TTL) until the lease is released.
    /// nil when the lock is held elsewhere.
    public func lease(_ lock: TaskLock, renewEvery: Duration? = nil) throws(TaskLockError) -> TaskLockLease? {
        guard let handle = try acquire(lock) else { return nil }
        let period = renewEvery ?? .milliseconds(max(100, handle.ttlMilliseconds / 3))
        return TaskLockLease(client: self, handle: handle, period: period)
    }

    private func command(_ args: [String]) throws(TaskLockError) -> RedisValue {
        let result: Result<RedisValue, IOError> = connection.withLock { conn in
            do throws(IOError) {
                if conn == nil || conn?.isHealthy == false { conn = try RedisClient.gated(endpoint: endpoint) }
                let reply = try conn!.command(args)
                if case .error(let message) = reply { return .failure(.redisReply(message: message)) }
                return .success(reply)
            } catch {
                conn = nil
                return .failure(error)
            }
        }
        switch result {
        case .success(let value): return value
        case .failure(let error): throw .redis(error)
        }
    }
}

/// A held lock plus the thread that renews it; ``release()`` stops both.
public final class TaskLockLease: Sendable {
    /// The lock held.
    public let handle: TaskLockHandle
    private let client: TaskLockClient
    private let stopSignal = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private let state = Mutex<(released: Bool, lost: Bool, renewals: Int)>((false, false, 0))

    init(client: TaskLockClient, handle: TaskLockHandle, period: Duration) {
        self.client = client
        self.handle = handle
        let seconds = Double(period.components.seconds) + Double(period.components.attoseconds) / 1e18
        let thread = Thread { [self] in
            while stopSignal.wait(timeout: .now() + seconds) == .timedOut {
                let kept = (try? client.renew(handle)) ?? true  // a transient error is retried next period
                let stop = state.withLock { s -> Bool in
                    if kept { s.renewals += 1 } else { s.lost = true }
                    return !kept
                }
                if stop { break }
            }
            done.signal()
        }
        thread.name = "herald-lock-renew"
        thread.start()
    }

    /// True once a renewal found the lock owned by someone else (or gone).
    public var isLost: Bool { state.withLock { $0.lost } }
    /// Successful renewals so far.
    public var renewals: Int { state.withLock { $0.renewals } }

    /// Stops renewing and deletes the lock if still ours; false when it was not.
    /// Idempotent: later calls return false.
    @discardableResult
    public func release() throws(TaskLockError) -> Bool {
        let first = state.withLock { s -> Bool in
            defer { s.released = true }
            return !s.released
        }
        guard first else { return false }
        stopSignal.signal()
        done.wait()
        return try client.release(handle)
    }
}
