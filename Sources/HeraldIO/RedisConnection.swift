// One async hiredis connection on the loop: non-blocking connect (names
// resolved off the loop), connect and command timeouts that hiredis 0.14 lacks,
// AUTH and SELECT from the URL, reconnect with backoff and jitter, and
// re-subscription. hiredis frees its context after the disconnect callback and
// after a failed connect, so the stored pointer is cleared there (docs/development.md).

import CHeraldShim
import CHiredis
import Glibc
import HeraldCore

/// An async Redis connection owned by the loop thread. Use it only on the loop
/// (`@unchecked Sendable` so loop-posted closures may carry it; debug builds assert the thread).
public final class RedisConnection: @unchecked Sendable {
    public enum State: String, Sendable { case disconnected, connecting, ready }

    /// Which connection this is (also its `source` in logs and metrics).
    public let name: String
    public let endpoint: RedisEndpoint
    public private(set) var state: State = .disconnected
    /// Called on the loop when the connection becomes ready or goes down (with the reason).
    public var onStateChange: ((State, String?) -> Void)?
    /// Called on the loop each time the connection is ready (after AUTH/SELECT/SUBSCRIBE).
    public var onReady: (() -> Void)?

    private let loop: EventLoop
    private let connectTimeout: Duration
    private let commandTimeout: Duration
    private var backoff: Backoff
    private var ac: UnsafeMutablePointer<redisAsyncContext>?
    private var subscriptions: [RedisSubscription] = []
    private var confirmed = 0
    private var sentAt: [UInt64] = []
    private var sentHead = 0
    private var stopped = true
    private var generation = 0
    private lazy var reconnectTimer = LoopTimer(loop: loop) { [unowned self] in self.connect() }
    private lazy var connectWatchdog = LoopTimer(loop: loop) { [unowned self] in
        self.fail("connect timed out after \(self.connectTimeout)")
    }
    private lazy var commandWatchdog = LoopTimer(loop: loop) { [unowned self] in self.checkCommandDeadlines() }

    public init(
        name: String, loop: EventLoop, endpoint: RedisEndpoint,
        connectTimeout: Duration = .seconds(5), commandTimeout: Duration = .seconds(5),
        backoff: Backoff = Backoff()
    ) {
        self.name = name
        self.loop = loop
        self.endpoint = endpoint
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.backoff = backoff
    }

    deinit {
        if let a = ac {
            ac = nil
            redisAsyncFree(a)
        }
    }

    /// Subscribes to `channel` on every (re)connect; `handler` gets each message payload.
    /// Call before `start()`. A connection with subscriptions accepts no other commands.
    public func subscribe(_ channel: String, handler: @escaping ([UInt8]) -> Void) {
        subscriptions.append(RedisSubscription(channel: channel, owner: self, handler: handler))
    }

    /// Connects, and keeps reconnecting until `stop()`.
    public func start() {
        loop.assertInLoop()
        guard stopped else { return }
        stopped = false
        connect()
    }

    /// Disconnects and stops reconnecting.
    public func stop() {
        loop.assertInLoop()
        stopped = true
        reconnectTimer.cancel()
        connectWatchdog.cancel()
        commandWatchdog.cancel()
        if let a = ac {
            ac = nil
            redisAsyncFree(a)
        }
        setState(.disconnected, reason: "stopped")
    }

    /// Drops the connection as if the server had closed it; it reconnects with backoff.
    public func fail(_ reason: String) {
        loop.assertInLoop()
        connectWatchdog.cancel()
        commandWatchdog.cancel()
        if let a = ac {
            ac = nil
            redisAsyncFree(a)  // pending callbacks run with a nil reply
        }
        sentAt.removeAll()
        sentHead = 0
        setState(.disconnected, reason: reason)
        scheduleReconnect()
    }

    // MARK: Commands

    /// Sends a command; `callback` gets the reply, or nil when the connection dropped first.
    public func send(_ args: [String], callback: ((RedisValue?) -> Void)? = nil) {
        send(args.map { Array($0.utf8) }, callback: callback)
    }

    /// Sends a binary-safe command.
    public func send(_ args: [[UInt8]], callback: ((RedisValue?) -> Void)? = nil) {
        loop.assertInLoop()
        guard let a = ac else {
            callback?(nil)
            return
        }
        let ctx = Unmanaged.passRetained(RedisCommandContext(owner: self, callback: callback)).toOpaque()
        let rc = RedisArgv.with(args) { argc, argv, lens in
            redisAsyncCommandArgv(
                a,
                { _, reply, priv in
                    let ctx = Unmanaged<RedisCommandContext>.fromOpaque(priv!).takeRetainedValue()
                    ctx.complete(reply?.assumingMemoryBound(to: redisReply.self))
                }, ctx, argc, argv, lens)
        }
        if rc != REDIS_OK {
            Unmanaged<RedisCommandContext>.fromOpaque(ctx).release()
            callback?(nil)
            return
        }
        sentAt.append(MonotonicNow.nanoseconds)
    }

    fileprivate func commandCompleted() {
        if sentHead < sentAt.count { sentHead += 1 }
        if sentHead == sentAt.count {
            sentAt.removeAll(keepingCapacity: true)
            sentHead = 0
        }
    }

    private func checkCommandDeadlines() {
        guard sentHead < sentAt.count else { return }
        let age = MonotonicNow.nanoseconds &- sentAt[sentHead]
        if age > UInt64(max(0, commandTimeout.nanosecondsClamped)) {
            fail("command timed out after \(commandTimeout)")
        }
    }

    // MARK: Connecting

    private func connect() {
        guard !stopped, ac == nil else { return }
        generation += 1
        let gen = generation
        setState(.connecting, reason: nil)
        switch endpoint.address {
        case .unix(let path):
            open { redisAsyncConnectUnix(path) }
        case .tcp(let host, let port):
            Resolver.resolve(host, on: loop) { [unowned self] result in
                guard gen == self.generation, !self.stopped else { return }
                switch result {
                case .success(let ip): self.open { redisAsyncConnect(ip, Int32(port)) }
                case .failure(let e): self.fail(e.description)
                }
            }
        case .sentinel(let s):
            // Asked again at every connect: after a failover the reconnect finds the new master.
            RedisSentinelResolver.resolve(s, on: loop) { [unowned self] result in
                guard gen == self.generation, !self.stopped else { return }
                switch result {
                case .success(let m): self.open { redisAsyncConnect(m.ip, Int32(m.port)) }
                case .failure(let e): self.fail(e.description)
                }
            }
        }
    }

    private func open(_ make: () -> UnsafeMutablePointer<redisAsyncContext>?) {
        guard let a = make() else {
            fail("redisAsyncConnect: out of memory")
            return
        }
        if a.pointee.err != 0 {
            let message = String(cString: herald_redis_errstr(a))
            redisAsyncFree(a)
            fail("redisAsyncConnect: \(message)")
            return
        }
        herald_redis_limit_reader(a.pointee.c.reader)
        guard herald_redis_attach(a, loop.base) == 0 else {
            redisAsyncFree(a)
            fail("herald_redis_attach failed")
            return
        }
        a.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        ac = a
        _ = herald_redis_keepalive(a)
        redisAsyncSetConnectCallback(a) { ac, status in
            guard let ac, let data = ac.pointee.data else { return }
            Unmanaged<RedisConnection>.fromOpaque(data).takeUnretainedValue()
                .connected(UnsafeMutablePointer(mutating: ac), status: status)
        }
        redisAsyncSetDisconnectCallback(a) { ac, status in
            guard let ac, let data = ac.pointee.data else { return }
            Unmanaged<RedisConnection>.fromOpaque(data).takeUnretainedValue()
                .disconnected(UnsafeMutablePointer(mutating: ac), status: status)
        }
        connectWatchdog.schedule(after: connectTimeout)
    }

    private func connected(_ a: UnsafeMutablePointer<redisAsyncContext>, status: Int32) {
        guard a == ac else { return }
        connectWatchdog.cancel()
        if status != REDIS_OK {
            // hiredis frees the context after this callback returns.
            let message = String(cString: herald_redis_errstr(a))
            ac = nil
            setState(.disconnected, reason: "connect: \(message)")
            scheduleReconnect()
            return
        }
        commandWatchdog.scheduleRepeating(every: .milliseconds(250))
        if let pw = endpoint.password {
            var args = ["AUTH"]
            if let u = endpoint.username { args.append(u) }
            args.append(pw)
            send(args) { [unowned self] reply in self.expectOK(reply, what: "AUTH") }
        }
        if case .sentinel = endpoint.address {
            // The server Sentinel named must still be the master (not a replica mid-failover).
            send(["ROLE"]) { [unowned self] reply in
                guard reply != nil, !RedisSentinelResolver.isMaster(reply) else { return }
                self.fail("the server Sentinel named is not the master (a failover is under way)")
            }
        }
        if subscriptions.isEmpty {
            if endpoint.database != 0 {
                send(["SELECT", String(endpoint.database)]) { [unowned self] reply in
                    self.expectOK(reply, what: "SELECT")
                }
            }
            send(["PING"]) { [unowned self] reply in
                guard case .status? = reply else { return }
                self.becameReady()
            }
        } else {
            confirmed = 0
            for s in subscriptions { sendSubscribe(s, on: a) }
        }
    }

    private func expectOK(_ reply: RedisValue?, what: String) {
        switch reply {
        case .status?: return
        case .error(let message)?: fail("\(what) refused: \(message)")
        default: return  // connection dropped; the disconnect path handles it
        }
    }

    private func sendSubscribe(_ s: RedisSubscription, on a: UnsafeMutablePointer<redisAsyncContext>) {
        let ctx = Unmanaged.passUnretained(s).toOpaque()
        _ = RedisArgv.with([Array("SUBSCRIBE".utf8), Array(s.channel.utf8)]) { argc, argv, lens in
            redisAsyncCommandArgv(
                a,
                { _, reply, priv in
                    guard let reply, let priv else { return }  // nil during teardown
                    Unmanaged<RedisSubscription>.fromOpaque(priv).takeUnretainedValue()
                        .deliver(UnsafePointer(reply.assumingMemoryBound(to: redisReply.self)))
                }, ctx, argc, argv, lens)
        }
    }

    fileprivate func subscriptionConfirmed() {
        confirmed += 1
        if confirmed == subscriptions.count { becameReady() }
    }

    private func becameReady() {
        backoff.reset()
        setState(.ready, reason: nil)
        onReady?()
    }

    private func disconnected(_ a: UnsafeMutablePointer<redisAsyncContext>, status: Int32) {
        guard a == ac else { return }  // our own fail()/stop() already handled it
        let message = status == REDIS_OK ? "closed" : String(cString: herald_redis_errstr(a))
        ac = nil  // hiredis frees the context after this callback returns
        connectWatchdog.cancel()
        commandWatchdog.cancel()
        sentAt.removeAll()
        sentHead = 0
        setState(.disconnected, reason: "connection lost: \(message)")
        scheduleReconnect()
    }

    private func scheduleReconnect() {
        guard !stopped else { return }
        reconnectTimer.schedule(after: backoff.next())
    }

    private func setState(_ s: State, reason: String?) {
        let old = state
        state = s
        // The outcome of a connect, told to the server's shared gate and breaker (ConnectGate.swift).
        if s == .ready && old != .ready {
            RedisClient.gate(for: endpoint).record(success: true)
        } else if old == .connecting && s == .disconnected && !stopped {
            RedisClient.gate(for: endpoint).record(success: false, failure: reason)
        }
        if old != s { onStateChange?(s, reason) }
    }
}

/// One channel subscription; lives as long as its connection (hiredis keeps its pointer).
final class RedisSubscription {
    let channel: String
    unowned let owner: RedisConnection
    let handler: ([UInt8]) -> Void

    init(channel: String, owner: RedisConnection, handler: @escaping ([UInt8]) -> Void) {
        self.channel = channel
        self.owner = owner
        self.handler = handler
    }

    func deliver(_ r: UnsafePointer<redisReply>) {
        switch PubSubFrame.classify(r) {
        case .message(let payload): handler(payload)
        case .subscribed: owner.subscriptionConfirmed()
        case .other: break
        }
    }
}

/// The context of one in-flight command; released when its callback runs.
final class RedisCommandContext {
    unowned let owner: RedisConnection
    let callback: ((RedisValue?) -> Void)?

    init(owner: RedisConnection, callback: ((RedisValue?) -> Void)?) {
        self.owner = owner
        self.callback = callback
    }

    func complete(_ reply: UnsafeMutablePointer<redisReply>?) {
        owner.commandCompleted()
        callback?(reply.map { RedisValue(UnsafePointer($0)) })
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
public enum MonotonicNow {
    public static var nanoseconds: UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    public static var instant: MonotonicInstant { MonotonicInstant(nanoseconds: nanoseconds) }
}
